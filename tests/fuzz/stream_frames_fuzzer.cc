// Stream frames from a peer (docs/PROTOCOL.md, "Streams"), mixed with what
// the application does, against one end of a stream (StreamCore) whose
// connection is a fake that records what the stream publishes.
//
// Input lines; the first is `client|server [window] [peer-window]
// [window-bytes]`, then:
//   frame <Micro-Frame value or -> [reply=<subject>] [body=<text>]
//         [batch=<text>,<text>,...] [<Header>=<value>]...
// (`batch` makes the body of a Micro-Count data frame and, unless the line
// sets one, its Micro-Count header), or one of
//   send <text> | recv | closesend | end <code> [<key>:<value>]... | cancel <code>
//   finish | fail <code>   (later publishes fail with <code>; 0: succeed again)
// Application calls that would block (Send without credit, Recv with nothing
// to read, ...) are skipped, by a model of the protocol's rules.
//
// Sends the stream queues are published from the fake connection's deferred
// tasks, which run after each line.
//
// Properties, from the protocol's rules: messages are accepted exactly in
// sequence and within both windows, and the application reads exactly those,
// in order (nothing lost, duplicated or invented); a frame out of sequence or
// a wrong Micro-Last ends the stream with DATA_LOSS, a window overrun with
// RESOURCE_EXHAUSTED, a batch that does not match its Micro-Count with
// DATA_LOSS, a cancel or end with the status it carries; once
// ended, the stream publishes nothing in answer to frames, its status never
// changes and the connection hears of the end exactly once; everything it
// publishes is addressed to the peer, from itself, with a valid frame kind,
// and its data frames carry the messages sent, in order, numbered 1, 2, 3, ...
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "fuzz_check.h"
#include "protocol/wire.h"
#include "transport/stream_core.h"
#include "util/strings.h"
#include "util/timer_queue.h"

namespace micro::fuzz {
namespace {

using internal::StreamCore;
using protocol::FrameKind;

constexpr char kLocal[] = "_INBOX.local.7";
constexpr char kServerPeer[] = "_INBOX.peer.3";

class FakeHost final : public internal::StreamHost {
 public:
  absl::Status PublishFrame(const WireMessage& frame) override {
    if (fail.ok()) published.push_back(frame);  // What the peer could see.
    return fail;
  }
  size_t MaxPayload() const override { return 1 << 20; }
  void StreamEnded(uint64_t) override { ++ended; }
  internal::TimerQueue& timers() override {
    static internal::TimerQueue* queue = new internal::TimerQueue;  // Never used: no deadline.
    return *queue;
  }
  void RunSoon(absl::AnyInvocable<void() &&> task) override { deferred.push_back(std::move(task)); }

  // Runs the deferred tasks, and those they defer.
  void RunDeferred() {
    while (!deferred.empty()) {
      absl::AnyInvocable<void()&&> task = std::move(deferred.front());
      deferred.pop_front();
      std::move(task)();
    }
  }

  std::deque<absl::AnyInvocable<void() &&>> deferred;
  std::vector<WireMessage> published;
  absl::Status fail;
  int ended = 0;
};

int ParseInt(std::string_view text) {
  int value = 0;
  return absl::SimpleAtoi(internal::ToAbsl(text), &value) ? value : 0;
}

absl::Status StatusFromCode(std::string_view code) {
  return absl::Status(static_cast<absl::StatusCode>(ParseInt(code)), "fuzz");
}

// The stream and the model of what it must do.
class Harness {
 public:
  Harness(bool client, int window, uint64_t peer_window, int window_bytes)
      : client_(client), window_(std::max(1, window)), window_bytes_(std::max(0, window_bytes)) {
    StreamOptions options;
    options.window = window;
    options.window_bytes = window_bytes_;
    if (!client_) {
      peer_address_ = kServerPeer;
      peer_window_ = std::max<uint64_t>(1, peer_window);
    }
    core_ = std::make_shared<StreamCore>(
        &host_, client_ ? StreamCore::Role::kClient : StreamCore::Role::kServer, 7, kLocal,
        peer_address_, StreamCore::PeerWindow{peer_window_, 0}, options);
    core_->Start();
  }

