// Reads request targets and query strings exactly as Go's net/url does for
// kube-apiserver (see shared/kubectl-wire/WIRE.md §9), so kubegate sees the
// same path and parameters the API server will.
//
//   auto t = ParseRequestTarget("/api/v1/pods?watch=1");
//   if (!t) return t.error();            // 400, as Go's server answers
//   QueryValues q = ParseQuery(t->raw_query);
//   q.First("watch");                    // "1"
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"

namespace kubegate {

struct RequestTarget {
  std::string path;       // percent-decoded once, like url.URL.Path
  std::string raw_query;  // as sent, without the '?'
};

// Parses an origin-form ("/p?q") or absolute-form ("scheme://host/p?q",
// "x:/p") request target as url.ParseRequestURI does. Fails (400) where Go
// fails, and also for opaque targets ("x:foo") that Go would route with an
// empty path: kubegate refuses those rather than guess.
Result<RequestTarget> ParseRequestTarget(std::string_view target);

// Decodes one path; invalid %-escapes fail.
Result<std::string> PathUnescape(std::string_view s);
// Decodes one query component ('+' is a space); invalid %-escapes fail.
std::optional<std::string> QueryUnescape(std::string_view s);

// url.Values in arrival order. Pairs that Go drops (containing ';', or with
// an invalid escape) are absent; keys are decoded.
class QueryValues {
 public:
  void Add(std::string key, std::string value) { pairs_.emplace_back(std::move(key), std::move(value)); }
  bool Has(std::string_view key) const;
  // The first value for key, as Go's Values.Get and the API's converters use.
  std::optional<std::string> First(std::string_view key) const;
  std::vector<std::string> All(std::string_view key) const;
  const std::vector<std::pair<std::string, std::string>>& pairs() const { return pairs_; }

 private:
  std::vector<std::pair<std::string, std::string>> pairs_;
};

QueryValues ParseQuery(std::string_view raw_query);

// strings.Split(strings.Trim(path, "/"), "/"): how kube-apiserver's
// RequestInfo and go-restful's router cut a path. An inner "//" is an empty
// segment; "" and "/" give no segments.
std::vector<std::string> SplitPathSegments(std::string_view path);

}  // namespace kubegate
