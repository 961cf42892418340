#include "control/server/istio_generator.h"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <map>
#include <optional>
#include <set>

#include "base/hash.h"
#include "control/config/resource.h"
#include "control/model/host.h"
#include "control/model/mesh_model.h"
#include "control/model/service_entry_registry.h"
#include "control/translate/generate.h"
#include "control/xds/type_urls.h"
#include "istio/networking/v1alpha3/service_entry.pb.h"
#include "istio/networking/v1alpha3/virtual_service.pb.h"
#include "istio/networking/v1alpha3/workload_entry.pb.h"
#include "istio/networking/v1alpha3/workload_group.pb.h"

namespace mast::control::server {

namespace {

std::string hex(uint64_t h) {
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

// A hash over a layer's own names and content versions (not its base).
uint64_t layerDigest(const xds::ResourceSet& set, uint64_t seed) {
  uint64_t h = seed;
  for (const auto& [name, r] : set.resources)
    h = mast::xxHash64(r.version, mast::xxHash64(name, h));
  return h;
}

// Indexes in kTypes.
constexpr size_t kClusters = 0;
constexpr size_t kEndpoints = 1;
constexpr size_t kListeners = 2;
constexpr size_t kRoutes = 3;
constexpr std::string_view kTypes[] = {xds::kClusterType, xds::kEndpointType, xds::kListenerType,
                                       xds::kRouteType};

// generateShared()'s output for one MeshIndex::shareKey(), packed once: every proxy with that key
// holds these sets as the base layer of its snapshot instead of translating, serializing and
// indexing them again. Each set's `version` is its digest.
struct SharedResources {
  std::shared_ptr<const xds::ResourceSet> by_type[std::size(kTypes)];
};

template <class Msg>
void addAll(xds::Snapshot& snap, const std::vector<Msg>& items) {
  for (const auto& m : items) (void)snap.add(m);
}

void addResources(xds::Snapshot& snap, const translate::ProxyResources& res) {
  addAll(snap, res.clusters);
  addAll(snap, res.endpoints);
  addAll(snap, res.listeners);
  addAll(snap, res.routes);
}

std::shared_ptr<const SharedResources> packShared(const translate::ProxyResources& res) {
  xds::Snapshot packed;
  addResources(packed, res);
  auto out = std::make_shared<SharedResources>();
  for (size_t t = 0; t < std::size(kTypes); ++t) {
    auto set = std::make_shared<xds::ResourceSet>(packed.release(kTypes[t]));
    set->version = hex(layerDigest(*set, 0));
    out->by_type[t] = std::move(set);
  }
  return out;
}

namespace net = istio::networking::v1alpha3;

// When every difference between two config snapshots is in WorkloadEntries: the hostnames of
// the services whose endpoints those entries are (before or after) and the entries' addresses;
// nullopt for any other change.
// Such a change only moves endpoints, so shared output that has no cluster of those hosts is
// unchanged. Selection follows the registry: a ServiceEntry's workloadSelector picks entries of
// its own namespace by spec + metadata labels.
struct EndpointChange {
  std::set<std::string> entries;    // "ns/name" of the ServiceEntries selecting a changed entry
  std::set<std::string> addresses;  // the changed entries' addresses, before and after
  std::set<std::string> hosts;      // the services of `entries` (see addHosts)
};

// Every resource that differs between two config snapshots (both versions of a changed one).
std::vector<std::shared_ptr<const config::Resource>> changedResources(
    const config::ConfigSnapshot& before, const config::ConfigSnapshot& after) {
  const auto& a = before.resources();
  const auto& b = after.resources();
  std::vector<std::shared_ptr<const config::Resource>> changed;
  auto ia = a.begin(), ib = b.begin();
  while (ia != a.end() || ib != b.end()) {
    if (ib == b.end() || (ia != a.end() && ia->first < ib->first)) {
      changed.push_back(ia->second);
      ++ia;
    } else if (ia == a.end() || ib->first < ia->first) {
      changed.push_back(ib->second);
      ++ib;
    } else {
      if (ia->second != ib->second && !config::sameContent(*ia->second, *ib->second)) {
        changed.push_back(ia->second);
        changed.push_back(ib->second);
      }
      ++ia;
      ++ib;
    }
  }
  return changed;
}

// The ServiceEntries ("ns/name") of `after` whose services may differ from before: the changed
// ones and those selecting a changed WorkloadEntry (old or new labels). Selection follows the
// registry: a workloadSelector picks entries of its own namespace by spec + metadata labels.
std::set<std::string> serviceEntriesToRebuild(
    const std::vector<std::shared_ptr<const config::Resource>>& changed,
    const config::ConfigSnapshot& after) {
  std::set<std::string> out;
  struct Entry {
    const std::string* ns;
    std::map<std::string, std::string> labels;  // spec labels + metadata labels
  };
  std::vector<Entry> entries;
  for (const auto& r : changed) {
    if (r->kind == config::Kind::kServiceEntry) out.insert(r->metadata.ns + "/" + r->metadata.name);
    const auto* spec = r->specAs<net::WorkloadEntry>();
    if (r->kind != config::Kind::kWorkloadEntry || !spec) continue;
    Entry e{&r->metadata.ns, {spec->labels().begin(), spec->labels().end()}};
    e.labels.insert(r->metadata.labels.begin(), r->metadata.labels.end());
    entries.push_back(std::move(e));
  }
  if (entries.empty()) return out;
  for (const auto& res : after.list(config::Kind::kServiceEntry)) {
    const auto* se = res->specAs<net::ServiceEntry>();
    if (!se || !se->has_workload_selector()) continue;
    std::map<std::string, std::string> selector(se->workload_selector().labels().begin(),
                                                se->workload_selector().labels().end());
    for (const auto& we : entries) {
      if (*we.ns != res->metadata.ns) continue;
      if (model::labelsMatch(selector, we.labels)) {
        out.insert(res->metadata.ns + "/" + res->metadata.name);
        break;
      }
    }
  }
  return out;
}

// Adds the hostnames of the services `change.entries` define in `model`.
void addHosts(EndpointChange& change, const model::MeshModel& model) {
  for (const auto& svc : model.registry().services()) {
    constexpr std::string_view kPrefix = "ServiceEntry ";
    if (svc->source.starts_with(kPrefix) &&
        change.entries.count(svc->source.substr(kPrefix.size()))) {
      change.hosts.insert(svc->hostname);
    }
  }
}

// Whether a shared part has a cluster (and so endpoints) of one of `hosts`: cluster names are
// `outbound|PORT|SUBSET|HOST`.
bool refersToAny(const SharedResources& shared, const std::set<std::string>& hosts) {
  bool found = false;
  shared.by_type[kClusters]->forEach([&](const xds::Resource& r) {
    if (found || !r.name.starts_with("outbound|")) return;
    found = hosts.count(r.name.substr(r.name.rfind('|') + 1)) > 0;
  });
  return found;
}

bool sameInstances(const std::vector<model::WorkloadInstance>& a,
                   const std::vector<model::WorkloadInstance>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].name != b[i].name || a[i].ns != b[i].ns || a[i].group != b[i].group ||
        a[i].entry.SerializeAsString() != b[i].entry.SerializeAsString()) {
      return false;
    }
  }
  return true;
}

