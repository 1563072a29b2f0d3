// The broker end to end through a real nats-server: typed publish and
// subscribe, broadcast and queue groups, metadata, interoperability with plain
// nats.c, bad input, handler failures, pending limits and drain on shutdown.
#include "micro/broker.h"

#include <gtest/gtest.h>
#include <nats/nats.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "micro/micro.h"
#include "micro/testing/events.pb.h"
#include "support/nats_server.h"
#include "util/notification.h"

namespace micro {
namespace {

using ::micro::testing::NatsServer;
using ::micro::testing::TestEvent;

constexpr absl::Duration kWaitLimit = absl::Seconds(20);

// Polls `done` until it holds or kWaitLimit passes; its last value.
template <typename Predicate>
bool WaitFor(Predicate done) {
  absl::Time give_up = absl::Now() + kWaitLimit;
  while (!done()) {
    if (absl::Now() > give_up) return false;
    absl::SleepFor(absl::Milliseconds(2));
  }
  return true;
}

TestEvent Event(int64_t sequence, std::string text = "") {
  TestEvent event;
  event.set_sequence(sequence);
  event.set_text(std::move(text));
  return event;
}

// Everything a subscription's handler and error handler saw.
struct Recorder {
  std::mutex mu;
  std::vector<int64_t> sequences;
  std::vector<EventContext> contexts;
  std::vector<std::string> texts;
  std::vector<absl::Status> errors;
  std::vector<WireMessage> failed_messages;

  std::function<absl::Status(const TestEvent&, const EventContext&)> Handler() {
    return [this](const TestEvent& event, const EventContext& context) {
      std::lock_guard lock(mu);
      sequences.push_back(event.sequence());
      texts.push_back(event.text());
      contexts.push_back(context);
      return absl::OkStatus();
    };
  }

  EventErrorHandler OnError() {
    return [this](std::string_view topic, const absl::Status& reason, const WireMessage& message) {
      std::lock_guard lock(mu);
      EXPECT_EQ(topic, message.subject);
      errors.push_back(reason);
      failed_messages.push_back(message);
    };
  }

  std::vector<int64_t> Sequences() {
    std::lock_guard lock(mu);
    return sequences;
  }
};

std::vector<int64_t> Range(int64_t n) {
  std::vector<int64_t> out;
  for (int64_t i = 0; i < n; ++i) out.push_back(i);
  return out;
}

class BrokerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto nats = NatsServer::Start();
    ASSERT_TRUE(nats.ok()) << nats.status();
    nats_ = *std::move(nats);
    publisher_transport_ = Connect();
    ASSERT_NE(publisher_transport_, nullptr);
    publisher_ = NewBroker(publisher_transport_);
    ASSERT_NE(publisher_, nullptr);
  }

  std::shared_ptr<Transport> Connect() {
    TransportOptions options;
    options.url = nats_->url();
    auto transport = ConnectNats(options);
    EXPECT_TRUE(transport.ok()) << transport.status();
    return transport.ok() ? *transport : nullptr;
  }

  // A broker on its own connection, as another process would have.
  std::unique_ptr<Broker> NewBroker(std::shared_ptr<Transport> transport = nullptr,
                                    BrokerOptions options = {}) {
    if (transport == nullptr) transport = Connect();
    auto broker = NewNatsBroker(std::move(transport), std::move(options));
    EXPECT_TRUE(broker.ok()) << broker.status();
    return broker.ok() ? *std::move(broker) : nullptr;
  }

  // Returns once the server has routed everything published so far on
  // `transport` to the subscribers' connections: it processes a connection's
  // messages in order, and answers this request (nobody subscribes to it)
  // with "no responders" only after the earlier ones. A subscription drained
  // afterwards receives all of them.
  static void RoutedBarrier(Transport& transport) {
    absl::Status outcome = transport
                               .RequestAndWait(WireMessage{"broker_test.barrier", "", {}, ""},
                                               absl::Now() + absl::Seconds(10))
                               .status();
    ASSERT_EQ(outcome.code(), absl::StatusCode::kUnavailable) << outcome;
  }

  void PublishRange(std::string_view topic, int64_t n) {
    for (int64_t i = 0; i < n; ++i) {
      absl::Status status = publisher_->Publish(topic, Event(i));
      ASSERT_TRUE(status.ok()) << status;
    }
    RoutedBarrier(*publisher_transport_);
  }

  std::unique_ptr<NatsServer> nats_;
  std::shared_ptr<Transport> publisher_transport_;
  std::unique_ptr<Broker> publisher_;
};

