// NATS JWTs (nats-io/jwt v2) and credentials files for tests of operator
// mode, made without `nsc` (not in Debian): claims written as nsc writes them,
// signed with NKeys through the openssl CLI.
#ifndef MICRO_TESTS_SUPPORT_NATS_JWT_H_
#define MICRO_TESTS_SUPPORT_NATS_JWT_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "support/nkeys.h"

namespace micro::testing {

// The self-signed JWT of an operator.
absl::StatusOr<std::string> OperatorJwt(const NKey& operator_key);
// The JWT of the account `account_public_key`, without limits, signed by
// its operator.
absl::StatusOr<std::string> AccountJwt(const NKey& operator_key,
                                       const std::string& account_public_key);
// The JWT of the user `user_public_key`, without limits or permission
// restrictions, signed by its account.
absl::StatusOr<std::string> UserJwt(const NKey& account_key, const std::string& user_public_key);

// The claims (JSON) of a user JWT exactly as nsc writes them, with the ID
// ("jti") nats-io/jwt derives from the other standard claims.
absl::StatusOr<std::string> UserClaims(const std::string& account_public_key,
                                       const std::string& user_public_key, const std::string& name,
                                       absl::Time issued_at);
// `claims` signed by `issuer`: header.claims.signature, each base64url.
absl::StatusOr<std::string> SignJwt(const NKey& issuer, const std::string& claims);

// A credentials file's text as `nsc` writes it: the user JWT, then the
// user's seed ("SU...").
std::string FormatCredentials(const std::string& user_jwt, const std::string& user_seed);

}  // namespace micro::testing

#endif  // MICRO_TESTS_SUPPORT_NATS_JWT_H_
