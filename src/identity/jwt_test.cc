#include "identity/jwt.h"

#include <gtest/gtest.h>
#include <openssl/hmac.h>

#include "common/limits.h"
#include "identity/jwt_test_util.h"

namespace kubegate {
namespace {

using json = nlohmann::json;
using testing::JwksOf;
using testing::TestSigner;

const json kClaims = {{"iss", "https://idp.test"}, {"sub", "alice"}, {"aud", "kubegate"}, {"exp", 4000000000}};

bool Verifies(const std::string& token, const std::string& jwks) {
  auto jwt = ParseJwt(token);
  auto keys = ParseJwks(jwks);
  if (!jwt || !keys) return false;
  const JsonWebKey* k = keys->Find(jwt->kid, jwt->alg);
  return k && VerifyJwtSignature(*k, *jwt);
}

TEST(Jwt, Rs256AndEs256SignaturesVerifyWithTheirOwnKeysOnly) {
  TestSigner rsa("RS256", "r1"), ec("ES256", "e1"), other("RS256", "r1");
  std::string jwks = JwksOf({&rsa, &ec});
  EXPECT_TRUE(Verifies(rsa.Sign(kClaims), jwks));
  EXPECT_TRUE(Verifies(ec.Sign(kClaims), jwks));
  EXPECT_FALSE(Verifies(other.Sign(kClaims), jwks));  // same kid, another key
  auto parsed = ParseJwt(rsa.Sign(kClaims));
  ASSERT_TRUE(parsed);
  EXPECT_EQ((*parsed->claims)["sub"], "alice");
  EXPECT_EQ(parsed->kid, "r1");
}

TEST(Jwt, AnEditedPayloadOrSignatureFails) {
  TestSigner rsa("RS256", "r1"), ec("ES256", "e1");
  std::string jwks = JwksOf({&rsa, &ec});
  for (const TestSigner* s : {&rsa, &ec}) {
    std::string token = s->Sign(kClaims);
    std::size_t a = token.find('.'), b = token.rfind('.');
    json evil = kClaims;
    evil["sub"] = "admin";
    std::string swapped = token.substr(0, a + 1) + Base64UrlEncode(evil.dump()) + token.substr(b);
    EXPECT_FALSE(Verifies(swapped, jwks));
    std::string flipped = token;
    flipped[b + 5] = flipped[b + 5] == 'A' ? 'B' : 'A';
    EXPECT_FALSE(Verifies(flipped, jwks));
    EXPECT_FALSE(Verifies(token.substr(0, b + 1), jwks));  // no signature
  }
}

TEST(Jwt, OnlyRs256AndEs256AreAccepted) {
  TestSigner rsa("RS256", "r1");
  std::string jwks = JwksOf({&rsa});
  std::string body = Base64UrlEncode(kClaims.dump());
  // alg "none" with an empty or any signature.
  std::string none = Base64UrlEncode(R"({"alg":"none"})") + "." + body + ".";
  EXPECT_FALSE(ParseJwt(none));
  EXPECT_FALSE(ParseJwt(none + "c2ln"));
  // HS256 "signed" with the RSA public key as the HMAC secret: the forgery
  // a verifier that trusts the header's alg accepts.
  std::string input = Base64UrlEncode(R"({"alg":"HS256","kid":"r1"})") + "." + body;
  std::string secret = rsa.Jwk().dump();
  unsigned char mac[32];
  unsigned len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &len);
  std::string forged = input + "." + Base64UrlEncode(std::string(reinterpret_cast<char*>(mac), len));
  auto r = ParseJwt(forged);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("HS256"), std::string::npos);
  EXPECT_EQ(r.error().message.find(forged), std::string::npos);  // never echoes the token
  // An RS256 token presented as ES256 finds no key of that alg.
  std::string as_es = rsa.Sign(kClaims, {{"alg", "ES256"}, {"kid", "r1"}});
  EXPECT_FALSE(Verifies(as_es, jwks));
  // Embedded keys are refused outright.
  EXPECT_FALSE(ParseJwt(rsa.Sign(kClaims, {{"alg", "RS256"}, {"kid", "r1"}, {"jwk", rsa.Jwk()}})));
  EXPECT_FALSE(ParseJwt(rsa.Sign(kClaims, {{"alg", "RS256"}, {"jku", "https://evil/keys"}})));
}

