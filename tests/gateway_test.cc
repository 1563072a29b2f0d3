// `micro api`, the HTTP gateway, as a process of its own, called with real
// HTTP requests (curl) while the greeter and route guide examples and an
// Echo service run: replies, the status code table, metadata headers,
// timeouts, the body limit and a graceful stop.
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "support/cli_services.h"

namespace micro::testing {
namespace {

using ::testing::HasSubstr;

constexpr char kCurl[] = "/usr/bin/curl";

struct HttpReply {
  int status = 0;
  std::multimap<std::string, std::string> headers;  // Keys lower-cased.
  std::string body;
};

class GatewayTest : public CliServices {
 protected:
  void SetUp() override {
    CliServices::SetUp();
    if (HasFatalFailure()) return;
    StartGateway({});
  }

  void StartGateway(std::vector<std::string> flags) {
    std::vector<std::string> argv = {MICRO_CLI_BINARY, "api",    "--listen",
                                     "127.0.0.1:0",    "--nats", nats_->url()};
    argv.insert(argv.end(), flags.begin(), flags.end());
    auto gateway = ChildProcess::StartAndWaitFor(argv, "\n");
    ASSERT_TRUE(gateway.ok()) << gateway.status();
    gateway_ = *std::move(gateway);
    const std::string& line = gateway_->output();
    ASSERT_THAT(line, HasSubstr("micro api: listening on http://127.0.0.1:"));
    ASSERT_TRUE(absl::SimpleAtoi(line.substr(line.rfind(':') + 1), &port_)) << line;
  }

  // POST (or `method`) `path` with `body`, through curl.
  HttpReply Request(const std::string& path, const std::string& body,
                    const std::vector<std::string>& headers = {},
                    const std::string& method = "POST") {
    std::vector<std::string> argv = {kCurl,           "-sS", "-i",      "-X",
                                     method,          "-H",  "Expect:",  // No 100 Continue.
                                     "--data-binary", "@-"};
    for (const std::string& header : headers) {
      argv.push_back("-H");
      argv.push_back(header);
    }
    argv.push_back(absl::StrCat("http://127.0.0.1:", port_, path));
    auto result = RunProcess(argv, body);
    HttpReply reply;
    EXPECT_TRUE(result.ok()) << result.status();
    if (!result.ok()) return reply;
    EXPECT_EQ(result->exit_code, 0) << result->err;
    size_t end = result->out.find("\r\n\r\n");
    EXPECT_NE(end, std::string::npos) << result->out;
    if (end == std::string::npos) return reply;
    reply.body = result->out.substr(end + 4);
    std::vector<std::string> lines = absl::StrSplit(result->out.substr(0, end), "\r\n");
    std::vector<std::string> status_line = absl::StrSplit(lines[0], ' ');
    EXPECT_TRUE(status_line.size() >= 2 && absl::SimpleAtoi(status_line[1], &reply.status))
        << lines[0];
    for (size_t i = 1; i < lines.size(); ++i) {
      size_t colon = lines[i].find(':');
      if (colon == std::string::npos) continue;
      reply.headers.emplace(absl::AsciiStrToLower(lines[i].substr(0, colon)),
                            std::string(absl::StripAsciiWhitespace(lines[i].substr(colon + 1))));
    }
    return reply;
  }

  static std::string Header(const HttpReply& reply, const std::string& key) {
    auto it = reply.headers.find(key);
    return it == reply.headers.end() ? "" : it->second;
  }

