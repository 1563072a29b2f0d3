// NATS NKeys for tests: ed25519 key pairs made and used with the openssl
// CLI, and their text form (base32 of a prefix byte, the key and a CRC-16),
// so that tests need neither `nk`/`nsc` (not in Debian) nor a crypto library.
#ifndef MICRO_TESTS_SUPPORT_NKEYS_H_
#define MICRO_TESTS_SUPPORT_NKEYS_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace micro::testing {

// Runs /usr/bin/openssl with `args` and `input` on its stdin (at most
// 64 KiB); its stdout, or an error with its stderr if it fails.
absl::StatusOr<std::string> RunOpenssl(const std::vector<std::string>& args,
                                       const std::string& input = "");

// RFC 4648 base32, without padding.
std::string Base32(std::string_view data);

// The prefix byte of a public key: what its text form starts with.
enum class NKeyType : uint8_t {
  kOperator = 14 << 3,  // 'O'
  kAccount = 0,         // 'A'
  kUser = 20 << 3,      // 'U'
};

// The text forms of a raw 32-byte ed25519 public key ("U...") and seed
// ("SU..." for a user).
std::string EncodeNKeyPublic(NKeyType type, std::string_view public_key);
std::string EncodeNKeySeed(NKeyType type, std::string_view seed);

class NKey {
 public:
  // A new random key pair.
  static absl::StatusOr<NKey> Generate(NKeyType type);
  // The key pair of a raw 32-byte seed.
  static absl::StatusOr<NKey> FromSeed(NKeyType type, std::string seed);

  std::string PublicKey() const { return EncodeNKeyPublic(type_, public_key_); }
  std::string Seed() const { return EncodeNKeySeed(type_, seed_); }
  // The raw 64-byte ed25519 signature of `data`.
  absl::StatusOr<std::string> Sign(const std::string& data) const;

 private:
  NKey(NKeyType type, std::string seed, std::string public_key)
      : type_(type), seed_(std::move(seed)), public_key_(std::move(public_key)) {}

  NKeyType type_;
  std::string seed_;
  std::string public_key_;
};

}  // namespace micro::testing

#endif  // MICRO_TESTS_SUPPORT_NKEYS_H_
