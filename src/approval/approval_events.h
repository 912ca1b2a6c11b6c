// ApprovalEvents: where people hear of approval requests (new, approved,
// denied, expired). The webhook notifier (net/webhook_notifier.h) is one;
// tests record them. Notify must never block or fail the request.
#pragma once

#include <string>

#include "approval/approval.h"

namespace kubegate {

class ApprovalEvents {
 public:
  virtual ~ApprovalEvents() = default;
  virtual void Notify(const std::string& event, const ApprovalRequest& r) = 0;
};

}  // namespace kubegate
