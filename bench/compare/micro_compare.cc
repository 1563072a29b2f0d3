// One command that compares micro's unary calls with raw nats.c and gRPC C++
// on this machine, all in one run: see bench/README.md and docs/PERFORMANCE.md.
//
// It starts a nats-server on a free loopback port and one server process per
// framework (bench_peer, peer.h), then, for each workload (payload size and
// calls in flight), runs every contender's client in this process and reads
// the CPU time of client (this process), server and nats-server around it.
#include <grpcpp/grpcpp.h>
#include <nats/nats.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "micro/bench/grpc_echo.grpc.pb.h"
#include "micro/bench/inline_echo.micro.h"
#include "micro/micro.h"
#include "micro/testing/echo.micro.h"
#include "peer.h"
#include "rates.h"
#include "raw_nats.h"
#include "support/nats_server.h"
#include "support/process.h"
#include "usage.h"

namespace {

using ::micro::bench::Fail;
using ::micro::bench::NatsOk;
using ::micro::bench::NatsPtr;
using ::micro::bench::ProcessUsage;
using ::micro::bench::RateRow;
using ::micro::bench::SelfUsage;
using ::micro::bench::SizeLabel;
using ::micro::bench::Usage;
using ::micro::testing::EchoReply;
using ::micro::testing::EchoRequest;
using Clock = std::chrono::steady_clock;

constexpr auto kCallTimeout = std::chrono::seconds(5);
// How long an async workload may take before the run is declared hung.
constexpr auto kHangTimeout = std::chrono::minutes(10);
constexpr absl::Duration kPeerReadyTimeout = absl::Seconds(60);  // Under valgrind too.
constexpr absl::Duration kPeerStopGrace = absl::Seconds(60);

enum class Kind {
  kMicroSync,
  kMicroInlineSync,
  kMicroAsync,
  kMicroAsyncInline,
  kNatsSync,
  kNatsAsync,
  kGrpcSync,
  kMicroSyncToRaw,
  kNatsSyncToMicro,
  kNatsSyncToMicroInline,
};

struct Contender {
  Kind kind;
  const char* key;   // For --only.
  const char* name;  // In the table.
  const char* peer;  // The bench_peer kind that serves it.
  bool async;
  // Mixes one framework's client with another's server, to tell where a
  // difference comes from; runs only when --only names it.
  bool diagnostic = false;
};

constexpr Contender kContenders[] = {
    {Kind::kMicroSync, "micro-sync", "micro, sync stub", "micro", false},
    {Kind::kMicroInlineSync, "micro-inline-sync", "micro, sync stub, server inline_unary_handlers",
     "micro-inline", false},
    {Kind::kMicroAsync, "micro-async", "micro, async stub (callback)", "micro", true},
    {Kind::kMicroAsyncInline, "micro-async-inline",
     "micro, async stub (callback), client inline_callbacks", "micro", true},
    {Kind::kNatsSync, "nats-sync", "raw nats.c, sync Request", "nats", false},
    {Kind::kNatsAsync, "nats-async", "raw nats.c, async publish + shared reply sub", "nats", true},
    {Kind::kGrpcSync, "grpc-sync", "gRPC C++ 1.51, sync unary", "grpc", false},
    {Kind::kMicroSyncToRaw, "micro-sync-to-nats", "micro, sync stub, to the raw nats.c replier",
     "nats", false, true},
    {Kind::kNatsSyncToMicro, "nats-sync-to-micro", "raw nats.c, sync Request, to the micro server",
     "micro", false, true},
    {Kind::kNatsSyncToMicroInline, "nats-sync-to-micro-inline",
     "raw nats.c, sync Request, to the micro server with inline_unary_handlers", "micro-inline",
     false, true},
};

const Contender& Find(Kind kind) {
  for (const Contender& contender : kContenders) {
    if (contender.kind == kind) return contender;
  }
  std::abort();
}

// Async contenders also run at this many calls in flight; sync ones would
// need as many threads.
constexpr int kAsyncOnlyInFlight = 512;

struct Config {
  double seconds = 2;  // Measured time per workload, in `rounds` slices,
  double warmup_seconds = 0.3;
  int calls = 0;   // or, when positive, this many measured calls in one slice (profiling).
  int rounds = 5;  // Slices of a workload alternate with the other contenders'.
  std::vector<std::string> only;  // Contender keys; empty: all.
  std::vector<int> payloads = {16, 4096};
  std::vector<int> in_flight = {1, 8, 64, kAsyncOnlyInFlight};
  std::string json_path;
  std::vector<std::string> peer_prefix;  // Prepended to each server's command line.
  // Stream and broker rates (bench/rates.h); not with `calls` (profiling).
  int rate_runs = 5;
  double stream_scale = 1;
  int64_t broker_messages = 200000;
};

// When a workload stops starting calls: after a number of calls or at a time.
class Budget {
 public:
  static Budget Calls(int calls) { return Budget(calls, Clock::time_point::max()); }
  static Budget For(double seconds) {
    return Budget(0, Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                        std::chrono::duration<double>(seconds)));
  }

  // True if one more call may start.
  bool Take() {
    if (by_time_) return Clock::now() < until_;
    return calls_left_.fetch_sub(1, std::memory_order_relaxed) > 0;
  }

 private:
  Budget(int calls, Clock::time_point until)
      : by_time_(calls == 0), calls_left_(calls), until_(until) {}
  const bool by_time_;
  std::atomic<int> calls_left_;
  const Clock::time_point until_;
};

double MicrosSince(Clock::time_point start) {
  return std::chrono::duration<double, std::micro>(Clock::now() - start).count();
}

// What one workload's calls took, one lane (thread or async slot) each, so
// recording needs no lock.
struct Lane {
  std::vector<double> latencies_us;
  Clock::time_point start;
};

bool SamePayload(const EchoReply& reply, const EchoRequest& request) {
  return reply.payload() == request.payload() || Fail("reply payload differs from the request's");
}

