// Fuzz target: the request-head path of the gateway without sockets: Beast's
// parser (with kubegate's limits), the framing checks, then classification.
#include <cstddef>
#include <cstdint>

#include <boost/asio/buffer.hpp>
#include <boost/beast/http.hpp>

#include "classify/request_info.h"
#include "common/limits.h"
#include "net/http_framing.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace http = boost::beast::http;
  http::request_parser<http::empty_body> parser;
  parser.header_limit(64 * 1024);
  parser.body_limit(boost::none);
  parser.eager(false);
  boost::beast::error_code ec;
  parser.put(boost::asio::buffer(data, size), ec);
  if (ec) {
    (void)kubegate::ParseErrorToStatus(ec);
    return 0;
  }
  if (!parser.is_header_done()) return 0;
  if (kubegate::CheckFraming(parser.get())) return 0;
  auto info = kubegate::ClassifyRequest(std::string(parser.get().method_string()), std::string(parser.get().target()));
  if (info) (void)kubegate::ToJson(*info);
  return 0;
}
