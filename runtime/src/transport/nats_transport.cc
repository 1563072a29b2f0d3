// Transport over nats.c. Requests share one wildcard inbox subscription
// `_INBOX.<nuid>.*`; each request gets a token as the last subject token and
// waits in `pending_`. One timer thread fails requests whose deadline passes.

#include <nats/nats.h>

#include <condition_variable>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "micro/transport.h"
#include "util/notification.h"
#include "util/strings.h"

namespace micro {
namespace {

// How long a subscription's teardown waits for nats.c to finish delivering.
constexpr absl::Duration kSubscriptionCloseTimeout = absl::Seconds(10);
// How long Subscribe waits for the server to confirm a subscription.
constexpr int64_t kSubscribeConfirmTimeoutMs = 5000;

absl::Status FromNats(natsStatus status, absl::string_view what) {
  if (status == NATS_OK) return absl::OkStatus();
  const char* last = nats_GetLastError(nullptr);
  std::string message = absl::StrCat(what, ": ", natsStatus_GetText(status));
  if (last != nullptr && *last != '\0') absl::StrAppend(&message, " (", last, ")");
  switch (status) {
    case NATS_INVALID_ARG:
    case NATS_INVALID_SUBJECT:
    case NATS_INVALID_QUEUE_NAME:
      return absl::InvalidArgumentError(message);
    case NATS_MAX_PAYLOAD:
      return absl::ResourceExhaustedError(message);
    case NATS_TIMEOUT:
      return absl::DeadlineExceededError(message);
    case NATS_NOT_PERMITTED:
    case NATS_CONNECTION_AUTH_FAILED:
      return absl::UnauthenticatedError(message);
    default:
      return absl::UnavailableError(message);
  }
}

// Takes ownership of `msg` and destroys it.
WireMessage ToWireMessage(natsMsg* msg) {
  WireMessage out;
  out.subject = natsMsg_GetSubject(msg);
  if (const char* reply = natsMsg_GetReply(msg); reply != nullptr) out.reply = reply;
  out.data.assign(natsMsg_GetData(msg), natsMsg_GetDataLength(msg));
  const char** keys = nullptr;
  int num_keys = 0;
  if (natsMsgHeader_Keys(msg, &keys, &num_keys) == NATS_OK) {
    for (int i = 0; i < num_keys; ++i) {
      const char** values = nullptr;
      int num_values = 0;
      if (natsMsgHeader_Values(msg, keys[i], &values, &num_values) != NATS_OK) continue;
      for (int j = 0; j < num_values; ++j) out.headers.emplace(keys[i], values[j]);
      free(static_cast<void*>(values));
    }
    free(static_cast<void*>(keys));
  }
  natsMsg_Destroy(msg);
  return out;
}

// The bytes nats-server counts against max_payload for these headers.
size_t HeaderBytes(const Headers& headers) {
  if (headers.empty()) return 0;
  size_t bytes = sizeof("NATS/1.0\r\n") - 1 + 2;
  for (const auto& [key, value] : headers) bytes += key.size() + value.size() + 4;
  return bytes;
}

class NatsSubscription final : public Subscription {
 public:
  // Owns the handler; nats.c holds a pointer to this state until OnComplete.
  struct State {
    MessageHandler handler;
    internal::Notification completed;
  };

  NatsSubscription(natsSubscription* sub, State* state) : sub_(sub), state_(state) {}

  ~NatsSubscription() override {
    // Drain delivers what the server already sent us, then calls OnComplete.
    if (natsSubscription_Drain(sub_) != NATS_OK) natsSubscription_Unsubscribe(sub_);
    if (state_->completed.WaitForNotificationWithTimeout(kSubscriptionCloseTimeout)) {
      delete state_;
    }
    // Otherwise nats.c may still call the handler: leaking the state is the
    // only choice that cannot crash.
    natsSubscription_Destroy(sub_);
  }

  absl::Status SetPendingLimits(int max_messages, int64_t max_bytes) override {
    if (max_messages <= 0 && max_bytes <= 0) {
      return absl::InvalidArgumentError("pending limits: at least one limit must be positive");
    }
    return FromNats(natsSubscription_SetPendingLimits(sub_, max_messages <= 0 ? -1 : max_messages,
                                                      max_bytes <= 0 ? -1 : max_bytes),
                    "setting pending limits");
  }

  int64_t Dropped() const override {
    int64_t dropped = 0;
    natsSubscription_GetDropped(sub_, &dropped);
    return dropped;
  }

  static void OnMessage(natsConnection*, natsSubscription*, natsMsg* msg, void* closure) {
    static_cast<State*>(closure)->handler(ToWireMessage(msg));
  }

  static void OnComplete(void* closure) { static_cast<State*>(closure)->completed.Notify(); }

 private:
  natsSubscription* sub_;
  State* state_;
};

class NatsTransport final : public Transport {
 public:
  NatsTransport() = default;

