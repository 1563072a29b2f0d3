// Typed unary calls end to end through a real nats-server: generated stub ->
// client -> NATS -> server -> generated handler, and every bad-input path.
#include <gtest/gtest.h>
#include <nats/nats.h>

#include <atomic>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "micro/micro.h"
#include "micro/testing/echo.micro.h"
#include "support/nats_server.h"
#include "support/remote_status.h"
#include "util/notification.h"

namespace micro {
namespace {

using ::micro::testing::Echo;
using ::micro::testing::EchoReply;
using ::micro::testing::EchoRequest;
using ::micro::testing::NatsServer;
using ::micro::testing::Nobody;

class EchoHandler final : public Echo::Handler {
 public:
  absl::Status Echo(ServerContext* context, const EchoRequest* request, EchoReply* reply) override {
    calls_.fetch_add(1);
    if (request->sleep_ms() > 0) absl::SleepFor(absl::Milliseconds(request->sleep_ms()));
    for (const auto& [key, value] : context->client_metadata()) {
      reply->add_metadata(absl::StrCat(key, "=", value));
    }
    context->AddResponseMetadata("served-by", "echo");
    if (context->deadline() != absl::InfiniteFuture()) {
      context->AddResponseMetadata("had-deadline", "yes");
    }
    if (request->fail_code() != 0) {
      return absl::Status(static_cast<absl::StatusCode>(request->fail_code()), request->text());
    }
    if (request->text() == "throw") throw std::runtime_error("boom");
    reply->set_text(request->text());
    if (request->reply_bytes() > 0) {
      reply->set_payload(std::string(request->reply_bytes(), 'r'));
    } else {
      reply->set_payload(request->payload());
    }
    return absl::OkStatus();
  }

  absl::Status Ping(ServerContext*, const EchoRequest*, EchoReply*) override {
    return absl::OkStatus();
  }

  int calls() const { return calls_.load(); }

 private:
  std::atomic<int> calls_{0};
};

std::shared_ptr<Transport> Connect(const NatsServer& nats) {
  TransportOptions options;
  options.url = nats.url();
  options.max_reconnect_attempts = 2;
  options.reconnect_wait = absl::Milliseconds(100);
  absl::StatusOr<std::shared_ptr<Transport>> transport = ConnectNats(options);
  EXPECT_TRUE(transport.ok()) << transport.status();
  return transport.ok() ? *transport : nullptr;
}

class UnaryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto nats = NatsServer::Start();
    ASSERT_TRUE(nats.ok()) << nats.status();
    nats_ = *std::move(nats);
    server_transport_ = Connect(*nats_);
    client_transport_ = Connect(*nats_);
    ASSERT_NE(server_transport_, nullptr);
    ASSERT_NE(client_transport_, nullptr);
    ServerOptions server_options;
    server_options.num_threads = 4;
    server_ = std::make_unique<Server>(server_transport_, server_options);
    ASSERT_TRUE(testing::RegisterEchoHandler(*server_, handler_).ok());
    ASSERT_TRUE(server_->Start().ok());
    client_ = std::make_shared<Client>(client_transport_);
    stub_ = Echo::NewStub(client_);
  }

  void TearDown() override {
    stub_.reset();
    client_.reset();
    if (server_ != nullptr) server_->Stop();
    server_.reset();
  }

  // A stub of a client of its own on the client transport.
  std::unique_ptr<Echo::Stub> StubWithExecutor(std::shared_ptr<Executor> executor,
                                               bool inline_callbacks) {
    ClientOptions options;
    options.callback_executor = std::move(executor);
    options.inline_callbacks = inline_callbacks;
    return Echo::NewStub(std::make_shared<Client>(client_transport_, options));
  }

  EchoRequest Request(std::string text) {
    EchoRequest request;
    request.set_text(std::move(text));
    return request;
  }

  std::unique_ptr<NatsServer> nats_;
  std::shared_ptr<Transport> server_transport_;
  std::shared_ptr<Transport> client_transport_;
  EchoHandler handler_;
  std::unique_ptr<Server> server_;
  std::shared_ptr<Client> client_;
  std::unique_ptr<Echo::Stub> stub_;
};

