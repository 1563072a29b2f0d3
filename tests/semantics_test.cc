// Production semantics end to end through a real nats-server: deadlines across
// hops, errors and their origin, metadata limits, interceptors, load shedding,
// endpoint isolation, retries with their budget, and surviving a nats-server
// restart.
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "micro/micro.h"
#include "micro/testing/echo.micro.h"
#include "micro/testing/streams.micro.h"
#include "protocol/wire.h"
#include "support/echo_instance.h"
#include "support/nats_server.h"
#include "support/process.h"
#include "util/notification.h"

namespace micro {
namespace {

using ::micro::testing::ChildProcess;
using ::micro::testing::Echo;
using ::micro::testing::EchoReply;
using ::micro::testing::EchoRequest;
using ::micro::testing::NatsServer;
using ::micro::testing::Nobody;
using ::micro::testing::Number;

constexpr char kDetailType[] = "type.googleapis.com/test.Detail";

// Echo that records the deadline it saw, sleeps `sleep_ms`, fails with
// `fail_code` (with a detail payload) when asked.
class RecordingEcho final : public Echo::Handler {
 public:
  absl::Status Echo(ServerContext* context, const EchoRequest* request, EchoReply* reply) override {
    {
      std::lock_guard lock(mu_);
      deadline_ = context->deadline();
    }
    calls_.fetch_add(1);
    if (request->sleep_ms() > 0) absl::SleepFor(absl::Milliseconds(request->sleep_ms()));
    if (request->reply_bytes() > 0) {
      context->AddResponseMetadata("big", std::string(request->reply_bytes(), 'm'));
    }
    if (request->text() == "with initial metadata") context->AddInitialMetadata("initial", "1");
    if (request->fail_code() != 0) {
      absl::Status status(static_cast<absl::StatusCode>(request->fail_code()), request->text());
      status.SetPayload(kDetailType, absl::Cord(absl::StrCat("detail-", request->fail_code())));
      return status;
    }
    reply->set_text(request->text());
    return absl::OkStatus();
  }
  absl::Status Ping(ServerContext* context, const EchoRequest* request, EchoReply* reply) override {
    return Echo(context, request, reply);
  }

  absl::Time deadline() {
    std::lock_guard lock(mu_);
    return deadline_;
  }
  int calls() const { return calls_.load(); }

 private:
  std::mutex mu_;
  absl::Time deadline_ = absl::InfinitePast();
  std::atomic<int> calls_{0};
};

// The first hop: calls Echo with a fresh context and returns its outcome.
class Relay final : public Nobody::Handler {
 public:
  explicit Relay(std::shared_ptr<Client> client) : stub_(Echo::NewStub(std::move(client))) {}

  absl::Status Call(ServerContext*, const EchoRequest* request, EchoReply* reply) override {
    ClientContext context;  // No deadline of its own: it inherits the caller's.
    absl::Status status = stub_->Echo(&context, *request, reply);
    std::lock_guard lock(mu_);
    inner_status_ = status;
    return status;
  }

  absl::Status inner_status() {
    std::lock_guard lock(mu_);
    return inner_status_;
  }

