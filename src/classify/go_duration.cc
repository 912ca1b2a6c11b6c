#include "classify/go_duration.h"

#include <cstdint>

namespace kubegate {
namespace {

struct Unit {
  std::string_view name;
  std::uint64_t nanos;
};

// Longest names first where one is a prefix of another ("ms" before "m").
constexpr Unit kUnits[] = {{"ns", 1},
                           {"us", 1'000},
                           {"\xC2\xB5s", 1'000},  // U+00B5 micro sign
                           {"\xCE\xBCs", 1'000},  // U+03BC Greek mu
                           {"ms", 1'000'000},
                           {"s", 1'000'000'000},
                           {"m", 60'000'000'000},
                           {"h", 3'600'000'000'000}};

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

}  // namespace

bool IsGoDuration(std::string_view s) {
  bool negative = false;
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) {
    negative = s[0] == '-';
    s.remove_prefix(1);
  }
  if (s == "0") return true;
  if (s.empty()) return false;
  // Accumulated in 128 bits, compared with Go's bound: the magnitude must
  // fit an int64 (1<<63 only when negative).
  const unsigned __int128 limit = (static_cast<unsigned __int128>(1) << 63) - (negative ? 0 : 1);
  unsigned __int128 total = 0;
  while (!s.empty()) {
    std::size_t i = 0;
    unsigned __int128 whole = 0;
    bool digits = false;
    while (i < s.size() && IsDigit(s[i])) {
      whole = whole * 10 + static_cast<unsigned>(s[i] - '0');
      if (whole > limit) return false;
      digits = true;
      ++i;
    }
    unsigned __int128 frac = 0, scale = 1;
    if (i < s.size() && s[i] == '.') {
      ++i;
      while (i < s.size() && IsDigit(s[i])) {
        if (scale < static_cast<unsigned __int128>(1) << 80) {  // further digits cannot change the sum
          frac = frac * 10 + static_cast<unsigned>(s[i] - '0');
          scale *= 10;
        }
        digits = true;
        ++i;
      }
    }
    if (!digits) return false;
    s.remove_prefix(i);
    const Unit* unit = nullptr;
    for (const Unit& u : kUnits) {
      if (s.substr(0, u.name.size()) == u.name && (!unit || u.name.size() > unit->name.size())) unit = &u;
    }
    if (!unit) return false;
    s.remove_prefix(unit->name.size());
    if (whole > limit / unit->nanos) return false;
    total += whole * unit->nanos + frac * unit->nanos / scale;
    if (total > limit) return false;
  }
  return true;
}

}  // namespace kubegate