// The host of an `outbound|PORT|SUBSET|HOST` cluster or ClusterLoadAssignment name ("" for
// any other name).
std::string_view outboundHost(std::string_view name) {
  if (!name.starts_with("outbound|")) return {};
  return name.substr(name.rfind('|') + 1);
}

// The VirtualServices among `changed` ("ns/name"), or nullopt when something else changed too.
struct VirtualServiceChange {
  std::set<std::string> keys;
  std::vector<std::pair<std::string, std::string>> hosts;  // their hosts as written, with ns
  std::set<uint32_t> ports;  // of the services those hosts overlap, and 80 (addPorts)
  bool l4 = false;           // one of them (before or after) has tcp or tls routes: listeners too
  bool delegate = false;     // one of them has no hosts: a delegate, reached through its roots
};
std::optional<VirtualServiceChange> virtualServiceChange(
    const std::vector<std::shared_ptr<const config::Resource>>& changed) {
  VirtualServiceChange out;
  for (const auto& r : changed) {
    const auto* vs = r->specAs<net::VirtualService>();
    if (r->kind != config::Kind::kVirtualService || !vs) return std::nullopt;
    out.keys.insert(r->metadata.ns + "/" + r->metadata.name);
    for (const auto& h : vs->hosts()) out.hosts.emplace_back(h, r->metadata.ns);
    out.l4 = out.l4 || vs->tcp_size() > 0 || vs->tls_size() > 0;
    out.delegate = out.delegate || vs->hosts().empty();
  }
  return out;
}

