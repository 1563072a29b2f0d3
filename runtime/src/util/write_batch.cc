#include "util/write_batch.h"

#include <utility>
#include <vector>

namespace micro::internal {
namespace {

// This thread's open batches and what they hold back.
struct Batches {
  int open = 0;
  bool hold = false;  // The innermost open batch's.
  int deferred_publishes = 0;
  std::vector<std::shared_ptr<DeferredWriter>> writers;
};
thread_local Batches batches;

}  // namespace

bool WriteBatch::Defer(const std::shared_ptr<DeferredWriter>& writer) {
  if (!batches.hold) return false;
  bool held = false;
  for (const auto& other : batches.writers) held = held || other == writer;
  if (!held) batches.writers.push_back(writer);
  if (++batches.deferred_publishes >= kMaxDeferred) FlushThisThread();
  return true;
}

void WriteBatch::FlushThisThread() {
  batches.deferred_publishes = 0;
  if (batches.writers.empty()) return;
  std::vector<std::shared_ptr<DeferredWriter>> writers;
  writers.swap(batches.writers);
  for (const auto& writer : writers) writer->Flush();
}

WriteBatch::WriteBatch(bool hold) : outer_hold_(batches.hold) {
  ++batches.open;
  batches.hold = hold;
}

WriteBatch::~WriteBatch() {
  if (!ended_) End(true);
}

void WriteBatch::End(bool idle) {
  ended_ = true;
  batches.hold = outer_hold_;
  if (--batches.open == 0 && idle) FlushThisThread();
}

}  // namespace micro::internal
