#include "protocol/wire.h"

#include <algorithm>
#include <cstdint>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/cord.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "micro/codec.h"
#include "util/strings.h"

namespace micro::protocol {

using internal::FromAbsl;
using internal::ToAbsl;
namespace {

// Header values cannot hold line breaks; anything else printable survives.
// A long message is cut before the character that would cross the limit, so
// that UTF-8 stays UTF-8 (the fuzzer found the cut splitting characters).
std::string SanitizeHeaderValue(std::string_view text) {
  size_t cut = std::min(text.size(), kMaxStatusMessageBytes);
  auto continues = [&](size_t i) { return (static_cast<unsigned char>(text[i]) & 0xC0) == 0x80; };
  // A UTF-8 character has at most 3 continuation bytes.
  for (int back = 0; back < 3 && cut < text.size() && cut > 0 && continues(cut); ++back) --cut;
  std::string out(text.substr(0, cut));
  for (char& c : out) {
    if (c == '\r' || c == '\n' || c == '\0') c = ' ';
  }
  return out;
}

absl::Status AddMetadata(const Metadata& metadata, Headers* headers) {
  for (const auto& [key, value] : metadata) {
    if (absl::Status status = ValidateMetadata(key, value); !status.ok()) return status;
    headers->emplace(key, value);
  }
  return absl::OkStatus();
}

}  // namespace

void AppendBatchRecord(std::string_view message, std::string* body) {
  const auto size = static_cast<uint32_t>(message.size());
  const char length[kBatchRecordOverhead] = {static_cast<char>(size >> 24),
                                             static_cast<char>(size >> 16),
                                             static_cast<char>(size >> 8), static_cast<char>(size)};
  body->append(length, kBatchRecordOverhead);
  body->append(message);
}

std::optional<std::string_view> ReadBatchRecord(std::string_view* body) {
  if (body->size() < kBatchRecordOverhead) return std::nullopt;
  const auto* bytes = reinterpret_cast<const unsigned char*>(body->data());
  size_t size = (size_t{bytes[0]} << 24) | (size_t{bytes[1]} << 16) | (size_t{bytes[2]} << 8) |
                size_t{bytes[3]};
  if (size > body->size() - kBatchRecordOverhead) return std::nullopt;
  std::string_view record = body->substr(kBatchRecordOverhead, size);
  body->remove_prefix(kBatchRecordOverhead + size);
  return record;
}

absl::Status SplitBatch(std::string_view body, uint64_t count, std::vector<std::string>* messages) {
  // Every record takes at least its length prefix: a larger count is a lie,
  // and checking it first bounds the reservation below.
  if (count == 0 || count > body.size() / kBatchRecordOverhead) {
    return absl::DataLossError(absl::StrCat("malformed data frame: ", count,
                                            " messages cannot fit ", body.size(), " bytes"));
  }
  messages->reserve(messages->size() + count);
  for (uint64_t i = 0; i < count; ++i) {
    std::optional<std::string_view> message = ReadBatchRecord(&body);
    if (!message.has_value()) {
      return absl::DataLossError(
          absl::StrCat("malformed data frame: message ", i + 1, " of ", count, " is truncated"));
    }
    messages->emplace_back(*message);
  }
  if (!body.empty()) {
    return absl::DataLossError(absl::StrCat("malformed data frame: ", body.size(),
                                            " bytes after its ", count, " messages"));
  }
  return absl::OkStatus();
}

void AddContentType(std::string_view content_type, Headers* headers) {
  if (content_type.empty() || content_type == kProtobufContentType) return;
  headers->emplace(kContentTypeHeader, content_type);
}

absl::Status EncodeRequestHeaders(std::string_view content_type, absl::Time deadline,
                                  absl::Time now, const Metadata& metadata, Headers* headers) {
  if (absl::Status status = AddMetadata(metadata, headers); !status.ok()) return status;
  AddContentType(content_type, headers);
  if (deadline != absl::InfiniteFuture()) {
    int64_t nanos = absl::ToInt64Nanoseconds(deadline - now);
    if (nanos <= 0) return absl::DeadlineExceededError("deadline passed before the call was sent");
    headers->emplace(kTimeoutHeader, absl::StrCat(nanos));
  }
  return absl::OkStatus();
}

absl::StatusOr<RequestHeaders> DecodeRequestHeaders(const Headers& headers, absl::Time now) {
  RequestHeaders request;
  request.content_type = std::string(HeaderValue(headers, kContentTypeHeader));
  if (auto it = headers.find(kTimeoutHeader); it != headers.end()) {
    int64_t nanos = 0;
    if (!absl::SimpleAtoi(it->second, &nanos) || nanos <= 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("malformed ", kTimeoutHeader, " header '", it->second,
                       "': expected a positive number of nanoseconds"));
    }
    request.deadline = now + absl::Nanoseconds(nanos);
  }
  request.metadata = ExtractMetadata(headers);
  return request;
}

