#include "micro/codec.h"

#include <gtest/gtest.h>

#include "micro/testing/echo.pb.h"

namespace micro {
namespace {

using ::micro::testing::EchoRequest;

EchoRequest Sample() {
  EchoRequest request;
  request.set_text("héllo");
  request.set_payload(std::string("\0\1\2", 3));
  request.set_sleep_ms(7);
  return request;
}

TEST(Codec, FindsBuiltInsByContentType) {
  EXPECT_EQ(FindCodec(""), &ProtobufCodec());
  EXPECT_EQ(FindCodec("application/protobuf"), &ProtobufCodec());
  EXPECT_EQ(FindCodec("Application/JSON; charset=utf-8"), &JsonCodec());
  EXPECT_EQ(FindCodec("text/xml"), nullptr);
}

TEST(Codec, EachCodecRoundTrips) {
  for (const Codec* codec : {&ProtobufCodec(), &JsonCodec()}) {
    std::string bytes;
    ASSERT_TRUE(codec->Encode(Sample(), &bytes).ok());
    EchoRequest decoded;
    ASSERT_TRUE(codec->Decode(bytes, &decoded).ok()) << codec->ContentType();
    EXPECT_EQ(decoded.SerializeAsString(), Sample().SerializeAsString()) << codec->ContentType();
  }
}

TEST(Codec, JsonUsesProto3Mapping) {
  std::string json;
  ASSERT_TRUE(JsonCodec().Encode(Sample(), &json).ok());
  EXPECT_NE(json.find("\"sleepMs\":7"), std::string::npos) << json;
}

TEST(Codec, MalformedInputIsInvalidArgumentNamingTheType) {
  EchoRequest decoded;
  absl::Status binary = ProtobufCodec().Decode(std::string("\xff\xff\xff\xff", 4), &decoded);
  EXPECT_EQ(binary.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(binary.message().find("micro.testing.EchoRequest"), std::string::npos) << binary;
  for (const char* bad : {"{", "[]", "{\"nope\": 1}", "{\"sleepMs\": \"many\"}"}) {
    absl::Status json = JsonCodec().Decode(bad, &decoded);
    EXPECT_EQ(json.code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

}  // namespace
}  // namespace micro
