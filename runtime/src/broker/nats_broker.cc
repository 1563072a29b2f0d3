// The broker over a Transport. Each subscription owns a queue between the
// NATS delivery thread (which only appends to it) and the executor (where up
// to max_concurrency tasks take events from it, decode them and run the
// handler). The queue is where the pending limits are enforced: nats.c's own
// queue stays nearly empty because our delivery callback never blocks.

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "micro/broker.h"
#include "protocol/wire.h"
#include "util/strings.h"
#include "util/threads.h"

namespace micro {
namespace {

using internal::ToAbsl;

// Same default as ServerOptions::num_threads.

// Events one executor task handles before it yields its thread to other
// work (other subscriptions sharing the executor) by rescheduling itself.
constexpr int kEventsPerTask = 256;

// How long a subscription's own thread waits for an event before it waits
// again; a drain ends the wait at once.
constexpr absl::Duration kIdleWait = absl::Seconds(1);

enum class TopicUse { kPublish, kSubscribe };

// Names are quoted escaped: a bad topic may hold control characters.
std::string Quoted(std::string_view text) {
  return absl::StrCat("'", absl::CHexEscape(ToAbsl(text)), "'");
}

// The topic of nearly every publish: printable ASCII tokens, none empty,
// no wildcard. Separate from ValidateTopic, which explains what is wrong,
// because it runs on every publish and is several times cheaper.
bool IsConcreteTopic(std::string_view topic) {
  if (topic.empty() || topic.front() == '.' || topic.back() == '.') return false;
  char previous = 0;
  for (const char c : topic) {
    if (c <= ' ' || c > '~' || c == '*' || c == '>' || (c == '.' && previous == '.')) return false;
    previous = c;
  }
  return true;
}

absl::Status ValidateTopic(std::string_view topic, TopicUse use) {
  size_t token_start = 0;
  bool wildcard = false;  // The current token has '*' or '>'.
  for (size_t i = 0; i <= topic.size(); ++i) {
    if (i < topic.size() && topic[i] != '.') {
      const char c = topic[i];
      if (c <= ' ' || c > '~') {
        return absl::InvalidArgumentError(absl::StrCat(
            "topic ", Quoted(topic), " has a space, a control or a non-ASCII character"));
      }
      wildcard |= c == '*' || c == '>';
      continue;
    }
    const std::string_view token = topic.substr(token_start, i - token_start);
    if (token.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("topic ", Quoted(topic), " has an empty token"));
    }
    if (wildcard) {
      if (token != "*" && token != ">") {
        return absl::InvalidArgumentError(absl::StrCat(
            "topic ", Quoted(topic), " has '*' or '>' inside a token; wildcards are whole tokens"));
      }
      if (use == TopicUse::kPublish) {
        return absl::InvalidArgumentError(absl::StrCat(
            "topic ", Quoted(topic), " has a wildcard; events are published to concrete topics"));
      }
      if (token == ">" && i != topic.size()) {
        return absl::InvalidArgumentError(
            absl::StrCat("topic ", Quoted(topic), ": '>' may only be the last token"));
      }
    }
    token_start = i + 1;
    wildcard = false;
  }
  return absl::OkStatus();
}

absl::Status ValidateOptions(const SubscribeOptions& options) {
  for (char c : options.queue_group) {
    if (c <= ' ' || c > '~') {
      return absl::InvalidArgumentError(
          absl::StrCat("queue group ", Quoted(options.queue_group),
                       " has a space, a control or non-ASCII character"));
    }
  }
  if (options.max_pending_messages <= 0 && options.max_pending_bytes <= 0) {
    return absl::InvalidArgumentError("pending limits: at least one limit must be positive");
  }
  if (options.max_concurrency < 1) {
    return absl::InvalidArgumentError("max_concurrency must be at least 1");
  }
  if (options.inline_handler && options.max_concurrency != 1) {
    return absl::InvalidArgumentError(
        "an inline handler runs on one NATS delivery thread: max_concurrency must be 1");
  }
  return absl::OkStatus();
}

// What a message costs against max_pending_bytes.
size_t PendingBytes(const WireMessage& message) {
  size_t bytes = message.data.size();
  for (const auto& [key, value] : message.headers) bytes += key.size() + value.size();
  return bytes;
}

void PrintError(std::string_view topic, const absl::Status& reason, const WireMessage&) {
  std::fprintf(stderr, "micro broker: event on %s not handled: %s\n", Quoted(topic).c_str(),
               reason.ToString().c_str());
}

// One subscription's queue, counters and handler. Shared by its handle, its
// transport callback and its executor tasks, so whichever lets go last frees it.
class SubscriptionState : public std::enable_shared_from_this<SubscriptionState> {
 public:
  SubscriptionState(SubscriberDefinition definition, SubscriberInfo info, Executor* executor,
                    EventErrorHandler on_error)
      : definition_(std::move(definition)),
        info_(std::move(info)),
        executor_(executor),
        on_error_(std::move(on_error)) {
    if (definition_.options.inline_handler) inline_event_.reset(definition_.prototype->New());
  }

