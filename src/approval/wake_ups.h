// WakeUps: a change to an approval request or a grant wakes exactly the
// held requests and streams that wait on it, instead of each one polling
// the store.
//
// Keys are ids: an approval request's ("kg-...") or a grant's ("gr-..."),
// or a runtime identity's (CredentialCache::WakeKeys: "user:...",
// "credential:..."), or kGatewayStoppingKey.
// Whoever changes one calls Notify(id): ApprovalService does after every
// committed decision, withdrawal, expiry and revocation (SetChangeListener),
// and a safety-net sweep does for changes made by another process sharing
// the store (ApprovalService::ChangedAmong over Watched()). A PostgreSQL
// LISTEN/NOTIFY feed would call Notify the same way.
//
//   WakeUps w;
//   auto sub = w.Subscribe("kg-1", [&] { post(ex, resume); });  // woken until `sub` ends
//   w.Notify("kg-1");
//
// Thread-safe. A callback runs on the notifying thread with the registry
// locked: it must only hand the wake-up on (post to an executor), never
// subscribe, notify or block.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace kubegate {

// Notified once when the gateway starts shutting down: held requests hand
// off (ReviewStage::HandOff). Not an id of the store: the sweep skips it.
inline constexpr const char* kGatewayStoppingKey = "gateway:stopping";

class WakeUps {
 public:
  // Ends the subscription when destroyed; after that its callback is never
  // called again.
  class Subscription {
   public:
    Subscription() = default;
    Subscription(Subscription&& o) noexcept : owner_(o.owner_), key_(std::move(o.key_)), token_(o.token_) {
      o.owner_ = nullptr;
    }
    Subscription& operator=(Subscription&& o) noexcept;
    Subscription(const Subscription&) = delete;
    Subscription& operator=(const Subscription&) = delete;
    ~Subscription() { Reset(); }
    void Reset();

   private:
    friend class WakeUps;
    Subscription(WakeUps* owner, std::string key, std::uint64_t token)
        : owner_(owner), key_(std::move(key)), token_(token) {}
    WakeUps* owner_ = nullptr;
    std::string key_;
    std::uint64_t token_ = 0;
  };

  [[nodiscard]] Subscription Subscribe(std::string key, std::function<void()> fn);
  // Calls every callback subscribed to `key`; returns how many.
  std::size_t Notify(std::string_view key);
  // The keys someone waits on now (for the safety-net sweep).
  std::vector<std::string> Watched() const;
  std::size_t size() const;

 private:
  void Unsubscribe(const std::string& key, std::uint64_t token);

  mutable std::mutex mu_;
  std::uint64_t next_token_ = 1;
  // By key, then by subscription: ending one is O(log n) however many
  // wait on the same key (every stream of one user waits on its user key).
  std::map<std::string, std::map<std::uint64_t, std::function<void()>>, std::less<>> waiting_;
  std::size_t size_ = 0;
};

}  // namespace kubegate
