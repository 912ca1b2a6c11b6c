#include "classify/go_url.h"

#include <algorithm>

namespace kubegate {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::optional<std::string> Unescape(std::string_view s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '%') {
      if (i + 2 >= s.size()) return std::nullopt;
      int hi = HexValue(s[i + 1]);
      int lo = HexValue(s[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out.push_back(' ');
    } else {
      out.push_back(c);
    }
  }
  return out;
}

bool IsCtl(unsigned char c) { return c < 0x20 || c == 0x7f; }

// Go's getScheme: returns the scheme length (0 when there is none), or -1
// for "missing protocol scheme" (a leading ':').
int SchemeLength(std::string_view s) {
  for (std::size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) continue;
    if ((c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.') {
      if (i == 0) return 0;
      continue;
    }
    if (c == ':') return i == 0 ? -1 : static_cast<int>(i);
    return 0;
  }
  return 0;
}

// A conservative subset of what Go's parseAuthority accepts: kubegate
// refuses anything unusual in an absolute-form target's authority.
bool PlainAuthority(std::string_view a) {
  for (char c : a) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-' || c == ':' || c == '[' || c == ']' || c == '_';
    if (!ok) return false;
  }
  return true;
}

}  // namespace

Result<std::string> PathUnescape(std::string_view s) {
  auto r = Unescape(s, false);
  if (!r) return Error::BadRequest("invalid URL escape in path");
  return std::move(*r);
}

std::optional<std::string> QueryUnescape(std::string_view s) { return Unescape(s, true); }

Result<RequestTarget> ParseRequestTarget(std::string_view raw) {
  for (unsigned char c : raw) {
    if (IsCtl(c) || c == ' ') return Error::BadRequest("invalid character in request target");
  }
  if (raw.empty()) return Error::BadRequest("empty request target");
  if (raw == "*") return Error::BadRequest("asterisk-form request target is not served");
  int scheme_len = SchemeLength(raw);
  if (scheme_len < 0) return Error::BadRequest("missing protocol scheme");
  std::string_view rest = raw.substr(scheme_len == 0 ? 0 : scheme_len + 1);
  RequestTarget out;
  std::size_t q = rest.find('?');
  if (q != std::string_view::npos) {
    out.raw_query = std::string(rest.substr(q + 1));
    rest = rest.substr(0, q);
  }
  if (rest.empty() || rest[0] != '/') {
    if (scheme_len > 0) return Error::BadRequest("opaque request target is not served");
    return Error::BadRequest("invalid URI for request");
  }
  if (scheme_len > 0 && rest.substr(0, 2) == "//") {
    std::string_view authority = rest.substr(2);
    std::size_t slash = authority.find('/');
    rest = slash == std::string_view::npos ? std::string_view() : authority.substr(slash);
    authority = authority.substr(0, slash);
    if (!PlainAuthority(authority)) return Error::BadRequest("invalid host in request target");
  }
  auto path = PathUnescape(rest);
  if (!path) return path.error();
  out.path = std::move(*path);
  return out;
}

bool QueryValues::Has(std::string_view key) const {
  for (const auto& [k, v] : pairs_) {
    if (k == key) return true;
  }
  return false;
}

std::optional<std::string> QueryValues::First(std::string_view key) const {
  for (const auto& [k, v] : pairs_) {
    if (k == key) return v;
  }
  return std::nullopt;
}

std::vector<std::string> QueryValues::All(std::string_view key) const {
  std::vector<std::string> out;
  for (const auto& [k, v] : pairs_) {
    if (k == key) out.push_back(v);
  }
  return out;
}

QueryValues ParseQuery(std::string_view raw) {
  QueryValues values;
  while (!raw.empty()) {
    std::size_t amp = raw.find('&');
    std::string_view pair = raw.substr(0, amp);
    raw = amp == std::string_view::npos ? std::string_view() : raw.substr(amp + 1);
    if (pair.find(';') != std::string_view::npos || pair.empty()) continue;
    std::size_t eq = pair.find('=');
    std::string_view k = pair.substr(0, eq);
    std::string_view v = eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1);
    auto key = QueryUnescape(k);
    if (!key) continue;
    auto value = QueryUnescape(v);
    if (!value) continue;
    values.Add(std::move(*key), std::move(*value));
  }
  return values;
}

std::vector<std::string> SplitPathSegments(std::string_view path) {
  std::size_t b = 0, e = path.size();
  while (b < e && path[b] == '/') ++b;
  while (e > b && path[e - 1] == '/') --e;
  std::vector<std::string> parts;
  if (b == e) return parts;
  std::string_view s = path.substr(b, e - b);
  parts.reserve(static_cast<std::size_t>(std::count(s.begin(), s.end(), '/')) + 1);  // one allocation
  std::size_t start = 0;
  while (true) {
    std::size_t slash = s.find('/', start);
    parts.emplace_back(s.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start));
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return parts;
}

}  // namespace kubegate
