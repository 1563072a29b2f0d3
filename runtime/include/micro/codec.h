// Codecs turn protobuf messages into message bodies and back. The codec of a
// call is named by the NATS `Content-Type` header (see docs/PROTOCOL.md).
#ifndef MICRO_CODEC_H_
#define MICRO_CODEC_H_

#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace google::protobuf {
class Message;
}  // namespace google::protobuf

namespace micro {

inline constexpr std::string_view kProtobufContentType = "application/protobuf";
inline constexpr std::string_view kJsonContentType = "application/json";

// A stateless, thread-safe encoding of protobuf messages.
class Codec {
 public:
  virtual ~Codec() = default;

  // The MIME type carried in the `Content-Type` header.
  virtual std::string_view ContentType() const = 0;

  // Replaces `*out` with the encoding of `message`. INTERNAL if `message`
  // cannot be encoded (for example a proto2 message missing a required field).
  virtual absl::Status Encode(const google::protobuf::Message& message, std::string* out) const = 0;

  // Replaces the contents of `*message` with the decoding of `data`.
  // INVALID_ARGUMENT, naming the message type, when `data` is not a valid
  // encoding of that type.
  virtual absl::Status Decode(std::string_view data, google::protobuf::Message* message) const = 0;
};

// Protobuf binary encoding, the default (`application/protobuf`).
const Codec& ProtobufCodec();

// Canonical proto3 JSON mapping (`application/json`). Unknown fields are an
// error, so a misspelt field name is reported rather than silently dropped.
const Codec& JsonCodec();

// The built-in codec for `content_type`, ignoring parameters such as
// `; charset=utf-8` and letter case; an empty content type means protobuf.
// nullptr when no codec handles it.
const Codec* FindCodec(std::string_view content_type);

}  // namespace micro

#endif  // MICRO_CODEC_H_
