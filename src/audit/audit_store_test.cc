// The store and the chain verifier, run against both backends: SQLite and
// a real PostgreSQL (scripts/test.sh starts one and sets KUBEGATE_TEST_PG).
#include "audit/audit_store.h"

#include <thread>

#include <gtest/gtest.h>

#include "audit/signer.h"
#include "audit/verify.h"
#include "audit/audit_test_util.h"

namespace kubegate {
namespace {

using testing::DecisionEntry;
using testing::EntrySpec;
using testing::ResultEntry;
using testing::OpenAuditStore;
using testing::TestDatabase;

class StoreTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    db_ = std::make_unique<TestDatabase>(GetParam());
    KG_REQUIRE_BACKEND(*db_);
    store_ = OpenAuditStore(*db_);
    ASSERT_TRUE(store_);
  }

  // Appends n decision+result pairs as one batch; ids r0..r{n-1}.
  void AppendPairs(int n, const std::string& prefix = "r") {
    std::vector<AuditEntry> batch;
    for (int i = 0; i < n; ++i) {
      std::string id = prefix + std::to_string(i);
      batch.push_back(DecisionEntry({.id = id, .user = i % 2 ? "bob" : "alice"}));
      batch.push_back(ResultEntry(id, 200));
    }
    auto head = store_->AppendAudit(batch);
    ASSERT_TRUE(head) << head.error().message;
  }

  VerifyReport Verify(const std::vector<std::string>& keys = {}) { return VerifyAuditChain(*store_, keys); }
  void Exec(const std::string& sql) {
    auto r = store_->database().Run(sql);
    ASSERT_TRUE(r) << r.error().message;
  }

  std::unique_ptr<TestDatabase> db_;
  std::unique_ptr<AuditStore> store_;
};

TEST_P(StoreTest, MigrationsAreVersionedAndAppliedOnce) {
  EXPECT_EQ(store_->SchemaVersion(), 5) << "the audit log's tables only (store/database_test.cc: several modules)";
  auto again = OpenAuditStore(*db_);  // a second start finds the schema current
  ASSERT_TRUE(again);
  EXPECT_EQ(again->SchemaVersion(), 5);
  auto rows = store_->database().Run("SELECT COUNT(*) FROM schema_migrations");
  ASSERT_TRUE(rows);
  EXPECT_EQ(SqlInt((*rows)[0][0]), 3);  // versions 1, 3 and 5 (2 is the approvals', 4 the credentials')
}

TEST_P(StoreTest, AppendsAGaplessHashChain) {
  AppendPairs(3);
  AppendPairs(2, "s");
  auto all = store_->AuditRange(0, 100);
  ASSERT_TRUE(all);
  ASSERT_EQ(all->size(), 10u);
  std::string prev(kGenesisHash);
  for (std::size_t i = 0; i < all->size(); ++i) {
    const AuditEntry& e = (*all)[i];
    EXPECT_EQ(e.seq, static_cast<std::int64_t>(i + 1));
    EXPECT_EQ(e.prev_hash, prev);
    EXPECT_EQ(e.hash, ChainHash(e.seq, e.prev_hash, e.canonical));
    prev = e.hash;
  }
  auto head = store_->AuditHead();
  ASSERT_TRUE(head);
  EXPECT_EQ(head->seq, 10);
  EXPECT_EQ(head->hash, prev);
  EXPECT_TRUE(Verify().ok) << Verify().problem;
}

// Issue 13: the filter index is written behind the log. Every query answers
// the same whether its entries are all indexed, none are (the tail after the
// index head is scanned), or some are.
enum class Indexed { kNone, kAll, kFirstTwo };

class QueryTest : public ::testing::TestWithParam<std::tuple<std::string, Indexed>> {};

