// Signer: the Ed25519 key that signs audit checkpoints. The private key
// lives in the gateway's data directory (mode 0600); the public key is
// exported (`kubegate audit public-key`) so that a copy of the log can be
// verified elsewhere.
//
//   auto signer = Signer::LoadOrCreate("kubegate-data/audit-signing-key.pem");
//   std::string sig = (*signer)->Sign(message);                 // base64
//   VerifySignature((*signer)->PublicKeyPem(), message, sig);   // true
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "common/result.h"

namespace kubegate {

class Signer {
 public:
  // Reads the PEM private key at `path`, or creates one there.
  static Result<std::unique_ptr<Signer>> LoadOrCreate(const std::string& path);
  static Result<std::unique_ptr<Signer>> FromPem(std::string_view private_pem);
  ~Signer();

  std::string Sign(std::string_view message) const;  // base64
  const std::string& PublicKeyPem() const { return public_pem_; }

 private:
  Signer(void* pkey, std::string public_pem) : pkey_(pkey), public_pem_(std::move(public_pem)) {}
  void* pkey_;  // EVP_PKEY*
  std::string public_pem_;
};

// True when `signature_b64` is a valid Ed25519 signature of `message` by the
// key in `public_pem`.
bool VerifySignature(std::string_view public_pem, std::string_view message, std::string_view signature_b64);

}  // namespace kubegate