// The ports of the services in `model` that the changed VirtualServices' hosts overlap.
void addPorts(VirtualServiceChange& change, const model::MeshModel& model) {
  change.ports.insert(80);
  std::vector<std::string> hosts;
  for (const auto& [h, ns] : change.hosts) hosts.push_back(model.resolveHost(h, ns));
  for (const auto& svc : model.registry().services()) {
    for (const auto& h : hosts) {
      if (!model::hostsOverlap(h, svc->hostname)) continue;
      for (const auto& p : svc->ports) change.ports.insert(p.number);
      break;
    }
  }
}

class IstioGenerator final : public Generator {
 public:
  void update(std::shared_ptr<const config::ConfigSnapshot> snapshot,
              const config::MeshConfig& mesh,
              const std::vector<xds::ProxyInfo>& auto_registered) override {
    std::vector<model::WorkloadInstance> instances;
    for (const auto& p : auto_registered) {
      std::string ns = p.namespace_.empty() ? "default" : p.namespace_;
      auto it = p.metadata.find("AUTO_REGISTER_GROUP");
      if (it == p.metadata.end()) continue;
      auto group = snapshot->get(config::Kind::kWorkloadGroup, ns, it->second);
      if (!group) continue;
      const auto* wg = group->specAs<istio::networking::v1alpha3::WorkloadGroup>();
      if (!wg) continue;
      model::WorkloadInstance w;
      w.group = it->second;
      w.ns = ns;
      w.name = it->second + "-" + p.ip;
      w.entry = wg->template_();
      w.entry.set_address(p.ip);
      for (const auto& [k, v] : wg->metadata().labels()) (*w.entry.mutable_labels())[k] = v;
      for (const auto& [k, v] : p.labels) (*w.entry.mutable_labels())[k] = v;
      if (!p.service_account.empty()) w.entry.set_service_account(p.service_account);
      instances.push_back(std::move(w));
    }
    before_ = std::move(model_);
    before_shared_ = std::move(shared_);
    shared_.clear();
    key_kept_.clear();
    reused_ = 0;
    patched_ = 0;
    endpoint_change_.reset();
    vs_change_.reset();
    // With the same auto-registrations and mesh config, the registry is rebuilt only for the
    // ServiceEntries that a change can concern; the others keep their services (a
    // VirtualService change rebuilds none). When only WorkloadEntries changed, that is also an
    // endpoint-only change, when only VirtualServices changed a routing-only one (see below).
    const auto* before_registry =
        before_ ? dynamic_cast<const model::ServiceEntryRegistry*>(&before_->registry()) : nullptr;
    if (before_registry && sameInstances(instances, instances_) && sameMesh(mesh)) {
      auto changed = changedResources(before_->snapshot(), *snapshot);
      auto rebuild = serviceEntriesToRebuild(changed, *snapshot);
      bool only_entries = std::all_of(changed.begin(), changed.end(), [](const auto& r) {
        return r->kind == config::Kind::kWorkloadEntry;
      });
      if (only_entries) {
        endpoint_change_.emplace();
        endpoint_change_->entries = rebuild;
        for (const auto& r : changed) {
          if (const auto* spec = r->specAs<net::WorkloadEntry>()) {
            endpoint_change_->addresses.insert(spec->address());
          }
        }
      } else {
        vs_change_ = virtualServiceChange(changed);
      }
      auto registry = std::make_shared<model::ServiceEntryRegistry>(*snapshot, instances,
                                                                    *before_registry, rebuild);
      model_ = model::MeshModel::build(std::move(snapshot), mesh, std::move(registry));
    } else {
      model_ = model::MeshModel::build(std::move(snapshot), mesh, instances);
    }
    auto before_index = std::move(index_);
    index_ = std::make_unique<translate::MeshIndex>(*model_);
    // Share keys of the two models name the same proxy shapes only when they test the same
    // label selectors (a VirtualService's sourceLabels are some of them).
    if (!before_index || before_index->selectors() != index_->selectors()) {
      endpoint_change_.reset();
      vs_change_.reset();
    }
    if (endpoint_change_) {
      addHosts(*endpoint_change_, *before_);
      addHosts(*endpoint_change_, *model_);
    }
    if (vs_change_) {
      addPorts(*vs_change_, *before_);
      addPorts(*vs_change_, *model_);
    }
    if (!endpoint_change_ && !vs_change_) {
      before_shared_.clear();
      before_.reset();
    }
    instances_ = std::move(instances);
    mesh_ = mesh;
  }

