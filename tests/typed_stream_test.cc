// Generated streaming stubs and handlers end to end through a real
// nats-server: every streaming kind, errors, deadlines, cancellation,
// metadata and malformed input.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "micro/micro.h"
#include "micro/testing/streams.micro.h"
#include "support/nats_server.h"
#include "support/remote_status.h"

namespace micro {
namespace {

using ::micro::testing::NatsServer;
using ::micro::testing::Number;
using ::micro::testing::Numbers;

Number Make(int64_t value, int fail_code = 0) {
  Number number;
  number.set_value(value);
  number.set_fail_code(fail_code);
  return number;
}

class NumbersHandler final : public Numbers::Handler {
 public:
  absl::Status Count(ServerContext* context, const Number* request,
                     ServerWriter<Number>* writer) override {
    if (request->fail_code() != 0) {
      return absl::Status(static_cast<absl::StatusCode>(request->fail_code()), "asked to fail");
    }
    for (const auto& [key, value] : context->client_metadata()) {
      context->AddResponseMetadata(absl::StrCat("echo-", key), value);
    }
    for (int64_t i = 1; i <= request->value(); ++i) {
      if (!writer->Write(Make(i))) return absl::CancelledError("the client went away");
    }
    context->AddResponseMetadata("counted", absl::StrCat(request->value()));
    return absl::OkStatus();
  }

  absl::Status Sum(ServerContext*, ServerReader<Number>* reader, Number* response) override {
    Number number;
    int64_t sum = 0;
    while (reader->Read(&number)) {
      if (number.fail_code() != 0) {
        return absl::Status(static_cast<absl::StatusCode>(number.fail_code()), "asked to fail");
      }
      sum += number.value();
    }
    response->set_value(sum);
    return absl::OkStatus();
  }

  absl::Status Double(ServerContext*, ServerReaderWriter<Number, Number>* stream) override {
    Number number;
    while (stream->Read(&number)) {
      if (!stream->Write(Make(2 * number.value()))) break;
    }
    return absl::OkStatus();
  }
};

class TypedStreamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto nats = NatsServer::Start();
    ASSERT_TRUE(nats.ok()) << nats.status();
    nats_ = *std::move(nats);
    TransportOptions options;
    options.url = nats_->url();
    auto server_transport = ConnectNats(options);
    auto client_transport = ConnectNats(options);
    ASSERT_TRUE(server_transport.ok() && client_transport.ok());
    server_ = std::make_unique<Server>(*server_transport);
    ASSERT_TRUE(testing::RegisterNumbersHandler(*server_, handler_).ok());
    ASSERT_TRUE(server_->Start().ok());
    client_ = std::make_shared<Client>(*client_transport);
    stub_ = Numbers::NewStub(client_);
  }

  void TearDown() override {
    stub_.reset();
    client_.reset();
    server_.reset();
  }

  std::unique_ptr<NatsServer> nats_;
  NumbersHandler handler_;
  std::unique_ptr<Server> server_;
  std::shared_ptr<Client> client_;
  std::unique_ptr<Numbers::Stub> stub_;
};

TEST_F(TypedStreamTest, ServerStreamingDeliversEveryMessageInOrder) {
  ClientContext context;
  context.AddMetadata("who", "me");
  auto reader = stub_->Count(&context, Make(1000));
  Number number;
  int64_t expected = 1;
  while (reader->Read(&number)) ASSERT_EQ(number.value(), expected++);
  EXPECT_EQ(expected, 1001);
  EXPECT_TRUE(reader->Finish().ok());
  const Metadata& trailers = context.response_metadata();
  ASSERT_EQ(trailers.count("counted"), 1u);
  EXPECT_EQ(trailers.find("counted")->second, "1000");
  ASSERT_EQ(trailers.count("echo-who"), 1u);
  EXPECT_EQ(trailers.find("echo-who")->second, "me");
}

