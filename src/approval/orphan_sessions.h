// Recorded sessions of a gateway replica that stopped (SIGKILL, a lost
// node): their connections died with it, so nobody ended their recordings
// or wrote their result records. A surviving replica does, once the
// replica has been silent for `dead_after_ms`:
//   - the recording (on the volume every replica shares) ends with a note
//     saying which replica stopped and which one ended it
//     (recording/orphan_recording.h);
//   - a result record for the request names the file with its SHA-256, so
//     `kubegate audit verify`, `replay` and the REST API cover it.
// A recording written to within the last `dead_after_ms` is left alone:
// its replica is alive but cut off from the store, and still writing.
//
//   int n = EndOrphanSessions(approvals, audit_sink, config.RecordingDir(), clock, kReplicaDeadAfter);
#pragma once

#include <cstdint>
#include <string>

#include "approval/approval.h"
#include "audit/audit_sink.h"
#include "common/clock.h"

namespace kubegate {

// Store thread. Returns how many sessions it ended.
int EndOrphanSessions(ApprovalService& approvals, AuditSink& sink, const std::string& recording_dir,
                      const Clock& clock, std::int64_t dead_after_ms);

}  // namespace kubegate
