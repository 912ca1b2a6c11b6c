// The audit journal (SQLite gateways): framing, torn tails, corruption,
// one writer, failed writes, release of segments, and the store reading
// the journal's tail after its tables.
#include "audit/audit_journal.h"

#include <sys/syscall.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <condition_variable>
#include <functional>
#include <future>
#include <mutex>
#include <thread>

#include <gtest/gtest.h>

#include "audit/audit_log.h"
#include "audit/audit_store.h"
#include "audit/audit_test_util.h"
#include "common/clock.h"
#include "audit/signer.h"
#include "audit/verify.h"

namespace kubegate {
namespace {

namespace fs = std::filesystem;
using testing::DecisionEntry;
using testing::ResultEntry;

class ScratchDir {
 public:
  ScratchDir() {
    static int n = 0;
    path_ = fs::temp_directory_path() /
            ("kg-journal-" + std::to_string(::getpid()) + "-" + std::to_string(++n) + "-" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~ScratchDir() { fs::remove_all(path_); }
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }

 private:
  fs::path path_;
};

// n decision entries linked after `head`, as the store links them.
std::vector<AuditEntry> Linked(int n, ChainHead& head, const std::string& prefix = "j") {
  std::vector<AuditEntry> out;
  for (int i = 0; i < n; ++i) {
    AuditEntry e = DecisionEntry({.id = prefix + std::to_string(head.seq + 1)});
    e.seq = head.seq + 1;
    e.prev_hash = head.hash;
    e.hash = ChainHash(e.seq, e.prev_hash, e.canonical);
    head = {e.seq, e.hash};
    out.push_back(std::move(e));
  }
  return out;
}

std::vector<std::string> SegmentFiles(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& d : fs::directory_iterator(dir)) {
    if (d.path().extension() == ".journal") out.push_back(d.path().filename().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string FileBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Where a segment's entries end: its first zero byte (a segment is reserved
// ahead of its entries), or its size.
std::uint64_t DataEnd(const std::string& path) {
  std::string bytes = FileBytes(path);
  return std::min(bytes.find('\0'), bytes.size());
}

// Writes `bytes` over the file from `at` (a write a crash cut short lands
// at the end of the data, over the reserved zeros).
void WriteAt(const std::string& path, std::uint64_t at, const std::string& bytes) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekp(static_cast<std::streamoff>(at));
  f << bytes;
}

void AppendBytes(const std::string& path, const std::string& bytes) { WriteAt(path, DataEnd(path), bytes); }

// Replaces the first `from` in the oldest segment of `dir` with `to` (an
// edit by someone with access to the data directory).
void EditFirstSegment(const std::string& dir, const std::string& from, const std::string& to) {
  std::string seg = dir + "/" + SegmentFiles(dir).at(0);
  std::string text;
  {
    std::ifstream in(seg);
    text.assign(std::istreambuf_iterator<char>(in), {});
  }
  auto at = text.find(from);
  ASSERT_NE(at, std::string::npos);
  text.replace(at, from.size(), to);
  std::ofstream(seg, std::ios::trunc) << text;
}

// A segment file that passes everything to the real one; the fakes below
// override what they change.
class ForwardingFile : public JournalFile {
 public:
  explicit ForwardingFile(std::unique_ptr<JournalFile> inner) : inner_(std::move(inner)) {}
  Result<bool> Append(std::string_view bytes) override { return inner_->Append(bytes); }
  Result<bool> Sync() override { return inner_->Sync(); }
  Result<bool> Truncate(std::uint64_t size) override { return inner_->Truncate(size); }
  void Reserve(std::uint64_t bytes) override { inner_->Reserve(bytes); }
  Result<bool> MoveTo(const std::string& path) override { return inner_->MoveTo(path); }

 protected:
  std::unique_ptr<JournalFile> inner_;
};

// An opener that hands each segment file the journal opens to `wrap`.
template <typename Wrap>
JournalFileOpener WrappingOpener(Wrap wrap) {
  return [wrap](const std::string& path) -> Result<std::unique_ptr<JournalFile>> {
    auto f = OpenPosixJournalFile(path);
    if (!f) return f.error();
    return std::unique_ptr<JournalFile>(wrap(std::move(*f)));
  };
}

TEST(AuditJournal, AppendsFramesAndReadsThemBackWithTheirIndex) {
  ScratchDir d;
  auto j = AuditJournal::OpenWriter(d / "j");
  ASSERT_TRUE(j) << j.error().message;
  ASSERT_TRUE((*j)->Recover(ChainHead{}));
  ChainHead head;
  auto batch = Linked(5, head);
  ASSERT_TRUE((*j)->Append(batch));
  AuditJournal reader(d / "j");
  auto all = reader.Read(0, 100);
  ASSERT_TRUE(all) << all.error().message;
  ASSERT_EQ(all->size(), 5u);
  for (std::size_t i = 0; i < 5; ++i) {
    EXPECT_EQ((*all)[i].seq, batch[i].seq);
    EXPECT_EQ((*all)[i].hash, batch[i].hash);
    EXPECT_EQ((*all)[i].canonical, batch[i].canonical);
    EXPECT_EQ((*all)[i].index, batch[i].index);
  }
  auto after3 = reader.Read(3, 1);
  ASSERT_TRUE(after3);
  ASSERT_EQ(after3->size(), 1u);
  EXPECT_EQ(after3->front().seq, 4);
  // Bounded by what the writer acknowledged (the ingest's bound).
  EXPECT_EQ((*j)->appended_seq(), 5);
  auto bounded = reader.Read(0, 100, 3);
  ASSERT_TRUE(bounded);
  ASSERT_EQ(bounded->size(), 3u);
  EXPECT_EQ(bounded->back().seq, 3);
  auto none = reader.Read(5, 10);
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->empty());
  // A reader of a directory that does not exist sees an empty journal.
  AuditJournal missing(d / "nothing-here");
  auto empty = missing.Read(0, 10);
  ASSERT_TRUE(empty);
  EXPECT_TRUE(empty->empty());
}

TEST(AuditJournal, OneWriterPerDirectory) {
  ScratchDir d;
  auto first = AuditJournal::OpenWriter(d / "j");
  ASSERT_TRUE(first);
  auto second = AuditJournal::OpenWriter(d / "j");
  ASSERT_FALSE(second);
  EXPECT_NE(second.error().message.find("another kubegate process"), std::string::npos) << second.error().message;
  first->reset();
  EXPECT_TRUE(AuditJournal::OpenWriter(d / "j"));
}

TEST(AuditJournal, RecoverCutsATornLastFrameAndAppendsContinue) {
  ScratchDir d;
  ChainHead head;
  {
    auto j = AuditJournal::OpenWriter(d / "j");
    ASSERT_TRUE(j && (*j)->Recover(ChainHead{}));
    ASSERT_TRUE((*j)->Append(Linked(3, head)));
  }
  std::string seg = d / ("j/" + SegmentFiles(d / "j").at(0));
  auto whole = DataEnd(seg);
  AppendBytes(seg, "4 " + std::string(64, 'a') + " {\"half\":");  // a write cut by a crash
  // Readers stop before it.
  auto read = AuditJournal(d / "j").Read(0, 10);
  ASSERT_TRUE(read);
  EXPECT_EQ(read->size(), 3u);

  auto j = AuditJournal::OpenWriter(d / "j");
  ASSERT_TRUE(j);
  auto recovered = (*j)->Recover(ChainHead{});
  ASSERT_TRUE(recovered) << recovered.error().message;
  EXPECT_EQ(recovered->seq, 3);
  EXPECT_EQ(recovered->hash, head.hash);
  EXPECT_EQ(DataEnd(seg), whole);
  ASSERT_TRUE((*j)->Append(Linked(2, head)));
  auto all = AuditJournal(d / "j").Read(0, 10);
  ASSERT_TRUE(all);
  ASSERT_EQ(all->size(), 5u);
  EXPECT_EQ(all->back().seq, 5);
}

// A journal in `dir` whose one segment (64 KiB reserved) holds three
// entries, written by a writer that is gone again; returns its path.
std::string ThreeEntriesInAReservedSegment(const std::string& dir, ChainHead& head) {
  auto j = AuditJournal::OpenWriter(dir);
  EXPECT_TRUE(j && (*j)->Recover(ChainHead{}));
  if (!j) return "";
  (*j)->set_segment_bytes(64 * 1024);
  EXPECT_TRUE((*j)->Append(Linked(3, head)));
  return dir + "/" + SegmentFiles(dir).at(0);
}

// A segment's blocks are reserved when it starts (zeros after its
// entries), so a sync after each append writes only the data. Readers stop
// at the zeros, a restart appends after the last entry (not after the
// reserved bytes), and a journal written before segments were reserved
// (no zeros) reads and continues as before.
TEST(AuditJournal, SegmentsAreReservedAheadAndAppendsFollowTheLastEntry) {
  ScratchDir d;
  ChainHead head;
  std::string seg;
  ASSERT_NO_FATAL_FAILURE(seg = ThreeEntriesInAReservedSegment(d / "j", head));
  EXPECT_GE(fs::file_size(seg), 64u * 1024) << "the segment was not reserved";
  EXPECT_LT(DataEnd(seg), 64u * 1024);
  for (int restart = 0; restart < 2; ++restart) {
    auto j = AuditJournal::OpenWriter(d / "j");
    ASSERT_TRUE(j);
    auto recovered = (*j)->Recover(ChainHead{});
    ASSERT_TRUE(recovered) << recovered.error().message;
    EXPECT_EQ(recovered->seq, head.seq);
    ASSERT_TRUE((*j)->Append(Linked(2, head)));
  }
  auto all = AuditJournal(d / "j").Read(0, 100);
  ASSERT_TRUE(all) << all.error().message;
  ASSERT_EQ(all->size(), 7u);
  EXPECT_EQ(all->back().seq, 7);
  const std::string bytes = FileBytes(seg);
  EXPECT_EQ(std::count(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(DataEnd(seg)), '\n'), 7)
      << "appends went somewhere other than after the last entry";

  // A segment as an earlier kubegate wrote it: entries only, no zeros.
  ScratchDir old;
  fs::create_directories(old / "j");
  const std::string data = bytes.substr(0, DataEnd(seg));
  std::ofstream(old / ("j/" + SegmentFiles(d / "j").at(0)), std::ios::binary) << data;
  auto j = AuditJournal::OpenWriter(old / "j");
  ASSERT_TRUE(j);
  auto recovered = (*j)->Recover(ChainHead{});
  ASSERT_TRUE(recovered) << recovered.error().message;
  EXPECT_EQ(recovered->seq, 7);
  ASSERT_TRUE((*j)->Append(Linked(1, head)));
  auto continued = AuditJournal(old / "j").Read(0, 100);
  ASSERT_TRUE(continued) << continued.error().message;
  EXPECT_EQ(continued->size(), 8u);
}

// Only zeros may follow a segment's entries: bytes after them were put
// there by someone else (a write lands at the end of the data), and
// cutting at the zeros would throw them away unseen.
TEST(AuditJournal, RecoverRefusesBytesAfterTheReservedZeros) {
  ScratchDir d;
  ChainHead head;
  std::string seg;
  ASSERT_NO_FATAL_FAILURE(seg = ThreeEntriesInAReservedSegment(d / "j", head));
  WriteAt(seg, DataEnd(seg) + 100, "4 hidden");
  auto j = AuditJournal::OpenWriter(d / "j");
  ASSERT_TRUE(j);
  auto recovered = (*j)->Recover(ChainHead{});
  ASSERT_FALSE(recovered);
  EXPECT_NE(recovered.error().message.find("after the end of its entries"), std::string::npos)
      << recovered.error().message;
}

TEST(AuditJournal, RecoverRefusesAnEditedFrameBeforeTheEnd) {
  ScratchDir d;
  ChainHead head;
  {
    auto j = AuditJournal::OpenWriter(d / "j");
    ASSERT_TRUE(j && (*j)->Recover(ChainHead{}));
    ASSERT_TRUE((*j)->Append(Linked(3, head)));
  }
  EditFirstSegment(d / "j", "alice", "mallo");
  auto j = AuditJournal::OpenWriter(d / "j");
  ASSERT_TRUE(j);
  auto recovered = (*j)->Recover(ChainHead{});
  ASSERT_FALSE(recovered);
  EXPECT_NE(recovered.error().message.find("corrupt"), std::string::npos) << recovered.error().message;
}

TEST(AuditJournal, RecoverRefusesAJournalThatDoesNotContinueTheDatabase) {
  ScratchDir d;
  ChainHead head;
  {
    auto j = AuditJournal::OpenWriter(d / "j");
    ASSERT_TRUE(j && (*j)->Recover(ChainHead{}));
    ASSERT_TRUE((*j)->Append(Linked(3, head)));
  }
  auto j = AuditJournal::OpenWriter(d / "j");
  ASSERT_TRUE(j);
  // The database holds entry 1 with another hash: entry 2 links to something else.
  auto forked = (*j)->Recover(ChainHead{1, std::string(64, 'f')});
  ASSERT_FALSE(forked);
  EXPECT_NE(forked.error().message.find("does not continue"), std::string::npos) << forked.error().message;
}

TEST(AuditJournal, RecoverRefusesMissingEntriesBetweenDatabaseAndJournal) {
  ScratchDir d;
  ChainHead head{10, std::string(64, 'b')};
  {
    auto j = AuditJournal::OpenWriter(d / "j");
    ASSERT_TRUE(j && (*j)->Recover(head));
    ASSERT_TRUE((*j)->Append(Linked(3, head)));  // 11..13
  }
  auto j = AuditJournal::OpenWriter(d / "j");
  ASSERT_TRUE(j);
  auto gap = (*j)->Recover(ChainHead{8, std::string(64, 'c')});
  ASSERT_FALSE(gap);
  EXPECT_NE(gap.error().message.find("missing"), std::string::npos) << gap.error().message;
}

// A segment file whose writes or syncs fail on demand.
class FaultyFile final : public ForwardingFile {
 public:
  FaultyFile(std::unique_ptr<JournalFile> inner, bool* fail_write, bool* fail_sync)
      : ForwardingFile(std::move(inner)), fail_write_(fail_write), fail_sync_(fail_sync) {}
  Result<bool> Append(std::string_view bytes) override {
    if (*fail_write_) {
      // Half of it reaches the file, as a full disk leaves it.
      (void)inner_->Append(bytes.substr(0, bytes.size() / 2));
      return Error::Unavailable("injected: no space left on device");
    }
    return inner_->Append(bytes);
  }
  Result<bool> Sync() override {
    if (*fail_sync_) return Error::Unavailable("injected: fdatasync failed");
    return inner_->Sync();
  }

