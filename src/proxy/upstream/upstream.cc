#include "proxy/upstream/upstream.h"

#include <algorithm>
#include <numeric>

#include "base/hash.h"
#include "envoy/config/cluster/v3/cluster.pb.h"
#include "envoy/extensions/transport_sockets/tls/v3/tls.pb.h"
#include "envoy/extensions/upstreams/http/v3/http_protocol_options.pb.h"

namespace mast::upstream {

namespace cv3 = envoy::config::cluster::v3;

namespace {

std::chrono::milliseconds toMs(const google::protobuf::Duration& d) {
  return std::chrono::milliseconds(d.seconds() * 1000 + d.nanos() / 1000000);
}

Result<net::TlsContextConfig> parseUpstreamTls(const google::protobuf::Any& any,
                                               const std::string& path) {
  envoy::extensions::transport_sockets::tls::v3::UpstreamTlsContext ctx;
  if (!any.UnpackTo(&ctx)) return Error{path + ": expected UpstreamTlsContext"};
  net::TlsContextConfig c;
  c.sni = ctx.sni();
  const auto& common = ctx.common_tls_context();
  for (const auto& a : common.alpn_protocols()) c.alpn.push_back(a);
  if (common.tls_certificates_size() > 0) {
    const auto& cert = common.tls_certificates(0);
    auto chain = net::readDataSource(cert.certificate_chain().filename(),
                                     cert.certificate_chain().inline_string().empty()
                                         ? cert.certificate_chain().inline_bytes()
                                         : cert.certificate_chain().inline_string());
    if (!chain)
      return Error{path +
                   ".common_tls_context.tls_certificates[0].certificate_chain: " + chain.error()};
    auto key = net::readDataSource(cert.private_key().filename(),
                                   cert.private_key().inline_string().empty()
                                       ? cert.private_key().inline_bytes()
                                       : cert.private_key().inline_string());
    if (!key)
      return Error{path + ".common_tls_context.tls_certificates[0].private_key: " + key.error()};
    c.cert_chain_pem = *chain;
    c.private_key_pem = *key;
  }
  if (common.has_validation_context()) {
    const auto& vc = common.validation_context();
    auto ca =
        net::readDataSource(vc.trusted_ca().filename(), vc.trusted_ca().inline_string().empty()
                                                            ? vc.trusted_ca().inline_bytes()
                                                            : vc.trusted_ca().inline_string());
    if (!ca)
      return Error{path + ".common_tls_context.validation_context.trusted_ca: " + ca.error()};
    c.trusted_ca_pem = *ca;
    using SM = envoy::type::matcher::v3::StringMatcher;
    auto addMatcher = [&](const SM& m, net::SanMatcher::Type type) {
      net::SanMatcher s;
      s.type = type;
      switch (m.match_pattern_case()) {
        case SM::kExact:
          s.kind = net::SanMatcher::Kind::Exact;
          s.value = m.exact();
          break;
        case SM::kPrefix:
          s.kind = net::SanMatcher::Kind::Prefix;
          s.value = m.prefix();
          break;
        case SM::kSuffix:
          s.kind = net::SanMatcher::Kind::Suffix;
          s.value = m.suffix();
          break;
        case SM::kContains:
          s.kind = net::SanMatcher::Kind::Contains;
          s.value = m.contains();
          break;
        case SM::kSafeRegex:
          s.kind = net::SanMatcher::Kind::Regex;
          s.value = m.safe_regex().regex();
          break;
        default:
          return;
      }
      c.san_matchers.push_back(std::move(s));
    };
    for (const auto& t : vc.match_typed_subject_alt_names()) {
      using T = envoy::extensions::transport_sockets::tls::v3::SubjectAltNameMatcher;
      net::SanMatcher::Type type = net::SanMatcher::Type::Any;
      switch (t.san_type()) {
        case T::DNS:
          type = net::SanMatcher::Type::Dns;
          break;
        case T::URI:
          type = net::SanMatcher::Type::Uri;
          break;
        case T::EMAIL:
          type = net::SanMatcher::Type::Email;
          break;
        case T::IP_ADDRESS:
          type = net::SanMatcher::Type::IpAddress;
          break;
        default:
          break;
      }
      addMatcher(t.matcher(), type);
    }
    for (const auto& m : vc.match_subject_alt_names()) addMatcher(m, net::SanMatcher::Type::Any);
  }
  return c;
}

}  // namespace

Result<std::shared_ptr<const ClusterConfig>> ClusterConfig::create(const cv3::Cluster& p) {
  auto c = std::make_shared<ClusterConfig>();
  c->name = p.name();
  if (c->name.empty()) return Error{"name: a cluster needs a name"};
  switch (p.type()) {
    case cv3::Cluster::STATIC:
      c->type = DiscoveryType::Static;
      break;
    case cv3::Cluster::STRICT_DNS:
      c->type = DiscoveryType::StrictDns;
      break;
    case cv3::Cluster::LOGICAL_DNS:
      c->type = DiscoveryType::LogicalDns;
      break;
    case cv3::Cluster::ORIGINAL_DST:
      c->type = DiscoveryType::OriginalDst;
      break;
    case cv3::Cluster::EDS:
      c->type = DiscoveryType::Eds;
      break;
    default:
      return Error{"type: unsupported cluster type"};
  }
  switch (p.lb_policy()) {
    case cv3::Cluster::ROUND_ROBIN:
      c->lb_policy = LbPolicy::RoundRobin;
      break;
    case cv3::Cluster::LEAST_REQUEST:
      c->lb_policy = LbPolicy::LeastRequest;
      if (p.least_request_lb_config().has_choice_count()) {
        c->least_request_choice_count = p.least_request_lb_config().choice_count().value();
      }
      break;
    case cv3::Cluster::RANDOM:
      c->lb_policy = LbPolicy::Random;
      break;
    case cv3::Cluster::RING_HASH:
      c->lb_policy = LbPolicy::RingHash;
      if (p.ring_hash_lb_config().has_minimum_ring_size()) {
        c->ring_min_size = p.ring_hash_lb_config().minimum_ring_size().value();
      }
      if (p.ring_hash_lb_config().has_maximum_ring_size()) {
        c->ring_max_size = p.ring_hash_lb_config().maximum_ring_size().value();
      }
      break;
    case cv3::Cluster::MAGLEV:
      c->lb_policy = LbPolicy::Maglev;
      if (p.maglev_lb_config().has_table_size()) {
        c->maglev_table_size = p.maglev_lb_config().table_size().value();
      }
      break;
    case cv3::Cluster::CLUSTER_PROVIDED:
      c->lb_policy = LbPolicy::ClusterProvided;
      break;
    default:
      return Error{"lb_policy: unsupported load balancing policy"};
  }
  if (c->type == DiscoveryType::OriginalDst) {
    if (p.lb_policy() != cv3::Cluster::CLUSTER_PROVIDED &&
        p.lb_policy() != cv3::Cluster::ROUND_ROBIN) {
      return Error{"lb_policy: ORIGINAL_DST clusters need CLUSTER_PROVIDED"};
    }
    c->use_http_header_for_original_dst = p.original_dst_lb_config().use_http_header();
  }
  if (p.has_connect_timeout()) c->connect_timeout = toMs(p.connect_timeout());
  if (p.has_dns_refresh_rate()) c->dns_refresh_rate = toMs(p.dns_refresh_rate());
  c->dns_v4_only = p.dns_lookup_family() == cv3::Cluster::V4_ONLY ||
                   p.dns_lookup_family() == cv3::Cluster::V4_PREFERRED;
  if (p.has_per_connection_buffer_limit_bytes()) {
    c->per_connection_buffer_limit_bytes = p.per_connection_buffer_limit_bytes().value();
  }
  for (const auto& t : p.circuit_breakers().thresholds()) {
    if (t.priority() != envoy::config::core::v3::DEFAULT) continue;
    if (t.has_max_connections()) c->thresholds.max_connections = t.max_connections().value();
    if (t.has_max_pending_requests()) {
      c->thresholds.max_pending_requests = t.max_pending_requests().value();
    }
    if (t.has_max_requests()) c->thresholds.max_requests = t.max_requests().value();
    if (t.has_max_retries()) c->thresholds.max_retries = t.max_retries().value();
  }
  if (p.has_outlier_detection()) {
    const auto& o = p.outlier_detection();
    auto& x = c->outlier;
    x.enabled = true;
    if (o.has_consecutive_5xx()) x.consecutive_5xx = o.consecutive_5xx().value();
    if (o.has_consecutive_gateway_failure()) {
      x.consecutive_gateway_failure = o.consecutive_gateway_failure().value();
    }
    if (o.has_consecutive_local_origin_failure()) {
      x.consecutive_local_origin_failure = o.consecutive_local_origin_failure().value();
    }
    if (o.has_interval()) x.interval = toMs(o.interval());
    if (o.has_base_ejection_time()) x.base_ejection_time = toMs(o.base_ejection_time());
    if (o.has_max_ejection_time()) x.max_ejection_time = toMs(o.max_ejection_time());
    if (o.has_max_ejection_percent()) x.max_ejection_percent = o.max_ejection_percent().value();
    if (o.has_enforcing_consecutive_5xx()) {
      x.enforcing_consecutive_5xx = o.enforcing_consecutive_5xx().value();
    }
    if (o.has_enforcing_consecutive_gateway_failure()) {
      x.enforcing_consecutive_gateway_failure = o.enforcing_consecutive_gateway_failure().value();
    }
    x.split_external_local_origin_errors = o.split_external_local_origin_errors();
    if (x.interval.count() <= 0) return Error{"outlier_detection.interval: must be positive"};
  }
  if (p.health_checks_size() > 0) {
    const auto& h = p.health_checks(0);
    HealthCheckConfig hc;
    hc.timeout = toMs(h.timeout());
    hc.interval = toMs(h.interval());
    if (hc.interval.count() <= 0) return Error{"health_checks[0].interval: must be positive"};
    if (hc.timeout.count() <= 0) return Error{"health_checks[0].timeout: must be positive"};
    hc.interval_jitter = toMs(h.interval_jitter());
    if (h.has_unhealthy_threshold()) hc.unhealthy_threshold = h.unhealthy_threshold().value();
    if (h.has_healthy_threshold()) hc.healthy_threshold = h.healthy_threshold().value();
    if (h.has_http_health_check()) {
      hc.kind = HealthCheckConfig::Kind::Http;
      hc.path = h.http_health_check().path();
      if (hc.path.empty()) return Error{"health_checks[0].http_health_check.path: required"};
      hc.host = h.http_health_check().host();
      for (const auto& r : h.http_health_check().expected_statuses()) {
        hc.expected_statuses.emplace_back(r.start(), r.end());
      }
    } else if (h.has_tcp_health_check()) {
      hc.kind = HealthCheckConfig::Kind::Tcp;
    } else {
      return Error{"health_checks[0]: only http_health_check and tcp_health_check are supported"};
    }
    if (hc.expected_statuses.empty()) hc.expected_statuses.emplace_back(200, 201);
    c->health_check = std::make_shared<const HealthCheckConfig>(std::move(hc));
  }
  if (p.common_lb_config().has_healthy_panic_threshold()) {
    c->healthy_panic_threshold =
        static_cast<uint32_t>(p.common_lb_config().healthy_panic_threshold().value());
  }
  // Upstream protocol: HttpProtocolOptions (typed_extension_protocol_options) or the legacy
  // http2_protocol_options field.
  if (p.has_http2_protocol_options()) c->protocol = UpstreamProtocol::Http2;
  static const std::string kOptionsPath =
      "typed_extension_protocol_options[envoy.extensions.upstreams.http.v3.HttpProtocolOptions]";
  auto it = p.typed_extension_protocol_options().find(
      "envoy.extensions.upstreams.http.v3.HttpProtocolOptions");
  if (it != p.typed_extension_protocol_options().end()) {
    envoy::extensions::upstreams::http::v3::HttpProtocolOptions o;
    if (!it->second.UnpackTo(&o)) return Error{kOptionsPath + ": expected HttpProtocolOptions"};
    using O = envoy::extensions::upstreams::http::v3::HttpProtocolOptions;
    switch (o.upstream_protocol_options_case()) {
      case O::kExplicitHttpConfig:
        if (o.explicit_http_config().has_http3_protocol_options()) {
          return Error{kOptionsPath +
                       ".explicit_http_config.http3_protocol_options: HTTP/3 upstreams are not "
                       "supported"};
        }
        c->protocol = o.explicit_http_config().has_http2_protocol_options()
                          ? UpstreamProtocol::Http2
                          : UpstreamProtocol::Http1;
        break;
      case O::kUseDownstreamProtocolConfig:
        // Envoy: an HTTP/3 downstream falls back to HTTP/2 when HTTP/3 is not configured; we
        // have no HTTP/3 on either side.
        if (o.use_downstream_protocol_config().has_http3_protocol_options()) {
          return Error{kOptionsPath +
                       ".use_downstream_protocol_config.http3_protocol_options: HTTP/3 upstreams "
                       "are not supported"};
        }
        c->protocol = UpstreamProtocol::UseDownstream;
        break;
      case O::kAutoConfig:
        if (o.auto_config().has_http3_protocol_options()) {
          return Error{kOptionsPath +
                       ".auto_config.http3_protocol_options: HTTP/3 upstreams are not supported"};
        }
        c->protocol = UpstreamProtocol::Auto;
        break;
      case O::UPSTREAM_PROTOCOL_OPTIONS_NOT_SET:
        // Envoy's validation requires one of the three.
        return Error{kOptionsPath +
                     ": one of explicit_http_config, use_downstream_protocol_config or "
                     "auto_config is required"};
    }
    if (o.has_common_http_protocol_options()) {
      const auto& ch = o.common_http_protocol_options();
      if (ch.has_idle_timeout()) c->idle_timeout = toMs(ch.idle_timeout());
      if (ch.has_max_requests_per_connection()) {
        c->max_requests_per_connection = ch.max_requests_per_connection().value();
      }
    }
  }
  if (p.has_max_requests_per_connection()) {
    c->max_requests_per_connection = p.max_requests_per_connection().value();
  }
  if (p.has_transport_socket()) {
    const auto& ts = p.transport_socket();
    if (ts.has_typed_config() &&
        ts.typed_config().type_url().find("UpstreamTlsContext") != std::string::npos) {
      auto tls = parseUpstreamTls(ts.typed_config(), "transport_socket.typed_config");
      if (!tls) return Error{tls.error()};
      c->tls = std::make_shared<const net::TlsContextConfig>(std::move(*tls));
    } else if (ts.has_typed_config() &&
               ts.typed_config().type_url().find("RawBuffer") == std::string::npos) {
      return Error{"transport_socket: unsupported transport socket '" +
                   ts.typed_config().type_url() + "'"};
    }
  }
  // Envoy rejects ALPN-based protocol selection on a transport socket without ALPN (plaintext):
  // "ALPN configured for cluster X which has a non-ALPN transport socket".
  if (c->protocol == UpstreamProtocol::Auto && !c->tls) {
    return Error{kOptionsPath + ".auto_config: ALPN configured for cluster " + c->name +
                 " which has a non-ALPN transport socket (auto_config needs an "
                 "envoy.transport_sockets.tls transport_socket)"};
  }
  if (p.has_upstream_bind_config()) {
    const auto& sa = p.upstream_bind_config().source_address();
    auto ep = net::parseEndpoint(sa.address(), sa.port_value());
    if (!ep) return Error{"upstream_bind_config.source_address: " + ep.error()};
    c->source_address = *ep;
  }
  auto endpoints = parseLoadAssignment(p.load_assignment(), c->type == DiscoveryType::Static);
  if (!endpoints) return Error{endpoints.error()};
  c->endpoints = std::move(*endpoints);
  if (c->type == DiscoveryType::Eds) {
    c->eds_service_name = p.eds_cluster_config().service_name().empty()
                              ? c->name
                              : p.eds_cluster_config().service_name();
  }
  if (c->type == DiscoveryType::LogicalDns && c->endpoints.size() != 1) {
    return Error{"load_assignment: LOGICAL_DNS clusters need exactly one endpoint"};
  }
  return std::shared_ptr<const ClusterConfig>(c);
}

Result<std::vector<EndpointSpec>> parseLoadAssignment(
    const envoy::config::endpoint::v3::ClusterLoadAssignment& la, bool require_ip) {
  std::vector<EndpointSpec> out;
  for (int li = 0; li < la.endpoints_size(); ++li) {
    const auto& loc = la.endpoints(li);
    for (int ei = 0; ei < loc.lb_endpoints_size(); ++ei) {
      const auto& le = loc.lb_endpoints(ei);
      std::string epath = "load_assignment.endpoints[" + std::to_string(li) + "].lb_endpoints[" +
                          std::to_string(ei) + "].endpoint.address";
      const auto& sa = le.endpoint().address().socket_address();
      if (sa.address().empty()) return Error{epath + ".socket_address.address: required"};
      EndpointSpec e;
      e.address = sa.address();
      e.port = sa.port_value();
      if (e.port == 0 || e.port > 65535) {
        return Error{epath + ".socket_address.port_value: must be in 1..65535"};
      }
      if (require_ip) {
        auto ep = net::parseEndpoint(e.address, e.port);
        if (!ep) {
          return Error{epath + ".socket_address.address: " + ep.error() +
                       " (STATIC and EDS endpoints need IP addresses)"};
        }
      }
      e.weight = le.has_load_balancing_weight() ? le.load_balancing_weight().value() : 1;
      if (e.weight == 0) e.weight = 1;
      e.priority = loc.priority();
      e.region = loc.locality().region();
      e.zone = loc.locality().zone();
      e.sub_zone = loc.locality().sub_zone();
      e.hostname = le.endpoint().hostname().empty() ? e.address : le.endpoint().hostname();
      auto hs = le.health_status();
      e.healthy = hs == envoy::config::core::v3::UNKNOWN || hs == envoy::config::core::v3::HEALTHY;
      out.push_back(std::move(e));
    }
  }
  return out;
}

Host::Host(net::Endpoint a, std::string h, uint32_t w, uint32_t p)
    : address(a), label(net::toString(a)), hostname(std::move(h)), weight(w ? w : 1), priority(p) {}

// === Load balancers ===

namespace {

// Hosts of one priority level, and which levels get what share of traffic.
struct Priorities {
  std::vector<std::vector<HostPtr>> levels;
  uint32_t panic_threshold = 50;

