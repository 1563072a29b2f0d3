#include "names.h"

#include <google/protobuf/compiler/cpp/names.h>
#include <google/protobuf/descriptor.h>

#include <cctype>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace micro::codegen {
namespace {

namespace pb = google::protobuf;
namespace cpp = google::protobuf::compiler::cpp;

// C++20 keywords and alternative tokens.
const std::set<std::string_view> kKeywords = {
    "alignas",       "alignof",     "and",
    "and_eq",        "asm",         "auto",
    "bitand",        "bitor",       "bool",
    "break",         "case",        "catch",
    "char",          "char8_t",     "char16_t",
    "char32_t",      "class",       "compl",
    "concept",       "const",       "consteval",
    "constexpr",     "constinit",   "const_cast",
    "continue",      "co_await",    "co_return",
    "co_yield",      "decltype",    "default",
    "delete",        "do",          "double",
    "dynamic_cast",  "else",        "enum",
    "explicit",      "export",      "extern",
    "false",         "float",       "for",
    "friend",        "goto",        "if",
    "inline",        "int",         "long",
    "mutable",       "namespace",   "new",
    "noexcept",      "not",         "not_eq",
    "nullptr",       "operator",    "or",
    "or_eq",         "private",     "protected",
    "public",        "register",    "reinterpret_cast",
    "requires",      "return",      "short",
    "signed",        "sizeof",      "static",
    "static_assert", "static_cast", "struct",
    "switch",        "template",    "this",
    "thread_local",  "throw",       "true",
    "try",           "typedef",     "typeid",
    "typename",      "typeof",      "union",
    "unsigned",      "using",       "virtual",
    "void",          "volatile",    "wchar_t",
    "while",         "xor",         "xor_eq",
};

// Keywords of the GNU dialects, CMake's default for projects that do not set
// CXX_EXTENSIONS.
const std::set<std::string_view> kGnuKeywords = {"typeof"};

// Macros that the C and POSIX headers (which every program pulls in through
// the standard library), the compiler in GNU mode, or widespread convention
// define with identifier-like names. A method named like one would be
// expanded by the preprocessor wherever its name appears.
const std::set<std::string_view> kMacros = {
    // <assert.h>, <errno.h>, <stddef.h>, <stdio.h>, <stdlib.h>, <setjmp.h>,
    // <stdarg.h>, <time.h>, <math.h>, <limits.h>.
    "assert",
    "errno",
    "EDOM",
    "ERANGE",
    "EILSEQ",
    "NULL",
    "offsetof",
    "EOF",
    "BUFSIZ",
    "FILENAME_MAX",
    "FOPEN_MAX",
    "L_tmpnam",
    "TMP_MAX",
    "SEEK_SET",
    "SEEK_CUR",
    "SEEK_END",
    "stdin",
    "stdout",
    "stderr",
    "EXIT_SUCCESS",
    "EXIT_FAILURE",
    "RAND_MAX",
    "MB_CUR_MAX",
    "setjmp",
    "va_arg",
    "va_copy",
    "va_end",
    "va_start",
    "CLOCKS_PER_SEC",
    "HUGE_VAL",
    "INFINITY",
    "NAN",
    "CHAR_BIT",
    "INT_MAX",
    "INT_MIN",
    "UINT_MAX",
    "LONG_MAX",
    "LONG_MIN",
    // glibc <sys/sysmacros.h>.
    "major",
    "minor",
    "makedev",
    // Predefined by GCC and Clang in the GNU dialects.
    "linux",
    "unix",
    "i386",
    // Defined by many build systems and libraries.
    "TRUE",
    "FALSE",
    "DEBUG",
    "NDEBUG",
};

// What is declared in one C++ scope: identifier -> what declares it, in words.
using Scope = std::map<std::string, std::string>;

// Members of every generated service class: a service may not share a name
// with them (a class member may not be named like its class).
const Scope kServiceClassMembers = {
    {"kServiceName", "a member of every generated service class"},
    {"Methods", "a member of every generated service class"},
    {"Stub", "a member of every generated service class"},
    {"NewStub", "a member of every generated service class"},
    {"Handler", "a member of every generated service class"},
};

// Names declared in the Stub or the Handler besides the methods.
const Scope kStubAndHandlerMembers = {
    {"Stub", "the Stub's constructor"},
    {"client_", "the Stub's data member"},
    {"Handler", "the Handler's constructor"},
    {"Definition", "micro::Service::Definition, which the Handler implements"},
};

bool IsKeyword(const std::string& name) { return kKeywords.count(name) > 0; }

std::string Quoted(std::string_view name) { return "`" + std::string(name) + "`"; }

// The natural name, or the natural name with `_` appended when it is reserved
// or already declared in `scope`.
Identifier Resolve(const std::string& natural, const Scope& scope) {
  std::string why;
  if (IsKeyword(natural)) {
    why = "a C++ keyword";
  } else if (kGnuKeywords.count(natural) > 0) {
    why = "a keyword of the GNU dialects of C++";
  } else if (kMacros.count(natural) > 0) {
    why = "a macro of common C/C++ headers";
  } else if (auto it = scope.find(natural); it != scope.end()) {
    why = "the name of " + it->second;
  }
  if (why.empty()) return {natural, ""};
  return {natural + "_", Quoted(natural) + " is " + why};
}

// `what` declares `id`; says so with its rename, if any, for error messages.
std::string Holder(const std::string& what, const Identifier& id) {
  if (id.renamed_because.empty()) return what;
  return what + " (generated as " + Quoted(id.name) + " because " + id.renamed_because + ")";
}

// The reason given when `id` is still taken: what it was renamed for, and by whom.
std::string StillTaken(const Identifier& id, const std::string& holder) {
  std::string reason = "C++ name " + Quoted(id.name);
  if (!id.renamed_because.empty()) reason += " (renamed because " + id.renamed_because + ")";
  return reason + " is also the name of " + holder + "; rename one of them in the proto";
}

// protobuf's CamelCase of field names, as in `k<CamelCase>FieldNumber`:
// underscores dropped, the letter after one or after a digit capitalised.
std::string CamelCase(const std::string& name) {
  std::string result;
  bool capitalize = true;
  for (unsigned char c : name) {
    if (std::isalpha(c)) {
      result += static_cast<char>(capitalize ? std::toupper(c) : c);
      capitalize = false;
    } else if (std::isdigit(c)) {
      result += static_cast<char>(c);
      capitalize = true;
    } else {
      capitalize = true;
    }
  }
  return result;
}

void AddMessageNames(const pb::Descriptor& message, Scope* scope);

void AddEnumNames(const pb::EnumDescriptor& enumeration, Scope* scope) {
  const std::string name = cpp::ClassName(&enumeration);
  const std::string what = "a declaration protobuf generates for enum " + enumeration.full_name();
  for (const char* suffix : {"", "_IsValid", "_descriptor", "_Name", "_Parse"}) {
    scope->emplace(name + suffix, what);
  }
  // Nested enums repeat their own name in the range constants: Outer_Kind_Kind_MIN.
  const std::string range_prefix =
      enumeration.containing_type() == nullptr ? name : name + "_" + enumeration.name();
  for (const char* suffix : {"_MIN", "_MAX", "_ARRAYSIZE"}) {
    scope->emplace(range_prefix + suffix, what);
  }
  // Enumerators of top-level enums are declared as they are; those of nested
  // enums are prefixed with the enum's C++ name.
  const std::string value_prefix = enumeration.containing_type() == nullptr ? "" : name + "_";
  for (int i = 0; i < enumeration.value_count(); ++i) {
    const pb::EnumValueDescriptor& value = *enumeration.value(i);
    scope->emplace(value_prefix + cpp::EnumValueName(&value), "enum value " + value.full_name());
  }
}

void AddMessageNames(const pb::Descriptor& message, Scope* scope) {
  const std::string name = cpp::ClassName(&message);
  const std::string what = "a declaration protobuf generates for message " + message.full_name();
  scope->emplace(name, "the class of message " + message.full_name());
  scope->emplace(name + "DefaultTypeInternal", what);
  scope->emplace("_" + name + "_default_instance_", what);
  for (int i = 0; i < message.nested_type_count(); ++i) {
    AddMessageNames(*message.nested_type(i), scope);
  }
  for (int i = 0; i < message.enum_type_count(); ++i) {
    AddEnumNames(*message.enum_type(i), scope);
  }
}

// The names protobuf's C++ generator declares in the namespace of `file`'s package.
void AddProtobufNames(const pb::FileDescriptor& file, Scope* scope) {
  for (int i = 0; i < file.message_type_count(); ++i) AddMessageNames(*file.message_type(i), scope);
  for (int i = 0; i < file.enum_type_count(); ++i) AddEnumNames(*file.enum_type(i), scope);
  for (int i = 0; i < file.extension_count(); ++i) {
    const pb::FieldDescriptor& extension = *file.extension(i);
    const std::string what = "extension " + extension.full_name();
    const std::string& name = extension.name();
    scope->emplace(IsKeyword(name) ? name + "_" : name, what);
    scope->emplace("k" + CamelCase(name) + "FieldNumber", what);
  }
}

// `file`'s dependencies, direct and indirect, that share its package: their
// generated declarations are in the same C++ namespace and visible wherever
// `file`'s are, since each .pb.h includes those of its imports.
void CollectSamePackageDependencies(const pb::FileDescriptor& file, const std::string& package,
                                    std::set<const pb::FileDescriptor*>* seen,
                                    std::vector<const pb::FileDescriptor*>* result) {
  for (int i = 0; i < file.dependency_count(); ++i) {
    const pb::FileDescriptor* dependency = file.dependency(i);
    if (!seen->insert(dependency).second) continue;
    if (dependency->package() == package) result->push_back(dependency);
    CollectSamePackageDependencies(*dependency, package, seen, result);
  }
}

std::string ServiceError(const pb::ServiceDescriptor& service, const std::string& reason) {
  return "protoc-gen-micro: " + service.file()->name() + ": service '" + service.name() +
         "': " + reason;
}

std::string MethodError(const pb::MethodDescriptor& method, const std::string& reason) {
  return "protoc-gen-micro: " + method.service()->file()->name() + ": service '" +
         method.service()->name() + "' method '" + method.name() + "': " + reason;
}

bool NameMethods(const pb::ServiceDescriptor& service, HasAsyncCalls has_async_calls,
                 std::vector<MethodNames>* names, std::string* error) {
  Scope members = kStubAndHandlerMembers;
  names->resize(service.method_count());
  // Every method keeps its name unless it is reserved.
  for (int i = 0; i < service.method_count(); ++i) {
    (*names)[i].method = Resolve(service.method(i)->name(), kStubAndHandlerMembers);
  }
  for (int i = 0; i < service.method_count(); ++i) {
    const Identifier& id = (*names)[i].method;
    const std::string holder = Holder("method '" + service.method(i)->name() + "'", id);
    if (auto [it, added] = members.emplace(id.name, holder); !added) {
      *error = MethodError(*service.method(i), StillTaken(id, it->second));
      return false;
    }
    (*names)[i].info = "k" + id.name;
  }
  for (int i = 0; i < service.method_count(); ++i) {
    const pb::MethodDescriptor& method = *service.method(i);
    if (!has_async_calls(method)) continue;
    Identifier& async = (*names)[i].async;
    async = Resolve("Async" + (*names)[i].method.name, members);
    const std::string holder =
        Holder("the asynchronous calls of method '" + method.name() + "'", async);
    if (auto [it, added] = members.emplace(async.name, holder); !added) {
      *error = MethodError(method, StillTaken(async, it->second));
      return false;
    }
  }
  return true;
}

// Names files one at a time, remembering the results: a file's names depend
// on those of its same-package imports, which are named first.
class Namer {
 public:
  explicit Namer(HasAsyncCalls has_async_calls) : has_async_calls_(has_async_calls) {}

