// The NATS registry of docs/PROTOCOL.md ("Discovery"). One `$SRV.>`
// subscription answers for every instance registered here, one timer thread
// sends their heartbeats and expires silent instances for watchers, one
// inbox subscription collects lookup answers, and one thread runs watch
// handlers. Each is created on first use, so a registry nobody uses costs
// nothing.

#include <algorithm>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "micro/codec.h"
#include "micro/executor.h"
#include "micro/registry.h"
#include "protocol/wire.h"
#include "registry/discovery.h"
#include "util/in_flight.h"
#include "util/strings.h"
#include "util/timer_queue.h"

namespace micro {
namespace {

using discovery::Announcement;
using internal::ToAbsl;

constexpr int kMissedHeartbeats = 3;
// Assumed for announcements without Micro-Heartbeat (another implementation).
constexpr absl::Duration kDefaultHeartbeat = absl::Seconds(1);

// The answers to one lookup, added on an inbox's delivery thread.
class Lookup {
 public:
  explicit Lookup(absl::Time sent) : sent_(sent) {}

  void Add(std::string body) {
    std::lock_guard lock(mu_);
    last_ = absl::Now();
    answers_.push_back(DiscoveryAnswer{std::move(body), last_ - sent_});
    arrived_.notify_one();
  }

  // Blocks until no answer has arrived for `gap` after the last one, or
  // until `window_end` (docs/PROTOCOL.md, "Looking up a service"); then
  // takes the answers.
  std::vector<DiscoveryAnswer> WaitForQuiet(absl::Time window_end, absl::Duration gap) {
    std::unique_lock lock(mu_);
    while (true) {
      absl::Time until = answers_.empty() ? window_end : std::min(window_end, last_ + gap);
      if (absl::Now() >= until) break;
      arrived_.wait_until(lock, absl::ToChronoTime(until));
    }
    return std::move(answers_);
  }

 private:
  const absl::Time sent_;
  std::mutex mu_;
  std::condition_variable arrived_;
  std::vector<DiscoveryAnswer> answers_;
  absl::Time last_ = absl::InfinitePast();
};

// The last token of a subject: the id of an announcement, the token of a reply.
std::string_view LastToken(std::string_view subject) {
  return subject.substr(subject.rfind('.') + 1);
}

class NatsRegistry;

// Follows announcements (docs/PROTOCOL.md, "Announcements").
class NatsWatcher final : public Watcher {
 public:
  // Shared with timer callbacks, which may outlive the watcher.
  struct State {
    State(WatchHandler handler, Executor* executor, internal::TimerQueue* timers)
        : handler(std::move(handler)), executor(executor), timers(timers) {}

    // An instance heard from, and which expiry timer is current for it.
    struct Known {
      std::string document;
      Instance instance;
      uint64_t generation = 0;
      internal::TimerQueue::Id expiry = 0;
    };

    const WatchHandler handler;
    Executor* const executor;
    internal::TimerQueue* const timers;
    internal::InFlight in_flight;  // Handler calls scheduled and not finished.

    std::mutex mu;  // Guards the members below.
    bool closed = false;
    absl::flat_hash_map<std::string, Known> known;
  };

  NatsWatcher(std::shared_ptr<NatsRegistry> registry, std::shared_ptr<State> state)
      : registry_(std::move(registry)), state_(std::move(state)) {}

  ~NatsWatcher() override {
    subscription_.reset();  // No more announcements arrive.
    {
      std::lock_guard lock(state_->mu);
      state_->closed = true;
      for (auto& [id, known] : state_->known) state_->timers->Cancel(known.expiry);
    }
    state_->in_flight.WaitUntilIdle();
  }

  void set_subscription(std::unique_ptr<Subscription> subscription) {
    subscription_ = std::move(subscription);
  }

