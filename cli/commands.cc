#include "commands.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>

#include <algorithm>
#include <iostream>
#include <iterator>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "dynamic_service.h"
#include "gateway.h"
#include "micro/broker.h"
#include "micro/client.h"
#include "micro/registry.h"
#include "micro/schema.h"
#include "micro/transport.h"

namespace micro::cli {
namespace {

using Json = nlohmann::ordered_json;

// How many positional arguments each command takes, at least and at most.
struct CommandSpec {
  const char* name;
  size_t min_args;
  size_t max_args;
};

constexpr CommandSpec kCommands[] = {
    {"services", 0, 0}, {"describe", 1, 1}, {"call", 2, 3}, {"publish", 2, 2},
    {"stats", 0, 1},    {"ping", 0, 1},     {"api", 0, 0},
};

// Flags that take a value; the others are --help and -h.
const std::set<std::string_view> kValueFlags = {"nats", "output", "timeout", "metadata",
                                                "type", "listen", "max-body"};

absl::Status ApplyFlag(std::string_view name, const std::string& value, Invocation* invocation) {
  if (name == "nats") {
    invocation->nats = value;
  } else if (name == "output") {
    if (value != "json" && value != "table") {
      return absl::InvalidArgumentError("--output is 'table' or 'json'");
    }
    invocation->json = value == "json";
  } else if (name == "timeout") {
    if (!absl::ParseDuration(value, &invocation->timeout) ||
        invocation->timeout <= absl::ZeroDuration()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--timeout '", value, "' is not a positive duration like 5s or 250ms"));
    }
  } else if (name == "metadata") {
    std::pair<std::string, std::string> entry = absl::StrSplit(value, absl::MaxSplits('=', 1));
    if (value.find('=') == std::string::npos || entry.first.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("--metadata '", value, "' is not key=value"));
    }
    invocation->metadata.push_back(std::move(entry));
  } else if (name == "type") {
    invocation->type = value;
  } else if (name == "listen") {
    invocation->listen = value;
  } else if (name == "max-body") {
    if (!absl::SimpleAtoi(value, &invocation->max_body) || invocation->max_body == 0) {
      return absl::InvalidArgumentError("--max-body is a positive number of bytes");
    }
  }
  return absl::OkStatus();
}

// A plain text table: one header row, columns as wide as their widest cell.
class Table {
 public:
  explicit Table(std::vector<std::string> header) { rows_.push_back(std::move(header)); }
  void Add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  bool empty() const { return rows_.size() == 1; }

  void Print(std::ostream& out, std::string_view indent = "") const {
    std::vector<size_t> widths(rows_.front().size(), 0);
    for (const auto& row : rows_) {
      for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
    }
    for (const auto& row : rows_) {
      std::string line(indent);
      for (size_t i = 0; i < row.size(); ++i) {
        line += row[i];
        if (i + 1 < row.size()) line += std::string(widths[i] - row[i].size() + 2, ' ');
      }
      out << line << "\n";
    }
  }

