#include "micro/server.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>

#include <algorithm>
#include <atomic>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "micro/codec.h"
#include "micro/interceptor.h"
#include "micro/registry.h"
#include "micro/schema.h"
#include "micro/stream.h"
#include "protocol/wire.h"
#include "registry/discovery.h"
#include "server/call_readers.h"
#include "server/call_scheduler.h"
#include "util/inherited_deadline.h"
#include "util/interceptor_chain.h"
#include "util/strings.h"
#include "util/threads.h"

namespace micro {
namespace {

bool IsUnary(const EndpointDefinition& endpoint) {
  return endpoint.method->kind == RpcKind::kUnary;
}

absl::Status ValidateDefinition(const ServiceDefinition& definition) {
  if (definition.name.empty()) return absl::InvalidArgumentError("service definition has no name");
  for (const EndpointDefinition& endpoint : definition.endpoints) {
    if (endpoint.method == nullptr || endpoint.request_prototype == nullptr ||
        endpoint.response_prototype == nullptr ||
        (IsUnary(endpoint) ? !endpoint.unary : !endpoint.stream)) {
      return absl::InvalidArgumentError(absl::StrCat("service '", internal::ToAbsl(definition.name),
                                                     "' has an endpoint with missing parts"));
    }
  }
  return absl::OkStatus();
}

// Runs a handler; an exception becomes an error status instead of a crash.
template <typename Handler>
absl::Status Guarded(const ServerContext& context, Handler handler) {
  try {
    return handler();
  } catch (const std::exception& e) {
    return absl::UnknownError(absl::StrCat("handler of ", context.method(), " threw: ", e.what()));
  } catch (...) {
    return absl::UnknownError(absl::StrCat("handler of ", context.method(), " threw"));
  }
}

std::string_view KindName(RpcKind kind) {
  switch (kind) {
    case RpcKind::kUnary:
      return "unary";
    case RpcKind::kClientStreaming:
      return "client_stream";
    case RpcKind::kServerStreaming:
      return "server_stream";
    case RpcKind::kBidiStreaming:
      return "bidi_stream";
  }
  return "";
}

// The ADR-32 endpoint of a method (docs/PROTOCOL.md, "Endpoints").
EndpointInfo DescribeEndpoint(const MethodInfo& method, const std::string& queue_group) {
  return EndpointInfo{EndpointNameOf(method.subject),
                      std::string(method.subject),
                      queue_group,
                      {{"micro.method", std::string(method.subject)},
                       {"micro.request", std::string(method.request_type)},
                       {"micro.response", std::string(method.response_type)},
                       {"micro.kind", std::string(KindName(method.kind))},
                       {"micro.idempotent", method.idempotent ? "true" : "false"}}};
}

// STATS counters of one endpoint. Updated once per call, after it ends, on
// the executor; the registry reads them on its own thread.
class EndpointCounter {
 public:
  void Record(const absl::Status& status, absl::Duration took) {
    std::lock_guard lock(mu_);
    ++stats_.num_requests;
    stats_.processing_time += took;
    if (!status.ok()) {
      ++stats_.num_errors;
      stats_.last_error =
          absl::StrCat(absl::StatusCodeToString(status.code()), ": ", status.message());
    }
  }

  EndpointStats Read() const {
    std::lock_guard lock(mu_);
    return stats_;
  }

 private:
  mutable std::mutex mu_;
  EndpointStats stats_;
};

// A registered method and its counters.
struct Endpoint {
  EndpointDefinition definition;
  // Shared with the registration, which may read it after the server is gone.
  std::shared_ptr<EndpointCounter> counter = std::make_shared<EndpointCounter>();
};

}  // namespace

class Server::Impl {
 public:
  Impl(std::shared_ptr<Transport> transport, ServerOptions options)
      : transport_(std::move(transport)),
        options_(std::move(options)),
        id_(discovery::NewInstanceId()),
        instance_prefix_(InstanceSubject(id_, "")),
        reads_on_own_threads_(options_.handoff_after > absl::ZeroDuration() &&
                              options_.executor == nullptr && !options_.inline_unary_handlers &&
                              options_.max_concurrent_handlers_per_endpoint <= 0) {
    if (options_.executor == nullptr) {
      options_.executor = NewThreadPoolExecutor(
          options_.num_threads > 0 ? options_.num_threads : internal::DefaultThreadCount());
    }
    scheduler_ = std::make_unique<internal::CallScheduler>(
        options_.executor,
        internal::CallScheduler::Limits{options_.max_concurrent_calls,
                                        options_.max_concurrent_handlers_per_endpoint});
  }

