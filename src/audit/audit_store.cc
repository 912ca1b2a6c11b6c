#include "audit/audit_store.h"

#include <algorithm>
#include <functional>
#include <limits>
#include <map>
#include <tuple>

#include "common/clock.h"
#include "common/limits.h"

namespace kubegate {
namespace {

// A reader's journal read that loses the race with the writer's release
// (those entries moved into the tables) reads the tables again, up to this often.
constexpr int kJournalReadAttempts = 4;

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
    // Issue 13: the filter indexes move off the request path. audit_log
    // keeps every entry with its columns (the chain, written before a
    // request is forwarded); audit_index and the group/approver tables are
    // fed behind it in large batches (AuditStore::CatchUpIndex), up to
    // audit_index_head. Queries read the index up to that head and scan
    // audit_log after it.
    {3, R"SQL(
CREATE TABLE audit_index(
  seq BIGINT PRIMARY KEY,
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
  approval_id TEXT NOT NULL);
INSERT INTO audit_index(seq, request_id, phase, time_ms, actor, kind, verb, api_group, resource, ns, obj_name,
                        decision, approval_id)
  SELECT seq, request_id, phase, time_ms, actor, kind, verb, api_group, resource, ns, obj_name, decision, approval_id
  FROM audit_log;
DROP INDEX audit_log_request;
DROP INDEX audit_log_time;
DROP INDEX audit_log_actor;
DROP INDEX audit_log_verb;
DROP INDEX audit_log_resource;
DROP INDEX audit_log_ns;
DROP INDEX audit_log_name;
DROP INDEX audit_log_decision;
DROP INDEX audit_log_approval;
CREATE INDEX audit_index_request ON audit_index(request_id);
CREATE INDEX audit_index_time ON audit_index(time_ms) WHERE phase = 'decision';
CREATE INDEX audit_index_actor ON audit_index(actor, seq) WHERE phase = 'decision';
CREATE INDEX audit_index_verb ON audit_index(verb, seq) WHERE phase = 'decision';
CREATE INDEX audit_index_resource ON audit_index(resource, seq) WHERE phase = 'decision';
CREATE INDEX audit_index_ns ON audit_index(ns, seq) WHERE phase = 'decision';
CREATE INDEX audit_index_name ON audit_index(obj_name, seq) WHERE phase = 'decision';
CREATE INDEX audit_index_decision ON audit_index(decision, seq) WHERE phase = 'decision';
CREATE INDEX audit_index_approval ON audit_index(approval_id, seq) WHERE phase = 'decision';
CREATE TABLE audit_index_head(id INTEGER PRIMARY KEY, seq BIGINT NOT NULL);
INSERT INTO audit_index_head(id, seq) SELECT 1, COALESCE(MAX(seq), 0) FROM audit_log;
)SQL"},
    // The task of per-task agent tokens (identity.task), for
    // `kubegate audit --task`. Records before it have no task: '' is right.
    {5, R"SQL(
ALTER TABLE audit_index ADD COLUMN task TEXT NOT NULL DEFAULT '';
CREATE INDEX audit_index_task ON audit_index(task, seq) WHERE phase = 'decision';
)SQL"},
};

constexpr const char* kIndexColumns =
    "seq, request_id, phase, time_ms, actor, kind, verb, api_group, resource, ns, obj_name, decision, approval_id, task";
constexpr std::size_t kIndexColumnCount = 14;

constexpr const char* kEntryColumns =
    "seq, request_id, phase, time_ms, actor, kind, verb, api_group, resource, ns, obj_name, decision, approval_id, "
    "record, prev_hash, hash";
constexpr std::size_t kEntryColumnCount = 16;
constexpr const char* kJoinedEntryColumns =
    "audit_log.seq, audit_log.request_id, audit_log.phase, audit_log.time_ms, audit_log.actor, audit_log.kind, "
    "audit_log.verb, audit_log.api_group, audit_log.resource, audit_log.ns, audit_log.obj_name, audit_log.decision, "
    "audit_log.approval_id, audit_log.record, audit_log.prev_hash, audit_log.hash";

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
  auto store = std::make_unique<AuditStore>(std::move(*db));
  if (config.postgres_conninfo.empty() && !config.sqlite_path.empty() && config.sqlite_path != ":memory:") {
    store->journal_ = std::make_shared<AuditJournal>(JournalDirFor(config.sqlite_path));
    store->sqlite_path_ = config.sqlite_path;
  }
  return store;
}

