// Forward and relay: the caller's request goes to the API server with the
// caller's credentials removed and kubegate's credential and the caller's
// identity added (forward/header_rewrite.h); the answer, a streamed answer
// (watch, logs -f) or an upgraded stream comes back.
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

#include "common/limits.h"
#include "forward/header_rewrite.h"
#include "net/io_helpers.h"
#include "net/session.h"

namespace kubegate {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using asio::awaitable;
using io::CloseUpstream;
using io::IsUpgradeRequest;
using io::Redirect;
using namespace asio::experimental::awaitable_operators;

namespace {

// Rewrites the head for the API server: the caller's credentials,
// impersonation and hop-by-hop headers go; kubegate's credential and the
// identity computed by the decide stage come.
void RewriteHead(http::request<http::empty_body>& req, const UpstreamTarget& up, const std::string& token,
                 const std::vector<std::pair<std::string, std::string>>& identity, bool upgrade) {
  std::vector<std::string> drop;
  for (const auto& f : req) {
    std::string name(f.name_string());
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
  if (!token.empty()) req.set(http::field::authorization, "Bearer " + token);
  for (const auto& [n, v] : identity) req.insert(n, v);
}

}  // namespace

awaitable<Respond> Session::ForwardAndRelay(RequestContext& ctx, Head& head) {
  auto& req = head.get();
  const UpstreamTarget& up = g_.upstream;
  const bool upgrade = IsUpgradeRequest(req);
  const bool client_keep_alive = req.keep_alive();
  const bool is_head = req.method() == http::verb::head;
  const bool has_body = ctx.body || !head.is_done();
  auto refuse = [&](Error e, Refusal counter, bool keep) { return Respond::Refuse(std::move(e), counter, "", keep); };
  // A write to a Namespace may change the labels selector rules decide by:
  // whatever happens to it, the next decision reads them again.
  struct ForgetLabelsAfter {
    NamespaceLabelCache& cache;
    const RequestInfo& info;
    ~ForgetLabelsAfter() {
      if (info.resource == "namespaces" && info.api_group.empty() && info.verb != "get" && info.verb != "list" &&
          info.verb != "watch") {
        cache.Forget(info.name.empty() ? info.namespace_ : info.name);
      }
    }
  } forget_labels_after{g_.namespace_labels, *ctx.info};
  // `req` belongs to `head`, which the streamed-body branch below moves from.
  RewriteHead(req, up, g_.upstream_token.Current(), ctx.upstream_identity, upgrade);
  if (!up.base_path.empty()) {
    if (req.target().empty() || req.target()[0] != '/') {
      co_return refuse(Error::BadRequest("absolute-form request targets are not forwarded to an upstream "
                                         "with a path prefix"),
                       Refusal::kBadRequest, false);
    }
    req.target(up.base_path + std::string(req.target()));
  }

  bool reused = false;
  auto acquired = co_await pool_.Acquire(reused);
  if (!acquired) co_return refuse(acquired.error(), Refusal::kUpstream, client_keep_alive && !has_body);
  std::unique_ptr<UpstreamConn> conn = std::move(*acquired);
  Outcome out;
  beast::error_code ec;

  // Send the head and the body upstream. A stale pooled connection is
  // replaced once, when no body byte has been consumed yet.
  for (int attempt = 0;; ++attempt) {
    if (!ctx.body && head.is_done()) {
      co_await http::async_write(conn->stream, req, Redirect(ec));
      if (ec && reused && attempt == 0) {
        auto fresh = co_await pool_.Connect();
        if (!fresh) co_return refuse(fresh.error(), Refusal::kUpstream, client_keep_alive);
        conn = std::move(*fresh);
        reused = false;
        continue;
      }
    } else if (ctx.body) {
      http::request<http::string_body> full(std::move(req.base()), std::move(*ctx.body));
      full.prepare_payload();
      co_await http::async_write(conn->stream, full, Redirect(ec));
      out.bytes_in += full.body().size();
      ctx.body.reset();  // sent; the record keeps what the audit stage chose
    } else {
      // Stream the body through a bounded buffer: the client is read only as
      // fast as the upstream accepts.
      http::request_parser<http::buffer_body> bp(std::move(head));
      bp.body_limit(g_.max_body());
      http::request_serializer<http::buffer_body> sr(bp.get());
      bp.get().body().data = nullptr;
      bp.get().body().more = true;
      co_await http::async_write_header(conn->stream, sr, Redirect(ec));
      char* buf = RelayBuffer();
      const std::size_t buf_size = limits::kRelayBufferBytes;
      while (!ec && !bp.is_done()) {
        bp.get().body().data = buf;
        bp.get().body().size = buf_size;
        stream_.tcp().expires_after(limits::kBodyIdleTimeout);
        co_await http::async_read(stream_, buffer_, bp, Redirect(ec));
        stream_.tcp().expires_never();
        if (ec == http::error::need_buffer) ec = {};
        if (ec) {
          if (ec == http::error::body_limit) {
            co_return refuse(Error::TooLarge("request body exceeds kubegate's limit of " +
                                             std::to_string(g_.max_body()) + " bytes"),
                             Refusal::kBadRequest, false);
          }
          co_return Respond::Answered(out, "the caller went away while sending its body");
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
    co_return refuse(Error::BadGateway("sending the request to the API server failed: " + ec.message()),
                     Refusal::kUpstream, false);
  }

  // Read the response head; relay it and the body or the upgraded stream.
  UpstreamResponse rp;
  rp.body_limit(boost::none);
  rp.header_limit(static_cast<std::uint32_t>(limits::kMaxResponseHeadBytes));
  if (is_head) rp.skip(true);
  co_await http::async_read_header(conn->stream, conn->buffer, rp, Redirect(ec));
  if (ec) {
    co_return refuse(Error::BadGateway("reading the API server's response failed: " + ec.message()),
                     Refusal::kUpstream, false);
  }
  auto& res = rp.get();
  out.status = static_cast<int>(res.result_int());
  if (res.result() == http::status::unauthorized) {
    // The caller was authenticated by kubegate; the API server refused the
    // gateway's own credential. Not the caller's to fix: a 502 that says so.
    co_return refuse(Error::BadGateway("the API server refused kubegate's own upstream credential (401); "
                                       "the gateway's operator must renew it"),
                     Refusal::kUpstream, false);
  }
  if (res.result() == http::status::switching_protocols && upgrade) {
    g_.metrics.upgrades.Increment();
    Outcome u = co_await RelayUpgrade(ctx, *conn, rp);
    u.bytes_in += out.bytes_in;
    co_return Respond::Answered(u, u.closed_reason);
  }
  bool upstream_keep_alive = res.keep_alive();
  res.erase(http::field::connection);
  res.erase(http::field::keep_alive);
  res.set("X-Kubegate-Request-Id", ctx.request_id);
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
      CloseUpstream(conn->stream);
      co_return Respond::Answered(out, out.closed_reason);
    }
  }
  if (ec) {
    out.keep_alive = false;
    co_return Respond::Answered(out);
  }
  if (upstream_keep_alive && rp.is_done()) pool_.Release(std::move(conn));
  co_return Respond::Answered(out);
}

}  // namespace kubegate
