// Transport over nats.c. Everything addressed to this connection arrives on
// one wildcard subscription `_INBOX.<nuid>.*`: the last token is a request's
// reply token (waiting in `pending_`), a stream id (in `streams_`), or 0 for
// pings; but blocking calls read their replies on their own threads from
// subscriptions of their own (DirectInboxes). One timer thread handles request
// and stream deadlines and the heartbeats of docs/PROTOCOL.md.

#include <nats/nats.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/functional/function_ref.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "micro/transport.h"
#include "protocol/wire.h"
#include "transport/socket_loop.h"
#include "transport/stream_core.h"
#include "util/notification.h"
#include "util/strings.h"
#include "util/timer_queue.h"
#include "util/write_batch.h"

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

// nats.c reads NKey seed and credentials files only while it connects, and
// reports a bad one as a failed connection (UNAVAILABLE). Checking first
// that `path` is readable and holds a user seed nats.c can sign with makes
// a bad file the caller's error, with the file's name.
absl::Status CheckSeedFile(const std::string& path, absl::string_view what) {
  std::ifstream in(path);
  if (!in) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot read ", what, " '", path, "': ", strerror(errno)));
  }
  std::string line;
  while (std::getline(in, line)) {
    std::string seed(absl::StripAsciiWhitespace(line));
    // Secrets do not outlive the check.
    std::fill(line.begin(), line.end(), 'x');
    if (!absl::StartsWith(seed, "SU")) continue;
    unsigned char* signature = nullptr;
    int length = 0;
    natsStatus s = nats_Sign(seed.c_str(), "micro", &signature, &length);
    free(signature);
    std::fill(seed.begin(), seed.end(), 'x');
    if (s == NATS_OK) return absl::OkStatus();
    return absl::InvalidArgumentError(
        FromNats(s, absl::StrCat(what, " '", path, "' holds a bad user NKey seed")).message());
  }
  return absl::InvalidArgumentError(
      absl::StrCat(what, " '", path, "' holds no user NKey seed (a line \"SU...\")"));
}

// nats.c frees every natsMsg on its garbage collector thread, and wakes that
// thread for each one it is given while idle: a context switch per message
// received or sent with headers, on both sides of every call. Handing them
// over in batches wakes it about once per batch. A batch holds at most
// kBatchMessages messages and, but for the last one, kBatchBytes of data.
class MsgReaper {
 public:
  ~MsgReaper() { DestroyAll(std::move(msgs_)); }

  // Takes ownership of `msg`.
  void Destroy(natsMsg* msg) {
    std::vector<natsMsg*> batch;
    {
      std::lock_guard lock(mu_);
      msgs_.push_back(msg);
      bytes_ += static_cast<size_t>(natsMsg_GetDataLength(msg));
      if (msgs_.size() < kBatchMessages && bytes_ < kBatchBytes) return;
      batch.swap(msgs_);
      msgs_.reserve(kBatchMessages);
      bytes_ = 0;
    }
    DestroyAll(std::move(batch));
  }

 private:
  static constexpr size_t kBatchMessages = 64;
  static constexpr size_t kBatchBytes = 256 << 10;

  static void DestroyAll(std::vector<natsMsg*> msgs) {
    for (natsMsg* msg : msgs) natsMsg_Destroy(msg);
  }

  std::mutex mu_;
  std::vector<natsMsg*> msgs_;  // Guarded by mu_, as is bytes_.
  size_t bytes_ = 0;
};

// Takes ownership of `msg` and gives it to `reaper`.
WireMessage ToWireMessage(natsMsg* msg, MsgReaper& reaper) {
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
  reaper.Destroy(msg);
  return out;
}

// The bytes nats-server counts against max_payload for these headers.
size_t HeaderBytes(const Headers& headers) {
  if (headers.empty()) return 0;
  size_t bytes = sizeof("NATS/1.0\r\n") - 1 + 2;
  for (const auto& [key, value] : headers) bytes += key.size() + value.size() + 4;
  return bytes;
}

// Ends `sub` gracefully: the server stops sending, and what it already sent
// is still delivered. Without a connection a drain would wait for one: what
// arrived is delivered anyway, and nothing more can.
void DrainOrUnsubscribe(natsConnection* connection, natsSubscription* sub) {
  bool connected = natsConnection_Status(connection) == NATS_CONN_STATUS_CONNECTED;
  if (!connected || natsSubscription_Drain(sub) != NATS_OK) natsSubscription_Unsubscribe(sub);
}

// Subscription::SetPendingLimits, Dropped and Pending, for either kind of
// subscription.
absl::Status SetPendingLimitsOf(natsSubscription* sub, int max_messages, int64_t max_bytes) {
  if (max_messages <= 0 && max_bytes <= 0) {
    return absl::InvalidArgumentError("pending limits: at least one limit must be positive");
  }
  // nats.c counts bytes in an int.
  const int bytes = max_bytes <= 0 ? -1 : static_cast<int>(std::min<int64_t>(max_bytes, INT_MAX));
  return FromNats(
      natsSubscription_SetPendingLimits(sub, max_messages <= 0 ? -1 : max_messages, bytes),
      "setting pending limits");
}

int64_t PendingOf(natsSubscription* sub) {
  int messages = 0;
  natsSubscription_GetPending(sub, &messages, nullptr);
  return messages;
}

int64_t DroppedOf(natsSubscription* sub) {
  int64_t dropped = 0;
  natsSubscription_GetDropped(sub, &dropped);
  return dropped;
}

class NatsSubscription final : public Subscription {
 public:
  // Owns the handler; nats.c holds a pointer to this state until OnComplete.
  struct State {
    MessageHandler handler;
    std::shared_ptr<MsgReaper> reaper;
    internal::Notification completed;
  };

  NatsSubscription(natsConnection* connection, natsSubscription* sub, State* state)
      : connection_(connection), sub_(sub), state_(state) {}

  ~NatsSubscription() override {
    // Drain delivers what the server already sent us, then calls OnComplete.
    DrainOrUnsubscribe(connection_, sub_);
    if (state_->completed.WaitForNotificationWithTimeout(kSubscriptionCloseTimeout)) {
      delete state_;
    }
    // Otherwise nats.c may still call the handler: leaking the state is the
    // only choice that cannot crash.
    natsSubscription_Destroy(sub_);
  }

