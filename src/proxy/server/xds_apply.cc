// Server: dynamic configuration from the control plane (ADS, state of the world).
//
// Main thread only. Each response is validated as a whole before anything changes: one invalid
// resource rejects the update (NACK with the resource name and field path) and the last good
// configuration keeps serving. Accepted clusters warm (EDS endpoints) before they replace the
// old ones on workers; listener updates with the same address swap the config for new
// connections and drain the old ones; RDS tables reach each worker by a post to its loop.
#include <google/protobuf/util/message_differencer.h>

#include <set>

#include "base/logging.h"
#include "envoy/config/bootstrap/v3/bootstrap.pb.h"
#include "envoy/config/cluster/v3/cluster.pb.h"
#include "envoy/config/endpoint/v3/endpoint.pb.h"
#include "envoy/config/listener/v3/listener.pb.h"
#include "envoy/config/route/v3/route.pb.h"
#include "proxy/filters/registry.h"
#include "proxy/router/route_table.h"
#include "proxy/server/active_listener.h"
#include "proxy/server/cluster_manager.h"
#include "proxy/server/hcm_config.h"
#include "proxy/server/hcm_stats.h"
#include "proxy/server/listener_config.h"
#include "proxy/server/server.h"
#include "proxy/server/worker.h"
#include "proxy/upstream/upstream.h"
#include "proxy/xds/ads_client.h"

