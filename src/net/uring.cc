#include "net/uring.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <asio/detail/epoll_reactor.hpp>
#include <asio/detail/scheduler.hpp>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "base/logging.h"
#include "net/dispatch.h"

namespace mast::net {

namespace {

// asio offers no way to wait on its reactor from outside, nor to ask whether handlers are queued
// (a handler posted by a thread that is not inside asio's own epoll_wait wakes nothing). Three
// private members answer that: the reactor's epoll descriptor and the scheduler's queue and its
// mutex. An explicit instantiation may name a private member (C++20 [temp.spec]/6); if asio
// renames one, this stops compiling rather than misbehaving. Debian 12 pins asio 1.22.
namespace ad = asio::detail;
struct EpollFdMember {
  using type = int ad::epoll_reactor::*;
};
struct QueueMember {
  using type = ad::op_queue<ad::scheduler_operation> ad::scheduler::*;
};
struct MutexMember {
  using type = ad::conditionally_enabled_mutex ad::scheduler::*;
};
EpollFdMember::type memberOf(EpollFdMember);
QueueMember::type memberOf(QueueMember);
MutexMember::type memberOf(MutexMember);
template <class Tag, typename Tag::type Member>
struct ExposeMember {
  friend typename Tag::type memberOf(Tag) { return Member; }
};
template struct ExposeMember<EpollFdMember, &ad::epoll_reactor::epoll_fd_>;
template struct ExposeMember<QueueMember, &ad::scheduler::op_queue_>;
template struct ExposeMember<MutexMember, &ad::scheduler::mutex_>;

constexpr uint64_t kEpollTag = 1;
constexpr uint64_t kWakeTag = 2;
constexpr unsigned kSubmissionEntries = 512;
constexpr unsigned kCompletionEntries = 4096;
constexpr unsigned kBatch = 64;

thread_local Uring* t_ring = nullptr;

}  // namespace

std::unique_ptr<Uring> Uring::create(asio::io_context& loop, std::string* why_not) {
  if (const char* env = std::getenv("MAST_IO_URING"); env && std::strcmp(env, "0") == 0) {
    *why_not = "turned off by MAST_IO_URING=0";
    return nullptr;
  }
  auto& reactor = asio::use_service<asio::detail::epoll_reactor>(loop);
  reactor.init_task();  // so that loop.poll() runs the reactor (epoll_wait) like loop.run()
  std::unique_ptr<Uring> ring(new Uring(loop, reactor.*memberOf(EpollFdMember{})));
  ring->scheduler_ = &asio::use_service<ad::scheduler>(loop);

  io_uring_params params{};
  params.flags = IORING_SETUP_CQSIZE | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
  params.cq_entries = kCompletionEntries;
  int rc = io_uring_queue_init_params(kSubmissionEntries, &ring->ring_, &params);
  if (rc == -EINVAL) {  // kernels before 6.1 lack the last two flags
    params = io_uring_params{};
    params.flags = IORING_SETUP_CQSIZE;
    params.cq_entries = kCompletionEntries;
    rc = io_uring_queue_init_params(kSubmissionEntries, &ring->ring_, &params);
  }
  if (rc < 0) {
    *why_not = std::string("io_uring_setup failed: ") + std::strerror(-rc);
    return nullptr;
  }
  ring->ring_ready_ = true;
  if (!(params.features & IORING_FEAT_EXT_ARG)) {  // 5.11: a wait with a timeout in one call
    *why_not = "kernel too old for io_uring waits with a timeout (needs 5.11)";
    return nullptr;
  }
  ring->wake_fd_ = ::eventfd(0, EFD_CLOEXEC);
  if (ring->wake_fd_ < 0) {
    *why_not = std::string("eventfd: ") + std::strerror(errno);
    return nullptr;
  }
  return ring;
}

Uring::Uring(asio::io_context& loop, int epoll_fd) : loop_(loop), epoll_fd_(epoll_fd) {}

Uring::~Uring() {
  if (inflight_ > 0) MAST_LOG(WARN, "io_uring: {} operations still in flight at exit", inflight_);
  if (ring_ready_) io_uring_queue_exit(&ring_);
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

Uring* Uring::onThisThread() { return t_ring; }

io_uring_sqe* Uring::sqe() {
  io_uring_sqe* s = io_uring_get_sqe(&ring_);
  if (s) return s;
  io_uring_submit(&ring_);  // the submission queue is full: hand it to the kernel first
  s = io_uring_get_sqe(&ring_);
  if (!s) {
    MAST_LOG(CRITICAL, "io_uring: no submission entry after a submit");
    std::abort();
  }
  return s;
}

void Uring::adopt(int fd) {
  // asio registered the socket when it was opened; left there, every byte that arrives would
  // also make the reactor ready and cost an epoll_wait on top of the ring's completion.
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
}

void Uring::recv(int fd, void* buf, size_t len, Op* op) {
  io_uring_sqe* s = sqe();
  io_uring_prep_recv(s, fd, buf, len, 0);
  io_uring_sqe_set_data(s, op);
  ++inflight_;
}

void Uring::send(int fd, const void* buf, size_t len, Op* op) {
  io_uring_sqe* s = sqe();
  io_uring_prep_send(s, fd, buf, len, MSG_NOSIGNAL);
  io_uring_sqe_set_data(s, op);
  ++inflight_;
  ++sends_since_wait_;
}

void Uring::armEpollPoll() {
  io_uring_sqe* s = sqe();
  io_uring_prep_poll_add(s, epoll_fd_, POLLIN);  // one-shot: re-armed after asio had its turn
  io_uring_sqe_set_data64(s, kEpollTag);
  epoll_armed_ = true;
}

void Uring::armWakeRead() {
  io_uring_sqe* s = sqe();
  io_uring_prep_read(s, wake_fd_, &wake_value_, sizeof wake_value_, 0);
  io_uring_sqe_set_data64(s, kWakeTag);
  wake_armed_ = true;
}

void Uring::wake() {
  uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(wake_fd_, &one, sizeof one);
}

bool Uring::waitAndComplete(__kernel_timespec* timeout) {
  if (!epoll_armed_) armEpollPoll();
  if (!wake_armed_) armWakeRead();
  // A send to a socket with room completes while it is submitted, and its completion alone would
  // end the wait: one more io_uring_enter per send just to run a write handler. So after sends,
  // wait for one completion more, but no longer than 1 ms: a send's handler may be late by that
  // much when nothing else happens (its data left at once; only what the handler does next, e.g.
  // closing after the response, waits). A request then costs one io_uring_enter per direction.
  unsigned wait_nr = 1;
  __kernel_timespec after_sends{.tv_sec = 0, .tv_nsec = 1'000'000};
  if (sends_since_wait_ > 0 &&
      (timeout == nullptr || timeout->tv_sec > 0 || timeout->tv_nsec > after_sends.tv_nsec)) {
    wait_nr = 2;
    timeout = &after_sends;
  }
  sends_since_wait_ = 0;
  io_uring_cqe* first = nullptr;
  int rc = io_uring_submit_and_wait_timeout(&ring_, &first, wait_nr, timeout, nullptr);
  if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EBUSY) {
    MAST_LOG(ERROR, "io_uring_enter: {}", std::strerror(-rc));
  }
  bool asio_work = false;
  DispatchScope scope;  // work deferred by the handlers below runs once all of them ran
  io_uring_cqe* cqes[kBatch];
  struct Done {
    uint64_t data;
    int res;
  } done[kBatch];
  for (;;) {
    unsigned n = io_uring_peek_batch_cqe(&ring_, cqes, kBatch);
    if (n == 0) break;
    for (unsigned i = 0; i < n; ++i) done[i] = {cqes[i]->user_data, cqes[i]->res};
    io_uring_cq_advance(&ring_, n);
    for (unsigned i = 0; i < n; ++i) {
      if (done[i].data == kEpollTag) {
        epoll_armed_ = false;
        asio_work = true;
      } else if (done[i].data == kWakeTag) {
        wake_armed_ = false;
        ++wakeups_;
        asio_work = true;
      } else if (done[i].data != LIBURING_UDATA_TIMEOUT && done[i].data != 0) {
        --inflight_;
        reinterpret_cast<Op*>(done[i].data)->complete(done[i].res);
      }
    }
    if (n < kBatch) break;
  }
  return asio_work;
}

namespace {

// What asio's handler queue holds: nothing, exactly one operation (`lone`), or several.
struct QueueShape {
  bool empty = true;
  const void* lone = nullptr;
};

QueueShape queueShape(void* scheduler_ptr) {
  auto& scheduler = *static_cast<ad::scheduler*>(scheduler_ptr);
  ad::conditionally_enabled_mutex::scoped_lock lock(scheduler.*memberOf(MutexMember{}));
  auto& queue = scheduler.*memberOf(QueueMember{});
  if (queue.empty()) return {};
  ad::scheduler_operation* front = queue.front();
  return {false, ad::op_queue_access::next(front) == nullptr ? front : nullptr};
}

}  // namespace

bool Uring::handlersQueued() {
  QueueShape queue = queueShape(scheduler_);
  return !queue.empty && queue.lone != task_op_;
}

void Uring::pollLoop() {
  loop_.poll();
  // poll() returns with the queue holding only the reactor's task operation: remember which one
  // that is, so that handlersQueued() can tell it from a handler.
  if (const void* lone = queueShape(scheduler_).lone) task_op_ = lone;
}

void Uring::run() {
  Uring* outer = std::exchange(t_ring, this);
  // Handlers posted by other threads do not wake this thread when they bypass wake(); waking
  // twice a second bounds how long such a handler can wait.
  __kernel_timespec safety{.tv_sec = 0, .tv_nsec = 500'000'000};
  pollLoop();  // whatever was posted before the ring took over
  while (!loop_.stopped()) {
    bool asio_ready = waitAndComplete(&safety);
    // Handlers that ran above may have posted to the loop from this thread (directly, or asio
    // completing an operation at once), which does not wake asio's reactor either.
    if (asio_ready || handlersQueued()) pollLoop();
  }
  t_ring = outer;
}

void Uring::drain(std::chrono::milliseconds bound) {
  Uring* outer = std::exchange(t_ring, this);
  auto deadline = std::chrono::steady_clock::now() + bound;
  loop_.restart();
  loop_.poll();
  while (inflight_ > 0 && std::chrono::steady_clock::now() < deadline) {
    __kernel_timespec step{.tv_sec = 0, .tv_nsec = 50'000'000};
    waitAndComplete(&step);
    loop_.restart();
    loop_.poll();
  }
  t_ring = outer;
}

}  // namespace mast::net
