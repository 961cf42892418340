#include "verify.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/dynamic_message.h>
#include <google/protobuf/message.h>
#include <google/protobuf/reflection.h>

#include "base/hash.h"
#include "envoy/config/cluster/v3/cluster.pb.h"
#include "envoy/config/endpoint/v3/endpoint.pb.h"
#include "envoy/config/listener/v3/listener.pb.h"
#include "envoy/config/route/v3/route.pb.h"
#include "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.pb.h"

namespace mast::bench {

namespace pb = google::protobuf;

namespace {

constexpr std::string_view kTypePrefix = "type.googleapis.com/";
constexpr std::string_view kHcm =
    "type.googleapis.com/"
    "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";

// Parses `any` into a fresh message of its type (nullptr + error when the type is unknown or
// the bytes do not parse).
std::unique_ptr<pb::Message> unpack(const pb::Any& any, std::string& error) {
  std::string_view url = any.type_url();
  if (url.substr(0, kTypePrefix.size()) != kTypePrefix) {
    error = "bad type URL " + std::string(url);
    return nullptr;
  }
  std::string full(url.substr(kTypePrefix.size()));
  const auto* desc = pb::DescriptorPool::generated_pool()->FindMessageTypeByName(full);
  if (desc == nullptr) {
    error = "unknown type " + full;
    return nullptr;
  }
  const auto* proto = pb::MessageFactory::generated_factory()->GetPrototype(desc);
  std::unique_ptr<pb::Message> msg(proto->New());
  if (!msg->ParseFromString(any.value())) {
    error = "does not parse as " + full;
    return nullptr;
  }
  return msg;
}

// Walks `msg` and parses every nested Any; false + error on the first failure.
bool verifyNested(const pb::Message& msg, std::string& error, int depth = 0) {
  if (depth > 64) {
    error = "nesting too deep";
    return false;
  }
  const auto* refl = msg.GetReflection();
  std::vector<const pb::FieldDescriptor*> fields;
  refl->ListFields(msg, &fields);
  for (const auto* f : fields) {
    if (f->cpp_type() != pb::FieldDescriptor::CPPTYPE_MESSAGE) continue;
    auto check = [&](const pb::Message& sub) {
      if (sub.GetDescriptor() == pb::Any::descriptor()) {
        const auto& any = static_cast<const pb::Any&>(sub);
        auto inner = unpack(any, error);
        if (!inner) {
          error = f->full_name() + ": " + error;
          return false;
        }
        return verifyNested(*inner, error, depth + 1);
      }
      return verifyNested(sub, error, depth + 1);
    };
    if (f->is_repeated()) {
      int n = refl->FieldSize(msg, f);
      for (int i = 0; i < n; ++i) {
        if (!check(refl->GetRepeatedMessage(msg, f, i))) return false;
      }
    } else if (!check(refl->GetMessage(msg, f))) {
      return false;
    }
  }
  return true;
}

void listenerRefs(const envoy::config::listener::v3::Listener& l, std::vector<std::string>& refs) {
  namespace hcmv3 = envoy::extensions::filters::network::http_connection_manager::v3;
  auto chain = [&](const envoy::config::listener::v3::FilterChain& fc) {
    for (const auto& f : fc.filters()) {
      if (f.typed_config().type_url() != kHcm) continue;
      hcmv3::HttpConnectionManager hcm;
      if (f.typed_config().UnpackTo(&hcm) && hcm.has_rds()) {
        refs.push_back(hcm.rds().route_config_name());
      }
    }
  };
  for (const auto& fc : l.filter_chains()) chain(fc);
  if (l.has_default_filter_chain()) chain(l.default_filter_chain());
}

}  // namespace

std::shared_ptr<const Verified> Verifier::verify(std::string_view type_url,
                                                 std::string_view value) {
  uint64_t key = xxHash64(value, xxHash64(type_url));
  {
    Shard& shard = shards_[key % kShards];
    std::lock_guard lock(shard.mu);
    if (auto it = shard.done.find(key); it != shard.done.end()) return it->second;
  }
  pb::Any any;
  any.set_type_url(std::string(type_url));
  any.set_value(std::string(value));
  return verify(any);
}

std::shared_ptr<const Verified> Verifier::verify(const pb::Any& any) {
  uint64_t key = xxHash64(any.value(), xxHash64(any.type_url()));
  Shard& shard = shards_[key % kShards];
  {
    std::lock_guard lock(shard.mu);
    if (auto it = shard.done.find(key); it != shard.done.end()) return it->second;
  }
  auto v = std::make_shared<Verified>();
  auto msg = unpack(any, v->error);
  if (msg) {
    v->ok = verifyNested(*msg, v->error);
    if (const auto* c = dynamic_cast<const envoy::config::cluster::v3::Cluster*>(msg.get())) {
      v->name = c->name();
      if (c->type() == envoy::config::cluster::v3::Cluster::EDS) {
        v->refs.push_back(c->eds_cluster_config().service_name().empty()
                              ? c->name()
                              : c->eds_cluster_config().service_name());
      }
    } else if (const auto* cla =
                   dynamic_cast<const envoy::config::endpoint::v3::ClusterLoadAssignment*>(
                       msg.get())) {
      v->name = cla->cluster_name();
    } else if (const auto* l =
                   dynamic_cast<const envoy::config::listener::v3::Listener*>(msg.get())) {
      v->name = l->name();
      listenerRefs(*l, v->refs);
    } else if (const auto* r =
                   dynamic_cast<const envoy::config::route::v3::RouteConfiguration*>(msg.get())) {
      v->name = r->name();
    }
  }
  ++parsed_;
  std::lock_guard lock(shard.mu);
  return shard.done.emplace(key, std::move(v)).first->second;
}

}  // namespace mast::bench
