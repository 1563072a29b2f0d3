#include "micro/schema.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/descriptor.pb.h>
#include <google/protobuf/descriptor_database.h>
#include <google/protobuf/dynamic_message.h>

#include <memory>
#include <set>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "micro/registry.h"
#include "protocol/wire.h"
#include "registry/discovery.h"
#include "util/strings.h"

namespace micro {
namespace {

using google::protobuf::FileDescriptor;
using google::protobuf::FileDescriptorProto;
using google::protobuf::FileDescriptorSet;
using internal::ToAbsl;

// Depth first, imports before importers: the order BuildFile needs.
void AddFile(const FileDescriptor* file, std::set<std::string>* added, FileDescriptorSet* set) {
  if (!added->insert(file->name()).second) return;
  for (int i = 0; i < file->dependency_count(); ++i) AddFile(file->dependency(i), added, set);
  file->CopyTo(set->add_file());  // CopyTo leaves out source_code_info.
}

// Keeps the first error of a build, which names the file and the problem.
class FirstError final : public google::protobuf::DescriptorPool::ErrorCollector {
 public:
  void AddError(const std::string& filename, const std::string& element,
                const google::protobuf::Message*, ErrorLocation,
                const std::string& message) override {
    if (error_.empty()) {
      error_ = absl::StrCat(filename, element.empty() ? "" : ": ", element, ": ", message);
    }
  }
  const std::string& error() const { return error_; }

 private:
  std::string error_;
};

}  // namespace

std::string SerializeSchema(const std::vector<const FileDescriptor*>& files) {
  FileDescriptorSet set;
  std::set<std::string> added;
  for (const FileDescriptor* file : files) {
    if (file != nullptr) AddFile(file, &added, &set);
  }
  return set.SerializeAsString();
}

absl::StatusOr<std::string> FetchSchema(Transport& transport, std::string_view name,
                                        std::string_view id, absl::Time deadline) {
  if (absl::Status status = ValidateServiceName(name); !status.ok()) return status;
  if (!discovery::IsValidInstanceId(id)) {
    return absl::InvalidArgumentError(
        absl::StrCat("instance id '", ToAbsl(id), "' must be letters and digits"));
  }
  absl::StatusOr<WireMessage> reply = transport.RequestAndWait(
      WireMessage{discovery::SrvSubject(discovery::Verb::kSchema, name, id), "", {}, ""}, deadline);
  if (!reply.ok()) {
    if (reply.status().code() == absl::StatusCode::kDeadlineExceeded ||
        reply.status().code() == absl::StatusCode::kUnavailable) {
      // UNAVAILABLE is also what a lost connection gives; "no responders"
      // is by far the common case, and the message keeps NATS's reason.
      return absl::NotFoundError(absl::StrCat("instance ", ToAbsl(id), " of service '",
                                              ToAbsl(name), "' published no schema (",
                                              reply.status().message(), ")"));
    }
    return reply.status();
  }
  if (absl::Status status = protocol::DecodeReplyStatus(reply->headers); !status.ok()) {
    return status;
  }
  return std::move(reply->data);
}

class Schema::Impl {
 public:
  google::protobuf::SimpleDescriptorDatabase database;
  FirstError errors;
  // Builds files from `database` as lookups need them, imports first, so
  // the files may come in any order.
  google::protobuf::DescriptorPool pool{&database, &errors};
  google::protobuf::DynamicMessageFactory factory{&pool};
};

absl::StatusOr<std::unique_ptr<Schema>> Schema::Parse(std::string_view serialized) {
  FileDescriptorSet set;
  if (!set.ParseFromArray(serialized.data(), static_cast<int>(serialized.size()))) {
    return absl::InvalidArgumentError(
        "schema is not a serialized google.protobuf.FileDescriptorSet");
  }
  auto impl = std::make_unique<Impl>();
  for (const FileDescriptorProto& file : set.file()) {
    if (!impl->database.Add(file)) {
      return absl::InvalidArgumentError(
          absl::StrCat("schema holds file '", file.name(), "' twice, or one that is malformed"));
    }
  }
  // The pool builds lazily; build every file now, so that errors surface
  // here and later lookups never build (nor touch `errors`).
  for (const FileDescriptorProto& file : set.file()) {
    if (impl->pool.FindFileByName(file.name()) == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("schema file '", file.name(), "' does not build: ",
                       impl->errors.error().empty() ? std::string("an import is missing")
                                                    : impl->errors.error()));
    }
  }
  return std::unique_ptr<Schema>(new Schema(std::move(impl)));
}

Schema::Schema(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Schema::~Schema() = default;

const google::protobuf::Descriptor* Schema::FindMessage(std::string_view full_name) const {
  return impl_->pool.FindMessageTypeByName(std::string(full_name));
}

const google::protobuf::MethodDescriptor* Schema::FindMethod(std::string_view full_name) const {
  return impl_->pool.FindMethodByName(std::string(full_name));
}

std::unique_ptr<google::protobuf::Message> Schema::NewMessage(
    const google::protobuf::Descriptor* type) const {
  return std::unique_ptr<google::protobuf::Message>(impl_->factory.GetPrototype(type)->New());
}

const google::protobuf::DescriptorPool& Schema::pool() const { return impl_->pool; }

}  // namespace micro
