#include "generator.h"

#include <google/protobuf/compiler/code_generator.h>
#include <google/protobuf/compiler/cpp/names.h>
#include <google/protobuf/descriptor.h>
#include <google/protobuf/descriptor.pb.h>
#include <google/protobuf/io/printer.h>
#include <google/protobuf/io/zero_copy_stream.h>

#include <cctype>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace micro::codegen {
namespace {

namespace pb = google::protobuf;
using pb::compiler::GeneratorContext;
using pb::io::Printer;
using Vars = std::map<std::string, std::string>;

// Settings passed as `--micro_out=PARAMETERS:DIR`. There are none yet.
struct Options {};

bool ParseParameter(const std::string& parameter, [[maybe_unused]] Options* options,
                    std::string* error) {
  std::vector<std::pair<std::string, std::string>> pairs;
  pb::compiler::ParseGeneratorParameter(parameter, &pairs);
  for (const auto& [key, value] : pairs) {
    // New parameters are recognised here, before the fallthrough. Unknown ones
    // fail loudly so that a misspelt one cannot be silently ignored.
    const std::string given = value.empty() ? key : key + "=" + value;
    *error = "protoc-gen-micro: unknown parameter '" + given + "'";
    return false;
  }
  return true;
}

// Rejects files whose .pb.h the generated code cannot work with, so the user
// gets a clear message instead of a compile error in generated code.
bool CheckFile(const pb::FileDescriptor& file, std::string* error) {
  const pb::FileOptions& options = file.options();
  if (options.optimize_for() == pb::FileOptions::LITE_RUNTIME) {
    // The runtime handles messages through the full `Message` interface.
    *error = "protoc-gen-micro: optimize_for = LITE_RUNTIME is not supported";
    return false;
  }
  if (options.cc_generic_services()) {
    // protoc's own service classes would be declared with the same names as ours.
    *error = "protoc-gen-micro: cc_generic_services = true is not supported";
    return false;
  }
  return true;
}

std::string CppNamespace(const std::string& package) {
  std::string result;
  for (char c : package) {
    result += c == '.' ? std::string("::") : std::string(1, c);
  }
  return result;
}

std::string HeaderGuard(const std::string& header_path) {
  std::string guard;
  for (unsigned char c : header_path) {
    guard += std::isalnum(c) ? static_cast<char>(std::toupper(c)) : '_';
  }
  // A macro name may not start with a digit.
  if (!guard.empty() && std::isdigit(static_cast<unsigned char>(guard[0]))) {
    guard.insert(0, "MICRO_");
  }
  return guard + "_";
}

bool IsUnary(const pb::MethodDescriptor& method) {
  return !method.client_streaming() && !method.server_streaming();
}

bool IsIdempotent(const pb::MethodDescriptor& method) {
  const pb::MethodOptions::IdempotencyLevel level = method.options().idempotency_level();
  return level == pb::MethodOptions::IDEMPOTENT || level == pb::MethodOptions::NO_SIDE_EFFECTS;
}

Vars ServiceVars(const pb::ServiceDescriptor& service) {
  return {{"service", service.name()}, {"service_full_name", service.full_name()}};
}

Vars MethodVars(const pb::MethodDescriptor& method) {
  Vars vars = ServiceVars(*method.service());
  vars["method"] = method.name();
  vars["subject"] = method.service()->full_name() + "." + method.name();
  // protobuf's own naming, so that nested messages (`Outer_Inner`) and names
  // that clash with C++ keywords match the classes in the .pb.h.
  vars["request"] = pb::compiler::cpp::QualifiedClassName(method.input_type());
  vars["response"] = pb::compiler::cpp::QualifiedClassName(method.output_type());
  vars["idempotent"] = IsIdempotent(method) ? "true" : "false";
  vars["request_type"] = method.input_type()->full_name();
  vars["response_type"] = method.output_type()->full_name();
  // Prefix of the method's name: empty in a class body, `Service::Stub::` in
  // an out-of-class definition.
  vars["scope"] = "";
  return vars;
}

// Streaming methods get no code from this version, so only unary ones are visited.
template <typename Fn>
void ForEachUnaryMethod(const pb::ServiceDescriptor& service, Fn&& fn) {
  for (int i = 0; i < service.method_count(); ++i) {
    const pb::MethodDescriptor& method = *service.method(i);
    if (IsUnary(method)) fn(method, MethodVars(method));
  }
}

template <typename Descriptor>
void PrintLeadingComments(Printer& p, const Descriptor& descriptor) {
  pb::SourceLocation location;
  if (!descriptor.GetSourceLocation(&location)) return;
  std::istringstream lines(location.leading_comments);
  for (std::string line; std::getline(lines, line);) {
    while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back()))) {
      line.pop_back();
    }
    // A `//` comment ending in a backslash would swallow the next line of code.
    if (!line.empty() && line.back() == '\\') line += '.';
    // The line goes in as a value, so a `$` in the comment is not taken for a variable.
    p.Print("//$line$\n", "line", line);
  }
}