TEST_F(BrokerTest, BroadcastReachesEverySubscriberInOrder) {
  constexpr int kSubscribers = 3;
  constexpr int kEvents = 500;
  std::vector<std::unique_ptr<Broker>> brokers;
  std::vector<std::unique_ptr<Recorder>> recorders;
  std::vector<std::unique_ptr<EventSubscription>> subscriptions;
  for (int i = 0; i < kSubscribers; ++i) {
    brokers.push_back(NewBroker());
    recorders.push_back(std::make_unique<Recorder>());
    auto subscription =
        brokers.back()->Subscribe<TestEvent>("orders.created", recorders.back()->Handler());
    ASSERT_TRUE(subscription.ok()) << subscription.status();
    subscriptions.push_back(*std::move(subscription));
  }
  PublishRange("orders.created", kEvents);
  for (int i = 0; i < kSubscribers; ++i) {
    subscriptions[i]->Unsubscribe();
    EXPECT_EQ(recorders[i]->Sequences(), Range(kEvents)) << "subscriber " << i;
    SubscriptionStats stats = subscriptions[i]->stats();
    EXPECT_EQ(stats.received, kEvents);
    EXPECT_EQ(stats.handled, kEvents);
    EXPECT_EQ(stats.dropped, 0);
  }
}

TEST_F(BrokerTest, QueueGroupDeliversEachEventToExactlyOneMember) {
  constexpr int kMembers = 3;
  constexpr int kEvents = 5000;
  std::vector<std::unique_ptr<Broker>> brokers;
  std::vector<std::unique_ptr<Recorder>> recorders;
  std::vector<std::unique_ptr<EventSubscription>> members;
  SubscribeOptions options;
  options.queue_group = "billing";
  for (int i = 0; i < kMembers; ++i) {
    brokers.push_back(NewBroker());
    recorders.push_back(std::make_unique<Recorder>());
    auto member =
        brokers.back()->Subscribe<TestEvent>("jobs.run", recorders.back()->Handler(), options);
    ASSERT_TRUE(member.ok()) << member.status();
    members.push_back(*std::move(member));
  }
  // A plain subscription next to the group still sees every event.
  Recorder observer;
  auto observing = brokers[0]->Subscribe<TestEvent>("jobs.run", observer.Handler());
  ASSERT_TRUE(observing.ok()) << observing.status();

  PublishRange("jobs.run", kEvents);
  std::vector<int> times_delivered(kEvents, 0);
  int64_t total_handled = 0;
  for (int i = 0; i < kMembers; ++i) {
    members[i]->Unsubscribe();
    std::vector<int64_t> got = recorders[i]->Sequences();
    EXPECT_GT(got.size(), 0u) << "member " << i << " got nothing";
    for (int64_t sequence : got) {
      ASSERT_TRUE(sequence >= 0 && sequence < kEvents) << sequence;
      ++times_delivered[sequence];
    }
    EXPECT_EQ(members[i]->stats().dropped, 0);
    total_handled += members[i]->stats().handled;
  }
  EXPECT_EQ(total_handled, kEvents);
  for (int i = 0; i < kEvents; ++i) {
    ASSERT_EQ(times_delivered[i], 1) << "event " << i;
  }
  (*observing)->Unsubscribe();
  EXPECT_EQ(observer.Sequences(), Range(kEvents));
}

TEST_F(BrokerTest, MetadataTopicAndContentTypeReachTheHandler) {
  auto subscriber = NewBroker();
  Recorder recorder;
  auto subscription = subscriber->Subscribe<TestEvent>("metrics.>", recorder.Handler());
  ASSERT_TRUE(subscription.ok()) << subscription.status();

  Metadata metadata = {{"x-request-id", "42"}, {"tenant", "a"}, {"tenant", "b"}};
  ASSERT_TRUE(publisher_->Publish("metrics.cpu.load", Event(1, "proto"), metadata).ok());
  BrokerOptions json_options;
  json_options.content_type = "application/json";
  auto json_publisher = NewBroker(publisher_transport_, json_options);
  ASSERT_TRUE(json_publisher->Publish("metrics.disk", Event(2, "json")).ok());
  RoutedBarrier(*publisher_transport_);
  (*subscription)->Unsubscribe();

  std::lock_guard lock(recorder.mu);
  ASSERT_EQ(recorder.contexts.size(), 2u);
  EXPECT_EQ(recorder.contexts[0].topic, "metrics.cpu.load");
  EXPECT_EQ(recorder.contexts[0].content_type, "") << "protobuf goes without a Content-Type";
  EXPECT_EQ(recorder.contexts[0].metadata, metadata);
  EXPECT_EQ(recorder.texts[0], "proto");
  EXPECT_EQ(recorder.contexts[1].topic, "metrics.disk");
  EXPECT_EQ(recorder.contexts[1].content_type, "application/json");
  EXPECT_TRUE(recorder.contexts[1].metadata.empty());
  EXPECT_EQ(recorder.sequences[1], 2);
  EXPECT_EQ(recorder.texts[1], "json");
}

