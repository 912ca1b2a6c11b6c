#include "policy/policy.h"

#include <algorithm>
#include <ctime>
#include <fstream>
#include <sstream>

#include <re2/re2.h>

#include "config/yaml_reader.h"

namespace kubegate {
namespace {

bool AnyOf(const std::vector<std::string>& list, std::string_view v) {
  return std::find(list.begin(), list.end(), v) != list.end();
}

bool AnyGlob(const std::vector<std::string>& globs, std::string_view v) {
  for (const auto& g : globs) {
    if (GlobMatch(g, v)) return true;
  }
  return false;
}

// "pods/exec" against "pods/exec", "pods/*", "*/exec", "*"; "pods" matches
// only requests without a subresource unless written "pods/*".
bool ResourceMatches(const std::vector<std::string>& patterns, const RequestInfo& info) {
  for (const auto& p : patterns) {
    if (p == "*") return true;
    auto slash = p.find('/');
    if (slash == std::string::npos) {
      if (info.subresource.empty() && GlobMatch(p, info.resource)) return true;
      continue;
    }
    if (info.subresource.empty()) continue;
    if (GlobMatch(p.substr(0, slash), info.resource) && GlobMatch(p.substr(slash + 1), info.subresource)) return true;
  }
  return false;
}

std::string Joined(const std::vector<std::string>& argv) {
  std::string out;
  for (const auto& a : argv) out += (out.empty() ? "" : " ") + a;
  return out;
}

Result<int> ParseClock(const std::string& s) {
  if (s.size() != 5 || s[2] != ':' || !isdigit(s[0]) || !isdigit(s[1]) || !isdigit(s[3]) || !isdigit(s[4])) {
    return Error::BadRequest("must be HH:MM");
  }
  int h = (s[0] - '0') * 10 + (s[1] - '0'), m = (s[3] - '0') * 10 + (s[4] - '0');
  if (h > 24 || m > 59 || (h == 24 && m != 0)) return Error::BadRequest("must be HH:MM");
  return h * 60 + m;
}

Result<PolicyAction> ParseAction(const std::string& s) {
  if (s == "allow") return PolicyAction::kAllow;
  if (s == "deny") return PolicyAction::kDeny;
  if (s == "review") return PolicyAction::kReview;
  return Error::BadRequest("must be allow, deny or review");
}

class PolicyParser {
 public:
  explicit PolicyParser(std::string source) : r_(source), source_(std::move(source)) {}

  std::optional<Error> Match(const YAML::Node& n, const std::string& where, RuleMatch& m) {
    KG_TRY(r_.CheckMap(n, where,
                       {"users", "groups", "kinds", "verbs", "apiGroups", "resources", "namespaces", "names",
                        "namespaceSelector", "command", "dryRun", "clusterScoped", "impersonation", "paths",
                        "task"}));
    KG_TRY(r_.StrList(n, "users", where, m.users));
    KG_TRY(r_.StrList(n, "groups", where, m.groups));
    KG_TRY(r_.StrList(n, "kinds", where, m.kinds));
    for (const auto& k : m.kinds) {
      if (k != "human" && k != "agent") return r_.Fail(n["kinds"], where + ".kinds", "must be human or agent");
    }
    KG_TRY(r_.StrList(n, "verbs", where, m.verbs));
    KG_TRY(r_.StrList(n, "apiGroups", where, m.api_groups));
    KG_TRY(r_.StrList(n, "resources", where, m.resources));
    KG_TRY(r_.StrList(n, "namespaces", where, m.namespaces));
    KG_TRY(r_.StrList(n, "names", where, m.names));
    KG_TRY(r_.StrList(n, "paths", where, m.paths));
    if (YAML::Node t = n["task"]) {
      std::string one = t.IsScalar() ? t.as<std::string>() : "";
      if (one == "required" || one == "none") {
        m.task_present = one == "required";
      } else {
        KG_TRY(r_.StrList(n, "task", where, m.tasks));
        if (m.tasks.empty()) return r_.Fail(t, where + ".task", "must be required, none, or task id globs");
        m.task_present = true;
      }
    }
    m.non_resource = !m.paths.empty();
    if (m.non_resource && (!m.resources.empty() || !m.namespaces.empty() || !m.names.empty() || !m.api_groups.empty())) {
      return r_.Fail(n["paths"], where + ".paths", "non-resource paths cannot be combined with resources/namespaces/names");
    }
    if (YAML::Node sel = n["namespaceSelector"]) KG_TRY(Selector(sel, where + ".namespaceSelector", m));
    if (YAML::Node c = n["command"]) {
      KG_TRY(r_.CheckMap(c, where + ".command", {"prefix", "regex"}));
      KG_TRY(r_.StrList(c, "prefix", where + ".command", m.command_prefix));
      KG_TRY(r_.Str(c, "regex", where + ".command", m.command_regex));
      if (!m.command_regex.empty()) {
        auto re = std::make_shared<re2::RE2>(m.command_regex, re2::RE2::Quiet);
        if (!re->ok()) return r_.Fail(c["regex"], where + ".command.regex", "invalid RE2: " + re->error());
        m.command_re = re;
      }
    }
    for (auto [key, field] : {std::pair{"dryRun", &m.dry_run}, std::pair{"clusterScoped", &m.cluster_scoped},
                              std::pair{"impersonation", &m.impersonation}}) {
      if (n[key]) {
        bool b = false;
        KG_TRY(r_.Bool(n, key, where, b));
        *field = b;
      }
    }
    return std::nullopt;
  }

