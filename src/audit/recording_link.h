// The link between a session's audit record and its recording file: the
// result entry of the request that opened the session names the file and
// holds its SHA-256 (RecordingSummary). Used by `kubegate audit verify`,
// `kubegate recording export`, `kubegate replay` and the REST API.
//
//   auto r = LoadRecording(store, "kg-...", config.RecordingDir());
//   if (r) write(r->content);   // only when the file matches its record
#pragma once

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "common/result.h"
#include "audit/audit_store.h"

namespace kubegate {

struct LoadedRecording {
  std::string request_id;
  nlohmann::json summary;    // the result record's "recording"
  nlohmann::json decision;   // the decision record (who, what, approval)
  std::string path;
  std::string content;
};

// A recording's file name as the gateway writes it: no directory parts,
// no dot files. Names read from records or the store are checked with it
// before they are joined to the recording directory.
bool IsRecordingFileName(const std::string& name);

// The recording of request `request_id`, read and checked against its
// audit record: 404 when the request has none (yet), 409 (Conflict) when
// the file is missing or does not match its hash.
Result<LoadedRecording> LoadRecording(AuditStore& store, const std::string& request_id, const std::string& recording_dir);

// For a result entry's canonical JSON: "" when it names no recording or
// its file matches; otherwise what is wrong (missing, swapped or edited).
std::string CheckRecordingOf(const std::string& canonical_result, const std::string& recording_dir);

}  // namespace kubegate
