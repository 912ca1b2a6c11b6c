#include "approval/approval.h"

#include <set>

#include <algorithm>

#include "classify/request_info_json.h"
#include "common/digest.h"

namespace kubegate {

namespace {

// The approval tables (the audit log's are migration 1, audit/audit_store.cc).
const Migration kApprovalMigrations[] = {
    {2, R"SQL(
CREATE TABLE approval_request(
  id TEXT PRIMARY KEY,
  requester TEXT NOT NULL,
  state TEXT NOT NULL,
  fingerprint TEXT NOT NULL,
  hold INTEGER NOT NULL,
  created_ms BIGINT NOT NULL,
  expires_ms BIGINT NOT NULL,
  body TEXT NOT NULL);
CREATE INDEX approval_request_state ON approval_request(state, created_ms);
CREATE INDEX approval_request_fingerprint ON approval_request(fingerprint, state);
CREATE TABLE access_grant(
  id TEXT PRIMARY KEY,
  user_name TEXT NOT NULL,
  rule TEXT NOT NULL,
  approval_id TEXT NOT NULL,
  expires_ms BIGINT NOT NULL,
  uses_left BIGINT NOT NULL,
  revoked INTEGER NOT NULL,
  body TEXT NOT NULL);
CREATE INDEX access_grant_user ON access_grant(user_name, rule, expires_ms);
)SQL"},
    // Several replicas: which gateway instances hold each pending request,
    // and when each instance was last seen alive.
    {7, R"SQL(
CREATE TABLE gateway_instance(
  id TEXT PRIMARY KEY,
  started_ms BIGINT NOT NULL,
  heartbeat_ms BIGINT NOT NULL);
CREATE TABLE approval_holder(
  approval_id TEXT NOT NULL,
  instance_id TEXT NOT NULL,
  PRIMARY KEY (approval_id, instance_id));
)SQL"},
    // Recorded sessions open on each instance: a survivor ends the
    // recordings of a replica that stopped (OrphanSessions).
    {8, R"SQL(
CREATE TABLE open_session(
  request_id TEXT PRIMARY KEY,
  instance_id TEXT NOT NULL,
  file TEXT NOT NULL,
  kind TEXT NOT NULL,
  started_ms BIGINT NOT NULL);
)SQL"},
};

}  // namespace

Result<std::unique_ptr<Database>> ApprovalService::OpenDatabase(const StoreConfig& config) {
  return Database::Open(config, kApprovalMigrations);
}

Result<std::unique_ptr<Database>> ApprovalService::OpenDatabase(std::unique_ptr<SqlConnection> conn) {
  return Database::Open(std::move(conn), kApprovalMigrations);
}

namespace {

ApprovalState StateFromName(const std::string& s) {
  for (auto st : {ApprovalState::kPending, ApprovalState::kApproved, ApprovalState::kDenied, ApprovalState::kExpired,
                  ApprovalState::kWithdrawn, ApprovalState::kAbandoned}) {
    if (s == ApprovalStateName(st)) return st;
  }
  return ApprovalState::kAbandoned;
}

nlohmann::json ReviewJson(const ReviewSpec& r) {
  return {{"approver_users", r.approver_users},
          {"approver_groups", r.approver_groups},
          {"approvals", r.approvals},
          {"allow_self_approval", r.allow_self_approval},
          {"no_self_approval_groups", r.no_self_approval_groups},
          {"max_wait_ms", r.max_wait_ms},
          {"default_grant_ms", r.default_grant_ms},
          {"max_grant_ms", r.max_grant_ms},
          {"hold", r.hold}};
}

ReviewSpec ReviewFromJson(const nlohmann::json& j) {
  ReviewSpec r;
  r.approver_users = j.value("approver_users", std::vector<std::string>{});
  r.approver_groups = j.value("approver_groups", std::vector<std::string>{});
  r.approvals = j.value("approvals", 1);
  r.allow_self_approval = j.value("allow_self_approval", false);
  r.no_self_approval_groups = j.value("no_self_approval_groups", std::vector<std::string>{});
  r.max_wait_ms = j.value("max_wait_ms", std::int64_t{0});
  r.default_grant_ms = j.value("default_grant_ms", std::int64_t{0});
  r.max_grant_ms = j.value("max_grant_ms", std::int64_t{0});
  r.hold = j.value("hold", true);
  return r;
}

bool Has(const std::vector<std::string>& v, const std::string& s) { return std::find(v.begin(), v.end(), s) != v.end(); }

nlohmann::json GrantJson(const Grant& g) {
  return {{"id", g.id},           {"user", g.user},         {"holder", g.holder.ToJson()}, {"rule", g.rule},
          {"approval_id", g.approval_id}, {"scope", g.scope.ToJson()}, {"created_ms", g.created_ms},
          {"expires_ms", g.expires_ms},   {"uses_left", g.uses_left},  {"revoked", g.revoked},
          {"revoked_by", g.revoked_by}};
}

Grant GrantFromJson(const nlohmann::json& j) {
  Grant g;
  g.id = j.value("id", "");
  g.user = j.value("user", "");
  g.holder = Holder::FromJson(j.value("holder", nlohmann::json::object()));
  g.rule = j.value("rule", "");
  g.approval_id = j.value("approval_id", "");
  g.scope = GrantScope::FromJson(j.value("scope", nlohmann::json::object()));
  g.created_ms = j.value("created_ms", std::int64_t{0});
  g.expires_ms = j.value("expires_ms", std::int64_t{0});
  g.uses_left = j.value("uses_left", std::int64_t{-1});
  g.revoked = j.value("revoked", false);
  g.revoked_by = j.value("revoked_by", "");
  return g;
}

Error Conflict(std::string m) { return Error{409, "Conflict", std::move(m)}; }
Error NotFound(std::string m) { return Error{404, "NotFound", std::move(m)}; }

}  // namespace

const char* ApprovalStateName(ApprovalState s) {
  switch (s) {
    case ApprovalState::kPending: return "pending";
    case ApprovalState::kApproved: return "approved";
    case ApprovalState::kDenied: return "denied";
    case ApprovalState::kExpired: return "expired";
    case ApprovalState::kWithdrawn: return "withdrawn";
    case ApprovalState::kAbandoned: return "abandoned";
  }
  return "abandoned";
}

namespace {

nlohmann::json QueryJson(const std::vector<std::pair<std::string, std::string>>& q) {
  nlohmann::json j = nlohmann::json::array();
  for (const auto& [k, v] : q) j.push_back({k, v});
  return j;
}

std::vector<std::pair<std::string, std::string>> QueryFromJson(const nlohmann::json& j) {
  std::vector<std::pair<std::string, std::string>> q;
  if (!j.is_array()) return q;
  for (const auto& kv : j) {
    if (kv.is_array() && kv.size() == 2 && kv[0].is_string() && kv[1].is_string()) q.emplace_back(kv[0], kv[1]);
  }
  return q;
}

}  // namespace

Holder Holder::Of(const Identity& who) {
  Holder h{who.user, who.groups, IdentityKindName(who.kind), AuthMethodName(who.method), who.task,
           who.credential_id};
  std::sort(h.groups.begin(), h.groups.end());
  return h;
}

nlohmann::json Holder::ToJson() const {
  nlohmann::json j = {{"user", user}, {"groups", groups}, {"kind", kind}, {"method", method}};
  if (!task.empty()) j["task"] = task;
  if (!credential.empty()) j["credential"] = credential;
  return j;
}

Holder Holder::FromJson(const nlohmann::json& j) {
  return {j.value("user", ""), j.value("groups", std::vector<std::string>{}), j.value("kind", ""),
          j.value("method", ""), j.value("task", ""), j.value("credential", "")};
}

nlohmann::json GrantScope::ToJson() const {
  nlohmann::json j = {{"verbs", verbs},         {"apiGroup", api_group}, {"resource", resource},
                      {"subresource", subresource}, {"namespace", namespace_}, {"names", names},
                      {"query", QueryJson(query)}};
  if (!container.empty()) j["container"] = container;
  if (any_command) {
    j["command"] = "*";
  } else if (!command.empty()) {
    j["command"] = command;
  }
  if (selectors_only) j["selectorsOnly"] = true;
  if (!body_sha256.empty()) j["bodySha256"] = body_sha256;
  if (port_forward_any_port) j["anyPort"] = true;
  return j;
}

GrantScope GrantScope::FromJson(const nlohmann::json& j) {
  GrantScope s;
  s.verbs = j.value("verbs", std::vector<std::string>{});
  s.api_group = j.value("apiGroup", "");
  s.resource = j.value("resource", "");
  s.subresource = j.value("subresource", "");
  s.namespace_ = j.value("namespace", "");
  s.names = j.value("names", std::vector<std::string>{});
  s.container = j.value("container", "");
  if (j.contains("command") && j["command"].is_string()) {
    s.any_command = true;
  } else {
    s.command = j.value("command", std::vector<std::string>{});
  }
  s.query = QueryFromJson(j.value("query", nlohmann::json::array()));
  s.selectors_only = j.value("selectorsOnly", false);
  s.body_sha256 = j.value("bodySha256", "");
  s.port_forward_any_port = j.value("anyPort", false);
  return s;
}

GrantScope GrantScope::Of(const RequestedAction& a) {
  const RequestInfo& info = a.info;
  GrantScope s;
  // exec/attach/portforward: the subresource names the action; the verb
  // depends on the transport (WebSocket GET, SPDY POST).
  if (info.stream == StreamKind::kNone) s.verbs = {info.verb};
  s.api_group = info.api_group;
  s.resource = info.resource;
  s.subresource = info.subresource;
  s.namespace_ = info.namespace_;
  if (!info.name.empty()) s.names = {info.name};
  if (info.exec) {
    s.container = info.exec->container;
    s.command = info.exec->command;
  }
  s.query = ActingQuery(info);
  s.body_sha256 = a.body_sha256;
  s.port_forward_any_port = info.stream == StreamKind::kPortForward && info.ports.empty();
  return s;
}

bool GrantScope::Covers(const RequestedAction& a) const {
  const RequestInfo& info = a.info;
  if (!info.is_resource_request) return false;
  if (!verbs.empty() && !Has(verbs, info.verb)) return false;
  if (info.api_group != api_group || info.resource != resource || info.subresource != subresource ||
      info.namespace_ != namespace_) {
    return false;
  }
  if (!names.empty() && !Has(names, info.name)) return false;
  if (info.exec) {
    if (info.exec->container != container) return false;
    if (!any_command && info.exec->command != command) return false;
  }
  if ((selectors_only ? SelectorQuery(info) : ActingQuery(info)) != query) return false;
  return a.body_sha256 == body_sha256;
}

std::string GrantScope::Describe() const {
  std::string out;
  if (subresource == "exec" || subresource == "attach") {
    out = subresource + " into pod " + (names.empty() ? "(any)" : names[0]);
    out += container.empty() ? ", its default container" : ", container " + container;
    if (any_command) {
      out += ", any command";
    } else {
      out += ", command:";
      for (const auto& c : command) out += " " + c;
    }
  } else if (subresource == "portforward") {
    out = "port-forward to pod " + (names.empty() ? "(any)" : names[0]);
    if (port_forward_any_port) out += ", any port (the ports travel inside the stream, not in the URL)";
  } else {
    for (std::size_t i = 0; i < verbs.size(); ++i) out += (i ? (i + 1 == verbs.size() ? " and " : ", ") : "") + verbs[i];
    if (verbs.empty()) out = "any verb on";
    out += " " + resource + (subresource.empty() ? "" : "/" + subresource);
    if (!api_group.empty()) out += "." + api_group;
    if (names.empty()) {
      out += " (any name)";
    } else {
      out += " named";
      for (const auto& n : names) out += " " + n;
    }
  }
  // A Namespace object's own namespace is itself, as the API server reads it.
  const bool the_namespace_itself = resource == "namespaces" && api_group.empty() && subresource.empty();
  if (!the_namespace_itself) out += namespace_.empty() ? ", cluster-wide or in all namespaces" : " in namespace " + namespace_;
  for (const auto& [k, v] : query) {
    if (k == "labelSelector") out += ", label selector " + v;
    else if (k == "fieldSelector") out += ", field selector " + v;
    else if (k == "stdin" || k == "tty") out += ", " + k + "=" + v;
    else if (k == "ports") out += ", port " + v;
  }
  if (!body_sha256.empty()) out += ", this exact body (sha256 " + body_sha256.substr(0, 12) + ")";
  if (selectors_only) out += "; other query parameters may vary";
  return out;
}

nlohmann::json ApprovalRequest::ToJson() const {
  nlohmann::json votes_json = nlohmann::json::array();
  for (const auto& v : votes) votes_json.push_back({{"user", v.user}, {"at_ms", v.at_ms}, {"reason", v.reason}});
  return {{"id", id},
          {"requester", requester},
          {"requester_groups", requester_groups},
          {"requester_kind", requester_kind},
          {"requester_method", requester_method},
          {"requester_task", requester_task},
          {"requester_credential", requester_credential},
          {"rule", rule},
          {"message", message},
          {"review", ReviewJson(review)},
          {"fingerprint", fingerprint},
          {"request", request},
          {"created_ms", created_ms},
          {"expires_ms", expires_ms},
          {"state", ApprovalStateName(state)},
          {"votes", votes_json},
          {"decided_by", decided_by},
          {"reason", reason},
          {"decided_ms", decided_ms},
          {"grant_id", grant_id},
          {"grant_ms", grant_ms},
          {"scope", scope.ToJson()},
          {"dry_run", dry_run},
          {"body_sha256", body_sha256},
          {"asked", asked}};
}

ApprovalRequest ApprovalRequest::FromJson(const nlohmann::json& j) {
  ApprovalRequest r;
  r.id = j.value("id", "");
  r.requester = j.value("requester", "");
  r.requester_groups = j.value("requester_groups", std::vector<std::string>{});
  r.requester_kind = j.value("requester_kind", "");
  r.requester_method = j.value("requester_method", "");
  r.requester_task = j.value("requester_task", "");
  r.requester_credential = j.value("requester_credential", "");
  r.rule = j.value("rule", "");
  r.message = j.value("message", "");
  r.review = ReviewFromJson(j.value("review", nlohmann::json::object()));
  r.fingerprint = j.value("fingerprint", "");
  r.request = j.value("request", nlohmann::json::object());
  r.created_ms = j.value("created_ms", std::int64_t{0});
  r.expires_ms = j.value("expires_ms", std::int64_t{0});
  r.state = StateFromName(j.value("state", ""));
  for (const auto& v : j.value("votes", nlohmann::json::array())) {
    r.votes.push_back({v.value("user", ""), v.value("at_ms", std::int64_t{0}), v.value("reason", "")});
  }
  r.decided_by = j.value("decided_by", "");
  r.reason = j.value("reason", "");
  r.decided_ms = j.value("decided_ms", std::int64_t{0});
  r.grant_id = j.value("grant_id", "");
  r.grant_ms = j.value("grant_ms", std::int64_t{0});
  r.scope = GrantScope::FromJson(j.value("scope", nlohmann::json::object()));
  r.dry_run = j.value("dry_run", nlohmann::json());
  r.body_sha256 = j.value("body_sha256", "");
  r.asked = j.value("asked", 1);
  return r;
}

ApprovalService::ApprovalService(std::unique_ptr<Database> db, const Clock& clock)
    : db_(std::move(db)), clock_(clock) {}

std::string ApprovalService::Fingerprint(const Identity& who, const RequestedAction& a, const std::string& rule) {
  // The action, not the transport: WebSocket exec is a GET and SPDY exec a
  // POST of the same path and query.
  nlohmann::json j = RequestInfoJson(a.info);
  j["verb"] = a.info.stream != StreamKind::kNone ? "connect" : a.info.verb;
  j.erase("parts");
  j["query"] = QueryJson(ActingQuery(a.info));
  j["body_sha256"] = a.body_sha256;
  j["holder"] = Holder::Of(who).ToJson();
  j["rule"] = rule;
  return Sha256Hex(j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

Result<bool> ApprovalService::Put(const ApprovalRequest& r, bool insert) {
  std::string body = r.ToJson().dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  Database& db = *db_;
  Result<std::vector<SqlRow>> res =
      insert ? db.Run("INSERT INTO approval_request(id, requester, state, fingerprint, hold, created_ms, expires_ms, body) "
                      "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                      {r.id, r.requester, std::string(ApprovalStateName(r.state)), r.fingerprint,
                       std::int64_t{r.review.hold ? 1 : 0}, r.created_ms, r.expires_ms, body})
             : db.Run("UPDATE approval_request SET state = ?, body = ? WHERE id = ?",
                      {std::string(ApprovalStateName(r.state)), body, r.id});
  if (!res) return res.error();
  return true;
}

Result<bool> ApprovalService::PutGrant(const Grant& g, bool insert) {
  std::string body = GrantJson(g).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  Database& db = *db_;
  Result<std::vector<SqlRow>> res =
      insert ? db.Run("INSERT INTO access_grant(id, user_name, rule, approval_id, expires_ms, uses_left, revoked, body) "
                      "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                      {g.id, g.user, g.rule, g.approval_id, g.expires_ms, g.uses_left, std::int64_t{g.revoked ? 1 : 0},
                       body})
             : db.Run("UPDATE access_grant SET uses_left = ?, revoked = ?, body = ? WHERE id = ?",
                      {g.uses_left, std::int64_t{g.revoked ? 1 : 0}, body, g.id});
  if (!res) return res.error();
  return true;
}

Result<std::optional<ApprovalRequest>> ApprovalService::Load(const std::string& id, bool for_update) {
  Database& db = *db_;
  std::string sql = "SELECT body FROM approval_request WHERE id = ?";
  if (for_update && db.dialect() == SqlDialect::kPostgres) sql += " FOR UPDATE";
  auto rows = db.Run(sql, {id});
  if (!rows) return rows.error();
  if (rows->empty()) return std::optional<ApprovalRequest>();
  auto j = nlohmann::json::parse((*rows)[0][0].value_or("{}"), nullptr, false);
  if (j.is_discarded()) return Error::Internal("approval " + id + " is unreadable in the store");
  return std::optional<ApprovalRequest>(ApprovalRequest::FromJson(j));
}

Grant ApprovalService::MakeGrant(ApprovalRequest& r, std::int64_t now) {
  Grant g;
  g.id = RandomId("gr-", 8);
  g.user = r.requester;
  g.holder = {r.requester, r.requester_groups, r.requester_kind, r.requester_method, r.requester_task,
              r.requester_credential};
  std::sort(g.holder.groups.begin(), g.holder.groups.end());
  g.rule = r.rule;
  g.approval_id = r.id;
  g.scope = r.scope;
  g.created_ms = now;
  std::int64_t ms = r.grant_ms > 0 ? r.grant_ms : r.review.default_grant_ms;
  if (ms <= 0) {
    // No time given: the grant covers this one request. Held requests use it
    // at once; answered ones within the wait limit, by re-running.
    g.uses_left = 1;
    ms = r.review.hold ? 60'000 : std::max<std::int64_t>(r.review.max_wait_ms, 60'000);
  }
  g.expires_ms = now + std::min(ms, std::max<std::int64_t>(r.review.max_grant_ms, 1));
  r.grant_id = g.id;
  return g;
}

