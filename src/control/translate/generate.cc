#include "control/translate/generate.h"

#include <algorithm>
#include <cstdlib>
#include <set>

#include "control/config/resource.h"
#include "control/model/host.h"
#include "control/translate/context.h"
#include "envoy/extensions/access_loggers/file/v3/file.pb.h"
#include "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.pb.h"

namespace mast::control::translate {

namespace detail {

std::string outboundClusterName(uint32_t port, std::string_view subset, std::string_view host) {
  return "outbound|" + std::to_string(port) + "|" + std::string(subset) + "|" + std::string(host);
}

bool proxylessReachable(const Ctx& ctx, const VisiblePort& vp) {
  return vp.service->resolution != model::Resolution::kNone ||
         !ctx.mesh.registry().endpoints(*vp.service, vp.port->number).empty();
}

std::string inboundClusterName(uint32_t port) { return "inbound|" + std::to_string(port) + "||"; }

google::protobuf::Duration durationMs(int64_t ms) {
  google::protobuf::Duration d;
  d.set_seconds(ms / 1000);
  d.set_nanos(static_cast<int32_t>((ms % 1000) * 1000000));
  return d;
}

const model::EffectiveDestinationRule* Ctx::destinationRule(const model::Service& svc) const {
  auto it = dr_cache.find(&svc);
  if (it == dr_cache.end()) {
    it = dr_cache.emplace(&svc, mesh.destinationRule(ns, proxy.labels, svc)).first;
  }
  return it->second ? &*it->second : nullptr;
}

const model::Service* Ctx::service(std::string_view host) const {
  return mesh.findService(host, ns);
}

bool Ctx::inScope(const model::Service& svc) const {
  for (const auto& p : ports) {
    if (p.service == &svc) return true;
  }
  return false;
}

namespace {

std::vector<std::string> splitDots(std::string_view s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    size_t d = s.find('.', start);
    out.emplace_back(s.substr(start, d == std::string_view::npos ? s.npos : d - start));
    if (d == std::string_view::npos) break;
    start = d + 1;
  }
  return out;
}

std::string join(const std::vector<std::string>& parts, size_t from, size_t to) {
  std::string out;
  for (size_t i = from; i < to; ++i) {
    if (!out.empty()) out += '.';
    out += parts[i];
  }
  return out;
}

}  // namespace

std::vector<std::string> serviceDomains(const Ctx& ctx, const model::Service& svc, uint32_t port,
                                        bool with_port) {
  std::vector<std::string> names;
  const std::string& host = svc.hostname;
  names.push_back(host);
  if (host.find('*') == std::string::npos) {
    names.push_back(host + ".");  // absolute FQDN (Istio 1.27+)
    // Istio's generateAltVirtualHosts: the labels the host shares with the proxy's DNS domain
    // can be left out by clients (search domains), so the unique prefix is a valid name.
    auto h = splitDots(host);
    auto d = splitDots(ctx.dns_domain);
    size_t shared = 0;
    while (shared < h.size() - 1 && shared < d.size() &&
           h[h.size() - 1 - shared] == d[d.size() - 1 - shared]) {
      ++shared;
    }
    if (shared > 0) {
      size_t unique = h.size() - shared;
      std::string unique_name = join(h, 0, unique);
      names.push_back(unique_name);
      if (unique == 1 && shared == d.size() && d.size() >= 2 && d[1] == "svc") {
        // Same Kubernetes namespace: "reviews", "reviews.default.svc", "reviews.default".
        names.push_back(unique_name + "." + d[0] + ".svc");
        names.push_back(unique_name + "." + d[0]);
      } else if (unique == 2) {
        // "reviews.default" seen from another namespace also answers as "reviews.default.svc".
        names.push_back(unique_name + "." + h[unique]);
      }
    }
  }
  for (const auto& a : svc.addresses) {
    if (model::isIpAddress(a))
      names.push_back(a.find(':') != std::string::npos ? "[" + a + "]" : a);
  }
  std::vector<std::string> out;
  std::set<std::string> seen;
  for (const auto& n : names) {
    if (seen.insert(n).second) out.push_back(n);
    if (with_port) {
      std::string p = n + ":" + std::to_string(port);
      if (seen.insert(p).second) out.push_back(p);
    }
  }
  return out;
}

namespace {

// Sidecar egress scoping (spec §8.4): "ns/dnsName" host entries per egress listener; a listener
// with a port limits those services to that port. No Sidecar = "*/*".
std::vector<VisiblePort> scopedPorts(const Ctx& ctx, const model::SidecarInfo* sidecar) {
  std::vector<VisiblePort> out;
  // One service per hostname (cluster and vhost names are per hostname): the one in the
  // proxy's namespace, else the oldest definition (Istio's rule for duplicate hosts).
  std::vector<const model::Service*> visible;
  {
    std::map<std::string, const model::Service*> by_host;
    for (const auto* svc : ctx.mesh.servicesVisibleTo(ctx.ns)) {
      auto [it, inserted] = by_host.emplace(svc->hostname, svc);
      if (inserted || it->second->ns == ctx.ns) continue;
      if (svc->ns == ctx.ns || svc->creation_timestamp < it->second->creation_timestamp) {
        it->second = svc;
      }
    }
    for (const auto& [_, svc] : by_host) visible.push_back(svc);
  }
  std::set<std::pair<const model::Service*, uint32_t>> taken;
  auto add = [&](const model::Service* svc, const model::ServicePort& p) {
    if (p.protocol == model::Protocol::kUdp) return;  // never a listener or a cluster
    if (taken.insert({svc, p.number}).second) out.push_back({svc, &p});
  };
  if (!sidecar || sidecar->spec->egress().empty()) {
    for (const auto* svc : visible) {
      for (const auto& p : svc->ports) add(svc, p);
    }
  } else {
    for (const auto& egress : sidecar->spec->egress()) {
      uint32_t only_port = egress.has_port() ? egress.port().number() : 0;
      for (const auto& entry : egress.hosts()) {
        auto slash = entry.find('/');
        if (slash == std::string::npos || entry.find('/', slash + 1) != std::string::npos) continue;
        std::string ns = entry.substr(0, slash);
        std::string dns = entry.substr(slash + 1);
        if (ns == ".") ns = ctx.ns;
        if (ns == "~") continue;  // "~/*": import nothing
        for (const auto* svc : visible) {
          if (ns != "*" && svc->ns != ns) continue;
          if (!model::hostMatches(dns, svc->hostname)) continue;
          for (const auto& p : svc->ports) {
            if (only_port == 0 || p.number == only_port) add(svc, p);
          }
        }
      }
    }
  }
  if (sidecar && !sidecar->spec->egress().empty()) {
    // Services that imported VirtualServices route to are imported too (Istio does the same),
    // so a VirtualService never points at a cluster the proxy lacks.
    std::set<const model::Service*> scoped;
    for (const auto& vp : out) scoped.insert(vp.service);
    for (const auto* vs : ctx.mesh.virtualServices(model::kMeshGateway, ctx.ns)) {
      bool imported = false;
      for (const auto& h : vs->hosts) {
        for (const auto* svc : scoped) imported = imported || model::hostMatches(h, svc->hostname);
      }
      if (!imported) continue;
      auto addHost = [&](const std::string& host) {
        std::string fqdn = vs->resolveHost(host);
        for (const auto* svc : visible) {
          if (svc->hostname != fqdn) continue;
          for (const auto& p : svc->ports) add(svc, p);
        }
      };
      // Delegate routes included: their hosts are already resolved in their own namespace.
      for (const auto* route : ctx.httpRoutes(*vs)) {
        const auto& hr = *route;
        for (const auto& d : hr.route()) addHost(d.destination().host());
        if (hr.has_mirror()) addHost(hr.mirror().host());
        for (const auto& m : hr.mirrors()) addHost(m.destination().host());
      }
      for (const auto& tr : vs->spec->tcp()) {
        for (const auto& d : tr.route()) addHost(d.destination().host());
      }
      for (const auto& tr : vs->spec->tls()) {
        for (const auto& d : tr.route()) addHost(d.destination().host());
      }
    }
  }
  std::stable_sort(out.begin(), out.end(), [](const VisiblePort& a, const VisiblePort& b) {
    return std::tie(a.service->hostname, a.service->ns, a.port->number) <
           std::tie(b.service->hostname, b.service->ns, b.port->number);
  });
  return out;
}

std::vector<InboundPort> serviceInboundPorts(const Ctx& ctx);

// A Sidecar's `ingress` entries replace the ports derived from services (spec §2.4): each one
// forwards port.number to defaultEndpoint ("127.0.0.1:8080"; "0.0.0.0:8080" = the workload's own
// address). The service that declares the port, if any, still names the route's decorator and
// brings its DestinationRule's connection pool.
std::vector<InboundPort> inboundPorts(const Ctx& ctx) {
  if (!ctx.sidecar || ctx.sidecar->spec->ingress().empty()) return serviceInboundPorts(ctx);
  std::vector<InboundPort> derived = serviceInboundPorts(ctx);
  std::vector<InboundPort> out;
  std::set<uint32_t> seen;
  for (const auto& in : ctx.sidecar->spec->ingress()) {
    if (!in.has_port() || in.port().number() == 0 || !seen.insert(in.port().number()).second)
      continue;
    auto port = std::make_shared<model::ServicePort>();
    port->number = in.port().number();
    port->name = in.port().name();
    port->protocol = in.port().protocol().empty() ? model::protocolFromPortName(in.port().name())
                                                  : model::parseProtocol(in.port().protocol());
    InboundPort ip{nullptr, port.get(), port->number, ctx.proxy.ip};
    ip.ingress_port = port;
    for (const auto& d : derived) {
      if (d.target_port == port->number || d.service_port->number == port->number) {
        ip.service = d.service;
        break;
      }
    }
    const std::string& ep = in.default_endpoint();
    auto colon = ep.rfind(':');
    if (colon != std::string::npos && ep.rfind("unix://", 0) != 0) {
      std::string host = ep.substr(0, colon);
      if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
        host = host.substr(1, host.size() - 2);
      }
      if (host != "0.0.0.0" && host != "::" && !host.empty()) ip.address = host;
      ip.endpoint_port = static_cast<uint32_t>(std::strtoul(ep.c_str() + colon + 1, nullptr, 10));
    }
    if (in.capture_mode() == istio::networking::v1alpha3::NONE) {
      ip.bound = true;
      ip.bind = in.bind().empty() ? "0.0.0.0" : in.bind();
    }
    out.push_back(std::move(ip));
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const auto& a, const auto& b) { return a.target_port < b.target_port; });
  return out;
}

