// Message bodies from the network, in either codec (docs/PROTOCOL.md,
// "Request": protobuf binary or proto3 JSON). Input: the first line is the
// Content-Type, the rest the body, decoded as a message with every kind of
// field (fuzz.proto).
//
// Properties: a content type names a codec or none; decoding fails only with
// INVALID_ARGUMENT; what decodes encodes again with the same codec, and
// decodes back to an equal message (NaN equal to NaN; for JSON, a field set
// to its default equal to an unset one, since the JSON printer leaves out a
// -0.0 like any default value).
#include <google/protobuf/util/field_comparator.h>
#include <google/protobuf/util/message_differencer.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz.pb.h"
#include "fuzz_check.h"
#include "micro/codec.h"

namespace micro::fuzz {
namespace {

bool Equal(const google::protobuf::Message& a, const google::protobuf::Message& b, bool json) {
  using google::protobuf::util::MessageDifferencer;
  google::protobuf::util::DefaultFieldComparator numbers;
  numbers.set_treat_nan_as_equal(true);
  MessageDifferencer differencer;
  if (json) differencer.set_message_field_comparison(MessageDifferencer::EQUIVALENT);
  differencer.set_field_comparator(&numbers);
  return differencer.Compare(a, b);
}

void Check(std::string_view content_type, std::string_view body) {
  const Codec* codec = FindCodec(content_type);
  if (codec == nullptr) return;
  Everything message;
  absl::Status decoded = codec->Decode(body, &message);
  if (!decoded.ok()) {
    FUZZ_CHECK(decoded.code() == absl::StatusCode::kInvalidArgument, decoded.ToString());
    return;
  }
  std::string encoded;
  absl::Status status = codec->Encode(message, &encoded);
  FUZZ_CHECK(status.ok(), status.ToString());
  Everything again;
  status = codec->Decode(encoded, &again);
  FUZZ_CHECK(status.ok(), status.ToString() + " decoding " + encoded);
  FUZZ_CHECK(Equal(again, message, codec == &JsonCodec()),
             "changed in a round trip: " + message.ShortDebugString() + " became " +
                 again.ShortDebugString());
}

}  // namespace
}  // namespace micro::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text = micro::fuzz::AsText(data, size);
  size_t newline = text.find('\n');
  if (newline == std::string_view::npos) return 0;
  micro::fuzz::Check(text.substr(0, newline), text.substr(newline + 1));
  return 0;
}
