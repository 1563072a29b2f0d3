// Serves helloworld.Greeter until SIGINT or SIGTERM, then stops gracefully.
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "common/cli.h"
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
  auto flags = micro::examples::ParseFlags(argc, argv, {});
  auto transport = micro::examples::ConnectOrExit(flags["nats"], "greeter_server");
  GreeterHandler handler;
  micro::Server server(transport);
  if (absl::Status status = helloworld::RegisterGreeterHandler(server, handler); !status.ok()) {
    std::fprintf(stderr, "greeter_server: %s\n", status.ToString().c_str());
    return 1;
  }
  micro::examples::ServeUntilStopped(server, "greeter_server", flags["nats"]);
  return 0;
}
