#include "cli/agent_commands.h"

#include <iostream>

#include <nlohmann/json.hpp>

#include "cli/gateway_call.h"

namespace kubegate {

struct AgentCli {
  CLI::App *token = nullptr, *revoke = nullptr, *list = nullptr;
  std::string kubeconfig, context, agent, task, ttl = "1h", reason, id;
  bool all = false;
};

std::shared_ptr<AgentCli> AddAgentCommands(CLI::App& app) {
  auto c = std::make_shared<AgentCli>();
  auto* a = app.add_subcommand("agent", "Per-task agent tokens (as a broker, through the gateway)");
  a->require_subcommand(1);
  a->add_option("--kubeconfig", c->kubeconfig, "Your kubegate kubeconfig (default: $KUBECONFIG, ~/.kube/config)");
  a->add_option("--context", c->context, "kubeconfig context");
  c->token = a->add_subcommand("token", "Issue a token bound to one agent and one task (printed once)");
  c->token->add_option("--agent", c->agent, "The agent's user name")->required();
  c->token->add_option("--task", c->task, "The task id, e.g. T-123")->required();
  c->token->add_option("--ttl", c->ttl, "How long it lives (1m to 24h; default 1h)");
  c->token->add_option("--reason", c->reason, "Why (recorded)");
  c->revoke = a->add_subcommand("revoke", "End a task's tokens (or one token) at once");
  c->revoke->add_option("--task", c->task, "Every live token of this task");
  c->revoke->add_option("--id", c->id, "One token, by credential id (cr-...)");
  c->revoke->add_option("--reason", c->reason, "Why (recorded)");
  c->list = a->add_subcommand("list", "Live task tokens (--all: revoked and expired too)");
  c->list->add_flag("--all", c->all);
  for (auto* sub : {c->token, c->revoke, c->list}) sub->fallthrough();
  return c;
}

int RunAgentCommand(AgentCli& c) {
  const std::string api = "/kubegate/v1/tasks";
  const std::string prefix = "kubegate agent";
  if (*c.list) return CallGatewayAsCaller(c.kubeconfig, c.context, "GET", api + "/tokens" + (c.all ? "?all=true" : ""), "", prefix);
  if (*c.token) {
    nlohmann::json body = {{"agent", c.agent}, {"task", c.task}, {"ttl", c.ttl}, {"reason", c.reason}};
    return CallGatewayAsCaller(c.kubeconfig, c.context, "POST", api + "/tokens", body.dump(), prefix);
  }
  if (*c.revoke) {
    if (c.task.empty() == c.id.empty()) {
      std::cerr << prefix << ": give exactly one of --task and --id\n";
      return 2;
    }
    std::string path = c.task.empty() ? api + "/tokens/" + c.id + "/revoke" : api + "/" + c.task + "/revoke";
    return CallGatewayAsCaller(c.kubeconfig, c.context, "POST", path, nlohmann::json{{"reason", c.reason}}.dump(), prefix);
  }
  return -1;
}

}  // namespace kubegate
