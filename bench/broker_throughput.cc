// Broker throughput against one nats-server, micro next to raw nats.c in the
// same run: the publish rate (no subscriber), and the publish->deliver rate
// (one subscriber on its own connection, from the first publish until the
// last event is handled). See bench/README.md for what each row does.
//
// Usage: broker_throughput [--messages N] [--runs R]
#include <nats/nats.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "micro/micro.h"
#include "micro/testing/events.pb.h"
#include "raw_nats.h"
#include "support/nats_server.h"

namespace {

using ::micro::bench::ConnectRaw;
using ::micro::bench::Fail;
using ::micro::bench::NatsOk;
using ::micro::bench::NatsPtr;

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

// CPU time used so far by every thread of this process (publisher,
// subscriber, nats.c's threads; not nats-server), in microseconds. Unlike
// rates, it barely moves when other processes compete for the cores.
double ProcessCpuMicros() {
  timespec now{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &now);
  return static_cast<double>(now.tv_sec) * 1e6 + static_cast<double>(now.tv_nsec) / 1e3;
}

struct Result {
  double rate = 0;  // Messages per second.
  double cpu_us_per_message = 0;
  int64_t published = 0;
  int64_t delivered = -1;  // -1: no subscriber in this scenario.
  int64_t dropped = 0;
};

// Publishes `messages` events; with a counter, waits until it has handled or
// dropped all of them (or kDeliverTimeout passes) and rates the handled ones.
std::optional<Result> Measure(const PublishFn& publish, const std::function<bool()>& flush,
                              const TestEvent& event, int64_t messages, Counter* counter) {
  const double cpu_start = ProcessCpuMicros();
  const Clock::time_point start = Clock::now();
  for (int64_t i = 0; i < messages; ++i) {
    if (!publish(event)) return std::nullopt;
  }
  if (!flush()) return std::nullopt;
  Result result;
  result.published = messages;
  if (counter == nullptr) {
    result.rate =
        static_cast<double>(messages) / std::chrono::duration<double>(Clock::now() - start).count();
    result.cpu_us_per_message = (ProcessCpuMicros() - cpu_start) / static_cast<double>(messages);
    return result;
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
  result.cpu_us_per_message = (ProcessCpuMicros() - cpu_start) / static_cast<double>(messages);
  result.delivered = counter->Handled();
  result.dropped = counter->Dropped();
  result.rate =
      static_cast<double>(result.delivered) / std::chrono::duration<double>(last - start).count();
  return result;
}

struct Row {
  std::string scenario;
  size_t body_bytes;
  std::string contender;
  Result result;  // The median run by rate.
  double vs_raw = 0;
};

std::string BodyLabel(size_t bytes) {
  return bytes % 1024 == 0 ? absl::StrCat(bytes / 1024, " KiB") : absl::StrCat(bytes, " B");
}

void PrintTable(const std::vector<Row>& rows, int64_t messages, int runs) {
  std::printf("%lld messages per run, median of %d runs\n\n", static_cast<long long>(messages),
              runs);
  std::printf(
      "| scenario | body | contender | msgs/s | vs raw | CPU us/msg | delivered/published | "
      "dropped |\n");
  std::printf("|---|---|---|---:|---:|---:|---:|---:|\n");
  for (const Row& row : rows) {
    std::string delivered = row.result.delivered < 0
                                ? "-"
                                : absl::StrCat(row.result.delivered, "/", row.result.published);
    std::string dropped = row.result.delivered < 0 ? "-" : absl::StrCat(row.result.dropped);
    std::string ratio = row.vs_raw > 0 ? absl::StrFormat("%.2fx", row.vs_raw) : "";
    std::printf("| %s | %s | %s | %.0f | %s | %.2f | %s | %s |\n", row.scenario.c_str(),
                BodyLabel(row.body_bytes).c_str(), row.contender.c_str(), row.result.rate,
                ratio.c_str(), row.result.cpu_us_per_message, delivered.c_str(), dropped.c_str());
  }
}

struct Contender {
  std::string name;
  PublishFn publish;
  std::function<bool()> flush;
  // Starts this contender's subscriber for a publish->deliver run.
  std::function<std::unique_ptr<Counter>()> subscribe;
  bool is_baseline = false;  // The raw row the others are compared with.
  bool delivers = true;      // Has a publish->deliver row.
  bool publishes = true;     // Has a publish row.
};

bool Run(int64_t messages, int runs) {
  auto nats = micro::testing::NatsServer::Start();
  if (!nats.ok()) return Fail(nats.status().ToString());
  const std::string url = (*nats)->url();

  micro::TransportOptions transport_options;
  transport_options.url = url;
  auto publisher_transport = micro::ConnectNats(transport_options);
  auto subscriber_transport = micro::ConnectNats(transport_options);
  if (!publisher_transport.ok()) return Fail(publisher_transport.status().ToString());
  if (!subscriber_transport.ok()) return Fail(subscriber_transport.status().ToString());
  auto publisher = micro::NewNatsBroker(*publisher_transport);
  auto subscriber = micro::NewNatsBroker(*subscriber_transport);
  if (!publisher.ok()) return Fail(publisher.status().ToString());
  if (!subscriber.ok()) return Fail(subscriber.status().ToString());

  // micro's transport connects with SendAsap on (each publish is written at
  // once); the baseline uses the same. The buffered default is shown too.
  NatsPtr<natsConnection> raw_asap = ConnectRaw(url, true);
  NatsPtr<natsConnection> raw_buffered = ConnectRaw(url, false);
  NatsPtr<natsConnection> raw_subscriber = ConnectRaw(url, true);
  if (raw_asap == nullptr || raw_buffered == nullptr || raw_subscriber == nullptr) return false;

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
      {"micro broker", micro_publish, no_flush,
       [&] { return MicroCounter::Start(**subscriber, {}); }},
      {"micro broker, inline handler", micro_publish, no_flush,
       [&] { return MicroCounter::Start(**subscriber, inline_handler); }, false, true, false},
      {"raw nats.c, SendAsap", raw_publish(raw_asap.get()), raw_flush(raw_asap.get()),
       [&] { return RawCounter::Start(raw_subscriber.get()); }, true},
      {"raw nats.c, buffered (default)", raw_publish(raw_buffered.get()),
       raw_flush(raw_buffered.get()), nullptr, false, false},
  };

  std::vector<Row> rows;
  for (size_t body_bytes : {size_t{16}, size_t{1024}}) {
    const TestEvent event = EventOfSize(body_bytes);
    if (event.ByteSizeLong() != body_bytes) return Fail("cannot size the event body");
    for (bool deliver : {false, true}) {
      const size_t first = rows.size();
      std::vector<std::vector<Result>> results(contenders.size());
      // Interleaved, so that load from elsewhere on the machine hits every contender alike.
      for (int run = 0; run < runs; ++run) {
        for (size_t c = 0; c < contenders.size(); ++c) {
          if (deliver ? !contenders[c].delivers : !contenders[c].publishes) continue;
          std::unique_ptr<Counter> counter;
          if (deliver) {
            counter = contenders[c].subscribe();
            if (counter == nullptr) return false;
          }
          std::optional<Result> result =
              Measure(contenders[c].publish, contenders[c].flush, event, messages, counter.get());
          if (!result) return Fail(absl::StrCat(contenders[c].name, " failed"));
          results[c].push_back(*result);
        }
      }
      double baseline = 0;
      for (size_t c = 0; c < contenders.size(); ++c) {
        if (results[c].empty()) continue;
        std::sort(results[c].begin(), results[c].end(),
                  [](const Result& a, const Result& b) { return a.rate < b.rate; });
        const Result& median = results[c][results[c].size() / 2];
        rows.push_back(
            {deliver ? "publish->deliver" : "publish", body_bytes, contenders[c].name, median, 0});
        if (contenders[c].is_baseline) baseline = median.rate;
      }
      for (size_t i = first; i < rows.size(); ++i) rows[i].vs_raw = rows[i].result.rate / baseline;
    }
  }
  PrintTable(rows, messages, runs);
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  micro::bench::program = "broker_throughput";
  int64_t messages = 200000;
  int runs = 3;
  const char* usage = "usage: broker_throughput [--messages N] [--runs R]\n";
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--messages" && i + 1 < argc) {
      if (!absl::SimpleAtoi(argv[++i], &messages) || messages <= 0) {
        std::fprintf(stderr, "--messages wants a positive integer\n%s", usage);
        return 2;
      }
    } else if (flag == "--runs" && i + 1 < argc) {
      if (!absl::SimpleAtoi(argv[++i], &runs) || runs <= 0) {
        std::fprintf(stderr, "--runs wants a positive integer\n%s", usage);
        return 2;
      }
    } else {
      std::fprintf(stderr, "%s", usage);
      return 2;
    }
  }
  return Run(messages, runs) ? 0 : 1;
}
