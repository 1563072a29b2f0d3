// An Echo server in its own process, for tests that kill an instance with
// SIGKILL:
//   registry_peer <nats-url> <name> <version> <heartbeat-ms> [<delay-ms>]
// serves micro.testing.Echo as an instance of service <name> that announces
// itself every <heartbeat-ms>, waits <delay-ms> (default 0) in each handler
// and tags each reply with its id (see echo_instance.h), prints "ready" once
// registered, and runs until killed.
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

#include "absl/strings/numbers.h"
#include "support/echo_instance.h"

int main(int argc, char** argv) {
  int heartbeat_ms = 0;
  int delay_ms = 0;
  if ((argc != 5 && argc != 6) || !absl::SimpleAtoi(argv[4], &heartbeat_ms) || heartbeat_ms <= 0 ||
      (argc == 6 && (!absl::SimpleAtoi(argv[5], &delay_ms) || delay_ms < 0))) {
    std::fprintf(stderr,
                 "usage: registry_peer <nats-url> <name> <version> <heartbeat-ms> [<delay-ms>]\n");
    return 2;
  }
  micro::ServerOptions options;
  options.name = argv[2];
  options.version = argv[3];
  auto instance = micro::testing::EchoInstance::Start(
      argv[1], options, absl::Milliseconds(heartbeat_ms), absl::Milliseconds(delay_ms));
  if (!instance.ok()) {
    std::fprintf(stderr, "registry_peer: %s\n", instance.status().ToString().c_str());
    return 1;
  }
  std::printf("ready\n");
  std::fflush(stdout);
  while (true) std::this_thread::sleep_for(std::chrono::seconds(1));
}
