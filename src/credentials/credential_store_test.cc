#include "credentials/credential_store.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/digest.h"
#include "store/store_test_util.h"

namespace kubegate {
namespace {

using namespace kubegate::testing;

class CredentialTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    KG_REQUIRE_BACKEND(db_);
    database_ = std::move(*CredentialStore::OpenDatabase(db_.Connect()));
    store_ = std::make_unique<CredentialStore>(*database_, clock_);
  }
  NewCredential Task(const std::string& task, std::int64_t ttl_ms = 3'600'000) {
    return {"deploy-bot", {"agents"}, task, ttl_ms, "roll out 1.4", "alice"};
  }
  // What a gateway worker sees after its next poll.
  const CredentialCache& Poll() {
    cache_.Load(*store_->Snapshot());
    return cache_;
  }

  TestDatabase db_{GetParam()};
  ManualClock clock_{1'795'000'000'000};
  std::unique_ptr<Database> database_;
  std::unique_ptr<CredentialStore> store_;
  CredentialCache cache_;
};

TEST_P(CredentialTest, AnIssuedTokenIsAnAgentBoundToItsTaskUntilItExpires) {
  auto issued = store_->Issue(Task("T-123"));
  ASSERT_TRUE(issued) << issued.error().message;
  EXPECT_EQ(issued->token.rfind("kgt_", 0), 0u);
  EXPECT_EQ(issued->info.token_sha256, Sha256Hex(issued->token));
  const CredentialCache& cache = Poll();
  auto who = cache.Lookup(Sha256Hex(issued->token), clock_.NowMillis());
  ASSERT_TRUE(who);
  EXPECT_EQ(who->user, "deploy-bot");
  EXPECT_EQ(who->kind, IdentityKind::kAgent);
  EXPECT_EQ(who->method, AuthMethod::kTaskToken);
  EXPECT_EQ(who->task, "T-123");
  EXPECT_EQ(who->credential_id, issued->info.id);
  EXPECT_EQ(who->credential_expires_ms, clock_.NowMillis() + 3'600'000);
  EXPECT_FALSE(cache.Lookup(Sha256Hex("kgt_other"), clock_.NowMillis()));
  // Expiry ends it, even before the next poll.
  EXPECT_FALSE(cache.Lookup(Sha256Hex(issued->token), clock_.NowMillis() + 3'600'000));
  EXPECT_FALSE(cache.Ended(*who, clock_.NowMillis()));
  auto ended = cache.Ended(*who, clock_.NowMillis() + 3'600'000);
  ASSERT_TRUE(ended);
  EXPECT_EQ(*ended, "the task token for task T-123 (" + issued->info.id + ") was revoked or expired");
  // The listing never shows the token or its hash.
  auto list = store_->List(false);
  ASSERT_TRUE(list);
  ASSERT_EQ(list->size(), 1u);
  std::string shown = (*list)[0].ToJson().dump();
  EXPECT_EQ(shown.find(issued->token), std::string::npos);
  EXPECT_EQ(shown.find(issued->info.token_sha256), std::string::npos);
  EXPECT_NE(shown.find("\"task\":\"T-123\""), std::string::npos);
}

TEST_P(CredentialTest, RevokingATaskEndsEveryTokenOfItAtTheNextPoll) {
  auto a = store_->Issue(Task("T-1"));
  auto b = store_->Issue(Task("T-1"));
  auto other = store_->Issue(Task("T-2"));
  ASSERT_TRUE(a && b && other);
  std::int64_t before = *store_->Version();
  auto n = store_->RevokeTask("T-1", "alice");
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 2);
  EXPECT_GT(*store_->Version(), before);  // the caches reload
  const CredentialCache& cache = Poll();
  EXPECT_FALSE(cache.Lookup(Sha256Hex(a->token), clock_.NowMillis()));
  EXPECT_FALSE(cache.Lookup(Sha256Hex(b->token), clock_.NowMillis()));
  EXPECT_TRUE(cache.Lookup(Sha256Hex(other->token), clock_.NowMillis()));
  EXPECT_EQ(*store_->RevokeTask("T-1", "alice"), 0);  // nothing left to revoke
  EXPECT_EQ(*store_->Revoke(other->info.id, "bob"), 1);
  EXPECT_FALSE(Poll().Lookup(Sha256Hex(other->token), clock_.NowMillis()));
  auto all = store_->List(true);
  ASSERT_TRUE(all);
  EXPECT_EQ(all->size(), 3u);
  for (const CredentialInfo& c : *all) EXPECT_NE(c.revoked_ms, 0);
  EXPECT_TRUE(store_->List(false)->empty());
}

