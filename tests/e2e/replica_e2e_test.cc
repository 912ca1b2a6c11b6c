// Several gateway replicas on one PostgreSQL (issue 15): a request held on
// one replica is released by an approval made through another, woken by
// PostgreSQL NOTIFY rather than the one-second sweep; a runtime revocation
// through one replica reaches the others the same way. The first test runs
// three replicas, as the issue asks: held on A, approved through B and C;
// an exec on A closed by a revocation on C.
#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>

#include "e2e_env.h"

namespace e2e {
namespace {

const char* kReplicaPolicy = R"(apiVersion: kubegate.io/v1
kind: Policy
default: allow
rules:
  - name: namespace-deletes
    match: {verbs: [delete], resources: [namespaces]}
    action: review
    review: {approvers: {groups: [ops], users: [admin]}, approvals: 1, maxWait: 2m, mode: hold}
  - name: held-execs
    match: {verbs: [create], resources: [pods/exec], names: ["held-*"]}
    action: review
    review: {approvers: {groups: [ops], users: [admin]}, approvals: 1, maxWait: 2m, mode: hold}
)";

// The counter `name` on `gw`'s /metrics (0 when absent), read as admin.
double MetricOf(const PolicyGateway& gw, const std::string& name) {
  Process p({Kubectl("1.32"), "--kubeconfig", gw.Kubeconfig("admin"), "get", "--raw", "/metrics"});
  p.Finish();
  std::istringstream in(p.output());
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(name + " ", 0) == 0) return std::stod(line.substr(name.size() + 1));
  }
  return 0;
}

