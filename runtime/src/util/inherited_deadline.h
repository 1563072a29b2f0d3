// The deadline of the server call whose handler runs on this thread, so that
// calls the handler makes inherit it (docs/PROTOCOL.md, "Deadlines").
#ifndef MICRO_RUNTIME_UTIL_INHERITED_DEADLINE_H_
#define MICRO_RUNTIME_UTIL_INHERITED_DEADLINE_H_

#include "absl/time/time.h"

namespace micro::internal {

class InheritedDeadline {
 public:
  // While it lives, calls made on this thread end by `deadline` at the latest.
  explicit InheritedDeadline(absl::Time deadline) : previous_(current_) { current_ = deadline; }
  ~InheritedDeadline() { current_ = previous_; }
  InheritedDeadline(const InheritedDeadline&) = delete;
  InheritedDeadline& operator=(const InheritedDeadline&) = delete;

  // InfiniteFuture outside any handler.
  static absl::Time Current() { return current_; }

 private:
  static inline thread_local absl::Time current_ = absl::InfiniteFuture();
  const absl::Time previous_;
};

}  // namespace micro::internal

#endif  // MICRO_RUNTIME_UTIL_INHERITED_DEADLINE_H_