ApprovalRequest ApprovalService::NewRequest(const NewApproval& n, std::int64_t now) {
  ApprovalRequest r;
  r.id = n.id;
  r.requester = n.who->user;
  r.requester_groups = n.who->groups;
  r.requester_kind = IdentityKindName(n.who->kind);
  r.requester_method = AuthMethodName(n.who->method);
  r.requester_task = n.who->task;
  r.requester_credential = n.who->credential_id;
  r.rule = n.rule->name;
  r.message = n.rule->message;
  r.review = n.rule->review;
  RequestedAction action{*n.info, n.body_sha256};
  r.fingerprint = Fingerprint(*n.who, action, n.rule->name);
  r.request = n.request;
  r.dry_run = n.dry_run;
  r.body_sha256 = n.body_sha256;
  r.created_ms = now;
  r.expires_ms = now + n.rule->review.max_wait_ms;
  r.scope = GrantScope::Of(action);
  return r;
}

Result<ApprovalRequest> ApprovalService::Open(const NewApproval& n) {
  ApprovalRequest out;
  std::int64_t now = clock_.NowMillis();
  std::string fp = Fingerprint(*n.who, RequestedAction{*n.info, n.body_sha256}, n.rule->name);
  auto done = db_->WithWriteTransaction([&]() -> Result<bool> {
    auto rows = db_->Run(
        "SELECT id FROM approval_request WHERE fingerprint = ? AND state = 'pending' AND expires_ms > ? "
        "ORDER BY created_ms DESC LIMIT 1",
        {fp, now});
    if (!rows) return rows.error();
    if (!rows->empty()) {
      auto existing = Load((*rows)[0][0].value_or(""), true);
      if (!existing) return existing.error();
      if (*existing) {
        // A twin: the same request again. It waits on the same decision but
        // is forwarded only with a use of the grant of its own.
        out = **existing;
        out.asked++;
        auto put = Put(out, false);
        if (!put) return put;
        return AddHolder(out.id);
      }
    }
    out = NewRequest(n, now);
    auto put = Put(out, true);
    if (!put) return put;
    return AddHolder(out.id);
  });
  if (!done) return done.error();
  return out;
}

