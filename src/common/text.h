// Small text helpers shared by the CLI, the upstream loader and the test
// server: base64 (kubeconfig *-data fields, protobuf bytes) and the
// trimming of token files.
#pragma once

#include <string>
#include <string_view>

#include "common/result.h"

namespace kubegate {

std::string Base64Encode(std::string_view in);
// Ignores line breaks and spaces, as kubeconfig readers do.
Result<std::string> Base64Decode(std::string_view in);
// base64url without padding (RFC 4648 §5, as JWS uses it). Decoding is
// strict: any character outside the alphabet, "=" padding, a length of
// 4n+1 or non-zero bits left over in the last character is an error.
std::string Base64UrlEncode(std::string_view in);
Result<std::string> Base64UrlDecode(std::string_view in);
// Drops trailing newlines, carriage returns and spaces (a token file's tail).
std::string TrimTrailingSpace(std::string s);

// Appends `s` as a JSON string literal (quotes included). Invalid UTF-8
// becomes U+FFFD, one per bad byte, as nlohmann::json's "replace" handler
// does. The session recorder's hot path: runs of plain bytes are copied
// whole (docs/performance.md).
void AppendJsonString(std::string& out, std::string_view s);

// The length of the longest prefix of `s` that a JSON string holds as it
// is: bytes 0x20 to 0x7F other than '"' and '\\'. Eight bytes a step.
std::size_t PlainJsonPrefix(std::string_view s);

}  // namespace kubegate
