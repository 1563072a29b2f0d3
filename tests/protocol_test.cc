// The header encoding of docs/PROTOCOL.md, as pure functions.
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "protocol/wire.h"
#include "support/remote_status.h"

namespace micro::protocol {
namespace {

const absl::Time kNow = absl::FromUnixSeconds(1'700'000'000);

TEST(RequestHeaders, RoundTripDeadlineAndMetadata) {
  Headers headers;
  Metadata metadata{{"authorization", "Bearer x"}, {"trace-id", "abc"}};
  ASSERT_TRUE(EncodeRequestHeaders("application/json", kNow + absl::Milliseconds(1500), kNow,
                                   metadata, &headers)
                  .ok());
  EXPECT_EQ(HeaderValue(headers, "Micro-Timeout"), "1500000000");
  EXPECT_EQ(HeaderValue(headers, "Content-Type"), "application/json");

  absl::StatusOr<RequestHeaders> decoded = DecodeRequestHeaders(headers, kNow);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->content_type, "application/json");
  EXPECT_EQ(decoded->deadline, kNow + absl::Milliseconds(1500));
  EXPECT_EQ(decoded->metadata, metadata);
}

TEST(RequestHeaders, NoDeadlineSendsNoTimeout) {
  Headers headers;
  ASSERT_TRUE(
      EncodeRequestHeaders("application/protobuf", absl::InfiniteFuture(), kNow, {}, &headers)
          .ok());
  EXPECT_EQ(headers.count("Micro-Timeout"), 0u);
  EXPECT_EQ(DecodeRequestHeaders(headers, kNow)->deadline, absl::InfiniteFuture());
}

TEST(RequestHeaders, ProtobufGoesWithoutContentType) {
  Headers headers;
  ASSERT_TRUE(
      EncodeRequestHeaders("application/protobuf", kNow + absl::Seconds(1), kNow, {}, &headers)
          .ok());
  EXPECT_EQ(headers.count("Content-Type"), 0u);
  EXPECT_EQ(headers.size(), 1u) << "only Micro-Timeout";
  EXPECT_EQ(DecodeRequestHeaders(headers, kNow)->content_type, "");
}

TEST(RequestHeaders, PastDeadlineIsNotSent) {
  Headers headers;
  EXPECT_EQ(EncodeRequestHeaders("application/protobuf", kNow, kNow, {}, &headers).code(),
            absl::StatusCode::kDeadlineExceeded);
}

TEST(RequestHeaders, MalformedTimeoutIsInvalidArgument) {
  for (const char* bad : {"", "-5", "0", "12abc", "1.5", "99999999999999999999999"}) {
    Headers headers{{"Micro-Timeout", bad}};
    EXPECT_EQ(DecodeRequestHeaders(headers, kNow).status().code(),
              absl::StatusCode::kInvalidArgument)
        << "timeout '" << bad << "'";
  }
}

TEST(RequestHeaders, InvalidMetadataIsRejectedBeforeSending) {
  for (auto [key, value] :
       std::vector<std::pair<std::string, std::string>>{{"Upper", "v"},
                                                        {"micro-status", "0"},
                                                        {"nats-service-error", "x"},
                                                        {"content-type", "x"},
                                                        {"sp ace", "v"},
                                                        {"", "v"},
                                                        {"ok", "line\nbreak"}}) {
    Headers headers;
    absl::Status status = EncodeRequestHeaders("application/protobuf", absl::InfiniteFuture(), kNow,
                                               Metadata{{key, value}}, &headers);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << key;
  }
}

TEST(ReplyHeaders, EveryStatusCodeRoundTrips) {
  for (int code = 0; code <= 16; ++code) {
    absl::Status sent(static_cast<absl::StatusCode>(code), code == 0 ? "" : "why it failed");
    Headers headers;
    ASSERT_TRUE(EncodeReplyHeaders(sent, "application/protobuf", {}, &headers).ok());
    if (code == 0) {
      EXPECT_TRUE(DecodeReplyStatus(headers).ok());
    } else {
      EXPECT_TRUE(testing::IsRemote(DecodeReplyStatus(headers), sent)) << "code " << code;
    }
    if (code != 0) {
      EXPECT_EQ(HeaderValue(headers, "Nats-Service-Error"), "why it failed");
      EXPECT_EQ(HeaderValue(headers, "Nats-Service-Error-Code"),
                absl::StrCat(HttpCodeFromStatus(sent.code())));
    }
  }
}

TEST(ReplyHeaders, OkProtobufReplyWithoutMetadataHasNoHeaders) {
  Headers headers;
  ASSERT_TRUE(EncodeReplyHeaders(absl::OkStatus(), "application/protobuf", {}, &headers).ok());
  EXPECT_TRUE(headers.empty());
  EXPECT_TRUE(DecodeReplyStatus(headers).ok());

  Headers json;
  ASSERT_TRUE(EncodeReplyHeaders(absl::OkStatus(), "application/json", {}, &json).ok());
  EXPECT_EQ(HeaderValue(json, "Content-Type"), "application/json");
}

TEST(ReplyHeaders, MessagesLoseLineBreaksAndAreBounded) {
  Headers headers;
  std::string long_message(10'000, 'x');
  ASSERT_TRUE(
      EncodeReplyHeaders(absl::InternalError("a\r\nb"), "application/protobuf", {}, &headers).ok());
  EXPECT_EQ(DecodeReplyStatus(headers).message(), "a  b");
  Headers long_headers;
  ASSERT_TRUE(EncodeReplyHeaders(absl::InternalError(long_message), "application/protobuf", {},
                                 &long_headers)
                  .ok());
  EXPECT_EQ(DecodeReplyStatus(long_headers).message().size(), kMaxStatusMessageBytes);
}

TEST(ReplyHeaders, DetailsTravelAndLocalMarksDoNot) {
  absl::Status sent = absl::NotFoundError("gone");
  sent.SetPayload("type.googleapis.com/x.Why", absl::Cord(std::string("\0binary\xff", 8)));
  sent.SetPayload("type.googleapis.com/x.Empty", absl::Cord());
  MarkUnprocessed(&sent);  // This side's knowledge, not the peer's.
  Headers headers;
  ASSERT_TRUE(EncodeReplyHeaders(sent, "", {}, &headers).ok());
  absl::Status received = DecodeReplyStatus(headers);
  EXPECT_TRUE(testing::IsRemote(received, sent));
  EXPECT_FALSE(IsUnprocessed(received));
  ASSERT_TRUE(received.GetPayload("type.googleapis.com/x.Why").has_value());
  EXPECT_EQ(std::string(*received.GetPayload("type.googleapis.com/x.Why")),
            std::string("\0binary\xff", 8));
  EXPECT_TRUE(received.GetPayload("type.googleapis.com/x.Empty").has_value());

  // Malformed details are dropped; the code and message still arrive.
  headers.find("Micro-Status-Details")->second = "not base64 !";
  EXPECT_TRUE(testing::IsRemote(DecodeReplyStatus(headers), absl::NotFoundError("gone")));
  headers.find("Micro-Status-Details")->second = "AAAA";  // A truncated record.
  EXPECT_TRUE(testing::IsRemote(DecodeReplyStatus(headers), absl::NotFoundError("gone")));
}

TEST(ReplyHeaders, UnprocessedHeaderMarksTheStatus) {
  Headers headers{{"Micro-Status", "8"}, {"Micro-Unprocessed", "true"}};
  EXPECT_TRUE(IsUnprocessed(DecodeReplyStatus(headers)));
  headers.erase("Micro-Unprocessed");
  EXPECT_FALSE(IsUnprocessed(DecodeReplyStatus(headers)));
}

// Found by tests/fuzz/status_fuzzer.cc (corpus/status/long_utf8_message):
// the cut at 4096 bytes split a two-byte character.
TEST(ReplyHeaders, LongMessagesAreCutBetweenCharacters) {
  std::string message = "a";
  for (int i = 0; i < 3000; ++i) message += "\xC3\xA9";  // é, 2 bytes each.
  Headers headers;
  ASSERT_TRUE(EncodeReplyHeaders(absl::InternalError(message), "", {}, &headers).ok());
  std::string_view wire = HeaderValue(headers, "Nats-Service-Error");
  EXPECT_EQ(wire.size(), kMaxStatusMessageBytes - 1);  // 4095 = "a" + 2047 whole characters.
  EXPECT_EQ(wire, std::string_view(message).substr(0, wire.size()));
  EXPECT_EQ(wire.back(), '\xA9');
}

TEST(ReplyHeaders, PlainAdr32ErrorMapsFromHttpCode) {
  Headers headers{{"Nats-Service-Error-Code", "404"}, {"Nats-Service-Error", "no such thing"}};
  EXPECT_TRUE(testing::IsRemote(DecodeReplyStatus(headers), absl::NotFoundError("no such thing")));
  Headers unknown{{"Nats-Service-Error-Code", "oops"}};
  EXPECT_EQ(DecodeReplyStatus(unknown).code(), absl::StatusCode::kUnknown);
}

TEST(ReplyHeaders, MalformedStatusIsUnknown) {
  for (const char* bad : {"17", "-1", "x", ""}) {
    Headers headers{{"Micro-Status", bad}};
    EXPECT_EQ(DecodeReplyStatus(headers).code(), absl::StatusCode::kUnknown) << bad;
  }
}

TEST(ReplyHeaders, InvalidResponseMetadataIsInternal) {
  Headers headers;
  EXPECT_EQ(EncodeReplyHeaders(absl::OkStatus(), "application/protobuf", Metadata{{"Bad Key", "v"}},
                               &headers)
                .code(),
            absl::StatusCode::kInternal);
}

TEST(Metadata, ExtractSkipsReservedAndLowerCases) {
  Headers headers{
      {"Content-Type", "application/json"}, {"Micro-Timeout", "5"}, {"Nats-Msg-Id", "1"},
      {"Authorization", "Bearer y"},        {"x-a", "1"},           {"x-a", "2"}};
  Metadata expected{{"authorization", "Bearer y"}, {"x-a", "1"}, {"x-a", "2"}};
  EXPECT_EQ(ExtractMetadata(headers), expected);
}

TEST(Heartbeat, AHugeValueIsCappedAndABadOneIsNone) {
  auto heartbeat = [](const char* value) {
    return HeartbeatHeader(Headers{{std::string(kHeartbeatHeader), value}});
  };
  EXPECT_EQ(heartbeat("250000000"), absl::Milliseconds(250));
  EXPECT_EQ(heartbeat("18446744073709551615"), kMaxHeartbeat) << "2^64 - 1 ns";
  EXPECT_EQ(heartbeat("9223372036854775808"), kMaxHeartbeat) << "2^63 ns, negative as an int64";
  for (const char* bad : {"0", "-5", "1.5", "soon", "", "18446744073709551616"}) {
    EXPECT_EQ(heartbeat(bad), std::nullopt) << "'" << bad << "'";
  }
  EXPECT_EQ(HeartbeatHeader(Headers{}), std::nullopt);
}

TEST(HttpCodes, MapBothWaysForCommonCodes) {
  for (auto code : {absl::StatusCode::kInvalidArgument, absl::StatusCode::kNotFound,
                    absl::StatusCode::kPermissionDenied, absl::StatusCode::kUnauthenticated,
                    absl::StatusCode::kUnimplemented, absl::StatusCode::kUnavailable,
                    absl::StatusCode::kDeadlineExceeded, absl::StatusCode::kResourceExhausted,
                    absl::StatusCode::kCancelled}) {
    EXPECT_EQ(StatusFromHttpCode(HttpCodeFromStatus(code)), code) << absl::StatusCodeToString(code);
  }
}

TEST(Batch, RoundTripsMessagesOfEverySize) {
  std::vector<std::string> sent = {"", "a", std::string(300, 'b'), std::string(70000, '\0')};
  std::string body;
  for (const std::string& message : sent) AppendBatchRecord(message, &body);
  EXPECT_EQ(body.substr(0, 5), std::string("\0\0\0\0\0", 5));  // "" then a's length.
  EXPECT_EQ(body.substr(4, 5), std::string("\0\0\0\x01"
                                           "a",
                                           5));
  std::vector<std::string> received;
  ASSERT_TRUE(SplitBatch(body, sent.size(), &received).ok());
  EXPECT_EQ(received, sent);
}

TEST(Batch, BodiesThatDoNotMatchTheirCountAreDataLoss) {
  std::string body;
  AppendBatchRecord("one", &body);
  AppendBatchRecord("two", &body);
  std::vector<std::string> out;
  EXPECT_EQ(SplitBatch(body, 3, &out).code(), absl::StatusCode::kDataLoss);  // Too few.
  EXPECT_EQ(SplitBatch(body, 1, &out).code(), absl::StatusCode::kDataLoss);  // Bytes left.
  EXPECT_EQ(SplitBatch(body.substr(0, body.size() - 1), 2, &out).code(),
            absl::StatusCode::kDataLoss);                                    // Truncated.
  EXPECT_EQ(SplitBatch(body, 0, &out).code(), absl::StatusCode::kDataLoss);  // No messages.
  EXPECT_EQ(SplitBatch(body, uint64_t{1} << 62, &out).code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(SplitBatch(std::string("\xff\xff\xff\xff", 4), 1, &out).code(),
            absl::StatusCode::kDataLoss);  // A length past the end.
}

}  // namespace
}  // namespace micro::protocol
