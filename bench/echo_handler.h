// The micro Echo handler of the benchmarks: answers with the request's
// payload, the same work as the raw nats.c and gRPC servers they compare.
#ifndef MICRO_BENCH_ECHO_HANDLER_H_
#define MICRO_BENCH_ECHO_HANDLER_H_

#include "micro/micro.h"
#include "micro/testing/echo.micro.h"

namespace micro::bench {

class PayloadEchoHandler final : public micro::testing::Echo::Handler {
 public:
  absl::Status Echo(ServerContext*, const micro::testing::EchoRequest* request,
                    micro::testing::EchoReply* reply) override {
    reply->set_payload(request->payload());
    return absl::OkStatus();
  }
  absl::Status Ping(ServerContext*, const micro::testing::EchoRequest*,
                    micro::testing::EchoReply*) override {
    return absl::OkStatus();
  }
};

}  // namespace micro::bench

#endif  // MICRO_BENCH_ECHO_HANDLER_H_
