#include <nlohmann/json.hpp>
#include <ostream>

#include "cli/client.h"
#include "cli/commands.h"
#include "cli/proxy_target.h"

namespace mast::cli {

namespace {

using json = nlohmann::json;

std::string pad(const std::string& s, size_t w) {
  return s.size() >= w ? s + " " : s + std::string(w - s.size(), ' ');
}

std::string typeOf(const json& c) {
  std::string t = c.value("@type", "");
  return t.substr(t.rfind('.') + 1);
}

// Every element of `field` in the config_dump section of type `section`, unwrapped from the
// static/dynamic envelopes into the resource itself.
std::vector<json> resources(const json& dump, const std::string& section,
                            const std::vector<std::pair<std::string, std::string>>& fields) {
  std::vector<json> out;
  for (const auto& c : dump["configs"]) {
    if (typeOf(c) != section) continue;
    for (const auto& [field, inner] : fields) {
      if (!c.contains(field)) continue;
      for (const auto& e : c[field]) {
        const json* r = &e;
        for (size_t start = 0; start < inner.size();) {
          size_t dot = inner.find('.', start);
          std::string key =
              inner.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
          if (!r->contains(key)) {
            r = nullptr;
            break;
          }
          r = &(*r)[key];
          start = dot == std::string::npos ? inner.size() : dot + 1;
        }
        if (r) out.push_back(*r);
      }
    }
  }
  return out;
}

std::string joinStrings(const json& arr, size_t max = 3) {
  std::string s;
  size_t n = 0;
  for (const auto& v : arr) {
    if (n++ == max) {
      s += " + " + std::to_string(arr.size() - max) + " more...";
      break;
    }
    s += (s.empty() ? "" : ", ") + v.get<std::string>();
  }
  return s;
}

}  // namespace

int proxyConfig(const GlobalOptions& g, const std::string& proxy, const std::string& admin,
                const std::string& type, const std::string& output, std::ostream& out,
                std::ostream& err) {
  if (type != "cluster" && type != "listener" && type != "route" && type != "endpoint" &&
      type != "bootstrap") {
    err << "error: unknown type '" << type << "' (cluster, listener, route, endpoint, bootstrap)\n";
    return 2;
  }
  AdminRoute route;
  if (!admin.empty() || proxy.empty()) {
    // --admin wins; without either, the admin of the proxy beside mastctl (run inside its
    // network namespace).
    route.address = route.where = admin.empty() ? "127.0.0.1:15000" : admin;
  } else {
    auto target = resolveProxy(g.mastd, proxy);
    if (!target) {
      err << "error: " << target.error() << "\n";
      return 1;
    }
    auto located = locateAdmin(*target);
    if (!located) {
      err << "error: proxy " << target->id << ": " << located.error() << "\n";
      return 1;
    }
    route = *located;
    // The admin reached must be that proxy's: another proxy on the same address (several on
    // one host, an admin port the node metadata did not announce) would show the wrong config.
    auto info = fetchFromProxy(route, "/server_info");
    if (!info) {
      err << "error: proxy " << target->id << ": " << info.error() << "\n";
      return 1;
    }
    json si = json::parse(info->body, nullptr, false);
    std::string id = si.is_object() && si.contains("node") && si["node"].is_object()
                         ? si["node"].value("id", "")
                         : "";
    if (info->status != 200 || id != target->id) {
      err << "error: the proxy admin at " << route.where << " is "
          << (id.empty() ? "not a mast-proxy/Envoy admin" : "node " + id) << ", not " << target->id
          << " (use --admin HOST:PORT)\n";
      return 1;
    }
  }
  std::string path = type == "endpoint" ? "/clusters?format=json" : "/config_dump";
  auto r = fetchFromProxy(route, path);
  if (!r) {
    err << "error: " << r.error() << "\n";
    return 1;
  }
  if (r->status != 200) {
    err << "error: proxy admin at " << route.where << " answered " << r->status << "\n";
    return 1;
  }
  json dump = json::parse(r->body, nullptr, false);
  if (dump.is_discarded()) {
    err << "error: proxy admin at " << route.where << " sent invalid JSON\n";
    return 1;
  }
  if (type == "endpoint") {
    if (output == "json") {
      out << dump.dump(2) << "\n";
      return 0;
    }
    out << pad("ENDPOINT", 24) << pad("STATUS", 10) << pad("OUTLIER CHECK", 15) << "CLUSTER\n";
    for (const auto& c : dump["cluster_statuses"]) {
      for (const auto& h : c.value("host_statuses", json::array())) {
        const auto& sa = h["address"]["socket_address"];
        std::string ep = sa.value("address", "") + ":" + std::to_string(sa.value("port_value", 0));
        const auto& hs = h["health_status"];
        bool outlier = hs.value("failed_outlier_check", false);
        std::string status = hs.value("eds_health_status", "HEALTHY");
        if (hs.value("failed_active_health_check", false)) status = "UNHEALTHY";
        out << pad(ep, 24) << pad(status, 10) << pad(outlier ? "FAILED" : "OK", 15)
            << c.value("name", "") << "\n";
      }
    }
    return 0;
  }
  std::vector<json> items;
  if (type == "cluster") {
    items = resources(dump, "ClustersConfigDump",
                      {{"static_clusters", "cluster"}, {"dynamic_active_clusters", "cluster"}});
  } else if (type == "listener") {
    items = resources(
        dump, "ListenersConfigDump",
        {{"static_listeners", "listener"}, {"dynamic_listeners", "active_state.listener"}});
  } else if (type == "route") {
    items = resources(
        dump, "RoutesConfigDump",
        {{"static_route_configs", "route_config"}, {"dynamic_route_configs", "route_config"}});
  } else {  // bootstrap: the JSON itself, as istioctl prints it
    for (const auto& c : dump["configs"]) {
      if (typeOf(c) == "BootstrapConfigDump") out << c["bootstrap"].dump(2) << "\n";
    }
    return 0;
  }
  if (output == "json") {
    out << json(items).dump(2) << "\n";
    return 0;
  }
  if (type == "cluster") {
    out << pad("SERVICE FQDN", 48) << pad("PORT", 7) << pad("SUBSET", 10) << pad("DIRECTION", 11)
        << "TYPE\n";
    for (const auto& c : items) {
      std::string name = c.value("name", "");
      std::string type_name = c.value("type", "STATIC");
      if (c.contains("cluster_type")) type_name = "CLUSTER_TYPE";
      // outbound|9080|v1|reviews.default.svc.cluster.local
      std::vector<std::string> parts;
      for (size_t s = 0;;) {
        size_t bar = name.find('|', s);
        parts.push_back(name.substr(s, bar == std::string::npos ? std::string::npos : bar - s));
        if (bar == std::string::npos) break;
        s = bar + 1;
      }
      if (parts.size() == 4) {
        out << pad(parts[3].empty() ? "-" : parts[3], 48) << pad(parts[1], 7)
            << pad(parts[2].empty() ? "-" : parts[2], 10) << pad(parts[0], 11) << type_name << "\n";
      } else {
        out << pad(name, 48) << pad("-", 7) << pad("-", 10) << pad("-", 11) << type_name << "\n";
      }
    }
  } else if (type == "listener") {
    out << pad("NAME", 24) << pad("ADDRESS", 16) << pad("PORT", 7) << pad("MATCH", 32)
        << "DESTINATION\n";
    for (const auto& l : items) {
      const auto& sa = l["address"]["socket_address"];
      auto chains = l.value("filter_chains", json::array());
      if (l.contains("default_filter_chain")) chains.push_back(l["default_filter_chain"]);
      if (l.contains("api_listener")) {
        out << pad(l.value("name", ""), 24) << pad("-", 16) << pad("-", 7) << pad("ALL", 32)
            << "api_listener (proxyless gRPC)\n";
        continue;
      }
      for (const auto& fc : chains) {
        std::string match;
        const auto& m = fc.value("filter_chain_match", json::object());
        if (m.contains("destination_port"))
          match += "port " + std::to_string(m["destination_port"].get<int>());
        if (m.contains("transport_protocol"))
          match += (match.empty() ? "" : "; ") + std::string("Trans: ") +
                   m["transport_protocol"].get<std::string>();
        if (m.contains("server_names"))
          match += (match.empty() ? "" : "; ") + ("SNI: " + joinStrings(m["server_names"]));
        if (match.empty()) match = "ALL";
        std::string dest;
        for (const auto& f : fc.value("filters", json::array())) {
          const auto& tc = f.value("typed_config", json::object());
          if (tc.contains("rds"))
            dest = "Route: " + tc["rds"].value("route_config_name", "");
          else if (tc.contains("route_config"))
            dest = "Inline Route: " + tc["route_config"].value("name", "");
          else if (tc.contains("cluster"))
            dest = "Cluster: " + tc["cluster"].get<std::string>();
        }
        out << pad(l.value("name", ""), 24) << pad(sa.value("address", ""), 16)
            << pad(std::to_string(sa.value("port_value", 0)), 7) << pad(match, 32) << dest << "\n";
      }
    }
  } else if (type == "route") {
    out << pad("NAME", 24) << pad("VHOST NAME", 48) << pad("DOMAINS", 48) << "MATCH\n";
    for (const auto& rc : items) {
      for (const auto& vh : rc.value("virtual_hosts", json::array())) {
        for (const auto& rt : vh.value("routes", json::array())) {
          const auto& m = rt.value("match", json::object());
          std::string match = m.contains("prefix")       ? m["prefix"].get<std::string>() + "*"
                              : m.contains("path")       ? m["path"].get<std::string>()
                              : m.contains("safe_regex") ? m["safe_regex"].value("regex", "")
                                                         : "/*";
          out << pad(rc.value("name", ""), 24) << pad(vh.value("name", ""), 48)
              << pad(joinStrings(vh.value("domains", json::array()), 2), 48) << match << "\n";
        }
      }
    }
  }
  return 0;
}

}  // namespace mast::cli