// A client that makes one blocking call; safe to call from many threads.
using SyncCall = std::function<bool()>;

// Runs `call` on `threads` threads until the budget is spent.
bool RunSync(const SyncCall& call, int threads, Budget& budget, std::vector<Lane>& lanes) {
  lanes.assign(threads, Lane{});
  std::atomic<bool> ok = true;
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      Lane& lane = lanes[t];
      while (ok.load(std::memory_order_relaxed) && budget.Take()) {
        Clock::time_point start = Clock::now();
        if (!call()) {
          ok = false;
          return;
        }
        lane.latencies_us.push_back(MicrosSince(start));
      }
    });
  }
  for (std::thread& worker : workers) worker.join();
  return ok;
}

// A client that keeps many calls in flight without a thread each: Issue
// starts a call in a lane, whose completion calls Completed, which starts
// the lane's next call from the completing thread while the budget lasts.
class AsyncClient {
 public:
  virtual ~AsyncClient() = default;

  bool Run(int in_flight, Budget& budget, std::vector<Lane>& lanes) {
    lanes.assign(in_flight, Lane{});
    lanes_ = &lanes;
    budget_ = &budget;
    {
      std::lock_guard lock(mu_);
      active_ = 0;
      failed_ = false;
    }
    for (int lane = 0; lane < in_flight && budget.Take(); ++lane) {
      {
        std::lock_guard lock(mu_);
        ++active_;
      }
      lanes[lane].start = Clock::now();
      Issue(lane);
    }
    std::unique_lock lock(mu_);
    if (!idle_.wait_for(lock, kHangTimeout, [this] { return active_ == 0; })) {
      // Calls still in flight would touch freed state: give up on the whole run.
      Fail("async calls did not complete; giving up");
      std::_Exit(1);
    }
    return !failed_;
  }

 protected:
  // Starts one call in `lane`; it must lead to exactly one Completed(lane, ...).
  virtual void Issue(int lane) = 0;

  void Completed(int lane, bool ok) {
    Lane& state = (*lanes_)[lane];
    state.latencies_us.push_back(MicrosSince(state.start));
    if (ok && budget_->Take()) {
      state.start = Clock::now();
      Issue(lane);
      return;
    }
    std::lock_guard lock(mu_);
    if (!ok) failed_ = true;
    if (--active_ == 0) idle_.notify_all();
  }

 private:
  std::vector<Lane>* lanes_ = nullptr;
  Budget* budget_ = nullptr;
  std::mutex mu_;
  std::condition_variable idle_;
  int active_ = 0;
  bool failed_ = false;
};

// micro: the generated stub over one transport, as an application would use it.
class MicroClient final : public AsyncClient {
 public:
  // Echo goes to the default server, InlineEcho to the one with inline handlers.
  static std::unique_ptr<MicroClient> Connect(const std::string& url) {
    micro::TransportOptions options;
    options.url = url;
    auto transport = micro::ConnectNats(options);
    if (!transport.ok()) {
      Fail(transport.status().ToString());
      return nullptr;
    }
    auto client = std::unique_ptr<MicroClient>(new MicroClient);
    auto shared = std::make_shared<micro::Client>(*transport);
    client->stub_ = micro::testing::Echo::NewStub(shared);
    micro::ClientOptions inline_callbacks;
    inline_callbacks.inline_callbacks = true;
    client->inline_callbacks_stub_ = micro::testing::Echo::NewStub(
        std::make_shared<micro::Client>(*transport, std::move(inline_callbacks)));
    client->inline_stub_ = micro::bench::InlineEcho::NewStub(shared);
    client->raw_stub_.client = shared;
    return client;
  }

  SyncCall Sync(const EchoRequest& request, Kind kind) {
    if (kind == Kind::kMicroInlineSync) return SyncOn(*inline_stub_, request);
    if (kind == Kind::kMicroSyncToRaw) return SyncOn(raw_stub_, request);
    return SyncOn(*stub_, request);
  }

  // Before each async run.
  void set_request(const EchoRequest* request, Kind kind) {
    request_ = request;
    async_stub_ = kind == Kind::kMicroAsyncInline ? inline_callbacks_stub_.get() : stub_.get();
    calls_.resize(kAsyncOnlyInFlight);
  }

 private:
  struct Call {
    std::unique_ptr<micro::ClientContext> context;
    EchoReply reply;
  };

  void Issue(int lane) override {
    Call& call = calls_[lane];
    call.context = std::make_unique<micro::ClientContext>();  // One per call.
    call.context->set_timeout(absl::FromChrono(kCallTimeout));
    call.reply.Clear();
    async_stub_->AsyncEcho(
        call.context.get(), *request_, &call.reply, [this, lane, &call](absl::Status status) {
          bool ok = status.ok() ? SamePayload(call.reply, *request_)
                                : Fail(absl::StrCat("micro AsyncEcho: ", status.ToString()));
          Completed(lane, ok);
        });
  }

  template <typename Stub>
  static SyncCall SyncOn(Stub& stub, const EchoRequest& request) {
    return [&stub, &request] {
      micro::ClientContext context;
      context.set_timeout(absl::FromChrono(kCallTimeout));
      EchoReply reply;
      absl::Status status = stub.Echo(&context, request, &reply);
      if (!status.ok()) return Fail(absl::StrCat("micro Echo: ", status.ToString()));
      return SamePayload(reply, request);
    };
  }

  std::unique_ptr<micro::testing::Echo::Stub> stub_;
  std::unique_ptr<micro::bench::InlineEcho::Stub> inline_stub_;
  // Echo from a client with ClientOptions::inline_callbacks.
  std::unique_ptr<micro::testing::Echo::Stub> inline_callbacks_stub_;
  micro::testing::Echo::Stub* async_stub_ = nullptr;  // The one async runs use.
  // The raw replier's subject as a micro method: it answers a plain NATS
  // message, which micro reads as an OK reply.
  struct RawReplierStub {
    static constexpr micro::MethodInfo kEcho{
        "micro.bench.RawEcho",    "Echo", micro::bench::kRawSubject,
        micro::RpcKind::kUnary,   false,  "micro.testing.EchoRequest",
        "micro.testing.EchoReply"};
    absl::Status Echo(micro::ClientContext* context, const EchoRequest& request, EchoReply* reply) {
      return client->Call(context, kEcho, request, reply);
    }
    std::shared_ptr<micro::Client> client;
  } raw_stub_;
  const EchoRequest* request_ = nullptr;
  std::vector<Call> calls_;  // One per lane.
};

