// What a call's error status says beyond its code and message. Errors keep
// their code, message and details (absl::Status payloads) across every hop
// and RPC kind (docs/PROTOCOL.md, "Status codes"); these tell where an error
// came from and whether retrying it is safe.
#ifndef MICRO_ERRORS_H_
#define MICRO_ERRORS_H_

#include "absl/status/status.h"

namespace micro {

// Both marks are absl::Status payloads (type URLs under type.micro.dev), so
// they survive copies; ToString() shows them, and == compares them.

// True if the peer sent this status: a server's handler or its framework
// (or, on a server, the client that cancelled a stream). False for errors
// raised on this side: a local deadline, a lost connection, no responders,
// bad metadata, an encoding failure.
bool IsRemoteError(const absl::Status& status);

// True if the call provably never reached a handler (nobody listened, it
// was never sent, or the server shed it), so retrying it cannot run the
// work twice, whatever the method.
bool IsUnprocessed(const absl::Status& status);

}  // namespace micro

#endif  // MICRO_ERRORS_H_
