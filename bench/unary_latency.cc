// Sequential unary request/reply latency, in one run against one nats-server:
// the micro generated stub versus raw nats.c request/reply with the same
// protobuf messages, the raw replier with and without natsOptions_SetSendAsap.
//
// Usage: unary_latency [--calls N] [--json out.json]
#include <nats/nats.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "micro/micro.h"
#include "micro/testing/echo.micro.h"
#include "raw_nats.h"
#include "support/nats_server.h"

namespace {

using ::micro::bench::ConnectRaw;
using ::micro::bench::Fail;
using ::micro::bench::NatsOk;
using ::micro::bench::NatsPtr;

using ::micro::testing::Echo;
using ::micro::testing::EchoReply;
using ::micro::testing::EchoRequest;

constexpr int kWarmupCalls = 200;
constexpr int kRequestTimeoutMs = 5000;
constexpr const char* kAsapSubject = "bench.raw.asap";
constexpr const char* kDefaultSubject = "bench.raw.default";

// The micro server side: echoes `payload`.
class EchoHandler final : public Echo::Handler {
 public:
  absl::Status Echo(micro::ServerContext*, const EchoRequest* request, EchoReply* reply) override {
    reply->set_payload(request->payload());
    return absl::OkStatus();
  }
  absl::Status Ping(micro::ServerContext*, const EchoRequest*, EchoReply*) override {
    return absl::OkStatus();
  }
};

// The raw nats.c replier: decodes an EchoRequest and publishes an EchoReply
// with the same payload. A failure is printed and left unanswered, so the
// requester fails too.
void RawEcho(natsConnection* connection, natsSubscription*, natsMsg* msg, void*) {
  NatsPtr<natsMsg> owned(msg);
  EchoRequest request;
  if (!request.ParseFromArray(natsMsg_GetData(msg), natsMsg_GetDataLength(msg))) {
    Fail("raw replier: request does not decode");
    return;
  }
  if (natsMsg_GetReply(msg) == nullptr) {
    Fail("raw replier: request has no reply subject");
    return;
  }
  EchoReply reply;
  reply.set_payload(request.payload());
  std::string data = reply.SerializeAsString();
  NatsOk(natsConnection_Publish(connection, natsMsg_GetReply(msg), data.data(),
                                static_cast<int>(data.size())),
         "raw replier publish");
}

// A raw replier on its own connection. Members are destroyed subscription first.
struct RawReplier {
  NatsPtr<natsConnection> connection;
  NatsPtr<natsSubscription> subscription;
};

std::optional<RawReplier> StartRawReplier(const std::string& url, const char* subject,
                                          bool send_asap) {
  RawReplier replier;
  replier.connection = ConnectRaw(url, send_asap);
  if (replier.connection == nullptr) return std::nullopt;
  natsSubscription* subscription = nullptr;
  if (!NatsOk(natsConnection_Subscribe(&subscription, replier.connection.get(), subject, RawEcho,
                                       nullptr),
              "natsConnection_Subscribe")) {
    return std::nullopt;
  }
  replier.subscription.reset(subscription);
  // Requests come from another connection: make sure the server knows the subscription.
  if (!NatsOk(natsConnection_Flush(replier.connection.get()), "natsConnection_Flush")) {
    return std::nullopt;
  }
  return replier;
}

bool CheckPayload(const EchoReply& reply, const EchoRequest& request) {
  return reply.payload() == request.payload() || Fail("reply payload differs from the request's");
}

// One sync call through the generated stub.
std::function<bool()> MicroCall(Echo::Stub& stub, const EchoRequest& request) {
  return [&stub, &request] {
    micro::ClientContext context;
    context.set_timeout(absl::Milliseconds(kRequestTimeoutMs));
    EchoReply reply;
    absl::Status status = stub.Echo(&context, request, &reply);
    if (!status.ok()) return Fail(absl::StrCat("micro Echo: ", status.ToString()));
    return CheckPayload(reply, request);
  };
}

// One natsConnection_Request with a serialized EchoRequest.
std::function<bool()> RawCall(natsConnection* connection, const char* subject,
                              const EchoRequest& request) {
  return [connection, subject, &request] {
    std::string data = request.SerializeAsString();
    natsMsg* raw_reply = nullptr;
    if (!NatsOk(natsConnection_Request(&raw_reply, connection, subject, data.data(),
                                       static_cast<int>(data.size()), kRequestTimeoutMs),
                "natsConnection_Request")) {
      return false;
    }
    NatsPtr<natsMsg> owned(raw_reply);
    EchoReply reply;
    if (!reply.ParseFromArray(natsMsg_GetData(raw_reply), natsMsg_GetDataLength(raw_reply))) {
      return Fail("raw reply does not decode");
    }
    return CheckPayload(reply, request);
  };
}

struct Stats {
  double p50_us = 0, p90_us = 0, p99_us = 0, calls_per_sec = 0;
};

// Nearest-rank percentile of sorted values.
double Percentile(const std::vector<double>& sorted, double p) {
  size_t rank = static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(sorted.size())));
  return sorted[std::clamp<size_t>(rank, 1, sorted.size()) - 1];
}

