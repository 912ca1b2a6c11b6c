#include "forward/header_rewrite.h"

#include <algorithm>
#include <cctype>

namespace kubegate {
namespace {

bool StartsWithNoCase(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() &&
         std::equal(prefix.begin(), prefix.end(), s.begin(), [](char a, char b) {
           return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
         });
}

bool EqualsNoCase(std::string_view a, std::string_view b) { return a.size() == b.size() && StartsWithNoCase(a, b); }

}  // namespace

bool IsRequestIdExtraHeader(std::string_view name) { return EqualsNoCase(name, kRequestIdExtraHeader); }

bool IsImpersonationHeader(std::string_view name) {
  return EqualsNoCase(name, "Impersonate-User") || EqualsNoCase(name, "Impersonate-Uid") ||
         EqualsNoCase(name, "Impersonate-Group") || StartsWithNoCase(name, "Impersonate-Extra-");
}

bool IsCredentialHeader(std::string_view name) {
  return EqualsNoCase(name, "Authorization") || EqualsNoCase(name, "Proxy-Authorization") ||
         IsImpersonationHeader(name) || StartsWithNoCase(name, "Impersonate-") ||
         EqualsNoCase(name, "X-Remote-User") || EqualsNoCase(name, "X-Remote-Group") ||
         StartsWithNoCase(name, "X-Remote-Extra-");
}

std::vector<std::string> ConnectionListedHeaders(std::string_view value) {
  std::vector<std::string> out;
  std::size_t at = 0;
  while (at <= value.size()) {
    std::size_t comma = value.find(',', at);
    std::string_view item = value.substr(at, comma == std::string_view::npos ? std::string_view::npos : comma - at);
    while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
    while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
    std::string name(item);
    std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
    if (!name.empty() && name != "close" && name != "keep-alive" && name != "upgrade" &&
        std::find(out.begin(), out.end(), name) == out.end()) {
      out.push_back(std::move(name));
    }
    if (comma == std::string_view::npos) break;
    at = comma + 1;
  }
  return out;
}

std::vector<std::pair<std::string, std::string>> ImpersonationHeaders(const Identity& who,
                                                                       std::string_view request_id,
                                                                       bool impersonate) {
  std::vector<std::pair<std::string, std::string>> out;
  if (!impersonate) return out;
  out.reserve(who.groups.size() + 4);  // user, groups, request id, method, task: one allocation
  out.emplace_back("Impersonate-User", who.user);
  for (const std::string& g : who.groups) out.emplace_back("Impersonate-Group", g);
  out.emplace_back(std::string(kRequestIdExtraHeader), std::string(request_id));
  out.emplace_back(std::string(kAuthMethodExtraHeader), AuthMethodName(who.method));
  if (!who.task.empty()) out.emplace_back(std::string(kTaskExtraHeader), who.task);
  return out;
}

}  // namespace kubegate
