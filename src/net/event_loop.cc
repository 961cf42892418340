#include "net/event_loop.h"

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <system_error>

namespace mast::net {

std::string_view eventLoopBackend() {
#if defined(ASIO_HAS_IO_URING_AS_DEFAULT)
  return "io_uring";
#else
  return "epoll";
#endif
}

std::string eventLoopProblem() {
  try {
    // A socket makes asio create the backend (io_uring_queue_init or epoll_create1), exactly as
    // the first listener or connection would.
    asio::io_context loop(1);
    asio::ip::tcp::socket socket(loop);
  } catch (const std::system_error& e) {
    std::string msg = "cannot create an event loop with asio's " + std::string(eventLoopBackend()) +
                      " backend: " + e.what();
#if defined(ASIO_HAS_IO_URING_AS_DEFAULT)
    msg +=
        ". io_uring may be blocked here (container seccomp profile, sysctl "
        "kernel.io_uring_disabled, old kernel): allow it, or use a build configured with "
        "-DMAST_IO_URING=OFF (epoll)";
#endif
    return msg;
  }
  return {};
}

}  // namespace mast::net
