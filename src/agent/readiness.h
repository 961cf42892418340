#pragma once
// Proxy readiness, as Istio's agent answers /healthz/ready: the proxy has applied its first
// configuration from the control plane. Read from the proxy's admin port: `/ready` is 200 "LIVE"
// only after the initial xDS fetch (CDS and LDS applied, clusters warmed, routes received) or
// after its initial-fetch timeout; so the config dump must also show LDS and CDS accepted
// (version_info set) and at least one dynamic listener.
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace mast::agent {

struct Readiness {
  bool ready = false;
  std::string reason;  // why not ready (empty when ready)
};

// Pure: from `/ready`'s status and body and the parsed `/config_dump`.
Readiness evaluateReadiness(int ready_status, std::string_view ready_body,
                            const nlohmann::json& config_dump);

// Queries the admin port on 127.0.0.1.
Readiness probeProxy(uint16_t admin_port,
                     std::chrono::milliseconds timeout = std::chrono::milliseconds(1500));

}  // namespace mast::agent