  size_t reusedSharedParts() const override { return reused_; }
  size_t patchedSharedParts() const override { return patched_; }

  // Its shared part was kept, and its inbound part did not change: that depends only on the
  // services with endpoints at its own addresses (not on VirtualServices), which did not change
  // unless an entry at one of them did.
  bool sameAsBefore(const xds::ProxyInfo& proxy) const override {
    return !inboundChanged(proxy) && keyKept(index_->shareKey(proxy), proxy);
  }

  // Istio's XdsCache idea without its invalidation rules: everything but the inbound part is
  // computed once per share key and model, so 2,000 sidecars of 20 namespaces cost 20
  // translations plus 2,000 small inbound ones. Same output as translate::generate().
  xds::Snapshot generate(const xds::ProxyInfo& proxy) override {
    const auto& shared = sharedFor(proxy, index_->shareKey(proxy));
    xds::Snapshot snap;
    for (size_t t = 0; t < std::size(kTypes); ++t) snap.setBase(kTypes[t], shared->by_type[t]);
    addResources(snap, translate::generateInbound(*model_, proxy, index_.get()));
    setVersions(snap, *shared);
    return snap;
  }

  // After an endpoint-only or a VirtualService-only change, a proxy whose inbound part cannot
  // have changed keeps it: its new snapshot is `current` over the new shared layers.
  std::shared_ptr<const xds::Snapshot> generateFrom(
      const xds::ProxyInfo& proxy, std::shared_ptr<const xds::Snapshot> current) override {
    if (current && (endpoint_change_ || vs_change_) && !inboundChanged(proxy)) {
      std::string key = index_->shareKey(proxy);
      auto old = before_shared_.find(key);
      if (old != before_shared_.end() && hasBases(*current, *old->second)) {
        const auto& shared = sharedFor(proxy, key);
        if (shared == old->second) return current;
        xds::Snapshot snap = *current;
        for (size_t t = 0; t < std::size(kTypes); ++t) snap.setBase(kTypes[t], shared->by_type[t]);
        setVersions(snap, *shared);
        if (xds::Snapshot::sameContent(*current, snap)) return current;
        return std::make_shared<const xds::Snapshot>(std::move(snap));
      }
    }
    auto fresh = generate(proxy);
    if (current && xds::Snapshot::sameContent(*current, fresh)) return current;
    return std::make_shared<const xds::Snapshot>(std::move(fresh));
  }

  std::shared_ptr<const model::MeshModel> model() const override { return model_; }

 private:
  bool sameMesh(const config::MeshConfig& mesh) const {
    return mesh.SerializeAsString() == mesh_.SerializeAsString();
  }

  // A VirtualService change never reaches the inbound part; an endpoint change does at the
  // changed entries' addresses.
  bool inboundChanged(const xds::ProxyInfo& proxy) const {
    if (vs_change_) return false;
    if (!endpoint_change_) return true;
    if (endpoint_change_->addresses.count(proxy.ip)) return true;
    for (const auto& ip : proxy.ips) {
      if (endpoint_change_->addresses.count(ip)) return true;
    }
    return false;
  }

  // Whether `snap`'s layers are `shared`: then its own resources are the inbound part generated
  // under the model before (mastd gives every proxy a snapshot of every model).
  static bool hasBases(const xds::Snapshot& snap, const SharedResources& shared) {
    for (size_t t = 0; t < std::size(kTypes); ++t) {
      const auto* set = snap.find(kTypes[t]);
      if (!set || set->base != shared.by_type[t]) return false;
    }
    return true;
  }

  static void setVersions(xds::Snapshot& snap, const SharedResources& shared) {
    // The type's version: the shared layer's digest, then this proxy's own resources.
    for (size_t t = 0; t < std::size(kTypes); ++t) {
      const auto* set = snap.find(kTypes[t]);
      snap.setVersion(kTypes[t],
                      hex(layerDigest(*set, mast::xxHash64(shared.by_type[t]->version))));
    }
  }

