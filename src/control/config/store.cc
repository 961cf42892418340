#include "control/config/store.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

namespace mast::control::config {

namespace fs = std::filesystem;

std::shared_ptr<const Resource> ConfigSnapshot::get(const ResourceKey& key) const {
  auto it = resources_.find(key);
  return it == resources_.end() ? nullptr : it->second;
}

std::vector<std::shared_ptr<const Resource>> ConfigSnapshot::list(Kind kind) const {
  std::vector<std::shared_ptr<const Resource>> out;
  for (auto it = resources_.lower_bound(ResourceKey{kind, "", ""});
       it != resources_.end() && it->first.kind == kind; ++it) {
    out.push_back(it->second);
  }
  return out;
}

std::vector<std::shared_ptr<const Resource>> ConfigSnapshot::list(Kind kind,
                                                                  const std::string& ns) const {
  std::vector<std::shared_ptr<const Resource>> out;
  for (auto it = resources_.lower_bound(ResourceKey{kind, ns, ""});
       it != resources_.end() && it->first.kind == kind && it->first.ns == ns; ++it) {
    out.push_back(it->second);
  }
  return out;
}

bool isConfigFileName(std::string_view name) {
  if (name.empty() || name[0] == '.') return false;
  return name.ends_with(".yaml") || name.ends_with(".yml") || name.ends_with(".json");
}

ConfigStore::ConfigStore()
    : snapshot_(std::make_shared<const ConfigSnapshot>(0, ConfigSnapshot::Map{})) {}

std::shared_ptr<const ConfigSnapshot> ConfigStore::snapshot() const {
  std::lock_guard lock(mu_);
  return snapshot_;
}

int ConfigStore::subscribe(Listener listener) {
  std::lock_guard lock(listeners_mu_);
  int id = next_listener_++;
  listeners_[id] = std::make_shared<Listener>(std::move(listener));
  return id;
}

void ConfigStore::unsubscribe(int id) {
  std::lock_guard lock(listeners_mu_);
  listeners_.erase(id);
}

void ConfigStore::applyLocked(const FileChange& change, std::vector<ConfigError>& errors) {
  if (!change.contents) {
    files_.erase(change.path);
    return;
  }
  ParsedFile parsed = parseFile(change.path, *change.contents);
  FileState next;
  const FileState* prev = nullptr;
  if (auto it = files_.find(change.path); it != files_.end()) prev = &it->second;
  bool unidentified_failure = false;
  std::set<ResourceKey> mentioned;
  for (auto& doc : parsed.documents) {
    if (doc.key) mentioned.insert(*doc.key);
    if (doc.resource) {
      ResourceKey key = doc.resource->key();
      if (next.resources.contains(key)) {
        ConfigError e;
        e.file = change.path;
        e.document = doc.index;
        e.resource = key.toString();
        e.message = "defined twice in this file; the first definition is used";
        next.errors.push_back(std::move(e));
        continue;
      }
      next.resources[key] = std::make_shared<const Resource>(std::move(*doc.resource));
    } else if (!doc.key) {
      unidentified_failure = true;
    }
    next.errors.insert(next.errors.end(), doc.errors.begin(), doc.errors.end());
  }
  if (prev != nullptr) {
    for (const auto& [key, res] : prev->resources) {
      if (next.resources.contains(key)) continue;
      // Broken edit of a known resource, or a document we could not even identify: keep the
      // last good version rather than dropping live config.
      bool broken = mentioned.contains(key) || unidentified_failure;
      if (broken) next.resources[key] = res;
    }
  }
  errors.insert(errors.end(), next.errors.begin(), next.errors.end());
  files_[change.path] = std::move(next);
}

std::optional<std::pair<std::shared_ptr<const ConfigSnapshot>, std::vector<ResourceKey>>>
ConfigStore::rebuildLocked() {
  ConfigSnapshot::Map effective;
  std::map<ResourceKey, std::string> owner;
  duplicate_errors_.clear();
  for (const auto& [path, state] : files_) {  // path order: the first file wins
    for (const auto& [key, res] : state.resources) {
      auto [it, inserted] = owner.emplace(key, path);
      if (!inserted) {
        ConfigError e;
        e.file = path;
        e.document = res->source_file == path ? res->source_document : 0;
        e.resource = key.toString();
        e.message = "already defined in " + it->second + "; this definition is ignored";
        duplicate_errors_.push_back(std::move(e));
        continue;
      }
      effective[key] = res;
    }
  }
  const auto& old = snapshot_->resources();
  std::vector<ResourceKey> changed;
  auto oi = old.begin();
  auto ni = effective.begin();
  while (oi != old.end() || ni != effective.end()) {
    if (ni == effective.end() || (oi != old.end() && oi->first < ni->first)) {
      changed.push_back(oi->first);  // removed
      ++oi;
    } else if (oi == old.end() || ni->first < oi->first) {
      changed.push_back(ni->first);  // added
      ++ni;
    } else {
      if (oi->second != ni->second) {
        if (sameContent(*oi->second, *ni->second)) {
          ni->second = oi->second;  // unchanged content: keep sharing the old object
        } else {
          changed.push_back(ni->first);
        }
      }
      ++oi;
      ++ni;
    }
  }
  if (changed.empty()) return std::nullopt;
  snapshot_ =
      std::make_shared<const ConfigSnapshot>(snapshot_->version() + 1, std::move(effective));
  return std::make_pair(snapshot_, std::move(changed));
}

void ConfigStore::notify(const std::shared_ptr<const ConfigSnapshot>& snap,
                         const std::vector<ResourceKey>& changed) {
  std::vector<std::shared_ptr<Listener>> listeners;
  {
    std::lock_guard lock(listeners_mu_);
    for (const auto& [id, l] : listeners_) listeners.push_back(l);
  }
  for (const auto& l : listeners) (*l)(snap, changed);
}

std::vector<ConfigError> ConfigStore::applyChanges(const std::vector<FileChange>& changes) {
  std::lock_guard update(update_mu_);
  std::vector<ConfigError> errors;
  std::optional<std::pair<std::shared_ptr<const ConfigSnapshot>, std::vector<ResourceKey>>> result;
  {
    std::lock_guard lock(mu_);
    for (const auto& c : changes) applyLocked(c, errors);
    result = rebuildLocked();
    for (const auto& e : duplicate_errors_) {
      bool touched = std::any_of(changes.begin(), changes.end(),
                                 [&](const FileChange& c) { return c.path == e.file; });
      if (touched) errors.push_back(e);
    }
  }
  if (result) notify(result->first, result->second);
  return errors;
}

std::vector<ConfigError> ConfigStore::applyFile(const std::string& path,
                                                std::string_view contents) {
  return applyChanges({FileChange{path, std::string(contents)}});
}

void ConfigStore::removeFile(const std::string& path) {
  (void)applyChanges({FileChange{path, std::nullopt}});
}

namespace {

std::optional<std::string> readFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return std::nullopt;
  return ss.str();
}

bool under(const std::string& path, const std::string& dir) {
  return path.size() > dir.size() && path.compare(0, dir.size(), dir) == 0 &&
         (dir.ends_with('/') || path[dir.size()] == '/');
}

}  // namespace

