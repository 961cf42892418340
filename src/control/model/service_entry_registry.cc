#include "control/model/service_entry_registry.h"

#include <algorithm>

#include "control/model/host.h"
#include "istio/networking/v1alpha3/service_entry.pb.h"

namespace mast::control::model {

namespace net = istio::networking::v1alpha3;

namespace {

constexpr std::string_view kTlsModeLabel = "security.istio.io/tlsMode";

std::map<std::string, std::string> toMap(const google::protobuf::Map<std::string, std::string>& m) {
  return {m.begin(), m.end()};
}

}  // namespace

ServiceEntryRegistry::ServiceEntryRegistry(const config::ConfigSnapshot& snapshot,
                                           const std::vector<WorkloadInstance>& instances) {
  build(snapshot, instances, nullptr, nullptr);
}

ServiceEntryRegistry::ServiceEntryRegistry(const config::ConfigSnapshot& snapshot,
                                           const std::vector<WorkloadInstance>& instances,
                                           const ServiceEntryRegistry& previous,
                                           const std::set<std::string>& rebuild) {
  build(snapshot, instances, &previous, &rebuild);
}

void ServiceEntryRegistry::build(const config::ConfigSnapshot& snapshot,
                                 const std::vector<WorkloadInstance>& instances,
                                 const ServiceEntryRegistry* previous,
                                 const std::set<std::string>* rebuild) {
  // With `previous`: the services each of its ServiceEntries made, with their sources.
  std::map<std::string, std::vector<std::shared_ptr<const Service>>, std::less<>> kept;
  if (previous) {
    for (const auto& svc : previous->services_) kept[svc->source].push_back(svc);
  }
  // WorkloadEntries by namespace with their merged labels, computed once: selection below is
  // per ServiceEntry, and a mesh of 1,000 entries and 10,000 workloads must not cost 10M label
  // maps. Each namespace's list keeps the snapshot's order.
  struct Entry {
    const config::Resource* resource;
    const net::WorkloadEntry* spec;
    std::map<std::string, std::string> labels;  // spec labels + metadata labels
  };
  // Per namespace, also which entries carry each label (key, value), in order: a selector only
  // looks at the entries having its rarest label instead of every entry of the namespace.
  struct Namespace {
    std::vector<Entry> entries;
    std::map<std::pair<std::string, std::string>, std::vector<size_t>> by_label;
  };
  // The entries of a namespace are indexed when a ServiceEntry there first selects: an
  // incremental build touches only the namespaces of the entries it rebuilds.
  std::map<std::string, std::vector<const config::Resource*>, std::less<>> raw_by_ns;
  for (const auto& [key, we] : snapshot.resources()) {
    if (key.kind == config::Kind::kWorkloadEntry) raw_by_ns[key.ns].push_back(we.get());
  }
  std::map<std::string, Namespace, std::less<>> entries_by_ns;
  auto entriesOf = [&](const std::string& ns) -> const Namespace* {
    if (auto it = entries_by_ns.find(ns); it != entries_by_ns.end()) return &it->second;
    auto& space = entries_by_ns[ns];
    auto raw = raw_by_ns.find(ns);
    if (raw == raw_by_ns.end()) return &space;
    for (const auto* we : raw->second) {
      const auto* spec = we->specAs<net::WorkloadEntry>();
      if (!spec || spec->address().empty()) continue;
      // A WorkloadEntry's metadata labels count like its spec labels.
      auto labels = toMap(spec->labels());
      labels.insert(we->metadata.labels.begin(), we->metadata.labels.end());
      for (const auto& kv : labels) space.by_label[kv].push_back(space.entries.size());
      space.entries.push_back({we, spec, std::move(labels)});
    }
    return &space;
  };
  // Indices of the entries of `space` that `selector` may match (ascending).
  auto candidates = [](const Namespace& space,
                       const std::map<std::string, std::string>& selector) -> std::vector<size_t> {
    const std::vector<size_t>* best = nullptr;
    for (const auto& kv : selector) {
      auto it = space.by_label.find(kv);
      if (it == space.by_label.end()) return {};  // no entry has this label
      if (!best || it->second.size() < best->size()) best = &it->second;
    }
    if (best) return *best;
    std::vector<size_t> all(space.entries.size());
    for (size_t i = 0; i < all.size(); ++i) all[i] = i;
    return all;
  };
  for (const auto& res : snapshot.list(config::Kind::kServiceEntry)) {
    const auto* se = res->specAs<net::ServiceEntry>();
    if (!se) continue;
    const std::string& ns = res->metadata.ns;
    std::string origin = "ServiceEntry " + ns + "/" + res->metadata.name;
    if (previous && !rebuild->count(ns + "/" + res->metadata.name)) {
      if (auto it = kept.find(origin); it != kept.end()) {
        for (auto& svc : it->second) {
          sources_[svc.get()] = previous->sources_.at(svc.get());
          services_.push_back(std::move(svc));
        }
        continue;
      }
    }
    auto source = std::make_shared<Source>();
    for (const auto& ep : se->endpoints()) {
      if (ep.address().empty() || ep.address().rfind("unix://", 0) == 0) continue;
      source->workloads.push_back({ep, "inline"});
    }
    if (se->has_workload_selector()) {
      // Selection only within the ServiceEntry's namespace, as Istio does.
      auto selector = toMap(se->workload_selector().labels());
      const Namespace* in_ns = entriesOf(ns);
      for (size_t i : candidates(*in_ns, selector)) {
        const Entry& we = in_ns->entries[i];
        if (!labelsMatch(selector, we.labels)) continue;
        net::WorkloadEntry e = *we.spec;
        for (const auto& [k, v] : we.labels) (*e.mutable_labels())[k] = v;
        source->workloads.push_back(
            {std::move(e), "WorkloadEntry " + ns + "/" + we.resource->metadata.name});
      }
      for (const auto& wi : instances) {
        if (wi.ns != ns || wi.entry.address().empty()) continue;
        if (!labelsMatch(selector, toMap(wi.entry.labels()))) continue;
        source->workloads.push_back({wi.entry, "WorkloadGroup instance " + ns + "/" + wi.name});
      }
    }
    Resolution resolution = Resolution::kNone;
    switch (se->resolution()) {
      case net::ServiceEntry::STATIC:
        resolution = Resolution::kStatic;
        break;
      case net::ServiceEntry::DNS:
        resolution = Resolution::kDns;
        break;
      case net::ServiceEntry::DNS_ROUND_ROBIN:
        resolution = Resolution::kDnsRoundRobin;
        break;
      default:
        resolution = Resolution::kNone;
        break;
    }
    std::vector<ServicePort> ports;
    for (const auto& p : se->ports()) {
      ServicePort sp;
      sp.name = p.name();
      sp.number = p.number();
      sp.protocol =
          p.protocol().empty() ? protocolFromPortName(p.name()) : parseProtocol(p.protocol());
      sp.target_port = p.target_port();
      ports.push_back(sp);
    }
    for (const auto& host : se->hosts()) {
      auto svc = std::make_shared<Service>();
      // ServiceEntry hosts are taken literally (Istio does not expand them).
      svc->hostname = toLower(host);
      svc->ns = ns;
      svc->source = origin;
      svc->creation_timestamp = res->metadata.creation_timestamp;
      svc->addresses.assign(se->addresses().begin(), se->addresses().end());
      svc->ports = ports;
      svc->resolution = resolution;
      svc->location = se->location() == net::ServiceEntry::MESH_INTERNAL ? Location::kMeshInternal
                                                                         : Location::kMeshExternal;
      svc->export_to.assign(se->export_to().begin(), se->export_to().end());
      svc->subject_alt_names.assign(se->subject_alt_names().begin(), se->subject_alt_names().end());
      auto svc_source = source;
      // DNS services without endpoints resolve their own host name (not a wildcard).
      if (source->workloads.empty() && !se->has_workload_selector() &&
          (resolution == Resolution::kDns || resolution == Resolution::kDnsRoundRobin) &&
          svc->hostname.find('*') == std::string::npos) {
        auto own = std::make_shared<Source>();
        net::WorkloadEntry e;
        e.set_address(svc->hostname);
        own->workloads.push_back({std::move(e), "host"});
        svc_source = own;
      }
      sources_[svc.get()] = svc_source;
      services_.push_back(std::move(svc));
    }
  }
  std::stable_sort(services_.begin(), services_.end(), [](const auto& a, const auto& b) {
    return std::tie(a->hostname, a->ns) < std::tie(b->hostname, b->ns);
  });
}

std::vector<Endpoint> ServiceEntryRegistry::endpoints(const Service& service, uint32_t port) const {
  std::vector<Endpoint> out;
  auto it = sources_.find(&service);
  const ServicePort* sp = service.port(port);
  if (it == sources_.end() || !sp) return out;
  for (const auto& w : it->second->workloads) {
    const auto& e = w.entry;
    Endpoint ep;
    ep.address = e.address();
    ep.service_port = sp->number;
    // Port priority: the entry's ports map (by service port name) > targetPort > port number.
    if (auto pit = e.ports().find(sp->name); !sp->name.empty() && pit != e.ports().end()) {
      ep.port = pit->second;
    } else {
      ep.port = sp->target_port ? sp->target_port : sp->number;
    }
    ep.labels = toMap(e.labels());
    ep.service_account = e.service_account();
    ep.locality = e.locality();
    ep.weight = e.weight();
    ep.network = e.network();
    auto tls = ep.labels.find(std::string(kTlsModeLabel));
    ep.tls_istio = tls != ep.labels.end() ? tls->second == "istio" : !ep.service_account.empty();
    ep.workload = w.origin;
    out.push_back(std::move(ep));
  }
  return out;
}

}  // namespace mast::control::model