  void Run(std::string_view line) {
    std::vector<std::string_view> words;
    for (absl::string_view word : absl::StrSplit(internal::ToAbsl(line), ' ', absl::SkipEmpty())) {
      words.push_back(internal::FromAbsl(word));
    }
    if (words.empty()) return;
    std::string_view op = words[0];
    std::string_view arg = words.size() > 1 ? words[1] : std::string_view();
    was_ended_ = ended();
    published_before_ = host_.published.size();
    if (op == "frame") {
      Frame(words);
    } else if (op == "send") {
      Send(std::string(arg));
    } else if (op == "recv") {
      Recv();
    } else if (op == "closesend") {
      CloseSend();
    } else if (op == "end") {
      End(words);
    } else if (op == "cancel") {
      Expect(StatusFromCode(arg));
      core_->Cancel(StatusFromCode(arg));
    } else if (op == "finish") {
      if (ended()) CheckFinish();
    } else if (op == "fail") {
      host_.fail = StatusFromCode(arg);
    }
    host_.RunDeferred();
    CheckAfterOp(line);
  }

  // Ends the stream if the input did not, then reads what is left.
  void Finish() {
    if (!ended()) {
      Expect(absl::CancelledError("end of input"));
      core_->Cancel(absl::CancelledError("end of input"));
    }
    CheckAfterOp("(end of input)");
    while (!queue_.empty()) Recv();
    std::string data;
    absl::Status last = core_->Recv(&data);
    FUZZ_CHECK(last.code() == (expected_->ok() ? absl::StatusCode::kOutOfRange : expected_->code()),
               last.ToString());
    CheckFinish();
  }

 private:
  bool ended() const { return host_.ended > 0; }

  // The current operation must end the stream with `status`, unless it had
  // ended before or this operation already has a reason to end it.
  void Expect(const absl::Status& status) {
    if (!was_ended_ && !expected_) expected_ = status;
  }

  void Frame(const std::vector<std::string_view>& words) {
    WireMessage frame;
    frame.subject = kLocal;
    frame.reply = client_ ? std::string() : kServerPeer;
    if (words.size() > 1 && words[1] != "-") {
      frame.headers.emplace(protocol::kFrameHeader, std::string(words[1]));
    }
    for (size_t i = 2; i < words.size(); ++i) {
      std::string_view word = words[i];
      size_t eq = word.find('=');
      std::string key(word.substr(0, eq));
      std::string value(eq == std::string_view::npos ? "" : word.substr(eq + 1));
      if (key == "reply") {
        frame.reply = value;
      } else if (key == "body") {
        frame.data = value;
      } else if (key == "batch") {
        std::vector<std::string> parts = absl::StrSplit(value, ',');
        frame.data.clear();
        for (const std::string& part : parts) protocol::AppendBatchRecord(part, &frame.data);
        if (frame.headers.count(protocol::kCountHeader) == 0) {
          frame.headers.emplace(protocol::kCountHeader, absl::StrCat(parts.size()));
        }
      } else {
        frame.headers.emplace(key, value);
      }
    }
    FrameKind kind = protocol::ParseFrameKind(frame.headers);
    if (!ended()) Model(kind, frame);
    core_->OnFrame(kind, frame);
  }

