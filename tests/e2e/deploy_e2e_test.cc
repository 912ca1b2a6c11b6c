// The manifests under deploy/ (issue 15 item 6): accepted by an API
// server's dry run through kubegate with real kubectl, and holding what a
// platform team relies on: exactly the RBAC kubegate needs, a config this
// binary reads, a shutdown that fits the pod's grace period, and a locked-
// down pod. The test server checks kinds, names and namespaces, not every
// field of every schema (docs/testing.md).
#include <unistd.h>

#include <set>

#include "e2e_env.h"

namespace e2e {
namespace {

const std::string kDeployDir = std::string(kSourceDir) + "/deploy";

// Every object in deploy/, as kubectl reads the files (client side).
std::vector<json> DeployObjects() {
  std::string kc = (E().dir / "alice.kubeconfig").string();
  Process p({Kubectl("1.32"), "--kubeconfig", kc, "create", "--dry-run=client", "-f", kDeployDir, "-o", "json"});
  EXPECT_EQ(p.Finish(), 0) << p.output();
  std::vector<json> out;
  std::istringstream in(p.output());
  while ((in >> std::ws).peek() != EOF) {
    json j;
    in >> j;  // kubectl prints one JSON document per object
    out.push_back(j);
  }
  return out;
}

const json* Find(const std::vector<json>& objs, const std::string& kind, const std::string& name) {
  for (const auto& o : objs) {
    if (o["kind"] == kind && o["metadata"]["name"] == name) return &o;
  }
  return nullptr;
}

TEST(Deploy, TheManifestsPassAServerDryRunThroughKubegate) {
  // The objects' namespace exists (a dry run of it creates nothing).
  RunResult ns = E().Run("1.32", {"create", "namespace", "kubegate"});
  ASSERT_EQ(ns.code, 0) << ns.out;
  // The policy ConfigMap is made from the shipped policy, as docs/deployment.md says.
  RunResult policy = E().Run("1.32", {"-n", "kubegate", "create", "configmap", "kubegate-policy",
                                      "--from-file=policy.yaml=" + std::string(kSourceDir) + "/examples/policy.yaml",
                                      "--dry-run=server"});
  EXPECT_EQ(policy.code, 0) << policy.out;
  RunResult applied = E().Run("1.32", {"apply", "--dry-run=server", "--validate=strict", "-f", kDeployDir});
  ASSERT_EQ(applied.code, 0) << applied.out;
  for (const char* o : {"serviceaccount/kubegate", "clusterrole.rbac.authorization.k8s.io/kubegate",
                        "clusterrolebinding.rbac.authorization.k8s.io/kubegate", "configmap/kubegate-config",
                        "deployment.apps/kubegate", "service/kubegate", "poddisruptionbudget.policy/kubegate",
                        "persistentvolumeclaim/kubegate-recordings", "networkpolicy.networking.k8s.io/kubegate"}) {
    EXPECT_NE(applied.out.find(std::string(o) + " created (server dry run)"), std::string::npos) << o << "\n"
                                                                                                   << applied.out;
  }
  // Nothing but the namespace was written.
  for (const auto& r : E().Received("kubegate")) {
    if (r["method"] == "GET" || r["target"].get<std::string>() == "/api/v1/namespaces") continue;
    EXPECT_TRUE(ReadsAsDryRun(r)) << r.dump();
  }
}

// node tests/k8s-schemas/validate.mjs over `objs`: its exit code and output.
std::pair<int, std::string> SchemaCheck(const std::vector<json>& objs, const std::string& name) {
  std::string file = WriteFile(name, json(objs).dump());
  Process p({"/bin/sh", "-c", "exec node " + std::string(kSourceDir) + "/tests/k8s-schemas/validate.mjs < " + file});
  int code = p.Finish();
  return {code, p.output()};
}

// Field by field against models generated from the Kubernetes OpenAPI (the
// test server's own OpenAPI only names the kinds): every field one its kind
// defines, with its JSON type, required fields present. The same check
// refuses a manifest with a misspelt field, a wrong type or a missing one.
TEST(Deploy, TheManifestsMatchTheKubernetesSchemasFieldByField) {
  std::vector<json> objs = DeployObjects();
  ASSERT_GE(objs.size(), 10u);
  auto [code, out] = SchemaCheck(objs, "deploy-objects.json");
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find(std::to_string(objs.size()) + " objects, 0 problems"), std::string::npos) << out;