TEST(Replicas, AnApprovalThroughOneReplicaReleasesTheHoldOnAnother) {
  ScratchPostgres pg("pgrep");
  ASSERT_TRUE(pg.started) << pg.output;
  const std::string& store = pg.store;
  // Recordings on a volume every replica mounts (deploy/: a ReadWriteMany claim).
  const std::string shared = "recording: {dir: " + (E().dir / "rep-shared-recordings").string() + "}\n";
  {
    PolicyGateway a("repa", kReplicaPolicy, store + shared + "brokers: {users: [alice], agents: [rep-bot]}\n");
    PolicyGateway b("repb", kReplicaPolicy, store + shared + "brokers: {users: [alice], agents: [rep-bot]}\n");
    PolicyGateway c("repc", kReplicaPolicy, store + shared + "brokers: {users: [alice], agents: [rep-bot]}\n");
    ASSERT_FALSE(a.url.empty()) << a.process->output();
    ASSERT_FALSE(b.url.empty()) << b.process->output();
    ASSERT_FALSE(c.url.empty()) << c.process->output();
    std::vector<long> release_ms;
    for (int round = 0; round < 3; ++round) {
      const std::string ns = "rep-ns-" + std::to_string(round);
      ASSERT_EQ(a.Run("alice", {"create", "namespace", ns}).code, 0);
      auto del = a.Start("bot", {"delete", "namespace", ns});
      // B sees A's held request: one store.
      std::string id = b.WaitPending("\"" + ns + "\"");
      ASSERT_FALSE(id.empty()) << del->output();
      const double heard = MetricOf(a, "kubegate_store_wake_ups_total");
      RunResult approved = b.Gate("admin", {"approve", id});
      ASSERT_EQ(approved.code, 0) << approved.out;
      auto t0 = std::chrono::steady_clock::now();
      EXPECT_EQ(del->Finish(), 0) << del->output();
      release_ms.push_back(static_cast<long>(
          std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count()));
      // A was told by B through the store (its own changes are not counted).
      EXPECT_GT(MetricOf(a, "kubegate_store_wake_ups_total"), heard);
      bool deleted = false;
      for (const auto& r : E().Received("/api/v1/namespaces/" + ns)) {
        deleted = deleted || (r["method"] == "DELETE" && !ReadsAsDryRun(r));
      }
      EXPECT_TRUE(deleted);
    }
    std::cout << "approve on B -> kubectl on A done (ms):";
    for (long ms : release_ms) std::cout << " " << ms;
    std::cout << "\n";

    // A task token issued on A and revoked on B is refused on A: polled,
    // bounded.
    Process issue({std::string(kBuildDir) + "/src/kubegate", "agent", "--kubeconfig", a.Kubeconfig("alice"), "token",
                   "--agent", "rep-bot", "--task", "T-rep"});
    ASSERT_EQ(issue.Finish(), 0) << issue.output();
    std::string token = json::parse(issue.output())["token"];
    auto status_on_a = [&] {
      Process p({"/usr/bin/curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert",
                 (E().dir / "repa-" / "pki" / "ca.crt").string(), "-H", "Authorization: Bearer " + token,
                 a.url + "/api/v1/namespaces/default/configmaps"});
      p.Finish();
      return p.output();
    };
    ASSERT_EQ(status_on_a(), "200");
    Process revoke({std::string(kBuildDir) + "/src/kubegate", "agent", "--kubeconfig", b.Kubeconfig("alice"), "revoke",
                    "--task", "T-rep"});
    ASSERT_EQ(revoke.Finish(), 0) << revoke.output();
    auto t0 = std::chrono::steady_clock::now();
    std::string status;
    while ((status = status_on_a()) == "200" && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(5)) {
    }
    EXPECT_EQ(status, "401");
    std::cout << "revoked on B -> refused on A after "
              << std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count()
              << " ms\n";
    // A revocation through B closes a stream on A: an exec under a task
    // token (kubectl 1.32, WebSocket) ends with the task's reason.
    ASSERT_EQ(a.Run("alice", {"run", "rep-exec-pod", "--image=busybox", "--restart=Never"}).code, 0);
    Process exec_token({std::string(kBuildDir) + "/src/kubegate", "agent", "--kubeconfig", a.Kubeconfig("alice"),
                        "token", "--agent", "rep-bot", "--task", "T-rep-exec"});
    ASSERT_EQ(exec_token.Finish(), 0) << exec_token.output();
    const std::string exec_kc = (E().dir / "rep-exec-bot.kubeconfig").string();
    Process mk({std::string(kBuildDir) + "/src/kubegate", "kubeconfig", "--user", "rep-bot", "--server", a.url,
                "--ca-file", a.ca_file, "--token-file",
                WriteFile("rep-exec.token", json::parse(exec_token.output())["token"].get<std::string>()), "-o",
                exec_kc});
    ASSERT_EQ(mk.Finish(), 0) << mk.output();
    const std::size_t execs = E().Received("/pods/rep-exec-pod/exec").size();
    Process session({Kubectl("1.32"), "--kubeconfig", exec_kc, "exec", "rep-exec-pod", "--", "sleep", "60"});
    for (int i = 0; i < 300 && E().Received("/pods/rep-exec-pod/exec").size() == execs; ++i) usleep(50 * 1000);
    ASSERT_GT(E().Received("/pods/rep-exec-pod/exec").size(), execs) << session.output();
    // The third replica revokes it.
    Process revoke_exec({std::string(kBuildDir) + "/src/kubegate", "agent", "--kubeconfig", c.Kubeconfig("alice"),
                         "revoke", "--task", "T-rep-exec"});
    ASSERT_EQ(revoke_exec.Finish(), 0) << revoke_exec.output();
    const auto revoked_at = std::chrono::steady_clock::now();
    EXPECT_NE(session.Finish(), 0) << session.output();
    EXPECT_NE(session.output().find("task token for task T-rep-exec"), std::string::npos) << session.output();
    std::cout << "revoked on C -> exec on A closed after "
              << std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - revoked_at)
                     .count()
              << " ms\n";

    // A session recorded on A is read through B: replay and the REST API.
    ASSERT_EQ(a.Run("alice", {"run", "rep-pod", "--image=busybox", "--restart=Never"}).code, 0);
    RunResult exec = a.Run("alice", {"exec", "rep-pod", "--", "echo", "recorded-on-a"});
    ASSERT_EQ(exec.code, 0) << exec.out;
    Recorded rec = RecordingOf("/pods/rep-pod/exec", b.Config());
    ASSERT_FALSE(rec.summary.is_null()) << rec.request_id;
    Process replay({std::string(kBuildDir) + "/src/kubegate", "replay", rec.request_id, "--speed", "0", "--config",
                    b.Config()});
    EXPECT_EQ(replay.Finish(), 0) << replay.output();
    EXPECT_NE(replay.output().find("recorded-on-a"), std::string::npos) << replay.output();
    Process api({"/usr/bin/curl", "-sk", "-H", "Authorization: Bearer admin-secret-token",
                 b.url + "/kubegate/v1/audit/" + rec.request_id + "/recording"});
    ASSERT_EQ(api.Finish(), 0);
    EXPECT_NE(api.output().find("recorded-on-a"), std::string::npos) << api.output();

    // A delete held on A, approved through C, released on A.
    ASSERT_EQ(a.Run("alice", {"create", "namespace", "rep-ns-c"}).code, 0);
    auto del_c = a.Start("bot", {"delete", "namespace", "rep-ns-c"});
    std::string id_c = c.WaitPending("\"rep-ns-c\"");
    ASSERT_FALSE(id_c.empty()) << del_c->output();
    ASSERT_EQ(c.Gate("admin", {"approve", id_c}).code, 0);
    EXPECT_EQ(del_c->Finish(), 0) << del_c->output();
    // One audit log, written by all three, verifies.
    Process v({std::string(kBuildDir) + "/src/kubegate", "audit", "verify", "--config", a.Config()});
    EXPECT_EQ(v.Finish(), 0) << v.output();
    EXPECT_NE(v.output().find("postgres:"), std::string::npos) << v.output();
  }
}


