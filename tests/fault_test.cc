// Fault injection against real nats-servers on loopback (docs/RELIABILITY.md):
// a nats-server killed and restarted, a cluster node killed, a nats-server
// paused, a service process SIGKILLed mid-request and mid-stream, a flood of
// calls far above capacity. Each test counts what it did (printed as a
// `[counts]` line) and checks the invariants: no crash, no hang (every call
// and stream ends, watched with a bound far beyond its deadline), no call left
// unanswered where an answer is promised, no silent loss on streams (the
// messages a stream delivers are exactly the ones sent, in order, up to the
// status that ended it), and recovery once the fault is gone.
//
// Every wait is bounded; the recovery waits are generous (20-30 s) because
// the machine may be busy, and are liveness bounds, not speed targets.
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "micro/micro.h"
#include "micro/testing/echo.micro.h"
#include "micro/testing/streams.micro.h"
#include "support/echo_instance.h"
#include "support/nats_server.h"
#include "support/process.h"
#include "util/notification.h"

namespace micro {
namespace {

using ::micro::testing::ChildProcess;
using ::micro::testing::Echo;
using ::micro::testing::EchoInstance;
using ::micro::testing::EchoReply;
using ::micro::testing::EchoRequest;
using ::micro::testing::NatsCluster;
using ::micro::testing::NatsServer;
using ::micro::testing::Number;
using ::micro::testing::Numbers;

// A call or stream that has not ended this long after its deadline hangs.
constexpr absl::Duration kHangBound = absl::Seconds(10);
// How long a fault may take to heal (reconnect, resubscribe) on a busy machine.
constexpr absl::Duration kRecoveryBound = absl::Seconds(30);

std::string ServicePeerPath() { return absl::StrCat(MICRO_TEST_BINARY_DIR, "/service_peer"); }

TransportOptions Reconnecting(const std::string& url) {
  TransportOptions options;
  options.url = url;
  options.max_reconnect_attempts = -1;
  options.reconnect_wait = absl::Milliseconds(100);
  return options;
}

std::shared_ptr<Transport> MustConnect(const TransportOptions& options) {
  absl::StatusOr<std::shared_ptr<Transport>> transport = ConnectNats(options);
  EXPECT_TRUE(transport.ok()) << transport.status();
  return transport.ok() ? *transport : nullptr;
}

// What a test sent and how it ended, printed as one line.
class Counts {
 public:
  explicit Counts(std::string what) : what_(std::move(what)) {}

  void Sent() { sent_.fetch_add(1); }
  void Lost() { lost_.fetch_add(1); }
  void Ended(const absl::Status& status, absl::Duration late = absl::ZeroDuration()) {
    std::lock_guard lock(mu_);
    ++by_code_[status.code()];
    if (late > max_late_) max_late_ = late;
  }
  // Messages of streams: sent, delivered, and delivered out of order or
  // altered (a silent loss).
  void Messages(int64_t sent, int64_t received, int64_t silently_lost) {
    messages_sent_.fetch_add(sent);
    messages_received_.fetch_add(received);
    silently_lost_.fetch_add(silently_lost);
  }

  int sent() const { return sent_.load(); }
  int lost() const { return lost_.load(); }
  int64_t silently_lost() const { return silently_lost_.load(); }
  int Count(absl::StatusCode code) const {
    std::lock_guard lock(mu_);
    auto it = by_code_.find(code);
    return it == by_code_.end() ? 0 : it->second;
  }
  int ended() const {
    std::lock_guard lock(mu_);
    int total = 0;
    for (const auto& [code, count] : by_code_) total += count;
    return total;
  }
  // True if every ending had one of `codes`.
  bool OnlyEndedWith(std::vector<absl::StatusCode> codes) const {
    std::lock_guard lock(mu_);
    for (const auto& [code, count] : by_code_) {
      if (std::find(codes.begin(), codes.end(), code) == codes.end()) return false;
    }
    return true;
  }
  absl::Duration max_late() const {
    std::lock_guard lock(mu_);
    return max_late_;
  }

