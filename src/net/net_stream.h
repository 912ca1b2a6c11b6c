// NetStream: one TCP connection, TLS or plain, behind one type: the
// caller's connection (TLS server side, or plain on loopback) and each
// connection to the API server (TLS client side), so the code that serves
// them is compiled once. It is an Asio AsyncStream: Beast's HTTP reads and
// writes run over it; each read or write goes through one type-erased call
// into net_stream.cc.
//
//   NetStream s = NetStream::TlsServer(std::move(socket), server_ctx);
//   if (!co_await s.Handshake(peer, untrusted)) co_return;
//   s.expires_after(limits::kRequestHeadTimeout);
//   co_await http::async_read_header(s, buffer, parser, token);
//
//   NetStream up = NetStream::TlsClient(std::move(connected_socket), client_ctx, "api.example", true);
//   beast::error_code ec = co_await up.ClientHandshake();
//
// TLS is OpenSSL working on the socket itself (no memory BIO pair, no
// record buffers of the stream's own): an idle connection holds only the
// SSL object, since OpenSSL releases its record buffers while nothing is
// pending (docs/performance.md, "Memory per connection"). Reads and writes
// wait for the socket's readiness and retry; a write sends at most one
// TLS record.
//
// Deadline: expires_after arms one timer for the stream; when it fires, the
// socket is closed and every pending operation completes with
// beast::error::timeout. expires_never disarms it.
//
// Contract: reads fill at most the first non-empty buffer of a sequence and
// writes send at most kMaxGather buffers, as AsyncReadStream/WriteStream
// allow (the composed operations loop). At most one read and one write are
// pending at a time, on the stream's executor.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/beast/core/error.hpp>

#include "identity/authenticator.h"

namespace kubegate {

class NetStream {
 public:
  using executor_type = boost::asio::any_io_executor;
  // The completion, type-erased; the caller's cancellation slot is passed
  // beside it so `a || b` can still cancel a pending read or write.
  using Completion = std::function<void(boost::beast::error_code, std::size_t)>;
  struct Impl;  // the socket, the SSL object, the deadline (net_stream.cc)
  static constexpr std::size_t kMaxGather = 16;  // a response head of ~12 header lines and its body in one writev
  // A ConstBufferSequence of at most kMaxGather views, held by value.
  struct Gather {
    using value_type = boost::asio::const_buffer;
    using const_iterator = const boost::asio::const_buffer*;
    std::array<boost::asio::const_buffer, kMaxGather> buffers;
    std::size_t count = 0;
    const_iterator begin() const { return buffers.data(); }
    const_iterator end() const { return buffers.data() + count; }
  };

  static NetStream Plain(boost::asio::ip::tcp::socket socket);
  // The server side of TLS on an accepted socket.
  static NetStream TlsServer(boost::asio::ip::tcp::socket socket, boost::asio::ssl::context& ctx);
  // The client side of TLS on a connected socket: SNI `server_name` (not
  // sent for an IP address), and with `verify` the peer's chain and that
  // its certificate names `server_name` (a DNS name or an IP address).
  static NetStream TlsClient(boost::asio::ip::tcp::socket socket, boost::asio::ssl::context& ctx,
                             const std::string& server_name, bool verify);
  NetStream(NetStream&&) noexcept;
  NetStream& operator=(NetStream&&) noexcept;
  ~NetStream();

  executor_type get_executor();
  // The deadline for what is pending and what follows (see above).
  void expires_after(std::chrono::steady_clock::duration d);
  void expires_never();

  // TLS server side: the handshake (within limits::kRequestHeadTimeout),
  // then the client certificate (set when one was presented and verified;
  // `untrusted` when one was presented and did not verify). Plain: nothing
  // to do. False when the handshake failed.
  boost::asio::awaitable<bool> Handshake(std::optional<PeerCertificate>& peer, bool& untrusted);
  // TLS client side: the handshake, under the deadline the caller set.
  boost::asio::awaitable<boost::beast::error_code> ClientHandshake();

