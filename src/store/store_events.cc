#include "store/store_events.h"

#include <poll.h>

#include <libpq-fe.h>
#include <spdlog/spdlog.h>

#include "common/digest.h"
#include "common/thread_name.h"
#include "store/sql_connection.h"

namespace kubegate {

namespace {

// One LISTENing connection; closed when it goes.
struct Listener {
  PGconn* conn = nullptr;
  ~Listener() {
    if (conn) PQfinish(conn);
  }
};

std::string QuoteIdent(PGconn* conn, const std::string& name) {
  char* q = PQescapeIdentifier(conn, name.c_str(), name.size());
  if (!q) return "\"\"";
  std::string out(q);
  PQfreemem(q);
  return out;
}

}  // namespace

const std::string& StoreInstanceId() {
  static const std::string id = RandomId("", 8);
  return id;
}

StoreEvents::StoreEvents(std::string conninfo, std::vector<std::string> channels, Callback on_event,
                         std::string self)
    : conninfo_(std::move(conninfo)),
      channels_(std::move(channels)),
      on_event_(std::move(on_event)),
      self_(std::move(self)) {}

StoreEvents::~StoreEvents() { Stop(); }

std::string StoreEvents::application_name() const { return "kubegate-events-" + self_; }

std::uint64_t StoreEvents::connections() const {
  std::lock_guard<std::mutex> lock(mu_);
  return connections_;
}

bool StoreEvents::WaitListening(std::uint64_t n, std::chrono::milliseconds limit) const {
  std::unique_lock<std::mutex> lock(mu_);
  return listening_.wait_for(lock, limit, [&] { return connections_ >= n; });
}

void StoreEvents::Start() {
  thread_ = std::thread([this] {
    NameThisThread("kg-store-events");
    Run();
  });
}

void StoreEvents::Stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

void StoreEvents::Run() {
  bool warned = false;
  while (!stop_) {
    Listener l;
    l.conn = PQconnectdb(PostgresConnInfo(conninfo_, application_name()).c_str());
    bool ok = PQstatus(l.conn) == CONNECTION_OK;
    for (std::size_t i = 0; ok && i < channels_.size(); ++i) {
      PGresult* r = PQexec(l.conn, ("LISTEN " + QuoteIdent(l.conn, channels_[i])).c_str());
      ok = PQresultStatus(r) == PGRES_COMMAND_OK;
      PQclear(r);
    }
    if (!ok) {
      if (!warned) spdlog::warn("store events: cannot listen ({}); retrying", PQerrorMessage(l.conn));
      warned = true;
      for (auto slept = std::chrono::milliseconds(0); slept < kReconnectDelay && !stop_; slept += kPollSlice) {
        std::this_thread::sleep_for(kPollSlice);
      }
      continue;
    }
    if (warned) spdlog::info("store events: listening again");
    warned = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      connections_++;
    }
    listening_.notify_all();
    while (!stop_) {
      pollfd p{PQsocket(l.conn), POLLIN, 0};
      int n = poll(&p, 1, static_cast<int>(kPollSlice.count()));
      if (n < 0) break;
      if (n == 0) continue;
      if (!PQconsumeInput(l.conn)) break;  // the connection went: reconnect
      while (PGnotify* note = PQnotifies(l.conn)) {
        // "INSTANCE PAYLOAD" (Database::Publish).
        std::string_view text = note->extra ? note->extra : "";
        std::size_t space = text.find(' ');
        std::string_view from = text.substr(0, space);
        std::string_view payload = space == std::string_view::npos ? std::string_view() : text.substr(space + 1);
        if (from != self_) {
          delivered_++;
          on_event_(note->relname, payload);
        }
        PQfreemem(note);
      }
    }
  }
}

}  // namespace kubegate
