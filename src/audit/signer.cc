#include "audit/signer.h"

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "common/text.h"
#include "tls/pki.h"

namespace kubegate {
namespace {

std::string PublicPem(EVP_PKEY* k) {
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PUBKEY(bio, k);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  std::string out(data, static_cast<std::size_t>(n));
  BIO_free(bio);
  return out;
}

std::string PrivatePem(EVP_PKEY* k) {
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(bio, k, nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  std::string out(data, static_cast<std::size_t>(n));
  BIO_free(bio);
  return out;
}

}  // namespace

Result<std::unique_ptr<Signer>> Signer::FromPem(std::string_view pem) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  EVP_PKEY* k = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (!k || EVP_PKEY_get_id(k) != EVP_PKEY_ED25519) {
    EVP_PKEY_free(k);
    return Error::BadRequest("audit signing key is not an Ed25519 private key in PEM");
  }
  return std::unique_ptr<Signer>(new Signer(k, PublicPem(k)));
}

Result<std::unique_ptr<Signer>> Signer::LoadOrCreate(const std::string& path) {
  auto existing = ReadFile(path);
  if (existing) {
    auto s = FromPem(*existing);
    if (!s) return Error::BadRequest(path + ": " + s.error().message);
    return s;
  }
  EVP_PKEY* k = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
  if (!k) return Error::Internal("cannot generate an Ed25519 key");
  std::string pem = PrivatePem(k);
  EVP_PKEY_free(k);
  auto w = WriteFileAtomic(path, pem, 0600);
  if (!w) return w.error();
  return FromPem(pem);
}

Signer::~Signer() { EVP_PKEY_free(static_cast<EVP_PKEY*>(pkey_)); }

std::string Signer::Sign(std::string_view message) const {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  unsigned char sig[64];
  std::size_t len = sizeof sig;
  EVP_DigestSignInit(ctx, nullptr, nullptr, nullptr, static_cast<EVP_PKEY*>(pkey_));
  EVP_DigestSign(ctx, sig, &len, reinterpret_cast<const unsigned char*>(message.data()), message.size());
  EVP_MD_CTX_free(ctx);
  return Base64Encode(std::string_view(reinterpret_cast<const char*>(sig), len));
}

bool VerifySignature(std::string_view public_pem, std::string_view message, std::string_view signature_b64) {
  auto sig = Base64Decode(signature_b64);
  if (!sig) return false;
  BIO* bio = BIO_new_mem_buf(public_pem.data(), static_cast<int>(public_pem.size()));
  EVP_PKEY* k = PEM_read_bio_PUBKEY(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (!k) return false;
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  bool ok = EVP_DigestVerifyInit(ctx, nullptr, nullptr, nullptr, k) == 1 &&
            EVP_DigestVerify(ctx, reinterpret_cast<const unsigned char*>(sig->data()), sig->size(),
                             reinterpret_cast<const unsigned char*>(message.data()), message.size()) == 1;
  EVP_MD_CTX_free(ctx);
  EVP_PKEY_free(k);
  return ok;
}

}  // namespace kubegate