  // namespaceSelector: {matchLabels: {k: v}, matchExpressions: [{key, operator, values}]}
  std::optional<Error> Selector(const YAML::Node& n, const std::string& where, RuleMatch& m) {
    KG_TRY(r_.CheckMap(n, where, {"matchLabels", "matchExpressions"}));
    if (YAML::Node ml = n["matchLabels"]) {
      if (!ml.IsMap()) return r_.Fail(ml, where + ".matchLabels", "must be a mapping of label to value");
      for (const auto& kv : ml) {
        if (!kv.second.IsScalar()) return r_.Fail(kv.second, where + ".matchLabels", "values must be strings");
        m.namespace_selector.push_back(
            {kv.first.as<std::string>(), LabelRequirement::Op::kIn, {kv.second.as<std::string>()}});
      }
    }
    if (YAML::Node me = n["matchExpressions"]) {
      if (!me.IsSequence()) return r_.Fail(me, where + ".matchExpressions", "must be a list");
      for (std::size_t i = 0; i < me.size(); ++i) {
        std::string w = where + ".matchExpressions[" + std::to_string(i) + "]";
        KG_TRY(r_.CheckMap(me[i], w, {"key", "operator", "values"}));
        LabelRequirement req;
        std::string op;
        KG_TRY(r_.Str(me[i], "key", w, req.key));
        KG_TRY(r_.Str(me[i], "operator", w, op));
        KG_TRY(r_.StrList(me[i], "values", w, req.values));
        if (req.key.empty()) return r_.Fail(me[i], w + ".key", "is required");
        if (op == "In") {
          req.op = LabelRequirement::Op::kIn;
        } else if (op == "NotIn") {
          req.op = LabelRequirement::Op::kNotIn;
        } else if (op == "Exists") {
          req.op = LabelRequirement::Op::kExists;
        } else if (op == "DoesNotExist") {
          req.op = LabelRequirement::Op::kDoesNotExist;
        } else {
          return r_.Fail(me[i], w + ".operator", "must be In, NotIn, Exists or DoesNotExist");
        }
        bool wants_values = req.op == LabelRequirement::Op::kIn || req.op == LabelRequirement::Op::kNotIn;
        if (wants_values == req.values.empty()) {
          return r_.Fail(me[i], w + ".values",
                         wants_values ? "In and NotIn need values" : "Exists and DoesNotExist take no values");
        }
        m.namespace_selector.push_back(std::move(req));
      }
    }
    if (m.namespace_selector.empty()) return r_.Fail(n, where, "needs matchLabels or matchExpressions");
    return std::nullopt;
  }