// Raw nats.c: natsConnection_Request from each thread, and for the async
// form a SendAsap connection that publishes requests with reply subjects
// `<inbox>.<lane>` and takes every reply on one `<inbox>.*` subscription.
class RawNatsClient final : public AsyncClient {
 public:
  static std::unique_ptr<RawNatsClient> Connect(const std::string& url) {
    auto client = std::unique_ptr<RawNatsClient>(new RawNatsClient);
    client->requester_ = micro::bench::ConnectRaw(url, /*send_asap=*/false);
    client->async_ = micro::bench::ConnectRaw(url, /*send_asap=*/true);
    if (client->requester_ == nullptr || client->async_ == nullptr) return nullptr;
    natsInbox* inbox = nullptr;
    if (!NatsOk(natsInbox_Create(&inbox), "natsInbox_Create")) return nullptr;
    client->inbox_ = static_cast<const char*>(inbox);
    natsInbox_Destroy(inbox);
    natsSubscription* subscription = nullptr;
    if (!NatsOk(natsConnection_Subscribe(&subscription, client->async_.get(),
                                         (client->inbox_ + ".*").c_str(), &OnReply, client.get()),
                "natsConnection_Subscribe") ||
        !NatsOk(natsSubscription_SetPendingLimits(subscription, -1, -1), "pending limits")) {
      return nullptr;
    }
    client->replies_.reset(subscription);
    if (!NatsOk(natsConnection_Flush(client->async_.get()), "natsConnection_Flush")) {
      return nullptr;
    }
    return client;
  }

  ~RawNatsClient() override {
    replies_.reset();  // No callback may run past this point.
  }

  // To the raw replier, or to `subject` (a micro server's method, which
  // takes a request without headers).
  SyncCall Sync(const EchoRequest& request, const char* subject = micro::bench::kRawSubject) {
    return [this, &request, subject] {
      std::string data = request.SerializeAsString();
      natsMsg* raw_reply = nullptr;
      if (!NatsOk(natsConnection_Request(&raw_reply, requester_.get(), subject, data.data(),
                                         static_cast<int>(data.size()),
                                         std::chrono::milliseconds(kCallTimeout).count()),
                  "natsConnection_Request")) {
        return false;
      }
      return ParseReply(NatsPtr<natsMsg>(raw_reply), request);
    };
  }

  // Before each async run.
  void set_request(const EchoRequest* request) {
    request_ = request;
    for (size_t lane = reply_subjects_.size(); lane < kAsyncOnlyInFlight; ++lane) {
      reply_subjects_.push_back(absl::StrCat(inbox_, ".", lane));
    }
  }

 private:
  static bool ParseReply(NatsPtr<natsMsg> msg, const EchoRequest& request) {
    EchoReply reply;
    if (!reply.ParseFromArray(natsMsg_GetData(msg.get()), natsMsg_GetDataLength(msg.get()))) {
      return Fail("raw reply does not decode");
    }
    return SamePayload(reply, request);
  }

  void Issue(int lane) override {
    std::string data = request_->SerializeAsString();
    if (!NatsOk(natsConnection_PublishRequest(async_.get(), micro::bench::kRawSubject,
                                              reply_subjects_[lane].c_str(), data.data(),
                                              static_cast<int>(data.size())),
                "natsConnection_PublishRequest")) {
      Completed(lane, false);
    }
  }

  static void OnReply(natsConnection*, natsSubscription*, natsMsg* msg, void* closure) {
    auto* self = static_cast<RawNatsClient*>(closure);
    NatsPtr<natsMsg> owned(msg);
    const char* subject = natsMsg_GetSubject(msg);
    int lane = 0;
    if (!absl::SimpleAtoi(subject + self->inbox_.size() + 1, &lane) || lane < 0 ||
        lane >= kAsyncOnlyInFlight) {
      Fail(absl::StrCat("raw reply on unexpected subject ", subject));
      return;
    }
    self->Completed(lane, ParseReply(std::move(owned), *self->request_));
  }

  NatsPtr<natsConnection> requester_;
  NatsPtr<natsConnection> async_;
  std::string inbox_;
  NatsPtr<natsSubscription> replies_;
  std::vector<std::string> reply_subjects_;
  const EchoRequest* request_ = nullptr;
};

// gRPC: one channel (one HTTP/2 connection) shared by the calling threads.
class GrpcClient {
 public:
  explicit GrpcClient(int port)
      : stub_(micro::bench::GrpcEcho::NewStub(grpc::CreateChannel(
            absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials()))) {}

  SyncCall Sync(const EchoRequest& request) {
    return [this, &request] {
      grpc::ClientContext context;
      context.set_deadline(std::chrono::system_clock::now() + kCallTimeout);
      EchoReply reply;
      grpc::Status status = stub_->Echo(&context, request, &reply);
      if (!status.ok()) return Fail(absl::StrCat("gRPC Echo: ", status.error_message()));
      return SamePayload(reply, request);
    };
  }

 private:
  std::unique_ptr<micro::bench::GrpcEcho::Stub> stub_;
};

// What the slices of one workload add up to.
struct Totals {
  std::vector<double> latencies_us;
  double seconds = 0;
  Usage client, server, nats;
};

struct Result {
  long calls = 0;
  double calls_per_s = 0, p50_us = 0, p99_us = 0;
  double client_cpu_us = 0, server_cpu_us = 0, nats_cpu_us = 0;  // Per call.
  double client_switches = 0, server_switches = 0;               // Per call.
};

