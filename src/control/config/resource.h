#pragma once
// Typed Istio resources as the control plane holds them: Kubernetes-style envelope
// (apiVersion, kind, metadata) around a protobuf spec from api/istio.
//
// Contract: a Resource is immutable once built (the spec is shared, const); copies are cheap.
#include <google/protobuf/message.h>

#include <compare>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace mast::control::config {

// Every resource kind the loader accepts.
enum class Kind {
  kGateway,
  kVirtualService,
  kDestinationRule,
  kServiceEntry,
  kWorkloadEntry,
  kWorkloadGroup,
  kSidecar,
  kPeerAuthentication,
  kAuthorizationPolicy,
  kRequestAuthentication,
  kTelemetry,
};

struct KindInfo {
  Kind kind;
  std::string_view name;                       // "VirtualService"
  std::string_view group;                      // "networking.istio.io"
  std::span<const std::string_view> versions;  // accepted versions, e.g. v1alpha3, v1beta1, v1
  const google::protobuf::Message* prototype;  // default instance of the spec message
};

const KindInfo& kindInfo(Kind kind);
std::span<const KindInfo> allKinds();
std::string_view kindName(Kind kind);
std::optional<Kind> kindFromName(std::string_view name);

// Identity of a resource in the store.
struct ResourceKey {
  Kind kind = Kind::kGateway;
  std::string ns;  // namespace
  std::string name;

  auto operator<=>(const ResourceKey&) const = default;
  bool operator==(const ResourceKey&) const = default;
  // "VirtualService default/reviews"
  std::string toString() const;
};

struct ObjectMeta {
  std::string name;
  std::string ns = "default";  // metadata.namespace; "default" when omitted
  std::map<std::string, std::string> labels;
  std::map<std::string, std::string> annotations;
  std::string resource_version;
  int64_t generation = 0;
  std::string creation_timestamp;  // RFC 3339 as written, empty if absent
};

struct Resource {
  std::string api_version;  // "networking.istio.io/v1beta1"
  Kind kind = Kind::kGateway;
  ObjectMeta metadata;
  std::shared_ptr<const google::protobuf::Message> spec;
  // Where it came from (for errors and for `mastctl get`): file path and 1-based document index.
  std::string source_file;
  int source_document = 0;

  ResourceKey key() const { return {kind, metadata.ns, metadata.name}; }

  // The spec as its concrete type; nullptr if T is not this kind's spec type.
  template <class T>
  const T* specAs() const {
    return dynamic_cast<const T*>(spec.get());
  }
};

// Content equality of two resources (envelope + spec), ignoring where they came from.
bool sameContent(const Resource& a, const Resource& b);

}  // namespace mast::control::config