TEST_P(QueryTest, QueriesFilterOnEveryReviewerField) {
  TestDatabase db(std::get<0>(GetParam()));
  KG_REQUIRE_BACKEND(db);
  auto store_ = OpenAuditStore(db);
  ASSERT_TRUE(store_);
  const Indexed indexed = std::get<1>(GetParam());
  std::vector<AuditEntry> batch = {
      DecisionEntry({.id = "a1", .user = "alice", .groups = {"dev", "ops"}, .verb = "delete", .resource = "namespaces",
                     .ns = "", .name = "prod", .action = "review", .time_ms = 1000, .approvers = {"carol", "dave"},
                     .approval_id = "ap-1"}),
      ResultEntry("a1", 200, 1500),
      DecisionEntry({.id = "b1", .user = "bot", .groups = {"agents"}, .verb = "get", .resource = "secrets", .ns = "prod",
                     .name = "db", .action = "deny", .time_ms = 2000, .task = "T-7"}),
      DecisionEntry({.id = "c1", .user = "alice", .groups = {"dev"}, .verb = "list", .resource = "pods", .ns = "web",
                     .name = "", .action = "allow", .time_ms = 3000}),
  };
  auto catch_up = [&] {
    auto n = store_->CatchUpIndex(nullptr, 1000);
    ASSERT_TRUE(n) << n.error().message;
  };
  if (indexed == Indexed::kFirstTwo) {
    std::vector<AuditEntry> first(batch.begin(), batch.begin() + 2), rest(batch.begin() + 2, batch.end());
    ASSERT_TRUE(store_->AppendAudit(first));
    catch_up();
    ASSERT_TRUE(store_->AppendAudit(rest));
  } else {
    ASSERT_TRUE(store_->AppendAudit(batch));
    if (indexed == Indexed::kAll) catch_up();
  }
  auto head = store_->IndexHead();
  ASSERT_TRUE(head);
  // PostgreSQL indexes in the append's own transaction.
  const bool sqlite = std::get<0>(GetParam()) == "sqlite";
  EXPECT_EQ(*head, !sqlite || indexed == Indexed::kAll ? 4 : indexed == Indexed::kFirstTwo ? 2 : 0);
  auto ids = [&](AuditQuery q) {
    auto r = store_->QueryAudit(q);
    EXPECT_TRUE(r) << r.error().message;
    std::vector<std::string> out;
    if (r) {
      for (const auto& p : *r) out.push_back(p.decision.index.request_id);
    }
    return out;
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(ids({}), (V{"c1", "b1", "a1"}));  // newest first
  EXPECT_EQ(ids({.actor = "alice"}), (V{"c1", "a1"}));
  EXPECT_EQ(ids({.group = "ops"}), (V{"a1"}));
  EXPECT_EQ(ids({.verb = "delete"}), (V{"a1"}));
  EXPECT_EQ(ids({.resource = "secrets"}), (V{"b1"}));
  EXPECT_EQ(ids({.namespace_ = "web"}), (V{"c1"}));
  EXPECT_EQ(ids({.name = "prod"}), (V{"a1"}));
  EXPECT_EQ(ids({.decision = "deny"}), (V{"b1"}));
  EXPECT_EQ(ids({.approver = "dave"}), (V{"a1"}));
  EXPECT_EQ(ids({.approval_id = "ap-1"}), (V{"a1"}));
  EXPECT_EQ(ids({.task = "T-7"}), (V{"b1"}));
  EXPECT_EQ(ids({.task = "T-8"}), V{});
  EXPECT_EQ(ids({.since_ms = 1500, .until_ms = 3000}), (V{"b1"}));
  EXPECT_EQ(ids({.actor = "alice", .verb = "list"}), (V{"c1"}));
  EXPECT_EQ(ids({.actor = "nobody"}), V{});
  EXPECT_EQ(ids({.limit = 1}), (V{"c1"}));
  auto joined = store_->QueryAudit({.request_id = "a1"});
  ASSERT_TRUE(joined);
  ASSERT_EQ(joined->size(), 1u);
  ASSERT_TRUE((*joined)[0].result);
  EXPECT_NE((*joined)[0].result->canonical.find(R"("status":200)"), std::string::npos);
  std::vector<std::string> groups = (*joined)[0].decision.index.groups;
  std::sort(groups.begin(), groups.end());
  EXPECT_EQ(groups, (V{"dev", "ops"}));
  auto both = store_->AuditByRequest("a1");
  ASSERT_TRUE(both);
  ASSERT_EQ(both->size(), 2u);
  EXPECT_EQ((*both)[0].index.phase, "decision");
  EXPECT_EQ((*both)[1].index.phase, "result");
  EXPECT_EQ(ids({.subresource = "exec"}), V{});
}

std::string QueryTestName(const ::testing::TestParamInfo<std::tuple<std::string, Indexed>>& info) {
  static const char* const kMode[] = {"none_indexed", "all_indexed", "first_two_indexed"};
  return std::get<0>(info.param) + "_" + kMode[static_cast<int>(std::get<1>(info.param))];
}

INSTANTIATE_TEST_SUITE_P(Backends, QueryTest,
                         ::testing::Combine(::testing::Values("sqlite", "postgres"),
                                            ::testing::Values(Indexed::kNone, Indexed::kAll, Indexed::kFirstTwo)),
                         QueryTestName);

// A query reads the index head, the log after it, then the index. The
// writer (another connection) may index in between: what it indexed must
// not be counted twice, once from the tail and once from the index.
TEST(StoreQueryRace, EntriesIndexedDuringAQueryAreCountedOnce) {
  TestDatabase db("sqlite");
  auto conn = std::make_unique<testing::FaultyConnection>(db.Connect());
  testing::FaultyConnection* faulty = conn.get();
  auto opened = AuditStore::Open(std::move(conn));
  ASSERT_TRUE(opened);
  AuditStore& reader = **opened;
  auto writer = OpenAuditStore(db);
  std::vector<AuditEntry> batch = {DecisionEntry({.id = "r1"}), ResultEntry("r1", 200), DecisionEntry({.id = "r2"})};
  ASSERT_TRUE(writer->AppendAudit(batch));
  bool indexed = false;
  faulty->before = [&](std::string_view sql) {
    // The tail's read: the writer indexes everything just before it runs.
    if (!indexed && sql.find("FROM audit_log WHERE audit_log.seq > ?") != std::string_view::npos) {
      indexed = true;
      ASSERT_TRUE(writer->CatchUpIndex(nullptr, 1000));
    }
  };
  auto pairs = reader.QueryAudit({});
  ASSERT_TRUE(pairs) << pairs.error().message;
  EXPECT_EQ(pairs->size(), 2u);
  std::vector<AuditEntry> more = {DecisionEntry({.id = "r3"}), ResultEntry("r3", 200)};
  ASSERT_TRUE(writer->AppendAudit(more));
  indexed = false;
  auto both = reader.AuditByRequest("r3");
  ASSERT_TRUE(both);
  EXPECT_EQ(both->size(), 2u);
}

// `audit verify` reads the index too: an index row or list row that differs
// from its hashed record is reported.
TEST_P(StoreTest, VerifyReportsAnEditedFilterIndexRow) {
  AppendPairs(3);
  ASSERT_TRUE(store_->CatchUpIndex(nullptr, 1000));
  ASSERT_TRUE(Verify().ok) << Verify().problem;
  Exec("UPDATE audit_index SET actor = 'mallory' WHERE seq = 3");
  VerifyReport r = Verify();
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.problem_seq, 3);
  EXPECT_NE(r.problem.find("filter index"), std::string::npos) << r.problem;
  EXPECT_NE(r.problem.find("user"), std::string::npos) << r.problem;
}