// The proxy's own service instances: endpoints registered with one of its IPs.
std::vector<InboundPort> serviceInboundPorts(const Ctx& ctx) {
  std::vector<InboundPort> out;
  std::set<uint32_t> seen;
  std::vector<std::string> ips = ctx.proxy.ips;
  if (ips.empty() && !ctx.proxy.ip.empty()) ips.push_back(ctx.proxy.ip);
  if (ips.empty()) return out;
  if (ctx.index) {
    // The same walk, precomputed: the instances at each of the proxy's addresses, in walk order.
    std::sort(ips.begin(), ips.end());
    ips.erase(std::unique(ips.begin(), ips.end()), ips.end());
    std::vector<const MeshIndex::Instance*> found;
    for (const auto& ip : ips) {
      if (const auto* list = ctx.index->instancesAt(ip)) {
        for (const auto& i : *list) found.push_back(&i);
      }
    }
    std::sort(found.begin(), found.end(),
              [](const auto* a, const auto* b) { return a->order < b->order; });
    for (const auto* i : found) {
      if (seen.insert(i->target_port).second) {
        out.push_back({i->service, i->port, i->target_port, i->address});
      }
    }
    std::stable_sort(out.begin(), out.end(),
                     [](const auto& a, const auto& b) { return a.target_port < b.target_port; });
    return out;
  }
  // Oldest service first: it wins a target port claimed twice (Istio's rule).
  std::vector<const model::Service*> services;
  for (const auto& s : ctx.mesh.registry().services()) services.push_back(s.get());
  std::stable_sort(services.begin(), services.end(), [](const auto* a, const auto* b) {
    return a->creation_timestamp < b->creation_timestamp;
  });
  for (const auto* svc : services) {
    for (const auto& sp : svc->ports) {
      if (sp.protocol == model::Protocol::kUdp) continue;
      for (const auto& ep : ctx.mesh.registry().endpoints(*svc, sp.number)) {
        if (std::find(ips.begin(), ips.end(), ep.address) == ips.end()) continue;
        if (ep.port == kVirtualInboundPort || ep.port == kVirtualOutboundPort) continue;
        if (seen.insert(ep.port).second) out.push_back({svc, &sp, ep.port, ep.address});
      }
    }
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const auto& a, const auto& b) { return a.target_port < b.target_port; });
  return out;
}

}  // namespace

}  // namespace detail

