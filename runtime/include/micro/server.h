// The server receives calls for registered services and runs their handlers
// on its executor or on threads of its own, never on a NATS delivery thread
// (unless asked to: ServerOptions::inline_unary_handlers).
#ifndef MICRO_SERVER_H_
#define MICRO_SERVER_H_

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "micro/broker.h"
#include "micro/executor.h"
#include "micro/interceptor.h"
#include "micro/registry.h"
#include "micro/service.h"
#include "micro/transport.h"

namespace micro {

struct ServerOptions {
  // Instances of one service share a NATS queue group, so each call reaches
  // exactly one of them.
  std::string queue_group = "q";
  // Handler threads, used when `executor` is not set (one unary handler
  // more may run where its call was read: `handoff_after`). 0: the number of
  // cores (at least 2).
  int num_threads = 0;
  // Runs handlers; may be shared with other servers.
  std::shared_ptr<Executor> executor;
  // Calls (unary calls and streams) admitted and not finished, queued or
  // running. Beyond it a call is refused at once with RESOURCE_EXHAUSTED
  // (marked unprocessed, so clients may retry it elsewhere): overload is
  // shed, not queued without bound. <= 0: no limit.
  int max_concurrent_calls = 1000;
  // Handlers of one endpoint running at once; its further calls wait while
  // other endpoints' calls run (calls are taken round-robin across
  // endpoints). Set it below the executor's threads to keep one slow
  // endpoint from holding them all. <= 0: no limit.
  int max_concurrent_handlers_per_endpoint = 0;
  // Request metadata above this many bytes (keys and values) is refused
  // with RESOURCE_EXHAUSTED; so is a handler's response metadata above it.
  size_t max_metadata_bytes = 8192;
  // Around every handler; see micro/interceptor.h.
  ServerInterceptors interceptors;
  // Runs unary handlers on the NATS delivery thread that received the call,
  // as a plain NATS replier does, instead of on `executor`: one thread
  // hand-off less per call, about a tenth of a call's latency on a 2-core
  // machine (docs/PERFORMANCE.md). The calls of one service then run one at
  // a time, each behind the one before, so only for handlers that never
  // block. Streaming handlers always run on `executor`.
  bool inline_unary_handlers = false;
  // A unary call that comes while no other unary call is in progress, and
  // with no other call waiting to be read, runs on the server's thread that
  // read it from NATS instead of on `executor`: one thread hand-off less,
  // about a tenth of a call's latency on a 2-core machine
  // (docs/PERFORMANCE.md). Once such a handler has run this long, another
  // thread takes over the reading, so it holds up the calls that come
  // meanwhile for about twice this long (longer only if the threads for
  // this are all busy, docs/ARCHITECTURE.md); a watchdog thread checks this
  // often while calls come in, and sleeps once none has for 25 checks.
  // Zero or less, a given `executor`, max_concurrent_handlers_per_endpoint,
  // inline_unary_handlers (unary calls then run on the NATS delivery
  // thread), or a transport without pull subscriptions: calls are read on a
  // NATS delivery thread and handled on `executor`.
  absl::Duration handoff_after = absl::Milliseconds(2);

  // The instance's identity in discovery (docs/PROTOCOL.md, "Discovery").
  // The service name, `^[A-Za-z0-9_-]+$`; empty: derived from the first
  // registered service (ServiceNameOf: `helloworld.Greeter` ->
  // `helloworld-Greeter`), or `micro` without services.
  std::string name;
  std::string version = "0.0.0";  // SemVer.
  std::string description;
  std::map<std::string, std::string> metadata;  // Keys `micro.*` are reserved.
  // Where the server registers itself. Null: a NewNatsRegistry of its own
  // on the server's transport, with default options.
  std::shared_ptr<Registry> registry;
  // Holds the subscriptions of RegisterSubscriber. Null: a NewNatsBroker of
  // the server's own on its transport and executor.
  std::shared_ptr<Broker> broker;
};

// Lifecycle: RegisterService (any number), Start, then Stop or destruction.
// Thread-safe. Registered services must outlive the server's Stop.
//
// Replies, besides the handler's own status: UNIMPLEMENTED for a method the
// service does not have, INVALID_ARGUMENT for a body that does not decode or
// an unknown content type, RESOURCE_EXHAUSTED for a reply over the max payload
// or a call beyond max_concurrent_calls, DEADLINE_EXCEEDED for a call whose
// deadline passed while it waited for a handler thread.
//
// Discovery: a started server is an instance in its registry. It answers
// the NATS services API (`$SRV.PING|INFO|STATS`) with its identity, one
// endpoint per method (with STATS counters of every call and stream), and
// also serves calls sent to its own instance subject
// (`$MICRO.INSTANCE.<id>.p.S.M`), which client-side selectors use.
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

  // Adds an event subscription to the service: Start subscribes it (with
  // `options.broker`) and lists it in the instance's INFO `subscribers`,
  // with its event type in the published schema, so tools see who consumes
  // which topic; Stop drains it after the calls. INVALID_ARGUMENT for a
  // definition the broker would refuse (ValidateSubscriber),
  // FAILED_PRECONDITION after Start.
  absl::Status RegisterSubscriber(SubscriberDefinition subscriber);

  // Subscribes `handler` to events of type `T`, a generated message type.
  template <typename T>
  absl::Status RegisterSubscriber(
      std::string topic, std::function<absl::Status(const T&, const EventContext&)> handler,
      SubscribeOptions options = {}) {
    return RegisterSubscriber(
        TypedSubscriber<T>(std::move(topic), std::move(handler), std::move(options)));
  }

  // Subscribes to every registered service, to the instance subject and to
  // the registered event topics, then registers the instance; calls are
  // served once it returns OK.
  // FAILED_PRECONDITION if already started or stopped; INVALID_ARGUMENT for
  // an invalid name, version or metadata key (ValidateInstance); the
  // registry's error if it cannot register.
  absl::Status Start();

  // Announces lame-duck mode: the server keeps serving, but selectors pick
  // it only when no other instance qualifies. Call it some time before Stop
  // so that clients move away first. FAILED_PRECONDITION unless serving.
  absl::Status EnterLameDuck();

  // Deregisters (announces that it stops, stops answering discovery), stops
  // taking calls, lets handlers already running or queued finish and send
  // their replies, drains the event subscriptions (every event already
  // received is handled), then returns. Idempotent. Not from one of the
  // server's own handlers, which it would wait for: hand it to another
  // thread.
  void Stop();

  // The instance id, unique to this server object: `^[A-Za-z0-9]+$`.
  const std::string& id() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace micro

#endif  // MICRO_SERVER_H_
