// NetStream over real loopback sockets: TLS both sides made by kubegate's
// own contexts, large transfers that fill the socket (OpenSSL's retry on
// a full socket), gathered writes, the deadline, name checks that fail
// closed, and an idle connection's liveness check.
#include "net/net_stream.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <array>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include "net/io_helpers.h"
#include "net/tls_contexts.h"
#include "tls/pki.h"

namespace kubegate {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using asio::awaitable;
using asio::use_awaitable;
using boost::beast::error_code;
using namespace asio::experimental::awaitable_operators;

class NetStreamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("net_stream_test." + std::to_string(::getpid()) + "." +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
    auto ca = MakeCa("test ca");
    ASSERT_TRUE(ca);
    ca_pem_ = ca->cert_pem;
    auto leaf = IssueCert(*ca, "server", {}, {"localhost", "127.0.0.1"}, false);
    ASSERT_TRUE(leaf);
    std::ofstream(dir_ / "s.crt") << leaf->cert_pem;
    std::ofstream(dir_ / "s.key") << leaf->key_pem;
    auto server = MakeServerTlsContext((dir_ / "s.crt").string(), (dir_ / "s.key").string(), {});
    ASSERT_TRUE(server) << server.error().message;
    server_ctx_ = std::move(*server);
    UpstreamTarget up;
    up.ca_pem = ca_pem_;
    auto client = MakeUpstreamTlsContext(up);
    ASSERT_TRUE(client) << client.error().message;
    client_ctx_ = std::move(*client);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // A connected pair of sockets on loopback: {accepted, connecting}.
  std::pair<tcp::socket, tcp::socket> Pair() {
    tcp::acceptor acceptor(ioc_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    tcp::socket client(ioc_);
    client.connect(acceptor.local_endpoint());
    tcp::socket server = acceptor.accept();
    return {std::move(server), std::move(client)};
  }

  // Server and client TLS streams that finished their handshakes; the
  // client checks `name` when `verify`. `client_ec` gets its handshake's
  // result, `server_ok` the server's.
  void Handshake(const std::string& name, bool verify, error_code& client_ec, bool& server_ok) {
    auto [s, c] = Pair();
    server_.emplace(NetStream::TlsServer(std::move(s), *server_ctx_));
    client_.emplace(NetStream::TlsClient(std::move(c), *client_ctx_, name, verify));
    asio::co_spawn(
        ioc_,
        [&]() -> awaitable<void> {
          std::optional<PeerCertificate> peer;
          bool untrusted = false;
          server_ok = co_await server_->Handshake(peer, untrusted);
          server_->expires_never();  // Handshake leaves its deadline for the caller to replace
        },
        asio::detached);
    asio::co_spawn(
        ioc_,
        [&]() -> awaitable<void> {
          client_->expires_after(std::chrono::seconds(10));
          client_ec = co_await client_->ClientHandshake();
          client_->expires_never();
          if (client_ec) client_->Close();  // the server's handshake ends too
        },
        asio::detached);
    ioc_.run();
    ioc_.restart();
  }

  // Both sides connected, the client having checked the name "localhost".
  void Connect() {
    error_code client_ec;
    bool server_ok = false;
    Handshake("localhost", true, client_ec, server_ok);
    ASSERT_FALSE(client_ec) << client_ec.message();
    ASSERT_TRUE(server_ok);
  }

  std::filesystem::path dir_;
  std::string ca_pem_;
  asio::io_context ioc_;
  std::unique_ptr<asio::ssl::context> server_ctx_;
  std::unique_ptr<asio::ssl::context> client_ctx_;
  std::optional<NetStream> server_;
  std::optional<NetStream> client_;
};

std::string Pattern(std::size_t n, unsigned seed) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 131 + seed) % 251);
  return s;
}

