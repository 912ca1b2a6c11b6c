// TinyShell: what a test pod runs for exec and attach. Commands: echo,
// cat [FILE], ls, env, exit N, sleep N, test -d|-f PATH, tar (x from
// stdin into -C DIR, c of files to stdout: what kubectl cp runs), and `sh`
// (read commands from stdin) or `sh -c LINE`. Files live in a PodFiles map
// the caller owns. Plain C++ so it is unit-testable without sockets.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace kubegate::testserver {

// A pod's files: absolute path -> contents.
using PodFiles = std::map<std::string, std::string>;

class TinyShell {
 public:
  // `files` must outlive the shell; nullptr gives an empty, private one.
  TinyShell(std::vector<std::string> argv, bool tty, PodFiles* files = nullptr);

  // Output produced at start (stdout).
  std::string Start();
  // Feeds stdin bytes; returns output.
  std::string Input(const std::string& bytes);
  // stdin reached EOF.
  std::string CloseStdin();
  // While a `sleep` runs: how long; then WakeUp() resumes.
  std::optional<int> sleeping_ms() const { return sleep_ms_; }
  std::string WakeUp();

  bool done() const { return done_; }
  int exit_code() const { return exit_code_; }

 private:
  std::string RunLine(const std::string& line);
  std::string Run(const std::vector<std::string>& words);
  std::string Out(const std::string& s) const;
  bool IsDir(const std::string& path) const;
  std::string TarCreate(const std::vector<std::string>& paths);
  void TarExtract();

  std::vector<std::string> argv_;
  bool tty_;
  bool interactive_ = false;
  bool cat_ = false;
  bool done_ = false;
  int exit_code_ = 0;
  std::optional<int> sleep_ms_;
  std::string pending_;
  PodFiles own_files_;
  PodFiles* files_;
  bool tar_extract_ = false;   // reading a tar stream from stdin
  std::string tar_dir_;
  std::string tar_in_;
};

}  // namespace kubegate::testserver