  ~NatsTransport() override {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
      timer_cv_.notify_one();
    }
    if (timer_thread_.joinable()) timer_thread_.join();
    inbox_subscription_.reset();
    absl::flat_hash_map<uint64_t, PendingRequest> abandoned;
    {
      std::lock_guard lock(mu_);
      abandoned.swap(pending_);
      deadlines_.clear();
    }
    for (auto& [token, request] : abandoned) {
      std::move(request.on_reply)(absl::CancelledError("transport destroyed before the reply"));
    }
    if (connection_ != nullptr) natsConnection_Destroy(connection_);
  }

  absl::Status Connect(const TransportOptions& options) {
    natsOptions* opts = nullptr;
    absl::Status status = FromNats(natsOptions_Create(&opts), "creating NATS options");
    if (!status.ok()) return status;
    std::unique_ptr<natsOptions, decltype(&natsOptions_Destroy)> owned(opts, natsOptions_Destroy);
    natsStatus s = natsOptions_SetURL(opts, options.url.c_str());
    if (s == NATS_OK && !options.name.empty()) s = natsOptions_SetName(opts, options.name.c_str());
    if (s == NATS_OK) {
      s = natsOptions_SetTimeout(opts, absl::ToInt64Milliseconds(options.connect_timeout));
    }
    if (s == NATS_OK) s = natsOptions_SetMaxReconnect(opts, options.max_reconnect_attempts);
    if (s == NATS_OK) {
      s = natsOptions_SetReconnectWait(opts, absl::ToInt64Milliseconds(options.reconnect_wait));
    }
    // Without it every publish waits up to 1 ms for nats.c's flusher thread.
    if (s == NATS_OK) s = natsOptions_SetSendAsap(opts, true);
    if (s != NATS_OK)
      return FromNats(s, absl::StrCat("invalid NATS options for '", options.url, "'"));
    s = natsConnection_Connect(&connection_, opts);
    if (s != NATS_OK) {
      return FromNats(s, absl::StrCat("cannot connect to NATS at '", options.url, "'"));
    }

    natsInbox* inbox = nullptr;
    if (s = natsInbox_Create(&inbox); s != NATS_OK) return FromNats(s, "creating inbox");
    inbox_prefix_ = absl::StrCat(static_cast<const char*>(inbox), ".");
    natsInbox_Destroy(inbox);
    auto subscription = Subscribe(absl::StrCat(inbox_prefix_, "*"), "",
                                  [this](WireMessage reply) { OnReply(std::move(reply)); });
    if (!subscription.ok()) return subscription.status();
    inbox_subscription_ = *std::move(subscription);
    timer_thread_ = std::thread([this] { ExpireDeadlines(); });
    return absl::OkStatus();
  }

  absl::Status Publish(const WireMessage& message) override {
    return PublishTo(message, message.reply);
  }

  void Request(const WireMessage& request, absl::Time deadline, ReplyHandler on_reply) override {
    uint64_t token;
    {
      std::lock_guard lock(mu_);
      token = next_token_++;
      pending_.emplace(token, PendingRequest{std::move(on_reply), deadline});
      if (deadline != absl::InfiniteFuture()) {
        deadlines_.emplace(deadline, token);
        // Waking the timer thread costs a context switch per call; needed only
        // when it would otherwise sleep past this deadline.
        if (deadline < timer_wakeup_) timer_cv_.notify_one();
      }
    }
    absl::Status sent = PublishTo(request, absl::StrCat(inbox_prefix_, token));
    if (!sent.ok()) Complete(token, std::move(sent));
  }

  absl::StatusOr<std::unique_ptr<Subscription>> Subscribe(const std::string& subject,
                                                          const std::string& queue_group,
                                                          MessageHandler on_message) override {
    auto* state = new NatsSubscription::State{std::move(on_message), {}};
    natsSubscription* sub = nullptr;
    natsStatus s =
        queue_group.empty()
            ? natsConnection_Subscribe(&sub, connection_, subject.c_str(),
                                       &NatsSubscription::OnMessage, state)
            : natsConnection_QueueSubscribe(&sub, connection_, subject.c_str(), queue_group.c_str(),
                                            &NatsSubscription::OnMessage, state);
    if (s == NATS_OK)
      s = natsSubscription_SetOnCompleteCB(sub, &NatsSubscription::OnComplete, state);
    // A PING/PONG round trip: the server has processed our SUB when it answers.
    if (s == NATS_OK) s = natsConnection_FlushTimeout(connection_, kSubscribeConfirmTimeoutMs);
    if (s != NATS_OK) {
      if (sub != nullptr) {
        natsSubscription_Unsubscribe(sub);
        natsSubscription_Destroy(sub);
      } else {
        delete state;
      }
      return FromNats(s, absl::StrCat("cannot subscribe to '", subject, "'"));
    }
    return std::unique_ptr<Subscription>(new NatsSubscription(sub, state));
  }

