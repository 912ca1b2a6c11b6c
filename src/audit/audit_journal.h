// AuditJournal: the audit chain's append-only journal, the first place an
// entry is written on a SQLite gateway (issue 13). A group of entries is
// one write() of whole frames to the active segment, synced per group or on
// the audit.fsync schedule; the SQLite tables that queries read (audit_log
// and the filter index) are fed from it behind, in large transactions
// (AuditStore::CatchUpIndex), and a segment is deleted once every entry in
// it is in SQLite. Readers (the REST API, the CLI) read the journal's tail
// after SQLite's head, so a query sees every committed entry.
//
// Thread-safety: Append, Sync and Release may be called from different
// threads (the writer appends while the ingest thread releases); Read from
// any thread or process.
//
// On disk, in `dir` (the SQLite file's name + ".audit-journal"):
//   LOCK                         flock()ed by the one writer
//   00000000000000000042.journal entries from seq 42 on, one frame a line:
//     "<seq> <prev_hash> <hash> <canonical>\n"
// The canonical record is JSON without raw newlines (Canonicalize escapes
// every control character), so a line is a frame. A frame without its
// newline, or whose hash does not verify, at the very end is a torn write:
// the writer cuts it at start (Recover); anywhere else it is corruption and
// the writer refuses to go on (fail closed; `kubegate audit verify` names it).
//
//   auto j = AuditJournal::OpenWriter(dir);          // one writer per dir
//   auto head = (*j)->Recover(sqlite_head);          // cut a torn tail, check the link
//   (*j)->Append(entries);                           // seq and hashes already set
//   AuditJournal reader(dir);
//   auto tail = reader.Read(sqlite_head.seq, 1000);  // what SQLite has not yet
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "audit/audit_entry.h"
#include "common/limits.h"
#include "common/result.h"

namespace kubegate {

// The segment file the writer appends to: behind an interface so tests
// inject failed writes and syncs. A segment may be reserved ahead of its
// entries: the bytes after its data are then zeros (no frame holds a zero
// byte), and readers stop at the first one.
class JournalFile {
 public:
  virtual ~JournalFile() = default;
  // Writes all of `bytes` at the end of the data or fails (the caller then
  // truncates back).
  virtual Result<bool> Append(std::string_view bytes) = 0;
  virtual Result<bool> Sync() = 0;  // fdatasync
  // The data ends at `size`: what follows is cut (zeros up to the reserved
  // size) and appends continue there.
  virtual Result<bool> Truncate(std::uint64_t size) = 0;
  // Allocates the file's blocks up to `bytes`, zero-filled, so that a sync
  // after an append has no file size or block allocation to record. Best
  // effort: a file system that cannot reserve grows the file as it goes.
  virtual void Reserve(std::uint64_t bytes) = 0;
  // Renames the file to `path` (rename(2)); the new name is durable once
  // the caller syncs the directory.
  virtual Result<bool> MoveTo(const std::string& path) = 0;
};
// Opens (creating if missing) a segment for appending; its data ends at its
// size until Truncate says otherwise.
using JournalFileOpener = std::function<Result<std::unique_ptr<JournalFile>>(const std::string& path)>;
Result<std::unique_ptr<JournalFile>> OpenPosixJournalFile(const std::string& path);

// The directory of the journal kept beside a SQLite database file.
std::string JournalDirFor(const std::string& sqlite_path);

class AuditJournal {
 public:
  // A reader's view of `dir` (missing: an empty journal). Never writes.
  explicit AuditJournal(std::string dir);
  ~AuditJournal();
  AuditJournal(const AuditJournal&) = delete;
  AuditJournal& operator=(const AuditJournal&) = delete;

  // The writer of `dir`, created if missing. Fails when another process
  // writes it (the LOCK file is flock()ed while this object lives).
  static Result<std::unique_ptr<AuditJournal>> OpenWriter(const std::string& dir,
                                                           JournalFileOpener opener = OpenPosixJournalFile);

  // Writer, once, before Append: cuts a torn last frame and checks that the
  // journal continues `indexed` (SQLite's head): its entries after
  // indexed.seq must start at indexed.seq + 1 and chain from indexed.hash.
  // Returns the chain's head (`indexed` when the journal holds nothing newer).
  Result<ChainHead> Recover(const ChainHead& indexed);

