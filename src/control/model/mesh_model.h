#pragma once
// MeshModel: one immutable view of the mesh — the config snapshot, the mesh config and the
// service registry — with the lookups translation needs, following Istio's rules:
//  - short host names in VirtualService hosts/destinations and DestinationRule hosts expand
//    relative to the resource's namespace ("reviews" → "reviews.default.svc.cluster.local");
//  - VirtualServices are indexed by gateway ("mesh" or "<ns>/<name>") and ordered as Istio
//    orders them for a namespace (private, exported, public; then oldest first);
//  - DestinationRules are looked up proxy namespace → service namespace → root namespace,
//    honouring exportTo and workloadSelector; rules for the same host at one level merge;
//  - Gateways are selected by their `selector` against the proxy's labels (any namespace);
//  - Sidecar: selector-based in the proxy's namespace > namespace default > root default.
//
// Contract: build() is pure (no I/O); the model never changes afterwards and may be shared
// across threads. Pointers it hands out live as long as the model.
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "control/config/mesh_config.h"
#include "control/config/store.h"
#include "control/model/registry.h"
#include "istio/networking/v1alpha3/destination_rule.pb.h"
#include "istio/networking/v1alpha3/gateway.pb.h"
#include "istio/networking/v1alpha3/sidecar.pb.h"
#include "istio/networking/v1alpha3/virtual_service.pb.h"

namespace mast::control::model {

using Labels = std::map<std::string, std::string>;

// The reserved gateway name meaning "all sidecars".
inline constexpr std::string_view kMeshGateway = "mesh";

struct VirtualServiceInfo {
  std::shared_ptr<const config::Resource> resource;
  const istio::networking::v1alpha3::VirtualService* spec = nullptr;
  std::string name;
  std::string ns;
  std::vector<std::string> hosts;     // expanded, lower case
  std::vector<std::string> gateways;  // "mesh" and/or "<ns>/<name>"; never empty
  std::vector<std::string> export_to;
  std::string domain_suffix = "cluster.local";

  // A gateway name used in a match block (`gateways:` of HTTPMatchRequest), normalised the
  // same way as the VirtualService-level ones.
  std::string resolveGateway(std::string_view ref) const;
  // Expands a destination host written in this VirtualService.
  std::string resolveHost(std::string_view host) const;
};

struct DestinationRuleInfo {
  std::shared_ptr<const config::Resource> resource;
  const istio::networking::v1alpha3::DestinationRule* spec = nullptr;
  std::string name;
  std::string ns;
  std::string host;  // expanded
  std::vector<std::string> export_to;
};

// What applies to one (proxy, service): the merged rule(s) of the winning lookup level.
struct EffectiveDestinationRule {
  std::string host;  // the rule host that matched (may be a wildcard)
  std::string ns;    // namespace of the winning rules
  istio::networking::v1alpha3::DestinationRule rule;  // merged: first trafficPolicy, all subsets
  std::vector<std::string> sources;                   // "ns/name" of each merged rule
};

struct GatewayInfo {
  std::shared_ptr<const config::Resource> resource;
  const istio::networking::v1alpha3::Gateway* spec = nullptr;
  std::string name;
  std::string ns;
  std::string key() const { return ns + "/" + name; }
};

struct SidecarInfo {
  std::shared_ptr<const config::Resource> resource;
  const istio::networking::v1alpha3::Sidecar* spec = nullptr;
  std::string name;
  std::string ns;
};

struct MeshModelOptions {
  std::string domain_suffix = "cluster.local";
};

class MeshModel {
 public:
  using Options = MeshModelOptions;

  // With the ServiceEntry/WorkloadEntry registry built from `snapshot` plus `instances`.
  static std::shared_ptr<const MeshModel> build(
      std::shared_ptr<const config::ConfigSnapshot> snapshot, config::MeshConfig mesh,
      std::vector<WorkloadInstance> instances = {}, Options options = {});
  // With any registry (e.g. a Kubernetes one later).
  static std::shared_ptr<const MeshModel> build(
      std::shared_ptr<const config::ConfigSnapshot> snapshot, config::MeshConfig mesh,
      std::shared_ptr<const ServiceRegistry> registry, Options options = {});

  const config::ConfigSnapshot& snapshot() const { return *snapshot_; }
  const config::MeshConfig& meshConfig() const { return mesh_; }
  const ServiceRegistry& registry() const { return *registry_; }
  const std::string& domainSuffix() const { return options_.domain_suffix; }
  // MeshConfig rootNamespace, "istio-system" when unset.
  const std::string& rootNamespace() const { return root_namespace_; }

  // Expands a host written in a resource of namespace `ns`.
  std::string resolveHost(std::string_view host, std::string_view ns) const;

  // Services exported to namespace `ns`, ordered by hostname then namespace.
  std::vector<const Service*> servicesVisibleTo(std::string_view ns) const;
  // The service named `hostname` as seen from `ns`: one in `ns` first, else the oldest visible.
  const Service* findService(std::string_view hostname, std::string_view ns) const;

  // VirtualServices bound to `gateway` ("mesh" or "<ns>/<name>") and exported to `ns`, in
  // Istio's priority order for that namespace.
  std::vector<const VirtualServiceInfo*> virtualServices(std::string_view gateway,
                                                         std::string_view ns) const;

  // Istio's lookup order: proxy namespace (workloadSelector honoured) → service namespace →
  // root namespace, each level only with rules exported to the proxy's namespace; the most
  // specific host wins within a level; several rules for that host merge.
  std::optional<EffectiveDestinationRule> destinationRule(std::string_view proxy_ns,
                                                          const Labels& proxy_labels,
                                                          const Service& service) const;

  // Gateways whose selector is a subset of `labels` (empty selector = every gateway proxy).
  std::vector<const GatewayInfo*> gatewaysFor(const Labels& labels) const;
  const GatewayInfo* gateway(std::string_view key) const;  // "<ns>/<name>"

  // The Sidecar that applies to a workload, or nullptr.
  const SidecarInfo* sidecarFor(std::string_view ns, const Labels& labels) const;

 private:
  MeshModel() = default;
  void index();

  std::shared_ptr<const config::ConfigSnapshot> snapshot_;
  config::MeshConfig mesh_;
  std::shared_ptr<const ServiceRegistry> registry_;
  Options options_;
  std::string root_namespace_;
  std::vector<std::string> default_service_export_;
  std::vector<std::string> default_vs_export_;
  std::vector<std::string> default_dr_export_;

  std::map<std::string, std::vector<const Service*>, std::less<>> services_by_host_;
  std::vector<VirtualServiceInfo> virtual_services_;  // oldest first
  std::map<std::string, std::vector<const VirtualServiceInfo*>, std::less<>> vs_by_gateway_;
  std::vector<DestinationRuleInfo> destination_rules_;  // oldest first
  std::map<std::string, std::vector<const DestinationRuleInfo*>, std::less<>> dr_by_ns_;
  std::vector<GatewayInfo> gateways_;
  std::vector<SidecarInfo> sidecars_;  // oldest first
};

}  // namespace mast::control::model
