// SHA-256 as lower-case hex, for token hashes, the audit hash chain and
// recording hashes.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace kubegate {

std::string Sha256Hex(std::string_view data);

// `prefix` followed by 2*bytes random lower-case hex digits (OpenSSL's
// CSPRNG): request ids ("kg-"), grant ids ("gr-").
std::string RandomId(std::string_view prefix, std::size_t bytes);

}  // namespace kubegate
