#include "net/gateway_client.h"

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include "common/limits.h"
#include "common/text.h"
#include "tls/pki.h"

namespace kubegate {

namespace {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
namespace beast = boost::beast;
namespace http = boost::beast::http;

template <typename Stream>
GatewayResponse Exchange(Stream& stream, const http::request<http::string_body>& req, std::size_t max_body) {
  http::write(stream, req);
  beast::flat_buffer buf;
  http::response_parser<http::string_body> parser;
  parser.body_limit(max_body);
  http::read(stream, buf, parser);
  return GatewayResponse{static_cast<int>(parser.get().result_int()), parser.get().body()};
}

}  // namespace

Result<GatewayResponse> BlockingRequest(const UpstreamTarget& t, const BlockingCall& call) {
  try {
    asio::io_context ioc;
    http::request<http::string_body> req(http::string_to_verb(call.method), call.path, 11);
    req.set(http::field::host, t.HostHeader());
    for (const auto& [name, value] : call.headers) req.set(name, value);
    req.body() = call.body;
    req.prepare_payload();
    asio::ip::tcp::resolver resolver(ioc);
    beast::tcp_stream tcp(ioc);
    tcp.expires_after(call.timeout);
    tcp.connect(resolver.resolve(t.host, t.port));
    if (!t.tls) return Exchange(tcp, req, call.max_response_body);
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
    beast::ssl_stream<beast::tcp_stream&> stream(tcp, ctx);
    std::string sni = t.tls_server_name.empty() ? t.host : t.tls_server_name;
    boost::system::error_code ip_ec;
    asio::ip::make_address(sni, ip_ec);
    if (ip_ec) SSL_set_tlsext_host_name(stream.native_handle(), sni.c_str());
    if (!t.insecure_skip_verify) {
      stream.set_verify_mode(ssl::verify_peer);
      stream.set_verify_callback(ssl::host_name_verification(sni));
    }
    stream.handshake(ssl::stream_base::client);
    return Exchange(stream, req, call.max_response_body);
  } catch (const std::exception& e) {
    return Error::Unavailable("cannot reach " + t.HostHeader() + ": " + e.what());
  }
}

Result<std::pair<UpstreamTarget, std::string>> TargetOfUrl(const std::string& url) {
  UpstreamTarget t;
  auto ok = ParseServerUrl(url, t);
  if (!ok) return ok.error();
  std::size_t host_start = url.find("://") + 3;
  std::size_t slash = url.find('/', host_start);
  std::string path = slash == std::string::npos ? "/" : url.substr(slash);
  t.base_path.clear();
  return std::make_pair(std::move(t), std::move(path));
}

Result<GatewayResponse> CallGateway(const UpstreamTarget& t, const std::string& method, const std::string& path,
                                    const std::string& body) {
  BlockingCall call;
  call.method = method;
  call.path = t.base_path + path;
  call.headers.emplace_back("User-Agent", "kubegate-cli");
  std::string token = t.bearer_token;
  if (token.empty() && !t.token_file.empty()) {
    if (auto f = ReadFile(t.token_file)) token = TrimTrailingSpace(*f);
  }
  if (!token.empty()) call.headers.emplace_back("Authorization", "Bearer " + token);
  if (!body.empty()) call.headers.emplace_back("Content-Type", "application/json");
  call.body = body;
  call.max_response_body = 64 << 20;
  auto r = BlockingRequest(t, call);
  if (!r) return Error::Unavailable("cannot reach kubegate: " + r.error().message);
  return r;
}

Result<std::string> NetHttpsGetter::Get(const std::string& url, const std::string& ca_file) {
  if (url.rfind("https://", 0) != 0) return Error::BadGateway("refusing to fetch " + url + " without TLS");
  auto target = TargetOfUrl(url);
  if (!target) return target.error();
  if (!ca_file.empty()) {
    auto pem = ReadFile(ca_file);
    if (!pem) return Error::Unavailable("cannot read CA file " + ca_file + ": " + pem.error().message);
    target->first.ca_pem = *pem;
  }
  BlockingCall call;
  call.path = target->second;
  call.headers.emplace_back("Accept", "application/json");
  call.headers.emplace_back("User-Agent", "kubegate (OIDC keys)");
  call.timeout = limits::kOidcFetchTimeout;
  call.max_response_body = limits::kMaxJwksBytes;
  auto r = BlockingRequest(target->first, call);
  if (!r) return r.error();
  if (r->status != 200) return Error::BadGateway(url + " answered " + std::to_string(r->status));
  return std::move(r->body);
}

}  // namespace kubegate
