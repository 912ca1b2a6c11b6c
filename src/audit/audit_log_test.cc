// The audit writer: group commit, fail-closed reporting, retries,
// checkpoints and retention, with faults and time injected; on SQLite and
// on a real PostgreSQL.
#include "audit/audit_log.h"

#include <condition_variable>
#include <future>
#include <mutex>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "audit/verify.h"
#include "common/digest.h"
#include "audit/audit_test_util.h"

namespace kubegate {
namespace {

// Whether `sql` inserts into `table`: SQLite's audit inserts are
// "INSERT OR FAIL INTO" (no statement journal), PostgreSQL's "INSERT INTO".
bool InsertsInto(std::string_view sql, std::string_view table) {
  for (std::string_view verb : {"INSERT INTO ", "INSERT OR FAIL INTO "}) {
    if (sql.substr(0, verb.size()) == verb && sql.substr(verb.size(), table.size()) == table &&
        sql.size() > verb.size() + table.size() && sql[verb.size() + table.size()] == '(') {
      return true;
    }
  }
  return false;
}

using testing::DecisionEntry;
using testing::FaultyConnection;
using testing::OpenAuditStore;
using testing::TestDatabase;

class AuditLogTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    KG_REQUIRE_BACKEND(db_);
    key_path_ = std::filesystem::temp_directory_path() / ("kg-log-key-" + std::to_string(getpid()) + ".pem");
    auto s = Signer::LoadOrCreate(key_path_.string());
    ASSERT_TRUE(s);
    signer_ = std::move(*s);
  }
  void TearDown() override { std::filesystem::remove(key_path_); }

  // A store over a FaultyConnection; faulty_ stays valid while the log lives.
  std::unique_ptr<AuditStore> FaultyStore() {
    auto conn = std::make_unique<FaultyConnection>(db_.Connect());
    faulty_ = conn.get();
    auto s = AuditStore::Open(std::move(conn));
    EXPECT_TRUE(s);
    return std::move(*s);
  }

  static std::future<Result<bool>> SubmitAndWatch(AuditLog& log, AuditEntry e) {
    auto promise = std::make_shared<std::promise<Result<bool>>>();
    auto f = promise->get_future();
    bool queued = log.Submit(std::move(e), [promise](const Result<bool>& r) { promise->set_value(r); });
    EXPECT_TRUE(queued);
    return f;
  }

  // Counts the writer's filter-index writes on faulty_; `first` is ready at
  // the first one.
  struct IndexWrites {
    std::atomic<int> count{0};
    std::promise<void> first_promise;
    std::future<void> first = first_promise.get_future();
  };
  void WatchIndexWrites(IndexWrites& w) {
    faulty_->before = [&w](std::string_view sql) {
      if (InsertsInto(sql, "audit_index") && w.count++ == 0) w.first_promise.set_value();
    };
  }

  TestDatabase db_{GetParam()};
  std::filesystem::path key_path_;
  std::unique_ptr<Signer> signer_;
  FaultyConnection* faulty_ = nullptr;
  ManualClock clock_{1'795'000'000'000};
};

// Entries queued while a commit is in progress go into the next commit
// together: one transaction (one flush) for many requests.
TEST_P(AuditLogTest, GroupCommitsWhatQueuesDuringAFlush) {
  auto store = FaultyStore();
  std::mutex mu;
  std::condition_variable cv;
  bool inside = false, release = false;
  faulty_->before = [&](std::string_view sql) {
    if (!InsertsInto(sql, "audit_log")) return;
    std::unique_lock lk(mu);
    if (release) return;
    inside = true;
    cv.notify_all();
    cv.wait(lk, [&] { return release; });
  };
  AuditLog log(std::move(store), clock_, signer_.get(), {});
  auto first = SubmitAndWatch(log, DecisionEntry({.id = "first"}));
  {
    std::unique_lock lk(mu);
    cv.wait(lk, [&] { return inside; });  // the writer is inside the first transaction
  }
  std::vector<std::future<Result<bool>>> rest;
  for (int i = 0; i < 50; ++i) rest.push_back(SubmitAndWatch(log, DecisionEntry({.id = "n" + std::to_string(i)})));
  {
    std::lock_guard lk(mu);
    release = true;
  }
  cv.notify_all();
  EXPECT_TRUE(first.get());
  for (auto& f : rest) EXPECT_TRUE(f.get());
  log.Flush();
  EXPECT_EQ(log.stats().committed, 51u);
  EXPECT_EQ(log.stats().batches, 2u);
}

