// JSON Web Tokens as OIDC ID tokens and ServiceAccount tokens use them:
// compact JWS (RFC 7515) signed with RS256 or ES256 (RFC 7518), the keys
// from a JWKS document (RFC 7517). Nothing else is accepted: no "none", no
// HMAC (an HS256 token "signed" with a public key is the classic forgery),
// no JWE, no embedded keys ("jwk", "jku", "x5u" headers are refused).
//
//   auto jwt = ParseJwt(token);                  // structure only: untrusted
//   auto keys = ParseJwks(jwks_json);
//   const JsonWebKey* k = keys->Find(jwt->kid, jwt->alg);
//   if (!k || !VerifyJwtSignature(*k, *jwt)) ...;  // 401
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "common/result.h"

struct evp_pkey_st;  // OpenSSL's EVP_PKEY

namespace kubegate {

// A parsed, NOT verified token. `claims` is the payload object.
struct Jwt {
  std::string alg;  // "RS256" or "ES256"
  std::string kid;  // may be empty
  std::shared_ptr<const nlohmann::json> claims;
  std::string signing_input;  // the first two parts as sent, "header.payload"
  std::string signature;      // raw bytes
};

// The token's structure: three base64url parts, a JSON object header with a
// supported "alg", a JSON object payload. Bounded by limits::kMaxJwtBytes.
// The error message names what is wrong, never the token.
Result<Jwt> ParseJwt(std::string_view token);

// The "iss" claim of a JWT-shaped token, read WITHOUT verifying anything:
// only to choose which issuer's keys to verify it with.
std::optional<std::string> UntrustedIssuer(std::string_view token);

// True when `token` has the shape of a compact JWS (two dots, base64url
// characters): whether to try it as one at all.
bool LooksLikeJwt(std::string_view token);

struct JsonWebKey {
  std::string kid;
  std::string alg;  // the JWS alg this key verifies: "RS256" or "ES256"
  std::shared_ptr<evp_pkey_st> key;
};

class JsonWebKeySet {
 public:
  // The key for a token: the one with its kid (or, for a token without a
  // kid, the only key of its alg); null when there is none.
  const JsonWebKey* Find(const std::string& kid, const std::string& alg) const;
  bool empty() const { return keys_.empty(); }
  std::size_t size() const { return keys_.size(); }
  void Add(JsonWebKey k) { keys_.push_back(std::move(k)); }

 private:
  std::vector<JsonWebKey> keys_;
};

// The usable signature keys of a JWKS document: RSA keys of at least 2048
// bits, EC keys on P-256. Keys for other uses ("use": "enc"), other
// algorithms or curves are skipped; a document without one usable key is
// an error.
Result<JsonWebKeySet> ParseJwks(std::string_view json);

// Whether `key` signed `jwt` (its alg must be the key's).
bool VerifyJwtSignature(const JsonWebKey& key, const Jwt& jwt);

// A compact JWS of `claims` under `header` (which names the alg), signed
// with the private `key`: RS256 (RSA) or ES256 (P-256, r || s). For the
// test server's ServiceAccount tokens and tests; kubegate verifies only.
std::string SignJwt(evp_pkey_st* key, const nlohmann::json& header, const nlohmann::json& claims);

}  // namespace kubegate
