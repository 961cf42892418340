// Server::loadConfig: the Envoy bootstrap → immutable runtime config (listeners, filter chains,
// connection managers, clusters). Runs once on the main thread before workers start.
#include <google/protobuf/util/json_util.h>
#include <malloc.h>

#include "base/logging.h"
#include "envoy/config/bootstrap/v3/bootstrap.pb.h"
#include "envoy/extensions/filters/http/router/v3/router.pb.h"
#include "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.pb.h"
#include "envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy.pb.h"
#include "envoy/extensions/transport_sockets/tls/v3/tls.pb.h"
#include "proxy/access_log/access_log.h"
#include "proxy/config/bootstrap.h"
#include "proxy/filters/registry.h"
#include "proxy/router/route_table.h"
#include "proxy/server/cluster_manager.h"
#include "proxy/server/hcm_stats.h"
#include "proxy/server/listener_config.h"
#include "proxy/server/server.h"
#include "proxy/upstream/upstream.h"
#include "stats/store.h"

namespace mast::proxy::server {

namespace hcmv3 = envoy::extensions::filters::network::http_connection_manager::v3;

namespace {

std::chrono::milliseconds toMs(const google::protobuf::Duration& d) {
  return std::chrono::milliseconds(d.seconds() * 1000 + d.nanos() / 1000000);
}

std::string typeName(const google::protobuf::Any& any) {
  const std::string& url = any.type_url();
  return url.substr(url.rfind('/') + 1);
}

Result<std::shared_ptr<const net::TlsContext>> downstreamTls(const google::protobuf::Any& any,
                                                             const std::string& path) {
  envoy::extensions::transport_sockets::tls::v3::DownstreamTlsContext ctx;
  if (!any.UnpackTo(&ctx)) return Error{path + ": expected DownstreamTlsContext"};
  net::TlsContextConfig c;
  const auto& common = ctx.common_tls_context();
  for (const auto& a : common.alpn_protocols()) c.alpn.push_back(a);
  if (common.tls_certificates_size() == 0) {
    return Error{path +
                 ".common_tls_context.tls_certificates: a certificate is required (SDS "
                 "arrives with the control plane)"};
  }
  const auto& cert = common.tls_certificates(0);
  auto chain = net::readDataSource(cert.certificate_chain().filename(),
                                   cert.certificate_chain().inline_string());
  if (!chain)
    return Error{path +
                 ".common_tls_context.tls_certificates[0].certificate_chain: " + chain.error()};
  auto key = net::readDataSource(cert.private_key().filename(), cert.private_key().inline_string());
  if (!key)
    return Error{path + ".common_tls_context.tls_certificates[0].private_key: " + key.error()};
  c.cert_chain_pem = *chain;
  c.private_key_pem = *key;
  if (common.has_validation_context()) {
    const auto& vc = common.validation_context();
    auto ca = net::readDataSource(vc.trusted_ca().filename(), vc.trusted_ca().inline_string());
    if (!ca)
      return Error{path + ".common_tls_context.validation_context.trusted_ca: " + ca.error()};
    c.trusted_ca_pem = *ca;
  }
  c.require_client_certificate =
      ctx.has_require_client_certificate() && ctx.require_client_certificate().value();
  auto t = net::TlsContext::createServer(c);
  if (!t) return Error{path + ": " + t.error()};
  return *t;
}

}  // namespace

Status Server::loadConfig() {
  Status status = [this]() -> Status {
    YamlDocument doc;
    auto b = config::loadBootstrap({opts_.config_path, opts_.config_yaml}, &doc);
    if (!b) return Error{b.error()};
    bootstrap_ = std::move(*b);
    if (!opts_.service_node.empty()) bootstrap_->mutable_node()->set_id(opts_.service_node);
    if (!opts_.service_cluster.empty())
      bootstrap_->mutable_node()->set_cluster(opts_.service_cluster);
    if (!opts_.service_zone.empty()) {
      bootstrap_->mutable_node()->mutable_locality()->set_zone(opts_.service_zone);
    }
    stats_ = std::make_unique<stats::Store>(std::max(1u, opts_.concurrency));
    access_logs_ = std::make_unique<accesslog::AccessLogManager>();
    // Errors found while building name the field path; give them the YAML line too.
    if (auto s = buildClusters(); !s) {
      return Error{config::locateError(s.error(), opts_.config_path, doc)};
    }
    if (auto s = buildListeners(); !s) {
      return Error{config::locateError(s.error(), opts_.config_path, doc)};
    }
    return {};
  }();
  // Parsing (YAML → JSON → protos) peaks at several times what stays live, and glibc keeps the
  // freed pages: with 1,000 clusters that is ~11 MB of RSS. Nothing long-lived is left among
  // them (buildClusters frees the static cluster protos), so give them back.
  if (status) malloc_trim(0);
  return status;
}

Status Server::buildClusters() {
  const auto& sr = bootstrap_->static_resources();
  for (int i = 0; i < sr.clusters_size(); ++i) {
    std::string path = "static_resources.clusters[" + std::to_string(i) + "]";
    auto cfg = upstream::ClusterConfig::create(sr.clusters(i));
    if (!cfg) return Error{opts_.config_path + ": " + path + "." + cfg.error()};
    const auto& c = **cfg;
    auto ps = poolSettingsFor(c);
    if (!ps) return Error{opts_.config_path + ": " + path + "." + ps.error()};
    auto stats = std::make_shared<ClusterStats>(*stats_, c.name);
    clusters_[c.name] = std::make_shared<ClusterRuntime>(*this, *cfg, stats, *ps);
  }
  // Built: keep the clusters as bytes only (see staticClusterProtos()). DeleteSubrange frees
  // the messages; Clear() would keep them allocated for reuse.
  auto* list = bootstrap_->mutable_static_resources()->mutable_clusters();
  static_cluster_protos_.reserve(list->size());
  for (const auto& c : *list) static_cluster_protos_.push_back(c.SerializeAsString());
  list->DeleteSubrange(0, list->size());
  return {};
}

Result<PoolSettings> Server::poolSettingsFor(const upstream::ClusterConfig& c) {
  PoolSettings ps;
  ps.connect_timeout = c.connect_timeout;
  ps.idle_timeout = c.idle_timeout;
  ps.max_requests_per_connection = c.max_requests_per_connection;
  using P = upstream::UpstreamProtocol;
  // use_downstream_protocol_config: HTTP/1 here; WorkerCluster::pool picks an HTTP/2 pool for
  // HTTP/2 downstream requests.
  ps.codec = c.protocol == P::Http2  ? PoolSettings::Codec::Http2
             : c.protocol == P::Auto ? PoolSettings::Codec::Alpn
                                     : PoolSettings::Codec::Http1;
  ps.source_address = c.source_address;
  ps.buffer_limit = c.per_connection_buffer_limit_bytes;
  if (c.tls) {
    // auto_config offers "h2,http/1.1" unless the TLS context names its own protocols (Envoy's
    // default ALPN for such clusters).
    net::TlsContextConfig tls_cfg = *c.tls;
    if (c.protocol == P::Auto && tls_cfg.alpn.empty()) tls_cfg.alpn = {"h2", "http/1.1"};
    auto tls = net::TlsContext::createClient(tls_cfg);
    if (!tls) return Error{"transport_socket: " + tls.error()};
    ps.tls = *tls;
    ps.sni = c.tls->sni;
  }
  return ps;
}

std::shared_ptr<RdsSlot> Server::rdsSlot(const std::string& name) {
  auto slot = std::make_shared<RdsSlot>();
  slot->name = name;
  std::shared_ptr<const router::RouteTable> current;
  if (auto it = route_tables_.find(name); it != route_tables_.end()) current = it->second;
  slot->per_worker.assign(std::max(1u, opts_.concurrency), current);  // one per worker
  auto& list = rds_slots_[name];
  std::erase_if(list, [](const std::weak_ptr<RdsSlot>& w) { return w.expired(); });
  list.push_back(slot);
  return slot;
}

Result<std::shared_ptr<const HcmConfig>> Server::buildHcm(const google::protobuf::Any& any,
                                                          const std::string& path) {
  stats::Store& store = *stats_;
  accesslog::AccessLogManager& logs = *access_logs_;
  hcmv3::HttpConnectionManager h;
  any.UnpackTo(&h);
  filters::FilterContext fctx{stats_.get(), h.stat_prefix()};
  auto cfg = std::make_shared<HcmConfig>();
  cfg->stat_prefix = h.stat_prefix();
  switch (h.codec_type()) {
    case hcmv3::HttpConnectionManager::HTTP1:
      cfg->codec = HcmConfig::Codec::Http1;
      break;
    case hcmv3::HttpConnectionManager::HTTP2:
      cfg->codec = HcmConfig::Codec::Http2;
      break;
    default:
      cfg->codec = HcmConfig::Codec::Auto;
  }
  for (int i = 0; i < h.http_filters_size(); ++i) {
    const auto& f = h.http_filters(i);
    std::string t = typeName(f.typed_config());
    if (t == "envoy.extensions.filters.http.router.v3.Router") {
      envoy::extensions::filters::http::router::v3::Router r;
      f.typed_config().UnpackTo(&r);
      cfg->suppress_envoy_headers = r.suppress_envoy_headers();
      continue;
    }
    std::string fpath = path + ".http_filters[" + std::to_string(i) + "]";
    if (filters::isKnownFilterType(t)) {
      auto factory = filters::createFilterFactory(f, fpath, fctx);
      if (!factory) return Error{factory.error()};
      cfg->filters.emplace_back(f.name().empty() ? t : f.name(), *factory);
      continue;
    }
    if (f.is_optional()) {
      MAST_LOG(WARN, "{}: optional filter '{}' is not supported; skipped", fpath, t);
      continue;
    }
    return Error{fpath + ": HTTP filter '" + (t.empty() ? f.name() : t) +
                 "' is not available in this build"};
  }
  // Per-route configs of filters this build does not run are ignored (createPerRouteConfig
  // returns null for them), like Envoy does for filters that are not in the chain.
  router::PerFilterConfigFactory pf = [fctx](const std::string& name,
                                             const google::protobuf::Any& any) {
    return filters::createPerRouteConfig(name, any, "", fctx);
  };
  if (h.has_rds()) {
    if (h.rds().route_config_name().empty()) {
      return Error{path + ".rds.route_config_name: required"};
    }
    cfg->rds = rdsSlot(h.rds().route_config_name());
  } else {
    auto routes = router::RouteTable::create(h.route_config(), pf);
    if (!routes) return Error{path + ".route_config." + routes.error()};
    cfg->routes = *routes;
  }
  for (int i = 0; i < h.access_log_size(); ++i) {
    auto l = accesslog::createAccessLogger(h.access_log(i), logs);
    if (!l) return Error{path + ".access_log[" + std::to_string(i) + "]." + l.error()};
    cfg->access_logs.push_back(*l);
  }
  if (!h.server_name().empty()) cfg->server_name = h.server_name();
  cfg->server_header_pass_through =
      h.server_header_transformation() == hcmv3::HttpConnectionManager::PASS_THROUGH;
  if (h.has_generate_request_id()) cfg->generate_request_id = h.generate_request_id().value();
  if (h.has_use_remote_address()) cfg->use_remote_address = h.use_remote_address().value();
  cfg->xff_num_trusted_hops = h.xff_num_trusted_hops();
  cfg->skip_xff_append = h.skip_xff_append();
  cfg->via = h.via();
  if (h.has_stream_idle_timeout()) cfg->stream_idle_timeout = toMs(h.stream_idle_timeout());
  if (h.has_request_timeout()) cfg->request_timeout = toMs(h.request_timeout());
  if (h.has_drain_timeout()) cfg->drain_timeout = toMs(h.drain_timeout());
  if (h.common_http_protocol_options().has_idle_timeout()) {
    cfg->idle_timeout = toMs(h.common_http_protocol_options().idle_timeout());
  }
  if (h.common_http_protocol_options().has_max_requests_per_connection()) {
    cfg->max_requests_per_connection =
        h.common_http_protocol_options().max_requests_per_connection().value();
  }
  if (h.has_max_request_headers_kb())
    cfg->max_request_headers_kb = h.max_request_headers_kb().value();
  cfg->accept_http_10 = h.http_protocol_options().accept_http_10();
  for (int i = 0; i < h.upgrade_configs_size(); ++i) {
    const auto& u = h.upgrade_configs(i);
    std::string upath = path + ".upgrade_configs[" + std::to_string(i) + "]";
    if (u.upgrade_type().empty()) return Error{upath + ".upgrade_type: required"};
    if (u.filters_size() > 0) {
      return Error{upath + ".filters: upgrade-specific filter chains are not supported"};
    }
    std::string type = u.upgrade_type();
    for (auto& c : type) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    cfg->upgrades.emplace_back(std::move(type), !u.has_enabled() || u.enabled().value());
  }
  if (h.has_normalize_path()) cfg->normalize_path = h.normalize_path().value();
  cfg->merge_slashes = h.merge_slashes();
  cfg->stats = std::make_shared<HcmStats>(store, cfg->stat_prefix);
  return std::shared_ptr<const HcmConfig>(cfg);
}

namespace {

Result<std::shared_ptr<const TcpProxyConfig>> buildTcpProxy(const google::protobuf::Any& any,
                                                            const std::string& path,
                                                            stats::Store& store,
                                                            accesslog::AccessLogManager& logs) {
  envoy::extensions::filters::network::tcp_proxy::v3::TcpProxy t;
  any.UnpackTo(&t);
  auto cfg = std::make_shared<TcpProxyConfig>();
  cfg->stat_prefix = t.stat_prefix();
  if (!t.cluster().empty()) {
    cfg->clusters.emplace_back(t.cluster(), 1);
  } else {
    for (const auto& w : t.weighted_clusters().clusters()) {
      cfg->clusters.emplace_back(w.name(), w.weight());
      cfg->total_weight += w.weight();
    }
  }
  if (t.has_idle_timeout()) cfg->idle_timeout = toMs(t.idle_timeout());
  // Envoy's tcp_proxy takes one hash policy: source_ip (Istio's DestinationRule
  // consistentHash.useSourceIp on a TCP port) or filter_state, which has no source here.
  if (t.hash_policy_size() > 1) return Error{path + ".hash_policy[1]: at most one hash policy"};
  for (int i = 0; i < t.hash_policy_size(); ++i) {
    if (!t.hash_policy(i).has_source_ip()) {
      return Error{path + ".hash_policy[" + std::to_string(i) +
                   "]: only source_ip is supported (filter_state is not)"};
    }
    cfg->hash_source_ip = true;
  }
  for (int i = 0; i < t.access_log_size(); ++i) {
    auto l = accesslog::createAccessLogger(t.access_log(i), logs);
    if (!l) return Error{path + ".access_log[" + std::to_string(i) + "]." + l.error()};
    cfg->access_logs.push_back(*l);
  }
  cfg->stats = std::make_shared<TcpProxyStats>(store, cfg->stat_prefix);
  return std::shared_ptr<const TcpProxyConfig>(cfg);
}

}  // namespace

Status Server::buildListeners() {
  const auto& sr = bootstrap_->static_resources();
  for (int li = 0; li < sr.listeners_size(); ++li) {
    std::string lpath =
        opts_.config_path + ": static_resources.listeners[" + std::to_string(li) + "]";
    auto cfg = buildListener(sr.listeners(li), lpath);
    if (!cfg) return Error{cfg.error()};
    ListenerEntry e;
    e.config = *cfg;
    listeners_.push_back(std::move(e));
  }
  return {};
}

Result<std::shared_ptr<ListenerConfig>> Server::buildListener(
    const envoy::config::listener::v3::Listener& l, const std::string& lpath) {
  {
    auto cfg = std::make_shared<ListenerConfig>();
    cfg->name = l.name();
    const auto& sa = l.address().socket_address();
    auto ep = net::parseEndpoint(sa.address(), sa.port_value());
    if (!ep) return Error{lpath + ".address.socket_address: " + ep.error()};
    cfg->address = *ep;
    cfg->address_str = net::toString(*ep);
    if (l.has_bind_to_port()) cfg->bind_to_port = l.bind_to_port().value();
    if (l.has_use_original_dst()) cfg->use_original_dst = l.use_original_dst().value();
    if (l.has_transparent()) cfg->transparent = l.transparent().value();
    if (l.has_freebind()) cfg->freebind = l.freebind().value();
    if (l.has_per_connection_buffer_limit_bytes()) {
      cfg->per_connection_buffer_limit_bytes = l.per_connection_buffer_limit_bytes().value();
    }
    if (l.has_listener_filters_timeout()) {
      cfg->listener_filters_timeout = toMs(l.listener_filters_timeout());
    }
    for (const auto& lf : l.listener_filters()) {
      std::string t = lf.has_typed_config() ? typeName(lf.typed_config()) : lf.name();
      if (t.find("tls_inspector") != std::string::npos ||
          t.find("TlsInspector") != std::string::npos) {
        cfg->tls_inspector = true;
      } else if (t.find("original_dst") != std::string::npos ||
                 t.find("OriginalDst") != std::string::npos) {
        cfg->original_dst_filter = true;
      } else if (t.find("http_inspector") != std::string::npos ||
                 t.find("HttpInspector") != std::string::npos) {
        cfg->http_inspector = true;
      }
    }
    auto buildChain = [&](const envoy::config::listener::v3::FilterChain& fc,
                          const std::string& cpath) -> Result<FilterChainConfig> {
      FilterChainConfig c;
      c.name = fc.name();
      const auto& m = fc.filter_chain_match();
      if (m.has_destination_port()) c.match.destination_port = m.destination_port().value();
      for (const auto& r : m.prefix_ranges()) {
        auto cidr = net::parseCidr(
            r.address_prefix(),
            r.has_prefix_len() ? r.prefix_len().value()
                               : (r.address_prefix().find(':') != std::string::npos ? 128 : 32));
        if (!cidr) return Error{cpath + ".filter_chain_match.prefix_ranges: " + cidr.error()};
        c.match.prefix_ranges.push_back(*cidr);
      }
      for (const auto& r : m.source_prefix_ranges()) {
        auto cidr = net::parseCidr(
            r.address_prefix(),
            r.has_prefix_len() ? r.prefix_len().value()
                               : (r.address_prefix().find(':') != std::string::npos ? 128 : 32));
        if (!cidr)
          return Error{cpath + ".filter_chain_match.source_prefix_ranges: " + cidr.error()};
        c.match.source_prefix_ranges.push_back(*cidr);
      }
      for (uint32_t p : m.source_ports()) c.match.source_ports.push_back(p);
      for (const auto& n : m.server_names()) c.match.server_names.push_back(n);
      c.match.transport_protocol = m.transport_protocol();
      for (const auto& p : m.application_protocols()) c.match.application_protocols.push_back(p);
      if (fc.has_transport_socket() && fc.transport_socket().has_typed_config() &&
          typeName(fc.transport_socket().typed_config()).find("DownstreamTlsContext") !=
              std::string::npos) {
        auto tls = downstreamTls(fc.transport_socket().typed_config(),
                                 cpath + ".transport_socket.typed_config");
        if (!tls) return Error{tls.error()};
        c.tls = *tls;
      }
      for (int fi = 0; fi < fc.filters_size(); ++fi) {
        const auto& f = fc.filters(fi);
        std::string fpath = cpath + ".filters[" + std::to_string(fi) + "].typed_config";
        std::string t = typeName(f.typed_config());
        if (t ==
            "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager") {
          auto h = buildHcm(f.typed_config(), fpath);
          if (!h) return Error{h.error()};
          c.hcm = *h;
        } else if (t == "envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy") {
          auto tp = buildTcpProxy(f.typed_config(), fpath, *stats_, *access_logs_);
          if (!tp) return Error{tp.error()};
          c.tcp_proxy = *tp;
        }
      }
      if (!c.hcm && !c.tcp_proxy)
        return Error{cpath + ".filters: a terminal network filter is required"};
      return c;
    };
    for (int ci = 0; ci < l.filter_chains_size(); ++ci) {
      auto c =
          buildChain(l.filter_chains(ci), lpath + ".filter_chains[" + std::to_string(ci) + "]");
      if (!c) return Error{c.error()};
      cfg->filter_chains.push_back(std::move(*c));
    }
    if (l.has_default_filter_chain()) {
      auto c = buildChain(l.default_filter_chain(), lpath + ".default_filter_chain");
      if (!c) return Error{c.error()};
      cfg->default_filter_chain = std::move(*c);
    }
    return cfg;
  }
}

}  // namespace mast::proxy::server
