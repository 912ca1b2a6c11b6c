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

}  // namespace
}  // namespace kubegate
