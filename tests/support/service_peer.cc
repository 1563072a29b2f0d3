// A service in its own process, for the fault-injection tests that SIGKILL
// it or measure its memory:
//   service_peer <nats-url> <stream-heartbeat-ms> <handler-threads>
// serves micro.testing.Echo (Echo sleeps `sleep_ms`, then echoes text and
// payload) and micro.testing.Numbers (Count writes 1..value, 5 ms apart;
// Double answers each number with its double), reconnects to NATS for ever,
// prints "ready" once serving, and runs until killed.
#include <chrono>
#include <cstdio>
#include <memory>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/time/clock.h"
#include "micro/micro.h"
#include "micro/testing/echo.micro.h"
#include "micro/testing/streams.micro.h"

namespace {

using micro::testing::EchoReply;
using micro::testing::EchoRequest;
using micro::testing::Number;

class EchoHandler final : public micro::testing::Echo::Handler {
 public:
  absl::Status Echo(micro::ServerContext*, const EchoRequest* request, EchoReply* reply) override {
    if (request->sleep_ms() > 0) absl::SleepFor(absl::Milliseconds(request->sleep_ms()));
    reply->set_text(request->text());
    reply->set_payload(request->payload());
    return absl::OkStatus();
  }
  absl::Status Ping(micro::ServerContext*, const EchoRequest*, EchoReply*) override {
    return absl::OkStatus();
  }
};

class NumbersHandler final : public micro::testing::Numbers::Handler {
 public:
  absl::Status Count(micro::ServerContext*, const Number* request,
                     micro::ServerWriter<Number>* writer) override {
    for (int64_t i = 1; i <= request->value(); ++i) {
      Number number;
      number.set_value(i);
      if (!writer->Write(number)) return absl::CancelledError("the client went away");
      absl::SleepFor(absl::Milliseconds(5));
    }
    return absl::OkStatus();
  }
  absl::Status Sum(micro::ServerContext*, micro::ServerReader<Number>* reader,
                   Number* response) override {
    Number number;
    while (reader->Read(&number)) response->set_value(response->value() + number.value());
    return absl::OkStatus();
  }
  absl::Status Double(micro::ServerContext*,
                      micro::ServerReaderWriter<Number, Number>* stream) override {
    Number number;
    while (stream->Read(&number)) {
      number.set_value(2 * number.value());
      if (!stream->Write(number)) break;
    }
    return absl::OkStatus();
  }
};

}  // namespace

int main(int argc, char** argv) {
  int heartbeat_ms = 0;
  int threads = 0;
  if (argc != 4 || !absl::SimpleAtoi(argv[2], &heartbeat_ms) || heartbeat_ms <= 0 ||
      !absl::SimpleAtoi(argv[3], &threads) || threads <= 0) {
    std::fprintf(stderr, "usage: service_peer <nats-url> <stream-heartbeat-ms> <threads>\n");
    return 2;
  }
  micro::TransportOptions options;
  options.url = argv[1];
  options.stream_heartbeat = absl::Milliseconds(heartbeat_ms);
  options.max_reconnect_attempts = -1;
  options.reconnect_wait = absl::Milliseconds(100);
  auto transport = micro::ConnectNats(options);
  if (!transport.ok()) {
    std::fprintf(stderr, "service_peer: %s\n", transport.status().ToString().c_str());
    return 1;
  }
  micro::ServerOptions server_options;
  server_options.num_threads = threads;
  micro::Server server(*transport, server_options);
  EchoHandler echo;
  NumbersHandler numbers;
  absl::Status status = micro::testing::RegisterEchoHandler(server, echo);
  if (status.ok()) status = micro::testing::RegisterNumbersHandler(server, numbers);
  if (status.ok()) status = server.Start();
  if (!status.ok()) {
    std::fprintf(stderr, "service_peer: %s\n", status.ToString().c_str());
    return 1;
  }
  std::printf("ready\n");
  std::fflush(stdout);
  while (true) std::this_thread::sleep_for(std::chrono::seconds(1));
}