TEST(Jwt, MalformedTokensAreRefusedWithoutEchoingThem) {
  TestSigner rsa("RS256", "r1");
  std::string good = rsa.Sign(kClaims);
  for (std::string bad : {std::string(""), std::string("a.b"), std::string("a.b.c.d"), std::string("..."),
                          std::string("e30.e30.c2ln"),                                   // {} header: no alg
                          Base64UrlEncode("[1]") + "." + Base64UrlEncode("{}") + ".c2ln",  // header not an object
                          good.substr(0, good.find('.')) + ".bm90IGpzb24." + "c2ln",       // payload not JSON
                          good + "=", std::string("a+b.c.d")}) {
    auto r = ParseJwt(bad);
    EXPECT_FALSE(r) << bad;
  }
  json big = kClaims;
  big["pad"] = std::string(limits::kMaxJwtBytes, 'x');
  auto r = ParseJwt(rsa.Sign(big));
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("longer than"), std::string::npos);
}

TEST(Jwt, UntrustedIssuerReadsOnlyThePayload) {
  TestSigner rsa("RS256", "r1");
  EXPECT_EQ(UntrustedIssuer(rsa.Sign(kClaims)), "https://idp.test");
  EXPECT_EQ(UntrustedIssuer("abc"), std::nullopt);
  EXPECT_EQ(UntrustedIssuer(rsa.Sign({{"sub", "x"}})), std::nullopt);
}

TEST(Jwks, UnusableKeysAreSkippedAndANoKeyDocumentIsAnError) {
  TestSigner rsa("RS256", "r1"), ec("ES256", "e1");
  json enc = rsa.Jwk();
  enc["use"] = "enc";
  json ps = rsa.Jwk();
  ps["alg"] = "PS256";
  json off_curve = ec.Jwk();
  std::string y = *Base64UrlDecode(off_curve["y"].get<std::string>());
  y[31] ^= 1;
  off_curve["y"] = Base64UrlEncode(y);
  EVP_PKEY* small = EVP_RSA_gen(1024);
  BIGNUM* n = nullptr;
  EVP_PKEY_get_bn_param(small, OSSL_PKEY_PARAM_RSA_N, &n);
  std::string nb(static_cast<std::size_t>(BN_num_bytes(n)), '\0');
  BN_bn2bin(n, reinterpret_cast<unsigned char*>(nb.data()));
  BN_free(n);
  EVP_PKEY_free(small);
  json weak = {{"kty", "RSA"}, {"kid", "weak"}, {"n", Base64UrlEncode(nb)}, {"e", "AQAB"}};
  EXPECT_FALSE(ParseJwks(json{{"keys", {enc, ps, off_curve, weak, "x", 1}}}.dump()));
  EXPECT_FALSE(ParseJwks("{}"));
  EXPECT_FALSE(ParseJwks("not json"));
  auto keys = ParseJwks(json{{"keys", {enc, ps, off_curve, weak, rsa.Jwk()}}}.dump());
  ASSERT_TRUE(keys);
  EXPECT_EQ(keys->size(), 1u);
}

TEST(Jwks, ATokenWithoutKidUsesTheOnlyKeyOfItsAlg) {
  TestSigner a("RS256", "a"), b("RS256", "b"), e("ES256", "e");
  auto one = ParseJwks(JwksOf({&a, &e}));
  ASSERT_TRUE(one);
  EXPECT_NE(one->Find("", "RS256"), nullptr);
  EXPECT_EQ(one->Find("zzz", "RS256"), nullptr);
  auto two = ParseJwks(JwksOf({&a, &b}));
  ASSERT_TRUE(two);
  EXPECT_EQ(two->Find("", "RS256"), nullptr);  // ambiguous
  EXPECT_EQ(two->Find("b", "RS256")->kid, "b");
}

}  // namespace
}  // namespace kubegate
