#include "control/server/convergence.h"

#include <gtest/gtest.h>

#include "control/xds/type_urls.h"

namespace mast::control::server {
namespace {

using config::Kind;
using config::ResourceKey;
using std::chrono::milliseconds;

// Test seam (not a model): a resolver that says every proxy needs a fixed set of resources.
// The real resolver is tested in dependencies_test.cc.
class FixedDependencies : public DependencyResolver {
 public:
  explicit FixedDependencies(std::set<ResourceKey> keys)
      : keys_(std::make_shared<const std::set<ResourceKey>>(std::move(keys))) {}
  Dependencies dependencies(const xds::ProxyInfo&, const xds::Snapshot&) const override {
    return {{keys_}};
  }

 private:
  std::shared_ptr<const std::set<ResourceKey>> keys_;
};

const std::string kCds{xds::kClusterType};
const std::string kLds{xds::kListenerType};
const std::string kRds{xds::kRouteType};

const ResourceKey kReviews{Kind::kVirtualService, "default", "reviews"};
const ResourceKey kRatings{Kind::kVirtualService, "default", "ratings"};

// A snapshot whose per-type versions are what the test says (one resource per named type).
std::shared_ptr<const xds::Snapshot> snap(std::map<std::string, std::string> versions) {
  auto s = std::make_shared<xds::Snapshot>();
  for (const auto& [type, version] : versions) {
    google::protobuf::Any any;
    any.set_type_url(type);
    EXPECT_TRUE(s->set(type, version, {{"r", any}}).ok());
  }
  return s;
}

class ConvergenceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    proxy_.id = "router~127.0.0.1~gw.default~default.svc.cluster.local";
    proxy_.type = xds::ProxyType::kRouter;
    tracker_.connected(proxy_);
  }
  SystemTime at(int ms) { return t0_ + milliseconds(ms); }
  ResourceStatus status(const ResourceKey& k) { return tracker_.status({k}).at(k); }
  void ackAll(const std::map<std::string, std::string>& versions, int ms) {
    for (const auto& [type, v] : versions) tracker_.ack(proxy_.id, type, v, at(ms));
  }

  ConvergenceTracker tracker_;
  xds::ProxyInfo proxy_;
  SystemTime t0_ = std::chrono::system_clock::now();
  std::shared_ptr<const DependencyResolver> deps_ =
      std::make_shared<FixedDependencies>(std::set<ResourceKey>{kReviews});
};

TEST_F(ConvergenceTest, AcceptedWhenEveryTypeOfTheGenerationIsAcked) {
  tracker_.observe(1, {kReviews}, at(0));
  std::map<std::string, std::string> v = {{kCds, "c1"}, {kLds, "l1"}};
  tracker_.generated(proxy_.id, 1, snap(v), deps_, at(5));
  auto st = status(kReviews);
  EXPECT_EQ(st.revision, 1u);
  EXPECT_EQ(st.needed, 1);
  EXPECT_EQ(st.pending, 1);
  EXPECT_FALSE(st.convergence_seconds);

  tracker_.ack(proxy_.id, kCds, "c1", at(10));
  EXPECT_EQ(status(kReviews).pending, 1);  // LDS not acked yet
  tracker_.ack(proxy_.id, kLds, "l1", at(40));
  st = status(kReviews);
  EXPECT_EQ(st.accepted, 1);
  EXPECT_EQ(st.pending, 0);
  ASSERT_TRUE(st.convergence_seconds);
  EXPECT_NEAR(*st.convergence_seconds, 0.040, 1e-6);
  ASSERT_EQ(st.proxies.size(), 1u);
  EXPECT_EQ(st.proxies[0].state, "ACCEPTED");
}

TEST_F(ConvergenceTest, ANewRevisionIsPendingUntilConfigGeneratedFromItIsAcked) {
  std::map<std::string, std::string> v1 = {{kRds, "r1"}};
  tracker_.observe(1, {kReviews}, at(0));
  tracker_.generated(proxy_.id, 1, snap(v1), deps_, at(1));
  ackAll(v1, 2);
  ASSERT_EQ(status(kReviews).accepted, 1);

  tracker_.observe(2, {kReviews}, at(100));
  auto st = status(kReviews);
  EXPECT_EQ(st.revision, 2u);
  EXPECT_EQ(st.pending, 1) << "the proxy runs revision 1";

  // Two generations before any ACK (a burst): acking the newer one accepts the revision.
  tracker_.generated(proxy_.id, 2, snap({{kRds, "r2"}}), deps_, at(110));
  tracker_.observe(3, {kRatings}, at(115));
  tracker_.generated(proxy_.id, 3, snap({{kRds, "r3"}}), deps_, at(120));
  tracker_.ack(proxy_.id, kRds, "r3", at(150));
  st = status(kReviews);
  EXPECT_EQ(st.accepted, 1);
  ASSERT_TRUE(st.convergence_seconds);
  EXPECT_NEAR(*st.convergence_seconds, 0.050, 1e-6);

  // The histogram saw the second acceptance (from the first unaccepted change, at 100 ms).
  auto h = tracker_.convergenceHistogram();
  EXPECT_EQ(h.count, 1u);
  EXPECT_NEAR(h.sum, 0.050, 1e-6);
}