  absl::Status SetPendingLimits(int max_messages, int64_t max_bytes) override {
    return SetPendingLimitsOf(sub_, max_messages, max_bytes);
  }

  // Messages received but not yet handed to the handler.
  int64_t Pending() const { return PendingOf(sub_); }

  int64_t Dropped() const override { return DroppedOf(sub_); }

  // While messages wait behind this one, what the handler publishes is
  // written with what the next ones publish (util/write_batch.h): one system
  // call for a burst of replies.
  static void OnMessage(natsConnection*, natsSubscription* sub, natsMsg* msg, void* closure) {
    auto* state = static_cast<State*>(closure);
    internal::WriteBatch batch(/*hold=*/PendingOf(sub) > 0);
    state->handler(ToWireMessage(msg, *state->reaper));
    batch.End(/*idle=*/PendingOf(sub) == 0);
  }

  static void OnComplete(void* closure) { static_cast<State*>(closure)->completed.Notify(); }

 private:
  natsConnection* connection_;
  natsSubscription* sub_;
  State* state_;
};

class NatsPullSubscription final : public PullSubscription {
 public:
  NatsPullSubscription(natsConnection* connection, natsSubscription* sub,
                       std::shared_ptr<MsgReaper> reaper)
      : connection_(connection), sub_(sub), reaper_(std::move(reaper)) {}

  ~NatsPullSubscription() override { natsSubscription_Destroy(sub_); }  // Unsubscribes.

  absl::StatusOr<WireMessage> Next(absl::Duration timeout) override {
    const int64_t millis = std::max<int64_t>(1, absl::ToInt64Milliseconds(timeout));
    // nats.c reports drops once, as an error of its own; the messages
    // behind them are still there (and the drops counted), so once more.
    for (int attempt = 0; attempt < 2; ++attempt) {
      natsMsg* msg = nullptr;
      switch (natsSubscription_NextMsg(&msg, sub_, millis)) {
        case NATS_OK:
          return ToWireMessage(msg, *reaper_);
        case NATS_SLOW_CONSUMER:
        // nats.c swallows a message with an empty body and a `Status: 503`
        // header (a "no responders" notice), which anyone may send us.
        case NATS_NO_RESPONDERS:
          continue;
        default:
          // A drained subscription times out once its last message is
          // taken, and is closed by then; so is one whose connection closed.
          if (natsSubscription_IsValid(sub_)) break;
          return absl::CancelledError("the subscription has ended");
      }
      break;
    }
    return absl::DeadlineExceededError("no message arrived in time");
  }

  void Drain() override { DrainOrUnsubscribe(connection_, sub_); }

  absl::Status SetPendingLimits(int max_messages, int64_t max_bytes) override {
    return SetPendingLimitsOf(sub_, max_messages, max_bytes);
  }

  int64_t Dropped() const override { return DroppedOf(sub_); }

  int64_t Pending() const override { return PendingOf(sub_); }

 private:
  natsConnection* const connection_;
  natsSubscription* const sub_;
  const std::shared_ptr<MsgReaper> reaper_;
};

// The Socket users hold; the connection holds the same core to route frames.
class NatsSocket final : public Socket {
 public:
  explicit NatsSocket(std::shared_ptr<internal::StreamCore> core) : core_(std::move(core)) {}
  ~NatsSocket() override { core_->Cancel(absl::CancelledError("the socket was destroyed")); }

  absl::Status Send(std::string data) override { return core_->Send(std::move(data)); }
  absl::Status Recv(std::string* data) override { return core_->Recv(data); }
  absl::Status CloseSend() override { return core_->CloseSend(); }
  absl::Status End(const absl::Status& status, const Headers& trailing_metadata) override {
    return core_->End(status, trailing_metadata);
  }
  void Cancel(const absl::Status& reason) override { core_->Cancel(reason); }
  absl::Status Finish() override { return core_->Finish(); }
  Headers TrailingHeaders() override { return core_->TrailingHeaders(); }
  absl::Status SetInitialMetadata(const Headers& metadata) override {
    return core_->SetInitialMetadata(metadata);
  }
  Headers InitialHeaders() override { return core_->InitialHeaders(); }
  absl::Status WaitForAccept() override { return core_->WaitForAccept(); }

 private:
  std::shared_ptr<internal::StreamCore> core_;
};

absl::Status NoResponders(std::string_view what) {
  absl::Status status =
      absl::UnavailableError(absl::StrCat("no service is listening on ", internal::ToAbsl(what)));
  protocol::MarkUnprocessed(&status);
  return status;
}

absl::Status NoReplyByDeadline() {
  return absl::DeadlineExceededError("deadline exceeded before a reply arrived");
}

absl::Status ConnectionLost() { return absl::UnavailableError("lost the connection to NATS"); }

absl::Status TransportDestroyed() {
  return absl::CancelledError("transport destroyed before the reply");
}

// The replies of blocking calls, one call at a time (DirectInboxes sees to
// that), read by the thread that waits for them (docs/PROTOCOL.md, "How the micro client routes
// replies"): nats.c's reader thread then wakes the caller itself, where the shared inbox's delivery
// thread would be woken first, to wake the caller.
class DirectInbox {
 public:
  // `generations` numbers the subscriptions of every DirectInbox of the connection.
  DirectInbox(natsConnection* connection, std::string inbox, std::shared_ptr<MsgReaper> reaper,
              std::atomic<uint64_t>* generations)
      : connection_(connection),
        inbox_(std::move(inbox)),
        reaper_(std::move(reaper)),
        generations_(generations) {}
  ~DirectInbox() { Renew(); }  // No call may be in progress.

