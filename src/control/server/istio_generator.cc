#include "control/server/istio_generator.h"

#include <cstdio>
#include <map>

#include "base/hash.h"
#include "control/model/mesh_model.h"
#include "control/translate/generate.h"
#include "control/xds/type_urls.h"
#include "istio/networking/v1alpha3/workload_group.pb.h"

namespace mast::control::server {

namespace {

// The snapshot's version for a type: a hash over its resources' names and content versions.
void setTypeVersion(xds::Snapshot& snap, std::string_view type_url) {
  std::string digest;
  if (const auto* set = snap.find(type_url)) {
    size_t n = 0;
    for (const auto& [name, r] : set->resources) n += name.size() + r.version.size() + 2;
    digest.reserve(n);
    for (const auto& [name, r] : set->resources) {
      digest += name;
      digest += '=';
      digest += r.version;
      digest += ';';
    }
  }
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx",
                static_cast<unsigned long long>(mast::xxHash64(digest)));
  snap.setVersion(type_url, buf);
}

constexpr std::string_view kTypes[] = {xds::kClusterType, xds::kEndpointType, xds::kListenerType,
                                       xds::kRouteType};

// generateShared()'s output for one MeshIndex::shareKey(), packed once: every proxy with that key
// shares these Anys (bytes and content versions) instead of translating and serializing again.
struct SharedResources {
  std::vector<xds::Resource> by_type[std::size(kTypes)];
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
    if (const auto* set = packed.find(kTypes[t])) {
      for (const auto& [name, r] : set->resources) out->by_type[t].push_back(r);
    }
  }
  return out;
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
    shared_.clear();
    model_ = model::MeshModel::build(std::move(snapshot), mesh, std::move(instances));
    index_ = std::make_unique<translate::MeshIndex>(*model_);
  }

  // Istio's XdsCache idea without its invalidation rules: everything but the inbound part is
  // computed once per share key and model, so 2,000 sidecars of 20 namespaces cost 20
  // translations plus 2,000 small inbound ones. Same output as translate::generate().
  xds::Snapshot generate(const xds::ProxyInfo& proxy) override {
    auto& shared = shared_[index_->shareKey(proxy)];
    if (!shared) shared = packShared(translate::generateShared(*model_, proxy));
    xds::Snapshot snap;
    for (size_t t = 0; t < std::size(kTypes); ++t) {
      snap.setVersion(kTypes[t], "");
      for (const auto& r : shared->by_type[t]) (void)snap.addShared(r.name, r.any, r.version);
    }
    addResources(snap, translate::generateInbound(*model_, proxy, index_.get()));
    for (auto type_url : kTypes) setTypeVersion(snap, type_url);
    return snap;
  }

  std::shared_ptr<const model::MeshModel> model() const override { return model_; }

 private:
  std::shared_ptr<const model::MeshModel> model_;
  std::unique_ptr<translate::MeshIndex> index_;                           // refers to *model_
  std::map<std::string, std::shared_ptr<const SharedResources>> shared_;  // for model_ only
};

}  // namespace

std::unique_ptr<Generator> makeIstioGenerator() { return std::make_unique<IstioGenerator>(); }

}  // namespace mast::control::server
