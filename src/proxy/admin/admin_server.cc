#include "proxy/admin/admin_server.h"

#include <asio/write.hpp>
#include <map>

#include "http/http1/codec.h"

namespace mast::proxy::admin {

namespace {

std::string percentDecode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      out += static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16));
      i += 2;
    } else if (s[i] == '+') {
      out += ' ';
    } else {
      out += s[i];
    }
  }
  return out;
}

std::map<std::string, std::string> parseQuery(std::string_view q) {
  std::map<std::string, std::string> out;
  size_t start = 0;
  while (start < q.size()) {
    size_t amp = q.find('&', start);
    if (amp == std::string_view::npos) amp = q.size();
    std::string_view kv = q.substr(start, amp - start);
    size_t eq = kv.find('=');
    if (!kv.empty()) {
      out[percentDecode(kv.substr(0, eq))] =
          eq == std::string_view::npos ? "" : percentDecode(kv.substr(eq + 1));
    }
    start = amp + 1;
  }
  return out;
}

struct Endpoint {
  const char* path;
  const char* help;
  bool mutates;
};

const Endpoint kEndpoints[] = {
    {"/", "Admin home page", false},
    {"/certs", "print certs on machine", false},
    {"/clusters", "upstream cluster status", false},
    {"/config_dump", "dump current Envoy configs", false},
    {"/drain_listeners", "drain listeners", true},
    {"/healthcheck/fail", "cause the server to fail health checks", true},
    {"/healthcheck/ok", "cause the server to pass health checks", true},
    {"/help", "print out list of admin commands", false},
    {"/listeners", "print listener info", false},
    {"/logging", "query/change logging levels", true},
    {"/memory", "print current allocation/heap usage", false},
    {"/quitquitquit", "exit the server", true},
    {"/ready", "print server state, return 200 if LIVE, otherwise return 503", false},
    {"/reset_counters", "reset all counters to zero", true},
    {"/runtime", "print runtime values", false},
    {"/server_info", "print server version/status information", false},
    {"/stats", "print server stats", false},
    {"/stats/prometheus", "print server stats in prometheus format", false},
};

std::string helpText() {
  std::string out = "admin commands are:\n";
  for (const auto& e : kEndpoints) out += std::string("  ") + e.path + ": " + e.help + "\n";
  return out;
}

std::string homePage() {
  std::string out =
      "<!DOCTYPE html><html><head><title>Envoy Admin</title></head><body>"
      "<h1>mast-proxy admin</h1><table>";
  for (const auto& e : kEndpoints) {
    out += std::string("<tr><td><a href='") + e.path + "'>" + e.path + "</a></td><td>" + e.help +
           (e.mutates ? " (POST)" : "") + "</td></tr>";
  }
  return out + "</table></body></html>";
}

AdminResponse json(const nlohmann::json& j, int status = 200) {
  return {status, "application/json", j.dump(2) + "\n"};
}

}  // namespace

AdminResponse handleAdminRequest(AdminContext& ctx, std::string_view method,
                                 std::string_view target) {
  size_t q = target.find('?');
  std::string path(target.substr(0, q));
  auto query = parseQuery(q == std::string_view::npos ? "" : target.substr(q + 1));
  const Endpoint* ep = nullptr;
  for (const auto& e : kEndpoints) {
    if (path == e.path) ep = &e;
  }
  if (!ep) return {404, "text/plain; charset=UTF-8", "invalid path. " + helpText()};
  if (ep->mutates && method != "POST") {
    // GET /logging lists levels; every other mutating endpoint needs POST (Envoy).
    if (!(path == "/logging" && query.empty())) {
      return {405, "text/plain; charset=UTF-8", "This endpoint requires POST.\n"};
    }
  }
  bool used_only = query.count("usedonly");
  std::string filter = query.count("filter") ? query["filter"] : "";
  if (path == "/") return {200, "text/html; charset=UTF-8", homePage()};
  if (path == "/help") return {200, "text/plain; charset=UTF-8", helpText()};
  if (path == "/ready") {
    std::string state = ctx.serverState();
    return {state == "LIVE" ? 200 : 503, "text/plain; charset=UTF-8", state + "\n"};
  }
  if (path == "/server_info") return json(ctx.serverInfo());
  if (path == "/stats") {
    std::string fmt = query.count("format") ? query["format"] : "";
    if (fmt == "json") return {200, "application/json", ctx.statsJson(filter, used_only)};
    if (fmt == "prometheus") {
      return {200, "text/plain; version=0.0.4; charset=UTF-8",
              ctx.statsPrometheus(filter, used_only)};
    }
    if (!fmt.empty() && fmt != "text") return {400, "text/plain; charset=UTF-8", "invalid format\n"};
    return {200, "text/plain; charset=UTF-8", ctx.statsText(filter, used_only)};
  }
  if (path == "/stats/prometheus") {
    return {200, "text/plain; version=0.0.4; charset=UTF-8", ctx.statsPrometheus(filter, used_only)};
  }
  if (path == "/clusters") {
    if (query["format"] == "json") return json(ctx.clustersJson());
    return {200, "text/plain; charset=UTF-8", ctx.clustersText()};
  }
  if (path == "/config_dump") {
    ConfigDumpQuery cq;
    cq.resource = query["resource"];
    cq.mask = query["mask"];
    cq.include_eds = query.count("include_eds");
    return json(ctx.configDump(cq));
  }
  if (path == "/listeners") {
    if (query["format"] == "json") return json(ctx.listenersJson());
    return {200, "text/plain; charset=UTF-8", ctx.listenersText()};
  }
  if (path == "/logging") {
    if (query.empty()) return {200, "text/plain; charset=UTF-8", "active loggers:\n  mast: " + ctx.logLevel() + "\n"};
    std::string level = query.count("level") ? query["level"] : query.begin()->second;
    if (!ctx.setLogLevel(level)) {
      return {400, "text/plain; charset=UTF-8", "error: unknown logger level '" + level + "'\n" + helpText()};
    }
    return {200, "text/plain; charset=UTF-8", "active loggers:\n  mast: " + ctx.logLevel() + "\n"};
  }
  if (path == "/healthcheck/fail") {
    ctx.setHealthCheckFailed(true);
    return {200, "text/plain; charset=UTF-8", "OK\n"};
  }
  if (path == "/healthcheck/ok") {
    ctx.setHealthCheckFailed(false);
    return {200, "text/plain; charset=UTF-8", "OK\n"};
  }
  if (path == "/reset_counters") {
    ctx.resetCounters();
    return {200, "text/plain; charset=UTF-8", "OK\n"};
  }
  if (path == "/drain_listeners") {
    ctx.drainListeners();
    return {200, "text/plain; charset=UTF-8", "OK\n"};
  }
  if (path == "/quitquitquit") {
    ctx.quit();
    return {200, "text/plain; charset=UTF-8", "OK\n"};
  }
  if (path == "/memory") return json(ctx.memory());
  if (path == "/certs") return json(nlohmann::json{{"certificates", nlohmann::json::array()}});
  if (path == "/runtime") {
    return json(nlohmann::json{{"entries", nlohmann::json::object()},
                               {"layers", nlohmann::json::array()}});
  }
  return {404, "text/plain; charset=UTF-8", helpText()};
}

