#include "credentials/credential_store.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "common/digest.h"
#include "common/limits.h"
#include "common/thread_name.h"
#include "credentials/column_values.h"
#include "store/store_events.h"

namespace kubegate {

namespace {

using json = nlohmann::json;

const Migration kCredentialMigrations[] = {
    {4, R"SQL(
CREATE TABLE credential(
  id TEXT PRIMARY KEY,
  token_sha256 TEXT NOT NULL UNIQUE,
  agent TEXT NOT NULL,
  groups_json TEXT NOT NULL,
  task TEXT NOT NULL,
  reason TEXT NOT NULL,
  created_by TEXT NOT NULL,
  created_ms BIGINT NOT NULL,
  expires_ms BIGINT NOT NULL,
  revoked_ms BIGINT NOT NULL,
  revoked_by TEXT NOT NULL);
CREATE INDEX credential_task ON credential(task, revoked_ms);
CREATE TABLE credential_version(id INTEGER PRIMARY KEY, version BIGINT NOT NULL);
INSERT INTO credential_version(id, version) VALUES (1, 0);
)SQL"},
    // Identities managed at runtime (identity_store.h) and static tokens.
    {6, R"SQL(
ALTER TABLE credential ADD COLUMN kind TEXT NOT NULL DEFAULT 'task';
ALTER TABLE credential ADD COLUMN identity_kind TEXT NOT NULL DEFAULT 'agent';
CREATE TABLE managed_identity(
  name TEXT PRIMARY KEY,
  kind TEXT NOT NULL,
  groups_json TEXT NOT NULL,
  description TEXT NOT NULL,
  created_by TEXT NOT NULL,
  created_ms BIGINT NOT NULL);
CREATE TABLE identity_disabled(
  name TEXT PRIMARY KEY,
  disabled_by TEXT NOT NULL,
  disabled_ms BIGINT NOT NULL,
  reason TEXT NOT NULL);
)SQL"},
};

constexpr const char* kColumns =
    "id, token_sha256, agent, groups_json, task, reason, created_by, created_ms, expires_ms, revoked_ms, revoked_by, "
    "kind, identity_kind";


Result<std::vector<CredentialInfo>> Rows(Database& db, const std::string& where, const std::vector<SqlValue>& params) {
  auto rows = db.Run(std::string("SELECT ") + kColumns + " FROM credential " + where, params);
  if (!rows) return rows.error();
  std::vector<CredentialInfo> out;
  for (const SqlRow& r : *rows) {
    CredentialInfo c;
    c.id = r[0].value_or("");
    c.token_sha256 = r[1].value_or("");
    c.agent = r[2].value_or("");
    c.groups = StringListColumn(r[3]);
    c.task = r[4].value_or("");
    c.reason = r[5].value_or("");
    c.created_by = r[6].value_or("");
    c.created_ms = SqlInt(r[7]);
    c.expires_ms = SqlInt(r[8]);
    c.revoked_ms = SqlInt(r[9]);
    c.revoked_by = r[10].value_or("");
    c.kind = r[11].value_or("") == "static" ? CredentialKind::kStatic : CredentialKind::kTask;
    c.identity_kind = ParseIdentityKind(r[12].value_or("")).value_or(IdentityKind::kAgent);
    out.push_back(std::move(c));
  }
  return out;
}

}  // namespace

bool PrintableName(const std::string& s, std::size_t max) {
  return !s.empty() && s.size() <= max &&
         std::all_of(s.begin(), s.end(), [](unsigned char c) { return c > 0x20 && c < 0x7f; });
}

std::vector<std::string> StringListColumn(const std::optional<std::string>& json_text) {
  std::vector<std::string> out;
  json g = json::parse(json_text.value_or("[]"), nullptr, false);
  if (!g.is_array()) return out;
  for (const json& x : g) {
    if (x.is_string()) out.push_back(x.get<std::string>());
  }
  return out;
}

const char* CredentialKindName(CredentialKind k) { return k == CredentialKind::kStatic ? "static" : "task"; }

json CredentialInfo::ToJson() const {
  json j = {{"id", id},
            {"kind", CredentialKindName(kind)},
            {"agent", agent},
            {"identity_kind", IdentityKindName(identity_kind)},
            {"groups", groups},
            {"task", task},
            {"reason", reason},
            {"created_by", created_by},
            {"created", FormatRfc3339Millis(created_ms)},
            {"expires", FormatRfc3339Millis(expires_ms)}};
  if (revoked_ms) {
    j["revoked"] = FormatRfc3339Millis(revoked_ms);
    j["revoked_by"] = revoked_by;
  }
  return j;
}

Result<std::unique_ptr<Database>> CredentialStore::OpenDatabase(const StoreConfig& config) {
  return Database::Open(config, kCredentialMigrations);
}

Result<std::unique_ptr<Database>> CredentialStore::OpenDatabase(std::unique_ptr<SqlConnection> conn) {
  return Database::Open(std::move(conn), kCredentialMigrations);
}

Result<bool> BumpCredentialVersion(Database& db) {
  auto r = db.Run("UPDATE credential_version SET version = version + 1 WHERE id = 1");
  if (!r) return r.error();
  // Delivered with the commit: every replica polls at once instead of at
  // its next kCredentialPoll.
  return db.Publish(kCredentialsChannel, "");
}

Result<IssuedCredential> CredentialStore::Issue(const NewCredential& c) {
  const bool task = c.kind == CredentialKind::kTask;
  if (!PrintableName(c.agent, 253)) return Error::BadRequest("agent: a name of 1 to 253 printable characters is required");
  if (task && !PrintableName(c.task, 128)) {
    return Error::BadRequest("task: an id of 1 to 128 printable characters is required");
  }
  if (!task && !c.task.empty()) return Error::BadRequest("task: a static token has no task");
  const std::int64_t max_ttl =
      std::chrono::duration_cast<std::chrono::milliseconds>(task ? limits::kMaxTaskTokenTtl : limits::kMaxStaticTokenTtl)
          .count();
  if (c.ttl_ms < 60'000 || c.ttl_ms > max_ttl) {
    return Error::BadRequest("ttl: from 1m to " + std::to_string(max_ttl / 3'600'000) + "h");
  }
  if (c.reason.size() > 1024) return Error::BadRequest("reason: at most 1024 characters");
  IssuedCredential out;
  out.token = RandomId("kgt_", 32);
  CredentialInfo& info = out.info;
  info.id = RandomId("cr-", 10);
  info.token_sha256 = Sha256Hex(out.token);
  info.agent = c.agent;
  info.groups = c.groups;
  info.task = c.task;
  info.reason = c.reason;
  info.created_by = c.by;
  info.created_ms = clock_.NowMillis();
  info.expires_ms = info.created_ms + c.ttl_ms;
  info.kind = c.kind;
  info.identity_kind = c.identity_kind;
  auto ok = db_.WithWriteTransaction([&]() -> Result<bool> {
    auto r = db_.Run(std::string("INSERT INTO credential(") + kColumns + ") VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                     {info.id, info.token_sha256, info.agent, json(info.groups).dump(), info.task, info.reason,
                      info.created_by, info.created_ms, info.expires_ms, std::int64_t{0}, std::string(),
                      std::string(CredentialKindName(info.kind)), std::string(IdentityKindName(info.identity_kind))});
    if (!r) return r.error();
    return BumpCredentialVersion(db_);
  });
  if (!ok) return ok.error();
  return out;
}

