// The listener and its workers: accepts connections (within the accept
// limits), makes each a Session on a worker thread, reloads the policy,
// runs the wake-up sweep, and shuts down gracefully. It owns every service
// a session uses (GatewayServices).
#include "net/gateway_server.h"

#include <chrono>
#include <csignal>
#include <thread>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include "accept/connection_limits.h"
#include "approval/hold_quota.h"
#include "approval/orphan_sessions.h"
#include "approval/review_stage.h"
#include "approval/wake_ups.h"
#include "audit/audit_sink.h"
#include "common/clock.h"
#include "common/k8s_status.h"
#include "common/limits.h"
#include "common/thread_name.h"
#include "net/audit_writer_wakes.h"
#include "net/await.h"
#include "net/gateway_services.h"
#include "net/session.h"
#include "net/tls_contexts.h"
#include "net/upstream_pool.h"
#include "identity/service_account_auth.h"
#include "net/gateway_client.h"
#include "net/webhook_notifier.h"

namespace kubegate {
namespace {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
using tcp = asio::ip::tcp;
using asio::awaitable;
using asio::use_awaitable;
using namespace asio::experimental::awaitable_operators;
using SteadyClock = std::chrono::steady_clock;

struct Worker {
  Worker(const UpstreamTarget& t, ssl::context& ctx) : pool(t, ctx) {}
  asio::io_context ioc{1};
  UpstreamPool pool;
  std::thread thread;
};

class ServerImpl final : public GatewayServer {
 public:
  ServerImpl(const Config& c, const UpstreamTarget& u, const ServingCert& cert, AuditWiring audit)
      : config_(c),
        upstream_(u),
        cert_(cert),
        admission_(c),
        upstream_token_(u.token_file, u.bearer_token),
        wiring_(std::move(audit)),
        sink_(wiring_.log ? static_cast<AuditSink&>(*wiring_.log) : null_sink_),
        audit_wakes_(sink_),
        audit_(sink_, SystemClock(), [this] { audit_wakes_.Schedule(); }),
        quota_(config_.approvals.max_held_per_caller, config_.approvals.max_held_total) {
    if (!config_.oidc.empty()) {
      oidc_ = std::make_unique<OidcAuthenticator>(config_.oidc, std::make_shared<NetHttpsGetter>(), SystemClock());
      admission_.SetOidc(oidc_.get());
    }
    if (wiring_.credential_cache) {
      admission_.SetRuntimeTokens(wiring_.credential_cache, SystemClock());
      // A revoked credential or a disabled user wakes the held requests and
      // streams under it (keys: CredentialCache::WakeKeys).
      wiring_.credential_cache->SetChangeListener([this](const std::vector<std::string>& ended) {
        for (const std::string& key : ended) wake_ups_.Notify(key);
      });
    }
    metrics_.SetInstance(StoreInstanceId());
    if (config_.service_accounts.enabled) {
      service_accounts_ = std::make_unique<ServiceAccountAuthenticator>(config_.service_accounts);
      admission_.SetServiceAccounts(service_accounts_.get(), SystemClock());
    }
    if (!config_.approvals.webhook_url.empty()) {
      notifier_ = std::make_unique<WebhookNotifier>(config_.approvals.webhook_url, config_.approvals.webhook_format);
    }
    if (wiring_.approvals) {
      review_.emplace(*wiring_.approvals, quota_, notifier_.get(), SystemClock());
      // Every committed change wakes whoever waits on it (on this process).
      wiring_.approvals->SetChangeListener([this](const std::string& id) { wake_ups_.Notify(id); });
    }
    services_.emplace(GatewayServices{config_,
                                      upstream_,
                                      SystemClock(),
                                      admission_,
                                      oidc_.get(),
                                      service_accounts_.get(),
                                      wiring_.credentials,
                                      wiring_.identities,
                                      wiring_.credential_cache,
                                      upstream_token_,
                                      audit_,
                                      store_thread_,
                                      wiring_.approvals,
                                      review_ ? &*review_ : nullptr,
                                      [this](const AuditApiRequest& r) { return RunAuditQuery(r); },
                                      notifier_.get(),
                                      wake_ups_,
                                      namespace_labels_,
                                      recording_writer_,
                                      metrics_,
                                      [this] { return Snapshot(); },
                                      inflight_,
                                      stopping_});
  }

  void WakeFromStore(std::string_view id) override {
    metrics_.store_wake_ups.Increment();
    wake_ups_.Notify(id);
  }

  ~ServerImpl() override {
    // Before the workers' io_contexts go: no refresh may resume a session.
    if (oidc_) oidc_->Stop();
    if (wiring_.credential_cache) wiring_.credential_cache->SetChangeListener(nullptr);
    store_thread_.join();
    if (wiring_.approvals) wiring_.approvals->SetChangeListener(nullptr);
  }

