// The request flow, in the order each request meets it (see
// docs/architecture.md):
//   accept/TLS -> HTTP head parse -> authenticate -> classify -> decide
//   -> forward with impersonation -> relay response or upgraded stream -> log
// Session::HandleRequest below is the one place that wires these stages.
#include "net/gateway_server.h"

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <chrono>
#include <csignal>
#include <deque>
#include <filesystem>
#include <thread>
#include <vector>

#include <boost/asio.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "approval/approval_api.h"
#include "approval/dry_run_request.h"
#include "common/digest.h"
#include "accept/connection_limits.h"
#include "relay/session_end.h"
#include "audit/audit_api.h"
#include "audit/audit_record.h"
#include "classify/request_info_json.h"
#include "common/clock.h"
#include "common/k8s_status.h"
#include "common/limits.h"
#include "forward/header_rewrite.h"
#include "identity/authenticator.h"
#include "net/http_framing.h"
#include "net/webhook_notifier.h"
#include "pipeline/admission.h"
#include "policy/namespace_labels.h"
#include "recording/recording_tap.h"
#include "upstream/token_source.h"

namespace kubegate {
namespace {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;
using asio::awaitable;
using asio::use_awaitable;
using namespace asio::experimental::awaitable_operators;

using TlsStream = beast::ssl_stream<beast::tcp_stream>;
using Clock = std::chrono::steady_clock;

auto Redirect(beast::error_code& ec) { return asio::redirect_error(use_awaitable, ec); }

// Suspends the coroutine until `launch` calls the resume function it is
// given (exactly once, from any thread) with a T; resumes on the
// coroutine's own executor. Bridges the audit writer and the store reader,
// which run on their own threads, into the request's coroutine.
template <typename T, typename Launch>
awaitable<T> AwaitResume(Launch launch) {
  auto ex = co_await asio::this_coro::executor;
  co_return co_await asio::async_initiate<decltype(use_awaitable), void(T)>(
      [ex, &launch](auto handler) {
        auto h = std::make_shared<decltype(handler)>(std::move(handler));
        std::function<void(T)> resume = [h, ex](T value) {
          asio::post(ex, [h, v = std::move(value)]() mutable { std::move(*h)(std::move(v)); });
        };
        launch(std::move(resume));
      },
      use_awaitable);
}

// ---------------------------------------------------------------------------
// Upstream connections: one pool per worker thread, so no locking.

struct UpstreamConn {
  explicit UpstreamConn(asio::any_io_executor ex, ssl::context& ctx) : stream(ex, ctx) {}
  TlsStream stream;
  beast::flat_buffer buffer;
  Clock::time_point idle_since;
};

class UpstreamPool {
 public:
  UpstreamPool(const UpstreamTarget& target, ssl::context& ctx) : target_(target), ctx_(ctx) {}

  // A pooled connection that still looks alive, or a fresh one.
  awaitable<Result<std::unique_ptr<UpstreamConn>>> Acquire(bool& reused) {
    auto now = Clock::now();
    while (!idle_.empty()) {
      auto c = std::move(idle_.back());
      idle_.pop_back();
      if (now - c->idle_since < std::chrono::seconds(50) && StillOpen(*c)) {
        reused = true;
        co_return std::move(c);
      }
    }
    reused = false;
    co_return co_await Connect();
  }

  awaitable<Result<std::unique_ptr<UpstreamConn>>> Connect() {
    auto ex = co_await asio::this_coro::executor;
    auto c = std::make_unique<UpstreamConn>(ex, ctx_);
    beast::error_code ec;
    tcp::resolver resolver(ex);
    auto endpoints = co_await resolver.async_resolve(target_.host, target_.port, Redirect(ec));
    if (ec) co_return Error::Unavailable("upstream " + target_.host + " cannot be resolved: " + ec.message());
    auto& tcp_layer = beast::get_lowest_layer(c->stream);
    tcp_layer.expires_after(limits::kUpstreamConnectTimeout);
    co_await tcp_layer.async_connect(endpoints, Redirect(ec));
    if (ec) co_return Error::Unavailable("upstream " + target_.HostHeader() + " unreachable: " + ec.message());
    tcp_layer.socket().set_option(tcp::no_delay(true));
    std::string sni = target_.tls_server_name.empty() ? target_.host : target_.tls_server_name;
    beast::error_code ip_ec;
    asio::ip::make_address(sni, ip_ec);
    if (ip_ec) SSL_set_tlsext_host_name(c->stream.native_handle(), sni.c_str());
    if (!target_.insecure_skip_verify) {
      c->stream.set_verify_mode(ssl::verify_peer);
      c->stream.set_verify_callback(ssl::host_name_verification(sni));
    }
    co_await c->stream.async_handshake(ssl::stream_base::client, Redirect(ec));
    if (ec) co_return Error::Unavailable("TLS to upstream " + target_.HostHeader() + " failed: " + ec.message());
    tcp_layer.expires_never();
    co_return std::move(c);
  }

  void Release(std::unique_ptr<UpstreamConn> c) {
    if (idle_.size() >= limits::kUpstreamPoolSize) return;
    c->idle_since = Clock::now();
    idle_.push_back(std::move(c));
  }

 private:
  // A peer that closed an idle keep-alive connection makes the socket
  // readable with nothing (or an alert) to read; such connections are dropped.
  static bool StillOpen(UpstreamConn& c) {
    auto& sock = beast::get_lowest_layer(c.stream).socket();
    if (!sock.is_open()) return false;
    char byte;
    ssize_t n = ::recv(sock.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
  }

  const UpstreamTarget& target_;
  ssl::context& ctx_;
  std::vector<std::unique_ptr<UpstreamConn>> idle_;
};

// ---------------------------------------------------------------------------

struct Worker {
  Worker(const UpstreamTarget& t, ssl::context& ctx) : pool(t, ctx) {}
  asio::io_context ioc{1};
  UpstreamPool pool;
  std::thread thread;
};

// The subject of the client certificate if one was presented and verified
// against the client CA; `untrusted` is set when one was presented and did
// not verify.
std::optional<PeerCertificate> VerifiedPeer(SSL* ssl, bool& untrusted) {
  X509* cert = SSL_get1_peer_certificate(ssl);
  if (!cert) return std::nullopt;
  untrusted = SSL_get_verify_result(ssl) != X509_V_OK;
  std::optional<PeerCertificate> out;
  if (SSL_get_verify_result(ssl) == X509_V_OK) {
    PeerCertificate p;
    X509_NAME* name = X509_get_subject_name(cert);
    for (int i = 0; i < X509_NAME_entry_count(name); ++i) {
      X509_NAME_ENTRY* e = X509_NAME_get_entry(name, i);
      int nid = OBJ_obj2nid(X509_NAME_ENTRY_get_object(e));
      unsigned char* utf8 = nullptr;
      int len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(e));
      if (len < 0) continue;
      std::string v(reinterpret_cast<char*>(utf8), static_cast<std::size_t>(len));
      OPENSSL_free(utf8);
      if (nid == NID_commonName) p.common_name = v;
      if (nid == NID_organizationName) p.organizations.push_back(v);
    }
    out = std::move(p);
  }
  X509_free(cert);
  return out;
}

class ServerImpl;

// The identity sent upstream, as the audit record keeps it: repeated
// headers joined by commas, without the request id (the record has it).
std::map<std::string, std::string> ImpersonatedForRecord(const std::vector<std::pair<std::string, std::string>>& headers) {
  std::map<std::string, std::string> out;
  for (const auto& [n, v] : headers) {
    if (!beast::iequals(n, kRequestIdExtraHeader)) out[n] += out.count(n) ? "," + v : v;
  }
  return out;
}

// One accepted connection. Stream is TlsStream or beast::tcp_stream.
template <typename Stream>
class Session {
 public:
  Session(ServerImpl& server, Worker& worker, Stream stream, std::string peer)
      : server_(server), worker_(worker), stream_(std::move(stream)), peer_(std::move(peer)) {}

  awaitable<void> Run();

 private:
  struct Outcome {
    int status = 0;
    std::uint64_t bytes_in = 0;
    std::uint64_t bytes_out = 0;
    bool keep_alive = false;
    std::string closed_reason;  // an upgraded stream kubegate ended (grant expired or revoked)
    std::optional<nlohmann::json> recording;  // the session's recording summary
  };

  // The approval stage's answer for a request a review rule matched.
  struct ReviewOutcome {
    bool forward = false;
    Error refusal;  // when !forward: the Status to answer (none when withdrawn)
    bool withdrawn = false;
    nlohmann::json approval = nlohmann::json::object();  // for the audit record
    std::string grant_id;
    std::int64_t grant_expires_ms = 0;  // exec/attach/port-forward sessions end then
  };

  awaitable<bool> HandleRequest(http::request_parser<http::empty_body>& head);
  awaitable<Outcome> Forward(http::request_parser<http::empty_body>& head, const Identity& who,
                             const RequestInfo& info, const Decision& decision, const std::string& request_id,
                             std::optional<std::string>& inspected_body);
  awaitable<Outcome> RelayUpgrade(UpstreamConn& up, http::response_parser<http::buffer_body>& rp);
  awaitable<Outcome> Reply(const Error& e, const std::string& request_id, bool keep_alive);
  awaitable<Outcome> ReplyText(http::status status, std::string_view body, bool keep_alive);
  awaitable<Outcome> ReplyApi(const AuditApiResponse& r, const std::string& request_id, bool keep_alive);

  // Stage: audit. CommitDecision waits until the decision record is durably
  // committed and returns "" (or why it was not: the request must then not
  // be forwarded). AuditAnswered records, without waiting, a request that
  // kubegate answered itself; AuditResult the outcome of a forwarded one.
  awaitable<std::string> CommitDecision(const DecisionFacts& facts);
  void AuditAnswered(DecisionFacts& facts, const Outcome& o, const std::string& error);
  void AuditResult(const DecisionFacts& facts, const Outcome& o, const std::string& error);
  awaitable<bool> ServeAuditApi(const Identity& who, const RequestInfo& info, DecisionFacts& facts, bool keep_alive,
                                Clock::time_point start);
  awaitable<bool> ServeApprovalApi(http::request_parser<http::empty_body>& head, const Identity& who,
                                   const RequestInfo& info, DecisionFacts& facts, Clock::time_point start);

  // Stage: hold for approval. Uses a live grant, an automatic approver, or
  // opens (or joins) an approval request and, for hold rules, waits for it
  // while watching the caller's connection.
  // `body` is the held request's body, if it has one.
  awaitable<ReviewOutcome> Review(const Identity& who, const RequestInfo& info, const Decision& decision,
                                  const DecisionFacts& facts, const http::request<http::empty_body>& req,
                                  const std::optional<std::string>& body, const std::string& content_type);
  // A server-side dry run of a held write, for its approvers: the same
  // request with dryRun=All, as the caller, recorded in the audit log like
  // any request kubegate forwards (committed first). Returns the
  // ApprovalRequest::dry_run note.
  awaitable<nlohmann::json> DryRunForApprovers(const Identity& who, const DecisionFacts& held,
                                               const http::request<http::empty_body>& req,
                                               const std::optional<std::string>& body);
  awaitable<bool> WaitForDecision(const std::string& id, std::int64_t expires_ms, ApprovalRequest& out);
  // Returns when the caller closes or breaks its connection, or sends more
  // than limits::kMaxBytesReadAhead ahead of its answer; `why` says which.
  awaitable<void> WatchClientGone(std::string& why);
  awaitable<void> WatchGrant(std::string grant_id, std::int64_t expires_ms, std::string& reason);

