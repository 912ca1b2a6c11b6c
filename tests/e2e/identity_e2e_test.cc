// Identities managed at runtime: an identity admin (bootstrapped in the
// config file) registers an agent, issues it a static token, a broker
// issues it a task token, and any user name, the config file's own
// included, is disabled and enabled again; all through the CLI and real
// kubectl against one gateway process that never restarts, each change an
// audit record of who made it.
#include "e2e_env.h"

namespace e2e {

namespace {

struct IdentityGateway : PolicyGateway {
  IdentityGateway()
      : PolicyGateway("ids", "apiVersion: kubegate.io/v1\nkind: Policy\ndefault: allow\nrules: []\n",
                      "identity_admins: {users: [admin], assignable_groups: [agents, team-*]}\n"
                      "brokers: {users: [alice]}\n") {}
  std::string Ca() const { return (E().dir / "ids-" / "pki" / "ca.crt").string(); }
  // `kubegate ARGS... --kubeconfig` as `user`.
  RunResult Cli(const std::string& user, std::vector<std::string> args) const {
    std::vector<std::string> argv = {std::string(kBuildDir) + "/src/kubegate"};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.push_back("--kubeconfig");
    argv.push_back(Kubeconfig(user));
    Process p(argv);
    int code = p.Finish();
    return {code, p.output()};
  }
  std::string KubeconfigWithToken(const std::string& name, const std::string& user, const std::string& token) const {
    std::string kc = (E().dir / ("ids-" + name + ".kubeconfig")).string();
    Process mk({std::string(kBuildDir) + "/src/kubegate", "kubeconfig", "--user", user, "--server", url, "--ca-file",
                Ca(), "--token-file", WriteFile("ids-" + name + ".token", token), "-o", kc});
    EXPECT_EQ(mk.Finish(), 0) << mk.output();
    return kc;
  }
};

RunResult KubectlWith(const std::string& kc, std::vector<std::string> args, const std::string& version = "1.32") {
  std::vector<std::string> argv = {Kubectl(version), "--kubeconfig", kc};
  argv.insert(argv.end(), args.begin(), args.end());
  Process p(argv);
  int code = p.Finish();
  return {code, p.output()};
}

// Polled, bounded: the watch's request reached the cluster.
bool WatchOpened(const std::string& ns, std::size_t before) {
  for (int i = 0; i < 300; ++i) {
    std::size_t n = 0;
    for (const auto& r : E().Received("/namespaces/" + ns + "/configmaps?")) {
      n += r.value("target", std::string()).find("watch=true") != std::string::npos;
    }
    if (n > before) return true;
    usleep(50 * 1000);
  }
  return false;
}

std::size_t WatchesOf(const std::string& ns) {
  std::size_t n = 0;
  for (const auto& r : E().Received("/namespaces/" + ns + "/configmaps?")) {
    n += r.value("target", std::string()).find("watch=true") != std::string::npos;
  }
  return n;
}

TEST(Identities, AnAdminRegistersIssuesDisablesAndRevokesWithoutARestart) {
  IdentityGateway gw;
  ASSERT_FALSE(gw.url.empty()) << gw.process->output();
  // Only identity admins change identities.
  RunResult refused = gw.Cli("bot", {"identity", "create", "ci-bot"});
  EXPECT_NE(refused.code, 0);
  EXPECT_NE(refused.out.find("may not manage identities"), std::string::npos) << refused.out;
  RunResult made = gw.Cli("admin", {"identity", "create", "ci-bot", "--group", "agents", "--description", "CI"});
  ASSERT_EQ(made.code, 0) << made.out;
  RunResult reserved = gw.Cli("admin", {"identity", "create", "deploy-bot"});
  EXPECT_NE(reserved.code, 0) << "a config-file identity is not registered twice: " << reserved.out;
  RunResult wide = gw.Cli("admin", {"identity", "create", "root-bot", "--group", "system:masters"});
  EXPECT_NE(wide.code, 0) << wide.out;

  // A static token for it: real kubectl acts as ci-bot.
  RunResult issued = gw.Cli("admin", {"token", "create", "--identity", "ci-bot", "--ttl", "30d"});
  ASSERT_EQ(issued.code, 0) << issued.out;
  json tok = json::parse(issued.out, nullptr, false);
  ASSERT_TRUE(tok.is_object()) << issued.out;
  const std::string static_id = tok["credential"]["id"];
  std::string kc = gw.KubeconfigWithToken("ci-bot", "ci-bot", tok["token"]);
  RunResult got = KubectlWith(kc, {"get", "configmaps", "-n", "ids-ns"});
  ASSERT_EQ(got.code, 0) << got.out;
  auto seen = E().Received("/namespaces/ids-ns/configmaps");
  ASSERT_FALSE(seen.empty());
  const json& h = seen.back()["headers"];
  EXPECT_EQ(h["Impersonate-User"][0], "ci-bot");
  EXPECT_EQ(h["Impersonate-Group"], json({"agents"}));
  std::string request_id = h["Impersonate-Extra-Kubegate-Request-Id"][0];
  Process show({std::string(kBuildDir) + "/src/kubegate", "audit", "show", request_id, "-o", "json", "--config",
                gw.Config()});
  show.Finish();
  json rec = json::parse(show.output(), nullptr, false);
  ASSERT_TRUE(rec.is_object()) << show.output();
  EXPECT_EQ(rec["decision"]["identity"]["kind"], "agent");
  EXPECT_EQ(rec["decision"]["identity"]["credential_id"], static_id);

  // A broker issues task tokens for the registered agent, with its groups.
  RunResult task = gw.Cli("alice", {"agent", "token", "--agent", "ci-bot", "--task", "T-ids"});
  ASSERT_EQ(task.code, 0) << task.out;
  std::string task_kc = gw.KubeconfigWithToken("ci-bot-task", "ci-bot", json::parse(task.out)["token"]);
  ASSERT_EQ(KubectlWith(task_kc, {"get", "configmaps", "-n", "ids-ns"}).code, 0);
  RunResult stranger = gw.Cli("alice", {"agent", "token", "--agent", "nobody", "--task", "T-ids"});
  EXPECT_NE(stranger.code, 0) << "neither registered nor allowed by brokers.agents: " << stranger.out;

  // Disabling a config-file user ends its open watch and refuses it, with
  // the reason; enabling it lets it act again.
  std::size_t before = WatchesOf("ids-bot");
  Process bot_watch({Kubectl("1.32"), "--kubeconfig", gw.Kubeconfig("bot"), "get", "configmaps", "-n", "ids-bot", "-w"});
  ASSERT_TRUE(WatchOpened("ids-bot", before)) << bot_watch.output();
  // (The suite's "bot" token is the config file's user deploy-bot.)
  ASSERT_EQ(gw.Cli("admin", {"identity", "disable", "deploy-bot", "--reason", "token leaked"}).code, 0);
  bot_watch.Finish();  // ends: bounded by the test's timeout, not a sleep
  RunResult bot = gw.Run("bot", {"get", "configmaps", "-n", "ids-bot"});
  EXPECT_NE(bot.code, 0);
  EXPECT_NE(bot.out.find("disabled by admin: token leaked"), std::string::npos) << bot.out;
  Process watch_record({std::string(kBuildDir) + "/src/kubegate", "audit", "--config", gw.Config(), "--user",
                        "deploy-bot", "-o", "jsonl"});
  watch_record.Finish();
  EXPECT_NE(watch_record.output().find("the streamed answer was ended by kubegate: user \\\"deploy-bot\\\" was "
                                       "disabled by admin: token leaked"),
            std::string::npos)
      << watch_record.output();
  ASSERT_EQ(gw.Cli("admin", {"identity", "enable", "deploy-bot"}).code, 0);
  EXPECT_EQ(gw.Run("bot", {"get", "configmaps", "-n", "ids-bot"}).code, 0);

  // Disabling the registered agent refuses both of its tokens.
  ASSERT_EQ(gw.Cli("admin", {"identity", "disable", "ci-bot", "--reason", "incident 42"}).code, 0);
  for (const std::string& k : {kc, task_kc}) {
    RunResult r = KubectlWith(k, {"get", "configmaps", "-n", "ids-ns"}, "1.29");
    EXPECT_NE(r.code, 0);
    EXPECT_NE(r.out.find("incident 42"), std::string::npos) << r.out;
  }
  RunResult listed = gw.Cli("admin", {"identity", "list"});
  ASSERT_EQ(listed.code, 0) << listed.out;
  EXPECT_NE(listed.out.find("\"disabled_reason\":\"incident 42\""), std::string::npos) << listed.out;
  ASSERT_EQ(gw.Cli("admin", {"identity", "enable", "ci-bot"}).code, 0);
  ASSERT_EQ(KubectlWith(kc, {"get", "configmaps", "-n", "ids-ns"}).code, 0);
  // Revoking the static token ends it for good.
  ASSERT_EQ(gw.Cli("admin", {"token", "revoke", static_id, "--reason", "rotated"}).code, 0);
  EXPECT_NE(KubectlWith(kc, {"get", "configmaps", "-n", "ids-ns"}).code, 0);
  RunResult tokens = gw.Cli("admin", {"token", "list", "--all"});
  EXPECT_NE(tokens.out.find(static_id), std::string::npos) << tokens.out;
  EXPECT_EQ(tokens.out.find(tok["token"].get<std::string>()), std::string::npos) << "never the token";

  // Every change is an audit record naming who made it.
  Process changes({std::string(kBuildDir) + "/src/kubegate", "audit", "--config", gw.Config(), "--user", "admin",
                   "-o", "jsonl"});
  changes.Finish();
  for (const char* action : {"create-identity", "issue-token", "disable-identity", "enable-identity", "revoke-token"}) {
    EXPECT_NE(changes.output().find(std::string("\"action\":\"") + action + "\""), std::string::npos)
        << action << "\n" << changes.output();
  }
  EXPECT_NE(gw.process->output().find("kubegate listening"), std::string::npos);
}

}  // namespace
}  // namespace e2e
