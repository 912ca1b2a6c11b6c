// Agents in the cluster use the token they already have: ServiceAccount
// tokens made with real kubectl (`kubectl create token`, a TokenRequest, as
// the kubelet makes a pod's projected token) against the test server, used
// through kubegate, which asks the API server with a TokenReview.
#include "e2e_env.h"

namespace e2e {
namespace {

// kubectl straight at the test server with the cluster-admin credential
// only kubegate holds in real use (here: the test plays the cluster admin
// and the kubelet).
RunResult Admin(const std::vector<std::string>& args);

// A namespace (once) and a ServiceAccount in it, as a cluster admin would.
bool CreateServiceAccount(const std::string& ns, const std::string& name) {
  (void)Admin({"create", "namespace", ns});  // may exist already
  RunResult r = Admin({"create", "serviceaccount", name, "-n", ns});
  EXPECT_EQ(r.code, 0) << r.out;
  return r.code == 0;
}

RunResult Admin(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {Kubectl("1.32"), "--kubeconfig", (E().dir / "upstream.kubeconfig").string()};
  argv.insert(argv.end(), args.begin(), args.end());
  Process p(argv);
  int code = p.Finish();
  return {code, p.output()};
}

std::string CreateToken(const std::string& ns, const std::string& name, const std::string& audience) {
  std::vector<std::string> args = {"create", "token", name, "-n", ns, "--duration", "20m"};
  if (!audience.empty()) args.insert(args.end(), {"--audience", audience});
  RunResult r = Admin(args);
  EXPECT_EQ(r.code, 0) << r.out;
  std::string t = r.out;
  while (!t.empty() && (t.back() == '\n' || t.back() == '\r')) t.pop_back();
  return t;
}

struct SaGateway {
  std::unique_ptr<Process> process;
  std::string url, name;
  std::string Ca() const { return (E().dir / (name + "-") / "pki" / "ca.crt").string(); }
  std::string Kubeconfig(const std::string& who, const std::string& token) const {
    std::string out = (E().dir / (name + "-" + who + ".kubeconfig")).string();
    Process p({std::string(kBuildDir) + "/src/kubegate", "kubeconfig", "--user", who, "--server", url, "--ca-file",
               Ca(), "--token-file", WriteFile(name + "-" + who + ".satoken", token), "-o", out});
    EXPECT_EQ(p.Finish(), 0) << p.output();
    return out;
  }
  // GET with `token`: the HTTP status.
  std::string Status(const std::string& token, const std::string& path) const {
    Process p({"/usr/bin/curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", Ca(), "-H",
               "Authorization: Bearer " + token, url + path});
    p.Finish();
    return p.output();
  }
};

SaGateway Start(const std::string& name, const std::string& upstream_kubeconfig = "") {
  SaGateway g;
  g.name = name;
  auto [p, url] = E().StartGateway(name,
                                   "service_accounts:\n  enabled: true\n  audiences: [kubegate]\n  cache_ttl: 3s\n"
                                   "  humans: [\"sa-ci/*\"]\n",
                                   upstream_kubeconfig);
  g.process = std::move(p);
  g.url = url;
  return g;
}

class ServiceAccounts : public ::testing::TestWithParam<std::string> {};

TEST_P(ServiceAccounts, APodsTokenActsAsItsServiceAccountThroughKubectl) {
  SaGateway gw = Start("sa-" + GetParam());
  ASSERT_FALSE(gw.url.empty()) << gw.process->output();
  std::string ns = "sa-apps-" + std::string(GetParam() == "1.29" ? "a" : "b");
  ASSERT_TRUE(CreateServiceAccount(ns, "deployer"));
  std::string token = CreateToken(ns, "deployer", "kubegate");
  Process p({Kubectl(GetParam()), "--kubeconfig", gw.Kubeconfig("deployer", token), "get", "configmaps", "-n", ns});
  ASSERT_EQ(p.Finish(), 0) << p.output() << gw.process->output();
  auto got = E().Received("/namespaces/" + ns + "/configmaps");
  ASSERT_FALSE(got.empty());
  const json& h = got.back()["headers"];
  EXPECT_EQ(h["Impersonate-User"][0], "system:serviceaccount:" + ns + ":deployer");
  EXPECT_EQ(h["Impersonate-Extra-Kubegate-Auth-Method"][0], "serviceaccount");
  std::vector<std::string> groups = h["Impersonate-Group"];
  EXPECT_NE(std::find(groups.begin(), groups.end(), "system:serviceaccounts:" + ns), groups.end());
  // kubegate asked with its own credential, the token and its audience; the
  // token never went upstream as a credential.
  auto reviews = E().Received("/apis/authentication.k8s.io/v1/tokenreviews");
  ASSERT_FALSE(reviews.empty());
  json spec = json::parse(reviews.back().value("body", "{}"))["spec"];
  EXPECT_EQ(spec["audiences"], json({"kubegate"}));
  EXPECT_EQ(got.back()["headers"].dump().find(token.substr(token.size() - 30)), std::string::npos);
  std::string id = h["Impersonate-Extra-Kubegate-Request-Id"][0];
  Process show({std::string(kBuildDir) + "/src/kubegate", "audit", "show", id, "-o", "json", "--config",
                (E().dir / (gw.name + ".yaml")).string()});
  show.Finish();
  json rec = json::parse(show.output(), nullptr, false);
  ASSERT_TRUE(rec.is_object()) << show.output();
  EXPECT_EQ(rec["decision"]["identity"]["auth"], "serviceaccount");
  EXPECT_EQ(rec["decision"]["identity"]["kind"], "agent");
}

INSTANTIATE_TEST_SUITE_P(Kubectl, ServiceAccounts, ::testing::Values("1.29", "1.32"));

TEST(ServiceAccountTokens, ReviewsAreCachedBoundToTheAudienceAndEndWithTheServiceAccount) {
  SaGateway gw = Start("sa-cache");
  ASSERT_FALSE(gw.url.empty()) << gw.process->output();
  ASSERT_TRUE(CreateServiceAccount("sa-cache", "worker"));
  ASSERT_TRUE(CreateServiceAccount("sa-ci", "runner"));
  std::string token = CreateToken("sa-cache", "worker", "kubegate");
  // Five requests within the cache TTL: one review.
  std::size_t before = E().Received("/tokenreviews").size();
  for (int i = 0; i < 5; ++i) EXPECT_EQ(gw.Status(token, "/api/v1/namespaces/sa-cache/pods"), "200");
  EXPECT_EQ(E().Received("/tokenreviews").size() - before, 1u);
  // A token for the API server's own audience is not for kubegate.
  EXPECT_EQ(gw.Status(CreateToken("sa-cache", "worker", ""), "/api/v1/namespaces/sa-cache/pods"), "401");
  // A ServiceAccount a pattern names is human.
  std::string ci = CreateToken("sa-ci", "runner", "kubegate");
  ASSERT_EQ(gw.Status(ci, "/api/v1/namespaces/sa-ci/pods"), "200");
  EXPECT_TRUE(gw.process->WaitFor("\"user\":\"system:serviceaccount:sa-ci:runner\",\"groups\":["));
  EXPECT_TRUE(gw.process->WaitFor("\"kind\":\"human\",\"auth\":\"serviceaccount\""));
  // The ServiceAccount is deleted: its tokens stop working once the cached
  // answer (3 s) runs out: polled, bounded.
  ASSERT_EQ(Admin({"delete", "serviceaccount", "worker", "-n", "sa-cache"}).code, 0);
  std::string status;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  while ((status = gw.Status(token, "/api/v1/namespaces/sa-cache/pods")) == "200" &&
         std::chrono::steady_clock::now() < deadline) {
  }
  EXPECT_EQ(status, "401");
  EXPECT_TRUE(gw.process->WaitFor("\"auth_failure\":\"token_review_refused\""));
}

TEST(ServiceAccountTokens, AnUnreachableApiServerFailsClosedWith503) {
  // An upstream nobody listens on: kubegate cannot review the token.
  std::string port = ClosedLoopbackPort();
  std::string kc = ReadAll(E().dir / "upstream.kubeconfig");
  std::size_t at = kc.find("server: https://127.0.0.1:");
  ASSERT_NE(at, std::string::npos) << kc;
  std::size_t end = kc.find('\n', at);
  kc.replace(at, end - at, "server: https://127.0.0.1:" + port);
  SaGateway gw = Start("sa-down", WriteFile("dead-upstream.kubeconfig", kc));
  ASSERT_FALSE(gw.url.empty()) << gw.process->output();
  ASSERT_TRUE(CreateServiceAccount("sa-down", "lonely"));
  std::string token = CreateToken("sa-down", "lonely", "kubegate");
  EXPECT_EQ(gw.Status(token, "/api/v1/namespaces/sa-down/pods"), "503");
  EXPECT_TRUE(gw.process->WaitFor("\"auth_failure\":\"token_review_failed\""));
}

}  // namespace
}  // namespace e2e
