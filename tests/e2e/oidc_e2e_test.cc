// People through their identity provider: a real OpenID provider (npm
// oidc-provider, tests/oidc/idp.mjs) on loopback HTTPS, real kubectl with
// the ID tokens it signs, and negative-case tokens made with Debian's
// python3-jwt (tests/oidc/forge.py).
#include "e2e_env.h"

namespace e2e {
namespace {

// A provider and a gateway that accepts its ID tokens. Get() is the one
// the tests of this file share (each leaves it as it found it: up, same
// key); a test that rotates keys makes its own.
class Idp {
 public:
  static Idp& Get() {
    static Idp idp("oidc", "");
    return idp;
  }

  std::string issuer, gateway_url, gateway_config;
  std::unique_ptr<Process> node, gateway;

  fs::path PrivateJwks() const { return E().dir / (name_ + "-idp-private.json"); }

  // A request to the provider's test control path.
  std::string Control(const std::string& method, const std::string& path) {
    Process p({"/usr/bin/curl", "-s", "-X", method, "--cacert", (E().dir / "ts" / "pki" / "ca.crt").string(),
               issuer + path});
    p.Finish();
    return p.output();
  }
  std::string Mint(const std::string& sub, const std::string& groups) {
    return Control("GET", "/__test/mint?sub=" + sub + "&groups=" + groups);
  }
  std::string Forge(const std::string& c, const std::string& sub = "mallory") {
    Process p({"/usr/bin/python3", std::string(kSourceDir) + "/tests/oidc/forge.py", "--private-jwks",
               PrivateJwks().string(), "--issuer", issuer, "--case", c, "--sub", sub});
    p.Finish();
    return p.output();
  }

  // A kubeconfig for the gateway holding `token`.
  std::string Kubeconfig(const std::string& name, const std::string& token) {
    std::string token_file = WriteFile(name + ".idtoken", token);
    std::string out = (E().dir / (name + ".kubeconfig")).string();
    Process p({std::string(kBuildDir) + "/src/kubegate", "kubeconfig", "--user", name, "--server", gateway_url,
               "--ca-file", (E().dir / (name_ + "-") / "pki" / "ca.crt").string(), "--token-file", token_file, "-o",
               out});
    EXPECT_EQ(p.Finish(), 0) << p.output();
    return out;
  }

  // GET `path` on the gateway with `token`: "CODE\nBODY".
  std::string Call(const std::string& token, const std::string& path) {
    Process p({"/usr/bin/curl", "-s", "-w", "\n%{http_code}", "--cacert",
               (E().dir / (name_ + "-") / "pki" / "ca.crt").string(), "-H", "Authorization: Bearer " + token,
               gateway_url + path});
    p.Finish();
    std::string out = p.output();
    return out.substr(out.rfind('\n') + 1) + "\n" + out.substr(0, out.rfind('\n'));
  }

  // kubegate_authentication_failures_total{reason="..."} now.
  double Failures(const std::string& reason) {
    std::string metrics = Call(ReadAll(E().dir / "alice.token"), "/metrics");
    std::string key = "kubegate_authentication_failures_total{reason=\"" + reason + "\"} ";
    auto at = metrics.find(key);
    return at == std::string::npos ? 0 : std::stod(metrics.substr(at + key.size()));
  }

  // `name` names the gateway's files; `extra` is more YAML for its issuer.
  Idp(const std::string& name, const std::string& extra) : name_(name) {
    fs::path pki = E().dir / "ts" / "pki";
    node = std::make_unique<Process>(std::vector<std::string>{
        "/usr/bin/node", std::string(kSourceDir) + "/tests/oidc/idp.mjs", "--cert", (pki / "server.crt").string(),
        "--key", (pki / "server.key").string(), "--private-jwks-out", PrivateJwks().string()});
    if (!node->WaitFor("idp listening on ")) {
      ADD_FAILURE() << node->output();
      return;
    }
    std::string out = node->output();
    issuer = out.substr(out.find("https://", out.find("idp listening on ")));
    issuer = issuer.substr(0, issuer.find_first_of("\r\n"));
    auto [gw, url] = E().StartGateway(name, "oidc:\n  - issuer: " + issuer +
                                                "\n    audiences: [kubegate]\n    username_claim: email\n"
                                                "    groups_claim: groups\n    groups_prefix: \"oidc:\"\n"
                                                "    ca_file: " + (pki / "ca.crt").string() + "\n" + extra);
    gateway = std::move(gw);
    gateway_url = url;
    gateway_config = (E().dir / (name + ".yaml")).string();
    if (url.empty()) ADD_FAILURE() << gateway->output();
  }

