// Go's time.ParseDuration, as a check: kube-apiserver parses a request's
// `timeout` parameter with it and answers 400 when it fails
// (k8s.io/apiserver pkg/endpoints/filters/request_deadline.go, parseTimeout),
// so kubegate refuses the same requests rather than record them as allowed.
//
//   IsGoDuration("1m30s");  // true
//   IsGoDuration("5");      // false: a unit is required (only "0" stands alone)
#pragma once

#include <string_view>

namespace kubegate {

// [-+]?([0-9]*(\.[0-9]*)?(ns|us|µs|μs|ms|s|m|h))+ or "0", with at least one
// digit per component and the total within an int64 of nanoseconds.
bool IsGoDuration(std::string_view s);

}  // namespace kubegate