  // On the subscription's delivery thread: only bookkeeping, JSON decoding
  // when a document changed, and handing events to the executor.
  static void OnAnnouncement(const std::shared_ptr<State>& state, const WireMessage& message) {
    std::optional<Announcement> kind = discovery::ParseAnnouncementSubject(message.subject);
    if (!kind.has_value()) return;
    std::string id(LastToken(message.subject));
    std::lock_guard lock(state->mu);
    if (state->closed) return;
    auto it = state->known.find(id);
    if (*kind == Announcement::kDown) {
      // Reported even for an id never heard before: a cache may know it
      // from a lookup.
      WatchEvent event{WatchEventType::kDelete, {}};
      if (it != state->known.end()) {
        state->timers->Cancel(it->second.expiry);
        event.instance = std::move(it->second.instance);
        state->known.erase(it);
      } else if (absl::StatusOr<Instance> instance = discovery::DecodeInfo(message.data);
                 instance.ok()) {
        event.instance = *std::move(instance);
      } else {
        return;
      }
      EmitLocked(state, std::move(event));
      return;
    }
    if (it == state->known.end() || it->second.document != message.data) {
      absl::StatusOr<Instance> instance = discovery::DecodeInfo(message.data);
      if (!instance.ok() || instance->id != id) return;  // Not a document we can use.
      WatchEventType type =
          it == state->known.end() ? WatchEventType::kCreate : WatchEventType::kUpdate;
      State::Known& known = state->known[id];
      known.document = message.data;
      known.instance = *instance;
      EmitLocked(state, WatchEvent{type, *std::move(instance)});
      it = state->known.find(id);
    }
    ExpectNextHeartbeatLocked(state, id, it->second, HeartbeatOf(message.headers));
  }

 private:
  static absl::Duration HeartbeatOf(const Headers& headers) {
    return protocol::HeartbeatHeader(headers).value_or(kDefaultHeartbeat);
  }

  // Deletes the instance unless another announcement of it arrives in time.
  static void ExpectNextHeartbeatLocked(const std::shared_ptr<State>& state, const std::string& id,
                                        State::Known& known, absl::Duration heartbeat) {
    state->timers->Cancel(known.expiry);
    // A timer already running cannot be cancelled; the generation tells it
    // that it is stale.
    uint64_t generation = ++known.generation;
    std::weak_ptr<State> weak = state;
    known.expiry = state->timers->Schedule(
        absl::Now() + kMissedHeartbeats * heartbeat, [weak, id, generation] {
          std::shared_ptr<State> state = weak.lock();
          if (state == nullptr) return;
          std::lock_guard lock(state->mu);
          auto it = state->known.find(id);
          if (state->closed || it == state->known.end() || it->second.generation != generation) {
            return;
          }
          WatchEvent event{WatchEventType::kDelete, std::move(it->second.instance)};
          state->known.erase(it);
          EmitLocked(state, std::move(event));
        });
  }

  // Scheduling under the lock on a one-thread executor keeps events in order.
  static void EmitLocked(const std::shared_ptr<State>& state, WatchEvent event) {
    state->in_flight.Start();
    state->executor->Schedule([state, event = std::move(event)] {
      state->handler(event);
      state->in_flight.Finish();
    });
  }

  std::shared_ptr<NatsRegistry> registry_;  // Owns the timers and the executor.
  std::shared_ptr<State> state_;
  std::unique_ptr<Subscription> subscription_;
};

class NatsRegistry final : public Registry, public std::enable_shared_from_this<NatsRegistry> {
 public:
  NatsRegistry(std::shared_ptr<Transport> transport, NatsRegistryOptions options)
      : transport_(std::move(transport)), options_(options) {}

  // Watchers are gone: they own us.
  ~NatsRegistry() override {
    {
      std::lock_guard announcing(announce_mu_);
      std::map<std::string, std::shared_ptr<const Entry>> entries;
      {
        std::lock_guard lock(mu_);
        entries.swap(entries_);  // Heartbeats find nothing left, and stop.
      }
      for (const auto& [id, entry] : entries) Announce(Announcement::kDown, *entry);
    }
    responder_.reset();  // Answers being sent finish first.
    inbox_.reset();
    // timers_ goes first among the members: its thread is joined before
    // what heartbeats use goes (and before its pointer is cleared, which
    // Timers() reads on that thread).
  }

  absl::Status Register(Registration registration) override {
    if (absl::Status status = ValidateInstance(registration.instance); !status.ok()) {
      return status;
    }
    if (absl::Status status = EnsureResponder(); !status.ok()) return status;
    auto entry = std::make_shared<const Entry>(std::move(registration));
    bool start_heartbeats;
    {
      std::lock_guard announcing(announce_mu_);
      {
        std::lock_guard lock(mu_);
        entries_[entry->registration.instance.id] = entry;
        start_heartbeats = !heartbeating_;
        heartbeating_ = true;
      }
      // A lost announcement is made up for by the heartbeats.
      Announce(Announcement::kUp, *entry);
    }
    if (start_heartbeats) ScheduleHeartbeat();
    return absl::OkStatus();
  }

