#include "common/k8s_status.h"

#include <nlohmann/json.hpp>

namespace kubegate {

std::string StatusJson(const Error& error, const std::string& details_name,
                       const std::string& details_kind) {
  nlohmann::ordered_json j;
  j["kind"] = "Status";
  j["apiVersion"] = "v1";
  j["metadata"] = nlohmann::json::object();
  j["status"] = "Failure";
  j["message"] = error.message;
  j["reason"] = error.reason;
  if (!details_name.empty() || !details_kind.empty()) {
    j["details"] = {{"name", details_name}, {"kind", details_kind}};
  }
  if (error.retry_after_seconds > 0) j["details"]["retryAfterSeconds"] = error.retry_after_seconds;
  j["code"] = error.http_code;
  // Messages may quote request bytes: invalid UTF-8 is replaced, never thrown.
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace kubegate