  explicit Priorities(const HostList& hosts, uint32_t panic) : panic_threshold(panic) {
    for (const auto& h : hosts) {
      if (levels.size() <= h->priority) levels.resize(h->priority + 1);
      levels[h->priority].push_back(h);
    }
  }
  // Envoy's priority load with overprovisioning factor 1.4; returns the level and whether it
  // is in panic (use every host regardless of health).
  std::pair<const std::vector<HostPtr>*, bool> pick(uint64_t random) const {
    if (levels.empty()) return {nullptr, false};
    std::vector<uint32_t> health(levels.size(), 0);
    uint32_t total = 0;
    for (size_t p = 0; p < levels.size(); ++p) {
      if (levels[p].empty()) continue;
      size_t healthy = 0;
      for (const auto& h : levels[p]) healthy += h->healthy() ? 1 : 0;
      health[p] = std::min<uint32_t>(100, static_cast<uint32_t>(140 * healthy / levels[p].size()));
      total += health[p];
    }
    if (total == 0) {
      // Everything unhealthy: panic on the first non-empty level, unless
      // healthy_panic_threshold is 0 (panic disabled: no host, 503 UH).
      for (const auto& l : levels) {
        if (!l.empty()) return {&l, panic_threshold > 0};
      }
      return {nullptr, false};
    }
    // Normalise when the sum of health is under 100 (Envoy).
    uint32_t r = static_cast<uint32_t>(random % std::min<uint32_t>(100, total));
    uint32_t remaining = 100;
    for (size_t p = 0; p < levels.size(); ++p) {
      uint32_t load = std::min(remaining, health[p]);
      remaining -= load;
      if (r < load) {
        size_t healthy = 0;
        for (const auto& h : levels[p]) healthy += h->healthy() ? 1 : 0;
        bool panic = healthy * 100 < panic_threshold * levels[p].size();
        return {&levels[p], panic};
      }
      r -= load;
    }
    for (const auto& l : levels) {
      if (!l.empty()) return {&l, false};
    }
    return {nullptr, false};
  }
};

// SplitMix64 (Steele, Lea, Flood 2014): 8 bytes of state per load balancer, where
// std::mt19937_64 takes 2.5 KB, and there is one balancer per cluster and worker. Good enough to
// pick hosts; not for anything secret.
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t operator()() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }

