// RDS: VirtualService HTTP routes → Envoy routes, and the route configurations of sidecars
// (per port), gateways (per server port) and proxyless gRPC clients (per host:port).
#include <algorithm>
#include <set>

#include "control/model/host.h"
#include "control/translate/context.h"
#include "control/translate/policy.h"
#include "control/translate/routes.h"
#include "envoy/extensions/filters/http/cors/v3/cors.pb.h"
#include "envoy/extensions/filters/http/fault/v3/fault.pb.h"

namespace mast::control::translate::detail {

namespace rv3 = envoy::config::route::v3;
namespace corev3 = envoy::config::core::v3;
namespace net = istio::networking::v1alpha3;
namespace faultv3 = envoy::extensions::filters::http::fault::v3;
namespace corsv3 = envoy::extensions::filters::http::cors::v3;

namespace {

constexpr std::string_view kDefaultRetryOn =
    "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes";

// Percent (0-100, double) → FractionalPercent per million, as Istio does.
envoy::type::v3::FractionalPercent fraction(double percent) {
  envoy::type::v3::FractionalPercent f;
  f.set_numerator(static_cast<uint32_t>(percent * 10000));
  f.set_denominator(envoy::type::v3::FractionalPercent::MILLION);
  return f;
}

envoy::type::matcher::v3::StringMatcher stringMatcher(const net::StringMatch& m) {
  envoy::type::matcher::v3::StringMatcher s;
  switch (m.match_type_case()) {
    case net::StringMatch::kExact:
      s.set_exact(m.exact());
      break;
    case net::StringMatch::kPrefix:
      s.set_prefix(m.prefix());
      break;
    case net::StringMatch::kRegex:
      s.mutable_safe_regex()->set_regex(m.regex());
      break;
    default:
      break;
  }
  return s;
}

// `legacy`: the pre-string_match fields (exact_match, prefix_match, safe_regex_match), the only
// ones gRPC 1.51 accepts ("Invalid route header matcher specified" otherwise).
rv3::HeaderMatcher headerMatcher(const std::string& name, const net::StringMatch& m, bool invert,
                                 bool legacy) {
  rv3::HeaderMatcher h;
  h.set_name(name);
  bool presence = m.match_type_case() == net::StringMatch::MATCH_TYPE_NOT_SET ||
                  (m.match_type_case() == net::StringMatch::kRegex && m.regex() == "*");
  if (presence) {
    h.set_present_match(true);
  } else if (legacy) {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"  // deprecated on purpose, see above
    switch (m.match_type_case()) {
      case net::StringMatch::kExact:
        h.set_exact_match(m.exact());
        break;
      case net::StringMatch::kPrefix:
        h.set_prefix_match(m.prefix());
        break;
      default:
        h.mutable_safe_regex_match()->set_regex(m.regex());
        break;
    }
#pragma GCC diagnostic pop
  } else {
    *h.mutable_string_match() = stringMatcher(m);
    if (invert) h.set_treat_missing_header_as_empty(true);
  }
  if (invert) h.set_invert_match(true);
  return h;
}

bool isCatchAll(const net::HTTPMatchRequest* m) {
  if (!m) return true;
  bool uri_all =
      !m->has_uri() ||
      (m->uri().match_type_case() == net::StringMatch::kPrefix && m->uri().prefix() == "/") ||
      (m->uri().match_type_case() == net::StringMatch::kRegex && m->uri().regex() == ".*") ||
      m->uri().match_type_case() == net::StringMatch::MATCH_TYPE_NOT_SET;
  return uri_all && m->headers().empty() && m->query_params().empty() &&
         m->without_headers().empty() && !m->has_method() && !m->has_authority() &&
         !m->has_scheme();
}

rv3::RouteMatch routeMatch(const net::HTTPMatchRequest* m, bool legacy) {
  rv3::RouteMatch rm;
  rm.mutable_case_sensitive()->set_value(!(m && m->ignore_uri_case()));
  if (!m || !m->has_uri() || m->uri().match_type_case() == net::StringMatch::MATCH_TYPE_NOT_SET) {
    rm.set_prefix("/");
  } else {
    switch (m->uri().match_type_case()) {
      case net::StringMatch::kExact:
        rm.set_path(m->uri().exact());
        break;
      case net::StringMatch::kPrefix:
        rm.set_prefix(m->uri().prefix());
        break;
      default:
        rm.mutable_safe_regex()->set_regex(m->uri().regex());
        break;
    }
  }
  if (!m) return rm;
  // Headers sorted by name for determinism; pseudo-headers after them (Istio's order).
  std::map<std::string, const net::StringMatch*> headers;
  for (const auto& [k, v] : m->headers()) headers[k] = &v;
  for (const auto& [name, sm] : headers)
    *rm.add_headers() = headerMatcher(name, *sm, false, legacy);
  std::map<std::string, const net::StringMatch*> without;
  for (const auto& [k, v] : m->without_headers()) without[k] = &v;
  for (const auto& [name, sm] : without) *rm.add_headers() = headerMatcher(name, *sm, true, legacy);
  if (m->has_method()) *rm.add_headers() = headerMatcher(":method", m->method(), false, legacy);
  if (m->has_authority())
    *rm.add_headers() = headerMatcher(":authority", m->authority(), false, legacy);
  if (m->has_scheme()) *rm.add_headers() = headerMatcher(":scheme", m->scheme(), false, legacy);
  std::map<std::string, const net::StringMatch*> query;
  for (const auto& [k, v] : m->query_params()) query[k] = &v;
  for (const auto& [name, sm] : query) {
    auto* q = rm.add_query_parameters();
    q->set_name(name);
    if (sm->match_type_case() == net::StringMatch::MATCH_TYPE_NOT_SET) {
      q->set_present_match(true);
    } else {
      *q->mutable_string_match() = stringMatcher(*sm);
    }
  }
  return rm;
}

// Static predicates of a match block, decided at generation time for this proxy and port.
bool matchApplies(const Ctx& ctx, const model::VirtualServiceInfo& vs,
                  const net::HTTPMatchRequest& m, uint32_t port, std::string_view gateway) {
  if (m.port() != 0 && m.port() != port) return false;
  if (!m.gateways().empty()) {
    bool found = false;
    for (const auto& g : m.gateways()) found = found || vs.resolveGateway(g) == gateway;
    return found;  // match-level gateways replace sourceLabels/sourceNamespace checks
  }
  if (gateway != model::kMeshGateway) {
    // sourceLabels / sourceNamespace concern sidecars only.
    return m.source_labels().empty() ||
           model::labelsMatch({m.source_labels().begin(), m.source_labels().end()},
                              ctx.proxy.labels);
  }
  if (!m.source_namespace().empty() && m.source_namespace() != ctx.ns) return false;
  return model::labelsMatch({m.source_labels().begin(), m.source_labels().end()}, ctx.proxy.labels);
}

void addHeaderOptions(const net::Headers::HeaderOperations& ops,
                      google::protobuf::RepeatedPtrField<corev3::HeaderValueOption>* add,
                      google::protobuf::RepeatedPtrField<std::string>* remove,
                      std::string* host_rewrite) {
  // Keys sorted: proto maps have no stable order.
  std::map<std::string, std::string> set(ops.set().begin(), ops.set().end());
  std::map<std::string, std::string> append(ops.add().begin(), ops.add().end());
  auto emit = [&](const std::map<std::string, std::string>& m,
                  corev3::HeaderValueOption::HeaderAppendAction a) {
    for (const auto& [k, v] : m) {
      std::string key = model::toLower(k);
      if (key == "host" || key == ":authority") {
        // set beats add: only take add's value when set did not give one.
        if (host_rewrite &&
            (a == corev3::HeaderValueOption::OVERWRITE_IF_EXISTS_OR_ADD || host_rewrite->empty())) {
          *host_rewrite = v;
        }
        continue;
      }
      if (!key.empty() && key[0] == ':') continue;
      auto* o = add->Add();
      o->mutable_header()->set_key(k);
      o->mutable_header()->set_value(v);
      o->set_append_action(a);
    }
  };
  emit(set, corev3::HeaderValueOption::OVERWRITE_IF_EXISTS_OR_ADD);
  emit(append, corev3::HeaderValueOption::APPEND_IF_EXISTS_OR_ADD);
  for (const auto& r : ops.remove()) *remove->Add() = r;
}

}  // namespace

std::string destinationCluster(const Ctx& ctx, const net::Destination& d, std::string_view ns_of,
                               uint32_t listener_port) {
  std::string host = ctx.mesh.resolveHost(d.host(), ns_of);
  uint32_t port = d.has_port() ? d.port().number() : 0;
  if (port == 0) {
    const auto* svc = ctx.service(host);
    // The only port of the service, else the port being generated.
    port = svc && svc->ports.size() == 1 ? svc->ports[0].number : listener_port;
  }
  return outboundClusterName(port, d.subset(), host);
}

std::optional<rv3::RetryPolicy> retryPolicy(const net::HTTPRetry* r, bool consistent_hash) {
  rv3::RetryPolicy p;
  if (r && r->attempts() <= 0) return std::nullopt;  // explicit 0: no retries at all
  p.mutable_num_retries()->set_value(r ? r->attempts() : 2);
  std::string on(kDefaultRetryOn);
  if (r && !r->retry_on().empty()) {
    on.clear();
    bool has_codes_token = false;
    bool has_codes = false;
    std::string_view s = r->retry_on();
    size_t start = 0;
    while (start <= s.size()) {
      size_t c = s.find(',', start);
      if (c == std::string_view::npos) c = s.size();
      std::string t(s.substr(start, c - start));
      t.erase(0, t.find_first_not_of(' '));
      t.erase(t.find_last_not_of(' ') + 1);
      start = c + 1;
      if (t.empty()) continue;
      if (t.size() <= 3 && std::all_of(t.begin(), t.end(), ::isdigit)) {
        int code = std::stoi(t);
        if (code >= 100 && code <= 599) {
          p.add_retriable_status_codes(code);
          has_codes = true;
        }
        continue;
      }
      if (t == "retriable-status-codes") has_codes_token = true;
      if (!on.empty()) on += ",";
      on += t;
    }
    if (has_codes && !has_codes_token)
      on += on.empty() ? "retriable-status-codes" : ",retriable-status-codes";
  }
  p.set_retry_on(on);
  bool ignore_prev =
      !(r && r->has_retry_ignore_previous_hosts()) || r->retry_ignore_previous_hosts().value();
  if (!consistent_hash && ignore_prev) {
    auto* pred = p.add_retry_host_predicate();
    // Name only: the PreviousHostsPredicate proto is not part of the xDS protos Mast builds,
    // and an Any of an unknown type would make config dumps (JSON) fail.
    pred->set_name("envoy.retry_host_predicates.previous_hosts");
  }
  p.set_host_selection_retry_max_attempts(5);
  if (r && r->has_per_try_timeout()) *p.mutable_per_try_timeout() = r->per_try_timeout();
  if (r && r->has_backoff()) *p.mutable_retry_back_off()->mutable_base_interval() = r->backoff();
  return p;
}

// The consistent-hash settings that apply to a destination (its DR, subset aware).
const net::LoadBalancerSettings::ConsistentHashLB* consistentHash(const Ctx& ctx,
                                                                  const std::string& cluster) {
  // cluster = outbound|port|subset|host
  if (cluster.rfind("outbound|", 0) != 0) return nullptr;
  auto a = cluster.find('|');
  auto b = cluster.find('|', a + 1);
  auto c = b == std::string::npos ? b : cluster.find('|', b + 1);
  if (c == std::string::npos || b == a + 1) return nullptr;
  uint32_t port = static_cast<uint32_t>(std::stoul(cluster.substr(a + 1, b - a - 1)));
  std::string subset = cluster.substr(b + 1, c - b - 1);
  std::string host = cluster.substr(c + 1);
  const auto* svc = ctx.service(host);
  if (!svc) return nullptr;
  const auto* edr = ctx.destinationRule(*svc);
  if (!edr) return nullptr;
  const net::Subset* sub = nullptr;
  for (const auto& s : edr->rule.subsets()) {
    if (s.name() == subset) sub = &s;
  }
  Policy p = effectivePolicy(&edr->rule, sub, port);
  if (p.load_balancer && p.load_balancer->has_consistent_hash()) {
    return &p.load_balancer->consistent_hash();
  }
  return nullptr;
}

void addHashPolicy(const net::LoadBalancerSettings::ConsistentHashLB& ch, rv3::RouteAction& a) {
  auto* hp = a.add_hash_policy();
  switch (ch.hash_key_case()) {
    case net::LoadBalancerSettings::ConsistentHashLB::kHttpHeaderName:
      hp->mutable_header()->set_header_name(ch.http_header_name());
      break;
    case net::LoadBalancerSettings::ConsistentHashLB::kHttpCookie: {
      auto* c = hp->mutable_cookie();
      c->set_name(ch.http_cookie().name());
      c->set_path(ch.http_cookie().path());
      if (ch.http_cookie().has_ttl()) *c->mutable_ttl() = ch.http_cookie().ttl();
      break;
    }
    case net::LoadBalancerSettings::ConsistentHashLB::kUseSourceIp:
      hp->mutable_connection_properties()->set_source_ip(true);
      break;
    case net::LoadBalancerSettings::ConsistentHashLB::kHttpQueryParameterName:
      hp->mutable_query_parameter()->set_name(ch.http_query_parameter_name());
      break;
    default:
      a.mutable_hash_policy()->RemoveLast();
      break;
  }
}

rv3::Route defaultRoute(const Ctx& ctx, const model::Service& svc, uint32_t port) {
  rv3::Route r;
  r.set_name("default");
  r.mutable_match()->set_prefix("/");
  r.mutable_match()->mutable_case_sensitive()->set_value(true);
  auto* a = r.mutable_route();
  a->set_cluster(outboundClusterName(port, "", svc.hostname));
  *a->mutable_timeout() = durationMs(0);
  *a->mutable_max_stream_duration()->mutable_grpc_timeout_header_max() = durationMs(0);
  const auto* ch = consistentHash(ctx, a->cluster());
  if (auto rp = retryPolicy(nullptr, ch != nullptr)) *a->mutable_retry_policy() = *rp;
  if (ch) addHashPolicy(*ch, *a);
  r.mutable_decorator()->set_operation(svc.hostname + ":" + std::to_string(port) + "/*");
  return r;
}

namespace {

std::string pathForDecorator(const net::HTTPMatchRequest* m) {
  if (!m || !m->has_uri()) return "/*";
  switch (m->uri().match_type_case()) {
    case net::StringMatch::kExact:
      return m->uri().exact();
    case net::StringMatch::kPrefix:
      return m->uri().prefix() + "*";
    case net::StringMatch::kRegex:
      return m->uri().regex();
    default:
      return "/*";
  }
}

void applyFault(const net::HTTPFaultInjection& f, rv3::Route& r) {
  faultv3::HTTPFault out;
  // exponentialDelay and http2Error have no Envoy equivalent: left out, as Istio does.
  if (f.has_delay() && f.delay().has_fixed_delay() &&
      (f.delay().fixed_delay().seconds() > 0 || f.delay().fixed_delay().nanos() > 0)) {
    auto* d = out.mutable_delay();
    *d->mutable_fixed_delay() = f.delay().fixed_delay();
    if (f.delay().has_percentage()) {
      *d->mutable_percentage() = fraction(f.delay().percentage().value());
    } else {
      d->mutable_percentage()->set_numerator(static_cast<uint32_t>(f.delay().percent()));
      d->mutable_percentage()->set_denominator(envoy::type::v3::FractionalPercent::HUNDRED);
    }
  }
  if (f.has_abort() &&
      (f.abort().error_type_case() == net::HTTPFaultInjection::Abort::kHttpStatus ||
       f.abort().error_type_case() == net::HTTPFaultInjection::Abort::kGrpcStatus)) {
    auto* a = out.mutable_abort();
    if (f.abort().error_type_case() == net::HTTPFaultInjection::Abort::kHttpStatus) {
      a->set_http_status(static_cast<uint32_t>(f.abort().http_status()));
    } else if (f.abort().error_type_case() == net::HTTPFaultInjection::Abort::kGrpcStatus) {
      // Istio's grpcStatus is a code name ("UNAVAILABLE") or number.
      static const std::map<std::string, uint32_t> kCodes = {{"OK", 0},
                                                             {"CANCELLED", 1},
                                                             {"UNKNOWN", 2},
                                                             {"INVALID_ARGUMENT", 3},
                                                             {"DEADLINE_EXCEEDED", 4},
                                                             {"NOT_FOUND", 5},
                                                             {"ALREADY_EXISTS", 6},
                                                             {"PERMISSION_DENIED", 7},
                                                             {"RESOURCE_EXHAUSTED", 8},
                                                             {"FAILED_PRECONDITION", 9},
                                                             {"ABORTED", 10},
                                                             {"OUT_OF_RANGE", 11},
                                                             {"UNIMPLEMENTED", 12},
                                                             {"INTERNAL", 13},
                                                             {"UNAVAILABLE", 14},
                                                             {"DATA_LOSS", 15},
                                                             {"UNAUTHENTICATED", 16}};
      const std::string& g = f.abort().grpc_status();
      if (auto it = kCodes.find(g); it != kCodes.end()) {
        a->set_grpc_status(it->second);
      } else if (!g.empty() && g.size() < 6 && std::all_of(g.begin(), g.end(), ::isdigit)) {
        a->set_grpc_status(static_cast<uint32_t>(std::stoul(g)));
      } else {
        out.clear_abort();  // an unknown code: no abort rather than a config the proxy rejects
      }
    }
    // No percentage → nothing is aborted (Istio's semantics).
    if (out.has_abort())
      *out.mutable_abort()->mutable_percentage() =
          fraction(f.abort().has_percentage() ? f.abort().percentage().value() : 0);
  }
  if (!out.has_delay() && !out.has_abort()) return;
  (*r.mutable_typed_per_filter_config())["envoy.filters.http.fault"].PackFrom(out);
}

void applyCors(const net::CorsPolicy& c, rv3::Route& r) {
  corsv3::CorsPolicy p;
  for (const auto& o : c.allow_origins()) *p.add_allow_origin_string_match() = stringMatcher(o);
  for (const auto& o : c.allow_origin()) {
    auto* m = p.add_allow_origin_string_match();
    // Deprecated allowOrigin "*": any origin, as a regex; an empty prefix would be an invalid
    // matcher (Envoy and mast-proxy reject empty prefixes).
    if (o == "*")
      m->mutable_safe_regex()->set_regex(".*");
    else
      m->set_exact(o);
  }
  auto joined = [](const google::protobuf::RepeatedPtrField<std::string>& v) {
    std::string out;
    for (const auto& s : v) out += (out.empty() ? "" : ",") + s;
    return out;
  };
  p.set_allow_methods(joined(c.allow_methods()));
  p.set_allow_headers(joined(c.allow_headers()));
  p.set_expose_headers(joined(c.expose_headers()));
  if (c.has_max_age()) p.set_max_age(std::to_string(c.max_age().seconds()));
  if (c.has_allow_credentials())
    p.mutable_allow_credentials()->set_value(c.allow_credentials().value());
  auto* fe = p.mutable_filter_enabled()->mutable_default_value();
  fe->set_numerator(100);
  fe->set_denominator(envoy::type::v3::FractionalPercent::HUNDRED);
  p.mutable_forward_not_matching_preflights()->set_value(c.unmatched_preflights() !=
                                                         net::CorsPolicy::IGNORE);
  (*r.mutable_typed_per_filter_config())["envoy.filters.http.cors"].PackFrom(p);
}

void addMirror(const Ctx& ctx, const model::VirtualServiceInfo& vs, const net::Destination& d,
               const net::Percent* percent, uint32_t port, rv3::RouteAction& a) {
  if (percent && percent->value() <= 0) return;  // explicit 0%: no mirroring
  auto* mp = a.add_request_mirror_policies();
  mp->set_cluster(destinationCluster(ctx, d, vs.ns, port));
  *mp->mutable_runtime_fraction()->mutable_default_value() =
      fraction(percent ? percent->value() : 100);
  mp->mutable_trace_sampled()->set_value(false);
  mp->set_disable_shadow_host_suffix_append(true);
}

// The action part of one HTTPRoute, shared by all its match blocks.
void buildAction(const Ctx& ctx, const model::VirtualServiceInfo& vs, const net::HTTPRoute& hr,
                 uint32_t port, const net::HTTPMatchRequest* m, rv3::Route& r) {
  const std::string listener_port = std::to_string(port);
  if (hr.has_redirect()) {
    const auto& rd = hr.redirect();
    auto* x = r.mutable_redirect();
    if (!rd.uri().empty())
      x->set_path_redirect(rd.uri());
    else if (!rd.prefix_rewrite().empty())
      x->set_prefix_rewrite(rd.prefix_rewrite());
    if (!rd.authority().empty()) x->set_host_redirect(rd.authority());
    if (!rd.scheme().empty()) x->set_scheme_redirect(rd.scheme());
    if (rd.redirect_port_case() == net::HTTPRedirect::kPort) {
      x->set_port_redirect(rd.port());
    } else if (rd.redirect_port_case() == net::HTTPRedirect::kDerivePort &&
               rd.derive_port() == net::HTTPRedirect::FROM_REQUEST_PORT) {
      bool https = rd.scheme() == "https";
      if (!((port == 80 && !https) || (port == 443 && https))) x->set_port_redirect(port);
    }
    switch (rd.redirect_code()) {
      case 302:
        x->set_response_code(rv3::RedirectAction::FOUND);
        break;
      case 303:
        x->set_response_code(rv3::RedirectAction::SEE_OTHER);
        break;
      case 307:
        x->set_response_code(rv3::RedirectAction::TEMPORARY_REDIRECT);
        break;
      case 308:
        x->set_response_code(rv3::RedirectAction::PERMANENT_REDIRECT);
        break;
      default:
        x->set_response_code(rv3::RedirectAction::MOVED_PERMANENTLY);
        break;
    }
    r.mutable_decorator()->set_operation(vs.name + ":" + listener_port + pathForDecorator(m));
  } else if (hr.has_direct_response()) {
    auto* d = r.mutable_direct_response();
    d->set_status(hr.direct_response().status());
    const auto& b = hr.direct_response().body();
    if (b.specifier_case() == net::HTTPBody::kString)
      d->mutable_body()->set_inline_string(b.string());
    else if (b.specifier_case() == net::HTTPBody::kBytes)
      d->mutable_body()->set_inline_bytes(b.bytes());
    r.mutable_decorator()->set_operation(vs.name + ":" + listener_port + pathForDecorator(m));
  } else {
    auto* a = r.mutable_route();
    std::string host_rewrite;
    std::vector<const net::HTTPRouteDestination*> dests;
    for (const auto& d : hr.route()) {
      if (hr.route_size() > 1 && d.weight() == 0) continue;  // 0-weight entries are dropped
      dests.push_back(&d);
    }
    if (dests.size() == 1) {
      a->set_cluster(destinationCluster(ctx, dests[0]->destination(), vs.ns, port));
      if (dests[0]->has_headers()) {
        if (dests[0]->headers().has_request()) {
          addHeaderOptions(dests[0]->headers().request(), r.mutable_request_headers_to_add(),
                           r.mutable_request_headers_to_remove(), &host_rewrite);
        }
        if (dests[0]->headers().has_response()) {
          addHeaderOptions(dests[0]->headers().response(), r.mutable_response_headers_to_add(),
                           r.mutable_response_headers_to_remove(), nullptr);
        }
      }
      std::string host = ctx.mesh.resolveHost(dests[0]->destination().host(), vs.ns);
      std::string p = a->cluster().substr(9, a->cluster().find('|', 9) - 9);
      r.mutable_decorator()->set_operation(host + ":" + p + pathForDecorator(m));
    } else {
      auto* wc = a->mutable_weighted_clusters();
      for (const auto* d : dests) {
        auto* c = wc->add_clusters();
        c->set_name(destinationCluster(ctx, d->destination(), vs.ns, port));
        c->mutable_weight()->set_value(static_cast<uint32_t>(d->weight()));
        if (d->has_headers()) {
          if (d->headers().has_request()) {
            addHeaderOptions(d->headers().request(), c->mutable_request_headers_to_add(),
                             c->mutable_request_headers_to_remove(), nullptr);
          }
          if (d->headers().has_response()) {
            addHeaderOptions(d->headers().response(), c->mutable_response_headers_to_add(),
                             c->mutable_response_headers_to_remove(), nullptr);
          }
        }
      }
      r.mutable_decorator()->set_operation(vs.name + ":" + listener_port + pathForDecorator(m));
    }
    *a->mutable_timeout() = hr.has_timeout() ? hr.timeout() : durationMs(0);
    *a->mutable_max_stream_duration()->mutable_grpc_timeout_header_max() = a->timeout();
    const net::LoadBalancerSettings::ConsistentHashLB* ch = nullptr;
    if (!dests.empty()) {
      ch =
          consistentHash(ctx, a->has_weighted_clusters() ? a->weighted_clusters().clusters(0).name()
                                                         : a->cluster());
    }
    if (auto rp = retryPolicy(hr.has_retries() ? &hr.retries() : nullptr, ch != nullptr)) {
      *a->mutable_retry_policy() = *rp;
    }
    if (ch) addHashPolicy(*ch, *a);
    if (hr.has_rewrite()) {
      const auto& rw = hr.rewrite();
      if (!rw.uri().empty()) a->set_prefix_rewrite(rw.uri());
      if (rw.has_uri_regex_rewrite()) {
        a->mutable_regex_rewrite()->mutable_pattern()->set_regex(rw.uri_regex_rewrite().match());
        a->mutable_regex_rewrite()->set_substitution(rw.uri_regex_rewrite().rewrite());
      }
      if (!rw.authority().empty()) host_rewrite = rw.authority();  // beats headers
    }
    if (hr.has_mirror()) {
      net::Percent legacy;
      const net::Percent* pct = nullptr;
      if (hr.has_mirror_percentage()) {
        pct = &hr.mirror_percentage();
      } else if (hr.has_mirror_percent()) {
        legacy.set_value(hr.mirror_percent().value());
        pct = &legacy;
      }
      addMirror(ctx, vs, hr.mirror(), pct, port, *a);
    }
    for (const auto& mp : hr.mirrors()) {
      addMirror(ctx, vs, mp.destination(), mp.has_percentage() ? &mp.percentage() : nullptr, port,
                *a);
    }
    if (hr.has_headers() && hr.headers().has_request()) {
      addHeaderOptions(hr.headers().request(), r.mutable_request_headers_to_add(),
                       r.mutable_request_headers_to_remove(), &host_rewrite);
    }
    if (hr.has_rewrite() && !hr.rewrite().authority().empty())
      host_rewrite = hr.rewrite().authority();
    if (!host_rewrite.empty()) a->set_host_rewrite_literal(host_rewrite);
  }
  if (hr.has_headers() && hr.headers().has_response()) {
    addHeaderOptions(hr.headers().response(), r.mutable_response_headers_to_add(),
                     r.mutable_response_headers_to_remove(), nullptr);
  }
  if (hr.has_headers() && hr.headers().has_request() && !r.has_route()) {
    addHeaderOptions(hr.headers().request(), r.mutable_request_headers_to_add(),
                     r.mutable_request_headers_to_remove(), nullptr);
  }
  if (hr.has_fault()) applyFault(hr.fault(), r);
  if (hr.has_cors_policy()) applyCors(hr.cors_policy(), r);
}

}  // namespace

bool virtualServiceRoutes(const Ctx& ctx, const model::VirtualServiceInfo& vs, uint32_t port,
                          std::string_view gateway, std::vector<rv3::Route>& out) {
  for (const auto* route : ctx.httpRoutes(vs)) {
    const auto& hr = *route;
    if (hr.has_delegate()) continue;  // only from a delegate VS, which nothing binds
    if (!hr.has_redirect() && !hr.has_direct_response()) {
      // A route action needs a destination with weight (a lone destination may omit it).
      bool usable = hr.route_size() == 1;
      for (const auto& d : hr.route()) usable = usable || d.weight() > 0;
      if (!usable) continue;
    }
    std::vector<const net::HTTPMatchRequest*> matches;
    if (hr.match().empty()) {
      matches.push_back(nullptr);
    } else {
      for (const auto& m : hr.match()) {
        if (matchApplies(ctx, vs, m, port, gateway)) matches.push_back(&m);
      }
      if (matches.empty()) continue;  // no match block applies to this proxy/port
    }
    for (const auto* m : matches) {
      rv3::Route r;
      std::string name = hr.name();
      if (m && !m->name().empty()) name = name.empty() ? m->name() : name + "." + m->name();
      if (!name.empty()) r.set_name(name);
      *r.mutable_match() = routeMatch(m, ctx.flavor == Flavor::kProxyless);
      buildAction(ctx, vs, hr, port, m, r);
      out.push_back(std::move(r));
      // Nothing after a catch-all can match.
      if (isCatchAll(m)) return true;
    }
  }
  return false;
}

namespace {

rv3::RouteConfiguration newRouteConfig(const std::string& name, bool ignore_port) {
  rv3::RouteConfiguration rc;
  rc.set_name(name);
  rc.mutable_validate_clusters()->set_value(false);
  rc.set_ignore_port_in_host_matching(ignore_port);
  rc.mutable_max_direct_response_body_size_bytes()->set_value(1048576);
  return rc;
}

// A domain may appear in one vhost only (Envoy and mast-proxy reject duplicates): first wins,
// and a vhost left without domains is dropped.
void dedupeDomains(rv3::RouteConfiguration& rc) {
  std::set<std::string> seen;
  google::protobuf::RepeatedPtrField<rv3::VirtualHost> kept;
  for (auto& vh : *rc.mutable_virtual_hosts()) {
    google::protobuf::RepeatedPtrField<std::string> domains;
    for (const auto& d : vh.domains()) {
      if (seen.insert(model::toLower(d)).second) *domains.Add() = d;
    }
    if (domains.empty()) continue;
    vh.mutable_domains()->Swap(&domains);
    *kept.Add() = std::move(vh);
  }
  rc.mutable_virtual_hosts()->Swap(&kept);
}

// The mesh VirtualService that owns `svc` for this proxy: an exact host first, else the most
// specific wildcard; among equals, the first in Istio's priority order.
const model::VirtualServiceInfo* boundVirtualService(
    const Ctx& ctx, const std::vector<const model::VirtualServiceInfo*>& vss,
    const model::Service& svc) {
  const model::VirtualServiceInfo* best = nullptr;
  size_t best_score = 0;
  for (const auto* vs : vss) {
    for (const auto& h : vs->hosts) {
      if (!model::hostMatches(h, svc.hostname)) continue;
      size_t score = h.find('*') == std::string::npos ? SIZE_MAX : h.size();
      if (!best || score > best_score) {
        best = vs;
        best_score = score;
      }
    }
  }
  return best;
}

}  // namespace

void buildSidecarRoutes(const Ctx& ctx, ProxyResources& out) {
  auto vss = ctx.mesh.virtualServices(model::kMeshGateway, ctx.ns);
  // Only VirtualServices for hosts this proxy imports (Sidecar scoping applies to them too).
  std::vector<const model::VirtualServiceInfo*> scoped;
  for (const auto* vs : vss) {
    bool any = false;
    for (const auto& h : vs->hosts) {
      for (const auto& vp : ctx.ports) any = any || model::hostsOverlap(h, vp.service->hostname);
      if (h.find('*') == std::string::npos && !ctx.mesh.findService(h, ctx.ns)) any = true;
    }
    if (any) scoped.push_back(vs);
  }
  std::map<uint32_t, std::vector<VisiblePort>> http_ports;
  for (const auto& vp : ctx.ports) {
    if (model::isHttpProtocol(vp.port->protocol) || vp.port->protocol == model::Protocol::kAuto) {
      http_ports[vp.port->number].push_back(vp);
    }
  }
  const auto* only = ctx.part == Part::kShared ? ctx.selection.only_route_ports : nullptr;
  for (auto& [port, vps] : http_ports) {
    if (only && !only->count(port)) continue;
    auto rc = newRouteConfig(std::to_string(port), true);
    std::vector<rv3::VirtualHost> vhosts;
    for (const auto& vp : vps) {
      rv3::VirtualHost vh;
      vh.set_name(vp.service->hostname + ":" + std::to_string(port));
      // mast-proxy matches Host including its port, so each name also comes with ":port".
      for (auto& d : serviceDomains(ctx, *vp.service, port, true)) vh.add_domains(d);
      vh.set_include_request_attempt_count(true);
      std::vector<rv3::Route> routes;
      if (const auto* vs = boundVirtualService(ctx, scoped, *vp.service)) {
        virtualServiceRoutes(ctx, *vs, port, model::kMeshGateway, routes);
      }
      if (routes.empty()) routes.push_back(defaultRoute(ctx, *vp.service, port));
      for (auto& r : routes) *vh.add_routes() = std::move(r);
      vhosts.push_back(std::move(vh));
    }
    // Port 80: VirtualService hosts that are not services still get a vhost (e.g. bookinfo.com).
    if (port == 80) {
      for (const auto* vs : scoped) {
        for (const auto& h : vs->hosts) {
          if (h.find('*') != std::string::npos || ctx.mesh.findService(h, ctx.ns)) continue;
          rv3::VirtualHost vh;
          vh.set_name(h + ":80");
          vh.add_domains(h);
          vh.add_domains(h + ":80");
          vh.set_include_request_attempt_count(true);
          std::vector<rv3::Route> routes;
          virtualServiceRoutes(ctx, *vs, port, model::kMeshGateway, routes);
          if (routes.empty()) continue;
          for (auto& r : routes) *vh.add_routes() = std::move(r);
          vhosts.push_back(std::move(vh));
        }
      }
    }
    std::stable_sort(vhosts.begin(), vhosts.end(),
                     [](const auto& a, const auto& b) { return a.name() < b.name(); });
    for (auto& vh : vhosts) *rc.add_virtual_hosts() = std::move(vh);
    // Catch-all last: ALLOW_ANY → PassthroughCluster, REGISTRY_ONLY → 502.
    auto* any = rc.add_virtual_hosts();
    any->set_name(ctx.allow_any ? "allow_any" : "block_all");
    any->add_domains("*");
    any->set_include_request_attempt_count(true);
    auto* r = any->add_routes();
    r->set_name(any->name());
    r->mutable_match()->set_prefix("/");
    if (ctx.allow_any) {
      r->mutable_route()->set_cluster(std::string(kPassthroughCluster));
      *r->mutable_route()->mutable_timeout() = durationMs(0);
      *r->mutable_route()->mutable_max_stream_duration()->mutable_grpc_timeout_header_max() =
          durationMs(0);
    } else {
      r->mutable_direct_response()->set_status(502);
    }
    dedupeDomains(rc);
    out.routes.push_back(std::move(rc));
  }
}

void buildProxylessRoutes(const Ctx& ctx, ProxyResources& out) {
  auto vss = ctx.mesh.virtualServices(model::kMeshGateway, ctx.ns);
  for (const auto& vp : ctx.ports) {
    if (!proxylessReachable(ctx, vp)) continue;
    uint32_t port = vp.port->number;
    std::string name = vp.service->hostname + ":" + std::to_string(port);
    auto rc = newRouteConfig(name, false);  // gRPC matches the target authority with its port
    auto* vh = rc.add_virtual_hosts();
    vh->set_name(name);
    for (auto& d : serviceDomains(ctx, *vp.service, port, true)) vh->add_domains(d);
    std::vector<rv3::Route> routes;
    if (const auto* vs = boundVirtualService(ctx, vss, *vp.service)) {
      virtualServiceRoutes(ctx, *vs, port, model::kMeshGateway, routes);
    }
    if (routes.empty()) routes.push_back(defaultRoute(ctx, *vp.service, port));
    for (auto& r : routes) *vh->add_routes() = std::move(r);
    out.routes.push_back(std::move(rc));
  }
}

}  // namespace mast::control::translate::detail
