#include "credentials/identity_api.h"

#include <nlohmann/json.hpp>

#include "common/limits.h"
#include "policy/policy.h"

namespace kubegate {

namespace {

using json = nlohmann::json;

TaskApiResponse Fail(const Error& e) { return ApiFailure(e); }
std::string Field(const json& j, const char* k) { return StringField(j, k); }

TaskApiResponse Items(const json& items) { return {200, json{{"items", items}}.dump(), nullptr}; }

TaskApiResponse CreateIdentity(IdentityStore& ids, const Identity& caller, const IdentityApiRoles& roles,
                               const json& in) {
  NewIdentity n;
  n.name = Field(in, "name");
  std::string kind = Field(in, "kind").empty() ? "agent" : Field(in, "kind");
  auto k = ParseIdentityKind(kind);
  if (!k) return Fail(Error::BadRequest("kind: \"agent\" or \"human\""));
  n.kind = *k;
  if (in.contains("groups")) {
    if (!in["groups"].is_array()) return Fail(Error::BadRequest("groups: a list of group names"));
    for (const json& g : in["groups"]) {
      if (!g.is_string()) return Fail(Error::BadRequest("groups: a list of group names"));
      n.groups.push_back(g.get<std::string>());
    }
  }
  for (const std::string& g : n.groups) {
    bool allowed = false;
    for (const std::string& glob : roles.assignable_groups) allowed = allowed || GlobMatch(glob, g);
    if (!allowed) {
      return Fail(Error::Forbidden("group \"" + g + "\" may not be given to a registered identity "
                                   "(config: identity_admins.assignable_groups)"));
    }
  }
  n.description = Field(in, "description");
  n.by = caller.user;
  auto made = ids.Create(n, roles.reserved_names);
  if (!made) return Fail(made.error());
  json shown = made->ToJson();
  return {201, json{{"identity", shown}}.dump(), json{{"action", "create-identity"}, {"identity", shown}}};
}

TaskApiResponse IssueStaticToken(CredentialStore& creds, IdentityStore& ids, const Identity& caller,
                                 const json& in) {
  const std::string name = Field(in, "identity");
  auto found = ids.Get(name);
  if (!found) return Fail(found.error());
  if (!*found || !(*found)->registered) {
    return Fail(Error{404, "NotFound", "no registered identity \"" + name + "\" (kubegate identity create)"});
  }
  const ManagedIdentity& m = **found;
  if (m.disabled_ms) return Fail(Error::Forbidden("identity \"" + name + "\" is disabled"));
  NewCredential c;
  c.kind = CredentialKind::kStatic;
  c.agent = m.name;
  c.groups = m.groups;
  c.identity_kind = m.kind;
  c.reason = Field(in, "reason");
  c.by = caller.user;
  const std::string ttl_text = Field(in, "ttl");
  if (ttl_text.empty()) {
    c.ttl_ms = std::chrono::duration_cast<std::chrono::milliseconds>(limits::kDefaultStaticTokenTtl).count();
  } else {
    auto ttl = ParseDurationMillis(ttl_text);
    if (!ttl) return Fail(Error::BadRequest("ttl: " + ttl.error().message));
    c.ttl_ms = *ttl;
  }
  auto issued = creds.Issue(c);
  if (!issued) return Fail(issued.error());
  json cred = issued->info.ToJson();
  return {201, json{{"token", issued->token}, {"credential", cred}}.dump(),
          json{{"action", "issue-token"}, {"credential", cred}}};
}

TaskApiResponse SetDisabled(IdentityStore& ids, const Identity& caller, const json& in, bool disable) {
  const std::string name = Field(in, "name");
  const std::string reason = Field(in, "reason");
  if (name.empty()) return Fail(Error::BadRequest("name: required"));
  auto changed = disable ? ids.Disable(name, caller.user, reason) : ids.Enable(name);
  if (!changed) return Fail(changed.error());
  json change = {{"action", disable ? "disable-identity" : "enable-identity"},
                 {"name", name},
                 {"reason", reason},
                 {"changed", *changed}};
  return {200, json{{disable ? "disabled" : "enabled", *changed}}.dump(), change};
}

}  // namespace

bool IsIdentityApiPath(std::string_view path) {
  for (std::string_view prefix : {kIdentityApiPrefix, kTokenApiPrefix}) {
    if (path == prefix || (path.size() > prefix.size() && path.substr(0, prefix.size()) == prefix &&
                           path[prefix.size()] == '/')) {
      return true;
    }
  }
  return false;
}

TaskApiResponse RunIdentityApi(CredentialStore& creds, IdentityStore& ids, const Identity& caller,
                               const IdentityApiRoles& roles, std::string_view method, std::string_view path,
                               std::string_view raw_query, std::string_view body) {
  const bool is_get = method == "GET";
  // A task token manages nothing: an agent does not hand out access.
  const bool admin = roles.admin && caller.method != AuthMethod::kTaskToken;
  if (!admin && !(roles.auditor && is_get)) {
    return Fail(Error::Forbidden("user \"" + caller.user + "\" may not manage identities (config: "
                                 "identity_admins.users / identity_admins.groups)"));
  }
  const bool tokens = path.substr(0, kTokenApiPrefix.size()) == kTokenApiPrefix;
  std::string_view rest = path.substr(tokens ? kTokenApiPrefix.size() : kIdentityApiPrefix.size());
  if (is_get && rest.empty()) {
    json items = json::array();
    if (tokens) {
      auto list = creds.List(raw_query.find("all=true") != std::string_view::npos);
      if (!list) return Fail(list.error());
      for (const CredentialInfo& c : *list) items.push_back(c.ToJson());
    } else {
      auto list = ids.List();
      if (!list) return Fail(list.error());
      for (const ManagedIdentity& m : *list) items.push_back(m.ToJson());
    }
    return Items(items);
  }
  if (method != "POST") return Fail(Error{405, "MethodNotAllowed", "use POST to change identities and tokens"});
  json in = body.empty() ? json::object() : json::parse(body, nullptr, false);
  if (!in.is_object()) return Fail(Error::BadRequest("the body must be a JSON object"));
  if (!tokens) {
    if (rest.empty()) return CreateIdentity(ids, caller, roles, in);
    if (rest == "/disable") return SetDisabled(ids, caller, in, true);
    if (rest == "/enable") return SetDisabled(ids, caller, in, false);
    return Fail(Error{404, "NotFound", "no such identity API path"});
  }
  if (rest.empty()) return IssueStaticToken(creds, ids, caller, in);
  constexpr std::string_view kRevoke = "/revoke";
  if (rest.size() > kRevoke.size() + 1 && rest.substr(rest.size() - kRevoke.size()) == kRevoke) {
    std::string id(rest.substr(1, rest.size() - kRevoke.size() - 1));
    if (id.find('/') != std::string::npos) return Fail(Error{404, "NotFound", "no such token API path"});
    auto n = creds.Revoke(id, caller.user);
    if (!n) return Fail(n.error());
    json change = {{"action", "revoke-token"}, {"credential_id", id}, {"reason", Field(in, "reason")}, {"revoked", *n}};
    return {200, json{{"revoked", *n}}.dump(), change};
  }
  return Fail(Error{404, "NotFound", "no such token API path"});
}

}  // namespace kubegate