Result<bool> ApprovalService::AddHolder(const std::string& id) {
  // This instance holds it (a twin may be held by another replica too): it
  // is abandoned only when every instance holding it is gone. In the same
  // transaction as the request: committed alone, the request would be a
  // held one with no holder, which another replica's AbandonOrphans would
  // abandon while this one holds it.
  auto held = db_->Run("INSERT INTO approval_holder(approval_id, instance_id) VALUES (?, ?) ON CONFLICT DO NOTHING",
                       {id, instance_});
  if (!held) return held.error();
  return true;
}

Result<ApprovalRequest> ApprovalService::OpenApprovedByPolicy(const NewApproval& n, const std::string& approver_name) {
  ApprovalRequest out;
  std::int64_t now = clock_.NowMillis();
  auto done = db_->WithWriteTransaction([&]() -> Result<bool> {
    out = NewRequest(n, now);
    out.votes.push_back({approver_name, now, "the policy's automatic approver held"});
    out.state = ApprovalState::kApproved;
    out.decided_by = approver_name;
    out.decided_ms = now;
    Grant g = MakeGrant(out, now);
    g.uses_left = 0;  // the request itself is the one use
    auto p = Put(out, true);
    if (!p) return p;
    return PutGrant(g, true);
  });
  if (!done) return done.error();
  return out;
}

