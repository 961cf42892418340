#pragma once
// The Generator mastd runs: Istio model (ServiceEntry/WorkloadEntry registry + WorkloadGroup
// auto-registrations) → translate::generate → an xds::Snapshot whose per-type version is a hash
// of that type's content, so a proxy is pushed only the types that changed (an endpoint-only
// change pushes EDS alone).
#include <memory>

#include "control/server/mastd.h"

namespace mast::control::server {

std::unique_ptr<Generator> makeIstioGenerator();

}  // namespace mast::control::server