void PrintDeclaration(Printer& p, const Vars& vars, const char* signature) {
  p.Print(vars, signature);
  p.Print(";\n");
}

void PrintDefinition(Printer& p, const Vars& vars, const char* signature, const char* body) {
  p.Print(vars, signature);
  p.Print(" {\n");
  p.Print(vars, body);
  p.Print("}\n");
}

// The three client calls of a unary method, declared in the header and
// defined in the source from the same signature.
struct StubCall {
  const char* signature;
  const char* body;
};

constexpr StubCall kStubCalls[] = {
    {"::absl::Status $scope$$method$(\n"
     "    ::micro::ClientContext* context,\n"
     "    const $request$& request,\n"
     "    $response$* response)",
     "  return client_->Call(context, Methods::k$method$, request, response);\n"},
    {"void $scope$Async$method$(\n"
     "    ::micro::ClientContext* context,\n"
     "    const $request$& request,\n"
     "    $response$* response,\n"
     "    ::micro::CallCallback on_done)",
     "  client_->AsyncCall(context, Methods::k$method$, request, response, std::move(on_done));\n"},
    {"std::future<::absl::StatusOr<$response$>> $scope$Async$method$(\n"
     "    ::micro::ClientContext* context,\n"
     "    const $request$& request)",
     "  return client_->CallFuture<$response$>(context, Methods::k$method$, request);\n"},
};

constexpr char kRegisterSignature[] =
    "::absl::Status Register$service$Handler(::micro::Server& server, $service$::Handler& "
    "handler)";

// ---------------------------------------------------------------------------
// Header pieces.

void PrintSkippedMethods(Printer& p, const pb::ServiceDescriptor& service) {
  bool any = false;
  for (int i = 0; i < service.method_count(); ++i) {
    const pb::MethodDescriptor& method = *service.method(i);
    if (IsUnary(method)) continue;
    p.Print("// $method$: streaming RPCs are not generated by this version of protoc-gen-micro.\n",
            "method", method.name());
    any = true;
  }
  if (any) p.Print("\n");
}

void PrintMethodInfos(Printer& p, const pb::ServiceDescriptor& service) {
  p.Print(
      "// Static facts of each method.\n"
      "struct Methods {\n");
  p.Indent();
  ForEachUnaryMethod(service, [&](const pb::MethodDescriptor&, const Vars& vars) {
    p.Print(vars,
            "static constexpr ::micro::MethodInfo k$method${\n"
            "    \"$service_full_name$\", \"$method$\", \"$subject$\",\n"
            "    ::micro::RpcKind::kUnary, /*idempotent=*/$idempotent$,\n"
            "    \"$request_type$\", \"$response_type$\"};\n");
  });
  p.Outdent();
  p.Print("};\n\n");
}

