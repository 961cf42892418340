#pragma once
// Process helpers: run a tool and capture its output, find executables, check privileges, and
// the istio-proxy user the proxy runs as when the agent is root.
#include <sys/types.h>

#include <string>
#include <vector>

#include "base/result.h"

namespace mast::agent {

struct ProcessResult {
  int exit_code = 0;   // 128+N when killed by signal N
  std::string output;  // stdout and stderr together
};

// Runs argv[0] (searched in PATH) with `input` on stdin; waits for it.
Result<ProcessResult> runProcess(const std::vector<std::string>& argv,
                                 const std::string& input = {});

// The full path of `name` found in PATH (a default PATH when unset), or empty.
std::string findExecutable(const std::string& name);

// True when the process may change netfilter rules: root, or CAP_NET_ADMIN in its effective set.
bool hasNetAdmin();

// Exit status of a waitpid() status word: the exit code, or 128+signal.
int exitCodeOf(int wait_status);

struct ProxyUser {
  uid_t uid = 0;
  gid_t gid = 0;
  std::string name;  // empty when the uid has no passwd entry
};
// Looks up `uid`; when it is missing and `create_name` is set, creates a system user of that name
// with that uid (and a group of the same id) with useradd. Without useradd the uid is used as is
// (gid = uid): setuid() needs no passwd entry.
Result<ProxyUser> ensureUser(uid_t uid, const std::string& create_name);

}  // namespace mast::agent
