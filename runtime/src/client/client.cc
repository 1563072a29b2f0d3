#include "micro/client.h"

#include <google/protobuf/message.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <mutex>
#include <optional>
#include <utility>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "micro/codec.h"
#include "micro/errors.h"
#include "micro/registry.h"
#include "protocol/wire.h"
#include "util/in_flight.h"
#include "util/inherited_deadline.h"
#include "util/interceptor_chain.h"
#include "util/strings.h"
#include "util/timer_queue.h"

namespace micro {
namespace {

constexpr int kDefaultCallbackThreads = 2;

// How many AsyncCalls this thread is inside: a completion must not run there
// before AsyncCall returns, inline_callbacks or not.
thread_local int async_calls_starting_here = 0;

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

using InterceptorChain = internal::InterceptorChain<ClientInterceptor, ClientContext>;

// A client stream as the client hands it out: tells the selector, if an
// instance was picked, whether it was reachable, and ends the interceptors
// with the stream's final status.
class ClientSocket final : public Socket {
 public:
  ClientSocket(std::unique_ptr<Socket> socket, std::shared_ptr<Selector> selector,
               std::shared_ptr<const Instance> instance, std::unique_ptr<InterceptorChain> chain)
      : socket_(std::move(socket)),
        selector_(std::move(selector)),
        instance_(std::move(instance)),
        chain_(std::move(chain)) {}
  ~ClientSocket() override {
    socket_.reset();  // Cancels the stream if it has not ended.
    if (selector_ != nullptr) selector_->Mark(instance_->id, unavailable_);
    EndInterceptors(absl::CancelledError("the stream was abandoned before Finish"));
  }

  absl::Status Send(std::string data) override { return Note(socket_->Send(std::move(data))); }
  absl::Status Recv(std::string* data) override { return Note(socket_->Recv(data)); }
  absl::Status CloseSend() override { return Note(socket_->CloseSend()); }
  absl::Status End(const absl::Status& status, const Headers& trailing_metadata) override {
    return socket_->End(status, trailing_metadata);
  }
  void Cancel(const absl::Status& reason) override { socket_->Cancel(reason); }
  absl::Status Finish() override {
    absl::Status status = Note(socket_->Finish());
    EndInterceptors(status);
    return status;
  }
  Headers TrailingHeaders() override { return socket_->TrailingHeaders(); }
  absl::Status SetInitialMetadata(const Headers& metadata) override {
    return socket_->SetInitialMetadata(metadata);
  }
  Headers InitialHeaders() override { return socket_->InitialHeaders(); }
  absl::Status WaitForAccept() override { return Note(socket_->WaitForAccept()); }

 private:
  // Send and Recv may run on two threads at once.
  absl::Status Note(absl::Status status) {
    if (absl::IsUnavailable(status)) {
      std::lock_guard lock(mu_);
      unavailable_ = status;
    }
    return status;
  }

  void EndInterceptors(const absl::Status& status) {
    std::unique_ptr<InterceptorChain> chain;
    {
      std::lock_guard lock(mu_);
      chain.swap(chain_);
    }
    if (chain != nullptr) chain->End(status);
  }

  std::unique_ptr<Socket> socket_;
  const std::shared_ptr<Selector> selector_;
  const std::shared_ptr<const Instance> instance_;
  std::mutex mu_;
  absl::Status unavailable_;
  std::unique_ptr<InterceptorChain> chain_;
};

// Retry throttling (RetryPolicy's budget).
class RetryBudget {
 public:
  explicit RetryBudget(const RetryPolicy& policy)
      : max_tokens_(policy.max_tokens), ratio_(policy.token_ratio), tokens_(policy.max_tokens) {}

  void Succeeded() {
    std::lock_guard lock(mu_);
    tokens_ = std::min(max_tokens_, tokens_ + ratio_);
  }
  // A retryable failure; true if the budget allows a retry.
  bool FailedMayRetry() {
    std::lock_guard lock(mu_);
    tokens_ = std::max(0.0, tokens_ - 1);
    return tokens_ > max_tokens_ / 2;
  }

