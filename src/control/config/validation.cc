#include "control/config/validation.h"

#include <arpa/inet.h>
#include <re2/re2.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <set>

#include "istio/networking/v1alpha3/destination_rule.pb.h"
#include "istio/networking/v1alpha3/gateway.pb.h"
#include "istio/networking/v1alpha3/service_entry.pb.h"
#include "istio/networking/v1alpha3/sidecar.pb.h"
#include "istio/networking/v1alpha3/virtual_service.pb.h"
#include "istio/networking/v1alpha3/workload_entry.pb.h"
#include "istio/networking/v1alpha3/workload_group.pb.h"
#include "istio/security/v1beta1/authorization_policy.pb.h"
#include "istio/security/v1beta1/peer_authentication.pb.h"
#include "istio/security/v1beta1/request_authentication.pb.h"
#include "istio/telemetry/v1alpha1/telemetry.pb.h"

namespace mast::control::config {

namespace net = istio::networking::v1alpha3;
namespace sec = istio::security::v1beta1;
namespace tel = istio::telemetry::v1alpha1;
namespace typ = istio::type::v1beta1;
using google::protobuf::Duration;

namespace {

std::string q(const std::string& s) { return "\"" + s + "\""; }
std::string idx(const std::string& p, const char* f, size_t i) {
  return p + "." + f + "[" + std::to_string(i) + "]";
}
std::string at(const std::string& p, const char* f) { return p + "." + f; }
std::string key(const std::string& p, const std::string& k) { return p + "." + k; }

std::string fmtDouble(double v) {
  char buf[64];
  snprintf(buf, sizeof(buf), "%g", v);
  return buf;
}

bool isAlnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

// Kubernetes' qualified name: [A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?
bool isQualifiedName(const std::string& s) {
  if (s.empty() || s.size() > 63) return false;
  if (!isAlnum(s.front()) || !isAlnum(s.back())) return false;
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return isAlnum(c) || c == '-' || c == '_' || c == '.'; });
}

bool isWildcardDns1123Label(const std::string& s) {
  if (s.size() > 63 || s.empty()) return false;
  if (s == "*") return true;
  std::string rest = s;
  if (rest.rfind("*-", 0) == 0) {
    rest = rest.substr(2);
  } else if (rest[0] == '*') {
    rest = rest.substr(1);
  }
  return isDns1123Label(rest);
}

// Kubernetes DNS-1123 subdomain (object names): lowercase labels joined by '.', ≤ 253.
bool isDns1123Subdomain(const std::string& s) {
  if (s.empty() || s.size() > 253) return false;
  size_t start = 0;
  while (true) {
    size_t dot = s.find('.', start);
    std::string label = s.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (label.empty()) return false;
    for (char c : label) {
      if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
    }
    if (label.front() == '-' || label.back() == '-') return false;
    if (dot == std::string::npos) return true;
    start = dot + 1;
  }
}

bool isLowerDns1123Label(const std::string& s) {
  return isDns1123Subdomain(s) && s.find('.') == std::string::npos && s.size() <= 63;
}

// `shown` is the whole name for messages; `domain` the part being checked.
std::string checkDnsLabels(const std::string& shown, const std::string& domain) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    size_t dot = domain.find('.', start);
    parts.push_back(
        domain.substr(start, dot == std::string::npos ? std::string::npos : dot - start));
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  const std::string& tld = parts.back();
  if (!tld.empty() &&
      std::all_of(tld.begin(), tld.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return "domain name " + q(shown) + " invalid (top level domain " + q(tld) +
           " cannot be all-numeric)";
  }
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i == parts.size() - 1 && parts[i].empty()) return "";  // trailing dot: "istio.io."
    if (!isDns1123Label(parts[i])) {
      return "domain name " + q(shown) + " invalid (label " + q(parts[i]) + " invalid)";
    }
  }
  return "";
}

std::string checkDnsPreconditions(const std::string& name) {
  if (name.size() > 255) return "domain name " + q(name) + " too long (max 255)";
  if (name.empty()) return "empty domain name not allowed";
  return "";
}

std::string checkDuration(const Duration& d) {
  __int128 nanos = static_cast<__int128>(d.seconds()) * 1000000000 + d.nanos();
  if (nanos < 1000000) return "duration must be greater than 1ms";
  if (nanos % 1000000 != 0) return "only durations to ms precision are supported";
  return "";
}

bool isIp(const std::string& s) {
  unsigned char buf[16];
  return inet_pton(AF_INET, s.c_str(), buf) == 1 || inet_pton(AF_INET6, s.c_str(), buf) == 1;
}

// Collects errors under a path.
class Errors {
 public:
  explicit Errors(std::vector<FieldError>& out) : out_(out) {}
  void add(const std::string& path, const std::string& message) {
    if (!message.empty()) out_.push_back({path, message});
  }

 private:
  std::vector<FieldError>& out_;
};

// ---------------------------------------------------------------- shared pieces

const std::set<std::string, std::less<>>& knownProtocols() {
  static const std::set<std::string, std::less<>> p = {"HTTP",  "HTTPS", "GRPC", "GRPC-WEB",
                                                       "HTTP2", "MONGO", "TCP",  "TLS",
                                                       "REDIS", "MYSQL", "UDP",  "HTTP_PROXY"};
  return p;
}

