// Builds metav1.Status bodies for every error kubegate itself answers, so
// kubectl prints "Error from server (Reason): message" (or, for 401,
// "error: You must be logged in to the server (message)").
#pragma once

#include <string>

#include "common/result.h"

namespace kubegate {

// Returns the JSON text of a Failure Status for `error`. `details_name` and
// `details_kind` fill Status.details when not empty.
std::string StatusJson(const Error& error, const std::string& details_name = "",
                       const std::string& details_kind = "");

}  // namespace kubegate