bool ApprovalService::ListedApprover(const ReviewSpec& review, const Identity& who) {
  bool listed = Has(review.approver_users, who.user);
  for (const auto& g : who.groups) listed = listed || Has(review.approver_groups, g);
  return listed;
}

std::optional<Error> ApprovalService::CheckApprover(const ApprovalRequest& req, const Identity& who) {
  if (!ListedApprover(req.review, who)) {
    return Error::Forbidden("user \"" + who.user + "\" is not an approver for rule \"" + req.rule + "\" (request " +
                            req.id + ")");
  }
  if (who.user == req.requester) {
    bool allowed = req.review.allow_self_approval;
    for (const auto& g : who.groups) allowed = allowed && !Has(req.review.no_self_approval_groups, g);
    if (!allowed) return Error::Forbidden("self-approval is not allowed: " + who.user + " asked for request " + req.id);
  }
  return std::nullopt;
}

Result<ApprovalRequest> ApprovalService::Mutate(const std::string& id,
                                                const std::function<std::optional<Error>(ApprovalRequest&)>& change) {
  ApprovalRequest out;
  std::optional<Error> refused;
  auto done = db_->WithWriteTransaction([&]() -> Result<bool> {
    auto loaded = Load(id, true);
    if (!loaded) return loaded.error();
    if (!*loaded) {
      refused = NotFound("no approval request " + id);
      return Error::BadRequest("refused");  // roll back (nothing written)
    }
    out = **loaded;
    std::int64_t now = clock_.NowMillis();
    if (out.state == ApprovalState::kPending && now >= out.expires_ms) {
      out.state = ApprovalState::kExpired;
      out.reason = "nobody decided within the wait limit";
      out.decided_ms = out.expires_ms;
      auto p = Put(out, false);
      if (!p) return p;
      refused = change(out);  // the change sees the expired state and refuses
      return true;            // commit the expiry
    }
    refused = change(out);
    if (refused) return Error::BadRequest("refused");
    return Put(out, false);
  });
  if (done) Changed(id);  // a change, or at least an expiry, was committed
  if (refused) return *refused;
  if (!done) return done.error();
  return out;
}

