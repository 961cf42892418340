#include "stats/store.h"

#include <gtest/gtest.h>

#include <thread>

namespace mast::stats {
namespace {

TEST(StatsTest, ScopesShareStatsByName) {
  Store store(2);
  Scope cluster = store.rootScope().createScope("cluster.foo.");
  cluster.counter("upstream_rq_total").inc();
  store.counter("cluster.foo.upstream_rq_total").add(2);
  EXPECT_EQ(cluster.counter("upstream_rq_total").value(), 3u);
  Gauge& g = cluster.gauge("upstream_cx_active");
  g.inc();
  g.inc();
  g.dec();
  EXPECT_EQ(g.value(), 1);
}

TEST(StatsTest, ConcurrentIncrementsFromWorkersSum) {
  Store store(4);
  Counter& c = store.counter("c");
  Histogram& h = store.histogram("h");
  std::vector<std::thread> ts;
  for (uint32_t i = 0; i < 4; ++i) {
    ts.emplace_back([&, i] {
      store.registerThread(i);
      for (int k = 0; k < 100000; ++k) {
        c.inc();
        if (k % 100 == 0) h.record(7);
      }
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(c.value(), 400000u);
  EXPECT_EQ(h.snapshot().count, 4000u);
  store.resetCounters();
  EXPECT_EQ(c.value(), 0u);
}

TEST(StatsTest, TextRenderingFiltersAndSorts) {
  Store store(1);
  store.counter("b.two").inc();
  store.counter("a.one").add(5);
  store.gauge("c.gauge").set(3);
  store.counter("unused");
  EXPECT_EQ(renderText(store, "", true), "a.one: 5\nb.two: 1\nc.gauge: 3\n");
  EXPECT_EQ(renderText(store, "^a\\.", false), "a.one: 5\n");
}

TEST(StatsTest, PrometheusTagsAndHistogramBuckets) {
  Store store(1);
  store.registerTagPrefix("cluster.outbound|80||a.b.", "envoy_cluster_name", "outbound|80||a.b",
                          "cluster.");
  store.registerTagPrefix("http.ingress.", "envoy_http_conn_manager_prefix", "ingress", "http.");
  store.counter("cluster.outbound|80||a.b.upstream_rq_200").add(4);
  store.counter("cluster.outbound|80||a.b.upstream_rq_2xx").add(4);
  store.counter("http.ingress.downstream_rq_5xx").inc();
  store.histogram("cluster.outbound|80||a.b.upstream_rq_time").record(3);
  std::string out = renderPrometheus(store, "", false);
  EXPECT_NE(out.find("# TYPE envoy_cluster_upstream_rq counter\n"
                     "envoy_cluster_upstream_rq{envoy_cluster_name=\"outbound|80||a.b\","
                     "envoy_response_code=\"200\"} 4\n"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("envoy_cluster_upstream_rq_xx{envoy_cluster_name=\"outbound|80||a.b\","
                     "envoy_response_code_class=\"2\"} 4"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("envoy_http_downstream_rq_xx{envoy_http_conn_manager_prefix=\"ingress\","
                     "envoy_response_code_class=\"5\"} 1"),
            std::string::npos)
      << out;
  EXPECT_NE(
      out.find("envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name=\"outbound|80||a.b\","
               "le=\"5\"} 1"),
      std::string::npos)
      << out;
  EXPECT_NE(
      out.find("envoy_cluster_upstream_rq_time_count{envoy_cluster_name=\"outbound|80||a.b\"} 1"),
      std::string::npos);
}

TEST(StatsTest, HistogramQuantiles) {
  Store store(1);
  Histogram& h = store.histogram("x");
  for (int i = 0; i < 100; ++i) h.record(i < 50 ? 1 : 100);
  auto snap = h.snapshot();
  EXPECT_LE(snap.quantile(0.25), 1.0);
  EXPECT_GT(snap.quantile(0.9), 50.0);
}

const StatBlockSpec kSpec{
    .counters = {"upstream_rq_total", "upstream_rq_2xx"},
    .gauges = {"membership_total"},
    .histograms = {"upstream_rq_time"},
    .tag = "envoy_cluster_name",
    .metric_prefix = "cluster.",
};

TEST(StatsTest, BlockStatsAreFoundByNameAndRenderedWithTheOthers) {
  Store store(2);
  StatBlock& b = store.block("cluster.outbound|80||a.b.", kSpec);
  EXPECT_EQ(&store.block("cluster.outbound|80||a.b.", kSpec), &b);
  EXPECT_EQ(b.prefix(), "cluster.outbound|80||a.b.");
  b.counter(0).add(3);
  // The same name through a scope or the store is the block's stat, not a second one.
  EXPECT_EQ(&store.counter("cluster.outbound|80||a.b.upstream_rq_total"), &b.counter(0));
  Scope sc = store.rootScope().createScope("cluster.outbound|80||a.b.");
  EXPECT_EQ(&sc.gauge("membership_total"), &b.gauge(0));
  EXPECT_EQ(&sc.histogram("upstream_rq_time"), &b.histogram(0));
  // A name under the prefix but outside the spec is an ordinary stat.
  sc.counter("upstream_rq_200").add(3);
  b.gauge(0).set(1);
  store.counter("a.first").inc();
  store.counter("zzz.last").inc();
  EXPECT_EQ(renderText(store, "", false),
            "a.first: 1\n"
            "cluster.outbound|80||a.b.membership_total: 1\n"
            "cluster.outbound|80||a.b.upstream_rq_200: 3\n"
            "cluster.outbound|80||a.b.upstream_rq_2xx: 0\n"
            "cluster.outbound|80||a.b.upstream_rq_time: No recorded values\n"
            "cluster.outbound|80||a.b.upstream_rq_total: 3\n"
            "zzz.last: 1\n");
  EXPECT_EQ(renderText(store, "rq_total", true), "cluster.outbound|80||a.b.upstream_rq_total: 3\n");
  store.resetCounters();
  EXPECT_EQ(b.counter(0).value(), 0u);
  EXPECT_TRUE(b.counter(0).used());
  EXPECT_FALSE(b.counter(1).used());
}

TEST(StatsTest, BlockStatsGetTheirTagInPrometheus) {
  Store store(1);
  StatBlock& b = store.block("cluster.outbound|80||a.b.", kSpec);
  store.registerTagPrefix("http.ingress.", "envoy_http_conn_manager_prefix", "ingress", "http.");
  b.counter(1).add(4);
  store.counter("cluster.outbound|80||a.b.upstream_rq_200").add(4);
  b.histogram(0).record(3);
  std::string out = renderPrometheus(store, "", true);
  EXPECT_NE(out.find("envoy_cluster_upstream_rq{envoy_cluster_name=\"outbound|80||a.b\","
                     "envoy_response_code=\"200\"} 4\n"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("envoy_cluster_upstream_rq_xx{envoy_cluster_name=\"outbound|80||a.b\","
                     "envoy_response_code_class=\"2\"} 4"),
            std::string::npos)
      << out;
  EXPECT_NE(
      out.find("envoy_cluster_upstream_rq_time_count{envoy_cluster_name=\"outbound|80||a.b\"} 1"),
      std::string::npos)
      << out;
  TaggedName t = extractTags(store, "cluster.outbound|80||a.b.membership_total");
  EXPECT_EQ(t.name, "envoy_cluster_membership_total");
  ASSERT_EQ(t.tags.size(), 1u);
  EXPECT_EQ(t.tags[0].second, "outbound|80||a.b");
}

TEST(StatsTest, HistogramWithoutRecordsIsEmpty) {
  Store store(3);
  Histogram& h = store.histogram("h");
  EXPECT_FALSE(h.used());
  auto snap = h.snapshot();
  EXPECT_EQ(snap.count, 0u);
  EXPECT_EQ(snap.cumulative.size(), Histogram::bucketBounds().size());
  h.record(7000);
  EXPECT_EQ(h.snapshot().count, 1u);
  EXPECT_EQ(h.snapshot().sum, 7000);
}

}  // namespace
}  // namespace mast::stats
