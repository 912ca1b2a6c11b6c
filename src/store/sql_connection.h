// SqlConnection: the narrow SQL surface kubegate's store is written against,
// with two drivers: SQLite (embedded, the default) and PostgreSQL (libpq's
// C API, for several gateway replicas sharing state). SQL text uses `?`
// placeholders; the PostgreSQL driver numbers them ($1, $2, ...).
//
// A connection is used by one thread at a time. The store's writer owns
// one; readers (CLI, REST API) open their own.
//
//   auto db = OpenSqlite("kubegate-data/kubegate.db");
//   auto rows = (*db)->Run("SELECT seq FROM audit_log WHERE actor = ?", {std::string("alice")});
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/result.h"

namespace kubegate {

enum class SqlDialect { kSqlite, kPostgres };

// How durable a commit is when it returns (docs/audit.md, "Durability").
enum class CommitSync {
  // On disk: survives a power loss (SQLite synchronous=FULL, PostgreSQL
  // synchronous_commit=on). The default.
  kEach,
  // Handed on, not yet on disk: SQLite's WAL is written to the OS (survives
  // a crash of kubegate, not of the machine); PostgreSQL has the commit
  // (survives kubegate, not a crash of the server or its machine).
  // SyncToDisk makes everything committed so far durable.
  kDeferred,
};

// A parameter. A std::string_view is bound where it lies, without a copy
// (SQLite; PostgreSQL copies it): what it views must outlive the Run call.
using SqlValue = std::variant<std::nullptr_t, std::int64_t, std::string, std::string_view>;
// Column values as text; nullopt for SQL NULL.
using SqlRow = std::vector<std::optional<std::string>>;

class SqlConnection {
 public:
  virtual ~SqlConnection() = default;
  virtual SqlDialect dialect() const = 0;
  // "sqlite:PATH" or "postgres:HOST/DB" (no password), for messages.
  virtual std::string Describe() const = 0;
  // Runs one statement; returns its rows (none for statements without).
  // Errors carry 503: the store is unavailable or refused the write.
  virtual Result<std::vector<SqlRow>> Run(std::string_view sql, const std::vector<SqlValue>& params = {}) = 0;
  // Runs statements without parameters (migrations).
  virtual Result<bool> ExecScript(std::string_view sql) = 0;
  // Reconnects when the connection was lost (a PostgreSQL restart); cheap
  // when it is healthy.
  virtual Result<bool> EnsureConnected() = 0;
  // How durable the commits that follow are (kept across reconnects).
  virtual Result<bool> SetCommitSync(CommitSync sync) = 0;
  // Makes every commit made so far on this connection durable against a
  // power loss. Cheap when nothing is pending.
  virtual Result<bool> SyncToDisk() = 0;
};

// Opens (creating) a SQLite database in WAL mode with synchronous=FULL:
// a committed transaction survives a crash of the process or the machine
// (SetCommitSync(kDeferred) relaxes that for the machine).
Result<std::unique_ptr<SqlConnection>> OpenSqlite(const std::string& path);

// Connects with a libpq connection string ("host=... dbname=..."). Adds
// connect and TCP timeouts when the string sets none, so a hung server
// fails requests closed instead of holding them forever.
Result<std::unique_ptr<SqlConnection>> OpenPostgres(const std::string& conninfo);

// `conninfo` with the defaults OpenPostgres adds (connect and TCP
// timeouts) and `application_name` when the string sets none, so every
// connection kubegate opens fails over the same way and is named in
// pg_stat_activity. `application_name` must be a plain word ([A-Za-z0-9_.-]).
std::string PostgresConnInfo(const std::string& conninfo, const std::string& application_name);

// Parses an integer column; 0 for NULL or garbage.
std::int64_t SqlInt(const std::optional<std::string>& v);

}  // namespace kubegate
