#pragma once
// An io_uring ring that carries one worker's plaintext socket reads and writes, and drives that
// worker's asio loop from it.
//
// Why: on this VM a syscall is the dominant cost of a proxied request, and asio's epoll reactor
// spends 8 per HTTP/1.1 request at one connection (epoll_wait, and a speculative recv that fails
// with EAGAIN each time a read is re-armed). Through a ring, a read is armed in the kernel and
// completes without a retry, and one io_uring_enter both submits the next operations and waits.
// asio 1.22's own io_uring backend is fixed at compile time for the whole binary (no fallback
// where seccomp forbids io_uring) and crashed mastd (docs/decisions/0003-uring-beside-asio.md).
//
// How: the ring owns the thread's blocking point. Everything asio still does (accepts, connects,
// TLS, timers, posted handlers) stays on asio's epoll reactor; the ring keeps a one-shot poll on
// the reactor's epoll descriptor, and after every wake-up run() calls loop.poll(), so asio work
// is done exactly as if the thread sat in loop.run(). Handlers posted by other threads do not
// interrupt a thread that is not inside asio's epoll_wait, so cross-thread posters call wake().
//
// Thread contract: a Uring belongs to the thread that created it and calls run(); every other
// member except wake() is for that thread only (the ring is set up SINGLE_ISSUER).
// Ownership: an Op is owned by the ring from submission until complete() is called, exactly once,
// on the ring's thread; the memory it reads or writes must stay valid until then (callers keep it
// alive through the handler, as with asio).
#include <liburing.h>

#include <asio/io_context.hpp>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <utility>

namespace mast::net {

class Uring {
 public:
  class Op {
   public:
    // `result` is the CQE's: bytes transferred, or -errno.
    virtual void complete(int result) = 0;

   protected:
    ~Op() = default;
  };

  // A ring for `loop`, or nullptr with `why_not` set: io_uring forbidden (seccomp, sysctl
  // kernel.io_uring_disabled, kernel too old) or turned off with MAST_IO_URING=0.
  static std::unique_ptr<Uring> create(asio::io_context& loop, std::string* why_not);
  ~Uring();
  Uring(const Uring&) = delete;
  Uring& operator=(const Uring&) = delete;

  // The ring whose run() is on the call stack of this thread, or nullptr.
  static Uring* onThisThread();

  // Runs the loop until loop.stopped(), blocking in io_uring_enter.
  void run();
  // After the owner closed its sockets: completes in-flight operations (their handlers run)
  // until none is left or `bound` passed, polling the asio loop in between.
  void drain(std::chrono::milliseconds bound);
  // Any thread: makes run() come back to the asio loop (after a cross-thread post or stop()).
  void wake();

  // Takes `fd`'s readiness away from asio's reactor: from now on its reads and writes go through
  // the ring only (asio may still close it or shut it down).
  void adopt(int fd);
  void recv(int fd, void* buf, size_t len, Op* op);
  void send(int fd, const void* buf, size_t len, Op* op);
  size_t inflight() const { return inflight_; }
  // How many times wake() brought run() back (tests).
  uint64_t wakeups() const { return wakeups_; }

  // An Op that calls `fn(int result)`; the op frees itself before calling, so `fn` may submit
  // the next operation into the same memory.
  template <class Fn>
  static Op* makeOp(Fn&& fn);

 private:
  Uring(asio::io_context& loop, int epoll_fd);
  io_uring_sqe* sqe();
  void armEpollPoll();
  void armWakeRead();
  // Waits for at least one completion (or `timeout`), then completes every ready one. Returns
  // true when asio has work to look at (its epoll descriptor was ready or wake() was called).
  bool waitAndComplete(__kernel_timespec* timeout);
  // Whether asio's queue holds a handler (anything but its reactor task).
  bool handlersQueued();
  // loop.poll(), then notes the reactor's task operation.
  void pollLoop();

  asio::io_context& loop_;
  int epoll_fd_;
  void* scheduler_ = nullptr;      // asio::detail::scheduler of loop_
  const void* task_op_ = nullptr;  // its reactor task operation, once seen alone in the queue
  int wake_fd_ = -1;               // eventfd; wake() writes it, a read of it is always in flight
  uint64_t wake_value_ = 0;
  io_uring ring_{};
  bool ring_ready_ = false;
  bool epoll_armed_ = false;
  bool wake_armed_ = false;
  size_t inflight_ = 0;
  unsigned sends_since_wait_ = 0;
  uint64_t wakeups_ = 0;
};

namespace uring_detail {
template <class Fn>
class FnOp final : public Uring::Op {
 public:
  explicit FnOp(Fn fn) : fn_(std::move(fn)) {}
  void complete(int result) override {
    Fn fn = std::move(fn_);
    delete this;
    fn(result);
  }

 private:
  Fn fn_;
};
}  // namespace uring_detail

template <class Fn>
Uring::Op* Uring::makeOp(Fn&& fn) {
  return new uring_detail::FnOp<std::decay_t<Fn>>(std::forward<Fn>(fn));
}

}  // namespace mast::net