TEST_F(UnaryTest, SyncCallReturnsTheHandlersReply) {
  ClientContext context;
  EchoReply reply;
  EchoRequest request = Request("hello");
  request.set_payload(std::string(16, 'p'));
  ASSERT_TRUE(stub_->Echo(&context, request, &reply).ok());
  EXPECT_EQ(reply.text(), "hello");
  EXPECT_EQ(reply.payload(), std::string(16, 'p'));
  EXPECT_EQ(handler_.calls(), 1);
}

// A thread pool that counts the tasks it is given.
class CountingExecutor final : public Executor {
 public:
  void Schedule(absl::AnyInvocable<void() &&> task) override {
    scheduled_.fetch_add(1);
    pool_->Schedule(std::move(task));
  }
  int scheduled() const { return scheduled_.load(); }

 private:
  std::shared_ptr<Executor> pool_ = NewThreadPoolExecutor(2);
  std::atomic<int> scheduled_{0};
};

TEST_F(UnaryTest, InlineUnaryHandlersDoNotUseTheExecutor) {
  server_->Stop();  // Serve from the servers below only.
  for (bool inline_handlers : {false, true}) {
    auto executor = std::make_shared<CountingExecutor>();
    ServerOptions options;
    options.executor = executor;
    options.inline_unary_handlers = inline_handlers;
    Server server(server_transport_, options);
    ASSERT_TRUE(testing::RegisterEchoHandler(server, handler_).ok());
    ASSERT_TRUE(server.Start().ok());
    ClientContext context;
    context.set_timeout(absl::Seconds(5));
    EchoReply reply;
    ASSERT_TRUE(stub_->Echo(&context, Request("where"), &reply).ok());
    EXPECT_EQ(reply.text(), "where");
    EXPECT_EQ(context.response_metadata().count("had-deadline"), 1u);
    ClientContext failing;
    EchoRequest fail = Request("no");
    fail.set_fail_code(static_cast<int>(absl::StatusCode::kNotFound));
    EXPECT_EQ(stub_->Echo(&failing, fail, &reply).code(), absl::StatusCode::kNotFound);
    server.Stop();
    EXPECT_EQ(executor->scheduled(), inline_handlers ? 0 : 2) << "inline: " << inline_handlers;
  }
}

// ClientOptions::inline_callbacks: a completion with a reply, an error
// reply included, runs where the reply was received; completions without
// one (an error before sending, the deadline) still go to the executor.
TEST_F(UnaryTest, InlineCallbacksRunRepliesWithoutTheExecutor) {
  for (bool inline_callbacks : {false, true}) {
    auto executor = std::make_shared<CountingExecutor>();
    std::unique_ptr<Echo::Stub> stub = StubWithExecutor(executor, inline_callbacks);
    // Each call's status, and whether its callback ran on this thread.
    auto call = [&](ClientContext* context, const EchoRequest& request) {
      EchoReply reply;
      internal::Notification done;
      absl::Status status = absl::UnknownError("not called");
      std::thread::id ran_on;
      stub->AsyncEcho(context, request, &reply, [&](absl::Status outcome) {
        status = outcome;
        ran_on = std::this_thread::get_id();
        done.Notify();
      });
      EXPECT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(10)));
      EXPECT_NE(ran_on, std::this_thread::get_id());
      return status;
    };
    ClientContext ok;
    ok.set_timeout(absl::Seconds(5));
    EXPECT_TRUE(call(&ok, Request("fine")).ok());
    ClientContext refused;
    refused.set_timeout(absl::Seconds(5));
    EchoRequest fail = Request("no");
    fail.set_fail_code(static_cast<int>(absl::StatusCode::kNotFound));
    EXPECT_EQ(call(&refused, fail).code(), absl::StatusCode::kNotFound);
    EXPECT_EQ(executor->scheduled(), inline_callbacks ? 0 : 2) << "inline: " << inline_callbacks;

    ClientContext invalid;
    invalid.AddMetadata("micro-status", "0");
    EXPECT_EQ(call(&invalid, Request("x")).code(), absl::StatusCode::kInvalidArgument);
    ClientContext late;
    late.set_timeout(absl::Milliseconds(100));
    EchoRequest slow = Request("slow");
    slow.set_sleep_ms(400);
    EXPECT_EQ(call(&late, slow).code(), absl::StatusCode::kDeadlineExceeded);
    EXPECT_EQ(executor->scheduled(), inline_callbacks ? 2 : 4) << "inline: " << inline_callbacks;
  }
}

