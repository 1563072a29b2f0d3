// Transport::RequestAndWait against a real nats-server: the NATS transport
// reads the reply of a blocking call that waits alone on the caller's thread
// (docs/PROTOCOL.md, "How the micro client routes replies"), and must still
// hand every call its own reply, and only its own.
#include "micro/transport.h"

#include <gtest/gtest.h>

#include <latch>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "micro/errors.h"
#include "micro/executor.h"
#include "support/nats_test.h"
#include "util/notification.h"

namespace micro {
namespace {

using ::micro::testing::NatsTest;

class RequestAndWaitTest : public NatsTest {
 protected:
  void SetUp() override {
    NatsTest::SetUp();
    TransportOptions options;
    options.url = nats_->url();
    options.max_reconnect_attempts = 20;
    options.reconnect_wait = absl::Milliseconds(100);
    auto responder = ConnectNats(options);
    ASSERT_TRUE(responder.ok()) << responder.status();
    responder_ = *std::move(responder);
  }

  // Answers requests on `subject` with their own data after `delay`, one at
  // a time.
  void Respond(const std::string& subject, absl::Duration delay) {
    std::shared_ptr<Transport> responder = responder_;
    auto subscription =
        responder_->Subscribe(subject, "", [this, responder, delay](WireMessage request) {
          {
            std::lock_guard lock(mu_);
            reply_subjects_.push_back(request.reply);
          }
          absl::SleepFor(delay);
          responder->Publish(WireMessage{request.reply, "", {}, request.data}).IgnoreError();
        });
    ASSERT_TRUE(subscription.ok()) << subscription.status();
    subscriptions_.push_back(*std::move(subscription));
  }

  absl::StatusOr<WireMessage> Call(const std::string& subject, const std::string& data,
                                   absl::Duration timeout) {
    return transport_->RequestAndWait(WireMessage{subject, "", {}, data}, absl::Now() + timeout);
  }

  // The reply subjects of the requests answered so far.
  std::vector<std::string> ReplySubjects() {
    std::lock_guard lock(mu_);
    return reply_subjects_;
  }

  // Makes `calls` calls on each of `threads` threads at once, every tenth
  // to a slower responder; returns how many did not get their own reply.
  int WrongRepliesOfCallsFrom(int threads, int calls) {
    Respond("fast", absl::ZeroDuration());
    Respond("slow", absl::Milliseconds(20));
    std::vector<int> wrong(threads, 0);
    std::vector<std::thread> callers;
    for (int t = 0; t < threads; ++t) {
      callers.emplace_back([&, t] {
        for (int i = 0; i < calls; ++i) {
          std::string data = absl::StrCat(t, "/", i);
          absl::StatusOr<WireMessage> reply =
              Call(i % 10 == 0 ? "slow" : "fast", data, absl::Seconds(30));
          if (!reply.ok() || reply->data != data) ++wrong[t];
        }
      });
    }
    for (std::thread& caller : callers) caller.join();
    int total = 0;
    for (int count : wrong) total += count;
    return total;
  }

  std::shared_ptr<Transport> responder_;
  std::vector<std::unique_ptr<Subscription>> subscriptions_;
  std::mutex mu_;
  std::vector<std::string> reply_subjects_;  // Guarded by mu_.
};

TEST_F(RequestAndWaitTest, ACallThatWaitsAloneGetsItsReplyOnTheSecondInbox) {
  Respond("fast", absl::ZeroDuration());
  for (int i = 0; i < 20; ++i) {
    absl::StatusOr<WireMessage> reply = Call("fast", absl::StrCat("call ", i), absl::Seconds(5));
    ASSERT_TRUE(reply.ok()) << reply.status();
    EXPECT_EQ(reply->data, absl::StrCat("call ", i));
    // `_INBOX.<nuid>.d<g>.<n>` (docs/PROTOCOL.md), not the shared inbox.
    EXPECT_NE(ReplySubjects().back().find(".d1."), std::string::npos) << ReplySubjects().back();
  }
}

TEST_F(RequestAndWaitTest, AReplyThatComesAfterItsCallEndedNeverReachesALaterCall) {
  Respond("slow", absl::Milliseconds(300));
  Respond("later", absl::Milliseconds(600));
  absl::StatusOr<WireMessage> first = Call("slow", "first", absl::Milliseconds(50));
  EXPECT_EQ(first.status().code(), absl::StatusCode::kDeadlineExceeded) << first.status();
  // "first"'s reply arrives while this call waits.
  absl::StatusOr<WireMessage> second = Call("later", "second", absl::Seconds(5));
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->data, "second");
}

TEST_F(RequestAndWaitTest, ANoRespondersNoticeForAnEndedCallIsNotTakenForALaterCalls) {
  Respond("fast", absl::ZeroDuration());
  // Ends at once: nats-server's notice that nobody listens comes after.
  absl::StatusOr<WireMessage> first =
      transport_->RequestAndWait(WireMessage{"nobody.listens", "", {}, "x"}, absl::Now());
  EXPECT_EQ(first.status().code(), absl::StatusCode::kDeadlineExceeded) << first.status();
  absl::StatusOr<WireMessage> second = Call("fast", "second", absl::Seconds(5));
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->data, "second");
}

TEST_F(RequestAndWaitTest, NobodyListeningIsUnavailableAndUnprocessed) {
  absl::StatusOr<WireMessage> reply = Call("nobody.listens", "x", absl::Seconds(30));
  EXPECT_EQ(reply.status().code(), absl::StatusCode::kUnavailable) << reply.status();
  EXPECT_TRUE(IsUnprocessed(reply.status())) << reply.status();
}

