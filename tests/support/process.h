// Helpers for tests that need other processes: a child that is killed with
// the test, and the nats-server monitoring endpoint.
#ifndef MICRO_TESTS_SUPPORT_PROCESS_H_
#define MICRO_TESTS_SUPPORT_PROCESS_H_

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace micro::testing {

// A child process whose stdout the test reads. Killed (SIGKILL) and reaped on
// destruction, and by the kernel if the test process dies.
class ChildProcess {
 public:
  // Starts `argv` and waits (at most `timeout`) until it prints a line `ready`.
  static absl::StatusOr<std::unique_ptr<ChildProcess>> StartAndWaitReady(
      const std::vector<std::string>& argv, absl::Duration timeout = absl::Seconds(10));
  // Starts `argv` and waits (at most `timeout`) until its stdout holds `marker`.
  static absl::StatusOr<std::unique_ptr<ChildProcess>> StartAndWaitFor(
      const std::vector<std::string>& argv, std::string_view marker,
      absl::Duration timeout = absl::Seconds(10));
  ~ChildProcess();

  // SIGKILL, then reap.
  void Kill();
  // SIGTERM, so the child can finish cleanly (a profiler writes its data),
  // then reads its stdout until it exits (at most `grace`, then SIGKILL and
  // DEADLINE_EXCEEDED); its exit status (128 + signal if a signal ended it).
  absl::StatusOr<int> Terminate(absl::Duration grace = absl::Seconds(10));
  pid_t pid() const { return pid_; }
  // What it printed on stdout so far (up to the marker, or all after Terminate).
  const std::string& output() const { return output_; }

 private:
  ChildProcess(pid_t pid, int stdout_fd) : pid_(pid), stdout_fd_(stdout_fd) {}
  pid_t pid_;
  int stdout_fd_;
  std::string output_;
};

// How a process that ran to its end ended.
struct ProcessResult {
  int exit_code = -1;  // 128 + signal if a signal ended it.
  std::string out;
  std::string err;
};

// Runs `argv` with `input` on its stdin (at most 64 KiB, the pipe's
// buffer) and collects its stdout and stderr. A process still running after
// `timeout` is killed: DEADLINE_EXCEEDED.
absl::StatusOr<ProcessResult> RunProcess(const std::vector<std::string>& argv,
                                         const std::string& input = "",
                                         absl::Duration timeout = absl::Seconds(30));

// The body of `GET <path>` from 127.0.0.1:<port>, e.g. a nats-server
// monitoring page ("/subsz").
absl::StatusOr<std::string> HttpGet(int port, const std::string& path);

// The number of subscriptions a nats-server with monitoring on
// `monitor_port` has, from its /subsz page.
absl::StatusOr<int> SubscriptionCount(int monitor_port);

// The number of threads of this process.
int ThreadCount();

// The peak resident memory of process `pid` (VmHWM), in KiB; -1 if it is gone.
int64_t PeakResidentKib(pid_t pid);

}  // namespace micro::testing

#endif  // MICRO_TESTS_SUPPORT_PROCESS_H_
