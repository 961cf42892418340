#include "control/server/dependencies.h"

#include <map>
#include <mutex>

#include "control/model/host.h"
#include "control/model/mesh_model.h"
#include "control/translate/generate.h"
#include "control/xds/type_urls.h"

namespace mast::control::server {

bool Dependencies::contains(const config::ResourceKey& key) const {
  for (const auto& p : parts) {
    if (p && p->count(key)) return true;
  }
  return false;
}

std::optional<config::ResourceKey> parseResourceRef(const std::string& ref) {
  auto space = ref.find(' ');
  auto slash = ref.rfind('/');
  if (space == std::string::npos || slash == std::string::npos || slash < space) return {};
  // "WorkloadGroup instance ns/name": the kind is the first word.
  auto kind = config::kindFromName(ref.substr(0, space));
  if (!kind) return {};
  auto ns_start = ref.rfind(' ', slash) + 1;
  return config::ResourceKey{*kind, ref.substr(ns_start, slash - ns_start), ref.substr(slash + 1)};
}

namespace {

struct ServiceDeps {
  std::set<config::ResourceKey> keys;  // its ServiceEntry + the workloads behind its endpoints
};

class MeshDependencyResolver final : public DependencyResolver {
 public:
  explicit MeshDependencyResolver(std::shared_ptr<const model::MeshModel> model)
      : model_(std::move(model)) {}

  Dependencies dependencies(const xds::ProxyInfo& proxy,
                            const xds::Snapshot& snapshot) const override {
    std::call_once(index_once_, [this] { buildIndex(); });
    Dependencies deps;
    if (proxy.type == xds::ProxyType::kUnknown && !proxy.proxyless) return deps;
    // Proxies with one share key get the same non-inbound config from the same model (see
    // translate::MeshIndex), so that part is computed once per key.
    std::shared_ptr<const std::set<config::ResourceKey>> shared;
    std::string key = share_keys_->shareKey(proxy);
    {
      std::lock_guard lk(memo_mu_);
      if (auto it = memo_.find(key); it != memo_.end()) shared = it->second;
    }
    if (!shared) {
      shared = std::make_shared<const std::set<config::ResourceKey>>(outbound(proxy, snapshot));
      std::lock_guard lk(memo_mu_);
      memo_.emplace(key, shared);
    }
    deps.parts.push_back(std::move(shared));
    bool router = proxy.type == xds::ProxyType::kRouter && !proxy.proxyless;
    if (router || proxy.proxyless) return deps;
    std::set<config::ResourceKey> out;
    // A sidecar's own services (inbound): their definitions, its workload, their rules.
    std::string ns = proxy.namespace_.empty() ? "default" : proxy.namespace_;
    std::vector<std::string> ips = proxy.ips;
    if (ips.empty() && !proxy.ip.empty()) ips.push_back(proxy.ip);
    for (const auto& ip : ips) {
      auto it = by_ip_.find(ip);
      if (it == by_ip_.end()) continue;
      for (const auto& [svc, workload] : it->second) {
        if (workload) out.insert(*workload);
        addService(*svc, ns, proxy.labels, out);
      }
    }
    if (!out.empty())
      deps.parts.push_back(std::make_shared<const std::set<config::ResourceKey>>(std::move(out)));
    return deps;
  }

 private:
  void addService(const model::Service& svc, const std::string& ns, const model::Labels& labels,
                  std::set<config::ResourceKey>& out) const {
    if (auto it = by_service_.find(&svc); it != by_service_.end()) {
      out.insert(it->second.keys.begin(), it->second.keys.end());
    }
    if (auto dr = model_->destinationRule(ns, labels, svc)) {
      for (const auto& src : dr->sources) {
        auto slash = src.find('/');
        if (slash == std::string::npos) continue;
        out.insert({config::Kind::kDestinationRule, src.substr(0, slash), src.substr(slash + 1)});
      }
    }
  }