namespace {

// Istio's default text format for meshConfig.accessLogFile (TEXT encoding).
constexpr char kIstioAccessLogFormat[] =
    "[%START_TIME%] \"%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%\" "
    "%RESPONSE_CODE% %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS% "
    "\"%UPSTREAM_TRANSPORT_FAILURE_REASON%\" %BYTES_RECEIVED% %BYTES_SENT% %DURATION% "
    "%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% \"%REQ(X-FORWARDED-FOR)%\" \"%REQ(USER-AGENT)%\" "
    "\"%REQ(X-REQUEST-ID)%\" \"%REQ(:AUTHORITY)%\" \"%UPSTREAM_HOST%\" %UPSTREAM_CLUSTER% "
    "%UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS% "
    "%REQUESTED_SERVER_NAME% %ROUTE_NAME%\n";

// meshConfig.accessLogFile: every HTTP connection manager of the proxy logs there, in
// meshConfig.accessLogFormat or Istio's default format.
void addAccessLogs(const model::MeshModel& mesh, ProxyResources& out) {
  const auto& mc = mesh.meshConfig();
  if (mc.access_log_file().empty()) return;
  namespace hcmv3 = envoy::extensions::filters::network::http_connection_manager::v3;
  envoy::extensions::access_loggers::file::v3::FileAccessLog file;
  file.set_path(mc.access_log_file());
  file.mutable_log_format()->mutable_text_format_source()->set_inline_string(
      mc.access_log_format().empty() ? kIstioAccessLogFormat : mc.access_log_format());
  auto patch = [&](envoy::config::listener::v3::FilterChain& fc) {
    for (auto& f : *fc.mutable_filters()) {
      hcmv3::HttpConnectionManager h;
      if (!f.typed_config().UnpackTo(&h)) continue;
      auto* log = h.add_access_log();
      log->set_name("envoy.access_loggers.file");
      log->mutable_typed_config()->PackFrom(file);
      f.mutable_typed_config()->PackFrom(h);
    }
  };
  for (auto& l : out.listeners) {
    for (auto& fc : *l.mutable_filter_chains()) patch(fc);
    if (l.has_default_filter_chain()) patch(*l.mutable_default_filter_chain());
  }
}

}  // namespace

