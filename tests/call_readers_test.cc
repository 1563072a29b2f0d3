// The server's reader threads (runtime/src/server/call_readers.h) against a
// real nats-server: calls run where they are read, a slow one hands the
// reading to another thread, and Stop hands over everything received.
#include "server/call_readers.h"

#include <gtest/gtest.h>

#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "micro/transport.h"
#include "support/nats_test.h"
#include "util/notification.h"

namespace micro::internal {
namespace {

constexpr char kSubject[] = "readers.test";

// What a callback saw of one message.
struct Seen {
  std::string data;
  bool run_here;
  std::thread::id thread;
};

class CallReadersTest : public testing::NatsTest {
 protected:
  // Reads kSubject; a message "slow" blocks its callback until release_.
  // Returns the subscription, which `readers` owns.
  PullSubscription* Read(CallReaders& readers) {
    auto subscription = transport_->SubscribePull(kSubject, "");
    EXPECT_TRUE(subscription.ok()) << subscription.status();
    if (!subscription.ok()) return nullptr;
    PullSubscription* raw = subscription->get();
    readers.Add(*std::move(subscription), [this](WireMessage message, bool run_here) {
      {
        std::lock_guard lock(mu_);
        seen_.push_back(Seen{message.data, run_here, std::this_thread::get_id()});
      }
      if (message.data == "slow") {
        slow_started_.Notify();
        EXPECT_TRUE(release_.WaitForNotificationWithTimeout(absl::Seconds(20)));
      }
    });
    return raw;
  }

  void Publish(const std::string& data) {
    ASSERT_TRUE(transport_->Publish(WireMessage{kSubject, "", {}, data}).ok());
  }

  // Publishes "slow" and, once its callback blocks, "fast"; returns once a
  // callback has seen "fast" too.
  void SlowThenFast() {
    Publish("slow");
    ASSERT_TRUE(slow_started_.WaitForNotificationWithTimeout(absl::Seconds(10)));
    Publish("fast");
    ASSERT_TRUE(WaitForSeen(2));
  }

  // Waits (up to 10 s) until the callbacks have seen `count` messages.
  bool WaitForSeen(size_t count) {
    for (int i = 0; i < 2000; ++i) {
      {
        std::lock_guard lock(mu_);
        if (seen_.size() >= count) return true;
      }
      absl::SleepFor(absl::Milliseconds(5));
    }
    return false;
  }

  std::vector<Seen> seen() {
    std::lock_guard lock(mu_);
    return seen_;
  }

  Notification slow_started_;
  Notification release_;
  std::mutex mu_;
  std::vector<Seen> seen_;
};

TEST_F(CallReadersTest, OneCallAtATimeRunsOnTheThreadThatReadIt) {
  CallReaders readers(absl::Milliseconds(2), 2);
  ASSERT_NE(Read(readers), nullptr);
  for (int i = 0; i < 5; ++i) {
    Publish(absl::StrCat("call-", i));
    ASSERT_TRUE(WaitForSeen(i + 1));
  }
  std::vector<Seen> calls = seen();
  for (const Seen& call : calls) {
    EXPECT_TRUE(call.run_here) << call.data;
    EXPECT_EQ(call.thread, calls.front().thread) << call.data;
  }
}

TEST_F(CallReadersTest, ASlowCallHandsTheReadingToAnotherThread) {
  CallReaders readers(absl::Milliseconds(2), 2);
  ASSERT_NE(Read(readers), nullptr);
  // "fast" is read and run while the slow call still blocks.
  ASSERT_NO_FATAL_FAILURE(SlowThenFast());
  std::vector<Seen> calls = seen();
  EXPECT_EQ(calls[1].data, "fast");
  EXPECT_TRUE(calls[1].run_here);
  EXPECT_NE(calls[1].thread, calls[0].thread);
  release_.Notify();
}

TEST_F(CallReadersTest, BeyondMaxRunningHereCallsMustBeHandedOn) {
  CallReaders readers(absl::Milliseconds(2), 1);
  ASSERT_NE(Read(readers), nullptr);
  ASSERT_NO_FATAL_FAILURE(SlowThenFast());
  EXPECT_TRUE(seen()[0].run_here);
  EXPECT_FALSE(seen()[1].run_here) << "one call already runs on a reader";
  release_.Notify();
}

TEST_F(CallReadersTest, ACallWithOthersWaitingBehindItIsHandedOn) {
  // Never hands off: the calls queue behind the slow one.
  CallReaders readers(absl::Seconds(60), 2);
  PullSubscription* subscription = Read(readers);
  ASSERT_NE(subscription, nullptr);
  Publish("slow");
  ASSERT_TRUE(slow_started_.WaitForNotificationWithTimeout(absl::Seconds(10)));
  Publish("first");
  Publish("second");
  for (int i = 0; i < 2000 && subscription->Pending() < 2; ++i) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  ASSERT_EQ(subscription->Pending(), 2);
  release_.Notify();
  ASSERT_TRUE(WaitForSeen(3));
  std::vector<Seen> calls = seen();
  EXPECT_EQ(calls[1].data, "first");
  EXPECT_FALSE(calls[1].run_here) << "'second' waited behind it";
  EXPECT_EQ(calls[2].data, "second");
  EXPECT_TRUE(calls[2].run_here);
}

// nats.c keeps a "no responders" notice (empty, `Status: 503`) from a
// synchronous subscriber, and says so with an error of its own; anyone may
// send one, and reading goes on.
TEST_F(CallReadersTest, ANoRespondersNoticeDoesNotEndTheReading) {
  CallReaders readers(absl::Milliseconds(2), 2);
  ASSERT_NE(Read(readers), nullptr);
  ASSERT_TRUE(transport_->Publish(WireMessage{kSubject, "", {{"Status", "503"}}, ""}).ok());
  Publish("after");
  ASSERT_TRUE(WaitForSeen(1));
  EXPECT_EQ(seen()[0].data, "after");
}

TEST_F(CallReadersTest, StopHandsEveryReceivedMessageToItsCallbackFirst) {
  constexpr int kMessages = 2000;
  {
    CallReaders readers(absl::Milliseconds(2), 2);
    ASSERT_NE(Read(readers), nullptr);
    for (int i = 0; i < kMessages; ++i) Publish(absl::StrCat(i));
    readers.Stop();
    // Published on the subscription's own connection before the drain, so
    // each one reached it.
    EXPECT_EQ(seen().size(), static_cast<size_t>(kMessages));
  }
  EXPECT_EQ(seen().size(), static_cast<size_t>(kMessages));
}

TEST_F(CallReadersTest, StopWaitsForACallbackThatWasHandedOff) {
  auto readers = std::make_unique<CallReaders>(absl::Milliseconds(2), 2);
  ASSERT_NE(Read(*readers), nullptr);
  ASSERT_NO_FATAL_FAILURE(SlowThenFast());  // Handed off: another thread read "fast".
  Notification stopped;
  std::thread stopper([&] {
    readers->Stop();
    stopped.Notify();
  });
  EXPECT_FALSE(stopped.WaitForNotificationWithTimeout(absl::Milliseconds(200)));
  release_.Notify();
  EXPECT_TRUE(stopped.WaitForNotificationWithTimeout(absl::Seconds(10)));
  stopper.join();
}

}  // namespace
}  // namespace micro::internal
