#include "identity/authenticator.h"

#include <gtest/gtest.h>

#include "common/clock.h"

namespace kubegate {
namespace {

Authenticator Make() {
  TokenEntry alice{"alice", {"dev"}, IdentityKind::kHuman, Sha256Hex("alice-token"), false};
  TokenEntry bot{"bot", {}, IdentityKind::kAgent, Sha256Hex("bot-token"), true};
  ClientCertConfig certs;
  certs.agent_users = {"robot"};
  return Authenticator({alice, bot}, certs);
}

TEST(Authenticator, Sha256) {
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Authenticator, BearerTokens) {
  Authenticator a = Make();
  auto id = a.Authenticate({.authorization = "Bearer alice-token"});
  ASSERT_TRUE(id);
  EXPECT_EQ(id->user, "alice");
  EXPECT_EQ(id->groups, (std::vector<std::string>{"dev"}));
  EXPECT_EQ(id->kind, IdentityKind::kHuman);
  auto bot = a.Authenticate({.authorization = "bearer bot-token"});
  ASSERT_TRUE(bot);
  EXPECT_EQ(bot->kind, IdentityKind::kAgent);
  EXPECT_TRUE(bot->may_impersonate);
}

TEST(Authenticator, RefusesBadOrMissingCredentials) {
  Authenticator a = Make();
  for (const char* h : {"Bearer wrong", "Basic YWxpY2U6eA==", "Bearer ", "alice-token"}) {
    auto r = a.Authenticate({.authorization = h});
    ASSERT_FALSE(r) << h;
    EXPECT_EQ(r.error().http_code, 401);
  }
  auto none = a.Authenticate({});
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().reason, "Unauthorized");
}

TEST(Authenticator, BadTokenBeatsGoodCertificate) {
  Authenticator a = Make();
  auto r = a.Authenticate({.authorization = "Bearer nope", .peer = PeerCertificate{"robot", {"ops"}}});
  EXPECT_FALSE(r);
}

TEST(Authenticator, ClientCertificates) {
  Authenticator a = Make();
  auto r = a.Authenticate({.peer = PeerCertificate{"robot", {"ops", "bots"}}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->user, "robot");
  EXPECT_EQ(r->groups, (std::vector<std::string>{"ops", "bots"}));
  EXPECT_EQ(r->kind, IdentityKind::kAgent);
  EXPECT_EQ(r->method, AuthMethod::kClientCertificate);
  auto h = a.Authenticate({.peer = PeerCertificate{"carol", {}}});
  ASSERT_TRUE(h);
  EXPECT_EQ(h->kind, IdentityKind::kHuman);
  EXPECT_FALSE(a.Authenticate({.peer = PeerCertificate{"", {"x"}}}));
  auto untrusted = a.Authenticate({.untrusted_peer = true});
  ASSERT_FALSE(untrusted);
  EXPECT_EQ(untrusted.error().message, "client certificate is not signed by kubegate's client CA");
}

// Names disabled at runtime, as the credential cache reports them.
class DisabledNames final : public RuntimeTokens {
 public:
  std::optional<Identity> Lookup(const std::string&, std::int64_t) const override { return std::nullopt; }
  std::optional<std::string> Disabled(const std::string& user) const override {
    if (user == "bot" || user == "robot") return std::string("disabled by alice: leaked");
    return std::nullopt;
  }
};

TEST(Authenticator, ADisabledUserIsRefusedHoweverItAuthenticates) {
  Authenticator a = Make();
  DisabledNames disabled;
  a.SetRuntimeTokens(&disabled, SystemClock());
  EXPECT_TRUE(a.Authenticate({.authorization = "Bearer alice-token"}));
  AuthNote note;
  auto bot = a.Authenticate({.authorization = "Bearer bot-token"}, &note);
  ASSERT_FALSE(bot);
  EXPECT_EQ(bot.error().http_code, 401);
  EXPECT_EQ(bot.error().message, "kubegate: user \"bot\" is disabled (disabled by alice: leaked)");
  EXPECT_EQ(note.reason, "disabled");
  EXPECT_FALSE(a.Authenticate({.peer = PeerCertificate{"robot", {}}}));
  // An identity established elsewhere (a reviewed ServiceAccount) too.
  Identity reviewed;
  reviewed.user = "bot";
  EXPECT_FALSE(a.Admit(reviewed, &note));
  reviewed.user = "carol";
  EXPECT_TRUE(a.Admit(reviewed, &note));
}

}  // namespace
}  // namespace kubegate
