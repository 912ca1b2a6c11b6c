// The migration runner: modules migrate their own tables whenever they
// open the database, in any order, each version once.
#include "store/database.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include "store/store_test_util.h"

namespace kubegate {
namespace {

using testing::TestDatabase;

const Migration kFirst[] = {{1, "CREATE TABLE first_module(id {PK}, v TEXT);"}};
const Migration kSecond[] = {{2, "CREATE TABLE second_module(id {PK});"},
                             {3, "ALTER TABLE second_module ADD COLUMN note TEXT;"}};

class DatabaseTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override { KG_REQUIRE_BACKEND(db_); }
  std::int64_t Count(Database& d, const char* sql) {
    auto rows = d.Run(sql);
    EXPECT_TRUE(rows) << rows.error().message;
    return rows ? SqlInt((*rows)[0][0]) : -1;
  }
  TestDatabase db_{GetParam()};
};

TEST_P(DatabaseTest, EachModuleMigratesItsOwnTablesOnce) {
  auto second = Database::Open(db_.Connect(), kSecond);  // the later module opens first
  ASSERT_TRUE(second) << second.error().message;
  EXPECT_EQ((*second)->SchemaVersion(), 3);
  auto first = Database::Open(db_.Connect(), kFirst);
  ASSERT_TRUE(first) << first.error().message;
  EXPECT_EQ(Count(**first, "SELECT COUNT(*) FROM schema_migrations"), 3) << "version 1 applied although 3 was there";
  EXPECT_EQ(Count(**first, "SELECT COUNT(*) FROM first_module"), 0);
  auto again = Database::Open(db_.Connect(), kSecond);  // a restart: nothing to do (ALTER twice would fail)
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_EQ(Count(**again, "SELECT COUNT(*) FROM schema_migrations"), 3);
}

TEST_P(DatabaseTest, WriteTransactionCommitsOrRollsBack) {
  auto d = Database::Open(db_.Connect(), kFirst);
  ASSERT_TRUE(d);
  Database& db = **d;
  auto failed = db.WithWriteTransaction([&]() -> Result<bool> {
    if (auto r = db.Run("INSERT INTO first_module(id, v) VALUES (1, ?)", {std::string("x")}); !r) return r.error();
    return Error::Unavailable("changed my mind");
  });
  EXPECT_FALSE(failed);
  EXPECT_EQ(Count(db, "SELECT COUNT(*) FROM first_module"), 0) << "rolled back";
  auto n = db.WithWriteTransaction<std::int64_t>([&]() -> Result<std::int64_t> {
    if (auto r = db.Run("INSERT INTO first_module(id, v) VALUES (2, ?)", {std::string("y")}); !r) return r.error();
    return std::int64_t{1};
  });
  ASSERT_TRUE(n) << n.error().message;
  EXPECT_EQ(Count(db, "SELECT COUNT(*) FROM first_module"), 1);
}

// Issue 13: deferred commits are visible at once, the engine's own sync
// setting says deferred, SyncToDisk succeeds, and kEach restores it.
TEST_P(DatabaseTest, DeferredCommitsAreVisibleAndSyncOnDemand) {
  auto d = Database::Open(db_.Connect(), kFirst);
  ASSERT_TRUE(d) << d.error().message;
  const char* setting = GetParam() == "sqlite" ? "PRAGMA synchronous" : "SHOW synchronous_commit";
  auto read = [&]() {
    auto rows = (*d)->Run(setting);
    EXPECT_TRUE(rows && !rows->empty());
    return rows && !rows->empty() ? (*rows)[0][0].value_or("") : std::string();
  };
  EXPECT_EQ(read(), GetParam() == "sqlite" ? "2" : "on");  // FULL: each commit
  ASSERT_TRUE((*d)->SetCommitSync(CommitSync::kDeferred));
  EXPECT_EQ(read(), GetParam() == "sqlite" ? "1" : "off");  // NORMAL / async commit
  auto wrote = (*d)->WithWriteTransaction([&]() -> Result<bool> {
    auto r = (*d)->Run("INSERT INTO first_module(id, v) VALUES (1, 'deferred')");
    if (!r) return r.error();
    return true;
  });
  ASSERT_TRUE(wrote.ok()) << wrote.error().message;
  auto synced = (*d)->SyncToDisk();
  EXPECT_TRUE(synced) << synced.error().message;
  auto other = Database::Open(db_.Connect(), kFirst);
  ASSERT_TRUE(other);
  EXPECT_EQ(Count(**other, "SELECT COUNT(*) FROM first_module"), 1);
  ASSERT_TRUE((*d)->SetCommitSync(CommitSync::kEach));
  EXPECT_EQ(read(), GetParam() == "sqlite" ? "2" : "on");
}

// Issue 13: a database kubegate creates has 16 KiB pages (the audit
// ingest's CPU); one an older kubegate created keeps its 4 KiB pages and
// opens and migrates as before.
TEST(SqlitePages, NewDatabasesGetLargePagesAndOldOnesKeepTheirs) {
  auto page_size = [](Database& d) {
    auto rows = d.Run("PRAGMA page_size");
    EXPECT_TRUE(rows && !rows->empty());
    return rows && !rows->empty() ? SqlInt((*rows)[0][0]) : -1;
  };
  TestDatabase fresh("sqlite");
  auto d = Database::Open(fresh.Connect(), kFirst);
  ASSERT_TRUE(d) << d.error().message;
  EXPECT_EQ(page_size(**d), 16384);

  TestDatabase old("sqlite");
  {
    // As kubegate before this change made it: SQLite's default pages, WAL.
    sqlite3* raw = nullptr;
    ASSERT_EQ(sqlite3_open(old.config().sqlite_path.c_str(), &raw), SQLITE_OK);
    EXPECT_EQ(sqlite3_exec(raw, "PRAGMA page_size=4096; PRAGMA journal_mode=WAL; CREATE TABLE earlier(v TEXT);",
                           nullptr, nullptr, nullptr),
              SQLITE_OK);
    sqlite3_close(raw);
  }
  auto reopened = Database::Open(old.Connect(), kSecond);
  ASSERT_TRUE(reopened) << reopened.error().message;
  EXPECT_EQ(page_size(**reopened), 4096);
  EXPECT_EQ((*reopened)->SchemaVersion(), 3);
}

INSTANTIATE_TEST_SUITE_P(Backends, DatabaseTest, ::testing::Values("sqlite", "postgres"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace kubegate
