// End-to-end: real kubectl binaries -> kubegate -> kube-testserver, each a
// real process on loopback ports chosen by the kernel. Each test asserts
// kubectl's output and exit code and, where it matters, what the upstream
// received (from the test server's request record).
#include "e2e_env.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace e2e {
namespace {

// kubectl 1.29 (SPDY for exec) and 1.32 (WebSocket) for every plain command.
class KubectlVersions : public ::testing::TestWithParam<std::string> {};

TEST_P(KubectlVersions, GetNamespacesAsTable) {
  auto r = E().Run(GetParam(), {"get", "ns"});
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("kube-system"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("STATUS"), std::string::npos) << r.out;
}

TEST_P(KubectlVersions, CrudLifecycleThroughTheGateway) {
  std::string ns = "crud-" + GetParam().substr(2);
  std::string v = GetParam();
  auto create_ns = E().Run(v, {"create", "-f", WriteFile(ns + ".json", R"({"apiVersion":"v1","kind":"Namespace","metadata":{"name":")" + ns + R"("}})"), "--validate=false"});
  ASSERT_EQ(create_ns.code, 0) << create_ns.out;
  std::string pod = WriteFile(ns + "-pod.json", R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":"web","labels":{"app":"web"}},"spec":{"containers":[{"name":"c","image":"busybox"}]}})");
  auto created = E().Run(v, {"-n", ns, "create", "-f", pod, "--validate=false"});
  EXPECT_EQ(created.code, 0) << created.out;
  EXPECT_NE(created.out.find("pod/web created"), std::string::npos) << created.out;

  auto got = E().Run(v, {"-n", ns, "get", "pods"});
  EXPECT_EQ(got.code, 0);
  EXPECT_NE(got.out.find("web"), std::string::npos) << got.out;
  EXPECT_NE(got.out.find("Running"), std::string::npos) << got.out;

  auto labeled = E().Run(v, {"-n", ns, "label", "pod", "web", "tier=front"});
  EXPECT_EQ(labeled.code, 0) << labeled.out;
  auto merge = E().Run(v, {"-n", ns, "patch", "pod", "web", "--type=merge", "-p", R"({"metadata":{"labels":{"m":"1"}}})"});
  EXPECT_EQ(merge.code, 0) << merge.out;
  auto jsonp = E().Run(v, {"-n", ns, "patch", "pod", "web", "--type=json", "-p", R"([{"op":"add","path":"/metadata/labels/j","value":"2"}])"});
  EXPECT_EQ(jsonp.code, 0) << jsonp.out;
  auto strategic = E().Run(v, {"-n", ns, "patch", "pod", "web", "-p", R"({"metadata":{"labels":{"s":"3"}}})"});
  EXPECT_EQ(strategic.code, 0) << strategic.out;
  auto labels = E().Run(v, {"-n", ns, "get", "pod", "web", "-o", "jsonpath={.metadata.labels}"});
  EXPECT_EQ(labels.code, 0);
  for (const char* want : {R"("tier":"front")", R"("m":"1")", R"("j":"2")", R"("s":"3")"}) {
    EXPECT_NE(labels.out.find(want), std::string::npos) << labels.out;
  }
  EXPECT_EQ(E().Received("/namespaces/" + ns + "/pods/web").size() >= 5, true);

  auto dry = E().Run(v, {"-n", ns, "delete", "pod", "web", "--dry-run=server"});
  EXPECT_EQ(dry.code, 0) << dry.out;
  EXPECT_NE(dry.out.find("(server dry run)"), std::string::npos) << dry.out;
  EXPECT_EQ(E().Run(v, {"-n", ns, "get", "pod", "web"}).code, 0) << "a dry-run delete must not delete";

  auto del = E().Run(v, {"-n", ns, "delete", "pod", "web"});
  EXPECT_EQ(del.code, 0) << del.out;
  EXPECT_NE(del.out.find("pod \"web\" deleted"), std::string::npos) << del.out;
  auto gone = E().Run(v, {"-n", ns, "get", "pod", "web"});
  EXPECT_EQ(gone.code, 1);
  EXPECT_NE(gone.out.find("Error from server (NotFound)"), std::string::npos) << gone.out;

  auto del_ns = E().Run(v, {"delete", "ns", ns, "--wait"});
  EXPECT_EQ(del_ns.code, 0) << del_ns.out;
  EXPECT_NE(del_ns.out.find("namespace \"" + ns + "\" deleted"), std::string::npos) << del_ns.out;
}

TEST_P(KubectlVersions, ScaleDeployment) {
  std::string v = GetParam();
  std::string name = "app-" + v.substr(2);
  auto f = WriteFile(name + ".json", R"({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":")" + name +
                                         R"("},"spec":{"replicas":1,"selector":{"matchLabels":{"a":"b"}},"template":{"metadata":{"labels":{"a":"b"}},"spec":{"containers":[{"name":"c","image":"x"}]}}}})");
  ASSERT_EQ(E().Run(v, {"create", "-f", f, "--validate=false"}).code, 0);
  auto scaled = E().Run(v, {"scale", "deployment", name, "--replicas=3"});
  EXPECT_EQ(scaled.code, 0) << scaled.out;
  auto replicas = E().Run(v, {"get", "deployment", name, "-o", "jsonpath={.spec.replicas}"});
  EXPECT_EQ(replicas.out, "3");
}

