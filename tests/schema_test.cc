// Published schemas (docs/PROTOCOL.md, "Schemas"): what SerializeSchema puts
// in a FileDescriptorSet, what Schema::Parse accepts, and `$SRV.SCHEMA`
// answered by a real server through a real nats-server.
#include "micro/schema.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/descriptor.pb.h>
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "micro/micro.h"
#include "micro/testing/echo.micro.h"
#include "support/echo_instance.h"
#include "support/nats_server.h"

namespace micro {
namespace {

using google::protobuf::DescriptorPool;
using google::protobuf::FileDescriptorProto;
using google::protobuf::FileDescriptorSet;

// a.proto <- b.proto <- c.proto (which imports both and declares service S).
FileDescriptorProto File(const std::string& name, std::vector<std::string> imports) {
  FileDescriptorProto file;
  file.set_name(name);
  file.set_package("t");
  file.set_syntax("proto3");
  for (const std::string& import : imports) file.add_dependency(import);
  return file;
}

class ImportChain : public ::testing::Test {
 protected:
  void SetUp() override {
    FileDescriptorProto a = File("a.proto", {});
    a.add_message_type()->set_name("A");
    FileDescriptorProto b = File("b.proto", {"a.proto"});
    auto* message = b.add_message_type();
    message->set_name("B");
    auto* field = message->add_field();
    field->set_name("a");
    field->set_number(1);
    field->set_label(google::protobuf::FieldDescriptorProto::LABEL_OPTIONAL);
    field->set_type(google::protobuf::FieldDescriptorProto::TYPE_MESSAGE);
    field->set_type_name(".t.A");
    FileDescriptorProto c = File("c.proto", {"b.proto", "a.proto"});
    auto* method = c.add_service();
    method->set_name("S");
    auto* rpc = method->add_method();
    rpc->set_name("M");
    rpc->set_input_type(".t.B");
    rpc->set_output_type(".t.A");
    for (const FileDescriptorProto& file : {a, b, c}) ASSERT_NE(pool_.BuildFile(file), nullptr);
    files_ = {a, b, c};
  }

