#include "identity/jwt.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

#include <nlohmann/json.hpp>

#include "common/limits.h"
#include "common/text.h"

namespace kubegate {

namespace {

using json = nlohmann::json;

constexpr std::size_t kEs256CoordinateBytes = 32;
constexpr int kMinRsaBits = 2048;

bool IsBase64UrlChar(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

Error Bad(const std::string& why) { return Error::Unauthorized("invalid token: " + why); }

Result<json> DecodeObject(std::string_view part, const char* what) {
  auto raw = Base64UrlDecode(part);
  if (!raw) return Bad(std::string(what) + " is not base64url");
  json j = json::parse(*raw, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Bad(std::string(what) + " is not a JSON object");
  return j;
}

struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};

std::shared_ptr<evp_pkey_st> FromData(const char* type, OSSL_PARAM_BLD* bld) {
  OSSL_PARAM* params = OSSL_PARAM_BLD_to_param(bld);
  if (!params) return nullptr;
  EVP_PKEY* pkey = nullptr;
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr);
  if (ctx && EVP_PKEY_fromdata_init(ctx) == 1) EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params);
  EVP_PKEY_CTX_free(ctx);
  OSSL_PARAM_free(params);
  return std::shared_ptr<evp_pkey_st>(pkey, PkeyFree());
}

// RSA public key from the JWK's base64url big-endian n and e.
std::shared_ptr<evp_pkey_st> RsaKey(const std::string& n, const std::string& e) {
  BIGNUM* bn_n = BN_bin2bn(reinterpret_cast<const unsigned char*>(n.data()), static_cast<int>(n.size()), nullptr);
  BIGNUM* bn_e = BN_bin2bn(reinterpret_cast<const unsigned char*>(e.data()), static_cast<int>(e.size()), nullptr);
  std::shared_ptr<evp_pkey_st> key;
  OSSL_PARAM_BLD* bld = OSSL_PARAM_BLD_new();
  if (bn_n && bn_e && bld && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n) == 1 &&
      OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e) == 1) {
    key = FromData("RSA", bld);
  }
  OSSL_PARAM_BLD_free(bld);
  BN_free(bn_n);
  BN_free(bn_e);
  if (key && EVP_PKEY_get_bits(key.get()) < kMinRsaBits) key.reset();
  return key;
}

// P-256 public key from the JWK's x and y (32 bytes each); OpenSSL checks
// that the point is on the curve.
std::shared_ptr<evp_pkey_st> P256Key(const std::string& x, const std::string& y) {
  if (x.size() != kEs256CoordinateBytes || y.size() != kEs256CoordinateBytes) return nullptr;
  std::string point = "\x04" + x + y;
  std::shared_ptr<evp_pkey_st> key;
  OSSL_PARAM_BLD* bld = OSSL_PARAM_BLD_new();
  if (bld && OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) == 1 &&
      OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size()) == 1) {
    key = FromData("EC", bld);
  }
  OSSL_PARAM_BLD_free(bld);
  if (key) {
    EVP_PKEY_CTX* check = EVP_PKEY_CTX_new_from_pkey(nullptr, key.get(), nullptr);
    if (!check || EVP_PKEY_public_check(check) != 1) key.reset();
    EVP_PKEY_CTX_free(check);
  }
  return key;
}

std::string Member(const json& j, const char* name) {
  auto it = j.find(name);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// JWS ES256 signatures are r || s, 32 bytes each; OpenSSL verifies DER.
std::string Es256ToDer(const std::string& raw) {
  if (raw.size() != 2 * kEs256CoordinateBytes) return {};
  const auto* p = reinterpret_cast<const unsigned char*>(raw.data());
  BIGNUM* r = BN_bin2bn(p, kEs256CoordinateBytes, nullptr);
  BIGNUM* s = BN_bin2bn(p + kEs256CoordinateBytes, kEs256CoordinateBytes, nullptr);
  ECDSA_SIG* sig = ECDSA_SIG_new();
  std::string der;
  if (r && s && sig && ECDSA_SIG_set0(sig, r, s) == 1) {
    r = s = nullptr;  // owned by sig now
    unsigned char* out = nullptr;
    int n = i2d_ECDSA_SIG(sig, &out);
    if (n > 0) der.assign(reinterpret_cast<char*>(out), static_cast<std::size_t>(n));
    OPENSSL_free(out);
  }
  ECDSA_SIG_free(sig);
  BN_free(r);
  BN_free(s);
  return der;
}

}  // namespace

bool LooksLikeJwt(std::string_view token) {
  int dots = 0;
  for (char c : token) {
    if (c == '.') {
      ++dots;
    } else if (!IsBase64UrlChar(c)) {
      return false;
    }
  }
  return dots == 2;
}

std::optional<std::string> UntrustedIssuer(std::string_view token) {
  if (token.size() > limits::kMaxJwtBytes || !LooksLikeJwt(token)) return std::nullopt;
  std::size_t a = token.find('.');
  std::size_t b = token.find('.', a + 1);
  auto payload = DecodeObject(token.substr(a + 1, b - a - 1), "payload");
  if (!payload) return std::nullopt;
  std::string iss = Member(*payload, "iss");
  if (iss.empty()) return std::nullopt;
  return iss;
}

