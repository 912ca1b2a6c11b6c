// Shared body of the session decoder fuzz targets: the input is the bytes
// of one side of an upgraded connection. It is decoded in one piece and
// again in pieces cut where the input's own bytes say. Both decodings must
// see the same events. Then it is recorded (client side and server side);
// every line written must be JSON, and the summary's hash must be that of
// what was written.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/digest.h"
#include "recording/session_recording.h"

namespace kubegate::fuzz {

struct StringSink : RecordingSink {
  std::string* out;
  explicit StringSink(std::string* o) : out(o) {}
  bool Write(std::string_view b) override {
    out->append(b);
    return true;
  }
  bool Close() override { return true; }
};

inline std::vector<std::string> Events(const std::vector<StreamEvent>& events) {
  std::vector<std::string> out;
  for (const auto& e : events) {
    out.push_back(std::to_string(static_cast<int>(e.kind)) + "|" + e.channel + "|" + e.data + "|" +
                  std::to_string(e.size) + "|" + e.port + "|" + e.request_id);
  }
  return out;
}

// The events without their payload: what a decoder told to stop keeping
// payload (past a recording's cap) must still report.
inline std::vector<std::string> Shapes(const std::vector<StreamEvent>& events) {
  std::vector<std::string> out;
  for (const auto& e : events) {
    out.push_back(std::to_string(static_cast<int>(e.kind)) + "|" + e.channel + "|" + std::to_string(e.size) + "|" +
                  e.port + "|" + e.request_id);
  }
  return out;
}

inline void FuzzSession(std::string_view upgrade, std::string_view protocol, const uint8_t* data, size_t size,
                        bool portforward) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  constexpr std::size_t kMaxMessage = 4096;
  auto whole = MakeSessionDecoder(upgrade, protocol, kMaxMessage);
  auto cut = MakeSessionDecoder(upgrade, protocol, kMaxMessage);
  whole->FromClient(in);
  std::size_t at = 0;
  while (at < in.size()) {
    std::size_t n = 1 + static_cast<unsigned char>(in[at]) % 13;
    cut->FromClient(in.substr(at, n));
    at += n;
  }
  // Told halfway to stop keeping payload: the same events and sizes.
  auto capped = MakeSessionDecoder(upgrade, protocol, kMaxMessage);
  capped->FromClient(in.substr(0, in.size() / 2));
  capped->StopKeepingPayload();
  capped->FromClient(in.substr(in.size() / 2));
  // Events before an error may differ in how far each got; compare when
  // both read the input cleanly.
  const std::vector<StreamEvent> whole_events = whole->Take();
  if (!whole->error() && !cut->error() && Events(whole_events) != Events(cut->Take())) std::abort();
  if (!whole->error() && !capped->error() && Shapes(whole_events) != Shapes(capped->Take())) std::abort();

  std::string file;
  RecordingHeader h;
  h.request_id = "kg-fuzz";
  h.kind = portforward ? "portforward" : "exec";
  h.tty = size % 2;
  RecordingOptions o;
  o.max_bytes = 2048;
  SessionRecorder rec(std::make_unique<StringSink>(&file), h, o, MakeSessionDecoder(upgrade, protocol, kMaxMessage));
  rec.FromClient(in.substr(0, in.size() / 2), 1);
  rec.FromServer(in, 2);
  rec.FromClient(in.substr(in.size() / 2), 3);
  RecordingSummary s = rec.Finish(4, "");
  if (s.sha256 != Sha256Hex(file)) std::abort();
  std::istringstream lines(file);
  std::string line;
  while (std::getline(lines, line)) {
    if (nlohmann::json::parse(line, nullptr, false).is_discarded()) std::abort();
  }
}

}  // namespace kubegate::fuzz
