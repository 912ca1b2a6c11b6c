// Small Beast/Asio helpers shared by net/'s .cc files.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/rfc7230.hpp>
#include <boost/beast/http/serializer.hpp>

#include "net/upstream_pool.h"

namespace kubegate::io {

// co_await op(..., Redirect(ec)): errors land in `ec` instead of throwing.
inline auto Redirect(boost::beast::error_code& ec) {
  return boost::asio::redirect_error(boost::asio::use_awaitable, ec);
}

// An Upgrade request: Upgrade present and "upgrade" among Connection's tokens.
inline bool IsUpgradeRequest(const boost::beast::http::request<boost::beast::http::empty_body>& req) {
  return req.find(boost::beast::http::field::upgrade) != req.end() &&
         boost::beast::http::token_list(req[boost::beast::http::field::connection]).exists("upgrade");
}

// Writes what of `sr`'s message the stream takes now (NetStream::WriteNow),
// with no trip through the event loop. True when no async write is needed:
// the message is written (with buffer_body, the piece given), or `ec` says
// why not. False when the stream would wait: http::async_write goes on
// from where this stopped.
//   if (!io::WriteNow(stream, sr, ec)) co_await http::async_write(stream, sr, Redirect(ec));
template <bool isRequest, class Body, class Fields>
bool WriteNow(NetStream& s, boost::beast::http::serializer<isRequest, Body, Fields>& sr, boost::beast::error_code& ec) {
  while (!sr.is_done()) {
    std::size_t n = 0;
    sr.next(ec, [&](boost::beast::error_code& wec, const auto& buffers) {
      n = s.WriteNow(NetStream::GatherOf(buffers), wec);
    });
    if (ec == boost::beast::http::error::need_buffer) {  // buffer_body: this piece is written
      ec = {};
      return true;
    }
    if (ec) return true;
    if (n == 0) return false;
    sr.consume(n);
  }
  return true;
}

// Shuts an upstream connection down both ways and closes it.
inline void CloseUpstream(NetStream& s) { s.Close(); }

}  // namespace kubegate::io
