// Fuzz target: the bodies and paths callers send to kubegate's own
// credential APIs (credentials/credential_api.h, credentials/identity_api.h),
// run against a real SQLite store. The first byte picks the call, the rest
// is the body. The caller is a broker, identity admin and auditor at once,
// so every path is reachable. Nothing may throw or crash, every answer is a
// status with a JSON body, and no change record may hold an issued token.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "credentials/credential_api.h"
#include "credentials/identity_api.h"

namespace {

using namespace kubegate;

struct Call {
  const char* method;
  const char* path;
  bool tasks;
};

constexpr Call kCalls[] = {
    {"POST", "/kubegate/v1/tasks/tokens", true},       {"GET", "/kubegate/v1/tasks/tokens", true},
    {"POST", "/kubegate/v1/tasks/T-1/revoke", true},   {"POST", "/kubegate/v1/tasks/tokens/cr-1/revoke", true},
    {"POST", "/kubegate/v1/identities", false},        {"GET", "/kubegate/v1/identities", false},
    {"POST", "/kubegate/v1/identities/disable", false}, {"POST", "/kubegate/v1/identities/enable", false},
    {"POST", "/kubegate/v1/tokens", false},            {"GET", "/kubegate/v1/tokens", false},
    {"POST", "/kubegate/v1/tokens/cr-1/revoke", false}, {"DELETE", "/kubegate/v1/identities", false},
};

struct Store {
  Store() {
    dir = std::filesystem::temp_directory_path() / ("kg-fuzz-credentials-" + std::to_string(getpid()));
    std::filesystem::create_directories(dir);
    StoreConfig c;
    c.sqlite_path = (dir / "kubegate.db").string();
    auto opened = CredentialStore::OpenDatabase(c);
    if (!opened) abort();
    db = std::move(*opened);
    creds = std::make_unique<CredentialStore>(*db, SystemClock());
    ids = std::make_unique<IdentityStore>(*db, SystemClock());
    (void)ids->Create({"fuzz-bot", IdentityKind::kAgent, {"agents"}, "", "admin"}, {});
  }
  ~Store() { std::filesystem::remove_all(dir); }
  std::filesystem::path dir;
  std::unique_ptr<Database> db;
  std::unique_ptr<CredentialStore> creds;
  std::unique_ptr<IdentityStore> ids;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static Store store;
  if (size == 0) return 0;
  const Call& call = kCalls[data[0] % (sizeof kCalls / sizeof kCalls[0])];
  std::string_view body(reinterpret_cast<const char*>(data + 1), size - 1);
  Identity caller;
  caller.user = "admin";
  TaskApiResponse r;
  if (call.tasks) {
    BrokerLimits limits{{"agent-*"}, {"agents"}};
    r = RunTaskApi(*store.creds, store.ids.get(), caller, true, true, limits, call.method, call.path, "", body);
  } else {
    IdentityApiRoles roles{true, true, {"agents", "team-*"}, {"alice"}};
    r = RunIdentityApi(*store.creds, *store.ids, caller, roles, call.method, call.path, "all=true", body);
  }
  if (r.status < 200 || r.status > 599) abort();
  auto answer = nlohmann::json::parse(r.body, nullptr, false);
  if (answer.is_discarded()) abort();
  if (answer.is_object() && answer.contains("token") && answer["token"].is_string() &&
      r.change.dump().find(answer["token"].get<std::string>()) != std::string::npos) {
    abort();  // a change record (an audit record) held the token
  }
  return 0;
}
