#include "common/clock.h"

#include <chrono>
#include <cstdio>
#include <ctime>

namespace kubegate {
namespace {

class RealClock final : public Clock {
 public:
  std::int64_t NowMillis() const override {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
};

// Days from 1970-01-01 to Y-M-D (proleptic Gregorian), after H. Hinnant.
std::int64_t DaysFromCivil(std::int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

// Y-M-D of the day `days` after 1970-01-01, after H. Hinnant.
void CivilFromDays(std::int64_t days, std::int64_t& y, unsigned& m, unsigned& d) {
  days += 719468;
  const std::int64_t era = (days >= 0 ? days : days - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(days - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  d = doy - (153 * mp + 2) / 5 + 1;
  m = mp < 10 ? mp + 3 : mp - 9;
  y = static_cast<std::int64_t>(yoe) + era * 400 + (m <= 2);
}

void PutDigits(char* p, unsigned v, int n) {
  for (int i = n - 1; i >= 0; --i, v /= 10) p[i] = static_cast<char>('0' + v % 10);
}

// The C library's form, for years FormatRfc3339Millis does not write itself.
std::string FormatWithLibc(std::int64_t secs, int frac) {
  std::time_t t = static_cast<std::time_t>(secs);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
  return buf;
}

bool Digits(std::string_view s, std::size_t pos, std::size_t n, int& out) {
  if (pos + n > s.size()) return false;
  out = 0;
  for (std::size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    out = out * 10 + (s[i] - '0');
  }
  return true;
}

}  // namespace

const Clock& SystemClock() {
  static const RealClock clock;
  return clock;
}

// Every audit record carries one or two of these: written by hand, not by
// snprintf (about 4,000 instructions each), for years 0 to 9999; the C
// library writes the rest as before.
std::string FormatRfc3339Millis(std::int64_t ms) {
  std::int64_t secs = ms >= 0 ? ms / 1000 : (ms - 999) / 1000;
  int frac = static_cast<int>(ms - secs * 1000);
  std::int64_t days = secs >= 0 ? secs / 86400 : (secs - 86399) / 86400;
  auto sod = static_cast<unsigned>(secs - days * 86400);
  std::int64_t y;
  unsigned m, d;
  CivilFromDays(days, y, m, d);
  if (y < 0 || y > 9999) return FormatWithLibc(secs, frac);
  std::string out(24, '\0');  // 2026-11-22T07:03:53.123Z
  char* p = out.data();
  PutDigits(p, static_cast<unsigned>(y), 4);
  p[4] = '-';
  PutDigits(p + 5, m, 2);
  p[7] = '-';
  PutDigits(p + 8, d, 2);
  p[10] = 'T';
  PutDigits(p + 11, sod / 3600, 2);
  p[13] = ':';
  PutDigits(p + 14, sod / 60 % 60, 2);
  p[16] = ':';
  PutDigits(p + 17, sod % 60, 2);
  p[19] = '.';
  PutDigits(p + 20, static_cast<unsigned>(frac), 3);
  p[23] = 'Z';
  return out;
}

std::string FormatRfc3339(std::int64_t ms) {
  std::string s = FormatRfc3339Millis(ms);
  return s.substr(0, 19) + "Z";
}

Result<std::int64_t> ParseRfc3339(std::string_view s) {
  auto bad = [&] { return Error::BadRequest("not an RFC 3339 time (2026-11-22T07:00:00Z): " + std::string(s)); };
  int y, mo, d, h, mi, se;
  if (!Digits(s, 0, 4, y) || s.size() < 20 || s[4] != '-' || !Digits(s, 5, 2, mo) || s[7] != '-' ||
      !Digits(s, 8, 2, d) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') || !Digits(s, 11, 2, h) ||
      s[13] != ':' || !Digits(s, 14, 2, mi) || s[16] != ':' || !Digits(s, 17, 2, se)) {
    return bad();
  }
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60) return bad();
  std::size_t i = 19;
  std::int64_t frac_ms = 0;
  if (i < s.size() && s[i] == '.') {
    ++i;
    int digits = 0;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
      if (digits < 3) frac_ms = frac_ms * 10 + (s[i] - '0');
      ++digits;
      ++i;
    }
    if (digits == 0) return bad();
    for (; digits < 3; ++digits) frac_ms *= 10;
  }
  std::int64_t offset_min = 0;
  if (i < s.size() && (s[i] == 'Z' || s[i] == 'z')) {
    ++i;
  } else if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
    int oh, om;
    if (!Digits(s, i + 1, 2, oh) || i + 3 >= s.size() || s[i + 3] != ':' || !Digits(s, i + 4, 2, om)) return bad();
    offset_min = (oh * 60 + om) * (s[i] == '+' ? 1 : -1);
    i += 6;
  } else {
    return bad();
  }
  if (i != s.size()) return bad();
  std::int64_t days = DaysFromCivil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d));
  std::int64_t secs = days * 86400 + h * 3600 + mi * 60 + se - offset_min * 60;
  return secs * 1000 + frac_ms;
}

Result<std::int64_t> ParseDurationMillis(std::string_view s) {
  auto bad = [&] {
    return Error::BadRequest("not a duration (e.g. 90d, 15m, 1h30m, 500ms): " + std::string(s));
  };
  if (s.empty()) return bad();
  std::int64_t total = 0;
  std::size_t i = 0;
  while (i < s.size()) {
    std::int64_t n = 0;
    std::size_t start = i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
      if (n > 1'000'000'000'000LL) return bad();
      n = n * 10 + (s[i] - '0');
      ++i;
    }
    if (i == start) return bad();
    std::int64_t unit;
    if (s.substr(i, 2) == "ms") {
      unit = 1;
      i += 2;
    } else if (i < s.size() && s[i] == 's') {
      unit = 1000;
      ++i;
    } else if (i < s.size() && s[i] == 'm') {
      unit = 60'000;
      ++i;
    } else if (i < s.size() && s[i] == 'h') {
      unit = 3'600'000;
      ++i;
    } else if (i < s.size() && s[i] == 'd') {
      unit = 86'400'000;
      ++i;
    } else {
      return bad();
    }
    // At most a century in all: checked before multiplying, so no
    // component can overflow (found by audit_record_fuzz: "1111111111111d").
    constexpr std::int64_t kMaxMillis = 100LL * 365 * 86'400'000;
    if (n > kMaxMillis / unit) return bad();
    total += n * unit;
    if (total > kMaxMillis) return bad();
  }
  return total;
}

}  // namespace kubegate
