// Admission control and fair dispatch of a server's calls: at most
// `max_calls` admitted and unfinished (beyond that a call is refused at once,
// so overload is shed instead of queued without bound), run on an executor
// round-robin across endpoints, with at most `max_running_per_endpoint` of
// one endpoint's handlers running at a time, so one slow endpoint cannot
// occupy every thread.
#ifndef MICRO_RUNTIME_SERVER_CALL_SCHEDULER_H_
#define MICRO_RUNTIME_SERVER_CALL_SCHEDULER_H_

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/any_invocable.h"
#include "micro/executor.h"

namespace micro::internal {

class CallScheduler {
 public:
  struct Limits {
    int max_calls = 0;                 // <= 0: no limit.
    int max_running_per_endpoint = 0;  // <= 0: no limit.
  };
  using Work = absl::AnyInvocable<void() &&>;

  CallScheduler(std::shared_ptr<Executor> executor, Limits limits);
  CallScheduler(const CallScheduler&) = delete;
  CallScheduler& operator=(const CallScheduler&) = delete;

  // Admits `work` for `endpoint` (any key; calls with equal keys share a
  // lane) and runs it later on the executor; false, running nothing, when
  // `max_calls` calls are admitted and unfinished.
  bool TrySchedule(const void* endpoint, Work work);

  // Admits a call that the caller runs itself, counted against `max_calls`
  // like a scheduled one; false when that many are admitted and unfinished.
  // Finished must follow each true.
  bool TryAdmit();
  void Finished();

  // Blocks until every admitted call has finished.
  void WaitUntilIdle();

 private:
  struct Lane {
    std::deque<Work> queued;
    int running = 0;
  };

  // One executor task: runs the next call that may run, if any.
  void RunNext();
  bool AdmitLocked();
  void FinishedLocked();

  const std::shared_ptr<Executor> executor_;
  const Limits limits_;

  std::mutex mu_;
  std::condition_variable idle_;
  int admitted_ = 0;  // Queued or running.
  absl::flat_hash_map<const void*, Lane> lanes_;
  // Endpoints with queued calls, each once, in the order they get a turn.
  std::deque<const void*> turns_;
  // Executor tasks that found every queued call's endpoint at its limit;
  // each is owed a new task when one of those calls finishes.
  int starved_tasks_ = 0;
};

}  // namespace micro::internal

#endif  // MICRO_RUNTIME_SERVER_CALL_SCHEDULER_H_
