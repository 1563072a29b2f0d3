#include "util/timer_queue.h"

#include "absl/time/clock.h"

namespace micro::internal {

TimerQueue::TimerQueue() : thread_([this] { Run(); }) {}

TimerQueue::~TimerQueue() { Stop(); }

void TimerQueue::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    changed_.notify_one();
  }
  if (thread_.joinable()) thread_.join();
}

TimerQueue::Id TimerQueue::Schedule(absl::Time when, absl::AnyInvocable<void() &&> callback) {
  std::lock_guard lock(mu_);
  Id id = next_id_++;
  timers_.emplace(std::make_pair(when, id), std::move(callback));
  when_.emplace(id, when);
  // Waking the thread costs a context switch; needed only when it would
  // otherwise sleep past this timer.
  if (when < wakeup_) changed_.notify_one();
  return id;
}

bool TimerQueue::Cancel(Id id) {
  std::lock_guard lock(mu_);
  auto it = when_.find(id);
  if (it == when_.end()) return false;
  timers_.erase(std::make_pair(it->second, id));
  when_.erase(it);
  return true;
}

void TimerQueue::Run() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    wakeup_ = timers_.empty() ? absl::InfiniteFuture() : timers_.begin()->first.first;
    if (absl::Now() < wakeup_) {
      if (wakeup_ == absl::InfiniteFuture()) {
        changed_.wait(lock);
      } else {
        changed_.wait_until(lock, absl::ToChronoTime(wakeup_));
      }
      continue;
    }
    auto first = timers_.begin();
    absl::AnyInvocable<void()&&> callback = std::move(first->second);
    when_.erase(first->first.second);
    timers_.erase(first);
    lock.unlock();
    std::move(callback)();
    lock.lock();
  }
}

}  // namespace micro::internal
