#include "cli/policy_commands.h"

#include <iostream>

#include "classify/request_info.h"
#include "common/clock.h"
#include "policy/kubectl_command.h"
#include "policy/policy.h"

namespace kubegate {

struct PolicyCli {
  CLI::App* check = nullptr;
  CLI::App* explain = nullptr;
  std::string file;
  std::string user, kind = "human", method, url, ns = "default";
  std::vector<std::string> groups, kubectl, headers, namespace_labels;
  bool impersonation = false;
};

namespace {

int Check(PolicyCli& c) {
  auto p = Policy::Load(c.file);
  if (!p) {
    std::cout << p.error().message << "\n";
    return 1;
  }
  auto findings = (*p)->Check();
  int errors = 0;
  for (const auto& f : findings) {
    std::cout << c.file << ":" << f.line << ": " << (f.error ? "error: " : "warning: ") << f.message << "\n";
    errors += f.error;
  }
  std::cout << c.file << ": " << (*p)->rules().size() << " rules, default " << PolicyActionName((*p)->default_action())
            << "; " << errors << " unreachable, " << findings.size() - static_cast<std::size_t>(errors)
            << " overlapping\n";
  return errors ? 1 : 0;
}

int Explain(PolicyCli& c) {
  auto p = Policy::Load(c.file);
  if (!p) {
    std::cerr << p.error().message << "\n";
    return 2;
  }
  std::string method = c.method, url = c.url;
  bool impersonation = c.impersonation;
  if (!c.kubectl.empty()) {
    auto r = KubectlToRequest(c.kubectl, c.ns);
    if (!r) {
      std::cerr << "kubegate policy explain: " << r.error().message << "\n";
      return 2;
    }
    method = r->method;
    url = r->target;
    impersonation = impersonation || r->impersonation;
  }
  if (method.empty() || url.empty()) {
    std::cerr << "kubegate policy explain: give -- kubectl ARGS..., or --method and --url\n";
    return 2;
  }
  auto info = ClassifyRequest(method, url);
  if (!info) {
    std::cerr << "kubegate policy explain: " << info.error().message << "\n";
    return 2;
  }
  Identity who;
  who.user = c.user;
  who.groups = c.groups;
  who.kind = c.kind == "agent" ? IdentityKind::kAgent : IdentityKind::kHuman;
  std::map<std::string, std::string> headers;
  for (const auto& h : c.headers) {
    auto colon = h.find(':');
    if (colon != std::string::npos) headers[h.substr(0, colon)] = h.substr(h.find_first_not_of(' ', colon + 1));
  }
  PolicyInput in{&who, &*info, impersonation,
                 [&](std::string_view n) -> std::optional<std::string> {
                   for (const auto& [k, v] : headers) {
                     if (k.size() == n.size() && std::equal(k.begin(), k.end(), n.begin(), [](char a, char b) {
                           return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
                         })) {
                       return v;
                     }
                   }
                   return std::nullopt;
                 },
                 SystemClock().NowMillis()};
  NamespaceLabels labels;
  for (const auto& l : c.namespace_labels) {
    auto eq = l.find('=');
    labels[l.substr(0, eq)] = eq == std::string::npos ? "" : l.substr(eq + 1);
  }
  in.namespace_labels = &labels;
  const bool needs_labels = (*p)->NeedsNamespaceLabels(in);
  PolicyDecision d = (*p)->Evaluate(in);
  std::cout << "request:  " << method << " " << url << "\n";
  std::cout << "as:       " << who.user << " (" << c.kind << (who.groups.empty() ? "" : "; groups ") ;
  for (std::size_t i = 0; i < who.groups.size(); ++i) std::cout << (i ? ", " : "") << who.groups[i];
  std::cout << ")\n";
  std::cout << "reads as: verb " << info->verb;
  if (info->is_resource_request) {
    std::cout << " " << info->resource << (info->subresource.empty() ? "" : "/" + info->subresource);
    if (!info->name.empty()) std::cout << " \"" << info->name << "\"";
    std::cout << (info->namespace_.empty() ? " (cluster-scoped)" : " in namespace " + info->namespace_);
  } else {
    std::cout << " " << info->path;
  }
  if (info->dry_run) std::cout << ", dry run";
  std::cout << "\n";
  if (needs_labels) {
    std::cout << "labels:   the decision depends on namespace " << info->namespace_ << "'s labels; taken as {";
    for (auto it = labels.begin(); it != labels.end(); ++it) {
      std::cout << (it == labels.begin() ? "" : ", ") << it->first << "=" << it->second;
    }
    std::cout << "} (--namespace-label KEY=VALUE)\n";
  }
  if (d.rule) {
    std::cout << "rule:     \"" << d.rule->name << "\" (" << c.file << ":" << d.rule->line << ") matches first\n";
  } else {
    std::cout << "rule:     no rule matches; the default applies\n";
  }
  switch (d.action) {
    case PolicyAction::kAllow:
      std::cout << "outcome:  ALLOW: forwarded at once\n";
      break;
    case PolicyAction::kDeny:
      std::cout << "outcome:  DENY: 403" << (d.message.empty() ? "" : ": " + d.message) << "\n";
      break;
    case PolicyAction::kReview: {
      const ReviewSpec& r = d.rule->review;
      std::cout << "outcome:  REVIEW: " << (r.hold ? "held at the gateway" : "answered 403 with instructions")
                << " until " << r.approvals << " of {";
      bool first = true;
      for (const auto& u : r.approver_users) std::cout << (first ? "" : ", ") << "user " << u, first = false;
      for (const auto& g : r.approver_groups) std::cout << (first ? "" : ", ") << "group " << g, first = false;
      std::cout << "} approve" << (r.allow_self_approval ? "" : " (not the requester)") << "; waits at most "
                << r.max_wait_ms / 1000 << "s; grants up to " << r.max_grant_ms / 1000 << "s\n";
      if (d.auto_approver) {
        std::cout << "          the automatic approver \"" << d.auto_approver->name
                  << "\" holds now: the gateway would approve it itself\n";
      }
      break;
    }
  }
  return 0;
}

}  // namespace

std::shared_ptr<PolicyCli> AddPolicyCommands(CLI::App& app) {
  auto c = std::make_shared<PolicyCli>();
  auto* policy = app.add_subcommand("policy", "Check and explain policies (no cluster needed)");
  policy->require_subcommand(1);
  c->check = policy->add_subcommand("check", "Validate a policy; report unreachable and overlapping rules");
  c->check->add_option("file", c->file, "Policy file (YAML)")->required();
  c->explain = policy->add_subcommand("explain", "Which rule matches a request, and what would happen");
  c->explain->add_option("--policy", c->file, "Policy file (YAML)")->required();
  c->explain->add_option("--as", c->user, "The caller's user name")->required();
  c->explain->add_option("--group", c->groups, "The caller's group (repeatable)")->allow_extra_args(false);
  c->explain->add_option("--kind", c->kind, "human or agent")->check(CLI::IsMember({"human", "agent"}));
  c->explain->add_option("--method", c->method, "HTTP method (with --url)");
  c->explain->add_option("--url", c->url, "Request target, e.g. /api/v1/namespaces/prod");
  c->explain->add_option("--namespace", c->ns, "kubectl's default namespace")->capture_default_str();
  c->explain->add_option("--header", c->headers, "Request header \"Name: value\" (auto-approvers may check one)")
      ->allow_extra_args(false);
  c->explain->add_option("--namespace-label", c->namespace_labels,
                         "A label of the request's namespace, KEY=VALUE (repeatable; for namespaceSelector rules)")
      ->allow_extra_args(false);
  c->explain->add_flag("--impersonation", c->impersonation, "The request carries Impersonate-* headers");
  c->explain->add_option("kubectl", c->kubectl, "-- kubectl ARGS...");
  return c;
}

int RunPolicyCommand(PolicyCli& c) {
  if (*c.check) return Check(c);
  if (*c.explain) return Explain(c);
  return -1;
}

}  // namespace kubegate