Result<ChainHead> AuditStore::StartJournal(JournalFileOpener opener) {
  if (!journal_) {
    return Error::Internal("the audit journal needs a SQLite database file (not PostgreSQL, not :memory:)");
  }
  auto writer = AuditJournal::OpenWriter(journal_->dir(), std::move(opener));
  if (!writer) return writer.error();
  // SQLite is written only behind the journal, in large transactions: each
  // is synced, so a journal segment released after it is never needed again.
  if (auto ok = db_->SetCommitSync(CommitSync::kEach); !ok) return ok.error();
  auto table = TableHead();
  if (!table) return table.error();
  auto head = (*writer)->Recover(*table);
  if (!head) return head.error();
  journal_ = std::move(*writer);
  journal_writer_ = true;
  journal_ingest_ = true;
  journal_head_ = *head;
  return *head;
}

Result<std::unique_ptr<AuditStore>> AuditStore::OpenIngest() {
  if (!journal_writer_) return Error::Internal("OpenIngest: this store does not write a journal");
  auto other = Open(StoreConfig{.sqlite_path = sqlite_path_});
  if (!other) return other.error();
  if (auto ok = (*other)->db_->SetCommitSync(CommitSync::kEach); !ok) return ok.error();
  (*other)->journal_ = journal_;
  (*other)->journal_ingest_ = true;
  journal_ingest_ = false;  // the ingest store does it from now on
  return other;
}

Result<bool> AuditStore::SetCommitSync(CommitSync sync) {
  if (!journal_writer_) return db_->SetCommitSync(sync);
  journal_->set_sync_each(sync == CommitSync::kEach);
  return true;
}

Result<bool> AuditStore::SyncToDisk() {
  if (!journal_writer_) return db_->SyncToDisk();
  return journal_->Sync();
}

Result<std::vector<AuditEntry>> AuditStore::JournalAfter(std::int64_t after, std::size_t limit) {
  if (!journal_) return std::vector<AuditEntry>{};
  return journal_->Read(after, limit);
}

Result<std::unique_ptr<AuditStore>> AuditStore::Open(std::unique_ptr<SqlConnection> conn) {
  auto db = Database::Open(std::move(conn), kAuditMigrations);
  if (!db) return db.error();
  return std::make_unique<AuditStore>(std::move(*db));
}

