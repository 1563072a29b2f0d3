#include "micro/errors.h"

#include "protocol/wire.h"

namespace micro {

bool IsRemoteError(const absl::Status& status) {
  return status.GetPayload(protocol::kRemoteMarker).has_value();
}

bool IsUnprocessed(const absl::Status& status) {
  return status.GetPayload(protocol::kUnprocessedMarker).has_value();
}

}  // namespace micro
