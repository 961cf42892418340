#pragma once
// The v3 type URLs this server knows by name, and the per-type protocol rules that differ.
// Any other type URL present in a Snapshot is served too (generic), with the rules of a
// name-subscribed type.
#include <string>
#include <string_view>
#include <vector>

namespace mast::control::xds {

inline constexpr std::string_view kTypePrefix = "type.googleapis.com/";
inline constexpr std::string_view kClusterType =
    "type.googleapis.com/envoy.config.cluster.v3.Cluster";
inline constexpr std::string_view kEndpointType =
    "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment";
inline constexpr std::string_view kListenerType =
    "type.googleapis.com/envoy.config.listener.v3.Listener";
inline constexpr std::string_view kRouteType =
    "type.googleapis.com/envoy.config.route.v3.RouteConfiguration";
inline constexpr std::string_view kSecretType =
    "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret";

// LDS and CDS are "global" types: a first request with no names is a wildcard subscription.
// For every other type (RDS, EDS, SDS, unknown) an empty name list means "nothing": a client
// that sends it is unsubscribing (gRPC does exactly that), never asking for everything.
bool isWildcardType(std::string_view type_url);

// Push order across types for one proxy: secrets, then CDS, EDS, LDS, RDS (the "make before
// break" order from the xDS docs: a resource is sent before the ones that reference it), then
// any other type in name order. Lower ranks go first.
int pushRank(std::string_view type_url);

// Short name for logs and status tables: "CDS", "EDS", "LDS", "RDS", "SDS", or the message name.
std::string shortTypeName(std::string_view type_url);

}  // namespace mast::control::xds
