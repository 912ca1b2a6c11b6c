// Changes committed by any gateway replica, pushed to every other one:
// PostgreSQL LISTEN/NOTIFY. A replica that commits a change publishes it
// (Database::Publish, a pg_notify inside or right after the commit); every
// replica runs one StoreEvents thread with a connection of its own that
// LISTENs and hands each notification to its callback at once.
//
// It only speeds things up: every consumer keeps its periodic check as the
// safety net (the wake-up sweep, the credential poller), so a notification
// lost while the listener reconnects costs latency, never correctness.
//
//   StoreEvents events(conninfo, {kWakeChannel, kCredentialsChannel},
//                      [&](std::string_view channel, std::string_view payload) { ... });
//   events.Start();   // a thread; reconnects by itself; Stop() or the destructor ends it
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/result.h"

namespace kubegate {

// A held request's approval or a grant changed: the payload is its id.
inline constexpr const char* kWakeChannel = "kubegate_wake";
// The runtime credentials or identities changed: poll the store now.
inline constexpr const char* kCredentialsChannel = "kubegate_credentials";

// This process among the replicas (random, per start): Database::Publish
// sends it with each payload, so a replica skips what it announced itself
// (it already woke its own waiters directly).
const std::string& StoreInstanceId();

class StoreEvents {
 public:
  using Callback = std::function<void(std::string_view channel, std::string_view payload)>;
  // `self`: notifications published by this instance are skipped.
  StoreEvents(std::string conninfo, std::vector<std::string> channels, Callback on_event,
              std::string self = StoreInstanceId());
  ~StoreEvents();
  StoreEvents(const StoreEvents&) = delete;
  StoreEvents& operator=(const StoreEvents&) = delete;

  void Start();
  void Stop();
  // Notifications delivered so far, and (re)connections made: for
  // metrics and tests.
  std::uint64_t delivered() const { return delivered_.load(); }
  std::uint64_t connections() const;
  // Waits (at most `limit`) until it has LISTENed on `n` connections in
  // all: the first, or a reconnection after the server dropped one.
  bool WaitListening(std::uint64_t n, std::chrono::milliseconds limit) const;
  // The listener's name in pg_stat_activity: "kubegate-events-" + self.
  std::string application_name() const;

  // How long the thread waits on the socket before checking Stop, and
  // between reconnection attempts.
  static constexpr std::chrono::milliseconds kPollSlice{200};
  static constexpr std::chrono::milliseconds kReconnectDelay{1000};

 private:
  void Run();

  const std::string conninfo_;
  const std::vector<std::string> channels_;
  const Callback on_event_;
  const std::string self_;
  std::atomic<bool> stop_{false};
  std::atomic<std::uint64_t> delivered_{0};
  mutable std::mutex mu_;
  mutable std::condition_variable listening_;
  std::uint64_t connections_ = 0;  // guarded by mu_
  std::thread thread_;
};

}  // namespace kubegate