Result<int> CredentialStore::RevokeWhere(const char* column, const std::string& value, const std::string& by) {
  int n = 0;
  auto ok = db_.WithWriteTransaction([&]() -> Result<bool> {
    auto live = Rows(db_, std::string("WHERE ") + column + " = ? AND revoked_ms = 0", {value});
    if (!live) return live.error();
    n = static_cast<int>(live->size());
    if (n == 0) return true;
    auto r = db_.Run(std::string("UPDATE credential SET revoked_ms = ?, revoked_by = ? WHERE ") + column +
                         " = ? AND revoked_ms = 0",
                     {clock_.NowMillis(), by, value});
    if (!r) return r.error();
    return BumpCredentialVersion(db_);
  });
  if (!ok) return ok.error();
  return n;
}

Result<int> CredentialStore::Revoke(const std::string& id, const std::string& by) { return RevokeWhere("id", id, by); }

Result<int> CredentialStore::RevokeTask(const std::string& task, const std::string& by) {
  return RevokeWhere("task", task, by);
}

Result<std::vector<CredentialInfo>> CredentialStore::List(bool all) {
  if (all) return Rows(db_, "ORDER BY created_ms DESC", {});
  return Rows(db_, "WHERE revoked_ms = 0 AND expires_ms > ? ORDER BY created_ms DESC", {clock_.NowMillis()});
}

