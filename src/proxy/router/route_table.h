#pragma once
// The route table: typed, immutable objects built once from an Envoy RouteConfiguration and
// matched per request without touching protos. Built on the main thread; shared read-only by
// workers as shared_ptr<const RouteTable>.
#include <re2/re2.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/hash.h"
#include "base/result.h"
#include "http/header_map.h"
#include "http/stream_info.h"

namespace envoy::config::route::v3 {
class RouteConfiguration;
class Route;
class HeaderMatcher;
class QueryParameterMatcher;
}  // namespace envoy::config::route::v3
namespace envoy::type::matcher::v3 {
class StringMatcher;
}
namespace google::protobuf {
class Any;
}

namespace mast::router {

// Builds a filter's typed per-route config from typed_per_filter_config (filters own parsing).
using PerFilterConfigFactory = std::function<Result<std::shared_ptr<const void>>(
    const std::string& filter_name, const google::protobuf::Any& config)>;

// === Matchers ===
// The one implementation of Envoy's string, header and query-parameter matchers: the route table
// uses them for route matching and retriable_headers, the HTTP filters (src/proxy/filters: fault
// `headers`, cors `allow_origin_string_match`) for theirs. Built once from the protos, immutable,
// shared by workers. Parse errors are "<path>.<field>: <reason>" (path may be empty).

// envoy.type.matcher.v3.StringMatcher. `ignore_case` applies to exact/prefix/suffix/contains (the
// value is stored lower-cased) and, as in Envoy, not to safe_regex. Empty prefix/suffix/contains
// and custom matchers are rejected, as Envoy's validation does.
struct StringMatcher {
  enum class Kind { Exact, Prefix, Suffix, Contains, Regex };
  Kind kind = Kind::Exact;
  std::string value;  // lower-cased when ignore_case
  bool ignore_case = false;
  std::shared_ptr<const RE2> regex;  // Kind::Regex (full match)
  bool match(std::string_view s) const;
};
Result<StringMatcher> parseStringMatcher(const envoy::type::matcher::v3::StringMatcher& m,
                                         const std::string& path);

// envoy.config.route.v3.HeaderMatcher, including the deprecated exact_match/prefix_match/... fields
// that control planes still send. Repeated headers are matched on their values joined with ",".
// A missing header never matches, except present_match: false, or treat_missing_header_as_empty
// (then the value is ""). invert_match flips the result in every case.
struct HeaderMatcher {
  enum class Kind { Present, String, Range };
  std::string name;  // lower-case
  Kind kind = Kind::Present;
  bool present = true;                     // Kind::Present
  StringMatcher string;                    // Kind::String
  int64_t range_start = 0, range_end = 0;  // Kind::Range: [start, end) on a decimal value
  bool invert = false;
  bool treat_missing_as_empty = false;
  bool match(const http::HeaderMap& h) const;
};
Result<HeaderMatcher> parseHeaderMatcher(const envoy::config::route::v3::HeaderMatcher& m,
                                         const std::string& path);
bool matchAllHeaders(const std::vector<HeaderMatcher>& matchers, const http::HeaderMap& h);

// envoy.config.route.v3.QueryParameterMatcher on the raw query string (no percent-decoding): the
// first parameter named `name` decides; a parameter without '=' has the value "".
struct QueryParameterMatcher {
  std::string name;
  std::optional<StringMatcher> string;  // nullopt: present_match
  bool match(std::string_view query) const;
};
Result<QueryParameterMatcher> parseQueryParameterMatcher(
    const envoy::config::route::v3::QueryParameterMatcher& m, const std::string& path);

enum RetryOn : uint32_t {
  kRetry5xx = 1 << 0,
  kRetryGatewayError = 1 << 1,
  kRetryReset = 1 << 2,
  kRetryConnectFailure = 1 << 3,
  kRetryRetriable4xx = 1 << 4,
  kRetryRefusedStream = 1 << 5,
  kRetryRetriableStatusCodes = 1 << 6,
  kRetryRetriableHeaders = 1 << 7,
  kRetryEnvoyRateLimited = 1 << 8,
};

struct RetryPolicy {
  uint32_t retry_on = 0;
  uint32_t num_retries = 1;
  std::chrono::milliseconds per_try_timeout{0};
  std::chrono::milliseconds back_off_base{25};
  std::chrono::milliseconds back_off_max{250};
  std::vector<uint32_t> retriable_status_codes;
  std::vector<HeaderMatcher> retriable_headers;
  uint32_t host_selection_retry_max_attempts = 1;
  // Whether a response with `status` (and headers) should be retried.
  bool retriableStatus(int status, const http::HeaderMap& headers) const;
  // Whether a failure before response headers should be retried.
  bool retriableReset(bool connect_failure, bool refused_stream) const;
  // A per-try timeout counts like a 5xx/gateway error/reset.
  bool retriableTimeout() const {
    return retry_on & (kRetry5xx | kRetryGatewayError | kRetryReset);
  }
};

struct HeaderValueOption {
  std::string name;
  std::string value;
  enum class Action { AppendIfExistsOrAdd, AddIfAbsent, OverwriteIfExistsOrAdd, OverwriteIfExists };
  Action action = Action::AppendIfExistsOrAdd;
  bool keep_empty_value = false;
  // Value with %DOWNSTREAM_REMOTE_ADDRESS% style variables expanded at request time.
  bool dynamic = false;
};

struct HeaderMutations {
  std::vector<HeaderValueOption> add;
  std::vector<std::string> remove;
  bool empty() const { return add.empty() && remove.empty(); }
  void apply(http::HeaderMap& h, const http::StreamInfo* info) const;
};

struct WeightedCluster {
  std::string name;
  uint32_t weight = 0;
  HeaderMutations request_headers;
  HeaderMutations response_headers;
  std::string host_rewrite_literal;
  std::map<std::string, std::shared_ptr<const void>, std::less<>> per_filter;
};

struct MirrorPolicy {
  std::string cluster;
  uint32_t numerator = 100;  // of `denominator`
  uint32_t denominator = 100;
  bool sampled(uint64_t random) const { return random % denominator < numerator; }
};

struct HashPolicy {
  enum class Kind { Header, Cookie, SourceIp, QueryParameter };
  Kind kind = Kind::Header;
  std::string name;
  bool terminal = false;
  // Cookie with a ttl: a request without the cookie gets one generated (and set on the
  // response) so that its next requests hash the same way.
  std::optional<std::chrono::seconds> cookie_ttl;
  std::string cookie_path;
};

// A cookie generated by a cookie hash policy, for the response's set-cookie header.
struct GeneratedCookie {
  std::string name;
  std::string value;
  std::string path;
  std::chrono::seconds ttl{0};
  // Envoy's format: NAME="VALUE"; Max-Age=TTL; Path=PATH; HttpOnly (Max-Age omitted when 0).
  std::string setCookieValue() const;
};

struct ClusterChoice {
  const std::string* name = nullptr;
  const WeightedCluster* weighted = nullptr;
};

struct DirectResponse {
  uint32_t status = 200;
  std::string body;
};

class VirtualHost;
class RouteTable;

class RouteEntry {
 public:
  const std::string& name() const { return name_; }
  const VirtualHost& virtualHost() const { return *vhost_; }
  // nullptr unless this route answers directly.
  const DirectResponse* directResponse() const { return direct_ ? &*direct_ : nullptr; }
  bool isRedirect() const { return redirect_.has_value(); }
  std::string redirectLocation(const http::HeaderMap& request, bool tls) const;
  int redirectResponseCode() const { return redirect_ ? redirect_->code : 301; }

