// Policy: who may do what, decided outside the caller's control. Ordered
// rules in YAML (the shape of RBAC and the audit policy), first match wins,
// with an explicit default. Each rule allows, denies (with a message for the
// user), or sends the request to review: held at the gateway (or answered at
// once) until enough approvers agree, within limits the rule sets.
//
//   auto policy = Policy::Parse(yaml_text, "policy.yaml");   // FILE:LINE: problems
//   PolicyDecision d = (*policy)->Evaluate({who, info, headers, now_ms});
//   if (d.action == PolicyAction::kReview) { ... d.rule->review ... }
//
// Documented in docs/policy.md; the shipped defaults are examples/policy.yaml.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "classify/request_info.h"
#include "common/result.h"
#include "identity/identity.h"

namespace re2 {
class RE2;
}

namespace kubegate {

enum class PolicyAction { kAllow, kDeny, kReview };
const char* PolicyActionName(PolicyAction a);

// The labels of a namespace, as the API server reports them.
using NamespaceLabels = std::map<std::string, std::string>;

// One requirement of a label selector (metav1.LabelSelector semantics):
// matchLabels {k: v} is `k In [v]`.
struct LabelRequirement {
  enum class Op { kIn, kNotIn, kExists, kDoesNotExist };
  std::string key;
  Op op = Op::kIn;
  std::vector<std::string> values;
};

// What a rule matches. Empty lists match anything; every set field must match.
struct RuleMatch {
  std::vector<std::string> users, groups, kinds;  // subjects (any of users/groups/kinds listed)
  std::vector<std::string> verbs;
  std::vector<std::string> api_groups;            // "" is the core group
  std::vector<std::string> resources;             // "pods", "pods/exec", "*/scale", "pods/*", "*"
  std::vector<std::string> namespaces;            // globs: "prod*"
  // namespaceSelector: the labels of the request's namespace (for a
  // Namespace object, its own) meet every requirement. A request without a
  // namespace never matches a rule with a selector.
  std::vector<LabelRequirement> namespace_selector;
  std::vector<std::string> names;                 // globs
  std::vector<std::string> command_prefix;        // exec argv starts with these words
  std::string command_regex;                      // RE2, full match against argv joined by spaces
  std::shared_ptr<const re2::RE2> command_re;
  std::optional<bool> dry_run;
  std::optional<bool> cluster_scoped;             // the target has no namespace
  std::optional<bool> impersonation;              // the caller sent Impersonate-* (kubectl --as)
  // task: "required" (the caller acts under a per-task token), "none" (it
  // does not), or globs of task ids (required, and one of them).
  std::optional<bool> task_present;
  std::vector<std::string> tasks;
  bool non_resource = false;                      // match non-resource paths (with `paths`)
  std::vector<std::string> paths;                 // globs on non-resource paths
};

// A condition under which the gateway approves a review by itself; every
// set field must hold. Recorded as an approval by "policy:RULE/NAME".
struct AutoApprover {
  std::string name;
  std::vector<std::string> kinds;       // human / agent
  std::vector<std::string> users;
  int from_minute_utc = -1;             // time window "09:00-17:30" (UTC), -1: any time
  int to_minute_utc = -1;
  std::vector<int> weekdays;            // 0 = Sunday .. 6; empty: every day
  std::vector<std::string> name_prefixes;
  std::string header;                   // a request header that must be present ...
  std::string header_regex;             // ... and fully match this RE2
  std::shared_ptr<const re2::RE2> header_re;
};

struct ReviewSpec {
  std::vector<std::string> approver_users, approver_groups;
  int approvals = 1;                    // distinct people needed
  bool allow_self_approval = false;     // never by default
  std::vector<std::string> no_self_approval_groups;  // with allow_self_approval: these still may not
  std::int64_t max_wait_ms = 15 * 60'000;
  std::int64_t default_grant_ms = 0;    // 0: the grant covers the one request (single use, short)
  std::int64_t max_grant_ms = 60 * 60'000;
  bool hold = true;                     // false: answer 403 at once with instructions
  std::vector<AutoApprover> auto_approve;
};

struct PolicyRule {
  std::string name;
  int line = 0;
  RuleMatch match;
  PolicyAction action = PolicyAction::kAllow;
  std::string message;
  ReviewSpec review;  // action == kReview
  // Record the (redacted) bodies of the writes this rule matches in their
  // audit records (audit.requestBodies in YAML).
  bool audit_request_bodies = false;
  // Session recording of the exec/attach/port-forward it matches
  // (recording: in YAML). Required: a session that cannot be recorded is
  // refused, or ended when its recording fails. Stdin may be left out.
  bool recording_required = false;
  enum class Stdin { kRecord, kOmit, kRedact };  // YAML: record | omit | redact
  Stdin recording_stdin = Stdin::kRecord;
  bool recording_portforward_payload = false;
};

// What the policy sees of a request.
struct PolicyInput {
  const Identity* who = nullptr;
  const RequestInfo* info = nullptr;
  bool impersonation = false;
  // Request header lookup (case-insensitive name); nullopt when absent.
  std::function<std::optional<std::string>(std::string_view)> header;
  std::int64_t now_ms = 0;
  // The labels of info->namespace_, when the caller looked them up (see
  // Policy::NeedsNamespaceLabels); null reads as "no labels".
  const NamespaceLabels* namespace_labels = nullptr;
};

struct PolicyDecision {
  PolicyAction action = PolicyAction::kAllow;
  const PolicyRule* rule = nullptr;  // null: the default
  std::string rule_name;             // "RULE" or "default"
  std::string message;
  // For review: the auto-approver whose conditions hold, if any.
  const AutoApprover* auto_approver = nullptr;
};

// A finding of `kubegate policy check`.
struct PolicyFinding {
  int line = 0;
  std::string message;
  bool error = false;
};

class Policy {
 public:
  static Result<std::shared_ptr<const Policy>> Parse(const std::string& yaml_text, const std::string& source);
  static Result<std::shared_ptr<const Policy>> Load(const std::string& path);
  // Allows everything not refused by the gateway's built-in rules; used
  // when no policy file is configured.
  static std::shared_ptr<const Policy> AllowAll();

