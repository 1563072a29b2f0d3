// A registry that answers GetService from memory, kept current by the
// backing registry's watch events and refreshed when its TTL passes.

#include <algorithm>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/time/clock.h"
#include "micro/executor.h"
#include "micro/registry.h"
#include "util/in_flight.h"
#include "util/notification.h"
#include "util/strings.h"

namespace micro {
namespace {

using internal::ToAbsl;

// The instances of `service` after `event`, as a new snapshot (snapshots
// handed out never change). Instances stay sorted by id.
std::shared_ptr<const ServiceInstances> Apply(const ServiceInstances& service,
                                              const WatchEvent& event) {
  auto next = std::make_shared<ServiceInstances>(service);
  std::vector<Instance>& instances = next->instances;
  auto it = std::lower_bound(
      instances.begin(), instances.end(), event.instance.id,
      [](const Instance& instance, const std::string& id) { return instance.id < id; });
  bool present = it != instances.end() && it->id == event.instance.id;
  if (event.type == WatchEventType::kDelete) {
    if (present) instances.erase(it);
  } else if (present) {
    *it = event.instance;
  } else {
    instances.insert(it, event.instance);
  }
  return next;
}

class CachingRegistry final : public Registry {
 public:
  CachingRegistry(std::shared_ptr<Registry> backing, CachingRegistryOptions options)
      : backing_(std::move(backing)), options_(options) {}

  ~CachingRegistry() override {
    watcher_.reset();  // No more events.
    refreshes_.WaitUntilIdle();
  }

  absl::Status StartWatching() {
    auto watcher = backing_->Watch("", [this](const WatchEvent& event) { OnEvent(event); });
    if (!watcher.ok()) return watcher.status();
    watcher_ = *std::move(watcher);
    return absl::OkStatus();
  }

  absl::Status Register(Registration registration) override {
    return backing_->Register(std::move(registration));
  }
  absl::Status Deregister(std::string_view id) override { return backing_->Deregister(id); }
  absl::StatusOr<std::vector<ServiceInstances>> ListServices() override {
    return backing_->ListServices();
  }
  absl::StatusOr<std::unique_ptr<Watcher>> Watch(std::string_view name,
                                                 WatchHandler handler) override {
    return backing_->Watch(name, std::move(handler));
  }

  absl::StatusOr<std::shared_ptr<const ServiceInstances>> GetService(
      std::string_view name) override {
    std::shared_ptr<FirstLookup> first;
    bool mine = false;  // This caller runs the first lookup.
    {
      std::lock_guard lock(mu_);
      auto it = entries_.find(ToAbsl(name));
      if (it != entries_.end()) {
        Entry& entry = it->second;
        if (entry.snapshot != nullptr) {
          if (absl::Now() >= entry.refresh_at && !entry.loading) StartRefreshLocked(name, entry);
          return Found(entry.snapshot);
        }
        first = entry.first;
      } else {
        Entry& entry = entries_[ToAbsl(name)];
        entry.loading = true;
        entry.first = std::make_shared<FirstLookup>();
        first = entry.first;
        mine = true;
      }
    }
    if (!mine) {
      // Another caller is looking it up: share its result.
      first->done.WaitForNotification();
      return first->result;
    }
    first->result = Load(name);
    first->done.Notify();
    return first->result;
  }

 private:
  // The first lookup of a name, which concurrent callers wait for.
  struct FirstLookup {
    absl::StatusOr<std::shared_ptr<const ServiceInstances>> result;
    internal::Notification done;
  };

  // A cached service. While `loading`, events are applied to the snapshot
  // and kept in `pending`, to be applied again to the lookup's result,
  // which may predate them.
  struct Entry {
    std::shared_ptr<const ServiceInstances> snapshot;  // Null until the first lookup.
    absl::Time refresh_at;
    bool loading = false;
    std::vector<WatchEvent> pending;
    std::shared_ptr<FirstLookup> first;  // Until the first lookup ends.
  };

  static absl::StatusOr<std::shared_ptr<const ServiceInstances>> Found(
      std::shared_ptr<const ServiceInstances> snapshot) {
    if (snapshot->instances.empty()) {
      return absl::NotFoundError(
          absl::StrCat("service '", snapshot->name, "' has no instance left"));
    }
    return snapshot;
  }

  // Looks `name` up in the backing registry and stores the result; a
  // failure removes the entry, so failures are not cached.
  absl::StatusOr<std::shared_ptr<const ServiceInstances>> Load(std::string_view name) {
    absl::StatusOr<std::shared_ptr<const ServiceInstances>> looked_up = backing_->GetService(name);
    std::shared_ptr<const ServiceInstances> snapshot;
    {
      std::lock_guard lock(mu_);
      auto it = entries_.find(ToAbsl(name));
      Entry& entry = it->second;
      entry.first.reset();
      if (looked_up.ok()) {
        snapshot = *looked_up;
        for (const WatchEvent& event : entry.pending) snapshot = Apply(*snapshot, event);
        entry.snapshot = snapshot;
        entry.refresh_at = absl::Now() + options_.ttl;
        entry.loading = false;
        entry.pending.clear();
      } else if (!absl::IsNotFound(looked_up.status()) && entry.snapshot != nullptr) {
        // A refresh that failed for want of NATS: serve what we have, and
        // try again on a later lookup.
        entry.loading = false;
        entry.pending.clear();
      } else {
        entries_.erase(it);
      }
    }
    if (!looked_up.ok()) return looked_up.status();
    return Found(std::move(snapshot));
  }

  // The TTL passed: look up again in the background, serving the old
  // snapshot meanwhile, so no call waits for it.
  void StartRefreshLocked(std::string_view name, Entry& entry) {
    entry.loading = true;
    if (refresher_ == nullptr) refresher_ = NewThreadPoolExecutor(1);
    refreshes_.Start();
    refresher_->Schedule([this, name = std::string(name)] {
      Load(name).IgnoreError();
      refreshes_.Finish();
    });
  }

  // On the backing registry's watch thread.
  void OnEvent(const WatchEvent& event) {
    std::lock_guard lock(mu_);
    auto it = entries_.find(event.instance.name);
    if (it == entries_.end()) return;  // Not cached: the first lookup will see it.
    Entry& entry = it->second;
    if (entry.loading) entry.pending.push_back(event);
    if (entry.snapshot != nullptr) entry.snapshot = Apply(*entry.snapshot, event);
  }

  const std::shared_ptr<Registry> backing_;
  const CachingRegistryOptions options_;
  internal::InFlight refreshes_;

  std::mutex mu_;  // Guards the members below.
  absl::flat_hash_map<std::string, Entry> entries_;
  std::shared_ptr<Executor> refresher_;  // Created at the first refresh.

  // Last: destroyed first, so no event arrives while the rest goes away.
  std::unique_ptr<Watcher> watcher_;
};

}  // namespace

absl::StatusOr<std::shared_ptr<Registry>> NewCachingRegistry(std::shared_ptr<Registry> backing,
                                                             CachingRegistryOptions options) {
  if (backing == nullptr) return absl::InvalidArgumentError("NewCachingRegistry: null backing");
  if (options.ttl <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("NewCachingRegistry: the TTL must be positive");
  }
  auto registry = std::make_shared<CachingRegistry>(std::move(backing), options);
  if (absl::Status status = registry->StartWatching(); !status.ok()) return status;
  return registry;
}

}  // namespace micro
