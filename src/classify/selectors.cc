#include "classify/selectors.h"

#include <algorithm>
#include <cstdint>
#include <vector>

namespace kubegate {
namespace {

// splitTerms: commas not escaped by a backslash separate terms.
std::vector<std::string> SplitTerms(std::string_view s) {
  std::vector<std::string> terms;
  std::string cur;
  bool escaped = false;
  for (char c : s) {
    if (escaped) {
      cur.push_back(c);
      escaped = false;
    } else if (c == '\\') {
      cur.push_back(c);
      escaped = true;
    } else if (c == ',') {
      terms.push_back(std::move(cur));
      cur.clear();
    } else {
      cur.push_back(c);
    }
  }
  terms.push_back(std::move(cur));
  return terms;
}

std::optional<std::string> UnescapeFieldValue(std::string_view s) {
  std::string out;
  bool in_slash = false;
  for (char c : s) {
    if (in_slash) {
      if (c != '\\' && c != ',' && c != '=') return std::nullopt;
      out.push_back(c);
      in_slash = false;
      continue;
    }
    if (c == '\\') {
      in_slash = true;
    } else if (c == ',' || c == '=') {
      return std::nullopt;
    } else {
      out.push_back(c);
    }
  }
  if (in_slash) return std::nullopt;
  return out;
}

bool IsAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); }

// IsValidLabelValue / the name part of a qualified name: at most 63
// characters, alphanumeric at both ends, [-_.a-zA-Z0-9] inside.
bool IsLabelValue(std::string_view v, bool allow_empty) {
  if (v.empty()) return allow_empty;
  if (v.size() > 63 || !IsAlnum(v.front()) || !IsAlnum(v.back())) return false;
  return std::all_of(v.begin(), v.end(), [](char c) { return IsAlnum(c) || c == '-' || c == '_' || c == '.'; });
}

// DNS-1123 subdomain: lower-case labels of [a-z0-9-] joined by dots.
bool IsDnsSubdomain(std::string_view v) {
  if (v.empty() || v.size() > 253) return false;
  std::size_t start = 0;
  while (true) {
    std::size_t dot = v.find('.', start);
    std::string_view label = v.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (label.empty() || label.front() == '-' || label.back() == '-') return false;
    for (char c : label) {
      if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
    }
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}

bool IsQualifiedName(std::string_view key) {
  std::size_t slash = key.find('/');
  if (slash == std::string_view::npos) return IsLabelValue(key, false);
  if (key.find('/', slash + 1) != std::string_view::npos) return false;
  return IsDnsSubdomain(key.substr(0, slash)) && IsLabelValue(key.substr(slash + 1), false);
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Splits a label selector on commas that are not inside parentheses.
std::optional<std::vector<std::string_view>> SplitRequirements(std::string_view s) {
  std::vector<std::string_view> out;
  int depth = 0;
  std::size_t start = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '(') {
      if (++depth > 1) return std::nullopt;
    } else if (s[i] == ')') {
      if (--depth < 0) return std::nullopt;
    } else if (s[i] == ',' && depth == 0) {
      out.push_back(s.substr(start, i - start));
      start = i + 1;
    }
  }
  if (depth != 0) return std::nullopt;
  out.push_back(s.substr(start));
  return out;
}

Verdict CheckRequirement(std::string_view req) {
  req = Trim(req);
  if (req.empty()) return Verdict::kInvalid;
  if (req.front() == '!') {
    return IsQualifiedName(Trim(req.substr(1))) ? Verdict::kValid : Verdict::kUnsure;
  }
  for (std::string_view op : {"!=", "==", "="}) {
    std::size_t at = req.find(op);
    if (at == std::string_view::npos) continue;
    std::string_view key = Trim(req.substr(0, at));
    std::string_view value = Trim(req.substr(at + op.size()));
    if (IsQualifiedName(key) && IsLabelValue(value, true)) return Verdict::kValid;
    return Verdict::kUnsure;
  }
  for (char op : {'<', '>'}) {
    std::size_t at = req.find(op);
    if (at == std::string_view::npos) continue;
    std::string_view key = Trim(req.substr(0, at));
    std::string_view value = Trim(req.substr(at + 1));
    return IsQualifiedName(key) && ParsesAsInt64(value) ? Verdict::kValid : Verdict::kUnsure;
  }
  std::size_t space = req.find_first_of(" \t");
  if (space == std::string_view::npos) {
    return IsQualifiedName(req) ? Verdict::kValid : Verdict::kUnsure;
  }
  std::string_view key = req.substr(0, space);
  std::string_view rest = Trim(req.substr(space));
  std::string_view set;
  if (rest.substr(0, 5) == "notin") {
    set = Trim(rest.substr(5));
  } else if (rest.substr(0, 2) == "in") {
    set = Trim(rest.substr(2));
  } else {
    return Verdict::kUnsure;
  }
  if (!IsQualifiedName(key) || set.size() < 3 || set.front() != '(' || set.back() != ')') return Verdict::kUnsure;
  set = set.substr(1, set.size() - 2);
  std::size_t start = 0;
  while (true) {
    std::size_t comma = set.find(',', start);
    std::string_view v = Trim(set.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start));
    if (!IsLabelValue(v, false)) return Verdict::kUnsure;
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return Verdict::kValid;
}

}  // namespace

FieldSelectorName ExactNameFromFieldSelector(std::string_view selector) {
  FieldSelectorName out;
  std::vector<std::string> terms = SplitTerms(selector);
  std::sort(terms.begin(), terms.end());
  for (const std::string& term : terms) {
    if (term.empty()) continue;
    std::string lhs, op, rhs;
    bool found = false;
    for (std::size_t i = 0; i < term.size() && !found; ++i) {
      for (const char* candidate : {"!=", "==", "="}) {
        std::string_view cand(candidate);
        if (std::string_view(term).substr(i, cand.size()) == cand) {
          lhs = term.substr(0, i);
          op = cand;
          rhs = term.substr(i + cand.size());
          found = true;
          break;
        }
      }
    }
    if (!found) return out;
    auto value = UnescapeFieldValue(rhs);
    if (!value) return out;
    if (op != "!=" && lhs == "metadata.name" && !out.name) out.name = std::move(*value);
  }
  out.parsed = true;
  if (!out.name) out.name = std::string();
  return out;
}

Verdict CheckLabelSelector(std::string_view selector) {
  if (Trim(selector).empty()) return Verdict::kValid;
  auto reqs = SplitRequirements(selector);
  if (!reqs) return Verdict::kUnsure;
  for (std::string_view r : *reqs) {
    Verdict v = CheckRequirement(r);
    if (v != Verdict::kValid) return v == Verdict::kInvalid ? Verdict::kUnsure : v;
  }
  return Verdict::kValid;
}

bool IsValidPathSegmentName(std::string_view name) {
  if (name == "." || name == "..") return false;
  return name.find('/') == std::string_view::npos && name.find('%') == std::string_view::npos;
}

bool ParsesAsInt64(std::string_view s) {
  if (s.empty()) return false;
  bool negative = false;
  if (s.front() == '+' || s.front() == '-') {
    negative = s.front() == '-';
    s.remove_prefix(1);
    if (s.empty()) return false;
  }
  std::uint64_t limit = negative ? (std::uint64_t{1} << 63) : (std::uint64_t{1} << 63) - 1;
  std::uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    std::uint64_t d = static_cast<std::uint64_t>(c - '0');
    if (v > (limit - d) / 10) return false;
    v = v * 10 + d;
  }
  return true;
}

}  // namespace kubegate
