// ConnectionLimits: how many client connections kubegate holds open, in
// all and per source address. The accept stage asks before it spends
// anything on a connection (no TLS handshake, no session); a connection
// over a cap is closed at once and counted.
//
//   ConnectionLimits limits(8192, 1024);
//   auto ticket = limits.Admit("10.0.0.7");
//   if (!ticket) { close(socket); log(ticket.error().message); }
//   // ticket held by the session; released when it ends
//
// Behind a load balancer or NAT every caller may share one source
// address: set max_per_source to the total then (docs/configuration.md).
// Thread-safe: sessions end on any worker thread.
#pragma once

#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "common/result.h"

namespace kubegate {

class ConnectionLimits {
 public:
  // Released (the connection no longer counts) when destroyed.
  class Ticket {
   public:
    Ticket(ConnectionLimits* owner, std::string source) : owner_(owner), source_(std::move(source)) {}
    Ticket(Ticket&& o) noexcept : owner_(o.owner_), source_(std::move(o.source_)) { o.owner_ = nullptr; }
    Ticket& operator=(Ticket&&) = delete;
    Ticket(const Ticket&) = delete;
    ~Ticket();

   private:
    ConnectionLimits* owner_;
    std::string source_;
  };

  ConnectionLimits(std::size_t max_total, std::size_t max_per_source)
      : max_total_(max_total), max_per_source_(max_per_source) {}

  // A ticket, or a 503 naming the cap that was reached.
  Result<std::shared_ptr<Ticket>> Admit(const std::string& source);
  std::size_t open() const;

 private:
  void Release(const std::string& source);

  const std::size_t max_total_;
  const std::size_t max_per_source_;
  mutable std::mutex mu_;
  std::size_t open_ = 0;
  std::unordered_map<std::string, std::size_t> per_source_;
};

}  // namespace kubegate
