#include "audit/recording_link.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/digest.h"
#include "common/json_fields.h"

namespace kubegate {

bool IsRecordingFileName(const std::string& name) {
  return !name.empty() && name[0] != '.' && name.find('/') == std::string::npos &&
         name.find('\0') == std::string::npos;
}

namespace {

std::optional<std::string> ReadWhole(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// "" or the problem; `content` receives the file when it matches.
std::string Check(const nlohmann::json& rec, const std::string& dir, std::string* content, std::string* path_out) {
  std::string file = StringField(rec, "file");
  std::string want = StringField(rec, "sha256");
  if (!IsRecordingFileName(file)) return "its recording file name is not one kubegate writes";
  std::string path = (std::filesystem::path(dir) / file).string();
  if (path_out) *path_out = path;
  auto bytes = ReadWhole(path);
  if (!bytes) return "its recording " + path + " is missing";
  if (Sha256Hex(*bytes) != want) return "its recording " + path + " does not match the hash in the record (swapped or edited)";
  if (content) *content = std::move(*bytes);
  return "";
}

}  // namespace

std::string CheckRecordingOf(const std::string& canonical, const std::string& dir) {
  if (canonical.find("\"recording\"") == std::string::npos) return "";
  auto j = nlohmann::json::parse(canonical, nullptr, false);
  if (!j.is_object() || !j.contains("recording") || !j["recording"].is_object()) return "";
  return Check(j["recording"], dir, nullptr, nullptr);
}

Result<LoadedRecording> LoadRecording(AuditStore& store, const std::string& request_id, const std::string& dir) {
  auto entries = store.AuditByRequest(request_id);
  if (!entries) return entries.error();
  LoadedRecording out;
  out.request_id = request_id;
  nlohmann::json result;
  for (const auto& e : *entries) {
    auto j = nlohmann::json::parse(e.canonical, nullptr, false);
    if (!j.is_object()) continue;
    if (e.index.phase == "decision") out.decision = j;
    if (e.index.phase == "result") result = j;
  }
  if (result.is_object() && result.contains("recording")) out.summary = result["recording"];
  if (out.summary.is_null()) {
    bool planned = !StringField(out.decision, "recording_id").empty();
    std::string why = !planned            ? "has no recording"
                      : result.is_null()  ? "has a recording that is not finished yet (the session is open)"
                                          : "has no recording: no session was opened (HTTP " +
                                               std::to_string(IntField(result, "status").value_or(0)) + ")";
    return Error{404, "NotFound", "request " + request_id + " " + why};
  }
  if (std::string bad = Check(out.summary, dir, &out.content, &out.path); !bad.empty()) {
    return Error{409, "Conflict", "request " + request_id + ": " + bad};
  }
  return out;
}

}  // namespace kubegate
