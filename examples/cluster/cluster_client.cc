// Calls helloworld.Greeter through a nats-server cluster: once, then again
// after a line on stdin (meanwhile, kill the node the service is connected
// to). The client's own node stays up; the service's connection moves to a
// surviving node by itself, and calls reach it there. Until it has, calls
// fail with UNAVAILABLE (nobody serves the subject), which this client
// counts while it tries again every 100 ms, for at most 10 s.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <thread>

#include "common/cli.h"
#include "helloworld/greeter.micro.h"

namespace {

absl::Status SayHello(helloworld::Greeter::Stub& stub, const std::string& name,
                      std::string* message) {
  micro::ClientContext context;
  context.set_timeout(absl::Seconds(1));
  helloworld::HelloRequest request;
  request.set_name(name);
  helloworld::HelloReply reply;
  absl::Status status = stub.SayHello(&context, request, &reply);
  *message = reply.message();
  return status;
}

}  // namespace

int main(int argc, char** argv) {
  auto flags = micro::examples::ParseFlags(argc, argv, {{"name", "cluster"}});
  // --nats may list several servers, comma-separated; one is enough, as
  // the server tells its clients about the other nodes of its cluster.
  auto transport = micro::examples::ConnectOrExit(flags["nats"], "cluster_client");
  auto stub = helloworld::Greeter::NewStub(std::make_shared<micro::Client>(transport));

  std::string message;
  if (absl::Status status = SayHello(*stub, flags["name"], &message); !status.ok()) {
    std::fprintf(stderr, "cluster_client: before: %s\n", status.ToString().c_str());
    return 1;
  }
  std::printf("before: %s\n", message.c_str());

  micro::examples::WaitForEnter("cluster_client: kill the service's node, then press Enter");
  auto start = std::chrono::steady_clock::now();
  std::map<std::string, int> failures;  // By status: code and message.
  int failed = 0;
  bool answered = false;
  for (int attempt = 0; attempt < 100 && !answered; ++attempt) {
    absl::Status status = SayHello(*stub, flags["name"], &message);
    answered = status.ok();
    if (!answered) {
      ++failed;
      ++failures[status.ToString()];
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  for (const auto& [error, count] : failures) {
    std::printf("after: %d calls failed with %s\n", count, error.c_str());
  }
  if (!answered) {
    std::fprintf(stderr, "cluster_client: no call succeeded within 100 tries\n");
    return 1;
  }
  std::printf("after: %s (%d failed calls before it, %.2f s after Enter)\n", message.c_str(),
              failed,
              std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  return 0;
}
