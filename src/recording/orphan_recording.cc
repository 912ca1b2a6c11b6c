#include "recording/orphan_recording.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "common/digest.h"
#include "common/text.h"

namespace kubegate {
namespace {

Error FileError(const std::string& what, const std::string& path) {
  return Error{500, "InternalError", what + " " + path + ": " + std::strerror(errno)};
}

}  // namespace

Result<nlohmann::json> EndOrphanRecording(const std::string& path, const std::string& request_id,
                                          const std::string& kind, std::int64_t started_ms, std::int64_t now_ms,
                                          const std::string& note) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return FileError("cannot read the recording", path);
  std::ostringstream all;
  all << in.rdbuf();
  std::string content = all.str();
  in.close();
  const bool asciicast = kind != "portforward";
  // A partial last line: what the stopped writer had half written.
  const std::size_t last_end = content.rfind('\n');
  const std::size_t keep = last_end == std::string::npos ? 0 : last_end + 1;
  const std::size_t cut = content.size() - keep;
  content.resize(keep);
  // Everything written after `keep` is replaced by `tail`.
  std::string tail;
  const bool rebuilt = content.empty() || !nlohmann::json::parse(content.substr(0, content.find('\n')), nullptr, false)
                                               .is_object();
  std::size_t at = keep;
  if (rebuilt) {
    // No header line: a minimal one, and nothing before it is kept.
    at = 0;
    const std::string title = "kubectl " + kind + " (" + request_id + "); the header was lost with its gateway replica";
    nlohmann::json h = asciicast ? nlohmann::json{{"version", 2}, {"width", 80}, {"height", 24}}
                                 : nlohmann::json{{"kubegate_recording", "portforward/v1"}};
    h["timestamp"] = started_ms / 1000;
    h["title"] = title;
    h["kubegate"] = {{"request_id", request_id}, {"kind", kind}};
    tail = h.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    content.clear();
  }
  const std::int64_t t = std::max<std::int64_t>(0, now_ms - started_ms);
  char secs[32];
  std::snprintf(secs, sizeof secs, "%lld.%03lld", static_cast<long long>(t / 1000), static_cast<long long>(t % 1000));
  if (asciicast) {
    tail += std::string("[") + secs + ", \"m\", ";
    AppendJsonString(tail, note);
    tail += "]\n";
  } else {
    tail += "{\"ended_by\":";
    AppendJsonString(tail, note);
    tail += std::string(",\"t\":\"") + secs + "\"}\n";
  }
  content += tail;
  // Written in place (the name is what the audit record keeps), and synced
  // before the record that carries its hash is written.
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return FileError("cannot open the recording", path);
  bool ok = ::ftruncate(fd, static_cast<off_t>(at)) == 0 &&
            ::pwrite(fd, tail.data(), tail.size(), static_cast<off_t>(at)) == static_cast<ssize_t>(tail.size()) &&
            ::fsync(fd) == 0;
  ::close(fd);
  if (!ok) return FileError("cannot end the recording", path);
  nlohmann::json s = {{"format", asciicast ? "asciicast-v2" : "kubegate-portforward-v1"},
                      {"sha256", Sha256Hex(content)},
                      {"file_bytes", content.size()},
                      {"ended_by", note},
                      {"truncated", true}};
  if (cut) s["cut_bytes"] = cut;
  if (rebuilt) s["header_rebuilt"] = true;
  return s;
}

}  // namespace kubegate
