#pragma once
// Snapshot: everything one proxy should see, per type URL: a version string and the resources
// by name. SnapshotCache: node id → latest Snapshot, thread-safe, with change watches that the
// ADS streams of that node use to push (like go-control-plane's snapshot cache).
//
// Resources are stored packed (google.protobuf.Any, deterministic serialization) and shared
// between snapshots and in-flight responses; each carries a per-resource version (the content
// hash unless the caller gives one) that the delta protocol sends and that both protocols use to
// tell what changed.
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <google/protobuf/any.pb.h>
#include <google/protobuf/message.h>

#include "base/result.h"

namespace mast::control::xds {

struct Resource {
  std::string name;
  std::string version;  // per-resource version: content hash (hex) unless set explicitly
  std::shared_ptr<const google::protobuf::Any> any;
  // `any` encoded once as one entry of DiscoveryResponse.resources (field 2, length-delimited),
  // so that state-of-the-world responses reference these bytes instead of copying and
  // re-serializing them per proxy (a 1,000-service mesh sends ~2 MB per proxy). Set by
  // Snapshot's mutators; shared by every snapshot and in-flight response holding the resource.
  std::shared_ptr<const std::string> wire;
  // Hashes of `name` and of (name, version), set with `wire`: streams remember what they sent
  // as these (16 bytes per resource) instead of copies of the strings.
  uint64_t name_hash = 0;
  uint64_t entry_hash = 0;
};

// `any` as it appears inside a DiscoveryResponse: tag of field 2 (wire type 2), length, then the
// Any's own serialization (type_url, value). Parses back to an equal Any.
std::shared_ptr<const std::string> encodeResponseEntry(const google::protobuf::Any& any);

// All resources of one type in a snapshot: this set's own `resources` over an optional shared
// `base` layer. Many proxies' snapshots hold the same base (the part of their config that does
// not depend on the workload), so a push builds and keeps only the small per-proxy part. A name
// in `resources` hides the same name in `base`; a base never has a base of its own.
struct ResourceSet {
  std::string version;  // the SotW version_info for this type ("" = derive, see effectiveVersion)
  std::map<std::string, Resource, std::less<>> resources;
  std::shared_ptr<const ResourceSet> base;
  // Sum of a hash of every own (name, resource version), kept by Snapshot's mutators; with the
  // base's, fingerprint() changes whenever the visible content does, whatever `version` says.
  uint64_t content_sum = 0;

  uint64_t fingerprint() const;

  // `version`, or when the owner left it empty a hash of the names and resource versions, so
  // that clients always see a version that changes with the content.
  std::string effectiveVersion() const;

  // Puts `r` (already encoded, e.g. taken from another set) into the own layer, replacing a
  // resource of that name, and keeps `content_sum` right; erase() removes one (if present).
  // For building a set from an earlier one without re-encoding what did not change.
  void insert(const Resource& r);
  void erase(std::string_view name);

  // Lookups and iteration over both layers.
  const Resource* find(std::string_view name) const;
  bool contains(std::string_view name) const { return find(name) != nullptr; }
  bool empty() const { return resources.empty() && (!base || base->resources.empty()); }
  size_t size() const;
  // Calls f(const Resource&) for every visible resource, in name order.
  template <class F>
  void forEach(F&& f) const;
};

template <class F>
void ResourceSet::forEach(F&& f) const {
  if (!base || base->resources.empty()) {
    for (const auto& [name, r] : resources) f(r);
    return;
  }
  auto a = base->resources.begin(), ae = base->resources.end();
  auto b = resources.begin(), be = resources.end();
  while (a != ae || b != be) {
    if (b == be || (a != ae && a->first < b->first)) {
      f(a->second);
      ++a;
    } else {
      if (a != ae && a->first == b->first) ++a;  // hidden by the own layer
      f(b->second);
      ++b;
    }
  }
}

// The name an xDS resource is known by: `name` for most types, `cluster_name` for a
// ClusterLoadAssignment. Empty when the message has neither string field.
std::string resourceName(const google::protobuf::Message& msg);

// "type.googleapis.com/" + full message name.
std::string typeUrlOf(const google::protobuf::Message& msg);

// Packs with deterministic serialization so that equal messages give equal bytes (and hashes).
std::shared_ptr<const google::protobuf::Any> packDeterministic(
    const google::protobuf::Message& msg);

class Snapshot {
 public:
  Snapshot() = default;

