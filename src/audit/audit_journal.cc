#include "audit/audit_journal.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/limits.h"

namespace kubegate {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kSuffix = ".journal";
// The next segment's file before it has a segment's name (FirstSeqOf: 0).
constexpr std::string_view kSpareName = "next-segment.spare";
constexpr std::size_t kHashChars = 64;

Error Io(const std::string& what, const std::string& path, int err) {
  return Error::Unavailable("audit journal: cannot " + what + " " + path + ": " + std::strerror(err));
}

class PosixJournalFile final : public JournalFile {
 public:
  PosixJournalFile(int fd, std::string path, std::uint64_t size)
      : fd_(fd), path_(std::move(path)), end_(size), reserved_(size) {}
  ~PosixJournalFile() override { ::close(fd_); }

  Result<bool> Append(std::string_view bytes) override {
    while (!bytes.empty()) {
      ssize_t n = ::pwrite(fd_, bytes.data(), bytes.size(), static_cast<off_t>(end_));
      if (n < 0) {
        if (errno == EINTR) continue;
        return Io("write", path_, errno);
      }
      end_ += static_cast<std::uint64_t>(n);
      bytes.remove_prefix(static_cast<std::size_t>(n));
    }
    reserved_ = std::max(reserved_, end_);
    return true;
  }
  Result<bool> Sync() override {
    if (::fdatasync(fd_) != 0) return Io("sync", path_, errno);
    return true;
  }
  Result<bool> Truncate(std::uint64_t size) override {
    if (::ftruncate(fd_, static_cast<off_t>(size)) != 0) return Io("truncate", path_, errno);
    end_ = size;
    const std::uint64_t reserved = reserved_;
    reserved_ = size;
    Reserve(reserved);  // zeros again after the data
    return true;
  }
  Result<bool> MoveTo(const std::string& path) override {
    if (::rename(path_.c_str(), path.c_str()) != 0) return Io("rename " + path_ + " to", path, errno);
    path_ = path;
    return true;
  }
  void Reserve(std::uint64_t bytes) override {
    if (bytes <= reserved_) return;
    // fallocate, not posix_fallocate: where the file system cannot
    // reserve, glibc's fallback would write the zeros itself.
    if (::fallocate(fd_, 0, static_cast<off_t>(reserved_), static_cast<off_t>(bytes - reserved_)) == 0) {
      reserved_ = bytes;
    }
  }

 private:
  int fd_;
  std::string path_;
  std::uint64_t end_;       // where the data ends: the next Append goes here
  std::uint64_t reserved_;  // the file's size (zeros after end_)
};

std::string SegmentName(std::int64_t first_seq) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%020lld", static_cast<long long>(first_seq));
  return std::string(buf) + std::string(kSuffix);
}

// A segment's first seq from its file name; 0 when it is not a segment.
std::int64_t FirstSeqOf(const std::string& name) {
  if (name.size() != 20 + kSuffix.size() || !name.ends_with(kSuffix)) return 0;
  std::int64_t v = 0;
  auto [p, ec] = std::from_chars(name.data(), name.data() + 20, v);
  return ec == std::errc() && p == name.data() + 20 ? v : 0;
}

// One frame (a line without its newline) into seq, prev_hash, hash and
// canonical; false when it is not one.
bool ParseFrame(std::string_view line, AuditEntry& e) {
  auto sp = line.find(' ');
  if (sp == std::string_view::npos || sp == 0) return false;
  auto [p, ec] = std::from_chars(line.data(), line.data() + sp, e.seq);
  if (ec != std::errc() || p != line.data() + sp || e.seq <= 0) return false;
  line.remove_prefix(sp + 1);
  if (line.size() < 2 * (kHashChars + 1) || line[kHashChars] != ' ' || line[2 * kHashChars + 1] != ' ') return false;
  e.prev_hash.assign(line.substr(0, kHashChars));
  e.hash.assign(line.substr(kHashChars + 1, kHashChars));
  e.canonical.assign(line.substr(2 * (kHashChars + 1)));
  return true;
}