Stats Summarize(std::vector<double> latencies_us, double elapsed_s) {
  std::sort(latencies_us.begin(), latencies_us.end());
  return {Percentile(latencies_us, 50), Percentile(latencies_us, 90), Percentile(latencies_us, 99),
          static_cast<double>(latencies_us.size()) / elapsed_s};
}

// Runs `call` kWarmupCalls times, then `calls` (> 0) measured times, one after
// the other. nullopt on the first failed call.
std::optional<Stats> Measure(const std::function<bool()>& call, int calls) {
  using Clock = std::chrono::steady_clock;
  for (int i = 0; i < kWarmupCalls; ++i) {
    if (!call()) return std::nullopt;
  }
  std::vector<double> latencies_us;
  latencies_us.reserve(calls);
  const Clock::time_point begin = Clock::now();
  for (int i = 0; i < calls; ++i) {
    const Clock::time_point start = Clock::now();
    if (!call()) return std::nullopt;
    latencies_us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - start).count());
  }
  return Summarize(std::move(latencies_us),
                   std::chrono::duration<double>(Clock::now() - begin).count());
}

struct Row {
  std::string transport;
  int payload_bytes;
  Stats stats;
  double p50_vs_raw_asap;
};

std::string PayloadLabel(int bytes) {
  return bytes % 1024 == 0 ? absl::StrCat(bytes / 1024, " KiB") : absl::StrCat(bytes, " B");
}

void PrintTable(const std::vector<Row>& rows) {
  std::printf("| transport | payload | p50 us | p90 us | p99 us | calls/s | p50 vs raw asap |\n");
  std::printf("|---|---|---:|---:|---:|---:|---:|\n");
  for (const Row& row : rows) {
    std::printf("| %s | %s | %.1f | %.1f | %.1f | %.0f | %.2fx |\n", row.transport.c_str(),
                PayloadLabel(row.payload_bytes).c_str(), row.stats.p50_us, row.stats.p90_us,
                row.stats.p99_us, row.stats.calls_per_sec, row.p50_vs_raw_asap);
  }
}

bool WriteJson(const std::string& path, int calls, const std::vector<Row>& rows) {
  std::string json = absl::StrFormat("{\n  \"calls\": %d,\n  \"warmup_calls\": %d,\n  \"rows\": [",
                                     calls, kWarmupCalls);
  for (size_t i = 0; i < rows.size(); ++i) {
    const Row& row = rows[i];
    absl::StrAppendFormat(
        &json,
        "%s\n    {\"transport\": \"%s\", \"payload_bytes\": %d, \"p50_us\": %.1f, "
        "\"p90_us\": %.1f, \"p99_us\": %.1f, \"calls_per_sec\": %.0f, "
        "\"p50_vs_raw_asap\": %.3f}",
        i == 0 ? "" : ",", row.transport, row.payload_bytes, row.stats.p50_us, row.stats.p90_us,
        row.stats.p99_us, row.stats.calls_per_sec, row.p50_vs_raw_asap);
  }
  json += "\n  ]\n}\n";
  std::ofstream out(path);
  out << json;
  out.close();
  return out.good() || Fail(absl::StrCat("cannot write ", path));
}

