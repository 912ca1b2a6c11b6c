// Forward and relay: the caller's request goes to the API server with the
// caller's credentials removed and kubegate's credential and the caller's
// identity added (forward/header_rewrite.h); the answer, a streamed answer
// (watch, logs -f) or an upgraded stream comes back.
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
using io::IsUpgradeRequest;
using io::Redirect;

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

  // Send the head and the body upstream: a body read here goes in the same
  // write as the head (one message type for both cases). A stale pooled
  // connection is replaced once for a request without a body.
  http::request<http::buffer_body> whole;
  const bool whole_here = ctx.body || head.is_done();
  if (whole_here) {
    whole.base() = std::move(req.base());
    whole.body().data = nullptr;
    whole.body().size = 0;
    whole.body().more = false;
    if (ctx.body) {
      whole.chunked(false);
      whole.content_length(ctx.body->size());
      whole.body().data = ctx.body->data();
      whole.body().size = ctx.body->size();
    }
  }
  for (int attempt = 0;; ++attempt) {
    if (whole_here) {
      http::request_serializer<http::buffer_body> wsr(whole);
      if (!io::WriteNow(conn->stream, wsr, ec)) co_await http::async_write(conn->stream, wsr, Redirect(ec));
      // (A write with a body is not sent twice: as before, only a bodiless
      // request is retried on a fresh connection.)
      if (ec && reused && attempt == 0 && !ctx.body) {
        auto fresh = co_await pool_.Connect();
        if (!fresh) co_return refuse(fresh.error(), Refusal::kUpstream, client_keep_alive);
        conn = std::move(*fresh);
        reused = false;
        ec = {};
        continue;
      }
      if (ctx.body) out.bytes_in += ctx.body->size();
    } else {
      StageResult ended = co_await StreamBodyUpstream(head, *conn, out, ec);
      if (ended) co_return std::move(*ended);
    }
    break;
  }
  if (ec) {
    co_return refuse(Error::BadGateway("sending the request to the API server failed: " + ec.message()),
                     Refusal::kUpstream, false);
  }

  co_return co_await RelayResponse(ctx, std::move(conn), std::move(out), upgrade, client_keep_alive, is_head);
}

}  // namespace kubegate