  // What the protocol says a frame does to a live stream.
  void Model(FrameKind kind, const WireMessage& frame) {
    auto number = [&](const char* header) { return protocol::UintHeader(frame.headers, header); };
    switch (kind) {
      case FrameKind::kData: {
        std::optional<uint64_t> seq = number(protocol::kSeqHeader);
        std::vector<std::string> messages;
        absl::Status split;
        if (frame.headers.count(protocol::kCountHeader) == 0) {
          messages.push_back(frame.data);
        } else if (std::optional<uint64_t> count = number(protocol::kCountHeader)) {
          split = protocol::SplitBatch(frame.data, *count, &messages);
        } else {
          split = absl::DataLossError("Micro-Count is not a number");
        }
        uint64_t bytes = 0;
        for (const std::string& message : messages) bytes += message.size();
        if (!split.ok()) {
          Expect(split);
        } else if (!seq || *seq != received_ + 1) {
          Expect(absl::DataLossError("out of sequence"));
        } else if (*seq + messages.size() - 1 > acked_ + window_) {
          Expect(absl::ResourceExhaustedError("window overrun"));
        } else if (window_bytes_ > 0 &&
                   unacked_bytes_ + bytes - messages.back().size() >= window_bytes_) {
          Expect(absl::ResourceExhaustedError("byte window overrun"));
        } else {
          received_ += messages.size();
          unacked_bytes_ += bytes;
          for (std::string& message : messages) queue_.push_back(std::move(message));
        }
        return;
      }
      case FrameKind::kAck:
        // An ack beyond what was sent acknowledges what was.
        for (uint64_t ack = std::min(number(protocol::kAckHeader).value_or(0), sent_);
             peer_acked_ < ack; ++peer_acked_) {
          sent_unacked_bytes_ -= sent_sizes_.front();
          sent_sizes_.pop_front();
        }
        return;
      case FrameKind::kClose:
      case FrameKind::kEnd: {
        bool expected = (kind == FrameKind::kClose) != client_;
        if (!expected || peer_done_) return;
        std::optional<uint64_t> last = number(protocol::kLastHeader);
        if (!last || *last != received_) {
          Expect(absl::DataLossError("wrong Micro-Last"));
          return;
        }
        peer_done_ = true;
        if (kind == FrameKind::kEnd) Expect(protocol::DecodeReplyStatus(frame.headers));
        return;
      }
      case FrameKind::kCancel: {
        absl::Status status = protocol::DecodeReplyStatus(frame.headers);
        Expect(status.ok() ? absl::CancelledError("peer cancelled") : status);
        return;
      }
      case FrameKind::kAccept: {
        if (!client_ || peer_window_ != 0) return;
        std::optional<uint64_t> window = number(protocol::kWindowHeader);
        peer_address_ = frame.reply;  // Where the cancel goes if the accept is bad.
        if (!window || *window == 0 || frame.reply.empty()) {
          Expect(absl::InternalError("accept without window or address"));
        } else {
          peer_window_ = *window;
          peer_window_bytes_ = number(protocol::kWindowBytesHeader).value_or(0);
        }
        return;
      }
      default:
        return;
    }
  }

  void Send(std::string data) {
    bool credit = peer_window_ > 0 && sent_ < peer_acked_ + peer_window_ &&
                  (peer_window_bytes_ == 0 || sent_unacked_bytes_ < peer_window_bytes_);
    if (!ended() && !send_closed_ && !credit) return;  // Would block.
    bool publishes = !ended() && !send_closed_;
    absl::Status fail = host_.fail;
    absl::Status status = core_->Send(data);
    if (!publishes) {
      FUZZ_CHECK(!status.ok(), "Send on a closed or ended stream succeeded");
      return;
    }
    absl::StatusCode code = fail.code() == absl::StatusCode::kResourceExhausted
                                ? fail.code()
                                : absl::StatusCode::kUnavailable;
    if (fail.ok()) {
      FUZZ_CHECK(status.ok(), status.ToString());
      ++sent_;
      sent_sizes_.push_back(data.size());
      sent_unacked_bytes_ += data.size();
      outgoing_.push_back(std::move(data));  // Published by the end of the line.
    } else if (status.ok()) {
      Expect(absl::Status(code, "queued, then failed to publish"));  // When the queue is sent.
    } else {
      FUZZ_CHECK(status.code() == code, status.ToString());
      Expect(status);
    }
  }

