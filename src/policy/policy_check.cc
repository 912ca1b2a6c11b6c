// Policy::Check: static analysis for `kubegate policy check`. Coverage and
// overlap are decided field by field on the rules' match lists (globs
// compared as patterns); where that cannot be exact (two different command
// regexes), the analysis says "may" rather than guess.
#include <algorithm>

#include "policy/policy.h"

namespace kubegate {
namespace {

enum class Rel { kNo, kYes };

bool IsGlob(const std::string& s) { return s.find_first_of("*?") != std::string::npos; }

// Every value `later` can match is matched by `earlier` (empty = anything).
bool ListCovers(const std::vector<std::string>& earlier, const std::vector<std::string>& later, bool globs) {
  if (earlier.empty() || std::find(earlier.begin(), earlier.end(), "*") != earlier.end()) return true;
  if (later.empty()) return false;
  for (const auto& b : later) {
    bool hit = false;
    for (const auto& a : earlier) {
      hit = hit || a == b || (globs && !IsGlob(b) && GlobMatch(a, b));
    }
    if (!hit) return false;
  }
  return true;
}

// Some value matches both lists.
bool ListsIntersect(const std::vector<std::string>& a, const std::vector<std::string>& b, bool globs) {
  if (a.empty() || b.empty()) return true;
  for (const auto& x : a) {
    for (const auto& y : b) {
      if (x == y || x == "*" || y == "*") return true;
      if (globs && (GlobMatch(x, y) || GlobMatch(y, x))) return true;
      if (globs && IsGlob(x) && IsGlob(y)) return true;  // two patterns: assume they can meet
    }
  }
  return false;
}

bool OptCovers(const std::optional<bool>& earlier, const std::optional<bool>& later) {
  return !earlier || (later && *later == *earlier);
}
bool OptIntersect(const std::optional<bool>& a, const std::optional<bool>& b) { return !a || !b || *a == *b; }

bool PrefixCovers(const std::vector<std::string>& earlier, const std::vector<std::string>& later) {
  return earlier.size() <= later.size() && std::equal(earlier.begin(), earlier.end(), later.begin());
}

// Every requirement of the earlier selector is also one of the later's (the
// later selector is at least as narrow). Exact only for equal requirements.
bool SelectorCovers(const std::vector<LabelRequirement>& earlier, const std::vector<LabelRequirement>& later) {
  for (const auto& e : earlier) {
    bool hit = std::any_of(later.begin(), later.end(), [&](const LabelRequirement& l) {
      return l.key == e.key && l.op == e.op && l.values == e.values;
    });
    if (!hit) return false;
  }
  return true;
}

// Subjects: users and groups are alternatives (either may match).
bool SubjectsCover(const RuleMatch& e, const RuleMatch& l) {
  if (e.users.empty() && e.groups.empty()) return true;
  if (l.users.empty() && l.groups.empty()) return false;
  return ListCovers(e.users, l.users, false) && (l.groups.empty() || ListCovers(e.groups, l.groups, false)) &&
         !(e.users.empty() && !l.users.empty()) && !(e.groups.empty() && !l.groups.empty());
}

bool Covers(const RuleMatch& e, const RuleMatch& l) {
  if (!SubjectsCover(e, l)) return false;
  if (!ListCovers(e.kinds, l.kinds, false) || !ListCovers(e.verbs, l.verbs, false)) return false;
  if (e.non_resource != l.non_resource && (e.non_resource || !e.resources.empty())) return false;
  if (!ListCovers(e.api_groups, l.api_groups, false) || !ListCovers(e.resources, l.resources, true)) return false;
  if (!ListCovers(e.namespaces, l.namespaces, true) || !ListCovers(e.names, l.names, true)) return false;
  if (!ListCovers(e.paths, l.paths, true)) return false;
  if (!OptCovers(e.dry_run, l.dry_run) || !OptCovers(e.cluster_scoped, l.cluster_scoped) ||
      !OptCovers(e.impersonation, l.impersonation)) {
    return false;
  }
  if (!PrefixCovers(e.command_prefix, l.command_prefix)) return false;
  if (!e.command_regex.empty() && e.command_regex != l.command_regex) return false;
  if (!SelectorCovers(e.namespace_selector, l.namespace_selector)) return false;
  return true;
}

// A dry-run match can only meet writes to objects: the API server ignores
// dryRun on reads and on connect subresources (RequestInfo::dry_run).
bool DryRunImpossible(const RuleMatch& dry, const RuleMatch& other) {
  if (!dry.dry_run || !*dry.dry_run) return false;
  static const std::vector<std::string> kReads = {"get", "list", "watch"};
  bool reads_only = !other.verbs.empty() && std::all_of(other.verbs.begin(), other.verbs.end(), [](const auto& v) {
    return std::find(kReads.begin(), kReads.end(), v) != kReads.end();
  });
  bool connect_only = !other.resources.empty() && std::all_of(other.resources.begin(), other.resources.end(), [](const auto& r) {
    auto slash = r.find('/');
    if (slash == std::string::npos) return false;
    std::string sub = r.substr(slash + 1);
    return sub == "exec" || sub == "attach" || sub == "portforward" || sub == "proxy";
  });
  return reads_only || connect_only;
}

bool Intersect(const RuleMatch& a, const RuleMatch& b) {
  if (DryRunImpossible(a, b) || DryRunImpossible(b, a)) return false;
  bool subjects = (a.users.empty() && a.groups.empty()) || (b.users.empty() && b.groups.empty()) ||
                  ListsIntersect(a.users, b.users, false) || ListsIntersect(a.groups, b.groups, false) ||
                  (a.users.empty() != b.users.empty());
  if (!subjects) return false;
  if (a.non_resource != b.non_resource && !a.paths.empty() && !b.resources.empty()) return false;
  return ListsIntersect(a.kinds, b.kinds, false) && ListsIntersect(a.verbs, b.verbs, false) &&
         ListsIntersect(a.api_groups, b.api_groups, false) && ListsIntersect(a.resources, b.resources, true) &&
         ListsIntersect(a.namespaces, b.namespaces, true) && ListsIntersect(a.names, b.names, true) &&
         ListsIntersect(a.paths, b.paths, true) && OptIntersect(a.dry_run, b.dry_run) &&
         OptIntersect(a.cluster_scoped, b.cluster_scoped) && OptIntersect(a.impersonation, b.impersonation) &&
         (PrefixCovers(a.command_prefix, b.command_prefix) || PrefixCovers(b.command_prefix, a.command_prefix));
}

// How much a rule protects: a later rule that protects more, shadowed by an
// earlier one that protects less, is weakened for the requests both match.
int Strictness(PolicyAction a) {
  switch (a) {
    case PolicyAction::kAllow: return 0;
    case PolicyAction::kReview: return 1;
    case PolicyAction::kDeny: return 2;
  }
  return 0;
}

bool NamesConnectSubresource(const RuleMatch& m) {
  return std::any_of(m.resources.begin(), m.resources.end(), [](const std::string& r) {
    auto slash = r.find('/');
    if (slash == std::string::npos) return false;
    std::string sub = r.substr(slash + 1);
    return sub == "exec" || sub == "attach" || sub == "portforward";
  });
}

}  // namespace

// Unreachable rules, and earlier rules that weaken later ones.
std::vector<PolicyFinding> Policy::CheckPairs() const {
  std::vector<PolicyFinding> out;
  for (std::size_t j = 0; j < rules_.size(); ++j) {
    const PolicyRule& later = rules_[j];
    bool unreachable = false;
    for (std::size_t i = 0; i < j && !unreachable; ++i) {
      const PolicyRule& earlier = rules_[i];
      if (Covers(earlier.match, later.match)) {
        out.push_back({later.line,
                       "rule \"" + later.name + "\" is unreachable: rule \"" + earlier.name + "\" (line " +
                           std::to_string(earlier.line) + ") matches every request it matches",
                       true});
        unreachable = true;
      }
    }
    if (unreachable) continue;
    for (std::size_t i = 0; i < j; ++i) {
      const PolicyRule& earlier = rules_[i];
      // Quiet where the overlap is intended: an earlier rule that protects
      // as much or more (a deny first), or an earlier allow of dry runs
      // (nothing is persisted).
      if (Strictness(earlier.action) >= Strictness(later.action)) continue;
      if (earlier.action == PolicyAction::kAllow && earlier.match.dry_run && *earlier.match.dry_run) continue;
      if (Intersect(earlier.match, later.match)) {
        out.push_back({later.line,
                       "rule \"" + later.name + "\" (" + PolicyActionName(later.action) + ") overlaps rule \"" +
                           earlier.name + "\" (line " + std::to_string(earlier.line) + ", " +
                           PolicyActionName(earlier.action) + "): requests matching both get only " +
                           PolicyActionName(earlier.action),
                       false});
      }
    }
  }
  return out;
}

std::vector<PolicyFinding> Policy::Check() const {
  std::vector<PolicyFinding> out = CheckPairs();
  // Rules whose protection a request this policy allows can switch off:
  // namespace labels decide selector rules, so changing them must not be
  // allowed outright, to agents or to people.
  for (const PolicyRule& r : rules_) {
    if (r.match.namespace_selector.empty() || r.action == PolicyAction::kAllow) continue;
    for (IdentityKind kind : {IdentityKind::kAgent, IdentityKind::kHuman}) {
      Identity who;
      who.user = "policy-check";
      who.kind = kind;
      auto info = ClassifyRequest("PATCH", "/api/v1/namespaces/policy-check");
      if (!info) continue;
      PolicyDecision d = Evaluate({&who, &*info, false, [](std::string_view) { return std::optional<std::string>(); },
                                   0, nullptr});
      if (d.action != PolicyAction::kAllow) continue;
      out.push_back({r.line,
                     "rule \"" + r.name + "\" decides by namespace labels, and this policy lets " +
                         (kind == IdentityKind::kAgent ? "agents" : "people") +
                         " change a namespace's labels without review (patch namespaces: " +
                         (d.rule ? "rule \"" + d.rule->name + "\"" : std::string("the default")) +
                         " allows it); review or deny update and patch of namespaces",
                     false});
    }
  }
  for (const PolicyRule& r : rules_) {
    if (!NamesConnectSubresource(r.match) || r.match.verbs.empty()) continue;
    bool create = std::find(r.match.verbs.begin(), r.match.verbs.end(), "create") != r.match.verbs.end() ||
                  std::find(r.match.verbs.begin(), r.match.verbs.end(), "*") != r.match.verbs.end();
    if (!create) {
      out.push_back({r.line,
                     "rule \"" + r.name + "\" names exec/attach/portforward with verbs that leave out create: it "
                     "matches only kubectl 1.30+'s WebSocket GET, not kubectl 1.29's SPDY POST; the API server "
                     "authorizes both as create, so list create (or no verbs)",
                     false});
    }
  }
  return out;
}

}  // namespace kubegate
