#include "policy/namespace_labels.h"

#include <nlohmann/json.hpp>

#include "common/json_fields.h"

namespace kubegate {

std::optional<NamespaceLabels> NamespaceLabelCache::Lookup(const std::string& ns, std::int64_t now_ms) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(ns);
  if (it == entries_.end() || now_ms - it->second.stored_ms >= ttl_ms_ || now_ms < it->second.stored_ms) {
    return std::nullopt;
  }
  return it->second.labels;
}

void NamespaceLabelCache::Store(const std::string& ns, NamespaceLabels labels, std::int64_t now_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  if (auto it = entries_.find(ns); it != entries_.end()) {
    order_.erase(it->second.order);
    entries_.erase(it);
  }
  while (!order_.empty() && entries_.size() >= max_entries_) {
    entries_.erase(order_.back());
    order_.pop_back();
  }
  order_.push_front(ns);
  entries_[ns] = Entry{std::move(labels), now_ms, order_.begin()};
}

void NamespaceLabelCache::Forget(const std::string& ns) {
  std::lock_guard<std::mutex> lock(mu_);
  if (auto it = entries_.find(ns); it != entries_.end()) {
    order_.erase(it->second.order);
    entries_.erase(it);
  }
}

bool IsDns1123Label(std::string_view s) {
  if (s.empty() || s.size() > 63) return false;
  auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  for (char c : s) {
    if (!alnum(c) && c != '-') return false;
  }
  return alnum(s.front()) && alnum(s.back());
}

Result<NamespaceLabels> ParseNamespaceLabels(std::string_view body) {
  auto j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return Error::BadGateway("the API server's Namespace is not a JSON object");
  if (StringField(j, "kind") != "Namespace") return Error::BadGateway("the API server did not answer with a Namespace");
  NamespaceLabels out;
  auto meta = j.find("metadata");
  if (meta == j.end() || !meta->is_object()) return out;
  auto labels = meta->find("labels");
  if (labels == meta->end() || labels->is_null()) return out;
  if (!labels->is_object()) return Error::BadGateway("the Namespace's metadata.labels is not a mapping");
  for (const auto& [k, v] : labels->items()) {
    if (!v.is_string()) return Error::BadGateway("the Namespace's label " + k + " is not a string");
    out[k] = v.get<std::string>();
  }
  return out;
}

}  // namespace kubegate
