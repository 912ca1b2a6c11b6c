#include "tiny_shell.h"

#include <sstream>

namespace kubegate::testserver {
namespace {

std::vector<std::string> Words(const std::string& line) {
  std::istringstream in(line);
  std::vector<std::string> w;
  std::string s;
  while (in >> s) w.push_back(s);
  return w;
}

}  // namespace

TinyShell::TinyShell(std::vector<std::string> argv, bool tty) : argv_(std::move(argv)), tty_(tty) {}

std::string TinyShell::Out(const std::string& s) const {
  if (!tty_) return s;
  std::string o;
  for (char c : s) {
    if (c == '\n') o += "\r\n";
    else o.push_back(c);
  }
  return o;
}

std::string TinyShell::Start() {
  if (argv_.empty()) {
    done_ = true;
    exit_code_ = 126;
    return "";
  }
  if (argv_[0] == "sh" || argv_[0] == "/bin/sh" || argv_[0] == "bash") {
    if (argv_.size() >= 3 && argv_[1] == "-c") {
      std::string out = RunLine(argv_[2]);
      if (!sleep_ms_ && !cat_) done_ = true;
      return out;
    }
    interactive_ = true;
    return tty_ ? "$ " : "";
  }
  std::string out = Run(argv_);
  if (!sleep_ms_ && !cat_) done_ = true;
  return out;
}

std::string TinyShell::Run(const std::vector<std::string>& w) {
  if (w.empty()) return "";
  const std::string& cmd = w[0];
  if (cmd == "echo") {
    std::string s;
    for (std::size_t i = 1; i < w.size(); ++i) s += (i > 1 ? " " : "") + w[i];
    return Out(s + "\n");
  }
  if (cmd == "ls") return Out("bin\netc\nhome\ntmp\n");
  if (cmd == "env") return Out("HOSTNAME=testpod\nPATH=/usr/bin:/bin\n");
  if (cmd == "exit") {
    exit_code_ = w.size() > 1 ? std::atoi(w[1].c_str()) : 0;
    done_ = true;
    return "";
  }
  if (cmd == "sleep") {
    sleep_ms_ = static_cast<int>((w.size() > 1 ? std::atof(w[1].c_str()) : 1.0) * 1000);
    return "";
  }
  if (cmd == "cat") {
    cat_ = true;
    return "";
  }
  exit_code_ = 127;
  return Out("sh: " + cmd + ": not found\n");
}

std::string TinyShell::RunLine(const std::string& line) {
  std::string out;
  std::istringstream parts(line);
  std::string part;
  while (std::getline(parts, part, ';') && !done_) out += Run(Words(part));
  return out;
}

std::string TinyShell::Input(const std::string& bytes) {
  if (done_) return "";
  if (cat_) return Out(bytes);
  if (!interactive_) return "";
  std::string out = tty_ ? Out(bytes) : "";  // a terminal echoes what is typed
  for (char c : bytes) {
    if (c == '\r' || c == '\n') {
      std::string line = pending_;
      pending_.clear();
      if (tty_ && c == '\r') out += "\n";
      out += RunLine(line);
      if (done_) return out;
      if (tty_ && !sleep_ms_) out += "$ ";
    } else {
      pending_.push_back(c);
    }
  }
  return out;
}

std::string TinyShell::CloseStdin() {
  if (cat_ || interactive_) {
    std::string out;
    if (interactive_ && !pending_.empty()) out = RunLine(pending_);
    done_ = true;
    return out;
  }
  return "";
}

std::string TinyShell::WakeUp() {
  sleep_ms_.reset();
  if (!interactive_) done_ = true;
  return interactive_ && tty_ ? "$ " : "";
}

}  // namespace kubegate::testserver