  std::optional<Error> Review(const YAML::Node& n, const std::string& where, ReviewSpec& s) {
    KG_TRY(r_.CheckMap(n, where,
                       {"approvers", "approvals", "allowSelfApproval", "noSelfApprovalGroups", "maxWait",
                        "defaultGrant", "maxGrant", "mode", "autoApprove"}));
    if (YAML::Node a = n["approvers"]) {
      KG_TRY(r_.CheckMap(a, where + ".approvers", {"users", "groups"}));
      KG_TRY(r_.StrList(a, "users", where + ".approvers", s.approver_users));
      KG_TRY(r_.StrList(a, "groups", where + ".approvers", s.approver_groups));
    }
    KG_TRY(r_.Integer(n, "approvals", where, s.approvals, 1, 10));
    KG_TRY(r_.Bool(n, "allowSelfApproval", where, s.allow_self_approval));
    KG_TRY(r_.StrList(n, "noSelfApprovalGroups", where, s.no_self_approval_groups));
    KG_TRY(r_.Duration(n, "maxWait", where, s.max_wait_ms));
    KG_TRY(r_.Duration(n, "defaultGrant", where, s.default_grant_ms));
    KG_TRY(r_.Duration(n, "maxGrant", where, s.max_grant_ms));
    std::string mode = "hold";
    KG_TRY(r_.Str(n, "mode", where, mode));
    if (mode != "hold" && mode != "answer") return r_.Fail(n["mode"], where + ".mode", "must be hold or answer");
    s.hold = mode == "hold";
    if (s.approver_users.empty() && s.approver_groups.empty() && !n["autoApprove"]) {
      return r_.Fail(n, where + ".approvers", "a review rule needs approvers (users or groups) or autoApprove");
    }
    if (s.max_wait_ms <= 0) return r_.Fail(n, where + ".maxWait", "must be more than 0");
    if (s.default_grant_ms > s.max_grant_ms) {
      return r_.Fail(n["defaultGrant"], where + ".defaultGrant", "must not exceed maxGrant");
    }
    if (YAML::Node aa = n["autoApprove"]) {
      if (!aa.IsSequence()) return r_.Fail(aa, where + ".autoApprove", "must be a list");
      for (std::size_t i = 0; i < aa.size(); ++i) {
        std::string w = where + ".autoApprove[" + std::to_string(i) + "]";
        const YAML::Node& e = aa[i];
        KG_TRY(r_.CheckMap(e, w, {"name", "kinds", "users", "hoursUTC", "weekdays", "namePrefixes", "header"}));
        AutoApprover a;
        KG_TRY(r_.Str(e, "name", w, a.name));
        if (a.name.empty()) return r_.Fail(e, w + ".name", "is required");
        KG_TRY(r_.StrList(e, "kinds", w, a.kinds));
        KG_TRY(r_.StrList(e, "users", w, a.users));
        KG_TRY(r_.StrList(e, "namePrefixes", w, a.name_prefixes));
        std::string hours;
        KG_TRY(r_.Str(e, "hoursUTC", w, hours));
        if (!hours.empty()) {
          auto dash = hours.find('-');
          auto from = ParseClock(hours.substr(0, dash));
          auto to = dash == std::string::npos ? Result<int>(Error::BadRequest("")) : ParseClock(hours.substr(dash + 1));
          if (!from || !to) return r_.Fail(e["hoursUTC"], w + ".hoursUTC", "must be HH:MM-HH:MM (UTC)");
          a.from_minute_utc = *from;
          a.to_minute_utc = *to;
        }
        std::vector<std::string> days;
        KG_TRY(r_.StrList(e, "weekdays", w, days));
        static const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
        for (const auto& d : days) {
          auto it = std::find(std::begin(kDays), std::end(kDays), d);
          if (it == std::end(kDays)) return r_.Fail(e["weekdays"], w + ".weekdays", "days are Sun, Mon, ... Sat");
          a.weekdays.push_back(static_cast<int>(it - std::begin(kDays)));
        }
        if (YAML::Node h = e["header"]) {
          KG_TRY(r_.CheckMap(h, w + ".header", {"name", "regex"}));
          KG_TRY(r_.Str(h, "name", w + ".header", a.header));
          KG_TRY(r_.Str(h, "regex", w + ".header", a.header_regex));
          if (a.header.empty()) return r_.Fail(h, w + ".header.name", "is required");
          auto re = std::make_shared<re2::RE2>(a.header_regex.empty() ? ".+" : a.header_regex, re2::RE2::Quiet);
          if (!re->ok()) return r_.Fail(h, w + ".header.regex", "invalid RE2: " + re->error());
          a.header_re = re;
        }
        s.auto_approve.push_back(std::move(a));
      }
    }
    return std::nullopt;
  }

