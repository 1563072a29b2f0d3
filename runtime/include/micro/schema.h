// Service schemas (docs/PROTOCOL.md, "Schemas"): the proto files a micro
// instance publishes on `$SRV.SCHEMA`, so that tools can call its endpoints
// with dynamic messages (and JSON) instead of compiled stubs. A Server
// publishes the schema of its registered services by itself; tools fetch it
// with FetchSchema and read it with Schema.
#ifndef MICRO_SCHEMA_H_
#define MICRO_SCHEMA_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "micro/transport.h"

namespace google::protobuf {
class Descriptor;
class DescriptorPool;
class FileDescriptor;
class Message;
class MethodDescriptor;
}  // namespace google::protobuf

namespace micro {

// The serialized google.protobuf.FileDescriptorSet of `files` (those
// declaring a server's services and event types) and every file they
// import: each once, imports before the files importing them, without
// source code info. Null entries are skipped.
std::string SerializeSchema(const std::vector<const google::protobuf::FileDescriptor*>& files);

// Asks instance `id` of service `name` for its schema (`$SRV.SCHEMA.<name>.<id>`)
// and returns the serialized FileDescriptorSet. NOT_FOUND when the instance
// publishes none: nobody answers by `deadline` or NATS has no responders (a
// plain ADR-32 service, an older micro, or a stopped instance);
// RESOURCE_EXHAUSTED when the schema exceeds the NATS max payload;
// INVALID_ARGUMENT for an invalid name or id; UNAVAILABLE when NATS is
// unreachable.
absl::StatusOr<std::string> FetchSchema(Transport& transport, std::string_view name,
                                        std::string_view id, absl::Time deadline);

// The messages and services of one schema, able to make dynamic messages of
// its types. Immutable and thread-safe.
class Schema {
 public:
  // INVALID_ARGUMENT when `serialized` is not a FileDescriptorSet or its
  // files do not build (a missing import, a duplicate or malformed
  // definition); the message names the file. The files may come in any order.
  static absl::StatusOr<std::unique_ptr<Schema>> Parse(std::string_view serialized);

  ~Schema();
  Schema(const Schema&) = delete;
  Schema& operator=(const Schema&) = delete;

  // nullptr when the schema has no such message (`package.Message`) or
  // method (`package.Service.Method`).
  const google::protobuf::Descriptor* FindMessage(std::string_view full_name) const;
  const google::protobuf::MethodDescriptor* FindMethod(std::string_view full_name) const;

  // A new empty message of `type`, which must come from this schema. The
  // message must not outlive the schema.
  std::unique_ptr<google::protobuf::Message> NewMessage(
      const google::protobuf::Descriptor* type) const;

  const google::protobuf::DescriptorPool& pool() const;

 private:
  class Impl;
  explicit Schema(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace micro

#endif  // MICRO_SCHEMA_H_