  // Sends a request with `publish`, which is given the reply subject, and
  // waits on this thread for the reply until `deadline`. nullopt, with
  // nothing sent, when it cannot subscribe.
  std::optional<absl::StatusOr<WireMessage>> TryCall(
      absl::Time deadline, absl::FunctionRef<absl::Status(const std::string&)> publish) {
    natsSubscription* sub = Subscription();
    if (sub == nullptr) return std::nullopt;
    std::string reply = absl::StrCat(prefix_, next_++);
    if (absl::Status sent = publish(reply); !sent.ok()) return sent;
    absl::StatusOr<WireMessage> outcome = Wait(sub, reply, deadline);
    // A reply that comes later must not reach a later call; nor may a second
    // "no responders" notice, which nats.c hands over without its subject.
    if (!outcome.ok()) Renew();
    return outcome;
  }

  // Ends the wait of the call in progress, if any, with `reason`.
  void Interrupt(absl::Status reason) {
    std::lock_guard lock(mu_);
    interruption_ = std::move(reason);
    if (sub_ != nullptr) natsSubscription_Unsubscribe(sub_);
  }

 private:
  // The subscription of the current generation, subscribed on first use or
  // after Renew; nullptr if that fails.
  natsSubscription* Subscription() {
    std::lock_guard lock(mu_);
    if (sub_ != nullptr && !natsSubscription_IsValid(sub_)) {  // Interrupted while idle.
      natsSubscription_Destroy(sub_);
      sub_ = nullptr;
    }
    if (sub_ == nullptr) {
      interruption_ = absl::OkStatus();
      prefix_ = absl::StrCat(inbox_, ".d", generations_->fetch_add(1) + 1, ".");
      natsSubscription* sub = nullptr;
      std::string subject = absl::StrCat(prefix_, "*");
      if (natsConnection_SubscribeSync(&sub, connection_, subject.c_str()) != NATS_OK) {
        return nullptr;
      }
      sub_ = sub;
    }
    return sub_;
  }

  // The reply to `reply`. A "no responders" notice is taken to be this
  // call's: the generation's earlier calls all got their replies.
  absl::StatusOr<WireMessage> Wait(natsSubscription* sub, const std::string& reply,
                                   absl::Time deadline) {
    for (;;) {
      absl::Duration left = deadline - absl::Now();
      if (left <= absl::ZeroDuration()) return NoReplyByDeadline();
      natsMsg* msg = nullptr;
      const int64_t millis = absl::ToInt64Milliseconds(
          std::min(absl::Ceil(left, absl::Milliseconds(1)), kLongestWait));
      switch (natsSubscription_NextMsg(&msg, sub, millis)) {
        case NATS_OK:
          if (reply != natsMsg_GetSubject(msg)) {  // Not ours: sent to us by someone else.
            reaper_->Destroy(msg);
            continue;
          }
          // The wait is rounded up to a millisecond: a reply that came in
          // that overshoot is too late, as the shared inbox's timer has it.
          if (absl::Now() >= deadline) {
            reaper_->Destroy(msg);
            return NoReplyByDeadline();
          }
          return ToWireMessage(msg, *reaper_);
        case NATS_NO_RESPONDERS:
          return NoResponders("the subject");
        case NATS_TIMEOUT:
        case NATS_SLOW_CONSUMER:
          continue;
        default: {  // Interrupted, or the connection closed.
          std::lock_guard lock(mu_);
          return interruption_.ok() ? ConnectionLost() : interruption_;
        }
      }
    }
  }

  // Waits longer than this are made of several.
  static constexpr absl::Duration kLongestWait = absl::Hours(1);

  // Ends the current generation: the next call subscribes anew.
  void Renew() {
    std::lock_guard lock(mu_);
    if (sub_ != nullptr) natsSubscription_Destroy(sub_);  // Unsubscribes.
    sub_ = nullptr;
  }

  natsConnection* const connection_;
  const std::string inbox_;
  const std::shared_ptr<MsgReaper> reaper_;
  std::atomic<uint64_t>* const generations_;
  std::string prefix_;  // `<inbox>.d<generation>.`
  uint64_t next_ = 1;
  std::mutex mu_;  // Guards sub_ and interruption_, which Interrupt sets from any thread.
  natsSubscription* sub_ = nullptr;
  absl::Status interruption_;  // Why the last Interrupt came.
};

// A DirectInbox for each blocking call that waits, up to kMaxInboxes at
// once; calls beyond them wait on the shared inbox.
class DirectInboxes {
 public:
  DirectInboxes(natsConnection* connection, std::string inbox, std::shared_ptr<MsgReaper> reaper)
      : connection_(connection), inbox_(std::move(inbox)), reaper_(std::move(reaper)) {}

  // Ends the waits of calls in progress, with CANCELLED, and waits for them.
  ~DirectInboxes() {
    std::unique_lock lock(mu_);
    for (auto& inbox : all_) inbox->Interrupt(TransportDestroyed());
    returned_.wait(lock, [this] { return idle_.size() == all_.size(); });
  }

  // DirectInbox::TryCall on an idle inbox; nullopt, with nothing sent, when
  // all kMaxInboxes are in use.
  std::optional<absl::StatusOr<WireMessage>> TryCall(
      absl::Time deadline, absl::FunctionRef<absl::Status(const std::string&)> publish) {
    DirectInbox* inbox = Take();
    if (inbox == nullptr) return std::nullopt;
    std::optional<absl::StatusOr<WireMessage>> outcome = inbox->TryCall(deadline, publish);
    std::lock_guard lock(mu_);
    idle_.push_back(inbox);
    returned_.notify_all();
    return outcome;
  }

  // DirectInbox::Interrupt on every inbox.
  void Interrupt(const absl::Status& reason) {
    std::lock_guard lock(mu_);
    for (auto& inbox : all_) inbox->Interrupt(reason);
  }

 private:
  static constexpr size_t kMaxInboxes = 64;

  // The inbox used last (its subscription is the likeliest to be warm), a
  // new one, or nullptr when kMaxInboxes are in use.
  DirectInbox* Take() {
    std::lock_guard lock(mu_);
    if (!idle_.empty()) {
      DirectInbox* inbox = idle_.back();
      idle_.pop_back();
      return inbox;
    }
    if (all_.size() >= kMaxInboxes) return nullptr;
    all_.push_back(std::make_unique<DirectInbox>(connection_, inbox_, reaper_, &generations_));
    return all_.back().get();
  }