  const SubscriberInfo& info() const { return info_; }

  ~SubscriptionState() { Drain(); }  // In case a handle never drained it.

  void Attach(std::unique_ptr<Subscription> subscription) {
    std::lock_guard lock(subscription_mu_);
    subscription_ = std::move(subscription);
  }

  // Starts the subscription's own thread, which takes each event from
  // `pull` and handles it.
  void AttachPull(std::unique_ptr<PullSubscription> pull) {
    std::lock_guard lock(subscription_mu_);
    pull_ = std::move(pull);
    reader_ = std::thread([this, pull = pull_.get()] { ReadPulled(*pull); });
  }

  // On a NATS delivery thread: queue the event, never wait (unless the
  // user asked for the handler to run right here).
  void OnMessage(WireMessage&& message) {
    if (inline_event_ != nullptr) {
      // nats.c calls one subscription's callback on one thread at a time,
      // so the event object is never shared; draining the transport
      // subscription waits for this call to return.
      received_.fetch_add(1, std::memory_order_relaxed);
      Deliver(message, inline_event_.get());
      return;
    }
    const size_t bytes = PendingBytes(message);
    const SubscribeOptions& options = definition_.options;
    bool start_task = false;
    {
      std::lock_guard lock(mu_);
      if ((options.max_pending_messages > 0 &&
           queue_.size() >= static_cast<size_t>(options.max_pending_messages)) ||
          (options.max_pending_bytes > 0 &&
           queued_bytes_ + bytes > static_cast<size_t>(options.max_pending_bytes))) {
        queue_dropped_.fetch_add(1, std::memory_order_relaxed);
        return;
      }
      queue_.emplace_back(std::move(message), bytes);
      queued_bytes_ += bytes;
      received_.fetch_add(1, std::memory_order_relaxed);
      ++unfinished_;
      if (tasks_ < options.max_concurrency) {
        ++tasks_;
        start_task = true;
      }
    }
    if (start_task) ScheduleTask();
  }

  void Drain() {
    std::lock_guard drain_lock(drain_mu_);
    std::unique_ptr<Subscription> subscription;
    std::unique_ptr<PullSubscription> pull;
    std::thread reader;
    {
      std::lock_guard lock(subscription_mu_);
      // The count dies with the subscription, so drops during its drain are
      // missed: a pushed one's callback keeps nats.c's queue nearly empty,
      // and a pulled one drops only while the server still sends.
      if (subscription_ != nullptr) transport_dropped_ = subscription_->Dropped();
      if (pull_ != nullptr) transport_dropped_ = pull_->Dropped();
      subscription = std::move(subscription_);
      pull = std::move(pull_);
      reader.swap(reader_);
    }
    // Destroying it drains it: every event the server already sent us goes
    // through OnMessage, then no more. Then the queue empties.
    subscription.reset();
    // Likewise: the reader handles every event already sent, then ends.
    if (pull != nullptr) pull->Drain();
    if (reader.joinable()) reader.join();
    pull.reset();
    std::unique_lock lock(mu_);
    idle_.wait(lock, [this] { return unfinished_ == 0; });
  }