  std::string ToString() const {
    std::lock_guard lock(mu_);
    std::vector<std::string> failed;
    int answered = 0;
    for (const auto& [code, count] : by_code_) {
      if (code == absl::StatusCode::kOk) {
        answered = count;
      } else {
        failed.push_back(absl::StrCat(absl::StatusCodeToString(code), "=", count));
      }
    }
    std::string line =
        absl::StrCat("[counts] ", what_, ": sent=", sent_.load(), " answered=", answered,
                     " failed={", absl::StrJoin(failed, ", "), "} lost=", lost_.load());
    if (messages_sent_.load() > 0 || messages_received_.load() > 0) {
      absl::StrAppend(&line, " messages_sent=", messages_sent_.load(),
                      " messages_received=", messages_received_.load(),
                      " silently_lost=", silently_lost_.load());
    }
    absl::StrAppend(&line, " max_late_ms=", absl::ToInt64Milliseconds(max_late_));
    return line;
  }

  void Print() const {
    std::string line = ToString();
    std::printf("%s\n", line.c_str());
    std::fflush(stdout);
    ::testing::Test::RecordProperty("counts", line);
  }

 private:
  const std::string what_;
  std::atomic<int> sent_{0};
  std::atomic<int> lost_{0};
  std::atomic<int64_t> messages_sent_{0};
  std::atomic<int64_t> messages_received_{0};
  std::atomic<int64_t> silently_lost_{0};
  mutable std::mutex mu_;
  std::map<absl::StatusCode, int> by_code_;
  absl::Duration max_late_;
};

// An async unary call whose outcome outlives the caller's wait: the callback
// owns it, so a call that is given up on cannot touch freed memory.
struct PendingCall {
  ClientContext context;
  EchoReply reply;
  std::string text;
  absl::Time deadline;
  absl::Status status;
  internal::Notification done;
};

std::shared_ptr<PendingCall> StartCall(Echo::Stub& stub, const EchoRequest& request,
                                       absl::Duration timeout, Counts& counts) {
  auto call = std::make_shared<PendingCall>();
  call->context.set_timeout(timeout);
  call->text = request.text();
  call->deadline = absl::Now() + timeout;
  counts.Sent();
  stub.AsyncEcho(&call->context, request, &call->reply, [call](absl::Status status) {
    call->status = std::move(status);
    call->done.Notify();
  });
  return call;
}

// Counts the call as lost if it has not ended kHangBound after its deadline.
// Returns its status (DEADLINE_EXCEEDED when lost).
absl::Status AwaitCall(PendingCall& call, Counts& counts) {
  if (!call.done.WaitForNotificationWithTimeout(call.deadline + kHangBound - absl::Now())) {
    counts.Lost();
    return absl::DeadlineExceededError("the call hung");
  }
  absl::Status status = call.status;
  if (status.ok() && call.reply.text() != call.text) {
    status = absl::DataLossError("the reply is not the request's");
  }
  counts.Ended(status, status.code() == absl::StatusCode::kDeadlineExceeded
                           ? absl::Now() - call.deadline
                           : absl::ZeroDuration());
  return status;
}

absl::Status WatchedCall(Echo::Stub& stub, const EchoRequest& request, absl::Duration timeout,
                         Counts& counts) {
  return AwaitCall(*StartCall(stub, request, timeout, counts), counts);
}

// Threads calling Echo back to back until stopped, counting every call.
class UnaryLoad {
 public:
  UnaryLoad(Echo::Stub& stub, int threads, absl::Duration timeout, Counts& counts)
      : counts_(counts) {
    for (int i = 0; i < threads; ++i) {
      threads_.emplace_back([this, &stub, timeout, i] {
        for (int n = 0; !stop_.load(); ++n) {
          EchoRequest request;
          request.set_text(absl::StrCat("load-", i, "-", n));
          if (WatchedCall(stub, request, timeout, counts_).ok()) ok_.fetch_add(1);
        }
      });
    }
  }
  ~UnaryLoad() { Stop(); }

  void Stop() {
    stop_.store(true);
    for (std::thread& thread : threads_) {
      if (thread.joinable()) thread.join();
    }
  }

  int ok() const { return ok_.load(); }

  // Waits until `more` calls have succeeded after now; false after `bound`.
  bool WaitForSuccesses(int more, absl::Duration bound = kRecoveryBound) const {
    int target = ok() + more;
    for (absl::Time give_up = absl::Now() + bound; absl::Now() < give_up;) {
      if (ok() >= target) return true;
      absl::SleepFor(absl::Milliseconds(20));
    }
    return false;
  }