TEST_P(KubectlVersions, ImpersonationIsRefused) {
  std::string as = "refused-" + GetParam();
  auto r = E().Run(GetParam(), {"--as=" + as, "get", "pods"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.out.find("Error from server (Forbidden): kubegate: user \"alice\" may not impersonate"), std::string::npos)
      << r.out;
  // Discovery passed (answered as alice), the pods request never reached the upstream as bob.
  for (const auto& req : E().Received("")) {
    auto h = req["headers"];
    if (h.contains("Impersonate-User")) {
      EXPECT_NE(h["Impersonate-User"][0], as);
    }
  }
}

TEST_P(KubectlVersions, MissingAndWrongTokens) {
  std::string ca = (E().dir / "gw" / "pki" / "ca.crt").string();
  // A kubeconfig user must carry some credential or kubectl prompts for a
  // password; a client certificate from a CA kubegate does not trust is
  // not even requested by kubegate's TLS, so the request arrives bare.
  std::string b = kBuildDir;
  fs::path prefix = E().dir / ("nobody-" + GetParam());
  Process issue({b + "/src/kubegate", "cert", "issue", "--ca-dir", (E().dir / "ts" / "pki").string(), "--user",
                 "nobody", "--out", prefix.string()});
  ASSERT_EQ(issue.Finish(), 0) << issue.output();
  Process none({Kubectl(GetParam()), "--kubeconfig", "/dev/null", "--server", E().gateway_url, "--certificate-authority",
                ca, "--client-certificate", prefix.string() + ".crt", "--client-key", prefix.string() + ".key", "get",
                "pods"});
  EXPECT_EQ(none.Finish(), 1);
  EXPECT_NE(none.output().find("error: You must be logged in to the server (no credentials"), std::string::npos)
      << none.output();
  Process wrong({Kubectl(GetParam()), "--kubeconfig", "/dev/null", "--server", E().gateway_url,
                 "--certificate-authority", ca, "--token", "not-a-kubegate-token", "get", "pods"});
  EXPECT_EQ(wrong.Finish(), 1);
  EXPECT_NE(wrong.output().find("error: You must be logged in to the server (invalid bearer token)"), std::string::npos)
      << wrong.output();
}

// 1.29 execs over SPDY/3.1 (POST + Upgrade), 1.32 over WebSocket (GET).
TEST_P(KubectlVersions, ExecExitCodeAndOutput) {
  std::string v = GetParam();
  std::string pod = "shell-" + v.substr(2);
  ASSERT_EQ(E().Run(v, {"run", pod, "--image=busybox", "--restart=Never"}).code, 0);
  auto r = E().Run(v, {"exec", pod, "--", "sh", "-c", "echo from-pod; exit 3"});
  EXPECT_EQ(r.code, 3) << r.out;
  EXPECT_NE(r.out.find("from-pod"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("command terminated with exit code 3"), std::string::npos) << r.out;
  // Recorded: the output, and the exit status from the error channel. (The
  // test server's shell has no stderr; the recorder's own tests cover it.)
  Recorded rec = RecordingOf("/pods/" + pod + "/exec");
  ASSERT_FALSE(rec.summary.is_null()) << rec.request_id;
  EXPECT_EQ(rec.summary["exit_code"], 3) << rec.summary;
  EXPECT_EQ(rec.summary["format"], "asciicast-v2");
  EXPECT_NE(CastEvents(rec.file, "o").find("from-pod\n"), std::string::npos) << rec.file << rec.export_error;
  EXPECT_NE(CastEvents(rec.file, "m").find("exit status 3"), std::string::npos) << rec.file;
  auto ok = E().Run(v, {"exec", pod, "--", "echo", "fine"});
  EXPECT_EQ(ok.code, 0) << ok.out;
  EXPECT_EQ(ok.out, "fine\n");
  auto reqs = E().Received("/pods/" + pod + "/exec");
  ASSERT_FALSE(reqs.empty());
  const auto& last = reqs.back();
  EXPECT_EQ(last["headers"]["Upgrade"], json::array({v == "1.29" ? "SPDY/3.1" : "websocket"}));
  EXPECT_EQ(last["method"], v == "1.29" ? "POST" : "GET");
  EXPECT_EQ(last["headers"]["Impersonate-User"], json::array({"alice"}));
}

TEST_P(KubectlVersions, ExecStdinIsRelayed) {
  std::string v = GetParam();
  std::string pod = "catter-" + v.substr(2);
  ASSERT_EQ(E().Run(v, {"run", pod, "--image=busybox", "--restart=Never"}).code, 0);
  fs::path input = E().dir / ("stdin-" + v + ".txt");
  std::ofstream(input) << "line one\nline two\n";
  std::string cmd = Kubectl(v) + " --kubeconfig " + (E().dir / "alice.kubeconfig").string() + " exec -i " + pod +
                    " -- cat < " + input.string();
  Process p({"/bin/sh", "-c", cmd});
  EXPECT_EQ(p.Finish(), 0) << p.output();
  EXPECT_EQ(p.output(), "line one\nline two\n");
}

// 1.29 forwards over SPDY/3.1, 1.32 over WebSocket with SPDY tunnelled.
TEST_P(KubectlVersions, PortForwardCarriesTraffic) {
  std::string v = GetParam();
  std::string pod = "server-" + v.substr(2);
  ASSERT_EQ(E().Run(v, {"run", pod, "--image=nginx", "--restart=Never"}).code, 0);
  Process pf({Kubectl(v), "--kubeconfig", (E().dir / "alice.kubeconfig").string(), "port-forward", "pod/" + pod,
              ":8080"});
  ASSERT_TRUE(pf.WaitFor(" -> 8080")) << pf.output();
  std::string local = PortFrom(pf.output());
  for (int i = 0; i < 2; ++i) {
    Process curl({"/usr/bin/curl", "-s", "http://127.0.0.1:" + local + "/"});
    EXPECT_EQ(curl.Finish(), 0);
    EXPECT_EQ(curl.output(), "hello from " + pod + " port 8080\n");
  }
  auto reqs = E().Received("/pods/" + pod + "/portforward");
  ASSERT_FALSE(reqs.empty());
  EXPECT_EQ(reqs.back()["headers"]["Impersonate-User"], json::array({"alice"}));
  if (v == "1.32") {
    EXPECT_EQ(reqs.back()["headers"]["Sec-WebSocket-Protocol"], json::array({"SPDY/3.1+portforward.k8s.io"}));
  }
  // Recorded per connection (port, bytes each way), not the payload.
  pf.Signal(SIGTERM);
  pf.Finish();
  Recorded rec = RecordingOf("/pods/" + pod + "/portforward");
  ASSERT_FALSE(rec.summary.is_null()) << rec.request_id;
  EXPECT_EQ(rec.summary["format"], "kubegate-portforward-v1");
  ASSERT_EQ(rec.summary["connections"].size(), 2u) << rec.summary;
  for (const auto& c : rec.summary["connections"]) {
    EXPECT_EQ(c["port"], "8080");
    EXPECT_GT(c["bytes_to_pod"].get<int>(), 0);
    EXPECT_EQ(c["bytes_from_pod"].get<std::size_t>() > std::string("hello from " + pod + " port 8080\n").size(), true) << c;
  }
  EXPECT_EQ(rec.file.find("hello from"), std::string::npos) << "payload recorded";
  EXPECT_NE(rec.file.find("\"bytes_from_pod\""), std::string::npos) << rec.file << rec.export_error;
}

// apply validates against the test server's OpenAPI v3 (fieldValidation).
TEST_P(KubectlVersions, ApplyClientSideAndServerSide) {
  std::string v = GetParam();
  std::string cm = "applied-" + v.substr(2);
  std::string f1 = WriteFile(cm + "-1.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: " + cm + "\ndata:\n  k: one\n");
  std::string f2 = WriteFile(cm + "-2.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: " + cm + "\ndata:\n  k: two\n");
  auto created = E().Run(v, {"apply", "-f", f1});
  EXPECT_EQ(created.code, 0) << created.out;
  EXPECT_NE(created.out.find("configmap/" + cm + " created"), std::string::npos) << created.out;
  auto updated = E().Run(v, {"apply", "-f", f2});
  EXPECT_EQ(updated.code, 0) << updated.out;
  EXPECT_NE(updated.out.find("configmap/" + cm + " configured"), std::string::npos) << updated.out;
  auto ssa = E().Run(v, {"apply", "--server-side", "-f", f1});
  EXPECT_EQ(ssa.code, 0) << ssa.out;
  EXPECT_NE(ssa.out.find("configmap/" + cm + " serverside-applied"), std::string::npos) << ssa.out;
  auto value = E().Run(v, {"get", "configmap", cm, "-o", "jsonpath={.data.k}"});
  EXPECT_EQ(value.out, "one");
  auto patches = E().Received("/configmaps/" + cm + "?");
  bool saw_apply_patch = false;
  for (const auto& r : patches) {
    if (r["method"] == "PATCH" && r["headers"]["Content-Type"][0] == "application/apply-patch+yaml") saw_apply_patch = true;
  }
  EXPECT_TRUE(saw_apply_patch);
}

// Typed clients: kubectl 1.32 sends protobuf bodies, 1.29 JSON; both pass
// through kubegate untouched.
TEST_P(KubectlVersions, CreateConfigMapSecretAndDryRun) {
  std::string v = GetParam();
  std::string cm = "typed-" + v.substr(2);
  auto dry = E().Run(v, {"create", "configmap", cm, "--from-literal=a=b", "--dry-run=server"});
  EXPECT_EQ(dry.code, 0) << dry.out;
  EXPECT_NE(dry.out.find("(server dry run)"), std::string::npos) << dry.out;
  EXPECT_EQ(E().Run(v, {"get", "configmap", cm}).code, 1) << "a dry run must not create";
  auto r = E().Run(v, {"create", "configmap", cm, "--from-literal=a=b"});
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(E().Run(v, {"get", "configmap", cm, "-o", "jsonpath={.data.a}"}).out, "b");
  auto sec = E().Run(v, {"create", "secret", "generic", cm, "--from-literal=password=hunter2"});
  EXPECT_EQ(sec.code, 0) << sec.out;
  EXPECT_EQ(E().Run(v, {"get", "secret", cm, "-o", "jsonpath={.data.password}"}).out, "aHVudGVyMg==");
  std::vector<json> posts;
  for (const auto& r : E().Received("/api/v1/namespaces/default/configmaps")) {
    if (r["method"] == "POST") posts.push_back(r);
  }
  ASSERT_FALSE(posts.empty());
  std::string ct = posts.back()["headers"]["Content-Type"][0];
  EXPECT_EQ(ct, v == "1.32" ? "application/vnd.kubernetes.protobuf" : "application/json");
}

TEST_P(KubectlVersions, AuthCanIIsAskedAsTheCaller) {
  auto r = E().Run(GetParam(), {"auth", "can-i", "delete", "pods"}, "bot");
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(r.out, "yes\n");
  auto reqs = E().Received("/selfsubjectaccessreviews");
  ASSERT_FALSE(reqs.empty());
  EXPECT_EQ(reqs.back()["headers"]["Impersonate-User"], json::array({"deploy-bot"}));
}

// kubectl cp is exec of tar with the tar stream on stdin (upload) or
// stdout (download).
TEST_P(KubectlVersions, CopyBothWays) {
  std::string v = GetParam();
  std::string pod = "files-" + v.substr(2);
  ASSERT_EQ(E().Run(v, {"run", pod, "--image=busybox", "--restart=Never"}).code, 0);
  std::string content = "copied through kubegate " + v + "\n";
  for (int i = 0; i < 200; ++i) content += "line " + std::to_string(i) + " of a file bigger than one frame\n";
  std::string local = WriteFile("upload-" + v + ".txt", content);
  auto up = E().Run(v, {"cp", local, pod + ":/tmp/uploaded.txt"});
  EXPECT_EQ(up.code, 0) << up.out;
  // cp is exec tar with the tar stream on stdin: recorded, by bytes and content.
  Recorded sent = RecordingOf("/pods/" + pod + "/exec");
  ASSERT_FALSE(sent.summary.is_null());
  EXPECT_GT(sent.summary["stdin_bytes"].get<std::uint64_t>(), content.size()) << sent.summary;
  EXPECT_NE(CastEvents(sent.file, "i").find("line 199 of a file"), std::string::npos);
  auto cat = E().Run(v, {"exec", pod, "--", "cat", "/tmp/uploaded.txt"});
  EXPECT_EQ(cat.code, 0) << cat.out;
  EXPECT_EQ(cat.out, content);
  fs::path back = E().dir / ("download-" + v + ".txt");
  auto down = E().Run(v, {"cp", pod + ":/tmp/uploaded.txt", back.string()});
  EXPECT_EQ(down.code, 0) << down.out;
  EXPECT_EQ(ReadAll(back), content);
  Recorded fetched = RecordingOf("/pods/" + pod + "/exec");
  ASSERT_FALSE(fetched.summary.is_null());
  EXPECT_NE(fetched.request_id, sent.request_id);
  EXPECT_GT(fetched.summary["stdout_bytes"].get<std::uint64_t>(), content.size()) << fetched.summary;
}

TEST_P(KubectlVersions, AttachRelaysStdinAndOutput) {
  std::string v = GetParam();
  std::string pod = "attached-" + v.substr(2);
  ASSERT_EQ(E().Run(v, {"run", pod, "--image=busybox", "--restart=Never"}).code, 0);
  fs::path input = E().dir / ("attach-" + v + ".txt");
  std::ofstream(input) << "echo attached-ok\nexit 0\n";
  Process p({"/bin/sh", "-c", Kubectl(v) + " --kubeconfig " + (E().dir / "alice.kubeconfig").string() + " attach -i " +
                                  pod + " < " + input.string()});
  EXPECT_EQ(p.Finish(), 0) << p.output();
  EXPECT_NE(p.output().find("attached-ok"), std::string::npos) << p.output();
  EXPECT_FALSE(E().Received("/pods/" + pod + "/attach").empty());
  Recorded rec = RecordingOf("/pods/" + pod + "/attach");
  ASSERT_FALSE(rec.summary.is_null());
  EXPECT_NE(CastEvents(rec.file, "i").find("echo attached-ok\n"), std::string::npos) << rec.file << rec.export_error;
  EXPECT_NE(CastEvents(rec.file, "o").find("attached-ok"), std::string::npos) << rec.file;
}

// exec -it under a real terminal (tmux): typed input, a resize, exit code.
TEST_P(KubectlVersions, ExecInteractiveTerminalWithResize) {
  std::string v = GetParam();
  std::string pod = "tty-" + v.substr(2);
  std::string session = "kg" + std::to_string(getpid()) + v.substr(2);
  ASSERT_EQ(E().Run(v, {"run", pod, "--image=busybox", "--restart=Never"}).code, 0);
  fs::path rc = E().dir / ("tty-rc-" + v);
  std::string cmd = Kubectl(v) + " --kubeconfig " + (E().dir / "alice.kubeconfig").string() + " exec -it " + pod +
                    " -- sh; echo $? > " + rc.string();
  auto tmux = [&](std::vector<std::string> args) {
    args.insert(args.begin(), "/usr/bin/tmux");
    Process p(args);
    p.Finish();
    return p.output();
  };
  tmux({"new-session", "-d", "-s", session, "-x", "120", "-y", "40", cmd});
  auto screen_has = [&](const std::string& text) {
    for (int i = 0; i < 300; ++i) {  // polls the screen; bounded at ~30 s
      if (tmux({"capture-pane", "-p", "-t", session}).find(text) != std::string::npos) return true;
      usleep(100 * 1000);
    }
    return false;
  };
  ASSERT_TRUE(screen_has("$")) << tmux({"capture-pane", "-p", "-t", session});  // the prompt
  tmux({"resize-window", "-t", session, "-x", "100", "-y", "30"});
  tmux({"send-keys", "-t", session, "echo typed through kubegate", "Enter"});
  // The echoed command line starts with "$ echo"; the output line is bare.
  EXPECT_TRUE(screen_has("\ntyped through kubegate\n")) << tmux({"capture-pane", "-p", "-t", session});
  std::string pane = tmux({"capture-pane", "-p", "-t", session});
  tmux({"send-keys", "-t", session, "exit 4", "Enter"});
  bool exited = false;
  for (int i = 0; i < 300 && !exited; ++i) {
    exited = fs::exists(rc) && !ReadAll(rc).empty();
    if (!exited) usleep(100 * 1000);
  }
  tmux({"kill-session", "-t", session});
  ASSERT_TRUE(exited);
  EXPECT_EQ(ReadAll(rc), "4\n");
  bool saw_resize = false;
  std::ifstream in(E().dir / "record.jsonl");
  std::string line;
  while (std::getline(in, line)) {
    auto j = json::parse(line, nullptr, false);
    if (!j.is_discarded() && j.value("event", "") == "resize" && j["pod"] == pod &&
        j["data"].get<std::string>().find(R"("Width":100,"Height":30)") != std::string::npos) {
      saw_resize = true;
    }
  }
  EXPECT_TRUE(saw_resize) << "the resize did not reach the pod";

  // The recording: what the user saw, what they typed, the resize, the exit.
  Recorded rec = RecordingOf("/pods/" + pod + "/exec");
  ASSERT_FALSE(rec.summary.is_null()) << rec.request_id;
  ASSERT_TRUE(rec.export_error.empty()) << rec.export_error;
  auto header = json::parse(rec.file.substr(0, rec.file.find('\n')));
  EXPECT_EQ(header["width"], 120);
  EXPECT_EQ(header["height"], 40);
  EXPECT_EQ(header["kubegate"]["pod"], pod);
  EXPECT_EQ(header["kubegate"]["user"], "alice");
  EXPECT_NE(CastEvents(rec.file, "i").find("echo typed through kubegate\r"), std::string::npos) << rec.file;
  EXPECT_NE(CastEvents(rec.file, "r").find("100x30"), std::string::npos) << rec.file;
  EXPECT_NE(CastEvents(rec.file, "m").find("exit status 4"), std::string::npos) << rec.file;
  EXPECT_EQ(rec.summary["exit_code"], 4);
  // Every line the terminal showed before `exit 4` is in the recorded output.
  std::string output = CastEvents(rec.file, "o");
  std::istringstream lines(pane);
  std::string shown;
  int compared = 0;
  while (std::getline(lines, shown)) {
    while (!shown.empty() && shown.back() == ' ') shown.pop_back();
    if (shown.empty()) continue;
    EXPECT_NE(output.find(shown), std::string::npos) << "shown but not recorded: " << shown << "\nrecorded: " << output;
    compared++;
  }
  EXPECT_GE(compared, 2);
  // asciinema (Debian's) reads it: `asciinema cat` prints the output.
  std::string cast_path = WriteFile("tty-" + v + ".cast", rec.file);
  // (asciinema cat wants a terminal: script(1) gives it one.)
  Process cat({"/usr/bin/script", "-qec", "/usr/bin/asciinema cat " + cast_path, "/dev/null"},
              {"HOME=" + E().dir.string(), "LANG=C.UTF-8", "PATH=/usr/bin:/bin"});
  EXPECT_EQ(cat.Finish(), 0) << cat.output();
  EXPECT_NE(cat.output().find("typed through kubegate"), std::string::npos) << cat.output();
}

INSTANTIATE_TEST_SUITE_P(Kubectl, KubectlVersions, ::testing::Values("1.29", "1.32"),
                         [](const auto& info) { return "v" + info.param.substr(2); });

TEST(Forwarding, UpstreamSeesGatewayCredentialAndCallerIdentity) {
  auto r = E().Run("1.32", {"get", "configmaps", "-n", "kube-system"}, "bot");
  ASSERT_EQ(r.code, 0) << r.out;
  auto reqs = E().Received("/api/v1/namespaces/kube-system/configmaps");
  ASSERT_FALSE(reqs.empty());
  auto h = reqs.back()["headers"];
  EXPECT_EQ(h["Authorization"], json::array({"Bearer testserver-admin-token"}));
  EXPECT_EQ(h["Impersonate-User"], json::array({"deploy-bot"}));
  EXPECT_FALSE(h.contains("Impersonate-Group"));
  ASSERT_TRUE(h.contains("Impersonate-Extra-Kubegate-Request-Id"));
  EXPECT_EQ(h["Impersonate-Extra-Kubegate-Request-Id"][0].get<std::string>().substr(0, 3), "kg-");
  EXPECT_EQ(h["Kubectl-Command"], json::array({"kubectl get"}));
  for (const auto& [name, values] : h.items()) {
    for (const auto& v : values) EXPECT_EQ(v.get<std::string>().find("bot-secret-token"), std::string::npos) << name;
  }
}

TEST(Streaming, LogsFollowArriveLineByLine) {
  ASSERT_EQ(E().Run("1.32", {"run", "logger", "--image=busybox", "--restart=Never"}).code, 0);
  auto r = E().Run("1.32", {"logs", "-f", "logger"});
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(r.out, "log line 1 from logger\nlog line 2 from logger\nlog line 3 from logger\n");
}

TEST(Streaming, WatchDeliversEventsAsTheyHappen) {
  ASSERT_EQ(E().Run("1.32", {"create", "-f", WriteFile("watched.json", R"({"apiVersion":"v1","kind":"Namespace","metadata":{"name":"watched"}})"), "--validate=false"}).code, 0);
  ASSERT_EQ(E().Run("1.32", {"-n", "watched", "run", "first", "--image=x", "--restart=Never"}).code, 0);
  Process watch({Kubectl("1.32"), "--kubeconfig", (E().dir / "alice.kubeconfig").string(), "-n", "watched", "get",
                 "pods", "-w"});
  ASSERT_TRUE(watch.WaitFor("first")) << watch.output();
  // The list has been printed; the watch request follows it. Create a pod
  // once the upstream has the watch, then see its event arrive.
  ASSERT_EQ(E().Run("1.32", {"-n", "watched", "run", "second", "--image=x", "--restart=Never"}).code, 0);
  EXPECT_TRUE(watch.WaitFor("second")) << watch.output();
  // The test server ends watches after 4 s, as an API server does after its
  // request timeout; kubectl then exits 0.
  EXPECT_EQ(watch.Finish(), 0) << watch.output();
  EXPECT_EQ(watch.output().find("Unsolicited response"), std::string::npos) << watch.output();
}

TEST(Observability, HealthAndReadiness) {
  std::string ca = (E().dir / "gw" / "pki" / "ca.crt").string();
  Process health({"/usr/bin/curl", "-s", "--cacert", ca, E().gateway_url + "/healthz"});
  EXPECT_EQ(health.Finish(), 0);
  EXPECT_EQ(health.output(), "ok");
  Process ready({"/usr/bin/curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", ca,
                 "-H", "Authorization: Bearer alice-secret-token", E().gateway_url + "/readyz"});
  EXPECT_EQ(ready.Finish(), 0);
  EXPECT_EQ(ready.output(), "200");
}

// Refusals are counted; /metrics shows the counters to authenticated callers.
TEST(Observability, MetricsCountRefusals) {
  std::string ca = (E().dir / "gw" / "pki" / "ca.crt").string();
  auto metric = [&](const std::string& name) {
    Process m({"/usr/bin/curl", "-s", "--cacert", ca, "-H", "Authorization: Bearer alice-secret-token",
               E().gateway_url + "/metrics"});
    m.Finish();
    std::string out = m.output();
    auto at = out.find("\n" + name + " ");
    return at == std::string::npos ? -1L : std::stol(out.substr(at + name.size() + 2));
  };
  long before = metric("kubegate_rejected_unauthenticated_total");
  ASSERT_GE(before, 0);
  Process bad({"/usr/bin/curl", "-s", "--cacert", ca, "-H", "Authorization: Bearer wrong", E().gateway_url + "/api"});
  bad.Finish();
  EXPECT_EQ(metric("kubegate_rejected_unauthenticated_total"), before + 1);
  EXPECT_GT(metric("kubegate_requests_total"), 0);
  Process anon({"/usr/bin/curl", "-s", "--cacert", ca, E().gateway_url + "/metrics"});
  anon.Finish();
  EXPECT_NE(anon.output().find(R"("code":401)"), std::string::npos) << anon.output();
}

TEST(BadInput, SmugglingAndLimitsGetStatusErrors) {
  std::string port = E().gateway_url.substr(E().gateway_url.rfind(':') + 1);
  auto send = [&](const std::string& raw) {
    std::string cmd = "printf '" + raw + "' | openssl s_client -quiet -connect 127.0.0.1:" + port +
                      " -servername localhost 2>/dev/null | head -c 4000";
    Process p({"/bin/sh", "-c", cmd});
    p.Finish();
    return p.output();
  };
  std::string both = send("POST /api/v1/namespaces/default/configmaps HTTP/1.1\\r\\nHost: x\\r\\nAuthorization: Bearer alice-secret-token\\r\\n"
                          "Content-Length: 4\\r\\nTransfer-Encoding: chunked\\r\\n\\r\\n0\\r\\n\\r\\n");
  EXPECT_NE(both.find("HTTP/1.1 400"), std::string::npos) << both;
  EXPECT_NE(both.find("\"kind\":\"Status\""), std::string::npos) << both;
  std::string two_cl = send("POST /api/v1/namespaces/default/configmaps HTTP/1.1\\r\\nHost: x\\r\\nContent-Length: 1\\r\\n"
                            "Content-Length: 2\\r\\n\\r\\nab");
  EXPECT_NE(two_cl.find("HTTP/1.1 400"), std::string::npos) << two_cl;
  // A head past the 1 MiB limit (sent from a file: too long for argv).
  std::string raw_file = WriteFile("huge-head.txt", "GET /api/v1/pods HTTP/1.1\r\nHost: x\r\nX-Pad: " +
                                                        std::string(1100 * 1024, 'a') + "\r\n\r\n");
  Process huge({"/bin/sh", "-c", "openssl s_client -quiet -connect 127.0.0.1:" + port + " < " + raw_file +
                                     " 2>/dev/null | head -c 4000"});
  huge.Finish();
  std::string huge_head = huge.output();
  EXPECT_NE(huge_head.find("HTTP/1.1 431"), std::string::npos) << huge_head.substr(0, 300);
  std::string junk = send("GARBAGE\\r\\n\\r\\n");
  EXPECT_NE(junk.find("HTTP/1.1 400"), std::string::npos) << junk;
  std::string big = send("POST /api/v1/namespaces/default/configmaps HTTP/1.1\\r\\nHost: x\\r\\nAuthorization: Bearer alice-secret-token\\r\\n"
                         "Content-Length: 999999999\\r\\n\\r\\n");
  EXPECT_NE(big.find("HTTP/1.1 413"), std::string::npos) << big;
  std::string odd = send("GET /api/v1/namespaces/default/pods/%%zz HTTP/1.1\\r\\nHost: x\\r\\nAuthorization: Bearer alice-secret-token\\r\\n\\r\\n");
  EXPECT_NE(odd.find("HTTP/1.1 400"), std::string::npos) << odd;
  EXPECT_TRUE(E().Received("configmaps HTTP").empty());
  EXPECT_TRUE(E().Received("%zz").empty()) << "a request kubegate refused reached the upstream";
}

// Two requests in one write (HTTP/1.1 pipelining): the second head is
// already in the session's buffer when the first answer is done, and is
// parsed from there. Both are answered, in order.
TEST(Forwarding, PipelinedRequestsAreAnsweredInOrder) {
  std::string port = E().gateway_url.substr(E().gateway_url.rfind(':') + 1);
  std::string get = "GET %s HTTP/1.1\\r\\nHost: x\\r\\nAuthorization: Bearer alice-secret-token\\r\\n";
  auto head = [&](const std::string& path, bool last) {
    std::string h = get;
    h.replace(h.find("%s"), 2, path);
    return h + (last ? "Connection: close\\r\\n\\r\\n" : "\\r\\n");
  };
  std::string cmd = "printf '" + head("/api/v1/namespaces/default/pods", false) +
                    head("/api/v1/namespaces/kube-system/configmaps", true) +
                    "' | openssl s_client -quiet -connect 127.0.0.1:" + port + " -servername localhost 2>/dev/null";
  Process p({"/bin/sh", "-c", cmd});
  p.Finish();
  std::string out = p.output();
  auto first = out.find("HTTP/1.1 200");
  auto second = out.find("HTTP/1.1 200", first == std::string::npos ? 0 : first + 1);
  ASSERT_NE(second, std::string::npos) << out.substr(0, 2000);
  auto pods = out.find("\"kind\":\"PodList\"");
  auto maps = out.find("\"kind\":\"ConfigMapList\"");
  ASSERT_NE(pods, std::string::npos) << out.substr(0, 2000);
  ASSERT_NE(maps, std::string::npos) << out.substr(0, 2000);
  EXPECT_LT(pods, second);
  EXPECT_GT(maps, second);
}

TEST(Forwarding, ImpersonationAllowedByConfigPassesThrough) {
  auto r = E().Run("1.32", {"--as=bob", "--as-group=auditors", "get", "secrets", "-n", "kube-system"}, "admin");
  EXPECT_EQ(r.code, 0) << r.out;
  auto reqs = E().Received("/api/v1/namespaces/kube-system/secrets");
  ASSERT_FALSE(reqs.empty());
  auto h = reqs.back()["headers"];
  EXPECT_EQ(h["Impersonate-User"], json::array({"bob"}));
  EXPECT_EQ(h["Impersonate-Group"], json::array({"auditors"}));
  ASSERT_TRUE(h.contains("Impersonate-Extra-Kubegate-Request-Id"));
  EXPECT_EQ(h["Authorization"], json::array({"Bearer testserver-admin-token"}));
}

TEST(Forwarding, DescribeWorks) {
  ASSERT_EQ(E().Run("1.32", {"run", "described", "--image=busybox", "--restart=Never"}).code, 0);
  auto r = E().Run("1.32", {"describe", "pod", "described"});
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("Name:         described"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Status:       Running"), std::string::npos) << r.out;
}

// Bodies stream through (no size limit but the configured one); past the
// limit kubegate answers 413 before anything reaches the upstream.
TEST(Forwarding, LargeBodiesStreamAndOversizedOnesAre413) {
  auto manifest = [](const std::string& name, std::size_t bytes) {
    return R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":")" + name + R"("},"data":{"blob":")" +
           std::string(bytes, 'x') + R"("}})";
  };
  auto big = E().Run("1.32", {"create", "-f", WriteFile("big.json", manifest("big", 2 << 20))});
  EXPECT_EQ(big.code, 0) << big.out.substr(0, 500);
  // The answer comes chunked, as kube-apiserver's would: the relay's pieces
  // grow to their bound and every byte arrives in order.
  auto size = E().Run("1.32", {"get", "configmap", "big", "-o", "jsonpath={.data.blob}"});
  EXPECT_EQ(size.out.size(), std::size_t{2 << 20});
  EXPECT_EQ(size.out.find_first_not_of('x'), std::string::npos);
  auto huge = E().Run("1.32", {"create", "-f", WriteFile("huge.json", manifest("huge", 4 << 20))});
  EXPECT_EQ(huge.code, 1);
  EXPECT_NE(huge.out.find("Error from server (RequestEntityTooLarge)"), std::string::npos) << huge.out.substr(0, 500);
  EXPECT_TRUE(E().Received("/configmaps/huge").empty());
}

