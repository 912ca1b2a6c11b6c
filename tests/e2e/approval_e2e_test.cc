// End-to-end approvals: real kubectl held at the gateway until a person
// approves with `kubectl gate` (the plugin shipped in tools/), denials and
// answer-at-once rules, kubectl's exec retry making one request, grants
// ending exec sessions, and the audit record of it all.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <set>

#include "e2e_env.h"

namespace e2e {
namespace {

const char* kPolicy = R"(apiVersion: kubegate.io/v1
kind: Policy
default: allow
rules:
  - name: no-impersonation
    match: {impersonation: true}
    action: deny
  - name: namespace-deletes
    match: {verbs: [delete], resources: [namespaces]}
    action: review
    review:
      approvers: {groups: [ops], users: [admin]}
      approvals: 1
      maxWait: 2m
      mode: hold
  - name: secret-reads
    match: {verbs: [get], resources: [secrets]}
    action: review
    review:
      approvers: {groups: [ops]}
      maxWait: 5m
      mode: answer
  - name: exec-answer
    match: {resources: [pods/exec], namespaces: [default], names: ["gated-*"]}
    action: review
    review:
      approvers: {groups: [ops]}
      maxWait: 5m
      maxGrant: 1h
      mode: answer
  - name: record-configmap-bodies
    match: {kinds: [human], verbs: [create], resources: [configmaps, secrets]}
    action: allow
    audit: {requestBodies: true}
  - name: agents-no-configmap-writes
    match: {kinds: [agent], verbs: [create, update, patch, delete], resources: [configmaps]}
    action: deny
    message: "agents may not change configmaps"
)";

// The upstream received the request itself (a server-side dry run made for
// approvers does not count).
bool UpstreamSaw(const std::string& method, const std::string& target_part) {
  for (const auto& r : E().Received(target_part)) {
    if (r["method"] == method && r["target"].get<std::string>().find("dryRun=All") == std::string::npos) return true;
  }
  return false;
}

// The README walkthrough: an agent's `kubectl delete ns` waits at the
// gateway; a person approves it from another terminal; it completes; the
// audit record answers every reviewer question.
TEST(Approvals, HeldDeleteCompletesAfterAPersonApproves) {
  PolicyGateway gw("walk", kPolicy);
  ASSERT_FALSE(gw.url.empty()) << gw.process->output();
  ASSERT_EQ(gw.Run("alice", {"create", "namespace", "walkdemo"}).code, 0);
  auto del = gw.Start("bot", {"delete", "namespace", "walkdemo", "--wait=false"});
  std::string id = gw.WaitPending("delete namespaces \"walkdemo\"");
  ASSERT_FALSE(id.empty()) << del->output() << gw.process->output().substr(gw.process->output().size() > 3000 ? gw.process->output().size() - 3000 : 0);
  // Only the server-side dry run reached the cluster, as the caller.
  for (const auto& r : E().Received("/api/v1/namespaces/walkdemo")) {
    if (r["method"] != "DELETE") continue;
    EXPECT_NE(r["target"].get<std::string>().find("dryRun=All"), std::string::npos) << "forwarded before approval";
    EXPECT_EQ(r["headers"]["Impersonate-User"][0], "deploy-bot");
  }
  RunResult shown = gw.Gate("alice", {"show", id});
  EXPECT_EQ(shown.code, 0) << shown.out;
  for (const char* want : {"deploy-bot (an agent", "kubectl delete", "delete namespaces \"walkdemo\"", "namespace-deletes",
                           "the caller is held and waiting", "body:     {\"propagationPolicy\":\"Background\"}",
                           "dry run:  would succeed (HTTP 200, Namespace walkdemo)"}) {
    EXPECT_NE(shown.out.find(want), std::string::npos) << want << "\n" << shown.out;
  }
  // The requester cannot approve for itself; an outsider is not an approver.
  RunResult self = gw.Gate("bot", {"approve", id});
  EXPECT_NE(self.code, 0);
  EXPECT_NE(self.out.find("not an approver"), std::string::npos) << self.out;
  RunResult ok = gw.Gate("alice", {"approve", id, "--reason", "cleanup after the demo"});
  ASSERT_EQ(ok.code, 0) << ok.out;
  EXPECT_NE(ok.out.find("approved by alice"), std::string::npos) << ok.out;
  EXPECT_EQ(del->Finish(), 0) << del->output();
  EXPECT_NE(del->output().find("namespace \"walkdemo\" deleted"), std::string::npos) << del->output();
  // Forwarded exactly once, carrying the held request's id.
  int deletes = 0;
  for (const auto& r : E().Received("/api/v1/namespaces/walkdemo")) {
    if (r["method"] != "DELETE" || r["target"].get<std::string>().find("dryRun") != std::string::npos) continue;
    deletes++;
    EXPECT_EQ(r["headers"]["Impersonate-Extra-Kubegate-Request-Id"][0], id);
    EXPECT_EQ(r["headers"]["Impersonate-User"][0], "deploy-bot");
  }
  EXPECT_EQ(deletes, 1);
  RunResult twice = gw.Gate("admin", {"approve", id});
  EXPECT_NE(twice.code, 0);
  EXPECT_NE(twice.out.find("already approved"), std::string::npos) << twice.out;

  Process show({std::string(kBuildDir) + "/src/kubegate", "audit", "show", id, "--config", gw.Config()});
  ASSERT_EQ(show.Finish(), 0) << show.output();
  for (const char* want : {"deploy-bot (an agent", "kubectl command: kubectl delete", "Yes. Rule \"policy:namespace-deletes\"",
                           "Approved by alice", "cleanup after the demo", "Scope:", "stayed inside", "HTTP status 200"}) {
    EXPECT_NE(show.output().find(want), std::string::npos) << want << "\n" << show.output();
  }
  Process verify({std::string(kBuildDir) + "/src/kubegate", "audit", "verify", "--config", gw.Config()});
  EXPECT_EQ(verify.Finish(), 0) << verify.output();
}

// A namespaceSelector rule: kubegate reads the namespace's labels from the
// API server with its own credential and decides by them.
TEST(Approvals, NamespaceLabelsDecideSelectorRules) {
  std::string policy = std::string(kPolicy) + R"(  - name: locked-namespaces
    match:
      verbs: [delete]
      resources: [configmaps]
      namespaceSelector:
        matchExpressions: [{key: kubegate-e2e/locked, operator: In, values: ["true", "yes"]}]
    action: deny
    message: "this namespace is locked"
)";
  PolicyGateway gw("nslabels", policy);
  ASSERT_FALSE(gw.url.empty()) << gw.process->output();
  for (const char* ns : {"vault-1", "open-1"}) {
    ASSERT_EQ(gw.Run("alice", {"create", "namespace", ns}).code, 0);
    ASSERT_EQ(gw.Run("alice", {"create", "configmap", "c", "--from-literal=a=b", "-n", ns}).code, 0);
  }
  RunResult label = gw.Run("alice", {"label", "namespace", "vault-1", "kubegate-e2e/locked=true"});
  ASSERT_EQ(label.code, 0) << label.out;
  RunResult locked = gw.Run("alice", {"delete", "configmap", "c", "-n", "vault-1"}, "1.29");
  EXPECT_NE(locked.code, 0);
  EXPECT_NE(locked.out.find("this namespace is locked"), std::string::npos) << locked.out;
  EXPECT_FALSE(UpstreamSaw("DELETE", "/api/v1/namespaces/vault-1/configmaps/c"));
  // The record says which labels decided.
  Process denied({std::string(kBuildDir) + "/src/kubegate", "audit", "--config", gw.Config(), "--decision", "deny",
                  "--namespace", "vault-1", "-o", "jsonl"});
  ASSERT_EQ(denied.Finish(), 0) << denied.output();
  EXPECT_NE(denied.output().find(R"("namespace_labels":{"kubegate-e2e/locked":"true")"), std::string::npos)
      << denied.output();
  RunResult open = gw.Run("alice", {"delete", "configmap", "c", "-n", "open-1"});
  EXPECT_EQ(open.code, 0) << open.out;
  // The labels were read with kubegate's own credential, not as the caller.
  bool looked_up = false;
  for (const auto& r : E().Received("/api/v1/namespaces/vault-1")) {
    if (r["method"] != "GET" || r["target"] != "/api/v1/namespaces/vault-1") continue;
    if (r["headers"].contains("Impersonate-User")) continue;  // kubectl's own reads
    looked_up = true;
  }
  EXPECT_TRUE(looked_up);
  // Reads are decided before the selector rule: they need no lookup.
  std::size_t lookups_before = E().Received("/api/v1/namespaces/open-1").size();
  ASSERT_EQ(gw.Run("alice", {"get", "configmaps", "-n", "open-1"}).code, 0);
  std::size_t lookups_after = 0;
  for (const auto& r : E().Received("/api/v1/namespaces/open-1")) {
    lookups_after += r["target"] == "/api/v1/namespaces/open-1" && !r["headers"].contains("Impersonate-User");
  }
  EXPECT_EQ(lookups_after, 1u) << "one lookup (the delete's), cached or not needed since; " << lookups_before;
}

