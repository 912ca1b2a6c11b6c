// Digests and ids: known SHA-256 vectors (the fetched digest must be the
// real one) and ids drawn from the per-thread random pool.
#include "common/digest.h"

#include <set>
#include <thread>

#include <gtest/gtest.h>

namespace kubegate {
namespace {

TEST(Digest, Sha256KnownVectors) {
  EXPECT_EQ(Sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  Sha256Stream s;
  s.Update("a");
  s.Update("bc");
  EXPECT_EQ(s.HexDigest(), Sha256Hex("abc"));
}

// In pieces, on a reused per-thread context: each digest starts afresh.
TEST(Digest, Sha256OfPiecesIsTheDigestOfTheirConcatenation) {
  EXPECT_EQ(Sha256HexOf({"a", "", "bc"}), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Sha256HexOf({}), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256HexOf({"ab", "c"}), Sha256Hex("abc"));
}

// Ids across several refills of the pool, on two threads: the right shape
// and never a repeat (a pool handing out a byte twice would repeat ids).
TEST(Digest, RandomIdsAreDistinctAcrossPoolRefills) {
  std::set<std::string> a, b;
  auto draw = [](std::set<std::string>& out) {
    for (int i = 0; i < 2000; ++i) out.insert(RandomId("kg-", 10));
  };
  std::thread other(draw, std::ref(b));
  draw(a);
  other.join();
  ASSERT_EQ(a.size(), 2000u);
  ASSERT_EQ(b.size(), 2000u);
  for (const auto& id : b) EXPECT_EQ(a.count(id), 0u) << id;
  const std::string& one = *a.begin();
  ASSERT_EQ(one.size(), 3u + 20u);
  EXPECT_EQ(one.substr(0, 3), "kg-");
  EXPECT_EQ(one.find_first_not_of("0123456789abcdef", 3), std::string::npos);
  EXPECT_EQ(RandomId("x", 600).size(), 1u + 1200u) << "larger than the pool: drawn directly";
}

// Ids made in a later millisecond sort after every id of an earlier one,
// whatever their random part; ids of one millisecond differ.
TEST(Digest, TimeOrderedIdsSortByTheirMillisecond) {
  const std::int64_t t = 1'796'000'000'123;  // 2026-11-30
  std::string a = TimeOrderedId("kg-", t, 10), b = TimeOrderedId("kg-", t, 10);
  ASSERT_EQ(a.size(), 3u + 12u + 20u);
  EXPECT_EQ(a.substr(0, 15), "kg-" + std::string("01a229f1287b"));  // t in hex, 12 digits
  EXPECT_EQ(a.find_first_not_of("0123456789abcdef", 3), std::string::npos);
  EXPECT_NE(a, b);
  for (int i = 0; i < 200; ++i) {
    std::string earlier = TimeOrderedId("kg-", t + i, 10), later = TimeOrderedId("kg-", t + i + 1, 10);
    EXPECT_LT(earlier, later) << i;
  }
  EXPECT_LT(TimeOrderedId("kg-", 0xffffffffff, 10), TimeOrderedId("kg-", 0x10000000000, 10)) << "carries across bytes";
  // The millisecond in hex after the prefix, then 2 characters per random byte,
  // whether the bytes fit on the stack or not.
  EXPECT_EQ(TimeOrderedId("x-", 0x0102030405, 1).substr(0, 14), "x-000102030405");
  EXPECT_EQ(TimeOrderedId("x-", 1, 10).size(), 2 + 12 + 20u);
  std::string long_id = TimeOrderedId("x-", 1, 100);
  EXPECT_EQ(long_id.size(), 2 + 12 + 200u);
  EXPECT_EQ(long_id.find_first_not_of("0123456789abcdef", 2), std::string::npos);
  EXPECT_EQ(TimeOrderedId("kg-", -5, 10).substr(3, 12), "000000000000") << "clamped, not wrapped";
}

}  // namespace
}  // namespace kubegate
