#include "net/upstream_pool.h"

#include <sys/socket.h>

#include <cerrno>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
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
namespace ssl = boost::asio::ssl;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using io::Redirect;

namespace {

// A peer that closed an idle keep-alive connection makes the socket
// readable with nothing (or an alert) to read; such connections are dropped.
bool StillOpen(UpstreamConn& c) {
  auto& sock = beast::get_lowest_layer(c.stream).socket();
  if (!sock.is_open()) return false;
  char byte;
  ssize_t n = ::recv(sock.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

}  // namespace

asio::awaitable<Result<std::unique_ptr<UpstreamConn>>> UpstreamPool::Acquire(bool& reused) {
  auto now = Clock::now();
  while (!idle_.empty()) {
    auto c = std::move(idle_.back());
    idle_.pop_back();
    if (now - c->idle_since < limits::kUpstreamIdleKeep && StillOpen(*c)) {
      reused = true;
      co_return std::move(c);
    }
  }
  reused = false;
  co_return co_await Connect();
}

asio::awaitable<Result<std::unique_ptr<UpstreamConn>>> UpstreamPool::Connect() {
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

void UpstreamPool::Release(std::unique_ptr<UpstreamConn> c) {
  if (idle_.size() >= limits::kUpstreamPoolSize) return;
  c->idle_since = Clock::now();
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
  beast::get_lowest_layer(conn->stream).expires_after(limits::kUpstreamConnectTimeout);
  co_await http::async_read(conn->stream, conn->buffer, rp, Redirect(ec));
  beast::get_lowest_layer(conn->stream).expires_never();
  if (ec) co_return Error::BadGateway("reading the API server's answer to kubegate's own request failed: " + ec.message());
  http::response<http::string_body> res = rp.release();
  if (res.keep_alive()) pool.Release(std::move(conn));
  co_return res;
}

}  // namespace kubegate
