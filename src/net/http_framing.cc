#include "net/http_framing.h"

#include <algorithm>
#include <cctype>
#include <string>

namespace kubegate {
namespace http = boost::beast::http;

namespace {
bool IEquals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}
}  // namespace

Error ParseErrorToStatus(const boost::beast::error_code& ec) {
  if (ec == http::error::header_limit) return Error::HeadersTooLarge("request header fields too large");
  if (ec == http::error::body_limit) return Error::TooLarge("request body too large");
  return Error::BadRequest("malformed HTTP request: " + ec.message());
}

std::optional<Error> CheckFraming(const http::request<http::empty_body>& req) {
  int content_lengths = 0;
  std::string first_cl;
  int transfer_encodings = 0;
  int hosts = 0;
  for (const auto& f : req) {
    if (f.name() == http::field::content_length) {
      if (content_lengths++ && std::string(f.value()) != first_cl) {
        return Error::BadRequest("conflicting Content-Length headers");
      }
      first_cl = std::string(f.value());
    } else if (f.name() == http::field::transfer_encoding) {
      ++transfer_encodings;
      if (!IEquals(f.value(), "chunked")) return Error::BadRequest("unsupported Transfer-Encoding");
    } else if (f.name() == http::field::host) {
      ++hosts;
    }
  }
  if (content_lengths && transfer_encodings) return Error::BadRequest("Content-Length together with Transfer-Encoding");
  if (transfer_encodings > 1) return Error::BadRequest("repeated Transfer-Encoding");
  if (req.version() >= 11 && hosts != 1) return Error::BadRequest("missing or repeated Host header");
  return std::nullopt;
}

}  // namespace kubegate
