// WebhookNotifier: tells people about approval requests (new, approved,
// denied, expired) by POSTing JSON to a webhook, or a Slack-compatible
// {"text": ...} payload. Runs on its own thread with a bounded queue,
// a per-attempt timeout and retries, so it never blocks or fails a request:
// when the queue is full or the receiver keeps failing, the event is
// dropped and counted.
//
//   WebhookNotifier n("https://hooks.example/kubegate", "slack");
//   n.Notify("new", approval_request);
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>
#include <thread>

#include "approval/approval.h"
#include "approval/approval_events.h"

namespace kubegate {

class WebhookNotifier final : public ApprovalEvents {
 public:
  WebhookNotifier(std::string url, std::string format);
  ~WebhookNotifier() override;

  // Queues an event; never blocks.
  void Notify(const std::string& event, const ApprovalRequest& r) override;

  std::atomic<std::uint64_t> sent{0};
  std::atomic<std::uint64_t> dropped{0};

 private:
  void Run();
  bool Post(const std::string& body);

  std::string url_, format_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> queue_;
  bool stop_ = false;
  std::thread thread_;
};

// The payload for one event (exposed for tests).
std::string WebhookPayload(const std::string& event, const ApprovalRequest& r, const std::string& format);

}  // namespace kubegate
