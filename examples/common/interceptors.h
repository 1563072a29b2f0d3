// Three interceptors (micro/interceptor.h) of the kind every service grows:
// a log line per call, a bearer-token check, and per-method metrics; and the
// client side of the token. They see unary and streaming calls alike.
#ifndef MICRO_EXAMPLES_COMMON_INTERCEPTORS_H_
#define MICRO_EXAMPLES_COMMON_INTERCEPTORS_H_

#include <cstdio>
#include <map>
#include <mutex>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "micro/interceptor.h"

namespace micro::examples {

// A server interceptor told how long each call took. Interceptor objects
// are shared by all calls, so per-call state is kept by the call's context,
// which lives from OnStart to OnEnd.
class TimingInterceptor : public ServerInterceptor {
 public:
  absl::Status OnStart(const MethodInfo&, ServerContext& context) override {
    std::lock_guard lock(mu_);
    started_[&context] = absl::Now();
    return absl::OkStatus();
  }
  void OnEnd(const MethodInfo& method, ServerContext& context,
             const absl::Status& status) override {
    absl::Duration took;
    {
      std::lock_guard lock(mu_);
      auto it = started_.find(&context);
      if (it == started_.end()) return;
      took = absl::Now() - it->second;
      started_.erase(it);
    }
    OnCallDone(method, status, took);
  }

 protected:
  virtual void OnCallDone(const MethodInfo& method, const absl::Status& status,
                          absl::Duration took) = 0;

 private:
  std::mutex mu_;
  std::map<const ServerContext*, absl::Time> started_;
};

// One line on stderr per call: method, status and time taken.
class LoggingInterceptor final : public TimingInterceptor {
 public:
  explicit LoggingInterceptor(std::string prefix) : prefix_(std::move(prefix)) {}

 protected:
  void OnCallDone(const MethodInfo& method, const absl::Status& status,
                  absl::Duration took) override {
    std::fprintf(stderr, "%s: %s %s in %s\n", prefix_.c_str(), std::string(method.subject).c_str(),
                 absl::StatusCodeToString(status.code()).c_str(),
                 absl::FormatDuration(took).c_str());
  }

 private:
  const std::string prefix_;
};

// Refuses calls whose `authorization` metadata is not `Bearer <token>`,
// before the handler runs.
class TokenCheckInterceptor final : public ServerInterceptor {
 public:
  explicit TokenCheckInterceptor(std::string token)
      : expected_(absl::StrCat("Bearer ", std::move(token))) {}

  absl::Status OnStart(const MethodInfo&, ServerContext& context) override {
    auto it = context.client_metadata().find("authorization");
    if (it == context.client_metadata().end()) {
      return absl::UnauthenticatedError("missing authorization metadata");
    }
    if (it->second != expected_) return absl::UnauthenticatedError("invalid token");
    return absl::OkStatus();
  }

 private:
  const std::string expected_;
};

// Calls, errors and total time per method, since the server started.
class MetricsInterceptor final : public TimingInterceptor {
 public:
  struct Counters {
    int64_t calls = 0;
    int64_t errors = 0;
    absl::Duration total;
  };

  // One line per method, e.g. for a shutdown report or a metrics endpoint.
  std::string Report() const {
    std::lock_guard lock(mu_);
    std::string report;
    for (const auto& [method, counters] : by_method_) {
      absl::StrAppend(&report, method, ": ", counters.calls, " calls, ", counters.errors,
                      " errors, mean ", absl::FormatDuration(counters.total / counters.calls),
                      "\n");
    }
    return report;
  }

 protected:
  void OnCallDone(const MethodInfo& method, const absl::Status& status,
                  absl::Duration took) override {
    std::lock_guard lock(mu_);
    Counters& counters = by_method_[std::string(method.subject)];
    ++counters.calls;
    counters.errors += status.ok() ? 0 : 1;
    counters.total += took;
  }

 private:
  mutable std::mutex mu_;
  std::map<std::string, Counters> by_method_;
};

// Adds `authorization: Bearer <token>` to every call of its client.
class TokenInjector final : public ClientInterceptor {
 public:
  explicit TokenInjector(std::string token) : token_(std::move(token)) {}

  absl::Status OnStart(const MethodInfo&, ClientContext& context) override {
    context.AddMetadata("authorization", absl::StrCat("Bearer ", token_));
    return absl::OkStatus();
  }

 private:
  const std::string token_;
};

}  // namespace micro::examples

#endif  // MICRO_EXAMPLES_COMMON_INTERCEPTORS_H_
