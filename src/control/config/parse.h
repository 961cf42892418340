#pragma once
// Loading Istio resources from a file's text (multi-document YAML, or JSON).
//
// Each document is parsed and validated on its own: one broken document never hides the
// others. Every error names the file, the 1-based document index, the resource (when its
// kind/namespace/name could be read), the YAML line and the field path, e.g.
//   vs.yaml: document 2 (VirtualService default/reviews): line 14: spec.http[0].route[1].weight:
//   weight -5 < 0
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "control/config/resource.h"

namespace mast::control::config {

struct ConfigError {
  std::string file;
  int document = 0;      // 1-based; 0 = concerns the whole file
  std::string resource;  // "VirtualService default/reviews"; empty if unknown
  int line = 0;          // 1-based; 0 = unknown
  std::string path;      // "spec.http[0].route[1].weight"; empty for document-level problems
  std::string message;

  std::string toString() const;
};

struct ParsedDocument {
  int index = 0;  // 1-based document index in the file
  // Identity, when apiVersion/kind/metadata could be read (even if the spec is invalid): lets
  // the store keep the last good version of exactly this resource.
  std::optional<ResourceKey> key;
  std::optional<Resource> resource;  // set iff errors is empty
  std::vector<ConfigError> errors;
};

struct ParsedFile {
  std::vector<ParsedDocument> documents;    // empty documents (e.g. after a trailing ---) skipped
  std::vector<ConfigError> errors() const;  // every document's errors, in order
};

// Parses and validates every document in `contents`. `file_name` is used in errors and recorded
// as Resource::source_file. A ".json" file may hold one object (or a YAML-compatible JSON stream).
ParsedFile parseFile(std::string_view file_name, std::string_view contents);

}  // namespace mast::control::config
