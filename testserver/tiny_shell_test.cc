#include "tiny_shell.h"

#include <gtest/gtest.h>

namespace kubegate::testserver {
namespace {

TEST(TinyShell, CommandsAndExitCodes) {
  TinyShell echo({"sh", "-c", "echo a b; exit 3"}, false);
  EXPECT_EQ(echo.Start(), "a b\n");
  EXPECT_TRUE(echo.done());
  EXPECT_EQ(echo.exit_code(), 3);
  TinyShell missing({"nope"}, false);
  missing.Start();
  EXPECT_EQ(missing.exit_code(), 127);
}

TEST(TinyShell, InteractiveTtyEchoesAndPrompts) {
  TinyShell sh({"sh"}, true);
  EXPECT_EQ(sh.Start(), "$ ");
  EXPECT_EQ(sh.Input("echo hi\r"), "echo hi\r\nhi\r\n$ ");
  sh.Input("exit 4\r");
  EXPECT_TRUE(sh.done());
  EXPECT_EQ(sh.exit_code(), 4);
}

TEST(TinyShell, TarRoundTripLikeKubectlCp) {
  PodFiles files;
  files["/tmp/src/a.txt"] = std::string(700, 'a');
  TinyShell create({"tar", "cf", "-", "/tmp/src"}, false, &files);
  std::string tar = create.Start();
  EXPECT_EQ(tar.size() % 512, 0u);
  PodFiles other;
  TinyShell extract({"tar", "-xmf", "-", "-C", "/data"}, false, &other);
  extract.Start();
  EXPECT_FALSE(extract.done());
  extract.Input(tar.substr(0, 100));
  extract.Input(tar.substr(100));
  extract.CloseStdin();
  EXPECT_TRUE(extract.done());
  EXPECT_EQ(other["/data/tmp/src/a.txt"], std::string(700, 'a'));
  TinyShell test_dir({"test", "-d", "/data/tmp"}, false, &other);
  test_dir.Start();
  EXPECT_EQ(test_dir.exit_code(), 0);
  TinyShell test_file({"test", "-d", "/data/tmp/src/a.txt"}, false, &other);
  test_file.Start();
  EXPECT_EQ(test_file.exit_code(), 1);
}

}  // namespace
}  // namespace kubegate::testserver
