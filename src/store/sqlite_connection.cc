#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <functional>
#include <string_view>
#include <unordered_map>

#include "common/limits.h"
#include "store/sql_connection.h"

namespace kubegate {
namespace {

class SqliteConnection final : public SqlConnection {
 public:
  SqliteConnection(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  ~SqliteConnection() override {
    for (auto& [_, st] : cache_) sqlite3_finalize(st);
    sqlite3_close_v2(db_);
  }

  SqlDialect dialect() const override { return SqlDialect::kSqlite; }
  std::string Describe() const override { return "sqlite:" + path_; }

  Result<std::vector<SqlRow>> Run(std::string_view sql, const std::vector<SqlValue>& params) override {
    sqlite3_stmt* st = nullptr;
    bool cached = false;
    if (auto it = cache_.find(sql); it != cache_.end()) {
      st = it->second;
      cached = true;
    } else {
      if (sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &st, nullptr) != SQLITE_OK) {
        return Fail("prepare");
      }
      if (cache_.size() < limits::kSqlStatementCache) cached = cache_.emplace(std::string(sql), st).second;
    }
    struct Reset {
      SqliteConnection* self;
      sqlite3_stmt* st;
      bool cached;
      ~Reset() {
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        if (!cached) sqlite3_finalize(st);
      }
    } reset{this, st, cached};
    for (std::size_t i = 0; i < params.size(); ++i) {
      int idx = static_cast<int>(i + 1);
      int rc;
      if (std::holds_alternative<std::nullptr_t>(params[i])) {
        rc = sqlite3_bind_null(st, idx);
      } else if (auto* n = std::get_if<std::int64_t>(&params[i])) {
        rc = sqlite3_bind_int64(st, idx, *n);
      } else {
        // `params` (and what a view points at) outlives the statement's
        // use: Reset clears the bindings before Run returns, so SQLite need
        // not copy the text.
        auto* owned = std::get_if<std::string>(&params[i]);
        std::string_view s = owned ? std::string_view(*owned) : std::get<std::string_view>(params[i]);
        rc = sqlite3_bind_text(st, idx, s.data(), static_cast<int>(s.size()), SQLITE_STATIC);
      }
      if (rc != SQLITE_OK) return Fail("bind");
    }
    std::vector<SqlRow> rows;
    while (true) {
      int rc = sqlite3_step(st);
      if (rc == SQLITE_DONE) break;
      if (rc != SQLITE_ROW) return Fail("step");
      int n = sqlite3_column_count(st);
      SqlRow row(static_cast<std::size_t>(n));
      for (int c = 0; c < n; ++c) {
        if (sqlite3_column_type(st, c) == SQLITE_NULL) continue;
        const unsigned char* t = sqlite3_column_text(st, c);
        row[static_cast<std::size_t>(c)] =
            std::string(reinterpret_cast<const char*>(t), static_cast<std::size_t>(sqlite3_column_bytes(st, c)));
      }
      rows.push_back(std::move(row));
    }
    return rows;
  }

  Result<bool> ExecScript(std::string_view sql) override {
    char* err = nullptr;
    std::string s(sql);
    if (sqlite3_exec(db_, s.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
      std::string m = err ? err : "unknown error";
      sqlite3_free(err);
      return Error::Unavailable(Describe() + ": " + m);
    }
    return true;
  }

  Result<bool> EnsureConnected() override { return true; }

  // WAL mode: FULL syncs the WAL at every commit; NORMAL writes it and
  // syncs it only at checkpoints, so SyncToDisk syncs it in between.
  Result<bool> SetCommitSync(CommitSync sync) override {
    return ExecScript(sync == CommitSync::kEach ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL");
  }

  // fdatasync of the WAL file: every committed frame is in it (a
  // checkpoint syncs the database file itself). No WAL yet: nothing to do.
  Result<bool> SyncToDisk() override {
    if (path_ == ":memory:") return true;
    std::string wal = path_ + "-wal";
    int fd = ::open(wal.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      if (errno == ENOENT) return true;
      return Error::Unavailable(Describe() + ": cannot open " + wal + " to sync it: " + std::strerror(errno));
    }
    int rc = ::fdatasync(fd);
    int err = errno;
    ::close(fd);
    if (rc != 0) return Error::Unavailable(Describe() + ": fdatasync of " + wal + " failed: " + std::strerror(err));
    return true;
  }

 private:
  Error Fail(const char* what) {
    return Error::Unavailable(Describe() + ": " + what + ": " + sqlite3_errmsg(db_));
  }

  sqlite3* db_;
  std::string path_;
  // Looked up by the caller's string_view, without a copy.
  struct SqlHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_map<std::string, sqlite3_stmt*, SqlHash, std::equal_to<>> cache_;
};

// The page size of a database this creates. The audit ingest writes rows
// of about 1 KB (the record) and a dozen index entries per request in
// transactions of hundreds; with 16 KiB pages it spends about a sixth less
// CPU than with SQLite's default 4 KiB (bench/audit_ingest_replay.sh;
// docs/performance.md, "The audit ingest's SQLite pages"). A small write
// (an approval) writes whole pages to the WAL: 16 KiB each instead of 4.
constexpr int kNewDatabasePageBytes = 16384;

}  // namespace

Result<std::unique_ptr<SqlConnection>> OpenSqlite(const std::string& path) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                           nullptr);
  if (rc != SQLITE_OK) {
    std::string m = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close_v2(db);
    return Error::Unavailable("cannot open SQLite database " + path + ": " + m);
  }
  sqlite3_busy_timeout(db, static_cast<int>(limits::kSqliteBusyTimeout.count()));
  // The store is the owner's alone, also when an older kubegate made it
  // wider; SQLite gives the WAL and shared-memory files the same mode.
  if (path != ":memory:") {
    for (const char* suffix : {"", "-wal", "-shm"}) ::chmod((path + suffix).c_str(), 0600);
  }
  auto conn = std::make_unique<SqliteConnection>(db, path);
  // The page size takes effect only in a database without content yet (an
  // existing one keeps its own), so it comes before WAL mode is entered.
  auto ok = conn->ExecScript("PRAGMA page_size=" + std::to_string(kNewDatabasePageBytes) +
                             "; PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA cache_size=-65536;");
  if (!ok) return ok.error();
  return std::unique_ptr<SqlConnection>(std::move(conn));
}

std::int64_t SqlInt(const std::optional<std::string>& v) {
  if (!v) return 0;
  try {
    return std::stoll(*v);
  } catch (...) {
    return 0;
  }
}

}  // namespace kubegate