Result<std::vector<CredentialInfo>> CredentialStore::Active() { return List(false); }

Result<std::optional<CredentialInfo>> CredentialStore::Get(const std::string& id) {
  auto rows = Rows(db_, "WHERE id = ?", {id});
  if (!rows) return rows.error();
  if (rows->empty()) return std::optional<CredentialInfo>();
  return std::optional<CredentialInfo>(std::move(rows->front()));
}

Result<std::int64_t> CredentialStore::Version() {
  auto rows = db_.Run("SELECT version FROM credential_version WHERE id = 1");
  if (!rows) return rows.error();
  if (rows->empty() || !(*rows)[0][0]) return Error::Internal("credential_version is empty");
  return std::stoll(*(*rows)[0][0]);
}

Result<CredentialSnapshot> CredentialStore::Snapshot() {
  CredentialSnapshot snap;
  // The version first: what is read after it is at least that new, and a
  // change in between moves the version again (the next poll reloads).
  auto version = Version();
  if (!version) return version.error();
  snap.version = *version;
  auto active = Active();
  if (!active) return active.error();
  snap.active = std::move(*active);
  auto rows = db_.Run("SELECT name, disabled_by, disabled_ms, reason FROM identity_disabled");
  if (!rows) return rows.error();
  for (const SqlRow& r : *rows) {
    snap.disabled[r[0].value_or("")] = DisabledUser{r[1].value_or(""), r[3].value_or(""), SqlInt(r[2])};
  }
  return snap;
}

namespace {

std::string DisabledMessage(const std::string& user, const DisabledUser& d) {
  return "user \"" + user + "\" was disabled by " + d.by + (d.reason.empty() ? "" : ": " + d.reason);
}

}  // namespace

Result<std::optional<std::string>> CredentialStore::Ended(const Identity& who) {
  auto rows = db_.Run("SELECT disabled_by, disabled_ms, reason FROM identity_disabled WHERE name = ?", {who.user});
  if (!rows) return rows.error();
  if (!rows->empty()) {
    const SqlRow& r = rows->front();
    return std::optional<std::string>(DisabledMessage(who.user, {r[0].value_or(""), r[2].value_or(""), SqlInt(r[1])}));
  }
  if (who.credential_id.empty()) return std::optional<std::string>();
  auto c = Get(who.credential_id);
  if (!c) return c.error();
  if (!*c) return std::optional<std::string>(DescribeCredential(who) + " is not in the store");
  if ((*c)->revoked_ms) return std::optional<std::string>(DescribeCredential(who) + " was revoked by " + (*c)->revoked_by);
  if (clock_.NowMillis() >= (*c)->expires_ms) return std::optional<std::string>(DescribeCredential(who) + " expired");
  return std::optional<std::string>();
}

void CredentialCache::SetChangeListener(ChangeListener fn) {
  std::lock_guard<std::mutex> lock(listener_mu_);
  listener_ = std::move(fn);
}

