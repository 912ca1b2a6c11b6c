// Identities managed at runtime, in the store (no restart, no config
// edit): agents and people registered with their kind and groups (static
// tokens are issued for them: CredentialStore::Issue with kStatic), and
// user names disabled at runtime. A disabled name is refused however it
// authenticates (config-file token, certificate, OIDC, ServiceAccount,
// store token): the kill switch for a credential nobody can revoke fast
// enough at its source. Enabling it again restores it; tokens revoked stay
// revoked.
//
// The config file's tokens keep working as the bootstrap: the first
// identity admin is configured there (config `identity_admins:`).
//
//   IdentityStore ids(*db, clock);
//   ids.Create({.name = "deploy-bot", .kind = IdentityKind::kAgent, .groups = {"agents"}, .by = "alice"});
//   ids.Disable("deploy-bot", "alice", "leaked in a CI log");
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "common/clock.h"
#include "common/result.h"
#include "identity/identity.h"
#include "store/database.h"

namespace kubegate {

struct NewIdentity {
  std::string name;
  IdentityKind kind = IdentityKind::kAgent;
  std::vector<std::string> groups;
  std::string description;
  std::string by;
};

struct ManagedIdentity {
  std::string name;
  bool registered = false;  // false: a name only disabled here (it authenticates elsewhere)
  IdentityKind kind = IdentityKind::kAgent;
  std::vector<std::string> groups;
  std::string description;
  std::string created_by;
  std::int64_t created_ms = 0;
  std::int64_t disabled_ms = 0;  // 0: enabled
  std::string disabled_by;
  std::string disabled_reason;

  nlohmann::json ToJson() const;
};

class IdentityStore {
 public:
  // Over a database CredentialStore::OpenDatabase opened (migration 6).
  IdentityStore(Database& db, const Clock& clock) : db_(db), clock_(clock) {}

  // Registers a name. Refused: a name taken, one the cluster reserves
  // ("system:" users, "system:" groups), one shaped like another source's
  // (an OIDC "issuer#name", a ServiceAccount), or one in `reserved` (the
  // config file's own identities: a registered twin would share its name
  // and so its approvals).
  Result<ManagedIdentity> Create(const NewIdentity& n, const std::vector<std::string>& reserved);
  // Registered identities and names disabled without being registered,
  // by name.
  Result<std::vector<ManagedIdentity>> List();
  Result<std::optional<ManagedIdentity>> Get(const std::string& name);
  // Any user name may be disabled; false when it already was (or, for
  // Enable, was not).
  Result<bool> Disable(const std::string& name, const std::string& by, const std::string& reason);
  Result<bool> Enable(const std::string& name);

 private:
  Database& db_;
  const Clock& clock_;
};

}  // namespace kubegate
