// kubegate: one binary, several subcommands.
//   serve       run the gateway
//   classify    print the RequestInfo of METHOD URL, as the gateway reads it
//   token hash  print the SHA-256 of a token for the config file
//   kubeconfig  write a ready kubeconfig for a caller
//   cert issue  issue a client certificate from kubegate's CA
//   login       kubectl credential plugin: sign in at an OpenID provider
//   agent       per-task agent tokens: issue, revoke, list (as a broker)
//   identity    identities managed at runtime: create, list, disable, enable
//   token       hash; create, list, revoke static tokens of registered identities
#include <sys/stat.h>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include <openssl/rand.h>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "audit/audit_log.h"
#include "audit/signer.h"
#include "classify/request_info.h"
#include "cli/audit_commands.h"
#include "cli/agent_commands.h"
#include "cli/identity_commands.h"
#include "cli/approval_commands.h"
#include "cli/recording_commands.h"
#include "cli/policy_commands.h"
#include "common/text.h"
#include "cli/kubeconfig_writer.h"
#include "config/config.h"
#include "credentials/credential_store.h"
#include "common/limits.h"
#include "credentials/identity_store.h"
#include "store/store_events.h"
#include "identity/authenticator.h"
#include "login/oauth_login.h"
#include "net/gateway_server.h"
#include "net/login_transport.h"
#include "tls/pki.h"
#include "upstream/upstream_target.h"

namespace kubegate {
namespace {

int Fail(const std::string& msg) {
  std::cerr << "kubegate: " << msg << "\n";
  return 2;
}

// `kubegate login`: prints the ExecCredential on stdout; everything the
// person reads goes to stderr (kubectl shows it).
int Login(const LoginOptions& o) {
  NetLoginHttp http(o.ca_file);
  LoopbackRedirectReceiver receiver;
  LoginEnvironment env{http,
                       SystemClock(),
                       [](std::int64_t ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); },
                       std::cerr,
                       &receiver,
                       [](std::size_t n) {
                         std::string raw(n, '\0');
                         RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), static_cast<int>(n));
                         return Base64UrlEncode(raw);
                       }};
  auto out = kubegate::Login(o, env);
  if (!out) return Fail("login: " + out.error().message);
  std::cout << *out;
  return 0;
}

