// CDS and EDS: outbound clusters per (service port, subset), inbound clusters for the proxy's own
// ports, the passthrough/blackhole clusters, and ClusterLoadAssignments with locality weights.
#include <algorithm>
#include <set>

#include "control/model/host.h"
#include "control/translate/context.h"
#include "control/translate/policy.h"
#include "envoy/extensions/transport_sockets/tls/v3/tls.pb.h"
#include "envoy/extensions/upstreams/http/v3/http_protocol_options.pb.h"

namespace mast::control::translate::detail {

namespace cv3 = envoy::config::cluster::v3;
namespace ev3 = envoy::config::endpoint::v3;
namespace corev3 = envoy::config::core::v3;
namespace tlsv3 = envoy::extensions::transport_sockets::tls::v3;
namespace httpv3 = envoy::extensions::upstreams::http::v3;
namespace net = istio::networking::v1alpha3;

namespace {

constexpr uint32_t kMaxU32 = 4294967295u;
// Where Debian keeps the OS trust store: SIMPLE/MUTUAL TLS without caCertificates verifies
// against it, as Istio's "file-root:system" does.
constexpr std::string_view kSystemCaBundle = "/etc/ssl/certs/ca-certificates.crt";
constexpr std::string_view kHttpOptionsKey =
    "envoy.extensions.upstreams.http.v3.HttpProtocolOptions";

google::protobuf::Duration connectTimeout(const Ctx& ctx) {
  const auto& mc = ctx.mesh.meshConfig();
  return mc.has_connect_timeout() ? mc.connect_timeout() : durationMs(10000);
}

// Istio raises every threshold to the maximum so Envoy's small defaults never trip by surprise.
void defaultCircuitBreakers(cv3::Cluster& c) {
  auto* t = c.mutable_circuit_breakers()->add_thresholds();
  t->mutable_max_connections()->set_value(kMaxU32);
  t->mutable_max_pending_requests()->set_value(kMaxU32);
  t->mutable_max_requests()->set_value(kMaxU32);
  t->mutable_max_retries()->set_value(kMaxU32);
}

void edsConfig(cv3::Cluster& c) {
  c.set_type(cv3::Cluster::EDS);
  auto* eds = c.mutable_eds_cluster_config();
  eds->set_service_name(c.name());
  auto* cfg = eds->mutable_eds_config();
  cfg->mutable_ads();
  cfg->mutable_initial_fetch_timeout();  // 0s: never wait for EDS before going live
  cfg->set_resource_api_version(corev3::V3);
}

// "region/zone/subzone" → Locality.
corev3::Locality parseLocality(std::string_view s) {
  corev3::Locality l;
  auto a = s.find('/');
  l.set_region(std::string(s.substr(0, a)));
  if (a != std::string_view::npos) {
    auto rest = s.substr(a + 1);
    auto b = rest.find('/');
    l.set_zone(std::string(rest.substr(0, b)));
    if (b != std::string_view::npos) l.set_sub_zone(std::string(rest.substr(b + 1)));
  }
  return l;
}

std::map<std::string, std::string> subsetLabels(const net::Subset* subset) {
  if (!subset) return {};
  return {subset->labels().begin(), subset->labels().end()};
}

// Endpoints grouped by locality. Each locality carries load_balancing_weight (the sum of its
// endpoints' weights): gRPC ignores localities without one.
ev3::ClusterLoadAssignment loadAssignment(const std::string& name,
                                          const std::vector<model::Endpoint>& endpoints,
                                          const std::map<std::string, std::string>& labels,
                                          size_t limit) {
  ev3::ClusterLoadAssignment cla;
  cla.set_cluster_name(name);
  std::map<std::string, ev3::LocalityLbEndpoints> by_locality;
  size_t n = 0;
  for (const auto& ep : endpoints) {
    if (!model::labelsMatch(labels, ep.labels)) continue;
    if (n++ >= limit) break;
    auto& loc = by_locality[ep.locality];
    if (!loc.has_locality()) *loc.mutable_locality() = parseLocality(ep.locality);
    auto* lb = loc.add_lb_endpoints();
    auto* sa = lb->mutable_endpoint()->mutable_address()->mutable_socket_address();
    sa->set_address(ep.address);
    sa->set_port_value(ep.port);
    uint32_t w = ep.weight ? ep.weight : 1;
    lb->mutable_load_balancing_weight()->set_value(w);
    if (ep.tls_istio) {
      (*lb->mutable_metadata()->mutable_filter_metadata())["envoy.transport_socket_match"]
          .mutable_fields()
          ->
          operator[]("tlsMode")
          .set_string_value("istio");
    }
    loc.mutable_load_balancing_weight()->set_value(loc.load_balancing_weight().value() + w);
  }
  for (auto& [_, loc] : by_locality) *cla.add_endpoints() = std::move(loc);
  return cla;
}

// Locality load balancing is on unless the mesh or the rule turns it off.
bool localityLbEnabled(const Ctx& ctx, const net::LoadBalancerSettings* lb) {
  if (lb && lb->has_locality_lb_setting() && lb->locality_lb_setting().has_enabled()) {
    return lb->locality_lb_setting().enabled().value();
  }
  const auto& mesh = ctx.mesh.meshConfig();
  if (mesh.has_locality_lb_setting() && mesh.locality_lb_setting().has_enabled()) {
    return mesh.locality_lb_setting().enabled().value();
  }
  return true;
}

// Istio's failover priorities (only applied with outlier detection, which is what moves
// traffic away from a failing locality): 0 = same region/zone/subzone as the proxy, 1 = same
// region and zone, 2 = same region, 3 = elsewhere; then compacted to 0..N-1 as Envoy requires.
void applyLocalityPriorities(const corev3::Locality& proxy, ev3::ClusterLoadAssignment& cla) {
  if (proxy.region().empty()) return;
  std::set<uint32_t> used;
  std::vector<uint32_t> raw;
  for (const auto& loc : cla.endpoints()) {
    const auto& l = loc.locality();
    uint32_t p = 3;
    if (l.region() == proxy.region()) {
      p = 2;
      if (l.zone() == proxy.zone()) p = l.sub_zone() == proxy.sub_zone() ? 0 : 1;
    }
    raw.push_back(p);
    used.insert(p);
  }
  std::map<uint32_t, uint32_t> compact;
  for (uint32_t p : used) compact.emplace(p, static_cast<uint32_t>(compact.size()));
  for (int i = 0; i < cla.endpoints_size(); ++i) {
    cla.mutable_endpoints(i)->set_priority(compact[raw[static_cast<size_t>(i)]]);
  }
}

void applyLoadBalancer(const Ctx& ctx, const net::LoadBalancerSettings* lb, cv3::Cluster& c) {
  bool proxyless = ctx.flavor == Flavor::kProxyless;
  // Istio's default is LEAST_REQUEST; gRPC clients only implement ROUND_ROBIN and RING_HASH.
  c.set_lb_policy(proxyless ? cv3::Cluster::ROUND_ROBIN : cv3::Cluster::LEAST_REQUEST);
  if (!lb) return;
  if (lb->has_consistent_hash()) {
    const auto& ch = lb->consistent_hash();
    if (ch.has_maglev() && !proxyless) {
      c.set_lb_policy(cv3::Cluster::MAGLEV);
      if (ch.maglev().table_size()) {
        c.mutable_maglev_lb_config()->mutable_table_size()->set_value(ch.maglev().table_size());
      }
    } else {
      c.set_lb_policy(cv3::Cluster::RING_HASH);
      uint64_t min =
          ch.has_ring_hash() ? ch.ring_hash().minimum_ring_size() : ch.minimum_ring_size();
      c.mutable_ring_hash_lb_config()->mutable_minimum_ring_size()->set_value(min ? min : 1024);
    }
    return;
  }
  switch (lb->simple()) {
    case net::LoadBalancerSettings::ROUND_ROBIN:
      c.set_lb_policy(cv3::Cluster::ROUND_ROBIN);
      break;
    case net::LoadBalancerSettings::RANDOM:
      if (!proxyless) c.set_lb_policy(cv3::Cluster::RANDOM);
      break;
    case net::LoadBalancerSettings::PASSTHROUGH:
      if (!proxyless) {
        // Connect to wherever the client meant: no endpoints of our own.
        c.set_type(cv3::Cluster::ORIGINAL_DST);
        c.set_lb_policy(cv3::Cluster::CLUSTER_PROVIDED);
        c.clear_eds_cluster_config();
        c.clear_load_assignment();
      }
      break;
    default:
      break;  // UNSPECIFIED, LEAST_REQUEST, LEAST_CONN: the default above
  }
}

void applyConnectionPool(const net::ConnectionPoolSettings* cp, const model::ServicePort& port,
                         cv3::Cluster& c, httpv3::HttpProtocolOptions& http, bool& http_used) {
  if (!cp) return;
  auto* t = c.mutable_circuit_breakers()->mutable_thresholds(0);
  if (cp->has_tcp()) {
    const auto& tcp = cp->tcp();
    if (tcp.max_connections() > 0) t->mutable_max_connections()->set_value(tcp.max_connections());
    if (tcp.has_connect_timeout()) *c.mutable_connect_timeout() = tcp.connect_timeout();
    if (tcp.has_tcp_keepalive()) {
      auto* ka = c.mutable_upstream_connection_options()->mutable_tcp_keepalive();
      if (tcp.tcp_keepalive().probes())
        ka->mutable_keepalive_probes()->set_value(tcp.tcp_keepalive().probes());
      if (tcp.tcp_keepalive().has_time()) {
        ka->mutable_keepalive_time()->set_value(
            static_cast<uint32_t>(tcp.tcp_keepalive().time().seconds()));
      }
      if (tcp.tcp_keepalive().has_interval()) {
        ka->mutable_keepalive_interval()->set_value(
            static_cast<uint32_t>(tcp.tcp_keepalive().interval().seconds()));
      }
    }
    if (tcp.has_max_connection_duration()) {
      *http.mutable_common_http_protocol_options()->mutable_max_connection_duration() =
          tcp.max_connection_duration();
      http_used = true;
    }
    if (tcp.has_idle_timeout()) {
      *http.mutable_common_http_protocol_options()->mutable_idle_timeout() = tcp.idle_timeout();
      http_used = true;
    }
  }
  if (cp->has_http()) {
    const auto& h = cp->http();
    // Zero means "unset" in Istio's API.
    if (h.http1_max_pending_requests() > 0) {
      t->mutable_max_pending_requests()->set_value(h.http1_max_pending_requests());
    }
    if (h.http2_max_requests() > 0) t->mutable_max_requests()->set_value(h.http2_max_requests());
    if (h.max_retries() > 0) t->mutable_max_retries()->set_value(h.max_retries());
    if (h.max_requests_per_connection() > 0) {
      http.mutable_common_http_protocol_options()->mutable_max_requests_per_connection()->set_value(
          h.max_requests_per_connection());
      http_used = true;
    }
    if (h.has_idle_timeout()) {
      *http.mutable_common_http_protocol_options()->mutable_idle_timeout() = h.idle_timeout();
      http_used = true;
    }
    if (model::isHttpProtocol(port.protocol) || port.protocol == model::Protocol::kAuto) {
      if (h.use_client_protocol()) {
        http.mutable_use_downstream_protocol_config();
        http_used = true;
      } else if (h.h2_upgrade_policy() == net::ConnectionPoolSettings::HTTPSettings::UPGRADE) {
        http.mutable_explicit_http_config()->mutable_http2_protocol_options();
        http_used = true;
      }
      if (h.max_concurrent_streams() > 0 &&
          http.explicit_http_config().has_http2_protocol_options()) {
        http.mutable_explicit_http_config()
            ->mutable_http2_protocol_options()
            ->mutable_max_concurrent_streams()
            ->set_value(h.max_concurrent_streams());
      }
    }
  }
}

void applyOutlierDetection(const net::OutlierDetection* od, cv3::Cluster& c) {
  if (!od) return;
  auto* o = c.mutable_outlier_detection();
  uint32_t c5xx = 0;
  bool has5xx = false;
  if (od->has_consecutive_5xx_errors()) {
    c5xx = od->consecutive_5xx_errors().value();
    has5xx = true;
  } else if (od->consecutive_errors() > 0) {
    c5xx = static_cast<uint32_t>(od->consecutive_errors());
    has5xx = true;
  }
  if (has5xx) {
    o->mutable_consecutive_5xx()->set_value(c5xx);
    o->mutable_enforcing_consecutive_5xx()->set_value(c5xx > 0 ? 100 : 0);
  }
  if (od->has_consecutive_gateway_errors()) {
    uint32_t v = od->consecutive_gateway_errors().value();
    o->mutable_consecutive_gateway_failure()->set_value(v);
    o->mutable_enforcing_consecutive_gateway_failure()->set_value(v > 0 ? 100 : 0);
  }
  if (od->split_external_local_origin_errors()) {
    o->set_split_external_local_origin_errors(true);
    if (od->has_consecutive_local_origin_failures()) {
      o->mutable_consecutive_local_origin_failure()->set_value(
          od->consecutive_local_origin_failures().value());
    }
    o->mutable_enforcing_consecutive_local_origin_failure()->set_value(100);
  }
  if (od->has_interval()) *o->mutable_interval() = od->interval();
  if (od->has_base_ejection_time()) *o->mutable_base_ejection_time() = od->base_ejection_time();
  if (od->max_ejection_percent() > 0) {
    o->mutable_max_ejection_percent()->set_value(od->max_ejection_percent());
  }
  o->mutable_enforcing_success_rate()->set_value(0);
  // Always emitted: 0 turns Envoy's panic mode off unless minHealthPercent asks for it.
  c.mutable_common_lb_config()->mutable_healthy_panic_threshold()->set_value(
      od->min_health_percent());
}

void applyTls(const net::ClientTLSSettings* tls, const model::Service& svc, bool http2,
              cv3::Cluster& c) {
  if (!tls) return;
  if (tls->mode() != net::ClientTLSSettings::SIMPLE &&
      tls->mode() != net::ClientTLSSettings::MUTUAL) {
    // DISABLE: plaintext. ISTIO_MUTUAL needs the mesh SDS secrets, which Mast does not serve.
    return;
  }
  tlsv3::UpstreamTlsContext ctx;
  // Without an explicit SNI, send the service host (what auto_sni would do for DNS services).
  if (!tls->sni().empty()) {
    ctx.set_sni(tls->sni());
  } else if (svc.hostname.find('*') == std::string::npos && !model::isIpAddress(svc.hostname)) {
    ctx.set_sni(svc.hostname);
  }
  auto* common = ctx.mutable_common_tls_context();
  if (http2) common->add_alpn_protocols("h2");
  if (tls->mode() == net::ClientTLSSettings::MUTUAL) {
    auto* cert = common->add_tls_certificates();
    cert->mutable_certificate_chain()->set_filename(tls->client_certificate());
    cert->mutable_private_key()->set_filename(tls->private_key());
  }
  bool skip_verify = tls->has_insecure_skip_verify() && tls->insecure_skip_verify().value();
  if (!skip_verify) {
    auto* vc = common->mutable_validation_context();
    vc->mutable_trusted_ca()->set_filename(
        tls->ca_certificates().empty() ? std::string(kSystemCaBundle) : tls->ca_certificates());
    const auto& sans = tls->subject_alt_names().empty()
                           ? std::vector<std::string>(svc.subject_alt_names)
                           : std::vector<std::string>(tls->subject_alt_names().begin(),
                                                      tls->subject_alt_names().end());
    for (const auto& san : sans) {
      auto* m = vc->add_match_typed_subject_alt_names();
      m->set_san_type(tlsv3::SubjectAltNameMatcher::DNS);
      m->mutable_matcher()->set_exact(san);
    }
  }
  c.mutable_transport_socket()->set_name("envoy.transport_sockets.tls");
  c.mutable_transport_socket()->mutable_typed_config()->PackFrom(ctx);
}

// One outbound cluster (default when subset == nullptr) and, when it takes endpoints over EDS,
// its ClusterLoadAssignment.
void outboundCluster(const Ctx& ctx, const VisiblePort& vp, const net::DestinationRule* dr,
                     const net::Subset* subset, ProxyResources& out) {
  const model::Service& svc = *vp.service;
  const model::ServicePort& port = *vp.port;
  cv3::Cluster c;
  c.set_name(outboundClusterName(port.number, subset ? subset->name() : "", svc.hostname));
  *c.mutable_connect_timeout() = connectTimeout(ctx);
  auto endpoints = ctx.mesh.registry().endpoints(svc, port.number);
  auto labels = subsetLabels(subset);
  bool proxyless = ctx.flavor == Flavor::kProxyless;
  bool eds = false;
  switch (svc.resolution) {
    case model::Resolution::kDns:
    case model::Resolution::kDnsRoundRobin:
      // gRPC has no STRICT_DNS; LOGICAL_DNS takes a single host.
      if (svc.resolution == model::Resolution::kDns && !proxyless) {
        c.set_type(cv3::Cluster::STRICT_DNS);
      } else {
        c.set_type(cv3::Cluster::LOGICAL_DNS);
      }
      c.set_dns_lookup_family(cv3::Cluster::V4_ONLY);
      c.set_respect_dns_ttl(true);
      if (ctx.mesh.meshConfig().has_dns_refresh_rate()) {
        *c.mutable_dns_refresh_rate() = ctx.mesh.meshConfig().dns_refresh_rate();
      }
      *c.mutable_load_assignment() = loadAssignment(
          c.name(), endpoints, labels, c.type() == cv3::Cluster::LOGICAL_DNS ? 1 : SIZE_MAX);
      break;
    case model::Resolution::kNone:
      if (endpoints.empty()) {
        if (proxyless) return;  // gRPC cannot follow an original destination
        c.set_type(cv3::Cluster::ORIGINAL_DST);
        break;
      }
      eds = true;
      break;
    case model::Resolution::kStatic:
      eds = true;
      break;
  }
  if (eds) edsConfig(c);
  defaultCircuitBreakers(c);
  Policy policy = effectivePolicy(dr, subset, port.number);
  applyLoadBalancer(ctx, policy.load_balancer, c);
  if (c.type() == cv3::Cluster::ORIGINAL_DST) c.set_lb_policy(cv3::Cluster::CLUSTER_PROVIDED);
  httpv3::HttpProtocolOptions http;
  bool http_used = false;
  if (model::isHttp2Protocol(port.protocol)) {
    http.mutable_explicit_http_config()->mutable_http2_protocol_options();
    http_used = true;
  }
  applyConnectionPool(policy.connection_pool, port, c, http, http_used);
  if (!proxyless) applyOutlierDetection(policy.outlier_detection, c);
  // gRPC takes TLS material only from certificate providers of its bootstrap, never from
  // files named in a cluster: a file-based context would get the whole CDS response NACKed.
  if (!proxyless) {
    applyTls(policy.tls, svc, http.explicit_http_config().has_http2_protocol_options(), c);
  }
  if (http_used) {
    if (!http.has_explicit_http_config() && !http.has_use_downstream_protocol_config()) {
      http.mutable_explicit_http_config()->mutable_http_protocol_options();
    }
    (*c.mutable_typed_extension_protocol_options())[std::string(kHttpOptionsKey)].PackFrom(http);
  }
  if (c.type() == cv3::Cluster::EDS) {
    auto cla = loadAssignment(c.name(), endpoints, labels, SIZE_MAX);
    if (policy.outlier_detection && localityLbEnabled(ctx, policy.load_balancer)) {
      applyLocalityPriorities(ctx.proxy.node.locality(), cla);
    }
    out.endpoints.push_back(std::move(cla));
  }
  out.clusters.push_back(std::move(c));
}

void outboundClusters(const Ctx& ctx, ProxyResources& out) {
  const auto* only = ctx.part == Part::kShared ? ctx.selection.only_hosts : nullptr;
  for (const auto& vp : ctx.ports) {
    if (only && !only->count(vp.service->hostname)) continue;
    const auto* edr = ctx.destinationRule(*vp.service);
    const net::DestinationRule* dr = edr ? &edr->rule : nullptr;
    outboundCluster(ctx, vp, dr, nullptr, out);
    if (!dr) continue;
    for (const auto& subset : dr->subsets()) outboundCluster(ctx, vp, dr, &subset, out);
  }
}

// inbound|PORT||: straight to the workload. STATIC (the address is known from the registry)
// instead of Istio's ORIGINAL_DST, so it also works without iptables redirection.
void inboundClusters(const Ctx& ctx, ProxyResources& out) {
  bool localhost = ctx.mesh.meshConfig().has_inbound_traffic_policy() &&
                   ctx.mesh.meshConfig().inbound_traffic_policy().mode() ==
                       istio::mesh::v1alpha1::MeshConfig::InboundTrafficPolicy::LOCALHOST;
  for (const auto& in : ctx.inbound) {
    cv3::Cluster c;
    c.set_name(inboundClusterName(in.target_port));
    c.set_type(cv3::Cluster::STATIC);
    c.set_lb_policy(cv3::Cluster::ROUND_ROBIN);
    *c.mutable_connect_timeout() = connectTimeout(ctx);
    defaultCircuitBreakers(c);
    httpv3::HttpProtocolOptions http;
    bool http_used = false;
    // gRPC / HTTP2 applications only speak HTTP/2: the hop to them must too.
    if (model::isHttp2Protocol(in.service_port->protocol)) {
      http.mutable_explicit_http_config()->mutable_http2_protocol_options();
      http_used = true;
    }
    // Only the connection pool of the service's DestinationRule applies server side.
    if (const auto* edr = in.service ? ctx.destinationRule(*in.service) : nullptr) {
      Policy p = effectivePolicy(&edr->rule, nullptr, in.service_port->number);
      applyConnectionPool(p.connection_pool, *in.service_port, c, http, http_used);
    }
    if (http_used) {
      if (!http.has_explicit_http_config() && !http.has_use_downstream_protocol_config()) {
        http.mutable_explicit_http_config()->mutable_http_protocol_options();
      }
      (*c.mutable_typed_extension_protocol_options())[std::string(kHttpOptionsKey)].PackFrom(http);
    }
    auto* cla = c.mutable_load_assignment();
    cla->set_cluster_name(c.name());
    auto* sa = cla->add_endpoints()
                   ->add_lb_endpoints()
                   ->mutable_endpoint()
                   ->mutable_address()
                   ->mutable_socket_address();
    sa->set_address(localhost && !in.ingress_port ? "127.0.0.1" : in.address);
    sa->set_port_value(in.endpoint_port ? in.endpoint_port : in.target_port);
    if (!localhost) {
      // From 127.0.0.6, which the capture rules let through: a connection from the proxy's uid
      // to the workload's own address leaves on lo and would otherwise be redirected to 15006
      // again (a loop), exactly as Istio's inbound clusters avoid it.
      auto* bind = c.mutable_upstream_bind_config()->mutable_source_address();
      bind->set_address("127.0.0.6");
      bind->set_port_value(0);
    }
    out.clusters.push_back(std::move(c));
  }
}

cv3::Cluster originalDstCluster(const Ctx& ctx, std::string_view name) {
  cv3::Cluster c;
  c.set_name(std::string(name));
  c.set_type(cv3::Cluster::ORIGINAL_DST);
  c.set_lb_policy(cv3::Cluster::CLUSTER_PROVIDED);
  *c.mutable_connect_timeout() = connectTimeout(ctx);
  defaultCircuitBreakers(c);
  return c;
}

}  // namespace

void buildInboundClusters(const Ctx& ctx, ProxyResources& out) { inboundClusters(ctx, out); }

void buildClusters(const Ctx& ctx, ProxyResources& out) {
  outboundClusters(ctx, out);
  if (ctx.flavor == Flavor::kProxyless) return;
  if (ctx.part == Part::kShared && ctx.selection.only_hosts) return;
  cv3::Cluster bh;
  bh.set_name(std::string(kBlackHoleCluster));
  bh.set_type(cv3::Cluster::STATIC);
  bh.set_lb_policy(cv3::Cluster::ROUND_ROBIN);
  *bh.mutable_connect_timeout() = connectTimeout(ctx);
  out.clusters.push_back(std::move(bh));
  if (ctx.flavor != Flavor::kSidecar) return;
  auto pass = originalDstCluster(ctx, kPassthroughCluster);
  httpv3::HttpProtocolOptions http;
  http.mutable_use_downstream_protocol_config();
  *http.mutable_common_http_protocol_options()->mutable_idle_timeout() = durationMs(300000);
  (*pass.mutable_typed_extension_protocol_options())[std::string(kHttpOptionsKey)].PackFrom(http);
  out.clusters.push_back(std::move(pass));
  inboundClusters(ctx, out);
  auto inpass = originalDstCluster(ctx, kInboundPassthroughCluster);
  // 127.0.0.6 is the source iptables lets through to the application without recapture.
  auto* sa = inpass.mutable_upstream_bind_config()->mutable_source_address();
  sa->set_address("127.0.0.6");
  sa->set_port_value(0);
  out.clusters.push_back(std::move(inpass));
}

}  // namespace mast::control::translate::detail
