#include "usage.h"

#include <sys/resource.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace micro::bench {
namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

}  // namespace

Usage SelfUsage() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& tv) {
    return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) / 1e6;
  };
  return {seconds(usage.ru_utime) + seconds(usage.ru_stime),
          static_cast<double>(usage.ru_nvcsw + usage.ru_nivcsw)};
}

Usage ProcessUsage(pid_t pid) {
  Usage usage;
  std::string stat = ReadFile(absl::StrCat("/proc/", pid, "/stat"));
  // Fields after the command name, which may hold spaces: state is field 3,
  // utime 14 and stime 15.
  std::vector<std::string> fields = absl::StrSplit(stat.substr(stat.rfind(')') + 2), ' ');
  for (int field : {14, 15}) {
    double ticks = 0;
    if (fields.size() > static_cast<size_t>(field - 3) &&
        absl::SimpleAtod(fields[field - 3], &ticks)) {
      usage.cpu_s += ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
    }
  }
  std::error_code error;
  for (const auto& task :
       std::filesystem::directory_iterator(absl::StrCat("/proc/", pid, "/task"), error)) {
    for (absl::string_view line : absl::StrSplit(ReadFile(task.path() / "status"), '\n')) {
      double count = 0;
      if (absl::ConsumePrefix(&line, "voluntary_ctxt_switches:") ||
          absl::ConsumePrefix(&line, "nonvoluntary_ctxt_switches:")) {
        if (absl::SimpleAtod(line, &count)) usage.switches += count;
      }
    }
  }
  return usage;
}

}  // namespace micro::bench
