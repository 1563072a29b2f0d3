// The unary call protocol of docs/PROTOCOL.md: how a call's deadline,
// metadata and final status are written into NATS headers and read back.
// Client and server both go through these functions, so the two ends cannot
// disagree about the format.
#ifndef MICRO_RUNTIME_PROTOCOL_WIRE_H_
#define MICRO_RUNTIME_PROTOCOL_WIRE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "micro/context.h"
#include "micro/transport.h"

namespace micro::protocol {

inline constexpr char kContentTypeHeader[] = "Content-Type";
inline constexpr char kTimeoutHeader[] = "Micro-Timeout";
inline constexpr char kStatusHeader[] = "Micro-Status";
// The ADR-32 (NATS services API) error headers, so plain NATS tools see errors.
inline constexpr char kServiceErrorHeader[] = "Nats-Service-Error";
inline constexpr char kServiceErrorCodeHeader[] = "Nats-Service-Error-Code";
// On an error reply: the server refused the call before any handler saw it.
inline constexpr char kUnprocessedHeader[] = "Micro-Unprocessed";
// On an error reply: the status's payloads (docs/PROTOCOL.md, "Status codes").
inline constexpr char kStatusDetailsHeader[] = "Micro-Status-Details";
inline constexpr size_t kMaxStatusDetailsBytes = 8192;

// absl::Status payload keys micro/errors.h reads; never sent as details.
inline constexpr char kRemoteMarker[] = "type.micro.dev/micro.Remote";
inline constexpr char kUnprocessedMarker[] = "type.micro.dev/micro.Unprocessed";
// Marks a non-OK status as provably never handed to a handler.
void MarkUnprocessed(absl::Status* status);

// Stream frames (docs/PROTOCOL.md, "Streams").
inline constexpr char kFrameHeader[] = "Micro-Frame";
inline constexpr char kSeqHeader[] = "Micro-Seq";
inline constexpr char kAckHeader[] = "Micro-Ack";
inline constexpr char kWindowHeader[] = "Micro-Window";
inline constexpr char kWindowBytesHeader[] = "Micro-Window-Bytes";
inline constexpr char kCountHeader[] = "Micro-Count";
inline constexpr char kLastHeader[] = "Micro-Last";
inline constexpr char kHeartbeatHeader[] = "Micro-Heartbeat";

enum class FrameKind { kNone, kOpen, kAccept, kData, kAck, kClose, kEnd, kCancel, kPing, kUnknown };

// The kind named by `Micro-Frame`: kNone without the header (a unary request
// or reply), kUnknown for a name this version does not know.
FrameKind ParseFrameKind(const Headers& headers);
std::string_view FrameKindName(FrameKind kind);

// The non-negative decimal integer in header `key`, or nullopt when the
// header is absent or malformed.
std::optional<uint64_t> UintHeader(const Headers& headers, std::string_view key);

// The interval a `Micro-Heartbeat` header announces, at most
// kMaxHeartbeat (a peer's larger value would overflow a Duration's
// arithmetic); nullopt if it is absent, zero or malformed.
inline constexpr absl::Duration kMaxHeartbeat = absl::Hours(1);
std::optional<absl::Duration> HeartbeatHeader(const Headers& headers);

// The body of a data frame carrying `Micro-Count` messages: each message's
// length as 4 big-endian bytes, then the message.
inline constexpr size_t kBatchRecordOverhead = 4;
void AppendBatchRecord(std::string_view message, std::string* body);
// Takes the first record off `body`; nullopt if it is truncated.
std::optional<std::string_view> ReadBatchRecord(std::string_view* body);
// Splits such a body into exactly `count` messages appended to `*messages`.
// DATA_LOSS, naming the problem, if the body does not hold exactly that.
absl::Status SplitBatch(std::string_view body, uint64_t count, std::vector<std::string>* messages);

// Status messages longer than this are truncated on the wire.
inline constexpr size_t kMaxStatusMessageBytes = 4096;

// Adds `Content-Type: <content_type>`, except for protobuf, which is what
// an absent Content-Type means: a protobuf message without metadata then
// needs no headers, and nats.c's header encoding and parsing, which cost
// more than the rest of a call's handling (docs/PERFORMANCE.md), is skipped.
void AddContentType(std::string_view content_type, Headers* headers);

// Adds the request headers: content type (AddContentType), the time left
// until `deadline` (none when it is infinite) and `metadata`. INVALID_ARGUMENT for invalid
// metadata, DEADLINE_EXCEEDED when `deadline` is not after `now`.
absl::Status EncodeRequestHeaders(std::string_view content_type, absl::Time deadline,
                                  absl::Time now, const Metadata& metadata, Headers* headers);

struct RequestHeaders {
  std::string content_type;  // Empty when the request carries none.
  absl::Time deadline = absl::InfiniteFuture();
  Metadata metadata;
};

// Reads what EncodeRequestHeaders wrote. INVALID_ARGUMENT for a malformed
// timeout.
absl::StatusOr<RequestHeaders> DecodeRequestHeaders(const Headers& headers, absl::Time now);

// Adds the reply headers: `content_type` (AddContentType), the status
// (nothing for OK; its payloads as details when they fit
// kMaxStatusDetailsBytes) and `metadata`. INTERNAL, naming the entry, if
// `metadata` is invalid.
absl::Status EncodeReplyHeaders(const absl::Status& status, std::string_view content_type,
                                const Metadata& metadata, Headers* headers);

// The status a reply carries: `Micro-Status`, else an ADR-32 error code
// mapped from HTTP, else OK. A non-OK one is marked remote, carries the
// details of `Micro-Status-Details` as payloads, and is marked unprocessed
// if `Micro-Unprocessed` says so.
absl::Status DecodeReplyStatus(const Headers& headers);

// True for header keys the protocol owns (`Content-Type`, `Micro-*`, `Nats-*`,
// in any letter case); such keys are never user metadata.
bool IsReservedKey(std::string_view key);

// The value of the first header named `key`, or empty.
std::string_view HeaderValue(const Headers& headers, std::string_view key);

// The bytes of `metadata`'s keys and values together.
size_t MetadataBytes(const Metadata& metadata);

// The user metadata among `headers`: every header that is not reserved by
// the protocol, with its key lower-cased.
Metadata ExtractMetadata(const Headers& headers);

// The HTTP-like code ADR-32 carries in Nats-Service-Error-Code, and back.
int HttpCodeFromStatus(absl::StatusCode code);
absl::StatusCode StatusFromHttpCode(int http_code);

}  // namespace micro::protocol

#endif  // MICRO_RUNTIME_PROTOCOL_WIRE_H_