  std::unique_ptr<ChildProcess> gateway_;
  int port_ = 0;
};

TEST_F(GatewayTest, PostCallsTheEndpointAndAnswersWithJson) {
  HttpReply reply = Request("/helloworld-Greeter/SayHello", R"({"name":"curl"})",
                            {"Content-Type: application/json"});
  EXPECT_EQ(reply.status, 200);
  EXPECT_EQ(Header(reply, "content-type"), "application/json");
  EXPECT_EQ(Json(reply.body), nlohmann::json({{"message", "Hello, curl!"}}));
  // Any Content-Type (curl -d sends form encoding), the proto service name,
  // the endpoint's subject, and an empty body as `{}`.
  HttpReply other = Request("/helloworld.Greeter/helloworld.Greeter.SayHello", "",
                            {"Content-Type: application/x-www-form-urlencoded"});
  EXPECT_EQ(other.status, 400);  // The greeter refuses the empty name: the call went through.
  EXPECT_EQ(Json(other.body)["message"], "name must not be empty");
}

TEST_F(GatewayTest, ErrorsAreMappedToHttpStatusesWithAJsonBody) {
  HttpReply reply = Request("/helloworld-Greeter/SayHello", R"({"name":""})");
  EXPECT_EQ(reply.status, 400);
  EXPECT_EQ(Header(reply, "content-type"), "application/json");
  EXPECT_EQ(Json(reply.body),
            nlohmann::json({{"code", "INVALID_ARGUMENT"}, {"message", "name must not be empty"}}));
}

TEST_F(GatewayTest, EveryStatusCodeHasItsHttpStatus) {
  const std::map<absl::StatusCode, int> kTable = {
      {absl::StatusCode::kCancelled, 499},          {absl::StatusCode::kUnknown, 500},
      {absl::StatusCode::kInvalidArgument, 400},    {absl::StatusCode::kDeadlineExceeded, 504},
      {absl::StatusCode::kNotFound, 404},           {absl::StatusCode::kAlreadyExists, 409},
      {absl::StatusCode::kPermissionDenied, 403},   {absl::StatusCode::kResourceExhausted, 429},
      {absl::StatusCode::kFailedPrecondition, 400}, {absl::StatusCode::kAborted, 409},
      {absl::StatusCode::kOutOfRange, 400},         {absl::StatusCode::kUnimplemented, 501},
      {absl::StatusCode::kInternal, 500},           {absl::StatusCode::kUnavailable, 503},
      {absl::StatusCode::kDataLoss, 500},           {absl::StatusCode::kUnauthenticated, 401}};
  for (const auto& [code, http] : kTable) {
    HttpReply reply = Request(
        "/micro-testing-Echo/Echo",
        absl::StrCat(R"({"text":"failed on purpose","failCode":)", static_cast<int>(code), "}"));
    EXPECT_EQ(reply.status, http) << absl::StatusCodeToString(code);
    EXPECT_EQ(Json(reply.body), nlohmann::json({{"code", absl::StatusCodeToString(code)},
                                                {"message", "failed on purpose"}}));
  }
}

TEST_F(GatewayTest, UnknownServiceEndpointOrRouteIs404) {
  HttpReply service = Request("/nobody-Here/SayHello", "{}");
  EXPECT_EQ(service.status, 404);
  EXPECT_EQ(Json(service.body)["code"], "NOT_FOUND");
  HttpReply endpoint = Request("/helloworld-Greeter/SayGoodbye", "{}");
  EXPECT_EQ(endpoint.status, 404);
  EXPECT_THAT(Json(endpoint.body)["message"].get<std::string>(), HasSubstr("it has: SayHello"));
  for (auto [path, method] :
       std::vector<std::pair<std::string, std::string>>{{"/helloworld-Greeter/SayHello", "GET"},
                                                        {"/helloworld-Greeter", "POST"},
                                                        {"/a/b/c", "POST"}}) {
    HttpReply route = Request(path, "", {}, method);
    EXPECT_EQ(route.status, 404) << method << " " << path;
    EXPECT_EQ(Json(route.body)["code"], "NOT_FOUND") << method << " " << path;
  }
}

TEST_F(GatewayTest, BadJsonIs400AndNeverReachesTheService) {
  for (const char* bad : {R"({"text":)", R"({"txet":"x"})", "[1]"}) {
    HttpReply reply = Request("/micro-testing-Echo/Echo", bad);
    EXPECT_EQ(reply.status, 400) << bad;
    nlohmann::json error = Json(reply.body);
    EXPECT_EQ(error["code"], "INVALID_ARGUMENT") << bad;
    EXPECT_THAT(error["message"].get<std::string>(), HasSubstr("micro.testing.EchoRequest"));
  }
  EXPECT_EQ(echo_.calls(), 0);
}

TEST_F(GatewayTest, MetadataTravelsInMicroMetadataHeaders) {
  HttpReply reply = Request("/micro-testing-Echo/Echo", R"({"text":"hi"})",
                            {"Micro-Metadata-X-Request-Id: 42", "micro-metadata-tenant: a b",
                             "X-Not-Metadata: 1", "Authorization: Bearer secret"});
  ASSERT_EQ(reply.status, 200) << reply.body;
  nlohmann::json echoed = Json(reply.body);
  EXPECT_EQ(echoed["metadata"], nlohmann::json::array({"tenant=a b", "x-request-id=42"}));
  EXPECT_EQ(Header(reply, "micro-metadata-served-by"), "echo");
  // Also on errors.
  HttpReply failed = Request("/micro-testing-Echo/Echo", R"({"failCode":5})");
  EXPECT_EQ(failed.status, 404);
  EXPECT_EQ(Header(failed, "micro-metadata-served-by"), "echo");
  // Metadata a call may not carry is the caller's mistake.
  HttpReply invalid =
      Request("/micro-testing-Echo/Echo", "{}", {"Micro-Metadata-Bad: caf\xc3\xa9"});
  EXPECT_EQ(invalid.status, 400);
}

TEST_F(GatewayTest, MicroTimeoutBoundsTheCall) {
  HttpReply slow =
      Request("/micro-testing-Echo/Echo", R"({"sleepMs":3000})", {"Micro-Timeout: 200ms"});
  EXPECT_EQ(slow.status, 504);
  EXPECT_EQ(Json(slow.body)["code"], "DEADLINE_EXCEEDED");
  HttpReply malformed = Request("/micro-testing-Echo/Echo", "{}", {"Micro-Timeout: 5"});
  EXPECT_EQ(malformed.status, 400);
  EXPECT_THAT(Json(malformed.body)["message"].get<std::string>(), HasSubstr("Micro-Timeout"));
}

TEST_F(GatewayTest, TheDefaultTimeoutComesFromTheTimeoutFlag) {
  ASSERT_TRUE(gateway_->Terminate().ok());
  StartGateway({"--timeout", "200ms"});
  HttpReply slow = Request("/micro-testing-Echo/Echo", R"({"sleepMs":3000})");
  EXPECT_EQ(slow.status, 504);
}

TEST_F(GatewayTest, BodiesOverTheLimitAre413) {
  ASSERT_TRUE(gateway_->Terminate().ok());
  StartGateway({"--max-body", "1000"});
  std::string fits = absl::StrCat(R"({"text":")", std::string(900, 'a'), R"("})");
  HttpReply ok = Request("/micro-testing-Echo/Echo", fits);
  EXPECT_EQ(ok.status, 200);
  EXPECT_EQ(Json(ok.body)["text"].get<std::string>().size(), 900u);
  std::string too_large = absl::StrCat(R"({"text":")", std::string(2000, 'a'), R"("})");
  HttpReply refused = Request("/micro-testing-Echo/Echo", too_large);
  EXPECT_EQ(refused.status, 413);
  EXPECT_EQ(Json(refused.body)["code"], "RESOURCE_EXHAUSTED");
  EXPECT_EQ(echo_.calls(), 1);
}

TEST_F(GatewayTest, StreamingEndpointsAnswerOneJsonLinePerMessage) {
  HttpReply reply = Request("/routeguide-RouteGuide/ListFeatures",
                            R"({"lo":{"latitude":400000000,"longitude":-750000000},)"
                            R"("hi":{"latitude":420000000,"longitude":-730000000}})");
  ASSERT_EQ(reply.status, 200) << reply.body;
  EXPECT_EQ(Header(reply, "content-type"), "application/x-ndjson");
  EXPECT_EQ(FieldOfEachLine(reply.body, "name"),
            (std::vector<std::string>{"Lighthouse", "Old mill", "Stone bridge", "Ferry landing"}));
}

TEST_F(GatewayTest, SigtermLetsTheCallInProgressAnswerThenExits) {
  HttpReply reply;
  std::thread caller(
      [&] { reply = Request("/micro-testing-Echo/Echo", R"({"text":"last","sleepMs":500})"); });
  for (int i = 0; i < 1000 && echo_.calls() == 0; ++i) absl::SleepFor(absl::Milliseconds(10));
  ASSERT_EQ(echo_.calls(), 1);
  absl::StatusOr<int> exit_code = gateway_->Terminate();
  caller.join();
  ASSERT_TRUE(exit_code.ok()) << exit_code.status();
  EXPECT_EQ(*exit_code, 0);
  EXPECT_THAT(gateway_->output(), HasSubstr("micro api: stopped"));
  EXPECT_EQ(reply.status, 200);
  EXPECT_EQ(Json(reply.body)["text"], "last");
}

TEST_F(GatewayTest, AnAddressInUseFailsToStart) {
  auto result = RunProcess({MICRO_CLI_BINARY, "api", "--listen", absl::StrCat("127.0.0.1:", port_),
                            "--nats", nats_->url()});
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->exit_code, 1);
  EXPECT_THAT(result->err, HasSubstr("UNAVAILABLE: cannot listen on 127.0.0.1:"));
}

}  // namespace
}  // namespace micro::testing
