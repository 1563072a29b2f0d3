// What client-side load balancing adds to a call: a cached registry lookup
// and a selector pick (Select + Mark), against three real Echo instances
// discovered through a local nats-server. Google Benchmark; see README.md.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "micro/micro.h"
#include "support/echo_instance.h"
#include "support/nats_server.h"

namespace {

constexpr char kService[] = "micro-testing-Echo";

// Three instances and a caching registry that has looked them up.
struct Fleet {
  std::unique_ptr<micro::testing::NatsServer> nats;
  std::vector<std::unique_ptr<micro::testing::EchoInstance>> instances;
  std::shared_ptr<micro::Registry> cache;
};

Fleet* fleet = nullptr;

bool StartFleet() {
  auto nats = micro::testing::NatsServer::Start();
  if (!nats.ok()) {
    std::fprintf(stderr, "registry_lookup: %s\n", nats.status().ToString().c_str());
    return false;
  }
  fleet = new Fleet{*std::move(nats), {}, nullptr};
  for (int i = 0; i < 3; ++i) {
    auto instance = micro::testing::EchoInstance::Start(fleet->nats->url(), {}, absl::Seconds(1));
    if (!instance.ok()) {
      std::fprintf(stderr, "registry_lookup: %s\n", instance.status().ToString().c_str());
      return false;
    }
    fleet->instances.push_back(*std::move(instance));
  }
  auto transport = micro::testing::ConnectTo(fleet->nats->url());
  if (!transport.ok()) return false;
  auto registry = micro::NewNatsRegistry(*transport);
  if (!registry.ok()) return false;
  auto cache = micro::NewCachingRegistry(*registry);
  if (!cache.ok()) return false;
  fleet->cache = *cache;
  auto service = fleet->cache->GetService(kService);  // Fills the cache.
  if (!service.ok() || (*service)->instances.size() != 3) {
    std::fprintf(stderr, "registry_lookup: did not discover the 3 instances\n");
    return false;
  }
  return true;
}

void BM_CachedLookup(benchmark::State& state) {
  for (auto _ : state) {
    auto service = fleet->cache->GetService(kService);
    benchmark::DoNotOptimize(service);
  }
}
BENCHMARK(BM_CachedLookup)->ThreadRange(1, 2);

// Everything a selecting client adds to one call: the lookup, the filter for
// the method's endpoint, the pick, and the Mark when the call ends.
void BM_LookupSelectMark(benchmark::State& state) {
  micro::SelectorOptions options;
  options.strategy = static_cast<micro::SelectStrategy>(state.range(0));
  auto selector = micro::NewSelector(fleet->cache, options);
  if (!selector.ok()) {
    state.SkipWithError("NewSelector failed");
    return;
  }
  micro::SelectFilter filter;
  filter.endpoint = "micro.testing.Echo.Echo";
  for (auto _ : state) {
    auto instance = (*selector)->Select(kService, filter);
    if (!instance.ok()) {
      state.SkipWithError("Select failed");
      return;
    }
    (*selector)->Mark((*instance)->id, absl::OkStatus());
  }
}
BENCHMARK(BM_LookupSelectMark)
    ->ArgName("strategy")  // 0 random, 1 round robin, 2 least outstanding.
    ->Arg(static_cast<int>(micro::SelectStrategy::kRandom))
    ->Arg(static_cast<int>(micro::SelectStrategy::kRoundRobin))
    ->Arg(static_cast<int>(micro::SelectStrategy::kLeastOutstanding));

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  if (!StartFleet()) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  delete fleet;
  return 0;
}
