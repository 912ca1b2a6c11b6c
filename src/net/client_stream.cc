#include "net/client_stream.h"

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include "common/limits.h"

namespace kubegate {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace ssl = boost::asio::ssl;
using tcp = asio::ip::tcp;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;

struct ClientStream::Impl {
  std::optional<beast::tcp_stream> plain;
  std::optional<TlsStream> tls;
  beast::tcp_stream& tcp() { return tls ? beast::get_lowest_layer(*tls) : *plain; }
};

namespace {

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

}  // namespace

ClientStream::ClientStream(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ClientStream::ClientStream(ClientStream&&) noexcept = default;
ClientStream& ClientStream::operator=(ClientStream&&) noexcept = default;
ClientStream::~ClientStream() = default;

ClientStream ClientStream::Plain(tcp::socket socket) {
  auto impl = std::make_unique<Impl>();
  impl->plain.emplace(std::move(socket));
  return ClientStream(std::move(impl));
}

ClientStream ClientStream::Tls(tcp::socket socket, ssl::context& ctx) {
  auto impl = std::make_unique<Impl>();
  impl->tls.emplace(std::move(socket), ctx);
  return ClientStream(std::move(impl));
}

ClientStream::executor_type ClientStream::get_executor() { return impl_->tcp().get_executor(); }

beast::tcp_stream& ClientStream::tcp() { return impl_->tcp(); }

asio::awaitable<bool> ClientStream::Handshake(std::optional<PeerCertificate>& peer, bool& untrusted) {
  if (!impl_->tls) co_return true;
  beast::error_code ec;
  impl_->tcp().expires_after(limits::kRequestHeadTimeout);
  co_await impl_->tls->async_handshake(ssl::stream_base::server, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return false;
  peer = VerifiedPeer(impl_->tls->native_handle(), untrusted);
  co_return true;
}

void ClientStream::ReadSome(asio::mutable_buffer b, asio::cancellation_slot slot, Completion done) {
  auto handler = asio::bind_cancellation_slot(slot, asio::bind_executor(impl_->tcp().get_executor(), std::move(done)));
  if (impl_->tls) {
    impl_->tls->async_read_some(b, std::move(handler));
  } else {
    impl_->plain->async_read_some(b, std::move(handler));
  }
}

void ClientStream::WriteSome(const Gather& g, asio::cancellation_slot slot, Completion done) {
  auto handler = asio::bind_cancellation_slot(slot, asio::bind_executor(impl_->tcp().get_executor(), std::move(done)));
  if (impl_->tls) {
    impl_->tls->async_write_some(g, std::move(handler));
  } else {
    impl_->plain->async_write_some(g, std::move(handler));
  }
}

void ClientStream::Close() {
  beast::error_code ec;
  impl_->tcp().socket().shutdown(tcp::socket::shutdown_both, ec);
  impl_->tcp().close();
}

asio::awaitable<void> ClientStream::LingeringClose() {
  auto& layer = impl_->tcp();
  beast::error_code ec;
  layer.socket().shutdown(tcp::socket::shutdown_send, ec);
  layer.expires_after(limits::kLingerTime);
  char sink[16384];
  std::size_t total = 0;
  while (!ec && total < limits::kLingerMaxBytes) {
    total += co_await layer.async_read_some(asio::buffer(sink), asio::redirect_error(asio::use_awaitable, ec));
  }
  layer.close();
}

}  // namespace kubegate
