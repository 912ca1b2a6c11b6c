#include "identity/oidc.h"

#include <algorithm>
#include <chrono>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "common/limits.h"
#include "common/thread_name.h"

namespace kubegate {

namespace {

using json = nlohmann::json;

constexpr std::int64_t Ms(auto d) { return std::chrono::duration_cast<std::chrono::milliseconds>(d).count(); }

Error Refuse(std::string& reason, const char* why, const std::string& message) {
  reason = why;
  return Error::Unauthorized(message);
}

// A NumericDate claim (seconds; JSON number), if present and valid.
std::optional<std::int64_t> NumericDate(const json& claims, const char* name, bool& malformed) {
  auto it = claims.find(name);
  if (it == claims.end()) return std::nullopt;
  if (!it->is_number()) {
    malformed = true;
    return std::nullopt;
  }
  double v = it->get<double>();
  if (!(v > -1e15 && v < 1e15)) {
    malformed = true;
    return std::nullopt;
  }
  return static_cast<std::int64_t>(v);
}

}  // namespace

Result<Identity> IdentityFromClaims(const OidcIssuerConfig& c, const Jwt& jwt, std::int64_t now_s,
                                    std::string& reason) {
  const json& claims = *jwt.claims;
  auto str = [&](const char* name) -> std::optional<std::string> {
    auto it = claims.find(name);
    if (it == claims.end() || !it->is_string()) return std::nullopt;
    return it->get<std::string>();
  };
  if (str("iss") != c.issuer) return Refuse(reason, "wrong_issuer", "token is not from this issuer");
  // aud: a string or a list of strings; one of them must be ours.
  std::vector<std::string> aud;
  if (auto it = claims.find("aud"); it != claims.end()) {
    if (it->is_string()) aud.push_back(it->get<std::string>());
    if (it->is_array()) {
      for (const json& a : *it) {
        if (a.is_string()) aud.push_back(a.get<std::string>());
      }
    }
  }
  bool for_us = std::any_of(aud.begin(), aud.end(), [&](const std::string& a) {
    return std::find(c.audiences.begin(), c.audiences.end(), a) != c.audiences.end();
  });
  if (!for_us) return Refuse(reason, "wrong_audience", "token was not issued for kubegate (audience)");
  const std::int64_t skew = std::chrono::seconds(limits::kJwtClockSkew).count();
  bool malformed = false;
  auto exp = NumericDate(claims, "exp", malformed);
  auto nbf = NumericDate(claims, "nbf", malformed);
  auto iat = NumericDate(claims, "iat", malformed);
  if (malformed) return Refuse(reason, "malformed", "token has a malformed exp, nbf or iat claim");
  if (!exp) return Refuse(reason, "malformed", "token has no exp claim");
  if (now_s > *exp + skew) return Refuse(reason, "expired", "token has expired");
  if (nbf && now_s + skew < *nbf) return Refuse(reason, "not_yet_valid", "token is not valid yet (nbf)");
  if (iat && now_s + skew < *iat) return Refuse(reason, "not_yet_valid", "token was issued in the future (iat)");

  auto username = str(c.username_claim.c_str());
  if (!username || username->empty()) {
    return Refuse(reason, "missing_claim", "token has no string claim \"" + c.username_claim + "\" for the username");
  }
  if (c.username_claim == "email") {
    // As kube-apiserver: when email_verified is present it must be true.
    if (auto it = claims.find("email_verified"); it != claims.end()) {
      if (!it->is_boolean()) return Refuse(reason, "malformed", "token's email_verified claim is not a boolean");
      if (!it->get<bool>()) return Refuse(reason, "email_not_verified", "token's email is not verified");
    }
  }
  Identity id;
  id.user = c.username_prefix + *username;
  id.kind = c.kind;
  id.method = AuthMethod::kOidc;
  id.auth_source = c.issuer;
  if (!c.groups_claim.empty()) {
    if (auto it = claims.find(c.groups_claim); it != claims.end()) {
      // A string or a list of strings (kubernetes/kubernetes#33290).
      if (it->is_string()) {
        id.groups.push_back(c.groups_prefix + it->get<std::string>());
      } else if (it->is_array() && std::all_of(it->begin(), it->end(), [](const json& g) { return g.is_string(); })) {
        for (const json& g : *it) id.groups.push_back(c.groups_prefix + g.get<std::string>());
      } else {
        return Refuse(reason, "malformed", "token's \"" + c.groups_claim + "\" claim is not a string or a list of strings");
      }
    }
  }
  for (const auto& [claim, want] : c.required_claims) {
    auto have = str(claim.c_str());
    if (!have || *have != want) {
      return Refuse(reason, "required_claim", "token's claim \"" + claim + "\" does not have the required value");
    }
  }
  return id;
}

std::shared_ptr<const JsonWebKeySet> OidcIssuer::Keys(std::int64_t now_ms) const {
  std::lock_guard<std::mutex> lock(mu_);
  if (!keys_ || now_ms - fetched_ms_ > Ms(limits::kOidcKeyMaxAge)) return nullptr;
  return keys_;
}

Result<bool> OidcIssuer::Refresh(HttpsGetter& getter, std::int64_t now_ms) {
  std::string base = config_.issuer;
  while (!base.empty() && base.back() == '/') base.pop_back();
  std::string discovery_url =
      config_.discovery_url.empty() ? base + "/.well-known/openid-configuration" : config_.discovery_url;
  auto discovery = getter.Get(discovery_url, config_.ca_file);
  if (!discovery) return discovery.error();
  json doc = json::parse(*discovery, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) return Error::BadGateway("discovery document is not a JSON object");
  auto member = [&](const char* name) {
    auto it = doc.find(name);
    return it != doc.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  // OpenID Connect Discovery 1.0 §4.3: the document's issuer is the URL
  // it was asked for; anything else is another provider's document.
  if (member("issuer") != config_.issuer) {
    return Error::BadGateway("discovery document names issuer \"" + member("issuer") + "\", not \"" +
                             config_.issuer + "\"");
  }
  std::string jwks_uri = member("jwks_uri");
  if (jwks_uri.rfind("https://", 0) != 0) return Error::BadGateway("discovery document has no https jwks_uri");
  auto jwks = getter.Get(jwks_uri, config_.ca_file);
  if (!jwks) return jwks.error();
  auto keys = ParseJwks(*jwks);
  if (!keys) return keys.error();
  std::lock_guard<std::mutex> lock(mu_);
  keys_ = std::make_shared<const JsonWebKeySet>(std::move(*keys));
  fetched_ms_ = now_ms;
  return true;
}

OidcAuthenticator::OidcAuthenticator(const std::vector<OidcIssuerConfig>& issuers,
                                     std::shared_ptr<HttpsGetter> getter, const Clock& clock)
    : getter_(std::move(getter)), clock_(clock) {
  for (const OidcIssuerConfig& c : issuers) issuers_.push_back(std::make_unique<OidcIssuer>(c));
}

OidcAuthenticator::~OidcAuthenticator() { Stop(); }

void OidcAuthenticator::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  for (const auto& i : issuers_) {
    std::lock_guard<std::mutex> il(i->mu_);
    i->waiting_.clear();
    i->forced_ = false;
  }
}

void OidcAuthenticator::Start() {
  if (issuers_.empty() || thread_.joinable()) return;
  thread_ = std::thread([this] {
    NameThisThread("kg-oidc-keys");
    Run();
  });
}

OidcIssuer* OidcAuthenticator::FindIssuer(const std::string& url) const {
  for (const auto& i : issuers_) {
    if (i->config().issuer == url) return i.get();
  }
  return nullptr;
}

OidcAnswer OidcAuthenticator::Verify(std::string_view token, bool allow_refresh) const {
  OidcAnswer a;
  if (issuers_.empty() || !LooksLikeJwt(token)) return a;
  // The token is ours when its (still untrusted) "iss" is one of our
  // issuers; from there on, any fault refuses it.
  // A token that parses names its issuer in its claims; one that does not
  // is read once more for "iss" alone, to refuse it with its reason.
  auto jwt = ParseJwt(token);
  std::optional<std::string> iss;
  if (jwt) {
    auto it = jwt->claims->find("iss");
    if (it != jwt->claims->end() && it->is_string()) iss = it->get<std::string>();
  } else {
    iss = UntrustedIssuer(token);
  }
  if (!iss) return a;
  OidcIssuer* issuer = FindIssuer(*iss);
  if (!issuer) return a;
  auto refuse = [&](Error e, std::string reason) {
    a.kind = OidcAnswer::Kind::kRefused;
    a.error = std::move(e);
    a.reason = std::move(reason);
    return a;
  };
  if (!jwt) return refuse(jwt.error(), jwt.error().message.find("algorithm") != std::string::npos ? "algorithm" : "malformed");
  const std::int64_t now = clock_.NowMillis();
  auto keys = issuer->Keys(now);
  if (!keys && allow_refresh) {
    // Not fetched yet (kubegate just started) or too old: one refresh first.
    a.kind = OidcAnswer::Kind::kRefreshFirst;
    a.issuer = issuer;
    return a;
  }
  if (!keys) {
    return refuse(Error::Unavailable("kubegate has no current signing keys of issuer " + issuer->config().issuer +
                                     " (it could not be reached); try again later"),
                  "no_keys");
  }
  const JsonWebKey* key = keys->Find(jwt->kid, jwt->alg);
  if (!key) {
    if (allow_refresh) {
      a.kind = OidcAnswer::Kind::kRefreshFirst;
      a.issuer = issuer;
      return a;
    }
    return refuse(Error::Unauthorized("invalid token: signed with a key the issuer does not publish"), "unknown_key");
  }
  if (!VerifyJwtSignature(*key, *jwt)) return refuse(Error::Unauthorized("invalid token: bad signature"), "bad_signature");
  std::string reason;
  auto who = IdentityFromClaims(issuer->config(), *jwt, now / 1000, reason);
  if (!who) return refuse(who.error(), reason);
  a.kind = OidcAnswer::Kind::kIdentity;
  a.who = std::move(*who);
  return a;
}

bool OidcAuthenticator::RefreshThen(OidcIssuer& issuer, std::function<void()> done) {
  const std::int64_t now = clock_.NowMillis();
  {
    std::lock_guard<std::mutex> lock(issuer.mu_);
    if (!issuer.forced_ && now - issuer.last_forced_ms_ < issuer.config_.unknown_kid_refresh_ms) return false;
    if (!issuer.forced_) issuer.last_forced_ms_ = now;
    issuer.forced_ = true;
    issuer.waiting_.push_back(std::move(done));
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_ || !thread_.joinable()) {
      // No refresher thread (not started, or stopping): refuse rather than wait.
      std::lock_guard<std::mutex> il(issuer.mu_);
      issuer.waiting_.pop_back();
      issuer.forced_ = !issuer.waiting_.empty();
      return false;
    }
  }
  cv_.notify_all();
  return true;
}

