#include "control/server/mastd.h"

#include <malloc.h>
#include <unistd.h>

#include <google/protobuf/util/json_util.h>

#include <cmath>
#include <ctime>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "base/logging.h"
#include "control/config/json_proto.h"
#include "control/config/parse.h"
#include "control/config/watcher.h"
#include "control/config/writer.h"
#include "control/model/mesh_model.h"
#include "control/server/analyze.h"
#include "control/server/dependencies.h"
#include "control/xds/type_urls.h"

namespace mast::control::server {

namespace {

HttpResponse json(int status, const nlohmann::json& j) {
  return {status, "application/json", j.dump(2) + "\n"};
}

HttpResponse text(int status, std::string body) {
  return {status, "text/plain; charset=utf-8", std::move(body)};
}

nlohmann::json errorJson(const config::ConfigError& e) {
  return {{"file", e.file}, {"document", e.document}, {"resource", e.resource}, {"line", e.line},
          {"path", e.path}, {"message", e.message},   {"text", e.toString()}};
}

nlohmann::json resourceJson(const config::Resource& r) {
  nlohmann::json meta = {{"name", r.metadata.name}, {"namespace", r.metadata.ns}};
  if (!r.metadata.labels.empty()) meta["labels"] = r.metadata.labels;
  if (!r.metadata.annotations.empty()) meta["annotations"] = r.metadata.annotations;
  return {{"apiVersion", r.api_version},
          {"kind", std::string(config::kindName(r.kind))},
          {"metadata", meta},
          {"spec", r.spec ? config::messageToJson(*r.spec) : nlohmann::json::object()}};
}

std::string rfc3339(SystemTime t) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
  return fmt::format("{}.{:03d}Z", buf, static_cast<int>(ms % 1000));
}

// The `status` block of `mastctl get`: how many connected proxies that need the resource run
// its latest revision.
nlohmann::json statusJson(const ResourceStatus& st) {
  nlohmann::json j = {{"revision", st.revision},
                      {"proxies", st.needed},
                      {"accepted", st.accepted},
                      {"rejected", st.rejected},
                      {"pending", st.pending}};
  if (st.observed_at) j["observedAt"] = rfc3339(*st.observed_at);
  if (st.last_ack) j["lastAckAt"] = rfc3339(*st.last_ack);
  if (st.convergence_seconds) {
    j["convergenceSeconds"] = std::round(*st.convergence_seconds * 1e4) / 1e4;
  }
  std::string summary = st.needed == 0
                            ? "needed by no connected proxy"
                            : fmt::format("accepted by {}/{} proxies", st.accepted, st.needed);
  if (st.rejected > 0) summary += fmt::format(", rejected by {}", st.rejected);
  if (st.pending > 0) summary += fmt::format(", {} pending", st.pending);
  j["summary"] = summary;
  nlohmann::json rejections = nlohmann::json::array();
  nlohmann::json pending = nlohmann::json::array();
  for (const auto& p : st.proxies) {
    if (p.state == "REJECTED") {
      rejections.push_back({{"proxy", p.proxy},
                            {"type", std::string(xds::shortTypeName(p.type_url))},
                            {"version", p.version},
                            {"message", p.message}});
    } else if (p.state == "PENDING") {
      pending.push_back(p.proxy);
    }
  }
  if (!rejections.empty()) j["rejections"] = rejections;
  if (!pending.empty()) j["pendingProxies"] = pending;
  return j;
}

std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool fileHoldsOnly(const config::ConfigSnapshot& snap, const std::string& file,
                   const config::ResourceKey& key) {
  for (const auto& [k, r] : snap.resources()) {
    if (r->source_file == file && !(k == key)) return false;
  }
  return true;
}

}  // namespace

Mastd::Mastd(MastdOptions options, std::unique_ptr<Generator> generator)
    : options_(std::move(options)),
      generator_(std::move(generator)),
      push_time_({0.01, 0.1, 1, 3, 5, 10, 20, 30}) {
  mesh_ = config::defaultMeshConfig();
}

Mastd::~Mastd() { stop(); }

