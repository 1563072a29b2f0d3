#include "transport/socket_loop.h"

#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <optional>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace micro::internal {
namespace {

// How long Destroy waits for nats.c to detach a closed connection.
constexpr auto kDetachTimeout = std::chrono::seconds(10);

// Set by the write callback when nats.c has written everything it buffered,
// on the thread that called natsConnection_ProcessWriteEvent.
thread_local bool all_written = false;

// Whether this thread is in natsConnection_ProcessWriteEvent, called by
// WriteLocked.
thread_local bool in_write_event = false;

// The loop whose thread this is, if any: it writes what it was asked to
// after each round anyway.
thread_local SocketLoop* loop_of_this_thread = nullptr;

// The loop whose connection this thread is publishing on (Publishing).
thread_local SocketLoop* publishing_on = nullptr;

// How long a publisher waits for a full socket before it checks the
// connection again.
constexpr int kFullSocketPollMs = 100;

// How long a held publish may wait for the backstop.
constexpr auto kBackstop = std::chrono::milliseconds(1);

}  // namespace

void ConnectionWriter::Flush() {
  std::lock_guard lock(mu_);
  if (loop_ != nullptr) loop_->Flush();
}

void ConnectionWriter::Close() {
  std::lock_guard lock(mu_);
  loop_ = nullptr;
}

absl::StatusOr<std::unique_ptr<SocketLoop>> SocketLoop::Create() {
  std::unique_ptr<SocketLoop> loop(new SocketLoop);
  loop->epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  loop->wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (loop->epoll_fd_ < 0 || loop->wake_fd_ < 0) {
    return absl::InternalError(absl::StrCat("socket loop: ", std::strerror(errno)));
  }
  epoll_event wake{};
  wake.events = EPOLLIN;
  wake.data.u64 = 0;
  if (epoll_ctl(loop->epoll_fd_, EPOLL_CTL_ADD, loop->wake_fd_, &wake) != 0) {
    return absl::InternalError(absl::StrCat("socket loop: ", std::strerror(errno)));
  }
  loop->thread_ = std::thread([raw = loop.get()] { raw->Run(); });
  return loop;
}

void SocketLoop::Destroy(std::unique_ptr<SocketLoop> loop) {
  if (loop == nullptr) return;
  bool detached;
  {
    std::unique_lock lock(loop->mu_);
    detached = loop->changed_.wait_for(lock, kDetachTimeout, [&] { return !loop->attached_; });
  }
  if (detached) return;  // ~SocketLoop.
  loop->stopping_.store(true);
  loop->Wake();
  loop->thread_.join();
  loop.release();  // nats.c may still call OnDetach.
}

SocketLoop::~SocketLoop() {
  stopping_.store(true);
  if (thread_.joinable()) {
    Wake();
    thread_.join();
  }
  if (wake_fd_ >= 0) close(wake_fd_);
  if (epoll_fd_ >= 0) close(epoll_fd_);
}

natsStatus SocketLoop::Install(natsOptions* options) {
  natsStatus s = natsOptions_SetEventLoop(options, this, &OnAttach, &OnRead, &OnWrite, &OnDetach);
  // No flusher thread: nats.c asks for each write (OnWrite) at once.
  if (s == NATS_OK) s = natsOptions_SetSendAsap(options, true);
  return s;
}

SocketLoop::Publishing::Publishing(SocketLoop* loop) : outer_(publishing_on) {
  publishing_on = loop;
}

SocketLoop::Publishing::~Publishing() { publishing_on = outer_; }

void SocketLoop::Hold() {
  holds_.fetch_add(1);
  if (!backstop_armed_.load() && !backstop_armed_.exchange(true) && loop_of_this_thread != this) {
    Wake();
  }
}