// A replica SIGKILLed while holding a request and during a recorded exec:
// the survivor abandons the request (never run later) and ends the
// session's recording with a note and a result record (verified, exported
// through the survivor); a replica that starts again leaves alone what the
// live one holds, which an approval through the restarted one releases.
TEST(Replicas, ASurvivorAbandonsTheHoldsOfAKilledReplicaAndARestartLeavesLiveHoldsAlone) {
  ScratchPostgres pg("pgkill");
  ASSERT_TRUE(pg.started) << pg.output;
  const std::string& store = pg.store;
  // Recordings on a volume both replicas mount.
  const std::string shared = store + "recording: {dir: " + (E().dir / "kill-shared-recordings").string() + "}\n";
  {
    auto a = std::make_unique<PolicyGateway>("killa", kReplicaPolicy, shared);
    PolicyGateway b("killb", kReplicaPolicy, shared);
    ASSERT_FALSE(a->url.empty()) << a->process->output();
    ASSERT_FALSE(b.url.empty()) << b.process->output();
    ASSERT_EQ(b.Run("alice", {"create", "namespace", "kill-a"}).code, 0);
    ASSERT_EQ(b.Run("alice", {"create", "namespace", "kill-b"}).code, 0);
    // A recorded exec session open on A when it dies.
    ASSERT_EQ(b.Run("alice", {"run", "kill-pod", "--image=busybox", "--restart=Never"}).code, 0);
    auto session = a->Start("alice", {"exec", "kill-pod", "--", "sleep", "60"});
    auto on_a = a->Start("bot", {"delete", "namespace", "kill-a"});
    auto on_b = b.Start("bot", {"delete", "namespace", "kill-b"});
    std::string id_a = b.WaitPending("\"kill-a\"");
    std::string id_b = b.WaitPending("\"kill-b\"");
    ASSERT_FALSE(id_a.empty());
    ASSERT_FALSE(id_b.empty());
    // The session is open on A once the test server has answered its exec
    // and A has noted it in the store: `audit show` through B says so.
    std::string exec_id;
    for (int i = 0; i < 300 && exec_id.empty(); ++i) {
      auto execs = E().Received("/pods/kill-pod/exec");
      if (!execs.empty()) exec_id = execs.back()["headers"]["Impersonate-Extra-Kubegate-Request-Id"][0];
      if (exec_id.empty()) usleep(50 * 1000);
    }
    ASSERT_FALSE(exec_id.empty()) << session->output();
    bool noted = false;
    for (int i = 0; i < 300 && !noted; ++i) {
      Process q({"/usr/lib/postgresql/15/bin/psql", "-At", pg.conninfo, "-c",
                 "SELECT count(*) FROM open_session WHERE request_id = '" + exec_id + "'"});
      q.Finish();
      noted = q.output().find('1') == 0;
      if (!noted) usleep(50 * 1000);
    }
    ASSERT_TRUE(noted) << "A never noted its open session";
    a->process->Signal(SIGKILL);
    a->process->Finish();
    on_a->Finish();
    session->Finish();
    // B abandons A's hold once A has been silent for kReplicaDeadAfter:
    // polled, bounded.
    RunResult shown;
    for (int i = 0; i < 300; ++i) {
      shown = b.Gate("alice", {"show", id_a});
      if (shown.out.find("abandoned") != std::string::npos) break;
      usleep(100 * 1000);
    }
    EXPECT_NE(shown.out.find("abandoned"), std::string::npos) << shown.out;
    EXPECT_NE(b.Gate("admin", {"approve", id_a}).code, 0) << "it can never run later";
    // B also ended A's recorded session: the recording ends with a note
    // naming the replica that stopped, and its result record holds the
    // file's hash, so it is exported and verified through B.
    Recorded rec = RecordingOf("/pods/kill-pod/exec", b.Config());
    EXPECT_EQ(rec.request_id, exec_id);
    ASSERT_FALSE(rec.summary.is_null()) << "no result record for the killed replica's session";
    EXPECT_NE(rec.summary.value("ended_by", "").find("which stopped"), std::string::npos) << rec.summary.dump();
    EXPECT_NE(CastEvents(rec.file, "m").find("which stopped"), std::string::npos) << rec.file << rec.export_error;
    Process verify({std::string(kBuildDir) + "/src/kubegate", "audit", "verify", "--config", b.Config()});
    EXPECT_EQ(verify.Finish(), 0) << verify.output();
    // A starts again (a new instance): B's hold is left pending, and an
    // approval through A releases it on B.
    a = std::make_unique<PolicyGateway>("killa", kReplicaPolicy, shared);
    ASSERT_FALSE(a->url.empty()) << a->process->output();
    RunResult still = a->Gate("alice", {"show", id_b});
    EXPECT_NE(still.out.find("pending"), std::string::npos) << still.out;
    ASSERT_EQ(a->Gate("admin", {"approve", id_b}).code, 0);
    EXPECT_EQ(on_b->Finish(), 0) << on_b->output();
    bool deleted_a = false, deleted_b = false;
    for (const auto& r : E().Received("/api/v1/namespaces/kill-")) {
      if (r["method"] != "DELETE" || ReadsAsDryRun(r)) continue;
      deleted_a = deleted_a || r.value("target", std::string()).find("/kill-a") != std::string::npos;
      deleted_b = deleted_b || r.value("target", std::string()).find("/kill-b") != std::string::npos;
    }
    EXPECT_FALSE(deleted_a) << "the killed replica's held request ran";
    EXPECT_TRUE(deleted_b);
  }
}