  // A request kubegate makes itself (a Namespace's labels, a dry run): sent
  // on a pooled upstream connection with the gateway's credential; the
  // whole answer is read, bounded by kMaxOwnUpstreamResponseBytes.
  awaitable<Result<http::response<http::string_body>>> OwnUpstreamRequest(http::request<http::string_body>& req);
  // The labels of namespace `ns` (cached for kNamespaceLabelTtl); a
  // namespace that does not exist has none. An error when they cannot be read.
  awaitable<Result<NamespaceLabels>> NamespaceLabelsOf(const std::string& ns);

  // Runs `fn` on the gateway's store thread and resumes here with its result.
  template <typename T, typename F>
  awaitable<T> OnStoreThread(F&& fn);
  void Log(const std::string& request_id, std::string_view method, std::string_view target, const Identity* who,
           const RequestInfo* info, const Decision* decision, const Outcome& o, Clock::time_point start);

  ServerImpl& server_;
  Worker& worker_;
  Stream stream_;
  std::string peer_;
  beast::flat_buffer buffer_;
  std::optional<PeerCertificate> peer_cert_;
  bool untrusted_peer_ = false;
  // Set for an exec/attach/port-forward forwarded under a grant: the stream
  // ends when the grant expires or is revoked.
  struct SessionLimit {
    std::string grant_id;
    std::int64_t expires_ms = 0;
  };
  std::optional<SessionLimit> session_limit_;
  // Set for an exec/attach/port-forward that is recorded: the file is
  // created before forwarding; the recorder starts at the 101.
  struct PendingRecording {
    std::unique_ptr<RecordingSink> sink;
    std::string path;
    RecordingHeader header;
    RecordingOptions options;
    bool required = false;
  };
  std::optional<PendingRecording> recording_;
  // Ends a session's recording (on the writer thread) and returns what the
  // audit result record keeps of it.
  awaitable<nlohmann::json> FinishRecording(RecordingTap& tap, std::string ended_by);
  // Drops a recording whose session never started (its file is removed).
  void DiscardRecording() {
    if (!recording_) return;
    if (recording_->sink) recording_->sink->Close();
    std::error_code ec;
    std::filesystem::remove(recording_->path, ec);
    recording_.reset();
  }
  // Body relay buffer, allocated once per connection (not zero-filled).
  // Body relay buffer: allocated on the first body relayed (an idle or
  // held connection never needs it), then kept for the connection.
  std::unique_ptr<char[]> relay_buf_;
  char* RelayBuffer() {
    if (!relay_buf_) relay_buf_.reset(new char[limits::kRelayBufferBytes]);
    return relay_buf_.get();
  }
};

class ServerImpl final : public GatewayServer {
 public:
  ServerImpl(const Config& c, const UpstreamTarget& u, const ServingCert& cert, AuditWiring audit)
      : config_(c),
        upstream_(u),
        cert_(cert),
        admission_(c),
        upstream_token_(u.token_file, u.bearer_token),
        audit_(std::move(audit)) {}

  ~ServerImpl() override { reader_pool_.join(); }

