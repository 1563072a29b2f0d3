// The description of a service that generated code hands to the runtime: its
// methods, their message types, and the functions that handle them.
#ifndef MICRO_SERVICE_H_
#define MICRO_SERVICE_H_

#include <functional>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "micro/context.h"

namespace google::protobuf {
class Message;
class ServiceDescriptor;
}  // namespace google::protobuf

namespace micro {

enum class RpcKind { kUnary, kClientStreaming, kServerStreaming, kBidiStreaming };

// Static facts about one RPC method, emitted by protoc-gen-micro.
struct MethodInfo {
  std::string_view service;  // Full proto service name, `package.Service`.
  std::string_view name;     // Method name as written in the proto.
  std::string_view subject;  // NATS subject of the endpoint, `package.Service.Method`.
  RpcKind kind = RpcKind::kUnary;
  bool idempotent = false;         // `option idempotency_level` is IDEMPOTENT or NO_SIDE_EFFECTS.
  std::string_view request_type;   // Full proto name of the request message.
  std::string_view response_type;  // Full proto name of the response message.
};

// Handles one unary call: `request` is decoded, `response` is empty and is
// sent if the returned status is OK. Called on a server executor thread.
using UnaryHandler =
    std::function<absl::Status(ServerContext* context, const google::protobuf::Message& request,
                               google::protobuf::Message* response)>;

class MessageStream;

// Handles one streaming call (client, server or bidirectional): reads and
// writes `stream` until done, then returns the final status, which ends the
// stream. Called on a server executor thread, which it occupies until it
// returns. Generated code adapts typed handler methods (see micro/stream.h).
using StreamHandler = std::function<absl::Status(ServerContext* context, MessageStream* stream)>;

struct EndpointDefinition {
  EndpointDefinition(const MethodInfo* method, const google::protobuf::Message* request_prototype,
                     const google::protobuf::Message* response_prototype, UnaryHandler unary)
      : method(method),
        request_prototype(request_prototype),
        response_prototype(response_prototype),
        unary(std::move(unary)) {}
  EndpointDefinition(const MethodInfo* method, const google::protobuf::Message* request_prototype,
                     const google::protobuf::Message* response_prototype, StreamHandler stream)
      : method(method),
        request_prototype(request_prototype),
        response_prototype(response_prototype),
        stream(std::move(stream)) {}

  const MethodInfo* method = nullptr;
  // Default instances of the request and response types; they outlive the
  // process (generated code passes `T::default_instance()`).
  const google::protobuf::Message* request_prototype = nullptr;
  const google::protobuf::Message* response_prototype = nullptr;
  UnaryHandler unary;    // For RpcKind::kUnary.
  StreamHandler stream;  // For the three streaming kinds.
};

struct ServiceDefinition {
  std::string_view name;  // Full proto service name, `package.Service`.
  std::vector<EndpointDefinition> endpoints;
  // The proto descriptor, from which tools reach every message schema (and,
  // through its file, the imports): calls with JSON need no compiled stubs.
  const google::protobuf::ServiceDescriptor* descriptor = nullptr;
};

// Base of every generated handler interface, so servers can accept any of them.
class Service {
 public:
  virtual ~Service() = default;
  // The service's endpoints, bound to this object.
  virtual ServiceDefinition Definition() = 0;
};

}  // namespace micro

#endif  // MICRO_SERVICE_H_