struct Row {
  Kind kind;
  int payload;
  int in_flight;
  Totals totals;
  Result result;
};

// Nearest-rank percentile of sorted values.
double Percentile(const std::vector<double>& sorted, double p) {
  size_t rank = static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(sorted.size())));
  return sorted[std::clamp<size_t>(rank, 1, sorted.size()) - 1];
}

Result Summarize(Totals totals) {
  std::vector<double>& latencies = totals.latencies_us;
  std::sort(latencies.begin(), latencies.end());
  Result result;
  result.calls = static_cast<long>(latencies.size());
  const double calls = static_cast<double>(result.calls);
  result.calls_per_s = calls / totals.seconds;
  result.p50_us = Percentile(latencies, 50);
  result.p99_us = Percentile(latencies, 99);
  result.client_cpu_us = totals.client.cpu_s * 1e6 / calls;
  result.server_cpu_us = totals.server.cpu_s * 1e6 / calls;
  result.nats_cpu_us = totals.nats.cpu_s * 1e6 / calls;
  result.client_switches = totals.client.switches / calls;
  result.server_switches = totals.server.switches / calls;
  return result;
}

// Everything the run talks to: the nats-server, the servers and the clients.
class Bench {
 public:
  explicit Bench(Config config) : config_(std::move(config)) {}

  bool Start() {
    auto nats = micro::testing::NatsServer::Start();
    if (!nats.ok()) return Fail(nats.status().ToString());
    nats_ = *std::move(nats);
    // A contender's key starts with its client's framework.
    std::set<std::string> clients;
    for (const Contender& contender : kContenders) {
      if (!Selected(contender)) continue;
      clients.insert(std::string(contender.key, std::strchr(contender.key, '-')));
      if (peers_.count(contender.peer) == 0 && !StartPeer(contender.peer)) return false;
    }
    if (clients.count("micro") && (micro_ = MicroClient::Connect(nats_->url())) == nullptr) {
      return false;
    }
    if (clients.count("nats") && (nats_client_ = RawNatsClient::Connect(nats_->url())) == nullptr) {
      return false;
    }
    if (clients.count("grpc")) grpc_ = std::make_unique<GrpcClient>(grpc_port_);
    return true;
  }

  // Runs every selected workload in slices that alternate with the other
  // contenders of the same payload and calls in flight, so that outside
  // load, which comes and goes, hits all alike.
  bool RunAll() {
    for (int payload : config_.payloads) {
      for (int in_flight : config_.in_flight) {
        for (const Contender& contender : kContenders) {
          if (!Selected(contender) || (!contender.async && in_flight == kAsyncOnlyInFlight)) {
            continue;
          }
          // 4 KiB rows are for latency; throughput is measured with 16 B.
          if (payload != config_.payloads.front() && in_flight != 1) continue;
          rows_.push_back(Row{contender.kind, payload, in_flight, {}, {}});
        }
      }
    }
    const int rounds = config_.calls > 0 ? 1 : config_.rounds;
    for (size_t first = 0; first < rows_.size();) {
      size_t end = first;
      while (end < rows_.size() && rows_[end].payload == rows_[first].payload &&
             rows_[end].in_flight == rows_[first].in_flight) {
        ++end;
      }
      for (int round = 0; round < rounds; ++round) {
        for (size_t i = first; i < end; ++i) {
          if (!MeasureSlice(rows_[i], round == 0, rounds)) {
            return Fail(absl::StrCat(Find(rows_[i].kind).name, ", ", rows_[i].payload, " B, ",
                                     rows_[i].in_flight, " in flight: failed"));
          }
        }
      }
      first = end;
    }
    for (Row& row : rows_) {
      if (row.totals.latencies_us.empty()) return Fail("a workload made no calls");
      row.result = Summarize(std::move(row.totals));
    }
    return true;
  }

  // The stream and broker workloads of the selected contenders, unless
  // profiling: one stream and the broker against this run's nats-server.
  bool RunRates() {
    if (config_.calls > 0) return true;
    micro::bench::RateOptions options;
    options.url = nats_->url();
    options.nats_pid = nats_->pid();
    options.runs = config_.rate_runs;
    options.stream_scale = config_.stream_scale;
    options.broker_messages = config_.broker_messages;
    options.selected = [this](const std::string& key) { return Selected(key); };
    for (auto measure : {&micro::bench::MeasureStreamRates, &micro::bench::MeasureBrokerRates}) {
      std::optional<std::vector<RateRow>> rows = measure(options);
      if (!rows) return false;
      rate_rows_.insert(rate_rows_.end(), rows->begin(), rows->end());
    }
    return true;
  }

  // Cached registry lookup + round-robin pick + Mark, as a selecting client
  // adds them to each call; nanoseconds per call. Needs the micro server.
  std::optional<double> MeasureSelector() {
    if (!peers_.count("micro")) return std::nullopt;
    micro::TransportOptions options;
    options.url = nats_->url();
    auto transport = micro::ConnectNats(options);
    if (!transport.ok()) return std::nullopt;
    auto registry = micro::NewNatsRegistry(*transport);
    if (!registry.ok()) return std::nullopt;
    auto cache = micro::NewCachingRegistry(*registry);
    if (!cache.ok()) return std::nullopt;
    micro::SelectorOptions selector_options;
    selector_options.strategy = micro::SelectStrategy::kRoundRobin;
    auto selector = micro::NewSelector(*cache, selector_options);
    if (!selector.ok()) return std::nullopt;
    micro::SelectFilter filter;
    filter.endpoint = std::string(micro::testing::Echo::Methods::kEcho.subject);
    constexpr char kService[] = "micro-testing-Echo";
    constexpr int kPicks = 200'000;
    for (int i = 0; i < 2; ++i) {  // The first fills the cache; the second is measured.
      Clock::time_point start = Clock::now();
      for (int pick = 0; pick < kPicks; ++pick) {
        auto instance = (*selector)->Select(kService, filter);
        if (!instance.ok()) {
          Fail(absl::StrCat("selector: ", instance.status().ToString()));
          return std::nullopt;
        }
        (*selector)->Mark((*instance)->id, absl::OkStatus());
      }
      if (i == 1) return MicrosSince(start) * 1000 / kPicks;
    }
    return std::nullopt;
  }

