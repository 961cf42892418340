#pragma once
// `mastctl analyze`: cross-resource checks over a config snapshot, with Istio's message codes
// where the meaning is the same. Pure.
#include <string>
#include <vector>

#include "control/config/store.h"

namespace mast::control::server {

struct AnalysisMessage {
  std::string level;     // "Error" | "Warning" | "Info"
  std::string code;      // "IST0101"
  std::string resource;  // "VirtualService default/reviews"
  std::string message;
  // istioctl's line: Error [IST0101] (VirtualService default/reviews) Referenced ...
  std::string toString() const;
};

std::vector<AnalysisMessage> analyze(const config::ConfigSnapshot& snapshot);

}  // namespace mast::control::server