  // Declares `type_url` present with this version (and no resources yet). A type that was never
  // declared is "not known" to the snapshot: requests for it wait. A declared type with no
  // resources is an explicit empty set (LDS/CDS clients get an empty response).
  void setVersion(std::string_view type_url, std::string version);

  // Adds (or replaces) one resource; the type URL and name come from the message. Fails when the
  // message has no name. `resource_version` empty → the content hash.
  Status add(const google::protobuf::Message& msg, std::string resource_version = {});
  // Adds an already packed resource under an explicit name; the type URL is any.type_url().
  Status addAny(std::string name, google::protobuf::Any any, std::string resource_version = {});
  // Puts a shared layer under `type_url`'s own resources (declaring the type if needed).
  void setBase(std::string_view type_url, std::shared_ptr<const ResourceSet> base);
  // Moves one type's set out (the type stays declared, empty); for building shared layers.
  ResourceSet release(std::string_view type_url);
  // Adds an already packed resource that other snapshots share (its bytes are not copied).
  Status addShared(std::string name, std::shared_ptr<const google::protobuf::Any> any,
                   std::string resource_version = {});
  // Whole-type setters (replace the type's set): name → message / Any. Every value's type must
  // match `type_url`.
  Status set(std::string_view type_url, std::string version,
             const std::map<std::string, std::shared_ptr<const google::protobuf::Message>>& items);
  Status set(std::string_view type_url, std::string version,
             const std::map<std::string, google::protobuf::Any>& items);

  // nullptr when the type was never declared.
  const ResourceSet* find(std::string_view type_url) const;
  const std::map<std::string, ResourceSet, std::less<>>& types() const { return types_; }
  // True when both declare the same types with the same effective versions and content
  // fingerprints: a proxy given `b` after `a` would be sent nothing new.
  static bool sameContent(const Snapshot& a, const Snapshot& b);

 private:
  Status put(std::string_view type_url, std::string name,
             std::shared_ptr<const google::protobuf::Any> any, std::string resource_version);

  std::map<std::string, ResourceSet, std::less<>> types_;
};

// Thread-safe map node id → shared_ptr<const Snapshot>.
//
// Watches: `watch(node, fn)` registers `fn` to be called after every setSnapshot/clearSnapshot
// for that node. `fn` runs on the thread that called setSnapshot, with no cache lock held (it may
// call getSnapshot). Calls for one node may overlap when two threads set snapshots concurrently;
// a watcher must therefore read the latest snapshot with getSnapshot rather than expect one call
// per snapshot (that is the "last snapshot wins" merge). cancelWatch does not wait for calls in
// flight: a watcher keeps its own state alive (e.g. captures a weak_ptr).
class SnapshotCache {
 public:
  using WatchId = uint64_t;

  void setSnapshot(const std::string& node_id, Snapshot snapshot);
  void setSnapshot(const std::string& node_id, std::shared_ptr<const Snapshot> snapshot);
  void clearSnapshot(const std::string& node_id);
  std::shared_ptr<const Snapshot> getSnapshot(const std::string& node_id) const;
  std::vector<std::string> nodeIds() const;

  WatchId watch(const std::string& node_id, std::function<void()> fn);
  void cancelWatch(WatchId id);

 private:
  void notify(const std::string& node_id);

  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<const Snapshot>> snapshots_;
  struct Watch {
    std::string node_id;
    std::shared_ptr<const std::function<void()>> fn;
  };
  std::map<WatchId, Watch> watches_;
  std::multimap<std::string, WatchId> watches_by_node_;
  WatchId next_watch_ = 1;
};

}  // namespace mast::control::xds
