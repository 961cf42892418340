#pragma once
// Pieces shared by the HTTP filters of this folder: percentages and header mutations built once
// from Envoy protos (never read per request), the base of per-route configs and the stats context.
// The string/header matchers are the route table's (src/proxy/router). Everything here is immutable
// after construction and safe to share across workers.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "http/header_map.h"
#include "proxy/router/route_table.h"

namespace envoy::type::v3 {
class FractionalPercent;
}
namespace envoy::config::core::v3 {
class HeaderValueOption;
}
namespace google::protobuf {
template <typename T>
class RepeatedPtrField;
}
namespace mast::stats {
class Store;
}

namespace mast::proxy::filters {

// "base.field", or "field" when base is empty (error messages name the full field path).
std::string joinPath(std::string_view base, std::string_view field);

// envoy.type.v3.FractionalPercent: numerator / denominator (100, 10'000 or 1'000'000).
// An unset proto is 0/100 (never), as in Envoy.
struct Percentage {
  uint32_t numerator = 0;
  uint32_t denominator = 100;
  // Envoy's evaluation: random % denominator < numerator (numerator >= denominator: always).
  bool hit(uint64_t random) const {
    return numerator >= denominator || random % denominator < numerator;
  }
  static Percentage always() { return {100, 100}; }
};
Percentage parsePercentage(const envoy::type::v3::FractionalPercent& p);

// String and header matchers: the route table's (one implementation for routes and filters; this
// module sits above src/proxy/router in the dependency order).
using mast::router::HeaderMatcher;
using mast::router::matchAllHeaders;
using mast::router::parseHeaderMatcher;
using mast::router::parseStringMatcher;
using mast::router::StringMatcher;

// envoy.config.core.v3.HeaderValueOption with a literal value (%COMMAND% substitution is not
// supported: values are used verbatim).
struct HeaderMutation {
  enum class Action { AppendOrAdd, AddIfAbsent, OverwriteOrAdd, OverwriteIfExists };
  std::string name;  // lower-case
  std::string value;
  Action action = Action::AppendOrAdd;
  bool keep_empty_value = false;
  void apply(http::HeaderMap& h) const;
};
Result<std::vector<HeaderMutation>> parseHeaderMutations(
    const google::protobuf::RepeatedPtrField<envoy::config::core::v3::HeaderValueOption>& opts,
    const std::string& path);
void applyHeaderMutations(const std::vector<HeaderMutation>& m, http::HeaderMap& h);

// content-type application/grpc[+proto|;...] (how the connection manager decides on gRPC replies).
bool isGrpcRequest(const http::HeaderMap& h);
// An unsigned decimal header value, or false when absent/invalid.
bool parseUint(std::string_view s, uint64_t& out);

// Base of every per-route config this module builds (createPerRouteConfig). The void* that
// FilterCallbacks::perFilterConfig returns points at this base; a filter checks `kind` before
// static_cast'ing to its own struct, so a config of the wrong filter type is ignored, never
// misread. Kind::Disabled comes from envoy.config.route.v3.FilterConfig{disabled: true}.
struct RouteFilterConfig {
  enum class Kind { Disabled, Fault, LocalRateLimit, Cors };
  explicit RouteFilterConfig(Kind k) : kind(k) {}
  const Kind kind;
};

// Where the filters' stats live. `store` is the server's stats store (counters become visible to
// admin /stats); nullptr gives each config object a private store (tests, tools).
// `hcm_stat_prefix` is the http_connection_manager's stat_prefix: fault and cors stats are rooted
// at http.<hcm_stat_prefix>. as in Envoy; local_ratelimit stats at its own stat_prefix.
struct FilterContext {
  stats::Store* store = nullptr;
  std::string hcm_stat_prefix;
};

// Keeps the store that counters point into alive (a private one when the context has none).
class StatsRoot {
 public:
  explicit StatsRoot(stats::Store* store);
  stats::Store& store() const { return *store_; }

 private:
  std::shared_ptr<stats::Store> owned_;
  stats::Store* store_;
};

}  // namespace mast::proxy::filters
