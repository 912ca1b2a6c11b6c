#include "net/login_transport.h"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "classify/go_url.h"
#include "net/gateway_client.h"
#include "tls/pki.h"

namespace kubegate {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;

Result<HttpAnswer> NetLoginHttp::Call(const std::string& method, const std::string& url, const std::string& body) {
  if (url.rfind("https://", 0) != 0) return Error::BadRequest("refusing to talk to the identity provider without TLS: " + url);
  auto target = TargetOfUrl(url);
  if (!target) return target.error();
  if (!ca_file_.empty()) {
    auto pem = ReadFile(ca_file_);
    if (!pem) return pem.error();
    target->first.ca_pem = *pem;
  }
  BlockingCall call;
  call.method = method;
  call.path = target->second;
  call.headers = {{"Accept", "application/json"}, {"User-Agent", "kubegate-login"}};
  if (method == "POST") call.headers.emplace_back("Content-Type", "application/x-www-form-urlencoded");
  call.body = body;
  call.timeout = std::chrono::seconds(30);
  auto r = BlockingRequest(target->first, call);
  if (!r) return r.error();
  return HttpAnswer{r->status, std::move(r->body)};
}

Result<HttpAnswer> NetLoginHttp::Get(const std::string& url) { return Call("GET", url, ""); }

Result<HttpAnswer> NetLoginHttp::PostForm(const std::string& url,
                                          const std::vector<std::pair<std::string, std::string>>& fields) {
  return Call("POST", url, FormEncode(fields));
}

struct LoopbackRedirectReceiver::Impl {
  asio::io_context ioc;
  asio::ip::tcp::acceptor acceptor{ioc};
};

LoopbackRedirectReceiver::LoopbackRedirectReceiver() : impl_(std::make_unique<Impl>()) {}
LoopbackRedirectReceiver::~LoopbackRedirectReceiver() = default;

Result<std::string> LoopbackRedirectReceiver::Start() {
  boost::system::error_code ec;
  asio::ip::tcp::endpoint ep(asio::ip::address_v4::loopback(), 0);
  impl_->acceptor.open(ep.protocol(), ec);
  if (!ec) impl_->acceptor.bind(ep, ec);
  if (!ec) impl_->acceptor.listen(1, ec);
  if (ec) return Error::Internal("cannot listen on 127.0.0.1 for the sign-in redirect: " + ec.message());
  return "http://127.0.0.1:" + std::to_string(impl_->acceptor.local_endpoint().port()) + "/callback";
}

Result<std::map<std::string, std::string>> LoopbackRedirectReceiver::Wait(int timeout_s) {
  std::map<std::string, std::string> params;
  std::optional<Error> failure;
  asio::ip::tcp::socket socket(impl_->ioc);
  beast::flat_buffer buf;
  http::request<http::string_body> req;
  impl_->acceptor.async_accept(socket, [&](boost::system::error_code ec) {
    if (ec) {
      failure = Error::Unavailable("no sign-in redirect arrived: " + ec.message());
      return;
    }
    http::async_read(socket, buf, req, [&](boost::system::error_code rec, std::size_t) {
      if (rec) {
        failure = Error::BadRequest("unreadable sign-in redirect: " + rec.message());
        return;
      }
      if (auto target = ParseRequestTarget(req.target())) {
        QueryValues q = ParseQuery(target->raw_query);
        for (const char* k : {"code", "state", "error", "error_description"}) {
          if (auto v = q.First(k)) params[k] = *v;
        }
      }
      http::response<http::string_body> res(http::status::ok, 11);
      res.set(http::field::content_type, "text/plain; charset=utf-8");
      res.set(http::field::connection, "close");
      res.body() = params.count("code") ? "Signed in to kubegate. You can close this window.\n"
                                        : "kubegate sign-in did not complete. You can close this window.\n";
      res.prepare_payload();
      boost::system::error_code wec;
      http::write(socket, res, wec);
    });
  });
  impl_->ioc.restart();
  impl_->ioc.run_for(std::chrono::seconds(timeout_s));
  if (failure) return *failure;
  if (params.empty()) return Error::Unavailable("no sign-in redirect arrived within " + std::to_string(timeout_s) + " s");
  return params;
}

}  // namespace kubegate
