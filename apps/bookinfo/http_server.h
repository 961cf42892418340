#pragma once
// The server side every Bookinfo service shares: a listener on the main thread, one thread per
// connection (HTTP/1.1 keep-alive, every response framed by Content-Length), routing by path
// pattern, exactly one access-log line per request on stdout, and a clean stop on
// SIGTERM/SIGINT. A demo application: simplicity over throughput.
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "http/header_map.h"
#include "text.h"

namespace mast::bookinfo {

struct Request {
  std::string method;          // as sent: "GET", "HEAD", "POST", ...
  std::string target;          // the request-target as sent ("/productpage?u=normal")
  std::string path;            // the target's path, without query and fragment
  std::string query;           // the raw query string, without "?"
  std::string protocol;        // "HTTP/1.1" or "HTTP/1.0"
  http::HeaderMap headers;     // lower-case names; "host" kept as a plain header
  std::string body;            // the whole body, read before the route runs
  std::string client_address;  // numeric peer address ("127.0.0.1", "::ffff:10.0.0.1")

  // First value of header `name`, or nullptr.
  const std::string* header(std::string_view name) const { return headers.get(name); }
};

struct Response {
  int status = 200;
  std::string content_type;
  std::string body;
  std::vector<std::pair<std::string, std::string>> extra_headers;
};

Response jsonResponse(int status, const Json& doc);
Response textResponse(int status, std::string text,
                      std::string content_type = "text/plain; charset=utf-8");
Response redirectResponse(std::string location,
                          std::vector<std::pair<std::string, std::string>> extra_headers = {});

// `captured`: what the pattern's "*" segments matched (percent-decoded) and, for a trailing
// "**", the remaining segments joined with "/" (as sent). A route may throw: the client then
// gets 500 {"error": "internal error"} and the connection closes.
using RouteHandler = std::function<Response(const Request&, const std::vector<std::string>&)>;

// `pattern` is a "/"-separated path whose "*" segments match any one segment and whose trailing
// "**" matches the rest. Routes are tried in order; the first whose pattern and method match
// runs (a GET route also serves HEAD, without the body). A path matched only by routes of other
// methods gets 405, an unknown path 404.
struct Route {
  std::string method;
  std::string pattern;
  RouteHandler handler;
};

struct ServeOptions {
  std::string service;  // "productpage", ... (log lines)
  std::string bind;     // numeric address; one containing ":" listens on IPv6 (dual-stack)
  int port = 9080;      // 0: chosen by the OS
  std::string banner;   // appended to the "listening on" line in parentheses
};

// Blocks SIGTERM and SIGINT in the calling thread (and so in every thread started later). Call
// first in main, before any thread exists; serve() then receives the signals synchronously.
void blockStopSignals();

// Listens, prints "<service> listening on <bind>:<port> (<banner>)", serves until SIGTERM or
// SIGINT, then stops accepting and prints "<service> stopped". Returns the process exit code
// (1 when the listener cannot be opened). Connections still open are abandoned with the process.
int serve(const ServeOptions& options, std::vector<Route> routes);

// One line on stdout, whole and flushed, whatever the thread.
void logLine(std::string_view line);

}  // namespace mast::bookinfo
