// The HTTP API gateway (`micro api`): `POST /<service>/<endpoint>` with a
// JSON body becomes a call to that endpoint, its reply the JSON response.
// README.md ("HTTP API gateway") lists the status codes and headers.
#ifndef MICRO_CLI_GATEWAY_H_
#define MICRO_CLI_GATEWAY_H_

#include <cstddef>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "micro/registry.h"
#include "micro/transport.h"

namespace micro::cli {

struct GatewayOptions {
  std::string host = "127.0.0.1";
  int port = 8080;  // 0: any free port (see Gateway::port).
  // Larger request bodies are refused with 413.
  size_t max_body_bytes = 1 << 20;
  // The deadline of calls whose request has no `Micro-Timeout` header.
  absl::Duration default_timeout = absl::Seconds(30);
};

// Thread-safe. Serves each HTTP request on a thread of its own pool; calls
// go out through one Client on `transport`, services are looked up through
// `registry` (best a caching one) and their schemas cached until their
// instances change.
class Gateway {
 public:
  Gateway(std::shared_ptr<Transport> transport, std::shared_ptr<Registry> registry,
          GatewayOptions options);
  ~Gateway();  // Stop.
  Gateway(const Gateway&) = delete;
  Gateway& operator=(const Gateway&) = delete;

  // Binds and starts serving on a thread of its own. UNAVAILABLE if the
  // address cannot be bound; FAILED_PRECONDITION if already started.
  absl::Status Start();

  // The bound port, once started.
  int port() const;

  // Stops accepting connections, lets the requests in progress finish and
  // answer, then returns. Idempotent.
  void Stop();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace micro::cli

#endif  // MICRO_CLI_GATEWAY_H_