 private:
  std::unique_ptr<Echo::Stub> stub_;
  std::mutex mu_;
  absl::Status inner_status_ = absl::UnknownError("not called");
};

class NumbersHandler final : public testing::Numbers::Handler {
 public:
  absl::Status Count(ServerContext*, const Number* request, ServerWriter<Number>* writer) override {
    Number number;
    for (int64_t i = 1; i <= request->value(); ++i) {
      number.set_value(i);
      if (!writer->Write(number)) return absl::CancelledError("the client went away");
    }
    return absl::OkStatus();
  }
  absl::Status Sum(ServerContext*, ServerReader<Number>*, Number*) override {
    return absl::UnimplementedError("not in this test");
  }
  absl::Status Double(ServerContext*, ServerReaderWriter<Number, Number>*) override {
    return absl::UnimplementedError("not in this test");
  }
};

// Count sends initial metadata with its first number and waits for `gate`
// before the rest, so the caller reads it while the stream is still open;
// it adds more initial metadata too late, and some trailing metadata. Double
// sets more initial metadata than the server allows.
class InitialMetadataNumbers final : public testing::Numbers::Handler {
 public:
  absl::Status Count(ServerContext* context, const Number* request,
                     ServerWriter<Number>* writer) override {
    context->AddInitialMetadata("phase", "initial");
    context->AddResponseMetadata("phase-end", "trailing");
    Number number;
    for (int64_t i = 1; i <= request->value(); ++i) {
      number.set_value(i);
      if (!writer->Write(number)) return absl::CancelledError("the client went away");
      if (i == 1) {
        context->AddInitialMetadata("late", "yes");
        if (!gate.WaitForNotificationWithTimeout(absl::Seconds(20))) {
          return absl::DeadlineExceededError("the test never opened the gate");
        }
      }
    }
    return absl::OkStatus();
  }
  absl::Status Sum(ServerContext*, ServerReader<Number>*, Number*) override {
    return absl::UnimplementedError("not in this test");
  }
  absl::Status Double(ServerContext* context, ServerReaderWriter<Number, Number>* stream) override {
    context->AddInitialMetadata("blob", std::string(2000, 'b'));
    Number number;
    stream->Write(number);
    return absl::OkStatus();
  }

  internal::Notification gate;
};

// A unary Echo and a Count stream of `count` numbers, each started on its
// own thread with wait_for_ready and 30 s to go, for the tests of waiting.
class PatientCalls {
 public:
  PatientCalls(std::shared_ptr<Client> client, int64_t count)
      : unary_([this, client] {
          ClientContext context;
          Prepare(context);
          EchoRequest request;
          request.set_text("patient");
          unary_status = Echo::NewStub(client)->Echo(&context, request, &reply);
        }),
        stream_([this, client, count] {
          ClientContext context;
          Prepare(context);
          Number request;
          request.set_value(count);
          auto reader = testing::Numbers::NewStub(client)->Count(&context, request);
          Number number;
          while (reader->Read(&number)) last_number = number.value();
          stream_status = reader->Finish();
        }) {}

  void Join() {
    unary_.join();
    stream_.join();
  }

  absl::Status unary_status = absl::UnknownError("not finished");
  EchoReply reply;
  absl::Status stream_status = absl::UnknownError("not finished");
  int64_t last_number = 0;

 private:
  static void Prepare(ClientContext& context) {
    context.set_wait_for_ready(true);
    context.set_timeout(absl::Seconds(30));
  }

  std::thread unary_;
  std::thread stream_;
};

class SemanticsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto nats = NatsServer::Start();
    ASSERT_TRUE(nats.ok()) << nats.status();
    nats_ = *std::move(nats);
  }

  void TearDown() override {
    for (auto& server : servers_) server->Stop();
  }

  std::shared_ptr<Transport> Connect() {
    TransportOptions options;
    options.url = nats_->url();
    options.reconnect_wait = absl::Milliseconds(100);
    auto transport = ConnectNats(options);
    EXPECT_TRUE(transport.ok()) << transport.status();
    return transport.ok() ? *transport : nullptr;
  }

  Server& StartServer(ServerOptions options, std::vector<Service*> services) {
    servers_.push_back(std::make_unique<Server>(Connect(), std::move(options)));
    for (Service* service : services) {
      EXPECT_TRUE(servers_.back()->RegisterService(service).ok());
    }
    EXPECT_TRUE(servers_.back()->Start().ok());
    return *servers_.back();
  }

  std::shared_ptr<Client> NewClient(ClientOptions options = {}) {
    return std::make_shared<Client>(Connect(), std::move(options));
  }

  static EchoRequest Request(std::string text, int sleep_ms = 0, int fail_code = 0) {
    EchoRequest request;
    request.set_text(std::move(text));
    request.set_sleep_ms(sleep_ms);
    request.set_fail_code(fail_code);
    return request;
  }

