// The broker: asynchronous events, published to a topic and delivered to
// every subscriber of it, or to exactly one member of a queue group.
//
// Wire format (docs/PROTOCOL.md, "Events"): a topic is a NATS subject; the
// body is the event encoded by the codec named in the `Content-Type` header,
// protobuf when there is none (micro sends none for protobuf); metadata are
// plain NATS headers with the same rules as call metadata. No envelope: any
// NATS client can publish events or read them.
//
// Delivery is at most once, like core NATS: there are no acknowledgements or
// retries. A subscriber misses the events published while it is disconnected,
// and drops events past its pending limits; drops are counted in
// SubscriptionStats::dropped, never hidden.
//
// Threads: never on a NATS library thread (but with
// SubscribeOptions::inline_handler), a subscription runs its handler and
// error handler on the broker's executor when BrokerOptions::executor is
// set or it has max_concurrency above 1, and otherwise on a thread of its
// own, which the NATS client wakes for each event: no hand-off between
// threads, as with a plain nats.c subscriber. Every class here is
// thread-safe.
#ifndef MICRO_BROKER_H_
#define MICRO_BROKER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "micro/codec.h"
#include "micro/context.h"
#include "micro/executor.h"
#include "micro/registry.h"
#include "micro/transport.h"

namespace google::protobuf {
class Message;
}  // namespace google::protobuf

namespace micro {

// What a handler learns about one event besides its body.
struct EventContext {
  std::string topic;         // The subject it was published to (never a wildcard).
  Metadata metadata;         // Keys lower-cased.
  std::string content_type;  // As received; empty means protobuf.
};

// Told about every event that was received but not handled successfully:
// `reason` is INVALID_ARGUMENT for an unknown content type or a body that does
// not decode as the subscription's type (the message names the type), else
// the handler's error (UNKNOWN, with the exception's text, if it threw).
// `message` is the event exactly as received. Runs where the handler runs;
// an exception it throws is swallowed.
using EventErrorHandler = std::function<void(std::string_view topic, const absl::Status& reason,
                                             const WireMessage& message)>;

struct SubscribeOptions {
  // Empty: every subscription to the topic gets each event. Otherwise the
  // subscriptions with this queue group, in any process, share the events:
  // each one reaches exactly one of them.
  std::string queue_group;
  // Bounds on events received and not yet handled, applied to the NATS
  // client's queue (bytes of bodies, at most 2 GiB) and, where handlers run
  // on the executor, to the broker's queue behind it (bodies plus headers).
  // Past either one, further events are dropped and counted until the
  // handler catches up. A limit <= 0 is unbounded; not both.
  int max_pending_messages = 65536;
  int64_t max_pending_bytes = int64_t{64} << 20;
  // How many events of this subscription are handled at once. 1: one at a
  // time, in the order received.
  int max_concurrency = 1;
  // Runs the handler on the NATS client's delivery thread of this
  // subscription, as a plain nats.c subscriber does, even when the broker
  // has an executor: one thread hand-off less per event there
  // (docs/PERFORMANCE.md). Only for handlers that never block: while one
  // runs, further events wait in the NATS client's queue, within the
  // pending limits (drops counted as ever). Needs max_concurrency 1.
  bool inline_handler = false;
  // Replaces BrokerOptions::on_error for this subscription.
  EventErrorHandler on_error;
};

// Counters of one subscription, which only grow. Once the subscription has
// drained, received == handled + handler_errors + decode_errors, and every
// event that reached this process is in received or dropped.
struct SubscriptionStats {
  int64_t received = 0;        // Events accepted for handling.
  int64_t handled = 0;         // The handler returned OK.
  int64_t handler_errors = 0;  // The handler returned an error or threw.
  int64_t decode_errors = 0;   // Unknown content type, or a body that does not decode.
  int64_t dropped = 0;         // Lost to the pending limits; never handled.
};

// Handles one decoded event; `event` has the subscription's type and, like
// `context`, is valid only during the call. A non-OK status goes to the
// error handler and is counted; the subscription goes on either way.
using EventHandler = std::function<absl::Status(const google::protobuf::Message& event,
                                                const EventContext& context)>;

// The untyped form of a subscription; Broker::Subscribe<T> builds one.
struct SubscriberDefinition {
  // A NATS subject: '.'-separated non-empty tokens of printable ASCII other
  // than space, '*' and '>'; a whole token may be the wildcard `*`, and the
  // last token may be `>`.
  std::string topic;
  // Default instance of the event type; it must outlive the subscription
  // (generated `T::default_instance()` lives for ever).
  const google::protobuf::Message* prototype = nullptr;
  EventHandler handler;
  SubscribeOptions options;
};

// INVALID_ARGUMENT, with the reason, for a definition that Subscribe refuses
// whatever the broker's state: an invalid topic, queue group or limits, or
// a missing prototype or handler.
absl::Status ValidateSubscriber(const SubscriberDefinition& subscriber);

// The definition that subscribes `handler` to events of type `T`, a
// generated message type.
template <typename T>
SubscriberDefinition TypedSubscriber(
    std::string topic, std::function<absl::Status(const T&, const EventContext&)> handler,
    SubscribeOptions options = {}) {
  static_assert(std::is_base_of_v<google::protobuf::Message, T>,
                "events are generated protobuf message types");
  SubscriberDefinition subscriber;
  subscriber.topic = std::move(topic);
  subscriber.prototype = &T::default_instance();
  if (handler) {
    subscriber.handler = [handler = std::move(handler)](const google::protobuf::Message& event,
                                                        const EventContext& context) {
      // The broker decodes into prototype->New(), so the dynamic type is T.
      return handler(static_cast<const T&>(event), context);
    };
  }
  subscriber.options = std::move(options);
  return subscriber;
}

// A live subscription. Unsubscribing drains it: every event the NATS server
// has already sent to it is still handled, and when Unsubscribe returns no
// handler of it is running or will run again. It must not be called from the
// subscription's own handler (that would wait for itself).
class EventSubscription {
 public:
  virtual ~EventSubscription() = default;  // Unsubscribes.

