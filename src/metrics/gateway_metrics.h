// GatewayMetrics: what the gateway counts, served at /metrics in the
// Prometheus text format (prometheus-cpp's registry and serializer).
//
//   GatewayMetrics m;
//   m.requests.Increment();
//   m.Count(Refusal::kUnauthenticated);
//   std::string text = m.Scrape(snapshot);   // gauges from `snapshot` first
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>

#include "metrics/latency_buckets.h"
#include "pipeline/request_context.h"

namespace prometheus {
class Histogram;
class Registry;
}

namespace kubegate {

// Values owned elsewhere, read at each scrape.
struct MetricsSnapshot {
  std::uint64_t client_connections = 0;
  std::int64_t held_requests = 0;
  bool audit_enabled = false;
  std::uint64_t audit_committed = 0, audit_batches = 0, audit_failed_batches = 0, audit_dropped = 0,
                audit_checkpoints = 0, audit_pruned = 0, audit_queued = 0;
  bool audit_healthy = true;
};

class GatewayMetrics {
 public:
  GatewayMetrics();
  ~GatewayMetrics();
  GatewayMetrics(const GatewayMetrics&) = delete;
  GatewayMetrics& operator=(const GatewayMetrics&) = delete;

  // The refusal's own counter (none for Refusal::kNone).
  void Count(Refusal r);
  // kubegate_authentication_failures_total{reason}: `reason` is one of the
  // authenticators' fixed labels (identity/authenticator.h), never input.
  void CountAuthenticationFailure(const std::string& reason);
  // A review ended: kubegate_review_outcomes_total{outcome} and the time the
  // request was held, kubegate_review_wait_seconds{outcome}. `outcome` is
  // one of kubegate's fixed words (approved, denied, expired, withdrawn,
  // abandoned, handed_off, refused), never input.
  void CountReviewOutcome(const std::string& outcome, double waited_seconds);
  // How long a request waited for its decision record to be committed
  // (kubegate_audit_commit_seconds): what the audit adds before forwarding.
  // Lock-free (LatencyBuckets); the histogram is brought up to date at scrape.
  void ObserveAuditCommit(double seconds);
  // This replica's instance id among the replicas (kubegate_instance_info).
  void SetInstance(const std::string& instance_id);
  std::string Scrape(const MetricsSnapshot& s);

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>* auth_failures_ = nullptr;
  prometheus::Family<prometheus::Counter>* review_outcomes_ = nullptr;
  prometheus::Family<prometheus::Histogram>* review_wait_ = nullptr;
  prometheus::Family<prometheus::Gauge>* instance_info_ = nullptr;
  prometheus::Histogram* audit_commit_ = nullptr;
  // Observed per forwarded request without a lock; exported at each scrape.
  std::unique_ptr<LatencyBuckets> audit_commit_buckets_;

 public:
  prometheus::Counter& requests;
  prometheus::Counter& rejected_connections;
  prometheus::Counter& rejected_bad_request;
  prometheus::Counter& rejected_unauthenticated;
  prometheus::Counter& rejected_forbidden;
  prometheus::Counter& upstream_errors;
  prometheus::Counter& upgrades;
  prometheus::Counter& reviews;
  prometheus::Counter& approved_forwarded;
  prometheus::Counter& review_refused;
  prometheus::Counter& policy_reloads;
  prometheus::Counter& policy_reloads_refused;
  prometheus::Counter& sessions_closed_by_grant;
  prometheus::Counter& sessions_ended_with_status;
  prometheus::Counter& recording_failures;
  prometheus::Counter& audit_fail_closed;
  prometheus::Counter& store_wake_ups;

 private:
  prometheus::Gauge& client_connections_;
  prometheus::Gauge& held_requests_;
  prometheus::Counter& audit_committed_;
  prometheus::Counter& audit_batches_;
  prometheus::Counter& audit_failed_batches_;
  prometheus::Counter& audit_dropped_;
  prometheus::Counter& audit_checkpoints_;
  prometheus::Counter& audit_pruned_;
  prometheus::Gauge& audit_queue_depth_;
  prometheus::Gauge& audit_store_healthy_;
};

}  // namespace kubegate