Result<ApprovalRequest> ApprovalService::Approve(const std::string& id, const Identity& approver,
                                                 const ApproveOptions& o) {
  std::optional<Grant> grant;
  auto r = Mutate(id, [&](ApprovalRequest& req) -> std::optional<Error> {
    if (req.state != ApprovalState::kPending) {
      return Conflict("request " + id + " is already " + ApprovalStateName(req.state) +
                      (req.decided_by.empty() ? "" : " by " + req.decided_by));
    }
    if (auto e = CheckApprover(req, approver)) return e;
    for (const auto& v : req.votes) {
      if (v.user == approver.user) return Conflict(approver.user + " has already approved request " + id);
    }
    if (o.grant_ms > req.review.max_grant_ms) {
      return Error::Forbidden("rule \"" + req.rule + "\" allows grants of at most " +
                              std::to_string(req.review.max_grant_ms / 60000) + " minutes");
    }
    std::int64_t now = clock_.NowMillis();
    req.votes.push_back({approver.user, now, o.reason});
    if (o.grant_ms > 0) req.grant_ms = req.grant_ms > 0 ? std::min(req.grant_ms, o.grant_ms) : o.grant_ms;
    if (o.any_command) req.scope.any_command = true;
    if (o.any_name) req.scope.names.clear();
    if (o.reads) {
      bool read = req.scope.verbs.size() == 1 &&
                  (req.scope.verbs[0] == "get" || req.scope.verbs[0] == "list" || req.scope.verbs[0] == "watch");
      if (!read) return Error::BadRequest("scope \"reads\" widens a get, list or watch; request " + id + " is not one");
      req.scope.verbs = {"get", "list", "watch"};
      std::vector<std::pair<std::string, std::string>> selectors;
      for (auto& kv : req.scope.query) {
        if (kv.first == "labelSelector" || kv.first == "fieldSelector") selectors.push_back(kv);
      }
      req.scope.query = std::move(selectors);
      req.scope.selectors_only = true;
    }
    if (static_cast<int>(req.votes.size()) >= req.review.approvals) {
      req.state = ApprovalState::kApproved;
      req.decided_by = approver.user;
      req.decided_ms = now;
      grant = MakeGrant(req, now);
      if (auto p = PutGrant(*grant, true); !p) return p.error();
    }
    return std::nullopt;
  });
  return r;
}

