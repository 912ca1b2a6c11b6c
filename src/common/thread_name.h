// Names the calling thread (as `top -H`, `perf` and /proc/PID/task/TID/comm
// show it), so each of kubegate's threads can be told apart when its CPU is
// measured (bench/threads_cpu.sh). Names longer than 15 bytes are cut.
#pragma once

namespace kubegate {

void NameThisThread(const char* name);

}  // namespace kubegate