TEST(Approvals, DeniedHeldRequestGetsA403NamingDeciderAndReason) {
  PolicyGateway gw("deny", kPolicy);
  ASSERT_FALSE(gw.url.empty()) << gw.process->output();
  ASSERT_EQ(gw.Run("alice", {"create", "namespace", "keepme"}).code, 0);
  auto del = gw.Start("bot", {"delete", "namespace", "keepme"}, "1.29");
  std::string id = gw.WaitPending("\"keepme\"");
  ASSERT_FALSE(id.empty()) << del->output();
  // Decided through kubegate's own CLI this time, with alice's kubeconfig.
  Process show({std::string(kBuildDir) + "/src/kubegate", "approvals", "show", id, "--kubeconfig", gw.Kubeconfig("alice")});
  EXPECT_EQ(show.Finish(), 0) << show.output();
  EXPECT_NE(show.output().find("delete namespaces \"keepme\""), std::string::npos) << show.output();
  Process no({std::string(kBuildDir) + "/src/kubegate", "approvals", "deny", id, "--reason", "still in use",
              "--kubeconfig", gw.Kubeconfig("alice")});
  ASSERT_EQ(no.Finish(), 0) << no.output();
  EXPECT_NE(del->Finish(), 0);
  EXPECT_NE(del->output().find(id + " was denied by alice: still in use"), std::string::npos) << del->output();
  EXPECT_FALSE(UpstreamSaw("DELETE", "/api/v1/namespaces/keepme"));
  RunResult late = gw.Gate("admin", {"approve", id});
  EXPECT_NE(late.code, 0);
  EXPECT_NE(late.out.find("already denied by alice"), std::string::npos) << late.out;
}

