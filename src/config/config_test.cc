#include "config/config.h"

#include <gtest/gtest.h>

namespace kubegate {
namespace {

constexpr const char* kHash = "2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b";

TEST(Config, ParsesEverySection) {
  std::string y = std::string(R"(listen:
  address: 127.0.0.1
  port: 0
  plain_http: true
data_dir: /tmp/kg
upstream:
  kubeconfig: /etc/admin.kubeconfig
  context: prod
  impersonate: false
tokens:
  - user: alice
    groups: [dev, ops]
    kind: human
    token_sha256: )") + kHash + R"(
  - user: bot
    kind: agent
    may_impersonate: true
    token_sha256: )" + kHash + R"(
client_certs:
  ca_file: /etc/ca.crt
  agent_users: [robot]
shutdown_grace_seconds: 5
)";
  auto c = ParseConfig(y, "t.yaml");
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->listen.port, 0);
  EXPECT_TRUE(c->listen.plain_http);
  EXPECT_EQ(c->upstream.context, "prod");
  EXPECT_FALSE(c->upstream.impersonate);
  ASSERT_EQ(c->tokens.size(), 2u);
  EXPECT_EQ(c->tokens[0].groups, (std::vector<std::string>{"dev", "ops"}));
  EXPECT_EQ(c->tokens[1].kind, IdentityKind::kAgent);
  EXPECT_TRUE(c->tokens[1].may_impersonate);
  EXPECT_EQ(c->client_certs.agent_users, (std::vector<std::string>{"robot"}));
  EXPECT_EQ(c->shutdown_grace_seconds, 5);
}

TEST(Config, UnknownKeyNamesFileLineAndKey) {
  auto c = ParseConfig("data_dir: x\nlisten:\n  adress: 1.2.3.4\n", "k.yaml");
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().message, "k.yaml:3: listen.adress: unknown key");
}

TEST(Config, WrongTypesAreRejected) {
  struct {
    const char* yaml;
    const char* want;
  } cases[] = {
      {"listen:\n  port: http\n", "k.yaml:2: listen.port: must be an integer from 0 to 65535"},
      {"listen:\n  port: 70000\n", "k.yaml:2: listen.port: must be an integer from 0 to 65535"},
      {"listen:\n  plain_http: yes please\n", "k.yaml:2: listen.plain_http: must be true or false"},
      {"tokens: {}\n", "k.yaml:1: tokens: must be a list"},
      {"tokens:\n  - user: a\n    token_sha256: abc\n", "k.yaml:2: tokens[0].token_sha256: must be 64 lower-case hex digits (see `kubegate token hash`)"},
      {"tokens:\n  - user: a\n    kind: robot\n", "k.yaml:3: tokens[0].kind: must be human or agent"},
      {"data_dir: [a]\n", "k.yaml:1: data_dir: must be a string"},
      {"listen:\n  address: 0.0.0.0\n  plain_http: true\n", "k.yaml:3: listen.plain_http: plain HTTP is only allowed on a loopback address"},
      {"upstream:\n  context: x\n", "k.yaml:2: upstream: set exactly one of kubeconfig and in_cluster"},
      {"listen: [1]\n", "k.yaml:1: listen: must be a mapping"},
      {"audit:\n  fsync: sometimes\n", "k.yaml:2: audit.fsync: must be per_commit or interval"},
      {"audit:\n  fsync_interval: 0\n", "k.yaml:2: audit.fsync_interval: must be between 1ms and 10s"},
      {"audit:\n  fsync_interval: 1m\n", "k.yaml:2: audit.fsync_interval: must be between 1ms and 10s"},
  };
  for (const auto& tc : cases) {
    auto c = ParseConfig(tc.yaml, "k.yaml");
    ASSERT_FALSE(c) << tc.yaml;
    EXPECT_EQ(c.error().message, tc.want);
  }
}

TEST(Config, AuditFsyncDefaultsToPerCommit) {
  auto c = ParseConfig("data_dir: x\n", "k.yaml");
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->audit.fsync, "per_commit");
  EXPECT_EQ(c->audit.FsyncIntervalOrZero(), 0);
  auto i = ParseConfig("audit:\n  fsync: interval\n  fsync_interval: 20ms\n", "k.yaml");
  ASSERT_TRUE(i) << i.error().message;
  EXPECT_EQ(i->audit.FsyncIntervalOrZero(), 20);
  // An interval alone does not turn deferral on.
  auto only = ParseConfig("audit:\n  fsync_interval: 20ms\n", "k.yaml");
  ASSERT_TRUE(only) << only.error().message;
  EXPECT_EQ(only->audit.FsyncIntervalOrZero(), 0);
}

