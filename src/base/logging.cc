#include "base/logging.h"

#include <spdlog/sinks/stdout_color_sinks.h>

namespace mast::log {

static bool parse(std::string_view name, spdlog::level::level_enum& out) {
  if (name == "warning") name = "warn";
  if (name == "error") name = "err";
  auto lvl = spdlog::level::from_str(std::string(name));
  if (lvl == spdlog::level::off && name != "off") return false;
  out = lvl;
  return true;
}

void init(std::string_view level) {
  auto logger = spdlog::stderr_color_mt("mast");
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("[%Y-%m-%d %H:%M:%S.%e][%t][%^%l%$] %v");
  setLevel(level);
}

bool setLevel(std::string_view level) {
  spdlog::level::level_enum lvl;
  if (!parse(level, lvl)) return false;
  spdlog::set_level(lvl);
  return true;
}

std::string_view levelName() {
  auto sv = spdlog::level::to_string_view(spdlog::get_level());
  std::string_view s(sv.data(), sv.size());
  if (s == "warn") return "warning";
  if (s == "err") return "error";
  return s;
}

}  // namespace mast::log