  PolicyDecision Evaluate(const PolicyInput& in) const;
  // True when the decision for `in` depends on the labels of its namespace:
  // the first rule that matches it, ignoring namespace selectors, has one.
  // The gateway then looks the labels up before calling Evaluate; requests
  // decided by earlier rules (reads, say) cost no lookup.
  bool NeedsNamespaceLabels(const PolicyInput& in) const;
  // What `kubegate policy check` reports, errors first:
  //  - unreachable rules (an earlier rule matches all they match);
  //  - an earlier rule that protects less (allow < review < deny) overlapping
  //    a later one, except an earlier allow of dry runs; an earlier rule that
  //    protects more is what the author meant, and is not reported;
  //  - a selector rule whose protection a request this policy allows can
  //    switch off (changing namespace labels without review);
  //  - a rule on exec/attach/portforward whose verbs leave out create.
  std::vector<PolicyFinding> Check() const;

  const std::vector<PolicyRule>& rules() const { return rules_; }
  PolicyAction default_action() const { return default_action_; }
  const std::string& source() const { return source_; }
  // False for AllowAll(): no policy file was configured.
  bool configured() const { return configured_; }

 private:
  std::vector<PolicyFinding> CheckPairs() const;

  std::string source_;
  std::vector<PolicyRule> rules_;
  PolicyAction default_action_ = PolicyAction::kAllow;
  std::string default_message_;
  bool configured_ = true;
  bool has_namespace_selectors_ = false;  // any rule has one (else no lookup is ever needed)
};

bool RuleMatches(const RuleMatch& m, const PolicyInput& in);
bool SelectorMatches(const std::vector<LabelRequirement>& selector, const NamespaceLabels& labels);
bool AutoApproverHolds(const AutoApprover& a, const PolicyInput& in);
// Shell-style glob: '*' any run, '?' one character.
bool GlobMatch(std::string_view pattern, std::string_view text);

}  // namespace kubegate