  Result<bool> Init() {
    auto server_ctx = MakeServerTlsContext(cert_.cert_file, cert_.key_file, config_.client_certs);
    if (!server_ctx) return server_ctx.error();
    server_ctx_ = std::move(*server_ctx);
    auto upstream_ctx = MakeUpstreamTlsContext(upstream_);
    if (!upstream_ctx) return upstream_ctx.error();
    upstream_ctx_ = std::move(*upstream_ctx);
    if (!upstream_.tls) return Error::BadRequest("kubegate forwards to the API server over HTTPS only");
    if (auto loaded = admission_.policy().Load(); !loaded) return loaded.error();
    return true;
  }

  Result<bool> Start() override {
    if (oidc_) oidc_->Start();  // fetches every issuer's keys now, then on schedule
    int n = std::max(1, config_.worker_threads);
    for (int i = 0; i < n; ++i) workers_.push_back(std::make_unique<Worker>(upstream_, *upstream_ctx_));
    boost::system::error_code ec;
    auto addr = asio::ip::make_address(config_.listen.address == "localhost" ? "127.0.0.1" : config_.listen.address, ec);
    if (ec) return Error::BadRequest("listen.address is not an IP address: " + config_.listen.address);
    tcp::endpoint ep(addr, static_cast<unsigned short>(config_.listen.port));
    acceptor_.emplace(workers_[0]->ioc);
    acceptor_->open(ep.protocol(), ec);
    if (!ec) acceptor_->set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_->bind(ep, ec);
    if (!ec) acceptor_->listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return Error::Internal("cannot listen on " + config_.listen.address + ":" +
                                   std::to_string(config_.listen.port) + ": " + ec.message());
    port_ = acceptor_->local_endpoint().port();
    asio::post(store_thread_, [] { NameThisThread("kg-store"); });
    signals_.emplace(workers_[0]->ioc, SIGTERM, SIGINT);
    signals_->async_wait([this](const boost::system::error_code& e, int) {
      if (!e) Stop();
    });
    // Policy reloads: SIGHUP forces one; the file is also checked each second.
    hup_.emplace(workers_[0]->ioc, SIGHUP);
    WaitForHup();
    asio::co_spawn(workers_[0]->ioc, WatchPolicyFile(), asio::detached);
    if (wiring_.approvals) asio::co_spawn(workers_[0]->ioc, SweepForWakeUps(), asio::detached);
    if (wiring_.approvals && config_.store.postgres.empty()) {
      // One process on SQLite: the recorded sessions still noted as open
      // were the previous process's; their recordings are ended now.
      asio::post(store_thread_, [this, svc = wiring_.approvals] {
        EndOrphanSessions(*svc, sink_, config_.RecordingDir(), SystemClock(), 0);
      });
    }
    if (wiring_.approvals && !config_.store.postgres.empty()) {
      asio::co_spawn(workers_[0]->ioc, HeartbeatAndReap(), asio::detached);
    }
    asio::co_spawn(workers_[0]->ioc, AcceptLoop(), asio::detached);
    for (std::size_t i = 0; i < workers_.size(); ++i) {
      auto& w = workers_[i];
      w->thread = std::thread([&ioc = w->ioc, i] {
        NameThisThread(("kg-worker-" + std::to_string(i)).c_str());
        AuditWriterWakes::BindThisThread(ioc);
        auto guard = asio::make_work_guard(ioc);
        ioc.run();
      });
    }
    return true;
  }

  std::uint16_t port() const override { return port_; }

  void Stop() override {
    asio::post(workers_[0]->ioc, [this] {
      if (stopping_.exchange(true)) return;
      // Held requests hand off to the other replicas (503, Retry-After).
      wake_ups_.Notify(kGatewayStoppingKey);
      spdlog::info("shutting down: listener closed, waiting up to {}s for {} in-flight requests",
                   config_.shutdown_grace_seconds, inflight_.load());
      boost::system::error_code ec;
      acceptor_->close(ec);
      if (signals_) signals_->cancel(ec);
      if (hup_) hup_->cancel(ec);
      asio::co_spawn(workers_[0]->ioc, DrainThenStop(), asio::detached);
    });
  }

  void Wait() override {
    for (auto& w : workers_) {
      if (w->thread.joinable()) w->thread.join();
    }
  }

 private:
  // Runs on the store thread only: the REST API's store connection is
  // opened there on first use and reused.
  AuditApiResponse RunAuditQuery(const AuditApiRequest& r) {
    if (!reader_store_) {
      if (!wiring_.open_reader) {
        return {503, "application/json", StatusJson(Error::Unavailable("audit log not enabled"))};
      }
      auto s = wiring_.open_reader();
      if (!s) return {503, "application/json", StatusJson(s.error())};
      reader_store_ = std::move(*s);
    }
    if (auto ok = reader_store_->EnsureConnected(); !ok) {
      return {503, "application/json", StatusJson(ok.error())};
    }
    return RunAuditApi(*reader_store_, r);
  }

