// Streams over a real nats-server at the transport level: Dial/Accept sockets,
// ordering, flow control, half-close, cancellation, deadlines, liveness and
// scale (docs/PROTOCOL.md, "Streams").
#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "micro/executor.h"
#include "micro/transport.h"
#include "protocol/wire.h"
#include "support/nats_server.h"
#include "support/process.h"
#include "support/remote_status.h"
#include "util/in_flight.h"
#include "util/notification.h"

namespace micro {
namespace {

using ::micro::testing::ChildProcess;
using ::micro::testing::NatsServer;

constexpr char kSubject[] = "test.stream";
constexpr absl::Duration kHeartbeat = absl::Milliseconds(100);

std::shared_ptr<Transport> Connect(const NatsServer& nats) {
  TransportOptions options;
  options.url = nats.url();
  options.stream_heartbeat = kHeartbeat;
  auto transport = ConnectNats(options);
  EXPECT_TRUE(transport.ok()) << transport.status();
  return transport.ok() ? *transport : nullptr;
}

WireMessage Open(const std::string& subject = kSubject) {
  WireMessage open;
  open.subject = subject;
  return open;
}

class StreamTest : public ::testing::Test {
 public:
  void SetUp() override {
    monitor_port_ = testing::PickFreePort();
    auto nats = NatsServer::Start({"-m", absl::StrCat(monitor_port_)});
    ASSERT_TRUE(nats.ok()) << nats.status();
    nats_ = *std::move(nats);
    server_ = Connect(*nats_);
    client_ = Connect(*nats_);
    ASSERT_NE(server_, nullptr);
    ASSERT_NE(client_, nullptr);
    pool_ = NewThreadPoolExecutor(8);
  }

  void TearDown() override {
    subscription_.reset();
    handlers_.WaitUntilIdle();
    pool_.reset();
  }

  void WaitForHandlers() { handlers_.WaitUntilIdle(); }

  // Accepts every stream opened on kSubject and runs `handler` on the pool.
  void Serve(std::function<void(Socket&)> handler, StreamOptions options = {}) {
    auto subscription =
        server_->Subscribe(kSubject, "", [this, handler, options](WireMessage open) {
          auto socket = server_->Accept(open, options);
          ASSERT_TRUE(socket.ok()) << socket.status();
          handlers_.Start();
          pool_->Schedule([this, handler, socket = std::shared_ptr<Socket>(*std::move(socket))] {
            handler(*socket);
            handlers_.Finish();
          });
        });
    ASSERT_TRUE(subscription.ok()) << subscription.status();
    subscription_ = *std::move(subscription);
  }

  // Serves streams that only read until their end, which ServerEnd reports.
  void ServeUntilEnd() {
    Serve([this](Socket& socket) {
      std::string message;
      absl::Status status;
      while ((status = socket.Recv(&message)).ok()) {
        if (!server_got_message_.HasBeenNotified()) server_got_message_.Notify();
      }
      server_end_ = status;
      server_ended_.Notify();
    });
  }

  // Why the server's side of the stream ended; waits (at most 10 s) for it.
  absl::Status ServerEnd() {
    if (!server_ended_.WaitForNotificationWithTimeout(absl::Seconds(10))) {
      return absl::DeadlineExceededError("the server's stream did not end");
    }
    return server_end_;
  }

  std::unique_ptr<Socket> Dial(StreamOptions options = {}) {
    auto socket = client_->Dial(Open(), options);
    EXPECT_TRUE(socket.ok()) << socket.status();
    return socket.ok() ? *std::move(socket) : nullptr;
  }

  static void EchoUntilEnd(Socket& socket) {
    std::string message;
    absl::Status status;
    while ((status = socket.Recv(&message)).ok()) {
      if (!socket.Send(message).ok()) return;
    }
    if (absl::IsOutOfRange(status)) socket.End(absl::OkStatus(), {{"echoed", "yes"}}).IgnoreError();
  }

