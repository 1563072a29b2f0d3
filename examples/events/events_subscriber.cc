// An events service: subscribes to shop.orders.placed and prints each order
// it handles, until SIGINT or SIGTERM; then it stops, handling every event
// already received, and prints how many it handled.
//
// The subscription is part of a micro::Server, so the instance's INFO lists
// it (`micro describe <service>` shows its topic, queue group and type).
// With --queue_group, the server is an instance of the service of that
// name, and its instances share the orders: each order reaches exactly one
// of them, in whichever process. Without, it is the `audit` service, which
// gets every order and prints its metadata too.
#include <atomic>
#include <cstdio>
#include <string>

#include "common/cli.h"
#include "micro/broker.h"
#include "micro/server.h"
#include "shop/orders.pb.h"

int main(int argc, char** argv) {
  micro::examples::BlockStopSignals();
  auto flags = micro::examples::ParseFlags(argc, argv, {{"name", "audit"}, {"queue_group", ""}});
  const std::string name = flags["name"];
  const std::string queue_group = flags["queue_group"];
  const bool audit = queue_group.empty();
  auto transport = micro::examples::ConnectOrExit(flags["nats"], name.c_str());

  micro::ServerOptions server_options;
  server_options.name = audit ? "audit" : queue_group;
  micro::Server server(transport, server_options);
  std::atomic<int> handled{0};
  // Runs on the server's executor, one event at a time, in order.
  auto print_order = [&](const shop::OrderPlaced& order, const micro::EventContext& context) {
    std::string line = name + ": order " + std::to_string(order.order_id()) + " (" +
                       std::to_string(order.quantity()) + " " + order.item() + ")";
    if (audit) {
      for (const auto& [key, value] : context.metadata) line += " " + key + "=" + value;
    }
    std::printf("%s\n", line.c_str());
    std::fflush(stdout);
    ++handled;
    return absl::OkStatus();
  };
  micro::SubscribeOptions options;
  options.queue_group = queue_group;
  if (absl::Status status =
          server.RegisterSubscriber<shop::OrderPlaced>("shop.orders.placed", print_order, options);
      !status.ok()) {
    std::fprintf(stderr, "%s: %s\n", name.c_str(), status.ToString().c_str());
    return 1;
  }
  std::printf("%s: an instance of service %s, subscribing to shop.orders.placed%s%s\n",
              name.c_str(), server_options.name.c_str(), audit ? "" : " in queue group ",
              queue_group.c_str());
  micro::examples::ServeUntilStopped(server, name.c_str(), flags["nats"]);
  std::printf("%s: stopped; handled %d orders\n", name.c_str(), handled.load());
  return 0;
}
