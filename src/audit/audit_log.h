// AuditLog: the gateway's writer of the audit chain. Entries are queued by
// the network threads and committed by one writer thread in group commits:
// everything queued while the previous transaction was flushing goes into
// the next one, so durability costs one flush per batch, not per request.
//
// The filter index that queries use is written behind the log, in batches
// (SQLite; PostgreSQL writes it with each commit): docs/audit.md. With the
// audit journal (AuditStore::StartJournal) a thread of its own, on a second
// SQLite connection, feeds the tables from the journal, so commits (journal
// writes) never wait for SQLite.
//
// Durability (docs/audit.md, "Durability"): with fsync_interval_ms = 0
// every group commit is on disk before any of its requests is forwarded;
// with the journal, a group no request waits for (results, refusals) is
// written at once and synced with the next group or within
// limits::kAuditUnawaitedSyncMax.
// With an interval, a commit is written to the OS (a SIGKILL of kubegate
// loses nothing) and the writer syncs it to disk at most that long after;
// with the journal, a worker's WakeWriter() then writes the group itself
// when no commit is in progress (no hand-over to the writer thread and
// back: "Commits in the caller's turn", docs/audit.md);
// a power loss can lose the records of that window. A sync that fails
// fails the log closed, as a failed write does, and turns the store back to
// a sync per commit until a commit succeeds again.
//
// Fail closed: an entry submitted with a `done` callback (a decision that
// gates forwarding) learns whether it was committed; on failure the caller
// refuses the request and the entry is not retried. Entries without a
// callback (denials, results) are retried until they commit, while the
// queue has room.
//
// The writer also signs checkpoints of the chain head (every N entries or T
// ms) and prunes entries older than the retention period, up to the newest
// checkpoint that is old enough (the chain then starts from that checkpoint).
//
//   AuditLog log(std::move(store), SystemClock(), signer.get(), {});
//   log.Submit(std::move(entry), [](const Result<bool>& committed) { ... });  // called on the writer thread
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

#include "audit/audit_entry.h"
#include "audit/audit_sink.h"
#include "audit/signer.h"
#include "common/clock.h"
#include "common/limits.h"
#include "audit/audit_store.h"

namespace kubegate {

struct AuditLogOptions {
  std::int64_t checkpoint_every = 1000;         // entries
  std::int64_t checkpoint_interval_ms = 60'000;
  std::int64_t retention_ms = 0;                // 0: keep forever
  // Session recordings named by pruned result entries are deleted from
  // here with them (retention follows the audit log). Empty: none.
  std::string recording_dir;
  std::int64_t prune_interval_ms = 3'600'000;
  std::size_t max_queue = limits::kAuditMaxQueue;
  // 0: each commit is synced to disk before it is acknowledged. Otherwise
  // commits are acknowledged once written and synced within this long.
  std::int64_t fsync_interval_ms = 0;
};

struct AuditStats {
  std::atomic<std::uint64_t> committed{0};      // entries
  std::atomic<std::uint64_t> batches{0};        // transactions committed
  std::atomic<std::uint64_t> failed_batches{0};
  std::atomic<std::uint64_t> dropped{0};        // entries given up (queue full)
  std::atomic<std::uint64_t> checkpoints{0};
  std::atomic<std::uint64_t> pruned{0};         // entries removed by retention
  std::atomic<std::uint64_t> queued{0};         // now waiting
  std::atomic<std::uint64_t> indexed{0};        // entries written to the filter index behind the log
  std::atomic<std::uint64_t> index_failures{0};
  std::atomic<std::uint64_t> syncs{0};          // interval syncs to disk done
  std::atomic<std::uint64_t> failed_syncs{0};
  std::atomic<bool> healthy{true};              // the last commit succeeded
};

class AuditLog final : public AuditSink {
 public:

  AuditLog(std::unique_ptr<AuditStore> store, const Clock& clock, const Signer* signer, AuditLogOptions options);
  // Commits what is queued (one attempt) and stops the writer.
  ~AuditLog() override;

  // Queues `entry`. Returns false, without calling `done`, when the queue is
  // full. `done` runs on the writer thread (or on the thread whose
  // WakeWriter() committed the group) and must not block; while the
  // store is known to be down (after a failed write, until the writer's
  // next attempt) an entry with a `done` is refused at once instead: `done`
  // runs on the caller's thread, inside Submit, and nothing is queued.
  bool Submit(AuditEntry entry, Done done = nullptr) override;
  bool SubmitLater(AuditEntry entry, Done done = nullptr) override;
  // With the journal and audit.fsync: interval, commits what is queued on
  // the calling thread when no commit is in progress and nothing is failing
  // (the group's `done`s run here, after the write); else wakes the writer.
  void WakeWriter() override;
  bool healthy() const override { return stats_.healthy.load(); }
  // Waits up to `limit` for the store to take a write again (tests, probes).
  bool WaitUntilHealthy(std::chrono::milliseconds limit);
  // Blocks until every entry queued before the call has had a commit attempt.
  void Flush();
  // Waits up to `limit` until the writer thread sleeps with nothing queued
  // and nothing due (tests: a WakeWriter() after it finds no commit in
  // progress).
  bool WaitUntilWriterIdle(std::chrono::milliseconds limit);
  // Waits up to `limit` until the filter index holds every entry up to
  // `seq` (tests; the index is written behind the log).
  bool WaitUntilIndexed(std::int64_t seq, std::chrono::milliseconds limit);

  const AuditStats& stats() const { return stats_; }

 private:
  struct Pending {
    AuditEntry entry;
    Done done;
    std::uint64_t ticket;
  };