  size_t MaxPayload() const override {
    return static_cast<size_t>(natsConnection_GetMaxPayload(connection_));
  }

 private:
  struct PendingRequest {
    ReplyHandler on_reply;
    absl::Time deadline;
  };

  absl::Status PublishTo(const WireMessage& message, const std::string& reply) {
    size_t size = message.data.size() + HeaderBytes(message.headers);
    if (size_t limit = MaxPayload(); size > limit) {
      return absl::ResourceExhaustedError(
          absl::StrCat("message of ", size, " bytes to '", message.subject,
                       "' exceeds the NATS server's max payload of ", limit, " bytes"));
    }
    natsMsg* msg = nullptr;
    natsStatus s =
        natsMsg_Create(&msg, message.subject.c_str(), reply.empty() ? nullptr : reply.c_str(),
                       message.data.data(), static_cast<int>(message.data.size()));
    for (auto it = message.headers.begin(); s == NATS_OK && it != message.headers.end(); ++it) {
      s = natsMsgHeader_Add(msg, it->first.c_str(), it->second.c_str());
    }
    if (s == NATS_OK) s = natsConnection_PublishMsg(connection_, msg);
    natsMsg_Destroy(msg);
    return FromNats(s, absl::StrCat("cannot publish to '", message.subject, "'"));
  }

  void OnReply(WireMessage reply) {
    uint64_t token = 0;
    std::string_view suffix = std::string_view(reply.subject).substr(inbox_prefix_.size());
    if (!absl::SimpleAtoi(internal::ToAbsl(suffix), &token))
      return;  // Not one of ours: nothing waits for it.
    // nats-server answers a request nobody subscribes to with status 503.
    if (NatsStatusLine(reply) == "503") {
      Complete(token, absl::UnavailableError("no service is listening on the subject"));
      return;
    }
    Complete(token, std::move(reply));
  }

  // The NATS status line of a control message ("503" for no responders);
  // nats.c exposes it as the `Status` header of an empty message.
  static std::string_view NatsStatusLine(const WireMessage& reply) {
    if (!reply.data.empty()) return {};
    auto it = reply.headers.find("Status");
    return it == reply.headers.end() ? std::string_view() : std::string_view(it->second);
  }

  // Hands the outcome to the request's handler, unless it has completed already.
  void Complete(uint64_t token, absl::StatusOr<WireMessage> outcome) {
    ReplyHandler on_reply;
    {
      std::lock_guard lock(mu_);
      auto it = pending_.find(token);
      if (it == pending_.end()) return;  // Late reply after the deadline fired.
      on_reply = std::move(it->second.on_reply);
      if (it->second.deadline != absl::InfiniteFuture()) {
        deadlines_.erase(std::make_pair(it->second.deadline, token));
      }
      pending_.erase(it);
    }
    std::move(on_reply)(std::move(outcome));
  }

  void ExpireDeadlines() {
    std::unique_lock lock(mu_);
    while (!stopping_) {
      timer_wakeup_ = deadlines_.empty() ? absl::InfiniteFuture() : deadlines_.begin()->first;
      if (absl::Now() < timer_wakeup_) {
        if (timer_wakeup_ == absl::InfiniteFuture()) {
          timer_cv_.wait(lock);
        } else {
          timer_cv_.wait_until(lock, absl::ToChronoTime(timer_wakeup_));
        }
        continue;
      }
      uint64_t token = deadlines_.begin()->second;
      lock.unlock();
      Complete(token, absl::DeadlineExceededError("deadline exceeded before a reply arrived"));
      lock.lock();
    }
  }

  natsConnection* connection_ = nullptr;
  std::string inbox_prefix_;
  std::unique_ptr<Subscription> inbox_subscription_;
  std::thread timer_thread_;

  // Guards the members below it.
  std::mutex mu_;
  std::condition_variable timer_cv_;
  bool stopping_ = false;
  uint64_t next_token_ = 1;
  absl::flat_hash_map<uint64_t, PendingRequest> pending_;
  std::set<std::pair<absl::Time, uint64_t>> deadlines_;
  // When the timer thread wakes next on its own (it may wake earlier).
  absl::Time timer_wakeup_ = absl::InfiniteFuture();
};

}  // namespace

std::string DefaultNatsUrl() {
  const char* env = std::getenv("NATS_URL");
  return env != nullptr && *env != '\0' ? env : "nats://127.0.0.1:4222";
}

absl::StatusOr<std::shared_ptr<Transport>> ConnectNats(const TransportOptions& options) {
  auto transport = std::make_shared<NatsTransport>();
  if (absl::Status status = transport->Connect(options); !status.ok()) return status;
  return transport;
}

}  // namespace micro
