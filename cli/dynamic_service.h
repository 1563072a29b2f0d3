// Calls to any micro service without compiled stubs: the service's
// endpoints come from discovery (INFO), its message types from the schema
// one of its instances publishes (docs/PROTOCOL.md, "Schemas"), and requests
// and responses are JSON (the canonical proto3 mapping). The CLI and the
// HTTP gateway both call through here.
#ifndef MICRO_CLI_DYNAMIC_SERVICE_H_
#define MICRO_CLI_DYNAMIC_SERVICE_H_

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "micro/client.h"
#include "micro/registry.h"
#include "micro/schema.h"
#include "micro/service.h"
#include "micro/transport.h"

namespace google::protobuf {
class Descriptor;
}  // namespace google::protobuf

namespace micro::cli {

// The ADR-32 service name `name` stands for: itself, or for a proto service
// name (`helloworld.Greeter`) its default one (`helloworld-Greeter`).
std::string ResolveServiceName(std::string_view name);

// One endpoint of a service, as discovery and the schema describe it.
struct DynamicEndpoint {
  EndpointInfo info;         // The ADR-32 endpoint.
  std::string method;        // `p.S.M` (`micro.method`); empty for a plain ADR-32 endpoint.
  std::string service;       // `p.S`.
  std::string short_name;    // `M`: what users type.
  std::string request_type;  // Full proto names (`micro.request`, `micro.response`).
  std::string response_type;
  std::string kind_name;  // `micro.kind`: `unary`, `server_stream`, ...
  RpcKind kind = RpcKind::kUnary;
  bool idempotent = false;
  // From the schema; all null unless the endpoint can be called with JSON.
  const Schema* schema = nullptr;
  const google::protobuf::Descriptor* request = nullptr;
  const google::protobuf::Descriptor* response = nullptr;

  // Views into this endpoint, valid while it lives.
  MethodInfo method_info() const;
};

// A service found in a registry, with the schema of one of its instances.
// Immutable; share it between threads.
class DynamicService {
 public:
  // Looks `name` up in `registry` (NOT_FOUND when no instance answers) and
  // fetches the schema of its first micro instance (by id, avoiding lame
  // ducks) by `deadline`. A service none of whose instances publishes a
  // schema (plain ADR-32) loads without one: it can be described, not
  // called. `name` goes through ResolveServiceName.
  static absl::StatusOr<std::shared_ptr<const DynamicService>> Load(Registry& registry,
                                                                    Transport& transport,
                                                                    std::string_view name,
                                                                    absl::Time deadline);

  const ServiceInstances& instances() const { return instances_; }
  // The instance whose endpoints and schema these are.
  const Instance& described() const { return instances_.instances[described_]; }
  const std::vector<std::unique_ptr<DynamicEndpoint>>& endpoints() const { return endpoints_; }
  // Null when no instance published a schema.
  const Schema* schema() const { return schema_.get(); }

  // The endpoint named `name`: its method name (`SayHello`), ADR-32 name
  // (`helloworld-Greeter-SayHello`) or subject (`helloworld.Greeter.SayHello`).
  // NOT_FOUND listing the endpoints there are; INVALID_ARGUMENT when a
  // method name is ambiguous (two proto services with the same method).
  absl::StatusOr<const DynamicEndpoint*> Find(std::string_view name) const;

  // Find, and FAILED_PRECONDITION unless the endpoint can be called with
  // JSON (its message types are in the schema).
  absl::StatusOr<const DynamicEndpoint*> FindCallable(std::string_view name) const;

 private:
  DynamicService() = default;

  ServiceInstances instances_;
  size_t described_ = 0;
  std::unique_ptr<Schema> schema_;
  std::string no_schema_reason_;  // Why schema_ is null.
  std::vector<std::unique_ptr<DynamicEndpoint>> endpoints_;
};

// How responses are printed.
struct JsonOutput {
  bool multiline = false;  // Indented, for people; else one line per message.
};

// Receives each response, as JSON, as it arrives.
using JsonSink = std::function<void(const std::string& json)>;

// Calls `endpoint` (FindCallable's) with the request in `json` and hands
// each response to `sink`: one for unary and client-streaming calls, each
// as it arrives for server and bidirectional streaming. Client and
// bidirectional streaming take a JSON array of requests (a single object is
// one request). INVALID_ARGUMENT, naming the type, for JSON that is not a
// request; otherwise the call's status (micro/client.h).
absl::Status CallJson(Client& client, ClientContext* context, const DynamicEndpoint& endpoint,
                      std::string_view json, const JsonOutput& output, const JsonSink& sink);

// Parses `json` into a new message of `type` from `schema`. INVALID_ARGUMENT
// naming the type when it does not fit.
absl::StatusOr<std::unique_ptr<google::protobuf::Message>> MessageFromJson(
    const Schema& schema, const google::protobuf::Descriptor* type, std::string_view json);

// The canonical JSON of `message`, fields with default values included.
std::string MessageToJson(const google::protobuf::Message& message, const JsonOutput& output);

}  // namespace micro::cli

#endif  // MICRO_CLI_DYNAMIC_SERVICE_H_