  absl::Status RegisterService(Service* service) {
    ServiceDefinition definition = service->Definition();
    if (absl::Status status = ValidateDefinition(definition); !status.ok()) return status;
    std::lock_guard lock(mu_);
    if (state_ != State::kCreated) {
      return absl::FailedPreconditionError("services must be registered before Start");
    }
    std::string name(definition.name);
    if (std::find(services_.begin(), services_.end(), name) != services_.end()) {
      return absl::AlreadyExistsError(absl::StrCat("service '", name, "' is already registered"));
    }
    for (EndpointDefinition& endpoint : definition.endpoints) {
      std::string subject(endpoint.method->subject);
      endpoint_order_.push_back(subject);
      endpoints_.emplace(std::move(subject), Endpoint{std::move(endpoint)});
    }
    services_.push_back(std::move(name));
    if (definition.descriptor != nullptr) schema_files_.push_back(definition.descriptor->file());
    return absl::OkStatus();
  }

  absl::Status RegisterSubscriber(SubscriberDefinition subscriber) {
    if (absl::Status status = ValidateSubscriber(subscriber); !status.ok()) return status;
    std::lock_guard lock(mu_);
    if (state_ != State::kCreated) {
      return absl::FailedPreconditionError("subscribers must be registered before Start");
    }
    schema_files_.push_back(subscriber.prototype->GetDescriptor()->file());
    subscribers_.push_back(std::move(subscriber));
    return absl::OkStatus();
  }

  absl::Status Start() {
    // What a failed start subscribed, ended after the lock is released:
    // calls it took may be running handlers, which must not wait for it.
    std::vector<std::unique_ptr<Subscription>> subscriptions;
    std::unique_ptr<internal::CallReaders> readers;
    std::vector<std::unique_ptr<EventSubscription>> event_subscriptions;
    std::lock_guard lock(mu_);
    if (state_ != State::kCreated) return absl::FailedPreconditionError("server already started");
    registration_ = Describe();
    if (absl::Status status = ValidateInstance(registration_.instance); !status.ok()) {
      return status;
    }
    if (registry_ == nullptr) {
      absl::StatusOr<std::shared_ptr<Registry>> registry = NewNatsRegistry(transport_);
      if (!registry.ok()) return registry.status();
      registry_ = *std::move(registry);
    }
    if (reads_on_own_threads_) {
      // Accept runs one unary call at a time where it was read.
      readers_ = std::make_unique<internal::CallReaders>(options_.handoff_after, 1);
    }
    absl::Status status = Subscribe();
    if (status.ok()) status = SubscribeEvents();
    if (status.ok()) status = registry_->Register(registration_);
    if (!status.ok()) {
      subscriptions.swap(subscriptions_);
      readers.swap(readers_);
      event_subscriptions.swap(event_subscriptions_);
      return status;
    }
    state_ = State::kServing;
    return absl::OkStatus();
  }

  absl::Status EnterLameDuck() {
    std::lock_guard lock(mu_);
    if (state_ != State::kServing) return absl::FailedPreconditionError("server is not serving");
    registration_.instance.metadata[discovery::kLameDuckKey] = "true";
    return registry_->Register(registration_);
  }

  void Stop() {
    std::vector<std::unique_ptr<Subscription>> subscriptions;
    std::unique_ptr<internal::CallReaders> readers;
    std::vector<std::unique_ptr<EventSubscription>> event_subscriptions;
    std::shared_ptr<Registry> registry;  // Ours, if we made it, goes with it.
    std::shared_ptr<Broker> broker;      // Likewise.
    bool registered;
    {
      std::lock_guard lock(mu_);
      if (state_ == State::kStopped) return;
      registered = state_ == State::kServing;
      state_ = State::kStopped;
      subscriptions.swap(subscriptions_);
      readers.swap(readers_);
      event_subscriptions.swap(event_subscriptions_);
      registry.swap(registry_);
      broker.swap(broker_);
    }
    // Clients hear that we stop before we stop taking calls.
    if (registered) registry->Deregister(id_).IgnoreError();
    registry.reset();
    // Draining delivers every call already sent to us into Accept; then
    // the queued and running handlers finish and reply.
    subscriptions.clear();
    readers.reset();
    scheduler_->WaitUntilIdle();
    // Events last: a call's handler may still publish one to ourselves.
    event_subscriptions.clear();
  }