 private:
  Counts& counts_;
  std::atomic<bool> stop_{false};
  std::atomic<int> ok_{0};
  std::vector<std::thread> threads_;
};

// Bidirectional Double streams, each writing 1, 2, 3, ... and checking that
// the answers are 2, 4, 6, ... in order, until stopped or the stream ends.
// A stream still running kHangBound after Stop is cancelled and counted lost.
class StreamLoad {
 public:
  StreamLoad(Numbers::Stub& stub, int streams, Counts& counts) : counts_(counts) {
    for (int i = 0; i < streams; ++i) {
      auto state = std::make_shared<State>();
      state->stream = stub.Double(&state->context);
      counts_.Sent();
      states_.push_back(state);
      threads_.emplace_back([this, state] { Run(*state); });
    }
  }
  ~StreamLoad() { Stop(); }

  // Ends the streams that are still running with a half-close.
  void Stop() {
    stop_.store(true);
    for (size_t i = 0; i < threads_.size(); ++i) {
      if (!threads_[i].joinable()) continue;
      if (!states_[i]->done.WaitForNotificationWithTimeout(kHangBound)) {
        counts_.Lost();
        states_[i]->stream->TryCancel();
      }
      threads_[i].join();
    }
  }

  // Waits until every stream has ended on its own; false after `bound`.
  bool WaitAllEnded(absl::Duration bound) {
    absl::Time give_up = absl::Now() + bound;
    for (const auto& state : states_) {
      if (!state->done.WaitForNotificationWithTimeout(give_up - absl::Now())) return false;
    }
    return true;
  }

  int64_t received() const { return received_.load(); }

 private:
  struct State {
    ClientContext context;
    std::unique_ptr<ClientReaderWriter<Number, Number>> stream;
    internal::Notification done;
  };

  void Run(State& state) {
    int64_t sent = 0;
    int64_t received = 0;
    int64_t silently_lost = 0;
    Number number;
    while (!stop_.load()) {
      number.set_value(sent + 1);
      if (!state.stream->Write(number)) break;
      ++sent;
      if (!state.stream->Read(&number)) break;
      ++received;
      received_.fetch_add(1);
      if (number.value() != 2 * received) ++silently_lost;
    }
    if (stop_.load()) {
      state.stream->WritesDone();
      while (state.stream->Read(&number)) {
        ++received;
        if (number.value() != 2 * received) ++silently_lost;
      }
    }
    absl::Status status = state.stream->Finish();
    // A stream that ended OK delivered every answer; one that failed says so.
    if (status.ok() && received != sent) silently_lost += sent - received;
    counts_.Messages(sent, received, silently_lost);
    counts_.Ended(status);
    state.done.Notify();
  }

  Counts& counts_;
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> received_{0};
  std::vector<std::shared_ptr<State>> states_;
  std::vector<std::thread> threads_;
};

class EchoAndNumbers final : public Echo::Handler, public Numbers::Handler {
 public:
  absl::Status Echo(ServerContext*, const EchoRequest* request, EchoReply* reply) override {
    if (request->sleep_ms() > 0) absl::SleepFor(absl::Milliseconds(request->sleep_ms()));
    reply->set_text(request->text());
    return absl::OkStatus();
  }
  absl::Status Ping(ServerContext*, const EchoRequest*, EchoReply*) override {
    return absl::OkStatus();
  }
  absl::Status Count(ServerContext*, const Number*, ServerWriter<Number>*) override {
    return absl::UnimplementedError("not used");
  }
  absl::Status Sum(ServerContext*, ServerReader<Number>*, Number*) override {
    return absl::UnimplementedError("not used");
  }
  absl::Status Double(ServerContext*, ServerReaderWriter<Number, Number>* stream) override {
    Number number;
    while (stream->Read(&number)) {
      number.set_value(2 * number.value());
      if (!stream->Write(number)) break;
    }
    return absl::OkStatus();
  }
};

// Opens a Double stream, exchanges `messages`, half-closes; OK if all went
// well. Tried again (bounded) while the service is not reachable yet.
absl::Status FreshStreamWorks(Numbers::Stub& stub, int messages) {
  absl::Status status;
  for (absl::Time give_up = absl::Now() + kRecoveryBound; absl::Now() < give_up;) {
    ClientContext context;
    context.set_timeout(absl::Seconds(10));
    auto stream = stub.Double(&context);
    Number number;
    int i = 1;
    for (; i <= messages; ++i) {
      number.set_value(i);
      if (!stream->Write(number) || !stream->Read(&number) || number.value() != 2 * i) break;
    }
    stream->WritesDone();
    status = stream->Finish();
    if (status.ok() && i <= messages) status = absl::DataLossError("wrong or missing answer");
    if (status.ok()) return status;
    absl::SleepFor(absl::Milliseconds(100));
  }
  return status;
}

// A server and a client in this process, each on its own reconnecting
// connection to `url`.
class InProcessService {
 public:
  explicit InProcessService(const TransportOptions& options) {
    server_transport_ = MustConnect(options);
    client_transport_ = MustConnect(options);
    if (server_transport_ == nullptr || client_transport_ == nullptr) return;
    ServerOptions server_options;
    server_options.num_threads = 16;  // Streams hold a thread each.
    server_ = std::make_unique<Server>(server_transport_, server_options);
    EXPECT_TRUE(testing::RegisterEchoHandler(*server_, handler_).ok());
    EXPECT_TRUE(testing::RegisterNumbersHandler(*server_, handler_).ok());
    EXPECT_TRUE(server_->Start().ok());
    client_ = std::make_shared<Client>(client_transport_);
    echo_ = Echo::NewStub(client_);
    numbers_ = Numbers::NewStub(client_);
  }
  ~InProcessService() {
    echo_.reset();
    numbers_.reset();
    client_.reset();
    if (server_ != nullptr) server_->Stop();
  }

