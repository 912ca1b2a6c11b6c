// Per-task agent tokens: a broker issues one with `kubegate agent token`,
// the agent uses it with real kubectl, the task id travels upstream and
// into the audit record, and `kubegate agent revoke --task` ends it within
// the poll interval on the gateway.
#include "e2e_env.h"

namespace e2e {
namespace {

struct TaskGateway {
  std::unique_ptr<Process> process;
  std::string url;
  std::string Ca() const { return (E().dir / "tasks-" / "pki" / "ca.crt").string(); }
  std::string Config() const { return (E().dir / "tasks.yaml").string(); }
  // A kubeconfig of the suite's caller `user` pointed at this gateway.
  std::string KubeconfigOf(const std::string& user) const {
    std::string out = (E().dir / ("tasks-" + user + ".kubeconfig")).string();
    Process p({std::string(kBuildDir) + "/src/kubegate", "kubeconfig", "--user", user, "--server", url, "--ca-file",
               Ca(), "--token-file", (E().dir / (user + ".token")).string(), "-o", out});
    EXPECT_EQ(p.Finish(), 0) << p.output();
    return out;
  }
  RunResult Agent(const std::string& user, std::vector<std::string> args) const {
    std::vector<std::string> argv = {std::string(kBuildDir) + "/src/kubegate", "agent", "--kubeconfig",
                                     KubeconfigOf(user)};
    argv.insert(argv.end(), args.begin(), args.end());
    Process p(argv);
    int code = p.Finish();
    return {code, p.output()};
  }
  std::string Status(const std::string& token, const std::string& path) const {
    Process p({"/usr/bin/curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", Ca(), "-H",
               "Authorization: Bearer " + token, url + path});
    p.Finish();
    return p.output();
  }
};

TaskGateway& Gateway() {
  static TaskGateway g = [] {
    TaskGateway t;
    auto [p, url] = E().StartGateway("tasks", "brokers: {users: [alice], agents: [deploy-bot, exec-bot], "
                                              "agent_groups: [agents]}\nauditors: {users: [admin]}\n");
    t.process = std::move(p);
    t.url = url;
    return t;
  }();
  return g;
}

TEST(TaskTokens, ABrokerIssuesATaskTokenTheAgentActsUnderItAndRevocationEndsIt) {
  TaskGateway& gw = Gateway();
  ASSERT_FALSE(gw.url.empty()) << gw.process->output();
  // Only brokers issue.
  RunResult refused = gw.Agent("bot", {"token", "--agent", "deploy-bot", "--task", "T-1"});
  EXPECT_EQ(refused.code, 1) << refused.out;
  EXPECT_NE(refused.out.find("may not broker task tokens"), std::string::npos) << refused.out;
  // Brokers issue for the agents the config names, never for a person
  // or a cluster user (the token's identity is impersonated upstream).
  for (const char* name : {"carol", "system:admin", "kubernetes-admin"}) {
    RunResult r = gw.Agent("alice", {"token", "--agent", name, "--task", "T-1"});
    EXPECT_EQ(r.code, 1) << name << ": " << r.out;
    EXPECT_NE(r.out.find("brokers.agents"), std::string::npos) << r.out;
  }
  RunResult issued = gw.Agent("alice", {"token", "--agent", "deploy-bot", "--task", "T-123", "--ttl", "30m",
                                        "--reason", "roll out 1.4"});
  ASSERT_EQ(issued.code, 0) << issued.out;
  json j = json::parse(issued.out, nullptr, false);
  ASSERT_TRUE(j.is_object()) << issued.out;
  std::string token = j["token"];
  std::string credential_id = j["credential"]["id"];
  EXPECT_EQ(j["credential"]["task"], "T-123");
  EXPECT_EQ(j["credential"]["created_by"], "alice");
  // The agent acts with it through real kubectl.
  std::string kc = (E().dir / "task-agent.kubeconfig").string();
  Process mk({std::string(kBuildDir) + "/src/kubegate", "kubeconfig", "--user", "deploy-bot", "--server", gw.url,
              "--ca-file", gw.Ca(), "--token-file", WriteFile("task-agent.token", token), "-o", kc});
  ASSERT_EQ(mk.Finish(), 0) << mk.output();
  Process get({Kubectl("1.32"), "--kubeconfig", kc, "get", "configmaps", "-n", "task-ns"});
  ASSERT_EQ(get.Finish(), 0) << get.output() << gw.process->output();
  auto got = E().Received("/namespaces/task-ns/configmaps");
  ASSERT_FALSE(got.empty());
  const json& h = got.back()["headers"];
  EXPECT_EQ(h["Impersonate-User"][0], "deploy-bot");
  EXPECT_EQ(h["Impersonate-Extra-Kubegate-Task"][0], "T-123");
  EXPECT_EQ(h["Impersonate-Extra-Kubegate-Auth-Method"][0], "task-token");
  EXPECT_EQ(h["Impersonate-Group"], json({"agents"}));  // brokers.agent_groups, nothing the broker chose
  // An agent does not hand out access: its task token cannot issue more.
  Process more({"/usr/bin/curl", "-s", "-w", "\n%{http_code}", "--cacert", gw.Ca(), "-H", "Authorization: Bearer " + token,
                "-X", "POST", "--data-binary", R"({"agent":"deploy-bot","task":"T-124"})", gw.url + "/kubegate/v1/tasks/tokens"});
  more.Finish();
  EXPECT_EQ(more.output().substr(more.output().rfind('\n') + 1), "403") << more.output();
  // The record names the task and the credential.
  std::string id = h["Impersonate-Extra-Kubegate-Request-Id"][0];
  Process show({std::string(kBuildDir) + "/src/kubegate", "audit", "show", id, "-o", "json", "--config", gw.Config()});
  show.Finish();
  json rec = json::parse(show.output(), nullptr, false);
  ASSERT_TRUE(rec.is_object()) << show.output();
  EXPECT_EQ(rec["decision"]["identity"]["task"], "T-123");
  EXPECT_EQ(rec["decision"]["identity"]["credential_id"], credential_id);
  EXPECT_EQ(rec["decision"]["identity"]["kind"], "agent");
  // Everything the task did, in one question.
  Process by_task({std::string(kBuildDir) + "/src/kubegate", "audit", "--config", gw.Config(), "--task", "T-123",
                   "-o", "jsonl"});
  by_task.Finish();
  EXPECT_NE(by_task.output().find(id), std::string::npos) << by_task.output();
  EXPECT_EQ(by_task.output().find("\"task\":\"T-999\""), std::string::npos);
  // The listing shows it, never the token.
  RunResult list = gw.Agent("admin", {"list"});
  EXPECT_EQ(list.code, 0) << list.out;
  EXPECT_NE(list.out.find(credential_id), std::string::npos);
  EXPECT_EQ(list.out.find(token), std::string::npos);
  // Revoked: refused from the next poll on (every 250 ms), polled, bounded.
  RunResult revoked = gw.Agent("alice", {"revoke", "--task", "T-123", "--reason", "done"});
  ASSERT_EQ(revoked.code, 0) << revoked.out;
  EXPECT_EQ(json::parse(revoked.out)["revoked"], 1);
  auto start = std::chrono::steady_clock::now();
  std::string status;
  while ((status = gw.Status(token, "/api/v1/namespaces/task-ns/configmaps")) == "200" &&
         std::chrono::steady_clock::now() - start < std::chrono::seconds(10)) {
  }
  EXPECT_EQ(status, "401");
  std::cout << "revoked token refused after "
            << std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count()
            << " ms\n";
  // Both changes are audit records naming who made them.
  Process changes({std::string(kBuildDir) + "/src/kubegate", "audit", "--config", gw.Config(), "--user", "alice",
                   "-o", "jsonl"});
  changes.Finish();
  std::string log = changes.output();
  EXPECT_NE(log.find("\"action\":\"issue-task-token\""), std::string::npos) << log;
  EXPECT_NE(log.find("\"action\":\"revoke-task\""), std::string::npos) << log;
  EXPECT_EQ(log.find(token), std::string::npos) << "the token was recorded";
}

TEST(TaskTokens, RevokingATaskClosesTheStreamsOpenedUnderIt) {
  TaskGateway& gw = Gateway();
  ASSERT_FALSE(gw.url.empty()) << gw.process->output();
  Process run({Kubectl("1.32"), "--kubeconfig", gw.KubeconfigOf("alice"), "run", "task-pod", "--image=x",
               "--restart=Never"});
  ASSERT_EQ(run.Finish(), 0) << run.output();
  RunResult issued = gw.Agent("alice", {"token", "--agent", "exec-bot", "--task", "T-exec", "--ttl", "10m"});
  ASSERT_EQ(issued.code, 0) << issued.out;
  std::string token = json::parse(issued.out)["token"];
  std::string kc = (E().dir / "task-exec.kubeconfig").string();
  Process mk({std::string(kBuildDir) + "/src/kubegate", "kubeconfig", "--user", "exec-bot", "--server", gw.url,
              "--ca-file", gw.Ca(), "--token-file", WriteFile("task-exec.token", token), "-o", kc});
  ASSERT_EQ(mk.Finish(), 0) << mk.output();
  std::size_t before = E().Received("/pods/task-pod/exec").size();
  // Both transports: kubectl 1.32 over WebSocket, 1.29 over SPDY.
  Process ws({Kubectl("1.32"), "--kubeconfig", kc, "exec", "task-pod", "--", "sleep", "60"});
  Process spdy({Kubectl("1.29"), "--kubeconfig", kc, "exec", "task-pod", "--", "sleep", "60"});
  // Both sessions reached the cluster: polled, bounded.
  for (int i = 0; i < 300 && E().Received("/pods/task-pod/exec").size() < before + 2; ++i) usleep(50 * 1000);
  ASSERT_EQ(E().Received("/pods/task-pod/exec").size(), before + 2);
  RunResult revoked = gw.Agent("alice", {"revoke", "--task", "T-exec", "--reason", "task cancelled"});
  ASSERT_EQ(revoked.code, 0) << revoked.out;
  for (Process* p : {&ws, &spdy}) {
    EXPECT_NE(p->Finish(), 0) << p->output();
    EXPECT_NE(p->output().find("task token for task T-exec"), std::string::npos) << p->output();
  }
  // The result records say why the sessions ended.
  Process audit({std::string(kBuildDir) + "/src/kubegate", "audit", "--config", gw.Config(), "--task", "T-exec",
                 "-o", "jsonl"});
  ASSERT_EQ(audit.Finish(), 0);
  EXPECT_NE(audit.output().find("was revoked or expired"), std::string::npos) << audit.output();
}


// Revoked while kubectl 1.29 is still opening its SPDY streams (a kubelet
// that answers the first n and then hangs): kubectl waits for a reply to
// each stream before it reads any, so a session cut there used to leave it
// waiting 30 s and printing "Timeout occurred". kubegate answers the
// streams itself, then tells it why, whether the server had started its
// header compression (stalled-1) or not (stalled-0).
TEST(TaskTokens, RevokingATaskWhileKubectlOpensItsStreamsTellsKubectlWhy) {
  TaskGateway& gw = Gateway();
  ASSERT_FALSE(gw.url.empty()) << gw.process->output();
  const std::vector<std::string> pods = {"stalled-0-pod", "stalled-1-pod"};
  for (const auto& pod : pods) {
    Process run({Kubectl("1.32"), "--kubeconfig", gw.KubeconfigOf("alice"), "run", pod, "--image=x",
                 "--restart=Never"});
    ASSERT_EQ(run.Finish(), 0) << run.output();
  }
  RunResult issued = gw.Agent("alice", {"token", "--agent", "exec-bot", "--task", "T-stalled", "--ttl", "10m"});
  ASSERT_EQ(issued.code, 0) << issued.out;
  std::string kc = (E().dir / "task-stalled.kubeconfig").string();
  Process mk({std::string(kBuildDir) + "/src/kubegate", "kubeconfig", "--user", "exec-bot", "--server", gw.url,
              "--ca-file", gw.Ca(), "--token-file",
              WriteFile("task-stalled.token", json::parse(issued.out)["token"].get<std::string>()), "-o", kc});
  ASSERT_EQ(mk.Finish(), 0) << mk.output();
  std::vector<std::unique_ptr<Process>> execs;
  for (const auto& pod : pods) {
    std::size_t before = E().Received("/pods/" + pod + "/exec").size();
    execs.push_back(std::make_unique<Process>(
        std::vector<std::string>{Kubectl("1.29"), "--kubeconfig", kc, "exec", pod, "--", "sleep", "60"}));
    // The session reached the cluster: polled, bounded.
    for (int i = 0; i < 300 && E().Received("/pods/" + pod + "/exec").size() < before + 1; ++i) usleep(50 * 1000);
    ASSERT_EQ(E().Received("/pods/" + pod + "/exec").size(), before + 1);
  }
  RunResult revoked = gw.Agent("alice", {"revoke", "--task", "T-stalled", "--reason", "task cancelled"});
  ASSERT_EQ(revoked.code, 0) << revoked.out;
  for (auto& p : execs) {
    EXPECT_NE(p->Finish(), 0) << p->output();
    EXPECT_NE(p->output().find("task token for task T-stalled"), std::string::npos) << p->output();
    EXPECT_EQ(p->output().find("Timeout occurred"), std::string::npos) << p->output();
  }
}


// Held for approval under a task token: the approval covers the credential
// the approver saw. A task revoked while its request waits forwards
// nothing, whichever comes first at the gateway.
const char* kHeldTaskPolicy = R"(apiVersion: kubegate.io/v1
kind: Policy
default: allow
rules:
  - name: namespace-deletes
    match: {verbs: [delete], resources: [namespaces]}
    action: review
    review: {approvers: {groups: [ops], users: [admin]}, approvals: 1, maxWait: 2m, mode: hold}
  - name: held-execs
    match: {resources: [pods/exec], names: ["held-*"]}
    action: review
    review: {approvers: {groups: [ops], users: [admin]}, maxWait: 2m, maxGrant: 1h, mode: hold}
)";

struct HeldTaskGateway : PolicyGateway {
  HeldTaskGateway()
      : PolicyGateway("heldtask", kHeldTaskPolicy,
                      "brokers: {users: [alice], agents: [deploy-bot], agent_groups: [agents]}\n") {}
  std::string Ca() const { return (E().dir / "heldtask-" / "pki" / "ca.crt").string(); }
  RunResult Agent(std::vector<std::string> args) const {
    std::vector<std::string> argv = {std::string(kBuildDir) + "/src/kubegate", "agent", "--kubeconfig",
                                     Kubeconfig("alice")};
    argv.insert(argv.end(), args.begin(), args.end());
    Process p(argv);
    int code = p.Finish();
    return {code, p.output()};
  }
  // A kubeconfig of a fresh task token for deploy-bot.
  std::string TaskKubeconfig(const std::string& task) const {
    RunResult issued = Agent({"token", "--agent", "deploy-bot", "--task", task, "--ttl", "10m"});
    EXPECT_EQ(issued.code, 0) << issued.out;
    json j = json::parse(issued.out, nullptr, false);
    if (!j.is_object()) return "";
    std::string kc = (E().dir / ("heldtask-" + task + ".kubeconfig")).string();
    Process mk({std::string(kBuildDir) + "/src/kubegate", "kubeconfig", "--user", "deploy-bot", "--server", url,
                "--ca-file", Ca(), "--token-file", WriteFile("heldtask-" + task + ".token", j["token"]), "-o", kc});
    EXPECT_EQ(mk.Finish(), 0) << mk.output();
    return kc;
  }
};

bool UpstreamDeleted(const std::string& target) {
  for (const auto& r : E().Received(target)) {
    if (r["method"] == "DELETE" && !ReadsAsDryRun(r)) return true;
  }
  return false;
}

TEST(TaskTokens, ARequestHeldUnderARevokedTaskIsNeverForwarded) {
  HeldTaskGateway gw;
  ASSERT_FALSE(gw.url.empty()) << gw.process->output();
  for (const char* ns : {"held-task-a", "held-task-b"}) {
    ASSERT_EQ(gw.Run("alice", {"create", "namespace", ns}).code, 0);
  }
  // Revoked while held: the agent is told why, the approval is withdrawn
  // and can never run later.
  std::string kc = gw.TaskKubeconfig("T-held");
  ASSERT_FALSE(kc.empty());
  Process del({Kubectl("1.32"), "--kubeconfig", kc, "delete", "namespace", "held-task-a"});
  std::string id = gw.WaitPending("\"held-task-a\"");
  ASSERT_FALSE(id.empty()) << del.output();
  RunResult shown = gw.Gate("admin", {"show", id});
  EXPECT_NE(shown.out.find("T-held"), std::string::npos) << "the approver sees the task: " << shown.out;
  ASSERT_EQ(gw.Agent({"revoke", "--task", "T-held"}).code, 0);
  EXPECT_NE(del.Finish(), 0) << del.output();
  EXPECT_NE(del.output().find("task token for task T-held"), std::string::npos) << del.output();
  EXPECT_NE(del.output().find("nothing was done"), std::string::npos) << del.output();
  RunResult state = gw.Gate("admin", {"show", id});
  EXPECT_NE(state.out.find("withdrawn"), std::string::npos) << state.out;
  EXPECT_NE(gw.Gate("admin", {"approve", id}).code, 0) << "a withdrawn request cannot be approved";
  EXPECT_FALSE(UpstreamDeleted("/api/v1/namespaces/held-task-a"));

  // Revoked and approved in the same instant: the release reads the store,
  // so the approval that wins the race still forwards nothing.
  std::string kc2 = gw.TaskKubeconfig("T-race");
  Process del2({Kubectl("1.32"), "--kubeconfig", kc2, "delete", "namespace", "held-task-b"});
  std::string id2 = gw.WaitPending("\"held-task-b\"");
  ASSERT_FALSE(id2.empty()) << del2.output();
  ASSERT_EQ(gw.Agent({"revoke", "--task", "T-race"}).code, 0);
  (void)gw.Gate("admin", {"approve", id2});  // may come first or find it withdrawn
  EXPECT_NE(del2.Finish(), 0) << del2.output();
  EXPECT_NE(del2.output().find("task token for task T-race"), std::string::npos) << del2.output();
  EXPECT_FALSE(UpstreamDeleted("/api/v1/namespaces/held-task-b"));
  // The audit answers what the task did: asked, held, nothing forwarded.
  Process audit({std::string(kBuildDir) + "/src/kubegate", "audit", "--config", gw.Config(), "--task", "T-race",
                 "-o", "jsonl"});
  ASSERT_EQ(audit.Finish(), 0);
  EXPECT_NE(audit.output().find(id2), std::string::npos) << audit.output();
  EXPECT_NE(audit.output().find("\"status\":401"), std::string::npos) << audit.output();
}

// The issue's case: an exec held for approval, approved for the task, then
// the task revoked mid-session; and a watch opened under a task token.
TEST(TaskTokens, AnApprovedExecAndAWatchEndWhenTheirTaskIsRevoked) {
  HeldTaskGateway gw;
  ASSERT_FALSE(gw.url.empty()) << gw.process->output();
  ASSERT_EQ(gw.Run("alice", {"run", "held-exec", "--image=x", "--restart=Never"}).code, 0);
  std::string kc = gw.TaskKubeconfig("T-session");
  ASSERT_FALSE(kc.empty());
  Process exec({Kubectl("1.32"), "--kubeconfig", kc, "exec", "held-exec", "--", "sleep", "60"});
  std::string id = gw.WaitPending("held-exec");
  ASSERT_FALSE(id.empty()) << exec.output();
  std::size_t before = E().Received("/pods/held-exec/exec").size();
  ASSERT_EQ(gw.Gate("admin", {"approve", id, "--for", "15m"}).code, 0);
  for (int i = 0; i < 300 && E().Received("/pods/held-exec/exec").size() <= before; ++i) usleep(50 * 1000);
  ASSERT_GT(E().Received("/pods/held-exec/exec").size(), before) << "the approved session started";
  // A watch under the same task.
  Process watch({Kubectl("1.32"), "--kubeconfig", kc, "get", "configmaps", "-n", "held-watch", "-w"});
  for (int i = 0; i < 300 && E().Received("/namespaces/held-watch/configmaps?").size() < 2; ++i) usleep(50 * 1000);
  ASSERT_EQ(gw.Agent({"revoke", "--task", "T-session"}).code, 0);
  EXPECT_NE(exec.Finish(), 0) << exec.output();
  EXPECT_NE(exec.output().find("task token for task T-session"), std::string::npos) << exec.output();
  watch.Finish();  // it ends: the stream was cut
  Process audit({std::string(kBuildDir) + "/src/kubegate", "audit", "--config", gw.Config(), "--task", "T-session",
                 "-o", "jsonl"});
  ASSERT_EQ(audit.Finish(), 0);
  std::string log = audit.output();
  EXPECT_NE(log.find("\"approval\""), std::string::npos) << "the exec's record carries its approval: " << log;
  EXPECT_NE(log.find("was revoked or expired"), std::string::npos) << log;
  EXPECT_NE(log.find("the streamed answer was ended by kubegate"), std::string::npos) << log;
}

}  // namespace
}  // namespace e2e
