// Credentials issued at runtime and kept in the store, and the state of
// identities managed at runtime (credentials/identity_store.h):
//
// - per-task agent tokens (`kubegate agent token --agent NAME --task T-123
//   --ttl 1h`), bound to one agent and one task;
// - static tokens of a registered identity (`kubegate token create
//   --identity NAME --ttl 90d`), for callers with no identity provider.
//
// A token ends when it expires or is revoked (by id, or every token of a
// task); a user name disabled at runtime stops acting however it
// authenticates. Every gateway worker (and every replica sharing the
// store) sees a change within kCredentialPoll: the cache below reloads
// when the store's credential version moves, and tells the listener which
// credentials and users ended, so streams and held requests under them end
// at once instead of each polling.
//
// The token itself is shown once, at issue; the store keeps its SHA-256.
//
//   CredentialStore store(*db, clock);
//   auto issued = store.Issue({.agent = "deploy-bot", .task = "T-123", .ttl_ms = 3'600'000, .by = "alice"});
//   store.RevokeTask("T-123", "alice");
//   CredentialCache cache;  cache.Load(*store.Snapshot());
//   std::optional<Identity> who = cache.Lookup(Sha256Hex(token), now_ms);
#pragma once

#include <cstdint>
#include <memory>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "common/clock.h"
#include "common/result.h"
#include "identity/authenticator.h"
#include "identity/identity.h"
#include "store/database.h"

namespace kubegate {

enum class CredentialKind { kTask, kStatic };
// Identity::auth_source of a caller with a static token from the store.
inline constexpr const char* kStoreTokenSource = "kubegate-store";
const char* CredentialKindName(CredentialKind k);

struct NewCredential {
  std::string agent;  // the identity's user name
  std::vector<std::string> groups;
  std::string task;   // kTask: required, what the agent was asked to do (e.g. "T-123"); kStatic: empty
  std::int64_t ttl_ms = 0;
  std::string reason;
  std::string by;     // who issued it
  CredentialKind kind = CredentialKind::kTask;
  IdentityKind identity_kind = IdentityKind::kAgent;  // kStatic: the registered identity's
};

struct CredentialInfo {
  std::string id;  // "cr-..."
  std::string token_sha256;
  std::string agent;
  std::vector<std::string> groups;
  std::string task;
  std::string reason;
  std::string created_by;
  std::int64_t created_ms = 0;
  std::int64_t expires_ms = 0;
  std::int64_t revoked_ms = 0;  // 0: not revoked
  std::string revoked_by;
  CredentialKind kind = CredentialKind::kTask;
  IdentityKind identity_kind = IdentityKind::kAgent;

  bool Active(std::int64_t now_ms) const { return revoked_ms == 0 && now_ms < expires_ms; }
  nlohmann::json ToJson() const;  // never the hash
};

struct IssuedCredential {
  CredentialInfo info;
  std::string token;  // shown once
};

// A user name disabled at runtime.
struct DisabledUser {
  std::string by;
  std::string reason;
  std::int64_t at_ms = 0;
};

// What the cache holds: read in one transaction.
struct CredentialSnapshot {
  std::vector<CredentialInfo> active;
  std::unordered_map<std::string, DisabledUser> disabled;
  std::int64_t version = 0;
};

// Moves the store's credential version (inside the caller's transaction):
// every cache reloads.
Result<bool> BumpCredentialVersion(Database& db);

class CredentialStore {
 public:
  // The store's tables (migration 4), over a database of the caller's.
  static Result<std::unique_ptr<Database>> OpenDatabase(const StoreConfig& config);
  static Result<std::unique_ptr<Database>> OpenDatabase(std::unique_ptr<SqlConnection> conn);

  CredentialStore(Database& db, const Clock& clock) : db_(db), clock_(clock) {}