// An answer that came whole with its head is parsed at once and goes out
// in one write, with nothing left to wait for; one that did not is relayed
// piece by piece. Either way every byte arrives: an answer of announced
// length, chunked ones (the test server, as Go's net/http, chunks above
// 2,048 bytes) that fit the head's read, and one that does not.
TEST(Forwarding, AnswersThatCameWholeAndOnesThatDidNotArriveByteForByte) {
  for (std::size_t bytes : {std::size_t{600}, std::size_t{2500}, std::size_t{3900}, std::size_t{20000}}) {
    std::string name = "sized-" + std::to_string(bytes);
    std::string manifest = R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":")" + name +
                           R"("},"data":{"blob":")" + std::string(bytes, 'y') + R"("}})";
    auto made = E().Run("1.32", {"create", "-f", WriteFile(name + ".json", manifest)});
    ASSERT_EQ(made.code, 0) << made.out;
    auto got = E().Run("1.32", {"get", "configmap", name, "-o", "jsonpath={.data.blob}"});
    EXPECT_EQ(got.code, 0) << got.out;
    EXPECT_EQ(got.out, std::string(bytes, 'y')) << bytes;
  }
}

TEST(Cli, ClassifyPrintsRequestInfo) {
  std::string b = kBuildDir;
  Process p({b + "/src/kubegate", "classify", "GET", "/api/v1/namespaces/prod/pods/web/exec?command=sh&tty=1"});
  EXPECT_EQ(p.Finish(), 0);
  auto j = json::parse(p.output());
  EXPECT_EQ(j["verb"], "get");
  EXPECT_EQ(j["subresource"], "exec");
  EXPECT_EQ(j["namespace"], "prod");
  EXPECT_EQ(j["exec"]["command"], json::array({"sh"}));
  std::string body = WriteFile("delopts.json", R"({"dryRun":["All"]})");
  Process d({b + "/src/kubegate", "classify", "DELETE", "/api/v1/namespaces/prod", "--body", body});
  EXPECT_EQ(d.Finish(), 0);
  EXPECT_EQ(json::parse(d.output())["dryRun"], true);
  Process bad({b + "/src/kubegate", "classify", "GET", "/api/v1/pods/%zz"});
  EXPECT_EQ(bad.Finish(), 1);
  EXPECT_EQ(json::parse(bad.output())["code"], 400);
}

