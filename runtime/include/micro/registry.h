// The registry: which instances of which services exist, and how to find
// them. Discovery uses the NATS services API (ADR-32), so every NATS tool and
// client library sees micro services; micro adds announcements, heartbeats
// and a subject per instance (docs/PROTOCOL.md, "Discovery").
//
// A micro::Server registers itself (see ServerOptions::registry); clients
// rarely use a registry directly, but through a Selector (micro/selector.h)
// over a caching registry.
//
// Every class here is thread-safe.
#ifndef MICRO_REGISTRY_H_
#define MICRO_REGISTRY_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "micro/transport.h"

namespace micro {

// One endpoint of an instance, as ADR-32 INFO lists it.
struct EndpointInfo {
  std::string name;         // `p-S-M` for the method `p.S.M`.
  std::string subject;      // Where calls go: `p.S.M`.
  std::string queue_group;  // Empty when the instance uses none.
  std::map<std::string, std::string> metadata;

  bool operator==(const EndpointInfo&) const = default;
};

// An event subscription an instance holds (micro/broker.h), as INFO lists
// it in `subscribers`.
struct SubscriberInfo {
  std::string topic;         // May hold the wildcards `*` and `>`.
  std::string queue_group;   // Empty for a plain subscription.
  std::string message_type;  // Full proto name of the event type.

  bool operator==(const SubscriberInfo&) const = default;
};

// One running instance of a service: its ADR-32 INFO document.
struct Instance {
  std::string name;     // The service name, `^[A-Za-z0-9_-]+$`.
  std::string id;       // Unique per instance, `^[A-Za-z0-9]+$`.
  std::string version;  // SemVer.
  std::string description;
  std::map<std::string, std::string> metadata;  // Keys `micro.*` are reserved.
  std::vector<EndpointInfo> endpoints;
  std::vector<SubscriberInfo> subscribers;

  // True while the instance announces lame-duck mode (metadata
  // `micro.lame_duck` is `true`): it still serves, but is about to stop.
  bool lame_duck() const;

  bool operator==(const Instance&) const = default;
};

// All known instances of one service, sorted by id. (micro::Service, in
// service.h, is the base of handler interfaces.)
struct ServiceInstances {
  std::string name;
  std::vector<Instance> instances;
};

// ADR-32 STATS counters of one endpoint (docs/PROTOCOL.md, "Discovery").
struct EndpointStats {
  int64_t num_requests = 0;
  int64_t num_errors = 0;
  std::string last_error;          // `CODE: message` of the latest error; empty before any.
  absl::Duration processing_time;  // Total over all requests.
};

// What Register needs besides the INFO document.
struct Registration {
  Instance instance;
  // Reported as `started` by STATS.
  absl::Time started = absl::Now();
  // Current counters, one per endpoint of `instance`, in the same order;
  // missing entries read as zero. Called on a registry thread, possibly
  // after Deregister (so it must keep what it reads alive, e.g. through a
  // shared_ptr); it must be quick and must not call the registry. May be null.
  std::function<std::vector<EndpointStats>()> stats;
  // The serialized FileDescriptorSet answered to `$SRV.SCHEMA`
  // (docs/PROTOCOL.md, "Schemas"; micro/schema.h). Empty: an empty set.
  std::string schema;
};

enum class WatchEventType { kCreate, kUpdate, kDelete };

struct WatchEvent {
  WatchEventType type;
  // The instance's document; for kDelete, the last one known.
  Instance instance;
};

// Receives the events of one watcher, one at a time and in order, on a
// registry thread. It may block briefly (it delays the registry's other
// watchers) but must not destroy its own watcher.
using WatchHandler = std::function<void(const WatchEvent& event)>;

// A live watch. Destroying it stops it: once the destructor returns, the
// handler is not running and will not be called again.
class Watcher {
 public:
  virtual ~Watcher() = default;
};

class Registry {
 public:
  virtual ~Registry() = default;

  // Makes an instance discoverable and announces it. Registering an id
  // already registered here replaces its document and announces the change
  // (that is how lame-duck mode is announced). INVALID_ARGUMENT for an
  // invalid name, id, version or metadata key (see ValidateInstance),
  // UNAVAILABLE if the registry cannot reach NATS.
  virtual absl::Status Register(Registration registration) = 0;

  // Announces that the instance stops and stops answering for it. NOT_FOUND
  // if `id` is not registered here.
  virtual absl::Status Deregister(std::string_view id) = 0;

  // The instances of service `name`, as a snapshot that never changes
  // (later changes make new snapshots). Blocks for the lookup: until the
  // answers stop arriving, or the registry's lookup window passes.
  // NOT_FOUND when no instance answered, INVALID_ARGUMENT for an invalid
  // name, UNAVAILABLE when NATS cannot be reached.
  virtual absl::StatusOr<std::shared_ptr<const ServiceInstances>> GetService(
      std::string_view name) = 0;

  // Every service that has instances, sorted by name; blocks like
  // GetService. An empty list (not an error) when there are none.
  virtual absl::StatusOr<std::vector<ServiceInstances>> ListServices() = 0;