TEST_F(ConvergenceTest, NackRejectsWithTheMessageAndAFixAcceptsAgain) {
  std::map<std::string, std::string> v1 = {{kCds, "c1"}, {kRds, "r1"}};
  tracker_.observe(1, {kReviews}, at(0));
  tracker_.generated(proxy_.id, 1, snap(v1), deps_, at(1));
  ackAll(v1, 2);

  tracker_.observe(2, {kReviews}, at(10));
  tracker_.generated(proxy_.id, 2, snap({{kCds, "c1"}, {kRds, "bad"}}), deps_, at(11));
  tracker_.nack(proxy_.id, kRds, "bad", "unsupported variable", at(12));
  auto st = status(kReviews);
  EXPECT_EQ(st.rejected, 1);
  EXPECT_EQ(st.accepted, 0);
  ASSERT_EQ(st.proxies.size(), 1u);
  EXPECT_EQ(st.proxies[0].state, "REJECTED");
  EXPECT_EQ(st.proxies[0].message, "unsupported variable");
  EXPECT_EQ(st.proxies[0].type_url, kRds);
  EXPECT_EQ(st.proxies[0].version, "bad");

  // Another resource changes, the rejected route content stays: the server will not resend
  // it, so this generation is rejected at once (not pending forever).
  tracker_.observe(3, {kRatings}, at(20));
  tracker_.generated(proxy_.id, 3, snap({{kCds, "c2"}, {kRds, "bad"}}), deps_, at(21));
  tracker_.ack(proxy_.id, kCds, "c2", at(22));
  EXPECT_EQ(status(kReviews).rejected, 1);

  // The fix.
  tracker_.observe(4, {kReviews}, at(30));
  tracker_.generated(proxy_.id, 4, snap({{kCds, "c2"}, {kRds, "r4"}}), deps_, at(31));
  tracker_.ack(proxy_.id, kRds, "r4", at(45));
  st = status(kReviews);
  EXPECT_EQ(st.accepted, 1);
  EXPECT_EQ(st.rejected, 0);
  EXPECT_NEAR(*st.convergence_seconds, 0.015, 1e-6);
}

TEST_F(ConvergenceTest, OnlyProxiesThatNeedTheResourceCount) {
  xds::ProxyInfo other;
  other.id = "sidecar~10.0.0.1~ratings-v1.default~default.svc.cluster.local";
  other.type = xds::ProxyType::kSidecar;
  tracker_.connected(other);
  auto ratings_only = std::make_shared<FixedDependencies>(std::set<ResourceKey>{kRatings});
  tracker_.observe(1, {kReviews, kRatings}, at(0));
  std::map<std::string, std::string> v = {{kLds, "l"}};
  tracker_.generated(proxy_.id, 1, snap(v), deps_, at(1));
  tracker_.generated(other.id, 1, snap(v), ratings_only, at(1));
  tracker_.ack(other.id, kLds, "l", at(3));
  auto all = tracker_.status({kReviews, kRatings});
  EXPECT_EQ(all[kReviews].needed, 1);
  EXPECT_EQ(all[kReviews].pending, 1);
  EXPECT_EQ(all[kRatings].needed, 1);
  EXPECT_EQ(all[kRatings].accepted, 1);

  tracker_.disconnected(proxy_.id);
  EXPECT_EQ(status(kReviews).needed, 0);
  EXPECT_FALSE(status(kReviews).convergence_seconds);
}

TEST_F(ConvergenceTest, AReconnectStartsTheAckStateOverButKeepsWhatWasAccepted) {
  std::map<std::string, std::string> v = {{kLds, "l1"}};
  tracker_.observe(1, {kReviews}, at(0));
  tracker_.generated(proxy_.id, 1, snap(v), deps_, at(1));
  ackAll(v, 2);
  tracker_.connected(proxy_);  // new stream
  tracker_.generated(proxy_.id, 1, snap(v), deps_, at(10));
  EXPECT_EQ(status(kReviews).accepted, 1) << "the proxy still runs what it accepted";
  ackAll(v, 12);
  EXPECT_EQ(status(kReviews).accepted, 1);
}

TEST(HistogramTest, PrometheusExposition) {
  Histogram h({0.1, 1});
  h.observe(0.05);
  h.observe(0.1);
  h.observe(2);
  EXPECT_EQ(h.format("x_seconds", "Help."),
            "# HELP x_seconds Help.\n# TYPE x_seconds histogram\n"
            "x_seconds_bucket{le=\"0.1\"} 2\nx_seconds_bucket{le=\"1\"} 2\n"
            "x_seconds_bucket{le=\"+Inf\"} 3\nx_seconds_sum 2.15\nx_seconds_count 3\n");
}

}  // namespace
}  // namespace mast::control::server