  void Stop() {
    micro_.reset();
    nats_client_.reset();
    grpc_.reset();
    for (auto& [kind, peer] : peers_) (void)peer->Terminate(kPeerStopGrace);
  }

  const std::vector<Row>& rows() const { return rows_; }
  const std::vector<RateRow>& rate_rows() const { return rate_rows_; }

 private:
  bool Selected(const Contender& contender) const {
    if (!contender.diagnostic) return Selected(contender.key);
    return std::find(config_.only.begin(), config_.only.end(), contender.key) != config_.only.end();
  }
  bool Selected(const std::string& key) const {
    return config_.only.empty() ||
           std::find(config_.only.begin(), config_.only.end(), key) != config_.only.end();
  }

  bool StartPeer(const std::string& kind) {
    std::vector<std::string> argv = config_.peer_prefix;
    argv.push_back(PeerBinary());
    argv.push_back(kind);
    argv.insert(argv.end(), {"--url", nats_->url()});
    if (kind == "grpc") {
      grpc_port_ = micro::testing::PickFreePort();
      argv.insert(argv.end(), {"--port", absl::StrCat(grpc_port_)});
    }
    auto peer = micro::testing::ChildProcess::StartAndWaitReady(argv, kPeerReadyTimeout);
    if (!peer.ok()) return Fail(absl::StrCat("bench_peer ", kind, ": ", peer.status().ToString()));
    peers_[kind] = *std::move(peer);
    return true;
  }

  // bench_peer sits next to this binary.
  static std::string PeerBinary() {
    char path[4096];
    ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 1);
    std::string self(path, n > 0 ? n : 0);
    return self.substr(0, self.rfind('/') + 1) + "bench_peer";
  }

  bool RunCalls(const Row& row, const EchoRequest& request, Budget& budget,
                std::vector<Lane>& lanes) {
    switch (row.kind) {
      case Kind::kMicroSync:
      case Kind::kMicroInlineSync:
      case Kind::kMicroSyncToRaw:
        return RunSync(micro_->Sync(request, row.kind), row.in_flight, budget, lanes);
      case Kind::kMicroAsync:
      case Kind::kMicroAsyncInline:
        micro_->set_request(&request, row.kind);
        return micro_->Run(row.in_flight, budget, lanes);
      case Kind::kNatsSync:
        return RunSync(nats_client_->Sync(request), row.in_flight, budget, lanes);
      case Kind::kNatsAsync:
        nats_client_->set_request(&request);
        return nats_client_->Run(row.in_flight, budget, lanes);
      case Kind::kGrpcSync:
        return RunSync(grpc_->Sync(request), row.in_flight, budget, lanes);
      case Kind::kNatsSyncToMicro:
        return RunSync(
            nats_client_->Sync(request, micro::testing::Echo::Methods::kEcho.subject.data()),
            row.in_flight, budget, lanes);
      case Kind::kNatsSyncToMicroInline:
        return RunSync(
            nats_client_->Sync(request, micro::bench::InlineEcho::Methods::kEcho.subject.data()),
            row.in_flight, budget, lanes);
    }
    return false;
  }

  // One slice of `row`'s workload, added to its totals.
  bool MeasureSlice(Row& row, bool warm_up, int rounds) {
    EchoRequest request;
    request.set_payload(std::string(row.payload, 'p'));
    std::vector<Lane> lanes;
    const bool by_count = config_.calls > 0;
    if (warm_up) {
      Budget warmup = by_count ? Budget::Calls(std::min(config_.calls, 200))
                               : Budget::For(config_.warmup_seconds);
      if (!RunCalls(row, request, warmup, lanes)) return false;
    }

    const pid_t server = peers_.at(Find(row.kind).peer)->pid();
    const Usage client_before = SelfUsage();
    const Usage server_before = ProcessUsage(server);
    const Usage nats_before = ProcessUsage(nats_->pid());
    const Clock::time_point begin = Clock::now();
    Budget budget = by_count ? Budget::Calls(config_.calls) : Budget::For(config_.seconds / rounds);
    if (!RunCalls(row, request, budget, lanes)) return false;
    Totals& totals = row.totals;
    totals.seconds += std::chrono::duration<double>(Clock::now() - begin).count();
    totals.client += SelfUsage() - client_before;
    totals.server += ProcessUsage(server) - server_before;
    totals.nats += ProcessUsage(nats_->pid()) - nats_before;
    for (const Lane& lane : lanes) {
      totals.latencies_us.insert(totals.latencies_us.end(), lane.latencies_us.begin(),
                                 lane.latencies_us.end());
    }
    return true;
  }

  const Config config_;
  std::unique_ptr<micro::testing::NatsServer> nats_;
  std::map<std::string, std::unique_ptr<micro::testing::ChildProcess>> peers_;
  int grpc_port_ = 0;
  std::unique_ptr<MicroClient> micro_;
  std::unique_ptr<RawNatsClient> nats_client_;
  std::unique_ptr<GrpcClient> grpc_;
  std::vector<Row> rows_;
  std::vector<RateRow> rate_rows_;
};

// The result of `kind` at (`payload`, `in_flight`), if it ran.
const Result* Lookup(const std::vector<Row>& rows, Kind kind, int payload, int in_flight) {
  for (const Row& row : rows) {
    if (row.kind == kind && row.payload == payload && row.in_flight == in_flight) {
      return &row.result;
    }
  }
  return nullptr;
}

// One line of the table and one object of the JSON's "rows": a unary
// workload, or a stream or broker one. Unset values print as "-" and are
// null in the JSON.
struct Line {
  std::string workload;
  std::string key;
  std::string name;
  size_t bytes = 0;
  std::optional<double> in_flight, calls, sent, delivered, dropped, rate, p50_us, p99_us;
  std::optional<double> client_cpu_us, server_cpu_us, nats_cpu_us, client_switches, server_switches;
  std::optional<double> rate_vs_raw, rate_vs_grpc, p50_vs_raw, p50_vs_grpc;
};

