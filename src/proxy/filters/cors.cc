#include "proxy/filters/cors.h"

#include "envoy/config/route/v3/route_components.pb.h"
#include "envoy/extensions/filters/http/cors/v3/cors.pb.h"
#include "stats/store.h"

namespace mast::proxy::filters {

namespace {

// Both CorsPolicy messages carry the same fields under the same names.
template <class Proto>
Result<std::shared_ptr<const CorsPolicyConfig>> build(const Proto& p, const std::string& path) {
  auto c = std::make_shared<CorsPolicyConfig>();
  for (int i = 0; i < p.allow_origin_string_match_size(); ++i) {
    auto m =
        parseStringMatcher(p.allow_origin_string_match(i),
                           joinPath(path, "allow_origin_string_match[" + std::to_string(i) + "]"));
    if (!m) return Error{m.error()};
    c->allow_origins.push_back(std::move(*m));
  }
  c->allow_methods = p.allow_methods();
  c->allow_headers = p.allow_headers();
  c->expose_headers = p.expose_headers();
  c->max_age = p.max_age();
  if (!c->max_age.empty()) {
    uint64_t v = 0;
    if (!parseUint(c->max_age, v)) {
      return Error{joinPath(path, "max_age") + ": '" + c->max_age + "' is not a number of seconds"};
    }
  }
  c->allow_credentials = p.has_allow_credentials() && p.allow_credentials().value();
  if (p.has_filter_enabled())
    c->filter_enabled = parsePercentage(p.filter_enabled().default_value());
  if (p.has_shadow_enabled())
    c->shadow_enabled = parsePercentage(p.shadow_enabled().default_value());
  c->allow_private_network_access =
      p.has_allow_private_network_access() && p.allow_private_network_access().value();
  c->forward_not_matching_preflights =
      !p.has_forward_not_matching_preflights() || p.forward_not_matching_preflights().value();
  return std::shared_ptr<const CorsPolicyConfig>(std::move(c));
}

}  // namespace

bool CorsPolicyConfig::originAllowed(std::string_view origin) const {
  for (const auto& m : allow_origins) {
    if (m.match("*") || m.match(origin)) return true;
  }
  return false;
}

Result<std::shared_ptr<const CorsPolicyConfig>> buildCorsPolicy(
    const envoy::config::route::v3::CorsPolicy& proto, const std::string& path) {
  return build(proto, path);
}

Result<std::shared_ptr<const CorsPolicyConfig>> buildCorsPolicy(
    const envoy::extensions::filters::http::cors::v3::CorsPolicy& proto, const std::string& path) {
  return build(proto, path);
}

CorsStats::CorsStats(const FilterContext& ctx) : root(ctx.store) {
  std::string p = "http." + ctx.hcm_stat_prefix + ".cors.";
  origin_valid = &root.store().counter(p + "origin_valid");
  origin_invalid = &root.store().counter(p + "origin_invalid");
}

CorsFilterFactory::CorsFilterFactory(std::string name, const FilterContext& ctx)
    : shared_(std::make_shared<const Shared>(
          Shared{std::move(name), std::make_unique<CorsStats>(ctx)})) {}

std::unique_ptr<HttpFilter> CorsFilterFactory::createFilter() const {
  return std::make_unique<CorsFilter>(shared_);
}

FilterStatus CorsFilter::decodeHeaders(http::HeaderMap& headers, bool) {
  const void* rc = callbacks_->perFilterConfig(shared_->name);
  if (rc == nullptr) return FilterStatus::Continue;
  const auto* base = static_cast<const RouteFilterConfig*>(rc);
  if (base->kind != RouteFilterConfig::Kind::Cors) return FilterStatus::Continue;
  const auto* policy = static_cast<const CorsPolicyConfig*>(base);

  const bool enabled = policy->filter_enabled.hit(callbacks_->random());
  const bool shadow =
      !enabled && policy->shadow_enabled && policy->shadow_enabled->hit(callbacks_->random());
  if (!enabled && !shadow) return FilterStatus::Continue;
  const std::string* origin = headers.get("origin");
  if (origin == nullptr || origin->empty()) return FilterStatus::Continue;

  const bool allowed = policy->originAllowed(*origin);
  (allowed ? shared_->stats->origin_valid : shared_->stats->origin_invalid)->inc();
  if (!enabled) return FilterStatus::Continue;  // shadow mode: count only

  const bool preflight =
      headers.method() == "OPTIONS" && !headers.getOr("access-control-request-method").empty();
  if (!allowed) {
    if (preflight && !policy->forward_not_matching_preflights) {
      callbacks_->sendLocalReply(200, "", 0, "cors_response", nullptr);
      return FilterStatus::StopIteration;
    }
    return FilterStatus::Continue;
  }
  if (!preflight) {
    policy_ = policy;
    origin_ = *origin;
    return FilterStatus::Continue;
  }
  const bool private_network =
      policy->allow_private_network_access &&
      http::iequals(headers.getOr("access-control-request-private-network"), "true");
  std::string allow_origin = *origin;
  callbacks_->sendLocalReply(200, "", 0, "cors_response",
                             [policy, allow_origin, private_network](http::HeaderMap& h) {
                               h.set("access-control-allow-origin", allow_origin);
                               if (policy->allow_credentials)
                                 h.set("access-control-allow-credentials", "true");
                               if (!policy->allow_methods.empty()) {
                                 h.set("access-control-allow-methods", policy->allow_methods);
                               }
                               if (!policy->allow_headers.empty()) {
                                 h.set("access-control-allow-headers", policy->allow_headers);
                               }
                               if (!policy->max_age.empty())
                                 h.set("access-control-max-age", policy->max_age);
                               if (private_network)
                                 h.set("access-control-allow-private-network", "true");
                             });
  return FilterStatus::StopIteration;
}

void CorsFilter::encodeHeaders(http::HeaderMap& headers, bool) {
  if (policy_ == nullptr) return;
  headers.set("access-control-allow-origin", origin_);
  if (policy_->allow_credentials) headers.set("access-control-allow-credentials", "true");
  if (!policy_->expose_headers.empty()) {
    headers.set("access-control-expose-headers", policy_->expose_headers);
  }
}

}  // namespace mast::proxy::filters