TEST_F(BrokerTest, InvalidMetadataIsRejectedAndNothingIsSent) {
  auto subscriber = NewBroker();
  Recorder recorder;
  auto subscription = subscriber->Subscribe<TestEvent>("audit", recorder.Handler());
  ASSERT_TRUE(subscription.ok()) << subscription.status();
  for (const Metadata& bad :
       {Metadata{{"Upper", "v"}}, Metadata{{"micro-status", "0"}}, Metadata{{"nats-msg-id", "1"}},
        Metadata{{"ok", "line\nbreak"}}, Metadata{{"", "empty key"}}}) {
    absl::Status status = publisher_->Publish("audit", Event(1), bad);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  }
  RoutedBarrier(*publisher_transport_);
  (*subscription)->Unsubscribe();
  EXPECT_EQ((*subscription)->stats().received, 0);
}

// No envelope: a plain nats.c subscriber reads the event as is.
TEST_F(BrokerTest, PlainNatsSubscriberReadsOurEvent) {
  natsConnection* connection = nullptr;
  ASSERT_EQ(natsConnection_ConnectTo(&connection, nats_->url().c_str()), NATS_OK);
  natsSubscription* raw = nullptr;
  ASSERT_EQ(natsConnection_SubscribeSync(&raw, connection, "audit.>"), NATS_OK);
  ASSERT_EQ(natsConnection_Flush(connection), NATS_OK);

  TestEvent event = Event(7, "login");
  ASSERT_TRUE(publisher_->Publish("audit.login", event, {{"x-request-id", "42"}}).ok());
  natsMsg* msg = nullptr;
  ASSERT_EQ(natsSubscription_NextMsg(&msg, raw, 10000), NATS_OK);
  EXPECT_STREQ(natsMsg_GetSubject(msg), "audit.login");
  const char* value = nullptr;
  ASSERT_EQ(natsMsgHeader_Get(msg, "x-request-id", &value), NATS_OK);
  EXPECT_STREQ(value, "42");
  // Protobuf, the default, needs no Content-Type.
  EXPECT_EQ(natsMsgHeader_Get(msg, "Content-Type", &value), NATS_NOT_FOUND);
  EXPECT_EQ(std::string(natsMsg_GetData(msg), natsMsg_GetDataLength(msg)),
            event.SerializeAsString());
  natsMsg_Destroy(msg);

  BrokerOptions json_options;
  json_options.content_type = "application/json";
  auto json_publisher = NewBroker(publisher_transport_, json_options);
  ASSERT_TRUE(json_publisher->Publish("audit.logout", event).ok());
  ASSERT_EQ(natsSubscription_NextMsg(&msg, raw, 10000), NATS_OK);
  ASSERT_EQ(natsMsgHeader_Get(msg, "Content-Type", &value), NATS_OK);
  EXPECT_STREQ(value, "application/json");
  EXPECT_EQ(std::string(natsMsg_GetData(msg), natsMsg_GetDataLength(msg)),
            R"({"sequence":"7","text":"login"})");
  natsMsg_Destroy(msg);
  natsSubscription_Destroy(raw);
  natsConnection_Destroy(connection);
}

TEST_F(BrokerTest, PlainNatsPublisherWithoutHeadersReachesTypedSubscriber) {
  auto subscriber = NewBroker();
  Recorder recorder;
  auto subscription = subscriber->Subscribe<TestEvent>("audit.raw", recorder.Handler());
  ASSERT_TRUE(subscription.ok()) << subscription.status();
  natsConnection* connection = nullptr;
  ASSERT_EQ(natsConnection_ConnectTo(&connection, nats_->url().c_str()), NATS_OK);
  std::string body = Event(9, "from nats.c").SerializeAsString();
  ASSERT_EQ(
      natsConnection_Publish(connection, "audit.raw", body.data(), static_cast<int>(body.size())),
      NATS_OK);
  ASSERT_EQ(natsConnection_Flush(connection), NATS_OK);
  natsConnection_Destroy(connection);
  ASSERT_TRUE(WaitFor([&] { return (*subscription)->stats().handled == 1; }));
  std::lock_guard lock(recorder.mu);
  EXPECT_EQ(recorder.sequences, std::vector<int64_t>{9});
  EXPECT_EQ(recorder.texts[0], "from nats.c");
  EXPECT_EQ(recorder.contexts[0].content_type, "");
}

