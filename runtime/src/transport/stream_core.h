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
  // The stream ended: frames for it are no longer routed to it.
  virtual void StreamEnded(uint64_t id) = 0;
  virtual TimerQueue& timers() = 0;
};

class StreamCore : public std::enable_shared_from_this<StreamCore> {
 public:
  enum class Role { kClient, kServer };

  // A client knows neither `peer_address` nor `peer_window` (pass empty and
  // 0) until the server accepts.
  StreamCore(StreamHost* host, Role role, uint64_t id, std::string local_address,
             std::string peer_address, uint64_t peer_window, const StreamOptions& options);

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

  uint64_t id() const { return id_; }

 private:
  void OnAccept(const WireMessage& frame);
  void OnData(WireMessage frame);
  void OnPeerDone(protocol::FrameKind kind, const WireMessage& frame);
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
  const int window_;
  const absl::Time deadline_;

  std::mutex mu_;
  std::condition_variable changed_;
  std::string peer_address_;
  // Sending side.
  uint64_t sent_ = 0;
  uint64_t peer_acked_ = 0;
  uint64_t peer_window_ = 0;  // 0 until the peer's window is known.
  bool send_closed_ = false;
  // Receiving side.
  std::deque<std::string> received_messages_;
  uint64_t received_ = 0;   // Highest sequence number received.
  uint64_t consumed_ = 0;   // Messages handed to Recv.
  uint64_t acked_ = 0;      // Highest Micro-Ack sent.
  bool peer_done_ = false;  // The peer sent close or end.
  // The end.
  std::optional<absl::Status> final_status_;
  Headers trailing_headers_;
  TimerQueue::Id deadline_timer_ = 0;
};

}  // namespace micro::internal

#endif  // MICRO_RUNTIME_TRANSPORT_STREAM_CORE_H_
