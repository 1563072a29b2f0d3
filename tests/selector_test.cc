// The selector and the caching registry: their rules against an in-memory
// registry, then client-side load balancing end to end through a real
// nats-server (strategies, filters, instances that start, stop, enter lame
// duck or are SIGKILLed under load, streams).
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "micro/micro.h"
#include "micro/testing/echo.micro.h"
#include "support/echo_instance.h"
#include "support/nats_server.h"
#include "support/process.h"

namespace micro {
namespace {

using ::micro::testing::ChildProcess;
using ::micro::testing::Echo;
using ::micro::testing::EchoInstance;
using ::micro::testing::EchoReply;
using ::micro::testing::EchoRequest;
using ::micro::testing::NatsServer;

constexpr char kService[] = "micro-testing-Echo";

Instance MakeInstance(std::string id, std::string version = "1.0.0",
                      std::map<std::string, std::string> metadata = {}) {
  Instance instance;
  instance.name = kService;
  instance.id = std::move(id);
  instance.version = std::move(version);
  instance.metadata = std::move(metadata);
  instance.endpoints.push_back(
      EndpointInfo{"micro-testing-Echo-Echo", "micro.testing.Echo.Echo", "q", {}});
  return instance;
}

// A registry in memory: lookups answer what Set put there (optionally held
// until Release), and Fire plays watch events.
class FakeRegistry final : public Registry {
 public:
  void Set(std::vector<Instance> instances) {
    std::lock_guard lock(mu_);
    instances_ = std::move(instances);
  }
  void Hold() {
    std::lock_guard lock(mu_);
    held_ = true;
  }
  void Release() {
    std::lock_guard lock(mu_);
    held_ = false;
    changed_.notify_all();
  }
  void Fire(const WatchEvent& event) {
    WatchHandler handler;
    {
      std::lock_guard lock(mu_);
      handler = handler_;
    }
    if (handler) handler(event);
  }
  int lookups() {
    std::lock_guard lock(mu_);
    return lookups_;
  }

  absl::StatusOr<std::shared_ptr<const ServiceInstances>> GetService(
      std::string_view name) override {
    std::unique_lock lock(mu_);
    ++lookups_;
    changed_.wait(lock, [this] { return !held_; });
    if (instances_.empty()) return absl::NotFoundError("nothing");
    auto service = std::make_shared<ServiceInstances>();
    service->name = std::string(name);
    service->instances = instances_;
    return service;
  }
  absl::StatusOr<std::unique_ptr<Watcher>> Watch(std::string_view, WatchHandler handler) override {
    std::lock_guard lock(mu_);
    handler_ = std::move(handler);
    return std::unique_ptr<Watcher>(new ClearingWatcher(this));
  }
  absl::Status Register(Registration) override { return absl::UnimplementedError("fake"); }
  absl::Status Deregister(std::string_view) override { return absl::UnimplementedError("fake"); }
  absl::StatusOr<std::vector<ServiceInstances>> ListServices() override {
    return absl::UnimplementedError("fake");
  }

 private:
  struct ClearingWatcher final : Watcher {
    explicit ClearingWatcher(FakeRegistry* registry) : registry(registry) {}
    ~ClearingWatcher() override {
      std::lock_guard lock(registry->mu_);
      registry->handler_ = nullptr;
    }
    FakeRegistry* registry;
  };

