// Spreads calls to lb.Backend over its instances in each way micro offers,
// and prints how many calls each instance answered:
//   queue-group        no selector: NATS hands each call to one member of
//                      the instances' queue group;
//   random, round-robin, least-outstanding
//                      a client-side selector picks the instance from the
//                      registry and calls its own subject.
// Then it waits for a line on stdin (meanwhile, kill an instance with
// SIGKILL) and does it all again with the same clients, showing what the
// framework does about the dead instance.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/cli.h"
#include "lb/backend.micro.h"
#include "micro/registry.h"
#include "micro/selector.h"

namespace {

// Passes everything on to a real selector, counting the calls whose
// instance could not be reached. The client sends each such call again
// (it never reached a handler, so that is safe), and the selector avoids
// that instance for a while.
class CountingSelector final : public micro::Selector {
 public:
  explicit CountingSelector(std::shared_ptr<micro::Selector> selector)
      : selector_(std::move(selector)) {}

  absl::StatusOr<std::shared_ptr<const micro::Instance>> Select(
      std::string_view name, const micro::SelectFilter& filter) override {
    return selector_->Select(name, filter);
  }

  void Mark(std::string_view id, const absl::Status& outcome) override {
    if (absl::IsUnavailable(outcome)) ++unreachable_;
    selector_->Mark(id, outcome);
  }

  // Returns the count so far and starts again from zero.
  int TakeUnreachable() { return unreachable_.exchange(0); }

