#include "micro/client.h"

#include <google/protobuf/message.h>

#include <memory>
#include <mutex>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "micro/codec.h"
#include "micro/registry.h"
#include "protocol/wire.h"
#include "util/in_flight.h"
#include "util/notification.h"
#include "util/strings.h"

namespace micro {
namespace {

constexpr int kDefaultCallbackThreads = 2;

// Turns the transport's outcome into the call's status and decoded response.
absl::Status FinishCall(absl::StatusOr<WireMessage> reply, ClientContext* context,
                        google::protobuf::Message* response) {
  if (!reply.ok()) return reply.status();
  *context->mutable_response_metadata() = protocol::ExtractMetadata(reply->headers);
  if (absl::Status status = protocol::DecodeReplyStatus(reply->headers); !status.ok()) {
    return status;
  }
  std::string_view content_type =
      protocol::HeaderValue(reply->headers, protocol::kContentTypeHeader);
  const Codec* codec = FindCodec(content_type);
  if (codec == nullptr) {
    return absl::InternalError(
        absl::StrCat("reply has unsupported content type '", internal::ToAbsl(content_type), "'"));
  }
  if (absl::Status status = codec->Decode(reply->data, response); !status.ok()) {
    return absl::InternalError(absl::StrCat("malformed reply: ", status.message()));
  }
  return absl::OkStatus();
}

// A stream to an instance a selector picked: tells the selector, when the
// stream goes away, whether the instance was reachable.
class MarkedSocket final : public Socket {
 public:
  MarkedSocket(std::unique_ptr<Socket> socket, std::shared_ptr<Selector> selector,
               std::shared_ptr<const Instance> instance)
      : socket_(std::move(socket)),
        selector_(std::move(selector)),
        instance_(std::move(instance)) {}
  ~MarkedSocket() override {
    socket_.reset();  // Cancels the stream if it has not ended.
    selector_->Mark(instance_->id, outcome_);
  }

  absl::Status Send(std::string data) override { return Note(socket_->Send(std::move(data))); }
  absl::Status Recv(std::string* data) override { return Note(socket_->Recv(data)); }
  absl::Status CloseSend() override { return Note(socket_->CloseSend()); }
  absl::Status End(const absl::Status& status, const Headers& trailing_metadata) override {
    return socket_->End(status, trailing_metadata);
  }
  void Cancel(const absl::Status& reason) override { socket_->Cancel(reason); }
  absl::Status Finish() override { return Note(socket_->Finish()); }
  Headers TrailingHeaders() override { return socket_->TrailingHeaders(); }

 private:
  // Send and Recv may run on two threads at once.
  absl::Status Note(absl::Status status) {
    if (absl::IsUnavailable(status)) {
      std::lock_guard lock(mu_);
      outcome_ = status;
    }
    return status;
  }

  std::unique_ptr<Socket> socket_;
  const std::shared_ptr<Selector> selector_;
  const std::shared_ptr<const Instance> instance_;
  std::mutex mu_;
  absl::Status outcome_;
};

}  // namespace

class Client::Impl {
 public:
  Impl(std::shared_ptr<Transport> transport, ClientOptions options)
      : transport_(std::move(transport)), options_(std::move(options)) {
    codec_ = FindCodec(options_.content_type);
    if (options_.callback_executor == nullptr) {
      options_.callback_executor = NewThreadPoolExecutor(kDefaultCallbackThreads);
    }
  }

  ~Impl() { in_flight_.WaitUntilIdle(); }

  // Sends the request; `on_reply` runs once, on a transport thread.
  void Start(ClientContext* context, const MethodInfo& method,
             const google::protobuf::Message& request, ReplyHandler on_reply) {
    absl::StatusOr<WireMessage> message = Encode(context, method, request);
    if (message.ok() && options_.selector != nullptr) {
      absl::StatusOr<std::shared_ptr<const Instance>> instance = Select(method);
      if (instance.ok()) {
        message->subject = InstanceSubject((*instance)->id, method.subject);
        on_reply = [selector = options_.selector, instance = *std::move(instance),
                    on_reply = std::move(on_reply)](absl::StatusOr<WireMessage> reply) mutable {
          selector->Mark(instance->id, reply.status());
          std::move(on_reply)(std::move(reply));
        };
      } else {
        message = instance.status();
      }
    }
    if (!message.ok()) {
      std::move(on_reply)(message.status());
      return;
    }
    transport_->Request(*message, Deadline(*context), std::move(on_reply));
  }

