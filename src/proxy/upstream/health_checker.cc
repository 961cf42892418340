#include "proxy/upstream/health_checker.h"

#include <array>
#include <asio/ip/tcp.hpp>
#include <asio/read.hpp>
#include <asio/steady_timer.hpp>
#include <asio/write.hpp>
#include <cstdlib>
#include <random>

namespace mast::upstream {

class HealthChecker::Session : public std::enable_shared_from_this<Session> {
 public:
  Session(HealthChecker& owner, HostPtr host)
      : owner_(owner),
        alive_(owner.alive_),
        host_(std::move(host)),
        timer_(owner.loop_),
        deadline_(owner.loop_) {}

  void start() { check(); }
  void stop() {
    stopped_ = true;
    timer_.cancel();
    deadline_.cancel();
    closeSocket();
  }
  const Host* host() const { return host_.get(); }

 private:
  void closeSocket() {
    if (sock_) {
      std::error_code ec;
      sock_->close(ec);
    }
  }

  void check() {
    if (stopped_) return;
    ++owner_.attempts_;
    done_ = false;
    sock_ = std::make_unique<asio::ip::tcp::socket>(owner_.loop_);
    response_.clear();
    auto self = shared_from_this();
    deadline_.expires_after(owner_.cfg_.timeout);
    deadline_.async_wait([self](std::error_code ec) {
      if (!ec) self->finish(false);
    });
    sock_->async_connect(host_->address, [self](std::error_code ec) {
      if (self->done_ || self->stopped_) return;
      if (ec) return self->finish(false);
      if (self->owner_.cfg_.kind == HealthCheckConfig::Kind::Tcp) return self->finish(true);
      self->sendRequest();
    });
  }

  void sendRequest() {
    const auto& cfg = owner_.cfg_;
    std::string host = cfg.host.empty() ? owner_.cluster_name_ : cfg.host;
    request_ = "GET " + cfg.path + " HTTP/1.1\r\nHost: " + host +
               "\r\nUser-Agent: Envoy/HC\r\nConnection: close\r\n\r\n";
    auto self = shared_from_this();
    asio::async_write(*sock_, asio::buffer(request_), [self](std::error_code ec, size_t) {
      if (self->done_ || self->stopped_) return;
      if (ec) return self->finish(false);
      self->readStatus();
    });
  }

  void readStatus() {
    auto self = shared_from_this();
    sock_->async_read_some(asio::buffer(buf_), [self](std::error_code ec, size_t n) {
      if (self->done_ || self->stopped_) return;
      self->response_.append(self->buf_.data(), n);
      size_t eol = self->response_.find("\r\n");
      if (eol == std::string::npos) {
        if (ec || self->response_.size() > 4096) return self->finish(false);
        return self->readStatus();
      }
      // "HTTP/1.1 200 OK"
      int status = 0;
      if (self->response_.size() >= 12 && self->response_.compare(0, 5, "HTTP/") == 0) {
        status = std::atoi(self->response_.c_str() + 9);
      }
      bool ok = false;
      for (const auto& [lo, hi] : self->owner_.cfg_.expected_statuses) {
        if (status >= static_cast<int>(lo) && status < static_cast<int>(hi)) ok = true;
      }
      self->finish(ok);
    });
  }

  void finish(bool ok) {
    if (done_ || stopped_ || alive_.expired()) return;
    done_ = true;
    deadline_.cancel();
    closeSocket();
    owner_.onResult(*host_, ok);
    auto interval = owner_.cfg_.interval;
    if (owner_.cfg_.interval_jitter.count() > 0) {
      static thread_local std::mt19937_64 rng{std::random_device{}()};
      interval += std::chrono::milliseconds(rng() % owner_.cfg_.interval_jitter.count());
    }
    auto self = shared_from_this();
    timer_.expires_after(interval);
    timer_.async_wait([self](std::error_code ec) {
      if (!ec) self->check();
    });
  }

  HealthChecker& owner_;
  std::weak_ptr<bool> alive_;
  HostPtr host_;
  asio::steady_timer timer_;
  asio::steady_timer deadline_;
  std::unique_ptr<asio::ip::tcp::socket> sock_;
  std::string request_;
  std::string response_;
  std::array<char, 1024> buf_{};
  bool done_ = false;
  bool stopped_ = false;
};

HealthChecker::HealthChecker(asio::io_context& loop, HealthCheckConfig cfg,
                             std::string cluster_name, std::function<void()> on_change)
    : loop_(loop),
      cfg_(std::move(cfg)),
      cluster_name_(std::move(cluster_name)),
      on_change_(std::move(on_change)) {}

HealthChecker::~HealthChecker() { stop(); }

void HealthChecker::stop() {
  for (auto& s : sessions_) s->stop();
  sessions_.clear();
}

void HealthChecker::setHosts(const HostList& hosts) {
  std::vector<std::shared_ptr<Session>> next;
  for (const auto& h : hosts) {
    std::shared_ptr<Session> found;
    for (auto& s : sessions_) {
      if (s && s->host() == h.get()) {
        found = s;
        s = nullptr;
        break;
      }
    }
    if (!found) {
      h->failed_active_hc.store(true);
      found = std::make_shared<Session>(*this, h);
      found->start();
    }
    next.push_back(found);
  }
  for (auto& s : sessions_) {
    if (s) s->stop();
  }
  sessions_ = std::move(next);
}

void HealthChecker::onResult(Host& h, bool ok) {
  if (on_check_) on_check_(ok);
  bool was_failed = h.failed_active_hc.load();
  if (ok) {
    h.hc_failures = 0;
    ++h.hc_successes;
    // The very first success of a new host (hc_successes counts since it was failed) or the
    // healthy threshold brings it back.
    bool first = !h.hc_checked;
    if (was_failed && (first || h.hc_successes >= cfg_.healthy_threshold)) {
      h.failed_active_hc.store(false);
      if (on_change_) on_change_();
    }
    h.hc_checked = true;
  } else {
    ++failures_;
    h.hc_successes = 0;
    ++h.hc_failures;
    if (!was_failed && h.hc_failures >= cfg_.unhealthy_threshold) {
      h.failed_active_hc.store(true);
      if (on_change_) on_change_();
    }
    h.hc_checked = true;
  }
}

}  // namespace mast::upstream
