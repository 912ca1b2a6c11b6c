#include "common/clock.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <ctime>
#include <random>

namespace kubegate {
namespace {

TEST(Clock, Rfc3339AndDurations) {
  EXPECT_EQ(FormatRfc3339Millis(0), "1970-01-01T00:00:00.000Z");
  auto t = ParseRfc3339("2026-11-22T07:03:53.123Z");
  ASSERT_TRUE(t);
  EXPECT_EQ(FormatRfc3339Millis(*t), "2026-11-22T07:03:53.123Z");
  auto off = ParseRfc3339("2026-11-22T08:03:53+01:00");
  ASSERT_TRUE(off);
  EXPECT_EQ(FormatRfc3339(*off), "2026-11-22T07:03:53Z");
  EXPECT_FALSE(ParseRfc3339("2026-11-22 07:03"));
  EXPECT_FALSE(ParseRfc3339("2026-13-22T07:03:53Z"));
  EXPECT_EQ(*ParseDurationMillis("90d"), 90LL * 86'400'000);
  EXPECT_EQ(*ParseDurationMillis("1h30m"), 5'400'000);
  EXPECT_EQ(*ParseDurationMillis("500ms"), 500);
  EXPECT_FALSE(ParseDurationMillis("15"));
  EXPECT_FALSE(ParseDurationMillis("-5m"));
  EXPECT_FALSE(ParseDurationMillis("m"));
  // Found by audit_record_fuzz (an audit API ?since=): overflowed before the bound was checked.
  EXPECT_FALSE(ParseDurationMillis("1111111111111d"));
  EXPECT_FALSE(ParseDurationMillis("999999999999h1s"));
  EXPECT_TRUE(ParseDurationMillis("36500d"));
}

// The hand-written formatter writes what gmtime_r and snprintf write, from
// year 0 to 9999 (leap days, century rules, negative times), and leaves
// the years beyond to them.
TEST(Clock, Rfc3339MillisMatchesTheCLibrary) {
  auto libc = [](std::int64_t ms) {
    std::int64_t secs = ms >= 0 ? ms / 1000 : (ms - 999) / 1000;
    std::time_t t = static_cast<std::time_t>(secs);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[64];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                  tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms - secs * 1000));
    return std::string(buf);
  };
  std::mt19937_64 rng(7);
  const std::int64_t year0 = -62'167'219'200'000, year10000 = 253'402'300'800'000;
  for (int i = 0; i < 200'000; ++i) {
    auto ms = static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(year10000 - year0)) + year0;
    ASSERT_EQ(FormatRfc3339Millis(ms), libc(ms)) << ms;
  }
  const std::int64_t edges[] = {0, -1, -999, -1000, -1001, 951'782'400'000 /* 2000-02-29 */,
                                4'107'542'400'000 /* 2100-03-01 */, year0, year0 - 1, year10000 - 1, year10000,
                                year10000 * 3, -year10000};
  for (std::int64_t ms : edges) {
    EXPECT_EQ(FormatRfc3339Millis(ms), libc(ms)) << ms;
  }
  EXPECT_EQ(FormatRfc3339Millis(951'782'400'000), "2000-02-29T00:00:00.000Z");
  EXPECT_EQ(FormatRfc3339Millis(-1), "1969-12-31T23:59:59.999Z");
}

}  // namespace
}  // namespace kubegate
