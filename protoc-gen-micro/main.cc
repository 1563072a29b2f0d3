// protoc-gen-micro: protoc runs it for `--micro_out`.
#include <google/protobuf/compiler/plugin.h>

#include "generator.h"

int main(int argc, char* argv[]) {
  micro::codegen::Generator generator;
  return google::protobuf::compiler::PluginMain(argc, argv, &generator);
}
