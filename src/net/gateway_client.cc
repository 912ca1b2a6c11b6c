#include "net/gateway_client.h"

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include "common/text.h"
#include "tls/pki.h"

namespace kubegate {

Result<GatewayResponse> CallGateway(const UpstreamTarget& t, const std::string& method, const std::string& path,
                                    const std::string& body) {
  namespace asio = boost::asio;
  namespace ssl = boost::asio::ssl;
  namespace beast = boost::beast;
  namespace http = boost::beast::http;
  try {
    asio::io_context ioc;
    ssl::context ctx(ssl::context::tls_client);
    if (!t.ca_pem.empty()) {
      ctx.add_certificate_authority(asio::buffer(t.ca_pem));
    } else {
      ctx.set_default_verify_paths();
    }
    if (!t.client_cert_pem.empty()) {
      ctx.use_certificate_chain(asio::buffer(t.client_cert_pem));
      ctx.use_private_key(asio::buffer(t.client_key_pem), ssl::context::pem);
    }
    beast::ssl_stream<beast::tcp_stream> stream(ioc, ctx);
    std::string sni = t.tls_server_name.empty() ? t.host : t.tls_server_name;
    boost::system::error_code ip_ec;
    asio::ip::make_address(sni, ip_ec);
    if (ip_ec) SSL_set_tlsext_host_name(stream.native_handle(), sni.c_str());
    if (!t.insecure_skip_verify) {
      stream.set_verify_mode(ssl::verify_peer);
      stream.set_verify_callback(ssl::host_name_verification(sni));
    }
    asio::ip::tcp::resolver resolver(ioc);
    beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(30));
    beast::get_lowest_layer(stream).connect(resolver.resolve(t.host, t.port));
    stream.handshake(ssl::stream_base::client);
    http::request<http::string_body> req(http::string_to_verb(method), t.base_path + path, 11);
    req.set(http::field::host, t.HostHeader());
    req.set(http::field::user_agent, "kubegate-cli");
    std::string token = t.bearer_token;
    if (token.empty() && !t.token_file.empty()) {
      if (auto f = ReadFile(t.token_file)) token = TrimTrailingSpace(*f);
    }
    if (!token.empty()) req.set(http::field::authorization, "Bearer " + token);
    if (!body.empty()) req.set(http::field::content_type, "application/json");
    req.body() = body;
    req.prepare_payload();
    http::write(stream, req);
    beast::flat_buffer buf;
    http::response<http::string_body> res;
    http::read(stream, buf, res);
    return GatewayResponse{static_cast<int>(res.result_int()), res.body()};
  } catch (const std::exception& e) {
    return Error::Unavailable("cannot reach kubegate at " + t.HostHeader() + ": " + e.what());
  }
}

}  // namespace kubegate
