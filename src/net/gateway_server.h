// GatewayServer: the network layer's face. Accepts HTTPS (or loopback plain
// HTTP) connections from kubectl and serves each as a Session
// (net/session.h), which runs every request through the stages. Asio and
// Beast stay inside net/'s .cc files and net-only headers.
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
#include "credentials/credential_store.h"
#include "credentials/identity_store.h"
#include "upstream/upstream_target.h"

namespace kubegate {

struct ServingCert {
  std::string cert_file;
  std::string key_file;
};

// The audit and approval stages' collaborators. `log` may be null only
// when audit was switched off for a benchmark (serve --bench-disable-audit).
struct AuditWiring {
  AuditLog* log = nullptr;
  // Opens a store connection for the REST API's reader thread.
  std::function<Result<std::unique_ptr<AuditStore>>()> open_reader;
  // Used only on the gateway's store thread (held requests, the approvals
  // API). Null: review rules cannot be served (requests get a 503).
  ApprovalService* approvals = nullptr;
  // Runtime credentials and identities: the stores (store thread only; the
  // REST API) and the cache the authenticate stage reads (kept current by
  // a poller). Null: off.
  CredentialStore* credentials = nullptr;
  IdentityStore* identities = nullptr;
  CredentialCache* credential_cache = nullptr;
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
  // Another replica changed approval request or grant `id` (its NOTIFY):
  // wakes whoever waits on it here. Any thread.
  virtual void WakeFromStore(std::string_view id) = 0;
};

}  // namespace kubegate