int Serve(const std::string& config_path, const std::string& port_file, bool disable_audit) {
  auto cfg = LoadConfigFile(config_path);
  if (!cfg) return Fail(cfg.error().message);
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %l %v", spdlog::pattern_time_type::utc);
  spdlog::set_level(spdlog::level::from_str(cfg->log_level));
  Result<UpstreamTarget> upstream = Error::BadRequest("no upstream configured (upstream.kubeconfig or upstream.in_cluster)");
  if (cfg->upstream.in_cluster) {
    upstream = LoadInCluster("/var/run/secrets/kubernetes.io/serviceaccount", [](const char* k) { return std::getenv(k); });
  } else if (!cfg->upstream.kubeconfig.empty()) {
    upstream = LoadKubeconfig(cfg->upstream.kubeconfig, cfg->upstream.context);
  }
  if (!upstream) return Fail(upstream.error().message);
  ServingCert cert{cfg->listen.tls_cert_file, cfg->listen.tls_key_file};
  if (cert.cert_file.empty()) {
    auto pki = EnsureGatewayPki(cfg->data_dir, cfg->listen.tls_hosts);
    if (!pki) return Fail(pki.error().message);
    cert = {pki->server_cert_file, pki->server_key_file};
    spdlog::info("{} kubegate CA at {}", pki->created ? "created" : "reusing", pki->ca_cert_file);
  }
  // The audit log: opened before the listener, so a store that cannot be
  // reached at start stops the gateway instead of failing every request.
  std::error_code fs_ec;
  std::filesystem::create_directories(cfg->data_dir, fs_ec);
  if (cfg->recording.enabled) {
    // Session recordings: owner-only, like the rest of the data directory.
    std::filesystem::create_directories(cfg->RecordingDir(), fs_ec);
    if (fs_ec) return Fail("cannot create the recording directory " + cfg->RecordingDir() + ": " + fs_ec.message());
    std::filesystem::permissions(cfg->RecordingDir(), std::filesystem::perms::owner_all, fs_ec);
  }
  auto signer = Signer::LoadOrCreate(SigningKeyPath(*cfg));
  if (!signer) return Fail(signer.error().message);
  StoreConfig store_config = StoreConfigFor(*cfg);
  std::unique_ptr<AuditLog> audit_log;
  if (disable_audit) {
    spdlog::warn("AUDIT IS OFF (--bench-disable-audit): requests are forwarded without audit records");
  } else {
    auto store = AuditStore::Open(store_config);
    if (!store) return Fail(store.error().message);
    spdlog::info("audit log in {} (schema {})", (*store)->Describe(), (*store)->SchemaVersion());
    if (cfg->audit.journal && store_config.postgres_conninfo.empty()) {
      // A journal that does not continue the database stops the gateway:
      // it would otherwise fork the chain.
      auto head = (*store)->StartJournal();
      if (!head) return Fail(head.error().message);
      spdlog::info("audit journal in {} (chain head {})", JournalDirFor(store_config.sqlite_path), head->seq);
    }
    AuditLogOptions opts;
    opts.checkpoint_every = cfg->audit.checkpoint_every;
    opts.checkpoint_interval_ms = cfg->audit.checkpoint_interval_ms;
    opts.retention_ms = cfg->audit.retention_ms;
    opts.fsync_interval_ms = cfg->audit.FsyncIntervalOrZero();
    if (cfg->recording.enabled) opts.recording_dir = cfg->RecordingDir();
    audit_log = std::make_unique<AuditLog>(std::move(*store), SystemClock(), signer->get(), opts);
  }
  // Approvals: their own store connection, used only on the gateway's store
  // thread. Requests a previous process held are abandoned (their
  // connections are gone); grants stay valid until they expire.
  auto approval_db = ApprovalService::OpenDatabase(store_config);
  if (!approval_db) return Fail(approval_db.error().message);
  ApprovalService approvals(std::move(*approval_db), SystemClock());
  // One process on SQLite: whatever was held belonged to the previous one.
  // Replicas on PostgreSQL: only what no live replica holds.
  if (!store_config.postgres_conninfo.empty()) {
    if (auto beat = approvals.Heartbeat(); !beat) return Fail(beat.error().message);
  }
  if (auto abandoned = store_config.postgres_conninfo.empty()
                           ? approvals.AbandonHeld()
                           : approvals.AbandonOrphans(limits::kReplicaDeadAfter.count());
      !abandoned) {
    return Fail(abandoned.error().message);
  } else if (*abandoned > 0) {
    spdlog::warn("{} requests held by a previous gateway process were marked abandoned", *abandoned);
  }
  // Runtime credentials and identities: one connection for the REST API (store thread),
  // one for the poller that keeps every worker's view current.
  auto credential_db = CredentialStore::OpenDatabase(store_config);
  if (!credential_db) return Fail(credential_db.error().message);
  CredentialStore credentials(**credential_db, SystemClock());
  IdentityStore identities(**credential_db, SystemClock());
  auto poller_db = CredentialStore::OpenDatabase(store_config);
  if (!poller_db) return Fail(poller_db.error().message);
  CredentialCache credential_cache;
  CredentialPoller poller(std::move(*poller_db), credential_cache, SystemClock());
  if (auto polled = poller.PollOnce(); !polled) return Fail(polled.error().message);
  poller.Start();
  AuditWiring wiring{audit_log.get(), [store_config] { return AuditStore::Open(store_config); }, &approvals,
                     &credentials, &identities, &credential_cache};
  auto server = GatewayServer::Create(*cfg, *upstream, cert, wiring);
  if (!server) return Fail(server.error().message);
  auto started = (*server)->Start();
  if (!started) return Fail(started.error().message);
  std::string scheme = cfg->listen.plain_http ? "http" : "https";
  spdlog::info("kubegate listening on {}://{}:{} -> upstream {}", scheme, cfg->listen.address, (*server)->port(),
               upstream->HostHeader());
  // Replicas sharing PostgreSQL hear each other's changes at once: an
  // approval made through another replica releases the hold here, a
  // revocation or a disable is polled now (the sweep and the poller stay
  // as the safety net). Declared after the server: it stops first.
  std::unique_ptr<StoreEvents> store_events;
  if (!store_config.postgres_conninfo.empty()) {
    GatewayServer* gateway = server->get();
    store_events = std::make_unique<StoreEvents>(
        store_config.postgres_conninfo, std::vector<std::string>{kWakeChannel, kCredentialsChannel},
        [gateway, &poller](std::string_view channel, std::string_view payload) {
          if (channel == kWakeChannel) {
            gateway->WakeFromStore(payload);
          } else {
            poller.Kick();
          }
        });
    store_events->Start();
  }
  if (!port_file.empty()) {
    auto w = WriteFileAtomic(port_file, std::to_string((*server)->port()) + "\n", 0600);
    if (!w) return Fail(w.error().message);
  }
  (*server)->Wait();
  return 0;
}

