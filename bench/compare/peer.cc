// A server process for micro_compare (see peer.h): running each server in
// its own process lets the runner read the server's CPU time apart from the
// client's and nats-server's.
#include "peer.h"

#include <grpcpp/grpcpp.h>
#include <nats/nats.h>
#include <signal.h>

#include <cstdio>
#include <memory>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "echo_handler.h"
#include "micro/bench/grpc_echo.grpc.pb.h"
#include "micro/bench/inline_echo.micro.h"
#include "micro/micro.h"
#include "micro/testing/echo.micro.h"
#include "raw_nats.h"

namespace {

using ::micro::bench::Fail;
using ::micro::bench::NatsOk;
using ::micro::bench::NatsPtr;
using ::micro::testing::EchoReply;
using ::micro::testing::EchoRequest;

class MicroInlineEcho final : public micro::bench::InlineEcho::Handler {
 public:
  absl::Status Echo(micro::ServerContext*, const EchoRequest* request, EchoReply* reply) override {
    reply->set_payload(request->payload());
    return absl::OkStatus();
  }
};

class GrpcEcho final : public micro::bench::GrpcEcho::Service {
 public:
  grpc::Status Echo(grpc::ServerContext*, const EchoRequest* request, EchoReply* reply) override {
    reply->set_payload(request->payload());
    return grpc::Status::OK;
  }
};

// The raw nats.c replier: the same decode, echo and encode as the handlers,
// published at once (SendAsap) on the delivery thread. A failure is printed
// and left unanswered, so the caller fails too.
void RawEcho(natsConnection* connection, natsSubscription*, natsMsg* msg, void*) {
  NatsPtr<natsMsg> owned(msg);
  EchoRequest request;
  if (!request.ParseFromArray(natsMsg_GetData(msg), natsMsg_GetDataLength(msg))) {
    Fail("raw replier: request does not decode");
    return;
  }
  if (natsMsg_GetReply(msg) == nullptr) {
    Fail("raw replier: request has no reply subject");
    return;
  }
  EchoReply reply;
  reply.set_payload(request.payload());
  std::string data = reply.SerializeAsString();
  NatsOk(natsConnection_Publish(connection, natsMsg_GetReply(msg), data.data(),
                                static_cast<int>(data.size())),
         "raw replier publish");
}

// Blocks until SIGTERM or SIGINT. Both are blocked in main before any
// thread starts, so every thread inherits the mask and only this wait sees them.
void WaitForStopSignal() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  int signal = 0;
  sigwait(&signals, &signal);
}

void Ready() {
  std::printf("ready\n");
  std::fflush(stdout);
}

// Serves Echo with the default options, or InlineEcho with inline handlers.
bool ServeMicro(const std::string& url, bool inline_handlers) {
  micro::TransportOptions options;
  options.url = url;
  auto transport = micro::ConnectNats(options);
  if (!transport.ok()) return Fail(transport.status().ToString());
  micro::bench::PayloadEchoHandler handler;
  MicroInlineEcho inline_handler;
  micro::ServerOptions server_options;
  server_options.inline_unary_handlers = inline_handlers;
  micro::Server server(*transport, server_options);
  if (absl::Status status = inline_handlers
                                ? micro::bench::RegisterInlineEchoHandler(server, inline_handler)
                                : micro::testing::RegisterEchoHandler(server, handler);
      !status.ok()) {
    return Fail(status.ToString());
  }
  if (absl::Status status = server.Start(); !status.ok()) return Fail(status.ToString());
  Ready();
  WaitForStopSignal();
  server.Stop();
  return true;
}

bool ServeRawNats(const std::string& url) {
  NatsPtr<natsConnection> connection = micro::bench::ConnectRaw(url, /*send_asap=*/true);
  if (connection == nullptr) return false;
  natsSubscription* raw_subscription = nullptr;
  if (!NatsOk(natsConnection_Subscribe(&raw_subscription, connection.get(),
                                       micro::bench::kRawSubject, RawEcho, nullptr),
              "natsConnection_Subscribe")) {
    return false;
  }
  NatsPtr<natsSubscription> subscription(raw_subscription);
  // Callers use other connections: the server must know the subscription first.
  if (!NatsOk(natsConnection_Flush(connection.get()), "natsConnection_Flush")) return false;
  Ready();
  WaitForStopSignal();
  return NatsOk(natsSubscription_Unsubscribe(subscription.get()), "natsSubscription_Unsubscribe");
}

bool ServeGrpc(int port) {
  GrpcEcho service;
  grpc::ServerBuilder builder;
  builder.AddListeningPort(absl::StrCat("127.0.0.1:", port), grpc::InsecureServerCredentials());
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr) return Fail(absl::StrCat("gRPC server cannot listen on port ", port));
  Ready();
  WaitForStopSignal();
  server->Shutdown();
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  micro::bench::program = "bench_peer";
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  const char* usage =
      "usage: bench_peer micro|micro-inline|nats|grpc [--url nats://...] [--port N]\n";
  if (argc < 2 || argc % 2 != 0) {
    std::fprintf(stderr, "%s", usage);
    return 2;
  }
  const std::string kind = argv[1];
  std::string url = micro::DefaultNatsUrl();
  int port = 0;
  for (int i = 2; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--url") {
      url = argv[i + 1];
    } else if (flag != "--port" || !absl::SimpleAtoi(argv[i + 1], &port)) {
      std::fprintf(stderr, "%s", usage);
      return 2;
    }
  }
  bool ok = false;
  if (kind == "micro" || kind == "micro-inline") {
    ok = ServeMicro(url, kind == "micro-inline");
  } else if (kind == "nats") {
    ok = ServeRawNats(url);
  } else if (kind == "grpc" && port > 0) {
    ok = ServeGrpc(port);
  } else {
    std::fprintf(stderr, "%s", usage);
    return 2;
  }
  return ok ? 0 : 1;
}
