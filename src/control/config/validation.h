#pragma once
// Semantic validation of Istio resources, following the rules of Istio's admission webhook
// (pkg/config/validation): host and FQDN formats, ports, durations, RE2 regexes, route shapes,
// weights, subsets, TLS settings, ServiceEntry resolution rules, security policy shapes.
// Warnings Istio only logs are not reported; every reported problem rejects the resource.
#include <string>
#include <vector>

#include "control/config/json_proto.h"
#include "control/config/resource.h"

namespace mast::control::config {

// Validates metadata (name/namespace formats) and the spec. Paths start with "metadata." or
// "spec." and use Istio's camelCase field names, e.g. "spec.http[0].route[1].weight".
std::vector<FieldError> validateResource(const Resource& resource);

// Building blocks, exposed for the mesh config and for tests. Each returns "" when valid,
// otherwise Istio's message.
std::string checkWildcardDomain(const std::string& domain);
std::string checkFqdn(const std::string& fqdn);
std::string checkPort(int64_t port);
std::string checkIpAddress(const std::string& addr);
std::string checkIpSubnet(const std::string& subnet);
std::string checkRegex(const std::string& regex);
bool isDns1123Label(const std::string& value);

}  // namespace mast::control::config
