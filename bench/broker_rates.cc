// Broker throughput, micro next to raw nats.c: the publish rate (no
// subscriber), and the publish->deliver rate (one subscriber on its own
// connection, from the first publish until the last event is handled).
#include <nats/nats.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "micro/micro.h"
#include "micro/testing/events.pb.h"
#include "rates.h"
#include "raw_nats.h"

namespace micro::bench {
namespace {

using ::micro::testing::TestEvent;
using Clock = std::chrono::steady_clock;

constexpr const char* kTopic = "bench.events";
// How long a publish->deliver run may wait for the last event.
constexpr absl::Duration kDeliverTimeout = absl::Seconds(60);

// An event whose protobuf encoding is exactly `body_bytes` long.
TestEvent EventOfSize(size_t body_bytes) {
  TestEvent event;
  for (size_t payload = body_bytes; payload > 0; --payload) {
    event.set_payload(std::string(payload, 'p'));
    if (event.ByteSizeLong() <= body_bytes) break;
  }
  return event;
}

// A contender publishes one event; false on failure (already printed).
using PublishFn = std::function<bool(const TestEvent&)>;

// A subscriber of one contender: counts handled events, reports drops.
class Counter {
 public:
  virtual ~Counter() = default;
  virtual int64_t Handled() const = 0;
  virtual int64_t Dropped() const = 0;
};

class MicroCounter final : public Counter {
 public:
  static std::unique_ptr<MicroCounter> Start(micro::Broker& broker,
                                             micro::SubscribeOptions options) {
    auto counter = std::make_unique<MicroCounter>();
    auto subscription = broker.Subscribe<TestEvent>(
        kTopic,
        [raw = counter.get()](const TestEvent&, const micro::EventContext&) {
          raw->handled_.fetch_add(1, std::memory_order_relaxed);
          return absl::OkStatus();
        },
        options);
    if (!subscription.ok()) {
      Fail(subscription.status().ToString());
      return nullptr;
    }
    counter->subscription_ = *std::move(subscription);
    return counter;
  }
  ~MicroCounter() override { subscription_.reset(); }  // Before the counters it writes.

  int64_t Handled() const override { return handled_.load(std::memory_order_relaxed); }
  int64_t Dropped() const override { return subscription_->stats().dropped; }

 private:
  std::atomic<int64_t> handled_{0};
  std::unique_ptr<micro::EventSubscription> subscription_;
};

// The raw subscriber decodes each event too, so both sides do the same work.
class RawCounter final : public Counter {
 public:
  static std::unique_ptr<RawCounter> Start(natsConnection* connection) {
    auto counter = std::make_unique<RawCounter>();
    natsSubscription* subscription = nullptr;
    if (!NatsOk(
            natsConnection_Subscribe(&subscription, connection, kTopic, &OnMessage, counter.get()),
            "natsConnection_Subscribe") ||
        !NatsOk(natsConnection_Flush(connection), "natsConnection_Flush")) {
      if (subscription != nullptr) natsSubscription_Destroy(subscription);
      return nullptr;
    }
    counter->subscription_.reset(subscription);
    return counter;
  }
  ~RawCounter() override {
    // Like micro's Unsubscribe: no callback runs once the counters are gone.
    if (natsSubscription_Drain(subscription_.get()) == NATS_OK) {
      natsSubscription_WaitForDrainCompletion(subscription_.get(), 10000);
    }
  }

  int64_t Handled() const override { return handled_.load(std::memory_order_relaxed); }
  int64_t Dropped() const override {
    int64_t dropped = 0;
    natsSubscription_GetDropped(subscription_.get(), &dropped);
    return dropped;
  }

 private:
  static void OnMessage(natsConnection*, natsSubscription*, natsMsg* msg, void* closure) {
    auto* self = static_cast<RawCounter*>(closure);
    // nats.c calls this on one thread per subscription: one event suffices.
    if (self->event_.ParseFromArray(natsMsg_GetData(msg), natsMsg_GetDataLength(msg))) {
      self->handled_.fetch_add(1, std::memory_order_relaxed);
    } else {
      Fail("raw subscriber: event does not decode");
    }
    natsMsg_Destroy(msg);
  }