 private:
  uint64_t state_;
};

class BaseLb : public LoadBalancer {
 public:
  BaseLb(const ClusterConfig& cfg, std::shared_ptr<const HostList> hosts, uint64_t seed)
      : hosts_(std::move(hosts)), prio_(*hosts_, cfg.healthy_panic_threshold), rng_(seed) {}

 protected:
  static bool usable(const Host& h, bool panic, const Host* exclude) {
    return (panic || h.healthy()) && &h != exclude;
  }
  std::shared_ptr<const HostList> hosts_;
  Priorities prio_;
  SplitMix64 rng_;
};

class RoundRobinLb final : public BaseLb {
 public:
  using BaseLb::BaseLb;
  HostPtr chooseHost(std::optional<uint64_t>, const Host* exclude) override {
    auto [level, panic] = prio_.pick(rng_());
    if (!level || level->empty()) return nullptr;
    const auto& hs = *level;
    bool weighted = false;
    for (const auto& h : hs) weighted |= h->weight != hs[0]->weight;
    if (!weighted) {
      for (size_t i = 0; i < hs.size(); ++i) {
        const HostPtr& h = hs[(next_++) % hs.size()];
        if (usable(*h, panic, exclude)) return h;
      }
      return exclude && hs.size() == 1 && usable(*hs[0], panic, nullptr) ? hs[0] : nullptr;
    }
    // Smooth weighted round robin.
    if (current_.size() != hs.size()) current_.assign(hs.size(), 0);
    int64_t total = 0;
    int best = -1;
    for (size_t i = 0; i < hs.size(); ++i) {
      if (!usable(*hs[i], panic, exclude)) continue;
      current_[i] += hs[i]->weight;
      total += hs[i]->weight;
      if (best < 0 || current_[i] > current_[best]) best = static_cast<int>(i);
    }
    if (best < 0) return nullptr;
    current_[best] -= total;
    return hs[best];
  }

