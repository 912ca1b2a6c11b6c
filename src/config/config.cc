#include "config/config.h"

#include <fstream>
#include <functional>
#include <map>
#include <sstream>

#include <yaml-cpp/yaml.h>

#include "config/yaml_reader.h"

namespace kubegate {
namespace {

bool IsHex64(const std::string& s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

}  // namespace

Result<Config> ParseConfig(const std::string& text, const std::string& source) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    return Error::BadRequest(source + ":" + std::to_string(e.mark.line + 1) + ": invalid YAML: " + e.msg);
  }
  Config c;
  c.source = source;
  if (!root || root.IsNull()) return c;
  YamlReader r(source);
  KG_TRY(r.CheckMap(root, "", {"listen", "data_dir", "upstream", "tokens", "client_certs", "shutdown_grace_seconds",
                               "worker_threads", "max_request_body_bytes", "max_request_head_bytes", "log_level", "store", "audit",
                               "auditors", "policy_file", "approvals", "recording", "oidc", "service_accounts",
                               "brokers", "identity_admins"}));
  if (YAML::Node l = root["listen"]) {
    KG_TRY(r.CheckMap(l, "listen", {"address", "port", "plain_http", "tls_cert_file", "tls_key_file", "tls_hosts",
                                    "max_connections", "max_connections_per_source"}));
    std::int64_t max_conns = static_cast<std::int64_t>(c.listen.max_connections);
    std::int64_t max_per_source = static_cast<std::int64_t>(c.listen.max_connections_per_source);
    KG_TRY(r.Integer(l, "max_connections", "listen", max_conns, 1, 1'000'000));
    KG_TRY(r.Integer(l, "max_connections_per_source", "listen", max_per_source, 1, 1'000'000));
    c.listen.max_connections = static_cast<std::size_t>(max_conns);
    c.listen.max_connections_per_source = static_cast<std::size_t>(max_per_source);
    KG_TRY(r.Str(l, "address", "listen", c.listen.address));
    KG_TRY(r.Integer(l, "port", "listen", c.listen.port, 0, 65535));
    KG_TRY(r.Bool(l, "plain_http", "listen", c.listen.plain_http));
    KG_TRY(r.Str(l, "tls_cert_file", "listen", c.listen.tls_cert_file));
    KG_TRY(r.Str(l, "tls_key_file", "listen", c.listen.tls_key_file));
    KG_TRY(r.StrList(l, "tls_hosts", "listen", c.listen.tls_hosts));
    if (c.listen.tls_cert_file.empty() != c.listen.tls_key_file.empty()) {
      return r.Fail(l, "listen.tls_cert_file", "tls_cert_file and tls_key_file go together");
    }
    if (c.listen.plain_http && c.listen.address != "127.0.0.1" && c.listen.address != "::1" &&
        c.listen.address != "localhost") {
      return r.Fail(l["plain_http"], "listen.plain_http", "plain HTTP is only allowed on a loopback address");
    }
  }
  KG_TRY(r.Str(root, "data_dir", "", c.data_dir));
  if (YAML::Node u = root["upstream"]) {
    KG_TRY(r.CheckMap(u, "upstream", {"kubeconfig", "context", "in_cluster", "impersonate"}));
    KG_TRY(r.Str(u, "kubeconfig", "upstream", c.upstream.kubeconfig));
    KG_TRY(r.Str(u, "context", "upstream", c.upstream.context));
    KG_TRY(r.Bool(u, "in_cluster", "upstream", c.upstream.in_cluster));
    KG_TRY(r.Bool(u, "impersonate", "upstream", c.upstream.impersonate));
    if (c.upstream.in_cluster == !c.upstream.kubeconfig.empty()) {
      return r.Fail(u, "upstream", "set exactly one of kubeconfig and in_cluster");
    }
  }
  if (YAML::Node t = root["tokens"]) {
    if (!t.IsSequence()) return r.Fail(t, "tokens", "must be a list");
    for (std::size_t i = 0; i < t.size(); ++i) {
      const YAML::Node& e = t[i];
      std::string where = "tokens[" + std::to_string(i) + "]";
      KG_TRY(r.CheckMap(e, where, {"user", "groups", "kind", "token_sha256", "may_impersonate"}));
      TokenEntry te;
      std::string kind = "human";
      KG_TRY(r.Str(e, "user", where, te.user));
      KG_TRY(r.StrList(e, "groups", where, te.groups));
      KG_TRY(r.Str(e, "kind", where, kind));
      KG_TRY(r.Str(e, "token_sha256", where, te.token_sha256));
      KG_TRY(r.Bool(e, "may_impersonate", where, te.may_impersonate));
      if (te.user.empty()) return r.Fail(e, where + ".user", "is required");
      auto k = ParseIdentityKind(kind);
      if (!k) return r.Fail(e["kind"], where + ".kind", "must be human or agent");
      te.kind = *k;
      if (!IsHex64(te.token_sha256)) {
        return r.Fail(e, where + ".token_sha256", "must be 64 lower-case hex digits (see `kubegate token hash`)");
      }
      c.tokens.push_back(std::move(te));
    }
  }
  if (YAML::Node o = root["oidc"]) {
    if (!o.IsSequence()) return r.Fail(o, "oidc", "must be a list of issuers");
    for (std::size_t i = 0; i < o.size(); ++i) {
      const YAML::Node& e = o[i];
      std::string where = "oidc[" + std::to_string(i) + "]";
      KG_TRY(r.CheckMap(e, where, {"issuer", "audiences", "username_claim", "username_prefix", "groups_claim",
                                   "groups_prefix", "required_claims", "ca_file", "discovery_url", "kind",
                                   "unknown_kid_refresh_interval"}));
      OidcIssuerConfig oc;
      std::string kind = "human";
      KG_TRY(r.Str(e, "issuer", where, oc.issuer));
      KG_TRY(r.StrList(e, "audiences", where, oc.audiences));
      KG_TRY(r.Str(e, "username_claim", where, oc.username_claim));
      KG_TRY(r.Str(e, "groups_claim", where, oc.groups_claim));
      KG_TRY(r.Str(e, "groups_prefix", where, oc.groups_prefix));
      KG_TRY(r.Str(e, "ca_file", where, oc.ca_file));
      KG_TRY(r.Str(e, "discovery_url", where, oc.discovery_url));
      KG_TRY(r.Str(e, "kind", where, kind));
      // kube-apiserver's --oidc-issuer-url must be https
      // (pkg/kubeapiserver/options/authentication.go); so must ours.
      if (oc.issuer.rfind("https://", 0) != 0) return r.Fail(e, where + ".issuer", "must be an https:// URL");
      if (!oc.discovery_url.empty() && oc.discovery_url.rfind("https://", 0) != 0) {
        return r.Fail(e, where + ".discovery_url", "must be an https:// URL");
      }
      if (oc.audiences.empty()) return r.Fail(e, where + ".audiences", "name at least one audience (the client id)");
      if (oc.username_claim.empty()) return r.Fail(e, where + ".username_claim", "must not be empty");
      // The username prefix as kube-apiserver defaults --oidc-username-prefix
      // (pkg/kubeapiserver/options/authentication.go): unset and the claim is
      // not "email" -> the issuer URL and "#", so "sub" values of different
      // issuers never collide with each other or with other users; "-" -> none.
      if (e["username_prefix"]) {
        KG_TRY(r.Str(e, "username_prefix", where, oc.username_prefix));
        if (oc.username_prefix == "-") oc.username_prefix.clear();
      } else if (oc.username_claim != "email") {
        oc.username_prefix = oc.issuer + "#";
      }
      if (YAML::Node rc = e["required_claims"]) {
        if (!rc.IsMap()) return r.Fail(rc, where + ".required_claims", "must map claim names to string values");
        for (const auto& kv : rc) {
          if (!kv.second.IsScalar()) return r.Fail(kv.second, where + ".required_claims", "values must be strings");
          oc.required_claims.emplace_back(kv.first.as<std::string>(), kv.second.as<std::string>());
        }
      }
      auto k = ParseIdentityKind(kind);
      if (!k) return r.Fail(e["kind"], where + ".kind", "must be human or agent");
      oc.kind = *k;
      if (YAML::Node ri = e["unknown_kid_refresh_interval"]) {
        auto ms = ParseDurationMillis(ri.IsScalar() ? ri.as<std::string>() : "");
        if (!ms) return r.Fail(ri, where + ".unknown_kid_refresh_interval", "must be a duration such as 10s");
        oc.unknown_kid_refresh_ms = *ms;
      }
      for (const OidcIssuerConfig& other : c.oidc) {
        if (other.issuer == oc.issuer) return r.Fail(e, where + ".issuer", "is configured twice");
      }
      c.oidc.push_back(std::move(oc));
    }
  }
  if (YAML::Node sa = root["service_accounts"]) {
    KG_TRY(r.CheckMap(sa, "service_accounts", {"enabled", "audiences", "cache_ttl", "humans"}));
    ServiceAccountConfig& s = c.service_accounts;
    KG_TRY(r.Bool(sa, "enabled", "service_accounts", s.enabled));
    KG_TRY(r.StrList(sa, "audiences", "service_accounts", s.audiences));
    KG_TRY(r.StrList(sa, "humans", "service_accounts", s.humans));
    if (s.audiences.empty()) {
      return r.Fail(sa, "service_accounts.audiences", "name at least one audience the tokens must be bound to");
    }
    for (const std::string& p : s.humans) {
      if (p.find('/') == std::string::npos) return r.Fail(sa, "service_accounts.humans", "patterns are NAMESPACE/NAME");
    }
    if (YAML::Node ttl = sa["cache_ttl"]) {
      auto ms = ParseDurationMillis(ttl.IsScalar() ? ttl.as<std::string>() : "");
      if (!ms || *ms > 300'000) return r.Fail(ttl, "service_accounts.cache_ttl", "must be a duration of at most 5m");
      s.cache_ttl_ms = *ms;
    }
  }
  if (YAML::Node cc = root["client_certs"]) {
    KG_TRY(r.CheckMap(cc, "client_certs", {"ca_file", "agent_users", "may_impersonate"}));
    KG_TRY(r.Str(cc, "ca_file", "client_certs", c.client_certs.ca_file));
    KG_TRY(r.StrList(cc, "agent_users", "client_certs", c.client_certs.agent_users));
    KG_TRY(r.StrList(cc, "may_impersonate", "client_certs", c.client_certs.may_impersonate));
  }
  KG_TRY(r.Integer(root, "shutdown_grace_seconds", "", c.shutdown_grace_seconds, 0, 3600));
  KG_TRY(r.Integer(root, "worker_threads", "", c.worker_threads, 1, 64));
  KG_TRY(r.Integer(root, "max_request_body_bytes", "", c.max_request_body_bytes, 1024, 1LL << 30));
  KG_TRY(r.Integer(root, "max_request_head_bytes", "", c.max_request_head_bytes, 4096, 16LL << 20));
  KG_TRY(r.Str(root, "log_level", "", c.log_level));
  KG_TRY(r.Str(root, "policy_file", "", c.policy_file));
  if (YAML::Node a = root["approvals"]) {
    KG_TRY(r.CheckMap(a, "approvals", {"max_held_per_caller", "max_held_total", "webhook_url", "webhook_format"}));
    KG_TRY(r.Integer(a, "max_held_per_caller", "approvals", c.approvals.max_held_per_caller, 1, 10000));
    KG_TRY(r.Integer(a, "max_held_total", "approvals", c.approvals.max_held_total, 1, 1000000));
    KG_TRY(r.Str(a, "webhook_url", "approvals", c.approvals.webhook_url));
    KG_TRY(r.Str(a, "webhook_format", "approvals", c.approvals.webhook_format));
    if (c.approvals.webhook_format != "json" && c.approvals.webhook_format != "slack") {
      return r.Fail(a["webhook_format"], "approvals.webhook_format", "must be json or slack");
    }
  }
  if (YAML::Node s = root["store"]) {
    KG_TRY(r.CheckMap(s, "store", {"postgres", "sqlite_path"}));
    KG_TRY(r.Str(s, "postgres", "store", c.store.postgres));
    KG_TRY(r.Str(s, "sqlite_path", "store", c.store.sqlite_path));
    if (!c.store.postgres.empty() && !c.store.sqlite_path.empty()) {
      return r.Fail(s, "store", "set postgres or sqlite_path, not both");
    }
  }
  if (YAML::Node a = root["audit"]) {
    KG_TRY(r.CheckMap(a, "audit",
                      {"retention", "checkpoint_every", "checkpoint_interval", "request_bodies", "fsync", "fsync_interval",
                       "journal"}));
    KG_TRY(r.Duration(a, "retention", "audit", c.audit.retention_ms));
    KG_TRY(r.Integer(a, "checkpoint_every", "audit", c.audit.checkpoint_every, 1, 1'000'000'000));
    KG_TRY(r.Duration(a, "checkpoint_interval", "audit", c.audit.checkpoint_interval_ms));
    KG_TRY(r.Bool(a, "request_bodies", "audit", c.audit.request_bodies));
    KG_TRY(r.Str(a, "fsync", "audit", c.audit.fsync));
    KG_TRY(r.Bool(a, "journal", "audit", c.audit.journal));
    if (c.audit.fsync != "per_commit" && c.audit.fsync != "interval") {
      return r.Fail(a["fsync"], "audit.fsync", "must be per_commit or interval");
    }
    KG_TRY(r.Duration(a, "fsync_interval", "audit", c.audit.fsync_interval_ms));
    if (c.audit.fsync_interval_ms < 1 || c.audit.fsync_interval_ms > 10'000) {
      return r.Fail(a["fsync_interval"], "audit.fsync_interval", "must be between 1ms and 10s");
    }
    if (c.audit.checkpoint_interval_ms < 1000) {
      return r.Fail(a["checkpoint_interval"], "audit.checkpoint_interval", "must be at least 1s");
    }
    if (c.audit.retention_ms && c.audit.retention_ms < 2 * c.audit.checkpoint_interval_ms) {
      return r.Fail(a["retention"], "audit.retention",
                    "must be at least twice checkpoint_interval (pruning cuts at signed checkpoints)");
    }
  }
  if (YAML::Node rec = root["recording"]) {
    KG_TRY(r.CheckMap(rec, "recording", {"enabled", "dir", "max_bytes"}));
    KG_TRY(r.Bool(rec, "enabled", "recording", c.recording.enabled));
    KG_TRY(r.Str(rec, "dir", "recording", c.recording.dir));
    std::int64_t max_bytes = static_cast<std::int64_t>(c.recording.max_bytes);
    KG_TRY(r.Integer(rec, "max_bytes", "recording", max_bytes, 0, std::int64_t{1} << 40));
    c.recording.max_bytes = static_cast<std::uint64_t>(max_bytes);
  }
  if (YAML::Node a = root["auditors"]) {
    KG_TRY(r.CheckMap(a, "auditors", {"users", "groups"}));
    KG_TRY(r.StrList(a, "users", "auditors", c.auditors.users));
    KG_TRY(r.StrList(a, "groups", "auditors", c.auditors.groups));
  }
  if (YAML::Node a = root["brokers"]) {
    KG_TRY(r.CheckMap(a, "brokers", {"users", "groups", "agents", "agent_groups"}));
    KG_TRY(r.StrList(a, "users", "brokers", c.brokers.users));
    KG_TRY(r.StrList(a, "groups", "brokers", c.brokers.groups));
    KG_TRY(r.StrList(a, "agents", "brokers", c.broker_agents));
    KG_TRY(r.StrList(a, "agent_groups", "brokers", c.broker_agent_groups));
    for (const std::string& n : c.broker_agents) {
      if (n.rfind("system:", 0) == 0 || n == "*") {
        return r.Fail(a["agents"], "brokers.agents", "must name agents, not \"*\" or system: users");
      }
    }
  }
  if (YAML::Node a = root["identity_admins"]) {
    KG_TRY(r.CheckMap(a, "identity_admins", {"users", "groups", "assignable_groups"}));
    KG_TRY(r.StrList(a, "users", "identity_admins", c.identity_admins.users));
    KG_TRY(r.StrList(a, "groups", "identity_admins", c.identity_admins.groups));
    KG_TRY(r.StrList(a, "assignable_groups", "identity_admins", c.identity_assignable_groups));
    for (const std::string& g : c.identity_assignable_groups) {
      if (g.rfind("system:", 0) == 0 || g == "*") {
        return r.Fail(a["assignable_groups"], "identity_admins.assignable_groups",
                      "must name groups, not \"*\" or system: groups");
      }
    }
  }
  return c;
}

Result<Config> LoadConfigFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Error::BadRequest(path + ": cannot read config file");
  std::stringstream ss;
  ss << in.rdbuf();
  return ParseConfig(ss.str(), path);
}

}  // namespace kubegate