struct Column {
  const char* header;  // In the table; nullptr: only in the JSON.
  const char* json;
  const char* format;  // printf's, for the table.
  std::optional<double> Line::*value;
};

constexpr Column kColumns[] = {
    {"in flight", "in_flight", "%.0f", &Line::in_flight},
    {nullptr, "calls", nullptr, &Line::calls},
    {nullptr, "sent", nullptr, &Line::sent},
    {nullptr, "delivered", nullptr, &Line::delivered},
    {nullptr, "dropped", nullptr, &Line::dropped},
    {"calls or msgs/s", "per_s", "%.0f", &Line::rate},
    {"p50 us", "p50_us", "%.1f", &Line::p50_us},
    {"p99 us", "p99_us", "%.1f", &Line::p99_us},
    {"CPU us/op client", "client_cpu_us", "%.1f", &Line::client_cpu_us},
    {"server", "server_cpu_us", "%.1f", &Line::server_cpu_us},
    {"nats-server", "nats_server_cpu_us", "%.1f", &Line::nats_cpu_us},
    {"context switches/op client", "client_switches", "%.1f", &Line::client_switches},
    {"server", "server_switches", "%.1f", &Line::server_switches},
    {"rate vs raw nats.c", "rate_vs_raw_nats", "%.2fx", &Line::rate_vs_raw},
    {"vs gRPC", "rate_vs_grpc", "%.2fx", &Line::rate_vs_grpc},
    {"p50 vs nats.c Request", "p50_vs_nats_request", "%.2fx", &Line::p50_vs_raw},
    {"vs gRPC", "p50_vs_grpc", "%.2fx", &Line::p50_vs_grpc},
};

// `value / base->*field`, if there is a base.
std::optional<double> Ratio(double value, const Result* base, double Result::*field) {
  if (base == nullptr || base->*field <= 0) return std::nullopt;
  return value / (base->*field);
}

Line NewLine(std::string workload, std::string key, std::string name, size_t bytes) {
  Line line;
  line.workload = std::move(workload);
  line.key = std::move(key);
  line.name = std::move(name);
  line.bytes = bytes;
  return line;
}

std::vector<Line> Lines(const std::vector<Row>& rows, const std::vector<RateRow>& rate_rows) {
  std::vector<Line> lines;
  for (const Row& row : rows) {
    const Result& r = row.result;
    const Result* nats = Lookup(rows, Kind::kNatsSync, row.payload, row.in_flight);
    const Result* grpc = Lookup(rows, Kind::kGrpcSync, row.payload, row.in_flight);
    Line line = NewLine("unary", Find(row.kind).key, Find(row.kind).name, row.payload);
    line.in_flight = row.in_flight;
    line.calls = static_cast<double>(r.calls);
    line.rate = r.calls_per_s;
    line.p50_us = r.p50_us;
    line.p99_us = r.p99_us;
    line.client_cpu_us = r.client_cpu_us;
    line.server_cpu_us = r.server_cpu_us;
    // gRPC does not go through nats-server.
    if (row.kind != Kind::kGrpcSync) line.nats_cpu_us = r.nats_cpu_us;
    line.client_switches = r.client_switches;
    line.server_switches = r.server_switches;
    line.rate_vs_raw = Ratio(r.calls_per_s, nats, &Result::calls_per_s);
    line.rate_vs_grpc = Ratio(r.calls_per_s, grpc, &Result::calls_per_s);
    line.p50_vs_raw = Ratio(r.p50_us, nats, &Result::p50_us);
    line.p50_vs_grpc = Ratio(r.p50_us, grpc, &Result::p50_us);
    lines.push_back(std::move(line));
  }
  // Both ends of these run in this process: its costs are the client's.
  for (const RateRow& row : rate_rows) {
    Line line = NewLine(row.workload, row.key, row.contender, row.bytes);
    line.sent = static_cast<double>(row.sent);
    if (row.delivered >= 0) {
      line.delivered = static_cast<double>(row.delivered);
      line.dropped = static_cast<double>(row.dropped);
    }
    line.rate = row.rate;
    line.client_cpu_us = row.cpu_us;
    if (row.nats_cpu_us >= 0) line.nats_cpu_us = row.nats_cpu_us;
    line.client_switches = row.switches;
    if (row.vs_raw > 0) line.rate_vs_raw = row.vs_raw;
    lines.push_back(std::move(line));
  }
  return lines;
}

// Calls, or messages delivered of those sent.
std::string Count(const Line& line) {
  if (line.calls) return absl::StrFormat("%.0f", *line.calls);
  if (!line.delivered) return absl::StrFormat("%.0f", line.sent.value_or(0));
  std::string count = absl::StrFormat("%.0f/%.0f", *line.delivered, line.sent.value_or(0));
  if (line.dropped.value_or(0) > 0) absl::StrAppendFormat(&count, ", %.0f dropped", *line.dropped);
  return count;
}

void PrintTable(const std::vector<Line>& lines) {
  std::string header = "| workload | client | size | calls or msgs delivered/sent |";
  std::string rule = "|---|---|---|---:|";
  for (const Column& column : kColumns) {
    if (column.header == nullptr) continue;
    absl::StrAppend(&header, " ", column.header, " |");
    absl::StrAppend(&rule, "---:|");
  }
  std::printf("%s\n%s\n", header.c_str(), rule.c_str());
  for (const Line& line : lines) {
    std::string text = absl::StrCat("| ", line.workload, " | ", line.name, " | ",
                                    SizeLabel(line.bytes), " | ", Count(line), " |");
    for (const Column& column : kColumns) {
      if (column.header == nullptr) continue;
      char value[32] = "-";
      if (const std::optional<double>& v = line.*column.value; v.has_value()) {
        std::snprintf(value, sizeof(value), column.format, *v);
      }
      absl::StrAppend(&text, " ", value, " |");
    }
    std::printf("%s\n", text.c_str());
  }
}

