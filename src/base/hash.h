#pragma once
// xxHash64: deterministic across processes and machines (hash policies, ring hash, maglev).
#include <cstdint>
#include <string_view>

namespace mast {

uint64_t xxHash64(std::string_view data, uint64_t seed = 0);

}  // namespace mast