// A refused write fails the waiting decisions (their requests are refused)
// and keeps the others for a retry once the store is back.
TEST_P(AuditLogTest, RefusedWritesFailWaitersAndRetryTheRest) {
  auto store = FaultyStore();
  std::atomic<bool> full{true};
  faulty_->fail_if = [&](std::string_view sql) { return full && InsertsInto(sql, "audit_log"); };
  AuditLog log(std::move(store), clock_, signer_.get(), {});
  ASSERT_TRUE(log.Submit(DecisionEntry({.id = "answered-itself"})));  // no waiter: retried
  auto gated = SubmitAndWatch(log, DecisionEntry({.id = "gated"}));
  Result<bool> r = gated.get();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().http_code, 503);
  EXPECT_NE(r.error().message.find("cannot write its audit log"), std::string::npos) << r.error().message;
  EXPECT_FALSE(log.stats().healthy);
  EXPECT_GE(log.stats().failed_batches, 1u);
  full = false;
  // Known down until the writer's next attempt (the retried entry) works.
  ASSERT_TRUE(log.WaitUntilHealthy(std::chrono::seconds(10)));
  auto after = SubmitAndWatch(log, DecisionEntry({.id = "after"}));
  EXPECT_TRUE(after.get());
  log.Flush();
  EXPECT_TRUE(log.stats().healthy);
  auto check = OpenAuditStore(db_);
  auto kept = check->AuditByRequest("answered-itself");
  ASSERT_TRUE(kept);
  EXPECT_EQ(kept->size(), 1u) << "the retried entry was committed";
  auto refused = check->AuditByRequest("gated");
  ASSERT_TRUE(refused);
  EXPECT_TRUE(refused->empty()) << "a refused request's decision must not appear later";
  EXPECT_TRUE(VerifyAuditChain(*check, {}).ok);
}

// Issue 11: while the store is known to be down, a decision is refused at
// once (inside Submit), not after waiting up to a second for the writer's
// next attempt; the store coming back is noticed by that attempt.
TEST_P(AuditLogTest, KnownDownStoreRefusesDecisionsAtOnce) {
  auto store = FaultyStore();
  std::atomic<bool> down{true};
  faulty_->fail_if = [&](std::string_view sql) { return down && InsertsInto(sql, "audit_log"); };
  AuditLog log(std::move(store), clock_, signer_.get(), {});
  ASSERT_TRUE(log.Submit(DecisionEntry({.id = "a-result"})));  // retried: keeps the writer probing
  auto first = SubmitAndWatch(log, DecisionEntry({.id = "first"}));
  ASSERT_FALSE(first.get());
  int refused_inline = 0;
  for (int i = 0; i < 10; ++i) {
    // Shared: a `done` not called inline runs later, on the writer thread.
    auto returned = std::make_shared<std::atomic<bool>>(false);
    auto inline_refusal = std::make_shared<std::atomic<bool>>(false);
    ASSERT_TRUE(log.Submit(DecisionEntry({.id = "now" + std::to_string(i)}),
                           [returned, inline_refusal](const Result<bool>& r) { *inline_refusal = !*returned && !r; }));
    *returned = true;
    refused_inline += inline_refusal->load();
  }
  // The writer may be inside an attempt for a moment between backoffs; the
  // rest were refused without queueing.
  EXPECT_GE(refused_inline, 8);
  down = false;
  ASSERT_TRUE(log.WaitUntilHealthy(std::chrono::seconds(10)));
  auto later = SubmitAndWatch(log, DecisionEntry({.id = "later"}));
  EXPECT_TRUE(later.get());
}