  DescriptorPool pool_;
  std::vector<FileDescriptorProto> files_;
};

TEST_F(ImportChain, SerializeSchemaPutsEachFileOnceAfterItsImports) {
  const auto* service = pool_.FindServiceByName("t.S");
  ASSERT_NE(service, nullptr);
  FileDescriptorSet set;
  // The same file twice still gives each file once.
  ASSERT_TRUE(set.ParseFromString(SerializeSchema({service->file(), nullptr, service->file()})));
  std::vector<std::string> names;
  for (const FileDescriptorProto& file : set.file()) names.push_back(file.name());
  EXPECT_EQ(names, (std::vector<std::string>{"a.proto", "b.proto", "c.proto"}));
  EXPECT_FALSE(set.file(2).has_source_code_info());
}

TEST_F(ImportChain, ParseAcceptsAnyOrderAndResolvesTypes) {
  FileDescriptorSet set;
  for (int i = 2; i >= 0; --i) *set.add_file() = files_[i];
  auto schema = Schema::Parse(set.SerializeAsString());
  ASSERT_TRUE(schema.ok()) << schema.status();
  const auto* method = (*schema)->FindMethod("t.S.M");
  ASSERT_NE(method, nullptr);
  EXPECT_EQ(method->input_type(), (*schema)->FindMessage("t.B"));
  EXPECT_EQ((*schema)->FindMessage("t.Nope"), nullptr);
  EXPECT_EQ((*schema)->FindMethod("t.S.Nope"), nullptr);
  std::unique_ptr<google::protobuf::Message> message = (*schema)->NewMessage(method->input_type());
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(R"({"a": {}})", message.get()).ok());
  EXPECT_TRUE(
      message->GetReflection()->HasField(*message, method->input_type()->FindFieldByName("a")));
}

TEST_F(ImportChain, ParseRejectsAMissingImport) {
  FileDescriptorSet set;
  *set.add_file() = files_[1];  // b.proto without a.proto.
  auto schema = Schema::Parse(set.SerializeAsString());
  ASSERT_EQ(schema.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(schema.status().message().find("b.proto"), std::string::npos) << schema.status();
}

TEST(SchemaParse, RejectsBytesThatAreNoFileDescriptorSet) {
  EXPECT_EQ(Schema::Parse("\xff\xff\xff").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(SchemaParse, AcceptsTheEmptySchemaOfAServerWithoutServices) {
  auto schema = Schema::Parse(SerializeSchema({}));
  ASSERT_TRUE(schema.ok()) << schema.status();
  EXPECT_EQ((*schema)->FindMessage("micro.testing.EchoRequest"), nullptr);
}

class PublishedSchema : public ::testing::Test {
 protected:
  void SetUp() override {
    auto nats = testing::NatsServer::Start();
    ASSERT_TRUE(nats.ok()) << nats.status();
    nats_ = *std::move(nats);
    auto transport = testing::ConnectTo(nats_->url());
    ASSERT_TRUE(transport.ok()) << transport.status();
    transport_ = *std::move(transport);
  }

  std::unique_ptr<testing::NatsServer> nats_;
  std::shared_ptr<Transport> transport_;
};

TEST_F(PublishedSchema, AServerAnswersWithTheFilesOfItsServices) {
  ServerOptions options;
  options.name = "echo";
  auto instance = testing::EchoInstance::Start(nats_->url(), options, absl::Seconds(1));
  ASSERT_TRUE(instance.ok()) << instance.status();
  auto bytes = FetchSchema(*transport_, "echo", (*instance)->id(), absl::Now() + absl::Seconds(5));
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  FileDescriptorSet set;
  ASSERT_TRUE(set.ParseFromString(*bytes));
  ASSERT_EQ(set.file_size(), 1);
  EXPECT_EQ(set.file(0).name(), "micro/testing/echo.proto");
  auto schema = Schema::Parse(*bytes);
  ASSERT_TRUE(schema.ok()) << schema.status();
  const auto* method = (*schema)->FindMethod("micro.testing.Echo.Echo");
  ASSERT_NE(method, nullptr);
  EXPECT_EQ(method->input_type()->full_name(), "micro.testing.EchoRequest");
  // The dynamic message reads the compiled type's bytes.
  testing::EchoRequest request;
  request.set_text("hi");
  auto dynamic = (*schema)->NewMessage(method->input_type());
  ASSERT_TRUE(dynamic->ParseFromString(request.SerializeAsString()));
  EXPECT_EQ(dynamic->ShortDebugString(), R"(text: "hi")");
}

TEST_F(PublishedSchema, AnotherIdOrNameIsNotFound) {
  ServerOptions options;
  options.name = "echo";
  auto instance = testing::EchoInstance::Start(nats_->url(), options, absl::Seconds(1));
  ASSERT_TRUE(instance.ok()) << instance.status();
  // Instances hear `$SRV.>` but do not answer for another id: no answer.
  auto other_id =
      FetchSchema(*transport_, "echo", "NoSuchId", absl::Now() + absl::Milliseconds(300));
  EXPECT_EQ(other_id.status().code(), absl::StatusCode::kNotFound) << other_id.status();
  auto other_name =
      FetchSchema(*transport_, "other", (*instance)->id(), absl::Now() + absl::Milliseconds(300));
  EXPECT_EQ(other_name.status().code(), absl::StatusCode::kNotFound) << other_name.status();
  EXPECT_EQ(
      FetchSchema(*transport_, "bad.name", "x", absl::Now() + absl::Seconds(1)).status().code(),
      absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(FetchSchema(*transport_, "echo", "", absl::Now() + absl::Seconds(1)).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(PublishedSchema, NobodyListeningIsNotFound) {
  auto schema = FetchSchema(*transport_, "echo", "Id1", absl::Now() + absl::Seconds(5));
  EXPECT_EQ(schema.status().code(), absl::StatusCode::kNotFound) << schema.status();
}

TEST_F(PublishedSchema, ASchemaOverTheMaxPayloadIsAnsweredWithResourceExhausted) {
  auto registry = NewNatsRegistry(transport_);
  ASSERT_TRUE(registry.ok()) << registry.status();
  Registration registration;
  registration.instance.name = "huge";
  registration.instance.id = "Huge1";
  registration.instance.version = "1.0.0";
  registration.schema.assign(transport_->MaxPayload() + 1, 'x');
  ASSERT_TRUE((*registry)->Register(registration).ok());
  auto schema = FetchSchema(*transport_, "huge", "Huge1", absl::Now() + absl::Seconds(5));
  EXPECT_EQ(schema.status().code(), absl::StatusCode::kResourceExhausted) << schema.status();
}

TEST_F(PublishedSchema, QueryDiscoveryCollectsEveryInstancesAnswer) {
  ServerOptions options;
  options.name = "echo";
  auto first = testing::EchoInstance::Start(nats_->url(), options, absl::Seconds(1));
  auto second = testing::EchoInstance::Start(nats_->url(), options, absl::Seconds(1));
  ASSERT_TRUE(first.ok() && second.ok());
  auto answers = QueryDiscovery(*transport_, "PING", "echo", "");
  ASSERT_TRUE(answers.ok()) << answers.status();
  ASSERT_EQ(answers->size(), 2u);
  for (const DiscoveryAnswer& answer : *answers) {
    EXPECT_NE(answer.body.find("io.nats.micro.v1.ping_response"), std::string::npos);
    EXPECT_GT(answer.latency, absl::ZeroDuration());
  }
  auto one = QueryDiscovery(*transport_, "STATS", "echo", (*first)->id());
  ASSERT_TRUE(one.ok()) << one.status();
  ASSERT_EQ(one->size(), 1u);
  EXPECT_NE(one->front().body.find((*first)->id()), std::string::npos);
  auto none = QueryDiscovery(*transport_, "INFO", "nobody", "");
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_TRUE(none->empty());
  EXPECT_EQ(QueryDiscovery(*transport_, "SCHEMA", "", "").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(QueryDiscovery(*transport_, "PING", "", "Id1").status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace micro
