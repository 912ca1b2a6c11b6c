#include "pipeline/admission.h"

#include <openssl/rand.h>

namespace kubegate {

bool IsDiscoveryRequest(const RequestInfo& info) {
  if (info.is_resource_request) return false;
  if (info.verb != "get" && info.verb != "head") return false;
  const std::string& p = info.path;
  auto under = [&](std::string_view prefix) {
    return p == prefix || (p.size() > prefix.size() && p.compare(0, prefix.size(), prefix) == 0 && p[prefix.size()] == '/');
  };
  return under("/api") || under("/apis") || under("/openapi") || p == "/version" || p == "/version/";
}

Admission::Admission(const Config& config) : authenticator_(config.tokens, config.client_certs) {}

Decision Admission::Decide(const Identity& who, const RequestInfo& info, bool asks_impersonation) const {
  Decision d;
  if (asks_impersonation) {
    if (who.may_impersonate) {
      d.rule = "config:may_impersonate";
      d.pass_caller_impersonation = true;
      return d;
    }
    if (!IsDiscoveryRequest(info)) {
      d.action = Decision::Action::kDeny;
      d.rule = "builtin:impersonation";
      d.message = "kubegate: user \"" + who.user +
                  "\" may not impersonate (--as/--as-group); act as yourself, the cluster already sees you";
      return d;
    }
    // Discovery is answered as the caller; the impersonation headers are dropped.
  }
  d.rule = IsDiscoveryRequest(info) ? "builtin:discovery" : "builtin:allow";
  return d;
}

std::string NewRequestId() {
  unsigned char bytes[10];
  RAND_bytes(bytes, sizeof bytes);
  static const char* kHex = "0123456789abcdef";
  std::string id = "kg-";
  for (unsigned char b : bytes) {
    id.push_back(kHex[b >> 4]);
    id.push_back(kHex[b & 15]);
  }
  return id;
}

}  // namespace kubegate
