#include "cli/gateway_call.h"

#include <cstdlib>
#include <iostream>

#include <nlohmann/json.hpp>

#include "net/gateway_client.h"
#include "upstream/upstream_target.h"

namespace kubegate {

int CallGatewayAsCaller(const std::string& kubeconfig, const std::string& context, const std::string& method,
                        const std::string& path, const std::string& body, const std::string& prefix) {
  std::string kc = kubeconfig;
  if (kc.empty() && std::getenv("KUBECONFIG")) kc = std::getenv("KUBECONFIG");
  if (kc.empty() && std::getenv("HOME")) kc = std::string(std::getenv("HOME")) + "/.kube/config";
  auto target = LoadKubeconfig(kc, context);
  if (!target) {
    std::cerr << prefix << ": " << target.error().message << "\n";
    return 2;
  }
  auto r = CallGateway(*target, method, path, body);
  if (!r) {
    std::cerr << prefix << ": " << r.error().message << "\n";
    return 2;
  }
  if (r->status >= 400) {
    auto j = nlohmann::json::parse(r->body, nullptr, false);
    std::cerr << prefix << ": " << (j.is_object() && j.contains("message") ? j["message"].get<std::string>() : r->body)
              << "\n";
    return 1;
  }
  std::cout << r->body;
  if (!r->body.empty() && r->body.back() != '\n') std::cout << "\n";
  return 0;
}

}  // namespace kubegate
