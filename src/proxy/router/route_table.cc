#include "proxy/router/route_table.h"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "envoy/config/route/v3/route.pb.h"

// The deprecated HeaderMatcher fields (exact_match, prefix_match, ...) are still sent by control
// planes (gRPC clients only accept those) and must keep working.
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

namespace mast::router {

namespace rv3 = envoy::config::route::v3;

// === Matchers ===

namespace {

std::string lower(std::string_view s) {
  std::string o(s);
  http::toLowerInPlace(o);
  return o;
}

bool startsWith(std::string_view s, std::string_view p, bool ci = false) {
  if (s.size() < p.size()) return false;
  return ci ? http::iequals(s.substr(0, p.size()), p) : s.substr(0, p.size()) == p;
}
bool endsWith(std::string_view s, std::string_view p, bool ci = false) {
  if (s.size() < p.size()) return false;
  return ci ? http::iequals(s.substr(s.size() - p.size()), p) : s.substr(s.size() - p.size()) == p;
}

Result<std::shared_ptr<const RE2>> compileRegex(const std::string& pattern,
                                                const std::string& path) {
  auto re = std::make_shared<const RE2>(pattern, RE2::Quiet);
  if (!re->ok()) return Error{path + ": invalid regex '" + pattern + "': " + re->error()};
  return std::shared_ptr<const RE2>(re);
}

// "base.field", or "field" when base is empty (callers may pass an empty path).
std::string join(const std::string& base, std::string_view field) {
  if (base.empty()) return std::string(field);
  return base + "." + std::string(field);
}

Result<StringMatcher> simpleMatcher(StringMatcher::Kind kind, const std::string& value,
                                    bool ignore_case, const std::string& path,
                                    std::string_view field) {
  if (kind != StringMatcher::Kind::Exact && value.empty()) {
    return Error{join(path, field) + ": must not be empty"};
  }
  StringMatcher s;
  s.kind = kind;
  s.value = value;
  s.ignore_case = ignore_case;
  if (ignore_case) http::toLowerInPlace(s.value);
  return s;
}

Result<StringMatcher> regexMatcher(const std::string& pattern, const std::string& path) {
  auto re = compileRegex(pattern, path);
  if (!re) return Error{re.error()};
  StringMatcher s;
  s.kind = StringMatcher::Kind::Regex;
  s.regex = std::move(*re);
  return s;
}

}  // namespace

Result<StringMatcher> parseStringMatcher(const envoy::type::matcher::v3::StringMatcher& m,
                                         const std::string& path) {
  using SM = envoy::type::matcher::v3::StringMatcher;
  using K = StringMatcher::Kind;
  const bool ic = m.ignore_case();
  switch (m.match_pattern_case()) {
    case SM::kExact:
      return simpleMatcher(K::Exact, m.exact(), ic, path, "exact");
    case SM::kPrefix:
      return simpleMatcher(K::Prefix, m.prefix(), ic, path, "prefix");
    case SM::kSuffix:
      return simpleMatcher(K::Suffix, m.suffix(), ic, path, "suffix");
    case SM::kContains:
      return simpleMatcher(K::Contains, m.contains(), ic, path, "contains");
    case SM::kSafeRegex:
      return regexMatcher(m.safe_regex().regex(), join(path, "safe_regex.regex"));
    case SM::kCustom:
      return Error{join(path, "custom") + ": custom string matchers are not supported"};
    default:
      return Error{(path.empty() ? std::string("string matcher") : path) +
                   ": one of exact, prefix, suffix, contains, safe_regex is required"};
  }
}

Result<HeaderMatcher> parseHeaderMatcher(const rv3::HeaderMatcher& m, const std::string& path) {
  using HM = rv3::HeaderMatcher;
  using K = StringMatcher::Kind;
  HeaderMatcher h;
  if (m.name().empty()) return Error{join(path, "name") + ": must not be empty"};
  h.name = lower(m.name());
  h.invert = m.invert_match();
  h.treat_missing_as_empty = m.treat_missing_header_as_empty();
  Result<StringMatcher> s = StringMatcher{};
  switch (m.header_match_specifier_case()) {
    case HM::kExactMatch:
      s = simpleMatcher(K::Exact, m.exact_match(), false, path, "exact_match");
      break;
    case HM::kPrefixMatch:
      s = simpleMatcher(K::Prefix, m.prefix_match(), false, path, "prefix_match");
      break;
    case HM::kSuffixMatch:
      s = simpleMatcher(K::Suffix, m.suffix_match(), false, path, "suffix_match");
      break;
    case HM::kContainsMatch:
      s = simpleMatcher(K::Contains, m.contains_match(), false, path, "contains_match");
      break;
    case HM::kSafeRegexMatch:
      s = regexMatcher(m.safe_regex_match().regex(), join(path, "safe_regex_match.regex"));
      break;
    case HM::kStringMatch:
      s = parseStringMatcher(m.string_match(), join(path, "string_match"));
      break;
    case HM::kRangeMatch:
      if (m.range_match().start() >= m.range_match().end()) {
        return Error{join(path, "range_match") + ": start must be less than end"};
      }
      h.kind = HeaderMatcher::Kind::Range;
      h.range_start = m.range_match().start();
      h.range_end = m.range_match().end();
      return h;
    case HM::kPresentMatch:
      h.kind = HeaderMatcher::Kind::Present;
      h.present = m.present_match();
      return h;
    default:
      // No specifier: the header must be present (Envoy's default).
      h.kind = HeaderMatcher::Kind::Present;
      h.present = true;
      return h;
  }
  if (!s) return Error{s.error()};
  h.kind = HeaderMatcher::Kind::String;
  h.string = std::move(*s);
  return h;
}

bool matchAllHeaders(const std::vector<HeaderMatcher>& matchers, const http::HeaderMap& h) {
  return std::all_of(matchers.begin(), matchers.end(),
                     [&](const HeaderMatcher& m) { return m.match(h); });
}

Result<QueryParameterMatcher> parseQueryParameterMatcher(const rv3::QueryParameterMatcher& m,
                                                         const std::string& path) {
  if (m.name().empty()) return Error{join(path, "name") + ": must not be empty"};
  QueryParameterMatcher q;
  q.name = m.name();
  if (m.has_string_match()) {
    auto s = parseStringMatcher(m.string_match(), join(path, "string_match"));
    if (!s) return Error{s.error()};
    q.string = std::move(*s);
  }
  return q;
}

bool StringMatcher::match(std::string_view s) const {
  switch (kind) {
    case Kind::Exact:
      return ignore_case ? http::iequals(s, value) : s == value;
    case Kind::Prefix:
      return startsWith(s, value, ignore_case);
    case Kind::Suffix:
      return endsWith(s, value, ignore_case);
    case Kind::Contains:
      if (!ignore_case) return s.find(value) != std::string_view::npos;
      return lower(s).find(value) != std::string::npos;  // `value` is lower-case already
    case Kind::Regex:
      return RE2::FullMatch(re2::StringPiece(s.data(), s.size()), *regex);
  }
  return false;
}

// Envoy's order: a missing header (not treated as empty) decides on its own, without running the
// specific matcher; only present_match can match it, and invert_match swaps which of
// present_match true/false does. Otherwise the specific result is inverted.
bool HeaderMatcher::match(const http::HeaderMap& h) const {
  const std::string* v = h.get(name);
  if (!v && !treat_missing_as_empty) return kind == Kind::Present && present == invert;
  bool m;
  if (kind == Kind::Present) {
    m = present;
  } else {
    std::string joined;
    if (v && h.getAll(name).size() > 1) {
      joined = h.getJoined(name);
      v = &joined;
    }
    std::string_view value = v ? std::string_view(*v) : std::string_view();
    if (kind == Kind::String) {
      m = string.match(value);
    } else {
      int64_t n = 0;
      auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
      m = ec == std::errc() && p == value.data() + value.size() && n >= range_start &&
          n < range_end;
    }
  }
  return m != invert;
}

bool QueryParameterMatcher::match(std::string_view query) const {
  size_t start = 0;
  while (start <= query.size()) {
    size_t amp = query.find('&', start);
    if (amp == std::string_view::npos) amp = query.size();
    std::string_view kv = query.substr(start, amp - start);
    size_t eq = kv.find('=');
    std::string_view k = kv.substr(0, eq);
    if (k == name) {
      if (!string) return true;
      std::string_view v = eq == std::string_view::npos ? std::string_view() : kv.substr(eq + 1);
      return string->match(v);
    }
    start = amp + 1;
  }
  return false;
}

namespace {

std::chrono::milliseconds toMs(const google::protobuf::Duration& d) {
  return std::chrono::milliseconds(d.seconds() * 1000 + d.nanos() / 1000000);
}

uint32_t denominatorOf(int d) {
  switch (d) {
    case 1:
      return 10000;
    case 2:
      return 1000000;
    default:
      return 100;
  }
}

Result<HeaderMutations> parseMutations(
    const google::protobuf::RepeatedPtrField<envoy::config::core::v3::HeaderValueOption>& add,
    const google::protobuf::RepeatedPtrField<std::string>& remove, const std::string& path) {
  HeaderMutations m;
  int i = 0;
  for (const auto& o : add) {
    HeaderValueOption v;
    v.name = lower(o.header().key());
    v.value = o.header().value().empty() ? o.header().raw_value() : o.header().value();
    if (v.name.empty())
      return Error{path + "[" + std::to_string(i) + "].header.key: empty header name"};
    if (o.has_append()) {
      v.action = o.append().value() ? HeaderValueOption::Action::AppendIfExistsOrAdd
                                    : HeaderValueOption::Action::OverwriteIfExistsOrAdd;
    } else {
      switch (o.append_action()) {
        case envoy::config::core::v3::HeaderValueOption::ADD_IF_ABSENT:
          v.action = HeaderValueOption::Action::AddIfAbsent;
          break;
        case envoy::config::core::v3::HeaderValueOption::OVERWRITE_IF_EXISTS_OR_ADD:
          v.action = HeaderValueOption::Action::OverwriteIfExistsOrAdd;
          break;
        case envoy::config::core::v3::HeaderValueOption::OVERWRITE_IF_EXISTS:
          v.action = HeaderValueOption::Action::OverwriteIfExists;
          break;
        default:
          v.action = HeaderValueOption::Action::AppendIfExistsOrAdd;
      }
    }
    v.keep_empty_value = o.keep_empty_value();
    if (v.value.find('%') != std::string::npos) {
      static const char* kKnown[] = {
          "%DOWNSTREAM_REMOTE_ADDRESS%", "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%",
          "%DOWNSTREAM_LOCAL_ADDRESS%",  "%PROTOCOL%",
          "%UPSTREAM_CLUSTER%",          "%%"};
      std::string rest = v.value;
      for (const char* k : kKnown) {
        size_t pos;
        while ((pos = rest.find(k)) != std::string::npos) rest.erase(pos, std::strlen(k));
      }
      if (rest.find('%') != std::string::npos) {
        return Error{path + "[" + std::to_string(i) + "].header.value: unsupported variable in '" +
                     v.value + "'"};
      }
      v.dynamic = true;
    }
    m.add.push_back(std::move(v));
    ++i;
  }
  for (const auto& r : remove) m.remove.push_back(lower(r));
  return m;
}

std::string expand(const std::string& value, const http::StreamInfo* info) {
  if (!info) return value;
  std::string out;
  for (size_t i = 0; i < value.size();) {
    auto rep = [&](std::string_view var, const std::string& v) {
      if (value.compare(i, var.size(), var) == 0) {
        out += v;
        i += var.size();
        return true;
      }
      return false;
    };
    std::string remote = info->downstream_remote_address;
    std::string remote_ip = remote.substr(0, remote.rfind(':'));
    if (!remote_ip.empty() && remote_ip.front() == '[')
      remote_ip = remote_ip.substr(1, remote_ip.size() - 2);
    if (rep("%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%", remote_ip) ||
        rep("%DOWNSTREAM_REMOTE_ADDRESS%", remote) ||
        rep("%DOWNSTREAM_LOCAL_ADDRESS%", info->downstream_local_address) ||
        rep("%PROTOCOL%", std::string(http::protocolString(info->protocol))) ||
        rep("%UPSTREAM_CLUSTER%", info->upstream_cluster) || rep("%%", "%")) {
      continue;
    }
    out += value[i++];
  }
  return out;
}

Result<RetryPolicy> parseRetry(const rv3::RetryPolicy& p, const std::string& path) {
  RetryPolicy r;
  std::string_view on = p.retry_on();
  size_t start = 0;
  while (start < on.size()) {
    size_t c = on.find(',', start);
    if (c == std::string_view::npos) c = on.size();
    std::string_view t = on.substr(start, c - start);
    while (!t.empty() && t.front() == ' ') t.remove_prefix(1);
    while (!t.empty() && t.back() == ' ') t.remove_suffix(1);
    if (t == "5xx")
      r.retry_on |= kRetry5xx;
    else if (t == "gateway-error")
      r.retry_on |= kRetryGatewayError;
    else if (t == "reset" || t == "reset-before-request")
      r.retry_on |= kRetryReset;
    else if (t == "connect-failure")
      r.retry_on |= kRetryConnectFailure;
    else if (t == "retriable-4xx")
      r.retry_on |= kRetryRetriable4xx;
    else if (t == "refused-stream")
      r.retry_on |= kRetryRefusedStream;
    else if (t == "retriable-status-codes")
      r.retry_on |= kRetryRetriableStatusCodes;
    else if (t == "retriable-headers")
      r.retry_on |= kRetryRetriableHeaders;
    else if (t == "envoy-ratelimited")
      r.retry_on |= kRetryEnvoyRateLimited;
    else if (t == "cancelled" || t == "deadline-exceeded" || t == "internal" ||
             t == "resource-exhausted" || t == "unavailable" || t == "http3-post-connect-failure") {
      // gRPC retry conditions: accepted; gRPC statuses are not retried yet.
    } else if (!t.empty()) {
      return Error{path + ".retry_on: unknown retry condition '" + std::string(t) + "'"};
    }
    start = c + 1;
  }
  if (p.has_num_retries()) r.num_retries = p.num_retries().value();
  if (p.has_per_try_timeout()) r.per_try_timeout = toMs(p.per_try_timeout());
  if (p.has_retry_back_off()) {
    r.back_off_base = toMs(p.retry_back_off().base_interval());
    r.back_off_max = p.retry_back_off().has_max_interval() ? toMs(p.retry_back_off().max_interval())
                                                           : r.back_off_base * 10;
  }
  for (uint32_t c : p.retriable_status_codes()) r.retriable_status_codes.push_back(c);
  int i = 0;
  for (const auto& h : p.retriable_headers()) {
    auto m = parseHeaderMatcher(h, path + ".retriable_headers[" + std::to_string(i++) + "]");
    if (!m) return Error{m.error()};
    r.retriable_headers.push_back(*m);
  }
  r.host_selection_retry_max_attempts =
      p.host_selection_retry_max_attempts() ? p.host_selection_retry_max_attempts() : 1;
  return r;
}

Result<std::map<std::string, std::shared_ptr<const void>, std::less<>>> parsePerFilter(
    const google::protobuf::Map<std::string, google::protobuf::Any>& m,
    const PerFilterConfigFactory& f, const std::string& path) {
  std::map<std::string, std::shared_ptr<const void>, std::less<>> out;
  for (const auto& [name, any] : m) {
    if (!f) continue;
    auto c = f(name, any);
    if (!c) return Error{path + ".typed_per_filter_config[" + name + "]: " + c.error()};
    if (*c) out[name] = *c;
  }
  return out;
}

}  // namespace

bool RetryPolicy::retriableStatus(int status, const http::HeaderMap& headers) const {
  if ((retry_on & kRetry5xx) && status >= 500) return true;
  if ((retry_on & kRetryGatewayError) && (status == 502 || status == 503 || status == 504)) {
    return true;
  }
  if ((retry_on & kRetryRetriable4xx) && status == 409) return true;
  if ((retry_on & kRetryEnvoyRateLimited) && headers.has("x-envoy-ratelimited")) return true;
  if (retry_on & kRetryRetriableStatusCodes) {
    for (uint32_t c : retriable_status_codes) {
      if (static_cast<int>(c) == status) return true;
    }
  }
  if (retry_on & kRetryRetriableHeaders) {
    for (const auto& m : retriable_headers) {
      if (m.match(headers)) return true;
    }
  }
  return false;
}

bool RetryPolicy::retriableReset(bool connect_failure, bool refused_stream) const {
  if (retry_on & (kRetry5xx | kRetryGatewayError | kRetryReset)) return true;
  if (connect_failure && (retry_on & kRetryConnectFailure)) return true;
  if (refused_stream && (retry_on & kRetryRefusedStream)) return true;
  return false;
}

void HeaderMutations::apply(http::HeaderMap& h, const http::StreamInfo* info) const {
  for (const auto& r : remove) h.remove(r);
  for (const auto& a : add) {
    std::string v = a.dynamic ? expand(a.value, info) : a.value;
    if (v.empty() && !a.keep_empty_value) continue;
    switch (a.action) {
      case HeaderValueOption::Action::AppendIfExistsOrAdd:
        h.add(a.name, v);
        break;
      case HeaderValueOption::Action::AddIfAbsent:
        h.setIfAbsent(a.name, v);
        break;
      case HeaderValueOption::Action::OverwriteIfExistsOrAdd:
        h.set(a.name, v);
        break;
      case HeaderValueOption::Action::OverwriteIfExists:
        if (h.has(a.name)) h.set(a.name, v);
        break;
    }
  }
}

// === RouteEntry ===

bool RouteEntry::matches(const http::HeaderMap& h, std::string_view path, uint64_t random) const {
  switch (path_kind_) {
    case PathKind::Prefix:
      if (!startsWith(path, path_value_, !case_sensitive_)) return false;
      break;
    case PathKind::Path:
      if (case_sensitive_ ? path != path_value_ : !http::iequals(path, path_value_)) return false;
      break;
    case PathKind::Regex:
      if (!RE2::FullMatch(re2::StringPiece(path.data(), path.size()), *path_regex_)) return false;
      break;
    case PathKind::PathSeparatedPrefix: {
      if (!startsWith(path, path_value_, !case_sensitive_)) return false;
      if (path.size() > path_value_.size() && path[path_value_.size()] != '/') return false;
      break;
    }
    case PathKind::Connect:
      if (h.method() != "CONNECT") return false;
      break;
    case PathKind::Any:
      break;
  }
  if (grpc_only_ && h.getOr("content-type").substr(0, 16) != "application/grpc") return false;
  for (const auto& m : headers_) {
    if (!m.match(h)) return false;
  }
  if (!query_params_.empty()) {
    std::string_view full = h.path();
    size_t q = full.find('?');
    std::string_view query = q == std::string_view::npos ? std::string_view() : full.substr(q + 1);
    for (const auto& m : query_params_) {
      if (!m.match(query)) return false;
    }
  }
  if (runtime_fraction_) {
    if (random % runtime_fraction_->second >= runtime_fraction_->first) return false;
  }
  return true;
}

ClusterChoice RouteEntry::selectCluster(const http::HeaderMap& headers, uint64_t random) const {
  if (!cluster_.empty()) return {&cluster_, nullptr};
  if (!cluster_header_.empty()) {
    const std::string* v = headers.get(cluster_header_);
    return {v, nullptr};
  }
  if (!weighted_.empty() && total_weight_ > 0) {
    uint64_t r = random % total_weight_;
    for (const auto& w : weighted_) {
      if (r < w.weight) return {&w.name, &w};
      r -= w.weight;
    }
  }
  return {};
}

void RouteEntry::applyRewrites(http::HeaderMap& h) const {
  std::string_view path = h.path();
  if (!prefix_rewrite_.empty() || regex_rewrite_) {
    size_t q = path.find('?');
    std::string p(path.substr(0, q));
    std::string query = q == std::string_view::npos ? std::string() : std::string(path.substr(q));
    std::string original(path);
    if (!prefix_rewrite_.empty() &&
        (path_kind_ == PathKind::Prefix || path_kind_ == PathKind::Path ||
         path_kind_ == PathKind::PathSeparatedPrefix)) {
      p = prefix_rewrite_ + p.substr(std::min(p.size(), path_value_.size()));
    } else if (regex_rewrite_) {
      RE2::GlobalReplace(&p, *regex_rewrite_, regex_substitution_);
    }
    h.setIfAbsent("x-envoy-original-path", original);
    h.set(":path", p + query);
  }
  if (!host_rewrite_literal_.empty()) {
    h.set(":authority", host_rewrite_literal_);
  } else if (!host_rewrite_header_.empty()) {
    if (const std::string* v = h.get(host_rewrite_header_)) {
      std::string val = *v;
      h.set(":authority", val);
    }
  }
}

void RouteEntry::applyRequestHeaders(http::HeaderMap& h, const WeightedCluster* wc,
                                     const http::StreamInfo& info) const {
  if (wc) {
    wc->request_headers.apply(h, &info);
    if (!wc->host_rewrite_literal.empty()) h.set(":authority", wc->host_rewrite_literal);
  }
  request_headers_.apply(h, &info);
  vhost_->request_headers_.apply(h, &info);
  table_->request_headers_.apply(h, &info);
}

void RouteEntry::applyResponseHeaders(http::HeaderMap& h, const WeightedCluster* wc) const {
  if (wc) wc->response_headers.apply(h, nullptr);
  response_headers_.apply(h, nullptr);
  vhost_->response_headers_.apply(h, nullptr);
  table_->response_headers_.apply(h, nullptr);
}

std::string GeneratedCookie::setCookieValue() const {
  std::string out = name + "=\"" + value + "\"";
  if (ttl.count() > 0) out += "; Max-Age=" + std::to_string(ttl.count());
  if (!path.empty()) out += "; Path=" + path;
  out += "; HttpOnly";
  return out;
}

std::optional<uint64_t> RouteEntry::computeHash(const http::HeaderMap& h,
                                                std::string_view source_ip,
                                                std::string_view connection_key,
                                                std::vector<GeneratedCookie>* generated) const {
  std::optional<uint64_t> hash;
  for (const auto& p : hash_policies_) {
    std::optional<uint64_t> v;
    switch (p.kind) {
      case HashPolicy::Kind::Header: {
        auto all = h.getAll(p.name);
        if (!all.empty()) {
          std::string joined;
          for (auto s : all) joined += s;
          v = xxHash64(joined);
        }
        break;
      }
      case HashPolicy::Kind::Cookie: {
        std::string_view cookies = h.getOr("cookie");
        size_t pos = 0;
        while (pos < cookies.size()) {
          size_t semi = cookies.find(';', pos);
          if (semi == std::string_view::npos) semi = cookies.size();
          std::string_view kv = cookies.substr(pos, semi - pos);
          while (!kv.empty() && kv.front() == ' ') kv.remove_prefix(1);
          size_t eq = kv.find('=');
          if (eq != std::string_view::npos && kv.substr(0, eq) == p.name) {
            std::string_view value = kv.substr(eq + 1);
            // A quoted value hashes without its quotes (Envoy's cookie parsing).
            if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
              value = value.substr(1, value.size() - 2);
            }
            if (!value.empty()) v = xxHash64(value);
            break;
          }
          pos = semi + 1;
        }
        if (!v && p.cookie_ttl && generated) {
          // Envoy: the value is the hex of a hash of the downstream connection's addresses.
          char hex[17];
          snprintf(hex, sizeof(hex), "%016llx",
                   static_cast<unsigned long long>(xxHash64(connection_key)));
          GeneratedCookie c{p.name, hex, p.cookie_path, *p.cookie_ttl};
          v = xxHash64(c.value);
          generated->push_back(std::move(c));
        }
        break;
      }
      case HashPolicy::Kind::SourceIp:
        if (!source_ip.empty()) v = xxHash64(source_ip);
        break;
      case HashPolicy::Kind::QueryParameter: {
        std::string_view full = h.path();
        size_t q = full.find('?');
        if (q != std::string_view::npos) {
          std::string_view query = full.substr(q + 1);
          size_t start = 0;
          while (start <= query.size()) {
            size_t amp = query.find('&', start);
            if (amp == std::string_view::npos) amp = query.size();
            std::string_view kv = query.substr(start, amp - start);
            size_t eq = kv.find('=');
            if (kv.substr(0, eq) == p.name) {
              v = xxHash64(eq == std::string_view::npos ? "" : kv.substr(eq + 1));
              break;
            }
            start = amp + 1;
          }
        }
        break;
      }
    }
    if (v) {
      hash = hash ? (((*hash << 1) | (*hash >> 63)) ^ *v) : *v;
      if (p.terminal) break;
    }
  }
  return hash;
}