void AppendFrame(std::string& out, const AuditEntry& e) {
  out += std::to_string(e.seq);
  out += ' ';
  out += e.prev_hash;
  out += ' ';
  out += e.hash;
  out += ' ';
  out += e.canonical;
  out += '\n';
}

// A segment's data: its bytes up to the first zero byte, where a reserved
// segment's unwritten rest begins (no frame holds a zero byte).
std::string_view DataOf(std::string_view bytes) { return bytes.substr(0, bytes.find('\0')); }

Result<std::string> ReadWhole(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Io("read", path, errno ? errno : ENOENT);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// A segment's data (DataOf) for a reader, without reading the reserved
// zeros after it: a reserved segment is 4 MiB from its first entry.
Result<std::string> ReadData(const std::string& path) {
  constexpr std::size_t kChunk = 64 * 1024;
  std::ifstream in(path, std::ios::binary);
  if (!in) return Io("read", path, errno ? errno : ENOENT);
  std::string out;
  while (in) {
    const std::size_t at = out.size();
    out.resize(at + kChunk);
    in.read(out.data() + at, static_cast<std::streamsize>(kChunk));
    out.resize(at + static_cast<std::size_t>(in.gcount()));
    if (auto zero = out.find('\0', at); zero != std::string::npos) {
      out.resize(zero);
      break;
    }
  }
  return out;
}

}  // namespace

Result<std::unique_ptr<JournalFile>> OpenPosixJournalFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return Io("open", path, errno);
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    return Io("stat", path, err);
  }
  return std::unique_ptr<JournalFile>(
      std::make_unique<PosixJournalFile>(fd, path, static_cast<std::uint64_t>(st.st_size)));
}

// Not "-journal": that is SQLite's own rollback journal's name.
std::string JournalDirFor(const std::string& sqlite_path) { return sqlite_path + ".audit-journal"; }

AuditJournal::AuditJournal(std::string dir) : dir_(std::move(dir)) {}

AuditJournal::~AuditJournal() {
  active_.reset();
  if (lock_fd_ >= 0) ::close(lock_fd_);  // releases the flock
}

Result<std::unique_ptr<AuditJournal>> AuditJournal::OpenWriter(const std::string& dir, JournalFileOpener opener) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Error::Unavailable("audit journal: cannot create " + dir + ": " + ec.message());
  fs::permissions(dir, fs::perms::owner_all, ec);
  auto j = std::make_unique<AuditJournal>(dir);
  j->opener_ = std::move(opener);
  std::string lock = dir + "/LOCK";
  j->lock_fd_ = ::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (j->lock_fd_ < 0) return Io("open", lock, errno);
  if (::flock(j->lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    return Error::Unavailable("audit journal " + dir +
                              " is written by another kubegate process; one gateway per SQLite data directory "
                              "(replicas share PostgreSQL instead)");
  }
  return j;
}

Result<std::vector<AuditJournal::Segment>> AuditJournal::Segments() const {
  std::vector<Segment> out;
  std::error_code ec;
  fs::directory_iterator it(dir_, ec);
  if (ec) {
    if (ec == std::errc::no_such_file_or_directory) return out;
    return Error::Unavailable("audit journal: cannot list " + dir_ + ": " + ec.message());
  }
  for (const auto& d : it) {
    std::string name = d.path().filename().string();
    if (std::int64_t first = FirstSeqOf(name)) out.push_back({first, d.path().string()});
  }
  std::sort(out.begin(), out.end(), [](const Segment& a, const Segment& b) { return a.first_seq < b.first_seq; });
  return out;
}

