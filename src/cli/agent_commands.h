// `kubegate agent ...`: per-task agent tokens, issued and revoked through
// the gateway's task API with the broker's own kubegate identity (so each
// change is an audit record of who did it).
//
//   kubegate agent token --agent deploy-bot --task T-123 [--ttl 1h] [--reason R] [--group G] --kubeconfig F
//   kubegate agent revoke --task T-123 | --id cr-... [--reason R] --kubeconfig F
//   kubegate agent list [--all] --kubeconfig F
#pragma once

#include <memory>

#include <CLI/CLI.hpp>

namespace kubegate {

struct AgentCli;
std::shared_ptr<AgentCli> AddAgentCommands(CLI::App& app);
int RunAgentCommand(AgentCli& cli);

}  // namespace kubegate
