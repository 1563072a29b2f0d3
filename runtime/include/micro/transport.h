// The transport moves bytes between processes over a NATS connection: plain
// publish and subscribe, and requests whose replies are multiplexed on one
// inbox subscription per transport (no thread or subscription per call).
// Subjects, headers and reply routing are specified in docs/PROTOCOL.md.
#ifndef MICRO_TRANSPORT_H_
#define MICRO_TRANSPORT_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace micro {

// NATS message headers. Keys are case-sensitive on the wire.
using Headers = std::multimap<std::string, std::string>;

// One NATS message as the transport sends and delivers it.
struct WireMessage {
  std::string subject;
  std::string reply;  // Empty when the sender expects no reply.
  Headers headers;
  std::string data;
};

// `$NATS_URL` if set and non-empty, else `nats://127.0.0.1:4222`.
std::string DefaultNatsUrl();

struct TransportOptions {
  // One or more server URLs, separated by commas.
  std::string url = DefaultNatsUrl();
  // Connection name, shown by the nats-server monitoring endpoints.
  std::string name;
  // How long Connect waits for the first server to answer.
  absl::Duration connect_timeout = absl::Seconds(2);
  // Reconnection after a lost connection: attempts (-1 for ever) and the wait
  // between attempts to the same server.
  int max_reconnect_attempts = 60;
  absl::Duration reconnect_wait = absl::Seconds(1);
  // How often this connection pings each peer connection it has streams
  // with. A peer that sends nothing for 3 of its intervals is declared dead.
  absl::Duration stream_heartbeat = absl::Seconds(1);
  // Runs the connection in nats.c's event loop mode on a thread of the
  // transport's, which reads the socket, so that publishes made while a
  // runtime thread has more work queued are written together
  // (docs/PERFORMANCE.md, "Writes in batches"). False, or over TLS: nats.c
  // reads on a thread of its own and writes each publish before it returns.
  bool batch_writes = true;

  // Authentication; set at most one kind. Credentials in the URL
  // (`nats://user:pass@host`) work too.
  std::string user;
  std::string password;
  std::string token;
  // An NKey: the user's public key and the file holding its seed.
  std::string nkey_public_key;
  std::string nkey_seed_file;
  // A credentials file (user JWT and NKey seed, as written by `nsc`).
  std::string credentials_file;

  // TLS, used when `tls.enabled` or the URL scheme is `tls://`.
  struct Tls {
    bool enabled = false;
    std::string ca_file;    // PEM certificates that may sign the server's.
    std::string cert_file;  // The client's certificate chain (PEM), if the
    std::string key_file;   // server asks for one, and its private key.
    // The name the server's certificate must carry; default: the URL's host.
    std::string server_name;
  } tls;
};

// One end of a stream (docs/PROTOCOL.md, "Streams"): ordered, flow-controlled
// messages both ways, half-close, a final status. Thread-safe; one thread may
// Send while another Recvs. Destroying a socket whose stream has not ended
// cancels it, and the peer sees CANCELLED. The stream ends on its own with
// DEADLINE_EXCEEDED at its deadline, UNAVAILABLE when the peer connection
// stops answering or this connection is lost, DATA_LOSS when a message went
// missing.
class Socket {
 public:
  virtual ~Socket() = default;

  // Sends one message, blocking while the peer's window is full. Messages
  // sent faster than they can be published one by one are queued and go out
  // together in one frame, soon after, from the transport's thread; if that
  // publish fails the stream ends and later calls return why. After the
  // stream ended: its final status, or FAILED_PRECONDITION if that was OK.
  // A message that cannot fit a frame (the NATS max payload less 128 bytes)
  // cancels the stream with RESOURCE_EXHAUSTED. FAILED_PRECONDITION after
  // CloseSend or End, which first send every queued message.
  virtual absl::Status Send(std::string data) = 0;

  // Blocks for the next message. OK with `*data` set; OUT_OF_RANGE once the
  // peer finished sending normally and every message was received (a client
  // then gets the server's status from Finish); else the status that ended
  // the stream. Messages that arrived before the end are delivered first.
  virtual absl::Status Recv(std::string* data) = 0;

  // Client side: this side sends nothing more (half-close).
  virtual absl::Status CloseSend() = 0;

