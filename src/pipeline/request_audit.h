// RequestAudit: the audit records of one request, made from its
// RequestContext and submitted to an AuditSink. Two records per request:
// the decision (committed before anything is forwarded) and the result.
//
//   RequestAudit audit(sink, clock);
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
  AuditSink& sink_;
  const Clock& clock_;
};

// The upstream identity as the record keeps it: repeated headers joined by
// commas, without the request id (the record has it).
std::map<std::string, std::string> IdentityForRecord(const std::vector<std::pair<std::string, std::string>>& headers);

}  // namespace kubegate