  // Whether the shared part of `key` under the model before is also the current one, with no
  // translation: the change cannot reach what translation reads for that key. Decided from
  // the old part itself (endpoint change) or from which VirtualServices the key's namespace
  // sees (routing change); memoised per key. The proxy is any of that key.
  bool keyKept(const std::string& key, const xds::ProxyInfo& proxy) const {
    if (!endpoint_change_ && !vs_change_) return false;
    if (auto it = key_kept_.find(key); it != key_kept_.end()) return it->second;
    auto old = before_shared_.find(key);
    if (old == before_shared_.end()) return false;
    bool kept = false;
    if (endpoint_change_) {
      // No cluster (so no endpoints) of a service concerned.
      kept = !refersToAny(*old->second, endpoint_change_->hosts);
    } else {
      kept = !reaches(*before_, proxy) && !reaches(*model_, proxy);
    }
    key_kept_[key] = kept;
    return kept;
  }

  // Whether the changed VirtualServices are among those `proxy`'s translation reads in `model`:
  // bound to `mesh` and exported to its namespace (sidecars, proxyless). A delegate is read
  // through any root, and gateways read the VirtualServices of their Gateways: no shortcut.
  bool reaches(const model::MeshModel& model, const xds::ProxyInfo& proxy) const {
    if (vs_change_->delegate || (proxy.type != xds::ProxyType::kSidecar && !proxy.proxyless)) {
      return true;
    }
    std::string ns = proxy.namespace_.empty() ? "default" : proxy.namespace_;
    for (const auto* vs : model.virtualServices(model::kMeshGateway, ns)) {
      if (vs_change_->keys.count(vs->ns + "/" + vs->name)) return true;
    }
    return false;
  }

  // The shared part for `proxy` (of share key `key`): kept from the model before, patched
  // from it (only what the change can affect translated again), or translated whole.
  const std::shared_ptr<const SharedResources>& sharedFor(const xds::ProxyInfo& proxy,
                                                          const std::string& key) {
    auto& shared = shared_[key];
    if (shared) return shared;
    auto old = before_shared_.find(key);
    if (old != before_shared_.end() && keyKept(key, proxy)) {
      ++reused_;
      shared = old->second;
    } else if (old != before_shared_.end() && (shared = patched(proxy, *old->second))) {
      ++patched_;
    } else {
      shared = packShared(translate::generateShared(*model_, proxy));
    }
    // A layer whose content did not change stays the old object: proxies whose snapshots are
    // found to be unchanged keep them, and those must still hold this key's layers for the
    // next change to be patched instead of translated.
    if (old != before_shared_.end() && shared != old->second) {
      auto same = std::make_shared<SharedResources>(*shared);
      bool all = true;
      for (size_t t = 0; t < std::size(kTypes); ++t) {
        if (same->by_type[t]->version == old->second->by_type[t]->version) {
          same->by_type[t] = old->second->by_type[t];
        } else {
          all = false;
        }
      }
      shared = all ? old->second : std::move(same);
    }
    return shared;
  }

