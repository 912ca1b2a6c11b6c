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

RunResult Curl(const PolicyGateway& gw, const std::string& user, const std::string& method, const std::string& path,
               const std::string& body = "", const std::string& content_type = "application/json");

// The upstream received the request itself (a server-side dry run made for
// approvers does not count).
bool UpstreamSaw(const std::string& method, const std::string& target_part) {
  for (const auto& r : E().Received(target_part)) {
    if (r["method"] == method && !ReadsAsDryRun(r)) return true;
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
    EXPECT_TRUE(ReadsAsDryRun(r)) << "forwarded before approval: " << r.dump();
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
    if (r["method"] != "DELETE" || ReadsAsDryRun(r)) continue;
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
  // A namespace written through kubegate is read again at the next
  // decision, not after the cache's 10 s.
  ASSERT_EQ(gw.Run("alice", {"label", "namespace", "vault-1", "kubegate-e2e/locked=no", "--overwrite"}).code, 0);
  RunResult unlocked = gw.Run("alice", {"delete", "configmap", "c", "-n", "vault-1"});
  EXPECT_EQ(unlocked.code, 0) << "labels read before the change still decided: " << unlocked.out;
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
  std::string id = RequestIdAt(first.out, at + 21);
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
  std::string id = RequestIdAt(first.out, at + 21);
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
  // Widening is explicit, through the plugin, and its last (here only)
  // item counts: the plugin once dropped it and the grant stayed exact.
  ASSERT_EQ(gw.Run("alice", {"run", "gated-3", "--image=x", "--restart=Never"}).code, 0);
  RunResult ask = gw.Run("bot", {"exec", "gated-3", "--", "echo", "one"});
  ASSERT_NE(ask.code, 0);
  std::string id2 = RequestIdAt(ask.out, ask.out.find("kubectl gate approve kg-") + 21);
  RunResult unknown = gw.Gate("alice", {"approve", id2, "--scope", "any-commnd"});
  EXPECT_NE(unknown.code, 0);
  EXPECT_NE(unknown.out.find("unknown scope"), std::string::npos) << unknown.out;
  RunResult widened = gw.Gate("alice", {"approve", id2, "--for", "10m", "--scope", "any-command"});
  ASSERT_EQ(widened.code, 0) << widened.out;
  EXPECT_NE(widened.out.find("any command"), std::string::npos) << "the widening, in words: " << widened.out;
  RunResult other = gw.Run("bot", {"exec", "gated-3", "--", "sh", "-c", "echo widened"});
  EXPECT_EQ(other.code, 0) << other.out;
  // An exec under review names its container (kubectl always does); one
  // that does not is refused, not held: the approver must see where it runs.
  RunResult nameless = Curl(gw, "bot", "POST", "/api/v1/namespaces/default/pods/gated-3/exec?command=id&stdout=true");
  EXPECT_EQ(nameless.out.substr(0, 3), "400") << nameless.out;
  EXPECT_NE(nameless.out.find("must name its container"), std::string::npos) << nameless.out;
  // The plugin's help is clean and exits 0; deny needs a reason.
  RunResult help = gw.Gate("alice", {"--help"});
  EXPECT_EQ(help.code, 0) << help.out;
  EXPECT_NE(help.out.find("kubectl gate approve ID"), std::string::npos) << help.out;
  RunResult no_reason = gw.Gate("alice", {"deny", id2});
  EXPECT_NE(no_reason.code, 0);
  EXPECT_NE(no_reason.out.find("--reason is required"), std::string::npos) << no_reason.out;
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
  std::string id = RequestIdAt(first.out, at + 21);
  ASSERT_EQ(gw.Gate("alice", {"approve", id, "--for", "3s"}).code, 0);
  // Both transports at once, inside the one grant: kubectl 1.32 over
  // WebSocket and 1.29 over SPDY. Each is told why its session ended (a
  // Status on the exec error channel) and exits non-zero.
  auto ws = gw.Start("bot", {"exec", "gated-2", "--", "sleep", "30"}, "1.32");
  auto spdy = gw.Start("bot", {"exec", "gated-2", "--", "sleep", "30"}, "1.29");
  for (auto* p : {ws.get(), spdy.get()}) {
    EXPECT_NE(p->Finish(), 0) << p->output();
    EXPECT_NE(p->output().find("session closed by kubegate: grant gr-"), std::string::npos) << p->output();
    EXPECT_NE(p->output().find("expired"), std::string::npos) << p->output();
  }
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

// A raw request to a gateway as `user` (curl; kubectl cannot send a
// deletecollection or a DELETE without its body). Returns "CODE\nBODY".
RunResult Curl(const PolicyGateway& gw, const std::string& user, const std::string& method, const std::string& path,
               const std::string& body, const std::string& content_type) {
  std::vector<std::string> argv = {"/usr/bin/curl", "-s", "-w", "\n%{http_code}", "--cacert",
                                   (E().dir / (gw.name + "-") / "pki" / "ca.crt").string(), "-H",
                                   "Authorization: Bearer " + ReadAll(E().dir / (user + ".token")), "-X", method};
  if (!body.empty()) {
    argv.insert(argv.end(), {"-H", "Content-Type: " + content_type, "--data-binary", body});
  }
  argv.push_back(gw.url + path);
  Process p(argv);
  int code = p.Finish();
  std::string out = p.output();
  return {code, out.substr(out.rfind('\n') + 1) + "\n" + out.substr(0, out.rfind('\n'))};
}

std::string ReplaceAll(std::string s, const std::string& from, const std::string& to) {
  for (auto at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size())) s.replace(at, from.size(), to);
  return s;
}

const char* kReviewWritesPolicy = R"(apiVersion: kubegate.io/v1
kind: Policy
default: allow
rules:
  - name: agent-writes-reviewed
    match: {kinds: [agent], namespaces: [inv], verbs: [create, update, patch, delete, deletecollection]}
    action: review
    message: "changes to inv are reviewed"
    review:
      approvers: {groups: [ops]}
      maxWait: 5m
      mode: answer
)";

