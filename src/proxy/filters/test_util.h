#pragma once
// Test helpers: Envoy config snippets in JSON (as they appear in a bootstrap) → protos → this
// module's registry, exactly the path the server takes.
#include <google/protobuf/any.pb.h>
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.pb.h"
#include "proxy/filters/registry.h"

namespace mast::proxy::filters::testing {

inline envoy::extensions::filters::network::http_connection_manager::v3::HttpFilter httpFilter(
    const std::string& json) {
  envoy::extensions::filters::network::http_connection_manager::v3::HttpFilter f;
  auto st = google::protobuf::util::JsonStringToMessage(json, &f);
  EXPECT_TRUE(st.ok()) << st.ToString() << " in " << json;
  return f;
}

inline google::protobuf::Any anyOf(const std::string& json) {
  google::protobuf::Any a;
  auto st = google::protobuf::util::JsonStringToMessage(json, &a);
  EXPECT_TRUE(st.ok()) << st.ToString() << " in " << json;
  return a;
}

inline std::shared_ptr<const FilterFactory> factoryOf(const std::string& json,
                                                      const FilterContext& ctx) {
  auto f = createFilterFactory(httpFilter(json), "http_filters[0]", ctx);
  EXPECT_TRUE(f.ok()) << (f.ok() ? "" : f.error());
  return f.ok() ? *f : nullptr;
}

inline std::shared_ptr<const void> routeConfigOf(const std::string& name, const std::string& json,
                                                 const FilterContext& ctx) {
  auto c = createPerRouteConfig(name, anyOf(json), "typed_per_filter_config[" + name + "]", ctx);
  EXPECT_TRUE(c.ok()) << (c.ok() ? "" : c.error());
  return c.ok() ? *c : nullptr;
}

inline std::string filterError(const std::string& json) {
  auto f = createFilterFactory(httpFilter(json), "hcm.http_filters[0]");
  return f.ok() ? std::string("<ok>") : f.error();
}

}  // namespace mast::proxy::filters::testing
