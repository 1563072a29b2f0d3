#include "rates.h"

#include <algorithm>
#include <cstdio>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "raw_nats.h"
#include "support/nats_server.h"
#include "usage.h"

namespace micro::bench {

std::string SizeLabel(size_t bytes) {
  return bytes % 1024 == 0 ? absl::StrCat(bytes / 1024, " KiB") : absl::StrCat(bytes, " B");
}

void PrintRateTable(const std::vector<RateRow>& rows) {
  std::printf(
      "| workload | contender | size | sent | delivered | dropped | msgs/s | MB/s | vs raw | "
      "CPU us/msg here | nats-server |\n");
  std::printf("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  for (const RateRow& row : rows) {
    auto optional = [](bool known, std::string text) { return known ? text : std::string("-"); };
    std::printf("| %s | %s | %s | %lld | %s | %s | %.0f | %.1f | %s | %.2f | %s |\n",
                row.workload.c_str(), row.contender.c_str(), SizeLabel(row.bytes).c_str(),
                static_cast<long long>(row.sent),
                optional(row.delivered >= 0, absl::StrCat(row.delivered)).c_str(),
                optional(row.delivered >= 0, absl::StrCat(row.dropped)).c_str(), row.rate,
                row.rate * static_cast<double>(row.bytes) / 1e6,
                optional(row.vs_raw > 0, absl::StrFormat("%.2fx", row.vs_raw)).c_str(), row.cpu_us,
                optional(row.nats_cpu_us >= 0, absl::StrFormat("%.2f", row.nats_cpu_us)).c_str());
  }
}

int RateRunnerMain(int argc, char** argv, bool streams) {
  program = streams ? "stream_throughput" : "broker_throughput";
  RateOptions options;
  bool ok = argc % 2 == 1;
  for (int i = 1; ok && i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const char* value = argv[i + 1];
    if (flag == "--runs") {
      ok = absl::SimpleAtoi(value, &options.runs) && options.runs > 0;
    } else if (streams) {
      ok = flag == "--scale" && absl::SimpleAtod(value, &options.stream_scale) &&
           options.stream_scale > 0;
    } else {
      ok = flag == "--messages" && absl::SimpleAtoi(value, &options.broker_messages) &&
           options.broker_messages > 0;
    }
  }
  if (!ok) {
    std::fprintf(stderr, "usage: %s [%s] [--runs R]\n", program,
                 streams ? "--scale F" : "--messages N");
    return 2;
  }
  auto nats = micro::testing::NatsServer::Start();
  if (!nats.ok()) {
    Fail(nats.status().ToString());
    return 1;
  }
  options.url = (*nats)->url();
  options.nats_pid = (*nats)->pid();
  std::optional<std::vector<RateRow>> rows =
      streams ? MeasureStreamRates(options) : MeasureBrokerRates(options);
  if (!rows) return 1;
  std::printf("%d runs per contender, interleaved; the median by rate\n\n", options.runs);
  PrintRateTable(*rows);
  return 0;
}

void Meter::Start() {
  Usage self = SelfUsage();
  cpu_s_ = self.cpu_s;
  switches_ = self.switches;
  nats_cpu_s_ = nats_pid_ > 0 ? ProcessUsage(nats_pid_).cpu_s : 0;
}

void Meter::Stop() {
  Usage self = SelfUsage();
  cpu_s_ = self.cpu_s - cpu_s_;
  switches_ = self.switches - switches_;
  if (nats_pid_ > 0) nats_cpu_s_ = ProcessUsage(nats_pid_).cpu_s - nats_cpu_s_;
}

void Meter::Fill(RateRow& row) const {
  const double sent = static_cast<double>(std::max<int64_t>(row.sent, 1));
  row.cpu_us = cpu_s_ * 1e6 / sent;
  row.switches = switches_ / sent;
  row.nats_cpu_us = nats_pid_ > 0 ? nats_cpu_s_ * 1e6 / sent : -1;
}

std::optional<std::vector<RateRow>> Interleave(const std::string& workload, size_t bytes,
                                               const std::vector<RateContender>& contenders,
                                               const RateOptions& options) {
  std::vector<std::vector<RateRow>> runs(contenders.size());
  for (int run = 0; run < options.runs; ++run) {
    for (size_t c = 0; c < contenders.size(); ++c) {
      if (options.selected && !options.selected(contenders[c].key)) continue;
      Meter meter(options.nats_pid);
      std::optional<RateRow> row = contenders[c].run(meter);
      if (!row) {
        Fail(absl::StrCat(workload, ", ", contenders[c].name, ", ", SizeLabel(bytes), ": failed"));
        return std::nullopt;
      }
      meter.Fill(*row);
      runs[c].push_back(*std::move(row));
    }
  }
  std::vector<RateRow> rows;
  double baseline = 0;
  for (size_t c = 0; c < contenders.size(); ++c) {
    if (runs[c].empty()) continue;
    std::sort(runs[c].begin(), runs[c].end(),
              [](const RateRow& a, const RateRow& b) { return a.rate < b.rate; });
    RateRow median = runs[c][runs[c].size() / 2];
    median.workload = workload;
    median.key = contenders[c].key;
    median.contender = contenders[c].name;
    median.bytes = bytes;
    if (contenders[c].baseline) baseline = std::max(baseline, median.rate);
    rows.push_back(std::move(median));
  }
  for (RateRow& row : rows) row.vs_raw = baseline > 0 ? row.rate / baseline : 0;
  return rows;
}

}  // namespace micro::bench