// One admin connection: HTTP/1.1 keep-alive, one request at a time.
class AdminServer::Connection : public std::enable_shared_from_this<Connection>,
                                public http1::Callbacks {
 public:
  Connection(AdminContext& ctx, asio::ip::tcp::socket s)
      : ctx_(ctx), sock_(std::move(s)), codec_(*this, {}) {}
  void start() { read(); }

  void onHeaders(http::HeaderMap&& h, bool end) override {
    request_ = std::move(h);
    if (end) respond();
  }
  void onData(std::string_view, bool end) override {
    if (end) respond();
  }
  void onTrailers(http::HeaderMap&&) override { respond(); }
  void onError(int status, std::string_view) override {
    http::HeaderMap h{{":status", std::to_string(status)}, {"connection", "close"}};
    std::string out;
    codec_.encodeHeaders(h, true, out);
    close_ = true;
    send(std::move(out));
  }

 private:
  void respond() {
    AdminResponse r = handleAdminRequest(ctx_, request_.method(), request_.path());
    http::HeaderMap h{{":status", std::to_string(r.status)},
                      {"content-type", r.content_type},
                      {"content-length", std::to_string(r.body.size())},
                      {"cache-control", "no-cache, max-age=0"},
                      {"x-content-type-options", "nosniff"}};
    std::string out;
    codec_.encodeHeaders(h, false, out);
    if (request_.method() != "HEAD") codec_.encodeData(r.body, true, out);
    close_ = codec_.shouldClose();
    send(std::move(out));
  }

  void send(std::string&& out) {
    busy_ = true;
    auto self = shared_from_this();
    auto buf = std::make_shared<std::string>(std::move(out));
    asio::async_write(sock_, asio::buffer(*buf), [self, buf](std::error_code ec, size_t) {
      self->busy_ = false;
      if (ec || self->close_) {
        std::error_code ig;
        self->sock_.shutdown(asio::ip::tcp::socket::shutdown_both, ig);
        self->sock_.close(ig);
        return;
      }
      self->codec_.resumeAfterResponse();
      self->process();
    });
  }

  // Parses what is buffered; reads more when no request is waiting for its response.
  void process() {
    if (!pending_.empty()) {
      size_t used = codec_.dispatch(pending_.data(), pending_.size());
      pending_.erase(0, used);
    }
    if (busy_ || codec_.failed()) return;
    read();
  }

  void read() {
    auto self = shared_from_this();
    sock_.async_read_some(asio::buffer(buf_), [self](std::error_code ec, size_t n) {
      if (ec) return;
      self->pending_.append(self->buf_.data(), n);
      self->process();
    });
  }

  AdminContext& ctx_;
  asio::ip::tcp::socket sock_;
  http1::ServerCodec codec_;
  http::HeaderMap request_;
  std::string pending_;
  std::array<char, 8192> buf_{};
  bool close_ = false;
  bool busy_ = false;
};

AdminServer::AdminServer(asio::io_context& loop, AdminContext& ctx)
    : loop_(loop), ctx_(ctx), acceptor_(loop) {}

AdminServer::~AdminServer() {
  std::error_code ec;
  acceptor_.close(ec);
}

Result<net::Endpoint> AdminServer::listen(const net::Endpoint& ep) {
  std::error_code ec;
  acceptor_.open(ep.protocol(), ec);
  if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(ep, ec);
  if (!ec) acceptor_.listen(128, ec);
  if (ec) return Error{"cannot bind admin to " + net::toString(ep) + ": " + ec.message()};
  auto bound = acceptor_.local_endpoint(ec);
  accept();
  return bound;
}

void AdminServer::accept() {
  acceptor_.async_accept([this](std::error_code ec, asio::ip::tcp::socket s) {
    if (ec) return;
    std::make_shared<Connection>(ctx_, std::move(s))->start();
    accept();
  });
}

}  // namespace mast::proxy::admin
