// The end-to-end suite's environment: one kube-testserver and one gateway
// shared by every test, child processes, and helpers. Included by each
// e2e_*.cc; main() is in e2e_test.cc.
#pragma once
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace e2e {

// The request id ("kg-" and hex digits) that starts at `pos` of `text`.
inline std::string RequestIdAt(const std::string& text, std::size_t pos) {
  if (pos > text.size() || text.compare(pos, 3, "kg-") != 0) return "";
  std::size_t end = text.find_first_not_of("0123456789abcdef", pos + 3);
  return text.substr(pos, (end == std::string::npos ? text.size() : end) - pos);
}

namespace fs = std::filesystem;
using json = nlohmann::json;

inline const char* kBuildDir = KUBEGATE_BUILD_DIR;
inline const char* kSourceDir = KUBEGATE_SOURCE_DIR;

inline std::string Kubectl(const std::string& version) { return "/usr/lib/google-cloud-sdk/bin/kubectl." + version; }

// A child process whose stdout+stderr a thread drains continuously (a
// child that logs must never block on a full pipe); WaitFor blocks on a
// condition variable until the output holds what it waits for.
class Process {
 public:
  explicit Process(const std::vector<std::string>& argv, const std::vector<std::string>& env = {}) {
    int fds[2];
    if (pipe(fds) != 0) abort();
    pid_ = fork();
    if (pid_ == 0) {
      setpgid(0, 0);  // its own process group, so the destructor ends pipelines too
      dup2(fds[1], 1);
      dup2(fds[1], 2);
      close(fds[0]);
      close(fds[1]);
      for (const auto& e : env) putenv(strdup(e.c_str()));
      std::vector<char*> args;
      for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      execv(args[0], args.data());
      _exit(127);
    }
    close(fds[1]);
    reader_ = std::thread([this, fd = fds[0]] {
      char buf[4096];
      ssize_t n;
      while ((n = read(fd, buf, sizeof buf)) > 0) {
        std::lock_guard<std::mutex> lock(mu_);
        output_.append(buf, static_cast<std::size_t>(n));
        cv_.notify_all();
      }
      close(fd);
      std::lock_guard<std::mutex> lock(mu_);
      eof_ = true;
      cv_.notify_all();
    });
  }
  ~Process() {
    if (pid_ > 0) {
      kill(-pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (reader_.joinable()) reader_.join();
  }

  // Waits until `needle` appears in the output (true), or the output ends
  // or `limit` passes (false). The limit only guards against a hang.
  bool WaitFor(const std::string& needle, std::chrono::seconds limit = std::chrono::seconds(30)) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, limit, [&] { return output_.find(needle) != std::string::npos || eof_; }) &&
           output_.find(needle) != std::string::npos;
  }

  // Waits for the process to exit and its output to end; returns the exit code.
  int Finish() {
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    reader_.join();
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

  void Signal(int sig) { kill(pid_, sig); }
  void SignalGroup(int sig) { kill(-pid_, sig); }

  std::string output() const {
    std::lock_guard<std::mutex> lock(mu_);
    return output_;
  }

 private:
  pid_t pid_ = -1;
  std::thread reader_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::string output_;
  bool eof_ = false;
};

struct RunResult {
  int code;
  std::string out;
};

inline std::string ReadAll(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A loopback port the kernel just handed out and took back: nobody listens.
inline std::string ClosedLoopbackPort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) abort();
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return std::to_string(ntohs(addr.sin_port));
}

inline std::string PortFrom(const std::string& out) {
  auto at = out.find("127.0.0.1:");
  std::string rest = out.substr(at + 10);
  return rest.substr(0, rest.find_first_not_of("0123456789"));
}

// One test server and one gateway for the whole suite.
class Env : public ::testing::Environment {
 public:
  static inline Env* instance = nullptr;
  fs::path dir;
  std::unique_ptr<Process> testserver, gateway;
  std::string gateway_url;

  void SetUp() override {
    dir = fs::temp_directory_path() / ("kubegate-e2e-" + std::to_string(getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir);
    std::string b = kBuildDir;
    testserver = std::make_unique<Process>(std::vector<std::string>{
        b + "/testserver/kube-testserver", "--data-dir", (dir / "ts").string(), "--kubeconfig-out",
        (dir / "upstream.kubeconfig").string(), "--record", (dir / "record.jsonl").string(), "--max-watch-seconds", "4",
        "--client-ca", (dir / "ts" / "pki" / "ca.crt").string()});
    ASSERT_TRUE(testserver->WaitFor("listening on")) << testserver->output();
    std::ofstream(dir / "alice.token") << "alice-secret-token";
    std::ofstream(dir / "bot.token") << "bot-secret-token";
    std::ofstream(dir / "admin.token") << "admin-secret-token";
    auto hash = [&](const std::string& f) {
      Process p({b + "/src/kubegate", "token", "hash", "--token-file", (dir / f).string()});
      p.Finish();
      return p.output().substr(0, 64);
    };
    std::ofstream(dir / "gateway.yaml") << "listen: {address: 127.0.0.1, port: 0}\n"
                                        << "data_dir: " << (dir / "gw").string() << "\n"
                                        << "upstream: {kubeconfig: " << (dir / "upstream.kubeconfig").string() << "}\n"
                                        << "tokens:\n"
                                        << "  - {user: alice, groups: [dev, ops], kind: human, token_sha256: "
                                        << hash("alice.token") << "}\n"
                                        << "  - {user: deploy-bot, kind: agent, token_sha256: " << hash("bot.token")
                                        << "}\n"
                                        << "  - {user: admin, kind: human, may_impersonate: true, token_sha256: "
                                        << hash("admin.token") << "}\n";
    gateway = std::make_unique<Process>(
        std::vector<std::string>{b + "/src/kubegate", "serve", "--config", (dir / "gateway.yaml").string()});
    ASSERT_TRUE(gateway->WaitFor("kubegate listening on")) << gateway->output();
    gateway_url = "https://127.0.0.1:" + PortFrom(gateway->output().substr(gateway->output().find("listening on")));
    for (const char* user : {"alice", "bot", "admin"}) {
      Process p({b + "/src/kubegate", "kubeconfig", "--user", user, "--server", gateway_url, "--ca-file",
                 (dir / "gw" / "pki" / "ca.crt").string(), "--token-file",
                 (dir / (std::string(user) + ".token")).string(), "-o",
                 (dir / (std::string(user) + ".kubeconfig")).string()});
      ASSERT_EQ(p.Finish(), 0) << p.output();
    }
    instance = this;
  }

  void TearDown() override {
    gateway.reset();
    testserver.reset();
    std::error_code ec;
    fs::remove_all(dir, ec);
  }

  // Starts another gateway with the suite's tokens plus `extra` YAML and
  // `upstream_kubeconfig` (default: the test server); returns it and its URL.
  // `listen`: a whole `listen: {...}` line replacing the default one.
  std::pair<std::unique_ptr<Process>, std::string> StartGateway(const std::string& name, const std::string& extra,
                                                                 const std::string& upstream_kubeconfig = "",
                                                                 const std::string& listen = "") {
    std::string b = kBuildDir;
    std::string cfg = ReadAll(dir / "gateway.yaml");
    if (!listen.empty()) {
      std::size_t at = cfg.find("listen: ");
      cfg.replace(at, cfg.find('\n', at) - at, listen);
    }
    std::size_t at = cfg.find("data_dir: ");
    cfg.replace(at, cfg.find('\n', at) - at, "data_dir: " + (dir / (name + "-")).string());
    if (!upstream_kubeconfig.empty()) {
      auto at = cfg.find("upstream: {kubeconfig: ");
      auto end = cfg.find("}", at);
      cfg.replace(at, end - at + 1, "upstream: {kubeconfig: " + upstream_kubeconfig + "}");
    }
    std::ofstream(dir / (name + ".yaml")) << cfg << extra;
    auto p = std::make_unique<Process>(
        std::vector<std::string>{b + "/src/kubegate", "serve", "--config", (dir / (name + ".yaml")).string()});
    if (!p->WaitFor("kubegate listening on")) return {std::move(p), ""};
    std::string out = p->output();
    std::string scheme = out.find("listening on http://") != std::string::npos ? "http" : "https";
    return {std::move(p), scheme + "://127.0.0.1:" + PortFrom(out.substr(out.find("listening on")))};
  }

  RunResult Run(const std::string& version, std::vector<std::string> args, const std::string& user = "alice") {
    std::vector<std::string> argv = {Kubectl(version), "--kubeconfig", (dir / (user + ".kubeconfig")).string()};
    argv.insert(argv.end(), args.begin(), args.end());
    Process p(argv);
    int code = p.Finish();
    return {code, p.output()};
  }

  // Events the test server recorded (resize, peer-closed, ...) whose data
  // contains `needle`.
  std::vector<json> Events(const std::string& event, const std::string& needle) {
    std::vector<json> out;
    std::ifstream in(dir / "record.jsonl");
    std::string line;
    while (std::getline(in, line)) {
      auto j = json::parse(line, nullptr, false);
      if (j.is_discarded() || j.value("event", "") != event) continue;
      if (j.value("data", "").find(needle) != std::string::npos) out.push_back(j);
    }
    return out;
  }

  // Requests the test server received whose target contains `needle`.
  std::vector<json> Received(const std::string& needle) {
    std::vector<json> out;
    std::ifstream in(dir / "record.jsonl");
    std::string line;
    while (std::getline(in, line)) {
      auto j = json::parse(line, nullptr, false);
      if (j.is_discarded() || !j.contains("method")) continue;  // events (resize, certificate) are not requests
      if (j["target"].get<std::string>().find(needle) != std::string::npos) out.push_back(j);
    }
    return out;
  }
};

inline Env& E() { return *Env::instance; }

// Whether the API server reads a request the test server received as a dry
// run (WIRE.md §8; k8s.io/apiserver endpoints/handlers/delete.go): a DELETE
// with a body by its DeleteOptions only, anything else by the query.
inline bool ReadsAsDryRun(const json& r) {
  std::string body = r.value("body", "");
  if (r["method"] == "DELETE" && !body.empty()) {
    auto opts = json::parse(body, nullptr, false);
    return opts.is_object() && opts.value("dryRun", json::array()) == json::array({"All"});
  }
  return r["target"].get<std::string>().find("dryRun=All") != std::string::npos;
}

inline std::string WriteFile(const std::string& name, const std::string& text) {
  fs::path p = E().dir / name;
  std::ofstream(p) << text;
  return p.string();
}

}  // namespace e2e

namespace e2e {

// A session's recording as the audit log links it: the summary in the
// result record and the exported file (`kubegate recording export`, which
// checks the file against the record's hash).
struct Recorded {
  std::string request_id;
  json summary;       // the result record's "recording"
  std::string file;   // the exported recording
  std::string export_error;
};

// The recording of the newest request the upstream received whose target
// contains `needle` (through the gateway configured by `config`). The
// result record is written when the session ends, just after kubectl
// exits: polled for, bounded at ~10 s.
inline Recorded RecordingOf(const std::string& needle, const std::string& config = "") {
  Recorded r;
  std::string cfg = config.empty() ? (E().dir / "gateway.yaml").string() : config;
  auto reqs = E().Received(needle);
  if (reqs.empty()) return r;
  const json& h = reqs.back()["headers"];
  if (!h.contains("Impersonate-Extra-Kubegate-Request-Id")) return r;
  r.request_id = h["Impersonate-Extra-Kubegate-Request-Id"][0];
  for (int i = 0; i < 100 && r.summary.is_null(); ++i) {
    Process show({std::string(kBuildDir) + "/src/kubegate", "audit", "show", r.request_id, "-o", "json", "--config", cfg});
    show.Finish();
    auto j = json::parse(show.output(), nullptr, false);
    if (j.is_object() && j["result"].is_object() && j["result"].contains("recording")) {
      r.summary = j["result"]["recording"];
    } else {
      usleep(100 * 1000);
    }
  }
  Process ex({std::string(kBuildDir) + "/src/kubegate", "recording", "export", r.request_id, "--config", cfg});
  if (ex.Finish() == 0) {
    r.file = ex.output();
  } else {
    r.export_error = ex.output();
  }
  return r;
}

// The text of an asciicast's events of one type ("o", "i", "r", "m"), joined.
inline std::string CastEvents(const std::string& cast, const std::string& type) {
  std::string out;
  std::istringstream in(cast);
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    auto e = json::parse(line, nullptr, false);
    if (e.is_array() && e.size() == 3 && e[1] == type) out += e[2].get<std::string>() + (type == "r" || type == "m" ? "\n" : "");
  }
  return out;
}

// A gateway with a policy, and kubeconfigs for its callers.
// A PostgreSQL server of the test's own on loopback (scripts/pg-test.sh),
// destroyed with this object; `store` is the gateway config line for it.
struct ScratchPostgres {
  explicit ScratchPostgres(const std::string& name) : dir((E().dir / name).string()) {
    Process start({"/bin/bash", script, "start", dir});
    started = start.Finish() == 0;
    output = start.output();
    conninfo = output.substr(0, output.find('\n'));
    store = "store: {postgres: \"" + conninfo + "\"}\n";
  }
  ~ScratchPostgres() {
    Process destroy({"/bin/bash", script, "destroy", dir});
    destroy.Finish();
  }
  const std::string script = std::string(kSourceDir) + "/scripts/pg-test.sh";
  std::string dir, output, conninfo, store;
  bool started = false;
};

struct PolicyGateway {
  std::unique_ptr<Process> process;
  std::string url, name;

  // `serve_as`: the name of another PolicyGateway whose serving
  // certificate (and so CA) this one uses, as replicas behind one Service do.
  PolicyGateway(const std::string& gw_name, const std::string& policy, const std::string& extra = "",
                const std::string& serve_as = "")
      : name(gw_name) {
    std::string policy_path = WriteFile(gw_name + "-policy.yaml", policy);
    const fs::path pki = E().dir / ((serve_as.empty() ? gw_name : serve_as) + "-") / "pki";
    std::string listen;
    if (!serve_as.empty()) {
      listen = "listen: {address: 127.0.0.1, port: 0, tls_cert_file: " + (pki / "server.crt").string() +
               ", tls_key_file: " + (pki / "server.key").string() + "}";
    }
    auto [p, u] =
        E().StartGateway(gw_name, "policy_file: " + policy_path + "\nauditors: {users: [admin]}\n" + extra, "", listen);
    process = std::move(p);
    url = u;
    ca_file = (pki / "ca.crt").string();
    for (const char* user : {"alice", "bot", "admin"}) WriteKubeconfig(user, url, Kubeconfig(user));
  }
  // A kubeconfig for `user` at `server` (this gateway's CA).
  void WriteKubeconfig(const std::string& user, const std::string& server, const std::string& path) const {
    Process kc({std::string(kBuildDir) + "/src/kubegate", "kubeconfig", "--user", user, "--server", server, "--ca-file",
                ca_file, "--token-file", (E().dir / (user + ".token")).string(), "-o", path});
    EXPECT_EQ(kc.Finish(), 0) << kc.output();
  }
  std::string ca_file;
  std::string Kubeconfig(const std::string& user) const {
    return (E().dir / (name + "-" + user + ".kubeconfig")).string();
  }
  std::string Config() const { return (E().dir / (name + ".yaml")).string(); }
  std::unique_ptr<Process> Start(const std::string& user, std::vector<std::string> args,
                                 const std::string& version = "1.32") const {
    std::vector<std::string> argv = {Kubectl(version), "--kubeconfig", Kubeconfig(user)};
    argv.insert(argv.end(), args.begin(), args.end());
    return std::make_unique<Process>(argv);
  }
  RunResult Run(const std::string& user, std::vector<std::string> args, const std::string& version = "1.32") const {
    auto p = Start(user, std::move(args), version);
    int code = p->Finish();
    return {code, p->output()};
  }
  // kubectl gate ... as `user`, through real kubectl and the shipped plugin.
  RunResult Gate(const std::string& user, std::vector<std::string> args) const {
    std::vector<std::string> argv = {Kubectl("1.32"), "gate"};
    argv.insert(argv.end(), args.begin(), args.end());
    Process p(argv, {"PATH=" + std::string(kSourceDir) + "/tools:/usr/bin:/bin", "KUBECONFIG=" + Kubeconfig(user),
                     "KUBECTL=" + Kubectl("1.32")});
    int code = p.Finish();
    return {code, p.output()};
  }
  // The id of the newest pending request whose description contains `needle`
  // (polled: the held request appears once kubectl has sent it).
  std::string WaitPending(const std::string& needle) const {
    for (int i = 0; i < 200; ++i) {
      RunResult r = Gate("alice", {"pending"});
      auto at = r.out.find(needle);
      if (r.code == 0 && at != std::string::npos) {
        auto id = r.out.rfind("Request kg-", at);
        if (id != std::string::npos) return RequestIdAt(r.out, id + 8);
      }
      usleep(50 * 1000);
    }
    return "";
  }
};

}  // namespace e2e