 private:
  const double max_tokens_;
  const double ratio_;
  std::mutex mu_;
  double tokens_;
};

}  // namespace

class Client::Impl {
 public:
  Impl(std::shared_ptr<Transport> transport, ClientOptions options)
      : transport_(std::move(transport)), options_(std::move(options)), budget_(options_.retry) {
    codec_ = FindCodec(options_.content_type);
    if (options_.callback_executor == nullptr) {
      options_.callback_executor = NewThreadPoolExecutor(kDefaultCallbackThreads);
    }
  }

  ~Impl() { in_flight_.WaitUntilIdle(); }

  // One unary call across its attempts.
  struct PendingCall {
    ClientContext* context;
    const MethodInfo* method;
    std::string body;
    absl::Time deadline;
    int attempts = 0;
    ReplyHandler on_reply;
  };

  // Sends the request, again if it fails retryably; `on_reply` runs once, on
  // a transport or timer thread, or on this one if nothing could be sent.
  void Start(ClientContext* context, const MethodInfo& method,
             const google::protobuf::Message& request, ReplyHandler on_reply) {
    auto call = std::make_shared<PendingCall>(
        PendingCall{context, &method, "", Deadline(*context), 0, std::move(on_reply)});
    if (absl::Status encoded = Encode(request, &call->body); !encoded.ok()) {
      std::move(call->on_reply)(encoded);
      return;
    }
    Attempt(std::move(call));
  }

  // Start for a caller that blocks: the attempts run on this thread, which
  // waits for each reply (Transport::RequestAndWait) and sleeps through the
  // backoffs between them.
  absl::StatusOr<WireMessage> CallAndWait(ClientContext* context, const MethodInfo& method,
                                          const google::protobuf::Message& request) {
    PendingCall call{context, &method, "", Deadline(*context), 0, nullptr};
    if (absl::Status encoded = Encode(request, &call.body); !encoded.ok()) return encoded;
    for (;;) {
      AttemptInfo attempt;
      absl::StatusOr<WireMessage> message = NextAttempt(call, &attempt);
      if (!message.ok()) return message.status();
      absl::StatusOr<WireMessage> reply = transport_->RequestAndWait(*message, attempt.deadline);
      Then then = AfterAttempt(call, attempt, reply);
      if (then.what == Then::kFinish) return reply;
      absl::SleepFor(then.when - absl::Now());
      if (then.what == Then::kFail) return then.status;
    }
  }

  // Opens a stream, to an instance the selector picks if there is one.
  absl::StatusOr<std::unique_ptr<Socket>> Dial(ClientContext* context, const MethodInfo& method) {
    auto chain = std::make_unique<InterceptorChain>(&options_.interceptors, &method, context);
    absl::StatusOr<std::unique_ptr<Socket>> socket = DialIntercepted(context, method, *chain);
    if (!socket.ok()) {
      chain->End(socket.status());
      return socket.status();
    }
    return socket;
  }

  // Async calls whose completion has not finished.
  internal::InFlight& in_flight() { return in_flight_; }

  Executor& callback_executor() { return *options_.callback_executor; }
  bool inline_callbacks() const { return options_.inline_callbacks; }

  const ClientInterceptors& interceptors() const { return options_.interceptors; }

  const Codec* codec() const { return codec_; }

 private:
  absl::StatusOr<std::unique_ptr<Socket>> DialIntercepted(ClientContext* context,
                                                          const MethodInfo& method,
                                                          InterceptorChain& chain) {
    if (absl::Status status = chain.Start(); !status.ok()) return status;
    StreamOptions options;
    options.deadline = std::min(context->deadline(), internal::InheritedDeadline::Current());
    absl::StatusOr<std::unique_ptr<Socket>> socket = DialOnce(context, method, options, chain);
    for (int waits = 1; !socket.ok() && WaitsForReady(*context, socket.status()); ++waits) {
      absl::Time when = absl::Now() + Backoff(waits);
      if (when >= options.deadline) {
        absl::SleepFor(options.deadline - absl::Now());
        return NotReadyByDeadline(socket.status());
      }
      absl::SleepFor(when - absl::Now());
      socket = DialOnce(context, method, options, chain);
    }
    return socket;
  }

