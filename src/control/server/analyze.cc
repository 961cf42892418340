#include "control/server/analyze.h"

#include <map>
#include <set>

#include "control/model/host.h"
#include "istio/networking/v1alpha3/destination_rule.pb.h"
#include "istio/networking/v1alpha3/gateway.pb.h"
#include "istio/networking/v1alpha3/service_entry.pb.h"
#include "istio/networking/v1alpha3/virtual_service.pb.h"
#include "istio/networking/v1alpha3/workload_entry.pb.h"

namespace mast::control::server {

namespace net = istio::networking::v1alpha3;

std::string AnalysisMessage::toString() const {
  return level + " [" + code + "] (" + resource + ") " + message;
}

namespace {

struct Index {
  std::vector<std::string> service_hosts;                        // FQDNs / wildcards
  std::map<std::string, std::set<std::string>> subsets_by_host;  // resolved DR host → subsets
  std::set<std::string> gateways;                                // "ns/name"
};

Index buildIndex(const config::ConfigSnapshot& snap) {
  Index ix;
  for (const auto& r : snap.list(config::Kind::kServiceEntry)) {
    if (const auto* se = r->specAs<net::ServiceEntry>()) {
      for (const auto& h : se->hosts()) {
        ix.service_hosts.push_back(model::resolveShortName(h, r->metadata.ns));
      }
    }
  }
  for (const auto& r : snap.list(config::Kind::kDestinationRule)) {
    if (const auto* dr = r->specAs<net::DestinationRule>()) {
      auto& subsets = ix.subsets_by_host[model::resolveShortName(dr->host(), r->metadata.ns)];
      for (const auto& s : dr->subsets()) subsets.insert(s.name());
    }
  }
  for (const auto& r : snap.list(config::Kind::kGateway)) {
    ix.gateways.insert(r->metadata.ns + "/" + r->metadata.name);
  }
  return ix;
}

bool hostKnown(const Index& ix, const std::string& host) {
  for (const auto& h : ix.service_hosts) {
    if (model::hostMatches(h, host)) return true;
  }
  return false;
}

// The ports each known workload exposes, from the registry's point of view: a workload is a
// WorkloadEntry or an inline ServiceEntry endpoint; it exposes, for every port of every
// ServiceEntry it belongs to, the port it is reached on (the entry's `ports` map for that port
// name, else the ServiceEntry port's targetPort, else its number) — Istio's analyzer uses the
// Service's targetPort the same way.
struct Workload {
  std::map<std::string, std::string> labels;
  std::set<uint32_t> ports;
};

std::vector<Workload> knownWorkloads(const config::ConfigSnapshot& snap) {
  std::vector<Workload> out;
  auto reached = [](const net::ServicePort& p,
                    const google::protobuf::Map<std::string, uint32_t>& entry_ports) {
    auto it = entry_ports.find(p.name());
    if (it != entry_ports.end() && it->second != 0) return it->second;
    return p.target_port() != 0 ? p.target_port() : p.number();
  };
  std::map<std::string, Workload> entries;  // "ns/name" of WorkloadEntries
  for (const auto& r : snap.list(config::Kind::kWorkloadEntry)) {
    if (const auto* we = r->specAs<net::WorkloadEntry>()) {
      auto& w = entries[r->metadata.ns + "/" + r->metadata.name];
      w.labels = {we->labels().begin(), we->labels().end()};
    }
  }
  for (const auto& r : snap.list(config::Kind::kServiceEntry)) {
    const auto* se = r->specAs<net::ServiceEntry>();
    if (!se) continue;
    for (const auto& ep : se->endpoints()) {
      Workload w;
      w.labels = {ep.labels().begin(), ep.labels().end()};
      for (const auto& p : se->ports()) w.ports.insert(reached(p, ep.ports()));
      out.push_back(std::move(w));
    }
    if (!se->has_workload_selector()) continue;
    std::map<std::string, std::string> selector(se->workload_selector().labels().begin(),
                                                se->workload_selector().labels().end());
    for (const auto& we : snap.list(config::Kind::kWorkloadEntry, r->metadata.ns)) {
      const auto* spec = we->specAs<net::WorkloadEntry>();
      auto& w = entries[we->metadata.ns + "/" + we->metadata.name];
      if (!spec || !model::labelsMatch(selector, w.labels)) continue;
      for (const auto& p : se->ports()) w.ports.insert(reached(p, spec->ports()));
    }
  }
  for (auto& [_, w] : entries) out.push_back(std::move(w));
  return out;
}

// IST0104: a Gateway server port that the workloads its selector picks do not expose. Only
// workloads the registry knows are checked: a gateway proxy that is no WorkloadEntry/endpoint
// (a standalone mast-proxy router) listens wherever its Gateway says, so there is nothing to
// compare with.
void checkGatewayPorts(const config::ConfigSnapshot& snap, std::vector<AnalysisMessage>& out) {
  auto workloads = knownWorkloads(snap);
  for (const auto& r : snap.list(config::Kind::kGateway)) {
    const auto* gw = r->specAs<net::Gateway>();
    if (!gw) continue;
    std::map<std::string, std::string> selector(gw->selector().begin(), gw->selector().end());
    std::set<uint32_t> exposed;
    bool any = false;
    for (const auto& w : workloads) {
      if (selector.empty() || !model::labelsMatch(selector, w.labels)) continue;
      any = true;
      exposed.insert(w.ports.begin(), w.ports.end());
    }
    if (!any) continue;
    std::string sel;
    for (const auto& [k, v] : selector) sel += (sel.empty() ? "" : ",") + k + "=" + v;
    std::set<uint32_t> reported;
    for (const auto& server : gw->servers()) {
      uint32_t port = server.port().number();
      if (exposed.count(port) || !reported.insert(port).second) continue;
      out.push_back({"Error", "IST0104", "Gateway " + r->metadata.ns + "/" + r->metadata.name,
                     "The gateway refers to a port that is not exposed on the workload (pod "
                     "selector " +
                         sel + "; port " + std::to_string(port) + ")"});
    }
  }
}

}  // namespace

std::vector<AnalysisMessage> analyze(const config::ConfigSnapshot& snap) {
  std::vector<AnalysisMessage> out;
  Index ix = buildIndex(snap);
  checkGatewayPorts(snap, out);
  // host → VirtualServices bound to the mesh (IST0109).
  std::map<std::string, std::vector<std::string>> mesh_hosts;
  for (const auto& r : snap.list(config::Kind::kVirtualService)) {
    const auto* vs = r->specAs<net::VirtualService>();
    if (!vs) continue;
    const std::string& ns = r->metadata.ns;
    std::string who = "VirtualService " + ns + "/" + r->metadata.name;
    bool mesh = vs->gateways().empty();
    for (const auto& g : vs->gateways()) {
      if (g == "mesh") {
        mesh = true;
        continue;
      }
      std::string key = g.find('/') == std::string::npos ? ns + "/" + g : g;
      if (key.rfind("./", 0) == 0) key = ns + key.substr(1);
      if (!ix.gateways.count(key)) {
        out.push_back({"Error", "IST0101", who, "Referenced gateway not found: \"" + g + "\""});
      }
    }
    if (mesh) {
      for (const auto& h : vs->hosts())
        mesh_hosts[model::resolveShortName(h, ns)].push_back(ns + "/" + r->metadata.name);
    }
    auto checkDestination = [&](const net::Destination& d) {
      std::string host = model::resolveShortName(d.host(), ns);
      if (!hostKnown(ix, host)) {
        out.push_back({"Error", "IST0101", who, "Referenced host not found: \"" + d.host() + "\""});
        return;
      }
      if (!d.subset().empty()) {
        auto it = ix.subsets_by_host.find(host);
        if (it == ix.subsets_by_host.end() || !it->second.count(d.subset())) {
          out.push_back({"Error", "IST0101", who,
                         "Referenced host+subset in destinationrule not found: \"" + d.host() +
                             "+" + d.subset() + "\""});
        }
      }
    };
    // A delegate that does not exist: mastd drops the delegating route (Istio does the same).
    auto checkDelegate = [&](const net::Delegate& d) {
      std::string target_ns = d.namespace_().empty() ? ns : d.namespace_();
      if (!snap.get(config::Kind::kVirtualService, target_ns, d.name())) {
        out.push_back({"Error", "IST0101", who,
                       "Referenced delegate VirtualService not found: \"" + target_ns + "/" +
                           d.name() + "\""});
      }
    };
    for (const auto& http : vs->http()) {
      for (const auto& rd : http.route()) checkDestination(rd.destination());
      if (http.has_mirror()) checkDestination(http.mirror());
      if (http.has_delegate()) checkDelegate(http.delegate());
    }
    for (const auto& tcp : vs->tcp()) {
      for (const auto& rd : tcp.route()) checkDestination(rd.destination());
    }
    for (const auto& tls : vs->tls()) {
      for (const auto& rd : tls.route()) checkDestination(rd.destination());
    }
  }
  for (const auto& [host, names] : mesh_hosts) {
    if (names.size() < 2 || host == "*") continue;
    std::string list;
    for (const auto& n : names) list += (list.empty() ? "" : ",") + n;
    out.push_back({"Error", "IST0109", "VirtualService " + names.front(),
                   "The VirtualServices " + list + " associated with mesh define the same host " +
                       host +
                       " which can lead to undefined behavior. This can be fixed by merging the "
                       "conflicting VirtualServices into a single resource."});
  }
  return out;
}

}  // namespace mast::control::server
