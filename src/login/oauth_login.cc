#include "login/oauth_login.h"

#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>
#include <openssl/evp.h>

#include "common/digest.h"
#include "common/text.h"

namespace kubegate {

namespace {

using json = nlohmann::json;

// An ID token with less than this left is refreshed first.
constexpr std::int64_t kRefreshSlackS = 60;
// RFC 8628 §3.5: the default polling interval, and what slow_down adds.
constexpr std::int64_t kDefaultIntervalS = 5;
constexpr std::int64_t kSlowDownS = 5;
// The code flow: how long the loopback listener waits for the browser.
constexpr int kRedirectWaitS = 300;
constexpr const char* kDeviceGrant = "urn:ietf:params:oauth:grant-type:device_code";

struct Endpoints {
  std::string token, device_authorization, authorization;
};

Result<json> JsonAnswer(const Result<HttpAnswer>& a, const char* what) {
  if (!a) return Error::Unavailable(std::string("cannot reach the identity provider (") + what + "): " + a.error().message);
  json j = json::parse(a->body, nullptr, false);
  if (!j.is_object()) {
    return Error::BadGateway(std::string("the identity provider's ") + what + " answer (HTTP " +
                             std::to_string(a->status) + ") is not a JSON object");
  }
  return j;
}

std::string Str(const json& j, const char* k) {
  auto it = j.find(k);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

Result<Endpoints> Discover(const LoginOptions& o, LoginEnvironment& env) {
  std::string base = o.issuer;
  while (!base.empty() && base.back() == '/') base.pop_back();
  auto doc = JsonAnswer(env.http.Get(base + "/.well-known/openid-configuration"), "discovery");
  if (!doc) return doc.error();
  if (Str(*doc, "issuer") != o.issuer) {
    return Error::BadGateway("the discovery document names issuer \"" + Str(*doc, "issuer") + "\", not \"" + o.issuer + "\"");
  }
  Endpoints e{Str(*doc, "token_endpoint"), Str(*doc, "device_authorization_endpoint"),
              Str(*doc, "authorization_endpoint")};
  if (e.token.rfind("https://", 0) != 0) return Error::BadGateway("the provider has no https token_endpoint");
  return e;
}

std::string Scopes(const LoginOptions& o) {
  std::string s;
  for (const std::string& x : o.scopes) s += (s.empty() ? "" : " ") + x;
  return s;
}

// A token endpoint answer: the tokens, or the OAuth error code.
struct TokenAnswer {
  TokenSet tokens;
  std::string error;
  std::string description;
};

Result<TokenAnswer> TokenRequest(const Endpoints& e, LoginEnvironment& env,
                                 const std::vector<std::pair<std::string, std::string>>& fields) {
  auto j = JsonAnswer(env.http.PostForm(e.token, fields), "token");
  if (!j) return j.error();
  TokenAnswer a;
  a.error = Str(*j, "error");
  a.description = Str(*j, "error_description");
  a.tokens.id_token = Str(*j, "id_token");
  a.tokens.refresh_token = Str(*j, "refresh_token");
  if (a.error.empty() && a.tokens.id_token.empty()) a.error = "no_id_token";
  return a;
}

Result<TokenSet> DeviceFlow(const LoginOptions& o, const Endpoints& e, LoginEnvironment& env) {
  if (e.device_authorization.rfind("https://", 0) != 0) {
    return Error::BadGateway("the provider offers no device authorization endpoint; use --flow code");
  }
  auto start = JsonAnswer(env.http.PostForm(e.device_authorization, {{"client_id", o.client_id}, {"scope", Scopes(o)}}),
                          "device authorization");
  if (!start) return start.error();
  std::string device_code = Str(*start, "device_code"), user_code = Str(*start, "user_code");
  std::string uri = Str(*start, "verification_uri"), complete = Str(*start, "verification_uri_complete");
  if (device_code.empty() || user_code.empty() || uri.empty()) {
    return Error::BadGateway("the device authorization answer lacks device_code, user_code or verification_uri" +
                             (Str(*start, "error").empty() ? std::string() : ": " + Str(*start, "error")));
  }
  std::int64_t interval = start->value("interval", kDefaultIntervalS);
  std::int64_t expires_in = start->value("expires_in", std::int64_t{600});
  env.err << "To sign in to kubegate, open " << uri << " and enter the code " << user_code << "\n";
  if (!complete.empty()) env.err << "(or open " << complete << ")\n";
  env.err.flush();
  const std::int64_t deadline = env.clock.NowMillis() + expires_in * 1000;
  while (env.clock.NowMillis() < deadline) {
    env.sleep(interval * 1000);
    auto a = TokenRequest(e, env, {{"grant_type", kDeviceGrant}, {"device_code", device_code}, {"client_id", o.client_id}});
    if (!a) return a.error();
    if (a->error.empty()) return a->tokens;
    if (a->error == "authorization_pending") continue;
    if (a->error == "slow_down") {
      interval += kSlowDownS;
      continue;
    }
    if (a->error == "access_denied") return Error::Unauthorized("the sign-in was denied at the identity provider");
    if (a->error == "expired_token") break;
    return Error::Unauthorized("the identity provider refused the sign-in: " + a->error +
                               (a->description.empty() ? "" : " (" + a->description + ")"));
  }
  return Error::Unauthorized("the code " + user_code + " expired before the sign-in was completed");
}

std::string UrlWithQuery(const std::string& url, const std::vector<std::pair<std::string, std::string>>& q) {
  return url + (url.find('?') == std::string::npos ? "?" : "&") + FormEncode(q);
}

std::string S256(const std::string& verifier) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(verifier.data(), verifier.size(), md, &n, EVP_sha256(), nullptr);
  return Base64UrlEncode(std::string(reinterpret_cast<char*>(md), n));
}

Result<TokenSet> CodeFlow(const LoginOptions& o, const Endpoints& e, LoginEnvironment& env) {
  if (!env.receiver) return Error::Internal("the code flow needs a loopback listener");
  if (e.authorization.rfind("https://", 0) != 0) return Error::BadGateway("the provider has no https authorization_endpoint");
  auto redirect = env.receiver->Start();
  if (!redirect) return redirect.error();
  std::string state = env.random(16), verifier = env.random(32), nonce = env.random(16);
  std::string url = UrlWithQuery(e.authorization, {{"response_type", "code"},
                                                   {"client_id", o.client_id},
                                                   {"redirect_uri", *redirect},
                                                   {"scope", Scopes(o)},
                                                   {"state", state},
                                                   {"nonce", nonce},
                                                   {"prompt", "consent"},
                                                   {"code_challenge", S256(verifier)},
                                                   {"code_challenge_method", "S256"}});
  env.err << "To sign in to kubegate, open this URL in a browser on this machine:\n" << url << "\n";
  env.err.flush();
  auto params = env.receiver->Wait(kRedirectWaitS);
  if (!params) return params.error();
  auto param = [&](const char* k) {
    auto it = params->find(k);
    return it == params->end() ? std::string() : it->second;
  };
  if (param("state") != state) return Error::Unauthorized("the redirect's state does not match: refusing it");
  if (!param("error").empty()) return Error::Unauthorized("the identity provider refused the sign-in: " + param("error"));
  if (param("code").empty()) return Error::Unauthorized("the redirect carries no code");
  auto a = TokenRequest(e, env, {{"grant_type", "authorization_code"},
                                 {"code", param("code")},
                                 {"redirect_uri", *redirect},
                                 {"client_id", o.client_id},
                                 {"code_verifier", verifier}});
  if (!a) return a.error();
  if (!a->error.empty()) return Error::Unauthorized("the identity provider refused the code: " + a->error);
  return a->tokens;
}

}  // namespace

std::int64_t UnverifiedExpiry(const std::string& id_token) {
  std::size_t a = id_token.find('.'), b = id_token.find('.', a + 1);
  if (a == std::string::npos || b == std::string::npos) return 0;
  auto payload = Base64UrlDecode(std::string_view(id_token).substr(a + 1, b - a - 1));
  if (!payload) return 0;
  json j = json::parse(*payload, nullptr, false);
  if (!j.is_object() || !j.contains("exp") || !j["exp"].is_number()) return 0;
  return j["exp"].get<std::int64_t>();
}

std::string ExecCredentialJson(const std::string& id_token) {
  json status = {{"token", id_token}};
  if (std::int64_t exp = UnverifiedExpiry(id_token)) status["expirationTimestamp"] = FormatRfc3339(exp * 1000);
  return json{{"apiVersion", "client.authentication.k8s.io/v1"}, {"kind", "ExecCredential"}, {"spec", json::object()},
              {"status", status}}
             .dump() +
         "\n";
}

std::string TokenCachePath(const LoginOptions& o) {
  std::string dir = o.cache_dir;
  if (dir.empty()) {
    const char* home = std::getenv("HOME");
    dir = std::string(home ? home : ".") + "/.kube/cache/kubegate";
  }
  return dir + "/" + Sha256Hex(o.issuer + "\n" + o.client_id).substr(0, 32) + ".json";
}

Result<TokenSet> LoadTokenCache(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Error::BadRequest("no cached tokens");
  json j = json::parse(in, nullptr, false);
  if (!j.is_object()) return Error::BadRequest("the token cache is not JSON");
  return TokenSet{Str(j, "id_token"), Str(j, "refresh_token")};
}

Result<bool> SaveTokenCache(const std::string& path, const TokenSet& t) {
  std::error_code ec;
  std::filesystem::path p(path);
  std::filesystem::create_directories(p.parent_path(), ec);
  ::chmod(p.parent_path().c_str(), 0700);
  std::string tmp = path + ".tmp";
  ::umask(077);
  {
    std::ofstream out(tmp, std::ios::trunc);
    if (!out) return Error::Internal("cannot write " + tmp);
    out << json{{"id_token", t.id_token}, {"refresh_token", t.refresh_token}}.dump();
  }
  ::chmod(tmp.c_str(), 0600);
  if (std::rename(tmp.c_str(), path.c_str()) != 0) return Error::Internal("cannot replace " + path);
  return true;
}

std::string FormEncode(const std::vector<std::pair<std::string, std::string>>& fields) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (const auto& [k, v] : fields) {
    if (!out.empty()) out += '&';
    for (const std::string* s : {&k, &v}) {
      for (unsigned char c : *s) {
        if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
          out += static_cast<char>(c);
        } else if (c == ' ') {
          out += '+';
        } else {
          out += '%';
          out += kHex[c >> 4];
          out += kHex[c & 15];
        }
      }
      if (s == &k) out += '=';
    }
  }
  return out;
}

