// Small Beast/Asio helpers shared by net/'s .cc files.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/rfc7230.hpp>

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

// Shuts an upstream connection down both ways and closes it.
inline void CloseUpstream(NetStream& s) { s.Close(); }

}  // namespace kubegate::io