 private:
  uint64_t next_ = 0;
  std::vector<int64_t> current_;
};

class RandomLb final : public BaseLb {
 public:
  using BaseLb::BaseLb;
  HostPtr chooseHost(std::optional<uint64_t>, const Host* exclude) override {
    auto [level, panic] = prio_.pick(rng_());
    if (!level || level->empty()) return nullptr;
    const auto& hs = *level;
    size_t start = rng_() % hs.size();
    for (size_t i = 0; i < hs.size(); ++i) {
      const HostPtr& h = hs[(start + i) % hs.size()];
      if (usable(*h, panic, exclude)) return h;
    }
    return nullptr;
  }
};

class LeastRequestLb final : public BaseLb {
 public:
  LeastRequestLb(const ClusterConfig& cfg, std::shared_ptr<const HostList> hosts, uint64_t seed)
      : BaseLb(cfg, std::move(hosts), seed),
        choices_(std::max(2u, cfg.least_request_choice_count)) {}
  HostPtr chooseHost(std::optional<uint64_t>, const Host* exclude) override {
    auto [level, panic] = prio_.pick(rng_());
    if (!level || level->empty()) return nullptr;
    const auto& hs = *level;
    // Power of N choices among usable hosts; load = (active requests + 1) / weight.
    HostPtr best;
    double best_score = 0;
    uint32_t picked = 0;
    for (size_t attempt = 0; attempt < hs.size() * 2 + choices_ && picked < choices_; ++attempt) {
      const HostPtr& h = hs[rng_() % hs.size()];
      if (!usable(*h, panic, exclude)) continue;
      ++picked;
      double score = (h->active_requests.load(std::memory_order_relaxed) + 1.0) / h->weight;
      if (!best || score < best_score) {
        best = h;
        best_score = score;
      }
    }
    if (best) return best;
    for (const auto& h : hs) {
      if (usable(*h, panic, exclude)) return h;
    }
    return nullptr;
  }

