#include "control/config/watcher.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace mast::control::config {

namespace fs = std::filesystem;

namespace {

constexpr uint32_t kFileEvents = IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE |
                                 IN_CREATE | IN_DELETE_SELF | IN_MOVE_SELF;

std::optional<std::string> readFile(const std::string& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

DirectoryWatcher::DirectoryWatcher(ConfigStore& store, std::string dir,
                                   std::chrono::milliseconds debounce)
    : store_(store), dir_(fs::path(dir).lexically_normal().string()), debounce_(debounce) {
  while (dir_.size() > 1 && dir_.ends_with('/')) dir_.pop_back();
}

DirectoryWatcher::~DirectoryWatcher() { stop(); }

void DirectoryWatcher::addWatchRecursive(const std::string& dir) {
  int wd = inotify_add_watch(inotify_fd_, dir.c_str(), kFileEvents | IN_ONLYDIR);
  if (wd < 0) return;
  wd_to_dir_[wd] = dir;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::string name = it->path().filename().string();
    if (it->is_directory(ec) && !name.empty() && name[0] != '.') {
      addWatchRecursive(it->path().string());
    }
  }
}

Status DirectoryWatcher::start(std::vector<ConfigError>* initial_errors) {
  if (thread_.joinable()) return Error{"watcher already started"};
  inotify_fd_ = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (inotify_fd_ < 0) return Error{std::string("inotify_init1: ") + strerror(errno)};
  stop_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (stop_fd_ < 0) {
    close(inotify_fd_);
    inotify_fd_ = -1;
    return Error{std::string("eventfd: ") + strerror(errno)};
  }
  // Watch before the initial load so nothing written in between is missed.
  addWatchRecursive(dir_);
  if (wd_to_dir_.empty()) {
    stop();
    return Error{"cannot watch " + dir_ + ": " + strerror(errno)};
  }
  auto errors = store_.loadDirectory(dir_);
  if (initial_errors != nullptr) *initial_errors = std::move(errors);
  thread_ = std::thread([this] { run(); });
  return {};
}

void DirectoryWatcher::stop() {
  if (thread_.joinable()) {
    uint64_t one = 1;
    ssize_t n = write(stop_fd_, &one, sizeof(one));
    (void)n;
    thread_.join();
  }
  if (inotify_fd_ >= 0) close(inotify_fd_);
  if (stop_fd_ >= 0) close(stop_fd_);
  inotify_fd_ = stop_fd_ = -1;
  wd_to_dir_.clear();
}

void DirectoryWatcher::processBatch() {
  std::vector<ConfigError> errors;
  if (rescan_) {
    // Lost events: re-add watches (new dirs) and resync everything.
    addWatchRecursive(dir_);
    errors = store_.loadDirectory(dir_);
  } else {
    std::vector<FileChange> changes;
    for (const auto& path : dirty_) {
      std::error_code ec;
      if (fs::is_regular_file(path, ec)) {
        auto contents = readFile(path);
        if (!contents)
          continue;  // vanished between the check and the read: the delete event follows
        changes.push_back({path, std::move(contents)});
      } else if (!fs::exists(path, ec)) {
        changes.push_back({path, std::nullopt});
      }
    }
    errors = store_.applyChanges(changes);
  }
  dirty_.clear();
  rescan_ = false;
  ++batches_;
  BatchCallback cb;
  {
    std::lock_guard lock(callback_mu_);
    cb = on_batch_;
  }
  if (cb) cb(errors);
}

void DirectoryWatcher::run() {
  alignas(inotify_event) char buf[16 * 1024];
  using Clock = std::chrono::steady_clock;
  std::optional<Clock::time_point> deadline;
  while (true) {
    int timeout = -1;
    if (deadline) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(*deadline - Clock::now());
      timeout = static_cast<int>(std::max<int64_t>(0, left.count()));
    }
    pollfd fds[2] = {{inotify_fd_, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
    int n = poll(fds, 2, timeout);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[1].revents & POLLIN) return;
    if (n == 0) {
      if (deadline && Clock::now() >= *deadline) {
        deadline.reset();
        processBatch();
      }
      continue;
    }
    if (!(fds[0].revents & POLLIN)) continue;
    while (true) {
      ssize_t len = read(inotify_fd_, buf, sizeof(buf));
      if (len <= 0) break;
      for (char* p = buf; p < buf + len;) {
        auto* ev = reinterpret_cast<inotify_event*>(p);
        p += sizeof(inotify_event) + ev->len;
        if (ev->mask & IN_Q_OVERFLOW) {
          rescan_ = true;
          continue;
        }
        auto it = wd_to_dir_.find(ev->wd);
        if (ev->mask & IN_IGNORED) {
          if (it != wd_to_dir_.end()) wd_to_dir_.erase(it);
          continue;
        }
        if (it == wd_to_dir_.end()) continue;
        if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF)) {
          rescan_ = true;  // a watched directory went away: resync what is left
          continue;
        }
        if (ev->len == 0) continue;
        std::string name(ev->name);
        std::string path = it->second + "/" + name;
        if (name == "..data") {
          // A Kubernetes ConfigMap/Secret volume swapped its "..data" symlink: the visible
          // files are symlinks through it and produce no events of their own.
          rescan_ = true;
          continue;
        }
        if (ev->mask & IN_ISDIR) {
          // A directory appeared (watch it and read what is already inside) or went away.
          if (!name.empty() && name[0] != '.') rescan_ = true;
          continue;
        }
        if (!isConfigFileName(name)) continue;
        if (ev->mask & IN_CREATE) continue;  // wait for IN_CLOSE_WRITE
        dirty_.insert(path);
      }
    }
    if (!dirty_.empty() || rescan_) deadline = Clock::now() + debounce_;
  }
}

}  // namespace mast::control::config
