#include "micro/server.h"

#include <google/protobuf/message.h>

#include <algorithm>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "micro/codec.h"
#include "protocol/wire.h"
#include "util/in_flight.h"
#include "util/strings.h"

namespace micro {
namespace {

int DefaultThreadCount() {
  return std::max(2, static_cast<int>(std::thread::hardware_concurrency()));
}

absl::Status ValidateDefinition(const ServiceDefinition& definition) {
  if (definition.name.empty()) return absl::InvalidArgumentError("service definition has no name");
  for (const EndpointDefinition& endpoint : definition.endpoints) {
    if (endpoint.method == nullptr || endpoint.request_prototype == nullptr ||
        endpoint.response_prototype == nullptr || !endpoint.unary) {
      return absl::InvalidArgumentError(absl::StrCat("service '", internal::ToAbsl(definition.name),
                                                     "' has an endpoint with missing parts"));
    }
  }
  return absl::OkStatus();
}

// Runs the handler; an exception becomes an error reply instead of a crash.
absl::Status InvokeHandler(const EndpointDefinition& endpoint, ServerContext* context,
                           const google::protobuf::Message& request,
                           google::protobuf::Message* response) {
  try {
    return endpoint.unary(context, request, response);
  } catch (const std::exception& e) {
    return absl::UnknownError(absl::StrCat("handler of ", context->method(), " threw: ", e.what()));
  } catch (...) {
    return absl::UnknownError(absl::StrCat("handler of ", context->method(), " threw"));
  }
}

}  // namespace

class Server::Impl {
 public:
  Impl(std::shared_ptr<Transport> transport, ServerOptions options)
      : transport_(std::move(transport)), options_(std::move(options)) {
    if (options_.executor == nullptr) {
      options_.executor = NewThreadPoolExecutor(options_.num_threads > 0 ? options_.num_threads
                                                                         : DefaultThreadCount());
    }
  }

  absl::Status RegisterService(Service* service) {
    ServiceDefinition definition = service->Definition();
    if (absl::Status status = ValidateDefinition(definition); !status.ok()) return status;
    std::lock_guard lock(mu_);
    if (state_ != State::kCreated) {
      return absl::FailedPreconditionError("services must be registered before Start");
    }
    std::string name(definition.name);
    if (services_.contains(name)) {
      return absl::AlreadyExistsError(absl::StrCat("service '", name, "' is already registered"));
    }
    for (EndpointDefinition& endpoint : definition.endpoints) {
      std::string subject(endpoint.method->subject);
      endpoints_.emplace(std::move(subject), std::move(endpoint));
    }
    services_.emplace(std::move(name));
    return absl::OkStatus();
  }

  absl::Status Start() {
    std::lock_guard lock(mu_);
    if (state_ != State::kCreated) return absl::FailedPreconditionError("server already started");
    for (const std::string& service : services_) {
      // One wildcard subscription per service: calls to methods the service
      // lacks still reach us and get UNIMPLEMENTED rather than no responders.
      auto subscription =
          transport_->Subscribe(absl::StrCat(service, ".*"), options_.queue_group,
                                [this](WireMessage message) { Accept(std::move(message)); });
      if (!subscription.ok()) {
        subscriptions_.clear();
        return subscription.status();
      }
      subscriptions_.push_back(*std::move(subscription));
    }
    state_ = State::kServing;
    return absl::OkStatus();
  }

  void Stop() {
    std::vector<std::unique_ptr<Subscription>> subscriptions;
    {
      std::lock_guard lock(mu_);
      if (state_ == State::kStopped) return;
      state_ = State::kStopped;
      subscriptions.swap(subscriptions_);
    }
    // Draining delivers every call already sent to us into Accept; then
    // the queued and running handlers finish and reply.
    subscriptions.clear();
    in_flight_.WaitUntilIdle();
  }

 private:
  enum class State { kCreated, kServing, kStopped };

  // On a NATS delivery thread: only queue the work.
  void Accept(WireMessage message) {
    in_flight_.Start();
    options_.executor->Schedule([this, message = std::move(message)]() mutable {
      Handle(message);
      in_flight_.Finish();
    });
  }