Status Mastd::start() {
  if (!options_.mesh_config_file.empty()) {
    auto r =
        config::parseMeshConfig(options_.mesh_config_file, readFile(options_.mesh_config_file));
    if (!r.errors.empty()) {
      std::string msg;
      for (const auto& e : r.errors) msg += e.toString() + "\n";
      return Error{"mesh config: " + msg};
    }
    mesh_ = r.config;
  }
  debouncer_ = std::make_unique<xds::Debouncer>(
      options_.debounce, [this](std::set<std::string> keys, size_t) { pushAll(keys); });
  expiry_thread_ = std::thread([this] { runExpiry(); });
  trim_thread_ = std::thread([this] { runTrim(); });
  store_.subscribe([this](const std::shared_ptr<const config::ConfigSnapshot>& snap,
                          const std::vector<config::ResourceKey>& changed) {
    config_version_ = snap->version();
    convergence_.observe(snap->version(), changed, std::chrono::system_clock::now());
    for (const auto& k : changed) MAST_LOG(DEBUG, "config: {} changed", k.toString());
    debouncer_->trigger("");
  });
  watcher_ = std::make_unique<config::DirectoryWatcher>(store_, options_.config_dir);
  watcher_->setBatchCallback([](const std::vector<config::ConfigError>& errors) {
    for (const auto& e : errors) MAST_LOG(WARN, "config: {}", e.toString());
  });
  std::vector<config::ConfigError> initial;
  if (auto s = watcher_->start(&initial); !s) return s;
  for (const auto& e : initial) MAST_LOG(WARN, "config: {}", e.toString());
  {
    std::lock_guard lk(mu_);
    updateModelLocked({});
  }
  MAST_LOG(INFO, "config: {} resource(s) from {} ({} error(s))", store_.snapshot()->size(),
           options_.config_dir, initial.size());

  xds::Callbacks cb;
  cb.on_proxy_connected = [this](const xds::ProxyInfo& p) { return onProxyConnected(p); };
  cb.on_proxy_disconnected = [this](const std::string& id, uint64_t stream) {
    onProxyDisconnected(id, stream);
  };
  cb.on_ack = [this](const xds::AckEvent& e) {
    noteXdsActivity();
    convergence_.ack(e.node_id, e.type_url, e.version, std::chrono::system_clock::now());
  };
  cb.on_nack = [this](const xds::AckEvent& e) {
    MAST_LOG(WARN, "xds: {} rejected {} version {}: {}", e.node_id, e.type_url, e.version,
             e.error_detail);
    convergence_.nack(e.node_id, e.type_url, e.version, e.error_detail,
                      std::chrono::system_clock::now());
  };
  xds::XdsServerOptions xo;
  xo.address = options_.listen_address;
  xo.port = options_.xds_port;
  xds_ = std::make_unique<xds::XdsServer>(cache_, cb, xo);
  auto port = xds_->start();
  if (!port) return Error{"xds: " + port.error()};
  xds_port_ = *port;

  http_ = std::make_unique<HttpServer>([this](const HttpRequest& r) { return handle(r); });
  auto addr =
      net::parseEndpoint(options_.listen_address, static_cast<uint16_t>(options_.http_port));
  if (!addr) return Error{"--listen-address: " + addr.error()};
  auto bound = http_->start(*addr);
  if (!bound) return Error{"http: " + bound.error()};
  http_port_ = bound->port();
  MAST_LOG(INFO, "mastd: ADS on {}:{}, HTTP API on {}", options_.listen_address, xds_port_,
           net::toString(*bound));
  return {};
}

void Mastd::stop() {
  {
    std::lock_guard lk(mu_);
    stopping_ = true;
  }
  expiry_cv_.notify_all();
  if (expiry_thread_.joinable()) expiry_thread_.join();
  {
    std::lock_guard lk(trim_mu_);
    trim_stop_ = true;
  }
  trim_cv_.notify_all();
  if (trim_thread_.joinable()) trim_thread_.join();
  if (http_) http_->stop();
  if (xds_) xds_->stop();
  if (watcher_) watcher_->stop();
  debouncer_.reset();
  http_.reset();
}

// === Pushes ===

namespace {
double threadCpuMs() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}
}  // namespace

std::shared_ptr<const xds::Snapshot> Generator::generateFrom(
    const xds::ProxyInfo& proxy, std::shared_ptr<const xds::Snapshot> current) {
  if (current && sameAsBefore(proxy)) return current;
  auto fresh = generate(proxy);
  if (current && xds::Snapshot::sameContent(*current, fresh)) return current;
  return std::make_shared<const xds::Snapshot>(std::move(fresh));
}

std::shared_ptr<const xds::Snapshot> Mastd::snapshotFor(
    const xds::ProxyInfo& proxy, std::shared_ptr<const xds::Snapshot> current) {
  auto snap = generator_->generateFrom(proxy, std::move(current));
  convergence_.generated(proxy.id, model_version_, snap, dependencies_,
                         std::chrono::system_clock::now());
  return snap;
}

