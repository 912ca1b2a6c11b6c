// AuditStore: the audit log's tables (the hash chain, its index columns,
// checkpoints and the retention anchor) over a Database, so SQLite and
// PostgreSQL run the same SQL and the same tests. Its migrations are applied
// by Open().
//
// Not thread-safe: one AuditStore per thread (the audit writer owns one; the
// REST API's reader and the CLI open their own).
//
// SQLite with the journal (StartJournal; the gateway's default): AppendAudit
// writes the audit journal (audit/audit_journal.h) and CatchUpIndex feeds
// audit_log and the filter index from it behind. Every reader of a SQLite
// file reads the journal's tail after the tables, so it answers the same.
//
//   auto store = AuditStore::Open(StoreConfig{.sqlite_path = "kubegate-data/kubegate.db"});
//   std::vector<AuditEntry> batch = ...;
//   auto head = (*store)->AppendAudit(batch);   // one transaction; assigns seq and hashes
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "audit/audit_entry.h"
#include "audit/audit_journal.h"
#include "common/result.h"
#include "store/database.h"

namespace kubegate {

// Filters of `kubegate audit`; empty fields match everything. Matches
// decision entries; results are joined by request id.
struct AuditQuery {
  std::int64_t since_ms = 0;   // inclusive; 0: no bound
  std::int64_t until_ms = 0;   // exclusive; 0: no bound
  std::string actor, group, kind, verb, resource, namespace_, name, decision, approver, approval_id, request_id;
  std::string task;  // per-task tokens: everything this task did
  std::string subresource;     // "exec" for --resource pods/exec
  std::size_t limit = 100;     // newest first
};

// A decision entry with its result entry, if one was appended.
struct AuditPair {
  AuditEntry decision;
  std::optional<AuditEntry> result;
};

class AuditStore {
 public:
  static Result<std::unique_ptr<AuditStore>> Open(const StoreConfig& config);
  // Over an already open connection (tests inject faulty ones).
  static Result<std::unique_ptr<AuditStore>> Open(std::unique_ptr<SqlConnection> conn);

  explicit AuditStore(std::unique_ptr<Database> db) : db_(std::move(db)) {}
  virtual ~AuditStore() = default;

  // Makes this store the writer of its SQLite file's journal: appends go to
  // the journal from now on. Cuts a torn tail and checks the journal
  // continues the tables (AuditJournal::Recover). Fails for PostgreSQL, an
  // in-memory database, or a journal another process writes.
  Result<ChainHead> StartJournal(JournalFileOpener opener = OpenPosixJournalFile);
  bool journal_writer() const { return journal_writer_; }
  // Journal writer: whether the next AppendAudit starts a new segment
  // (syncing the full one, creating a file and syncing its directory).
  bool journal_starts_segment() const { return journal_writer_ && journal_->starts_segment(); }
  // Journal writer, off the request path: makes the next segment's file
  // ready (AuditJournal::PrepareNextSegment). No-op without a journal.
  Result<bool> PrepareJournalSegment() { return journal_writer_ ? journal_->PrepareNextSegment() : true; }
  // A second store on the same SQLite file that feeds the tables from this
  // store's journal (CatchUpIndex), for a thread of its own: the writer's
  // commits then never wait for SQLite. Only after StartJournal.
  Result<std::unique_ptr<AuditStore>> OpenIngest();
  // The writer's journal (nullptr unless StartJournal succeeded): tests.
  AuditJournal* journal() { return journal_writer_ ? journal_.get() : nullptr; }

  std::string Describe() const { return db_->Describe(); }
  int SchemaVersion() { return db_->SchemaVersion(); }
  // Refreshes the query planner's statistics (run at open and hourly by the writer).
  void Optimize() { db_->Optimize(); }
  Result<bool> EnsureConnected() { return db_->EnsureConnected(); }
  // Durability of AppendAudit's commits (the writer's fsync setting): the
  // journal's when this store writes one.
  Result<bool> SetCommitSync(CommitSync sync);
  Result<bool> SyncToDisk();

