// The headers of an incoming request, reply or stream frame (docs/PROTOCOL.md,
// "Request", "Reply", "Metadata", "Frames"), as any NATS client may send them.
// Input: one `Key: value` header per line.
//
// Properties: decoding never fails with anything but INVALID_ARGUMENT; a
// decoded deadline lies ahead; metadata holds exactly the unreserved headers,
// lower-cased; valid metadata survives a re-encoding unchanged; the status is
// one of the 17 codes and OK without status headers; decimal header values
// read back as themselves.
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "fuzz_check.h"
#include "micro/codec.h"
#include "micro/context.h"
#include "protocol/wire.h"
#include "util/strings.h"

namespace micro::fuzz {
namespace {

const absl::Time kNow = absl::FromUnixSeconds(1'700'000'000);

bool AllDigits(const std::string& text) {
  if (text.empty() || text.size() > 19) return false;  // 19 digits always fit in uint64.
  for (char c : text) {
    if (!absl::ascii_isdigit(c)) return false;
  }
  return true;
}

void CheckRequestHeaders(const Headers& headers) {
  absl::StatusOr<protocol::RequestHeaders> request = protocol::DecodeRequestHeaders(headers, kNow);
  if (!request.ok()) {
    FUZZ_CHECK(request.status().code() == absl::StatusCode::kInvalidArgument,
               request.status().ToString());
    FUZZ_CHECK(headers.count(protocol::kTimeoutHeader) > 0, request.status().ToString());
    return;
  }
  FUZZ_CHECK(request->deadline > kNow, "a decoded deadline must lie ahead");
  if (headers.count(protocol::kTimeoutHeader) == 0) {
    FUZZ_CHECK(request->deadline == absl::InfiniteFuture(), "no timeout, yet a deadline");
  }
  FUZZ_CHECK(request->content_type == protocol::HeaderValue(headers, protocol::kContentTypeHeader),
             request->content_type);
  FindCodec(request->content_type);  // Any text: a codec or nullptr.

  size_t unreserved = 0;
  for (const auto& [key, value] : headers) unreserved += !protocol::IsReservedKey(key);
  FUZZ_CHECK(request->metadata.size() == unreserved, "metadata lost or invented");
  bool all_valid = true;
  for (const auto& [key, value] : request->metadata) {
    FUZZ_CHECK(!protocol::IsReservedKey(key), key);
    FUZZ_CHECK(key == absl::AsciiStrToLower(key), key);
    all_valid = all_valid && ValidateMetadata(key, value).ok();
  }
  if (!all_valid) return;
  // What a server reads, a client can send again (a proxy forwarding a call).
  Headers again;
  absl::Status encoded = protocol::EncodeRequestHeaders(request->content_type, request->deadline,
                                                        kNow, request->metadata, &again);
  FUZZ_CHECK(encoded.ok(), encoded.ToString());
  absl::StatusOr<protocol::RequestHeaders> round_trip = protocol::DecodeRequestHeaders(again, kNow);
  FUZZ_CHECK(round_trip.ok(), round_trip.status().ToString());
  FUZZ_CHECK(round_trip->metadata == request->metadata, "metadata changed in a round trip");
  FUZZ_CHECK(round_trip->deadline == request->deadline, "deadline changed in a round trip");
  // Protobuf, the default, travels as no Content-Type at all.
  FUZZ_CHECK(
      round_trip->content_type ==
          (request->content_type == kProtobufContentType ? std::string() : request->content_type),
      request->content_type);
}

void CheckReplyStatus(const Headers& headers) {
  absl::Status status = protocol::DecodeReplyStatus(headers);
  int code = static_cast<int>(status.code());
  FUZZ_CHECK(code >= 0 && code <= 16, absl::StrCat("code ", code));
  if (headers.count(protocol::kStatusHeader) == 0 &&
      headers.count(protocol::kServiceErrorCodeHeader) == 0) {
    FUZZ_CHECK(status.ok(), status.ToString());
  }
}

void CheckFrameHeaders(const Headers& headers) {
  protocol::FrameKind kind = protocol::ParseFrameKind(headers);
  auto frame = headers.find(protocol::kFrameHeader);
  FUZZ_CHECK((kind == protocol::FrameKind::kNone) == (frame == headers.end()), "frame kind");
  if (kind != protocol::FrameKind::kNone && kind != protocol::FrameKind::kUnknown) {
    FUZZ_CHECK(protocol::FrameKindName(kind) == frame->second, frame->second);
  }
  for (const auto& [key, value] : headers) {
    std::optional<uint64_t> number = protocol::UintHeader(headers, key);
    const std::string& first = headers.find(key)->second;  // UintHeader reads the first.
    if (AllDigits(first)) {
      uint64_t expected = 0;
      if (absl::SimpleAtoi(first, &expected)) {
        FUZZ_CHECK(number == expected, absl::StrCat(key, ": ", first));
      }
    }
    if (number.has_value())
      FUZZ_CHECK(!first.empty() && first.find('-') == std::string::npos, first);
  }
}

}  // namespace
}  // namespace micro::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  micro::Headers headers;
  for (std::string_view line : micro::fuzz::Lines(micro::fuzz::AsText(data, size))) {
    headers.insert(micro::fuzz::HeaderLine(line));
  }
  micro::fuzz::CheckRequestHeaders(headers);
  micro::fuzz::CheckReplyStatus(headers);
  micro::fuzz::CheckFrameHeaders(headers);
  return 0;
}
