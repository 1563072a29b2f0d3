#include "dynamic_service.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>
#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "micro/codec.h"
#include "micro/stream.h"
#include "util/strings.h"

namespace micro::cli {
namespace {

// Micro instances answer `$SRV.SCHEMA` in microseconds; a plain ADR-32
// instance never does, so do not wait long for it.
constexpr absl::Duration kSchemaWait = absl::Seconds(1);

std::string MetadataValue(const EndpointInfo& endpoint, const char* key) {
  auto it = endpoint.metadata.find(key);
  return it == endpoint.metadata.end() ? std::string() : it->second;
}

// Plain ADR-32 services publish no schema: asking them only waits.
bool IsMicroInstance(const Instance& instance) {
  return !instance.subscribers.empty() ||
         std::any_of(instance.endpoints.begin(), instance.endpoints.end(),
                     [](const EndpointInfo& e) { return e.metadata.contains("micro.method"); });
}

RpcKind ParseKind(std::string_view name) {
  if (name == "client_stream") return RpcKind::kClientStreaming;
  if (name == "server_stream") return RpcKind::kServerStreaming;
  if (name == "bidi_stream") return RpcKind::kBidiStreaming;
  return RpcKind::kUnary;
}

// Instances in the order to ask for a schema: not lame duck first, then by id.
std::vector<size_t> PreferenceOrder(const std::vector<Instance>& instances) {
  std::vector<size_t> order(instances.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_partition(order.begin(), order.end(),
                        [&](size_t i) { return !instances[i].lame_duck(); });
  return order;
}

std::unique_ptr<DynamicEndpoint> MakeEndpoint(const EndpointInfo& info, const Schema* schema) {
  auto endpoint = std::make_unique<DynamicEndpoint>();
  endpoint->info = info;
  endpoint->method = MetadataValue(info, "micro.method");
  size_t dot = endpoint->method.rfind('.');
  if (dot != std::string::npos) {
    endpoint->service = endpoint->method.substr(0, dot);
    endpoint->short_name = endpoint->method.substr(dot + 1);
  } else {
    endpoint->short_name = info.name;  // A plain ADR-32 endpoint.
  }
  endpoint->request_type = MetadataValue(info, "micro.request");
  endpoint->response_type = MetadataValue(info, "micro.response");
  endpoint->kind_name = MetadataValue(info, "micro.kind");
  endpoint->kind = ParseKind(endpoint->kind_name);
  endpoint->idempotent = MetadataValue(info, "micro.idempotent") == "true";
  if (schema != nullptr && !endpoint->method.empty()) {
    endpoint->request = schema->FindMessage(endpoint->request_type);
    endpoint->response = schema->FindMessage(endpoint->response_type);
    if (endpoint->request != nullptr && endpoint->response != nullptr) {
      endpoint->schema = schema;
    } else {
      endpoint->request = endpoint->response = nullptr;
    }
  }
  return endpoint;
}

// The requests of a streaming call: the elements of a JSON array, or the
// one object given.
absl::StatusOr<std::vector<std::unique_ptr<google::protobuf::Message>>> ParseRequests(
    const DynamicEndpoint& endpoint, std::string_view json) {
  nlohmann::json parsed = nlohmann::json::parse(json.begin(), json.end(), nullptr,
                                                /*allow_exceptions=*/false);
  if (parsed.is_discarded()) {
    return absl::InvalidArgumentError(
        absl::StrCat("request is not valid JSON for ", endpoint.request_type));
  }
  std::vector<std::string> texts;
  if (parsed.is_array()) {
    for (const nlohmann::json& element : parsed) texts.push_back(element.dump());
  } else {
    texts.emplace_back(json);
  }
  std::vector<std::unique_ptr<google::protobuf::Message>> requests;
  for (const std::string& text : texts) {
    auto request = MessageFromJson(*endpoint.schema, endpoint.request, text);
    if (!request.ok()) return request.status();
    requests.push_back(*std::move(request));
  }
  return requests;
}

absl::Status ReadAll(ClientStream& stream, const DynamicEndpoint& endpoint,
                     const JsonOutput& output, const JsonSink& sink) {
  std::unique_ptr<google::protobuf::Message> response =
      endpoint.schema->NewMessage(endpoint.response);
  while (stream.Read(response.get())) sink(MessageToJson(*response, output));
  return stream.Finish();
}

}  // namespace

std::string ResolveServiceName(std::string_view name) {
  return name.find('.') != std::string_view::npos ? ServiceNameOf(name) : std::string(name);
}

MethodInfo DynamicEndpoint::method_info() const {
  return MethodInfo{service,    short_name,   info.subject, kind,
                    idempotent, request_type, response_type};
}

absl::StatusOr<std::shared_ptr<const DynamicService>> DynamicService::Load(Registry& registry,
                                                                           Transport& transport,
                                                                           std::string_view name,
                                                                           absl::Time deadline) {
  std::string service_name = ResolveServiceName(name);
  auto found = registry.GetService(service_name);
  if (!found.ok()) return found.status();
  std::shared_ptr<DynamicService> service(new DynamicService);
  service->instances_ = **found;
  const std::vector<Instance>& instances = service->instances_.instances;
  std::vector<size_t> order = PreferenceOrder(instances);
  service->described_ = order.front();
  service->no_schema_reason_ =
      absl::StrCat("service '", service_name, "' publishes no schema (it is no micro service)");
  for (size_t i : order) {
    if (!IsMicroInstance(instances[i])) continue;
    service->described_ = i;
    auto bytes = FetchSchema(transport, service_name, instances[i].id,
                             std::min(deadline, absl::Now() + kSchemaWait));
    absl::StatusOr<std::unique_ptr<Schema>> schema =
        bytes.ok() ? Schema::Parse(*bytes) : bytes.status();
    if (schema.ok()) {
      service->schema_ = *std::move(schema);
      break;
    }
    service->no_schema_reason_ =
        absl::StrCat("no schema for service '", service_name, "': ", schema.status().message());
  }
  for (const EndpointInfo& info : service->described().endpoints) {
    service->endpoints_.push_back(MakeEndpoint(info, service->schema_.get()));
  }
  return service;
}

absl::StatusOr<const DynamicEndpoint*> DynamicService::Find(std::string_view name) const {
  std::vector<const DynamicEndpoint*> by_short_name;
  std::vector<std::string> names;
  for (const auto& endpoint : endpoints_) {
    if (endpoint->info.name == name || endpoint->info.subject == name || endpoint->method == name) {
      return endpoint.get();
    }
    if (endpoint->short_name == name) by_short_name.push_back(endpoint.get());
    names.push_back(endpoint->short_name);
  }
  if (by_short_name.size() == 1) return by_short_name.front();
  if (by_short_name.size() > 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "endpoint name '", internal::ToAbsl(name), "' is ambiguous in service '", instances_.name,
        "': give the full method name, e.g. '", by_short_name.front()->method, "'"));
  }
  return absl::NotFoundError(absl::StrCat("service '", instances_.name, "' has no endpoint '",
                                          internal::ToAbsl(name),
                                          "'; it has: ", absl::StrJoin(names, ", ")));
}