  std::vector<json> bad = objs;
  for (auto& o : bad) {
    if (o["kind"] != "Deployment") continue;
    json& c = o["spec"]["template"]["spec"]["containers"][0];
    c["readOnlyRootFilesystem"] = true;       // belongs in securityContext
    c["resources"]["requests"]["cpu"] = 1;    // a quantity is a string
    o["spec"].erase("selector");              // required
  }
  auto [bad_code, bad_out] = SchemaCheck(bad, "deploy-objects-bad.json");
  EXPECT_EQ(bad_code, 1) << bad_out;
  EXPECT_NE(bad_out.find("containers[0].readOnlyRootFilesystem: unknown field"), std::string::npos) << bad_out;
  EXPECT_NE(bad_out.find("resources.requests.cpu: expected a string"), std::string::npos) << bad_out;
  EXPECT_NE(bad_out.find("required property selector"), std::string::npos) << bad_out;
}

// A blob of an OCI layout, by its digest ("sha256:HEX").
fs::path BlobPath(const fs::path& layout, const std::string& digest) {
  return layout / "blobs" / "sha256" / digest.substr(digest.find(':') + 1);
}

// "sha256:HEX" of a file's contents, by coreutils' sha256sum.
std::string DigestOf(const fs::path& file) {
  Process p({"/usr/bin/sha256sum", file.string()});
  p.Finish();
  return "sha256:" + p.output().substr(0, 64);
}

// The image scripts/build-image.sh writes (an OCI layout; no container
// engine runs here): every blob matches its digest, it runs as the
// Deployment's user, and its one layer, unpacked and entered with chroot as
// user 65532 and the Deployment's own arguments, serves kubectl.
TEST(Deploy, TheImageServesKubectlAsTheDeploymentRunsIt) {
  if (::geteuid() != 0) GTEST_SKIP() << "chroot needs root";
  {
    // A sanitizer build reads /proc to find its stacks, and an unpacked
    // image entered with chroot has no /proc: the image is built from the
    // ordinary build, and this test runs there.
    Process ldd({"/usr/bin/ldd", std::string(kBuildDir) + "/src/kubegate"});
    ldd.Finish();
    if (ldd.output().find("libasan") != std::string::npos) GTEST_SKIP() << "a sanitizer build cannot run without /proc";
  }
  const fs::path layout = E().dir / "image";
  Process build({"/bin/bash", std::string(kSourceDir) + "/scripts/build-image.sh", layout.string(),
                 std::string(kBuildDir) + "/src/kubegate", "test"});
  ASSERT_EQ(build.Finish(), 0) << build.output();
  json index = json::parse(ReadAll(layout / "index.json"), nullptr, false);
  ASSERT_TRUE(index.is_object());
  ASSERT_EQ(index["manifests"].size(), 1u);
  const std::string manifest_digest = index["manifests"][0]["digest"];
  EXPECT_EQ(DigestOf(BlobPath(layout, manifest_digest)), manifest_digest);
  json manifest = json::parse(ReadAll(BlobPath(layout, manifest_digest)));
  const std::string config_digest = manifest["config"]["digest"];
  EXPECT_EQ(DigestOf(BlobPath(layout, config_digest)), config_digest);
  json config = json::parse(ReadAll(BlobPath(layout, config_digest)));
  EXPECT_EQ(config["config"]["User"], "65532:65532");
  EXPECT_EQ(config["config"]["Entrypoint"], json::parse(R"(["/usr/bin/kubegate"])"));
  ASSERT_EQ(manifest["layers"].size(), 1u);
  const std::string layer_digest = manifest["layers"][0]["digest"];
  EXPECT_EQ(DigestOf(BlobPath(layout, layer_digest)), layer_digest);

  // The layer as the kubelet would unpack it, with what the Deployment mounts.
  const fs::path root = E().dir / "image-root";
  fs::create_directories(root);
  Process untar({"/bin/tar", "-xzf", BlobPath(layout, layer_digest).string(), "-C", root.string()});
  ASSERT_EQ(untar.Finish(), 0) << untar.output();
  const std::vector<json> objs = DeployObjects();
  const json* dep = Find(objs, "Deployment", "kubegate");
  ASSERT_TRUE(dep);
  const json& container = (*dep)["spec"]["template"]["spec"]["containers"][0];
  EXPECT_EQ((*dep)["spec"]["template"]["spec"]["securityContext"]["runAsUser"], 65532);
  std::vector<std::string> args = container["args"];
  ASSERT_GE(args.size(), 3u);
  ASSERT_EQ(args[1], "--config");
  // Its config at the path the Deployment names, with the test server as
  // the cluster; its data on a directory the user owns (an emptyDir there).
  fs::create_directories(root / fs::path(args[2]).parent_path().relative_path());
  fs::create_directories(root / "var/lib/kubegate");
  ASSERT_EQ(::chown((root / "var/lib/kubegate").c_str(), 65532, 65532), 0);
  // The cluster credential, readable by the pod's user only (a Secret's defaultMode 0400 there).
  fs::copy_file(E().dir / "upstream.kubeconfig", root / "var/lib/kubegate/upstream.kubeconfig");
  ASSERT_EQ(::chown((root / "var/lib/kubegate/upstream.kubeconfig").c_str(), 65532, 65532), 0);
  Process hash({std::string(kBuildDir) + "/src/kubegate", "token", "hash", "--token-file",
                (E().dir / "alice.token").string()});
  ASSERT_EQ(hash.Finish(), 0);
  std::ofstream(root / fs::path(args[2]).relative_path())
      << "listen: {address: 127.0.0.1, port: 0}\n"
      << "data_dir: /var/lib/kubegate\n"
      << "upstream: {kubeconfig: /var/lib/kubegate/upstream.kubeconfig}\n"
      << "tokens:\n  - {user: alice, kind: human, token_sha256: " << hash.output().substr(0, 64) << "}\n";
  std::vector<std::string> argv = {"/usr/sbin/chroot", "--userspec=65532:65532", root.string(), "/usr/bin/kubegate"};
  argv.insert(argv.end(), args.begin(), args.end());
  Process gw(argv);
  ASSERT_TRUE(gw.WaitFor("kubegate listening on")) << gw.output();
  const std::string url = "https://127.0.0.1:" + PortFrom(gw.output().substr(gw.output().find("listening on")));
  const std::string kc = (E().dir / "image-alice.kubeconfig").string();
  Process mk({std::string(kBuildDir) + "/src/kubegate", "kubeconfig", "--user", "alice", "--server", url, "--ca-file",
              (root / "var/lib/kubegate/pki/ca.crt").string(), "--token-file", (E().dir / "alice.token").string(), "-o",
              kc});
  ASSERT_EQ(mk.Finish(), 0) << mk.output();
  Process get({Kubectl("1.32"), "--kubeconfig", kc, "get", "namespace", "default", "-o", "name"});
  EXPECT_EQ(get.Finish(), 0) << get.output() << gw.output();
  EXPECT_NE(get.output().find("namespace/default"), std::string::npos) << get.output();
  gw.Signal(SIGTERM);
  EXPECT_EQ(gw.Finish(), 0) << gw.output();
}

TEST(Deploy, TheManifestsHoldWhatKubegateNeedsAndNoMore) {
  std::vector<json> objs = DeployObjects();
  ASSERT_GE(objs.size(), 10u);

  // RBAC: exactly impersonation of callers and the extras kubegate sends,
  // namespace labels, and token reviews.
  const json* role = Find(objs, "ClusterRole", "kubegate");
  ASSERT_TRUE(role);
  std::set<std::string> granted;
  for (const auto& rule : (*role)["rules"]) {
    for (const auto& g : rule["apiGroups"]) {
      for (const auto& r : rule["resources"]) {
        for (const auto& v : rule["verbs"]) {
          granted.insert(g.get<std::string>() + "/" + r.get<std::string>() + ":" + v.get<std::string>());
        }
      }
    }
  }
  EXPECT_EQ(granted, (std::set<std::string>{"/users:impersonate", "/groups:impersonate", "/serviceaccounts:impersonate",
                                            "authentication.k8s.io/userextras/kubegate-request-id:impersonate",
                                            "authentication.k8s.io/userextras/kubegate-auth-method:impersonate",
                                            "authentication.k8s.io/userextras/kubegate-task:impersonate",
                                            "/namespaces:get", "authentication.k8s.io/tokenreviews:create"}));
  const json* binding = Find(objs, "ClusterRoleBinding", "kubegate");
  ASSERT_TRUE(binding);
  EXPECT_EQ((*binding)["subjects"], json::parse(R"([{"kind":"ServiceAccount","name":"kubegate","namespace":"kubegate"}])"));

  // The config this binary reads, as every replica will.
  const json* cm = Find(objs, "ConfigMap", "kubegate-config");
  ASSERT_TRUE(cm);
  std::string config = WriteFile("deploy-kubegate.yaml", (*cm)["data"]["kubegate.yaml"].get<std::string>());
  Process check({std::string(kBuildDir) + "/src/kubegate", "config", "check", "--config", config});
  EXPECT_EQ(check.Finish(), 0) << check.output();
  EXPECT_NE(check.output().find("valid (store: postgres, upstream: in-cluster)"), std::string::npos) << check.output();
  Process bad({std::string(kBuildDir) + "/src/kubegate", "config", "check", "--config",
               WriteFile("deploy-bad.yaml", "listen: {adress: 0.0.0.0}\n")});
  EXPECT_NE(bad.Finish(), 0) << "config check accepts anything: " << bad.output();

  // The Deployment: replicas, a locked-down pod, probes on kubegate's own
  // endpoints, and a grace period that covers the preStop sleep and the
  // config's shutdown_grace_seconds.
  const json* dep = Find(objs, "Deployment", "kubegate");
  ASSERT_TRUE(dep);
  const json& spec = (*dep)["spec"];
  EXPECT_GE(spec["replicas"].get<int>(), 2);
  EXPECT_EQ(spec["strategy"]["rollingUpdate"]["maxUnavailable"], 0);
  const json& pod = spec["template"]["spec"];
  EXPECT_EQ(pod["serviceAccountName"], "kubegate");
  EXPECT_EQ(pod["securityContext"]["runAsNonRoot"], true);
  const json& c = pod["containers"][0];
  EXPECT_EQ(c["securityContext"]["readOnlyRootFilesystem"], true);
  EXPECT_EQ(c["securityContext"]["allowPrivilegeEscalation"], false);
  EXPECT_EQ(c["securityContext"]["capabilities"]["drop"], json::array({"ALL"}));
  EXPECT_EQ(c["readinessProbe"]["httpGet"]["path"], "/readyz");
  EXPECT_EQ(c["livenessProbe"]["httpGet"]["path"], "/livez");
  EXPECT_TRUE(c["resources"].contains("requests"));
  const std::string yaml = (*cm)["data"]["kubegate.yaml"];
  const auto at = yaml.find("shutdown_grace_seconds: ");
  ASSERT_NE(at, std::string::npos);
  const int grace = std::stoi(yaml.substr(at + 24));
  const int pre_stop = c["lifecycle"]["preStop"]["sleep"]["seconds"];
  EXPECT_GT(pod["terminationGracePeriodSeconds"].get<int>(), pre_stop + grace)
      << "the kubelet would SIGKILL kubegate before its streams may finish";
  // The config file and the policy come from the ConfigMaps mounted where
  // the config says.
  std::set<std::string> mounts;
  for (const auto& m : c["volumeMounts"]) mounts.insert(m["mountPath"].get<std::string>());
  EXPECT_TRUE(mounts.count("/etc/kubegate/config"));
  EXPECT_TRUE(mounts.count("/etc/kubegate/policy"));
  EXPECT_NE(yaml.find("policy_file: /etc/kubegate/policy/policy.yaml"), std::string::npos);

  const json* pdb = Find(objs, "PodDisruptionBudget", "kubegate");
  ASSERT_TRUE(pdb);
  EXPECT_EQ((*pdb)["spec"]["minAvailable"], 1);
  const json* np = Find(objs, "NetworkPolicy", "kubegate");
  ASSERT_TRUE(np);
  EXPECT_EQ((*np)["spec"]["policyTypes"], json::array({"Ingress", "Egress"}));
}

}  // namespace
}  // namespace e2e
