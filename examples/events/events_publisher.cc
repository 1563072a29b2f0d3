// Publishes --count shop.OrderPlaced events to shop.orders.placed, each with
// metadata (plain NATS headers) that subscribers read besides the event.
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/cli.h"
#include "micro/broker.h"
#include "shop/orders.pb.h"

int main(int argc, char** argv) {
  auto flags = micro::examples::ParseFlags(argc, argv, {{"count", "20"}});
  const int count = std::atoi(flags["count"].c_str());
  auto transport = micro::examples::ConnectOrExit(flags["nats"], "events_publisher");
  auto broker = micro::examples::OrExit(micro::NewNatsBroker(transport), "events_publisher");
  const char* items[] = {"tea", "coffee", "cocoa"};
  for (int i = 1; i <= count; ++i) {
    shop::OrderPlaced order;
    order.set_order_id(i);
    order.set_item(items[i % 3]);
    order.set_quantity(1 + i % 4);
    micro::Metadata metadata = {{"x-source", "events_publisher"},
                                {"x-request-id", absl::StrCat("req-", i)}};
    // At most once, like NATS: OK means written to the connection, not
    // received; subscribers that are not subscribed yet miss it.
    if (absl::Status status = broker->Publish("shop.orders.placed", order, metadata);
        !status.ok()) {
      std::fprintf(stderr, "events_publisher: order %d: %s\n", i, status.ToString().c_str());
      return 1;
    }
  }
  std::printf("events_publisher: published %d orders to shop.orders.placed\n", count);
  return 0;
}
