#pragma once
// Small HTTP helpers of the connection manager and router (pure functions except where a worker
// supplies randomness or its cached clock).
#include <optional>
#include <string>
#include <string_view>

namespace mast::proxy::server {

class Worker;

// RFC 3986 dot-segment removal (normalize_path) and merge_slashes; the query is untouched.
// nullopt when the path is invalid (e.g. it escapes above the root with encoded tricks).
std::optional<std::string> normalizePath(std::string_view path, bool normalize, bool merge_slashes);
// The address `trusted_hops` entries from the right of an x-forwarded-for value.
std::optional<std::string> xffClientAddress(std::string_view xff, uint32_t trusted_hops);
// Random UUID v4 (x-request-id).
std::string uuid4(Worker& w);
// IMF-fixdate for the date header, cached per second per thread.
const std::string& httpDate(Worker& w);
// Envoy's HTTP status → gRPC status mapping for local replies to gRPC requests.
int grpcStatusForHttp(int http_status);
// Reason phrase of a status code.
std::string_view reasonPhrase(int status);

}  // namespace mast::proxy::server
