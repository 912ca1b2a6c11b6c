#include "net/net_stream.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <openssl/x509_vfy.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "common/limits.h"

namespace kubegate {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace ssl = boost::asio::ssl;
using tcp = asio::ip::tcp;
using beast::error_code;

struct NetStream::Impl {
  explicit Impl(tcp::socket s) : socket(std::move(s)), timer(socket.get_executor()) {}
  ~Impl() {
    if (ssl) SSL_free(ssl);
  }
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  tcp::socket socket;
  asio::steady_timer timer;  // the deadline
  bool tls = false;
  SSL* ssl = nullptr;  // null on a TLS stream whose SSL object could not be made: the handshake fails
  std::uint64_t deadline_generation = 0;  // a fired timer of an earlier deadline does nothing
  bool timed_out = false;
};

namespace {

using Impl = NetStream::Impl;
using Completion = NetStream::Completion;

// The largest plaintext of one TLS record: a write gathers at most this
// much into one record (RFC 8446 5.1).
constexpr std::size_t kTlsRecordPlaintext = 16384;

// The subject of the client certificate if one was presented and verified
// against the client CA; `untrusted` is set when one was presented and did
// not verify.
std::optional<PeerCertificate> VerifiedPeer(SSL* ssl, bool& untrusted) {
  X509* cert = SSL_get1_peer_certificate(ssl);
  if (!cert) return std::nullopt;
  untrusted = SSL_get_verify_result(ssl) != X509_V_OK;
  std::optional<PeerCertificate> out;
  if (!untrusted) {
    PeerCertificate p;
    X509_NAME* name = X509_get_subject_name(cert);
    for (int i = 0; i < X509_NAME_entry_count(name); ++i) {
      X509_NAME_ENTRY* e = X509_NAME_get_entry(name, i);
      int nid = OBJ_obj2nid(X509_NAME_ENTRY_get_object(e));
      unsigned char* utf8 = nullptr;
      int len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(e));
      if (len < 0) continue;
      std::string v(reinterpret_cast<char*>(utf8), static_cast<std::size_t>(len));
      OPENSSL_free(utf8);
      if (nid == NID_commonName) p.common_name = v;
      if (nid == NID_organizationName) p.organizations.push_back(v);
    }
    out = std::move(p);
  }
  X509_free(cert);
  return out;
}

// What a failed SSL call means, in the codes asio's own TLS stream gives:
// close_notify is eof, a peer gone without it is stream_truncated.
error_code SslError(int ssl_error, int sys_errno) {
  switch (ssl_error) {
    case SSL_ERROR_ZERO_RETURN:
      return asio::error::eof;
    case SSL_ERROR_SYSCALL: {
      unsigned long e = ERR_get_error();
      ERR_clear_error();
      if (e != 0) return error_code(static_cast<int>(e), asio::error::get_ssl_category());
      if (sys_errno != 0) return error_code(sys_errno, boost::system::system_category());
      return ssl::error::stream_truncated;
    }
    default: {
      unsigned long e = ERR_peek_last_error();
      ERR_clear_error();
      if (ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING) return ssl::error::stream_truncated;
      if (e != 0) return error_code(static_cast<int>(e), asio::error::get_ssl_category());
      return asio::error::fault;
    }
  }
}

// An error seen after the deadline fired (the socket was closed under the
// operation) is the timeout.
error_code Final(const Impl& impl, error_code ec) { return ec && impl.timed_out ? beast::error::timeout : ec; }

// Completes an operation: from its initiating call through the executor
// (a handler never runs inside the call that started it), later directly.
void Complete(const std::shared_ptr<Impl>& impl, Completion done, error_code ec, std::size_t n, bool initiating) {
  if (!initiating) {
    done(ec, n);
    return;
  }
  asio::post(impl->socket.get_executor(), [done = std::move(done), ec, n]() mutable { done(ec, n); });
}

tcp::socket::wait_type WaitFor(int ssl_error) {
  return ssl_error == SSL_ERROR_WANT_WRITE ? tcp::socket::wait_write : tcp::socket::wait_read;
}

// Runs `attempt` (one SSL_read_ex or SSL_write_ex on the stream's SSL
// object; its result, the bytes moved in `n`) until it completes or fails,
// waiting on the socket's readiness between tries.
template <typename Attempt>
void DriveIo(std::shared_ptr<Impl> impl, asio::cancellation_slot slot, Completion done, bool initiating,
             Attempt attempt) {
  std::size_t n = 0;
  error_code ec;
  if (!impl->ssl) {
    ec = asio::error::not_connected;
  } else {
    ERR_clear_error();
    errno = 0;
    int r = attempt(impl->ssl, n);
    if (r != 1) {
      int sys = errno;
      int err = SSL_get_error(impl->ssl, r);
      n = 0;
      if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
        // A read that found nothing leaves OpenSSL's 16 KiB read buffer
        // allocated for as long as the wait lasts: a held request's or a
        // watch's whole life. It is freed unless it holds part of a record
        // (OpenSSL then refuses and keeps it); SSL_MODE_RELEASE_BUFFERS
        // alone frees it only after a record is read to its end. (OpenSSL
        // 3.0.14 fixed a use-after-free in this call, CVE-2024-4741;
        // bookworm's is 3.0.19.)
        if (err == SSL_ERROR_WANT_READ) (void)SSL_free_buffers(impl->ssl);
        tcp::socket& socket = impl->socket;
        socket.async_wait(WaitFor(err),
                          asio::bind_cancellation_slot(slot, [impl = std::move(impl), slot, done = std::move(done),
                                                              attempt](error_code wait_ec) mutable {
                            if (wait_ec) {
                              done(Final(*impl, wait_ec), 0);
                              return;
                            }
                            DriveIo(std::move(impl), slot, std::move(done), false, std::move(attempt));
                          }));
        return;
      }
      ec = SslError(err, sys);
    }
  }
  Complete(impl, std::move(done), Final(*impl, ec), n, initiating);
}

