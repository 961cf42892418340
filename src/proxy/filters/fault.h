#pragma once
// envoy.filters.http.fault (envoy.extensions.filters.http.fault.v3.HTTPFault): delays and aborts
// requests, fixed or controlled by request headers, for a percentage of (header-matched) requests.
//
// Per request (decodeHeaders): the settings are the route's typed_per_filter_config (an HTTPFault,
// which replaces the filter-level settings entirely, as Istio generates them) or the filter's own.
// If the `headers` matchers all match: a delay, when chosen, holds the request on an
// asio::steady_timer on the worker's loop (response flag DI, fault.delays_injected); when it fires
// the abort is evaluated, then decoding continues. An abort answers locally with the status and
// body "fault filter abort" (flag FI, details fault_filter_abort, fault.aborts_injected); a gRPC
// abort answers 200 with grpc-status. max_active_faults bounds concurrently faulted requests
// (fault.faults_overflow when exceeded; fault.active_faults is the gauge).
#include <asio/steady_timer.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "proxy/filters/common.h"
#include "proxy/filters/filter.h"

namespace envoy::extensions::filters::http::fault::v3 {
class HTTPFault;
}
namespace mast::stats {
class Counter;
class Gauge;
}  // namespace mast::stats

namespace mast::proxy::filters {

inline constexpr std::string_view kFaultDelayHeader = "x-envoy-fault-delay-request";
inline constexpr std::string_view kFaultDelayPercentageHeader =
    "x-envoy-fault-delay-request-percentage";
inline constexpr std::string_view kFaultAbortHeader = "x-envoy-fault-abort-request";
inline constexpr std::string_view kFaultAbortGrpcHeader = "x-envoy-fault-abort-grpc-request";
inline constexpr std::string_view kFaultAbortPercentageHeader =
    "x-envoy-fault-abort-request-percentage";

// Typed runtime form of one HTTPFault (filter-level or per-route). Immutable.
struct FaultSettings : RouteFilterConfig {
  FaultSettings() : RouteFilterConfig(Kind::Fault) {}
  struct Delay {
    bool from_header = false;  // header_delay: duration from x-envoy-fault-delay-request (ms)
    std::chrono::milliseconds fixed{0};
    Percentage percentage;
  };
  struct Abort {
    enum class Kind { Http, Grpc, Header };
    Kind kind = Kind::Http;
    uint32_t http_status = 0;
    uint32_t grpc_status = 0;
    Percentage percentage;
  };
  std::optional<Delay> delay;
  std::optional<Abort> abort;
  std::vector<HeaderMatcher> headers;
  std::optional<uint64_t> max_active_faults;  // nullopt: unlimited

  // The delay for this request, or nullopt (not selected / no valid header / zero).
  std::optional<std::chrono::milliseconds> delayFor(const http::HeaderMap& h,
                                                    uint64_t random) const;
  // {http status, grpc status} of the abort for this request; http 0 = no abort.
  std::pair<uint32_t, std::optional<uint32_t>> abortFor(const http::HeaderMap& h,
                                                        uint64_t random) const;
};

Result<std::shared_ptr<const FaultSettings>> buildFaultSettings(
    const envoy::extensions::filters::http::fault::v3::HTTPFault& proto, const std::string& path);

// http.<hcm_stat_prefix>.fault.*
struct FaultStats {
  explicit FaultStats(const FilterContext& ctx);
  StatsRoot root;
  stats::Counter* delays_injected;
  stats::Counter* aborts_injected;
  stats::Counter* faults_overflow;
  stats::Gauge* active_faults;
};

// What every filter instance of one configured fault filter shares (kept alive by the filters,
// so a stream may outlive a config reload).
struct FaultFilterConfig {
  std::string name;  // the HttpFilter name: the typed_per_filter_config key
  std::shared_ptr<const FaultSettings> settings;
  std::unique_ptr<FaultStats> stats;  // atomics, bumped from any worker
};

class FaultFilterFactory final : public FilterFactory {
 public:
  FaultFilterFactory(std::string name, std::shared_ptr<const FaultSettings> settings,
                     const FilterContext& ctx);
  std::unique_ptr<HttpFilter> createFilter() const override;
  const std::string& name() const { return config_->name; }
  const FaultSettings& settings() const { return *config_->settings; }
  FaultStats& stats() const { return *config_->stats; }

 private:
  std::shared_ptr<const FaultFilterConfig> config_;
};

class FaultFilter final : public HttpFilter {
 public:
  explicit FaultFilter(std::shared_ptr<const FaultFilterConfig> config);
  ~FaultFilter() override;
  FilterStatus decodeHeaders(http::HeaderMap& headers, bool end_stream) override;
  void onDestroy() override;

 private:
  bool tryIncActiveFaults();
  bool maybeAbort(const http::HeaderMap& headers);
  void onDelayDone();
  void release();

  std::shared_ptr<const FaultFilterConfig> config_;
  FaultStats& stats_;
  const FaultSettings* settings_ = nullptr;
  std::unique_ptr<asio::steady_timer> timer_;
  // Cleared on destroy: a timer completion already queued when the timer is cancelled must not
  // touch the filter.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  bool fault_active_ = false;
};

}  // namespace mast::proxy::filters