namespace {

ProxyResources generatePart(const model::MeshModel& mesh, const xds::ProxyInfo& proxy,
                            detail::Part part, const MeshIndex* index = nullptr,
                            const SharedSelection& selection = {}) {
  using namespace detail;
  ProxyResources out;
  Ctx ctx{mesh, proxy};
  ctx.part = part;
  ctx.index = index;
  ctx.selection = selection;
  if (proxy.proxyless) {
    ctx.flavor = Flavor::kProxyless;
  } else if (proxy.type == xds::ProxyType::kSidecar) {
    ctx.flavor = Flavor::kSidecar;
  } else if (proxy.type == xds::ProxyType::kRouter) {
    ctx.flavor = Flavor::kGateway;
  } else {
    return out;
  }
  ctx.ns = proxy.namespace_.empty() ? "default" : proxy.namespace_;
  ctx.dns_domain = proxy.dns_domain.empty() ? ctx.ns + ".svc." + mesh.domainSuffix()
                                            : model::toLower(proxy.dns_domain);
  ctx.allow_any = !mesh.meshConfig().has_outbound_traffic_policy() ||
                  mesh.meshConfig().outbound_traffic_policy().mode() !=
                      istio::mesh::v1alpha1::MeshConfig::OutboundTrafficPolicy::REGISTRY_ONLY;
  // Sidecar resources scope sidecars and proxyless clients; gateways see every exported service.
  const model::SidecarInfo* sidecar = nullptr;
  if (ctx.flavor != Flavor::kGateway) {
    sidecar = mesh.sidecarFor(ctx.ns, proxy.labels);
    ctx.sidecar = sidecar;
    if (sidecar && sidecar->spec->has_outbound_traffic_policy()) {
      ctx.allow_any = sidecar->spec->outbound_traffic_policy().mode() ==
                      istio::networking::v1alpha3::OutboundTrafficPolicy::ALLOW_ANY;
    }
  }
  if (part == Part::kInbound) {
    // Only the proxy's own workload: inbound clusters and virtualInbound (sidecars only).
    if (ctx.flavor != Flavor::kSidecar) return out;
    ctx.inbound = inboundPorts(ctx);
    buildInboundClusters(ctx, out);
    buildVirtualInbound(ctx, out);
    addAccessLogs(mesh, out);
    return out;
  }
  ctx.ports = scopedPorts(ctx, sidecar);
  if (ctx.flavor == Flavor::kSidecar && part == Part::kAll) ctx.inbound = inboundPorts(ctx);

  const SharedSelection& sel = ctx.selection;
  if (sel.clusters) buildClusters(ctx, out);
  switch (ctx.flavor) {
    case Flavor::kSidecar:
      if (sel.listeners) buildSidecarListeners(ctx, out);
      if (sel.routes) buildSidecarRoutes(ctx, out);
      break;
    case Flavor::kGateway:
      // Routes and listeners come out of one walk over the servers; drop what was not asked.
      if (sel.listeners || sel.routes) buildGatewayRoutesAndListeners(ctx, out);
      if (!sel.listeners) out.listeners.clear();
      if (!sel.routes) out.routes.clear();
      break;
    case Flavor::kProxyless:
      if (sel.listeners) buildProxylessListeners(ctx, out);
      if (sel.routes) buildProxylessRoutes(ctx, out);
      break;
  }
  // A name must be unique per type (xDS keys resources by name); conflicting definitions,
  // e.g. two gateway servers with the same port name, keep the first, as istiod does.
  auto dedupe = [](auto& list, auto name_of) {
    std::set<std::string> seen;
    std::erase_if(list, [&](const auto& r) { return !seen.insert(name_of(r)).second; });
  };
  dedupe(out.listeners, [](const auto& l) { return l.name(); });
  dedupe(out.routes, [](const auto& r) { return r.name(); });
  dedupe(out.clusters, [](const auto& c) { return c.name(); });
  dedupe(out.endpoints, [](const auto& e) { return e.cluster_name(); });
  if (ctx.flavor != Flavor::kProxyless) addAccessLogs(mesh, out);
  return out;
}

void collectSelector(const google::protobuf::Map<std::string, std::string>& m,
                     std::set<model::Labels>& out) {
  if (!m.empty()) out.insert(model::Labels(m.begin(), m.end()));
}

}  // namespace

