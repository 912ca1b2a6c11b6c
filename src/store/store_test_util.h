// Test support for the store: a fresh database per test on either backend
// (SQLite in a temp dir; PostgreSQL as a new database on the server named
// by $KUBEGATE_TEST_PG, which scripts/test.sh starts), and a SqlConnection
// wrapper that injects faults. Audit entry builders: audit/audit_test_util.h.
#pragma once

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <string>

#include <gtest/gtest.h>

#include "store/database.h"

namespace kubegate::testing {

// A database that exists for the life of this object.
class TestDatabase {
 public:
  explicit TestDatabase(const std::string& backend) : backend_(backend) {
    static std::atomic<int> counter{0};
    std::string name = "kgt_" + std::to_string(getpid()) + "_" + std::to_string(counter++);
    if (backend == "sqlite") {
      dir_ = std::filesystem::temp_directory_path() / name;
      std::filesystem::create_directories(dir_);
      config_.sqlite_path = (dir_ / "kubegate.db").string();
      return;
    }
    const char* base = std::getenv("KUBEGATE_TEST_PG");
    if (!base || !*base) return;
    admin_ = std::string(base);
    auto admin = OpenPostgres(admin_);
    if (!admin) {
      error_ = admin.error().message;
      return;
    }
    auto created = (*admin)->ExecScript("CREATE DATABASE " + name);
    if (!created) error_ = created.error().message;
    db_name_ = name;
    config_.postgres_conninfo = admin_ + " dbname=" + name;
  }
  ~TestDatabase() {
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
    if (!db_name_.empty()) {
      if (auto admin = OpenPostgres(admin_)) (void)(*admin)->ExecScript("DROP DATABASE IF EXISTS " + db_name_ + " WITH (FORCE)");
    }
  }

  // False (with a reason) when the backend cannot be used here; CI sets
  // KUBEGATE_REQUIRE_PG=1 so a missing PostgreSQL fails instead of skipping.
  bool Available(std::string& why) const {
    if (backend_ == "sqlite") return true;
    if (!error_.empty()) {
      why = error_;
      return false;
    }
    if (config_.postgres_conninfo.empty()) {
      why = "KUBEGATE_TEST_PG is not set (scripts/test.sh starts a PostgreSQL server and sets it)";
      return false;
    }
    return true;
  }
  const StoreConfig& config() const { return config_; }
  std::unique_ptr<SqlConnection> Connect() const {
    auto c = config_.postgres_conninfo.empty() ? OpenSqlite(config_.sqlite_path) : OpenPostgres(config_.postgres_conninfo);
    EXPECT_TRUE(c) << c.error().message;
    return c ? std::move(*c) : nullptr;
  }

 private:
  std::string backend_;
  std::filesystem::path dir_;
  std::string admin_, db_name_, error_;
  StoreConfig config_;
};

#define KG_REQUIRE_BACKEND(db)                                                   \
  do {                                                                           \
    std::string kg_why;                                                          \
    if (!(db).Available(kg_why)) {                                               \
      const char* req = std::getenv("KUBEGATE_REQUIRE_PG");                      \
      if (req && std::string(req) == "1") FAIL() << kg_why;                      \
      GTEST_SKIP() << kg_why;                                                    \
    }                                                                            \
  } while (0)

// Wraps a connection; `fail_if` decides, per statement, to fail it as a
// store that refuses writes would (disk full, server gone). `before` runs
// first and may block (to hold the writer inside a transaction).
class FaultyConnection final : public SqlConnection {
 public:
  explicit FaultyConnection(std::unique_ptr<SqlConnection> inner) : inner_(std::move(inner)) {}
  std::function<bool(std::string_view sql)> fail_if;
  std::function<void(std::string_view sql)> before;

  SqlDialect dialect() const override { return inner_->dialect(); }
  std::string Describe() const override { return "faulty " + inner_->Describe(); }
  Result<std::vector<SqlRow>> Run(std::string_view sql, const std::vector<SqlValue>& params) override {
    if (before) before(sql);
    if (fail_if && fail_if(sql)) return Error::Unavailable("injected fault: database or disk is full");
    return inner_->Run(sql, params);
  }
  Result<bool> ExecScript(std::string_view sql) override { return inner_->ExecScript(sql); }
  Result<bool> EnsureConnected() override { return inner_->EnsureConnected(); }
  Result<bool> SetCommitSync(CommitSync sync) override {
    if (on_set_sync) on_set_sync(sync);
    return inner_->SetCommitSync(sync);
  }
  Result<bool> SyncToDisk() override {
    if (on_sync) on_sync();
    if (fail_sync && fail_sync()) return Error::Unavailable("injected fault: fdatasync failed (EIO)");
    return inner_->SyncToDisk();
  }
  std::function<void(CommitSync)> on_set_sync;
  std::function<void()> on_sync;
  std::function<bool()> fail_sync;

 private:
  std::unique_ptr<SqlConnection> inner_;
};

}  // namespace kubegate::testing
