// Discovery against real nats-servers (docs/PROTOCOL.md, "Discovery"): the
// ADR-32 documents read with raw nats.c, name validation, lookups,
// announcements and watchers (SIGKILLed instances included), and a
// three-node cluster.
#include <gtest/gtest.h>
#include <nats/nats.h>

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "micro/micro.h"
#include "micro/testing/echo.micro.h"
#include "support/echo_instance.h"
#include "support/nats_server.h"
#include "support/nats_test.h"
#include "support/process.h"

namespace micro {
namespace {

using ::micro::testing::ChildProcess;
using ::micro::testing::Echo;
using ::micro::testing::EchoInstance;
using ::micro::testing::EchoReply;
using ::micro::testing::EchoRequest;
using ::micro::testing::NatsServer;
using Json = nlohmann::json;

constexpr absl::Duration kHeartbeat = absl::Milliseconds(200);

// Requests with raw nats.c: what any NATS client sees, without micro.
class RawNats {
 public:
  explicit RawNats(const std::string& url) {
    EXPECT_EQ(natsConnection_ConnectTo(&connection_, url.c_str()), NATS_OK);
  }
  ~RawNats() {
    for (natsSubscription* subscription : subscriptions_) {
      natsSubscription_Unsubscribe(subscription);
      natsSubscription_Destroy(subscription);
    }
    natsConnection_Destroy(connection_);
  }

  // Answers every request on `subject` with `body`, as another NATS
  // services implementation would. `body` must outlive this object.
  void Answer(const std::string& subject, const std::string* body) {
    natsSubscription* subscription = nullptr;
    ASSERT_EQ(natsConnection_Subscribe(
                  &subscription, connection_, subject.c_str(),
                  [](natsConnection* connection, natsSubscription*, natsMsg* msg, void* closure) {
                    const auto* body = static_cast<const std::string*>(closure);
                    natsConnection_Publish(connection, natsMsg_GetReply(msg), body->data(),
                                           static_cast<int>(body->size()));
                    natsMsg_Destroy(msg);
                  },
                  const_cast<std::string*>(body)),
              NATS_OK);
    ASSERT_EQ(natsConnection_Flush(connection_), NATS_OK);
    subscriptions_.push_back(subscription);
  }

  // The body of the first reply, or nullopt if none came within `timeout_ms`.
  std::optional<std::string> Request(const std::string& subject, const std::string& data = "",
                                     int timeout_ms = 2000) {
    natsMsg* reply = nullptr;
    natsStatus status = natsConnection_Request(&reply, connection_, subject.c_str(), data.data(),
                                               static_cast<int>(data.size()), timeout_ms);
    if (status != NATS_OK) return std::nullopt;
    std::string body(natsMsg_GetData(reply), natsMsg_GetDataLength(reply));
    natsMsg_Destroy(reply);
    return body;
  }

  // The `served-by` header of the reply to a protobuf Echo request.
  std::string ServedBy(const std::string& subject) {
    EchoRequest request;
    request.set_text("raw");
    std::string data = request.SerializeAsString();
    natsMsg* reply = nullptr;
    if (natsConnection_Request(&reply, connection_, subject.c_str(), data.data(),
                               static_cast<int>(data.size()), 2000) != NATS_OK) {
      return "";
    }
    const char* value = nullptr;
    std::string served_by =
        natsMsgHeader_Get(reply, testing::kServedBy, &value) == NATS_OK ? value : "";
    natsMsg_Destroy(reply);
    return served_by;
  }

 private:
  natsConnection* connection_ = nullptr;
  std::vector<natsSubscription*> subscriptions_;
};

std::set<std::string> Keys(const Json& object) {
  std::set<std::string> keys;
  for (const auto& [key, value] : object.items()) keys.insert(key);
  return keys;
}

Json Parse(const std::optional<std::string>& body) {
  EXPECT_TRUE(body.has_value()) << "no answer";
  return body.has_value() ? Json::parse(*body, nullptr, false) : Json();
}

const Json* FindEndpoint(const Json& document, const std::string& name) {
  for (const Json& endpoint : document["endpoints"]) {
    if (endpoint["name"] == name) return &endpoint;
  }
  return nullptr;
}

// Collects watch events for a test thread to wait on.
class EventLog {
 public:
  WatchHandler Handler() {
    return [this](const WatchEvent& event) {
      std::lock_guard lock(mu_);
      events_.push_back(event);
      changed_.notify_all();
    };
  }