 private:
  bool* fail_write_;
  bool* fail_sync_;
};

TEST(AuditJournal, AFailedWriteOrSyncLeavesNothingOfItsGroup) {
  ScratchDir d;
  bool fail_write = false, fail_sync = false;
  auto j = AuditJournal::OpenWriter(d / "j", WrappingOpener([&](std::unique_ptr<JournalFile> f) {
                                       return std::make_unique<FaultyFile>(std::move(f), &fail_write, &fail_sync);
                                     }));
  ASSERT_TRUE(j && (*j)->Recover(ChainHead{}));
  ChainHead head;
  ASSERT_TRUE((*j)->Append(Linked(2, head)));
  ChainHead before = head;
  fail_write = true;
  EXPECT_FALSE((*j)->Append(Linked(3, head)));
  fail_write = false;
  fail_sync = true;
  head = before;
  EXPECT_FALSE((*j)->Append(Linked(3, head)));
  fail_sync = false;
  auto read = AuditJournal(d / "j").Read(0, 100);
  ASSERT_TRUE(read);
  ASSERT_EQ(read->size(), 2u);
  // The next group takes the same seqs and the file stays whole.
  head = before;
  ASSERT_TRUE((*j)->Append(Linked(1, head)));
  read = AuditJournal(d / "j").Read(0, 100);
  ASSERT_TRUE(read);
  ASSERT_EQ(read->size(), 3u);
  EXPECT_EQ(read->back().prev_hash, before.hash);
}

// A segment file that notes "sync FILE" and "write FILE" in a shared log.
class LoggingFile final : public ForwardingFile {
 public:
  LoggingFile(std::unique_ptr<JournalFile> inner, std::string name, std::vector<std::string>* log)
      : ForwardingFile(std::move(inner)), name_(std::move(name)), log_(log) {}
  Result<bool> Append(std::string_view bytes) override {
    log_->push_back("write " + name_);
    return inner_->Append(bytes);
  }
  Result<bool> Sync() override {
    log_->push_back("sync " + name_);
    return inner_->Sync();
  }
  Result<bool> MoveTo(const std::string& path) override {
    name_ = fs::path(path).filename().string();
    log_->push_back("rename to " + name_);
    return inner_->MoveTo(path);
  }

