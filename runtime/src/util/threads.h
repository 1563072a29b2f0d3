// Thread counts for the executors the runtime creates when the user gives none.
#ifndef MICRO_RUNTIME_UTIL_THREADS_H_
#define MICRO_RUNTIME_UTIL_THREADS_H_

#include <algorithm>
#include <thread>

namespace micro::internal {

// One thread per core, and at least 2 so one slow handler cannot stall the rest.
inline int DefaultThreadCount() {
  return std::max(2, static_cast<int>(std::thread::hardware_concurrency()));
}

}  // namespace micro::internal

#endif  // MICRO_RUNTIME_UTIL_THREADS_H_
