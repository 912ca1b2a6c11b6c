// Field and label selector checks, as far as RequestInfo needs them: the API
// server takes a list's or watch's object name from
// fieldSelector=metadata.name=X only when every list option decodes.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace kubegate {

// The outcome of checking input against a grammar kubegate only partly
// implements: kUnsure means kubegate cannot tell how the API server reads it.
enum class Verdict { kValid, kInvalid, kUnsure };

// fields.ParseSelector: returns nullopt when the selector does not parse;
// otherwise the value of the first (in sorted term order) `metadata.name=`
// or `metadata.name==` term, or "" when there is none.
struct FieldSelectorName {
  bool parsed = false;
  std::optional<std::string> name;
};
FieldSelectorName ExactNameFromFieldSelector(std::string_view selector);

// labels.Parse, for the common grammar (key, !key, key=v, key==v, key!=v,
// key in (...), key notin (...), key>n, key<n) with Kubernetes key and value
// validation. Anything else is kUnsure.
Verdict CheckLabelSelector(std::string_view selector);

// path.IsValidPathSegmentName: not "." or "..", and no '/' or '%'.
bool IsValidPathSegmentName(std::string_view name);

// strconv.ParseInt(s, 10, 64) succeeds.
bool ParsesAsInt64(std::string_view s);

}  // namespace kubegate