void PrintStubDeclaration(Printer& p, const pb::ServiceDescriptor& service) {
  p.Print(ServiceVars(service),
          "// Typed client of $service$. Thread-safe.\n"
          "class Stub final {\n"
          " public:\n"
          "  explicit Stub(std::shared_ptr<::micro::Client> client);\n");
  p.Indent();
  ForEachUnaryMethod(service, [&](const pb::MethodDescriptor& method, const Vars& vars) {
    p.Print("\n");
    PrintLeadingComments(p, method);
    for (const StubCall& call : kStubCalls) PrintDeclaration(p, vars, call.signature);
  });
  p.Outdent();
  p.Print(
      "\n"
      " private:\n"
      "  std::shared_ptr<::micro::Client> client_;\n"
      "};\n"
      "\n"
      "static std::unique_ptr<Stub> NewStub(std::shared_ptr<::micro::Client> client);\n\n");
}

void PrintHandlerDeclaration(Printer& p, const pb::ServiceDescriptor& service) {
  p.Print(ServiceVars(service),
          "// Server-side interface of $service$: implement every method, then register it\n"
          "// with Register$service$Handler.\n"
          "class Handler : public ::micro::Service {\n"
          " public:\n");
  p.Indent();
  ForEachUnaryMethod(service, [&](const pb::MethodDescriptor& method, const Vars& vars) {
    PrintLeadingComments(p, method);
    p.Print(vars,
            "virtual ::absl::Status $method$(\n"
            "    ::micro::ServerContext* context,\n"
            "    const $request$* request,\n"
            "    $response$* response) = 0;\n\n");
  });
  p.Print("::micro::ServiceDefinition Definition() final;\n");
  p.Outdent();
  p.Print("};\n");
}

void PrintServiceDeclaration(Printer& p, const pb::ServiceDescriptor& service) {
  const Vars vars = ServiceVars(service);
  PrintLeadingComments(p, service);
  p.Print(vars,
          "class $service$ final {\n"
          " public:\n"
          "  // The full proto name of the service.\n"
          "  static constexpr std::string_view kServiceName = \"$service_full_name$\";\n\n");
  p.Indent();
  PrintSkippedMethods(p, service);
  PrintMethodInfos(p, service);
  PrintStubDeclaration(p, service);
  PrintHandlerDeclaration(p, service);
  p.Outdent();
  p.Print(
      "};\n"
      "\n"
      "// Registers `handler` with `server`; `handler` must outlive the server's Stop().\n");
  PrintDeclaration(p, vars, kRegisterSignature);
}

// ---------------------------------------------------------------------------
// Source pieces.

void PrintStubDefinitions(Printer& p, const pb::ServiceDescriptor& service) {
  p.Print(ServiceVars(service),
          "$service$::Stub::Stub(std::shared_ptr<::micro::Client> client)\n"
          "    : client_(std::move(client)) {}\n"
          "\n"
          "std::unique_ptr<$service$::Stub> $service$::NewStub(\n"
          "    std::shared_ptr<::micro::Client> client) {\n"
          "  return std::make_unique<Stub>(std::move(client));\n"
          "}\n\n");
  ForEachUnaryMethod(service, [&](const pb::MethodDescriptor&, Vars vars) {
    vars["scope"] = service.name() + "::Stub::";
    for (const StubCall& call : kStubCalls) {
      PrintDefinition(p, vars, call.signature, call.body);
      p.Print("\n");
    }
  });
}

void PrintHandlerDefinition(Printer& p, const pb::ServiceDescriptor& service) {
  p.Print(ServiceVars(service),
          "::micro::ServiceDefinition $service$::Handler::Definition() {\n"
          "  return ::micro::ServiceDefinition{\n"
          "      kServiceName,\n"
          "      {\n");
  ForEachUnaryMethod(service, [&](const pb::MethodDescriptor&, const Vars& vars) {
    // The server passes only messages of the prototypes' types, so the
    // static_casts are safe.
    p.Print(vars,
            "          ::micro::EndpointDefinition{\n"
            "              &Methods::k$method$,\n"
            "              &$request$::default_instance(),\n"
            "              &$response$::default_instance(),\n"
            "              [this](::micro::ServerContext* context,\n"
            "                     const ::google::protobuf::Message& request,\n"
            "                     ::google::protobuf::Message* response) {\n"
            "                return $method$(\n"
            "                    context, static_cast<const $request$*>(&request),\n"
            "                    static_cast<$response$*>(response));\n"
            "              }},\n");
  });
  p.Print(ServiceVars(service),
          "      },\n"
          "      ::google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(\n"
          "          \"$service_full_name$\")};\n"
          "}\n\n");
}

