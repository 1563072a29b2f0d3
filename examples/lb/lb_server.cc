// One instance of lb.Backend. Start several, each with its own --instance
// name: NATS and client-side selectors spread calls over them. --delay_ms
// makes an instance slow, which the least-outstanding strategy notices.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <utility>

#include "common/cli.h"
#include "lb/backend.micro.h"

namespace {

class BackendHandler final : public lb::Backend::Handler {
 public:
  BackendHandler(std::string instance, std::string server_id, int delay_ms)
      : instance_(std::move(instance)), server_id_(std::move(server_id)), delay_ms_(delay_ms) {}

  absl::Status Work(micro::ServerContext*, const lb::WorkRequest* request,
                    lb::WorkReply* reply) override {
    // Handlers run on the server's executor, so sleeping here holds one of
    // its threads, not NATS's delivery thread.
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms_));
    reply->set_job(request->job());
    reply->set_instance(instance_);
    reply->set_server_id(server_id_);
    return absl::OkStatus();
  }

 private:
  const std::string instance_;
  const std::string server_id_;
  const int delay_ms_;
};

}  // namespace

int main(int argc, char** argv) {
  micro::examples::BlockStopSignals();
  auto flags = micro::examples::ParseFlags(argc, argv, {{"instance", "a"}, {"delay_ms", "0"}});
  std::string label = "lb_server " + flags["instance"];
  auto transport = micro::examples::ConnectOrExit(flags["nats"], label.c_str());
  micro::ServerOptions options;
  // Instance metadata travels in discovery (INFO, announcements): the client
  // uses it to name the instances it sees come and go.
  options.metadata["instance"] = flags["instance"];
  micro::Server server(transport, options);
  BackendHandler handler(flags["instance"], server.id(), std::atoi(flags["delay_ms"].c_str()));
  if (absl::Status status = lb::RegisterBackendHandler(server, handler); !status.ok()) {
    std::fprintf(stderr, "%s: %s\n", label.c_str(), status.ToString().c_str());
    return 1;
  }
  micro::examples::ServeUntilStopped(server, label.c_str(), flags["nats"]);
  return 0;
}