 private:
  uint32_t choices_;
};

class RingHashLb final : public BaseLb {
 public:
  RingHashLb(const ClusterConfig& cfg, std::shared_ptr<const HostList> hosts, uint64_t seed)
      : BaseLb(cfg, std::move(hosts), seed) {
    if (hosts_->empty()) return;
    uint64_t total_weight = 0;
    for (const auto& h : *hosts_) total_weight += h->weight;
    uint64_t min_w = UINT64_MAX;
    for (const auto& h : *hosts_) min_w = std::min<uint64_t>(min_w, h->weight);
    // Scale so the lightest host gets at least one entry, within [min, max] ring size.
    double scale = std::min<double>(
        std::max<double>(static_cast<double>(cfg.ring_min_size), double(total_weight) / min_w),
        double(cfg.ring_max_size));
    for (const auto& h : *hosts_) {
      uint64_t n = std::max<uint64_t>(1, uint64_t(scale * h->weight / total_weight + 0.5));
      for (uint64_t i = 0; i < n; ++i) {
        ring_.emplace_back(xxHash64(h->label + "_" + std::to_string(i)), h.get());
      }
    }
    std::sort(ring_.begin(), ring_.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    for (const auto& h : *hosts_) by_ptr_.emplace_back(h.get(), h);
  }
  HostPtr chooseHost(std::optional<uint64_t> hash, const Host* exclude) override {
    if (ring_.empty()) return nullptr;
    uint64_t hv = hash ? *hash : rng_();
    auto it = std::lower_bound(ring_.begin(), ring_.end(), hv,
                               [](const auto& e, uint64_t v) { return e.first < v; });
    size_t idx = it == ring_.end() ? 0 : static_cast<size_t>(it - ring_.begin());
    bool any_healthy = false;
    for (const auto& h : *hosts_) any_healthy |= h->healthy();
    for (size_t i = 0; i < ring_.size(); ++i) {
      Host* h = ring_[(idx + i) % ring_.size()].second;
      if (usable(*h, !any_healthy, exclude)) return find(h);
    }
    return nullptr;
  }

 private:
  HostPtr find(Host* h) const {
    for (const auto& [p, sp] : by_ptr_) {
      if (p == h) return sp;
    }
    return nullptr;
  }
  std::vector<std::pair<uint64_t, Host*>> ring_;
  std::vector<std::pair<Host*, HostPtr>> by_ptr_;
};

class MaglevLb final : public BaseLb {
 public:
  MaglevLb(const ClusterConfig& cfg, std::shared_ptr<const HostList> hosts, uint64_t seed)
      : BaseLb(cfg, std::move(hosts), seed) {
    const auto& hs = *hosts_;
    if (hs.empty()) return;
    uint64_t m = cfg.maglev_table_size;
    table_.assign(m, -1);
    std::vector<uint64_t> offset(hs.size()), skip(hs.size()), next(hs.size(), 0);
    uint32_t max_w = 0;
    for (size_t i = 0; i < hs.size(); ++i) {
      offset[i] = xxHash64(hs[i]->label, 0) % m;
      skip[i] = xxHash64(hs[i]->label, 1) % (m - 1) + 1;
      max_w = std::max(max_w, hs[i]->weight);
    }
    // Weighted Maglev: a host takes a turn when its accumulated normalised weight allows.
    std::vector<double> credit(hs.size(), 0);
    uint64_t filled = 0;
    while (filled < m) {
      for (size_t i = 0; i < hs.size() && filled < m; ++i) {
        credit[i] += double(hs[i]->weight) / max_w;
        if (credit[i] < 1.0) continue;
        credit[i] -= 1.0;
        uint64_t c;
        do {
          c = (offset[i] + next[i] * skip[i]) % m;
          ++next[i];
        } while (table_[c] >= 0);
        table_[c] = static_cast<int32_t>(i);
        ++filled;
      }
    }
  }
  HostPtr chooseHost(std::optional<uint64_t> hash, const Host* exclude) override {
    if (table_.empty()) return nullptr;
    uint64_t hv = hash ? *hash : rng_();
    const auto& hs = *hosts_;
    bool any_healthy = false;
    for (const auto& h : hs) any_healthy |= h->healthy();
    for (size_t i = 0; i < table_.size(); ++i) {
      const HostPtr& h = hs[table_[(hv + i) % table_.size()]];
      if (usable(*h, !any_healthy, exclude)) return h;
    }
    return nullptr;
  }