 private:
  std::string name_;
};

// The request the test server received last whose target has `needle`.
json LastReceived(const std::string& needle) {
  auto r = E().Received(needle);
  return r.empty() ? json() : r.back();
}

class Oidc : public ::testing::TestWithParam<std::string> {};

TEST_P(Oidc, KubectlWithAProviderSignedIdTokenActsAsThatPerson) {
  Idp& idp = Idp::Get();
  ASSERT_FALSE(idp.gateway_url.empty());
  std::string who = "oidc-" + std::string(GetParam() == "1.29" ? "a" : "b");
  std::string kc = idp.Kubeconfig(who, idp.Mint(who, "dev,ops"));
  Process p({Kubectl(GetParam()), "--kubeconfig", kc, "get", "pods", "-n", "oidc-" + who, "--request-timeout=20s"});
  ASSERT_EQ(p.Finish(), 0) << p.output() << idp.gateway->output();
  // The cluster sees the person the provider named, with the mapped groups.
  json r = LastReceived("/namespaces/oidc-" + who + "/pods");
  ASSERT_TRUE(r.is_object());
  EXPECT_EQ(r["headers"]["Impersonate-User"][0], who + "@example.com");
  EXPECT_EQ(r["headers"]["Impersonate-Extra-Kubegate-Auth-Method"][0], "oidc");
  auto groups = r["headers"]["Impersonate-Group"];
  EXPECT_NE(std::find(groups.begin(), groups.end(), "oidc:dev"), groups.end()) << groups;
  EXPECT_NE(std::find(groups.begin(), groups.end(), "oidc:ops"), groups.end()) << groups;
  // The audit record says how the caller authenticated, and where.
  std::string id = r["headers"]["Impersonate-Extra-Kubegate-Request-Id"][0];
  Process show({std::string(kBuildDir) + "/src/kubegate", "audit", "show", id, "-o", "json", "--config",
                idp.gateway_config});
  show.Finish();
  json rec = json::parse(show.output(), nullptr, false);
  ASSERT_TRUE(rec.is_object()) << show.output();
  EXPECT_EQ(rec["decision"]["identity"]["auth"], "oidc") << rec;
  EXPECT_EQ(rec["decision"]["identity"]["issuer"], idp.issuer) << rec;
  EXPECT_EQ(rec["decision"]["identity"]["user"], who + "@example.com");
}

INSTANTIATE_TEST_SUITE_P(Kubectl, Oidc, ::testing::Values("1.29", "1.32"));

TEST(OidcTokens, ForgedExpiredAndMisdirectedTokensAre401WithTheirReasonCountedNeverEchoed) {
  Idp& idp = Idp::Get();
  ASSERT_FALSE(idp.gateway_url.empty());
  // A token python3-jwt signs with the provider's own key passes: the
  // cases below fail on their one broken rule, not on the signer.
  EXPECT_EQ(idp.Call(idp.Forge("valid", "pyjwt"), "/api/v1/namespaces/oidc-py/pods").substr(0, 3), "200");
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"expired", "expired"},
      {"wrong_audience", "wrong_audience"},
      {"not_yet_valid", "not_yet_valid"},
      {"alg_none", "algorithm"},
      {"hs256_with_public_key", "algorithm"},
      {"unknown_kid", "unknown_key"},
      {"wrong_issuer", "unknown_token"},  // no configured issuer: not an ID token kubegate knows
      {"oversized", "oversized"},
  };
  std::vector<std::string> tails;
  for (const auto& [c, reason] : cases) {
    std::string token = idp.Forge(c);
    ASSERT_GT(token.size(), 100u) << c << ": " << token;
    double before = idp.Failures(reason);
    std::string answer = idp.Call(token, "/api/v1/namespaces/oidc-forged/pods");
    EXPECT_EQ(answer.substr(0, 3), "401") << c << ": " << answer;
    EXPECT_NE(answer.find("\"kind\":\"Status\""), std::string::npos) << c;
    EXPECT_EQ(answer.find(token.substr(token.size() - 40)), std::string::npos) << c << " echoed the token";
    EXPECT_EQ(idp.Failures(reason), before + 1) << c;
    tails.push_back(token.substr(token.size() - 40));
  }
  // The log names the reason, never the token (the last case's line is
  // written once its answer is sent: waited for, then every token checked).
  EXPECT_TRUE(idp.gateway->WaitFor("\"auth_failure\":\"oversized\""));
  EXPECT_TRUE(idp.gateway->WaitFor("\"auth_failure\":\"expired\""));
  for (const std::string& tail : tails) EXPECT_EQ(idp.gateway->output().find(tail), std::string::npos);
  EXPECT_TRUE(E().Received("/namespaces/oidc-forged/").empty()) << "a refused token reached the cluster";
  // kubectl itself reports the 401 as a login failure.
  std::string kc = idp.Kubeconfig("oidc-expired", idp.Forge("expired"));
  Process p({Kubectl("1.32"), "--kubeconfig", kc, "get", "pods", "-n", "oidc-forged"});
  EXPECT_NE(p.Finish(), 0);
  EXPECT_NE(p.output().find("You must be logged in to the server"), std::string::npos) << p.output();
}

