#include "cli/proxy_target.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <asio/ip/address.hpp>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <thread>

namespace mast::cli {

namespace {

using json = nlohmann::json;

std::string str(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

bool startsWith(const std::string& s, const std::string& prefix) {
  return s.size() >= prefix.size() && s.compare(0, prefix.size(), prefix) == 0;
}

// PROXY_CONFIG.proxyAdminPort (Istio's ProxyConfig in the node metadata; mast-agent sends it),
// which mastd keeps as the JSON text of the value. 15000 when absent or unusable.
uint16_t adminPortOf(const json& node) {
  auto meta = node.find("metadata");
  if (meta == node.end() || !meta->is_object()) return 15000;
  std::string text = str(*meta, "PROXY_CONFIG");
  if (text.empty()) return 15000;
  json pc = json::parse(text, nullptr, false);
  if (!pc.is_object() || !pc.contains("proxyAdminPort")) return 15000;
  const auto& v = pc["proxyAdminPort"];
  long port = 0;
  if (v.is_number_integer()) {
    port = v.get<long>();
  } else if (v.is_string()) {
    port = std::strtol(v.get<std::string>().c_str(), nullptr, 10);
  }
  return port > 0 && port <= 65535 ? static_cast<uint16_t>(port) : 15000;
}

std::string describe(const ProxyTarget& t) {
  return "  " + (t.name.empty() ? t.id : t.name + "  (" + t.id + ")");
}

std::string listOf(const std::vector<const ProxyTarget*>& ts) {
  std::string out;
  size_t n = 0;
  for (const auto* t : ts) {
    if (n++ == 20) {
      out += "\n  ... and " + std::to_string(ts.size() - 20) + " more";
      break;
    }
    out += "\n" + describe(*t);
  }
  return out;
}

// Canonical text of an address ("::ffff:10.0.0.1" and "10.0.0.1" stay different: as the kernel
// lists them).
std::string canonicalIp(const std::string& ip) {
  std::error_code ec;
  auto a = asio::ip::make_address(ip, ec);
  return ec ? std::string() : a.to_string();
}

// The addresses on the interfaces of the calling thread's network namespace.
std::vector<std::string> localAddresses() {
  std::vector<std::string> out;
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) return out;
  for (ifaddrs* i = list; i; i = i->ifa_next) {
    if (!i->ifa_addr) continue;
    char buf[INET6_ADDRSTRLEN] = {};
    if (i->ifa_addr->sa_family == AF_INET) {
      ::inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr, buf,
                  sizeof(buf));
    } else if (i->ifa_addr->sa_family == AF_INET6) {
      ::inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(i->ifa_addr)->sin6_addr, buf,
                  sizeof(buf));
    } else {
      continue;
    }
    out.push_back(canonicalIp(buf));
  }
  ::freeifaddrs(list);
  return out;
}

bool isLocal(const std::string& ip) {
  std::string want = canonicalIp(ip);
  for (const auto& a : localAddresses()) {
    if (a == want) return true;
  }
  return false;
}

// Runs `fn` on a thread of its own that first joins the network namespace at `path` (setns
// changes only the calling thread's namespace; sockets it then opens live there). The thread
// ends with `fn`, so mastctl's own thread never leaves its namespace.
Status inNetworkNamespace(const std::string& path, const std::function<void()>& fn) {
  Status st;
  std::thread t([&] {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      st = Error{"cannot open " + path + ": " + std::strerror(errno)};
      return;
    }
    if (::setns(fd, CLONE_NEWNET) != 0) {
      int e = errno;
      ::close(fd);
      st = Error{"cannot enter network namespace " + path + ": " + std::strerror(e) +
                 (e == EPERM ? " (needs root)" : "")};
      return;
    }
    ::close(fd);
    fn();
  });
  t.join();
  return st;
}

}  // namespace

