// UpstreamPool: connections to the API server, one pool per worker thread
// (no locking), kept alive between requests. And OwnUpstreamRequest:
// a request kubegate makes itself (a Namespace's labels, the approvers' dry
// run) on a pooled connection.
//
//   bool reused = false;
//   auto conn = co_await pool.Acquire(reused);   // pooled and still open, or new
//   ... write, read ...
//   pool.Release(std::move(*conn));              // only when the exchange ended cleanly
#pragma once

#include <chrono>
#include <memory>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include "common/result.h"
#include "net/net_stream.h"
#include "upstream/token_source.h"
#include "upstream/upstream_target.h"

namespace kubegate {

struct UpstreamConn {
  explicit UpstreamConn(NetStream s) : stream(std::move(s)) {}
  NetStream stream;  // TLS client side
  boost::beast::flat_buffer buffer;
  std::chrono::steady_clock::time_point idle_since;
};

class UpstreamPool {
 public:
  UpstreamPool(const UpstreamTarget& target, boost::asio::ssl::context& ctx) : target_(target), ctx_(ctx) {}

  // A pooled connection that still looks alive (`reused`), or a fresh one.
  boost::asio::awaitable<Result<std::unique_ptr<UpstreamConn>>> Acquire(bool& reused);
  // A fresh connection: resolve, connect, TLS with the target's checks.
  boost::asio::awaitable<Result<std::unique_ptr<UpstreamConn>>> Connect();
  // Keeps `c` for a next request (up to limits::kUpstreamPoolSize).
  void Release(std::unique_ptr<UpstreamConn> c);

  const UpstreamTarget& target() const { return target_; }

 private:
  const UpstreamTarget& target_;
  boost::asio::ssl::context& ctx_;
  std::vector<std::unique_ptr<UpstreamConn>> idle_;
};

// Sends `req` with the gateway's own credential (`token`, when not empty)
// and reads the whole answer, bounded by limits::kMaxOwnUpstreamResponseBytes.
boost::asio::awaitable<Result<boost::beast::http::response<boost::beast::http::string_body>>> OwnUpstreamRequest(
    UpstreamPool& pool, const std::string& token, boost::beast::http::request<boost::beast::http::string_body>& req);

}  // namespace kubegate