std::optional<bool> RouteEntry::upgradeOverride(std::string_view type) const {
  for (const auto& [t, enabled] : upgrades_) {
    if (t == type) return enabled;
  }
  return std::nullopt;
}

const RetryPolicy* RouteEntry::retryPolicy() const {
  if (retry_) return &*retry_;
  return vhost_->retry_ ? &*vhost_->retry_ : nullptr;
}

const void* RouteEntry::perFilterConfig(std::string_view filter_name) const {
  if (auto it = per_filter_.find(filter_name); it != per_filter_.end()) return it->second.get();
  if (auto it = vhost_->per_filter_.find(filter_name); it != vhost_->per_filter_.end()) {
    return it->second.get();
  }
  if (auto it = table_->per_filter_.find(filter_name); it != table_->per_filter_.end()) {
    return it->second.get();
  }
  return nullptr;
}

std::string RouteEntry::redirectLocation(const http::HeaderMap& request, bool tls) const {
  const auto& r = *redirect_;
  std::string scheme =
      r.scheme.empty()
          ? std::string(request.scheme().empty() ? (tls ? "https" : "http") : request.scheme())
          : r.scheme;
  std::string authority(request.authority());
  std::string host = authority;
  std::string port;
  size_t colon = authority.rfind(':');
  if (colon != std::string::npos && authority.find(']') == std::string::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
  }
  if (!r.host.empty()) host = r.host;
  if (r.port) port = std::to_string(*r.port);
  // Default ports are omitted; a scheme change drops a port that was the old default.
  if (!r.scheme.empty() && !r.port) {
    if ((port == "80" && scheme == "https") || (port == "443" && scheme == "http")) port.clear();
  }
  if ((scheme == "http" && port == "80") || (scheme == "https" && port == "443")) port.clear();
  std::string path(request.path());
  size_t q = path.find('?');
  std::string query = q == std::string::npos ? "" : path.substr(q);
  std::string p = path.substr(0, q);
  if (!r.path.empty()) {
    std::string new_path = r.path;
    if (new_path.find('?') != std::string::npos) query.clear();
    p = new_path;
  } else if (!r.prefix_rewrite.empty()) {
    p = r.prefix_rewrite + p.substr(std::min(p.size(), path_value_.size()));
  } else if (r.regex) {
    RE2::GlobalReplace(&p, *r.regex, r.regex_substitution);
  }
  if (r.strip_query) query.clear();
  return scheme + "://" + host + (port.empty() ? "" : ":" + port) + p + query;
}