  YamlReader r_;
  std::string source_;
};

}  // namespace

const char* PolicyActionName(PolicyAction a) {
  switch (a) {
    case PolicyAction::kAllow: return "allow";
    case PolicyAction::kDeny: return "deny";
    case PolicyAction::kReview: return "review";
  }
  return "allow";
}

bool GlobMatch(std::string_view p, std::string_view t) {
  std::size_t pi = 0, ti = 0, star = std::string_view::npos, mark = 0;
  while (ti < t.size()) {
    if (pi < p.size() && (p[pi] == '?' || p[pi] == t[ti])) {
      ++pi;
      ++ti;
    } else if (pi < p.size() && p[pi] == '*') {
      star = pi++;
      mark = ti;
    } else if (star != std::string_view::npos) {
      pi = star + 1;
      ti = ++mark;
    } else {
      return false;
    }
  }
  while (pi < p.size() && p[pi] == '*') ++pi;
  return pi == p.size();
}

bool SelectorMatches(const std::vector<LabelRequirement>& selector, const NamespaceLabels& labels) {
  for (const auto& r : selector) {
    auto it = labels.find(r.key);
    bool has = it != labels.end();
    switch (r.op) {
      case LabelRequirement::Op::kIn:
        if (!has || !AnyOf(r.values, it->second)) return false;
        break;
      case LabelRequirement::Op::kNotIn:
        if (has && AnyOf(r.values, it->second)) return false;
        break;
      case LabelRequirement::Op::kExists:
        if (!has) return false;
        break;
      case LabelRequirement::Op::kDoesNotExist:
        if (has) return false;
        break;
    }
  }
  return true;
}

namespace {

// RuleMatches, with the namespace selector checked or not.
bool MatchesRule(const RuleMatch& m, const PolicyInput& in, bool check_selector) {
  const Identity& who = *in.who;
  const RequestInfo& info = *in.info;
  bool subject_listed = !m.users.empty() || !m.groups.empty();
  if (subject_listed) {
    bool hit = AnyOf(m.users, who.user);
    for (const auto& g : who.groups) hit = hit || AnyOf(m.groups, g);
    if (!hit) return false;
  }
  if (!m.kinds.empty() && !AnyOf(m.kinds, IdentityKindName(who.kind))) return false;
  if (m.task_present && *m.task_present == who.task.empty()) return false;
  if (!m.tasks.empty() && !AnyGlob(m.tasks, who.task)) return false;
  // exec, attach and port-forward are authorized as `create` whatever the
  // transport: SPDY (kubectl <= 1.29) is a POST, and since 1.30 the API
  // server also requires create for the WebSocket GET (RequestInfo: get).
  // A rule written the RBAC way (create on pods/exec) matches both.
  const bool connect_create = info.stream != StreamKind::kNone && AnyOf(m.verbs, "create");
  if (!m.verbs.empty() && !AnyOf(m.verbs, info.verb) && !AnyOf(m.verbs, "*") && !connect_create) return false;
  if (m.impersonation && *m.impersonation != in.impersonation) return false;
  if (m.dry_run && *m.dry_run != info.dry_run) return false;
  if (m.non_resource) return !info.is_resource_request && AnyGlob(m.paths, info.path);
  if (!info.is_resource_request) {
    // Rules naming resources, namespaces or names do not apply to paths.
    if (!m.resources.empty() || !m.namespaces.empty() || !m.names.empty() || !m.api_groups.empty() ||
        m.cluster_scoped || !m.command_prefix.empty() || m.command_re || !m.namespace_selector.empty()) {
      return false;
    }
    return true;
  }
  if (!m.api_groups.empty() && !AnyOf(m.api_groups, info.api_group) && !AnyOf(m.api_groups, "*")) return false;
  if (!m.resources.empty() && !ResourceMatches(m.resources, info)) return false;
  if (!m.namespaces.empty() && !AnyGlob(m.namespaces, info.namespace_)) return false;
  if (!m.names.empty() && !AnyGlob(m.names, info.name)) return false;
  if (m.cluster_scoped && *m.cluster_scoped != info.namespace_.empty()) return false;
  if (!m.command_prefix.empty() || m.command_re) {
    if (!info.exec) return false;
    const auto& argv = info.exec->command;
    if (m.command_prefix.size() > argv.size() || !std::equal(m.command_prefix.begin(), m.command_prefix.end(), argv.begin())) {
      return false;
    }
    if (m.command_re && !re2::RE2::FullMatch(Joined(argv), *m.command_re)) return false;
  }
  if (!m.namespace_selector.empty()) {
    if (info.namespace_.empty()) return false;
    if (check_selector) {
      static const NamespaceLabels kNone;
      if (!SelectorMatches(m.namespace_selector, in.namespace_labels ? *in.namespace_labels : kNone)) return false;
    }
  }
  return true;
}

}  // namespace

bool RuleMatches(const RuleMatch& m, const PolicyInput& in) { return MatchesRule(m, in, true); }

bool AutoApproverHolds(const AutoApprover& a, const PolicyInput& in) {
  if (!a.kinds.empty() && !AnyOf(a.kinds, IdentityKindName(in.who->kind))) return false;
  if (!a.users.empty() && !AnyOf(a.users, in.who->user)) return false;
  if (a.from_minute_utc >= 0 || !a.weekdays.empty()) {
    std::time_t t = static_cast<std::time_t>(in.now_ms / 1000);
    std::tm tm{};
    gmtime_r(&t, &tm);
    int minute = tm.tm_hour * 60 + tm.tm_min;
    if (a.from_minute_utc >= 0) {
      bool inside = a.from_minute_utc <= a.to_minute_utc
                        ? minute >= a.from_minute_utc && minute < a.to_minute_utc
                        : minute >= a.from_minute_utc || minute < a.to_minute_utc;  // across midnight
      if (!inside) return false;
    }
    if (!a.weekdays.empty() && std::find(a.weekdays.begin(), a.weekdays.end(), tm.tm_wday) == a.weekdays.end()) {
      return false;
    }
  }
  if (!a.name_prefixes.empty()) {
    bool hit = false;
    for (const auto& p : a.name_prefixes) hit = hit || in.info->name.rfind(p, 0) == 0;
    if (!hit || in.info->name.empty()) return false;
  }
  if (!a.header.empty()) {
    auto v = in.header ? in.header(a.header) : std::nullopt;
    if (!v || !re2::RE2::FullMatch(*v, *a.header_re)) return false;
  }
  return true;
}

Result<std::shared_ptr<const Policy>> Policy::Parse(const std::string& text, const std::string& source) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    return Error::BadRequest(source + ":" + std::to_string(e.mark.line + 1) + ": invalid YAML: " + e.msg);
  }
  auto p = std::make_shared<Policy>();
  p->source_ = source;
  PolicyParser pp(source);
  YamlReader& r = pp.r_;
  if (!root || !root.IsMap()) return Error::BadRequest(source + ":1: a policy is a mapping with rules and default");
  KG_TRY(r.CheckMap(root, "", {"apiVersion", "kind", "default", "defaultMessage", "rules"}));
  std::string api_version, kind, def;
  KG_TRY(r.Str(root, "apiVersion", "", api_version));
  KG_TRY(r.Str(root, "kind", "", kind));
  if (api_version != "kubegate.io/v1" || kind != "Policy") {
    return r.Fail(root, "apiVersion", "must be apiVersion: kubegate.io/v1 with kind: Policy");
  }
  if (!root["default"]) return r.Fail(root, "default", "is required (allow or deny): say what happens when no rule matches");
  KG_TRY(r.Str(root, "default", "", def));
  auto action = ParseAction(def);
  if (!action || *action == PolicyAction::kReview) return r.Fail(root["default"], "default", "must be allow or deny");
  p->default_action_ = *action;
  KG_TRY(r.Str(root, "defaultMessage", "", p->default_message_));
  YAML::Node rules = root["rules"];
  if (rules && !rules.IsSequence()) return r.Fail(rules, "rules", "must be a list");
  for (std::size_t i = 0; rules && i < rules.size(); ++i) {
    const YAML::Node& n = rules[i];
    std::string where = "rules[" + std::to_string(i) + "]";
    KG_TRY(r.CheckMap(n, where, {"name", "match", "action", "message", "review", "audit", "recording"}));
    PolicyRule rule;
    rule.line = n.Mark().line + 1;
    KG_TRY(r.Str(n, "name", where, rule.name));
    if (rule.name.empty()) return r.Fail(n, where + ".name", "is required");
    for (const auto& other : p->rules_) {
      if (other.name == rule.name) return r.Fail(n, where + ".name", "duplicate rule name " + rule.name);
    }
    if (n["match"]) KG_TRY(pp.Match(n["match"], where + ".match", rule.match));
    std::string act;
    KG_TRY(r.Str(n, "action", where, act));
    auto a = ParseAction(act);
    if (!a) return r.Fail(n, where + ".action", a.error().message);
    rule.action = *a;
    KG_TRY(r.Str(n, "message", where, rule.message));
    if (YAML::Node a = n["audit"]) {
      KG_TRY(r.CheckMap(a, where + ".audit", {"requestBodies"}));
      KG_TRY(r.Bool(a, "requestBodies", where + ".audit", rule.audit_request_bodies));
    }
    if (YAML::Node rec = n["recording"]) {
      KG_TRY(r.CheckMap(rec, where + ".recording", {"required", "stdin", "portForwardPayload"}));
      KG_TRY(r.Bool(rec, "required", where + ".recording", rule.recording_required));
      std::string stdin_mode = "record";
      KG_TRY(r.Str(rec, "stdin", where + ".recording", stdin_mode));
      if (stdin_mode == "omit") {
        rule.recording_stdin = PolicyRule::Stdin::kOmit;
      } else if (stdin_mode == "redact") {
        rule.recording_stdin = PolicyRule::Stdin::kRedact;
      } else if (stdin_mode != "record") {
        return r.Fail(rec["stdin"], where + ".recording.stdin", "must be record, omit or redact");
      }
      KG_TRY(r.Bool(rec, "portForwardPayload", where + ".recording", rule.recording_portforward_payload));
    }
    if (rule.action == PolicyAction::kReview) {
      if (!n["review"]) return r.Fail(n, where + ".review", "a review rule needs a review section");
      KG_TRY(pp.Review(n["review"], where + ".review", rule.review));
    } else if (n["review"]) {
      return r.Fail(n["review"], where + ".review", "only review rules have a review section");
    }
    p->has_namespace_selectors_ = p->has_namespace_selectors_ || !rule.match.namespace_selector.empty();
    p->rules_.push_back(std::move(rule));
  }
  return std::shared_ptr<const Policy>(std::move(p));
}

