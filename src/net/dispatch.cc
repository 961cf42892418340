#include "net/dispatch.h"

#include <asio/post.hpp>
#include <utility>
#include <vector>

namespace mast::net {
namespace {

struct ThreadDispatch {
  int depth = 0;
  std::vector<std::function<void()>> deferred;
  std::vector<std::function<void()>> running;
};

thread_local ThreadDispatch t_dispatch;

void runDeferred(ThreadDispatch& d) {
  // Deferred work may defer more (a flush that finishes a stream); keep the scope open while it
  // runs so that nested work queues here instead of being posted.
  ++d.depth;
  while (!d.deferred.empty()) {
    d.running.swap(d.deferred);
    for (auto& fn : d.running) fn();
    d.running.clear();
  }
  --d.depth;
}

}  // namespace

DispatchScope::DispatchScope() { ++t_dispatch.depth; }

DispatchScope::~DispatchScope() {
  ThreadDispatch& d = t_dispatch;
  if (--d.depth == 0 && !d.deferred.empty()) runDeferred(d);
}

bool DispatchScope::active() { return t_dispatch.depth > 0; }

void deferToEndOfDispatch(asio::io_context& loop, std::function<void()> fn) {
  ThreadDispatch& d = t_dispatch;
  if (d.depth == 0) {
    asio::post(loop, std::move(fn));
    return;
  }
  d.deferred.push_back(std::move(fn));
}

}  // namespace mast::net