  void Recv() {
    if (!ended() && queue_.empty() && !peer_done_) return;  // Would block.
    std::string data;
    absl::Status status = core_->Recv(&data);
    if (queue_.empty()) {
      absl::StatusCode code =
          ended() && !expected_->ok() ? expected_->code() : absl::StatusCode::kOutOfRange;
      FUZZ_CHECK(status.code() == code, status.ToString());
      return;
    }
    FUZZ_CHECK(status.ok(), status.ToString());
    FUZZ_CHECK(data == queue_.front(),
               absl::StrCat("read '", data, "', sent '", queue_.front(), "'"));
    consumed_bytes_ += queue_.front().size();
    queue_.pop_front();
    ++consumed_;
    bool half_window = consumed_ - acked_ >= std::max<uint64_t>(1, window_ / 2) ||
                       (window_bytes_ > 0 && consumed_bytes_ >= window_bytes_ / 2);
    if (!ended() && !peer_done_ && half_window) {
      acked_ = consumed_;
      unacked_bytes_ -= consumed_bytes_;
      consumed_bytes_ = 0;
      if (!peer_address_.empty() && host_.fail.ok()) {  // A failed publish is not seen.
        const WireMessage& ack = host_.published.back();
        FUZZ_CHECK(protocol::ParseFrameKind(ack.headers) == FrameKind::kAck, "no ack sent");
        FUZZ_CHECK(protocol::UintHeader(ack.headers, protocol::kAckHeader) == acked_, "wrong ack");
      }
    }
  }

  void CloseSend() {
    if (!client_) {
      FUZZ_CHECK(core_->CloseSend().code() == absl::StatusCode::kFailedPrecondition, "server");
      return;
    }
    if (!ended() && peer_window_ == 0) return;  // Would block until accepted.
    bool publishes = !ended() && !send_closed_;
    core_->CloseSend().IgnoreError();  // Fails when the publish does; the stream lives on.
    if (!publishes) return;
    send_closed_ = true;
    if (!host_.fail.ok()) return;  // A failed publish is not seen.
    const WireMessage& frame = host_.published.back();
    FUZZ_CHECK(protocol::ParseFrameKind(frame.headers) == FrameKind::kClose, "no close sent");
    FUZZ_CHECK(protocol::UintHeader(frame.headers, protocol::kLastHeader) == sent_, "Micro-Last");
  }

  void End(const std::vector<std::string_view>& words) {
    absl::Status status = StatusFromCode(words.size() > 1 ? words[1] : "0");
    Headers trailing;
    bool valid = true;
    for (size_t i = 2; i < words.size(); ++i) {
      std::pair<std::string, std::string> entry = HeaderLine(words[i]);
      valid = valid && ValidateMetadata(entry.first, entry.second).ok();
      trailing.insert(std::move(entry));
    }
    bool live = !ended();
    absl::Status ended_with = core_->End(status, trailing);
    if (client_ || !live) {
      FUZZ_CHECK(ended_with.code() == absl::StatusCode::kFailedPrecondition, ended_with.ToString());
      return;
    }
    Expect(valid ? status : absl::InternalError("invalid trailing metadata"));
    if (!host_.fail.ok()) return;  // A failed publish is not seen.
    const WireMessage& frame = host_.published.back();
    FUZZ_CHECK(protocol::ParseFrameKind(frame.headers) == FrameKind::kEnd, "no end sent");
    FUZZ_CHECK(protocol::UintHeader(frame.headers, protocol::kLastHeader) == sent_, "Micro-Last");
  }

  void CheckFinish() {
    absl::Status first = core_->Finish();
    FUZZ_CHECK(first.code() == expected_->code(),
               absl::StrCat("ended with ", first.ToString(), ", expected ", expected_->ToString()));
    FUZZ_CHECK(core_->Finish() == first, "the final status changed");
  }

