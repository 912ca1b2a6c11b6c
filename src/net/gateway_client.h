// Blocking HTTP(S) requests from kubegate's own threads and CLI commands,
// never from a session's worker: one request per connection.
//   - CallGateway: to a kubegate gateway with the caller's own kubeconfig
//     credential (bearer token or client certificate), for `kubegate
//     approvals`.
//   - BlockingRequest: any URL (an OIDC issuer's discovery and keys).
//   - NetHttpsGetter: identity/oidc.h's HttpsGetter over BlockingRequest.
//
//   auto target = LoadKubeconfig("alice.kubeconfig", "");
//   auto r = CallGateway(*target, "POST", "/kubegate/v1/approvals/kg-1/approve", R"({"reason":"ok"})");
#pragma once

#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "common/result.h"
#include "identity/oidc.h"
#include "upstream/upstream_target.h"

namespace kubegate {

struct GatewayResponse {
  int status = 0;
  std::string body;
};

Result<GatewayResponse> CallGateway(const UpstreamTarget& target, const std::string& method, const std::string& path,
                                    const std::string& body);

struct BlockingCall {
  std::string method = "GET";
  std::string path = "/";  // path and query, as sent on the request line
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::chrono::seconds timeout{30};
  std::size_t max_response_body = 1 << 20;
};

// One request to `target` (TLS verified against target.ca_pem, else the
// system roots, with the host name checked). Network and TLS failures are
// 503 errors; any HTTP status is a response.
Result<GatewayResponse> BlockingRequest(const UpstreamTarget& target, const BlockingCall& call);

// Splits an http(s) URL into a target and the path + query to request.
Result<std::pair<UpstreamTarget, std::string>> TargetOfUrl(const std::string& url);

class NetHttpsGetter final : public HttpsGetter {
 public:
  Result<std::string> Get(const std::string& url, const std::string& ca_file) override;
};

}  // namespace kubegate