  std::mutex mu_;
  std::condition_variable changed_;
  std::vector<Instance> instances_;
  bool held_ = false;
  int lookups_ = 0;
  WatchHandler handler_;
};

std::shared_ptr<Selector> MakeSelector(std::shared_ptr<Registry> registry,
                                       SelectorOptions options = {}) {
  auto selector = NewSelector(std::move(registry), options);
  EXPECT_TRUE(selector.ok()) << selector.status();
  return selector.ok() ? *selector : nullptr;
}

// Selects `n` times, marking each pick with `outcome`; the ids picked.
std::vector<std::string> Picks(Selector& selector, int n, const SelectFilter& filter = {},
                               const absl::Status& outcome = absl::OkStatus()) {
  std::vector<std::string> ids;
  for (int i = 0; i < n; ++i) {
    auto instance = selector.Select(kService, filter);
    if (!instance.ok()) {
      ids.push_back(absl::StrCat("error: ", instance.status().ToString()));
      continue;
    }
    ids.push_back((*instance)->id);
    selector.Mark((*instance)->id, outcome);
  }
  return ids;
}

std::map<std::string, int> Tally(const std::vector<std::string>& ids) {
  std::map<std::string, int> counts;
  for (const std::string& id : ids) ++counts[id];
  return counts;
}

// A selector with `strategy` over instances a, b and c.
std::shared_ptr<Selector> SelectorOverABC(SelectStrategy strategy) {
  auto registry = std::make_shared<FakeRegistry>();
  registry->Set({MakeInstance("a"), MakeInstance("b"), MakeInstance("c")});
  SelectorOptions options;
  options.strategy = strategy;
  return MakeSelector(registry, options);
}

TEST(Selector, RoundRobinTakesInstancesInTurn) {
  auto selector = SelectorOverABC(SelectStrategy::kRoundRobin);
  EXPECT_EQ(Picks(*selector, 6), (std::vector<std::string>{"a", "b", "c", "a", "b", "c"}));
}

TEST(Selector, RandomSpreadsEvenly) {
  auto selector = SelectorOverABC(SelectStrategy::kRandom);
  // 3000 picks: each count is binomial with mean 1000 and sd 26; +-200 is 7 sd.
  std::map<std::string, int> counts = Tally(Picks(*selector, 3000));
  ASSERT_EQ(counts.size(), 3u);
  for (const auto& [id, count] : counts) {
    EXPECT_GE(count, 800) << id;
    EXPECT_LE(count, 1200) << id;
  }
}

TEST(Selector, LeastOutstandingPrefersTheLeastBusy) {
  auto selector = SelectorOverABC(SelectStrategy::kLeastOutstanding);
  std::vector<std::string> busy;
  for (int i = 0; i < 3; ++i) busy.push_back((*selector->Select(kService, {}))->id);
  EXPECT_EQ(Tally(busy), (std::map<std::string, int>{{"a", 1}, {"b", 1}, {"c", 1}}));
  selector->Mark("b", absl::OkStatus());  // b is idle again, a and c are not.
  for (int i = 0; i < 3; ++i) {
    auto picked = selector->Select(kService, {});
    ASSERT_TRUE(picked.ok());
    EXPECT_EQ((*picked)->id, "b");
    selector->Mark("b", absl::OkStatus());
  }
}

TEST(Selector, FailedInstanceBacksOffDoublingAndComesBackOnSuccess) {
  auto registry = std::make_shared<FakeRegistry>();
  registry->Set({MakeInstance("a"), MakeInstance("b")});
  SelectorOptions options;
  options.backoff = absl::Milliseconds(300);
  auto selector = MakeSelector(registry, options);
  auto a = selector->Select(kService, {});
  ASSERT_EQ((*a)->id, "a");
  absl::Time failed = absl::Now();
  selector->Mark("a", absl::UnavailableError("no responders"));
  // Avoided for the backoff period.
  while (absl::Now() < failed + absl::Milliseconds(200)) {
    EXPECT_EQ(Picks(*selector, 1), std::vector<std::string>{"b"});
  }
  // Then tried again (bounded wait: the period is 300 ms).
  bool back = false;
  for (int i = 0; i < 500 && !back; ++i) {
    absl::SleepFor(absl::Milliseconds(10));
    auto picked = selector->Select(kService, {});
    ASSERT_TRUE(picked.ok());
    back = (*picked)->id == "a";
    if (!back) selector->Mark((*picked)->id, absl::OkStatus());
  }
  ASSERT_TRUE(back);
  // A second failure in a row doubles the period to 600 ms.
  failed = absl::Now();
  selector->Mark("a", absl::UnavailableError("still down"));
  while (absl::Now() < failed + absl::Milliseconds(450)) {
    EXPECT_EQ(Picks(*selector, 1), std::vector<std::string>{"b"});
  }
  // A success clears it for good.
  for (int i = 0; i < 500; ++i) {
    auto picked = selector->Select(kService, {});
    ASSERT_TRUE(picked.ok());
    selector->Mark((*picked)->id, absl::OkStatus());
    if ((*picked)->id == "a") break;
    absl::SleepFor(absl::Milliseconds(10));
  }
  std::map<std::string, int> counts = Tally(Picks(*selector, 10));
  EXPECT_EQ(counts["a"], 5);
  EXPECT_EQ(counts["b"], 5);
}

TEST(Selector, OtherErrorsDoNotCountAsFailures) {
  auto registry = std::make_shared<FakeRegistry>();
  registry->Set({MakeInstance("a"), MakeInstance("b")});
  auto selector = MakeSelector(registry);
  std::map<std::string, int> counts =
      Tally(Picks(*selector, 10, {}, absl::InvalidArgumentError("bad request")));
  EXPECT_EQ(counts["a"], 5);
  EXPECT_EQ(counts["b"], 5);
}

TEST(Selector, EveryInstanceBackingOffIsUnavailable) {
  auto registry = std::make_shared<FakeRegistry>();
  registry->Set({MakeInstance("a"), MakeInstance("b")});
  auto selector = MakeSelector(registry);  // Backoff 1 s.
  Picks(*selector, 2, {}, absl::UnavailableError("down"));
  auto picked = selector->Select(kService, {});
  EXPECT_EQ(picked.status().code(), absl::StatusCode::kUnavailable) << picked.status();
}

TEST(Selector, LameDuckIsAvoidedUnlessNothingElseQualifies) {
  auto registry = std::make_shared<FakeRegistry>();
  registry->Set({MakeInstance("a", "1.0.0", {{"micro.lame_duck", "true"}}), MakeInstance("b"),
                 MakeInstance("c", "2.0.0")});
  auto selector = MakeSelector(registry);
  EXPECT_EQ(Tally(Picks(*selector, 4)), (std::map<std::string, int>{{"b", 2}, {"c", 2}}));
  SelectFilter v1;
  v1.version = "1.0.0";
  Picks(*selector, 1, v1, absl::UnavailableError("b is down"));
  EXPECT_EQ(Picks(*selector, 2, v1), (std::vector<std::string>{"a", "a"}));
}

TEST(Selector, FiltersByVersionMetadataAndEndpoint) {
  auto registry = std::make_shared<FakeRegistry>();
  Instance other_endpoint = MakeInstance("d", "1.0.0", {{"zone", "b"}});
  other_endpoint.endpoints[0] = EndpointInfo{"x-Y-Z", "x.Y.Z", "q", {}};
  registry->Set({MakeInstance("a", "1.0.0", {{"zone", "a"}}),
                 MakeInstance("b", "2.0.0", {{"zone", "a"}}),
                 MakeInstance("c", "2.0.0", {{"zone", "b"}}), other_endpoint});
  auto selector = MakeSelector(registry);
  SelectFilter filter;
  filter.version = "2.0.0";
  EXPECT_EQ(Tally(Picks(*selector, 4, filter)), (std::map<std::string, int>{{"b", 2}, {"c", 2}}));
  filter.metadata = {{"zone", "a"}};
  EXPECT_EQ(Picks(*selector, 2, filter), (std::vector<std::string>{"b", "b"}));
  SelectFilter endpoint;
  endpoint.endpoint = "x.Y.Z";
  EXPECT_EQ(Picks(*selector, 1, endpoint), std::vector<std::string>{"d"});
  endpoint.endpoint = "x-Y-Z";  // By ADR-32 name too.
  EXPECT_EQ(Picks(*selector, 1, endpoint), std::vector<std::string>{"d"});
  filter.version = "3.0.0";
  auto none = selector->Select(kService, filter);
  EXPECT_EQ(none.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(none.status().message().find("3.0.0"), std::string::npos) << none.status();
  registry->Set({});
  EXPECT_EQ(selector->Select(kService, {}).status().code(), absl::StatusCode::kNotFound);
  selector->Mark("never-selected", absl::UnavailableError("ignored"));
}

TEST(Selector, BadOptionsAreInvalid) {
  EXPECT_EQ(NewSelector(nullptr).status().code(), absl::StatusCode::kInvalidArgument);
  SelectorOptions options;
  options.backoff = absl::ZeroDuration();
  EXPECT_EQ(NewSelector(std::make_shared<FakeRegistry>(), options).status().code(),
            absl::StatusCode::kInvalidArgument);
}

std::shared_ptr<Registry> MakeCache(std::shared_ptr<Registry> backing,
                                    absl::Duration ttl = absl::Seconds(30)) {
  CachingRegistryOptions options;
  options.ttl = ttl;
  auto cache = NewCachingRegistry(std::move(backing), options);
  EXPECT_TRUE(cache.ok()) << cache.status();
  return cache.ok() ? *cache : nullptr;
}

std::vector<std::string> Ids(Registry& registry) {
  auto service = registry.GetService(kService);
  if (!service.ok()) return {service.status().ToString()};
  std::vector<std::string> ids;
  for (const Instance& instance : (*service)->instances) ids.push_back(instance.id);
  return ids;
}

TEST(CachingRegistry, ConcurrentFirstLookupsShareOne) {
  auto backing = std::make_shared<FakeRegistry>();
  backing->Set({MakeInstance("a")});
  backing->Hold();
  auto cache = MakeCache(backing);
  std::vector<std::thread> threads;
  std::atomic<int> found{0};
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&] { found += Ids(*cache) == std::vector<std::string>{"a"}; });
  }
  for (int i = 0; i < 500 && backing->lookups() == 0; ++i) absl::SleepFor(absl::Milliseconds(2));
  absl::SleepFor(absl::Milliseconds(50));  // Let the others reach the cache.
  backing->Release();
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(found.load(), 8);
  EXPECT_EQ(backing->lookups(), 1);
  EXPECT_EQ(Ids(*cache), std::vector<std::string>{"a"});
  EXPECT_EQ(backing->lookups(), 1);
}

