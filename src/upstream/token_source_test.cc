#include "upstream/token_source.h"

#include <cstdio>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

namespace kubegate {
namespace {

TEST(TokenSource, FollowsAReplacedFile) {
  auto dir = std::filesystem::temp_directory_path() / ("kg-token-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  auto file = dir / "token";
  std::ofstream(file) << "first\n";
  TokenSource src(file.string(), "first");
  EXPECT_EQ(src.Current(), "first");
  // Replaced the way the kubelet does it: a new file renamed over the old.
  std::ofstream(dir / "token.new") << "second-token\n";
  std::filesystem::rename(dir / "token.new", file);
  EXPECT_EQ(src.Current(), "second-token");
  // A vanished or empty file keeps the last good token.
  std::filesystem::remove(file);
  EXPECT_EQ(src.Current(), "second-token");
  std::ofstream(dir / "token.new") << "\n";
  std::filesystem::rename(dir / "token.new", file);
  EXPECT_EQ(src.Current(), "second-token");
  std::filesystem::remove_all(dir);
}

TEST(TokenSource, StaticTokenWithoutFile) {
  TokenSource src("", "static");
  EXPECT_EQ(src.Current(), "static");
}

}  // namespace
}  // namespace kubegate