  const std::vector<ServiceNames>* Name(const pb::FileDescriptor& file, std::string* error) {
    if (auto it = done_.find(&file); it != done_.end()) return &it->second;
    std::vector<ServiceNames> names;
    if (!NameFile(file, &names, error)) return nullptr;
    return &done_.emplace(&file, std::move(names)).first->second;
  }

 private:
  bool NameFile(const pb::FileDescriptor& file, std::vector<ServiceNames>* names,
                std::string* error) {
    Scope scope;
    if (!NamespaceScope(file, &scope, error)) return false;
    names->resize(file.service_count());

    Scope class_scope = scope;
    class_scope.insert(kServiceClassMembers.begin(), kServiceClassMembers.end());
    for (int i = 0; i < file.service_count(); ++i) {
      (*names)[i].service = Resolve(file.service(i)->name(), class_scope);
    }
    for (int i = 0; i < file.service_count(); ++i) {
      const pb::ServiceDescriptor& service = *file.service(i);
      const Identifier& id = (*names)[i].service;
      const std::string holder = Holder("service " + service.full_name(), id);
      if (auto [it, added] = scope.emplace(id.name, holder); !added) {
        *error = ServiceError(service, StillTaken(id, it->second));
        return false;
      }
    }
    for (int i = 0; i < file.service_count(); ++i) {
      const pb::ServiceDescriptor& service = *file.service(i);
      Identifier& function = (*names)[i].register_handler;
      function = Resolve("Register" + (*names)[i].service.name + "Handler", scope);
      const std::string holder =
          Holder("the function registering " + service.full_name() + "'s handler", function);
      if (auto [it, added] = scope.emplace(function.name, holder); !added) {
        *error = ServiceError(service, StillTaken(function, it->second));
        return false;
      }
      if (!NameMethods(service, has_async_calls_, &(*names)[i].methods, error)) return false;
    }
    return true;
  }