// A rolling restart behind a load balancer (haproxy in TCP mode, as a
// Service with readiness would route): the replica holding a request is
// sent SIGTERM; it answers the held kubectl 503 with Retry-After and leaves
// the approval pending; kubectl retries by itself, reaches the other
// replica, which holds the same approval request; an approval releases it
// there, and the namespace is deleted exactly once. Meanwhile three
// callers run kubectl get through the Service without pause: none fails.
TEST(Replicas, ARollingRestartHandsAHeldRequestToAnotherReplica) {
  ScratchPostgres pg("pgroll");
  ASSERT_TRUE(pg.started) << pg.output;
  const std::string& store = pg.store;
  {
    auto a = std::make_unique<PolicyGateway>("rolla", kReplicaPolicy, store);
    ASSERT_FALSE(a->url.empty()) << a->process->output();
    PolicyGateway b("rollb", kReplicaPolicy, store, "rolla");
    ASSERT_FALSE(b.url.empty()) << b.process->output();
    // The Service: A first, B when A is down (health-checked every 100 ms).
    const std::string lb_port = ClosedLoopbackPort();
    auto port_of = [](const std::string& url) { return url.substr(url.rfind(':') + 1); };
    std::string cfg = WriteFile("roll-haproxy.cfg",
                                "global\n  maxconn 256\n"
                                "defaults\n  mode tcp\n  timeout connect 2s\n  timeout client 5m\n"
                                "  timeout server 5m\n  retries 3\n  option redispatch\n"
                                "frontend service\n  bind 127.0.0.1:" + lb_port + "\n  default_backend replicas\n"
                                "backend replicas\n"
                                "  server a 127.0.0.1:" + port_of(a->url) + " check inter 100ms fall 1 rise 1\n"
                                "  server b 127.0.0.1:" + port_of(b.url) + " check inter 100ms fall 1 rise 1 backup\n");
    Process lb({"/usr/sbin/haproxy", "-db", "-f", cfg});
    const std::string service = (E().dir / "roll-service-bot.kubeconfig").string();
    b.WriteKubeconfig("bot", "https://127.0.0.1:" + lb_port, service);
    // Wait for haproxy to accept, through the Service itself.
    int ready = -1;
    for (int i = 0; i < 100 && ready != 0; ++i) {
      Process get({Kubectl("1.32"), "--kubeconfig", service, "get", "namespace", "default"});
      ready = get.Finish();
      if (ready != 0) usleep(50 * 1000);
    }
    ASSERT_EQ(ready, 0) << lb.output();
    ASSERT_EQ(b.Run("alice", {"create", "namespace", "roll-ns"}).code, 0);
    ASSERT_EQ(b.Run("alice", {"run", "held-roll", "--image=busybox", "--restart=Never"}).code, 0);

    Process del({Kubectl("1.32"), "--kubeconfig", service, "delete", "namespace", "roll-ns"});
    std::string id = b.WaitPending("\"roll-ns\"");
    ASSERT_FALSE(id.empty()) << del.output();
    // Execs held too: kubectl 1.32 (WebSocket) and 1.29 (SPDY).
    Process exec_ws({Kubectl("1.32"), "--kubeconfig", service, "exec", "held-roll", "--", "echo", "ran-after-hand-off"});
    std::string exec_id = b.WaitPending("kubectl exec");
    ASSERT_FALSE(exec_id.empty()) << exec_ws.output();
    Process exec_spdy({Kubectl("1.29"), "--kubeconfig", service, "exec", "held-roll", "--", "echo", "spdy"});
    double held_on_a = 0;
    for (int i = 0; i < 200 && held_on_a < 3; ++i) {
      held_on_a = MetricOf(*a, "kubegate_held_requests");
      if (held_on_a < 3) usleep(50 * 1000);
    }
    ASSERT_EQ(held_on_a, 3) << "held on A, the Service's first choice";

    // Under load: three callers run kubectl get through the Service without
    // pause, before, during and after the restart. client-go retries a GET
    // the restart cuts (a reset or EOF); none may fail.
    std::atomic<bool> load_stop{false};
    std::atomic<int> after_restart{0};
    std::atomic<bool> restarted{false};
    std::mutex load_mu;
    std::vector<std::string> load_failures;
    int load_runs = 0;
    std::vector<std::thread> load;
    for (int t = 0; t < 3; ++t) {
      load.emplace_back([&] {
        while (!load_stop) {
          const bool after = restarted;
          Process get({Kubectl("1.32"), "--kubeconfig", service, "get", "configmaps", "-n", "default", "-o", "name"});
          const int code = get.Finish();
          std::lock_guard<std::mutex> lock(load_mu);
          ++load_runs;
          if (code != 0) load_failures.push_back(get.output());
          if (after) ++after_restart;
        }
      });
    }
    for (int i = 0; i < 200; ++i) {
      {
        std::lock_guard<std::mutex> lock(load_mu);
        if (load_runs >= 6) break;
      }
      usleep(20 * 1000);
    }

    // Rolling restart: A is told to stop. It hands the held request off at
    // once (it does not wait out its grace period for it) and exits.
    a->process->Signal(SIGTERM);
    EXPECT_EQ(a->process->Finish(), 0) << a->process->output();
    restarted = true;
    EXPECT_NE(a->process->output().find("shutdown complete (0 requests still in flight were cut)"), std::string::npos)
        << a->process->output();
    // kubectl waited Retry-After and sent it again: B holds it now, under
    // the same approval request, which is still pending.
    // kubectl 1.29's SPDY exec does not retry: it prints the Status, which
    // names the request, and nothing ran.
    EXPECT_NE(exec_spdy.Finish(), 0) << exec_spdy.output();
    EXPECT_NE(exec_spdy.output().find("shutting down"), std::string::npos) << exec_spdy.output();
    double held_on_b = 0;
    for (int i = 0; i < 200 && held_on_b < 2; ++i) {
      held_on_b = MetricOf(b, "kubegate_held_requests");
      if (held_on_b < 2) usleep(50 * 1000);
    }
    ASSERT_EQ(held_on_b, 2) << "the delete and kubectl 1.32's exec: " << del.output() << exec_ws.output();
    // The load goes on through B; then it stops.
    for (int i = 0; i < 500 && after_restart < 6; ++i) usleep(20 * 1000);
    load_stop = true;
    for (auto& t : load) t.join();
    EXPECT_GE(after_restart, 6) << "gets served by B after the restart";
    EXPECT_TRUE(load_failures.empty()) << load_failures.size() << " of " << load_runs << " gets failed, the first: "
                                       << load_failures.front();
    std::cout << "kubectl get through the Service during the rolling restart: " << load_runs << " runs, "
              << load_failures.size() << " failed\n";
    RunResult shown = b.Gate("alice", {"show", id});
    EXPECT_NE(shown.out.find("pending"), std::string::npos) << shown.out;
    EXPECT_EQ(shown.out.find("identical requests wait"), std::string::npos) << "one caller, counted once: " << shown.out;

    ASSERT_EQ(b.Gate("admin", {"approve", id}).code, 0);
    EXPECT_EQ(del.Finish(), 0) << del.output();
    ASSERT_EQ(b.Gate("admin", {"approve", exec_id}).code, 0);
    EXPECT_EQ(exec_ws.Finish(), 0) << exec_ws.output();
    EXPECT_NE(exec_ws.output().find("ran-after-hand-off"), std::string::npos) << exec_ws.output();
    EXPECT_NE(del.output().find("namespace \"roll-ns\" deleted"), std::string::npos) << del.output();
    int deletes = 0;
    for (const auto& r : E().Received("/api/v1/namespaces/roll-ns")) {
      if (r["method"] == "DELETE" && !ReadsAsDryRun(r)) ++deletes;
    }
    EXPECT_EQ(deletes, 1);
    // B's operations metrics: the review's outcome and how long it waited,
    // what its decision records cost, and which replica it is.
    EXPECT_EQ(MetricOf(b, "kubegate_review_outcomes_total{outcome=\"approved\"}"), 2);
    EXPECT_EQ(MetricOf(b, "kubegate_review_wait_seconds_count{outcome=\"approved\"}"), 2);
    EXPECT_GT(MetricOf(b, "kubegate_audit_commit_seconds_count"), 0);
    Process info({Kubectl("1.32"), "--kubeconfig", b.Kubeconfig("admin"), "get", "--raw", "/metrics"});
    info.Finish();
    EXPECT_NE(info.output().find("kubegate_instance_info{instance=\""), std::string::npos) << info.output();

    // The record of A's answer: a 503 that handed the request off.
    Process handed({std::string(kBuildDir) + "/src/kubegate", "audit", "--config", b.Config(), "-o", "jsonl", "--verb",
                    "delete", "--resource", "namespaces"});
    ASSERT_EQ(handed.Finish(), 0) << handed.output();
    std::istringstream lines(handed.output());
    std::string line;
    int handed_off = 0;
    while (std::getline(lines, line)) {
      auto j = json::parse(line, nullptr, false);
      if (!j.is_discarded() && j.dump().find("\"handed_off\":true") != std::string::npos) ++handed_off;
    }
    EXPECT_EQ(handed_off, 1) << handed.output();
    Process v({std::string(kBuildDir) + "/src/kubegate", "audit", "verify", "--config", b.Config()});
    EXPECT_EQ(v.Finish(), 0) << v.output();
    lb.Signal(SIGTERM);
    lb.Finish();
  }
}


}  // namespace
}  // namespace e2e
