#include "credentials/credential_api.h"

#include "common/k8s_status.h"
#include "policy/policy.h"

namespace kubegate {

namespace {

using json = nlohmann::json;

TaskApiResponse Fail(const Error& e) { return ApiFailure(e); }
std::string Field(const json& j, const char* k) { return StringField(j, k); }

// Who a broker's task token acts as: a registered agent with its groups,
// or a name the config's globs allow with brokers.agent_groups.
Result<bool> ResolveAgent(IdentityStore* ids, const BrokerLimits& limits, NewCredential& c) {
  if (ids) {
    auto found = ids->Get(c.agent);
    if (!found) return found.error();
    if (*found && (*found)->disabled_ms) return Error::Forbidden("agent \"" + c.agent + "\" is disabled");
    if (*found && (*found)->registered) {
      if ((*found)->kind != IdentityKind::kAgent) {
        return Error::Forbidden("\"" + c.agent + "\" is registered as a person; task tokens are for agents");
      }
      c.groups = (*found)->groups;
      return true;
    }
  }
  bool allowed = false;
  for (const std::string& g : limits.agents) allowed = allowed || GlobMatch(g, c.agent);
  if (!allowed) {
    return Error::Forbidden("agent \"" + c.agent + "\" is not one brokers may issue tokens for "
                            "(register it with `kubegate identity create`, or config: brokers.agents)");
  }
  c.groups = limits.agent_groups;
  return true;
}

}  // namespace

TaskApiResponse ApiFailure(const Error& e) { return {e.http_code, StatusJson(e), nullptr}; }

std::string StringField(const json& j, const char* k) {
  auto it = j.find(k);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

bool IsTaskApiPath(std::string_view path) {
  return path == kTaskApiPrefix || path.substr(0, kTaskApiPrefix.size() + 1) == std::string(kTaskApiPrefix) + "/";
}

TaskApiResponse RunTaskApi(CredentialStore& store, IdentityStore* ids, const Identity& caller, bool broker,
                           bool auditor, const BrokerLimits& limits, std::string_view method, std::string_view path,
                           std::string_view raw_query, std::string_view body) {
  std::string_view rest = path.substr(kTaskApiPrefix.size());
  const bool is_get = method == "GET";
  // A task token brokers nothing: an agent does not hand out access.
  if (caller.method == AuthMethod::kTaskToken) broker = false;
  if (!broker && !(auditor && is_get)) {
    return Fail(Error::Forbidden("user \"" + caller.user + "\" may not broker task tokens (config: brokers.users / "
                                 "brokers.groups)"));
  }
  if (rest == "/tokens" && is_get) {
    auto list = store.List(raw_query.find("all=true") != std::string_view::npos);
    if (!list) return Fail(list.error());
    json items = json::array();
    for (const CredentialInfo& c : *list) items.push_back(c.ToJson());
    return {200, json{{"items", items}}.dump(), nullptr};
  }
  if (method != "POST") return Fail(Error{405, "MethodNotAllowed", "use POST to issue or revoke task tokens"});
  json in = body.empty() ? json::object() : json::parse(body, nullptr, false);
  if (!in.is_object()) return Fail(Error::BadRequest("the body must be a JSON object"));
  if (rest == "/tokens") {
    NewCredential c;
    c.agent = Field(in, "agent");
    c.task = Field(in, "task");
    c.reason = Field(in, "reason");
    c.by = caller.user;
    if (in.contains("groups")) {
      return Fail(Error::BadRequest("groups are not chosen per token: a task token's groups are the registered "
                                    "agent's, or brokers.agent_groups"));
    }
    if (auto resolved = ResolveAgent(ids, limits, c); !resolved) return Fail(resolved.error());
    auto ttl = ParseDurationMillis(Field(in, "ttl").empty() ? "1h" : Field(in, "ttl"));
    if (!ttl) return Fail(Error::BadRequest("ttl: " + ttl.error().message));
    c.ttl_ms = *ttl;
    auto issued = store.Issue(c);
    if (!issued) return Fail(issued.error());
    json cred = issued->info.ToJson();
    return {201, json{{"token", issued->token}, {"credential", cred}}.dump(),
            json{{"action", "issue-task-token"}, {"credential", cred}}};
  }
  constexpr std::string_view kRevoke = "/revoke";
  if (rest.size() > kRevoke.size() && rest.substr(rest.size() - kRevoke.size()) == kRevoke) {
    std::string_view what = rest.substr(1, rest.size() - kRevoke.size() - 1);
    Result<int> n = Error::BadRequest("");
    json change = {{"reason", Field(in, "reason")}};
    if (what.rfind("tokens/", 0) == 0) {
      std::string id(what.substr(7));
      n = store.Revoke(id, caller.user);
      change["action"] = "revoke-task-token";
      change["credential_id"] = id;
    } else if (!what.empty() && what.find('/') == std::string_view::npos) {
      std::string task(what);
      n = store.RevokeTask(task, caller.user);
      change["action"] = "revoke-task";
      change["task"] = task;
    } else {
      return Fail(Error{404, "NotFound", "no such task API path"});
    }
    if (!n) return Fail(n.error());
    change["revoked"] = *n;
    return {200, json{{"revoked", *n}}.dump(), change};
  }
  return Fail(Error{404, "NotFound", "no such task API path"});
}

}  // namespace kubegate
