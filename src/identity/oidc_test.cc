#include "identity/oidc.h"

#include <future>
#include <map>

#include <gtest/gtest.h>

#include "common/limits.h"
#include "identity/authenticator.h"
#include "identity/jwt_test_util.h"

namespace kubegate {
namespace {

using json = nlohmann::json;
using testing::JwksOf;
using testing::TestSigner;

constexpr std::int64_t kNow = 1'900'000'000;  // seconds
const char* kIssuer = "https://idp.test/realm";

OidcIssuerConfig Config() {
  OidcIssuerConfig c;
  c.issuer = kIssuer;
  c.audiences = {"kubegate", "other"};
  c.username_claim = "email";
  c.groups_claim = "groups";
  c.groups_prefix = "oidc:";
  return c;
}

json Claims() {
  return {{"iss", kIssuer},  {"sub", "u-1"},       {"aud", {"x", "kubegate"}}, {"email", "alice@example.com"},
          {"exp", kNow + 60}, {"iat", kNow - 10}, {"groups", {"dev", "ops"}}};
}

Result<Identity> Check(const OidcIssuerConfig& c, const json& claims, std::string& reason, std::int64_t now = kNow) {
  Jwt jwt;
  jwt.claims = std::make_shared<const json>(claims);
  return IdentityFromClaims(c, jwt, now, reason);
}

std::string ReasonOf(const OidcIssuerConfig& c, const json& claims, std::int64_t now = kNow) {
  std::string reason;
  auto r = Check(c, claims, reason, now);
  EXPECT_FALSE(r);
  return reason;
}

TEST(OidcClaims, ClaimsMapAsKubeApiserverMapsThem) {
  std::string reason;
  auto id = Check(Config(), Claims(), reason);
  ASSERT_TRUE(id) << id.error().message;
  EXPECT_EQ(id->user, "alice@example.com");  // email: no prefix by default
  EXPECT_EQ(id->groups, (std::vector<std::string>{"oidc:dev", "oidc:ops"}));
  EXPECT_EQ(id->method, AuthMethod::kOidc);
  EXPECT_EQ(id->auth_source, kIssuer);
  // A single string as the groups claim (kubernetes/kubernetes#33290).
  json one = Claims();
  one["groups"] = "admins";
  EXPECT_EQ(Check(Config(), one, reason)->groups, (std::vector<std::string>{"oidc:admins"}));
  // No groups claim: no groups, not an error.
  json none = Claims();
  none.erase("groups");
  EXPECT_TRUE(Check(Config(), none, reason)->groups.empty());
  // sub with the issuer's prefix (config/config.cc defaults it so).
  OidcIssuerConfig sub = Config();
  sub.username_claim = "sub";
  sub.username_prefix = std::string(kIssuer) + "#";
  EXPECT_EQ(Check(sub, Claims(), reason)->user, "https://idp.test/realm#u-1");
}

TEST(OidcClaims, EveryTimeAndAudienceRuleRefuses) {
  OidcIssuerConfig c = Config();
  const std::int64_t skew = std::chrono::seconds(limits::kJwtClockSkew).count();
  json expired = Claims();
  expired["exp"] = kNow - skew - 1;
  EXPECT_EQ(ReasonOf(c, expired), "expired");
  json within_skew = Claims();
  within_skew["exp"] = kNow - skew + 1;
  std::string reason;
  EXPECT_TRUE(Check(c, within_skew, reason));
  json no_exp = Claims();
  no_exp.erase("exp");
  EXPECT_EQ(ReasonOf(c, no_exp), "malformed");
  json text_exp = Claims();
  text_exp["exp"] = "tomorrow";
  EXPECT_EQ(ReasonOf(c, text_exp), "malformed");
  json nbf = Claims();
  nbf["nbf"] = kNow + skew + 5;
  EXPECT_EQ(ReasonOf(c, nbf), "not_yet_valid");
  json iat = Claims();
  iat["iat"] = kNow + skew + 5;
  EXPECT_EQ(ReasonOf(c, iat), "not_yet_valid");
  json aud = Claims();
  aud["aud"] = "someone-else";
  EXPECT_EQ(ReasonOf(c, aud), "wrong_audience");
  json aud_num = Claims();
  aud_num["aud"] = 5;
  EXPECT_EQ(ReasonOf(c, aud_num), "wrong_audience");
  json iss = Claims();
  iss["iss"] = "https://idp.test/realm/";
  EXPECT_EQ(ReasonOf(c, iss), "wrong_issuer");
}

TEST(OidcClaims, UsernameEmailVerifiedGroupsAndRequiredClaims) {
  OidcIssuerConfig c = Config();
  json unverified = Claims();
  unverified["email_verified"] = false;
  EXPECT_EQ(ReasonOf(c, unverified), "email_not_verified");
  json verified = Claims();
  verified["email_verified"] = true;
  std::string reason;
  EXPECT_TRUE(Check(c, verified, reason));
  json no_email = Claims();
  no_email.erase("email");
  EXPECT_EQ(ReasonOf(c, no_email), "missing_claim");
  json bad_groups = Claims();
  bad_groups["groups"] = {"dev", 7};
  EXPECT_EQ(ReasonOf(c, bad_groups), "malformed");
  c.required_claims = {{"hd", "example.com"}};
  EXPECT_EQ(ReasonOf(c, Claims()), "required_claim");
  json hd = Claims();
  hd["hd"] = "example.com";
  EXPECT_TRUE(Check(c, hd, reason));
  hd["hd"] = "example.org";
  EXPECT_EQ(ReasonOf(c, hd), "required_claim");
}

// Serves a discovery document and a JWKS that the test can change or
// take down.
class FakeIdp : public HttpsGetter {
 public:
  Result<std::string> Get(const std::string& url, const std::string& ca_file) override {
    std::lock_guard<std::mutex> lock(mu);
    ++gets;
    last_ca = ca_file;
    if (down) return Error::Unavailable("connection refused");
    if (url == std::string(kIssuer) + "/.well-known/openid-configuration") {
      return json{{"issuer", discovery_issuer}, {"jwks_uri", "https://idp.test/keys"}}.dump();
    }
    if (url == "https://idp.test/keys") return jwks;
    return Error::Unavailable("404");
  }
  std::mutex mu;
  std::string jwks;
  std::string discovery_issuer = kIssuer;
  std::string last_ca;
  bool down = false;
  int gets = 0;
};

struct Fixture {
  Fixture() : idp(std::make_shared<FakeIdp>()), clock(kNow * 1000) {}
  std::shared_ptr<FakeIdp> idp;
  ManualClock clock;
};

// Starts the refresher and returns once an attempt has run after start.
void StartAndWaitForKeys(OidcAuthenticator& oidc) {
  oidc.Start();
  std::promise<void> done;
  ASSERT_TRUE(oidc.RefreshThen(*oidc.FindIssuer(kIssuer), [&] { done.set_value(); }));
  done.get_future().wait();
}

TEST(OidcAuthenticator, VerifiesTokensOfItsIssuersOnly) {
  Fixture f;
  TestSigner key("RS256", "k1");
  f.idp->jwks = JwksOf({&key});
  OidcIssuerConfig c = Config();
  c.ca_file = "/etc/idp-ca.pem";
  OidcAuthenticator oidc({c}, f.idp, f.clock);
  // Before any fetch: a refresh first; without one, 503, never accepted unverified.
  EXPECT_EQ(oidc.Verify(key.Sign(Claims())).kind, OidcAnswer::Kind::kRefreshFirst);
  OidcAnswer before = oidc.Verify(key.Sign(Claims()), /*allow_refresh=*/false);
  EXPECT_EQ(before.kind, OidcAnswer::Kind::kRefused);
  EXPECT_EQ(before.error.http_code, 503);
  ASSERT_EQ(before.reason, "no_keys");
  TestSigner other("RS256", "k2");
  json foreign = Claims();
  foreign["iss"] = "https://elsewhere";
  EXPECT_EQ(oidc.Verify(other.Sign(foreign)).kind, OidcAnswer::Kind::kNotOurs);
  EXPECT_EQ(oidc.Verify("static-token").kind, OidcAnswer::Kind::kNotOurs);
  StartAndWaitForKeys(oidc);
  OidcAnswer ok = oidc.Verify(key.Sign(Claims()));
  ASSERT_EQ(ok.kind, OidcAnswer::Kind::kIdentity) << ok.error.message;
  EXPECT_EQ(ok.who->user, "alice@example.com");
  EXPECT_EQ(f.idp->last_ca, "/etc/idp-ca.pem");
  // A forged signature, an expired token: refused with their reasons.
  std::string t = key.Sign(Claims());
  t[t.size() - 3] = t[t.size() - 3] == 'A' ? 'B' : 'A';
  EXPECT_EQ(oidc.Verify(t).reason, "bad_signature");
  json expired = Claims();
  expired["exp"] = kNow - 3600;
  EXPECT_EQ(oidc.Verify(key.Sign(expired)).reason, "expired");
  OidcAnswer none = oidc.Verify(Base64UrlEncode(R"({"alg":"none"})") + "." + Base64UrlEncode(Claims().dump()) + ".");
  EXPECT_EQ(none.kind, OidcAnswer::Kind::kRefused);
  EXPECT_EQ(none.reason, "algorithm");
}

TEST(OidcIssuer, ADiscoveryDocumentOfAnotherIssuerIsRefused) {
  Fixture f;
  TestSigner key("RS256", "k1");
  f.idp->jwks = JwksOf({&key});
  f.idp->discovery_issuer = "https://evil.test";
  OidcIssuer issuer(Config());
  auto r = issuer.Refresh(*f.idp, f.clock.NowMillis());
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("evil.test"), std::string::npos);
  EXPECT_EQ(issuer.Keys(f.clock.NowMillis()), nullptr);
}

TEST(OidcIssuer, CachedKeysOutliveAnOutageUpToTheirMaxAge) {
  Fixture f;
  TestSigner key("ES256", "k1");
  f.idp->jwks = JwksOf({&key});
  OidcIssuer issuer(Config());
  ASSERT_TRUE(issuer.Refresh(*f.idp, f.clock.NowMillis()));
  f.idp->down = true;
  f.clock.Advance(std::chrono::duration_cast<std::chrono::milliseconds>(limits::kOidcKeyMaxAge).count() - 1);
  EXPECT_FALSE(issuer.Refresh(*f.idp, f.clock.NowMillis()));
  EXPECT_NE(issuer.Keys(f.clock.NowMillis()), nullptr);  // a failed refresh keeps the old keys
  f.clock.Advance(2);
  EXPECT_EQ(issuer.Keys(f.clock.NowMillis()), nullptr);
}

TEST(OidcAuthenticator, AnUnknownKidRefreshesOnceAndPicksUpARotatedKey) {
  Fixture f;
  TestSigner old_key("RS256", "old"), new_key("RS256", "new");
  f.idp->jwks = JwksOf({&old_key});
  OidcAuthenticator oidc({Config()}, f.idp, f.clock);
  StartAndWaitForKeys(oidc);
  ASSERT_EQ(oidc.Verify(old_key.Sign(Claims())).kind, OidcAnswer::Kind::kIdentity);
  // The provider rotates: a token with the new kid makes one refresh.
  {
    std::lock_guard<std::mutex> lock(f.idp->mu);
    f.idp->jwks = JwksOf({&new_key});
  }
  OidcAnswer a = oidc.Verify(new_key.Sign(Claims()));
  ASSERT_EQ(a.kind, OidcAnswer::Kind::kRefreshFirst);
  EXPECT_EQ(a.issuer, oidc.FindIssuer(kIssuer));
  // The start-up wait used this interval's unknown-kid refresh.
  EXPECT_FALSE(oidc.RefreshThen(*a.issuer, [] {}));
  f.clock.Advance(std::chrono::duration_cast<std::chrono::milliseconds>(limits::kOidcUnknownKidRefresh).count());
  std::promise<void> done;
  ASSERT_TRUE(oidc.RefreshThen(*a.issuer, [&] { done.set_value(); }));
  done.get_future().wait();
  EXPECT_EQ(oidc.Verify(new_key.Sign(Claims())).kind, OidcAnswer::Kind::kIdentity);
  EXPECT_EQ(oidc.Verify(old_key.Sign(Claims()), false).reason, "unknown_key");  // rotated out
  // A second unknown kid within the interval: no second refresh.
  TestSigner stranger("RS256", "stranger");
  int gets = f.idp->gets;
  OidcAnswer b = oidc.Verify(stranger.Sign(Claims()));
  ASSERT_EQ(b.kind, OidcAnswer::Kind::kRefreshFirst);
  EXPECT_FALSE(oidc.RefreshThen(*b.issuer, [] {}));
  EXPECT_EQ(f.idp->gets, gets);
  f.clock.Advance(std::chrono::duration_cast<std::chrono::milliseconds>(limits::kOidcUnknownKidRefresh).count());
  std::promise<void> again;
  EXPECT_TRUE(oidc.RefreshThen(*b.issuer, [&] { again.set_value(); }));
  again.get_future().wait();
  EXPECT_GT(f.idp->gets, gets);
}

TEST(Authenticator, StaticTokensComeFirstThenIdTokens) {
  Fixture f;
  TestSigner key("RS256", "k1");
  f.idp->jwks = JwksOf({&key});
  OidcAuthenticator oidc({Config()}, f.idp, f.clock);
  TokenEntry alice{"alice", {"dev"}, IdentityKind::kHuman, Sha256Hex("alice-token"), false};
  Authenticator auth({alice}, {});
  auth.SetOidc(&oidc);
  AuthNote note;
  EXPECT_EQ(auth.Authenticate({.authorization = "Bearer alice-token"}, &note)->user, "alice");
  auto unknown = auth.Authenticate({.authorization = "Bearer nope"}, &note);
  ASSERT_FALSE(unknown);
  EXPECT_EQ(note.reason, "unknown_token");
  note = {};
  auto no_keys = auth.Authenticate({.authorization = "Bearer " + key.Sign(Claims())}, &note, /*allow_refresh=*/false);
  ASSERT_FALSE(no_keys);
  EXPECT_EQ(no_keys.error().http_code, 503);
  EXPECT_EQ(note.reason, "no_keys");
  note = {};
  EXPECT_FALSE(auth.Authenticate({.authorization = "Bearer " + key.Sign(Claims())}, &note));
  EXPECT_EQ(note.refresh_first, oidc.FindIssuer(kIssuer));  // the session refreshes, then asks again
  note = {};
  EXPECT_FALSE(auth.Authenticate({.authorization = "Bearer " + std::string(limits::kMaxJwtBytes + 1, 'a')}, &note));
  EXPECT_EQ(note.reason, "oversized");
}

}  // namespace
}  // namespace kubegate
