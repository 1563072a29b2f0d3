// The state of one end of a stream (docs/PROTOCOL.md, "Streams"):
// sequence numbers, credit windows, half-close, end and cancel. The
// connection routes incoming frames to OnFrame; users call the blocking
// methods through a Socket.
#ifndef MICRO_RUNTIME_TRANSPORT_STREAM_CORE_H_
#define MICRO_RUNTIME_TRANSPORT_STREAM_CORE_H_

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "micro/transport.h"
#include "protocol/wire.h"
#include "util/timer_queue.h"

namespace micro::internal {

// What a stream needs from the connection it lives on.
class StreamHost {
 public:
  virtual ~StreamHost() = default;
  virtual absl::Status PublishFrame(const WireMessage& frame) = 0;
  // The largest frame, headers included, the connection may publish.
  virtual size_t MaxPayload() const = 0;
  // The stream ended: frames for it are no longer routed to it.
  virtual void StreamEnded(uint64_t id) = 0;
  virtual TimerQueue& timers() = 0;
  // Runs `task` soon on another thread (queued sends are published there).
  virtual void RunSoon(absl::AnyInvocable<void() &&> task) {
    timers().Schedule(absl::InfinitePast(), std::move(task));
  }
};

class StreamCore : public std::enable_shared_from_this<StreamCore> {
 public:
  enum class Role { kClient, kServer };

  // The peer's windows, from its open or accept frame.
  struct PeerWindow {
    uint64_t messages = 0;  // 0: not known yet.
    uint64_t bytes = 0;     // 0: no byte limit.
  };
  // The windows `headers` announce; nullopt without a valid Micro-Window.
  static std::optional<PeerWindow> ReadPeerWindow(const Headers& headers);
  // Announces `options`' windows in `headers`.
  static void AddWindow(const StreamOptions& options, Headers* headers);

  // A client knows neither `peer_address` nor `peer_window` (pass empty and
  // {}) until the server accepts.
  StreamCore(StreamHost* host, Role role, uint64_t id, std::string local_address,
             std::string peer_address, PeerWindow peer_window, const StreamOptions& options);

  // Arms the deadline. Call once, after the host can route frames to it.
  void Start();

  // From the connection's delivery thread; never blocks.
  void OnFrame(protocol::FrameKind kind, WireMessage frame);
  // Ends the stream locally, telling the peer nothing (it is unreachable).
  void Fail(const absl::Status& status);

  absl::Status Send(std::string data);
  absl::Status Recv(std::string* data);
  absl::Status CloseSend();
  absl::Status End(const absl::Status& status, const Headers& trailing_metadata);
  void Cancel(const absl::Status& reason);
  absl::Status Finish();
  Headers TrailingHeaders();
  absl::Status SetInitialMetadata(const Headers& metadata);
  Headers InitialHeaders();
  absl::Status WaitForAccept();

  uint64_t id() const { return id_; }

 private:
  void OnAccept(const WireMessage& frame);
  void OnData(WireMessage frame);
  void OnPeerDone(protocol::FrameKind kind, const WireMessage& frame);
  // Whether the peer's windows have room for one more message; needs mu_.
  bool FitsPeerWindowLocked() const;
  // Publishes up to `max_messages` queued messages, batched into as few data
  // frames as fit, releasing mu_ while each is published. Needs mu_ held by
  // `lock` and no other publisher. True if the stream ended on a failure
  // (the caller then calls FinishEnding without mu_).
  bool PublishQueuedLocked(std::unique_lock<std::mutex>& lock, size_t max_messages);
  // Has the timer thread publish what is queued, soon; needs mu_.
  void ScheduleFlushLocked();
  void FlushQueued();
  // Waits until no other thread publishes, then publishes everything queued;
  // needs mu_. True as for PublishQueuedLocked.
  bool PublishAllQueuedLocked(std::unique_lock<std::mutex>& lock);
  // Publishes a frame of `kind` to the peer with `headers`; needs mu_.
  absl::Status SendFrameLocked(protocol::FrameKind kind, Headers headers, std::string data = {});
  // Ends the stream with `status`; with `tell_peer`, sends cancel. Needs mu_;
  // true if this call ended it (the caller then calls FinishEnding).
  bool EndLocked(const absl::Status& status, bool tell_peer);
  // Unregisters from the host; call without mu_ after EndLocked returned true.
  void FinishEnding();

  StreamHost* const host_;
  const Role role_;
  const uint64_t id_;
  const std::string local_address_;
  const uint64_t window_;
  const uint64_t window_bytes_;  // 0: no byte limit.
  const absl::Time deadline_;
  // The largest data frame body; bigger messages cannot be sent.
  const size_t max_frame_body_;

  // Waits on changed_ until `done`, holding mu_ through `lock`. What this
  // thread held back to write in a batch (util/write_batch.h) goes out
  // first: the peer may be what it waits for.
  template <typename Done>
  void AwaitLocked(std::unique_lock<std::mutex>& lock, Done done);

  std::mutex mu_;
  std::condition_variable changed_;
  std::string peer_address_;
  // Sending side. Messages 1..sent_ are published; `outbox_` holds the
  // ones Send accepted since, in order.
  uint64_t sent_ = 0;
  std::deque<std::string> outbox_;
  // Sizes of the messages after peer_acked_ (published or queued), in order.
  std::deque<size_t> unacked_sizes_;
  uint64_t unacked_bytes_ = 0;
  uint64_t peer_acked_ = 0;
  PeerWindow peer_window_;
  bool send_closed_ = false;
  bool publishing_ = false;  // A thread publishes queued messages without mu_.
  bool flush_scheduled_ = false;
  absl::Time last_send_ = absl::InfinitePast();
  // Receiving side.
  std::deque<std::string> received_messages_;
  uint64_t received_ = 0;                // Highest sequence number received.
  uint64_t consumed_ = 0;                // Messages handed to Recv.
  uint64_t acked_ = 0;                   // Highest Micro-Ack sent.
  uint64_t unacked_bytes_received_ = 0;  // Of the messages after acked_.
  uint64_t unacked_bytes_consumed_ = 0;  // Of those, the ones handed to Recv.
  bool peer_done_ = false;               // The peer sent close or end.
  Headers initial_headers_;              // Client: of the server's first data frame.
  // Server: the initial metadata, encoded, until the first data frame takes it.
  Headers pending_initial_metadata_;
  // The end.
  std::optional<absl::Status> final_status_;
  Headers trailing_headers_;
  TimerQueue::Id deadline_timer_ = 0;
};

}  // namespace micro::internal

#endif  // MICRO_RUNTIME_TRANSPORT_STREAM_CORE_H_