TEST(CachingRegistry, WatchEventsChangeNewSnapshotsWithoutLookups) {
  auto backing = std::make_shared<FakeRegistry>();
  backing->Set({MakeInstance("b")});
  auto cache = MakeCache(backing);
  auto before = cache->GetService(kService);
  ASSERT_TRUE(before.ok());
  backing->Fire({WatchEventType::kCreate, MakeInstance("a")});
  backing->Fire({WatchEventType::kCreate, MakeInstance("c")});
  EXPECT_EQ(Ids(*cache), (std::vector<std::string>{"a", "b", "c"}));
  backing->Fire({WatchEventType::kUpdate, MakeInstance("b", "2.0.0")});
  EXPECT_EQ((*cache->GetService(kService))->instances[1].version, "2.0.0");
  backing->Fire({WatchEventType::kDelete, MakeInstance("a")});
  EXPECT_EQ(Ids(*cache), (std::vector<std::string>{"b", "c"}));
  // An event for a service nobody looked up is not cached.
  Instance stranger = MakeInstance("z");
  stranger.name = "other";
  backing->Fire({WatchEventType::kCreate, stranger});
  EXPECT_EQ(backing->lookups(), 1);
  // The snapshot handed out earlier did not change.
  ASSERT_EQ((*before)->instances.size(), 1u);
  EXPECT_EQ((*before)->instances[0].version, "1.0.0");
  // Everything deleted: NOT_FOUND, still without asking.
  backing->Fire({WatchEventType::kDelete, MakeInstance("b")});
  backing->Fire({WatchEventType::kDelete, MakeInstance("c")});
  EXPECT_EQ(cache->GetService(kService).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(backing->lookups(), 1);
}

TEST(CachingRegistry, EventDuringTheLookupIsNotLost) {
  auto backing = std::make_shared<FakeRegistry>();
  backing->Set({MakeInstance("a"), MakeInstance("b")});
  backing->Hold();
  auto cache = MakeCache(backing);
  std::vector<std::string> ids;
  std::thread lookup([&] { ids = Ids(*cache); });
  for (int i = 0; i < 500 && backing->lookups() == 0; ++i) absl::SleepFor(absl::Milliseconds(2));
  ASSERT_EQ(backing->lookups(), 1);
  // "a" stops while the answers, which still include it, are collected.
  backing->Fire({WatchEventType::kDelete, MakeInstance("a")});
  backing->Release();
  lookup.join();
  EXPECT_EQ(ids, std::vector<std::string>{"b"});
}

TEST(CachingRegistry, ExpiredEntryIsServedWhileRefreshedInTheBackground) {
  auto backing = std::make_shared<FakeRegistry>();
  backing->Set({MakeInstance("a")});
  auto cache = MakeCache(backing, absl::Milliseconds(100));
  EXPECT_EQ(Ids(*cache), std::vector<std::string>{"a"});
  backing->Set({MakeInstance("b")});
  absl::SleepFor(absl::Milliseconds(150));
  backing->Hold();  // The refresh waits; the stale answer must not.
  EXPECT_EQ(Ids(*cache), std::vector<std::string>{"a"});
  backing->Release();
  bool refreshed = false;
  for (int i = 0; i < 500 && !refreshed; ++i) {
    refreshed = Ids(*cache) == std::vector<std::string>{"b"};
    if (!refreshed) absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_TRUE(refreshed);
  EXPECT_EQ(backing->lookups(), 2);
}

TEST(CachingRegistry, FailedLookupsAreNotCached) {
  auto backing = std::make_shared<FakeRegistry>();
  auto cache = MakeCache(backing);
  EXPECT_EQ(cache->GetService(kService).status().code(), absl::StatusCode::kNotFound);
  backing->Set({MakeInstance("a")});
  EXPECT_EQ(Ids(*cache), std::vector<std::string>{"a"});
  EXPECT_EQ(backing->lookups(), 2);
  EXPECT_EQ(NewCachingRegistry(nullptr).status().code(), absl::StatusCode::kInvalidArgument);
}

// End to end: Echo instances and a client with a selector, through NATS.
class BalancingTest : public ::testing::Test {
 protected:
  static constexpr absl::Duration kHeartbeat = absl::Milliseconds(200);

  void SetUp() override {
    auto nats = NatsServer::Start();
    ASSERT_TRUE(nats.ok()) << nats.status();
    nats_ = *std::move(nats);
  }

  std::unique_ptr<EchoInstance> StartInstance(std::string version = "1.0.0",
                                              absl::Duration delay = absl::ZeroDuration()) {
    ServerOptions options;
    options.version = std::move(version);
    auto instance = EchoInstance::Start(nats_->url(), options, kHeartbeat, delay);
    EXPECT_TRUE(instance.ok()) << instance.status();
    return instance.ok() ? *std::move(instance) : nullptr;
  }

  // A client that balances with `options` over a cached NATS registry.
  void Connect(SelectorOptions options = {}, SelectFilter filter = {}) {
    auto transport = testing::ConnectTo(nats_->url());
    ASSERT_TRUE(transport.ok()) << transport.status();
    transport_ = *transport;
    NatsRegistryOptions registry_options;
    registry_options.lookup_window = absl::Milliseconds(500);
    auto registry = NewNatsRegistry(transport_, registry_options);
    ASSERT_TRUE(registry.ok());
    cache_ = MakeCache(*registry);
    selector_ = MakeSelector(cache_, options);
    ClientOptions client_options;
    client_options.selector = selector_;
    client_options.filter = std::move(filter);
    client_ = std::make_shared<Client>(transport_, client_options);
    stub_ = Echo::NewStub(client_);
  }

  // The id of the instance that served one call, or the call's error.
  std::string Call(absl::Duration timeout = absl::Seconds(5)) {
    ClientContext context;
    context.set_timeout(timeout);
    EchoRequest request;
    request.set_text("hi");
    EchoReply reply;
    absl::Status status = stub_->Echo(&context, request, &reply);
    if (!status.ok()) return absl::StrCat("error: ", status.ToString());
    auto it = context.response_metadata().find(testing::kServedBy);
    return it == context.response_metadata().end() ? "untagged" : it->second;
  }

  std::map<std::string, int> CallMany(int n) {
    std::map<std::string, int> counts;
    for (int i = 0; i < n; ++i) ++counts[Call()];
    return counts;
  }

  std::unique_ptr<NatsServer> nats_;
  std::shared_ptr<Transport> transport_;
  std::shared_ptr<Registry> cache_;
  std::shared_ptr<Selector> selector_;
  std::shared_ptr<Client> client_;
  std::unique_ptr<Echo::Stub> stub_;
};

TEST_F(BalancingTest, EachStrategySpreadsCallsOverThreeInstances) {
  std::vector<std::unique_ptr<EchoInstance>> instances;
  for (int i = 0; i < 3; ++i) instances.push_back(StartInstance());
  for (SelectStrategy strategy :
       {SelectStrategy::kRoundRobin, SelectStrategy::kRandom, SelectStrategy::kLeastOutstanding}) {
    SelectorOptions options;
    options.strategy = strategy;
    Connect(options);
    std::map<std::string, int> counts = CallMany(1500);
    ASSERT_EQ(counts.size(), 3u) << counts.begin()->first;
    for (const auto& instance : instances) {
      int count = counts[instance->id()];
      if (strategy == SelectStrategy::kRandom) {
        // Binomial, mean 500, sd 18: +-120 is more than 6 sd.
        EXPECT_GE(count, 380) << "random";
        EXPECT_LE(count, 620) << "random";
      } else {
        // One call at a time: strictly in turn (least outstanding: all tie).
        EXPECT_EQ(count, 500) << static_cast<int>(strategy);
      }
    }
  }
}

TEST_F(BalancingTest, LeastOutstandingSendsLessToASlowInstance) {
  std::vector<std::unique_ptr<EchoInstance>> instances;
  instances.push_back(StartInstance("1.0.0", absl::Milliseconds(50)));  // The slow one.
  instances.push_back(StartInstance());
  instances.push_back(StartInstance());
  SelectorOptions options;
  options.strategy = SelectStrategy::kLeastOutstanding;
  Connect(options);
  constexpr int kCallers = 6;
  constexpr int kCallsEach = 100;
  std::mutex mu;
  std::map<std::string, int> counts;
  std::vector<std::thread> callers;
  for (int i = 0; i < kCallers; ++i) {
    callers.emplace_back([&] {
      for (int j = 0; j < kCallsEach; ++j) {
        std::string id = Call();
        std::lock_guard lock(mu);
        ++counts[id];
      }
    });
  }
  for (std::thread& caller : callers) caller.join();
  EXPECT_EQ(counts[instances[1]->id()] + counts[instances[2]->id()] + counts[instances[0]->id()],
            kCallers * kCallsEach);
  // Round robin would give it a third (200); it is busy far longer than the
  // others, so it gets fewer than a tenth.
  EXPECT_LT(counts[instances[0]->id()], kCallers * kCallsEach / 10);
}

TEST_F(BalancingTest, VersionFilterPicksOnlyThatVersion) {
  auto old1 = StartInstance("1.0.0");
  auto old2 = StartInstance("1.0.0");
  auto current = StartInstance("2.0.0");
  SelectFilter filter;
  filter.version = "2.0.0";
  Connect({}, filter);
  EXPECT_EQ(CallMany(30), (std::map<std::string, int>{{current->id(), 30}}));
  filter.version = "3.0.0";
  Connect({}, filter);
  EXPECT_NE(Call().find("NOT_FOUND"), std::string::npos);
}

TEST_F(BalancingTest, NoInstanceIsNotFound) {
  Connect();
  std::string outcome = Call();
  EXPECT_NE(outcome.find("NOT_FOUND"), std::string::npos) << outcome;
}

TEST_F(BalancingTest, NewInstanceIsSeenAndGetsTraffic) {
  auto first = StartInstance();
  Connect();
  EXPECT_EQ(CallMany(10), (std::map<std::string, int>{{first->id(), 10}}));
  auto second = StartInstance();
  // It announces itself at start; the cache hears it without a lookup.
  bool reached = false;
  for (int i = 0; i < 500 && !reached; ++i) {
    reached = Call() == second->id();
    if (!reached) absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_TRUE(reached);
  EXPECT_EQ(CallMany(10), (std::map<std::string, int>{{first->id(), 5}, {second->id(), 5}}));
}

TEST_F(BalancingTest, LameDuckAndStoppedInstancesStopGettingCalls) {
  auto leaving = StartInstance();
  auto staying = StartInstance();
  Connect();
  EXPECT_EQ(CallMany(10).size(), 2u);
  ASSERT_TRUE(leaving->server().EnterLameDuck().ok());
  bool avoided = false;
  for (int i = 0; i < 500 && !avoided; ++i) {
    avoided = CallMany(4) == std::map<std::string, int>{{staying->id(), 4}};
    if (!avoided) absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_TRUE(avoided);
  // The lame duck still serves when it is all there is.
  staying.reset();
  bool fell_back = false;
  for (int i = 0; i < 500 && !fell_back; ++i) {
    fell_back = Call() == leaving->id();
    if (!fell_back) absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_TRUE(fell_back);
}

std::string PeerBinary() { return absl::StrCat(MICRO_TEST_BINARY_DIR, "/registry_peer"); }

TEST_F(BalancingTest, SigkilledInstanceUnderLoadIsLeftWithinThreeHeartbeats) {
  std::vector<std::unique_ptr<ChildProcess>> peers;
  for (const char* version : {"1.0.0", "1.0.1", "1.0.2"}) {
    auto peer =
        ChildProcess::StartAndWaitReady({PeerBinary(), nats_->url(), kService, version,
                                         absl::StrCat(absl::ToInt64Milliseconds(kHeartbeat))});
    ASSERT_TRUE(peer.ok()) << peer.status();
    peers.push_back(*std::move(peer));
  }
  Connect();
  auto service = cache_->GetService(kService);
  ASSERT_TRUE(service.ok()) << service.status();
  ASSERT_EQ((*service)->instances.size(), 3u);
  std::string victim;
  for (const Instance& instance : (*service)->instances) {
    if (instance.version == "1.0.0") victim = instance.id;
  }

  // Callers run until told to stop; every call is logged with its start.
  struct Result {
    absl::Time started;
    std::string outcome;
  };
  std::mutex mu;
  std::vector<Result> results;
  std::atomic<bool> stop{false};
  std::vector<std::thread> callers;
  for (int i = 0; i < 4; ++i) {
    callers.emplace_back([&] {
      while (!stop.load()) {
        absl::Time started = absl::Now();
        // Calls in flight to the victim when it dies are lost with it and
        // end at their deadline: keep it short so the callers go on.
        std::string outcome = Call(absl::Seconds(1));
        std::lock_guard lock(mu);
        results.push_back({started, std::move(outcome)});
      }
    });
  }
  absl::SleepFor(absl::Milliseconds(300));
  peers[0]->Kill();
  absl::Time killed = absl::Now();
  absl::SleepFor(3 * kHeartbeat + absl::Seconds(3));
  stop = true;
  for (std::thread& caller : callers) caller.join();

  // The documented bound: deleted 3 heartbeats after its last one, so at
  // most that long after the kill; a second of slack for a loaded machine.
  absl::Time settled = killed + 3 * kHeartbeat + absl::Seconds(1);
  int after = 0;
  int failures = 0;
  for (const Result& result : results) {
    bool failed = result.outcome.find("error") != std::string::npos;
    if (result.started >= settled) {
      ++after;
      EXPECT_FALSE(failed) << "a call failed after the instance should be gone: " << result.outcome;
      EXPECT_NE(result.outcome, victim);
    } else if (failed) {
      ++failures;
      // Sent to the victim after it died (no responders), or in flight to
      // it when it died: the request was lost with it.
      EXPECT_TRUE(result.outcome.find("UNAVAILABLE") != std::string::npos ||
                  result.outcome.find("DEADLINE_EXCEEDED") != std::string::npos)
          << result.outcome;
      EXPECT_GE(result.started + absl::Seconds(1), killed) << "failed before the kill";
    }
  }
  EXPECT_GT(after, 0);
  // Each caller fails at most once: the failure puts the instance in backoff
  // (or, for a call lost in flight, takes longer than the instance has left).
  EXPECT_LE(failures, 4);
}

// A bidirectional service written by hand (echo.proto has none): streams go
// through the selector and the instance subject, and count in STATS.
constexpr MethodInfo kChat{"micro.testing.Chat",     "Chat", "micro.testing.Chat.Chat",
                           RpcKind::kBidiStreaming,  false,  "micro.testing.EchoRequest",
                           "micro.testing.EchoReply"};

class ChatService final : public Service {
 public:
  ServiceDefinition Definition() override {
    ServiceDefinition definition;
    definition.name = "micro.testing.Chat";
    definition.endpoints.emplace_back(&kChat, &EchoRequest::default_instance(),
                                      &EchoReply::default_instance(),
                                      StreamHandler([](ServerContext*, MessageStream* stream) {
                                        EchoRequest request;
                                        while (stream->Read(&request)) {
                                          EchoReply reply;
                                          reply.set_text(request.text());
                                          if (!stream->Write(reply)) break;
                                        }
                                        return absl::OkStatus();
                                      }));
    return definition;
  }
};

TEST_F(BalancingTest, StreamsGoToTheSelectedInstance) {
  auto transport = testing::ConnectTo(nats_->url());
  ASSERT_TRUE(transport.ok());
  ChatService chat;
  Server server(*transport);
  ASSERT_TRUE(server.RegisterService(&chat).ok());
  ASSERT_TRUE(server.Start().ok());
  Connect();
  ClientContext context;
  context.set_timeout(absl::Seconds(10));
  {
    ClientReaderWriter<EchoRequest, EchoReply> stream(*client_, &context, kChat);
    for (int i = 0; i < 3; ++i) {
      EchoRequest request;
      request.set_text(absl::StrCat("line ", i));
      ASSERT_TRUE(stream.Write(request));
      EchoReply reply;
      ASSERT_TRUE(stream.Read(&reply));
      EXPECT_EQ(reply.text(), absl::StrCat("line ", i));
    }
    ASSERT_TRUE(stream.WritesDone());
    EXPECT_TRUE(stream.Finish().ok());
  }
  auto service = cache_->GetService("micro-testing-Chat");
  ASSERT_TRUE(service.ok()) << service.status();
  ASSERT_EQ((*service)->instances.size(), 1u);
  EXPECT_EQ((*service)->instances[0].id, server.id());
  EXPECT_EQ((*service)->instances[0].endpoints[0].metadata.at("micro.kind"), "bidi_stream");
  // The stream counts as one request of its endpoint (once its handler is
  // done, just after the client saw the end: poll briefly).
  nlohmann::json endpoint;
  for (int i = 0; i < 100 && endpoint["num_requests"] != 1; ++i) {
    absl::StatusOr<WireMessage> answer = transport_->RequestAndWait(
        WireMessage{"$SRV.STATS.micro-testing-Chat", "", {}, ""}, absl::Now() + absl::Seconds(5));
    ASSERT_TRUE(answer.ok()) << answer.status();
    endpoint = nlohmann::json::parse(answer->data)["endpoints"][0];
    if (endpoint["num_requests"] != 1) absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_EQ(endpoint["name"], "micro-testing-Chat-Chat");
  EXPECT_EQ(endpoint["num_requests"], 1);
  EXPECT_EQ(endpoint["num_errors"], 0);
  EXPECT_GT(endpoint["processing_time"], 0);
}

}  // namespace
}  // namespace micro
