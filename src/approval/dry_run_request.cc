#include "approval/dry_run_request.h"

#include <algorithm>
#include <cctype>

#include <nlohmann/json.hpp>

namespace kubegate {
namespace {

std::string MediaType(std::string_view content_type) {
  std::string_view media = content_type.substr(0, content_type.find(';'));
  while (!media.empty() && media.back() == ' ') media.remove_suffix(1);
  while (!media.empty() && media.front() == ' ') media.remove_prefix(1);
  return std::string(media);
}

bool EqualsIgnoringCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](unsigned char x, unsigned char y) {
           return std::tolower(x) == std::tolower(y);
         });
}

// The caller's DeleteOptions with dryRun: ["All"]. Every key that any JSON
// decoder could read as dryRun (older Go decoders matched keys ignoring
// case) is removed first, so exactly one dryRun remains.
Result<std::string> DeleteOptionsWithDryRun(const OwnRequest& held) {
  nlohmann::json options = nlohmann::json::object();
  if (!held.body.empty()) {
    std::string media = MediaType(held.content_type);
    if (!media.empty() && media != "application/json") {
      return Error::BadRequest("kubegate cannot add dryRun to a " + media + " DeleteOptions body");
    }
    options = nlohmann::json::parse(held.body, nullptr, /*allow_exceptions=*/false);
    if (!options.is_object()) return Error::BadRequest("the DeleteOptions body is not a JSON object");
  }
  for (auto it = options.begin(); it != options.end();) {
    it = EqualsIgnoringCase(it.key(), "dryRun") ? options.erase(it) : std::next(it);
  }
  options["dryRun"] = nlohmann::json::array({"All"});
  return options.dump(-1, ' ', false, nlohmann::json::error_handler_t::strict);
}

bool SameAction(const RequestInfo& a, const RequestInfo& b) {
  return a.is_resource_request == b.is_resource_request && a.verb == b.verb && a.api_group == b.api_group &&
         a.api_version == b.api_version && a.namespace_ == b.namespace_ && a.resource == b.resource &&
         a.subresource == b.subresource && a.name == b.name && a.stream == b.stream;
}

}  // namespace

Result<RequestInfo> ClassifyOwnRequest(const OwnRequest& r) {
  auto info = ClassifyRequest(r.method, r.target);
  if (!info) return info.error();
  if (NeedsBodyToClassify(*info)) ApplyDeleteBody(*info, r.content_type, r.body);
  return info;
}

Result<DryRunRequest> BuildApproversDryRun(const OwnRequest& held) {
  auto original = ClassifyOwnRequest(held);
  if (!original) return original.error();
  if (!HonoursDryRun(*original)) {
    return Error::BadRequest("the API server does not honour dryRun for a " + original->verb +
                             (original->subresource.empty() ? "" : " of " + original->subresource));
  }
  DryRunRequest out;
  out.request = held;
  if (NeedsBodyToClassify(*original)) {
    auto body = DeleteOptionsWithDryRun(held);
    if (!body) return body.error();
    out.request.body = std::move(*body);
    out.request.content_type = "application/json";
  } else {
    out.request.target += (held.target.find('?') == std::string::npos ? "?" : "&");
    out.request.target += "dryRun=All";
  }
  // Read back exactly what will be sent; send it only as a dry run of the
  // same action.
  auto info = ClassifyOwnRequest(out.request);
  if (!info) return info.error();
  if (!info->dry_run) {
    return Error::BadRequest("the request would not read as a dry run to the API server (its own dryRun values "
                             "are not all \"All\")");
  }
  if (!SameAction(*original, *info)) return Error::BadRequest("adding dryRun would change what the request names");
  out.info = std::move(*info);
  return out;
}

}  // namespace kubegate
