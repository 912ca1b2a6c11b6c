// Certificates kubegate makes for itself: a CA in its data directory, a
// serving certificate signed by it, and client certificates for callers.
// Plain OpenSSL 3; PEM text in and out.
//
//   auto pki = EnsureGatewayPki("/var/lib/kubegate", {"gate.example.com"});
//   // pki->ca_cert_file goes into callers' kubeconfigs
#pragma once

#include <string>
#include <vector>

#include "common/result.h"

namespace kubegate {

struct KeyPair {
  std::string cert_pem;
  std::string key_pem;
};

// A self-signed CA (EC P-256, 10 years).
Result<KeyPair> MakeCa(const std::string& common_name);

// A leaf certificate signed by `ca`. `hosts` become DNS or IP SANs;
// `organizations` the subject's O entries (Kubernetes groups). `client`
// selects clientAuth instead of serverAuth.
Result<KeyPair> IssueCert(const KeyPair& ca, const std::string& common_name,
                          const std::vector<std::string>& organizations,
                          const std::vector<std::string>& hosts, bool client, int valid_days = 825);

struct GatewayPki {
  std::string ca_cert_file;
  std::string server_cert_file;
  std::string server_key_file;
  bool created = false;  // false: reused what was there
};

// Creates data_dir/pki/{ca.crt,ca.key,server.crt,server.key} on first use
// and reuses them after. The serving certificate covers localhost,
// 127.0.0.1, ::1 and `extra_hosts`.
Result<GatewayPki> EnsureGatewayPki(const std::string& data_dir, const std::vector<std::string>& extra_hosts);

// Reads a whole file; Error when it cannot.
Result<std::string> ReadFile(const std::string& path);
// Writes a file atomically (temp + rename) with the given mode.
Result<bool> WriteFileAtomic(const std::string& path, const std::string& data, unsigned mode);

}  // namespace kubegate