// One line per target of issues #8 and #6, with the numbers it was judged on.
struct Target {
  std::string what;
  double value;
  double limit;
  bool at_most;  // value <= limit meets it; otherwise value >= limit does.
};

std::vector<Target> Targets(const std::vector<Row>& rows, const std::vector<RateRow>& rate_rows,
                            std::optional<double> selector_ns) {
  std::vector<Target> targets;
  auto ratio = [&](Kind kind, Kind base, int payload, int in_flight, double Result::*field,
                   const std::string& what, double limit, bool at_most) {
    const Result* a = Lookup(rows, kind, payload, in_flight);
    const Result* b = Lookup(rows, base, payload, in_flight);
    if (a == nullptr || b == nullptr || b->*field <= 0) return;
    targets.push_back({what, a->*field / (b->*field), limit, at_most});
  };
  for (int payload : {16, 4096}) {
    std::string label = SizeLabel(payload);
    ratio(Kind::kMicroSync, Kind::kNatsSync, payload, 1, &Result::p50_us,
          absl::StrCat("p50 latency, ", label, ", micro sync / raw nats.c Request"), 1.05, true);
    ratio(
        Kind::kMicroInlineSync, Kind::kNatsSync, payload, 1, &Result::p50_us,
        absl::StrCat("p50 latency, ", label, ", micro sync, inline handlers / raw nats.c Request"),
        1.05, true);
    ratio(Kind::kMicroSync, Kind::kGrpcSync, payload, 1, &Result::p50_us,
          absl::StrCat("p50 latency, ", label, ", micro sync / gRPC (stretch)"), 1.0, true);
  }
  for (Kind kind : {Kind::kMicroSync, Kind::kMicroAsync, Kind::kMicroAsyncInline}) {
    std::string name = Find(kind).key;
    ratio(kind, Kind::kGrpcSync, 16, 64, &Result::calls_per_s,
          absl::StrCat("calls/s at 64 in flight, ", name, " / gRPC sync"), 2.0, false);
    ratio(kind, Kind::kNatsSync, 16, 64, &Result::calls_per_s,
          absl::StrCat("calls/s at 64 in flight, ", name, " / raw nats.c Request"), 1.5, false);
    if (const Result* r = Lookup(rows, kind, 16, 64)) {
      targets.push_back(
          {absl::StrCat("client CPU us/call at 64 in flight, ", name), r->client_cpu_us, 15, true});
    }
  }
  for (const RateRow& row : rate_rows) {
    if (row.key == micro::bench::kStreamKeys[0] && row.vs_raw > 0) {
      targets.push_back({absl::StrCat("stream msgs/s, ", SizeLabel(row.bytes),
                                      ", micro stream / best raw nats.c pub/sub"),
                         row.vs_raw, 0.7, false});
    }
  }
  // Issue #6's: each broker rate at least 0.9x raw nats.c's (SendAsap).
  for (const RateRow& row : rate_rows) {
    const bool micro_broker =
        row.key == micro::bench::kBrokerKeys[0] || row.key == micro::bench::kBrokerKeys[1];
    if (micro_broker && row.vs_raw > 0) {
      targets.push_back({absl::StrCat(row.workload, ", ", SizeLabel(row.bytes), ", ", row.contender,
                                      " / raw nats.c SendAsap"),
                         row.vs_raw, 0.9, false});
    }
  }
  if (selector_ns) {
    targets.push_back(
        {"cached registry lookup + selector pick + mark, us", *selector_ns / 1000, 1, true});
  }
  return targets;
}

bool Met(const Target& target) {
  return target.at_most ? target.value <= target.limit : target.value >= target.limit;
}

void PrintTargets(const std::vector<Target>& targets) {
  std::printf("\n| target | measured | limit | met |\n|---|---:|---:|---|\n");
  for (const Target& target : targets) {
    std::printf("| %s | %.3f | %s %.2f | %s |\n", target.what.c_str(), target.value,
                target.at_most ? "<=" : ">=", target.limit, Met(target) ? "yes" : "NO");
  }
}

std::string LoadAverage() {
  std::ifstream in("/proc/loadavg");
  std::string one, five, fifteen;
  in >> one >> five >> fifteen;
  return absl::StrCat(one, " ", five, " ", fifteen);
}

bool WriteJson(const Config& config, const std::vector<Line>& lines,
               const std::vector<Target>& targets, const std::string& load_before,
               const std::string& load_after) {
  std::string json = absl::StrFormat(
      "{\n  \"seconds_per_workload\": %g,\n  \"calls_per_workload\": %d,\n  \"rounds\": %d,\n"
      "  \"rate_runs\": %d,\n  \"stream_scale\": %g,\n  \"broker_messages\": %d,\n"
      "  \"cpus\": %d,\n  \"load_average_before\": \"%s\",\n  \"load_average_after\": \"%s\",\n"
      "  \"rows\": [",
      config.seconds, config.calls, config.rounds, config.rate_runs, config.stream_scale,
      config.broker_messages, static_cast<int>(std::thread::hardware_concurrency()), load_before,
      load_after);
  for (size_t i = 0; i < lines.size(); ++i) {
    const Line& line = lines[i];
    absl::StrAppendFormat(
        &json, "%s\n    {\"workload\": \"%s\", \"client\": \"%s\", \"payload_bytes\": %d",
        i == 0 ? "" : ",", line.workload, line.key, line.bytes);
    for (const Column& column : kColumns) {
      const std::optional<double>& value = line.*column.value;
      absl::StrAppendFormat(&json, ", \"%s\": %s", column.json,
                            value ? absl::StrFormat("%.6g", *value) : "null");
    }
    json += "}";
  }
  json += "\n  ],\n  \"targets\": [";
  for (size_t i = 0; i < targets.size(); ++i) {
    const Target& t = targets[i];
    absl::StrAppendFormat(&json,
                          "%s\n    {\"target\": \"%s\", \"measured\": %.4f, \"limit\": %.2f, "
                          "\"at_most\": %s, \"met\": %s}",
                          i == 0 ? "" : ",", t.what, t.value, t.limit, t.at_most ? "true" : "false",
                          Met(t) ? "true" : "false");
  }
  json += "\n  ]\n}\n";
  std::ofstream out(config.json_path);
  out << json;
  out.close();
  return out.good() || Fail(absl::StrCat("cannot write ", config.json_path));
}