  // Handlers must outlive the servers' Stop, which TearDown calls after the
  // test body's locals are gone: the fixture owns them.
  template <typename T, typename... Args>
  T& NewService(Args&&... args) {
    services_.push_back(std::make_unique<T>(std::forward<Args>(args)...));
    return static_cast<T&>(*services_.back());
  }

  std::unique_ptr<NatsServer> nats_;
  std::vector<std::unique_ptr<Service>> services_;
  std::vector<std::unique_ptr<Server>> servers_;
};

TEST_F(SemanticsTest, DeadlineTravelsAcrossTwoHops) {
  RecordingEcho& echo = NewService<RecordingEcho>();
  Relay& relay = NewService<Relay>(NewClient());
  StartServer({}, {&echo, &relay});
  auto stub = Nobody::NewStub(NewClient());

  ClientContext context;
  context.set_timeout(absl::Seconds(5));
  EchoReply reply;
  ASSERT_TRUE(stub->Call(&context, Request("hop"), &reply).ok());
  EXPECT_EQ(reply.text(), "hop");
  // The second hop saw the caller's deadline, not its own client's 30 s default.
  EXPECT_LT(absl::AbsDuration(echo.deadline() - context.deadline()), absl::Milliseconds(500))
      << "second hop's deadline is " << echo.deadline() - context.deadline() << " off";
}

TEST_F(SemanticsTest, AnExpiredCallStopsTheSecondHopToo) {
  RecordingEcho& echo = NewService<RecordingEcho>();
  Relay& relay = NewService<Relay>(NewClient());
  StartServer({}, {&echo, &relay});
  auto stub = Nobody::NewStub(NewClient());

  ClientContext context;
  context.set_timeout(absl::Seconds(1));
  EchoReply reply;
  absl::Status status = stub->Call(&context, Request("slow", /*sleep_ms=*/3000), &reply);
  EXPECT_EQ(status.code(), absl::StatusCode::kDeadlineExceeded) << status;
  EXPECT_FALSE(IsRemoteError(status)) << "the caller's own deadline fired";
  // The relay's call ended by the inherited deadline, long before the
  // second hop's 3 s of work would have.
  for (int i = 0; i < 200 && absl::IsUnknown(relay.inner_status()); ++i) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_EQ(relay.inner_status().code(), absl::StatusCode::kDeadlineExceeded)
      << relay.inner_status();
}

TEST_F(SemanticsTest, EveryStatusCodeKeepsCodeMessageAndDetailsAcrossTwoHops) {
  RecordingEcho& echo = NewService<RecordingEcho>();
  Relay& relay = NewService<Relay>(NewClient());
  StartServer({}, {&echo, &relay});
  auto stub = Nobody::NewStub(NewClient());
  for (int code = 1; code <= 16; ++code) {
    ClientContext context;
    EchoReply reply;
    absl::Status status =
        stub->Call(&context, Request(absl::StrCat("failed ", code), 0, code), &reply);
    EXPECT_EQ(static_cast<int>(status.code()), code) << status;
    EXPECT_EQ(status.message(), absl::StrCat("failed ", code));
    EXPECT_TRUE(IsRemoteError(status)) << status;
    EXPECT_FALSE(IsUnprocessed(status)) << status;
    auto detail = status.GetPayload(kDetailType);
    ASSERT_TRUE(detail.has_value()) << status;
    EXPECT_EQ(std::string(*detail), absl::StrCat("detail-", code));
  }
}