TEST_F(BrokerTest, MalformedEventsGoToTheErrorHandlerAndTheSubscriptionGoesOn) {
  auto subscriber = NewBroker();
  Recorder recorder;
  SubscribeOptions options;
  options.on_error = recorder.OnError();
  auto subscription = subscriber->Subscribe<TestEvent>("inbound", recorder.Handler(), options);
  ASSERT_TRUE(subscription.ok()) << subscription.status();

  const std::string garbage("\xff\xff\xff\xff\x0f", 5);
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"application/protobuf", garbage},
      {"application/json", "{\"sequence\": "},
      {"application/json", "{\"no_such_field\": 1}"},
      {"text/xml", "<event/>"},
  };
  for (const auto& [content_type, body] : bad) {
    WireMessage message{"inbound", "", {{"Content-Type", content_type}}, body};
    ASSERT_TRUE(publisher_transport_->Publish(message).ok());
  }
  ASSERT_TRUE(publisher_->Publish("inbound", Event(5, "valid")).ok());
  RoutedBarrier(*publisher_transport_);
  (*subscription)->Unsubscribe();

  SubscriptionStats stats = (*subscription)->stats();
  EXPECT_EQ(stats.received, 5);
  EXPECT_EQ(stats.decode_errors, 4);
  EXPECT_EQ(stats.handled, 1);
  std::lock_guard lock(recorder.mu);
  EXPECT_EQ(recorder.sequences, std::vector<int64_t>{5});
  ASSERT_EQ(recorder.errors.size(), bad.size());
  for (size_t i = 0; i < bad.size(); ++i) {
    EXPECT_EQ(recorder.errors[i].code(), absl::StatusCode::kInvalidArgument) << recorder.errors[i];
    EXPECT_NE(recorder.errors[i].message().find("micro.testing.TestEvent"), std::string::npos)
        << recorder.errors[i];
    EXPECT_EQ(recorder.failed_messages[i].data, bad[i].second);
    EXPECT_EQ(recorder.failed_messages[i].subject, "inbound");
  }
  EXPECT_NE(recorder.errors[3].message().find("text/xml"), std::string::npos) << recorder.errors[3];
}

// nats.c keeps a "no responders" notice (empty, `Status: 503`) from the
// synchronous subscription that a subscriber's own thread reads, and says so
// with an error of its own; anyone may publish one, and the subscription
// goes on.
TEST_F(BrokerTest, ANoRespondersNoticeDoesNotStopTheSubscription) {
  auto subscriber = NewBroker();
  Recorder recorder;
  auto subscription = subscriber->Subscribe<TestEvent>("inbound", recorder.Handler());
  ASSERT_TRUE(subscription.ok()) << subscription.status();
  WireMessage notice{"inbound", "", {{"Status", "503"}}, ""};
  ASSERT_TRUE(publisher_transport_->Publish(notice).ok());
  ASSERT_TRUE(publisher_->Publish("inbound", Event(7)).ok());
  RoutedBarrier(*publisher_transport_);
  (*subscription)->Unsubscribe();
  std::lock_guard lock(recorder.mu);
  EXPECT_EQ(recorder.sequences, std::vector<int64_t>{7});
}

TEST_F(BrokerTest, HandlerErrorsAndExceptionsAreCountedAndReported) {
  auto subscriber = NewBroker();
  std::mutex mu;
  std::vector<absl::Status> errors;
  std::atomic<int> ok_calls{0};
  SubscribeOptions options;
  options.on_error = [&](std::string_view, const absl::Status& reason, const WireMessage&) {
    {
      std::lock_guard lock(mu);
      errors.push_back(reason);
    }
    throw std::runtime_error("the error handler fails too");
  };
  auto subscription = subscriber->Subscribe<TestEvent>(
      "tasks",
      [&](const TestEvent& event, const EventContext&) -> absl::Status {
        switch (event.sequence()) {
          case 1:
            return absl::FailedPreconditionError("not ready");
          case 2:
            throw std::runtime_error("boom");
          case 3:
            throw 42;
          default:
            ++ok_calls;
            return absl::OkStatus();
        }
      },
      options);
  ASSERT_TRUE(subscription.ok()) << subscription.status();
  PublishRange("tasks", 6);
  (*subscription)->Unsubscribe();

  SubscriptionStats stats = (*subscription)->stats();
  EXPECT_EQ(stats.received, 6);
  EXPECT_EQ(stats.handled, 3);
  EXPECT_EQ(stats.handler_errors, 3);
  EXPECT_EQ(ok_calls.load(), 3);
  std::lock_guard lock(mu);
  ASSERT_EQ(errors.size(), 3u);
  EXPECT_EQ(errors[0], absl::FailedPreconditionError("not ready"));
  EXPECT_EQ(errors[1].code(), absl::StatusCode::kUnknown);
  EXPECT_NE(errors[1].message().find("boom"), std::string::npos) << errors[1];
  EXPECT_EQ(errors[2].code(), absl::StatusCode::kUnknown);
}

