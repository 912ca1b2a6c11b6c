// Session: one caller's connection, request after request. It reads each
// request head, runs the stages in the order HandleRequest declares
// (session.cc), and ends every request through Finish. The stages' logic
// lives in the plain modules (pipeline/, approval/, audit/, recording/);
// a stage here reads and writes bytes and calls them.
//
// Files: session.cc (the driver, Finish, replies, log), session_stages.cc
// (authenticate .. commit), session_hold.cc (the review stage's waiting and
// the approvers' dry run), session_api.cc (probes, /metrics, the audit and
// approval APIs), forwarder.cc (forward), response_relay.cc (the answer),
// upgrade_relay.cc
// (exec/attach/port-forward streams).
#pragma once

#include <memory>
#include <optional>
#include <string>

#include <boost/asio/awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include "net/net_stream.h"
#include "net/gateway_services.h"
#include "net/upstream_pool.h"
#include "pipeline/request_context.h"

namespace kubegate {

class WakeUpWaiter;

class Session {
 public:
  Session(GatewayServices& g, UpstreamPool& pool, NetStream stream, std::string peer)
      : g_(g), pool_(pool), stream_(std::move(stream)), peer_(std::move(peer)) {}

  // What Serve left the connection as.
  enum class Served { kIdle, kClosed };
  // Does the TLS handshake on the first call, then serves requests until
  // the connection ends (kClosed, closed) or has nothing buffered to read
  // (kIdle, at once after the handshake, and after each request that left
  // nothing). Called again once WaitForNextRequest returns (`after_wait`),
  // with that wait's error: a wait that failed (timed out, closed by the
  // caller) closes the connection. ServeSession drives it.
  boost::asio::awaitable<Served> Serve(bool after_wait, boost::beast::error_code wait_ec);
  // Calls `done` once the next request may be read (or the idle timeout
  // Serve armed passes, or the connection breaks). Holds no coroutine.
  template <typename Handler>
  void WaitForNextRequest(Handler&& done) {
    stream_.async_wait_readable(std::forward<Handler>(done));
  }
  NetStream::executor_type stream_executor() { return stream_.get_executor(); }

 private:
  using Head = boost::beast::http::request_parser<boost::beast::http::empty_body>;
  using UpstreamResponse = boost::beast::http::response_parser<boost::beast::http::buffer_body>;

  // The request flow; returns whether the connection stays open.
  boost::asio::awaitable<bool> HandleRequest(Head& head);
  // The one exit of every request: replies (a refusal), audits, logs, counts.
  boost::asio::awaitable<bool> Finish(RequestContext& ctx, Respond r);
  RequestContext ContextOf(const Head& head) const;

  // Stages, in order (session_stages.cc unless noted).
  StageResult CheckFraming(RequestContext& ctx, const Head& head);
  boost::asio::awaitable<StageResult> Authenticate(RequestContext& ctx, const Head& head);
  StageResult Classify(RequestContext& ctx);
  boost::asio::awaitable<StageResult> ServeGatewayApi(RequestContext& ctx, Head& head);  // session_api.cc
  boost::asio::awaitable<StageResult> ReadBodyToDecide(RequestContext& ctx, Head& head);
  boost::asio::awaitable<StageResult> Decide(RequestContext& ctx, Head& head);
  boost::asio::awaitable<StageResult> Hold(RequestContext& ctx, Head& head);  // session_hold.cc
  StageResult PlanRecording(RequestContext& ctx, const Head& head);
  boost::asio::awaitable<StageResult> CommitDecision(RequestContext& ctx);
  boost::asio::awaitable<Respond> ForwardAndRelay(RequestContext& ctx, Head& head);  // forwarder.cc
  // Streams the rest of the body to `up` (request_body_relay.cc); a Respond
  // when the request ends here (too large, the caller gone), else write
  // errors in `ec`.
  boost::asio::awaitable<StageResult> StreamBodyUpstream(Head& head, UpstreamConn& up, Outcome& out,
                                                         boost::beast::error_code& ec);
  boost::asio::awaitable<Respond> RelayResponse(RequestContext& ctx, std::unique_ptr<UpstreamConn> conn, Outcome out,
                                                bool upgrade, bool client_keep_alive, bool is_head);  // response_relay.cc
  boost::asio::awaitable<Outcome> RelayUpgrade(RequestContext& ctx, UpstreamConn& up, UpstreamResponse& rp);

  // Probes (/healthz, /livez, /readyz): unauthenticated, not audited.
  // Returns whether it was one (and `keep` whether the connection stays).
  boost::asio::awaitable<bool> ServeProbe(Head& head, bool& keep);
  boost::asio::awaitable<StageResult> ServeAuditApi(RequestContext& ctx);
  boost::asio::awaitable<StageResult> ServeApprovalApi(RequestContext& ctx, Head& head);
  boost::asio::awaitable<StageResult> ServeCredentialApi(RequestContext& ctx, Head& head,
                                                         const char* rule);  // session_api.cc
  boost::asio::awaitable<StageResult> ReadApiBody(RequestContext& ctx, Head& head, const char* rule);

