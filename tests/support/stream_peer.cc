// A separate process for tests that kill a stream's peer with SIGKILL.
//   stream_peer server <nats-url> <subject>  accepts streams on <subject> and
//                                           echoes every message, for ever
//   stream_peer client <nats-url> <subject>  opens one stream to <subject> and
//                                           sends a message every 10 ms, for ever
// Both print "ready" once set up. Heartbeats every 100 ms.
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <thread>

#include "micro/transport.h"

namespace {

constexpr absl::Duration kHeartbeat = absl::Milliseconds(100);

int Fail(const absl::Status& status) {
  std::fprintf(stderr, "stream_peer: %s\n", status.ToString().c_str());
  return 1;
}

int Serve(const std::shared_ptr<micro::Transport>& transport, const std::string& subject) {
  auto subscription = transport->Subscribe(subject, "", [transport](micro::WireMessage open) {
    auto socket = transport->Accept(open, {});
    if (!socket.ok()) return;
    std::thread([socket = *std::move(socket)]() mutable {
      std::string message;
      while (socket->Recv(&message).ok()) {
        if (!socket->Send(message).ok()) return;
      }
    }).detach();
  });
  if (!subscription.ok()) return Fail(subscription.status());
  std::printf("ready\n");
  std::fflush(stdout);
  while (true) std::this_thread::sleep_for(std::chrono::seconds(1));
}

int Send(const std::shared_ptr<micro::Transport>& transport, const std::string& subject) {
  micro::WireMessage open;
  open.subject = subject;
  auto socket = transport->Dial(open, {});
  if (!socket.ok()) return Fail(socket.status());
  std::printf("ready\n");
  std::fflush(stdout);
  while (true) {
    if (absl::Status sent = (*socket)->Send("tick"); !sent.ok()) return Fail(sent);
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: stream_peer server|client <nats-url> <subject>\n");
    return 2;
  }
  micro::TransportOptions options;
  options.url = argv[2];
  options.stream_heartbeat = kHeartbeat;
  auto transport = micro::ConnectNats(options);
  if (!transport.ok()) return Fail(transport.status());
  return std::strcmp(argv[1], "server") == 0 ? Serve(*transport, argv[3])
                                             : Send(*transport, argv[3]);
}