 private:
  std::string name_;
  std::vector<std::string>* log_;
};

// An opener whose segment files log to `log`, named as opened.
JournalFileOpener LoggingOpener(std::vector<std::string>* log) {
  return [log](const std::string& path) -> Result<std::unique_ptr<JournalFile>> {
    auto f = OpenPosixJournalFile(path);
    if (!f) return f.error();
    log->push_back("open " + fs::path(path).filename().string());
    return std::unique_ptr<JournalFile>(std::make_unique<LoggingFile>(std::move(*f), fs::path(path).filename().string(), log));
  };
}

// A full segment's unsynced tail (a result nobody waited for; with
// audit.fsync: interval, every group since the last sync) is synced before
// the next segment starts: the next segment's syncs do not cover it, and a
// power cut would leave a gap that Recover refuses.
TEST(AuditJournal, AFullSegmentIsSyncedBeforeTheNextOneStarts) {
  for (bool sync_each : {true, false}) {
   for (bool prepared : {false, true}) {
    SCOPED_TRACE(std::string(sync_each ? "per_commit" : "interval") + (prepared ? ", prepared file" : ""));
    ScratchDir d;
    std::vector<std::string> log;
    auto j = AuditJournal::OpenWriter(d / "j", LoggingOpener(&log));
    ASSERT_TRUE(j && (*j)->Recover(ChainHead{}));
    (*j)->set_sync_each(sync_each);
    (*j)->set_segment_bytes(1);  // each group fills its segment
    ChainHead head;
    ASSERT_TRUE((*j)->Append(Linked(2, head), /*sync=*/false));  // nobody waits for it
    if (prepared) ASSERT_TRUE((*j)->PrepareNextSegment());
    const std::string first = SegmentFiles(d / "j").at(0);
    ASSERT_TRUE((*j)->Append(Linked(1, head)));
    auto files = SegmentFiles(d / "j");
    ASSERT_EQ(files.size(), 2u);
    const std::string second = files.at(1);
    auto at = [&](const std::string& what) { return std::find(log.begin(), log.end(), what) - log.begin(); };
    ASSERT_LT(at("sync " + first), static_cast<long>(log.size())) << "the full segment was never synced";
    EXPECT_LT(at("sync " + first), at("write " + second));
    // A segment whose last group was synced is not synced again.
    log.clear();
    ASSERT_TRUE((*j)->Append(Linked(1, head)));
    EXPECT_EQ(std::count(log.begin(), log.end(), "sync " + second), sync_each ? 0 : 1);
   }
  }
}

// Release deletes the closed segments whose every entry is in SQLite, and
// keeps the active one and any that holds a newer entry.
TEST(AuditJournal, ReleaseDeletesOnlyClosedSegmentsUpToTheGivenEntry) {
  ScratchDir d;
  auto j = AuditJournal::OpenWriter(d / "j");
  ASSERT_TRUE(j && (*j)->Recover(ChainHead{}));
  (*j)->set_segment_bytes(1);  // each group fills its segment
  ChainHead head;
  for (int n : {2, 3, 1}) ASSERT_TRUE((*j)->Append(Linked(n, head)));  // seqs 1-2, 3-5, 6
  ASSERT_EQ(SegmentFiles(d / "j").size(), 3u);
  ASSERT_TRUE((*j)->Release(4));  // the second segment still holds 5
  EXPECT_EQ(SegmentFiles(d / "j").size(), 2u);
  ASSERT_TRUE((*j)->Release(6));  // the active segment stays
  auto files = SegmentFiles(d / "j");
  ASSERT_EQ(files.size(), 1u);
  AuditJournal reader(d / "j");
  auto read = reader.Read(5, 10);
  ASSERT_TRUE(read);
  ASSERT_EQ(read->size(), 1u);
  EXPECT_EQ(read->front().seq, 6);
}

// Starting a segment renames the file PrepareNextSegment made ahead
// (created, emptied, reserved) instead of creating one while appends wait;
// readers never list the prepared file, and the entries read back and
// recover as from any segment.
TEST(AuditJournal, APreparedFileBecomesTheNextSegment) {
  ScratchDir d;
  std::vector<std::string> log;
  auto j = AuditJournal::OpenWriter(d / "j", LoggingOpener(&log));
  ASSERT_TRUE(j && (*j)->Recover(ChainHead{}));
  (*j)->set_segment_bytes(1);
  ChainHead head;
  ASSERT_TRUE((*j)->Append(Linked(2, head)));
  // A spare left by an earlier process, with bytes in it: emptied.
  const std::string spare = d / "j" + "/next-segment.spare";
  std::ofstream(spare) << "left over";
  ASSERT_TRUE((*j)->PrepareNextSegment());
  ASSERT_TRUE((*j)->PrepareNextSegment()) << "a second call while one is ready does nothing";
  EXPECT_EQ(std::count(log.begin(), log.end(), "open next-segment.spare"), 1);
  EXPECT_EQ(SegmentFiles(d / "j").size(), 1u) << "the prepared file is no segment";
  log.clear();
  ASSERT_TRUE((*j)->Append(Linked(3, head)));
  auto files = SegmentFiles(d / "j");
  ASSERT_EQ(files.size(), 2u);
  EXPECT_EQ(log.front(), "rename to " + files[1]);
  EXPECT_EQ(std::count_if(log.begin(), log.end(), [](const std::string& l) { return l.rfind("open ", 0) == 0; }), 0)
      << "no file was created while the append waited";
  EXPECT_FALSE(fs::exists(spare));
  // Its data: the three frames, then the reserved zeros.
  const std::string second = d / "j" + "/" + files[1];
  const std::string data = FileBytes(second).substr(0, DataEnd(second));
  EXPECT_EQ(std::count(data.begin(), data.end(), '\n'), 3);
  EXPECT_EQ(data.back(), '\n');
  EXPECT_EQ(FileBytes(second).find("left over"), std::string::npos);
  // Without a prepared file the next segment is made as before.
  ASSERT_TRUE((*j)->Append(Linked(1, head)));
  EXPECT_EQ(SegmentFiles(d / "j").size(), 3u);
  // Read back whole, with a prepared file lying in the directory.
  ASSERT_TRUE((*j)->PrepareNextSegment());
  AuditJournal reader(d / "j");
  auto read = reader.Read(0, 100);
  ASSERT_TRUE(read) << read.error().message;
  ASSERT_EQ(read->size(), 6u);
  EXPECT_EQ(read->back().hash, head.hash);
  // And a new writer recovers it.
  j->reset();
  auto again = AuditJournal::OpenWriter(d / "j");
  ASSERT_TRUE(again);
  auto recovered = (*again)->Recover(ChainHead{});
  ASSERT_TRUE(recovered) << recovered.error().message;
  EXPECT_EQ(recovered->seq, 6);
  EXPECT_EQ(recovered->hash, head.hash);
}

// A store on a SQLite file with its journal, and a second store (the REST
// API's or the CLI's) reading the same file.
struct JournalStores {
  explicit JournalStores(const ScratchDir& d) {
    StoreConfig c{.sqlite_path = d / "kg.db"};
    auto w = AuditStore::Open(c);
    EXPECT_TRUE(w) << w.error().message;
    writer = std::move(*w);
    auto r = AuditStore::Open(c);
    EXPECT_TRUE(r) << r.error().message;
    reader = std::move(*r);
    auto started = writer->StartJournal();
    EXPECT_TRUE(started) << started.error().message;
  }
  std::unique_ptr<AuditStore> writer, reader;
};

// `n` decision entries with ids prefix0, prefix1, ..., appended by the
// writer (seq and hashes filled in).
std::vector<AuditEntry> AppendDecisions(JournalStores& s, const std::string& prefix, int n) {
  std::vector<AuditEntry> batch;
  for (int i = 0; i < n; ++i) batch.push_back(DecisionEntry({.id = prefix + std::to_string(i)}));
  EXPECT_TRUE(s.writer->AppendAudit(batch));
  return batch;
}

TEST(AuditJournalStore, ReadersSeeJournalEntriesBeforeAndAfterTheyReachTheTables) {
  ScratchDir d;
  JournalStores s(d);
  std::vector<AuditEntry> batch = {DecisionEntry({.id = "q1", .user = "carol"}), ResultEntry("q1", 200),
                                   DecisionEntry({.id = "q2", .user = "dave", .verb = "delete"})};
  auto head = s.writer->AppendAudit(batch);
  ASSERT_TRUE(head) << head.error().message;
  EXPECT_EQ(head->seq, 3);
  // Not in SQLite yet: the commit was the journal write.
  auto rows = s.writer->database().Run("SELECT COUNT(*) FROM audit_log");
  ASSERT_TRUE(rows);
  EXPECT_EQ(SqlInt((*rows)[0][0]), 0);

  std::int64_t head_seq = 3;
  auto check = [&](const char* when) {
    SCOPED_TRACE(when);
    auto carol = s.reader->QueryAudit({.actor = "carol"});
    ASSERT_TRUE(carol) << carol.error().message;
    ASSERT_EQ(carol->size(), 1u);
    ASSERT_TRUE((*carol)[0].result.has_value());
    auto deletes = s.reader->QueryAudit({.verb = "delete"});
    ASSERT_TRUE(deletes);
    ASSERT_EQ(deletes->size(), 1u);
    EXPECT_EQ((*deletes)[0].decision.index.actor, "dave");
    auto by_id = s.reader->AuditByRequest("q1");
    ASSERT_TRUE(by_id);
    EXPECT_EQ(by_id->size(), 2u);
    EXPECT_EQ(s.reader->CountAudit(), head_seq);
    auto rhead = s.reader->AuditHead();
    ASSERT_TRUE(rhead);
    EXPECT_EQ(rhead->seq, head_seq);
    VerifyReport v = VerifyAuditChain(*s.reader, {});
    EXPECT_TRUE(v.ok) << v.problem;
    EXPECT_EQ(v.entries, head_seq);
  };
  check("only in the journal");
  auto n = s.writer->CatchUpIndex(&batch, 100);
  ASSERT_TRUE(n) << n.error().message;
  EXPECT_EQ(*n, 3);
  rows = s.writer->database().Run("SELECT COUNT(*) FROM audit_log");
  ASSERT_TRUE(rows);
  EXPECT_EQ(SqlInt((*rows)[0][0]), 3);
  check("in the tables, still in the journal");
  // A full segment is closed by the next group, and deleted once the
  // tables hold all of it; the active one stays.
  s.writer->journal()->set_segment_bytes(1);
  std::vector<AuditEntry> next = {DecisionEntry({.id = "q3", .user = "erin"})};
  ASSERT_TRUE(s.writer->AppendAudit(next));
  EXPECT_EQ(SegmentFiles(d / "kg.db.audit-journal").size(), 2u);
  ASSERT_TRUE(s.writer->CatchUpIndex(nullptr, 100));
  EXPECT_EQ(SegmentFiles(d / "kg.db.audit-journal"),
            std::vector<std::string>{"00000000000000000004.journal"});
  head_seq = 4;
  check("in the tables, the first segment released");
}

// However far the ingest is behind, a reader finds the newest record (it
// used to stop reading the journal after limits::kAuditIndexMaxKept entries).
TEST(AuditJournalStore, ReadersFindTheNewestRecordWhenTheIngestIsFarBehind) {
  ScratchDir d;
  JournalStores s(d);
  s.writer->journal()->set_sync_each(false);  // the test is about reading, not durability
  const std::size_t total = limits::kAuditIndexMaxKept + 100;
  std::vector<AuditEntry> group;
  for (std::size_t i = 1; i <= total; ++i) {
    group.push_back(DecisionEntry({.id = "far" + std::to_string(i)}));
    if (group.size() == 4096 || i == total) {
      ASSERT_TRUE(s.writer->AppendAudit(group));
      group.clear();
    }
  }
  auto newest = s.reader->AuditByRequest("far" + std::to_string(total));
  ASSERT_TRUE(newest) << newest.error().message;
  ASSERT_EQ(newest->size(), 1u);
  EXPECT_EQ((*newest)[0].seq, static_cast<std::int64_t>(total));
}

// The writer feeds the tables in chunks (one transaction each), so a commit
// waits behind one chunk at most: CatchUpIndex takes `limit` of the kept
// copies and leaves the rest for the next call.
TEST(AuditJournalStore, CatchUpTakesAChunkOfTheKeptCopiesAtATime) {
  ScratchDir d;
  JournalStores s(d);
  std::vector<AuditEntry> batch = AppendDecisions(s, "c", 5);
  auto n = s.writer->CatchUpIndex(&batch, 2);
  ASSERT_TRUE(n) << n.error().message;
  EXPECT_EQ(*n, 2);
  ASSERT_EQ(batch.size(), 3u);
  EXPECT_EQ(batch.front().seq, 3);
  EXPECT_EQ(*s.reader->IndexHead(), 2);
  n = s.writer->CatchUpIndex(&batch, 2);
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 2);
  n = s.writer->CatchUpIndex(&batch, 2);
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 1);
  EXPECT_TRUE(batch.empty());
  EXPECT_EQ(*s.reader->IndexHead(), 5);
  EXPECT_TRUE(VerifyAuditChain(*s.reader, {}).ok);
}

// SQLite's multi-row INSERTs are OR FAIL (no statement journal): a row
// that fails stops the statement without undoing the rows before it, so
// the catch-up's transaction must leave nothing of a failed batch behind.
TEST(AuditJournalStore, ACatchUpThatFailsMidBatchCommitsNoneOfIt) {
  ScratchDir d;
  JournalStores s(d);
  AppendDecisions(s, "f", 3);
  // A row already at seq 3: the third row of the INSERT fails, after the
  // first two went in.
  ASSERT_TRUE(s.writer->database().Run(
      "INSERT INTO audit_log(seq, request_id, phase, time_ms, actor, kind, verb, api_group, resource, ns, obj_name, "
      "decision, approval_id, record, prev_hash, hash) VALUES (3, 'x', 'decision', 0, '', '', '', '', '', '', '', '', "
      "'', '{}', '', '')"));
  auto failed = s.writer->CatchUpIndex(nullptr, 100);
  ASSERT_FALSE(failed);
  auto rows = s.writer->database().Run("SELECT COUNT(*), MIN(seq) FROM audit_log");
  ASSERT_TRUE(rows);
  EXPECT_EQ(SqlInt((*rows)[0][0]), 1);  // only the row put there by hand
  EXPECT_EQ(SqlInt((*rows)[0][1]), 3);
  EXPECT_EQ(*s.reader->IndexHead(), 0);
  auto head = s.writer->database().Run("SELECT seq FROM audit_head WHERE id = 1");
  ASSERT_TRUE(head);
  EXPECT_EQ(SqlInt((*head)[0][0]), 0);
  ASSERT_TRUE(s.writer->database().Run("DELETE FROM audit_log WHERE seq = 3"));
  auto n = s.writer->CatchUpIndex(nullptr, 100);
  ASSERT_TRUE(n) << n.error().message;
  EXPECT_EQ(*n, 3);
  EXPECT_TRUE(VerifyAuditChain(*s.reader, {}).ok);
}

TEST(AuditJournalStore, ARestartIngestsWhatTheJournalHoldsAndTheChainContinues) {
  ScratchDir d;
  ChainHead first;
  {
    JournalStores s(d);
    std::vector<AuditEntry> batch = {DecisionEntry({.id = "k1"}), ResultEntry("k1", 200)};
    auto h = s.writer->AppendAudit(batch);
    ASSERT_TRUE(h);
    first = *h;
    // The process dies here: nothing reached the tables.
  }
  JournalStores s(d);
  auto head = s.writer->AuditHead();
  ASSERT_TRUE(head);
  EXPECT_EQ(head->seq, first.seq);
  EXPECT_EQ(head->hash, first.hash);
  auto n = s.writer->CatchUpIndex(nullptr, 100);
  ASSERT_TRUE(n) << n.error().message;
  EXPECT_EQ(*n, 2);
  std::vector<AuditEntry> more = {DecisionEntry({.id = "k2"})};
  auto h = s.writer->AppendAudit(more);
  ASSERT_TRUE(h);
  EXPECT_EQ(h->seq, 3);
  EXPECT_EQ(more[0].prev_hash, first.hash);
  VerifyReport v = VerifyAuditChain(*s.reader, {});
  EXPECT_TRUE(v.ok) << v.problem;
  EXPECT_EQ(v.entries, 3);
}

TEST(AuditJournalStore, VerifyFindsAnEditedJournalEntry) {
  ScratchDir d;
  JournalStores s(d);
  std::vector<AuditEntry> batch = {DecisionEntry({.id = "v1"}), DecisionEntry({.id = "v2", .user = "bob"})};
  ASSERT_TRUE(s.writer->AppendAudit(batch));
  EditFirstSegment(d / "kg.db.audit-journal", "\"bob\"", "\"eve\"");
  VerifyReport v = VerifyAuditChain(*s.reader, {});
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.problem_seq, 2);
}

