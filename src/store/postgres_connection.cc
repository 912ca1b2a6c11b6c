#include <libpq-fe.h>

#include "store/sql_connection.h"

namespace kubegate {
namespace {

// `?` -> `$1`, `$2`, ... (kubegate's SQL has no `?` inside literals).
std::string NumberPlaceholders(std::string_view sql) {
  std::string out;
  out.reserve(sql.size() + 16);
  int n = 0;
  for (char c : sql) {
    if (c == '?') {
      out += '$';
      out += std::to_string(++n);
    } else {
      out += c;
    }
  }
  return out;
}

class PostgresConnection final : public SqlConnection {
 public:
  PostgresConnection(PGconn* c, std::string conninfo) : conn_(c), conninfo_(std::move(conninfo)) {}
  ~PostgresConnection() override { PQfinish(conn_); }

  SqlDialect dialect() const override { return SqlDialect::kPostgres; }
  std::string Describe() const override {
    return std::string("postgres:") + (PQhost(conn_) ? PQhost(conn_) : "?") + ":" +
           (PQport(conn_) ? PQport(conn_) : "?") + "/" + (PQdb(conn_) ? PQdb(conn_) : "?");
  }

  Result<std::vector<SqlRow>> Run(std::string_view sql, const std::vector<SqlValue>& params) override {
    std::string text = NumberPlaceholders(sql);
    std::vector<std::string> storage(params.size());
    std::vector<const char*> values(params.size(), nullptr);
    for (std::size_t i = 0; i < params.size(); ++i) {
      if (auto* n = std::get_if<std::int64_t>(&params[i])) {
        storage[i] = std::to_string(*n);
        values[i] = storage[i].c_str();
      } else if (auto* s = std::get_if<std::string>(&params[i])) {
        values[i] = s->c_str();
      } else if (auto* v = std::get_if<std::string_view>(&params[i])) {
        storage[i] = std::string(*v);  // libpq reads text parameters up to their NUL
        values[i] = storage[i].c_str();
      }
    }
    PGresult* r = PQexecParams(conn_, text.c_str(), static_cast<int>(params.size()), nullptr, values.data(), nullptr,
                               nullptr, 0);
    struct Clear {
      PGresult* r;
      ~Clear() { PQclear(r); }
    } clear{r};
    auto status = PQresultStatus(r);
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
      return Error::Unavailable(Describe() + ": " + Trim(PQerrorMessage(conn_)));
    }
    std::vector<SqlRow> rows;
    int nrows = PQntuples(r), ncols = PQnfields(r);
    rows.reserve(static_cast<std::size_t>(nrows));
    for (int i = 0; i < nrows; ++i) {
      SqlRow row(static_cast<std::size_t>(ncols));
      for (int c = 0; c < ncols; ++c) {
        if (!PQgetisnull(r, i, c)) {
          row[static_cast<std::size_t>(c)] =
              std::string(PQgetvalue(r, i, c), static_cast<std::size_t>(PQgetlength(r, i, c)));
        }
      }
      rows.push_back(std::move(row));
    }
    return rows;
  }

  Result<bool> ExecScript(std::string_view sql) override {
    std::string s(sql);
    PGresult* r = PQexec(conn_, s.c_str());
    auto status = PQresultStatus(r);
    PQclear(r);
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
      return Error::Unavailable(Describe() + ": " + Trim(PQerrorMessage(conn_)));
    }
    return true;
  }

  Result<bool> EnsureConnected() override {
    if (PQstatus(conn_) == CONNECTION_OK) return true;
    PQreset(conn_);
    if (PQstatus(conn_) != CONNECTION_OK) {
      return Error::Unavailable("PostgreSQL unreachable: " + Trim(PQerrorMessage(conn_)));
    }
    PQclear(PQexec(conn_, "SET client_min_messages = warning"));
    // A reset starts a new session: the commit mode is set again.
    if (sync_ == CommitSync::kDeferred) return SetCommitSync(sync_);
    return true;
  }

  // Deferred: the server acknowledges a commit before its WAL is flushed
  // (it flushes within 3 x wal_writer_delay on its own).
  Result<bool> SetCommitSync(CommitSync sync) override {
    auto ok = ExecScript(sync == CommitSync::kEach ? "SET synchronous_commit = on" : "SET synchronous_commit = off");
    if (ok) sync_ = sync;
    return ok;
  }

  // A synchronous commit of a transaction that has an id flushes the WAL
  // up to itself, and with it every asynchronous commit before it.
  Result<bool> SyncToDisk() override {
    if (sync_ == CommitSync::kEach) return true;
    return ExecScript("BEGIN; SET LOCAL synchronous_commit = on; SELECT txid_current(); COMMIT;");
  }

 private:
  static std::string Trim(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    return s;
  }

  PGconn* conn_;
  std::string conninfo_;
  CommitSync sync_ = CommitSync::kEach;
};

}  // namespace

std::string PostgresConnInfo(const std::string& conninfo, const std::string& application_name) {
  std::string ci = conninfo;
  auto add_default = [&](const char* key, const std::string& value) {
    if (ci.find(key) == std::string::npos) ci += std::string(" ") + key + "=" + value;
  };
  add_default("connect_timeout", "5");
  add_default("keepalives_idle", "5");
  add_default("keepalives_interval", "2");
  add_default("keepalives_count", "3");
  add_default("tcp_user_timeout", "10000");
  add_default("application_name", application_name);
  return ci;
}

Result<std::unique_ptr<SqlConnection>> OpenPostgres(const std::string& conninfo) {
  PGconn* c = PQconnectdb(PostgresConnInfo(conninfo, "kubegate").c_str());
  if (!c) return Error::Unavailable("PostgreSQL: out of memory");
  if (PQstatus(c) != CONNECTION_OK) {
    std::string m = PQerrorMessage(c);
    while (!m.empty() && m.back() == '\n') m.pop_back();
    PQfinish(c);
    return Error::Unavailable("cannot connect to PostgreSQL: " + m);
  }
  PQclear(PQexec(c, "SET client_min_messages = warning"));
  return std::unique_ptr<SqlConnection>(std::make_unique<PostgresConnection>(c, conninfo));
}

}  // namespace kubegate
