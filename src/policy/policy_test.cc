#include "policy/policy.h"

#include <gtest/gtest.h>

#include "classify/request_info.h"
#include "common/clock.h"

namespace kubegate {
namespace {

std::shared_ptr<const Policy> MustParse(const std::string& yaml) {
  auto p = Policy::Parse(yaml, "p.yaml");
  EXPECT_TRUE(p) << p.error().message;
  return p ? *p : Policy::AllowAll();
}

struct Req {
  Identity who;
  RequestInfo info;
  bool impersonation = false;
  std::map<std::string, std::string> headers;
  std::int64_t now_ms = 1'795'000'000'000;  // 2026-11-17T...Z

  PolicyInput In() const {
    return {&who, &info, impersonation,
            [this](std::string_view n) -> std::optional<std::string> {
              auto it = headers.find(std::string(n));
              if (it == headers.end()) return std::nullopt;
              return it->second;
            },
            now_ms};
  }
};

Req R(const std::string& user, const std::string& method, const std::string& target,
      std::vector<std::string> groups = {}, IdentityKind kind = IdentityKind::kHuman) {
  Req r;
  r.who.user = user;
  r.who.groups = std::move(groups);
  r.who.kind = kind;
  auto info = ClassifyRequest(method, target);
  EXPECT_TRUE(info) << target;
  r.info = *info;
  return r;
}

std::string Decide(const Policy& p, const Req& r) {
  PolicyDecision d = p.Evaluate(r.In());
  return std::string(PolicyActionName(d.action)) + ":" + d.rule_name;
}

TEST(Policy, ShippedDefaultsDecideAsDocumented) {
  auto p = Policy::Load(std::string(KUBEGATE_SOURCE_DIR) + "/examples/policy.yaml");
  ASSERT_TRUE(p) << p.error().message;
  const Policy& pol = **p;
  EXPECT_EQ(Decide(pol, R("alice", "GET", "/api/v1/namespaces/prod/pods")), "allow:default");
  EXPECT_EQ(Decide(pol, R("alice", "GET", "/api/v1/namespaces/prod/secrets/db")), "review:secret-reads-need-review");
  EXPECT_EQ(Decide(pol, R("alice", "GET", "/api/v1/namespaces/prod/secrets")), "review:secret-reads-need-review");
  EXPECT_EQ(Decide(pol, R("bot", "DELETE", "/api/v1/namespaces/demo")), "review:destructive-deletes-need-review");
  EXPECT_EQ(Decide(pol, R("bot", "DELETE", "/api/v1/namespaces/demo?dryRun=All")), "allow:dry-runs-pass");
  EXPECT_EQ(Decide(pol, R("bot", "DELETE", "/api/v1/nodes/n1")), "review:destructive-deletes-need-review");
  EXPECT_EQ(Decide(pol, R("bot", "DELETE", "/api/v1/namespaces/x/pods")), "review:deletecollection-needs-review");
  EXPECT_EQ(Decide(pol, R("bot", "DELETE", "/api/v1/namespaces/x/pods/p")), "allow:default");
  EXPECT_EQ(Decide(pol, R("bot", "POST", "/api/v1/namespaces/prod/pods/web/exec?command=sh")),
            "review:prod-exec-needs-review");
  EXPECT_EQ(Decide(pol, R("bot", "GET", "/api/v1/namespaces/prod-eu/pods/web/attach?stdin=true")),
            "review:prod-exec-needs-review");
  EXPECT_EQ(Decide(pol, R("bot", "POST", "/api/v1/namespaces/dev/pods/web/exec?command=sh")), "allow:default");
  // Labelled as production: the labels decide, whatever the name.
  Req labelled = R("bot", "POST", "/api/v1/namespaces/payments/pods/web/exec?command=sh");
  NamespaceLabels prod_labels = {{"environment", "production"}, {"team", "pay"}};
  EXPECT_TRUE(pol.NeedsNamespaceLabels(labelled.In()));
  PolicyInput with_labels = labelled.In();
  with_labels.namespace_labels = &prod_labels;
  EXPECT_EQ(pol.Evaluate(with_labels).rule_name, "prod-labelled-exec-needs-review");
  EXPECT_EQ(Decide(pol, labelled), "allow:default");  // no labels known: not production
  // Reads are decided before any rule with a selector: no lookup needed.
  EXPECT_FALSE(pol.NeedsNamespaceLabels(R("bot", "GET", "/api/v1/namespaces/payments/pods").In()));
  // Named as production: decided by name, no lookup needed.
  EXPECT_FALSE(pol.NeedsNamespaceLabels(R("bot", "POST", "/api/v1/namespaces/prod/pods/w/exec?command=sh").In()));
  EXPECT_EQ(Decide(pol, R("bot", "POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions")), "allow:default");
  Req as = R("alice", "GET", "/api/v1/pods");
  as.impersonation = true;
  EXPECT_EQ(Decide(pol, as), "deny:no-impersonation");
  // The ways around it issue 10 found: kubelet exec through nodes/proxy,
  // `kubectl debug` into a production pod, and an agent relabelling its
  // namespace so the selector rule no longer applies.
  EXPECT_EQ(Decide(pol, R("bot", "POST", "/api/v1/nodes/n1/proxy/exec/prod/web/app?command=sh")),
            "review:node-proxy-needs-review");
  EXPECT_EQ(Decide(pol, R("bot", "GET", "/api/v1/nodes/n1/proxy/pods")), "review:node-proxy-needs-review");
  EXPECT_EQ(Decide(pol, R("bot", "PATCH", "/api/v1/namespaces/prod/pods/web/ephemeralcontainers")),
            "review:prod-exec-needs-review");
  EXPECT_EQ(Decide(pol, R("bot", "GET", "/api/v1/namespaces/prod/services/web/proxy/admin")), "review:prod-exec-needs-review");
  EXPECT_EQ(Decide(pol, R("bot", "PATCH", "/api/v1/namespaces/payments", {}, IdentityKind::kAgent)), "deny:namespace-changes-by-agents");
  EXPECT_EQ(Decide(pol, R("bot", "PUT", "/api/v1/namespaces/payments", {}, IdentityKind::kAgent)), "deny:namespace-changes-by-agents");
  EXPECT_EQ(Decide(pol, R("alice", "PATCH", "/api/v1/namespaces/payments")), "review:namespace-changes-need-review");
  EXPECT_EQ(Decide(pol, R("bot", "POST", "/api/v1/namespaces")), "allow:default");
  // No findings at all: the overlaps in it are intended (--as refused
  // first, dry runs pass), and nothing it allows switches a rule off.
  for (const auto& f : pol.Check()) ADD_FAILURE() << f.message;
}

TEST(Policy, NamespaceSelectorsFollowLabelSelectorSemantics) {
  auto p = MustParse(R"(apiVersion: kubegate.io/v1
kind: Policy
default: allow
rules:
  - name: pci
    match:
      namespaceSelector:
        matchLabels: {compliance: pci}
        matchExpressions:
          - {key: tier, operator: NotIn, values: [sandbox]}
          - {key: frozen, operator: DoesNotExist}
    action: deny
  - name: owned
    match:
      verbs: [delete]
      namespaceSelector:
        matchExpressions: [{key: owner, operator: Exists}]
    action: deny
)");
  auto decide = [&](const std::string& method, const std::string& target, NamespaceLabels labels) {
    Req r = R("u", method, target);
    PolicyInput in = r.In();
    in.namespace_labels = &labels;
    return p->Evaluate(in).rule_name;
  };
  EXPECT_EQ(decide("GET", "/api/v1/namespaces/a/pods", {{"compliance", "pci"}}), "pci");
  EXPECT_EQ(decide("GET", "/api/v1/namespaces/a/pods", {{"compliance", "pci"}, {"tier", "gold"}}), "pci");
  EXPECT_EQ(decide("GET", "/api/v1/namespaces/a/pods", {{"compliance", "pci"}, {"tier", "sandbox"}}), "default");
  EXPECT_EQ(decide("GET", "/api/v1/namespaces/a/pods", {{"compliance", "pci"}, {"frozen", ""}}), "default");
  EXPECT_EQ(decide("GET", "/api/v1/namespaces/a/pods", {{"compliance", "sox"}}), "default");
  EXPECT_EQ(decide("GET", "/api/v1/namespaces/a/pods", {}), "default");
  EXPECT_EQ(decide("DELETE", "/api/v1/namespaces/a/pods/p", {{"owner", "x"}}), "owned");
  // A Namespace object is judged by its own labels.
  EXPECT_EQ(decide("DELETE", "/api/v1/namespaces/a", {{"owner", "x"}}), "owned");
  // Cluster-scoped requests have no namespace: a selector never matches them.
  EXPECT_EQ(decide("DELETE", "/api/v1/nodes/n1", {{"owner", "x"}}), "default");
  EXPECT_FALSE(p->NeedsNamespaceLabels(R("u", "DELETE", "/api/v1/nodes/n1").In()));
  // Bad selectors are refused with their line.
  for (const char* bad : {"namespaceSelector: {}", "namespaceSelector: {matchLabels: [a]}",
                          "namespaceSelector: {matchExpressions: [{key: a, operator: Exists, values: [x]}]}",
                          "namespaceSelector: {matchExpressions: [{key: a, operator: In}]}",
                          "namespaceSelector: {matchExpressions: [{key: a, operator: Like, values: [x]}]}"}) {
    auto r = Policy::Parse(std::string("apiVersion: kubegate.io/v1\nkind: Policy\ndefault: allow\nrules:\n"
                                       "  - name: x\n    action: deny\n    match:\n      ") + bad + "\n",
                           "p.yaml");
    ASSERT_FALSE(r) << bad;
    EXPECT_NE(r.error().message.find("p.yaml:"), std::string::npos) << r.error().message;
  }
  // check: a rule with a selector does not make a broader later rule unreachable.
  auto q = MustParse(R"(apiVersion: kubegate.io/v1
kind: Policy
default: deny
rules:
  - {name: a, action: deny, match: {verbs: [delete], namespaceSelector: {matchLabels: {x: y}}}}
  - {name: b, action: deny, match: {verbs: [delete]}}
  - {name: c, action: deny, match: {verbs: [delete], namespaceSelector: {matchLabels: {x: y, z: w}}}}
)");
  auto findings = q->Check();
  ASSERT_EQ(findings.size(), 1u);
  EXPECT_NE(findings[0].message.find("\"c\" is unreachable"), std::string::npos) << findings[0].message;
}

TEST(Policy, MatchesSubjectsResourcesGlobsAndCommands) {
  auto p = MustParse(R"(apiVersion: kubegate.io/v1
kind: Policy
default: deny
defaultMessage: nothing else
rules:
  - name: agents-cat-only
    match:
      kinds: [agent]
      resources: [pods/exec]
      command: {prefix: [cat]}
    action: allow
  - name: agents-no-shell
    match:
      kinds: [agent]
      resources: ["*/exec"]
      command: {regex: "(ba)?sh( .*)?"}
    action: deny
    message: no shells for agents
  - name: ops-scale
    match: {groups: [ops], resources: ["*/scale"], names: ["web-*"]}
    action: allow
  - name: cluster-scoped-reads
    match: {verbs: [get, list], clusterScoped: true}
    action: allow
  - name: healthz
    match: {paths: ["/healthz*", "/version"]}
    action: allow
)");
  const Policy& pol = *p;
  auto exec = [](const std::string& cmd) {
    return R("bot", "POST", "/api/v1/namespaces/x/pods/p/exec?" + cmd, {}, IdentityKind::kAgent);
  };
  EXPECT_EQ(Decide(pol, exec("command=cat&command=/etc/hosts")), "allow:agents-cat-only");
  EXPECT_EQ(Decide(pol, exec("command=sh&command=-c&command=id")), "deny:agents-no-shell");
  EXPECT_EQ(Decide(pol, exec("command=bash")), "deny:agents-no-shell");
  EXPECT_EQ(Decide(pol, exec("command=ls")), "deny:default");
  EXPECT_EQ(pol.Evaluate(exec("command=ls").In()).message, "nothing else");
  EXPECT_EQ(Decide(pol, R("carol", "PUT", "/apis/apps/v1/namespaces/x/deployments/web-1/scale", {"ops"})),
            "allow:ops-scale");
  EXPECT_EQ(Decide(pol, R("carol", "PUT", "/apis/apps/v1/namespaces/x/deployments/db/scale", {"ops"})), "deny:default");
  EXPECT_EQ(Decide(pol, R("dave", "PUT", "/apis/apps/v1/namespaces/x/deployments/web-1/scale", {"dev"})),
            "deny:default");
  EXPECT_EQ(Decide(pol, R("dave", "GET", "/api/v1/nodes")), "allow:cluster-scoped-reads");
  EXPECT_EQ(Decide(pol, R("dave", "GET", "/api/v1/namespaces/x/pods")), "deny:default");
  EXPECT_EQ(Decide(pol, R("dave", "GET", "/healthz/etcd")), "allow:healthz");
  EXPECT_EQ(Decide(pol, R("dave", "GET", "/metrics")), "deny:default");
}

TEST(Policy, TaskRulesRequireForbidOrNameTheTask) {
  auto p = MustParse(R"(apiVersion: kubegate.io/v1
kind: Policy
default: allow
rules:
  - name: agents-need-a-task
    match: {kinds: [agent], task: none}
    action: deny
    message: agents act only under a task token (kubegate agent token)
  - name: release-tasks-write
    match: {task: ["REL-*"], verbs: [create, update, patch]}
    action: allow
  - name: other-tasks-read-only
    match: {task: required, verbs: [create, update, patch, delete]}
    action: deny
)");
  auto agent = [](const std::string& task, const std::string& method) {
    Req r = R("bot", method, "/api/v1/namespaces/x/configmaps" + std::string(method == "POST" ? "" : "/c"), {},
              IdentityKind::kAgent);
    r.who.task = task;
    return r;
  };
  EXPECT_EQ(Decide(*p, agent("", "GET")), "deny:agents-need-a-task");
  EXPECT_EQ(Decide(*p, agent("REL-7", "POST")), "allow:release-tasks-write");
  EXPECT_EQ(Decide(*p, agent("T-1", "POST")), "deny:other-tasks-read-only");
  EXPECT_EQ(Decide(*p, agent("T-1", "GET")), "allow:default");
  EXPECT_EQ(Decide(*p, R("alice", "GET", "/api/v1/namespaces/x/configmaps")), "allow:default");  // people: no task rule
  EXPECT_FALSE(Policy::Parse("apiVersion: kubegate.io/v1\nkind: Policy\ndefault: allow\nrules:\n"
                             "  - {name: r, match: {task: sometimes}, action: deny}\n",
                             "p.yaml"));
}

TEST(Policy, AutoApproversCheckTimeNamesAndHeaders) {
  auto p = MustParse(R"(apiVersion: kubegate.io/v1
kind: Policy
default: allow
rules:
  - name: prod-exec
    match: {resources: [pods/exec]}
    action: review
    review:
      approvers: {groups: [sre]}
      autoApprove:
        - name: debug-pods-in-office-hours
          hoursUTC: "09:00-17:00"
          weekdays: [Mon, Tue, Wed, Thu, Fri]
          namePrefixes: [debug-]
        - name: agent-with-ticket
          kinds: [agent]
          header: {name: X-Ticket-Id, regex: "OPS-[0-9]+"}
)");
  Req r = R("bot", "POST", "/api/v1/namespaces/x/pods/debug-1/exec?command=ls", {}, IdentityKind::kAgent);
  r.now_ms = *ParseRfc3339("2026-11-23T10:00:00Z");  // a Monday
  auto d = p->Evaluate(r.In());
  ASSERT_EQ(d.action, PolicyAction::kReview);
  ASSERT_NE(d.auto_approver, nullptr);
  EXPECT_EQ(d.auto_approver->name, "debug-pods-in-office-hours");
  r.now_ms = *ParseRfc3339("2026-11-22T10:00:00Z");  // a Sunday
  EXPECT_EQ(p->Evaluate(r.In()).auto_approver, nullptr);
  r.headers["X-Ticket-Id"] = "OPS-42";
  ASSERT_NE(p->Evaluate(r.In()).auto_approver, nullptr);
  EXPECT_EQ(p->Evaluate(r.In()).auto_approver->name, "agent-with-ticket");
  r.headers["X-Ticket-Id"] = "OPS-42; rm -rf";
  EXPECT_EQ(p->Evaluate(r.In()).auto_approver, nullptr);
}

TEST(Policy, CheckReportsUnreachableAndOverlappingRulesWithLines) {
  auto p = MustParse(R"(apiVersion: kubegate.io/v1
kind: Policy
default: allow
rules:
  - name: all-secrets
    match: {resources: [secrets]}
    action: review
    review: {approvers: {users: [carol]}}
  - name: prod-secrets
    match: {resources: [secrets], namespaces: [prod]}
    action: deny
  - name: prod-anything
    match: {namespaces: ["prod*"]}
    action: allow
  - name: deletes
    match: {verbs: [delete]}
    action: deny
  - name: exec-the-websocket-way
    match: {verbs: [get], resources: [pods/exec]}
    action: deny
)");
  auto f = p->Check();
  ASSERT_GE(f.size(), 2u);
  EXPECT_EQ(f[0].line, 9);
  EXPECT_TRUE(f[0].error);
  EXPECT_NE(f[0].message.find("\"prod-secrets\" is unreachable: rule \"all-secrets\" (line 5)"), std::string::npos)
      << f[0].message;
  // An earlier allow that weakens a later deny is reported; an earlier
  // deny before a later allow is what the author meant, and is quiet.
  bool overlap = false, quiet = true, connect = false;
  for (const auto& x : f) {
    overlap = overlap || (x.line == 15 && x.message.find("overlaps rule \"prod-anything\"") != std::string::npos &&
                          x.message.find("get only allow") != std::string::npos);
    quiet = quiet && x.message.find("overlaps rule \"deletes\"") == std::string::npos;
    connect = connect || (x.line == 18 && x.message.find("leave out create") != std::string::npos);
  }
  EXPECT_TRUE(overlap);
  EXPECT_TRUE(quiet);
  EXPECT_TRUE(connect) << "a rule on pods/exec without create misses kubectl 1.29's SPDY exec";
}

// A rule written the RBAC way (create on pods/exec) matches exec over both
// transports: kubectl 1.29's SPDY POST and 1.30+'s WebSocket GET.
TEST(Policy, ConnectRulesWithCreateMatchBothTransports) {
  auto p = MustParse(R"(apiVersion: kubegate.io/v1
kind: Policy
default: allow
rules:
  - name: no-exec
    match: {verbs: [create], resources: [pods/exec]}
    action: deny
)");
  EXPECT_EQ(Decide(*p, R("bot", "POST", "/api/v1/namespaces/x/pods/w/exec?command=sh")), "deny:no-exec");
  EXPECT_EQ(Decide(*p, R("bot", "GET", "/api/v1/namespaces/x/pods/w/exec?command=sh")), "deny:no-exec");
  EXPECT_EQ(Decide(*p, R("bot", "GET", "/api/v1/namespaces/x/pods/w/log")), "allow:default");
}

// Selector rules depend on namespace labels: a policy that lets anyone
// change those labels without review is told so.
TEST(Policy, CheckWarnsWhenAnAllowedRequestCanSwitchARuleOff) {
  const std::string head = R"(apiVersion: kubegate.io/v1
kind: Policy
default: allow
rules:
)";
  const std::string selector_rule = R"(  - name: prod-labelled-exec
    match:
      resources: [pods/exec]
      namespaceSelector: {matchLabels: {environment: prod}}
    action: deny
)";
  auto open = MustParse(head + selector_rule);
  int warnings = 0;
  for (const auto& f : open->Check()) warnings += f.message.find("change a namespace's labels") != std::string::npos;
  EXPECT_EQ(warnings, 2) << "agents and people may relabel";
  auto closed = MustParse(head + R"(  - name: namespace-changes
    match: {verbs: [update, patch], resources: [namespaces]}
    action: review
    review: {approvers: {groups: [sre]}}
)" + selector_rule);
  for (const auto& f : closed->Check()) EXPECT_EQ(f.message.find("change a namespace's labels"), std::string::npos) << f.message;
}