TEST(Approvals, AnswerAtOnceThenReRunPassesUnderTheGrant) {
  PolicyGateway gw("answer", kPolicy);
  ASSERT_FALSE(gw.url.empty()) << gw.process->output();
  ASSERT_EQ(gw.Run("alice", {"create", "secret", "generic", "db-pass", "--from-literal=p=x"}).code, 0);
  RunResult first = gw.Run("bot", {"get", "secret", "db-pass"});
  ASSERT_NE(first.code, 0);
  auto at = first.out.find("kubectl gate approve kg-");
  ASSERT_NE(at, std::string::npos) << first.out;
  std::string id = first.out.substr(at + 21, 23);
  EXPECT_NE(first.out.find("needs approval (rule \"secret-reads\")"), std::string::npos) << first.out;
  // Re-running before approval joins the same pending request.
  RunResult again = gw.Run("bot", {"get", "secret", "db-pass"});
  EXPECT_NE(again.out.find(id), std::string::npos) << again.out;
  EXPECT_FALSE(UpstreamSaw("GET", "/api/v1/namespaces/default/secrets/db-pass")) << "read before approval";
  ASSERT_EQ(gw.Gate("alice", {"approve", id}).code, 0);
  RunResult ok = gw.Run("bot", {"get", "secret", "db-pass"});
  EXPECT_EQ(ok.code, 0) << ok.out;
  EXPECT_NE(ok.out.find("db-pass"), std::string::npos) << ok.out;
  // The grant was for that one request: a third read asks again.
  RunResult third = gw.Run("bot", {"get", "secret", "db-pass"});
  EXPECT_NE(third.code, 0) << third.out;
  // A different secret is outside the approved scope.
  RunResult other = gw.Run("bot", {"get", "secret", "other"});
  EXPECT_NE(other.code, 0);
  EXPECT_NE(other.out.find("needs approval"), std::string::npos) << other.out;
}

