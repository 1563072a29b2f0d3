// Runs a list of client or server interceptors in the order micro/interceptor.h
// promises, for one call.
#ifndef MICRO_RUNTIME_UTIL_INTERCEPTOR_CHAIN_H_
#define MICRO_RUNTIME_UTIL_INTERCEPTOR_CHAIN_H_

#include <cstddef>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "micro/interceptor.h"

namespace micro::internal {

template <typename Interceptor, typename Context>
class InterceptorChain {
 public:
  InterceptorChain(const std::vector<std::shared_ptr<Interceptor>>* interceptors,
                   const MethodInfo* method, Context* context)
      : interceptors_(interceptors), method_(method), context_(context) {}

  // Every OnStart in order, until one fails; its error, or OK.
  absl::Status Start() {
    for (const auto& interceptor : *interceptors_) {
      ++started_;
      if (absl::Status status = interceptor->OnStart(*method_, *context_); !status.ok()) {
        return status;
      }
    }
    return absl::OkStatus();
  }

  // The OnEnd of those whose OnStart ran, last first. Once.
  void End(const absl::Status& status) {
    for (; started_ > 0; --started_)
      (*interceptors_)[started_ - 1]->OnEnd(*method_, *context_, status);
  }

 private:
  const std::vector<std::shared_ptr<Interceptor>>* interceptors_;
  const MethodInfo* method_;
  Context* context_;
  size_t started_ = 0;
};

}  // namespace micro::internal

#endif  // MICRO_RUNTIME_UTIL_INTERCEPTOR_CHAIN_H_