// Close (and Unsubscribe, and destroying the subscription) return only once
// every event the subscription had been sent is handled.
// Both where handlers run: on the subscription's own thread (the default),
// and on an executor given to the broker.
enum class Shutdown { kBrokerClose, kUnsubscribe, kDestroySubscription, kDestroyBroker };
enum class Handlers { kOwnThread, kGivenExecutor };

class DrainTest : public BrokerTest,
                  public ::testing::WithParamInterface<std::tuple<Shutdown, Handlers>> {};

TEST_P(DrainTest, DeliversEveryReceivedEventBeforeReturning) {
  constexpr int kEvents = 2000;
  BrokerOptions broker_options;
  if (std::get<Handlers>(GetParam()) == Handlers::kGivenExecutor) {
    broker_options.executor = NewThreadPoolExecutor(2);
  }
  auto subscriber = NewBroker(nullptr, broker_options);
  internal::Notification gate;
  std::atomic<int> handled{0};
  auto subscription =
      subscriber->Subscribe<TestEvent>("drain.me", [&](const TestEvent&, const EventContext&) {
        // Holds the backlog until shutdown has begun.
        EXPECT_TRUE(gate.WaitForNotificationWithTimeout(kWaitLimit));
        absl::SleepFor(absl::Microseconds(50));
        ++handled;
        return absl::OkStatus();
      });
  ASSERT_TRUE(subscription.ok()) << subscription.status();
  PublishRange("drain.me", kEvents);

  std::atomic<int> handled_when_shutdown_started{-1};
  internal::Notification shutdown_started;
  std::thread shutdown([&] {
    handled_when_shutdown_started = handled.load();
    shutdown_started.Notify();
    switch (std::get<Shutdown>(GetParam())) {
      case Shutdown::kBrokerClose:
        subscriber->Close();
        break;
      case Shutdown::kUnsubscribe:
        (*subscription)->Unsubscribe();
        break;
      case Shutdown::kDestroySubscription:
        subscription->reset();
        break;
      case Shutdown::kDestroyBroker:
        subscriber.reset();
        break;
    }
  });
  shutdown_started.WaitForNotification();
  // Not needed for correctness; makes it likely that shutdown is already
  // waiting when the backlog starts to move.
  absl::SleepFor(absl::Milliseconds(20));
  gate.Notify();
  shutdown.join();
  EXPECT_EQ(handled_when_shutdown_started.load(), 0);
  EXPECT_EQ(handled.load(), kEvents);
  absl::SleepFor(absl::Milliseconds(50));
  EXPECT_EQ(handled.load(), kEvents) << "a handler ran after shutdown returned";
  if (*subscription != nullptr) {
    EXPECT_EQ((*subscription)->stats().handled, kEvents);
    EXPECT_EQ((*subscription)->stats().dropped, 0);
  }
}

INSTANTIATE_TEST_SUITE_P(
    AllWays, DrainTest,
    ::testing::Combine(::testing::Values(Shutdown::kBrokerClose, Shutdown::kUnsubscribe,
                                         Shutdown::kDestroySubscription, Shutdown::kDestroyBroker),
                       ::testing::Values(Handlers::kOwnThread, Handlers::kGivenExecutor)));

class PendingLimitsTest : public BrokerTest, public ::testing::WithParamInterface<Handlers> {};

