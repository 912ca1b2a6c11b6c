// Fuzz target: the query and selector readers kubegate decides with: Go's
// query parsing, label and field selectors, the acting query that binds an
// approval, and Go durations (the timeout parameter).
// Input: a raw query string (what follows '?').
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "classify/go_duration.h"
#include "classify/go_url.h"
#include "classify/request_info.h"
#include "classify/selectors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view raw(reinterpret_cast<const char*>(data), size);
  kubegate::QueryValues q = kubegate::ParseQuery(raw);
  for (const auto& [k, v] : q.pairs()) {
    (void)kubegate::CheckLabelSelector(v);
    (void)kubegate::ExactNameFromFieldSelector(v);
    (void)kubegate::IsGoDuration(v);
    (void)kubegate::IsValidPathSegmentName(k);
  }
  // The same query on a list, a watch, an exec and a delete: the acting
  // query is sorted and stable, and reading it twice gives the same.
  for (const char* prefix : {"GET /api/v1/namespaces/x/pods?", "POST /api/v1/namespaces/x/pods/p/exec?",
                             "DELETE /api/v1/namespaces/x/configmaps?"}) {
    std::string_view p(prefix);
    std::string target = std::string(p.substr(p.find(' ') + 1)) + std::string(raw);
    auto info = kubegate::ClassifyRequest(p.substr(0, p.find(' ')), target);
    if (!info) continue;
    auto acting = kubegate::ActingQuery(*info);
    for (std::size_t i = 1; i < acting.size(); ++i) {
      if (acting[i - 1].first > acting[i].first) __builtin_trap();
    }
    if (kubegate::ActingQuery(*info) != acting) __builtin_trap();
    (void)kubegate::SelectorQuery(*info);
  }
  return 0;
}
