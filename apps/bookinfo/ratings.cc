// ratings: star ratings per product, in memory (a POST replaces them), with Istio's failure
// variants v-faulty, v-delayed and v-unavailable for the resilience tasks.
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <thread>

#include "services.h"

namespace mast::bookinfo {
namespace {

class Ratings {
 public:
  explicit Ratings(std::string version)
      : version_(std::move(version)), started_(std::chrono::steady_clock::now()) {}

  Response get(const std::vector<std::string>& captured) {
    std::optional<int64_t> id = parseInteger(captured[0]);
    if (!id) return badId();
    if (version_ == "v-faulty" && coinFlip()) {
      return jsonResponse(503, Json{{"error", "Service unavailable"}});
    }
    if (version_ == "v-delayed" && coinFlip()) std::this_thread::sleep_for(std::chrono::seconds(7));
    if (version_ == "v-unavailable" && unavailableMinute()) {
      return jsonResponse(503, Json{{"error", "Service unavailable"}});
    }
    return jsonResponse(200, ratingsFor(*id));
  }

  Response post(const Request& request, const std::vector<std::string>& captured) {
    std::optional<int64_t> id = parseInteger(captured[0]);
    if (!id) return badId();
    std::optional<Json> ratings = parseJson(request.body);
    if (!ratings || !ratings->is_object()) {
      return jsonResponse(400, Json{{"error", "please provide valid ratings JSON"}});
    }
    Json entry{{"id", *id}, {"ratings", std::move(*ratings)}};
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stored_[*id] = entry;
    }
    return jsonResponse(200, entry);
  }

 private:
  static Response badId() {
    return jsonResponse(400, Json{{"error", "please provide numeric product ID"}});
  }

  Json ratingsFor(int64_t id) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (auto it = stored_.find(id); it != stored_.end()) return it->second;
    }
    return Json{{"id", id}, {"ratings", {{"Reviewer1", 5}, {"Reviewer2", 4}}}};
  }

  // True for half of the requests.
  bool coinFlip() {
    std::lock_guard<std::mutex> lock(mutex_);
    return std::uniform_real_distribution<double>(0.0, 1.0)(random_) <= 0.5;
  }

  // v-unavailable serves during even minutes since start and fails during odd ones.
  bool unavailableMinute() const {
    auto minutes = std::chrono::duration_cast<std::chrono::minutes>(
        std::chrono::steady_clock::now() - started_);
    return minutes.count() % 2 == 1;
  }

  const std::string version_;
  const std::chrono::steady_clock::time_point started_;
  std::mutex mutex_;  // guards stored_ and random_ (requests run on many threads)
  std::map<int64_t, Json> stored_;
  std::mt19937_64 random_{std::random_device{}()};
};

}  // namespace

Result<Service> makeRatings(const std::string& version) {
  auto ratings = std::make_shared<Ratings>(version);
  Service service;
  service.banner = version;
  service.routes = {
      {"GET", "/ratings/*",
       [ratings](const Request&, const std::vector<std::string>& captured) {
         return ratings->get(captured);
       }},
      {"POST", "/ratings/*",
       [ratings](const Request& request, const std::vector<std::string>& captured) {
         return ratings->post(request, captured);
       }},
      {"GET", "/health",
       [](const Request&, const std::vector<std::string>&) {
         return jsonResponse(200, Json{{"status", "Ratings is healthy"}});
       }},
  };
  return service;
}

}  // namespace mast::bookinfo