// What a held request checks when it is released: the store's own word,
// not a cache's.
TEST_P(CredentialTest, GetReadsOneCredentialAsTheStoreHasItNow) {
  auto a = store_->Issue(Task("T-1"));
  ASSERT_TRUE(a);
  auto got = store_->Get(a->info.id);
  ASSERT_TRUE(got && *got);
  EXPECT_EQ((*got)->task, "T-1");
  EXPECT_EQ((*got)->revoked_ms, 0);
  ASSERT_EQ(*store_->Revoke(a->info.id, "alice"), 1);
  got = store_->Get(a->info.id);
  ASSERT_TRUE(got && *got);
  EXPECT_EQ((*got)->revoked_ms, clock_.NowMillis());
  EXPECT_EQ((*got)->revoked_by, "alice");
  got = store_->Get("cr-none");
  ASSERT_TRUE(got);
  EXPECT_FALSE(*got);
}

// The issuing gateway loads its own change at once while its poller may
// be loading an older snapshot: the older one never wins, so a revoked
// token does not come back for a poll interval.
TEST_P(CredentialTest, AnOlderSnapshotNeverReplacesANewerOne) {
  auto a = store_->Issue(Task("T-1"));
  ASSERT_TRUE(a);
  auto before = store_->Snapshot();  // what a slow poller read
  ASSERT_TRUE(before);
  ASSERT_EQ(*store_->Revoke(a->info.id, "alice"), 1);
  const CredentialCache& cache = Poll();
  EXPECT_FALSE(cache.Lookup(Sha256Hex(a->token), clock_.NowMillis()));
  cache_.Load(std::move(*before));
  EXPECT_FALSE(cache.Lookup(Sha256Hex(a->token), clock_.NowMillis()));
  EXPECT_EQ(cache.version(), *store_->Version());
}

TEST_P(CredentialTest, IssueRefusesWhatItCannotBound) {
  EXPECT_FALSE(store_->Issue(Task("")));                 // a task is required
  EXPECT_FALSE(store_->Issue(Task("T 1")));              // printable, no spaces
  EXPECT_FALSE(store_->Issue(Task("T-1", 30'000)));      // under a minute
  EXPECT_FALSE(store_->Issue(Task("T-1", 25 * 3'600'000)));  // over a day
  NewCredential nameless = Task("T-1");
  nameless.agent.clear();
  EXPECT_FALSE(store_->Issue(nameless));
  EXPECT_TRUE(store_->List(true)->empty());
}

TEST_P(CredentialTest, APollerOnItsOwnConnectionSeesIssuesAndRevocations) {
  // As another worker or replica: its own connection to the same store.
  auto other = CredentialStore::OpenDatabase(db_.Connect());
  ASSERT_TRUE(other) << other.error().message;
  CredentialCache seen;
  CredentialPoller poller(std::move(*other), seen, clock_);
  ASSERT_TRUE(poller.PollOnce());
  auto issued = store_->Issue(Task("T-9"));
  ASSERT_TRUE(issued);
  EXPECT_FALSE(seen.Lookup(Sha256Hex(issued->token), clock_.NowMillis()));  // not polled yet
  EXPECT_TRUE(*poller.PollOnce());                                          // the version moved
  EXPECT_TRUE(seen.Lookup(Sha256Hex(issued->token), clock_.NowMillis()));
  EXPECT_FALSE(*poller.PollOnce());                                         // nothing new: no reload
  ASSERT_TRUE(store_->RevokeTask("T-9", "alice"));
  EXPECT_TRUE(*poller.PollOnce());
  EXPECT_FALSE(seen.Lookup(Sha256Hex(issued->token), clock_.NowMillis()));
}

INSTANTIATE_TEST_SUITE_P(Backends, CredentialTest, ::testing::Values("sqlite", "postgres"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace kubegate