void CredentialCache::Load(CredentialSnapshot snapshot) {
  std::unordered_map<std::string, CredentialInfo> by_hash;
  std::unordered_map<std::string, std::string> hash_by_id;
  for (CredentialInfo& c : snapshot.active) {
    hash_by_id[c.id] = c.token_sha256;
    std::string hash = c.token_sha256;
    by_hash[hash] = std::move(c);
  }
  std::vector<std::string> ended;
  {
    std::lock_guard<std::mutex> lock(mu_);
    // The issuing gateway loads its own change while its poller may be
    // loading an older snapshot: the older one never wins.
    if (snapshot.version < version_) return;
    for (const auto& [id, hash] : hash_by_id_) {
      if (!hash_by_id.count(id)) ended.push_back(CredentialKey(id));
    }
    for (const auto& [user, why] : snapshot.disabled) {
      if (!disabled_.count(user)) ended.push_back(UserKey(user));
    }
    by_hash_.swap(by_hash);
    hash_by_id_.swap(hash_by_id);
    disabled_.swap(snapshot.disabled);
    version_ = snapshot.version;
  }
  // Held while it runs: once SetChangeListener(nullptr) returns, the old
  // listener is never called again.
  std::lock_guard<std::mutex> lock(listener_mu_);
  if (listener_ && !ended.empty()) listener_(ended);
}

std::int64_t CredentialCache::version() const {
  std::lock_guard<std::mutex> lock(mu_);
  return version_;
}

std::optional<Identity> CredentialCache::Lookup(const std::string& token_sha256, std::int64_t now_ms) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = by_hash_.find(token_sha256);
  if (it == by_hash_.end() || !it->second.Active(now_ms)) return std::nullopt;
  const CredentialInfo& c = it->second;
  Identity id;
  id.user = c.agent;
  id.groups = c.groups;
  id.kind = c.identity_kind;
  if (c.kind == CredentialKind::kTask) {
    id.method = AuthMethod::kTaskToken;
    id.task = c.task;
  } else {
    id.method = AuthMethod::kBearerToken;
    id.auth_source = kStoreTokenSource;
  }
  id.credential_id = c.id;
  id.credential_expires_ms = c.expires_ms;
  return id;
}

std::optional<std::string> CredentialCache::Disabled(const std::string& user) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = disabled_.find(user);
  if (it == disabled_.end()) return std::nullopt;
  return "disabled by " + it->second.by + (it->second.reason.empty() ? "" : ": " + it->second.reason);
}

std::optional<std::string> CredentialCache::Ended(const Identity& who, std::int64_t now_ms) const {
  std::lock_guard<std::mutex> lock(mu_);
  if (auto d = disabled_.find(who.user); d != disabled_.end()) return DisabledMessage(who.user, d->second);
  if (who.credential_id.empty()) return std::nullopt;
  auto h = hash_by_id_.find(who.credential_id);
  auto it = h == hash_by_id_.end() ? by_hash_.end() : by_hash_.find(h->second);
  if (it != by_hash_.end() && it->second.Active(now_ms)) return std::nullopt;
  return DescribeCredential(who) + " was revoked or expired";
}

std::vector<std::string> CredentialCache::WakeKeys(const Identity& who) {
  std::vector<std::string> keys = {UserKey(who.user)};
  if (!who.credential_id.empty()) keys.push_back(CredentialKey(who.credential_id));
  return keys;
}

std::string DescribeCredential(const Identity& who) {
  if (!who.task.empty()) return "the task token for task " + who.task + " (" + who.credential_id + ")";
  return "the token " + who.credential_id;
}

CredentialPoller::CredentialPoller(std::unique_ptr<Database> db, CredentialCache& cache, const Clock& clock)
    : db_(std::move(db)), store_(*db_, clock), cache_(cache) {}

CredentialPoller::~CredentialPoller() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

Result<bool> CredentialPoller::PollOnce() {
  auto version = store_.Version();
  if (!version) return version.error();
  if (*version == cache_.version()) return false;
  auto snapshot = store_.Snapshot();
  if (!snapshot) return snapshot.error();
  cache_.Load(std::move(*snapshot));
  return true;
}

void CredentialPoller::Kick() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    kicked_ = true;
  }
  cv_.notify_all();
}

void CredentialPoller::Start() {
  thread_ = std::thread([this] {
    NameThisThread("kg-credentials");
    std::unique_lock<std::mutex> lock(mu_);
    while (true) {
      cv_.wait_for(lock, limits::kCredentialPoll, [this] { return stop_ || kicked_; });
      if (stop_) return;
      kicked_ = false;
      lock.unlock();
      (void)PollOnce();
      lock.lock();
    }
  });
}

}  // namespace kubegate
