#include "metrics/latency_buckets.h"

#include <algorithm>
#include <cmath>

namespace kubegate {

LatencyBuckets::LatencyBuckets(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(std::make_unique<std::atomic<std::uint64_t>[]>(bounds_.size() + 1)) {}

void LatencyBuckets::Observe(double seconds) {
  // Prometheus buckets are "less than or equal": the first bound >= seconds.
  auto at = static_cast<std::size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), seconds) - bounds_.begin());
  counts_[at].fetch_add(1, std::memory_order_relaxed);
  double ns = std::max(0.0, seconds) * 1e9;
  sum_ns_.fetch_add(static_cast<std::uint64_t>(std::llround(ns)), std::memory_order_relaxed);
}

LatencyBuckets::Taken LatencyBuckets::Take() {
  Taken t;
  t.bucket_increments.resize(bounds_.size() + 1);
  for (std::size_t i = 0; i <= bounds_.size(); ++i) {
    t.bucket_increments[i] = static_cast<double>(counts_[i].exchange(0, std::memory_order_relaxed));
  }
  t.sum_seconds = static_cast<double>(sum_ns_.exchange(0, std::memory_order_relaxed)) / 1e9;
  return t;
}

}  // namespace kubegate
