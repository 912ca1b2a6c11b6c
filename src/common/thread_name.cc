#include "common/thread_name.h"

#include <pthread.h>

#include <algorithm>
#include <cstring>
#include <string>

namespace kubegate {

void NameThisThread(const char* name) {
  constexpr std::size_t kMaxName = 15;  // Linux: 16 bytes with the NUL
  std::string cut(name, std::min(std::strlen(name), kMaxName));
  (void)pthread_setname_np(pthread_self(), cut.c_str());
}

}  // namespace kubegate
