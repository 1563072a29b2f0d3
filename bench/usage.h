// CPU time and context switches of a process, read around a measurement:
// the cost of a workload, which moves much less than its rate when other
// processes compete for the cores.
#ifndef MICRO_BENCH_USAGE_H_
#define MICRO_BENCH_USAGE_H_

#include <sys/types.h>

namespace micro::bench {

// CPU time (user + system) and context switches of a process, all threads.
struct Usage {
  double cpu_s = 0;
  double switches = 0;

  Usage operator-(const Usage& other) const {
    return {cpu_s - other.cpu_s, switches - other.switches};
  }
  Usage& operator+=(const Usage& other) {
    cpu_s += other.cpu_s;
    switches += other.switches;
    return *this;
  }
};

// This process (getrusage).
Usage SelfUsage();

// Another process, from /proc: CPU time of all its threads, living and
// gone (10 ms ticks); context switches of its living threads only.
Usage ProcessUsage(pid_t pid);

}  // namespace micro::bench

#endif  // MICRO_BENCH_USAGE_H_