namespace mast::proxy::server {

namespace {

std::string serialized(const google::protobuf::Message& m) {
  std::string out;
  google::protobuf::io::StringOutputStream sos(&out);
  google::protobuf::io::CodedOutputStream cos(&sos);
  cos.SetSerializationDeterministic(true);
  m.SerializeToCodedStream(&cos);
  return out;
}

// Where the ADS server is: an envoy_grpc cluster's first static endpoint, or a google_grpc
// target URI.
// `static_clusters`: serialized, as Server keeps them (see staticClusterProtos()).
Result<std::string> adsTarget(const envoy::config::bootstrap::v3::Bootstrap& b,
                              const std::vector<std::string>& static_clusters) {
  const auto& ads = b.dynamic_resources().ads_config();
  if (ads.grpc_services_size() == 0) {
    return Error{"dynamic_resources.ads_config.grpc_services: at least one service is required"};
  }
  const auto& gs = ads.grpc_services(0);
  if (gs.has_google_grpc()) return gs.google_grpc().target_uri();
  const std::string& name = gs.envoy_grpc().cluster_name();
  for (const auto& bytes : static_clusters) {
    envoy::config::cluster::v3::Cluster c;
    if (!c.ParseFromString(bytes) || c.name() != name) continue;
    for (const auto& le : c.load_assignment().endpoints()) {
      for (const auto& ep : le.lb_endpoints()) {
        const auto& sa = ep.endpoint().address().socket_address();
        std::string host = sa.address();
        if (host.find(':') != std::string::npos) host = "[" + host + "]";
        return host + ":" + std::to_string(sa.port_value());
      }
    }
    return Error{
        "dynamic_resources.ads_config.grpc_services[0].envoy_grpc.cluster_name: cluster '" + name +
        "' has no endpoint"};
  }
  return Error{
      "dynamic_resources.ads_config.grpc_services[0].envoy_grpc.cluster_name: no static "
      "cluster named '" +
      name + "'"};
}

}  // namespace

Status Server::startXds() {
  if (!bootstrap_->has_dynamic_resources()) return {};
  const auto& dr = bootstrap_->dynamic_resources();
  if (!dr.has_ads_config()) {
    if (dr.has_lds_config() || dr.has_cds_config()) {
      return Error{opts_.config_path +
                   ": dynamic_resources: only ADS is supported (lds_config/cds_config must be "
                   "`ads: {}` with ads_config set)"};
    }
    return {};
  }
  auto target = adsTarget(*bootstrap_, static_cluster_protos_);
  if (!target) return Error{opts_.config_path + ": " + target.error()};
  xds::AdsOptions o;
  o.target = *target;
  o.node = bootstrap_->node();
  o.node.set_user_agent_name("mast-proxy");
  ads_ = std::make_unique<xds::AdsClient>(
      main_loop_, std::move(o),
      [this](const std::string& type, const std::vector<google::protobuf::Any>& res,
             const std::string& version) { return applyXds(type, res, version); });
  updateEdsSubscriptions();
  if (auto s = ads_->start(); !s) return Error{opts_.config_path + ": " + s.error()};
  MAST_LOG(INFO, "xds: ADS to {}", *target);
  // Envoy's initial_fetch_timeout: go live with what arrived after 15 s.
  init_timer_ = std::make_unique<asio::steady_timer>(main_loop_);
  init_timer_->expires_after(std::chrono::seconds(15));
  init_timer_->async_wait([this](std::error_code ec) {
    if (ec || state_ != 3) return;
    MAST_LOG(WARN, "xds: initial fetch timed out; going live with the configuration received");
    state_ = 1;
  });
  return {};
}

const std::vector<upstream::EndpointSpec>* Server::edsEndpoints(
    const std::string& service_name) const {
  auto it = eds_endpoints_.find(service_name);
  return it == eds_endpoints_.end() ? nullptr : &it->second;
}

Status Server::applyXds(const std::string& type_url,
                        const std::vector<google::protobuf::Any>& resources,
                        const std::string& version) {
  if (shutting_down_) return Error{"proxy is shutting down"};
  Status s;
  if (type_url == xds::kClusterType) {
    s = applyClusters(resources, version);
  } else if (type_url == xds::kEndpointType) {
    s = applyEndpoints(resources, version);
  } else if (type_url == xds::kListenerType) {
    s = applyListeners(resources, version);
  } else if (type_url == xds::kRouteType) {
    s = applyRoutes(resources, version);
  } else {
    s = Error{"unsupported type " + type_url};
  }
  if (s) maybeGoLive();
  return s;
}

// === CDS ===

void Server::installCluster(std::shared_ptr<ClusterRuntime> c) {
  std::string name = c->name();
  clusters_[name] = c;
  if (!workers_started_) return;
  auto hosts = c->hosts();
  for (auto& w : workers_) {
    Worker* wp = w.get();
    w->post([wp, c, hosts, name] {
      wp->clusters().add(c);
      if (hosts) wp->clusters().get(name)->setHosts(hosts);
    });
  }
}

Status Server::applyClusters(const std::vector<google::protobuf::Any>& resources,
                             const std::string& version) {
  struct Incoming {
    std::shared_ptr<envoy::config::cluster::v3::Cluster> proto;
    std::shared_ptr<const upstream::ClusterConfig> config;
    PoolSettings pool;
    std::string bytes;
  };
  std::map<std::string, Incoming> incoming;
  std::set<std::string> static_names;
  for (const auto& bytes : static_cluster_protos_) {
    envoy::config::cluster::v3::Cluster c;
    c.ParseFromString(bytes);
    static_names.insert(c.name());
  }
  for (size_t i = 0; i < resources.size(); ++i) {
    auto proto = std::make_shared<envoy::config::cluster::v3::Cluster>();
    if (!resources[i].UnpackTo(proto.get())) {
      return Error{"resources[" + std::to_string(i) + "]: not a Cluster (" +
                   resources[i].type_url() + ")"};
    }
    const std::string& name = proto->name();
    std::string where = "Cluster '" + name + "'";
    if (static_names.count(name)) {
      return Error{where + ": a static cluster of that name exists and cannot be updated by CDS"};
    }
    if (incoming.count(name)) return Error{where + ": duplicate cluster name in the update"};
    auto cfg = upstream::ClusterConfig::create(*proto);
    if (!cfg) return Error{where + ": " + cfg.error()};
    auto ps = poolSettingsFor(**cfg);
    if (!ps) return Error{where + ": " + ps.error()};
    Incoming in{proto, *cfg, *ps, serialized(*proto)};
    incoming.emplace(name, std::move(in));
  }
  auto now = std::chrono::system_clock::now();
  // Removed.
  for (auto it = dynamic_clusters_.begin(); it != dynamic_clusters_.end();) {
    if (incoming.count(it->first)) {
      ++it;
      continue;
    }
    std::string name = it->first;
    MAST_LOG(INFO, "cds: removing cluster {}", name);
    clusters_.erase(name);
    warming_clusters_.erase(name);
    for (auto& w : workers_) {
      Worker* wp = w.get();
      w->post([wp, name] { wp->clusters().remove(name); });
    }
    it = dynamic_clusters_.erase(it);
  }
  // Added or changed.
  for (auto& [name, in] : incoming) {
    auto& rec = dynamic_clusters_[name];
    if (!rec.proto_bytes.empty() && rec.proto_bytes == in.bytes) continue;  // unchanged
    rec.version_info = version;
    rec.last_updated = now;
    rec.proto_bytes = in.bytes;  // no parsed copy: see dynamicClusters()
    auto stats = std::make_shared<ClusterStats>(*stats_, name);
    auto runtime = std::make_shared<ClusterRuntime>(*this, in.config, stats, in.pool);
    warming_clusters_[name] = runtime;
    std::weak_ptr<ClusterRuntime> weak = runtime;
    runtime->initialize(main_loop_, [this, weak, name] {
      auto r = weak.lock();
      if (!r) return;
      auto it = warming_clusters_.find(name);
      if (it == warming_clusters_.end() || it->second != r) return;  // superseded meanwhile
      warming_clusters_.erase(it);
      installCluster(r);
      maybeGoLive();
    });
  }
  cds_initialized_ = true;
  updateEdsSubscriptions();
  return {};
}

void Server::updateEdsSubscriptions() {
  if (!ads_) return;
  std::set<std::string> names;
  auto add = [&](const ClusterRuntime& c) {
    if (c.config().type == upstream::DiscoveryType::Eds) names.insert(c.config().eds_service_name);
  };
  for (const auto& [n, c] : clusters_) add(*c);
  for (const auto& [n, c] : warming_clusters_) add(*c);
  ads_->subscribe(xds::kEndpointType, std::move(names));
}

// === EDS ===

Status Server::applyEndpoints(const std::vector<google::protobuf::Any>& resources,
                              const std::string& version) {
  std::map<std::string, std::vector<upstream::EndpointSpec>> parsed;
  for (size_t i = 0; i < resources.size(); ++i) {
    envoy::config::endpoint::v3::ClusterLoadAssignment cla;
    if (!resources[i].UnpackTo(&cla)) {
      return Error{"resources[" + std::to_string(i) + "]: not a ClusterLoadAssignment"};
    }
    auto eps = upstream::parseLoadAssignment(cla, true);
    if (!eps) return Error{"ClusterLoadAssignment '" + cla.cluster_name() + "': " + eps.error()};
    parsed[cla.cluster_name()] = std::move(*eps);
  }
  for (auto& [name, eps] : parsed) {
    eds_endpoints_[name] = eps;
    auto apply = [&](const std::map<std::string, std::shared_ptr<ClusterRuntime>>& m) {
      // Copy: setEndpoints may complete warming, which edits warming_clusters_.
      std::vector<std::shared_ptr<ClusterRuntime>> targets;
      for (const auto& [n, c] : m) {
        if (c->config().type == upstream::DiscoveryType::Eds &&
            c->config().eds_service_name == name) {
          targets.push_back(c);
        }
      }
      for (auto& c : targets) c->setEndpoints(eps);
    };
    apply(clusters_);
    apply(warming_clusters_);
  }
  return {};
}

// === LDS ===

Status Server::applyListeners(const std::vector<google::protobuf::Any>& resources,
                              const std::string& version) {
  struct Incoming {
    std::shared_ptr<envoy::config::listener::v3::Listener> proto;
    std::shared_ptr<const ListenerConfig> config;
    std::string bytes;
  };
  std::set<std::string> static_names;
  for (const auto& l : bootstrap_->static_resources().listeners()) static_names.insert(l.name());
  std::map<std::string, Incoming> incoming;
  std::vector<std::string> order;
  for (size_t i = 0; i < resources.size(); ++i) {
    auto proto = std::make_shared<envoy::config::listener::v3::Listener>();
    if (!resources[i].UnpackTo(proto.get())) {
      return Error{"resources[" + std::to_string(i) + "]: not a Listener"};
    }
    const std::string& name = proto->name();
    std::string where = "Listener '" + name + "'";
    if (name.empty()) return Error{"resources[" + std::to_string(i) + "]: a listener needs a name"};
    if (static_names.count(name)) return Error{where + ": a static listener of that name exists"};
    if (incoming.count(name)) return Error{where + ": duplicate listener name in the update"};
    std::string bytes = serialized(*proto);
    // Unchanged listeners are not rebuilt (building registers RDS slots and stats).
    std::shared_ptr<const ListenerConfig> cfg;
    for (const auto& e : listeners_) {
      if (e.dynamic && e.config->name == name && e.proto_bytes == bytes) cfg = e.config;
    }
    if (!cfg) {
      auto built = buildListener(*proto, where);
      if (!built) return Error{built.error()};
      cfg = *built;
    }
    incoming[name] = Incoming{proto, cfg, std::move(bytes)};
    order.push_back(name);
  }
  // Removed listeners.
  for (size_t i = listeners_.size(); i-- > 0;) {
    if (listeners_[i].dynamic && !incoming.count(listeners_[i].config->name)) {
      MAST_LOG(INFO, "lds: removing listener {}", listeners_[i].config->name);
      removeListener(i);
    }
  }
  auto now = std::chrono::system_clock::now();
  Status result;
  for (const auto& name : order) {
    auto& in = incoming[name];
    auto it = std::find_if(listeners_.begin(), listeners_.end(),
                           [&](const ListenerEntry& e) { return e.config->name == name; });
    if (it != listeners_.end()) {
      if (it->proto_bytes == in.bytes) continue;
      if (it->config->address == in.config->address &&
          it->config->bind_to_port == in.config->bind_to_port) {
        // Same socket: swap the config on every worker; old connections drain.
        it->config = in.config;
        it->proto = in.proto;
        it->proto_bytes = in.bytes;
        it->version_info = version;
        it->last_updated = now;
        for (size_t i = 0; i < workers_.size(); ++i) {
          auto l = it->per_worker[i];
          auto cfg = in.config;
          workers_[i]->post([l, cfg] { l->updateConfig(cfg); });
        }
        MAST_LOG(INFO, "lds: updated listener {}", name);
        continue;
      }
      removeListener(static_cast<size_t>(it - listeners_.begin()));
    }
    ListenerEntry e;
    e.config = in.config;
    e.dynamic = true;
    e.proto = in.proto;
    e.proto_bytes = in.bytes;
    e.version_info = version;
    e.last_updated = now;
    if (auto s = installListener(std::move(e)); !s) {
      // A bind failure is reported, the other listeners stay applied (as Envoy does).
      MAST_LOG(WARN, "lds: {}", s.error());
      if (result) result = s;
      continue;
    }
    MAST_LOG(INFO, "lds: added listener {} on {}", name, net::toString(listeners_.back().endpoint));
  }
  lds_initialized_ = true;
  updateRdsSubscriptions();
  return result;
}

void Server::updateRdsSubscriptions() {
  std::set<std::string> names;
  for (auto it = rds_slots_.begin(); it != rds_slots_.end();) {
    std::erase_if(it->second, [](const std::weak_ptr<RdsSlot>& w) { return w.expired(); });
    if (it->second.empty()) {
      it = rds_slots_.erase(it);
      continue;
    }
    names.insert(it->first);
    ++it;
  }
  if (ads_) ads_->subscribe(xds::kRouteType, std::move(names));
}

// === RDS ===

Status Server::applyRoutes(const std::vector<google::protobuf::Any>& resources,
                           const std::string& version) {
  std::map<std::string, std::pair<std::shared_ptr<envoy::config::route::v3::RouteConfiguration>,
                                  std::shared_ptr<const router::RouteTable>>>
      built;
  // Per-route configs (fault, local_ratelimit, cors); other filters' configs are ignored.
  filters::FilterContext fctx{stats_.get(), ""};
  router::PerFilterConfigFactory pf = [fctx](const std::string& name,
                                             const google::protobuf::Any& any) {
    return filters::createPerRouteConfig(name, any, "", fctx);
  };
  for (size_t i = 0; i < resources.size(); ++i) {
    auto proto = std::make_shared<envoy::config::route::v3::RouteConfiguration>();
    if (!resources[i].UnpackTo(proto.get())) {
      return Error{"resources[" + std::to_string(i) + "]: not a RouteConfiguration"};
    }
    auto table = router::RouteTable::create(*proto, pf);
    if (!table) return Error{"RouteConfiguration '" + proto->name() + "': " + table.error()};
    built[proto->name()] = {proto, *table};
  }
  auto now = std::chrono::system_clock::now();
  for (auto& [name, pt] : built) {
    auto& rec = route_records_[name];
    std::string bytes = serialized(*pt.first);
    if (rec.proto && rec.proto_bytes == bytes) continue;
    rec.version_info = version;
    rec.last_updated = now;
    rec.proto = pt.first;
    rec.proto_bytes = std::move(bytes);
    route_tables_[name] = pt.second;
    auto slots = rds_slots_.find(name);
    if (slots == rds_slots_.end()) continue;
    for (const auto& weak : slots->second) {
      auto slot = weak.lock();
      if (!slot) continue;
      for (size_t i = 0; i < workers_.size(); ++i) {
        if (!workers_started_) {
          slot->per_worker[i] = pt.second;
          continue;
        }
        auto table = pt.second;
        workers_[i]->post([slot, i, table] { slot->per_worker[i] = table; });
      }
    }
  }
  return {};
}

}  // namespace mast::proxy::server
