// `kubegate approvals ...`: deciding approval requests from the CLI, with
// the approver's own kubegate identity (the kubeconfig kubegate issued).
//
//   kubegate approvals list [--state pending] --kubeconfig F
//   kubegate approvals show ID --kubeconfig F
//   kubegate approvals approve ID [--reason R] [--for 15m] [--scope any-command] --kubeconfig F
//   kubegate approvals deny ID --reason R --kubeconfig F
//   kubegate approvals revoke GRANT_ID [--reason R] --kubeconfig F
#pragma once

#include <memory>

#include <CLI/CLI.hpp>

namespace kubegate {

struct ApprovalCli;
std::shared_ptr<ApprovalCli> AddApprovalCommands(CLI::App& app);
int RunApprovalCommand(ApprovalCli& cli);

}  // namespace kubegate
