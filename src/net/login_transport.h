// The network side of `kubegate login` (login/oauth_login.h): HTTPS to the
// identity provider over BlockingRequest, and the loopback listener that
// receives the browser's redirect in the code flow (RFC 8252 §7.3: an
// ephemeral port on 127.0.0.1). Blocking; CLI use only.
#pragma once

#include <memory>
#include <string>

#include "login/oauth_login.h"

namespace kubegate {

class NetLoginHttp final : public LoginHttp {
 public:
  explicit NetLoginHttp(std::string ca_file) : ca_file_(std::move(ca_file)) {}
  Result<HttpAnswer> Get(const std::string& url) override;
  Result<HttpAnswer> PostForm(const std::string& url,
                              const std::vector<std::pair<std::string, std::string>>& fields) override;

 private:
  Result<HttpAnswer> Call(const std::string& method, const std::string& url, const std::string& body);
  std::string ca_file_;
};

class LoopbackRedirectReceiver final : public RedirectReceiver {
 public:
  LoopbackRedirectReceiver();
  ~LoopbackRedirectReceiver() override;
  Result<std::string> Start() override;
  Result<std::map<std::string, std::string>> Wait(int timeout_s) override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kubegate