TEST_F(TypedStreamTest, ClientStreamingGetsOneResponseAfterHalfClose) {
  ClientContext context;
  Number sum;
  auto writer = stub_->Sum(&context, &sum);
  for (int i = 1; i <= 100; ++i) ASSERT_TRUE(writer->Write(Make(i)));
  ASSERT_TRUE(writer->WritesDone());
  ASSERT_TRUE(writer->Finish().ok());
  EXPECT_EQ(sum.value(), 5050);
}

TEST_F(TypedStreamTest, BidiAnswersEachMessageAsItArrives) {
  ClientContext context;
  auto stream = stub_->Double(&context);
  Number number;
  for (int i = 1; i <= 50; ++i) {
    ASSERT_TRUE(stream->Write(Make(i)));
    ASSERT_TRUE(stream->Read(&number));
    EXPECT_EQ(number.value(), 2 * i);
  }
  ASSERT_TRUE(stream->WritesDone());
  EXPECT_FALSE(stream->Read(&number));
  EXPECT_TRUE(stream->Finish().ok());
}

TEST_F(TypedStreamTest, HandlerErrorsReachTheCallerForEachKind) {
  ClientContext count_context;
  auto reader = stub_->Count(&count_context, Make(5, /*fail_code=*/7));
  Number number;
  EXPECT_FALSE(reader->Read(&number));
  EXPECT_TRUE(testing::IsRemote(reader->Finish(), absl::PermissionDeniedError("asked to fail")));

  ClientContext sum_context;
  Number sum;
  auto writer = stub_->Sum(&sum_context, &sum);
  ASSERT_TRUE(writer->Write(Make(1)));
  writer->Write(Make(2, /*fail_code=*/9));
  EXPECT_TRUE(testing::IsRemote(writer->Finish(), absl::FailedPreconditionError("asked to fail")));
}

TEST_F(TypedStreamTest, DeadlineEndsAStreamThatRunsTooLong) {
  ClientContext context;
  context.set_timeout(absl::Milliseconds(300));
  auto reader = stub_->Count(&context, Make(1'000'000'000));
  Number number;
  absl::Time start = absl::Now();
  while (reader->Read(&number)) absl::SleepFor(absl::Milliseconds(1));  // A slow reader.
  EXPECT_EQ(reader->Finish().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
}

TEST_F(TypedStreamTest, ClientCancelEndsTheCall) {
  ClientContext context;
  auto stream = stub_->Double(&context);
  Number number;
  ASSERT_TRUE(stream->Write(Make(1)));
  ASSERT_TRUE(stream->Read(&number));
  stream->TryCancel();
  EXPECT_FALSE(stream->Write(Make(2)));
  EXPECT_EQ(stream->Finish().code(), absl::StatusCode::kCancelled);
}

TEST_F(TypedStreamTest, MalformedMessageIsInvalidArgument) {
  ClientContext context;
  auto socket = client_->OpenStream(&context, Numbers::Methods::kSum);
  ASSERT_TRUE(socket.ok());
  ASSERT_TRUE((*socket)->Send(std::string("\xff\xff\xff\xff\x0f", 5)).ok());
  absl::Status status = (*socket)->Finish();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
}

TEST_F(TypedStreamTest, ServerStreamingWithoutTheRequestIsInvalidArgument) {
  ClientContext context;
  auto socket = client_->OpenStream(&context, Numbers::Methods::kCount);
  ASSERT_TRUE(socket.ok());
  ASSERT_TRUE((*socket)->CloseSend().ok());
  absl::Status status = (*socket)->Finish();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
}

TEST_F(TypedStreamTest, UnaryCallOfAStreamingMethodIsUnimplemented) {
  ClientContext context;
  Number reply;
  absl::Status status = client_->Call(&context, Numbers::Methods::kCount, Make(1), &reply);
  EXPECT_EQ(status.code(), absl::StatusCode::kUnimplemented) << status;
}

TEST_F(TypedStreamTest, NoServerIsUnavailable) {
  server_->Stop();
  ClientContext context;
  auto reader = stub_->Count(&context, Make(3));
  Number number;
  EXPECT_FALSE(reader->Read(&number));
  EXPECT_EQ(reader->Finish().code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace micro
