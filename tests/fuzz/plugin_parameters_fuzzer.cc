// protoc-gen-micro's parameters (`--micro_opt=...`), which come from users'
// build files. Input: the parameter string, given to the generator with a
// small proto holding a service of every RPC kind.
//
// Properties: generation either fails with a message from protoc-gen-micro
// or writes exactly <base><suffix>.h and <base><suffix>.cc, never protoc's own
// <base>.pb.h/.pb.cc nor a path outside the proto's directory, with the
// export macro, when one is given, on the generated declarations.
#include <google/protobuf/compiler/code_generator.h>
#include <google/protobuf/descriptor.h>
#include <google/protobuf/descriptor.pb.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "fuzz_check.h"
#include "generator.h"

namespace micro::fuzz {
namespace {

namespace pb = google::protobuf;

constexpr char kBase[] = "dir/plugin";

// Keeps what the generator writes in memory.
class MemoryContext final : public pb::compiler::GeneratorContext {
 public:
  pb::io::ZeroCopyOutputStream* Open(const std::string& filename) override {
    return new pb::io::StringOutputStream(&files[filename]);
  }
  std::map<std::string, std::string> files;
};

const pb::FileDescriptor& File() {
  static const pb::FileDescriptor* file = [] {
    pb::FileDescriptorProto proto;
    proto.set_name(std::string(kBase) + ".proto");
    proto.set_package("fuzz.plugin");
    proto.set_syntax("proto3");
    proto.add_message_type()->set_name("Req");
    pb::ServiceDescriptorProto* service = proto.add_service();
    service->set_name("Svc");
    for (int kind = 0; kind < 4; ++kind) {
      pb::MethodDescriptorProto* method = service->add_method();
      method->set_name("Call" + std::to_string(kind));
      method->set_input_type(".fuzz.plugin.Req");
      method->set_output_type(".fuzz.plugin.Req");
      method->set_client_streaming(kind & 1);
      method->set_server_streaming(kind & 2);
    }
    static pb::DescriptorPool pool;
    return pool.BuildFile(proto);
  }();
  return *file;
}

// The value of the last `key=...` among the parameters, as protoc splits them.
std::string LastValue(const std::string& parameter, const std::string& key) {
  std::vector<std::pair<std::string, std::string>> pairs;
  pb::compiler::ParseGeneratorParameter(parameter, &pairs);
  std::string value;
  for (const auto& [k, v] : pairs) {
    if (k == key) value = v;
  }
  return value;
}

void Check(const std::string& parameter) {
  codegen::Generator generator;
  MemoryContext context;
  std::string error;
  bool ok = generator.Generate(&File(), parameter, &context, &error);
  if (!ok) {
    FUZZ_CHECK(error.rfind("protoc-gen-micro: ", 0) == 0, error);
    return;
  }
  std::string suffix = LastValue(parameter, "suffix");
  if (suffix.empty()) suffix = ".micro";
  FUZZ_CHECK(suffix != ".pb", "suffix .pb accepted");
  FUZZ_CHECK(suffix.find('/') == std::string::npos, suffix);
  FUZZ_CHECK(context.files.size() == 2, "parameter '" + parameter + "'");
  std::string header = std::string(kBase) + suffix + ".h";
  FUZZ_CHECK(context.files.count(header) == 1, header);
  FUZZ_CHECK(context.files.count(std::string(kBase) + suffix + ".cc") == 1, suffix);
  std::string macro = LastValue(parameter, "export_macro");
  if (!macro.empty()) {
    FUZZ_CHECK(context.files[header].find("class " + macro + " Svc") != std::string::npos,
               "export macro missing: " + macro);
  }
}

}  // namespace
}  // namespace micro::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  micro::fuzz::Check(std::string(micro::fuzz::AsText(data, size)));
  return 0;
}
