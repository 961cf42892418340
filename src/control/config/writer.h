#pragma once
// Writing resources into a config directory (what `mastctl apply/delete` does), crash-safely:
// temp file in the same directory + fsync + rename over the target + fsync of the directory.
// A reader (the loader or the watcher) sees either the old or the new file, never a partial one.
// Temp files start with '.', which the loader and the watcher ignore.
#include <string>

#include "base/result.h"
#include "control/config/resource.h"

namespace mast::control::config {

// "<kind>.<namespace>.<name>.yaml" with the kind lowercased, e.g.
// "virtualservice.default.reviews.yaml".
std::string resourceFileName(const ResourceKey& key);

// The resource as a YAML document (apiVersion, kind, metadata, spec) that parseFile() reads
// back to an equal resource.
std::string resourceToYaml(const Resource& resource);

// Atomically writes `contents` to `path`.
Status writeFileAtomic(const std::string& path, const std::string& contents);

// Writes the resource to dir/resourceFileName(key). Returns the path written.
Result<std::string> writeResourceFile(const std::string& dir, const Resource& resource);

// Removes dir/resourceFileName(key) (and fsyncs the directory). Error if it does not exist.
Status deleteResourceFile(const std::string& dir, const ResourceKey& key);

}  // namespace mast::control::config
