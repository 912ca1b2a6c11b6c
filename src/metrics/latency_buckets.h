// LatencyBuckets: a histogram's bucket counts kept in relaxed atomics, for
// observations on the request path (prometheus-cpp's Histogram::Observe
// takes a mutex every worker thread shares). Take() hands what was observed
// since the last Take() to the scrape, which adds it to the exported
// histogram (Histogram::ObserveMultiple) under the registry's own locks.
//
//   LatencyBuckets b({0.001, 0.01, 0.1});
//   b.Observe(0.004);                       // any thread, lock-free
//   auto d = b.Take();                      // the scrape: {0, 1, 0, 0} and sum 0.004
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

namespace kubegate {

class LatencyBuckets {
 public:
  // `bounds`: the buckets' upper bounds, ascending; one more bucket holds
  // what lies above the last.
  explicit LatencyBuckets(std::vector<double> bounds);

  void Observe(double seconds);

  struct Taken {
    std::vector<double> bucket_increments;  // bounds().size() + 1
    double sum_seconds = 0;
  };
  // What was observed since the last Take(), and resets it.
  Taken Take();
  const std::vector<double>& bounds() const { return bounds_; }

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> counts_;
  std::atomic<std::uint64_t> sum_ns_{0};
};

}  // namespace kubegate
