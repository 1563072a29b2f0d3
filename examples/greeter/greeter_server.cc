// Serves helloworld.Greeter until SIGINT or SIGTERM, then stops gracefully.
#include <pthread.h>

#include <csignal>
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
  // Block the stop signals before any thread exists, so every thread inherits
  // the mask and only sigwait below receives them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  auto flags = micro::examples::ParseFlags(argc, argv, {});
  auto transport = micro::examples::ConnectOrExit(flags["nats"], "greeter_server");
  GreeterHandler handler;
  micro::Server server(transport);
  absl::Status status = helloworld::RegisterGreeterHandler(server, handler);
  if (status.ok()) status = server.Start();
  if (!status.ok()) {
    std::fprintf(stderr, "greeter_server: %s\n", status.ToString().c_str());
    return 1;
  }

  std::printf("greeter_server: serving helloworld.Greeter on %s\n", flags["nats"].c_str());
  std::fflush(stdout);
  int received = 0;
  sigwait(&signals, &received);
  server.Stop();
  std::printf("greeter_server: stopped\n");
  return 0;
}
