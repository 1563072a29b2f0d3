#include "support/nkeys.h"

#include <stdlib.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "support/process.h"

namespace micro::testing {
namespace {

constexpr size_t kKeySize = 32;
// DER of an ed25519 private key (PKCS #8) and public key (SubjectPublicKeyInfo)
// up to the raw 32 bytes that end them (RFC 8410).
constexpr std::string_view kPrivateKeyDerPrefix(
    "\x30\x2e\x02\x01\x00\x30\x05\x06\x03\x2b\x65\x70\x04\x22\x04\x20", 16);
constexpr std::string_view kPublicKeyDerPrefix("\x30\x2a\x30\x05\x06\x03\x2b\x65\x70\x03\x21\x00",
                                               12);

constexpr uint8_t kSeedPrefix = 18 << 3;  // 'S'

// CRC-16/XMODEM (polynomial 0x1021, initial value 0), as NKeys use.
uint16_t Crc16(std::string_view data) {
  uint16_t crc = 0;
  for (unsigned char byte : data) {
    crc ^= static_cast<uint16_t>(byte << 8);
    for (int bit = 0; bit < 8; ++bit) {
      crc = (crc & 0x8000) != 0 ? static_cast<uint16_t>((crc << 1) ^ 0x1021)
                                : static_cast<uint16_t>(crc << 1);
    }
  }
  return crc;
}

// Base32 of `prefix` + `key` + their CRC-16, little-endian.
std::string EncodeWithChecksum(std::string prefix, std::string_view key) {
  std::string raw = std::move(prefix);
  raw.append(key);
  uint16_t crc = Crc16(raw);
  raw.push_back(static_cast<char>(crc & 0xff));
  raw.push_back(static_cast<char>(crc >> 8));
  return Base32(raw);
}

// The raw key that ends `der`, which must be `prefix` + 32 bytes.
absl::StatusOr<std::string> KeyFromDer(const std::string& der, std::string_view prefix) {
  if (der.size() != prefix.size() + kKeySize || der.compare(0, prefix.size(), prefix) != 0) {
    return absl::InternalError(
        absl::StrCat("openssl wrote ", der.size(), " bytes that are not an ed25519 key"));
  }
  return der.substr(prefix.size());
}

}  // namespace

absl::StatusOr<std::string> RunOpenssl(const std::vector<std::string>& args,
                                       const std::string& input) {
  std::vector<std::string> argv = {"/usr/bin/openssl"};
  argv.insert(argv.end(), args.begin(), args.end());
  absl::StatusOr<ProcessResult> result = RunProcess(argv, input);
  if (!result.ok()) return result.status();
  if (result->exit_code != 0) {
    return absl::InternalError(absl::StrCat("openssl ", args.empty() ? "" : args[0],
                                            " exited with ", result->exit_code, ": ", result->err));
  }
  return std::move(result->out);
}

std::string Base32(std::string_view data) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  std::string out;
  uint32_t buffer = 0;
  int bits = 0;
  for (unsigned char byte : data) {
    buffer = (buffer << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out.push_back(kAlphabet[(buffer >> bits) & 31]);
    }
  }
  if (bits > 0) out.push_back(kAlphabet[(buffer << (5 - bits)) & 31]);
  return out;
}

std::string EncodeNKeyPublic(NKeyType type, std::string_view public_key) {
  return EncodeWithChecksum(std::string(1, static_cast<char>(type)), public_key);
}

std::string EncodeNKeySeed(NKeyType type, std::string_view seed) {
  // Two prefix bytes, so that the text starts with 'S' and then the
  // public key's letter: 5 bits of 'S', then the type's 5 bits.
  const auto public_prefix = static_cast<uint8_t>(type);
  const char prefix[] = {static_cast<char>(kSeedPrefix | (public_prefix >> 5)),
                         static_cast<char>((public_prefix & 31) << 3)};
  return EncodeWithChecksum(std::string(prefix, 2), seed);
}

absl::StatusOr<NKey> NKey::Generate(NKeyType type) {
  absl::StatusOr<std::string> der =
      RunOpenssl({"genpkey", "-algorithm", "ed25519", "-outform", "DER"});
  if (!der.ok()) return der.status();
  absl::StatusOr<std::string> seed = KeyFromDer(*der, kPrivateKeyDerPrefix);
  if (!seed.ok()) return seed.status();
  return FromSeed(type, *std::move(seed));
}

absl::StatusOr<NKey> NKey::FromSeed(NKeyType type, std::string seed) {
  if (seed.size() != kKeySize) {
    return absl::InvalidArgumentError(
        absl::StrCat("an ed25519 seed has 32 bytes, not ", seed.size()));
  }
  absl::StatusOr<std::string> der =
      RunOpenssl({"pkey", "-inform", "DER", "-pubout", "-outform", "DER"},
                 std::string(kPrivateKeyDerPrefix) + seed);
  if (!der.ok()) return der.status();
  absl::StatusOr<std::string> public_key = KeyFromDer(*der, kPublicKeyDerPrefix);
  if (!public_key.ok()) return public_key.status();
  return NKey(type, std::move(seed), *std::move(public_key));
}

absl::StatusOr<std::string> NKey::Sign(const std::string& data) const {
  // openssl signs ed25519 only in one shot, from a file whose size it knows.
  char dir[] = "/tmp/micro-nkey-XXXXXX";
  if (mkdtemp(dir) == nullptr)
    return absl::InternalError(absl::StrCat("mkdtemp: ", strerror(errno)));
  const std::string key_file = absl::StrCat(dir, "/key.der");
  const std::string data_file = absl::StrCat(dir, "/data");
  std::ofstream(key_file, std::ios::binary) << kPrivateKeyDerPrefix << seed_;
  std::ofstream(data_file, std::ios::binary) << data;
  absl::StatusOr<std::string> signature = RunOpenssl(
      {"pkeyutl", "-sign", "-rawin", "-keyform", "DER", "-inkey", key_file, "-in", data_file});
  std::filesystem::remove_all(dir);
  return signature;
}

}  // namespace micro::testing