ProxyResources generate(const model::MeshModel& mesh, const xds::ProxyInfo& proxy) {
  return generatePart(mesh, proxy, detail::Part::kAll);
}

ProxyResources generateShared(const model::MeshModel& mesh, const xds::ProxyInfo& proxy) {
  return generatePart(mesh, proxy, detail::Part::kShared);
}

ProxyResources generateShared(const model::MeshModel& mesh, const xds::ProxyInfo& proxy,
                              const SharedSelection& selection) {
  return generatePart(mesh, proxy, detail::Part::kShared, nullptr, selection);
}

ProxyResources generateInbound(const model::MeshModel& mesh, const xds::ProxyInfo& proxy,
                               const MeshIndex* index) {
  return generatePart(mesh, proxy, detail::Part::kInbound, index);
}

MeshIndex::MeshIndex(const model::MeshModel& mesh) : mesh_(mesh) {
  // inboundPorts()'s walk, once: oldest service first, ports in order, endpoints in order.
  std::vector<const model::Service*> services;
  for (const auto& s : mesh.registry().services()) services.push_back(s.get());
  std::stable_sort(services.begin(), services.end(), [](const auto* a, const auto* b) {
    return a->creation_timestamp < b->creation_timestamp;
  });
  size_t order = 0;
  for (const auto* svc : services) {
    for (const auto& sp : svc->ports) {
      if (sp.protocol == model::Protocol::kUdp) continue;
      for (const auto& ep : mesh.registry().endpoints(*svc, sp.number)) {
        if (ep.port == detail::kVirtualInboundPort || ep.port == detail::kVirtualOutboundPort) {
          continue;
        }
        by_address_[ep.address].push_back({svc, &sp, ep.port, ep.address, order++});
      }
    }
  }

  namespace net = istio::networking::v1alpha3;
  std::set<model::Labels> selectors;
  for (const auto& [key, r] : mesh.snapshot().resources()) {
    switch (key.kind) {
      case config::Kind::kVirtualService:
        if (const auto* vs = r->specAs<net::VirtualService>()) {
          for (const auto& h : vs->http()) {
            for (const auto& m : h.match()) collectSelector(m.source_labels(), selectors);
          }
          for (const auto& t : vs->tcp()) {
            for (const auto& m : t.match()) collectSelector(m.source_labels(), selectors);
          }
          for (const auto& t : vs->tls()) {
            for (const auto& m : t.match()) collectSelector(m.source_labels(), selectors);
          }
        }
        break;
      case config::Kind::kDestinationRule:
        if (const auto* dr = r->specAs<net::DestinationRule>()) {
          collectSelector(dr->workload_selector().match_labels(), selectors);
        }
        break;
      case config::Kind::kSidecar:
        if (const auto* sc = r->specAs<net::Sidecar>()) {
          collectSelector(sc->workload_selector().labels(), selectors);
        }
        break;
      case config::Kind::kGateway:
        if (const auto* gw = r->specAs<net::Gateway>()) collectSelector(gw->selector(), selectors);
        break;
      default:
        break;
    }
  }
  selectors_.assign(selectors.begin(), selectors.end());
}

const std::vector<MeshIndex::Instance>* MeshIndex::instancesAt(const std::string& address) const {
  auto it = by_address_.find(address);
  return it == by_address_.end() ? nullptr : &it->second;
}

std::string MeshIndex::shareKey(const xds::ProxyInfo& proxy) const {
  std::string k;
  k += proxy.proxyless                          ? 'g'
       : proxy.type == xds::ProxyType::kSidecar ? 's'
       : proxy.type == xds::ProxyType::kRouter  ? 'r'
                                                : 'u';
  auto field = [&](std::string_view v) {
    k += '|';
    k += std::to_string(v.size());
    k += ':';
    k += v;
  };
  std::string ns = proxy.namespace_.empty() ? "default" : proxy.namespace_;
  field(ns);
  field(proxy.dns_domain.empty() ? ns + ".svc." + mesh_.domainSuffix()
                                 : model::toLower(proxy.dns_domain));
  const auto& loc = proxy.node.locality();
  field(loc.region());
  field(loc.zone());
  field(loc.sub_zone());
  k += '|';
  for (const auto& sel : selectors_) k += model::labelsMatch(sel, proxy.labels) ? '1' : '0';
  return k;
}

}  // namespace mast::control::translate
