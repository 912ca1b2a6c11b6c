// TinyShell: what a test pod runs for exec and attach. Commands: echo,
// cat, ls, env, exit N, sleep N, and `sh` (read commands from stdin) or
// `sh -c LINE`. Plain C++ so it is unit-testable without sockets.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace kubegate::testserver {

class TinyShell {
 public:
  TinyShell(std::vector<std::string> argv, bool tty);

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

  std::vector<std::string> argv_;
  bool tty_;
  bool interactive_ = false;
  bool cat_ = false;
  bool done_ = false;
  int exit_code_ = 0;
  std::optional<int> sleep_ms_;
  std::string pending_;
};

}  // namespace kubegate::testserver
