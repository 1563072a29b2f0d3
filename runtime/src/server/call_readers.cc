#include "server/call_readers.h"

#include <algorithm>
#include <utility>

namespace micro::internal {
namespace {

// How long Next waits before it is called again: only how often an idle
// reader wakes, since the end of a subscription wakes it at once.
constexpr absl::Duration kIdleWait = absl::Seconds(1);
// Ticks without a new callback before the watchdog sleeps until the next.
constexpr int kQuietTicksBeforeSleeping = 25;

}  // namespace

CallReaders::CallReaders(absl::Duration handoff_after, int max_running_here)
    : handoff_after_(absl::ToChronoNanoseconds(handoff_after)),
      // An infinite handoff_after still lets the watchdog see Stop.
      tick_(std::clamp<Clock::duration>(handoff_after_, std::chrono::microseconds(100),
                                        std::chrono::seconds(1))),
      max_running_here_(max_running_here) {}

CallReaders::~CallReaders() { Stop(); }

void CallReaders::Add(std::unique_ptr<PullSubscription> subscription, Callback callback) {
  std::lock_guard lock(mu_);
  sources_.push_back(
      std::make_unique<Source>(Source{std::move(subscription), std::move(callback)}));
  unread_.push_back(sources_.back().get());
  SpawnWorker();
  if (!watchdog_.joinable()) watchdog_ = std::thread([this] { Watch(); });
}

void CallReaders::SpawnWorker() {
  workers_.push_back(std::make_unique<Worker>());
  Worker* worker = workers_.back().get();
  worker->thread = std::thread([this, worker] { Work(worker); });
}

void CallReaders::Work(Worker* self) {
  std::unique_lock lock(mu_);
  while (true) {
    ++idle_workers_;
    source_unread_.wait(lock, [this] { return stopping_ || !unread_.empty(); });
    --idle_workers_;
    if (unread_.empty()) return;  // Stopping.
    Source* source = unread_.front();
    unread_.pop_front();
    self->source = source;
    self->replaced = false;
    lock.unlock();
    Read(self, source);
    lock.lock();
  }
}

void CallReaders::Read(Worker* self, Source* source) {
  while (true) {
    absl::StatusOr<WireMessage> message = source->subscription->Next(kIdleWait);
    if (!message.ok()) {
      if (message.status().code() != absl::StatusCode::kCancelled) continue;  // Nothing came.
      std::lock_guard lock(mu_);
      source->ended = true;
      progress_.notify_all();
      return;
    }
    bool run_here = source->subscription->Pending() == 0;
    {
      std::lock_guard lock(mu_);
      run_here = run_here && running_here_ < max_running_here_;
      if (run_here) ++running_here_;
      self->in_callback = true;
      self->callback_started = Clock::now();
      ++callbacks_started_;
      if (watchdog_parked_) {
        watchdog_parked_ = false;
        watchdog_wake_.notify_one();
      }
    }
    source->callback(*std::move(message), run_here);
    std::lock_guard lock(mu_);
    self->in_callback = false;
    if (run_here) --running_here_;
    if (self->replaced) {
      progress_.notify_all();
      return;
    }
  }
}

void CallReaders::Watch() {
  std::unique_lock lock(mu_);
  uint64_t seen = callbacks_started_;
  int quiet_ticks = 0;
  while (!stopping_) {
    quiet_ticks = callbacks_started_ == seen ? quiet_ticks + 1 : 0;
    seen = callbacks_started_;
    const Clock::time_point now = Clock::now();
    bool watching = false;
    // By index: a hand-off may add a worker.
    for (size_t i = 0; i < workers_.size(); ++i) {
      Worker* worker = workers_[i].get();
      if (!worker->in_callback || worker->replaced) continue;
      if (now - worker->callback_started < handoff_after_ || !HandOff(worker)) watching = true;
    }
    if (!watching && quiet_ticks >= kQuietTicksBeforeSleeping) {
      // The next callback wakes us.
      watchdog_parked_ = true;
      watchdog_wake_.wait(lock, [this] { return stopping_ || !watchdog_parked_; });
      quiet_ticks = 0;
      seen = callbacks_started_;
    } else {
      watchdog_wake_.wait_for(lock, tick_);
    }
  }
}

bool CallReaders::HandOff(Worker* worker) {
  if (static_cast<int>(unread_.size()) >= idle_workers_) {
    // Replaced workers that run calls are at most max_running_here_; the
    // others only hand calls on, and return soon.
    if (workers_.size() >= 2 * sources_.size() + static_cast<size_t>(max_running_here_)) {
      return false;
    }
    SpawnWorker();
  }
  worker->replaced = true;
  unread_.push_back(worker->source);
  source_unread_.notify_one();
  return true;
}

bool CallReaders::DrainedLocked() const {
  return std::all_of(sources_.begin(), sources_.end(),
                     [](const auto& source) { return source->ended; }) &&
         std::none_of(workers_.begin(), workers_.end(),
                      [](const auto& worker) { return worker->in_callback; });
}

void CallReaders::Stop() {
  std::unique_lock lock(mu_);
  if (stopping_) return;
  // Drain returns at once; the readers then take what is left and see the end.
  for (const auto& source : sources_) source->subscription->Drain();
  progress_.wait(lock, [this] { return DrainedLocked(); });
  stopping_ = true;
  source_unread_.notify_all();
  watchdog_wake_.notify_all();
  lock.unlock();
  // No worker is added once stopping_ is set, and each returns now.
  for (const auto& worker : workers_) worker->thread.join();
  if (watchdog_.joinable()) watchdog_.join();
}

}  // namespace micro::internal