  Result<bool> Init() {
    try {
      server_ctx_.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                              ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
      server_ctx_.use_certificate_chain_file(cert_.cert_file);
      server_ctx_.use_private_key_file(cert_.key_file, ssl::context::pem);
      SSL_CTX_set_alpn_select_cb(server_ctx_.native_handle(), &SelectAlpn, nullptr);
      // OpenSSL frees a connection's record buffers while it is idle.
      SSL_CTX_set_mode(server_ctx_.native_handle(), SSL_MODE_RELEASE_BUFFERS);
      if (!config_.client_certs.ca_file.empty()) {
        server_ctx_.load_verify_file(config_.client_certs.ca_file);
        // Every presented certificate is accepted by the handshake; the
        // verification result decides in the authenticate stage, so a bad
        // certificate gets a 401 Status instead of a TLS alert.
        server_ctx_.set_verify_mode(ssl::verify_peer);
        server_ctx_.set_verify_callback([](bool, ssl::verify_context&) { return true; });
        STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(config_.client_certs.ca_file.c_str());
        if (names) SSL_CTX_set_client_CA_list(server_ctx_.native_handle(), names);
      }
      upstream_ctx_.set_options(ssl::context::default_workarounds | ssl::context::no_tlsv1 |
                                ssl::context::no_tlsv1_1);
      if (!upstream_.ca_pem.empty()) {
        upstream_ctx_.add_certificate_authority(asio::buffer(upstream_.ca_pem));
      } else {
        upstream_ctx_.set_default_verify_paths();
      }
      if (!upstream_.client_cert_pem.empty()) {
        upstream_ctx_.use_certificate_chain(asio::buffer(upstream_.client_cert_pem));
        upstream_ctx_.use_private_key(asio::buffer(upstream_.client_key_pem), ssl::context::pem);
      }
      // Upgrades (exec, port-forward) are HTTP/1.1 only.
      static const unsigned char kAlpn[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
      SSL_CTX_set_alpn_protos(upstream_ctx_.native_handle(), kAlpn, sizeof kAlpn);
    } catch (const std::exception& e) {
      return Error::Internal(std::string("TLS setup failed: ") + e.what());
    }
    if (!upstream_.tls) return Error::BadRequest("kubegate forwards to the API server over HTTPS only");
    if (auto loaded = admission_.policy().Load(); !loaded) return loaded.error();
    return true;
  }

  Result<bool> Start() override {
    int n = std::max(1, config_.worker_threads);
    for (int i = 0; i < n; ++i) workers_.push_back(std::make_unique<Worker>(upstream_, upstream_ctx_));
    beast::error_code ec;
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
    signals_.emplace(workers_[0]->ioc, SIGTERM, SIGINT);
    signals_->async_wait([this](const beast::error_code& e, int) {
      if (!e) Stop();
    });
    // Policy reloads: SIGHUP forces one; the file is also checked each second.
    hup_.emplace(workers_[0]->ioc, SIGHUP);
    WaitForHup();
    asio::co_spawn(workers_[0]->ioc, WatchPolicyFile(), asio::detached);
    asio::co_spawn(workers_[0]->ioc, AcceptLoop(), asio::detached);
    for (auto& w : workers_) {
      w->thread = std::thread([&ioc = w->ioc] {
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
      spdlog::info("shutting down: listener closed, waiting up to {}s for {} in-flight requests",
                   config_.shutdown_grace_seconds, inflight_.load());
      beast::error_code ec;
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

  const GatewayCounters& counters() const override { return counters_; }

  const Config& config() const { return config_; }
  const UpstreamTarget& upstream() const { return upstream_; }
  const Admission& admission() const { return admission_; }
  Admission& mutable_admission() { return admission_; }
  std::string UpstreamToken() { return upstream_token_.Current(); }
  GatewayCounters& mutable_counters() { return counters_; }
  ApprovalService* approvals() { return audit_.approvals; }
  // Approval notifications; never blocks (its own thread and queue).
  void NotifyApproval(const std::string& event, const ApprovalRequest& r) {
    if (notifier_) notifier_->Notify(event, r);
  }
  // Held-request accounting (limits per caller and in total).
  bool TryHold(const std::string& user) {
    std::lock_guard lk(held_mu_);
    int& mine = held_by_user_[user];
    if (mine >= config_.approvals.max_held_per_caller || held_total_ >= config_.approvals.max_held_total) return false;
    ++mine;
    ++held_total_;
    counters_.held_now = static_cast<std::uint64_t>(held_total_);
    return true;
  }
  void ReleaseHold(const std::string& user) {
    std::lock_guard lk(held_mu_);
    if (--held_by_user_[user] <= 0) held_by_user_.erase(user);
    --held_total_;
    counters_.held_now = static_cast<std::uint64_t>(held_total_);
  }
  AuditLog* audit_log() { return audit_.log; }
  asio::thread_pool& reader_pool() { return reader_pool_; }
  NamespaceLabelCache& namespace_labels() { return namespace_labels_; }
  RecordingWriter& recording_writer() { return recording_writer_; }
  // Runs on the reader thread only: the REST API's store connection is
  // opened there on first use and reused.
  AuditApiResponse RunAuditQuery(const AuditApiRequest& r) {
    if (!reader_store_) {
      if (!audit_.open_reader) return {503, "application/json", StatusJson(Error::Unavailable("audit log not enabled"))};
      auto s = audit_.open_reader();
      if (!s) return {503, "application/json", StatusJson(s.error())};
      reader_store_ = std::move(*s);
    }
    if (auto ok = reader_store_->connection().EnsureConnected(); !ok) {
      return {503, "application/json", StatusJson(ok.error())};
    }
    return RunAuditApi(*reader_store_, r);
  }
  std::atomic<int>& inflight() { return inflight_; }
  bool stopping() const { return stopping_.load(); }
  std::size_t max_body() const {
    return config_.max_request_body_bytes ? config_.max_request_body_bytes : limits::kMaxRequestBodyBytes;
  }
  std::size_t max_head() const {
    return config_.max_request_head_bytes ? config_.max_request_head_bytes : limits::kMaxRequestHeadBytes;
  }

  std::string MetricsText() const {
    std::string out;
    auto add = [&](const char* name, const char* help, std::uint64_t v) {
      out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " counter\n" + name + " " +
             std::to_string(v) + "\n";
    };
    add("kubegate_requests_total", "Requests received.", counters_.requests);
    add("kubegate_connections_rejected_total",
        "Client connections closed at accept: over listen.max_connections or max_connections_per_source.",
        counters_.rejected_connections);
    out += "# HELP kubegate_client_connections Client connections open now.\n"
           "# TYPE kubegate_client_connections gauge\nkubegate_client_connections " +
           std::to_string(connection_limits_.open()) + "\n";
    add("kubegate_rejected_bad_request_total", "Requests refused as malformed or too large.",
        counters_.rejected_bad_request);
    add("kubegate_rejected_unauthenticated_total", "Requests refused for missing or bad credentials.",
        counters_.rejected_unauthenticated);
    add("kubegate_rejected_forbidden_total", "Requests refused by kubegate's decision.", counters_.rejected_forbidden);
    add("kubegate_upstream_errors_total", "Requests that could not reach the API server.", counters_.upstream_errors);
    add("kubegate_upgrades_total", "Upgraded streams relayed (exec, attach, port-forward).", counters_.upgrades);
    add("kubegate_reviews_total", "Requests a review rule matched.", counters_.reviews);
    add("kubegate_review_forwarded_total", "Reviewed requests forwarded after approval or under a grant.",
        counters_.approved_forwarded);
    add("kubegate_review_refused_total", "Reviewed requests denied, expired, withdrawn or answered at once.",
        counters_.review_refused);
    add("kubegate_policy_reloads_total", "Policy reloads that took effect.", counters_.policy_reloads);
    add("kubegate_policy_reloads_refused_total", "Policy files that changed but did not validate.",
        counters_.policy_reloads_refused);
    add("kubegate_sessions_closed_by_grant_total", "Streams ended because their grant expired or was revoked.",
        counters_.sessions_closed_by_grant);
    add("kubegate_sessions_ended_with_status_total",
        "Sessions kubegate ended that were told why with a Status on the exec error channel.",
        counters_.sessions_ended_with_status);
    add("kubegate_recording_failures_total", "Sessions whose recording could not start or could not be written.",
        counters_.recording_failures);
    out += "# HELP kubegate_held_requests Requests waiting for approval now.\n"
           "# TYPE kubegate_held_requests gauge\nkubegate_held_requests " +
           std::to_string(counters_.held_now.load()) + "\n";
    add("kubegate_audit_fail_closed_total",
        "Requests refused with 503 because their decision record could not be committed.",
        counters_.audit_fail_closed);
    if (audit_.log) {
      const AuditStats& a = audit_.log->stats();
      add("kubegate_audit_entries_committed_total", "Audit chain entries committed.", a.committed);
      add("kubegate_audit_batches_total", "Group commits of the audit log.", a.batches);
      add("kubegate_audit_commit_failures_total", "Audit group commits the store refused.", a.failed_batches);
      add("kubegate_audit_entries_dropped_total",
          "Audit entries of requests kubegate answered itself that were given up (queue full).", a.dropped);
      add("kubegate_audit_checkpoints_total", "Signed audit checkpoints written.", a.checkpoints);
      add("kubegate_audit_entries_pruned_total", "Audit entries removed by retention.", a.pruned);
      out += "# HELP kubegate_audit_queue_depth Audit entries waiting for the writer.\n"
             "# TYPE kubegate_audit_queue_depth gauge\nkubegate_audit_queue_depth " +
             std::to_string(a.queued.load()) + "\n";
      out += "# HELP kubegate_audit_store_healthy 1 when the last audit commit succeeded.\n"
             "# TYPE kubegate_audit_store_healthy gauge\nkubegate_audit_store_healthy " +
             std::string(a.healthy ? "1" : "0") + "\n";
    }
    return out;
  }

 private:
  static int SelectAlpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                        unsigned int inlen, void*) {
    for (unsigned int i = 0; i < inlen;) {
      unsigned int len = in[i];
      if (i + 1 + len > inlen) break;
      if (len == 8 && std::memcmp(in + i + 1, "http/1.1", 8) == 0) {
        *out = in + i + 1;
        *outlen = static_cast<unsigned char>(len);
        return SSL_TLSEXT_ERR_OK;
      }
      i += 1 + len;
    }
    return SSL_TLSEXT_ERR_NOACK;  // no ALPN agreed: HTTP/1.1 all the same
  }

  void ReloadPolicy(bool force) {
    ReloadOutcome r = admission_.policy().MaybeReload(force);
    if (r.changed) {
      counters_.policy_reloads++;
      spdlog::info("{}", r.message);
    } else if (r.refused) {
      counters_.policy_reloads_refused++;
      spdlog::error("{}", r.message);
    }
  }

  void WaitForHup() {
    hup_->async_wait([this](const beast::error_code& e, int) {
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

  awaitable<void> AcceptLoop() {
    std::size_t next = 0;
    while (!stopping_) {
      Worker& w = *workers_[next++ % workers_.size()];
      beast::error_code ec;
      tcp::socket sock = co_await acceptor_->async_accept(w.ioc, Redirect(ec));
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
        counters_.rejected_connections++;
        sock.close(ec);
        if (rejected_logged_.exchange(true) == false) spdlog::warn("{} (further refusals counted, not logged)", ticket.error().message);
        continue;
      }
      sock.set_option(tcp::no_delay(true), ec);
      if (config_.listen.plain_http) {
        asio::co_spawn(w.ioc, RunSession<beast::tcp_stream>(w, beast::tcp_stream(std::move(sock)), peer, *ticket),
                       asio::detached);
      } else {
        asio::co_spawn(w.ioc, RunTlsSession(w, std::move(sock), peer, *ticket), asio::detached);
      }
    }
  }

  // A connection costs only its socket and this frame until the client
  // speaks: the TLS state (asio's two record buffers, OpenSSL's) is made
  // when the ClientHello is there to read. Silent ones go after the head
  // timeout, as a slow client does.
  awaitable<void> RunTlsSession(Worker& w, tcp::socket sock, std::string peer,
                                std::shared_ptr<ConnectionLimits::Ticket> ticket) {
    asio::steady_timer quiet(co_await asio::this_coro::executor, limits::kRequestHeadTimeout);
    auto which = co_await (sock.async_wait(tcp::socket::wait_read, asio::as_tuple(use_awaitable)) ||
                           quiet.async_wait(asio::as_tuple(use_awaitable)));
    if (which.index() == 1 || std::get<0>(std::get<0>(which))) co_return;  // said nothing in time, or broke
    co_await RunSession<TlsStream>(w, TlsStream(std::move(sock), server_ctx_), std::move(peer), std::move(ticket));
  }

  template <typename Stream>
  awaitable<void> RunSession(Worker& w, Stream stream, std::string peer,
                             std::shared_ptr<ConnectionLimits::Ticket> ticket) {
    Session<Stream> s(*this, w, std::move(stream), std::move(peer));
    co_await s.Run();
    (void)ticket;  // held until the session ends
  }

  awaitable<void> DrainThenStop() {
    asio::steady_timer t(co_await asio::this_coro::executor);
    auto deadline = Clock::now() + std::chrono::seconds(config_.shutdown_grace_seconds);
    while (inflight_.load() > 0 && Clock::now() < deadline) {
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
  TokenSource upstream_token_;
  AuditWiring audit_;
  asio::thread_pool reader_pool_{1};
  NamespaceLabelCache namespace_labels_{std::chrono::milliseconds(limits::kNamespaceLabelTtl).count(),
                                        limits::kNamespaceLabelCacheEntries};
  std::unique_ptr<WebhookNotifier> notifier_ =
      config_.approvals.webhook_url.empty()
          ? nullptr
          : std::make_unique<WebhookNotifier>(config_.approvals.webhook_url, config_.approvals.webhook_format);
  std::unique_ptr<Store> reader_store_;  // reader_pool_ only
  ssl::context server_ctx_{ssl::context::tls_server};
  ssl::context upstream_ctx_{ssl::context::tls_client};
  std::vector<std::unique_ptr<Worker>> workers_;
  // Formats, hashes and writes session recordings off the relay's threads.
  // Declared after workers_: destroyed (its queue run) while they exist.
  RecordingWriter recording_writer_;
  std::optional<tcp::acceptor> acceptor_;
  std::optional<asio::signal_set> signals_;
  std::optional<asio::signal_set> hup_;
  std::mutex held_mu_;
  std::map<std::string, int> held_by_user_;
  int held_total_ = 0;
  std::uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<int> inflight_{0};
  GatewayCounters counters_;
};

// Every TLS client stream gets the handshake; plain streams skip it.
template <typename Stream>
awaitable<bool> Handshake(Stream&, std::optional<PeerCertificate>&, bool&) {
  co_return true;
}

template <>
awaitable<bool> Handshake<TlsStream>(TlsStream& s, std::optional<PeerCertificate>& peer, bool& untrusted) {
  beast::error_code ec;
  beast::get_lowest_layer(s).expires_after(limits::kRequestHeadTimeout);
  co_await s.async_handshake(ssl::stream_base::server, Redirect(ec));
  if (ec) co_return false;
  peer = VerifiedPeer(s.native_handle(), untrusted);
  co_return true;
}

// Closes a client connection without losing the last answer: half-close,
// then discard what the client still sends (bounded in time and bytes).
// Closing with unread bytes would make the kernel send a reset, and a
// client still writing a body would never read a 413 or 401.
template <typename Stream>
awaitable<void> LingeringClose(Stream& s) {
  auto& layer = beast::get_lowest_layer(s);
  beast::error_code ec;
  layer.socket().shutdown(tcp::socket::shutdown_send, ec);
  layer.expires_after(limits::kLingerTime);
  char sink[16384];
  std::size_t total = 0;
  while (!ec && total < limits::kLingerMaxBytes) {
    total += co_await layer.async_read_some(asio::buffer(sink), Redirect(ec));
  }
  layer.close();
}

template <typename Stream>
void CloseStream(Stream& s) {
  beast::error_code ec;
  beast::get_lowest_layer(s).socket().shutdown(tcp::socket::shutdown_both, ec);
  beast::get_lowest_layer(s).close();
}

bool IEqualsAscii(std::string_view a, std::string_view b) { return beast::iequals(a, b); }

// Calls f with each contiguous piece of a buffer sequence. The sequence is
// a named parameter here: a range over the temporary that a buffer's data()
// returns would dangle before a loop body ran (issue 11's crash).
template <typename Buffers, typename F>
void ForEachPiece(const Buffers& buffers, F&& f) {
  for (auto it = asio::buffer_sequence_begin(buffers); it != asio::buffer_sequence_end(buffers); ++it) {
    f(std::string_view(static_cast<const char*>(it->data()), it->size()));
  }
}

bool IsUpgradeRequest(const http::request<http::empty_body>& req) {
  return req.find(http::field::upgrade) != req.end() &&
         beast::http::token_list(req[http::field::connection]).exists("upgrade");
}

template <typename Stream>
awaitable<void> Session<Stream>::Run() {
  if (!co_await Handshake(stream_, peer_cert_, untrusted_peer_)) co_return;
  while (true) {
    http::request_parser<http::empty_body> head;
    head.header_limit(static_cast<std::uint32_t>(std::min<std::size_t>(server_.max_head(), UINT32_MAX)));
    head.body_limit(boost::none);
    beast::get_lowest_layer(stream_).expires_after(buffer_.size() ? limits::kRequestHeadTimeout
                                                                  : limits::kClientIdleTimeout);
    beast::error_code ec;
    co_await http::async_read_header(stream_, buffer_, head, Redirect(ec));
    if (ec) {
      if (ec != http::error::end_of_stream && ec != asio::error::eof && ec != beast::error::timeout &&
          ec != asio::error::operation_aborted && ec != asio::ssl::error::stream_truncated &&
          ec != asio::error::connection_reset) {
        server_.mutable_counters().rejected_bad_request++;
        Outcome o = co_await Reply(ParseErrorToStatus(ec), "", false);
        (void)o;
      }
      break;
    }
    beast::get_lowest_layer(stream_).expires_never();
    server_.inflight()++;
    bool keep = co_await HandleRequest(head);
    server_.inflight()--;
    if (!keep || server_.stopping()) break;
  }
  co_await LingeringClose(stream_);
}

// The pipeline for one request: authenticate -> classify -> decide ->
// audit (commit the decision) -> forward -> relay -> audit the result -> log.
// Returns whether the connection stays open.
template <typename Stream>
awaitable<bool> Session<Stream>::HandleRequest(http::request_parser<http::empty_body>& head) {
  auto start = Clock::now();
  auto& req = head.get();
  server_.mutable_counters().requests++;
  std::string request_id = NewRequestId();
  std::string method(req.method_string());
  std::string target(req.target());
  bool keep_alive = req.keep_alive();

  // Gateway probes, unauthenticated and not audited: liveness, and
  // readiness (a verified upstream connection can be had and the audit
  // store takes writes).
  if (req.method() == http::verb::get && (target == "/healthz" || target == "/livez")) {
    Outcome o = co_await ReplyText(http::status::ok, "ok", keep_alive && head.is_done());
    co_return o.keep_alive;
  }
  if (req.method() == http::verb::get && target == "/readyz") {
    if (server_.audit_log() && !server_.audit_log()->stats().healthy) {
      Outcome o = co_await ReplyText(http::status::service_unavailable, "audit store unavailable", false);
      co_return o.keep_alive;
    }
    bool reused = false;
    auto conn = co_await worker_.pool.Acquire(reused);
    // (if/else, not ?: : GCC 12 destroys a ?: of two co_awaits twice.)
    Outcome o;
    if (conn) {
      o = co_await ReplyText(http::status::ok, "ok", keep_alive && head.is_done());
    } else {
      o = co_await ReplyText(http::status::service_unavailable, conn.error().message, false);
    }
    if (conn) worker_.pool.Release(std::move(*conn));
    co_return o.keep_alive;
  }

  // What the audit record says about the request, filled in stage by stage.
  DecisionFacts facts;
  facts.request_id = request_id;
  facts.received_ms = SystemClock().NowMillis();
  facts.source = peer_;
  facts.method = method;
  facts.target = target;
  if (auto it = req.find(http::field::user_agent); it != req.end()) facts.user_agent = std::string(it->value());
  if (auto it = req.find("Kubectl-Command"); it != req.end()) facts.kubectl_command = std::string(it->value());
  if (auto it = req.find("Kubectl-Session"); it != req.end()) facts.kubectl_session = std::string(it->value());
  // A request kubegate answers itself: reply, record, log.
  std::optional<RequestInfo> info_for_record;
  auto refuse = [&](const Error& e, const char* rule, bool keep) -> awaitable<Outcome> {
    if (!facts.info) {
      // Refused before the classify stage (framing, credentials): the record
      // still says what was asked, where the target can be read.
      if (auto ci = ClassifyRequest(method, target)) {
        info_for_record = std::move(*ci);
        facts.info = &*info_for_record;
      }
    }
    facts.action = "deny";
    facts.rule = rule;
    facts.message = e.message;
    Outcome o = co_await Reply(e, request_id, keep);
    AuditAnswered(facts, o, e.message);
    Log(request_id, method, target, facts.who, info_for_record ? nullptr : facts.info, nullptr, o, start);
    co_return o;
  };

  if (auto framing = CheckFraming(req)) {
    server_.mutable_counters().rejected_bad_request++;
    co_await refuse(*framing, "bad-request", false);
    co_return false;
  }
  if (head.content_length() && *head.content_length() > server_.max_body()) {
    server_.mutable_counters().rejected_bad_request++;
    co_await refuse(Error::TooLarge("request body of " + std::to_string(*head.content_length()) +
                                    " bytes exceeds kubegate's limit of " + std::to_string(server_.max_body())),
                    "body-too-large", false);
    co_return false;
  }

  // Stage: authenticate.
  Credentials creds;
  std::string authz;
  if (auto it = req.find(http::field::authorization); it != req.end()) {
    authz = std::string(it->value());
    creds.authorization = authz;
  }
  creds.peer = peer_cert_;
  creds.untrusted_peer = untrusted_peer_;
  auto who = server_.admission().Authenticate(creds);
  if (!who) {
    server_.mutable_counters().rejected_unauthenticated++;
    co_await refuse(who.error(), "authentication", false);
    co_return false;
  }
  facts.who = &*who;

  // Stage: classify.
  auto info = server_.admission().Classify(method, target);
  if (!info) {
    server_.mutable_counters().rejected_bad_request++;
    co_await refuse(info.error(), "bad-request", false);
    co_return false;
  }
  facts.info = &*info;
  // kubegate's own endpoints, for any authenticated caller (audit: auditors only).
  if (req.method() == http::verb::get && !info->is_resource_request && info->path == "/metrics") {
    facts.action = "allow";
    facts.rule = "gateway-metrics";
    Outcome o = co_await ReplyText(http::status::ok, server_.MetricsText(), keep_alive);
    AuditAnswered(facts, o, "");
    co_return o.keep_alive;
  }
  if (!info->is_resource_request && IsAuditApiPath(info->path)) {
    co_return co_await ServeAuditApi(*who, *info, facts, keep_alive && head.is_done(), start);
  }
  if (!info->is_resource_request && IsApprovalApiPath(info->path)) {
    co_return co_await ServeApprovalApi(head, *who, *info, facts, start);
  }
  // DELETE carries dry-run in its body: read it (bounded) before deciding.
  // With audit.request_bodies, the bodies of writes are read too, to be
  // recorded with the decision.
  const bool is_write = (info->verb == "create" || info->verb == "update" || info->verb == "patch" ||
                         info->verb == "delete" || info->verb == "deletecollection") &&
                        info->stream == StreamKind::kNone;
  const bool record_body = server_.config().audit.request_bodies && is_write;
  std::optional<std::string> inspected_body;  // set when the body was read here
  std::string content_type;
  // Reads the whole body (bounded) so it can be inspected, recorded or held,
  // then forwarded as received. False after refusing a bad body.
  auto read_body = [&](std::size_t limit) -> awaitable<bool> {
    http::request_parser<http::string_body> body_parser(std::move(head));
    body_parser.body_limit(limit);
    beast::get_lowest_layer(stream_).expires_after(limits::kBodyIdleTimeout);
    beast::error_code ec;
    co_await http::async_read(stream_, buffer_, body_parser, Redirect(ec));
    beast::get_lowest_layer(stream_).expires_never();
    if (ec) {
      server_.mutable_counters().rejected_bad_request++;
      co_await refuse(ParseErrorToStatus(ec), "bad-request", false);
      co_return false;
    }
    inspected_body = std::move(body_parser.get().body());
    content_type = std::string(body_parser.get()[http::field::content_type]);
    // Put the head back into an empty-body parser state for forwarding.
    http::request<http::empty_body> moved_head(std::move(body_parser.get().base()));
    head.get() = std::move(moved_head);
    co_return true;
  };
  if ((NeedsBodyToClassify(*info) || record_body) && !head.is_done()) {
    if (!co_await read_body(record_body ? server_.max_body() : limits::kMaxInspectedBodyBytes)) co_return false;
    if (NeedsBodyToClassify(*info)) ApplyDeleteBody(*info, content_type, *inspected_body);
    if (record_body) facts.request_body = RedactRequestBody(info->resource, content_type, *inspected_body);
  }

  // Stage: decide.
  bool asks_impersonation = false;
  for (const auto& f : req) asks_impersonation = asks_impersonation || IsImpersonationHeader(f.name_string());
  auto header = [&req](std::string_view name) -> std::optional<std::string> {
    auto it = req.find(name);
    if (it == req.end()) return std::nullopt;
    return std::string(it->value());
  };
  std::shared_ptr<const Policy> policy = server_.admission().policy().Current();
  std::optional<NamespaceLabels> namespace_labels;
  if (server_.admission().NeedsNamespaceLabels(*policy, *who, *info, asks_impersonation)) {
    auto labels = co_await NamespaceLabelsOf(info->namespace_);
    if (!labels) {
      // The decision depends on labels kubegate cannot read: fail closed.
      server_.mutable_counters().upstream_errors++;
      co_await refuse(labels.error(), "namespace-labels", false);
      co_return false;
    }
    namespace_labels = std::move(*labels);
    facts.namespace_labels = *namespace_labels;  // what the rule saw, for the record
  }
  Decision decision = server_.admission().Decide(*who, *info, asks_impersonation, header, SystemClock().NowMillis(),
                                                 policy, namespace_labels ? &*namespace_labels : nullptr);
  if (decision.action == Decision::Action::kDeny) {
    server_.mutable_counters().rejected_forbidden++;
    facts.action = "deny";
    facts.rule = decision.rule;
    facts.message = decision.message;
    Outcome o = co_await Reply(Error::Forbidden(decision.message), request_id,
                               keep_alive && (inspected_body || head.is_done()));
    AuditAnswered(facts, o, decision.message);
    Log(request_id, method, target, &*who, &*info, &decision, o, start);
    co_return o.keep_alive;
  }

  // A rule may ask for the bodies of the writes it matches to be recorded.
  if (is_write && !facts.request_body && decision.policy_rule && decision.policy_rule->audit_request_bodies) {
    if (!inspected_body && !head.is_done() && !co_await read_body(server_.max_body())) co_return false;
    if (inspected_body) facts.request_body = RedactRequestBody(info->resource, content_type, *inspected_body);
  }

  // Stage: hold for approval, when a review rule matched.
  facts.action = decision.action == Decision::Action::kReview ? "review" : "allow";
  facts.rule = decision.rule;
  if (decision.action == Decision::Action::kReview) facts.message = decision.message;
  session_limit_.reset();
  if (decision.action == Decision::Action::kReview) {
    server_.mutable_counters().reviews++;
    // A held request is forwarded exactly as received: its body is read first.
    if (!inspected_body && !head.is_done() && !co_await read_body(server_.max_body())) co_return false;
    ReviewOutcome review = co_await Review(*who, *info, decision, facts, head.get(), inspected_body, content_type);
    facts.approval = review.approval;
    if (!review.forward) {
      server_.mutable_counters().review_refused++;
      if (review.withdrawn) {
        Outcome gone;
        gone.status = 499;  // client closed request (nginx's code); nothing was sent
        AuditAnswered(facts, gone, "the caller disconnected while the request was held; it was withdrawn");
        Log(request_id, method, target, &*who, &*info, &decision, gone, start);
        co_return false;
      }
      Outcome o = co_await Reply(review.refusal, request_id, keep_alive);
      AuditAnswered(facts, o, review.refusal.message);
      Log(request_id, method, target, &*who, &*info, &decision, o, start);
      co_return o.keep_alive;
    }
    server_.mutable_counters().approved_forwarded++;
    if (!review.grant_id.empty() && info->stream != StreamKind::kNone) {
      session_limit_ = SessionLimit{review.grant_id, review.grant_expires_ms};
    }
  }

  // Stage: recording. Exec, attach and port-forward sessions are recorded
  // from the relay's copy of their bytes; the file exists before anything
  // is forwarded, so a rule that requires recording can refuse in time.
  recording_.reset();
  if (info->stream != StreamKind::kNone && IsUpgradeRequest(req)) {
    const PolicyRule* rule = decision.policy_rule;
    const bool required = rule && rule->recording_required;
    if (server_.config().recording.enabled || required) {
      const bool pf = info->stream == StreamKind::kPortForward;
      std::string path = server_.config().RecordingDir() + "/" + request_id + (pf ? ".portforward.jsonl" : ".cast");
      auto sink = CreateRecordingFile(path);
      if (!sink && required) {
        server_.mutable_counters().recording_failures++;
        co_await refuse(Error::Unavailable("kubegate: rule \"" + rule->name + "\" requires this session to be "
                                           "recorded, and the recording cannot start (" + sink.error().message +
                                           "); nothing was forwarded"),
                        "recording-required", false);
        co_return false;
      }
      if (!sink) {
        server_.mutable_counters().recording_failures++;
        spdlog::warn("request {}: session not recorded: {}", request_id, sink.error().message);
      } else {
        PendingRecording r;
        r.sink = std::move(*sink);
        r.path = path;
        r.required = required;
        r.header.request_id = request_id;
        r.header.kind = pf ? "portforward" : info->stream == StreamKind::kAttach ? "attach" : "exec";
        r.header.user = who->user;
        r.header.namespace_ = info->namespace_;
        r.header.pod = info->name;
        if (info->exec) {
          r.header.container = info->exec->container;
          r.header.command = info->exec->command;
          r.header.tty = info->exec->tty;
        }
        r.header.approval_id = facts.approval.value("id", "");
        if (session_limit_) r.header.grant_id = session_limit_->grant_id;
        if (rule && rule->recording_stdin == "omit") r.options.stdin_mode = StdinMode::kOmit;
        if (rule && rule->recording_stdin == "redact") r.options.stdin_mode = StdinMode::kRedact;
        r.options.portforward_payload = rule && rule->recording_portforward_payload;
        r.options.max_bytes = server_.config().recording.max_bytes;
        recording_ = std::move(r);
        facts.recording_id = request_id;
      }
    }
  }

  // Stage: audit. Nothing reaches the cluster unless its decision record is
  // committed (fail closed).
  if (decision.pass_caller_impersonation) {
    for (const auto& f : req) {
      if (IsImpersonationHeader(f.name_string())) facts.impersonated[std::string(f.name_string())] = f.value();
    }
  } else {
    facts.impersonated = ImpersonatedForRecord(ImpersonationHeaders(*who, request_id, server_.config().upstream.impersonate));
  }
  if (std::string not_committed = co_await CommitDecision(facts); !not_committed.empty()) {
    DiscardRecording();
    server_.mutable_counters().audit_fail_closed++;
    Outcome o = co_await Reply(Error::Unavailable(not_committed), request_id, false);
    Log(request_id, method, target, &*who, &*info, &decision, o, start);
    co_return false;
  }

  // Stages: forward and relay, then record the result.
  Outcome o = co_await Forward(head, *who, *info, decision, request_id, inspected_body);
  // A write to a Namespace may have changed the labels selector rules
  // decide by: the next decision reads them again.
  if (info->resource == "namespaces" && info->api_group.empty() && info->verb != "get" && info->verb != "list" &&
      info->verb != "watch") {
    server_.namespace_labels().Forget(info->name.empty() ? info->namespace_ : info->name);
  }
  // No session was opened (the cluster refused the upgrade): no recording.
  if (!o.recording) DiscardRecording();
  recording_.reset();
  AuditResult(facts, o, o.closed_reason);
  Log(request_id, method, target, &*who, &*info, &decision, o, start);
  co_return o.keep_alive;
}

template <typename Stream>
awaitable<std::string> Session<Stream>::CommitDecision(const DecisionFacts& facts) {
  AuditLog* log = server_.audit_log();
  if (!log) co_return std::string();  // audit switched off for a benchmark
  auto entry = MakeEntry(DecisionRecord(facts));
  if (!entry) co_return "kubegate could not build the audit record: " + entry.error().message;
  co_return co_await AwaitResume<std::string>([&](std::function<void(std::string)> resume) {
    bool queued = log->Submit(std::move(*entry), [resume](const Result<bool>& r) {
      resume(r ? std::string() : r.error().message);
    });
    if (!queued) resume("kubegate's audit queue is full, so the request was not forwarded; try again shortly");
  });
}

template <typename Stream>
void Session<Stream>::AuditAnswered(DecisionFacts& facts, const Outcome& o, const std::string& error) {
  AuditLog* log = server_.audit_log();
  if (!log) return;
  if (auto entry = MakeEntry(DecisionRecord(facts))) log->Submit(std::move(*entry));
  AuditResult(facts, o, error);
}

template <typename Stream>
void Session<Stream>::AuditResult(const DecisionFacts& facts, const Outcome& o, const std::string& error) {
  AuditLog* log = server_.audit_log();
  if (!log) return;
  ResultFacts r;
  r.request_id = facts.request_id;
  r.completed_ms = SystemClock().NowMillis();
  r.status = o.status;
  r.bytes_in = o.bytes_in;
  r.bytes_out = o.bytes_out;
  r.duration_ms = r.completed_ms - facts.received_ms;
  r.error = error;
  r.recording = o.recording;
  if (auto entry = MakeEntry(ResultRecord(r))) log->Submit(std::move(*entry));
}

// GET /kubegate/v1/audit[...]: the audit log for auditors; the query runs
// on the store-reader thread.
template <typename Stream>
awaitable<bool> Session<Stream>::ServeAuditApi(const Identity& who, const RequestInfo& info, DecisionFacts& facts,
                                               bool keep_alive, Clock::time_point start) {
  const std::string& request_id = facts.request_id;
  facts.rule = "audit-api";
  auto refuse = [&](const Error& e) -> awaitable<bool> {
    facts.action = "deny";
    facts.message = e.message;
    Outcome o = co_await Reply(e, request_id, keep_alive);
    AuditAnswered(facts, o, e.message);
    Log(request_id, facts.method, facts.target, &who, &info, nullptr, o, start);
    co_return o.keep_alive;
  };
  if (!IsAuditor(who, server_.config().auditors)) {
    server_.mutable_counters().rejected_forbidden++;
    co_return co_await refuse(Error::Forbidden("user \"" + who.user + "\" is not an auditor of kubegate's audit log "
                                               "(config: auditors.users / auditors.groups)"));
  }
  if (info.verb != "get") co_return co_await refuse(Error{405, "MethodNotAllowed", "the audit log is read-only"});
  auto parsed = ParseAuditApiRequest(info.path, info.raw_query, SystemClock().NowMillis());
  if (!parsed) co_return co_await refuse(parsed.error());
  facts.action = "allow";
  AuditApiRequest api = std::move(*parsed);
  api.recording_dir = server_.config().RecordingDir();
  AuditApiResponse resp = co_await AwaitResume<AuditApiResponse>([&](std::function<void(AuditApiResponse)> resume) {
    asio::post(server_.reader_pool(), [this, &api, resume] { resume(server_.RunAuditQuery(api)); });
  });
  Outcome o = co_await ReplyApi(resp, request_id, keep_alive);
  AuditAnswered(facts, o, "");
  Log(request_id, facts.method, facts.target, &who, &info, nullptr, o, start);
  co_return o.keep_alive;
}

template <typename Stream>
awaitable<typename Session<Stream>::Outcome> Session<Stream>::Forward(http::request_parser<http::empty_body>& head,
                                                                      const Identity& who, const RequestInfo& info,
                                                                      const Decision& decision,
                                                                      const std::string& request_id,
                                                                      std::optional<std::string>& inspected_body) {
  auto& req = head.get();
  const UpstreamTarget& up = server_.upstream();
  const bool upgrade = IsUpgradeRequest(req);
  const bool client_keep_alive = req.keep_alive();
  const bool is_head = req.method() == http::verb::head;
  // `req` belongs to `head`, which the body branches below move from.

  // Rewrite the head: drop the caller's credentials and impersonation, add
  // the gateway's credential and the caller's identity.
  std::vector<std::pair<std::string, std::string>> caller_impersonation;
  std::vector<std::string> drop;
  for (const auto& f : req) {
    std::string name(f.name_string());
    if (IsImpersonationHeader(name)) caller_impersonation.emplace_back(name, std::string(f.value()));
    if (IsCredentialHeader(name)) drop.push_back(name);
    // Hop-by-hop headers the caller named in Connection go too (framing
    // headers stay: they describe this message, and kubegate relays it).
    if (f.name() == http::field::connection) {
      for (auto& listed : ConnectionListedHeaders(f.value())) {
        if (listed != "content-length" && listed != "transfer-encoding" && listed != "host") drop.push_back(listed);
      }
    }
  }
  for (const auto& n : drop) req.erase(n);
  for (auto f : {http::field::expect, http::field::keep_alive, http::field::proxy_connection, http::field::te}) {
    req.erase(f);
  }
  // Connection is kubegate's own: exactly "Upgrade" for an upgrade (with
  // the caller's Upgrade protocol), nothing otherwise.
  req.erase(http::field::connection);
  if (upgrade) req.set(http::field::connection, "Upgrade");
  req.set(http::field::host, up.HostHeader());
  if (std::string token = server_.UpstreamToken(); !token.empty()) {
    req.set(http::field::authorization, "Bearer " + token);
  }
  if (decision.pass_caller_impersonation) {
    // The caller's own --as stands (the config allows it); kubegate's
    // request id still travels as an extra, so the cluster's audit links back.
    for (auto& [n, v] : caller_impersonation) {
      if (!IEqualsAscii(n, kRequestIdExtraHeader)) req.insert(n, v);
    }
    req.insert(kRequestIdExtraHeader, request_id);
  } else {
    for (auto& [n, v] : ImpersonationHeaders(who, request_id, server_.config().upstream.impersonate)) req.insert(n, v);
  }
  if (!up.base_path.empty()) {
    if (req.target().empty() || req.target()[0] != '/') {
      co_return co_await Reply(Error::BadRequest("absolute-form request targets are not forwarded to an upstream "
                                                 "with a path prefix"),
                               request_id, false);
    }
    req.target(up.base_path + std::string(req.target()));
  }
  const bool has_body = inspected_body || !head.is_done();

  bool reused = false;
  auto acquired = co_await worker_.pool.Acquire(reused);
  if (!acquired) {
    server_.mutable_counters().upstream_errors++;
    co_return co_await Reply(acquired.error(), request_id, client_keep_alive && !has_body);
  }
  std::unique_ptr<UpstreamConn> conn = std::move(*acquired);
  Outcome out;
  beast::error_code ec;

  // Send the head and the body upstream. A stale pooled connection is
  // replaced once, when no body byte has been consumed yet.
  for (int attempt = 0;; ++attempt) {
    if (!inspected_body && head.is_done()) {
      co_await http::async_write(conn->stream, req, Redirect(ec));
      if (ec && reused && attempt == 0) {
        auto fresh = co_await worker_.pool.Connect();
        if (!fresh) {
          server_.mutable_counters().upstream_errors++;
          co_return co_await Reply(fresh.error(), request_id, client_keep_alive);
        }
        conn = std::move(*fresh);
        reused = false;
        continue;
      }
    } else if (inspected_body) {
      http::request<http::string_body> full(std::move(req.base()), std::move(*inspected_body));
      full.prepare_payload();
      co_await http::async_write(conn->stream, full, Redirect(ec));
      out.bytes_in += full.body().size();
    } else {
      // Stream the body through a bounded buffer: the client is read only as
      // fast as the upstream accepts.
      http::request_parser<http::buffer_body> bp(std::move(head));
      bp.body_limit(server_.max_body());
      http::request_serializer<http::buffer_body> sr(bp.get());
      bp.get().body().data = nullptr;
      bp.get().body().more = true;
      co_await http::async_write_header(conn->stream, sr, Redirect(ec));
      char* buf = RelayBuffer();
      const std::size_t buf_size = limits::kRelayBufferBytes;
      while (!ec && !bp.is_done()) {
        bp.get().body().data = buf;
        bp.get().body().size = buf_size;
        beast::get_lowest_layer(stream_).expires_after(limits::kBodyIdleTimeout);
        co_await http::async_read(stream_, buffer_, bp, Redirect(ec));
        beast::get_lowest_layer(stream_).expires_never();
        if (ec == http::error::need_buffer) ec = {};
        if (ec) {
          if (ec == http::error::body_limit) {
            server_.mutable_counters().rejected_bad_request++;
            co_return co_await Reply(Error::TooLarge("request body exceeds kubegate's limit of " +
                                                     std::to_string(server_.max_body()) + " bytes"),
                                     request_id, false);
          }
          co_return Outcome{};  // the client went away mid-body
        }
        std::size_t n = buf_size - bp.get().body().size;
        out.bytes_in += n;
        // A zero-length buffer must be null: Beast would frame it as a
        // (premature) last chunk.
        bp.get().body().data = n ? buf : nullptr;
        bp.get().body().size = n;
        bp.get().body().more = !bp.is_done();
        co_await http::async_write(conn->stream, sr, Redirect(ec));
        if (ec == http::error::need_buffer) ec = {};
      }
    }
    break;
  }
  if (ec) {
    server_.mutable_counters().upstream_errors++;
    co_return co_await Reply(Error::BadGateway("sending the request to the API server failed: " + ec.message()),
                             request_id, false);
  }

  // Read the response head; relay it and the body or the upgraded stream.
  http::response_parser<http::buffer_body> rp;
  rp.body_limit(boost::none);
  rp.header_limit(static_cast<std::uint32_t>(limits::kMaxResponseHeadBytes));
  if (is_head) rp.skip(true);
  co_await http::async_read_header(conn->stream, conn->buffer, rp, Redirect(ec));
  if (ec) {
    server_.mutable_counters().upstream_errors++;
    co_return co_await Reply(Error::BadGateway("reading the API server's response failed: " + ec.message()),
                             request_id, false);
  }
  auto& res = rp.get();
  out.status = static_cast<int>(res.result_int());
  if (res.result() == http::status::unauthorized) {
    // The caller was authenticated by kubegate; the API server refused the
    // gateway's own credential. Not the caller's to fix: a 502 that says so.
    server_.mutable_counters().upstream_errors++;
    co_return co_await Reply(Error::BadGateway("the API server refused kubegate's own upstream credential (401); "
                                               "the gateway's operator must renew it"),
                             request_id, false);
  }
  if (res.result() == http::status::switching_protocols && upgrade) {
    server_.mutable_counters().upgrades++;
    Outcome u = co_await RelayUpgrade(*conn, rp);
    u.bytes_in += out.bytes_in;
    co_return u;
  }
  bool upstream_keep_alive = res.keep_alive();
  res.erase(http::field::connection);
  res.erase(http::field::keep_alive);
  res.set("X-Kubegate-Request-Id", request_id);
  res.keep_alive(client_keep_alive);
  out.keep_alive = client_keep_alive;
  http::response_serializer<http::buffer_body> sr(res);
  if (is_head || rp.is_done()) {
    sr.split(true);
    res.body().data = nullptr;
    res.body().size = 0;
    res.body().more = false;
    if (is_head) {
      co_await http::async_write_header(stream_, sr, Redirect(ec));
    } else {
      co_await http::async_write(stream_, sr, Redirect(ec));
    }
  } else {
    // When body bytes came with the head, the first write below sends head
    // and body together (one TLS record); otherwise the head goes out now,
    // so a watch that has no event yet still answers at once.
    if (conn->buffer.size() == 0) co_await http::async_write_header(stream_, sr, Redirect(ec));
    // The last write of the loop carries more=false, which ends the body
    // (and a chunked body with its last chunk).
    char* buf = RelayBuffer();
    const std::size_t buf_size = limits::kRelayBufferBytes;
    auto relay_body = [&]() -> awaitable<void> {
      while (!ec && !rp.is_done()) {
        res.body().data = buf;
        res.body().size = buf_size;
        // Watches and logs -f: no read timeout; each piece is written as it comes.
        co_await http::async_read_some(conn->stream, conn->buffer, rp, Redirect(ec));
        if (ec == http::error::need_buffer) ec = {};
        if (ec) break;
        std::size_t n = buf_size - res.body().size;
        out.bytes_out += n;
        res.body().data = n ? buf : nullptr;  // see the request loop
        res.body().size = n;
        res.body().more = !rp.is_done();
        if (n == 0 && !rp.is_done()) continue;
        co_await http::async_write(stream_, sr, Redirect(ec));
        if (ec == http::error::need_buffer) ec = {};
      }
    };
    // A streamed answer (a watch, logs -f) may stay quiet for ever: the
    // caller going away is noticed at once, not at the next event, and the
    // upstream side is closed with it.
    std::string gone;
    auto which = co_await (relay_body() || WatchClientGone(gone));
    if (which.index() == 1) {
      out.keep_alive = false;
      out.closed_reason = "the streamed answer ended early: " + gone;
      CloseStream(conn->stream);
      co_return out;
    }
  }
  if (ec) {
    out.keep_alive = false;
    co_return out;
  }
  if (upstream_keep_alive && rp.is_done()) worker_.pool.Release(std::move(conn));
  co_return out;
}

// After a 101: relay the response head verbatim, then bytes both ways until
// either side closes. Memory per connection: two fixed relay buffers.
template <typename Stream>
awaitable<typename Session<Stream>::Outcome> Session<Stream>::RelayUpgrade(
    UpstreamConn& up, http::response_parser<http::buffer_body>& rp) {
  Outcome out;
  out.status = 101;
  beast::error_code ec;
  auto& res = rp.get();
  // The recording starts here, reading the protocol the 101 chose.
  const std::string upgrade(res[http::field::upgrade]);
  const std::string protocol(beast::iequals(upgrade, "websocket") ? res[http::field::sec_websocket_protocol]
                                                                   : res["X-Stream-Protocol-Version"]);
  // A session kubegate may end (a grant's, or one that must be recorded)
  // is ended with a Status kubectl prints, at a frame boundary.
  std::unique_ptr<SessionEnd> ender;
  if (session_limit_ || (recording_ && recording_->required)) ender = SessionEnd::For(upgrade, protocol);
  std::unique_ptr<RecordingTap> recorder;
  if (recording_) {
    RecordingHeader header = recording_->header;
    header.start_ms = SystemClock().NowMillis();
    recorder = std::make_unique<RecordingTap>(
        server_.recording_writer(),
        std::make_unique<SessionRecorder>(std::move(recording_->sink), std::move(header), recording_->options, nullptr),
        MakeSessionDecoder(upgrade, protocol, limits::kRecordingMaxMessageBytes), recording_->required,
        limits::kRecordingMaxPendingBytes, recording_->options.max_bytes);
  }
  http::response<http::empty_body> head(std::move(res.base()));
  http::response_serializer<http::empty_body> sr(head);
  co_await http::async_write_header(stream_, sr, Redirect(ec));
  if (ec) {
    // The cluster opened the session but the caller is gone: recorded as such.
    CloseStream(up.stream);
    if (recorder) out.recording = co_await FinishRecording(*recorder, "the caller went away before the session started");
    co_return out;
  }
  // Bytes that arrived with the heads belong to the streams.
  if (up.buffer.size()) {
    out.bytes_out += up.buffer.size();
    ForEachPiece(up.buffer.data(), [&](std::string_view piece) {
      if (recorder) recorder->FromServer(piece, SystemClock().NowMillis());
      if (ender) ender->FromServer(piece);
    });
    co_await asio::async_write(stream_, up.buffer.data(), Redirect(ec));
    up.buffer.consume(up.buffer.size());
  }
  if (!ec && buffer_.size()) {
    out.bytes_in += buffer_.size();
    ForEachPiece(buffer_.data(), [&](std::string_view piece) {
      if (recorder) recorder->FromClient(piece, SystemClock().NowMillis());
      if (ender) ender->FromClient(piece);
    });
    co_await asio::async_write(up.stream, buffer_.data(), Redirect(ec));
    buffer_.consume(buffer_.size());
  }
  if (ec) {
    CloseStream(up.stream);
    if (recorder) out.recording = co_await FinishRecording(*recorder, "the relay failed at its start");
    co_return out;
  }
  // Each pump shows the recording a copy of what it read, then writes it on
  // unchanged. A required recording that fails ends the session; one whose
  // writer is behind makes the pump wait for it.
  const bool recording_required = recording_ && recording_->required;
  // Whether the server-to-client pump is inside a write: if the session is
  // cut then, the client's framing is unknown and no notice is added.
  bool writing_to_client = false;
  auto pump = [&recorder, &ender, &writing_to_client, recording_required, &out](
                  auto& from, auto& to, std::uint64_t& counter, bool from_client) -> awaitable<void> {
    std::vector<char> buf(limits::kRelayBufferBytes);
    beast::error_code e;
    asio::steady_timer wait(co_await asio::this_coro::executor);
    while (true) {
      beast::get_lowest_layer(from).expires_after(limits::kUpgradedIdleTimeout);
      std::size_t n = co_await from.async_read_some(asio::buffer(buf), Redirect(e));
      if (n) {
        counter += n;
        if (recorder) {
          std::string_view seen(buf.data(), n);
          if (from_client) {
            recorder->FromClient(seen, SystemClock().NowMillis());
          } else {
            recorder->FromServer(seen, SystemClock().NowMillis());
          }
          while (recorder->behind() && !recorder->failed()) {
            beast::error_code we;
            wait.expires_after(limits::kRecordingBehindPoll);
            co_await wait.async_wait(Redirect(we));
            if (we) co_return;  // the session is ending
          }
          if (recording_required && recorder->failed()) {
            out.closed_reason = "session closed by kubegate: its recording failed and the rule requires one";
            co_return;
          }
        }
        if (ender && from_client) ender->FromClient(std::string_view(buf.data(), n));
        if (!from_client) writing_to_client = true;
        co_await asio::async_write(to, asio::buffer(buf.data(), n), Redirect(e));
        if (!from_client && !e) {
          writing_to_client = false;
          if (ender) ender->FromServer(std::string_view(buf.data(), n));
        }
      }
      if (e) co_return;
    }
  };
  if (session_limit_) {
    co_await (pump(stream_, up.stream, out.bytes_in, true) || pump(up.stream, stream_, out.bytes_out, false) ||
              WatchGrant(session_limit_->grant_id, session_limit_->expires_ms, out.closed_reason));
    if (out.closed_reason.find("grant") != std::string::npos) server_.mutable_counters().sessions_closed_by_grant++;
  } else {
    co_await (pump(stream_, up.stream, out.bytes_in, true) || pump(up.stream, stream_, out.bytes_out, false));
  }
  if (!out.closed_reason.empty()) {
    CloseStream(up.stream);
    // Tell kubectl why, as the API server would: a Status on the error
    // channel, so it prints the reason and exits non-zero.
    std::string notice = ender && !writing_to_client ? ender->Notice(out.closed_reason) : std::string();
    if (!notice.empty()) {
      beast::get_lowest_layer(stream_).expires_after(limits::kSessionEndNoticeTimeout);
      co_await asio::async_write(stream_, asio::buffer(notice), Redirect(ec));
      server_.mutable_counters().sessions_ended_with_status += ec ? 0 : 1;
    }
    CloseStream(stream_);
  }
  CloseStream(up.stream);
  if (recorder) {
    out.recording = co_await FinishRecording(*recorder, out.closed_reason);
    if (!out.recording->value("write_error", std::string()).empty()) server_.mutable_counters().recording_failures++;
  }
  co_return out;
}

template <typename Stream>
awaitable<typename Session<Stream>::Outcome> Session<Stream>::Reply(const Error& e, const std::string& request_id,
                                                                    bool keep_alive) {
  http::response<http::string_body> res(static_cast<http::status>(e.http_code), 11);
  res.set(http::field::content_type, "application/json");
  res.set(http::field::cache_control, "no-cache, private");
  if (!request_id.empty()) res.set("X-Kubegate-Request-Id", request_id);
  res.body() = StatusJson(e);
  res.keep_alive(keep_alive);
  res.prepare_payload();
  beast::error_code ec;
  beast::get_lowest_layer(stream_).expires_after(limits::kRequestHeadTimeout);
  co_await http::async_write(stream_, res, Redirect(ec));
  beast::get_lowest_layer(stream_).expires_never();
  co_return Outcome{e.http_code, 0, res.body().size(), keep_alive && !ec, ""};
}

template <typename Stream>
awaitable<nlohmann::json> Session<Stream>::FinishRecording(RecordingTap& tap, std::string ended_by) {
  const std::int64_t now = SystemClock().NowMillis();
  RecordingSummary s = co_await AwaitResume<RecordingSummary>([&](std::function<void(RecordingSummary)> resume) {
    tap.Finish(now, ended_by, std::move(resume));
  });
  nlohmann::json j = s.ToJson();
  j["file"] = std::filesystem::path(recording_->path).filename().string();
  co_return j;
}

template <typename Stream>
awaitable<Result<http::response<http::string_body>>> Session<Stream>::OwnUpstreamRequest(
    http::request<http::string_body>& req) {
  const UpstreamTarget& up = server_.upstream();
  req.set(http::field::host, up.HostHeader());
  if (std::string token = server_.UpstreamToken(); !token.empty()) {
    req.set(http::field::authorization, "Bearer " + token);
  }
  req.target(up.base_path + std::string(req.target()));
  req.keep_alive(true);
  req.prepare_payload();
  bool reused = false;
  auto acquired = co_await worker_.pool.Acquire(reused);
  if (!acquired) co_return acquired.error();
  std::unique_ptr<UpstreamConn> conn = std::move(*acquired);
  beast::error_code ec;
  co_await http::async_write(conn->stream, req, Redirect(ec));
  if (ec && reused) {
    auto fresh = co_await worker_.pool.Connect();
    if (!fresh) co_return fresh.error();
    conn = std::move(*fresh);
    ec = {};
    co_await http::async_write(conn->stream, req, Redirect(ec));
  }
  if (ec) co_return Error::BadGateway("sending kubegate's own request to the API server failed: " + ec.message());
  http::response_parser<http::string_body> rp;
  rp.body_limit(limits::kMaxOwnUpstreamResponseBytes);
  rp.header_limit(static_cast<std::uint32_t>(limits::kMaxResponseHeadBytes));
  beast::get_lowest_layer(conn->stream).expires_after(limits::kUpstreamConnectTimeout);
  co_await http::async_read(conn->stream, conn->buffer, rp, Redirect(ec));
  beast::get_lowest_layer(conn->stream).expires_never();
  if (ec) co_return Error::BadGateway("reading the API server's answer to kubegate's own request failed: " + ec.message());
  http::response<http::string_body> res = rp.release();
  if (res.keep_alive()) worker_.pool.Release(std::move(conn));
  co_return res;
}

template <typename Stream>
awaitable<Result<NamespaceLabels>> Session<Stream>::NamespaceLabelsOf(const std::string& ns) {
  const std::int64_t now = SystemClock().NowMillis();
  // A name that is not a DNS-1123 label cannot be a namespace: no labels,
  // and nothing to look up (the API server refuses such requests itself).
  if (!IsDns1123Label(ns)) co_return NamespaceLabels{};
  if (auto cached = server_.namespace_labels().Lookup(ns, now)) co_return std::move(*cached);
  http::request<http::string_body> req(http::verb::get, "/api/v1/namespaces/" + ns, 11);
  req.set(http::field::accept, "application/json");
  req.set(http::field::user_agent, "kubegate (namespace labels for policy)");
  auto res = co_await OwnUpstreamRequest(req);
  auto fail = [&](const std::string& why) {
    return Error::Unavailable("kubegate could not read the labels of namespace \"" + ns +
                              "\", which its policy needs to decide this request, so nothing was forwarded: " + why);
  };
  if (!res) co_return fail(res.error().message);
  NamespaceLabels labels;
  if (res->result() == http::status::not_found) {
    // No such namespace: no labels (the request itself will find nothing there).
  } else if (res->result() != http::status::ok) {
    co_return fail("the API server answered " + std::to_string(res->result_int()) +
                   " to kubegate's own credential (it needs get on namespaces)");
  } else {
    auto parsed = ParseNamespaceLabels(res->body());
    if (!parsed) co_return fail(parsed.error().message);
    labels = std::move(*parsed);
  }
  server_.namespace_labels().Store(ns, labels, now);
  co_return labels;
}

// `fn` is taken by reference, not copied into the coroutine frame: the
// caller's temporary lives until its co_await completes, and GCC 12 has
// destroyed by-value lambda parameters of coroutines twice.
template <typename Stream>
template <typename T, typename F>
awaitable<T> Session<Stream>::OnStoreThread(F&& fn) {
  co_return co_await AwaitResume<T>([&](std::function<void(T)> resume) {
    asio::post(server_.reader_pool(), [&fn, resume = std::move(resume)]() { resume(fn()); });
  });
}

template <typename Stream>
awaitable<typename Session<Stream>::ReviewOutcome> Session<Stream>::Review(
    const Identity& who, const RequestInfo& info, const Decision& decision, const DecisionFacts& facts,
    const http::request<http::empty_body>& req, const std::optional<std::string>& body,
    const std::string& content_type) {
  ReviewOutcome out;
  ApprovalService* svc = server_.approvals();
  const PolicyRule* rule = decision.policy_rule;
  if (!svc || !rule) {
    out.refusal = Error::Unavailable("kubegate cannot hold requests for review without its store");
    co_return out;
  }
  const auto started = Clock::now();
  auto waited = [&] {
    return static_cast<std::int64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started).count());
  };
  nlohmann::json request = {{"method", facts.method},
                            {"target", facts.target},
                            {"kubectl_command", facts.kubectl_command},
                            {"info", RequestInfoJson(info)}};
  if (body && !body->empty()) {
    request["body_summary"] = SummarizeRequestBody(RedactRequestBody(info.resource, content_type, *body));
  }
  // The approver sees which container a session runs in: an exec or attach
  // under review names it (kubectl always does, -c or its default). With
  // none the API server would pick one after approval.
  if (info.exec && info.exec->container.empty()) {
    out.refusal = Error::BadRequest("kubegate: an " + info.subresource + " that needs review must name its container "
                                    "(?container=NAME, kubectl -c NAME), so the approver sees where it runs");
    co_return out;
  }
  NewApproval n{facts.request_id, &who, &info, rule, request};
  // The approval and any grant are bound to this body: a twin with another
  // body is another review.
  if (body && !body->empty()) n.body_sha256 = Sha256Hex(*body);
  const RequestedAction action{info, n.body_sha256};
  auto store_error = [&](const Error& e) {
    out.refusal = Error::Unavailable("kubegate cannot reach its approval store, so the request was not forwarded: " +
                                     e.message);
  };

  // An automatic approver of the rule holds: approved by the policy itself.
  if (decision.auto_approver) {
    std::string approver = "policy:" + rule->name + "/" + decision.auto_approver->name;
    auto store_work1 = [svc, &n, approver] {
      return svc->OpenApprovedByPolicy(n, approver);
    };
    auto r = co_await OnStoreThread<Result<ApprovalRequest>>(store_work1);
    if (!r) {
      store_error(r.error());
      co_return out;
    }
    auto store_work2 = [svc, id = r->grant_id] { return svc->GetGrant(id); };
    auto grant = co_await OnStoreThread<Result<std::optional<Grant>>>(store_work2);
    const Grant* g = grant && *grant ? &**grant : nullptr;
    out.approval = ApprovalAuditFacts(*r, g, waited());
    out.forward = true;
    co_return out;
  }

  // A live grant from an earlier approval covers this request.
  auto store_work3 = [svc, &who, &action, rule] {
    return svc->UseGrant(who, action, rule->name);
  };
  auto grant = co_await OnStoreThread<Result<std::optional<Grant>>>(store_work3);
  if (!grant) {
    store_error(grant.error());
    co_return out;
  }
  if (*grant) {
    auto store_work4 = [svc, id = (*grant)->approval_id] { return svc->Get(id); };
    auto r = co_await OnStoreThread<Result<ApprovalRequest>>(store_work4);
    if (!r) {
      store_error(r.error());
      co_return out;
    }
    out.approval = ApprovalAuditFacts(*r, &**grant, waited());
    out.forward = true;
    out.grant_id = (*grant)->id;
    out.grant_expires_ms = (*grant)->expires_ms;
    co_return out;
  }

  // Ask: open an approval request (or join the caller's pending twin).
  // Approvers see what the API server says of a write before deciding, so
  // its dry run comes first and is stored with the request.
  const std::string& verb = info.verb;
  if ((verb == "create" || verb == "update" || verb == "patch" || verb == "delete" || verb == "deletecollection") &&
      info.stream == StreamKind::kNone && !decision.pass_caller_impersonation) {
    n.dry_run = co_await DryRunForApprovers(who, facts, req, body);
  }
  auto store_work5 = [svc, &n] { return svc->Open(n); };
  auto opened = co_await OnStoreThread<Result<ApprovalRequest>>(store_work5);
  if (!opened) {
    store_error(opened.error());
    co_return out;
  }
  if (opened->id == facts.request_id) server_.NotifyApproval("new", *opened);  // not a joined twin
  out.approval = ApprovalAuditFacts(*opened, nullptr, waited());
  if (!rule->review.hold) {
    out.refusal = Error::Forbidden(PendingInstructions(*opened));
    co_return out;
  }
  if (!server_.TryHold(who.user)) {
    out.refusal = Error{429, "TooManyRequests",
                        "kubegate holds at most " + std::to_string(server_.config().approvals.max_held_per_caller) +
                            " requests per caller (and " + std::to_string(server_.config().approvals.max_held_total) +
                            " in all) waiting for approval; wait for those to be decided"};
    co_return out;
  }
  spdlog::info("request {} held for approval under rule {} (approval request {})", facts.request_id, rule->name,
               opened->id);
  ApprovalRequest decided;
  std::string gone;
  auto which = co_await (WaitForDecision(opened->id, opened->expires_ms, decided) || WatchClientGone(gone));
  server_.ReleaseHold(who.user);
  if (which.index() == 1) {
    // The caller went away (or overran the read-ahead bound): its request
    // is withdrawn and can never run later.
    auto store_work6 = [svc, id = opened->id, gone] {
      return svc->Close(id, ApprovalState::kWithdrawn, gone + " while waiting");
    };
    auto closed = co_await OnStoreThread<Result<ApprovalRequest>>(store_work6);
    if (closed) out.approval = ApprovalAuditFacts(*closed, nullptr, waited());
    out.withdrawn = true;
    co_return out;
  }
  if (!std::get<0>(which)) decided.state = ApprovalState::kExpired;
  if (decided.state == ApprovalState::kExpired) server_.NotifyApproval("expired", decided);
  if (decided.state == ApprovalState::kApproved) {
    // The approved request itself takes the grant's first use.
    // Only a request that obtains a use of the grant is forwarded: twins
    // that waited on the same approval share its uses, never exceed them.
    auto store_work7 = [svc, &who, &action, rule] {
      return svc->UseGrant(who, action, rule->name);
    };
    auto used = co_await OnStoreThread<Result<std::optional<Grant>>>(store_work7);
    if (!used) {
      store_error(used.error());
      co_return out;
    }
    const Grant* g = *used ? &**used : nullptr;
    out.approval = ApprovalAuditFacts(decided, g, waited());
    if (!g) {
      out.refusal = Error::Forbidden("kubegate: request " + decided.id + " was approved, but its grant has no use left "
                                     "for this request (" + std::to_string(decided.asked) +
                                     " identical requests asked; each needs its own use). Nothing was done.");
      co_return out;
    }
    out.forward = true;
    out.grant_id = g->id;
    out.grant_expires_ms = g->expires_ms;
    co_return out;
  }
  out.approval = ApprovalAuditFacts(decided, nullptr, waited());
  std::string why;
  switch (decided.state) {
    case ApprovalState::kDenied:
      why = "was denied by " + decided.decided_by + ": " + decided.reason;
      break;
    case ApprovalState::kExpired:
      why = "was not approved within " + std::to_string(rule->review.max_wait_ms / 60000) + "m" +
            (rule->review.max_wait_ms % 60000 ? std::to_string(rule->review.max_wait_ms % 60000 / 1000) + "s" : "") +
            "; run the command again to ask again";
      break;
    default:
      why = "was " + std::string(ApprovalStateName(decided.state)) + ": " + decided.reason;
  }
  out.refusal = Error::Forbidden("kubegate: request " + decided.id + " " + why + " (rule \"" + rule->name +
                                 "\"" + (rule->message.empty() ? "" : ": " + rule->message) + "). Nothing was done.");
  co_return out;
}

template <typename Stream>
awaitable<nlohmann::json> Session<Stream>::DryRunForApprovers(const Identity& who, const DecisionFacts& held,
                                                              const http::request<http::empty_body>& req,
                                                              const std::optional<std::string>& body) {
  nlohmann::json note = {{"at_ms", SystemClock().NowMillis()}};
  auto not_run = [&](const std::string& why) {
    note["summary"] = "not run: " + why;
    return note;
  };
  if (held.target.empty() || held.target[0] != '/') co_return not_run("the request target is not a path");
  // Built so the API server reads it as a dry run (a DELETE carries dryRun
  // in its DeleteOptions body), and read back before it may be sent.
  OwnRequest asked{held.method, held.target, "", body.value_or("")};
  if (auto it = req.find(http::field::content_type); it != req.end()) asked.content_type = std::string(it->value());
  auto built = BuildApproversDryRun(asked);
  if (!built) co_return not_run(built.error().message);
  const std::string& target = built->request.target;
  DecisionFacts f;
  f.request_id = NewRequestId();
  f.received_ms = SystemClock().NowMillis();
  f.source = "kubegate";
  f.method = built->request.method;
  f.target = target;
  f.user_agent = "kubegate (server-side dry run for approvers)";
  f.kubectl_command = held.kubectl_command;
  f.who = &who;
  f.info = &built->info;
  f.action = "allow";
  f.rule = "approval-dry-run";
  f.message = "server-side dry run of held request " + held.request_id + " for its approvers";
  f.approval = {{"id", held.request_id}, {"purpose", "dry-run"}};
  // The DeleteOptions kubegate wrote are part of what was sent (they carry
  // the dry run); other bodies are the caller's and follow the rule's audit.
  if (NeedsBodyToClassify(built->info)) {
    f.request_body = RedactRequestBody(built->info.resource, built->request.content_type, built->request.body);
  }
  auto headers = ImpersonationHeaders(who, f.request_id, server_.config().upstream.impersonate);
  f.impersonated = ImpersonatedForRecord(headers);
  if (std::string not_committed = co_await CommitDecision(f); !not_committed.empty()) {
    co_return not_run("its audit record could not be written (" + not_committed + ")");
  }
  note["request_id"] = f.request_id;
  http::request<http::string_body> dr(req.method(), target, 11);
  if (!built->request.content_type.empty()) dr.set(http::field::content_type, built->request.content_type);
  dr.set(http::field::accept, "application/json");
  dr.set(http::field::user_agent, f.user_agent);
  for (auto& [n, v] : headers) dr.insert(n, v);
  dr.body() = built->request.body;
  auto res = co_await OwnUpstreamRequest(dr);
  Outcome o;
  o.bytes_in = dr.body().size();
  if (res) {
    o.status = static_cast<int>(res->result_int());
    o.bytes_out = res->body().size();
  } else {
    o.status = res.error().http_code;
  }
  AuditResult(f, o, res ? "" : res.error().message);
  if (!res) co_return not_run(res.error().message);
  note["status"] = o.status;
  note["summary"] = DescribeDryRunAnswer(o.status, res->body());
  co_return note;
}

// Polls the approval request until it is decided (true; `out` holds it) or
// its wait limit passes without the store answering (false).
template <typename Stream>
awaitable<bool> Session<Stream>::WaitForDecision(const std::string& id, std::int64_t expires_ms, ApprovalRequest& out) {
  ApprovalService* svc = server_.approvals();
  asio::steady_timer t(co_await asio::this_coro::executor);
  while (true) {
    t.expires_after(limits::kHoldPollInterval);
    auto [ec] = co_await t.async_wait(asio::as_tuple(use_awaitable));
    if (ec) co_return false;
    auto store_work8 = [svc, id] { return svc->Get(id); };
    auto r = co_await OnStoreThread<Result<ApprovalRequest>>(store_work8);
    if (r && r->state != ApprovalState::kPending) {
      out = std::move(*r);
      co_return true;
    }
    if (!r && SystemClock().NowMillis() > expires_ms + 5000) co_return false;
  }
}

// Returns when the held caller closes its connection (or breaks it).
template <typename Stream>
awaitable<void> Session<Stream>::WatchClientGone(std::string& why) {
  beast::error_code ec;
  beast::get_lowest_layer(stream_).expires_never();
  while (true) {
    // Bytes that come meanwhile stay for the next request, within a fixed
    // bound: more is a protocol error (kubectl never pipelines).
    if (buffer_.size() >= limits::kMaxBytesReadAhead) {
      why = "the caller sent more than " + std::to_string(limits::kMaxBytesReadAhead / 1024) +
            " KiB while waiting for an answer";
      co_return;
    }
    std::size_t room = std::min<std::size_t>(4096, limits::kMaxBytesReadAhead - buffer_.size());
    std::size_t n = co_await stream_.async_read_some(buffer_.prepare(room), Redirect(ec));
    buffer_.commit(n);
    if (ec) {
      why = ec == asio::error::eof || ec == ssl::error::stream_truncated ? "the caller closed its connection"
                                                                          : "the caller's connection broke (" + ec.message() + ")";
      co_return;
    }
  }
}

// Ends an exec/attach/port-forward stream when its grant expires or is
// revoked; `reason` says which.
template <typename Stream>
awaitable<void> Session<Stream>::WatchGrant(std::string grant_id, std::int64_t expires_ms, std::string& reason) {
  ApprovalService* svc = server_.approvals();
  asio::steady_timer t(co_await asio::this_coro::executor);
  while (true) {
    std::int64_t left = expires_ms - SystemClock().NowMillis();
    if (left <= 0) {
      reason = "session closed by kubegate: grant " + grant_id + " expired";
      co_return;
    }
    t.expires_after(std::min<std::chrono::milliseconds>(std::chrono::milliseconds(left), limits::kGrantRevocationPoll));
    auto [ec] = co_await t.async_wait(asio::as_tuple(use_awaitable));
    if (ec) co_return;
    auto store_work9 = [svc, grant_id] { return svc->GetGrant(grant_id); };
    auto g = co_await OnStoreThread<Result<std::optional<Grant>>>(store_work9);
    if (g && *g && (*g)->revoked) {
      reason = "session closed by kubegate: grant " + grant_id + " was revoked by " + (*g)->revoked_by;
      co_return;
    }
  }
}

// /kubegate/v1/approvals and /kubegate/v1/grants: deciding, with the
// caller's own identity; runs on the store thread.
template <typename Stream>
awaitable<bool> Session<Stream>::ServeApprovalApi(http::request_parser<http::empty_body>& head, const Identity& who,
                                                  const RequestInfo& info, DecisionFacts& facts,
                                                  Clock::time_point start) {
  const std::string& request_id = facts.request_id;
  facts.rule = "approval-api";
  facts.action = "allow";
  bool keep_alive = head.get().keep_alive();
  std::string body;
  if (!head.is_done()) {
    http::request_parser<http::string_body> bp(std::move(head));
    bp.body_limit(limits::kMaxApprovalApiBody);
    beast::get_lowest_layer(stream_).expires_after(limits::kBodyIdleTimeout);
    beast::error_code ec;
    co_await http::async_read(stream_, buffer_, bp, Redirect(ec));
    beast::get_lowest_layer(stream_).expires_never();
    if (ec) {
      Outcome o = co_await Reply(ParseErrorToStatus(ec), request_id, false);
      AuditAnswered(facts, o, "unreadable body");
      co_return false;
    }
    body = std::move(bp.get().body());
  }
  ApprovalService* svc = server_.approvals();
  ApprovalApiResponse resp;
  if (!svc) {
    resp = {503, "application/json", StatusJson(Error::Unavailable("approvals are not available")), std::nullopt};
  } else {
    std::string method = facts.method;
    const bool auditor = IsAuditor(who, server_.config().auditors);
    auto store_work10 = [svc, &who, auditor, method, &info, &body] {
      return RunApprovalApi(*svc, who, auditor, method, info.path, info.raw_query, body);
    };
    resp = co_await OnStoreThread<ApprovalApiResponse>(store_work10);
  }
  if (resp.status >= 400) facts.action = "deny";
  if (resp.decided) {
    facts.approval = ApprovalAuditFacts(*resp.decided, nullptr, 0);
    server_.NotifyApproval(ApprovalStateName(resp.decided->state), *resp.decided);
  }
  AuditApiResponse api{resp.status, resp.content_type, resp.body};
  Outcome o = co_await ReplyApi(api, request_id, keep_alive);
  AuditAnswered(facts, o, resp.status >= 400 ? resp.body : "");
  Log(request_id, facts.method, facts.target, &who, &info, nullptr, o, start);
  co_return o.keep_alive;
}

template <typename Stream>
awaitable<typename Session<Stream>::Outcome> Session<Stream>::ReplyApi(const AuditApiResponse& r,
                                                                       const std::string& request_id,
                                                                       bool keep_alive) {
  http::response<http::string_body> res(static_cast<http::status>(r.status), 11);
  res.set(http::field::content_type, r.content_type);
  res.set(http::field::cache_control, "no-cache, private");
  res.set("X-Kubegate-Request-Id", request_id);
  res.body() = r.body;
  res.keep_alive(keep_alive);
  res.prepare_payload();
  beast::error_code ec;
  co_await http::async_write(stream_, res, Redirect(ec));
  co_return Outcome{r.status, 0, res.body().size(), keep_alive && !ec, ""};
}

template <typename Stream>
awaitable<typename Session<Stream>::Outcome> Session<Stream>::ReplyText(http::status status, std::string_view body,
                                                                        bool keep_alive) {
  http::response<http::string_body> res(status, 11);
  res.set(http::field::content_type, "text/plain; charset=utf-8");
  res.body() = std::string(body);
  res.keep_alive(keep_alive);
  res.prepare_payload();
  beast::error_code ec;
  co_await http::async_write(stream_, res, Redirect(ec));
  co_return Outcome{static_cast<int>(status), 0, body.size(), keep_alive && !ec, ""};
}

template <typename Stream>
void Session<Stream>::Log(const std::string& request_id, std::string_view method, std::string_view target,
                          const Identity* who, const RequestInfo* info, const Decision* decision, const Outcome& o,
                          Clock::time_point start) {
  if (!spdlog::should_log(spdlog::level::info)) return;
  nlohmann::ordered_json j;
  j["request_id"] = request_id;
  j["source"] = peer_;
  j["method"] = method;
  j["target"] = target;
  if (who) {
    j["user"] = who->user;
    j["groups"] = who->groups;
    j["kind"] = IdentityKindName(who->kind);
    j["auth"] = AuthMethodName(who->method);
  }
  if (info) {
    j["verb"] = info->verb;
    if (info->is_resource_request) {
      j["group"] = info->api_group;
      j["version"] = info->api_version;
      j["resource"] = info->resource;
      j["subresource"] = info->subresource;
      j["namespace"] = info->namespace_;
      j["name"] = info->name;
    } else {
      j["path"] = info->path;
    }
    if (info->dry_run) j["dry_run"] = true;
    if (info->exec) j["command"] = info->exec->command;
  }
  if (decision) j["decision"] = decision->rule;
  j["status"] = o.status;
  j["bytes_in"] = o.bytes_in;
  j["bytes_out"] = o.bytes_out;
  j["duration_ms"] = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  spdlog::info("{}", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

}  // namespace

Result<std::unique_ptr<GatewayServer>> GatewayServer::Create(const Config& config, const UpstreamTarget& upstream,
                                                             const ServingCert& cert, AuditWiring audit) {
  auto s = std::make_unique<ServerImpl>(config, upstream, cert, std::move(audit));
  auto ok = s->Init();
  if (!ok) return ok.error();
  return std::unique_ptr<GatewayServer>(std::move(s));
}

}  // namespace kubegate