TEST_P(StoreTest, VerifyReportsAnEditedTaskInTheFilterIndex) {
  std::vector<AuditEntry> batch = {DecisionEntry({.id = "t1", .user = "bot", .task = "T-1"})};
  ASSERT_TRUE(store_->AppendAudit(batch));
  ASSERT_TRUE(store_->CatchUpIndex(nullptr, 1000));
  ASSERT_TRUE(Verify().ok) << Verify().problem;
  // Hiding what a task did from `kubegate audit --task` is an edit.
  Exec("UPDATE audit_index SET task = 'T-2' WHERE seq = 1");
  VerifyReport r = Verify();
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.problem.find("filter index"), std::string::npos) << r.problem;
  EXPECT_NE(r.problem.find("task"), std::string::npos) << r.problem;
}

TEST_P(StoreTest, VerifyReportsAnInjectedGroupRowAndAMissingIndexRow) {
  AppendPairs(3);
  ASSERT_TRUE(store_->CatchUpIndex(nullptr, 1000));
  Exec("INSERT INTO audit_group(seq, grp) VALUES (1, 'system:masters')");
  VerifyReport r = Verify();
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.problem_seq, 1);
  EXPECT_NE(r.problem.find("groups"), std::string::npos) << r.problem;
  Exec("DELETE FROM audit_group WHERE grp = 'system:masters'");
  ASSERT_TRUE(Verify().ok) << Verify().problem;
  Exec("DELETE FROM audit_index WHERE seq = 5");
  r = Verify();
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.problem_seq, 5);
  EXPECT_NE(r.problem.find("missing from the filter index"), std::string::npos) << r.problem;
}

