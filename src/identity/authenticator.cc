#include "identity/authenticator.h"

#include <algorithm>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "common/limits.h"
#include "common/clock.h"
#include "identity/oidc.h"
#include "identity/service_account_auth.h"

namespace kubegate {

std::optional<IdentityKind> ParseIdentityKind(std::string_view s) {
  if (s == "human") return IdentityKind::kHuman;
  if (s == "agent") return IdentityKind::kAgent;
  return std::nullopt;
}

const char* IdentityKindName(IdentityKind k) { return k == IdentityKind::kAgent ? "agent" : "human"; }

const char* AuthMethodName(AuthMethod m) {
  switch (m) {
    case AuthMethod::kClientCertificate:
      return "client-certificate";
    case AuthMethod::kOidc:
      return "oidc";
    case AuthMethod::kServiceAccount:
      return "serviceaccount";
    case AuthMethod::kTaskToken:
      return "task-token";
    case AuthMethod::kBearerToken:
      break;
  }
  return "bearer-token";
}

Authenticator::Authenticator(const std::vector<TokenEntry>& tokens, const ClientCertConfig& certs) : certs_(certs) {
  for (const TokenEntry& t : tokens) {
    Identity id;
    id.user = t.user;
    id.groups = t.groups;
    id.kind = t.kind;
    id.method = AuthMethod::kBearerToken;
    id.may_impersonate = t.may_impersonate;
    by_token_hash_[t.token_sha256] = std::move(id);
  }
}

Result<Identity> Authenticator::Authenticate(const Credentials& creds, AuthNote* note, bool allow_refresh) const {
  AuthNote ignored;
  if (!note) note = &ignored;
  auto who = Identify(creds, note, allow_refresh);
  if (!who) return who;
  return Admit(std::move(*who), note);
}

Result<Identity> Authenticator::Admit(Identity who, AuthNote* note) const {
  if (runtime_) {
    if (auto why = runtime_->Disabled(who.user)) {
      if (note) note->reason = "disabled";
      return Error::Unauthorized("kubegate: user \"" + who.user + "\" is disabled (" + *why + ")");
    }
  }
  return who;
}

Result<Identity> Authenticator::Identify(const Credentials& creds, AuthNote* note, bool allow_refresh) const {
  auto refuse = [&](const char* reason, Error e) {
    note->reason = reason;
    return e;
  };
  if (creds.authorization) {
    std::string_view v = *creds.authorization;
    constexpr std::string_view kBearer = "Bearer ";
    if (v.size() <= kBearer.size() || !std::equal(kBearer.begin(), kBearer.end(), v.begin(), [](char a, char b) {
          return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
        })) {
      return refuse("not_bearer", Error::Unauthorized("kubegate accepts only bearer tokens in the Authorization header"));
    }
    std::string_view token = v.substr(kBearer.size());
    while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
    // The lookup key is a hash, so comparing it does not leak the token.
    const std::string hash = Sha256Hex(token);
    auto it = by_token_hash_.find(hash);
    if (it != by_token_hash_.end()) return it->second;
    if (runtime_) {
      if (auto who = runtime_->Lookup(hash, clock_->NowMillis())) return std::move(*who);
    }
    if (token.size() > limits::kMaxJwtBytes) {
      return refuse("oversized", Error::Unauthorized("invalid bearer token: longer than " +
                                                     std::to_string(limits::kMaxJwtBytes) + " bytes"));
    }
    if (oidc_) {
      OidcAnswer a = oidc_->Verify(token, allow_refresh);
      switch (a.kind) {
        case OidcAnswer::Kind::kIdentity:
          return std::move(*a.who);
        case OidcAnswer::Kind::kRefused:
          note->reason = a.reason;
          return a.error;
        case OidcAnswer::Kind::kRefreshFirst:
          note->refresh_first = a.issuer;
          return refuse("unknown_key", Error::Unauthorized("invalid token: signed with a key the issuer does not publish"));
        case OidcAnswer::Kind::kNotOurs:
          break;
      }
    }
    if (sa_) {
      // The cache holds reviewed ServiceAccount tokens only: looked up by
      // the hash already made, before the token is parsed as a JWT.
      if (auto who = sa_->Cached(hash, clock_->NowMillis())) return std::move(*who);
    }
    if (sa_ && sa_->Candidate(token)) {
      note->token_to_review = token;
      return refuse("token_review", Error::Unauthorized("ServiceAccount token not reviewed yet"));
    }
    return refuse("unknown_token", Error::Unauthorized("invalid bearer token"));
  }
  if (creds.peer) {
    if (creds.peer->common_name.empty()) {
      return refuse("certificate_without_name", Error::Unauthorized("client certificate has no common name"));
    }
    Identity id;
    id.user = creds.peer->common_name;
    id.groups = creds.peer->organizations;
    id.method = AuthMethod::kClientCertificate;
    auto contains = [&](const std::vector<std::string>& v) { return std::find(v.begin(), v.end(), id.user) != v.end(); };
    id.kind = contains(certs_.agent_users) ? IdentityKind::kAgent : IdentityKind::kHuman;
    id.may_impersonate = contains(certs_.may_impersonate);
    return id;
  }
  if (creds.untrusted_peer) {
    return refuse("untrusted_certificate",
                  Error::Unauthorized("client certificate is not signed by kubegate's client CA"));
  }
  return refuse("no_credentials",
                Error::Unauthorized("no credentials: present a kubegate bearer token or client certificate"));
}

}  // namespace kubegate
