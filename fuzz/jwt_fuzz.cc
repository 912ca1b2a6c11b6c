// Fuzz target: bearer tokens read as JWTs (identity/jwt.h) and the JWKS
// and discovery documents an issuer serves. The input is tried as a token
// (parsed, its untrusted issuer read, verified against a fixed key set, its
// claims checked kube-apiserver's way) and as a JWKS document. Nothing may
// throw or crash, and no input may verify: the key set is made at start,
// so no corpus entry can carry its signature.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "common/text.h"
#include "identity/jwt.h"
#include "identity/jwt_test_util.h"
#include "identity/oidc.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Keys made at start: their private halves exist only in this process.
  static kubegate::testing::TestSigner es("ES256", "k1"), rs("RS256", "k2");
  static const auto keys = kubegate::ParseJwks(kubegate::testing::JwksOf({&es, &rs}));
  if (!keys) std::abort();
  std::string_view in(reinterpret_cast<const char*>(data), size);
  (void)kubegate::UntrustedIssuer(in);
  (void)kubegate::LooksLikeJwt(in);
  if (auto jwt = kubegate::ParseJwt(in)) {
    if (const kubegate::JsonWebKey* k = keys->Find(jwt->kid, jwt->alg)) {
      if (kubegate::VerifyJwtSignature(*k, *jwt)) std::abort();
    }
    kubegate::OidcIssuerConfig c;
    c.issuer = "https://idp.test";
    c.audiences = {"kubegate"};
    c.groups_claim = "groups";
    c.required_claims = {{"hd", "example.com"}};
    std::string reason;
    (void)kubegate::IdentityFromClaims(c, *jwt, 1'900'000'000, reason);
  }
  (void)kubegate::ParseJwks(in);
  (void)kubegate::Base64UrlDecode(in);
  return 0;
}
