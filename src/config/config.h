// kubegate's configuration file (YAML), documented in docs/configuration.md
// with an example in examples/kubegate.yaml. Loading is strict: an unknown
// key or a wrong type fails with "FILE:LINE: key: problem".
//
//   auto cfg = LoadConfigFile("kubegate.yaml");
//   if (!cfg) { std::cerr << cfg.error().message; return 2; }
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "common/result.h"
#include "identity/credentials_config.h"
#include "identity/identity.h"

namespace kubegate {

struct ListenConfig {
  std::string address = "127.0.0.1";
  int port = 8443;
  bool plain_http = false;      // only on loopback addresses
  std::string tls_cert_file;    // empty: kubegate's own CA issues one
  std::string tls_key_file;
  std::vector<std::string> tls_hosts;  // extra SANs for the generated cert
  // Client connections held open, in all and per source address; beyond
  // either a new connection is closed at once (before any TLS handshake).
  std::size_t max_connections = 8192;
  std::size_t max_connections_per_source = 1024;
};

struct UpstreamConfig {
  std::string kubeconfig;
  std::string context;
  bool in_cluster = false;
  bool impersonate = true;
};

// Where durable state lives. Empty postgres: SQLite at sqlite_path (default
// DATA_DIR/kubegate.db).
struct StoreSettings {
  std::string postgres;     // libpq connection string
  std::string sqlite_path;  // empty: DATA_DIR/kubegate.db
};

struct AuditSettings {
  std::int64_t retention_ms = 0;  // 0: keep forever
  std::int64_t checkpoint_every = 1000;
  std::int64_t checkpoint_interval_ms = 60'000;
  // Store request bodies of writes (create, update, patch, delete), with
  // Secret values redacted. Off by default.
  bool request_bodies = false;
  // Durability of the audit log (docs/audit.md, "Durability"): "per_commit"
  // syncs each group commit to disk before its requests are forwarded;
  // "interval" forwards once the commit is written to the OS and syncs
  // within fsync_interval_ms.
  std::string fsync = "per_commit";
  std::int64_t fsync_interval_ms = 100;
  // SQLite: commits go to an append-only journal beside the database and
  // the tables are fed from it behind (docs/audit.md, "The journal").
  // false: each group commit is a SQLite transaction. PostgreSQL: ignored.
  bool journal = true;
  // What AuditLogOptions::fsync_interval_ms takes (0: per commit).
  std::int64_t FsyncIntervalOrZero() const { return fsync == "interval" ? fsync_interval_ms : 0; }
};

// Who may read the audit log over the gateway's REST API.
struct AuditorsConfig {
  std::vector<std::string> users;
  std::vector<std::string> groups;
};

// Held requests and approval notifications.
struct ApprovalSettings {
  int max_held_per_caller = 8;
  int max_held_total = 1000;
  std::string webhook_url;              // empty: no notifications
  std::string webhook_format = "json";  // json | slack
};

// Session recording of exec, attach and port-forward (docs/recording.md).
struct RecordingSettings {
  bool enabled = true;                      // every session, unless a rule says more
  std::string dir;                          // empty: DATA_DIR/recordings
  std::uint64_t max_bytes = 64ull << 20;    // payload per session written, then only counted
};

struct Config {
  std::string source;  // file the config was read from
  ListenConfig listen;
  std::string data_dir = "kubegate-data";
  UpstreamConfig upstream;
  std::vector<TokenEntry> tokens;
  ClientCertConfig client_certs;
  std::vector<OidcIssuerConfig> oidc;  // ID tokens of these issuers are accepted
  ServiceAccountConfig service_accounts;
  int shutdown_grace_seconds = 25;
  int worker_threads = 2;
  std::size_t max_request_body_bytes = 0;  // 0: limits::kMaxRequestBodyBytes
  std::size_t max_request_head_bytes = 0;  // 0: limits::kMaxRequestHeadBytes
  std::string log_level = "info";
  std::string policy_file;
  ApprovalSettings approvals;  // empty: no policy (everything the built-in rules allow passes)
  StoreSettings store;
  AuditSettings audit;
  AuditorsConfig auditors;
  // Who may issue and revoke per-task agent tokens (users / groups, as
  // auditors), for which agent names (globs; none: no token can be issued),
  // and the groups every task token's identity has. A broker never chooses
  // a token's user or groups freely: that would let it mint any identity
  // the cluster knows (docs/identity.md).
  AuditorsConfig brokers;
  std::vector<std::string> broker_agents;
  std::vector<std::string> broker_agent_groups;
  // Who may manage identities at runtime (register agents and people,
  // issue and revoke their static tokens, disable and enable any user
  // name), and which groups (globs) a registered identity may be given:
  // none unless listed, so an identity admin cannot mint a member of an
  // approver group by accident (docs/identity.md).
  AuditorsConfig identity_admins;
  std::vector<std::string> identity_assignable_groups;
  RecordingSettings recording;

  std::string RecordingDir() const { return recording.dir.empty() ? data_dir + "/recordings" : recording.dir; }
  std::string SqlitePath() const { return store.sqlite_path.empty() ? data_dir + "/kubegate.db" : store.sqlite_path; }
};

Result<Config> LoadConfigFile(const std::string& path);
Result<Config> ParseConfig(const std::string& yaml_text, const std::string& source_name);

}  // namespace kubegate
