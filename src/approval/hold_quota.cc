#include "approval/hold_quota.h"

namespace kubegate {

std::shared_ptr<HoldQuota::Ticket> HoldQuota::TryHold(const std::string& user) {
  std::lock_guard lk(mu_);
  int& mine = held_by_user_[user];
  if (mine >= max_per_caller_ || held_total_.load() >= max_total_) {
    if (mine == 0) held_by_user_.erase(user);
    return nullptr;
  }
  ++mine;
  ++held_total_;
  return std::shared_ptr<Ticket>(new Ticket(*this, user));
}

void HoldQuota::Release(const std::string& user) {
  std::lock_guard lk(mu_);
  auto it = held_by_user_.find(user);
  if (it != held_by_user_.end() && --it->second <= 0) held_by_user_.erase(it);
  --held_total_;
}

}  // namespace kubegate
