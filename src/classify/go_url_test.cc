#include "classify/go_url.h"

#include <gtest/gtest.h>

#include "classify/selectors.h"

namespace kubegate {
namespace {

TEST(GoUrl, QueryDropsWhatGoDrops) {
  QueryValues q = ParseQuery("a=1&b=%zz&c;=3&d=4&a=5&e&f=x+y&%67=h");
  EXPECT_EQ(q.First("a"), "1");
  EXPECT_EQ(q.All("a"), (std::vector<std::string>{"1", "5"}));
  EXPECT_FALSE(q.Has("b"));
  EXPECT_FALSE(q.Has("c;"));
  EXPECT_FALSE(q.Has("c"));
  EXPECT_EQ(q.First("d"), "4");
  EXPECT_EQ(q.First("e"), "");
  EXPECT_EQ(q.First("f"), "x y");
  EXPECT_EQ(q.First("g"), "h");
}

TEST(GoUrl, TargetForms) {
  EXPECT_EQ(ParseRequestTarget("/a%2Fb?x=%2F")->path, "/a/b");
  EXPECT_EQ(ParseRequestTarget("/a%2Fb?x=%2F")->raw_query, "x=%2F");
  EXPECT_EQ(ParseRequestTarget("HTTP://Host:1/p")->path, "/p");
  EXPECT_EQ(ParseRequestTarget("http://host")->path, "");
  EXPECT_FALSE(ParseRequestTarget("http://ho st/p"));
  EXPECT_FALSE(ParseRequestTarget("http://user@host/p"));
  EXPECT_FALSE(ParseRequestTarget("/p%"));
  EXPECT_FALSE(ParseRequestTarget("/p%g0"));
  EXPECT_EQ(ParseRequestTarget("/p?%zz")->raw_query, "%zz");
}

TEST(Selectors, FieldSelector) {
  EXPECT_EQ(ExactNameFromFieldSelector("metadata.name=a").name, "a");
  EXPECT_EQ(ExactNameFromFieldSelector("b=c,metadata.name==a").name, "a");
  EXPECT_FALSE(ExactNameFromFieldSelector("metadata.name=a,x").parsed);
  EXPECT_EQ(ExactNameFromFieldSelector("").name, "");
  EXPECT_EQ(ExactNameFromFieldSelector(",,").name, "");
  EXPECT_EQ(ExactNameFromFieldSelector("metadata.name=a\\,b").name, "a,b");
}

TEST(Selectors, LabelSelector) {
  for (const char* ok : {"", "a", "!a", "a=b", "a==b", "a!=b", "a in (x, y)", "a notin (x)", "a>3", "a<-3",
                         "example.com/a=b", "a=", "a=b,c!=d"}) {
    EXPECT_EQ(CheckLabelSelector(ok), Verdict::kValid) << ok;
  }
  for (const char* unsure : {"$", "a=b c", "a in ()", "a in x", "A.B/c=d", "a>b", "a,,b", "a=(b)"}) {
    EXPECT_EQ(CheckLabelSelector(unsure), Verdict::kUnsure) << unsure;
  }
}

TEST(Selectors, Int64LikeStrconv) {
  EXPECT_TRUE(ParsesAsInt64("0"));
  EXPECT_TRUE(ParsesAsInt64("+5"));
  EXPECT_TRUE(ParsesAsInt64("-9223372036854775808"));
  EXPECT_TRUE(ParsesAsInt64("9223372036854775807"));
  EXPECT_FALSE(ParsesAsInt64("9223372036854775808"));
  EXPECT_FALSE(ParsesAsInt64(""));
  EXPECT_FALSE(ParsesAsInt64("-"));
  EXPECT_FALSE(ParsesAsInt64("1_000"));
  EXPECT_FALSE(ParsesAsInt64(" 1"));
}

}  // namespace
}  // namespace kubegate
