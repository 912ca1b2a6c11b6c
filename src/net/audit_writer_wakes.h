// AuditWriterWakes: one wake-up of the audit writer per turn of a worker's
// event loop, not one per entry. RequestAudit submits entries without
// waking the writer (AuditSink::SubmitLater) and calls Schedule(). On a
// worker thread that posts one WakeWriter() to the worker's own loop: it
// runs after the handlers that are ready now, so the entries they submit
// (decisions and results of many connections) go in one group commit and
// cost the writer one wake-up (with audit.fsync: interval the worker may
// write that group itself, in that handler: AuditLog::WakeWriter). On a
// thread with no loop bound, the writer is woken at once.
//
//   AuditWriterWakes wakes(sink);
//   RequestAudit audit(sink, clock, [&wakes] { wakes.Schedule(); });
//   // each worker thread, before it runs its loop:
//   AuditWriterWakes::BindThisThread(ioc);
#pragma once

#include "audit/audit_sink.h"

namespace boost::asio {
class io_context;
}

namespace kubegate {

class AuditWriterWakes {
 public:
  // `sink` must outlive every loop bound with BindThisThread.
  explicit AuditWriterWakes(AuditSink& sink) : sink_(sink) {}

  // This thread runs `ioc` (one thread only) from now on.
  static void BindThisThread(boost::asio::io_context& ioc);
  // At most one wake-up pending per loop; at once off a bound thread.
  void Schedule();

 private:
  AuditSink& sink_;
};

}  // namespace kubegate
