// Reading fields of JSON that kubegate did not write (request bodies, the
// API server's answers, a pod's exit Status) without exceptions:
// nlohmann's value() throws when a field has another type than asked.
#pragma once

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

namespace kubegate {

// obj[key] when obj is an object and the field is a string; else "".
inline std::string StringField(const nlohmann::json& obj, const char* key) {
  if (!obj.is_object()) return "";
  auto it = obj.find(key);
  return it != obj.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// obj[key] when obj is an object and the field is an integer; else nullopt.
inline std::optional<long long> IntField(const nlohmann::json& obj, const char* key) {
  if (!obj.is_object()) return std::nullopt;
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_number_integer()) return std::nullopt;
  return it->get<long long>();
}

// obj[key] when obj is an object and has it; else a null json.
inline const nlohmann::json& Field(const nlohmann::json& obj, const char* key) {
  static const nlohmann::json kNull;
  if (!obj.is_object()) return kNull;
  auto it = obj.find(key);
  return it == obj.end() ? kNull : *it;
}

}  // namespace kubegate
