#include "proxy/server/admin_handler.h"

#include <google/protobuf/util/json_util.h>
#include <malloc.h>

#include "base/logging.h"
#include "envoy/admin/v3/config_dump.pb.h"
#include "envoy/admin/v3/config_dump_shared.pb.h"
#include "envoy/config/bootstrap/v3/bootstrap.pb.h"
#include "envoy/config/cluster/v3/cluster.pb.h"
#include "envoy/config/listener/v3/listener.pb.h"
#include "envoy/config/route/v3/route.pb.h"
#include "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.pb.h"
#include "proxy/server/cluster_manager.h"
#include "proxy/server/hcm_stats.h"
#include "proxy/server/listener_config.h"
#include "proxy/server/server.h"
#include "proxy/upstream/upstream.h"
#include "proxy/xds/ads_client.h"
#include "stats/store.h"

namespace mast::proxy::server {

namespace {

constexpr const char* kVersion = "mast-proxy/0.1.0/Clean/RELEASE/OpenSSL";

nlohmann::json toJson(const google::protobuf::Message& m) {
  std::string out;
  google::protobuf::util::JsonPrintOptions o;
  o.preserve_proto_field_names = true;
  (void)google::protobuf::util::MessageToJsonString(m, &out, o);
  return nlohmann::json::parse(out);
}

void setTimestamp(google::protobuf::Timestamp* ts, std::chrono::system_clock::time_point t) {
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
  ts->set_seconds(ns / 1000000000);
  ts->set_nanos(static_cast<int32_t>(ns % 1000000000));
}

nlohmann::json socketAddress(const net::Endpoint& ep) {
  return {{"socket_address", {{"address", net::ipString(ep)}, {"port_value", ep.port()}}}};
}

}  // namespace

std::string AdminHandler::statsText(const std::string& f, bool u) {
  return stats::renderText(server_.statsStore(), f, u);
}
std::string AdminHandler::statsJson(const std::string& f, bool u) {
  return stats::renderJson(server_.statsStore(), f, u);
}
std::string AdminHandler::statsPrometheus(const std::string& f, bool u) {
  return stats::renderPrometheus(server_.statsStore(), f, u);
}
void AdminHandler::resetCounters() { server_.statsStore().resetCounters(); }

std::string AdminHandler::clustersText() {
  std::string out;
  for (const auto& [name, c] : server_.clusters()) {
    const auto& t = c->config().thresholds;
    std::string p = name + "::";
    out += p + "observability_name::" + name + "\n";
    out += p + "default_priority::max_connections::" + std::to_string(t.max_connections) + "\n";
    out += p + "default_priority::max_pending_requests::" + std::to_string(t.max_pending_requests) +
           "\n";
    out += p + "default_priority::max_requests::" + std::to_string(t.max_requests) + "\n";
    out += p + "default_priority::max_retries::" + std::to_string(t.max_retries) + "\n";
    // Envoy: true for clusters that came over CDS, false for the bootstrap's static ones.
    out +=
        p + "added_via_api::" + (server_.dynamicClusters().count(name) ? "true" : "false") + "\n";
    for (const auto& h : *c->hosts()) {
      std::string hp = p + h->label + "::";
      out += hp + "hostname::" + h->hostname + "\n";
      std::string flags;
      if (h->failed_active_hc) flags += "/failed_active_hc";
      if (h->outlier_ejected) flags += "/failed_outlier_check";
      if (h->eds_unhealthy) flags += "/failed_eds_health";
      out += hp + "health_flags::" + (flags.empty() ? "healthy" : flags) + "\n";
      out += hp + "weight::" + std::to_string(h->weight) + "\n";
      out += hp + "rq_active::" + std::to_string(h->active_requests.load()) + "\n";
      out += hp + "rq_total::" + std::to_string(h->rq_total.load()) + "\n";
      out += hp + "rq_success::" + std::to_string(h->rq_success.load()) + "\n";
      out += hp + "rq_error::" + std::to_string(h->rq_error.load()) + "\n";
      out += hp + "priority::" + std::to_string(h->priority) + "\n";
    }
  }
  return out;
}

nlohmann::json AdminHandler::clustersJson() {
  nlohmann::json statuses = nlohmann::json::array();
  for (const auto& [name, c] : server_.clusters()) {
    nlohmann::json hosts = nlohmann::json::array();
    for (const auto& h : *c->hosts()) {
      nlohmann::json health = {{"eds_health_status", h->eds_unhealthy ? "UNHEALTHY" : "HEALTHY"}};
      if (h->failed_active_hc) health["failed_active_health_check"] = true;
      if (h->outlier_ejected) health["failed_outlier_check"] = true;
      hosts.push_back({{"address", socketAddress(h->address)},
                       {"hostname", h->hostname},
                       {"health_status", health},
                       {"weight", h->weight},
                       {"priority", h->priority}});
    }
    nlohmann::json status = {
        {"name", name}, {"observability_name", name}, {"host_statuses", hosts}};
    if (server_.dynamicClusters().count(name)) status["added_via_api"] = true;
    statuses.push_back(std::move(status));
  }
  return {{"cluster_statuses", statuses}};
}

nlohmann::json AdminHandler::configDump(const admin::ConfigDumpQuery& q) {
  namespace av3 = envoy::admin::v3;
  const auto& b = server_.bootstrap();
  auto now = server_.startTime();
  av3::BootstrapConfigDump bd;
  *bd.mutable_bootstrap() = b;
  setTimestamp(bd.mutable_last_updated(), now);
  av3::ClustersConfigDump cd;
  // The server keeps static clusters serialized only: parse them back into the bootstrap's dump,
  // and pack the bytes as they are into the clusters' dump.
  for (const auto& bytes : server_.staticClusterProtos()) {
    bd.mutable_bootstrap()->mutable_static_resources()->add_clusters()->ParseFromString(bytes);
    auto* sc = cd.add_static_clusters();
    sc->mutable_cluster()->set_type_url(xds::kClusterType);
    sc->mutable_cluster()->set_value(bytes);
    setTimestamp(sc->mutable_last_updated(), now);
  }
  av3::ListenersConfigDump ld;
  av3::RoutesConfigDump rd;
  for (const auto& l : b.static_resources().listeners()) {
    auto* sl = ld.add_static_listeners();
    sl->mutable_listener()->PackFrom(l);
    setTimestamp(sl->mutable_last_updated(), now);
    for (const auto& fc : l.filter_chains()) {
      for (const auto& f : fc.filters()) {
        envoy::extensions::filters::network::http_connection_manager::v3::HttpConnectionManager h;
        if (f.typed_config().UnpackTo(&h) && h.has_route_config()) {
          auto* sr = rd.add_static_route_configs();
          sr->mutable_route_config()->PackFrom(h.route_config());
          setTimestamp(sr->mutable_last_updated(), now);
        }
      }
    }
  }
  // Dynamic resources (xDS), with the version and time each was accepted, as Envoy shows them.
  for (const auto& [name, rec] : server_.dynamicClusters()) {
    auto* dc = cd.add_dynamic_active_clusters();
    dc->set_version_info(rec.version_info);
    dc->mutable_cluster()->set_type_url(xds::kClusterType);
    dc->mutable_cluster()->set_value(rec.proto_bytes);
    setTimestamp(dc->mutable_last_updated(), rec.last_updated);
  }
  for (const auto& l : server_.listeners()) {
    if (!l.dynamic) continue;
    auto* dl = ld.add_dynamic_listeners();
    dl->set_name(l.config->name);
    auto* as = dl->mutable_active_state();
    as->set_version_info(l.version_info);
    as->mutable_listener()->PackFrom(*l.proto);
    setTimestamp(as->mutable_last_updated(), l.last_updated);
  }
  for (const auto& [name, rec] : server_.dynamicRoutes()) {
    auto* dr = rd.add_dynamic_route_configs();
    dr->set_version_info(rec.version_info);
    dr->mutable_route_config()->PackFrom(*rec.proto);
    setTimestamp(dr->mutable_last_updated(), rec.last_updated);
  }
  if (const auto* ads = server_.adsClient()) {
    for (const auto& [type, st] : ads->state()) {
      if (type == xds::kClusterType) cd.set_version_info(st.accepted_version);
      if (type == xds::kListenerType) ld.set_version_info(st.accepted_version);
    }
  }
  nlohmann::json configs = nlohmann::json::array();
  auto add = [&](const google::protobuf::Message& m) {
    google::protobuf::Any any;
    any.PackFrom(m);
    configs.push_back(toJson(any));
  };
  if (!q.resource.empty()) {
    // ?resource=static_clusters etc.: each element of that field, as Envoy does.
    auto pick = [&](const google::protobuf::Message& dump) {
      nlohmann::json j = toJson(dump);
      if (j.contains(q.resource)) {
        for (auto& e : j[q.resource]) configs.push_back(e);
      }
    };
    pick(cd);
    pick(ld);
    pick(rd);
    return {{"configs", configs}};
  }
  add(bd);
  add(cd);
  add(ld);
  add(rd);
  return {{"configs", configs}};
}

std::string AdminHandler::listenersText() {
  std::string out;
  for (const auto& l : server_.listeners()) {
    out += l.config->name + "::" + net::toString(l.endpoint) + "\n";
  }
  return out;
}

nlohmann::json AdminHandler::listenersJson() {
  nlohmann::json statuses = nlohmann::json::array();
  for (const auto& l : server_.listeners()) {
    statuses.push_back({{"name", l.config->name}, {"local_address", socketAddress(l.endpoint)}});
  }
  return {{"listener_statuses", statuses}};
}

nlohmann::json AdminHandler::serverInfo() {
  auto up = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now() -
                                                             server_.startTime())
                .count();
  const auto& o = server_.options();
  return {{"version", kVersion},
          {"state", serverState()},
          {"hot_restart_version", "disabled"},
          {"uptime_current_epoch", std::to_string(up) + "s"},
          {"uptime_all_epochs", std::to_string(up) + "s"},
          {"node", toJson(server_.bootstrap().node())},
          {"command_line_options",
           {{"config_path", o.config_path},
            {"config_yaml", o.config_yaml},
            {"concurrency", o.concurrency},
            {"log_level", o.log_level},
            {"drain_time", std::to_string(o.drain_time.count()) + "s"},
            {"mode", o.mode == "validate" ? "Validate" : "Serve"},
            {"service_node", o.service_node},
            {"service_cluster", o.service_cluster}}}};
}

std::string AdminHandler::serverState() {
  if (server_.healthCheckFailed()) return "DRAINING";
  return server_.state();
}
void AdminHandler::setHealthCheckFailed(bool f) { server_.setHealthCheckFailed(f); }
bool AdminHandler::healthCheckFailed() { return server_.healthCheckFailed(); }
void AdminHandler::drainListeners() { server_.drainListeners(); }
void AdminHandler::quit() {
  asio::post(server_.mainLoop(), [this] { server_.shutdown(true); });
}
bool AdminHandler::setLogLevel(const std::string& level) { return log::setLevel(level); }
std::string AdminHandler::logLevel() { return std::string(log::levelName()); }
nlohmann::json AdminHandler::memory() {
  struct mallinfo2 mi = mallinfo2();
  return {{"allocated", std::to_string(mi.uordblks + mi.hblkhd)},
          {"heap_size", std::to_string(mi.arena + mi.hblkhd)},
          {"pageheap_unmapped", "0"},
          {"pageheap_free", std::to_string(mi.fordblks)},
          {"total_thread_cache", "0"},
          {"total_physical_bytes", std::to_string(mi.arena + mi.hblkhd)}};
}

}  // namespace mast::proxy::server
