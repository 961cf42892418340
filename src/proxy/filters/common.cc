#include "proxy/filters/common.h"

#include <charconv>

#include "envoy/config/core/v3/base.pb.h"
#include "envoy/type/v3/percent.pb.h"
#include "stats/store.h"

// The deprecated HeaderValueOption.append is still sent by control planes and must keep working.
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

namespace mast::proxy::filters {

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  http::toLowerInPlace(out);
  return out;
}

}  // namespace

std::string joinPath(std::string_view base, std::string_view field) {
  if (base.empty()) return std::string(field);
  std::string out(base);
  out += '.';
  out += field;
  return out;
}

Percentage parsePercentage(const envoy::type::v3::FractionalPercent& p) {
  Percentage out;
  out.numerator = p.numerator();
  switch (p.denominator()) {
    case envoy::type::v3::FractionalPercent::TEN_THOUSAND:
      out.denominator = 10000;
      break;
    case envoy::type::v3::FractionalPercent::MILLION:
      out.denominator = 1000000;
      break;
    default:
      out.denominator = 100;
  }
  return out;
}

void HeaderMutation::apply(http::HeaderMap& h) const {
  if (value.empty() && !keep_empty_value) return;
  switch (action) {
    case Action::AppendOrAdd:
      h.add(name, value);
      break;
    case Action::AddIfAbsent:
      h.setIfAbsent(name, value);
      break;
    case Action::OverwriteOrAdd:
      h.set(name, value);
      break;
    case Action::OverwriteIfExists:
      if (h.has(name)) h.set(name, value);
      break;
  }
}

Result<std::vector<HeaderMutation>> parseHeaderMutations(
    const google::protobuf::RepeatedPtrField<envoy::config::core::v3::HeaderValueOption>& opts,
    const std::string& path) {
  using HVO = envoy::config::core::v3::HeaderValueOption;
  std::vector<HeaderMutation> out;
  for (int i = 0; i < opts.size(); ++i) {
    const auto& o = opts.Get(i);
    std::string p = path + "[" + std::to_string(i) + "]";
    HeaderMutation m;
    m.name = lower(o.header().key());
    if (m.name.empty()) return Error{p + ".header.key: must not be empty"};
    if (m.name[0] == ':' || m.name == "host") {
      return Error{p + ".header.key: '" + m.name + "' may not be modified"};
    }
    m.value = o.header().value().empty() ? o.header().raw_value() : o.header().value();
    m.keep_empty_value = o.keep_empty_value();
    if (o.has_append()) {
      m.action = o.append().value() ? HeaderMutation::Action::AppendOrAdd
                                    : HeaderMutation::Action::OverwriteOrAdd;
    } else {
      switch (o.append_action()) {
        case HVO::ADD_IF_ABSENT:
          m.action = HeaderMutation::Action::AddIfAbsent;
          break;
        case HVO::OVERWRITE_IF_EXISTS_OR_ADD:
          m.action = HeaderMutation::Action::OverwriteOrAdd;
          break;
        case HVO::OVERWRITE_IF_EXISTS:
          m.action = HeaderMutation::Action::OverwriteIfExists;
          break;
        default:
          m.action = HeaderMutation::Action::AppendOrAdd;
      }
    }
    out.push_back(std::move(m));
  }
  return out;
}

void applyHeaderMutations(const std::vector<HeaderMutation>& m, http::HeaderMap& h) {
  for (const auto& x : m) x.apply(h);
}

bool isGrpcRequest(const http::HeaderMap& h) {
  std::string_view ct = h.getOr("content-type");
  constexpr std::string_view kGrpc = "application/grpc";
  if (ct.size() < kGrpc.size() || !http::iequals(ct.substr(0, kGrpc.size()), kGrpc)) return false;
  return ct.size() == kGrpc.size() || ct[kGrpc.size()] == '+' || ct[kGrpc.size()] == ';';
}

bool parseUint(std::string_view s, uint64_t& out) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}

StatsRoot::StatsRoot(stats::Store* store) {
  if (store == nullptr) {
    owned_ = std::make_shared<stats::Store>(1);
    store = owned_.get();
  }
  store_ = store;
}

}  // namespace mast::proxy::filters
