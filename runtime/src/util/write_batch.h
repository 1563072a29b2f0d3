// Lets a thread that has more work queued hold back the writes of what it
// publishes and make them together, once it runs out of work: a burst of
// replies or requests then costs one system call instead of one each
// (docs/PERFORMANCE.md, "Writes in batches"). The threads that do this are
// the runtime's own: NATS delivery threads while their subscription has more
// messages queued, and the thread pool's workers while their queue is not
// empty. Publishes elsewhere are written at once.
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

// While one is open on a thread, publishes on it may be held back (Defer).
class WriteBatch {
 public:
  // Most publishes a thread holds back before it writes them anyway, so a
  // queue that never empties cannot hold them for long.
  static constexpr int kMaxDeferred = 32;

  // True if a publish on this thread that `writer` would write at once
  // should wait for the batch instead, which then flushes `writer`.
  static bool Defer(const std::shared_ptr<DeferredWriter>& writer);

  // Writes whatever this thread held back: before it blocks or sleeps.
  static void FlushThisThread();

  WriteBatch();
  ~WriteBatch();  // End(true), unless End was called.
  WriteBatch(const WriteBatch&) = delete;
  WriteBatch& operator=(const WriteBatch&) = delete;

  // `idle`: the thread has nothing more queued right now, so what it held
  // back is written if this is its outermost batch. Otherwise it stays held
  // until FlushThisThread, an idle End, or kMaxDeferred publishes.
  void End(bool idle);

 private:
  bool ended_ = false;
};

}  // namespace micro::internal

#endif  // MICRO_RUNTIME_UTIL_WRITE_BATCH_H_