  MetricsSnapshot Snapshot() const {
    MetricsSnapshot s;
    s.client_connections = connection_limits_.open();
    s.held_requests = quota_.held();
    s.audit_healthy = sink_.healthy();
    if (wiring_.log) {
      const AuditStats& a = wiring_.log->stats();
      s.audit_enabled = true;
      s.audit_committed = a.committed;
      s.audit_batches = a.batches;
      s.audit_failed_batches = a.failed_batches;
      s.audit_dropped = a.dropped;
      s.audit_checkpoints = a.checkpoints;
      s.audit_pruned = a.pruned;
      s.audit_queued = a.queued;
    }
    return s;
  }

  void ReloadPolicy(bool force) {
    ReloadOutcome r = admission_.policy().MaybeReload(force);
    if (r.changed) {
      metrics_.policy_reloads.Increment();
      spdlog::info("{}", r.message);
    } else if (r.refused) {
      metrics_.policy_reloads_refused.Increment();
      spdlog::error("{}", r.message);
    }
  }

  void WaitForHup() {
    hup_->async_wait([this](const boost::system::error_code& e, int) {
      if (e || stopping_) return;
      ReloadPolicy(true);
      WaitForHup();
    });
  }

  awaitable<void> WatchPolicyFile() {
    asio::steady_timer t(co_await asio::this_coro::executor);
    while (!stopping_) {
      t.expires_after(limits::kPolicyFileCheckInterval);
      co_await t.async_wait(asio::as_tuple(use_awaitable));
      if (!stopping_) ReloadPolicy(false);
    }
  }

  // The safety net behind WakeUps: changes another process made to the
  // shared store (two queries per sweep, however many wait). Nothing is
  // read while nobody waits.
  // Replicas on PostgreSQL: this one is alive, and the held requests of
  // replicas that are not are abandoned (never forwarded later).
  awaitable<void> HeartbeatAndReap() {
    asio::steady_timer t(co_await asio::this_coro::executor);
    ApprovalService* svc = wiring_.approvals;
    while (!stopping_) {
      auto beat = [this, svc] {
        (void)svc->Heartbeat();
        auto n = svc->AbandonOrphans(limits::kReplicaDeadAfter.count());
        // Their recorded sessions too: recordings ended, results written.
        EndOrphanSessions(*svc, sink_, config_.RecordingDir(), SystemClock(), limits::kReplicaDeadAfter.count());
        return n ? *n : 0;
      };
      int abandoned = co_await OnStoreThread<int>(store_thread_, beat);
      if (abandoned > 0) spdlog::warn("{} requests held by a gateway replica that stopped were marked abandoned", abandoned);
      t.expires_after(limits::kReplicaHeartbeat);
      co_await t.async_wait(asio::as_tuple(use_awaitable));
    }
  }

  awaitable<void> SweepForWakeUps() {
    asio::steady_timer t(co_await asio::this_coro::executor);
    ApprovalService* svc = wiring_.approvals;
    while (!stopping_) {
      t.expires_after(limits::kWakeUpSweepInterval);
      co_await t.async_wait(asio::as_tuple(use_awaitable));
      if (stopping_ || wake_ups_.size() == 0) continue;
      std::vector<std::string> watched = wake_ups_.Watched();
      // Approval requests and grants only: runtime identities' keys are
      // woken by the credential poller.
      std::erase_if(watched, [](const std::string& k) { return k.rfind("kg-", 0) != 0 && k.rfind("gr-", 0) != 0; });
      if (watched.empty()) continue;
      auto changed_among = [svc, &watched] { return svc->ChangedAmong(watched); };
      auto changed = co_await OnStoreThread<Result<std::vector<std::string>>>(store_thread_, changed_among);
      if (!changed) continue;
      for (const auto& id : *changed) wake_ups_.Notify(id);
    }
  }

  awaitable<void> AcceptLoop() {
    std::size_t next = 0;
    while (!stopping_) {
      Worker& w = *workers_[next++ % workers_.size()];
      boost::system::error_code ec;
      tcp::socket sock = co_await acceptor_->async_accept(w.ioc, asio::redirect_error(use_awaitable, ec));
      if (ec) {
        if (stopping_ || ec == asio::error::operation_aborted) break;
        spdlog::warn("accept failed: {}", ec.message());
        continue;
      }
      std::string peer = sock.remote_endpoint(ec).address().to_string();
      // Stage: accept. Over a cap the connection is closed before anything
      // is spent on it (no handshake, no session).
      auto ticket = connection_limits_.Admit(peer);
      if (!ticket) {
        metrics_.rejected_connections.Increment();
        sock.close(ec);
        if (!rejected_logged_.exchange(true)) {
          spdlog::warn("{} (further refusals counted, not logged)", ticket.error().message);
        }
        continue;
      }
      sock.set_option(tcp::no_delay(true), ec);
      asio::co_spawn(w.ioc, RunSession(w, std::move(sock), std::move(peer), *ticket), asio::detached);
    }
  }

