// The identity REST API, served by the gateway to authenticated callers:
//
//   GET  /kubegate/v1/identities               -> {"items": [...]}   registered and disabled names
//   POST /kubegate/v1/identities               {"name": "deploy-bot", "kind": "agent", "groups": [...],
//                                               "description": "..."}  -> 201 {"identity": {...}}
//   POST /kubegate/v1/identities/disable       {"name": "...", "reason": "..."} -> {"disabled": true}
//   POST /kubegate/v1/identities/enable        {"name": "...", "reason": "..."} -> {"enabled": true}
//   GET  /kubegate/v1/tokens[?all=true]        -> {"items": [...]}   static and task tokens
//   POST /kubegate/v1/tokens                   {"identity": "deploy-bot", "ttl": "90d", "reason": "..."}
//        -> 201 {"token": "kgt_...", "credential": {...}}   (the token is shown only here)
//   POST /kubegate/v1/tokens/ID/revoke         {"reason": "..."} -> {"revoked": N}
//
// Names travel in bodies, never in paths: user names may hold "/" and ":"
// (an OIDC issuer URL prefix, a ServiceAccount).
//
// Changes are for identity admins (config `identity_admins:`); listing for
// them and auditors. A caller with a per-task token manages nothing. Every
// change is described in `change`, which the gateway puts in the API
// request's own audit record. Plain C++: the network layer runs it on its
// store thread.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "credentials/credential_api.h"
#include "credentials/credential_store.h"
#include "credentials/identity_store.h"

namespace kubegate {

inline constexpr std::string_view kIdentityApiPrefix = "/kubegate/v1/identities";
inline constexpr std::string_view kTokenApiPrefix = "/kubegate/v1/tokens";
bool IsIdentityApiPath(std::string_view path);

struct IdentityApiRoles {
  bool admin = false;
  bool auditor = false;
  // Groups (globs) a registered identity may be given.
  std::vector<std::string> assignable_groups;
  // The config file's identities: not registered again under their names.
  std::vector<std::string> reserved_names;
};

TaskApiResponse RunIdentityApi(CredentialStore& creds, IdentityStore& ids, const Identity& caller,
                               const IdentityApiRoles& roles, std::string_view method, std::string_view path,
                               std::string_view raw_query, std::string_view body);

}  // namespace kubegate