TEST_F(SemanticsTest, LocalErrorsAreNotRemote) {
  RecordingEcho& echo = NewService<RecordingEcho>();
  StartServer({}, {&echo});
  auto client = NewClient();
  auto stub = Echo::NewStub(client);
  EchoReply reply;

  ClientContext short_deadline;
  short_deadline.set_timeout(absl::Milliseconds(100));
  absl::Status timed_out = stub->Echo(&short_deadline, Request("x", 1000), &reply);
  EXPECT_EQ(timed_out.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_FALSE(IsRemoteError(timed_out));

  ClientContext nobody_context;
  absl::Status nobody = Nobody::NewStub(client)->Call(&nobody_context, Request("x"), &reply);
  EXPECT_EQ(nobody.code(), absl::StatusCode::kUnavailable) << nobody;
  EXPECT_FALSE(IsRemoteError(nobody));
  EXPECT_TRUE(IsUnprocessed(nobody)) << "nobody listened: safe to retry";

  ClientContext remote_context;
  absl::Status remote = stub->Echo(&remote_context, Request("x", 0, 14), &reply);
  EXPECT_EQ(remote.code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(IsRemoteError(remote));
  EXPECT_FALSE(IsUnprocessed(remote)) << "the handler ran";
}

TEST_F(SemanticsTest, MetadataSizeLimitsAreClearErrorsOnBothSides) {
  RecordingEcho& echo = NewService<RecordingEcho>();
  ServerOptions server_options;
  server_options.max_metadata_bytes = 1000;
  StartServer(server_options, {&echo});
  auto stub = Echo::NewStub(NewClient());
  EchoReply reply;

  ClientContext too_big_for_client;
  too_big_for_client.AddMetadata("blob", std::string(9000, 'b'));
  absl::Status local = stub->Echo(&too_big_for_client, Request("x"), &reply);
  EXPECT_EQ(local.code(), absl::StatusCode::kResourceExhausted) << local;
  EXPECT_FALSE(IsRemoteError(local));
  EXPECT_EQ(echo.calls(), 0);

  ClientContext too_big_for_server;
  too_big_for_server.AddMetadata("blob", std::string(2000, 'b'));
  absl::Status remote = stub->Echo(&too_big_for_server, Request("x"), &reply);
  EXPECT_EQ(remote.code(), absl::StatusCode::kResourceExhausted) << remote;
  EXPECT_TRUE(IsRemoteError(remote));
  EXPECT_EQ(echo.calls(), 0);

  ClientContext big_reply;
  EchoRequest request = Request("x");
  request.set_reply_bytes(2000);  // Response metadata over the server's limit.
  absl::Status response = stub->Echo(&big_reply, request, &reply);
  EXPECT_EQ(response.code(), absl::StatusCode::kResourceExhausted) << response;
  EXPECT_TRUE(big_reply.response_metadata().empty());
}

TEST_F(SemanticsTest, InitialMetadataArrivesWithTheFirstMessageAndNoneIsLost) {
  auto& numbers = NewService<InitialMetadataNumbers>();
  RecordingEcho& echo = NewService<RecordingEcho>();
  ServerOptions options;
  options.max_metadata_bytes = 1000;
  StartServer(options, {&numbers, &echo});
  auto client = NewClient();
  auto stub = testing::Numbers::NewStub(client);
  const Metadata initial{{"phase", "initial"}};

  Number request;
  request.set_value(3);
  ClientContext context;
  auto reader = stub->Count(&context, request);
  Number number;
  ASSERT_TRUE(reader->Read(&number));
  // The handler waits for the gate: the stream is still open.
  EXPECT_EQ(context.initial_metadata(), initial);
  numbers.gate.Notify();
  while (reader->Read(&number)) {
  }
  ASSERT_TRUE(reader->Finish().ok());
  EXPECT_EQ(number.value(), 3);
  EXPECT_EQ(context.initial_metadata(), initial);
  // Added after the first message: it comes with the trailing metadata.
  EXPECT_EQ(context.response_metadata(), (Metadata{{"late", "yes"}, {"phase-end", "trailing"}}));

  // A stream without messages has it in the trailing metadata.
  request.set_value(0);
  ClientContext empty;
  auto no_numbers = stub->Count(&empty, request);
  EXPECT_FALSE(no_numbers->Read(&number));
  ASSERT_TRUE(no_numbers->Finish().ok());
  EXPECT_TRUE(empty.initial_metadata().empty());
  EXPECT_EQ(empty.response_metadata(), (Metadata{{"phase", "initial"}, {"phase-end", "trailing"}}));

  // Over the server's metadata limit: a clear error, not a truncation.
  ClientContext too_big;
  auto doubled = stub->Double(&too_big);
  doubled->WritesDone();
  EXPECT_FALSE(doubled->Read(&number));
  absl::Status status = doubled->Finish();
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted) << status;

  // A unary reply carries it with the response metadata.
  ClientContext unary;
  EchoReply reply;
  ASSERT_TRUE(Echo::NewStub(client)->Echo(&unary, Request("with initial metadata"), &reply).ok());
  EXPECT_EQ(unary.response_metadata(), (Metadata{{"initial", "1"}}));
}

// Logs "<name>.start <method>" and "<name>.end <code>"; refuses calls without
// an `authorization` metadata entry when `require_token`.
template <typename Base, typename Context>
class Logging final : public Base {
 public:
  Logging(std::string name, std::vector<std::string>* log, std::mutex* mu,
          bool require_token = false)
      : name_(std::move(name)), log_(log), mu_(mu), require_token_(require_token) {}

  absl::Status OnStart(const MethodInfo& method, Context& context) override {
    Append(absl::StrCat(name_, ".start ", std::string(method.name)));
    if constexpr (std::is_same_v<Context, ServerContext>) {
      if (require_token_ && context.client_metadata().count("authorization") == 0) {
        return absl::UnauthenticatedError("no token");
      }
    } else {
      context.AddMetadata("authorization", "token");
    }
    return absl::OkStatus();
  }
  void OnEnd(const MethodInfo&, Context&, const absl::Status& status) override {
    Append(absl::StrCat(name_, ".end ", absl::StatusCodeToString(status.code())));
  }

 private:
  void Append(std::string line) {
    std::lock_guard lock(*mu_);
    log_->push_back(std::move(line));
  }

  std::string name_;
  std::vector<std::string>* log_;
  std::mutex* mu_;
  bool require_token_;
};
using ClientLog = Logging<ClientInterceptor, ClientContext>;
using ServerLog = Logging<ServerInterceptor, ServerContext>;

TEST_F(SemanticsTest, InterceptorsNestInOrderForUnaryAndStreamingCalls) {
  std::mutex mu;
  std::vector<std::string> log;
  RecordingEcho& echo = NewService<RecordingEcho>();
  NumbersHandler& numbers = NewService<NumbersHandler>();
  ServerOptions server_options;
  server_options.interceptors = {std::make_shared<ServerLog>("auth", &log, &mu, true),
                                 std::make_shared<ServerLog>("metrics", &log, &mu)};
  StartServer(server_options, {&echo, &numbers});
  ClientOptions client_options;
  client_options.interceptors = {std::make_shared<ClientLog>("logging", &log, &mu),
                                 std::make_shared<ClientLog>("token", &log, &mu)};
  auto client = NewClient(client_options);

  ClientContext unary;
  EchoReply reply;
  ASSERT_TRUE(Echo::NewStub(client)->Echo(&unary, Request("x"), &reply).ok());
  {
    std::lock_guard lock(mu);
    EXPECT_EQ(log,
              (std::vector<std::string>{"logging.start Echo", "token.start Echo", "auth.start Echo",
                                        "metrics.start Echo", "metrics.end OK", "auth.end OK",
                                        "token.end OK", "logging.end OK"}));
    log.clear();
  }

  ClientContext stream_context;
  Number three;
  three.set_value(3);
  auto reader = testing::Numbers::NewStub(client)->Count(&stream_context, three);
  Number number;
  int received = 0;
  while (reader->Read(&number)) ++received;
  EXPECT_EQ(received, 3);
  ASSERT_TRUE(reader->Finish().ok());
  std::lock_guard lock(mu);
  EXPECT_EQ(
      log, (std::vector<std::string>{"logging.start Count", "token.start Count", "auth.start Count",
                                     "metrics.start Count", "metrics.end OK", "auth.end OK",
                                     "token.end OK", "logging.end OK"}));
}

TEST_F(SemanticsTest, ServerInterceptorRefusalStopsTheCallBeforeTheHandler) {
  std::mutex mu;
  std::vector<std::string> log;
  RecordingEcho& echo = NewService<RecordingEcho>();
  ServerOptions server_options;
  server_options.interceptors = {std::make_shared<ServerLog>("auth", &log, &mu, true),
                                 std::make_shared<ServerLog>("metrics", &log, &mu)};
  StartServer(server_options, {&echo});
  ClientContext context;  // No token interceptor on this client.
  EchoReply reply;
  absl::Status status = Echo::NewStub(NewClient())->Echo(&context, Request("x"), &reply);
  EXPECT_EQ(status.code(), absl::StatusCode::kUnauthenticated) << status;
  EXPECT_EQ(echo.calls(), 0);
  std::lock_guard lock(mu);
  EXPECT_EQ(log, (std::vector<std::string>{"auth.start Echo", "auth.end UNAUTHENTICATED"}));
}

TEST_F(SemanticsTest, OverloadIsShedWithResourceExhaustedAndTheServerStaysResponsive) {
  RecordingEcho& echo = NewService<RecordingEcho>();
  ServerOptions server_options;
  server_options.num_threads = 2;
  server_options.max_concurrent_calls = 4;
  StartServer(server_options, {&echo});
  ClientOptions client_options;
  client_options.retry.max_attempts = 1;  // See every refusal.
  auto stub = Echo::NewStub(NewClient(client_options));

  constexpr int kCalls = 40;
  std::vector<std::unique_ptr<ClientContext>> contexts;
  std::vector<std::future<absl::StatusOr<EchoReply>>> calls;
  for (int i = 0; i < kCalls; ++i) {
    contexts.push_back(std::make_unique<ClientContext>());
    calls.push_back(stub->AsyncEcho(contexts.back().get(), Request("load", 300)));
  }
  int ok = 0;
  int shed = 0;
  for (auto& call : calls) {
    absl::StatusOr<EchoReply> result = call.get();
    if (result.ok()) {
      ++ok;
    } else {
      EXPECT_EQ(result.status().code(), absl::StatusCode::kResourceExhausted) << result.status();
      EXPECT_TRUE(IsUnprocessed(result.status())) << result.status();
      ++shed;
    }
  }
  std::printf("overload: %d calls sent, %d answered OK, %d shed with RESOURCE_EXHAUSTED\n", kCalls,
              ok, shed);
  EXPECT_EQ(ok + shed, kCalls);
  EXPECT_GE(ok, 4);
  EXPECT_GT(shed, 0);
  EXPECT_EQ(echo.calls(), ok) << "a shed call never reached the handler";
  // Once the burst is over, normal traffic is served again.
  ClientContext after;
  EchoReply reply;
  EXPECT_TRUE(stub->Echo(&after, Request("after"), &reply).ok());
}

TEST_F(SemanticsTest, ASlowEndpointDoesNotHoldEveryHandlerThread) {
  RecordingEcho& slow = NewService<RecordingEcho>();
  NumbersHandler& fast = NewService<NumbersHandler>();
  ServerOptions server_options;
  server_options.num_threads = 2;
  server_options.max_concurrent_handlers_per_endpoint = 1;
  StartServer(server_options, {&slow, &fast});
  auto client = NewClient();
  auto echo = Echo::NewStub(client);
  std::vector<std::unique_ptr<ClientContext>> contexts;
  std::vector<std::future<absl::StatusOr<EchoReply>>> slow_calls;
  for (int i = 0; i < 4; ++i) {
    contexts.push_back(std::make_unique<ClientContext>());
    slow_calls.push_back(echo->AsyncEcho(contexts.back().get(), Request("slow", 1000)));
  }
  for (int i = 0; i < 200 && slow.calls() == 0; ++i) absl::SleepFor(absl::Milliseconds(5));
  ClientContext context;
  Number one;
  one.set_value(1);
  auto reader = testing::Numbers::NewStub(client)->Count(&context, one);
  Number number;
  EXPECT_TRUE(reader->Read(&number));
  EXPECT_TRUE(reader->Finish().ok());
  // The other endpoint was served while slow calls still waited their turn.
  EXPECT_LT(slow.calls(), 4);
  for (auto& call : slow_calls) EXPECT_TRUE(call.get().ok());
}

// A hand-made overloaded server: refuses every request as unprocessed and
// counts them.
class AlwaysShed {
 public:
  explicit AlwaysShed(Transport& transport) {
    auto subscription = transport.Subscribe("micro.testing.Echo.*", "", [&](WireMessage request) {
      requests_.fetch_add(1);
      WireMessage reply{request.reply, "", {}, ""};
      protocol::EncodeReplyHeaders(absl::ResourceExhaustedError("overloaded"), "", {},
                                   &reply.headers)
          .IgnoreError();
      reply.headers.emplace(protocol::kUnprocessedHeader, "true");
      transport.Publish(reply).IgnoreError();
    });
    EXPECT_TRUE(subscription.ok()) << subscription.status();
    if (subscription.ok()) subscription_ = *std::move(subscription);
  }
  int requests() const { return requests_.load(); }

 private:
  std::atomic<int> requests_{0};
  std::unique_ptr<Subscription> subscription_;
};

TEST_F(SemanticsTest, UnprocessedCallsAreRetriedUntilTheBudgetRunsOut) {
  auto server_transport = Connect();
  AlwaysShed shed(*server_transport);
  ClientOptions options;
  options.retry.max_attempts = 5;
  options.retry.initial_backoff = absl::Milliseconds(1);
  auto stub = Echo::NewStub(NewClient(options));
  constexpr int kCalls = 20;
  for (int i = 0; i < kCalls; ++i) {
    ClientContext context;
    EchoReply reply;
    absl::Status status = stub->Echo(&context, Request("x"), &reply);  // Not idempotent.
    EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
  }
  // Without a budget: 5 attempts each, 100. With it (10 tokens, retries
  // while more than 5 remain): the first call's 4 retries spend it.
  std::printf("retry budget: %d calls made %d attempts\n", kCalls, shed.requests());
  EXPECT_GT(shed.requests(), kCalls);
  EXPECT_LE(shed.requests(), kCalls + 5);
}

std::string PeerBinary() { return absl::StrCat(MICRO_TEST_BINARY_DIR, "/registry_peer"); }

// The only instance hangs in its handler and is killed; a second one comes
// up. Returns what the call made meanwhile ends with, and how many calls the
// second instance served.
std::pair<absl::Status, int> CallWhileTheInstanceDies(const NatsServer& nats, bool idempotent) {
  auto peer = ChildProcess::StartAndWaitReady(
      {PeerBinary(), nats.url(), "micro-testing-Echo", "1.0.0", "1000", "60000"});
  EXPECT_TRUE(peer.ok()) << peer.status();
  if (!peer.ok()) return {peer.status(), 0};
  ClientOptions options;
  options.retry.per_attempt_timeout = absl::Seconds(1);
  auto stub = Echo::NewStub(std::make_shared<Client>(*testing::ConnectTo(nats.url()), options));
  ClientContext context;
  context.set_timeout(absl::Seconds(5));
  EchoRequest request;
  request.set_text("survive");
  auto call = idempotent ? stub->AsyncPing(&context, request) : stub->AsyncEcho(&context, request);
  absl::SleepFor(absl::Milliseconds(300));  // The call now hangs in the peer.
  (*peer)->Kill();
  auto survivor = testing::EchoInstance::Start(nats.url(), {}, absl::Seconds(1));
  EXPECT_TRUE(survivor.ok()) << survivor.status();
  absl::StatusOr<EchoReply> result = call.get();
  return {result.status(), survivor.ok() ? (*survivor)->handler().calls() : -1};
}

TEST_F(SemanticsTest, IdempotentCallIsRetriedOnAnotherInstanceWhenItsInstanceDies) {
  auto [status, served] = CallWhileTheInstanceDies(*nats_, /*idempotent=*/true);
  EXPECT_TRUE(status.ok()) << status;
  EXPECT_EQ(served, 1);
}

TEST_F(SemanticsTest, NonIdempotentCallIsNotRetriedWhenItsInstanceDies) {
  auto [status, served] = CallWhileTheInstanceDies(*nats_, /*idempotent=*/false);
  EXPECT_EQ(status.code(), absl::StatusCode::kDeadlineExceeded) << status;
  EXPECT_EQ(served, 0) << "the call may have run on the dead instance: never again";
}

TEST_F(SemanticsTest, NatsServerRestartFailsCallsFastThenRecovers) {
  RecordingEcho& echo = NewService<RecordingEcho>();
  NumbersHandler& numbers = NewService<NumbersHandler>();
  StartServer({}, {&echo, &numbers});
  ClientOptions options;
  options.retry.max_attempts = 1;
  auto client = NewClient(options);
  auto stub = Echo::NewStub(client);
  EchoReply reply;
  ClientContext before;
  ASSERT_TRUE(stub->Echo(&before, Request("before"), &reply).ok());

  nats_->Kill();
  int sent = 0;
  int unavailable = 0;
  for (int i = 0; i < 10; ++i) {
    ClientContext during;
    during.set_timeout(absl::Seconds(5));
    absl::Status status = stub->Echo(&during, Request("during"), &reply);
    ++sent;
    unavailable += absl::IsUnavailable(status);
  }
  EXPECT_EQ(unavailable, sent) << "calls during the outage fail fast, not by their deadline";

  // Unless they ask to wait: until their deadline, then DEADLINE_EXCEEDED...
  ClientContext short_wait;
  short_wait.set_wait_for_ready(true);
  short_wait.set_timeout(absl::Milliseconds(300));
  absl::Status waited = stub->Echo(&short_wait, Request("waits"), &reply);
  EXPECT_EQ(waited.code(), absl::StatusCode::kDeadlineExceeded) << waited;
  EXPECT_FALSE(IsRemoteError(waited));
  // ... or until NATS is back.
  PatientCalls patient(client, 5);
  absl::SleepFor(absl::Milliseconds(200));

  auto restarted = NatsServer::Start({}, nats_->port());
  ASSERT_TRUE(restarted.ok()) << restarted.status();
  nats_ = *std::move(restarted);
  bool recovered = false;
  int attempts = 0;
  for (; attempts < 150 && !recovered; ++attempts) {
    ClientContext after;
    after.set_timeout(absl::Seconds(1));
    recovered = stub->Echo(&after, Request("after"), &reply).ok();
    if (!recovered) absl::SleepFor(absl::Milliseconds(100));
  }
  std::printf("restart: %d calls during the outage, %d UNAVAILABLE; recovered after %d tries\n",
              sent, unavailable, attempts);
  EXPECT_TRUE(recovered) << "the service did not come back after the nats-server restart";
  patient.Join();
  EXPECT_TRUE(patient.unary_status.ok()) << patient.unary_status;
  EXPECT_TRUE(patient.stream_status.ok()) << patient.stream_status;
  EXPECT_EQ(patient.last_number, 5);
}

TEST_F(SemanticsTest, WaitForReadyCallsWaitForAServerToListen) {
  auto client = NewClient();
  auto stub = Echo::NewStub(client);
  EchoReply reply;
  ClientContext impatient;
  impatient.set_timeout(absl::Seconds(5));
  absl::Status status = stub->Echo(&impatient, Request("now"), &reply);
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;

  PatientCalls patient(client, 3);
  absl::SleepFor(absl::Milliseconds(300));
  RecordingEcho& echo = NewService<RecordingEcho>();
  NumbersHandler& numbers = NewService<NumbersHandler>();
  StartServer({}, {&echo, &numbers});
  patient.Join();
  EXPECT_TRUE(patient.stream_status.ok()) << patient.stream_status;
  EXPECT_EQ(patient.last_number, 3);
  EXPECT_TRUE(patient.unary_status.ok()) << patient.unary_status;
  EXPECT_EQ(patient.reply.text(), "patient");
  EXPECT_EQ(echo.calls(), 1);
}

}  // namespace
}  // namespace micro
