#include "recording/orphan_recording.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string_view>

#include "common/digest.h"
#include "common/text.h"

namespace kubegate {
namespace {

Error FileError(const std::string& what, const std::string& path) {
  return Error{500, "InternalError", what + " " + path + ": " + std::strerror(errno)};
}

// Reads are bounded: a recording may be gigabytes, and this runs on the
// store thread.
constexpr std::size_t kChunk = 1 << 20;
constexpr std::size_t kMaxHeaderLine = 64 << 10;

// The length of the file's prefix that ends with its last newline.
Result<off_t> CompleteLines(int fd, off_t size, const std::string& path) {
  std::string buf(kChunk, '\0');
  off_t end = size;
  while (end > 0) {
    const off_t from = end > static_cast<off_t>(kChunk) ? end - static_cast<off_t>(kChunk) : 0;
    const auto len = static_cast<std::size_t>(end - from);
    if (::pread(fd, buf.data(), len, from) != static_cast<ssize_t>(len)) return FileError("cannot read", path);
    std::string_view piece(buf.data(), len);
    if (auto nl = piece.rfind('\n'); nl != std::string_view::npos) return from + static_cast<off_t>(nl) + 1;
    end = from;
  }
  return off_t{0};
}

}  // namespace

Result<nlohmann::json> EndOrphanRecording(const std::string& path, const std::string& request_id,
                                          const std::string& kind, std::int64_t started_ms, std::int64_t now_ms,
                                          const std::string& note) {
  int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return FileError("cannot open the recording", path);
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) return FileError("cannot read", path);
  const bool asciicast = kind != "portforward";
  // A partial last line: what the stopped writer had half written.
  auto keep = CompleteLines(fd, st.st_size, path);
  if (!keep) return keep.error();
  const std::uint64_t cut = static_cast<std::uint64_t>(st.st_size - *keep);
  // The header line: present and a JSON object, or rebuilt.
  std::string first(static_cast<std::size_t>(std::min<off_t>(*keep, kMaxHeaderLine)), '\0');
  if (!first.empty() && ::pread(fd, first.data(), first.size(), 0) != static_cast<ssize_t>(first.size())) {
    return FileError("cannot read", path);
  }
  const std::size_t first_end = first.find('\n');
  const bool rebuilt =
      first_end == std::string::npos || !nlohmann::json::parse(first.substr(0, first_end), nullptr, false).is_object();
  // Everything from `at` on is replaced by `tail`.
  const off_t at = rebuilt ? 0 : *keep;
  std::string tail;
  if (rebuilt) {
    // No header line: a minimal one; nothing before it is kept.
    const std::string title = "kubectl " + kind + " (" + request_id + "); the header was lost with its gateway replica";
    nlohmann::json h = asciicast ? nlohmann::json{{"version", 2}, {"width", 80}, {"height", 24}}
                                 : nlohmann::json{{"kubegate_recording", "portforward/v1"}};
    h["timestamp"] = started_ms / 1000;
    h["title"] = title;
    h["kubegate"] = {{"request_id", request_id}, {"kind", kind}};
    tail = h.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
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
  // Written in place (the name is what the audit record keeps), and synced
  // before the record that carries its hash is written.
  if (::ftruncate(fd, at) != 0 ||
      ::pwrite(fd, tail.data(), tail.size(), at) != static_cast<ssize_t>(tail.size()) || ::fsync(fd) != 0) {
    return FileError("cannot end the recording", path);
  }
  // The hash of the file as it now is, read back in pieces.
  Sha256Stream sha;
  std::string buf(kChunk, '\0');
  const off_t total = at + static_cast<off_t>(tail.size());
  for (off_t pos = 0; pos < total;) {
    const auto len = static_cast<std::size_t>(std::min<off_t>(total - pos, static_cast<off_t>(kChunk)));
    if (::pread(fd, buf.data(), len, pos) != static_cast<ssize_t>(len)) return FileError("cannot read back", path);
    sha.Update(std::string_view(buf.data(), len));
    pos += static_cast<off_t>(len);
  }
  nlohmann::json s = {{"format", asciicast ? "asciicast-v2" : "kubegate-portforward-v1"},
                      {"sha256", sha.HexDigest()},
                      {"file_bytes", static_cast<std::uint64_t>(total)},
                      {"ended_by", note},
                      {"truncated", true}};
  if (cut) s["cut_bytes"] = cut;
  if (rebuilt) s["header_rebuilt"] = true;
  return s;
}

}  // namespace kubegate
