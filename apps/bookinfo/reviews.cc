// reviews v1/v2/v3: two reviews of the book; v2 and v3 add each reviewer's stars from ratings
// (black and red). As in Istio's Java service, ENABLE_RATINGS and STAR_COLOR override what the
// version implies, the ratings timeout follows the colour (black 10 s, any other 2.5 s), the
// product id is returned as a string and an unset CLUSTER_NAME as the string "null".
#include <chrono>
#include <cstdlib>
#include <memory>

#include "http_client.h"
#include "services.h"

namespace mast::bookinfo {
namespace {

struct Review {
  const char* reviewer;
  const char* text;
};
constexpr Review kReviews[] = {
    {"Reviewer1",
     "An extremely entertaining play by Shakespeare. The slapstick humour is refreshing!"},
    {"Reviewer2",
     "Absolutely fun and entertaining. The play lacks thematic depth when compared to other "
     "plays by Shakespeare."},
};
constexpr std::string_view kRatingsUnavailable = "Ratings service is currently unavailable";

std::string env(const char* name) {
  const char* value = std::getenv(name);
  return value ? value : "";
}

std::string lower(std::string text) {
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

struct ReviewsConfig {
  bool ratings_enabled = false;
  std::string star_color;
  std::chrono::milliseconds ratings_timeout{10000};
  Upstream ratings;
  std::string podname;
  std::string clustername;
};

// The "ratings" object of the ratings service's answer ({"Reviewer1": 5, ...}); an empty one when
// the answer has none; nullopt when ratings could not be had at all.
std::optional<Json> fetchRatings(const ReviewsConfig& config, const Request& request, int64_t id) {
  Result<UpstreamResponse> response =
      httpGet(config.ratings, "/ratings/" + std::to_string(id), forwardHeaders(request.headers),
              config.ratings_timeout);
  if (!response) {
    logLine("reviews: unable to contact " + config.ratings.baseUrl() + ": " + response.error());
    return std::nullopt;
  }
  if (response->status != 200) {
    logLine("reviews: unable to contact " + config.ratings.baseUrl() + ": got status " +
            std::to_string(response->status));
    return std::nullopt;
  }
  std::optional<Json> body = parseJson(response->body);
  if (!body) return std::nullopt;
  if (body->is_object()) {
    auto it = body->find("ratings");
    if (it != body->end() && it->is_object()) return *it;
  }
  return Json::object();
}

Response reviews(const ReviewsConfig& config, const Request& request,
                 const std::vector<std::string>& captured) {
  std::optional<int64_t> id = parseInteger(captured[0]);
  if (!id) return jsonResponse(404, Json{{"error", "product id must be an integer"}});
  std::optional<Json> ratings;
  if (config.ratings_enabled) ratings = fetchRatings(config, request, *id);
  Json out = Json::array();
  for (const Review& review : kReviews) {
    Json entry{{"reviewer", review.reviewer}, {"text", review.text}};
    if (config.ratings_enabled) {
      const Json* stars = nullptr;
      if (ratings) {
        auto it = ratings->find(review.reviewer);
        if (it != ratings->end()) stars = &*it;
      }
      // Only whole numbers count as stars (not 4.5, not true).
      if (stars && stars->is_number_integer()) {
        entry["rating"] = Json{{"stars", *stars}, {"color", config.star_color}};
      } else {
        entry["rating"] = Json{{"error", kRatingsUnavailable}};
      }
    }
    out.push_back(std::move(entry));
  }
  return jsonResponse(200, Json{{"id", std::to_string(*id)},
                                {"podname", config.podname},
                                {"clustername", config.clustername},
                                {"reviews", std::move(out)}});
}

}  // namespace

Result<Service> makeReviews(const std::string& version) {
  auto config = std::make_shared<ReviewsConfig>();
  config->ratings_enabled = version == "v2" || version == "v3";
  if (const char* enable = std::getenv("ENABLE_RATINGS")) {
    config->ratings_enabled = lower(enable) == "true";
  }
  config->star_color = env("STAR_COLOR");
  if (config->star_color.empty()) config->star_color = version == "v3" ? "red" : "black";
  config->ratings_timeout = config->star_color == "black" ? std::chrono::milliseconds(10000)
                                                          : std::chrono::milliseconds(2500);
  Result<Upstream> ratings = upstreamFromEnv("ratings");
  if (!ratings) return Error{ratings.error()};
  config->ratings = std::move(*ratings);
  config->podname = env("POD_NAME");
  if (config->podname.empty()) config->podname = env("HOSTNAME");
  if (config->podname.empty()) config->podname = "reviews-" + version;
  config->clustername = env("CLUSTER_NAME");
  if (config->clustername.empty()) config->clustername = "null";

  Service service;
  service.banner = version + ", ratings ";
  if (config->ratings_enabled) {
    service.banner += config->star_color + " stars via " + config->ratings.connect_host + ":" +
                      std::to_string(config->ratings.connect_port) + " (Host " +
                      config->ratings.authority + ")";
  } else {
    service.banner += "off";
  }
  service.routes = {
      {"GET", "/reviews/*",
       [config](const Request& request, const std::vector<std::string>& captured) {
         return reviews(*config, request, captured);
       }},
      {"GET", "/health",
       [](const Request&, const std::vector<std::string>&) {
         return jsonResponse(200, Json{{"status", "Reviews is healthy"}});
       }},
  };
  return service;
}

}  // namespace mast::bookinfo