absl::StatusOr<const DynamicEndpoint*> DynamicService::FindCallable(std::string_view name) const {
  absl::StatusOr<const DynamicEndpoint*> endpoint = Find(name);
  if (!endpoint.ok() || (*endpoint)->schema != nullptr) return endpoint;
  if (schema_ == nullptr) return absl::FailedPreconditionError(no_schema_reason_);
  return absl::FailedPreconditionError(absl::StrCat("the schema of service '", instances_.name,
                                                    "' lacks the message types of '",
                                                    (*endpoint)->short_name, "'"));
}

absl::StatusOr<std::unique_ptr<google::protobuf::Message>> MessageFromJson(
    const Schema& schema, const google::protobuf::Descriptor* type, std::string_view json) {
  std::unique_ptr<google::protobuf::Message> message = schema.NewMessage(type);
  // The runtime's codec, which also survives the JSON that makes
  // libprotobuf fail a CHECK.
  if (absl::Status status = JsonCodec().Decode(json, message.get()); !status.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("request is not a valid JSON ", type->full_name(), ": ", status.message()));
  }
  return message;
}

std::string MessageToJson(const google::protobuf::Message& message, const JsonOutput& output) {
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = output.multiline;
  options.always_print_primitive_fields = true;
  std::string json;
  // Fails only for invalid UTF-8 in strings, which a decoded message lacks.
  (void)google::protobuf::util::MessageToJsonString(message, &json, options);
  while (!json.empty() && json.back() == '\n') json.pop_back();
  return json;
}

absl::Status CallJson(Client& client, ClientContext* context, const DynamicEndpoint& endpoint,
                      std::string_view json, const JsonOutput& output, const JsonSink& sink) {
  MethodInfo method = endpoint.method_info();
  switch (endpoint.kind) {
    case RpcKind::kUnary: {
      auto request = MessageFromJson(*endpoint.schema, endpoint.request, json);
      if (!request.ok()) return request.status();
      std::unique_ptr<google::protobuf::Message> response =
          endpoint.schema->NewMessage(endpoint.response);
      absl::Status status = client.Call(context, method, **request, response.get());
      if (status.ok()) sink(MessageToJson(*response, output));
      return status;
    }
    case RpcKind::kServerStreaming: {
      auto request = MessageFromJson(*endpoint.schema, endpoint.request, json);
      if (!request.ok()) return request.status();
      ClientStream stream(client, context, method);
      if (stream.Write(**request)) stream.WritesDone();
      return ReadAll(stream, endpoint, output, sink);
    }
    case RpcKind::kClientStreaming:
    case RpcKind::kBidiStreaming: {
      auto requests = ParseRequests(endpoint, json);
      if (!requests.ok()) return requests.status();
      ClientStream stream(client, context, method);
      // Writing on a thread of its own while this one reads, so that
      // neither side's window fills up with nobody draining it.
      std::thread writer([&stream, &requests] {
        for (const auto& request : *requests) {
          if (!stream.Write(*request)) return;
        }
        stream.WritesDone();
      });
      absl::Status status = ReadAll(stream, endpoint, output, sink);
      writer.join();
      return status;
    }
  }
  return absl::InternalError("unknown RPC kind");
}

}  // namespace micro::cli
