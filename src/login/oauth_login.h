// `kubegate login`: a kubectl credential plugin
// (client.authentication.k8s.io/v1 ExecCredential) that signs a person in
// at their OpenID provider and hands kubectl the ID token that kubegate
// verifies (identity/oidc.h).
//
// Order: a cached ID token with more than kRefreshSlack left -> the cached
// refresh token (grant_type=refresh_token) -> an interactive sign-in: the
// OAuth 2.0 device authorization grant (RFC 8628; the URL and code are
// printed on stderr, which kubectl shows) or the authorization code grant
// with PKCE (RFC 7636) and a loopback redirect (RFC 8252). Tokens are kept
// in an owner-only file per issuer and client. The ExecCredential carries
// expirationTimestamp = the ID token's exp, so kubectl asks again in time.
//
// Plain C++: HTTP, the loopback listener, the clock and waiting are behind
// interfaces (net/ has the real ones; tests give scripted answers).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <ostream>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/result.h"

namespace kubegate {

struct LoginOptions {
  std::string issuer;
  std::string client_id;
  std::string ca_file;  // PEM roots for the provider's TLS; empty: the system's
  std::vector<std::string> scopes = {"openid", "email", "groups", "offline_access"};
  std::string flow = "device";  // "device" or "code"
  std::string cache_dir;        // default ~/.kube/cache/kubegate
};

struct HttpAnswer {
  int status = 0;
  std::string body;
};

class LoginHttp {
 public:
  virtual ~LoginHttp() = default;
  virtual Result<HttpAnswer> Get(const std::string& url) = 0;
  // POST application/x-www-form-urlencoded.
  virtual Result<HttpAnswer> PostForm(const std::string& url,
                                      const std::vector<std::pair<std::string, std::string>>& fields) = 0;
};

// The loopback redirect of the code flow: Start binds 127.0.0.1 on a free
// port and returns the redirect URI; Wait returns the query parameters of
// the first request to it (or an error after `timeout_s`).
class RedirectReceiver {
 public:
  virtual ~RedirectReceiver() = default;
  virtual Result<std::string> Start() = 0;
  virtual Result<std::map<std::string, std::string>> Wait(int timeout_s) = 0;
};

struct LoginEnvironment {
  LoginHttp& http;
  const Clock& clock;
  std::function<void(std::int64_t ms)> sleep;  // between device-flow polls
  std::ostream& err;                           // what the person reads
  RedirectReceiver* receiver = nullptr;        // the code flow only
  std::function<std::string(std::size_t bytes)> random;  // base64url of random bytes (state, PKCE verifier)
};

struct TokenSet {
  std::string id_token;
  std::string refresh_token;
};

// The ExecCredential JSON for `id_token` (expirationTimestamp from its exp).
std::string ExecCredentialJson(const std::string& id_token);
// The unverified exp (seconds) of a JWT, 0 when there is none.
std::int64_t UnverifiedExpiry(const std::string& id_token);
// Where the tokens of this issuer and client are kept.
std::string TokenCachePath(const LoginOptions& o);
Result<TokenSet> LoadTokenCache(const std::string& path);
Result<bool> SaveTokenCache(const std::string& path, const TokenSet& t);  // mode 0600, written whole then renamed
// application/x-www-form-urlencoded.
std::string FormEncode(const std::vector<std::pair<std::string, std::string>>& fields);

// Signs in (or reuses the cache) and returns the ExecCredential JSON.
Result<std::string> Login(const LoginOptions& o, LoginEnvironment& env);

}  // namespace kubegate