  natsConnection* const connection_;
  const std::string inbox_;
  const std::shared_ptr<MsgReaper> reaper_;
  std::atomic<uint64_t> generations_{0};
  std::mutex mu_;
  std::condition_variable returned_;               // An inbox went back to idle_.
  std::vector<std::unique_ptr<DirectInbox>> all_;  // Guarded by mu_, as is idle_.
  std::vector<DirectInbox*> idle_;
};

// The connection's inbox part of an address `<inbox>.<id>`.
std::string_view InboxOf(std::string_view address) {
  size_t dot = address.rfind('.');
  return dot == std::string_view::npos ? std::string_view() : address.substr(0, dot);
}

class NatsTransport final : public Transport, private internal::StreamHost {
 public:
  NatsTransport() = default;

  ~NatsTransport() override {
    {
      // No connection callback reaches the members torn down below.
      std::lock_guard lock(relay_->mu);
      relay_->transport = nullptr;
    }
    // Timer callbacks read them too: stop them first. The queue itself
    // lives on (Cancel still works) until the members go.
    if (timers_ != nullptr) timers_->Stop();
    inbox_subscription_.reset();  // No more replies or frames arrive.
    direct_inbox_.reset();        // A blocking call that waits ends with CANCELLED.
    FailEverything(TransportDestroyed());
    if (connection_ != nullptr) {
      if (writer_ != nullptr) writer_->Close();
      natsConnection_Close(connection_);
      // Its thread may read the connection until it stops.
      internal::SocketLoop::Destroy(std::move(loop_));
      natsConnection_Destroy(connection_);
    }
  }

  absl::Status Connect(const TransportOptions& options) {
    heartbeat_ = options.stream_heartbeat;
    natsOptions* opts = nullptr;
    absl::Status status = FromNats(natsOptions_Create(&opts), "creating NATS options");
    if (!status.ok()) return status;
    std::unique_ptr<natsOptions, decltype(&natsOptions_Destroy)> owned(opts, natsOptions_Destroy);
    if (!options.nkey_seed_file.empty()) {
      status = CheckSeedFile(options.nkey_seed_file, "NKey seed file");
      if (!status.ok()) return status;
    }
    if (!options.credentials_file.empty()) {
      status = CheckSeedFile(options.credentials_file, "credentials file");
      if (!status.ok()) return status;
    }
    natsStatus s = natsOptions_SetURL(opts, options.url.c_str());
    if (s == NATS_OK && !options.name.empty()) s = natsOptions_SetName(opts, options.name.c_str());
    if (s == NATS_OK) {
      s = natsOptions_SetTimeout(opts, absl::ToInt64Milliseconds(options.connect_timeout));
    }
    if (s == NATS_OK) s = natsOptions_SetMaxReconnect(opts, options.max_reconnect_attempts);
    if (s == NATS_OK) {
      s = natsOptions_SetReconnectWait(opts, absl::ToInt64Milliseconds(options.reconnect_wait));
    }
    // With batched writes the connection runs on the transport's socket
    // loop (socket_loop.h). Without them, and over TLS (asked for in the
    // options or by a tls:// URL), nats.c reads on a thread of its own and
    // writes each publish itself: SendAsap, or every publish would wait up to
    // 1 ms for nats.c's flusher thread. In nats.c's event loop mode OpenSSL,
    // waiting for the rest of a record, would block the loop thread. (A
    // server that requires TLS of a client that asked for none gets it on
    // the loop all the same.)
    if (!options.batch_writes || options.tls.enabled ||
        absl::StrContains(absl::AsciiStrToLower(options.url), "tls://")) {
      if (s == NATS_OK) s = natsOptions_SetSendAsap(opts, true);
    } else {
      absl::StatusOr<std::unique_ptr<internal::SocketLoop>> loop = internal::SocketLoop::Create();
      if (!loop.ok()) return loop.status();
      loop_ = *std::move(loop);
      if (s == NATS_OK) s = loop_->Install(opts);
    }
    if (s == NATS_OK) s = SetSecurityOptions(options, opts);
    // nats.c's reference to the relay, released by the closed callback once
    // a connection exists; until then it is ours.
    auto relay_ref = std::make_unique<std::shared_ptr<CallbackRelay>>(relay_);
    if (s == NATS_OK) s = natsOptions_SetDisconnectedCB(opts, &OnDisconnected, relay_ref.get());
    if (s == NATS_OK) s = natsOptions_SetReconnectedCB(opts, &OnReconnected, relay_ref.get());
    if (s == NATS_OK) s = natsOptions_SetClosedCB(opts, &OnClosed, relay_ref.get());
    if (s != NATS_OK) {
      // Whatever nats.c calls it, a bad option or unreadable file is the caller's.
      return absl::InvalidArgumentError(
          FromNats(s, absl::StrCat("invalid NATS options for '", options.url, "'")).message());
    }
    s = natsConnection_Connect(&connection_, opts);
    // nats.c 3.4.1 with nats-server 2.9 fails the NKey handshake now and
    // then with a right seed: 4 of 1,750 connections made with 450 keys,
    // each key connecting 1 to 6 times, and a later connection with the
    // same key succeeded. The signature is made per connection, over the
    // server's nonce, so once more with a new one; a wrong key fails both.
    const bool signs_nonce = !options.nkey_seed_file.empty() || !options.credentials_file.empty();
    if (signs_nonce && (s == NATS_CONNECTION_AUTH_FAILED || s == NATS_NOT_PERMITTED)) {
      s = natsConnection_Connect(&connection_, opts);
    }
    if (s != NATS_OK) {
      return FromNats(s, absl::StrCat("cannot connect to NATS at '", options.url, "'"));
    }
    relay_ref.release();  // The closed callback deletes it.
    if (loop_ != nullptr) writer_ = std::make_shared<internal::ConnectionWriter>(loop_.get());
    RefreshConnectionState();

    natsInbox* inbox = nullptr;
    if (s = natsInbox_Create(&inbox); s != NATS_OK) return FromNats(s, "creating inbox");
    inbox_ = static_cast<const char*>(inbox);
    natsInbox_Destroy(inbox);
    ping_address_ = absl::StrCat(inbox_, ".0");
    // One subscription carries every reply, stream frame and ping.
    auto subscription = Subscribe(absl::StrCat(inbox_, ".*"), "",
                                  [this](WireMessage message) { OnInbox(std::move(message)); });
    if (!subscription.ok()) return subscription.status();
    inbox_subscription_.reset(static_cast<NatsSubscription*>(subscription->release()));
    {
      std::lock_guard lock(relay_->mu);  // A disconnect may be failing everything.
      direct_inbox_ = std::make_unique<DirectInboxes>(connection_, inbox_, reaper_);
    }
    timers_ = std::make_unique<internal::TimerQueue>();
    ScheduleHeartbeat();
    return absl::OkStatus();
  }

