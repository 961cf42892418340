#pragma once
// mastctl's commands, as functions of their arguments and output streams (testable without a
// terminal). Each returns the process exit code: 0 success, 1 rejected/failed, 2 usage error.
#include <iosfwd>
#include <string>
#include <vector>

namespace mast::cli {

struct GlobalOptions {
  std::string mastd = "127.0.0.1:15014";
};

// Canonical kind for kubectl-style names and short names ("vs", "virtualservices",
// "destinationrule", "dr", "gw", "se", ...); empty if unknown.
std::string canonicalKind(std::string kind);

int apply(const GlobalOptions& g, const std::vector<std::string>& files, bool dry_run,
          std::istream& in, std::ostream& out, std::ostream& err);
int get(const GlobalOptions& g, const std::string& kind, const std::string& name,
        const std::string& ns, bool all_namespaces, const std::string& output, std::ostream& out,
        std::ostream& err);
int removeFiles(const GlobalOptions& g, const std::vector<std::string>& files, std::istream& in,
                std::ostream& out, std::ostream& err);
int removeResource(const GlobalOptions& g, const std::string& kind, const std::string& name,
                   const std::string& ns, std::ostream& out, std::ostream& err);
int proxyStatus(const GlobalOptions& g, const std::string& proxy, std::ostream& out,
                std::ostream& err);

}  // namespace mast::cli

namespace mast::cli {

// `mastctl analyze [-f FILE...]`: the config in force (plus FILEs, as if applied) through
// mastd's analyzers. Exit 79 when an Error is found (istioctl's code), 0 otherwise.
int analyze(const GlobalOptions& g, const std::vector<std::string>& files, std::istream& in,
            std::ostream& out, std::ostream& err);

// `mastctl proxy-config cluster|listener|route|endpoint|bootstrap [PROXY]`: a proxy's own view,
// read from its admin /config_dump (/clusters for endpoints), in istioctl's table shapes, or the
// raw JSON with output "json". The admin is `admin` ("host:port") when given; else PROXY's (a
// name from mastd's connected proxies, NAME.NAMESPACE, node id or a unique prefix; see
// proxy_target.h for how its admin is reached); else 127.0.0.1:15000 (mastctl run inside a
// workload's namespace). Unknown or ambiguous PROXY: exit 1 with the candidates.
int proxyConfig(const GlobalOptions& g, const std::string& proxy, const std::string& admin,
                const std::string& type, const std::string& output, std::ostream& out,
                std::ostream& err);

}  // namespace mast::cli
