// Subscribes to shop.orders.placed and prints each order it handles, until
// SIGINT or SIGTERM; then it drains (handles every event already received)
// and prints how many it handled.
//
// With --queue_group, it is one of the workers sharing the orders: each
// order reaches exactly one subscriber of the group, in whichever process.
// Without, it gets every order, like the audit log that prints metadata.
#include <cstdio>
#include <string>

#include "common/cli.h"
#include "micro/broker.h"
#include "shop/orders.pb.h"

int main(int argc, char** argv) {
  micro::examples::BlockStopSignals();
  auto flags = micro::examples::ParseFlags(argc, argv, {{"name", "audit"}, {"queue_group", ""}});
  const std::string name = flags["name"];
  auto transport = micro::examples::ConnectOrExit(flags["nats"], name.c_str());
  auto broker = micro::examples::OrExit(micro::NewNatsBroker(transport), name);

  const bool audit = flags["queue_group"].empty();
  // Runs on the broker's executor, one event at a time, in order.
  auto print_order = [&](const shop::OrderPlaced& order, const micro::EventContext& context) {
    std::string line = name + ": order " + std::to_string(order.order_id()) + " (" +
                       std::to_string(order.quantity()) + " " + order.item() + ")";
    if (audit) {
      for (const auto& [key, value] : context.metadata) line += " " + key + "=" + value;
    }
    std::printf("%s\n", line.c_str());
    std::fflush(stdout);
    return absl::OkStatus();
  };
  micro::SubscribeOptions options;
  options.queue_group = flags["queue_group"];
  auto subscription = micro::examples::OrExit(
      broker->Subscribe<shop::OrderPlaced>("shop.orders.placed", print_order, options), name);
  std::printf("%s: serving on %s, subscribed to shop.orders.placed%s%s\n", name.c_str(),
              flags["nats"].c_str(), audit ? "" : " in queue group ", options.queue_group.c_str());
  std::fflush(stdout);

  micro::examples::WaitForStopSignal();
  subscription->Unsubscribe();
  micro::SubscriptionStats stats = subscription->stats();
  std::printf("%s: stopped; handled %lld orders, dropped %lld\n", name.c_str(),
              static_cast<long long>(stats.handled), static_cast<long long>(stats.dropped));
  return 0;
}
