#include "proxy/filters/registry.h"

#include "envoy/config/route/v3/route_components.pb.h"
#include "envoy/extensions/filters/http/cors/v3/cors.pb.h"
#include "envoy/extensions/filters/http/fault/v3/fault.pb.h"
#include "envoy/extensions/filters/http/local_ratelimit/v3/local_rate_limit.pb.h"
#include "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.pb.h"
#include "proxy/filters/cors.h"
#include "proxy/filters/fault.h"
#include "proxy/filters/local_ratelimit.h"

namespace mast::proxy::filters {

namespace hcmv3 = envoy::extensions::filters::network::http_connection_manager::v3;

namespace {

std::string_view typeName(std::string_view url) {
  auto slash = url.rfind('/');
  return slash == std::string_view::npos ? url : url.substr(slash + 1);
}

template <class T>
std::shared_ptr<const void> asRouteConfig(std::shared_ptr<const T> p) {
  // The void* must point at the RouteFilterConfig base (see registry.h).
  return std::static_pointer_cast<const RouteFilterConfig>(std::move(p));
}

template <class Proto>
Result<Proto> unpack(const google::protobuf::Any& any, const std::string& path) {
  Proto p;
  if (!any.UnpackTo(&p)) {
    return Error{path + ": invalid " + std::string(typeName(any.type_url())) + " message"};
  }
  return p;
}

}  // namespace

bool isKnownFilterType(std::string_view type_url) {
  auto t = typeName(type_url);
  return t == kFaultType || t == kLocalRateLimitType || t == kCorsType || t == kRouterType;
}

Result<std::shared_ptr<const FilterFactory>> createFilterFactory(const hcmv3::HttpFilter& filter,
                                                                 const std::string& field_path,
                                                                 const FilterContext& ctx) {
  if (!filter.has_typed_config()) {
    return Error{joinPath(field_path, "typed_config") + ": required"};
  }
  const auto& any = filter.typed_config();
  const std::string path = joinPath(field_path, "typed_config");
  const auto t = typeName(any.type_url());
  std::string name = filter.name().empty() ? std::string(t) : filter.name();
  if (t == kFaultType) {
    auto p = unpack<envoy::extensions::filters::http::fault::v3::HTTPFault>(any, path);
    if (!p) return Error{p.error()};
    auto s = buildFaultSettings(*p, path);
    if (!s) return Error{s.error()};
    return std::shared_ptr<const FilterFactory>(
        std::make_shared<FaultFilterFactory>(std::move(name), std::move(*s), ctx));
  }
  if (t == kLocalRateLimitType) {
    auto p =
        unpack<envoy::extensions::filters::http::local_ratelimit::v3::LocalRateLimit>(any, path);
    if (!p) return Error{p.error()};
    auto c = buildLocalRateLimitConfig(*p, path, ctx, false);
    if (!c) return Error{c.error()};
    return std::shared_ptr<const FilterFactory>(
        std::make_shared<LocalRateLimitFilterFactory>(std::move(name), std::move(*c)));
  }
  if (t == kCorsType) {
    auto p = unpack<envoy::extensions::filters::http::cors::v3::Cors>(any, path);
    if (!p) return Error{p.error()};
    return std::shared_ptr<const FilterFactory>(
        std::make_shared<CorsFilterFactory>(std::move(name), ctx));
  }
  if (t == kRouterType) {
    return Error{path + ": the router is built by the connection manager, not by this registry"};
  }
  return Error{path + ": HTTP filter '" + std::string(t) + "' is not available in this build"};
}

Result<std::shared_ptr<const FilterFactory>> createFilterFactory(const hcmv3::HttpFilter& filter,
                                                                 const std::string& field_path) {
  return createFilterFactory(filter, field_path, FilterContext{});
}

Result<std::shared_ptr<const void>> createPerRouteConfig(std::string_view filter_name_or_type,
                                                         const google::protobuf::Any& any,
                                                         const std::string& field_path,
                                                         const FilterContext& ctx) {
  const auto t = typeName(any.type_url());
  if (t == kRouteFilterConfigType) {
    auto w = unpack<envoy::config::route::v3::FilterConfig>(any, field_path);
    if (!w) return Error{w.error()};
    if (w->disabled()) {
      return std::shared_ptr<const void>(
          std::make_shared<const RouteFilterConfig>(RouteFilterConfig::Kind::Disabled));
    }
    if (!w->has_config()) return std::shared_ptr<const void>();
    return createPerRouteConfig(filter_name_or_type, w->config(), joinPath(field_path, "config"),
                                ctx);
  }
  if (t == kFaultType) {
    auto p = unpack<envoy::extensions::filters::http::fault::v3::HTTPFault>(any, field_path);
    if (!p) return Error{p.error()};
    auto s = buildFaultSettings(*p, field_path);
    if (!s) return Error{s.error()};
    return asRouteConfig(std::move(*s));
  }
  if (t == kLocalRateLimitType) {
    auto p = unpack<envoy::extensions::filters::http::local_ratelimit::v3::LocalRateLimit>(
        any, field_path);
    if (!p) return Error{p.error()};
    auto c = buildLocalRateLimitConfig(*p, field_path, ctx, true);
    if (!c) return Error{c.error()};
    return asRouteConfig(std::move(*c));
  }
  if (t == kRouteCorsPolicyType) {
    auto p = unpack<envoy::config::route::v3::CorsPolicy>(any, field_path);
    if (!p) return Error{p.error()};
    auto c = buildCorsPolicy(*p, field_path);
    if (!c) return Error{c.error()};
    return asRouteConfig(std::move(*c));
  }
  if (t == kCorsPolicyType) {
    auto p = unpack<envoy::extensions::filters::http::cors::v3::CorsPolicy>(any, field_path);
    if (!p) return Error{p.error()};
    auto c = buildCorsPolicy(*p, field_path);
    if (!c) return Error{c.error()};
    return asRouteConfig(std::move(*c));
  }
  if (t == kCorsType) {
    return Error{(field_path.empty() ? std::string(filter_name_or_type) : field_path) +
                 ": a per-route CORS config must be a CorsPolicy, not " + std::string(t)};
  }
  return std::shared_ptr<const void>();
}

Result<std::shared_ptr<const void>> createPerRouteConfig(std::string_view filter_name_or_type,
                                                         const google::protobuf::Any& any,
                                                         const std::string& field_path) {
  return createPerRouteConfig(filter_name_or_type, any, field_path, FilterContext{});
}

Result<std::shared_ptr<const void>> createRouteCorsPolicy(
    const envoy::config::route::v3::CorsPolicy& policy, const std::string& field_path) {
  auto c = buildCorsPolicy(policy, field_path);
  if (!c) return Error{c.error()};
  return asRouteConfig(std::move(*c));
}

}  // namespace mast::proxy::filters
