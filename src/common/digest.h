// SHA-256 as lower-case hex, for token hashes, the audit hash chain and
// recording hashes.
#pragma once

#include <string>
#include <string_view>

namespace kubegate {

std::string Sha256Hex(std::string_view data);

}  // namespace kubegate
