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
  // Launches `nats-server -a 127.0.0.1 -p <port> <extra_args>` and waits
  // (at most 10 s) until it accepts connections. Port 0 picks a free one; a
  // given port (to restart a server where its clients reconnect) is retried
  // while it is still taken. The binary is $NATS_SERVER, else
  // /usr/sbin/nats-server, else `nats-server` on PATH.
  static absl::StatusOr<std::unique_ptr<NatsServer>> Start(
      const std::vector<std::string>& extra_args = {}, int port = 0);

  ~NatsServer();  // Stop().
  NatsServer(const NatsServer&) = delete;
  NatsServer& operator=(const NatsServer&) = delete;

  // SIGTERM, then SIGKILL if it has not exited after 5 s; reaps the process.
  void Stop();
  // SIGKILL at once; reaps the process.
  void Kill();
  // SIGSTOP: the server keeps its connections open but does nothing, as if
  // hung. Resume (SIGCONT) lets it go on; Stop and Kill resume it first.
  void Pause();
  void Resume();

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

// Nodes of one nats-server cluster, routed to each other on loopback.
class NatsCluster {
 public:
  // Starts `size` nodes, each with a client port, a cluster port and a
  // monitoring port, and waits (at most 10 s) until every node has a route to
  // every other.
  static absl::StatusOr<std::unique_ptr<NatsCluster>> Start(int size);

  NatsServer& node(int i) { return *nodes_[i]; }
  int size() const { return static_cast<int>(nodes_.size()); }
  // Every node's URL, comma-separated.
  std::string urls() const;

 private:
  NatsCluster() = default;
  std::vector<std::unique_ptr<NatsServer>> nodes_;
};

// A TCP port on 127.0.0.1 that nothing listens on right now.
int PickFreePort();

}  // namespace micro::testing

#endif  // MICRO_TESTS_SUPPORT_NATS_SERVER_H_
