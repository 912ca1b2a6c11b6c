// Authenticator: turns a request's credentials into an Identity. Static
// bearer tokens are kept only as SHA-256 hashes; client certificates are
// verified by the TLS layer against the configured CA, and their subject's
// CN names the user and O entries the groups.
//
//   Authenticator auth(config.tokens, config.client_certs);
//   auto id = auth.Authenticate({.authorization = "Bearer abc"});
//   if (!id) return id.error();   // 401 Status
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/digest.h"
#include "common/result.h"
#include "identity/credentials_config.h"
#include "identity/identity.h"

namespace kubegate {

// The subject of a client certificate that the TLS handshake verified.
struct PeerCertificate {
  std::string common_name;
  std::vector<std::string> organizations;
};

struct Credentials {
  std::optional<std::string_view> authorization = std::nullopt;  // the Authorization header
  std::optional<PeerCertificate> peer = std::nullopt;             // only when verified
  bool untrusted_peer = false;  // a certificate was presented and did not verify
};

class Authenticator {
 public:
  Authenticator(const std::vector<TokenEntry>& tokens, const ClientCertConfig& certs);

  // A bearer token, when present, must be valid (a bad token is 401 even
  // with a good certificate); otherwise the verified client certificate.
  Result<Identity> Authenticate(const Credentials& creds) const;

 private:
  std::unordered_map<std::string, Identity> by_token_hash_;
  ClientCertConfig certs_;
};

}  // namespace kubegate
