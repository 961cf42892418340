#include "proxy/xds/ads_client.h"

#include <grpcpp/grpcpp.h>

#include <asio/post.hpp>

#include <future>
#include <random>

#include "base/logging.h"
#include "envoy/service/discovery/v3/ads.grpc.pb.h"

namespace mast::proxy::xds {

namespace dv3 = envoy::service::discovery::v3;

struct AdsClient::Stream {
  grpc::ClientContext context;
  std::unique_ptr<grpc::ClientReaderWriter<dv3::DiscoveryRequest, dv3::DiscoveryResponse>> rw;
  std::mutex write_mu;
  bool first = true;  // the node goes on the stream's first request only
  std::atomic<bool> broken{false};
};

AdsClient::AdsClient(asio::io_context& main_loop, AdsOptions options, Handler handler)
    : main_loop_(main_loop), options_(std::move(options)), handler_(std::move(handler)) {
  subscriptions_[kClusterType] = {};
  subscriptions_[kListenerType] = {};
}

AdsClient::~AdsClient() { stop(); }

void AdsClient::start() {
  thread_ = std::thread([this] { run(); });
}

void AdsClient::stop() {
  if (stopping_.exchange(true)) {
    if (thread_.joinable()) thread_.join();
    return;
  }
  {
    std::lock_guard lk(stream_mu_);
    if (stream_) stream_->context.TryCancel();
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void AdsClient::sendRequest(Stream& s, const std::string& type_url,
                            const std::string& error_detail) {
  dv3::DiscoveryRequest req;
  req.set_type_url(type_url);
  if (s.first) {
    *req.mutable_node() = options_.node;
    s.first = false;
  }
  auto& st = state_[type_url];
  req.set_version_info(st.accepted_version);
  req.set_response_nonce(st.last_nonce);
  for (const auto& n : subscriptions_[type_url]) req.add_resource_names(n);
  if (!error_detail.empty()) {
    req.mutable_error_detail()->set_code(3);  // INVALID_ARGUMENT, as Envoy reports rejections
    req.mutable_error_detail()->set_message(error_detail);
  }
  std::lock_guard lk(s.write_mu);
  if (!s.broken && !s.rw->Write(req)) s.broken = true;
}

void AdsClient::subscribe(const std::string& type_url, std::set<std::string> names) {
  auto& cur = subscriptions_[type_url];
  if (cur == names) return;
  cur = std::move(names);
  std::shared_ptr<Stream> s;
  {
    std::lock_guard lk(stream_mu_);
    s = stream_;
  }
  // Not connected: the subscription goes out with the next stream's initial requests.
  if (s && !s->first) sendRequest(*s, type_url, "");
}

void AdsClient::onResponse(std::shared_ptr<Stream> stream, const std::string& type_url,
                           std::vector<google::protobuf::Any> resources, const std::string& version,
                           const std::string& nonce) {
  if (stopping_) return;
  auto& st = state_[type_url];
  st.last_nonce = nonce;
  Status result = handler_(type_url, resources, version);
  if (result) {
    st.accepted_version = version;
    st.error.clear();
    st.last_updated = std::chrono::system_clock::now();
    ++st.updates_accepted;
  } else {
    st.rejected_version = version;
    st.error = result.error();
    ++st.updates_rejected;
    MAST_LOG(WARN, "xds: rejected {} version {}: {}", type_url, version, result.error());
  }
  sendRequest(*stream, type_url, result ? std::string() : result.error());
}

void AdsClient::run() {
  std::mt19937_64 rng{std::random_device{}()};
  auto backoff = options_.initial_backoff;
  while (!stopping_) {
    auto channel = grpc::CreateChannel(options_.target, grpc::InsecureChannelCredentials());
    auto stub = dv3::AggregatedDiscoveryService::NewStub(channel);
    auto stream = std::make_shared<Stream>();
    stream->rw = stub->StreamAggregatedResources(&stream->context);
    {
      std::lock_guard lk(stream_mu_);
      stream_ = stream;
    }
    if (stopping_) stream->context.TryCancel();
    // Initial requests go out from the main loop, which owns the subscription state.
    auto sent = std::make_shared<std::promise<void>>();
    auto sent_future = sent->get_future();
    asio::post(main_loop_, [this, stream, sent] {
      // Nonces belong to a stream: a new stream starts with none (the version carries over, so
      // the server can tell what this proxy already runs).
      for (auto& [type, st] : state_) st.last_nonce.clear();
      for (const char* t : {kClusterType, kEndpointType, kListenerType, kRouteType}) {
        auto it = subscriptions_.find(t);
        if (it == subscriptions_.end()) continue;
        // Named types (EDS, RDS): an empty name list is an unsubscribe, not a wildcard.
        bool wildcard = std::string(t) == kClusterType || std::string(t) == kListenerType;
        if (!wildcard && it->second.empty()) continue;
        sendRequest(*stream, t, "");
      }
      sent->set_value();
    });
    // The main loop may be stopped (shutdown): don't wait forever.
    while (!stopping_ &&
           sent_future.wait_for(std::chrono::milliseconds(100)) != std::future_status::ready) {
    }
    dv3::DiscoveryResponse resp;
    bool got_any = false;
    while (!stopping_ && stream->rw->Read(&resp)) {
      if (!got_any) {
        got_any = true;
        connected_ = true;
        ++connects_;
        backoff = options_.initial_backoff;
        MAST_LOG(INFO, "xds: connected to {}", options_.target);
      }
      std::vector<google::protobuf::Any> resources(resp.resources().begin(),
                                                   resp.resources().end());
      asio::post(main_loop_, [this, stream, type = resp.type_url(), version = resp.version_info(),
                              nonce = resp.nonce(), res = std::move(resources)]() mutable {
        onResponse(stream, type, std::move(res), version, nonce);
      });
    }
    connected_ = false;
    stream->broken = true;
    {
      std::lock_guard lk(stream_mu_);
      stream_.reset();
    }
    stream->context.TryCancel();
    grpc::Status status = stream->rw->Finish();
    if (stopping_) break;
    MAST_LOG(WARN, "xds: stream to {} closed ({}: {}); retrying in about {} ms", options_.target,
             static_cast<int>(status.error_code()), status.error_message(), backoff.count());
    // Full jitter around the current back-off, then double it up to the maximum.
    std::uniform_int_distribution<int64_t> jitter(backoff.count() / 2, backoff.count());
    std::unique_lock lk(wake_mu_);
    wake_.wait_for(lk, std::chrono::milliseconds(jitter(rng)), [this] { return stopping_.load(); });
    backoff = std::min(options_.max_backoff, backoff * 2);
  }
}

}  // namespace mast::proxy::xds