  // The next event, or nullopt if none arrives within `timeout`.
  std::optional<WatchEvent> Next(absl::Duration timeout = absl::Seconds(10)) {
    std::unique_lock lock(mu_);
    if (!changed_.wait_for(lock, absl::ToChronoNanoseconds(timeout),
                           [this] { return !events_.empty(); })) {
      return std::nullopt;
    }
    WatchEvent event = std::move(events_.front());
    events_.pop_front();
    return event;
  }

 private:
  std::mutex mu_;
  std::condition_variable changed_;
  std::deque<WatchEvent> events_;
};

// transport_ is the discovering side's connection.
class RegistryTest : public testing::NatsTest {
 protected:
  std::unique_ptr<EchoInstance> StartInstance(ServerOptions options = {}) {
    auto instance = EchoInstance::Start(nats_->url(), std::move(options), kHeartbeat);
    EXPECT_TRUE(instance.ok()) << instance.status();
    return instance.ok() ? *std::move(instance) : nullptr;
  }

  std::shared_ptr<Registry> NewRegistry(NatsRegistryOptions options = {}) {
    auto registry = NewNatsRegistry(transport_, options);
    EXPECT_TRUE(registry.ok()) << registry.status();
    return registry.ok() ? *registry : nullptr;
  }
};

TEST_F(RegistryTest, SrvDocumentsMatchAdr32FieldByField) {
  absl::Time before = absl::Now();
  ServerOptions options;
  options.name = "echo-svc";
  options.version = "1.2.3-rc.1+build.5";
  options.description = "echoes what it gets";
  options.metadata = {{"region", "eu"}};
  std::unique_ptr<EchoInstance> instance = StartInstance(options);
  ASSERT_NE(instance, nullptr);
  auto stub = Echo::NewStub(std::make_shared<Client>(transport_));
  for (int code : {0, 0, 3}) {
    ClientContext context;
    EchoRequest request;
    request.set_text(code == 0 ? "fine" : "bad input");
    request.set_fail_code(code);
    EchoReply reply;
    EXPECT_EQ(stub->Echo(&context, request, &reply).code(), static_cast<absl::StatusCode>(code));
  }
  RawNats raw(nats_->url());
  const std::map<std::string, std::string> metadata = {{"region", "eu"}};

  Json ping = Parse(raw.Request("$SRV.PING.echo-svc"));
  EXPECT_EQ(Keys(ping), (std::set<std::string>{"type", "name", "id", "version", "metadata"}));
  EXPECT_EQ(ping["type"], "io.nats.micro.v1.ping_response");
  EXPECT_EQ(ping["name"], "echo-svc");
  EXPECT_EQ(ping["id"], instance->id());
  EXPECT_EQ(ping["version"], "1.2.3-rc.1+build.5");
  EXPECT_EQ(ping["metadata"], Json(metadata));

  Json info = Parse(raw.Request(absl::StrCat("$SRV.INFO.echo-svc.", instance->id())));
  EXPECT_EQ(Keys(info), (std::set<std::string>{"type", "name", "id", "version", "metadata",
                                               "description", "endpoints"}));
  EXPECT_EQ(info["type"], "io.nats.micro.v1.info_response");
  EXPECT_EQ(info["name"], "echo-svc");
  EXPECT_EQ(info["id"], instance->id());
  EXPECT_EQ(info["version"], "1.2.3-rc.1+build.5");
  EXPECT_EQ(info["description"], "echoes what it gets");
  EXPECT_EQ(info["metadata"], Json(metadata));
  ASSERT_TRUE(info["endpoints"].is_array());
  ASSERT_EQ(info["endpoints"].size(), 2u);
  const Json* echo = FindEndpoint(info, "micro-testing-Echo-Echo");
  const Json* ping_endpoint = FindEndpoint(info, "micro-testing-Echo-Ping");
  ASSERT_NE(echo, nullptr);
  ASSERT_NE(ping_endpoint, nullptr);
  EXPECT_EQ(Keys(*echo), (std::set<std::string>{"name", "subject", "queue_group", "metadata"}));
  EXPECT_EQ((*echo)["subject"], "micro.testing.Echo.Echo");
  EXPECT_EQ((*echo)["queue_group"], "q");
  EXPECT_EQ((*echo)["metadata"],
            Json(std::map<std::string, std::string>{{"micro.method", "micro.testing.Echo.Echo"},
                                                    {"micro.request", "micro.testing.EchoRequest"},
                                                    {"micro.response", "micro.testing.EchoReply"},
                                                    {"micro.kind", "unary"},
                                                    {"micro.idempotent", "false"}}));
  EXPECT_EQ((*ping_endpoint)["subject"], "micro.testing.Echo.Ping");
  EXPECT_EQ((*ping_endpoint)["metadata"]["micro.idempotent"], "true");

  // Counters are updated just after the reply leaves, so poll briefly.
  Json stats;
  for (int i = 0; i < 100; ++i) {
    stats = Parse(raw.Request("$SRV.STATS"));
    const Json* counted = FindEndpoint(stats, "micro-testing-Echo-Echo");
    if (counted != nullptr && (*counted)["num_requests"] == 3) break;
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_EQ(Keys(stats), (std::set<std::string>{"type", "name", "id", "version", "metadata",
                                                "started", "endpoints"}));
  EXPECT_EQ(stats["type"], "io.nats.micro.v1.stats_response");
  EXPECT_EQ(stats["id"], instance->id());
  absl::Time started;
  std::string error;
  ASSERT_TRUE(stats["started"].is_string());
  ASSERT_TRUE(absl::ParseTime("%Y-%m-%dT%H:%M:%E*SZ", stats["started"].get<std::string>(), &started,
                              &error))
      << stats["started"] << ": " << error;
  EXPECT_GE(started, before - absl::Seconds(1));
  EXPECT_LE(started, absl::Now());
  const Json* echo_stats = FindEndpoint(stats, "micro-testing-Echo-Echo");
  ASSERT_NE(echo_stats, nullptr);
  EXPECT_EQ(Keys(*echo_stats),
            (std::set<std::string>{"name", "subject", "queue_group", "num_requests", "num_errors",
                                   "last_error", "processing_time", "average_processing_time"}));
  EXPECT_EQ((*echo_stats)["subject"], "micro.testing.Echo.Echo");
  EXPECT_EQ((*echo_stats)["queue_group"], "q");
  ASSERT_TRUE((*echo_stats)["num_requests"].is_number_integer());
  EXPECT_EQ((*echo_stats)["num_requests"], 3);
  EXPECT_EQ((*echo_stats)["num_errors"], 1);
  EXPECT_EQ((*echo_stats)["last_error"], "INVALID_ARGUMENT: bad input");
  ASSERT_TRUE((*echo_stats)["processing_time"].is_number_integer());
  ASSERT_TRUE((*echo_stats)["average_processing_time"].is_number_integer());
  int64_t total = (*echo_stats)["processing_time"];
  EXPECT_GT(total, 0);
  EXPECT_EQ((*echo_stats)["average_processing_time"], total / 3);
  const Json* ping_stats = FindEndpoint(stats, "micro-testing-Echo-Ping");
  ASSERT_NE(ping_stats, nullptr);
  EXPECT_EQ((*ping_stats)["num_requests"], 0);
  EXPECT_EQ((*ping_stats)["num_errors"], 0);
  EXPECT_EQ((*ping_stats)["last_error"], "");
  EXPECT_EQ((*ping_stats)["processing_time"], 0);
  EXPECT_EQ((*ping_stats)["average_processing_time"], 0);
}

TEST_F(RegistryTest, OnlyMatchingDiscoveryRequestsAreAnswered) {
  ServerOptions options;
  options.name = "echo-svc";
  std::unique_ptr<EchoInstance> instance = StartInstance(options);
  ASSERT_NE(instance, nullptr);
  RawNats raw(nats_->url());
  EXPECT_TRUE(raw.Request("$SRV.PING").has_value());
  EXPECT_TRUE(raw.Request("$SRV.INFO.echo-svc").has_value());
  EXPECT_TRUE(raw.Request(absl::StrCat("$SRV.STATS.echo-svc.", instance->id())).has_value());
  EXPECT_FALSE(raw.Request("$SRV.PING.other-svc", "", 300).has_value());
  EXPECT_FALSE(raw.Request("$SRV.PING.echo-svc.NotItsId", "", 300).has_value());
  EXPECT_FALSE(raw.Request("$SRV.HELLO", "", 300).has_value());
}

TEST_F(RegistryTest, DefaultIdentityIsDerivedFromTheFirstService) {
  std::unique_ptr<EchoInstance> instance = StartInstance();
  ASSERT_NE(instance, nullptr);
  RawNats raw(nats_->url());
  Json ping = Parse(raw.Request("$SRV.PING.micro-testing-Echo"));
  EXPECT_EQ(ping["name"], "micro-testing-Echo");
  EXPECT_EQ(ping["version"], "0.0.0");
  EXPECT_EQ(ping["id"], instance->id());
}

TEST_F(RegistryTest, InvalidNamesVersionsAndMetadataAreRejected) {
  auto start = [&](ServerOptions options) {
    Server server(transport_, std::move(options));
    testing::TaggingEchoHandler handler;
    EXPECT_TRUE(testing::RegisterEchoHandler(server, handler).ok());
    return server.Start();
  };
  for (const char* name : {"a.b", "a b", "a*", "a>", "$SRV", "caf\xc3\xa9"}) {
    ServerOptions options;
    options.name = name;
    absl::Status status = start(options);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << name << ": " << status;
    EXPECT_NE(status.message().find("service name"), std::string::npos) << status;
  }
  for (const char* version : {"1.2", "v1.2.3", "01.2.3", "1.2.3-", "1.2.3+", ""}) {
    ServerOptions options;
    options.version = version;
    absl::Status status = start(options);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << version << ": " << status;
  }
  for (const char* key : {"", "micro.kind"}) {
    ServerOptions options;
    options.metadata = {{key, "x"}};
    EXPECT_EQ(start(options).code(), absl::StatusCode::kInvalidArgument) << key;
  }
  // Nothing was registered, so nobody answers discovery.
  RawNats raw(nats_->url());
  EXPECT_FALSE(raw.Request("$SRV.PING", "", 300).has_value());

  std::shared_ptr<Registry> registry = NewRegistry();
  for (const char* name : {"", "a.b", "a*", "a >"}) {
    EXPECT_EQ(registry->GetService(name).status().code(), absl::StatusCode::kInvalidArgument)
        << name;
  }
  EXPECT_EQ(registry->Watch("a.*", [](const WatchEvent&) {}).status().code(),
            absl::StatusCode::kInvalidArgument);
  Registration registration;
  registration.instance = Instance{"ok", "has.dot", "1.0.0", "", {}, {}, {}};
  EXPECT_EQ(registry->Register(registration).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(registry->Deregister("unknown").code(), absl::StatusCode::kNotFound);
}

TEST_F(RegistryTest, GetServiceReturnsEveryInstanceWhenTheAnswersStop) {
  std::vector<std::unique_ptr<EchoInstance>> instances;
  std::set<std::string> ids;
  for (int i = 0; i < 3; ++i) {
    instances.push_back(StartInstance());
    ASSERT_NE(instances.back(), nullptr);
    ids.insert(instances.back()->id());
  }
  NatsRegistryOptions options;
  options.lookup_window = absl::Seconds(20);
  std::shared_ptr<Registry> registry = NewRegistry(options);
  absl::Time start = absl::Now();
  auto service = registry->GetService("micro-testing-Echo");
  // Well before the window: the lookup ended when the answers stopped.
  EXPECT_LT(absl::Now() - start, options.lookup_window);
  ASSERT_TRUE(service.ok()) << service.status();
  EXPECT_EQ((*service)->name, "micro-testing-Echo");
  std::set<std::string> found;
  for (const Instance& instance : (*service)->instances) {
    found.insert(instance.id);
    EXPECT_EQ(instance.endpoints.size(), 2u);
  }
  EXPECT_EQ(found, ids);

  auto services = registry->ListServices();
  ASSERT_TRUE(services.ok()) << services.status();
  ASSERT_EQ(services->size(), 1u);
  EXPECT_EQ((*services)[0].instances.size(), 3u);
}

TEST_F(RegistryTest, UnknownServiceIsNotFoundAfterTheWindow) {
  std::unique_ptr<EchoInstance> instance = StartInstance();  // Someone answers $SRV, not us.
  ASSERT_NE(instance, nullptr);
  NatsRegistryOptions options;
  options.lookup_window = absl::Milliseconds(300);
  std::shared_ptr<Registry> registry = NewRegistry(options);
  absl::Time start = absl::Now();
  absl::Status status = registry->GetService("nobody-here").status();
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound) << status;
  EXPECT_GE(absl::Now() - start, options.lookup_window);
}

TEST_F(RegistryTest, ForeignInfoIsReadAndInvalidIdsAreIgnored) {
  // As another ADR-32 implementation might answer: fields we do not know,
  // nested, and null metadata.
  const std::string foreign = R"({"type":"io.nats.micro.v1.info_response","name":"foreign",
      "id":"G0abc","version":"2.0.0","metadata":null,"description":"from elsewhere",
      "api_url":"x","endpoints":[{"name":"add","subject":"calc.add","queue_group":"q",
      "metadata":{"format":"json"},"schema":{"request":{"type":"object"}}}]})";
  // An id that would turn our subjects into wildcards.
  const std::string evil = R"({"type":"io.nats.micro.v1.info_response","name":"foreign",
      "id":"a.>","version":"1.0.0","metadata":{},"endpoints":[]})";
  const std::string not_info = R"({"type":"io.nats.micro.v1.ping_response","name":"foreign",
      "id":"P1","version":"1.0.0","metadata":{}})";
  RawNats raw(nats_->url());
  for (const std::string* body : {&foreign, &evil, &not_info}) {
    raw.Answer("$SRV.INFO.foreign", body);
  }
  std::shared_ptr<Registry> registry = NewRegistry();
  auto service = registry->GetService("foreign");
  ASSERT_TRUE(service.ok()) << service.status();
  ASSERT_EQ((*service)->instances.size(), 1u);
  const Instance& instance = (*service)->instances[0];
  EXPECT_EQ(instance.id, "G0abc");
  EXPECT_EQ(instance.version, "2.0.0");
  EXPECT_EQ(instance.description, "from elsewhere");
  EXPECT_TRUE(instance.metadata.empty());
  ASSERT_EQ(instance.endpoints.size(), 1u);
  EXPECT_EQ(instance.endpoints[0], (EndpointInfo{"add", "calc.add", "q", {{"format", "json"}}}));
}