 private:
  std::vector<std::vector<std::string>> rows_;
};

// A command's result: `json` for --output json, else `table`, or `none`
// when the table has no rows.
void Print(const Invocation& invocation, const Json& json, const Table& table,
           std::string_view none, std::ostream& out) {
  if (invocation.json) {
    out << json.dump() << "\n";
  } else if (table.empty()) {
    out << none << "\n";
  } else {
    table.Print(out);
  }
}

std::string JoinMetadata(const std::map<std::string, std::string>& metadata) {
  if (metadata.empty()) return "-";
  return absl::StrJoin(metadata, ",", absl::PairFormatter("="));
}

Json MetadataJson(const std::map<std::string, std::string>& metadata) {
  Json json = Json::object();
  for (const auto& [key, value] : metadata) json[key] = value;
  return json;
}

std::string OrDash(const std::string& text) { return text.empty() ? "-" : text; }

// What every command needs: a connection and a registry on it.
struct Session {
  std::shared_ptr<Transport> transport;
  std::shared_ptr<Registry> registry;
};

absl::StatusOr<Session> Connect(const Invocation& invocation) {
  TransportOptions options;
  options.url = invocation.nats;
  options.name = "micro-cli";
  auto transport = ConnectNats(options);
  if (!transport.ok()) return transport.status();
  auto registry = NewNatsRegistry(*transport);
  if (!registry.ok()) return registry.status();
  return Session{*std::move(transport), *std::move(registry)};
}

// Discovery waits have bounds of their own (NatsRegistryOptions, and
// DynamicService's wait for a schema); --timeout is the call's.
absl::Time LookupDeadline() { return absl::Now() + absl::Seconds(5); }

absl::Status Services(const Invocation& invocation, Session& session, std::ostream& out) {
  auto services = session.registry->ListServices();
  if (!services.ok()) return services.status();
  Json json = Json::array();
  Table table({"NAME", "VERSIONS", "INSTANCES", "DESCRIPTION"});
  for (const ServiceInstances& service : *services) {
    std::set<std::string> versions, descriptions;
    for (const Instance& instance : service.instances) {
      versions.insert(instance.version);
      if (!instance.description.empty()) descriptions.insert(instance.description);
    }
    json.push_back(
        {{"name", service.name}, {"versions", versions}, {"instances", service.instances.size()}});
    table.Add({service.name, absl::StrJoin(versions, ","), absl::StrCat(service.instances.size()),
               OrDash(absl::StrJoin(descriptions, "; "))});
  }
  Print(invocation, json, table, "no services", out);
  return absl::OkStatus();
}

// The message types an endpoint uses, with the types of their message
// fields, each once, in the order met.
void CollectMessages(const google::protobuf::Descriptor* type,
                     std::vector<const google::protobuf::Descriptor*>* seen) {
  if (type == nullptr || std::find(seen->begin(), seen->end(), type) != seen->end()) return;
  seen->push_back(type);
  for (int i = 0; i < type->field_count(); ++i)
    CollectMessages(type->field(i)->message_type(), seen);
}

absl::Status Describe(const Invocation& invocation, Session& session, std::ostream& out) {
  auto service = DynamicService::Load(*session.registry, *session.transport, invocation.args[0],
                                      LookupDeadline());
  if (!service.ok()) return service.status();
  const ServiceInstances& instances = (*service)->instances();
  std::vector<const google::protobuf::Descriptor*> messages;
  Json endpoints = Json::array();
  Table endpoint_table({"ENDPOINT", "KIND", "SUBJECT", "REQUEST", "RESPONSE"});
  for (const auto& endpoint : (*service)->endpoints()) {
    CollectMessages(endpoint->request, &messages);
    CollectMessages(endpoint->response, &messages);
    endpoints.push_back({{"name", endpoint->short_name},
                         {"endpoint", endpoint->info.name},
                         {"method", endpoint->method},
                         {"subject", endpoint->info.subject},
                         {"kind", endpoint->kind_name},
                         {"request", endpoint->request_type},
                         {"response", endpoint->response_type}});
    endpoint_table.Add({endpoint->short_name, OrDash(endpoint->kind_name), endpoint->info.subject,
                        OrDash(endpoint->request_type), OrDash(endpoint->response_type)});
  }
  const Instance& described = (*service)->described();
  Json subscribers = Json::array();
  Table subscriber_table({"TOPIC", "QUEUE GROUP", "TYPE"});
  for (const SubscriberInfo& subscriber : described.subscribers) {
    if ((*service)->schema() != nullptr) {
      CollectMessages((*service)->schema()->FindMessage(subscriber.message_type), &messages);
    }
    subscribers.push_back({{"topic", subscriber.topic},
                           {"queue_group", subscriber.queue_group},
                           {"type", subscriber.message_type}});
    subscriber_table.Add(
        {subscriber.topic, OrDash(subscriber.queue_group), OrDash(subscriber.message_type)});
  }
  Json instance_json = Json::array();
  Table instance_table({"ID", "VERSION", "METADATA", "DESCRIPTION"});
  for (const Instance& instance : instances.instances) {
    instance_json.push_back({{"id", instance.id},
                             {"version", instance.version},
                             {"description", instance.description},
                             {"metadata", MetadataJson(instance.metadata)}});
    instance_table.Add({instance.id, instance.version, JoinMetadata(instance.metadata),
                        OrDash(instance.description)});
  }
  Json schemas = Json::object();
  for (const auto* message : messages) schemas[message->full_name()] = message->DebugString();
  if (invocation.json) {
    out << Json{{"name", instances.name},
                {"instances", instance_json},
                {"endpoints", endpoints},
                {"subscribers", subscribers},
                {"messages", schemas}}
               .dump()
        << "\n";
    return absl::OkStatus();
  }
  out << "Service " << instances.name << "\n\nInstances:\n";
  instance_table.Print(out, "  ");
  out << "\nEndpoints (of instance " << described.id << "):\n";
  endpoint_table.Print(out, "  ");
  if (!described.subscribers.empty()) {
    out << "\nEvent subscriptions (of instance " << described.id << "):\n";
    subscriber_table.Print(out, "  ");
  }
  if ((*service)->schema() == nullptr) {
    out << "\nNo message schemas: the service publishes none.\n";
    return absl::OkStatus();
  }
  out << "\nMessages:\n";
  for (const auto* message : messages) {
    out << "  // " << message->full_name() << "\n";
    for (absl::string_view line : absl::StrSplit(message->DebugString(), '\n', absl::SkipEmpty())) {
      out << "  " << line << "\n";
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadJsonArgument(const std::string& arg) {
  if (arg != "-") return arg;
  std::ostringstream text;
  text << std::cin.rdbuf();
  return text.str();
}

absl::Status Call(const Invocation& invocation, Session& session, std::ostream& out) {
  auto json = ReadJsonArgument(invocation.args.size() > 2 ? invocation.args[2] : "{}");
  if (!json.ok()) return json.status();
  auto service = DynamicService::Load(*session.registry, *session.transport, invocation.args[0],
                                      LookupDeadline());
  if (!service.ok()) return service.status();
  auto endpoint = (*service)->FindCallable(invocation.args[1]);
  if (!endpoint.ok()) return endpoint.status();
  Client client(session.transport);
  ClientContext context;
  if (invocation.timeout != absl::InfiniteDuration()) context.set_timeout(invocation.timeout);
  for (const auto& [key, value] : invocation.metadata) context.AddMetadata(key, value);
  JsonOutput output{.multiline = !invocation.json};
  return CallJson(client, &context, **endpoint, *json, output, [&out](const std::string& message) {
    out << message << std::endl;  // Flushed: streamed messages show as they arrive.
  });
}

// The schema holding message `type`, from the first micro service that has
// it. NOT_FOUND when none does.
absl::StatusOr<std::unique_ptr<Schema>> FindTypeSchema(
    Session& session, const std::vector<ServiceInstances>& services, const std::string& type,
    absl::Time deadline) {
  for (const ServiceInstances& listed : services) {
    // One instance per service: a service that publishes no schema answers
    // only after the wait.
    auto bytes = FetchSchema(*session.transport, listed.name, listed.instances.front().id,
                             std::min(deadline, absl::Now() + absl::Seconds(1)));
    if (!bytes.ok()) continue;
    auto schema = Schema::Parse(*bytes);
    if (schema.ok() && (*schema)->FindMessage(type) != nullptr) return schema;
  }
  return absl::NotFoundError(
      absl::StrCat("no running service publishes message type '", type, "' in its schema"));
}

// Whether events published to `topic` reach a subscription to `pattern`
// (NATS wildcards: `*` one token, a final `>` one or more).
bool TopicMatches(const std::string& pattern, const std::string& topic) {
  std::vector<absl::string_view> want = absl::StrSplit(pattern, '.');
  std::vector<absl::string_view> have = absl::StrSplit(topic, '.');
  for (size_t i = 0; i < want.size(); ++i) {
    if (want[i] == ">") return have.size() > i;
    if (i >= have.size() || (want[i] != "*" && want[i] != have[i])) return false;
  }
  return want.size() == have.size();
}

// A subscription of a running instance that events to a topic reach
// (docs/PROTOCOL.md, INFO `subscribers`).
struct Consumer {
  const Instance* instance;
  const SubscriberInfo* subscriber;
};

std::vector<Consumer> FindConsumers(const std::vector<ServiceInstances>& services,
                                    const std::string& topic) {
  std::vector<Consumer> consumers;
  for (const ServiceInstances& service : services) {
    for (const Instance& instance : service.instances) {
      for (const SubscriberInfo& subscriber : instance.subscribers) {
        if (TopicMatches(subscriber.topic, topic)) consumers.push_back({&instance, &subscriber});
      }
    }
  }
  return consumers;
}

// The event type to publish to `topic` and the schema that has it: the
// --type given, else the one type its subscribers expect; the schema from a
// subscriber of that type, else from any service that has the type.
absl::StatusOr<std::pair<std::string, std::unique_ptr<Schema>>> ResolveEventType(
    const Invocation& invocation, Session& session, const std::string& topic) {
  auto services = session.registry->ListServices();
  if (!services.ok()) return services.status();
  std::vector<Consumer> consumers = FindConsumers(*services, topic);
  std::string type = invocation.type;
  if (type.empty()) {
    std::set<std::string> types;
    for (const Consumer& consumer : consumers) types.insert(consumer.subscriber->message_type);
    if (types.empty()) {
      return absl::NotFoundError(absl::StrCat("no running service subscribes to '", topic,
                                              "'; give the event type with --type"));
    }
    if (types.size() > 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("subscribers of '", topic, "' expect different types (",
                       absl::StrJoin(types, ", "), "); choose one with --type"));
    }
    type = *types.begin();
  }
  for (const Consumer& consumer : consumers) {
    if (consumer.subscriber->message_type != type) continue;
    auto bytes = FetchSchema(*session.transport, consumer.instance->name, consumer.instance->id,
                             LookupDeadline());
    if (!bytes.ok()) continue;
    auto schema = Schema::Parse(*bytes);
    if (schema.ok() && (*schema)->FindMessage(type) != nullptr) {
      return std::make_pair(type, *std::move(schema));
    }
  }
  auto schema = FindTypeSchema(session, *services, type, LookupDeadline());
  if (!schema.ok()) return schema.status();
  return std::make_pair(type, *std::move(schema));
}

absl::Status Publish(const Invocation& invocation, Session& session, std::ostream& out) {
  auto json = ReadJsonArgument(invocation.args[1]);
  if (!json.ok()) return json.status();
  auto resolved = ResolveEventType(invocation, session, invocation.args[0]);
  if (!resolved.ok()) return resolved.status();
  const auto& [type, schema] = *resolved;
  auto event = MessageFromJson(*schema, schema->FindMessage(type), *json);
  if (!event.ok()) return event.status();
  auto broker = NewNatsBroker(session.transport);
  if (!broker.ok()) return broker.status();
  Metadata metadata;
  for (const auto& [key, value] : invocation.metadata) metadata.emplace(key, value);
  if (absl::Status status = (*broker)->Publish(invocation.args[0], **event, metadata);
      !status.ok()) {
    return status;
  }
  if (invocation.json) {
    out << Json{{"topic", invocation.args[0]}, {"type", type}}.dump() << "\n";
  } else {
    out << "published " << type << " to " << invocation.args[0] << "\n";
  }
  return absl::OkStatus();
}

// The answers to `$SRV.<verb>[.<service>]`, parsed; NOT_FOUND for a named
// service without instances.
absl::StatusOr<std::vector<std::pair<nlohmann::json, absl::Duration>>> Query(
    const Invocation& invocation, Session& session, std::string_view verb) {
  std::string name = invocation.args.empty() ? "" : ResolveServiceName(invocation.args[0]);
  auto answers = QueryDiscovery(*session.transport, verb, name, "");
  if (!answers.ok()) return answers.status();
  std::vector<std::pair<nlohmann::json, absl::Duration>> documents;
  for (const DiscoveryAnswer& answer : *answers) {
    nlohmann::json document = nlohmann::json::parse(answer.body, nullptr, false);
    if (document.is_object()) documents.emplace_back(std::move(document), answer.latency);
  }
  if (documents.empty() && !name.empty()) {
    return absl::NotFoundError(absl::StrCat("no instance of service '", name, "' answered"));
  }
  std::sort(documents.begin(), documents.end(), [](const auto& a, const auto& b) {
    return std::make_pair(a.first.value("name", ""), a.first.value("id", "")) <
           std::make_pair(b.first.value("name", ""), b.first.value("id", ""));
  });
  return documents;
}

std::string Millis(absl::Duration duration) {
  return absl::StrCat(absl::ToDoubleMilliseconds(duration), "ms");
}

absl::Status Ping(const Invocation& invocation, Session& session, std::ostream& out) {
  auto documents = Query(invocation, session, "PING");
  if (!documents.ok()) return documents.status();
  Json json = Json::array();
  Table table({"NAME", "ID", "VERSION", "RTT"});
  for (const auto& [document, latency] : *documents) {
    json.push_back({{"name", document.value("name", "")},
                    {"id", document.value("id", "")},
                    {"version", document.value("version", "")},
                    {"rtt_ms", absl::ToDoubleMilliseconds(latency)}});
    table.Add({document.value("name", ""), document.value("id", ""), document.value("version", ""),
               Millis(latency)});
  }
  Print(invocation, json, table, "no services answered", out);
  return absl::OkStatus();
}

absl::Status Stats(const Invocation& invocation, Session& session, std::ostream& out) {
  auto documents = Query(invocation, session, "STATS");
  if (!documents.ok()) return documents.status();
  Json json = Json::array();
  Table table({"SERVICE", "INSTANCE", "ENDPOINT", "REQUESTS", "ERRORS", "AVERAGE", "LAST ERROR"});
  for (const auto& [document, latency] : *documents) {
    json.push_back(Json::parse(document.dump()));
    auto endpoints = document.find("endpoints");
    if (endpoints == document.end() || !endpoints->is_array()) continue;
    for (const nlohmann::json& endpoint : *endpoints) {
      if (!endpoint.is_object()) continue;
      table.Add({document.value("name", ""), document.value("id", ""), endpoint.value("name", ""),
                 absl::StrCat(endpoint.value("num_requests", 0)),
                 absl::StrCat(endpoint.value("num_errors", 0)),
                 Millis(absl::Nanoseconds(endpoint.value("average_processing_time", int64_t{0}))),
                 OrDash(endpoint.value("last_error", ""))});
    }
  }
  Print(invocation, json, table, "no endpoints", out);
  return absl::OkStatus();
}

absl::Status Api(const Invocation& invocation, Session& session, std::ostream& out,
                 const std::function<void()>& wait_for_stop) {
  GatewayOptions options;
  size_t colon = invocation.listen.rfind(':');
  if (colon == std::string::npos ||
      !absl::SimpleAtoi(invocation.listen.substr(colon + 1), &options.port) || options.port < 0 ||
      options.port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("--listen '", invocation.listen, "' is not host:port"));
  }
  options.host = invocation.listen.substr(0, colon);
  options.max_body_bytes = invocation.max_body;
  if (invocation.timeout != absl::InfiniteDuration()) options.default_timeout = invocation.timeout;
  auto cache = NewCachingRegistry(session.registry);
  if (!cache.ok()) return cache.status();
  Gateway gateway(session.transport, *cache, options);
  if (absl::Status status = gateway.Start(); !status.ok()) return status;
  out << "micro api: listening on http://" << options.host << ":" << gateway.port() << std::endl;
  wait_for_stop();
  gateway.Stop();
  out << "micro api: stopped" << std::endl;
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Invocation> ParseCommandLine(const std::vector<std::string>& args) {
  Invocation invocation;
  invocation.nats = DefaultNatsUrl();
  std::vector<std::string> positional;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string_view arg = args[i];
    if (arg == "-h" || arg == "--help" || arg == "help") return Invocation{};
    if (arg.size() < 3 || arg.substr(0, 2) != "--") {
      positional.emplace_back(arg);  // `-` (stdin) and negative JSON numbers included.
      continue;
    }
    arg.remove_prefix(2);
    size_t equals = arg.find('=');
    std::string name(arg.substr(0, equals));
    if (!kValueFlags.contains(name)) {
      return absl::InvalidArgumentError(absl::StrCat("unknown flag --", name));
    }
    std::string value;
    if (equals != std::string_view::npos) {
      value = std::string(arg.substr(equals + 1));
    } else if (i + 1 < args.size()) {
      value = args[++i];
    } else {
      return absl::InvalidArgumentError(absl::StrCat("flag --", name, " needs a value"));
    }
    if (absl::Status status = ApplyFlag(name, value, &invocation); !status.ok()) return status;
  }
  if (positional.empty()) return absl::InvalidArgumentError("no command given");
  invocation.command = positional.front();
  invocation.args.assign(positional.begin() + 1, positional.end());
  const CommandSpec* spec =
      std::find_if(std::begin(kCommands), std::end(kCommands),
                   [&](const CommandSpec& c) { return invocation.command == c.name; });
  if (spec == std::end(kCommands)) {
    return absl::InvalidArgumentError(absl::StrCat("unknown command '", invocation.command, "'"));
  }
  if (invocation.args.size() < spec->min_args || invocation.args.size() > spec->max_args) {
    return absl::InvalidArgumentError(
        absl::StrCat("wrong number of arguments for '", invocation.command, "'"));
  }
  return invocation;
}

std::string Usage() {
  return R"(usage: micro <command> [arguments] [flags]

commands:
  services                         the running services, their versions and instance counts
  describe <service>               instances, endpoints and message schemas of a service
  call <service> <endpoint> [json] calls an endpoint with a JSON request ('-': read stdin;
                                   default {}); client and bidi streaming take a JSON array;
                                   streamed responses print as they arrive
  publish <topic> <json> [--type <package.Message>]
                                   publishes an event; the type is the one the topic's
                                   subscribers expect, or --type from any service's schema
  stats [service]                  per-endpoint request counters of every instance
  ping [service]                   every instance and its round-trip time
  api                              the HTTP API gateway: POST /<service>/<endpoint>

flags:
  --nats <url>        NATS server (default $NATS_URL, else nats://127.0.0.1:4222)
  --output table|json tables for people (default) or JSON for scripts
  --timeout <d>       deadline of a call, e.g. 5s or 250ms (default: 30s for unary calls,
                      none for streams; api: for requests without a Micro-Timeout header)
  --metadata k=v      request metadata (call, publish); repeatable
  --listen host:port  api: where to listen (default 127.0.0.1:8080; port 0: any free port)
  --max-body <bytes>  api: the largest request body (default 1048576)

exit status: 0 success, 1 the command failed (the status is on stderr), 2 bad command line
)";
}

int Run(const Invocation& invocation, std::ostream& out, std::ostream& err,
        const std::function<void()>& wait_for_stop) {
  if (invocation.command.empty()) {
    out << Usage();
    return kExitOk;
  }
  absl::Status status;
  absl::StatusOr<Session> session = Connect(invocation);
  if (!session.ok()) {
    status = session.status();
  } else if (invocation.command == "services") {
    status = Services(invocation, *session, out);
  } else if (invocation.command == "describe") {
    status = Describe(invocation, *session, out);
  } else if (invocation.command == "call") {
    status = Call(invocation, *session, out);
  } else if (invocation.command == "publish") {
    status = Publish(invocation, *session, out);
  } else if (invocation.command == "stats") {
    status = Stats(invocation, *session, out);
  } else if (invocation.command == "ping") {
    status = Ping(invocation, *session, out);
  } else if (invocation.command == "api") {
    status = Api(invocation, *session, out, wait_for_stop);
  }
  if (status.ok()) return kExitOk;
  if (invocation.json) {
    err << Json{{"code", absl::StatusCodeToString(status.code())},
                {"message", std::string(status.message())}}
               .dump()
        << "\n";
  } else {
    // Code and message only: payloads (details, micro's remote mark) are
    // bytes for programs, not for a terminal.
    err << "micro: " << absl::StatusCodeToString(status.code()) << ": " << status.message() << "\n";
  }
  return kExitFailed;
}

}  // namespace micro::cli