  static natsStatus SetSecurityOptions(const TransportOptions& options, natsOptions* opts) {
    natsStatus s = NATS_OK;
    if (!options.user.empty() || !options.password.empty()) {
      s = natsOptions_SetUserInfo(opts, options.user.c_str(), options.password.c_str());
    }
    if (s == NATS_OK && !options.token.empty())
      s = natsOptions_SetToken(opts, options.token.c_str());
    if (s == NATS_OK && !options.nkey_seed_file.empty()) {
      s = natsOptions_SetNKeyFromSeed(opts, options.nkey_public_key.c_str(),
                                      options.nkey_seed_file.c_str());
    }
    if (s == NATS_OK && !options.credentials_file.empty()) {
      s = natsOptions_SetUserCredentialsFromFiles(opts, options.credentials_file.c_str(), nullptr);
    }
    const TransportOptions::Tls& tls = options.tls;
    if (s == NATS_OK && tls.enabled) s = natsOptions_SetSecure(opts, true);
    if (s == NATS_OK && !tls.ca_file.empty()) {
      s = natsOptions_LoadCATrustedCertificates(opts, tls.ca_file.c_str());
    }
    if (s == NATS_OK && !tls.cert_file.empty()) {
      s = natsOptions_LoadCertificatesChain(opts, tls.cert_file.c_str(), tls.key_file.c_str());
    }
    if (s == NATS_OK && !tls.server_name.empty()) {
      s = natsOptions_SetExpectedHostname(opts, tls.server_name.c_str());
    }
    return s;
  }

  absl::Status Publish(const WireMessage& message) override {
    return PublishTo(message, message.reply);
  }

  void Request(const WireMessage& request, absl::Time deadline, ReplyHandler on_reply) override {
    uint64_t token;
    {
      std::lock_guard lock(mu_);
      token = next_token_++;
      pending_.emplace(token, PendingRequest{std::move(on_reply), 0});
    }
    if (deadline != absl::InfiniteFuture()) {
      internal::TimerQueue::Id timer =
          timers_->Schedule(deadline, [this, token] { Complete(token, NoReplyByDeadline()); });
      std::lock_guard lock(mu_);
      if (auto it = pending_.find(token); it != pending_.end()) {
        it->second.timer = timer;
      } else {
        timers_->Cancel(timer);  // Completed while we scheduled.
      }
    }
    if (absl::Status sent = PublishCallStart(request, Address(token)); !sent.ok()) {
      Complete(token, std::move(sent));
    }
  }

  absl::StatusOr<WireMessage> RequestAndWait(const WireMessage& request,
                                             absl::Time deadline) override {
    // The caller blocks next: nothing it sent may wait for a batch to end.
    std::optional<absl::StatusOr<WireMessage>> direct =
        direct_inbox_->TryCall(deadline, [&](const std::string& reply) {
          absl::Status sent = PublishCallStart(request, reply);
          internal::WriteBatch::FlushThisThread();
          return sent;
        });
    if (direct.has_value()) return *std::move(direct);
    return Transport::RequestAndWait(request, deadline);
  }

  // Publishes the first message of a call or stream. While nats.c reconnects
  // it would buffer it and send it later; calls fail fast instead
  // (docs/PROTOCOL.md, "Connection loss"). A failure is marked unprocessed:
  // nothing went out.
  absl::Status PublishCallStart(const WireMessage& message, const std::string& reply) {
    absl::Status sent =
        connected_.load(std::memory_order_acquire)
            ? PublishTo(message, reply)
            : absl::UnavailableError("not connected to NATS (reconnecting or closed)");
    protocol::MarkUnprocessed(&sent);
    return sent;
  }

  absl::StatusOr<std::unique_ptr<Subscription>> Subscribe(const std::string& subject,
                                                          const std::string& queue_group,
                                                          MessageHandler on_message) override {
    auto* state = new NatsSubscription::State{std::move(on_message), reaper_, {}};
    natsSubscription* sub = nullptr;
    natsStatus s =
        queue_group.empty()
            ? natsConnection_Subscribe(&sub, connection_, subject.c_str(),
                                       &NatsSubscription::OnMessage, state)
            : natsConnection_QueueSubscribe(&sub, connection_, subject.c_str(), queue_group.c_str(),
                                            &NatsSubscription::OnMessage, state);
    if (s == NATS_OK) {
      s = natsSubscription_SetOnCompleteCB(sub, &NatsSubscription::OnComplete, state);
    }
    if (s == NATS_OK) s = ConfirmSubscription();
    if (s != NATS_OK) {
      if (sub != nullptr) {
        natsSubscription_Unsubscribe(sub);
        natsSubscription_Destroy(sub);
      } else {
        delete state;
      }
      return FromNats(s, absl::StrCat("cannot subscribe to '", subject, "'"));
    }
    return std::unique_ptr<Subscription>(new NatsSubscription(connection_, sub, state));
  }

  absl::StatusOr<std::unique_ptr<PullSubscription>> SubscribePull(
      const std::string& subject, const std::string& queue_group) override {
    natsSubscription* sub = nullptr;
    natsStatus s = queue_group.empty()
                       ? natsConnection_SubscribeSync(&sub, connection_, subject.c_str())
                       : natsConnection_QueueSubscribeSync(&sub, connection_, subject.c_str(),
                                                           queue_group.c_str());
    if (s == NATS_OK) s = ConfirmSubscription();
    if (s != NATS_OK) {
      if (sub != nullptr) natsSubscription_Destroy(sub);  // Unsubscribes.
      return FromNats(s, absl::StrCat("cannot subscribe to '", subject, "'"));
    }
    return std::unique_ptr<PullSubscription>(new NatsPullSubscription(connection_, sub, reaper_));
  }

