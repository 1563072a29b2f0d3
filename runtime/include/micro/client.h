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
#include "micro/selector.h"
#include "micro/service.h"
#include "micro/transport.h"

namespace google::protobuf {
class Message;
}  // namespace google::protobuf

namespace micro {

struct ClientOptions {
  // Body encoding of requests; replies come back in the same encoding.
  std::string content_type = std::string(kProtobufContentType);
  // Deadline of calls whose context sets none, so no call waits for ever.
  absl::Duration default_timeout = absl::Seconds(30);
  // Where async completions run. Default: a pool of 2 threads owned by the client.
  std::shared_ptr<Executor> callback_executor;

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

// Completion of an async call, run on the client's callback executor.
using CallCallback = absl::AnyInvocable<void(absl::Status) &&>;

// Thread-safe; share one client among all stubs of a process. The transport
// must stay connected for the client's lifetime. Destroying the client waits
// for the async completions it has already scheduled.
//
// Status of a call: OK, or the handler's own status, or one of
//   INVALID_ARGUMENT   bad metadata, a request the server could not decode;
//   UNIMPLEMENTED      the service is served but has no such method;
//   NOT_FOUND          with a selector: no instance of the service qualifies;
//   UNAVAILABLE        no server serves the subject, or the connection is down,
//                      or (with a selector) every qualifying instance backs off;
//   DEADLINE_EXCEEDED  no reply by the context's deadline;
//   RESOURCE_EXHAUSTED the request or reply exceeds the NATS max payload;
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

  // Returns at once; `on_done` runs exactly once, on the callback executor.
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
