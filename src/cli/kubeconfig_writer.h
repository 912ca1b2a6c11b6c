// Writes a ready kubeconfig for one kubegate caller: kubegate's address,
// its CA embedded, and the caller's token or client certificate, so nobody
// needs insecure-skip-tls-verify.
#pragma once

#include <string>
#include <vector>

namespace kubegate {

struct CallerKubeconfig {
  std::string server;      // https://host:port
  std::string ca_pem;      // kubegate's CA
  std::string user;        // names the context and user entries
  std::string token;       // either a bearer token ...
  std::string client_cert_pem;  // ... or a client certificate and key
  std::string client_key_pem;
  // ... or a credential plugin kubectl runs (client.authentication.k8s.io/v1
  // ExecCredential): the command, then its arguments.
  std::vector<std::string> exec;
  std::string namespace_;  // optional default namespace
};

std::string RenderKubeconfig(const CallerKubeconfig& k);

}  // namespace kubegate