// Two gateway processes appending to one store keep one gapless chain.
TEST_P(StoreTest, ConcurrentWritersShareOneChain) {
  auto second = OpenAuditStore(*db_);
  ASSERT_TRUE(second);
  auto writer = [](AuditStore* s, const std::string& prefix) {
    for (int i = 0; i < 40; ++i) {
      std::vector<AuditEntry> batch = {DecisionEntry({.id = prefix + std::to_string(i)}),
                                       ResultEntry(prefix + std::to_string(i), 200)};
      auto r = s->AppendAudit(batch);
      ASSERT_TRUE(r) << r.error().message;
    }
  };
  std::thread a(writer, store_.get(), "a");
  std::thread b(writer, second.get(), "b");
  a.join();
  b.join();
  VerifyReport r = Verify();
  EXPECT_TRUE(r.ok) << r.problem;
  EXPECT_EQ(r.entries, 160);
}

TEST_P(StoreTest, VerifyReportsADeletedEntry) {
  AppendPairs(3);
  Exec("DELETE FROM audit_log WHERE seq = 3");
  VerifyReport r = Verify();
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.problem_seq, 4);
  EXPECT_EQ(r.problem_request_id, "r1");
  EXPECT_NE(r.problem.find("entries 3..3 are missing (deleted)"), std::string::npos) << r.problem;
}

TEST_P(StoreTest, VerifyReportsAnEditedRecord) {
  AppendPairs(3);
  Exec("UPDATE audit_log SET record = REPLACE(record, '\"action\":\"allow\"', '\"action\":\"deny\"') WHERE seq = 5");
  VerifyReport r = Verify();
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.problem_seq, 5);
  EXPECT_EQ(r.problem_request_id, "r2");
  EXPECT_NE(r.problem.find("was edited: its content does not match its hash"), std::string::npos) << r.problem;
}

TEST_P(StoreTest, VerifyReportsAnEditedIndexColumn) {
  AppendPairs(2);
  Exec("UPDATE audit_log SET actor = 'mallory' WHERE seq = 1");
  VerifyReport r = Verify();
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.problem_seq, 1);
  EXPECT_NE(r.problem.find("its user column differs"), std::string::npos) << r.problem;
}

// An attacker who edits a record and recomputes its hash breaks the next link.
TEST_P(StoreTest, VerifyReportsARehashedEdit) {
  AppendPairs(2);
  auto rows = store_->AuditRange(1, 1);
  ASSERT_TRUE(rows);
  AuditEntry e = (*rows)[0];
  std::string forged = e.canonical;
  forged.replace(forged.find("\"status\":200"), 12, "\"status\":201");
  std::string hash = ChainHash(e.seq, e.prev_hash, forged);
  auto upd = store_->database().Run("UPDATE audit_log SET record = ?, hash = ? WHERE seq = 2", {forged, hash});
  ASSERT_TRUE(upd);
  VerifyReport r = Verify();
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.problem_seq, 3);
  EXPECT_NE(r.problem.find("broken link"), std::string::npos) << r.problem;
}