namespace {

absl::Status DecodeReplyCodeAndMessage(const Headers& headers) {
  if (headers.empty()) return absl::OkStatus();  // A plain reply: most of them.
  std::string message(HeaderValue(headers, kServiceErrorHeader));
  if (auto it = headers.find(kStatusHeader); it != headers.end()) {
    int code = 0;
    if (!absl::SimpleAtoi(it->second, &code) || code < 0 || code > 16) {
      return absl::UnknownError(absl::StrCat("reply carries malformed ", kStatusHeader, " '",
                                             it->second, "': ", message));
    }
    return absl::Status(static_cast<absl::StatusCode>(code), message);
  }
  if (auto it = headers.find(kServiceErrorCodeHeader); it != headers.end()) {
    int http_code = 0;
    if (!absl::SimpleAtoi(it->second, &http_code)) http_code = 500;
    return absl::Status(StatusFromHttpCode(http_code), message);
  }
  return absl::OkStatus();
}

bool IsMarker(absl::string_view type_url) {
  return type_url == kRemoteMarker || type_url == kUnprocessedMarker;
}

// Micro-Status-Details: base64 of batch records, type URL then value.
std::string EncodeDetails(const absl::Status& status) {
  std::string records;
  status.ForEachPayload([&](absl::string_view type_url, const absl::Cord& value) {
    if (IsMarker(type_url)) return;
    AppendBatchRecord(FromAbsl(type_url), &records);
    AppendBatchRecord(std::string(value), &records);
  });
  return records.empty() ? std::string() : absl::Base64Escape(records);
}

// Malformed details are dropped: the code and message still hold.
void DecodeDetails(std::string_view encoded, absl::Status* status) {
  std::string decoded;
  if (encoded.empty() || !absl::Base64Unescape(ToAbsl(encoded), &decoded)) return;
  std::string_view records = decoded;
  while (!records.empty()) {
    std::optional<std::string_view> type_url = ReadBatchRecord(&records);
    std::optional<std::string_view> value =
        type_url.has_value() ? ReadBatchRecord(&records) : std::nullopt;
    if (!value.has_value()) return;
    if (!IsMarker(ToAbsl(*type_url))) {
      status->SetPayload(ToAbsl(*type_url), absl::Cord(ToAbsl(*value)));
    }
  }
}

}  // namespace

absl::Status EncodeReplyHeaders(const absl::Status& status, std::string_view content_type,
                                const Metadata& metadata, Headers* headers) {
  if (absl::Status bad = AddMetadata(metadata, headers); !bad.ok()) {
    return absl::InternalError(
        absl::StrCat("handler set invalid response metadata: ", bad.message()));
  }
  AddContentType(content_type, headers);
  if (!status.ok()) {
    headers->emplace(kStatusHeader, absl::StrCat(static_cast<int>(status.code())));
    headers->emplace(kServiceErrorCodeHeader, absl::StrCat(HttpCodeFromStatus(status.code())));
    headers->emplace(kServiceErrorHeader, SanitizeHeaderValue(FromAbsl(status.message())));
    if (std::string details = EncodeDetails(status);
        !details.empty() && details.size() <= kMaxStatusDetailsBytes) {
      headers->emplace(kStatusDetailsHeader, std::move(details));
    }
  }
  return absl::OkStatus();
}

absl::Status DecodeReplyStatus(const Headers& headers) {
  absl::Status status = DecodeReplyCodeAndMessage(headers);
  if (status.ok()) return status;
  DecodeDetails(HeaderValue(headers, kStatusDetailsHeader), &status);
  status.SetPayload(kRemoteMarker, absl::Cord());
  if (HeaderValue(headers, kUnprocessedHeader) == "true") MarkUnprocessed(&status);
  return status;
}

void MarkUnprocessed(absl::Status* status) {
  if (!status->ok()) status->SetPayload(kUnprocessedMarker, absl::Cord());
}

