// The manifests under deploy/ (issue 15 item 6): accepted by an API
// server's dry run through kubegate with real kubectl, and holding what a
// platform team relies on: exactly the RBAC kubegate needs, a config this
// binary reads, a shutdown that fits the pod's grace period, and a locked-
// down pod. The test server checks kinds, names and namespaces, not every
// field of every schema (docs/testing.md).
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