// Runs every contender against one nats-server and prints the table. False on any failure.
bool Run(int calls, const std::string& json_path) {
  auto nats = micro::testing::NatsServer::Start();
  if (!nats.ok()) return Fail(nats.status().ToString());
  const std::string url = (*nats)->url();

  // micro: server and client each on their own transport, like two processes.
  micro::TransportOptions transport_options;
  transport_options.url = url;
  auto server_transport = micro::ConnectNats(transport_options);
  auto client_transport = micro::ConnectNats(transport_options);
  if (!server_transport.ok()) return Fail(server_transport.status().ToString());
  if (!client_transport.ok()) return Fail(client_transport.status().ToString());
  EchoHandler handler;
  micro::Server server(*server_transport);
  if (absl::Status status = micro::testing::RegisterEchoHandler(server, handler); !status.ok()) {
    return Fail(status.ToString());
  }
  if (absl::Status status = server.Start(); !status.ok()) return Fail(status.ToString());
  std::unique_ptr<Echo::Stub> stub =
      Echo::NewStub(std::make_shared<micro::Client>(*client_transport));

  // Raw nats.c: two repliers (SendAsap and default) and one requester connection.
  std::optional<RawReplier> asap_replier = StartRawReplier(url, kAsapSubject, true);
  std::optional<RawReplier> default_replier = StartRawReplier(url, kDefaultSubject, false);
  NatsPtr<natsConnection> requester = ConnectRaw(url, false);
  if (!asap_replier || !default_replier || requester == nullptr) return false;

  std::vector<Row> rows;
  for (int payload_bytes : {16, 4096}) {
    EchoRequest request;
    request.set_payload(std::string(payload_bytes, 'p'));
    const std::pair<std::string, std::function<bool()>> contenders[] = {
        {"micro stub (sync)", MicroCall(*stub, request)},
        {"raw nats.c, SendAsap replier", RawCall(requester.get(), kAsapSubject, request)},
        {"raw nats.c, default replier", RawCall(requester.get(), kDefaultSubject, request)},
    };
    const size_t first = rows.size();
    for (const auto& [name, call] : contenders) {
      std::optional<Stats> stats = Measure(call, calls);
      if (!stats) return Fail(absl::StrCat(name, " failed"));
      rows.push_back({name, payload_bytes, *stats, 0});
    }
    const double raw_asap_p50 = rows[first + 1].stats.p50_us;  // contenders[1]
    for (size_t i = first; i < rows.size(); ++i) {
      rows[i].p50_vs_raw_asap = rows[i].stats.p50_us / raw_asap_p50;
    }
  }
  server.Stop();

  PrintTable(rows);
  return json_path.empty() || WriteJson(json_path, calls, rows);
}

}  // namespace

int main(int argc, char** argv) {
  micro::bench::program = "unary_latency";
  int calls = 3000;
  std::string json_path;
  const char* usage = "usage: unary_latency [--calls N] [--json out.json]\n";
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--calls" && i + 1 < argc) {
      if (!absl::SimpleAtoi(argv[++i], &calls) || calls <= 0) {
        std::fprintf(stderr, "--calls wants a positive integer\n%s", usage);
        return 2;
      }
    } else if (flag == "--json" && i + 1 < argc) {
      json_path = argv[++i];
    } else {
      std::fprintf(stderr, "%s", usage);
      return 2;
    }
  }
  return Run(calls, json_path) ? 0 : 1;
}
