#include "control/xds/type_urls.h"

namespace mast::control::xds {

bool isWildcardType(std::string_view type_url) {
  return type_url == kListenerType || type_url == kClusterType;
}

int pushRank(std::string_view type_url) {
  if (type_url == kSecretType) return 0;
  if (type_url == kClusterType) return 1;
  if (type_url == kEndpointType) return 2;
  if (type_url == kListenerType) return 3;
  if (type_url == kRouteType) return 4;
  return 5;
}

std::string shortTypeName(std::string_view type_url) {
  if (type_url == kSecretType) return "SDS";
  if (type_url == kClusterType) return "CDS";
  if (type_url == kEndpointType) return "EDS";
  if (type_url == kListenerType) return "LDS";
  if (type_url == kRouteType) return "RDS";
  auto slash = type_url.rfind('/');
  return std::string(slash == std::string_view::npos ? type_url : type_url.substr(slash + 1));
}

}  // namespace mast::control::xds
