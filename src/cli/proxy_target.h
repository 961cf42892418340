#pragma once
// `mastctl proxy-config TYPE PROXY`: which connected proxy PROXY names (mastd's /debug/adsz) and
// how its admin endpoint is reached from where mastctl runs. A proxy's admin listens on
// 127.0.0.1 inside the proxy's own network namespace (mast-agent's bootstrap), so a proxy whose
// IP lives in another namespace of this machine (the demo's mast-<workload> namespaces, any
// `ip netns` namespace) is fetched from a thread that joins that namespace for the one request.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "base/result.h"
#include "cli/client.h"

namespace mast::cli {

struct ProxyTarget {
  std::string id;    // the full node id
  std::string name;  // NAME.NAMESPACE (istioctl's proxy name); empty if not in Istio form
  std::string ip;    // the node's primary IP
  uint16_t admin_port = 15000;  // PROXY_CONFIG.proxyAdminPort from the node metadata, else 15000
};

// The proxy `query` names among the clients of an adsz answer: a node id or NAME.NAMESPACE
// exactly, else a unique prefix of either. Proxyless gRPC clients (no admin) never match. An
// unknown or ambiguous query is an error listing the candidates.
Result<ProxyTarget> matchProxy(const nlohmann::json& adsz, const std::string& query);

// matchProxy over mastd's /debug/adsz.
Result<ProxyTarget> resolveProxy(const std::string& mastd, const std::string& query);

// Where a target's admin is reached from mastctl's network namespace.
struct AdminRoute {
  std::string address;  // host:port to connect to
  std::string netns;    // the namespace file to join first (/run/netns/NAME), or empty
  std::string where;    // for messages: "127.0.0.1:15000 in network namespace mast-reviews-v1"
  std::string hint;     // why a failure may be expected (the IP was found nowhere), or empty
};

// 127.0.0.1:PORT when the target's IP is an address of mastctl's own network namespace; the
// same inside the one namespace under `netns_dir` that holds the IP (entering it needs root);
// else IP:PORT directly. An IP held by several namespaces is an error.
Result<AdminRoute> locateAdmin(const ProxyTarget& t, const std::string& netns_dir = "/run/netns");

// GET `path` over `route`.
Result<ApiResponse> fetchFromProxy(const AdminRoute& route, const std::string& path);

// The names under `dir` (/run/netns) whose network namespace has `ip` on an interface. Errors
// entering a namespace (EPERM when not root) are appended to `errors`.
std::vector<std::string> namespacesHolding(const std::string& ip, const std::string& dir,
                                           std::vector<std::string>* errors);

}  // namespace mast::cli
