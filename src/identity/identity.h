// Identity: who acts. Every caller, person or agent, has its own.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kubegate {

enum class IdentityKind { kHuman, kAgent };

// How a caller proved who it is. kOidc: an ID token of a configured issuer
// (Identity::auth_source names it); kServiceAccount: a ServiceAccount token
// the API server reviewed.
enum class AuthMethod { kBearerToken, kClientCertificate, kOidc, kServiceAccount };

struct Identity {
  std::string user;
  std::vector<std::string> groups;
  IdentityKind kind = IdentityKind::kHuman;
  AuthMethod method = AuthMethod::kBearerToken;
  bool may_impersonate = false;  // config allows this caller's own --as
  std::string auth_source;       // kOidc: the issuer URL; empty otherwise
};

std::optional<IdentityKind> ParseIdentityKind(std::string_view s);
const char* IdentityKindName(IdentityKind k);
const char* AuthMethodName(AuthMethod m);

}  // namespace kubegate
