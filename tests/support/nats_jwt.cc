#include "support/nats_jwt.h"

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace micro::testing {
namespace {

// Claims as nats-io/jwt v2 writes them: the standard claims in its field
// order, then "nats" with the type-specific `nats_fields`, the claim type
// and version 2. Names and keys need no JSON escaping.
absl::StatusOr<std::string> Claims(const std::string& issuer, const std::string& subject,
                                   const std::string& name, absl::Time issued_at,
                                   const std::string& claim_type, const std::string& nats_fields) {
  const std::string standard =
      absl::StrCat("\"iat\":", absl::ToUnixSeconds(issued_at), ",\"iss\":\"", issuer,
                   "\",\"name\":\"", name, "\",\"sub\":\"", subject, "\"");
  // The ID ("jti") is the base32 SHA-512/256 of the standard claims without it.
  absl::StatusOr<std::string> hash =
      RunOpenssl({"dgst", "-sha512-256", "-binary"}, absl::StrCat("{", standard, "}"));
  if (!hash.ok()) return hash.status();
  return absl::StrCat("{\"jti\":\"", Base32(*hash), "\",", standard, ",\"nats\":{", nats_fields,
                      nats_fields.empty() ? "" : ",", "\"type\":\"", claim_type,
                      "\",\"version\":2}}");
}

absl::StatusOr<std::string> IssueJwt(const NKey& issuer, const std::string& subject,
                                     const std::string& name, const std::string& claim_type,
                                     const std::string& nats_fields) {
  absl::StatusOr<std::string> claims =
      Claims(issuer.PublicKey(), subject, name, absl::Now(), claim_type, nats_fields);
  if (!claims.ok()) return claims.status();
  return SignJwt(issuer, *claims);
}

// A user without limits or permission restrictions.
constexpr char kUserFields[] = R"("pub":{},"sub":{},"subs":-1,"data":-1,"payload":-1)";

}  // namespace

absl::StatusOr<std::string> OperatorJwt(const NKey& operator_key) {
  return IssueJwt(operator_key, operator_key.PublicKey(), "micro-test-operator", "operator", "");
}

absl::StatusOr<std::string> AccountJwt(const NKey& operator_key,
                                       const std::string& account_public_key) {
  // -1 is "no limit"; a missing limit would be 0, which allows nothing.
  return IssueJwt(operator_key, account_public_key, "micro-test-account", "account",
                  R"("limits":{"subs":-1,"data":-1,"payload":-1,"imports":-1,"exports":-1,)"
                  R"("wildcards":true,"conn":-1,"leaf":-1},)"
                  R"("default_permissions":{"pub":{},"sub":{}})");
}

absl::StatusOr<std::string> UserJwt(const NKey& account_key, const std::string& user_public_key) {
  return IssueJwt(account_key, user_public_key, "micro-test-user", "user", kUserFields);
}

absl::StatusOr<std::string> UserClaims(const std::string& account_public_key,
                                       const std::string& user_public_key, const std::string& name,
                                       absl::Time issued_at) {
  return Claims(account_public_key, user_public_key, name, issued_at, "user", kUserFields);
}

absl::StatusOr<std::string> SignJwt(const NKey& issuer, const std::string& claims) {
  const std::string signed_part =
      absl::StrCat(absl::WebSafeBase64Escape(R"({"typ":"JWT","alg":"ed25519-nkey"})"), ".",
                   absl::WebSafeBase64Escape(claims));
  absl::StatusOr<std::string> signature = issuer.Sign(signed_part);
  if (!signature.ok()) return signature.status();
  return absl::StrCat(signed_part, ".", absl::WebSafeBase64Escape(*signature));
}

std::string FormatCredentials(const std::string& user_jwt, const std::string& user_seed) {
  return absl::StrCat("-----BEGIN NATS USER JWT-----\n", user_jwt,
                      "\n------END NATS USER JWT------\n\n"
                      "************************* IMPORTANT *************************\n"
                      "NKEY Seed printed below can be used to sign and prove identity.\n"
                      "NKEYs are sensitive and should be treated as secrets.\n\n"
                      "-----BEGIN USER NKEY SEED-----\n",
                      user_seed,
                      "\n------END USER NKEY SEED------\n\n"
                      "*************************************************************\n");
}

}  // namespace micro::testing
