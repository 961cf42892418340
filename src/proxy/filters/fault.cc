#include "proxy/filters/fault.h"

#include <algorithm>

#include "envoy/extensions/filters/http/fault/v3/fault.pb.h"
#include "stats/store.h"

namespace mast::proxy::filters {

namespace faultv3 = envoy::extensions::filters::http::fault::v3;

namespace {

// A header-controlled percentage: the header's numerator, capped by the configured one, over the
// configured denominator (Envoy's HeaderPercentageProvider); the configured one when absent/bad.
Percentage headerPercentage(const http::HeaderMap& h, std::string_view header,
                            const Percentage& configured) {
  uint64_t n = 0;
  const std::string* v = h.get(header);
  if (v == nullptr || !parseUint(*v, n)) return configured;
  Percentage p = configured;
  p.numerator = static_cast<uint32_t>(std::min<uint64_t>(n, configured.numerator));
  return p;
}

}  // namespace

std::optional<std::chrono::milliseconds> FaultSettings::delayFor(const http::HeaderMap& h,
                                                                 uint64_t random) const {
  if (!delay) return std::nullopt;
  Percentage pct = delay->from_header
                       ? headerPercentage(h, kFaultDelayPercentageHeader, delay->percentage)
                       : delay->percentage;
  if (!pct.hit(random)) return std::nullopt;
  std::chrono::milliseconds d = delay->fixed;
  if (delay->from_header) {
    uint64_t ms = 0;
    const std::string* v = h.get(kFaultDelayHeader);
    if (v == nullptr || !parseUint(*v, ms)) return std::nullopt;
    d = std::chrono::milliseconds(std::min<uint64_t>(ms, 24ull * 3600 * 1000));
  }
  if (d.count() <= 0) return std::nullopt;
  return d;
}

std::pair<uint32_t, std::optional<uint32_t>> FaultSettings::abortFor(const http::HeaderMap& h,
                                                                     uint64_t random) const {
  if (!abort) return {0, std::nullopt};
  const bool from_header = abort->kind == Abort::Kind::Header;
  Percentage pct = from_header ? headerPercentage(h, kFaultAbortPercentageHeader, abort->percentage)
                               : abort->percentage;
  if (!pct.hit(random)) return {0, std::nullopt};
  switch (abort->kind) {
    case Abort::Kind::Http:
      return {abort->http_status, std::nullopt};
    case Abort::Kind::Grpc:
      return {200, abort->grpc_status};
    case Abort::Kind::Header: {
      // The HTTP status header wins over the gRPC one; an HTTP status outside [200, 600) is
      // ignored.
      uint64_t v = 0;
      const std::string* s = h.get(kFaultAbortHeader);
      if (s != nullptr && parseUint(*s, v) && v >= 200 && v < 600) {
        return {static_cast<uint32_t>(v), std::nullopt};
      }
      s = h.get(kFaultAbortGrpcHeader);
      if (s != nullptr && parseUint(*s, v) && v <= UINT32_MAX) {
        return {200, static_cast<uint32_t>(v)};
      }
      return {0, std::nullopt};
    }
  }
  return {0, std::nullopt};
}

Result<std::shared_ptr<const FaultSettings>> buildFaultSettings(const faultv3::HTTPFault& proto,
                                                                const std::string& path) {
  auto s = std::make_shared<FaultSettings>();
  if (proto.has_delay()) {
    const auto& d = proto.delay();
    std::string dpath = joinPath(path, "delay");
    FaultSettings::Delay delay;
    delay.percentage = parsePercentage(d.percentage());
    if (d.has_fixed_delay()) {
      const auto& fd = d.fixed_delay();
      if (fd.seconds() < 0 || fd.nanos() < 0 || (fd.seconds() == 0 && fd.nanos() == 0)) {
        return Error{joinPath(dpath, "fixed_delay") + ": must be greater than 0"};
      }
      delay.fixed = std::chrono::milliseconds(fd.seconds() * 1000 + fd.nanos() / 1000000);
      if (delay.fixed.count() == 0) delay.fixed = std::chrono::milliseconds(1);
    } else if (d.has_header_delay()) {
      delay.from_header = true;
    } else {
      return Error{dpath + ": one of fixed_delay, header_delay is required"};
    }
    s->delay = delay;
  }
  if (proto.has_abort()) {
    const auto& a = proto.abort();
    std::string apath = joinPath(path, "abort");
    FaultSettings::Abort abort;
    abort.percentage = parsePercentage(a.percentage());
    switch (a.error_type_case()) {
      case faultv3::FaultAbort::kHttpStatus:
        if (a.http_status() < 200 || a.http_status() >= 600) {
          return Error{joinPath(apath, "http_status") + ": " + std::to_string(a.http_status()) +
                       " is not in [200, 600)"};
        }
        abort.kind = FaultSettings::Abort::Kind::Http;
        abort.http_status = a.http_status();
        break;
      case faultv3::FaultAbort::kGrpcStatus:
        abort.kind = FaultSettings::Abort::Kind::Grpc;
        abort.grpc_status = a.grpc_status();
        break;
      case faultv3::FaultAbort::kHeaderAbort:
        abort.kind = FaultSettings::Abort::Kind::Header;
        break;
      default:
        return Error{apath + ": one of http_status, grpc_status, header_abort is required"};
    }
    s->abort = abort;
  }
  for (int i = 0; i < proto.headers_size(); ++i) {
    auto m =
        parseHeaderMatcher(proto.headers(i), joinPath(path, "headers[" + std::to_string(i) + "]"));
    if (!m) return Error{m.error()};
    s->headers.push_back(std::move(*m));
  }
  if (proto.has_max_active_faults()) s->max_active_faults = proto.max_active_faults().value();
  // Fields whose behaviour this build does not implement are rejected rather than ignored, so a
  // fault meant for one cluster or node is never injected everywhere.
  if (!proto.upstream_cluster().empty()) {
    return Error{joinPath(path, "upstream_cluster") + ": not supported"};
  }
  if (proto.downstream_nodes_size() > 0) {
    return Error{joinPath(path, "downstream_nodes") + ": not supported"};
  }
  if (proto.has_response_rate_limit()) {
    return Error{joinPath(path, "response_rate_limit") + ": not supported"};
  }
  return std::shared_ptr<const FaultSettings>(std::move(s));
}

FaultStats::FaultStats(const FilterContext& ctx) : root(ctx.store) {
  std::string p = "http." + ctx.hcm_stat_prefix + ".fault.";
  auto& st = root.store();
  delays_injected = &st.counter(p + "delays_injected");
  aborts_injected = &st.counter(p + "aborts_injected");
  faults_overflow = &st.counter(p + "faults_overflow");
  active_faults = &st.gauge(p + "active_faults");
}

FaultFilterFactory::FaultFilterFactory(std::string name,
                                       std::shared_ptr<const FaultSettings> settings,
                                       const FilterContext& ctx)
    : config_(std::make_shared<const FaultFilterConfig>(FaultFilterConfig{
          std::move(name), std::move(settings), std::make_unique<FaultStats>(ctx)})) {}

std::unique_ptr<HttpFilter> FaultFilterFactory::createFilter() const {
  return std::make_unique<FaultFilter>(config_);
}

FaultFilter::FaultFilter(std::shared_ptr<const FaultFilterConfig> config)
    : config_(std::move(config)), stats_(*config_->stats) {}

FaultFilter::~FaultFilter() { release(); }

FilterStatus FaultFilter::decodeHeaders(http::HeaderMap& headers, bool) {
  settings_ = config_->settings.get();
  if (const void* rc = callbacks_->perFilterConfig(config_->name)) {
    const auto* base = static_cast<const RouteFilterConfig*>(rc);
    if (base->kind == RouteFilterConfig::Kind::Disabled) return FilterStatus::Continue;
    if (base->kind == RouteFilterConfig::Kind::Fault) {
      settings_ = static_cast<const FaultSettings*>(base);
    }
  }
  if (!settings_->delay && !settings_->abort) return FilterStatus::Continue;
  if (!matchAllHeaders(settings_->headers, headers)) return FilterStatus::Continue;

  // One random draw per configured fault, as in Envoy (tests rely on the order: delay, abort).
  std::optional<std::chrono::milliseconds> delay;
  if (settings_->delay) delay = settings_->delayFor(headers, callbacks_->random());
  if (delay && tryIncActiveFaults()) {
    timer_ = std::make_unique<asio::steady_timer>(callbacks_->eventLoop(), *delay);
    std::weak_ptr<bool> alive = alive_;
    timer_->async_wait([this, alive](const std::error_code& ec) {
      auto a = alive.lock();
      if (ec || !a || !*a) return;
      onDelayDone();
    });
    stats_.delays_injected->inc();
    callbacks_->streamInfo().setFlag(http::ResponseFlag::DelayInjected);
    return FilterStatus::StopIteration;
  }
  if (maybeAbort(headers)) return FilterStatus::StopIteration;
  return FilterStatus::Continue;
}

void FaultFilter::onDelayDone() {
  timer_.reset();
  if (maybeAbort(callbacks_->requestHeaders())) return;
  callbacks_->continueDecoding();
}

bool FaultFilter::maybeAbort(const http::HeaderMap& headers) {
  if (!settings_->abort) return false;
  auto [status, grpc] = settings_->abortFor(headers, callbacks_->random());
  if (status == 0 || !tryIncActiveFaults()) return false;
  stats_.aborts_injected->inc();
  std::function<void(http::HeaderMap&)> modify;
  if (grpc && isGrpcRequest(headers)) {
    std::string code = std::to_string(*grpc);
    modify = [code](http::HeaderMap& h) { h.set("grpc-status", code); };
  }
  callbacks_->sendLocalReply(static_cast<int>(status), "fault filter abort",
                             static_cast<uint32_t>(http::ResponseFlag::FaultInjected),
                             "fault_filter_abort", modify);
  return true;
}

bool FaultFilter::tryIncActiveFaults() {
  if (fault_active_) return true;  // a delayed request that is then aborted counts once
  auto max = settings_->max_active_faults;
  if (max && static_cast<uint64_t>(std::max<int64_t>(stats_.active_faults->value(), 0)) >= *max) {
    stats_.faults_overflow->inc();
    return false;
  }
  stats_.active_faults->inc();
  fault_active_ = true;
  return true;
}

void FaultFilter::release() {
  *alive_ = false;
  if (timer_) {
    timer_->cancel();
    timer_.reset();
  }
  if (fault_active_) {
    stats_.active_faults->dec();
    fault_active_ = false;
  }
}

void FaultFilter::onDestroy() { release(); }

}  // namespace mast::proxy::filters