Result<ApprovalRequest> ApprovalService::Deny(const std::string& id, const Identity& approver,
                                              const std::string& reason) {
  return Mutate(id, [&](ApprovalRequest& req) -> std::optional<Error> {
    if (req.state != ApprovalState::kPending) {
      return Conflict("request " + id + " is already " + ApprovalStateName(req.state) +
                      (req.decided_by.empty() ? "" : " by " + req.decided_by));
    }
    bool listed = Has(req.review.approver_users, approver.user);
    for (const auto& g : approver.groups) listed = listed || Has(req.review.approver_groups, g);
    if (!listed && approver.user != req.requester) {
      return Error::Forbidden("user \"" + approver.user + "\" is not an approver for rule \"" + req.rule + "\"");
    }
    req.state = ApprovalState::kDenied;
    req.decided_by = approver.user;
    req.reason = reason.empty() ? "no reason given" : reason;
    req.decided_ms = clock_.NowMillis();
    return std::nullopt;
  });
}

Result<ApprovalRequest> ApprovalService::Close(const std::string& id, ApprovalState state, const std::string& reason) {
  return Mutate(id, [&](ApprovalRequest& req) -> std::optional<Error> {
    if (req.state != ApprovalState::kPending) return Conflict("request " + id + " is already " + ApprovalStateName(req.state));
    req.state = state;
    req.reason = reason;
    req.decided_ms = clock_.NowMillis();
    return std::nullopt;
  });
}

Result<ApprovalService::PendingHolds> ApprovalService::CountPendingHolds(const std::string& requester) {
  const std::int64_t now = clock_.NowMillis();
  auto rows = db_->Run(
      "SELECT COUNT(*), COALESCE(SUM(CASE WHEN requester = ? THEN 1 ELSE 0 END), 0) FROM approval_request "
      "WHERE state = 'pending' AND hold = 1 AND expires_ms > ?",
      {requester, now});
  if (!rows) return rows.error();
  PendingHolds out;
  if (!rows->empty()) {
    out.total = static_cast<int>(SqlInt((*rows)[0][0]));
    out.of_requester = static_cast<int>(SqlInt((*rows)[0][1]));
  }
  return out;
}

Result<ApprovalRequest> ApprovalService::HandOff(const std::string& id) {
  return Mutate(id, [&](ApprovalRequest& req) -> std::optional<Error> {
    if (req.state != ApprovalState::kPending) return Conflict("request " + id + " is already " + ApprovalStateName(req.state));
    req.asked = std::max(0, req.asked - 1);
    return std::nullopt;
  });
}

Result<ApprovalRequest> ApprovalService::Get(const std::string& id) {
  auto loaded = Load(id, false);
  if (!loaded) return loaded.error();
  if (!*loaded) return NotFound("no approval request " + id);
  if ((*loaded)->state != ApprovalState::kPending || clock_.NowMillis() < (*loaded)->expires_ms) return **loaded;
  // Past its wait limit: record the expiry (a read-only change otherwise).
  auto expired = Mutate(id, [](ApprovalRequest& r) -> std::optional<Error> {
    if (r.state == ApprovalState::kExpired) return Conflict("expired");
    return std::nullopt;
  });
  if (!expired && expired.error().http_code != 409) return expired.error();
  return Get(id);
}

Result<std::vector<ApprovalRequest>> ApprovalService::List(std::optional<ApprovalState> state) {
  std::int64_t now = clock_.NowMillis();
  auto expire = db_->Run("SELECT id FROM approval_request WHERE state = 'pending' AND expires_ms <= ?",
                                         {now});
  if (!expire) return expire.error();
  for (const auto& row : *expire) (void)Get(row[0].value_or(""));
  auto rows = state ? db_->Run(
                          "SELECT body FROM approval_request WHERE state = ? ORDER BY created_ms DESC LIMIT 500",
                          {std::string(ApprovalStateName(*state))})
                    : db_->Run("SELECT body FROM approval_request ORDER BY created_ms DESC LIMIT 500");
  if (!rows) return rows.error();
  std::vector<ApprovalRequest> out;
  for (const auto& row : *rows) {
    auto j = nlohmann::json::parse(row[0].value_or("{}"), nullptr, false);
    if (!j.is_discarded()) out.push_back(ApprovalRequest::FromJson(j));
  }
  return out;
}