Result<ChainHead> AuditJournal::Recover(const ChainHead& indexed) {
  std::lock_guard lk(mu_);
  auto segments = Segments();
  if (!segments) return segments.error();
  ChainHead head = indexed;
  std::uint64_t last_whole = 0;  // the newest segment's bytes of whole frames
  std::int64_t expected = 0;  // the seq the next frame must carry; 0 before the first
  std::string prev;
  for (std::size_t s = 0; s < segments->size(); ++s) {
    const Segment& seg = (*segments)[s];
    const bool last_segment = s + 1 == segments->size();
    auto data = ReadWhole(seg.path);
    if (!data) return data.error();
    std::string_view rest = DataOf(*data);
    // Only zeros may follow the data: a write never lands past its end, so
    // anything else there was put there by someone else.
    if (std::string_view(*data).find_first_not_of('\0', rest.size()) != std::string_view::npos) {
      return Error::Unavailable("audit journal " + seg.path + " holds bytes after the end of its entries (byte " +
                                std::to_string(rest.size()) + " is zero); kubegate refuses to extend it: run "
                                "`kubegate audit verify` and restore the data directory");
    }
    std::uint64_t whole = 0;  // bytes of whole, valid frames
    while (!rest.empty()) {
      auto nl = rest.find('\n');
      AuditEntry e;
      bool valid = nl != std::string_view::npos && ParseFrame(rest.substr(0, nl), e) &&
                   e.hash == ChainHash(e.seq, e.prev_hash, e.canonical) && (expected == 0 || e.seq == expected) &&
                   (prev.empty() || e.prev_hash == prev);
      if (!valid) {
        std::size_t frame_end = nl == std::string_view::npos ? rest.size() : nl + 1;
        if (!last_segment || frame_end != rest.size()) {
          return Error::Unavailable("audit journal " + seg.path + " is corrupt at byte " + std::to_string(whole) +
                                    " (not its torn last frame); kubegate refuses to extend it: run `kubegate audit "
                                    "verify` and restore the data directory");
        }
        // A torn write at the very end: never acknowledged (it never synced
        // whole), so it is cut.
        auto file = opener_(seg.path);
        if (!file) return file.error();
        if (auto t = (*file)->Truncate(whole); !t) return t.error();
        if (auto y = (*file)->Sync(); !y) return y.error();
        break;
      }
      if (e.seq > indexed.seq) {
        if (e.seq == indexed.seq + 1 && e.prev_hash != indexed.hash) {
          return Error::Unavailable("audit journal " + seg.path + ": entry " + std::to_string(e.seq) +
                                    " does not continue the chain in the database; kubegate refuses to extend it");
        }
        head = {e.seq, e.hash};
      }
      expected = e.seq + 1;
      prev = e.hash;
      whole += nl + 1;
      rest.remove_prefix(nl + 1);
    }
    if (last_segment) last_whole = whole;
  }
  if (expected != 0 && expected <= indexed.seq) {
    // Everything in the journal is in the database already.
    head = indexed;
  } else if (expected != 0 && segments->front().first_seq > indexed.seq + 1) {
    return Error::Unavailable("audit journal " + dir_ + " starts at entry " +
                              std::to_string(segments->front().first_seq) + " but the database ends at " +
                              std::to_string(indexed.seq) + "; entries are missing, kubegate refuses to extend it");
  }
  head_seq_ = head.seq;
  appended_seq_.store(head.seq, std::memory_order_release);
  // Appends continue the newest segment when it ends at the head; else a
  // new segment starts with the next entry.
  if (!segments->empty() && expected == head.seq + 1) {
    if (auto ok = OpenActive(segments->back().first_seq); !ok) return ok.error();
    // Appends go after the last whole frame, not after the reserved zeros.
    if (auto ok = active_->Truncate(last_whole); !ok) return ok.error();
    active_size_ = last_whole;
    active_unsynced_ = true;  // the last process may have died before syncing it
  }
  return head;
}

Result<bool> AuditJournal::OpenActive(std::int64_t first_seq) {
  std::string path = dir_ + "/" + SegmentName(first_seq);
  auto file = opener_(path);
  if (!file) return file.error();
  Activate(std::move(*file), first_seq);
  return true;
}

