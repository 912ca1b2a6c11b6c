// The callers kubegate knows, as its configuration file states them
// (tokens:, client_certs:; docs/configuration.md). The authenticator reads
// these; config/config.h loads them.
#pragma once

#include <string>
#include <vector>

#include "identity/identity.h"

namespace kubegate {

struct TokenEntry {
  std::string user;
  std::vector<std::string> groups;
  IdentityKind kind = IdentityKind::kHuman;
  std::string token_sha256;  // lower-case hex
  bool may_impersonate = false;
};

struct ClientCertConfig {
  std::string ca_file;  // empty: client certificates are not accepted
  std::vector<std::string> agent_users;
  std::vector<std::string> may_impersonate;
};

}  // namespace kubegate
