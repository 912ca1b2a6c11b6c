// A request body streamed from the caller to the API server through one
// bounded buffer: the caller is read only as fast as the upstream accepts.
#include <algorithm>
#include <memory>

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
using io::Redirect;

awaitable<StageResult> Session::StreamBodyUpstream(Head& head, UpstreamConn& up, Outcome& out, beast::error_code& ec) {
  http::request_parser<http::buffer_body> bp(std::move(head));
  bp.body_limit(g_.max_body());
  http::request_serializer<http::buffer_body> sr(bp.get());
  bp.get().body().data = nullptr;
  bp.get().body().more = true;
  // The head alone: with no data and more to come, the write stops after
  // it with need_buffer (one write operation type for head and body).
  co_await http::async_write(up.stream, sr, Redirect(ec));
  if (ec == http::error::need_buffer) ec = {};
  // The piece buffer, freed with the request: room for the announced
  // length up to the relay bound, read a TLS record at a time.
  const std::size_t buf_size = static_cast<std::size_t>(
      std::clamp<std::uint64_t>(bp.content_length_remaining().value_or(limits::kRelayBufferBytes), 1,
                                limits::kRelayBufferBytes));
  buffer_.reserve(std::min(limits::kRelayReadBytes, buffer_.size() + buf_size));
  std::unique_ptr<char[]> piece(new char[buf_size]);
  char* buf = piece.get();
  while (!ec && !bp.is_done()) {
    bp.get().body().data = buf;
    bp.get().body().size = buf_size;
    stream_.expires_after(limits::kBodyIdleTimeout);
    co_await http::async_read(stream_, buffer_, bp, Redirect(ec));
    stream_.expires_never();
    if (ec == http::error::need_buffer) ec = {};
    if (ec) {
      if (ec == http::error::body_limit) {
        co_return Respond::Refuse(
            Error::TooLarge("request body exceeds kubegate's limit of " + std::to_string(g_.max_body()) + " bytes"),
            Refusal::kBadRequest, "", false);
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
    co_await http::async_write(up.stream, sr, Redirect(ec));
    if (ec == http::error::need_buffer) ec = {};
  }
  co_return std::nullopt;
}

}  // namespace kubegate
