// Messages per second through one stream, client to server, next to raw
// nats.c publish -> subscribe measured in the same run against the same
// nats-server (bench/rates.h; micro_compare measures the same).
//
// Usage: stream_throughput [--scale F] [--runs R]
//   F scales the messages of each run (default 1); R runs per contender
//   (default 3), interleaved, the median reported.
#include "rates.h"

int main(int argc, char** argv) { return micro::bench::RateRunnerMain(argc, argv, true); }