  void CheckAfterOp(std::string_view line) {
    std::string where = absl::StrCat("after '", internal::ToAbsl(line), "'");
    FUZZ_CHECK(host_.ended <= 1,
               absl::StrCat("the connection heard of the end ", host_.ended, " times ", where));
    FUZZ_CHECK(ended() == expected_.has_value(),
               absl::StrCat(ended() ? "ended unexpectedly " : "did not end ", where,
                            expected_ ? expected_->ToString() : ""));
    if (was_ended_ && line.substr(0, 5) == "frame") {
      FUZZ_CHECK(host_.published.size() == published_before_,
                 absl::StrCat("an ended stream answered a frame ", where));
    }
    for (size_t i = published_before_; i < host_.published.size(); ++i) {
      const WireMessage& frame = host_.published[i];
      FUZZ_CHECK(frame.subject == peer_address_ && !frame.subject.empty(),
                 absl::StrCat("published to '", frame.subject, "' ", where));
      FUZZ_CHECK(frame.reply == kLocal, frame.reply);
      FrameKind kind = protocol::ParseFrameKind(frame.headers);
      FUZZ_CHECK(kind != FrameKind::kNone && kind != FrameKind::kUnknown, where);
      if (kind == FrameKind::kData) CheckPublishedData(frame, where);
    }
    if (!ended()) {
      FUZZ_CHECK(outgoing_.empty(),
                 absl::StrCat(outgoing_.size(), " sent messages unpublished ", where));
    }
    was_ended_ = ended();
    published_before_ = host_.published.size();
  }

  // A data frame the stream published holds the next messages it was given.
  void CheckPublishedData(const WireMessage& frame, const std::string& where) {
    FUZZ_CHECK(protocol::UintHeader(frame.headers, protocol::kSeqHeader) == published_ + 1,
               absl::StrCat("data frame not numbered ", published_ + 1, " ", where));
    std::vector<std::string> messages;
    if (frame.headers.count(protocol::kCountHeader) == 0) {
      messages.push_back(frame.data);
    } else {
      std::optional<uint64_t> count = protocol::UintHeader(frame.headers, protocol::kCountHeader);
      FUZZ_CHECK(count.has_value() && protocol::SplitBatch(frame.data, *count, &messages).ok(),
                 absl::StrCat("malformed batch published ", where));
    }
    for (const std::string& message : messages) {
      FUZZ_CHECK(!outgoing_.empty() && outgoing_.front() == message,
                 absl::StrCat("published '", message, "', not the next message sent ", where));
      outgoing_.pop_front();
      ++published_;
    }
  }

  FakeHost host_;
  std::shared_ptr<StreamCore> core_;
  const bool client_;
  const uint64_t window_;
  const uint64_t window_bytes_;
  uint64_t unacked_bytes_ = 0;        // Received after acked_.
  uint64_t consumed_bytes_ = 0;       // Of those, read.
  std::deque<std::string> outgoing_;  // Sent, not yet seen published.
  uint64_t peer_window_bytes_ = 0;
  std::deque<size_t> sent_sizes_;  // Of the messages sent after peer_acked_.
  uint64_t sent_unacked_bytes_ = 0;
  uint64_t published_ = 0;
  std::string peer_address_;
  uint64_t peer_window_ = 0;
  uint64_t peer_acked_ = 0;
  uint64_t sent_ = 0;
  bool send_closed_ = false;
  uint64_t received_ = 0;
  uint64_t consumed_ = 0;
  uint64_t acked_ = 0;
  bool peer_done_ = false;
  std::deque<std::string> queue_;
  std::optional<absl::Status> expected_;
  bool was_ended_ = false;
  size_t published_before_ = 0;
};

}  // namespace
}  // namespace micro::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<std::string_view> lines = micro::fuzz::Lines(micro::fuzz::AsText(data, size));
  if (lines.empty() || lines.size() > 200) return 0;
  std::vector<std::string_view> head;
  for (absl::string_view word : absl::StrSplit(micro::internal::ToAbsl(lines[0]), ' ')) {
    head.push_back(micro::internal::FromAbsl(word));
  }
  int window = head.size() > 1 ? std::clamp(micro::fuzz::ParseInt(head[1]), 1, 64) : 4;
  int peer_window = head.size() > 2 ? std::clamp(micro::fuzz::ParseInt(head[2]), 1, 64) : 4;
  int window_bytes = head.size() > 3 ? std::clamp(micro::fuzz::ParseInt(head[3]), 0, 1 << 16) : 0;
  micro::fuzz::Harness harness(head[0] != "server", window, peer_window, window_bytes);
  for (size_t i = 1; i < lines.size(); ++i) harness.Run(lines[i]);
  harness.Finish();
  return 0;
}
