#include "approval/wake_ups.h"

namespace kubegate {

WakeUps::Subscription& WakeUps::Subscription::operator=(Subscription&& o) noexcept {
  if (this != &o) {
    Reset();
    owner_ = o.owner_;
    key_ = std::move(o.key_);
    token_ = o.token_;
    o.owner_ = nullptr;
  }
  return *this;
}

void WakeUps::Subscription::Reset() {
  if (owner_) owner_->Unsubscribe(key_, token_);
  owner_ = nullptr;
}

WakeUps::Subscription WakeUps::Subscribe(std::string key, std::function<void()> fn) {
  std::lock_guard lk(mu_);
  std::uint64_t token = next_token_++;
  waiting_[key].emplace(token, std::move(fn));
  ++size_;
  return Subscription(this, std::move(key), token);
}

std::size_t WakeUps::Notify(std::string_view key) {
  std::lock_guard lk(mu_);
  auto it = waiting_.find(key);
  if (it == waiting_.end()) return 0;
  for (auto& [token, fn] : it->second) fn();
  return it->second.size();
}

std::vector<std::string> WakeUps::Watched() const {
  std::lock_guard lk(mu_);
  std::vector<std::string> out;
  out.reserve(waiting_.size());
  for (const auto& [key, subs] : waiting_) out.push_back(key);
  return out;
}

std::size_t WakeUps::size() const {
  std::lock_guard lk(mu_);
  return size_;
}

void WakeUps::Unsubscribe(const std::string& key, std::uint64_t token) {
  std::lock_guard lk(mu_);
  auto it = waiting_.find(key);
  if (it == waiting_.end()) return;
  size_ -= it->second.erase(token);
  if (it->second.empty()) waiting_.erase(it);
}

}  // namespace kubegate
