#include "common/digest.h"

#include <openssl/evp.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <cstring>

#include <vector>

namespace kubegate {

namespace {

// Appends `len` bytes as lower-case hex.
void AppendHex(const unsigned char* digest, std::size_t len, std::string& out) {
  static const char kHex[] = "0123456789abcdef";
  const std::size_t at = out.size();
  out.resize(at + len * 2);
  for (std::size_t i = 0; i < len; ++i) {
    out[at + 2 * i] = kHex[digest[i] >> 4];
    out[at + 2 * i + 1] = kHex[digest[i] & 15];
  }
}

std::string Hex(const unsigned char* digest, unsigned int len) {
  std::string out;
  AppendHex(digest, len, out);
  return out;
}

// SHA-256, fetched from OpenSSL's default provider once. EVP_sha256()
// makes OpenSSL 3 look the algorithm up again on every digest: about 6,000
// instructions per call, more than hashing a bearer token itself
// (callgrind; docs/performance.md).
const EVP_MD* Sha256() {
  static EVP_MD* const md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  return md ? md : EVP_sha256();
}

// Random bytes from the DRBG, drawn 512 at a time per thread: each
// RAND_bytes call costs about 6,000 instructions of provider plumbing
// whatever its size. Every byte is used once and wiped from the pool.
void RandomBytes(unsigned char* out, std::size_t n) {
  constexpr std::size_t kPool = 512;
  thread_local unsigned char pool[kPool];
  thread_local std::size_t left = 0;
  if (n > kPool) {
    RAND_bytes(out, static_cast<int>(n));
    return;
  }
  if (left < n) {
    if (RAND_bytes(pool, static_cast<int>(kPool)) != 1) {
      RAND_bytes(out, static_cast<int>(n));
      return;
    }
    left = kPool;
  }
  unsigned char* from = pool + (kPool - left);
  std::memcpy(out, from, n);
  OPENSSL_cleanse(from, n);
  left -= n;
}

}  // namespace

std::string Sha256Hex(std::string_view data) { return Sha256HexOf({data}); }

std::string Sha256HexOf(std::initializer_list<std::string_view> pieces) {
  // One context per thread, initialised again for each digest: EVP_Digest
  // makes and frees a context on every call (two allocations; one is left,
  // OpenSSL 3.0 makes the algorithm's state again on each init).
  struct Context {
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    ~Context() { EVP_MD_CTX_free(ctx); }
  };
  thread_local Context context;
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_MD_CTX* ctx = context.ctx;
  if (ctx && EVP_DigestInit_ex(ctx, Sha256(), nullptr) == 1) {
    for (std::string_view p : pieces) EVP_DigestUpdate(ctx, p.data(), p.size());
    EVP_DigestFinal_ex(ctx, digest, &len);
  } else {
    std::string all;
    for (std::string_view p : pieces) all += p;
    EVP_Digest(all.data(), all.size(), digest, &len, Sha256(), nullptr);
  }
  return Hex(digest, len);
}

Sha256Stream::Sha256Stream() : ctx_(EVP_MD_CTX_new()) {
  EVP_DigestInit_ex(static_cast<EVP_MD_CTX*>(ctx_), Sha256(), nullptr);
}

Sha256Stream::~Sha256Stream() { EVP_MD_CTX_free(static_cast<EVP_MD_CTX*>(ctx_)); }

void Sha256Stream::Update(std::string_view data) {
  EVP_DigestUpdate(static_cast<EVP_MD_CTX*>(ctx_), data.data(), data.size());
}

std::string Sha256Stream::HexDigest() {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(static_cast<EVP_MD_CTX*>(ctx_), digest, &len);
  return Hex(digest, len);
}

std::string RandomId(std::string_view prefix, std::size_t bytes) {
  std::vector<unsigned char> raw(bytes);
  RandomBytes(raw.data(), raw.size());
  return std::string(prefix) + Hex(raw.data(), static_cast<unsigned int>(raw.size()));
}

std::string TimeOrderedId(std::string_view prefix, std::int64_t unix_ms, std::size_t bytes) {
  // Request ids have 16 bytes: on the stack.
  unsigned char small[32];
  std::vector<unsigned char> large;
  unsigned char* raw = small;
  if (6 + bytes > sizeof small) {
    large.resize(6 + bytes);
    raw = large.data();
  }
  auto t = static_cast<std::uint64_t>(std::max<std::int64_t>(unix_ms, 0));
  for (int i = 5; i >= 0; --i, t >>= 8) raw[static_cast<std::size_t>(i)] = static_cast<unsigned char>(t & 0xff);
  RandomBytes(raw + 6, bytes);
  std::string out;
  out.reserve(prefix.size() + (6 + bytes) * 2);
  out.append(prefix);
  AppendHex(raw, 6 + bytes, out);
  return out;
}

}  // namespace kubegate
