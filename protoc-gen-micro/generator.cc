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
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "names.h"

namespace micro::codegen {
namespace {

namespace pb = google::protobuf;
using pb::compiler::GeneratorContext;
using pb::io::Printer;
using Vars = std::map<std::string, std::string>;

// ---------------------------------------------------------------------------
// Parameters, passed as `--micro_opt=KEY=VALUE,...` or `--micro_out=KEY=VALUE,...:DIR`.

struct Options {
  // Put on every generated class and free function, like protoc's
  // `dllexport_decl`, so the code can live in a shared library built with
  // hidden visibility. The user's build defines the macro.
  std::string export_macro;
  // Outputs are <base><suffix>.h and <base><suffix>.cc.
  std::string suffix = ".micro";
};

bool IsIdentifier(const std::string& s) {
  if (s.empty() || std::isdigit(static_cast<unsigned char>(s[0]))) return false;
  for (unsigned char c : s) {
    if (!std::isalnum(c) && c != '_') return false;
  }
  return true;
}

// A suffix stays within the file name, and may not name protoc's own outputs.
bool IsValidSuffix(const std::string& s) {
  if (s.empty() || s == ".pb") return false;
  for (unsigned char c : s) {
    if (!std::isalnum(c) && c != '_' && c != '.' && c != '-') return false;
  }
  return true;
}

struct Parameter {
  const char* key;
  const char* value_help;
  bool (*valid)(const std::string& value);
  std::string Options::*field;
};

constexpr Parameter kParameters[] = {
    {"export_macro", "a C++ identifier", IsIdentifier, &Options::export_macro},
    {"suffix", "letters, digits, '_', '.' or '-', and not .pb", IsValidSuffix, &Options::suffix},
};

std::string KnownParameters() {
  std::string known;
  for (const Parameter& parameter : kParameters) {
    known +=
        std::string(known.empty() ? "" : ", ") + parameter.key + "=<" + parameter.value_help + ">";
  }
  return known;
}

// Unknown or malformed parameters fail loudly, so a misspelt one cannot be
// silently ignored.
bool ParseParameter(const std::string& parameter, Options* options, std::string* error) {
  std::vector<std::pair<std::string, std::string>> pairs;
  pb::compiler::ParseGeneratorParameter(parameter, &pairs);
  for (const auto& [key, value] : pairs) {
    const std::string given = value.empty() ? key : key + "=" + value;
    const Parameter* match = nullptr;
    for (const Parameter& candidate : kParameters) {
      if (key == candidate.key) match = &candidate;
    }
    if (match == nullptr) {
      *error = "protoc-gen-micro: unknown parameter '" + given +
               "'; known parameters: " + KnownParameters();
      return false;
    }
    if (!match->valid(value)) {
      *error =
          "protoc-gen-micro: parameter '" + given + "': the value must be " + match->value_help;
      return false;
    }
    options->*(match->field) = value;
  }
  return true;
}

// ---------------------------------------------------------------------------
// Checks and facts about the proto.

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

// protobuf's identifier for a file path, as in the names of its descriptor
// tables: letters and digits kept, every other character written as `_` and
// its code in hex. Distinct paths (`a/b_c` and `a/b/c`, `A` and `a`) stay
// distinct, so it also makes our header guards.
std::string FilenameIdentifier(const std::string& path) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string result;
  for (unsigned char c : path) {
    if (std::isalnum(c)) {
      result += static_cast<char>(c);
    } else {
      result += '_';
      if (c >= 0x10) result += kHex[c >> 4];
      result += kHex[c & 0xf];
    }
  }
  return result;
}

bool IsIdempotent(const pb::MethodDescriptor& method) {
  const pb::MethodOptions::IdempotencyLevel level = method.options().idempotency_level();
  return level == pb::MethodOptions::IDEMPOTENT || level == pb::MethodOptions::NO_SIDE_EFFECTS;
}

bool HasDeprecated(const pb::FileDescriptor& file) {
  for (int i = 0; i < file.service_count(); ++i) {
    const pb::ServiceDescriptor& service = *file.service(i);
    if (service.options().deprecated()) return true;
    for (int j = 0; j < service.method_count(); ++j) {
      if (service.method(j)->options().deprecated()) return true;
    }
  }
  return false;
}

// `[[deprecated(...)]] ` for an element with `option deprecated = true`, else "".
template <typename Descriptor>
std::string DeprecatedAttribute(const Descriptor& descriptor) {
  if (!descriptor.options().deprecated()) return "";
  return "[[deprecated(\"" + descriptor.full_name() + " is deprecated\")]] ";
}

// ---------------------------------------------------------------------------
// What is generated for each kind of RPC.

// The client calls of a method, declared in the header and defined in the
// source from the same signature.
struct StubCall {
  const char* signature;
  const char* body;
};

constexpr StubCall kUnaryStubCalls[] = {
    {"::absl::Status $scope$$method$(\n"
     "    ::micro::ClientContext* context,\n"
     "    const $request$& request,\n"
     "    $response$* response)",
     "  return client_->Call(context, Methods::$info$, request, response);\n"},
    {"void $scope$$async$(\n"
     "    ::micro::ClientContext* context,\n"
     "    const $request$& request,\n"
     "    $response$* response,\n"
     "    ::micro::CallCallback on_done)",
     "  client_->AsyncCall(context, Methods::$info$, request, response, ::std::move(on_done));\n"},
    {"::std::future<::absl::StatusOr<$response$>> $scope$$async$(\n"
     "    ::micro::ClientContext* context,\n"
     "    const $request$& request)",
     "  return client_->CallFuture<$response$>(context, Methods::$info$, request);\n"},
};

// One row per ::micro::RpcKind, in its order: what the Stub, the Handler and
// Handler::Definition() contain for a method of that kind.
struct RpcKindSpec {
  const char* rpc_kind;                  // Enumerator of ::micro::RpcKind.
  std::span<const StubCall> stub_calls;  // The Stub's calls.
  const char* handler_method;            // The Handler's pure virtual function.
  // The ::micro::EndpointDefinition in Handler::Definition(). The method is
  // called through `this->` so that a method named like a parameter of the
  // lambda (`context`, `request`, `reader`, ...) still resolves to the method.
  const char* endpoint;
};

// Streaming calls return gRPC-style typed streams (micro/stream.h).
constexpr StubCall kClientStreamingStubCalls[] = {
    {"::std::unique_ptr<::micro::ClientWriter<$request$>> $scope$$method$(\n"
     "    ::micro::ClientContext* context,\n"
     "    $response$* response)",
     "  return ::std::make_unique<::micro::ClientWriter<$request$>>(\n"
     "      *client_, context, Methods::$info$, response);\n"},
};

constexpr StubCall kServerStreamingStubCalls[] = {
    {"::std::unique_ptr<::micro::ClientReader<$response$>> $scope$$method$(\n"
     "    ::micro::ClientContext* context,\n"
     "    const $request$& request)",
     "  return ::std::make_unique<::micro::ClientReader<$response$>>(\n"
     "      *client_, context, Methods::$info$, request);\n"},
};

constexpr StubCall kBidiStreamingStubCalls[] = {
    {"::std::unique_ptr<::micro::ClientReaderWriter<$request$, $response$>> $scope$$method$(\n"
     "    ::micro::ClientContext* context)",
     "  return ::std::make_unique<::micro::ClientReaderWriter<$request$, $response$>>(\n"
     "      *client_, context, Methods::$info$);\n"},
};

constexpr RpcKindSpec kRpcKinds[] = {
    {"kUnary", kUnaryStubCalls,
     "virtual ::absl::Status $method$(\n"
     "    ::micro::ServerContext* context,\n"
     "    const $request$* request,\n"
     "    $response$* response) = 0",
     // The server passes only messages of the prototypes' types, so the
     // static_casts are safe.
     "::micro::EndpointDefinition{\n"
     "    &$qualified_service$::Methods::$info$,\n"
     "    &$request$::default_instance(),\n"
     "    &$response$::default_instance(),\n"
     "    [this](::micro::ServerContext* context,\n"
     "           const ::google::protobuf::Message& request,\n"
     "           ::google::protobuf::Message* response) {\n"
     "      return this->$method$(\n"
     "          context, static_cast<const $request$*>(&request),\n"
     "          static_cast<$response$*>(response));\n"
     "    }},\n"},
    {"kClientStreaming", kClientStreamingStubCalls,
     "virtual ::absl::Status $method$(\n"
     "    ::micro::ServerContext* context,\n"
     "    ::micro::ServerReader<$request$>* reader,\n"
     "    $response$* response) = 0",
     "::micro::EndpointDefinition{\n"
     "    &$qualified_service$::Methods::$info$,\n"
     "    &$request$::default_instance(),\n"
     "    &$response$::default_instance(),\n"
     "    ::micro::ClientStreamingHandler<$request$, $response$>(\n"
     "        [this](::micro::ServerContext* context,\n"
     "               ::micro::ServerReader<$request$>* reader,\n"
     "               $response$* response) {\n"
     "          return this->$method$(context, reader, response);\n"
     "        })},\n"},
    {"kServerStreaming", kServerStreamingStubCalls,
     "virtual ::absl::Status $method$(\n"
     "    ::micro::ServerContext* context,\n"
     "    const $request$* request,\n"
     "    ::micro::ServerWriter<$response$>* writer) = 0",
     "::micro::EndpointDefinition{\n"
     "    &$qualified_service$::Methods::$info$,\n"
     "    &$request$::default_instance(),\n"
     "    &$response$::default_instance(),\n"
     "    ::micro::ServerStreamingHandler<$request$, $response$>(\n"
     "        [this](::micro::ServerContext* context,\n"
     "               const $request$* request,\n"
     "               ::micro::ServerWriter<$response$>* writer) {\n"
     "          return this->$method$(context, request, writer);\n"
     "        })},\n"},
    {"kBidiStreaming", kBidiStreamingStubCalls,
     "virtual ::absl::Status $method$(\n"
     "    ::micro::ServerContext* context,\n"
     "    ::micro::ServerReaderWriter<$response$, $request$>* stream) = 0",
     "::micro::EndpointDefinition{\n"
     "    &$qualified_service$::Methods::$info$,\n"
     "    &$request$::default_instance(),\n"
     "    &$response$::default_instance(),\n"
     "    ::micro::BidiStreamingHandler<$request$, $response$>(\n"
     "        [this](::micro::ServerContext* context,\n"
     "               ::micro::ServerReaderWriter<$response$, $request$>* stream) {\n"
     "          return this->$method$(context, stream);\n"
     "        })},\n"},
};

const RpcKindSpec& KindOf(const pb::MethodDescriptor& method) {
  return kRpcKinds[(method.client_streaming() ? 1 : 0) + (method.server_streaming() ? 2 : 0)];
}

// Whether some Stub call of `method` is named `$async$`.
bool UsesAsyncName(const pb::MethodDescriptor& method) {
  for (const StubCall& call : KindOf(method).stub_calls) {
    if (std::string_view(call.signature).find("$async$") != std::string_view::npos) return true;
  }
  return false;
}

// ---------------------------------------------------------------------------
// Variables.

// Everything the templates of one file need: options and the chosen names.
struct FileContext {
  const pb::FileDescriptor& file;
  const Options& options;
  const std::vector<ServiceNames>& names;
};

Vars ServiceVars(const FileContext& ctx, int service_index) {
  const pb::ServiceDescriptor& service = *ctx.file.service(service_index);
  const ServiceNames& names = ctx.names[service_index];
  return {
      {"service", names.service.name},
      {"qualified_service", "::" + CppNamespace(ctx.file.package()) +
                                (ctx.file.package().empty() ? "" : "::") + names.service.name},
      {"service_full_name", service.full_name()},
      {"register", names.register_handler.name},
      {"export", ctx.options.export_macro.empty() ? "" : ctx.options.export_macro + " "},
      {"deprecated", DeprecatedAttribute(service)},
  };
}

Vars MethodVars(const FileContext& ctx, int service_index, int method_index) {
  const pb::MethodDescriptor& method = *ctx.file.service(service_index)->method(method_index);
  const MethodNames& names = ctx.names[service_index].methods[method_index];
  Vars vars = ServiceVars(ctx, service_index);
  vars["method"] = names.method.name;
  vars["async"] = names.async.name;
  vars["info"] = names.info;
  vars["method_proto"] = method.name();
  vars["subject"] = method.service()->full_name() + "." + method.name();
  // protobuf's own naming, so that nested messages (`Outer_Inner`) and names
  // that clash with C++ keywords match the classes in the .pb.h.
  vars["request"] = pb::compiler::cpp::QualifiedClassName(method.input_type());
  vars["response"] = pb::compiler::cpp::QualifiedClassName(method.output_type());
  vars["idempotent"] = IsIdempotent(method) ? "true" : "false";
  vars["request_type"] = method.input_type()->full_name();
  vars["response_type"] = method.output_type()->full_name();
  vars["rpc_kind"] = KindOf(method).rpc_kind;
  vars["deprecated"] = DeprecatedAttribute(method);
  // Prefix of the method's name: empty in a class body, `Service::Stub::` in
  // an out-of-class definition.
  vars["scope"] = "";
  return vars;
}

// Calls `fn(method, vars)` for each method of the service.
template <typename Fn>
void ForEachMethod(const FileContext& ctx, int service_index, Fn&& fn) {
  const pb::ServiceDescriptor& service = *ctx.file.service(service_index);
  for (int i = 0; i < service.method_count(); ++i) {
    fn(*service.method(i), MethodVars(ctx, service_index, i));
  }
}

// ---------------------------------------------------------------------------
// Shared pieces.

void PrintCommentLines(Printer& p, const std::string& text) {
  std::istringstream lines(text);
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

// The proto comments of an element, leading then trailing, as C++ comments.
template <typename Descriptor>
void PrintProtoComments(Printer& p, const Descriptor& descriptor) {
  pb::SourceLocation location;
  if (!descriptor.GetSourceLocation(&location)) return;
  PrintCommentLines(p, location.leading_comments);
  PrintCommentLines(p, location.trailing_comments);
}

// Says why a generated name differs from the proto's, right where it is declared.
void PrintRenameNote(Printer& p, const Identifier& id, const char* what) {
  if (id.renamed_because.empty()) return;
  p.Print("// $what$ `$name$`: $why$.\n", "what", what, "name", id.name, "why", id.renamed_because);
}

void PrintDeclaration(Printer& p, const Vars& vars, const char* attributes, const char* signature) {
  p.Print(vars, attributes);
  p.Print(vars, signature);
  p.Print(";\n");
}

void PrintDefinition(Printer& p, const Vars& vars, const char* signature, const char* body) {
  p.Print(vars, signature);
  p.Print(" {\n");
  p.Print(vars, body);
  p.Print("}\n");
}

constexpr char kRegisterSignature[] =
    "::absl::Status $register$(::micro::Server& server, $service$::Handler& handler)";

// ---------------------------------------------------------------------------
// Header pieces.

void PrintMethodInfos(Printer& p, const FileContext& ctx, int service_index) {
  p.Print(
      "// Static facts of each method.\n"
      "struct Methods {\n");
  p.Indent();
  ForEachMethod(ctx, service_index, [&](const pb::MethodDescriptor&, const Vars& vars) {
    p.Print(vars,
            "$deprecated$static constexpr ::micro::MethodInfo $info${\n"
            "    \"$service_full_name$\", \"$method_proto$\", \"$subject$\",\n"
            "    ::micro::RpcKind::$rpc_kind$, /*idempotent=*/$idempotent$,\n"
            "    \"$request_type$\", \"$response_type$\"};\n");
  });
  p.Outdent();
  p.Print("};\n\n");
}

void PrintStubDeclaration(Printer& p, const FileContext& ctx, int service_index) {
  p.Print(ServiceVars(ctx, service_index),
          "// Typed client of $service_full_name$. Thread-safe.\n"
          "class $export$Stub final {\n"
          " public:\n"
          "  explicit Stub(::std::shared_ptr<::micro::Client> client);\n");
  p.Indent();
  ForEachMethod(ctx, service_index, [&](const pb::MethodDescriptor& method, const Vars& vars) {
    const MethodNames& names = ctx.names[service_index].methods[method.index()];
    p.Print("\n");
    PrintProtoComments(p, method);
    PrintRenameNote(p, names.method, "Generated as");
    PrintRenameNote(p, names.async, "Asynchronous calls generated as");
    for (const StubCall& call : KindOf(method).stub_calls) {
      PrintDeclaration(p, vars, "$deprecated$", call.signature);
    }
  });
  p.Outdent();
  p.Print(
      "\n"
      " private:\n"
      "  ::std::shared_ptr<::micro::Client> client_;\n"
      "};\n"
      "\n"
      "static ::std::unique_ptr<Stub> NewStub(::std::shared_ptr<::micro::Client> client);\n\n");
}

void PrintHandlerDeclaration(Printer& p, const FileContext& ctx, int service_index) {
  p.Print(ServiceVars(ctx, service_index),
          "// Server-side interface of $service_full_name$: implement every method, then\n"
          "// register it with $register$.\n"
          "class $export$Handler : public ::micro::Service {\n"
          " public:\n");
  p.Indent();
  ForEachMethod(ctx, service_index, [&](const pb::MethodDescriptor& method, const Vars& vars) {
    PrintProtoComments(p, method);
    PrintRenameNote(p, ctx.names[service_index].methods[method.index()].method, "Generated as");
    PrintDeclaration(p, vars, "$deprecated$", KindOf(method).handler_method);
    p.Print("\n");
  });
  p.Print("::micro::ServiceDefinition Definition() final;\n");
  p.Outdent();
  p.Print("};\n");
}

void PrintServiceDeclaration(Printer& p, const FileContext& ctx, int service_index) {
  const pb::ServiceDescriptor& service = *ctx.file.service(service_index);
  const ServiceNames& names = ctx.names[service_index];
  const Vars vars = ServiceVars(ctx, service_index);
  PrintProtoComments(p, service);
  PrintRenameNote(p, names.service, "Generated as");
  if (service.options().deprecated()) {
    // The attribute goes on a declaration of its own because GCC accepts no
    // GNU attribute (as an export macro may be) next to it in a class head.
    p.Print(vars, "class $deprecated$$service$;\n");
  }
  p.Print(vars,
          "class $export$$service$ final {\n"
          " public:\n"
          "  // The full proto name of the service.\n"
          "  static constexpr ::std::string_view kServiceName = \"$service_full_name$\";\n\n");
  p.Indent();
  PrintMethodInfos(p, ctx, service_index);
  PrintStubDeclaration(p, ctx, service_index);
  PrintHandlerDeclaration(p, ctx, service_index);
  p.Outdent();
  p.Print(
      "};\n"
      "\n"
      "// Registers `handler` with `server`; `handler` must outlive the server's Stop().\n");
  PrintRenameNote(p, names.register_handler, "Generated as");
  PrintDeclaration(p, vars, "$deprecated$$export$", kRegisterSignature);
}

// ---------------------------------------------------------------------------
// Source pieces.

void PrintStubDefinitions(Printer& p, const FileContext& ctx, int service_index) {
  p.Print(ServiceVars(ctx, service_index),
          "$service$::Stub::Stub(::std::shared_ptr<::micro::Client> client)\n"
          "    : client_(::std::move(client)) {}\n"
          "\n"
          "::std::unique_ptr<$service$::Stub> $service$::NewStub(\n"
          "    ::std::shared_ptr<::micro::Client> client) {\n"
          "  return ::std::make_unique<Stub>(::std::move(client));\n"
          "}\n\n");
  ForEachMethod(ctx, service_index, [&](const pb::MethodDescriptor& method, Vars vars) {
    vars["scope"] = vars["service"] + "::Stub::";
    for (const StubCall& call : KindOf(method).stub_calls) {
      PrintDefinition(p, vars, call.signature, call.body);
      p.Print("\n");
    }
  });
}

void PrintHandlerDefinition(Printer& p, const FileContext& ctx, int service_index) {
  // Names are fully qualified in the Handler: its own methods and the members
  // of its base class micro::Service (the injected name `Service` too) would
  // hide those of the enclosing class.
  Vars vars = ServiceVars(ctx, service_index);
  vars["proto"] = ctx.file.name();
  vars["descriptor_table"] = "::descriptor_table_" + FilenameIdentifier(ctx.file.name());
  p.Print(vars,
          "::micro::ServiceDefinition $service$::Handler::Definition() {\n"
          "  // Assigning the descriptors of $proto$ through its table (declared in\n"
          "  // its .pb.h) links in the .pb.cc that registers them, which a static library\n"
          "  // would leave out where no message of that file is used.\n"
          "  ::google::protobuf::internal::AssignDescriptors(&$descriptor_table$);\n"
          "  return ::micro::ServiceDefinition{\n"
          "      $qualified_service$::kServiceName,\n"
          "      {\n");
  // The endpoints go in the braces above, 10 columns in.
  constexpr int kEndpointIndent = 5;
  for (int i = 0; i < kEndpointIndent; ++i) p.Indent();
  ForEachMethod(ctx, service_index, [&](const pb::MethodDescriptor& method, const Vars& vars) {
    p.Print(vars, KindOf(method).endpoint);
  });
  for (int i = 0; i < kEndpointIndent; ++i) p.Outdent();
  p.Print(vars,
          "      },\n"
          "      ::google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(\n"
          "          \"$service_full_name$\")};\n"
          "}\n\n");
}

void PrintServiceDefinition(Printer& p, const FileContext& ctx, int service_index) {
  PrintStubDefinitions(p, ctx, service_index);
  PrintHandlerDefinition(p, ctx, service_index);
  PrintDefinition(p, ServiceVars(ctx, service_index), kRegisterSignature,
                  "  return server.RegisterService(&handler);\n");
}

// ---------------------------------------------------------------------------
// Files.

using ServicePrinter = void (*)(Printer&, const FileContext&, int service_index);

// One generated file: its fixed text around the per-service code, which goes
// in the namespace of the proto package.
struct FileTemplate {
  const char* extension;  // Appended to <base><suffix>.
  const char* prologue;
  ServicePrinter print_service;
  const char* epilogue;
};

constexpr FileTemplate kHeader = {
    ".h",
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
    "#include \"micro/stream.h\"\n"
    "\n"
    "#include \"$base$.pb.h\"\n"
    "\n",
    PrintServiceDeclaration,
    "\n"
    "#endif  // $guard$\n",
};

constexpr FileTemplate kSource = {
    ".cc",
    "// Generated by protoc-gen-micro from $proto$. DO NOT EDIT.\n"
    "#include \"$base$$suffix$.h\"\n"
    "\n"
    "#include <future>\n"
    "#include <memory>\n"
    "#include <utility>\n"
    "\n",
    PrintServiceDefinition,
    "",
};

void PrintServices(Printer& p, const FileContext& ctx, ServicePrinter print_service) {
  if (ctx.file.service_count() == 0) return;
  const std::string ns = CppNamespace(ctx.file.package());
  // Only the source needs the pragmas: the header declares deprecated things
  // without using them.
  const bool deprecated = print_service == PrintServiceDefinition && HasDeprecated(ctx.file);
  if (deprecated) {
    p.Print(
        "// Some services or methods of this file are deprecated. The definitions below\n"
        "// implement and call them; the warnings are meant for code that uses them.\n"
        "#pragma GCC diagnostic push\n"
        "#pragma GCC diagnostic ignored \"-Wdeprecated-declarations\"\n\n");
  }
  if (!ns.empty()) p.Print("namespace $ns$ {\n\n", "ns", ns);
  for (int i = 0; i < ctx.file.service_count(); ++i) {
    if (i > 0) p.Print("\n");
    print_service(p, ctx, i);
  }
  if (!ns.empty()) p.Print("\n}  // namespace $ns$\n", "ns", ns);
  if (deprecated) p.Print("\n#pragma GCC diagnostic pop\n");
}

void WriteFile(const FileContext& ctx, GeneratorContext* context, const FileTemplate& tmpl) {
  const std::string base = pb::compiler::StripProto(ctx.file.name());
  const std::string path = base + ctx.options.suffix + tmpl.extension;
  const Vars vars = {
      {"proto", ctx.file.name()},
      {"base", base},
      {"suffix", ctx.options.suffix},
      {"guard", "MICRO_INCLUDED_" + FilenameIdentifier(path)},
  };
  std::unique_ptr<pb::io::ZeroCopyOutputStream> output(context->Open(path));
  Printer p(output.get(), '$');
  p.Print(vars, tmpl.prologue);
  PrintServices(p, ctx, tmpl.print_service);
  p.Print(vars, tmpl.epilogue);
}

}  // namespace

bool Generator::Generate(const pb::FileDescriptor* file, const std::string& parameter,
                         GeneratorContext* context, std::string* error) const {
  Options options;
  if (!ParseParameter(parameter, &options, error)) return false;
  // Files without services still get (nearly empty) outputs, so build
  // systems can always list <base><suffix>.h and <base><suffix>.cc as outputs.
  if (file->service_count() > 0 && !CheckFile(*file, error)) return false;
  std::vector<ServiceNames> names;
  if (!NameServices(*file, UsesAsyncName, &names, error)) return false;
  const FileContext ctx{*file, options, names};
  WriteFile(ctx, context, kHeader);
  WriteFile(ctx, context, kSource);
  return true;
}

uint64_t Generator::GetSupportedFeatures() const { return FEATURE_PROTO3_OPTIONAL; }

}  // namespace micro::codegen
