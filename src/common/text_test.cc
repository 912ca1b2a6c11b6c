#include "common/text.h"

#include <random>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace kubegate {
namespace {

TEST(Text, Base64RoundTripAndLineBreaks) {
  for (const std::string& s : std::vector<std::string>{"", "a", "ab", "abc", "abcd", std::string("\0\xff\x10", 3)}) {
    auto back = Base64Decode(Base64Encode(s));
    ASSERT_TRUE(back);
    EXPECT_EQ(*back, s);
  }
  EXPECT_EQ(*Base64Decode("Q0Eg\nQg=="), "CA B");
  EXPECT_FALSE(Base64Decode("not base64!"));
}

TEST(Text, TrimTrailingSpace) {
  EXPECT_EQ(TrimTrailingSpace("tok \r\n\n"), "tok");
  EXPECT_EQ(TrimTrailingSpace(" tok"), " tok");
}

TEST(Text, AppendJsonStringMatchesNlohmannOnValidUtf8AndReplacesBadBytes) {
  std::mt19937 rng(7);
  // Valid UTF-8 from random code points (controls, quotes, backslashes,
  // two- to four-byte characters): parsing ours gives back the input.
  for (int round = 0; round < 2000; ++round) {
    std::string in;
    for (int k = rng() % 40; k > 0; --k) {
      std::uint32_t cp;
      switch (rng() % 5) {
        case 0: cp = rng() % 0x20; break;
        case 1: cp = "\"\\/\x7f"[rng() % 4]; break;
        case 2: cp = 0x20 + rng() % 0x60; break;
        case 3: cp = 0x80 + rng() % 0xD780; break;  // below the surrogates
        default: cp = 0x10000 + rng() % 0x100000;
      }
      if (cp < 0x80) {
        in.push_back(static_cast<char>(cp));
      } else if (cp < 0x800) {
        in.push_back(static_cast<char>(0xC0 | (cp >> 6)));
        in.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
      } else if (cp < 0x10000) {
        in.push_back(static_cast<char>(0xE0 | (cp >> 12)));
        in.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
        in.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
      } else {
        in.push_back(static_cast<char>(0xF0 | (cp >> 18)));
        in.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
        in.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
        in.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
      }
    }
    std::string out;
    AppendJsonString(out, in);
    auto parsed = nlohmann::json::parse(out, nullptr, false);
    ASSERT_TRUE(parsed.is_string()) << out;
    EXPECT_EQ(parsed.get<std::string>(), in);
    EXPECT_EQ(out, nlohmann::json(in).dump());
  }
  // Invalid bytes: still JSON, each bad byte one U+FFFD, the rest kept.
  std::string out;
  AppendJsonString(out, std::string("a\xff" "b\xc3(" "\xed\xa0\x80" "\xf0\x82\x82\xac" "c\xe2\x82", 15));
  auto parsed = nlohmann::json::parse(out, nullptr, false);
  ASSERT_TRUE(parsed.is_string()) << out;
  std::string r = "\xef\xbf\xbd";
  EXPECT_EQ(parsed.get<std::string>(), "a" + r + "b" + r + "(" + r + r + r + r + r + r + r + "c" + r + r);
}

// Long plain runs go eight bytes at a step: every byte that needs a look of
// its own must still be seen at every offset within and across those steps.
TEST(Text, AppendJsonStringFindsEachSpecialByteInLongPlainText) {
  const std::string specials[] = {"\"", "\\", "\n", std::string(1, '\0'), "\x1f", "\x7f", "\xc3\xa9",
                                  "\xe2\x82\xac", "\xff"};
  for (const std::string& special : specials) {
    for (std::size_t len = 0; len < 40; ++len) {
      for (std::size_t at = 0; at <= len; ++at) {
        std::string in(len, 'a');
        for (std::size_t k = 0; k < len; ++k) in[k] = static_cast<char>(' ' + (k * 7) % 95);
        for (char& c : in) {
          if (c == '"' || c == '\\') c = 'q';
        }
        in.insert(at, special);
        std::string out;
        AppendJsonString(out, in);
        if (special == "\xff") {
          std::string want = in;
          want.replace(at, 1, "\xef\xbf\xbd");
          EXPECT_EQ(out, nlohmann::json(want).dump()) << len << " " << at;
        } else {
          EXPECT_EQ(out, nlohmann::json(in).dump()) << len << " " << at;
        }
      }
    }
  }
}

TEST(Text, Base64UrlRoundTripsAndDecodesStrictly) {
  for (std::string s : {std::string(), std::string("f"), std::string("fo"), std::string("foo"),
                        std::string("\xff\xfe\xfd\x00\x01", 5)}) {
    auto d = Base64UrlDecode(Base64UrlEncode(s));
    ASSERT_TRUE(d) << s;
    EXPECT_EQ(*d, s);
  }
  EXPECT_EQ(Base64UrlEncode("\xfb\xff"), "-_8");
  EXPECT_FALSE(Base64UrlDecode("Zm9v="));   // padding
  EXPECT_FALSE(Base64UrlDecode("Zm+v"));    // base64's alphabet, not base64url's
  EXPECT_FALSE(Base64UrlDecode("Zm9vY"));   // 4n+1 characters
  EXPECT_FALSE(Base64UrlDecode("Zh"));      // bits left over in the last character
  EXPECT_TRUE(Base64UrlDecode("Zg"));
}

TEST(Text, PlainJsonPrefixStopsAtTheFirstByteJsonWouldChange) {
  EXPECT_EQ(PlainJsonPrefix(""), 0u);
  EXPECT_EQ(PlainJsonPrefix("kubectl get pods -n default"), 27u);
  EXPECT_EQ(PlainJsonPrefix("del \x7f is plain"), 14u);
  for (std::size_t at : {0u, 3u, 7u, 8u, 9u, 15u, 16u, 30u}) {
    for (char bad : {'"', '\\', '\n', '\x1f', '\x80', '\xff', '\0'}) {
      std::string s(31, 'a');
      s[at] = bad;
      EXPECT_EQ(PlainJsonPrefix(s), at) << at << " " << static_cast<int>(bad);
    }
  }
}

}  // namespace
}  // namespace kubegate