  // Appends `entries` at the head of the chain in one transaction, filling
  // in seq, prev_hash and hash. All or nothing; safe with several gateway
  // processes appending to one PostgreSQL database (the head row is locked).
  // SQLite: the filter index is not written here but by CatchUpIndex, in
  // large batches off the request path; PostgreSQL writes it here (several
  // replicas' entries interleave). With the journal, the entries are
  // written to it alone (one write, synced per the commit setting).
  // `awaited`: false when no request waits for these entries (results,
  // refusals); with the journal their sync may then wait for the next
  // group's or for SyncToDisk (the caller's bound), like audit.fsync:
  // interval. Without the journal every commit is synced as set.
  virtual Result<ChainHead> AppendAudit(std::vector<AuditEntry>& entries, bool awaited = true);
  Result<ChainHead> AuditHead();

  // Indexes up to `limit` entries after the index head, in one transaction:
  // the first of `known` (the writer's own, already appended, in seq order;
  // those indexed are moved out of it) when they continue the index, else
  // entries read back from the log. Entries of `known` at or below the index
  // head are dropped from it. Returns how many it indexed. With the journal, the
  // entries go into audit_log and the index together (from `known` or the
  // journal), and the journal's segments now wholly in SQLite are deleted.
  Result<std::int64_t> CatchUpIndex(std::vector<AuditEntry>* known, std::size_t limit);
  // Whether AppendAudit writes the filter index itself (PostgreSQL).
  bool indexes_in_commit() const { return db_->dialect() == SqlDialect::kPostgres; }
  // Every entry with seq <= this is in the filter index.
  Result<std::int64_t> IndexHead();
  // The filter index's rows (with group and approver lists) for seqs in
  // [first_seq, last_seq], as stored: for `audit verify`.
  Result<std::map<std::int64_t, AuditIndex>> IndexedRange(std::int64_t first_seq, std::int64_t last_seq);

  Result<std::vector<AuditPair>> QueryAudit(const AuditQuery& q);
  // Every entry of one request, in chain order.
  Result<std::vector<AuditEntry>> AuditByRequest(const std::string& request_id);
  // Entries with seq > after_seq, in order, at most `limit`.
  Result<std::vector<AuditEntry>> AuditRange(std::int64_t after_seq, std::size_t limit);
  std::int64_t CountAudit();

  Result<bool> AddCheckpoint(const Checkpoint& c);
  Result<std::vector<Checkpoint>> Checkpoints();
  // The signed checkpoint the chain starts from after pruning, if any.
  Result<std::optional<Checkpoint>> AuditAnchor();
  // Deletes every entry up to and including `anchor.seq` and makes `anchor`
  // the chain's start, in one transaction. Returns the entries deleted.
  Result<std::int64_t> PruneAudit(const Checkpoint& anchor);

  // The database underneath: for tests and repair tools that must reach
  // the rows themselves (forging an entry to see verify catch it).
  Database& database() { return *db_; }

 private:
  // Entries of `from` (audit_log, possibly joined with the index aliased x
  // and a list table aliased f); lists from each entry's record.
  Result<std::vector<AuditEntry>> Entries(const std::string& from, const std::string& where,
                                          const std::vector<SqlValue>& params, const std::string& tail);
  // The log's entries after the index head, in seq order, and that head:
  // readers take the index only up to it (the writer may index meanwhile).
  struct Tail {
    std::int64_t index_head = 0;
    std::vector<AuditEntry> entries;
  };
  Result<Tail> Unindexed();
  Result<Tail> UnindexedWithRetry();
  // Writes `entries`' index rows and moves the index head to the last one.
  Result<bool> IndexEntries(const std::vector<AuditEntry>& entries);
  // Writes `entries` into audit_log and moves the head row to the last one.
  Result<bool> InsertLogEntries(const std::vector<AuditEntry>& entries);
  // Entries of audit_log alone (not the journal's) with seq > after_seq.
  Result<std::vector<AuditEntry>> TableRange(std::int64_t after_seq, std::size_t limit);
  // The head row of audit_log (not the journal's).
  Result<ChainHead> TableHead();
  // The journal's entries after `after` (at most `limit`), reading again
  // while the writer releases what was asked for. Empty without a journal.
  Result<std::vector<AuditEntry>> JournalAfter(std::int64_t after, std::size_t limit);

  std::unique_ptr<Database> db_;
  // SQLite on a file: its journal (read by every store, written by one).
  std::shared_ptr<AuditJournal> journal_;
  std::string sqlite_path_;
  bool journal_writer_ = false;   // AppendAudit writes the journal
  bool journal_ingest_ = false;   // CatchUpIndex feeds the tables from the journal
  ChainHead journal_head_;  // writer: the chain's head, in the journal
};

}  // namespace kubegate
