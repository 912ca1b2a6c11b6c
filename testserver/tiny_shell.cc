#include "tiny_shell.h"

#include <algorithm>
#include <cstdlib>
#include <sstream>
#include <string_view>

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

TinyShell::TinyShell(std::vector<std::string> argv, bool tty, PodFiles* files)
    : argv_(std::move(argv)), tty_(tty), files_(files ? files : &own_files_) {}

bool TinyShell::IsDir(const std::string& path) const {
  std::string p = path;
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  for (const char* d : {"/", "/tmp", "/etc", "/home", "/bin"}) {
    if (p == d) return true;
  }
  std::string prefix = p + "/";
  for (const auto& [f, _] : *files_) {
    if (f.compare(0, prefix.size(), prefix) == 0) return true;
  }
  return false;
}

namespace {

std::string Octal(std::size_t v, std::size_t width) {
  std::string s(width - 1, '0');
  for (std::size_t i = width - 1; i-- > 0 && v;) {
    s[i] = static_cast<char>('0' + (v & 7));
    v >>= 3;
  }
  return s + '\0';
}

std::string TarHeader(const std::string& name, std::size_t size) {
  std::string h(512, '\0');
  h.replace(0, std::min<std::size_t>(name.size(), 99), name.substr(0, 99));
  h.replace(100, 8, Octal(0644, 8));
  h.replace(108, 8, Octal(0, 8));
  h.replace(116, 8, Octal(0, 8));
  h.replace(124, 12, Octal(size, 12));
  h.replace(136, 12, Octal(0, 12));
  h[156] = '0';
  h.replace(257, 6, std::string("ustar\0", 6));
  h.replace(263, 2, "00");
  h.replace(148, 8, "        ");
  unsigned sum = 0;
  for (unsigned char c : h) sum += c;
  h.replace(148, 8, Octal(sum, 7) + ' ');
  return h;
}

}  // namespace

std::string TinyShell::TarCreate(const std::vector<std::string>& paths) {
  std::string out;
  for (const auto& p : paths) {
    std::vector<std::string> members;
    if (files_->count(p)) members.push_back(p);
    std::string prefix = p + (p.back() == '/' ? "" : "/");
    for (const auto& [f, _] : *files_) {
      if (f.compare(0, prefix.size(), prefix) == 0) members.push_back(f);
    }
    for (const auto& m : members) {
      const std::string& data = (*files_)[m];
      out += TarHeader(m.substr(m.find_first_not_of('/')), data.size());
      out += data;
      out.append((512 - data.size() % 512) % 512, '\0');
    }
  }
  out.append(1024, '\0');
  return out;
}

void TinyShell::TarExtract() {
  std::size_t at = 0;
  while (tar_in_.size() - at >= 512) {
    std::string_view h(tar_in_.data() + at, 512);
    if (h.find_first_not_of('\0') == std::string_view::npos) break;
    std::string name(h.substr(0, 100).substr(0, h.substr(0, 100).find('\0')));
    std::string prefix(h.substr(345, 155).substr(0, h.substr(345, 155).find('\0')));
    if (!prefix.empty()) name = prefix + "/" + name;
    std::size_t size = std::strtoull(std::string(h.substr(124, 12)).c_str(), nullptr, 8);
    char type = h[156];
    at += 512;
    if (tar_in_.size() - at < size) break;
    if (type == '0' || type == '\0') {
      std::string dir = tar_dir_.empty() ? "/" : tar_dir_;
      if (dir.back() != '/') dir += "/";
      (*files_)[dir + name] = tar_in_.substr(at, size);
    }
    at += (size + 511) / 512 * 512;
  }
}

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
      if (!sleep_ms_ && !cat_ && !tar_extract_) done_ = true;
      return out;
    }
    interactive_ = true;
    return tty_ ? "$ " : "";
  }
  std::string out = Run(argv_);
  if (!sleep_ms_ && !cat_ && !tar_extract_) done_ = true;
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
    if (w.size() > 1) {
      auto it = files_->find(w[1]);
      if (it == files_->end()) {
        exit_code_ = 1;
        return Out("cat: " + w[1] + ": No such file or directory\n");
      }
      return it->second;
    }
    cat_ = true;
    return "";
  }
  if (cmd == "test" && w.size() == 3) {
    bool yes = w[1] == "-d" ? IsDir(w[2]) : w[1] == "-f" ? files_->count(w[2]) > 0 : false;
    exit_code_ = yes ? 0 : 1;
    return "";
  }
  if (cmd == "tar" && w.size() >= 3) {
    std::string mode = w[1];
    if (mode.find('x') != std::string::npos) {
      for (std::size_t i = 2; i + 1 < w.size(); ++i) {
        if (w[i] == "-C") tar_dir_ = w[i + 1];
      }
      tar_extract_ = true;
      return "";
    }
    if (mode.find('c') != std::string::npos) {
      std::vector<std::string> paths;
      for (std::size_t i = 3; i < w.size(); ++i) {
        if (w[i] != "-") paths.push_back(w[i]);
      }
      return TarCreate(paths);
    }
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
  if (tar_extract_) {
    tar_in_ += bytes;
    return "";
  }
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
  if (tar_extract_) {
    TarExtract();
    done_ = true;
    return "";
  }
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