Result<bool> ApprovalService::Heartbeat() {
  const std::int64_t now = clock_.NowMillis();
  auto r = db_->Run(
      "INSERT INTO gateway_instance(id, started_ms, heartbeat_ms) VALUES (?, ?, ?) "
      "ON CONFLICT (id) DO UPDATE SET heartbeat_ms = excluded.heartbeat_ms",
      {instance_, now, now});
  if (!r) return r.error();
  return true;
}

Result<int> ApprovalService::AbandonOrphans(std::int64_t dead_after_ms) {
  const std::int64_t alive_since = clock_.NowMillis() - dead_after_ms;
  auto rows = db_->Run(
      "SELECT r.id FROM approval_request r WHERE r.state = 'pending' AND r.hold = 1 AND NOT EXISTS ("
      "SELECT 1 FROM approval_holder h JOIN gateway_instance g ON g.id = h.instance_id "
      "WHERE h.approval_id = r.id AND g.heartbeat_ms >= ?)",
      {alive_since});
  if (!rows) return rows.error();
  int n = 0;
  for (const auto& row : *rows) {
    if (Close(row[0].value_or(""), ApprovalState::kAbandoned,
              "the gateway replica that held the request stopped; the caller must send it again")) {
      ++n;
    }
  }
  // Instances gone for long are forgotten with their holds.
  (void)db_->Run("DELETE FROM approval_holder WHERE instance_id IN (SELECT id FROM gateway_instance WHERE heartbeat_ms < ?)",
                 {alive_since - dead_after_ms});
  (void)db_->Run("DELETE FROM gateway_instance WHERE heartbeat_ms < ?", {alive_since - dead_after_ms});
  return n;
}

Result<bool> ApprovalService::SessionOpened(const std::string& request_id, const std::string& file,
                                           const std::string& kind, std::int64_t started_ms) {
  auto r = db_->Run("INSERT INTO open_session(request_id, instance_id, file, kind, started_ms) VALUES (?, ?, ?, ?, ?)",
                    {request_id, instance_, file, kind, started_ms});
  if (!r) return r.error();
  return true;
}

Result<bool> ApprovalService::SessionClosed(const std::string& request_id) {
  auto r = db_->Run("DELETE FROM open_session WHERE request_id = ? AND instance_id = ?", {request_id, instance_});
  if (!r) return r.error();
  return true;
}

Result<std::vector<OrphanSession>> ApprovalService::OrphanSessions(std::int64_t dead_after_ms) {
  const std::int64_t alive_since = clock_.NowMillis() - dead_after_ms;
  auto rows = db_->Run(
      "SELECT request_id, instance_id, file, kind, started_ms FROM open_session WHERE instance_id <> ? AND NOT EXISTS ("
      "SELECT 1 FROM gateway_instance g WHERE g.id = open_session.instance_id AND g.heartbeat_ms >= ?)",
      {instance_, alive_since});
  if (!rows) return rows.error();
  std::vector<OrphanSession> out;
  for (const auto& row : *rows) {
    OrphanSession o;
    o.request_id = row[0].value_or("");
    o.instance_id = row[1].value_or("");
    o.file = row[2].value_or("");
    o.kind = row[3].value_or("");
    o.started_ms = std::stoll(row[4].value_or("0"));
    out.push_back(std::move(o));
  }
  return out;
}

Result<bool> ApprovalService::ClaimOrphanSession(const OrphanSession& o) {
  // Whoever deletes the row ends the session: two survivors never both do.
  auto rows = db_->Run("DELETE FROM open_session WHERE request_id = ? AND instance_id = ? RETURNING request_id",
                       {o.request_id, o.instance_id});
  if (!rows) return rows.error();
  return !rows->empty();
}

Result<int> ApprovalService::AbandonHeld() {
  auto rows = db_->Run("SELECT id FROM approval_request WHERE state = 'pending' AND hold = 1");
  if (!rows) return rows.error();
  int n = 0;
  for (const auto& row : *rows) {
    if (Close(row[0].value_or(""), ApprovalState::kAbandoned,
              "the gateway that held the request stopped; the caller must send it again")) {
      ++n;
    }
  }
  return n;
}

Result<std::optional<Grant>> ApprovalService::UseGrant(const Identity& who, const RequestedAction& a,
                                                       const std::string& rule) {
  const Holder holder = Holder::Of(who);
  std::optional<Grant> used;
  std::int64_t now = clock_.NowMillis();
  auto done = db_->WithWriteTransaction([&]() -> Result<bool> {
    Database& db = *db_;
    std::string sql =
        "SELECT body FROM access_grant WHERE user_name = ? AND rule = ? AND expires_ms > ? AND revoked = 0 "
        "AND uses_left <> 0 ORDER BY expires_ms";
    if (db.dialect() == SqlDialect::kPostgres) sql += " FOR UPDATE";
    auto rows = db.Run(sql, {who.user, rule, now});
    if (!rows) return rows.error();
    for (const auto& row : *rows) {
      Grant g = GrantFromJson(nlohmann::json::parse(row[0].value_or("{}"), nullptr, false));
      if (!(g.holder == holder) || !g.scope.Covers(a)) continue;
      if (g.uses_left > 0) {
        g.uses_left--;
        auto p = PutGrant(g, false);
        if (!p) return p;
      }
      used = g;
      return true;
    }
    return true;
  });
  if (!done) return done.error();
  return used;
}