  bool ok() const { return echo_ != nullptr; }
  Echo::Stub& echo() { return *echo_; }
  Numbers::Stub& numbers() { return *numbers_; }

 private:
  EchoAndNumbers handler_;
  std::shared_ptr<Transport> server_transport_;
  std::shared_ptr<Transport> client_transport_;
  std::unique_ptr<Server> server_;
  std::shared_ptr<Client> client_;
  std::unique_ptr<Echo::Stub> echo_;
  std::unique_ptr<Numbers::Stub> numbers_;
};

std::unique_ptr<NatsServer> StartNats() {
  absl::StatusOr<std::unique_ptr<NatsServer>> nats = NatsServer::Start();
  EXPECT_TRUE(nats.ok()) << nats.status();
  return nats.ok() ? *std::move(nats) : nullptr;
}

// ---------------------------------------------------------------------------
// nats-server killed and restarted on the same port.

TEST(NatsRestart, UnaryCallsFailCleanlyThenRecover) {
  std::unique_ptr<NatsServer> nats = StartNats();
  ASSERT_NE(nats, nullptr);
  const int port = nats->port();
  InProcessService service(Reconnecting(nats->url()));
  ASSERT_TRUE(service.ok());
  Counts counts("unary calls across a nats-server restart");
  UnaryLoad load(service.echo(), 4, absl::Seconds(1), counts);
  ASSERT_TRUE(load.WaitForSuccesses(50));

  nats->Kill();
  absl::SleepFor(absl::Milliseconds(500));
  auto restarted = NatsServer::Start({}, port);
  ASSERT_TRUE(restarted.ok()) << restarted.status();
  nats = *std::move(restarted);  // Outlives the service, which stops while connected.
  bool recovered = load.WaitForSuccesses(50);
  load.Stop();
  counts.Print();

  EXPECT_TRUE(recovered) << "calls did not succeed again after the restart";
  EXPECT_EQ(counts.lost(), 0);
  EXPECT_EQ(counts.ended(), counts.sent());
  EXPECT_TRUE(counts.OnlyEndedWith(
      {absl::StatusCode::kOk, absl::StatusCode::kUnavailable, absl::StatusCode::kDeadlineExceeded}))
      << counts.ToString();
  EXPECT_GT(counts.Count(absl::StatusCode::kOk), 100);
}

TEST(NatsRestart, StreamsEndWithUnavailableAndNewStreamsWork) {
  std::unique_ptr<NatsServer> nats = StartNats();
  ASSERT_NE(nats, nullptr);
  const int port = nats->port();
  InProcessService service(Reconnecting(nats->url()));
  ASSERT_TRUE(service.ok());
  Counts counts("bidi streams across a nats-server restart");
  StreamLoad load(service.numbers(), 8, counts);
  for (absl::Time give_up = absl::Now() + kRecoveryBound;
       load.received() < 800 && absl::Now() < give_up;) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  ASSERT_GE(load.received(), 800) << "streams did not get going";

  nats->Kill();
  // Every stream must end on its own: its connection was lost.
  bool all_ended = load.WaitAllEnded(kHangBound);
  auto restarted = NatsServer::Start({}, port);
  ASSERT_TRUE(restarted.ok()) << restarted.status();
  nats = *std::move(restarted);  // Outlives the service, which stops while connected.
  load.Stop();
  absl::Status fresh = FreshStreamWorks(service.numbers(), 100);
  counts.Print();

  EXPECT_TRUE(all_ended) << "a stream outlived its connection";
  EXPECT_EQ(counts.lost(), 0);
  EXPECT_EQ(counts.silently_lost(), 0);
  EXPECT_EQ(counts.Count(absl::StatusCode::kUnavailable), counts.sent()) << counts.ToString();
  EXPECT_TRUE(fresh.ok()) << "a new stream after the restart: " << fresh;
}

// With its nats-server gone for good, stopping a server and closing its
// connections must not wait for subscriptions to drain: nothing is left to
// drain without a connection.
TEST(NatsGone, StoppingAServerAndItsClientDoesNotWaitForTheLostServer) {
  std::unique_ptr<NatsServer> nats = StartNats();
  ASSERT_NE(nats, nullptr);
  auto service = std::make_unique<InProcessService>(Reconnecting(nats->url()));
  ASSERT_TRUE(service->ok());
  Counts counts("a call before nats-server goes away");
  EchoRequest request;
  request.set_text("before");
  EXPECT_TRUE(WatchedCall(service->echo(), request, absl::Seconds(2), counts).ok());
  nats->Kill();
  absl::Time start = absl::Now();
  service.reset();  // Server::Stop, then the client and both transports.
  absl::Duration took = absl::Now() - start;
  std::printf("[counts] stopping a server and a client without nats-server took %lld ms\n",
              static_cast<long long>(absl::ToInt64Milliseconds(took)));
  EXPECT_LT(took, kHangBound);
}

// ---------------------------------------------------------------------------
// A node of a three-node cluster killed.

TEST(Cluster, NodeKilledClientsAndServicesFailOver) {
  absl::StatusOr<std::unique_ptr<NatsCluster>> cluster = NatsCluster::Start(3);
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  NatsCluster& nodes = **cluster;
  // The client and instance 1 know only node 0, and learn the others from
  // it (NATS gossips the cluster's URLs); instance 2 is on node 2.
  ServerOptions options;
  auto instance1 = EchoInstance::Start(nodes.node(0).url(), options, absl::Seconds(1));
  auto instance2 = EchoInstance::Start(nodes.node(2).url(), options, absl::Seconds(1));
  ASSERT_TRUE(instance1.ok() && instance2.ok());
  std::shared_ptr<Transport> client_transport = MustConnect(Reconnecting(nodes.node(0).url()));
  ASSERT_NE(client_transport, nullptr);
  auto stub = Echo::NewStub(std::make_shared<Client>(client_transport));
  Counts counts("unary calls while a cluster node dies");
  UnaryLoad load(*stub, 4, absl::Seconds(1), counts);
  ASSERT_TRUE(load.WaitForSuccesses(50));

  nodes.node(0).Kill();
  bool recovered = load.WaitForSuccesses(50);
  // Instance 1 must serve again too, from another node.
  int instance1_calls = (*instance1)->handler().calls();
  bool instance1_back = false;
  for (absl::Time give_up = absl::Now() + kRecoveryBound; absl::Now() < give_up;) {
    if ((*instance1)->handler().calls() > instance1_calls + 10) {
      instance1_back = true;
      break;
    }
    absl::SleepFor(absl::Milliseconds(50));
  }
  load.Stop();
  counts.Print();
  std::printf("[counts] instance 1 served %d calls, instance 2 served %d\n",
              (*instance1)->handler().calls(), (*instance2)->handler().calls());

  EXPECT_TRUE(recovered) << "the client did not fail over";
  EXPECT_TRUE(instance1_back) << "the instance on the killed node did not fail over";
  EXPECT_EQ(counts.lost(), 0);
  EXPECT_EQ(counts.ended(), counts.sent());
  EXPECT_TRUE(counts.OnlyEndedWith(
      {absl::StatusCode::kOk, absl::StatusCode::kUnavailable, absl::StatusCode::kDeadlineExceeded}))
      << counts.ToString();
}

// ---------------------------------------------------------------------------
// nats-server paused (SIGSTOP), then resumed.

TEST(NatsPaused, DeadlinesFireNothingHangsEverythingRecovers) {
  std::unique_ptr<NatsServer> nats = StartNats();
  ASSERT_NE(nats, nullptr);
  TransportOptions options = Reconnecting(nats->url());
  options.stream_heartbeat = absl::Milliseconds(200);
  InProcessService service(options);
  ASSERT_TRUE(service.ok());
  Counts calls("unary calls (500 ms deadline) while nats-server is paused 3 s");
  Counts streams("bidi streams while nats-server is paused 3 s");
  UnaryLoad load(service.echo(), 4, absl::Milliseconds(500), calls);
  StreamLoad stream_load(service.numbers(), 4, streams);
  ASSERT_TRUE(load.WaitForSuccesses(50));

  nats->Pause();
  absl::SleepFor(absl::Seconds(3));
  // Streams see no heartbeat from their peer for 3 intervals: they end.
  bool streams_ended = stream_load.WaitAllEnded(kHangBound);
  nats->Resume();
  bool recovered = load.WaitForSuccesses(50);
  load.Stop();
  stream_load.Stop();
  absl::Status fresh = FreshStreamWorks(service.numbers(), 100);
  calls.Print();
  streams.Print();

  EXPECT_TRUE(recovered) << "calls did not succeed again after the resume";
  EXPECT_EQ(calls.lost(), 0);
  EXPECT_GT(calls.Count(absl::StatusCode::kDeadlineExceeded), 0) << "the pause was not felt";
  EXPECT_TRUE(calls.OnlyEndedWith({absl::StatusCode::kOk, absl::StatusCode::kDeadlineExceeded}))
      << calls.ToString();
  // On time: within 2 s of the deadline (a bound for a loaded machine).
  EXPECT_LT(calls.max_late(), absl::Seconds(2)) << calls.ToString();
  EXPECT_TRUE(streams_ended) << "a stream hung while nats-server was paused";
  EXPECT_TRUE(streams.OnlyEndedWith({absl::StatusCode::kUnavailable})) << streams.ToString();
  EXPECT_EQ(streams.lost(), 0);
  EXPECT_EQ(streams.silently_lost(), 0);
  EXPECT_TRUE(fresh.ok()) << "a new stream after the resume: " << fresh;
}

// ---------------------------------------------------------------------------
// A service process killed with SIGKILL.

std::unique_ptr<ChildProcess> StartServicePeer(const std::string& url, int threads = 8) {
  auto peer =
      ChildProcess::StartAndWaitReady({ServicePeerPath(), url, "100", absl::StrCat(threads)});
  EXPECT_TRUE(peer.ok()) << peer.status();
  return peer.ok() ? *std::move(peer) : nullptr;
}

TEST(ServiceKilled, MidRequestCallsEndAtTheirDeadlineAndTheSurvivorServes) {
  std::unique_ptr<NatsServer> nats = StartNats();
  ASSERT_NE(nats, nullptr);
  std::unique_ptr<ChildProcess> doomed = StartServicePeer(nats->url());
  std::unique_ptr<ChildProcess> survivor = StartServicePeer(nats->url());
  ASSERT_TRUE(doomed != nullptr && survivor != nullptr);
  std::shared_ptr<Transport> transport = MustConnect(Reconnecting(nats->url()));
  ASSERT_NE(transport, nullptr);
  auto stub = Echo::NewStub(std::make_shared<Client>(transport));

  // 16 slow calls, shared by the two instances; one instance dies while
  // they run. Its calls can get no answer: they end at their deadline.
  Counts in_flight("slow calls (1 s handler, 3 s deadline) when one of two instances dies");
  std::vector<std::thread> callers;
  for (int i = 0; i < 16; ++i) {
    callers.emplace_back([&, i] {
      EchoRequest request;
      request.set_text(absl::StrCat("slow-", i));
      request.set_sleep_ms(1000);
      WatchedCall(*stub, request, absl::Seconds(3), in_flight).IgnoreError();  // Counted.
    });
  }
  absl::SleepFor(absl::Milliseconds(300));
  doomed->Kill();
  for (std::thread& caller : callers) caller.join();

  // Afterwards the survivor answers everything.
  Counts after("calls after the instance died");
  for (int i = 0; i < 50; ++i) {
    EchoRequest request;
    request.set_text(absl::StrCat("after-", i));
    WatchedCall(*stub, request, absl::Seconds(2), after).IgnoreError();  // Counted.
  }
  in_flight.Print();
  after.Print();

  EXPECT_EQ(in_flight.lost(), 0);
  EXPECT_EQ(in_flight.ended(), 16);
  EXPECT_TRUE(in_flight.OnlyEndedWith({absl::StatusCode::kOk, absl::StatusCode::kDeadlineExceeded}))
      << in_flight.ToString();
  EXPECT_GT(in_flight.Count(absl::StatusCode::kOk), 0) << "the survivor answered nothing";
  EXPECT_LT(in_flight.max_late(), absl::Seconds(2)) << in_flight.ToString();
  EXPECT_EQ(after.Count(absl::StatusCode::kOk), 50) << after.ToString();
}

TEST(ServiceKilled, MidStreamStreamsEndWithUnavailableWithoutSilentLoss) {
  std::unique_ptr<NatsServer> nats = StartNats();
  ASSERT_NE(nats, nullptr);
  std::unique_ptr<ChildProcess> peer = StartServicePeer(nats->url());
  ASSERT_NE(peer, nullptr);
  TransportOptions options = Reconnecting(nats->url());
  options.stream_heartbeat = absl::Milliseconds(100);
  std::shared_ptr<Transport> transport = MustConnect(options);
  ASSERT_NE(transport, nullptr);
  auto numbers = Numbers::NewStub(std::make_shared<Client>(transport));

  // Server-streaming Count (1, 2, 3, ... 5 ms apart) and bidi Double.
  Counts counts("server-streaming Count streams whose service process is SIGKILLed");
  Counts doubles_counts("bidi Double streams whose service process is SIGKILLed");
  struct Reader {
    ClientContext context;
    std::unique_ptr<ClientReader<Number>> stream;
    internal::Notification done;
  };
  std::vector<std::unique_ptr<Reader>> readers;
  std::vector<std::thread> reader_threads;
  std::atomic<int64_t> counted{0};
  for (int i = 0; i < 4; ++i) {
    Number request;
    request.set_value(1'000'000);
    counts.Sent();
    readers.push_back(std::make_unique<Reader>());
    Reader& reader_state = *readers.back();
    reader_state.stream = numbers->Count(&reader_state.context, request);
    reader_threads.emplace_back([&counts, &counted, &reader_state] {
      ClientReader<Number>* reader = reader_state.stream.get();
      Number number;
      int64_t received = 0;
      int64_t silently_lost = 0;
      while (reader->Read(&number)) {
        ++received;
        counted.fetch_add(1);
        if (number.value() != received) ++silently_lost;
      }
      counts.Messages(0, received, silently_lost);
      counts.Ended(reader->Finish());
      reader_state.done.Notify();
    });
  }
  StreamLoad doubles(*numbers, 4, doubles_counts);
  for (absl::Time give_up = absl::Now() + kRecoveryBound;
       (counted.load() < 100 || doubles.received() < 100) && absl::Now() < give_up;) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  ASSERT_GE(counted.load(), 100);
  ASSERT_GE(doubles.received(), 100);

  peer->Kill();
  bool doubles_ended = doubles.WaitAllEnded(kHangBound);
  for (const auto& reader : readers) {  // Each ends: heartbeats stop.
    if (!reader->done.WaitForNotificationWithTimeout(kHangBound)) {
      counts.Lost();
      reader->stream->TryCancel();
    }
  }
  for (std::thread& thread : reader_threads) thread.join();
  doubles.Stop();
  counts.Print();
  doubles_counts.Print();

  EXPECT_TRUE(doubles_ended) << "a stream outlived its service";
  for (const Counts* kind : {&counts, &doubles_counts}) {
    EXPECT_EQ(kind->lost(), 0);
    EXPECT_EQ(kind->silently_lost(), 0);
    EXPECT_EQ(kind->Count(absl::StatusCode::kUnavailable), 4) << kind->ToString();
  }
}

// ---------------------------------------------------------------------------
// A flood of calls far above capacity.

// Normal traffic after the flood: the first call may wait for the backlog to
// drain; then 50 calls in a row must succeed. Returns how many first calls
// failed before one succeeded.
int ExpectNormalTrafficServed(Echo::Stub& stub) {
  Counts after("normal calls after the flood");
  bool first = false;
  for (absl::Time give_up = absl::Now() + kRecoveryBound; !first && absl::Now() < give_up;) {
    EchoRequest request;
    request.set_text("first");
    first = WatchedCall(stub, request, absl::Seconds(2), after).ok();
  }
  Counts steady("normal calls once one succeeded");
  for (int i = 0; i < 50; ++i) {
    EchoRequest request;
    request.set_text(absl::StrCat("normal-", i));
    WatchedCall(stub, request, absl::Seconds(2), steady).IgnoreError();  // Counted.
  }
  after.Print();
  steady.Print();
  EXPECT_TRUE(first) << "the service never answered again";
  EXPECT_EQ(steady.Count(absl::StatusCode::kOk), 50) << steady.ToString();
  return after.sent() - after.Count(absl::StatusCode::kOk);
}

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kSanitized = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif
#else
constexpr bool kSanitized = false;
#endif

class FloodTest : public ::testing::Test {
 protected:
  void SetUp() override {
    nats_ = StartNats();
    ASSERT_NE(nats_, nullptr);
    peer_ = StartServicePeer(nats_->url(), 2);
    ASSERT_NE(peer_, nullptr);
    transport_ = MustConnect(Reconnecting(nats_->url()));
    ASSERT_NE(transport_, nullptr);
    stub_ = Echo::NewStub(std::make_shared<Client>(transport_));
    EchoRequest warm_up;
    warm_up.set_text("warm-up");
    Counts ignored("warm-up");
    ASSERT_TRUE(WatchedCall(*stub_, warm_up, absl::Seconds(5), ignored).ok());
    rss_before_kib_ = testing::PeakResidentKib(peer_->pid());
  }

