#include "accept/connection_limits.h"

#include <gtest/gtest.h>

#include <vector>

namespace kubegate {
namespace {

TEST(ConnectionLimits, CapsInAllAndPerSourceAndReleasesWithTheTicket) {
  ConnectionLimits limits(/*max_total=*/4, /*max_per_source=*/2);
  std::vector<std::shared_ptr<ConnectionLimits::Ticket>> held;
  for (int i = 0; i < 2; ++i) {
    auto t = limits.Admit("10.0.0.1");
    ASSERT_TRUE(t);
    held.push_back(*t);
  }
  auto third = limits.Admit("10.0.0.1");
  ASSERT_FALSE(third);
  EXPECT_EQ(third.error().http_code, 503);
  EXPECT_NE(third.error().message.find("2 connections from 10.0.0.1"), std::string::npos) << third.error().message;
  for (const char* other : {"10.0.0.2", "10.0.0.3"}) {
    auto t = limits.Admit(other);
    ASSERT_TRUE(t) << other;
    held.push_back(*t);
  }
  auto over = limits.Admit("10.0.0.4");
  ASSERT_FALSE(over);
  EXPECT_NE(over.error().message.find("maximum of 4 client connections"), std::string::npos);
  EXPECT_EQ(limits.open(), 4u);
  held.erase(held.begin());  // a session from 10.0.0.1 ends
  EXPECT_EQ(limits.open(), 3u);
  EXPECT_TRUE(limits.Admit("10.0.0.1"));  // the temporary ticket is released at once
  EXPECT_EQ(limits.open(), 3u);
  held.clear();
  EXPECT_EQ(limits.open(), 0u);
}

}  // namespace
}  // namespace kubegate