// The gateway's writer on a journal: every decision acknowledged is in the
// journal at once (readers see it), and the tables hold it all after the
// writer stops.
TEST(AuditJournalStore, TheWriterAcknowledgesFromTheJournalAndFeedsTheTables) {
  ScratchDir d;
  JournalStores s(d);
  ManualClock clock{1'795'000'000'000};
  std::atomic<int> committed{0};
  {
    AuditLog log(std::move(s.writer), clock, nullptr, {});
    for (int i = 0; i < 50; ++i) {
      ASSERT_TRUE(log.Submit(DecisionEntry({.id = "w" + std::to_string(i)}), [&](const Result<bool>& ok) {
        if (ok) committed++;
      }));
    }
    log.Flush();
    EXPECT_EQ(committed.load(), 50);
    auto all = s.reader->AuditRange(0, 1000);
    ASSERT_TRUE(all) << all.error().message;
    EXPECT_EQ(all->size(), 50u);
  }
  auto rows = s.reader->database().Run("SELECT COUNT(*) FROM audit_log");
  ASSERT_TRUE(rows);
  EXPECT_EQ(SqlInt((*rows)[0][0]), 50);
  auto indexed = s.reader->IndexHead();
  ASSERT_TRUE(indexed);
  EXPECT_EQ(*indexed, 50);
  VerifyReport v = VerifyAuditChain(*s.reader, {});
  EXPECT_TRUE(v.ok) << v.problem;
}