  absl::Status Deregister(std::string_view id) override {
    std::lock_guard announcing(announce_mu_);
    std::shared_ptr<const Entry> entry;
    {
      std::lock_guard lock(mu_);
      auto it = entries_.find(std::string(id));
      if (it == entries_.end()) {
        return absl::NotFoundError(
            absl::StrCat("instance '", ToAbsl(id), "' is not registered here"));
      }
      entry = std::move(it->second);
      entries_.erase(it);
    }
    Announce(Announcement::kDown, *entry);
    return absl::OkStatus();
  }

  absl::StatusOr<std::shared_ptr<const ServiceInstances>> GetService(
      std::string_view name) override {
    if (absl::Status status = ValidateServiceName(name); !status.ok()) return status;
    absl::StatusOr<std::vector<Instance>> instances = Collect(name);
    if (!instances.ok()) return instances.status();
    if (instances->empty()) {
      return absl::NotFoundError(absl::StrCat("no instance of service '", ToAbsl(name),
                                              "' answered within ",
                                              absl::FormatDuration(options_.lookup_window)));
    }
    auto service = std::make_shared<ServiceInstances>();
    service->name = std::string(name);
    service->instances = *std::move(instances);
    return service;
  }

  absl::StatusOr<std::vector<ServiceInstances>> ListServices() override {
    absl::StatusOr<std::vector<Instance>> instances = Collect("");
    if (!instances.ok()) return instances.status();
    std::map<std::string, ServiceInstances> by_name;
    for (Instance& instance : *instances) {
      ServiceInstances& service = by_name[instance.name];
      service.name = instance.name;
      service.instances.push_back(std::move(instance));
    }
    std::vector<ServiceInstances> services;
    for (auto& [name, service] : by_name) services.push_back(std::move(service));
    return services;
  }

  absl::StatusOr<std::unique_ptr<Watcher>> Watch(std::string_view name,
                                                 WatchHandler handler) override {
    if (!name.empty()) {
      if (absl::Status status = ValidateServiceName(name); !status.ok()) return status;
    }
    if (!handler) return absl::InvalidArgumentError("Watch needs a handler");
    auto state =
        std::make_shared<NatsWatcher::State>(std::move(handler), &WatchExecutor(), &Timers());
    auto watcher = std::make_unique<NatsWatcher>(shared_from_this(), state);
    auto subscription = transport_->Subscribe(
        discovery::AnnouncementWildcard(name), "",
        [state](WireMessage message) { NatsWatcher::OnAnnouncement(state, message); });
    if (!subscription.ok()) return subscription.status();
    watcher->set_subscription(*std::move(subscription));
    return watcher;
  }

 private:
  // A registration with its documents encoded once: INFO goes out with
  // every heartbeat.
  struct Entry {
    explicit Entry(Registration r)
        : registration(std::move(r)),
          info(discovery::EncodeInfo(registration.instance)),
          ping(discovery::EncodePing(registration.instance)) {}
    const Registration registration;
    const std::string info;
    const std::string ping;
  };

  absl::Status EnsureResponder() {
    std::lock_guard lock(setup_mu_);
    if (responder_ != nullptr) return absl::OkStatus();
    auto subscription = transport_->Subscribe(discovery::kSrvWildcard, "",
                                              [this](WireMessage request) { Answer(request); });
    if (!subscription.ok()) return subscription.status();
    responder_ = *std::move(subscription);
    return absl::OkStatus();
  }

  absl::Status EnsureInbox() {
    std::lock_guard lock(setup_mu_);
    if (inbox_ != nullptr) return absl::OkStatus();
    std::string prefix = absl::StrCat("_INBOX.", discovery::NewInstanceId());
    auto subscription = transport_->Subscribe(absl::StrCat(prefix, ".*"), "",
                                              [this](WireMessage reply) { OnReply(reply); });
    if (!subscription.ok()) return subscription.status();
    inbox_prefix_ = std::move(prefix);
    inbox_ = *std::move(subscription);
    return absl::OkStatus();
  }

  internal::TimerQueue& Timers() {
    std::lock_guard lock(setup_mu_);
    if (timers_ == nullptr) timers_ = std::make_unique<internal::TimerQueue>();
    return *timers_;
  }

  // One thread, so each watcher's events run in order.
  Executor& WatchExecutor() {
    std::lock_guard lock(setup_mu_);
    if (watch_executor_ == nullptr) watch_executor_ = NewThreadPoolExecutor(1);
    return *watch_executor_;
  }

