#include "net/wake_up_waiter.h"

#include <algorithm>
#include <chrono>
#include <utility>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace kubegate {

namespace asio = boost::asio;

WakeUpWaiter::WakeUpWaiter(asio::any_io_executor ex) : state_(std::make_shared<State>(ex)), ex_(std::move(ex)) {}

WakeUpWaiter::WakeUpWaiter(WakeUps& wake_ups, const std::vector<std::string>& keys, asio::any_io_executor ex)
    : WakeUpWaiter(std::move(ex)) {
  WakeOn(wake_ups, keys, Woken::kKey);
}

WakeUpWaiter::~WakeUpWaiter() {
  // Only while armed: the signal then reaches an operation still queued on
  // a socket that is still open.
  if (state_->watching) state_->stop_watching.emit(asio::cancellation_type::all);
}

void WakeUpWaiter::WakeOn(WakeUps& wake_ups, const std::vector<std::string>& keys, Woken as) {
  for (const std::string& key : keys) {
    // Runs on whichever thread committed the change: it only posts.
    subs_.push_back(wake_ups.Subscribe(key, [s = state_, ex = ex_, as] {
      asio::post(ex, [s, as] {
        (as == Woken::kIdentity ? s->identity : s->key) = true;
        s->timer.cancel();
      });
    }));
  }
}

asio::awaitable<Woken> WakeUpWaiter::Wait(const Clock& clock, std::int64_t deadline_ms) {
  State& st = *state_;
  if (stream_ && !st.watching && !st.readable) {
    st.watching = true;
    stream_->async_wait_readable(
        asio::bind_cancellation_slot(st.stop_watching.slot(), [s = state_](boost::beast::error_code) {
          // An error (the connection broke, the wait was cancelled) counts
          // as readable: the read that follows says what happened.
          s->watching = false;
          s->readable = true;
          s->timer.cancel();
        }));
  }
  if (!st.readable && !st.identity && !st.key) {
    const std::int64_t left = deadline_ms - clock.NowMillis();
    st.timer.expires_after(std::chrono::milliseconds(std::max<std::int64_t>(left, 1)));
    (void)co_await st.timer.async_wait(asio::as_tuple(asio::use_awaitable));
  }
  if (std::exchange(st.readable, false)) co_return Woken::kReadable;
  if (std::exchange(st.identity, false)) co_return Woken::kIdentity;
  if (std::exchange(st.key, false)) co_return Woken::kKey;
  co_return Woken::kDeadline;
}

}  // namespace kubegate
