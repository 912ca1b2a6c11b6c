// What the credential tables' code shares (credentials/ only): how names
// are checked, and the JSON list columns (groups_json). Integers are read
// with SqlInt (store/sql_connection.h).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

namespace kubegate {

// 1 to `max` printable ASCII characters, no spaces.
bool PrintableName(const std::string& s, std::size_t max);
// A JSON array of strings as stored; anything else reads as empty.
std::vector<std::string> StringListColumn(const std::optional<std::string>& json_text);

}  // namespace kubegate
