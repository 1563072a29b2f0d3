// The `micro` command line: parsing it, and running each command against a
// NATS server. main.cc only wires these to the process.
#ifndef MICRO_CLI_COMMANDS_H_
#define MICRO_CLI_COMMANDS_H_

#include <functional>
#include <iosfwd>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace micro::cli {

// Exit statuses.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;  // The command ran and failed; the status is on stderr.
inline constexpr int kExitUsage = 2;   // The command line is wrong.

// One parsed command line.
struct Invocation {
  std::string command;            // `services`, `describe`, `call`, ...; empty for help.
  std::vector<std::string> args;  // Positional arguments after the command.
  std::string nats;               // --nats, default $NATS_URL, else nats://127.0.0.1:4222.
  bool json = false;              // --output json (else table).
  absl::Duration timeout = absl::InfiniteDuration();          // --timeout; infinite: not given.
  std::vector<std::pair<std::string, std::string>> metadata;  // --metadata k=v, repeatable.
  std::string type;                                           // --type, for publish.
  std::string listen = "127.0.0.1:8080";                      // --listen, for api.
  size_t max_body = 1 << 20;                                  // --max-body bytes, for api.
};

// INVALID_ARGUMENT, saying what is wrong, for a bad command line.
absl::StatusOr<Invocation> ParseCommandLine(const std::vector<std::string>& args);

// The usage text.
std::string Usage();

// Runs `invocation`, writing results to `out` and errors to `err`; returns
// the exit status. `api` serves until `wait_for_stop` returns.
int Run(const Invocation& invocation, std::ostream& out, std::ostream& err,
        const std::function<void()>& wait_for_stop);

}  // namespace micro::cli

#endif  // MICRO_CLI_COMMANDS_H_
