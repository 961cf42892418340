#pragma once
// The HTTP filters this build runs, built from http_connection_manager.http_filters and from
// typed_per_filter_config. Called on the main thread at config load; the results are immutable
// and shared by all workers.
//
// Per-route config contract: createPerRouteConfig returns an object whose void* (what
// FilterCallbacks::perFilterConfig hands back) points at a RouteFilterConfig (common.h); its
// `kind` says which struct it really is — FaultSettings (fault.h), LocalRateLimitConfig
// (local_ratelimit.h), CorsPolicyConfig (cors.h), or Kind::Disabled (FilterConfig{disabled: true}).
// Each filter looks up perFilterConfig(<its HttpFilter name>), checks `kind`, then static_casts.
// Keep the shared_ptr<const void> alive as long as any stream may use the route (the route table
// owns it).
#include <memory>
#include <string>
#include <string_view>

#include "base/result.h"
#include "proxy/filters/common.h"
#include "proxy/filters/filter.h"

namespace envoy::extensions::filters::network::http_connection_manager::v3 {
class HttpFilter;
}
namespace envoy::config::route::v3 {
class CorsPolicy;
}
namespace google::protobuf {
class Any;
}

namespace mast::proxy::filters {

inline constexpr std::string_view kFaultType = "envoy.extensions.filters.http.fault.v3.HTTPFault";
inline constexpr std::string_view kLocalRateLimitType =
    "envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit";
inline constexpr std::string_view kCorsType = "envoy.extensions.filters.http.cors.v3.Cors";
inline constexpr std::string_view kRouterType = "envoy.extensions.filters.http.router.v3.Router";
inline constexpr std::string_view kRouteCorsPolicyType = "envoy.config.route.v3.CorsPolicy";
inline constexpr std::string_view kCorsPolicyType =
    "envoy.extensions.filters.http.cors.v3.CorsPolicy";
inline constexpr std::string_view kRouteFilterConfigType = "envoy.config.route.v3.FilterConfig";

// `type_url` may be a full type URL ("type.googleapis.com/...") or a bare message name.
// True for fault, local_ratelimit, cors and router.
bool isKnownFilterType(std::string_view type_url);

// Unpacks and validates filter.typed_config (fault, local_ratelimit or cors; the router is the
// server's own and is rejected here, as is any other type). Errors start with `field_path`
// (e.g. "...http_filters[2]") followed by the offending field. Stats go to ctx.store (see
// FilterContext); the two-argument form keeps them in a store private to the factory.
Result<std::shared_ptr<const FilterFactory>> createFilterFactory(
    const envoy::extensions::filters::network::http_connection_manager::v3::HttpFilter& filter,
    const std::string& field_path, const FilterContext& ctx);
Result<std::shared_ptr<const FilterFactory>> createFilterFactory(
    const envoy::extensions::filters::network::http_connection_manager::v3::HttpFilter& filter,
    const std::string& field_path);

// Builds one typed_per_filter_config entry. Dispatches on the Any's type: HTTPFault,
// LocalRateLimit (needs token_bucket), envoy.config.route.v3.CorsPolicy or
// ...cors.v3.CorsPolicy, or envoy.config.route.v3.FilterConfig wrapping one of those (disabled:
// true gives a Kind::Disabled config). Any other type yields ok(nullptr): the caller ignores it,
// like Envoy ignores per-route configs of filters that are not in the chain.
// `filter_name_or_type` (the map key) only labels errors. LocalRateLimit route configs own their
// bucket and their <stat_prefix>.http_local_rate_limit.* stats in ctx.store.
Result<std::shared_ptr<const void>> createPerRouteConfig(std::string_view filter_name_or_type,
                                                         const google::protobuf::Any& any,
                                                         const std::string& field_path,
                                                         const FilterContext& ctx);
Result<std::shared_ptr<const void>> createPerRouteConfig(std::string_view filter_name_or_type,
                                                         const google::protobuf::Any& any,
                                                         const std::string& field_path);

// The deprecated route/virtual-host `cors` field, in the same runtime form (so the server can
// hand it to the cors filter as its per-route config).
Result<std::shared_ptr<const void>> createRouteCorsPolicy(
    const envoy::config::route::v3::CorsPolicy& policy, const std::string& field_path);

}  // namespace mast::proxy::filters