  // Server side: ends the stream with `status` and trailing metadata.
  // FAILED_PRECONDITION if the stream has already ended.
  virtual absl::Status End(const absl::Status& status, const Headers& trailing_metadata) = 0;

  // Ends the stream at once with `reason`, which the peer also gets.
  // Does nothing once the stream has ended.
  virtual void Cancel(const absl::Status& reason) = 0;

  // Client side: blocks until the stream has ended; its final status.
  virtual absl::Status Finish() = 0;

  // Headers of the frame that ended the stream (the server's trailing
  // metadata is among them); empty before the end.
  virtual Headers TrailingHeaders() = 0;

  // Server side: user metadata for the first data frame, the stream's
  // initial metadata (docs/PROTOCOL.md, "Frames"). INTERNAL, naming the
  // entry, for an invalid key or value; FAILED_PRECONDITION once a message
  // was sent or the stream ended.
  virtual absl::Status SetInitialMetadata(const Headers& metadata) = 0;

  // Client side: headers of the server's first data frame (its initial
  // metadata is among them); empty until that frame arrived.
  virtual Headers InitialHeaders() = 0;

  // Client side: blocks until a server accepted the stream (OK), or the
  // stream ended before (its final status: e.g. UNAVAILABLE, marked
  // unprocessed, when nobody listens). OK at once on the server side.
  virtual absl::Status WaitForAccept() = 0;
};

struct StreamOptions {
  // What this side buffers: the peer never has more than `window` messages
  // unacknowledged, nor more than `window_bytes` bytes of them plus one
  // message (<= 0: no byte limit).
  int window = 1024;
  int64_t window_bytes = int64_t{1} << 20;
  // The whole stream must end by then.
  absl::Time deadline = absl::InfiniteFuture();
};

// An active subscription. Destroying it drains it: messages the server
// already sent are still delivered, then it unsubscribes; once the destructor
// returns, the handler is not running and will not be called again.
class Subscription {
 public:
  virtual ~Subscription() = default;

  // Bounds the messages received but not yet handed to the handler. Past
  // either limit the NATS client drops messages (NATS is at-most-once) and
  // counts them in Dropped(). Defaults: 65536 messages, 64 MiB. A limit <= 0
  // means no limit. INVALID_ARGUMENT if both are unlimited.
  virtual absl::Status SetPendingLimits(int max_messages, int64_t max_bytes) = 0;

  // Messages dropped so far because the pending limits were reached.
  virtual int64_t Dropped() const = 0;
};

// A subscription whose messages are taken with Next instead of being pushed
// to a handler: the thread waiting in Next is woken by the NATS client
// itself, with no library delivery thread in between.
class PullSubscription {
 public:
  // Unsubscribes, unless it has ended; messages not yet taken are dropped.
  // No Next may be running.
  virtual ~PullSubscription() = default;

  // The next message, waiting up to `timeout` for one: DEADLINE_EXCEEDED if
  // none came, CANCELLED once the subscription has ended (Drain, or its
  // connection closed for good) and every message it received was taken.
  // From one thread at a time: the NATS client wakes a waiting thread only
  // when its queue goes from empty to non-empty.
  virtual absl::StatusOr<WireMessage> Next(absl::Duration timeout) = 0;

  // Ends the subscription gracefully and returns at once: the server stops
  // sending, messages it already sent are still returned by Next, then Next
  // returns CANCELLED.
  virtual void Drain() = 0;

  // As Subscription's, for messages received and not yet taken by Next.
  virtual absl::Status SetPendingLimits(int max_messages, int64_t max_bytes) = 0;
  virtual int64_t Dropped() const = 0;

  // Messages received and not yet taken by Next.
  virtual int64_t Pending() const = 0;
};

// Called for each message of a subscription, one message at a time, on a
// thread of the NATS library. It must not block: hand work to an Executor.
using MessageHandler = absl::AnyInvocable<void(WireMessage)>;

// Called exactly once with the reply to a request or the reason there is none:
// UNAVAILABLE when no subscriber listens on the subject or the connection is
// lost, DEADLINE_EXCEEDED when the deadline passes first, CANCELLED when the
// transport is destroyed first. Runs on a NATS library or transport thread,
// or on the calling thread if the request fails to be sent: it must not block.
using ReplyHandler = absl::AnyInvocable<void(absl::StatusOr<WireMessage>) &&>;

