#include "audit/audit_store.h"

#include <algorithm>

#include "common/clock.h"
#include "common/limits.h"

namespace kubegate {
namespace {

// Append-only: a released migration is never edited, only followed.
// Filter indexes are partial (decision entries only): result entries are
// found by request id, and skipping them halves the index writes per request.
const Migration kAuditMigrations[] = {
    {1, R"SQL(
CREATE TABLE audit_log(
  seq {PK},
  request_id TEXT NOT NULL,
  phase TEXT NOT NULL,
  time_ms BIGINT NOT NULL,
  actor TEXT NOT NULL,
  kind TEXT NOT NULL,
  verb TEXT NOT NULL,
  api_group TEXT NOT NULL,
  resource TEXT NOT NULL,
  ns TEXT NOT NULL,
  obj_name TEXT NOT NULL,
  decision TEXT NOT NULL,
  approval_id TEXT NOT NULL,
  record TEXT NOT NULL,
  prev_hash TEXT NOT NULL,
  hash TEXT NOT NULL);
CREATE INDEX audit_log_request ON audit_log(request_id);
CREATE INDEX audit_log_time ON audit_log(time_ms) WHERE phase = 'decision';
CREATE INDEX audit_log_actor ON audit_log(actor, seq) WHERE phase = 'decision';
CREATE INDEX audit_log_verb ON audit_log(verb, seq) WHERE phase = 'decision';
CREATE INDEX audit_log_resource ON audit_log(resource, seq) WHERE phase = 'decision';
CREATE INDEX audit_log_ns ON audit_log(ns, seq) WHERE phase = 'decision';
CREATE INDEX audit_log_name ON audit_log(obj_name, seq) WHERE phase = 'decision';
CREATE INDEX audit_log_decision ON audit_log(decision, seq) WHERE phase = 'decision';
CREATE INDEX audit_log_approval ON audit_log(approval_id, seq) WHERE phase = 'decision';
CREATE TABLE audit_group(seq BIGINT NOT NULL, grp TEXT NOT NULL);
CREATE INDEX audit_group_grp ON audit_group(grp, seq);
CREATE INDEX audit_group_seq ON audit_group(seq);
CREATE TABLE audit_approver(seq BIGINT NOT NULL, approver TEXT NOT NULL);
CREATE INDEX audit_approver_name ON audit_approver(approver, seq);
CREATE INDEX audit_approver_seq ON audit_approver(seq);
CREATE TABLE audit_head(id INTEGER PRIMARY KEY, seq BIGINT NOT NULL, hash TEXT NOT NULL);
INSERT INTO audit_head(id, seq, hash) VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');
CREATE TABLE audit_checkpoint(
  seq BIGINT PRIMARY KEY, hash TEXT NOT NULL, time_ms BIGINT NOT NULL, signature TEXT NOT NULL,
  public_key TEXT NOT NULL);
CREATE TABLE audit_anchor(
  id INTEGER PRIMARY KEY, seq BIGINT NOT NULL, hash TEXT NOT NULL, time_ms BIGINT NOT NULL,
  signature TEXT NOT NULL, public_key TEXT NOT NULL);
)SQL"},
};

constexpr const char* kEntryColumns =
    "seq, request_id, phase, time_ms, actor, kind, verb, api_group, resource, ns, obj_name, decision, approval_id, "
    "record, prev_hash, hash";
constexpr std::size_t kEntryColumnCount = 16;
constexpr const char* kJoinedEntryColumns =
    "audit_log.seq, request_id, phase, time_ms, actor, kind, verb, api_group, resource, ns, obj_name, decision, "
    "approval_id, record, prev_hash, hash";

// Rows of kEntryColumns, with group and approver lists filled in by the caller.
AuditEntry EntryFromRow(const SqlRow& r) {
  AuditEntry e;
  e.seq = SqlInt(r[0]);
  e.index.request_id = r[1].value_or("");
  e.index.phase = r[2].value_or("");
  e.index.time_ms = SqlInt(r[3]);
  e.index.actor = r[4].value_or("");
  e.index.kind = r[5].value_or("");
  e.index.verb = r[6].value_or("");
  e.index.api_group = r[7].value_or("");
  e.index.resource = r[8].value_or("");
  e.index.namespace_ = r[9].value_or("");
  e.index.name = r[10].value_or("");
  e.index.decision = r[11].value_or("");
  e.index.approval_id = r[12].value_or("");
  e.canonical = r[13].value_or("");
  e.prev_hash = r[14].value_or("");
  e.hash = r[15].value_or("");
  return e;
}

Checkpoint CheckpointFromRow(const SqlRow& r) {
  return Checkpoint{SqlInt(r[0]), r[1].value_or(""), SqlInt(r[2]), r[3].value_or(""), r[4].value_or("")};
}

}  // namespace

Result<std::unique_ptr<AuditStore>> AuditStore::Open(const StoreConfig& config) {
  auto db = Database::Open(config, kAuditMigrations);
  if (!db) return db.error();
  return std::make_unique<AuditStore>(std::move(*db));
}

Result<std::unique_ptr<AuditStore>> AuditStore::Open(std::unique_ptr<SqlConnection> conn) {
  auto db = Database::Open(std::move(conn), kAuditMigrations);
  if (!db) return db.error();
  return std::make_unique<AuditStore>(std::move(*db));
}

Result<ChainHead> AuditStore::AppendAudit(std::vector<AuditEntry>& entries) {
  auto result = db_->WithWriteTransaction<ChainHead>([&]() -> Result<ChainHead> {
    auto head_rows = db_->Run(db_->dialect() == SqlDialect::kPostgres
                                  ? "SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE"
                                  : "SELECT seq, hash FROM audit_head WHERE id = 1");
    if (!head_rows) return head_rows.error();
    if (head_rows->empty()) return Error::Internal("audit_head row missing");
    ChainHead head{SqlInt((*head_rows)[0][0]), (*head_rows)[0][1].value_or("")};
    for (AuditEntry& e : entries) {
      e.seq = head.seq + 1;
      e.prev_hash = head.hash;
      e.hash = ChainHash(e.seq, e.prev_hash, e.canonical);
      head = {e.seq, e.hash};
    }
    // Multi-row INSERTs in a few fixed sizes, so the statements are cached.
    std::size_t i = 0;
    while (i < entries.size()) {
      std::size_t left = entries.size() - i;
      std::size_t n = 1;
      for (std::size_t size : {limits::kAuditInsertRows, std::size_t{16}, std::size_t{4}}) {
        if (left >= size) {
          n = size;
          break;
        }
      }
      std::string sql = std::string("INSERT INTO audit_log(") + kEntryColumns + ") VALUES ";
      std::string row = "(?";
      for (std::size_t c = 1; c < kEntryColumnCount; ++c) row += ",?";
      row += ")";
      std::vector<SqlValue> params;
      params.reserve(n * kEntryColumnCount);
      for (std::size_t k = 0; k < n; ++k) {
        sql += k ? "," + row : row;
        const AuditEntry& e = entries[i + k];
        const AuditIndex& x = e.index;
        params.insert(params.end(), {e.seq, x.request_id, x.phase, x.time_ms, x.actor, x.kind, x.verb, x.api_group,
                                     x.resource, x.namespace_, x.name, x.decision, x.approval_id, e.canonical,
                                     e.prev_hash, e.hash});
      }
      auto ins = db_->Run(sql, params);
      if (!ins) return ins.error();
      i += n;
    }
    for (const AuditEntry& e : entries) {
      for (const auto& g : e.index.groups) {
        auto r = db_->Run("INSERT INTO audit_group(seq, grp) VALUES (?, ?)", {e.seq, g});
        if (!r) return r.error();
      }
      for (const auto& a : e.index.approvers) {
        auto r = db_->Run("INSERT INTO audit_approver(seq, approver) VALUES (?, ?)", {e.seq, a});
        if (!r) return r.error();
      }
    }
    auto upd = db_->Run("UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1", {head.seq, head.hash});
    if (!upd) return upd.error();
    return head;
  });
  if (!result) {
    for (AuditEntry& e : entries) e.seq = 0, e.prev_hash.clear(), e.hash.clear();
  }
  return result;
}

Result<ChainHead> AuditStore::AuditHead() {
  auto rows = db_->Run("SELECT seq, hash FROM audit_head WHERE id = 1");
  if (!rows) return rows.error();
  if (rows->empty()) return Error::Internal("audit_head row missing");
  return ChainHead{SqlInt((*rows)[0][0]), (*rows)[0][1].value_or("")};
}

Result<std::vector<AuditEntry>> AuditStore::Entries(const std::string& where, const std::vector<SqlValue>& params,
                                               const std::string& tail, const std::string& join) {
  std::string sql = std::string("SELECT ") + (join.empty() ? kEntryColumns : kJoinedEntryColumns) + " FROM audit_log";
  if (!join.empty()) sql += " JOIN " + join + " ON f.seq = audit_log.seq";
  auto rows = db_->Run(sql + " WHERE " + where + " " + tail, params);
  if (!rows) return rows.error();
  std::vector<AuditEntry> out;
  out.reserve(rows->size());
  for (const auto& r : *rows) out.push_back(EntryFromRow(r));
  // Lists (groups, approvers) from their own tables, one query each.
  if (!out.empty()) {
    auto [lo, hi] = std::minmax_element(out.begin(), out.end(), [](auto& a, auto& b) { return a.seq < b.seq; });
    std::int64_t min_seq = lo->seq, max_seq = hi->seq;
    auto find = [&](std::int64_t seq) -> AuditEntry* {
      for (auto& e : out) {
        if (e.seq == seq) return &e;
      }
      return nullptr;
    };
    bool contiguous = out.size() == static_cast<std::size_t>(max_seq - min_seq + 1);
    for (const char* table : {"audit_group", "audit_approver"}) {
      std::string col = std::string(table) == "audit_group" ? "grp" : "approver";
      std::string sql = "SELECT seq, " + col + " FROM " + table;
      std::vector<SqlValue> p;
      if (contiguous) {
        sql += " WHERE seq BETWEEN ? AND ?";
        p = {min_seq, max_seq};
      } else {
        sql += " WHERE seq IN (";
        for (std::size_t i = 0; i < out.size(); ++i) {
          sql += i ? ",?" : "?";
          p.push_back(out[i].seq);
        }
        sql += ")";
      }
      // The lists' order is not kept; verification compares them as sets.
      auto lrows = db_->Run(sql, p);
      if (!lrows) return lrows.error();
      for (const auto& r : *lrows) {
        if (AuditEntry* e = find(SqlInt(r[0]))) {
          (col == "grp" ? e->index.groups : e->index.approvers).push_back(r[1].value_or(""));
        }
      }
    }
  }
  return out;
}

Result<std::vector<AuditPair>> AuditStore::QueryAudit(const AuditQuery& q) {
  std::string where = "phase = 'decision'";
  std::vector<SqlValue> p;
  // SQLite's planner can pick a poorly selective index (verb) over a
  // selective one (user) and then walk millions of rows. kubegate picks the
  // driving index itself, by a fixed order of selectivity, and writes the
  // other columns as "+col", which SQLite never uses an index for.
  // PostgreSQL plans from its own statistics.
  const bool sqlite = db_->dialect() == SqlDialect::kSqlite;
  bool driven = !q.group.empty() || !q.approver.empty();
  auto eq = [&](const char* col, const std::string& v) {
    if (v.empty()) return;
    where += std::string(" AND ") + (sqlite && driven ? "+" : "") + col + " = ?";
    driven = true;
    p.push_back(v);
  };
  eq("request_id", q.request_id);
  eq("approval_id", q.approval_id);
  eq("obj_name", q.name);
  eq("actor", q.actor);
  eq("ns", q.namespace_);
  eq("resource", q.resource);
  eq("verb", q.verb);
  eq("decision", q.decision);
  eq("kind", q.kind);
  if (!q.subresource.empty()) {
    // Not an indexed column: the canonical record (sorted keys, no spaces)
    // names it exactly. AuditQuery's subresource is [a-z] only (checked by
    // ValidateAuditQuery), so it holds no LIKE wildcard.
    where += " AND record LIKE ?";
    p.push_back("%\"subresource\":\"" + q.subresource + "\"%");
  }
  const char* time_col = sqlite && driven ? "+time_ms" : "time_ms";
  if (q.since_ms) {
    where += std::string(" AND ") + time_col + " >= ?";
    p.push_back(q.since_ms);
  }
  if (q.until_ms) {
    where += std::string(" AND ") + time_col + " < ?";
    p.push_back(q.until_ms);
  }
  // A group or approver filter drives the query from its (name, seq) index,
  // newest first, so the LIMIT stops the walk early; "seq IN (subquery)"
  // would collect every match first.
  std::string from;
  if (!q.group.empty() || !q.approver.empty()) {
    bool by_group = !q.group.empty();
    from = by_group ? "audit_group f" : "audit_approver f";
    where += by_group ? " AND f.grp = ?" : " AND f.approver = ?";
    p.push_back(by_group ? q.group : q.approver);
    if (by_group && !q.approver.empty()) {
      where += " AND audit_log.seq IN (SELECT seq FROM audit_approver WHERE approver = ?)";
      p.push_back(q.approver);
    }
  }
  std::size_t limit = std::clamp<std::size_t>(q.limit, 1, limits::kAuditMaxQueryLimit);
  auto decisions = from.empty() ? Entries(where, p, "ORDER BY seq DESC LIMIT " + std::to_string(limit))
                                : Entries(where, p, "ORDER BY f.seq DESC LIMIT " + std::to_string(limit), from);
  if (!decisions) return decisions.error();
  std::vector<AuditPair> out;
  out.reserve(decisions->size());
  if (decisions->empty()) return out;
  std::string in = "phase = 'result' AND request_id IN (";
  std::vector<SqlValue> ids;
  for (std::size_t i = 0; i < decisions->size(); ++i) {
    in += i ? ",?" : "?";
    ids.push_back((*decisions)[i].index.request_id);
  }
  in += ")";
  auto results = Entries(in, ids, "");
  if (!results) return results.error();
  for (auto& d : *decisions) {
    AuditPair pair{std::move(d), std::nullopt};
    for (auto& r : *results) {
      if (r.index.request_id == pair.decision.index.request_id) pair.result = r;
    }
    out.push_back(std::move(pair));
  }
  return out;
}

Result<std::vector<AuditEntry>> AuditStore::AuditByRequest(const std::string& request_id) {
  return Entries("request_id = ?", {request_id}, "ORDER BY seq");
}

Result<std::vector<AuditEntry>> AuditStore::AuditRange(std::int64_t after_seq, std::size_t limit) {
  return Entries("seq > ?", {after_seq}, "ORDER BY seq LIMIT " + std::to_string(limit));
}

std::int64_t AuditStore::CountAudit() {
  auto rows = db_->Run("SELECT COUNT(*) FROM audit_log");
  return rows ? SqlInt((*rows)[0][0]) : -1;
}

Result<bool> AuditStore::AddCheckpoint(const Checkpoint& c) {
  auto r = db_->Run("INSERT INTO audit_checkpoint(seq, hash, time_ms, signature, public_key) VALUES (?, ?, ?, ?, ?)",
                    {c.seq, c.hash, c.time_ms, c.signature, c.public_key});
  if (!r) return r.error();
  return true;
}

Result<std::vector<Checkpoint>> AuditStore::Checkpoints() {
  auto rows = db_->Run("SELECT seq, hash, time_ms, signature, public_key FROM audit_checkpoint ORDER BY seq");
  if (!rows) return rows.error();
  std::vector<Checkpoint> out;
  for (const auto& r : *rows) out.push_back(CheckpointFromRow(r));
  return out;
}

Result<std::optional<Checkpoint>> AuditStore::AuditAnchor() {
  auto rows = db_->Run("SELECT seq, hash, time_ms, signature, public_key FROM audit_anchor WHERE id = 1");
  if (!rows) return rows.error();
  if (rows->empty()) return std::optional<Checkpoint>();
  return std::optional<Checkpoint>(CheckpointFromRow((*rows)[0]));
}

Result<std::int64_t> AuditStore::PruneAudit(const Checkpoint& anchor) {
  return db_->WithWriteTransaction<std::int64_t>([&]() -> Result<std::int64_t> {
    auto count = db_->Run("SELECT COUNT(*) FROM audit_log WHERE seq <= ?", {anchor.seq});
    if (!count) return count.error();
    for (const char* sql : {"DELETE FROM audit_log WHERE seq <= ?", "DELETE FROM audit_group WHERE seq <= ?",
                            "DELETE FROM audit_approver WHERE seq <= ?", "DELETE FROM audit_checkpoint WHERE seq < ?"}) {
      auto r = db_->Run(sql, {anchor.seq});
      if (!r) return r.error();
    }
    auto del = db_->Run("DELETE FROM audit_anchor WHERE id = 1");
    if (!del) return del.error();
    auto ins = db_->Run("INSERT INTO audit_anchor(id, seq, hash, time_ms, signature, public_key) VALUES (1, ?, ?, ?, ?, ?)",
                        {anchor.seq, anchor.hash, anchor.time_ms, anchor.signature, anchor.public_key});
    if (!ins) return ins.error();
    return SqlInt((*count)[0][0]);
  });
}

}  // namespace kubegate
