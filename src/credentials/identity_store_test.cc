#include "credentials/identity_store.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "common/digest.h"
#include "credentials/credential_store.h"
#include "credentials/identity_api.h"
#include "store/store_test_util.h"

namespace kubegate {
namespace {

using namespace kubegate::testing;
using json = nlohmann::json;

class IdentityTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    KG_REQUIRE_BACKEND(db_);
    database_ = std::move(*CredentialStore::OpenDatabase(db_.Connect()));
    creds_ = std::make_unique<CredentialStore>(*database_, clock_);
    ids_ = std::make_unique<IdentityStore>(*database_, clock_);
    cache_.SetChangeListener([this](const std::vector<std::string>& ended) {
      woken_.insert(woken_.end(), ended.begin(), ended.end());
    });
  }
  const CredentialCache& Poll() {
    cache_.Load(*creds_->Snapshot());
    return cache_;
  }
  TaskApiResponse Api(const Identity& caller, std::string_view method, std::string_view path,
                      const json& body = json::object(), std::string_view query = "") {
    return RunIdentityApi(*creds_, *ids_, caller, roles_, method, path, query, body.dump());
  }
  static Identity Caller(const std::string& user) {
    Identity who;
    who.user = user;
    return who;
  }

  TestDatabase db_{GetParam()};
  ManualClock clock_{1'795'000'000'000};
  std::unique_ptr<Database> database_;
  std::unique_ptr<CredentialStore> creds_;
  std::unique_ptr<IdentityStore> ids_;
  CredentialCache cache_;
  std::vector<std::string> woken_;
  IdentityApiRoles roles_{true, false, {"agents", "team-*"}, {"alice", "bot"}};
};

TEST_P(IdentityTest, ARegisteredAgentGetsAStaticTokenThatActsAsIt) {
  auto made = ids_->Create({"deploy-bot", IdentityKind::kAgent, {"agents"}, "CI deploys", "alice"}, {});
  ASSERT_TRUE(made) << made.error().message;
  EXPECT_FALSE(ids_->Create({"deploy-bot", IdentityKind::kAgent, {}, "", "alice"}, {})) << "taken";
  TaskApiResponse r = Api(Caller("alice"), "POST", "/kubegate/v1/tokens", {{"identity", "deploy-bot"}, {"ttl", "30d"}});
  ASSERT_EQ(r.status, 201) << r.body;
  json out = json::parse(r.body);
  std::string token = out["token"];
  EXPECT_EQ(out["credential"]["kind"], "static");
  EXPECT_EQ(r.change["action"], "issue-token");
  EXPECT_EQ(r.change.dump().find(token), std::string::npos) << "the change record never holds the token";
  auto who = Poll().Lookup(Sha256Hex(token), clock_.NowMillis());
  ASSERT_TRUE(who);
  EXPECT_EQ(who->user, "deploy-bot");
  EXPECT_EQ(who->groups, std::vector<std::string>{"agents"});
  EXPECT_EQ(who->kind, IdentityKind::kAgent);
  EXPECT_EQ(who->method, AuthMethod::kBearerToken);
  EXPECT_EQ(who->auth_source, kStoreTokenSource);
  EXPECT_EQ(who->credential_id, out["credential"]["id"]);
  EXPECT_TRUE(who->task.empty());
  // It expires: the default is 90 days, the longest a year.
  EXPECT_FALSE(Poll().Lookup(Sha256Hex(token), clock_.NowMillis() + 31LL * 86'400'000));
  EXPECT_EQ(Api(Caller("alice"), "POST", "/kubegate/v1/tokens", {{"identity", "deploy-bot"}, {"ttl", "400d"}}).status,
            400);
  // Only registered identities get static tokens.
  EXPECT_EQ(Api(Caller("alice"), "POST", "/kubegate/v1/tokens", {{"identity", "stranger"}}).status, 404);
}