// The completion of one call starts the next, as a pipelined client does,
// on the thread that received the reply.
TEST_F(UnaryTest, AnInlineCallbackMayStartTheNextCall) {
  auto executor = std::make_shared<CountingExecutor>();
  std::unique_ptr<Echo::Stub> stub = StubWithExecutor(executor, /*inline_callbacks=*/true);
  constexpr int kCalls = 50;
  std::vector<ClientContext> contexts(kCalls);
  std::vector<EchoReply> replies(kCalls);
  std::atomic<int> ok{0};
  internal::Notification done;
  std::function<void(int)> start = [&](int i) {
    contexts[i].set_timeout(absl::Seconds(5));
    stub->AsyncEcho(&contexts[i], Request(absl::StrCat(i)), &replies[i],
                    [&, i](absl::Status status) {
                      if (status.ok() && replies[i].text() == absl::StrCat(i)) ++ok;
                      if (i + 1 < kCalls) {
                        start(i + 1);
                      } else {
                        done.Notify();
                      }
                    });
  };
  start(0);
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(30)));
  EXPECT_EQ(ok.load(), kCalls);
  EXPECT_EQ(executor->scheduled(), 0);
}

// The slow call runs on the thread that read it (ServerOptions::
// handoff_after), which then hands the reading of the service's subject to
// another thread; a handler thread would otherwise be free anyway.
TEST_F(UnaryTest, ASlowHandlerDoesNotHoldUpTheCallsBehindIt) {
  ClientContext slow_context;
  slow_context.set_timeout(absl::Seconds(20));
  EchoRequest slow = Request("slow");
  slow.set_sleep_ms(3000);
  std::future<absl::StatusOr<EchoReply>> slow_call = stub_->AsyncEcho(&slow_context, slow);
  for (int i = 0; i < 2000 && handler_.calls() == 0; ++i) absl::SleepFor(absl::Milliseconds(5));
  ASSERT_EQ(handler_.calls(), 1);
  ClientContext context;
  context.set_timeout(absl::Seconds(1));
  EchoReply reply;
  absl::Status fast = stub_->Echo(&context, Request("fast"), &reply);
  EXPECT_TRUE(fast.ok()) << fast;
  EXPECT_TRUE(slow_call.get().ok());
}

TEST_F(UnaryTest, AsyncCallbackAndFutureForms) {
  ClientContext callback_context;
  EchoReply callback_reply;
  internal::Notification done;
  absl::Status callback_status = absl::UnknownError("not called");
  stub_->AsyncEcho(&callback_context, Request("callback"), &callback_reply,
                   [&](absl::Status status) {
                     callback_status = status;
                     done.Notify();
                   });
  ClientContext future_context;
  std::future<absl::StatusOr<EchoReply>> future =
      stub_->AsyncEcho(&future_context, Request("future"));
  absl::StatusOr<EchoReply> future_reply = future.get();
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  ASSERT_TRUE(callback_status.ok()) << callback_status;
  EXPECT_EQ(callback_reply.text(), "callback");
  ASSERT_TRUE(future_reply.ok()) << future_reply.status();
  EXPECT_EQ(future_reply->text(), "future");
}

