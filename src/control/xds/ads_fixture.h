#pragma once
// A running XdsServer on an OS-chosen loopback port with every callback recorded.
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <vector>

#include "control/xds/ads_server.h"
#include "control/xds/test_util.h"
#include "control/xds/type_urls.h"

namespace mast::control::xds::testing {

class AdsFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    Callbacks cb;
    cb.on_proxy_connected = [this](const ProxyInfo& p) -> Status {
      std::function<Status(const ProxyInfo&)> hook;
      {
        std::lock_guard lock(mu_);
        connected_.push_back(p);
        hook = connect_hook_;
        cv_.notify_all();
      }
      return hook ? hook(p) : Status{};
    };
    cb.on_proxy_disconnected = [this](const std::string& id, uint64_t) {
      std::lock_guard lock(mu_);
      disconnected_.push_back(id);
      cv_.notify_all();
    };
    cb.on_ack = [this](const AckEvent& e) {
      std::lock_guard lock(mu_);
      acks_.push_back(e);
      cv_.notify_all();
    };
    cb.on_nack = [this](const AckEvent& e) {
      std::lock_guard lock(mu_);
      nacks_.push_back(e);
      cv_.notify_all();
    };
    XdsServerOptions opts;
    opts.address = "127.0.0.1";
    opts.port = 0;
    server_ = std::make_unique<XdsServer>(cache_, std::move(cb), opts);
    auto port = server_->start();
    ASSERT_TRUE(port.ok()) << port.error();
    port_ = *port;
  }

  void TearDown() override {
    if (server_) server_->stop();
  }

  // Polls (bounded) for state that no callback signals (backend hit counters, ...).
  static bool pollUntil(const std::function<bool()>& pred,
                        std::chrono::milliseconds timeout = 5000ms) {
    auto end = std::chrono::steady_clock::now() + timeout;
    while (!pred()) {
      if (std::chrono::steady_clock::now() >= end) return false;
      std::this_thread::sleep_for(5ms);
    }
    return true;
  }

  // Waits (bounded) until `pred` holds over the recorded events (woken by the callbacks).
  bool waitFor(const std::function<bool()>& pred, std::chrono::milliseconds timeout = 5000ms) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, pred);
  }

  // The status of the (single) stream of `node_id` for `type_url`; nullopt if absent.
  std::optional<TypeStatus> typeStatus(const std::string& node_id, std::string_view type_url) {
    for (const auto& p : server_->status()) {
      if (p.proxy.id != node_id) continue;
      auto it = p.types.find(std::string(type_url));
      if (it != p.types.end()) return it->second;
    }
    return std::nullopt;
  }

  // Polls the status table (bounded) until `pred` holds for node_id/type_url: lets a test know
  // that the server has processed a request that has no response.
  bool waitForStatus(const std::string& node_id, std::string_view type_url,
                     const std::function<bool(const TypeStatus&)>& pred,
                     std::chrono::milliseconds timeout = 5000ms) {
    return pollUntil(
        [&] {
          auto st = typeStatus(node_id, type_url);
          return st && pred(*st);
        },
        timeout);
  }

  SnapshotCache cache_;
  std::unique_ptr<XdsServer> server_;
  int port_ = 0;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<ProxyInfo> connected_;
  std::vector<std::string> disconnected_;
  std::vector<AckEvent> acks_;
  std::vector<AckEvent> nacks_;
  std::function<Status(const ProxyInfo&)> connect_hook_;
};

}  // namespace mast::control::xds::testing