// With the journal, a commit is the journal write alone: decisions are
// acknowledged while another connection holds SQLite's write lock, and the
// ingest thread feeds the tables once the lock is free and the lag passed.
TEST(AuditJournalStore, CommitsDoNotWaitForSQLite) {
  ScratchDir d;
  JournalStores s(d);
  ManualClock clock{1'795'000'000'000};
  AuditLog log(std::move(s.writer), clock, nullptr, {});
  ASSERT_TRUE(s.reader->database().Run("BEGIN IMMEDIATE"));  // another process writes
  std::vector<std::future<bool>> acked;
  for (int i = 0; i < 10; ++i) {
    auto p = std::make_shared<std::promise<bool>>();
    acked.push_back(p->get_future());
    ASSERT_TRUE(log.Submit(DecisionEntry({.id = "l" + std::to_string(i)}),
                           [p](const Result<bool>& ok) { p->set_value(ok.ok()); }));
  }
  for (auto& f : acked) {
    // Well inside SQLite's busy timeout (5 s): the commit never asked for the lock.
    ASSERT_EQ(f.wait_for(std::chrono::seconds(3)), std::future_status::ready) << "a commit waited for SQLite's lock";
    EXPECT_TRUE(f.get());
  }
  ASSERT_TRUE(s.reader->database().Run("COMMIT"));
  clock.Advance(limits::kAuditIndexLag.count());
  EXPECT_TRUE(log.WaitUntilIndexed(10, std::chrono::seconds(20)));
  EXPECT_EQ(*s.reader->IndexHead(), 10);
}

