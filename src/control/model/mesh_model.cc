#include "control/model/mesh_model.h"

#include <algorithm>

#include "control/model/host.h"
#include "control/model/service_entry_registry.h"

namespace mast::control::model {

namespace net = istio::networking::v1alpha3;

namespace {

// Istio orders conflicting resources by creation time, then name, then namespace.
template <class T>
void sortOldestFirst(std::vector<T>& v) {
  std::stable_sort(v.begin(), v.end(), [](const T& a, const T& b) {
    const auto& ma = a.resource->metadata;
    const auto& mb = b.resource->metadata;
    // An absent timestamp sorts first, as if the resource was always there.
    return std::tie(ma.creation_timestamp, ma.name, ma.ns) <
           std::tie(mb.creation_timestamp, mb.name, mb.ns);
  });
}

// Gateway references: "name" → "<ns>/name", "./name" → "<ns>/name", "ns/name" as is,
// "name.ns.svc.<suffix>" (legacy FQDN) → "ns/name"; "mesh" stays reserved.
std::string normaliseGateway(std::string_view ref, std::string_view ns) {
  std::string r(ref);
  if (r == kMeshGateway) return r;
  if (auto slash = r.find('/'); slash != std::string::npos) {
    if (r.substr(0, slash) == ".") return std::string(ns) + r.substr(slash);
    return r;
  }
  if (auto dot = r.find('.'); dot != std::string::npos) {
    std::string name = r.substr(0, dot);
    std::string rest = r.substr(dot + 1);
    std::string gw_ns = rest.substr(0, rest.find('.'));
    return gw_ns + "/" + name;
  }
  return std::string(ns) + "/" + r;
}

std::vector<std::string> exportList(const google::protobuf::RepeatedPtrField<std::string>& v) {
  return {v.begin(), v.end()};
}

}  // namespace

std::string VirtualServiceInfo::resolveGateway(std::string_view ref) const {
  return normaliseGateway(ref, ns);
}

std::string VirtualServiceInfo::resolveHost(std::string_view host) const {
  return resolveShortName(host, ns, domain_suffix);
}

std::shared_ptr<const MeshModel> MeshModel::build(
    std::shared_ptr<const config::ConfigSnapshot> snapshot, config::MeshConfig mesh,
    std::vector<WorkloadInstance> instances, Options options) {
  auto registry = std::make_shared<ServiceEntryRegistry>(*snapshot, instances);
  return build(std::move(snapshot), std::move(mesh), std::move(registry), std::move(options));
}

std::shared_ptr<const MeshModel> MeshModel::build(
    std::shared_ptr<const config::ConfigSnapshot> snapshot, config::MeshConfig mesh,
    std::shared_ptr<const ServiceRegistry> registry, Options options) {
  std::shared_ptr<MeshModel> m(new MeshModel());
  m->snapshot_ = std::move(snapshot);
  m->mesh_ = std::move(mesh);
  m->registry_ = std::move(registry);
  m->options_ = std::move(options);
  m->index();
  return m;
}

std::string MeshModel::resolveHost(std::string_view host, std::string_view ns) const {
  return resolveShortName(host, ns, options_.domain_suffix);
}

void MeshModel::index() {
  root_namespace_ = mesh_.root_namespace().empty() ? "istio-system" : mesh_.root_namespace();
  default_service_export_ = exportList(mesh_.default_service_export_to());
  default_vs_export_ = exportList(mesh_.default_virtual_service_export_to());
  default_dr_export_ = exportList(mesh_.default_destination_rule_export_to());

  for (const auto& s : registry_->services()) services_by_host_[s->hostname].push_back(s.get());

  for (const auto& res : snapshot_->list(config::Kind::kVirtualService)) {
    const auto* spec = res->specAs<net::VirtualService>();
    if (!spec) continue;
    VirtualServiceInfo vs;
    vs.resource = res;
    vs.spec = spec;
    vs.name = res->metadata.name;
    vs.ns = res->metadata.ns;
    vs.domain_suffix = options_.domain_suffix;
    for (const auto& h : spec->hosts()) vs.hosts.push_back(resolveHost(h, vs.ns));
    for (const auto& g : spec->gateways()) vs.gateways.push_back(normaliseGateway(g, vs.ns));
    if (vs.gateways.empty()) vs.gateways.emplace_back(kMeshGateway);
    vs.export_to = exportList(spec->export_to());
    virtual_services_.push_back(std::move(vs));
  }
  sortOldestFirst(virtual_services_);
  for (const auto& vs : virtual_services_) {
    for (const auto& g : vs.gateways) {
      auto& list = vs_by_gateway_[g];
      if (std::find(list.begin(), list.end(), &vs) == list.end()) list.push_back(&vs);
    }
  }

  for (const auto& res : snapshot_->list(config::Kind::kDestinationRule)) {
    const auto* spec = res->specAs<net::DestinationRule>();
    if (!spec) continue;
    DestinationRuleInfo dr;
    dr.resource = res;
    dr.spec = spec;
    dr.name = res->metadata.name;
    dr.ns = res->metadata.ns;
    dr.host = resolveHost(spec->host(), dr.ns);
    dr.export_to = exportList(spec->export_to());
    destination_rules_.push_back(std::move(dr));
  }
  sortOldestFirst(destination_rules_);
  for (const auto& dr : destination_rules_) dr_by_ns_[dr.ns].push_back(&dr);

  for (const auto& res : snapshot_->list(config::Kind::kGateway)) {
    const auto* spec = res->specAs<net::Gateway>();
    if (!spec) continue;
    gateways_.push_back({res, spec, res->metadata.name, res->metadata.ns});
  }
  for (const auto& res : snapshot_->list(config::Kind::kSidecar)) {
    const auto* spec = res->specAs<net::Sidecar>();
    if (!spec) continue;
    sidecars_.push_back({res, spec, res->metadata.name, res->metadata.ns});
  }
  sortOldestFirst(sidecars_);
}

std::vector<const Service*> MeshModel::servicesVisibleTo(std::string_view ns) const {
  std::vector<const Service*> out;
  for (const auto& s : registry_->services()) {
    if (isExportedTo(s->export_to, default_service_export_, s->ns, ns)) out.push_back(s.get());
  }
  return out;
}

const Service* MeshModel::findService(std::string_view hostname, std::string_view ns) const {
  const Service* best = nullptr;
  auto it = services_by_host_.find(toLower(hostname));
  if (it == services_by_host_.end()) return nullptr;
  for (const Service* s : it->second) {
    if (!isExportedTo(s->export_to, default_service_export_, s->ns, ns)) continue;
    if (s->ns == ns) return s;
    if (!best || s->creation_timestamp < best->creation_timestamp) best = s;
  }
  return best;
}

std::vector<const VirtualServiceInfo*> MeshModel::virtualServices(std::string_view gateway,
                                                                  std::string_view ns) const {
  std::vector<const VirtualServiceInfo*> out;
  auto it = vs_by_gateway_.find(gateway);
  if (it == vs_by_gateway_.end()) return out;
  for (const auto* vs : it->second) {
    if (isExportedTo(vs->export_to, default_vs_export_, vs->ns, ns)) out.push_back(vs);
  }
  // Istio's precedence for a namespace: rules private to it, then rules exported to it by
  // name, then public ones; oldest first inside each group (the index order).
  auto rank = [&](const VirtualServiceInfo* vs) {
    const auto& e = vs->export_to.empty() ? default_vs_export_ : vs->export_to;
    if (vs->ns == ns && e.size() == 1 && e[0] == ".") return 0;
    if (std::find(e.begin(), e.end(), std::string(ns)) != e.end()) return 1;
    return 2;
  };
  std::stable_sort(out.begin(), out.end(),
                   [&](const auto* a, const auto* b) { return rank(a) < rank(b); });
  return out;
}

std::optional<EffectiveDestinationRule> MeshModel::destinationRule(std::string_view proxy_ns,
                                                                   const Labels& proxy_labels,
                                                                   const Service& service) const {
  // One lookup level: the rules of `ns` that apply, reduced to the most specific host.
  auto level = [&](std::string_view ns,
                   bool own_namespace) -> std::optional<EffectiveDestinationRule> {
    auto it = dr_by_ns_.find(ns);
    if (it == dr_by_ns_.end()) return std::nullopt;
    std::vector<const DestinationRuleInfo*> candidates;
    for (const auto* dr : it->second) {
      if (!hostMatches(dr->host, service.hostname)) continue;
      if (!own_namespace && !isExportedTo(dr->export_to, default_dr_export_, dr->ns, proxy_ns)) {
        continue;
      }
      if (dr->spec->has_workload_selector()) {
        // A selector only applies to workloads of its own namespace.
        if (!own_namespace) continue;
        Labels sel(dr->spec->workload_selector().match_labels().begin(),
                   dr->spec->workload_selector().match_labels().end());
        if (!labelsMatch(sel, proxy_labels)) continue;
      }
      candidates.push_back(dr);
    }
    if (candidates.empty()) return std::nullopt;
    // Most specific: an exact host beats any wildcard; longer wildcards beat shorter ones.
    auto specificity = [](const std::string& h) -> size_t {
      return h.find('*') == std::string::npos ? SIZE_MAX : h.size();
    };
    std::string best = candidates.front()->host;
    for (const auto* dr : candidates) {
      if (specificity(dr->host) > specificity(best)) best = dr->host;
    }
    // Selector-based rules win over namespace-wide ones for the same host.
    bool any_selector = false;
    for (const auto* dr : candidates) {
      if (dr->host == best && dr->spec->has_workload_selector()) any_selector = true;
    }
    EffectiveDestinationRule out;
    out.host = best;
    out.ns = std::string(ns);
    bool first = true;
    for (const auto* dr : candidates) {
      if (dr->host != best) continue;
      if (any_selector && !dr->spec->has_workload_selector()) continue;
      if (first) {
        out.rule = *dr->spec;
        first = false;
      } else {
        // Merge: the first rule's trafficPolicy wins; subsets concatenate (first name wins).
        if (!out.rule.has_traffic_policy() && dr->spec->has_traffic_policy()) {
          *out.rule.mutable_traffic_policy() = dr->spec->traffic_policy();
        }
        for (const auto& s : dr->spec->subsets()) {
          bool dup = false;
          for (const auto& have : out.rule.subsets()) dup = dup || have.name() == s.name();
          if (!dup) *out.rule.add_subsets() = s;
        }
      }
      out.sources.push_back(dr->ns + "/" + dr->name);
    }
    return out;
  };
  if (auto r = level(proxy_ns, true)) return r;
  if (service.ns != proxy_ns) {
    if (auto r = level(service.ns, false)) return r;
  }
  if (root_namespace_ != proxy_ns && root_namespace_ != service.ns) {
    if (auto r = level(root_namespace_, false)) return r;
  }
  return std::nullopt;
}

std::vector<const GatewayInfo*> MeshModel::gatewaysFor(const Labels& labels) const {
  std::vector<const GatewayInfo*> out;
  for (const auto& g : gateways_) {
    Labels sel(g.spec->selector().begin(), g.spec->selector().end());
    if (labelsMatch(sel, labels)) out.push_back(&g);
  }
  return out;
}

const GatewayInfo* MeshModel::gateway(std::string_view key) const {
  for (const auto& g : gateways_) {
    if (g.key() == key) return &g;
  }
  return nullptr;
}

const SidecarInfo* MeshModel::sidecarFor(std::string_view ns, const Labels& labels) const {
  const SidecarInfo* ns_default = nullptr;
  const SidecarInfo* root_default = nullptr;
  for (const auto& s : sidecars_) {
    bool has_selector =
        s.spec->has_workload_selector() && !s.spec->workload_selector().labels().empty();
    if (s.ns == ns) {
      if (has_selector) {
        Labels sel(s.spec->workload_selector().labels().begin(),
                   s.spec->workload_selector().labels().end());
        if (labelsMatch(sel, labels)) return &s;  // oldest matching selector wins
      } else if (!ns_default) {
        ns_default = &s;
      }
    } else if (s.ns == root_namespace_ && !has_selector && !root_default) {
      root_default = &s;
    }
  }
  return ns_default ? ns_default : root_default;
}

}  // namespace mast::control::model