TEST_P(StoreTest, VerifyReportsEntriesDeletedFromTheEnd) {
  AppendPairs(2);
  Exec("DELETE FROM audit_log WHERE seq = 4");
  VerifyReport r = Verify();
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.problem.find("deleted from the end"), std::string::npos) << r.problem;
}

TEST_P(StoreTest, VerifyChecksCheckpointSignaturesAndTrust) {
  AppendPairs(2);
  auto key_path = std::filesystem::temp_directory_path() / ("kg-key-" + std::to_string(getpid()) + ".pem");
  auto real = Signer::LoadOrCreate(key_path.string());
  ASSERT_TRUE(real);
  auto head = store_->AuditHead();
  ASSERT_TRUE(head);
  Checkpoint c{head->seq, head->hash, 1000, (*real)->Sign(CheckpointMessage(head->seq, head->hash, 1000)),
               (*real)->PublicKeyPem()};
  ASSERT_TRUE(store_->AddCheckpoint(c));
  EXPECT_TRUE(Verify().ok);
  EXPECT_TRUE(Verify({(*real)->PublicKeyPem()}).ok);
  // Signed by some other key: refused when only the real key is trusted.
  auto other_path = std::filesystem::temp_directory_path() / ("kg-other-" + std::to_string(getpid()) + ".pem");
  auto other = Signer::LoadOrCreate(other_path.string());
  ASSERT_TRUE(other);
  VerifyReport untrusted = Verify({(*other)->PublicKeyPem()});
  EXPECT_FALSE(untrusted.ok);
  EXPECT_NE(untrusted.problem.find("not trusted"), std::string::npos) << untrusted.problem;
  // A checkpoint whose signature does not cover its content.
  Exec("UPDATE audit_checkpoint SET time_ms = 2000");
  VerifyReport forged = Verify();
  EXPECT_FALSE(forged.ok);
  EXPECT_NE(forged.problem.find("invalid signature"), std::string::npos) << forged.problem;
  std::filesystem::remove(key_path);
  std::filesystem::remove(other_path);
}

TEST_P(StoreTest, PruningRestartsTheChainAtASignedCheckpoint) {
  AppendPairs(3);
  auto key_path = std::filesystem::temp_directory_path() / ("kg-prune-" + std::to_string(getpid()) + ".pem");
  auto signer = Signer::LoadOrCreate(key_path.string());
  ASSERT_TRUE(signer);
  auto rows = store_->AuditRange(3, 1);  // entry 4
  ASSERT_TRUE(rows);
  const AuditEntry& e4 = (*rows)[0];
  Checkpoint c{e4.seq, e4.hash, 5000, (*signer)->Sign(CheckpointMessage(e4.seq, e4.hash, 5000)), (*signer)->PublicKeyPem()};
  ASSERT_TRUE(store_->AddCheckpoint(c));
  auto pruned = store_->PruneAudit(c);
  ASSERT_TRUE(pruned) << pruned.error().message;
  EXPECT_EQ(*pruned, 4);
  EXPECT_EQ(store_->CountAudit(), 2);
  VerifyReport r = Verify({(*signer)->PublicKeyPem()});
  EXPECT_TRUE(r.ok) << r.problem;
  EXPECT_TRUE(r.anchored);
  EXPECT_EQ(r.first_seq, 5);
  // Appending continues the chain from where it was.
  AppendPairs(1, "later");
  EXPECT_TRUE(Verify().ok);
  // Deleting the first entry after the anchor is still caught.
  Exec("DELETE FROM audit_log WHERE seq = 5");
  EXPECT_FALSE(Verify().ok);
  std::filesystem::remove(key_path);
}

INSTANTIATE_TEST_SUITE_P(Backends, StoreTest, ::testing::Values("sqlite", "postgres"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace kubegate
