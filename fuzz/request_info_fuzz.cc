// Fuzz target: RequestInfo classification of arbitrary method/target/body.
// Input layout: METHOD '\n' TARGET '\n' BODY.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "approval/dry_run_request.h"
#include "classify/request_info.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  std::size_t a = in.find('\n');
  if (a == std::string_view::npos) return 0;
  std::size_t b = in.find('\n', a + 1);
  std::string_view method = in.substr(0, a);
  std::string_view target = in.substr(a + 1, b == std::string_view::npos ? std::string_view::npos : b - a - 1);
  std::string_view body = b == std::string_view::npos ? std::string_view() : in.substr(b + 1);
  // The approvers' dry run of this request: when built, it must read as
  // a dry run (BuildApproversDryRun's own promise, checked again here).
  auto dry = kubegate::BuildApproversDryRun({std::string(method), std::string(target), "application/json", std::string(body)});
  if (dry) {
    auto again = kubegate::ClassifyOwnRequest(dry->request);
    if (!again || !again->dry_run) __builtin_trap();
  }
  auto info = kubegate::ClassifyRequest(method, target);
  if (!info) return 0;
  if (kubegate::NeedsBodyToClassify(*info)) kubegate::ApplyDeleteBody(*info, "application/json", body);
  (void)kubegate::ToJson(*info);
  return 0;
}
