// Lets a thread that has more work queued hold back the writes of what it
// publishes and make them together, once it runs out of work: a burst of
// replies or requests then costs one system call instead of one each
// (docs/PERFORMANCE.md, "Writes in batches"). The threads that do this are
// the runtime's own: a NATS delivery thread handling a message while more
// wait behind it, and a worker of the thread pool running a task while more
// are queued. Publishes elsewhere are written at once, and a thread that
// blocks (a blocking call, a stream waiting for its peer) writes what it
// held first. A held publish that nothing writes (the work after it blocks
// in user code) goes out with the transport's backstop, about 1 ms later.
#ifndef MICRO_RUNTIME_UTIL_WRITE_BATCH_H_
#define MICRO_RUNTIME_UTIL_WRITE_BATCH_H_

#include <memory>

namespace micro::internal {

// What a transport gives a batch to write its held-back publishes with. May
// outlive the transport: its Flush must then do nothing.
class DeferredWriter {
 public:
  virtual ~DeferredWriter() = default;
  virtual void Flush() = 0;
};

// While one that holds is open on a thread, publishes on it are held back
// (Defer) until the thread runs out of work.
class WriteBatch {
 public:
  // Most publishes a thread holds back before it writes them anyway, so a
  // queue that never empties cannot hold them for long.
  static constexpr int kMaxDeferred = 32;

  // True if a publish on this thread that `writer` would write at once
  // should wait instead: the innermost open batch holds. What waits is
  // written by an idle End or by FlushThisThread.
  static bool Defer(const std::shared_ptr<DeferredWriter>& writer);

  // Writes whatever this thread held back: before it blocks or sleeps.
  static void FlushThisThread();

  // `hold`: the thread has more work queued right now, so its publishes may
  // wait for what that work publishes.
  explicit WriteBatch(bool hold);
  ~WriteBatch();  // End(true), unless End was called.
  WriteBatch(const WriteBatch&) = delete;
  WriteBatch& operator=(const WriteBatch&) = delete;

  // `idle`: the thread has nothing more queued right now, so what it held
  // back is written, unless an outer batch is still open.
  void End(bool idle);

 private:
  bool outer_hold_;  // The enclosing batch's, restored by End.
  bool ended_ = false;
};

}  // namespace micro::internal

#endif  // MICRO_RUNTIME_UTIL_WRITE_BATCH_H_