  const std::string& id() const { return id_; }

 private:
  enum class State { kCreated, kServing, kStopped };

  // The instance as discovery shows it, with its counters.
  Registration Describe() const {
    Registration registration;
    Instance& instance = registration.instance;
    instance.name = !options_.name.empty() ? options_.name
                    : !services_.empty()   ? ServiceNameOf(services_.front())
                                           : "micro";
    instance.id = id_;
    instance.version = options_.version;
    instance.description = options_.description;
    instance.metadata = options_.metadata;
    std::vector<std::shared_ptr<EndpointCounter>> counters;
    for (const std::string& subject : endpoint_order_) {
      const Endpoint& endpoint = endpoints_.at(subject);
      instance.endpoints.push_back(
          DescribeEndpoint(*endpoint.definition.method, options_.queue_group));
      counters.push_back(endpoint.counter);
    }
    for (const SubscriberDefinition& subscriber : subscribers_) {
      instance.subscribers.push_back(
          SubscriberInfo{subscriber.topic, subscriber.options.queue_group,
                         subscriber.prototype->GetDescriptor()->full_name()});
    }
    registration.schema = SerializeSchema(schema_files_);
    registration.stats = [counters = std::move(counters)] {
      std::vector<EndpointStats> stats;
      for (const auto& counter : counters) stats.push_back(counter->Read());
      return stats;
    };
    return registration;
  }

  // One queue subscription per service, and one plain subscription for
  // this instance's own subject (docs/PROTOCOL.md, "Instance subjects").
  absl::Status Subscribe() {
    for (const std::string& service : services_) {
      // A wildcard: calls to methods the service lacks still reach us and
      // get UNIMPLEMENTED rather than no responders.
      absl::Status status = SubscribeCalls(absl::StrCat(service, ".*"), options_.queue_group, 0);
      if (!status.ok()) return status;
    }
    return SubscribeCalls(absl::StrCat(instance_prefix_, ">"), "", instance_prefix_.size());
  }

  // Calls on `subject` go to Accept with the first `prefix` characters of
  // their subject taken off, which leaves the method subject. Read by
  // readers_ if there are any and the transport has pull subscriptions.
  absl::Status SubscribeCalls(const std::string& subject, const std::string& queue_group,
                              size_t prefix) {
    if (readers_ != nullptr) {
      absl::StatusOr<std::unique_ptr<PullSubscription>> pull =
          transport_->SubscribePull(subject, queue_group);
      if (pull.ok()) {
        readers_->Add(*std::move(pull), [this, prefix](WireMessage message, bool run_here) {
          message.subject.erase(0, prefix);
          Accept(std::move(message), run_here);
        });
        return absl::OkStatus();
      }
      if (pull.status().code() != absl::StatusCode::kUnimplemented) return pull.status();
    }
    absl::StatusOr<std::unique_ptr<Subscription>> subscription =
        transport_->Subscribe(subject, queue_group, [this, prefix](WireMessage message) {
          message.subject.erase(0, prefix);
          Accept(std::move(message), /*run_here=*/false);
        });
    if (!subscription.ok()) return subscription.status();
    subscriptions_.push_back(*std::move(subscription));
    return absl::OkStatus();
  }

  absl::Status SubscribeEvents() {
    if (subscribers_.empty()) return absl::OkStatus();
    if (broker_ == nullptr) {
      BrokerOptions options;
      options.executor = options_.executor;
      absl::StatusOr<std::unique_ptr<Broker>> broker = NewNatsBroker(transport_, options);
      if (!broker.ok()) return broker.status();
      broker_ = *std::move(broker);
    }
    for (const SubscriberDefinition& subscriber : subscribers_) {
      absl::StatusOr<std::unique_ptr<EventSubscription>> subscription =
          broker_->Subscribe(subscriber);
      if (!subscription.ok()) return subscription.status();
      event_subscriptions_.push_back(*std::move(subscription));
    }
    return absl::OkStatus();
  }

  // The endpoint a call's subject names, or nullptr. Looked up once per call.
  const Endpoint* FindEndpoint(const std::string& subject) const {
    auto it = endpoints_.find(subject);
    return it == endpoints_.end() ? nullptr : &it->second;
  }

  // Counts a call that reached an endpoint (docs/PROTOCOL.md, STATS).
  static void Record(const Endpoint* endpoint, const absl::Status& status, absl::Time started) {
    if (endpoint != nullptr) endpoint->counter->Record(status, absl::Now() - started);
  }

