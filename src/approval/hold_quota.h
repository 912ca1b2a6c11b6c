// HoldQuota: how many requests may wait for approval at once, per caller
// and in all (config: approvals.max_held_per_caller / max_held_total).
//
//   HoldQuota q(8, 1000);
//   auto t = q.TryHold("bob");   // null when over either limit
//   ...                          // the hold ends when the last copy of `t` goes
//
// Thread-safe; a ticket may be released on any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

namespace kubegate {

class HoldQuota {
 public:
  class Ticket {
   public:
    Ticket(const Ticket&) = delete;
    Ticket& operator=(const Ticket&) = delete;
    ~Ticket() { quota_.Release(user_); }

   private:
    friend class HoldQuota;
    Ticket(HoldQuota& q, std::string user) : quota_(q), user_(std::move(user)) {}
    HoldQuota& quota_;
    std::string user_;
  };

  HoldQuota(int max_per_caller, int max_total) : max_per_caller_(max_per_caller), max_total_(max_total) {}

  // A ticket for one more held request of `user`, or null over a limit.
  std::shared_ptr<Ticket> TryHold(const std::string& user);
  int max_per_caller() const { return max_per_caller_; }
  int max_total() const { return max_total_; }
  // Requests held now (the kubegate_held_requests gauge).
  std::int64_t held() const { return held_total_.load(); }

 private:
  void Release(const std::string& user);

  const int max_per_caller_, max_total_;
  std::mutex mu_;
  std::map<std::string, int> held_by_user_;
  std::atomic<std::int64_t> held_total_{0};
};

}  // namespace kubegate
