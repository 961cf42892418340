#include "control/xds/debouncer.h"

#include <algorithm>

namespace mast::control::xds {

void DebounceState::onEvent(TimePoint now) {
  if (events_ == 0) first_ = now;
  last_ = now;
  ++events_;
}

DebounceState::TimePoint DebounceState::deadline() const {
  return std::min(last_ + options_.quiet, first_ + options_.max_delay);
}

size_t DebounceState::take(TimePoint now) {
  if (events_ == 0 || now < deadline()) return 0;
  return takeNow();
}

size_t DebounceState::takeNow() {
  size_t n = events_;
  events_ = 0;
  return n;
}

Debouncer::Debouncer(DebounceOptions options, Fire fire)
    : options_(options), fire_(std::move(fire)), state_(options) {
  thread_ = std::thread([this] { run(); });
}

Debouncer::~Debouncer() { stop(); }

void Debouncer::trigger(std::string key) {
  std::lock_guard lock(mu_);
  if (stopping_) return;
  state_.onEvent(DebounceState::Clock::now());
  keys_.insert(std::move(key));
  cv_.notify_all();
}

void Debouncer::flush() {
  std::unique_lock lock(mu_);
  if (stopping_) return;
  uint64_t mine = ++flush_seq_;
  cv_.notify_all();
  fired_cv_.wait(lock, [&] { return flushes_done_ >= mine || stopping_; });
}

void Debouncer::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    cv_.notify_all();
    fired_cv_.notify_all();
  }
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

uint64_t Debouncer::fires() const {
  std::lock_guard lock(mu_);
  return fires_;
}

void Debouncer::run() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    size_t events = 0;
    uint64_t flush_target = flush_seq_;
    bool flushing = flushes_done_ < flush_target;
    if (flushing) {
      events = state_.takeNow();
    } else if (!state_.pending()) {
      cv_.wait(lock);
      continue;
    } else {
      events = state_.take(DebounceState::Clock::now());
      if (events == 0) {
        cv_.wait_until(lock, state_.deadline());
        continue;
      }
    }
    if (events > 0) {
      std::set<std::string> keys = std::move(keys_);
      keys_.clear();
      ++fires_;
      lock.unlock();
      fire_(std::move(keys), events);
      lock.lock();
    }
    if (flushing) {
      flushes_done_ = flush_target;
      fired_cv_.notify_all();
    }
  }
}

SnapshotPushQueue::SnapshotPushQueue(SnapshotCache& cache, DebounceOptions options)
    : cache_(cache), debouncer_(options, [this](std::set<std::string>, size_t) { apply(); }) {}

SnapshotPushQueue::~SnapshotPushQueue() { debouncer_.stop(); }

void SnapshotPushQueue::push(const std::string& node_id, Snapshot snapshot) {
  {
    std::lock_guard lock(mu_);
    pending_[node_id] = std::make_shared<const Snapshot>(std::move(snapshot));
  }
  debouncer_.trigger(node_id);
}

void SnapshotPushQueue::flush() { apply(); }

size_t SnapshotPushQueue::pending() const {
  std::lock_guard lock(mu_);
  return pending_.size();
}

uint64_t SnapshotPushQueue::snapshotsApplied() const {
  std::lock_guard lock(mu_);
  return applied_;
}

void SnapshotPushQueue::apply() {
  std::lock_guard apply_lock(apply_mu_);
  std::map<std::string, std::shared_ptr<const Snapshot>> batch;
  {
    std::lock_guard lock(mu_);
    batch.swap(pending_);
    applied_ += batch.size();
  }
  for (auto& [node, snapshot] : batch) cache_.setSnapshot(node, std::move(snapshot));
}

}  // namespace mast::control::xds
