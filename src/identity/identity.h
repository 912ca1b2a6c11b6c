// Identity: who acts. Every caller, person or agent, has its own.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kubegate {

enum class IdentityKind { kHuman, kAgent };

// How a caller proved who it is. kOidc: an ID token of a configured issuer
// (Identity::auth_source names it); kServiceAccount: a ServiceAccount token
// the API server reviewed; kTaskToken: a per-task token kubegate issued
// (credentials/credential_store.h).
enum class AuthMethod { kBearerToken, kClientCertificate, kOidc, kServiceAccount, kTaskToken };

struct Identity {
  std::string user;
  std::vector<std::string> groups;
  IdentityKind kind = IdentityKind::kHuman;
  AuthMethod method = AuthMethod::kBearerToken;
  bool may_impersonate = false;  // config allows this caller's own --as
  std::string auth_source;       // kOidc: the issuer URL; empty otherwise
  // kTaskToken: the task the token was issued for, the credential's id and
  // when it ends (streams opened under it close then, or at revocation).
  std::string task;
  std::string credential_id;
  std::int64_t credential_expires_ms = 0;
};

std::optional<IdentityKind> ParseIdentityKind(std::string_view s);
const char* IdentityKindName(IdentityKind k);
const char* AuthMethodName(AuthMethod m);

}  // namespace kubegate
