// One thread that runs callbacks at given times: call deadlines, stream
// deadlines and heartbeats of a transport share it.
#ifndef MICRO_RUNTIME_UTIL_TIMER_QUEUE_H_
#define MICRO_RUNTIME_UTIL_TIMER_QUEUE_H_

#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <thread>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/any_invocable.h"
#include "absl/time/time.h"

namespace micro::internal {

class TimerQueue {
 public:
  using Id = uint64_t;

  TimerQueue();
  ~TimerQueue();  // Stop().

  // Waits for a running callback to return, then stops the thread: later
  // timers never run (Schedule still accepts them). Idempotent; must not be
  // called from a callback.
  void Stop();
  TimerQueue(const TimerQueue&) = delete;
  TimerQueue& operator=(const TimerQueue&) = delete;

  // Runs `callback` on the timer thread at `when` (at once if it has passed).
  // Callbacks must not block: they delay every later timer.
  Id Schedule(absl::Time when, absl::AnyInvocable<void() &&> callback);

  // Drops a timer that has not started running; false if it already ran, is
  // running, or never existed.
  bool Cancel(Id id);

 private:
  void Run();

  std::mutex mu_;
  std::condition_variable changed_;
  bool stopping_ = false;
  Id next_id_ = 1;
  std::map<std::pair<absl::Time, Id>, absl::AnyInvocable<void() &&>> timers_;
  absl::flat_hash_map<Id, absl::Time> when_;
  // When the thread wakes next on its own; earlier timers must wake it.
  absl::Time wakeup_ = absl::InfiniteFuture();
  std::thread thread_;  // Last: starts after the members it uses exist.
};

}  // namespace micro::internal

#endif  // MICRO_RUNTIME_UTIL_TIMER_QUEUE_H_