  // The shared part of `proxy` rebuilt from `old` (the same key's under the model before) by
  // translating only what the change can affect; nullptr when that is not enough.
  std::shared_ptr<const SharedResources> patched(const xds::ProxyInfo& proxy,
                                                 const SharedResources& old) {
    translate::SharedSelection sel;
    if (endpoint_change_) {
      // Only the clusters of the services concerned, with their endpoints. When one of those
      // clusters changes (a NONE service gaining or losing its last endpoint changes type, a
      // DNS cluster carries its endpoints inline, a proxyless client drops an unreachable
      // service's listener too), translate everything.
      sel.listeners = sel.routes = false;
      sel.only_hosts = &endpoint_change_->hosts;
      auto part = packShared(translate::generateShared(*model_, proxy, sel));
      std::map<std::string_view, std::string_view> before, after;
      old.by_type[kClusters]->forEach([&](const xds::Resource& r) {
        if (endpoint_change_->hosts.count(std::string(outboundHost(r.name)))) {
          before.emplace(r.name, r.version);
        }
      });
      part->by_type[kClusters]->forEach(
          [&](const xds::Resource& r) { after.emplace(r.name, r.version); });
      if (before != after) return nullptr;
      auto out = std::make_shared<SharedResources>(old);
      out->by_type[kEndpoints] =
          merged(old.by_type[kEndpoints], *part->by_type[kEndpoints], [&](std::string_view n) {
            return endpoint_change_->hosts.count(std::string(outboundHost(n))) > 0;
          });
      return out;
    }
    if (!vs_change_) return nullptr;
    // A routing change: clusters and endpoints do not read VirtualServices, unless a Sidecar's
    // egress imports their destinations (scopedPorts) — then translate everything. Listeners
    // read them for tcp/tls routes; a gateway's come out of the same walk as its routes.
    if (proxy.type != xds::ProxyType::kRouter || proxy.proxyless) {
      std::string ns = proxy.namespace_.empty() ? "default" : proxy.namespace_;
      const auto* sidecar = model_->sidecarFor(ns, proxy.labels);
      if (sidecar && !sidecar->spec->egress().empty()) return nullptr;
    }
    sel.clusters = false;
    const bool sidecar = proxy.type == xds::ProxyType::kSidecar && !proxy.proxyless;
    sel.listeners = vs_change_->l4 || !sidecar;
    // A sidecar's route configuration per port has a vhost per service on that port, bound to
    // the VirtualService of its host: only the ports of services a changed VirtualService's
    // hosts overlap (before or after) can change, and 80, which also carries the vhosts of
    // VirtualService hosts that are no service.
    if (sidecar && !vs_change_->delegate) sel.only_route_ports = &vs_change_->ports;
    auto part = packShared(translate::generateShared(*model_, proxy, sel));
    auto out = std::make_shared<SharedResources>(old);
    auto all = [](std::string_view) { return true; };
    auto port = [&](std::string_view name) {
      uint32_t p = 0;
      auto [end, ec] = std::from_chars(name.data(), name.data() + name.size(), p);
      return ec == std::errc() && end == name.data() + name.size() && vs_change_->ports.count(p);
    };
    out->by_type[kRoutes] = sel.only_route_ports
                                ? merged(old.by_type[kRoutes], *part->by_type[kRoutes], port)
                                : merged(old.by_type[kRoutes], *part->by_type[kRoutes], all);
    if (sel.listeners) {
      out->by_type[kListeners] = merged(old.by_type[kListeners], *part->by_type[kListeners], all);
    }
    return out;
  }

  // `old` with the resources `replaced(name)` selects swapped for `fresh`'s. A resource whose
  // content is unchanged stays the old object (same Any, same encoded bytes); when nothing
  // changed at all, the old set itself.
  template <class Pred>
  static std::shared_ptr<const xds::ResourceSet> merged(
      const std::shared_ptr<const xds::ResourceSet>& old, const xds::ResourceSet& fresh,
      Pred replaced) {
    auto out = std::make_shared<xds::ResourceSet>(*old);
    for (const auto& [name, r] : old->resources) {
      if (replaced(name)) out->erase(name);
    }
    fresh.forEach([&](const xds::Resource& r) {
      const auto* before = old->find(r.name);
      out->insert(before && before->version == r.version ? *before : r);
    });
    out->version = hex(layerDigest(*out, 0));
    if (out->version == old->version) return old;
    return out;
  }

  std::shared_ptr<const model::MeshModel> model_;
  std::unique_ptr<translate::MeshIndex> index_;  // refers to *model_
  // The model before and its shared parts, while the current one can be derived from them.
  std::shared_ptr<const model::MeshModel> before_;
  std::map<std::string, std::shared_ptr<const SharedResources>> before_shared_;

  std::map<std::string, std::shared_ptr<const SharedResources>> shared_;  // valid for model_
  mutable std::map<std::string, bool> key_kept_;
  std::vector<model::WorkloadInstance> instances_;  // model_'s auto-registered workloads
  config::MeshConfig mesh_;
  size_t reused_ = 0;
  size_t patched_ = 0;
  std::optional<EndpointChange> endpoint_change_;  // model_ vs before_, if endpoint-only
  std::optional<VirtualServiceChange> vs_change_;  // model_ vs before_, if VirtualService-only
};

}  // namespace

std::unique_ptr<Generator> makeIstioGenerator() { return std::make_unique<IstioGenerator>(); }

}  // namespace mast::control::server
