// The C++ identifiers protoc-gen-micro declares for services and methods, and
// the rules that keep them from clashing with C++ keywords, common macros,
// protobuf's generated names and each other.
//
// Every identifier starts as its natural name: the proto name of a service or
// method, `Register<Service>Handler`, `Async<Method>`, `k<Method>`. A name the
// user wrote in the proto (a service or method) gets `_` appended when it is a
// C++ keyword, a macro of common headers, or the name of something already
// declared in its C++ scope: a member the generated class always has, a
// protobuf-generated name of the package, or an identifier generated for a
// same-package file this one imports. A derived name (`Register...Handler`,
// `Async...`) is built from the final C++ name of its service or method and
// gets `_` appended when it equals any name of its scope, including the proto
// names of this file, which therefore keep their natural name. If a name
// still clashes after the one `_`, generation fails naming the proto element.
#ifndef MICRO_PROTOC_GEN_MICRO_NAMES_H_
#define MICRO_PROTOC_GEN_MICRO_NAMES_H_

#include <google/protobuf/descriptor.h>

#include <map>
#include <string>
#include <vector>

namespace micro::codegen {

// One C++ identifier and, when it is not the natural one, why.
struct Identifier {
  std::string name;
  std::string renamed_because;  // Empty when `name` is the natural name.
};

struct MethodNames {
  Identifier method;  // The Stub's blocking call and the Handler's virtual function.
  Identifier async;   // The Stub's asynchronous calls; empty for kinds without them.
  std::string info;   // The `Methods` member holding the MethodInfo: `k<method>`.
};

struct ServiceNames {
  Identifier service;                // The class.
  Identifier register_handler;       // The free function that registers a Handler.
  std::vector<MethodNames> methods;  // Indexed like ServiceDescriptor::method().
};

// Whether the Stub has `Async` calls for `method` (it depends on the method's
// kind, which the generator knows).
using HasAsyncCalls = bool (*)(const google::protobuf::MethodDescriptor& method);

// Names the services of `file`, indexed like FileDescriptor::service(). On an
// unresolvable clash returns false with `*error` set to
// `protoc-gen-micro: <file>: service 'S'[ method 'M']: <reason>`.
bool NameServices(const google::protobuf::FileDescriptor& file, HasAsyncCalls has_async_calls,
                  std::vector<ServiceNames>* names, std::string* error);

}  // namespace micro::codegen

#endif  // MICRO_PROTOC_GEN_MICRO_NAMES_H_
