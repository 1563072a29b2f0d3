// Broker throughput against one nats-server, micro next to raw nats.c in the
// same run (bench/rates.h; micro_compare measures the same). See
// bench/README.md for what each row does.
//
// Usage: broker_throughput [--messages N] [--runs R]
//   N events per run (default 200000); R runs per contender (default 3),
//   interleaved, the median reported.
#include "rates.h"

int main(int argc, char** argv) { return micro::bench::RateRunnerMain(argc, argv, false); }