Result<ProxyTarget> matchProxy(const json& adsz, const std::string& query) {
  if (query.empty()) return Error{"empty proxy name"};
  // One entry per node id (a proxy may hold more than one stream).
  std::map<std::string, ProxyTarget> proxies;
  size_t proxyless = 0;
  if (adsz.contains("clients") && adsz["clients"].is_array()) {
    for (const auto& c : adsz["clients"]) {
      if (!c.contains("node") || !c["node"].is_object()) continue;
      const auto& node = c["node"];
      std::string id = str(node, "id");
      if (id.empty()) continue;
      if (node.value("proxyless", false)) {
        ++proxyless;
        continue;
      }
      ProxyTarget t;
      t.id = id;
      std::string name = str(node, "name"), ns = str(node, "namespace");
      if (!name.empty() && !ns.empty()) t.name = name.append(".").append(ns);
      t.ip = str(node, "ip");
      t.admin_port = adminPortOf(node);
      proxies.emplace(id, std::move(t));
    }
  }
  std::vector<const ProxyTarget*> exact, prefix, all;
  for (const auto& [id, t] : proxies) {
    all.push_back(&t);
    if (t.id == query || t.name == query) exact.push_back(&t);
    if (startsWith(t.id, query) || startsWith(t.name, query)) prefix.push_back(&t);
  }
  const auto& hits = exact.empty() ? prefix : exact;
  if (hits.size() == 1) {
    if (hits[0]->ip.empty()) {
      return Error{"proxy " + hits[0]->id + " has no IP in its node id: use --admin HOST:PORT"};
    }
    return *hits[0];
  }
  if (hits.size() > 1) {
    return Error{"\"" + query + "\" matches " + std::to_string(hits.size()) +
                 " proxies; give the full name or node id:" + listOf(hits)};
  }
  if (all.empty()) {
    return Error{"no proxy named \"" + query + "\": mastd has no connected proxies" +
                 (proxyless ? " with an admin endpoint (only proxyless gRPC clients)" : "")};
  }
  return Error{"no proxy named \"" + query +
               "\"; connected proxies (NAME.NAMESPACE or node id):" + listOf(all)};
}

Result<ProxyTarget> resolveProxy(const std::string& mastd, const std::string& query) {
  auto r = request(mastd, "GET", "/debug/adsz");
  if (!r) return Error{r.error()};
  if (r->status != 200) {
    return Error{"mastd answered " + std::to_string(r->status) + " to /debug/adsz"};
  }
  json j = json::parse(r->body, nullptr, false);
  if (j.is_discarded()) return Error{"mastd sent invalid JSON for /debug/adsz"};
  return matchProxy(j, query);
}

std::vector<std::string> namespacesHolding(const std::string& ip, const std::string& dir,
                                           std::vector<std::string>* errors) {
  std::vector<std::string> out;
  std::string want = canonicalIp(ip);
  std::error_code ec;
  std::vector<std::filesystem::path> entries;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) entries.push_back(e.path());
  std::sort(entries.begin(), entries.end());
  for (const auto& path : entries) {
    bool holds = false;
    Status st = inNetworkNamespace(path.string(), [&] {
      for (const auto& a : localAddresses()) holds = holds || a == want;
    });
    if (!st && errors) errors->push_back(st.error());
    if (holds) out.push_back(path.filename().string());
  }
  return out;
}

Result<AdminRoute> locateAdmin(const ProxyTarget& t, const std::string& netns_dir) {
  AdminRoute route;
  std::string loopback = "127.0.0.1:" + std::to_string(t.admin_port);
  if (isLocal(t.ip)) {
    route.address = route.where = loopback;
    return route;
  }
  std::vector<std::string> errors;
  auto holding = namespacesHolding(t.ip, netns_dir, &errors);
  if (holding.size() > 1) {
    std::string names;
    for (const auto& n : holding) names += (names.empty() ? "" : ", ") + n;
    return Error{t.ip + " is an address of several network namespaces (" + names +
                 "): run `ip netns exec NAMESPACE mastctl proxy-config TYPE --admin " + loopback +
                 "` in the proxy's own"};
  }
  if (holding.size() == 1) {
    route.address = loopback;
    route.netns = netns_dir + "/" + holding[0];
    route.where = loopback + " in network namespace " + holding[0];
    return route;
  }
  // Not on this machine (or in a namespace that could not be searched): the admin may still be
  // reachable on the proxy's IP (an admin bound to 0.0.0.0).
  route.address = (t.ip.find(':') != std::string::npos ? "[" + t.ip + "]" : t.ip) + ":" +
                  std::to_string(t.admin_port);
  route.where = route.address;
  if (errors.empty()) {
    route.hint =
        t.ip + " is an address neither of this network namespace nor of any under " + netns_dir;
  } else {
    route.hint = t.ip + " is not an address of this network namespace, and " +
                 std::to_string(errors.size()) + " namespaces under " + netns_dir +
                 " could not be searched (" + errors.front() + ")";
  }
  route.hint +=
      "; mast-agent's proxy admin listens on 127.0.0.1 in the proxy's network "
      "namespace: run mastctl there with --admin " +
      loopback;
  return route;
}

Result<ApiResponse> fetchFromProxy(const AdminRoute& route, const std::string& path) {
  Result<ApiResponse> r = Error{"not run"};
  if (route.netns.empty()) {
    r = adminGet(route.address, path, std::chrono::seconds(route.hint.empty() ? 10 : 3));
  } else {
    Status st = inNetworkNamespace(route.netns, [&] { r = adminGet(route.address, path); });
    if (!st) return Error{st.error()};
  }
  if (!r && !route.hint.empty()) return Error{r.error() + "; " + route.hint};
  return r;
}

}  // namespace mast::cli