// Counts the syncs of every segment file its opener opens.
class SyncCounter {
 public:
  JournalFileOpener Opener() {
    return WrappingOpener([this](std::unique_ptr<JournalFile> f) { return std::make_unique<File>(std::move(f), this); });
  }
  int count() {
    std::lock_guard lk(mu_);
    return syncs_;
  }
  void Reset() {
    std::lock_guard lk(mu_);
    syncs_ = 0;
  }
  // Whether the count reaches `n` within 10 s.
  bool WaitFor(int n) {
    std::unique_lock lk(mu_);
    return cv_.wait_for(lk, std::chrono::seconds(10), [&] { return syncs_ >= n; });
  }

 private:
  class File final : public ForwardingFile {
   public:
    File(std::unique_ptr<JournalFile> inner, SyncCounter* counter)
        : ForwardingFile(std::move(inner)), counter_(counter) {}
    Result<bool> Sync() override {
      auto ok = inner_->Sync();
      std::lock_guard lk(counter_->mu_);
      counter_->syncs_++;
      counter_->cv_.notify_all();
      return ok;
    }

   private:
    SyncCounter* counter_;
  };
  std::mutex mu_;
  std::condition_variable cv_;
  int syncs_ = 0;
};

// The store kubegate's writer opens on d/kg.db, its journal's segments
// opened by `opener`; null (with a test failure) when it cannot start.
std::unique_ptr<AuditStore> JournalStore(const ScratchDir& d, JournalFileOpener opener = OpenPosixJournalFile) {
  auto opened = AuditStore::Open(StoreConfig{.sqlite_path = d / "kg.db"});
  EXPECT_TRUE(opened) << opened.error().message;
  if (!opened) return nullptr;
  auto started = (*opened)->StartJournal(std::move(opener));
  EXPECT_TRUE(started) << started.error().message;
  return started ? std::move(*opened) : nullptr;
}

// The writer makes the next segment's file while no commit waits: with a
// group per segment, every segment is renamed from a prepared file and
// none is created on a commit's path; the chain reads back and verifies.
TEST(AuditJournalStore, TheWriterPreparesEachNextSegmentBetweenCommits) {
  ScratchDir d;
  std::vector<std::string> log;  // the writer thread's only, read after it ends
  auto store = JournalStore(d, LoggingOpener(&log));
  ASSERT_TRUE(store);
  store->journal()->set_segment_bytes(1);
  ManualClock clock{1'795'000'000'000};
  {
    AuditLog audit(std::move(store), clock, nullptr, {});
    for (int i = 0; i < 5; ++i) {
      std::promise<bool> acked;
      ASSERT_TRUE(audit.Submit(DecisionEntry({.id = "p" + std::to_string(i)}),
                               [&](const Result<bool>& ok) { acked.set_value(ok.ok()); }));
      ASSERT_TRUE(acked.get_future().get());
    }
  }
  auto count = [&](const std::string& prefix, const std::string& suffix) {
    return std::count_if(log.begin(), log.end(),
                         [&](const std::string& l) { return l.rfind(prefix, 0) == 0 && l.ends_with(suffix); });
  };
  EXPECT_EQ(count("open ", ".journal"), 0) << "a segment was created on a commit's path";
  EXPECT_EQ(count("rename to ", ".journal"), 5);
  auto reader = AuditStore::Open(StoreConfig{.sqlite_path = d / "kg.db"});
  ASSERT_TRUE(reader);
  auto all = (*reader)->AuditRange(0, 100);
  ASSERT_TRUE(all) << all.error().message;
  EXPECT_EQ(all->size(), 5u);
  VerifyReport v = VerifyAuditChain(**reader, {});
  EXPECT_TRUE(v.ok) << v.problem;
}

// audit.fsync: per_commit with the journal: a decision's group is synced
// before it is acknowledged; a result (nobody waits for it) is written at
// once, readable, and synced by the next decision's group or within
// kAuditUnawaitedSyncMax.
TEST(AuditJournalStore, ResultsAreSyncedWithTheNextDecisionOrWithinTheBound) {
  ScratchDir d;
  SyncCounter syncs;
  auto store = JournalStore(d, syncs.Opener());
  ASSERT_TRUE(store);
  auto synced = [&] { return syncs.count(); };
  ManualClock clock{1'795'000'000'000};
  AuditLog log(std::move(store), clock, nullptr, {});
  auto reader = AuditStore::Open(StoreConfig{.sqlite_path = d / "kg.db"});
  ASSERT_TRUE(reader);

  ASSERT_TRUE(log.Submit(ResultEntry("r1", 200)));
  log.Flush();
  auto seen = (*reader)->AuditByRequest("r1");
  ASSERT_TRUE(seen);
  EXPECT_EQ(seen->size(), 1u) << "a result is readable once written";
  EXPECT_EQ(synced(), 0) << "a group nobody waits for was synced on the request path";

  std::promise<bool> acked;
  ASSERT_TRUE(log.Submit(DecisionEntry({.id = "r2"}), [&](const Result<bool>& ok) { acked.set_value(ok.ok()); }));
  EXPECT_TRUE(acked.get_future().get());
  EXPECT_EQ(synced(), 1) << "a decision is acknowledged only once synced";

  ASSERT_TRUE(log.Submit(ResultEntry("r2", 200)));
  log.Flush();
  EXPECT_EQ(synced(), 1);
  clock.Advance(limits::kAuditUnawaitedSyncMax.count());
  EXPECT_TRUE(syncs.WaitFor(2)) << "the result was not synced within the bound";
}

