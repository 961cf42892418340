#pragma once
// YAML (and JSON, a subset) → nlohmann::json, remembering the source line of every value so
// config errors can name file, line and field path. Shared by the proxy and the control plane.
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace mast {

struct YamlDocument {
  nlohmann::json json;
  // Field path ("static_resources.listeners[0].name") → 1-based line.
  std::map<std::string, int> lines;
  int line(const std::string& path) const;  // nearest known ancestor's line, or 0
};

// Plain scalars become typed JSON (true/false, null/~, integers, floats); quoted ones stay
// strings. Errors: "file:line:col: message".
Result<YamlDocument> parseYaml(std::string_view text, std::string_view file_name);
Result<std::vector<YamlDocument>> parseYamlDocuments(std::string_view text,
                                                     std::string_view file_name);

}  // namespace mast
