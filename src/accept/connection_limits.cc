#include "accept/connection_limits.h"

namespace kubegate {

ConnectionLimits::Ticket::~Ticket() {
  if (owner_) owner_->Release(source_);
}

Result<std::shared_ptr<ConnectionLimits::Ticket>> ConnectionLimits::Admit(const std::string& source) {
  {
    std::lock_guard lk(mu_);
    if (open_ >= max_total_) {
      return Error::Unavailable("kubegate holds its maximum of " + std::to_string(max_total_) + " client connections");
    }
    std::size_t& mine = per_source_[source];
    if (mine >= max_per_source_) {
      if (mine == 0) per_source_.erase(source);
      return Error::Unavailable("kubegate holds its maximum of " + std::to_string(max_per_source_) +
                                " connections from " + source);
    }
    ++mine;
    ++open_;
  }
  return std::make_shared<Ticket>(this, source);
}

std::size_t ConnectionLimits::open() const {
  std::lock_guard lk(mu_);
  return open_;
}

void ConnectionLimits::Release(const std::string& source) {
  std::lock_guard lk(mu_);
  --open_;
  auto it = per_source_.find(source);
  if (it != per_source_.end() && --it->second == 0) per_source_.erase(it);
}

}  // namespace kubegate