TEST_F(RegistryTest, WatcherSeesCreateUpdateAndDelete) {
  std::shared_ptr<Registry> registry = NewRegistry();
  EventLog events;
  auto watcher = registry->Watch("micro-testing-Echo", events.Handler());
  ASSERT_TRUE(watcher.ok()) << watcher.status();
  EventLog all_events;
  auto all_watcher = registry->Watch("", all_events.Handler());
  ASSERT_TRUE(all_watcher.ok()) << all_watcher.status();

  std::unique_ptr<EchoInstance> instance = StartInstance();
  ASSERT_NE(instance, nullptr);
  std::optional<WatchEvent> created = events.Next();
  ASSERT_TRUE(created.has_value());
  EXPECT_EQ(created->type, WatchEventType::kCreate);
  EXPECT_EQ(created->instance.id, instance->id());
  EXPECT_EQ(created->instance.endpoints.size(), 2u);
  EXPECT_FALSE(created->instance.lame_duck());

  ASSERT_TRUE(instance->server().EnterLameDuck().ok());
  std::optional<WatchEvent> updated = events.Next();
  ASSERT_TRUE(updated.has_value());
  EXPECT_EQ(updated->type, WatchEventType::kUpdate);
  EXPECT_TRUE(updated->instance.lame_duck());

  std::string id = instance->id();
  instance.reset();  // Stops, which deregisters.
  std::optional<WatchEvent> deleted = events.Next();
  ASSERT_TRUE(deleted.has_value());
  EXPECT_EQ(deleted->type, WatchEventType::kDelete);
  EXPECT_EQ(deleted->instance.id, id);
  // Heartbeats in between were no events.
  EXPECT_FALSE(events.Next(3 * kHeartbeat).has_value());

  for (WatchEventType type :
       {WatchEventType::kCreate, WatchEventType::kUpdate, WatchEventType::kDelete}) {
    std::optional<WatchEvent> event = all_events.Next();
    ASSERT_TRUE(event.has_value());
    EXPECT_EQ(event->type, type);
  }
}

