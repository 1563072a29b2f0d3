#include "registry/discovery.h"

#include <nats/nats.h>

#include <nlohmann/json.hpp>
#include <regex>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "util/strings.h"

namespace micro {

using internal::FromAbsl;
using internal::ToAbsl;

namespace {

constexpr char kPingType[] = "io.nats.micro.v1.ping_response";
constexpr char kInfoType[] = "io.nats.micro.v1.info_response";
constexpr char kStatsType[] = "io.nats.micro.v1.stats_response";
constexpr char kAnnouncementPrefix[] = "$MICRO.REGISTRY.";

bool IsNameChar(char c) { return absl::ascii_isalnum(c) || c == '_' || c == '-'; }

bool AllAlphanumeric(std::string_view text) {
  for (char c : text) {
    if (!absl::ascii_isalnum(c)) return false;
  }
  return !text.empty();
}

std::string DotsToDashes(std::string_view dotted) {
  return absl::StrReplaceAll(ToAbsl(dotted), {{".", "-"}});
}

}  // namespace

bool Instance::lame_duck() const {
  auto it = metadata.find(discovery::kLameDuckKey);
  return it != metadata.end() && it->second == "true";
}

absl::Status ValidateServiceName(std::string_view name) {
  if (name.empty()) return absl::InvalidArgumentError("service name is empty");
  for (char c : name) {
    if (!IsNameChar(c)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "service name '", ToAbsl(name), "' may only hold letters, digits, '_' and '-' (ADR-32)"));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateVersion(std::string_view version) {
  // The regular expression semver.org recommends; run only at registration.
  static const std::regex kSemVer(
      R"(^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*))"
      R"((?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?)"
      R"((?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$)");
  if (!std::regex_match(version.begin(), version.end(), kSemVer)) {
    return absl::InvalidArgumentError(
        absl::StrCat("version '", ToAbsl(version), "' is not a SemVer version like 1.2.3"));
  }
  return absl::OkStatus();
}

absl::Status ValidateInstance(const Instance& instance) {
  if (absl::Status status = ValidateServiceName(instance.name); !status.ok()) return status;
  if (absl::Status status = ValidateVersion(instance.version); !status.ok()) return status;
  if (!AllAlphanumeric(instance.id)) {
    return absl::InvalidArgumentError(
        absl::StrCat("instance id '", instance.id, "' must be letters and digits"));
  }
  for (const auto& [key, value] : instance.metadata) {
    if (key.empty()) return absl::InvalidArgumentError("metadata key is empty");
    if (absl::StartsWith(key, "micro.") && key != discovery::kLameDuckKey) {
      return absl::InvalidArgumentError(
          absl::StrCat("metadata key '", key, "': keys starting with 'micro.' are reserved"));
    }
  }
  return absl::OkStatus();
}

std::string ServiceNameOf(std::string_view proto_service) { return DotsToDashes(proto_service); }

std::string EndpointNameOf(std::string_view method_subject) { return DotsToDashes(method_subject); }

std::string InstanceSubject(std::string_view id, std::string_view method_subject) {
  return absl::StrCat(ToAbsl(discovery::kInstancePrefix), ToAbsl(id), ".", ToAbsl(method_subject));
}

namespace discovery {
namespace {

// Ordered, so the fields keep the order written (ADR-32's, `type` first).
using Json = nlohmann::ordered_json;

std::string_view VerbName(Verb verb) {
  switch (verb) {
    case Verb::kPing:
      return "PING";
    case Verb::kInfo:
      return "INFO";
    case Verb::kStats:
      return "STATS";
    case Verb::kSchema:
      return "SCHEMA";
  }
  return "";
}

std::string_view AnnouncementName(Announcement kind) {
  switch (kind) {
    case Announcement::kUp:
      return "UP";
    case Announcement::kHeartbeat:
      return "HEARTBEAT";
    case Announcement::kDown:
      return "DOWN";
  }
  return "";
}

Json MetadataJson(const std::map<std::string, std::string>& metadata) {
  Json json = Json::object();  // `{}` rather than `null` when empty.
  for (const auto& [key, value] : metadata) json[key] = value;
  return json;
}

// The fields every document starts with.
Json Common(const Instance& instance, const char* type) {
  Json json;
  json["type"] = type;
  json["name"] = instance.name;
  json["id"] = instance.id;
  json["version"] = instance.version;
  json["metadata"] = MetadataJson(instance.metadata);
  return json;
}

std::string Dump(const Json& json) {
  // User text may not be UTF-8; replacing bad bytes beats throwing.
  return json.dump(-1, ' ', false, Json::error_handler_t::replace);
}

Json EndpointJson(const EndpointInfo& endpoint) {
  Json json;
  json["name"] = endpoint.name;
  json["subject"] = endpoint.subject;
  json["queue_group"] = endpoint.queue_group;
  return json;
}

// Reading never throws: wrong types read as absent.
std::string StringField(const nlohmann::json& json, const char* key) {
  auto it = json.find(key);
  return it != json.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::map<std::string, std::string> MetadataField(const nlohmann::json& json) {
  std::map<std::string, std::string> metadata;
  auto it = json.find("metadata");
  if (it == json.end() || !it->is_object()) return metadata;
  for (const auto& [key, value] : it->items()) {
    if (value.is_string()) metadata.emplace(key, value.get<std::string>());
  }
  return metadata;
}

}  // namespace

std::optional<SrvRequest> ParseSrvSubject(std::string_view subject) {
  std::vector<absl::string_view> tokens = absl::StrSplit(ToAbsl(subject), '.');
  if (tokens.size() < 2 || tokens.size() > 4 || tokens[0] != "$SRV") return std::nullopt;
  std::optional<Verb> verb = ParseVerb(FromAbsl(tokens[1]));
  if (!verb.has_value()) return std::nullopt;
  SrvRequest request;
  request.verb = *verb;
  if (tokens.size() > 2) request.name = FromAbsl(tokens[2]);
  if (tokens.size() > 3) request.id = FromAbsl(tokens[3]);
  return request;
}

std::optional<Verb> ParseVerb(std::string_view name) {
  for (Verb verb : {Verb::kPing, Verb::kInfo, Verb::kStats, Verb::kSchema}) {
    if (name == VerbName(verb)) return verb;
  }
  return std::nullopt;
}

std::string SrvSubject(Verb verb, std::string_view name, std::string_view id) {
  std::string subject = absl::StrCat("$SRV.", ToAbsl(VerbName(verb)));
  if (!name.empty()) {
    absl::StrAppend(&subject, ".", ToAbsl(name));
    if (!id.empty()) absl::StrAppend(&subject, ".", ToAbsl(id));
  }
  return subject;
}

std::string InfoSubject(std::string_view name) { return SrvSubject(Verb::kInfo, name); }

bool IsValidInstanceId(std::string_view id) { return AllAlphanumeric(id); }

std::string AnnouncementSubject(Announcement kind, std::string_view name, std::string_view id) {
  return absl::StrCat(kAnnouncementPrefix, ToAbsl(AnnouncementName(kind)), ".", ToAbsl(name), ".",
                      ToAbsl(id));
}

std::string AnnouncementWildcard(std::string_view name) {
  return name.empty() ? absl::StrCat(kAnnouncementPrefix, ">")
                      : absl::StrCat(kAnnouncementPrefix, "*.", ToAbsl(name), ".*");
}

std::optional<Announcement> ParseAnnouncementSubject(std::string_view subject) {
  absl::string_view rest = ToAbsl(subject);
  if (!absl::ConsumePrefix(&rest, kAnnouncementPrefix)) return std::nullopt;
  for (Announcement kind : {Announcement::kUp, Announcement::kHeartbeat, Announcement::kDown}) {
    if (absl::StartsWith(rest, absl::StrCat(ToAbsl(AnnouncementName(kind)), "."))) return kind;
  }
  return std::nullopt;
}

std::string NewInstanceId() {
  // nats.c's inboxes are `_INBOX.<NUID>`; its NUID generator is the one
  // ADR-32 implementations use for ids.
  natsInbox* inbox = nullptr;
  if (natsInbox_Create(&inbox) != NATS_OK) return std::string();
  std::string id(inbox);
  natsInbox_Destroy(inbox);
  return id.substr(id.rfind('.') + 1);
}

std::string EncodePing(const Instance& instance) { return Dump(Common(instance, kPingType)); }

std::string EncodeInfo(const Instance& instance) {
  Json json = Common(instance, kInfoType);
  json["description"] = instance.description;
  Json endpoints = Json::array();
  for (const EndpointInfo& endpoint : instance.endpoints) {
    Json entry = EndpointJson(endpoint);
    entry["metadata"] = MetadataJson(endpoint.metadata);
    endpoints.push_back(std::move(entry));
  }
  json["endpoints"] = std::move(endpoints);
  if (!instance.subscribers.empty()) {
    Json subscribers = Json::array();
    for (const SubscriberInfo& subscriber : instance.subscribers) {
      Json entry;
      entry["topic"] = subscriber.topic;
      entry["queue_group"] = subscriber.queue_group;
      entry["type"] = subscriber.message_type;
      subscribers.push_back(std::move(entry));
    }
    json["subscribers"] = std::move(subscribers);
  }
  return Dump(json);
}

std::string EncodeStats(const Instance& instance, absl::Time started,
                        const std::vector<EndpointStats>& stats) {
  Json json = Common(instance, kStatsType);
  json["started"] = absl::FormatTime("%Y-%m-%dT%H:%M:%E9SZ", started, absl::UTCTimeZone());
  Json endpoints = Json::array();
  for (size_t i = 0; i < instance.endpoints.size(); ++i) {
    EndpointStats counters = i < stats.size() ? stats[i] : EndpointStats();
    int64_t nanos = absl::ToInt64Nanoseconds(counters.processing_time);
    Json entry = EndpointJson(instance.endpoints[i]);
    entry["num_requests"] = counters.num_requests;
    entry["num_errors"] = counters.num_errors;
    entry["last_error"] = counters.last_error;
    entry["processing_time"] = nanos;
    entry["average_processing_time"] =
        counters.num_requests > 0 ? nanos / counters.num_requests : int64_t{0};
    endpoints.push_back(std::move(entry));
  }
  json["endpoints"] = std::move(endpoints);
  return Dump(json);
}

absl::StatusOr<Instance> DecodeInfo(std::string_view text) {
  nlohmann::json json = nlohmann::json::parse(text.begin(), text.end(), nullptr,
                                              /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_object()) {
    return absl::InvalidArgumentError("INFO document is not a JSON object");
  }
  if (StringField(json, "type") != kInfoType) {
    return absl::InvalidArgumentError(
        absl::StrCat("not an INFO document: type '", StringField(json, "type"), "'"));
  }
  Instance instance;
  instance.name = StringField(json, "name");
  instance.id = StringField(json, "id");
  // Ids and names become subject tokens: one with a `.` or a wildcard
  // would make us call someone else's subjects.
  if (!ValidateServiceName(instance.name).ok() || !AllAlphanumeric(instance.id)) {
    return absl::InvalidArgumentError("INFO document without a valid name and id");
  }
  instance.version = StringField(json, "version");
  instance.description = StringField(json, "description");
  instance.metadata = MetadataField(json);
  if (auto it = json.find("endpoints"); it != json.end() && it->is_array()) {
    for (const nlohmann::json& entry : *it) {
      if (!entry.is_object()) continue;
      instance.endpoints.push_back(
          EndpointInfo{StringField(entry, "name"), StringField(entry, "subject"),
                       StringField(entry, "queue_group"), MetadataField(entry)});
    }
  }
  if (auto it = json.find("subscribers"); it != json.end() && it->is_array()) {
    for (const nlohmann::json& entry : *it) {
      if (!entry.is_object()) continue;
      instance.subscribers.push_back(SubscriberInfo{StringField(entry, "topic"),
                                                    StringField(entry, "queue_group"),
                                                    StringField(entry, "type")});
    }
  }
  return instance;
}

}  // namespace discovery
}  // namespace micro