void TlsRead(std::shared_ptr<Impl> impl, asio::mutable_buffer b, asio::cancellation_slot slot, Completion done,
             bool initiating) {
  DriveIo(std::move(impl), slot, std::move(done), initiating, [b](SSL* ssl, std::size_t& n) {
    if (b.size() == 0) return 1;  // nothing asked, nothing read
    return SSL_read_ex(ssl, b.data(), b.size(), &n);
  });
}

// Writes one TLS record: the gather's first bytes, up to a record's
// plaintext, copied together when there are several buffers. A retry after
// the socket was full presents the same bytes again, as OpenSSL requires.
int TlsWriteRecord(SSL* ssl, const NetStream::Gather& g, std::size_t& n) {
  thread_local char scratch[kTlsRecordPlaintext];
  const void* data = scratch;
  std::size_t len = 0;
  if (g.count == 1) {
    data = g.buffers[0].data();
    len = g.buffers[0].size();
  } else {
    for (std::size_t i = 0; i < g.count && len < sizeof scratch; ++i) {
      std::size_t take = std::min(g.buffers[i].size(), sizeof scratch - len);
      std::memcpy(scratch + len, g.buffers[i].data(), take);
      len += take;
    }
  }
  if (len == 0) return 1;  // nothing to send
  return SSL_write_ex(ssl, data, len, &n);
}

void TlsWrite(std::shared_ptr<Impl> impl, const NetStream::Gather& g, asio::cancellation_slot slot,
              Completion done, bool initiating) {
  DriveIo(std::move(impl), slot, std::move(done), initiating,
          [g](SSL* ssl, std::size_t& n) { return TlsWriteRecord(ssl, g, n); });
}

// One SSL_read_ex or SSL_write_ex (`attempt`) that does not wait: the
// bytes it moved; 0 with `want` set when OpenSSL wants the socket
// (SSL_ERROR_WANT_READ or _WRITE); 0 with `ec` on an error.
template <typename Attempt>
std::size_t SslNow(SSL* ssl, int& want, error_code& ec, Attempt attempt) {
  ERR_clear_error();
  errno = 0;
  std::size_t n = 0;
  const int r = attempt(ssl, n);
  if (r == 1) return n;
  const int sys = errno;
  const int err = SSL_get_error(ssl, r);
  if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
    want = err;
  } else {
    ec = SslError(err, sys);
  }
  return 0;
}

}  // namespace