TEST_P(PendingLimitsTest, DropAndCountWhatASlowSubscriberCannotHold) {
  constexpr int kEvents = 300;
  constexpr int kLimit = 10;
  BrokerOptions broker_options;
  if (GetParam() == Handlers::kGivenExecutor) broker_options.executor = NewThreadPoolExecutor(2);
  auto subscriber = NewBroker(nullptr, broker_options);
  internal::Notification gate;
  SubscribeOptions options;
  options.max_pending_messages = kLimit;
  auto subscription = subscriber->Subscribe<TestEvent>(
      "firehose",
      [&](const TestEvent&, const EventContext&) {
        EXPECT_TRUE(gate.WaitForNotificationWithTimeout(kWaitLimit));
        return absl::OkStatus();
      },
      options);
  ASSERT_TRUE(subscription.ok()) << subscription.status();
  PublishRange("firehose", kEvents);
  // Every event is either queued (at most the limit, plus the one the
  // handler holds) or counted as dropped.
  const bool accounted = WaitFor([&] {
    SubscriptionStats stats = (*subscription)->stats();
    return stats.received + stats.dropped == kEvents;
  });
  const SubscriptionStats blocked = (*subscription)->stats();
  gate.Notify();  // Before any ASSERT, so that a failure does not wait for the gate's timeout.
  ASSERT_TRUE(accounted) << "received " << blocked.received << ", dropped " << blocked.dropped;
  EXPECT_LE(blocked.received, kLimit + 1);
  (*subscription)->Unsubscribe();
  SubscriptionStats stats = (*subscription)->stats();
  EXPECT_GE(stats.dropped, kEvents - kLimit - 1);
  EXPECT_EQ(stats.handled, stats.received);
  EXPECT_EQ(stats.received + stats.dropped, kEvents);
}

INSTANTIATE_TEST_SUITE_P(BothWays, PendingLimitsTest,
                         ::testing::Values(Handlers::kOwnThread, Handlers::kGivenExecutor));

TEST_F(BrokerTest, ConcurrentHandlersWithMaxConcurrency) {
  BrokerOptions broker_options;
  broker_options.num_threads = 2;
  auto subscriber = NewBroker(nullptr, broker_options);
  SubscribeOptions options;
  options.max_concurrency = 2;
  std::atomic<int> arrived{0};
  auto subscription = subscriber->Subscribe<TestEvent>(
      "parallel",
      [&](const TestEvent&, const EventContext&) {
        // Both handlers must be running at once to get past this.
        ++arrived;
        return WaitFor([&] { return arrived.load() >= 2; })
                   ? absl::OkStatus()
                   : absl::DeadlineExceededError("the other handler never ran concurrently");
      },
      options);
  ASSERT_TRUE(subscription.ok()) << subscription.status();
  PublishRange("parallel", 2);
  (*subscription)->Unsubscribe();
  EXPECT_EQ((*subscription)->stats().handled, 2);
}

