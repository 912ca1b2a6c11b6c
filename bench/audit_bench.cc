// Audit benchmarks (docs/performance.md has the figures and commands).
//
//   audit_bench throughput --backend sqlite|postgres [--conninfo C] [--producers P] [--records N]
//     P threads each submit a decision record and wait for its commit before
//     the next one, as requests do; reports records/s and the mean group
//     commit size. With --bulk, records are submitted without waiting;
//     with --fsync-interval MS, as audit.fsync: interval.
//   audit_bench query --backend ... --records N
//     Fills the store with N hash-chained records (varied users, verbs,
//     namespaces; 1% denials; 0.1% approvals), then times filtered reviewer
//     queries (median of 5, newest 100).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "audit/audit_log.h"
#include "audit/audit_record.h"
#include "common/clock.h"
#include "audit/audit_store.h"

namespace kubegate {
namespace {

using Steady = std::chrono::steady_clock;

struct Options {
  std::string mode, backend = "sqlite", conninfo, dir = "/tmp/kubegate-audit-bench";
  int producers = 16;
  long records = 100000;
  bool bulk = false;
  std::int64_t fsync_interval_ms = 0;  // audit.fsync: interval when > 0
};

AuditEntry Make(long i, std::int64_t t) {
  static const char* kVerbs[] = {"get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"};
  static const char* kResources[] = {"pods", "deployments", "services", "configmaps", "secrets", "namespaces",
                                     "nodes", "jobs", "ingresses", "events"};
  Identity who;
  who.user = "user-" + std::to_string(i % 1000);
  who.groups = {"team-" + std::to_string(i % 37)};
  who.kind = i % 5 ? IdentityKind::kHuman : IdentityKind::kAgent;
  RequestInfo info;
  info.is_resource_request = true;
  info.verb = kVerbs[i % 8];
  info.api_version = "v1";
  info.resource = kResources[(i / 8) % 10];
  info.namespace_ = "ns-" + std::to_string((i * 7) % 200);
  info.name = "obj-" + std::to_string(i % 5000);
  DecisionFacts f;
  f.request_id = "kg-bench-" + std::to_string(i);
  f.received_ms = t;
  f.who = &who;
  f.source = "10.0.0.1";
  f.method = "GET";
  f.target = "/api/v1/namespaces/" + info.namespace_ + "/" + info.resource + "/" + info.name;
  f.user_agent = "kubectl/v1.32.0 (linux/amd64) kubernetes/abc";
  f.kubectl_command = "kubectl get";
  f.info = &info;
  f.action = i % 100 == 7 ? "deny" : "allow";
  f.rule = "bench";
  if (i % 1000 == 3) {
    f.action = "review";
    f.approval = {{"id", "ap-" + std::to_string(i)},
                  {"approvers", {{{"user", "approver-" + std::to_string(i % 13)}, {"at", "2026-11-22T00:00:00Z"}}}}};
  }
  return *BuildDecisionEntry(f);
}

// `fresh`: start from an empty SQLite directory (the query benchmark keeps
// a filled one and tops it up).
StoreConfig Config(const Options& o, bool fresh) {
  StoreConfig c;
  if (o.backend == "postgres") {
    c.postgres_conninfo = o.conninfo;
  } else {
    if (fresh) std::filesystem::remove_all(o.dir);
    std::filesystem::create_directories(o.dir);
    c.sqlite_path = o.dir + "/kubegate.db";
  }
  return c;
}

int Throughput(const Options& o) {
  auto store = AuditStore::Open(Config(o, true));
  if (!store) {
    std::fprintf(stderr, "%s\n", store.error().message.c_str());
    return 1;
  }
  if (o.backend == "postgres") (void)(*store)->database().Run("TRUNCATE audit_log, audit_group, audit_approver");
  AuditLogOptions opts;
  opts.fsync_interval_ms = o.fsync_interval_ms;
  AuditLog log(std::move(*store), SystemClock(), nullptr, opts);
  auto start = Steady::now();
  std::atomic<long> next{0};
  std::atomic<long> failed{0};
  if (o.bulk) {
    for (long i = 0; i < o.records; ++i) {
      while (!log.Submit(Make(i, SystemClock().NowMillis()))) std::this_thread::yield();
    }
    log.Flush();
  } else {
    std::vector<std::thread> threads;
    for (int p = 0; p < o.producers; ++p) {
      threads.emplace_back([&] {
        long i;
        while ((i = next++) < o.records) {
          std::promise<bool> done;
          auto f = done.get_future();
          log.Submit(Make(i, SystemClock().NowMillis()), [&done](const Result<bool>& r) { done.set_value(r.ok()); });
          if (!f.get()) failed++;
        }
      });
    }
    for (auto& t : threads) t.join();
  }
  double secs = std::chrono::duration<double>(Steady::now() - start).count();
  const AuditStats& s = log.stats();
  std::printf("backend=%s mode=%s producers=%d records=%ld seconds=%.2f records_per_s=%.0f batches=%llu "
              "mean_batch=%.1f failed=%ld\n",
              o.backend.c_str(), o.bulk ? "bulk" : "gated", o.bulk ? 1 : o.producers, o.records, secs, o.records / secs,
              static_cast<unsigned long long>(s.batches.load()),
              s.batches ? static_cast<double>(s.committed) / static_cast<double>(s.batches) : 0.0, failed.load());
  return 0;
}

int Query(const Options& o) {
  auto store = AuditStore::Open(Config(o, false));
  if (!store) {
    std::fprintf(stderr, "%s\n", store.error().message.c_str());
    return 1;
  }
  AuditStore& st = **store;
  // Filling is the slow part; a big page cache keeps the indexes in memory.
  // Queries below use the gateway's own settings' (64 MiB) after reopening.
  if (o.backend == "sqlite") (void)st.database().ExecScript("PRAGMA cache_size=-4000000; PRAGMA synchronous=OFF");
  std::int64_t t0 = 1'790'000'000'000;
  auto fill_start = Steady::now();
  const long kBatch = 10000;
  auto head = st.AuditHead();
  long have = head ? static_cast<long>(head->seq) : 0;
  for (long base = have; base < o.records; base += kBatch) {
    std::vector<AuditEntry> batch;
    for (long i = base; i < std::min(o.records, base + kBatch); ++i) batch.push_back(Make(i, t0 + i * 10));
    auto r = st.AppendAudit(batch);
    if (!r) {
      std::fprintf(stderr, "%s\n", r.error().message.c_str());
      return 1;
    }
    // As the gateway's writer does, behind the log.
    while (true) {
      auto n = st.CatchUpIndex(&batch, kBatch);
      if (!n) {
        std::fprintf(stderr, "%s\n", n.error().message.c_str());
        return 1;
      }
      if (*n == 0) break;
    }
    if ((base / kBatch) % 100 == 0) std::fprintf(stderr, "filled %ld\n", base + kBatch);
  }
  double fill = std::chrono::duration<double>(Steady::now() - fill_start).count();
  auto filled = st.AuditHead();
  std::printf("backend=%s records=%lld fill_seconds=%.0f\n", o.backend.c_str(),
              static_cast<long long>(filled ? filled->seq : 0), fill);
  std::fflush(stdout);
  StoreConfig reopen = Config(o, /*fresh=*/false);
  auto fresh = AuditStore::Open(reopen);
  if (!fresh) return 1;
  AuditStore& q_store = **fresh;
  struct Q {
    const char* what;
    AuditQuery q;
  } queries[] = {
      {"user", {.actor = "user-42"}},
      {"user+verb", {.actor = "user-42", .verb = "delete"}},
      {"namespace+last hour", {.since_ms = t0 + (o.records - 360000) * 10, .namespace_ = "ns-17"}},
      {"group", {.group = "team-5"}},
      {"decision=deny", {.decision = "deny"}},
      {"approver", {.approver = "approver-3"}},
      {"approval id", {.approval_id = "ap-3003"}},
      {"name", {.name = "obj-77"}},
      {"time range 1 min, 3 days ago", {.since_ms = t0 + (o.records / 2) * 10, .until_ms = t0 + (o.records / 2) * 10 + 60000}},
      {"kind=agent+resource=secrets", {.kind = "agent", .resource = "secrets"}},
  };
  for (auto& q : queries) {
    std::vector<double> ms;
    std::size_t n = 0;
    for (int rep = 0; rep < 5; ++rep) {
      auto s = Steady::now();
      auto r = q_store.QueryAudit(q.q);
      ms.push_back(std::chrono::duration<double, std::milli>(Steady::now() - s).count());
      n = r ? r->size() : 0;
    }
    std::sort(ms.begin(), ms.end());
    std::printf("query %-32s rows=%3zu median_ms=%.2f max_ms=%.2f\n", q.what, n, ms[2], ms[4]);
    std::fflush(stdout);
  }
  return 0;
}

}  // namespace
}  // namespace kubegate

int main(int argc, char** argv) {
  kubegate::Options o;
  if (argc < 2) {
    std::fprintf(stderr, "usage: audit_bench throughput|query [--backend sqlite|postgres] [--conninfo C] "
                         "[--producers P] [--records N] [--bulk] [--fsync-interval MS] [--dir D]\n");
    return 2;
  }
  o.mode = argv[1];
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&] { return i + 1 < argc ? std::string(argv[++i]) : std::string(); };
    if (a == "--backend") o.backend = next();
    else if (a == "--conninfo") o.conninfo = next();
    else if (a == "--producers") o.producers = std::atoi(next().c_str());
    else if (a == "--records") o.records = std::atol(next().c_str());
    else if (a == "--dir") o.dir = next();
    else if (a == "--bulk") o.bulk = true;
    else if (a == "--fsync-interval") o.fsync_interval_ms = std::atoll(next().c_str());
  }
  if (o.mode == "throughput") return kubegate::Throughput(o);
  if (o.mode == "query") return kubegate::Query(o);
  return 2;
}
