// GatewayServer: the network layer. Accepts HTTPS (or loopback plain HTTP)
// connections from kubectl, runs each request through the admission stages
// (pipeline/admission.h), forwards it to the API server with the gateway's
// own credential and the caller's identity as impersonation, and relays
// the response or the upgraded stream. Asio/Beast stay inside the .cc.
//
//   auto server = GatewayServer::Create(config, upstream, pki);
//   if (!server) { ...; }
//   (*server)->Start();                 // binds; port() is known now
//   (*server)->Wait();                  // until SIGTERM/SIGINT or Stop()
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "approval/approval.h"
#include "audit/audit_log.h"
#include "common/result.h"
#include "config/config.h"
#include "upstream/upstream_target.h"

namespace kubegate {

struct ServingCert {
  std::string cert_file;
  std::string key_file;
};

// Counts kept by the gateway; served at /metrics in the Prometheus text
// format.
struct GatewayCounters {
  std::atomic<std::uint64_t> requests{0};
  std::atomic<std::uint64_t> rejected_bad_request{0};      // 400, 413, 431
  std::atomic<std::uint64_t> rejected_unauthenticated{0};  // 401
  std::atomic<std::uint64_t> rejected_forbidden{0};        // 403
  std::atomic<std::uint64_t> upstream_errors{0};           // 502, 503
  std::atomic<std::uint64_t> upgrades{0};
  std::atomic<std::uint64_t> audit_fail_closed{0};         // 503: decision not committed
  std::atomic<std::uint64_t> reviews{0};                   // requests a review rule matched
  std::atomic<std::uint64_t> held_now{0};                  // requests waiting for approval
  std::atomic<std::uint64_t> approved_forwarded{0};        // forwarded after approval or under a grant
  std::atomic<std::uint64_t> review_refused{0};            // denied, expired, withdrawn or answered at once
  std::atomic<std::uint64_t> policy_reloads{0};
  std::atomic<std::uint64_t> policy_reloads_refused{0};
  std::atomic<std::uint64_t> sessions_closed_by_grant{0};  // exec/attach/port-forward ended at grant expiry/revocation
  std::atomic<std::uint64_t> sessions_ended_with_status{0};  // ... of which kubectl was told why (a Status)
  std::atomic<std::uint64_t> rejected_connections{0};  // closed at accept: over listen.max_connections(_per_source)
  std::atomic<std::uint64_t> recording_failures{0};  // sessions whose recording could not start or be written
};

// The audit and approval stages' collaborators. `log` may be null only
// when audit was switched off for a benchmark (serve --bench-disable-audit).
struct AuditWiring {
  AuditLog* log = nullptr;
  // Opens a store connection for the REST API's reader thread.
  std::function<Result<std::unique_ptr<Store>>()> open_reader;
  // Used only on the gateway's store thread (held requests, the approvals
  // API). Null: review rules cannot be served (requests get a 503).
  ApprovalService* approvals = nullptr;
};

class GatewayServer {
 public:
  static Result<std::unique_ptr<GatewayServer>> Create(const Config& config, const UpstreamTarget& upstream,
                                                       const ServingCert& cert, AuditWiring audit);
  virtual ~GatewayServer() = default;

  // Binds the listener and starts the worker threads.
  virtual Result<bool> Start() = 0;
  virtual std::uint16_t port() const = 0;
  // Blocks until a graceful shutdown (SIGTERM, SIGINT or Stop()) completes:
  // the listener closes at once, in-flight requests get up to
  // shutdown_grace_seconds to finish.
  virtual void Wait() = 0;
  virtual void Stop() = 0;
  virtual const GatewayCounters& counters() const = 0;
};

}  // namespace kubegate
