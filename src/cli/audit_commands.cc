#include "cli/audit_commands.h"

#include <iostream>

#include "audit/audit_api.h"
#include "audit/audit_format.h"
#include "audit/signer.h"
#include "audit/verify.h"
#include "common/clock.h"
#include "common/limits.h"
#include "tls/pki.h"

namespace kubegate {

struct AuditCli {
  CLI::App* audit = nullptr;
  CLI::App* show = nullptr;
  CLI::App* verify = nullptr;
  CLI::App* public_key = nullptr;
  CLI::App* exporter = nullptr;
  std::int64_t after_seq = 0;
  std::uint64_t export_limit = 0;
  std::string config_path;
  std::string format;
  std::string since, until;
  AuditQuery query;
  std::string show_id;
  std::vector<std::string> public_key_files;
};

namespace {

int Fail(const std::string& msg) {
  std::cerr << "kubegate audit: " << msg << "\n";
  return 2;
}

Result<std::unique_ptr<AuditStore>> OpenFromConfig(const std::string& path) {
  auto cfg = LoadConfigFile(path);
  if (!cfg) return cfg.error();
  return AuditStore::Open(StoreConfigFor(*cfg));
}

int Query(AuditCli& c) {
  auto store = OpenFromConfig(c.config_path);
  if (!store) return Fail(store.error().message);
  std::int64_t now = SystemClock().NowMillis();
  if (!c.since.empty()) {
    auto t = ParseTimeBound(c.since, now);
    if (!t) return Fail(t.error().message);
    c.query.since_ms = *t;
  }
  if (!c.until.empty()) {
    auto t = ParseTimeBound(c.until, now);
    if (!t) return Fail(t.error().message);
    c.query.until_ms = *t;
  }
  AuditApiRequest req;
  req.query = c.query;
  req.format = c.format.empty() ? "table" : c.format;
  if (auto valid = ValidateAuditQuery(req); !valid) return Fail(valid.error().message);
  AuditApiResponse r = RunAuditApi(**store, req);
  if (r.status != 200) return Fail(r.body);
  std::cout << r.body;
  if (req.format == "json" || req.format == "k8s") std::cout << "\n";
  return 0;
}

// Every entry after --after-seq, in chain order, as JSON lines, page by
// page until the end of the log (or --limit entries).
int Export(AuditCli& c) {
  auto store = OpenFromConfig(c.config_path);
  if (!store) return Fail(store.error().message);
  if (c.after_seq < 0) return Fail("--after-seq is a chain position (0 or more)");
  std::int64_t cursor = c.after_seq;
  std::uint64_t printed = 0;
  while (c.export_limit == 0 || printed < c.export_limit) {
    std::size_t page = limits::kAuditMaxQueryLimit;
    if (c.export_limit) page = static_cast<std::size_t>(std::min<std::uint64_t>(page, c.export_limit - printed));
    auto entries = (*store)->AuditRange(cursor, page);
    if (!entries) return Fail(entries.error().message);
    if (entries->empty()) break;
    for (const auto& e : *entries) std::cout << AuditEntryJson(e).dump() << "\n";
    printed += entries->size();
    cursor = entries->back().seq;
  }
  std::cout.flush();
  std::cerr << "kubegate audit export: " << printed << " entries; continue with --after-seq " << cursor << "\n";
  return std::cout ? 0 : 1;
}

int Show(AuditCli& c) {
  auto store = OpenFromConfig(c.config_path);
  if (!store) return Fail(store.error().message);
  AuditApiRequest req;
  req.show = true;
  req.request_id = c.show_id;
  req.format = c.format.empty() ? "text" : c.format;
  AuditApiResponse r = RunAuditApi(**store, req);
  if (r.status == 404) return Fail("no audit record for request " + c.show_id);
  if (r.status != 200) return Fail(r.body);
  std::cout << r.body;
  if (req.format != "text") std::cout << "\n";
  return 0;
}

int Verify(AuditCli& c) {
  auto cfg = LoadConfigFile(c.config_path);
  if (!cfg) return Fail(cfg.error().message);
  auto store = AuditStore::Open(StoreConfigFor(*cfg));
  if (!store) return Fail(store.error().message);
  std::vector<std::string> keys;
  for (const auto& f : c.public_key_files) {
    auto k = ReadFile(f);
    if (!k) return Fail(k.error().message);
    keys.push_back(*k);
  }
  VerifyReport r = VerifyAuditChain(**store, keys, cfg->RecordingDir());
  if (!r.ok) {
    std::cout << "audit chain BROKEN at seq " << r.problem_seq;
    if (!r.problem_request_id.empty()) std::cout << " (request " << r.problem_request_id << ")";
    std::cout << ": " << r.problem << "\n";
    return 1;
  }
  std::cout << "audit chain OK: " << r.entries << " entries";
  if (r.entries) std::cout << " (seq " << r.first_seq << ".." << r.last_seq << ")";
  std::cout << ", " << r.checkpoints << " signed checkpoints, " << r.recordings << " session recordings matching"
            << (keys.empty() ? "" : " all by trusted keys") << (r.anchored ? ", starting at a retention checkpoint" : "")
            << ", store " << (*store)->Describe() << "\n";
  return 0;
}

int PublicKey(AuditCli& c) {
  auto cfg = LoadConfigFile(c.config_path);
  if (!cfg) return Fail(cfg.error().message);
  auto pem = ReadFile(SigningKeyPath(*cfg));
  if (!pem) return Fail(pem.error().message + " (the gateway creates it on first start)");
  auto signer = Signer::FromPem(*pem);
  if (!signer) return Fail(signer.error().message);
  std::cout << (*signer)->PublicKeyPem();
  return 0;
}

}  // namespace

StoreConfig StoreConfigFor(const Config& config) {
  StoreConfig s;
  s.postgres_conninfo = config.store.postgres;
  s.sqlite_path = config.SqlitePath();
  return s;
}

std::string SigningKeyPath(const Config& config) { return config.data_dir + "/audit-signing-key.pem"; }

std::shared_ptr<AuditCli> AddAuditCommands(CLI::App& app) {
  auto c = std::make_shared<AuditCli>();
  c->audit = app.add_subcommand("audit", "Query and verify the audit log");
  c->audit->add_option("--config", c->config_path, "Config file (YAML): names the store")->required();
  c->audit->add_option("-o,--output", c->format, "table (default), jsonl, json, k8s (audit.k8s.io/v1 Events)")
      ->check(CLI::IsMember({"table", "jsonl", "json", "k8s", "text"}));
  c->audit->add_option("--since", c->since, "RFC 3339 time or a duration back from now (1h)");
  c->audit->add_option("--until", c->until, "RFC 3339 time or a duration back from now");
  c->audit->add_option("--user", c->query.actor, "Caller's user name");
  c->audit->add_option("--group", c->query.group, "Caller's group");
  c->audit->add_option("--kind", c->query.kind, "human or agent");
  c->audit->add_option("--verb", c->query.verb, "get, list, create, delete, ...");
  c->audit->add_option("--resource", c->query.resource, "pods, namespaces, pods/exec, ...");
  c->audit->add_option("--namespace", c->query.namespace_, "Namespace");
  c->audit->add_option("--name", c->query.name, "Object name");
  c->audit->add_option("--decision", c->query.decision, "allow, deny or review");
  c->audit->add_option("--approver", c->query.approver, "An approver's user name");
  c->audit->add_option("--approval-id", c->query.approval_id, "Approval id");
  c->audit->add_option("--task", c->query.task, "Everything done under per-task tokens of this task");
  c->audit->add_option("--limit", c->query.limit, "Most records to print (newest first)")->capture_default_str();
  c->show = c->audit->add_subcommand("show", "One request's record, every reviewer question answered");
  c->show->add_option("id", c->show_id, "Request id (kg-...)")->required();
  c->show->fallthrough();
  c->verify = c->audit->add_subcommand("verify", "Walk the hash chain and checkpoints; report the first problem");
  c->verify->add_option("--public-key", c->public_key_files,
                        "Trusted checkpoint key (PEM), repeatable; default: trust the keys in the store");
  c->verify->fallthrough();
  c->public_key = c->audit->add_subcommand("public-key", "Print the checkpoint signing key's public half (PEM)");
  c->public_key->fallthrough();
  c->exporter = c->audit->add_subcommand(
      "export", "Every record in chain order as JSON lines (for SIEMs and reviews), from a cursor");
  c->exporter->add_option("--after-seq", c->after_seq, "Start after this chain position (the last seq you read)")
      ->capture_default_str();
  c->exporter->add_option("--max", c->export_limit, "Stop after this many entries (0: to the end)")->capture_default_str();
  c->exporter->fallthrough();
  return c;
}

int RunAuditCommand(AuditCli& c) {
  if (!*c.audit) return -1;
  if (*c.show) return Show(c);
  if (*c.verify) return Verify(c);
  if (*c.public_key) return PublicKey(c);
  if (*c.exporter) return Export(c);
  return Query(c);
}

}  // namespace kubegate
