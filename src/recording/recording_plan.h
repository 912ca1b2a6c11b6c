// RecordingPlan: whether an exec, attach or port-forward session is
// recorded, where, and how; decided before anything is forwarded, so a
// rule that requires a recording can refuse in time.
//
//   auto plan = PlanRecording(config.recording, config.RecordingDir(), rule, session);
//   if (plan) { file = CreateRecordingFile(plan->path); ... }   // none: not recorded
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "classify/request_info.h"
#include "config/config.h"
#include "policy/policy.h"
#include "recording/session_recording.h"

namespace kubegate {

// The session as the recording names it.
struct RecordedSession {
  std::string request_id;
  std::string user;
  const RequestInfo* info = nullptr;  // a stream (info->stream != kNone)
  std::string approval_id, grant_id;
};

struct RecordingPlan {
  std::string path;  // DIR/REQUEST_ID.cast, or .portforward.jsonl
  RecordingHeader header;
  RecordingOptions options;
  bool required = false;  // the rule requires it: no recording, no session
};

// None when the session is not recorded (recording off and the rule does
// not require it, or the request is not a session). `rule` may be null.
// `dir` is where recordings go (Config::RecordingDir(), which fills in
// settings.dir's default).
std::optional<RecordingPlan> PlanRecording(const RecordingSettings& settings, const std::string& dir,
                                           const PolicyRule* rule, const RecordedSession& session);

}  // namespace kubegate