TEST_F(NetStreamTest, LargeTransfersBothWaysAtOnceArriveWhole) {
  ASSERT_NO_FATAL_FAILURE(Connect());
  // 8 MiB each way, written while the other side writes too: both sockets
  // fill, so writes wait for room and reads interleave with them. The
  // server writes in gathers of three buffers (one record per write).
  const std::string up = Pattern(8 << 20, 1), down = Pattern(8 << 20, 7);
  std::string got_up(up.size(), '\0'), got_down(down.size(), '\0');
  error_code e1, e2, e3, e4;
  asio::co_spawn(
      ioc_,
      [&]() -> awaitable<void> {
        co_await asio::async_write(*client_, asio::buffer(up), asio::redirect_error(use_awaitable, e1));
      },
      asio::detached);
  asio::co_spawn(
      ioc_,
      [&]() -> awaitable<void> {
        co_await asio::async_read(*server_, asio::buffer(got_up), asio::redirect_error(use_awaitable, e2));
      },
      asio::detached);
  asio::co_spawn(
      ioc_,
      [&]() -> awaitable<void> {
        const std::size_t third = down.size() / 3;
        std::array<asio::const_buffer, 3> gather = {asio::buffer(down.data(), third),
                                                    asio::buffer(down.data() + third, third),
                                                    asio::buffer(down.data() + 2 * third, down.size() - 2 * third)};
        co_await asio::async_write(*server_, gather, asio::redirect_error(use_awaitable, e3));
      },
      asio::detached);
  asio::co_spawn(
      ioc_,
      [&]() -> awaitable<void> {
        co_await asio::async_read(*client_, asio::buffer(got_down), asio::redirect_error(use_awaitable, e4));
      },
      asio::detached);
  ioc_.run();
  EXPECT_FALSE(e1 || e2 || e3 || e4) << e1.message() << e2.message() << e3.message() << e4.message();
  EXPECT_TRUE(got_up == up);
  EXPECT_TRUE(got_down == down);
}

TEST_F(NetStreamTest, ADeadlineEndsAPendingReadWithTimeout) {
  ASSERT_NO_FATAL_FAILURE(Connect());
  error_code ec;
  char byte;
  asio::co_spawn(
      ioc_,
      [&]() -> awaitable<void> {
        server_->expires_after(std::chrono::milliseconds(50));
        co_await server_->async_read_some(asio::buffer(&byte, 1), asio::redirect_error(use_awaitable, ec));
      },
      asio::detached);
  ioc_.run();
  EXPECT_EQ(ec, boost::beast::error::timeout) << ec.message();
}

TEST_F(NetStreamTest, ADeadlineDisarmedInTimeDoesNothing) {
  ASSERT_NO_FATAL_FAILURE(Connect());
  error_code read_ec, write_ec;
  std::size_t n = 0;
  char byte = 0;
  asio::co_spawn(
      ioc_,
      [&]() -> awaitable<void> {
        server_->expires_after(std::chrono::milliseconds(30));
        server_->expires_never();
        n = co_await server_->async_read_some(asio::buffer(&byte, 1), asio::redirect_error(use_awaitable, read_ec));
      },
      asio::detached);
  asio::co_spawn(
      ioc_,
      [&]() -> awaitable<void> {
        asio::steady_timer later(co_await asio::this_coro::executor, std::chrono::milliseconds(150));
        co_await later.async_wait(use_awaitable);  // well past the disarmed deadline
        co_await asio::async_write(*client_, asio::buffer("x", 1), asio::redirect_error(use_awaitable, write_ec));
      },
      asio::detached);
  ioc_.run();
  EXPECT_FALSE(read_ec) << read_ec.message();
  EXPECT_EQ(n, 1u);
  EXPECT_EQ(byte, 'x');
}

TEST_F(NetStreamTest, TheClientRefusesAServerThatDoesNotBearTheName) {
  error_code client_ec;
  bool server_ok = true;
  Handshake("wrong.example", true, client_ec, server_ok);
  EXPECT_TRUE(client_ec);
  EXPECT_FALSE(server_ok);
}

TEST_F(NetStreamTest, TheClientChecksAnIpAddressAgainstTheIpNames) {
  error_code client_ec;
  bool server_ok = false;
  Handshake("127.0.0.1", true, client_ec, server_ok);
  EXPECT_FALSE(client_ec) << client_ec.message();
  EXPECT_TRUE(server_ok);
  server_.reset();
  client_.reset();
  Handshake("127.0.0.2", true, client_ec, server_ok);
  EXPECT_TRUE(client_ec);
}