  // One try at opening a stream; an unprocessed UNAVAILABLE if not connected.
  absl::StatusOr<std::unique_ptr<Socket>> DialOnce(ClientContext* context, const MethodInfo& method,
                                                   const StreamOptions& options,
                                                   InterceptorChain& chain) {
    std::shared_ptr<const Instance> instance;
    absl::StatusOr<WireMessage> open =
        AddressedMessage(*context, method, options.deadline, &instance);
    if (!open.ok()) return open.status();
    absl::StatusOr<std::unique_ptr<Socket>> socket = transport_->Dial(*open, options);
    if (socket.ok() && context->wait_for_ready()) {
      // Nobody listening (e.g. the server's connection is not back yet)
      // only shows once the open frame got its answer.
      if (absl::Status accepted = (*socket)->WaitForAccept();
          !accepted.ok() && WaitsForReady(*context, accepted)) {
        socket = accepted;
      }
    }
    if (!socket.ok()) {
      if (instance != nullptr) options_.selector->Mark(instance->id, socket.status());
      return socket.status();
    }
    return std::unique_ptr<Socket>(new ClientSocket(
        *std::move(socket), instance != nullptr ? options_.selector : nullptr, std::move(instance),
        std::make_unique<InterceptorChain>(std::move(chain))));
  }

  // Where an attempt goes, and until when it may take.
  struct AttemptInfo {
    absl::Time deadline;
    std::shared_ptr<const Instance> instance;  // The instance picked, if any.
  };

  // The request of the call's next attempt.
  absl::StatusOr<WireMessage> NextAttempt(PendingCall& call, AttemptInfo* attempt) {
    ++call.attempts;
    attempt->deadline = call.deadline;
    if (call.method->idempotent && options_.retry.max_attempts > 1) {
      attempt->deadline =
          std::min(attempt->deadline, absl::Now() + options_.retry.per_attempt_timeout);
    }
    absl::StatusOr<WireMessage> message =
        AddressedMessage(*call.context, *call.method, attempt->deadline, &attempt->instance);
    if (message.ok()) message->data = call.body;
    return message;
  }

  // What follows an attempt.
  struct Then {
    // kFinish: the call ends with the attempt's outcome. kRetry: another
    // attempt at `when`. kFail: the call ends with `status` at `when`.
    enum { kFinish, kRetry, kFail } what = kFinish;
    absl::Time when;
    absl::Status status;
  };

  // Tells the selector how the attempt went and decides what follows it
  // (ClientContext::set_wait_for_ready, RetryPolicy).
  Then AfterAttempt(const PendingCall& call, const AttemptInfo& attempt,
                    const absl::StatusOr<WireMessage>& reply) {
    absl::Status status = reply.ok() ? protocol::DecodeReplyStatus(reply->headers) : reply.status();
    if (attempt.instance != nullptr) options_.selector->Mark(attempt.instance->id, status);
    if (status.ok()) {
      budget_.Succeeded();
      return Then{};
    }
    if (WaitsForReady(*call.context, status)) {
      absl::Time when = absl::Now() + Backoff(call.attempts);
      if (when < call.deadline) return Then{Then::kRetry, when, {}};
      return Then{Then::kFail, call.deadline, NotReadyByDeadline(status)};
    }
    if (std::optional<absl::Time> when = RetryAt(call, status, attempt.deadline)) {
      return Then{Then::kRetry, *when, {}};
    }
    return Then{};
  }

