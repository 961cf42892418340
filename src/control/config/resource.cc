#include "control/config/resource.h"

#include <google/protobuf/util/message_differencer.h>

#include <array>

#include "istio/networking/v1alpha3/destination_rule.pb.h"
#include "istio/networking/v1alpha3/gateway.pb.h"
#include "istio/networking/v1alpha3/service_entry.pb.h"
#include "istio/networking/v1alpha3/sidecar.pb.h"
#include "istio/networking/v1alpha3/virtual_service.pb.h"
#include "istio/networking/v1alpha3/workload_entry.pb.h"
#include "istio/networking/v1alpha3/workload_group.pb.h"
#include "istio/security/v1beta1/authorization_policy.pb.h"
#include "istio/security/v1beta1/peer_authentication.pb.h"
#include "istio/security/v1beta1/request_authentication.pb.h"
#include "istio/telemetry/v1alpha1/telemetry.pb.h"

namespace mast::control::config {
namespace {

namespace net = istio::networking::v1alpha3;
namespace sec = istio::security::v1beta1;
namespace tel = istio::telemetry::v1alpha1;

// Istio serves every networking kind from v1alpha3, v1beta1 and v1 (same schema), security
// kinds from v1beta1 and v1, and Telemetry from v1alpha1 and v1.
constexpr std::array<std::string_view, 3> kNetworkingVersions = {"v1alpha3", "v1beta1", "v1"};
constexpr std::array<std::string_view, 2> kSecurityVersions = {"v1beta1", "v1"};
constexpr std::array<std::string_view, 2> kTelemetryVersions = {"v1alpha1", "v1"};

const std::array<KindInfo, 11>& kinds() {
  static const std::array<KindInfo, 11> k = {{
      {Kind::kGateway, "Gateway", "networking.istio.io", kNetworkingVersions,
       &net::Gateway::default_instance()},
      {Kind::kVirtualService, "VirtualService", "networking.istio.io", kNetworkingVersions,
       &net::VirtualService::default_instance()},
      {Kind::kDestinationRule, "DestinationRule", "networking.istio.io", kNetworkingVersions,
       &net::DestinationRule::default_instance()},
      {Kind::kServiceEntry, "ServiceEntry", "networking.istio.io", kNetworkingVersions,
       &net::ServiceEntry::default_instance()},
      {Kind::kWorkloadEntry, "WorkloadEntry", "networking.istio.io", kNetworkingVersions,
       &net::WorkloadEntry::default_instance()},
      {Kind::kWorkloadGroup, "WorkloadGroup", "networking.istio.io", kNetworkingVersions,
       &net::WorkloadGroup::default_instance()},
      {Kind::kSidecar, "Sidecar", "networking.istio.io", kNetworkingVersions,
       &net::Sidecar::default_instance()},
      {Kind::kPeerAuthentication, "PeerAuthentication", "security.istio.io", kSecurityVersions,
       &sec::PeerAuthentication::default_instance()},
      {Kind::kAuthorizationPolicy, "AuthorizationPolicy", "security.istio.io", kSecurityVersions,
       &sec::AuthorizationPolicy::default_instance()},
      {Kind::kRequestAuthentication, "RequestAuthentication", "security.istio.io",
       kSecurityVersions, &sec::RequestAuthentication::default_instance()},
      {Kind::kTelemetry, "Telemetry", "telemetry.istio.io", kTelemetryVersions,
       &tel::Telemetry::default_instance()},
  }};
  return k;
}

}  // namespace

const KindInfo& kindInfo(Kind kind) { return kinds()[static_cast<size_t>(kind)]; }

std::span<const KindInfo> allKinds() { return kinds(); }

std::string_view kindName(Kind kind) { return kindInfo(kind).name; }

std::optional<Kind> kindFromName(std::string_view name) {
  for (const auto& k : kinds()) {
    if (k.name == name) return k.kind;
  }
  return std::nullopt;
}

std::string ResourceKey::toString() const {
  return std::string(kindName(kind)) + " " + ns + "/" + name;
}

bool sameContent(const Resource& a, const Resource& b) {
  if (a.api_version != b.api_version || a.kind != b.kind || a.metadata.name != b.metadata.name ||
      a.metadata.ns != b.metadata.ns || a.metadata.labels != b.metadata.labels ||
      a.metadata.annotations != b.metadata.annotations ||
      a.metadata.resource_version != b.metadata.resource_version ||
      a.metadata.generation != b.metadata.generation ||
      a.metadata.creation_timestamp != b.metadata.creation_timestamp) {
    return false;
  }
  if (!a.spec || !b.spec) return a.spec == b.spec;
  return google::protobuf::util::MessageDifferencer::Equals(*a.spec, *b.spec);
}

}  // namespace mast::control::config
