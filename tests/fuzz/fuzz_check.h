// What the fuzzers share: a property check that fails loudly (libFuzzer
// saves the input that broke it), and the line-based input format most of
// them read, so that seeds are readable text.
#ifndef MICRO_TESTS_FUZZ_FUZZ_CHECK_H_
#define MICRO_TESTS_FUZZ_FUZZ_CHECK_H_

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

// Aborts, printing the failed property and `detail` (a std::string), when
// `condition` is false. Active in every build type.
#define FUZZ_CHECK(condition, detail)                                                            \
  do {                                                                                           \
    if (!(condition)) {                                                                          \
      std::fprintf(stderr, "%s:%d: property failed: %s\n  %s\n", __FILE__, __LINE__, #condition, \
                   std::string(detail).c_str());                                                 \
      std::abort();                                                                              \
    }                                                                                            \
  } while (0)

namespace micro::fuzz {

inline std::string_view AsText(const uint8_t* data, size_t size) {
  return std::string_view(reinterpret_cast<const char*>(data), size);
}

// `text` split at '\n' (a trailing newline adds no empty line).
inline std::vector<std::string_view> Lines(std::string_view text) {
  std::vector<std::string_view> lines;
  while (!text.empty()) {
    size_t end = text.find('\n');
    lines.push_back(text.substr(0, end));
    if (end == std::string_view::npos) break;
    text.remove_prefix(end + 1);
  }
  return lines;
}

// A `key: value` line as a header: the key is what comes before the first
// ':', the value what follows it without one leading space (the whole line
// and an empty value when there is no ':').
inline std::pair<std::string, std::string> HeaderLine(std::string_view line) {
  size_t colon = line.find(':');
  if (colon == std::string_view::npos) return {std::string(line), ""};
  std::string_view value = line.substr(colon + 1);
  if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  return {std::string(line.substr(0, colon)), std::string(value)};
}

}  // namespace micro::fuzz

#endif  // MICRO_TESTS_FUZZ_FUZZ_CHECK_H_
