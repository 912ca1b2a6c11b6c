#include "net/upstream_pool.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

#include "common/limits.h"
#include "net/io_helpers.h"

namespace kubegate {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;
using SteadyClock = std::chrono::steady_clock;
using io::Redirect;
using namespace asio::experimental::awaitable_operators;

asio::awaitable<Result<std::unique_ptr<UpstreamConn>>> UpstreamPool::Acquire(bool& reused) {
  auto now = SteadyClock::now();
  while (!idle_.empty()) {
    auto c = std::move(idle_.back());
    idle_.pop_back();
    if (now - c->idle_since < limits::kUpstreamIdleKeep && c->stream.IdleAndOpen()) {
      reused = true;
      co_return std::move(c);
    }
  }
  reused = false;
  co_return co_await Connect();
}

asio::awaitable<Result<std::unique_ptr<UpstreamConn>>> UpstreamPool::Connect() {
  auto ex = co_await asio::this_coro::executor;
  beast::error_code ec;
  tcp::resolver resolver(ex);
  auto endpoints = co_await resolver.async_resolve(target_.host, target_.port, Redirect(ec));
  if (ec) co_return Error::Unavailable("upstream " + target_.host + " cannot be resolved: " + ec.message());
  tcp::socket socket(ex);
  asio::steady_timer deadline(ex, limits::kUpstreamConnectTimeout);
  auto connected = co_await (asio::async_connect(socket, endpoints, asio::as_tuple(asio::use_awaitable)) ||
                             deadline.async_wait(asio::as_tuple(asio::use_awaitable)));
  if (connected.index() == 1) {
    ec = beast::error::timeout;
  } else {
    ec = std::get<0>(std::get<0>(connected));
  }
  if (ec) co_return Error::Unavailable("upstream " + target_.HostHeader() + " unreachable: " + ec.message());
  socket.set_option(tcp::no_delay(true), ec);
  std::string sni = target_.tls_server_name.empty() ? target_.host : target_.tls_server_name;
  auto c = std::make_unique<UpstreamConn>(
      NetStream::TlsClient(std::move(socket), ctx_, sni, !target_.insecure_skip_verify));
  c->stream.expires_after(limits::kUpstreamConnectTimeout);
  ec = co_await c->stream.ClientHandshake();
  c->stream.expires_never();
  if (ec) co_return Error::Unavailable("TLS to upstream " + target_.HostHeader() + " failed: " + ec.message());
  co_return std::move(c);
}

void UpstreamPool::Release(std::unique_ptr<UpstreamConn> c) {
  if (idle_.size() >= limits::kUpstreamPoolSize) return;
  c->idle_since = SteadyClock::now();
  idle_.push_back(std::move(c));
}

asio::awaitable<Result<http::response<http::string_body>>> OwnUpstreamRequest(UpstreamPool& pool,
                                                                              const std::string& token,
                                                                              http::request<http::string_body>& req) {
  const UpstreamTarget& up = pool.target();
  req.set(http::field::host, up.HostHeader());
  if (!token.empty()) req.set(http::field::authorization, "Bearer " + token);
  req.target(up.base_path + std::string(req.target()));
  req.keep_alive(true);
  req.prepare_payload();
  bool reused = false;
  auto acquired = co_await pool.Acquire(reused);
  if (!acquired) co_return acquired.error();
  std::unique_ptr<UpstreamConn> conn = std::move(*acquired);
  beast::error_code ec;
  co_await http::async_write(conn->stream, req, Redirect(ec));
  if (ec && reused) {
    auto fresh = co_await pool.Connect();
    if (!fresh) co_return fresh.error();
    conn = std::move(*fresh);
    ec = {};
    co_await http::async_write(conn->stream, req, Redirect(ec));
  }
  if (ec) co_return Error::BadGateway("sending kubegate's own request to the API server failed: " + ec.message());
  http::response_parser<http::string_body> rp;
  rp.body_limit(limits::kMaxOwnUpstreamResponseBytes);
  rp.header_limit(static_cast<std::uint32_t>(limits::kMaxResponseHeadBytes));
  conn->stream.expires_after(limits::kUpstreamConnectTimeout);
  co_await http::async_read(conn->stream, conn->buffer, rp, Redirect(ec));
  conn->stream.expires_never();
  if (ec) co_return Error::BadGateway("reading the API server's answer to kubegate's own request failed: " + ec.message());
  http::response<http::string_body> res = rp.release();
  if (res.keep_alive()) pool.Release(std::move(conn));
  co_return res;
}

}  // namespace kubegate
