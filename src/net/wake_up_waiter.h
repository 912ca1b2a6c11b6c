// WakeUpWaiter: how a held request, a stream or a grant waits for what may
// end or wake it, in one coroutine frame however many sources it watches.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/steady_timer.hpp>

#include "approval/wake_ups.h"
#include "common/clock.h"
#include "net/net_stream.h"

namespace kubegate {

// What ended a wait of WakeUpWaiter::Wait, most urgent first.
enum class Woken { kReadable, kIdentity, kKey, kDeadline };

// Waits for the first of: a wake-up on one of its keys (a decision, a vote,
// a grant's change, the gateway stopping), a wake-up on the caller's
// identity keys, the caller's connection turning readable (bytes, an alert,
// the end), or a deadline. Each source only sets its flag and cancels the
// timer the coroutine waits on. Subscribed (and watching the connection)
// for its whole life, so what comes while its owner is busy elsewhere (a
// store call) is kept for the next Wait, never lost.
//
// Lives on its owner's executor (one thread), inside the coroutine that
// waits; the stream it watches outlives it.
class WakeUpWaiter {
 public:
  explicit WakeUpWaiter(boost::asio::any_io_executor ex);
  WakeUpWaiter(WakeUps& wake_ups, const std::vector<std::string>& keys, boost::asio::any_io_executor ex);
  WakeUpWaiter(const WakeUpWaiter&) = delete;
  WakeUpWaiter& operator=(const WakeUpWaiter&) = delete;
  // Ends the connection's readability wait, if one is armed (cancelled at
  // once; its handler, posted, touches only the shared state).
  ~WakeUpWaiter();

  // Wakes the waiter, as `as` (kKey or kIdentity), on any of `keys`.
  void WakeOn(WakeUps& wake_ups, const std::vector<std::string>& keys, Woken as);
  // Wakes the waiter (kReadable) once `stream` has something to read: armed
  // by each Wait while no readability is pending.
  void WatchReadable(NetStream& stream) { stream_ = &stream; }

  // The most urgent source that fired since the last Wait, or kDeadline
  // when none did by `deadline_ms` (or the wait was cancelled). Each call
  // reports (and clears) one.
  boost::asio::awaitable<Woken> Wait(const Clock& clock, std::int64_t deadline_ms);

 private:
  struct State {
    explicit State(boost::asio::any_io_executor ex) : timer(std::move(ex)) {}
    boost::asio::steady_timer timer;
    bool key = false;
    bool identity = false;
    bool readable = false;
    bool watching = false;  // a readability wait is armed
    boost::asio::cancellation_signal stop_watching;
  };
  std::shared_ptr<State> state_;
  boost::asio::any_io_executor ex_;
  NetStream* stream_ = nullptr;
  std::vector<WakeUps::Subscription> subs_;
};

}  // namespace kubegate
