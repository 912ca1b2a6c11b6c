#include "metrics/latency_buckets.h"

#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <prometheus/histogram.h>

namespace kubegate {
namespace {

TEST(LatencyBuckets, CountsEachObservationInItsBucketAndTakeResets) {
  LatencyBuckets b({0.001, 0.01, 0.1});
  b.Observe(0.0005);
  b.Observe(0.001);  // on a bound: that bucket (le="0.001")
  b.Observe(0.05);
  b.Observe(3);      // above every bound
  auto t = b.Take();
  EXPECT_EQ(t.bucket_increments, (std::vector<double>{2, 0, 1, 1}));
  EXPECT_NEAR(t.sum_seconds, 3.0515, 1e-9);
  auto again = b.Take();
  EXPECT_EQ(again.bucket_increments, (std::vector<double>{0, 0, 0, 0}));
  EXPECT_EQ(again.sum_seconds, 0);
}

// What the scrape exports equals what prometheus-cpp's own Observe gives.
TEST(LatencyBuckets, ExportsWhatHistogramObserveWouldHave) {
  const prometheus::Histogram::BucketBoundaries bounds{0.001, 0.01, 0.1};
  LatencyBuckets b(bounds);
  prometheus::Histogram direct(bounds), exported(bounds);
  for (double v : {0.0002, 0.001, 0.002, 0.02, 0.2, 0.01}) {
    b.Observe(v);
    direct.Observe(v);
  }
  auto t = b.Take();
  exported.ObserveMultiple(t.bucket_increments, t.sum_seconds);
  auto d = direct.Collect().histogram, e = exported.Collect().histogram;
  EXPECT_EQ(d.sample_count, e.sample_count);
  EXPECT_NEAR(d.sample_sum, e.sample_sum, 1e-9);
  ASSERT_EQ(d.bucket.size(), e.bucket.size());
  for (std::size_t i = 0; i < d.bucket.size(); ++i) EXPECT_EQ(d.bucket[i].cumulative_count, e.bucket[i].cumulative_count);
}

TEST(LatencyBuckets, ObservationsFromManyThreadsAreAllCounted) {
  LatencyBuckets b({0.001});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) b.Observe(0.0001);
    });
  }
  for (auto& t : threads) t.join();
  auto taken = b.Take();
  EXPECT_EQ(taken.bucket_increments[0], 40000);
}

}  // namespace
}  // namespace kubegate
