#include "policy/namespace_labels.h"

#include <gtest/gtest.h>

namespace kubegate {
namespace {

TEST(NamespaceLabelCache, AnswersWithinTheTtlAndForgetsTheOldestWhenFull) {
  NamespaceLabelCache cache(/*ttl_ms=*/10'000, /*max_entries=*/2);
  EXPECT_FALSE(cache.Lookup("a", 0));
  cache.Store("a", {{"environment", "production"}}, 1000);
  ASSERT_TRUE(cache.Lookup("a", 1000));
  EXPECT_EQ(cache.Lookup("a", 10'999)->at("environment"), "production");
  EXPECT_FALSE(cache.Lookup("a", 11'000));  // expired
  EXPECT_FALSE(cache.Lookup("a", 999));     // clock went back: not trusted
  cache.Store("b", {}, 2000);
  cache.Store("c", {}, 3000);  // evicts "a", the oldest stored
  EXPECT_FALSE(cache.Lookup("a", 3000));
  EXPECT_TRUE(cache.Lookup("b", 3000));
  EXPECT_TRUE(cache.Lookup("c", 3000));
  cache.Store("b", {{"x", "y"}}, 4000);  // replacing refreshes
  EXPECT_EQ(cache.Lookup("b", 13'000)->at("x"), "y");
  cache.Forget("b");  // the namespace was written to
  EXPECT_FALSE(cache.Lookup("b", 4001));
  EXPECT_TRUE(cache.Lookup("c", 4001));
  cache.Store("d", {}, 5000);  // room again without evicting "c"
  EXPECT_TRUE(cache.Lookup("c", 5000));
}

TEST(ParseNamespaceLabels, ReadsMetadataLabelsAndRefusesOddObjects) {
  auto l = ParseNamespaceLabels(R"({"kind":"Namespace","apiVersion":"v1","metadata":{"name":"p",
      "labels":{"environment":"production","kubernetes.io/metadata.name":"p"}}})");
  ASSERT_TRUE(l) << l.error().message;
  EXPECT_EQ(l->size(), 2u);
  EXPECT_EQ(l->at("environment"), "production");
  auto none = ParseNamespaceLabels(R"({"kind":"Namespace","metadata":{"name":"p"}})");
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->empty());
  EXPECT_FALSE(ParseNamespaceLabels("not json"));
  EXPECT_FALSE(ParseNamespaceLabels(R"({"kind":"Status","code":404})"));
  EXPECT_FALSE(ParseNamespaceLabels(R"({"kind":"Namespace","metadata":{"labels":{"a":1}}})"));
  EXPECT_FALSE(ParseNamespaceLabels(R"({"kind":"Namespace","metadata":{"labels":[1]}})"));
}

TEST(IsDns1123Label, AcceptsNamespaceNamesOnly) {
  EXPECT_TRUE(IsDns1123Label("prod"));
  EXPECT_TRUE(IsDns1123Label("prod-eu-1"));
  EXPECT_TRUE(IsDns1123Label(std::string(63, 'a')));
  EXPECT_FALSE(IsDns1123Label(std::string(64, 'a')));
  for (const char* bad : {"", "-a", "a-", "Prod", "a.b", "a/b", "a%2Fb", "a b"}) EXPECT_FALSE(IsDns1123Label(bad)) << bad;
}

}  // namespace
}  // namespace kubegate
