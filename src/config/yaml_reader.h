// YamlReader: strict reading of kubegate's YAML files (config, policy).
// Every problem is "FILE:LINE: key: problem"; unknown keys are errors.
//
//   YamlReader r("kubegate.yaml");
//   KG_TRY(r.CheckMap(node, "listen", {"address", "port"}));
//   KG_TRY(r.Str(node, "address", "listen", out.address));
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "common/clock.h"
#include "common/result.h"

namespace kubegate {

// Returns the error of an std::optional<Error>-returning expression.
#define KG_TRY(expr)                            \
  do {                                          \
    if (auto kg_err = (expr)) return *kg_err;   \
  } while (0)

class YamlReader {
 public:
  explicit YamlReader(std::string source) : source_(std::move(source)) {}

  Error Fail(const YAML::Node& n, const std::string& key, const std::string& what) const {
    return Error::BadRequest(source_ + ":" + std::to_string(n.Mark().line + 1) + ": " + key + ": " + what);
  }

  // Checks that `n` is a map whose keys are all in `allowed`.
  std::optional<Error> CheckMap(const YAML::Node& n, const std::string& where,
                                std::initializer_list<const char*> allowed) const {
    if (!n.IsMap()) return Fail(n, where, "must be a mapping");
    for (auto it = n.begin(); it != n.end(); ++it) {
      std::string k = it->first.Scalar();
      bool ok = false;
      for (const char* a : allowed) ok = ok || k == a;
      if (!ok) return Fail(it->first, where.empty() ? k : where + "." + k, "unknown key");
    }
    return std::nullopt;
  }

  std::optional<Error> Str(const YAML::Node& parent, const char* key, const std::string& where, std::string& out) const {
    YAML::Node n = parent[key];
    if (!n) return std::nullopt;
    if (!n.IsScalar()) return Fail(n, Join(where, key), "must be a string");
    out = n.Scalar();
    return std::nullopt;
  }

  std::optional<Error> Bool(const YAML::Node& parent, const char* key, const std::string& where, bool& out) const {
    YAML::Node n = parent[key];
    if (!n) return std::nullopt;
    if (!n.IsScalar() || (n.Scalar() != "true" && n.Scalar() != "false")) return Fail(n, Join(where, key), "must be true or false");
    out = n.Scalar() == "true";
    return std::nullopt;
  }

  template <typename Int>
  std::optional<Error> Integer(const YAML::Node& parent, const char* key, const std::string& where, Int& out,
                               long long min, long long max) const {
    YAML::Node n = parent[key];
    if (!n) return std::nullopt;
    long long v = 0;
    std::size_t used = 0;
    bool ok = n.IsScalar() && !n.Scalar().empty();
    if (ok) {
      try {
        v = std::stoll(n.Scalar(), &used);
      } catch (...) {
        ok = false;
      }
    }
    if (!ok || used != n.Scalar().size() || v < min || v > max) {
      return Fail(n, Join(where, key), "must be an integer from " + std::to_string(min) + " to " + std::to_string(max));
    }
    out = static_cast<Int>(v);
    return std::nullopt;
  }

  std::optional<Error> StrList(const YAML::Node& parent, const char* key, const std::string& where,
                               std::vector<std::string>& out) const {
    YAML::Node n = parent[key];
    if (!n) return std::nullopt;
    if (!n.IsSequence()) return Fail(n, Join(where, key), "must be a list of strings");
    out.clear();
    for (const auto& item : n) {
      if (!item.IsScalar()) return Fail(item, Join(where, key), "must be a list of strings");
      out.push_back(item.Scalar());
    }
    return std::nullopt;
  }

  std::optional<Error> Duration(const YAML::Node& parent, const char* key, const std::string& where,
                                std::int64_t& out_ms) const {
    YAML::Node n = parent[key];
    if (!n) return std::nullopt;
    if (!n.IsScalar()) return Fail(n, Join(where, key), "must be a duration such as 90d, 15m or 30s");
    if (n.Scalar() == "0") {
      out_ms = 0;
      return std::nullopt;
    }
    auto d = ParseDurationMillis(n.Scalar());
    if (!d) return Fail(n, Join(where, key), d.error().message);
    out_ms = *d;
    return std::nullopt;
  }

  static std::string Join(const std::string& where, const char* key) { return where.empty() ? key : where + "." + key; }

 private:
  std::string source_;
};

}  // namespace kubegate
