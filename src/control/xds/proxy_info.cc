#include "control/xds/proxy_info.h"

#include <google/protobuf/util/json_util.h>

namespace mast::control::xds {
namespace {

std::vector<std::string> split(std::string_view s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    size_t pos = s.find(sep, start);
    out.emplace_back(s.substr(start, pos == std::string_view::npos ? pos : pos - start));
    if (pos == std::string_view::npos) break;
    start = pos + 1;
  }
  return out;
}

std::string valueToString(const google::protobuf::Value& v) {
  if (v.kind_case() == google::protobuf::Value::kStringValue) return v.string_value();
  std::string json;
  if (!google::protobuf::util::MessageToJsonString(v, &json).ok()) return {};
  return json;
}

}  // namespace

std::string_view proxyTypeName(ProxyType type) {
  switch (type) {
    case ProxyType::kSidecar:
      return "sidecar";
    case ProxyType::kRouter:
      return "router";
    case ProxyType::kUnknown:
      break;
  }
  return "unknown";
}

Result<ProxyInfo> parseProxyInfo(const envoy::config::core::v3::Node& node) {
  if (node.id().empty()) return Error{"node.id is empty"};
  ProxyInfo info;
  info.id = node.id();
  info.cluster = node.cluster();
  info.node = node;
  info.user_agent = node.user_agent_name();
  if (node.has_user_agent_build_version()) {
    const auto& v = node.user_agent_build_version().version();
    info.user_agent += " " + std::to_string(v.major_number()) + "." +
                       std::to_string(v.minor_number()) + "." + std::to_string(v.patch());
  } else if (!node.user_agent_version().empty()) {
    info.user_agent += " " + node.user_agent_version();
  }

  const auto& fields = node.metadata().fields();
  for (const auto& [key, value] : fields) info.metadata[key] = valueToString(value);
  auto str = [&](const char* key) -> std::string {
    auto it = fields.find(key);
    if (it == fields.end() || it->second.kind_case() != google::protobuf::Value::kStringValue) {
      return {};
    }
    return it->second.string_value();
  };
  if (auto it = fields.find("LABELS");
      it != fields.end() && it->second.kind_case() == google::protobuf::Value::kStructValue) {
    for (const auto& [k, v] : it->second.struct_value().fields()) info.labels[k] = valueToString(v);
  }
  info.namespace_ = str("NAMESPACE");
  info.service_account = str("SERVICE_ACCOUNT");
  info.workload_name = str("WORKLOAD_NAME");
  info.cluster_id = str("CLUSTER_ID");
  info.istio_version = str("ISTIO_VERSION");
  info.generator = str("GENERATOR");
  info.proxyless = info.generator == "grpc";
  if (auto ips = str("INSTANCE_IPS"); !ips.empty()) {
    for (auto& ip : split(ips, ',')) {
      if (!ip.empty()) info.ips.push_back(ip);
    }
  }

  // Istio: TYPE~IP~NAME.NAMESPACE~DNS_DOMAIN. Anything else is an opaque id.
  auto parts = split(node.id(), '~');
  if (parts.size() == 4 && (parts[0] == "sidecar" || parts[0] == "router") && !parts[1].empty() &&
      !parts[2].empty()) {
    info.istio_id = true;
    info.type = parts[0] == "sidecar" ? ProxyType::kSidecar : ProxyType::kRouter;
    info.ip = parts[1];
    info.dns_domain = parts[3];
    auto dot = parts[2].find('.');
    info.name = parts[2].substr(0, dot);
    if (info.namespace_.empty() && dot != std::string::npos) {
      auto rest = parts[2].substr(dot + 1);
      info.namespace_ = rest.substr(0, rest.find('.'));
    }
    if (info.ips.empty()) info.ips.push_back(info.ip);
  }
  return info;
}

}  // namespace mast::control::xds