namespace {

// Multi-row INSERTs of `columns` (n of them) for `rows` items, in a few
// fixed sizes so the statements are cached. `params_of(i, out)` appends item
// i's n values.
Result<bool> InsertRows(Database& db, const char* table, const char* columns, std::size_t n_columns,
                        std::size_t rows, const std::function<void(std::size_t, std::vector<SqlValue>&)>& params_of) {
  // SQLite: OR FAIL. A multi-row INSERT that may abort (ABORT, the default,
  // undoes the statement alone) keeps a statement journal, and with 16 KiB
  // pages SQLite spilled it to a temporary file for every statement: more
  // than half the ingest's pwrite()s. FAIL stops at the failing row without
  // undoing the earlier ones, so no journal is kept; every caller runs in a
  // write transaction that a failed statement rolls back whole, so what is
  // committed is the same (docs/performance.md, "The ingest's statement
  // journals"). PostgreSQL has no such clause and needs none.
  const bool sqlite = db.dialect() == SqlDialect::kSqlite;
  // The statement text for `n` rows, built once per thread (the
  // connection's statement cache is keyed by it).
  auto statement = [&](std::size_t n) -> const std::string& {
    thread_local std::map<std::tuple<bool, std::string, std::string, std::size_t>, std::string> texts;
    std::string& sql = texts[{sqlite, table, columns, n}];
    if (sql.empty()) {
      std::string row = "(?";
      for (std::size_t c = 1; c < n_columns; ++c) row += ",?";
      row += ")";
      sql = std::string(sqlite ? "INSERT OR FAIL INTO " : "INSERT INTO ") + table + "(" + columns + ") VALUES ";
      for (std::size_t k = 0; k < n; ++k) sql += k ? "," + row : row;
    }
    return sql;
  };
  std::size_t i = 0;
  while (i < rows) {
    std::size_t left = rows - i;
    std::size_t n = 1;
    for (std::size_t size : {limits::kAuditInsertRows, std::size_t{16}, std::size_t{4}}) {
      if (left >= size) {
        n = size;
        break;
      }
    }
    std::vector<SqlValue> params;
    params.reserve(n * n_columns);
    for (std::size_t k = 0; k < n; ++k) params_of(i + k, params);
    auto ins = db.Run(statement(n), params);
    if (!ins) return ins.error();
    i += n;
  }
  return true;
}

// Whether a decision entry matches every filter of `q` (the un-indexed tail
// is filtered here; the same filters as QueryAudit's SQL).
bool Matches(const AuditEntry& e, const AuditQuery& q) {
  const AuditIndex& x = e.index;
  auto eq = [](const std::string& want, const std::string& have) { return want.empty() || want == have; };
  auto has = [](const std::string& want, const std::vector<std::string>& list) {
    return want.empty() || std::find(list.begin(), list.end(), want) != list.end();
  };
  if (x.phase != "decision") return false;
  if (!eq(q.request_id, x.request_id) || !eq(q.approval_id, x.approval_id) || !eq(q.name, x.name) ||
      !eq(q.actor, x.actor) || !eq(q.namespace_, x.namespace_) || !eq(q.resource, x.resource) ||
      !eq(q.verb, x.verb) || !eq(q.decision, x.decision) || !eq(q.kind, x.kind) || !eq(q.task, x.task)) {
    return false;
  }
  if (!has(q.group, x.groups) || !has(q.approver, x.approvers)) return false;
  if (!q.subresource.empty() &&
      e.canonical.find("\"subresource\":\"" + q.subresource + "\"") == std::string::npos) {
    return false;
  }
  if (q.since_ms && x.time_ms < q.since_ms) return false;
  if (q.until_ms && x.time_ms >= q.until_ms) return false;
  return true;
}

}  // namespace

namespace {

// Seq and hashes for `entries`, continuing `head`; returns the new head.
ChainHead Link(std::vector<AuditEntry>& entries, ChainHead head) {
  for (AuditEntry& e : entries) {
    e.seq = head.seq + 1;
    e.prev_hash = head.hash;
    e.hash = ChainHash(e.seq, e.prev_hash, e.canonical);
    head = {e.seq, e.hash};
  }
  return head;
}

}  // namespace

Result<bool> AuditStore::InsertLogEntries(const std::vector<AuditEntry>& entries) {
  if (entries.empty()) return true;
  auto ins = InsertRows(*db_, "audit_log", kEntryColumns, kEntryColumnCount, entries.size(),
                        [&](std::size_t i, std::vector<SqlValue>& p) {
                          const AuditEntry& e = entries[i];
                          const AuditIndex& x = e.index;
                          using V = std::string_view;  // the entries outlive the insert
                          p.insert(p.end(), {e.seq, V(x.request_id), V(x.phase), x.time_ms, V(x.actor), V(x.kind),
                                             V(x.verb), V(x.api_group), V(x.resource), V(x.namespace_), V(x.name),
                                             V(x.decision), V(x.approval_id), V(e.canonical), V(e.prev_hash),
                                             V(e.hash)});
                        });
  if (!ins) return ins.error();
  auto upd = db_->Run("UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1", {entries.back().seq, entries.back().hash});
  if (!upd) return upd.error();
  return true;
}

Result<ChainHead> AuditStore::AppendAudit(std::vector<AuditEntry>& entries, bool awaited) {
  if (journal_writer_) {
    ChainHead head = Link(entries, journal_head_);
    if (auto ok = journal_->Append(entries, awaited); !ok) {
      for (AuditEntry& e : entries) e.seq = 0, e.prev_hash.clear(), e.hash.clear();
      return ok.error();
    }
    journal_head_ = head;
    return head;
  }
  const bool postgres = db_->dialect() == SqlDialect::kPostgres;
  auto result = db_->WithWriteTransaction<ChainHead>([&]() -> Result<ChainHead> {
    auto head_rows = db_->Run(postgres ? "SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE"
                                       : "SELECT seq, hash FROM audit_head WHERE id = 1");
    if (!head_rows) return head_rows.error();
    if (head_rows->empty()) return Error::Internal("audit_head row missing");
    ChainHead head = Link(entries, {SqlInt((*head_rows)[0][0]), (*head_rows)[0][1].value_or("")});
    auto ins = InsertLogEntries(entries);
    if (!ins) return ins.error();
    if (postgres) {
      // Several replicas append to one chain: their entries interleave, so
      // the index is written with the entries, under the head's lock.
      auto indexed = IndexEntries(entries);
      if (!indexed) return indexed.error();
    }
    return head;
  });
  if (!result) {
    for (AuditEntry& e : entries) e.seq = 0, e.prev_hash.clear(), e.hash.clear();
  }
  return result;
}

