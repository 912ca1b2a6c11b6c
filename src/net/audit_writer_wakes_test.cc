// AuditWriterWakes: the entries a worker's handlers submit in one turn of
// its loop cost the audit writer one wake-up, after those handlers; off a
// worker's thread the writer is woken at once.
#include "net/audit_writer_wakes.h"

#include <gtest/gtest.h>

#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

namespace kubegate {
namespace {

namespace asio = boost::asio;

class CountingSink final : public AuditSink {
 public:
  bool Submit(AuditEntry, Done) override { return true; }
  void WakeWriter() override { wakes++; }
  bool healthy() const override { return true; }
  int wakes = 0;
};

TEST(AuditWriterWakes, OneWakeUpPerTurnOfTheLoopAfterItsHandlers) {
  CountingSink sink;
  AuditWriterWakes wakes(sink);
  asio::io_context ioc;
  int seen_by_second_handler = -1;
  std::thread worker([&] {
    AuditWriterWakes::BindThisThread(ioc);
    // Two handlers ready in the same turn, each submitting entries.
    asio::post(ioc, [&] {
      wakes.Schedule();
      wakes.Schedule();
    });
    asio::post(ioc, [&] {
      seen_by_second_handler = sink.wakes;
      wakes.Schedule();
    });
    ioc.run();
    ioc.restart();
    // A later turn wakes the writer again.
    asio::post(ioc, [&] { wakes.Schedule(); });
    ioc.run();
  });
  worker.join();
  EXPECT_EQ(seen_by_second_handler, 0) << "the writer was woken before the turn's handlers had run";
  EXPECT_EQ(sink.wakes, 2);
}

TEST(AuditWriterWakes, AThreadWithoutALoopWakesTheWriterAtOnce) {
  CountingSink sink;
  AuditWriterWakes wakes(sink);
  std::thread other([&] {
    wakes.Schedule();
    EXPECT_EQ(sink.wakes, 1);
    wakes.Schedule();
    EXPECT_EQ(sink.wakes, 2);
  });
  other.join();
}

}  // namespace
}  // namespace kubegate