Result<std::shared_ptr<const Policy>> Policy::Load(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Error::BadRequest(path + ": cannot read policy file");
  std::stringstream ss;
  ss << in.rdbuf();
  return Parse(ss.str(), path);
}

std::shared_ptr<const Policy> Policy::AllowAll() {
  auto p = std::make_shared<Policy>();
  p->source_ = "(no policy file: everything the built-in rules do not refuse is allowed)";
  p->configured_ = false;
  return p;
}

bool Policy::NeedsNamespaceLabels(const PolicyInput& in) const {
  if (!has_namespace_selectors_) return false;  // the common case costs nothing per request
  for (const PolicyRule& rule : rules_) {
    if (MatchesRule(rule.match, in, false)) return !rule.match.namespace_selector.empty();
  }
  return false;
}

PolicyDecision Policy::Evaluate(const PolicyInput& in) const {
  PolicyDecision d;
  for (const PolicyRule& rule : rules_) {
    if (!RuleMatches(rule.match, in)) continue;
    d.action = rule.action;
    d.rule = &rule;
    d.rule_name = rule.name;
    d.message = rule.message;
    if (rule.action == PolicyAction::kReview) {
      for (const auto& a : rule.review.auto_approve) {
        if (AutoApproverHolds(a, in)) {
          d.auto_approver = &a;
          break;
        }
      }
    }
    return d;
  }
  d.action = default_action_;
  d.rule_name = "default";
  d.message = default_message_;
  return d;
}

}  // namespace kubegate