// Issue 13: with audit.fsync: interval, commits are acknowledged without a
// sync and synced once the interval has passed; per commit (the default),
// the writer never defers nor syncs on its own.
TEST_P(AuditLogTest, IntervalSyncsOnceTheIntervalHasPassed) {
  auto store = FaultyStore();
  std::vector<CommitSync> modes;  // set on the writer thread before the promise below
  faulty_->on_set_sync = [&](CommitSync m) { modes.push_back(m); };
  auto synced = std::make_shared<std::promise<void>>();
  std::atomic<int> syncs{0};
  faulty_->on_sync = [&, synced] {
    if (syncs++ == 0) synced->set_value();
  };
  AuditLogOptions opts;
  opts.fsync_interval_ms = 50;
  AuditLog log(std::move(store), clock_, signer_.get(), opts);
  EXPECT_EQ(modes, std::vector<CommitSync>{CommitSync::kDeferred});
  ASSERT_TRUE(SubmitAndWatch(log, DecisionEntry({.id = "deferred"})).get());
  log.Flush();
  EXPECT_EQ(syncs.load(), 0) << "the clock has not moved: no sync is due yet";
  clock_.Advance(50);
  ASSERT_EQ(synced->get_future().wait_for(std::chrono::seconds(10)), std::future_status::ready);
}

