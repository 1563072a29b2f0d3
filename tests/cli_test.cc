// The `micro` binary against a real nats-server with the greeter and route
// guide examples running: its output, in tables and JSON, and its errors and
// exit statuses.
#include <gtest/gtest.h>

#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_split.h"
#include "support/cli_services.h"

namespace micro::testing {
namespace {

using ::testing::HasSubstr;

class CliTest : public CliServices {};

constexpr char kRectangle[] = R"({"lo":{"latitude":400000000,"longitude":-750000000},)"
                              R"("hi":{"latitude":420000000,"longitude":-730000000}})";

TEST_F(CliTest, ServicesListsEachServiceWithVersionsAndInstanceCounts) {
  ProcessResult table = Micro({"services"});
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_THAT(table.out, HasSubstr("NAME"));
  EXPECT_THAT(table.out, HasSubstr("helloworld-Greeter     0.0.0     1"));
  EXPECT_THAT(table.out, HasSubstr("routeguide-RouteGuide"));

  ProcessResult json = Micro({"services", "--output", "json"});
  ASSERT_EQ(json.exit_code, 0) << json.err;
  nlohmann::json services = Json(json.out);
  ASSERT_TRUE(services.is_array());
  std::vector<std::string> names;
  for (const auto& service : services) names.push_back(service["name"]);
  EXPECT_EQ(names, (std::vector<std::string>{"helloworld-Greeter", "micro-testing-Echo",
                                             "routeguide-RouteGuide"}));
  EXPECT_EQ(services[0]["versions"], nlohmann::json::array({"0.0.0"}));
  EXPECT_EQ(services[0]["instances"], 1);
}

TEST_F(CliTest, ServicesCountsEveryInstance) {
  auto second =
      ChildProcess::StartAndWaitFor({MICRO_GREETER_SERVER, "--nats", nats_->url()}, "serving");
  ASSERT_TRUE(second.ok()) << second.status();
  nlohmann::json services = Json(Micro({"services", "--output", "json"}).out);
  ASSERT_TRUE(services.is_array() && !services.empty());
  EXPECT_EQ(services[0]["name"], "helloworld-Greeter");
  EXPECT_EQ(services[0]["instances"], 2);
}

TEST_F(CliTest, DescribeShowsInstancesEndpointsAndMessageSchemas) {
  ProcessResult table = Micro({"describe", "helloworld-Greeter"});
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_THAT(table.out, HasSubstr("SayHello  unary  helloworld.Greeter.SayHello"));
  EXPECT_THAT(table.out, HasSubstr("message HelloRequest {\n    string name = 1;\n  }"));

  ProcessResult json = Micro({"describe", "routeguide-RouteGuide", "--output", "json"});
  ASSERT_EQ(json.exit_code, 0) << json.err;
  nlohmann::json service = Json(json.out);
  EXPECT_EQ(service["name"], "routeguide-RouteGuide");
  ASSERT_EQ(service["instances"].size(), 1u);
  EXPECT_EQ(service["instances"][0]["version"], "0.0.0");
  ASSERT_EQ(service["endpoints"].size(), 4u);
  const nlohmann::json& list = service["endpoints"][1];
  EXPECT_EQ(list["name"], "ListFeatures");
  EXPECT_EQ(list["kind"], "server_stream");
  EXPECT_EQ(list["request"], "routeguide.Rectangle");
  EXPECT_EQ(list["response"], "routeguide.Feature");
  // Message fields' types are described too (Rectangle holds Points).
  EXPECT_THAT(service["messages"]["routeguide.Point"].get<std::string>(),
              HasSubstr("int32 latitude = 1;"));
}

TEST_F(CliTest, DescribeTakesTheProtoServiceNameToo) {
  ProcessResult result = Micro({"describe", "helloworld.Greeter", "--output", "json"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(Json(result.out)["name"], "helloworld-Greeter");
}

TEST_F(CliTest, CallSendsJsonAndPrintsTheJsonReply) {
  ProcessResult result = Micro({"call", "helloworld-Greeter", "SayHello", R"({"name":"micro"})"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(Json(result.out), nlohmann::json({{"message", "Hello, micro!"}}));
  // The endpoint by its ADR-32 name and by its subject; the request from stdin.
  for (const char* endpoint : {"helloworld-Greeter-SayHello", "helloworld.Greeter.SayHello"}) {
    ProcessResult other =
        Micro({"call", "helloworld.Greeter", endpoint, "-", "--output", "json"}, R"({"name":"x"})");
    ASSERT_EQ(other.exit_code, 0) << other.err;
    EXPECT_EQ(other.out, "{\"message\":\"Hello, x!\"}\n");
  }
}

TEST_F(CliTest, CallPrintsTheHandlersErrorAndFails) {
  ProcessResult result = Micro({"call", "helloworld-Greeter", "SayHello", R"({"name":""})"});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_EQ(result.out, "");
  EXPECT_EQ(result.err, "micro: INVALID_ARGUMENT: name must not be empty\n");

  ProcessResult json =
      Micro({"call", "helloworld-Greeter", "SayHello", R"({"name":""})", "--output", "json"});
  EXPECT_EQ(json.exit_code, 1);
  EXPECT_EQ(Json(json.err),
            nlohmann::json({{"code", "INVALID_ARGUMENT"}, {"message", "name must not be empty"}}));
}

TEST_F(CliTest, CallRefusesJsonThatIsNotTheRequestTypeBeforeSending) {
  for (const char* bad : {R"({"name":)", R"({"nam":"x"})", R"({"name":5})", "[]"}) {
    ProcessResult result = Micro({"call", "helloworld-Greeter", "SayHello", bad});
    EXPECT_EQ(result.exit_code, 1) << bad;
    EXPECT_THAT(result.err,
                HasSubstr("INVALID_ARGUMENT: request is not a valid JSON helloworld.HelloRequest"))
        << bad;
  }
  nlohmann::json stats = Json(Micro({"stats", "helloworld-Greeter", "--output", "json"}).out);
  EXPECT_EQ(stats[0]["endpoints"][0]["num_requests"], 0);  // Nothing reached the server.
}

TEST_F(CliTest, CallOfAnUnknownServiceOrEndpointIsNotFound) {
  ProcessResult service = Micro({"call", "nobody-Here", "SayHello", "{}"});
  EXPECT_EQ(service.exit_code, 1);
  EXPECT_THAT(service.err, HasSubstr("NOT_FOUND: no instance of service 'nobody-Here'"));
  ProcessResult endpoint = Micro({"call", "helloworld-Greeter", "SayGoodbye", "{}"});
  EXPECT_EQ(endpoint.exit_code, 1);
  EXPECT_THAT(endpoint.err,
              HasSubstr("NOT_FOUND: service 'helloworld-Greeter' has no endpoint 'SayGoodbye'; "
                        "it has: SayHello"));
  ProcessResult described = Micro({"describe", "nobody-Here"});
  EXPECT_EQ(described.exit_code, 1);
  EXPECT_THAT(described.err, HasSubstr("NOT_FOUND"));
}

TEST_F(CliTest, CallTimesOutWithDeadlineExceeded) {
  ProcessResult result = Micro({"call", "micro-testing-Echo", "Echo",
                                R"({"text":"slow","sleepMs":3000})", "--timeout", "200ms"});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_THAT(result.err, HasSubstr("DEADLINE_EXCEEDED"));
}

TEST_F(CliTest, CallSendsMetadata) {
  ProcessResult result =
      Micro({"call", "micro-testing-Echo", "Echo", R"({"text":"hi"})", "--metadata", "x-a=1",
             "--metadata=x-b=two words", "--output", "json"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  nlohmann::json reply = Json(result.out);
  EXPECT_EQ(reply["text"], "hi");
  EXPECT_EQ(reply["metadata"], nlohmann::json::array({"x-a=1", "x-b=two words"}));
  ProcessResult invalid =
      Micro({"call", "micro-testing-Echo", "Echo", "{}", "--metadata", "Bad Key=1"});
  EXPECT_EQ(invalid.exit_code, 1);
  EXPECT_THAT(invalid.err, HasSubstr("INVALID_ARGUMENT"));
}

TEST_F(CliTest, CallOfAServerStreamPrintsEveryMessage) {
  ProcessResult result =
      Micro({"call", "routeguide-RouteGuide", "ListFeatures", kRectangle, "--output", "json"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(FieldOfEachLine(result.out, "name"),
            (std::vector<std::string>{"Lighthouse", "Old mill", "Stone bridge", "Ferry landing"}));
}

TEST_F(CliTest, CallOfClientAndBidiStreamsTakesAJsonArray) {
  ProcessResult route = Micro({"call", "routeguide-RouteGuide", "RecordRoute",
                               R"([{"latitude":407838351,"longitude":-746143763},)"
                               R"({"latitude":408122808,"longitude":-743999179}])",
                               "--output", "json"});
  ASSERT_EQ(route.exit_code, 0) << route.err;
  nlohmann::json summary = Json(route.out);
  EXPECT_EQ(summary["pointCount"], 2);
  EXPECT_EQ(summary["featureCount"], 2);

  // Each note is answered with the earlier notes at its point.
  ProcessResult chat = Micro({"call", "routeguide-RouteGuide", "RouteChat",
                              R"([{"location":{"latitude":1},"message":"a"},)"
                              R"({"location":{"latitude":1},"message":"b"},)"
                              R"({"location":{"latitude":1},"message":"c"}])",
                              "--output", "json"});
  ASSERT_EQ(chat.exit_code, 0) << chat.err;
  EXPECT_EQ(FieldOfEachLine(chat.out, "message"), (std::vector<std::string>{"a", "a", "b"}));
}

TEST_F(CliTest, PingAndStatsShowEveryInstance) {
  ASSERT_EQ(Micro({"call", "helloworld-Greeter", "SayHello", R"({"name":"a"})"}).exit_code, 0);
  ASSERT_EQ(Micro({"call", "helloworld-Greeter", "SayHello", R"({"name":""})"}).exit_code, 1);

  nlohmann::json ping = Json(Micro({"ping", "--output", "json"}).out);
  ASSERT_EQ(ping.size(), 3u);
  EXPECT_EQ(ping[0]["name"], "helloworld-Greeter");
  EXPECT_GT(ping[0]["rtt_ms"].get<double>(), 0);
  EXPECT_THAT(Micro({"ping", "helloworld-Greeter"}).out, HasSubstr("helloworld-Greeter"));

  nlohmann::json stats = Json(Micro({"stats", "helloworld-Greeter", "--output", "json"}).out);
  ASSERT_EQ(stats.size(), 1u);
  const nlohmann::json& endpoint = stats[0]["endpoints"][0];
  EXPECT_EQ(endpoint["name"], "helloworld-Greeter-SayHello");
  EXPECT_EQ(endpoint["num_requests"], 2);
  EXPECT_EQ(endpoint["num_errors"], 1);
  ProcessResult table = Micro({"stats", "helloworld-Greeter"});
  EXPECT_THAT(table.out, HasSubstr("INVALID_ARGUMENT: name must not be empty"));

  ProcessResult unknown = Micro({"stats", "nobody-Here"});
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_THAT(unknown.err, HasSubstr("NOT_FOUND"));
}

// A service of the NATS services API that is no micro service: it answers
// PING, INFO and STATS, and knows nothing of SCHEMA.
class PlainService {
 public:
  explicit PlainService(Transport& transport) {
    auto subscription = transport.Subscribe("$SRV.>", "", [&transport](WireMessage request) {
      std::vector<std::string> tokens = absl::StrSplit(request.subject, '.');
      if ((tokens.size() > 2 && tokens[2] != "plain") ||
          (tokens.size() > 3 && tokens[3] != "Plain1")) {
        return;
      }
      std::string verb = tokens[1];
      std::string common = R"("name":"plain","id":"Plain1","version":"2.0.0","metadata":{})";
      std::string body;
      if (verb == "PING") {
        body = absl::StrCat(R"({"type":"io.nats.micro.v1.ping_response",)", common, "}");
      } else if (verb == "INFO") {
        body = absl::StrCat(R"({"type":"io.nats.micro.v1.info_response",)", common,
                            R"(,"description":"not micro","endpoints":[{"name":"work",)",
                            R"("subject":"plain.work","queue_group":"q"}]})");
      } else if (verb == "STATS") {
        body = absl::StrCat(R"({"type":"io.nats.micro.v1.stats_response",)", common,
                            R"(,"endpoints":[{"name":"work","subject":"plain.work",)",
                            R"("num_requests":7,"num_errors":0,"last_error":""}]})");
      } else {
        return;
      }
      transport.Publish(WireMessage{request.reply, "", {}, body}).IgnoreError();
    });
    EXPECT_TRUE(subscription.ok()) << subscription.status();
    if (subscription.ok()) subscription_ = *std::move(subscription);
  }

 private:
  std::unique_ptr<Subscription> subscription_;
};

TEST_F(CliTest, PlainAdr32ServicesShowUpButCannotBeCalledWithJson) {
  PlainService plain(*transport_);
  EXPECT_THAT(Micro({"services"}).out, HasSubstr("not micro"));
  nlohmann::json services = Json(Micro({"services", "--output", "json"}).out);
  ASSERT_EQ(services.size(), 4u);
  EXPECT_EQ(services[2],
            nlohmann::json({{"name", "plain"}, {"versions", {"2.0.0"}}, {"instances", 1}}));
  EXPECT_THAT(Micro({"ping", "plain"}).out, HasSubstr("Plain1"));
  nlohmann::json stats = Json(Micro({"stats", "plain", "--output", "json"}).out);
  ASSERT_EQ(stats.size(), 1u);
  EXPECT_EQ(stats[0]["endpoints"][0]["num_requests"], 7);
  ProcessResult described = Micro({"describe", "plain"});
  ASSERT_EQ(described.exit_code, 0) << described.err;
  EXPECT_THAT(described.out, HasSubstr("No message schemas"));
  ProcessResult call = Micro({"call", "plain", "work", "{}"});
  EXPECT_EQ(call.exit_code, 1);
  EXPECT_THAT(call.err, HasSubstr("FAILED_PRECONDITION: service 'plain' publishes no schema"));
}

TEST_F(CliTest, PublishEncodesATypeFromARunningServicesSchema) {
  auto broker = NewNatsBroker(transport_);
  ASSERT_TRUE(broker.ok()) << broker.status();
  std::mutex mu;
  std::vector<std::string> received;
  auto subscription = (*broker)->Subscribe<EchoRequest>(
      "cli.events", [&](const EchoRequest& event, const EventContext& context) {
        std::lock_guard lock(mu);
        auto it = context.metadata.find("x-from");
        received.push_back(
            absl::StrCat(event.text(), "/", it == context.metadata.end() ? "" : it->second));
        return absl::OkStatus();
      });
  ASSERT_TRUE(subscription.ok()) << subscription.status();
  ProcessResult result = Micro({"publish", "cli.events", R"({"text":"hello"})", "--type",
                                "micro.testing.EchoRequest", "--metadata", "x-from=cli"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(result.out, "published micro.testing.EchoRequest to cli.events\n");
  for (int i = 0; i < 500; ++i) {
    {
      std::lock_guard lock(mu);
      if (!received.empty()) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  std::lock_guard lock(mu);
  EXPECT_EQ(received, (std::vector<std::string>{"hello/cli"}));

  ProcessResult unknown =
      Micro({"publish", "cli.events", "{}", "--type", "micro.testing.NoSuchMessage"});
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_THAT(unknown.err, HasSubstr("NOT_FOUND"));
  // No --type, and no service announces a subscriber of the topic.
  ProcessResult untyped = Micro({"publish", "cli.events", "{}"});
  EXPECT_EQ(untyped.exit_code, 1);
  EXPECT_THAT(untyped.err, HasSubstr("NOT_FOUND: no running service subscribes to 'cli.events'"));
}

TEST_F(CliTest, PublishTakesTheTypeFromTheTopicsAnnouncedSubscribers) {
  std::mutex mu;
  std::vector<std::string> received;
  ServerOptions options;
  options.name = "shop";
  Server shop(transport_, options);
  ASSERT_TRUE(
      shop.RegisterSubscriber<EchoRequest>("cli.orders.*",
                                           [&](const EchoRequest& event, const EventContext&) {
                                             std::lock_guard lock(mu);
                                             received.push_back(event.text());
                                             return absl::OkStatus();
                                           })
          .ok());
  ASSERT_TRUE(shop.Start().ok());

  ProcessResult described = Micro({"describe", "shop"});
  ASSERT_EQ(described.exit_code, 0) << described.err;
  EXPECT_THAT(described.out, HasSubstr("Event subscriptions"));
  EXPECT_THAT(described.out, HasSubstr("cli.orders.*  -            micro.testing.EchoRequest"));
  EXPECT_THAT(described.out, HasSubstr("message EchoRequest {"));

  ProcessResult result = Micro({"publish", "cli.orders.new", R"({"text":"typed by topic"})"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(result.out, "published micro.testing.EchoRequest to cli.orders.new\n");
  shop.Stop();  // Drains: the event has been handled once Stop returns.
  std::lock_guard lock(mu);
  EXPECT_EQ(received, (std::vector<std::string>{"typed by topic"}));
}

TEST_F(CliTest, ABadCommandLineExitsWithTwo) {
  for (std::vector<std::string> args :
       std::vector<std::vector<std::string>>{{"frobnicate"},
                                             {"call", "helloworld-Greeter"},
                                             {"services", "--outptu", "json"},
                                             {"services", "--output", "yaml"},
                                             {"call", "a", "b", "{}", "--timeout", "soon"}}) {
    ProcessResult result = Micro(args);
    EXPECT_EQ(result.exit_code, 2) << args[0];
    EXPECT_THAT(result.err, HasSubstr("micro --help")) << args[0];
  }
  ProcessResult help = Micro({"--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_THAT(help.out, HasSubstr("usage: micro"));
}

TEST_F(CliTest, AnUnreachableNatsServerFailsClearly) {
  int port = PickFreePort();
  auto result =
      RunProcess({MICRO_CLI_BINARY, "services", "--nats", absl::StrCat("nats://127.0.0.1:", port)});
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->exit_code, 1);
  EXPECT_THAT(result->err, HasSubstr("UNAVAILABLE"));
}

}  // namespace
}  // namespace micro::testing
