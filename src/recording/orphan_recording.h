// Ends a recording whose gateway stopped in the middle of the session (a
// replica killed): a survivor, which reads the same recording directory,
// closes the file the way the recorder would have, so the session's result
// record can name it with its hash and `audit verify` covers it.
//
//   auto summary = EndOrphanRecording(dir / file, "kg-...", "exec", started_ms, now_ms,
//                                     "the gateway replica ... stopped");
//   if (summary) result.recording = *summary;   // plus "file"
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "common/result.h"

namespace kubegate {

// What it does to the file at `path` (`kind`: exec, attach, portforward):
//   - a last line without its newline (the dead writer's partial write) is
//     cut, and the summary says how many bytes (`cut_bytes`);
//   - a file without its header line (the recorder buffers its writes, so
//     a killed replica often leaves the file empty) gets a minimal header
//     naming the request (`header_rebuilt`); the decision record has the rest;
//   - the closing note is appended: an asciicast "m" event, or for a
//     port-forward recording a line {"t": ..., "ended_by": note};
//   - the summary the result record keeps is returned: format, sha256 and
//     file_bytes of the file as it now is, ended_by = note, truncated
//     (whatever the writer had not written is lost).
// Fails when the file cannot be read or written.
Result<nlohmann::json> EndOrphanRecording(const std::string& path, const std::string& request_id,
                                          const std::string& kind, std::int64_t started_ms, std::int64_t now_ms,
                                          const std::string& note);

}  // namespace kubegate
