// GatewayServices: what a session uses of the gateway, named one by one
// (the server owns each). Sessions reach nothing else: no policy, approval,
// audit or recording logic lives in net/, only calls into those modules.
#pragma once

#include <atomic>
#include <functional>

#include <boost/asio/thread_pool.hpp>

#include "approval/approval.h"
#include "approval/approval_events.h"
#include "approval/review_stage.h"
#include "approval/wake_ups.h"
#include "audit/audit_api.h"
#include "common/limits.h"
#include "config/config.h"
#include "metrics/gateway_metrics.h"
#include "pipeline/admission.h"
#include "pipeline/request_audit.h"
#include "policy/namespace_labels.h"
#include "recording/recording_tap.h"
#include "upstream/token_source.h"
#include "upstream/upstream_target.h"

namespace kubegate {

class CredentialCache;
class CredentialStore;
class IdentityStore;
class OidcAuthenticator;
class ServiceAccountAuthenticator;

struct GatewayServices {
  const Config& config;
  const UpstreamTarget& upstream;
  const Clock& clock;
  Admission& admission;
  OidcAuthenticator* oidc;  // null: no OIDC issuers configured
  ServiceAccountAuthenticator* service_accounts;  // null: service_accounts.enabled is false
  CredentialStore* credentials;                   // store thread only; null: no task tokens
  IdentityStore* identities;                      // store thread only; null: no runtime identities
  CredentialCache* credential_cache;              // any thread; null: no runtime credentials
  TokenSource& upstream_token;
  RequestAudit& audit;
  // The store thread: approval and audit-query work runs there, one at a
  // time, so the store connections it uses need no locking.
  boost::asio::thread_pool& store_thread;
  // Store thread only. Null: no approvals (review rules answer 503).
  ApprovalService* approvals;
  ReviewStage* review;
  // Store thread only: an audit REST API query.
  std::function<AuditApiResponse(const AuditApiRequest&)> audit_query;
  ApprovalEvents* events;  // may be null
  WakeUps& wake_ups;
  NamespaceLabelCache& namespace_labels;
  RecordingWriter& recording_writer;
  GatewayMetrics& metrics;
  std::function<MetricsSnapshot()> metrics_snapshot;
  std::atomic<int>& inflight;
  std::atomic<bool>& stopping;

  std::size_t max_body() const {
    return config.max_request_body_bytes ? config.max_request_body_bytes : limits::kMaxRequestBodyBytes;
  }
  std::size_t max_head() const {
    return config.max_request_head_bytes ? config.max_request_head_bytes : limits::kMaxRequestHeadBytes;
  }
};

}  // namespace kubegate
