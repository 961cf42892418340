#pragma once
// Hostname rules Istio applies to every resource: short-name expansion, wildcard matching,
// exportTo visibility and label selection. Pure functions.
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace mast::control::model {

// The Kubernetes cluster domain suffix short names expand into ("cluster.local").
inline constexpr std::string_view kDefaultDomainSuffix = "cluster.local";

// True for an IPv4 or IPv6 literal (no CIDR).
bool isIpAddress(std::string_view s);

// Istio's ResolveShortnameToFQDN: a name without any dot (and not "*", not an IP) becomes
// "<name>.<ns>.svc.<suffix>"; anything with a dot is taken literally. Lower-cased.
// "reviews" in "default" → "reviews.default.svc.cluster.local"; "reviews.default" unchanged.
std::string resolveShortName(std::string_view host, std::string_view ns,
                             std::string_view suffix = kDefaultDomainSuffix);

// `pattern` ("*", "*.example.com" or a plain name) matches the concrete-or-wildcard `host`.
// "*.example.com" matches "a.example.com" and "a.b.example.com" and "*.a.example.com", not
// "example.com". Case-insensitive.
bool hostMatches(std::string_view pattern, std::string_view host);

// Either side matches the other (used to intersect gateway hosts with VirtualService hosts).
bool hostsOverlap(std::string_view a, std::string_view b);

// exportTo semantics: empty → `defaults` (mesh default, itself empty → "*"); "." = the owner's
// namespace; "*" = all; "~" = none; anything else a namespace name.
bool isExportedTo(const std::vector<std::string>& export_to,
                  const std::vector<std::string>& defaults, std::string_view owner_ns,
                  std::string_view target_ns);

// Every (key, value) of `selector` is in `labels`. An empty selector selects everything.
bool labelsMatch(const std::map<std::string, std::string>& selector,
                 const std::map<std::string, std::string>& labels);

std::string toLower(std::string_view s);

}  // namespace mast::control::model