  // On a NATS delivery thread or a reader thread: only queue the work
  // (or run a unary call, when `run_here` or unary handlers run inline), or
  // refuse it when the server has max_concurrent_calls already. A stream is
  // accepted at once, so the client can start sending and both ends watch
  // each other while the call waits for a handler thread.
  void Accept(WireMessage message, bool run_here) {
    const Endpoint* endpoint = FindEndpoint(message.subject);
    if (protocol::ParseFrameKind(message.headers) == protocol::FrameKind::kOpen) {
      AcceptStream(std::move(message), endpoint);
      return;
    }
    if (options_.inline_unary_handlers) {
      Handle(message, endpoint);
      return;
    }
    // Only a call that no other unary call is in progress with runs here:
    // calls that come while it runs wait for it, and would otherwise run on
    // the executor at the same time.
    const bool alone = unary_calls_.fetch_add(1, std::memory_order_relaxed) == 0;
    if (run_here && alone && scheduler_->TryAdmit()) {
      Handle(message, endpoint);
      scheduler_->Finished();
      unary_calls_.fetch_sub(1, std::memory_order_relaxed);
      return;
    }
    auto work = std::make_shared<WireMessage>(std::move(message));
    if (!scheduler_->TrySchedule(endpoint, [this, work, endpoint] {
          Handle(*work, endpoint);
          unary_calls_.fetch_sub(1, std::memory_order_relaxed);
        })) {
      unary_calls_.fetch_sub(1, std::memory_order_relaxed);
      Outcome outcome;
      outcome.status = Overloaded();
      outcome.unprocessed = true;
      RecordAndReply(*work, endpoint, absl::Now(), std::move(outcome));
    }
  }

  void AcceptStream(WireMessage open, const Endpoint* endpoint) {
    absl::StatusOr<protocol::RequestHeaders> headers =
        protocol::DecodeRequestHeaders(open.headers, absl::Now());
    StreamOptions options;
    if (headers.ok()) options.deadline = headers->deadline;
    absl::StatusOr<std::unique_ptr<Socket>> socket = transport_->Accept(open, options);
    if (!socket.ok()) return;  // No reply subject or window: nobody to answer.
    auto shared = std::shared_ptr<Socket>(*std::move(socket));
    auto work = std::make_shared<WireMessage>(std::move(open));
    if (!scheduler_->TrySchedule(
            endpoint, [this, work, shared, endpoint] { ServeStream(*work, endpoint, *shared); })) {
      absl::Status overloaded = Overloaded();
      Record(endpoint, overloaded, absl::Now());
      shared->End(overloaded, {}).IgnoreError();
    }
  }

  absl::Status Overloaded() const {
    return absl::ResourceExhaustedError(absl::StrCat(
        "server overloaded: ", options_.max_concurrent_calls, " calls in progress; retry later"));
  }

  // A call's decoded headers, codec and endpoint.
  struct ResolvedCall {
    protocol::RequestHeaders headers;
    const Codec* codec;
    const EndpointDefinition* endpoint;
  };

  // Fails like docs/PROTOCOL.md says for bad headers, an unknown content
  // type or method, a method of the other kind, and a passed deadline.
  absl::StatusOr<ResolvedCall> Resolve(const WireMessage& message, const Endpoint* found,
                                       absl::Time now, bool stream) {
    absl::StatusOr<protocol::RequestHeaders> headers =
        protocol::DecodeRequestHeaders(message.headers, now);
    if (!headers.ok()) return headers.status();
    const Codec* codec = FindCodec(headers->content_type);
    if (codec == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("unsupported content type '", headers->content_type, "'"));
    }
    if (found == nullptr) {
      return absl::UnimplementedError(
          absl::StrCat("method '", message.subject, "' is not implemented"));
    }
    const EndpointDefinition& endpoint = found->definition;
    if (IsUnary(endpoint) == stream) {
      return absl::UnimplementedError(absl::StrCat(
          "method '", message.subject, "' is ",
          stream ? "unary: call it with a request" : "streaming: open a stream to call it"));
    }
    if (headers->deadline <= now) {
      return absl::DeadlineExceededError("deadline passed before the handler started");
    }
    if (size_t bytes = protocol::MetadataBytes(headers->metadata);
        bytes > options_.max_metadata_bytes) {
      return absl::ResourceExhaustedError(absl::StrCat("request metadata of ", bytes,
                                                       " bytes exceeds the server's limit of ",
                                                       options_.max_metadata_bytes));
    }
    return ResolvedCall{*std::move(headers), codec, &endpoint};
  }