Result<bool> AuditStore::IndexEntries(const std::vector<AuditEntry>& entries) {
  if (entries.empty()) return true;
  auto ins = InsertRows(*db_, "audit_index", kIndexColumns, kIndexColumnCount, entries.size(),
                        [&](std::size_t i, std::vector<SqlValue>& p) {
                          const AuditEntry& e = entries[i];
                          const AuditIndex& x = e.index;
                          using V = std::string_view;  // the entries outlive the insert
                          p.insert(p.end(), {e.seq, V(x.request_id), V(x.phase), x.time_ms, V(x.actor), V(x.kind),
                                             V(x.verb), V(x.api_group), V(x.resource), V(x.namespace_), V(x.name),
                                             V(x.decision), V(x.approval_id), V(x.task)});
                        });
  if (!ins) return ins.error();
  // The group and approver lists, as (seq, name) rows in multi-row INSERTs.
  for (bool groups : {true, false}) {
    std::vector<std::pair<std::int64_t, const std::string*>> rows;
    for (const AuditEntry& e : entries) {
      for (const auto& v : groups ? e.index.groups : e.index.approvers) rows.emplace_back(e.seq, &v);
    }
    auto r = InsertRows(*db_, groups ? "audit_group" : "audit_approver", groups ? "seq, grp" : "seq, approver", 2,
                        rows.size(), [&](std::size_t i, std::vector<SqlValue>& p) {
                          p.insert(p.end(), {rows[i].first, std::string_view(*rows[i].second)});
                        });
    if (!r) return r.error();
  }
  auto upd = db_->Run("UPDATE audit_index_head SET seq = ? WHERE id = 1 AND seq < ?",
                      {entries.back().seq, entries.back().seq});
  if (!upd) return upd.error();
  return true;
}

Result<std::int64_t> AuditStore::CatchUpIndex(std::vector<AuditEntry>* known, std::size_t limit) {
  std::int64_t released_through = -1;
  // The first `limit` entries of `known` when they continue `head` (moved
  // out of it); entries at or below the head were indexed already.
  auto take_known = [&](std::int64_t head, std::vector<AuditEntry>& out) {
    if (!known) return false;
    known->erase(known->begin(),
                 std::find_if(known->begin(), known->end(), [&](const AuditEntry& e) { return e.seq > head; }));
    if (known->empty() || known->front().seq != head + 1) return false;
    auto end = known->begin() + static_cast<std::ptrdiff_t>(std::min(limit, known->size()));
    out.assign(std::make_move_iterator(known->begin()), std::make_move_iterator(end));
    known->erase(known->begin(), end);
    return true;
  };
  auto n = db_->WithWriteTransaction<std::int64_t>([&]() -> Result<std::int64_t> {
    auto indexed = IndexHead();
    if (!indexed) return indexed.error();
    std::vector<AuditEntry> batch;
    if (journal_ingest_) {
      auto table = TableHead();
      if (!table) return table.error();
      if (*indexed == table->seq) {
        // The tables are in step: the next entries come from the journal,
        // into audit_log and the index in this one transaction.
        if (!take_known(table->seq, batch)) {
          // Only what the writer acknowledged: a group in flight may yet be cut.
          auto page = journal_->Read(table->seq, limit, journal_->appended_seq());
          if (!page) return page.error();
          batch = std::move(*page);
        }
        if (auto ok = InsertLogEntries(batch); !ok) return ok.error();
        if (auto ok = IndexEntries(batch); !ok) return ok.error();
        released_through = batch.empty() ? table->seq : batch.back().seq;
        return static_cast<std::int64_t>(batch.size());
      }
      // Entries in audit_log from before the journal: indexed as before.
    }
    if (!take_known(*indexed, batch)) {
      auto page = TableRange(*indexed, limit);
      if (!page) return page.error();
      batch = std::move(*page);
    }
    if (auto ok = IndexEntries(batch); !ok) return ok.error();
    return static_cast<std::int64_t>(batch.size());
  });
  if (n && released_through >= 0) {
    // Committed (and synced): the journal no longer needs those entries.
    if (auto ok = journal_->Release(released_through); !ok) return ok.error();
  }
  return n;
}