void AuditJournal::Activate(std::unique_ptr<JournalFile> file, std::int64_t first_seq) {
  active_ = std::move(file);
  active_first_ = first_seq;
  active_size_ = 0;
  active_unsynced_ = false;
}

Result<bool> AuditJournal::Append(const std::vector<AuditEntry>& entries, bool sync) {
  if (entries.empty()) return true;
  std::lock_guard lk(mu_);
  if (broken_) {
    return Error::Unavailable("audit journal " + dir_ + ": a failed write could not be cut back; kubegate must restart "
                              "to repair it");
  }
  // A full segment is closed; the group starts the next one. Release
  // deletes closed segments once SQLite holds all they hold. What it holds
  // unsynced (a group nobody waited for; with audit.fsync: interval, every
  // group since the last Sync) is synced first: the next segment's syncs
  // cover only the next segment's file, and a segment that lost its tail to
  // a power cut would leave a gap before the next one.
  if (active_ && active_size_ >= segment_bytes_) {
    if (active_unsynced_) {
      if (auto ok = active_->Sync(); !ok) return ok.error();
      active_unsynced_ = false;
    }
    active_.reset();
    active_first_ = 0;
    active_size_ = 0;
    closed_segments_ = true;
  }
  if (!active_) {
    if (!ActivateSpare(entries.front().seq)) {
      if (auto ok = OpenActive(entries.front().seq); !ok) return ok.error();
      // A file of that name can only be one this writer (or the last) made
      // for the same entries and never completed a frame in (Recover would
      // have continued it otherwise): it starts empty.
      if (auto ok = active_->Truncate(0); !ok) return ok.error();
      // Its blocks allocated now, once: a sync after each append then has
      // only the data to write (on ext4 a growing file's fdatasync also
      // commits the file system's journal for the new size).
      active_->Reserve(segment_bytes_);
    }
    // The new segment's name must survive a power loss with its entries,
    // whichever sync covers them (a file's fdatasync does not cover its
    // directory entry). Once per segment.
    int d = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (d >= 0) {
      ::fsync(d);
      ::close(d);
    }
  }
  std::string frames;
  std::size_t bytes = 0;
  for (const AuditEntry& e : entries) bytes += e.canonical.size() + 2 * kHashChars + 24;
  frames.reserve(bytes);
  for (const AuditEntry& e : entries) AppendFrame(frames, e);
  auto written = active_->Append(frames);
  const bool synced = sync_each_ && sync;
  if (written && synced) written = active_->Sync();
  if (!written) {
    // Nothing of this group may stay: cut back to the last whole group.
    if (!active_->Truncate(active_size_)) broken_ = true;  // the next start cuts the torn tail (Recover)
    return written.error();
  }
  active_size_ += frames.size();
  active_unsynced_ = !synced;
  appends_++;
  appended_seq_.store(entries.back().seq, std::memory_order_release);
  head_seq_ = entries.back().seq;
  return true;
}

Result<bool> AuditJournal::Sync() {
  std::shared_ptr<JournalFile> file;
  std::uint64_t appends = 0;
  {
    std::lock_guard lk(mu_);
    if (!active_) return true;
    file = active_;
    appends = appends_;
  }
  // Without the lock: a group appended meanwhile is not held up behind the
  // disk. Concurrent write() and fdatasync() of one file are safe; a segment
  // closed meanwhile stays open until this returns.
  auto ok = file->Sync();
  std::lock_guard lk(mu_);
  if (ok && active_ == file && appends_ == appends) active_unsynced_ = false;
  return ok;
}

Result<bool> AuditJournal::PrepareNextSegment() {
  std::uint64_t bytes = 0;
  {
    std::lock_guard lk(mu_);
    if (spare_ || !opener_) return true;
    bytes = segment_bytes_;
  }
  // Only the writer prepares, so no other file is made meanwhile. A spare
  // left by an earlier process is emptied and reserved again.
  auto file = opener_(dir_ + "/" + std::string(kSpareName));
  if (!file) return file.error();
  if (auto ok = (*file)->Truncate(0); !ok) return ok.error();
  (*file)->Reserve(bytes);
  std::lock_guard lk(mu_);
  spare_ = std::move(*file);
  return true;
}

