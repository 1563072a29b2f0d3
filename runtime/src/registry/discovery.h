// The discovery protocol of docs/PROTOCOL.md ("Discovery"): the subjects, and
// the ADR-32 JSON documents written and read. The registry, the server and
// the client all go through here, so they cannot disagree about the format.
#ifndef MICRO_RUNTIME_REGISTRY_DISCOVERY_H_
#define MICRO_RUNTIME_REGISTRY_DISCOVERY_H_

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "micro/registry.h"

namespace micro::discovery {

// Reserved instance metadata, `true` in lame-duck mode.
inline constexpr char kLameDuckKey[] = "micro.lame_duck";

// The prefix of instance subjects: `$MICRO.INSTANCE.<id>.` + method subject.
inline constexpr std::string_view kInstancePrefix = "$MICRO.INSTANCE.";

// Every `$SRV` request arrives on one subscription to this.
inline constexpr char kSrvWildcard[] = "$SRV.>";

// kSchema is micro's own (docs/PROTOCOL.md, "Schemas").
enum class Verb { kPing, kInfo, kStats, kSchema };

// The verb named `PING`, `INFO`, `STATS` or `SCHEMA`; nullopt for others.
std::optional<Verb> ParseVerb(std::string_view name);

// A `$SRV.<VERB>[.<name>[.<id>]]` request; empty name or id match all.
struct SrvRequest {
  Verb verb;
  std::string_view name;
  std::string_view id;
};

// nullopt for any other subject, which gets no answer.
std::optional<SrvRequest> ParseSrvSubject(std::string_view subject);

// `$SRV.<VERB>`, with `.<name>` if `name` is not empty, then `.<id>` if
// `id` is not empty either.
std::string SrvSubject(Verb verb, std::string_view name, std::string_view id = {});

// `$SRV.INFO`, or `$SRV.INFO.<name>` for a non-empty name.
std::string InfoSubject(std::string_view name);

// True for a valid instance id: `^[A-Za-z0-9]+$`.
bool IsValidInstanceId(std::string_view id);

enum class Announcement { kUp, kHeartbeat, kDown };

// `$MICRO.REGISTRY.<KIND>.<name>.<id>`.
std::string AnnouncementSubject(Announcement kind, std::string_view name, std::string_view id);

// What a watcher of `name` (every service if empty) subscribes to.
std::string AnnouncementWildcard(std::string_view name);

// The kind of an announcement subject; nullopt if it is none.
std::optional<Announcement> ParseAnnouncementSubject(std::string_view subject);

// A new instance id: a NUID, 22 base62 characters.
std::string NewInstanceId();

// The ADR-32 documents, with fields in a fixed order so that equal instances
// give equal bytes.
std::string EncodePing(const Instance& instance);
std::string EncodeInfo(const Instance& instance);
// `stats` holds one entry per endpoint of `instance`; missing ones are zero.
std::string EncodeStats(const Instance& instance, absl::Time started,
                        const std::vector<EndpointStats>& stats);

// Reads an INFO document, ignoring fields it does not know, as another
// implementation may add some. INVALID_ARGUMENT if it is not JSON, not of
// type io.nats.micro.v1.info_response, or lacks a valid name or id (see
// ValidateInstance).
absl::StatusOr<Instance> DecodeInfo(std::string_view json);

}  // namespace micro::discovery

#endif  // MICRO_RUNTIME_REGISTRY_DISCOVERY_H_
