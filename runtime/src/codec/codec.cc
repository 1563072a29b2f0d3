#include "micro/codec.h"

#include <google/protobuf/message.h>
#include <google/protobuf/util/json_util.h>

#include <exception>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "util/strings.h"

namespace micro {
namespace {

class ProtobufBinaryCodec final : public Codec {
 public:
  std::string_view ContentType() const override { return kProtobufContentType; }

  absl::Status Encode(const google::protobuf::Message& message, std::string* out) const override {
    out->clear();
    if (!message.SerializeToString(out)) {
      return absl::InternalError(absl::StrCat("cannot encode ", message.GetTypeName(), ": ",
                                              message.InitializationErrorString()));
    }
    return absl::OkStatus();
  }

  absl::Status Decode(std::string_view data, google::protobuf::Message* message) const override {
    if (!message->ParseFromArray(data.data(), static_cast<int>(data.size()))) {
      return absl::InvalidArgumentError(absl::StrCat("malformed ", message->GetTypeName(),
                                                     ": not a valid protobuf encoding of ",
                                                     data.size(), " bytes"));
    }
    return absl::OkStatus();
  }
};

// Runs a libprotobuf JSON conversion. libprotobuf 3.21 meets some malformed
// JSON with a failed CHECK that throws FatalException instead of returning
// an error (an `Any` of `google.protobuf.Value` with a field it lacks, found
// by the codec fuzzer): that becomes an error too.
template <typename Convert>
google::protobuf::util::Status CatchingFailedChecks(Convert convert) {
  try {
    return convert();
  } catch (const std::exception& e) {
    return google::protobuf::util::InternalError(e.what());
  }
}

class ProtoJsonCodec final : public Codec {
 public:
  std::string_view ContentType() const override { return kJsonContentType; }

  absl::Status Encode(const google::protobuf::Message& message, std::string* out) const override {
    out->clear();
    google::protobuf::util::JsonPrintOptions options;
    options.preserve_proto_field_names = false;
    auto status = CatchingFailedChecks(
        [&] { return google::protobuf::util::MessageToJsonString(message, out, options); });
    if (!status.ok()) {
      out->clear();
      return absl::InternalError(
          absl::StrCat("cannot encode ", message.GetTypeName(), " as JSON: ", status.ToString()));
    }
    return absl::OkStatus();
  }

  absl::Status Decode(std::string_view data, google::protobuf::Message* message) const override {
    google::protobuf::util::JsonParseOptions options;
    options.ignore_unknown_fields = false;
    message->Clear();
    auto status = CatchingFailedChecks([&] {
      return google::protobuf::util::JsonStringToMessage(
          google::protobuf::StringPiece(data.data(), data.size()), message, options);
    });
    if (!status.ok()) {
      message->Clear();
      return absl::InvalidArgumentError(absl::StrCat("malformed ", message->GetTypeName(),
                                                     " JSON: ", status.message().ToString()));
    }
    return absl::OkStatus();
  }
};

}  // namespace

const Codec& ProtobufCodec() {
  static const ProtobufBinaryCodec codec;
  return codec;
}

const Codec& JsonCodec() {
  static const ProtoJsonCodec codec;
  return codec;
}

const Codec* FindCodec(std::string_view content_type) {
  absl::string_view mime =
      absl::StripAsciiWhitespace(internal::ToAbsl(content_type.substr(0, content_type.find(';'))));
  if (mime.empty() || absl::EqualsIgnoreCase(mime, internal::ToAbsl(kProtobufContentType))) {
    return &ProtobufCodec();
  }
  if (absl::EqualsIgnoreCase(mime, internal::ToAbsl(kJsonContentType))) return &JsonCodec();
  return nullptr;
}

}  // namespace micro
