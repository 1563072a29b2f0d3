// Micro-benchmarks of what micro adds to a unary call besides NATS, with
// Google Benchmark: the codec, the request and reply headers, the executor
// hand-off, and a whole call through micro::Client and micro::Server over an
// in-process loopback transport (no sockets, no nats.c). See README.md.
#include <benchmark/benchmark.h>

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "echo_handler.h"
#include "micro/micro.h"
#include "micro/testing/echo.micro.h"
#include "protocol/wire.h"
#include "util/notification.h"

namespace {

using ::micro::testing::Echo;
using ::micro::testing::EchoReply;
using ::micro::testing::EchoRequest;

EchoRequest RequestOf(int64_t payload_bytes) {
  EchoRequest request;
  request.set_payload(std::string(static_cast<size_t>(payload_bytes), 'p'));
  return request;
}

void BM_EncodeRequest(benchmark::State& state) {
  const EchoRequest request = RequestOf(state.range(0));
  std::string out;
  for (auto _ : state) {
    benchmark::DoNotOptimize(micro::ProtobufCodec().Encode(request, &out));
  }
}
BENCHMARK(BM_EncodeRequest)->Arg(16)->Arg(4096);

void BM_DecodeRequest(benchmark::State& state) {
  std::string data;
  if (!micro::ProtobufCodec().Encode(RequestOf(state.range(0)), &data).ok()) {
    state.SkipWithError("encode failed");
    return;
  }
  for (auto _ : state) {
    EchoRequest request;  // The server decodes into a new message per call.
    benchmark::DoNotOptimize(micro::ProtobufCodec().Decode(data, &request));
  }
}
BENCHMARK(BM_DecodeRequest)->Arg(16)->Arg(4096);

// The client writes the request headers, the server reads them back; with
// `range(0)` metadata entries.
void BM_RequestHeaders(benchmark::State& state) {
  micro::Metadata metadata;
  for (int64_t i = 0; i < state.range(0); ++i) {
    metadata.emplace(absl::StrCat("key-", i), "value");
  }
  for (auto _ : state) {
    micro::Headers headers;
    const absl::Time now = absl::Now();
    absl::Status status = micro::protocol::EncodeRequestHeaders(
        micro::kProtobufContentType, now + absl::Seconds(5), now, metadata, &headers);
    auto decoded = micro::protocol::DecodeRequestHeaders(headers, now);
    benchmark::DoNotOptimize(status);
    benchmark::DoNotOptimize(decoded);
  }
}
BENCHMARK(BM_RequestHeaders)->Arg(0)->Arg(2);

// The server writes an OK reply's headers; the client reads the status,
// the metadata and the content type's codec.
void BM_ReplyHeaders(benchmark::State& state) {
  const micro::Metadata no_metadata;
  for (auto _ : state) {
    micro::Headers headers;
    absl::Status status = micro::protocol::EncodeReplyHeaders(
        absl::OkStatus(), micro::kProtobufContentType, no_metadata, &headers);
    micro::Metadata metadata = micro::protocol::ExtractMetadata(headers);
    absl::Status carried = micro::protocol::DecodeReplyStatus(headers);
    const micro::Codec* codec = micro::FindCodec(
        micro::protocol::HeaderValue(headers, micro::protocol::kContentTypeHeader));
    benchmark::DoNotOptimize(status);
    benchmark::DoNotOptimize(metadata);
    benchmark::DoNotOptimize(carried);
    benchmark::DoNotOptimize(codec);
  }
}
BENCHMARK(BM_ReplyHeaders);

// The server's dispatch from a NATS delivery thread to a handler thread, and
// back: one Schedule on the default pool and the wake-up of the waiter.
void BM_ExecutorHandoff(benchmark::State& state) {
  std::shared_ptr<micro::Executor> executor = micro::NewThreadPoolExecutor(2);
  for (auto _ : state) {
    micro::internal::Notification done;
    executor->Schedule([&done] { done.Notify(); });
    done.WaitForNotification();
  }
}
BENCHMARK(BM_ExecutorHandoff)->UseRealTime();

// A transport that hands each request to the subscription whose subject
// prefix matches, on the calling thread (as a NATS delivery thread would),
// and each reply to the pending request it answers. No streams.
class LoopbackTransport final : public micro::Transport {
 public:
  absl::Status Publish(const micro::WireMessage& message) override {
    micro::ReplyHandler on_reply;
    {
      std::lock_guard lock(mu_);
      uint64_t token = 0;
      if (!absl::StartsWith(message.subject, kInbox) ||
          !absl::SimpleAtoi(absl::string_view(message.subject).substr(sizeof(kInbox) - 1),
                            &token)) {
        return absl::UnimplementedError("loopback: publish is only for replies");
      }
      auto it = pending_.find(token);
      if (it == pending_.end()) return absl::OkStatus();
      on_reply = std::move(it->second);
      pending_.erase(it);
    }
    std::move(on_reply)(message);
    return absl::OkStatus();
  }