void OidcAuthenticator::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    const std::int64_t now = clock_.NowMillis();
    std::int64_t next = now + Ms(limits::kOidcKeyRefresh);
    for (const auto& i : issuers_) {
      bool due;
      {
        std::lock_guard<std::mutex> il(i->mu_);
        due = i->forced_ || now >= i->next_refresh_ms_;
      }
      if (due) {
        lock.unlock();
        auto r = i->Refresh(*getter_, now);
        std::vector<std::function<void()>> waiting;
        {
          std::lock_guard<std::mutex> il(i->mu_);
          i->next_refresh_ms_ = now + (r ? Ms(limits::kOidcKeyRefresh) : Ms(limits::kOidcKeyRetry));
          i->forced_ = false;
          waiting.swap(i->waiting_);
        }
        if (!r) spdlog::warn("oidc: cannot refresh the signing keys of {}: {}", i->config().issuer, r.error().message);
        for (auto& w : waiting) w();
        lock.lock();
        if (stop_) return;
      }
      std::lock_guard<std::mutex> il(i->mu_);
      next = std::min(next, i->next_refresh_ms_);
    }
    cv_.wait_for(lock, std::chrono::milliseconds(std::max<std::int64_t>(next - clock_.NowMillis(), 1)), [&] {
      if (stop_) return true;
      return std::any_of(issuers_.begin(), issuers_.end(), [](const auto& i) {
        std::lock_guard<std::mutex> il(i->mu_);
        return i->forced_;
      });
    });
  }
}

}  // namespace kubegate