Result<std::string> Login(const LoginOptions& o, LoginEnvironment& env) {
  const std::string cache = TokenCachePath(o);
  const std::int64_t now_s = env.clock.NowMillis() / 1000;
  TokenSet tokens;
  if (auto cached = LoadTokenCache(cache)) tokens = std::move(*cached);
  if (!tokens.id_token.empty() && UnverifiedExpiry(tokens.id_token) > now_s + kRefreshSlackS) {
    return ExecCredentialJson(tokens.id_token);
  }
  auto endpoints = Discover(o, env);
  if (!endpoints) return endpoints.error();
  if (!tokens.refresh_token.empty()) {
    auto a = TokenRequest(*endpoints, env, {{"grant_type", "refresh_token"},
                                            {"refresh_token", tokens.refresh_token},
                                            {"client_id", o.client_id}});
    if (!a) return a.error();
    if (a->error.empty()) {
      if (a->tokens.refresh_token.empty()) a->tokens.refresh_token = tokens.refresh_token;  // not rotated
      if (auto saved = SaveTokenCache(cache, a->tokens); !saved) return saved.error();
      return ExecCredentialJson(a->tokens.id_token);
    }
    // invalid_grant and the like: the refresh token is spent; sign in again.
  }
  auto fresh = o.flow == "code" ? CodeFlow(o, *endpoints, env) : DeviceFlow(o, *endpoints, env);
  if (!fresh) return fresh.error();
  if (auto saved = SaveTokenCache(cache, *fresh); !saved) return saved.error();
  return ExecCredentialJson(fresh->id_token);
}

}  // namespace kubegate
