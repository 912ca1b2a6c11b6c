// SHA-256 as lower-case hex, for token hashes, the audit hash chain and
// recording hashes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>

namespace kubegate {

std::string Sha256Hex(std::string_view data);
// SHA-256 of `pieces` one after another, as lower-case hex: Sha256Hex of
// their concatenation, without building it (the audit chain's hash).
std::string Sha256HexOf(std::initializer_list<std::string_view> pieces);

// SHA-256 over data given in pieces (a recording as it is written).
class Sha256Stream {
 public:
  Sha256Stream();
  ~Sha256Stream();
  Sha256Stream(const Sha256Stream&) = delete;
  Sha256Stream& operator=(const Sha256Stream&) = delete;
  void Update(std::string_view data);
  // Lower-case hex of everything given so far; Update may not follow.
  std::string HexDigest();

 private:
  void* ctx_;  // EVP_MD_CTX
};

// `prefix` followed by 2*bytes random lower-case hex digits (OpenSSL's
// CSPRNG): request ids ("kg-"), grant ids ("gr-").
std::string RandomId(std::string_view prefix, std::size_t bytes);

// `prefix`, then `unix_ms` as 12 lower-case hex digits (48 bits: until the
// year 10889), then 2*bytes random hex digits. Ids made later sort after
// ids made earlier (to the millisecond), so a B-tree keyed on them grows at
// its end: an index of random ids dirties about one page per insert,
// however inserts are batched (docs/performance.md, "Time-ordered request ids").
std::string TimeOrderedId(std::string_view prefix, std::int64_t unix_ms, std::size_t bytes);

}  // namespace kubegate
