#include "agent/process.h"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace mast::agent {

int exitCodeOf(int st) {
  if (WIFEXITED(st)) return WEXITSTATUS(st);
  if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
  return 1;
}

std::string findExecutable(const std::string& name) {
  if (name.find('/') != std::string::npos) return access(name.c_str(), X_OK) == 0 ? name : "";
  const char* env = getenv("PATH");
  std::string path = env ? env : "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  std::stringstream ss(path);
  std::string dir;
  while (std::getline(ss, dir, ':')) {
    if (dir.empty()) continue;
    std::string full = dir + "/" + name;
    struct stat st;
    if (stat(full.c_str(), &st) == 0 && S_ISREG(st.st_mode) && access(full.c_str(), X_OK) == 0) {
      return full;
    }
  }
  return "";
}

Result<ProcessResult> runProcess(const std::vector<std::string>& argv, const std::string& input) {
  if (argv.empty()) return Error{"runProcess: empty command"};
  std::string exe = findExecutable(argv[0]);
  if (exe.empty()) return Error{argv[0] + ": not found in PATH"};
  int in[2], out[2];
  if (pipe2(in, O_CLOEXEC) != 0) return Error{std::string("pipe: ") + strerror(errno)};
  if (pipe2(out, O_CLOEXEC) != 0) {
    close(in[0]);
    close(in[1]);
    return Error{std::string("pipe: ") + strerror(errno)};
  }
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = fork();
  if (pid < 0) return Error{std::string("fork: ") + strerror(errno)};
  if (pid == 0) {
    dup2(in[0], 0);
    dup2(out[1], 1);
    dup2(out[1], 2);
    execv(exe.c_str(), args.data());
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  // Feed stdin and drain stdout together so neither side blocks on a full pipe.
  size_t written = 0;
  int wfd = in[1];
  if (input.empty()) {
    close(wfd);
    wfd = -1;
  } else {
    fcntl(wfd, F_SETFL, O_NONBLOCK);
  }
  ProcessResult res;
  signal(SIGPIPE, SIG_IGN);
  for (;;) {
    pollfd fds[2] = {{out[0], POLLIN, 0}, {wfd, POLLOUT, 0}};
    if (poll(fds, wfd >= 0 ? 2 : 1, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (wfd >= 0 && (fds[1].revents & (POLLOUT | POLLERR | POLLHUP))) {
      ssize_t n = write(wfd, input.data() + written, input.size() - written);
      if (n > 0) written += static_cast<size_t>(n);
      if (n < 0 && errno != EAGAIN && errno != EINTR) written = input.size();
      if (written == input.size()) {
        close(wfd);
        wfd = -1;
      }
    }
    if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      char buf[4096];
      ssize_t n = read(out[0], buf, sizeof buf);
      if (n > 0) {
        res.output.append(buf, static_cast<size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        break;
      }
    }
  }
  if (wfd >= 0) close(wfd);
  close(out[0]);
  int st = 0;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  res.exit_code = exitCodeOf(st);
  return res;
}

bool hasNetAdmin() {
  if (geteuid() == 0) return true;
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("CapEff:", 0) == 0) {
      unsigned long long caps = std::stoull(line.substr(7), nullptr, 16);
      return caps & (1ULL << 12);  // CAP_NET_ADMIN
    }
  }
  return false;
}

Result<ProxyUser> ensureUser(uid_t uid, const std::string& create_name) {
  auto lookup = [&]() -> std::optional<ProxyUser> {
    struct passwd pw, *res = nullptr;
    char buf[4096];
    if (getpwuid_r(uid, &pw, buf, sizeof buf, &res) != 0 || !res) return std::nullopt;
    return ProxyUser{res->pw_uid, res->pw_gid, res->pw_name};
  };
  if (auto u = lookup()) return *u;
  if (!create_name.empty() && geteuid() == 0 && !findExecutable("useradd").empty()) {
    std::string id = std::to_string(uid);
    std::vector<std::string> cmd = {"useradd",          "--system",   "--uid",        id,
                                    "--no-create-home", "--home-dir", "/nonexistent", "--shell",
                                    "/usr/sbin/nologin"};
    // A group with the same id and name (Istio's istio-proxy is 1337:1337): useradd's
    // --user-group would pick a system gid instead.
    if (getgrgid(uid) == nullptr && getgrnam(create_name.c_str()) == nullptr &&
        !findExecutable("groupadd").empty()) {
      auto g = runProcess({"groupadd", "--system", "--gid", id, create_name});
      if (!g) return Error{g.error()};
      if (g->exit_code != 0) {
        return Error{"groupadd " + create_name + " (gid " + id + ") failed: " + g->output};
      }
    }
    if (getgrgid(uid) != nullptr) {
      cmd.insert(cmd.end(), {"--gid", id});
    } else if (getgrnam(create_name.c_str()) != nullptr) {
      cmd.insert(cmd.end(), {"--gid", create_name});
    } else {
      cmd.push_back("--user-group");
    }
    cmd.push_back(create_name);
    auto r = runProcess(cmd);
    if (!r) return Error{r.error()};
    if (r->exit_code != 0) {
      return Error{"useradd " + create_name + " (uid " + id + ") failed: " + r->output};
    }
    if (auto u = lookup()) return *u;
  }
  return ProxyUser{uid, static_cast<gid_t>(uid), ""};
}

}  // namespace mast::agent
