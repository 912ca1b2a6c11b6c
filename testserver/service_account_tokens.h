// ServiceAccount tokens the way kube-apiserver issues and reviews them, for
// kubegate's tests of agents that authenticate with their pod's token.
//
// TokenRequest (POST .../serviceaccounts/NAME/token) follows
// pkg/registry/core/serviceaccount/storage/token.go: the ServiceAccount must
// exist; spec.audiences defaults to the API server's own audience;
// spec.expirationSeconds defaults to 3600 and must be at least 600
// (pkg/apis/authentication/validation: "may not specify a duration less
// than 10 minutes"). The token is an RS256 JWT with the claims of
// pkg/serviceaccount/claims.go (iss, sub system:serviceaccount:NS:NAME,
// aud, exp, iat, nbf, jti, kubernetes.io.namespace/serviceaccount).
//
// TokenReview (POST /apis/authentication.k8s.io/v1/tokenreviews) follows
// pkg/registry/authentication/tokenreview/storage.go: spec.audiences
// defaults to the API server's audience; the token is authenticated only
// when its signature, expiry and ServiceAccount (still existing, same uid:
// claims.go's validator) hold and its audiences intersect the requested
// ones; status.audiences is that intersection; status.error says why not.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

struct evp_pkey_st;

namespace kubegate::testserver {

inline constexpr const char* kApiAudience = "https://kubernetes.default.svc.cluster.local";
inline constexpr const char* kIssuer = "https://kubernetes.default.svc.cluster.local";

class ServiceAccountTokens {
 public:
  ServiceAccountTokens();
  ~ServiceAccountTokens();

  // The answer to a TokenRequest for `service_account` (the stored object,
  // or nullopt when there is none): {code, body}.
  std::pair<int, nlohmann::json> Request(const std::string& ns, const std::string& name,
                                         const std::optional<nlohmann::json>& service_account,
                                         const nlohmann::json& request, std::int64_t now_s) const;

  // The TokenReview answer for `review`; `lookup` finds a ServiceAccount
  // by namespace and name (nullopt: none).
  std::pair<int, nlohmann::json> Review(
      const nlohmann::json& review,
      const std::function<std::optional<nlohmann::json>(const std::string&, const std::string&)>& lookup,
      std::int64_t now_s) const;

 private:
  std::string Sign(const nlohmann::json& claims) const;
  evp_pkey_st* key_ = nullptr;
};

}  // namespace kubegate::testserver
