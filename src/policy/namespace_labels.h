// NamespaceLabelCache: the labels of namespaces, for policy rules with a
// namespaceSelector. The gateway reads them from the API server with its
// own credential (GET /api/v1/namespaces/NAME) and keeps each answer for a
// short time, so a label change takes effect within kNamespaceLabelTtl.
// A namespace that does not exist has no labels (cached as such). Thread
// safe: every worker thread shares one cache.
//
//   if (auto labels = cache.Lookup(ns, now_ms)) { ...decide with *labels... }
//   else { fetch; cache.Store(ns, ParseNamespaceLabels(body), now_ms); }
#pragma once

#include <cstdint>
#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "common/result.h"
#include "policy/policy.h"

namespace kubegate {

class NamespaceLabelCache {
 public:
  NamespaceLabelCache(std::int64_t ttl_ms, std::size_t max_entries) : ttl_ms_(ttl_ms), max_entries_(max_entries) {}

  // The labels stored for `ns` within the last ttl, if any.
  std::optional<NamespaceLabels> Lookup(const std::string& ns, std::int64_t now_ms) const;
  // Stores an answer; the least recently stored entry goes when full.
  void Store(const std::string& ns, NamespaceLabels labels, std::int64_t now_ms);
  // Drops what is stored for `ns`: its labels may have changed (kubegate
  // forwarded a write to that Namespace), so the next decision reads them.
  void Forget(const std::string& ns);

 private:
  struct Entry {
    NamespaceLabels labels;
    std::int64_t stored_ms = 0;
    std::list<std::string>::iterator order;
  };
  const std::int64_t ttl_ms_;
  const std::size_t max_entries_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, Entry> entries_;
  std::list<std::string> order_;  // front: most recently stored
};

// A Kubernetes namespace name: at most 63 of [a-z0-9-], alphanumeric at
// both ends.
bool IsDns1123Label(std::string_view s);

// metadata.labels of a Namespace object (JSON) from the API server. Labels
// whose values are not strings make the object invalid.
Result<NamespaceLabels> ParseNamespaceLabels(std::string_view json_body);

}  // namespace kubegate
