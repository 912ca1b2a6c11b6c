// GatewayClient: one HTTPS request to a kubegate gateway with the caller's
// own kubeconfig credential (bearer token or client certificate), for the
// `kubegate approvals` commands. Blocking; CLI use only.
//
//   auto target = LoadKubeconfig("alice.kubeconfig", "");
//   auto r = CallGateway(*target, "POST", "/kubegate/v1/approvals/kg-1/approve", R"({"reason":"ok"})");
#pragma once

#include <string>

#include "common/result.h"
#include "upstream/upstream_target.h"

namespace kubegate {

struct GatewayResponse {
  int status = 0;
  std::string body;
};

Result<GatewayResponse> CallGateway(const UpstreamTarget& target, const std::string& method, const std::string& path,
                                    const std::string& body);

}  // namespace kubegate
