#include "common/text.h"

#include <vector>

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace kubegate
