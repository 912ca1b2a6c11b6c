// What kubegate removes from a caller's request and what it adds before the
// request reaches the API server (WIRE.md §5). Plain functions over header
// names so that the network layer applies them and tests check them.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "identity/identity.h"

namespace kubegate {

// Impersonate-User, -Uid, -Group and every Impersonate-Extra-* (any case).
bool IsImpersonationHeader(std::string_view name);

// Headers a caller may not pass to the cluster: Authorization and
// Proxy-Authorization (kubegate sends its own credential), every
// impersonation header, and the front-proxy X-Remote-User, X-Remote-Group and
// X-Remote-Extra-* headers.
bool IsCredentialHeader(std::string_view name);

// The header names a Connection header value lists (RFC 7230 §6.1),
// lower-cased, without "close", "keep-alive" and "upgrade" (kubegate sets
// Connection itself). Each is hop-by-hop: kubegate removes it from the
// caller's request before adding its own headers, so a hop between kubegate
// and the API server cannot strip kubegate's Impersonate-* because the
// caller listed them.
std::vector<std::string> ConnectionListedHeaders(std::string_view connection_value);

// The request id header name kubegate adds as an impersonated extra, so the
// cluster's audit event carries user.extra["kubegate-request-id"].
inline constexpr std::string_view kRequestIdExtraHeader = "Impersonate-Extra-Kubegate-Request-Id";
// Whether `name` is that header, in any case.
bool IsRequestIdExtraHeader(std::string_view name);
// How the caller authenticated at kubegate (AuthMethodName), as the
// impersonated extra "kubegate-auth-method": the cluster's audit event
// shows it beside the user. kubegate's credential needs impersonate on
// userextras/kubegate-auth-method (docs/identity.md).
inline constexpr std::string_view kAuthMethodExtraHeader = "Impersonate-Extra-Kubegate-Auth-Method";
// The task a per-task token was issued for, as "kubegate-task" (needs
// impersonate on userextras/kubegate-task).
inline constexpr std::string_view kTaskExtraHeader = "Impersonate-Extra-Kubegate-Task";

// Headers to add upstream for `who`. With `impersonate` false only the
// gateway's own credential acts (no Impersonate-* at all).
std::vector<std::pair<std::string, std::string>> ImpersonationHeaders(const Identity& who,
                                                                       std::string_view request_id,
                                                                       bool impersonate);

}  // namespace kubegate