  // On the responder's delivery thread. Answering here, not on an executor,
  // keeps discovery working while every handler thread is busy; it takes
  // microseconds and waits for nothing but the socket write.
  void Answer(const WireMessage& request) {
    std::optional<discovery::SrvRequest> parsed = discovery::ParseSrvSubject(request.subject);
    if (!parsed.has_value() || request.reply.empty()) return;
    std::vector<std::shared_ptr<const Entry>> matching;
    {
      std::lock_guard lock(mu_);
      for (const auto& [id, entry] : entries_) {
        const Instance& instance = entry->registration.instance;
        if ((parsed->name.empty() || parsed->name == instance.name) &&
            (parsed->id.empty() || parsed->id == instance.id)) {
          matching.push_back(entry);
        }
      }
    }
    for (const std::shared_ptr<const Entry>& entry : matching) {
      WireMessage answer{request.reply, "", {}, ""};
      switch (parsed->verb) {
        case discovery::Verb::kSchema:
          AnswerSchema(request.reply, entry->registration.schema);
          continue;
        case discovery::Verb::kPing:
          answer.data = entry->ping;
          break;
        case discovery::Verb::kInfo:
          answer.data = entry->info;
          break;
        case discovery::Verb::kStats: {
          const Registration& registration = entry->registration;
          answer.data = discovery::EncodeStats(
              registration.instance, registration.started,
              registration.stats ? registration.stats() : std::vector<EndpointStats>());
          break;
        }
      }
      transport_->Publish(answer).IgnoreError();  // The asker times out if it is lost.
    }
  }

  // docs/PROTOCOL.md, "Schemas": a schema too large for NATS is answered
  // with RESOURCE_EXHAUSTED, so the asker learns why instead of timing out.
  void AnswerSchema(const std::string& reply, const std::string& schema) {
    WireMessage answer{reply, "", {}, schema};
    answer.headers.emplace(protocol::kContentTypeHeader, kProtobufContentType);
    absl::Status sent = transport_->Publish(answer);
    if (sent.code() != absl::StatusCode::kResourceExhausted) return;
    answer.data.clear();
    answer.headers.clear();
    protocol::EncodeReplyHeaders(sent, kProtobufContentType, {}, &answer.headers).IgnoreError();
    transport_->Publish(answer).IgnoreError();
  }

  void Announce(Announcement kind, const Entry& entry) {
    const Instance& instance = entry.registration.instance;
    WireMessage message{
        discovery::AnnouncementSubject(kind, instance.name, instance.id), "", {}, entry.info};
    if (kind != Announcement::kDown) {
      message.headers.emplace(protocol::kHeartbeatHeader,
                              absl::StrCat(absl::ToInt64Nanoseconds(options_.heartbeat)));
    }
    transport_->Publish(message).IgnoreError();
  }

  void ScheduleHeartbeat() {
    Timers().Schedule(absl::Now() + options_.heartbeat, [this] { Heartbeat(); });
  }

  // On the timer thread.
  void Heartbeat() {
    {
      std::lock_guard announcing(announce_mu_);
      std::vector<std::shared_ptr<const Entry>> entries;
      {
        std::lock_guard lock(mu_);
        if (entries_.empty()) {
          heartbeating_ = false;  // The next Register starts them again.
          return;
        }
        for (const auto& [id, entry] : entries_) entries.push_back(entry);
      }
      for (const auto& entry : entries) Announce(Announcement::kHeartbeat, *entry);
    }
    ScheduleHeartbeat();
  }

  // Publishes `$SRV.INFO[.<name>]` and collects the INFO answers until
  // they stop (docs/PROTOCOL.md, "Looking up a service"). Sorted by id.
  absl::StatusOr<std::vector<Instance>> Collect(std::string_view name) {
    if (absl::Status status = EnsureInbox(); !status.ok()) return status;
    absl::Time now = absl::Now();
    auto lookup = std::make_shared<Lookup>(now);
    uint64_t token;
    {
      std::lock_guard lock(mu_);
      token = next_lookup_++;
      lookups_.emplace(token, lookup);
    }
    absl::Status sent = transport_->Publish(
        WireMessage{discovery::InfoSubject(name), absl::StrCat(inbox_prefix_, ".", token), {}, ""});
    std::vector<DiscoveryAnswer> answers;
    if (sent.ok())
      answers = lookup->WaitForQuiet(now + options_.lookup_window, options_.lookup_gap);
    {
      std::lock_guard lock(mu_);
      lookups_.erase(token);
    }
    if (!sent.ok()) return sent;
    std::map<std::string, Instance> by_id;  // An instance answers once, but dedupe anyway.
    for (const DiscoveryAnswer& answer : answers) {
      absl::StatusOr<Instance> instance = discovery::DecodeInfo(answer.body);
      if (!instance.ok() || (!name.empty() && instance->name != name)) continue;
      std::string id = instance->id;
      by_id.insert_or_assign(std::move(id), *std::move(instance));
    }
    std::vector<Instance> instances;
    for (auto& [id, instance] : by_id) instances.push_back(std::move(instance));
    return instances;
  }

