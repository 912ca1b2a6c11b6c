// EndOrphanRecording on files a killed writer left: large ones are read in
// pieces, so a partial last line longer than a piece is still found whole.
#include "recording/orphan_recording.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "common/digest.h"

namespace kubegate {
namespace {

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(OrphanRecording, ALongPartialLastLineIsCutAndTheHashCoversTheEndedFile) {
  const std::string path = ::testing::TempDir() + "orphan-" + std::to_string(::getpid()) + ".cast";
  const std::string header = R"({"version":2,"width":80,"height":24,"timestamp":1})" "\n";
  std::string lines;
  while (lines.size() < (3u << 20)) lines += "[1.000, \"o\", \"" + std::string(1000, 'x') + "\"]\n";
  const std::string partial = "[2.000, \"o\", \"" + std::string((3u << 20) / 2, 'y');  // 1.5 MiB, no newline
  std::ofstream(path, std::ios::binary) << header << lines << partial;
  auto s = EndOrphanRecording(path, "kg-1", "exec", 1'000, 4'500, "ended \"here\"");
  ASSERT_TRUE(s) << s.error().message;
  const std::string now = ReadAll(path);
  EXPECT_EQ(now, header + lines + "[3.500, \"m\", \"ended \\\"here\\\"\"]\n");
  EXPECT_EQ((*s)["cut_bytes"], partial.size());
  EXPECT_EQ((*s)["sha256"], Sha256Hex(now));
  EXPECT_EQ((*s)["file_bytes"], now.size());
  EXPECT_FALSE(s->contains("header_rebuilt"));
  std::filesystem::remove(path);
}

TEST(OrphanRecording, AFileWithoutItsHeaderGetsOneNamingTheRequest) {
  const std::string path = ::testing::TempDir() + "orphan-h-" + std::to_string(::getpid()) + ".cast";
  std::ofstream(path, std::ios::binary) << R"({"version":2,"wid)";  // the header half written
  auto s = EndOrphanRecording(path, "kg-2", "attach", 0, 1'000, "gone");
  ASSERT_TRUE(s) << s.error().message;
  std::istringstream lines(ReadAll(path));
  std::string header, end, extra;
  std::getline(lines, header);
  std::getline(lines, end);
  EXPECT_FALSE(std::getline(lines, extra));
  auto h = nlohmann::json::parse(header, nullptr, false);
  EXPECT_EQ(h.value("version", 0), 2) << header;
  EXPECT_EQ(h["kubegate"].value("request_id", ""), "kg-2") << header;
  EXPECT_EQ(end, "[1.000, \"m\", \"gone\"]");
  EXPECT_EQ((*s)["header_rebuilt"], true);
  EXPECT_EQ((*s)["cut_bytes"], 17u);
  EXPECT_FALSE(EndOrphanRecording(path + ".missing", "kg-3", "exec", 0, 0, "x")) << "no file, no summary";
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace kubegate
