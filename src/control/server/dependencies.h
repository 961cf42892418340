#pragma once
// Which Istio resources one proxy's generated config depends on ("needs"), so that mastd can say
// per resource how many proxies run its latest revision (`mastctl get vs reviews -o yaml`).
//
// The rule (documented in README.md), computed from the model the config was generated from and
// the generated snapshot itself (the cluster names tell which services the proxy has):
//  - ServiceEntry: the proxy has an `outbound|PORT|SUBSET|HOST` cluster for one of its hosts, or
//    (sidecars) the proxy's own IP is one of its endpoints (inbound);
//  - WorkloadEntry / WorkloadGroup: one of their workloads is an endpoint of such a service;
//  - DestinationRule: it is (one of) the rule(s) Istio's lookup picks for such a service from the
//    proxy's namespace and labels;
//  - VirtualService bound to `mesh` (sidecars, proxyless clients): exported to the proxy's
//    namespace and one of its hosts overlaps a service the proxy has a cluster for, or is an
//    exact host that is no service (translation gives those a virtual host too); its delegates;
//  - Gateway: its selector selects the proxy (router proxies); VirtualService bound to such a
//    Gateway and exported to the proxy's namespace; its delegates;
//  - Sidecar: the one that applies to the proxy (sidecars, proxyless clients).
//
// Pure: no I/O, no globals; safe to call from several threads at once on one resolver.
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "control/config/resource.h"
#include "control/xds/proxy_info.h"
#include "control/xds/snapshot.h"

namespace mast::control::model {
class MeshModel;
}

namespace mast::control::server {

// A union of key sets; the big part is shared by every proxy of one shape, so a status query
// over many proxies copies nothing per proxy.
struct Dependencies {
  std::vector<std::shared_ptr<const std::set<config::ResourceKey>>> parts;
  bool contains(const config::ResourceKey& key) const;
};

class DependencyResolver {
 public:
  virtual ~DependencyResolver() = default;
  // The resources `proxy`'s `snapshot` (generated from this resolver's model) depends on.
  virtual Dependencies dependencies(const xds::ProxyInfo& proxy,
                                    const xds::Snapshot& snapshot) const = 0;
};

// The rule above over one immutable MeshModel (kept alive by the resolver).
std::shared_ptr<const DependencyResolver> makeMeshDependencyResolver(
    std::shared_ptr<const model::MeshModel> model);

// "ServiceEntry default/reviews" / "WorkloadEntry default/reviews-v1" → key; nullopt otherwise.
std::optional<config::ResourceKey> parseResourceRef(const std::string& ref);

}  // namespace mast::control::server