// The invariant of issue 10: for every reviewable verb, with and without a
// caller body, asking for review (which runs the approvers' dry run)
// leaves the upstream's objects exactly as they were.
TEST(Approvals, HoldingAndTheApproversDryRunChangeNothing) {
  PolicyGateway gw("invariant", kReviewWritesPolicy);
  ASSERT_FALSE(gw.url.empty()) << gw.process->output();
  ASSERT_EQ(gw.Run("alice", {"create", "namespace", "inv"}).code, 0);
  for (const char* c : {"c1", "c2", "c3"}) {
    ASSERT_EQ(gw.Run("alice", {"create", "configmap", c, "-n", "inv", "--from-literal=a=b"}).code, 0);
    ASSERT_EQ(gw.Run("alice", {"label", "configmap", c, "-n", "inv", "app=old"}).code, 0);
  }
  auto snapshot = [&] {
    RunResult r = gw.Run("alice", {"get", "configmaps", "-n", "inv", "-o", "json"});
    EXPECT_EQ(r.code, 0) << r.out;
    auto j = json::parse(r.out, nullptr, false);
    return j.is_object() ? j["items"].dump() : r.out;
  };
  const std::string before = snapshot();
  ASSERT_NE(before.find("\"c3\""), std::string::npos) << before;
  std::string cm = WriteFile("inv-cm.yaml",
                             "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c1, namespace: inv}\ndata: {a: changed}\n");
  std::string fresh = WriteFile("inv-new.yaml",
                                "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c9, namespace: inv}\ndata: {a: b}\n");
  const std::vector<std::vector<std::string>> kubectl_writes = {
      {"delete", "configmap", "c1", "-n", "inv"},                      // DELETE with kubectl's DeleteOptions body
      {"create", "configmap", "c8", "-n", "inv", "--from-literal=x=y"},  // create
      {"replace", "-f", cm},                                         // update (PUT)
      {"label", "configmap", "c2", "-n", "inv", "touched=yes"},        // merge patch
      {"patch", "configmap", "c2", "-n", "inv", "-p", R"({"data":{"s":"1"}})"},  // strategic merge patch
      {"patch", "configmap", "c2", "-n", "inv", "--type=json", "-p", R"([{"op":"add","path":"/data/j","value":"1"}])"},
      {"apply", "--server-side", "-f", fresh},                       // apply patch
  };
  for (const auto& args : kubectl_writes) {
    RunResult r = gw.Run("bot", args);
    EXPECT_NE(r.code, 0) << "not held: " << args[0] << "\n" << r.out;
    EXPECT_NE(r.out.find("needs approval"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("changes to inv are reviewed"), std::string::npos) << "the rule's message, in the 403: " << r.out;
  }
  // What kubectl cannot send: DELETE without a body, deletecollection with
  // and without a body.
  for (const auto& [path, body] : std::vector<std::pair<std::string, std::string>>{
           {"/api/v1/namespaces/inv/configmaps/c3", ""},
           {"/api/v1/namespaces/inv/configmaps?labelSelector=app%3Dold", R"({"propagationPolicy":"Background"})"},
           {"/api/v1/namespaces/inv/configmaps", ""}}) {
    RunResult r = Curl(gw, "bot", "DELETE", path, body);
    EXPECT_EQ(r.out.substr(0, 3), "403") << path << "\n" << r.out;
  }
  EXPECT_EQ(snapshot(), before) << "holding, or the approvers' dry run, changed the upstream's objects";
  // The dry runs did reach the upstream, as dry runs (the invariant is not
  // met by sending nothing).
  int dry_runs = 0;
  for (const auto& r : E().Received("/namespaces/inv/configmaps")) {
    if (r["headers"].value("User-Agent", json::array({""}))[0] != "kubegate (server-side dry run for approvers)") continue;
    EXPECT_TRUE(ReadsAsDryRun(r)) << r.dump();
    dry_runs++;
  }
  EXPECT_EQ(dry_runs, 10);
  // Approvers see what the API server said of each.
  RunResult pending = gw.Gate("alice", {"list", "pending"});
  EXPECT_NE(pending.out.find("dry run:  would succeed (HTTP 200, ConfigMap c1)"), std::string::npos) << pending.out;
  EXPECT_NE(pending.out.find("why:      changes to inv are reviewed"), std::string::npos) << pending.out;
}

// Twins and selectors: the approver saw a deletecollection with a label
// selector; a twin without it, or with another body, is another review,
// and a one-use grant forwards exactly one request.
TEST(Approvals, AnApprovalCoversExactlyTheRequestTheApproverSaw) {
  PolicyGateway gw("exact", ReplaceAll(kReviewWritesPolicy, "[inv]", "[exact]") + R"(  - name: secret-lists
    match: {kinds: [agent], verbs: [list], resources: [secrets]}
    action: review
    review:
      approvers: {groups: [ops]}
      maxWait: 5m
      maxGrant: 30m
      mode: answer
)");
  ASSERT_FALSE(gw.url.empty()) << gw.process->output();
  ASSERT_EQ(gw.Run("alice", {"create", "namespace", "exact"}).code, 0);
  for (const char* c : {"old-1", "keep-1"}) {
    ASSERT_EQ(gw.Run("alice", {"create", "configmap", c, "-n", "exact", "--from-literal=a=b"}).code, 0);
  }
  ASSERT_EQ(gw.Run("alice", {"label", "configmap", "old-1", "-n", "exact", "app=old-canary"}).code, 0);
  const std::string selected = "/api/v1/namespaces/exact/configmaps?labelSelector=app%3Dold-canary";
  RunResult asked = Curl(gw, "bot", "DELETE", selected, R"({"propagationPolicy":"Background"})");
  ASSERT_EQ(asked.out.substr(0, 3), "403") << asked.out;
  std::string id = RequestIdAt(asked.out, asked.out.find("kubectl gate approve kg-") + 21);
  // Twins: the same request joins; another selector or body does not.
  RunResult twin = Curl(gw, "bot", "DELETE", selected, R"({"propagationPolicy":"Background"})");
  EXPECT_NE(twin.out.find(id), std::string::npos) << twin.out;
  RunResult unselected = Curl(gw, "bot", "DELETE", "/api/v1/namespaces/exact/configmaps",
                              R"({"propagationPolicy":"Background"})");
  EXPECT_EQ(unselected.out.find(id), std::string::npos) << "an unselected deletecollection joined " << id;
  RunResult other_body = Curl(gw, "bot", "DELETE", selected, R"({"propagationPolicy":"Foreground"})");
  EXPECT_EQ(other_body.out.find(id), std::string::npos) << "another body joined " << id;
  RunResult shown = gw.Gate("alice", {"show", id});
  EXPECT_NE(shown.out.find("asked:    2 identical requests"), std::string::npos) << shown.out;
  EXPECT_NE(shown.out.find("label selector app=old-canary"), std::string::npos) << shown.out;
  // Every scope item counts, the last one too; an empty one is refused.
  RunResult empty_scope = gw.Gate("alice", {"approve", id, "--scope", ""});
  EXPECT_NE(empty_scope.code, 0) << empty_scope.out;
  ASSERT_EQ(gw.Gate("alice", {"approve", id, "--reason", "old canary only"}).code, 0);
  // The approved request, re-run, takes the grant's one use.
  RunResult unapproved = Curl(gw, "bot", "DELETE", "/api/v1/namespaces/exact/configmaps",
                              R"({"propagationPolicy":"Background"})");
  EXPECT_EQ(unapproved.out.substr(0, 3), "403") << unapproved.out;
  RunResult run = Curl(gw, "bot", "DELETE", selected, R"({"propagationPolicy":"Background"})");
  EXPECT_EQ(run.out.substr(0, 3), "200") << run.out;
  RunResult again = Curl(gw, "bot", "DELETE", selected, R"({"propagationPolicy":"Background"})");
  EXPECT_EQ(again.out.substr(0, 3), "403") << "a one-use grant forwarded twice: " << again.out;
  RunResult left = gw.Run("alice", {"get", "configmaps", "-n", "exact", "-o", "name"});
  EXPECT_NE(left.out.find("keep-1"), std::string::npos) << left.out;
  EXPECT_EQ(left.out.find("old-1"), std::string::npos) << left.out;

  // A list approved with a selector is not every secret.
  ASSERT_EQ(gw.Run("alice", {"create", "secret", "generic", "web-1", "-n", "exact", "--from-literal=p=x"}).code, 0);
  RunResult first = gw.Run("bot", {"get", "secrets", "-n", "exact", "-l", "app=web"});
  ASSERT_NE(first.code, 0) << first.out;
  std::string sid = RequestIdAt(first.out, first.out.find("kubectl gate approve kg-") + 21);
  RunResult granted = gw.Gate("alice", {"approve", sid, "--for", "10m", "--scope", "exact,reads"});
  ASSERT_EQ(granted.code, 0) << granted.out;
  EXPECT_EQ(gw.Run("bot", {"get", "secrets", "-n", "exact", "-l", "app=web"}).code, 0);
  RunResult every = gw.Run("bot", {"get", "secrets", "-n", "exact"});
  EXPECT_NE(every.code, 0) << "the grant for -l app=web listed every secret: " << every.out;
  RunResult grants = gw.Gate("bot", {"grants"});
  EXPECT_NE(grants.out.find("deploy-bot (agent, bearer-token) may get, list and watch secrets (any name) in namespace "
                            "exact, label selector app=web"),
            std::string::npos)
      << grants.out;
  RunResult outsider = gw.Gate("alice", {"grants"});
  EXPECT_NE(outsider.out.find(sid), std::string::npos) << "approvers see the grants of their rules: " << outsider.out;
}

// A rule written the RBAC way (create on pods/exec) matches exec over both
// transports: kubectl 1.29's SPDY POST and 1.32's WebSocket GET (which
// RequestInfo reads as get, and the API server also authorizes as create).
TEST(Approvals, ConnectRulesWrittenWithCreateMatchBothTransports) {
  PolicyGateway gw("connectverbs", R"(apiVersion: kubegate.io/v1
kind: Policy
default: allow
rules:
  - name: no-exec-for-agents
    match: {kinds: [agent], verbs: [create], resources: [pods/exec]}
    action: deny
    message: "agents may not exec"
)");
  ASSERT_FALSE(gw.url.empty()) << gw.process->output();
  ASSERT_EQ(gw.Run("alice", {"run", "connect-verbs", "--image=x", "--restart=Never"}).code, 0);
  for (const char* version : {"1.29", "1.32"}) {
    RunResult r = gw.Run("bot", {"exec", "connect-verbs", "--", "echo", "in"}, version);
    EXPECT_NE(r.code, 0) << version << ": " << r.out;
    EXPECT_NE(r.out.find("agents may not exec"), std::string::npos) << version << ": " << r.out;
  }
  EXPECT_EQ(gw.Run("alice", {"exec", "connect-verbs", "--", "echo", "in"}).code, 0);
}

// Issue 11: while a request is held, what the caller sends after it is
// read into a fixed buffer only; more is a protocol error that withdraws
// the request (it once grew the gateway's memory without bound).
TEST(Approvals, BytesSentBehindAHeldRequestAreBounded) {
  PolicyGateway gw("heldmem", kPolicy);
  ASSERT_FALSE(gw.url.empty()) << gw.process->output();
  ASSERT_EQ(gw.Run("alice", {"create", "namespace", "heldmem"}).code, 0);
  std::string port = gw.url.substr(gw.url.rfind(':') + 1);
  Process flood({"/bin/sh", "-c",
                 "(printf 'DELETE /api/v1/namespaces/heldmem HTTP/1.1\\r\\nHost: x\\r\\nAuthorization: Bearer "
                 "bot-secret-token\\r\\nContent-Length: 0\\r\\n\\r\\n'; head -c 4194304 /dev/zero; sleep 20) | "
                 "openssl s_client -quiet -connect 127.0.0.1:" + port + " 2>&1; echo closed"});
  // The request is withdrawn, saying why; the connection is closed.
  std::string listed;
  for (int i = 0; i < 200; ++i) {
    listed = gw.Gate("alice", {"list", "withdrawn"}).out;
    if (listed.find("heldmem") != std::string::npos) break;
    usleep(50 * 1000);
  }
  EXPECT_NE(listed.find("more than 64 KiB"), std::string::npos) << listed;
  EXPECT_FALSE(UpstreamSaw("DELETE", "/api/v1/namespaces/heldmem"));
  EXPECT_EQ(gw.Run("alice", {"get", "namespace", "heldmem"}).code, 0) << "the gateway serves on";
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