  void Attempt(std::shared_ptr<PendingCall> call) {
    AttemptInfo attempt;
    absl::StatusOr<WireMessage> message = NextAttempt(*call, &attempt);
    if (!message.ok()) {
      std::move(call->on_reply)(message.status());
      return;
    }
    const absl::Time deadline = attempt.deadline;
    transport_->Request(
        *message, deadline,
        [this, call, attempt = std::move(attempt)](absl::StatusOr<WireMessage> reply) mutable {
          Then then = AfterAttempt(*call, attempt, reply);
          switch (then.what) {
            case Then::kFinish:
              std::move(call->on_reply)(std::move(reply));
              return;
            case Then::kRetry:
              timers_.Schedule(then.when, [this, call] { Attempt(call); });
              return;
            case Then::kFail:
              timers_.Schedule(then.when, [call, status = std::move(then.status)] {
                std::move(call->on_reply)(status);
              });
              return;
          }
        });
  }

  // Whether a call that failed with `status` waits (ClientContext::set_wait_for_ready):
  // nothing was sent because nobody could take it.
  static bool WaitsForReady(const ClientContext& context, const absl::Status& status) {
    return context.wait_for_ready() && absl::IsUnavailable(status) && IsUnprocessed(status);
  }

  static absl::Status NotReadyByDeadline(const absl::Status& last) {
    return absl::DeadlineExceededError(
        absl::StrCat("deadline passed while waiting for a server: ", last.message()));
  }

  // The wait before attempt `attempts` + 1 (RetryPolicy).
  absl::Duration Backoff(int attempts) {
    const RetryPolicy& policy = options_.retry;
    double cap = absl::ToDoubleSeconds(policy.initial_backoff) *
                 std::pow(policy.backoff_multiplier, std::min(attempts, 64) - 1);
    cap = std::min(cap, absl::ToDoubleSeconds(policy.max_backoff));
    std::lock_guard lock(random_mu_);
    return absl::Seconds(absl::Uniform(random_, cap / 2, cap));
  }

  // When to attempt again after `status`, if RetryPolicy allows it.
  std::optional<absl::Time> RetryAt(const PendingCall& call, const absl::Status& status,
                                    absl::Time attempt_deadline) {
    const RetryPolicy& policy = options_.retry;
    bool attempt_timed_out = absl::IsDeadlineExceeded(status) && !IsRemoteError(status) &&
                             attempt_deadline < call.deadline;
    bool retryable = IsUnprocessed(status) || (call.method->idempotent &&
                                               (absl::IsUnavailable(status) || attempt_timed_out));
    if (!retryable || !budget_.FailedMayRetry() || call.attempts >= policy.max_attempts) {
      return std::nullopt;
    }
    absl::Time when = absl::Now() + Backoff(call.attempts);
    if (when >= call.deadline) return std::nullopt;
    return when;
  }

  absl::Status Encode(const google::protobuf::Message& request, std::string* body) const {
    return codec_ == nullptr ? NoCodec() : codec_->Encode(request, body);
  }

  absl::Status NoCodec() const {
    return absl::InvalidArgumentError(
        absl::StrCat("client content type '", options_.content_type, "' has no codec"));
  }

  // RequestMessage, sent to the instance subject of the instance the
  // selector picks (`*instance`) when there is a selector.
  absl::StatusOr<WireMessage> AddressedMessage(const ClientContext& context,
                                               const MethodInfo& method, absl::Time deadline,
                                               std::shared_ptr<const Instance>* instance) const {
    absl::StatusOr<WireMessage> message = RequestMessage(context, method, deadline);
    if (!message.ok() || options_.selector == nullptr) return message;
    absl::StatusOr<std::shared_ptr<const Instance>> selected = Select(method);
    if (!selected.ok()) return selected.status();
    *instance = *std::move(selected);
    message->subject = InstanceSubject((*instance)->id, method.subject);
    return message;
  }