 private:
  std::vector<int32_t> table_;
};

}  // namespace

std::unique_ptr<LoadBalancer> createLoadBalancer(const ClusterConfig& cfg,
                                                 std::shared_ptr<const HostList> hosts,
                                                 uint64_t seed) {
  switch (cfg.lb_policy) {
    case LbPolicy::LeastRequest:
      return std::make_unique<LeastRequestLb>(cfg, std::move(hosts), seed);
    case LbPolicy::Random:
      return std::make_unique<RandomLb>(cfg, std::move(hosts), seed);
    case LbPolicy::RingHash:
      return std::make_unique<RingHashLb>(cfg, std::move(hosts), seed);
    case LbPolicy::Maglev:
      return std::make_unique<MaglevLb>(cfg, std::move(hosts), seed);
    default:
      return std::make_unique<RoundRobinLb>(cfg, std::move(hosts), seed);
  }
}

// === Outlier detection ===

OutlierDetector::OutlierDetector(const OutlierConfig& cfg, std::shared_ptr<const HostList> hosts)
    : cfg_(cfg) {
  setHosts(std::move(hosts));
}

void OutlierDetector::setHosts(std::shared_ptr<const HostList> hosts) {
  hosts_ = std::move(hosts);
  host_count_.store(hosts_ ? hosts_->size() : 0, std::memory_order_relaxed);
}