  // On the inbox's delivery thread.
  void OnReply(WireMessage reply) {
    uint64_t token = 0;
    if (!absl::SimpleAtoi(ToAbsl(LastToken(reply.subject)), &token)) return;
    std::shared_ptr<Lookup> lookup;
    {
      std::lock_guard lock(mu_);
      auto it = lookups_.find(token);
      if (it == lookups_.end()) return;  // Arrived after its lookup ended.
      lookup = it->second;
    }
    lookup->Add(std::move(reply.data));
  }

  const std::shared_ptr<Transport> transport_;
  const NatsRegistryOptions options_;

  // Serializes creating the lazily made members below, which are then only
  // read until destruction.
  std::mutex setup_mu_;
  std::unique_ptr<Subscription> responder_;
  std::unique_ptr<Subscription> inbox_;
  std::string inbox_prefix_;
  std::shared_ptr<Executor> watch_executor_;

  // Held while a change of entries_ and its announcement are made, so that
  // announcements of one instance leave in the order of its changes: no
  // heartbeat with an old document after an update, none after DOWN.
  std::mutex announce_mu_;

  std::mutex mu_;                                                // Guards the members below.
  std::map<std::string, std::shared_ptr<const Entry>> entries_;  // By instance id.
  bool heartbeating_ = false;
  uint64_t next_lookup_ = 1;
  absl::flat_hash_map<uint64_t, std::shared_ptr<Lookup>> lookups_;

  // Last, so destroyed first: its callbacks use the rest.
  std::unique_ptr<internal::TimerQueue> timers_;
};

}  // namespace

absl::StatusOr<std::vector<DiscoveryAnswer>> QueryDiscovery(Transport& transport,
                                                            std::string_view verb,
                                                            std::string_view name,
                                                            std::string_view id,
                                                            const NatsRegistryOptions& options) {
  std::optional<discovery::Verb> parsed = discovery::ParseVerb(verb);
  if (!parsed.has_value() || *parsed == discovery::Verb::kSchema) {
    return absl::InvalidArgumentError(
        absl::StrCat("discovery verb '", ToAbsl(verb), "' is not PING, INFO or STATS"));
  }
  if (!name.empty()) {
    if (absl::Status status = ValidateServiceName(name); !status.ok()) return status;
  }
  if (!id.empty() && (name.empty() || !discovery::IsValidInstanceId(id))) {
    return absl::InvalidArgumentError(absl::StrCat(
        "instance id '", ToAbsl(id), "' needs a service name and must be letters and digits"));
  }
  std::string inbox = absl::StrCat("_INBOX.", discovery::NewInstanceId());
  absl::Time now = absl::Now();
  auto lookup = std::make_shared<Lookup>(now);
  auto subscription = transport.Subscribe(
      inbox, "", [lookup](WireMessage reply) { lookup->Add(std::move(reply.data)); });
  if (!subscription.ok()) return subscription.status();
  if (absl::Status sent =
          transport.Publish(WireMessage{discovery::SrvSubject(*parsed, name, id), inbox, {}, ""});
      !sent.ok()) {
    return sent;
  }
  return lookup->WaitForQuiet(now + options.lookup_window, options.lookup_gap);
}

absl::StatusOr<std::shared_ptr<Registry>> NewNatsRegistry(std::shared_ptr<Transport> transport,
                                                          NatsRegistryOptions options) {
  if (transport == nullptr) return absl::InvalidArgumentError("NewNatsRegistry: null transport");
  if (options.heartbeat <= absl::ZeroDuration() || options.lookup_gap <= absl::ZeroDuration() ||
      options.lookup_window <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("NewNatsRegistry: durations must be positive");
  }
  return std::make_shared<NatsRegistry>(std::move(transport), options);
}

}  // namespace micro
