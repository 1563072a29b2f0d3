// The server receives calls for registered services and runs their handlers
// on its executor, never on a NATS delivery thread.
#ifndef MICRO_SERVER_H_
#define MICRO_SERVER_H_

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "micro/executor.h"
#include "micro/service.h"
#include "micro/transport.h"

namespace micro {

struct ServerOptions {
  // Instances of one service share a NATS queue group, so each call reaches
  // exactly one of them.
  std::string queue_group = "q";
  // Handler threads, used when `executor` is not set. 0: the number of cores
  // (at least 2).
  int num_threads = 0;
  // Runs handlers; may be shared with other servers.
  std::shared_ptr<Executor> executor;
};

// Lifecycle: RegisterService (any number), Start, then Stop or destruction.
// Thread-safe. Registered services must outlive the server's Stop.
//
// Replies, besides the handler's own status: UNIMPLEMENTED for a method the
// service does not have, INVALID_ARGUMENT for a body that does not decode or
// an unknown content type, RESOURCE_EXHAUSTED for a reply over the max payload.
class Server {
 public:
  explicit Server(std::shared_ptr<Transport> transport, ServerOptions options = {});
  ~Server();  // Calls Stop.
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Adds a service's endpoints. ALREADY_EXISTS if a service of that name is
  // registered, FAILED_PRECONDITION after Start, INVALID_ARGUMENT for a
  // definition with missing parts.
  absl::Status RegisterService(Service* service);

  // Subscribes to every registered service; calls are served once it returns
  // OK. FAILED_PRECONDITION if already started or stopped.
  absl::Status Start();

  // Stops taking calls, lets handlers already running or queued finish and
  // send their replies, then returns. Idempotent.
  void Stop();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace micro

#endif  // MICRO_SERVER_H_
