// What micro_compare and its server processes (bench_peer) agree on.
//
// `bench_peer <kind> --url <nats url> --port <grpc port>` serves the Echo
// workload until SIGTERM or SIGINT, and prints `ready` once it serves:
//   micro  a micro::Server with the generated Echo handler interface;
//   micro-inline  the same as service micro.bench.InlineEcho, with
//          ServerOptions::inline_unary_handlers;
//   nats   a raw nats.c replier on kRawSubject whose connection uses SendAsap;
//   grpc   a gRPC C++ sync server on 127.0.0.1:<port>.
// Each answers an EchoRequest with an EchoReply carrying the same payload.
#ifndef MICRO_BENCH_COMPARE_PEER_H_
#define MICRO_BENCH_COMPARE_PEER_H_

namespace micro::bench {

inline constexpr char kRawSubject[] = "bench.raw.echo";

}  // namespace micro::bench

#endif  // MICRO_BENCH_COMPARE_PEER_H_
