// What every example binary does on start: parse flags, among them
// `--nats <url>` (default: $NATS_URL, else nats://127.0.0.1:4222), and connect.
#ifndef MICRO_EXAMPLES_COMMON_CLI_H_
#define MICRO_EXAMPLES_COMMON_CLI_H_

#include <pthread.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "absl/status/statusor.h"
#include "micro/server.h"
#include "micro/transport.h"

namespace micro::examples {

inline sigset_t StopSignals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  return signals;
}

// Parses `--name value` and `--name=value` pairs. Exits with a usage message
// on a flag not in `defaults` or a flag without a value.
inline std::map<std::string, std::string> ParseFlags(int argc, char** argv,
                                                     std::map<std::string, std::string> defaults) {
  defaults.emplace("nats", DefaultNatsUrl());
  auto usage = [&](std::string_view problem) {
    std::fprintf(stderr, "%s: %.*s\nflags:", argv[0], static_cast<int>(problem.size()),
                 problem.data());
    for (const auto& [name, value] : defaults) {
      std::fprintf(stderr, " --%s <value, default '%s'>", name.c_str(), value.c_str());
    }
    std::fprintf(stderr, "\n");
    std::exit(2);
  };
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg.substr(0, 2) != "--") usage(std::string("unexpected argument ") + argv[i]);
    arg.remove_prefix(2);
    std::string name(arg.substr(0, arg.find('=')));
    if (!defaults.contains(name)) usage("unknown flag --" + name);
    if (arg.find('=') != std::string_view::npos) {
      defaults[name] = std::string(arg.substr(arg.find('=') + 1));
    } else if (i + 1 < argc) {
      defaults[name] = argv[++i];
    } else {
      usage("flag --" + name + " needs a value");
    }
  }
  return defaults;
}

// The value of `result`; on an error, prints `<what>: <error>` and exits.
template <typename T>
T OrExit(absl::StatusOr<T> result, const std::string& what) {
  if (!result.ok()) {
    std::fprintf(stderr, "%s: %s\n", what.c_str(), result.status().ToString().c_str());
    std::exit(1);
  }
  return *std::move(result);
}

// Connects to `url` as connection `name`; exits with the reason on failure.
inline std::shared_ptr<Transport> ConnectOrExit(const std::string& url, const char* name) {
  TransportOptions options;
  options.url = url;
  options.name = name;
  return OrExit(ConnectNats(options), name);
}

// Blocks SIGINT and SIGTERM in the calling thread and every thread created
// after it. Call first thing in main, before anything starts threads, so
// that only WaitForStopSignal receives them.
inline void BlockStopSignals() {
  sigset_t signals = StopSignals();
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
}

// Returns once SIGINT or SIGTERM arrives (see BlockStopSignals).
inline void WaitForStopSignal() {
  sigset_t signals = StopSignals();
  int received = 0;
  sigwait(&signals, &received);
}

// Starts `server`, says so on stdout (scripts wait for "serving"), serves
// until SIGINT or SIGTERM, then stops it gracefully. Exits on failure.
inline void ServeUntilStopped(Server& server, const char* name, const std::string& url) {
  if (absl::Status status = server.Start(); !status.ok()) {
    std::fprintf(stderr, "%s: %s\n", name, status.ToString().c_str());
    std::exit(1);
  }
  std::printf("%s: serving on %s\n", name, url.c_str());
  std::fflush(stdout);
  WaitForStopSignal();
  server.Stop();
}

// Prints `prompt` and blocks until a line (or the end of input) arrives on
// stdin, so that a person at a terminal, or a script, can act between two
// steps of an example.
inline void WaitForEnter(const char* prompt) {
  std::printf("%s\n", prompt);
  std::fflush(stdout);
  for (int c = std::getchar(); c != EOF && c != '\n'; c = std::getchar()) {
  }
}

}  // namespace micro::examples

#endif  // MICRO_EXAMPLES_COMMON_CLI_H_
