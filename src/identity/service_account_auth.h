// Agents in the cluster authenticate with the token they already have: a
// pod's projected ServiceAccount token. kubegate does not verify it itself;
// it asks the API server with a TokenReview (its own credential, the
// configured audiences), as kube-apiserver's webhook token authenticator
// would, and caches the answer by the token's hash for no longer than the
// token's own exp and a short TTL. No secret is issued or copied.
//
// Only tokens that look like ServiceAccount tokens (a JWT whose unverified
// "sub" is system:serviceaccount:NS:NAME) are ever sent to the API server:
// another credential a caller mistypes must not travel further.
//
//   ServiceAccountAuthenticator sa(config.service_accounts);
//   if (sa.Candidate(token)) {
//     if (auto who = sa.Cached(token, now)) ...;
//     POST /apis/authentication.k8s.io/v1/tokenreviews with sa.ReviewBody(token)
//     auto who = sa.FromReview(token, status, body, now, reason);
//   }
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "common/result.h"
#include "identity/credentials_config.h"
#include "identity/identity.h"

namespace kubegate {

inline constexpr const char* kServiceAccountUserPrefix = "system:serviceaccount:";

class ServiceAccountAuthenticator {
 public:
  explicit ServiceAccountAuthenticator(ServiceAccountConfig c) : config_(std::move(c)) {}

  bool Candidate(std::string_view token) const;
  // The cached answer for a token by its SHA-256 (the authenticator has it).
  std::optional<Identity> Cached(const std::string& token_sha256, std::int64_t now_ms) const;
  // The TokenReview to POST (authentication.k8s.io/v1, JSON).
  std::string ReviewBody(std::string_view token) const;
  // Reads the API server's answer to ReviewBody(token). Refused tokens are
  // 401 with `reason` set; an answer kubegate cannot use (not 201, not a
  // TokenReview) is 503: fail closed. An accepted identity is cached.
  Result<Identity> FromReview(std::string_view token, int http_status, std::string_view body, std::int64_t now_ms,
                              std::string& reason);

  // Whether "NAMESPACE/NAME" matches `pattern` (see ServiceAccountConfig::humans).
  static bool Matches(std::string_view pattern, std::string_view ns, std::string_view name);

 private:
  struct Entry {
    Identity who;
    std::int64_t expires_ms = 0;
  };
  const ServiceAccountConfig config_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, Entry> cache_;  // by SHA-256 of the token
};

}  // namespace kubegate
