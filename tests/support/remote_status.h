// Compares a status that came from the peer with what the peer sent: the
// same code and message, marked remote (micro/errors.h). absl::Status's own
// == also compares payloads, which the remote mark is.
#ifndef MICRO_TESTS_SUPPORT_REMOTE_STATUS_H_
#define MICRO_TESTS_SUPPORT_REMOTE_STATUS_H_

#include <gtest/gtest.h>

#include "absl/status/status.h"
#include "micro/errors.h"

namespace micro::testing {

inline ::testing::AssertionResult IsRemote(const absl::Status& actual,
                                           const absl::Status& expected) {
  if (actual.code() != expected.code() || actual.message() != expected.message()) {
    return ::testing::AssertionFailure() << "got " << actual << ", want " << expected;
  }
  if (!IsRemoteError(actual)) {
    return ::testing::AssertionFailure() << actual << " is not marked as the peer's";
  }
  return ::testing::AssertionSuccess();
}

}  // namespace micro::testing

#endif  // MICRO_TESTS_SUPPORT_REMOTE_STATUS_H_
