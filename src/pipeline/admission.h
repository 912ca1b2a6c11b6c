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

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "classify/request_info.h"
#include "common/result.h"
#include "config/config.h"
#include "identity/authenticator.h"
#include "policy/policy_holder.h"

namespace kubegate {

// The outcome of the decide stage: the gateway's built-in rules first
// (discovery always passes; --as only for callers allowed it in the
// config), then the policy. A review decision carries the rule (and the
// policy snapshot that owns it) for the approval stage.
struct Decision {
  enum class Action { kAllow, kDeny, kReview };
  Action action = Action::kAllow;
  std::string rule;     // what decided, for logs and audit
  std::string message;  // shown to the caller on denial
  // Forward the caller's own Impersonate-* headers instead of kubegate's.
  bool pass_caller_impersonation = false;
  std::shared_ptr<const Policy> policy;     // keeps `policy_rule` alive
  const PolicyRule* policy_rule = nullptr;  // the matching rule, if a rule matched
  const AutoApprover* auto_approver = nullptr;
};

// Discovery, version and OpenAPI documents: kubectl needs them to work at
// all, and a 403 there hides kubegate's message (WIRE.md §0), so no policy
// check ever refuses them.
bool IsDiscoveryRequest(const RequestInfo& info);

class Admission {
 public:
  explicit Admission(const Config& config);

  Result<Identity> Authenticate(const Credentials& creds, AuthNote* note = nullptr, bool allow_refresh = true) const {
    return authenticator_.Authenticate(creds, note, allow_refresh);
  }
  Result<Identity> Admit(Identity who, AuthNote* note) const { return authenticator_.Admit(std::move(who), note); }
  void SetOidc(const OidcAuthenticator* oidc) { authenticator_.SetOidc(oidc); }
  void SetServiceAccounts(const ServiceAccountAuthenticator* sa, const Clock& clock) {
    authenticator_.SetServiceAccounts(sa, clock);
  }
  void SetRuntimeTokens(const RuntimeTokens* tokens, const Clock& clock) {
    authenticator_.SetRuntimeTokens(tokens, clock);
  }
  Result<RequestInfo> Classify(std::string_view method, std::string_view target) const {
    return ClassifyRequest(method, target);
  }
  // `header` looks up request headers (auto-approvers may check one).
  // `snapshot` is the policy to decide with (null: the one in force now);
  // `namespace_labels` the labels of the request's namespace, when
  // NeedsNamespaceLabels said the decision depends on them.
  Decision Decide(const Identity& who, const RequestInfo& info, bool asks_impersonation,
                  const std::function<std::optional<std::string>(std::string_view)>& header = nullptr,
                  std::int64_t now_ms = 0, std::shared_ptr<const Policy> snapshot = nullptr,
                  const NamespaceLabels* namespace_labels = nullptr) const;
  // True when Decide's answer for this request (under `snapshot`) depends
  // on its namespace's labels, which the caller must then look up.
  bool NeedsNamespaceLabels(const Policy& snapshot, const Identity& who, const RequestInfo& info,
                            bool asks_impersonation) const;

  PolicyHolder& policy() { return policy_; }
  const PolicyHolder& policy() const { return policy_; }

 private:
  Authenticator authenticator_;
  PolicyHolder policy_;
};

// A fresh request id: "kg-", 12 hex digits of the wall clock's milliseconds,
// 20 random hex digits (80 bits). Unique across restarts and replicas; ids
// sort by the millisecond they were made in, which keeps the audit index on
// request ids appending at its end (TimeOrderedId).
std::string NewRequestId();

}  // namespace kubegate
