// RequestInfo as a JSON value (keys sorted), for audit records and
// `kubegate classify`. Kept apart from request_info.h so that header stays
// free of nlohmann/json.
#pragma once

#include <nlohmann/json.hpp>

#include "classify/request_info.h"

namespace kubegate {

nlohmann::json RequestInfoJson(const RequestInfo& info);

}  // namespace kubegate
