// The gateway's two TLS contexts: the server side callers connect to (its
// serving certificate, HTTP/1.1 by ALPN, optional client certificates whose
// verification the authenticate stage judges), and the client side to the
// API server (its CA, optional client certificate, HTTP/1.1 only, since
// exec and port-forward upgrade).
#pragma once

#include <memory>
#include <string>

#include <boost/asio/ssl/context.hpp>

#include "common/result.h"
#include "config/config.h"
#include "upstream/upstream_target.h"

namespace kubegate {

Result<std::unique_ptr<boost::asio::ssl::context>> MakeServerTlsContext(const std::string& cert_file,
                                                                        const std::string& key_file,
                                                                        const ClientCertConfig& client_certs);
Result<std::unique_ptr<boost::asio::ssl::context>> MakeUpstreamTlsContext(const UpstreamTarget& upstream);

}  // namespace kubegate
