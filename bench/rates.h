// Message rates of micro's streams and broker next to raw nats.c, against a
// nats-server the caller started: what stream_throughput and
// broker_throughput print, and the stream and broker rows of micro_compare.
// See bench/README.md for what each contender does.
#ifndef MICRO_BENCH_RATES_H_
#define MICRO_BENCH_RATES_H_

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace micro::bench {

// One contender's result at one size: the median of its runs by rate.
struct RateRow {
  std::string workload;   // kStreamWorkload, kPublishWorkload or kDeliverWorkload.
  std::string key;        // The contender, as --only names it.
  std::string contender;  // The contender, for people.
  size_t bytes = 0;       // Stream message or event body size.
  int64_t sent = 0;
  int64_t delivered = -1;  // -1: nobody receives in this workload.
  int64_t dropped = 0;     // By the subscriber's pending limits.
  double rate = 0;         // Messages per second (delivered ones if anyone receives).
  double vs_raw = 0;       // rate / the raw nats.c baseline's; 0 without a baseline.
  // Per sent message: CPU time and context switches of this process (both
  // ends of the workload run in it) and CPU time of nats-server (-1: unknown).
  double cpu_us = 0;
  double switches = 0;
  double nats_cpu_us = -1;
};

inline constexpr char kStreamWorkload[] = "stream, one way";
inline constexpr char kPublishWorkload[] = "broker publish";
inline constexpr char kDeliverWorkload[] = "broker publish->deliver";

// Contender keys, each with a RateRow per size.
inline constexpr const char* kStreamKeys[] = {"micro-stream", "nats-pubsub", "nats-pubsub-asap"};
inline constexpr const char* kBrokerKeys[] = {"micro-broker", "micro-broker-inline",
                                              "nats-events-asap", "nats-events"};

struct RateOptions {
  std::string url;     // The nats-server's.
  pid_t nats_pid = 0;  // To read its CPU time; 0: not read.
  // Each contender runs this often, interleaved with the others of its
  // workload and size, so load from elsewhere hits all alike.
  int runs = 3;
  double stream_scale = 1;           // Scales the messages of each stream run.
  int64_t broker_messages = 200000;  // Events per broker run.
  // Which contenders run; empty: all.
  std::function<bool(const std::string& key)> selected;
};

// One stream, client to server, at 64 B, 1 KiB and 64 KiB; vs_raw is over
// the better of the two raw rows. nullopt (reported on stderr) on failure.
std::optional<std::vector<RateRow>> MeasureStreamRates(const RateOptions& options);

// Broker publish and publish->deliver of 16 B and 1 KiB events; vs_raw is
// over raw nats.c with SendAsap. nullopt (reported on stderr) on failure.
std::optional<std::vector<RateRow>> MeasureBrokerRates(const RateOptions& options);

// "16 B", "1 KiB", "64 KiB".
std::string SizeLabel(size_t bytes);

// Prints `rows` as a markdown table on stdout, with MB/s.
void PrintRateTable(const std::vector<RateRow>& rows);

// The main of stream_throughput (`[--scale F] [--runs R]`, MeasureStreamRates)
// and broker_throughput (`[--messages N] [--runs R]`, MeasureBrokerRates):
// measures against a nats-server of its own and prints the table.
int RateRunnerMain(int argc, char** argv, bool streams);

// ---- For the two measurements above.

// The cost of one run, from Start to Stop.
class Meter {
 public:
  explicit Meter(pid_t nats_pid) : nats_pid_(nats_pid) {}
  void Start();
  void Stop();
  // Sets the per-message costs of `row` from its `sent`.
  void Fill(RateRow& row) const;

 private:
  const pid_t nats_pid_;
  double cpu_s_ = 0, switches_ = 0, nats_cpu_s_ = 0;
};

// One contender of a workload. `run` makes one run: it calls Start and Stop
// of the meter around what it times, and returns sent, delivered, dropped
// and rate; nullopt (reported) on failure.
struct RateContender {
  std::string key;
  std::string name;
  bool baseline = false;  // vs_raw is over the fastest baseline.
  std::function<std::optional<RateRow>(Meter&)> run;
};

// Whether any of `keys` is selected.
template <size_t N>
bool AnySelected(const RateOptions& options, const char* const (&keys)[N]) {
  if (!options.selected) return true;
  for (const char* key : keys) {
    if (options.selected(key)) return true;
  }
  return false;
}

// Runs the selected `contenders` options.runs times, interleaved, and
// returns each one's median run by rate.
std::optional<std::vector<RateRow>> Interleave(const std::string& workload, size_t bytes,
                                               const std::vector<RateContender>& contenders,
                                               const RateOptions& options);

}  // namespace micro::bench

#endif  // MICRO_BENCH_RATES_H_
