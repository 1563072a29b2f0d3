// Starts a real nats-server on a free loopback port for one test or benchmark,
// and stops it by pid. The server dies with the process that started it, even
// if that process crashes.
#ifndef MICRO_TESTS_SUPPORT_NATS_SERVER_H_
#define MICRO_TESTS_SUPPORT_NATS_SERVER_H_

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace micro::testing {

class NatsServer {
 public:
  // Launches `nats-server -a 127.0.0.1 -p <free port> <extra_args>` and waits
  // (at most 10 s) until it accepts connections. The binary is $NATS_SERVER,
  // else /usr/sbin/nats-server, else `nats-server` on PATH.
  static absl::StatusOr<std::unique_ptr<NatsServer>> Start(
      const std::vector<std::string>& extra_args = {});

  ~NatsServer();  // Stop().
  NatsServer(const NatsServer&) = delete;
  NatsServer& operator=(const NatsServer&) = delete;

  // SIGTERM, then SIGKILL if it has not exited after 5 s; reaps the process.
  void Stop();
  // SIGKILL at once; reaps the process.
  void Kill();
  // Kills the server if it runs, then starts it again on the same port with
  // the same arguments, as a crashed server's supervisor would; waits (at
  // most 10 s) until it accepts connections.
  absl::Status Restart();

  std::string url() const;  // nats://127.0.0.1:<port>
  int port() const { return port_; }
  pid_t pid() const { return pid_; }

 private:
  NatsServer(pid_t pid, int port, std::vector<std::string> args)
      : pid_(pid), port_(port), args_(std::move(args)) {}
  void Signal(int signal, int wait_ms);
  // Waits until the launched server accepts connections; an error if it
  // exits or times out first.
  absl::Status WaitUntilReady();

  pid_t pid_;
  int port_;
  std::vector<std::string> args_;
};

// A TCP port on 127.0.0.1 that nothing listens on right now.
int PickFreePort();

}  // namespace micro::testing

#endif  // MICRO_TESTS_SUPPORT_NATS_SERVER_H_
