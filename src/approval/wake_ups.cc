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
  waiting_.emplace(key, std::make_pair(token, std::move(fn)));
  return Subscription(this, std::move(key), token);
}

std::size_t WakeUps::Notify(std::string_view key) {
  std::lock_guard lk(mu_);
  std::size_t n = 0;
  auto [from, to] = waiting_.equal_range(key);
  for (auto it = from; it != to; ++it, ++n) it->second.second();
  return n;
}

std::vector<std::string> WakeUps::Watched() const {
  std::lock_guard lk(mu_);
  std::vector<std::string> out;
  for (auto it = waiting_.begin(); it != waiting_.end(); it = waiting_.upper_bound(it->first)) {
    out.push_back(it->first);
  }
  return out;
}

std::size_t WakeUps::size() const {
  std::lock_guard lk(mu_);
  return waiting_.size();
}

void WakeUps::Unsubscribe(const std::string& key, std::uint64_t token) {
  std::lock_guard lk(mu_);
  auto [from, to] = waiting_.equal_range(key);
  for (auto it = from; it != to; ++it) {
    if (it->second.first == token) {
      waiting_.erase(it);
      return;
    }
  }
}

}  // namespace kubegate
