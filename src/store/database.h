// Database: one connection to kubegate's store (SQLite or PostgreSQL, over
// SqlConnection) with the migration runner and write transactions. Each
// module owns its tables: it declares its migrations and runs its SQL over
// a Database of its own (audit/audit_store.h, approval/approval.h).
//
// Not thread-safe: one Database per thread.
//
//   auto db = Database::Open(config, kMyMigrations);   // applies what is missing
//   db->WithWriteTransaction([&]() -> Result<bool> { return db->Run("UPDATE ...") ... });
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "store/sql_connection.h"

namespace kubegate {

struct StoreConfig {
  std::string sqlite_path;        // used when postgres is empty
  std::string postgres_conninfo;  // libpq connection string
};

// One schema change. Versions are global across modules (a database holds
// every module's tables) and are never reused; a released migration is
// never edited, only followed. {PK} is the dialect's 64-bit integer
// primary key.
struct Migration {
  int version;
  const char* sql;
};

class Database {
 public:
  // Opens and applies every migration of `migrations` not applied yet.
  static Result<std::unique_ptr<Database>> Open(const StoreConfig& config, std::span<const Migration> migrations);
  // Over an already open connection (tests inject faulty ones).
  static Result<std::unique_ptr<Database>> Open(std::unique_ptr<SqlConnection> conn,
                                                std::span<const Migration> migrations);

  explicit Database(std::unique_ptr<SqlConnection> conn) : conn_(std::move(conn)) {}

  SqlDialect dialect() const { return conn_->dialect(); }
  std::string Describe() const { return conn_->Describe(); }
  // The highest migration applied (-1 when it cannot be read).
  int SchemaVersion();
  // Refreshes the query planner's statistics where the engine needs it
  // (SQLite: PRAGMA optimize, bounded).
  void Optimize();

  Result<std::vector<SqlRow>> Run(std::string_view sql, const std::vector<SqlValue>& params = {}) {
    return conn_->Run(sql, params);
  }
  Result<bool> ExecScript(std::string_view sql) { return conn_->ExecScript(sql); }
  Result<bool> EnsureConnected() { return conn_->EnsureConnected(); }
  Result<bool> SetCommitSync(CommitSync sync) { return conn_->SetCommitSync(sync); }
  Result<bool> SyncToDisk() { return conn_->SyncToDisk(); }
  // Tells every other replica LISTENing on `channel` (store/store_events.h):
  // PostgreSQL pg_notify, delivered when the surrounding transaction
  // commits (at once outside one). Nothing to do on SQLite (one process).
  Result<bool> Publish(const char* channel, const std::string& payload);

  // Runs `body` in a transaction that holds the write lock from its start
  // (SQLite BEGIN IMMEDIATE; PostgreSQL rows are locked with FOR UPDATE by
  // the body); commits when it succeeds, rolls back otherwise.
  template <typename T>
  Result<T> WithWriteTransaction(const std::function<Result<T>()>& body);
  Result<bool> WithWriteTransaction(const std::function<Result<bool>()>& body) {
    return WithWriteTransaction<bool>(body);
  }

 private:
  Result<bool> Migrate(std::span<const Migration> migrations);
  Result<bool> Begin();
  Result<bool> Commit();
  void Rollback();

  std::unique_ptr<SqlConnection> conn_;
};

template <typename T>
Result<T> Database::WithWriteTransaction(const std::function<Result<T>()>& body) {
  if (auto ok = Begin(); !ok) return ok.error();
  Result<T> result = body();
  if (!result) {
    Rollback();
    return result;
  }
  if (auto ok = Commit(); !ok) return ok.error();
  return result;
}

}  // namespace kubegate