int Classify(const std::string& method, const std::string& url, const std::string& body_file,
             const std::string& content_type) {
  auto info = ClassifyRequest(method, url);
  if (!info) {
    std::cout << R"({"error":)" << nlohmann::json(info.error().message).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << R"(,"code":)"
              << info.error().http_code << "}\n";
    return 1;
  }
  if (!body_file.empty() && NeedsBodyToClassify(*info)) {
    auto body = ReadFile(body_file);
    if (!body) return Fail(body.error().message);
    ApplyDeleteBody(*info, content_type, *body);
  }
  std::cout << ToJson(*info) << "\n";
  return 0;
}

}  // namespace
}  // namespace kubegate

int main(int argc, char** argv) {
  using namespace kubegate;
  // Every file kubegate creates (the store and its WAL, keys, recordings,
  // kubeconfigs, certificates) is readable by its owner only.
  ::umask(077);
  CLI::App app{"kubegate: an identity-aware access gateway for the Kubernetes API"};
  app.require_subcommand(1);

  std::string config_path, port_file;
  auto* serve = app.add_subcommand("serve", "Run the gateway");
  serve->add_option("--config", config_path, "Config file (YAML)")->required();
  serve->add_option("--port-file", port_file, "Write the bound port here once listening");
  bool bench_disable_audit = false;
  serve->add_flag("--bench-disable-audit", bench_disable_audit,
                  "Benchmarks only: forward without audit records (to measure audit's cost)")
      ->group("");
  auto audit_cli = AddAuditCommands(app);
  auto policy_cli = AddPolicyCommands(app);
  auto approval_cli = AddApprovalCommands(app);
  auto agent_cli = AddAgentCommands(app);
  auto recording_cli = AddRecordingCommands(app);

  std::string method, url, body_file, content_type = "application/json";
  auto* classify = app.add_subcommand("classify", "Print how kubegate (and the API server) reads a request");
  classify->add_option("method", method)->required();
  classify->add_option("url", url)->required();
  classify->add_option("--body", body_file, "Request body (DELETE's DeleteOptions)");
  classify->add_option("--content-type", content_type, "Content-Type of --body");

  auto* token = app.add_subcommand("token", "Token helpers, and static tokens issued at runtime");
  token->require_subcommand(1);
  std::string token_file;
  auto* hash = token->add_subcommand("hash", "Print a token's SHA-256 for tokens[].token_sha256 (reads stdin)");
  hash->add_option("--token-file", token_file, "Read the token from this file instead of stdin");
  auto identity_cli = AddIdentityCommands(app, *token);

  std::string kc_user, kc_token_file, kc_server, kc_ca, kc_out, kc_ns, kc_cert, kc_key;
  auto* kc = app.add_subcommand("kubeconfig", "Write a kubeconfig for a caller");
  kc->add_option("--user", kc_user, "Caller name (names the context)")->required();
  kc->add_option("--server", kc_server, "kubegate's URL, e.g. https://127.0.0.1:8443")->required();
  kc->add_option("--ca-file", kc_ca, "kubegate's CA certificate (DATA_DIR/pki/ca.crt)")->required();
  kc->add_option("--token-file", kc_token_file, "The caller's token");
  kc->add_option("--client-cert", kc_cert, "The caller's client certificate (PEM)");
  kc->add_option("--client-key", kc_key, "The caller's client key (PEM)");
  kc->add_option("--namespace", kc_ns, "Default namespace");
  kc->add_option("-o,--output", kc_out, "Write here instead of stdout");
  LoginOptions kc_login;
  kc->add_option("--oidc-issuer", kc_login.issuer, "Sign in at this OpenID provider with `kubegate login` (an exec user)");
  kc->add_option("--oidc-client-id", kc_login.client_id, "The OAuth client id kubegate's oidc: audiences name");
  kc->add_option("--oidc-ca-file", kc_login.ca_file, "PEM roots for the provider's TLS (default: the system's)");
  kc->add_option("--oidc-flow", kc_login.flow, "device (default) or code (browser, PKCE, loopback redirect)");

  LoginOptions login_opts;
  auto* login = app.add_subcommand(
      "login", "kubectl credential plugin: sign in at an OpenID provider and print an ExecCredential");
  login->add_option("--issuer", login_opts.issuer, "The provider's issuer URL (https)")->required();
  login->add_option("--client-id", login_opts.client_id, "The OAuth client id")->required();
  login->add_option("--ca-file", login_opts.ca_file, "PEM roots for the provider's TLS (default: the system's)");
  login->add_option("--flow", login_opts.flow, "device (default) or code")->check(CLI::IsMember({"device", "code"}));
  login->add_option("--cache-dir", login_opts.cache_dir, "Where tokens are kept (default ~/.kube/cache/kubegate)");

  std::string ci_dir, ci_cn, ci_out;
  std::vector<std::string> ci_orgs;
  auto* cert = app.add_subcommand("cert", "Certificate helpers");
  cert->require_subcommand(1);
  auto* issue = cert->add_subcommand("issue", "Issue a client certificate from a CA (CN = user, O = groups)");
  issue->add_option("--ca-dir", ci_dir, "Directory with ca.crt and ca.key")->required();
  issue->add_option("--user", ci_cn, "User name (CN)")->required();
  issue->add_option("--group", ci_orgs, "Group (O), repeatable");
  issue->add_option("--out", ci_out, "Output prefix: writes PREFIX.crt and PREFIX.key")->required();

  std::string check_config;
  auto* config_cmd = app.add_subcommand("config", "Configuration helpers");
  config_cmd->require_subcommand(1);
  auto* config_check = config_cmd->add_subcommand(
      "check", "Read a config file as serve does (strict: unknown keys, types, ranges) without starting");
  config_check->add_option("--config", check_config, "Config file (YAML)")->required();

  CLI11_PARSE(app, argc, argv);

  if (*serve) return Serve(config_path, port_file, bench_disable_audit);
  if (*config_check) {
    auto cfg = LoadConfigFile(check_config);
    if (!cfg) return Fail(cfg.error().message);
    std::cout << check_config << ": valid (store: " << (cfg->store.postgres.empty() ? "sqlite" : "postgres")
              << ", upstream: " << (cfg->upstream.in_cluster ? "in-cluster" : cfg->upstream.kubeconfig) << ")\n";
    return 0;
  }
  if (int rc = RunAuditCommand(*audit_cli); rc >= 0) return rc;
  if (int rc = RunPolicyCommand(*policy_cli); rc >= 0) return rc;
  if (int rc = RunApprovalCommand(*approval_cli); rc >= 0) return rc;
  if (int rc = RunAgentCommand(*agent_cli); rc >= 0) return rc;
  if (int rc = RunIdentityCommand(*identity_cli); rc >= 0) return rc;
  if (int rc = RunRecordingCommand(*recording_cli); rc >= 0) return rc;
  if (*classify) return Classify(method, url, body_file, content_type);
  if (*hash) {
    std::string t;
    if (!token_file.empty()) {
      auto r = ReadFile(token_file);
      if (!r) return Fail(r.error().message);
      t = *r;
    } else {
      std::stringstream ss;
      ss << std::cin.rdbuf();
      t = ss.str();
    }
    t = TrimTrailingSpace(t);
    if (t.empty()) return Fail("empty token");
    std::cout << Sha256Hex(t) << "\n";
    return 0;
  }
  if (*kc) {
    CallerKubeconfig k;
    k.server = kc_server;
    k.user = kc_user;
    k.namespace_ = kc_ns;
    auto ca = ReadFile(kc_ca);
    if (!ca) return Fail(ca.error().message);
    k.ca_pem = *ca;
    if (!kc_login.issuer.empty()) {
      if (kc_login.client_id.empty()) return Fail("--oidc-issuer needs --oidc-client-id");
      std::error_code ec;
      std::string self = std::filesystem::read_symlink("/proc/self/exe", ec).string();
      k.exec = {ec ? std::string("kubegate") : self, "login", "--issuer", kc_login.issuer, "--client-id",
                kc_login.client_id};
      if (!kc_login.ca_file.empty()) {
        k.exec.insert(k.exec.end(), {"--ca-file", std::filesystem::absolute(kc_login.ca_file).string()});
      }
      if (kc_login.flow != "device") k.exec.insert(k.exec.end(), {"--flow", kc_login.flow});
    } else if (!kc_token_file.empty()) {
      auto t = ReadFile(kc_token_file);
      if (!t) return Fail(t.error().message);
      k.token = TrimTrailingSpace(*t);
    } else if (!kc_cert.empty() && !kc_key.empty()) {
      auto c = ReadFile(kc_cert);
      auto key = ReadFile(kc_key);
      if (!c || !key) return Fail("cannot read --client-cert/--client-key");
      k.client_cert_pem = *c;
      k.client_key_pem = *key;
    } else {
      return Fail("give --token-file, --client-cert with --client-key, or --oidc-issuer with --oidc-client-id");
    }
    std::string text = RenderKubeconfig(k);
    if (kc_out.empty()) {
      std::cout << text;
    } else {
      auto w = WriteFileAtomic(kc_out, text, 0600);
      if (!w) return Fail(w.error().message);
    }
    return 0;
  }
  if (*login) return Login(login_opts);
  if (*issue) {
    auto ca_cert = ReadFile(ci_dir + "/ca.crt");
    auto ca_key = ReadFile(ci_dir + "/ca.key");
    if (!ca_cert || !ca_key) return Fail("cannot read " + ci_dir + "/ca.crt and ca.key");
    auto kp = IssueCert(KeyPair{*ca_cert, *ca_key}, ci_cn, ci_orgs, {}, true);
    if (!kp) return Fail(kp.error().message);
    auto a = WriteFileAtomic(ci_out + ".crt", kp->cert_pem, 0600);
    auto b = WriteFileAtomic(ci_out + ".key", kp->key_pem, 0600);
    if (!a || !b) return Fail("cannot write " + ci_out + ".crt/.key");
    return 0;
  }
  return 0;
}
