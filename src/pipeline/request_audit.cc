#include "pipeline/request_audit.h"

#include "forward/header_rewrite.h"

namespace kubegate {

std::map<std::string, std::string> IdentityForRecord(const std::vector<std::pair<std::string, std::string>>& headers) {
  std::map<std::string, std::string> out;
  for (const auto& [n, v] : headers) {
    if (IsRequestIdExtraHeader(n)) continue;
    auto [it, fresh] = out.emplace(n, v);
    if (!fresh) it->second += "," + v;
  }
  return out;
}

DecisionFacts RequestAudit::FactsOf(const RequestContext& ctx) {
  DecisionFacts f;
  f.request_id = ctx.request_id;
  f.received_ms = ctx.received_ms;
  f.who = ctx.who ? &*ctx.who : nullptr;
  f.source = ctx.source;
  f.method = ctx.method;
  f.target = ctx.target;
  f.user_agent = ctx.user_agent;
  f.kubectl_command = ctx.kubectl_command;
  f.kubectl_session = ctx.kubectl_session;
  f.info = ctx.info ? &*ctx.info : nullptr;
  f.action = ctx.action;
  f.rule = ctx.rule;
  f.message = ctx.message;
  f.approval = ctx.approval;
  f.identity_change = ctx.identity_change;
  if (ctx.recording) f.recording_id = ctx.request_id;
  f.namespace_labels = ctx.namespace_labels;
  f.request_body = ctx.recorded_body;
  f.impersonated = IdentityForRecord(ctx.upstream_identity);
  return f;
}

bool RequestAudit::Submit(AuditEntry entry, AuditSink::Done done) {
  if (!schedule_wake_) return sink_.Submit(std::move(entry), std::move(done));
  bool queued = sink_.SubmitLater(std::move(entry), std::move(done));
  if (queued) schedule_wake_();
  return queued;
}

void RequestAudit::CommitDecision(const RequestContext& ctx, std::function<void(std::string)> done) {
  if (!sink_.keeps_entries()) {
    done("");
    return;
  }
  auto entry = BuildDecisionEntry(FactsOf(ctx));
  if (!entry) {
    done("kubegate could not build the audit record: " + entry.error().message);
    return;
  }
  // `done` is shared: the sink either calls the callback or refuses it.
  auto shared = std::make_shared<std::function<void(std::string)>>(std::move(done));
  bool queued = Submit(std::move(*entry), [shared](const Result<bool>& r) {
    (*shared)(r ? std::string() : r.error().message);
  });
  if (!queued) (*shared)("kubegate's audit queue is full, so the request was not forwarded; try again shortly");
}

void RequestAudit::RecordResult(const RequestContext& ctx, const Outcome& o, const std::string& error) {
  if (!sink_.keeps_entries()) return;
  ResultFacts r;
  r.request_id = ctx.request_id;
  r.completed_ms = clock_.NowMillis();
  r.status = o.status;
  r.bytes_in = o.bytes_in;
  r.bytes_out = o.bytes_out;
  r.duration_ms = r.completed_ms - ctx.received_ms;
  r.error = error;
  r.recording = o.recording;
  if (auto entry = BuildResultEntry(r)) Submit(std::move(*entry));
}

void RequestAudit::RecordAnswered(const RequestContext& ctx, const Outcome& o, const std::string& error) {
  if (!sink_.keeps_entries()) return;
  if (auto entry = BuildDecisionEntry(FactsOf(ctx))) Submit(std::move(*entry));
  RecordResult(ctx, o, error);
}

}  // namespace kubegate
