// RequestAudit: the audit records of one request, made from its
// RequestContext and submitted to an AuditSink. Two records per request:
// the decision (committed before anything is forwarded) and the result.
//
//   RequestAudit audit(sink, clock);             // or (sink, clock, schedule_wake): see below
//   audit.CommitDecision(ctx, [](std::string not_committed) { ... });  // "" once durable
//   audit.RecordResult(ctx, outcome, error);      // after a committed decision
//   audit.RecordAnswered(ctx, outcome, error);    // kubegate answered: both records
#pragma once

#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "audit/audit_record.h"
#include "audit/audit_sink.h"
#include "common/clock.h"
#include "pipeline/request_context.h"

namespace kubegate {

class RequestAudit {
 public:
  RequestAudit(AuditSink& sink, const Clock& clock) : sink_(sink), clock_(clock) {}
  // Entries are submitted without waking the sink's writer, and
  // `schedule_wake` is called after each: it must see to one
  // AuditSink::WakeWriter() soon (a worker: after the handlers ready on its
  // event loop), so the entries of one turn are one group commit.
  RequestAudit(AuditSink& sink, const Clock& clock, std::function<void()> schedule_wake)
      : sink_(sink), clock_(clock), schedule_wake_(std::move(schedule_wake)) {}

  // `done` gets "" once the decision record is durably committed, or why
  // it was not (the request must then not be forwarded). It runs on any
  // thread, possibly inside this call.
  void CommitDecision(const RequestContext& ctx, std::function<void(std::string)> done);
  // Not waited for.
  void RecordResult(const RequestContext& ctx, const Outcome& o, const std::string& error);
  void RecordAnswered(const RequestContext& ctx, const Outcome& o, const std::string& error);

  bool healthy() const { return sink_.healthy(); }

  // The decision record's facts; its pointers point into `ctx`.
  static DecisionFacts FactsOf(const RequestContext& ctx);

 private:
  bool Submit(AuditEntry entry, AuditSink::Done done = nullptr);

  AuditSink& sink_;
  const Clock& clock_;
  std::function<void()> schedule_wake_;  // empty: each Submit wakes the writer
};

// The upstream identity as the record keeps it: repeated headers joined by
// commas, without the request id (the record has it).
std::map<std::string, std::string> IdentityForRecord(const std::vector<std::pair<std::string, std::string>>& headers);

}  // namespace kubegate