TEST_P(AuditLogTest, PerCommitNeverDefersNorSyncsItself) {
  auto store = FaultyStore();
  std::atomic<int> set_syncs{0}, syncs{0};
  faulty_->on_set_sync = [&](CommitSync) { set_syncs++; };
  faulty_->on_sync = [&] { syncs++; };
  {
    AuditLog log(std::move(store), clock_, signer_.get(), {});
    ASSERT_TRUE(SubmitAndWatch(log, DecisionEntry({.id = "synced-by-commit"})).get());
    clock_.Advance(10'000);
    log.Flush();
  }
  EXPECT_EQ(set_syncs.load(), 0);
  EXPECT_EQ(syncs.load(), 0);
}

// A sync that fails: the writer goes back to a sync per commit, decisions
// fail closed while the disk refuses, and deferral resumes after a commit
// succeeds again.
TEST_P(AuditLogTest, FailedSyncFailsClosedThenSyncsPerCommitUntilHealed) {
  auto store = FaultyStore();
  std::mutex mu;
  std::vector<CommitSync> modes;
  faulty_->on_set_sync = [&](CommitSync m) {
    std::lock_guard lk(mu);
    modes.push_back(m);
  };
  std::atomic<bool> disk_bad{false};
  auto first_failure = std::make_shared<std::promise<void>>();
  std::atomic<int> failures{0};
  faulty_->fail_sync = [&, first_failure] {
    if (!disk_bad) return false;
    if (failures++ == 0) first_failure->set_value();
    return true;
  };
  faulty_->fail_if = [&](std::string_view sql) { return disk_bad && InsertsInto(sql, "audit_log"); };
  AuditLogOptions opts;
  opts.fsync_interval_ms = 50;
  AuditLog log(std::move(store), clock_, signer_.get(), opts);
  ASSERT_TRUE(SubmitAndWatch(log, DecisionEntry({.id = "before"})).get());
  disk_bad = true;
  clock_.Advance(50);
  ASSERT_EQ(first_failure->get_future().wait_for(std::chrono::seconds(10)), std::future_status::ready);
  auto refused = SubmitAndWatch(log, DecisionEntry({.id = "while-bad"}));
  ASSERT_FALSE(refused.get()) << "a decision must not be acknowledged while the disk refuses";
  EXPECT_GE(log.stats().failed_syncs.load(), 1u);
  disk_bad = false;
  ASSERT_TRUE(log.Submit(DecisionEntry({.id = "retried"})));  // no waiter: keeps the writer trying
  ASSERT_TRUE(log.WaitUntilHealthy(std::chrono::seconds(10)));
  ASSERT_TRUE(SubmitAndWatch(log, DecisionEntry({.id = "after"})).get());
  log.Flush();
  std::lock_guard lk(mu);
  ASSERT_GE(modes.size(), 3u);
  EXPECT_EQ(modes.front(), CommitSync::kDeferred);
  EXPECT_NE(std::find(modes.begin(), modes.end(), CommitSync::kEach), modes.end()) << "back to a sync per commit";
  EXPECT_EQ(modes.back(), CommitSync::kDeferred) << "deferral resumes once a commit succeeded";
}

// Issue 13: on SQLite the filter index is written behind the log: not with
// each commit, but once kAuditIndexLag has passed (or a batch is full), and
// at shutdown. Queries do not wait for it (StoreTest: the tail is scanned).
TEST_P(AuditLogTest, FilterIndexIsWrittenBehindTheLog) {
  if (GetParam() == "postgres") GTEST_SKIP() << "PostgreSQL writes the index with each commit";
  auto store = FaultyStore();
  IndexWrites writes;
  WatchIndexWrites(writes);
  {
    AuditLog log(std::move(store), clock_, signer_.get(), {});
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(SubmitAndWatch(log, DecisionEntry({.id = "d" + std::to_string(i)})).get());
    log.Flush();
    EXPECT_EQ(writes.count.load(), 0) << "indexed with the commit: the request path paid for it";
    auto check = OpenAuditStore(db_);
    EXPECT_EQ(*check->IndexHead(), 0);
    auto found = check->AuditByRequest("d1");
    ASSERT_TRUE(found);
    EXPECT_EQ(found->size(), 1u) << "an unindexed entry must still be found";
    clock_.Advance(limits::kAuditIndexLag.count());
    ASSERT_EQ(writes.first.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  }
  auto check = OpenAuditStore(db_);
  EXPECT_EQ(*check->IndexHead(), 3);
  EXPECT_TRUE(VerifyAuditChain(*check, {}).ok);
}

// A failed index write is retried after kAuditIndexLag, not on every turn of
// the writer's loop (which would spin while the store refuses).
TEST_P(AuditLogTest, AFailedIndexWriteWaitsBeforeTheNextTry) {
  if (GetParam() == "postgres") GTEST_SKIP() << "PostgreSQL writes the index with each commit";
  auto store = FaultyStore();
  auto first_try = std::make_shared<std::promise<void>>();
  std::atomic<int> tries{0};
  faulty_->fail_if = [&, first_try](std::string_view sql) {
    if (!InsertsInto(sql, "audit_index")) return false;
    if (tries++ == 0) first_try->set_value();
    return true;
  };
  AuditLog log(std::move(store), clock_, signer_.get(), {});
  ASSERT_TRUE(SubmitAndWatch(log, DecisionEntry({.id = "one"})).get());
  clock_.Advance(limits::kAuditIndexLag.count());
  ASSERT_EQ(first_try->get_future().wait_for(std::chrono::seconds(10)), std::future_status::ready);
  // More turns of the loop, with the clock where it was.
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(SubmitAndWatch(log, DecisionEntry({.id = "more" + std::to_string(i)})).get());
  log.Flush();
  EXPECT_EQ(tries.load(), 1);
  EXPECT_GE(log.stats().index_failures.load(), 1u);
}

// Entries a previous process left unindexed are indexed when the writer starts.
TEST_P(AuditLogTest, StartIndexesWhatAPreviousProcessLeft) {
  if (GetParam() == "postgres") GTEST_SKIP() << "PostgreSQL writes the index with each commit";
  {
    auto first = OpenAuditStore(db_);
    std::vector<AuditEntry> batch = {DecisionEntry({.id = "left-1"}), DecisionEntry({.id = "left-2"})};
    ASSERT_TRUE(first->AppendAudit(batch));
    EXPECT_EQ(*first->IndexHead(), 0);
  }
  auto store = FaultyStore();
  IndexWrites writes;
  WatchIndexWrites(writes);
  AuditLog log(std::move(store), clock_, signer_.get(), {});
  ASSERT_EQ(writes.first.wait_for(std::chrono::seconds(10)), std::future_status::ready);
}

TEST_P(AuditLogTest, QueueFullRefusesInsteadOfGrowing) {
  auto store = FaultyStore();
  faulty_->fail_if = [](std::string_view sql) { return InsertsInto(sql, "audit_log"); };
  AuditLogOptions opts;
  opts.max_queue = 4;
  AuditLog log(std::move(store), clock_, signer_.get(), opts);
  int accepted = 0;
  for (int i = 0; i < 20; ++i) accepted += log.Submit(DecisionEntry({.id = "q" + std::to_string(i)})) ? 1 : 0;
  EXPECT_LE(accepted, 4 + static_cast<int>(limits::kAuditMaxBatch));
  EXPECT_LT(accepted, 20);
  EXPECT_GT(log.stats().dropped, 0u);
}

TEST_P(AuditLogTest, SignsCheckpointsEveryNEntries) {
  AuditLogOptions opts;
  opts.checkpoint_every = 10;
  opts.checkpoint_interval_ms = 3'600'000;
  {
    AuditLog log(OpenAuditStore(db_), clock_, signer_.get(), opts);
    for (int round = 0; round < 3; ++round) {
      for (int i = 0; i < 10; ++i) ASSERT_TRUE(log.Submit(DecisionEntry({.id = "c" + std::to_string(round * 10 + i)})));
      log.Flush();
    }
    EXPECT_GE(log.stats().checkpoints, 1u);
  }
  auto check = OpenAuditStore(db_);
  auto cps = check->Checkpoints();
  ASSERT_TRUE(cps);
  ASSERT_FALSE(cps->empty());
  for (const auto& c : *cps) {
    EXPECT_TRUE(VerifySignature(signer_->PublicKeyPem(), CheckpointMessage(c.seq, c.hash, c.time_ms), c.signature));
  }
  EXPECT_EQ(cps->back().seq, 30);
  VerifyReport r = VerifyAuditChain(*check, {signer_->PublicKeyPem()});
  EXPECT_TRUE(r.ok) << r.problem;
  EXPECT_EQ(r.checkpoints, static_cast<std::int64_t>(cps->size()));
}

TEST_P(AuditLogTest, RetentionPrunesUpToAnOldCheckpointAndStillVerifies) {
  AuditLogOptions opts;
  opts.checkpoint_every = 10;
  opts.retention_ms = 3'600'000;
  opts.prune_interval_ms = 1;
  // Recordings go with the result entries that name them.
  std::filesystem::path dir = std::filesystem::temp_directory_path() /
                              ("kg-retention-" + std::to_string(getpid()) + "-" + GetParam());
  std::filesystem::create_directories(dir);
  opts.recording_dir = dir.string();
  std::ofstream(dir / "old.cast") << "old session";
  std::ofstream(dir / "new.cast") << "new session";
  auto recording = [](const std::string& file, const std::string& content) {
    return nlohmann::json{{"file", file}, {"sha256", Sha256Hex(content)}};
  };
  {
    AuditLog log(OpenAuditStore(db_), clock_, signer_.get(), opts);
    for (int i = 0; i < 9; ++i) ASSERT_TRUE(log.Submit(DecisionEntry({.id = "old" + std::to_string(i)})));
    ASSERT_TRUE(log.Submit(testing::ResultEntry("old0", 101, 1'795'000'000'100, recording("old.cast", "old session"))));
    log.Flush();  // checkpoint at seq 10, at t0
    clock_.Advance(2 * 3'600'000);
    for (int i = 0; i < 4; ++i) ASSERT_TRUE(log.Submit(DecisionEntry({.id = "new" + std::to_string(i)})));
    ASSERT_TRUE(log.Submit(testing::ResultEntry("new0", 101, 1'795'000'000'100, recording("new.cast", "new session"))));
    log.Flush();  // t0+2h: seq 1..10 are past retention
    EXPECT_EQ(log.stats().pruned, 10u);
  }
  EXPECT_FALSE(std::filesystem::exists(dir / "old.cast")) << "a pruned entry's recording was kept";
  EXPECT_TRUE(std::filesystem::exists(dir / "new.cast"));
  auto check = OpenAuditStore(db_);
  EXPECT_EQ(check->CountAudit(), 5);
  VerifyReport r = VerifyAuditChain(*check, {signer_->PublicKeyPem()}, dir.string());
  EXPECT_TRUE(r.ok) << r.problem;
  EXPECT_TRUE(r.anchored);
  EXPECT_EQ(r.first_seq, 11);
  EXPECT_EQ(r.recordings, 1);
  std::filesystem::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(Backends, AuditLogTest, ::testing::Values("sqlite", "postgres"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace kubegate
