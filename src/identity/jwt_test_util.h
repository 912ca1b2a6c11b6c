// Test keys that sign JWTs the way an identity provider does, for the
// identity module's tests (RS256 with RSA-2048, ES256 with P-256).
#pragma once

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include <string>

#include <nlohmann/json.hpp>

#include "common/text.h"
#include "identity/jwt.h"

namespace kubegate::testing {

class TestSigner {
 public:
  TestSigner(std::string alg, std::string kid) : alg_(std::move(alg)), kid_(std::move(kid)) {
    key_ = alg_ == "ES256" ? EVP_EC_gen("P-256") : EVP_RSA_gen(2048);
  }
  ~TestSigner() { EVP_PKEY_free(key_); }
  TestSigner(const TestSigner&) = delete;
  TestSigner& operator=(const TestSigner&) = delete;

  const std::string& kid() const { return kid_; }

  // The public key as a JWK object.
  nlohmann::json Jwk() const {
    nlohmann::json k = {{"kid", kid_}, {"use", "sig"}, {"alg", alg_}};
    if (alg_ == "ES256") {
      k["kty"] = "EC";
      k["crv"] = "P-256";
      k["x"] = Base64UrlEncode(Bn(OSSL_PKEY_PARAM_EC_PUB_X, 32));
      k["y"] = Base64UrlEncode(Bn(OSSL_PKEY_PARAM_EC_PUB_Y, 32));
    } else {
      k["kty"] = "RSA";
      k["n"] = Base64UrlEncode(Bn(OSSL_PKEY_PARAM_RSA_N, 0));
      k["e"] = Base64UrlEncode(Bn(OSSL_PKEY_PARAM_RSA_E, 0));
    }
    return k;
  }

  // A compact JWS of `claims` with this key; `header` overrides the
  // default {"alg", "kid", "typ"}.
  std::string Sign(const nlohmann::json& claims, nlohmann::json header = nullptr) const {
    if (header.is_null()) header = {{"alg", alg_}, {"kid", kid_}, {"typ", "JWT"}};
    return SignJwt(key_, header, claims);
  }

 private:
  std::string Bn(const char* name, int pad) const {
    BIGNUM* bn = nullptr;
    EVP_PKEY_get_bn_param(key_, name, &bn);
    int size = pad ? pad : BN_num_bytes(bn);
    std::string out(static_cast<std::size_t>(size), '\0');
    BN_bn2binpad(bn, reinterpret_cast<unsigned char*>(out.data()), size);
    BN_free(bn);
    return out;
  }

  std::string alg_, kid_;
  EVP_PKEY* key_ = nullptr;
};

inline std::string JwksOf(std::initializer_list<const TestSigner*> signers) {
  nlohmann::json keys = nlohmann::json::array();
  for (const TestSigner* s : signers) keys.push_back(s->Jwk());
  return nlohmann::json{{"keys", keys}}.dump();
}

}  // namespace kubegate::testing