TEST(Policy, InvalidPoliciesNameTheLine) {
  auto bad = [](const std::string& y) {
    auto p = Policy::Parse("apiVersion: kubegate.io/v1\nkind: Policy\n" + y, "p.yaml");
    return p ? std::string("parsed") : p.error().message;
  };
  EXPECT_NE(bad("rules: []\n").find("p.yaml:1: default: is required"), std::string::npos) << bad("rules: []\n");
  EXPECT_NE(bad("default: review\n").find("must be allow or deny"), std::string::npos);
  std::string e = bad("default: allow\nrules:\n  - name: x\n    match: {verbz: [get]}\n    action: allow\n");
  EXPECT_NE(e.find("p.yaml:6: rules[0].match.verbz: unknown key"), std::string::npos) << e;
  e = bad("default: allow\nrules:\n  - name: x\n    match: {command: {regex: \"(\"}}\n    action: deny\n");
  EXPECT_NE(e.find("invalid RE2"), std::string::npos) << e;
  e = bad("default: allow\nrules:\n  - name: x\n    action: review\n    review: {approvals: 2}\n");
  EXPECT_NE(e.find("needs approvers"), std::string::npos) << e;
}

TEST(Glob, Matches) {
  EXPECT_TRUE(GlobMatch("prod*", "prod"));
  EXPECT_TRUE(GlobMatch("prod*", "prod-eu"));
  EXPECT_TRUE(GlobMatch("*-eu", "prod-eu"));
  EXPECT_TRUE(GlobMatch("p?od", "prod"));
  EXPECT_FALSE(GlobMatch("prod", "prod-eu"));
  EXPECT_FALSE(GlobMatch("prod*", "preprod"));
  EXPECT_TRUE(GlobMatch("*", ""));
}

}  // namespace
}  // namespace kubegate