TEST_F(UnaryTest, ManyConcurrentAsyncCallsEachGetTheirOwnReply) {
  constexpr int kCalls = 500;
  std::vector<std::unique_ptr<ClientContext>> contexts;
  std::vector<EchoReply> replies(kCalls);
  std::atomic<int> ok{0};
  std::atomic<int> finished{0};
  internal::Notification all_done;
  for (int i = 0; i < kCalls; ++i) {
    contexts.push_back(std::make_unique<ClientContext>());
    stub_->AsyncEcho(contexts.back().get(), Request(absl::StrCat("call-", i)), &replies[i],
                     [&, i](absl::Status status) {
                       if (status.ok() && replies[i].text() == absl::StrCat("call-", i)) ++ok;
                       if (++finished == kCalls) all_done.Notify();
                     });
  }
  ASSERT_TRUE(all_done.WaitForNotificationWithTimeout(absl::Seconds(30)));
  EXPECT_EQ(ok.load(), kCalls);
}

TEST_F(UnaryTest, MetadataTravelsBothWays) {
  ClientContext context;
  context.AddMetadata("Authorization", "Bearer token-1");
  context.AddMetadata("x-request-id", "42");
  EchoReply reply;
  ASSERT_TRUE(stub_->Echo(&context, Request("md"), &reply).ok());
  EXPECT_EQ(std::vector<std::string>(reply.metadata().begin(), reply.metadata().end()),
            (std::vector<std::string>{"authorization=Bearer token-1", "x-request-id=42"}));
  EXPECT_EQ(context.response_metadata().count("served-by"), 1u);
  EXPECT_EQ(context.response_metadata().find("served-by")->second, "echo");
  // The client applies its default timeout, and the server sees it.
  EXPECT_EQ(context.response_metadata().count("had-deadline"), 1u);
}