void SocketLoop::Flush() {
  // A thread that finds another writing leaves its bytes to that one, which
  // goes round again when asked meanwhile: publishers on many threads
  // neither queue up on the lock nor make a system call each.
  flush_wanted_.store(true);
  // The writer stores writing_now_ false before it reads flush_wanted_, and
  // a thread that found it writing stored flush_wanted_ before it looked:
  // one of the two sees the other.
  while (flush_wanted_.load() && !writing_now_.exchange(true)) {
    flush_wanted_.store(false);
    WriteLocked();
    writing_now_.store(false);
  }
}

void SocketLoop::WriteLocked() {
  natsConnection* connection = live_connection_.load();
  if (connection == nullptr) return;
  // The buffer is never empty here after a reconnect began, when nats.c
  // empties it: it then re-sends the subscriptions (the inbox's, at least).
  all_written = natsConnection_Buffered(connection) <= 0;
  while (!all_written) {
    in_write_event = true;
    natsConnection_ProcessWriteEvent(connection);
    in_write_event = false;
    // A full socket: an application's thread waits for it, as a blocking
    // write would (handing the rest to the loop costs two epoll changes and
    // a wake-up each time); the loop's own thread must not.
    if (all_written || loop_of_this_thread == this ||
        natsConnection_Status(connection) != NATS_CONN_STATUS_CONNECTED) {
      break;
    }
    // Publishers that leave their bytes to this thread meanwhile wait
    // while the backlog is over the limit (WaitWhileBacklogged).
    backlog_.store(natsConnection_Buffered(connection));
    changed_.notify_all();
    pollfd writable{socket_now_.load(), POLLOUT, 0};
    poll(&writable, 1, kFullSocketPollMs);
    all_written = natsConnection_Buffered(connection) <= 0;
  }
  // The usual case, everything written and nothing waiting: no lock.
  if (all_written && !waiting_for_socket_.load() && backlog_.load() == 0) return;
  int backlog = all_written ? 0 : natsConnection_Buffered(connection);
  // Nothing written because the connection is gone (a reconnect began, and
  // nats.c will drop this buffer): waiting for the old socket to take it
  // would spin on its hang-up.
  const bool wait_for_socket =
      !all_written && natsConnection_Status(connection) == NATS_CONN_STATUS_CONNECTED;
  std::lock_guard lock(mu_);
  backlog_.store(backlog);
  changed_.notify_all();
  // After a partial write (or none: a reconnect began) the rest goes once
  // the socket takes it.
  if (writing_ != wait_for_socket && live_connection_.load() != nullptr) {
    writing_ = wait_for_socket;
    waiting_for_socket_.store(wait_for_socket);
    UpdateLocked();
  }
}

void SocketLoop::WaitWhileBacklogged() {
  if (loop_of_this_thread == this || backlog_.load() <= kMaxBacklog) return;
  std::unique_lock lock(mu_);
  while (attached_ && !stopping_.load() && backlog_.load() > kMaxBacklog) {
    changed_.wait_for(lock, std::chrono::milliseconds(10));
  }
}

void SocketLoop::FlushOnLoop() {
  write_requested_.store(true);
  if (loop_of_this_thread != this) Wake();
}

void SocketLoop::Wake() {
  uint64_t one = 1;
  // Fails only when the counter is full, and then the loop wakes anyway.
  [[maybe_unused]] ssize_t n = write(wake_fd_, &one, sizeof(one));
}

natsStatus SocketLoop::OnAttach(void** user_data, void* loop, natsConnection* connection,
                                natsSock socket) {
  auto* self = static_cast<SocketLoop*>(loop);
  std::lock_guard lock(self->mu_);
  // Before a reconnect nats.c stopped reading the old socket (OnRead false),
  // which took it out of the epoll set while it was still open.
  self->registered_ = false;
  self->socket_ = socket;
  self->socket_now_.store(socket);
  self->reading_ = true;  // nats.c never asks: attaching means reading.
  self->writing_ = false;
  self->waiting_for_socket_.store(false);
  self->UpdateLocked();
  if (!self->registered_) return NATS_ERR;  // nats.c then frees the connection.
  self->live_connection_.store(connection);
  self->attached_ = true;
  *user_data = self;
  return NATS_OK;
}