TEST(Config, ExampleFileParses) {
  auto c = LoadConfigFile(std::string(KUBEGATE_SOURCE_DIR) + "/examples/kubegate.yaml");
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->tokens.size(), 2u);
  EXPECT_EQ(c->listen.port, 8443);
}

TEST(Config, OidcIssuersDefaultTheUsernamePrefixAsKubeApiserverDoes) {
  auto c = ParseConfig(R"(oidc:
  - issuer: https://idp.example/realms/a
    audiences: [kubegate]
  - issuer: https://idp.example/realms/b
    audiences: [kubegate, cli]
    username_claim: email
    groups_claim: groups
    groups_prefix: "idp:"
    required_claims: {hd: example.com}
    ca_file: /etc/idp-ca.pem
    kind: agent
  - issuer: https://idp.example/realms/c
    audiences: [kubegate]
    username_prefix: "-"
  - issuer: https://idp.example/realms/d
    audiences: [kubegate]
    username_claim: email
    username_prefix: "d:"
)",
                       "t.yaml");
  ASSERT_TRUE(c) << c.error().message;
  ASSERT_EQ(c->oidc.size(), 4u);
  EXPECT_EQ(c->oidc[0].username_claim, "sub");
  EXPECT_EQ(c->oidc[0].username_prefix, "https://idp.example/realms/a#");
  EXPECT_EQ(c->oidc[1].username_prefix, "");
  EXPECT_EQ(c->oidc[1].groups_prefix, "idp:");
  EXPECT_EQ(c->oidc[1].required_claims, (std::vector<std::pair<std::string, std::string>>{{"hd", "example.com"}}));
  EXPECT_EQ(c->oidc[1].kind, IdentityKind::kAgent);
  EXPECT_EQ(c->oidc[1].audiences.size(), 2u);
  EXPECT_EQ(c->oidc[2].username_prefix, "");
  EXPECT_EQ(c->oidc[3].username_prefix, "d:");
  for (const char* bad : {"oidc: [{issuer: http://idp.example, audiences: [k]}]",
                          "oidc: [{issuer: https://idp.example}]",
                          "oidc: [{issuer: https://a, audiences: [k]}, {issuer: https://a, audiences: [k]}]",
                          "oidc: [{issuer: https://a, audiences: [k], secret: x}]"}) {
    EXPECT_FALSE(ParseConfig(bad, "t.yaml")) << bad;
  }
}

TEST(Config, ServiceAccountsNeedAnAudienceAndAShortTtl) {
  auto c = ParseConfig("service_accounts: {enabled: true, audiences: [kg], cache_ttl: 2s, humans: [\"ci/*\"]}", "t.yaml");
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_TRUE(c->service_accounts.enabled);
  EXPECT_EQ(c->service_accounts.audiences, std::vector<std::string>{"kg"});
  EXPECT_EQ(c->service_accounts.cache_ttl_ms, 2000);
  auto d = ParseConfig("service_accounts: {enabled: true}", "t.yaml");
  ASSERT_TRUE(d);
  EXPECT_EQ(d->service_accounts.audiences, std::vector<std::string>{"kubegate"});
  EXPECT_EQ(d->service_accounts.cache_ttl_ms, 10000);
  for (const char* bad : {"service_accounts: {enabled: true, audiences: []}",
                          "service_accounts: {enabled: true, cache_ttl: 1h}",
                          "service_accounts: {enabled: true, humans: [ci]}"}) {
    EXPECT_FALSE(ParseConfig(bad, "t.yaml")) << bad;
  }
}

TEST(Config, BrokersNameTheAgentsTheyMayIssueFor) {
  auto c = ParseConfig("brokers: {users: [alice], agents: [deploy-bot, \"ci-*\"], agent_groups: [agents]}", "t.yaml");
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->broker_agents, (std::vector<std::string>{"deploy-bot", "ci-*"}));
  EXPECT_EQ(c->broker_agent_groups, std::vector<std::string>{"agents"});
  EXPECT_FALSE(ParseConfig("brokers: {users: [alice], agents: [\"*\"]}", "t.yaml"));
  EXPECT_FALSE(ParseConfig("brokers: {users: [alice], agents: [\"system:admin\"]}", "t.yaml"));
}

TEST(Config, InvalidYamlIsAnError) {
  auto c = ParseConfig("listen: [\n", "bad.yaml");
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().message.find("bad.yaml:"), std::string::npos);
}

}  // namespace
}  // namespace kubegate