void Mastd::updateModelLocked(const std::vector<xds::ProxyInfo>& autos) {
  auto snap = store_.snapshot();
  generator_->update(snap, mesh_, autos);
  ++model_builds_;
  model_version_ = snap->version();
  model_ = generator_->model();
  dependencies_ = model_ ? makeMeshDependencyResolver(model_) : nullptr;
}

void Mastd::pushAll(const std::set<std::string>&) {
  std::lock_guard publish(publish_mu_);
  auto start = std::chrono::steady_clock::now();
  double cpu_start = threadCpuMs();
  auto t_model = start;
  double cpu_model = cpu_start;
  size_t proxy_count = 0;
  size_t reused = 0;
  size_t patched = 0;
  std::vector<std::pair<std::string, std::shared_ptr<const xds::Snapshot>>> out;
  {
    std::lock_guard lk(mu_);
    auto now = std::chrono::steady_clock::now();
    for (auto it = auto_expiry_.begin(); it != auto_expiry_.end();) {
      if (it->second <= now) {
        MAST_LOG(INFO, "registry: auto-registered workload {} expired", it->first);
        auto_registered_.erase(it->first);
        it = auto_expiry_.erase(it);
      } else {
        ++it;
      }
    }
    std::vector<xds::ProxyInfo> autos;
    for (const auto& [id, p] : auto_registered_) autos.push_back(p);
    updateModelLocked(autos);
    t_model = std::chrono::steady_clock::now();
    cpu_model = threadCpuMs();
    proxy_count = proxies_.size();
    for (const auto& [id, p] : proxies_) {
      // A proxy whose config did not change keeps its snapshot object, and its streams are not
      // woken: most proxies of a mesh are untouched by most changes.
      auto current = cache_.getSnapshot(id);
      auto snap = snapshotFor(p, current);
      if (snap != current) out.emplace_back(id, std::move(snap));
    }
    reused = generator_->reusedSharedParts();
    patched = generator_->patchedSharedParts();
  }
  auto t_gen = std::chrono::steady_clock::now();
  double cpu_gen = threadCpuMs();
  // Outside the lock: setSnapshot runs the stream pushes on this thread.
  for (auto& [id, s] : out) cache_.setSnapshot(id, s);
  auto t_set = std::chrono::steady_clock::now();
  double cpu_set = threadCpuMs();
  auto ms = [](auto a, auto b) { return std::chrono::duration<double, std::milli>(b - a).count(); };
  // Wall and this thread's CPU time per phase: on a busy machine the CPU figures are the ones
  // that compare between runs.
  MAST_LOG(INFO,
           "push: {} of {} proxies changed ({} shared parts kept, {} patched); model {:.1f} ms "
           "({:.1f} cpu), generate {:.1f} ms ({:.1f} cpu), send {:.1f} ms ({:.1f} cpu)",
           out.size(), proxy_count, reused, patched, ms(start, t_model), cpu_model - cpu_start,
           ms(t_model, t_gen), cpu_gen - cpu_model, ms(t_gen, t_set), cpu_set - cpu_gen);
  noteXdsActivity();
  pushes_ += out.size();
  ++push_rounds_;
  last_push_ = std::chrono::steady_clock::now();
  last_push_duration_ = std::chrono::duration_cast<std::chrono::microseconds>(last_push_ - start);
  {
    std::lock_guard lk(push_time_mu_);
    push_time_.observe(std::chrono::duration<double>(last_push_ - start).count());
  }
}

Status Mastd::onProxyConnected(const xds::ProxyInfo& proxy) {
  std::shared_ptr<const xds::Snapshot> snap;
  bool registered = false;
  std::unique_lock publish(publish_mu_);
  {
    std::lock_guard lk(mu_);
    auto group = proxy.metadata.find("AUTO_REGISTER_GROUP");
    bool auto_register = group != proxy.metadata.end() && !group->second.empty();
    if (auto_register) {
      // Refused streams get no disconnect callback: check before counting the stream.
      auto ns = proxy.namespace_.empty() ? std::string("default") : proxy.namespace_;
      if (!store_.snapshot()->get(config::Kind::kWorkloadGroup, ns, group->second)) {
        return Error{"AUTO_REGISTER_GROUP: no WorkloadGroup " + ns + "/" + group->second};
      }
    }
    proxies_[proxy.id] = proxy;
    ++streams_[proxy.id];
    convergence_.connected(proxy);
    if (auto_register) {
      auto_expiry_.erase(proxy.id);
      registered = !auto_registered_.count(proxy.id);
      auto_registered_[proxy.id] = proxy;
    }
    snap = snapshotFor(proxy, nullptr);
  }
  MAST_LOG(INFO, "xds: proxy {} connected ({})", proxy.id, proxy.user_agent);
  cache_.setSnapshot(proxy.id, snap);
  noteXdsActivity(/*connections=*/true);
  publish.unlock();
  if (registered) debouncer_->trigger("");  // the new workload changes other proxies' endpoints
  return {};
}

