#include "http/stream_info.h"

#include <array>
#include <utility>

namespace mast::http {

std::string responseFlagsString(uint32_t flags) {
  // Envoy's print order (source/common/stream_info/utility.cc ResponseFlagUtils).
  static constexpr std::array<std::pair<ResponseFlag, std::string_view>, 28> kOrder{{
      {ResponseFlag::FailedLocalHealthCheck, "LH"},
      {ResponseFlag::NoHealthyUpstream, "UH"},
      {ResponseFlag::UpstreamRequestTimeout, "UT"},
      {ResponseFlag::LocalReset, "LR"},
      {ResponseFlag::UpstreamRemoteReset, "UR"},
      {ResponseFlag::UpstreamConnectionFailure, "UF"},
      {ResponseFlag::UpstreamConnectionTermination, "UC"},
      {ResponseFlag::UpstreamOverflow, "UO"},
      {ResponseFlag::NoRouteFound, "NR"},
      {ResponseFlag::DelayInjected, "DI"},
      {ResponseFlag::FaultInjected, "FI"},
      {ResponseFlag::RateLimited, "RL"},
      {ResponseFlag::UnauthorizedExternalService, "UAEX"},
      {ResponseFlag::RateLimitServiceError, "RLSE"},
      {ResponseFlag::DownstreamConnectionTermination, "DC"},
      {ResponseFlag::UpstreamRetryLimitExceeded, "URX"},
      {ResponseFlag::StreamIdleTimeout, "SI"},
      {ResponseFlag::InvalidEnvoyRequestHeaders, "IH"},
      {ResponseFlag::DownstreamProtocolError, "DPE"},
      {ResponseFlag::UpstreamMaxStreamDurationReached, "UMSDR"},
      {ResponseFlag::ResponseFromCacheFilter, "RFCF"},
      {ResponseFlag::NoFilterConfigFound, "NFCF"},
      {ResponseFlag::DurationTimeout, "DT"},
      {ResponseFlag::UpstreamProtocolError, "UPE"},
      {ResponseFlag::NoClusterFound, "NC"},
      {ResponseFlag::OverloadManager, "OM"},
      {ResponseFlag::DnsResolutionFailed, "DF"},
      {ResponseFlag::DropOverLoad, "DO"},
  }};
  std::string out;
  for (const auto& [flag, name] : kOrder) {
    if (flags & static_cast<uint32_t>(flag)) {
      if (!out.empty()) out += ',';
      out += name;
    }
  }
  return out.empty() ? "-" : out;
}

}  // namespace mast::http
