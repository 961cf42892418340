#include "net/deadline_queue.h"

#include <utility>

namespace mast::net {

void Deadline::arm(DeadlineQueue& queue, Clock::duration after, std::function<void()> on_expiry) {
  cancel();
  on_expiry_ = std::move(on_expiry);
  queue.link(*this, after);
}

void Deadline::cancel() {
  if (lane_) lane_->queue->unlink(*this);
}

DeadlineQueue::DeadlineQueue(asio::io_context& loop) : timer_(loop) {}

DeadlineQueue::~DeadlineQueue() {
  *alive_ = false;
  for (auto& lane : lanes_) {
    while (lane->head) unlink(*lane->head);
  }
}

void DeadlineQueue::link(Deadline& d, Clock::duration after) {
  Lane* lane = nullptr;
  for (auto& l : lanes_) {
    if (l->duration == after) {
      lane = l.get();
      break;
    }
  }
  if (!lane) {
    lanes_.push_back(std::make_unique<Lane>());
    lane = lanes_.back().get();
    lane->duration = after;
    lane->queue = this;
  }
  d.expiry_ = Clock::now() + after;
  d.lane_ = lane;
  d.prev_ = lane->tail;
  d.next_ = nullptr;
  if (lane->tail) {
    lane->tail->next_ = &d;
  } else {
    lane->head = &d;
  }
  lane->tail = &d;
  ++armed_;
  if (!timer_set_ || d.expiry_ < timer_at_) scheduleTimer(d.expiry_);
}

void DeadlineQueue::unlink(Deadline& d) {
  Lane* lane = d.lane_;
  if (d.prev_) {
    d.prev_->next_ = d.next_;
  } else {
    lane->head = d.next_;
  }
  if (d.next_) {
    d.next_->prev_ = d.prev_;
  } else {
    lane->tail = d.prev_;
  }
  d.lane_ = nullptr;
  d.prev_ = d.next_ = nullptr;
  --armed_;
  // Re-arming for "what is left" (lazy idle timeouts) creates one-off durations; keep the
  // usual few lanes, drop empty extra ones so the scan stays short.
  if (!lane->head && lanes_.size() > kKeptLanes) {
    for (auto it = lanes_.begin(); it != lanes_.end(); ++it) {
      if (it->get() == lane) {
        lanes_.erase(it);
        break;
      }
    }
  }
}

DeadlineQueue::Clock::time_point DeadlineQueue::earliest() const {
  Clock::time_point best = Clock::time_point::max();
  for (const auto& lane : lanes_) {
    if (lane->head && lane->head->expiry_ < best) best = lane->head->expiry_;
  }
  return best;
}

void DeadlineQueue::scheduleTimer(Clock::time_point at) {
  timer_set_ = true;
  timer_at_ = at;
  ++timer_resets_;
  timer_.expires_at(at);
  timer_.async_wait([this, alive = std::weak_ptr<bool>(alive_)](std::error_code ec) {
    if (ec || alive.expired()) return;  // moved earlier (aborted) or the queue is gone
    onTimer();
  });
}

void DeadlineQueue::onTimer() {
  timer_set_ = false;
  // A callback may arm or cancel other deadlines, so take one expired head at a time.
  for (;;) {
    Clock::time_point now = Clock::now();
    Deadline* due = nullptr;
    for (auto& lane : lanes_) {
      if (lane->head && lane->head->expiry_ <= now &&
          (!due || lane->head->expiry_ < due->expiry_)) {
        due = lane->head;
      }
    }
    if (!due) break;
    unlink(*due);
    auto fn = std::move(due->on_expiry_);
    due->on_expiry_ = nullptr;
    std::weak_ptr<bool> alive = alive_;
    fn();
    if (alive.expired()) return;
  }
  if (armed_ > 0 && !timer_set_) scheduleTimer(earliest());
}

}  // namespace mast::net
