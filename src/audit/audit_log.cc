#include "audit/audit_log.h"

#include <algorithm>
#include <filesystem>

#include <spdlog/spdlog.h>

#include "common/json_fields.h"
#include "common/thread_name.h"

namespace kubegate {
namespace {

// Entries per transaction of the ingest thread (journal): no commit waits
// behind it, so it takes four times the writer's chunk
// (limits::kAuditIndexChunk); a transaction then rewrites each table's and
// index's last pages a quarter as often. Another SQLite writer (an approval)
// waits for one such transaction at most, about 10-20 ms. Replay: 6.81 /
// 6.75 -> 6.22 / 6.06 us per entry (docs/performance.md).
constexpr std::size_t kIngestChunk = 2048;

}  // namespace

AuditLog::AuditLog(std::unique_ptr<AuditStore> store, const Clock& clock, const Signer* signer, AuditLogOptions options)
    : store_(std::move(store)), clock_(clock), signer_(signer), options_(options) {
  if (auto head = store_->AuditHead()) head_ = *head;
  if (auto cps = store_->Checkpoints(); cps && !cps->empty()) {
    last_checkpoint_seq_ = cps->back().seq;
    last_checkpoint_ms_ = cps->back().time_ms;
  } else {
    last_checkpoint_ms_ = clock_.NowMillis();
  }
  if (options_.fsync_interval_ms > 0) {
    if (auto ok = store_->SetCommitSync(CommitSync::kDeferred); !ok) {
      // Stays with a sync per commit: slower, never less safe.
      spdlog::warn("audit store {}: cannot defer syncs ({}); each commit is synced", store_->Describe(),
                   ok.error().message);
      options_.fsync_interval_ms = 0;
    } else {
      deferred_ = true;
    }
  }
  if (store_->journal_writer()) {
    if (auto ingest = store_->OpenIngest()) {
      ingest_store_ = std::move(*ingest);
    } else {
      spdlog::warn("audit store {}: no second connection for the journal's ingest ({}); the writer feeds the tables",
                   store_->Describe(), ingest.error().message);
    }
  }
  writer_ = std::thread([this] {
    NameThisThread("kg-audit-write");
    Run();
  });
  if (ingest_store_) {
    ingest_ = std::thread([this] {
      NameThisThread("kg-audit-ingest");
      RunIngest();
    });
  }
}

AuditLog::~AuditLog() {
  {
    std::lock_guard lk(mu_);
    stop_ = true;
  }
  work_cv_.notify_all();
  writer_.join();
  if (ingest_.joinable()) {
    {
      std::lock_guard lk(ix_mu_);
      ix_stop_ = true;
    }
    ix_cv_.notify_all();
    ingest_.join();
  }
}

bool AuditLog::WaitUntilIndexed(std::int64_t seq, std::chrono::milliseconds limit) {
  std::unique_lock lk(ix_mu_);
  return indexed_cv_.wait_for(lk, limit, [&] { return indexed_seq_ >= seq; });
}

void AuditLog::HandToIndex(std::vector<AuditEntry>& entries) {
  if (store_->indexes_in_commit()) return;
  const std::int64_t now = clock_.NowMillis();
  if (!ingest_store_) {
    if (unindexed_since_ms_ < 0) unindexed_since_ms_ = now;
    if (unindexed_.size() + entries.size() > limits::kAuditIndexMaxKept) {
      unindexed_.clear();  // read back from the log instead
      index_from_log_ = true;
    } else {
      for (auto& e : entries) unindexed_.push_back(std::move(e));
    }
    return;
  }
  bool wake;
  {
    std::lock_guard lk(ix_mu_);
    // The ingest thread wakes for the first entry (to time the lag) and
    // once a batch waits; not for every commit.
    wake = ix_handed_.empty();
    if (ix_since_ms_ < 0) ix_since_ms_ = now;
    if (ix_handed_.size() + entries.size() > limits::kAuditIndexMaxKept) {
      ix_handed_.clear();
      ix_overflow_ = true;
    } else {
      for (auto& e : entries) ix_handed_.push_back(std::move(e));
    }
    wake = wake || ix_handed_.size() >= limits::kAuditIndexBatch;
  }
  if (wake) ix_cv_.notify_one();
}

void AuditLog::RunIngest() {
  auto publish = [this] {
    auto head = IndexStore().IndexHead();
    if (!head) return;
    {
      std::lock_guard lk(ix_mu_);
      indexed_seq_ = *head;
    }
    indexed_cv_.notify_all();
  };
  IndexIfDue(true);  // what a previous process left in the journal
  publish();
  std::unique_lock lk(ix_mu_);
  while (true) {
    // Take what the writer handed over.
    if (ix_overflow_ || unindexed_.size() + ix_handed_.size() > limits::kAuditIndexMaxKept) {
      unindexed_.clear();
      ix_handed_.clear();
      index_from_log_ = true;
      ix_overflow_ = false;
    }
    for (auto& e : ix_handed_) unindexed_.push_back(std::move(e));
    ix_handed_.clear();
    if (ix_since_ms_ >= 0 && (unindexed_since_ms_ < 0 || ix_since_ms_ < unindexed_since_ms_)) {
      unindexed_since_ms_ = ix_since_ms_;
    }
    ix_since_ms_ = -1;
    if (ix_stop_) break;
    std::int64_t ms = MillisUntilIndex();
    if (ms == 0) {
      lk.unlock();
      IndexIfDue(false);
      publish();
      lk.lock();
    } else if (ms < 0) {
      ix_cv_.wait(lk, [&] { return ix_stop_ || !ix_handed_.empty() || ix_overflow_; });
    } else {
      ix_cv_.wait_for(lk, std::chrono::milliseconds(ms), [&] {
        return ix_stop_ || ix_overflow_ || unindexed_.size() + ix_handed_.size() >= limits::kAuditIndexBatch;
      });
    }
  }
  lk.unlock();
  IndexIfDue(true);  // everything the writer committed before it stopped
  publish();
}

bool AuditLog::Enqueue(AuditEntry& entry, Done& done, bool& refused) {
  std::unique_lock lk(mu_);
  if (done && refusing_) {
    Error e = Error::Unavailable(refusal_);
    lk.unlock();
    refused = true;
    done(Result<bool>(e));
    return true;
  }
  if (queue_.size() >= options_.max_queue || stop_) {
    if (!done) stats_.dropped++;
    return false;
  }
  queue_.push_back(Pending{std::move(entry), std::move(done), ++next_ticket_});
  stats_.queued = queue_.size();
  return true;
}

bool AuditLog::Submit(AuditEntry entry, Done done) {
  bool refused = false;
  if (!Enqueue(entry, done, refused)) return false;
  if (!refused) work_cv_.notify_one();
  return true;
}

bool AuditLog::SubmitLater(AuditEntry entry, Done done) {
  bool refused = false;
  return Enqueue(entry, done, refused);
}

// The queue was changed under mu_ before this, and the writer tests it
// under mu_ before it sleeps: a wake-up cannot be lost.
void AuditLog::WakeWriter() {
  if (options_.fsync_interval_ms > 0 && ingest_store_) {
    std::unique_lock commit(commit_mu_, std::try_to_lock);
    if (commit.owns_lock() && CommitHere(commit)) return;
  }
  work_cv_.notify_one();
}

bool AuditLog::CommitHere(std::unique_lock<std::mutex>& commit) {
  // Only a write to the OS is on this path: no sync per commit (interval),
  // no new segment (it syncs the full one), nothing failing (the writer
  // refuses, retries and backs off), and the tables fed by the ingest
  // thread, not here.
  if (!deferred_ || !stats_.healthy.load() || store_->journal_starts_segment()) return false;
  std::vector<Pending> batch;
  {
    std::lock_guard lk(mu_);
    if (refusing_ || stop_ || queue_.size() > limits::kAuditMaxBatch) return false;
    batch.reserve(queue_.size());
    for (auto& p : queue_) batch.push_back(std::move(p));
    queue_.clear();
    stats_.queued = 0;
  }
  if (batch.empty()) return true;
  std::vector<AuditEntry> entries;
  entries.reserve(batch.size());
  for (auto& p : batch) entries.push_back(std::move(p.entry));
  const bool awaited = std::any_of(batch.begin(), batch.end(), [](const Pending& p) { return p.done != nullptr; });
  auto head = store_->AppendAudit(entries, awaited);
  if (!head) {
    // Back in front, as they were: the writer attempts them again and
    // fails closed if the store still refuses.
    std::lock_guard lk(mu_);
    for (std::size_t i = batch.size(); i-- > 0;) {
      batch[i].entry = std::move(entries[i]);
      queue_.push_front(std::move(batch[i]));
    }
    stats_.queued = queue_.size();
    return false;
  }
  const bool unsynced_before = unsynced_since_ms_ >= 0;
  NoteGroupCommitted(*head, entries, awaited);
  // The writer times syncs and checkpoints: it learns of the first unsynced
  // commit (it may be asleep until the next checkpoint) and of a due one.
  const bool due = (!unsynced_before && unsynced_since_ms_ >= 0) ||
                   (signer_ && head_.seq - last_checkpoint_seq_ >= options_.checkpoint_every);
  commit.unlock();
  {
    std::lock_guard lk(mu_);
    attempted_ticket_ = std::max(attempted_ticket_, batch.back().ticket);
    if (due) writer_due_ = true;
  }
  flushed_cv_.notify_all();
  if (due) work_cv_.notify_one();
  const Result<bool> ok = true;
  for (auto& p : batch) {
    if (p.done) p.done(ok);
  }
  return true;
}

bool AuditLog::WaitUntilHealthy(std::chrono::milliseconds limit) {
  std::unique_lock lk(mu_);
  return healthy_cv_.wait_for(lk, limit, [&] { return stats_.healthy.load() || stop_; }) && stats_.healthy;
}

void AuditLog::Flush() {
  std::unique_lock lk(mu_);
  std::uint64_t target = next_ticket_;
  flushed_cv_.wait(lk, [&] { return attempted_ticket_ >= target || stop_; });
}

bool AuditLog::WaitUntilWriterIdle(std::chrono::milliseconds limit) {
  std::unique_lock lk(mu_);
  return flushed_cv_.wait_for(lk, limit, [&] { return writer_idle_ && queue_.empty() && !writer_due_; });
}

void AuditLog::Run() {
  auto backoff = limits::kAuditRetryMin;
  if (!ingest_store_) IndexIfDue(true);  // what a previous process left unindexed
  std::unique_lock lk(mu_);
  while (true) {
    if (queue_.empty() && !writer_due_) {
      if (stop_) break;
      // Wake for housekeeping even when idle: the next checkpoint or prune.
      lk.unlock();
      std::int64_t wait_ms = options_.checkpoint_interval_ms;
      {
        std::lock_guard commit(commit_mu_);  // the commit state CommitHere changes
        if (options_.retention_ms) wait_ms = std::min(wait_ms, options_.prune_interval_ms);
        if (std::int64_t sync_ms = MillisUntilSync(); sync_ms >= 0) wait_ms = std::min(wait_ms, sync_ms);
        if (std::int64_t index_ms = ingest_store_ ? -1 : MillisUntilIndex(); index_ms >= 0) {
          wait_ms = std::min(wait_ms, index_ms);
        }
      }
      wait_ms = std::max<std::int64_t>(wait_ms, 1);
      lk.lock();
      writer_idle_ = true;
      flushed_cv_.notify_all();
      work_cv_.wait_for(lk, std::chrono::milliseconds(wait_ms),
                        [&] { return stop_ || !queue_.empty() || writer_due_; });
      writer_idle_ = false;
    }
    writer_due_ = false;
    lk.unlock();
    // The next journal segment's file, made while nothing waits for it (the
    // one before was taken by the segment a commit just started). A failure
    // leaves the next segment to be made as before, where its error counts.
    (void)store_->PrepareJournalSegment();
    std::unique_lock commit(commit_mu_);
    lk.lock();
    std::vector<Pending> batch;
    std::size_t n = std::min(queue_.size(), limits::kAuditMaxBatch);
    batch.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
      batch.push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
    stats_.queued = queue_.size();
    lk.unlock();

    bool failed = false;
    if (!batch.empty()) {
      std::vector<AuditEntry> entries;
      entries.reserve(batch.size());
      for (auto& p : batch) entries.push_back(std::move(p.entry));
      // A group nobody waits for (results, refusals) need not be synced
      // before the writer goes on (journal): the next group's sync, or
      // SyncIfDue within kAuditUnawaitedSyncMax, covers it.
      const bool awaited = std::any_of(batch.begin(), batch.end(), [](const Pending& p) { return p.done != nullptr; });
      auto head = store_->AppendAudit(entries, awaited);
      if (head) {
        NoteGroupCommitted(*head, entries, awaited);
        MarkHealthy();
        backoff = limits::kAuditRetryMin;
        // The `done`s run without commit_mu_: one that queues and wakes
        // again on this thread must not find it held.
        commit.unlock();
        Result<bool> ok = true;
        for (auto& p : batch) {
          if (p.done) p.done(ok);
        }
        commit.lock();
      } else {
        failed = true;
        stats_.failed_batches++;
        if (stats_.healthy.exchange(false)) {
          spdlog::error("audit store {} refused a write; requests fail closed until it recovers: {}",
                        store_->Describe(), head.error().message);
        }
        for (std::size_t i = 0; i < batch.size(); ++i) batch[i].entry = std::move(entries[i]);
      }
      if (failed) {
        Error e = Error::Unavailable("kubegate cannot write its audit log, so the request was not forwarded: " +
                                     head.error().message);
        RefuseUntilNextAttempt(e.message);
        std::vector<Pending> retry;
        commit.unlock();
        for (auto& p : batch) {
          if (p.done) {
            p.done(Result<bool>(e));
          } else {
            retry.push_back(std::move(p));
          }
        }
        commit.lock();
        lk.lock();
        // Keep order: retried entries go back in front of newer ones.
        for (auto it = retry.rbegin(); it != retry.rend(); ++it) {
          if (queue_.size() >= options_.max_queue || stop_) {
            stats_.dropped++;
          } else {
            queue_.push_front(std::move(*it));
          }
        }
        stats_.queued = queue_.size();
        lk.unlock();
      }
    }
    if (!failed) {
      Housekeeping(commit);
      if (!ingest_store_) IndexIfDue(false);
      if (auto synced = SyncIfDue(false, commit); !synced) {
        failed = true;
        RefuseUntilNextAttempt("kubegate cannot sync its audit log to disk, so the request was not forwarded: " +
                               synced.error().message);
      }
    }
    commit.unlock();

    lk.lock();
    if (!batch.empty()) attempted_ticket_ = std::max(attempted_ticket_, batch.back().ticket);
    flushed_cv_.notify_all();
    if (failed) {
      if (stop_) {
        // Shutting down with the store away: what could not be written is lost.
        stats_.dropped += queue_.size();
        attempted_ticket_ = next_ticket_;
        queue_.clear();
        flushed_cv_.notify_all();
        break;
      }
      work_cv_.wait_for(lk, backoff, [&] { return stop_; });
      refusing_ = false;  // the next attempt decides again
      backoff = std::min(backoff * 2, std::chrono::duration_cast<std::chrono::milliseconds>(limits::kAuditRetryMax));
    }
  }
  attempted_ticket_ = next_ticket_;
  flushed_cv_.notify_all();
  lk.unlock();
  std::unique_lock commit(commit_mu_);
  if (!ingest_store_) IndexIfDue(true);
  if (auto synced = SyncIfDue(true, commit); !synced) {
    spdlog::error("audit store {}: the last sync to disk failed at shutdown: {}", store_->Describe(),
                  synced.error().message);
  }
}

void AuditLog::NoteGroupCommitted(const ChainHead& head, std::vector<AuditEntry>& entries, bool awaited) {
  head_ = head;
  last_group_entries_.store(entries.size(), std::memory_order_relaxed);
  NoteCommitted(awaited);
  const std::size_t committed = entries.size();
  HandToIndex(entries);
  stats_.committed += committed;
  stats_.batches++;
}

void AuditLog::NoteCommitted(bool awaited) {
  if (options_.fsync_interval_ms <= 0) {
    // Per commit. With the journal a group nobody waited for was written
    // unsynced; a synced group covers every write before it.
    if (!store_->journal_writer()) return;
    if (awaited) {
      unsynced_since_ms_ = -1;
    } else if (unsynced_since_ms_ < 0) {
      unsynced_since_ms_ = clock_.NowMillis();
    }
    return;
  }
  if (deferred_) {
    if (unsynced_since_ms_ < 0) unsynced_since_ms_ = clock_.NowMillis();
    return;
  }
  // Synced per commit since a failed sync: this commit synced the WAL, and
  // with it every commit before it. Defer again.
  unsynced_since_ms_ = -1;
  if (store_->SetCommitSync(CommitSync::kDeferred)) deferred_ = true;
}

std::int64_t AuditLog::MillisUntilIndex() const {
  if (store_->indexes_in_commit()) return -1;
  const std::int64_t now = clock_.NowMillis();
  if (now < index_retry_at_ms_) return index_retry_at_ms_ - now;  // after a failure
  if (index_from_log_ || index_behind_) return 0;
  if (unindexed_since_ms_ < 0) return -1;
  if (unindexed_.size() >= limits::kAuditIndexBatch) return 0;
  return std::max<std::int64_t>(0, unindexed_since_ms_ + limits::kAuditIndexLag.count() - now);
}

void AuditLog::IndexIfDue(bool force) {
  if (store_->indexes_in_commit()) return;
  if (!force && MillisUntilIndex() != 0) return;
  // One transaction per chunk. Commits waiting meanwhile go first once this
  // call has indexed its budget (twice the last group, so the index keeps
  // up with the log); the rest is due again at once.
  const std::size_t chunk = ingest_store_ ? kIngestChunk : limits::kAuditIndexChunk;
  const std::size_t budget = std::max(chunk, 2 * last_group_entries_.load(std::memory_order_relaxed));
  std::size_t done = 0;
  index_behind_ = false;
  while (true) {
    auto n = IndexStore().CatchUpIndex(&unindexed_, chunk);
    if (!n) {
      stats_.index_failures++;
      // Tried again after the usual lag, not in a tight loop.
      index_retry_at_ms_ = clock_.NowMillis() + limits::kAuditIndexLag.count();
      spdlog::warn("audit store {}: writing the filter index failed (queries scan the unindexed entries; retried): {}",
                   store_->Describe(), n.error().message);
      return;
    }
    stats_.indexed += static_cast<std::uint64_t>(*n);
    done += static_cast<std::size_t>(*n);
    if (static_cast<std::size_t>(*n) < chunk && unindexed_.empty()) index_from_log_ = false;
    if (unindexed_.empty() && !index_from_log_) break;
    if (*n == 0) break;  // nothing continues the index now: the kept copies wait for the log
    // On the writer thread, waiting commits go first (the ingest thread
    // holds up no commit).
    if (!force && !ingest_store_ && done >= budget && stats_.queued.load() > 0) {
      index_behind_ = true;
      break;
    }
  }
  unindexed_since_ms_ = unindexed_.empty() ? -1 : clock_.NowMillis();
}

void AuditLog::RefuseUntilNextAttempt(const std::string& why) {
  // Known down from now until the next attempt: decisions that arrive
  // meanwhile are refused at once (Submit).
  std::lock_guard rk(mu_);
  refusing_ = true;
  refusal_ = why;
}

std::int64_t AuditLog::MillisUntilSync() const {
  if (unsynced_since_ms_ < 0) return -1;
  const std::int64_t delay =
      options_.fsync_interval_ms > 0 ? options_.fsync_interval_ms : limits::kAuditUnawaitedSyncMax.count();
  return std::max<std::int64_t>(0, unsynced_since_ms_ + delay - clock_.NowMillis());
}

Result<bool> AuditLog::SyncIfDue(bool force, std::unique_lock<std::mutex>& commit) {
  if (unsynced_since_ms_ < 0 || (!force && MillisUntilSync() > 0)) return true;
  const std::uint64_t batches = stats_.batches.load();
  const std::int64_t started_ms = clock_.NowMillis();
  // The journal is synced without holding up the next group's commit (with
  // an interval, commits do not wait for syncs). SQLite and PostgreSQL
  // sync on the writer's own connection, which nothing else uses.
  const bool off_lock = store_->journal_writer();
  if (off_lock) commit.unlock();
  auto ok = store_->SyncToDisk();
  if (off_lock) commit.lock();
  if (!ok) {
    stats_.failed_syncs++;
    sync_failed_ = true;
    // Back to a sync per commit: while the disk refuses, commits fail and
    // the log fails closed on its own; the next commit that succeeds has
    // synced everything before it too (NoteCommitted).
    if (store_->SetCommitSync(CommitSync::kEach)) deferred_ = false;
    if (stats_.healthy.exchange(false)) {
      spdlog::error("audit store {} could not sync to disk; requests fail closed until a sync succeeds: {}",
                    store_->Describe(), ok.error().message);
    }
    return ok;
  }
  // A commit during the sync may not be in it: it counts from the sync's start.
  unsynced_since_ms_ = stats_.batches.load() == batches ? -1 : started_ms;
  stats_.syncs++;
  if (sync_failed_) MarkHealthy();
  return true;
}

void AuditLog::MarkHealthy() {
  sync_failed_ = false;
  if (!stats_.healthy.exchange(true)) {
    // As loud as the failure: operators watch for both.
    spdlog::error("audit store {} takes writes again; requests are forwarded again", store_->Describe());
    std::lock_guard hk(mu_);
    healthy_cv_.notify_all();
  }
}

void AuditLog::Housekeeping(std::unique_lock<std::mutex>& commit) {
  // What is due, decided on the commit state under the commit lock...
  const std::int64_t now = clock_.NowMillis();
  const bool checkpoint = signer_ && head_.seq > last_checkpoint_seq_ &&
                          (head_.seq - last_checkpoint_seq_ >= options_.checkpoint_every ||
                           now - last_checkpoint_ms_ >= options_.checkpoint_interval_ms);
  const ChainHead signed_head = head_;
  if (checkpoint) {
    last_checkpoint_seq_ = head_.seq;
    last_checkpoint_ms_ = now;
  }
  const bool optimize = now - last_optimize_ms_ >= 3'600'000;
  if (optimize) last_optimize_ms_ = now;
  const bool prune = options_.retention_ms > 0 && now - last_prune_ms_ >= options_.prune_interval_ms;
  if (prune) last_prune_ms_ = now;
  if (!checkpoint && !optimize && !prune) return;
  // ...and done without it when the journal takes the commits: these write
  // SQLite, where a write waits for the ingest thread's transaction or a WAL
  // checkpoint (tens of ms), and a caller's turn must not wait with them for
  // the commit lock (docs/performance.md, ninth session). They use only the
  // store's database, which the commits on the journal do not touch.
  const bool off_lock = store_->journal_writer();
  if (off_lock) commit.unlock();
  if (checkpoint) {
    Checkpoint c{signed_head.seq, signed_head.hash, now,
                 signer_->Sign(CheckpointMessage(signed_head.seq, signed_head.hash, now)), signer_->PublicKeyPem()};
    // Another replica may have signed this very head; that is fine.
    if (store_->AddCheckpoint(c)) stats_.checkpoints++;
  }
  if (optimize) store_->Optimize();
  if (prune) Prune(now);
  if (off_lock) commit.lock();
}

void AuditLog::Prune(std::int64_t now) {
  std::int64_t cutoff = now - options_.retention_ms;
  auto cps = store_->Checkpoints();
  auto anchor = store_->AuditAnchor();
  if (!cps || !anchor) return;
  std::int64_t anchor_seq = *anchor ? (*anchor)->seq : 0;
  const Checkpoint* pick = nullptr;
  for (const auto& c : *cps) {
    if (c.time_ms <= cutoff && c.seq > anchor_seq) pick = &c;
  }
  if (!pick) return;
  // The recordings the pruned entries name go with them, after the prune.
  std::vector<std::string> recordings;
  if (!options_.recording_dir.empty()) {
    std::int64_t after = anchor_seq;
    for (bool done = false; !done;) {
      auto page = store_->AuditRange(after, 1000);
      if (!page || page->empty()) break;
      for (const AuditEntry& e : *page) {
        if (e.seq > pick->seq) {
          done = true;
          break;
        }
        after = e.seq;
        if (e.index.phase != "result" || e.canonical.find("\"recording\"") == std::string::npos) continue;
        auto j = nlohmann::json::parse(e.canonical, nullptr, false);
        if (!j.is_object() || !j.contains("recording") || !j["recording"].is_object()) continue;
        std::string file = StringField(j["recording"], "file");
        if (!file.empty() && file.find('/') == std::string::npos && file[0] != '.') recordings.push_back(file);
      }
    }
  }
  auto pruned = store_->PruneAudit(*pick);
  if (pruned) {
    for (const auto& f : recordings) {
      std::error_code ec;
      std::filesystem::remove(std::filesystem::path(options_.recording_dir) / f, ec);
    }
    stats_.pruned += static_cast<std::uint64_t>(*pruned);
    spdlog::info("audit retention: pruned {} entries up to seq {}; the chain now starts at that signed checkpoint",
                 *pruned, pick->seq);
  } else {
    spdlog::warn("audit retention: pruning failed: {}", pruned.error().message);
  }
}

}  // namespace kubegate