Result<std::int64_t> AuditStore::IndexHead() {
  auto rows = db_->Run("SELECT seq FROM audit_index_head WHERE id = 1");
  if (!rows) return rows.error();
  if (rows->empty()) return Error::Internal("audit_index_head row missing");
  return SqlInt((*rows)[0][0]);
}

Result<std::map<std::int64_t, AuditIndex>> AuditStore::IndexedRange(std::int64_t first_seq, std::int64_t last_seq) {
  std::map<std::int64_t, AuditIndex> out;
  auto rows = db_->Run(std::string("SELECT ") + kIndexColumns + " FROM audit_index WHERE seq BETWEEN ? AND ?",
                       {first_seq, last_seq});
  if (!rows) return rows.error();
  for (const auto& r : *rows) {
    AuditIndex x;
    x.request_id = r[1].value_or("");
    x.phase = r[2].value_or("");
    x.time_ms = SqlInt(r[3]);
    x.actor = r[4].value_or("");
    x.kind = r[5].value_or("");
    x.verb = r[6].value_or("");
    x.api_group = r[7].value_or("");
    x.resource = r[8].value_or("");
    x.namespace_ = r[9].value_or("");
    x.name = r[10].value_or("");
    x.decision = r[11].value_or("");
    x.approval_id = r[12].value_or("");
    x.task = r[13].value_or("");
    out[SqlInt(r[0])] = std::move(x);
  }
  for (const char* sql : {"SELECT seq, grp FROM audit_group WHERE seq BETWEEN ? AND ?",
                          "SELECT seq, approver FROM audit_approver WHERE seq BETWEEN ? AND ?"}) {
    auto lrows = db_->Run(sql, {first_seq, last_seq});
    if (!lrows) return lrows.error();
    const bool groups = std::string_view(sql).find("grp") != std::string_view::npos;
    for (const auto& r : *lrows) {
      // A list row without its index row is reported as its own index entry.
      AuditIndex& x = out[SqlInt(r[0])];
      (groups ? x.groups : x.approvers).push_back(r[1].value_or(""));
    }
  }
  return out;
}

Result<ChainHead> AuditStore::AuditHead() {
  if (journal_writer_) return journal_head_;
  for (int attempt = 0;; ++attempt) {
    auto table = TableHead();
    if (!table || !journal_) return table;
    auto tail = JournalAfter(table->seq, std::numeric_limits<std::size_t>::max());
    if (!tail && attempt < kJournalReadAttempts) continue;  // released meanwhile: read the table again
    if (!tail) return tail.error();
    if (tail->empty()) return *table;
    return ChainHead{tail->back().seq, tail->back().hash};
  }
}

Result<ChainHead> AuditStore::TableHead() {
  auto rows = db_->Run("SELECT seq, hash FROM audit_head WHERE id = 1");
  if (!rows) return rows.error();
  if (rows->empty()) return Error::Internal("audit_head row missing");
  return ChainHead{SqlInt((*rows)[0][0]), (*rows)[0][1].value_or("")};
}

Result<std::vector<AuditEntry>> AuditStore::Entries(const std::string& from, const std::string& where,
                                                    const std::vector<SqlValue>& params, const std::string& tail) {
  auto rows = db_->Run(std::string("SELECT ") + kJoinedEntryColumns + " FROM " + from + " WHERE " + where + " " + tail,
                       params);
  if (!rows) return rows.error();
  std::vector<AuditEntry> out;
  out.reserve(rows->size());
  for (const auto& r : *rows) {
    AuditEntry e = EntryFromRow(r);
    // The lists are read from the hashed record itself; the group and
    // approver tables are the index (verify compares both).
    if (auto derived = DeriveIndex(e.canonical)) {
      e.index.groups = std::move(derived->groups);
      e.index.approvers = std::move(derived->approvers);
      e.index.task = std::move(derived->task);
    }
    out.push_back(std::move(e));
  }
  return out;
}

