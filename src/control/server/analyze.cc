#include "control/server/analyze.h"

#include <map>
#include <set>

#include "control/model/host.h"
#include "istio/networking/v1alpha3/destination_rule.pb.h"
#include "istio/networking/v1alpha3/gateway.pb.h"
#include "istio/networking/v1alpha3/service_entry.pb.h"
#include "istio/networking/v1alpha3/virtual_service.pb.h"

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

}  // namespace

std::vector<AnalysisMessage> analyze(const config::ConfigSnapshot& snap) {
  std::vector<AnalysisMessage> out;
  Index ix = buildIndex(snap);
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
    for (const auto& http : vs->http()) {
      for (const auto& rd : http.route()) checkDestination(rd.destination());
      if (http.has_mirror()) checkDestination(http.mirror());
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
