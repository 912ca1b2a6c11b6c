// `kubegate identity ...` and `kubegate token create|list|revoke`:
// identities and their static tokens managed at runtime, through the
// gateway's identity API with the admin's own kubegate identity (so each
// change is an audit record of who did it).
//
//   kubegate identity create NAME [--kind agent|human] [--group G]... [--description D] --kubeconfig F
//   kubegate identity list --kubeconfig F
//   kubegate identity disable NAME [--reason R] --kubeconfig F     (any user name, however it signs in)
//   kubegate identity enable NAME [--reason R] --kubeconfig F
//   kubegate token create --identity NAME [--ttl 90d] [--reason R] --kubeconfig F   (printed once)
//   kubegate token list [--all] --kubeconfig F                                       (static and task tokens)
//   kubegate token revoke ID [--reason R] --kubeconfig F
#pragma once

#include <memory>

#include <CLI/CLI.hpp>

namespace kubegate {

struct IdentityCli;
// `token` is the existing `kubegate token` command; create, list and
// revoke are added to it.
std::shared_ptr<IdentityCli> AddIdentityCommands(CLI::App& app, CLI::App& token);
int RunIdentityCommand(IdentityCli& cli);

}  // namespace kubegate
