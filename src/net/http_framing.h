// Checks on a parsed HTTP/1.1 request head that Beast's parser leaves to
// the application: request smuggling (Content-Length with
// Transfer-Encoding, conflicting Content-Lengths), Host rules, and the
// mapping of parse errors to the Status kubegate answers with.
//
//   http::request_parser<http::empty_body> p;  ... read the head ...
//   if (auto err = CheckFraming(p.get())) reply(*err);   // 400
#pragma once

#include <optional>

#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/message.hpp>

#include "common/result.h"

namespace kubegate {

std::optional<Error> CheckFraming(const boost::beast::http::request<boost::beast::http::empty_body>& req);

// header_limit -> 431, body_limit -> 413, anything else -> 400.
Error ParseErrorToStatus(const boost::beast::error_code& ec);

}  // namespace kubegate