// Entries queued with SubmitLater wait for WakeWriter, then go in one
// group commit: a worker wakes the writer once per turn of its loop, not
// once per entry (net/audit_writer_wakes.h).
TEST(AuditJournalStore, EntriesQueuedLaterWaitForOneWakeUpAndGoInOneGroup) {
  ScratchDir d;
  auto store = JournalStore(d);
  ASSERT_TRUE(store);
  ManualClock clock{1'795'000'000'000};
  AuditLog log(std::move(store), clock, nullptr, {});
  std::promise<bool> acked;
  ASSERT_TRUE(log.Submit(DecisionEntry({.id = "r0"}), [&](const Result<bool>& ok) { acked.set_value(ok.ok()); }));
  ASSERT_TRUE(acked.get_future().get());
  log.Flush();  // returns once the writer waits again (nothing due for a minute)
  for (int i = 1; i <= 5; ++i) ASSERT_TRUE(log.SubmitLater(ResultEntry("r" + std::to_string(i), 200)));
  EXPECT_EQ(log.stats().committed, 1u) << "SubmitLater woke the writer";
  log.WakeWriter();
  auto flushed = std::async(std::launch::async, [&] { log.Flush(); });
  ASSERT_EQ(flushed.wait_for(std::chrono::seconds(10)), std::future_status::ready) << "WakeWriter did not wake it";
  EXPECT_EQ(log.stats().committed, 6u);
  EXPECT_EQ(log.stats().batches, 2u) << "the five entries were not one group";
}

// With audit.fsync: interval the caller's WakeWriter() writes its turn's
// group itself (no hand-over to the writer thread and back); the writer
// still syncs within the interval and signs checkpoints. With per_commit
// the writer thread commits and syncs, as before.
// Whether this process's thread named `name` is inside system call `nr`,
// polled until `limit` (/proc/self/task/TID/syscall names the call a
// blocked thread is in).
bool ThreadEntersSyscall(const std::string& name, long nr, std::chrono::seconds limit) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    for (const auto& t : fs::directory_iterator("/proc/self/task")) {
      std::string comm;
      std::getline(std::ifstream(t.path() / "comm"), comm);
      if (comm != name) continue;
      long in = -1;
      std::ifstream(t.path() / "syscall") >> in;
      if (in == nr) return true;
    }
    std::this_thread::yield();
  }
  return false;
}

// A checkpoint the writer cannot write yet (another connection holds
// SQLite's write lock, as the ingest thread's transaction or a WAL
// checkpoint does for tens of ms) holds up no commit on a caller's turn:
// the writer writes checkpoints without the commit lock. With it, every
// caller's turn in that time handed its group to the stuck writer (p99 at
// 16 connections 16-17 ms, 6.5 ms without; docs/performance.md).
TEST(AuditJournalStore, ACheckpointWaitingForSQLiteHoldsUpNoCommit) {
  ScratchDir d;
  auto store = JournalStore(d);
  ASSERT_TRUE(store);
  ManualClock clock{1'795'000'000'000};
  auto signer = Signer::LoadOrCreate(d / "signing.pem");
  ASSERT_TRUE(signer);
  AuditLogOptions options;
  options.checkpoint_every = 1;
  options.fsync_interval_ms = 100;
  AuditLog log(std::move(store), clock, signer->get(), options);
  std::promise<bool> first;  // the writer starts the segment
  ASSERT_TRUE(log.Submit(DecisionEntry({.id = "c0"}), [&](const Result<bool>& ok) { first.set_value(ok.ok()); }));
  ASSERT_TRUE(first.get_future().get());
  ASSERT_TRUE(log.WaitUntilWriterIdle(std::chrono::seconds(10)));
  auto other = AuditStore::Open(StoreConfig{.sqlite_path = d / "kg.db"});
  ASSERT_TRUE(other);
  ASSERT_TRUE((*other)->database().Run("BEGIN IMMEDIATE"));
  auto commit_here = [&](const std::string& id) {
    bool acked = false;
    EXPECT_TRUE(log.SubmitLater(DecisionEntry({.id = id}), [&](const Result<bool>& ok) { acked = ok.ok(); }));
    log.WakeWriter();
    return acked;  // set only if the group was committed on this thread, in WakeWriter
  };
  EXPECT_TRUE(commit_here("c1"));  // its checkpoint is due: the writer goes to write it
  ASSERT_TRUE(ThreadEntersSyscall("kg-audit-write", SYS_clock_nanosleep, std::chrono::seconds(10)))
      << "the writer never waited for SQLite's lock";
  EXPECT_TRUE(commit_here("c2")) << "a caller's turn waited for the writer's checkpoint";
  ASSERT_TRUE((*other)->database().Run("COMMIT"));
  log.Flush();
  ASSERT_TRUE(log.WaitUntilWriterIdle(std::chrono::seconds(10)));
  EXPECT_GE(log.stats().checkpoints, 2u);
  EXPECT_EQ(log.stats().committed, 3u);
}