TEST(Gateway, ClientCertificatesIdentifyCallers) {
  // The test server's CA doubles as the callers' client CA here.
  auto [gw, url] = E().StartGateway("certgw", "client_certs:\n  ca_file: " + (E().dir / "ts" / "pki" / "ca.crt").string() +
                                                  "\n  agent_users: [robot]\n");
  ASSERT_FALSE(url.empty()) << gw->output();
  std::string b = kBuildDir;
  std::string ca = (E().dir / "certgw-" / "pki" / "ca.crt").string();
  Process issue({b + "/src/kubegate", "cert", "issue", "--ca-dir", (E().dir / "ts" / "pki").string(), "--user", "robot",
                 "--group", "ops", "--group", "bots", "--out", (E().dir / "robot").string()});
  ASSERT_EQ(issue.Finish(), 0) << issue.output();
  Process ok({Kubectl("1.32"), "--kubeconfig", "/dev/null", "--server", url, "--certificate-authority", ca,
              "--client-certificate", (E().dir / "robot.crt").string(), "--client-key", (E().dir / "robot.key").string(),
              "get", "configmaps", "-n", "kube-system"});
  EXPECT_EQ(ok.Finish(), 0) << ok.output();
  auto reqs = E().Received("/api/v1/namespaces/kube-system/configmaps");
  ASSERT_FALSE(reqs.empty());
  EXPECT_EQ(reqs.back()["headers"]["Impersonate-User"], json::array({"robot"}));
  EXPECT_EQ(reqs.back()["headers"]["Impersonate-Group"], json::array({"ops", "bots"}));
  EXPECT_NE(gw->output().find(R"("user":"robot","groups":["ops","bots"],"kind":"agent","auth":"client-certificate")"),
            std::string::npos);
  // A certificate from a CA the gateway does not trust: 401, not a TLS failure.
  Process strange({b + "/src/kubegate", "cert", "issue", "--ca-dir", (E().dir / "gw" / "pki").string(), "--user",
                   "mallory", "--out", (E().dir / "mallory").string()});
  ASSERT_EQ(strange.Finish(), 0);
  Process bad({Kubectl("1.32"), "--kubeconfig", "/dev/null", "--server", url, "--certificate-authority", ca,
               "--client-certificate", (E().dir / "mallory.crt").string(), "--client-key",
               (E().dir / "mallory.key").string(), "get", "pods"});
  EXPECT_EQ(bad.Finish(), 1);
  EXPECT_NE(bad.output().find("error: You must be logged in to the server (client certificate is not signed by"),
            std::string::npos)
      << bad.output();
}

