#include "control/model/host.h"

#include <arpa/inet.h>

#include <algorithm>

namespace mast::control::model {

std::string toLower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

bool isIpAddress(std::string_view s) {
  std::string str(s);
  in_addr a4;
  in6_addr a6;
  return inet_pton(AF_INET, str.c_str(), &a4) == 1 || inet_pton(AF_INET6, str.c_str(), &a6) == 1;
}

std::string resolveShortName(std::string_view host, std::string_view ns, std::string_view suffix) {
  std::string h = toLower(host);
  if (h.empty() || h == "*" || h.find('.') != std::string::npos || isIpAddress(h)) return h;
  return h + "." + std::string(ns) + ".svc." + std::string(suffix);
}

namespace {

// Host names are ASCII (IDNs arrive punycoded): compare without allocating lower-case copies,
// since translation calls this for every (VirtualService host, service) pair.
char asciiLower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool equalsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (asciiLower(a[i]) != asciiLower(b[i])) return false;
  }
  return true;
}

}  // namespace

bool hostMatches(std::string_view pattern, std::string_view host) {
  if (pattern == "*") return true;
  if (pattern.size() > 1 && pattern[0] == '*') {
    std::string_view suffix = pattern.substr(1);  // ".example.com"
    // A wildcard host is matched only by a pattern at least as broad as itself.
    if (host.size() > 1 && host[0] == '*') {
      host.remove_prefix(1);
    } else if (host.size() <= suffix.size()) {
      return false;
    }
    return host.size() >= suffix.size() &&
           equalsIgnoreCase(host.substr(host.size() - suffix.size()), suffix);
  }
  return equalsIgnoreCase(pattern, host);
}

bool hostsOverlap(std::string_view a, std::string_view b) {
  return hostMatches(a, b) || hostMatches(b, a);
}

bool isExportedTo(const std::vector<std::string>& export_to,
                  const std::vector<std::string>& defaults, std::string_view owner_ns,
                  std::string_view target_ns) {
  const std::vector<std::string>& list = export_to.empty() ? defaults : export_to;
  if (list.empty()) return true;  // Istio's built-in default is "*"
  for (const auto& e : list) {
    if (e == "*") return true;
    if (e == "~") continue;
    if (e == "." && owner_ns == target_ns) return true;
    if (e == target_ns) return true;
  }
  return false;
}

bool labelsMatch(const std::map<std::string, std::string>& selector,
                 const std::map<std::string, std::string>& labels) {
  for (const auto& [k, v] : selector) {
    auto it = labels.find(k);
    if (it == labels.end() || it->second != v) return false;
  }
  return true;
}

}  // namespace mast::control::model
