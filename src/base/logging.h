#pragma once
// Process-wide logger (spdlog). Levels follow Envoy's names: trace debug info warning error
// critical off. Safe from any thread.
#include <spdlog/spdlog.h>

#include <string_view>

namespace mast::log {

void init(std::string_view level);
// Returns false for an unknown level name.
bool setLevel(std::string_view level);
std::string_view levelName();

}  // namespace mast::log

#define MAST_LOG(lvl, ...) SPDLOG_##lvl(__VA_ARGS__)
