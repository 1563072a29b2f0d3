// The selector of micro/selector.h. Select runs on every call, so it costs a
// cached lookup, a pass over the instances and one short lock; nothing else.

#include "micro/selector.h"

#include <algorithm>
#include <cstdint>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/container/inlined_vector.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "util/strings.h"

namespace micro {
namespace {

using internal::ToAbsl;

bool Passes(const Instance& instance, const SelectFilter& filter) {
  if (!filter.version.empty() && instance.version != filter.version) return false;
  for (const auto& [key, value] : filter.metadata) {
    auto it = instance.metadata.find(key);
    if (it == instance.metadata.end() || it->second != value) return false;
  }
  if (filter.endpoint.empty()) return true;
  for (const EndpointInfo& endpoint : instance.endpoints) {
    if (endpoint.subject == filter.endpoint || endpoint.name == filter.endpoint) return true;
  }
  return false;
}

std::string Describe(const SelectFilter& filter) {
  std::string text;
  if (!filter.version.empty()) absl::StrAppend(&text, " version ", filter.version);
  for (const auto& [key, value] : filter.metadata) {
    absl::StrAppend(&text, " metadata ", key, "=", value);
  }
  if (!filter.endpoint.empty()) absl::StrAppend(&text, " endpoint ", filter.endpoint);
  return text.empty() ? " (no filter)" : text;
}

class SelectorImpl final : public Selector {
 public:
  SelectorImpl(std::shared_ptr<Registry> registry, SelectorOptions options)
      : registry_(std::move(registry)), options_(options) {}

  absl::StatusOr<std::shared_ptr<const Instance>> Select(std::string_view name,
                                                         const SelectFilter& filter) override {
    absl::StatusOr<std::shared_ptr<const ServiceInstances>> service = registry_->GetService(name);
    if (!service.ok()) return service.status();
    // Instances in lame-duck mode are the last resort.
    absl::InlinedVector<const Instance*, 8> preferred;
    absl::InlinedVector<const Instance*, 8> lame_ducks;
    for (const Instance& instance : (*service)->instances) {
      if (Passes(instance, filter)) {
        (instance.lame_duck() ? lame_ducks : preferred).push_back(&instance);
      }
    }
    if (preferred.empty() && lame_ducks.empty()) {
      return absl::NotFoundError(
          absl::StrCat("no instance of service '", ToAbsl(name), "' has", Describe(filter)));
    }
    const Instance* picked = nullptr;
    {
      std::lock_guard lock(mu_);
      absl::Time now = absl::Now();
      picked = PickLocked(name, preferred, now);
      if (picked == nullptr) picked = PickLocked(name, lame_ducks, now);
      if (picked == nullptr) {
        return absl::UnavailableError(absl::StrCat("every instance of service '", ToAbsl(name),
                                                   "' that qualifies is backing off after "
                                                   "failures"));
      }
      ++nodes_[picked->id].outstanding;
    }
    // Shares ownership of the snapshot the instance lives in.
    return std::shared_ptr<const Instance>(*std::move(service), picked);
  }

  void Mark(std::string_view id, const absl::Status& outcome) override {
    std::lock_guard lock(mu_);
    auto it = nodes_.find(ToAbsl(id));
    if (it == nodes_.end()) return;
    Node& node = it->second;
    if (node.outstanding > 0) --node.outstanding;
    if (absl::IsUnavailable(outcome)) {
      absl::Duration backoff = options_.backoff;
      for (int i = 0; i < node.failures && backoff < options_.max_backoff; ++i) backoff *= 2;
      ++node.failures;
      node.retry_at = absl::Now() + std::min(backoff, options_.max_backoff);
    } else {
      node.failures = 0;
      node.retry_at = absl::InfinitePast();
    }
    // Nothing worth remembering: keeps the map to the instances in use.
    if (node.outstanding == 0 && node.failures == 0) nodes_.erase(it);
  }

 private:
  // What the selector knows of an instance: calls in progress and failures.
  struct Node {
    int64_t outstanding = 0;
    int failures = 0;  // In a row.
    absl::Time retry_at = absl::InfinitePast();
  };

  // One of `candidates` by the strategy, skipping those backing off; null
  // if every one is.
  const Instance* PickLocked(std::string_view name,
                             const absl::InlinedVector<const Instance*, 8>& candidates,
                             absl::Time now) {
    absl::InlinedVector<std::pair<const Instance*, int64_t>, 8> ready;  // With outstanding calls.
    for (const Instance* instance : candidates) {
      auto it = nodes_.find(instance->id);
      if (it == nodes_.end()) {
        ready.emplace_back(instance, 0);
      } else if (it->second.retry_at <= now) {
        ready.emplace_back(instance, it->second.outstanding);
      }
    }
    if (ready.empty()) return nullptr;
    if (options_.strategy == SelectStrategy::kRandom) {
      return ready[std::uniform_int_distribution<size_t>(0, ready.size() - 1)(random_)].first;
    }
    uint64_t turn = turns_[ToAbsl(name)]++;
    size_t start = turn % ready.size();
    if (options_.strategy == SelectStrategy::kRoundRobin) return ready[start].first;
    // Least outstanding; among equals, the first from this turn's start.
    size_t best = start;
    for (size_t i = 1; i < ready.size(); ++i) {
      size_t at = (start + i) % ready.size();
      if (ready[at].second < ready[best].second) best = at;
    }
    return ready[best].first;
  }

  const std::shared_ptr<Registry> registry_;
  const SelectorOptions options_;

  std::mutex mu_;                                     // Guards the members below.
  absl::flat_hash_map<std::string, Node> nodes_;      // By instance id.
  absl::flat_hash_map<std::string, uint64_t> turns_;  // By service name.
  std::mt19937_64 random_{std::random_device{}()};
};

}  // namespace

absl::StatusOr<std::shared_ptr<Selector>> NewSelector(std::shared_ptr<Registry> registry,
                                                      SelectorOptions options) {
  if (registry == nullptr) return absl::InvalidArgumentError("NewSelector: null registry");
  if (options.backoff <= absl::ZeroDuration() || options.max_backoff < options.backoff) {
    return absl::InvalidArgumentError(
        "NewSelector: backoff must be positive and max_backoff at least backoff");
  }
  return std::make_shared<SelectorImpl>(std::move(registry), options);
}

}  // namespace micro
