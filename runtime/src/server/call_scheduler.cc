#include "server/call_scheduler.h"

#include <algorithm>
#include <utility>

namespace micro::internal {

CallScheduler::CallScheduler(std::shared_ptr<Executor> executor, Limits limits)
    : executor_(std::move(executor)), limits_(limits) {}

bool CallScheduler::TrySchedule(const void* endpoint, Work work) {
  {
    std::lock_guard lock(mu_);
    if (!AdmitLocked()) return false;
    Lane& lane = lanes_[endpoint];
    if (lane.queued.empty()) turns_.push_back(endpoint);
    lane.queued.push_back(std::move(work));
  }
  // Every queued call is owed one task: this one, or a starved one's.
  executor_->Schedule([this] { RunNext(); });
  return true;
}

bool CallScheduler::TryAdmit() {
  std::lock_guard lock(mu_);
  return AdmitLocked();
}

bool CallScheduler::AdmitLocked() {
  if (limits_.max_calls > 0 && admitted_ >= limits_.max_calls) return false;
  ++admitted_;
  return true;
}

void CallScheduler::Finished() {
  std::lock_guard lock(mu_);
  FinishedLocked();
}

void CallScheduler::FinishedLocked() {
  // Notify under the lock: a waiter may destroy us as soon as it wakes.
  if (--admitted_ == 0) idle_.notify_all();
}

void CallScheduler::RunNext() {
  Work work;
  const void* endpoint = nullptr;
  {
    std::lock_guard lock(mu_);
    auto turn = std::find_if(turns_.begin(), turns_.end(), [this](const void* key) {
      return limits_.max_running_per_endpoint <= 0 ||
             lanes_[key].running < limits_.max_running_per_endpoint;
    });
    if (turn == turns_.end()) {
      ++starved_tasks_;
      return;
    }
    endpoint = *turn;
    turns_.erase(turn);
    Lane& lane = lanes_[endpoint];
    work = std::move(lane.queued.front());
    lane.queued.pop_front();
    ++lane.running;
    if (!lane.queued.empty()) turns_.push_back(endpoint);  // To the back of the line.
  }
  std::move(work)();
  bool reschedule = false;
  {
    std::lock_guard lock(mu_);
    Lane& lane = lanes_[endpoint];
    --lane.running;
    // A call of this endpoint may have been left waiting for this slot.
    if (starved_tasks_ > 0 && !lane.queued.empty()) {
      --starved_tasks_;
      reschedule = true;
    }
    if (lane.running == 0 && lane.queued.empty()) lanes_.erase(endpoint);
    FinishedLocked();
    if (reschedule) executor_->Schedule([this] { RunNext(); });
  }
}

void CallScheduler::WaitUntilIdle() {
  std::unique_lock lock(mu_);
  idle_.wait(lock, [this] { return admitted_ == 0; });
}

}  // namespace micro::internal