void Mastd::onProxyDisconnected(const std::string& node_id, uint64_t) {
  bool expire = false;
  {
    std::lock_guard lk(mu_);
    if (--streams_[node_id] > 0) return;
    streams_.erase(node_id);
    proxies_.erase(node_id);
    convergence_.disconnected(node_id);
    if (auto_registered_.count(node_id)) {
      auto_expiry_[node_id] = std::chrono::steady_clock::now() + options_.auto_registration_grace;
      expire = true;
    }
  }
  MAST_LOG(INFO, "xds: proxy {} disconnected", node_id);
  noteXdsActivity(/*connections=*/true);
  if (expire) expiry_cv_.notify_all();
}

namespace {
// VmRSS of this process in KiB (0 if unknown), from /proc/self/statm.
long residentKb() {
  std::ifstream statm("/proc/self/statm");
  long size = 0, resident = 0;
  if (!(statm >> size >> resident)) return 0;
  return resident * (sysconf(_SC_PAGESIZE) / 1024);
}
}  // namespace

void Mastd::noteXdsActivity(bool connections) {
  last_xds_activity_.store(std::chrono::steady_clock::now().time_since_epoch().count(),
                           std::memory_order_relaxed);
  if (connections) trim_pending_.store(true, std::memory_order_relaxed);
}

void Mastd::runTrim() {
  using namespace std::chrono;
  // Long enough that a config change following a connection storm is pushed before the trim,
  // which holds each malloc arena while it runs (seconds with ~800 MB free on a busy machine).
  constexpr auto kQuiet = seconds(5);
  std::unique_lock lk(trim_mu_);
  while (!trim_cv_.wait_for(lk, milliseconds(250), [this] { return trim_stop_; })) {
    if (!trim_pending_.load(std::memory_order_relaxed)) continue;
    auto last = steady_clock::time_point(
        steady_clock::duration(last_xds_activity_.load(std::memory_order_relaxed)));
    if (steady_clock::now() - last < kQuiet) continue;
    trim_pending_.store(false, std::memory_order_relaxed);
    lk.unlock();
    auto start = steady_clock::now();
    long before = residentKb();
    malloc_trim(0);
    MAST_LOG(INFO, "malloc_trim after quiet xDS: RSS {:.1f} -> {:.1f} MB in {:.1f} ms",
             before / 1024.0, residentKb() / 1024.0,
             duration<double, std::milli>(steady_clock::now() - start).count());
    lk.lock();
  }
}

// Wakes once the earliest auto-registration expiry has passed and lets pushAll() drop it (a
// reconnect before then cancels the expiry). Owned by Mastd; stop() joins it.
void Mastd::runExpiry() {
  std::unique_lock lk(mu_);
  while (!stopping_) {
    if (auto_expiry_.empty()) {
      expiry_cv_.wait(lk);
      continue;
    }
    auto next = auto_expiry_.begin()->second;
    for (const auto& [id, t] : auto_expiry_) next = std::min(next, t);
    if (expiry_cv_.wait_until(lk, next) == std::cv_status::timeout && !stopping_) {
      lk.unlock();
      debouncer_->trigger("");
      lk.lock();
      // pushAll() erases what expired; wait for that before looking again.
      expiry_cv_.wait_for(lk, std::chrono::milliseconds(50));
    }
  }
}

// === HTTP API ===

HttpResponse Mastd::handle(const HttpRequest& req) {
  const std::string& p = req.path;
  if (p == "/ready") return text(200, "ok\n");
  if (p == "/version") return json(200, {{"version", "mast 0.1"}});
  if (p == "/api/v1/apply" && req.method == "POST") return apply(req);
  if (p == "/api/v1/resources" && req.method == "GET") return get(req);
  if (p == "/api/v1/resources" && req.method == "DELETE") return remove(req);
  if (p == "/api/v1/analyze" && req.method == "POST") return analyzeRequest(req);
  if (p == "/debug/syncz") return syncz();
  if (p == "/debug/adsz") return adsz();
  if (p == "/debug/registryz") return registryz();
  if (p == "/debug/configz") {
    nlohmann::json items = nlohmann::json::array();
    for (const auto& [k, r] : store_.snapshot()->resources()) items.push_back(resourceJson(*r));
    return json(200, {{"version", store_.snapshot()->version()}, {"resources", items}});
  }
  if (p == "/debug/config_errors") return configErrors();
  if (p == "/debug/config_dump") return configDump(req);
  if (p == "/metrics" || p == "/stats/prometheus") return metrics();
  return json(404, {{"error", "no such endpoint: " + req.method + " " + p}});
}

