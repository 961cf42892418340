#pragma once
// Test helpers shared by the ADS tests: an xDS client stream with bounded waits (a reader thread
// feeding a queue, so "no response within N ms" can be asserted), and Envoy resource builders.
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "envoy/config/cluster/v3/cluster.pb.h"
#include "envoy/config/endpoint/v3/endpoint.pb.h"
#include "envoy/config/listener/v3/listener.pb.h"
#include "envoy/config/route/v3/route.pb.h"
#include "envoy/extensions/filters/http/router/v3/router.pb.h"
#include "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.pb.h"
#include "envoy/service/discovery/v3/ads.grpc.pb.h"

namespace mast::control::xds::testing {

using namespace std::chrono_literals;
namespace discovery = envoy::service::discovery::v3;

// One ADS stream (SotW or delta) from a real gRPC client over loopback. Every wait is bounded;
// the call itself has a deadline so a broken server cannot hang a test.
template <class Req, class Resp>
class StreamClient {
 public:
  StreamClient(int port, bool delta, std::chrono::seconds deadline = 30s) {
    channel_ = grpc::CreateChannel("127.0.0.1:" + std::to_string(port),
                                   grpc::InsecureChannelCredentials());
    stub_ = discovery::AggregatedDiscoveryService::NewStub(channel_);
    ctx_.set_deadline(std::chrono::system_clock::now() + deadline);
    if constexpr (std::is_same_v<Req, discovery::DeltaDiscoveryRequest>) {
      stream_ = stub_->DeltaAggregatedResources(&ctx_);
    } else {
      stream_ = stub_->StreamAggregatedResources(&ctx_);
    }
    (void)delta;
    reader_ = std::thread([this] {
      Resp r;
      while (stream_->Read(&r)) {
        std::lock_guard lock(mu_);
        queue_.push_back(std::move(r));
        cv_.notify_all();
        r = Resp();
      }
      std::lock_guard lock(mu_);
      ended_ = true;
      cv_.notify_all();
    });
  }
  ~StreamClient() { close(); }

  bool send(const Req& req) { return stream_->Write(req); }

  // Next response, or nullopt after `timeout` (or when the stream ended).
  std::optional<Resp> read(std::chrono::milliseconds timeout = 5000ms) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, timeout, [&] { return !queue_.empty() || ended_; });
    if (queue_.empty()) return std::nullopt;
    Resp r = std::move(queue_.front());
    queue_.pop_front();
    return r;
  }

  // Waits for the server to end the stream; returns its status (bounded by `timeout`).
  std::optional<grpc::Status> waitEnd(std::chrono::milliseconds timeout = 5000ms) {
    {
      std::unique_lock lock(mu_);
      if (!cv_.wait_for(lock, timeout, [&] { return ended_; })) return std::nullopt;
    }
    if (reader_.joinable()) reader_.join();
    if (!status_) status_ = stream_->Finish();
    return status_;
  }

  // Client-side close: cancels the call (like a proxy going away).
  void close() {
    if (closed_) return;
    closed_ = true;
    ctx_.TryCancel();
    if (reader_.joinable()) reader_.join();
    if (!status_) status_ = stream_->Finish();
  }

 private:
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<discovery::AggregatedDiscoveryService::Stub> stub_;
  grpc::ClientContext ctx_;
  std::unique_ptr<grpc::ClientReaderWriter<Req, Resp>> stream_;
  std::thread reader_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Resp> queue_;
  bool ended_ = false;
  bool closed_ = false;
  std::optional<grpc::Status> status_;
};

using SotwClient = StreamClient<discovery::DiscoveryRequest, discovery::DiscoveryResponse>;
using DeltaClient =
    StreamClient<discovery::DeltaDiscoveryRequest, discovery::DeltaDiscoveryResponse>;

inline envoy::config::core::v3::Node makeNode(const std::string& id) {
  envoy::config::core::v3::Node node;
  node.set_id(id);
  node.set_cluster("test");
  return node;
}

inline envoy::config::cluster::v3::Cluster makeEdsCluster(const std::string& name) {
  envoy::config::cluster::v3::Cluster c;
  c.set_name(name);
  c.set_type(envoy::config::cluster::v3::Cluster::EDS);
  c.mutable_eds_cluster_config()->mutable_eds_config()->mutable_ads();
  c.set_lb_policy(envoy::config::cluster::v3::Cluster::ROUND_ROBIN);
  return c;
}

inline envoy::config::endpoint::v3::ClusterLoadAssignment makeCla(const std::string& cluster,
                                                                  const std::string& ip, int port) {
  envoy::config::endpoint::v3::ClusterLoadAssignment cla;
  cla.set_cluster_name(cluster);
  auto* locality = cla.add_endpoints();
  locality->mutable_locality()->set_region("local");
  locality->mutable_load_balancing_weight()->set_value(1);  // gRPC ignores unweighted ones
  auto* addr =
      locality->add_lb_endpoints()->mutable_endpoint()->mutable_address()->mutable_socket_address();
  addr->set_address(ip);
  addr->set_port_value(port);
  return cla;
}

// A gRPC-style "API listener": HttpConnectionManager with RDS over ADS and the router filter.
inline envoy::config::listener::v3::Listener makeApiListener(const std::string& name,
                                                             const std::string& route_name) {
  envoy::extensions::filters::network::http_connection_manager::v3::HttpConnectionManager hcm;
  hcm.set_stat_prefix(name);
  auto* rds = hcm.mutable_rds();
  rds->set_route_config_name(route_name);
  rds->mutable_config_source()->mutable_ads();
  rds->mutable_config_source()->set_resource_api_version(envoy::config::core::v3::V3);
  auto* router = hcm.add_http_filters();
  router->set_name("envoy.filters.http.router");
  router->mutable_typed_config()->PackFrom(envoy::extensions::filters::http::router::v3::Router());
  envoy::config::listener::v3::Listener l;
  l.set_name(name);
  l.mutable_api_listener()->mutable_api_listener()->PackFrom(hcm);
  return l;
}

inline envoy::config::route::v3::RouteConfiguration makeRoute(const std::string& name,
                                                              const std::string& cluster) {
  envoy::config::route::v3::RouteConfiguration rc;
  rc.set_name(name);
  auto* vh = rc.add_virtual_hosts();
  vh->set_name("all");
  vh->add_domains("*");
  auto* route = vh->add_routes();
  route->mutable_match()->set_prefix("");
  route->mutable_route()->set_cluster(cluster);
  return rc;
}

}  // namespace mast::control::xds::testing