bool OutlierDetector::tryEject(Host& host, uint32_t enforcing, uint64_t random,
                               std::atomic<uint64_t>& detected, std::atomic<uint64_t>& enforced) {
  detected.fetch_add(1, std::memory_order_relaxed);
  if (random % 100 >= enforcing) return false;
  size_t total = host_count_.load(std::memory_order_relaxed);
  int64_t active = ejections_active.load(std::memory_order_relaxed);
  // Envoy: eject while the ejected share stays under max_ejection_percent (at least one host).
  if (total == 0 || (active > 0 && (active * 100) / static_cast<int64_t>(total) >=
                                       static_cast<int64_t>(cfg_.max_ejection_percent))) {
    ejections_overflow.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  bool expected = false;
  if (!host.outlier_ejected.compare_exchange_strong(expected, true)) return false;
  uint32_t n = host.ejection_count.fetch_add(1) + 1;
  auto duration = std::min(cfg_.base_ejection_time * n,
                           std::max(cfg_.max_ejection_time, cfg_.base_ejection_time));
  host.ejected_until_ns.store(
      std::chrono::duration_cast<std::chrono::nanoseconds>((now() + duration).time_since_epoch())
          .count());
  ejections_active.fetch_add(1);
  ejections_enforced_total.fetch_add(1);
  enforced.fetch_add(1);
  return true;
}

bool OutlierDetector::reportResult(Host& host, int status, bool local_origin, uint64_t random) {
  if (!cfg_.enabled) return false;
  bool is_5xx = status >= 500 || (local_origin && !cfg_.split_external_local_origin_errors);
  bool is_gateway = status == 502 || status == 503 || status == 504 ||
                    (local_origin && !cfg_.split_external_local_origin_errors);
  if (!is_5xx) {
    host.consecutive_5xx.store(0, std::memory_order_relaxed);
    host.consecutive_gateway_failure.store(0, std::memory_order_relaxed);
    return false;
  }
  bool ejected = false;
  if (host.consecutive_5xx.fetch_add(1) + 1 >= cfg_.consecutive_5xx) {
    host.consecutive_5xx.store(0);
    ejected = tryEject(host, cfg_.enforcing_consecutive_5xx, random,
                       ejections_detected_consecutive_5xx, ejections_enforced_consecutive_5xx);
  }
  if (is_gateway && !ejected &&
      host.consecutive_gateway_failure.fetch_add(1) + 1 >= cfg_.consecutive_gateway_failure) {
    host.consecutive_gateway_failure.store(0);
    ejected = tryEject(host, cfg_.enforcing_consecutive_gateway_failure, random,
                       ejections_detected_consecutive_gateway_failure,
                       ejections_enforced_consecutive_gateway_failure);
  }
  return ejected;
}

bool OutlierDetector::onInterval(std::chrono::steady_clock::time_point t) {
  if (!hosts_) return false;
  bool changed = false;
  int64_t now_ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
  for (const auto& h : *hosts_) {
    if (h->outlier_ejected.load() && h->ejected_until_ns.load() <= now_ns) {
      h->outlier_ejected.store(false);
      h->consecutive_5xx.store(0);
      h->consecutive_gateway_failure.store(0);
      ejections_active.fetch_sub(1);
      changed = true;
    }
  }
  return changed;
}

}  // namespace mast::upstream