// kubectl 1.30+ retries a refused WebSocket exec over SPDY with the same
// Kubectl-Session: that must make one approval request, not two.
TEST(Approvals, RefusedExecRetryMakesOneRequestAndTheGrantScopesTheCommand) {
  PolicyGateway gw("execans", kPolicy);
  ASSERT_FALSE(gw.url.empty()) << gw.process->output();
  ASSERT_EQ(gw.Run("alice", {"run", "gated-1", "--image=x", "--restart=Never"}).code, 0);
  RunResult first = gw.Run("bot", {"exec", "gated-1", "--", "echo", "granted"});
  ASSERT_NE(first.code, 0);
  RunResult pending = gw.Gate("alice", {"pending"});
  std::size_t count = 0;
  for (std::size_t at = 0; (at = pending.out.find("exec \"gated-1\"", at)) != std::string::npos; ++at) ++count;
  EXPECT_EQ(count, 1u) << pending.out;
  auto at = first.out.find("kubectl gate approve kg-");
  ASSERT_NE(at, std::string::npos) << first.out;
  std::string id = first.out.substr(at + 21, 23);
  RunResult wide = gw.Gate("alice", {"approve", id, "--for", "2h"});
  EXPECT_NE(wide.code, 0) << "beyond the rule's maxGrant";
  EXPECT_NE(wide.out.find("at most 60 minutes"), std::string::npos) << wide.out;
  ASSERT_EQ(gw.Gate("alice", {"approve", id, "--for", "15m"}).code, 0);
  RunResult ok = gw.Run("bot", {"exec", "gated-1", "--", "echo", "granted"});
  EXPECT_EQ(ok.code, 0) << ok.out;
  EXPECT_NE(ok.out.find("granted"), std::string::npos) << ok.out;
  RunResult again = gw.Run("bot", {"exec", "gated-1", "--", "echo", "granted"}, "1.29");
  EXPECT_EQ(again.code, 0) << "a 15-minute grant covers re-runs, over SPDY too: " << again.out;
  RunResult escape = gw.Run("bot", {"exec", "gated-1", "--", "sh", "-c", "id"});
  EXPECT_NE(escape.code, 0) << "approved `echo`, tried `sh`";
}

TEST(Approvals, PolicyDeniesWithItsMessageAndReloadsWithoutDroppingConnections) {
  PolicyGateway gw("reload", kPolicy);
  ASSERT_FALSE(gw.url.empty()) << gw.process->output();
  // A rule that records bodies: alice's secret is recorded with its value redacted.
  ASSERT_EQ(gw.Run("alice", {"create", "secret", "generic", "recorded", "--from-literal=pw=hunter2"}).code, 0);
  Process bodies({std::string(kBuildDir) + "/src/kubegate", "audit", "--config", gw.Config(), "-o", "jsonl", "--verb",
                  "create", "--resource", "secrets"});
  ASSERT_EQ(bodies.Finish(), 0) << bodies.output();
  EXPECT_NE(bodies.output().find("\"request_body\""), std::string::npos) << bodies.output();
  // kubectl sends Secrets as protobuf: recorded by size and hash only
  // (JSON bodies keep their fields with values redacted: RedactRequestBody.*).
  EXPECT_TRUE(bodies.output().find("<redacted>") != std::string::npos ||
              bodies.output().find("not JSON (application/vnd.kubernetes.protobuf)") != std::string::npos)
      << bodies.output();
  EXPECT_EQ(bodies.output().find("hunter2"), std::string::npos) << "the secret's value reached the audit log";
  EXPECT_EQ(bodies.output().find("aHVudGVyMg"), std::string::npos) << "the secret's value reached the audit log";
  RunResult denied = gw.Run("bot", {"create", "configmap", "c1", "--from-literal=a=b"});
  EXPECT_NE(denied.code, 0);
  EXPECT_NE(denied.out.find("agents may not change configmaps"), std::string::npos) << denied.out;
  // A watch stays open across reloads.
  auto watch = gw.Start("alice", {"get", "pods", "-w"});
  // A broken policy file is refused; the old policy stays.
  WriteFile("reload-policy.yaml", "apiVersion: kubegate.io/v1\nkind: Policy\ndefault: maybe\n");
  gw.process->Signal(SIGHUP);
  ASSERT_TRUE(gw.process->WaitFor("policy reload refused")) << gw.process->output();
  EXPECT_NE(gw.Run("bot", {"create", "configmap", "c2", "--from-literal=a=b"}).code, 0);
  // A valid change takes effect (file watch, no signal).
  std::string relaxed = kPolicy;
  relaxed = relaxed.substr(0, relaxed.find("  - name: agents-no-configmap-writes"));
  WriteFile("reload-policy.yaml", relaxed);
  ASSERT_TRUE(gw.process->WaitFor("policy reloaded")) << gw.process->output();
  RunResult allowed = gw.Run("bot", {"create", "configmap", "c3", "--from-literal=a=b"});
  EXPECT_EQ(allowed.code, 0) << allowed.out;
  ASSERT_EQ(gw.Run("alice", {"run", "reload-pod", "--image=x", "--restart=Never"}).code, 0);
  EXPECT_TRUE(watch->WaitFor("reload-pod")) << "the watch survived both reloads: " << watch->output();
}