NetStream::NetStream(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
NetStream::NetStream(NetStream&&) noexcept = default;
NetStream& NetStream::operator=(NetStream&&) noexcept = default;
NetStream::~NetStream() = default;

NetStream NetStream::Plain(tcp::socket socket) {
  return NetStream(std::make_shared<Impl>(std::move(socket)));
}

namespace {

// OpenSSL's own socket BIO writes with write(), which raises SIGPIPE when
// the peer has gone and kills the process. This one sends with
// MSG_NOSIGNAL (as asio does) and is otherwise the same: non-blocking
// retries, end of stream noted for SSL's "unexpected EOF" check. It reads
// the descriptor from the stream's socket at each call, not a copy of its
// number: once the socket is closed (Close, a deadline) the number may
// already belong to another connection, and nothing may reach that one.
int SocketBioDescriptor(BIO* b) {
  tcp::socket& socket = *static_cast<tcp::socket*>(BIO_get_data(b));
  return socket.is_open() ? static_cast<int>(socket.native_handle()) : -1;
}

int SocketBioWrite(BIO* b, const char* data, int len) {
  BIO_clear_retry_flags(b);
  const int fd = SocketBioDescriptor(b);
  if (fd < 0) {
    errno = EBADF;
    return -1;
  }
  ssize_t n = ::send(fd, data, static_cast<std::size_t>(len), MSG_NOSIGNAL);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) BIO_set_retry_write(b);
    return -1;
  }
  return static_cast<int>(n);
}

int SocketBioRead(BIO* b, char* out, int len) {
  BIO_clear_retry_flags(b);
  const int fd = SocketBioDescriptor(b);
  if (fd < 0) {
    errno = EBADF;
    return -1;
  }
  ssize_t n = ::recv(fd, out, static_cast<std::size_t>(len), 0);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) BIO_set_retry_read(b);
    return -1;
  }
  if (n == 0) BIO_set_flags(b, BIO_FLAGS_IN_EOF);
  return static_cast<int>(n);
}

long SocketBioCtrl(BIO* b, int cmd, long, void* ptr) {
  switch (cmd) {
    case BIO_CTRL_FLUSH:
      return 1;
    case BIO_CTRL_EOF:
      return BIO_test_flags(b, BIO_FLAGS_IN_EOF) != 0 ? 1 : 0;
    case BIO_C_GET_FD: {
      const int fd = SocketBioDescriptor(b);
      if (ptr) *static_cast<int*>(ptr) = fd;
      return fd;
    }
    default:
      return 0;
  }
}

int SocketBioCreate(BIO* b) {
  BIO_set_init(b, 1);
  return 1;
}

const BIO_METHOD* SocketBioMethod() {
  static BIO_METHOD* method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK | BIO_TYPE_DESCRIPTOR, "kubegate socket");
    if (m) {
      BIO_meth_set_write(m, &SocketBioWrite);
      BIO_meth_set_read(m, &SocketBioRead);
      BIO_meth_set_ctrl(m, &SocketBioCtrl);
      BIO_meth_set_create(m, &SocketBioCreate);
    }
    return m;
  }();
  return method;
}

// A TLS stream's Impl with its SSL object on the socket, or with none when
// it could not be made (the handshake then fails).
std::shared_ptr<Impl> MakeTls(tcp::socket socket, ssl::context& ctx) {
  auto impl = std::make_shared<Impl>(std::move(socket));
  impl->tls = true;
  error_code ec;
  impl->socket.non_blocking(true, ec);  // OpenSSL's reads and writes on the socket must not block the thread
  const BIO_METHOD* method = SocketBioMethod();
  SSL* s = ec || !method ? nullptr : SSL_new(ctx.native_handle());
  BIO* bio = s ? BIO_new(method) : nullptr;
  if (bio) {
    BIO_set_data(bio, &impl->socket);  // Impl frees the SSL object (and the BIO) before its socket
    SSL_set_bio(s, bio, bio);          // the SSL object owns the BIO; the socket stays the stream's
    SSL_set_mode(s, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
    impl->ssl = s;
  } else if (s) {
    SSL_free(s);
  }
  return impl;
}

}  // namespace

NetStream NetStream::TlsServer(tcp::socket socket, ssl::context& ctx) {
  auto impl = MakeTls(std::move(socket), ctx);
  if (impl->ssl) SSL_set_accept_state(impl->ssl);
  return NetStream(std::move(impl));
}

