// Runs a nats.c connection in nats.c's external event loop mode
// (natsOptions_SetEventLoop), on a thread of our own, so that we decide when
// the connection's buffered publishes reach the socket: a publish is written
// at once (Flush right after it), unless it was made on a thread that has more
// work queued right now (util/write_batch.h), where it waits for the batch:
// the replies a delivery thread publishes for a burst of calls then cost one
// system call, not one each (docs/PERFORMANCE.md, "Writes in batches").
//
// A publish held back has a backstop: while publishes are being held, the
// loop thread wakes every millisecond and writes what is buffered, so a
// batch whose thread then blocks (a handler that blocks) delays its writes
// by about 1 ms at most. (nats.c's own flusher thread, which would do that,
// wakes twice a millisecond whenever anything is published, held or not: it
// is off, since each publish is written by its publisher.) Reading is ours
// too: the loop thread calls natsConnection_ProcessReadEvent when the
// socket is readable, where nats.c would have read on a thread of its own.
#ifndef MICRO_RUNTIME_TRANSPORT_SOCKET_LOOP_H_
#define MICRO_RUNTIME_TRANSPORT_SOCKET_LOOP_H_

#include <nats/nats.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "util/write_batch.h"

namespace micro::internal {

class SocketLoop;

// A transport's handle on its loop for writing, which WriteBatch may hold on
// to after the transport is gone: Close makes Flush a no-op first.
class ConnectionWriter final : public DeferredWriter {
 public:
  explicit ConnectionWriter(SocketLoop* loop) : loop_(loop) {}

  // SocketLoop::Flush, until Close.
  void Flush() override;
  void Close();

 private:
  std::mutex mu_;
  SocketLoop* loop_;  // Guarded by mu_; null once closed.
};

// The event loop of one connection: an epoll thread.
class SocketLoop {
 public:
  static constexpr natsSock kNoSocket = -1;

  static absl::StatusOr<std::unique_ptr<SocketLoop>> Create();
  // After the connection was closed: waits for nats.c to detach it (a
  // reconnect thread giving up may still be closing it), then stops the
  // thread. If nats.c never detaches, the loop is stopped but leaked, since
  // nats.c may still call it.
  static void Destroy(std::unique_ptr<SocketLoop> loop);
  ~SocketLoop();  // Stops the thread: only without an attached connection.

  // Makes the connection that `options` creates run on this loop.
  natsStatus Install(natsOptions* options);

  // While one is open, what this thread publishes on the loop's connection
  // is the thread's to Flush or Hold: nats.c's request to write it is
  // ignored.
  class Publishing {
   public:
    explicit Publishing(SocketLoop* loop);
    ~Publishing();
    Publishing(const Publishing&) = delete;
    Publishing& operator=(const Publishing&) = delete;

   private:
    SocketLoop* const outer_;
  };

  // After a publish is held back instead of flushed: the backstop writes it
  // within about 1 ms if nothing else does.
  void Hold();

  // Writes what the connection buffered, at once, on this thread, or on the
  // one writing already (the rest of a partial write goes once the socket
  // can take it). Any thread that does not hold the connection's lock (the
  // callbacks below do).
  void Flush();

  // Has the loop thread Flush.
  void FlushOnLoop();

  // Blocks while more than kMaxBacklog bytes wait for the socket (until
  // they are written, or the connection is closed), as a publisher with
  // SendAsap blocks in its write: publishers that leave their bytes to the
  // thread writing must not grow the buffer without bound. Not on the loop
  // thread (returns at once).
  void WaitWhileBacklogged();
  static constexpr int kMaxBacklog = 1 << 20;

 private:
  SocketLoop() = default;

  static natsStatus OnAttach(void** user_data, void* loop, natsConnection* connection,
                             natsSock socket);
  static natsStatus OnRead(void* user_data, bool add);
  static natsStatus OnWrite(void* user_data, bool add);
  static natsStatus OnDetach(void* user_data);

  void Run();
  void Wake();
  // Flush's write, by the one thread that set writing_now_.
  void WriteLocked();
  // Registers the socket for the events wanted, or removes it when none is:
  // a socket a child process still holds a copy of would otherwise keep
  // reporting its hang-up after nats.c closed it. Holding mu_.
  void UpdateLocked();

  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  // Set by the one thread that writes (Flush), around its Buffered check
  // and natsConnection_ProcessWriteEvent, which must not see an empty
  // buffer: it would take the 0 bytes written for a closed connection.
  std::atomic<bool> writing_now_{false};
  std::atomic<bool> flush_wanted_{false};  // Someone asked since the last write began.
  std::mutex mu_;
  std::condition_variable changed_;  // Detached, or wrote some backlog.
  natsSock socket_ = kNoSocket;      // Guarded by mu_, as are the next four.
  bool reading_ = false;
  bool writing_ = false;  // Waiting for the socket to take the rest.
  bool registered_ = false;
  bool attached_ = false;
  std::atomic<int> backlog_{0};  // Bytes buffered after the last partial write.
  // The attached connection (set and cleared holding mu_), and writing_ to
  // read without the lock.
  std::atomic<natsConnection*> live_connection_{nullptr};
  std::atomic<natsSock> socket_now_{kNoSocket};
  std::atomic<bool> waiting_for_socket_{false};
  // The backstop: armed while publishes are held; `holds_` counts them.
  std::atomic<bool> backstop_armed_{false};
  std::atomic<uint64_t> holds_{0};
  std::atomic<bool> write_requested_{false};
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace micro::internal

#endif  // MICRO_RUNTIME_TRANSPORT_SOCKET_LOOP_H_
