// Interceptors (middleware) see every call of every RPC kind, on the client
// and on the server, at its start and at its end: logging, metrics, auth
// checks and metadata injection without touching handlers or stubs.
//
// Order: a client or server runs the OnStart of its interceptors in the
// order they were given, and the OnEnd of those whose OnStart ran in the
// reverse order, like nested scopes. An OnStart that returns an error ends
// the call with that error at once: later interceptors' OnStart and the
// call itself (the send, or the handler) do not run; the OnEnd of the
// earlier ones still does, with that error.
//
// Interceptors are shared by every call of their client or server and are
// called from many threads at once: they must be thread-safe, and must not
// block for long (OnEnd of async calls runs on the client's callback
// executor).
#ifndef MICRO_INTERCEPTOR_H_
#define MICRO_INTERCEPTOR_H_

#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "micro/context.h"
#include "micro/service.h"

namespace micro {

class ClientInterceptor {
 public:
  virtual ~ClientInterceptor() = default;

  // Before anything is sent, once per call however often it is retried. May
  // add metadata to `context` or change its deadline.
  virtual absl::Status OnStart(const MethodInfo& method, ClientContext& context) {
    (void)method, (void)context;
    return absl::OkStatus();
  }

  // Once the call's outcome is known: for unary calls, with the reply or
  // error (response metadata is in `context`); for streams, when Finish
  // returns or the stream object is destroyed before.
  virtual void OnEnd(const MethodInfo& method, ClientContext& context, const absl::Status& status) {
    (void)method, (void)context, (void)status;
  }
};

class ServerInterceptor {
 public:
  virtual ~ServerInterceptor() = default;

  // Before the handler runs: for unary calls once the request is decoded,
  // for streams before the handler reads the first message. Request
  // metadata and the deadline are in `context`. An error is the call's
  // reply (e.g. UNAUTHENTICATED from a token check).
  virtual absl::Status OnStart(const MethodInfo& method, ServerContext& context) {
    (void)method, (void)context;
    return absl::OkStatus();
  }

  // After the handler returned (or an OnStart refused), before the reply or
  // end of stream is sent, with the status the caller will get. May add
  // response metadata to `context`.
  virtual void OnEnd(const MethodInfo& method, ServerContext& context, const absl::Status& status) {
    (void)method, (void)context, (void)status;
  }
};

using ClientInterceptors = std::vector<std::shared_ptr<ClientInterceptor>>;
using ServerInterceptors = std::vector<std::shared_ptr<ServerInterceptor>>;

}  // namespace micro

#endif  // MICRO_INTERCEPTOR_H_
