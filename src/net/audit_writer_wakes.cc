#include "net/audit_writer_wakes.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

namespace kubegate {
namespace {

struct ThreadLoop {
  boost::asio::io_context* ioc = nullptr;
  bool wake_posted = false;
};
thread_local ThreadLoop this_thread_loop;

}  // namespace

void AuditWriterWakes::BindThisThread(boost::asio::io_context& ioc) { this_thread_loop.ioc = &ioc; }

void AuditWriterWakes::Schedule() {
  ThreadLoop& loop = this_thread_loop;
  if (!loop.ioc) {
    sink_.WakeWriter();
    return;
  }
  if (loop.wake_posted) return;
  loop.wake_posted = true;
  // Runs on this same thread (the loop's only one), after what is ready now.
  boost::asio::post(*loop.ioc, [this] {
    this_thread_loop.wake_posted = false;
    sink_.WakeWriter();
  });
}

}  // namespace kubegate