TEST_F(UnaryTest, InvalidMetadataFailsBeforeSending) {
  ClientContext context;
  context.AddMetadata("micro-status", "0");
  EchoReply reply;
  EXPECT_EQ(stub_->Echo(&context, Request("x"), &reply).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(handler_.calls(), 0);
}

TEST_F(UnaryTest, JsonContentTypeEndToEnd) {
  ClientOptions options;
  options.content_type = "application/json";
  auto json_client = std::make_shared<Client>(client_transport_, options);
  auto stub = Echo::NewStub(json_client);
  ClientContext context;
  EchoReply reply;
  ASSERT_TRUE(stub->Echo(&context, Request("as json"), &reply).ok());
  EXPECT_EQ(reply.text(), "as json");
}

TEST_F(UnaryTest, HandlerErrorsKeepCodeAndMessage) {
  for (int code = 1; code <= 16; ++code) {
    ClientContext context;
    EchoRequest request = Request(absl::StrCat("failure ", code));
    request.set_fail_code(code);
    EchoReply reply;
    absl::Status status = stub_->Echo(&context, request, &reply);
    EXPECT_TRUE(testing::IsRemote(
        status, absl::Status(static_cast<absl::StatusCode>(code), absl::StrCat("failure ", code))));
    // Response metadata also comes back with errors.
    EXPECT_EQ(context.response_metadata().count("served-by"), 1u);
  }
}

TEST_F(UnaryTest, HandlerThatThrowsIsUnknownAndServerKeepsServing) {
  ClientContext context;
  EchoReply reply;
  absl::Status status = stub_->Echo(&context, Request("throw"), &reply);
  EXPECT_EQ(status.code(), absl::StatusCode::kUnknown);
  EXPECT_NE(status.message().find("boom"), std::string::npos) << status;
  ClientContext again;
  EXPECT_TRUE(stub_->Echo(&again, Request("still here"), &reply).ok());
}

TEST_F(UnaryTest, UnknownMethodIsUnimplemented) {
  static constexpr MethodInfo kMissing{
      "micro.testing.Echo",     "Missing", "micro.testing.Echo.Missing",
      RpcKind::kUnary,          false,     "micro.testing.EchoRequest",
      "micro.testing.EchoReply"};
  ClientContext context;
  EchoReply reply;
  absl::Status status = client_->Call(&context, kMissing, Request("x"), &reply);
  EXPECT_EQ(status.code(), absl::StatusCode::kUnimplemented) << status;
  EXPECT_NE(status.message().find("micro.testing.Echo.Missing"), std::string::npos) << status;
}

TEST_F(UnaryTest, NoServiceListeningIsUnavailableWithoutWaitingForTheDeadline) {
  auto nobody = Nobody::NewStub(client_);
  ClientContext context;
  context.set_timeout(absl::Seconds(20));
  EchoReply reply;
  absl::Time start = absl::Now();
  absl::Status status = nobody->Call(&context, Request("anyone?"), &reply);
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
  EXPECT_LT(absl::Now() - start, absl::Seconds(20)) << "the call waited for its deadline";
}

TEST_F(UnaryTest, SlowHandlerIsDeadlineExceededAtTheCallersDeadline) {
  // Taken before the deadline is set, so the deadline is no earlier than
  // start + 300 ms (it failed once by 0.1 ms the other way round).
  absl::Time start = absl::Now();
  ClientContext context;
  context.set_timeout(absl::Milliseconds(300));
  EchoRequest request = Request("slow");
  request.set_sleep_ms(2000);
  EchoReply reply;
  absl::Status status = stub_->Echo(&context, request, &reply);
  absl::Duration elapsed = absl::Now() - start;
  EXPECT_EQ(status.code(), absl::StatusCode::kDeadlineExceeded) << status;
  EXPECT_GE(elapsed, absl::Milliseconds(300));
  EXPECT_LT(elapsed, absl::Milliseconds(2000)) << "the call waited for the handler";
}

TEST_F(UnaryTest, ExpiredDeadlineFailsWithoutSending) {
  ClientContext context;
  context.set_deadline(absl::Now() - absl::Seconds(1));
  EchoReply reply;
  EXPECT_EQ(stub_->Echo(&context, Request("late"), &reply).code(),
            absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(handler_.calls(), 0);
}

TEST_F(UnaryTest, OneSlowCallDoesNotBlockAnother) {
  ClientContext slow_context;
  EchoRequest slow = Request("slow");
  slow.set_sleep_ms(1500);
  auto slow_call = stub_->AsyncEcho(&slow_context, slow);
  absl::SleepFor(absl::Milliseconds(50));
  ClientContext fast_context;
  EchoReply reply;
  ASSERT_TRUE(stub_->Echo(&fast_context, Request("fast"), &reply).ok());
  EXPECT_EQ(slow_call.wait_for(std::chrono::seconds(0)), std::future_status::timeout)
      << "the fast call should finish while the slow one still runs";
  EXPECT_TRUE(slow_call.get().ok());
}

TEST_F(UnaryTest, OversizedRequestIsResourceExhaustedBeforeSending) {
  ClientContext context;
  EchoRequest request = Request("big");
  request.set_payload(std::string(client_transport_->MaxPayload() + 1, 'b'));
  EchoReply reply;
  absl::Status status = stub_->Echo(&context, request, &reply);
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted) << status;
  EXPECT_EQ(handler_.calls(), 0);
}

TEST_F(UnaryTest, OversizedReplyIsResourceExhaustedAtTheCaller) {
  ClientContext context;
  EchoRequest request = Request("big reply");
  request.set_reply_bytes(static_cast<int>(server_transport_->MaxPayload()) + 10);
  EchoReply reply;
  absl::Status status = stub_->Echo(&context, request, &reply);
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted) << status;
  EXPECT_NE(status.message().find("max payload"), std::string::npos) << status;
}

TEST_F(UnaryTest, StopAnswersEveryAcceptedCall) {
  constexpr int kCalls = 6;
  std::vector<std::unique_ptr<ClientContext>> contexts;
  std::vector<std::future<absl::StatusOr<EchoReply>>> calls;
  for (int i = 0; i < kCalls; ++i) {
    contexts.push_back(std::make_unique<ClientContext>());
    EchoRequest request = Request(absl::StrCat("in flight ", i));
    request.set_sleep_ms(300);
    calls.push_back(stub_->AsyncEcho(contexts.back().get(), request));
  }
  // Let the requests reach the server before it stops.
  for (int i = 0; i < 200 && handler_.calls() == 0; ++i) absl::SleepFor(absl::Milliseconds(5));
  server_->Stop();
  for (int i = 0; i < kCalls; ++i) {
    absl::StatusOr<EchoReply> reply = calls[i].get();
    ASSERT_TRUE(reply.ok()) << "call " << i << ": " << reply.status();
    EXPECT_EQ(reply->text(), absl::StrCat("in flight ", i));
  }
}

