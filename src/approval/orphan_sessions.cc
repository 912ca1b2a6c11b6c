#include "approval/orphan_sessions.h"

#include <sys/stat.h>

#include <spdlog/spdlog.h>

#include "audit/audit_entry.h"
#include "audit/audit_record.h"
#include "audit/recording_link.h"
#include "recording/orphan_recording.h"

namespace kubegate {

int EndOrphanSessions(ApprovalService& approvals, AuditSink& sink, const std::string& recording_dir,
                      const Clock& clock, std::int64_t dead_after_ms) {
  auto orphans = approvals.OrphanSessions(dead_after_ms);
  if (!orphans) return 0;
  int ended = 0;
  for (const OrphanSession& o : *orphans) {
    const std::int64_t now = clock.NowMillis();
    if (!IsRecordingFileName(o.file)) continue;  // a name from the store, joined to a directory
    const std::string path = recording_dir + "/" + o.file;
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0) {
      const std::int64_t written_ms = static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000 + st.st_mtim.tv_nsec / 1'000'000;
      if (written_ms > now - dead_after_ms) continue;  // still being written: its replica lives
    }
    auto claimed = approvals.ClaimOrphanSession(o);
    if (!claimed || !*claimed) continue;  // another survivor has it
    const std::string note = "the session ended with gateway replica " + o.instance_id +
                             ", which stopped (silent for " + std::to_string(dead_after_ms / 1000) +
                             " s); recording closed by replica " + approvals.instance();
    ResultFacts f;
    f.request_id = o.request_id;
    f.completed_ms = now;
    f.status = 101;
    f.duration_ms = now - o.started_ms;
    f.error = note;
    auto summary = EndOrphanRecording(path, o.request_id, o.kind, o.started_ms, now, note);
    if (summary) {
      (*summary)["file"] = o.file;
      f.recording = std::move(*summary);
    } else {
      f.error += "; its recording could not be ended: " + summary.error().message;
    }
    auto entry = BuildResultEntry(f);
    if (!entry || !sink.Submit(std::move(*entry))) {
      spdlog::error("request {}: the result record of a stopped replica's session could not be queued", o.request_id);
      continue;
    }
    spdlog::warn("request {}: {}", o.request_id, note);
    ++ended;
  }
  return ended;
}

}  // namespace kubegate
