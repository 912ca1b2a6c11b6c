#include "net/tls_contexts.h"

#include <openssl/ssl.h>

#include <cstring>

#include <boost/asio/buffer.hpp>

namespace kubegate {

namespace ssl = boost::asio::ssl;

namespace {

int SelectAlpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in, unsigned int inlen,
               void*) {
  for (unsigned int i = 0; i < inlen;) {
    unsigned int len = in[i];
    if (i + 1 + len > inlen) break;
    if (len == 8 && std::memcmp(in + i + 1, "http/1.1", 8) == 0) {
      *out = in + i + 1;
      *outlen = static_cast<unsigned char>(len);
      return SSL_TLSEXT_ERR_OK;
    }
    i += 1 + len;
  }
  return SSL_TLSEXT_ERR_NOACK;  // no ALPN agreed: HTTP/1.1 all the same
}

}  // namespace

Result<std::unique_ptr<ssl::context>> MakeServerTlsContext(const std::string& cert_file, const std::string& key_file,
                                                           const ClientCertConfig& client_certs) {
  try {
    auto ctx = std::make_unique<ssl::context>(ssl::context::tls_server);
    ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                     ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
    ctx->use_certificate_chain_file(cert_file);
    ctx->use_private_key_file(key_file, ssl::context::pem);
    SSL_CTX_set_alpn_select_cb(ctx->native_handle(), &SelectAlpn, nullptr);
    // OpenSSL frees a connection's record buffers while it is idle, and
    // reads whole socket-fulls at a time (one recv per record, not two:
    // OpenSSL reads the socket itself, see net/net_stream.h).
    SSL_CTX_set_mode(ctx->native_handle(), SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_read_ahead(ctx->native_handle(), 1);
    if (!client_certs.ca_file.empty()) {
      ctx->load_verify_file(client_certs.ca_file);
      // Every presented certificate is accepted by the handshake; the
      // verification result decides in the authenticate stage, so a bad
      // certificate gets a 401 Status instead of a TLS alert.
      ctx->set_verify_mode(ssl::verify_peer);
      ctx->set_verify_callback([](bool, ssl::verify_context&) { return true; });
      STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(client_certs.ca_file.c_str());
      if (names) SSL_CTX_set_client_CA_list(ctx->native_handle(), names);
    }
    return ctx;
  } catch (const std::exception& e) {
    return Error::Internal(std::string("TLS setup failed: ") + e.what());
  }
}

Result<std::unique_ptr<ssl::context>> MakeUpstreamTlsContext(const UpstreamTarget& upstream) {
  try {
    auto ctx = std::make_unique<ssl::context>(ssl::context::tls_client);
    ctx->set_options(ssl::context::default_workarounds | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
    if (!upstream.ca_pem.empty()) {
      ctx->add_certificate_authority(boost::asio::buffer(upstream.ca_pem));
    } else {
      ctx->set_default_verify_paths();
    }
    if (!upstream.client_cert_pem.empty()) {
      ctx->use_certificate_chain(boost::asio::buffer(upstream.client_cert_pem));
      ctx->use_private_key(boost::asio::buffer(upstream.client_key_pem), ssl::context::pem);
    }
    // An idle pooled connection gives its record buffers back; whole
    // socket-fulls are read at a time (net/net_stream.h).
    SSL_CTX_set_mode(ctx->native_handle(), SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_read_ahead(ctx->native_handle(), 1);
    // Upgrades (exec, port-forward) are HTTP/1.1 only.
    static const unsigned char kAlpn[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
    SSL_CTX_set_alpn_protos(ctx->native_handle(), kAlpn, sizeof kAlpn);
    return ctx;
  } catch (const std::exception& e) {
    return Error::Internal(std::string("TLS setup failed: ") + e.what());
  }
}

}  // namespace kubegate
