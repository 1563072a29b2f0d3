// Messages per second through one stream, client to server, next to raw
// nats.c publish -> subscribe against the same nats-server. Every row also
// says how many messages arrived: the raw rows have no flow control and may
// lose messages; a stream must not.
#include <nats/nats.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "absl/time/clock.h"
#include "micro/transport.h"
#include "rates.h"
#include "raw_nats.h"

namespace micro::bench {
namespace {

constexpr size_t kSizes[] = {64, 1024, 64 * 1024};
constexpr size_t kBytesPerRun = 128 << 20;  // Each run moves about this much.
constexpr int64_t kMaxMessagesPerRun = 200000;
constexpr absl::Duration kRunTimeout = absl::Seconds(60);
constexpr char kRawSubject[] = "bench.raw.stream";
constexpr char kStreamSubject[] = "bench.stream";

double Rate(int64_t messages, absl::Duration elapsed) {
  return static_cast<double>(messages) / absl::ToDoubleSeconds(elapsed);
}

// Raw nats.c: one publisher connection, one async subscriber connection.
std::optional<RateRow> RawPublishSubscribe(const std::string& url, bool send_asap, size_t size,
                                           int64_t count, Meter& meter) {
  struct Counter {
    std::atomic<int64_t> received{0};
    std::atomic<int64_t> last_nanos{0};
  } counter;
  NatsPtr<natsConnection> subscriber = ConnectRaw(url, /*send_asap=*/false);
  NatsPtr<natsConnection> publisher = ConnectRaw(url, send_asap);
  if (subscriber == nullptr || publisher == nullptr) return std::nullopt;
  auto on_message = [](natsConnection*, natsSubscription*, natsMsg* msg, void* closure) {
    auto* c = static_cast<Counter*>(closure);
    c->received.fetch_add(1);
    c->last_nanos = absl::ToUnixNanos(absl::Now());
    natsMsg_Destroy(msg);
  };
  natsSubscription* raw_subscription = nullptr;
  if (!NatsOk(natsConnection_Subscribe(&raw_subscription, subscriber.get(), kRawSubject, on_message,
                                       &counter),
              "natsConnection_Subscribe")) {
    return std::nullopt;
  }
  NatsPtr<natsSubscription> subscription(raw_subscription);
  if (!NatsOk(natsSubscription_SetPendingLimits(raw_subscription, -1, -1), "pending limits") ||
      !NatsOk(natsConnection_Flush(subscriber.get()), "natsConnection_Flush")) {
    return std::nullopt;
  }
  std::string payload(size, 'p');
  meter.Start();
  absl::Time start = absl::Now();
  for (int64_t i = 0; i < count; ++i) {
    if (!NatsOk(natsConnection_Publish(publisher.get(), kRawSubject, payload.data(),
                                       static_cast<int>(size)),
                "natsConnection_Publish")) {
      return std::nullopt;
    }
  }
  natsConnection_FlushTimeout(publisher.get(), 30000);
  // Wait until everything arrived or nothing arrives any more.
  absl::Time give_up = absl::Now() + kRunTimeout;
  int64_t seen = -1;
  while (counter.received.load() < count && absl::Now() < give_up) {
    absl::SleepFor(absl::Milliseconds(200));
    if (counter.received.load() == seen) break;  // Stalled: the rest was dropped.
    seen = counter.received.load();
  }
  meter.Stop();
  RateRow row;
  row.sent = count;
  row.delivered = counter.received.load();
  row.dropped = count - row.delivered;
  row.rate = Rate(row.delivered, absl::FromUnixNanos(counter.last_nanos.load()) - start);
  return row;
}

// The server's end of a stream: accepted on the NATS delivery thread, read
// on a thread of its own.
class StreamReader {
 public:
  ~StreamReader() {
    std::unique_lock lock(mu_);
    accepted_.wait_for(lock, std::chrono::seconds(10), [this] { return done_; });
    if (reader_.joinable()) reader_.join();
  }

