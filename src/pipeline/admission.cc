#include "pipeline/admission.h"

#include "common/clock.h"
#include "common/digest.h"

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

Admission::Admission(const Config& config)
    : authenticator_(config.tokens, config.client_certs), policy_(config.policy_file) {}

Decision Admission::Decide(const Identity& who, const RequestInfo& info, bool asks_impersonation,
                           const std::function<std::optional<std::string>(std::string_view)>& header,
                           std::int64_t now_ms, std::shared_ptr<const Policy> snapshot,
                           const NamespaceLabels* namespace_labels) const {
  Decision d;
  const bool discovery = IsDiscoveryRequest(info);
  if (asks_impersonation) {
    if (who.may_impersonate) {
      d.pass_caller_impersonation = true;
    } else if (!discovery) {
      d.action = Decision::Action::kDeny;
      d.rule = "builtin:impersonation";
      d.message = "kubegate: user \"" + who.user +
                  "\" may not impersonate (--as/--as-group); act as yourself, the cluster already sees you";
      return d;
    }
    // Discovery is answered as the caller; the impersonation headers are dropped.
  }
  if (discovery) {
    d.rule = "builtin:discovery";
    return d;
  }
  d.policy = snapshot ? std::move(snapshot) : policy_.Current();
  PolicyDecision p = d.policy->Evaluate(
      {&who, &info, asks_impersonation && who.may_impersonate, header, now_ms, namespace_labels});
  d.policy_rule = p.rule;
  d.auto_approver = p.auto_approver;
  d.message = p.message;
  if (!d.policy->configured()) {
    d.rule = d.pass_caller_impersonation ? "config:may_impersonate" : "builtin:allow";
  } else {
    d.rule = "policy:" + p.rule_name;
  }
  switch (p.action) {
    case PolicyAction::kAllow: d.action = Decision::Action::kAllow; break;
    case PolicyAction::kDeny:
      d.action = Decision::Action::kDeny;
      if (d.message.empty()) d.message = "kubegate: denied by policy rule \"" + p.rule_name + "\"";
      break;
    case PolicyAction::kReview: d.action = Decision::Action::kReview; break;
  }
  return d;
}

bool Admission::NeedsNamespaceLabels(const Policy& snapshot, const Identity& who, const RequestInfo& info,
                                     bool asks_impersonation) const {
  if (IsDiscoveryRequest(info) || (asks_impersonation && !who.may_impersonate)) return false;
  return snapshot.NeedsNamespaceLabels({&who, &info, asks_impersonation, nullptr, 0, nullptr});
}

std::string NewRequestId() { return TimeOrderedId("kg-", SystemClock().NowMillis(), 10); }

}  // namespace kubegate
