// The callers kubegate knows, as its configuration file states them
// (tokens:, client_certs:, oidc:; docs/configuration.md). The authenticator reads
// these; config/config.h loads them.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "common/limits.h"
#include "identity/identity.h"

namespace kubegate {

struct TokenEntry {
  std::string user;
  std::vector<std::string> groups;
  IdentityKind kind = IdentityKind::kHuman;
  std::string token_sha256;  // lower-case hex
  bool may_impersonate = false;
};

struct ClientCertConfig {
  std::string ca_file;  // empty: client certificates are not accepted
  std::vector<std::string> agent_users;
  std::vector<std::string> may_impersonate;
};

// One OIDC issuer whose ID tokens are accepted (oidc: in the config;
// identity/oidc.h verifies them).
struct OidcIssuerConfig {
  std::string issuer;                  // must equal the token's "iss" and the discovery document's "issuer"
  std::vector<std::string> audiences;  // "aud" must contain one (--oidc-client-id)
  std::string username_claim = "sub";
  // Already defaulted as kube-apiserver does: unset and the claim is not
  // "email" -> issuer + "#"; "-" -> none (config/config.cc).
  std::string username_prefix;
  std::string groups_claim;  // empty: no groups from the token
  std::string groups_prefix;
  std::vector<std::pair<std::string, std::string>> required_claims;  // claim must be this string
  std::string ca_file;        // PEM roots for the issuer's TLS; empty: the system's
  std::string discovery_url;  // empty: issuer + "/.well-known/openid-configuration"
  IdentityKind kind = IdentityKind::kHuman;
  // A token with an unknown kid makes one key refresh at most this often
  // (default limits::kOidcUnknownKidRefresh).
  std::int64_t unknown_kid_refresh_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(limits::kOidcUnknownKidRefresh).count();
};

// Agents in the cluster with their pod's projected ServiceAccount token
// (service_accounts: in the config; identity/service_account_auth.h).
struct ServiceAccountConfig {
  bool enabled = false;
  // Sent as the TokenReview's spec.audiences: the token must be bound to
  // one of them (a pod requests it with this audience).
  std::vector<std::string> audiences = {"kubegate"};
  // How long an answer is reused at most (never past the token's exp).
  std::int64_t cache_ttl_ms = std::chrono::duration_cast<std::chrono::milliseconds>(limits::kTokenReviewCacheTtl).count();
  // "NAMESPACE/NAME" patterns ("*" matches a whole segment or a suffix:
  // "ci/*", "*/deployer", "team-*/bot") whose identity is human; every
  // other ServiceAccount is an agent.
  std::vector<std::string> humans;
};

}  // namespace kubegate