// The wire format is usable by any NATS client: here raw nats.c, no micro code.
class RawNatsCaller {
 public:
  explicit RawNatsCaller(const std::string& url) {
    EXPECT_EQ(natsConnection_ConnectTo(&connection_, url.c_str()), NATS_OK);
  }
  ~RawNatsCaller() { natsConnection_Destroy(connection_); }

  // Sends `data` with `headers` and returns the reply (nullptr on failure).
  natsMsg* Request(const char* subject, const std::string& data,
                   const std::vector<std::pair<const char*, const char*>>& headers) {
    natsMsg* request = nullptr;
    EXPECT_EQ(
        natsMsg_Create(&request, subject, nullptr, data.data(), static_cast<int>(data.size())),
        NATS_OK);
    for (const auto& [key, value] : headers) natsMsgHeader_Set(request, key, value);
    natsMsg* reply = nullptr;
    natsStatus status = natsConnection_RequestMsg(&reply, connection_, request, 5000);
    natsMsg_Destroy(request);
    EXPECT_EQ(status, NATS_OK) << natsStatus_GetText(status);
    return reply;
  }

 private:
  natsConnection* connection_ = nullptr;
};

std::string Header(natsMsg* msg, const char* key) {
  const char* value = nullptr;
  return natsMsgHeader_Get(msg, key, &value) == NATS_OK ? value : "";
}

TEST_F(UnaryTest, PlainNatsRequestWithProtobufBodyAndNoHeaders) {
  RawNatsCaller raw(nats_->url());
  natsMsg* reply = raw.Request("micro.testing.Echo.Echo", Request("raw").SerializeAsString(), {});
  ASSERT_NE(reply, nullptr);
  EchoReply decoded;
  ASSERT_TRUE(decoded.ParseFromArray(natsMsg_GetData(reply), natsMsg_GetDataLength(reply)));
  EXPECT_EQ(decoded.text(), "raw");
  EXPECT_EQ(Header(reply, "Micro-Status"), "");
  // Protobuf is what an absent Content-Type means (docs/PROTOCOL.md, "Reply").
  EXPECT_EQ(Header(reply, "Content-Type"), "");
  EXPECT_EQ(Header(reply, "served-by"), "echo");
  natsMsg_Destroy(reply);
}

TEST_F(UnaryTest, MalformedBodyIsInvalidArgumentAndServerKeepsServing) {
  RawNatsCaller raw(nats_->url());
  natsMsg* reply = raw.Request("micro.testing.Echo.Echo", std::string("\xff\xff\xff\xff\x0f", 5),
                               {{"Content-Type", "application/protobuf"}});
  ASSERT_NE(reply, nullptr);
  EXPECT_EQ(Header(reply, "Micro-Status"), "3");
  EXPECT_EQ(Header(reply, "Nats-Service-Error-Code"), "400");
  EXPECT_NE(Header(reply, "Nats-Service-Error").find("micro.testing.EchoRequest"),
            std::string::npos);
  natsMsg_Destroy(reply);

  natsMsg* json_reply = raw.Request("micro.testing.Echo.Echo", "{\"text\": 5",
                                    {{"Content-Type", "application/json"}});
  ASSERT_NE(json_reply, nullptr);
  EXPECT_EQ(Header(json_reply, "Micro-Status"), "3");
  natsMsg_Destroy(json_reply);

  natsMsg* bad_type = raw.Request("micro.testing.Echo.Echo", "", {{"Content-Type", "text/xml"}});
  ASSERT_NE(bad_type, nullptr);
  EXPECT_EQ(Header(bad_type, "Micro-Status"), "3");
  natsMsg_Destroy(bad_type);

  natsMsg* bad_timeout = raw.Request("micro.testing.Echo.Echo", "", {{"Micro-Timeout", "soon"}});
  ASSERT_NE(bad_timeout, nullptr);
  EXPECT_EQ(Header(bad_timeout, "Micro-Status"), "3");
  natsMsg_Destroy(bad_timeout);

  ClientContext context;
  EchoReply echo;
  EXPECT_TRUE(stub_->Echo(&context, Request("after garbage"), &echo).ok());
  EXPECT_EQ(echo.text(), "after garbage");
}

