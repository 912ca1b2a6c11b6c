#include "login/oauth_login.h"

#include <sys/stat.h>

#include <deque>
#include <filesystem>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <openssl/evp.h>

#include "common/text.h"

namespace kubegate {
namespace {

using json = nlohmann::json;
using Fields = std::vector<std::pair<std::string, std::string>>;

constexpr std::int64_t kNowS = 1'900'000'000;
const char* kIssuer = "https://idp.test";

std::string IdToken(std::int64_t exp, const std::string& sub = "alice") {
  return Base64UrlEncode(R"({"alg":"RS256"})") + "." +
         Base64UrlEncode(json{{"sub", sub}, {"exp", exp}}.dump()) + ".c2ln";
}

// Answers requests from a script, and remembers them.
class ScriptedIdp : public LoginHttp {
 public:
  Result<HttpAnswer> Get(const std::string& url) override {
    gets.push_back(url);
    if (url == std::string(kIssuer) + "/.well-known/openid-configuration") {
      return HttpAnswer{200, json{{"issuer", kIssuer},
                                  {"token_endpoint", "https://idp.test/token"},
                                  {"device_authorization_endpoint", "https://idp.test/device/auth"},
                                  {"authorization_endpoint", "https://idp.test/auth"}}
                                 .dump()};
    }
    return HttpAnswer{404, "{}"};
  }
  Result<HttpAnswer> PostForm(const std::string& url, const Fields& fields) override {
    posts.push_back({url, fields});
    if (answers.empty()) return Error::Unavailable("script ran out");
    HttpAnswer a = answers.front();
    answers.pop_front();
    return a;
  }
  std::string Field(std::size_t post, const std::string& name) const {
    for (const auto& [k, v] : posts.at(post).second) {
      if (k == name) return v;
    }
    return "";
  }
  std::vector<std::string> gets;
  std::vector<std::pair<std::string, Fields>> posts;
  std::deque<HttpAnswer> answers;
};

class FakeReceiver : public RedirectReceiver {
 public:
  Result<std::string> Start() override { return std::string("http://127.0.0.1:4711/callback"); }
  Result<std::map<std::string, std::string>> Wait(int) override { return reply(); }
  std::function<std::map<std::string, std::string>()> reply;
};

struct Rig {
  Rig() : clock(kNowS * 1000), dir(std::filesystem::temp_directory_path() / ("kg-login-" + std::to_string(getpid()))) {
    std::filesystem::remove_all(dir);
    o.issuer = kIssuer;
    o.client_id = "kubegate";
    o.cache_dir = dir.string();
  }
  ~Rig() { std::filesystem::remove_all(dir); }
  LoginEnvironment Env() {
    return LoginEnvironment{idp, clock, [this](std::int64_t ms) {
                              sleeps.push_back(ms);
                              clock.Advance(ms);
                            },
                            err, &receiver, [this](std::size_t n) { return std::string(n, 'r') + std::to_string(++draws); }};
  }
  ScriptedIdp idp;
  ManualClock clock;
  std::filesystem::path dir;
  LoginOptions o;
  std::vector<std::int64_t> sleeps;
  std::ostringstream err;
  FakeReceiver receiver;
  int draws = 0;
};

HttpAnswer Error400(const std::string& code) { return {400, json{{"error", code}}.dump()}; }

TEST(Login, DeviceFlowPollsAsRfc8628SaysAndCachesTheTokensOwnerOnly) {
  Rig r;
  std::string id = IdToken(kNowS + 3600);
  r.idp.answers = {{200, json{{"device_code", "dev-1"}, {"user_code", "BCDF-GHJK"},
                              {"verification_uri", "https://idp.test/device"}, {"interval", 5}, {"expires_in", 600}}
                             .dump()},
                   Error400("authorization_pending"), Error400("slow_down"),
                   {200, json{{"id_token", id}, {"refresh_token", "rt-1"}, {"token_type", "Bearer"}}.dump()}};
  LoginEnvironment env = r.Env();
  auto out = Login(r.o, env);
  ASSERT_TRUE(out) << out.error().message;
  json cred = json::parse(*out);
  EXPECT_EQ(cred["apiVersion"], "client.authentication.k8s.io/v1");
  EXPECT_EQ(cred["kind"], "ExecCredential");
  EXPECT_EQ(cred["status"]["token"], id);
  EXPECT_EQ(cred["status"]["expirationTimestamp"], FormatRfc3339((kNowS + 3600) * 1000));
  EXPECT_NE(r.err.str().find("https://idp.test/device"), std::string::npos);
  EXPECT_NE(r.err.str().find("BCDF-GHJK"), std::string::npos);
  // 5 s, 5 s, then 10 s after slow_down.
  EXPECT_EQ(r.sleeps, (std::vector<std::int64_t>{5000, 5000, 10000}));
  EXPECT_EQ(r.idp.Field(0, "scope"), "openid email groups offline_access");
  EXPECT_EQ(r.idp.Field(1, "grant_type"), "urn:ietf:params:oauth:grant-type:device_code");
  EXPECT_EQ(r.idp.Field(1, "device_code"), "dev-1");
  struct stat st {};
  ASSERT_EQ(::stat(TokenCachePath(r.o).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(LoadTokenCache(TokenCachePath(r.o))->refresh_token, "rt-1");
  // Asked again while the ID token is fresh: no request at all.
  std::size_t posts = r.idp.posts.size(), gets = r.idp.gets.size();
  auto again = Login(r.o, env);
  ASSERT_TRUE(again);
  EXPECT_EQ(json::parse(*again)["status"]["token"], id);
  EXPECT_EQ(r.idp.posts.size(), posts);
  EXPECT_EQ(r.idp.gets.size(), gets);
}

TEST(Login, ANearlyExpiredTokenIsRefreshedSilentlyAndASpentRefreshTokenSignsInAgain) {
  Rig r;
  ASSERT_TRUE(SaveTokenCache(TokenCachePath(r.o), {IdToken(kNowS + 30), "rt-old"}));
  std::string fresh = IdToken(kNowS + 3600, "alice");
  r.idp.answers = {{200, json{{"id_token", fresh}}.dump()}};  // no new refresh token: the old one stays
  LoginEnvironment env = r.Env();
  auto out = Login(r.o, env);
  ASSERT_TRUE(out) << out.error().message;
  EXPECT_EQ(json::parse(*out)["status"]["token"], fresh);
  EXPECT_EQ(r.idp.Field(0, "grant_type"), "refresh_token");
  EXPECT_EQ(r.idp.Field(0, "refresh_token"), "rt-old");
  EXPECT_EQ(LoadTokenCache(TokenCachePath(r.o))->refresh_token, "rt-old");
  EXPECT_TRUE(r.err.str().empty());  // silent
  // The refresh token is refused: a device sign-in follows.
  r.clock.Advance(3600 * 1000);
  r.idp.answers = {Error400("invalid_grant"),
                   {200, json{{"device_code", "d"}, {"user_code", "U"}, {"verification_uri", "https://idp.test/device"}}.dump()},
                   {200, json{{"id_token", IdToken(kNowS + 9000)}, {"refresh_token", "rt-2"}}.dump()}};
  ASSERT_TRUE(Login(r.o, env));
  EXPECT_EQ(LoadTokenCache(TokenCachePath(r.o))->refresh_token, "rt-2");
}

TEST(Login, DeviceFlowEndsOnDenialExpiryAndAWrongIssuer) {
  Rig r;
  LoginEnvironment env = r.Env();
  r.idp.answers = {{200, json{{"device_code", "d"}, {"user_code", "U"}, {"verification_uri", "https://idp.test/d"}}.dump()},
                   Error400("access_denied")};
  auto denied = Login(r.o, env);
  ASSERT_FALSE(denied);
  EXPECT_NE(denied.error().message.find("denied"), std::string::npos);
  r.idp.answers = {{200, json{{"device_code", "d"}, {"user_code", "U"}, {"verification_uri", "https://idp.test/d"},
                              {"expires_in", 12}, {"interval", 5}}
                             .dump()},
                   Error400("authorization_pending"), Error400("authorization_pending"), Error400("authorization_pending")};
  auto expired = Login(r.o, env);
  ASSERT_FALSE(expired);
  EXPECT_NE(expired.error().message.find("expired"), std::string::npos);
  r.o.issuer = "https://idp.test/other";
  EXPECT_FALSE(Login(r.o, env));  // its discovery is not served
}

TEST(Login, CodeFlowUsesPkceAndChecksState) {
  Rig r;
  r.o.flow = "code";
  std::string auth_url;
  r.receiver.reply = [&] {
    auth_url = r.err.str();
    auto at = auth_url.find("state=");
    std::string state = auth_url.substr(at + 6, auth_url.find('&', at) - at - 6);
    return std::map<std::string, std::string>{{"code", "c-1"}, {"state", state}};
  };
  r.idp.answers = {{200, json{{"id_token", IdToken(kNowS + 3600)}, {"refresh_token", "rt"}}.dump()}};
  LoginEnvironment env = r.Env();
  auto out = Login(r.o, env);
  ASSERT_TRUE(out) << out.error().message;
  EXPECT_NE(auth_url.find("code_challenge_method=S256"), std::string::npos);
  EXPECT_NE(auth_url.find("redirect_uri=http%3A%2F%2F127.0.0.1%3A4711%2Fcallback"), std::string::npos);
  // The verifier sent with the code hashes to the challenge sent before.
  std::string verifier = r.idp.Field(0, "code_verifier");
  unsigned char md[32];
  unsigned n = 0;
  EVP_Digest(verifier.data(), verifier.size(), md, &n, EVP_sha256(), nullptr);
  EXPECT_NE(auth_url.find("code_challenge=" + Base64UrlEncode(std::string(reinterpret_cast<char*>(md), n))),
            std::string::npos);
  EXPECT_EQ(r.idp.Field(0, "grant_type"), "authorization_code");
  EXPECT_EQ(r.idp.Field(0, "code"), "c-1");
  // A redirect with another state is refused, and no code is exchanged.
  std::filesystem::remove_all(r.dir);
  r.receiver.reply = [] { return std::map<std::string, std::string>{{"code", "c-2"}, {"state", "forged"}}; };
  std::size_t posts = r.idp.posts.size();
  auto forged = Login(r.o, env);
  ASSERT_FALSE(forged);
  EXPECT_NE(forged.error().message.find("state"), std::string::npos);
  EXPECT_EQ(r.idp.posts.size(), posts);
}

TEST(Login, FormEncodingAndExpiry) {
  EXPECT_EQ(FormEncode({{"a b", "x&y=z"}, {"k", "ü"}}), "a+b=x%26y%3Dz&k=%C3%BC");
  EXPECT_EQ(UnverifiedExpiry(IdToken(42)), 42);
  EXPECT_EQ(UnverifiedExpiry("garbage"), 0);
}

}  // namespace
}  // namespace kubegate