TEST(OidcTokens, UnknownKidsMakeAtMostOneKeyFetchPerInterval) {
  Idp& idp = Idp::Get();
  ASSERT_FALSE(idp.gateway_url.empty());
  auto served = [&] { return json::parse(idp.Control("GET", "/__test/stats"))["jwks_served"].get<int>(); };
  // Keys fetched (a valid token passes) before counting.
  ASSERT_EQ(idp.Call(idp.Mint("kid-burst", "dev"), "/api/v1/namespaces/oidc-burst/pods").substr(0, 3), "200");
  int before = served();
  for (int i = 0; i < 6; ++i) {
    EXPECT_EQ(idp.Call(idp.Forge("unknown_kid"), "/api/v1/namespaces/oidc-burst/pods").substr(0, 3), "401");
  }
  // The default interval is 10 s: six unknown kids within it fetch once.
  EXPECT_LE(served() - before, 1);
}

TEST(OidcTokens, ARotatedKeyIsPickedUpWithoutRestartAndAnOutageKeepsCachedKeys) {
  // A provider and gateway of its own (it rotates the provider's key), the
  // gateway refreshing on every unknown kid (interval 0), so this test does
  // not depend on what the others did within 10 s.
  Idp idp("oidc-rot", "    unknown_kid_refresh_interval: 0s\n");
  ASSERT_FALSE(idp.gateway_url.empty());
  auto call = [&](const std::string& token) {
    return idp.Call(token, "/api/v1/namespaces/oidc-rot/pods").substr(0, 3);
  };
  // The first token waits for the keys the gateway fetches at start.
  std::string before = idp.Mint("rot", "dev");
  ASSERT_EQ(call(before), "200") << idp.gateway->output();
  // The provider rotates its key and stops publishing the old one. The
  // first token with the new kid makes kubegate refresh, and passes; the
  // old key went with that refresh.
  ASSERT_FALSE(idp.Control("POST", "/__test/rotate").empty());
  std::string after = idp.Mint("rot", "dev");
  EXPECT_EQ(call(after), "200") << idp.gateway->output();
  EXPECT_EQ(call(before), "401");
  // The provider is down: the keys kubegate holds keep working; a kid it
  // has never seen cannot be verified, so it is refused.
  idp.Control("POST", "/__test/down");
  EXPECT_EQ(call(after), "200");
  EXPECT_EQ(call(idp.Forge("unknown_kid")), "401");
  idp.Control("POST", "/__test/up");
  EXPECT_TRUE(idp.gateway->WaitFor("cannot refresh the signing keys"));
}

// `kubegate login` as kubectl's credential plugin, under a real terminal:
// kubectl runs it, it prints the device-flow URL and code (kubectl shows
// them), the person approves at the provider (here: the test, through the
// provider's test control path), and kubectl goes on with the ID token.
class OidcLogin : public ::testing::TestWithParam<std::string> {};

