#include "control/server/istio_generator.h"

#include <algorithm>
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

constexpr size_t kClusters = 0;  // index of kClusterType in kTypes
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
    auto before = std::move(model_);
    auto before_shared = std::move(shared_);
    shared_.clear();
    reused_ = 0;
    endpoint_change_.reset();
    kept_keys_.clear();
    // With the same auto-registrations and mesh config, the registry is rebuilt only for the
    // ServiceEntries that a change can concern; the others keep their services (a
    // VirtualService change rebuilds none). When only WorkloadEntries changed, that is also an
    // endpoint-only change (see below).
    const auto* before_registry =
        before ? dynamic_cast<const model::ServiceEntryRegistry*>(&before->registry()) : nullptr;
    if (before_registry && sameInstances(instances, instances_) && sameMesh(mesh)) {
      auto changed = changedResources(before->snapshot(), *snapshot);
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
      }
      auto registry = std::make_shared<model::ServiceEntryRegistry>(*snapshot, instances,
                                                                    *before_registry, rebuild);
      model_ = model::MeshModel::build(std::move(snapshot), mesh, std::move(registry));
    } else {
      model_ = model::MeshModel::build(std::move(snapshot), mesh, instances);
    }
    index_ = std::make_unique<translate::MeshIndex>(*model_);
    // An endpoint-only change keeps the shared part of every share key that does not import the
    // services concerned (most of them, with Sidecar scoping): it would translate the same.
    // Share keys are comparable between the two models: only WorkloadEntries differ, and keys
    // are built from proxy fields and the selectors of other kinds.
    if (endpoint_change_) {
      addHosts(*endpoint_change_, *before);
      addHosts(*endpoint_change_, *model_);
      for (auto& [key, shared] : before_shared) {
        if (refersToAny(*shared, endpoint_change_->hosts)) continue;
        kept_keys_.insert(key);
        shared_.emplace(key, std::move(shared));
      }
      reused_ = shared_.size();
    }
    instances_ = std::move(instances);
    mesh_ = mesh;
  }

  size_t reusedSharedParts() const override { return reused_; }

  // Its shared part was kept, and its inbound part depends only on the services with endpoints
  // at its own addresses, which did not change unless an entry at one of them did.
  bool sameAsBefore(const xds::ProxyInfo& proxy) const override {
    if (!endpoint_change_ || !kept_keys_.count(index_->shareKey(proxy))) return false;
    if (endpoint_change_->addresses.count(proxy.ip)) return false;
    for (const auto& ip : proxy.ips) {
      if (endpoint_change_->addresses.count(ip)) return false;
    }
    return true;
  }

  // Istio's XdsCache idea without its invalidation rules: everything but the inbound part is
  // computed once per share key and model, so 2,000 sidecars of 20 namespaces cost 20
  // translations plus 2,000 small inbound ones. Same output as translate::generate().
  xds::Snapshot generate(const xds::ProxyInfo& proxy) override {
    auto& shared = shared_[index_->shareKey(proxy)];
    if (!shared) shared = packShared(translate::generateShared(*model_, proxy));
    xds::Snapshot snap;
    for (size_t t = 0; t < std::size(kTypes); ++t) snap.setBase(kTypes[t], shared->by_type[t]);
    addResources(snap, translate::generateInbound(*model_, proxy, index_.get()));
    // The type's version: the shared layer's digest, then this proxy's own resources.
    for (size_t t = 0; t < std::size(kTypes); ++t) {
      const auto* set = snap.find(kTypes[t]);
      snap.setVersion(kTypes[t],
                      hex(layerDigest(*set, mast::xxHash64(shared->by_type[t]->version))));
    }
    return snap;
  }

  std::shared_ptr<const model::MeshModel> model() const override { return model_; }

 private:
  std::shared_ptr<const model::MeshModel> model_;
  std::unique_ptr<translate::MeshIndex> index_;  // refers to *model_
  bool sameMesh(const config::MeshConfig& mesh) const {
    return mesh.SerializeAsString() == mesh_.SerializeAsString();
  }

  std::map<std::string, std::shared_ptr<const SharedResources>> shared_;  // valid for model_
  std::vector<model::WorkloadInstance> instances_;  // model_'s auto-registered workloads
  config::MeshConfig mesh_;
  size_t reused_ = 0;
  std::optional<EndpointChange> endpoint_change_;  // model_ vs the model before, if endpoint-only
  std::set<std::string> kept_keys_;                // share keys whose shared part was kept
};

}  // namespace

std::unique_ptr<Generator> makeIstioGenerator() { return std::make_unique<IstioGenerator>(); }

}  // namespace mast::control::server
