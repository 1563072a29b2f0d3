// The client sends calls described by generated MethodInfo over a Transport.
// Generated stubs wrap it with typed methods; most code never calls it directly.
#ifndef MICRO_CLIENT_H_
#define MICRO_CLIENT_H_

#include <future>
#include <memory>
#include <string>
#include <utility>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "micro/codec.h"
#include "micro/context.h"
#include "micro/executor.h"
#include "micro/interceptor.h"
#include "micro/selector.h"
#include "micro/service.h"
#include "micro/transport.h"

namespace google::protobuf {
class Message;
}  // namespace google::protobuf

namespace micro {

// When a failed unary call is sent again (docs/PROTOCOL.md, "Retries").
// Only where it is safe: a call that provably never reached a handler
// (IsUnprocessed: nobody listened, it was not sent, the server shed it) is
// retried for any method; an idempotent method's call (MethodInfo::idempotent)
// also after UNAVAILABLE or an attempt that timed out by
// `per_attempt_timeout`. Never past the call's deadline, and only while the
// client's retry budget lasts, so retries cannot multiply an outage.
struct RetryPolicy {
  // Attempts per call, the first included; 1 turns retries off.
  int max_attempts = 3;
  // Waits between attempts: exponential, each drawn at random between half
  // and all of initial_backoff * multiplier^(retry - 1), capped at max_backoff.
  absl::Duration initial_backoff = absl::Milliseconds(20);
  absl::Duration max_backoff = absl::Seconds(1);
  double backoff_multiplier = 2;
  // Idempotent methods only: an attempt gets this long (within the call's
  // deadline) before it is abandoned and retried. Infinite: no such limit.
  absl::Duration per_attempt_timeout = absl::InfiniteDuration();
  // The budget, a token bucket shared by all calls of the client: an attempt
  // failing in a retryable way takes a token, a success returns
  // `token_ratio`, and retries happen only while more than half remain.
  double max_tokens = 10;
  double token_ratio = 0.1;
};

struct ClientOptions {
  // Body encoding of requests; replies come back in the same encoding.
  std::string content_type = std::string(kProtobufContentType);
  // Deadline of calls whose context sets none, so no call waits for ever.
  absl::Duration default_timeout = absl::Seconds(30);
  // Where async completions run. Default: a pool of 2 threads owned by the client.
  std::shared_ptr<Executor> callback_executor;
  // Runs the completion of an async call that got a reply on the NATS
  // delivery thread that received it, as a plain nats.c subscriber does,
  // instead of on `callback_executor`: one thread hand-off less per call
  // (docs/PERFORMANCE.md, "Async completions on the delivery thread").
  // Replies to all calls of the transport then wait while a completion
  // runs, so only for callbacks that never block (no Client::Call, no
  // waiting on other calls). Completions without a reply
  // (deadline, no server, lost connection, errors before sending) still run
  // on `callback_executor`, and so does one whose reply comes while the
  // thread that called AsyncCall is still inside it.
  bool inline_callbacks = false;
  RetryPolicy retry;
  // Around every call and stream; see micro/interceptor.h.
  ClientInterceptors interceptors;
  // Request metadata above this many bytes (keys and values) fails the call
  // with RESOURCE_EXHAUSTED before anything is sent.
  size_t max_metadata_bytes = 8192;

  // Client-side load balancing (micro/selector.h). Null (the default): NATS
  // balances, each call goes to the method subject and the queue group hands
  // it to one instance. Set: each call and stream goes to the instance
  // subject of an instance the selector picks among those of `service` that
  // pass `filter` and serve the method; the selector learns the outcome.
  // The first call to a service may then wait for its lookup, AsyncCall
  // included. No instance: NOT_FOUND; all backing off: UNAVAILABLE.
  std::shared_ptr<Selector> selector;
  // The service name to look up; empty: ServiceNameOf the method's service.
  std::string service;
  // Instances to consider; the method's endpoint is always required.
  SelectFilter filter;
};

// Completion of an async call, run on the client's callback executor (or
// inline, see ClientOptions::inline_callbacks).
using CallCallback = absl::AnyInvocable<void(absl::Status) &&>;

// Thread-safe; share one client among all stubs of a process. The transport
// must stay connected for the client's lifetime. Destroying the client waits
// for the async completions it has already scheduled.
//
// Deadlines: a call's deadline is its context's, else `default_timeout`
// from now; a call made on a thread running a server handler ends by that
// handler's deadline at the latest (it is inherited across hops).
//
// Status of a call: OK, or the handler's own status (IsRemoteError, with
// its message and payloads), or one of
//   INVALID_ARGUMENT   bad metadata, a request the server could not decode;
//   UNIMPLEMENTED      the service is served but has no such method;
//   NOT_FOUND          with a selector: no instance of the service qualifies;
//   UNAVAILABLE        no server serves the subject, or the connection is down,
//                      or (with a selector) every qualifying instance backs off;
//   DEADLINE_EXCEEDED  no reply by the context's deadline;
//   RESOURCE_EXHAUSTED the request or reply exceeds the NATS max payload, the
//                      metadata exceeds max_metadata_bytes, or the server
//                      is overloaded (max_concurrent_calls);
//   INTERNAL           a reply that cannot be decoded.
class Client {
 public:
  explicit Client(std::shared_ptr<Transport> transport, ClientOptions options = {});
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Blocks until the reply arrives or the call fails. `response` is written
  // only on OK.
  absl::Status Call(ClientContext* context, const MethodInfo& method,
                    const google::protobuf::Message& request, google::protobuf::Message* response);

  // Returns at once; `on_done` runs exactly once, on the callback executor
  // (or inline, see ClientOptions::inline_callbacks), never on this thread
  // before AsyncCall returns.
  // `context` and `response` must stay valid until it runs; `request` may be
  // destroyed as soon as AsyncCall returns.
  void AsyncCall(ClientContext* context, const MethodInfo& method,
                 const google::protobuf::Message& request, google::protobuf::Message* response,
                 CallCallback on_done);

  // Opens a stream for a streaming `method` (typed wrappers in
  // micro/stream.h do this). The stream's deadline is the context's; unlike
  // unary calls, a stream without one has none. Failures to reach a server
  // surface from the socket. INVALID_ARGUMENT for invalid metadata; with a
  // selector, NOT_FOUND or UNAVAILABLE as for calls.
  absl::StatusOr<std::unique_ptr<Socket>> OpenStream(ClientContext* context,
                                                     const MethodInfo& method);

  // The codec of this client's content type.
  const Codec& codec() const;

  // The future form of AsyncCall: the response (or error) by value. Only
  // `context` must outlive the call.
  template <typename Response>
  std::future<absl::StatusOr<Response>> CallFuture(ClientContext* context, const MethodInfo& method,
                                                   const google::protobuf::Message& request) {
    auto promise = std::make_shared<std::promise<absl::StatusOr<Response>>>();
    auto response = std::make_shared<Response>();
    std::future<absl::StatusOr<Response>> future = promise->get_future();
    Response* raw = response.get();
    AsyncCall(context, method, request, raw,
              [promise, response = std::move(response)](absl::Status status) mutable {
                if (status.ok()) {
                  promise->set_value(std::move(*response));
                } else {
                  promise->set_value(std::move(status));
                }
              });
    return future;
  }

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace micro

#endif  // MICRO_CLIENT_H_