TEST_P(OidcLogin, KubectlSignsInThroughTheDeviceFlowThenUsesTheCache) {
  Idp& idp = Idp::Get();
  ASSERT_FALSE(idp.gateway_url.empty());
  std::string v = GetParam();
  std::string who = "login-" + v.substr(2);
  fs::path home = E().dir / ("home-" + who);
  fs::create_directories(home);
  std::string kc = (E().dir / (who + ".kubeconfig")).string();
  Process mk({std::string(kBuildDir) + "/src/kubegate", "kubeconfig", "--user", who, "--server", idp.gateway_url,
              "--ca-file", (E().dir / "oidc-" / "pki" / "ca.crt").string(), "--oidc-issuer", idp.issuer,
              "--oidc-client-id", "kubegate", "--oidc-ca-file", (E().dir / "ts" / "pki" / "ca.crt").string(), "-o",
              kc});
  ASSERT_EQ(mk.Finish(), 0) << mk.output();
  fs::path rc = E().dir / (who + ".rc");
  std::string ns = "oidc-" + who;
  std::string cmd = "HOME=" + home.string() + " " + Kubectl(v) + " --kubeconfig " + kc + " get pods -n " + ns +
                    "; echo $? > " + rc.string() + "; sleep 30";
  std::string session = "kgl" + std::to_string(getpid()) + v.substr(2);
  auto tmux = [&](std::vector<std::string> args) {
    args.insert(args.begin(), "/usr/bin/tmux");
    Process p(args);
    p.Finish();
    return p.output();
  };
  tmux({"new-session", "-d", "-s", session, "-x", "200", "-y", "40", cmd});
  std::string pane;
  for (int i = 0; i < 300 && pane.find("enter the code ") == std::string::npos; ++i) {  // polled, ~30 s bound
    pane = tmux({"capture-pane", "-p", "-t", session});
    if (pane.find("enter the code ") == std::string::npos) usleep(100 * 1000);
  }
  ASSERT_NE(pane.find("To sign in to kubegate, open " + idp.issuer + "/device"), std::string::npos) << pane;
  std::string code = pane.substr(pane.find("enter the code ") + 15, 9);
  EXPECT_EQ(idp.Control("POST", "/__test/approve-device?user_code=" + code + "&sub=" + who + "&groups=dev"),
            "approved");
  bool done = false;
  for (int i = 0; i < 300 && !done; ++i) {  // the plugin polls every 5 s (RFC 8628's default)
    done = fs::exists(rc) && !ReadAll(rc).empty();
    if (!done) usleep(100 * 1000);
  }
  pane = tmux({"capture-pane", "-p", "-t", session});
  tmux({"kill-session", "-t", session});
  ASSERT_TRUE(done) << pane;
  EXPECT_EQ(ReadAll(rc), "0\n") << pane;
  json r = LastReceived("/namespaces/" + ns + "/pods");
  ASSERT_TRUE(r.is_object());
  EXPECT_EQ(r["headers"]["Impersonate-User"][0], who + "@example.com");
  EXPECT_EQ(r["headers"]["Impersonate-Extra-Kubegate-Auth-Method"][0], "oidc");
  // The tokens are kept owner-only; the next kubectl uses them silently.
  fs::path cache = home / ".kube" / "cache" / "kubegate";
  ASSERT_TRUE(fs::exists(cache)) << pane;
  for (const auto& f : fs::directory_iterator(cache)) {
    EXPECT_EQ(f.status().permissions() & fs::perms::all, fs::perms::owner_read | fs::perms::owner_write);
  }
  Process again({"/usr/bin/env", "HOME=" + home.string(), Kubectl(v), "--kubeconfig", kc, "get", "pods", "-n", ns});
  EXPECT_EQ(again.Finish(), 0) << again.output();
  EXPECT_EQ(again.output().find("enter the code"), std::string::npos) << again.output();
}

TEST_P(OidcLogin, KubectlSignsInThroughTheCodeFlowWithPkce) {
  Idp& idp = Idp::Get();
  ASSERT_FALSE(idp.gateway_url.empty());
  std::string v = GetParam();
  std::string who = "pkce-" + v.substr(2);
  fs::path home = E().dir / ("home-" + who);
  fs::create_directories(home);
  std::string kc = (E().dir / (who + ".kubeconfig")).string();
  std::string ca = (E().dir / "ts" / "pki" / "ca.crt").string();
  Process mk({std::string(kBuildDir) + "/src/kubegate", "kubeconfig", "--user", who, "--server", idp.gateway_url,
              "--ca-file", (E().dir / "oidc-" / "pki" / "ca.crt").string(), "--oidc-issuer", idp.issuer,
              "--oidc-client-id", "kubegate", "--oidc-ca-file", ca, "--oidc-flow", "code", "-o", kc});
  ASSERT_EQ(mk.Finish(), 0) << mk.output();
  std::string ns = "oidc-" + who;
  Process kubectl({"/usr/bin/env", "HOME=" + home.string(), Kubectl(v), "--kubeconfig", kc, "get", "pods", "-n", ns});
  ASSERT_TRUE(kubectl.WaitFor("code_challenge_method=S256")) << kubectl.output();
  std::string out = kubectl.output();
  std::size_t at = out.find(idp.issuer + "/auth?");
  std::string url = out.substr(at, out.find_first_of(" \r\n", at) - at);
  Process browser({"/bin/bash", std::string(kSourceDir) + "/tests/oidc/browse.sh", ca, url, who});
  EXPECT_EQ(browser.Finish(), 0) << browser.output();
  EXPECT_NE(browser.output().find("Signed in to kubegate"), std::string::npos) << browser.output();
  ASSERT_EQ(kubectl.Finish(), 0) << kubectl.output();
  json r = LastReceived("/namespaces/" + ns + "/pods");
  ASSERT_TRUE(r.is_object());
  EXPECT_EQ(r["headers"]["Impersonate-User"][0], who + "@example.com");
}

INSTANTIATE_TEST_SUITE_P(Kubectl, OidcLogin, ::testing::Values("1.29", "1.32"));

}  // namespace
}  // namespace e2e