  // Idempotent. Afterwards the stats stay readable.
  virtual void Unsubscribe() = 0;

  virtual SubscriptionStats stats() const = 0;
  virtual const SubscriberInfo& info() const = 0;
};

struct BrokerOptions {
  // Encoding of published events. NewNatsBroker fails with INVALID_ARGUMENT
  // for a content type without a codec. Subscribers decode each event by its
  // own `Content-Type`, whatever this says.
  std::string content_type = std::string(kProtobufContentType);
  // Handler threads of subscriptions with max_concurrency above 1, made
  // when the first of them subscribes, if `executor` is not set. 0: the
  // number of cores (at least 2).
  int num_threads = 0;
  // Runs every subscription's handlers and error handlers; may be shared.
  std::shared_ptr<Executor> executor;
  // The error handler of subscriptions that set none. Default: one line per
  // failed event on stderr.
  EventErrorHandler on_error;
};

// Publishes and subscribes over one Transport, which it keeps alive: it opens
// no connection of its own, and the transport's connection (with its
// reconnection policy) is the broker's. "Disconnecting" is Close, or
// destroying the broker; the connection itself closes when the last owner of
// the transport lets go of it.
class Broker {
 public:
  virtual ~Broker() = default;  // Closes.

  // Encodes `event` with the broker's codec and publishes it to `topic` with
  // `metadata` as headers; returns once it is written to the connection
  // (which does not mean anyone received it). INVALID_ARGUMENT for an invalid
  // topic (as in SubscriberDefinition, without wildcards) or metadata (see
  // context.h), RESOURCE_EXHAUSTED if it exceeds the NATS max payload,
  // UNAVAILABLE if the connection is closed, FAILED_PRECONDITION after Close.
  // Nothing is sent unless it returns OK.
  virtual absl::Status Publish(std::string_view topic, const google::protobuf::Message& event,
                               const Metadata& metadata = {}) = 0;

  // Subscribes; events published after it returns OK reach the handler.
  // INVALID_ARGUMENT for an invalid topic, queue group (printable ASCII
  // without spaces), limits, or a missing prototype or handler; UNAVAILABLE
  // if the NATS server does not confirm; FAILED_PRECONDITION after Close.
  // The subscription may outlive the broker; Close drains it.
  virtual absl::StatusOr<std::unique_ptr<EventSubscription>> Subscribe(
      SubscriberDefinition subscriber) = 0;

  // Subscribes `handler` to events of type `T`, a generated message type.
  template <typename T>
  absl::StatusOr<std::unique_ptr<EventSubscription>> Subscribe(
      std::string topic, std::function<absl::Status(const T&, const EventContext&)> handler,
      SubscribeOptions options = {}) {
    return Subscribe(TypedSubscriber<T>(std::move(topic), std::move(handler), std::move(options)));
  }

  // The subscriptions not yet unsubscribed, for the service registry.
  virtual std::vector<SubscriberInfo> Subscribers() const = 0;

  // Refuses Publish and Subscribe from now on (FAILED_PRECONDITION), then
  // drains every subscription (see EventSubscription) and returns.
  // Idempotent. Must not be called from a handler.
  virtual void Close() = 0;
};

// A broker over `transport` (see Broker). INVALID_ARGUMENT if `transport` is
// null or `options.content_type` has no codec.
absl::StatusOr<std::unique_ptr<Broker>> NewNatsBroker(std::shared_ptr<Transport> transport,
                                                      BrokerOptions options = {});

}  // namespace micro

#endif  // MICRO_BROKER_H_