  ClusterChoice selectCluster(const http::HeaderMap& headers, uint64_t random) const;
  // :path (prefix/regex rewrite, sets x-envoy-original-path) and :authority rewrites.
  void applyRewrites(http::HeaderMap& request) const;
  bool autoHostRewrite() const { return auto_host_rewrite_; }
  // Route, then virtual host, then route-configuration level (the last has the final say).
  void applyRequestHeaders(http::HeaderMap& h, const WeightedCluster* wc,
                           const http::StreamInfo& info) const;
  void applyResponseHeaders(http::HeaderMap& h, const WeightedCluster* wc) const;
  // `connection_key` (the downstream's remote and local address) seeds generated cookies, so the
  // requests of one connection get the same one; those are appended to `generated`.
  std::optional<uint64_t> computeHash(const http::HeaderMap& h, std::string_view source_ip,
                                      std::string_view connection_key = {},
                                      std::vector<GeneratedCookie>* generated = nullptr) const;
  const RetryPolicy* retryPolicy() const;
  std::chrono::milliseconds timeout() const { return timeout_; }
  std::optional<std::chrono::milliseconds> idleTimeout() const { return idle_timeout_; }
  const std::vector<MirrorPolicy>& mirrorPolicies() const { return mirrors_; }
  bool hasMirrors() const { return !mirrors_.empty(); }
  const void* perFilterConfig(std::string_view filter_name) const;
  const std::string& decoratorOperation() const { return decorator_; }
  // RouteAction.upgrade_configs: whether this route enables (true) or disables (false) upgrade
  // `type` (lower case), or nullopt when it says nothing about it.
  std::optional<bool> upgradeOverride(std::string_view type) const;