std::vector<ConfigError> ConfigStore::loadDirectory(const std::string& dir_in) {
  std::string dir = fs::path(dir_in).lexically_normal().string();
  while (dir.size() > 1 && dir.ends_with('/')) dir.pop_back();
  std::vector<FileChange> changes;
  std::vector<ConfigError> read_errors;
  std::set<std::string> present;
  std::error_code ec;
  fs::recursive_directory_iterator it(dir, fs::directory_options::skip_permission_denied, ec);
  if (ec) {
    ConfigError e;
    e.file = dir;
    e.message = "cannot read directory: " + ec.message();
    return {e};
  }
  for (; it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) break;
    const fs::path& p = it->path();
    std::string name = p.filename().string();
    if (it->is_directory(ec)) {
      if (!name.empty() && name[0] == '.') it.disable_recursion_pending();
      continue;
    }
    if (!it->is_regular_file(ec) || !isConfigFileName(name)) continue;
    std::string path = p.lexically_normal().string();
    auto contents = readFile(p);
    if (!contents) {
      ConfigError e;
      e.file = path;
      e.message = "cannot read file";
      read_errors.push_back(std::move(e));
      continue;  // keep what we had from it
    }
    present.insert(path);
    changes.push_back({path, std::move(contents)});
  }
  {
    std::lock_guard lock(mu_);
    for (const auto& [path, state] : files_) {
      if (under(path, dir) && !present.contains(path)) changes.push_back({path, std::nullopt});
    }
  }
  // Drop read failures from the removal list: an unreadable file keeps its last good config.
  std::erase_if(changes, [&](const FileChange& c) {
    return !c.contents && std::any_of(read_errors.begin(), read_errors.end(),
                                      [&](const ConfigError& e) { return e.file == c.path; });
  });
  applyChanges(changes);
  std::vector<ConfigError> errors = read_errors;
  for (const auto& e : this->errors()) {
    if (under(e.file, dir)) errors.push_back(e);
  }
  return errors;
}

std::vector<ConfigError> ConfigStore::errors() const {
  std::lock_guard lock(mu_);
  std::vector<ConfigError> all;
  for (const auto& [path, state] : files_)
    all.insert(all.end(), state.errors.begin(), state.errors.end());
  all.insert(all.end(), duplicate_errors_.begin(), duplicate_errors_.end());
  return all;
}

std::vector<std::string> ConfigStore::files() const {
  std::lock_guard lock(mu_);
  std::vector<std::string> out;
  for (const auto& [path, state] : files_) out.push_back(path);
  return out;
}

}  // namespace mast::control::config
