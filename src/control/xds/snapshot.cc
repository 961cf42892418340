#include "control/xds/snapshot.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>

#include <cstdio>

#include "base/hash.h"

namespace mast::control::xds {
namespace {

std::string contentVersion(const google::protobuf::Any& any) {
  uint64_t h = xxHash64(any.value(), xxHash64(any.type_url()));
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

void appendVarint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

size_t varintSize(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}

}  // namespace

std::shared_ptr<const std::string> encodeResponseEntry(const google::protobuf::Any& any) {
  // Field keys: (number << 3) | 2 (length-delimited). Empty fields are left out, as protobuf's
  // own serializer does for proto3 scalars.
  constexpr char kAnyTypeUrl = (1 << 3) | 2;
  constexpr char kAnyValue = (2 << 3) | 2;
  constexpr char kResponseResources = (2 << 3) | 2;
  const std::string& type_url = any.type_url();
  const std::string& value = any.value();
  size_t inner = 0;
  if (!type_url.empty()) inner += 1 + varintSize(type_url.size()) + type_url.size();
  if (!value.empty()) inner += 1 + varintSize(value.size()) + value.size();
  auto out = std::make_shared<std::string>();
  out->reserve(1 + varintSize(inner) + inner);
  out->push_back(kResponseResources);
  appendVarint(*out, inner);
  if (!type_url.empty()) {
    out->push_back(kAnyTypeUrl);
    appendVarint(*out, type_url.size());
    out->append(type_url);
  }
  if (!value.empty()) {
    out->push_back(kAnyValue);
    appendVarint(*out, value.size());
    out->append(value);
  }
  return out;
}

std::string ResourceSet::effectiveVersion() const {
  if (!version.empty()) return version;
  uint64_t h = 0;
  forEach([&h](const Resource& r) { h = xxHash64(r.version, xxHash64(r.name, h)); });
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

const Resource* ResourceSet::find(std::string_view name) const {
  if (auto it = resources.find(name); it != resources.end()) return &it->second;
  if (base) {
    if (auto it = base->resources.find(name); it != base->resources.end()) return &it->second;
  }
  return nullptr;
}

void ResourceSet::insert(const Resource& r) {
  if (auto it = resources.find(r.name); it != resources.end()) {
    content_sum -= it->second.entry_hash;
    it->second = r;
  } else {
    resources.emplace(r.name, r);
  }
  content_sum += r.entry_hash;
}

void ResourceSet::erase(std::string_view name) {
  auto it = resources.find(name);
  if (it == resources.end()) return;
  content_sum -= it->second.entry_hash;
  resources.erase(it);
}

uint64_t ResourceSet::fingerprint() const {
  return base ? xxHash64(std::string_view(reinterpret_cast<const char*>(&content_sum),
                                          sizeof content_sum),
                         base->fingerprint())
              : content_sum;
}

size_t ResourceSet::size() const {
  if (!base) return resources.size();
  size_t n = base->resources.size();
  for (const auto& [name, r] : resources) n += base->resources.count(name) ? 0 : 1;
  return n;
}

std::string resourceName(const google::protobuf::Message& msg) {
  const auto* desc = msg.GetDescriptor();
  for (const char* field : {"name", "cluster_name"}) {
    const auto* f = desc->FindFieldByName(field);
    if (f != nullptr && !f->is_repeated() &&
        f->type() == google::protobuf::FieldDescriptor::TYPE_STRING) {
      return msg.GetReflection()->GetString(msg, f);
    }
  }
  return {};
}

std::string typeUrlOf(const google::protobuf::Message& msg) {
  return "type.googleapis.com/" + msg.GetDescriptor()->full_name();
}

std::shared_ptr<const google::protobuf::Any> packDeterministic(
    const google::protobuf::Message& msg) {
  auto any = std::make_shared<google::protobuf::Any>();
  any->set_type_url(typeUrlOf(msg));
  std::string* bytes = any->mutable_value();
  {
    google::protobuf::io::StringOutputStream sos(bytes);
    google::protobuf::io::CodedOutputStream cos(&sos);
    cos.SetSerializationDeterministic(true);
    msg.SerializeToCodedStream(&cos);
  }
  return any;
}

void Snapshot::setVersion(std::string_view type_url, std::string version) {
  auto it = types_.find(type_url);
  if (it == types_.end()) it = types_.emplace(std::string(type_url), ResourceSet{}).first;
  it->second.version = std::move(version);
}

void Snapshot::setBase(std::string_view type_url, std::shared_ptr<const ResourceSet> base) {
  auto it = types_.find(type_url);
  if (it == types_.end()) it = types_.emplace(std::string(type_url), ResourceSet{}).first;
  it->second.base = std::move(base);
}

ResourceSet Snapshot::release(std::string_view type_url) {
  auto it = types_.find(type_url);
  if (it == types_.end()) return {};
  ResourceSet out = std::move(it->second);
  it->second = ResourceSet{};
  return out;
}

bool Snapshot::sameContent(const Snapshot& a, const Snapshot& b) {
  if (a.types_.size() != b.types_.size()) return false;
  for (auto i = a.types_.begin(), j = b.types_.begin(); i != a.types_.end(); ++i, ++j) {
    if (i->first != j->first || i->second.fingerprint() != j->second.fingerprint() ||
        i->second.effectiveVersion() != j->second.effectiveVersion()) {
      return false;
    }
  }
  return true;
}

Status Snapshot::put(std::string_view type_url, std::string name,
                     std::shared_ptr<const google::protobuf::Any> any,
                     std::string resource_version) {
  if (name.empty()) return Error{"resource of type " + std::string(type_url) + " has no name"};
  if (any->type_url() != type_url) {
    return Error{"resource " + name + " has type " + any->type_url() + ", expected " +
                 std::string(type_url)};
  }
  if (resource_version.empty()) resource_version = contentVersion(*any);
  auto it = types_.find(type_url);
  if (it == types_.end()) it = types_.emplace(std::string(type_url), ResourceSet{}).first;
  ResourceSet& set = it->second;
  auto entryHash = [](const std::string& n, const std::string& v) {
    return xxHash64(v, xxHash64(n));
  };
  const uint64_t entry = entryHash(name, resource_version);
  set.content_sum += entry;
  if (auto old = set.resources.find(name); old != set.resources.end()) {
    set.content_sum -= old->second.entry_hash;
  }
  auto wire = encodeResponseEntry(*any);
  const uint64_t name_hash = xxHash64(name);
  Resource r{name, std::move(resource_version), std::move(any), std::move(wire), name_hash, entry};
  set.resources.insert_or_assign(std::move(name), std::move(r));
  return {};
}

Status Snapshot::add(const google::protobuf::Message& msg, std::string resource_version) {
  return put(typeUrlOf(msg), resourceName(msg), packDeterministic(msg),
             std::move(resource_version));
}

Status Snapshot::addAny(std::string name, google::protobuf::Any any, std::string resource_version) {
  std::string type_url = any.type_url();
  return put(type_url, std::move(name),
             std::make_shared<const google::protobuf::Any>(std::move(any)),
             std::move(resource_version));
}

Status Snapshot::addShared(std::string name, std::shared_ptr<const google::protobuf::Any> any,
                           std::string resource_version) {
  if (!any) return Error{"resource " + name + " is null"};
  std::string type_url = any->type_url();
  return put(type_url, std::move(name), std::move(any), std::move(resource_version));
}

Status Snapshot::set(
    std::string_view type_url, std::string version,
    const std::map<std::string, std::shared_ptr<const google::protobuf::Message>>& items) {
  types_.erase(std::string(type_url));
  setVersion(type_url, std::move(version));
  for (const auto& [name, msg] : items) {
    if (!msg) return Error{"resource " + name + " is null"};
    if (auto s = put(type_url, name, packDeterministic(*msg), {}); !s) return s;
  }
  return {};
}

Status Snapshot::set(std::string_view type_url, std::string version,
                     const std::map<std::string, google::protobuf::Any>& items) {
  types_.erase(std::string(type_url));
  setVersion(type_url, std::move(version));
  for (const auto& [name, any] : items) {
    if (auto s = put(type_url, name, std::make_shared<const google::protobuf::Any>(any), {}); !s) {
      return s;
    }
  }
  return {};
}

const ResourceSet* Snapshot::find(std::string_view type_url) const {
  auto it = types_.find(type_url);
  return it == types_.end() ? nullptr : &it->second;
}

void SnapshotCache::setSnapshot(const std::string& node_id, Snapshot snapshot) {
  setSnapshot(node_id, std::make_shared<const Snapshot>(std::move(snapshot)));
}

void SnapshotCache::setSnapshot(const std::string& node_id,
                                std::shared_ptr<const Snapshot> snapshot) {
  {
    std::lock_guard lock(mu_);
    snapshots_[node_id] = std::move(snapshot);
  }
  notify(node_id);
}

void SnapshotCache::clearSnapshot(const std::string& node_id) {
  {
    std::lock_guard lock(mu_);
    if (snapshots_.erase(node_id) == 0) return;
  }
  notify(node_id);
}

std::shared_ptr<const Snapshot> SnapshotCache::getSnapshot(const std::string& node_id) const {
  std::lock_guard lock(mu_);
  auto it = snapshots_.find(node_id);
  return it == snapshots_.end() ? nullptr : it->second;
}

std::vector<std::string> SnapshotCache::nodeIds() const {
  std::lock_guard lock(mu_);
  std::vector<std::string> out;
  out.reserve(snapshots_.size());
  for (const auto& [id, s] : snapshots_) out.push_back(id);
  return out;
}

SnapshotCache::WatchId SnapshotCache::watch(const std::string& node_id, std::function<void()> fn) {
  std::lock_guard lock(mu_);
  WatchId id = next_watch_++;
  watches_.emplace(id,
                   Watch{node_id, std::make_shared<const std::function<void()>>(std::move(fn))});
  watches_by_node_.emplace(node_id, id);
  return id;
}

void SnapshotCache::cancelWatch(WatchId id) {
  std::lock_guard lock(mu_);
  auto it = watches_.find(id);
  if (it == watches_.end()) return;
  auto [b, e] = watches_by_node_.equal_range(it->second.node_id);
  for (auto i = b; i != e; ++i) {
    if (i->second == id) {
      watches_by_node_.erase(i);
      break;
    }
  }
  watches_.erase(it);
}

void SnapshotCache::notify(const std::string& node_id) {
  // Copy the callbacks out so they run without the lock (they call getSnapshot, and a stream's
  // push path must never be ordered inside the cache lock).
  std::vector<std::shared_ptr<const std::function<void()>>> fns;
  {
    std::lock_guard lock(mu_);
    auto [b, e] = watches_by_node_.equal_range(node_id);
    for (auto i = b; i != e; ++i) fns.push_back(watches_.at(i->second).fn);
  }
  for (const auto& fn : fns) (*fn)();
}

}  // namespace mast::control::xds
