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

std::vector<std::pair<std::string, std::string>> ImpersonationHeaders(const Identity& who,
                                                                       std::string_view request_id,
                                                                       bool impersonate) {
  std::vector<std::pair<std::string, std::string>> out;
  if (!impersonate) return out;
  out.emplace_back("Impersonate-User", who.user);
  for (const std::string& g : who.groups) out.emplace_back("Impersonate-Group", g);
  out.emplace_back(std::string(kRequestIdExtraHeader), std::string(request_id));
  return out;
}

}  // namespace kubegate