  absl::StatusOr<std::unique_ptr<Socket>> Dial(const WireMessage& open,
                                               const StreamOptions& options) override {
    uint64_t id = NextToken();
    auto core = std::make_shared<internal::StreamCore>(
        AsHost(), internal::StreamCore::Role::kClient, id, Address(id), "",
        internal::StreamCore::PeerWindow{}, options);
    Register(core, "");
    core->Start();
    WireMessage frame = open;
    frame.headers.emplace(protocol::kFrameHeader,
                          protocol::FrameKindName(protocol::FrameKind::kOpen));
    AddWindowAndHeartbeat(options, &frame.headers);
    if (absl::Status sent = PublishCallStart(frame, Address(id)); !sent.ok()) {
      core->Fail(sent);
      return sent;
    }
    return std::unique_ptr<Socket>(new NatsSocket(std::move(core)));
  }

  absl::StatusOr<std::unique_ptr<Socket>> Accept(const WireMessage& open,
                                                 const StreamOptions& options) override {
    std::optional<internal::StreamCore::PeerWindow> peer_window =
        internal::StreamCore::ReadPeerWindow(open.headers);
    if (protocol::ParseFrameKind(open.headers) != protocol::FrameKind::kOpen ||
        open.reply.empty() || !peer_window.has_value()) {
      return absl::InvalidArgumentError("not an open frame with a reply subject and a window");
    }
    uint64_t id = NextToken();
    auto core =
        std::make_shared<internal::StreamCore>(AsHost(), internal::StreamCore::Role::kServer, id,
                                               Address(id), open.reply, *peer_window, options);
    Register(core, open.reply, PeerHeartbeat(open.headers));
    core->Start();
    WireMessage accept;
    accept.subject = open.reply;
    accept.reply = Address(id);
    accept.headers.emplace(protocol::kFrameHeader,
                           protocol::FrameKindName(protocol::FrameKind::kAccept));
    AddWindowAndHeartbeat(options, &accept.headers);
    if (absl::Status sent = Publish(accept); !sent.ok()) core->Fail(sent);
    return std::unique_ptr<Socket>(new NatsSocket(std::move(core)));
  }

  // Both Transport's and StreamHost's.
  size_t MaxPayload() const override { return max_payload_.load(std::memory_order_relaxed); }

 private:
  struct PendingRequest {
    ReplyHandler on_reply;
    internal::TimerQueue::Id timer;
  };

  // A connection we have streams with, and when it was last heard from.
  struct Peer {
    absl::Time last_heard;
    absl::Duration heartbeat;
    absl::flat_hash_set<uint64_t> streams;
  };

  internal::StreamHost* AsHost() { return this; }

  // StreamHost.
  // Streams batch messages into frames themselves, and their peers wait for
  // acks and window updates: no frame waits in a WriteBatch.
  absl::Status PublishFrame(const WireMessage& frame) override {
    internal::WriteBatch now(/*hold=*/false);
    return Publish(frame);
  }
  internal::TimerQueue& timers() override { return *timers_; }
  void StreamEnded(uint64_t id) override {
    std::lock_guard lock(mu_);
    auto it = streams_.find(id);
    if (it == streams_.end()) return;
    if (!it->second.peer.empty()) {
      auto peer = peers_.find(it->second.peer);
      if (peer != peers_.end()) {
        peer->second.streams.erase(id);
        if (peer->second.streams.empty()) peers_.erase(peer);
      }
    }
    streams_.erase(it);
  }

  uint64_t NextToken() {
    std::lock_guard lock(mu_);
    return next_token_++;
  }

  std::string Address(uint64_t token) const { return absl::StrCat(inbox_, ".", token); }

  void AddWindowAndHeartbeat(const StreamOptions& options, Headers* headers) const {
    internal::StreamCore::AddWindow(options, headers);
    headers->emplace(protocol::kHeartbeatHeader,
                     absl::StrCat(absl::ToInt64Nanoseconds(heartbeat_)));
  }

  static absl::Duration PeerHeartbeat(const Headers& headers) {
    return protocol::HeartbeatHeader(headers).value_or(kDefaultPeerHeartbeat);
  }

  // Routes frames for `core` to it; with a peer address, also watches the peer.
  void Register(const std::shared_ptr<internal::StreamCore>& core, std::string_view peer_address,
                absl::Duration peer_heartbeat = kDefaultPeerHeartbeat) {
    std::lock_guard lock(mu_);
    streams_.emplace(core->id(), StreamEntry{core, ""});
    if (!peer_address.empty()) WatchPeerLocked(core->id(), peer_address, peer_heartbeat);
  }

  void WatchPeerLocked(uint64_t id, std::string_view peer_address, absl::Duration heartbeat) {
    std::string peer(InboxOf(peer_address));
    streams_[id].peer = peer;
    Peer& entry = peers_[peer];
    if (entry.streams.empty()) entry.last_heard = absl::Now();
    entry.heartbeat = heartbeat;
    entry.streams.insert(id);
  }

  void OnInbox(WireMessage message) {
    uint64_t token = 0;
    std::string_view suffix = std::string_view(message.subject).substr(inbox_.size() + 1);
    if (!absl::SimpleAtoi(internal::ToAbsl(suffix), &token)) return;  // Not ours.
    protocol::FrameKind kind = protocol::ParseFrameKind(message.headers);
    std::shared_ptr<internal::StreamCore> stream;
    {
      std::lock_guard lock(mu_);
      if (auto peer = peers_.find(internal::ToAbsl(InboxOf(message.reply))); peer != peers_.end()) {
        peer->second.last_heard = absl::Now();
      }
      if (token == 0) return;  // A ping: hearing it was all it was for.
      if (auto it = streams_.find(token); it != streams_.end()) {
        stream = it->second.core;
        if (kind == protocol::FrameKind::kAccept && it->second.peer.empty()) {
          WatchPeerLocked(token, message.reply, PeerHeartbeat(message.headers));
        }
      }
    }
    if (stream != nullptr) {
      if (IsNoResponders(message)) {
        stream->Fail(NoResponders("the method's subject"));
      } else {
        stream->OnFrame(kind, std::move(message));
      }
      return;
    }
    if (kind == protocol::FrameKind::kNone) {
      Complete(token, IsNoResponders(message)
                          ? absl::StatusOr<WireMessage>(NoResponders("the subject"))
                          : absl::StatusOr<WireMessage>(std::move(message)));
      return;
    }
    if (kind == protocol::FrameKind::kData || kind == protocol::FrameKind::kClose ||
        kind == protocol::FrameKind::kAccept) {
      RejectUnknownStream(message);
    }
  }

