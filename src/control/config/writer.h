#pragma once
// Writing resources into a config directory (what `mastctl apply/delete` does), crash-safely:
// temp file in the same directory + fsync + rename over the target + fsync of the directory.
// A reader (the loader or the watcher) sees either the old or the new file, never a partial one.
// Temp files start with '.', which the loader and the watcher ignore.
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "base/result.h"
#include "control/config/resource.h"

namespace mast::control::config {

// "<kind>.<namespace>.<name>.yaml" with the kind lowercased, e.g.
// "virtualservice.default.reviews.yaml".
std::string resourceFileName(const ResourceKey& key);

// The resource as a YAML document (apiVersion, kind, metadata, spec) that parseFile() reads
// back to an equal resource.
std::string resourceToYaml(const Resource& resource);

// Any JSON value as block YAML (the same emitter resourceToYaml uses; strings that would read
// back as something else are quoted). Ends with a newline.
std::string jsonToYaml(const nlohmann::json& value);

// `text` (a multi-document YAML file named `file_name`) with the document that defines `key`
// replaced by `replacement` (a YAML document, no "---"), or removed with its "---" separator
// when `replacement` is nullopt. Every other byte of the file is kept (comments, formatting,
// other documents). Fails when no document or more than one defines `key`, when that document
// defines other resources too (a Kubernetes List), or for a JSON file.
Result<std::string> rewriteDocument(std::string_view file_name, std::string_view text,
                                    const ResourceKey& key,
                                    const std::optional<std::string>& replacement);

// Atomically writes `contents` to `path`.
Status writeFileAtomic(const std::string& path, const std::string& contents);

// Writes the resource to dir/resourceFileName(key). Returns the path written.
Result<std::string> writeResourceFile(const std::string& dir, const Resource& resource);

// Removes dir/resourceFileName(key) (and fsyncs the directory). Error if it does not exist.
Status deleteResourceFile(const std::string& dir, const ResourceKey& key);

}  // namespace mast::control::config
