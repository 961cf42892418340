#pragma once
// MeshConfig loading: Istio's mesh-wide settings (the "mesh" key of the istio ConfigMap, or a
// file holding just that YAML). Defaults are Istio's; the user's YAML is merged over them field
// by field (maps merge recursively, lists and scalars replace), as istiod does.
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "control/config/parse.h"
#include "istio/mesh/v1alpha1/config.pb.h"

namespace mast::control::config {

using MeshConfig = istio::mesh::v1alpha1::MeshConfig;

// Istio's defaults for the fields Mast models (connectTimeout 10s, enableAutoMtls true,
// outboundTrafficPolicy ALLOW_ANY, rootNamespace istio-system, trustDomain cluster.local, ...).
MeshConfig defaultMeshConfig();

// Parses YAML/JSON text into a MeshConfig (defaults applied, strict: unknown fields are
// errors) and validates it. Errors carry file, line and field path.
struct MeshConfigResult {
  MeshConfig config;
  std::vector<ConfigError> errors;  // empty on success
};
MeshConfigResult parseMeshConfig(std::string_view file_name, std::string_view text);

}  // namespace mast::control::config