natsStatus SocketLoop::OnRead(void* user_data, bool add) {
  auto* self = static_cast<SocketLoop*>(user_data);
  std::lock_guard lock(self->mu_);
  self->reading_ = add;
  self->UpdateLocked();
  return NATS_OK;
}

natsStatus SocketLoop::OnWrite(void* user_data, bool add) {
  auto* self = static_cast<SocketLoop*>(user_data);
  if (!add) {
    all_written = true;
    // Within a write of ours, WriteLocked settles what follows.
    if (in_write_event) return NATS_OK;
    std::lock_guard lock(self->mu_);  // nats.c stops polling: disconnected.
    if (self->writing_) {
      self->writing_ = false;
      self->waiting_for_socket_.store(false);
      self->UpdateLocked();
    }
    return NATS_OK;
  }
  // nats.c wants buffered data written: a publish (its publisher's to
  // write), a PING, a protocol line. nats.c holds the connection's lock
  // here, so the loop thread writes it.
  if (publishing_on != self) self->FlushOnLoop();
  return NATS_OK;
}

natsStatus SocketLoop::OnDetach(void* user_data) {
  auto* self = static_cast<SocketLoop*>(user_data);
  std::lock_guard lock(self->mu_);
  self->reading_ = false;
  self->writing_ = false;
  self->waiting_for_socket_.store(false);
  self->UpdateLocked();
  self->live_connection_.store(nullptr);
  self->socket_ = kNoSocket;
  self->socket_now_.store(kNoSocket);
  self->attached_ = false;
  self->changed_.notify_all();
  return NATS_OK;
}

void SocketLoop::UpdateLocked() {
  if (socket_ == kNoSocket) return;
  if (!reading_ && !writing_) {
    if (registered_) epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, socket_, nullptr);
    registered_ = false;
    return;
  }
  epoll_event event{};
  event.events = (reading_ ? uint32_t{EPOLLIN} : 0u) | (writing_ ? uint32_t{EPOLLOUT} : 0u);
  event.data.u64 = 1;
  if (registered_) {
    epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, socket_, &event);
    return;
  }
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, socket_, &event) == 0 ||
      (errno == EEXIST && epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, socket_, &event) == 0)) {
    registered_ = true;
  }
}

void SocketLoop::Run() {
  loop_of_this_thread = this;
  epoll_event events[4];
  std::optional<std::chrono::steady_clock::time_point> backstop;
  while (!stopping_.load()) {
    int timeout_ms = -1;
    if (backstop_armed_.load()) {
      auto now = std::chrono::steady_clock::now();
      if (!backstop.has_value()) backstop = now + kBackstop;
      auto left = std::chrono::ceil<std::chrono::milliseconds>(*backstop - now).count();
      timeout_ms = static_cast<int>(std::max<int64_t>(0, left));
    }
    int n = epoll_wait(epoll_fd_, events, 4, timeout_ms);
    if (n < 0 && errno != EINTR) break;
    bool readable = false;
    bool writable = false;
    for (int i = 0; i < n; ++i) {
      if (events[i].data.u64 == 0) {
        uint64_t count;
        [[maybe_unused]] ssize_t r = read(wake_fd_, &count, sizeof(count));
        continue;
      }
      if (events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) readable = true;
      if (events[i].events & EPOLLOUT) writable = true;
    }
    natsConnection* connection = live_connection_.load();
    // The connection stays allocated until the transport destroys it, after
    // this loop has stopped.
    if (connection != nullptr && readable) natsConnection_ProcessReadEvent(connection);
    bool flush = writable || write_requested_.exchange(false);
    if (backstop.has_value() && std::chrono::steady_clock::now() >= *backstop) {
      flush = true;
      backstop.reset();
      // Disarmed before the count is read: a Hold in between either sees
      // the backstop off and arms it, or is counted here.
      backstop_armed_.store(false);
      if (holds_.exchange(0) > 0) backstop_armed_.store(true);  // Still holding: keep it.
    }
    if (connection != nullptr && flush) Flush();
  }
}

}  // namespace micro::internal