HttpResponse Mastd::apply(const HttpRequest& req) {
  bool dry_run = req.query.count("dryRun") && req.query.at("dryRun") != "false";
  std::string source = req.query.count("source") ? req.query.at("source") : "<stdin>";
  auto parsed = config::parseFile(source, req.body);
  auto errors = parsed.errors();
  if (!errors.empty()) {
    nlohmann::json arr = nlohmann::json::array();
    for (const auto& e : errors) arr.push_back(errorJson(e));
    return json(400, {{"errors", arr}});
  }
  auto snap = store_.snapshot();
  // Decide every document before writing any, so that a conflict writes nothing. A resource
  // that lives in a multi-document file is rewritten in place (its document only); several
  // such resources of one file are rewritten one after the other into one new text.
  struct Plan {
    config::Resource resource;
    std::string outcome;  // created | configured | unchanged
    std::string path;
  };
  std::vector<Plan> plans;
  std::map<std::string, std::string> contents;  // path → what to write
  for (const auto& d : parsed.documents) {
    const auto& r = *d.resource;
    auto existing = snap->get(r.key());
    std::string target = options_.config_dir + "/" + config::resourceFileName(r.key());
    if (existing) target = existing->source_file;
    std::string outcome = !existing                           ? "created"
                          : config::sameContent(*existing, r) ? "unchanged"
                                                              : "configured";
    if (outcome != "unchanged") {
      std::string yaml = config::resourceToYaml(r);
      if (existing && !fileHoldsOnly(*snap, target, r.key())) {
        if (!contents.count(target)) contents[target] = readFile(target);
        auto rewritten = config::rewriteDocument(target, contents[target], r.key(), yaml);
        if (!rewritten) {
          return json(
              409,
              {{"errors", {{{"resource", r.key().toString()}, {"message", rewritten.error()}}}}});
        }
        contents[target] = std::move(*rewritten);
      } else {
        contents[target] = yaml;
      }
    }
    plans.push_back({r, outcome, target});
  }
  if (!dry_run) {
    for (const auto& [path, text] : contents) {
      if (auto s = config::writeFileAtomic(path, text); !s) {
        return json(500, {{"errors", {{{"message", s.error()}}}}});
      }
      store_.applyFile(path, text);  // visible at once; the watcher then sees no change
    }
  }
  nlohmann::json results = nlohmann::json::array();
  for (auto& plan : plans) {
    results.push_back({{"resource", plan.resource.key().toString()},
                       {"kind", std::string(config::kindName(plan.resource.kind))},
                       {"namespace", plan.resource.metadata.ns},
                       {"name", plan.resource.metadata.name},
                       {"outcome", plan.outcome},
                       {"file", plan.path}});
  }
  return json(200, {{"results", results}, {"dryRun", dry_run}});
}

HttpResponse Mastd::get(const HttpRequest& req) {
  auto snap = store_.snapshot();
  std::optional<config::Kind> kind;
  if (req.query.count("kind") && !req.query.at("kind").empty()) {
    kind = config::kindFromName(req.query.at("kind"));
    if (!kind) return json(400, {{"error", "unknown kind '" + req.query.at("kind") + "'"}});
  }
  std::string ns = req.query.count("namespace") ? req.query.at("namespace") : "";
  std::string name = req.query.count("name") ? req.query.at("name") : "";
  bool yaml = req.query.count("format") && req.query.at("format") == "yaml";
  bool with_status = !req.query.count("status") || req.query.at("status") != "false";
  std::vector<std::shared_ptr<const config::Resource>> selected;
  for (const auto& [k, r] : snap->resources()) {
    if (kind && k.kind != *kind) continue;
    if (!ns.empty() && k.ns != ns) continue;
    if (!name.empty() && k.name != name) continue;
    selected.push_back(r);
  }
  if (!name.empty() && selected.empty()) {
    return json(404, {{"error", std::string(kind ? config::kindName(*kind) : "resource") + " " +
                                    (ns.empty() ? "default" : ns) + "/" + name + " not found"}});
  }
  std::map<config::ResourceKey, ResourceStatus> statuses;
  if (with_status) {
    std::vector<config::ResourceKey> keys;
    for (const auto& r : selected) keys.push_back(r->key());
    statuses = convergence_.status(keys);
  }
  nlohmann::json items = nlohmann::json::array();
  std::string yaml_out;
  for (const auto& r : selected) {
    nlohmann::json item = resourceJson(*r);
    auto st = statuses.find(r->key());
    if (st != statuses.end()) item["status"] = statusJson(st->second);
    if (yaml) {
      yaml_out += "---\n" + config::resourceToYaml(*r);
      if (st != statuses.end()) {
        yaml_out += config::jsonToYaml({{"status", item["status"]}});
      }
    }
    items.push_back(std::move(item));
  }
  if (yaml) return {200, "application/yaml", yaml_out};
  return json(200, {{"items", items}, {"version", snap->version()}});
}

