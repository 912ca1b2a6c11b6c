#include "common/thread_name.h"

#include <pthread.h>

#include <gtest/gtest.h>

#include <string>
#include <thread>

namespace kubegate {
namespace {

std::string NameOfThisThread() {
  char buf[64] = {};
  pthread_getname_np(pthread_self(), buf, sizeof buf);
  return buf;
}

// The name is what /proc and perf show; a long one is cut to the kernel's
// 15 bytes rather than refused (pthread_setname_np fails on it).
TEST(ThreadName, NamesTheCallingThreadAndCutsLongNames) {
  std::string short_name, long_name;
  std::thread([&] {
    NameThisThread("kg-audit-write");
    short_name = NameOfThisThread();
    NameThisThread("kg-a-name-longer-than-fifteen");
    long_name = NameOfThisThread();
  }).join();
  EXPECT_EQ(short_name, "kg-audit-write");
  EXPECT_EQ(long_name, "kg-a-name-longe");
}

}  // namespace
}  // namespace kubegate