// A connection to a NATS server (or cluster). Thread-safe. Every Subscription
// and every pending request must end before the transport is destroyed;
// pending requests still open at destruction complete with CANCELLED.
class Transport {
 public:
  virtual ~Transport() = default;

  // Publishes `message` (its `reply` is sent as is). Written to the socket
  // before returning, so replies do not wait for a background flush.
  // RESOURCE_EXHAUSTED if it exceeds the server's max payload, UNAVAILABLE if
  // the connection is closed, INVALID_ARGUMENT for an invalid subject.
  virtual absl::Status Publish(const WireMessage& message) = 0;

  // Publishes `request` with a reply subject on the transport's shared inbox
  // (any `reply` set in it is ignored) and calls `on_reply` with the first
  // reply, or with an error as documented on ReplyHandler.
  virtual void Request(const WireMessage& request, absl::Time deadline, ReplyHandler on_reply) = 0;

  // Request for a caller that blocks until the outcome: returns what Request
  // would hand `on_reply`. A transport may read the reply on the calling
  // thread, which saves a thread hand-off per call; the NATS transport does
  // for up to 64 such calls at once (docs/PROTOCOL.md, "How the micro client
  // routes replies"). The default waits for Request's outcome.
  virtual absl::StatusOr<WireMessage> RequestAndWait(const WireMessage& request,
                                                     absl::Time deadline);

  // Subscribes to `subject` (NATS wildcards allowed), as a member of
  // `queue_group` unless it is empty. Returns once the server has registered
  // the subscription, so a message published afterwards from any connection
  // reaches it. INVALID_ARGUMENT for an invalid subject or queue group,
  // UNAVAILABLE if the connection is closed or the server does not confirm.
  virtual absl::StatusOr<std::unique_ptr<Subscription>> Subscribe(const std::string& subject,
                                                                  const std::string& queue_group,
                                                                  MessageHandler on_message) = 0;

  // Like Subscribe, for a PullSubscription. UNIMPLEMENTED from a transport
  // without them (the default).
  virtual absl::StatusOr<std::unique_ptr<PullSubscription>> SubscribePull(
      const std::string& subject, const std::string& queue_group);

  // Opens a stream to `open.subject` (the method subject) with the headers of
  // `open` (content type, timeout, metadata); frame headers are added.
  // Returns at once. UNAVAILABLE, marked unprocessed (micro/errors.h), if
  // the open frame cannot be published (the connection is down); later
  // failures to reach a server end the stream and surface from Send, Recv
  // and Finish.
  virtual absl::StatusOr<std::unique_ptr<Socket>> Dial(const WireMessage& open,
                                                       const StreamOptions& options) = 0;

  // Accepts the stream that `open`, an open frame received on one of this
  // transport's subscriptions, asks for. INVALID_ARGUMENT if `open` is not an
  // open frame with a reply subject.
  virtual absl::StatusOr<std::unique_ptr<Socket>> Accept(const WireMessage& open,
                                                         const StreamOptions& options) = 0;

  // The largest message (headers and data) the connected server accepts.
  virtual size_t MaxPayload() const = 0;
};

// Connects to NATS. UNAUTHENTICATED when the server rejects the user,
// password, token, NKey or credentials; UNAVAILABLE, with the reason, if no
// server of `options.url` can be reached within `options.connect_timeout` or
// TLS fails (a server that rejects the client's certificate just closes the
// connection, so that too is UNAVAILABLE); INVALID_ARGUMENT for a malformed
// URL, an unreadable certificate or key file, or an NKey seed or credentials
// file that is unreadable or holds no valid user seed (checked before
// connecting). A credentials file's JWT is checked only by the server: a
// garbled one is UNAUTHENTICATED. An NKey or credentials handshake the
// server refuses is tried once more before UNAUTHENTICATED, because the
// NATS client fails a right one now and then (docs/RELIABILITY.md).
absl::StatusOr<std::shared_ptr<Transport>> ConnectNats(const TransportOptions& options = {});

}  // namespace micro

#endif  // MICRO_TRANSPORT_H_
