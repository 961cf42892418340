// VirtualService delegation: a root VirtualService's `http[].delegate` replaced by the routes of
// a hostless delegate VirtualService, merged as istiod merges them (spec §5.8; facts from Istio's
// pilot/pkg/model/virtualservice.go: mergeHTTPRoute, mergeHTTPMatchRequest, hasConflict).
#include "control/translate/delegate.h"

#include <set>
#include <string>
#include <string_view>

#include "control/config/store.h"
#include "control/model/host.h"
#include "control/translate/context.h"

namespace mast::control::translate::detail {

namespace net = istio::networking::v1alpha3;

namespace {

std::string_view exactOf(const net::StringMatch& m) {
  return m.match_type_case() == net::StringMatch::kExact ? std::string_view(m.exact()) : "";
}
std::string_view prefixOf(const net::StringMatch& m) {
  return m.match_type_case() == net::StringMatch::kPrefix ? std::string_view(m.prefix()) : "";
}
std::string_view regexOf(const net::StringMatch& m) {
  return m.match_type_case() == net::StringMatch::kRegex ? std::string_view(m.regex()) : "";
}

// Is `leaf` not a subset of `root`? Either unset: no conflict. Regexes cannot be intersected;
// an exact root takes the same exact only; a prefix root takes prefixes/exacts under it. Like
// Istio, an empty value counts as unset, so two set-but-empty matchers conflict.
bool stringMatchConflict(const net::StringMatch* root, const net::StringMatch* leaf) {
  if (!root || !leaf) return false;
  bool leaf_any = !regexOf(*leaf).empty() || !prefixOf(*leaf).empty() || !exactOf(*leaf).empty();
  bool root_any = !regexOf(*root).empty() || !prefixOf(*root).empty() || !exactOf(*root).empty();
  if (!regexOf(*root).empty() && leaf_any) return true;
  if (!regexOf(*leaf).empty() && root_any) return true;
  if (auto exact = exactOf(*root); !exact.empty()) {
    if (!prefixOf(*leaf).empty()) return true;
    return exactOf(*leaf) != exact;
  }
  if (auto prefix = prefixOf(*root); !prefix.empty()) {
    if (auto p = prefixOf(*leaf); !p.empty()) return !p.starts_with(prefix);
    if (auto e = exactOf(*leaf); !e.empty()) return !e.starts_with(prefix);
  }
  return true;
}

const net::StringMatch* field(bool has, const net::StringMatch& m) { return has ? &m : nullptr; }

const net::StringMatch* entry(const google::protobuf::Map<std::string, net::StringMatch>& map,
                              const std::string& key) {
  auto it = map.find(key);
  return it == map.end() ? nullptr : &it->second;
}

// Gateways of both sides are resolved ("ns/name" or "mesh") before they are compared.
bool matchConflict(const net::HTTPMatchRequest& root, const net::HTTPMatchRequest& leaf) {
  if (stringMatchConflict(field(root.has_uri(), root.uri()), field(leaf.has_uri(), leaf.uri())) ||
      stringMatchConflict(field(root.has_scheme(), root.scheme()),
                          field(leaf.has_scheme(), leaf.scheme())) ||
      stringMatchConflict(field(root.has_method(), root.method()),
                          field(leaf.has_method(), leaf.method())) ||
      stringMatchConflict(field(root.has_authority(), root.authority()),
                          field(leaf.has_authority(), leaf.authority()))) {
    return true;
  }
  for (const auto& [k, v] : leaf.headers()) {
    if (stringMatchConflict(entry(root.headers(), k), &v)) return true;
  }
  for (const auto& [k, v] : leaf.without_headers()) {
    if (stringMatchConflict(entry(root.without_headers(), k), &v)) return true;
  }
  for (const auto& [k, v] : leaf.query_params()) {
    if (stringMatchConflict(entry(root.query_params(), k), &v)) return true;
  }
  if (root.ignore_uri_case() != leaf.ignore_uri_case()) return true;
  if (root.port() > 0 && leaf.port() > 0 && root.port() != leaf.port()) return true;
  if (!root.source_namespace().empty() && leaf.source_namespace() != root.source_namespace()) {
    return true;
  }
  for (const auto& [k, v] : leaf.source_labels()) {
    auto it = root.source_labels().find(k);
    if (it != root.source_labels().end() && it->second != v) return true;
  }
  if (!root.gateways().empty() && !leaf.gateways().empty()) {
    // The root's gateways must be a superset of the delegate's.
    if (root.gateways_size() < leaf.gateways_size()) return true;
    std::set<std::string> roots(root.gateways().begin(), root.gateways().end());
    for (const auto& g : leaf.gateways()) {
      if (!roots.count(g)) return true;
    }
  }
  return false;
}

std::string joinName(const std::string& root, const std::string& leaf) {
  if (leaf.empty()) return root;
  if (root.empty()) return leaf;
  return root + "-" + leaf;
}

template <class M>
void mergeMap(const M& root, M* out) {
  for (const auto& [k, v] : root) {
    if (!out->contains(k)) (*out)[k] = v;  // the delegate's own entries win
  }
}

// The delegate's match block narrowed by a compatible root block: unset fields from the root,
// maps merged with the delegate winning.
net::HTTPMatchRequest mergeMatch(const net::HTTPMatchRequest& root,
                                 const net::HTTPMatchRequest& leaf) {
  net::HTTPMatchRequest out = leaf;
  out.set_name(joinName(root.name(), leaf.name()));
  if (!out.has_uri() && root.has_uri()) *out.mutable_uri() = root.uri();
  if (!out.has_scheme() && root.has_scheme()) *out.mutable_scheme() = root.scheme();
  if (!out.has_method() && root.has_method()) *out.mutable_method() = root.method();
  if (!out.has_authority() && root.has_authority()) *out.mutable_authority() = root.authority();
  mergeMap(root.headers(), out.mutable_headers());
  mergeMap(root.without_headers(), out.mutable_without_headers());
  mergeMap(root.query_params(), out.mutable_query_params());
  mergeMap(root.source_labels(), out.mutable_source_labels());
  if (out.port() == 0) out.set_port(root.port());
  if (out.source_namespace().empty()) out.set_source_namespace(root.source_namespace());
  if (out.gateways().empty()) *out.mutable_gateways() = root.gateways();
  if (out.stat_prefix().empty()) out.set_stat_prefix(root.stat_prefix());
  return out;
}

// Rewrites what `vs` would resolve later (destination hosts, match gateways) into resolved form,
// so the route can move into another VirtualService's namespace unchanged.
void resolveNames(const model::VirtualServiceInfo& vs, net::HTTPRoute& r) {
  for (auto& m : *r.mutable_match()) {
    for (auto& g : *m.mutable_gateways()) g = vs.resolveGateway(g);
  }
  for (auto& d : *r.mutable_route()) {
    if (d.has_destination())
      d.mutable_destination()->set_host(vs.resolveHost(d.destination().host()));
  }
  if (r.has_mirror()) r.mutable_mirror()->set_host(vs.resolveHost(r.mirror().host()));
  for (auto& m : *r.mutable_mirrors()) {
    if (m.has_destination())
      m.mutable_destination()->set_host(vs.resolveHost(m.destination().host()));
  }
}

}  // namespace

std::optional<net::HTTPRoute> mergeDelegateRoute(const model::VirtualServiceInfo& root_vs,
                                                 const net::HTTPRoute& root,
                                                 const model::VirtualServiceInfo& delegate_vs,
                                                 const net::HTTPRoute& delegate) {
  // Only one level: a delegate's own `delegate` is not followed (validation rejects it too).
  if (delegate.has_delegate()) return std::nullopt;
  net::HTTPRoute out = delegate;
  resolveNames(delegate_vs, out);
  if (root.match_size() > 0 && out.match_size() == 0) {
    *out.mutable_match() = root.match();
    for (auto& m : *out.mutable_match()) {
      for (auto& g : *m.mutable_gateways()) g = root_vs.resolveGateway(g);
    }
  } else if (root.match_size() > 0) {
    std::vector<net::HTTPMatchRequest> roots(root.match().begin(), root.match().end());
    for (auto& m : roots) {
      for (auto& g : *m.mutable_gateways()) g = root_vs.resolveGateway(g);
    }
    google::protobuf::RepeatedPtrField<net::HTTPMatchRequest> merged;
    for (const auto& leaf : out.match()) {
      // Every delegate block needs at least one root block it narrows; one merged block per
      // compatible pair, in (delegate, root) order.
      bool found = false;
      for (const auto& r : roots) {
        if (matchConflict(r, leaf)) continue;
        *merged.Add() = mergeMatch(r, leaf);
        found = true;
      }
      if (!found) return std::nullopt;
    }
    out.mutable_match()->Swap(&merged);
  }
  out.set_name(joinName(root.name(), delegate.name()));
  // What the delegate route leaves unset comes from the root route.
  if (!out.has_rewrite() && root.has_rewrite()) *out.mutable_rewrite() = root.rewrite();
  if (!out.has_direct_response() && root.has_direct_response()) {
    *out.mutable_direct_response() = root.direct_response();
  }
  if (!out.has_timeout() && root.has_timeout()) *out.mutable_timeout() = root.timeout();
  if (!out.has_retries() && root.has_retries()) *out.mutable_retries() = root.retries();
  if (!out.has_fault() && root.has_fault()) *out.mutable_fault() = root.fault();
  if (!out.has_mirror() && root.has_mirror()) {
    *out.mutable_mirror() = root.mirror();
    out.mutable_mirror()->set_host(root_vs.resolveHost(root.mirror().host()));
  }
  if (!out.has_mirror_percent() && root.has_mirror_percent()) {
    *out.mutable_mirror_percent() = root.mirror_percent();
  }
  if (!out.has_mirror_percentage() && root.has_mirror_percentage()) {
    *out.mutable_mirror_percentage() = root.mirror_percentage();
  }
  if (!out.has_cors_policy() && root.has_cors_policy()) {
    *out.mutable_cors_policy() = root.cors_policy();
  }
  if (out.mirrors().empty() && !root.mirrors().empty()) {
    *out.mutable_mirrors() = root.mirrors();
    for (auto& m : *out.mutable_mirrors()) {
      if (m.has_destination()) {
        m.mutable_destination()->set_host(root_vs.resolveHost(m.destination().host()));
      }
    }
  }
  if (!out.has_headers() && root.has_headers()) *out.mutable_headers() = root.headers();
  return out;
}

HttpRouteList delegatedHttpRoutes(const model::MeshModel& mesh,
                                  const model::VirtualServiceInfo& root) {
  HttpRouteList out;
  const auto& http = root.spec->http();
  bool delegates = false;
  for (const auto& hr : http) delegates = delegates || hr.has_delegate();
  if (!delegates || root.hosts.empty()) {
    // A hostless VirtualService is itself a delegate: its `delegate` routes are never followed.
    for (const auto& hr : http) out.routes.push_back(&hr);
    return out;
  }
  const auto& defaults_field = mesh.meshConfig().default_virtual_service_export_to();
  std::vector<std::string> defaults(defaults_field.begin(), defaults_field.end());
  for (const auto& hr : http) {
    if (!hr.has_delegate()) {
      out.routes.push_back(&hr);
      continue;
    }
    const auto& ref = hr.delegate();
    std::string ns = ref.namespace_().empty() ? root.ns : ref.namespace_();
    auto res = mesh.snapshot().get(config::Kind::kVirtualService, ns, ref.name());
    const auto* spec = res ? res->specAs<net::VirtualService>() : nullptr;
    // Missing, not a delegate (it has hosts), or not visible from the root: the route is dropped.
    if (!spec || spec->hosts_size() != 0) continue;
    std::vector<std::string> export_to(spec->export_to().begin(), spec->export_to().end());
    if (!model::isExportedTo(export_to, defaults, ns, root.ns)) continue;
    model::VirtualServiceInfo delegate_vs;
    delegate_vs.resource = res;
    delegate_vs.spec = spec;
    delegate_vs.name = ref.name();
    delegate_vs.ns = ns;
    delegate_vs.domain_suffix = root.domain_suffix;
    for (const auto& sub : spec->http()) {
      auto merged = mergeDelegateRoute(root, hr, delegate_vs, sub);
      if (!merged) continue;
      out.owned.push_back(std::make_unique<net::HTTPRoute>(std::move(*merged)));
      out.routes.push_back(out.owned.back().get());
    }
  }
  return out;
}

const std::vector<const net::HTTPRoute*>& Ctx::httpRoutes(
    const model::VirtualServiceInfo& vs) const {
  auto& slot = http_routes_cache[&vs];
  if (!slot) slot = std::make_shared<const HttpRouteList>(delegatedHttpRoutes(mesh, vs));
  return slot->routes;
}

}  // namespace mast::control::translate::detail
