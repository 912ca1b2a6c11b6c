#include "net/webhook_notifier.h"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "approval/approval_api.h"
#include "common/clock.h"
#include "common/limits.h"
#include "common/thread_name.h"
#include "net/gateway_client.h"

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
    : url_(std::move(url)), format_(std::move(format)), thread_([this] {
        NameThisThread("kg-webhook");
        Run();
      }) {}

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
  auto target = TargetOfUrl(url_);
  if (!target) return false;
  BlockingCall call;
  call.method = "POST";
  call.path = target->second;
  call.headers = {{"Content-Type", "application/json"}, {"User-Agent", "kubegate-notifier"}};
  call.body = body;
  call.timeout = limits::kWebhookTimeout;
  call.max_response_body = 64 << 10;
  auto r = BlockingRequest(target->first, call);
  return r && r->status >= 200 && r->status < 300;
}

}  // namespace kubegate
