// productpage v1: the book page (HTML) and JSON API, built from details and reviews (and ratings
// for the API). Upstream calls follow Istio's sample: details once with a 3 s timeout, reviews up
// to twice with 3 s each (kept on purpose: with the fault-injection task's 7 s ratings delay the
// page gives up after ~6 s and shows the reviews error), ratings once with 3 s. A logged-in user
// (the "user" cookie) travels as end-user; the incoming tracing headers travel along unchanged.
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <regex>

#include "http_client.h"
#include "services.h"

namespace mast::bookinfo {
namespace {

constexpr auto kUpstreamTimeout = std::chrono::seconds(3);
constexpr int kReviewsAttempts = 2;

constexpr std::string_view kDetailsError =
    "Sorry, product details are currently unavailable for this book.";
constexpr std::string_view kReviewsError =
    "Sorry, product reviews are currently unavailable for this book.";
constexpr std::string_view kRatingsError =
    "Sorry, product ratings are currently unavailable for this book.";

const Json& products() {
  static const Json kProducts = Json::array({Json{
      {"id", 0},
      {"title", "The Comedy of Errors"},
      {"descriptionHtml",
       "<a href=\"https://en.wikipedia.org/wiki/The_Comedy_of_Errors\">Wikipedia Summary</a>: "
       "The Comedy of Errors is one of <b>William Shakespeare's</b> early plays. It is his "
       "shortest and one of his most farcical comedies, with a major part of the humour "
       "coming from slapstick and mistaken identity, in addition to puns and word play."},
  }});
  return kProducts;
}

// request_result_total{destination_app, response_code}, one counter per upstream outcome.
class Metrics {
 public:
  void count(const std::string& app, int code) {
    std::lock_guard<std::mutex> lock(mutex_);
    ++counts_[{app, code}];
  }

  // Prometheus text format, sorted by app then code; values as floats ("3.0").
  std::string render() {
    std::string out =
        "# HELP request_result_total Results of requests\n"
        "# TYPE request_result_total counter\n";
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& [key, n] : counts_) {
      out += "request_result_total{destination_app=\"" + key.first + "\",response_code=\"" +
             std::to_string(key.second) + "\"} " + pythonFloatRepr(static_cast<double>(n)) + "\n";
    }
    return out;
  }