  void ServeStream(const WireMessage& open, const Endpoint* endpoint, Socket& socket) {
    absl::Time started = absl::Now();
    absl::StatusOr<ResolvedCall> call = Resolve(open, endpoint, started, /*stream=*/true);
    if (!call.ok()) {
      Record(endpoint, call.status(), started);
      socket.End(call.status(), {}).IgnoreError();
      return;
    }
    ServerContext context(open.subject, call->headers.deadline, std::move(call->headers.metadata));
    MessageStream stream(&socket, call->codec, absl::StatusCode::kInvalidArgument);
    stream.SendInitialMetadataOf(&context, options_.max_metadata_bytes);
    absl::Status status = RunIntercepted(*call->endpoint, &context, [&] {
      return Guarded(context, [&] { return call->endpoint->stream(&context, &stream); });
    });
    Record(endpoint, status, started);
    // Fails harmlessly if the stream already ended (cancelled, peer gone).
    SendUnsentInitialMetadataLater(context);
    if (absl::Status bad = CheckResponseMetadata(context.response_metadata()); !bad.ok()) {
      socket.End(bad, {}).IgnoreError();
    } else {
      socket.End(status, context.response_metadata()).IgnoreError();
    }
  }

  // Initial metadata not sent on its own (unary calls; streams that sent no
  // message or added it late) goes with the response metadata. Usually
  // there is none, and nothing is copied.
  static void SendUnsentInitialMetadataLater(ServerContext& context) {
    for (const auto& [key, value] : context.TakeInitialMetadata()) {
      context.AddResponseMetadata(key, value);
    }
  }

  absl::Status CheckResponseMetadata(const Metadata& metadata) const {
    size_t bytes = protocol::MetadataBytes(metadata);
    if (bytes <= options_.max_metadata_bytes) return absl::OkStatus();
    return absl::ResourceExhaustedError(absl::StrCat("handler set response metadata of ", bytes,
                                                     " bytes, over the server's limit of ",
                                                     options_.max_metadata_bytes));
  }

  // Runs `handler` between the interceptors' OnStart and OnEnd.
  template <typename Handler>
  absl::Status RunIntercepted(const EndpointDefinition& endpoint, ServerContext* context,
                              Handler handler) {
    internal::InterceptorChain<ServerInterceptor, ServerContext> chain(&options_.interceptors,
                                                                       endpoint.method, context);
    absl::Status status = chain.Start();
    if (status.ok()) {
      internal::InheritedDeadline inherited(context->deadline());
      status = handler();
    }
    chain.End(status);
    return status;
  }

  // What serving one call produced, for the reply.
  struct Outcome {
    absl::Status status;
    // The call never reached a handler: the caller may safely retry it.
    bool unprocessed = false;
    const Codec* codec = &ProtobufCodec();   // The request's, once known.
    std::unique_ptr<ServerContext> context;  // Set once the handler is about to run.
    std::unique_ptr<google::protobuf::Message> response;
  };

  void Handle(const WireMessage& message, const Endpoint* endpoint) {
    absl::Time started = absl::Now();
    Outcome outcome;
    outcome.status = Serve(message, endpoint, &outcome);
    RecordAndReply(message, endpoint, started, std::move(outcome));
  }

  void RecordAndReply(const WireMessage& message, const Endpoint* endpoint, absl::Time started,
                      Outcome outcome) {
    // A publish without reply: nobody to answer.
    absl::Status sent =
        message.reply.empty() ? outcome.status : Reply(message.reply, std::move(outcome));
    Record(endpoint, sent, started);
  }

  absl::Status Serve(const WireMessage& message, const Endpoint* found, Outcome* outcome) {
    if (const Codec* codec =
            FindCodec(protocol::HeaderValue(message.headers, protocol::kContentTypeHeader));
        codec != nullptr) {
      outcome->codec = codec;  // Errors are answered in the caller's encoding too.
    }
    absl::StatusOr<ResolvedCall> call = Resolve(message, found, absl::Now(), /*stream=*/false);
    if (!call.ok()) return call.status();
    const EndpointDefinition& endpoint = *call->endpoint;
    std::unique_ptr<google::protobuf::Message> request(endpoint.request_prototype->New());
    if (absl::Status status = call->codec->Decode(message.data, request.get()); !status.ok()) {
      return status;
    }
    outcome->context = std::make_unique<ServerContext>(message.subject, call->headers.deadline,
                                                       std::move(call->headers.metadata));
    outcome->response.reset(endpoint.response_prototype->New());
    ServerContext* context = outcome->context.get();
    google::protobuf::Message* response = outcome->response.get();
    return RunIntercepted(endpoint, context, [&] {
      return Guarded(*context, [&] { return endpoint.unary(context, *request, response); });
    });
  }