template <typename T>
bool ParseList(const std::string& text, std::vector<T>* out) {
  out->clear();
  for (absl::string_view part : absl::StrSplit(text, ',')) {
    T value;
    if constexpr (std::is_same_v<T, std::string>) {
      value = std::string(part);
    } else if (!absl::SimpleAtoi(part, &value) || value <= 0) {
      return false;
    }
    out->push_back(value);
  }
  return !out->empty();
}

// Every contender --only may name.
bool KnownKey(const std::string& key) {
  return std::any_of(std::begin(kContenders), std::end(kContenders),
                     [&key](const Contender& c) { return key == c.key; }) ||
         std::find(std::begin(micro::bench::kStreamKeys), std::end(micro::bench::kStreamKeys),
                   key) != std::end(micro::bench::kStreamKeys) ||
         std::find(std::begin(micro::bench::kBrokerKeys), std::end(micro::bench::kBrokerKeys),
                   key) != std::end(micro::bench::kBrokerKeys);
}

constexpr char kUsage[] =
    "usage: micro_compare [--quick] [--seconds S] [--warmup S] [--rounds R] [--calls N]\n"
    "                     [--rate-runs R] [--stream-scale F] [--broker-messages N]\n"
    "                     [--json out.json]\n"
    "                     [--only micro-sync,micro-inline-sync,micro-async,micro-async-inline,\n"
    "                             nats-sync,nats-async,grpc-sync,micro-stream,nats-pubsub,\n"
    "                             nats-pubsub-asap,\n"
    "                             micro-broker,micro-broker-inline,nats-events-asap,nats-events]\n"
    "                     [--payload 16,4096] [--in-flight 1,8,64,512]\n"
    "                     [--peer-prefix 'command args']\n";

std::optional<Config> ParseFlags(int argc, char** argv) {
  Config config;
  // --quick sets smaller defaults, whatever its place; other flags still win.
  if (std::find(argv + 1, argv + argc, std::string("--quick")) != argv + argc) {
    config.seconds = 0.5;
    config.warmup_seconds = 0.1;
    config.rounds = 2;
    config.rate_runs = 1;
    config.stream_scale = 0.1;
    config.broker_messages = 20000;
  }
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--quick") continue;
    if (i + 1 >= argc) return std::nullopt;
    const std::string value = argv[++i];
    bool ok = true;
    if (flag == "--seconds") {
      ok = absl::SimpleAtod(value, &config.seconds) && config.seconds > 0;
    } else if (flag == "--warmup") {
      ok = absl::SimpleAtod(value, &config.warmup_seconds) && config.warmup_seconds >= 0;
    } else if (flag == "--rounds") {
      ok = absl::SimpleAtoi(value, &config.rounds) && config.rounds > 0;
    } else if (flag == "--calls") {
      ok = absl::SimpleAtoi(value, &config.calls) && config.calls > 0;
    } else if (flag == "--rate-runs") {
      ok = absl::SimpleAtoi(value, &config.rate_runs) && config.rate_runs > 0;
    } else if (flag == "--stream-scale") {
      ok = absl::SimpleAtod(value, &config.stream_scale) && config.stream_scale > 0;
    } else if (flag == "--broker-messages") {
      ok = absl::SimpleAtoi(value, &config.broker_messages) && config.broker_messages > 0;
    } else if (flag == "--json") {
      config.json_path = value;
    } else if (flag == "--only") {
      ok = ParseList(value, &config.only) &&
           std::all_of(config.only.begin(), config.only.end(), KnownKey);
    } else if (flag == "--payload") {
      ok = ParseList(value, &config.payloads);
    } else if (flag == "--in-flight") {
      ok = ParseList(value, &config.in_flight);
    } else if (flag == "--peer-prefix") {
      config.peer_prefix = absl::StrSplit(value, ' ', absl::SkipEmpty());
    } else {
      ok = false;
    }
    if (!ok) return std::nullopt;
  }
  return config;
}

}  // namespace

int main(int argc, char** argv) {
  micro::bench::program = "micro_compare";
  std::optional<Config> config = ParseFlags(argc, argv);
  if (!config) {
    std::fprintf(stderr, "%s", kUsage);
    return 2;
  }
  const std::string load_before = LoadAverage();
  Bench bench(*config);
  if (!bench.Start() || !bench.RunAll() || !bench.RunRates()) return 1;
  // Profiling runs (--calls) count instructions of the calls alone.
  std::optional<double> selector_ns = config->calls > 0 ? std::nullopt : bench.MeasureSelector();
  bench.Stop();
  const std::string load_after = LoadAverage();

  std::printf("micro_compare: %u CPUs, load average %s before, %s after\n",
              std::thread::hardware_concurrency(), load_before.c_str(), load_after.c_str());
  if (config->calls > 0) {
    std::printf("unary: %d calls per workload\n\n", config->calls);
  } else {
    std::printf(
        "unary: %g s per workload in %d slices alternating with the other clients'; streams and "
        "broker: %d runs per contender, interleaved, the median by rate\n\n",
        config->seconds, config->rounds, config->rate_runs);
  }
  const std::vector<Line> lines = Lines(bench.rows(), bench.rate_rows());
  PrintTable(lines);
  std::vector<Target> targets = Targets(bench.rows(), bench.rate_rows(), selector_ns);
  PrintTargets(targets);
  if (!config->json_path.empty() && !WriteJson(*config, lines, targets, load_before, load_after)) {
    return 1;
  }
  return 0;
}