  // Bounds: a task id of 1-128 printable characters (kTask), a TTL from
  // 1 minute to limits::kMaxTaskTokenTtl (kTask) or kMaxStaticTokenTtl
  // (kStatic), a name as Kubernetes user names go. Whether the caller may
  // issue it, and for whom, is the API's to check.
  Result<IssuedCredential> Issue(const NewCredential& c);
  // Revokes one credential, or every live one of a task; the count revoked.
  Result<int> Revoke(const std::string& id, const std::string& by);
  Result<int> RevokeTask(const std::string& task, const std::string& by);
  // Newest first; revoked and expired ones too when `all`.
  Result<std::vector<CredentialInfo>> List(bool all);
  // The credentials that can still authenticate (not revoked, not expired).
  Result<std::vector<CredentialInfo>> Active();
  // One credential by id, as the store has it now (revoked or not);
  // nothing when there is no such id.
  Result<std::optional<CredentialInfo>> Get(const std::string& id);
  // Moves on every change; the cache reloads when it differs.
  Result<std::int64_t> Version();
  // The active credentials and the disabled users, at one version.
  Result<CredentialSnapshot> Snapshot();
  // CredentialCache::Ended, read from the store itself: exact for every
  // change committed before it, through any replica.
  Result<std::optional<std::string>> Ended(const Identity& who);

 private:
  // `column` is "id" or "task" (never input).
  Result<int> RevokeWhere(const char* column, const std::string& value, const std::string& by);
  Database& db_;
  const Clock& clock_;
};

// The active credentials and disabled users as the authenticate stage
// reads them (any thread).
class CredentialCache final : public RuntimeTokens {
 public:
  // Called after a Load with the WakeUps keys of what ended: CredentialKey
  // of each credential no longer active, UserKey of each user newly
  // disabled. Runs on the loading thread: it must only hand them on.
  // SetChangeListener(nullptr) before the listener's owner goes.
  using ChangeListener = std::function<void(const std::vector<std::string>& ended)>;
  void SetChangeListener(ChangeListener fn);
  static std::string CredentialKey(const std::string& id) { return "credential:" + id; }
  static std::string UserKey(const std::string& user) { return "user:" + user; }

  // Ignored when older (by version) than what the cache holds.
  void Load(CredentialSnapshot snapshot);
  std::int64_t version() const;
  // The identity of a token by its hash, while it is live at `now_ms`.
  std::optional<Identity> Lookup(const std::string& token_sha256, std::int64_t now_ms) const override;
  std::optional<std::string> Disabled(const std::string& user) const override;
  // Why `who` may no longer act at `now_ms` (its user disabled, the store
  // credential it came with revoked or expired), or nothing. Held requests
  // and streams check it when woken on its keys (WakeKeys).
  std::optional<std::string> Ended(const Identity& who, std::int64_t now_ms) const;
  static std::vector<std::string> WakeKeys(const Identity& who);

 private:
  mutable std::mutex mu_;
  std::unordered_map<std::string, CredentialInfo> by_hash_;
  std::unordered_map<std::string, std::string> hash_by_id_;
  std::unordered_map<std::string, DisabledUser> disabled_;
  std::int64_t version_ = -1;
  std::mutex listener_mu_;  // after mu_, never inside it
  ChangeListener listener_;
};

// How a store credential is named in messages: "the task token for task
// T-1 (cr-…)" or "the token cr-…".
std::string DescribeCredential(const Identity& who);

// Keeps a CredentialCache current: reads the store's credential version
// every kCredentialPoll on a thread of its own (its own connection) and
// reloads the active credentials when it moved. A store it cannot read
// leaves the cache as it was; the next poll tries again.
class CredentialPoller {
 public:
  CredentialPoller(std::unique_ptr<Database> db, CredentialCache& cache, const Clock& clock);
  ~CredentialPoller();
  CredentialPoller(const CredentialPoller&) = delete;
  CredentialPoller& operator=(const CredentialPoller&) = delete;

  // One poll now, on the caller's thread (at start, before serving).
  Result<bool> PollOnce();
  void Start();
  // Poll at once on the poller's thread (another replica announced a
  // change: store/store_events.h). Any thread.
  void Kick();

 private:
  std::unique_ptr<Database> db_;
  CredentialStore store_;
  CredentialCache& cache_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  bool kicked_ = false;
  std::thread thread_;
};

}  // namespace kubegate
