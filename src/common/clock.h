// Clock: wall time behind an interface, so the audit log, retention and
// (later) approval expiry can be tested with injected time.
//
//   const Clock& clock = SystemClock();
//   std::int64_t now = clock.NowMillis();          // Unix epoch, ms
//   FormatRfc3339Millis(now) == "2026-11-22T07:03:53.123Z"
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.h"

namespace kubegate {

class Clock {
 public:
  virtual ~Clock() = default;
  // Milliseconds since the Unix epoch.
  virtual std::int64_t NowMillis() const = 0;
};

// The process-wide real clock.
const Clock& SystemClock();

// A clock that moves only when told; for tests.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(std::int64_t start_ms) : now_(start_ms) {}
  std::int64_t NowMillis() const override { return now_.load(); }
  void Advance(std::int64_t ms) { now_ += ms; }
  void Set(std::int64_t ms) { now_ = ms; }

 private:
  std::atomic<std::int64_t> now_;
};

// "2026-11-22T07:03:53.123Z" (UTC, millisecond precision).
std::string FormatRfc3339Millis(std::int64_t epoch_ms);
// "2026-11-22T07:03:53Z" (UTC, second precision; Kubernetes metav1.Time).
std::string FormatRfc3339(std::int64_t epoch_ms);
// Reads RFC 3339 with a Z or +hh:mm offset and optional fraction.
Result<std::int64_t> ParseRfc3339(std::string_view text);

// Durations as written in config files and on command lines: "90d",
// "15m", "1h30m", "500ms", "30s". Units: ms, s, m, h, d. No sign.
Result<std::int64_t> ParseDurationMillis(std::string_view text);

}  // namespace kubegate
