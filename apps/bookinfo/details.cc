// details v1: the book's details, built in, or from the Google Books API for Istio's egress
// tasks (ENABLE_EXTERNAL_BOOK_SERVICE=true).
#include <cstdlib>
#include <stdexcept>

#include "http_client.h"
#include "services.h"

namespace mast::bookinfo {
namespace {

// One Comedy of Errors edition with Shakespeare as the only author.
constexpr std::string_view kBookIsbn = "0486424618";
constexpr auto kExternalTimeout = std::chrono::seconds(5);

bool envIs(const char* name, std::string_view expected) {
  const char* value = std::getenv(name);
  return value && expected == value;
}

Json localDetails(int64_t id) {
  return Json{{"id", id},
              {"author", "William Shakespeare"},
              {"year", 1595},
              {"type", "paperback"},
              {"pages", 200},
              {"publisher", "PublisherA"},
              {"language", "English"},
              {"ISBN-10", "1234567890"},
              {"ISBN-13", "123-1234567890"}};
}

// Field access on the external document that fails the way the original's dict lookups did:
// the error message becomes the 400 body.
const Json& requireObject(const Json& value) {
  if (!value.is_object()) throw std::runtime_error("unexpected " + std::string(value.type_name()));
  return value;
}
const Json& requireKey(const Json& object, const char* key) {
  const Json& checked = requireObject(object);
  auto it = checked.find(key);
  if (it == checked.end()) throw std::runtime_error(std::string("'") + key + "'");
  return *it;
}
const Json& requireFirst(const Json& list) {
  if (!list.is_array()) throw std::runtime_error("unexpected " + std::string(list.type_name()));
  if (list.empty()) throw std::runtime_error("list index out of range");
  return list.front();
}
Json optionalKey(const Json& object, const char* key) {
  const Json& checked = requireObject(object);
  auto it = checked.find(key);
  return it == checked.end() ? Json() : *it;
}

Json isbnOf(const Json& book, std::string_view kind) {
  Json identifiers = optionalKey(book, "industryIdentifiers");
  if (identifiers.is_null()) return Json();
  if (!identifiers.is_array()) {
    throw std::runtime_error("unexpected " + std::string(identifiers.type_name()));
  }
  for (const Json& identifier : identifiers) {
    Json type = optionalKey(identifier, "type");
    if (type.is_string() && type.get<std::string>() == kind) {
      return optionalKey(identifier, "identifier");
    }
  }
  return Json();
}

// The details of `id` from the Google Books API (or EXTERNAL_BOOK_SERVICE_URL), forwarding
// the propagated headers. Throws with the reason on any failure.
Json externalDetails(int64_t id, const HeaderList& headers) {
  OutgoingRequest request;
  std::string prefix;
  const char* base = std::getenv("EXTERNAL_BOOK_SERVICE_URL");
  if (base && *base) {
    Result<UrlParts> url = splitUrl(base);
    if (!url) throw std::runtime_error(url.error());
    if (url->hostname.empty()) throw std::runtime_error("no host in EXTERNAL_BOOK_SERVICE_URL");
    request.tls = url->scheme == "https";
    request.connect_host = url->hostname;
    request.connect_port = url->port.value_or(0) != 0 ? *url->port : (request.tls ? 443 : 80);
    prefix = url->path;
    while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
  } else {
    request.tls = !envIs("DO_NOT_ENCRYPT", "true");
    request.connect_host = "www.googleapis.com";
    request.connect_port = request.tls ? 443 : 80;
  }
  // Host as an HTTP client writes it: the port only when it is not the scheme's default.
  bool ipv6 = request.connect_host.find(':') != std::string::npos;
  request.host_header = ipv6 ? "[" + request.connect_host + "]" : request.connect_host;
  if (request.connect_port != (request.tls ? 443 : 80)) {
    request.host_header += ":" + std::to_string(request.connect_port);
  }
  request.target = prefix + "/books/v1/volumes?q=isbn:" + std::string(kBookIsbn);
  request.headers = headers;
  request.timeout = kExternalTimeout;
  Result<UpstreamResponse> response = sendGet(request);
  if (!response) throw std::runtime_error(response.error());
  std::optional<Json> data = parseJson(response->body);
  if (!data) throw std::runtime_error("the book service did not answer with JSON");

  const Json& book = requireKey(requireFirst(requireKey(*data, "items")), "volumeInfo");
  Json print_type = optionalKey(book, "printType");
  Json language = optionalKey(book, "language");
  return Json{{"id", id},
              {"author", requireFirst(requireKey(book, "authors"))},
              {"year", optionalKey(book, "publishedDate")},
              {"type", print_type == "BOOK" ? "paperback" : "unknown"},
              {"pages", optionalKey(book, "pageCount")},
              {"publisher", optionalKey(book, "publisher")},
              {"language", language == "en" ? "English" : "unknown"},
              {"ISBN-10", isbnOf(book, "ISBN_10")},
              {"ISBN-13", isbnOf(book, "ISBN_13")}};
}

Response details(const Request& request, const std::vector<std::string>& captured) {
  // As Istio's WEBrick mount: anything under /details/ is accepted, the id is the last segment.
  std::string_view rest = captured[0];
  std::string_view last = rest.substr(rest.rfind('/') + 1);
  std::optional<int64_t> id = parseInteger(last);
  if (!id) return jsonResponse(400, Json{{"error", "please provide numeric product id"}});
  if (!envIs("ENABLE_EXTERNAL_BOOK_SERVICE", "true")) return jsonResponse(200, localDetails(*id));
  try {
    return jsonResponse(200, externalDetails(*id, forwardHeaders(request.headers)));
  } catch (const std::exception& e) {
    return jsonResponse(400, Json{{"error", std::string(e.what())}});
  }
}

}  // namespace

Result<Service> makeDetails(const std::string& version) {
  Service service;
  service.banner = version;
  service.routes = {
      {"GET", "/details/**", details},
      {"GET", "/health",
       [](const Request&, const std::vector<std::string>&) {
         return jsonResponse(200, Json{{"status", "Details is healthy"}});
       }},
  };
  return service;
}

}  // namespace mast::bookinfo
