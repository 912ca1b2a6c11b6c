#include "net/webhook_notifier.h"

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <spdlog/spdlog.h>

#include "approval/approval_api.h"
#include "common/clock.h"
#include "common/limits.h"
#include "upstream/upstream_target.h"

namespace kubegate {

std::string WebhookPayload(const std::string& event, const ApprovalRequest& r, const std::string& format) {
  std::string text = "kubegate: request " + r.id + " by " + r.requester + " (rule " + r.rule + ") is " + event;
  if (event == "new") text += " and waits for approval: kubectl gate approve " + r.id;
  if (event == "denied" || event == "approved") text += " by " + r.decided_by;
  if (!r.reason.empty() && event != "approved") text += ": " + r.reason;
  nlohmann::json j;
  if (format == "slack") {
    j["text"] = text + "\n```\n" + DescribeApproval(r, SystemClock().NowMillis()) + "```";
  } else {
    j["event"] = event;
    j["text"] = text;
    j["request"] = r.ToJson();
  }
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

WebhookNotifier::WebhookNotifier(std::string url, std::string format)
    : url_(std::move(url)), format_(std::move(format)), thread_([this] { Run(); }) {}

WebhookNotifier::~WebhookNotifier() {
  {
    std::lock_guard lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void WebhookNotifier::Notify(const std::string& event, const ApprovalRequest& r) {
  std::string body = WebhookPayload(event, r, format_);
  {
    std::lock_guard lk(mu_);
    if (queue_.size() >= limits::kWebhookMaxQueue) {
      dropped++;
      return;
    }
    queue_.push_back(std::move(body));
  }
  cv_.notify_one();
}

void WebhookNotifier::Run() {
  while (true) {
    std::string body;
    {
      std::unique_lock lk(mu_);
      cv_.wait(lk, [&] { return stop_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping
      body = std::move(queue_.front());
      queue_.pop_front();
    }
    bool ok = false;
    auto backoff = limits::kWebhookRetryBackoff;
    for (int attempt = 0; attempt < limits::kWebhookAttempts && !ok; ++attempt) {
      ok = Post(body);
      if (!ok && attempt + 1 < limits::kWebhookAttempts) {
        std::unique_lock lk(mu_);
        if (cv_.wait_for(lk, backoff, [&] { return stop_; })) break;
        backoff *= 2;
      }
    }
    if (ok) {
      sent++;
    } else {
      dropped++;
      spdlog::warn("approval notification to {} failed after {} attempts; dropped", url_, limits::kWebhookAttempts);
    }
  }
}

bool WebhookNotifier::Post(const std::string& body) {
  namespace asio = boost::asio;
  namespace beast = boost::beast;
  namespace http = boost::beast::http;
  UpstreamTarget t;
  if (!ParseServerUrl(url_, t)) return false;
  std::string path = t.base_path.empty() ? "/" : t.base_path;
  http::request<http::string_body> req(http::verb::post, path, 11);
  req.set(http::field::host, t.HostHeader());
  req.set(http::field::content_type, "application/json");
  req.set(http::field::user_agent, "kubegate-notifier");
  req.body() = body;
  req.prepare_payload();
  http::response<http::string_body> res;
  beast::flat_buffer buf;
  try {
    asio::io_context ioc;
    asio::ip::tcp::resolver resolver(ioc);
    beast::tcp_stream tcp(ioc);
    tcp.expires_after(limits::kWebhookTimeout);
    tcp.connect(resolver.resolve(t.host, t.port));
    if (!t.tls) {
      http::write(tcp, req);
      http::read(tcp, buf, res);
    } else {
      asio::ssl::context ctx(asio::ssl::context::tls_client);
      ctx.set_default_verify_paths();
      beast::ssl_stream<beast::tcp_stream&> tls(tcp, ctx);
      SSL_set_tlsext_host_name(tls.native_handle(), t.host.c_str());
      tls.set_verify_mode(asio::ssl::verify_peer);
      tls.set_verify_callback(asio::ssl::host_name_verification(t.host));
      tls.handshake(asio::ssl::stream_base::client);
      http::write(tls, req);
      http::read(tls, buf, res);
    }
  } catch (const std::exception&) {
    return false;
  }
  return res.result_int() >= 200 && res.result_int() < 300;
}

}  // namespace kubegate
