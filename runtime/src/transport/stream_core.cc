#include "transport/stream_core.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "util/write_batch.h"

namespace micro::internal {

template <typename Done>
void StreamCore::AwaitLocked(std::unique_lock<std::mutex>& lock, Done done) {
  if (done()) return;
  lock.unlock();
  WriteBatch::FlushThisThread();
  lock.lock();
  changed_.wait(lock, done);
}

using protocol::FrameKind;

namespace {

// Room for a data frame's headers (docs/PROTOCOL.md promises 128 bytes).
constexpr size_t kDataFrameHeaderReserve = 128;
// Sends closer together than this are a burst: they are queued and published
// in batches from the timer thread instead of one publish each.
constexpr absl::Duration kBurstGap = absl::Microseconds(50);
// A batch stops growing here, so the receiver gets the first messages soon.
constexpr size_t kMaxBatchBytes = 32 << 10;

}  // namespace

std::optional<StreamCore::PeerWindow> StreamCore::ReadPeerWindow(const Headers& headers) {
  std::optional<uint64_t> messages = protocol::UintHeader(headers, protocol::kWindowHeader);
  if (!messages.has_value() || *messages == 0) return std::nullopt;
  return PeerWindow{*messages,
                    protocol::UintHeader(headers, protocol::kWindowBytesHeader).value_or(0)};
}

void StreamCore::AddWindow(const StreamOptions& options, Headers* headers) {
  headers->emplace(protocol::kWindowHeader, absl::StrCat(std::max(1, options.window)));
  if (options.window_bytes > 0) {
    headers->emplace(protocol::kWindowBytesHeader, absl::StrCat(options.window_bytes));
  }
}

StreamCore::StreamCore(StreamHost* host, Role role, uint64_t id, std::string local_address,
                       std::string peer_address, PeerWindow peer_window,
                       const StreamOptions& options)
    : host_(host),
      role_(role),
      id_(id),
      local_address_(std::move(local_address)),
      window_(std::max(1, options.window)),
      window_bytes_(static_cast<uint64_t>(std::max<int64_t>(0, options.window_bytes))),
      deadline_(options.deadline),
      max_frame_body_(host->MaxPayload() > kDataFrameHeaderReserve
                          ? host->MaxPayload() - kDataFrameHeaderReserve
                          : 0),
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
      // An ack beyond what was published acknowledges only what was.
      uint64_t acked = std::min(ack.value_or(0), sent_);
      if (acked <= peer_acked_) return;
      for (; peer_acked_ < acked; ++peer_acked_) {
        unacked_bytes_ -= unacked_sizes_.front();
        unacked_sizes_.pop_front();
      }
      changed_.notify_all();
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
  std::optional<PeerWindow> window = ReadPeerWindow(frame.headers);
  bool ended = false;
  {
    std::lock_guard lock(mu_);
    if (role_ != Role::kClient || peer_window_.messages != 0 || final_status_) return;
    peer_address_ = frame.reply;
    if (!window.has_value() || peer_address_.empty()) {
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
  // Split outside the lock: the receiving thread may be waiting for it.
  std::vector<std::string> messages;
  absl::Status malformed;
  if (frame.headers.find(protocol::kCountHeader) == frame.headers.end()) {
    messages.push_back(std::move(frame.data));
  } else {
    std::optional<uint64_t> count = protocol::UintHeader(frame.headers, protocol::kCountHeader);
    malformed = count.has_value()
                    ? protocol::SplitBatch(frame.data, *count, &messages)
                    : absl::DataLossError("malformed data frame: Micro-Count is not a number");
  }
  uint64_t bytes = 0;
  for (const std::string& message : messages) bytes += message.size();
  bool ended = false;
  {
    std::lock_guard lock(mu_);
    if (final_status_) return;
    uint64_t last = seq.value_or(0) + messages.size() - 1;
    if (!malformed.ok()) {
      ended = EndLocked(malformed, /*tell_peer=*/true);
    } else if (!seq.has_value() || *seq != received_ + 1) {
      ended = EndLocked(absl::DataLossError(absl::StrCat(
                            "stream lost messages: expected message ", received_ + 1, ", got ",
                            seq.has_value() ? absl::StrCat(*seq) : std::string("none"))),
                        /*tell_peer=*/true);
    } else if (last > acked_ + window_) {
      ended = EndLocked(absl::ResourceExhaustedError(absl::StrCat(
                            "peer sent message ", last, " beyond its window of ", window_)),
                        /*tell_peer=*/true);
    } else if (window_bytes_ > 0 &&
               unacked_bytes_received_ + bytes - messages.back().size() >= window_bytes_) {
      ended = EndLocked(
          absl::ResourceExhaustedError(absl::StrCat(
              "peer sent message ", last, " beyond its window of ", window_bytes_, " bytes")),
          /*tell_peer=*/true);
    } else {
      if (*seq == 1 && role_ == Role::kClient) initial_headers_ = std::move(frame.headers);
      received_ = last;
      unacked_bytes_received_ += bytes;
      for (std::string& message : messages) received_messages_.push_back(std::move(message));
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
  size_t size = data.size();
  AwaitLocked(lock, [&] { return final_status_ || send_closed_ || FitsPeerWindowLocked(); });
  if (send_closed_) return absl::FailedPreconditionError("the stream is closed for sending");
  if (final_status_) {
    // Never OK: the message was not sent.
    return final_status_->ok() ? absl::FailedPreconditionError("the stream has ended")
                               : *final_status_;
  }
  if (size > max_frame_body_) {
    absl::Status too_big = absl::ResourceExhaustedError(
        absl::StrCat("message of ", size, " bytes exceeds the ", max_frame_body_,
                     " a stream frame can carry (the NATS max payload less its headers)"));
    bool ended = EndLocked(too_big, /*tell_peer=*/true);
    lock.unlock();
    if (ended) FinishEnding();
    return too_big;
  }
  outbox_.push_back(std::move(data));
  unacked_sizes_.push_back(size);
  unacked_bytes_ += size;
  absl::Time now = absl::Now();
  bool burst = now - last_send_ < kBurstGap;
  last_send_ = now;
  // Whoever publishes now, or is scheduled to, takes this message too.
  if (publishing_ || flush_scheduled_) return absl::OkStatus();
  if (burst) {
    ScheduleFlushLocked();
    return absl::OkStatus();
  }
  // A lone message goes out at once, from this thread, for the least latency.
  bool ended = PublishQueuedLocked(lock, outbox_.size());
  absl::Status status = ended ? *final_status_ : absl::OkStatus();
  lock.unlock();
  if (ended) FinishEnding();
  return status;
}

bool StreamCore::FitsPeerWindowLocked() const {
  if (peer_window_.messages == 0) return false;  // Not accepted yet.
  uint64_t in_flight = sent_ + outbox_.size() - peer_acked_;
  if (in_flight >= peer_window_.messages) return false;
  // The byte window bounds what precedes the next message, so one message
  // always fits however large it is.
  return peer_window_.bytes == 0 || unacked_bytes_ < peer_window_.bytes;
}

bool StreamCore::PublishQueuedLocked(std::unique_lock<std::mutex>& lock, size_t max_messages) {
  publishing_ = true;
  bool ended = false;
  while (!outbox_.empty() && max_messages > 0 && !final_status_) {
    size_t count = 1;
    size_t bytes = protocol::kBatchRecordOverhead + outbox_.front().size();
    while (count < outbox_.size() && count < max_messages && bytes < kMaxBatchBytes) {
      size_t next = protocol::kBatchRecordOverhead + outbox_[count].size();
      if (bytes + next > max_frame_body_) break;
      bytes += next;
      ++count;
    }
    WireMessage frame;
    frame.subject = peer_address_;
    frame.reply = local_address_;
    frame.headers.emplace(protocol::kFrameHeader, protocol::FrameKindName(FrameKind::kData));
    frame.headers.emplace(protocol::kSeqHeader, absl::StrCat(sent_ + 1));
    if (sent_ == 0) frame.headers.merge(pending_initial_metadata_);
    if (count == 1) {
      frame.data = std::move(outbox_.front());
    } else {
      frame.headers.emplace(protocol::kCountHeader, absl::StrCat(count));
      frame.data.reserve(bytes);
      for (size_t i = 0; i < count; ++i) protocol::AppendBatchRecord(outbox_[i], &frame.data);
    }
    outbox_.erase(outbox_.begin(), outbox_.begin() + static_cast<ptrdiff_t>(count));
    sent_ += count;
    max_messages -= count;
    // Other threads may queue, ack and receive meanwhile; publishing_ keeps
    // everyone else's data frames behind this one.
    lock.unlock();
    absl::Status published = host_->PublishFrame(frame);
    lock.lock();
    if (!published.ok()) {
      if (published.code() != absl::StatusCode::kResourceExhausted) {
        published = absl::UnavailableError(absl::StrCat("stream broken: ", published.message()));
      }
      ended = EndLocked(published, /*tell_peer=*/true);
      break;
    }
  }
  publishing_ = false;
  changed_.notify_all();
  if (!final_status_ && !outbox_.empty() && !flush_scheduled_) ScheduleFlushLocked();
  return ended;
}

void StreamCore::ScheduleFlushLocked() {
  flush_scheduled_ = true;
  std::weak_ptr<StreamCore> weak = weak_from_this();
  host_->RunSoon([weak] {
    if (auto self = weak.lock()) self->FlushQueued();
  });
}

void StreamCore::FlushQueued() {
  bool ended = false;
  {
    std::unique_lock lock(mu_);
    flush_scheduled_ = false;
    // A publisher at work takes the queue, or schedules us again.
    if (final_status_ || publishing_ || outbox_.empty()) return;
    // Only what is queued now: a fast sender must not keep the timer thread
    // from other streams' timers.
    ended = PublishQueuedLocked(lock, outbox_.size());
  }
  if (ended) FinishEnding();
}

bool StreamCore::PublishAllQueuedLocked(std::unique_lock<std::mutex>& lock) {
  changed_.wait(lock, [this] { return final_status_ || !publishing_; });
  if (final_status_ || outbox_.empty()) return false;
  return PublishQueuedLocked(lock, outbox_.size());
}

absl::Status StreamCore::Recv(std::string* data) {
  std::unique_lock lock(mu_);
  AwaitLocked(lock, [this] { return !received_messages_.empty() || final_status_ || peer_done_; });
  if (!received_messages_.empty()) {
    *data = std::move(received_messages_.front());
    received_messages_.pop_front();
    ++consumed_;
    unacked_bytes_consumed_ += data->size();
    // Cumulative acks, sent when half of either window has been consumed,
    // keep the peer sending without an ack per message.
    bool half_window = consumed_ - acked_ >= std::max<uint64_t>(1, window_ / 2) ||
                       (window_bytes_ > 0 && unacked_bytes_consumed_ >= window_bytes_ / 2);
    if (!final_status_ && !peer_done_ && half_window) {
      acked_ = consumed_;
      unacked_bytes_received_ -= unacked_bytes_consumed_;
      unacked_bytes_consumed_ = 0;
      SendFrameLocked(FrameKind::kAck, {{protocol::kAckHeader, absl::StrCat(acked_)}})
          .IgnoreError();  // A lost ack is repaired by the next one.
    }
    return absl::OkStatus();
  }
  if (final_status_ && !final_status_->ok()) return *final_status_;
  return absl::OutOfRangeError("end of stream");
}

absl::Status StreamCore::CloseSend() {
  bool ended = false;
  absl::Status status;
  {
    std::unique_lock lock(mu_);
    if (role_ != Role::kClient) return absl::FailedPreconditionError("only a client half-closes");
    AwaitLocked(lock, [this] { return final_status_ || peer_window_.messages > 0; });
    if (final_status_) return *final_status_;
    if (send_closed_) return absl::OkStatus();
    send_closed_ = true;
    changed_.notify_all();
    // Micro-Last must follow every message it counts.
    ended = PublishAllQueuedLocked(lock);
    if (final_status_) {
      status = *final_status_;
    } else {
      status = SendFrameLocked(FrameKind::kClose, {{protocol::kLastHeader, absl::StrCat(sent_)}});
    }
  }
  if (ended) FinishEnding();
  return status;
}

absl::Status StreamCore::End(const absl::Status& status, const Headers& trailing_metadata) {
  absl::Status sent;
  {
    std::unique_lock lock(mu_);
    if (role_ != Role::kServer) return absl::FailedPreconditionError("only a server ends a stream");
    send_closed_ = true;  // Whatever a racing Send queues now would follow the end.
    bool failed = PublishAllQueuedLocked(lock);
    if (final_status_) {
      absl::Status ended = absl::FailedPreconditionError(
          absl::StrCat("stream already ended: ", final_status_->ToString()));
      lock.unlock();
      if (failed) FinishEnding();
      return ended;
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
  AwaitLocked(lock, [this] { return final_status_.has_value(); });
  return *final_status_;
}

Headers StreamCore::TrailingHeaders() {
  std::lock_guard lock(mu_);
  return trailing_headers_;
}

absl::Status StreamCore::SetInitialMetadata(const Headers& metadata) {
  Headers headers;
  if (absl::Status bad = protocol::EncodeReplyHeaders(absl::OkStatus(), "", metadata, &headers);
      !bad.ok()) {
    return bad;
  }
  std::lock_guard lock(mu_);
  if (role_ != Role::kServer) {
    return absl::FailedPreconditionError("only a server sends initial metadata");
  }
  if (final_status_ || send_closed_) return absl::FailedPreconditionError("the stream has ended");
  if (sent_ > 0 || !outbox_.empty()) {
    return absl::FailedPreconditionError("initial metadata must precede the first message");
  }
  pending_initial_metadata_ = std::move(headers);
  return absl::OkStatus();
}

absl::Status StreamCore::WaitForAccept() {
  std::unique_lock lock(mu_);
  AwaitLocked(lock, [this] { return peer_window_.messages != 0 || final_status_.has_value(); });
  return peer_window_.messages != 0 ? absl::OkStatus() : *final_status_;
}

Headers StreamCore::InitialHeaders() {
  std::lock_guard lock(mu_);
  return initial_headers_;
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
