// Per-call state: the deadline and the metadata that travel with a call.
#ifndef MICRO_CONTEXT_H_
#define MICRO_CONTEXT_H_

#include <map>
#include <string>
#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace micro {

// Call metadata. Keys are lower-case ASCII letters, digits and `-_.`; they may
// not start with `micro-` or `nats-` (reserved for the protocol). Values are
// printable ASCII (space to `~`). See docs/PROTOCOL.md.
using Metadata = std::multimap<std::string, std::string>;

// OK if `key` and `value` may be sent as metadata, else INVALID_ARGUMENT
// naming the offending key.
absl::Status ValidateMetadata(std::string_view key, std::string_view value);

// The caller's side of one call. Not thread-safe; one context per call, and it
// must outlive the call (for async calls: until the completion runs).
class ClientContext {
 public:
  ClientContext() = default;
  ClientContext(const ClientContext&) = delete;
  ClientContext& operator=(const ClientContext&) = delete;

  // The call fails with DEADLINE_EXCEEDED if no reply arrives by `deadline`.
  // The remaining time travels to the server. Without a deadline the client's
  // `ClientOptions::default_timeout` applies.
  void set_deadline(absl::Time deadline) { deadline_ = deadline; }
  void set_timeout(absl::Duration timeout) { deadline_ = absl::Now() + timeout; }
  absl::Time deadline() const { return deadline_; }

  // What a call does while no server can be reached: by default (false) it
  // fails at once with UNAVAILABLE, so callers can react. With true it
  // waits: while the NATS connection is down, and while no server listens
  // on the method's subject, it is sent again after the
  // client's RetryPolicy backoffs (neither max_attempts nor the retry
  // budget limit this), until it goes through or its deadline passes; then
  // it fails with DEADLINE_EXCEEDED. Streams wait likewise, and opening
  // one then blocks until a server accepted it.
  void set_wait_for_ready(bool wait) { wait_for_ready_ = wait; }
  bool wait_for_ready() const { return wait_for_ready_; }

  // Adds request metadata. Keys are lower-cased; an invalid key or value
  // makes the call fail with INVALID_ARGUMENT before anything is sent.
  void AddMetadata(std::string_view key, std::string_view value);
  const Metadata& metadata() const { return metadata_; }

  // Metadata the server attached to its reply; filled when the call
  // completes. For streams, its trailing metadata (and the initial metadata
  // of a stream that ended without a response message).
  const Metadata& response_metadata() const { return response_metadata_; }
  Metadata* mutable_response_metadata() { return &response_metadata_; }

  // Streams: the server's initial metadata, which came with its first
  // response message; filled when that message is read. (A unary reply has
  // one set of metadata: response_metadata.)
  const Metadata& initial_metadata() const { return initial_metadata_; }
  Metadata* mutable_initial_metadata() { return &initial_metadata_; }

 private:
  absl::Time deadline_ = absl::InfiniteFuture();
  bool wait_for_ready_ = false;
  Metadata metadata_;
  Metadata response_metadata_;
  Metadata initial_metadata_;
};

// The handler's side of one call. Handlers may construct one in unit tests.
class ServerContext {
 public:
  ServerContext(std::string method, absl::Time deadline, Metadata client_metadata)
      : method_(std::move(method)),
        deadline_(deadline),
        client_metadata_(std::move(client_metadata)) {}
  ServerContext(const ServerContext&) = delete;
  ServerContext& operator=(const ServerContext&) = delete;

  // The full method name, `package.Service.Method`.
  const std::string& method() const { return method_; }

  // When the caller stops waiting (InfiniteFuture if it sent no timeout). Work
  // past this point is wasted: the reply will be discarded.
  absl::Time deadline() const { return deadline_; }
  bool IsExpired() const { return absl::Now() >= deadline_; }

  // Request metadata, keys lower-cased.
  const Metadata& client_metadata() const { return client_metadata_; }

  // Adds metadata to the reply, sent with success and error replies alike.
  // An invalid key or value turns the reply into an INTERNAL error naming it.
  void AddResponseMetadata(std::string_view key, std::string_view value);
  const Metadata& response_metadata() const { return response_metadata_; }

  // Streams: metadata the caller reads with the first response message
  // (ClientContext::initial_metadata), long before the stream ends. It goes
  // out with the handler's first Write; what is added after that, or when
  // the handler writes nothing, goes with the response (trailing) metadata
  // at the end, so none is lost. Unary calls have one reply, which carries
  // it with the response metadata. Invalid entries: as AddResponseMetadata.
  void AddInitialMetadata(std::string_view key, std::string_view value);
  // What is added and not sent yet.
  const Metadata& initial_metadata() const { return initial_metadata_; }
  // For the framework: hands over what is not sent yet, to send it.
  Metadata TakeInitialMetadata() { return std::exchange(initial_metadata_, {}); }

 private:
  std::string method_;
  absl::Time deadline_;
  Metadata client_metadata_;
  Metadata response_metadata_;
  Metadata initial_metadata_;
};

}  // namespace micro

#endif  // MICRO_CONTEXT_H_