std::string PeerBinary() { return absl::StrCat(MICRO_TEST_BINARY_DIR, "/registry_peer"); }

TEST_F(RegistryTest, SigkilledInstanceIsDeletedWithinThreeHeartbeats) {
  std::shared_ptr<Registry> registry = NewRegistry();
  EventLog events;
  auto watcher = registry->Watch("killed", events.Handler());
  ASSERT_TRUE(watcher.ok()) << watcher.status();
  auto peer =
      ChildProcess::StartAndWaitReady({PeerBinary(), nats_->url(), "killed", "1.0.0",
                                       absl::StrCat(absl::ToInt64Milliseconds(kHeartbeat))});
  ASSERT_TRUE(peer.ok()) << peer.status();
  std::optional<WatchEvent> created = events.Next();
  ASSERT_TRUE(created.has_value());
  EXPECT_EQ(created->type, WatchEventType::kCreate);
  // Alive and heartbeating: not deleted while it runs.
  EXPECT_FALSE(events.Next(6 * kHeartbeat).has_value());

  (*peer)->Kill();
  absl::Time killed = absl::Now();
  std::optional<WatchEvent> deleted = events.Next();
  ASSERT_TRUE(deleted.has_value());
  EXPECT_EQ(deleted->type, WatchEventType::kDelete);
  EXPECT_EQ(deleted->instance.id, created->instance.id);
  // Documented: 3 heartbeats after the last one; allow for a loaded machine.
  EXPECT_LE(absl::Now() - killed, 3 * kHeartbeat + absl::Seconds(1));
}