  // Reports instances of service `name` (every service if empty) that are
  // created, updated or deleted from now on. Instances already running are
  // reported as created when their next heartbeat arrives. An instance
  // that vanished without deregistering is reported deleted within 3 of its
  // heartbeat intervals. A deregistered instance is reported deleted even
  // if its creation was not reported (it stopped before its first
  // heartbeat reached the watcher), so that a cache which found it by a
  // lookup drops it. INVALID_ARGUMENT for an invalid name or a null
  // handler, UNAVAILABLE if NATS does not confirm the subscription.
  virtual absl::StatusOr<std::unique_ptr<Watcher>> Watch(std::string_view name,
                                                         WatchHandler handler) = 0;
};

struct NatsRegistryOptions {
  // How often registered instances announce themselves. Watchers delete an
  // instance not heard from for 3 intervals.
  absl::Duration heartbeat = absl::Seconds(1);
  // A lookup ends `lookup_gap` after the latest answer, and at the latest
  // `lookup_window` after it was sent; with no answer by then it is
  // NOT_FOUND.
  absl::Duration lookup_gap = absl::Milliseconds(50);
  absl::Duration lookup_window = absl::Seconds(1);
};

// The registry of docs/PROTOCOL.md ("Discovery") over `transport`, which it
// keeps alive. It answers `$SRV.*` for the instances registered with it
// (one subscription for all of them) and announces them; it opens no
// subscription and starts no thread until first used. Destroying it
// deregisters what is still registered. INVALID_ARGUMENT if `transport` is
// null or an option is not positive.
absl::StatusOr<std::shared_ptr<Registry>> NewNatsRegistry(std::shared_ptr<Transport> transport,
                                                          NatsRegistryOptions options = {});

// One answer to a discovery request.
struct DiscoveryAnswer {
  std::string body;        // The document, as the instance sent it.
  absl::Duration latency;  // From sending the request to the answer's arrival.
};

// For tools that show the ADR-32 documents themselves (the `micro` CLI):
// sends `$SRV.<verb>`, `$SRV.<verb>.<name>` or `$SRV.<verb>.<name>.<id>`
// (`verb` is `PING`, `INFO` or `STATS`; `name` and `id` may be empty) and
// collects the answers as a lookup does (`options.lookup_gap` and
// `lookup_window`). Every ADR-32 service answers, micro or not. No answer
// is an empty list. INVALID_ARGUMENT for another verb, an invalid name, or
// an id without a name; UNAVAILABLE when NATS cannot be reached.
absl::StatusOr<std::vector<DiscoveryAnswer>> QueryDiscovery(
    Transport& transport, std::string_view verb, std::string_view name, std::string_view id,
    const NatsRegistryOptions& options = {});

struct CachingRegistryOptions {
  // How long a looked-up service is served from the cache without asking
  // `backing` again. Between lookups, the cache follows the backing
  // registry's watch events, so instances that start, change or stop show
  // up at once; the TTL only bounds how long an event NATS lost can matter.
  // When it passes, the stale entry is still served while a fresh lookup
  // runs in the background.
  absl::Duration ttl = absl::Seconds(30);
};

// A registry that answers GetService from memory: the first lookup of a
// name asks `backing` (concurrent first lookups share one), later ones cost
// a hash lookup. Register, Deregister, ListServices and Watch go to
// `backing`. Failed lookups are not cached. One caveat: an instance that
// dies without deregistering before the cache has heard one heartbeat of
// it is dropped only when the TTL passes (a Selector avoids it after its
// first failed call meanwhile). INVALID_ARGUMENT if `backing` is null or
// the TTL is not positive; the error of `backing->Watch("")` if that fails.
absl::StatusOr<std::shared_ptr<Registry>> NewCachingRegistry(std::shared_ptr<Registry> backing,
                                                             CachingRegistryOptions options = {});

// OK if `name` is a valid ADR-32 service name (`^[A-Za-z0-9_-]+$`), else
// INVALID_ARGUMENT saying why.
absl::Status ValidateServiceName(std::string_view name);

// OK if `version` is a SemVer 2.0.0 version, else INVALID_ARGUMENT.
absl::Status ValidateVersion(std::string_view version);

// OK if `instance` may be registered: a valid name and version, an id of
// `^[A-Za-z0-9]+$`, and metadata keys that are not empty and not `micro.*`
// other than `micro.lame_duck`. Else INVALID_ARGUMENT naming the field.
absl::Status ValidateInstance(const Instance& instance);

// The default service name of a server whose first service is the proto
// service `proto_service` (`helloworld.Greeter` -> `helloworld-Greeter`).
std::string ServiceNameOf(std::string_view proto_service);

// The ADR-32 endpoint name of the method subject `p.S.M` (`p-S-M`).
std::string EndpointNameOf(std::string_view method_subject);

// The subject that reaches only instance `id` for the method subject
// `p.S.M`: `$MICRO.INSTANCE.<id>.p.S.M`.
std::string InstanceSubject(std::string_view id, std::string_view method_subject);

}  // namespace micro

#endif  // MICRO_REGISTRY_H_