TEST_F(NetStreamTest, WithoutVerificationAnyNameIsAccepted) {
  error_code client_ec;
  bool server_ok = false;
  Handshake("wrong.example", false, client_ec, server_ok);
  EXPECT_FALSE(client_ec) << client_ec.message();
  EXPECT_TRUE(server_ok);
}

TEST_F(NetStreamTest, AnIdleConnectionIsOpenUntilThePeerCloses) {
  ASSERT_NO_FATAL_FAILURE(Connect());
  // The server's session tickets arrive after the handshake: read them
  // away as a first exchange would.
  std::string reply(5, '\0');
  error_code e1, e2;
  asio::co_spawn(
      ioc_,
      [&]() -> awaitable<void> {
        co_await asio::async_write(*server_, asio::buffer("hello", 5), asio::redirect_error(use_awaitable, e1));
        co_await asio::async_read(*client_, asio::buffer(reply), asio::redirect_error(use_awaitable, e2));
      },
      asio::detached);
  ioc_.run();
  ioc_.restart();
  ASSERT_EQ(reply, "hello");
  EXPECT_TRUE(client_->IdleAndOpen());
  server_->Close();
  // On loopback the peer's FIN is in the client's receive queue when
  // close() returns (the kernel delivers it within the call).
  EXPECT_FALSE(client_->IdleAndOpen());
}

TEST_F(NetStreamTest, WritingToAPeerThatHasGoneIsAnErrorNotASignal) {
  // OpenSSL's own socket BIO would write() and raise SIGPIPE, which ends
  // the process (and this test) unless something ignores it.
  ASSERT_NO_FATAL_FAILURE(Connect());
  server_->Close();
  const std::string big = Pattern(1 << 20, 3);
  error_code ec;
  asio::co_spawn(
      ioc_,
      [&]() -> awaitable<void> {
        for (int i = 0; i < 8 && !ec; ++i) {
          co_await asio::async_write(*client_, asio::buffer(big), asio::redirect_error(use_awaitable, ec));
        }
      },
      asio::detached);
  ioc_.run();
  EXPECT_TRUE(ec);
}

// A request OpenSSL has already read ahead (two records came in one socket
// read) makes the stream readable although the socket has nothing new: an
// idle session must not wait for bytes that are already here.
TEST_F(NetStreamTest, WaitReadableSeesWhatOpenSslReadAhead) {
  ASSERT_NO_FATAL_FAILURE(Connect());
  error_code e1, e2;
  asio::co_spawn(
      ioc_,
      [&]() -> awaitable<void> {
        co_await asio::async_write(*client_, asio::buffer("AAAA", 4), asio::redirect_error(use_awaitable, e1));
        co_await asio::async_write(*client_, asio::buffer("BBBB", 4), asio::redirect_error(use_awaitable, e2));
      },
      asio::detached);
  ioc_.run();
  ioc_.restart();
  ASSERT_FALSE(e1 || e2);
  std::string first(4, '\0'), second(4, '\0');
  error_code read_ec, wait_ec, second_ec;
  asio::co_spawn(
      ioc_,
      [&]() -> awaitable<void> {
        server_->expires_after(std::chrono::seconds(5));
        co_await asio::async_read(*server_, asio::buffer(first), asio::redirect_error(use_awaitable, read_ec));
        co_await server_->async_wait_readable(asio::redirect_error(use_awaitable, wait_ec));
        co_await asio::async_read(*server_, asio::buffer(second), asio::redirect_error(use_awaitable, second_ec));
        server_->expires_never();
      },
      asio::detached);
  ioc_.run();
  EXPECT_FALSE(read_ec) << read_ec.message();
  EXPECT_FALSE(wait_ec) << wait_ec.message();
  EXPECT_EQ(first, "AAAA");
  EXPECT_EQ(second, "BBBB");
}

