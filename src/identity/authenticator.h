// Authenticator: turns a request's credentials into an Identity. Static
// bearer tokens are kept only as SHA-256 hashes; client certificates are
// verified by the TLS layer against the configured CA, and their subject's
// CN names the user and O entries the groups.
//
//   Authenticator auth(config.tokens, config.client_certs);
//   auto id = auth.Authenticate({.authorization = "Bearer abc"});
//   if (!id) return id.error();   // 401 Status
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/digest.h"
#include "common/result.h"
#include "identity/credentials_config.h"
#include "identity/identity.h"

namespace kubegate {

class Clock;
class OidcAuthenticator;
class OidcIssuer;
class ServiceAccountAuthenticator;

// The subject of a client certificate that the TLS handshake verified.
struct PeerCertificate {
  std::string common_name;
  std::vector<std::string> organizations;
};

struct Credentials {
  std::optional<std::string_view> authorization = std::nullopt;  // the Authorization header
  std::optional<PeerCertificate> peer = std::nullopt;             // only when verified
  bool untrusted_peer = false;  // a certificate was presented and did not verify
};

// Tokens issued at runtime and kept in the store (per-task agent tokens;
// credentials/credential_store.h implements it), by the token's SHA-256.
class RuntimeTokens {
 public:
  virtual ~RuntimeTokens() = default;
  virtual std::optional<Identity> Lookup(const std::string& token_sha256, std::int64_t now_ms) const = 0;
  // Why user `user` may not act now (disabled at runtime, whichever way it
  // authenticates), or nothing.
  virtual std::optional<std::string> Disabled(const std::string& user) const = 0;
};

// What an authentication attempt leaves besides its answer.
struct AuthNote {
  std::string reason;                // refused: a short label for the failure counter and log
  OidcIssuer* refresh_first = nullptr;  // set: refresh this issuer's keys, then try once more
  // Set: a ServiceAccount token no cached answer covers; the caller asks
  // the API server (ServiceAccountAuthenticator::ReviewBody / FromReview).
  std::string_view token_to_review;
};

class Authenticator {
 public:
  Authenticator(const std::vector<TokenEntry>& tokens, const ClientCertConfig& certs);

  // ID tokens of these issuers are accepted too (null: none). Not owned.
  void SetOidc(const OidcAuthenticator* oidc) { oidc_ = oidc; }
  // ServiceAccount tokens are reviewed by the API server (null: refused). Not owned.
  void SetServiceAccounts(const ServiceAccountAuthenticator* sa, const Clock& clock) {
    sa_ = sa;
    clock_ = &clock;
  }
  // Tokens issued at runtime and identities disabled at runtime, from the
  // store (null: none). Not owned.
  void SetRuntimeTokens(const RuntimeTokens* tokens, const Clock& clock) {
    runtime_ = tokens;
    clock_ = &clock;
  }

  // A bearer token, when present, must be valid (a bad token is 401 even
  // with a good certificate): a configured static token, else an ID token
  // of a configured OIDC issuer, else a ServiceAccount token (cached
  // TokenReview answer, or note->token_to_review set for the caller to
  // ask the API server). Otherwise the verified client certificate.
  // An ID token signed with a key kubegate does not know yet fails with
  // note->refresh_first set (when `allow_refresh`): the caller refreshes
  // that issuer's keys (OidcAuthenticator::RefreshThen) and asks again
  // with allow_refresh false.
  // An identity disabled at runtime (RuntimeTokens::Disabled) is refused
  // here however it authenticated.
  Result<Identity> Authenticate(const Credentials& creds, AuthNote* note = nullptr, bool allow_refresh = true) const;
  // The last check of Authenticate, for an identity established elsewhere
  // (a ServiceAccount token the API server just reviewed).
  Result<Identity> Admit(Identity who, AuthNote* note) const;

 private:
  Result<Identity> Identify(const Credentials& creds, AuthNote* note, bool allow_refresh) const;
  std::unordered_map<std::string, Identity> by_token_hash_;
  ClientCertConfig certs_;
  const OidcAuthenticator* oidc_ = nullptr;
  const ServiceAccountAuthenticator* sa_ = nullptr;
  const RuntimeTokens* runtime_ = nullptr;
  const Clock* clock_ = nullptr;
};

}  // namespace kubegate