  // Opens a stream, to an instance the selector picks if there is one.
  absl::StatusOr<std::unique_ptr<Socket>> Dial(WireMessage open, const MethodInfo& method,
                                               const StreamOptions& options) {
    if (options_.selector == nullptr) return transport_->Dial(open, options);
    absl::StatusOr<std::shared_ptr<const Instance>> instance = Select(method);
    if (!instance.ok()) return instance.status();
    open.subject = InstanceSubject((*instance)->id, method.subject);
    absl::StatusOr<std::unique_ptr<Socket>> socket = transport_->Dial(open, options);
    if (!socket.ok()) {
      options_.selector->Mark((*instance)->id, socket.status());
      return socket.status();
    }
    return std::unique_ptr<Socket>(
        new MarkedSocket(*std::move(socket), options_.selector, *std::move(instance)));
  }

  // Async calls whose completion has not finished.
  internal::InFlight& in_flight() { return in_flight_; }

  Executor& callback_executor() { return *options_.callback_executor; }

 private:
  // An instance of the method's service that serves it and passes the filter.
  absl::StatusOr<std::shared_ptr<const Instance>> Select(const MethodInfo& method) const {
    SelectFilter filter = options_.filter;
    filter.endpoint = std::string(method.subject);
    return options_.selector->Select(
        options_.service.empty() ? ServiceNameOf(method.service) : options_.service, filter);
  }

  absl::Time Deadline(const ClientContext& context) const {
    return context.deadline() != absl::InfiniteFuture() ? context.deadline()
                                                        : absl::Now() + options_.default_timeout;
  }

  absl::StatusOr<WireMessage> Encode(ClientContext* context, const MethodInfo& method,
                                     const google::protobuf::Message& request) const {
    absl::StatusOr<WireMessage> message = RequestMessage(*context, method, Deadline(*context));
    if (!message.ok()) return message;
    if (absl::Status status = codec_->Encode(request, &message->data); !status.ok()) return status;
    return message;
  }

 public:
  // A message to `method` with the request headers of docs/PROTOCOL.md.
  absl::StatusOr<WireMessage> RequestMessage(const ClientContext& context, const MethodInfo& method,
                                             absl::Time deadline) const {
    if (codec_ == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("client content type '", options_.content_type, "' has no codec"));
    }
    WireMessage message;
    message.subject = std::string(method.subject);
    absl::Status status = protocol::EncodeRequestHeaders(
        codec_->ContentType(), deadline, absl::Now(), context.metadata(), &message.headers);
    if (!status.ok()) return status;
    return message;
  }

  const Codec* codec() const { return codec_; }

 private:
  std::shared_ptr<Transport> transport_;
  ClientOptions options_;
  const Codec* codec_;
  internal::InFlight in_flight_;
};

Client::Client(std::shared_ptr<Transport> transport, ClientOptions options)
    : impl_(std::make_unique<Impl>(std::move(transport), std::move(options))) {}

Client::~Client() = default;

absl::StatusOr<std::unique_ptr<Socket>> Client::OpenStream(ClientContext* context,
                                                           const MethodInfo& method) {
  absl::StatusOr<WireMessage> open = impl_->RequestMessage(*context, method, context->deadline());
  if (!open.ok()) return open.status();
  StreamOptions options;
  options.deadline = context->deadline();
  return impl_->Dial(*std::move(open), method, options);
}

const Codec& Client::codec() const {
  return impl_->codec() != nullptr ? *impl_->codec() : ProtobufCodec();
}

absl::Status Client::Call(ClientContext* context, const MethodInfo& method,
                          const google::protobuf::Message& request,
                          google::protobuf::Message* response) {
  // Shared with the reply handler, which may still be returning when we wake.
  struct Outcome {
    internal::Notification done;
    absl::StatusOr<WireMessage> reply;
  };
  auto outcome = std::make_shared<Outcome>();
  impl_->Start(context, method, request, [outcome](absl::StatusOr<WireMessage> reply) {
    outcome->reply = std::move(reply);
    outcome->done.Notify();
  });
  outcome->done.WaitForNotification();
  return FinishCall(std::move(outcome->reply), context, response);
}

void Client::AsyncCall(ClientContext* context, const MethodInfo& method,
                       const google::protobuf::Message& request,
                       google::protobuf::Message* response, CallCallback on_done) {
  impl_->in_flight().Start();
  Impl* impl = impl_.get();
  impl_->Start(
      context, method, request,
      [impl, context, response,
       on_done = std::move(on_done)](absl::StatusOr<WireMessage> reply) mutable {
        // Decoding and the user's code run on the executor, never on
        // a NATS delivery thread.
        impl->callback_executor().Schedule([impl, context, response, on_done = std::move(on_done),
                                            reply = std::move(reply)]() mutable {
          std::move(on_done)(FinishCall(std::move(reply), context, response));
          impl->in_flight().Finish();
        });
      });
}

}  // namespace micro