HttpResponse Mastd::remove(const HttpRequest& req) {
  auto kind = req.query.count("kind") ? config::kindFromName(req.query.at("kind")) : std::nullopt;
  if (!kind) return json(400, {{"error", "kind is required"}});
  std::string ns = req.query.count("namespace") && !req.query.at("namespace").empty()
                       ? req.query.at("namespace")
                       : "default";
  std::string name = req.query.count("name") ? req.query.at("name") : "";
  config::ResourceKey key{*kind, ns, name};
  auto snap = store_.snapshot();
  auto existing = snap->get(key);
  if (!existing) return json(404, {{"error", key.toString() + " not found"}});
  const std::string& file = existing->source_file;
  if (!fileHoldsOnly(*snap, file, key)) {
    // Only this resource's document goes; the rest of the file stays as written.
    auto rewritten = config::rewriteDocument(file, readFile(file), key, std::nullopt);
    if (!rewritten) return json(409, {{"error", rewritten.error()}});
    if (auto s = config::writeFileAtomic(file, *rewritten); !s) {
      return json(500, {{"error", s.error()}});
    }
    store_.applyFile(file, *rewritten);
  } else {
    if (::unlink(file.c_str()) != 0) {
      return json(500, {{"error", "cannot remove " + file + ": " + std::strerror(errno)}});
    }
    store_.removeFile(file);
  }
  return json(200, {{"results", {{{"resource", key.toString()}, {"outcome", "deleted"}}}}});
}

// The config in force, plus the documents in the body (as if applied), through the analyzers;
// invalid documents (in the body or the config directory) are reported as IST0106.
HttpResponse Mastd::analyzeRequest(const HttpRequest& req) {
  auto snap = store_.snapshot();
  auto resources = snap->resources();
  nlohmann::json messages = nlohmann::json::array();
  auto add = [&](const std::string& level, const std::string& code, const std::string& res,
                 const std::string& msg) {
    AnalysisMessage m{level, code, res, msg};
    messages.push_back({{"level", level},
                        {"code", code},
                        {"resource", res},
                        {"message", msg},
                        {"text", m.toString()}});
  };
  for (const auto& e : store_.errors()) {
    add("Error", "IST0106", e.resource.empty() ? e.file : e.resource, e.toString());
  }
  if (!req.body.empty()) {
    std::string source = req.query.count("source") ? req.query.at("source") : "<stdin>";
    auto parsed = config::parseFile(source, req.body);
    for (const auto& d : parsed.documents) {
      for (const auto& e : d.errors) {
        add("Error", "IST0106", e.resource.empty() ? e.file : e.resource, e.toString());
      }
      if (d.resource)
        resources[d.resource->key()] = std::make_shared<config::Resource>(*d.resource);
    }
  }
  config::ConfigSnapshot overlay(snap->version(), std::move(resources));
  for (const auto& m : analyze(overlay)) add(m.level, m.code, m.resource, m.message);
  return json(200, {{"messages", messages}});
}

HttpResponse Mastd::syncz() {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& st : xds_->status()) {
    nlohmann::json types = nlohmann::json::object();
    for (const auto& [url, t] : st.types) {
      types[xds::shortTypeName(url)] = {{"state", std::string(xds::syncStateName(t.state))},
                                        {"sent_version", t.sent_version},
                                        {"acked_version", t.acked_version},
                                        {"nacked_version", t.nacked_version},
                                        {"error", t.error_message},
                                        {"resources", t.resources_sent},
                                        {"pushes", t.pushes}};
    }
    out.push_back({{"proxy", st.proxy.id},
                   {"type", std::string(xds::proxyTypeName(st.proxy.type))},
                   {"namespace", st.proxy.namespace_},
                   {"user_agent", st.proxy.user_agent},
                   {"delta", st.delta},
                   {"peer", st.peer},
                   {"types", types}});
  }
  return json(200, {{"proxies", out}});
}

HttpResponse Mastd::configErrors() {
  nlohmann::json arr = nlohmann::json::array();
  for (const auto& e : store_.errors()) arr.push_back(errorJson(e));
  return json(200, {{"errors", arr}});
}

