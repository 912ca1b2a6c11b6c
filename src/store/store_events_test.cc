#include "store/store_events.h"

#include <condition_variable>
#include <mutex>

#include <gtest/gtest.h>

#include "store/store_test_util.h"

namespace kubegate {
namespace {

using namespace kubegate::testing;

// What a replica heard, waited for with a bound (no sleeps).
struct Heard {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::string> items;
  void Add(std::string_view channel, std::string_view payload) {
    {
      std::lock_guard<std::mutex> lock(mu);
      items.push_back(std::string(channel) + "/" + std::string(payload));
    }
    cv.notify_all();
  }
  bool WaitFor(const std::string& item) {
    std::unique_lock<std::mutex> lock(mu);
    return cv.wait_for(lock, std::chrono::seconds(10),
                       [&] { return std::find(items.begin(), items.end(), item) != items.end(); });
  }
};

TEST(StoreEvents, AReplicaHearsWhatAnotherCommitsAndListensAgainAfterLosingItsConnection) {
  TestDatabase db("postgres");
  KG_REQUIRE_BACKEND(db);
  Heard heard;
  // As another replica: this process's publishes are someone else's.
  StoreEvents events(db.config().postgres_conninfo, {kWakeChannel, kCredentialsChannel},
                     [&](std::string_view c, std::string_view p) { heard.Add(c, p); }, "another-replica");
  events.Start();
  // As this replica: it skips what it published itself.
  Heard own;
  StoreEvents self(db.config().postgres_conninfo, {kWakeChannel},
                   [&](std::string_view c, std::string_view p) { own.Add(c, p); });
  self.Start();
  ASSERT_TRUE(events.WaitListening(1, std::chrono::seconds(10)));
  ASSERT_TRUE(self.WaitListening(1, std::chrono::seconds(10)));
  Database other(db.Connect());
  // A change rolled back announces nothing; one committed does.
  auto rolled = other.WithWriteTransaction([&]() -> Result<bool> {
    (void)other.Publish(kWakeChannel, "kg-rolled-back");
    return Error::Unavailable("rolled back");
  });
  ASSERT_FALSE(rolled);
  ASSERT_TRUE(other.WithWriteTransaction([&]() -> Result<bool> { return other.Publish(kCredentialsChannel, ""); }));
  ASSERT_TRUE(other.Publish(kWakeChannel, "kg-1"));
  ASSERT_TRUE(heard.WaitFor("kubegate_wake/kg-1"));
  ASSERT_TRUE(heard.WaitFor("kubegate_credentials/"));
  {
    std::lock_guard<std::mutex> lock(heard.mu);
    EXPECT_EQ(heard.items, (std::vector<std::string>{"kubegate_credentials/", "kubegate_wake/kg-1"}))
        << "in commit order, nothing rolled back";
  }
  // A marker from another instance, after this one's own: once it is
  // heard, everything before it was read too.
  ASSERT_TRUE(other.Run("SELECT pg_notify('kubegate_wake', 'another-replica kg-marker')"));
  ASSERT_TRUE(own.WaitFor("kubegate_wake/kg-marker"));
  {
    std::lock_guard<std::mutex> lock(own.mu);
    EXPECT_EQ(own.items, std::vector<std::string>{"kubegate_wake/kg-marker"}) << "its own announcements are not news";
  }
  self.Stop();
  // The server drops the listener (a PostgreSQL restart, a failover): it
  // connects and LISTENs again by itself.
  // Chosen by its name: the backend of the listener just stopped may
  // still be in pg_stat_activity for a moment after it disconnected.
  auto killed = other.Run(
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() "
      "AND application_name = $1",
      {SqlValue{events.application_name()}});
  ASSERT_TRUE(killed) << killed.error().message;
  ASSERT_EQ(killed->size(), 1u);
  ASSERT_TRUE(events.WaitListening(2, std::chrono::seconds(10)));
  ASSERT_TRUE(other.Publish(kWakeChannel, "kg-2"));
  EXPECT_TRUE(heard.WaitFor("kubegate_wake/kg-2"));
  events.Stop();
}

TEST(StoreEvents, PublishingOnSqliteIsANoOp) {
  TestDatabase db("sqlite");
  Database d(db.Connect());
  EXPECT_TRUE(d.Publish(kWakeChannel, "kg-1"));
}

}  // namespace
}  // namespace kubegate
