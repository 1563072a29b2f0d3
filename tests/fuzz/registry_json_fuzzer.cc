// Discovery input from the network (docs/PROTOCOL.md, "Discovery"): INFO
// documents, which lookups and watchers read from any NATS client, and the
// subjects of `$SRV` requests and announcements. Input: the bytes are read as
// an INFO document and as a subject.
//
// Properties: a document is either rejected with INVALID_ARGUMENT or yields
// an instance whose name and id are safe subject tokens; what was read
// survives being written and read again unchanged; a `$SRV` request names at
// most a name and an id without dots; an announcement subject has a known kind.
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/match.h"
#include "fuzz_check.h"
#include "micro/registry.h"
#include "registry/discovery.h"
#include "util/strings.h"

namespace micro::fuzz {
namespace {

void CheckInfo(std::string_view text) {
  absl::StatusOr<Instance> instance = discovery::DecodeInfo(text);
  if (!instance.ok()) {
    FUZZ_CHECK(instance.status().code() == absl::StatusCode::kInvalidArgument,
               instance.status().ToString());
    return;
  }
  FUZZ_CHECK(ValidateServiceName(instance->name).ok(), instance->name);
  FUZZ_CHECK(!instance->id.empty() && instance->id.find_first_of(".*> \t\r\n") == std::string::npos,
             instance->id);
  std::string written = discovery::EncodeInfo(*instance);
  absl::StatusOr<Instance> again = discovery::DecodeInfo(written);
  FUZZ_CHECK(again.ok(), again.status().ToString() + " for " + written);
  FUZZ_CHECK(*again == *instance, "changed in a round trip: " + written);
  FUZZ_CHECK(discovery::EncodeInfo(*again) == written, "encoding is not stable: " + written);
  // The other documents of the same instance must be writable too.
  discovery::EncodePing(*instance);
  discovery::EncodeStats(*instance, absl::UnixEpoch(), {});
}

void CheckSubjects(std::string_view subject) {
  if (std::optional<discovery::SrvRequest> request = discovery::ParseSrvSubject(subject)) {
    FUZZ_CHECK(absl::StartsWith(internal::ToAbsl(subject), "$SRV."), std::string(subject));
    FUZZ_CHECK(request->name.find('.') == std::string_view::npos, std::string(request->name));
    FUZZ_CHECK(request->id.find('.') == std::string_view::npos, std::string(request->id));
  }
  if (std::optional<discovery::Announcement> kind = discovery::ParseAnnouncementSubject(subject)) {
    FUZZ_CHECK(absl::StartsWith(internal::ToAbsl(subject), "$MICRO.REGISTRY."),
               std::string(subject));
  }
}

}  // namespace
}  // namespace micro::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text = micro::fuzz::AsText(data, size);
  micro::fuzz::CheckInfo(text);
  micro::fuzz::CheckSubjects(text);
  return 0;
}