TEST_F(RegistryTest, InstanceSubjectReachesThatInstanceOnly) {
  std::unique_ptr<EchoInstance> first = StartInstance();
  std::unique_ptr<EchoInstance> second = StartInstance();
  ASSERT_NE(first, nullptr);
  ASSERT_NE(second, nullptr);
  RawNats raw(nats_->url());
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(raw.ServedBy(InstanceSubject(second->id(), "micro.testing.Echo.Echo")), second->id());
  }
  EXPECT_EQ(second->handler().calls(), 20);
  EXPECT_EQ(first->handler().calls(), 0);
}

// Three nats-servers routed to each other on loopback.
class ClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto cluster = testing::NatsCluster::Start(3);
    ASSERT_TRUE(cluster.ok()) << cluster.status();
    cluster_ = *std::move(cluster);
  }

  NatsServer& node(int i) { return cluster_->node(i); }

  std::unique_ptr<testing::NatsCluster> cluster_;
};

TEST_F(ClusterTest, ServiceOnOneNodeIsDiscoveredAndCalledFromAnother) {
  auto client_transport = testing::ConnectTo(node(2).url());
  ASSERT_TRUE(client_transport.ok()) << client_transport.status();
  auto registry = NewNatsRegistry(*client_transport);
  ASSERT_TRUE(registry.ok());
  EventLog events;
  auto watcher = (*registry)->Watch("clustered", events.Handler());
  ASSERT_TRUE(watcher.ok()) << watcher.status();

  ServerOptions options;
  options.name = "clustered";
  auto instance = EchoInstance::Start(node(0).url(), options, kHeartbeat);
  ASSERT_TRUE(instance.ok()) << instance.status();

  std::optional<WatchEvent> created = events.Next();
  ASSERT_TRUE(created.has_value()) << "no announcement crossed the routes";
  EXPECT_EQ(created->instance.id, (*instance)->id());

  auto cache = NewCachingRegistry(*registry);
  ASSERT_TRUE(cache.ok()) << cache.status();
  auto selector = NewSelector(*cache);
  ASSERT_TRUE(selector.ok());
  ClientOptions client_options;
  client_options.selector = *selector;
  client_options.service = "clustered";
  auto stub = Echo::NewStub(std::make_shared<Client>(*client_transport, client_options));
  // Interest in the instance subject travels the routes like the rest; the
  // announcement above came after it, so calls go through at once.
  for (int i = 0; i < 20; ++i) {
    ClientContext context;
    EchoRequest request;
    request.set_text(absl::StrCat("across ", i));
    EchoReply reply;
    ASSERT_TRUE(stub->Echo(&context, request, &reply).ok()) << i;
    EXPECT_EQ(reply.text(), absl::StrCat("across ", i));
    EXPECT_EQ(context.response_metadata().find(testing::kServedBy)->second, (*instance)->id());
  }
  // NATS balancing (no selector) works across the routes too.
  auto plain_transport = testing::ConnectTo(node(1).url());
  ASSERT_TRUE(plain_transport.ok());
  auto plain = Echo::NewStub(std::make_shared<Client>(*plain_transport));
  ClientContext context;
  EchoReply reply;
  EXPECT_TRUE(plain->Echo(&context, EchoRequest(), &reply).ok());
  EXPECT_EQ((*instance)->handler().calls(), 21);
}

}  // namespace
}  // namespace micro