// The gateway's own upstream credential may be a client certificate.
TEST(Gateway, UpstreamClientCertificateCredential) {
  std::string b = kBuildDir;
  Process issue({b + "/src/kubegate", "cert", "issue", "--ca-dir", (E().dir / "ts" / "pki").string(), "--user",
                 "kubegate-gateway", "--group", "system:masters", "--out", (E().dir / "gwclient").string()});
  ASSERT_EQ(issue.Finish(), 0) << issue.output();
  std::string server = ReadAll(E().dir / "upstream.kubeconfig");
  server = server.substr(server.find("server: ") + 8);
  server = server.substr(0, server.find('\n'));
  std::string kc = WriteFile("certupstream.kubeconfig",
                             "apiVersion: v1\nkind: Config\nclusters: [{name: t, cluster: {server: \"" + server +
                                 "\", certificate-authority: " + (E().dir / "ts" / "pki" / "ca.crt").string() +
                                 "}}]\nusers: [{name: g, user: {client-certificate: " + (E().dir / "gwclient.crt").string() +
                                 ", client-key: " + (E().dir / "gwclient.key").string() +
                                 "}}]\ncontexts: [{name: c, context: {cluster: t, user: g}}]\ncurrent-context: c\n");
  auto [gw, url] = E().StartGateway("certup", "", kc);
  ASSERT_FALSE(url.empty()) << gw->output();
  std::string ca = (E().dir / "certup-" / "pki" / "ca.crt").string();
  Process get({Kubectl("1.32"), "--kubeconfig", "/dev/null", "--server", url, "--certificate-authority", ca, "--token",
               "alice-secret-token", "get", "services", "-n", "kube-system"});
  EXPECT_EQ(get.Finish(), 0) << get.output();
  auto reqs = E().Received("/api/v1/namespaces/kube-system/services");
  ASSERT_FALSE(reqs.empty());
  EXPECT_FALSE(reqs.back()["headers"].contains("Authorization")) << reqs.back().dump();
  EXPECT_EQ(reqs.back()["headers"]["Impersonate-User"], json::array({"alice"}));
  bool saw_cert = false;
  std::ifstream in(E().dir / "record.jsonl");
  std::string line;
  while (std::getline(in, line)) saw_cert = saw_cert || line.find(R"("data":"kubegate-gateway")") != std::string::npos;
  EXPECT_TRUE(saw_cert);
}

