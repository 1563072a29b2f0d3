#include "micro/context.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "protocol/wire.h"
#include "util/strings.h"

namespace micro {

using internal::ToAbsl;

absl::Status ValidateMetadata(std::string_view key, std::string_view value) {
  if (key.empty()) return absl::InvalidArgumentError("metadata key is empty");
  for (char c : key) {
    bool ok = absl::ascii_islower(c) || absl::ascii_isdigit(c) || c == '-' || c == '_' || c == '.';
    if (!ok) {
      return absl::InvalidArgumentError(absl::StrCat(
          "metadata key '", ToAbsl(key), "' has a character other than a-z, 0-9, '-', '_', '.'"));
    }
  }
  if (protocol::IsReservedKey(key)) {
    return absl::InvalidArgumentError(
        absl::StrCat("metadata key '", ToAbsl(key), "' is reserved for the protocol"));
  }
  for (char c : value) {
    if (c < ' ' || c > '~') {
      return absl::InvalidArgumentError(
          absl::StrCat("metadata value of '", ToAbsl(key), "' has a non-printable character"));
    }
  }
  return absl::OkStatus();
}

void ClientContext::AddMetadata(std::string_view key, std::string_view value) {
  metadata_.emplace(absl::AsciiStrToLower(ToAbsl(key)), std::string(value));
}

void ServerContext::AddResponseMetadata(std::string_view key, std::string_view value) {
  response_metadata_.emplace(absl::AsciiStrToLower(ToAbsl(key)), std::string(value));
}

void ServerContext::AddInitialMetadata(std::string_view key, std::string_view value) {
  initial_metadata_.emplace(absl::AsciiStrToLower(ToAbsl(key)), std::string(value));
}

}  // namespace micro
