#pragma once
// envoy.filters.http.cors (envoy.extensions.filters.http.cors.v3.Cors, an empty message): CORS by
// the policy of the selected route, given as typed_per_filter_config under the filter's name
// (envoy.config.route.v3.CorsPolicy or envoy.extensions.filters.http.cors.v3.CorsPolicy; the most
// specific of route > virtual host > route configuration wins as a whole).
//
// Per request with an Origin header and an enabled policy (filter_enabled, default 100%):
// - origin allowed (some allow_origin_string_match matches the origin, or matches "*"):
//   http.<hcm_stat_prefix>.cors.origin_valid; a preflight (OPTIONS with
//   Access-Control-Request-Method) is answered 200 locally with access-control-allow-origin
//   (the request's origin), -allow-credentials, -allow-methods, -allow-headers, -max-age; any other
//   request goes on and its response gets access-control-allow-origin, -allow-credentials and
//   -expose-headers.
// - origin not allowed: cors.origin_invalid, the request goes on untouched (a preflight is
//   answered 200 without CORS headers when forward_not_matching_preflights is false).
// shadow_enabled only counts origins. Requests without a policy or Origin pass through.
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "proxy/filters/common.h"
#include "proxy/filters/filter.h"

namespace envoy::config::route::v3 {
class CorsPolicy;
}
namespace envoy::extensions::filters::http::cors::v3 {
class CorsPolicy;
}
namespace mast::stats {
class Counter;
}

namespace mast::proxy::filters {

// Typed runtime form of a CorsPolicy. Immutable.
struct CorsPolicyConfig : RouteFilterConfig {
  CorsPolicyConfig() : RouteFilterConfig(Kind::Cors) {}
  std::vector<StringMatcher> allow_origins;
  std::string allow_methods;
  std::string allow_headers;
  std::string expose_headers;
  std::string max_age;
  bool allow_credentials = false;
  Percentage filter_enabled = Percentage::always();
  std::optional<Percentage> shadow_enabled;
  bool allow_private_network_access = false;
  bool forward_not_matching_preflights = true;
  bool originAllowed(std::string_view origin) const;
};

Result<std::shared_ptr<const CorsPolicyConfig>> buildCorsPolicy(
    const envoy::config::route::v3::CorsPolicy& proto, const std::string& path);
Result<std::shared_ptr<const CorsPolicyConfig>> buildCorsPolicy(
    const envoy::extensions::filters::http::cors::v3::CorsPolicy& proto, const std::string& path);

// http.<hcm_stat_prefix>.cors.*
struct CorsStats {
  explicit CorsStats(const FilterContext& ctx);
  StatsRoot root;
  stats::Counter* origin_valid;
  stats::Counter* origin_invalid;
};

class CorsFilterFactory final : public FilterFactory {
 public:
  CorsFilterFactory(std::string name, const FilterContext& ctx);
  std::unique_ptr<HttpFilter> createFilter() const override;
  CorsStats& stats() const { return *shared_->stats; }

  struct Shared {
    std::string name;
    std::unique_ptr<CorsStats> stats;
  };

 private:
  std::shared_ptr<const Shared> shared_;
};

class CorsFilter final : public HttpFilter {
 public:
  explicit CorsFilter(std::shared_ptr<const CorsFilterFactory::Shared> shared)
      : shared_(std::move(shared)) {}
  FilterStatus decodeHeaders(http::HeaderMap& headers, bool end_stream) override;
  void encodeHeaders(http::HeaderMap& headers, bool end_stream) override;

 private:
  std::shared_ptr<const CorsFilterFactory::Shared> shared_;
  const CorsPolicyConfig* policy_ = nullptr;  // set for an accepted, non-preflight CORS request
  std::string origin_;
};

}  // namespace mast::proxy::filters