  // Tells a peer that keeps talking to a stream we no longer know.
  void RejectUnknownStream(const WireMessage& frame) {
    if (frame.reply.empty()) return;
    WireMessage cancel;
    cancel.subject = frame.reply;
    cancel.reply = frame.subject;
    protocol::EncodeReplyHeaders(absl::AbortedError("the peer does not know this stream"), "", {},
                                 &cancel.headers)
        .IgnoreError();
    cancel.headers.emplace(protocol::kFrameHeader,
                           protocol::FrameKindName(protocol::FrameKind::kCancel));
    Publish(cancel).IgnoreError();
  }

  // nats-server answers a request nobody subscribes to with status 503;
  // nats.c exposes the status line as the `Status` header of an empty message.
  static bool IsNoResponders(const WireMessage& message) {
    if (!message.data.empty()) return false;
    auto it = message.headers.find("Status");
    return it != message.headers.end() && it->second == "503";
  }

  // Pings every peer we have streams with, and ends the streams of peers
  // that stopped answering.
  void Heartbeat() {
    std::vector<std::string> ping;
    std::vector<std::pair<std::string, std::shared_ptr<internal::StreamCore>>> dead;
    absl::Time now = absl::Now();
    // A backlog in our own inbox may hide a peer's pings: give it longer.
    int missed = inbox_subscription_->Pending() == 0 ? kMissedHeartbeats : kMissedWhenBehind;
    {
      std::lock_guard lock(mu_);
      for (auto& [inbox, peer] : peers_) {
        if (now - peer.last_heard > missed * peer.heartbeat) {
          for (uint64_t id : peer.streams) {
            if (auto it = streams_.find(id); it != streams_.end())
              dead.emplace_back(inbox, it->second.core);
          }
        } else {
          ping.push_back(inbox);
        }
      }
    }
    for (const std::string& inbox : ping) {
      WireMessage message{absl::StrCat(inbox, ".0"), ping_address_, {}, ""};
      message.headers.emplace(protocol::kFrameHeader,
                              protocol::FrameKindName(protocol::FrameKind::kPing));
      Publish(message).IgnoreError();
    }
    for (auto& [inbox, core] : dead) {
      core->Fail(absl::UnavailableError(
          absl::StrCat("the peer connection ", inbox, " stopped answering heartbeats")));
    }
    ScheduleHeartbeat();
  }

  void ScheduleHeartbeat() {
    timers_->Schedule(absl::Now() + heartbeat_, [this] { Heartbeat(); });
  }

  // Ends every stream and pending request: with the connection gone, frames
  // and replies may have been lost.
  void FailEverything(const absl::Status& status) {
    absl::flat_hash_map<uint64_t, PendingRequest> requests;
    std::vector<std::shared_ptr<internal::StreamCore>> streams;
    {
      std::lock_guard lock(mu_);
      requests.swap(pending_);
      for (auto& [id, entry] : streams_) streams.push_back(entry.core);
    }
    if (direct_inbox_ != nullptr) direct_inbox_->Interrupt(status);
    for (auto& [token, request] : requests) {
      timers_->Cancel(request.timer);
      std::move(request.on_reply)(status);
    }
    for (auto& stream : streams) stream->Fail(status);
  }

  // nats.c may run connection callbacks on its own thread even after
  // natsConnection_Destroy returns, so they reach the transport through this
  // relay, which the destructor disconnects. The transport and nats.c share
  // it; nats.c lets go in the closed callback, its last.
  struct CallbackRelay {
    explicit CallbackRelay(NatsTransport* owner) : transport(owner) {}
    std::mutex mu;
    NatsTransport* transport;
  };

  static void OnDisconnected(natsConnection*, void* closure) {
    CallbackRelay* relay = static_cast<std::shared_ptr<CallbackRelay>*>(closure)->get();
    std::lock_guard lock(relay->mu);
    if (relay->transport != nullptr) {
      relay->transport->RefreshConnectionState();
      relay->transport->FailEverything(ConnectionLost());
    }
  }

  static void OnReconnected(natsConnection*, void* closure) {
    CallbackRelay* relay = static_cast<std::shared_ptr<CallbackRelay>*>(closure)->get();
    std::lock_guard lock(relay->mu);
    if (relay->transport != nullptr) relay->transport->RefreshConnectionState();
  }

  // Reading either from nats.c takes the connection's mutex, which its
  // reader thread holds while it parses; on every publish that showed up as
  // nats.c spinning for the lock. They change only when the connection
  // does, so the connection callbacks refresh copies.
  void RefreshConnectionState() {
    max_payload_.store(static_cast<size_t>(natsConnection_GetMaxPayload(connection_)),
                       std::memory_order_relaxed);
    connected_.store(natsConnection_Status(connection_) == NATS_CONN_STATUS_CONNECTED,
                     std::memory_order_release);
  }

  // A PING/PONG round trip: the server has processed our SUB when it answers.
  natsStatus ConfirmSubscription() {
    return natsConnection_FlushTimeout(connection_, kSubscribeConfirmTimeoutMs);
  }

  static void OnClosed(natsConnection*, void* closure) {
    delete static_cast<std::shared_ptr<CallbackRelay>*>(closure);
  }

