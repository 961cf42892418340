#pragma once
// Loading Envoy's v3 Bootstrap: YAML/JSON → JSON (with line numbers) → protobuf, with every
// error as one line "FILE:LINE: FIELD.PATH: message", plus semantic checks (dangling cluster
// references, unsupported extensions) done once at the edge.
#include <google/protobuf/message.h>

#include <memory>
#include <string>

#include "base/result.h"
#include "base/yaml_json.h"

namespace envoy::config::bootstrap::v3 {
class Bootstrap;
}

namespace mast::proxy::config {

struct BootstrapSource {
  std::string path;         // may be empty when only config_yaml is given
  std::string config_yaml;  // --config-yaml, merged over the file (protobuf MergeFrom)
};

// `doc` (optional) receives the file's YAML document, for locating later errors (locateError).
Result<std::unique_ptr<envoy::config::bootstrap::v3::Bootstrap>> loadBootstrap(
    const BootstrapSource& src, YamlDocument* doc = nullptr);
// From text (tests, fuzzing).
Result<std::unique_ptr<envoy::config::bootstrap::v3::Bootstrap>> loadBootstrapFromString(
    const std::string& text, const std::string& file_name);

// JSON → message with exact paths: unknown fields, wrong types, unknown "@type", bad enum
// values and durations are reported with the YAML line. Reused by the xDS client.
Status jsonToMessage(const nlohmann::json& json, google::protobuf::Message& msg,
                     const YamlDocument* source, const std::string& file_name);

// An error found after loading, "FILE: FIELD.PATH: message", gets the YAML line of FIELD.PATH:
// "FILE:LINE: FIELD.PATH: message". Errors that already carry a line are returned unchanged.
std::string locateError(const std::string& error, const std::string& file, const YamlDocument& doc);

// Supported extensions and cross-references.
Status validateBootstrap(const envoy::config::bootstrap::v3::Bootstrap& b);

}  // namespace mast::proxy::config
