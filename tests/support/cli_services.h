// What the CLI and gateway tests run against: a real nats-server, the
// greeter and route guide example servers as processes of their own, and an
// Echo service in the test process whose handler the tests steer (delay,
// failure code) and which echoes request metadata. Plus running the `micro`
// binary and curl.
#ifndef MICRO_TESTS_SUPPORT_CLI_SERVICES_H_
#define MICRO_TESTS_SUPPORT_CLI_SERVICES_H_

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "micro/micro.h"
#include "micro/testing/echo.micro.h"
#include "support/nats_server.h"
#include "support/process.h"

namespace micro::testing {

// Echoes `text`; sleeps `sleep_ms` first, fails with `fail_code` if set;
// lists the request metadata in the reply and answers with metadata
// `served-by: echo`.
class SteeredEcho final : public Echo::Handler {
 public:
  absl::Status Echo(ServerContext* context, const EchoRequest* request, EchoReply* reply) override {
    started_.fetch_add(1);
    if (request->sleep_ms() > 0) absl::SleepFor(absl::Milliseconds(request->sleep_ms()));
    for (const auto& [key, value] : context->client_metadata()) {
      reply->add_metadata(absl::StrCat(key, "=", value));
    }
    context->AddResponseMetadata("served-by", "echo");
    if (request->fail_code() != 0) {
      return absl::Status(static_cast<absl::StatusCode>(request->fail_code()), request->text());
    }
    reply->set_text(request->text());
    return absl::OkStatus();
  }
  absl::Status Ping(ServerContext*, const EchoRequest*, EchoReply*) override {
    return absl::OkStatus();
  }

  int started() const { return started_.load(); }

 private:
  std::atomic<int> started_{0};
};

class CliServices : public ::testing::Test {
 protected:
  void SetUp() override {
    auto nats = NatsServer::Start();
    ASSERT_TRUE(nats.ok()) << nats.status();
    nats_ = *std::move(nats);
    for (const char* binary : {MICRO_GREETER_SERVER, MICRO_ROUTE_GUIDE_SERVER}) {
      auto child = ChildProcess::StartAndWaitFor({binary, "--nats", nats_->url()}, "serving");
      ASSERT_TRUE(child.ok()) << child.status();
      examples_.push_back(*std::move(child));
    }
    TransportOptions options;
    options.url = nats_->url();
    auto transport = ConnectNats(options);
    ASSERT_TRUE(transport.ok()) << transport.status();
    transport_ = *std::move(transport);
    echo_server_ = std::make_unique<Server>(transport_);
    ASSERT_TRUE(RegisterEchoHandler(*echo_server_, echo_).ok());
    ASSERT_TRUE(echo_server_->Start().ok());
  }

  void TearDown() override {
    if (echo_server_ != nullptr) echo_server_->Stop();
  }

  // Runs `micro <args...> --nats <url>`.
  ProcessResult Micro(std::vector<std::string> args, const std::string& input = "") {
    args.insert(args.begin(), MICRO_CLI_BINARY);
    args.push_back("--nats");
    args.push_back(nats_->url());
    auto result = RunProcess(args, input);
    EXPECT_TRUE(result.ok()) << result.status();
    return result.ok() ? *result : ProcessResult{};
  }

  // The JSON `text` holds; fails the test if it is none.
  static nlohmann::json Json(const std::string& text) {
    nlohmann::json json = nlohmann::json::parse(text, nullptr, false);
    EXPECT_FALSE(json.is_discarded()) << "not JSON: " << text;
    return json;
  }

  std::unique_ptr<NatsServer> nats_;
  std::vector<std::unique_ptr<ChildProcess>> examples_;
  std::shared_ptr<Transport> transport_;
  SteeredEcho echo_;
  std::unique_ptr<Server> echo_server_;
};

}  // namespace micro::testing

#endif  // MICRO_TESTS_SUPPORT_CLI_SERVICES_H_