TEST(Approvals, HeldRequestWithdrawnWhenTheCallerLeavesAndAbandonedAcrossRestarts) {
  PolicyGateway gw("withdraw", kPolicy);
  ASSERT_FALSE(gw.url.empty()) << gw.process->output();
  ASSERT_EQ(gw.Run("alice", {"create", "namespace", "leaving"}).code, 0);
  auto del = gw.Start("bot", {"delete", "namespace", "leaving"});
  std::string id = gw.WaitPending("\"leaving\"");
  ASSERT_FALSE(id.empty());
  del->SignalGroup(SIGKILL);
  del->Finish();
  RunResult state;
  for (int i = 0; i < 100; ++i) {
    state = gw.Gate("alice", {"show", id});
    if (state.out.find("withdrawn") != std::string::npos) break;
    usleep(50 * 1000);
  }
  EXPECT_NE(state.out.find("withdrawn"), std::string::npos) << state.out;
  RunResult late = gw.Gate("alice", {"approve", id});
  EXPECT_NE(late.code, 0);
  EXPECT_FALSE(UpstreamSaw("DELETE", "/api/v1/namespaces/leaving"));

  // A request held when the gateway dies is abandoned by the next process,
  // and can never run later.
  auto del2 = gw.Start("bot", {"delete", "namespace", "leaving"});
  std::string id2 = gw.WaitPending("\"leaving\"");
  ASSERT_FALSE(id2.empty());
  gw.process->Signal(SIGKILL);
  gw.process->Finish();
  del2->Finish();
  PolicyGateway again("withdraw", kPolicy);
  ASSERT_FALSE(again.url.empty()) << again.process->output();
  RunResult shown = again.Gate("alice", {"show", id2});
  EXPECT_NE(shown.out.find("abandoned"), std::string::npos) << shown.out;
  RunResult approve = again.Gate("alice", {"approve", id2});
  EXPECT_NE(approve.code, 0);
  EXPECT_NE(approve.out.find("already abandoned"), std::string::npos) << approve.out;
  EXPECT_FALSE(UpstreamSaw("DELETE", "/api/v1/namespaces/leaving"));
}

