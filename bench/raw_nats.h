// The raw nats.c side of the benchmarks: every runner compares micro with
// nats.c used directly, through these helpers.
#ifndef MICRO_BENCH_RAW_NATS_H_
#define MICRO_BENCH_RAW_NATS_H_

#include <nats/nats.h>

#include <cstdio>
#include <memory>
#include <optional>
#include <string>

#include "absl/strings/str_cat.h"

namespace micro::bench {

// Owns nats.c objects.
struct NatsDeleter {
  void operator()(natsConnection* connection) const { natsConnection_Destroy(connection); }
  void operator()(natsSubscription* subscription) const { natsSubscription_Destroy(subscription); }
  void operator()(natsOptions* options) const { natsOptions_Destroy(options); }
  void operator()(natsMsg* msg) const { natsMsg_Destroy(msg); }
};
template <typename T>
using NatsPtr = std::unique_ptr<T, NatsDeleter>;

// The runner's name, for error messages; each runner sets it in main.
inline const char* program = "bench";

// Prints `message` to stderr and returns false.
inline bool Fail(const std::string& message) {
  std::fprintf(stderr, "%s: %s\n", program, message.c_str());
  return false;
}

// Fail for functions that return an optional: prints `message`, returns nullopt.
inline std::nullopt_t Failed(const std::string& message) {
  Fail(message);
  return std::nullopt;
}

// True for NATS_OK; otherwise prints what failed and returns false.
inline bool NatsOk(natsStatus status, const char* what) {
  if (status == NATS_OK) return true;
  return Fail(
      absl::StrCat(what, ": ", natsStatus_GetText(status), " ", nats_GetLastError(nullptr)));
}

// A connection to `url`, buffered (nats.c's default) or with SendAsap;
// nullptr (reported) on failure.
inline NatsPtr<natsConnection> ConnectRaw(const std::string& url, bool send_asap) {
  natsOptions* raw_options = nullptr;
  if (!NatsOk(natsOptions_Create(&raw_options), "natsOptions_Create")) return nullptr;
  NatsPtr<natsOptions> options(raw_options);
  natsConnection* connection = nullptr;
  if (!NatsOk(natsOptions_SetURL(options.get(), url.c_str()), "natsOptions_SetURL") ||
      !NatsOk(natsOptions_SetSendAsap(options.get(), send_asap), "natsOptions_SetSendAsap") ||
      !NatsOk(natsConnection_Connect(&connection, options.get()), "natsConnection_Connect")) {
    return nullptr;
  }
  return NatsPtr<natsConnection>(connection);
}

}  // namespace micro::bench

#endif  // MICRO_BENCH_RAW_NATS_H_
