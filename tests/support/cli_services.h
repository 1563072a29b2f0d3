// What the CLI and gateway tests run against: a real nats-server, the
// greeter and route guide example servers as processes of their own, and an
// Echo service in the test process whose handler the tests steer (delay,
// failure code) and which echoes request metadata. Plus running the `micro`
// binary.
#ifndef MICRO_TESTS_SUPPORT_CLI_SERVICES_H_
#define MICRO_TESTS_SUPPORT_CLI_SERVICES_H_

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "micro/micro.h"
#include "support/echo_instance.h"
#include "support/nats_server.h"
#include "support/process.h"

namespace micro::testing {

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
    echo_.set_id("echo");
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

  // The string `field` of each JSON object in `lines`, one a line.
  static std::vector<std::string> FieldOfEachLine(const std::string& lines, const char* field) {
    std::vector<std::string> values;
    for (absl::string_view line : absl::StrSplit(lines, '\n', absl::SkipEmpty())) {
      values.push_back(Json(std::string(line))[field]);
    }
    return values;
  }

  std::unique_ptr<NatsServer> nats_;
  std::vector<std::unique_ptr<ChildProcess>> examples_;
  std::shared_ptr<Transport> transport_;
  TaggingEchoHandler echo_;  // Answers with metadata `served-by: echo`.
  std::unique_ptr<Server> echo_server_;
};

}  // namespace micro::testing

#endif  // MICRO_TESTS_SUPPORT_CLI_SERVICES_H_
