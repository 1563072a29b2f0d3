// Messages per second through one stream, client to server, next to raw
// nats.c publish -> subscribe measured in the same run against the same
// nats-server. Every row also reports how many messages arrived: the raw rows
// have no flow control and may lose messages; a stream must not.
//
// Usage: stream_throughput [--scale F]   (F scales the message counts; default 1)
#include <nats/nats.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "micro/transport.h"
#include "raw_nats.h"
#include "support/nats_server.h"

namespace {

using ::micro::bench::ConnectRaw;
using ::micro::bench::NatsOk;
using ::micro::bench::NatsPtr;

constexpr size_t kSizes[] = {64, 1024, 64 * 1024};
constexpr size_t kBytesPerRow = 128 << 20;  // Each row moves about this much.
constexpr absl::Duration kRowTimeout = absl::Seconds(60);

struct Row {
  std::string transport;
  size_t size;
  int sent;
  int delivered;
  absl::Duration elapsed;
  double Rate() const { return delivered / absl::ToDoubleSeconds(elapsed); }
};

[[noreturn]] void Die(const std::string& what) {
  micro::bench::Fail(what);
  std::exit(1);
}

// Raw nats.c: one publisher connection, one async subscriber connection.
Row RawPublishSubscribe(const std::string& url, bool send_asap, size_t size, int count) {
  struct Counter {
    std::atomic<int> received{0};
    std::atomic<int64_t> last_nanos{0};
  } counter;
  NatsPtr<natsConnection> subscriber = ConnectRaw(url, /*send_asap=*/false);
  NatsPtr<natsConnection> publisher = ConnectRaw(url, send_asap);
  if (subscriber == nullptr || publisher == nullptr) std::exit(1);
  auto on_message = [](natsConnection*, natsSubscription*, natsMsg* msg, void* closure) {
    auto* c = static_cast<Counter*>(closure);
    c->received.fetch_add(1);
    c->last_nanos = absl::ToUnixNanos(absl::Now());
    natsMsg_Destroy(msg);
  };
  natsSubscription* raw_subscription = nullptr;
  if (!NatsOk(natsConnection_Subscribe(&raw_subscription, subscriber.get(), "bench.raw.stream",
                                       on_message, &counter),
              "subscribe")) {
    std::exit(1);
  }
  NatsPtr<natsSubscription> subscription(raw_subscription);
  if (!NatsOk(natsSubscription_SetPendingLimits(raw_subscription, -1, -1), "pending limits") ||
      !NatsOk(natsConnection_Flush(subscriber.get()), "flush")) {
    std::exit(1);
  }
  std::string payload(size, 'p');
  absl::Time start = absl::Now();
  for (int i = 0; i < count; ++i) {
    if (!NatsOk(natsConnection_Publish(publisher.get(), "bench.raw.stream", payload.data(),
                                       static_cast<int>(size)),
                "publish")) {
      std::exit(1);
    }
  }
  natsConnection_FlushTimeout(publisher.get(), 30000);
  // Wait until everything arrived or nothing arrives any more.
  absl::Time give_up = absl::Now() + kRowTimeout;
  int seen = -1;
  while (counter.received.load() < count && absl::Now() < give_up) {
    absl::SleepFor(absl::Milliseconds(200));
    if (counter.received.load() == seen) break;  // Stalled: the rest was dropped.
    seen = counter.received.load();
  }
  Row row{absl::StrFormat("raw nats.c pub/sub%s", send_asap ? " (SendAsap)" : ""), size, count,
          counter.received.load(), absl::FromUnixNanos(counter.last_nanos.load()) - start};
  return row;
}

// micro: one stream, the client sends `count` messages, the server reads them.
Row MicroStream(micro::Transport& client, micro::Transport& server, size_t size, int count) {
  std::atomic<int> received{0};
  std::unique_ptr<micro::Socket> server_socket;
  std::thread reader;
  auto subscription = server.Subscribe("bench.stream", "", [&](micro::WireMessage open) {
    auto socket = server.Accept(open, {});
    if (!socket.ok()) Die(socket.status().ToString());
    server_socket = *std::move(socket);
    reader = std::thread([&] {
      std::string message;
      while (server_socket->Recv(&message).ok()) received.fetch_add(1);
      server_socket->End(absl::OkStatus(), {}).IgnoreError();
    });
  });
  if (!subscription.ok()) Die(subscription.status().ToString());
  micro::WireMessage open;
  open.subject = "bench.stream";
  auto socket = client.Dial(open, {});
  if (!socket.ok()) Die(socket.status().ToString());
  std::string payload(size, 'p');
  absl::Time start = absl::Now();
  for (int i = 0; i < count; ++i) {
    if (absl::Status sent = (*socket)->Send(payload); !sent.ok()) Die(sent.ToString());
  }
  if (absl::Status closed = (*socket)->CloseSend(); !closed.ok()) Die(closed.ToString());
  if (absl::Status finished = (*socket)->Finish(); !finished.ok()) Die(finished.ToString());
  absl::Duration elapsed = absl::Now() - start;
  reader.join();
  return Row{"micro stream", size, count, received.load(), elapsed};
}

std::shared_ptr<micro::Transport> Connect(const std::string& url) {
  micro::TransportOptions options;
  options.url = url;
  auto transport = micro::ConnectNats(options);
  if (!transport.ok()) Die(transport.status().ToString());
  return *transport;
}

}  // namespace

int main(int argc, char** argv) {
  micro::bench::program = "stream_throughput";
  double scale = 1;
  if (argc == 3 && std::string(argv[1]) == "--scale") scale = std::atof(argv[2]);
  if (scale <= 0 || (argc != 1 && argc != 3)) {
    std::fprintf(stderr, "usage: stream_throughput [--scale F]\n");
    return 2;
  }
  auto nats = micro::testing::NatsServer::Start();
  if (!nats.ok()) Die(nats.status().ToString());
  auto client = Connect((*nats)->url());
  auto server = Connect((*nats)->url());

  std::printf("| transport | size | sent | delivered | msgs/s | MB/s | vs best raw |\n");
  std::printf("|---|---:|---:|---:|---:|---:|---:|\n");
  for (size_t size : kSizes) {
    int count =
        std::max(1, static_cast<int>(scale * std::min<size_t>(200000, kBytesPerRow / size)));
    std::vector<Row> rows = {RawPublishSubscribe((*nats)->url(), false, size, count),
                             RawPublishSubscribe((*nats)->url(), true, size, count),
                             MicroStream(*client, *server, size, count)};
    double best_raw = std::max(rows[0].Rate(), rows[1].Rate());
    for (const Row& row : rows) {
      std::printf("| %s | %zu B | %d | %d | %.0f | %.1f | %.2fx |\n", row.transport.c_str(),
                  row.size, row.sent, row.delivered, row.Rate(), row.Rate() * row.size / 1e6,
                  row.Rate() / best_raw);
    }
  }
  return 0;
}