  // A connection costs only its socket and this frame until the client
  // speaks: the TLS state (OpenSSL's SSL object, about 14 KiB) is made
  // when the ClientHello is there to read. Silent ones go after the head
  // timeout, as a slow client does.
  awaitable<void> RunSession(Worker& w, tcp::socket sock, std::string peer,
                             std::shared_ptr<ConnectionLimits::Ticket> ticket) {
    if (config_.listen.plain_http) {
      ServeSession(std::make_shared<Session>(*services_, w.pool, NetStream::Plain(std::move(sock)), std::move(peer)),
                   std::move(ticket));
      co_return;
    }
    asio::steady_timer quiet(co_await asio::this_coro::executor, limits::kRequestHeadTimeout);
    auto which = co_await (sock.async_wait(tcp::socket::wait_read, asio::as_tuple(use_awaitable)) ||
                           quiet.async_wait(asio::as_tuple(use_awaitable)));
    if (which.index() == 1 || std::get<0>(std::get<0>(which))) co_return;  // said nothing in time, or broke
    ServeSession(std::make_shared<Session>(*services_, w.pool, NetStream::TlsServer(std::move(sock), *server_ctx_),
                                           std::move(peer)),
                 std::move(ticket));  // the ticket is held until the session ends
  }

  awaitable<void> DrainThenStop() {
    asio::steady_timer t(co_await asio::this_coro::executor);
    auto deadline = SteadyClock::now() + std::chrono::seconds(config_.shutdown_grace_seconds);
    while (inflight_.load() > 0 && SteadyClock::now() < deadline) {
      t.expires_after(std::chrono::milliseconds(20));
      co_await t.async_wait(asio::as_tuple(use_awaitable));
    }
    spdlog::info("shutdown complete ({} requests still in flight were cut)", inflight_.load());
    for (auto& w : workers_) w->ioc.stop();
  }

  Config config_;
  ConnectionLimits connection_limits_{config_.listen.max_connections, config_.listen.max_connections_per_source};
  std::atomic<bool> rejected_logged_{false};
  UpstreamTarget upstream_;
  ServingCert cert_;
  Admission admission_;
  std::unique_ptr<OidcAuthenticator> oidc_;  // null: no oidc: issuers
  std::unique_ptr<ServiceAccountAuthenticator> service_accounts_;  // null: not enabled
  TokenSource upstream_token_;
  AuditWiring wiring_;
  NullAuditSink null_sink_;
  AuditSink& sink_;
  AuditWriterWakes audit_wakes_;
  RequestAudit audit_;
  GatewayMetrics metrics_;
  HoldQuota quota_;
  WakeUps wake_ups_;
  std::unique_ptr<WebhookNotifier> notifier_;
  std::optional<ReviewStage> review_;
  asio::thread_pool store_thread_{1};  // named kg-store by its first task (Start)
  std::unique_ptr<AuditStore> reader_store_;  // store thread only
  NamespaceLabelCache namespace_labels_{std::chrono::milliseconds(limits::kNamespaceLabelTtl).count(),
                                        limits::kNamespaceLabelCacheEntries};
  std::unique_ptr<ssl::context> server_ctx_;
  std::unique_ptr<ssl::context> upstream_ctx_;
  std::atomic<int> inflight_{0};
  std::atomic<bool> stopping_{false};
  std::vector<std::unique_ptr<Worker>> workers_;
  // Formats, hashes and writes session recordings off the relay's threads.
  // Declared after workers_: destroyed (its queue run) while they exist.
  RecordingWriter recording_writer_;
  std::optional<GatewayServices> services_;  // made last, in the constructor
  std::optional<tcp::acceptor> acceptor_;
  std::optional<asio::signal_set> signals_;
  std::optional<asio::signal_set> hup_;
  std::uint16_t port_ = 0;
};

}  // namespace

Result<std::unique_ptr<GatewayServer>> GatewayServer::Create(const Config& config, const UpstreamTarget& upstream,
                                                             const ServingCert& cert, AuditWiring audit) {
  auto s = std::make_unique<ServerImpl>(config, upstream, cert, std::move(audit));
  auto ok = s->Init();
  if (!ok) return ok.error();
  return std::unique_ptr<GatewayServer>(std::move(s));
}

}  // namespace kubegate