  // Everything already declared in the C++ namespace of `file`'s package
  // before its services are: protobuf's declarations, micro's declarations for
  // same-package imports, and for files without a package, the namespaces the
  // generated code uses.
  bool NamespaceScope(const pb::FileDescriptor& file, Scope* scope, std::string* error) {
    if (file.package().empty()) {
      for (const char* ns : {"std", "absl", "google", "micro"}) {
        scope->emplace(ns, std::string("namespace ::") + ns);
      }
    }
    AddProtobufNames(file, scope);
    std::set<const pb::FileDescriptor*> seen;
    std::vector<const pb::FileDescriptor*> dependencies;
    CollectSamePackageDependencies(file, file.package(), &seen, &dependencies);
    for (const pb::FileDescriptor* dependency : dependencies) {
      AddProtobufNames(*dependency, scope);
      const std::vector<ServiceNames>* names = Name(*dependency, error);
      if (names == nullptr) return false;
      for (int i = 0; i < dependency->service_count(); ++i) {
        const std::string& full_name = dependency->service(i)->full_name();
        const std::string where = " (generated for " + dependency->name() + ")";
        scope->emplace((*names)[i].service.name, "the class of service " + full_name + where);
        scope->emplace((*names)[i].register_handler.name,
                       "the function registering " + full_name + "'s handler" + where);
      }
    }
    return true;
  }

  HasAsyncCalls has_async_calls_;
  std::map<const pb::FileDescriptor*, std::vector<ServiceNames>> done_;
};

}  // namespace

bool NameServices(const pb::FileDescriptor& file, HasAsyncCalls has_async_calls,
                  std::vector<ServiceNames>* names, std::string* error) {
  Namer namer(has_async_calls);
  const std::vector<ServiceNames>* result = namer.Name(file, error);
  if (result == nullptr) return false;
  *names = *result;
  return true;
}

}  // namespace micro::codegen