NetStream NetStream::TlsClient(tcp::socket socket, ssl::context& ctx, const std::string& server_name, bool verify) {
  auto impl = MakeTls(std::move(socket), ctx);
  SSL* s = impl->ssl;
  if (!s) return NetStream(std::move(impl));
  SSL_set_connect_state(s);
  error_code ip_ec;
  asio::ip::make_address(server_name, ip_ec);
  const bool is_ip = !ip_ec;
  bool ok = is_ip || SSL_set_tlsext_host_name(s, server_name.c_str()) == 1;
  if (ok && verify) {
    SSL_set_verify(s, SSL_VERIFY_PEER, nullptr);
    // The certificate must name the server: a DNS name against its DNS
    // names (RFC 6125 rules, as X509_check_host), an IP against its IP
    // addresses.
    X509_VERIFY_PARAM* param = SSL_get0_param(s);
    ok = is_ip ? X509_VERIFY_PARAM_set1_ip_asc(param, server_name.c_str()) == 1
               : SSL_set1_host(s, server_name.c_str()) == 1;
  }
  if (!ok) {  // fail closed: no handshake without the checks
    SSL_free(s);
    impl->ssl = nullptr;
  }
  return NetStream(std::move(impl));
}

NetStream::executor_type NetStream::get_executor() { return impl_->socket.get_executor(); }

void NetStream::expires_after(std::chrono::steady_clock::duration d) {
  Impl& impl = *impl_;
  const std::uint64_t generation = ++impl.deadline_generation;
  impl.timer.expires_after(d);
  impl.timer.async_wait([weak = std::weak_ptr<Impl>(impl_), generation](error_code ec) {
    if (ec) return;
    std::shared_ptr<Impl> alive = weak.lock();
    if (!alive || alive->deadline_generation != generation) return;
    alive->timed_out = true;
    error_code ignored;
    alive->socket.close(ignored);
  });
}

void NetStream::expires_never() {
  ++impl_->deadline_generation;
  impl_->timer.cancel();
}

namespace {

// Drives the TLS handshake on the socket to its end, under the deadline
// the caller set.
asio::awaitable<error_code> DriveHandshake(std::shared_ptr<Impl> impl) {
  if (!impl->ssl) co_return asio::error::not_connected;
  while (true) {
    ERR_clear_error();
    errno = 0;
    int r = SSL_do_handshake(impl->ssl);
    if (r == 1) co_return error_code();
    int sys = errno;
    int err = SSL_get_error(impl->ssl, r);
    if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) co_return Final(*impl, SslError(err, sys));
    error_code ec;
    co_await impl->socket.async_wait(WaitFor(err), asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return Final(*impl, ec);
  }
}

}  // namespace

asio::awaitable<bool> NetStream::Handshake(std::optional<PeerCertificate>& peer, bool& untrusted) {
  if (!impl_->tls) co_return true;
  std::shared_ptr<Impl> impl = impl_;
  expires_after(limits::kRequestHeadTimeout);
  if (co_await DriveHandshake(impl)) co_return false;
  peer = VerifiedPeer(impl->ssl, untrusted);
  co_return true;
}

asio::awaitable<error_code> NetStream::ClientHandshake() {
  if (!impl_->tls) co_return error_code();
  co_return co_await DriveHandshake(impl_);
}

void NetStream::WaitReadable(asio::cancellation_slot slot, Completion done) {
  if (impl_->ssl && SSL_has_pending(impl_->ssl)) {
    Complete(impl_, std::move(done), error_code(), 0, true);
    return;
  }
  impl_->socket.async_wait(tcp::socket::wait_read,
                           asio::bind_cancellation_slot(slot, [impl = impl_, done = std::move(done)](error_code ec) {
                             done(Final(*impl, ec), 0);
                           }));
}