Result<AuditStore::Tail> AuditStore::Unindexed() {
  auto indexed = IndexHead();
  if (!indexed) return indexed.error();
  // Bounded by the writer's index lag (limits::kAuditIndexBatch entries or
  // kAuditIndexLag), or, after a crash, until the next start catches up.
  auto entries = Entries("audit_log", "audit_log.seq > ?", {*indexed}, "ORDER BY audit_log.seq");
  if (!entries) return entries.error();
  // Then what is only in the journal yet: all of it, however far the
  // ingest is behind (a reader that stopped at a bound would leave out the
  // newest records without saying so).
  auto journal = JournalAfter(entries->empty() ? *indexed : entries->back().seq,
                              std::numeric_limits<std::size_t>::max());
  if (!journal) return journal.error();
  for (auto& e : *journal) entries->push_back(std::move(e));
  return Tail{*indexed, std::move(*entries)};
}

Result<AuditStore::Tail> AuditStore::UnindexedWithRetry() {
  for (int attempt = 0;; ++attempt) {
    auto tail = Unindexed();
    // A journal read that lost the race with the writer's release: the
    // released entries are in the tables now, so reading again finds them.
    if (tail || attempt >= kJournalReadAttempts) return tail;
  }
}

Result<std::vector<AuditPair>> AuditStore::QueryAudit(const AuditQuery& q) {
  std::string where = "x.phase = 'decision'";
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
    where += std::string(" AND ") + (sqlite && driven ? "+x." : "x.") + col + " = ?";
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
  eq("task", q.task);
  if (!q.subresource.empty()) {
    // Not an indexed column: the canonical record (sorted keys, no spaces)
    // names it exactly. AuditQuery's subresource is [a-z] only (checked by
    // ValidateAuditQuery), so it holds no LIKE wildcard.
    where += " AND audit_log.record LIKE ?";
    p.push_back("%\"subresource\":\"" + q.subresource + "\"%");
  }
  const char* time_col = sqlite && driven ? "+x.time_ms" : "x.time_ms";
  if (q.since_ms) {
    where += std::string(" AND ") + time_col + " >= ?";
    p.push_back(q.since_ms);
  }
  if (q.until_ms) {
    where += std::string(" AND ") + time_col + " < ?";
    p.push_back(q.until_ms);
  }
  std::size_t limit = std::clamp<std::size_t>(q.limit, 1, limits::kAuditMaxQueryLimit);
  // The un-indexed tail is newer than everything indexed: its matches come first.
  auto tail = UnindexedWithRetry();
  if (!tail) return tail.error();
  std::vector<AuditEntry> decisions;
  for (auto it = tail->entries.rbegin(); it != tail->entries.rend() && decisions.size() < limit; ++it) {
    if (Matches(*it, q)) decisions.push_back(*it);
  }
  // The index only up to the head the tail was read after: what the writer
  // indexed since is in the tail already. ("+": SQLite must not drive the
  // query from the primary key's range instead of the filter's index.)
  where += sqlite ? " AND +x.seq <= ?" : " AND x.seq <= ?";
  p.push_back(tail->index_head);
  if (decisions.size() < limit) {
    // A group or approver filter drives the query from its (name, seq)
    // index, newest first, so the LIMIT stops the walk early; "seq IN
    // (subquery)" would collect every match first.
    std::string from = "audit_index x JOIN audit_log ON audit_log.seq = x.seq";
    std::string order = "ORDER BY x.seq DESC";
    if (!q.group.empty() || !q.approver.empty()) {
      bool by_group = !q.group.empty();
      from = std::string(by_group ? "audit_group f" : "audit_approver f") +
             " JOIN audit_index x ON x.seq = f.seq JOIN audit_log ON audit_log.seq = f.seq";
      where += by_group ? " AND f.grp = ?" : " AND f.approver = ?";
      p.push_back(by_group ? q.group : q.approver);
      if (by_group && !q.approver.empty()) {
        where += " AND f.seq IN (SELECT seq FROM audit_approver WHERE approver = ?)";
        p.push_back(q.approver);
      }
      order = "ORDER BY f.seq DESC";
    }
    auto indexed = Entries(from, where, p, order + " LIMIT " + std::to_string(limit - decisions.size()));
    if (!indexed) return indexed.error();
    for (auto& e : *indexed) decisions.push_back(std::move(e));
  }
  std::vector<AuditPair> out;
  out.reserve(decisions.size());
  if (decisions.empty()) return out;
  std::string in = std::string("x.phase = 'result' AND ") + (sqlite ? "+" : "") + "x.seq <= ? AND x.request_id IN (";
  std::vector<SqlValue> ids = {tail->index_head};
  for (std::size_t i = 0; i < decisions.size(); ++i) {
    in += i ? ",?" : "?";
    ids.push_back(decisions[i].index.request_id);
  }
  in += ")";
  auto results = Entries("audit_index x JOIN audit_log ON audit_log.seq = x.seq", in, ids, "");
  if (!results) return results.error();
  for (auto& e : tail->entries) {
    if (e.index.phase == "result") results->push_back(std::move(e));
  }
  for (auto& d : decisions) {
    AuditPair pair{std::move(d), std::nullopt};
    for (auto& r : *results) {
      if (r.index.request_id == pair.decision.index.request_id) pair.result = r;
    }
    out.push_back(std::move(pair));
  }
  return out;
}

