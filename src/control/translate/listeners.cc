// LDS: sidecar listeners (virtualOutbound, per-port outbound, virtualInbound), proxyless gRPC
// API listeners, and gateway listeners with their route configurations.
#include <algorithm>
#include <set>

#include "control/model/host.h"
#include "control/translate/context.h"
#include "control/translate/routes.h"
#include "envoy/extensions/filters/http/cors/v3/cors.pb.h"
#include "envoy/extensions/filters/http/fault/v3/fault.pb.h"
#include "envoy/extensions/filters/http/router/v3/router.pb.h"
#include "envoy/extensions/filters/listener/http_inspector/v3/http_inspector.pb.h"
#include "envoy/extensions/filters/listener/original_dst/v3/original_dst.pb.h"
#include "envoy/extensions/filters/listener/tls_inspector/v3/tls_inspector.pb.h"
#include "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.pb.h"
#include "envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy.pb.h"
#include "envoy/extensions/transport_sockets/tls/v3/tls.pb.h"

namespace mast::control::translate::detail {

namespace lv3 = envoy::config::listener::v3;
namespace rv3 = envoy::config::route::v3;
namespace corev3 = envoy::config::core::v3;
namespace hcmv3 = envoy::extensions::filters::network::http_connection_manager::v3;
namespace tcpv3 = envoy::extensions::filters::network::tcp_proxy::v3;
namespace tlsv3 = envoy::extensions::transport_sockets::tls::v3;
namespace net = istio::networking::v1alpha3;

namespace {

// Ports of the proxy's own bootstrap listeners and of the agent: never a service listener.
bool reservedPort(uint32_t p) {
  return p == 15000 || p == 15001 || p == 15006 || p == 15020 || p == 15021 || p == 15090;
}

void addListenerFilter(lv3::Listener& l, std::string_view name,
                       const google::protobuf::Message& cfg) {
  auto* f = l.add_listener_filters();
  f->set_name(std::string(name));
  f->mutable_typed_config()->PackFrom(cfg);
}

lv3::Filter tcpProxyFilter(const std::string& stat_prefix, const std::string& cluster) {
  tcpv3::TcpProxy tp;
  tp.set_stat_prefix(stat_prefix);
  tp.set_cluster(cluster);
  lv3::Filter f;
  f.set_name("envoy.filters.network.tcp_proxy");
  f.mutable_typed_config()->PackFrom(tp);
  return f;
}

// An outbound tcp_proxy to one cluster, as Istio's
// buildOutboundNetworkFiltersWithSingleDestination: a DestinationRule consistentHash with
// useSourceIp hashes the client's address (tcp_proxy `hash_policy: [{source_ip: {}}]`) for the
// cluster's RING_HASH/MAGLEV; the other hash keys are HTTP-only and mean nothing on TCP.
lv3::Filter tcpProxyFilter(const Ctx& ctx, const std::string& stat_prefix,
                           const std::string& cluster) {
  const auto* ch = consistentHash(ctx, cluster);
  if (!ch || !ch->use_source_ip()) return tcpProxyFilter(stat_prefix, cluster);
  tcpv3::TcpProxy tp;
  tp.set_stat_prefix(stat_prefix);
  tp.set_cluster(cluster);
  tp.add_hash_policy()->mutable_source_ip();
  lv3::Filter f;
  f.set_name("envoy.filters.network.tcp_proxy");
  f.mutable_typed_config()->PackFrom(tp);
  return f;
}

lv3::Filter weightedTcpProxyFilter(const Ctx& ctx, const std::string& stat_prefix,
                                   const std::vector<std::pair<std::string, uint32_t>>& clusters) {
  if (clusters.size() == 1) return tcpProxyFilter(ctx, stat_prefix, clusters[0].first);
  tcpv3::TcpProxy tp;
  tp.set_stat_prefix(stat_prefix);
  for (const auto& [name, weight] : clusters) {
    auto* c = tp.mutable_weighted_clusters()->add_clusters();
    c->set_name(name);
    c->set_weight(weight);
  }
  lv3::Filter f;
  f.set_name("envoy.filters.network.tcp_proxy");
  f.mutable_typed_config()->PackFrom(tp);
  return f;
}

// HTTP filters: fault and CORS are always present (routes configure them per route), router last.
void addHttpFilters(hcmv3::HttpConnectionManager& h, bool cors) {
  auto* fault = h.add_http_filters();
  fault->set_name("envoy.filters.http.fault");
  fault->mutable_typed_config()->PackFrom(envoy::extensions::filters::http::fault::v3::HTTPFault());
  if (cors) {
    auto* c = h.add_http_filters();
    c->set_name("envoy.filters.http.cors");
    c->mutable_typed_config()->PackFrom(envoy::extensions::filters::http::cors::v3::Cors());
  }
  auto* router = h.add_http_filters();
  router->set_name("envoy.filters.http.router");
  router->mutable_typed_config()->PackFrom(envoy::extensions::filters::http::router::v3::Router());
}

void rdsOverAds(hcmv3::HttpConnectionManager& h, const std::string& route_name) {
  auto* rds = h.mutable_rds();
  rds->set_route_config_name(route_name);
  auto* cs = rds->mutable_config_source();
  cs->mutable_ads();
  cs->mutable_initial_fetch_timeout();
  cs->set_resource_api_version(corev3::V3);
}

hcmv3::HttpConnectionManager baseHcm(const std::string& stat_prefix) {
  hcmv3::HttpConnectionManager h;
  h.set_stat_prefix(stat_prefix);
  h.set_codec_type(hcmv3::HttpConnectionManager::AUTO);
  *h.mutable_stream_idle_timeout() = durationMs(0);
  h.mutable_normalize_path()->set_value(true);
  h.set_server_header_transformation(hcmv3::HttpConnectionManager::OVERWRITE);
  h.mutable_use_remote_address()->set_value(false);
  addHttpFilters(h, true);
  return h;
}

lv3::Filter hcmFilter(const hcmv3::HttpConnectionManager& h) {
  lv3::Filter f;
  f.set_name("envoy.filters.network.http_connection_manager");
  f.mutable_typed_config()->PackFrom(h);
  return f;
}

// HTTP-class and sniffed (AUTO) ports are served by an HTTP connection manager.
bool routedAsHttp(model::Protocol p) {
  return model::isHttpProtocol(p) || p == model::Protocol::kAuto;
}

lv3::Listener newListener(const std::string& address, uint32_t port, bool outbound) {
  lv3::Listener l;
  l.set_name(address + "_" + std::to_string(port));
  auto* sa = l.mutable_address()->mutable_socket_address();
  sa->set_address(address);
  sa->set_port_value(port);
  l.set_traffic_direction(outbound ? corev3::OUTBOUND : corev3::INBOUND);
  return l;
}

// What lands on one outbound (bind, port) listener.
struct OutboundListener {
  std::string bind;
  uint32_t port = 0;
  bool http = false;
  std::vector<lv3::FilterChain> tcp_chains;  // TCP/TLS services, in service order
  bool has_catch_all_tcp = false;
  bool sni = false;                  // some chain matches on server_names: tls_inspector
  std::set<std::string> match_keys;  // serialized filter_chain_match of the chains so far
};

std::string firstIp(const model::Service& svc) {
  for (const auto& a : svc.addresses) {
    if (model::isIpAddress(a)) return a;
  }
  return "";
}

// CIDR addresses ("192.192.192.192/24") of a service.
std::vector<std::pair<std::string, uint32_t>> cidrs(const model::Service& svc) {
  std::vector<std::pair<std::string, uint32_t>> out;
  for (const auto& a : svc.addresses) {
    auto slash = a.find('/');
    if (slash == std::string::npos) continue;
    std::string ip = a.substr(0, slash);
    std::string len = a.substr(slash + 1);
    if (!model::isIpAddress(ip) || len.empty() || len.size() > 3 ||
        !std::all_of(len.begin(), len.end(), ::isdigit)) {
      continue;
    }
    out.emplace_back(ip, static_cast<uint32_t>(std::stoul(len)));
  }
  return out;
}

// The VirtualService match predicates known when the config is generated (Istio's
// l4SingleMatch): port, the proxy's labels and namespace, and the gateway (`mesh` for sidecars,
// "<ns>/<name>" for a gateway's server).
template <typename Match>
bool l4Applies(const Ctx& ctx, const model::VirtualServiceInfo& vs, const Match& m, uint32_t port,
               std::string_view gateway) {
  if (m.port() != 0 && m.port() != port) return false;
  if (!m.source_namespace().empty() && m.source_namespace() != ctx.ns) return false;
  if (!model::labelsMatch({m.source_labels().begin(), m.source_labels().end()}, ctx.proxy.labels)) {
    return false;
  }
  if (m.gateways().empty()) return true;
  for (const auto& g : m.gateways()) {
    if (vs.resolveGateway(g) == gateway) return true;
  }
  return false;
}

// "10.0.0.0/8" or a bare address ("10.1.2.3": one host) as a filter_chain_match prefix range.
void addPrefixRange(lv3::FilterChainMatch& m, std::string_view cidr) {
  auto slash = cidr.find('/');
  std::string ip(cidr.substr(0, slash));
  uint32_t len = ip.find(':') == std::string::npos ? 32 : 128;
  if (slash != std::string_view::npos) len = std::stoul(std::string(cidr.substr(slash + 1)));
  auto* r = m.add_prefix_ranges();
  r->set_address_prefix(ip);
  r->mutable_prefix_len()->set_value(len);
}

// tcp_proxy for an L4 route's destinations as Istio builds it: one route goes to its cluster
// (stat prefix = cluster); several are weighted (zero weights dropped), stat prefix
// "<vs>.<ns>".
lv3::Filter l4RouteFilter(const Ctx& ctx, const model::VirtualServiceInfo& vs,
                          const google::protobuf::RepeatedPtrField<net::RouteDestination>& route,
                          uint32_t port) {
  std::vector<std::pair<std::string, uint32_t>> dests;
  for (const auto& d : route) {
    if (route.size() > 1 && d.weight() == 0) continue;
    dests.emplace_back(destinationCluster(ctx, d.destination(), vs.ns, port),
                       static_cast<uint32_t>(d.weight() ? d.weight() : 1));
  }
  if (dests.size() == 1) return tcpProxyFilter(ctx, dests[0].first, dests[0].first);
  return weightedTcpProxyFilter(ctx, vs.name + "." + vs.ns, dests);
}

// The outbound filter chains of one TCP/TLS service port on the listener at (bind, port), as
// Istio's buildSidecarOutbound{TLS,TCP}FilterChainOpts: the `tls` routes (TLS/HTTPS ports) or
// `tcp` routes of the mesh VirtualServices bound to the service, each applicable match a chain
// (server_names = sniHosts; prefix_ranges = destinationSubnets, else the service's CIDRs); a
// tcp route without destinationSubnets (or without match) is terminal. When no route applies,
// one chain to outbound|PORT||HOST (SNI on the hostname when the listener is the wildcard
// address). A chain without filter_chain_match is the service's catch-all.
std::vector<lv3::FilterChain> outboundL4Chains(const Ctx& ctx, const model::Service& svc,
                                               model::Protocol proto, const std::string& bind,
                                               uint32_t port) {
  std::string cluster = outboundClusterName(port, "", svc.hostname);
  std::vector<std::string> svc_cidrs;
  if (bind == "0.0.0.0") {
    for (const auto& [ip, len] : cidrs(svc)) svc_cidrs.push_back(ip + "/" + std::to_string(len));
  }
  bool tls = model::isTlsProtocol(proto);
  std::vector<lv3::FilterChain> out;
  std::set<std::string> seen;  // runtime predicates already handled: first wins
  bool terminal = false;
  auto add = [&](const std::vector<std::string>& sni, const std::vector<std::string>& subnets,
                 lv3::Filter filter) {
    std::string key;
    for (const auto& s : sni) key += s + ",";
    key += "|";
    for (const auto& s : subnets) key += s + ",";
    if (!seen.insert(key).second) return;
    lv3::FilterChain fc;
    fc.set_name(cluster);
    for (const auto& s : sni) fc.mutable_filter_chain_match()->add_server_names(s);
    for (const auto& s : subnets) addPrefixRange(*fc.mutable_filter_chain_match(), s);
    *fc.add_filters() = std::move(filter);
    out.push_back(std::move(fc));
  };
  for (const auto* vs : ctx.mesh.virtualServices(model::kMeshGateway, ctx.ns)) {
    if (terminal) break;
    bool bound = false;
    for (const auto& h : vs->hosts) bound = bound || model::hostMatches(h, svc.hostname);
    if (!bound) continue;
    if (tls) {
      for (const auto& tr : vs->spec->tls()) {
        for (const auto& m : tr.match()) {
          if (!l4Applies(ctx, *vs, m, port, model::kMeshGateway)) continue;
          std::vector<std::string> subnets = svc_cidrs;
          if (!m.destination_subnets().empty())
            subnets.assign(m.destination_subnets().begin(), m.destination_subnets().end());
          add({m.sni_hosts().begin(), m.sni_hosts().end()}, subnets,
              l4RouteFilter(ctx, *vs, tr.route(), port));
        }
      }
      continue;
    }
    for (const auto& tr : vs->spec->tcp()) {
      if (tr.match().empty()) {
        add({}, svc_cidrs, l4RouteFilter(ctx, *vs, tr.route(), port));
        terminal = true;
        break;
      }
      std::vector<std::string> subnets;
      for (const auto& m : tr.match()) {
        if (!l4Applies(ctx, *vs, m, port, model::kMeshGateway)) continue;
        if (m.destination_subnets().empty()) {
          add({}, svc_cidrs, l4RouteFilter(ctx, *vs, tr.route(), port));
          terminal = true;
          break;
        }
        subnets.insert(subnets.end(), m.destination_subnets().begin(),
                       m.destination_subnets().end());
      }
      if (terminal) break;
      if (subnets.empty()) continue;
      std::sort(subnets.begin(), subnets.end());
      auto sorted_cidrs = svc_cidrs;
      std::sort(sorted_cidrs.begin(), sorted_cidrs.end());
      add({}, subnets, l4RouteFilter(ctx, *vs, tr.route(), port));
      // The same ranges as the service's own chain: that chain would be a duplicate match.
      if (subnets == sorted_cidrs) terminal = true;
    }
  }
  if (!out.empty() && (tls || terminal)) return out;
  std::vector<std::string> sni;
  if (tls && bind == "0.0.0.0" && svc.hostname != "*") sni.push_back(svc.hostname);
  add(sni, svc_cidrs, tcpProxyFilter(ctx, cluster, cluster));
  return out;
}

lv3::FilterChain passthroughChain(const Ctx& ctx, std::string_view name) {
  lv3::FilterChain fc;
  fc.set_name(std::string(name));
  std::string cluster(ctx.allow_any ? kPassthroughCluster : kBlackHoleCluster);
  *fc.add_filters() = tcpProxyFilter(cluster, cluster);
  return fc;
}

}  // namespace

// Sidecar egress listeners with a port and `captureMode: NONE` (spec §2.4): really bound (default
// 127.0.0.1), so an app without iptables capture reaches the mesh by connecting to bind:port.
// HTTP ports use the port's outbound route ("9080": the services in the proxy's scope on that
// port, routed by Host); TCP/TLS ports carry the L4 chains of the services in scope on that port
// (VirtualService tls routes by SNI, tcp routes), the first service's catch-all last. One per
// (bind, port); a bound listener replaces a virtual one of the same name.
std::vector<lv3::Listener> boundEgressListeners(const Ctx& ctx) {
  std::vector<lv3::Listener> out;
  if (!ctx.sidecar) return out;
  std::set<std::string> names;
  for (const auto& egress : ctx.sidecar->spec->egress()) {
    if (!egress.has_port() || egress.port().number() == 0) continue;
    if (egress.capture_mode() != istio::networking::v1alpha3::NONE) continue;
    uint32_t port = egress.port().number();
    std::string bind = egress.bind().empty() ? "127.0.0.1" : egress.bind();
    auto proto = model::parseProtocol(egress.port().protocol());
    if (egress.port().protocol().empty()) proto = model::protocolFromPortName(egress.port().name());
    // One walk: the first service in scope on that port (TCP target), and whether any of them
    // is HTTP (the route "<port>" exists only for HTTP service ports).
    const VisiblePort* first = nullptr;
    bool http_in_scope = false;
    for (const auto& vp : ctx.ports) {
      if (vp.port->number != port) continue;
      if (!first) first = &vp;
      http_in_scope = http_in_scope || routedAsHttp(vp.port->protocol);
    }
    if (!first) continue;  // nothing in scope on that port: no listener to route from
    auto l = newListener(bind, port, true);
    if (!names.insert(l.name()).second) continue;
    if (routedAsHttp(proto) && http_in_scope) {
      auto* fc = l.add_filter_chains();
      auto h = baseHcm("outbound_" + l.name());
      rdsOverAds(h, std::to_string(port));
      *fc->add_filters() = hcmFilter(h);
    } else {
      // TCP/TLS: the chains of every service in scope on that port (tls routes by SNI), the
      // first service's catch-all last.
      std::set<std::string> match_keys;
      std::optional<lv3::FilterChain> catch_all;
      bool sni = false;
      for (const auto& vp : ctx.ports) {
        if (vp.port->number != port) continue;
        for (auto& c : outboundL4Chains(ctx, *vp.service, vp.port->protocol, bind, port)) {
          if (!c.has_filter_chain_match()) {
            if (!catch_all) catch_all = std::move(c);
          } else if (match_keys.insert(c.filter_chain_match().SerializeAsString()).second) {
            sni = sni || c.filter_chain_match().server_names_size() > 0;
            *l.add_filter_chains() = std::move(c);
          }
        }
      }
      if (catch_all) *l.add_filter_chains() = std::move(*catch_all);
      if (l.filter_chains_size() == 0) continue;
      if (sni) {
        addListenerFilter(l, "envoy.filters.listener.tls_inspector",
                          envoy::extensions::filters::listener::tls_inspector::v3::TlsInspector());
      }
    }
    out.push_back(std::move(l));
  }
  return out;
}

void buildSidecarListeners(const Ctx& ctx, ProxyResources& out) {
  std::vector<lv3::Listener> bound = boundEgressListeners(ctx);
  std::set<std::string> bound_names;
  for (const auto& l : bound) bound_names.insert(l.name());
  // Per-port outbound listeners, keyed by (bind, port) in a stable order.
  std::map<std::pair<uint32_t, std::string>, OutboundListener> by_addr;
  for (const auto& vp : ctx.ports) {
    uint32_t port = vp.port->number;
    if (reservedPort(port)) continue;
    auto proto = vp.port->protocol;
    bool http = routedAsHttp(proto);
    std::string bind = http ? "0.0.0.0" : firstIp(*vp.service);
    if (bind.empty()) bind = "0.0.0.0";
    auto& ol = by_addr[{port, bind}];
    ol.bind = bind;
    ol.port = port;
    if (http) {
      ol.http = true;
      continue;
    }
    for (auto& fc : outboundL4Chains(ctx, *vp.service, proto, bind, port)) {
      if (!fc.has_filter_chain_match()) {
        if (ol.has_catch_all_tcp) continue;  // TCP over TCP on the same address: first wins
        ol.has_catch_all_tcp = true;
      } else if (!ol.match_keys.insert(fc.filter_chain_match().SerializeAsString()).second) {
        continue;  // another service already claimed this match: first wins
      }
      ol.sni = ol.sni || fc.filter_chain_match().server_names_size() > 0;
      ol.tcp_chains.push_back(std::move(fc));
    }
  }
  for (auto& l : bound) out.listeners.push_back(std::move(l));
  for (auto& [key, ol] : by_addr) {
    auto l = newListener(ol.bind, ol.port, true);
    if (bound_names.count(l.name())) continue;
    // Reached only through virtualOutbound's original-destination hand-off.
    l.mutable_bind_to_port()->set_value(false);
    l.set_continue_on_listener_filters_timeout(true);
    if (ol.sni) {
      addListenerFilter(l, "envoy.filters.listener.tls_inspector",
                        envoy::extensions::filters::listener::tls_inspector::v3::TlsInspector());
    }
    std::optional<lv3::FilterChain> catch_all;
    for (auto& fc : ol.tcp_chains) {
      if (!fc.has_filter_chain_match())
        catch_all = fc;
      else
        *l.add_filter_chains() = fc;
    }
    if (ol.http) {
      addListenerFilter(l, "envoy.filters.listener.http_inspector",
                        envoy::extensions::filters::listener::http_inspector::v3::HttpInspector());
      auto* fc = l.add_filter_chains();
      auto* m = fc->mutable_filter_chain_match();
      m->set_transport_protocol("raw_buffer");
      m->add_application_protocols("http/1.1");
      m->add_application_protocols("h2c");
      auto h = baseHcm("outbound_" + l.name());
      rdsOverAds(h, std::to_string(ol.port));
      *fc->add_filters() = hcmFilter(h);
      // Non-HTTP bytes on an HTTP port: a TCP service without VIP, else passthrough/blackhole.
      *l.mutable_default_filter_chain() =
          catch_all ? *catch_all : passthroughChain(ctx, "PassthroughFilterChain");
    } else if (catch_all) {
      if (l.filter_chains_size() == 0)
        *l.add_filter_chains() = *catch_all;
      else
        *l.mutable_default_filter_chain() = *catch_all;
    } else {
      *l.mutable_default_filter_chain() = passthroughChain(ctx, "PassthroughFilterChain");
    }
    out.listeners.push_back(std::move(l));
  }

  // virtualOutbound: where iptables sends outbound traffic; hands connections to the listener
  // of their original destination, else the catch-all.
  {
    auto l = newListener("0.0.0.0", kVirtualOutboundPort, true);
    l.set_name("virtualOutbound");
    l.mutable_use_original_dst()->set_value(true);
    addListenerFilter(l, "envoy.filters.listener.original_dst",
                      envoy::extensions::filters::listener::original_dst::v3::OriginalDst());
    auto* bh = l.add_filter_chains();
    bh->set_name("virtualOutbound-blackhole");
    bh->mutable_filter_chain_match()->mutable_destination_port()->set_value(kVirtualOutboundPort);
    *bh->add_filters() =
        tcpProxyFilter(std::string(kBlackHoleCluster), std::string(kBlackHoleCluster));
    *l.add_filter_chains() = passthroughChain(ctx, "virtualOutbound-catchall-tcp");
    out.listeners.push_back(std::move(l));
  }

  if (ctx.part != Part::kShared) buildVirtualInbound(ctx, out);
}

// virtualInbound: one chain per port of the proxy's own workload, a passthrough otherwise.
// The filter chains serving one inbound port: HTTP (an HCM routing to inbound|PORT||), TCP,
// or both behind the HTTP inspector when the protocol is sniffed.
void addInboundChains(const InboundPort& in, lv3::Listener& l, bool& need_http_inspector) {
  std::string cluster = inboundClusterName(in.target_port);
  std::string chain_name = "0.0.0.0_" + std::to_string(in.target_port);
  auto proto = in.service_port->protocol;
  bool http = routedAsHttp(proto);
  if (http) {
    auto* fc = l.add_filter_chains();
    fc->set_name(chain_name);
    auto* m = fc->mutable_filter_chain_match();
    m->mutable_destination_port()->set_value(in.target_port);
    if (proto == model::Protocol::kAuto) {
      // Sniffed: HTTP when the inspector saw HTTP, TCP otherwise (next chain).
      m->set_transport_protocol("raw_buffer");
      m->add_application_protocols("http/1.1");
      m->add_application_protocols("h2c");
      need_http_inspector = true;
    }
    auto h = baseHcm("inbound_" + chain_name);
    h.set_server_name("istio-envoy");
    auto* rc = h.mutable_route_config();
    rc->set_name(cluster);
    rc->mutable_validate_clusters()->set_value(false);
    auto* vh = rc->add_virtual_hosts();
    vh->set_name("inbound|http|" + std::to_string(in.service_port->number));
    vh->add_domains("*");
    auto* r = vh->add_routes();
    r->set_name("default");
    r->mutable_match()->set_prefix("/");
    r->mutable_match()->mutable_case_sensitive()->set_value(true);
    r->mutable_route()->set_cluster(cluster);
    *r->mutable_route()->mutable_timeout() = durationMs(0);
    *r->mutable_route()->mutable_max_stream_duration()->mutable_grpc_timeout_header_max() =
        durationMs(0);
    if (!model::isHttp2Protocol(proto)) {
      // Istio 1.24+: retry requests the app never saw (reset before the request was sent).
      r->mutable_route()->mutable_retry_policy()->set_retry_on("reset-before-request");
      r->mutable_route()->mutable_retry_policy()->mutable_num_retries()->set_value(2);
    }
    r->mutable_decorator()->set_operation(
        (in.service ? in.service->hostname : std::string("inbound")) + ":" +
        std::to_string(in.service_port->number) + "/*");
    *fc->add_filters() = hcmFilter(h);
  }
  if (!http || proto == model::Protocol::kAuto) {
    auto* fc = l.add_filter_chains();
    fc->set_name(chain_name);
    fc->mutable_filter_chain_match()->mutable_destination_port()->set_value(in.target_port);
    *fc->add_filters() = tcpProxyFilter(cluster, cluster);
  }
}

void buildVirtualInbound(const Ctx& ctx, ProxyResources& out) {
  {
    auto l = newListener("0.0.0.0", kVirtualInboundPort, false);
    l.set_name("virtualInbound");
    l.set_continue_on_listener_filters_timeout(true);
    addListenerFilter(l, "envoy.filters.listener.original_dst",
                      envoy::extensions::filters::listener::original_dst::v3::OriginalDst());
    bool need_http_inspector = false;
    auto* bh = l.add_filter_chains();
    bh->set_name("virtualInbound-blackhole");
    bh->mutable_filter_chain_match()->mutable_destination_port()->set_value(kVirtualInboundPort);
    *bh->add_filters() =
        tcpProxyFilter(std::string(kBlackHoleCluster), std::string(kBlackHoleCluster));
    for (const auto& in : ctx.inbound) {
      if (!in.bound) addInboundChains(in, l, need_http_inspector);
    }
    auto* pass = l.add_filter_chains();
    pass->set_name("virtualInbound");
    *pass->add_filters() = tcpProxyFilter(std::string(kInboundPassthroughCluster),
                                          std::string(kInboundPassthroughCluster));
    if (need_http_inspector) {
      addListenerFilter(l, "envoy.filters.listener.http_inspector",
                        envoy::extensions::filters::listener::http_inspector::v3::HttpInspector());
    }
    out.listeners.push_back(std::move(l));
  }
  // Sidecar ingress entries with captureMode NONE: really bound, reached without iptables.
  for (const auto& in : ctx.inbound) {
    if (!in.bound) continue;
    auto l = newListener(in.bind, in.target_port, false);
    bool need_http_inspector = false;
    addInboundChains(in, l, need_http_inspector);
    if (need_http_inspector) {
      addListenerFilter(l, "envoy.filters.listener.http_inspector",
                        envoy::extensions::filters::listener::http_inspector::v3::HttpInspector());
    }
    out.listeners.push_back(std::move(l));
  }
}

void buildProxylessListeners(const Ctx& ctx, ProxyResources& out) {
  for (const auto& vp : ctx.ports) {
    if (!proxylessReachable(ctx, vp)) continue;
    std::string name = vp.service->hostname + ":" + std::to_string(vp.port->number);
    lv3::Listener l;
    l.set_name(name);
    hcmv3::HttpConnectionManager h;
    rdsOverAds(h, name);
    // gRPC runs fault and router; any other non-optional filter would be NACKed.
    addHttpFilters(h, false);
    l.mutable_api_listener()->mutable_api_listener()->PackFrom(h);
    out.listeners.push_back(std::move(l));
  }
}

// ---------------------------------------------------------------------------------------------
// Gateways

namespace {

struct ServerRef {
  const model::GatewayInfo* gateway;
  const net::Server* server;
};

// "ns/host" server hosts: the namespace part restricts which VirtualServices may bind.
struct ServerHost {
  std::string ns;  // "*" = any
  std::string host;
};

ServerHost parseServerHost(std::string_view h, std::string_view gw_ns) {
  ServerHost out{"*", model::toLower(h)};
  if (auto slash = h.find('/'); slash != std::string_view::npos) {
    out.ns = std::string(h.substr(0, slash));
    out.host = model::toLower(h.substr(slash + 1));
    if (out.ns == ".") out.ns = std::string(gw_ns);
  }
  return out;
}

bool isTerminatingTls(const net::Server& s) {
  if (!s.has_tls()) return false;
  auto m = s.tls().mode();
  return m == net::ServerTLSSettings::SIMPLE || m == net::ServerTLSSettings::MUTUAL ||
         m == net::ServerTLSSettings::OPTIONAL_MUTUAL;
}

uint32_t serverPort(const net::Server& s) {
  return s.port().target_port() ? s.port().target_port() : s.port().number();
}

// The route configuration for the HTTP servers `servers` (one RDS name).
rv3::RouteConfiguration gatewayRouteConfig(const Ctx& ctx, const std::string& name,
                                           const std::vector<ServerRef>& servers) {
  rv3::RouteConfiguration rc;
  rc.set_name(name);
  rc.mutable_validate_clusters()->set_value(false);
  rc.set_ignore_port_in_host_matching(true);
  rc.mutable_max_direct_response_body_size_bytes()->set_value(1048576);
  // host → routes, in VirtualService order; hosts in first-seen order then sorted by vhost name.
  std::map<std::string, std::vector<rv3::Route>> routes_by_host;
  std::map<std::string, std::vector<bool>> catch_all_by_host;
  std::set<std::string> redirect_hosts;
  uint32_t port = servers.empty() ? 0 : servers[0].server->port().number();
  for (const auto& sr : servers) {
    bool redirect = sr.server->has_tls() && sr.server->tls().https_redirect();
    auto vss = ctx.mesh.virtualServices(sr.gateway->key(), ctx.ns);
    for (const auto& raw : sr.server->hosts()) {
      auto sh = parseServerHost(raw, sr.gateway->ns);
      bool any_vs = false;
      for (const auto* vs : vss) {
        if (sh.ns != "*" && sh.ns != vs->ns) continue;
        for (const auto& vh : vs->hosts) {
          if (!model::hostsOverlap(vh, sh.host)) continue;
          // The more specific of the two names is what the vhost answers to.
          std::string host = model::hostMatches(vh, sh.host) ? sh.host : vh;
          std::vector<rv3::Route> routes;
          virtualServiceRoutes(ctx, *vs, port, sr.gateway->key(), routes);
          if (routes.empty()) continue;
          any_vs = true;
          auto& list = routes_by_host[host];
          auto& flags = catch_all_by_host[host];
          for (auto& r : routes) {
            bool ca = r.match().prefix() == "/" && r.match().headers().empty() &&
                      r.match().query_parameters().empty();
            list.push_back(std::move(r));
            flags.push_back(ca);
          }
          if (redirect) redirect_hosts.insert(host);
        }
      }
      if (redirect && !any_vs) {
        routes_by_host[sh.host];
        catch_all_by_host[sh.host];
        redirect_hosts.insert(sh.host);
      }
    }
  }
  std::vector<rv3::VirtualHost> vhosts;
  for (auto& [host, routes] : routes_by_host) {
    rv3::VirtualHost vh;
    vh.set_name(host + ":" + std::to_string(port));
    vh.add_domains(host);
    // mast-proxy matches the Host header with its port: accept any port for exact names.
    if (host != "*" && host.find('*') == std::string::npos) vh.add_domains(host + ":*");
    // Several VirtualServices merged: catch-all routes move to the end, order otherwise kept.
    const auto& flags = catch_all_by_host[host];
    for (size_t i = 0; i < routes.size(); ++i) {
      if (!flags[i]) *vh.add_routes() = routes[i];
    }
    for (size_t i = 0; i < routes.size(); ++i) {
      if (flags[i]) *vh.add_routes() = routes[i];
    }
    if (redirect_hosts.count(host)) {
      vh.clear_routes();
      vh.set_require_tls(rv3::VirtualHost::ALL);
      // An HTTPS redirect answers every request of the vhost.
      auto* r = vh.add_routes();
      r->mutable_match()->set_prefix("/");
      r->mutable_redirect()->set_https_redirect(true);
    }
    vhosts.push_back(std::move(vh));
  }
  std::stable_sort(vhosts.begin(), vhosts.end(),
                   [](const auto& a, const auto& b) { return a.name() < b.name(); });
  std::set<std::string> seen;
  for (auto& vh : vhosts) {
    google::protobuf::RepeatedPtrField<std::string> domains;
    for (const auto& d : vh.domains()) {
      if (seen.insert(d).second) *domains.Add() = d;
    }
    if (domains.empty()) continue;
    vh.mutable_domains()->Swap(&domains);
    *rc.add_virtual_hosts() = std::move(vh);
  }
  if (rc.virtual_hosts_size() == 0) {
    // Nothing bound: a vhost without routes, so every request gets 404 (NR).
    auto* vh = rc.add_virtual_hosts();
    vh->set_name("blackhole:" + std::to_string(port));
    vh->add_domains("*");
  }
  return rc;
}

hcmv3::HttpConnectionManager gatewayHcm(const std::string& stat_prefix, const std::string& rds) {
  auto h = baseHcm(stat_prefix);
  h.mutable_use_remote_address()->set_value(true);
  h.set_server_name("istio-envoy");
  rdsOverAds(h, rds);
  return h;
}

}  // namespace

void buildGatewayRoutesAndListeners(const Ctx& ctx, ProxyResources& out) {
  auto gateways = ctx.mesh.gatewaysFor(ctx.proxy.labels);
  // (bind, port) → servers, in gateway then server order.
  std::map<std::pair<uint32_t, std::string>, std::vector<ServerRef>> by_addr;
  for (const auto* gw : gateways) {
    for (const auto& s : gw->spec->servers()) {
      uint32_t port = serverPort(s);
      if (port == 0 || reservedPort(port)) continue;
      std::string bind = s.bind().empty() ? "0.0.0.0" : s.bind();
      by_addr[{port, bind}].push_back({gw, &s});
    }
  }
  for (auto& [key, servers] : by_addr) {
    auto [port, bind] = key;
    auto l = newListener(bind, port, true);
    std::string suffix = bind == "0.0.0.0" ? "" : "." + bind;
    std::vector<ServerRef> plain_http;
    bool tls_inspector = false;
    for (const auto& sr : servers) {
      auto proto = model::parseProtocol(sr.server->port().protocol());
      if (model::isHttpProtocol(proto) ||
          (proto == model::Protocol::kHttps && isTerminatingTls(*sr.server))) {
        if (proto != model::Protocol::kHttps) {
          plain_http.push_back(sr);
          continue;
        }
        // HTTPS terminated here: its own chain, SNI-matched, its own RDS name.
        std::string rds = "https." + std::to_string(sr.server->port().number()) + "." +
                          sr.server->port().name() + "." + sr.gateway->name + "." + sr.gateway->ns +
                          suffix;
        const auto& tls = sr.server->tls();
        if (tls.server_certificate().empty()) continue;  // credentialName needs SDS: skipped
        auto* fc = l.add_filter_chains();
        std::vector<std::string> names;
        bool any_host = false;
        for (const auto& h : sr.server->hosts()) {
          auto sh = parseServerHost(h, sr.gateway->ns);
          if (sh.host == "*") any_host = true;
          names.push_back(sh.host);
        }
        std::sort(names.begin(), names.end());
        if (!any_host) {
          for (const auto& n : names) fc->mutable_filter_chain_match()->add_server_names(n);
        }
        tlsv3::DownstreamTlsContext dtls;
        auto* common = dtls.mutable_common_tls_context();
        common->add_alpn_protocols("h2");
        common->add_alpn_protocols("http/1.1");
        auto* cert = common->add_tls_certificates();
        cert->mutable_certificate_chain()->set_filename(tls.server_certificate());
        cert->mutable_private_key()->set_filename(tls.private_key());
        if (tls.mode() != net::ServerTLSSettings::SIMPLE && !tls.ca_certificates().empty()) {
          common->mutable_validation_context()->mutable_trusted_ca()->set_filename(
              tls.ca_certificates());
          dtls.mutable_require_client_certificate()->set_value(tls.mode() ==
                                                               net::ServerTLSSettings::MUTUAL);
        }
        fc->mutable_transport_socket()->set_name("envoy.transport_sockets.tls");
        fc->mutable_transport_socket()->mutable_typed_config()->PackFrom(dtls);
        *fc->add_filters() = hcmFilter(gatewayHcm(rds, rds));
        tls_inspector = true;
        out.routes.push_back(gatewayRouteConfig(ctx, rds, {sr}));
        continue;
      }
      // TLS passthrough / TCP: bound VirtualServices' tls (by SNI) or tcp routes.
      for (const auto* vs : ctx.mesh.virtualServices(sr.gateway->key(), ctx.ns)) {
        bool passthrough = model::isTlsProtocol(proto);
        if (passthrough) {
          for (const auto& tr : vs->spec->tls()) {
            for (const auto& m : tr.match()) {
              if (!l4Applies(ctx, *vs, m, sr.server->port().number(), sr.gateway->key())) continue;
              auto* fc = l.add_filter_chains();
              for (const auto& sni : m.sni_hosts())
                fc->mutable_filter_chain_match()->add_server_names(sni);
              for (const auto& cidr : m.destination_subnets())
                addPrefixRange(*fc->mutable_filter_chain_match(), cidr);
              *fc->add_filters() = l4RouteFilter(ctx, *vs, tr.route(), port);
              tls_inspector = true;
            }
          }
        } else {
          for (const auto& tr : vs->spec->tcp()) {
            bool applies = tr.match().empty();
            for (const auto& m : tr.match()) {
              applies = applies || m.port() == 0 || m.port() == sr.server->port().number();
            }
            if (!applies || tr.route().empty()) continue;
            std::vector<std::pair<std::string, uint32_t>> dests;
            for (const auto& d : tr.route()) {
              dests.emplace_back(destinationCluster(ctx, d.destination(), vs->ns, port),
                                 static_cast<uint32_t>(d.weight() ? d.weight() : 1));
            }
            if (l.filter_chains_size() == 0) {
              *l.add_filter_chains()->add_filters() =
                  weightedTcpProxyFilter(ctx, vs->name + "." + vs->ns, dests);
            }
            break;
          }
        }
      }
    }
    if (!plain_http.empty()) {
      std::string rds = "http." + std::to_string(port) + suffix;
      auto* fc = l.add_filter_chains();
      *fc->add_filters() = hcmFilter(gatewayHcm(rds, rds));
      out.routes.push_back(gatewayRouteConfig(ctx, rds, plain_http));
    }
    if (l.filter_chains_size() == 0) continue;
    if (tls_inspector) {
      addListenerFilter(l, "envoy.filters.listener.tls_inspector",
                        envoy::extensions::filters::listener::tls_inspector::v3::TlsInspector());
    }
    out.listeners.push_back(std::move(l));
  }
}

}  // namespace mast::control::translate::detail
