// WakeUpWaiter over a real loopback connection: each source ends a wait
// and is told apart, a wake-up that comes between waits is kept, and
// ending the waiter leaves nothing waiting on the connection.
#include "net/wake_up_waiter.h"

#include <gtest/gtest.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>

namespace kubegate {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

class WakeUpWaiterTest : public ::testing::Test {
 protected:
  WakeUpWaiterTest() {
    tcp::acceptor acceptor(ioc_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    peer_.connect(acceptor.local_endpoint());
    stream_.emplace(NetStream::Plain(acceptor.accept()));
  }

  // Runs one Wait to its end; what it returned.
  Woken WaitOnce(WakeUpWaiter& waiter, std::int64_t deadline_ms) {
    std::optional<Woken> got;
    ioc_.restart();
    asio::co_spawn(
        ioc_, [&]() -> asio::awaitable<void> { got = co_await waiter.Wait(SystemClock(), deadline_ms); },
        asio::detached);
    while (!got && ioc_.run_one_for(std::chrono::seconds(10))) {
    }
    EXPECT_TRUE(got.has_value()) << "the wait did not end";
    return got.value_or(Woken::kDeadline);
  }
  std::int64_t Later() const { return SystemClock().NowMillis() + 60'000; }

  asio::io_context ioc_;
  tcp::socket peer_{ioc_};
  std::optional<NetStream> stream_;
  WakeUps wake_ups_;
};

TEST_F(WakeUpWaiterTest, AWakeUpOnAKeyEndsTheWait) {
  WakeUpWaiter waiter(wake_ups_, {"kg-1"}, ioc_.get_executor());
  asio::post(ioc_, [this] { EXPECT_EQ(wake_ups_.Notify("kg-1"), 1u); });
  EXPECT_EQ(WaitOnce(waiter, Later()), Woken::kKey);
}

TEST_F(WakeUpWaiterTest, AWakeUpBetweenWaitsIsKeptForTheNextOne) {
  WakeUpWaiter waiter(wake_ups_, {"kg-1"}, ioc_.get_executor());
  wake_ups_.Notify("kg-1");
  ioc_.poll();  // the wake-up lands while nobody waits
  ioc_.restart();
  EXPECT_EQ(WaitOnce(waiter, Later()), Woken::kKey);
  // Reported once: the next wait runs to its deadline.
  EXPECT_EQ(WaitOnce(waiter, SystemClock().NowMillis() + 5), Woken::kDeadline);
}

TEST_F(WakeUpWaiterTest, IdentityWakeUpsAreToldApartFromKeys) {
  WakeUpWaiter waiter(ioc_.get_executor());
  waiter.WakeOn(wake_ups_, {"kg-1"}, Woken::kKey);
  waiter.WakeOn(wake_ups_, {"user:bot"}, Woken::kIdentity);
  asio::post(ioc_, [this] { wake_ups_.Notify("user:bot"); });
  EXPECT_EQ(WaitOnce(waiter, Later()), Woken::kIdentity);
  asio::post(ioc_, [this] { wake_ups_.Notify("kg-1"); });
  EXPECT_EQ(WaitOnce(waiter, Later()), Woken::kKey);
}

TEST_F(WakeUpWaiterTest, TheCallerSendingEndsTheWaitAndItsBytesStayToBeRead) {
  WakeUpWaiter waiter(ioc_.get_executor());
  waiter.WatchReadable(*stream_);
  asio::post(ioc_, [this] { asio::write(peer_, asio::buffer("abc", 3)); });
  EXPECT_EQ(WaitOnce(waiter, Later()), Woken::kReadable);
  char buf[8];
  boost::beast::error_code ec;
  EXPECT_EQ(std::string(buf, stream_->ReadNow(asio::buffer(buf), ec)), "abc");
  EXPECT_FALSE(ec);
  // The caller leaving is readable too.
  peer_.close();
  EXPECT_EQ(WaitOnce(waiter, Later()), Woken::kReadable);
  EXPECT_EQ(stream_->ReadNow(asio::buffer(buf), ec), 0u);
  EXPECT_EQ(ec, asio::error::eof);
}

TEST_F(WakeUpWaiterTest, EndingTheWaiterLeavesNothingWaitingOnTheConnection) {
  {
    WakeUpWaiter waiter(ioc_.get_executor());
    waiter.WatchReadable(*stream_);
    EXPECT_EQ(WaitOnce(waiter, SystemClock().NowMillis() + 5), Woken::kDeadline);
  }
  // With the readability wait still armed, the context would have work
  // until the peer sent something; it has none.
  ioc_.restart();
  ioc_.run_for(std::chrono::seconds(10));
  EXPECT_TRUE(ioc_.stopped());
}

}  // namespace
}  // namespace kubegate