// The upstream token file is followed when it is replaced (projected
// service-account tokens rotate), without restarting the gateway.
TEST(Gateway, UpstreamTokenFileIsReadAgainWhenReplaced) {
  std::string server = ReadAll(E().dir / "upstream.kubeconfig");
  server = server.substr(server.find("server: ") + 8);
  server = server.substr(0, server.find('\n'));
  fs::path token = E().dir / "rotating.token";
  std::ofstream(token) << "not-yet-the-right-token\n";
  std::string kc = WriteFile("rotating.kubeconfig",
                             "apiVersion: v1\nkind: Config\nclusters: [{name: t, cluster: {server: \"" + server +
                                 "\", certificate-authority: " + (E().dir / "ts" / "pki" / "ca.crt").string() +
                                 "}}]\nusers: [{name: g, user: {tokenFile: " + token.string() +
                                 "}}]\ncontexts: [{name: c, context: {cluster: t, user: g}}]\ncurrent-context: c\n");
  auto [gw, url] = E().StartGateway("rotgw", "", kc);
  ASSERT_FALSE(url.empty()) << gw->output();
  auto code = [&] {
    Process p({"/usr/bin/curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert",
               (E().dir / "rotgw-" / "pki" / "ca.crt").string(), "-H", "Authorization: Bearer alice-secret-token",
               url + "/api/v1/namespaces"});
    p.Finish();
    return p.output();
  };
  // The upstream refuses the gateway's stale credential: a 502 from
  // kubegate, not a 401 that would tell the caller to log in again.
  EXPECT_EQ(code(), "502");
  std::ofstream(E().dir / "rotating.token.new") << "testserver-admin-token\n";
  fs::rename(E().dir / "rotating.token.new", token);
  EXPECT_EQ(code(), "200");
}

// An upstream that completes TLS, then closes without answering: 502.
TEST(Gateway, UpstreamThatDropsTheRequestIs502) {
  fs::path d = E().dir / "dropper";
  fs::create_directories(d);
  Process cert({"/bin/sh", "-c",
                "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=127.0.0.1 "
                "-addext subjectAltName=IP:127.0.0.1 -keyout " + (d / "key.pem").string() + " -out " +
                    (d / "cert.pem").string()});
  ASSERT_EQ(cert.Finish(), 0) << cert.output();
  std::string port = ClosedLoopbackPort();
  // s_server prints what it receives and never answers; once the request
  // is there, the test kills it.
  Process upstream({"/bin/sh", "-c",
                    "sleep 60 | openssl s_server -accept 127.0.0.1:" + port + " -cert " + (d / "cert.pem").string() +
                        " -key " + (d / "key.pem").string() + " -naccept 1"});
  ASSERT_TRUE(upstream.WaitFor("ACCEPT")) << upstream.output();
  std::string kc = WriteFile("dropper.kubeconfig",
                             "apiVersion: v1\nkind: Config\nclusters: [{name: d, cluster: {server: \"https://127.0.0.1:" + port +
                                 "\", certificate-authority: " + (d / "cert.pem").string() +
                                 "}}]\nusers: [{name: u, user: {token: t}}]\n"
                                 "contexts: [{name: c, context: {cluster: d, user: u}}]\ncurrent-context: c\n");
  auto [gw, url] = E().StartGateway("dropgw", "", kc);
  ASSERT_FALSE(url.empty()) << gw->output();
  Process get({"/usr/bin/curl", "-s", "-w", "\n%{http_code}", "--cacert", (E().dir / "dropgw-" / "pki" / "ca.crt").string(),
               "-H", "Authorization: Bearer alice-secret-token", url + "/api/v1/namespaces/default/pods"});
  ASSERT_TRUE(upstream.WaitFor("GET /api/v1/namespaces/default/pods")) << upstream.output();
  upstream.SignalGroup(SIGKILL);
  EXPECT_EQ(get.Finish(), 0);
  EXPECT_NE(get.output().find("\n502"), std::string::npos) << get.output();
  EXPECT_NE(get.output().find(R"("kind":"Status")"), std::string::npos) << get.output();
  EXPECT_NE(get.output().find("the API server"), std::string::npos) << get.output();
}

TEST(Gateway, UnreachableUpstreamIs503AndNotReady) {
  // A port that was free a moment ago and has no listener now.
  std::string kc = WriteFile("dead.kubeconfig",
                             "apiVersion: v1\nkind: Config\nclusters: [{name: d, cluster: {server: \"https://127.0.0.1:1\", "
                             "insecure-skip-tls-verify: true}}]\nusers: [{name: u, user: {token: t}}]\n"
                             "contexts: [{name: c, context: {cluster: d, user: u}}]\ncurrent-context: c\n");
  auto [gw, url] = E().StartGateway("deadgw", "", kc);
  ASSERT_FALSE(url.empty()) << gw->output();
  std::string ca = (E().dir / "deadgw-" / "pki" / "ca.crt").string();
  Process get({"/usr/bin/curl", "-s", "-w", "\n%{http_code}", "--cacert", ca, "-H", "Authorization: Bearer alice-secret-token",
               url + "/api/v1/namespaces/default/pods"});
  EXPECT_EQ(get.Finish(), 0);
  EXPECT_NE(get.output().find(R"("reason":"ServiceUnavailable")"), std::string::npos) << get.output();
  EXPECT_NE(get.output().find("\n503"), std::string::npos) << get.output();
  Process ready({"/usr/bin/curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", ca, url + "/readyz"});
  EXPECT_EQ(ready.Finish(), 0);
  EXPECT_EQ(ready.output(), "503");
  Process health({"/usr/bin/curl", "-s", "--cacert", ca, url + "/healthz"});
  EXPECT_EQ(health.Finish(), 0);
  EXPECT_EQ(health.output(), "ok");
}

TEST(Gateway, PlainHttpOnLoopbackWhenEnabled) {
  auto [gw, url] = E().StartGateway("plaingw", "");
  ASSERT_FALSE(url.empty());
  gw.reset();
  std::string cfg = ReadAll(E().dir / "plaingw.yaml");
  const std::string listen = "listen: {address: 127.0.0.1, port: 0}";
  cfg.replace(cfg.find(listen), listen.size(), "listen: {address: 127.0.0.1, port: 0, plain_http: true}");
  std::ofstream(E().dir / "plaingw.yaml") << cfg;
  Process plain({std::string(kBuildDir) + "/src/kubegate", "serve", "--config", (E().dir / "plaingw.yaml").string()});
  ASSERT_TRUE(plain.WaitFor("listening on http://")) << plain.output();
  std::string out = plain.output();
  std::string http_url = "http://127.0.0.1:" + PortFrom(out.substr(out.find("listening on")));
  // kubectl withholds bearer tokens from http:// servers, so this mode is
  // for local tools; curl stands in for them.
  Process get({"/usr/bin/curl", "-s", "-H", "Authorization: Bearer alice-secret-token", http_url + "/api/v1/namespaces"});
  EXPECT_EQ(get.Finish(), 0) << get.output();
  EXPECT_NE(get.output().find("kube-system"), std::string::npos) << get.output();
  Process anon({"/usr/bin/curl", "-s", http_url + "/api/v1/namespaces"});
  EXPECT_EQ(anon.Finish(), 0);
  EXPECT_NE(anon.output().find(R"("reason":"Unauthorized")"), std::string::npos) << anon.output();
}

// A gateway that also listens on plain HTTP (loopback), for raw-socket tests;
// `listen_extra` is added to its listen settings.
std::pair<std::unique_ptr<Process>, std::string> StartPlainGateway(const std::string& name,
                                                                   const std::string& listen_extra = "") {
  auto [gw, url] = E().StartGateway(name, "");
  if (url.empty()) return {std::move(gw), ""};
  gw.reset();
  std::string cfg = ReadAll(E().dir / (name + ".yaml"));
  const std::string listen = "listen: {address: 127.0.0.1, port: 0}";
  cfg.replace(cfg.find(listen), listen.size(), "listen: {address: 127.0.0.1, port: 0, plain_http: true" + listen_extra + "}");
  std::ofstream(E().dir / (name + ".yaml")) << cfg;
  auto plain = std::make_unique<Process>(
      std::vector<std::string>{std::string(kBuildDir) + "/src/kubegate", "serve", "--config", (E().dir / (name + ".yaml")).string()});
  if (!plain->WaitFor("listening on http://")) return {std::move(plain), ""};
  std::string out = plain->output();
  return {std::move(plain), PortFrom(out.substr(out.find("listening on")))};
}