Result<Jwt> ParseJwt(std::string_view token) {
  if (token.size() > limits::kMaxJwtBytes) return Bad("longer than " + std::to_string(limits::kMaxJwtBytes) + " bytes");
  if (!LooksLikeJwt(token)) return Bad("not a compact JWS (three base64url parts)");
  std::size_t a = token.find('.');
  std::size_t b = token.find('.', a + 1);
  auto header = DecodeObject(token.substr(0, a), "header");
  if (!header) return header.error();
  Jwt jwt;
  jwt.alg = Member(*header, "alg");
  if (jwt.alg != "RS256" && jwt.alg != "ES256") {
    return Bad("signing algorithm \"" + jwt.alg.substr(0, 16) + "\" is not accepted (RS256 or ES256 only)");
  }
  auto payload = DecodeObject(token.substr(a + 1, b - a - 1), "payload");
  if (!payload) return payload.error();
  auto signature = Base64UrlDecode(token.substr(b + 1));
  if (!signature || signature->empty()) return Bad("signature is missing or not base64url");
  for (const char* embedded : {"jwk", "jku", "x5u", "x5c", "crit"}) {
    if (header->contains(embedded)) return Bad(std::string("header \"") + embedded + "\" is not accepted");
  }
  if (auto it = header->find("kid"); it != header->end()) {
    if (!it->is_string()) return Bad("kid is not a string");
    jwt.kid = it->get<std::string>();
  }
  jwt.claims = std::make_shared<const json>(std::move(*payload));
  jwt.signing_input = std::string(token.substr(0, b));
  jwt.signature = std::move(*signature);
  return jwt;
}

const JsonWebKey* JsonWebKeySet::Find(const std::string& kid, const std::string& alg) const {
  const JsonWebKey* only = nullptr;
  int of_alg = 0;
  for (const JsonWebKey& k : keys_) {
    if (k.alg != alg) continue;
    if (!kid.empty() && k.kid == kid) return &k;
    ++of_alg;
    only = &k;
  }
  return kid.empty() && of_alg == 1 ? only : nullptr;
}

Result<JsonWebKeySet> ParseJwks(std::string_view text) {
  if (text.size() > limits::kMaxJwksBytes) {
    return Error::BadGateway("JWKS document is longer than " + std::to_string(limits::kMaxJwksBytes) + " bytes");
  }
  json doc = json::parse(text, nullptr, false);
  if (doc.is_discarded() || !doc.is_object() || !doc.contains("keys") || !doc["keys"].is_array()) {
    return Error::BadGateway("JWKS document is not a JSON object with a \"keys\" list");
  }
  JsonWebKeySet set;
  for (const json& k : doc["keys"]) {
    if (!k.is_object()) continue;
    std::string use = Member(k, "use");
    if (!use.empty() && use != "sig") continue;
    std::string kty = Member(k, "kty"), alg = Member(k, "alg");
    JsonWebKey key;
    key.kid = Member(k, "kid");
    auto field = [&](const char* name) -> std::string {
      auto v = Base64UrlDecode(Member(k, name));
      return v ? *v : std::string();
    };
    if (kty == "RSA" && (alg.empty() || alg == "RS256")) {
      key.alg = "RS256";
      std::string n = field("n"), e = field("e");
      if (!n.empty() && !e.empty()) key.key = RsaKey(n, e);
    } else if (kty == "EC" && Member(k, "crv") == "P-256" && (alg.empty() || alg == "ES256")) {
      key.alg = "ES256";
      key.key = P256Key(field("x"), field("y"));
    }
    if (key.key) set.Add(std::move(key));
  }
  if (set.empty()) return Error::BadGateway("JWKS document has no usable RS256 or ES256 signing key");
  return set;
}

std::string SignJwt(evp_pkey_st* key, const json& header, const json& claims) {
  std::string input = Base64UrlEncode(header.dump()) + "." + Base64UrlEncode(claims.dump());
  std::size_t len = static_cast<std::size_t>(EVP_PKEY_get_size(key));
  std::string sig(len, '\0');
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  bool ok = ctx && EVP_DigestSignInit_ex(ctx, nullptr, "SHA256", nullptr, nullptr, key, nullptr) == 1 &&
            EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &len,
                           reinterpret_cast<const unsigned char*>(input.data()), input.size()) == 1;
  EVP_MD_CTX_free(ctx);
  if (!ok) return {};
  sig.resize(len);
  if (EVP_PKEY_is_a(key, "EC")) {
    // DER (OpenSSL) to r || s (JWS).
    const auto* p = reinterpret_cast<const unsigned char*>(sig.data());
    ECDSA_SIG* es = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(sig.size()));
    if (!es) return {};
    std::string raw(2 * kEs256CoordinateBytes, '\0');
    auto* out = reinterpret_cast<unsigned char*>(raw.data());
    BN_bn2binpad(ECDSA_SIG_get0_r(es), out, kEs256CoordinateBytes);
    BN_bn2binpad(ECDSA_SIG_get0_s(es), out + kEs256CoordinateBytes, kEs256CoordinateBytes);
    ECDSA_SIG_free(es);
    sig = std::move(raw);
  }
  return input + "." + Base64UrlEncode(sig);
}

bool VerifyJwtSignature(const JsonWebKey& key, const Jwt& jwt) {
  if (!key.key || key.alg != jwt.alg) return false;
  std::string sig = jwt.alg == "ES256" ? Es256ToDer(jwt.signature) : jwt.signature;
  if (sig.empty()) return false;
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  bool ok = ctx && EVP_DigestVerifyInit_ex(ctx, nullptr, "SHA256", nullptr, nullptr, key.key.get(), nullptr) == 1 &&
            EVP_DigestVerify(ctx, reinterpret_cast<const unsigned char*>(sig.data()), sig.size(),
                             reinterpret_cast<const unsigned char*>(jwt.signing_input.data()),
                             jwt.signing_input.size()) == 1;
  EVP_MD_CTX_free(ctx);
  return ok;
}

}  // namespace kubegate