// === RouteTable ===

Result<std::shared_ptr<const RouteTable>> RouteTable::create(const rv3::RouteConfiguration& config,
                                                             const PerFilterConfigFactory& pf) {
  auto table = std::shared_ptr<RouteTable>(new RouteTable());
  table->name_ = config.name();
  auto rq = parseMutations(config.request_headers_to_add(), config.request_headers_to_remove(),
                           "request_headers_to_add");
  if (!rq) return Error{rq.error()};
  table->request_headers_ = *rq;
  auto rs = parseMutations(config.response_headers_to_add(), config.response_headers_to_remove(),
                           "response_headers_to_add");
  if (!rs) return Error{rs.error()};
  table->response_headers_ = *rs;
  auto tpf = parsePerFilter(config.typed_per_filter_config(), pf, "route_config");
  if (!tpf) return Error{tpf.error()};
  table->per_filter_ = *tpf;
  std::map<std::string, std::string> seen_domains;
  for (int vi = 0; vi < config.virtual_hosts_size(); ++vi) {
    const auto& v = config.virtual_hosts(vi);
    std::string vpath = "virtual_hosts[" + std::to_string(vi) + "]";
    auto vh = std::make_unique<VirtualHost>();
    vh->name_ = v.name();
    if (v.domains_size() == 0) return Error{vpath + ".domains: must not be empty"};
    auto vrq = parseMutations(v.request_headers_to_add(), v.request_headers_to_remove(),
                              vpath + ".request_headers_to_add");
    if (!vrq) return Error{vrq.error()};
    vh->request_headers_ = *vrq;
    auto vrs = parseMutations(v.response_headers_to_add(), v.response_headers_to_remove(),
                              vpath + ".response_headers_to_add");
    if (!vrs) return Error{vrs.error()};
    vh->response_headers_ = *vrs;
    if (v.has_retry_policy()) {
      auto rp = parseRetry(v.retry_policy(), vpath + ".retry_policy");
      if (!rp) return Error{rp.error()};
      vh->retry_ = *rp;
    }
    auto vpf = parsePerFilter(v.typed_per_filter_config(), pf, vpath);
    if (!vpf) return Error{vpf.error()};
    vh->per_filter_ = *vpf;
    for (int ri = 0; ri < v.routes_size(); ++ri) {
      auto route = buildRoute(v.routes(ri), vpath + ".routes[" + std::to_string(ri) + "]", pf);
      if (!route) return Error{route.error()};
      (*route)->vhost_ = vh.get();
      (*route)->table_ = table.get();
      vh->routes_.push_back(std::move(*route));
    }
    const VirtualHost* raw = vh.get();
    for (int di = 0; di < v.domains_size(); ++di) {
      std::string d = lower(v.domains(di));
      std::string dpath = vpath + ".domains[" + std::to_string(di) + "]";
      if (auto it = seen_domains.find(d); it != seen_domains.end()) {
        return Error{dpath + ": domain '" + d + "' is already used by virtual host '" + it->second +
                     "'"};
      }
      seen_domains[d] = v.name();
      if (d == "*") {
        table->default_ = raw;
      } else if (d.size() > 1 && d[0] == '*') {
        table->suffix_.emplace_back(d.substr(1), raw);
      } else if (d.size() > 1 && d.back() == '*') {
        table->prefix_.emplace_back(d.substr(0, d.size() - 1), raw);
      } else if (d.find('*') != std::string::npos) {
        return Error{dpath + ": wildcard must be a prefix or suffix: '" + d + "'"};
      } else {
        table->exact_[d] = raw;
      }
    }
    table->vhosts_.push_back(std::move(vh));
  }
  auto longer = [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); };
  std::stable_sort(table->suffix_.begin(), table->suffix_.end(), longer);
  std::stable_sort(table->prefix_.begin(), table->prefix_.end(), longer);
  return std::shared_ptr<const RouteTable>(table);
}