FrameKind ParseFrameKind(const Headers& headers) {
  auto it = headers.find(kFrameHeader);
  if (it == headers.end()) return FrameKind::kNone;
  for (FrameKind kind :
       {FrameKind::kOpen, FrameKind::kAccept, FrameKind::kData, FrameKind::kAck, FrameKind::kClose,
        FrameKind::kEnd, FrameKind::kCancel, FrameKind::kPing}) {
    if (it->second == FrameKindName(kind)) return kind;
  }
  return FrameKind::kUnknown;
}

std::string_view FrameKindName(FrameKind kind) {
  switch (kind) {
    case FrameKind::kOpen:
      return "open";
    case FrameKind::kAccept:
      return "accept";
    case FrameKind::kData:
      return "data";
    case FrameKind::kAck:
      return "ack";
    case FrameKind::kClose:
      return "close";
    case FrameKind::kEnd:
      return "end";
    case FrameKind::kCancel:
      return "cancel";
    case FrameKind::kPing:
      return "ping";
    default:
      return "";
  }
}

std::optional<uint64_t> UintHeader(const Headers& headers, std::string_view key) {
  auto it = headers.find(std::string(key));
  uint64_t value = 0;
  if (it == headers.end() || !absl::SimpleAtoi(it->second, &value)) return std::nullopt;
  if (!it->second.empty() && it->second[0] == '-') return std::nullopt;
  return value;
}

std::optional<absl::Duration> HeartbeatHeader(const Headers& headers) {
  std::optional<uint64_t> nanos = UintHeader(headers, kHeartbeatHeader);
  if (!nanos.has_value() || *nanos == 0) return std::nullopt;
  const auto max_nanos = static_cast<uint64_t>(absl::ToInt64Nanoseconds(kMaxHeartbeat));
  return absl::Nanoseconds(static_cast<int64_t>(std::min(*nanos, max_nanos)));
}

bool IsReservedKey(std::string_view key) {
  absl::string_view k = ToAbsl(key);
  return absl::StartsWithIgnoreCase(k, "micro-") || absl::StartsWithIgnoreCase(k, "nats-") ||
         absl::EqualsIgnoreCase(k, kContentTypeHeader);
}

std::string_view HeaderValue(const Headers& headers, std::string_view key) {
  if (headers.empty()) return {};  // Most messages: no key string to build.
  auto it = headers.find(std::string(key));
  return it == headers.end() ? std::string_view() : std::string_view(it->second);
}

size_t MetadataBytes(const Metadata& metadata) {
  size_t bytes = 0;
  for (const auto& [key, value] : metadata) bytes += key.size() + value.size();
  return bytes;
}

Metadata ExtractMetadata(const Headers& headers) {
  Metadata metadata;
  for (const auto& [key, value] : headers) {
    if (!IsReservedKey(key)) metadata.emplace(absl::AsciiStrToLower(key), value);
  }
  return metadata;
}

int HttpCodeFromStatus(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kOk:
      return 200;
    case absl::StatusCode::kCancelled:
      return 499;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kOutOfRange:
      return 400;
    case absl::StatusCode::kUnauthenticated:
      return 401;
    case absl::StatusCode::kPermissionDenied:
      return 403;
    case absl::StatusCode::kNotFound:
      return 404;
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kAborted:
      return 409;
    case absl::StatusCode::kResourceExhausted:
      return 429;
    case absl::StatusCode::kUnimplemented:
      return 501;
    case absl::StatusCode::kUnavailable:
      return 503;
    case absl::StatusCode::kDeadlineExceeded:
      return 504;
    default:
      return 500;  // UNKNOWN, INTERNAL, DATA_LOSS.
  }
}

absl::StatusCode StatusFromHttpCode(int http_code) {
  switch (http_code) {
    case 400:
      return absl::StatusCode::kInvalidArgument;
    case 401:
      return absl::StatusCode::kUnauthenticated;
    case 403:
      return absl::StatusCode::kPermissionDenied;
    case 404:
      return absl::StatusCode::kNotFound;
    case 408:
    case 504:
      return absl::StatusCode::kDeadlineExceeded;
    case 409:
      return absl::StatusCode::kAborted;
    case 429:
      return absl::StatusCode::kResourceExhausted;
    case 499:
      return absl::StatusCode::kCancelled;
    case 501:
      return absl::StatusCode::kUnimplemented;
    case 503:
      return absl::StatusCode::kUnavailable;
    default:
      return absl::StatusCode::kUnknown;
  }
}

}  // namespace micro::protocol
