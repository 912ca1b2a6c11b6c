// `kubegate policy ...`: checking and explaining a policy without a cluster.
//
//   kubegate policy check FILE
//   kubegate policy explain --policy FILE --as USER [--group G]... [--kind agent] -- kubectl delete ns prod
//   kubegate policy explain --policy FILE --as USER --method DELETE --url /api/v1/namespaces/prod
#pragma once

#include <memory>

#include <CLI/CLI.hpp>

namespace kubegate {

struct PolicyCli;
std::shared_ptr<PolicyCli> AddPolicyCommands(CLI::App& app);
// The exit code, or -1 when no policy command was selected.
int RunPolicyCommand(PolicyCli& cli);

}  // namespace kubegate
