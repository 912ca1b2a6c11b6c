#include "store/database.h"

#include "store/store_events.h"

#include <set>

#include "common/clock.h"

namespace kubegate {
namespace {

std::string Substitute(std::string sql, SqlDialect d) {
  const std::string pk = d == SqlDialect::kSqlite ? "INTEGER PRIMARY KEY" : "BIGINT PRIMARY KEY";
  for (std::size_t p; (p = sql.find("{PK}")) != std::string::npos;) sql.replace(p, 4, pk);
  return sql;
}

}  // namespace

Result<std::unique_ptr<Database>> Database::Open(const StoreConfig& config, std::span<const Migration> migrations) {
  Result<std::unique_ptr<SqlConnection>> conn = config.postgres_conninfo.empty()
                                                    ? OpenSqlite(config.sqlite_path)
                                                    : OpenPostgres(config.postgres_conninfo);
  if (!conn) return conn.error();
  return Open(std::move(*conn), migrations);
}

Result<std::unique_ptr<Database>> Database::Open(std::unique_ptr<SqlConnection> conn,
                                                 std::span<const Migration> migrations) {
  auto db = std::make_unique<Database>(std::move(conn));
  auto ok = db->Migrate(migrations);
  if (!ok) return ok.error();
  db->Optimize();
  return db;
}

Result<bool> Database::Begin() {
  if (auto ok = conn_->EnsureConnected(); !ok) return ok.error();
  auto begin = conn_->Run(conn_->dialect() == SqlDialect::kSqlite ? "BEGIN IMMEDIATE" : "BEGIN");
  if (!begin) return begin.error();
  return true;
}

Result<bool> Database::Commit() {
  auto commit = conn_->Run("COMMIT");
  if (!commit) {
    Rollback();
    return commit.error();
  }
  return true;
}

void Database::Rollback() { (void)conn_->Run("ROLLBACK"); }

// Applies, in version order, each migration not yet recorded: modules
// migrate their own tables whenever they open the database, in any order.
Result<bool> Database::Migrate(std::span<const Migration> migrations) {
  auto created = conn_->ExecScript(
      "CREATE TABLE IF NOT EXISTS schema_migrations(version INTEGER PRIMARY KEY, applied_ms BIGINT NOT NULL)");
  if (!created) return created.error();
  return WithWriteTransaction([&]() -> Result<bool> {
    if (conn_->dialect() == SqlDialect::kPostgres) {
      // Several replicas starting at once: one migrates, the others wait.
      auto lock = conn_->Run("SELECT pg_advisory_xact_lock(7242001)");
      if (!lock) return lock.error();
    }
    auto rows = conn_->Run("SELECT version FROM schema_migrations");
    if (!rows) return rows.error();
    std::set<std::int64_t> applied;
    for (const auto& row : *rows) applied.insert(SqlInt(row[0]));
    for (const Migration& m : migrations) {
      if (applied.count(m.version)) continue;
      auto done = conn_->ExecScript(Substitute(m.sql, conn_->dialect()));
      if (!done) {
        return Error::Unavailable("schema migration " + std::to_string(m.version) + " failed: " + done.error().message);
      }
      auto noted = conn_->Run("INSERT INTO schema_migrations(version, applied_ms) VALUES (?, ?)",
                              {std::int64_t{m.version}, SystemClock().NowMillis()});
      if (!noted) return noted.error();
    }
    return true;
  });
}

Result<bool> Database::Publish(const char* channel, const std::string& payload) {
  if (conn_->dialect() != SqlDialect::kPostgres) return true;
  auto r = conn_->Run("SELECT pg_notify(?, ?)", {std::string(channel), StoreInstanceId() + " " + payload});
  if (!r) return r.error();
  return true;
}

void Database::Optimize() {
  if (conn_->dialect() == SqlDialect::kSqlite) (void)conn_->ExecScript("PRAGMA analysis_limit=1000; PRAGMA optimize;");
}

int Database::SchemaVersion() {
  auto rows = conn_->Run("SELECT COALESCE(MAX(version), 0) FROM schema_migrations");
  return rows ? static_cast<int>(SqlInt((*rows)[0][0])) : -1;
}

}  // namespace kubegate