 private:
  std::mutex mutex_;
  std::map<std::pair<std::string, int>, uint64_t> counts_;
};

// --- the "user" cookie ---------------------------------------------------------------------

// Cookie attribute names: in a Cookie header they belong to the preceding cookie, never name one.
bool isCookieAttribute(const std::string& name) {
  std::string lower = name;
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return lower == "expires" || lower == "path" || lower == "comment" || lower == "domain" ||
         lower == "max-age" || lower == "secure" || lower == "httponly" || lower == "version" ||
         lower == "samesite";
}

// The characters a cookie name may hold; the header's syntax allows more, but a cookie named
// with any other character invalidates the whole header.
bool isCookieName(const std::string& name) {
  for (char c : name) {
    bool legal = std::isalnum(static_cast<unsigned char>(c)) ||
                 std::string_view("!#$%&'*+-.^_`|~:").find(c) != std::string_view::npos;
    if (!legal) return false;
  }
  return true;
}

// A double-quoted cookie value loses its quotes and backslash escapes (\" and octal \[0-3]oo).
std::string unquoteCookieValue(const std::string& value) {
  if (value.size() < 2 || value.front() != '"' || value.back() != '"') return value;
  std::string out;
  std::string_view inner(value.data() + 1, value.size() - 2);
  for (size_t i = 0; i < inner.size(); ++i) {
    if (inner[i] != '\\' || i + 1 >= inner.size()) {
      out += inner[i];
      continue;
    }
    bool octal = i + 3 < inner.size() && inner[i + 1] >= '0' && inner[i + 1] <= '3';
    for (size_t k = 2; octal && k <= 3; ++k) octal = inner[i + k] >= '0' && inner[i + k] <= '7';
    if (octal) {
      out += static_cast<char>((inner[i + 1] - '0') * 64 + (inner[i + 2] - '0') * 8 +
                               (inner[i + 3] - '0'));
      i += 3;
    } else {
      out += inner[i + 1];
      ++i;
    }
  }
  return out;
}

// The value of cookie `name` in a Cookie header, parsed with the rules of Python's
// http.cookies.SimpleCookie (which Istio's Flask productpage relies on): the last cookie of
// that name wins, "$" names are ignored, and a header that does not parse as a whole (a name
// without a value, an attribute before any cookie) yields no cookies at all.
std::string cookieValue(const std::string& header, const std::string& name) {
  static const std::regex kCookie(
      R"(\s*([\w!#%&'~`><@,:/$*+.^|)(?}{=-]+?))"
      R"((\s*=\s*("(?:[^\\"]|\\.)*"|\w{3},\s[\w\s-]{9,11}\s[\d:]{8}\sGMT|[\w!#%&'~`><@,:/$*+.^|)(?}{=\[\]-]*))?)"
      R"(\s*(\s+|;|$))");
  std::string found;
  bool cookie_seen = false;
  auto it = header.cbegin();
  while (it != header.cend()) {
    std::smatch match;
    if (!std::regex_search(it, header.cend(), match, kCookie,
                           std::regex_constants::match_continuous)) {
      break;
    }
    it = match[0].second;
    std::string key = match[1].str();
    bool has_value = match[3].matched;
    if (key[0] == '$') {
      if (cookie_seen && !isCookieAttribute(key.substr(1))) return "";
      continue;
    }
    if (isCookieAttribute(key)) {
      if (!cookie_seen) return "";
      std::string lower = key;
      for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (!has_value && lower != "secure" && lower != "httponly") return "";
      continue;
    }
    if (!has_value || !isCookieName(key)) return "";
    cookie_seen = true;
    if (key == name) found = unquoteCookieValue(match[3].str());
  }
  return found;
}

// --- HTML ----------------------------------------------------------------------------------

constexpr std::string_view kStyle = R"(
body { font-family: system-ui, sans-serif; margin: 0; color: #222; }
nav { background: #1f2937; color: #fff; padding: 12px 24px; display: flex;
      justify-content: space-between; align-items: center; }
nav a, nav .user { color: #fff; }
.container { max-width: 1000px; margin: 0 auto; padding: 16px 24px; }
h1 { color: #1e3a8a; }
table { border-collapse: collapse; }
th, td { border: 1px solid #d1d5db; padding: 6px 10px; text-align: left; }
th { background: #466bb0; color: #fff; }
.error { color: #ef4444; }
.reviews { background: #eff6ff; }
.review { display: inline-block; vertical-align: top; width: 45%; padding: 12px; }
.stars { font-size: 1.4em; }
blockquote { font-size: 1.2em; font-weight: 600; margin: 8px 0; }
dialog form label { display: block; margin-top: 8px; }
)";

std::string page(std::string_view title, std::string_view body) {
  std::string out =
      "<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1.0\">\n<title>";
  out += htmlEscape(title);
  out += "</title>\n<style>";
  out += kStyle;
  out += "</style>\n</head>\n<body>\n";
  out += body;
  out += "\n</body>\n</html>\n";
  return out;
}

std::string renderIndex(const Upstream& details, const Upstream& reviews, const Upstream& ratings) {
  auto row = [](std::string_view endpoint, const Upstream& upstream, std::string_view children) {
    return "<tr><th>name</th><td>" + htmlEscape(upstream.baseUrl()) +
           "</td></tr><tr><th>endpoint</th><td>" + htmlEscape(endpoint) +
           "</td></tr><tr><th>children</th><td>" + std::string(children) + "</td></tr>";
  };
  std::string ratings_table = "<table>" + row("ratings", ratings, "") + "</table>";
  std::string reviews_table = "<table>" + row("reviews", reviews, ratings_table) + "</table>";
  std::string details_table = "<table>" + row("details", details, "") + "</table>";
  std::string table =
      "<table class=\"table table-condensed table-bordered table-hover\">"
      "<tr><th>name</th><td>productpage</td></tr>"
      "<tr><th>endpoint</th><td>productpage</td></tr>"
      "<tr><th>children</th><td>" +
      details_table + reviews_table + "</td></tr></table>";
  std::string body =
      "<div class=\"container\">\n"
      "<h3>Hello! This is a simple bookstore application consisting of three services as "
      "shown below</h3>\n" +
      table +
      "\n<p>Click on one of the links below to auto generate a request to the backend as a real "
      "user or a tester</p>\n"
      "<ul>\n<li><a href=\"/productpage?u=normal\">Normal user</a></li>\n"
      "<li><a href=\"/productpage?u=test\">Test user</a></li>\n</ul>\n</div>";
  return page("Simple Bookstore App", body);
}

// Lookups on upstream documents. A document of an unexpected shape fails the page (500), as the
// dictionary lookups of the original template did; missing keys fall back instead.
const Json& asObject(const Json& value) {
  if (!value.is_object()) {
    throw std::runtime_error("expected a JSON object, got " + std::string(value.type_name()));
  }
  return value;
}
Json getOr(const Json& object, const char* key, Json fallback) {
  const Json& checked = asObject(object);
  auto it = checked.find(key);
  return it == checked.end() ? std::move(fallback) : *it;
}

std::string renderStars(const Json& rating) {
  Json stars = getOr(rating, "stars", Json());
  bool whole = stars.is_number_integer() || stars.is_number_unsigned() || stars.is_boolean();
  if (whole && pythonTruthy(stars)) {
    // A boolean true counts as one star and shows as "True", as it did in Python.
    int64_t count;
    std::string shown;
    if (stars.is_boolean()) {
      count = 1;
      shown = "True";
    } else if (stars.is_number_unsigned()) {
      count = static_cast<int64_t>(std::min<uint64_t>(5, stars.get<uint64_t>()));
      shown = std::to_string(count);
    } else {
      count = std::max<int64_t>(0, std::min<int64_t>(5, stars.get<int64_t>()));
      shown = std::to_string(count);
    }
    std::string color = htmlEscape(pythonStr(getOr(rating, "color", "black")));
    std::string out = "<font color=\"" + color + "\" class=\"stars text-" + color +
                      "-500\" data-stars=\"" + shown + "\">\n";
    for (int64_t i = 0; i < count; ++i) {
      out += "<span class=\"glyphicon glyphicon-star\">&#9733;</span>";
    }
    for (int64_t i = count; i < 5; ++i) {
      out += "<span class=\"glyphicon glyphicon-star-empty\">&#9734;</span>";
    }
    out += "\n</font>\n";
    return out;
  }
  Json error = getOr(rating, "error", Json());
  if (pythonTruthy(error)) {
    return "<p class=\"error\"><i>" + htmlEscape(pythonStr(error)) + "</i></p>\n";
  }
  return "";
}

// The elements a reviews document lists; an empty container or string lists nothing.
std::vector<Json> listedReviews(const Json& reviews) {
  Json listed = getOr(reviews, "reviews", Json::array());
  if (listed.is_array()) return std::vector<Json>(listed.begin(), listed.end());
  if ((listed.is_object() || listed.is_string()) && listed.empty()) return {};
  throw std::runtime_error("reviews is not a list");
}

std::string renderProductpage(const Json& product, int details_status, const Json& details,
                              int reviews_status, const Json& reviews, const std::string& user) {
  std::string nav_right;
  if (!user.empty()) {
    nav_right =
        "<span class=\"user\">" + htmlEscape(user) + "</span> <a href=\"logout\">Sign out</a>";
  } else {
    nav_right =
        "<button type=\"button\" id=\"sign-in-button\" "
        "onclick=\"document.getElementById('dialog').showModal()\">Sign in</button>";
  }
  std::vector<std::string> parts = {
      "<nav><a href=\"#\">BookInfo Sample</a><div>" + nav_right + "</div></nav>",
      "<dialog id=\"dialog\">\n<h2>Sign in to BookInfo</h2>\n"
      "<form method=\"post\" action=\"login\" name=\"login_form\">\n"
      "<label for=\"username\">Username</label>"
      "<input id=\"username\" name=\"username\" required>\n"
      "<label for=\"password\">Password</label>"
      "<input id=\"password\" name=\"passwd\" type=\"password\">\n"
      "<button type=\"submit\">Sign in</button>\n"
      "<button type=\"button\" onclick=\"document.getElementById('dialog').close()\">"
      "Close</button>\n</form>\n</dialog>",
      "<div class=\"container\">",
      "<h1>" + htmlEscape(product["title"].get<std::string>()) + "</h1>",
      // Trusted HTML, as in Istio's template.
      "<p>" + product["descriptionHtml"].get<std::string>() + "</p>",
      "</div>",
      "<div class=\"container details\">",
  };
  if (details_status == 200) {
    static constexpr const char* kFields[] = {"ISBN-10", "publisher", "pages", "type", "language"};
    static constexpr const char* kHeads[] = {"ISBN-10", "Publisher", "Pages", "Type", "Language"};
    std::string table = "<h4>Book Details</h4>\n<table>\n<thead><tr>";
    for (const char* head : kHeads) table += std::string("<th>") + head + "</th>";
    table += "</tr></thead>\n<tbody><tr>";
    for (const char* field : kFields) {
      table += "<td>" + htmlEscape(pythonStr(getOr(details, field, ""))) + "</td>";
    }
    table += "</tr></tbody>\n</table>";
    parts.push_back(std::move(table));
  } else {
    parts.emplace_back("<h4 class=\"error\">Error fetching product details!</h4>");
    parts.push_back("<p>" + htmlEscape(pythonStr(getOr(details, "error", ""))) + "</p>");
  }
  parts.emplace_back("</div>");
  parts.emplace_back("<div class=\"reviews\"><div class=\"container\">");
  if (reviews_status == 200) {
    parts.emplace_back("<h4>Book Reviews</h4>");
    std::string podname = htmlEscape(pythonStr(getOr(reviews, "podname", "")));
    Json cluster = getOr(reviews, "clustername", Json());
    std::string served = "Reviews served by: <u>" + podname + "</u>";
    if (!cluster.is_null() && cluster != "null") {
      served += " on cluster <u>" + htmlEscape(pythonStr(cluster)) + "</u>";
    }
    for (const Json& review : listedReviews(reviews)) {
      Json rating = getOr(review, "rating", Json());
      std::string stars = rating.is_object() ? renderStars(rating) : "";
      parts.push_back("<section class=\"review\">\n" + stars + "<blockquote><p>\"" +
                      htmlEscape(pythonStr(getOr(review, "text", ""))) +
                      "\"</p></blockquote>\n<div class=\"reviewer\">" +
                      htmlEscape(pythonStr(getOr(review, "reviewer", ""))) +
                      "</div>\n<div class=\"served-by\">" + served + "</div>\n</section>");
    }
  } else {
    parts.emplace_back("<h4 class=\"error\">Error fetching product reviews!</h4>");
    parts.push_back("<p>" + htmlEscape(pythonStr(getOr(reviews, "error", ""))) + "</p>");
  }
  parts.emplace_back("</div></div>");
  std::string body;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i) body += '\n';
    body += parts[i];
  }
  return page("Simple Bookstore App", body);
}

// --- the service ---------------------------------------------------------------------------

struct CallResult {
  int status;
  Json body;
};

class Productpage {
 public:
  Productpage(Upstream details, Upstream reviews, Upstream ratings, int64_t flood_factor)
      : details_(std::move(details)),
        reviews_(std::move(reviews)),
        ratings_(std::move(ratings)),
        flood_factor_(flood_factor) {}

  std::vector<Route> routes(const std::shared_ptr<Productpage>& self) {
    auto bind =
        [self](Response (Productpage::*method)(const Request&, const std::vector<std::string>&)) {
          return [self, method](const Request& request, const std::vector<std::string>& captured) {
            return ((*self).*method)(request, captured);
          };
        };
    return {
        {"GET", "/", bind(&Productpage::index)},
        {"GET", "/index.html", bind(&Productpage::index)},
        {"GET", "/health", bind(&Productpage::health)},
        {"POST", "/login", bind(&Productpage::login)},
        {"GET", "/logout", bind(&Productpage::logout)},
        {"GET", "/productpage", bind(&Productpage::productpage)},
        {"GET", "/api/v1/products", bind(&Productpage::apiProducts)},
        {"GET", "/api/v1/products/*", bind(&Productpage::apiProduct)},
        {"GET", "/api/v1/products/*/reviews", bind(&Productpage::apiReviews)},
        {"GET", "/api/v1/products/*/ratings", bind(&Productpage::apiRatings)},
        {"GET", "/metrics", bind(&Productpage::metrics)},
    };
  }

  std::string banner() const {
    std::string out;
    for (const Upstream* u : {&details_, &reviews_, &ratings_}) {
      if (!out.empty()) out += ", ";
      out += u->name + " -> " + u->connect_host + ":" + std::to_string(u->connect_port) +
             " (Host " + u->authority + ")";
    }
    return out;
  }

 private:
  static std::string currentUser(const Request& request) {
    const std::string* cookie = request.header("cookie");
    if (!cookie || cookie->empty()) return "";
    return percentDecode(cookieValue(*cookie, "user"));
  }

  // productpage never forwards an incoming end-user: it derives it from the login.
  static HeaderList outgoingHeaders(const Request& request) {
    HeaderList headers = forwardHeaders(request.headers, /*include_end_user=*/false);
    if (std::string user = currentUser(request); !user.empty()) {
      headers.emplace_back("end-user", std::move(user));
    }
    return headers;
  }

  static std::string backLocation(const Request& request) {
    const std::string* referer = request.header("referer");
    return referer && !referer->empty() ? *referer : "/productpage";
  }

  // The upstream's 200 JSON, else its last status (500 without any response, or for a 200 that
  // is not JSON) with `error` as the body. Each attempt is a new connection.
  CallResult call(const std::string& app, const Upstream& upstream, const std::string& path,
                  const HeaderList& headers, std::string_view error, int attempts = 1) {
    std::optional<UpstreamResponse> last;
    for (int attempt = 0; attempt < attempts; ++attempt) {
      Result<UpstreamResponse> response = httpGet(upstream, path, headers, kUpstreamTimeout);
      if (!response) {
        logLine("productpage: " + app + " call to " + upstream.baseUrl() + path +
                " failed: " + response.error());
        last.reset();
        continue;
      }
      last = std::move(*response);
      if (last->status != 200) continue;
      std::optional<Json> body = parseJson(last->body);
      if (body && !body->is_null()) {
        metrics_.count(app, 200);
        return {200, std::move(*body)};
      }
    }
    int status = last && last->status != 0 ? last->status : 500;
    if (status == 200) status = 500;
    metrics_.count(app, status);
    return {status, Json{{"error", error}}};
  }

  CallResult productDetails(const std::string& id, const HeaderList& headers) {
    return call("details", details_, "/details/" + id, headers, kDetailsError);
  }
  CallResult productReviews(const std::string& id, const HeaderList& headers) {
    return call("reviews", reviews_, "/reviews/" + id, headers, kReviewsError, kReviewsAttempts);
  }
  CallResult productRatings(const std::string& id, const HeaderList& headers) {
    return call("ratings", ratings_, "/ratings/" + id, headers, kRatingsError);
  }

  Response index(const Request&, const std::vector<std::string>&) {
    return textResponse(200, renderIndex(details_, reviews_, ratings_), "text/html; charset=utf-8");
  }

  Response health(const Request&, const std::vector<std::string>&) {
    return textResponse(200, "Product page is healthy", "text/html; charset=utf-8");
  }

  // Form field "username" (Istio's form), else "user"; the body's fields win over the query's.
  Response login(const Request& request, const std::vector<std::string>&) {
    auto form = parseQueryString(toValidUtf8(request.body));
    auto query = parseQueryString(request.query);
    auto field = [&](const std::string& name) -> std::string {
      for (const auto& [key, value] : form) {
        if (key == name) return value;
      }
      for (const auto& [key, value] : query) {
        if (key == name) return value;
      }
      return "";
    };
    std::string user = field("username");
    if (user.empty()) user = field("user");
    std::string cookie = user.empty() ? "user=; Path=/; Max-Age=0"
                                      : "user=" + percentEncode(user) + "; Path=/; HttpOnly";
    return redirectResponse(backLocation(request), {{"set-cookie", cookie}});
  }

  Response logout(const Request& request, const std::vector<std::string>&) {
    return redirectResponse(backLocation(request), {{"set-cookie", "user=; Path=/; Max-Age=0"}});
  }

  Response productpage(const Request& request, const std::vector<std::string>&) {
    const std::string id = "0";
    HeaderList headers = outgoingHeaders(request);
    CallResult details = productDetails(id, headers);
    // Istio's FLOOD_FACTOR: extra reviews calls whose answers are ignored (rate-limit demos).
    for (int64_t i = 0; i < flood_factor_; ++i) productReviews(id, headers);
    CallResult reviews = productReviews(id, headers);
    return textResponse(200,
                        renderProductpage(products()[0], details.status, details.body,
                                          reviews.status, reviews.body, currentUser(request)),
                        "text/html; charset=utf-8");
  }

  Response apiProducts(const Request&, const std::vector<std::string>&) {
    return jsonResponse(200, products());
  }

  // The id goes upstream re-encoded, so that any byte of it stays inside one path segment.
  Response apiProduct(const Request& request, const std::vector<std::string>& captured) {
    CallResult r = productDetails(percentEncode(captured[0]), outgoingHeaders(request));
    return jsonResponse(r.status, r.body);
  }
  Response apiReviews(const Request& request, const std::vector<std::string>& captured) {
    CallResult r = productReviews(percentEncode(captured[0]), outgoingHeaders(request));
    return jsonResponse(r.status, r.body);
  }
  Response apiRatings(const Request& request, const std::vector<std::string>& captured) {
    CallResult r = productRatings(percentEncode(captured[0]), outgoingHeaders(request));
    return jsonResponse(r.status, r.body);
  }

  Response metrics(const Request&, const std::vector<std::string>&) {
    return textResponse(200, metrics_.render(), "text/plain; version=0.0.4; charset=utf-8");
  }

  const Upstream details_;
  const Upstream reviews_;
  const Upstream ratings_;
  const int64_t flood_factor_;
  Metrics metrics_;
};

}  // namespace

// productpage has a single version, v1, so the version changes nothing.
Result<Service> makeProductpage(const std::string& /*version*/) {
  Result<Upstream> details = upstreamFromEnv("details");
  if (!details) return Error{details.error()};
  Result<Upstream> reviews = upstreamFromEnv("reviews");
  if (!reviews) return Error{reviews.error()};
  Result<Upstream> ratings = upstreamFromEnv("ratings");
  if (!ratings) return Error{ratings.error()};
  int64_t flood_factor = 0;
  if (const char* flood = std::getenv("FLOOD_FACTOR"); flood && *flood) {
    std::optional<int64_t> parsed = parseInteger(flood);
    if (!parsed) return Error{"FLOOD_FACTOR must be an integer, got '" + std::string(flood) + "'"};
    flood_factor = *parsed;
  }
  auto productpage = std::make_shared<Productpage>(std::move(*details), std::move(*reviews),
                                                   std::move(*ratings), flood_factor);
  Service service;
  service.banner = productpage->banner();
  service.routes = productpage->routes(productpage);
  return service;
}

}  // namespace mast::bookinfo