  // Completes when a read would find something (bytes, an alert, the end),
  // under the deadline. An idle connection waits here holding no buffer,
  // no parser and no coroutine frame of its own.
  template <typename Token>
  auto async_wait_readable(Token&& token) {
    return boost::asio::async_initiate<Token, void(boost::beast::error_code)>(
        [this](auto handler) {
          auto slot = boost::asio::get_associated_cancellation_slot(handler);
          auto h = std::make_shared<decltype(handler)>(std::move(handler));
          WaitReadable(slot, [h](boost::beast::error_code ec, std::size_t) { std::move(*h)(ec); });
        },
        token);
  }

  // Reads what can be read without waiting: n > 0 bytes, or 0 with no
  // error when nothing has arrived yet (a TLS record only in part, or a
  // record that carried no data), or 0 with `ec` at the end of the stream
  // or an error. For a caller's bytes that come while its request waits:
  // the wait for readability is the caller's, and costs no read buffer.
  std::size_t ReadNow(boost::asio::mutable_buffer b, boost::beast::error_code& ec);

  // Writes what the stream takes without waiting: n bytes from the start of
  // `g` (TLS: one record's worth at most), 0 with no `ec` when it would
  // wait, or 0 with `ec` on an error. What was not taken is for an async
  // write, which must present the same bytes (a TLS write asks for that).
  std::size_t WriteNow(const Gather& g, boost::beast::error_code& ec);
  template <typename ConstBuffers>
  static Gather GatherOf(const ConstBuffers& buffers) {
    Gather g;
    for (auto it = boost::asio::buffer_sequence_begin(buffers);
         it != boost::asio::buffer_sequence_end(buffers) && g.count < kMaxGather; ++it) {
      boost::asio::const_buffer b = *it;
      if (b.size()) g.buffers[g.count++] = b;
    }
    return g;
  }

  // An idle kept-alive connection that may carry a next request: open, and
  // nothing arrived on it (no bytes, no alert, no FIN), neither in the
  // socket nor read ahead by OpenSSL.
  bool IdleAndOpen();

  template <typename MutableBuffers, typename Token>
  auto async_read_some(const MutableBuffers& buffers, Token&& token) {
    boost::asio::mutable_buffer first;
    for (auto it = boost::asio::buffer_sequence_begin(buffers); it != boost::asio::buffer_sequence_end(buffers); ++it) {
      boost::asio::mutable_buffer b = *it;
      if (b.size()) {
        first = b;
        break;
      }
    }
    return boost::asio::async_initiate<Token, void(boost::beast::error_code, std::size_t)>(
        [this](auto handler, boost::asio::mutable_buffer b) {
          auto slot = boost::asio::get_associated_cancellation_slot(handler);
          ReadSome(b, slot, Erase(std::move(handler)));
        },
        token, first);
  }

  template <typename ConstBuffers, typename Token>
  auto async_write_some(const ConstBuffers& buffers, Token&& token) {
    Gather g = GatherOf(buffers);
    return boost::asio::async_initiate<Token, void(boost::beast::error_code, std::size_t)>(
        [this](auto handler, Gather gather) {
          auto slot = boost::asio::get_associated_cancellation_slot(handler);
          WriteSome(gather, slot, Erase(std::move(handler)));
        },
        token, g);
  }

  // Shuts both directions down and closes (no close_notify).
  void Close();
  // Closes without losing the last answer: half-close, then discard what
  // the client still sends (bounded in time and bytes). Closing with unread
  // bytes would make the kernel send a reset, and a client still writing a
  // body would never read a 413 or 401.
  boost::asio::awaitable<void> LingeringClose();

 private:
  explicit NetStream(std::shared_ptr<Impl> impl);
  // Completions run on the stream's executor (the session's one thread),
  // which is also the handler's.
  template <typename Handler>
  static Completion Erase(Handler handler) {
    auto h = std::make_shared<Handler>(std::move(handler));
    return [h](boost::beast::error_code ec, std::size_t n) { std::move(*h)(ec, n); };
  }
  void ReadSome(boost::asio::mutable_buffer b, boost::asio::cancellation_slot slot, Completion done);
  void WriteSome(const Gather& g, boost::asio::cancellation_slot slot, Completion done);
  void WaitReadable(boost::asio::cancellation_slot slot, Completion done);

  // Shared with the pending operations and the deadline's timer, so a
  // completion that runs after the stream is gone touches nothing freed.
  std::shared_ptr<Impl> impl_;
};

}  // namespace kubegate