  // What serving one call produced, for the reply.
  struct Outcome {
    absl::Status status;
    const Codec* codec = &ProtobufCodec();   // The request's, once known.
    std::unique_ptr<ServerContext> context;  // Set once the handler is about to run.
    std::unique_ptr<google::protobuf::Message> response;
  };

  void Handle(const WireMessage& message) {
    Outcome outcome;
    outcome.status = Serve(message, &outcome);
    if (message.reply.empty()) return;  // A publish without reply: nobody to answer.
    Reply(message.reply, std::move(outcome));
  }

  absl::Status Serve(const WireMessage& message, Outcome* outcome) {
    absl::Time now = absl::Now();
    absl::StatusOr<protocol::RequestHeaders> headers =
        protocol::DecodeRequestHeaders(message.headers, now);
    if (!headers.ok()) return headers.status();
    const Codec* codec = FindCodec(headers->content_type);
    if (codec == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("unsupported content type '", headers->content_type, "'"));
    }
    outcome->codec = codec;
    auto it = endpoints_.find(message.subject);
    if (it == endpoints_.end()) {
      return absl::UnimplementedError(
          absl::StrCat("method '", message.subject, "' is not implemented"));
    }
    const EndpointDefinition& endpoint = it->second;
    if (headers->deadline <= now) {
      return absl::DeadlineExceededError("deadline passed before the handler started");
    }
    std::unique_ptr<google::protobuf::Message> request(endpoint.request_prototype->New());
    if (absl::Status status = codec->Decode(message.data, request.get()); !status.ok()) {
      return status;
    }
    outcome->context = std::make_unique<ServerContext>(message.subject, headers->deadline,
                                                       std::move(headers->metadata));
    outcome->response.reset(endpoint.response_prototype->New());
    return InvokeHandler(endpoint, outcome->context.get(), *request, outcome->response.get());
  }

  void Reply(const std::string& subject, Outcome outcome) {
    const Codec& codec = *outcome.codec;
    absl::Status status = outcome.status;
    WireMessage reply;
    reply.subject = subject;
    if (status.ok()) status = codec.Encode(*outcome.response, &reply.data);
    if (!status.ok()) reply.data.clear();
    const Metadata no_metadata;
    const Metadata& metadata =
        outcome.context != nullptr ? outcome.context->response_metadata() : no_metadata;
    if (absl::Status bad =
            protocol::EncodeReplyHeaders(status, codec.ContentType(), metadata, &reply.headers);
        !bad.ok()) {
      reply.headers.clear();
      reply.data.clear();
      protocol::EncodeReplyHeaders(bad, codec.ContentType(), no_metadata, &reply.headers)
          .IgnoreError();
    }
    absl::Status sent = transport_->Publish(reply);
    if (sent.code() == absl::StatusCode::kResourceExhausted) {
      // The reply is too large for NATS: tell the caller instead of going silent.
      WireMessage error{subject, "", {}, ""};
      protocol::EncodeReplyHeaders(sent, codec.ContentType(), no_metadata, &error.headers)
          .IgnoreError();
      transport_->Publish(error).IgnoreError();
    }
  }

  std::shared_ptr<Transport> transport_;
  ServerOptions options_;
  internal::InFlight in_flight_;

  std::mutex mu_;  // Guards state_, services_ and subscriptions_.
  State state_ = State::kCreated;
  absl::flat_hash_set<std::string> services_;
  // Written only before Start, read-only while serving.
  absl::flat_hash_map<std::string, EndpointDefinition> endpoints_;
  std::vector<std::unique_ptr<Subscription>> subscriptions_;
};

Server::Server(std::shared_ptr<Transport> transport, ServerOptions options)
    : impl_(std::make_unique<Impl>(std::move(transport), std::move(options))) {}

Server::~Server() { Stop(); }

absl::Status Server::RegisterService(Service* service) { return impl_->RegisterService(service); }

absl::Status Server::Start() { return impl_->Start(); }

void Server::Stop() { impl_->Stop(); }

}  // namespace micro
