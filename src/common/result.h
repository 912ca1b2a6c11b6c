// Result<T>: a value or an Error, for the data path where failures are
// ordinary (bad input, a refused credential) and must not be exceptions.
//
//   Result<int> ParsePort(std::string_view s);
//   auto r = ParsePort("443");
//   if (!r) return r.error();          // propagate
//   use(*r);
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace kubegate {

// An error with the HTTP status kubegate answers with and a Kubernetes
// StatusReason (e.g. "BadRequest"); message is shown to the user verbatim.
struct Error {
  int http_code = 500;
  std::string reason = "InternalError";
  std::string message;
  // > 0: the caller may send the request again after this many seconds
  // (a Retry-After header and the Status's details.retryAfterSeconds,
  // which client-go honours by retrying on its own).
  int retry_after_seconds = 0;

  static Error BadRequest(std::string m) { return {400, "BadRequest", std::move(m)}; }
  static Error Unauthorized(std::string m) { return {401, "Unauthorized", std::move(m)}; }
  static Error Forbidden(std::string m) { return {403, "Forbidden", std::move(m)}; }
  static Error TooLarge(std::string m) { return {413, "RequestEntityTooLarge", std::move(m)}; }
  static Error HeadersTooLarge(std::string m) { return {431, "RequestHeaderFieldsTooLarge", std::move(m)}; }
  static Error BadGateway(std::string m) { return {502, "InternalError", std::move(m)}; }
  static Error Unavailable(std::string m) { return {503, "ServiceUnavailable", std::move(m)}; }
  static Error Internal(std::string m) { return {500, "InternalError", std::move(m)}; }
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}          // NOLINT(implicit)
  Result(Error error) : v_(std::move(error)) {}      // NOLINT(implicit)

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& operator*() { return std::get<0>(v_); }
  const T& operator*() const { return std::get<0>(v_); }
  T* operator->() { return &std::get<0>(v_); }
  const T* operator->() const { return &std::get<0>(v_); }
  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

}  // namespace kubegate
