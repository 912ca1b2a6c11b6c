// Admission: the stages a request passes before kubegate forwards it, in
// order: authenticate -> classify -> decide. The network layer
// (net/gateway_server.cc) calls these and then forwards, so the whole
// request flow reads in one place there; everything here is plain C++.
//
//   Admission adm(config);
//   auto id = adm.Authenticate(creds);            // 401 on failure
//   auto info = adm.Classify(method, target);     // 400 on failure
//   auto d = adm.Decide(*id, *info, asks_impersonation);  // 403 on denial
#pragma once

#include <string>
#include <string_view>

#include "classify/request_info.h"
#include "common/result.h"
#include "config/config.h"
#include "identity/authenticator.h"

namespace kubegate {

// The outcome of the decide stage. Later issues add review (hold) and the
// policy rule that matched; for now a request is allowed unless it asks to
// impersonate without permission.
struct Decision {
  enum class Action { kAllow, kDeny };
  Action action = Action::kAllow;
  std::string rule;     // what decided, for logs and audit
  std::string message;  // shown to the caller on denial
  // Forward the caller's own Impersonate-* headers instead of kubegate's.
  bool pass_caller_impersonation = false;
};

// Discovery, version and OpenAPI documents: kubectl needs them to work at
// all, and a 403 there hides kubegate's message (WIRE.md §0), so no policy
// check ever refuses them.
bool IsDiscoveryRequest(const RequestInfo& info);

class Admission {
 public:
  explicit Admission(const Config& config);

  Result<Identity> Authenticate(const Credentials& creds) const { return authenticator_.Authenticate(creds); }
  Result<RequestInfo> Classify(std::string_view method, std::string_view target) const {
    return ClassifyRequest(method, target);
  }
  Decision Decide(const Identity& who, const RequestInfo& info, bool asks_impersonation) const;

 private:
  Authenticator authenticator_;
};

// A fresh request id ("kg-" + 20 hex digits), unique across restarts.
std::string NewRequestId();

}  // namespace kubegate