// ReadNow never waits: nothing yet is 0 bytes and no error (a held
// request's caller that sends nothing), bytes that came are read, and the
// peer's leaving is an error.
TEST_F(NetStreamTest, ReadNowTakesWhatCameAndNeverWaits) {
  ASSERT_NO_FATAL_FAILURE(Connect());
  std::array<char, 64> buf{};
  error_code ec;
  // The client's session tickets are for the client: the server has nothing.
  EXPECT_EQ(server_->ReadNow(asio::buffer(buf), ec), 0u);
  EXPECT_FALSE(ec) << ec.message();
  error_code write_ec, wait_ec;
  asio::co_spawn(
      ioc_,
      [&]() -> awaitable<void> {
        co_await asio::async_write(*client_, asio::buffer("hello", 5), asio::redirect_error(use_awaitable, write_ec));
        server_->expires_after(std::chrono::seconds(5));
        co_await server_->async_wait_readable(asio::redirect_error(use_awaitable, wait_ec));
        server_->expires_never();
      },
      asio::detached);
  ioc_.run();
  ioc_.restart();
  ASSERT_FALSE(write_ec || wait_ec);
  std::size_t n = server_->ReadNow(asio::buffer(buf), ec);
  EXPECT_FALSE(ec) << ec.message();
  EXPECT_EQ(std::string(buf.data(), n), "hello");
  EXPECT_EQ(server_->ReadNow(asio::buffer(buf), ec), 0u);
  EXPECT_FALSE(ec) << ec.message();
  client_->Close();
  asio::co_spawn(
      ioc_,
      [&]() -> awaitable<void> {
        server_->expires_after(std::chrono::seconds(5));
        co_await server_->async_wait_readable(asio::redirect_error(use_awaitable, wait_ec));
        server_->expires_never();
      },
      asio::detached);
  ioc_.run();
  EXPECT_EQ(server_->ReadNow(asio::buffer(buf), ec), 0u);
  EXPECT_TRUE(ec);
}

TEST_F(NetStreamTest, ReadNowOnAPlainStream) {
  auto [s, c] = Pair();
  NetStream server = NetStream::Plain(std::move(s));
  std::array<char, 64> buf{};
  error_code ec;
  EXPECT_EQ(server.ReadNow(asio::buffer(buf), ec), 0u);
  EXPECT_FALSE(ec) << ec.message();
  asio::write(c, asio::buffer("abc", 3));
  // Loopback: the bytes are in the receive queue when write returns.
  std::size_t n = server.ReadNow(asio::buffer(buf), ec);
  EXPECT_FALSE(ec) << ec.message();
  EXPECT_EQ(std::string(buf.data(), n), "abc");
  c.close();
  EXPECT_EQ(server.ReadNow(asio::buffer(buf), ec), 0u);
  EXPECT_EQ(ec, asio::error::eof) << ec.message();
}