  void Request(const micro::WireMessage& request, absl::Time,
               micro::ReplyHandler on_reply) override {
    micro::WireMessage message = request;
    micro::MessageHandler* handler = nullptr;
    {
      std::lock_guard lock(mu_);
      uint64_t token = next_token_++;
      message.reply = absl::StrCat(kInbox, token);
      for (auto& [prefix, subscriber] : subscribers_) {
        if (absl::StartsWith(message.subject, prefix)) handler = &subscriber;
      }
      if (handler != nullptr) pending_.emplace(token, std::move(on_reply));
    }
    if (handler == nullptr) {
      std::move(on_reply)(absl::UnavailableError("loopback: no subscriber"));
      return;
    }
    (*handler)(std::move(message));
  }

  absl::StatusOr<std::unique_ptr<micro::Subscription>> Subscribe(
      const std::string& subject, const std::string&, micro::MessageHandler on_message) override {
    std::lock_guard lock(mu_);
    // `a.b.*` and `a.b.>` both become the prefix `a.b.`; good enough here.
    subscribers_.emplace(subject.substr(0, subject.size() - 1), std::move(on_message));
    return std::unique_ptr<micro::Subscription>(new NoSubscription);
  }

  absl::StatusOr<std::unique_ptr<micro::Socket>> Dial(const micro::WireMessage&,
                                                      const micro::StreamOptions&) override {
    return absl::UnimplementedError("loopback: no streams");
  }
  absl::StatusOr<std::unique_ptr<micro::Socket>> Accept(const micro::WireMessage&,
                                                        const micro::StreamOptions&) override {
    return absl::UnimplementedError("loopback: no streams");
  }
  size_t MaxPayload() const override { return 1 << 20; }

 private:
  static constexpr char kInbox[] = "_INBOX.loopback.";

  // Subscriptions live as long as the transport; the benchmark's server is
  // stopped before the transport goes.
  class NoSubscription final : public micro::Subscription {
   public:
    absl::Status SetPendingLimits(int, int64_t) override { return absl::OkStatus(); }
    int64_t Dropped() const override { return 0; }
  };

  std::mutex mu_;
  uint64_t next_token_ = 1;
  std::map<uint64_t, micro::ReplyHandler> pending_;
  std::map<std::string, micro::MessageHandler> subscribers_;
};

// Discovery is not what this measures.
class NoRegistry final : public micro::Registry {
 public:
  absl::Status Register(micro::Registration) override { return absl::OkStatus(); }
  absl::Status Deregister(std::string_view) override { return absl::OkStatus(); }
  absl::StatusOr<std::shared_ptr<const micro::ServiceInstances>> GetService(
      std::string_view) override {
    return absl::NotFoundError("no registry");
  }
  absl::StatusOr<std::vector<micro::ServiceInstances>> ListServices() override {
    return std::vector<micro::ServiceInstances>{};
  }
  absl::StatusOr<std::unique_ptr<micro::Watcher>> Watch(std::string_view,
                                                        micro::WatchHandler) override {
    return absl::UnimplementedError("no registry");
  }
};

// A whole sync call through the generated stub, micro::Client and
// micro::Server with its executor hop, minus NATS.
void BM_LoopbackCall(benchmark::State& state) {
  auto transport = std::make_shared<LoopbackTransport>();
  micro::bench::PayloadEchoHandler handler;
  micro::ServerOptions options;
  options.registry = std::make_shared<NoRegistry>();
  micro::Server server(transport, options);
  if (!micro::testing::RegisterEchoHandler(server, handler).ok() || !server.Start().ok()) {
    state.SkipWithError("server did not start");
    return;
  }
  auto stub = Echo::NewStub(std::make_shared<micro::Client>(transport));
  const EchoRequest request = RequestOf(state.range(0));
  for (auto _ : state) {
    micro::ClientContext context;
    context.set_timeout(absl::Seconds(5));
    EchoReply reply;
    absl::Status status = stub->Echo(&context, request, &reply);
    if (!status.ok()) {
      state.SkipWithError(std::string(status.message()).c_str());
      break;
    }
  }
  server.Stop();
}
BENCHMARK(BM_LoopbackCall)->Arg(16)->Arg(4096)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
