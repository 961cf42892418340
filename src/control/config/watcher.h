#pragma once
// DirectoryWatcher: keeps a ConfigStore in sync with a directory tree, using inotify.
//
// Contract:
//  - start() loads the directory once (synchronously) and then watches it on its own thread.
//  - Events are debounced: a batch is applied once no event arrived for `debounce` (editors
//    write temp files and rename them into place; `mastctl apply` does the same). Each batch is
//    one ConfigStore::applyChanges call, i.e. at most one version bump.
//  - Files: *.yaml, *.yml, *.json (not hidden). New subdirectories are watched as they appear;
//    an inotify queue overflow triggers a full rescan, and so does a Kubernetes ConfigMap volume
//    update (the atomic swap of its "..data" symlink).
//  - `on_batch` (optional) runs on the watcher thread after each applied batch with that batch's
//    errors (useful for logging).
#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "base/result.h"
#include "control/config/store.h"

namespace mast::control::config {

class DirectoryWatcher {
 public:
  using BatchCallback = std::function<void(const std::vector<ConfigError>& errors)>;

  DirectoryWatcher(ConfigStore& store, std::string dir,
                   std::chrono::milliseconds debounce = std::chrono::milliseconds(50));
  ~DirectoryWatcher();
  DirectoryWatcher(const DirectoryWatcher&) = delete;
  DirectoryWatcher& operator=(const DirectoryWatcher&) = delete;

  // May be called at any time (also while running).
  void setBatchCallback(BatchCallback cb) {
    std::lock_guard lock(callback_mu_);
    on_batch_ = std::move(cb);
  }

  // Initial load + watch. Returns the initial load's errors through `initial_errors` (optional).
  Status start(std::vector<ConfigError>* initial_errors = nullptr);
  // Stops and joins the thread. Idempotent.
  void stop();

  // Number of batches applied since start (for tests and debugging).
  uint64_t batches() const { return batches_.load(); }

 private:
  void run();
  void addWatchRecursive(const std::string& dir);
  void processBatch();

  ConfigStore& store_;
  std::string dir_;
  std::chrono::milliseconds debounce_;
  std::mutex callback_mu_;
  BatchCallback on_batch_;
  int inotify_fd_ = -1;
  int stop_fd_ = -1;  // eventfd
  std::thread thread_;
  std::map<int, std::string> wd_to_dir_;
  std::set<std::string> dirty_;
  bool rescan_ = false;
  std::atomic<uint64_t> batches_{0};
};

}  // namespace mast::control::config