const VirtualHost* RouteTable::findVirtualHost(std::string_view authority) const {
  std::string host = lower(authority);
  if (!exact_.empty()) {
    if (auto it = exact_.find(host); it != exact_.end()) return it->second;
  }
  for (const auto& [suffix, vh] : suffix_) {
    // "*.foo.com" needs at least one character before ".foo.com"; "*-bar" likewise.
    if (host.size() > suffix.size() && endsWith(host, suffix)) return vh;
  }
  for (const auto& [prefix, vh] : prefix_) {
    if (host.size() > prefix.size() && startsWith(host, prefix)) return vh;
  }
  return default_;
}

const RouteEntry* RouteTable::route(const http::HeaderMap& headers, uint64_t random) const {
  const VirtualHost* vh = findVirtualHost(headers.authority());
  if (!vh) return nullptr;
  std::string_view full = headers.path();
  size_t q = full.find_first_of("?#");
  std::string_view path = full.substr(0, q);
  for (const auto& r : vh->routes_) {
    if (r->matches(headers, path, random)) return r.get();
  }
  return nullptr;
}

Result<std::unique_ptr<RouteEntry>> RouteTable::buildRoute(const rv3::Route& r,
                                                           const std::string& path,
                                                           const PerFilterConfigFactory& pf) {
  auto e = std::make_unique<RouteEntry>();
  e->name_ = r.name();
  const auto& m = r.match();
  std::string mpath = path + ".match";
  using RM = rv3::RouteMatch;
  switch (m.path_specifier_case()) {
    case RM::kPrefix:
      e->path_kind_ = RouteEntry::PathKind::Prefix;
      e->path_value_ = m.prefix();
      break;
    case RM::kPath:
      e->path_kind_ = RouteEntry::PathKind::Path;
      e->path_value_ = m.path();
      break;
    case RM::kSafeRegex: {
      e->path_kind_ = RouteEntry::PathKind::Regex;
      auto re = compileRegex(m.safe_regex().regex(), mpath + ".safe_regex");
      if (!re) return Error{re.error()};
      e->path_regex_ = *re;
      break;
    }
    case RM::kPathSeparatedPrefix:
      e->path_kind_ = RouteEntry::PathKind::PathSeparatedPrefix;
      e->path_value_ = m.path_separated_prefix();
      break;
    case RM::kConnectMatcher:
      e->path_kind_ = RouteEntry::PathKind::Connect;
      break;
    default:
      return Error{mpath +
                   ": one of prefix, path, safe_regex, path_separated_prefix or "
                   "connect_matcher is required"};
  }
  if (m.has_case_sensitive()) e->case_sensitive_ = m.case_sensitive().value();
  for (int i = 0; i < m.headers_size(); ++i) {
    auto h = parseHeaderMatcher(m.headers(i), mpath + ".headers[" + std::to_string(i) + "]");
    if (!h) return Error{h.error()};
    e->headers_.push_back(*h);
  }
  for (int i = 0; i < m.query_parameters_size(); ++i) {
    auto q = parseQueryParameterMatcher(m.query_parameters(i),
                                        mpath + ".query_parameters[" + std::to_string(i) + "]");
    if (!q) return Error{q.error()};
    e->query_params_.push_back(std::move(*q));
  }
  if (m.has_runtime_fraction()) {
    const auto& f = m.runtime_fraction().default_value();
    e->runtime_fraction_ = {f.numerator(), denominatorOf(f.denominator())};
  }
  e->grpc_only_ = m.has_grpc();

  using R = rv3::Route;
  switch (r.action_case()) {
    case R::kDirectResponse: {
      DirectResponse d;
      d.status = r.direct_response().status();
      if (d.status < 200 || d.status >= 600) {
        return Error{path + ".direct_response.status: must be in [200, 600)"};
      }
      const auto& b = r.direct_response().body();
      if (!b.filename().empty()) {
        std::ifstream in(b.filename(), std::ios::binary);
        if (!in)
          return Error{path + ".direct_response.body.filename: cannot read '" + b.filename() + "'"};
        std::stringstream ss;
        ss << in.rdbuf();
        d.body = ss.str();
      } else {
        d.body = !b.inline_string().empty() ? b.inline_string() : b.inline_bytes();
      }
      e->direct_ = std::move(d);
      break;
    }
    case R::kRedirect: {
      const auto& rd = r.redirect();
      RouteEntry::Redirect x;
      if (rd.https_redirect()) x.scheme = "https";
      if (!rd.scheme_redirect().empty()) x.scheme = rd.scheme_redirect();
      x.host = rd.host_redirect();
      if (rd.port_redirect()) x.port = rd.port_redirect();
      x.path = rd.path_redirect();
      x.prefix_rewrite = rd.prefix_rewrite();
      if (rd.has_regex_rewrite()) {
        auto re = compileRegex(rd.regex_rewrite().pattern().regex(),
                               path + ".redirect.regex_rewrite.pattern");
        if (!re) return Error{re.error()};
        x.regex = *re;
        x.regex_substitution = rd.regex_rewrite().substitution();
      }
      x.strip_query = rd.strip_query();
      static const int kCodes[] = {301, 302, 303, 307, 308};
      int rc = static_cast<int>(rd.response_code());
      x.code = rc >= 0 && rc < 5 ? kCodes[rc] : 301;
      e->redirect_ = std::move(x);
      break;
    }
    case R::kRoute: {
      const auto& a = r.route();
      std::string apath = path + ".route";
      using RA = rv3::RouteAction;
      switch (a.cluster_specifier_case()) {
        case RA::kCluster:
          e->cluster_ = a.cluster();
          break;
        case RA::kClusterHeader:
          e->cluster_header_ = lower(a.cluster_header());
          break;
        case RA::kWeightedClusters: {
          int i = 0;
          for (const auto& c : a.weighted_clusters().clusters()) {
            std::string wpath = apath + ".weighted_clusters.clusters[" + std::to_string(i++) + "]";
            WeightedCluster w;
            w.name = c.name();
            if (w.name.empty()) return Error{wpath + ".name: must not be empty"};
            w.weight = c.has_weight() ? c.weight().value() : 0;
            auto wrq = parseMutations(c.request_headers_to_add(), c.request_headers_to_remove(),
                                      wpath + ".request_headers_to_add");
            if (!wrq) return Error{wrq.error()};
            w.request_headers = *wrq;
            auto wrs = parseMutations(c.response_headers_to_add(), c.response_headers_to_remove(),
                                      wpath + ".response_headers_to_add");
            if (!wrs) return Error{wrs.error()};
            w.response_headers = *wrs;
            w.host_rewrite_literal = c.host_rewrite_literal();
            auto wpf = parsePerFilter(c.typed_per_filter_config(), pf, wpath);
            if (!wpf) return Error{wpf.error()};
            w.per_filter = *wpf;
            e->total_weight_ += w.weight;
            e->weighted_.push_back(std::move(w));
          }
          if (e->total_weight_ == 0) {
            return Error{apath + ".weighted_clusters: total weight must be greater than 0"};
          }
          break;
        }
        default:
          return Error{apath + ": one of cluster, cluster_header or weighted_clusters is required"};
      }
      e->prefix_rewrite_ = a.prefix_rewrite();
      if (a.has_regex_rewrite()) {
        auto re =
            compileRegex(a.regex_rewrite().pattern().regex(), apath + ".regex_rewrite.pattern");
        if (!re) return Error{re.error()};
        e->regex_rewrite_ = *re;
        e->regex_substitution_ = a.regex_rewrite().substitution();
      }
      switch (a.host_rewrite_specifier_case()) {
        case RA::kHostRewriteLiteral:
          e->host_rewrite_literal_ = a.host_rewrite_literal();
          break;
        case RA::kAutoHostRewrite:
          e->auto_host_rewrite_ = a.auto_host_rewrite().value();
          break;
        case RA::kHostRewriteHeader:
          e->host_rewrite_header_ = lower(a.host_rewrite_header());
          break;
        default:
          break;
      }
      if (a.has_timeout()) e->timeout_ = toMs(a.timeout());
      if (a.has_idle_timeout()) e->idle_timeout_ = toMs(a.idle_timeout());
      if (a.has_retry_policy()) {
        auto rp = parseRetry(a.retry_policy(), apath + ".retry_policy");
        if (!rp) return Error{rp.error()};
        e->retry_ = *rp;
      }
      for (const auto& mp : a.request_mirror_policies()) {
        MirrorPolicy p;
        p.cluster = mp.cluster();
        if (mp.has_runtime_fraction()) {
          p.numerator = mp.runtime_fraction().default_value().numerator();
          p.denominator = denominatorOf(mp.runtime_fraction().default_value().denominator());
        }
        e->mirrors_.push_back(std::move(p));
      }
      for (int ui = 0; ui < a.upgrade_configs_size(); ++ui) {
        const auto& u = a.upgrade_configs(ui);
        std::string upath = apath + ".upgrade_configs[" + std::to_string(ui) + "]";
        if (u.upgrade_type().empty()) return Error{upath + ".upgrade_type: required"};
        if (u.has_connect_config()) {
          return Error{upath +
                       ".connect_config: terminating CONNECT is not supported (CONNECT is "
                       "forwarded upstream as is)"};
        }
        e->upgrades_.emplace_back(lower(u.upgrade_type()), !u.has_enabled() || u.enabled().value());
      }
      for (const auto& hp : a.hash_policy()) {
        HashPolicy p;
        p.terminal = hp.terminal();
        using HP = rv3::RouteAction::HashPolicy;
        switch (hp.policy_specifier_case()) {
          case HP::kHeader:
            p.kind = HashPolicy::Kind::Header;
            p.name = lower(hp.header().header_name());
            break;
          case HP::kCookie:
            p.kind = HashPolicy::Kind::Cookie;
            p.name = hp.cookie().name();
            if (hp.cookie().has_ttl()) {
              p.cookie_ttl = std::chrono::seconds(hp.cookie().ttl().seconds());
              p.cookie_path = hp.cookie().path();
            }
            break;
          case HP::kConnectionProperties:
            p.kind = HashPolicy::Kind::SourceIp;
            break;
          case HP::kQueryParameter:
            p.kind = HashPolicy::Kind::QueryParameter;
            p.name = hp.query_parameter().name();
            break;
          default:
            continue;  // filter_state: not supported, ignored like an absent key
        }
        e->hash_policies_.push_back(std::move(p));
      }
      break;
    }
    default:
      return Error{path + ": one of route, redirect or direct_response is required"};
  }
  auto rq = parseMutations(r.request_headers_to_add(), r.request_headers_to_remove(),
                           path + ".request_headers_to_add");
  if (!rq) return Error{rq.error()};
  e->request_headers_ = *rq;
  auto rs = parseMutations(r.response_headers_to_add(), r.response_headers_to_remove(),
                           path + ".response_headers_to_add");
  if (!rs) return Error{rs.error()};
  e->response_headers_ = *rs;
  auto rpf = parsePerFilter(r.typed_per_filter_config(), pf, path);
  if (!rpf) return Error{rpf.error()};
  e->per_filter_ = *rpf;
  e->decorator_ = r.decorator().operation();
  return e;
}

}  // namespace mast::router
