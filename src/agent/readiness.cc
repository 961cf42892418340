#include "agent/readiness.h"

#include "agent/http.h"

namespace mast::agent {
namespace {

std::string trim(std::string_view s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) {
    s.remove_suffix(1);
  }
  return std::string(s);
}

const nlohmann::json* dumpOf(const nlohmann::json& dump, std::string_view type_suffix) {
  if (!dump.is_object() || !dump.contains("configs") || !dump["configs"].is_array()) return nullptr;
  for (const auto& c : dump["configs"]) {
    auto t = c.value("@type", std::string());
    if (t.size() >= type_suffix.size() &&
        t.compare(t.size() - type_suffix.size(), type_suffix.size(), type_suffix) == 0) {
      return &c;
    }
  }
  return nullptr;
}

}  // namespace

Readiness evaluateReadiness(int ready_status, std::string_view ready_body,
                            const nlohmann::json& config_dump) {
  std::string state = trim(ready_body);
  if (ready_status != 200 || state != "LIVE") {
    return {false, "proxy state " + (state.empty() ? std::to_string(ready_status) : state)};
  }
  const auto* clusters = dumpOf(config_dump, ".ClustersConfigDump");
  if (!clusters || clusters->value("version_info", std::string()).empty()) {
    return {false, "no clusters (CDS) accepted yet"};
  }
  const auto* listeners = dumpOf(config_dump, ".ListenersConfigDump");
  if (!listeners || listeners->value("version_info", std::string()).empty()) {
    return {false, "no listeners (LDS) accepted yet"};
  }
  auto dl = listeners->find("dynamic_listeners");
  if (dl == listeners->end() || !dl->is_array() || dl->empty()) {
    return {false, "no dynamic listeners"};
  }
  return {true, ""};
}

Readiness probeProxy(uint16_t admin_port, std::chrono::milliseconds timeout) {
  auto ready = httpRequest("127.0.0.1", admin_port, "GET", "/ready", {}, timeout);
  if (!ready) return {false, "proxy admin unreachable: " + ready.error()};
  if (ready->status != 200) return evaluateReadiness(ready->status, ready->body, {});
  auto dump = httpRequest("127.0.0.1", admin_port, "GET", "/config_dump", {}, timeout);
  if (!dump) return {false, "proxy admin unreachable: " + dump.error()};
  auto parsed = nlohmann::json::parse(dump->body, nullptr, false);
  if (dump->status != 200 || parsed.is_discarded()) {
    return {false, "bad /config_dump from the proxy (status " + std::to_string(dump->status) + ")"};
  }
  return evaluateReadiness(ready->status, ready->body, parsed);
}

}  // namespace mast::agent