TEST_P(IdentityTest, DisablingANameRefusesItEverywhereAndWakesWhatRunsUnderIt) {
  ASSERT_TRUE(ids_->Create({"deploy-bot", IdentityKind::kAgent, {}, "", "alice"}, {}));
  auto issued = creds_->Issue({"deploy-bot", {}, "T-1", 3'600'000, "", "alice"});
  ASSERT_TRUE(issued);
  Identity task_caller = *Poll().Lookup(Sha256Hex(issued->token), clock_.NowMillis());
  woken_.clear();
  // Any user name, registered here or not (a config-file or OIDC user).
  TaskApiResponse r = Api(Caller("alice"), "POST", "/kubegate/v1/identities/disable",
                          {{"name", "deploy-bot"}, {"reason", "token leaked"}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.change["action"], "disable-identity");
  ASSERT_EQ(Api(Caller("alice"), "POST", "/kubegate/v1/identities/disable", {{"name", "https://idp#carol"}}).status, 200);
  const CredentialCache& cache = Poll();
  EXPECT_EQ(*cache.Disabled("deploy-bot"), "disabled by alice: token leaked");
  EXPECT_TRUE(cache.Disabled("https://idp#carol"));
  EXPECT_FALSE(cache.Disabled("bob"));
  auto ended = cache.Ended(task_caller, clock_.NowMillis());
  ASSERT_TRUE(ended);
  EXPECT_EQ(*ended, "user \"deploy-bot\" was disabled by alice: token leaked");
  auto stored = creds_->Ended(task_caller);
  ASSERT_TRUE(stored && *stored);
  EXPECT_EQ(**stored, *ended) << "the store says what the cache says";
  std::sort(woken_.begin(), woken_.end());
  EXPECT_EQ(woken_, (std::vector<std::string>{"user:deploy-bot", "user:https://idp#carol"}))
      << "each newly disabled user is woken, once";
  // Enabled again: acts again; nothing is woken by it.
  woken_.clear();
  ASSERT_EQ(Api(Caller("alice"), "POST", "/kubegate/v1/identities/enable", {{"name", "deploy-bot"}}).status, 200);
  EXPECT_FALSE(Poll().Ended(task_caller, clock_.NowMillis()));
  EXPECT_TRUE(woken_.empty());
  // A revoked token wakes its credential's key.
  ASSERT_EQ(*creds_->Revoke(issued->info.id, "alice"), 1);
  Poll();
  EXPECT_EQ(woken_, std::vector<std::string>{"credential:" + issued->info.id});
  EXPECT_EQ(CredentialCache::WakeKeys(task_caller),
            (std::vector<std::string>{"user:deploy-bot", "credential:" + issued->info.id}));
}

TEST_P(IdentityTest, OnlyAdminsChangeAndTheyCannotMintWhatTheConfigReserves) {
  IdentityApiRoles auditor{false, true, {}, {}};
  EXPECT_EQ(RunIdentityApi(*creds_, *ids_, Caller("eve"), auditor, "GET", "/kubegate/v1/identities", "", "").status,
            200);
  EXPECT_EQ(RunIdentityApi(*creds_, *ids_, Caller("eve"), auditor, "POST", "/kubegate/v1/identities", "",
                           R"({"name":"x"})").status,
            403);
  Identity task_token = Caller("alice");
  task_token.method = AuthMethod::kTaskToken;
  EXPECT_EQ(Api(task_token, "POST", "/kubegate/v1/identities", {{"name", "x"}}).status, 403)
      << "a task token manages nothing";
  auto create = [&](json body) { return Api(Caller("alice"), "POST", "/kubegate/v1/identities", body).status; };
  EXPECT_EQ(create({{"name", "system:admin"}}), 400);
  EXPECT_EQ(create({{"name", "https://idp#alice"}}), 400);
  EXPECT_EQ(create({{"name", "bot"}}), 409) << "a config-file identity";
  EXPECT_EQ(create({{"name", "x"}, {"groups", {"system:masters"}}}), 403);
  EXPECT_EQ(create({{"name", "x"}, {"groups", {"ops"}}}), 403) << "not assignable";
  EXPECT_EQ(create({{"name", "x"}, {"kind", "robot"}}), 400);
  EXPECT_EQ(create({{"name", "x"}, {"kind", "human"}, {"groups", {"team-a"}}}), 201);
  TaskApiResponse list = Api(Caller("alice"), "GET", "/kubegate/v1/identities");
  json items = json::parse(list.body)["items"];
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(items[0]["kind"], "human");
  EXPECT_EQ(items[0]["created_by"], "alice");
  // Names travel in bodies; paths are fixed.
  EXPECT_EQ(Api(Caller("alice"), "POST", "/kubegate/v1/identities/x/disable").status, 404);
  EXPECT_EQ(Api(Caller("alice"), "DELETE", "/kubegate/v1/identities").status, 405);
}

INSTANTIATE_TEST_SUITE_P(Backends, IdentityTest, ::testing::Values("sqlite", "postgres"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace kubegate
