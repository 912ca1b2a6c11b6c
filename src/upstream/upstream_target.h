// UpstreamTarget: where the real API server is and how kubegate proves
// itself to it, read from a kubeconfig (file + context) or from in-cluster
// service-account files.
//
//   auto t = LoadKubeconfig("/etc/kubegate/admin.kubeconfig", "prod");
//   auto t = LoadInCluster("/var/run/secrets/kubernetes.io/serviceaccount", getenv);
#pragma once

#include <functional>
#include <string>

#include "common/result.h"

namespace kubegate {

struct UpstreamTarget {
  bool tls = true;
  std::string host;
  std::string port;
  std::string base_path;      // a server URL's path prefix, usually empty
  std::string ca_pem;         // empty: the system trust store
  bool insecure_skip_verify = false;
  std::string tls_server_name;  // SNI and name to verify; defaults to host
  std::string bearer_token;
  std::string token_file;       // re-read on change (projected SA tokens rotate)
  std::string client_cert_pem;
  std::string client_key_pem;

  std::string HostHeader() const;
};

Result<UpstreamTarget> LoadKubeconfig(const std::string& path, const std::string& context);

// `sa_dir` holds token and ca.crt; `getenv` supplies KUBERNETES_SERVICE_HOST
// and KUBERNETES_SERVICE_PORT.
Result<UpstreamTarget> LoadInCluster(const std::string& sa_dir,
                                     const std::function<const char*(const char*)>& getenv);

// Splits "https://host:port/prefix" into the target's fields.
Result<bool> ParseServerUrl(const std::string& url, UpstreamTarget& out);

}  // namespace kubegate