  TestEvent event_;
  std::atomic<int64_t> handled_{0};
  NatsPtr<natsSubscription> subscription_;
};

// Publishes `messages` events; with a counter, waits until it has handled or
// dropped all of them (or kDeliverTimeout passes) and rates the handled ones.
std::optional<RateRow> Measure(const PublishFn& publish, const std::function<bool()>& flush,
                               const TestEvent& event, int64_t messages, Counter* counter,
                               Meter& meter) {
  meter.Start();
  const Clock::time_point start = Clock::now();
  for (int64_t i = 0; i < messages; ++i) {
    if (!publish(event)) return std::nullopt;
  }
  if (!flush()) return std::nullopt;
  RateRow row;
  row.sent = messages;
  if (counter == nullptr) {
    row.rate =
        static_cast<double>(messages) / std::chrono::duration<double>(Clock::now() - start).count();
    meter.Stop();
    return row;
  }
  const absl::Time give_up = absl::Now() + kDeliverTimeout;
  Clock::time_point last = Clock::now();
  int64_t seen = -1;
  while (absl::Now() < give_up) {
    const int64_t handled = counter->Handled();
    if (handled != seen) {
      seen = handled;
      last = Clock::now();
    }
    if (handled + counter->Dropped() >= messages) break;
    absl::SleepFor(absl::Microseconds(200));
  }
  // Includes this thread's polling, about the same for every contender.
  meter.Stop();
  row.delivered = counter->Handled();
  row.dropped = counter->Dropped();
  row.rate =
      static_cast<double>(row.delivered) / std::chrono::duration<double>(last - start).count();
  return row;
}

struct Contender {
  const char* key;
  std::string name;
  PublishFn publish;
  std::function<bool()> flush;
  // Starts this contender's subscriber for a publish->deliver run; none:
  // the contender has no such row.
  std::function<std::unique_ptr<Counter>()> subscribe;
  bool baseline = false;
  bool publishes = true;  // Has a publish row.
};

}  // namespace

std::optional<std::vector<RateRow>> MeasureBrokerRates(const RateOptions& options) {
  std::vector<RateRow> rows;
  if (!AnySelected(options, kBrokerKeys)) return rows;
  const std::string& url = options.url;
  micro::TransportOptions transport_options;
  transport_options.url = url;
  auto publisher_transport = micro::ConnectNats(transport_options);
  auto subscriber_transport = micro::ConnectNats(transport_options);
  if (!publisher_transport.ok()) return Failed(publisher_transport.status().ToString());
  if (!subscriber_transport.ok()) return Failed(subscriber_transport.status().ToString());
  auto publisher = micro::NewNatsBroker(*publisher_transport);
  auto subscriber = micro::NewNatsBroker(*subscriber_transport);
  if (!publisher.ok()) return Failed(publisher.status().ToString());
  if (!subscriber.ok()) return Failed(subscriber.status().ToString());

  // micro's transport connects with SendAsap on (each publish is written at
  // once); the baseline uses the same. The buffered default is shown too.
  NatsPtr<natsConnection> raw_asap = ConnectRaw(url, true);
  NatsPtr<natsConnection> raw_buffered = ConnectRaw(url, false);
  NatsPtr<natsConnection> raw_subscriber = ConnectRaw(url, true);
  if (raw_asap == nullptr || raw_buffered == nullptr || raw_subscriber == nullptr) {
    return std::nullopt;
  }

  auto raw_publish = [](natsConnection* connection) {
    return [connection, body = std::string()](const TestEvent& event) mutable {
      event.SerializeToString(&body);  // micro encodes every event too.
      return NatsOk(
          natsConnection_Publish(connection, kTopic, body.data(), static_cast<int>(body.size())),
          "natsConnection_Publish");
    };
  };
  auto raw_flush = [](natsConnection* connection) {
    return
        [connection] { return NatsOk(natsConnection_Flush(connection), "natsConnection_Flush"); };
  };
  micro::Broker* micro_publisher = publisher->get();
  PublishFn micro_publish = [micro_publisher](const TestEvent& event) {
    absl::Status status = micro_publisher->Publish(kTopic, event);
    return status.ok() || Fail(absl::StrCat("micro Publish: ", status.ToString()));
  };
  auto no_flush = [] { return true; };  // Publish has written every event to the socket.
  micro::SubscribeOptions inline_handler;
  inline_handler.inline_handler = true;
  const std::vector<Contender> contenders = {
      {kBrokerKeys[0], "micro broker", micro_publish, no_flush,
       [&] { return MicroCounter::Start(**subscriber, {}); }},
      {kBrokerKeys[1], "micro broker, inline handler", micro_publish, no_flush,
       [&] { return MicroCounter::Start(**subscriber, inline_handler); }, false, false},
      {kBrokerKeys[2], "raw nats.c, SendAsap", raw_publish(raw_asap.get()),
       raw_flush(raw_asap.get()), [&] { return RawCounter::Start(raw_subscriber.get()); }, true},
      {kBrokerKeys[3], "raw nats.c, buffered (default)", raw_publish(raw_buffered.get()),
       raw_flush(raw_buffered.get()), nullptr},
  };

  for (size_t body_bytes : {size_t{16}, size_t{1024}}) {
    const TestEvent event = EventOfSize(body_bytes);
    if (event.ByteSizeLong() != body_bytes) return Failed("cannot size the event body");
    for (bool deliver : {false, true}) {
      std::vector<RateContender> runs;
      for (const Contender& c : contenders) {
        if (deliver ? c.subscribe == nullptr : !c.publishes) continue;
        runs.push_back(
            {c.key, c.name, c.baseline, [&, deliver](Meter& meter) -> std::optional<RateRow> {
               std::unique_ptr<Counter> counter;
               if (deliver && (counter = c.subscribe()) == nullptr) return std::nullopt;
               return Measure(c.publish, c.flush, event, options.broker_messages, counter.get(),
                              meter);
             }});
      }
      auto measured =
          Interleave(deliver ? kDeliverWorkload : kPublishWorkload, body_bytes, runs, options);
      if (!measured) return std::nullopt;
      rows.insert(rows.end(), measured->begin(), measured->end());
    }
  }
  return rows;
}

}  // namespace micro::bench
