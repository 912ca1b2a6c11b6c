#include "cli/identity_commands.h"

#include <nlohmann/json.hpp>

#include "cli/gateway_call.h"

namespace kubegate {

struct IdentityCli {
  CLI::App *create = nullptr, *list = nullptr, *disable = nullptr, *enable = nullptr;
  CLI::App *token_create = nullptr, *token_list = nullptr, *token_revoke = nullptr;
  std::string kubeconfig, context, name, kind = "agent", description, reason, ttl, id;
  std::vector<std::string> groups;
  bool all = false;
};

namespace {

void AddConnection(CLI::App* sub, IdentityCli& c) {
  sub->add_option("--kubeconfig", c.kubeconfig, "Your kubegate kubeconfig (default: $KUBECONFIG, ~/.kube/config)");
  sub->add_option("--context", c.context, "kubeconfig context");
}

}  // namespace

std::shared_ptr<IdentityCli> AddIdentityCommands(CLI::App& app, CLI::App& token) {
  auto c = std::make_shared<IdentityCli>();
  auto* i = app.add_subcommand("identity", "Identities managed at runtime (as an identity admin, through the gateway)");
  i->require_subcommand(1);
  c->create = i->add_subcommand("create", "Register an agent or a person");
  c->create->add_option("name", c->name, "The user name")->required();
  c->create->add_option("--kind", c->kind, "agent (default) or human");
  c->create->add_option("--group", c->groups, "A group (repeat; identity_admins.assignable_groups)");
  c->create->add_option("--description", c->description, "What it is for (recorded)");
  c->list = i->add_subcommand("list", "Registered identities and disabled names");
  c->disable = i->add_subcommand("disable", "Refuse a user name at once, however it authenticates");
  c->disable->add_option("name", c->name, "The user name")->required();
  c->disable->add_option("--reason", c->reason, "Why (recorded)");
  c->enable = i->add_subcommand("enable", "Let a disabled user name act again");
  c->enable->add_option("name", c->name, "The user name")->required();
  c->enable->add_option("--reason", c->reason, "Why (recorded)");
  c->token_create = token.add_subcommand("create", "Issue a static token for a registered identity (printed once)");
  c->token_create->add_option("--identity", c->name, "The registered identity")->required();
  c->token_create->add_option("--ttl", c->ttl, "How long it lives (1m to 366d; default 90d)");
  c->token_create->add_option("--reason", c->reason, "Why (recorded)");
  c->token_list = token.add_subcommand("list", "Live tokens issued at runtime (--all: revoked and expired too)");
  c->token_list->add_flag("--all", c->all);
  c->token_revoke = token.add_subcommand("revoke", "End one token at once");
  c->token_revoke->add_option("id", c->id, "The credential id (cr-...)")->required();
  c->token_revoke->add_option("--reason", c->reason, "Why (recorded)");
  for (auto* sub : {c->create, c->list, c->disable, c->enable, c->token_create, c->token_list, c->token_revoke}) {
    AddConnection(sub, *c);
  }
  return c;
}

int RunIdentityCommand(IdentityCli& c) {
  using json = nlohmann::json;
  const std::string ids = "/kubegate/v1/identities";
  const std::string tokens = "/kubegate/v1/tokens";
  auto call = [&c](const char* method, const std::string& path, const json& body, const char* prefix) {
    return CallGatewayAsCaller(c.kubeconfig, c.context, method, path, body.is_null() ? "" : body.dump(), prefix);
  };
  if (*c.create) {
    json body = {{"name", c.name}, {"kind", c.kind}, {"groups", c.groups}, {"description", c.description}};
    return call("POST", ids, body, "kubegate identity");
  }
  if (*c.list) return call("GET", ids, nullptr, "kubegate identity");
  if (*c.disable) return call("POST", ids + "/disable", {{"name", c.name}, {"reason", c.reason}}, "kubegate identity");
  if (*c.enable) return call("POST", ids + "/enable", {{"name", c.name}, {"reason", c.reason}}, "kubegate identity");
  if (*c.token_create) {
    json body = {{"identity", c.name}, {"reason", c.reason}};
    if (!c.ttl.empty()) body["ttl"] = c.ttl;
    return call("POST", tokens, body, "kubegate token");
  }
  if (*c.token_list) return call("GET", tokens + (c.all ? "?all=true" : ""), nullptr, "kubegate token");
  if (*c.token_revoke) return call("POST", tokens + "/" + c.id + "/revoke", {{"reason", c.reason}}, "kubegate token");
  return -1;
}

}  // namespace kubegate
