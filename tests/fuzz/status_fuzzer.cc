// The error/status encoding of replies, stream ends and cancels
// (docs/PROTOCOL.md, "Reply", "Status codes"): what a handler returns, as the
// caller reads it back. Input lines: the status code (any integer), the
// content type, then `key: value` response metadata up to an empty line; the
// rest is the status message (line breaks included).
//
// Properties: encoding fails (INTERNAL) exactly when some metadata entry is
// invalid; otherwise the caller reads back the code (UNKNOWN for a code
// outside 0-16), the message with line breaks as spaces, cut to at most 4096
// bytes and still UTF-8 if it was, the metadata unchanged; a plain ADR-32
// client reading only Nats-Service-Error-Code gets the table's code.
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "fuzz_check.h"
#include "micro/codec.h"
#include "micro/context.h"
#include "protocol/wire.h"
#include "util/strings.h"

namespace micro::fuzz {
namespace {

// Length of the UTF-8 sequence starting at text[i], 0 if none is valid there.
size_t Utf8SequenceLength(std::string_view text, size_t i) {
  unsigned char c = text[i];
  size_t length = c < 0x80           ? 1
                  : (c >> 5) == 0x6  ? 2
                  : (c >> 4) == 0xE  ? 3
                  : (c >> 3) == 0x1E ? 4
                                     : 0;
  if (length == 0 || i + length > text.size()) return 0;
  for (size_t k = 1; k < length; ++k) {
    if ((static_cast<unsigned char>(text[i + k]) >> 6) != 0x2) return 0;
  }
  return length;
}

bool IsUtf8(std::string_view text) {
  for (size_t i = 0; i < text.size();) {
    size_t length = Utf8SequenceLength(text, i);
    if (length == 0) return false;
    i += length;
  }
  return true;
}

// The codes whose HTTP code maps back to them alone (docs/PROTOCOL.md table).
bool HttpRoundTrips(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kOutOfRange:
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kInternal:
    case absl::StatusCode::kDataLoss:
      return false;
    default:
      return true;
  }
}

void Check(int code_number, const std::string& content_type, const Metadata& metadata,
           const std::string& message) {
  const absl::Status sent(static_cast<absl::StatusCode>(code_number), message);
  Headers headers;
  absl::Status encoded = protocol::EncodeReplyHeaders(sent, content_type, metadata, &headers);
  bool metadata_valid = true;
  for (const auto& [key, value] : metadata) {
    metadata_valid = metadata_valid && ValidateMetadata(key, value).ok();
  }
  if (!metadata_valid) {
    FUZZ_CHECK(encoded.code() == absl::StatusCode::kInternal, encoded.ToString());
    return;
  }
  FUZZ_CHECK(encoded.ok(), encoded.ToString());
  FUZZ_CHECK(protocol::ExtractMetadata(headers) == metadata, "response metadata changed");
  if (!content_type.empty() && content_type != kProtobufContentType) {
    FUZZ_CHECK(protocol::HeaderValue(headers, protocol::kContentTypeHeader) == content_type,
               content_type);
  }

  absl::Status read = protocol::DecodeReplyStatus(headers);
  if (sent.ok()) {
    FUZZ_CHECK(read.ok(), read.ToString());
    return;
  }
  bool known = code_number >= 1 && code_number <= 16;
  FUZZ_CHECK(read.code() == (known ? sent.code() : absl::StatusCode::kUnknown),
             absl::StrCat("sent ", code_number, ", read ", read.ToString()));
  std::string_view wire = protocol::HeaderValue(headers, protocol::kServiceErrorHeader);
  FUZZ_CHECK(wire.size() <= protocol::kMaxStatusMessageBytes, absl::StrCat(wire.size()));
  FUZZ_CHECK(wire.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos,
             "a line break survived");
  FUZZ_CHECK(wire.size() <= message.size(), "the message grew on the wire");
  for (size_t i = 0; i < wire.size(); ++i) {
    char original = message[i];
    bool replaced = original == '\r' || original == '\n' || original == '\0';
    FUZZ_CHECK(wire[i] == (replaced ? ' ' : original), absl::StrCat("byte ", i, " changed"));
  }
  if (message.size() <= protocol::kMaxStatusMessageBytes) {
    FUZZ_CHECK(wire.size() == message.size(), "a short message was cut");
  }
  if (IsUtf8(message)) FUZZ_CHECK(IsUtf8(wire), "cutting the message broke its UTF-8");
  if (known) {
    FUZZ_CHECK(internal::FromAbsl(read.message()) == wire, std::string(read.message()));
  }

  // A plain ADR-32 client sees only the Nats-Service-* pair.
  int http = 0;
  FUZZ_CHECK(absl::SimpleAtoi(internal::ToAbsl(protocol::HeaderValue(
                                  headers, protocol::kServiceErrorCodeHeader)),
                              &http),
             "Nats-Service-Error-Code is not a number");
  FUZZ_CHECK(http == protocol::HttpCodeFromStatus(sent.code()), absl::StrCat(http));
  Headers plain = headers;
  plain.erase(protocol::kStatusHeader);
  absl::StatusCode plain_code = protocol::DecodeReplyStatus(plain).code();
  FUZZ_CHECK(plain_code == protocol::StatusFromHttpCode(http), absl::StrCat(http));
  if (known && HttpRoundTrips(sent.code())) {
    FUZZ_CHECK(plain_code == sent.code(), absl::StrCat("HTTP ", http, " for ", code_number));
  }
}

}  // namespace
}  // namespace micro::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text = micro::fuzz::AsText(data, size);
  std::string_view head = text;
  std::string message;
  if (size_t blank = text.find("\n\n"); blank != std::string_view::npos) {
    head = text.substr(0, blank);
    message = std::string(text.substr(blank + 2));
  }
  std::vector<std::string_view> lines = micro::fuzz::Lines(head);
  int code = 0;
  if (!lines.empty() && !absl::SimpleAtoi(micro::internal::ToAbsl(lines[0]), &code)) {
    return 0;
  }
  std::string content_type = lines.size() > 1 ? std::string(lines[1]) : "";
  micro::Metadata metadata;
  for (size_t i = 2; i < lines.size(); ++i) metadata.insert(micro::fuzz::HeaderLine(lines[i]));
  micro::fuzz::Check(code, content_type, metadata, message);
  return 0;
}
