#pragma once
// ServiceRegistry over Istio's own resources: ServiceEntry (one Service per host), their inline
// endpoints, WorkloadEntries picked by a ServiceEntry's workloadSelector (same namespace), and
// auto-registered WorkloadGroup instances (treated exactly like WorkloadEntries).
//
// Immutable after construction; built from one ConfigSnapshot.
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "control/config/store.h"
#include "control/model/registry.h"

namespace mast::control::model {

class ServiceEntryRegistry final : public ServiceRegistry {
 public:
  ServiceEntryRegistry(const config::ConfigSnapshot& snapshot,
                       const std::vector<WorkloadInstance>& instances);
  // The same registry, built incrementally: the services of every ServiceEntry not named in
  // `rebuild` ("ns/name") are taken from `previous` as they are. Only valid when, between the
  // snapshot `previous` was built from and `snapshot`, ServiceEntries and `instances` did not
  // change and every changed WorkloadEntry is selected only by entries named in `rebuild`
  // (before and after the change): that is, an endpoint-only change (mastd checks it).
  ServiceEntryRegistry(const config::ConfigSnapshot& snapshot,
                       const std::vector<WorkloadInstance>& instances,
                       const ServiceEntryRegistry& previous, const std::set<std::string>& rebuild);

  const std::vector<std::shared_ptr<const Service>>& services() const override { return services_; }
  std::vector<Endpoint> endpoints(const Service& service, uint32_t port) const override;

 private:
  // One workload (inline endpoint, WorkloadEntry or WorkloadGroup instance) of a ServiceEntry.
  struct Workload {
    istio::networking::v1alpha3::WorkloadEntry entry;
    std::string origin;  // "WorkloadEntry ns/name" / "inline" / "host"
  };
  struct Source {
    std::vector<Workload> workloads;
  };
  void build(const config::ConfigSnapshot& snapshot, const std::vector<WorkloadInstance>& instances,
             const ServiceEntryRegistry* previous, const std::set<std::string>* rebuild);

  std::vector<std::shared_ptr<const Service>> services_;
  std::map<const Service*, std::shared_ptr<const Source>> sources_;
};

}  // namespace mast::control::model
