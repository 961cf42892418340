#include "control/server/istio_generator.h"

#include "base/hash.h"
#include "control/model/mesh_model.h"
#include "control/translate/generate.h"
#include "control/xds/type_urls.h"
#include "istio/networking/v1alpha3/workload_group.pb.h"

namespace mast::control::server {

namespace {

template <class Msg>
void addType(xds::Snapshot& snap, std::string_view type_url, const std::vector<Msg>& items) {
  snap.setVersion(type_url, "");
  std::string digest;
  for (const auto& m : items) {
    (void)snap.add(m);
  }
  // The type's version: a hash over its resources' names and content versions.
  if (const auto* set = snap.find(type_url)) {
    for (const auto& [name, r] : set->resources) digest += name + "=" + r.version + ";";
  }
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx",
                static_cast<unsigned long long>(mast::xxHash64(digest)));
  snap.setVersion(type_url, buf);
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
    model_ = model::MeshModel::build(std::move(snapshot), mesh, std::move(instances));
  }

  xds::Snapshot generate(const xds::ProxyInfo& proxy) override {
    auto res = translate::generate(*model_, proxy);
    xds::Snapshot snap;
    addType(snap, xds::kClusterType, res.clusters);
    addType(snap, xds::kEndpointType, res.endpoints);
    addType(snap, xds::kListenerType, res.listeners);
    addType(snap, xds::kRouteType, res.routes);
    return snap;
  }

  std::shared_ptr<const model::MeshModel> model() const override { return model_; }

 private:
  std::shared_ptr<const model::MeshModel> model_;
};

}  // namespace

std::unique_ptr<Generator> makeIstioGenerator() { return std::make_unique<IstioGenerator>(); }

}  // namespace mast::control::server
