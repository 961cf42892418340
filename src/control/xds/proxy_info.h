#pragma once
// ProxyInfo: who is on the other side of an ADS stream, parsed from the Envoy `node` of the
// stream's first request (later requests usually omit it).
//
// Istio-style ids are understood: "TYPE~IP~NAME.NAMESPACE~DNS_DOMAIN", e.g.
// "sidecar~10.0.0.1~reviews-v1.default~default.svc.cluster.local" or "router~...".
// Any other non-empty id is accepted with `istio_id == false` and the fields left empty; the
// owner decides in onProxyConnected whether to accept it. Node metadata (a Struct) is read for
// LABELS, NAMESPACE, SERVICE_ACCOUNT, WORKLOAD_NAME, GENERATOR, CLUSTER_ID, ISTIO_VERSION,
// INSTANCE_IPS; every top-level key is also kept in `metadata` (strings as-is, other values as
// JSON).
#include <map>
#include <string>
#include <vector>

#include "base/result.h"
#include "envoy/config/core/v3/base.pb.h"

namespace mast::control::xds {

enum class ProxyType { kUnknown, kSidecar, kRouter };

std::string_view proxyTypeName(ProxyType type);

struct ProxyInfo {
  std::string id;  // the full node id; the key for snapshots and status
  bool istio_id = false;
  ProxyType type = ProxyType::kUnknown;
  std::string ip;                // first IP of the id ("10.0.0.1")
  std::vector<std::string> ips;  // INSTANCE_IPS if present, else {ip}
  std::string name;              // "reviews-v1" (pod / workload instance name)
  std::string namespace_;        // NAMESPACE metadata, else the part after the first '.' of NAME
  std::string dns_domain;        // "default.svc.cluster.local"
  std::string cluster;           // node.cluster
  std::map<std::string, std::string> labels;    // metadata LABELS
  std::map<std::string, std::string> metadata;  // every top-level metadata key
  std::string service_account;                  // SERVICE_ACCOUNT
  std::string workload_name;                    // WORKLOAD_NAME
  std::string cluster_id;              // CLUSTER_ID (the Kubernetes cluster, not node.cluster)
  std::string istio_version;           // ISTIO_VERSION
  std::string generator;               // GENERATOR ("grpc" for proxyless gRPC)
  bool proxyless = false;              // GENERATOR == "grpc"
  std::string user_agent;              // "envoy 1.28.0", "gRPC C-core 1.51.1", ...
  envoy::config::core::v3::Node node;  // the node as received
};

// Fails only when the id is empty (nothing could key the proxy's snapshot).
Result<ProxyInfo> parseProxyInfo(const envoy::config::core::v3::Node& node);

}  // namespace mast::control::xds
