#pragma once
// Merging Prometheus text expositions (the proxy's /stats/prometheus, the application's metrics,
// the agent's own) into one scrape, as Istio's agent does on :15020/stats/prometheus.
#include <string>
#include <string_view>
#include <vector>

namespace mast::agent {

// Concatenates the expositions family by family: a metric family that appears in several inputs
// keeps one `# HELP` and one `# TYPE` line (the first seen) and all of its samples, grouped, so
// the result never has two TYPE lines for a name. OpenMetrics `# EOF` markers are dropped.
std::string mergePrometheus(const std::vector<std::string_view>& expositions);

}  // namespace mast::agent
