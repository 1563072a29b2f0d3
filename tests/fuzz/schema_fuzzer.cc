// A schema (docs/PROTOCOL.md, "Schemas") as any instance could publish it:
// the bytes of a FileDescriptorSet that the CLI and the gateway build a
// descriptor pool from and then decode replies with.
//
// Properties: Parse never fails other than with INVALID_ARGUMENT; a schema
// that parses finds every message its files declare, makes a message of each,
// and that message decodes arbitrary bytes (the input itself) without harm
// and serializes again.
#include <google/protobuf/descriptor.pb.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "fuzz_check.h"
#include "micro/schema.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes = micro::fuzz::AsText(data, size);
  absl::StatusOr<std::unique_ptr<micro::Schema>> schema = micro::Schema::Parse(bytes);
  if (!schema.ok()) {
    FUZZ_CHECK(schema.status().code() == absl::StatusCode::kInvalidArgument,
               schema.status().ToString());
    return 0;
  }
  google::protobuf::FileDescriptorSet set;
  FUZZ_CHECK(set.ParseFromArray(data, static_cast<int>(size)), "parsed, yet not a set");
  for (const google::protobuf::FileDescriptorProto& file : set.file()) {
    for (const google::protobuf::DescriptorProto& message : file.message_type()) {
      std::string name =
          file.package().empty() ? message.name() : file.package() + "." + message.name();
      const google::protobuf::Descriptor* type = (*schema)->FindMessage(name);
      FUZZ_CHECK(type != nullptr, name);
      std::unique_ptr<google::protobuf::Message> instance = (*schema)->NewMessage(type);
      FUZZ_CHECK(instance != nullptr, name);
      if (instance->ParseFromArray(data, static_cast<int>(size))) {
        std::string again;
        // Required fields of proto2 files may be missing: partial is fine.
        FUZZ_CHECK(instance->SerializePartialToString(&again), name);
      }
    }
  }
  return 0;
}