  // Submit's queueing; false when `entry` was not taken. `refused`: `done`
  // already ran (the store is known down), nothing queued.
  bool Enqueue(AuditEntry& entry, Done& done, bool& refused);
  // WakeWriter's commit on the caller's thread, with commit_mu_ held (and
  // released before the `done`s run). False: the writer must take over
  // (not allowed now, a failed write, or more queued than one group).
  bool CommitHere(std::unique_lock<std::mutex>& commit);
  void Run();
  // The ingest thread (journal): takes what the writer hands over and runs
  // IndexIfDue on its own store.
  void RunIngest();
  // After a commit: the entries the index must take next (kept copies).
  void HandToIndex(std::vector<AuditEntry>& entries);
  AuditStore& IndexStore() { return ingest_store_ ? *ingest_store_ : *store_; }
  // Checkpoints, the hourly ANALYZE and retention, with commit_mu_ held by
  // `commit`; the store work runs with it released when the journal takes
  // the commits (relocked before it returns).
  void Housekeeping(std::unique_lock<std::mutex>& commit);
  void Prune(std::int64_t now);
  // Writes the filter index behind the log (AuditStore::CatchUpIndex) when
  // kAuditIndexBatch entries wait, the oldest has waited kAuditIndexLag, or
  // `force` (start, shutdown), in transactions of kAuditIndexChunk entries
  // on the writer thread, so a waiting commit is not held up behind a long
  // catch-up (2,048 on the ingest thread, which no commit waits for:
  // kIngestChunk in audit_log.cc). A failure is logged and retried later.
  void IndexIfDue(bool force);
  // Milliseconds until the filter index is due; -1 when nothing waits.
  std::int64_t MillisUntilIndex() const;
  // Interval durability: syncs when the oldest unsynced commit is due (or
  // `force`). False when the sync failed (the log then fails closed).
  // `commit` (held) is released during the disk sync when the journal is
  // written (CommitHere may write the next group meanwhile).
  Result<bool> SyncIfDue(bool force, std::unique_lock<std::mutex>& commit);
  // After a commit: starts the sync window, or ends the per-commit syncs
  // that follow a failed sync. `awaited`: a request waited for the group
  // (with the journal, a group nobody waited for was written unsynced).
  void NoteCommitted(bool awaited);
  // A group's commit succeeded (with commit_mu_): the head, stats, sync
  // timing, and its entries handed to the index (moved out of `entries`).
  void NoteGroupCommitted(const ChainHead& head, std::vector<AuditEntry>& entries, bool awaited);
  // Milliseconds until the pending sync is due; -1 when none is pending.
  std::int64_t MillisUntilSync() const;
  // A commit or a sync after a failed sync succeeded: forwarding again.
  void MarkHealthy();
  // After a failed write or sync: decisions are refused until the next attempt.
  void RefuseUntilNextAttempt(const std::string& why);

  std::unique_ptr<AuditStore> store_;
  const Clock& clock_;
  const Signer* signer_;
  AuditLogOptions options_;
  AuditStats stats_;

  // Held by whoever commits a group (the writer thread for each of its
  // turns, or CommitHere), so groups are written in queue order and the
  // commit state below has one writer at a time. Taken before mu_.
  std::mutex commit_mu_;
  std::mutex mu_;
  std::condition_variable work_cv_;
  std::condition_variable flushed_cv_;
  std::condition_variable healthy_cv_;
  // Between a failed write and the writer's next attempt: decisions are
  // refused at once rather than wait up to kAuditRetryMax for an attempt.
  bool refusing_ = false;
  std::string refusal_;
  std::deque<Pending> queue_;
  std::uint64_t next_ticket_ = 0;
  std::uint64_t attempted_ticket_ = 0;
  bool stop_ = false;
  bool writer_due_ = false;  // CommitHere left the writer a sync or checkpoint to time
  bool writer_idle_ = false;  // the writer sleeps in its idle wait (WaitUntilWriterIdle)

  // The ingest thread's store and hand-over (journal only).
  std::unique_ptr<AuditStore> ingest_store_;
  std::mutex ix_mu_;
  std::condition_variable ix_cv_;
  std::condition_variable indexed_cv_;
  std::vector<AuditEntry> ix_handed_;   // committed, not yet taken by the ingest thread
  bool ix_overflow_ = false;            // copies dropped: read them back from the log
  std::int64_t ix_since_ms_ = -1;       // when the oldest handed entry was committed
  std::int64_t indexed_seq_ = 0;        // the index head as last written (WaitUntilIndexed)
  bool ix_stop_ = false;
  std::thread ingest_;

  // Writer thread only (the index state below: the ingest thread's when it runs).
  ChainHead head_;
  std::int64_t last_checkpoint_seq_ = 0;
  std::int64_t last_checkpoint_ms_ = 0;
  std::int64_t last_prune_ms_ = 0;
  std::int64_t last_optimize_ms_ = 0;
  std::int64_t unsynced_since_ms_ = -1;  // oldest commit not yet synced; -1: none
  std::vector<AuditEntry> unindexed_;    // committed, not yet in the filter index
  std::int64_t unindexed_since_ms_ = -1;
  bool index_from_log_ = true;           // entries may wait in the log itself (start, dropped copies)
  bool index_behind_ = false;            // the last catch-up stopped for waiting commits: due at once
  std::atomic<std::size_t> last_group_entries_{0};  // entries in the last group commit (read by the ingest thread)
  std::int64_t index_retry_at_ms_ = 0;   // after a failed index write: not before this
  bool deferred_ = false;                // commits are not synced by the store itself
  bool sync_failed_ = false;             // the last sync failed (a sync success heals)

  std::thread writer_;
};

}  // namespace kubegate
