// TokenSource: the gateway's upstream bearer token, re-read when its file
// changes. In-cluster service-account tokens are projected files that the
// kubelet replaces about hourly; a gateway that read them once would stop
// working. Thread-safe; a stat() per call, a read only after a change.
//
//   TokenSource src(target.token_file, target.bearer_token);
//   req.set(Authorization, "Bearer " + src.Current());
#pragma once

#include <sys/types.h>

#include <mutex>
#include <string>

namespace kubegate {

class TokenSource {
 public:
  // `file` empty: always `initial`.
  TokenSource(std::string file, std::string initial);

  // The token now. When the file changed (another inode, size or mtime)
  // it is read again; if that read fails, the last good token stays.
  std::string Current();

 private:
  std::string file_;
  std::mutex mu_;
  std::string token_;
  ino_t ino_ = 0;
  off_t size_ = -1;
  long long mtime_ns_ = -1;
};

}  // namespace kubegate