// A TCP connection to 127.0.0.1:port whose reads give up after
// `recv_timeout_s`; -1 when it cannot connect.
int ConnectLoopback(const std::string& port, int recv_timeout_s) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<std::uint16_t>(std::stoi(port)));
  timeval tv{recv_timeout_s, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// Writes `bytes` in one send to 127.0.0.1:port, then reads until `want`
// appears or the peer closes (bounded by a 10 s receive timeout).
std::string SendAtOnce(const std::string& port, const std::string& bytes, const std::string& want) {
  int fd = ConnectLoopback(port, 10);
  std::string in;
  if (fd >= 0 && send(fd, bytes.data(), bytes.size(), 0) == static_cast<ssize_t>(bytes.size())) {
    char buf[4096];
    ssize_t n;
    while (in.find(want) == std::string::npos && (n = recv(fd, buf, sizeof buf, 0)) > 0) in.append(buf, n);
  }
  if (fd >= 0) close(fd);
  return in;
}

// Issue 11: bytes that arrive in the same read as the upgrade head (from
// the caller) or the 101 (from the API server) belong to the session. They
// once crashed kubegate while being shown to the recorder. The test server
// sends its SPDY 101 and first frames in one write.
TEST(Gateway, BytesThatArriveWithTheUpgradeHeadsAreRelayedAndRecorded) {
  ASSERT_EQ(E().Run("1.32", {"run", "coalesced", "--image=x", "--restart=Never"}).code, 0);
  for (bool recorded : {true, false}) {
    SCOPED_TRACE(recorded ? "recorded" : "not recorded");
    std::string name = recorded ? "coalesce-rec" : "coalesce-norec";
    auto [gw, port] = StartPlainGateway(name);
    ASSERT_FALSE(port.empty()) << gw->output();
    if (!recorded) {
      // The same gateway with recording off.
      gw.reset();
      std::ofstream(E().dir / (name + ".yaml"), std::ios::app) << "recording: {enabled: false}\n";
      gw = std::make_unique<Process>(std::vector<std::string>{std::string(kBuildDir) + "/src/kubegate", "serve", "--config",
                                                              (E().dir / (name + ".yaml")).string()});
      ASSERT_TRUE(gw->WaitFor("listening on http://")) << gw->output();
      std::string out = gw->output();
      port = PortFrom(out.substr(out.find("listening on")));
    }
    const std::string target = "/api/v1/namespaces/default/pods/coalesced/exec?command=cat&stdin=true&stdout=true";
    // WebSocket (v5 and v4): the head and a masked stdin frame in one write.
    for (const char* protocol : {"v5.channel.k8s.io", "v4.channel.k8s.io"}) {
      SCOPED_TRACE(protocol);
      std::string head = "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer alice-secret-token\r\n"
                         "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
                         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: " +
                         std::string(protocol) + "\r\n\r\n";
      const std::string payload = std::string(1, '\0') + "coalesced-hello\n";  // channel 0: stdin
      const unsigned char mask[4] = {0x11, 0x22, 0x33, 0x44};
      std::string frame = {static_cast<char>(0x82), static_cast<char>(0x80 | payload.size())};
      frame.append(reinterpret_cast<const char*>(mask), 4);
      for (std::size_t i = 0; i < payload.size(); ++i) frame += static_cast<char>(payload[i] ^ mask[i % 4]);
      std::string got = SendAtOnce(port, head + frame, "coalesced-hello");
      EXPECT_EQ(got.rfind("HTTP/1.1 101", 0), 0u) << got;
      EXPECT_NE(got.find("coalesced-hello"), std::string::npos) << "stdin sent with the head was not relayed: " << got;
    }
    // SPDY: the head and a PING frame in one write; the test server answers
    // with its 101 and the PING reply in one write.
    std::string spdy_head = "POST " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer alice-secret-token\r\n"
                            "Connection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\n"
                            "Content-Length: 0\r\n\r\n";
    const char ping[] = {'\x80', '\x03', '\x00', '\x06', '\x00', '\x00', '\x00', '\x04', '\x00', '\x00', '\x00', '\x07'};
    std::string got = SendAtOnce(port, spdy_head + std::string(ping, sizeof ping), std::string(ping, sizeof ping));
    EXPECT_EQ(got.rfind("HTTP/1.1 101", 0), 0u) << got;
    EXPECT_NE(got.find(std::string(ping, sizeof ping)), std::string::npos) << "the PING reply sent with the 101 was lost";
    // The gateway is alive and serving.
    Process health({"/usr/bin/curl", "-s", "http://127.0.0.1:" + port + "/healthz"});
    EXPECT_EQ(health.Finish(), 0) << gw->output();
    EXPECT_EQ(health.output(), "ok") << gw->output();
  }
}

// Issue 11: the caller's Connection header once reached the upstream
// verbatim on upgrades, listing kubegate's own Impersonate-* as hop-by-hop.
TEST(Gateway, UpgradesCarryExactlyConnectionUpgradeAndCallerListedHeadersAreDropped) {
  ASSERT_EQ(E().Run("1.32", {"run", "hopbyhop", "--image=x", "--restart=Never"}).code, 0);
  auto [gw, port] = StartPlainGateway("hopgw");
  ASSERT_FALSE(port.empty()) << gw->output();
  const std::string target = "/api/v1/namespaces/default/pods/hopbyhop/exec?command=echo&command=hop&stdout=true";
  std::string head = "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer alice-secret-token\r\n"
                     "Connection: Upgrade, Impersonate-User, Impersonate-Group, X-Hop\r\nX-Hop: 1\r\n"
                     "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Protocol: v5.channel.k8s.io\r\n\r\n";
  std::string got = SendAtOnce(port, head, "hop");
  EXPECT_EQ(got.rfind("HTTP/1.1 101", 0), 0u) << got;
  auto seen = E().Received("/pods/hopbyhop/exec");
  ASSERT_EQ(seen.size(), 1u);
  const json& h = seen[0]["headers"];
  EXPECT_EQ(h["Connection"], json::array({"Upgrade"})) << h.dump();
  EXPECT_FALSE(h.contains("X-Hop")) << h.dump();
  EXPECT_EQ(h["Impersonate-User"], json::array({"alice"})) << h.dump();
}

// Issue 11: the API server refuses a timeout it cannot parse (400, before
// authorization); kubegate refuses it too, forwards nothing, and records
// the refusal.
TEST(Gateway, UnparsableTimeoutIsRefusedAndRecordedNotForwarded) {
  std::string ca = (E().dir / "gw" / "pki" / "ca.crt").string();
  for (const char* t : {"5", "1x"}) {
    std::string target = std::string("/api/v1/namespaces/default/configmaps?timeout=") + t + "&labelSelector=tmo";
    Process get({"/usr/bin/curl", "-s", "-w", "\n%{http_code}", "--cacert", ca, "-H", "Authorization: Bearer alice-secret-token",
                 E().gateway_url + target});
    ASSERT_EQ(get.Finish(), 0);
    EXPECT_EQ(get.output().substr(get.output().rfind('\n') + 1), "400") << get.output();
    EXPECT_NE(get.output().find("invalid timeout"), std::string::npos) << get.output();
    EXPECT_TRUE(E().Received(std::string("timeout=") + t + "&labelSelector=tmo").empty()) << "forwarded";
  }
  Process audit({std::string(kBuildDir) + "/src/kubegate", "audit", "--config", (E().dir / "gateway.yaml").string(),
                 "-o", "jsonl", "--decision", "deny", "--limit", "50"});
  ASSERT_EQ(audit.Finish(), 0) << audit.output();
  EXPECT_NE(audit.output().find("timeout=1x"), std::string::npos) << audit.output();
}

// Issue 11: every file kubegate creates is its owner's alone: the store and
// its WAL, the CA and keys, recordings, and the kubeconfigs it writes.
TEST(Gateway, FilesKubegateCreatesAreOwnerOnly) {
  ASSERT_EQ(E().Run("1.32", {"run", "perms", "--image=x", "--restart=Never"}).code, 0);
  ASSERT_EQ(E().Run("1.32", {"exec", "perms", "--", "echo", "recorded"}).code, 0);
  int checked = 0;
  bool saw_db = false, saw_wal = false, saw_key = false, saw_recording = false;
  for (const auto& entry : fs::recursive_directory_iterator(E().dir / "gw")) {
    if (!entry.is_regular_file()) continue;
    auto perms = entry.status().permissions();
    EXPECT_EQ(perms & (fs::perms::group_all | fs::perms::others_all), fs::perms::none) << entry.path();
    std::string name = entry.path().filename().string();
    saw_db = saw_db || name == "kubegate.db";
    saw_wal = saw_wal || name == "kubegate.db-wal";
    saw_key = saw_key || name.find("key") != std::string::npos;
    saw_recording = saw_recording || name.find(".cast") != std::string::npos;
    ++checked;
  }
  EXPECT_TRUE(saw_db && saw_wal && saw_key && saw_recording) << checked << " files checked";
  std::string out = (E().dir / "perms.kubeconfig").string();
  Process kc({std::string(kBuildDir) + "/src/kubegate", "kubeconfig", "--user", "alice", "--server", E().gateway_url,
              "--ca-file", (E().dir / "gw" / "pki" / "ca.crt").string(), "--token-file", (E().dir / "alice.token").string(),
              "-o", out});
  ASSERT_EQ(kc.Finish(), 0) << kc.output();
  EXPECT_EQ(fs::status(out).permissions() & (fs::perms::group_all | fs::perms::others_all), fs::perms::none);
}

// Issue 11: a caller that goes away during a streamed answer that never
// changes (a quiet watch, logs -f of a quiet container) is noticed at once,
// and kubegate closes the upstream side: the test server sees its peer
// close (it would otherwise end the stream itself after 4 s, which it does
// not record as peer-closed).
TEST(Streaming, AbandonedWatchAndLogsCloseUpstreamAtOnce) {
  ASSERT_EQ(E().Run("1.32", {"create", "namespace", "quiet-ns"}).code, 0);
  ASSERT_EQ(E().Run("1.32", {"run", "quiet-pod", "--image=x", "--restart=Never"}).code, 0);
  struct Case {
    std::vector<std::string> args;
    std::string ready, upstream_target;
  };
  const Case cases[] = {
      {{"get", "configmaps", "-n", "quiet-ns", "-w"}, "", "/api/v1/namespaces/quiet-ns/configmaps?"},
      {{"logs", "-f", "quiet-pod"}, "one line from quiet-pod", "/pods/quiet-pod/log?"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.args[0]);
    std::vector<std::string> argv = {Kubectl("1.32"), "--kubeconfig", (E().dir / "alice.kubeconfig").string()};
    argv.insert(argv.end(), c.args.begin(), c.args.end());
    Process kubectl(argv);
    if (!c.ready.empty()) ASSERT_TRUE(kubectl.WaitFor(c.ready)) << kubectl.output();
    // The stream is open upstream once the test server has the request.
    bool open = false;
    for (int i = 0; i < 200 && !open; ++i) {
      for (const auto& r : E().Received(c.upstream_target)) {
        open = open || c.args[0] == "logs" || r["target"].get<std::string>().find("watch=true") != std::string::npos;
      }
      if (!open) usleep(10 * 1000);
    }
    ASSERT_TRUE(open);
    kubectl.Signal(SIGKILL);
    kubectl.Finish();
    // Bounded poll, well inside the test server's own 4 s deadline.
    bool closed = false;
    for (int i = 0; i < 60 && !closed; ++i) {
      closed = !E().Events("peer-closed", c.upstream_target).empty();
      if (!closed) usleep(50 * 1000);
    }
    EXPECT_TRUE(closed) << "the upstream stream stayed open after the caller went away";
  }
}

// Issue 11: the test server once dropped empty path segments and opened an
// exec session for `pods/b//exec`, which kube-apiserver (go-restful) answers
// with 404; kubegate reads that target as a `get` of pod b, so the imitation
// hid an exec behind a read. Now it routes as go-restful does.
TEST(Gateway, EmptyPathSegmentsRouteAsTheApiServerDoes) {
  ASSERT_EQ(E().Run("1.32", {"run", "segments", "--image=x", "--restart=Never"}).code, 0);
  std::string ca = (E().dir / "gw" / "pki" / "ca.crt").string();
  auto status = [&](const std::string& target) {
    Process p({"/usr/bin/curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", ca, "-H",
               "Authorization: Bearer alice-secret-token", "-H", "Connection: Upgrade", "-H", "Upgrade: websocket", "-H",
               "Sec-WebSocket-Version: 13", "-H", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "-H",
               "Sec-WebSocket-Protocol: v5.channel.k8s.io", "--max-time", "5", E().gateway_url + target});
    p.Finish();
    return p.output();
  };
  EXPECT_EQ(status("/api/v1/namespaces/default/pods/segments//exec?command=echo&stdout=true"), "404");
  EXPECT_EQ(status("/api/v1//namespaces/default/pods/segments/exec?command=echo&stdout=true"), "404");
  EXPECT_EQ(status("/apis//v1/namespaces/default/pods/segments/exec?command=echo&stdout=true"), "404");
  // A variable segment may be empty: all namespaces.
  RunResult all = E().Run("1.32", {"get", "--raw", "/api/v1/namespaces//pods"});
  EXPECT_EQ(all.code, 0) << all.out;
  EXPECT_NE(all.out.find("\"segments\""), std::string::npos) << all.out;
}

// Issue 11: idle connections are capped, in all and per source address;
// beyond the cap a connection is closed at once (nothing spent on it), and
// a connection that ends makes room again.
TEST(Gateway, ClientConnectionsAreCappedPerSourceAndInAll) {
  auto [gw, port] = StartPlainGateway("capgw", ", max_connections: 10, max_connections_per_source: 3");
  ASSERT_FALSE(port.empty()) << gw->output();
  auto connect_to = [&] {
    int fd = ConnectLoopback(port, 5);
    EXPECT_GE(fd, 0);
    return fd;
  };
  std::vector<int> idle;
  for (int i = 0; i < 3; ++i) idle.push_back(connect_to());
  // The kernel accepts the fourth; kubegate closes it without a byte.
  int over = connect_to();
  char c;
  EXPECT_EQ(recv(over, &c, 1, 0), 0) << "the connection over the cap was not closed at once";
  close(over);
  Process refused({"/usr/bin/curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1:" + port + "/healthz"});
  refused.Finish();
  EXPECT_EQ(refused.output(), "000") << "over the cap";
  // One idle connection ends: room for one more.
  close(idle.back());
  idle.pop_back();
  bool served = false;
  for (int i = 0; i < 100 && !served; ++i) {  // the close reaches the gateway asynchronously
    Process health({"/usr/bin/curl", "-s", "http://127.0.0.1:" + port + "/healthz"});
    health.Finish();
    served = health.output() == "ok";
    if (!served) usleep(20 * 1000);
  }
  EXPECT_TRUE(served);
  for (int fd : idle) close(fd);
  Process metrics({"/usr/bin/curl", "-s", "-H", "Authorization: Bearer alice-secret-token",
                   "http://127.0.0.1:" + port + "/metrics"});
  ASSERT_EQ(metrics.Finish(), 0);
  EXPECT_NE(metrics.output().find("kubegate_connections_rejected_total "), std::string::npos) << metrics.output();
  EXPECT_EQ(metrics.output().find("kubegate_connections_rejected_total 0\n"), std::string::npos) << metrics.output();
}

TEST(Gateway, SlowClientsDoNotHoldWorkers) {
  std::string port = E().gateway_url.substr(E().gateway_url.rfind(':') + 1);
  std::vector<std::unique_ptr<Process>> slow;
  for (int i = 0; i < 8; ++i) {
    // Half a request head, then silence for 20 s.
    slow.push_back(std::make_unique<Process>(std::vector<std::string>{
        "/bin/sh", "-c",
        "(printf 'GET /api/v1/pods HTTP/1.1\\r\\nHost: x\\r\\n'; sleep 20) | openssl s_client -quiet -connect 127.0.0.1:" +
            port + " 2>&1; echo closed"}));
  }
  auto r = E().Run("1.32", {"get", "ns"});
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("kube-system"), std::string::npos);
}

