// Calls helloworld.Greeter.SayHello once and prints the reply; with
// `--token T`, an interceptor sends `authorization: Bearer T` on every call.
#include <cstdio>
#include <memory>

#include "common/cli.h"
#include "common/interceptors.h"
#include "helloworld/greeter.micro.h"

int main(int argc, char** argv) {
  auto flags = micro::examples::ParseFlags(
      argc, argv, {{"name", "world"}, {"timeout_ms", "2000"}, {"token", ""}});
  auto transport = micro::examples::ConnectOrExit(flags["nats"], "greeter_client");
  micro::ClientOptions options;
  if (!flags["token"].empty()) {
    options.interceptors.push_back(
        std::make_shared<micro::examples::TokenInjector>(flags["token"]));
  }
  auto stub = helloworld::Greeter::NewStub(std::make_shared<micro::Client>(transport, options));

  micro::ClientContext context;
  context.set_timeout(absl::Milliseconds(std::atoi(flags["timeout_ms"].c_str())));
  helloworld::HelloRequest request;
  request.set_name(flags["name"]);
  helloworld::HelloReply reply;
  absl::Status status = stub->SayHello(&context, request, &reply);
  if (!status.ok()) {
    std::fprintf(stderr, "greeter_client: SayHello failed: %s\n", status.ToString().c_str());
    return 1;
  }
  std::printf("%s\n", reply.message().c_str());
  return 0;
}