TEST(AuditJournalStore, WithAnIntervalTheCallersTurnCommitsItsOwnGroup) {
  for (bool interval : {true, false}) {
    SCOPED_TRACE(interval ? "interval" : "per_commit");
    ScratchDir d;
    SyncCounter syncs;
    auto store = JournalStore(d, syncs.Opener());
    ASSERT_TRUE(store);
    const StoreConfig c{.sqlite_path = d / "kg.db"};
    ManualClock clock{1'795'000'000'000};
    auto signer = Signer::LoadOrCreate(d / "signing.pem");
    ASSERT_TRUE(signer);
    AuditLogOptions options;
    options.checkpoint_every = 4;
    if (interval) options.fsync_interval_ms = 100;
    AuditLog log(std::move(store), clock, signer->get(), options);
    // The first group starts the journal's segment: the writer does that
    // (it syncs a directory), never the caller's turn.
    std::promise<bool> first;
    ASSERT_TRUE(log.Submit(DecisionEntry({.id = "w0"}), [&](const Result<bool>& ok) { first.set_value(ok.ok()); }));
    ASSERT_TRUE(first.get_future().get());
    log.Flush();
    if (interval) {
      // Synced: the writer then sleeps until the next checkpoint time.
      clock.Advance(options.fsync_interval_ms);
      ASSERT_TRUE(syncs.WaitFor(1));
    }
    syncs.Reset();
    ASSERT_TRUE(log.WaitUntilWriterIdle(std::chrono::seconds(10)));
    const std::uint64_t syncs_before = log.stats().syncs;
    std::thread::id acked_on;
    bool acked = false;
    std::promise<void> acked_promise;
    ASSERT_TRUE(log.SubmitLater(DecisionEntry({.id = "w1"}), [&](const Result<bool>& ok) {
      acked = ok.ok();
      acked_on = std::this_thread::get_id();
      acked_promise.set_value();
    }));
    ASSERT_TRUE(log.SubmitLater(ResultEntry("w0", 200)));
    log.WakeWriter();
    if (interval) {
      EXPECT_TRUE(acked) << "WakeWriter returned before its group was committed";
      EXPECT_EQ(acked_on, std::this_thread::get_id());
    } else {
      acked_promise.get_future().wait();
      EXPECT_NE(acked_on, std::this_thread::get_id()) << "per_commit synced on the caller's thread";
    }
    EXPECT_TRUE(acked);
    log.Flush();
    EXPECT_EQ(log.stats().committed, 3u);
    EXPECT_EQ(log.stats().batches, 2u);
    auto reader = AuditStore::Open(c);
    ASSERT_TRUE(reader);
    auto seen = (*reader)->AuditByRequest("w1");
    ASSERT_TRUE(seen);
    EXPECT_EQ(seen->size(), 1u) << "an acknowledged decision is readable";

    // The writer, asleep until the next checkpoint time, learns of the
    // unsynced commits and syncs them within the interval.
    if (interval) {
      EXPECT_EQ(log.stats().syncs, syncs_before);
      clock.Advance(options.fsync_interval_ms);
      EXPECT_TRUE(syncs.WaitFor(1)) << "the interval sync never came";
    }
    // A fourth entry makes a checkpoint due (every 4).
    ASSERT_TRUE(log.SubmitLater(ResultEntry("w1", 200)));
    log.WakeWriter();
    bool signed_one = false;
    for (int i = 0; i < 200 && !signed_one; ++i) {
      auto cps = (*reader)->Checkpoints();
      signed_one = cps && !cps->empty();
      if (!signed_one) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    EXPECT_TRUE(signed_one) << "no checkpoint after four entries";
  }
}

// A segment file whose next sync, once armed, waits until released.
class StallingSyncFile final : public ForwardingFile {
 public:
  struct Gate {
    std::mutex mu;
    std::condition_variable cv;
    bool armed = false, entered = false, released = false;
  };
  StallingSyncFile(std::unique_ptr<JournalFile> inner, Gate* gate) : ForwardingFile(std::move(inner)), gate_(gate) {}
  Result<bool> Sync() override {
    std::unique_lock lk(gate_->mu);
    if (gate_->armed) {
      gate_->armed = false;
      gate_->entered = true;
      gate_->cv.notify_all();
      gate_->cv.wait(lk, [&] { return gate_->released; });
    }
    lk.unlock();
    return inner_->Sync();
  }

 private:
  Gate* gate_;
};

// With an interval, a decision is committed while the writer's sync of
// earlier ones is still at the disk: syncs are off the request path, also
// for how long they take.
TEST(AuditJournalStore, WithAnIntervalASlowSyncHoldsUpNoCommit) {
  ScratchDir d;
  StallingSyncFile::Gate gate;
  auto store = JournalStore(d, WrappingOpener([&](std::unique_ptr<JournalFile> f) {
    return std::make_unique<StallingSyncFile>(std::move(f), &gate);
  }));
  ASSERT_TRUE(store);
  ManualClock clock{1'795'000'000'000};
  AuditLogOptions options;
  options.fsync_interval_ms = 100;
  AuditLog log(std::move(store), clock, nullptr, options);
  std::promise<bool> first;
  ASSERT_TRUE(log.Submit(DecisionEntry({.id = "s0"}), [&](const Result<bool>& ok) { first.set_value(ok.ok()); }));
  ASSERT_TRUE(first.get_future().get());
  {
    std::unique_lock lk(gate.mu);
    gate.armed = true;
  }
  clock.Advance(options.fsync_interval_ms);  // the writer's sync of s0 comes, and stalls
  {
    std::unique_lock lk(gate.mu);
    ASSERT_TRUE(gate.cv.wait_for(lk, std::chrono::seconds(10), [&] { return gate.entered; }));
  }
  auto acked = std::make_shared<std::promise<bool>>();
  auto committed = std::async(std::launch::async, [&] {
    EXPECT_TRUE(log.SubmitLater(DecisionEntry({.id = "s1"}),
                                [acked](const Result<bool>& ok) { acked->set_value(ok.ok()); }));
    log.WakeWriter();
  });
  auto f = acked->get_future();
  const bool in_time = f.wait_for(std::chrono::seconds(5)) == std::future_status::ready;
  {
    std::lock_guard lk(gate.mu);
    gate.released = true;
  }
  gate.cv.notify_all();
  committed.wait();
  EXPECT_TRUE(in_time) << "a commit waited for the interval sync";
  EXPECT_TRUE(f.get());
}

// A SQLite store in `d` with its journal, whose segment files fail on demand.
struct FaultyJournalStore {
  explicit FaultyJournalStore(const ScratchDir& d)
      : config{.sqlite_path = d / "kg.db"},
        store(JournalStore(d, WrappingOpener([this](std::unique_ptr<JournalFile> f) {
          return std::make_unique<FaultyFile>(std::move(f), &fail_write, &fail_sync);
        }))) {}
  StoreConfig config;
  bool fail_write = false, fail_sync = false;  // before `store`: its opener points here
  std::unique_ptr<AuditStore> store;
};

// A journal write that fails on the caller's turn goes back to the writer,
// which refuses the decision (fail closed): nothing is acknowledged.
TEST(AuditJournalStore, AFailedWriteOnTheCallersTurnIsRefusedByTheWriter) {
  ScratchDir d;
  FaultyJournalStore s(d);
  ASSERT_TRUE(s.store);
  ManualClock clock{1'795'000'000'000};
  AuditLogOptions options;
  options.fsync_interval_ms = 100;
  AuditLog log(std::move(s.store), clock, nullptr, options);
  // A first group starts the segment (not done on the caller's turn).
  std::promise<bool> first;
  ASSERT_TRUE(log.Submit(DecisionEntry({.id = "g0"}), [&](const Result<bool>& ok) { first.set_value(ok.ok()); }));
  ASSERT_TRUE(first.get_future().get());
  ASSERT_TRUE(log.WaitUntilWriterIdle(std::chrono::seconds(10)));
  s.fail_write = true;
  std::promise<bool> acked;
  ASSERT_TRUE(log.SubmitLater(DecisionEntry({.id = "g1"}), [&](const Result<bool>& ok) { acked.set_value(ok.ok()); }));
  log.WakeWriter();
  auto f = acked.get_future();
  ASSERT_EQ(f.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  EXPECT_FALSE(f.get()) << "a decision whose write failed was acknowledged";
  s.fail_write = false;
  auto reader = AuditStore::Open(s.config);
  ASSERT_TRUE(reader);
  auto seen = (*reader)->AuditByRequest("g1");
  ASSERT_TRUE(seen);
  EXPECT_TRUE(seen->empty());
}

// A journal write that fails refuses the decisions of its group (fail
// closed) and the writer takes writes again once the disk does.
TEST(AuditJournalStore, AFailedJournalWriteRefusesTheRequestsOfItsGroup) {
  ScratchDir d;
  FaultyJournalStore s(d);
  ASSERT_TRUE(s.store);
  ManualClock clock{1'795'000'000'000};
  AuditLog log(std::move(s.store), clock, nullptr, {});
  std::atomic<int> refused{0}, committed{0};
  auto done = [&](const Result<bool>& ok) { ok ? committed++ : refused++; };
  s.fail_sync = true;
  ASSERT_TRUE(log.Submit(DecisionEntry({.id = "f1"}), done));
  log.Flush();
  EXPECT_EQ(refused.load(), 1);
  EXPECT_FALSE(log.healthy());
  s.fail_sync = false;
  // A result (no caller waiting) is retried by the writer until it commits.
  ASSERT_TRUE(log.Submit(ResultEntry("f0", 200)));
  ASSERT_TRUE(log.WaitUntilHealthy(std::chrono::seconds(10)));
  ASSERT_TRUE(log.Submit(DecisionEntry({.id = "f2"}), done));
  log.Flush();
  EXPECT_EQ(committed.load(), 1);
  EXPECT_TRUE(log.healthy());
  auto reader = AuditStore::Open(s.config);
  ASSERT_TRUE(reader);
  auto all = (*reader)->AuditRange(0, 1000);
  ASSERT_TRUE(all);
  ASSERT_FALSE(all->empty());
  for (const auto& e : *all) EXPECT_NE(e.index.request_id, "f1");
}

}  // namespace
}  // namespace kubegate