  SubscriptionStats Stats() const {
    SubscriptionStats stats;
    // Read before a pulled subscription's pending events, so that an event
    // taken in between is missed for a moment rather than counted twice.
    stats.received = received_.load(std::memory_order_relaxed);
    stats.handled = handled_.load(std::memory_order_relaxed);
    stats.handler_errors = handler_errors_.load(std::memory_order_relaxed);
    stats.decode_errors = decode_errors_.load(std::memory_order_relaxed);
    {
      std::lock_guard lock(subscription_mu_);
      stats.dropped = subscription_ != nullptr ? subscription_->Dropped()
                      : pull_ != nullptr       ? pull_->Dropped()
                                               : transport_dropped_;
      // Waiting in the NATS client's queue, they are accepted as much as
      // those in ours.
      if (pull_ != nullptr) stats.received += pull_->Pending();
    }
    stats.dropped += queue_dropped_.load(std::memory_order_relaxed);
    return stats;
  }

 private:
  // The subscription's own thread: events come straight from the NATS
  // client, one at a time, as to a plain nats.c subscriber's callback.
  void ReadPulled(PullSubscription& pull) {
    std::unique_ptr<google::protobuf::Message> event(definition_.prototype->New());
    while (true) {
      absl::StatusOr<WireMessage> message = pull.Next(kIdleWait);
      if (!message.ok()) {
        if (message.status().code() == absl::StatusCode::kCancelled) return;
        continue;  // Nothing arrived; wait again.
      }
      received_.fetch_add(1, std::memory_order_relaxed);
      Deliver(*message, event.get());
    }
  }

  void ScheduleTask() {
    executor_->Schedule([self = shared_from_this()] { self->Work(); });
  }

  // An executor task: handles queued events until the queue is empty or it
  // has had its share of the thread.
  void Work() {
    // Reused for every event: the handler may not keep it past its call.
    std::unique_ptr<google::protobuf::Message> event(definition_.prototype->New());
    bool delivered = false;  // An event since the lock was last taken.
    for (int i = 0;; ++i) {
      WireMessage message;
      {
        std::lock_guard lock(mu_);
        // Counted here rather than under a lock of its own after each event.
        // Notifying under the lock: Drain may free the state once it wakes.
        if (delivered && --unfinished_ == 0) idle_.notify_all();
        delivered = false;
        if (queue_.empty()) {
          --tasks_;
          return;
        }
        if (i == kEventsPerTask) break;  // Rescheduled below, still counted in tasks_.
        message = std::move(queue_.front().first);
        queued_bytes_ -= queue_.front().second;
        queue_.pop_front();
      }
      Deliver(message, event.get());
      delivered = true;
    }
    // The queue was not empty, so Drain cannot have returned: the executor
    // is still in use and may take this task.
    ScheduleTask();
  }

  void Deliver(const WireMessage& message, google::protobuf::Message* event) {
    EventContext context;
    context.content_type =
        std::string(protocol::HeaderValue(message.headers, protocol::kContentTypeHeader));
    absl::Status status;
    if (const Codec* codec = FindCodec(context.content_type); codec == nullptr) {
      status = absl::InvalidArgumentError(absl::StrCat(
          "unsupported content type ", Quoted(context.content_type), " for ", info_.message_type));
    } else {
      status = codec->Decode(message.data, event);
    }
    if (!status.ok()) {
      decode_errors_.fetch_add(1, std::memory_order_relaxed);
      ReportError(message, status);
      return;
    }
    context.topic = message.subject;
    context.metadata = protocol::ExtractMetadata(message.headers);
    status = Invoke(*event, context);
    if (status.ok()) {
      handled_.fetch_add(1, std::memory_order_relaxed);
    } else {
      handler_errors_.fetch_add(1, std::memory_order_relaxed);
      ReportError(message, status);
    }
  }