  int monitor_port_ = 0;
  std::unique_ptr<NatsServer> nats_;
  std::shared_ptr<Transport> server_;
  std::shared_ptr<Transport> client_;
  std::shared_ptr<Executor> pool_;
  std::unique_ptr<Subscription> subscription_;
  internal::InFlight handlers_;
  internal::Notification server_got_message_;
  internal::Notification server_ended_;
  absl::Status server_end_;  // Written before server_ended_ is notified.
};

TEST_F(StreamTest, BidiEchoArrivesInOrderThenEndsWithTrailers) {
  Serve(EchoUntilEnd);
  auto socket = Dial();
  constexpr int kMessages = 1000;
  std::thread writer([&] {
    for (int i = 0; i < kMessages; ++i) ASSERT_TRUE(socket->Send(absl::StrCat("m", i)).ok());
    ASSERT_TRUE(socket->CloseSend().ok());
  });
  std::string message;
  for (int i = 0; i < kMessages; ++i) {
    ASSERT_TRUE(socket->Recv(&message).ok()) << i;
    ASSERT_EQ(message, absl::StrCat("m", i));
  }
  writer.join();
  EXPECT_TRUE(absl::IsOutOfRange(socket->Recv(&message)));
  EXPECT_TRUE(socket->Finish().ok());
  Headers trailers = socket->TrailingHeaders();
  ASSERT_EQ(trailers.count("echoed"), 1u);
  EXPECT_EQ(trailers.find("echoed")->second, "yes");
}

TEST_F(StreamTest, OrderingUnderLoadWithTinyWindows) {
  StreamOptions tiny;
  tiny.window = 2;
  Serve(EchoUntilEnd, tiny);
  auto socket = Dial(tiny);
  constexpr int kMessages = 10000;
  std::thread writer([&] {
    for (int i = 0; i < kMessages; ++i) ASSERT_TRUE(socket->Send(absl::StrCat(i)).ok());
    ASSERT_TRUE(socket->CloseSend().ok());
  });
  std::string message;
  int received = 0;
  while (socket->Recv(&message).ok()) {
    ASSERT_EQ(message, absl::StrCat(received));
    ++received;
  }
  writer.join();
  EXPECT_EQ(received, kMessages);
  EXPECT_TRUE(socket->Finish().ok());
}

// The server writes `messages` messages of `bytes` bytes as fast as it can to
// a client that reads with `options`, pausing every `pause_every` messages;
// how far the writer ever got ahead of the reader.
int MaxAheadOfASlowReader(StreamTest& test, StreamOptions options, int messages, int bytes,
                          int pause_every) {
  std::atomic<int> sent{0};
  test.Serve([&](Socket& socket) {
    for (int i = 0; i < messages; ++i) {
      if (!socket.Send(std::string(bytes, 'x')).ok()) return;
      sent.fetch_add(1);
    }
    socket.End(absl::OkStatus(), {}).IgnoreError();
  });
  auto socket = test.Dial(options);
  EXPECT_TRUE(socket->CloseSend().ok());
  std::string message;
  int consumed = 0;
  int max_ahead = 0;
  while (socket->Recv(&message).ok()) {
    ++consumed;
    if (consumed % pause_every == 0) absl::SleepFor(absl::Milliseconds(5));  // A slow reader.
    max_ahead = std::max(max_ahead, sent.load() - consumed);
  }
  EXPECT_EQ(consumed, messages);
  EXPECT_TRUE(socket->Finish().ok());
  test.WaitForHandlers();  // `sent` lives on this stack.
  return max_ahead;
}

TEST_F(StreamTest, SlowReaderBoundsAFastWriterToTheWindow) {
  StreamOptions options;
  options.window = 16;
  int max_ahead = MaxAheadOfASlowReader(*this, options, 2000, 1024, 100);
  // The writer never got further ahead of the reader than the window allows.
  EXPECT_LE(max_ahead, options.window);
  EXPECT_GT(max_ahead, 0);
}

TEST_F(StreamTest, SlowReaderBoundsAFastWriterToTheByteWindow) {
  StreamOptions options;
  options.window_bytes = 8 * 1024;  // The message window (1024) never binds.
  int max_ahead = MaxAheadOfASlowReader(*this, options, 500, 1024, 50);
  // Below the byte window, plus the one message always allowed.
  EXPECT_LE(max_ahead, 8 + 1);
  EXPECT_GT(max_ahead, 0);
}

TEST_F(StreamTest, HalfCloseLetsTheServerAnswerAfterTheLastMessage) {
  Serve([](Socket& socket) {
    std::string message;
    int sum = 0;
    absl::Status status;
    while ((status = socket.Recv(&message)).ok()) sum += std::stoi(message);
    ASSERT_TRUE(absl::IsOutOfRange(status)) << status;
    ASSERT_TRUE(socket.Send(absl::StrCat(sum)).ok());
    ASSERT_TRUE(socket.End(absl::OkStatus(), {}).ok());
  });
  auto socket = Dial();
  for (int i : {1, 2, 39}) ASSERT_TRUE(socket->Send(absl::StrCat(i)).ok());
  ASSERT_TRUE(socket->CloseSend().ok());
  EXPECT_EQ(socket->Send("late").code(), absl::StatusCode::kFailedPrecondition);
  std::string message;
  ASSERT_TRUE(socket->Recv(&message).ok());
  EXPECT_EQ(message, "42");
  EXPECT_TRUE(absl::IsOutOfRange(socket->Recv(&message)));
  EXPECT_TRUE(socket->Finish().ok());
}

TEST_F(StreamTest, ClientCancelReachesTheServer) {
  ServeUntilEnd();
  auto socket = Dial();
  ASSERT_TRUE(socket->Send("hello").ok());
  socket->Cancel(absl::CancelledError("changed my mind"));
  absl::Status server_status = ServerEnd();
  EXPECT_TRUE(testing::IsRemote(server_status, absl::CancelledError("changed my mind")));
  EXPECT_EQ(socket->Finish(), absl::CancelledError("changed my mind"));  // Our own.
}

TEST_F(StreamTest, DestroyingTheSocketCancelsTheStream) {
  ServeUntilEnd();
  auto socket = Dial();
  ASSERT_TRUE(socket->Send("hello").ok());
  socket.reset();
  absl::Status server_status = ServerEnd();
  EXPECT_EQ(server_status.code(), absl::StatusCode::kCancelled) << server_status;
}

TEST_F(StreamTest, ServerCancelAndErrorEndsReachTheClient) {
  Serve([](Socket& socket) {
    std::string message;
    if (!socket.Recv(&message).ok()) return;
    if (message == "cancel") {
      socket.Cancel(absl::PermissionDeniedError("not you"));
    } else {
      socket.End(absl::NotFoundError("no such route"), {{"hint", "try north"}}).IgnoreError();
    }
  });
  auto cancelled = Dial();
  ASSERT_TRUE(cancelled->Send("cancel").ok());
  std::string message;
  EXPECT_TRUE(testing::IsRemote(cancelled->Recv(&message), absl::PermissionDeniedError("not you")));
  EXPECT_TRUE(testing::IsRemote(cancelled->Finish(), absl::PermissionDeniedError("not you")));

  auto ended = Dial();
  ASSERT_TRUE(ended->Send("end").ok());
  EXPECT_TRUE(testing::IsRemote(ended->Recv(&message), absl::NotFoundError("no such route")));
  EXPECT_TRUE(testing::IsRemote(ended->Finish(), absl::NotFoundError("no such route")));
  Headers trailers = ended->TrailingHeaders();
  ASSERT_EQ(trailers.count("hint"), 1u);
  EXPECT_EQ(trailers.find("hint")->second, "try north");
}

TEST_F(StreamTest, DeadlineCoversTheWholeStreamOnBothSides) {
  ServeUntilEnd();
  StreamOptions options;
  options.deadline = absl::Now() + absl::Milliseconds(400);
  absl::Time start = absl::Now();
  auto socket = Dial(options);
  ASSERT_TRUE(socket->Send("tick").ok());
  std::string message;
  EXPECT_EQ(socket->Recv(&message).code(), absl::StatusCode::kDeadlineExceeded);
  absl::Duration elapsed = absl::Now() - start;
  EXPECT_GE(elapsed, absl::Milliseconds(390));
  EXPECT_LT(elapsed, absl::Seconds(5));
  absl::Status server_status = ServerEnd();
  EXPECT_EQ(server_status.code(), absl::StatusCode::kDeadlineExceeded) << server_status;
}

TEST_F(StreamTest, NobodyListeningIsUnavailable) {
  auto socket = client_->Dial(Open("nobody.listens.here"), {});
  ASSERT_TRUE(socket.ok());
  EXPECT_EQ((*socket)->Finish().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ((*socket)->Send("x").code(), absl::StatusCode::kUnavailable);
}

TEST_F(StreamTest, MessageOverMaxPayloadIsResourceExhaustedOnBothSides) {
  ServeUntilEnd();
  auto socket = Dial();
  ASSERT_TRUE(socket->Send("small first").ok());
  absl::Status big = socket->Send(std::string(client_->MaxPayload() + 1, 'b'));
  EXPECT_EQ(big.code(), absl::StatusCode::kResourceExhausted) << big;
  absl::Status server_status = ServerEnd();
  EXPECT_EQ(server_status.code(), absl::StatusCode::kResourceExhausted) << server_status;
}

// A hand-made server, as another implementation could be written from
// docs/PROTOCOL.md: it accepts each stream opened on kSubject (window 8 and
// `accept_headers`), then publishes `frames` to the client with only their
// headers and body set. CancelFromClient() is the Micro-Status of the cancel
// the client then sends, or "none".
class HandMadeServerTest : public StreamTest {
 protected:
  void Serve(std::vector<WireMessage> frames, Headers accept_headers = {}) {
    auto fake_server =
        server_->Subscribe(kSubject, "", [this, frames, accept_headers](WireMessage open) mutable {
          WireMessage accept{open.reply, kAddress, std::move(accept_headers), ""};
          accept.headers.insert({{"Micro-Frame", "accept"}, {"Micro-Window", "8"}});
          ASSERT_TRUE(server_->Publish(accept).ok());
          for (WireMessage& frame : frames) {
            frame.subject = open.reply;
            frame.reply = kAddress;
            ASSERT_TRUE(server_->Publish(frame).ok());
          }
        });
    ASSERT_TRUE(fake_server.ok()) << fake_server.status();
    subscription_ = *std::move(fake_server);
    auto peer = server_->Subscribe(kAddress, "", [this](WireMessage frame) {
      if (protocol::HeaderValue(frame.headers, "Micro-Frame") == "cancel" &&
          !cancel_seen_.HasBeenNotified()) {
        cancel_status_ = std::string(protocol::HeaderValue(frame.headers, "Micro-Status"));
        cancel_seen_.Notify();
      }
    });
    ASSERT_TRUE(peer.ok()) << peer.status();
    peer_ = *std::move(peer);
  }

  static WireMessage Data(uint64_t seq, std::string body, std::optional<int> count = {}) {
    WireMessage data{
        "", "", {{"Micro-Frame", "data"}, {"Micro-Seq", absl::StrCat(seq)}}, std::move(body)};
    if (count.has_value()) data.headers.emplace("Micro-Count", absl::StrCat(*count));
    return data;
  }

  static std::string Batch(const std::vector<std::string>& messages) {
    std::string body;
    for (const std::string& message : messages) protocol::AppendBatchRecord(message, &body);
    return body;
  }

  std::string CancelFromClient() {
    if (!cancel_seen_.WaitForNotificationWithTimeout(absl::Seconds(10))) return "none";
    return cancel_status_;
  }

  static constexpr char kAddress[] = "test.fake.server.1";
  std::unique_ptr<Subscription> peer_;
  internal::Notification cancel_seen_;
  std::string cancel_status_;  // Written before cancel_seen_ is notified.
};

TEST_F(HandMadeServerTest, MissingMessageIsDataLossNeverSilent) {
  Serve({Data(2, "second")});  // Skips message 1.
  auto socket = Dial();
  std::string message;
  EXPECT_EQ(socket->Recv(&message).code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(CancelFromClient(), "15");  // The peer is told too.
}

TEST_F(HandMadeServerTest, BatchedAndSingleDataFramesArriveInOrder) {
  WireMessage end{"", "", {{"Micro-Frame", "end"}, {"Micro-Last", "4"}}, ""};
  Serve({Data(1, Batch({"a", "", "c"}), 3), Data(4, "d"), end});
  auto socket = Dial();
  std::vector<std::string> received;
  std::string message;
  absl::Status status;
  while ((status = socket->Recv(&message)).ok()) received.push_back(message);
  EXPECT_TRUE(absl::IsOutOfRange(status)) << status;
  EXPECT_EQ(received, (std::vector<std::string>{"a", "", "c", "d"}));
  EXPECT_TRUE(socket->Finish().ok());
}

TEST_F(HandMadeServerTest, BatchThatDoesNotMatchItsCountIsDataLoss) {
  Serve({Data(1, Batch({"only one"}), 2)});
  auto socket = Dial();
  std::string message;
  absl::Status status = socket->Recv(&message);
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss) << status;
  EXPECT_EQ(CancelFromClient(), "15");
}

TEST_F(HandMadeServerTest, ByteWindowOverrunIsResourceExhausted) {
  // One message may exceed the byte window; a second behind it may not. (In
  // one frame, so that no ack from the client can make room in between.)
  Serve({Data(1, Batch({std::string(16, 'x'), "y"}), 2)});
  StreamOptions options;
  options.window_bytes = 16;
  auto socket = Dial(options);
  std::string message;
  absl::Status status = socket->Recv(&message);
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted) << status;
  EXPECT_EQ(CancelFromClient(), "8");
}

std::string PeerBinary() { return absl::StrCat(MICRO_TEST_BINARY_DIR, "/stream_peer"); }

TEST_F(StreamTest, ServerKilledMidStreamIsUnavailableWithinHeartbeats) {
  auto peer = ChildProcess::StartAndWaitReady({PeerBinary(), "server", nats_->url(), "peer.echo"});
  ASSERT_TRUE(peer.ok()) << peer.status();
  auto socket = client_->Dial(Open("peer.echo"), {});
  ASSERT_TRUE(socket.ok());
  std::string message;
  ASSERT_TRUE((*socket)->Send("ping").ok());
  ASSERT_TRUE((*socket)->Recv(&message).ok());
  (*peer)->Kill();
  absl::Time killed = absl::Now();
  absl::Status status = (*socket)->Recv(&message);
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
  // Declared dead after 3 missed heartbeats of 100 ms, checked every 100 ms.
  EXPECT_LT(absl::Now() - killed, absl::Seconds(2));
}

TEST_F(StreamTest, ClientKilledMidStreamIsUnavailableWithinHeartbeats) {
  ServeUntilEnd();
  auto peer = ChildProcess::StartAndWaitReady({PeerBinary(), "client", nats_->url(), kSubject});
  ASSERT_TRUE(peer.ok()) << peer.status();
  ASSERT_TRUE(server_got_message_.WaitForNotificationWithTimeout(absl::Seconds(10)));
  (*peer)->Kill();
  absl::Time killed = absl::Now();
  absl::Status server_status = ServerEnd();
  EXPECT_EQ(server_status.code(), absl::StatusCode::kUnavailable) << server_status;
  EXPECT_LT(absl::Now() - killed, absl::Seconds(2));
}

TEST_F(StreamTest, TenThousandConcurrentStreamsShareOneConnection) {
  Serve(EchoUntilEnd);
  absl::StatusOr<int> subscriptions_before = testing::SubscriptionCount(monitor_port_);
  ASSERT_TRUE(subscriptions_before.ok()) << subscriptions_before.status();
  int threads_before = testing::ThreadCount();

  constexpr int kStreams = 10000;
  StreamOptions options;
  options.window = 2;
  std::vector<std::unique_ptr<Socket>> sockets;
  sockets.reserve(kStreams);
  for (int i = 0; i < kStreams; ++i) {
    sockets.push_back(Dial(options));
    ASSERT_NE(sockets.back(), nullptr);
  }
  // All 10,000 are open at once: each sends before any is read.
  for (int i = 0; i < kStreams; ++i) {
    ASSERT_TRUE(sockets[i]->Send(absl::StrCat(i)).ok()) << i;
    ASSERT_TRUE(sockets[i]->CloseSend().ok()) << i;
  }
  EXPECT_EQ(*testing::SubscriptionCount(monitor_port_), *subscriptions_before)
      << "streams must not add subscriptions";
  int ok = 0;
  for (int i = 0; i < kStreams; ++i) {
    std::string message;
    ok += sockets[i]->Recv(&message).ok() && message == absl::StrCat(i) &&
          absl::IsOutOfRange(sockets[i]->Recv(&message)) && sockets[i]->Finish().ok();
  }
  EXPECT_EQ(ok, kStreams);
  sockets.clear();
  handlers_.WaitUntilIdle();
  EXPECT_EQ(testing::ThreadCount(), threads_before);
  EXPECT_EQ(*testing::SubscriptionCount(monitor_port_), *subscriptions_before);
}

}  // namespace
}  // namespace micro