HttpResponse Mastd::configDump(const HttpRequest& req) {
  std::string id = req.query.count("proxy") ? req.query.at("proxy") : "";
  auto snap = cache_.getSnapshot(id);
  if (!snap) return json(404, {{"error", "no snapshot for proxy '" + id + "'"}});
  nlohmann::json types = nlohmann::json::object();
  google::protobuf::util::JsonPrintOptions o;
  o.preserve_proto_field_names = true;
  for (const auto& [url, set] : snap->types()) {
    nlohmann::json res = nlohmann::json::array();
    set.forEach([&](const xds::Resource& r) {
      std::string s;
      if (google::protobuf::util::MessageToJsonString(*r.any, &s, o).ok()) {
        res.push_back(nlohmann::json::parse(s));
      }
    });
    types[xds::shortTypeName(url)] = {{"version", set.effectiveVersion()}, {"resources", res}};
  }
  return json(200, {{"proxy", id}, {"types", types}});
}

// istiod's /debug/adsz: every connected stream with its node, protocol flavour, peer, and per
// type what was sent, acked and rejected, the nonces and the subscribed names.
HttpResponse Mastd::adsz() {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& st : xds_->status(true)) {
    nlohmann::json types = nlohmann::json::object();
    for (const auto& [url, t] : st.types) {
      nlohmann::json tj = {{"typeUrl", url},
                           {"state", std::string(xds::syncStateName(t.state))},
                           {"sentVersion", t.sent_version},
                           {"sentNonce", t.sent_nonce},
                           {"ackedVersion", t.acked_version},
                           {"ackedNonce", t.acked_nonce},
                           {"resourcesSent", t.resources_sent},
                           {"pushes", t.pushes},
                           {"nacks", t.nacks},
                           {"wildcard", t.wildcard},
                           {"subscribed", t.subscribed_names}};
      if (!t.nacked_version.empty() || !t.error_message.empty()) {
        tj["lastNack"] = {{"version", t.nacked_version}, {"message", t.error_message}};
      }
      types[xds::shortTypeName(url)] = std::move(tj);
    }
    const auto& p = st.proxy;
    nlohmann::json node = {{"id", p.id},
                           {"type", std::string(xds::proxyTypeName(p.type))},
                           {"ip", p.ip},
                           {"ips", p.ips},
                           {"name", p.name},
                           {"namespace", p.namespace_},
                           {"dnsDomain", p.dns_domain},
                           {"cluster", p.cluster},
                           {"labels", p.labels},
                           {"metadata", p.metadata},
                           {"serviceAccount", p.service_account},
                           {"workloadName", p.workload_name},
                           {"generator", p.generator},
                           {"proxyless", p.proxyless},
                           {"userAgent", p.user_agent}};
    out.push_back({{"node", node},
                   {"streamId", st.stream_id},
                   {"protocol", st.delta ? "delta" : "sotw"},
                   {"peer", st.peer},
                   {"connectedAt", rfc3339(st.connected_at)},
                   {"types", types}});
  }
  return json(200, {{"totalClients", out.size()}, {"clients", out}});
}

// istiod's /debug/registryz: the services and their endpoints as the model (the registry
// translation reads) sees them.
HttpResponse Mastd::registryz() {
  std::shared_ptr<const model::MeshModel> m;
  {
    std::lock_guard lk(mu_);
    m = model_;
  }
  if (!m) return json(503, {{"error", "no model yet"}});
  auto resolution = [](model::Resolution r) -> std::string {
    switch (r) {
      case model::Resolution::kNone:
        return "NONE";
      case model::Resolution::kStatic:
        return "STATIC";
      case model::Resolution::kDns:
        return "DNS";
      case model::Resolution::kDnsRoundRobin:
        return "DNS_ROUND_ROBIN";
    }
    return "NONE";
  };
  nlohmann::json services = nlohmann::json::array();
  for (const auto& svc : m->registry().services()) {
    nlohmann::json ports = nlohmann::json::array();
    nlohmann::json endpoints = nlohmann::json::array();
    for (const auto& port : svc->ports) {
      ports.push_back({{"name", port.name},
                       {"port", port.number},
                       {"protocol", std::string(model::protocolName(port.protocol))},
                       {"targetPort", port.target_port}});
      for (const auto& ep : m->registry().endpoints(*svc, port.number)) {
        nlohmann::json e = {{"address", ep.address},
                            {"port", ep.port},
                            {"servicePort", ep.service_port},
                            {"labels", ep.labels},
                            {"locality", ep.locality},
                            {"weight", ep.weight == 0 ? 1 : ep.weight},
                            {"serviceAccount", ep.service_account},
                            {"network", ep.network},
                            {"tlsMode", ep.tls_istio ? "istio" : "disabled"},
                            {"workload", ep.workload},
                            {"autoRegistered", ep.workload.starts_with("WorkloadGroup instance ")}};
        endpoints.push_back(std::move(e));
      }
    }
    services.push_back(
        {{"hostname", svc->hostname},
         {"namespace", svc->ns},
         {"source", svc->source},
         {"addresses", svc->addresses},
         {"ports", ports},
         {"resolution", resolution(svc->resolution)},
         {"location",
          svc->location == model::Location::kMeshInternal ? "MESH_INTERNAL" : "MESH_EXTERNAL"},
         {"exportTo", svc->export_to},
         {"subjectAltNames", svc->subject_alt_names},
         {"endpoints", endpoints}});
  }
  return json(200, {{"configVersion", m->snapshot().version()}, {"services", services}});
}

