// End-to-end audit: every request real kubectl sends through kubegate has a
// committed record before it reaches the cluster; reviewers read records
// with `kubegate audit` and the REST API; the chain verifies; a stopped
// PostgreSQL fails requests closed and recovers; SIGKILL under load loses
// no committed record.
#include <algorithm>
#include <iterator>
#include <set>
#include <sstream>

#include "e2e_env.h"

namespace e2e {
namespace {

std::string Kubegate() { return std::string(kBuildDir) + "/src/kubegate"; }

RunResult RunKubegate(std::vector<std::string> args) {
  args.insert(args.begin(), Kubegate());
  Process p(args);
  int code = p.Finish();
  return {code, p.output()};
}

// Decision records as JSON lines (newest first), through the CLI.
std::vector<json> AuditLines(const std::string& config, std::vector<std::string> filters) {
  std::vector<std::string> args = {"audit", "--config", config, "-o", "jsonl", "--limit", "10000"};
  args.insert(args.end(), filters.begin(), filters.end());
  RunResult r = RunKubegate(args);
  EXPECT_EQ(r.code, 0) << r.out;
  std::vector<json> out;
  std::istringstream in(r.out);
  std::string line;
  while (std::getline(in, line)) {
    auto j = json::parse(line, nullptr, false);
    if (!j.is_discarded()) out.push_back(j);
  }
  return out;
}

std::string RequestIdOf(const json& received) {
  const auto& h = received["headers"];
  return h.contains("Impersonate-Extra-Kubegate-Request-Id") ? h["Impersonate-Extra-Kubegate-Request-Id"][0].get<std::string>()
                                                             : "";
}

std::string MainConfig() { return (E().dir / "gateway.yaml").string(); }

TEST(Audit, EveryRequestIsRecordedBeforeItIsForwarded) {
  std::size_t before = E().Received("").size();
  auto r = E().Run("1.32", {"get", "pods", "-n", "default"});
  ASSERT_EQ(r.code, 0) << r.out;
  std::string ca = (E().dir / "gw" / "pki" / "ca.crt").string();
  Process bad({"/usr/bin/curl", "-s", "--cacert", ca, "-H", "Authorization: Bearer wrong-token",
               E().gateway_url + "/api/v1/namespaces/default/secrets"});
  ASSERT_EQ(bad.Finish(), 0);

  // Every request the cluster received carries a request id with a decision record.
  auto received = E().Received("");
  ASSERT_GT(received.size(), before);
  std::set<std::string> recorded;
  for (const auto& j : AuditLines(MainConfig(), {})) recorded.insert(j["decision"]["request_id"].get<std::string>());
  for (std::size_t i = before; i < received.size(); ++i) {
    std::string id = RequestIdOf(received[i]);
    ASSERT_FALSE(id.empty()) << received[i].dump();
    EXPECT_TRUE(recorded.count(id)) << "forwarded without a committed record: " << received[i]["target"];
  }

  // The list of pods: who, what, the decision, the result.
  auto lists = AuditLines(MainConfig(), {"--user", "alice", "--verb", "list", "--resource", "pods", "--namespace", "default"});
  ASSERT_FALSE(lists.empty());
  const json& d = lists[0]["decision"];
  EXPECT_EQ(d["identity"]["kind"], "human");
  EXPECT_EQ(d["identity"]["auth"], "bearer-token");
  EXPECT_EQ(d["identity"]["groups"], json::array({"dev", "ops"}));
  EXPECT_EQ(d["kubectl"]["command"], "kubectl get");
  EXPECT_EQ(d["decision"]["action"], "allow");
  EXPECT_EQ(d["upstream_identity"]["Impersonate-User"], "alice");
  ASSERT_TRUE(lists[0]["result"].is_object()) << lists[0].dump();
  EXPECT_EQ(lists[0]["result"]["status"], 200);
  EXPECT_GT(lists[0]["result"]["bytes_out"].get<int>(), 0);

  // The refused caller is recorded too, and never reached the cluster.
  auto denied = AuditLines(MainConfig(), {"--decision", "deny", "--resource", "secrets"});
  bool found = false;
  for (const auto& j : denied) {
    if (j["decision"]["decision"]["rule"] == "authentication" && j["result"]["status"] == 401) found = true;
  }
  EXPECT_TRUE(found) << "no record of the 401";
  EXPECT_TRUE(E().Received("/api/v1/namespaces/default/secrets").empty());

  RunResult v = RunKubegate({"audit", "verify", "--config", MainConfig()});
  EXPECT_EQ(v.code, 0) << v.out;
  EXPECT_NE(v.out.find("audit chain OK"), std::string::npos) << v.out;
}

TEST(Audit, ShowAnswersTheReviewerQuestionsInWords) {
  ASSERT_EQ(E().Run("1.29", {"create", "configmap", "audited", "-n", "default", "--from-literal=k=v"}, "bot").code, 0);
  auto r = E().Run("1.29", {"delete", "configmap", "audited", "-n", "default"}, "bot");
  ASSERT_EQ(r.code, 0) << r.out;
  std::string id;
  for (const auto& j : E().Received("/api/v1/namespaces/default/configmaps/audited")) {
    if (j["method"] == "DELETE") id = RequestIdOf(j);
  }
  ASSERT_FALSE(id.empty());
  RunResult show = RunKubegate({"audit", "show", id, "--config", MainConfig()});
  ASSERT_EQ(show.code, 0) << show.out;
  for (const char* want : {"Who acted", "deploy-bot (an agent, authenticated by bearer-token",
                           "kubectl command: kubectl delete", "verb delete on configmaps \"audited\" in namespace default",
                           "Did it need approval", "No. Allowed by rule", "No approval was involved",
                           "with HTTP status 200", "Chain position"}) {
    EXPECT_NE(show.out.find(want), std::string::npos) << want << "\n" << show.out;
  }
  EXPECT_NE(show.out.find(id), std::string::npos);
  RunResult missing = RunKubegate({"audit", "show", "kg-00000000000000000000", "--config", MainConfig()});
  EXPECT_NE(missing.code, 0);
  EXPECT_NE(missing.out.find("no audit record"), std::string::npos) << missing.out;
}

// `kubegate audit` reads cleanly: refused filters and formats say so,
// pods/exec finds exec records, and an export walks the whole chain in
// order from a cursor.
TEST(Audit, CliRefusesUnknownValuesFindsExecAndExportsTheWholeChain) {
  for (std::vector<std::string> bad : {std::vector<std::string>{"--decision", "reveiw"},
                                       std::vector<std::string>{"-o", "yaml"},
                                       std::vector<std::string>{"--kind", "robot"}}) {
    std::vector<std::string> args = {"audit", "--config", MainConfig()};
    args.insert(args.end(), bad.begin(), bad.end());
    RunResult r = RunKubegate(args);
    EXPECT_NE(r.code, 0) << bad[1] << " was accepted:\n" << r.out;
    EXPECT_EQ(r.out.find("TIME"), std::string::npos) << "printed a table for " << bad[1];
  }
  ASSERT_EQ(E().Run("1.32", {"run", "audited-exec", "--image=x", "--restart=Never"}).code, 0);
  ASSERT_EQ(E().Run("1.32", {"exec", "audited-exec", "--", "echo", "hi"}).code, 0);
  auto execs = AuditLines(MainConfig(), {"--resource", "pods/exec", "--name", "audited-exec"});
  ASSERT_EQ(execs.size(), 1u);
  EXPECT_EQ(execs[0]["decision"]["request"]["subresource"], "exec");
  EXPECT_TRUE(AuditLines(MainConfig(), {"--resource", "pods/log", "--name", "audited-exec"}).empty());
  // The table's columns never run together, even with long values.
  RunResult table = RunKubegate({"audit", "--config", MainConfig(), "--resource", "pods/exec", "--limit", "1"});
  ASSERT_EQ(table.code, 0) << table.out;
  std::string row = table.out.substr(table.out.find('\n') + 1);
  EXPECT_NE(row.find("kg-"), std::string::npos) << table.out;
  EXPECT_EQ(row.find("Z kg-") + 2, row.find("kg-")) << "time and request id not separated: " << row;
  // Export: every entry, in chain order, resumable from the last seq.
  RunResult all = RunKubegate({"audit", "export", "--config", MainConfig()});
  ASSERT_EQ(all.code, 0) << all.out;
  std::vector<json> lines;
  std::istringstream in(all.out);
  for (std::string line; std::getline(in, line);) {
    auto j = json::parse(line, nullptr, false);
    if (j.is_object()) lines.push_back(j);
  }
  ASSERT_GT(lines.size(), 10u);
  for (std::size_t i = 1; i < lines.size(); ++i) {
    ASSERT_EQ(lines[i]["seq"].get<long long>(), lines[i - 1]["seq"].get<long long>() + 1) << "a gap or disorder at " << i;
    EXPECT_EQ(lines[i]["prev_hash"], lines[i - 1]["hash"]);
  }
  long long mid = lines[lines.size() / 2]["seq"];
  RunResult rest = RunKubegate({"audit", "export", "--config", MainConfig(), "--after-seq", std::to_string(mid), "--max", "3"});
  ASSERT_EQ(rest.code, 0) << rest.out;
  EXPECT_EQ(json::parse(rest.out.substr(0, rest.out.find('\n')))["seq"].get<long long>(), mid + 1) << rest.out;
  EXPECT_NE(rest.out.find("continue with --after-seq " + std::to_string(mid + 3)), std::string::npos) << rest.out;
}

TEST(Audit, RestApiServesAuditorsOnly) {
  auto [gw, url] = E().StartGateway("auditapi", "auditors:\n  users: [admin]\n");
  ASSERT_FALSE(url.empty()) << gw->output();
  std::string ca = (E().dir / "auditapi-" / "pki" / "ca.crt").string();
  auto kubectl = [&](const std::string& token, std::vector<std::string> args) {
    std::vector<std::string> argv = {Kubectl("1.32"), "--kubeconfig", "/dev/null", "--server", url,
                                     "--certificate-authority", ca, "--token", token};
    argv.insert(argv.end(), args.begin(), args.end());
    Process p(argv);
    int code = p.Finish();
    return RunResult{code, p.output()};
  };
  ASSERT_EQ(kubectl("alice-secret-token", {"get", "ns"}).code, 0);
  RunResult events = kubectl("admin-secret-token", {"get", "--raw", "/kubegate/v1/audit?user=alice&verb=list&format=k8s"});
  ASSERT_EQ(events.code, 0) << events.out;
  json list = json::parse(events.out, nullptr, false);
  ASSERT_FALSE(list.is_discarded()) << events.out;
  EXPECT_EQ(list["apiVersion"], "audit.k8s.io/v1");
  EXPECT_EQ(list["kind"], "EventList");
  ASSERT_FALSE(list["items"].empty());
  const json& ev = list["items"][0];
  EXPECT_EQ(ev["user"]["username"], "alice");
  EXPECT_EQ(ev["verb"], "list");
  EXPECT_EQ(ev["objectRef"]["resource"], "namespaces");
  EXPECT_EQ(ev["annotations"]["kubegate.io/decision"], "allow");
  std::string id = ev["auditID"];
  RunResult one = kubectl("admin-secret-token", {"get", "--raw", "/kubegate/v1/audit/" + id + "?format=text"});
  ASSERT_EQ(one.code, 0) << one.out;
  EXPECT_NE(one.out.find("Who acted"), std::string::npos) << one.out;
  RunResult refused = kubectl("alice-secret-token", {"get", "--raw", "/kubegate/v1/audit"});
  EXPECT_NE(refused.code, 0);
  EXPECT_NE(refused.out.find("not an auditor"), std::string::npos) << refused.out;
  RunResult bad = kubectl("admin-secret-token", {"get", "--raw", "/kubegate/v1/audit?colour=blue"});
  EXPECT_NE(bad.code, 0);
  EXPECT_NE(bad.out.find("unknown audit query parameter"), std::string::npos) << bad.out;
}

// Fail closed with a real PostgreSQL that stops, and recover when it
// returns: two replicas on it, each refusing (503, /readyz not ready) and
// each coming back by itself.
TEST(Audit, StoppedPostgresFailsClosedAndRecovers) {
  ScratchPostgres pg("pg");
  ASSERT_TRUE(pg.started) << pg.output;
  auto [gw, url] = E().StartGateway("pggw", pg.store);
  ASSERT_FALSE(url.empty()) << gw->output();
  auto [gw_b, url_b] = E().StartGateway("pggw-b", pg.store);
  ASSERT_FALSE(url_b.empty()) << gw_b->output();
  struct Replica {
    std::string url, ca;
  };
  const std::vector<Replica> replicas = {{url, (E().dir / "pggw-" / "pki" / "ca.crt").string()},
                                         {url_b, (E().dir / "pggw-b-" / "pki" / "ca.crt").string()}};
  auto get = [&](const Replica& r) {
    Process p({Kubectl("1.32"), "--kubeconfig", "/dev/null", "--server", r.url, "--certificate-authority", r.ca,
               "--token", "alice-secret-token", "get", "configmaps", "-n", "kube-system"});
    int code = p.Finish();
    return RunResult{code, p.output()};
  };
  auto ready = [&](const Replica& r) {
    Process p({"/usr/bin/curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", r.ca, r.url + "/readyz"});
    p.Finish();
    return p.output();
  };
  for (const Replica& r : replicas) ASSERT_EQ(get(r).code, 0);
  Process stop({"/bin/bash", pg.script, "stop", pg.dir});
  ASSERT_EQ(stop.Finish(), 0) << stop.output();
  std::size_t received = E().Received("").size();
  for (const Replica& r : replicas) {
    RunResult refused = get(r);
    EXPECT_NE(refused.code, 0) << r.url;
    EXPECT_NE(refused.out.find("cannot write its audit log"), std::string::npos) << refused.out;
    EXPECT_EQ(ready(r), "503") << r.url;
  }
  EXPECT_EQ(E().Received("").size(), received) << "a request reached the cluster without a committed record";
  Process restart({"/bin/bash", pg.script, "start", pg.dir});
  ASSERT_EQ(restart.Finish(), 0) << restart.output();
  // The first write after the restart may find the old connection dead and
  // fail closed once; the next reconnects.
  for (const Replica& r : replicas) {
    bool recovered = false;
    for (int i = 0; i < 10 && !recovered; ++i) recovered = get(r).code == 0;
    EXPECT_TRUE(recovered) << r.url;
    EXPECT_EQ(ready(r), "200") << r.url;
  }
  std::string cfg = (E().dir / "pggw.yaml").string();
  RunResult v = RunKubegate({"audit", "verify", "--config", cfg});
  EXPECT_EQ(v.code, 0) << v.out;
  EXPECT_NE(v.out.find("postgres:"), std::string::npos) << v.out;
  gw.reset();
  gw_b.reset();
}

// SIGKILL in the middle of load: every request the cluster received has a
// committed decision record, and the chain verifies. With audit.fsync:
// interval too (issue 13): a commit is written to the OS before the request
// is forwarded, so killing kubegate loses nothing; only a power loss could.
// With `survivor`, a second replica on the same store is under load too,
// keeps serving through the kill, and its records are checked as well.
void SigkillUnderLoadLosesNoCommittedRecord(const std::string& name, const std::string& extra, bool survivor = false) {
  auto [gw, url] = E().StartGateway(name, extra);
  ASSERT_FALSE(url.empty()) << gw->output();
  // This test's requests only: an earlier test's gateway, killed the same
  // way, may have requests whose record lines the test server writes late.
  const std::string mark = "sigkill%3D" + name + "&";
  std::size_t before = E().Received(mark).size();
  auto wrk = [](const std::string& at, const std::string& m) {
    return std::make_unique<Process>(std::vector<std::string>{
        "/usr/bin/wrk", "-t2", "-c16", "-d20s", "-H", "Authorization: Bearer alice-secret-token",
        at + "/api/v1/namespaces/default/configmaps?labelSelector=" + m + "limit=500"});
  };
  std::unique_ptr<Process> other, other_load;
  std::string other_url;
  const std::string other_mark = "sigkill%3D" + name + "-b&";
  const std::size_t other_before = E().Received(other_mark).size();
  if (survivor) {
    auto started = E().StartGateway(name + "-b", extra);
    other = std::move(started.first);
    other_url = started.second;
    ASSERT_FALSE(other_url.empty()) << other->output();
    other_load = wrk(other_url, other_mark);
  }
  std::unique_ptr<Process> load_a = wrk(url, mark);
  Process& load = *load_a;
  // Load is flowing once the cluster has seen a hundred requests (polled
  // by counting record lines, which stays cheap as the file grows; the
  // sanitizer build is slower).
  auto lines = [] {
    std::ifstream in(E().dir / "record.jsonl");
    return static_cast<std::size_t>(std::count(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>(), '\n'));
  };
  const std::size_t lines_before = lines();
  for (int i = 0; i < 1200 && lines() < lines_before + 100; ++i) usleep(25 * 1000);
  ASSERT_GE(lines(), lines_before + 100);
  // Two replicas share the file: until this one's own hundred are there.
  for (int i = 0; survivor && i < 300 && E().Received(mark).size() < before + 100; ++i) usleep(100 * 1000);
  gw->Signal(SIGKILL);
  EXPECT_EQ(gw->Finish(), 128 + SIGKILL);
  load.SignalGroup(SIGKILL);
  if (survivor) {
    // The survivor goes on serving after the kill: more of its requests
    // reach the cluster.
    const std::size_t at_kill = E().Received(other_mark).size();
    for (int i = 0; i < 400 && E().Received(other_mark).size() < at_kill + 50; ++i) usleep(25 * 1000);
    EXPECT_GE(E().Received(other_mark).size(), at_kill + 50) << "the surviving replica stopped serving";
    other_load->SignalGroup(SIGKILL);
  }
  std::string cfg = (E().dir / (name + ".yaml")).string();
  std::set<std::string> recorded;
  for (const auto& j : AuditLines(cfg, {})) recorded.insert(j["decision"]["request_id"].get<std::string>());
  auto check = [&](const std::string& m, std::size_t from) {
    auto received = E().Received(m);
    std::size_t checked = 0;
    for (std::size_t i = from; i < received.size(); ++i) {
      std::string id = RequestIdOf(received[i]);
      if (id.empty()) continue;
      checked++;
      EXPECT_TRUE(recorded.count(id)) << "forwarded without a committed record: " << id;
    }
    return checked;
  };
  EXPECT_GE(check(mark, before), 100u);
  if (survivor) {
    EXPECT_GE(check(other_mark, other_before), 100u);
  }
  RunResult v = RunKubegate({"audit", "verify", "--config", cfg});
  EXPECT_EQ(v.code, 0) << v.out;
  EXPECT_NE(v.out.find("audit chain OK"), std::string::npos) << v.out;
  if (extra.find("postgres") == std::string::npos) {
    // SQLite: the records were committed to the audit journal (default) or
    // to the database itself (audit.journal: false); the check above read
    // them through `kubegate audit`, which reads both.
    const auto journal = E().dir / (name + "-") / "kubegate.db.audit-journal";
    std::size_t segments = 0;
    std::error_code ec;
    for (const auto& d : std::filesystem::directory_iterator(journal, ec)) segments += d.path().extension() == ".journal";
    if (extra.find("journal: false") == std::string::npos) {
      EXPECT_GE(segments, 1u) << "no audit journal in " << journal;
    } else {
      EXPECT_EQ(segments, 0u) << "audit.journal: false wrote a journal";
    }
  }
}

TEST(Audit, SigkillUnderLoadLosesNoCommittedRecord) { SigkillUnderLoadLosesNoCommittedRecord("killgw", ""); }

// The same without the journal: each group commit is a SQLite transaction.
TEST(Audit, SigkillUnderLoadLosesNoCommittedRecordWithoutTheJournal) {
  SigkillUnderLoadLosesNoCommittedRecord("killgw-nojournal", "audit: {journal: false}\n");
}

// Two replicas on one PostgreSQL under load, one SIGKILLed (issue 15): the
// other keeps serving, nothing either forwarded lacks its record, and the
// one chain both wrote verifies.
TEST(Audit, ReplicaSigkilledUnderLoadLosesNoCommittedRecord) {
  ScratchPostgres pg("pgsigkill");
  ASSERT_TRUE(pg.started) << pg.output;
  SigkillUnderLoadLosesNoCommittedRecord("killrep", pg.store, true);
}

TEST(Audit, SigkillUnderLoadLosesNoRecordWithIntervalFsync) {
  // A long interval: the kill lands before any sync of the last commits.
  SigkillUnderLoadLosesNoCommittedRecord("killgw-interval", "audit: {fsync: interval, fsync_interval: 10s}\n");
}

}  // namespace
}  // namespace e2e
