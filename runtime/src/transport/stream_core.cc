#include "transport/stream_core.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

namespace micro::internal {

using protocol::FrameKind;

StreamCore::StreamCore(StreamHost* host, Role role, uint64_t id, std::string local_address,
                       std::string peer_address, uint64_t peer_window, const StreamOptions& options)
    : host_(host),
      role_(role),
      id_(id),
      local_address_(std::move(local_address)),
      window_(std::max(1, options.window)),
      deadline_(options.deadline),
      peer_address_(std::move(peer_address)),
      peer_window_(peer_window) {}

void StreamCore::Start() {
  if (deadline_ == absl::InfiniteFuture()) return;
  std::weak_ptr<StreamCore> weak = weak_from_this();
  TimerQueue::Id timer = host_->timers().Schedule(deadline_, [weak] {
    if (auto self = weak.lock())
      self->Cancel(absl::DeadlineExceededError("stream deadline exceeded"));
  });
  std::lock_guard lock(mu_);
  deadline_timer_ = timer;
}

void StreamCore::OnFrame(FrameKind kind, WireMessage frame) {
  switch (kind) {
    case FrameKind::kAccept:
      OnAccept(frame);
      return;
    case FrameKind::kData:
      OnData(std::move(frame));
      return;
    case FrameKind::kAck: {
      std::optional<uint64_t> ack = protocol::UintHeader(frame.headers, protocol::kAckHeader);
      std::lock_guard lock(mu_);
      if (ack.has_value() && *ack > peer_acked_) {
        peer_acked_ = *ack;
        changed_.notify_all();
      }
      return;
    }
    case FrameKind::kClose:
    case FrameKind::kEnd:
      OnPeerDone(kind, frame);
      return;
    case FrameKind::kCancel: {
      absl::Status status = protocol::DecodeReplyStatus(frame.headers);
      if (status.ok()) status = absl::CancelledError("the peer cancelled the stream");
      bool ended;
      {
        std::lock_guard lock(mu_);
        if (!final_status_) trailing_headers_ = frame.headers;
        ended = EndLocked(status, /*tell_peer=*/false);
      }
      if (ended) FinishEnding();
      return;
    }
    default:
      return;  // Opens and pings are the connection's business.
  }
}

void StreamCore::OnAccept(const WireMessage& frame) {
  std::optional<uint64_t> window = protocol::UintHeader(frame.headers, protocol::kWindowHeader);
  bool ended = false;
  {
    std::lock_guard lock(mu_);
    if (role_ != Role::kClient || peer_window_ != 0 || final_status_) return;
    peer_address_ = frame.reply;
    if (!window.has_value() || *window == 0 || peer_address_.empty()) {
      ended =
          EndLocked(absl::InternalError("server accepted the stream without a window or address"),
                    /*tell_peer=*/true);
    } else {
      peer_window_ = *window;
      changed_.notify_all();
    }
  }
  if (ended) FinishEnding();
}

void StreamCore::OnData(WireMessage frame) {
  std::optional<uint64_t> seq = protocol::UintHeader(frame.headers, protocol::kSeqHeader);
  bool ended = false;
  {
    std::lock_guard lock(mu_);
    if (final_status_) return;
    if (!seq.has_value() || *seq != received_ + 1) {
      ended = EndLocked(absl::DataLossError(absl::StrCat(
                            "stream lost messages: expected message ", received_ + 1, ", got ",
                            seq.has_value() ? absl::StrCat(*seq) : std::string("none"))),
                        /*tell_peer=*/true);
    } else if (*seq > acked_ + window_) {
      ended = EndLocked(absl::ResourceExhaustedError(absl::StrCat(
                            "peer sent message ", *seq, " beyond its window of ", window_)),
                        /*tell_peer=*/true);
    } else {
      received_ = *seq;
      received_messages_.push_back(std::move(frame.data));
      changed_.notify_all();
    }
  }
  if (ended) FinishEnding();
}

void StreamCore::OnPeerDone(FrameKind kind, const WireMessage& frame) {
  std::optional<uint64_t> last = protocol::UintHeader(frame.headers, protocol::kLastHeader);
  bool ended = false;
  {
    std::lock_guard lock(mu_);
    bool expected = kind == FrameKind::kClose ? role_ == Role::kServer : role_ == Role::kClient;
    if (final_status_ || peer_done_ || !expected) return;
    if (!last.has_value() || *last != received_) {
      ended = EndLocked(
          absl::DataLossError(absl::StrCat(
              "stream lost messages: the peer sent ",
              last.has_value() ? absl::StrCat(*last) : std::string("an unknown number of"), ", ",
              received_, " arrived")),
          /*tell_peer=*/true);
    } else {
      peer_done_ = true;
      changed_.notify_all();
      if (kind == FrameKind::kEnd) {
        trailing_headers_ = frame.headers;
        ended = EndLocked(protocol::DecodeReplyStatus(frame.headers), /*tell_peer=*/false);
      }
    }
  }
  if (ended) FinishEnding();
}

void StreamCore::Fail(const absl::Status& status) {
  bool ended;
  {
    std::lock_guard lock(mu_);
    ended = EndLocked(status, /*tell_peer=*/false);
  }
  if (ended) FinishEnding();
}

absl::Status StreamCore::Send(std::string data) {
  std::unique_lock lock(mu_);
  changed_.wait(lock, [this] {
    return final_status_ || send_closed_ ||
           (peer_window_ > 0 && sent_ < peer_acked_ + peer_window_);
  });
  if (send_closed_) return absl::FailedPreconditionError("the stream is closed for sending");
  if (final_status_) {
    // Never OK: the message was not sent.
    return final_status_->ok() ? absl::FailedPreconditionError("the stream has ended")
                               : *final_status_;
  }
  absl::Status sent = SendFrameLocked(
      FrameKind::kData, {{protocol::kSeqHeader, absl::StrCat(sent_ + 1)}}, std::move(data));
  if (sent.ok()) {
    ++sent_;
    return sent;
  }
  if (sent.code() != absl::StatusCode::kResourceExhausted) {
    sent = absl::UnavailableError(absl::StrCat("stream broken: ", sent.message()));
  }
  bool ended = EndLocked(sent, /*tell_peer=*/true);
  lock.unlock();
  if (ended) FinishEnding();
  return sent;
}

absl::Status StreamCore::Recv(std::string* data) {
  std::unique_lock lock(mu_);
  changed_.wait(lock,
                [this] { return !received_messages_.empty() || final_status_ || peer_done_; });
  if (!received_messages_.empty()) {
    *data = std::move(received_messages_.front());
    received_messages_.pop_front();
    ++consumed_;
    // Cumulative acks, batched by half a window, keep the peer sending
    // without an ack per message.
    if (!final_status_ && !peer_done_ && consumed_ - acked_ >= std::max<uint64_t>(1, window_ / 2)) {
      acked_ = consumed_;
      SendFrameLocked(FrameKind::kAck, {{protocol::kAckHeader, absl::StrCat(acked_)}})
          .IgnoreError();  // A lost ack is repaired by the next one.
    }
    return absl::OkStatus();
  }
  if (final_status_ && !final_status_->ok()) return *final_status_;
  return absl::OutOfRangeError("end of stream");
}

absl::Status StreamCore::CloseSend() {
  std::unique_lock lock(mu_);
  if (role_ != Role::kClient) return absl::FailedPreconditionError("only a client half-closes");
  changed_.wait(lock, [this] { return final_status_ || peer_window_ > 0; });
  if (final_status_) return *final_status_;
  if (send_closed_) return absl::OkStatus();
  send_closed_ = true;
  changed_.notify_all();
  return SendFrameLocked(FrameKind::kClose, {{protocol::kLastHeader, absl::StrCat(sent_)}});
}

absl::Status StreamCore::End(const absl::Status& status, const Headers& trailing_metadata) {
  absl::Status sent;
  {
    std::lock_guard lock(mu_);
    if (role_ != Role::kServer) return absl::FailedPreconditionError("only a server ends a stream");
    if (final_status_) {
      return absl::FailedPreconditionError(
          absl::StrCat("stream already ended: ", final_status_->ToString()));
    }
    Headers headers;
    absl::Status final_status = status;
    if (absl::Status bad = protocol::EncodeReplyHeaders(status, "", trailing_metadata, &headers);
        !bad.ok()) {
      headers.clear();
      final_status = bad;
      protocol::EncodeReplyHeaders(bad, "", {}, &headers).IgnoreError();
    }
    headers.emplace(protocol::kLastHeader, absl::StrCat(sent_));
    sent = SendFrameLocked(FrameKind::kEnd, std::move(headers));
    EndLocked(final_status, /*tell_peer=*/false);
  }
  FinishEnding();
  return sent;
}

void StreamCore::Cancel(const absl::Status& reason) {
  bool ended;
  {
    std::lock_guard lock(mu_);
    ended = EndLocked(reason, /*tell_peer=*/true);
  }
  if (ended) FinishEnding();
}

absl::Status StreamCore::Finish() {
  std::unique_lock lock(mu_);
  changed_.wait(lock, [this] { return final_status_.has_value(); });
  return *final_status_;
}

Headers StreamCore::TrailingHeaders() {
  std::lock_guard lock(mu_);
  return trailing_headers_;
}

absl::Status StreamCore::SendFrameLocked(FrameKind kind, Headers headers, std::string data) {
  if (peer_address_.empty()) return absl::FailedPreconditionError("the peer is not known yet");
  WireMessage frame;
  frame.subject = peer_address_;
  frame.reply = local_address_;
  frame.headers = std::move(headers);
  frame.headers.emplace(protocol::kFrameHeader, protocol::FrameKindName(kind));
  frame.data = std::move(data);
  return host_->PublishFrame(frame);
}

bool StreamCore::EndLocked(const absl::Status& status, bool tell_peer) {
  if (final_status_) return false;
  if (tell_peer) {
    Headers headers;
    protocol::EncodeReplyHeaders(status.ok() ? absl::CancelledError("cancelled") : status, "", {},
                                 &headers)
        .IgnoreError();
    SendFrameLocked(FrameKind::kCancel, std::move(headers)).IgnoreError();
  }
  final_status_ = status;
  if (deadline_timer_ != 0) host_->timers().Cancel(deadline_timer_);
  changed_.notify_all();
  return true;
}

void StreamCore::FinishEnding() { host_->StreamEnded(id_); }

}  // namespace micro::internal