 private:
  const std::shared_ptr<micro::Selector> selector_;
  std::atomic<int> unreachable_{0};
};

// One way of balancing: a client (with its selector, if any) and a stub.
struct Balancer {
  const char* name;
  std::shared_ptr<CountingSelector> selector;  // Null: NATS's queue group.
  std::unique_ptr<lb::Backend::Stub> stub;
};

// Makes `calls` calls, `concurrency` at a time, and prints one line:
//   <phase> <balancer>  ok <succeeded>/<calls>  answered <instance>=<n>...
// followed by the calls the selector saw fail on an unreachable instance.
bool RunRound(const char* phase, Balancer& balancer, int calls, int concurrency) {
  std::mutex mu;
  std::map<std::string, int> answered;  // By instance name.
  int succeeded = 0;
  std::string first_error;
  std::atomic<int> next_job{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < concurrency; ++t) {
    threads.emplace_back([&] {
      for (int job = next_job++; job < calls; job = next_job++) {
        micro::ClientContext context;
        context.set_timeout(absl::Seconds(5));
        lb::WorkRequest request;
        request.set_job(job);
        lb::WorkReply reply;
        absl::Status status = balancer.stub->Work(&context, request, &reply);
        std::lock_guard lock(mu);
        if (status.ok()) {
          ++succeeded;
          ++answered[reply.instance()];
        } else if (first_error.empty()) {
          first_error = status.ToString();
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();

  char head[64];
  std::snprintf(head, sizeof(head), "%-6s  %-17s  ok %d/%d  answered", phase, balancer.name,
                succeeded, calls);
  std::string line = head;
  for (const auto& [instance, count] : answered) absl::StrAppend(&line, " ", instance, "=", count);
  if (balancer.selector != nullptr) {
    if (int unreachable = balancer.selector->TakeUnreachable(); unreachable > 0) {
      absl::StrAppend(&line, "  (attempts to a dead instance: ", unreachable,
                      ", each UNAVAILABLE and sent again elsewhere)");
    }
  }
  if (!first_error.empty()) absl::StrAppend(&line, "  first error: ", first_error);
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
  return succeeded == calls;
}

// What a registry watcher reports: the instances it has heard from (a
// watcher learns of running instances from their heartbeats) and those it
// reports deleted, and when.
class WatchLog {
 public:
  void Add(const micro::WatchEvent& event) {
    std::lock_guard lock(mu_);
    if (event.type == micro::WatchEventType::kDelete) {
      deleted_.push_back({event.instance, std::chrono::steady_clock::now()});
    } else {
      heard_.insert(event.instance.id);
    }
    changed_.notify_all();
  }

  // Waits up to `timeout` until the watcher has heard from `count` instances.
  bool WaitHeard(size_t count, std::chrono::seconds timeout) {
    std::unique_lock lock(mu_);
    return changed_.wait_for(lock, timeout, [&] { return heard_.size() >= count; });
  }

  // Waits up to `timeout` for a deletion; prints it, or that none came.
  void PrintFirstDeletion(std::chrono::steady_clock::time_point since,
                          std::chrono::seconds timeout) {
    std::unique_lock lock(mu_);
    if (!changed_.wait_for(lock, timeout, [&] { return !deleted_.empty(); })) {
      std::printf("registry: no instance deleted within %lld s\n",
                  static_cast<long long>(timeout.count()));
      return;
    }
    const auto& [instance, when] = deleted_.front();
    std::printf("registry: instance %s (id %s) deleted %.1f s after Enter\n",
                instance.metadata.at("instance").c_str(), instance.id.c_str(),
                std::chrono::duration<double>(when - since).count());
  }

 private:
  std::mutex mu_;
  std::condition_variable changed_;
  std::set<std::string> heard_;  // Instance ids.
  std::vector<std::pair<micro::Instance, std::chrono::steady_clock::time_point>> deleted_;
};

}  // namespace

int main(int argc, char** argv) {
  using micro::examples::OrExit;
  auto flags = micro::examples::ParseFlags(argc, argv, {{"calls", "60"}, {"concurrency", "4"}});
  const int calls = std::atoi(flags["calls"].c_str());
  const int concurrency = std::atoi(flags["concurrency"].c_str());
  auto transport = micro::examples::ConnectOrExit(flags["nats"], "lb_client");

  // Selectors look instances up in a caching registry: one lookup, then it
  // follows the instances' announcements and heartbeats.
  auto registry = OrExit(
      micro::NewCachingRegistry(OrExit(micro::NewNatsRegistry(transport), "lb_client: registry")),
      "lb_client: caching registry");
  const std::string service = micro::ServiceNameOf(lb::Backend::kServiceName);
  auto found = OrExit(registry->GetService(service), "lb_client: lookup");
  std::printf("registry: %zu instances of %s:", found->instances.size(), service.c_str());
  for (const micro::Instance& instance : found->instances) {
    std::printf(" %s (id %s)", instance.metadata.at("instance").c_str(), instance.id.c_str());
  }
  std::printf("\n");

  // A watcher can tell that an instance died only once it has heard from
  // it, so wait for a heartbeat of each (one interval, 1 s by default).
  WatchLog watch_log;
  auto watcher = OrExit(
      registry->Watch(service, [&](const micro::WatchEvent& event) { watch_log.Add(event); }),
      "lb_client: watch");
  if (!watch_log.WaitHeard(found->instances.size(), std::chrono::seconds(10))) {
    std::fprintf(stderr, "lb_client: no heartbeat from every instance within 10 s\n");
    return 1;
  }

  std::vector<Balancer> balancers;
  for (auto [name, strategy] :
       std::vector<std::pair<const char*, std::optional<micro::SelectStrategy>>>{
           {"queue-group", std::nullopt},
           {"random", micro::SelectStrategy::kRandom},
           {"round-robin", micro::SelectStrategy::kRoundRobin},
           {"least-outstanding", micro::SelectStrategy::kLeastOutstanding}}) {
    micro::ClientOptions options;
    // Work is idempotent (NO_SIDE_EFFECTS in the proto), so an attempt lost
    // with a dying instance is sent again after 500 ms instead of failing
    // at the 5 s deadline.
    options.retry.per_attempt_timeout = absl::Milliseconds(500);
    std::shared_ptr<CountingSelector> selector;
    if (strategy.has_value()) {
      micro::SelectorOptions selector_options;
      selector_options.strategy = *strategy;
      selector = std::make_shared<CountingSelector>(
          OrExit(micro::NewSelector(registry, selector_options), "lb_client: selector"));
      options.selector = selector;
    }
    balancers.push_back(
        {name, selector,
         lb::Backend::NewStub(std::make_shared<micro::Client>(transport, std::move(options)))});
  }

  bool ok = true;
  for (Balancer& balancer : balancers) ok &= RunRound("before", balancer, calls, concurrency);

  micro::examples::WaitForEnter("lb_client: kill an instance (SIGKILL), then press Enter");
  auto entered_at = std::chrono::steady_clock::now();

  for (Balancer& balancer : balancers) ok &= RunRound("after", balancer, calls, concurrency);
  // The killed instance could not deregister: watchers drop it once its
  // heartbeats stop (3 intervals of 1 s by default).
  watch_log.PrintFirstDeletion(entered_at, std::chrono::seconds(10));
  return ok ? 0 : 1;
}