  // Everything but the inbound side: the services the proxy has outbound clusters for, their
  // rules, and the routing resources that decide the proxy's routes.
  std::set<config::ResourceKey> outbound(const xds::ProxyInfo& proxy,
                                         const xds::Snapshot& snapshot) const {
    const auto& mesh = *model_;
    std::set<config::ResourceKey> out;
    std::string ns = proxy.namespace_.empty() ? "default" : proxy.namespace_;
    bool router = proxy.type == xds::ProxyType::kRouter && !proxy.proxyless;

    std::set<std::string> hosts;
    if (const auto* clusters = snapshot.find(xds::kClusterType)) {
      clusters->forEach([&hosts](const xds::Resource& r) {
        if (!r.name.starts_with("outbound|")) return;
        hosts.insert(r.name.substr(r.name.rfind('|') + 1));
      });
    }
    for (const auto& h : hosts) {
      if (const auto* svc = mesh.findService(h, ns)) addService(*svc, ns, proxy.labels, out);
    }

    // VirtualServices (and the Gateways / Sidecar that decide which ones).
    std::vector<const model::VirtualServiceInfo*> vss;
    if (router) {
      for (const auto* gw : mesh.gatewaysFor(proxy.labels)) {
        out.insert({config::Kind::kGateway, gw->ns, gw->name});
        for (const auto* vs : mesh.virtualServices(gw->key(), ns)) vss.push_back(vs);
      }
    } else {
      if (const auto* sc = mesh.sidecarFor(ns, proxy.labels)) {
        out.insert({config::Kind::kSidecar, sc->ns, sc->name});
      }
      std::vector<std::string> wildcard_hosts;
      for (const auto& h : hosts) {
        if (h.find('*') != std::string::npos) wildcard_hosts.push_back(h);
      }
      for (const auto* vs : mesh.virtualServices(model::kMeshGateway, ns)) {
        bool needed = false;
        for (const auto& h : vs->hosts) {
          if (needed) break;
          if (h.find('*') == std::string::npos) {
            // An exact host: a service the proxy has, or no service at all (translation gives
            // such hosts their own virtual host).
            needed = hosts.count(h) > 0 || !mesh.findService(h, ns);
            for (const auto& w : wildcard_hosts) needed = needed || model::hostMatches(w, h);
          } else {
            for (const auto& s : hosts) needed = needed || model::hostsOverlap(h, s);
          }
        }
        if (needed) vss.push_back(vs);
      }
    }
    for (const auto* vs : vss) {
      addVirtualService({config::Kind::kVirtualService, vs->ns, vs->name}, *vs->spec, out, 0);
    }
    return out;
  }

  // The VirtualService and, recursively, the delegates its http routes name.
  void addVirtualService(const config::ResourceKey& key,
                         const istio::networking::v1alpha3::VirtualService& spec,
                         std::set<config::ResourceKey>& out, int depth) const {
    if (!out.insert(key).second || depth > 8) return;
    for (const auto& http : spec.http()) {
      if (!http.has_delegate()) continue;
      config::ResourceKey child{
          config::Kind::kVirtualService,
          http.delegate().namespace_().empty() ? key.ns : http.delegate().namespace_(),
          http.delegate().name()};
      auto res = model_->snapshot().get(child);
      if (!res) continue;
      if (const auto* s = res->specAs<istio::networking::v1alpha3::VirtualService>()) {
        addVirtualService(child, *s, out, depth + 1);
      }
    }
  }

  // Per service: its defining resource and the workloads behind its endpoints; per IP: the
  // services that IP is an endpoint of (a sidecar's inbound side).
  void buildIndex() const {
    share_keys_ = std::make_unique<translate::MeshIndex>(*model_);
    for (const auto& svc : model_->registry().services()) {
      auto& deps = by_service_[svc.get()];
      if (auto key = parseResourceRef(svc->source)) deps.keys.insert(*key);
      for (const auto& port : svc->ports) {
        for (const auto& ep : model_->registry().endpoints(*svc, port.number)) {
          std::optional<config::ResourceKey> workload = parseResourceRef(ep.workload);
          if (workload && workload->kind == config::Kind::kWorkloadGroup) {
            // "WorkloadGroup instance ns/<group>-<ip>": the group is what the user wrote.
            std::string suffix = "-" + ep.address;
            if (workload->name.ends_with(suffix)) {
              workload->name.resize(workload->name.size() - suffix.size());
            }
          }
          if (workload) deps.keys.insert(*workload);
          if (model::isIpAddress(ep.address)) {
            auto& list = by_ip_[ep.address];
            bool seen = false;
            for (const auto& [s, _] : list) seen = seen || s == svc.get();
            if (!seen) list.emplace_back(svc.get(), workload);
          }
        }
      }
    }
  }

  std::shared_ptr<const model::MeshModel> model_;
  mutable std::once_flag index_once_;
  mutable std::unique_ptr<translate::MeshIndex> share_keys_;
  mutable std::mutex memo_mu_;
  mutable std::map<std::string, std::shared_ptr<const std::set<config::ResourceKey>>> memo_;
  mutable std::map<const model::Service*, ServiceDeps> by_service_;
  mutable std::map<
      std::string,
      std::vector<std::pair<const model::Service*, std::optional<config::ResourceKey>>>>
      by_ip_;
};

}  // namespace

std::shared_ptr<const DependencyResolver> makeMeshDependencyResolver(
    std::shared_ptr<const model::MeshModel> model) {
  return std::make_shared<MeshDependencyResolver>(std::move(model));
}

}  // namespace mast::control::server