  // An exception becomes an error status instead of ending the process.
  absl::Status Invoke(const google::protobuf::Message& event, const EventContext& context) {
    try {
      return definition_.handler(event, context);
    } catch (const std::exception& e) {
      return absl::UnknownError(
          absl::StrCat("handler of ", Quoted(context.topic), " threw: ", e.what()));
    } catch (...) {
      return absl::UnknownError(
          absl::StrCat("handler of ", Quoted(context.topic), " threw a non-std::exception"));
    }
  }

  void ReportError(const WireMessage& message, const absl::Status& reason) {
    try {
      on_error_(message.subject, reason, message);
    } catch (...) {
      // The error is counted already; a failing error handler must not stop
      // the subscription.
    }
  }

  const SubscriberDefinition definition_;
  const SubscriberInfo info_;
  Executor* const executor_;  // Outlives every task: see NatsBroker. Null when pulled.
  const EventErrorHandler on_error_;
  // Decoded into by every event of an inline_handler subscription.
  std::unique_ptr<google::protobuf::Message> inline_event_;

  // Serializes Drain: a second caller must also wait until the first is done.
  std::mutex drain_mu_;

  mutable std::mutex subscription_mu_;          // Guards the members below.
  std::unique_ptr<Subscription> subscription_;  // Events pushed to OnMessage,
  std::unique_ptr<PullSubscription> pull_;      // or taken by reader_.
  std::thread reader_;
  int64_t transport_dropped_ = 0;  // Its Dropped() when it was destroyed.

  std::mutex mu_;                                     // Guards the members below it.
  std::deque<std::pair<WireMessage, size_t>> queue_;  // With each event's PendingBytes.
  size_t queued_bytes_ = 0;
  int tasks_ = 0;  // Executor tasks scheduled or running Work.
  // Events from OnMessage until handled, for Drain, which waits on idle_.
  int unfinished_ = 0;
  std::condition_variable idle_;

  std::atomic<int64_t> received_{0};
  std::atomic<int64_t> handled_{0};
  std::atomic<int64_t> handler_errors_{0};
  std::atomic<int64_t> decode_errors_{0};
  std::atomic<int64_t> queue_dropped_{0};
};

// The broker's state, shared by the Broker object and every subscription
// handle, so handles may outlive the Broker. The executor (and the transport)
// live as long as this, and it dies on a user thread (a handle's or the
// broker's destructor), never in an executor task: tasks hold only
// SubscriptionState, so a pool executor is never destroyed by its own thread.
class NatsBroker final : public std::enable_shared_from_this<NatsBroker> {
 public:
  NatsBroker(std::shared_ptr<Transport> transport, BrokerOptions options, const Codec* codec)
      : transport_(std::move(transport)),
        options_(std::move(options)),
        codec_(codec),
        executor_given_(options_.executor != nullptr) {
    if (!options_.on_error) options_.on_error = PrintError;
  }

  absl::Status Publish(std::string_view topic, const google::protobuf::Message& event,
                       const Metadata& metadata) {
    if (closed_.load(std::memory_order_acquire)) {
      return absl::FailedPreconditionError("broker is closed");
    }
    if (!IsConcreteTopic(topic)) {
      // Always an error for a publish; this says which.
      absl::Status status = ValidateTopic(topic, TopicUse::kPublish);
      if (!status.ok()) return status;
    }
    // One message per thread, reused by its publishes so that they allocate
    // nothing once its strings have grown; a publish from inside another
    // (a transport that delivers synchronously) gets one of its own.
    thread_local WireMessage scratch;
    thread_local bool scratch_in_use = false;
    WireMessage own;
    WireMessage& message = scratch_in_use ? own : scratch;
    const bool uses_scratch = !scratch_in_use;
    scratch_in_use = true;
    absl::Status status = EncodeAndPublish(topic, event, metadata, message);
    if (uses_scratch) {
      scratch_in_use = false;
      // A rare large event must not pin its buffer to the thread.
      if (message.data.capacity() > kMaxScratchBytes) std::string().swap(message.data);
    }
    return status;
  }

