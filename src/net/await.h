// Bridges from other threads back into a session's coroutine.
//
//   T v = co_await AwaitResume<T>([&](std::function<void(T)> resume) { start(resume); });
//   T v = co_await OnStoreThread<T>(pool, fn);   // fn() runs on the store thread
#pragma once

#include <functional>
#include <memory>

#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace kubegate {

// Suspends the coroutine until `launch` calls the resume function it is
// given (exactly once, from any thread) with a T; resumes on the
// coroutine's own executor.
template <typename T, typename Launch>
boost::asio::awaitable<T> AwaitResume(Launch launch) {
  namespace asio = boost::asio;
  auto ex = co_await asio::this_coro::executor;
  co_return co_await asio::async_initiate<decltype(asio::use_awaitable), void(T)>(
      [ex, &launch](auto handler) {
        auto h = std::make_shared<decltype(handler)>(std::move(handler));
        std::function<void(T)> resume = [h, ex](T value) {
          asio::post(ex, [h, v = std::move(value)]() mutable { std::move(*h)(std::move(v)); });
        };
        launch(std::move(resume));
      },
      asio::use_awaitable);
}

// Runs `fn` on `pool` (the store thread) and resumes with its result.
// `fn` is taken by reference, not copied into the coroutine frame: the
// caller's temporary lives until its co_await completes, and GCC 12 has
// destroyed by-value lambda parameters of coroutines twice.
template <typename T, typename F>
boost::asio::awaitable<T> OnStoreThread(boost::asio::thread_pool& pool, F&& fn) {
  co_return co_await AwaitResume<T>([&](std::function<void(T)> resume) {
    boost::asio::post(pool, [&fn, resume = std::move(resume)]() { resume(fn()); });
  });
}

}  // namespace kubegate