  // Sends the reply; returns the status it carried to the caller.
  absl::Status Reply(const std::string& subject, Outcome outcome) {
    const Codec& codec = *outcome.codec;
    absl::Status status = outcome.status;
    WireMessage reply;
    reply.subject = subject;
    if (status.ok()) status = codec.Encode(*outcome.response, &reply.data);
    if (!status.ok()) reply.data.clear();
    const Metadata no_metadata;
    if (outcome.context != nullptr) SendUnsentInitialMetadataLater(*outcome.context);
    const Metadata& metadata =
        outcome.context != nullptr ? outcome.context->response_metadata() : no_metadata;
    absl::Status bad = CheckResponseMetadata(metadata);
    if (bad.ok()) {
      bad = protocol::EncodeReplyHeaders(status, codec.ContentType(), metadata, &reply.headers);
    }
    if (!bad.ok()) {
      reply.headers.clear();
      reply.data.clear();
      protocol::EncodeReplyHeaders(bad, codec.ContentType(), no_metadata, &reply.headers)
          .IgnoreError();
    }
    if (outcome.unprocessed) reply.headers.emplace(protocol::kUnprocessedHeader, "true");
    absl::Status sent = transport_->Publish(reply);
    if (sent.code() == absl::StatusCode::kResourceExhausted) {
      // The reply is too large for NATS: tell the caller instead of going silent.
      WireMessage error{subject, "", {}, ""};
      protocol::EncodeReplyHeaders(sent, codec.ContentType(), no_metadata, &error.headers)
          .IgnoreError();
      transport_->Publish(error).IgnoreError();
      return sent;
    }
    return status;
  }

  std::shared_ptr<Transport> transport_;
  ServerOptions options_;
  const std::string id_;
  const std::string instance_prefix_;  // `$MICRO.INSTANCE.<id>.`
  // Unary calls may run where they are read (ServerOptions::handoff_after).
  const bool reads_on_own_threads_;
  std::unique_ptr<internal::CallScheduler> scheduler_;
  // Unary calls taken by Accept and not yet answered, except inline ones.
  std::atomic<int> unary_calls_ = 0;

  // Guards state_, services_, endpoint_order_, subscribers_, schema_files_,
  // registration_, registry_, broker_, readers_ and both kinds of
  // subscriptions.
  std::mutex mu_;
  State state_ = State::kCreated;
  std::vector<std::string> services_;              // In registration order.
  std::vector<std::string> endpoint_order_;        // Method subjects, in registration order.
  std::vector<SubscriberDefinition> subscribers_;  // In registration order.
  // Declaring the services and event types: the published schema.
  std::vector<const google::protobuf::FileDescriptor*> schema_files_;
  // Written only before Start, read-only while serving.
  absl::flat_hash_map<std::string, Endpoint> endpoints_;
  Registration registration_;
  std::shared_ptr<Registry> registry_ = options_.registry;
  std::vector<std::unique_ptr<Subscription>> subscriptions_;
  std::unique_ptr<internal::CallReaders> readers_;  // Read the other subscriptions.
  std::shared_ptr<Broker> broker_ = options_.broker;
  std::vector<std::unique_ptr<EventSubscription>> event_subscriptions_;
};

Server::Server(std::shared_ptr<Transport> transport, ServerOptions options)
    : impl_(std::make_unique<Impl>(std::move(transport), std::move(options))) {}

Server::~Server() { Stop(); }

absl::Status Server::RegisterService(Service* service) { return impl_->RegisterService(service); }

absl::Status Server::RegisterSubscriber(SubscriberDefinition subscriber) {
  return impl_->RegisterSubscriber(std::move(subscriber));
}

absl::Status Server::Start() { return impl_->Start(); }

absl::Status Server::EnterLameDuck() { return impl_->EnterLameDuck(); }

void Server::Stop() { impl_->Stop(); }

const std::string& Server::id() const { return impl_->id(); }

}  // namespace micro
