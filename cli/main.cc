// The `micro` command-line tool; `micro --help` lists the commands.
#include <pthread.h>

#include <csignal>
#include <iostream>
#include <string>
#include <vector>

#include "commands.h"

namespace {

sigset_t StopSignals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  return signals;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  auto invocation = micro::cli::ParseCommandLine(args);
  if (!invocation.ok()) {
    std::cerr << "micro: " << invocation.status().message() << " (micro --help lists commands)\n";
    return micro::cli::kExitUsage;
  }
  // The gateway stops gracefully on SIGINT and SIGTERM: block them before
  // any thread starts, so that only the main thread's sigwait takes them.
  // Other commands keep the default (a signal ends them at once).
  if (invocation->command == "api") {
    sigset_t signals = StopSignals();
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  }
  return micro::cli::Run(*invocation, std::cout, std::cerr, [] {
    sigset_t signals = StopSignals();
    int received = 0;
    sigwait(&signals, &received);
  });
}
