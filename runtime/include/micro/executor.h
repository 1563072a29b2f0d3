// Executors run the work that must not happen on a NATS delivery thread:
// server handlers and client completion callbacks.
#ifndef MICRO_EXECUTOR_H_
#define MICRO_EXECUTOR_H_

#include <memory>

#include "absl/functional/any_invocable.h"

namespace micro {

// Runs tasks on threads it owns. Implementations are thread-safe.
class Executor {
 public:
  virtual ~Executor() = default;

  // Queues `task` to run once, on some thread of the executor. Never blocks and
  // never runs `task` on the calling thread. Tasks scheduled after the executor
  // began shutting down are still run before its destructor returns.
  virtual void Schedule(absl::AnyInvocable<void() &&> task) = 0;
};

// A fixed pool of `num_threads` threads (at least 1) sharing one FIFO queue.
// The destructor runs every queued task, then joins the threads; it must not be
// called from one of the pool's own threads.
std::shared_ptr<Executor> NewThreadPoolExecutor(int num_threads);

}  // namespace micro

#endif  // MICRO_EXECUTOR_H_
