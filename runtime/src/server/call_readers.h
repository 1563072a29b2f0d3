// Reads a server's calls from pull subscriptions on threads of its own, so
// that a call can run on the thread that read it: no hand-off to another
// thread, about a tenth of a call's latency on a 2-core machine
// (docs/PERFORMANCE.md). A watchdog keeps a slow call from holding up the
// ones behind it: once a callback has run for `handoff_after`, another
// thread takes over reading its subscription (as Go's scheduler takes a
// processor from a thread blocked in a system call), and the slow thread,
// when done, waits until a subscription needs a reader again.
//
// Threads: one reader per subscription, plus one per callback that outlived
// `handoff_after` (at most `max_running_here` of those run calls, so at most
// that many plus two per subscription; once that many are busy, calls wait
// for a slow callback to return), plus the watchdog, which checks every
// `handoff_after` (at most every second) while calls come in and sleeps once
// none has come for 25 checks. Threads that a hand-off added stay, idle,
// until Stop.
#ifndef MICRO_RUNTIME_SERVER_CALL_READERS_H_
#define MICRO_RUNTIME_SERVER_CALL_READERS_H_

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/time/time.h"
#include "micro/transport.h"

namespace micro::internal {

class CallReaders {
 public:
  // Called on a reader thread for each message read. `run_here`: no other
  // message waited to be read, and fewer than `max_running_here` callbacks
  // given it are running, so the callback may run the call itself;
  // otherwise it must hand the call to an executor and return.
  using Callback = absl::AnyInvocable<void(WireMessage message, bool run_here)>;

  // `handoff_after` > 0, `max_running_here` >= 1.
  CallReaders(absl::Duration handoff_after, int max_running_here);
  ~CallReaders();  // Calls Stop.
  CallReaders(const CallReaders&) = delete;
  CallReaders& operator=(const CallReaders&) = delete;

  // Starts reading `subscription`. Not after Stop.
  void Add(std::unique_ptr<PullSubscription> subscription, Callback callback);

  // Drains every subscription, hands each message it had received to the
  // callback, and returns once every callback has returned and every thread
  // has ended. (With the connection down there is no draining: messages not
  // yet read are dropped.) Idempotent, but not from two threads at once.
  void Stop();

 private:
  using Clock = std::chrono::steady_clock;

  struct Source {
    std::unique_ptr<PullSubscription> subscription;
    Callback callback;
    bool ended = false;  // Drained, or its connection closed for good.
  };

  struct Worker {
    std::thread thread;
    Source* source = nullptr;  // Read by this worker, or last read by it.
    bool in_callback = false;
    Clock::time_point callback_started;
    bool replaced = false;  // Another worker reads `source` now.
  };

  // A worker's thread: takes a source that needs a reader and reads it.
  void Work(Worker* self);
  // Reads `source` until it ends or `self` is replaced.
  void Read(Worker* self, Source* source);
  // The watchdog's thread.
  void Watch();
  // Lets another worker read the source of `worker`, whose callback is slow.
  // False, changing nothing, if every thread allowed is busy.
  bool HandOff(Worker* worker);
  void SpawnWorker();
  bool DrainedLocked() const;

  const Clock::duration handoff_after_;
  const Clock::duration tick_;
  const int max_running_here_;

  std::mutex mu_;
  std::condition_variable source_unread_;  // Idle workers wait on it.
  std::condition_variable watchdog_wake_;
  std::condition_variable progress_;  // A source ended or a callback returned.
  std::vector<std::unique_ptr<Source>> sources_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::deque<Source*> unread_;  // Sources without a reader.
  int idle_workers_ = 0;
  int running_here_ = 0;  // Callbacks given run_here, not yet returned.
  uint64_t callbacks_started_ = 0;
  bool watchdog_parked_ = false;
  bool stopping_ = false;
  std::thread watchdog_;
};

}  // namespace micro::internal

#endif  // MICRO_RUNTIME_SERVER_CALL_READERS_H_
