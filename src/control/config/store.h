#pragma once
// ConfigStore: the control plane's set of Istio resources, built from files.
//
// Contract:
//  - Resources are keyed by (kind, namespace, name). Each file contributes the valid documents
//    it holds; an invalid document is rejected alone and every other resource keeps working.
//  - When an edit breaks a resource that was valid before, its last good version stays in force
//    (and the error is reported) until the file is fixed or the resource/file is deleted. If a
//    broken document cannot even be identified (YAML syntax error, unknown kind, no name), every
//    resource the file contributed before is kept until the file parses again.
//  - The same key defined by two files: the file whose path sorts first wins; the other
//    definition is reported as an error.
//  - Consumers read immutable snapshots (shared_ptr<const ConfigSnapshot>); a snapshot never
//    changes. Each change that alters the effective set bumps a monotonically increasing
//    version and calls the listeners with the keys that were added, changed or removed.
//  - Thread-safe: every method may be called from any thread. Listeners run on the thread that
//    made the change, one at a time, in version order, without the store's lock held: they may
//    call snapshot() but must not modify the store (that would deadlock).
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "control/config/parse.h"
#include "control/config/resource.h"

namespace mast::control::config {

class ConfigSnapshot {
 public:
  using Map = std::map<ResourceKey, std::shared_ptr<const Resource>>;

  ConfigSnapshot(uint64_t version, Map resources)
      : version_(version), resources_(std::move(resources)) {}

  uint64_t version() const { return version_; }
  const Map& resources() const { return resources_; }
  size_t size() const { return resources_.size(); }

  // nullptr if absent.
  std::shared_ptr<const Resource> get(const ResourceKey& key) const;
  std::shared_ptr<const Resource> get(Kind kind, const std::string& ns,
                                      const std::string& name) const {
    return get(ResourceKey{kind, ns, name});
  }
  // All resources of a kind (optionally in one namespace), in key order.
  std::vector<std::shared_ptr<const Resource>> list(Kind kind) const;
  std::vector<std::shared_ptr<const Resource>> list(Kind kind, const std::string& ns) const;

 private:
  uint64_t version_;
  Map resources_;
};

// One file's new state: contents, or nullopt when the file was removed.
struct FileChange {
  std::string path;
  std::optional<std::string> contents;
};

class ConfigStore {
 public:
  using Listener = std::function<void(const std::shared_ptr<const ConfigSnapshot>& snapshot,
                                      const std::vector<ResourceKey>& changed)>;

  ConfigStore();

  std::shared_ptr<const ConfigSnapshot> snapshot() const;
  uint64_t version() const { return snapshot()->version(); }

  // Returns an id for unsubscribe().
  int subscribe(Listener listener);
  void unsubscribe(int id);

  // Replaces what `path` contributes with the resources in `contents`. Returns this file's
  // errors (empty when every document is valid).
  std::vector<ConfigError> applyFile(const std::string& path, std::string_view contents);
  // Drops every resource `path` contributed (including last-good ones).
  void removeFile(const std::string& path);
  // Applies several file changes as one update (one version bump, one notification).
  // Returns the errors of the changed files.
  std::vector<ConfigError> applyChanges(const std::vector<FileChange>& changes);

  // Reads every *.yaml, *.yml and *.json file under `dir` (recursively; hidden files and
  // directories skipped) and makes the store's view of `dir` match it: files that disappeared
  // are removed. Unreadable directory → one error. Returns the errors of all files under dir.
  std::vector<ConfigError> loadDirectory(const std::string& dir);

  // Every current error: per-file document errors and duplicate definitions.
  std::vector<ConfigError> errors() const;
  // Paths of the files the store currently holds.
  std::vector<std::string> files() const;

 private:
  struct FileState {
    // Resources this file currently contributes (valid ones + last good of broken ones).
    std::map<ResourceKey, std::shared_ptr<const Resource>> resources;
    std::vector<ConfigError> errors;
  };

  void applyLocked(const FileChange& change, std::vector<ConfigError>& errors);
  // Recomputes the effective set; returns the new snapshot and changed keys if anything changed.
  std::optional<std::pair<std::shared_ptr<const ConfigSnapshot>, std::vector<ResourceKey>>>
  rebuildLocked();
  void notify(const std::shared_ptr<const ConfigSnapshot>& snap,
              const std::vector<ResourceKey>& changed);

  mutable std::mutex mu_;
  std::map<std::string, FileState> files_;
  std::vector<ConfigError> duplicate_errors_;
  std::shared_ptr<const ConfigSnapshot> snapshot_;

  std::mutex update_mu_;  // serializes updates incl. their notification (version order)
  std::mutex listeners_mu_;
  std::map<int, std::shared_ptr<Listener>> listeners_;
  int next_listener_ = 1;
};

// True for names the loader reads: *.yaml, *.yml, *.json, not hidden (".name").
bool isConfigFileName(std::string_view file_name);

}  // namespace mast::control::config