HttpResponse Mastd::metrics() {
  auto m = xds_->metrics();
  std::string out;
  auto gauge = [&](const char* name, const char* help, uint64_t v) {
    out += fmt::format("# HELP {} {}\n# TYPE {} gauge\n{} {}\n", name, help, name, name, v);
  };
  auto counter = [&](const char* name, const char* help, uint64_t v) {
    out += fmt::format("# HELP {} {}\n# TYPE {} counter\n{} {}\n", name, help, name, name, v);
  };
  auto lower = [](std::string s) {
    for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
  };
  gauge("pilot_xds", "Number of endpoints connected to this pilot using XDS.", m.connected_proxies);
  gauge("mast_xds_streams", "Open ADS streams with a known node.", m.connected_streams);
  counter("mast_xds_responses_total", "xDS responses sent, all types.", m.pushes_total);
  counter("mast_xds_acks_total", "ACKs received.", m.acks_total);
  counter("pilot_total_xds_rejects", "Total number of XDS responses from pilot rejected by proxy.",
          m.nacks_total);
  counter("mast_model_builds_total", "Model rebuilds (debounced config changes).",
          model_builds_.load());
  counter("mast_xds_push_rounds_total", "Debounced pushes to every connected proxy.",
          push_rounds_.load());
  gauge("mast_config_version", "Version of the config store.", config_version_.load());
  gauge("mast_config_resources", "Istio resources in force.", store_.snapshot()->size());
  gauge("pilot_virt_services", "Total virtual services known to pilot.",
        store_.snapshot()->list(config::Kind::kVirtualService).size());
  gauge("pilot_total_xds_internal_errors", "Config errors currently reported.",
        store_.errors().size());
  out +=
      "# HELP pilot_xds_pushes xDS responses sent to proxies, by type.\n"
      "# TYPE pilot_xds_pushes counter\n";
  for (const auto& [url, n] : m.pushes_by_type) {
    out += fmt::format("pilot_xds_pushes{{type=\"{}\"}} {}\n", lower(xds::shortTypeName(url)), n);
  }
  out +=
      "# HELP pilot_xds_rejects Responses rejected (NACKed) by proxies, by type.\n"
      "# TYPE pilot_xds_rejects counter\n";
  for (const auto& [url, n] : m.nacks_by_type) {
    out += fmt::format("pilot_xds_rejects{{type=\"{}\"}} {}\n", lower(xds::shortTypeName(url)), n);
  }
  // Istio's pilot_xds_{cds,eds,lds,rds}_reject: proxies whose last response of that type was
  // rejected.
  std::map<std::string, uint64_t> rejecting;
  for (const char* t : {"cds", "eds", "lds", "rds"}) rejecting[t] = 0;
  for (const auto& st : xds_->status()) {
    for (const auto& [url, t] : st.types) {
      if (t.state == xds::SyncState::kError) ++rejecting[lower(xds::shortTypeName(url))];
    }
  }
  for (const auto& [t, n] : rejecting) {
    std::string name = "pilot_xds_" + t + "_reject";
    out += fmt::format(
        "# HELP {} Proxies whose last {} response was rejected.\n# TYPE {} gauge\n{} {}\n", name, t,
        name, name, n);
  }
  {
    std::lock_guard lk(push_time_mu_);
    out += push_time_.format("pilot_xds_push_time",
                             "Total time in seconds mastd takes to generate and push xDS to every "
                             "connected proxy after a debounced change.");
  }
  out += convergence_.convergenceHistogram().format(
      "pilot_proxy_convergence_time",
      "Delay in seconds between config change and a proxy receiving all required configuration "
      "(its ACK).");
  return {200, "text/plain; version=0.0.4; charset=utf-8", out};
}

}  // namespace mast::control::server