// WriteNow never waits either: it takes what the socket takes, 0 and no
// error once the socket is full, and an error once the peer is gone.
TEST_F(NetStreamTest, WriteNowOnAPlainStreamTakesWhatFitsAndNeverWaits) {
  auto [s, c] = Pair();
  NetStream server = NetStream::Plain(std::move(s));
  error_code ec;
  NetStream::Gather g = NetStream::GatherOf(std::array{asio::buffer("ab", 2), asio::buffer("cd", 2)});
  EXPECT_EQ(server.WriteNow(g, ec), 4u);
  EXPECT_FALSE(ec) << ec.message();
  std::array<char, 4> got{};
  asio::read(c, asio::buffer(got));
  EXPECT_EQ(std::string(got.data(), got.size()), "abcd");
  std::vector<char> block(64 * 1024, 'x');
  NetStream::Gather big = NetStream::GatherOf(asio::buffer(block));
  bool full = false;
  for (int i = 0; i < 10'000 && !full; ++i) full = server.WriteNow(big, ec) == 0;
  EXPECT_TRUE(full) << "the socket never filled";
  EXPECT_FALSE(ec) << ec.message();
  c.close();  // with bytes unread: the peer resets the connection
  std::size_t n = 1;
  for (int i = 0; i < 100 && !ec; ++i) n = server.WriteNow(big, ec);
  EXPECT_EQ(n, 0u);
  EXPECT_TRUE(ec) << "a write to a peer that is gone reported nothing";
}

// An HTTP answer larger than the socket takes: io::WriteNow writes what
// fits, TLS record by record, and http::async_write goes on from where it
// stopped (OpenSSL's retry of a record the socket refused included). Every
// byte arrives, in order.
TEST_F(NetStreamTest, WriteNowThenTheAsyncWriteDeliverEveryByteOverTls) {
  ASSERT_NO_FATAL_FAILURE(Connect());
  namespace http = boost::beast::http;
  http::response<http::string_body> res(http::status::ok, 11);
  std::string body(32 * 1024 * 1024, '\0');
  for (std::size_t i = 0; i < body.size(); ++i) body[i] = static_cast<char>('a' + i % 23);
  res.body() = body;
  res.prepare_payload();
  http::response_serializer<http::string_body> sr(res);
  error_code write_ec, read_ec;
  bool written_now = true;
  http::response<http::string_body> got;
  asio::co_spawn(
      ioc_,
      [&]() -> awaitable<void> {
        written_now = io::WriteNow(*server_, sr, write_ec);
        if (!written_now) co_await http::async_write(*server_, sr, asio::redirect_error(use_awaitable, write_ec));
      },
      asio::detached);
  asio::co_spawn(
      ioc_,
      [&]() -> awaitable<void> {
        boost::beast::flat_buffer buf;
        http::response_parser<http::string_body> p;
        p.body_limit(boost::none);
        co_await http::async_read(*client_, buf, p, asio::redirect_error(use_awaitable, read_ec));
        got = p.release();
      },
      asio::detached);
  ioc_.run();
  EXPECT_FALSE(written_now) << "32 MiB went out without waiting: the test did not reach the async write";
  EXPECT_FALSE(write_ec) << write_ec.message();
  EXPECT_FALSE(read_ec) << read_ec.message();
  EXPECT_TRUE(got.body() == body) << "got " << got.body().size() << " bytes";
}

TEST_F(NetStreamTest, WaitReadableEndsWithTheDeadline) {
  ASSERT_NO_FATAL_FAILURE(Connect());
  error_code ec;
  asio::co_spawn(
      ioc_,
      [&]() -> awaitable<void> {
        server_->expires_after(std::chrono::milliseconds(50));
        co_await server_->async_wait_readable(asio::redirect_error(use_awaitable, ec));
      },
      asio::detached);
  ioc_.run();
  EXPECT_EQ(ec, boost::beast::error::timeout) << ec.message();
}

TEST_F(NetStreamTest, AfterTheDeadlineClosedItNothingReachesTheSocketThatTookItsNumber) {
  ASSERT_NO_FATAL_FAILURE(Connect());
  tcp::acceptor acceptor(ioc_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  // The deadline fires with nothing pending and closes the socket.
  server_->expires_after(std::chrono::milliseconds(1));
  asio::co_spawn(
      ioc_,
      [&]() -> awaitable<void> {
        asio::steady_timer later(co_await asio::this_coro::executor, std::chrono::milliseconds(50));
        co_await later.async_wait(use_awaitable);
      },
      asio::detached);
  ioc_.run();
  ioc_.restart();
  // A new connection takes the lowest free descriptor: the one just freed.
  tcp::socket other(ioc_);
  other.connect(acceptor.local_endpoint());
  tcp::socket other_peer = acceptor.accept();
  error_code ec;
  asio::co_spawn(
      ioc_,
      [&]() -> awaitable<void> {
        co_await asio::async_write(*server_, asio::buffer("secret", 6), asio::redirect_error(use_awaitable, ec));
      },
      asio::detached);
  ioc_.run();
  EXPECT_EQ(ec, boost::beast::error::timeout) << ec.message();
  // On loopback a send is in the peer's queue when it returns.
  EXPECT_EQ(other_peer.available(), 0u);
}

}  // namespace
}  // namespace kubegate
