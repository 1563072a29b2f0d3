// Debian's abseil is built with ABSL_OPTION_USE_STD_STRING_VIEW=0, so
// absl::string_view is its own type. Our public API speaks std::string_view;
// this is the one bridge to abseil's string functions.
#ifndef MICRO_RUNTIME_UTIL_STRINGS_H_
#define MICRO_RUNTIME_UTIL_STRINGS_H_

#include <string_view>

#include "absl/strings/string_view.h"

namespace micro::internal {

inline absl::string_view ToAbsl(std::string_view text) { return {text.data(), text.size()}; }
inline std::string_view FromAbsl(absl::string_view text) { return {text.data(), text.size()}; }

}  // namespace micro::internal

#endif  // MICRO_RUNTIME_UTIL_STRINGS_H_