bool NetStream::IdleAndOpen() {
  Impl& impl = *impl_;
  if (!impl.socket.is_open()) return false;
  if (impl.ssl && SSL_has_pending(impl.ssl)) return false;
  char byte;
  ssize_t n = ::recv(impl.socket.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

std::size_t NetStream::ReadNow(asio::mutable_buffer b, error_code& ec) {
  ec = {};
  Impl& impl = *impl_;
  if (b.size() == 0) return 0;
  if (!impl.socket.is_open()) {
    ec = Final(impl, asio::error::bad_descriptor);
    return 0;
  }
  if (!impl.tls) {
    ssize_t n = ::recv(impl.socket.native_handle(), b.data(), b.size(), MSG_DONTWAIT);
    if (n > 0) return static_cast<std::size_t>(n);
    if (n == 0) {
      ec = asio::error::eof;
    } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
      ec = error_code(errno, boost::system::system_category());
    }
    return 0;
  }
  if (!impl.ssl) {
    ec = asio::error::not_connected;
    return 0;
  }
  int want = 0;
  std::size_t n = SslNow(impl.ssl, want, ec, [b](SSL* ssl, std::size_t& got) {
    return SSL_read_ex(ssl, b.data(), b.size(), &got);
  });
  if (want == SSL_ERROR_WANT_READ) (void)SSL_free_buffers(impl.ssl);  // as in DriveIo
  // Wanting to write: only with a write of ours unfinished, and a stream
  // read with ReadNow has none. Reported as an error rather than retried,
  // so a readable socket can never make its caller spin.
  if (want == SSL_ERROR_WANT_WRITE) ec = asio::error::operation_not_supported;
  return n;
}

std::size_t NetStream::WriteNow(const Gather& g, error_code& ec) {
  ec = {};
  Impl& impl = *impl_;
  if (!impl.socket.is_open()) {
    ec = Final(impl, asio::error::bad_descriptor);
    return 0;
  }
  if (!impl.tls) {
    iovec iov[kMaxGather];
    msghdr msg{};
    for (std::size_t i = 0; i < g.count; ++i) {
      iov[i].iov_base = const_cast<void*>(g.buffers[i].data());
      iov[i].iov_len = g.buffers[i].size();
    }
    msg.msg_iov = iov;
    msg.msg_iovlen = g.count;
    ssize_t n = ::sendmsg(impl.socket.native_handle(), &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n >= 0) return static_cast<std::size_t>(n);
    if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) ec = error_code(errno, boost::system::system_category());
    return 0;
  }
  if (!impl.ssl) {
    ec = asio::error::not_connected;
    return 0;
  }
  // Not taken now (OpenSSL wants the socket): the same bytes go again from
  // the async write, as OpenSSL asks, and a serializer not consumed
  // presents them.
  int want = 0;
  return SslNow(impl.ssl, want, ec, [&g](SSL* ssl, std::size_t& put) { return TlsWriteRecord(ssl, g, put); });
}

void NetStream::ReadSome(asio::mutable_buffer b, asio::cancellation_slot slot, Completion done) {
  if (impl_->tls) {
    TlsRead(impl_, b, slot, std::move(done), true);
    return;
  }
  impl_->socket.async_read_some(
      b, asio::bind_cancellation_slot(slot, [impl = impl_, done = std::move(done)](error_code ec, std::size_t n) {
        done(Final(*impl, ec), n);
      }));
}

void NetStream::WriteSome(const Gather& g, asio::cancellation_slot slot, Completion done) {
  if (impl_->tls) {
    TlsWrite(impl_, g, slot, std::move(done), true);
    return;
  }
  impl_->socket.async_write_some(
      g, asio::bind_cancellation_slot(slot, [impl = impl_, done = std::move(done)](error_code ec, std::size_t n) {
        done(Final(*impl, ec), n);
      }));
}

void NetStream::Close() {
  error_code ec;
  impl_->socket.shutdown(tcp::socket::shutdown_both, ec);
  impl_->socket.close(ec);
  expires_never();
}

asio::awaitable<void> NetStream::LingeringClose() {
  std::shared_ptr<Impl> impl = impl_;
  error_code ec;
  impl->socket.shutdown(tcp::socket::shutdown_send, ec);
  expires_after(limits::kLingerTime);
  char sink[16384];
  std::size_t total = 0;
  while (!ec && total < limits::kLingerMaxBytes) {
    total += co_await impl->socket.async_read_some(asio::buffer(sink), asio::redirect_error(asio::use_awaitable, ec));
  }
  impl->socket.close(ec);
  expires_never();
}

}  // namespace kubegate