  // An instance of the method's service that serves it and passes the filter.
  absl::StatusOr<std::shared_ptr<const Instance>> Select(const MethodInfo& method) const {
    SelectFilter filter = options_.filter;
    filter.endpoint = std::string(method.subject);
    return options_.selector->Select(
        options_.service.empty() ? ServiceNameOf(method.service) : options_.service, filter);
  }

  absl::Time Deadline(const ClientContext& context) const {
    absl::Time own = context.deadline() != absl::InfiniteFuture()
                         ? context.deadline()
                         : absl::Now() + options_.default_timeout;
    return std::min(own, internal::InheritedDeadline::Current());
  }

  // A message to `method` with the request headers of docs/PROTOCOL.md.
  absl::StatusOr<WireMessage> RequestMessage(const ClientContext& context, const MethodInfo& method,
                                             absl::Time deadline) const {
    if (codec_ == nullptr) return NoCodec();
    if (size_t bytes = protocol::MetadataBytes(context.metadata());
        bytes > options_.max_metadata_bytes) {
      return absl::ResourceExhaustedError(absl::StrCat("request metadata of ", bytes,
                                                       " bytes exceeds the client's limit of ",
                                                       options_.max_metadata_bytes));
    }
    WireMessage message;
    message.subject = std::string(method.subject);
    absl::Status status = protocol::EncodeRequestHeaders(
        codec_->ContentType(), deadline, absl::Now(), context.metadata(), &message.headers);
    if (!status.ok()) return status;
    return message;
  }

  std::shared_ptr<Transport> transport_;
  ClientOptions options_;
  const Codec* codec_;
  RetryBudget budget_;
  std::mutex random_mu_;
  absl::BitGen random_;
  internal::TimerQueue timers_;  // Retries wait here for their backoff.
  internal::InFlight in_flight_;
};

Client::Client(std::shared_ptr<Transport> transport, ClientOptions options)
    : impl_(std::make_unique<Impl>(std::move(transport), std::move(options))) {}

Client::~Client() = default;

absl::StatusOr<std::unique_ptr<Socket>> Client::OpenStream(ClientContext* context,
                                                           const MethodInfo& method) {
  return impl_->Dial(context, method);
}

const Codec& Client::codec() const {
  return impl_->codec() != nullptr ? *impl_->codec() : ProtobufCodec();
}

absl::Status Client::Call(ClientContext* context, const MethodInfo& method,
                          const google::protobuf::Message& request,
                          google::protobuf::Message* response) {
  InterceptorChain chain(&impl_->interceptors(), &method, context);
  absl::Status status = chain.Start();
  if (status.ok())
    status = FinishCall(impl_->CallAndWait(context, method, request), context, response);
  chain.End(status);
  return status;
}

void Client::AsyncCall(ClientContext* context, const MethodInfo& method,
                       const google::protobuf::Message& request,
                       google::protobuf::Message* response, CallCallback on_done) {
  impl_->in_flight().Start();
  Impl* impl = impl_.get();
  auto chain = std::make_shared<InterceptorChain>(&impl_->interceptors(), &method, context);
  // Decoding and the user's code run on the executor, never on this thread,
  // and on a NATS delivery thread only if asked to (inline_callbacks).
  auto complete = [impl, context, response, chain,
                   on_done = std::move(on_done)](absl::StatusOr<WireMessage> reply) mutable {
    const bool run_here = reply.ok() && impl->inline_callbacks() && async_calls_starting_here == 0;
    auto finish = [impl, context, response, chain, on_done = std::move(on_done),
                   reply = std::move(reply)]() mutable {
      absl::Status status = FinishCall(std::move(reply), context, response);
      chain->End(status);
      std::move(on_done)(status);
      impl->in_flight().Finish();
    };
    if (run_here) {
      finish();
    } else {
      impl->callback_executor().Schedule(std::move(finish));
    }
  };
  ++async_calls_starting_here;
  if (absl::Status started = chain->Start(); started.ok()) {
    impl_->Start(context, method, request, std::move(complete));
  } else {
    complete(started);
  }
  --async_calls_starting_here;
}

}  // namespace micro