void PrintServiceDefinition(Printer& p, const pb::ServiceDescriptor& service) {
  PrintStubDefinitions(p, service);
  PrintHandlerDefinition(p, service);
  PrintDefinition(p, ServiceVars(service), kRegisterSignature,
                  "  return server.RegisterService(&handler);\n");
}

// ---------------------------------------------------------------------------
// Files.

using ServicePrinter = void (*)(Printer&, const pb::ServiceDescriptor&);

// One generated file: its fixed text around the per-service code, which goes
// in the namespace of the proto package.
struct FileTemplate {
  const char* extension;
  const char* prologue;
  ServicePrinter print_service;
  const char* epilogue;
};

constexpr FileTemplate kHeader = {
    ".micro.h",
    "// Generated by protoc-gen-micro from $proto$. DO NOT EDIT.\n"
    "#ifndef $guard$\n"
    "#define $guard$\n"
    "\n"
    "#include <future>\n"
    "#include <memory>\n"
    "#include <string_view>\n"
    "\n"
    "#include \"absl/status/status.h\"\n"
    "#include \"absl/status/statusor.h\"\n"
    "#include \"micro/client.h\"\n"
    "#include \"micro/context.h\"\n"
    "#include \"micro/server.h\"\n"
    "#include \"micro/service.h\"\n"
    "\n"
    "#include \"$base$.pb.h\"\n"
    "\n",
    PrintServiceDeclaration,
    "\n"
    "#endif  // $guard$\n",
};

constexpr FileTemplate kSource = {
    ".micro.cc",
    "// Generated by protoc-gen-micro from $proto$. DO NOT EDIT.\n"
    "#include \"$base$.micro.h\"\n"
    "\n"
    "#include <future>\n"
    "#include <memory>\n"
    "#include <utility>\n"
    "\n",
    PrintServiceDefinition,
    "",
};

void PrintServices(Printer& p, const pb::FileDescriptor& file, ServicePrinter print_service) {
  const std::string ns = CppNamespace(file.package());
  if (!ns.empty()) p.Print("namespace $ns$ {\n\n", "ns", ns);
  for (int i = 0; i < file.service_count(); ++i) {
    if (i > 0) p.Print("\n");
    print_service(p, *file.service(i));
  }
  if (!ns.empty()) p.Print("\n}  // namespace $ns$\n", "ns", ns);
}

void WriteFile(const pb::FileDescriptor& file, GeneratorContext* context,
               const FileTemplate& tmpl) {
  const std::string base = pb::compiler::StripProto(file.name());
  const std::string path = base + tmpl.extension;
  const Vars vars = {{"proto", file.name()}, {"base", base}, {"guard", HeaderGuard(path)}};
  std::unique_ptr<pb::io::ZeroCopyOutputStream> output(context->Open(path));
  Printer p(output.get(), '$');
  p.Print(vars, tmpl.prologue);
  PrintServices(p, file, tmpl.print_service);
  p.Print(vars, tmpl.epilogue);
}

}  // namespace

bool Generator::Generate(const pb::FileDescriptor* file, const std::string& parameter,
                         GeneratorContext* context, std::string* error) const {
  Options options;
  if (!ParseParameter(parameter, &options, error)) return false;
  // Files without services still get (nearly empty) outputs, so build
  // systems can always list <base>.micro.h and <base>.micro.cc as outputs.
  if (file->service_count() > 0 && !CheckFile(*file, error)) return false;
  WriteFile(*file, context, kHeader);
  WriteFile(*file, context, kSource);
  return true;
}

uint64_t Generator::GetSupportedFeatures() const { return FEATURE_PROTO3_OPTIONAL; }

}  // namespace micro::codegen