TEST_F(BrokerTest, InvalidTopicsAndOptionsAreInvalidArgument) {
  for (const char* topic : {"", ".", "a..b", ".a", "a.", "a b", "a\tb", "a\x7f", "a.*", "a.>", ">",
                            "a*b", "caf\xc3\xa9"}) {
    EXPECT_EQ(publisher_->Publish(topic, Event(1)).code(), absl::StatusCode::kInvalidArgument)
        << "publish to '" << topic << "'";
  }
  Recorder recorder;
  for (const char* topic : {"", "a..b", "a.>.b", "a b", "a.b*"}) {
    EXPECT_EQ(publisher_->Subscribe<TestEvent>(topic, recorder.Handler()).status().code(),
              absl::StatusCode::kInvalidArgument)
        << "subscribe to '" << topic << "'";
  }
  for (const char* topic : {"a.*.c", ">", "a.>", "*"}) {
    EXPECT_TRUE(publisher_->Subscribe<TestEvent>(topic, recorder.Handler()).ok()) << topic;
  }
  SubscribeOptions spaced_group;
  spaced_group.queue_group = "a b";
  SubscribeOptions no_limits;
  no_limits.max_pending_messages = 0;
  no_limits.max_pending_bytes = 0;
  SubscribeOptions no_concurrency;
  no_concurrency.max_concurrency = 0;
  for (const SubscribeOptions& options : {spaced_group, no_limits, no_concurrency}) {
    EXPECT_EQ(publisher_->Subscribe<TestEvent>("ok", recorder.Handler(), options).status().code(),
              absl::StatusCode::kInvalidArgument);
  }
  EXPECT_EQ(publisher_->Subscribe<TestEvent>("ok", nullptr).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(publisher_->Subscribe(SubscriberDefinition{"ok", nullptr, nullptr, {}}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(NewNatsBroker(nullptr).status().code(), absl::StatusCode::kInvalidArgument);
  BrokerOptions xml;
  xml.content_type = "text/xml";
  EXPECT_EQ(NewNatsBroker(publisher_transport_, xml).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(BrokerTest, OversizedEventIsResourceExhausted) {
  TestEvent event = Event(1);
  event.set_payload(std::string(publisher_transport_->MaxPayload(), 'x'));
  absl::Status status = publisher_->Publish("big", event);
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted) << status;
}

TEST_F(BrokerTest, SubscribersDescribeLiveSubscriptions) {
  Recorder recorder;
  SubscribeOptions grouped;
  grouped.queue_group = "workers";
  auto plain = publisher_->Subscribe<TestEvent>("a.b", recorder.Handler());
  auto queued = publisher_->Subscribe<TestEvent>("c.*", recorder.Handler(), grouped);
  ASSERT_TRUE(plain.ok() && queued.ok());
  EXPECT_EQ((*queued)->info().topic, "c.*");
  EXPECT_EQ((*queued)->info().queue_group, "workers");
  EXPECT_EQ((*queued)->info().message_type, "micro.testing.TestEvent");
  std::vector<SubscriberInfo> infos = publisher_->Subscribers();
  ASSERT_EQ(infos.size(), 2u);
  EXPECT_EQ(infos[0].topic, "a.b");
  EXPECT_EQ(infos[0].queue_group, "");
  EXPECT_EQ(infos[1].topic, "c.*");
  (*plain)->Unsubscribe();
  infos = publisher_->Subscribers();
  ASSERT_EQ(infos.size(), 1u);
  EXPECT_EQ(infos[0].topic, "c.*");
}

TEST_F(BrokerTest, AfterCloseNothingIsPublishedOrSubscribed) {
  Recorder recorder;
  auto subscription = publisher_->Subscribe<TestEvent>("x", recorder.Handler());
  ASSERT_TRUE(subscription.ok());
  publisher_->Close();
  publisher_->Close();  // Idempotent.
  EXPECT_TRUE(publisher_->Subscribers().empty());
  EXPECT_EQ(publisher_->Publish("x", Event(1)).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(publisher_->Subscribe<TestEvent>("x", recorder.Handler()).status().code(),
            absl::StatusCode::kFailedPrecondition);
  // The drained subscription outlives the broker harmlessly.
  publisher_.reset();
  (*subscription)->Unsubscribe();
  EXPECT_EQ((*subscription)->stats().received, 0);
}

TEST_F(BrokerTest, InlineHandlerSeesEveryEventInOrderAndDrains) {
  constexpr int kEvents = 1000;
  auto subscriber = NewBroker();
  Recorder recorder;
  SubscribeOptions options;
  options.inline_handler = true;
  options.max_concurrency = 2;
  EXPECT_EQ(subscriber->Subscribe<TestEvent>("inline.events", recorder.Handler(), options)
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  options.max_concurrency = 1;
  options.on_error = recorder.OnError();
  auto subscription =
      subscriber->Subscribe<TestEvent>("inline.events", recorder.Handler(), options);
  ASSERT_TRUE(subscription.ok()) << subscription.status();
  PublishRange("inline.events", kEvents);
  ASSERT_TRUE(publisher_transport_->Publish(WireMessage{"inline.events", "", {}, "\xff"}).ok());
  RoutedBarrier(*publisher_transport_);
  (*subscription)->Unsubscribe();  // Drains: every event received is handled on return.
  EXPECT_EQ(recorder.Sequences(), Range(kEvents));
  SubscriptionStats stats = (*subscription)->stats();
  EXPECT_EQ(stats.received, kEvents + 1);
  EXPECT_EQ(stats.handled, kEvents);
  EXPECT_EQ(stats.decode_errors, 1);
  EXPECT_EQ(stats.dropped, 0);
}

// A server's subscriptions are part of its service: listed in INFO, their
// types in its schema, and drained by Stop after its calls.
TEST_F(BrokerTest, ServerSubscribersAreAnnouncedAndDrainedOnStop) {
  constexpr int kEvents = 500;
  ServerOptions options;
  options.name = "billing";
  Server server(Connect(), options);
  internal::Notification gate;
  std::atomic<int> handled{0};
  SubscribeOptions grouped;
  grouped.queue_group = "billers";
  ASSERT_TRUE(server
                  .RegisterSubscriber<TestEvent>(
                      "orders.*",
                      [&](const TestEvent&, const EventContext&) {
                        EXPECT_TRUE(gate.WaitForNotificationWithTimeout(kWaitLimit));
                        ++handled;
                        return absl::OkStatus();
                      },
                      grouped)
                  .ok());
  Recorder audit;
  ASSERT_TRUE(server.RegisterSubscriber<TestEvent>("audit.>", audit.Handler()).ok());
  EXPECT_EQ(server.RegisterSubscriber<TestEvent>("bad topic", audit.Handler()).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(server.RegisterSubscriber<TestEvent>("x", nullptr).code(),
            absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(server.Start().ok());
  EXPECT_EQ(server.RegisterSubscriber<TestEvent>("late", audit.Handler()).code(),
            absl::StatusCode::kFailedPrecondition);

  // The INFO document, as any NATS client reads it (docs/PROTOCOL.md).
  absl::StatusOr<WireMessage> info = publisher_transport_->RequestAndWait(
      WireMessage{"$SRV.INFO.billing", "", {}, ""}, absl::Now() + absl::Seconds(5));
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_NE(info->data.find(
                R"("subscribers":[)"
                R"({"topic":"orders.*","queue_group":"billers","type":"micro.testing.TestEvent"},)"
                R"({"topic":"audit.>","queue_group":"","type":"micro.testing.TestEvent"}])"),
            std::string::npos)
      << info->data;
  // The registry reads it back; the schema has the event type.
  auto registry = NewNatsRegistry(publisher_transport_);
  ASSERT_TRUE(registry.ok()) << registry.status();
  auto found = (*registry)->GetService("billing");
  ASSERT_TRUE(found.ok()) << found.status();
  ASSERT_EQ((*found)->instances.size(), 1u);
  EXPECT_EQ((*found)->instances[0].subscribers,
            (std::vector<SubscriberInfo>{{"orders.*", "billers", "micro.testing.TestEvent"},
                                         {"audit.>", "", "micro.testing.TestEvent"}}));
  auto schema_bytes =
      FetchSchema(*publisher_transport_, "billing", server.id(), absl::Now() + absl::Seconds(5));
  ASSERT_TRUE(schema_bytes.ok()) << schema_bytes.status();
  auto schema = Schema::Parse(*schema_bytes);
  ASSERT_TRUE(schema.ok()) << schema.status();
  EXPECT_NE((*schema)->FindMessage("micro.testing.TestEvent"), nullptr);

  ASSERT_TRUE(publisher_->Publish("audit.login.alice", Event(7)).ok());
  PublishRange("orders.created", kEvents);
  std::thread stop([&] { server.Stop(); });
  absl::SleepFor(absl::Milliseconds(20));  // Likely lets Stop wait on the backlog.
  gate.Notify();
  stop.join();
  EXPECT_EQ(handled.load(), kEvents);
  EXPECT_EQ(audit.Sequences(), std::vector<int64_t>{7});
}

// The transport primitive the broker's limits rest on: a subscriber whose
// handler blocks the NATS delivery thread (deliberately, to be slow) sees
// nats.c drop past the limit, and Dropped() counts every lost message.
TEST_F(BrokerTest, TransportSubscriptionCountsDropsPastItsPendingLimit) {
  constexpr int kMessages = 100;
  constexpr int kLimit = 5;
  // At most the limit waits in nats.c's queue, plus one in the blocked handler.
  constexpr int kMaxHeld = kLimit + 1;
  auto transport = Connect();
  internal::Notification gate;
  std::atomic<int> delivered{0};
  auto subscription = transport->Subscribe("slow.consumer", "", [&](WireMessage) {
    EXPECT_TRUE(gate.WaitForNotificationWithTimeout(kWaitLimit));
    ++delivered;
  });
  ASSERT_TRUE(subscription.ok()) << subscription.status();
  EXPECT_EQ((*subscription)->SetPendingLimits(0, 0).code(), absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE((*subscription)->SetPendingLimits(kLimit, 0).ok());
  for (int i = 0; i < kMessages; ++i) {
    ASSERT_TRUE(publisher_transport_->Publish(WireMessage{"slow.consumer", "", {}, "m"}).ok());
  }
  RoutedBarrier(*publisher_transport_);
  // Whatever is not held must be dropped once it arrives.
  const bool dropped = WaitFor([&] { return (*subscription)->Dropped() >= kMessages - kMaxHeld; });
  gate.Notify();  // Before any ASSERT, so that a failure does not wait for the gate's timeout.
  ASSERT_TRUE(dropped) << "dropped " << (*subscription)->Dropped();
  ASSERT_TRUE(WaitFor([&] { return delivered.load() + (*subscription)->Dropped() == kMessages; }))
      << "delivered " << delivered.load() << ", dropped " << (*subscription)->Dropped();
  EXPECT_LE(delivered.load(), kMaxHeld);
  subscription->reset();
}

}  // namespace
}  // namespace micro
