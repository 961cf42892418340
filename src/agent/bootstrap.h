#pragma once
// The proxy bootstrap the agent writes before starting mast-proxy: an Envoy v3 Bootstrap as JSON,
// shaped like Istio's envoy-rev.json (node id and metadata, ADS over the static `xds-grpc`
// cluster, admin on loopback, the Prometheus listener routed to the admin port through the static
// `prometheus_stats` cluster). Pure functions; the agent writes the result to its work dir.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace mast::agent {

struct BootstrapOptions {
  std::string type = "sidecar";           // sidecar | router
  std::string ip;                         // the workload's primary IP (node id, INSTANCE_IPS)
  std::vector<std::string> instance_ips;  // all IPs; defaults to {ip}
  std::string name;                       // workload (pod) name
  std::string ns;                         // namespace
  std::string dns_domain;                 // defaults to NS.svc.cluster.local
  std::map<std::string, std::string> labels;
  std::string service_account;
  std::string auto_register_group;
  std::string cluster_id = "Kubernetes";
  std::map<std::string, std::string> extra_metadata;  // --meta K=V, strings
  bool capture = false;                               // INTERCEPTION_MODE=REDIRECT when set
  std::string discovery_host;
  uint16_t discovery_port = 15010;
  uint16_t admin_port = 15000;
  uint16_t stats_port = 15090;
};

// Istio's node id: TYPE~IP~NAME.NAMESPACE~DNS_DOMAIN.
std::string nodeId(const BootstrapOptions& o);
nlohmann::json makeBootstrap(const BootstrapOptions& o);

// Small parsers for the command line, with messages naming the flag's value.
// "host:port" or "[v6]:port".
Result<std::pair<std::string, uint16_t>> parseHostPort(std::string_view s);
// "NAME.NAMESPACE" -> {name, namespace}.
Result<std::pair<std::string, std::string>> parseWorkload(std::string_view s);
// "k=v,k2=v2" (empty -> empty map).
Result<std::map<std::string, std::string>> parseKeyValues(std::string_view s);

}  // namespace mast::agent