// A session opened under a grant ends when the grant expires; the audit
// result says why.
TEST(Approvals, ExecSessionEndsWhenItsGrantExpires) {
  PolicyGateway gw("expiry", kPolicy);
  ASSERT_FALSE(gw.url.empty()) << gw.process->output();
  ASSERT_EQ(gw.Run("alice", {"run", "gated-2", "--image=x", "--restart=Never"}).code, 0);
  RunResult first = gw.Run("bot", {"exec", "gated-2", "--", "sleep", "30"});
  auto at = first.out.find("kubectl gate approve kg-");
  ASSERT_NE(at, std::string::npos) << first.out;
  std::string id = first.out.substr(at + 21, 23);
  ASSERT_EQ(gw.Gate("alice", {"approve", id, "--for", "3s"}).code, 0);
  auto started = std::chrono::steady_clock::now();
  RunResult session = gw.Run("bot", {"exec", "gated-2", "--", "sleep", "30"});
  auto took = std::chrono::steady_clock::now() - started;
  EXPECT_NE(session.code, 0) << session.out;
  EXPECT_LT(took, std::chrono::seconds(20)) << "the session outlived its grant";
  Process audit({std::string(kBuildDir) + "/src/kubegate", "audit", "--config", gw.Config(), "-o", "jsonl", "--resource",
                 "pods", "--user", "deploy-bot"});
  ASSERT_EQ(audit.Finish(), 0);
  EXPECT_NE(audit.output().find("expired"), std::string::npos) << audit.output();
  EXPECT_NE(audit.output().find("session closed by kubegate: grant gr-"), std::string::npos) << audit.output();
  // The recording notes why the session ended, and who approved it.
  Recorded rec = RecordingOf("/pods/gated-2/exec", gw.Config());
  ASSERT_FALSE(rec.summary.is_null()) << rec.request_id;
  EXPECT_NE(rec.summary.value("ended_by", "").find("grant gr-"), std::string::npos) << rec.summary;
  EXPECT_NE(CastEvents(rec.file, "m").find("expired"), std::string::npos) << rec.file;
  EXPECT_EQ(json::parse(rec.file.substr(0, rec.file.find('\n')))["kubegate"]["approval_id"], id);
}

// A local webhook receiver: accepts HTTP POSTs on a kernel-chosen port,
// answers 200 and keeps the bodies.
class WebhookReceiver {
 public:
  WebhookReceiver() {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    listen(fd_, 16);
    thread_ = std::thread([this] {
      while (true) {
        int c = accept(fd_, nullptr, nullptr);
        if (c < 0) return;
        std::string in;
        char buf[4096];
        ssize_t n;
        std::size_t want = std::string::npos;
        while ((n = read(c, buf, sizeof buf)) > 0) {
          in.append(buf, static_cast<std::size_t>(n));
          auto end = in.find("\r\n\r\n");
          if (end != std::string::npos && want == std::string::npos) {
            auto cl = in.find("Content-Length: ");
            want = end + 4 + (cl == std::string::npos ? 0 : std::stoul(in.substr(cl + 16)));
          }
          if (want != std::string::npos && in.size() >= want) break;
        }
        const char* ok = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        (void)!write(c, ok, strlen(ok));
        close(c);
        std::lock_guard<std::mutex> lk(mu_);
        bodies_.push_back(in.substr(in.find("\r\n\r\n") + 4));
        cv_.notify_all();
      }
    });
  }
  ~WebhookReceiver() {
    shutdown(fd_, SHUT_RDWR);
    close(fd_);
    thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/hook"; }
  // Waits (bounded) for a body containing `needle`.
  bool WaitFor(const std::string& needle) {
    std::unique_lock<std::mutex> lk(mu_);
    return cv_.wait_for(lk, std::chrono::seconds(20), [&] {
      for (const auto& b : bodies_) {
        if (b.find(needle) != std::string::npos) return true;
      }
      return false;
    });
  }

 private:
  int fd_ = -1;
  int port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> bodies_;
};

TEST(Approvals, WebhookHearsOfNewAndDecidedRequests) {
  WebhookReceiver hook;
  PolicyGateway gw("hooked", kPolicy, "approvals: {webhook_url: \"" + hook.url() + "\"}\n");
  ASSERT_FALSE(gw.url.empty()) << gw.process->output();
  ASSERT_EQ(gw.Run("alice", {"create", "namespace", "hooked"}).code, 0);
  auto del = gw.Start("bot", {"delete", "namespace", "hooked"});
  std::string id = gw.WaitPending("\"hooked\"");
  ASSERT_FALSE(id.empty());
  EXPECT_TRUE(hook.WaitFor("\"event\":\"new\"")) << "no notification of the new request";
  EXPECT_TRUE(hook.WaitFor("kubectl gate approve " + id));
  ASSERT_EQ(gw.Gate("alice", {"approve", id}).code, 0);
  EXPECT_TRUE(hook.WaitFor("\"event\":\"approved\""));
  EXPECT_EQ(del->Finish(), 0) << del->output();
}

}  // namespace
}  // namespace e2e
