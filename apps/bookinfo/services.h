#pragma once
// The four Bookinfo services. Each factory reads the service's environment once at start-up and
// returns its routes and the banner of its "listening on" line, or an error for a malformed
// environment (the process then exits 1 before listening).
#include <string>
#include <vector>

#include "base/result.h"
#include "http_server.h"

namespace mast::bookinfo {

struct Service {
  std::vector<Route> routes;
  std::string banner;
};

// `version` comes from --version or SERVICE_VERSION (unchecked in the latter case).
Result<Service> makeProductpage(const std::string& version);
Result<Service> makeDetails(const std::string& version);
Result<Service> makeReviews(const std::string& version);
Result<Service> makeRatings(const std::string& version);

}  // namespace mast::bookinfo
