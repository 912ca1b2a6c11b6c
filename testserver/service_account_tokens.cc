#include "service_account_tokens.h"

#include <algorithm>
#include <random>

#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "common/text.h"
#include "identity/jwt.h"

namespace kubegate::testserver {

namespace {

using json = nlohmann::json;

constexpr std::int64_t kDefaultExpirationSeconds = 3600;
constexpr std::int64_t kMinExpirationSeconds = 600;
constexpr std::int64_t kMaxExpirationSeconds = std::int64_t{1} << 32;

json Status(int code, const std::string& reason, const std::string& message) {
  return {{"kind", "Status"}, {"apiVersion", "v1"}, {"metadata", json::object()}, {"status", "Failure"},
          {"message", message}, {"reason", reason}, {"code", code}};
}

std::string Rfc3339(std::int64_t s) {
  std::time_t t = static_cast<std::time_t>(s);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

std::vector<std::string> Strings(const json& j) {
  std::vector<std::string> out;
  if (j.is_array()) {
    for (const json& v : j) {
      if (v.is_string()) out.push_back(v.get<std::string>());
    }
  } else if (j.is_string()) {
    out.push_back(j.get<std::string>());
  }
  return out;
}

}  // namespace

ServiceAccountTokens::ServiceAccountTokens() : key_(EVP_RSA_gen(2048)) {}
ServiceAccountTokens::~ServiceAccountTokens() { EVP_PKEY_free(key_); }

std::string ServiceAccountTokens::Sign(const json& claims) const {
  return SignJwt(key_, {{"alg", "RS256"}, {"kid", "testserver-sa-1"}}, claims);
}

std::pair<int, json> ServiceAccountTokens::Request(const std::string& ns, const std::string& name,
                                                   const std::optional<json>& sa, const json& request,
                                                   std::int64_t now_s) const {
  if (!sa) return {404, Status(404, "NotFound", "serviceaccounts \"" + name + "\" not found")};
  json spec = request.value("spec", json::object());
  std::int64_t seconds = kDefaultExpirationSeconds;
  if (spec.contains("expirationSeconds")) {
    if (!spec["expirationSeconds"].is_number_integer()) {
      return {400, Status(400, "BadRequest", "spec.expirationSeconds: must be an integer")};
    }
    seconds = spec["expirationSeconds"].get<std::int64_t>();
  }
  if (seconds < kMinExpirationSeconds) {
    return {422, Status(422, "Invalid", "spec.expirationSeconds: Invalid value: " + std::to_string(seconds) +
                                            ": may not specify a duration less than 10 minutes")};
  }
  if (seconds > kMaxExpirationSeconds) {
    return {422, Status(422, "Invalid", "spec.expirationSeconds: Invalid value: " + std::to_string(seconds) +
                                            ": may not specify a duration larger than 2^32 seconds")};
  }
  std::vector<std::string> audiences = Strings(spec.value("audiences", json::array()));
  if (audiences.empty()) audiences = {kApiAudience};
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  std::string jti = std::to_string(rng());
  std::string uid = (*sa)["metadata"].value("uid", "");
  json claims = {{"iss", kIssuer},
                 {"sub", "system:serviceaccount:" + ns + ":" + name},
                 {"aud", audiences},
                 {"exp", now_s + seconds},
                 {"iat", now_s},
                 {"nbf", now_s},
                 {"jti", jti},
                 {"kubernetes.io", {{"namespace", ns}, {"serviceaccount", {{"name", name}, {"uid", uid}}}}}};
  json out = request;
  out["apiVersion"] = "authentication.k8s.io/v1";
  out["kind"] = "TokenRequest";
  out["metadata"] = {{"name", name}, {"namespace", ns}};
  out["spec"]["audiences"] = audiences;
  out["spec"]["expirationSeconds"] = seconds;
  out["status"] = {{"token", Sign(claims)}, {"expirationTimestamp", Rfc3339(now_s + seconds)}};
  return {201, out};
}

std::pair<int, json> ServiceAccountTokens::Review(
    const json& review, const std::function<std::optional<json>(const std::string&, const std::string&)>& lookup,
    std::int64_t now_s) const {
  json spec = review.value("spec", json::object());
  json out = review;
  out["apiVersion"] = "authentication.k8s.io/v1";
  out["kind"] = "TokenReview";
  auto refuse = [&](const std::string& why) {
    out["status"] = {{"authenticated", false}, {"user", json::object()}, {"error", why}};
    return std::pair<int, json>{201, out};
  };
  std::string token = spec.value("token", "");
  std::vector<std::string> wanted = Strings(spec.value("audiences", json::array()));
  if (wanted.empty()) wanted = {kApiAudience};
  auto jwt = ParseJwt(token);
  if (!jwt) return refuse("[invalid bearer token, " + jwt.error().message + "]");
  JsonWebKey key;
  key.alg = "RS256";
  EVP_PKEY_up_ref(key_);
  key.key = std::shared_ptr<evp_pkey_st>(key_, [](evp_pkey_st* k) { EVP_PKEY_free(k); });
  if (jwt->kid != "testserver-sa-1" || !VerifyJwtSignature(key, *jwt)) {
    return refuse("[invalid bearer token, square/go-jose: error in cryptographic primitive]");
  }
  const json& c = *jwt->claims;
  if (c.value("iss", "") != kIssuer) return refuse("[invalid bearer token, token issuer is not trusted]");
  if (!c.contains("exp") || !c["exp"].is_number() || now_s >= c["exp"].get<std::int64_t>()) {
    return refuse("[invalid bearer token, service account token has expired]");
  }
  std::vector<std::string> token_auds = Strings(c.value("aud", json()));
  std::vector<std::string> both;
  for (const std::string& a : wanted) {
    if (std::find(token_auds.begin(), token_auds.end(), a) != token_auds.end()) both.push_back(a);
  }
  if (both.empty()) return refuse("[invalid bearer token, token audiences " + json(token_auds).dump() +
                                  " is invalid for the target audiences " + json(wanted).dump() + "]");
  json k8s = c.value("kubernetes.io", json::object());
  std::string ns = k8s.value("namespace", "");
  json sa_claim = k8s.value("serviceaccount", json::object());
  std::string name = sa_claim.value("name", "");
  auto sa = lookup(ns, name);
  if (!sa) return refuse("[invalid bearer token, service account " + ns + "/" + name + " has been deleted]");
  std::string uid = (*sa)["metadata"].value("uid", "");
  if (uid != sa_claim.value("uid", "")) {
    return refuse("[invalid bearer token, service account UID (" + sa_claim.value("uid", "") +
                  ") does not match claim (" + uid + ")]");
  }
  out["status"] = {{"authenticated", true},
                   {"user",
                    {{"username", "system:serviceaccount:" + ns + ":" + name},
                     {"uid", uid},
                     {"groups", {"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"}},
                     {"extra", {{"authentication.kubernetes.io/credential-id", {"JTI=" + c.value("jti", "")}}}}}},
                   {"audiences", both}};
  return {201, out};
}

}  // namespace kubegate::testserver
