// The selector: client-side load balancing. It looks a service up in a
// registry (use a caching one, so that a pick costs no round trip), keeps
// the instances that pass a filter and picks one by a strategy; the client
// then calls that instance's own subject (docs/PROTOCOL.md, "Instance
// subjects").
//
// The alternative, and the client's default, is to let NATS balance: calls
// go to the method subject and the queue group hands each to one instance,
// with no lookup at all (ClientOptions::selector left null).
//
// Health: an instance whose call failed with UNAVAILABLE (it could not be
// reached, or it stopped) is avoided for a backoff period, which doubles with
// each further failure up to a maximum; once the period has passed it is
// tried again, and a success clears it. Instances in lame-duck mode are
// picked only when no other instance passes the filter.
//
// Thread-safe.
#ifndef MICRO_SELECTOR_H_
#define MICRO_SELECTOR_H_

#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "micro/registry.h"

namespace micro {

enum class SelectStrategy {
  kRandom,      // Uniformly at random.
  kRoundRobin,  // In turn, one counter per service.
  // The fewest calls selected and not yet marked; ties in turn. Slow or
  // overloaded instances get fewer calls.
  kLeastOutstanding,
};

// Which instances qualify. Empty fields do not filter.
struct SelectFilter {
  std::string version;                          // Exactly this version.
  std::map<std::string, std::string> metadata;  // Every entry present in the instance's.
  std::string endpoint;  // An endpoint with this subject (`p.S.M`) or name (`p-S-M`).
};

struct SelectorOptions {
  SelectStrategy strategy = SelectStrategy::kRoundRobin;
  // An instance that failed is avoided for `backoff`, doubled for each
  // further failure in a row, at most `max_backoff`.
  absl::Duration backoff = absl::Seconds(1);
  absl::Duration max_backoff = absl::Seconds(30);
};

class Selector {
 public:
  virtual ~Selector() = default;

  // Picks an instance of service `name` that passes `filter`; the instance
  // stays valid as long as the returned pointer. Every successful Select
  // must be followed by exactly one Mark of the returned instance's id when
  // the call ends. NOT_FOUND when the service has no instance or none passes
  // the filter, UNAVAILABLE when every one that passes is backing off after
  // failures, and the registry's error when the lookup fails.
  virtual absl::StatusOr<std::shared_ptr<const Instance>> Select(std::string_view name,
                                                                 const SelectFilter& filter) = 0;

  // Reports how a call to instance `id` ended. UNAVAILABLE is a failure of
  // the instance (see above); any other status, errors included, shows that
  // it answered. Never blocks, so it may be called on any thread.
  virtual void Mark(std::string_view id, const absl::Status& outcome) = 0;
};

// A selector over `registry`, which it keeps alive; pass a caching registry
// (NewCachingRegistry) unless every pick may pay a lookup. INVALID_ARGUMENT
// if `registry` is null or a backoff is not positive.
absl::StatusOr<std::shared_ptr<Selector>> NewSelector(std::shared_ptr<Registry> registry,
                                                      SelectorOptions options = {});

}  // namespace micro

#endif  // MICRO_SELECTOR_H_