  // Reads the whole body (bounded by `limit`) into ctx.body; the head
  // stays in `head` for forwarding. A refusal when it cannot be read.
  boost::asio::awaitable<StageResult> ReadBody(RequestContext& ctx, Head& head, std::size_t limit);
  // The approvers' dry run of a held write, recorded like any request
  // kubegate forwards (committed first); returns its note.
  boost::asio::awaitable<nlohmann::json> DryRunForApprovers(const RequestContext& held, const Head& head);
  // Ends a stream when its grant expires or is revoked; `reason` says which.
  boost::asio::awaitable<void> WatchGrant(std::string grant_id, std::int64_t expires_ms, std::string& reason);
  // Returns (with `reason`) once `who` may no longer act: its user was
  // disabled at runtime, or the store token it came with (a task token, a
  // static token) was revoked or expired. Woken by the credential cache's
  // changes (WakeUps keys CredentialCache::WakeKeys), not by polling.
  boost::asio::awaitable<void> WatchIdentity(const Identity& who, std::string& reason);
  // Whether the caller's identity can end while its request is held or its
  // answer streams (runtime identities are on).
  bool CanEnd(const RequestContext& ctx) const;
  // What ended the wait of WatchCaller.
  enum class CallerEnd { kLeft, kIdentityEnded };
  // Returns at the first of: the caller closing or breaking its connection,
  // or sending more than limits::kMaxBytesReadAhead ahead of its answer
  // (kLeft), or, when CanEnd and `identity_too`, its identity ending
  // (kIdentityEnded); `why` says what happened. For a streamed answer,
  // raced against its relay.
  boost::asio::awaitable<CallerEnd> WatchCaller(const RequestContext& ctx, std::string& why, bool identity_too = true);
  // One wait of a held request or a stream on `waiter` (which watches the
  // caller's connection, and the identity's keys when `identity`): how the
  // caller ended (`why` says how), or nothing when `deadline_ms` came, a
  // wake-up came on the waiter's own keys, or the wait was cancelled. Bytes
  // the caller sends meanwhile go to the session's buffer (ReadAhead).
  boost::asio::awaitable<std::optional<CallerEnd>> AwaitCaller(const RequestContext& ctx, WakeUpWaiter& waiter,
                                                               bool identity, std::int64_t deadline_ms,
                                                               std::string& why);
  // Reads, without waiting, what the caller sent ahead of its answer into
  // the session's buffer (kept for the next request); false with `why`
  // when the caller closed or broke its connection.
  bool ReadAhead(std::string& why);
  // At the moment a held request would be forwarded: why its caller may no
  // longer act, read from the store itself (a revocation or a disable
  // committed through any replica counts, without the cache's poll lag),
  // or nothing. A store that cannot be read ends it too (fail closed).
  boost::asio::awaitable<std::optional<std::string>> IdentityEnded(const RequestContext& ctx);
  // The labels of namespace `ns` (cached); none for a namespace that does
  // not exist; an error when they cannot be read.
  boost::asio::awaitable<Result<NamespaceLabels>> NamespaceLabelsOf(const std::string& ns);
  boost::asio::awaitable<Result<Identity>> ReviewServiceAccountToken(std::string_view token, std::string& reason);

  boost::asio::awaitable<Outcome> Reply(const Error& e, const std::string& request_id, bool keep_alive);
  // `retry_after_seconds` > 0 adds a Retry-After header.
  boost::asio::awaitable<Outcome> ReplyBody(int status, std::string_view content_type, std::string_view body,
                                            const std::string& request_id, bool keep_alive,
                                            int retry_after_seconds = 0);
  void Log(const RequestContext& ctx, const Outcome& o) const;

  GatewayServices& g_;
  UpstreamPool& pool_;
  NetStream stream_;
  std::string peer_;
  boost::beast::flat_buffer buffer_;
  std::optional<PeerCertificate> peer_cert_;
  bool untrusted_peer_ = false;
  bool handshaken_ = false;
};

// Runs `s` to its end: Serve, and while it says idle, a wait for the next
// request that holds no coroutine frame (an idle connection keeps only
// the session, its stream, `keep` and the wait), then Serve again.
// `keep` lives as long as the session (the connection-limit ticket).
void ServeSession(std::shared_ptr<Session> s, std::shared_ptr<void> keep, bool after_wait = false,
                  boost::beast::error_code wait_ec = {});

}  // namespace kubegate
