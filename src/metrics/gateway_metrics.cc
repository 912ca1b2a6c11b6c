#include "metrics/gateway_metrics.h"

#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

namespace kubegate {

namespace {

prometheus::Counter& NewCounter(prometheus::Registry& r, const char* name, const char* help) {
  return prometheus::BuildCounter().Name(name).Help(help).Register(r).Add({});
}
prometheus::Gauge& NewGauge(prometheus::Registry& r, const char* name, const char* help) {
  return prometheus::BuildGauge().Name(name).Help(help).Register(r).Add({});
}

// Counters kept by another component as plain totals: moved up to it.
void CatchUp(prometheus::Counter& c, std::uint64_t total) {
  const double now = static_cast<double>(total);
  if (now > c.Value()) c.Increment(now - c.Value());
}

}  // namespace

GatewayMetrics::GatewayMetrics()
    : registry_(std::make_shared<prometheus::Registry>()),
      requests(NewCounter(*registry_, "kubegate_requests_total", "Requests received.")),
      rejected_connections(NewCounter(
          *registry_, "kubegate_connections_rejected_total",
          "Client connections closed at accept: over listen.max_connections or max_connections_per_source.")),
      rejected_bad_request(NewCounter(*registry_, "kubegate_rejected_bad_request_total",
                                      "Requests refused as malformed or too large.")),
      rejected_unauthenticated(NewCounter(*registry_, "kubegate_rejected_unauthenticated_total",
                                          "Requests refused for missing or bad credentials.")),
      rejected_forbidden(
          NewCounter(*registry_, "kubegate_rejected_forbidden_total", "Requests refused by kubegate's decision.")),
      upstream_errors(NewCounter(*registry_, "kubegate_upstream_errors_total",
                                 "Requests that could not reach the API server.")),
      upgrades(NewCounter(*registry_, "kubegate_upgrades_total",
                          "Upgraded streams relayed (exec, attach, port-forward).")),
      reviews(NewCounter(*registry_, "kubegate_reviews_total", "Requests a review rule matched.")),
      approved_forwarded(NewCounter(*registry_, "kubegate_review_forwarded_total",
                                    "Reviewed requests forwarded after approval or under a grant.")),
      review_refused(NewCounter(*registry_, "kubegate_review_refused_total",
                                "Reviewed requests denied, expired, withdrawn or answered at once.")),
      policy_reloads(NewCounter(*registry_, "kubegate_policy_reloads_total", "Policy reloads that took effect.")),
      policy_reloads_refused(NewCounter(*registry_, "kubegate_policy_reloads_refused_total",
                                        "Policy files that changed but did not validate.")),
      sessions_closed_by_grant(NewCounter(*registry_, "kubegate_sessions_closed_by_grant_total",
                                          "Streams ended because their grant expired or was revoked.")),
      sessions_ended_with_status(
          NewCounter(*registry_, "kubegate_sessions_ended_with_status_total",
                     "Sessions kubegate ended that were told why with a Status on the exec error channel.")),
      recording_failures(NewCounter(*registry_, "kubegate_recording_failures_total",
                                    "Sessions whose recording could not start or could not be written.")),
      audit_fail_closed(NewCounter(*registry_, "kubegate_audit_fail_closed_total",
                                   "Requests refused with 503 because their decision record could not be committed.")),
      store_wake_ups(NewCounter(*registry_, "kubegate_store_wake_ups_total",
                                "Approval and grant changes another replica announced through the store "
                                "(PostgreSQL NOTIFY), each waking the requests here that wait on it.")),
      client_connections_(NewGauge(*registry_, "kubegate_client_connections", "Client connections open now.")),
      held_requests_(NewGauge(*registry_, "kubegate_held_requests", "Requests waiting for approval now.")),
      audit_committed_(NewCounter(*registry_, "kubegate_audit_entries_committed_total", "Audit chain entries committed.")),
      audit_batches_(NewCounter(*registry_, "kubegate_audit_batches_total", "Group commits of the audit log.")),
      audit_failed_batches_(NewCounter(*registry_, "kubegate_audit_commit_failures_total",
                                       "Audit group commits the store refused.")),
      audit_dropped_(NewCounter(*registry_, "kubegate_audit_entries_dropped_total",
                                "Audit entries of requests kubegate answered itself that were given up (queue full).")),
      audit_checkpoints_(
          NewCounter(*registry_, "kubegate_audit_checkpoints_total", "Signed audit checkpoints written.")),
      audit_pruned_(NewCounter(*registry_, "kubegate_audit_entries_pruned_total", "Audit entries removed by retention.")),
      audit_queue_depth_(NewGauge(*registry_, "kubegate_audit_queue_depth", "Audit entries waiting for the writer.")),
      audit_store_healthy_(NewGauge(*registry_, "kubegate_audit_store_healthy",
                                    "1 when the last audit commit succeeded.")) {
  review_outcomes_ = &prometheus::BuildCounter()
                          .Name("kubegate_review_outcomes_total")
                          .Help("Reviewed requests by how their review ended on this replica (approved = forwarded).")
                          .Register(*registry_);
  review_wait_ = &prometheus::BuildHistogram()
                      .Name("kubegate_review_wait_seconds")
                      .Help("How long reviewed requests were held before their outcome (time to decision).")
                      .Register(*registry_);
  instance_info_ = &prometheus::BuildGauge()
                        .Name("kubegate_instance_info")
                        .Help("1, labelled with this replica's instance id (gateway_instance, approval_holder).")
                        .Register(*registry_);
  const prometheus::Histogram::BucketBoundaries commit_bounds{0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01,
                                                              0.02,   0.05,   0.1,   0.25,  1};
  audit_commit_ = &prometheus::BuildHistogram()
                       .Name("kubegate_audit_commit_seconds")
                       .Help("Time from queuing a request's decision record to its commit, before forwarding.")
                       .Register(*registry_)
                       .Add({}, commit_bounds);
  audit_commit_buckets_ = std::make_unique<LatencyBuckets>(commit_bounds);
  auth_failures_ = &prometheus::BuildCounter()
                        .Name("kubegate_authentication_failures_total")
                        .Help("Requests refused at authentication, by reason (expired, bad_signature, ...).")
                        .Register(*registry_);
}

void GatewayMetrics::CountAuthenticationFailure(const std::string& reason) {
  auth_failures_->Add({{"reason", reason.empty() ? "other" : reason}}).Increment();
}

void GatewayMetrics::CountReviewOutcome(const std::string& outcome, double waited_seconds) {
  review_outcomes_->Add({{"outcome", outcome}}).Increment();
  static const prometheus::Histogram::BucketBoundaries kWait{0.05, 0.1, 0.5, 1, 5, 15, 30, 60, 120, 300, 900, 3600};
  review_wait_->Add({{"outcome", outcome}}, kWait).Observe(waited_seconds);
}

void GatewayMetrics::ObserveAuditCommit(double seconds) { audit_commit_buckets_->Observe(seconds); }

void GatewayMetrics::SetInstance(const std::string& instance_id) {
  instance_info_->Add({{"instance", instance_id}}).Set(1);
}

GatewayMetrics::~GatewayMetrics() = default;

void GatewayMetrics::Count(Refusal r) {
  switch (r) {
    case Refusal::kNone: break;
    case Refusal::kBadRequest: rejected_bad_request.Increment(); break;
    case Refusal::kUnauthenticated: rejected_unauthenticated.Increment(); break;
    case Refusal::kForbidden: rejected_forbidden.Increment(); break;
    case Refusal::kUpstream: upstream_errors.Increment(); break;
    case Refusal::kRecording: recording_failures.Increment(); break;
    case Refusal::kAuditFailClosed: audit_fail_closed.Increment(); break;
    case Refusal::kReview: break;  // review_refused: counted by the hold stage, with review_forwarded
  }
}

std::string GatewayMetrics::Scrape(const MetricsSnapshot& s) {
  {
    LatencyBuckets::Taken t = audit_commit_buckets_->Take();
    audit_commit_->ObserveMultiple(t.bucket_increments, t.sum_seconds);
  }
  client_connections_.Set(static_cast<double>(s.client_connections));
  held_requests_.Set(static_cast<double>(s.held_requests));
  if (s.audit_enabled) {
    CatchUp(audit_committed_, s.audit_committed);
    CatchUp(audit_batches_, s.audit_batches);
    CatchUp(audit_failed_batches_, s.audit_failed_batches);
    CatchUp(audit_dropped_, s.audit_dropped);
    CatchUp(audit_checkpoints_, s.audit_checkpoints);
    CatchUp(audit_pruned_, s.audit_pruned);
    audit_queue_depth_.Set(static_cast<double>(s.audit_queued));
  }
  audit_store_healthy_.Set(s.audit_healthy ? 1 : 0);
  return prometheus::TextSerializer().Serialize(registry_->Collect());
}

}  // namespace kubegate