  void Accept(micro::Transport& server, const micro::WireMessage& open) {
    auto socket = server.Accept(open, {});
    std::lock_guard lock(mu_);
    if (socket.ok()) {
      socket_ = *std::move(socket);
      reader_ = std::thread([this] {
        std::string message;
        while (socket_->Recv(&message).ok()) received_.fetch_add(1);
        socket_->End(absl::OkStatus(), {}).IgnoreError();
      });
    } else {
      Fail(socket.status().ToString());
    }
    done_ = true;
    accepted_.notify_all();
  }

  int64_t received() const { return received_.load(); }

 private:
  std::mutex mu_;
  std::condition_variable accepted_;
  bool done_ = false;
  std::unique_ptr<micro::Socket> socket_;
  std::thread reader_;
  std::atomic<int64_t> received_{0};
};

// micro: one stream, the client sends `count` messages, the server reads them.
std::optional<RateRow> MicroStream(micro::Transport& client, micro::Transport& server, size_t size,
                                   int64_t count, Meter& meter) {
  StreamReader reader;
  auto subscription = server.Subscribe(
      kStreamSubject, "", [&](micro::WireMessage open) { reader.Accept(server, open); });
  if (!subscription.ok()) return Failed(subscription.status().ToString());
  micro::WireMessage open;
  open.subject = kStreamSubject;
  std::string payload(size, 'p');
  auto socket = client.Dial(open, {});
  if (!socket.ok()) return Failed(socket.status().ToString());
  meter.Start();
  absl::Time start = absl::Now();
  for (int64_t i = 0; i < count; ++i) {
    if (absl::Status sent = (*socket)->Send(payload); !sent.ok()) {
      return Failed(sent.ToString());
    }
  }
  if (absl::Status closed = (*socket)->CloseSend(); !closed.ok()) {
    return Failed(closed.ToString());
  }
  if (absl::Status finished = (*socket)->Finish(); !finished.ok()) {
    return Failed(finished.ToString());
  }
  absl::Duration elapsed = absl::Now() - start;
  meter.Stop();
  RateRow row;
  row.sent = count;
  row.delivered = reader.received();
  row.dropped = count - row.delivered;
  row.rate = Rate(row.delivered, elapsed);
  return row;
}

}  // namespace

std::optional<std::vector<RateRow>> MeasureStreamRates(const RateOptions& options) {
  std::vector<RateRow> rows;
  if (!AnySelected(options, kStreamKeys)) return rows;
  micro::TransportOptions transport_options;
  transport_options.url = options.url;
  auto client = micro::ConnectNats(transport_options);
  auto server = micro::ConnectNats(transport_options);
  if (!client.ok()) return Failed(client.status().ToString());
  if (!server.ok()) return Failed(server.status().ToString());
  const std::string& url = options.url;
  for (size_t size : kSizes) {
    const int64_t count = std::max<int64_t>(
        1,
        static_cast<int64_t>(options.stream_scale *
                             static_cast<double>(std::min<int64_t>(
                                 kMaxMessagesPerRun, static_cast<int64_t>(kBytesPerRun / size)))));
    const std::vector<RateContender> contenders = {
        {kStreamKeys[0], "micro stream", false,
         [&](Meter& meter) { return MicroStream(**client, **server, size, count, meter); }},
        {kStreamKeys[1], "raw nats.c pub/sub", true,
         [&](Meter& meter) { return RawPublishSubscribe(url, false, size, count, meter); }},
        {kStreamKeys[2], "raw nats.c pub/sub (SendAsap)", true,
         [&](Meter& meter) { return RawPublishSubscribe(url, true, size, count, meter); }},
    };
    auto measured = Interleave(kStreamWorkload, size, contenders, options);
    if (!measured) return std::nullopt;
    rows.insert(rows.end(), measured->begin(), measured->end());
  }
  return rows;
}

}  // namespace micro::bench
