// Credentials issued at runtime and kept in the store: per-task agent
// tokens (`kubegate agent token --agent NAME --task T-123 --ttl 1h`). A
// token is bound to one agent identity and one task; it ends when it
// expires or is revoked (by id or by task), and every gateway worker (and
// every replica sharing the store) stops accepting it within
// kCredentialPoll: the cache below reloads when the store's credential
// version moves.
//
// The token itself is shown once, at issue; the store keeps its SHA-256.
//
//   CredentialStore store(*db, clock);
//   auto issued = store.Issue({.agent = "deploy-bot", .task = "T-123", .ttl_ms = 3'600'000, .by = "alice"});
//   store.RevokeTask("T-123", "alice");
//   CredentialCache cache;  cache.Load(*store.Active(), *store.Version());
//   std::optional<Identity> who = cache.Lookup(Sha256Hex(token), now_ms);
#pragma once

#include <cstdint>
#include <memory>
#include <condition_variable>
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

struct NewCredential {
  std::string agent;  // the identity's user name
  std::vector<std::string> groups;
  std::string task;   // required: what the agent was asked to do (e.g. "T-123")
  std::int64_t ttl_ms = 0;
  std::string reason;
  std::string by;     // who issued it
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

  bool Active(std::int64_t now_ms) const { return revoked_ms == 0 && now_ms < expires_ms; }
  nlohmann::json ToJson() const;  // never the hash
};

struct IssuedCredential {
  CredentialInfo info;
  std::string token;  // shown once
};

class CredentialStore {
 public:
  // The store's tables (migration 4), over a database of the caller's.
  static Result<std::unique_ptr<Database>> OpenDatabase(const StoreConfig& config);
  static Result<std::unique_ptr<Database>> OpenDatabase(std::unique_ptr<SqlConnection> conn);

  CredentialStore(Database& db, const Clock& clock) : db_(db), clock_(clock) {}

  // Bounds: a task id of 1-128 printable characters, a TTL from 1 minute
  // to limits::kMaxTaskTokenTtl, an agent name as Kubernetes user names go.
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

 private:
  Result<bool> Bump();
  // `column` is "id" or "task" (never input).
  Result<int> RevokeWhere(const char* column, const std::string& value, const std::string& by);
  Database& db_;
  const Clock& clock_;
};

// The active credentials as the authenticate stage reads them (any thread).
class CredentialCache final : public RuntimeTokens {
 public:
  void Load(const std::vector<CredentialInfo>& active, std::int64_t version);
  std::int64_t version() const;
  // The identity of a token by its hash, while it is live at `now_ms`.
  std::optional<Identity> Lookup(const std::string& token_sha256, std::int64_t now_ms) const override;
  // Whether credential `id` can still authenticate (streams under it check).
  bool Live(const std::string& id, std::int64_t now_ms) const;

 private:
  mutable std::mutex mu_;
  std::unordered_map<std::string, CredentialInfo> by_hash_;
  std::unordered_map<std::string, std::string> hash_by_id_;
  std::int64_t version_ = -1;
};

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

 private:
  std::unique_ptr<Database> db_;
  CredentialStore store_;
  CredentialCache& cache_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace kubegate
