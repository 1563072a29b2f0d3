// A test fixture with a nats-server of its own (started on a free loopback
// port, stopped with the test) and one connection to it.
#ifndef MICRO_TESTS_SUPPORT_NATS_TEST_H_
#define MICRO_TESTS_SUPPORT_NATS_TEST_H_

#include <gtest/gtest.h>

#include <memory>
#include <utility>

#include "micro/transport.h"
#include "support/echo_instance.h"
#include "support/nats_server.h"

namespace micro::testing {

class NatsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto nats = NatsServer::Start();
    ASSERT_TRUE(nats.ok()) << nats.status();
    nats_ = *std::move(nats);
    auto transport = ConnectTo(nats_->url());
    ASSERT_TRUE(transport.ok()) << transport.status();
    transport_ = *std::move(transport);
  }

  std::unique_ptr<NatsServer> nats_;
  std::shared_ptr<Transport> transport_;
};

}  // namespace micro::testing

#endif  // MICRO_TESTS_SUPPORT_NATS_TEST_H_
