// The per-task token REST API, served by the gateway to authenticated
// callers:
//
//   POST /kubegate/v1/tasks/tokens             {"agent": "deploy-bot", "task": "T-123", "ttl": "1h",
//                                               "reason": "..."}
//        -> 201 {"token": "kgt_...", "credential": {...}}   (the token is shown only here)
//   GET  /kubegate/v1/tasks/tokens[?all=true]  -> {"items": [...]}
//   POST /kubegate/v1/tasks/TASK/revoke        -> {"revoked": N}
//   POST /kubegate/v1/tasks/tokens/ID/revoke   -> {"revoked": N}
//
// Issuing and revoking are for brokers (config `brokers:` users/groups: the
// people or orchestrators allowed to hand agents access for a task);
// listing for brokers and auditors. Every change is described in `change`,
// which the gateway puts in the API request's own audit record. Plain C++:
// the network layer runs it on its store thread.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "credentials/credential_store.h"
#include "credentials/identity_store.h"

namespace kubegate {

inline constexpr std::string_view kTaskApiPrefix = "/kubegate/v1/tasks";
bool IsTaskApiPath(std::string_view path);

struct TaskApiResponse {
  int status = 200;
  std::string body;
  nlohmann::json change;  // null: nothing changed
};

// What brokers may issue: agent names matching `agents` (globs), with
// exactly `agent_groups` as the identity's groups.
struct BrokerLimits {
  std::vector<std::string> agents;
  std::vector<std::string> agent_groups;
};

// Brokers issue for a registered agent (IdentityStore, not disabled: with
// its registered groups) or for an agent name `limits` allows (with
// limits.agent_groups). `ids` may be null (no registry).
TaskApiResponse RunTaskApi(CredentialStore& store, IdentityStore* ids, const Identity& caller, bool broker,
                           bool auditor, const BrokerLimits& limits, std::string_view method, std::string_view path,
                           std::string_view raw_query, std::string_view body);

// Shared by the credential APIs: a refusal as a Status body; a string
// field of a JSON object ("" when absent or not a string).
TaskApiResponse ApiFailure(const Error& e);
std::string StringField(const nlohmann::json& j, const char* key);

}  // namespace kubegate
