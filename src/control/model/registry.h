#pragma once
// The service registry: what services exist and where their endpoints are.
//
// ServiceRegistry is the seam between "where services come from" (ServiceEntry/WorkloadEntry
// today, Kubernetes later) and translation: translation only ever sees Service and Endpoint.
// Implementations are immutable after construction and safe to read from any thread.
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "istio/networking/v1alpha3/workload_entry.pb.h"

namespace mast::control::model {

// Istio's port protocols (§1 of the spec); kAuto = unknown/empty name (protocol sniffing).
enum class Protocol {
  kAuto,
  kHttp,
  kHttp2,
  kGrpc,
  kGrpcWeb,
  kHttps,
  kTls,
  kTcp,
  kMongo,
  kRedis,
  kMysql,
  kUdp,
};

// Case-insensitive: "HTTP", "http2", "GRPC-Web", "TCP"... Unknown or empty → kAuto.
Protocol parseProtocol(std::string_view s);
// Port names follow the "<protocol>[-suffix]" convention ("http-web" → HTTP, "grpc-web" →
// GRPC-Web). Used when a port's protocol field is empty.
Protocol protocolFromPortName(std::string_view name);
std::string_view protocolName(Protocol p);
// Served by an HTTP connection manager (HTTP, HTTP2, gRPC, gRPC-Web).
bool isHttpProtocol(Protocol p);
// The upstream must speak HTTP/2 (HTTP2, gRPC, gRPC-Web).
bool isHttp2Protocol(Protocol p);
// TLS carried end to end, routed by SNI (HTTPS, TLS).
bool isTlsProtocol(Protocol p);

enum class Resolution { kNone, kStatic, kDns, kDnsRoundRobin };
enum class Location { kMeshExternal, kMeshInternal };

struct ServicePort {
  std::string name;
  uint32_t number = 0;
  Protocol protocol = Protocol::kAuto;
  uint32_t target_port = 0;  // 0 = same as number
};

struct Service {
  std::string hostname;                // FQDN or wildcard ("*.example.com"), lower case
  std::string ns;                      // namespace of the defining resource
  std::string source;                  // "ServiceEntry default/reviews" (diagnostics)
  std::string creation_timestamp;      // of the defining resource (oldest wins on conflicts)
  std::vector<std::string> addresses;  // VIPs / CIDRs; empty = none (0.0.0.0 listeners)
  std::vector<ServicePort> ports;
  Resolution resolution = Resolution::kNone;
  Location location = Location::kMeshExternal;
  std::vector<std::string> export_to;  // as written; empty = mesh default
  std::vector<std::string> subject_alt_names;

  const ServicePort* port(uint32_t number) const;
};

// One endpoint of one service port.
struct Endpoint {
  std::string address;        // IP, or a DNS name for DNS-resolved services
  uint32_t port = 0;          // where to connect (WE ports map > targetPort > service port)
  uint32_t service_port = 0;  // the service port it serves
  std::map<std::string, std::string> labels;
  std::string service_account;
  std::string locality;  // "region/zone/subzone" (any suffix may be absent)
  uint32_t weight = 0;   // 0 = unset (1)
  std::string network;
  bool tls_istio = false;  // endpoint speaks Istio mTLS (tlsMode label or service account)
  std::string workload;    // "WorkloadEntry ns/name", "inline", "host" (diagnostics)
};

// A workload auto-registered from a WorkloadGroup (VM joining the mesh). Behaves like a
// WorkloadEntry in namespace `ns`.
struct WorkloadInstance {
  std::string name;  // "<group>-<ip>"
  std::string ns;
  std::string group;  // the WorkloadGroup's name
  istio::networking::v1alpha3::WorkloadEntry entry;
};

class ServiceRegistry {
 public:
  virtual ~ServiceRegistry() = default;
  // Every service, ordered by (hostname, namespace). Hostnames may repeat across namespaces.
  virtual const std::vector<std::shared_ptr<const Service>>& services() const = 0;
  // Endpoints of `service` for its port `port` (a service port number), in a stable order.
  virtual std::vector<Endpoint> endpoints(const Service& service, uint32_t port) const = 0;
};

}  // namespace mast::control::model
