// Fuzz target: bearer tokens read as JWTs (identity/jwt.h) and the
// documents kubegate reads about them from elsewhere. The input is tried as
// a token (parsed, its untrusted issuer read, verified against a fixed key
// set, its claims checked kube-apiserver's way), as a JWKS document, as an
// issuer's discovery document, and as the API server's TokenReview answer. Nothing may
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
#include "identity/service_account_auth.h"

namespace {

// Serves the input as the discovery document (and a fixed JWKS).
class InputGetter : public kubegate::HttpsGetter {
 public:
  explicit InputGetter(std::string_view in) : in_(in) {}
  kubegate::Result<std::string> Get(const std::string& url, const std::string&) override {
    if (url.find("/.well-known/") != std::string::npos) return std::string(in_);
    return kubegate::Error::Unavailable("no keys here");
  }

 private:
  std::string_view in_;
};

}  // namespace

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
  kubegate::OidcIssuerConfig issuer;
  issuer.issuer = "https://idp.test";
  issuer.audiences = {"kubegate"};
  InputGetter getter(in);
  (void)kubegate::OidcIssuer(issuer).Refresh(getter, 0);
  kubegate::ServiceAccountConfig sa;
  sa.enabled = true;
  kubegate::ServiceAccountAuthenticator reviewer(sa);
  static const std::string sa_token = rs.Sign({{"sub", "system:serviceaccount:ns:bot"}, {"exp", 4000000000}});
  std::string why;
  (void)reviewer.FromReview(sa_token, 201, in, 0, why);
  return 0;
}