  bool matches(const http::HeaderMap& h, std::string_view path, uint64_t random) const;

 private:
  friend class RouteTable;
  enum class PathKind { Prefix, Path, Regex, PathSeparatedPrefix, Connect, Any };
  const VirtualHost* vhost_ = nullptr;
  const RouteTable* table_ = nullptr;
  std::string name_;
  PathKind path_kind_ = PathKind::Prefix;
  std::string path_value_;
  std::shared_ptr<const RE2> path_regex_;
  bool case_sensitive_ = true;
  std::vector<HeaderMatcher> headers_;
  std::vector<QueryParameterMatcher> query_params_;
  std::optional<std::pair<uint32_t, uint32_t>> runtime_fraction_;  // numerator, denominator
  bool grpc_only_ = false;

  std::optional<DirectResponse> direct_;
  struct Redirect {
    std::string scheme, host, path, prefix_rewrite;
    std::optional<uint32_t> port;
    bool strip_query = false;
    std::shared_ptr<const RE2> regex;
    std::string regex_substitution;
    int code = 301;
  };
  std::optional<Redirect> redirect_;
  std::string cluster_;
  std::string cluster_header_;
  std::vector<WeightedCluster> weighted_;
  uint64_t total_weight_ = 0;
  std::string prefix_rewrite_;
  std::shared_ptr<const RE2> regex_rewrite_;
  std::string regex_substitution_;
  std::string host_rewrite_literal_;
  std::string host_rewrite_header_;
  bool auto_host_rewrite_ = false;
  std::chrono::milliseconds timeout_{15000};
  std::optional<std::chrono::milliseconds> idle_timeout_;
  std::optional<RetryPolicy> retry_;
  std::vector<MirrorPolicy> mirrors_;
  std::vector<HashPolicy> hash_policies_;
  HeaderMutations request_headers_;
  HeaderMutations response_headers_;
  std::map<std::string, std::shared_ptr<const void>, std::less<>> per_filter_;
  std::string decorator_;
  std::vector<std::pair<std::string, bool>> upgrades_;  // lower-case type → enabled
};

class VirtualHost {
 public:
  const std::string& name() const { return name_; }
  const std::vector<std::unique_ptr<RouteEntry>>& routes() const { return routes_; }

 private:
  friend class RouteTable;
  friend class RouteEntry;
  std::string name_;
  std::vector<std::unique_ptr<RouteEntry>> routes_;
  std::optional<RetryPolicy> retry_;
  HeaderMutations request_headers_;
  HeaderMutations response_headers_;
  std::map<std::string, std::shared_ptr<const void>, std::less<>> per_filter_;
};

class RouteTable {
 public:
  static Result<std::shared_ptr<const RouteTable>> create(
      const envoy::config::route::v3::RouteConfiguration& config,
      const PerFilterConfigFactory& per_filter_factory);

  // nullptr: no virtual host or no route matched (404 NR).
  const RouteEntry* route(const http::HeaderMap& headers, uint64_t random) const;
  const VirtualHost* findVirtualHost(std::string_view authority) const;
  const std::string& name() const { return name_; }

 private:
  friend class RouteEntry;
  static Result<std::unique_ptr<RouteEntry>> buildRoute(const envoy::config::route::v3::Route& r,
                                                        const std::string& path,
                                                        const PerFilterConfigFactory& pf);
  std::string name_;
  std::vector<std::unique_ptr<VirtualHost>> vhosts_;
  std::unordered_map<std::string, const VirtualHost*> exact_;
  // Longest suffix/prefix wins: kept sorted by length, longest first.
  std::vector<std::pair<std::string, const VirtualHost*>> suffix_;  // "*.foo.com" → ".foo.com"
  std::vector<std::pair<std::string, const VirtualHost*>> prefix_;  // "foo.*" → "foo."
  const VirtualHost* default_ = nullptr;
  HeaderMutations request_headers_;
  HeaderMutations response_headers_;
  std::map<std::string, std::shared_ptr<const void>, std::less<>> per_filter_;
};

}  // namespace mast::router
