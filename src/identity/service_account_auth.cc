#include "identity/service_account_auth.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "common/digest.h"
#include "common/limits.h"
#include "identity/jwt.h"

namespace kubegate {

namespace {

using json = nlohmann::json;

// The unverified "sub" and "exp" of a JWT-shaped token.
struct Unverified {
  std::string sub;
  std::int64_t exp_s = 0;
};

std::optional<Unverified> Peek(std::string_view token) {
  if (token.size() > limits::kMaxJwtBytes || !LooksLikeJwt(token)) return std::nullopt;
  auto jwt = ParseJwt(token);
  if (!jwt) return std::nullopt;
  const json& c = *jwt->claims;
  Unverified u;
  if (auto it = c.find("sub"); it != c.end() && it->is_string()) u.sub = it->get<std::string>();
  if (auto it = c.find("exp"); it != c.end() && it->is_number()) u.exp_s = it->get<std::int64_t>();
  if (u.sub.rfind(kServiceAccountUserPrefix, 0) != 0) return std::nullopt;
  return u;
}

bool SegmentMatches(std::string_view pattern, std::string_view value) {
  if (pattern == "*") return true;
  if (!pattern.empty() && pattern.back() == '*') {
    pattern.remove_suffix(1);
    return value.substr(0, pattern.size()) == pattern;
  }
  return pattern == value;
}

}  // namespace

bool ServiceAccountAuthenticator::Matches(std::string_view pattern, std::string_view ns, std::string_view name) {
  std::size_t slash = pattern.find('/');
  if (slash == std::string_view::npos) return false;
  return SegmentMatches(pattern.substr(0, slash), ns) && SegmentMatches(pattern.substr(slash + 1), name);
}

bool ServiceAccountAuthenticator::Candidate(std::string_view token) const {
  return config_.enabled && Peek(token).has_value();
}

std::optional<Identity> ServiceAccountAuthenticator::Cached(const std::string& token_sha256,
                                                           std::int64_t now_ms) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = cache_.find(token_sha256);
  if (it == cache_.end() || now_ms >= it->second.expires_ms) return std::nullopt;
  return it->second.who;
}

std::string ServiceAccountAuthenticator::ReviewBody(std::string_view token) const {
  return json{{"apiVersion", "authentication.k8s.io/v1"},
              {"kind", "TokenReview"},
              {"spec", {{"token", std::string(token)}, {"audiences", config_.audiences}}}}
      .dump();
}

Result<Identity> ServiceAccountAuthenticator::FromReview(std::string_view token, int http_status, std::string_view body,
                                                         std::int64_t now_ms, std::string& reason) {
  auto unavailable = [&](const std::string& why) -> Error {
    reason = "token_review_failed";
    return Error::Unavailable("kubegate could not have the API server review this ServiceAccount token: " + why);
  };
  auto refuse = [&](const char* r, const std::string& why) -> Error {
    reason = r;
    return Error::Unauthorized("invalid ServiceAccount token: " + why);
  };
  if (http_status != 201 && http_status != 200) {
    return unavailable("the API server answered " + std::to_string(http_status) +
                       " (kubegate's credential needs create on tokenreviews.authentication.k8s.io)");
  }
  json review = json::parse(body, nullptr, false);
  if (!review.is_object() || review.value("kind", "") != "TokenReview" || !review.contains("status") ||
      !review["status"].is_object()) {
    return unavailable("the answer is not a TokenReview");
  }
  const json& status = review["status"];
  if (!status.value("authenticated", false)) {
    // status.error is the API server's wording; it never holds the token.
    std::string why = status.value("error", "");
    return refuse("token_review_refused", why.empty() ? "the API server did not authenticate it" : why.substr(0, 512));
  }
  // The API server names the intersection of the token's audiences and the
  // ones asked for; it must not be empty.
  std::vector<std::string> auds;
  if (status.contains("audiences") && status["audiences"].is_array()) {
    for (const json& a : status["audiences"]) {
      if (a.is_string() &&
          std::find(config_.audiences.begin(), config_.audiences.end(), a.get<std::string>()) != config_.audiences.end()) {
        auds.push_back(a.get<std::string>());
      }
    }
  }
  if (auds.empty()) return refuse("wrong_audience", "it is not bound to kubegate's audience");
  const json user = status.value("user", json::object());
  std::string username = user.is_object() ? user.value("username", "") : "";
  auto peek = Peek(token);
  // The reviewed user must be the ServiceAccount the token names.
  if (!peek || username != peek->sub || username.rfind(kServiceAccountUserPrefix, 0) != 0) {
    return refuse("not_a_service_account", "the API server reviewed it as another user");
  }
  std::string rest = username.substr(std::string_view(kServiceAccountUserPrefix).size());
  std::size_t colon = rest.find(':');
  if (colon == std::string::npos) return refuse("not_a_service_account", "its user name has no namespace");
  std::string ns = rest.substr(0, colon), name = rest.substr(colon + 1);
  Identity id;
  id.user = username;
  id.method = AuthMethod::kServiceAccount;
  id.kind = IdentityKind::kAgent;
  for (const std::string& p : config_.humans) {
    if (Matches(p, ns, name)) id.kind = IdentityKind::kHuman;
  }
  if (user.contains("groups") && user["groups"].is_array()) {
    for (const json& g : user["groups"]) {
      if (g.is_string()) id.groups.push_back(g.get<std::string>());
    }
  }
  std::int64_t expires = now_ms + config_.cache_ttl_ms;
  if (peek->exp_s > 0) expires = std::min(expires, peek->exp_s * 1000);
  std::lock_guard<std::mutex> lock(mu_);
  if (cache_.size() >= limits::kTokenReviewCacheEntries) {
    for (auto it = cache_.begin(); it != cache_.end();) {
      it = now_ms >= it->second.expires_ms ? cache_.erase(it) : std::next(it);
    }
    if (cache_.size() >= limits::kTokenReviewCacheEntries) cache_.erase(cache_.begin());
  }
  cache_[Sha256Hex(token)] = Entry{id, expires};
  return id;
}

}  // namespace kubegate
