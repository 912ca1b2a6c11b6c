// Reads a kubectl command line as the request it sends, for
// `kubegate policy explain -- kubectl delete ns prod`. Covers the verbs
// people ask policy questions about (get, describe, delete, exec, attach,
// port-forward, logs, scale, edit/patch, create/apply of named resources)
// and the built-in resources with their short names; anything else needs
// --method and --url.
//
//   auto t = KubectlToRequest({"kubectl", "delete", "ns", "prod"}, "default");
//   t->method == "DELETE"; t->target == "/api/v1/namespaces/prod";
#pragma once

#include <string>
#include <vector>

#include "common/result.h"

namespace kubegate {

struct KubectlRequest {
  std::string method;
  std::string target;
  bool impersonation = false;  // --as / --as-group
};

Result<KubectlRequest> KubectlToRequest(const std::vector<std::string>& argv, const std::string& default_namespace);

}  // namespace kubegate