  absl::StatusOr<std::unique_ptr<EventSubscription>> Subscribe(SubscriberDefinition definition);

  std::vector<SubscriberInfo> Subscribers() const {
    std::lock_guard lock(mu_);
    std::vector<SubscriberInfo> infos;
    infos.reserve(subscriptions_.size());
    for (const auto& subscription : subscriptions_) infos.push_back(subscription->info());
    return infos;
  }

  void Close() {
    std::vector<std::shared_ptr<SubscriptionState>> subscriptions;
    {
      std::lock_guard lock(mu_);
      closed_.store(true, std::memory_order_release);
      subscriptions.swap(subscriptions_);
    }
    for (const auto& subscription : subscriptions) subscription->Drain();
  }

  void Forget(const SubscriptionState* state) {
    std::lock_guard lock(mu_);
    std::erase_if(subscriptions_, [state](const auto& s) { return s.get() == state; });
  }

 private:
  static constexpr size_t kMaxScratchBytes = 64 << 10;

  // Fills `message` (whatever it held) with the event and sends it.
  absl::Status EncodeAndPublish(std::string_view topic, const google::protobuf::Message& event,
                                const Metadata& metadata, WireMessage& message) {
    message.subject.assign(topic);
    message.headers.clear();
    for (const auto& [key, value] : metadata) {
      if (absl::Status status = ValidateMetadata(key, value); !status.ok()) return status;
      message.headers.emplace(key, value);
    }
    protocol::AddContentType(codec_->ContentType(), &message.headers);
    absl::Status status = codec_->Encode(event, &message.data);
    if (status.ok()) status = transport_->Publish(message);
    return status;
  }

  // The executor, made when a subscription first needs it. Under mu_.
  Executor* ExecutorLocked() {
    if (options_.executor == nullptr) {
      options_.executor = NewThreadPoolExecutor(
          options_.num_threads > 0 ? options_.num_threads : internal::DefaultThreadCount());
    }
    return options_.executor.get();
  }

  const std::shared_ptr<Transport> transport_;
  BrokerOptions options_;  // on_error set after construction; executor once needed.
  const Codec* const codec_;
  const bool executor_given_;
  std::atomic<bool> closed_{false};

  // Guards subscriptions_, and is held across Subscribe so that Close cannot
  // miss a subscription being made.
  mutable std::mutex mu_;
  std::vector<std::shared_ptr<SubscriptionState>> subscriptions_;
};

class NatsEventSubscription final : public EventSubscription {
 public:
  NatsEventSubscription(std::shared_ptr<NatsBroker> broker,
                        std::shared_ptr<SubscriptionState> state)
      : broker_(std::move(broker)), state_(std::move(state)) {}

  ~NatsEventSubscription() override { Unsubscribe(); }

  void Unsubscribe() override {
    state_->Drain();
    broker_->Forget(state_.get());
  }

  SubscriptionStats stats() const override { return state_->Stats(); }
  const SubscriberInfo& info() const override { return state_->info(); }