Result<std::vector<AuditEntry>> AuditStore::AuditByRequest(const std::string& request_id) {
  auto tail = UnindexedWithRetry();
  if (!tail) return tail.error();
  const char* bounded = db_->dialect() == SqlDialect::kSqlite ? "x.request_id = ? AND +x.seq <= ?"
                                                              : "x.request_id = ? AND x.seq <= ?";
  auto out = Entries("audit_index x JOIN audit_log ON audit_log.seq = x.seq", bounded,
                     {request_id, tail->index_head}, "ORDER BY x.seq");
  if (!out) return out.error();
  for (auto& e : tail->entries) {
    if (e.index.request_id == request_id) out->push_back(std::move(e));
  }
  return out;
}

Result<std::vector<AuditEntry>> AuditStore::TableRange(std::int64_t after_seq, std::size_t limit) {
  return Entries("audit_log", "audit_log.seq > ?", {after_seq}, "ORDER BY audit_log.seq LIMIT " + std::to_string(limit));
}

Result<std::vector<AuditEntry>> AuditStore::AuditRange(std::int64_t after_seq, std::size_t limit) {
  for (int attempt = 0;; ++attempt) {
    auto rows = TableRange(after_seq, limit);
    if (!rows || rows->size() >= limit || !journal_) return rows;
    // The tables hold nothing more: the rest is in the journal.
    auto more = JournalAfter(rows->empty() ? after_seq : rows->back().seq, limit - rows->size());
    if (!more && attempt < kJournalReadAttempts) continue;
    if (!more) return more.error();
    for (auto& e : *more) rows->push_back(std::move(e));
    return rows;
  }
}

std::int64_t AuditStore::CountAudit() {
  auto rows = db_->Run("SELECT COUNT(*) FROM audit_log");
  if (!rows) return -1;
  std::int64_t n = SqlInt((*rows)[0][0]);
  if (!journal_) return n;
  auto table = TableHead();
  if (!table) return -1;
  auto tail = JournalAfter(table->seq, std::numeric_limits<std::size_t>::max());
  return tail ? n + static_cast<std::int64_t>(tail->size()) : -1;
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
    if (journal_) {
      // Only what the tables hold can be pruned; the rest waits for the next round.
      auto table = TableHead();
      if (!table) return table.error();
      if (anchor.seq > table->seq) {
        return Error::Unavailable("audit retention: entry " + std::to_string(anchor.seq) +
                                  " is still only in the journal");
      }
    }
    auto count = db_->Run("SELECT COUNT(*) FROM audit_log WHERE seq <= ?", {anchor.seq});
    if (!count) return count.error();
    for (const char* sql : {"DELETE FROM audit_log WHERE seq <= ?", "DELETE FROM audit_index WHERE seq <= ?",
                            "DELETE FROM audit_group WHERE seq <= ?",
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
