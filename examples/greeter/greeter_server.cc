// Serves helloworld.Greeter until SIGINT or SIGTERM, then stops gracefully.
// Interceptors log every call and count it; with `--token T`, calls must
// carry the metadata `authorization: Bearer T`.
#include <cstdio>
#include <memory>

#include "absl/strings/str_cat.h"
#include "common/cli.h"
#include "common/interceptors.h"
#include "helloworld/greeter.micro.h"

namespace {

class GreeterHandler final : public helloworld::Greeter::Handler {
 public:
  absl::Status SayHello(micro::ServerContext*, const helloworld::HelloRequest* request,
                        helloworld::HelloReply* reply) override {
    if (request->name().empty()) return absl::InvalidArgumentError("name must not be empty");
    reply->set_message(absl::StrCat("Hello, ", request->name(), "!"));
    return absl::OkStatus();
  }
};

}  // namespace

int main(int argc, char** argv) {
  micro::examples::BlockStopSignals();
  auto flags = micro::examples::ParseFlags(argc, argv, {{"token", ""}});
  auto transport = micro::examples::ConnectOrExit(flags["nats"], "greeter_server");
  GreeterHandler handler;
  auto metrics = std::make_shared<micro::examples::MetricsInterceptor>();
  micro::ServerOptions options;
  // In this order, so refused calls are logged and counted too.
  options.interceptors = {std::make_shared<micro::examples::LoggingInterceptor>("greeter_server"),
                          metrics};
  if (!flags["token"].empty()) {
    options.interceptors.push_back(
        std::make_shared<micro::examples::TokenCheckInterceptor>(flags["token"]));
  }
  micro::Server server(transport, options);
  if (absl::Status status = helloworld::RegisterGreeterHandler(server, handler); !status.ok()) {
    std::fprintf(stderr, "greeter_server: %s\n", status.ToString().c_str());
    return 1;
  }
  micro::examples::ServeUntilStopped(server, "greeter_server", flags["nats"]);
  std::fprintf(stderr, "greeter_server metrics:\n%s", metrics->Report().c_str());
  return 0;
}
