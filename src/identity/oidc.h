// People through their identity provider: kubegate verifies OIDC ID tokens
// itself, with the meaning of kube-apiserver's --oidc-* flags
// (staging/src/k8s.io/apiserver/plugin/pkg/authenticator/token/oidc/oidc.go;
// the username-prefix default is pkg/kubeapiserver/options/authentication.go).
// Several issuers may be configured; a token goes to the one whose URL is
// its "iss" exactly.
//
// Keys: each issuer's discovery document and JWKS are fetched at start and
// every kOidcKeyRefresh on the issuers' own thread; a token whose kid is
// unknown asks for one refresh (at most every kOidcUnknownKidRefresh per
// issuer) and is checked again after it. When the issuer cannot be reached,
// the keys already fetched keep working up to kOidcKeyMaxAge; nothing is
// ever accepted unverified.
//
//   OidcAuthenticator oidc(config.oidc, fetcher, clock);
//   oidc.Start();
//   OidcAnswer a = oidc.Verify(token);
//   if (a.refresh) { a.refresh->RefreshNow(done); ... Verify again }
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "common/clock.h"
#include "common/result.h"
#include "identity/credentials_config.h"
#include "identity/identity.h"
#include "identity/jwt.h"

namespace kubegate {

// Fetches a URL over HTTPS, verifying the server against `ca_file` (empty:
// the system roots). net/ provides the real one; tests give documents.
class HttpsGetter {
 public:
  virtual ~HttpsGetter() = default;
  // The body of a 200 answer (at most limits::kMaxJwksBytes), else an error.
  virtual Result<std::string> Get(const std::string& url, const std::string& ca_file) = 0;
};

// The claims check of one verified-signature token, kube-apiserver's way.
// `reason` gets a short label for the failure counter. Pure: no keys.
Result<Identity> IdentityFromClaims(const OidcIssuerConfig& c, const Jwt& jwt, std::int64_t now_s,
                                    std::string& reason);

class OidcIssuer {
 public:
  explicit OidcIssuer(OidcIssuerConfig c) : config_(std::move(c)) {}
  const OidcIssuerConfig& config() const { return config_; }

  // The keys in force, or null (never fetched, or older than kOidcKeyMaxAge).
  std::shared_ptr<const JsonWebKeySet> Keys(std::int64_t now_ms) const;
  // Discovery then JWKS; on success the keys replace the old set.
  Result<bool> Refresh(HttpsGetter& getter, std::int64_t now_ms);

 private:
  friend class OidcAuthenticator;
  const OidcIssuerConfig config_;
  mutable std::mutex mu_;
  std::shared_ptr<const JsonWebKeySet> keys_;
  std::int64_t fetched_ms_ = 0;        // last successful refresh
  std::int64_t next_refresh_ms_ = 0;   // the refresher thread's schedule
  std::int64_t last_forced_ms_ = INT64_MIN / 2;  // last unknown-kid refresh
  std::vector<std::function<void()>> waiting_;    // run after the next attempt
  bool forced_ = false;
};

// What Verify says of a token.
struct OidcAnswer {
  enum class Kind { kNotOurs, kIdentity, kRefused, kRefreshFirst };
  Kind kind = Kind::kNotOurs;
  std::optional<Identity> who;
  Error error;
  std::string reason;            // counter label when refused
  OidcIssuer* issuer = nullptr;  // kRefreshFirst: call RefreshThen on it
};

class OidcAuthenticator {
 public:
  OidcAuthenticator(const std::vector<OidcIssuerConfig>& issuers, std::shared_ptr<HttpsGetter> getter,
                    const Clock& clock);
  ~OidcAuthenticator();
  OidcAuthenticator(const OidcAuthenticator&) = delete;
  OidcAuthenticator& operator=(const OidcAuthenticator&) = delete;

  // Starts the refresher thread (fetches every issuer's keys at once).
  void Start();
  // Joins the thread; refreshes still asked for are dropped, their `done`
  // never called (the destructor does this too).
  void Stop();
  bool empty() const { return issuers_.empty(); }
  // The configured issuer with this URL, or null.
  OidcIssuer* FindIssuer(const std::string& url) const;

  // kNotOurs when the token is not a JWT or its "iss" is no configured
  // issuer. `allow_refresh` false: an unknown kid is refused, not retried.
  OidcAnswer Verify(std::string_view token, bool allow_refresh = true) const;

  // Asks the refresher thread for an unknown-kid refresh of `issuer` and
  // calls `done` (on that thread) after the attempt. False, and `done` is
  // not called, when the issuer was refreshed that way within
  // kOidcUnknownKidRefresh.
  bool RefreshThen(OidcIssuer& issuer, std::function<void()> done);

 private:
  void Run();

  std::vector<std::unique_ptr<OidcIssuer>> issuers_;
  std::shared_ptr<HttpsGetter> getter_;
  const Clock& clock_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace kubegate
