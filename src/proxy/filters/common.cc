#include "proxy/filters/common.h"

#include <algorithm>
#include <charconv>
#include <limits>

#include "envoy/config/core/v3/base.pb.h"
#include "envoy/config/route/v3/route_components.pb.h"
#include "envoy/type/matcher/v3/string.pb.h"
#include "envoy/type/v3/percent.pb.h"
#include "stats/store.h"

// Deprecated fields (HeaderMatcher.exact_match & co, HeaderValueOption.append) are still sent by
// control planes and must keep working.
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

namespace mast::proxy::filters {

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  http::toLowerInPlace(out);
  return out;
}

bool startsWith(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }
bool endsWith(std::string_view s, std::string_view p) {
  return s.size() >= p.size() && s.substr(s.size() - p.size()) == p;
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

bool StringMatcher::match(std::string_view s) const {
  if (kind == Kind::Regex) return RE2::FullMatch(re2::StringPiece(s.data(), s.size()), *regex);
  std::string folded;
  if (ignore_case) {
    folded = lower(s);
    s = folded;
  }
  switch (kind) {
    case Kind::Exact:
      return s == value;
    case Kind::Prefix:
      return startsWith(s, value);
    case Kind::Suffix:
      return endsWith(s, value);
    case Kind::Contains:
      return s.find(value) != std::string_view::npos;
    case Kind::Regex:
      break;
  }
  return false;
}

Result<StringMatcher> parseStringMatcher(const envoy::type::matcher::v3::StringMatcher& m,
                                         const std::string& path) {
  using SM = envoy::type::matcher::v3::StringMatcher;
  StringMatcher out;
  out.ignore_case = m.ignore_case();
  switch (m.match_pattern_case()) {
    case SM::kExact:
      out.kind = StringMatcher::Kind::Exact;
      out.value = m.exact();
      break;
    case SM::kPrefix:
      if (m.prefix().empty()) return Error{joinPath(path, "prefix") + ": must not be empty"};
      out.kind = StringMatcher::Kind::Prefix;
      out.value = m.prefix();
      break;
    case SM::kSuffix:
      if (m.suffix().empty()) return Error{joinPath(path, "suffix") + ": must not be empty"};
      out.kind = StringMatcher::Kind::Suffix;
      out.value = m.suffix();
      break;
    case SM::kContains:
      if (m.contains().empty()) return Error{joinPath(path, "contains") + ": must not be empty"};
      out.kind = StringMatcher::Kind::Contains;
      out.value = m.contains();
      break;
    case SM::kSafeRegex: {
      out.kind = StringMatcher::Kind::Regex;
      RE2::Options opts;
      opts.set_log_errors(false);
      if (out.ignore_case) opts.set_case_sensitive(false);
      auto re = std::make_shared<RE2>(m.safe_regex().regex(), opts);
      if (!re->ok()) {
        return Error{joinPath(path, "safe_regex.regex") + ": invalid regex '" +
                     m.safe_regex().regex() + "': " + re->error()};
      }
      out.regex = std::move(re);
      break;
    }
    case SM::kCustom:
      return Error{joinPath(path, "custom") + ": custom string matchers are not supported"};
    default:
      return Error{path + ": one of exact, prefix, suffix, contains, safe_regex is required"};
  }
  if (out.ignore_case) http::toLowerInPlace(out.value);
  return out;
}

bool HeaderMatcher::match(const http::HeaderMap& h) const {
  const bool present_in_request = h.has(name);
  if (kind == Kind::Present) return (present_in_request == present) != invert;
  if (!present_in_request && !treat_missing_as_empty) return false;
  std::string value = present_in_request ? h.getJoined(name) : std::string();
  bool m = false;
  if (kind == Kind::String) {
    m = string.match(value);
  } else {
    int64_t v = 0;
    auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
    m = ec == std::errc() && p == value.data() + value.size() && v >= range_start && v < range_end;
  }
  return m != invert;
}

Result<HeaderMatcher> parseHeaderMatcher(const envoy::config::route::v3::HeaderMatcher& m,
                                         const std::string& path) {
  using HM = envoy::config::route::v3::HeaderMatcher;
  HeaderMatcher out;
  if (m.name().empty()) return Error{joinPath(path, "name") + ": must not be empty"};
  out.name = lower(m.name());
  out.invert = m.invert_match();
  out.treat_missing_as_empty = m.treat_missing_header_as_empty();
  auto simple = [&](StringMatcher::Kind k, const std::string& v) {
    out.kind = HeaderMatcher::Kind::String;
    out.string.kind = k;
    out.string.value = v;
  };
  switch (m.header_match_specifier_case()) {
    case HM::kExactMatch:
      simple(StringMatcher::Kind::Exact, m.exact_match());
      break;
    case HM::kPrefixMatch:
      simple(StringMatcher::Kind::Prefix, m.prefix_match());
      break;
    case HM::kSuffixMatch:
      simple(StringMatcher::Kind::Suffix, m.suffix_match());
      break;
    case HM::kContainsMatch:
      simple(StringMatcher::Kind::Contains, m.contains_match());
      break;
    case HM::kSafeRegexMatch: {
      envoy::type::matcher::v3::StringMatcher sm;
      *sm.mutable_safe_regex() = m.safe_regex_match();
      auto s = parseStringMatcher(sm, joinPath(path, "safe_regex_match"));
      if (!s) return Error{s.error()};
      out.kind = HeaderMatcher::Kind::String;
      out.string = std::move(*s);
      break;
    }
    case HM::kStringMatch: {
      auto s = parseStringMatcher(m.string_match(), joinPath(path, "string_match"));
      if (!s) return Error{s.error()};
      out.kind = HeaderMatcher::Kind::String;
      out.string = std::move(*s);
      break;
    }
    case HM::kRangeMatch:
      if (m.range_match().start() >= m.range_match().end()) {
        return Error{joinPath(path, "range_match") + ": start must be less than end"};
      }
      out.kind = HeaderMatcher::Kind::Range;
      out.range_start = m.range_match().start();
      out.range_end = m.range_match().end();
      break;
    case HM::kPresentMatch:
      out.kind = HeaderMatcher::Kind::Present;
      out.present = m.present_match();
      break;
    default:
      // No specifier: the header must be present (Envoy's default).
      out.kind = HeaderMatcher::Kind::Present;
      out.present = true;
  }
  return out;
}

bool matchAllHeaders(const std::vector<HeaderMatcher>& matchers, const http::HeaderMap& h) {
  return std::all_of(matchers.begin(), matchers.end(),
                     [&](const HeaderMatcher& m) { return m.match(h); });
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
