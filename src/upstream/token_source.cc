#include "upstream/token_source.h"

#include <sys/stat.h>

#include "common/text.h"
#include "tls/pki.h"

namespace kubegate {

TokenSource::TokenSource(std::string file, std::string initial) : file_(std::move(file)), token_(std::move(initial)) {
  if (file_.empty()) return;
  struct stat st {};
  if (::stat(file_.c_str(), &st) == 0) {
    ino_ = st.st_ino;
    size_ = st.st_size;
    mtime_ns_ = static_cast<long long>(st.st_mtim.tv_sec) * 1000000000LL + st.st_mtim.tv_nsec;
  }
}

std::string TokenSource::Current() {
  std::lock_guard<std::mutex> lock(mu_);
  if (file_.empty()) return token_;
  struct stat st {};
  if (::stat(file_.c_str(), &st) != 0) return token_;
  long long mtime_ns = static_cast<long long>(st.st_mtim.tv_sec) * 1000000000LL + st.st_mtim.tv_nsec;
  if (st.st_ino == ino_ && st.st_size == size_ && mtime_ns == mtime_ns_) return token_;
  auto text = ReadFile(file_);
  if (!text) return token_;
  std::string t = TrimTrailingSpace(*text);
  if (t.empty()) return token_;
  token_ = std::move(t);
  ino_ = st.st_ino;
  size_ = st.st_size;
  mtime_ns_ = mtime_ns;
  return token_;
}

}  // namespace kubegate