  static constexpr int kCalls = 20'000;
  static constexpr int kPayload = 4096;

  // 20,000 calls with 4 KiB bodies at once to a service with 2 handler threads
  // that take 1 ms per call: about 80 MB of requests against a capacity of
  // some 2,000 calls per second. Prints the counts and the service's peak
  // memory; returns the latter.
  int64_t Flood(Counts& counts) {
    std::vector<std::shared_ptr<PendingCall>> calls;
    for (int i = 0; i < kCalls; ++i) {
      EchoRequest request;
      request.set_text(absl::StrCat("flood-", i));
      request.set_payload(std::string(kPayload, 'f'));
      request.set_sleep_ms(1);
      calls.push_back(StartCall(*stub_, request, absl::Seconds(5), counts));
    }
    for (const auto& call : calls) AwaitCall(*call, counts).IgnoreError();  // Counted.
    int64_t rss_after_kib = testing::PeakResidentKib(peer_->pid());
    counts.Print();
    std::printf("[counts] service peak RSS: %lld KiB before, %lld KiB after the flood\n",
                static_cast<long long>(rss_before_kib_), static_cast<long long>(rss_after_kib));
    return rss_after_kib;
  }

  std::unique_ptr<NatsServer> nats_;
  std::unique_ptr<ChildProcess> peer_;
  std::shared_ptr<Transport> transport_;
  std::unique_ptr<Echo::Stub> stub_;
  int64_t rss_before_kib_ = 0;
};

TEST_F(FloodTest, EveryCallEndsAndTheServiceAnswersNormalTrafficAfter) {
  Counts counts("flood of 20,000 calls (4 KiB, 5 s deadline) at 2 handler threads");
  int64_t rss_after_kib = Flood(counts);

  EXPECT_EQ(counts.lost(), 0);
  EXPECT_EQ(counts.ended(), kCalls);
  EXPECT_GT(rss_after_kib, 0) << "the service process died";
  ExpectNormalTrafficServed(*stub_);  // Once the backlog drained, if need be.
}

// The server admits max_concurrent_calls (1000 by default) and refuses the
// rest at once, so its memory does not grow with the flood and nothing
// waits in a backlog after it.
TEST_F(FloodTest, ExcessIsRefusedWithResourceExhaustedAndMemoryStaysBounded) {
  Counts counts("flood of 20,000 calls (4 KiB, 5 s deadline) at 2 handler threads");
  int64_t rss_after_kib = Flood(counts);

  EXPECT_EQ(counts.lost(), 0);
  EXPECT_GT(counts.Count(absl::StatusCode::kResourceExhausted), 0) << counts.ToString();
  EXPECT_TRUE(counts.OnlyEndedWith({absl::StatusCode::kOk, absl::StatusCode::kResourceExhausted}))
      << counts.ToString();
  // The flood is ~80 MB of requests; a bounded server holds a fraction.
  // Sanitizers keep freed memory in quarantine and add shadow memory, so
  // there the peak says nothing about what the server holds.
  if (!kSanitized) {
    EXPECT_LT(rss_after_kib - rss_before_kib_, 32 * 1024)
        << "peak RSS grew by " << rss_after_kib - rss_before_kib_ << " KiB";
  }
  // Nothing waits in a backlog: the next call is served at once.
  EXPECT_EQ(ExpectNormalTrafficServed(*stub_), 0);
}

}  // namespace
}  // namespace micro
