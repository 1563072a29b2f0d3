// What protoc-gen-micro generates for the corpus in protos/: the names the
// renaming rules promise (see protoc-gen-micro/names.h), that each endpoint
// calls the method of its proto name, endpoint metadata, and that streaming
// methods get no code yet. That the corpus compiles at all is checked by the
// build of micro_codegen_corpus.
#include <gtest/gtest.h>

#include <future>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "a/b/c/nested.micro.h"
#include "case.micro.h"
#include "clash/base.micro.h"
#include "clash/derived.micro.h"
#include "collide/collisions.micro.h"
#include "collide/messages.micro.h"
#include "exported.rpc.h"
#include "guards/foo/bar.micro.h"
#include "guards/foo_bar.micro.h"  // Compiles only if the two header guards differ.
#include "keywords.micro.h"
#include "legacy/legacy.micro.h"
#include "micro/micro.h"
#include "no_package.micro.h"
#include "routeguide/route_guide.micro.h"
#include "shop/api/orders.micro.h"
#include "streaming.micro.h"
#include "support/nats_server.h"
#include "wkt/wkt.micro.h"

namespace codegen_test {
namespace {

// Records the C++ name of the handler method that ran: in the response when
// it has a text field (so that callers across NATS see it), else in `called`.
template <typename Response>
absl::Status Record(const char* cpp_name, Response* response, std::string* called) {
  if constexpr (requires { response->set_text(cpp_name); }) {
    response->set_text(cpp_name);
  } else {
    *called = cpp_name;
  }
  return absl::OkStatus();
}

// One override that records its own name; a macro because the name is the
// point, and it is the same one-liner for every method.
#define RECORDING_METHOD(name, Request, Response)                                         \
  absl::Status name(micro::ServerContext*, const Request*, Response* response) override { \
    return Record(#name, response, &called);                                              \
  }

class ApiHandler final : public collide::Api::Handler {
 public:
  RECORDING_METHOD(Stub_, collide::Req, collide::Resp)
  RECORDING_METHOD(Handler_, collide::Req, collide::Resp)
  RECORDING_METHOD(Definition_, collide::Req, collide::Resp)
  RECORDING_METHOD(client__, collide::Req, collide::Resp)
  RECORDING_METHOD(NewStub, collide::Req, collide::Resp)
  RECORDING_METHOD(Methods, collide::Req, collide::Resp)
  RECORDING_METHOD(kServiceName, collide::Req, collide::Resp)
  RECORDING_METHOD(Api, collide::Req, collide::Resp)
  RECORDING_METHOD(Service, collide::Req, collide::Resp)
  RECORDING_METHOD(context, collide::Req, collide::Resp)
  RECORDING_METHOD(request, collide::Req, collide::Resp)
  RECORDING_METHOD(response, collide::Req, collide::Resp)
  RECORDING_METHOD(on_done, collide::Req, collide::Resp)
  RECORDING_METHOD(std, collide::Req, collide::Resp)
  RECORDING_METHOD(micro, collide::Req, collide::Resp)
  RECORDING_METHOD(absl, collide::Req, collide::Resp)
  RECORDING_METHOD(google, collide::Req, collide::Resp)
  RECORDING_METHOD(Foo, collide::Req, collide::Resp)
  RECORDING_METHOD(AsyncFoo, collide::Req, collide::Resp)
  std::string called;
};

class KeywordsHandler final : public kw::Keywords::Handler {
 public:
  RECORDING_METHOD(delete_, kw::class_, kw::class_)
  RECORDING_METHOD(new_, kw::class_, kw::class_)
  RECORDING_METHOD(return_, kw::Empty, kw::Empty)
  RECORDING_METHOD(and_, kw::Empty, kw::Empty)
  RECORDING_METHOD(co_await_, kw::Empty, kw::Empty)
  RECORDING_METHOD(char8_t_, kw::Empty, kw::Empty)
  RECORDING_METHOD(requires_, kw::Empty, kw::Empty)
  RECORDING_METHOD(typeof_, kw::Empty, kw::Empty)
  RECORDING_METHOD(final, kw::Empty, kw::Empty)
  RECORDING_METHOD(override, kw::Empty, kw::Empty)
  RECORDING_METHOD(import, kw::Empty, kw::Empty)
  RECORDING_METHOD(module, kw::Empty, kw::Empty)
  std::string called;
};

class MacrosHandler final : public kw::Macros::Handler {
 public:
  RECORDING_METHOD(assert_, kw::Empty, kw::Empty)
  RECORDING_METHOD(errno_, kw::Empty, kw::Empty)
  RECORDING_METHOD(EOF_, kw::Empty, kw::Empty)
  RECORDING_METHOD(NULL_, kw::Empty, kw::Empty)
  RECORDING_METHOD(TRUE_, kw::Empty, kw::Empty)
  RECORDING_METHOD(FALSE_, kw::Empty, kw::Empty)
  RECORDING_METHOD(DEBUG_, kw::Empty, kw::Empty)
  RECORDING_METHOD(NDEBUG_, kw::Empty, kw::Empty)
  RECORDING_METHOD(stdin_, kw::Empty, kw::Empty)
  RECORDING_METHOD(stderr_, kw::Empty, kw::Empty)
  RECORDING_METHOD(major_, kw::Empty, kw::Empty)
  RECORDING_METHOD(minor_, kw::Empty, kw::Empty)
  RECORDING_METHOD(linux_, kw::Empty, kw::Empty)
  RECORDING_METHOD(unix_, kw::Empty, kw::Empty)
  RECORDING_METHOD(offsetof_, kw::Empty, kw::Empty)
  std::string called;
};

#undef RECORDING_METHOD

struct Rename {
  std::string_view proto;
  std::string_view cpp;
};

// Calls every endpoint of `handler` directly and checks which C++ method ran.
template <typename Handler>
void ExpectEndpointsCall(Handler& handler, const std::vector<Rename>& expected) {
  micro::ServiceDefinition definition = handler.Definition();
  ASSERT_EQ(definition.endpoints.size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    const micro::EndpointDefinition& endpoint = definition.endpoints[i];
    SCOPED_TRACE(std::string(endpoint.method->name));
    EXPECT_EQ(endpoint.method->name, expected[i].proto);
    EXPECT_EQ(endpoint.method->subject,
              std::string(definition.name) + "." + std::string(expected[i].proto));
    std::unique_ptr<google::protobuf::Message> request(endpoint.request_prototype->New());
    std::unique_ptr<google::protobuf::Message> response(endpoint.response_prototype->New());
    micro::ServerContext context(std::string(endpoint.method->subject), absl::InfiniteFuture(), {});
    handler.called.clear();
    ASSERT_TRUE(endpoint.unary(&context, *request, response.get()).ok());
    const google::protobuf::FieldDescriptor* text =
        response->GetDescriptor()->FindFieldByName("text");
    const std::string called =
        text != nullptr ? response->GetReflection()->GetString(*response, text) : handler.called;
    EXPECT_EQ(called, expected[i].cpp);
  }
}

TEST(CodegenRenames, MethodsClashingWithGeneratedMembersGetAnUnderscore) {
  ApiHandler handler;
  ExpectEndpointsCall(handler, {{"Stub", "Stub_"},
                                {"Handler", "Handler_"},
                                {"Definition", "Definition_"},
                                {"client_", "client__"},
                                {"NewStub", "NewStub"},
                                {"Methods", "Methods"},
                                {"kServiceName", "kServiceName"},
                                {"Api", "Api"},
                                {"Service", "Service"},
                                {"context", "context"},
                                {"request", "request"},
                                {"response", "response"},
                                {"on_done", "on_done"},
                                {"std", "std"},
                                {"micro", "micro"},
                                {"absl", "absl"},
                                {"google", "google"},
                                {"Foo", "Foo"},
                                {"AsyncFoo", "AsyncFoo"}});
  // The MethodInfo is named after the C++ name, and keeps the proto's.
  EXPECT_EQ(collide::Api::Methods::kStub_.name, "Stub");
  EXPECT_EQ(collide::Api::Methods::kStub_.subject, "collide.Api.Stub");
}

TEST(CodegenRenames, KeywordsAndMacrosGetAnUnderscore) {
  KeywordsHandler keywords;
  ExpectEndpointsCall(keywords, {{"delete", "delete_"},
                                 {"new", "new_"},
                                 {"return", "return_"},
                                 {"and", "and_"},
                                 {"co_await", "co_await_"},
                                 {"char8_t", "char8_t_"},
                                 {"requires", "requires_"},
                                 {"typeof", "typeof_"},
                                 {"final", "final"},
                                 {"override", "override"},
                                 {"import", "import"},
                                 {"module", "module"}});
  MacrosHandler macros;
  ExpectEndpointsCall(macros, {{"assert", "assert_"},
                               {"errno", "errno_"},
                               {"EOF", "EOF_"},
                               {"NULL", "NULL_"},
                               {"TRUE", "TRUE_"},
                               {"FALSE", "FALSE_"},
                               {"DEBUG", "DEBUG_"},
                               {"NDEBUG", "NDEBUG_"},
                               {"stdin", "stdin_"},
                               {"stderr", "stderr_"},
                               {"major", "major_"},
                               {"minor", "minor_"},
                               {"linux", "linux_"},
                               {"unix", "unix_"},
                               {"offsetof", "offsetof_"}});
  EXPECT_EQ(kw::struct_::kServiceName, "kw.struct");
  EXPECT_EQ(kw::errno_::kServiceName, "kw.errno");
  EXPECT_EQ(kw::linux_::kServiceName, "kw.linux");
}

TEST(CodegenRenames, ServicesClashingWithGeneratedOrProtobufNames) {
  // Named like members of every service class.
  EXPECT_EQ(collide::Stub_::kServiceName, "collide.Stub");
  EXPECT_EQ(collide::Handler_::kServiceName, "collide.Handler");
  EXPECT_EQ(collide::Methods_::kServiceName, "collide.Methods");
  EXPECT_EQ(collide::NewStub_::kServiceName, "collide.NewStub");
  EXPECT_EQ(collide::kServiceName_::kServiceName, "collide.kServiceName");
  // Named like members of the nested classes only.
  EXPECT_EQ(collide::Definition::kServiceName, "collide.Definition");
  EXPECT_EQ(collide::Service::kServiceName, "collide.Service");
  // A service keeps its name; the function of the service it clashes with yields.
  EXPECT_EQ(collide::RegisterWidgetHandler::kServiceName, "collide.RegisterWidgetHandler");
  static_assert(std::is_function_v<decltype(collide::RegisterWidgetHandler_)>);
  // What an imported file of the same package generated keeps its name.
  static_assert(std::is_function_v<decltype(clash::RegisterInventoryHandler)>);
  EXPECT_EQ(clash::RegisterInventoryHandler_::kServiceName, "clash.RegisterInventoryHandler");
  // protobuf's names: a message, a top-level enum value, a nested message.
  static_assert(std::is_class_v<clash::RegisterOrdersHandler>);
  static_assert(std::is_function_v<decltype(clash::RegisterOrdersHandler_)>);
  EXPECT_EQ(clash::RegisterShippingHandler, clash::Mode::RegisterShippingHandler);
  static_assert(std::is_function_v<decltype(clash::RegisterShippingHandler_)>);
  EXPECT_EQ(clash::Parcel_Box_::kServiceName, "clash.Parcel_Box");
  // Files without a package: next to the namespaces the generated code uses.
  EXPECT_EQ(::Global::kServiceName, "Global");
  EXPECT_EQ(::micro_::kServiceName, "micro");
  EXPECT_EQ(::std_::kServiceName, "std");
}

TEST(CodegenRenames, NamesDifferingInCaseStayDistinct) {
  EXPECT_EQ(cases::Thing::kServiceName, "cases.Thing");
  EXPECT_EQ(cases::thing::kServiceName, "cases.thing");
  EXPECT_EQ(cases::THING::kServiceName, "cases.THING");
  EXPECT_EQ(cases::Thing::Methods::kGet.subject, "cases.Thing.Get");
  EXPECT_EQ(cases::Thing::Methods::kget.subject, "cases.Thing.get");
  EXPECT_EQ(cases::Thing::Methods::kGET.subject, "cases.Thing.GET");
}

// Through a real nats-server: each Stub call reaches the method of its name.
TEST(CodegenEndToEnd, RenamedStubCallsReachTheirMethods) {
  auto nats = micro::testing::NatsServer::Start();
  ASSERT_TRUE(nats.ok()) << nats.status();
  micro::TransportOptions options;
  options.url = (*nats)->url();
  auto transport = micro::ConnectNats(options);
  ASSERT_TRUE(transport.ok()) << transport.status();
  ApiHandler handler;
  micro::Server server(*transport);
  ASSERT_TRUE(collide::RegisterApiHandler(server, handler).ok());
  ASSERT_TRUE(server.Start().ok());
  auto stub = collide::Api::NewStub(std::make_shared<micro::Client>(*transport));

  collide::Req request;
  const auto call = [&](auto method) {
    micro::ClientContext context;
    context.set_timeout(absl::Seconds(10));
    collide::Resp response;
    absl::Status status = ((*stub).*method)(&context, request, &response);
    return status.ok() ? response.text() : status.ToString();
  };
  EXPECT_EQ(call(&collide::Api::Stub::Stub_), "Stub_");
  EXPECT_EQ(call(&collide::Api::Stub::Definition_), "Definition_");
  EXPECT_EQ(call(&collide::Api::Stub::client__), "client__");
  EXPECT_EQ(call(&collide::Api::Stub::context), "context");
  EXPECT_EQ(call(&collide::Api::Stub::AsyncFoo), "AsyncFoo");  // The method AsyncFoo.

  // Foo's asynchronous calls, renamed.
  micro::ClientContext future_context;
  future_context.set_timeout(absl::Seconds(10));
  absl::StatusOr<collide::Resp> future_reply = stub->AsyncFoo_(&future_context, request).get();
  ASSERT_TRUE(future_reply.ok()) << future_reply.status();
  EXPECT_EQ(future_reply->text(), "Foo");
  micro::ClientContext callback_context;
  callback_context.set_timeout(absl::Seconds(10));
  collide::Resp callback_reply;
  std::promise<absl::Status> done;
  stub->AsyncFoo_(&callback_context, request, &callback_reply,
                  [&done](absl::Status status) { done.set_value(status); });
  ASSERT_TRUE(done.get_future().get().ok());
  EXPECT_EQ(callback_reply.text(), "Foo");
  server.Stop();
}

// Every kind of RPC is a pure virtual method of the Handler.
class RouteGuideHandler final : public routeguide::RouteGuide::Handler {
 public:
  absl::Status GetFeature(micro::ServerContext*, const routeguide::Point*,
                          routeguide::Feature*) override {
    return absl::OkStatus();
  }
  absl::Status ListFeatures(micro::ServerContext*, const routeguide::Rectangle*,
                            micro::ServerWriter<routeguide::Feature>*) override {
    return absl::OkStatus();
  }
  absl::Status RecordRoute(micro::ServerContext*, micro::ServerReader<routeguide::Point>*,
                           routeguide::RouteSummary*) override {
    return absl::OkStatus();
  }
  absl::Status RouteChat(
      micro::ServerContext*,
      micro::ServerReaderWriter<routeguide::RouteNote, routeguide::RouteNote>*) override {
    return absl::OkStatus();
  }
};

TEST(CodegenStreaming, EveryKindGetsAnEndpointOfItsKind) {
  RouteGuideHandler handler;
  micro::ServiceDefinition definition = handler.Definition();
  ASSERT_EQ(definition.endpoints.size(), 4u);
  const micro::EndpointDefinition* by_method[4] = {};
  for (const micro::EndpointDefinition& endpoint : definition.endpoints) {
    by_method[static_cast<int>(endpoint.method->kind)] = &endpoint;
  }
  using Methods = routeguide::RouteGuide::Methods;
  EXPECT_EQ(by_method[0]->method, &Methods::kGetFeature);
  EXPECT_EQ(by_method[1]->method, &Methods::kRecordRoute);
  EXPECT_EQ(by_method[2]->method, &Methods::kListFeatures);
  EXPECT_EQ(by_method[3]->method, &Methods::kRouteChat);
  // Unary endpoints carry a unary handler, streaming ones a stream handler.
  EXPECT_TRUE(by_method[0]->unary && !by_method[0]->stream);
  for (int kind = 1; kind < 4; ++kind) {
    EXPECT_TRUE(by_method[kind]->stream && !by_method[kind]->unary) << kind;
  }
  ASSERT_NE(definition.descriptor, nullptr);
  EXPECT_EQ(definition.descriptor->method_count(), 4);
}

TEST(CodegenStreaming, StreamingOnlyServicesAndEmptyServices) {
  // No message of streaming.proto is used here, yet its descriptors are
  // linked in from the static library.
  class : public streaming::StreamsOnly::Handler {
    absl::Status Down(micro::ServerContext*, const streaming::Msg*,
                      micro::ServerWriter<streaming::Msg>*) override {
      return absl::OkStatus();
    }
    absl::Status Up(micro::ServerContext*, micro::ServerReader<streaming::Msg>*,
                    streaming::Msg*) override {
      return absl::OkStatus();
    }
    absl::Status Both(micro::ServerContext*,
                      micro::ServerReaderWriter<streaming::Msg, streaming::Msg>*) override {
      return absl::OkStatus();
    }
  } streams_only;
  micro::ServiceDefinition definition = streams_only.Definition();
  EXPECT_EQ(definition.endpoints.size(), 3u);
  ASSERT_NE(definition.descriptor, nullptr);
  EXPECT_EQ(definition.descriptor->method_count(), 3);
  class : public streaming::Nothing::Handler {
  } nothing;
  EXPECT_TRUE(nothing.Definition().endpoints.empty());
}

TEST(CodegenMetadata, MethodInfoDescribesEachEndpoint) {
  const micro::MethodInfo& get_feature = routeguide::RouteGuide::Methods::kGetFeature;
  EXPECT_EQ(get_feature.service, "routeguide.RouteGuide");
  EXPECT_EQ(get_feature.name, "GetFeature");
  EXPECT_EQ(get_feature.subject, "routeguide.RouteGuide.GetFeature");
  EXPECT_EQ(get_feature.kind, micro::RpcKind::kUnary);
  EXPECT_TRUE(get_feature.idempotent);  // NO_SIDE_EFFECTS.
  EXPECT_EQ(get_feature.request_type, "routeguide.Point");
  EXPECT_EQ(get_feature.response_type, "routeguide.Feature");

  // proto2, nested types, IDEMPOTENT.
  EXPECT_EQ(legacy::Accounts::Methods::kSave.response_type, "legacy.Account.Lookup");
  EXPECT_TRUE(legacy::Accounts::Methods::kSave.idempotent);
  EXPECT_FALSE(legacy::Accounts::Methods::kFind.idempotent);
  // Types from other packages, one through `import public`, and a package
  // three levels deep.
  EXPECT_EQ(shop::api::Orders::Methods::kQuote.request_type, "shop.common.Item");
  EXPECT_EQ(shop::api::Orders::Methods::kPlace.response_type, "a.b.c.Receipt");
  EXPECT_EQ(a::b::c::Billing::Methods::kLine.request_type, "a.b.c.Receipt.Line");
  EXPECT_EQ(shop::api::Catalog::kServiceName, "shop.api.Catalog");
  // Well-known types as request and response.
  EXPECT_EQ(wkt::v1::Documents::Methods::kNow.request_type, "google.protobuf.Empty");
  EXPECT_EQ(wkt::v1::Documents::Methods::kNow.response_type, "google.protobuf.Timestamp");
  EXPECT_EQ(guards::FooBar::kServiceName, "guards.FooBar");
  EXPECT_EQ(guards::FooSlashBar::kServiceName, "guards.FooSlashBar");
  EXPECT_EQ(exported::Visible::Methods::kCall.subject, "exported.Visible.Call");
}

// The generated signatures use protobuf's C++ names of the message types.
using NowCall = absl::Status (wkt::v1::Documents::Stub::*)(micro::ClientContext*,
                                                           const google::protobuf::Empty&,
                                                           google::protobuf::Timestamp*);
static_assert(std::is_same_v<decltype(&wkt::v1::Documents::Stub::Now), NowCall>);
using SaveHandler = absl::Status (legacy::Accounts::Handler::*)(micro::ServerContext*,
                                                                const legacy::Account*,
                                                                legacy::Account_Lookup*);
static_assert(std::is_same_v<decltype(&legacy::Accounts::Handler::Save), SaveHandler>);
using GetCall = absl::Status (collide::messages::Greeter::Stub::*)(micro::ClientContext*,
                                                                   const collide::messages::Stub&,
                                                                   collide::messages::Handler*);
static_assert(std::is_same_v<decltype(&collide::messages::Greeter::Stub::Get), GetCall>);

}  // namespace
}  // namespace codegen_test
