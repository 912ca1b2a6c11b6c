#include "credentials/identity_store.h"

#include <algorithm>
#include <map>

#include <nlohmann/json.hpp>

#include "common/clock.h"
#include "credentials/column_values.h"
#include "credentials/credential_store.h"

namespace kubegate {

namespace {

using json = nlohmann::json;

constexpr std::size_t kMaxNameBytes = 253;
constexpr std::size_t kMaxGroups = 32;
constexpr std::size_t kMaxDescriptionBytes = 1024;

bool StartsWith(const std::string& s, std::string_view p) { return s.compare(0, p.size(), p) == 0; }

// Fill `by_name` from registry rows and from disabled rows.
void AddRegistered(const std::vector<SqlRow>& rows, std::map<std::string, ManagedIdentity>& by_name) {
  for (const SqlRow& r : rows) {
    ManagedIdentity& m = by_name[r[0].value_or("")];
    m.name = r[0].value_or("");
    m.registered = true;
    m.kind = ParseIdentityKind(r[1].value_or("")).value_or(IdentityKind::kAgent);
    m.groups = StringListColumn(r[2]);
    m.description = r[3].value_or("");
    m.created_by = r[4].value_or("");
    m.created_ms = SqlInt(r[5]);
  }
}

void AddDisabled(const std::vector<SqlRow>& rows, std::map<std::string, ManagedIdentity>& by_name) {
  for (const SqlRow& r : rows) {
    ManagedIdentity& m = by_name[r[0].value_or("")];
    m.name = r[0].value_or("");
    m.disabled_by = r[1].value_or("");
    m.disabled_ms = SqlInt(r[2]);
    m.disabled_reason = r[3].value_or("");
  }
}

constexpr const char* kRegistered =
    "SELECT name, kind, groups_json, description, created_by, created_ms FROM managed_identity";
constexpr const char* kDisabled = "SELECT name, disabled_by, disabled_ms, reason FROM identity_disabled";

Result<bool> CheckNew(const NewIdentity& n, const std::vector<std::string>& reserved) {
  if (!PrintableName(n.name, kMaxNameBytes)) {
    return Error::BadRequest("name: 1 to 253 printable characters, no spaces");
  }
  if (StartsWith(n.name, "system:")) return Error::BadRequest("name: \"system:\" names are the cluster's");
  if (n.name.find('#') != std::string::npos || n.name == "*") {
    return Error::BadRequest("name: \"#\" marks names from an OIDC issuer");
  }
  if (std::find(reserved.begin(), reserved.end(), n.name) != reserved.end()) {
    return Error{409, "AlreadyExists", "name: \"" + n.name + "\" is an identity of the config file"};
  }
  if (n.groups.size() > kMaxGroups) return Error::BadRequest("groups: at most 32");
  for (const std::string& g : n.groups) {
    if (!PrintableName(g, kMaxNameBytes)) return Error::BadRequest("groups: each 1 to 253 printable characters");
    if (StartsWith(g, "system:")) return Error::BadRequest("groups: \"system:\" groups are the cluster's");
  }
  if (n.description.size() > kMaxDescriptionBytes) return Error::BadRequest("description: at most 1024 characters");
  return true;
}

}  // namespace

json ManagedIdentity::ToJson() const {
  json j = {{"name", name}, {"registered", registered}, {"disabled", disabled_ms != 0}};
  if (registered) {
    j["kind"] = IdentityKindName(kind);
    j["groups"] = groups;
    j["description"] = description;
    j["created_by"] = created_by;
    j["created"] = FormatRfc3339Millis(created_ms);
  }
  if (disabled_ms) {
    j["disabled_at"] = FormatRfc3339Millis(disabled_ms);
    j["disabled_by"] = disabled_by;
    j["disabled_reason"] = disabled_reason;
  }
  return j;
}

Result<ManagedIdentity> IdentityStore::Create(const NewIdentity& n, const std::vector<std::string>& reserved) {
  if (auto checked = CheckNew(n, reserved); !checked) return checked.error();
  ManagedIdentity m;
  m.name = n.name;
  m.registered = true;
  m.kind = n.kind;
  m.groups = n.groups;
  m.description = n.description;
  m.created_by = n.by;
  m.created_ms = clock_.NowMillis();
  auto ok = db_.WithWriteTransaction([&]() -> Result<bool> {
    auto taken = db_.Run("SELECT name FROM managed_identity WHERE name = ?", {m.name});
    if (!taken) return taken.error();
    if (!taken->empty()) return Error{409, "AlreadyExists", "identity \"" + m.name + "\" exists"};
    auto r = db_.Run(
        "INSERT INTO managed_identity(name, kind, groups_json, description, created_by, created_ms) "
        "VALUES (?,?,?,?,?,?)",
        {m.name, std::string(IdentityKindName(m.kind)), json(m.groups).dump(), m.description, m.created_by,
         m.created_ms});
    if (!r) return r.error();
    return BumpCredentialVersion(db_);
  });
  if (!ok) return ok.error();
  return m;
}

Result<std::vector<ManagedIdentity>> IdentityStore::List() {
  std::map<std::string, ManagedIdentity> by_name;
  auto rows = db_.Run(kRegistered);
  if (!rows) return rows.error();
  AddRegistered(*rows, by_name);
  auto off = db_.Run(kDisabled);
  if (!off) return off.error();
  AddDisabled(*off, by_name);
  std::vector<ManagedIdentity> out;
  for (auto& [name, m] : by_name) out.push_back(std::move(m));
  return out;
}

Result<std::optional<ManagedIdentity>> IdentityStore::Get(const std::string& name) {
  std::map<std::string, ManagedIdentity> by_name;
  auto rows = db_.Run(std::string(kRegistered) + " WHERE name = ?", {name});
  if (!rows) return rows.error();
  AddRegistered(*rows, by_name);
  auto off = db_.Run(std::string(kDisabled) + " WHERE name = ?", {name});
  if (!off) return off.error();
  AddDisabled(*off, by_name);
  if (by_name.empty()) return std::optional<ManagedIdentity>();
  return std::optional<ManagedIdentity>(std::move(by_name.begin()->second));
}

Result<bool> IdentityStore::Disable(const std::string& name, const std::string& by, const std::string& reason) {
  if (!PrintableName(name, kMaxNameBytes)) return Error::BadRequest("name: 1 to 253 printable characters, no spaces");
  if (reason.size() > kMaxDescriptionBytes) return Error::BadRequest("reason: at most 1024 characters");
  bool changed = false;
  auto ok = db_.WithWriteTransaction([&]() -> Result<bool> {
    auto was = db_.Run("SELECT name FROM identity_disabled WHERE name = ?", {name});
    if (!was) return was.error();
    if (!was->empty()) return true;
    auto r = db_.Run("INSERT INTO identity_disabled(name, disabled_by, disabled_ms, reason) VALUES (?,?,?,?)",
                     {name, by, clock_.NowMillis(), reason});
    if (!r) return r.error();
    changed = true;
    return BumpCredentialVersion(db_);
  });
  if (!ok) return ok.error();
  return changed;
}

Result<bool> IdentityStore::Enable(const std::string& name) {
  bool changed = false;
  auto ok = db_.WithWriteTransaction([&]() -> Result<bool> {
    auto was = db_.Run("SELECT name FROM identity_disabled WHERE name = ?", {name});
    if (!was) return was.error();
    if (was->empty()) return true;
    auto r = db_.Run("DELETE FROM identity_disabled WHERE name = ?", {name});
    if (!r) return r.error();
    changed = true;
    return BumpCredentialVersion(db_);
  });
  if (!ok) return ok.error();
  return changed;
}

}  // namespace kubegate
