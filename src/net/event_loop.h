#pragma once
// Which kernel interface this build's asio event loops use, and whether it can run here.
//
// The backend is fixed at build time (CMake option MAST_IO_URING; see
// docs/decisions/0002-event-loop-backend.md): asio picks its socket and timer services by macro,
// so one binary cannot switch at run time. io_uring can be forbidden where epoll is not:
// container seccomp profiles (Docker's default blocks io_uring_setup), the
// kernel.io_uring_disabled sysctl, kernels older than 5.6. Without a check, such a process dies in
// its first io_context with an uncaught std::system_error; mains call eventLoopProblem() first
// and print its message instead.
#include <string>
#include <string_view>

namespace mast::net {

// "io_uring" or "epoll".
std::string_view eventLoopBackend();

// Empty when this process can create an event loop with a socket on it; otherwise one line
// saying what failed and how to get a working build or environment.
std::string eventLoopProblem();

}  // namespace mast::net
