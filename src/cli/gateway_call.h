// One call to kubegate's own REST API as the CLI's user, with the kubeconfig
// kubegate issued them (--kubeconfig, else $KUBECONFIG, else
// ~/.kube/config): the body goes to stdout; an error's message to stderr
// after `prefix`. Returns the exit code (0, 1 refused, 2 unreachable).
#pragma once

#include <string>

namespace kubegate {

int CallGatewayAsCaller(const std::string& kubeconfig, const std::string& context, const std::string& method,
                        const std::string& path, const std::string& body, const std::string& prefix);

}  // namespace kubegate