TEST_F(RequestAndWaitTest, CallsThatWaitTogetherEachReadTheirOwnInbox) {
  // One request at a time: all are sent before the first is answered.
  Respond("slow", absl::Milliseconds(300));
  constexpr int kThreads = 8;
  std::latch start(kThreads);
  std::vector<std::thread> callers;
  std::vector<absl::Status> outcomes(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    callers.emplace_back([&, t] {
      start.arrive_and_wait();
      outcomes[t] = Call("slow", "x", absl::Seconds(30)).status();
    });
  }
  for (std::thread& caller : callers) caller.join();
  for (const absl::Status& outcome : outcomes) EXPECT_TRUE(outcome.ok()) << outcome;
  // `_INBOX.<nuid>.d<g>.<n>`: a subscription of its own for each.
  std::set<std::string> inboxes;
  for (const std::string& subject : ReplySubjects()) {
    size_t d = subject.find(".d");
    ASSERT_NE(d, std::string::npos) << subject;
    inboxes.insert(subject.substr(0, subject.find('.', d + 1)));
  }
  EXPECT_EQ(inboxes.size(), kThreads);
}

TEST_F(RequestAndWaitTest, CallsFromManyThreadsEachGetTheirOwnReply) {
  EXPECT_EQ(WrongRepliesOfCallsFrom(8, 100), 0);
}

// More than the transport has inboxes for: the rest wait on the shared one.
TEST_F(RequestAndWaitTest, CallsFromMoreThreadsThanInboxesEachGetTheirOwnReply) {
  EXPECT_EQ(WrongRepliesOfCallsFrom(80, 10), 0);
}

TEST_F(RequestAndWaitTest, LosingTheConnectionEndsTheWaitWithUnavailableAndCallsWorkAfter) {
  Respond("slow", absl::Seconds(2));
  Respond("fast", absl::ZeroDuration());
  std::thread killer([this] {
    absl::SleepFor(absl::Milliseconds(200));
    nats_->Kill();
  });
  // Without the connection the reply cannot come: the call ends then, not
  // at its deadline.
  absl::StatusOr<WireMessage> cut = Call("slow", "cut", absl::Seconds(60));
  killer.join();
  EXPECT_EQ(cut.status().code(), absl::StatusCode::kUnavailable) << cut.status();

  auto restarted = testing::NatsServer::Start({}, nats_->port());
  ASSERT_TRUE(restarted.ok()) << restarted.status();
  nats_ = *std::move(restarted);
  absl::StatusOr<WireMessage> after;
  for (int i = 0; i < 100; ++i) {  // Until both connections are back.
    after = Call("fast", "after", absl::Milliseconds(500));
    if (after.ok()) break;
    absl::SleepFor(absl::Milliseconds(100));
  }
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(after->data, "after");
}

// A pool task that starts while another is queued holds back what it
// publishes (util/write_batch.h). If the task after it blocks, that thread
// writes nothing until the task returns; the socket loop's backstop must.
TEST_F(NatsTest, APublishHeldBackReachesItsSubscriberWhileTheNextTaskBlocks) {
  internal::Notification arrived;
  auto subscription =
      transport_->Subscribe("held", "", [&arrived](WireMessage) { arrived.Notify(); });
  ASSERT_TRUE(subscription.ok()) << subscription.status();
  std::shared_ptr<Executor> pool = NewThreadPoolExecutor(1);
  std::latch queued(1);
  internal::Notification blocked_task_done;
  bool arrived_while_blocked = false;
  pool->Schedule([&queued] { queued.wait(); });  // Lets the next two queue up.
  pool->Schedule([this] {
    EXPECT_TRUE(transport_->Publish(WireMessage{"held", "", {}, "x"}).ok());
  });
  pool->Schedule([&] {
    arrived_while_blocked = arrived.WaitForNotificationWithTimeout(absl::Seconds(10));
    blocked_task_done.Notify();
  });
  queued.count_down();
  ASSERT_TRUE(blocked_task_done.WaitForNotificationWithTimeout(absl::Seconds(30)));
  EXPECT_TRUE(arrived_while_blocked);
  (*subscription).reset();
}

// TransportOptions::batch_writes off: nats.c's own reader thread and a write
// per publish, as over TLS. Replies, async and blocking, still arrive.
TEST_F(NatsTest, WithoutBatchedWritesCallsStillGetTheirReplies) {
  TransportOptions options;
  options.url = nats_->url();
  options.batch_writes = false;
  auto responder = ConnectNats(options);
  auto caller = ConnectNats(options);
  ASSERT_TRUE(responder.ok()) << responder.status();
  ASSERT_TRUE(caller.ok()) << caller.status();
  std::shared_ptr<Transport> replier = *responder;
  auto subscription = replier->Subscribe("echo", "", [replier](WireMessage request) {
    replier->Publish(WireMessage{request.reply, "", {}, request.data}).IgnoreError();
  });
  ASSERT_TRUE(subscription.ok()) << subscription.status();
  absl::StatusOr<WireMessage> blocking = (*caller)->RequestAndWait(
      WireMessage{"echo", "", {}, "blocking"}, absl::Now() + absl::Seconds(10));
  ASSERT_TRUE(blocking.ok()) << blocking.status();
  EXPECT_EQ(blocking->data, "blocking");
  internal::Notification done;
  absl::StatusOr<WireMessage> async;
  (*caller)->Request(WireMessage{"echo", "", {}, "async"}, absl::Now() + absl::Seconds(10),
                     [&](absl::StatusOr<WireMessage> reply) {
                       async = std::move(reply);
                       done.Notify();
                     });
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(20)));
  ASSERT_TRUE(async.ok()) << async.status();
  EXPECT_EQ(async->data, "async");
  (*subscription).reset();
}

}  // namespace
}  // namespace micro
