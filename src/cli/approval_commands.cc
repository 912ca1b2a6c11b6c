#include "cli/approval_commands.h"

#include <cstdlib>
#include <iostream>

#include <nlohmann/json.hpp>

#include "cli/gateway_call.h"

namespace kubegate {

struct ApprovalCli {
  CLI::App *list = nullptr, *show = nullptr, *approve = nullptr, *deny = nullptr, *revoke = nullptr;
  std::string kubeconfig, context, state, id, reason, duration;
  std::vector<std::string> scope;
};

namespace {

int Call(ApprovalCli& c, const std::string& method, const std::string& path, const std::string& body) {
  return CallGatewayAsCaller(c.kubeconfig, c.context, method, path, body, "kubegate approvals");
}

}  // namespace

std::shared_ptr<ApprovalCli> AddApprovalCommands(CLI::App& app) {
  auto c = std::make_shared<ApprovalCli>();
  auto* a = app.add_subcommand("approvals", "Decide approval requests (as yourself, through the gateway)");
  a->require_subcommand(1);
  a->add_option("--kubeconfig", c->kubeconfig, "Your kubegate kubeconfig (default: $KUBECONFIG, ~/.kube/config)");
  a->add_option("--context", c->context, "kubeconfig context");
  c->list = a->add_subcommand("list", "Approval requests");
  c->list->add_option("--state", c->state, "pending, approved, denied, expired, withdrawn, abandoned");
  c->show = a->add_subcommand("show", "What a request would do, in words");
  c->show->add_option("id", c->id)->required();
  c->approve = a->add_subcommand("approve", "Approve a request (creates a grant once enough approve)");
  c->approve->add_option("id", c->id)->required();
  c->approve->add_option("--reason", c->reason, "Why (recorded)");
  c->approve->add_option("--for", c->duration, "Grant time, e.g. 15m (within the rule's maxGrant)");
  c->approve->add_option("--scope", c->scope, "Widen: any-command, any-name")->delimiter(',');
  c->deny = a->add_subcommand("deny", "Deny a request");
  c->deny->add_option("id", c->id)->required();
  c->deny->add_option("--reason", c->reason, "Why (shown to the caller)")->required();
  c->revoke = a->add_subcommand("revoke", "Revoke a grant (ends sessions opened under it)");
  c->revoke->add_option("id", c->id, "Grant id (gr-...)")->required();
  c->revoke->add_option("--reason", c->reason, "Why (recorded)");
  for (auto* sub : {c->list, c->show, c->approve, c->deny, c->revoke}) sub->fallthrough();
  return c;
}

int RunApprovalCommand(ApprovalCli& c) {
  const std::string api = "/kubegate/v1";
  if (*c.list) return Call(c, "GET", api + "/approvals?format=text" + (c.state.empty() ? "" : "&state=" + c.state), "");
  if (*c.show) return Call(c, "GET", api + "/approvals/" + c.id + "?format=text", "");
  nlohmann::json body = {{"reason", c.reason}};
  if (*c.approve) {
    if (!c.duration.empty()) body["for"] = c.duration;
    if (!c.scope.empty()) body["scope"] = c.scope;
    return Call(c, "POST", api + "/approvals/" + c.id + "/approve?format=text", body.dump());
  }
  if (*c.deny) return Call(c, "POST", api + "/approvals/" + c.id + "/deny?format=text", body.dump());
  if (*c.revoke) return Call(c, "POST", api + "/grants/" + c.id + "/revoke", body.dump());
  return -1;
}

}  // namespace kubegate