std::string upper(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

bool isHttpProtocol(const std::string& p) {
  std::string u = upper(p);
  return u == "HTTP" || u == "HTTP2" || u == "GRPC" || u == "GRPC-WEB" || u == "HTTP_PROXY";
}
bool isTlsProtocol(const std::string& p) {
  std::string u = upper(p);
  return u == "HTTPS" || u == "TLS";
}
void validateProtocol(const std::string& path, const std::string& protocol, Errors& e) {
  if (!protocol.empty() && !knownProtocols().contains(upper(protocol))) {
    e.add(path, "unsupported protocol: " + protocol);
  }
}

void validatePortName(const std::string& path, const std::string& name, Errors& e) {
  if (!isDns1123Label(name)) e.add(path, "invalid port name: " + q(name));
}

void validateLabels(const std::string& path,
                    const google::protobuf::Map<std::string, std::string>& labels, Errors& e) {
  for (const auto& [k, v] : labels) {
    std::string name = k;
    if (auto slash = k.find('/'); slash != std::string::npos) {
      std::string prefix = k.substr(0, slash);
      name = k.substr(slash + 1);
      if (prefix.size() > 253 || !isDns1123Subdomain(prefix)) {
        e.add(key(path, k), "invalid label key: " + q(k));
        continue;
      }
    }
    if (!isQualifiedName(name)) e.add(key(path, k), "invalid label key: " + q(k));
    if (!v.empty() && !isQualifiedName(v)) e.add(key(path, k), "invalid label value: " + q(v));
  }
}

void validateSelectorLabels(const std::string& path,
                            const google::protobuf::Map<std::string, std::string>& labels,
                            Errors& e) {
  for (const auto& [k, v] : labels) {
    if (k.empty()) e.add(path, "empty key is not supported in selector: " + q(k + "=" + v));
    if (k.find('*') != std::string::npos || v.find('*') != std::string::npos) {
      e.add(key(path, k), "wildcard is not supported in selector: " + q(k + "=" + v));
    }
  }
}

void validateExportTo(const std::string& path, const std::string& ns,
                      const google::protobuf::RepeatedPtrField<std::string>& export_to,
                      bool is_service_entry, bool is_dr_with_selector, Errors& e) {
  std::set<std::string> seen;
  for (int i = 0; i < export_to.size(); ++i) {
    const std::string& v = export_to[i];
    std::string p = path + "[" + std::to_string(i) + "]";
    std::string k = v == "." ? ns : v;
    if (seen.contains(k)) {
      e.add(p, k != v ? "duplicate entries in exportTo: . and current namespace " + ns
                      : "duplicate entries in exportTo for entry " + v);
      continue;
    }
    if (v != "*" && v != "." && v != "~" && !isLowerDns1123Label(v)) {
      e.add(p, "invalid exportTo value " + q(v) +
                   " (expected \".\", \"*\", \"~\" or a namespace name)");
      continue;
    }
    seen.insert(k);
  }
  if (seen.empty()) return;
  if (is_dr_with_selector) {
    if (seen.contains(ns)) {
      if (seen.size() > 1) {
        e.add(path,
              "destination rule with workload selector cannot have multiple entries in exportTo");
      }
    } else {
      e.add(
          path,
          "destination rule with workload selector cannot have exportTo beyond current namespace");
    }
  }
  if (seen.contains("*") && export_to.size() > 1) {
    e.add(path, "cannot have both public (*) and non-public exportTo values for a resource");
  }
  if (seen.contains("~") && export_to.size() > 1) {
    e.add(path, is_service_entry ? "cannot export service entry to no one (~) and someone"
                                 : "cannot export to no one (~) and someone");
  }
}

void validateDurationField(const std::string& path, bool has, const Duration& d, Errors& e) {
  if (has) e.add(path, checkDuration(d));
}

void validatePercentage(const std::string& path, const net::Percent& p, Errors& e) {
  double v = p.value();
  if (v < 0.0 || v > 100.0 || (v > 0.0 && v < 0.0001)) {
    e.add(path, "percentage " + fmtDouble(v) + " is neither 0.0, nor in range [0.0001, 100.0]");
  }
}

void validateStringMatch(const std::string& path, const net::StringMatch& m,
                         bool allow_empty_prefix, Errors& e) {
  switch (m.match_type_case()) {
    case net::StringMatch::kPrefix:
      if (m.prefix().empty() && !allow_empty_prefix) {
        e.add(at(path, "prefix"), "prefix string match should not be empty");
      }
      break;
    case net::StringMatch::kRegex:
      if (m.regex().empty()) {
        e.add(at(path, "regex"), "regex string match should not be empty");
      } else {
        e.add(at(path, "regex"), checkRegex(m.regex()));
      }
      break;
    default:
      break;
  }
}

// HTTP header names as used in matches and header operations: RFC 7230 tokens, lowercase
// (Istio requires lowercase names for matching).
bool isHeaderToken(const std::string& name) {
  if (name.empty()) return false;
  static const std::string kExtra = "!#$%&'*+-.^_`|~";
  return std::all_of(name.begin(), name.end(),
                     [](char c) { return isAlnum(c) || kExtra.find(c) != std::string::npos; });
}

// Header names in matches: RFC 7230 tokens (Envoy matches names case-insensitively), the
// HTTP/2 pseudo headers, or Istio's "@request.auth.claims..." JWT-claim form.
void validateHeaderName(const std::string& path, const std::string& name, Errors& e) {
  static const std::set<std::string, std::less<>> kPseudo = {":method", ":scheme", ":authority",
                                                             ":path", ":status"};
  if (name.empty()) {
    e.add(path, "header name cannot be empty");
  } else if (name.rfind("@request.auth.claims", 0) == 0 || kPseudo.contains(name)) {
    return;
  } else if (!isHeaderToken(name)) {
    e.add(path, "header name " + name + " is not a valid header name");
  }
}

void validateHeaderValue(const std::string& path, const std::string& value, Errors& e) {
  for (char c : value) {
    if ((c < 0x20 && c != '\t') || c == 0x7f) {
      e.add(path, "header value configuration " + value + " is invalid");
      return;
    }
  }
}

// Names in headers.request/response.set/add/remove. `request_set_add`: the request's set/add,
// where host/:authority is allowed (it becomes a host rewrite).
void validateHeaderOperationName(const std::string& path, const std::string& name,
                                 bool request_set_add, Errors& e) {
  if (name.empty()) {
    e.add(path, "header name cannot be empty");
    return;
  }
  std::string lower = name;
  for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  bool authority = lower == "host" || lower == ":authority";
  if (request_set_add) {
    if ((lower[0] == ':' || lower == "host") && !authority) {
      e.add(path, "invalid header " + q(name) + ": header cannot have \":\" prefix");
    }
    return;
  }
  if (lower == "host") {
    e.add(path, "invalid header " + q(name) + ": cannot set Host header");
  } else if (lower[0] == ':') {
    e.add(path, "invalid header " + q(name) + ": header cannot have \":\" prefix");
  }
}

void validateHeaders(const std::string& path, const net::Headers& h, Errors& e) {
  auto ops = [&](const std::string& p, const net::Headers::HeaderOperations& o, bool request) {
    for (const auto& [n, v] : o.set()) {
      validateHeaderOperationName(key(at(p, "set"), n), n, request, e);
      validateHeaderValue(key(at(p, "set"), n), v, e);
    }
    for (const auto& [n, v] : o.add()) {
      validateHeaderOperationName(key(at(p, "add"), n), n, request, e);
      validateHeaderValue(key(at(p, "add"), n), v, e);
    }
    for (int i = 0; i < o.remove_size(); ++i) {
      validateHeaderOperationName(idx(p, "remove", i), o.remove(i), false, e);
    }
  };
  if (h.has_request()) ops(at(path, "request"), h.request(), true);
  if (h.has_response()) ops(at(path, "response"), h.response(), false);
}

void validatePortSelector(const std::string& path, const net::PortSelector& p, Errors& e) {
  e.add(at(path, "number"), checkPort(p.number()));
}

void validateSubsetName(const std::string& path, const std::string& name, Errors& e) {
  if (name.empty()) {
    e.add(path, "subset name cannot be empty");
  } else if (!isDns1123Label(name)) {
    e.add(path, "subset name is invalid: " + name);
  }
}

void validateDestination(const std::string& path, const net::Destination& d, Errors& e) {
  if (d.host().empty()) {
    e.add(at(path, "host"), "destination host is required");
  } else if (d.host() == "*") {
    e.add(at(path, "host"), "invalid destination host *");
  } else {
    e.add(at(path, "host"), checkWildcardDomain(d.host()));
  }
  if (!d.subset().empty()) validateSubsetName(at(path, "subset"), d.subset(), e);
  if (d.has_port()) validatePortSelector(at(path, "port"), d.port(), e);
}

void validateGatewayNames(const std::string& path,
                          const google::protobuf::RepeatedPtrField<std::string>& gateways,
                          Errors& e) {
  for (int i = 0; i < gateways.size(); ++i) {
    std::string p = path + "[" + std::to_string(i) + "]";
    const std::string& g = gateways[i];
    auto slash = g.find('/');
    if (slash == std::string::npos) {
      e.add(p, checkFqdn(g));
      continue;
    }
    std::string ns = g.substr(0, slash), name = g.substr(slash + 1);
    if (ns.empty() || name.empty()) {
      e.add(p, "config namespace and gateway name cannot be empty");
      continue;
    }
    if (ns != "." && !isDns1123Label(ns)) e.add(p, "invalid value for namespace: " + q(ns));
    if (!isDns1123Label(name)) e.add(p, "invalid value for gateway name: " + q(name));
  }
}

// Ok iff every retryOn token is an Envoy retry policy or an HTTP status code.
bool isRetryOnToken(const std::string& t) {
  static const std::set<std::string, std::less<>> kPolicies = {"5xx",
                                                               "gateway-error",
                                                               "reset",
                                                               "reset-before-request",
                                                               "connect-failure",
                                                               "retriable-4xx",
                                                               "refused-stream",
                                                               "retriable-status-codes",
                                                               "retriable-headers",
                                                               "envoy-ratelimited",
                                                               "http3-post-connect-failure",
                                                               "cancelled",
                                                               "deadline-exceeded",
                                                               "internal",
                                                               "resource-exhausted",
                                                               "unavailable"};
  if (kPolicies.contains(t)) return true;
  if (t.size() == 3 &&
      std::all_of(t.begin(), t.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    int code = std::stoi(t);
    return code >= 100 && code <= 599;
  }
  return false;
}

void validateRetry(const std::string& path, const net::HTTPRetry& r, Errors& e) {
  if (r.attempts() < 0) e.add(at(path, "attempts"), "attempts cannot be negative");
  if (r.attempts() == 0 &&
      (r.has_per_try_timeout() || !r.retry_on().empty() || r.has_retry_remote_localities())) {
    e.add(path, "http retry policy configured when attempts are set to 0 (disabled)");
  }
  validateDurationField(at(path, "perTryTimeout"), r.has_per_try_timeout(), r.per_try_timeout(), e);
  if (!r.retry_on().empty()) {
    size_t start = 0;
    const std::string& s = r.retry_on();
    while (start <= s.size()) {
      size_t comma = s.find(',', start);
      std::string tok =
          s.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
      if (!isRetryOnToken(tok))
        e.add(at(path, "retryOn"), q(tok) + " is not a valid retryOn policy");
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
  }
  validateDurationField(at(path, "backoff"), r.has_backoff(), r.backoff(), e);
}

// ---------------------------------------------------------------- VirtualService

void validateRouteDestinations(const std::string& path, int count,
                               const std::function<const net::Destination*(int)>& dest,
                               const std::function<int32_t(int)>& weight, Errors& e) {
  int64_t total = 0;
  for (int i = 0; i < count; ++i) {
    std::string p = path + "[" + std::to_string(i) + "]";
    const net::Destination* d = dest(i);
    if (d == nullptr) {
      e.add(at(p, "destination"), "destination is required");
    } else {
      validateDestination(at(p, "destination"), *d, e);
    }
    if (weight(i) < 0) e.add(at(p, "weight"), "weight " + std::to_string(weight(i)) + " < 0");
    total += weight(i);
  }
  // Since Istio 1.15 weights are relative: only an all-zero split is meaningless.
  if (count > 1 && total == 0) e.add(path, "total destination weight = 0");
}

void validateHttpMatch(const std::string& path, const net::HTTPMatchRequest& m, Errors& e) {
  for (const auto& [name, sm] : m.headers()) {
    std::string p = key(at(path, "headers"), name);
    validateHeaderName(p, name, e);
    validateStringMatch(p, sm, true, e);
  }
  for (const auto& [name, sm] : m.without_headers()) {
    std::string p = key(at(path, "withoutHeaders"), name);
    validateHeaderName(p, name, e);
    validateStringMatch(p, sm, true, e);
  }
  for (const auto& [name, sm] : m.query_params()) {
    validateStringMatch(key(at(path, "queryParams"), name), sm, true, e);
  }
  // Istio checks only the regexes of these (an empty prefix is accepted and matches anything).
  if (m.has_uri()) validateStringMatch(at(path, "uri"), m.uri(), true, e);
  if (m.has_scheme()) validateStringMatch(at(path, "scheme"), m.scheme(), true, e);
  if (m.has_method()) validateStringMatch(at(path, "method"), m.method(), true, e);
  if (m.has_authority()) validateStringMatch(at(path, "authority"), m.authority(), true, e);
  if (m.port() != 0) e.add(at(path, "port"), checkPort(m.port()));
  validateLabels(at(path, "sourceLabels"), m.source_labels(), e);
  validateGatewayNames(at(path, "gateways"), m.gateways(), e);
  if (!m.source_namespace().empty() && !isDns1123Label(m.source_namespace())) {
    e.add(at(path, "sourceNamespace"),
          "sourceNamespace match " + m.source_namespace() + " is invalid");
  }
}

const std::set<std::string, std::less<>>& corsMethods() {
  static const std::set<std::string, std::less<>> m = {
      "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "CONNECT", "OPTIONS", "TRACE", "*"};
  return m;
}

void validateCors(const std::string& path, const net::CorsPolicy& c, Errors& e) {
  for (int i = 0; i < c.allow_origins_size(); ++i) {
    const auto& o = c.allow_origins(i);
    std::string p = idx(path, "allowOrigins", i);
    std::string v = o.match_type_case() == net::StringMatch::kExact    ? o.exact()
                    : o.match_type_case() == net::StringMatch::kPrefix ? o.prefix()
                    : o.match_type_case() == net::StringMatch::kRegex  ? o.regex()
                                                                       : "";
    if (v.empty()) {
      e.add(p, "'' is not a valid match type for CORS allow origins");
      continue;
    }
    validateStringMatch(p, o, false, e);
  }
  for (int i = 0; i < c.allow_methods_size(); ++i) {
    if (!corsMethods().contains(c.allow_methods(i))) {
      e.add(idx(path, "allowMethods", i),
            q(c.allow_methods(i)) + " is not a supported HTTP method");
    }
  }
  for (int i = 0; i < c.allow_headers_size(); ++i) {
    if (c.allow_headers(i) != "*" && !isHeaderToken(c.allow_headers(i))) {
      e.add(idx(path, "allowHeaders", i),
            "header name " + q(c.allow_headers(i)) + " is not a valid HTTP header name");
    }
  }
  for (int i = 0; i < c.expose_headers_size(); ++i) {
    if (c.expose_headers(i) != "*" && !isHeaderToken(c.expose_headers(i))) {
      e.add(idx(path, "exposeHeaders", i),
            "header name " + q(c.expose_headers(i)) + " is not a valid HTTP header name");
    }
  }
  if (c.has_max_age()) {
    e.add(at(path, "maxAge"), checkDuration(c.max_age()));
    if (c.max_age().nanos() > 0) {
      e.add(at(path, "maxAge"), "max_age duration is accurate only to seconds precision");
    }
  }
}

const std::set<std::string, std::less<>>& grpcStatuses() {
  static const std::set<std::string, std::less<>> s = {"OK",
                                                       "CANCELLED",
                                                       "UNKNOWN",
                                                       "INVALID_ARGUMENT",
                                                       "DEADLINE_EXCEEDED",
                                                       "NOT_FOUND",
                                                       "ALREADY_EXISTS",
                                                       "PERMISSION_DENIED",
                                                       "RESOURCE_EXHAUSTED",
                                                       "FAILED_PRECONDITION",
                                                       "ABORTED",
                                                       "OUT_OF_RANGE",
                                                       "UNIMPLEMENTED",
                                                       "INTERNAL",
                                                       "UNAVAILABLE",
                                                       "DATA_LOSS",
                                                       "UNAUTHENTICATED"};
  return s;
}

void validateFault(const std::string& path, const net::HTTPFaultInjection& f, Errors& e) {
  if (!f.has_abort() && !f.has_delay()) {
    e.add(path, "HTTP fault injection must have an abort and/or a delay");
  }
  if (f.has_abort()) {
    const auto& a = f.abort();
    std::string p = at(path, "abort");
    if (a.has_percentage()) validatePercentage(at(p, "percentage"), a.percentage(), e);
    switch (a.error_type_case()) {
      case net::HTTPFaultInjection::Abort::kHttpStatus:
        if (a.http_status() < 200 || a.http_status() > 599) {
          e.add(at(p, "httpStatus"),
                "HTTP status " + std::to_string(a.http_status()) + " is not in range 200-599");
        }
        break;
      case net::HTTPFaultInjection::Abort::kGrpcStatus:
        if (!grpcStatuses().contains(a.grpc_status())) {
          e.add(at(p, "grpcStatus"),
                "gRPC status " + q(a.grpc_status()) +
                    " is not supported, use a code name such as \"NOT_FOUND\"");
        }
        break;
      case net::HTTPFaultInjection::Abort::kHttp2Error:
        e.add(at(p, "http2Error"), "HTTP/2 abort fault injection not supported yet");
        break;
      default:
        e.add(p, "abort needs httpStatus or grpcStatus");
        break;
    }
  }
  if (f.has_delay()) {
    const auto& d = f.delay();
    std::string p = at(path, "delay");
    if (d.has_percentage()) validatePercentage(at(p, "percentage"), d.percentage(), e);
    if (d.percent() < 0 || d.percent() > 100) {
      e.add(at(p, "percent"),
            "percentage " + std::to_string(d.percent()) + " is not in range 0..100");
    }
    if (d.has_fixed_delay()) {
      e.add(at(p, "fixedDelay"), checkDuration(d.fixed_delay()));
    } else if (d.has_exponential_delay()) {
      e.add(at(p, "exponentialDelay"), "exponentialDelay not supported yet");
    } else {
      e.add(p, "delay needs fixedDelay");
    }
  }
}

void validateRedirect(const std::string& path, const net::HTTPRedirect& r,
                      const google::protobuf::RepeatedPtrField<net::HTTPMatchRequest>& matches,
                      Errors& e) {
  if (!r.uri().empty() && !r.prefix_rewrite().empty()) {
    e.add(path, "redirect may only specify one of uri or prefixRewrite");
    return;
  }
  if (!r.prefix_rewrite().empty()) {
    for (const auto& m : matches) {
      if (m.has_uri() && m.uri().match_type_case() != net::StringMatch::kPrefix) {
        e.add(at(path, "prefixRewrite"),
              "redirect prefixRewrite requires all URI matches to use prefix match type");
        return;
      }
    }
  }
  if (r.uri().empty() && r.prefix_rewrite().empty() && r.authority().empty() &&
      r.redirect_port_case() == net::HTTPRedirect::REDIRECT_PORT_NOT_SET && r.scheme().empty()) {
    e.add(path, "redirect must specify URI, authority, scheme, or port");
  }
  if (r.redirect_code() != 0 && (r.redirect_code() < 300 || r.redirect_code() > 399)) {
    e.add(at(path, "redirectCode"),
          std::to_string(r.redirect_code()) + " is not a valid redirect code, must be 3xx");
  }
  if (!r.scheme().empty() && r.scheme() != "http" && r.scheme() != "https") {
    e.add(at(path, "scheme"), "invalid redirect scheme, must be \"http\" or \"https\"");
  }
  if (r.redirect_port_case() == net::HTTPRedirect::kPort)
    e.add(at(path, "port"), checkPort(r.port()));
}

void validateHttpRoute(const std::string& path, const net::HTTPRoute& h, bool delegate_vs,
                       Errors& e) {
  bool root = h.has_delegate() && !delegate_vs;
  if (root) {
    if (h.has_redirect()) e.add(path, "root HTTP route " + h.name() + " must not specify redirect");
    if (h.route_size() > 0) e.add(path, "root HTTP route " + h.name() + " must not specify route");
    e.add(at(at(path, "delegate"), "name"),
          h.delegate().name().empty() ? "delegate name is required" : "");
  } else {
    if (delegate_vs && h.has_delegate()) {
      e.add(at(path, "delegate"), "delegate HTTP route cannot contain delegate");
    }
    if (h.has_redirect()) {
      if (h.route_size() > 0) e.add(path, "HTTP route cannot contain both route and redirect");
      if (h.has_fault()) e.add(path, "HTTP route cannot contain both fault and redirect");
      if (h.has_rewrite()) e.add(path, "HTTP route rule cannot contain both rewrite and redirect");
      if (h.has_direct_response()) {
        e.add(path, "HTTP route rule cannot contain both directResponse and redirect");
      }
    } else if (h.has_direct_response()) {
      if (h.route_size() > 0)
        e.add(path, "HTTP route cannot contain both route and directResponse");
      if (h.has_fault()) e.add(path, "HTTP route cannot contain both fault and directResponse");
      if (h.has_rewrite()) {
        e.add(path, "HTTP route rule cannot contain both rewrite and directResponse");
      }
    } else if (h.route_size() == 0) {
      e.add(path, "HTTP route, redirect or directResponse is required");
    }
  }
  if (h.has_mirror() && h.mirrors_size() > 0) {
    e.add(path, "HTTP route cannot contain both mirror and mirrors");
  }
  for (int i = 0; i < h.match_size(); ++i) {
    const auto& m = h.match(i);
    std::string p = idx(path, "match", i);
    if (root || delegate_vs) {
      // Delegation merges matches structurally; regexes cannot be intersected.
      auto noRegex = [&](const char* f, bool has, const net::StringMatch& sm) {
        if (has && sm.match_type_case() == net::StringMatch::kRegex) {
          e.add(at(p, f), std::string(f) + " match does not support regex match for delegating");
        }
      };
      noRegex("uri", m.has_uri(), m.uri());
      noRegex("scheme", m.has_scheme(), m.scheme());
      noRegex("method", m.has_method(), m.method());
      noRegex("authority", m.has_authority(), m.authority());
    }
    validateHttpMatch(p, m, e);
  }
  if (h.has_headers()) validateHeaders(at(path, "headers"), h.headers(), e);
  if (h.has_cors_policy()) validateCors(at(path, "corsPolicy"), h.cors_policy(), e);
  if (h.has_fault()) validateFault(at(path, "fault"), h.fault(), e);
  if (h.has_mirror_percent() && h.mirror_percent().value() > 100) {
    e.add(at(path, "mirrorPercent"), "mirrorPercent must have a max value of 100 (it has " +
                                         std::to_string(h.mirror_percent().value()) + ")");
  }
  if (h.has_mirror_percentage()) {
    double v = h.mirror_percentage().value();
    if (v > 100) {
      e.add(at(at(path, "mirrorPercentage"), "value"),
            "mirrorPercentage must have a max value of 100 (it has " + fmtDouble(v) + ")");
    }
    if (v < 0) {
      e.add(at(at(path, "mirrorPercentage"), "value"),
            "mirrorPercentage must have a min value of 0 (it has " + fmtDouble(v) + ")");
    }
  }
  if (h.has_mirror()) validateDestination(at(path, "mirror"), h.mirror(), e);
  for (int i = 0; i < h.mirrors_size(); ++i) {
    std::string p = idx(path, "mirrors", i);
    const auto& m = h.mirrors(i);
    if (!m.has_destination()) {
      e.add(at(p, "destination"), "destination is required for mirrors");
      continue;
    }
    validateDestination(at(p, "destination"), m.destination(), e);
    if (m.has_percentage()) {
      double v = m.percentage().value();
      if (v > 100 || v < 0) {
        e.add(at(at(p, "percentage"), "value"),
              "mirror percentage must be in range 0..100 (it has " + fmtDouble(v) + ")");
      }
    }
  }
  if (h.has_redirect()) validateRedirect(at(path, "redirect"), h.redirect(), h.match(), e);
  if (h.has_direct_response()) {
    const auto& d = h.direct_response();
    std::string p = at(path, "directResponse");
    if (d.status() < 200 || d.status() > 599) {
      e.add(at(p, "status"),
            "HTTP status " + std::to_string(d.status()) + " is not in range 200-599");
    }
    size_t size = d.body().specifier_case() == net::HTTPBody::kString ? d.body().string().size()
                                                                      : d.body().bytes().size();
    if (size > 1024 * 1024) {
      e.add(at(p, "body"),
            "large direct_responses may impact control plane performance, must be less than 1MB");
    }
  }
  if (h.has_retries()) validateRetry(at(path, "retries"), h.retries(), e);
  if (h.has_rewrite()) {
    const auto& r = h.rewrite();
    std::string p = at(path, "rewrite");
    if (!r.uri().empty() && r.has_uri_regex_rewrite()) {
      e.add(p, "rewrite may only contain one of uri or uriRegexRewrite");
    } else if (r.uri().empty() && !r.has_uri_regex_rewrite() && r.authority().empty()) {
      e.add(p, "rewrite must specify at least one of uri, uriRegexRewrite, or authority");
    }
    if (r.has_uri_regex_rewrite()) {
      const auto& rr = r.uri_regex_rewrite();
      std::string rp = at(p, "uriRegexRewrite");
      if (rr.match().empty() || rr.rewrite().empty()) {
        e.add(rp, "uriRegexRewrite requires both rewrite and match fields to be specified");
      } else {
        e.add(at(rp, "match"), checkRegex(rr.match()));
      }
    }
  }
  // The authority may be rewritten in one place only.
  {
    std::string current = h.rewrite().authority();
    auto check = [&](const google::protobuf::Map<std::string, std::string>& m, const char* op) {
      for (const auto& [k, v] : m) {
        std::string lower = k;
        for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        if (lower != "host" && lower != ":authority") continue;
        if (!current.empty()) {
          e.add(key(at(at(at(path, "headers"), "request"), op), k),
                "authority header cannot be set multiple times: have " + q(current) +
                    ", attempting to set " + q(v));
        }
        current = v;
      }
    };
    check(h.headers().request().set(), "set");
    check(h.headers().request().add(), "add");
  }
  std::string rp = at(path, "route");
  validateRouteDestinations(
      rp, h.route_size(),
      [&](int i) { return h.route(i).has_destination() ? &h.route(i).destination() : nullptr; },
      [&](int i) { return h.route(i).weight(); }, e);
  for (int i = 0; i < h.route_size(); ++i) {
    if (h.route(i).has_headers()) {
      validateHeaders(at(idx(path, "route", i), "headers"), h.route(i).headers(), e);
    }
  }
  if (h.has_timeout()) e.add(at(path, "timeout"), checkDuration(h.timeout()));
}

// Does a (possibly wildcard) host `a` fall within `b`?
bool hostSubsetOf(const std::string& a, const std::string& b) {
  if (b == "*") return true;
  if (b.rfind("*", 0) == 0) {
    std::string suffix = b.substr(1);
    if (a.rfind("*", 0) == 0) return a.substr(1).size() >= suffix.size() && a.ends_with(suffix);
    return a.size() > suffix.size() && a.ends_with(suffix);
  }
  return a == b;
}

// Do two hosts overlap (Istio's host.Name.Matches)?
bool hostsOverlap(const std::string& a, const std::string& b) {
  return hostSubsetOf(a, b) || hostSubsetOf(b, a);
}

void validateVirtualService(const Resource& r, const net::VirtualService& vs, Errors& e) {
  const std::string s = "spec";
  bool delegate = vs.hosts_size() == 0;
  if (delegate) {
    if (vs.gateways_size() != 0) {
      e.add(at(s, "gateways"), "delegate virtual service must have no gateways specified");
    }
    if (vs.tls_size() != 0)
      e.add(at(s, "tls"), "delegate virtual service must have no tls route specified");
    if (vs.tcp_size() != 0)
      e.add(at(s, "tcp"), "delegate virtual service must have no tcp route specified");
  }
  bool applies_to_mesh = vs.gateways_size() == 0;
  bool applies_to_gateway = false;
  for (const auto& g : vs.gateways()) {
    if (g == "mesh") {
      applies_to_mesh = true;
    } else {
      applies_to_gateway = true;
    }
  }
  validateGatewayNames(at(s, "gateways"), vs.gateways(), e);
  bool all_hosts_valid = true;
  for (int i = 0; i < vs.hosts_size(); ++i) {
    const std::string& h = vs.hosts(i);
    std::string err = checkWildcardDomain(h);
    if (!err.empty()) {
      if (!isIp(h)) {
        e.add(idx(s, "hosts", i), err);
        all_hosts_valid = false;
      }
    } else if (applies_to_mesh && !applies_to_gateway && h == "*") {
      e.add(idx(s, "hosts", i),
            "wildcard host * is not allowed for virtual services bound to the mesh gateway");
      all_hosts_valid = false;
    }
  }
  if (all_hosts_valid) {
    for (int i = 0; i < vs.hosts_size(); ++i) {
      for (int j = i + 1; j < vs.hosts_size(); ++j) {
        if (hostsOverlap(vs.hosts(i), vs.hosts(j))) {
          e.add(idx(s, "hosts", j),
                "duplicate hosts in virtual service: " + vs.hosts(i) + " & " + vs.hosts(j));
        }
      }
    }
  }
  if (vs.http_size() == 0 && vs.tcp_size() == 0 && vs.tls_size() == 0) {
    e.add(s, "http, tcp or tls must be provided in virtual service");
  }
  if (!applies_to_gateway) {
    // JWT claims are only known on gateways (the jwt_authn filter runs before routing there).
    for (int i = 0; i < vs.http_size(); ++i) {
      for (int m = 0; m < vs.http(i).match_size(); ++m) {
        const auto& match = vs.http(i).match(m);
        std::string mp = idx(idx(s, "http", i), "match", m);
        auto check = [&](const char* field, const auto& headers) {
          for (const auto& [name, sm] : headers) {
            if (name.rfind("@request.auth.claims", 0) == 0) {
              e.add(key(at(mp, field), name),
                    "JWT claim based routing (key: " + name +
                        ") is only supported for gateway, found no gateways");
            }
          }
        };
        check("headers", match.headers());
        check("withoutHeaders", match.without_headers());
      }
    }
  }
  for (int i = 0; i < vs.http_size(); ++i) {
    validateHttpRoute(idx(s, "http", i), vs.http(i), delegate, e);
  }
  for (int i = 0; i < vs.tls_size(); ++i) {
    std::string p = idx(s, "tls", i);
    const auto& t = vs.tls(i);
    if (t.match_size() == 0) e.add(p, "TLS route must have at least one match condition");
    for (int m = 0; m < t.match_size(); ++m) {
      std::string mp = idx(p, "match", m);
      const auto& match = t.match(m);
      if (match.sni_hosts_size() == 0) e.add(mp, "TLS match must have at least one SNI host");
      for (int k = 0; k < match.sni_hosts_size(); ++k) {
        const std::string& sni = match.sni_hosts(k);
        std::string sp = idx(mp, "sniHosts", k);
        std::string err = checkWildcardDomain(sni);
        if (!err.empty()) {
          if (!isIp(sni)) e.add(sp, err);
          continue;
        }
        bool ok = std::any_of(vs.hosts().begin(), vs.hosts().end(),
                              [&](const std::string& h) { return hostSubsetOf(sni, h); });
        if (!ok) {
          std::string hosts;
          for (const auto& h : vs.hosts()) hosts += (hosts.empty() ? "" : ", ") + h;
          e.add(sp, "SNI host " + q(sni) +
                        " is not a compatible subset of any of the virtual service hosts: [" +
                        hosts + "]");
        }
      }
      for (int k = 0; k < match.destination_subnets_size(); ++k) {
        e.add(idx(mp, "destinationSubnets", k), checkIpSubnet(match.destination_subnets(k)));
      }
      if (match.port() != 0) e.add(at(mp, "port"), checkPort(match.port()));
      validateLabels(at(mp, "sourceLabels"), match.source_labels(), e);
      validateGatewayNames(at(mp, "gateways"), match.gateways(), e);
    }
    if (t.route_size() == 0) e.add(p, "TLS route is required");
    validateRouteDestinations(
        at(p, "route"), t.route_size(),
        [&](int k) { return t.route(k).has_destination() ? &t.route(k).destination() : nullptr; },
        [&](int k) { return t.route(k).weight(); }, e);
  }
  for (int i = 0; i < vs.tcp_size(); ++i) {
    std::string p = idx(s, "tcp", i);
    const auto& t = vs.tcp(i);
    for (int m = 0; m < t.match_size(); ++m) {
      std::string mp = idx(p, "match", m);
      const auto& match = t.match(m);
      for (int k = 0; k < match.destination_subnets_size(); ++k) {
        e.add(idx(mp, "destinationSubnets", k), checkIpSubnet(match.destination_subnets(k)));
      }
      if (match.port() != 0) e.add(at(mp, "port"), checkPort(match.port()));
      validateLabels(at(mp, "sourceLabels"), match.source_labels(), e);
      validateGatewayNames(at(mp, "gateways"), match.gateways(), e);
    }
    if (t.route_size() == 0) e.add(p, "TCP route is required");
    validateRouteDestinations(
        at(p, "route"), t.route_size(),
        [&](int k) { return t.route(k).has_destination() ? &t.route(k).destination() : nullptr; },
        [&](int k) { return t.route(k).weight(); }, e);
  }
  validateExportTo(at(s, "exportTo"), r.metadata.ns, vs.export_to(), false, false, e);
}

// ---------------------------------------------------------------- Gateway

void validateServerTls(const std::string& path, const net::ServerTLSSettings& t, Errors& e) {
  using T = net::ServerTLSSettings;
  if (t.mode() == T::ISTIO_MUTUAL) {
    if (!t.server_certificate().empty())
      e.add(path, "ISTIO_MUTUAL TLS cannot have associated server certificate");
    if (!t.private_key().empty())
      e.add(path, "ISTIO_MUTUAL TLS cannot have associated private key");
    if (!t.ca_certificates().empty())
      e.add(path, "ISTIO_MUTUAL TLS cannot have associated CA bundle");
    if (t.tls_certificates_size() > 0)
      e.add(path, "ISTIO_MUTUAL TLS cannot have associated tlsCertificates");
    if (!t.credential_name().empty())
      e.add(path, "ISTIO_MUTUAL TLS cannot have associated credentialName");
    if (t.credential_names_size() > 0)
      e.add(path, "ISTIO_MUTUAL TLS cannot have associated credentialNames");
    return;
  }
  int sources = 0;
  if (!t.server_certificate().empty() && !t.private_key().empty()) ++sources;
  if (!t.credential_name().empty()) ++sources;
  if (t.credential_names_size() > 0) ++sources;
  if (t.tls_certificates_size() > 0) ++sources;
  if (sources > 1) {
    e.add(path,
          "only one of credentialName, credentialNames, serverCertificate/privateKey, "
          "tlsCertificates should be specified");
  }
  if (t.credential_names_size() > 2) {
    e.add(at(path, "credentialNames"), "at most 2 credentialNames may be specified");
  }
  bool terminating =
      t.mode() == T::SIMPLE || t.mode() == T::MUTUAL || t.mode() == T::OPTIONAL_MUTUAL;
  if (terminating && (!t.credential_name().empty() || t.credential_names_size() > 0)) return;
  if (terminating) {
    std::string prefix = t.mode() == T::SIMPLE ? "SIMPLE TLS" : "MUTUAL TLS";
    if (t.mode() != T::SIMPLE && t.ca_certificates().empty()) {
      e.add(path, prefix + " requires a client CA bundle");
    }
    if (t.tls_certificates_size() > 0) {
      for (int i = 0; i < t.tls_certificates_size(); ++i) {
        std::string p = idx(path, "tlsCertificates", i);
        if (t.tls_certificates(i).server_certificate().empty())
          e.add(p, prefix + " requires a server certificate");
        if (t.tls_certificates(i).private_key().empty())
          e.add(p, prefix + " requires a private key");
      }
    } else {
      if (t.server_certificate().empty()) e.add(path, prefix + " requires a server certificate");
      if (t.private_key().empty()) e.add(path, prefix + " requires a private key");
    }
  }
  if (!t.ca_crl().empty()) {
    if (!t.credential_name().empty()) {
      e.add(at(path, "caCrl"),
            "CRL is not supported with credentialName. CRL has to be specified in the credential");
    }
    if (t.mode() == T::SIMPLE) e.add(at(path, "caCrl"), "CRL is not supported with SIMPLE TLS");
  }
}

// Gateway / Sidecar hosts: "[namespace/]dnsName".
void validateNamespaceSlashHost(const std::string& path, const std::string& host, bool gateway,
                                Errors& e) {
  auto slash = host.find('/');
  std::string dns = host;
  if (slash == std::string::npos) {
    if (!gateway) {
      e.add(path, "host must be of form namespace/dnsName");
      return;
    }
  } else {
    std::string ns = host.substr(0, slash);
    dns = host.substr(slash + 1);
    if (ns.empty() || dns.empty()) {
      e.add(path, "config namespace and dnsName in host entry cannot be empty");
      return;
    }
    std::string bare = (!gateway && ns[0] == '~') ? ns.substr(1) : ns;
    if (bare != "*" && bare != "." && !(gateway ? false : bare.empty()) && !isDns1123Label(bare)) {
      e.add(path, "invalid namespace value " + q(ns) + (gateway ? " in gateway" : " in sidecar"));
    }
  }
  if (dns != "*" && dns.find('.') == std::string::npos) {
    e.add(path, "short names (non FQDN) are not allowed");
  }
  std::string err = checkWildcardDomain(dns);
  if (!err.empty() && !(gateway && isIp(dns))) e.add(path, err);
  if (dns.find('*') != std::string::npos && dns.size() != 1 && dns.rfind("*.", 0) != 0) {
    e.add(path, "partial wildcard " + q(dns) + " not allowed");
  }
}

void validateGateway(const Resource& r, const net::Gateway& g, Errors& e) {
  const std::string s = "spec";
  if (!isDns1123Label(r.metadata.name)) {
    e.add("metadata.name",
          "invalid gateway name: " + q(r.metadata.name) + " (must be a DNS label, no dots)");
  }
  if (g.servers_size() == 0) e.add(at(s, "servers"), "gateway must have at least one server");
  std::set<std::string> port_names;
  for (int i = 0; i < g.servers_size(); ++i) {
    const auto& srv = g.servers(i);
    std::string p = idx(s, "servers", i);
    if (srv.hosts_size() == 0) {
      e.add(at(p, "hosts"), "server config must contain at least one host");
    }
    for (int h = 0; h < srv.hosts_size(); ++h) {
      validateNamespaceSlashHost(idx(p, "hosts", h), srv.hosts(h), true, e);
    }
    bool port_ok = srv.has_port();
    if (!srv.has_port()) {
      e.add(at(p, "port"), "port is required");
    } else {
      const auto& port = srv.port();
      std::string pp = at(p, "port");
      if (port.protocol().empty() || !knownProtocols().contains(upper(port.protocol()))) {
        e.add(at(pp, "protocol"), "invalid protocol " + q(port.protocol()) +
                                      ", supported protocols are HTTP, HTTP2, GRPC, GRPC-WEB, "
                                      "HTTPS, TLS, MONGO, REDIS, MYSQL, TCP");
        port_ok = false;
      }
      if (port.number() > 0 || srv.bind().rfind("unix://", 0) != 0) {
        std::string err = checkPort(port.number());
        if (!err.empty()) {
          e.add(at(pp, "number"), err);
          port_ok = false;
        }
      }
      if (port.target_port() > 0)
        e.add(at(pp, "targetPort"), "targetPort has no impact on Gateways");
      if (port.name().empty()) {
        e.add(at(pp, "name"), "port name must be set");
        port_ok = false;
      } else if (!port_names.insert(port.name()).second) {
        e.add(at(pp, "name"),
              "port names in servers must be unique: duplicate name " + port.name());
      }
    }
    if (!srv.bind().empty()) {
      if (srv.bind().rfind("unix://", 0) == 0) {
        if (srv.port().number() != 0) {
          e.add(at(p, "bind"), "port number must be 0 for unix domain socket");
        }
      } else {
        e.add(at(p, "bind"), checkIpAddress(srv.bind()));
      }
    }
    if (srv.has_tls()) validateServerTls(at(p, "tls"), srv.tls(), e);
    if (port_ok) {
      const std::string& proto = srv.port().protocol();
      if (isTlsProtocol(proto) && !srv.has_tls()) {
        e.add(p, "server must have TLS settings for HTTPS/TLS protocols");
      } else if (!isTlsProtocol(proto) && srv.has_tls()) {
        const auto& t = srv.tls();
        if (isHttpProtocol(proto)) {
          bool passthrough = t.mode() == net::ServerTLSSettings::PASSTHROUGH ||
                             t.mode() == net::ServerTLSSettings::AUTO_PASSTHROUGH;
          if (!passthrough || !t.ca_certificates().empty() || !t.private_key().empty() ||
              !t.server_certificate().empty()) {
            e.add(at(p, "tls"), "server cannot have TLS settings for plain text HTTP ports");
          }
        } else {
          e.add(at(p, "tls"), "server cannot have TLS settings for non HTTPS/TLS ports");
        }
      }
    }
  }
}

// ---------------------------------------------------------------- DestinationRule

void validateClientTls(const std::string& path, const net::ClientTLSSettings& t, Errors& e) {
  using T = net::ClientTLSSettings;
  if (t.insecure_skip_verify().value()) {
    if (t.mode() == T::SIMPLE && (!t.ca_certificates().empty() || !t.credential_name().empty() ||
                                  t.subject_alt_names_size() > 0)) {
      e.add(path,
            "cannot specify caCertificates or credentialName or subjectAltNames when "
            "insecureSkipVerify is set true");
    }
    if (t.mode() == T::MUTUAL && (!t.ca_certificates().empty() || t.subject_alt_names_size() > 0)) {
      e.add(path,
            "cannot specify caCertificates or subjectAltNames when insecureSkipVerify is set true");
    }
  }
  if ((t.mode() == T::SIMPLE || t.mode() == T::MUTUAL) && !t.credential_name().empty()) {
    if (!t.client_certificate().empty() || !t.ca_certificates().empty() ||
        !t.private_key().empty() || !t.ca_crl().empty()) {
      e.add(path,
            "cannot specify client certificates or CA certificate or CA CRL if credentialName is "
            "set");
    }
    return;
  }
  if (t.mode() == T::MUTUAL) {
    if (t.client_certificate().empty())
      e.add(at(path, "clientCertificate"), "client certificate required for mutual tls");
    if (t.private_key().empty())
      e.add(at(path, "privateKey"), "private key required for mutual tls");
  }
}

void validateConnectionPool(const std::string& path, const net::ConnectionPoolSettings& c,
                            Errors& e) {
  if (!c.has_http() && !c.has_tcp()) {
    e.add(path, "connection pool must have at least one field");
    return;
  }
  if (c.has_http()) {
    const auto& h = c.http();
    std::string p = at(path, "http");
    if (h.http1_max_pending_requests() < 0)
      e.add(at(p, "http1MaxPendingRequests"), "http1 max pending requests must be non-negative");
    if (h.http2_max_requests() < 0)
      e.add(at(p, "http2MaxRequests"), "http2 max requests must be non-negative");
    if (h.max_requests_per_connection() < 0)
      e.add(at(p, "maxRequestsPerConnection"), "max requests per connection must be non-negative");
    if (h.max_retries() < 0) e.add(at(p, "maxRetries"), "max retries must be non-negative");
    validateDurationField(at(p, "idleTimeout"), h.has_idle_timeout(), h.idle_timeout(), e);
    if (h.h2_upgrade_policy() == net::ConnectionPoolSettings::HTTPSettings::UPGRADE &&
        h.use_client_protocol()) {
      e.add(at(p, "useClientProtocol"),
            "use client protocol must not be true when H2UpgradePolicy is UPGRADE");
    }
    if (h.max_concurrent_streams() < 0)
      e.add(at(p, "maxConcurrentStreams"), "max concurrent streams must be non-negative");
    if (h.has_http2_keep_alive()) {
      const auto& k = h.http2_keep_alive();
      std::string kp = at(p, "http2KeepAlive");
      if (!k.has_interval()) {
        e.add(kp, "http2 keepalive interval is required");
      } else {
        e.add(at(kp, "interval"), checkDuration(k.interval()));
      }
      if (!k.has_timeout()) {
        e.add(kp, "http2 keepalive timeout is required");
      } else {
        e.add(at(kp, "timeout"), checkDuration(k.timeout()));
      }
    }
  }
  if (c.has_tcp()) {
    const auto& t = c.tcp();
    std::string p = at(path, "tcp");
    if (t.max_connections() < 0)
      e.add(at(p, "maxConnections"), "max connections must be non-negative");
    validateDurationField(at(p, "connectTimeout"), t.has_connect_timeout(), t.connect_timeout(), e);
    validateDurationField(at(p, "maxConnectionDuration"), t.has_max_connection_duration(),
                          t.max_connection_duration(), e);
    // idleTimeout 0s means "disabled" and is allowed.
    if (t.has_idle_timeout() &&
        (t.idle_timeout().seconds() != 0 || t.idle_timeout().nanos() != 0)) {
      e.add(at(p, "idleTimeout"), checkDuration(t.idle_timeout()));
    }
    if (t.has_tcp_keepalive()) {
      const auto& k = t.tcp_keepalive();
      std::string kp = at(p, "tcpKeepalive");
      validateDurationField(at(kp, "time"), k.has_time(), k.time(), e);
      validateDurationField(at(kp, "interval"), k.has_interval(), k.interval(), e);
    }
  }
}

void validateOutlierDetection(const std::string& path, const net::OutlierDetection& o, Errors& e) {
  validateDurationField(at(path, "baseEjectionTime"), o.has_base_ejection_time(),
                        o.base_ejection_time(), e);
  validateDurationField(at(path, "interval"), o.has_interval(), o.interval(), e);
  if (!o.split_external_local_origin_errors() &&
      o.consecutive_local_origin_failures().value() > 0) {
    e.add(at(path, "consecutiveLocalOriginFailures"),
          "outlier detection consecutive local origin failures is specified, but split external "
          "local origin errors is set to false");
  }
  if (o.max_ejection_percent() < 0 || o.max_ejection_percent() > 100) {
    e.add(at(path, "maxEjectionPercent"),
          "percentage " + std::to_string(o.max_ejection_percent()) + " is not in range 0..100");
  }
  if (o.min_health_percent() < 0 || o.min_health_percent() > 100) {
    e.add(at(path, "minHealthPercent"),
          "percentage " + std::to_string(o.min_health_percent()) + " is not in range 0..100");
  }
  for (int i = 0; i < o.outlier_detection_http_error_codes_size(); ++i) {
    uint32_t c = o.outlier_detection_http_error_codes(i);
    if (c < 100 || c > 599) {
      e.add(idx(path, "outlierDetectionHttpErrorCodes", i),
            "HTTP status " + std::to_string(c) + " is not in range 100-599");
    }
  }
}

bool isPrime(uint64_t x) {
  if (x != 0 && x < 4) return true;
  if ((x & 1) == 0) return false;
  for (uint64_t f = 3; f * f <= x; f += 2) {
    if (x % f == 0) return false;
  }
  return true;
}

void validateLocality(const std::string& path, const std::string& locality, bool allow_wildcard,
                      Errors& e) {
  if (locality.empty()) {
    e.add(path, "empty locality");
    return;
  }
  size_t star = locality.find('*');
  if (star != std::string::npos &&
      (!allow_wildcard || star != locality.size() - 1 || (star > 0 && locality[star - 1] != '/'))) {
    e.add(path, "locality " + q(locality) + " is invalid: wildcard '*' must be the last segment");
  }
  if (std::count(locality.begin(), locality.end(), '/') > 2) {
    e.add(path, "locality " + q(locality) + " is invalid: expected region/zone/subzone");
  }
}

void validateLoadBalancer(const std::string& path, const net::LoadBalancerSettings& lb,
                          bool has_outlier, Errors& e) {
  if (lb.has_consistent_hash()) {
    const auto& ch = lb.consistent_hash();
    std::string p = at(path, "consistentHash");
    if (ch.has_http_cookie()) {
      const auto& c = ch.http_cookie();
      if (c.name().empty()) e.add(at(at(p, "httpCookie"), "name"), "name required for HttpCookie");
      std::set<std::string> names;
      for (int i = 0; i < c.attributes_size(); ++i) {
        std::string ap = idx(at(p, "httpCookie"), "attributes", i);
        if (c.attributes(i).name().empty()) {
          e.add(at(ap, "name"), "cookie attribute name cannot be empty");
        } else if (!names.insert(c.attributes(i).name()).second) {
          e.add(at(ap, "name"), "duplicate cookie attribute name: " + c.attributes(i).name());
        }
      }
    }
    if (ch.minimum_ring_size() != 0 &&
        ch.hash_algorithm_case() !=
            net::LoadBalancerSettings::ConsistentHashLB::HASH_ALGORITHM_NOT_SET) {
      e.add(p, "only one of minimumRingSize or maglev/ringHash can be specified");
    }
    if (ch.has_maglev()) {
      uint64_t t = ch.maglev().table_size();
      std::string tp = at(at(p, "maglev"), "tableSize");
      if (t == 0) {
        e.add(tp, "tableSize must be set for maglev");
      } else if (t >= 5000011) {
        e.add(tp, "tableSize must be less than 5000011 for maglev");
      } else if (!isPrime(t)) {
        e.add(tp, "tableSize must be a prime number for maglev");
      }
    }
  }
  if (lb.has_locality_lb_setting() && lb.has_zone_aware_lb_setting()) {
    e.add(path, "only one of localityLbSetting and zoneAwareLbSetting can be set");
  }
  if (lb.has_locality_lb_setting()) {
    const auto& l = lb.locality_lb_setting();
    std::string p = at(path, "localityLbSetting");
    if (l.distribute_size() > 0 && l.failover_size() > 0) {
      e.add(p, "can not simultaneously specify 'distribute' and 'failover'");
    }
    if (l.failover_size() > 0 && l.failover_priority_size() > 0) {
      for (int i = 0; i < l.failover_priority_size(); ++i) {
        if (l.failover_priority(i).rfind("topology.kubernetes.io/region", 0) == 0) {
          e.add(idx(p, "failoverPriority", i),
                "can not simultaneously set 'failover' and 'failoverPriority' with "
                "topology.kubernetes.io/region");
        }
      }
    }
    std::set<std::string> froms;
    for (int i = 0; i < l.distribute_size(); ++i) {
      const auto& d = l.distribute(i);
      std::string dp = idx(p, "distribute", i);
      validateLocality(at(dp, "from"), d.from(), true, e);
      if (!froms.insert(d.from()).second) {
        e.add(at(dp, "from"), "locality " + q(d.from()) + " is duplicated in distribute");
      }
      uint64_t sum = 0;
      for (const auto& [loc, w] : d.to()) {
        validateLocality(key(at(dp, "to"), loc), loc, true, e);
        sum += w;
      }
      if (sum != 100) e.add(at(dp, "to"), "total weight " + std::to_string(sum) + " != 100");
    }
    for (int i = 0; i < l.failover_size(); ++i) {
      const auto& f = l.failover(i);
      std::string fp = idx(p, "failover", i);
      if (f.from() == f.to()) e.add(fp, "failover 'from' and 'to' must be different");
      if (f.from().find('/') != std::string::npos || f.from().find('*') != std::string::npos) {
        e.add(at(fp, "from"), "failover only supports regions: " + q(f.from()));
      }
      if (f.to().find('/') != std::string::npos || f.to().find('*') != std::string::npos) {
        e.add(at(fp, "to"), "failover only supports regions: " + q(f.to()));
      }
    }
    if ((l.failover_size() > 0 || l.failover_priority_size() > 0) && !has_outlier) {
      // Istio only warns here (failover needs outlier detection to take effect); not an error.
    }
  }
  if (lb.has_warmup()) {
    const auto& w = lb.warmup();
    std::string p = at(path, "warmup");
    if (!w.has_duration()) {
      e.add(p, "duration is required");
    } else {
      e.add(at(p, "duration"), checkDuration(w.duration()));
    }
    if (w.minimum_percent().value() > 100) {
      e.add(at(p, "minimumPercent"), "minimumPercent value should be less than or equal to 100");
    }
    if (w.has_aggression() && w.aggression().value() <= 0) {
      e.add(at(p, "aggression"), "aggression should be greater than 0");
    }
  }
  validateDurationField(at(path, "warmupDurationSecs"), lb.has_warmup_duration_secs(),
                        lb.warmup_duration_secs(), e);
}

void validateTrafficPolicy(const std::string& path, const net::TrafficPolicy& t, Errors& e) {
  if (!t.has_outlier_detection() && !t.has_connection_pool() && !t.has_load_balancer() &&
      !t.has_tls() && t.port_level_settings_size() == 0 && !t.has_tunnel() &&
      !t.has_proxy_protocol() && !t.has_retry_budget()) {
    e.add(path, "traffic policy must have at least one field");
    return;
  }
  if (t.has_tunnel() && t.has_proxy_protocol()) {
    e.add(path, "tunnel and proxyProtocol must not be set together");
    return;
  }
  if (t.has_outlier_detection())
    validateOutlierDetection(at(path, "outlierDetection"), t.outlier_detection(), e);
  if (t.has_connection_pool())
    validateConnectionPool(at(path, "connectionPool"), t.connection_pool(), e);
  if (t.has_load_balancer()) {
    validateLoadBalancer(at(path, "loadBalancer"), t.load_balancer(), t.has_outlier_detection(), e);
  }
  if (t.has_tls()) validateClientTls(at(path, "tls"), t.tls(), e);
  for (int i = 0; i < t.port_level_settings_size(); ++i) {
    const auto& pl = t.port_level_settings(i);
    std::string p = idx(path, "portLevelSettings", i);
    if (!pl.has_port()) {
      e.add(at(p, "port"), "portTrafficPolicy must have valid port");
    } else {
      validatePortSelector(at(p, "port"), pl.port(), e);
    }
    if (!pl.has_outlier_detection() && !pl.has_connection_pool() && !pl.has_load_balancer() &&
        !pl.has_tls()) {
      e.add(p, "port traffic policy must have at least one field");
      continue;
    }
    if (pl.has_outlier_detection())
      validateOutlierDetection(at(p, "outlierDetection"), pl.outlier_detection(), e);
    if (pl.has_connection_pool())
      validateConnectionPool(at(p, "connectionPool"), pl.connection_pool(), e);
    if (pl.has_load_balancer()) {
      validateLoadBalancer(at(p, "loadBalancer"), pl.load_balancer(), pl.has_outlier_detection(),
                           e);
    }
    if (pl.has_tls()) validateClientTls(at(p, "tls"), pl.tls(), e);
  }
  if (t.has_tunnel()) {
    const auto& tu = t.tunnel();
    std::string p = at(path, "tunnel");
    if (!tu.protocol().empty() && tu.protocol() != "CONNECT" && tu.protocol() != "POST") {
      e.add(at(p, "protocol"), "tunnel protocol must be \"CONNECT\" or \"POST\"");
    }
    if (!checkFqdn(tu.target_host()).empty() && !isIp(tu.target_host())) {
      e.add(at(p, "targetHost"), "tunnel target host must be valid FQDN or IP address");
    }
    std::string perr = checkPort(tu.target_port());
    if (!perr.empty()) e.add(at(p, "targetPort"), "tunnel target port is invalid: " + perr);
  }
  if (t.has_retry_budget()) {
    const auto& rb = t.retry_budget();
    std::string p = at(path, "retryBudget");
    if (rb.has_percent() && (rb.percent().value() < 0 || rb.percent().value() > 100)) {
      e.add(at(p, "percent"), "percent must be in range 0..100");
    }
    validateDurationField(at(p, "budgetInterval"), rb.has_budget_interval(), rb.budget_interval(),
                          e);
  }
}

void validateDestinationRule(const Resource& r, const net::DestinationRule& dr, Errors& e) {
  const std::string s = "spec";
  e.add(at(s, "host"), checkWildcardDomain(dr.host()));
  if (dr.has_traffic_policy())
    validateTrafficPolicy(at(s, "trafficPolicy"), dr.traffic_policy(), e);
  std::set<std::string> names;
  for (int i = 0; i < dr.subsets_size(); ++i) {
    const auto& sub = dr.subsets(i);
    std::string p = idx(s, "subsets", i);
    if (!sub.name().empty() && !names.insert(sub.name()).second) {
      e.add(at(p, "name"), "duplicate subset names: " + sub.name());
    }
    validateSubsetName(at(p, "name"), sub.name(), e);
    validateLabels(at(p, "labels"), sub.labels(), e);
    if (sub.has_traffic_policy())
      validateTrafficPolicy(at(p, "trafficPolicy"), sub.traffic_policy(), e);
  }
  validateExportTo(at(s, "exportTo"), r.metadata.ns, dr.export_to(), false,
                   dr.has_workload_selector(), e);
  if (dr.has_workload_selector()) {
    validateSelectorLabels(at(at(s, "workloadSelector"), "matchLabels"),
                           dr.workload_selector().match_labels(), e);
  }
}

// ---------------------------------------------------------------- ServiceEntry & workloads

void validateWorkloadEntry(const std::string& path, const net::WorkloadEntry& we,
                           const std::set<std::string>* service_ports, bool allow_fqdn, Errors& e) {
  const std::string& addr = we.address();
  bool unix_endpoint = false;
  if (addr.empty()) {
    if (we.network().empty()) e.add(at(path, "address"), "address is required");
  } else if (addr.rfind("unix://", 0) == 0) {
    unix_endpoint = true;
    if (addr.size() == 7) e.add(at(path, "address"), "unix endpoint path is empty");
    if (we.ports_size() != 0)
      e.add(at(path, "ports"), "unix endpoint " + addr + " must not include ports");
  } else if (!isIp(addr)) {
    if (!allow_fqdn) {
      e.add(at(path, "address"), "endpoint address " + q(addr) + " is not a valid IP address");
    } else if (!checkFqdn(addr).empty()) {
      e.add(at(path, "address"),
            "endpoint address " + q(addr) + " is not a valid FQDN or an IP address");
    }
  }
  for (const auto& [name, port] : we.ports()) {
    std::string p = key(at(path, "ports"), name);
    if (service_ports != nullptr && !service_ports->contains(name)) {
      e.add(p, "endpoint port " + std::to_string(port) + " is not defined by the service entry");
    }
    validatePortName(p, name, e);
    e.add(p, checkPort(port));
  }
  validateLabels(at(path, "labels"), we.labels(), e);
  if (unix_endpoint && service_ports != nullptr && service_ports->size() != 1) {
    e.add(path, "exactly 1 service port required for unix endpoints");
  }
}

void validateServiceEntry(const Resource& r, const net::ServiceEntry& se, Errors& e) {
  using SE = net::ServiceEntry;
  const std::string s = "spec";
  if (se.has_workload_selector()) {
    validateSelectorLabels(at(at(s, "workloadSelector"), "labels"), se.workload_selector().labels(),
                           e);
    if (se.endpoints_size() > 0) {
      e.add(s, "only one of workloadSelector or endpoints is allowed in Service Entry");
    }
  }
  if (se.hosts_size() == 0) e.add(at(s, "hosts"), "service entry must have at least one host");
  for (int i = 0; i < se.hosts_size(); ++i) {
    if (se.hosts(i) == "*") {
      e.add(idx(s, "hosts", i), "invalid host *");
    } else {
      e.add(idx(s, "hosts", i), checkWildcardDomain(se.hosts(i)));
    }
  }
  bool cidr = false;
  for (int i = 0; i < se.addresses_size(); ++i) {
    cidr = cidr || se.addresses(i).find('/') != std::string::npos;
    e.add(idx(s, "addresses", i), checkIpSubnet(se.addresses(i)));
  }
  if (cidr && se.resolution() != SE::NONE && se.resolution() != SE::STATIC) {
    e.add(at(s, "addresses"), "CIDR addresses are allowed only for NONE/STATIC resolution types");
  }
  std::set<std::string> port_names;
  std::set<uint32_t> port_numbers;
  for (int i = 0; i < se.ports_size(); ++i) {
    const auto& port = se.ports(i);
    std::string p = idx(s, "ports", i);
    if (!port_names.insert(port.name()).second) {
      e.add(at(p, "name"), "service entry port name " + q(port.name()) + " already defined");
    }
    if (!port_numbers.insert(port.number()).second) {
      e.add(at(p, "number"),
            "service entry port " + std::to_string(port.number()) + " already defined");
    }
    if (port.target_port() != 0) e.add(at(p, "targetPort"), checkPort(port.target_port()));
    validatePortName(at(p, "name"), port.name(), e);
    validateProtocol(at(p, "protocol"), port.protocol(), e);
    e.add(at(p, "number"), checkPort(port.number()));
  }
  std::string res_name = SE::Resolution_Name(se.resolution());
  switch (se.resolution()) {
    case SE::NONE:
      if (se.endpoints_size() != 0) {
        e.add(at(s, "endpoints"), "no endpoints should be provided for resolution type NONE");
      }
      break;
    case SE::STATIC:
      for (int i = 0; i < se.endpoints_size(); ++i) {
        validateWorkloadEntry(idx(s, "endpoints", i), se.endpoints(i), &port_names, false, e);
      }
      break;
    case SE::DNS:
    case SE::DNS_ROUND_ROBIN:
      if (se.endpoints_size() == 0) {
        for (int i = 0; i < se.hosts_size(); ++i) {
          std::string err = checkFqdn(se.hosts(i));
          if (!err.empty()) {
            e.add(idx(s, "hosts", i),
                  "hosts must be FQDN or contain only prefix wildcards if no endpoints are "
                  "provided for resolution mode " +
                      res_name + ", " + err);
            break;
          }
        }
      }
      if (se.resolution() == SE::DNS_ROUND_ROBIN && se.endpoints_size() > 1) {
        e.add(at(s, "endpoints"),
              "there must only be 0 or 1 endpoint for resolution mode DNS_ROUND_ROBIN");
      }
      for (int i = 0; i < se.endpoints_size(); ++i) {
        validateWorkloadEntry(idx(s, "endpoints", i), se.endpoints(i), &port_names, true, e);
      }
      break;
    case SE::DYNAMIC_DNS:
      for (int i = 0; i < se.hosts_size(); ++i) {
        if (se.hosts(i).rfind("*", 0) != 0) {
          e.add(idx(s, "hosts", i), "host must be wildcarded for resolution mode DYNAMIC_DNS");
        }
      }
      if (se.addresses_size() != 0) {
        e.add(at(s, "addresses"), "addresses cannot be set for resolution type DYNAMIC_DNS");
      }
      if (se.endpoints_size() != 0) {
        e.add(at(s, "endpoints"), "endpoints cannot be set for resolution type DYNAMIC_DNS");
      }
      for (int i = 0; i < se.ports_size(); ++i) {
        std::string u = upper(se.ports(i).protocol());
        if (u != "HTTP" && u != "TLS" && u != "GRPC" && u != "HTTP2") {
          e.add(at(idx(s, "ports", i), "protocol"),
                "only HTTP, TLS, GRPC, and HTTP2 protocols are supported for resolution type "
                "DYNAMIC_DNS");
        }
      }
      break;
    default:
      break;
  }
  // With several hosts, plain TCP cannot tell them apart (no Host header, no SNI).
  if (se.resolution() != SE::NONE && se.hosts_size() > 1) {
    for (int i = 0; i < se.ports_size(); ++i) {
      if (!isHttpProtocol(se.ports(i).protocol()) && !isTlsProtocol(se.ports(i).protocol())) {
        e.add(idx(s, "ports", i), "multiple hosts provided with non-HTTP, non-TLS ports");
        break;
      }
    }
  }
  validateExportTo(at(s, "exportTo"), r.metadata.ns, se.export_to(), true, false, e);
}

void validateSidecar(const Resource& r, const net::Sidecar& sc, Errors& e) {
  const std::string s = "spec";
  if (sc.has_workload_selector()) {
    validateSelectorLabels(at(at(s, "workloadSelector"), "labels"), sc.workload_selector().labels(),
                           e);
  }
  if (sc.egress_size() == 0 && sc.ingress_size() == 0 && !sc.has_outbound_traffic_policy() &&
      !sc.has_inbound_connection_pool()) {
    e.add(s, "sidecar: empty configuration provided");
    return;
  }
  std::set<uint32_t> ports;
  for (int i = 0; i < sc.ingress_size(); ++i) {
    const auto& in = sc.ingress(i);
    std::string p = idx(s, "ingress", i);
    if (!in.has_port()) {
      e.add(at(p, "port"), "sidecar: port is required for ingress listeners");
      continue;
    }
    std::string pp = at(p, "port");
    if (in.port().target_port() > 0)
      e.add(at(pp, "targetPort"), "targetPort has no impact on Sidecars");
    if (!in.port().name().empty()) validatePortName(at(pp, "name"), in.port().name(), e);
    validateProtocol(at(pp, "protocol"), in.port().protocol(), e);
    e.add(at(pp, "number"), checkPort(in.port().number()));
    if (!in.bind().empty()) e.add(at(p, "bind"), checkIpAddress(in.bind()));
    if (!ports.insert(in.port().number()).second) {
      e.add(at(pp, "number"), "sidecar: ports on IP bound listeners must be unique");
    }
    if (!in.default_endpoint().empty() && in.default_endpoint().rfind("unix://", 0) != 0) {
      const std::string& de = in.default_endpoint();
      auto colon = de.rfind(':');
      std::string host = colon == std::string::npos ? de : de.substr(0, colon);
      std::string port = colon == std::string::npos ? "" : de.substr(colon + 1);
      if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
        host = host.substr(1, host.size() - 2);
      if (!host.empty() && host != "127.0.0.1" && host != "0.0.0.0" && host != "::1" &&
          host != "::") {
        e.add(at(p, "defaultEndpoint"),
              "sidecar: defaultEndpoint must be of form "
              "127.0.0.1:<port>,0.0.0.0:<port>,[::1]:port,[::]:port,unix://filepath or unset");
      }
      bool numeric = !port.empty() && std::all_of(port.begin(), port.end(),
                                                  [](char c) { return c >= '0' && c <= '9'; });
      if (!numeric || port.size() > 5) {
        e.add(at(p, "defaultEndpoint"),
              "sidecar: defaultEndpoint port (" + port + ") is not a number");
      } else {
        e.add(at(p, "defaultEndpoint"), checkPort(std::stoi(port)));
      }
    }
    if (in.has_tls()) {
      const auto& t = in.tls();
      std::string tp = at(p, "tls");
      if (t.subject_alt_names_size() > 0)
        e.add(tp, "sidecar: subjectAltNames is not supported in ingress tls");
      if (t.https_redirect()) e.add(tp, "sidecar: httpsRedirect is not supported");
      if (!t.credential_name().empty())
        e.add(tp, "sidecar: credentialName is not currently supported");
      if (t.mode() == net::ServerTLSSettings::ISTIO_MUTUAL ||
          t.mode() == net::ServerTLSSettings::AUTO_PASSTHROUGH) {
        e.add(at(tp, "mode"), "configuration is invalid: cannot set mode to " +
                                  net::ServerTLSSettings::TLSmode_Name(t.mode()) +
                                  " in sidecar ingress tls");
      }
      if (!isTlsProtocol(in.port().protocol())) {
        e.add(tp, "server cannot have TLS settings for non HTTPS/TLS ports");
      }
      validateServerTls(tp, t, e);
    }
    if (in.has_connection_pool())
      validateConnectionPool(at(p, "connectionPool"), in.connection_pool(), e);
  }
  if (sc.has_inbound_connection_pool()) {
    validateConnectionPool(at(s, "inboundConnectionPool"), sc.inbound_connection_pool(), e);
  }
  ports.clear();
  std::set<std::string> uds;
  bool catch_all = false;
  for (int i = 0; i < sc.egress_size(); ++i) {
    const auto& eg = sc.egress(i);
    std::string p = idx(s, "egress", i);
    if (!eg.has_port()) {
      if (catch_all) {
        e.add(p, "sidecar: egress can have only one listener with empty port");
        continue;
      }
      if (i == sc.egress_size() - 1) {
        catch_all = true;
      } else {
        e.add(
            p,
            "sidecar: the egress listener with empty port should be the last listener in the list");
      }
    } else {
      std::string pp = at(p, "port");
      const auto& port = eg.port();
      if (port.target_port() > 0)
        e.add(at(pp, "targetPort"), "targetPort has no impact on Sidecars");
      if (!port.name().empty()) validatePortName(at(pp, "name"), port.name(), e);
      validateProtocol(at(pp, "protocol"), port.protocol(), e);
      if (port.number() == 0) {
        if (eg.bind().rfind("unix://", 0) != 0) {
          e.add(at(p, "bind"),
                "sidecar: ports with 0 value must have a unix domain socket bind address");
        } else if (!uds.insert(eg.bind()).second) {
          e.add(at(p, "bind"), "sidecar: unix domain socket values for listeners must be unique");
        }
        if (eg.capture_mode() != net::DEFAULT && eg.capture_mode() != net::NONE) {
          e.add(at(p, "captureMode"),
                "sidecar: captureMode must be DEFAULT/NONE for unix domain socket listeners");
        }
      } else {
        e.add(at(pp, "number"), checkPort(port.number()));
        if (!eg.bind().empty()) e.add(at(p, "bind"), checkIpAddress(eg.bind()));
        if (!ports.insert(port.number()).second) {
          e.add(at(pp, "number"), "sidecar: ports on IP bound listeners must be unique");
        }
      }
    }
    if (eg.hosts_size() == 0) {
      e.add(at(p, "hosts"), "sidecar: egress listener must contain at least one host");
    }
    for (int h = 0; h < eg.hosts_size(); ++h) {
      validateNamespaceSlashHost(idx(p, "hosts", h), eg.hosts(h), false, e);
    }
  }
  if (sc.has_outbound_traffic_policy()) {
    const auto& tp = sc.outbound_traffic_policy();
    std::string p = at(s, "outboundTrafficPolicy");
    if (tp.has_egress_proxy()) {
      if (tp.mode() != net::OutboundTrafficPolicy::ALLOW_ANY) {
        e.add(at(p, "egressProxy"),
              "sidecar: egress_proxy must be set only with ALLOW_ANY outbound_traffic_policy mode");
      } else {
        e.add(at(at(p, "egressProxy"), "host"), checkFqdn(tp.egress_proxy().host()));
        if (!tp.egress_proxy().has_port()) {
          e.add(at(p, "egressProxy"), "sidecar: egress_proxy port must be non-nil");
        } else {
          validateDestination(at(p, "egressProxy"), tp.egress_proxy(), e);
        }
      }
    }
  }
}

void validateWorkloadGroup(const net::WorkloadGroup& wg, Errors& e) {
  const std::string s = "spec";
  if (!wg.has_template_()) {
    e.add(at(s, "template"), "template is required");
    return;
  }
  if (wg.has_metadata()) validateLabels(at(at(s, "metadata"), "labels"), wg.metadata().labels(), e);
  validateLabels(at(at(s, "template"), "labels"), wg.template_().labels(), e);
  if (!wg.has_probe()) return;
  const auto& p = wg.probe();
  std::string pp = at(s, "probe");
  if (p.period_seconds() < 0) e.add(at(pp, "periodSeconds"), "periodSeconds must be non-negative");
  if (p.initial_delay_seconds() < 0)
    e.add(at(pp, "initialDelaySeconds"), "initialDelaySeconds must be non-negative");
  if (p.timeout_seconds() < 0)
    e.add(at(pp, "timeoutSeconds"), "timeoutSeconds must be non-negative");
  if (p.success_threshold() < 0)
    e.add(at(pp, "successThreshold"), "successThreshold must be non-negative");
  if (p.failure_threshold() < 0)
    e.add(at(pp, "failureThreshold"), "failureThreshold must be non-negative");
  switch (p.health_check_method_case()) {
    case net::ReadinessProbe::kHttpGet: {
      const auto& h = p.http_get();
      e.add(at(at(pp, "httpGet"), "port"), checkPort(h.port()));
      if (!h.scheme().empty() && h.scheme() != "HTTP" && h.scheme() != "HTTPS") {
        e.add(at(at(pp, "httpGet"), "scheme"), "httpGet.scheme must be one of \"HTTPS\", \"HTTP\"");
      }
      break;
    }
    case net::ReadinessProbe::kTcpSocket:
      e.add(at(at(pp, "tcpSocket"), "port"), checkPort(p.tcp_socket().port()));
      break;
    case net::ReadinessProbe::kExec:
      if (p.exec().command_size() == 0)
        e.add(at(at(pp, "exec"), "command"), "exec.command is required");
      break;
    case net::ReadinessProbe::kGrpc:
      e.add(at(at(pp, "grpc"), "port"), checkPort(p.grpc().port()));
      break;
    default:
      e.add(pp, "probe needs one of httpGet, tcpSocket, exec or grpc");
      break;
  }
}

// ---------------------------------------------------------------- security

void validatePolicySelectors(
    const std::string& s, bool has_selector, const typ::WorkloadSelector& sel, bool has_target_ref,
    const typ::PolicyTargetReference& ref,
    const google::protobuf::RepeatedPtrField<typ::PolicyTargetReference>& refs, Errors& e) {
  int set = (has_selector ? 1 : 0) + (has_target_ref ? 1 : 0) + (refs.empty() ? 0 : 1);
  if (set > 1) e.add(s, "only one of targetRefs or workloadSelector can be set");
  if (has_selector)
    validateSelectorLabels(at(at(s, "selector"), "matchLabels"), sel.match_labels(), e);
  auto check = [&](const std::string& p, const typ::PolicyTargetReference& r) {
    if (r.name().empty()) e.add(at(p, "name"), "targetRef name must be set");
    if (!r.namespace_().empty()) {
      e.add(at(p, "namespace"),
            "targetRef namespace must not be set; cross namespace referencing is not supported");
    }
    std::string group = r.group().empty() ? "core" : r.group();
    bool ok = (group == "core" && r.kind() == "Service") ||
              (group == "networking.istio.io" && r.kind() == "ServiceEntry") ||
              (group == "gateway.networking.k8s.io" &&
               (r.kind() == "Gateway" || r.kind() == "GatewayClass"));
    if (!ok) {
      e.add(at(p, "kind"),
            "targetRef must be to one of Service, ServiceEntry, Gateway or GatewayClass but was " +
                r.group() + "/" + r.kind());
    }
  };
  if (has_target_ref) check(at(s, "targetRef"), ref);
  for (int i = 0; i < refs.size(); ++i) check(idx(s, "targetRefs", i), refs[i]);
}

void validatePeerAuthentication(const sec::PeerAuthentication& pa, Errors& e) {
  const std::string s = "spec";
  bool empty_selector = !pa.has_selector() || pa.selector().match_labels().empty();
  if (empty_selector && !pa.port_level_mtls().empty()) {
    e.add(at(s, "portLevelMtls"), "mesh/namespace peer authentication cannot have port level mTLS");
  }
  for (const auto& [port, m] : pa.port_level_mtls()) {
    if (port == 0 || port > 65535) {
      e.add(key(at(s, "portLevelMtls"), std::to_string(port)), "port must be in range 1..65535");
    }
  }
  if (pa.has_selector())
    validateSelectorLabels(at(at(s, "selector"), "matchLabels"), pa.selector().match_labels(), e);
}

bool validIpOrCidr(const std::string& v) { return checkIpSubnet(v).empty(); }

void checkNonEmpty(const std::string& p, const google::protobuf::RepeatedPtrField<std::string>& v,
                   const char* field, Errors& e) {
  for (int i = 0; i < v.size(); ++i) {
    if (v[i].empty()) e.add(idx(p, field, i), std::string("empty value not allowed in ") + field);
  }
}

void checkIps(const std::string& p, const google::protobuf::RepeatedPtrField<std::string>& v,
              const char* field, Errors& e) {
  for (int i = 0; i < v.size(); ++i) {
    if (!v[i].empty() && !validIpOrCidr(v[i])) {
      e.add(idx(p, field, i), "invalid IP address or CIDR block: " + q(v[i]));
    }
  }
}

void checkPorts(const std::string& p, const google::protobuf::RepeatedPtrField<std::string>& v,
                const char* field, Errors& e) {
  for (int i = 0; i < v.size(); ++i) {
    const std::string& s = v[i];
    bool numeric = !s.empty() && s.size() <= 5 &&
                   std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (!numeric || std::stoi(s) > 65535) e.add(idx(p, field, i), "invalid port: " + q(s));
  }
}

void checkPathTemplates(const std::string& p,
                        const google::protobuf::RepeatedPtrField<std::string>& v, const char* field,
                        Errors& e) {
  for (int i = 0; i < v.size(); ++i) {
    const std::string& path = v[i];
    if (path.find('{') == std::string::npos && path.find('}') == std::string::npos) continue;
    std::vector<std::string> segs;
    size_t start = 0;
    while (true) {
      size_t slash = path.find('/', start);
      segs.push_back(
          path.substr(start, slash == std::string::npos ? std::string::npos : slash - start));
      if (slash == std::string::npos) break;
      start = slash + 1;
    }
    bool ok = path.starts_with('/');
    for (size_t k = 0; k < segs.size() && ok; ++k) {
      const std::string& seg = segs[k];
      if (seg.find('{') == std::string::npos && seg.find('}') == std::string::npos) continue;
      if (seg == "{*}") continue;
      if (seg == "{**}" && k == segs.size() - 1) continue;
      ok = false;
    }
    if (!ok) {
      e.add(idx(p, field, i), "invalid or unsupported path template " + q(path) +
                                  " ({*} matches one segment, {**} only as the last segment)");
    }
  }
}

bool validConditionKey(const std::string& k) {
  static const std::set<std::string, std::less<>> kExact = {"source.ip",
                                                            "remote.ip",
                                                            "source.namespace",
                                                            "source.principal",
                                                            "source.serviceAccount",
                                                            "source.trustDomain",
                                                            "request.auth.principal",
                                                            "request.auth.audiences",
                                                            "request.auth.presenter",
                                                            "destination.ip",
                                                            "destination.port",
                                                            "connection.sni"};
  if (kExact.contains(k)) return true;
  auto bracketed = [&](std::string_view prefix) {
    return k.starts_with(prefix) && k.size() > prefix.size() + 1 && k.back() == ']';
  };
  if (bracketed("request.headers[")) return true;
  if (bracketed("request.auth.claims[")) return true;
  if (k.starts_with("experimental.envoy.filters.")) return true;
  return false;
}

void validateAuthorizationPolicy(const sec::AuthorizationPolicy& ap, Errors& e) {
  using AP = sec::AuthorizationPolicy;
  const std::string s = "spec";
  validatePolicySelectors(s, ap.has_selector(), ap.selector(), ap.has_target_ref(), ap.target_ref(),
                          ap.target_refs(), e);
  if (ap.action() == AP::CUSTOM) {
    if (ap.rules_size() == 0) {
      e.add(at(s, "rules"),
            "CUSTOM action without `rules` is meaningless as it will never be triggered, "
            "add an empty rule `{}` if you want it be triggered for every request");
    } else if (!ap.has_provider() || ap.provider().name().empty()) {
      e.add(at(at(s, "provider"), "name"), "`provider.name` must not be empty");
    }
  }
  if (ap.has_provider() && ap.action() != AP::CUSTOM) {
    e.add(at(s, "provider"),
          "`provider` must not be with non CUSTOM action, found " + AP::Action_Name(ap.action()));
  }
  if (ap.action() == AP::DENY && ap.rules_size() == 0) {
    e.add(at(s, "rules"),
          "DENY action without `rules` is meaningless as it will never be triggered, "
          "add an empty rule `{}` if you want it be triggered for every request");
  }
  for (int i = 0; i < ap.rules_size(); ++i) {
    const auto& rule = ap.rules(i);
    std::string rp = idx(s, "rules", i);
    for (int f = 0; f < rule.from_size(); ++f) {
      std::string fp = idx(rp, "from", f);
      if (!rule.from(f).has_source()) {
        e.add(at(fp, "source"), "`from.source` must not be nil");
        continue;
      }
      const auto& src = rule.from(f).source();
      std::string sp = at(fp, "source");
      if (src.principals_size() + src.not_principals_size() + src.namespaces_size() +
                  src.not_namespaces_size() >
              0 &&
          src.service_accounts_size() + src.not_service_accounts_size() > 0) {
        e.add(sp, "cannot set serviceAccounts with namespaces or principals");
      }
      if (src.ByteSizeLong() == 0) e.add(sp, "`from.source` must not be empty");
      checkIps(sp, src.ip_blocks(), "ipBlocks", e);
      checkIps(sp, src.not_ip_blocks(), "notIpBlocks", e);
      checkIps(sp, src.remote_ip_blocks(), "remoteIpBlocks", e);
      checkIps(sp, src.not_remote_ip_blocks(), "notRemoteIpBlocks", e);
      checkNonEmpty(sp, src.principals(), "principals", e);
      checkNonEmpty(sp, src.request_principals(), "requestPrincipals", e);
      checkNonEmpty(sp, src.namespaces(), "namespaces", e);
      checkNonEmpty(sp, src.service_accounts(), "serviceAccounts", e);
      checkNonEmpty(sp, src.trust_domains(), "trustDomains", e);
      checkNonEmpty(sp, src.ip_blocks(), "ipBlocks", e);
      checkNonEmpty(sp, src.remote_ip_blocks(), "remoteIpBlocks", e);
      checkNonEmpty(sp, src.not_principals(), "notPrincipals", e);
      checkNonEmpty(sp, src.not_request_principals(), "notRequestPrincipals", e);
      checkNonEmpty(sp, src.not_namespaces(), "notNamespaces", e);
      checkNonEmpty(sp, src.not_service_accounts(), "notServiceAccounts", e);
      checkNonEmpty(sp, src.not_trust_domains(), "notTrustDomains", e);
      checkNonEmpty(sp, src.not_ip_blocks(), "notIpBlocks", e);
      checkNonEmpty(sp, src.not_remote_ip_blocks(), "notRemoteIpBlocks", e);
      for (int k = 0; k < src.service_accounts_size(); ++k) {
        if (src.service_accounts(k).size() > 320) {
          e.add(idx(sp, "serviceAccounts", k), "service account name too long (max 320)");
        }
      }
      if (ap.action() == AP::CUSTOM &&
          src.principals_size() + src.not_principals_size() + src.request_principals_size() +
                  src.not_request_principals_size() + src.namespaces_size() +
                  src.not_namespaces_size() + src.service_accounts_size() +
                  src.not_service_accounts_size() + src.trust_domains_size() +
                  src.not_trust_domains_size() >
              0) {
        e.add(sp, "only ipBlocks and remoteIpBlocks are currently supported with CUSTOM action");
      }
    }
    for (int t = 0; t < rule.to_size(); ++t) {
      std::string tp = idx(rp, "to", t);
      if (!rule.to(t).has_operation()) {
        e.add(at(tp, "operation"), "`to.operation` must not be nil");
        continue;
      }
      const auto& op = rule.to(t).operation();
      std::string op_p = at(tp, "operation");
      if (op.ByteSizeLong() == 0) e.add(op_p, "`to.operation` must not be empty");
      checkPorts(op_p, op.ports(), "ports", e);
      checkPorts(op_p, op.not_ports(), "notPorts", e);
      checkNonEmpty(op_p, op.methods(), "methods", e);
      checkNonEmpty(op_p, op.paths(), "paths", e);
      checkNonEmpty(op_p, op.hosts(), "hosts", e);
      checkNonEmpty(op_p, op.not_methods(), "notMethods", e);
      checkNonEmpty(op_p, op.not_paths(), "notPaths", e);
      checkNonEmpty(op_p, op.not_hosts(), "notHosts", e);
      checkPathTemplates(op_p, op.paths(), "paths", e);
      checkPathTemplates(op_p, op.not_paths(), "notPaths", e);
    }
    for (int w = 0; w < rule.when_size(); ++w) {
      const auto& c = rule.when(w);
      std::string wp = idx(rp, "when", w);
      if (c.key().empty()) {
        e.add(at(wp, "key"), "`key` must not be empty");
        continue;
      }
      if (!validConditionKey(c.key())) {
        e.add(at(wp, "key"), "unknown attribute " + q(c.key()));
        continue;
      }
      if (c.values_size() == 0 && c.not_values_size() == 0) {
        e.add(wp, "at least one of `values` or `notValues` must be set for key " + c.key());
        continue;
      }
      auto checkVals = [&](const google::protobuf::RepeatedPtrField<std::string>& vals,
                           const char* f) {
        if (c.key() == "source.ip" || c.key() == "remote.ip" || c.key() == "destination.ip") {
          checkIps(wp, vals, f, e);
        } else if (c.key() == "destination.port") {
          checkPorts(wp, vals, f, e);
        }
      };
      checkVals(c.values(), "values");
      checkVals(c.not_values(), "notValues");
      if (ap.action() == AP::CUSTOM &&
          (c.key() == "source.namespace" || c.key() == "source.serviceAccount" ||
           c.key() == "source.trustDomain" || c.key() == "source.principal" ||
           c.key().starts_with("request.auth."))) {
        e.add(at(wp, "key"), c.key() + " is currently not supported with CUSTOM action");
      }
    }
  }
}

void validateRequestAuthentication(const sec::RequestAuthentication& ra, Errors& e) {
  const std::string s = "spec";
  validatePolicySelectors(s, ra.has_selector(), ra.selector(), ra.has_target_ref(), ra.target_ref(),
                          ra.target_refs(), e);
  for (int i = 0; i < ra.jwt_rules_size(); ++i) {
    const auto& r = ra.jwt_rules(i);
    std::string p = idx(s, "jwtRules", i);
    for (int a = 0; a < r.audiences_size(); ++a) {
      if (r.audiences(a).empty())
        e.add(idx(p, "audiences", a), "audience must be non-empty string");
    }
    if (r.issuer().empty() && r.jwks_uri().empty()) {
      e.add(at(p, "issuer"), "issuer or jwksUri must be non-empty string");
    }
    if (!r.jwks_uri().empty()) {
      const std::string& u = r.jwks_uri();
      bool scheme = u.rfind("http://", 0) == 0 || u.rfind("https://", 0) == 0;
      size_t host_start = u.find("://");
      bool host =
          host_start != std::string::npos && host_start + 3 < u.size() && u[host_start + 3] != '/';
      if (!scheme || !host) {
        e.add(at(p, "jwksUri"),
              "jwks URI " + q(u) + " must be an http:// or https:// URL with a host");
      }
      if (u.size() > 2048) e.add(at(p, "jwksUri"), "jwks URI too long (max 2048)");
    }
    if (!r.jwks().empty() && !r.jwks_uri().empty()) {
      e.add(at(p, "jwks"), "only one of jwks and jwksUri may be set");
    }
    if (!r.jwks().empty()) {
      auto j = nlohmann::json::parse(r.jwks(), nullptr, false);
      if (j.is_discarded() || !j.is_object() || !j.contains("keys") || !j["keys"].is_array()) {
        e.add(at(p, "jwks"), "jwks parse error: expected a JSON object with a \"keys\" list");
      }
    }
    for (int h = 0; h < r.from_headers_size(); ++h) {
      if (r.from_headers(h).name().empty()) {
        e.add(at(idx(p, "fromHeaders", h), "name"),
              "location header name must be non-empty string");
      }
    }
    for (int h = 0; h < r.from_params_size(); ++h) {
      if (r.from_params(h).empty())
        e.add(idx(p, "fromParams", h), "location query must be non-empty string");
    }
    for (int h = 0; h < r.from_cookies_size(); ++h) {
      if (r.from_cookies(h).empty())
        e.add(idx(p, "fromCookies", h), "cookie name must be non-empty string");
    }
    for (int h = 0; h < r.output_claim_to_headers_size(); ++h) {
      const auto& c = r.output_claim_to_headers(h);
      std::string cp = idx(p, "outputClaimToHeaders", h);
      if (c.claim().empty() || c.header().empty()) {
        e.add(cp, "outputClaimToHeaders header and claim value must be non-empty string");
        continue;
      }
      bool strict = std::all_of(c.header().begin(), c.header().end(),
                                [](char ch) { return isAlnum(ch) || ch == '-' || ch == '_'; });
      if (!strict) e.add(at(cp, "header"), "invalid header name " + q(c.header()));
    }
    validateDurationField(at(p, "timeout"), r.has_timeout(), r.timeout(), e);
  }
}

void validateTelemetry(const tel::Telemetry& t, Errors& e) {
  const std::string s = "spec";
  validatePolicySelectors(s, t.has_selector(), t.selector(), t.has_target_ref(), t.target_ref(),
                          t.target_refs(), e);
  auto providers = [&](const std::string& p,
                       const google::protobuf::RepeatedPtrField<tel::ProviderRef>& v) {
    for (int i = 0; i < v.size(); ++i) {
      if (v[i].name().empty()) e.add(at(idx(p, "providers", i), "name"), "must set provider name");
    }
  };
  for (int i = 0; i < t.tracing_size(); ++i) {
    const auto& tr = t.tracing(i);
    std::string p = idx(s, "tracing", i);
    providers(p, tr.providers());
    if (tr.has_random_sampling_percentage()) {
      double v = tr.random_sampling_percentage().value();
      if (v < 0 || v > 100) {
        e.add(at(p, "randomSamplingPercentage"),
              "randomSamplingPercentage must be in range [0.0, 100.0]");
      }
    }
    for (const auto& [name, tag] : tr.custom_tags()) {
      std::string tp = key(at(p, "customTags"), name);
      switch (tag.type_case()) {
        case tel::Tracing::CustomTag::kLiteral:
          if (tag.literal().value().empty()) e.add(tp, "literal value must be set");
          break;
        case tel::Tracing::CustomTag::kEnvironment:
          if (tag.environment().name().empty()) e.add(tp, "environment name must be set");
          break;
        case tel::Tracing::CustomTag::kHeader:
          if (tag.header().name().empty()) e.add(tp, "header name must be set");
          break;
        case tel::Tracing::CustomTag::kFormatter:
          if (tag.formatter().value().empty()) e.add(tp, "formatter value must be set");
          break;
        default:
          e.add(tp, "custom tag needs one of literal, environment, header or formatter");
          break;
      }
    }
  }
  for (int i = 0; i < t.metrics_size(); ++i) {
    const auto& m = t.metrics(i);
    std::string p = idx(s, "metrics", i);
    providers(p, m.providers());
    if (m.has_reporting_interval()) {
      e.add(at(p, "reportingInterval"), checkDuration(m.reporting_interval()));
    }
    for (int o = 0; o < m.overrides_size(); ++o) {
      const auto& ov = m.overrides(o);
      std::string op = idx(p, "overrides", o);
      for (const auto& [tag, to] : ov.tag_overrides()) {
        std::string tp = key(at(op, "tagOverrides"), tag);
        if (to.operation() == tel::MetricsOverrides::TagOverride::UPSERT && to.value().empty()) {
          e.add(tp, "must set value when operation is UPSERT");
        }
        if (to.operation() == tel::MetricsOverrides::TagOverride::REMOVE && !to.value().empty()) {
          e.add(tp, "value is only considered if operation is UPSERT");
        }
      }
    }
  }
  for (int i = 0; i < t.access_logging_size(); ++i) {
    providers(idx(s, "accessLogging", i), t.access_logging(i).providers());
  }
}

}  // namespace

bool isDns1123Label(const std::string& s) {
  if (s.empty() || s.size() > 63) return false;
  if (!isAlnum(s.front()) || !isAlnum(s.back())) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return isAlnum(c) || c == '-'; });
}

std::string checkWildcardDomain(const std::string& domain) {
  if (auto err = checkDnsPreconditions(domain); !err.empty()) return err;
  auto dot = domain.find('.');
  std::string first = domain.substr(0, dot);
  if (!isWildcardDns1123Label(first)) {
    return "domain name " + q(domain) + " invalid (label " + q(first) + " invalid)";
  }
  if (dot != std::string::npos) return checkDnsLabels(domain, domain.substr(dot + 1));
  return "";
}

std::string checkFqdn(const std::string& fqdn) {
  if (auto err = checkDnsPreconditions(fqdn); !err.empty()) return err;
  return checkDnsLabels(fqdn, fqdn);
}

std::string checkPort(int64_t port) {
  if (port >= 1 && port <= 65535) return "";
  return "port number " + std::to_string(port) + " must be in the range 1..65535";
}

std::string checkIpAddress(const std::string& addr) {
  return isIp(addr) ? "" : addr + " is not a valid IP";
}

std::string checkIpSubnet(const std::string& subnet) {
  auto slash = subnet.find('/');
  if (slash == std::string::npos) return checkIpAddress(subnet);
  std::string ip = subnet.substr(0, slash), bits = subnet.substr(slash + 1);
  unsigned char buf[16];
  int max = inet_pton(AF_INET, ip.c_str(), buf) == 1    ? 32
            : inet_pton(AF_INET6, ip.c_str(), buf) == 1 ? 128
                                                        : -1;
  bool numeric = !bits.empty() && bits.size() <= 3 &&
                 std::all_of(bits.begin(), bits.end(), [](char c) { return c >= '0' && c <= '9'; });
  if (max < 0 || !numeric || std::stoi(bits) > max) return subnet + " is not a valid CIDR block";
  return "";
}

std::string checkRegex(const std::string& regex) {
  // Envoy caps RE2 program size; Istio approximates with the length.
  if (regex.size() > 1024) return "regex is too large, max length allowed is 1024";
  RE2::Options options;
  options.set_log_errors(false);
  RE2 re(regex, options);
  if (!re.ok()) {
    return "invalid regex " + q(regex) + ": " + re.error() +
           "; Istio uses RE2 style regex-based match (https://github.com/google/re2/wiki/Syntax)";
  }
  return "";
}

std::vector<FieldError> validateResource(const Resource& r) {
  std::vector<FieldError> out;
  Errors e(out);
  if (r.metadata.name.empty()) {
    e.add("metadata.name", "name is required");
  } else if (!isDns1123Subdomain(r.metadata.name)) {
    e.add("metadata.name",
          "invalid name " + q(r.metadata.name) +
              ": must be lowercase letters, digits, '-' and '.' (DNS-1123 subdomain)");
  }
  if (!isLowerDns1123Label(r.metadata.ns)) {
    e.add("metadata.namespace",
          "invalid namespace " + q(r.metadata.ns) + ": must be a DNS-1123 label");
  }
  if (!r.spec) return out;
  switch (r.kind) {
    case Kind::kGateway:
      validateGateway(r, *r.specAs<net::Gateway>(), e);
      break;
    case Kind::kVirtualService:
      validateVirtualService(r, *r.specAs<net::VirtualService>(), e);
      break;
    case Kind::kDestinationRule:
      validateDestinationRule(r, *r.specAs<net::DestinationRule>(), e);
      break;
    case Kind::kServiceEntry:
      validateServiceEntry(r, *r.specAs<net::ServiceEntry>(), e);
      break;
    case Kind::kWorkloadEntry:
      validateWorkloadEntry("spec", *r.specAs<net::WorkloadEntry>(), nullptr, true, e);
      break;
    case Kind::kWorkloadGroup:
      validateWorkloadGroup(*r.specAs<net::WorkloadGroup>(), e);
      break;
    case Kind::kSidecar:
      validateSidecar(r, *r.specAs<net::Sidecar>(), e);
      break;
    case Kind::kPeerAuthentication:
      validatePeerAuthentication(*r.specAs<sec::PeerAuthentication>(), e);
      break;
    case Kind::kAuthorizationPolicy:
      validateAuthorizationPolicy(*r.specAs<sec::AuthorizationPolicy>(), e);
      break;
    case Kind::kRequestAuthentication:
      validateRequestAuthentication(*r.specAs<sec::RequestAuthentication>(), e);
      break;
    case Kind::kTelemetry:
      validateTelemetry(*r.specAs<tel::Telemetry>(), e);
      break;
  }
  return out;
}

}  // namespace mast::control::config
