#pragma once
// Work deferred to the end of the current I/O completion instead of posted to the event loop.
//
// A response's writes should leave in one send, and an object that finishes inside a callback
// (a stream, a pooled connection) must be destroyed only once the call stack has unwound. Posting
// each of those to the loop cost a handler allocation and, per request, an extra epoll_wait. So
// read handlers open a DispatchScope; work deferred inside it runs when the outermost scope
// closes, in order, until none is left. Outside any scope (timer callbacks, posted work) deferred
// work is posted to the given loop instead.
//
// Thread: one event loop per thread, so the scope state is thread-local; a scope and the work
// deferred in it belong to the thread that runs that loop.
#include <asio/io_context.hpp>
#include <functional>

namespace mast::net {

class DispatchScope {
 public:
  DispatchScope();
  ~DispatchScope();
  DispatchScope(const DispatchScope&) = delete;
  DispatchScope& operator=(const DispatchScope&) = delete;

  static bool active();
};

// Runs `fn` when the outermost DispatchScope on this thread closes, or posts it to `loop` when
// no scope is open.
void deferToEndOfDispatch(asio::io_context& loop, std::function<void()> fn);

}  // namespace mast::net
