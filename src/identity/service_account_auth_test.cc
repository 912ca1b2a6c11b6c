#include "identity/service_account_auth.h"

#include <gtest/gtest.h>

#include "common/digest.h"

#include "identity/jwt_test_util.h"

namespace kubegate {
namespace {

using json = nlohmann::json;
using testing::TestSigner;

constexpr std::int64_t kNowS = 1'900'000'000;
constexpr std::int64_t kNowMs = kNowS * 1000;

ServiceAccountConfig Config() {
  ServiceAccountConfig c;
  c.enabled = true;
  c.audiences = {"kubegate"};
  c.cache_ttl_ms = 10'000;
  c.humans = {"ci/*"};
  return c;
}

std::string Token(const TestSigner& s, const std::string& ns, const std::string& name, std::int64_t exp_s) {
  return s.Sign({{"iss", "https://kubernetes.default.svc.cluster.local"},
                 {"sub", "system:serviceaccount:" + ns + ":" + name},
                 {"aud", {"kubegate"}},
                 {"exp", exp_s}});
}

std::string Answer(bool ok, const std::string& user, json audiences = {"kubegate"}) {
  json status = {{"authenticated", ok}};
  if (ok) {
    status["user"] = {{"username", user}, {"groups", {"system:serviceaccounts", "system:authenticated"}}};
    status["audiences"] = audiences;
  } else {
    status["error"] = "[invalid bearer token, service account token has expired]";
  }
  return json{{"apiVersion", "authentication.k8s.io/v1"}, {"kind", "TokenReview"}, {"status", status}}.dump();
}

TEST(ServiceAccountAuth, OnlyServiceAccountShapedTokensAreSentForReview) {
  TestSigner s("RS256", "sa");
  ServiceAccountAuthenticator sa(Config());
  EXPECT_TRUE(sa.Candidate(Token(s, "apps", "deployer", kNowS + 600)));
  EXPECT_FALSE(sa.Candidate("static-token"));
  EXPECT_FALSE(sa.Candidate(s.Sign({{"sub", "alice"}, {"exp", kNowS + 600}})));  // an ID token of a person
  ServiceAccountConfig off = Config();
  off.enabled = false;
  EXPECT_FALSE(ServiceAccountAuthenticator(off).Candidate(Token(s, "apps", "deployer", kNowS + 600)));
  json body = json::parse(sa.ReviewBody("tok"));
  EXPECT_EQ(body["kind"], "TokenReview");
  EXPECT_EQ(body["spec"]["token"], "tok");
  EXPECT_EQ(body["spec"]["audiences"], json({"kubegate"}));
}

TEST(ServiceAccountAuth, AnAcceptedAnswerIsAnAgentIdentityCachedNoLongerThanTheTokenLives) {
  TestSigner s("RS256", "sa");
  ServiceAccountAuthenticator sa(Config());
  std::string reason;
  // exp 4 s away: cached 4 s, not the 10 s TTL.
  std::string token = Token(s, "apps", "deployer", kNowS + 4);
  auto who = sa.FromReview(token, 201, Answer(true, "system:serviceaccount:apps:deployer"), kNowMs, reason);
  ASSERT_TRUE(who) << who.error().message;
  EXPECT_EQ(who->user, "system:serviceaccount:apps:deployer");
  EXPECT_EQ(who->kind, IdentityKind::kAgent);
  EXPECT_EQ(who->method, AuthMethod::kServiceAccount);
  EXPECT_EQ(who->groups, (std::vector<std::string>{"system:serviceaccounts", "system:authenticated"}));
  EXPECT_TRUE(sa.Cached(Sha256Hex(token), kNowMs + 3'999));
  EXPECT_FALSE(sa.Cached(Sha256Hex(token), kNowMs + 4'000));
  // A long-lived token: the TTL bounds it.
  std::string long_lived = Token(s, "apps", "deployer", kNowS + 3600);
  ASSERT_TRUE(sa.FromReview(long_lived, 201, Answer(true, "system:serviceaccount:apps:deployer"), kNowMs, reason));
  EXPECT_TRUE(sa.Cached(Sha256Hex(long_lived), kNowMs + 9'999));
  EXPECT_FALSE(sa.Cached(Sha256Hex(long_lived), kNowMs + 10'000));
  EXPECT_FALSE(sa.Cached(Sha256Hex(Token(s, "apps", "other", kNowS + 3600)), kNowMs));
  // A pattern makes some ServiceAccounts human.
  std::string ci = Token(s, "ci", "runner", kNowS + 600);
  EXPECT_EQ(sa.FromReview(ci, 201, Answer(true, "system:serviceaccount:ci:runner"), kNowMs, reason)->kind,
            IdentityKind::kHuman);
}

TEST(ServiceAccountAuth, RefusalsAre401AndUnusableAnswers503) {
  TestSigner s("RS256", "sa");
  ServiceAccountAuthenticator sa(Config());
  std::string token = Token(s, "apps", "deployer", kNowS + 600);
  auto check = [&](int status, const std::string& body, int code, const std::string& want_reason) {
    std::string reason;
    auto r = sa.FromReview(token, status, body, kNowMs, reason);
    ASSERT_FALSE(r) << body;
    EXPECT_EQ(r.error().http_code, code) << body;
    EXPECT_EQ(reason, want_reason) << body;
    EXPECT_EQ(r.error().message.find(token), std::string::npos);
    EXPECT_FALSE(sa.Cached(Sha256Hex(token), kNowMs));
  };
  check(201, Answer(false, ""), 401, "token_review_refused");
  check(201, Answer(true, "system:serviceaccount:apps:deployer", {"https://kubernetes.default.svc"}), 401,
        "wrong_audience");
  check(201, Answer(true, "system:serviceaccount:apps:deployer", json::array()), 401, "wrong_audience");
  check(201, Answer(true, "system:serviceaccount:apps:other"), 401, "not_a_service_account");
  check(201, Answer(true, "alice"), 401, "not_a_service_account");
  check(403, R"({"kind":"Status","code":403})", 503, "token_review_failed");
  check(201, "not json", 503, "token_review_failed");
  check(201, R"({"kind":"Status"})", 503, "token_review_failed");
}

TEST(ServiceAccountAuth, HumanPatterns) {
  EXPECT_TRUE(ServiceAccountAuthenticator::Matches("ci/*", "ci", "runner"));
  EXPECT_TRUE(ServiceAccountAuthenticator::Matches("*/deployer", "apps", "deployer"));
  EXPECT_TRUE(ServiceAccountAuthenticator::Matches("team-*/bot", "team-a", "bot"));
  EXPECT_FALSE(ServiceAccountAuthenticator::Matches("team-*/bot", "other", "bot"));
  EXPECT_FALSE(ServiceAccountAuthenticator::Matches("ci/*", "cid", "runner"));
  EXPECT_FALSE(ServiceAccountAuthenticator::Matches("ci", "ci", "runner"));
}

}  // namespace
}  // namespace kubegate
