// The code generator behind protoc-gen-micro: for each .proto file it writes
// `<file>.micro.h` and `<file>.micro.cc` (the suffix is a parameter), next to
// protoc's `<file>.pb.h`, with a typed client stub and a handler interface per
// service. Names are chosen as names.h describes.
#ifndef MICRO_PROTOC_GEN_MICRO_GENERATOR_H_
#define MICRO_PROTOC_GEN_MICRO_GENERATOR_H_

#include <google/protobuf/compiler/code_generator.h>
#include <google/protobuf/descriptor.h>

#include <cstdint>
#include <string>

namespace micro::codegen {

class Generator final : public google::protobuf::compiler::CodeGenerator {
 public:
  bool Generate(const google::protobuf::FileDescriptor* file, const std::string& parameter,
                google::protobuf::compiler::GeneratorContext* context,
                std::string* error) const override;

  // The generated code never looks at fields, so proto3 `optional` needs no
  // support beyond declaring it.
  uint64_t GetSupportedFeatures() const override;
};

}  // namespace micro::codegen

#endif  // MICRO_PROTOC_GEN_MICRO_GENERATOR_H_