bool AuditJournal::ActivateSpare(std::int64_t first_seq) {
  if (!spare_) return false;
  std::unique_ptr<JournalFile> file = std::move(spare_);
  // Over a file of that name, as OpenActive would empty it (see Append).
  if (!file->MoveTo(dir_ + "/" + SegmentName(first_seq))) return false;
  Activate(std::move(file), first_seq);
  return true;
}

Result<bool> AuditJournal::Release(std::int64_t through) {
  std::vector<std::string> released;
  {
    std::lock_guard lk(mu_);
    if (!closed_segments_) return true;  // only the active segment: nothing to list or delete
    auto segments = Segments();
    if (!segments) return segments.error();
    bool kept = false;
    for (std::size_t s = 0; s < segments->size(); ++s) {
      const Segment& seg = (*segments)[s];
      // A segment's last entry is the one before the next segment's first
      // (the active one's: the head). The active segment stays: Append
      // closes it when full.
      if (active_ && seg.first_seq == active_first_) continue;
      std::int64_t last = s + 1 < segments->size() ? (*segments)[s + 1].first_seq - 1 : head_seq_;
      if (last > through) {
        kept = true;
        continue;
      }
      released.push_back(seg.path);
    }
    closed_segments_ = kept;
  }
  // Deleted without the lock: unlinking a 4 MiB segment took 3 ms on this
  // machine's ext4, and appends must not wait for it. Nothing appends to a
  // closed segment; a reader that finds it gone reads SQLite again.
  for (const std::string& path : released) {
    std::error_code ec;
    fs::remove(path, ec);
    if (ec) {
      std::lock_guard lk(mu_);
      closed_segments_ = true;  // tried again at the next Release
      return Error::Unavailable("audit journal: cannot delete " + path + ": " + ec.message());
    }
  }
  return true;
}

Result<std::vector<AuditEntry>> AuditJournal::Read(std::int64_t after, std::size_t limit,
                                                   std::int64_t through) const {
  std::vector<AuditEntry> out;
  auto segments = Segments();
  if (!segments) return segments.error();
  // Start from the newest segment that begins at or before after + 1.
  std::size_t start = 0;
  for (std::size_t s = 0; s < segments->size(); ++s) {
    if ((*segments)[s].first_seq <= after + 1) start = s;
  }
  for (std::size_t s = start; s < segments->size() && out.size() < limit; ++s) {
    auto data = ReadData((*segments)[s].path);
    if (!data) {
      // Released while this read listed it: those entries are in SQLite.
      return Error::Unavailable("audit journal moved on while it was read; read the database again");
    }
    std::string_view rest = *data;
    while (!rest.empty() && out.size() < limit) {
      auto nl = rest.find('\n');
      if (nl == std::string_view::npos) break;  // a write in progress
      std::string_view line = rest.substr(0, nl);
      rest.remove_prefix(nl + 1);
      std::int64_t seq = 0;
      auto [p, ec] = std::from_chars(line.data(), line.data() + line.size(), seq);
      if (ec != std::errc() || seq <= after) continue;
      if (seq > through) return out;
      AuditEntry e;
      if (!ParseFrame(line, e)) {
        return Error::Unavailable("audit journal " + (*segments)[s].path + ": a frame after entry " +
                                  std::to_string(out.empty() ? after : out.back().seq) + " is not readable");
      }
      const std::int64_t want = out.empty() ? after + 1 : out.back().seq + 1;
      if (e.seq != want) {
        return Error::Unavailable("audit journal: entry " + std::to_string(want) +
                                  " is not in the journal (released meanwhile); read the database again");
      }
      if (auto x = DeriveIndex(e.canonical)) e.index = std::move(*x);
      out.push_back(std::move(e));
    }
  }
  return out;
}

}  // namespace kubegate