Result<std::optional<Grant>> ApprovalService::GetGrant(const std::string& id) {
  auto rows = db_->Run("SELECT body FROM access_grant WHERE id = ?", {id});
  if (!rows) return rows.error();
  if (rows->empty()) return std::optional<Grant>();
  return std::optional<Grant>(GrantFromJson(nlohmann::json::parse((*rows)[0][0].value_or("{}"), nullptr, false)));
}

Result<std::vector<Grant>> ApprovalService::ListGrants(bool live_only) {
  auto rows = live_only ? db_->Run(
                              "SELECT body FROM access_grant WHERE expires_ms > ? AND revoked = 0 AND uses_left <> 0 "
                              "ORDER BY expires_ms DESC LIMIT 500",
                              {clock_.NowMillis()})
                        : db_->Run("SELECT body FROM access_grant ORDER BY expires_ms DESC LIMIT 500");
  if (!rows) return rows.error();
  std::vector<Grant> out;
  for (const auto& row : *rows) out.push_back(GrantFromJson(nlohmann::json::parse(row[0].value_or("{}"), nullptr, false)));
  return out;
}

Result<Grant> ApprovalService::Revoke(const std::string& grant_id, const Identity& by, const std::string& reason) {
  Grant out;
  std::optional<Error> refused;
  auto done = db_->WithWriteTransaction([&]() -> Result<bool> {
    auto g = GetGrant(grant_id);
    if (!g) return g.error();
    if (!*g) {
      refused = NotFound("no grant " + grant_id);
      return Error::BadRequest("refused");
    }
    out = **g;
    auto req = Load(out.approval_id, false);
    if (!req) return req.error();
    bool may = by.user == out.user;
    if (*req) may = may || !CheckApprover(**req, by).has_value() || Has((*req)->review.approver_users, by.user);
    if (!may) {
      refused = Error::Forbidden("user \"" + by.user + "\" may not revoke grant " + grant_id);
      return Error::BadRequest("refused");
    }
    out.revoked = true;
    out.revoked_by = by.user + (reason.empty() ? "" : ": " + reason);
    return PutGrant(out, false);
  });
  if (refused) return *refused;
  if (!done) return done.error();
  Changed(grant_id);
  return out;
}

Result<std::vector<std::string>> ApprovalService::ChangedAmong(const std::vector<std::string>& watched) {
  std::vector<std::string> out;
  if (watched.empty()) return out;
  auto pending = db_->Run("SELECT id FROM approval_request WHERE state = 'pending'");
  if (!pending) return pending.error();
  auto revoked = db_->Run("SELECT id FROM access_grant WHERE revoked = 1 AND expires_ms > ?",
                                          {clock_.NowMillis()});
  if (!revoked) return revoked.error();
  std::set<std::string> still_pending, now_revoked;
  for (const auto& row : *pending) still_pending.insert(row[0].value_or(""));
  for (const auto& row : *revoked) now_revoked.insert(row[0].value_or(""));
  for (const auto& id : watched) {
    const bool grant = id.rfind("gr-", 0) == 0;
    if (!grant && id.rfind("kg-", 0) != 0) continue;  // not an approval key (a runtime identity's)
    if (grant ? now_revoked.count(id) > 0 : still_pending.count(id) == 0) out.push_back(id);
  }
  return out;
}

}  // namespace kubegate

namespace kubegate {

nlohmann::json ApprovalAuditFacts(const ApprovalRequest& r, const Grant* grant, std::int64_t waited_ms) {
  nlohmann::json approvers = nlohmann::json::array();
  bool by_policy = false;
  for (const auto& v : r.votes) {
    approvers.push_back({{"user", v.user}, {"at", FormatRfc3339Millis(v.at_ms)}, {"reason", v.reason}});
    by_policy = by_policy || v.user.rfind("policy:", 0) == 0;
  }
  nlohmann::json j = {{"id", r.id},
                      {"state", ApprovalStateName(r.state)},
                      {"rule", r.rule},
                      {"required", r.review.approvals},
                      {"approvers", approvers},
                      {"by_policy", by_policy},
                      {"waited_ms", waited_ms}};
  if (!r.decided_by.empty()) j["decided_by"] = r.decided_by;
  if (!r.reason.empty()) j["reason"] = r.reason;
  if (grant) {
    j["grant_id"] = grant->id;
    j["grant_expires"] = FormatRfc3339Millis(grant->expires_ms);
    j["scope"] = grant->scope.ToJson();
    j["within_scope"] = true;
  } else if (r.state == ApprovalState::kApproved) {
    j["scope"] = r.scope.ToJson();
    j["within_scope"] = true;
  }
  return j;
}

}  // namespace kubegate