  absl::Status PublishTo(const WireMessage& message, const std::string& reply) {
    size_t size = message.data.size() + HeaderBytes(message.headers);
    if (size_t limit = MaxPayload(); size > limit) {
      return absl::ResourceExhaustedError(
          absl::StrCat("message of ", size, " bytes to '", message.subject,
                       "' exceeds the NATS server's max payload of ", limit, " bytes"));
    }
    natsStatus s;
    {
      // Writing it is ours (below), not the loop's.
      std::optional<internal::SocketLoop::Publishing> publishing;
      if (loop_ != nullptr) publishing.emplace(loop_.get());
      s = message.headers.empty() ? PublishWithoutHeaders(message, reply)
                                  : PublishWithHeaders(message, reply);
    }
    if (s == NATS_OK) {
      if (writer_ == nullptr) {
        // nats.c wrote it (SendAsap).
      } else if (internal::WriteBatch::Defer(writer_)) {
        loop_->Hold();
      } else {
        writer_->Flush();
        loop_->WaitWhileBacklogged();
      }
      return absl::OkStatus();  // No error text to build on the hot path.
    }
    // A publish that failed half way may have asked for a write, which the
    // Publishing scope ignored.
    if (loop_ != nullptr) loop_->FlushOnLoop();
    if (s == NATS_MAX_PAYLOAD) RefreshConnectionState();  // A new server with a lower limit.
    return FromNats(s, absl::StrCat("cannot publish to '", message.subject, "'"));
  }

  // nats.c's plain publish builds the message on the stack; a natsMsg would
  // cost an allocation and a hand-off to nats.c's garbage collector thread.
  natsStatus PublishWithoutHeaders(const WireMessage& message, const std::string& reply) {
    int size = static_cast<int>(message.data.size());
    return reply.empty() ? natsConnection_Publish(connection_, message.subject.c_str(),
                                                  message.data.data(), size)
                         : natsConnection_PublishRequest(connection_, message.subject.c_str(),
                                                         reply.c_str(), message.data.data(), size);
  }

  natsStatus PublishWithHeaders(const WireMessage& message, const std::string& reply) {
    natsMsg* msg = nullptr;
    natsStatus s =
        natsMsg_Create(&msg, message.subject.c_str(), reply.empty() ? nullptr : reply.c_str(),
                       message.data.data(), static_cast<int>(message.data.size()));
    for (auto it = message.headers.begin(); s == NATS_OK && it != message.headers.end(); ++it) {
      s = natsMsgHeader_Add(msg, it->first.c_str(), it->second.c_str());
    }
    if (s == NATS_OK) s = natsConnection_PublishMsg(connection_, msg);
    reaper_->Destroy(msg);
    return s;
  }

  // Hands the outcome to the request's handler, unless it has completed already.
  void Complete(uint64_t token, absl::StatusOr<WireMessage> outcome) {
    ReplyHandler on_reply;
    {
      std::lock_guard lock(mu_);
      auto it = pending_.find(token);
      if (it == pending_.end()) return;  // Late reply after the deadline fired.
      on_reply = std::move(it->second.on_reply);
      if (it->second.timer != 0) timers_->Cancel(it->second.timer);
      pending_.erase(it);
    }
    std::move(on_reply)(std::move(outcome));
  }

  struct StreamEntry {
    std::shared_ptr<internal::StreamCore> core;
    std::string peer;  // The peer connection's inbox, once known.
  };

  static constexpr int kMissedHeartbeats = 3;
  static constexpr int kMissedWhenBehind = 10;
  static constexpr absl::Duration kDefaultPeerHeartbeat = absl::Seconds(1);

  const std::shared_ptr<CallbackRelay> relay_ = std::make_shared<CallbackRelay>(this);
  // Shared with the subscriptions, whose handlers may outlive the transport.
  const std::shared_ptr<MsgReaper> reaper_ = std::make_shared<MsgReaper>();
  // The connection's event loop, and what writes its buffered publishes.
  std::unique_ptr<internal::SocketLoop> loop_;
  std::shared_ptr<internal::ConnectionWriter> writer_;
  natsConnection* connection_ = nullptr;
  // natsConnection_GetMaxPayload and natsConnection_Status, as of the last
  // connection callback: a check made between a change and its callback is
  // as racy as one made just before the change, no worse.
  std::atomic<size_t> max_payload_{0};
  std::atomic<bool> connected_{false};
  std::string inbox_;
  std::string ping_address_;
  absl::Duration heartbeat_;
  std::unique_ptr<NatsSubscription> inbox_subscription_;
  std::unique_ptr<DirectInboxes> direct_inbox_;
  std::unique_ptr<internal::TimerQueue> timers_;

  // Guards the members below it.
  std::mutex mu_;
  uint64_t next_token_ = 1;
  absl::flat_hash_map<uint64_t, PendingRequest> pending_;
  absl::flat_hash_map<uint64_t, StreamEntry> streams_;
  absl::flat_hash_map<std::string, Peer> peers_;
};

}  // namespace

std::string DefaultNatsUrl() {
  const char* env = std::getenv("NATS_URL");
  return env != nullptr && *env != '\0' ? env : "nats://127.0.0.1:4222";
}

absl::StatusOr<std::unique_ptr<PullSubscription>> Transport::SubscribePull(const std::string&,
                                                                           const std::string&) {
  return absl::UnimplementedError("this transport has no pull subscriptions");
}

absl::StatusOr<WireMessage> Transport::RequestAndWait(const WireMessage& request,
                                                      absl::Time deadline) {
  // Shared with the reply handler, which may still be returning when we wake.
  struct Outcome {
    internal::Notification done;
    absl::StatusOr<WireMessage> reply;
  };
  auto outcome = std::make_shared<Outcome>();
  Request(request, deadline, [outcome](absl::StatusOr<WireMessage> reply) {
    outcome->reply = std::move(reply);
    outcome->done.Notify();
  });
  internal::WriteBatch::FlushThisThread();  // The request must not wait for us.
  outcome->done.WaitForNotification();
  return std::move(outcome->reply);
}

absl::StatusOr<std::shared_ptr<Transport>> ConnectNats(const TransportOptions& options) {
  auto transport = std::make_shared<NatsTransport>();
  if (absl::Status status = transport->Connect(options); !status.ok()) return status;
  return transport;
}

}  // namespace micro
