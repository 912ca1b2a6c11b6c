// Fuzz target: JSON kubegate reads from the API server and from callers'
// bodies to show people, and the JSON escaper of recordings. The input is
// used as a Namespace object, a dry-run answer, a held write's body, and a
// string to escape. Nothing may throw, and the escaped string must parse
// back as a JSON string.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "approval/approval_api.h"
#include "audit/audit_record.h"
#include "common/text.h"
#include "policy/namespace_labels.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  (void)kubegate::ParseNamespaceLabels(in);
  (void)kubegate::DescribeDryRunAnswer(size % 2 ? 200 : 409, in);
  (void)kubegate::SummarizeRequestBody(kubegate::RedactRequestBody("configmaps", "application/json", in));
  std::string escaped;
  kubegate::AppendJsonString(escaped, in);
  auto j = nlohmann::json::parse(escaped, nullptr, false);
  if (!j.is_string()) std::abort();
  return 0;
}