 private:
  const std::shared_ptr<NatsBroker> broker_;
  const std::shared_ptr<SubscriptionState> state_;
};

absl::StatusOr<std::unique_ptr<EventSubscription>> NatsBroker::Subscribe(
    SubscriberDefinition definition) {
  if (absl::Status status = ValidateSubscriber(definition); !status.ok()) return status;
  SubscriberInfo info{definition.topic, definition.options.queue_group,
                      definition.prototype->GetDescriptor()->full_name()};
  EventErrorHandler on_error =
      definition.options.on_error ? definition.options.on_error : options_.on_error;
  const SubscribeOptions& options = definition.options;
  const int max_messages = options.max_pending_messages;
  const int64_t max_bytes = options.max_pending_bytes;
  // Unless handlers must run on a given executor, a subscription that
  // handles one event at a time needs none: its own thread takes each event
  // from the NATS client, with no hand-off in between.
  const bool may_pull = !executor_given_ && options.max_concurrency == 1 && !options.inline_handler;

  std::unique_lock lock(mu_);
  if (closed_.load(std::memory_order_acquire)) {
    return absl::FailedPreconditionError("broker is closed");
  }
  absl::StatusOr<std::unique_ptr<PullSubscription>> pull =
      absl::UnimplementedError("not a pulled subscription");
  if (may_pull) {
    pull = transport_->SubscribePull(info.topic, info.queue_group);
    if (!pull.ok() && pull.status().code() != absl::StatusCode::kUnimplemented) {
      return pull.status();
    }
  }
  auto state = std::make_shared<SubscriptionState>(std::move(definition), std::move(info),
                                                   pull.ok() ? nullptr : ExecutorLocked(),
                                                   std::move(on_error));
  absl::Status limits;
  if (pull.ok()) {
    limits = (*pull)->SetPendingLimits(max_messages, max_bytes);
    state->AttachPull(*std::move(pull));
  } else {
    // The callback keeps the state alive until the transport subscription
    // is destroyed, which Drain always does.
    absl::StatusOr<std::unique_ptr<Subscription>> subscription = transport_->Subscribe(
        state->info().topic, state->info().queue_group,
        [state](WireMessage message) { state->OnMessage(std::move(message)); });
    if (!subscription.ok()) return subscription.status();
    // Applied to nats.c's queue as well, so that a burst the callback has
    // not yet moved to ours is not dropped below the limits the user asked
    // for.
    limits = (*subscription)->SetPendingLimits(max_messages, max_bytes);
    state->Attach(*std::move(subscription));
  }
  if (!limits.ok()) {
    lock.unlock();  // Drain waits for handlers, which may call Subscribers().
    state->Drain();
    return limits;
  }
  subscriptions_.push_back(state);
  return std::make_unique<NatsEventSubscription>(shared_from_this(), std::move(state));
}

// The public face of NatsBroker; closing it drains every subscription.
class NatsBrokerHandle final : public Broker {
 public:
  explicit NatsBrokerHandle(std::shared_ptr<NatsBroker> broker) : broker_(std::move(broker)) {}
  ~NatsBrokerHandle() override { broker_->Close(); }

  absl::Status Publish(std::string_view topic, const google::protobuf::Message& event,
                       const Metadata& metadata) override {
    return broker_->Publish(topic, event, metadata);
  }

  absl::StatusOr<std::unique_ptr<EventSubscription>> Subscribe(
      SubscriberDefinition subscriber) override {
    return broker_->Subscribe(std::move(subscriber));
  }

  std::vector<SubscriberInfo> Subscribers() const override { return broker_->Subscribers(); }

  void Close() override { broker_->Close(); }

 private:
  const std::shared_ptr<NatsBroker> broker_;
};

}  // namespace

absl::Status ValidateSubscriber(const SubscriberDefinition& subscriber) {
  if (subscriber.prototype == nullptr || !subscriber.handler) {
    return absl::InvalidArgumentError("subscriber needs a prototype and a handler");
  }
  if (absl::Status status = ValidateTopic(subscriber.topic, TopicUse::kSubscribe); !status.ok()) {
    return status;
  }
  return ValidateOptions(subscriber.options);
}

absl::StatusOr<std::unique_ptr<Broker>> NewNatsBroker(std::shared_ptr<Transport> transport,
                                                      BrokerOptions options) {
  if (transport == nullptr) return absl::InvalidArgumentError("broker needs a transport");
  const Codec* codec = FindCodec(options.content_type);
  if (codec == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("broker content type ", Quoted(options.content_type), " has no codec"));
  }
  return std::make_unique<NatsBrokerHandle>(
      std::make_shared<NatsBroker>(std::move(transport), std::move(options), codec));
}

}  // namespace micro