  // Writer: appends `entries` (seq, prev_hash and hash set, continuing the
  // head) in one write, synced first when sync_each() and `sync` (a group
  // nobody waits for may leave its sync to the next group's or to Sync()).
  // On failure nothing of them stays in the journal.
  Result<bool> Append(const std::vector<AuditEntry>& entries, bool sync = true);
  // Writer: whether Append syncs each group (audit.fsync: per_commit).
  void set_sync_each(bool each) { sync_each_ = each; }
  bool sync_each() const { return sync_each_; }
  // Writer: the size at which Append closes the active segment and starts
  // the next (limits::kAuditJournalSegmentBytes; tests make it small).
  void set_segment_bytes(std::uint64_t bytes) { segment_bytes_ = bytes; }
  // Writer: whether the next Append starts a new segment (none is active,
  // or the active one is full).
  bool starts_segment() const {
    std::lock_guard lk(mu_);
    return !active_ || active_size_ >= segment_bytes_;
  }
  // Writer: syncs what was appended (audit.fsync: interval). Appends on
  // other threads go on meanwhile (the lock is not held during the
  // fdatasync); what they write may or may not be in this sync.
  Result<bool> Sync();
  // Writer, off the request path: makes ready the file the next segment
  // will be (created empty and reserved, as "next-segment.spare", which no
  // reader lists), without holding the lock appends take. Starting a
  // segment then renames it instead of creating and reserving one while
  // every append waits (0.3 to 4 ms on ext4 here). Does nothing while one
  // is ready; on failure the next segment is made as before.
  Result<bool> PrepareNextSegment();
  // Writer: every entry up to `through` is durably in SQLite: deletes the
  // closed segments that hold nothing newer (Append closes the active
  // segment once it holds segment_bytes and starts the next).
  Result<bool> Release(std::int64_t through);

  // Entries with seq > after, in order, at most `limit`, with their index
  // columns derived from the record. The first is after + 1, or the result
  // is empty when the journal holds nothing after `after`; a gap (the writer
  // released those entries meanwhile: they are in SQLite now) is an error
  // the caller answers by reading SQLite again.
  // `through`: no entry after it (the ingest passes appended_seq(), so a
  // group whose write or sync is still in flight, and might yet be cut, is
  // never fed into SQLite).
  Result<std::vector<AuditEntry>> Read(std::int64_t after, std::size_t limit,
                                       std::int64_t through = std::numeric_limits<std::int64_t>::max()) const;
  // The last entry of the last group Append finished (written, and synced
  // when asked): what the writer acknowledged. Any thread.
  std::int64_t appended_seq() const { return appended_seq_.load(std::memory_order_acquire); }

  const std::string& dir() const { return dir_; }

 private:
  struct Segment {
    std::int64_t first_seq;
    std::string path;
  };
  // The segments, oldest first.
  Result<std::vector<Segment>> Segments() const;
  Result<bool> OpenActive(std::int64_t first_seq);
  // Starts the segment of `first_seq` from the prepared file; false when
  // none is ready or it cannot be renamed (then the caller opens one).
  bool ActivateSpare(std::int64_t first_seq);
  // `file` is the active segment from `first_seq` on, empty.
  void Activate(std::unique_ptr<JournalFile> file, std::int64_t first_seq);

  std::string dir_;
  // Writer state: Append, Sync and Release may run on different threads
  // (the audit writer appends, the ingest thread releases).
  mutable std::mutex mu_;
  JournalFileOpener opener_;
  int lock_fd_ = -1;
  bool sync_each_ = true;
  std::uint64_t segment_bytes_ = limits::kAuditJournalSegmentBytes;
  std::shared_ptr<JournalFile> active_;  // shared with a Sync in progress
  std::unique_ptr<JournalFile> spare_;   // the next segment's file, empty and reserved (PrepareNextSegment)
  std::uint64_t appends_ = 0;           // Appends to the active segment (Sync: did one land meanwhile?)
  std::int64_t active_first_ = 0;   // 0: no active segment (the next Append opens one)
  std::uint64_t active_size_ = 0;
  bool active_unsynced_ = false;    // the active segment holds writes no sync has covered yet
  bool broken_ = false;             // a failed write could not be cut back: appends refused
  bool closed_segments_ = true;     // segments besides the active one may exist (Release lists only then)
  std::atomic<std::int64_t> appended_seq_{0};
  std::int64_t head_seq_ = 0;
};

}  // namespace kubegate