TEST(Gateway, GracefulShutdownFinishesInFlightRequests) {
  auto [gw, url] = E().StartGateway("drain", "shutdown_grace_seconds: 30\n");
  ASSERT_FALSE(url.empty()) << gw->output();
  std::string ca = (E().dir / "drain-" / "pki" / "ca.crt").string();
  ASSERT_EQ(E().Run("1.32", {"run", "drained", "--image=x", "--restart=Never"}).code, 0);
  const std::string watch_target = "/api/v1/namespaces/default/pods?resourceVersion=";
  const std::size_t watches_before = E().Received(watch_target).size();
  // A watch in flight (the test server ends it after 4 s).
  Process watch({Kubectl("1.32"), "--kubeconfig", "/dev/null", "--server", url, "--certificate-authority", ca, "--token",
                 "alice-secret-token", "get", "pods", "-w"});
  ASSERT_TRUE(watch.WaitFor("drained")) << watch.output();
  // The watch is in flight once the upstream has it (polled, bounded).
  bool upstream_has_watch = false;
  for (int i = 0; i < 100 && !upstream_has_watch; ++i) {
    upstream_has_watch = E().Received(watch_target).size() > watches_before;
    if (!upstream_has_watch) usleep(50 * 1000);
  }
  ASSERT_TRUE(upstream_has_watch);
  gw->Signal(SIGTERM);
  ASSERT_TRUE(gw->WaitFor("shutting down")) << gw->output();
  // The listener is closed at once: new connections are refused.
  Process late({"/usr/bin/curl", "-s", "--cacert", ca, url + "/healthz"});
  EXPECT_NE(late.Finish(), 0) << late.output();
  // The in-flight watch runs to its normal end, then the gateway exits 0.
  EXPECT_EQ(watch.Finish(), 0) << watch.output();
  EXPECT_EQ(gw->Finish(), 0) << gw->output();
  EXPECT_NE(gw->output().find("shutdown complete (0 requests still in flight were cut)"), std::string::npos)
      << gw->output();
}

}  // namespace
}  // namespace e2e

int main(int argc, char** argv) {
  using namespace e2e;
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::AddGlobalTestEnvironment(new Env);
  return RUN_ALL_TESTS();
}