TEST(GeneratedCode, DescribesEndpointsAtRunTime) {
  EXPECT_EQ(Echo::Methods::kEcho.subject, "micro.testing.Echo.Echo");
  EXPECT_EQ(Echo::Methods::kEcho.request_type, "micro.testing.EchoRequest");
  EXPECT_EQ(Echo::Methods::kEcho.response_type, "micro.testing.EchoReply");
  EXPECT_FALSE(Echo::Methods::kEcho.idempotent);
  EXPECT_TRUE(Echo::Methods::kPing.idempotent);  // NO_SIDE_EFFECTS in the proto.
  EchoHandler handler;
  ServiceDefinition definition = handler.Definition();
  ASSERT_NE(definition.descriptor, nullptr);
  EXPECT_EQ(definition.descriptor->full_name(), "micro.testing.Echo");
  EXPECT_EQ(definition.descriptor->FindMethodByName("Echo")->input_type()->full_name(),
            "micro.testing.EchoRequest");
  ASSERT_EQ(definition.endpoints.size(), 2u);
}

TEST(Connect, NoServerIsUnavailable) {
  TransportOptions options;
  options.url = absl::StrCat("nats://127.0.0.1:", testing::PickFreePort());
  options.connect_timeout = absl::Milliseconds(500);
  absl::StatusOr<std::shared_ptr<Transport>> transport = ConnectNats(options);
  EXPECT_EQ(transport.status().code(), absl::StatusCode::kUnavailable) << transport.status();
}

TEST(Connect, MalformedUrlIsAnError) {
  TransportOptions options;
  options.url = "nats://[::1";
  EXPECT_FALSE(ConnectNats(options).ok());
}

TEST(DeadServer, CallInFlightWhenNatsDiesEndsByItsDeadline) {
  auto nats = NatsServer::Start();
  ASSERT_TRUE(nats.ok()) << nats.status();
  auto server_transport = Connect(**nats);
  auto client_transport = Connect(**nats);
  EchoHandler handler;
  auto server = std::make_unique<Server>(server_transport);
  ASSERT_TRUE(testing::RegisterEchoHandler(*server, handler).ok());
  ASSERT_TRUE(server->Start().ok());
  auto client = std::make_shared<Client>(client_transport);
  auto stub = Echo::NewStub(client);

  ClientContext context;
  context.set_timeout(absl::Seconds(2));
  EchoRequest request;
  request.set_sleep_ms(500);
  auto call = stub->AsyncEcho(&context, request);
  for (int i = 0; i < 200 && handler.calls() == 0; ++i) absl::SleepFor(absl::Milliseconds(5));
  (*nats)->Kill();
  ASSERT_EQ(call.wait_for(std::chrono::seconds(10)), std::future_status::ready) << "call hung";
  absl::StatusCode code = call.get().status().code();
  EXPECT_TRUE(code == absl::StatusCode::kUnavailable || code == absl::StatusCode::kDeadlineExceeded)
      << absl::StatusCodeToString(code);
  // A call made while NATS is gone fails too, instead of hanging.
  ClientContext later;
  later.set_timeout(absl::Milliseconds(500));
  EchoReply reply;
  EXPECT_FALSE(stub->Echo(&later, request, &reply).ok());
  server->Stop();
}

}  // namespace
}  // namespace micro
