// The API server's answer, back to the caller: the head and the body piece
// by piece (a watch or logs -f as it comes, the caller watched meanwhile),
// or, after a 101, the upgraded stream (net/upgrade_relay.cc).
#include <algorithm>
#include <memory>
#include <variant>

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

#include "common/limits.h"
#include "net/io_helpers.h"
#include "net/session.h"

namespace kubegate {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using asio::awaitable;
using io::CloseUpstream;
using io::Redirect;
using namespace asio::experimental::awaitable_operators;

awaitable<Respond> Session::RelayResponse(RequestContext& ctx, std::unique_ptr<UpstreamConn> conn, Outcome out,
                                          bool upgrade, bool client_keep_alive, bool is_head) {
  auto refuse = [&](Error e, Refusal counter, bool keep) { return Respond::Refuse(std::move(e), counter, "", keep); };
  beast::error_code ec;
  // Read the response head; relay it and the body or the upgraded stream.
  UpstreamResponse rp;
  rp.body_limit(boost::none);
  rp.header_limit(static_cast<std::uint32_t>(limits::kMaxResponseHeadBytes));
  if (is_head) rp.skip(true);
  // Beast reads as far as the buffer's free room: a head and a small body
  // (a Pod) come in one read, and go on in one write below.
  conn->buffer.reserve(limits::kResponseHeadReadBytes);
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
    } else if (!io::WriteNow(stream_, sr, ec)) {
      co_await http::async_write(stream_, sr, Redirect(ec));
    }
  } else {
    // When body bytes came with the head, the first write below sends head
    // and body together (one TLS record); otherwise the head goes out now,
    // so a watch that has no event yet still answers at once.
    if (conn->buffer.size() == 0) co_await http::async_write_header(stream_, sr, Redirect(ec));
    // The piece buffer, freed with the answer: an announced length gets
    // room for all of it up to the relay bound, read a TLS record at a
    // time; a body of no announced length (a watch) a small piece, read
    // as it comes, holding no more than it needs while it stays open.
    const bool open_ended = !rp.content_length();
    std::size_t buf_size = limits::kOpenEndedPieceBytes;
    if (!open_ended) {
      buf_size = static_cast<std::size_t>(
          std::clamp<std::uint64_t>(rp.content_length_remaining().value_or(1), 1, limits::kRelayBufferBytes));
    }
    std::unique_ptr<char[]> piece;
    char* buf = nullptr;
    auto size_piece = [&](std::size_t size) {
      piece.reset(new char[size]);
      buf = piece.get();
      buf_size = size;
      conn->buffer.reserve(std::min(limits::kRelayReadBytes, conn->buffer.size() + size));
    };
    size_piece(buf_size);
    // What of the body came with the head is parsed now, without a wait.
    // When that is all of it (a Pod, a short list), the answer goes out in
    // one write and there is nothing to wait for, so nothing watches the
    // caller; otherwise what was parsed goes out with the head.
    if (conn->buffer.size() > 0) {
      res.body().data = buf;
      res.body().size = buf_size;
      while (conn->buffer.size() > 0 && !rp.is_done() && res.body().size > 0) {
        std::size_t used = rp.put(conn->buffer.data(), ec);
        conn->buffer.consume(used);
        if (ec == http::error::need_buffer) ec = {};  // the rest is not here yet
        if (ec || used == 0) break;
      }
      const std::size_t n = buf_size - res.body().size;
      if (!ec && (n > 0 || rp.is_done())) {
        out.bytes_out += n;
        res.body().data = n ? buf : nullptr;
        res.body().size = n;
        res.body().more = !rp.is_done();
        if (!io::WriteNow(stream_, sr, ec)) co_await http::async_write(stream_, sr, Redirect(ec));
        if (ec == http::error::need_buffer) ec = {};
      }
    }
    // The last write of the loop carries more=false, which ends the body
    // (and a chunked body with its last chunk).
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
        if (!io::WriteNow(stream_, sr, ec)) co_await http::async_write(stream_, sr, Redirect(ec));
        if (ec == http::error::need_buffer) ec = {};
        // A body of no announced length that (nearly) fills its piece is
        // bulk, a chunked list: piece and reads grow, up to the relay
        // bound. One that goes quiet again (a watch after a burst) gives
        // the room back.
        if (open_ended && n >= buf_size / 4 * 3 && buf_size < limits::kRelayBufferBytes) {
          size_piece(std::min(buf_size * 2, limits::kRelayBufferBytes));
        } else if (open_ended && n <= limits::kOpenEndedPieceBytes / 2 && buf_size > limits::kOpenEndedPieceBytes) {
          if (conn->buffer.size() == 0) conn->buffer.shrink_to_fit();
          size_piece(limits::kOpenEndedPieceBytes);
        }
      }
    };
    // A streamed answer (a watch, logs -f) may stay quiet for ever: the
    // caller going away is noticed at once, not at the next event, and the
    // upstream side is closed with it. So is the end of the caller's
    // identity (its store token revoked, its user disabled), for an answer
    // of no announced length (a watch, logs -f): the stream is cut there (no
    // event after it). An answer of known length ends by itself; watching
    // the identity for it would add a subscription to every request.
    std::string gone;
    auto which = ec || rp.is_done() ? std::variant<std::monostate, CallerEnd>{}
                                    : co_await (relay_body() || WatchCaller(ctx, gone, open_ended));
    if (which.index() == 1) {
      out.keep_alive = false;
      out.closed_reason = std::get<1>(which) == CallerEnd::kIdentityEnded
                              ? "the streamed answer was ended by kubegate: " + gone
                              : "the streamed answer ended early: " + gone;
      CloseUpstream(conn->stream);
      co_return Respond::Answered(out, out.closed_reason);
    }
  }
  if (ec) {
    out.keep_alive = false;
    co_return Respond::Answered(out);
  }
  if (upstream_keep_alive && rp.is_done()) {
    // A pooled connection keeps no more than a head's read room.
    if (conn->buffer.capacity() > limits::kResponseHeadReadBytes) conn->buffer.shrink_to_fit();
    pool_.Release(std::move(conn));
  }
  co_return Respond::Answered(out);
}

}  // namespace kubegate
