#pragma once
// Outgoing calls of the Bookinfo services: where a peer is (Istio's environment variables plus
// Mast's *_URL override), which request headers travel along, and a blocking HTTP/1.1 GET on a
// fresh connection with a per-operation timeout.
#include <array>
#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/result.h"
#include "http/header_map.h"

namespace mast::bookinfo {

// Headers every service copies from its incoming request onto its outgoing calls, in this order:
// Istio's Bookinfo list plus the single-header "b3". productpage leaves out "end-user" because it
// derives that header from the login cookie instead.
inline constexpr std::array<std::string_view, 21> kPropagatedHeaders = {
    "x-request-id",
    "x-ot-span-context",
    "x-datadog-trace-id",
    "x-datadog-parent-id",
    "x-datadog-sampling-priority",
    "traceparent",
    "tracestate",
    "x-cloud-trace-context",
    "grpc-trace-bin",
    "x-b3-traceid",
    "x-b3-spanid",
    "x-b3-parentspanid",
    "x-b3-sampled",
    "x-b3-flags",
    "b3",
    "sw8",
    "end-user",
    "user-agent",
    "cookie",
    "authorization",
    "jwt"};

// The parts of a URL the services need, split the way urllib.parse.urlsplit does (a scheme needs
// a leading letter, so "127.0.0.1:9081" has none and yields no hostname).
struct UrlParts {
  std::string scheme;       // lower-case; empty when absent
  std::string hostname;     // lower-case, IPv6 brackets removed; empty when absent
  std::optional<int> port;  // absent when the URL names none
  std::string path;
};
// An error when the port is not a number in 0-65535.
Result<UrlParts> splitUrl(std::string_view url);

using HeaderList = std::vector<std::pair<std::string, std::string>>;

// The propagated headers present in `incoming` (first value of each), in kPropagatedHeaders order.
HeaderList forwardHeaders(const http::HeaderMap& incoming, bool include_end_user = true);

// Where a service calls a peer. `authority` is the logical name ("details:9080"), always sent as
// the Host header so that a mesh proxy in between can route by it; the TCP connection goes to
// connect_host:connect_port, which is the logical name itself unless <NAME>_URL points elsewhere
// (a local sidecar listener, or the real server in tests).
struct Upstream {
  std::string name;
  std::string authority;
  std::string connect_host;
  int connect_port = 0;
  std::string path_prefix;  // from <NAME>_URL's path, without a trailing "/"

  std::string baseUrl() const { return "http://" + authority; }
};

// The upstream for peer `name` (details, reviews or ratings) from the environment:
// <NAME>_HOSTNAME (default `name`), SERVICES_DOMAIN (appended as ".domain"), <NAME>_SERVICE_PORT
// (default 9080), and <NAME>_URL (http://host:port[/prefix]) to connect to instead. An error
// when <NAME>_URL or <NAME>_SERVICE_PORT is malformed.
Result<Upstream> upstreamFromEnv(std::string_view name);

struct UpstreamResponse {
  int status = 0;
  std::string body;
  http::HeaderMap headers;  // lower-case names
};

// One request on a fresh connection, closed afterwards: Bookinfo deliberately does not pool
// connections, so that load spreads over backend versions. `timeout` bounds the connect (per
// resolved address) and every single send and receive, not the whole exchange; the services'
// timeouts are defined that way (Python requests / JAX-RS client semantics).
struct OutgoingRequest {
  std::string connect_host;
  int connect_port = 0;
  bool tls = false;         // verified against the system CAs and connect_host
  std::string target;       // "/details/0"
  std::string host_header;  // the Host header's value
  HeaderList headers;       // sent after "accept-encoding: identity", in order
  std::chrono::milliseconds timeout{3000};
};

// The response, or why there is none (resolution, connect, TLS, timeout, reset, malformed).
Result<UpstreamResponse> sendGet(const OutgoingRequest& request);

// GET upstream.path_prefix + path with Host = upstream.authority and "accept: application/json"
// unless `headers` carries an accept header. A "host" in `headers` is dropped.
Result<UpstreamResponse> httpGet(const Upstream& upstream, std::string_view path,
                                 const HeaderList& headers, std::chrono::milliseconds timeout);

}  // namespace mast::bookinfo
