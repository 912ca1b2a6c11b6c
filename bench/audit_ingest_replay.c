// Replays real audit entries into a fresh SQLite database the way the
// audit ingest writes them (bench/audit_ingest_replay.sh builds and runs
// it): transactions of BATCH entries, multi-row INSERTs of 64 rows with
// bound parameters, WAL, synchronous=FULL, a 64 MiB page cache. Prints the
// process CPU per entry spent in the inserts and commits (reading the
// source is not counted).
//   audit_ingest_replay SOURCE.db TARGET.db SCHEMA.sql LAYOUT BATCH
// LAYOUT "split": rows go to audit_log (16 columns) and audit_index
// (14 columns), as kubegate's tables are today; "merged": one audit_log
// row of 17 columns (the 16 and task) per entry. Groups and approvers go
// to audit_group / audit_approver in both.
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#define ROWS_PER_INSERT 64
#define MAX_COLS 17

typedef struct {
  sqlite3_int64 seq, time_ms;
  char* text[MAX_COLS];  // by column number; NULL for the integer columns
  char* groups[8];
  int n_groups;
} Entry;

static void Die(sqlite3* db, const char* what) {
  fprintf(stderr, "%s: %s\n", what, sqlite3_errmsg(db));
  exit(1);
}

static double CpuSeconds(void) {
  struct timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static char* ReadFile(const char* path) {
  FILE* f = fopen(path, "rb");
  if (!f) {
    perror(path);
    exit(1);
  }
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char* s = malloc((size_t)n + 1);
  if (fread(s, 1, (size_t)n, f) != (size_t)n) exit(1);
  s[n] = 0;
  fclose(f);
  return s;
}

// "INSERT INTO table(columns) VALUES (?,..),(?,..)" for `rows` rows.
static sqlite3_stmt* Prepare(sqlite3* db, const char* table, const char* columns, int n_cols, int rows) {
  size_t cap = 256 + strlen(columns) + (size_t)rows * ((size_t)n_cols * 2 + 4);
  char* sql = malloc(cap);
  // INSERT_VERB (environment): "INSERT" as kubegate writes, or e.g.
  // "INSERT OR FAIL", which needs no statement journal.
  const char* verb = getenv("INSERT_VERB") ? getenv("INSERT_VERB") : "INSERT";
  int at = snprintf(sql, cap, "%s INTO %s(%s) VALUES ", verb, table, columns);
  for (int r = 0; r < rows; ++r) {
    at += snprintf(sql + at, cap - (size_t)at, r ? ",(?" : "(?");
    for (int c = 1; c < n_cols; ++c) at += snprintf(sql + at, cap - (size_t)at, ",?");
    at += snprintf(sql + at, cap - (size_t)at, ")");
  }
  sqlite3_stmt* st;
  if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) Die(db, sql);
  free(sql);
  return st;
}

// Binds entry e's `n_cols` columns (0 seq, 3 time_ms, the rest text by number).
static void BindRow(sqlite3_stmt* st, int first, const Entry* e, const int* cols, int n_cols) {
  for (int k = 0; k < n_cols; ++k) {
    int c = cols[k], at = first + k + 1;
    if (c == 0) sqlite3_bind_int64(st, at, e->seq);
    else if (c == 3) sqlite3_bind_int64(st, at, e->time_ms);
    else sqlite3_bind_text(st, at, e->text[c], -1, SQLITE_STATIC);
  }
}

static void Step(sqlite3* db, sqlite3_stmt* st) {
  if (sqlite3_step(st) != SQLITE_DONE) Die(db, "step");
  sqlite3_reset(st);
}

// Inserts entries [from, to) into `table` in statements of 64, 16, 4 and 1 rows.
static void InsertEntries(sqlite3* db, sqlite3_stmt* const st[4], const Entry* es, int from, int to, const int* cols,
                          int n_cols) {
  static const int sizes[4] = {64, 16, 4, 1};
  int i = from;
  while (i < to) {
    int s = 0;
    while (to - i < sizes[s]) ++s;
    for (int r = 0; r < sizes[s]; ++r) BindRow(st[s], r * n_cols, &es[i + r], cols, n_cols);
    Step(db, st[s]);
    i += sizes[s];
  }
}

int main(int argc, char** argv) {
  if (argc != 6) {
    fprintf(stderr, "usage: %s SOURCE.db TARGET.db SCHEMA.sql split|merged BATCH\n", argv[0]);
    return 2;
  }
  const int merged = strcmp(argv[4], "merged") == 0;
  const int batch = atoi(argv[5]);
  sqlite3* src;
  if (sqlite3_open_v2(argv[1], &src, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) Die(src, argv[1]);
  sqlite3_stmt* q;
  const char* read_sql =
      "SELECT l.seq, l.request_id, l.phase, l.time_ms, l.actor, l.kind, l.verb, l.api_group, l.resource, l.ns, "
      "l.obj_name, l.decision, l.approval_id, l.record, l.prev_hash, l.hash, x.task FROM audit_log l "
      "JOIN audit_index x ON x.seq = l.seq ORDER BY l.seq";
  if (sqlite3_prepare_v2(src, read_sql, -1, &q, NULL) != SQLITE_OK) Die(src, "read");
  int n = 0, cap = 1024;
  Entry* es = calloc((size_t)cap, sizeof(Entry));
  while (sqlite3_step(q) == SQLITE_ROW) {
    if (n == cap) es = realloc(es, sizeof(Entry) * (size_t)(cap *= 2));
    Entry* e = &es[n++];
    memset(e, 0, sizeof *e);
    e->seq = sqlite3_column_int64(q, 0);
    e->time_ms = sqlite3_column_int64(q, 3);
    for (int c = 1; c < MAX_COLS; ++c) {
      if (c == 3) continue;
      e->text[c] = strdup((const char*)sqlite3_column_text(q, c));
    }
  }
  sqlite3_finalize(q);
  if (sqlite3_prepare_v2(src, "SELECT seq, grp FROM audit_group ORDER BY seq", -1, &q, NULL) != SQLITE_OK) {
    Die(src, "groups");
  }
  for (int i = 0; sqlite3_step(q) == SQLITE_ROW;) {
    sqlite3_int64 seq = sqlite3_column_int64(q, 0);
    while (i < n && es[i].seq < seq) ++i;
    if (i < n && es[i].seq == seq && es[i].n_groups < 8) {
      es[i].groups[es[i].n_groups++] = strdup((const char*)sqlite3_column_text(q, 1));
    }
  }
  sqlite3_finalize(q);
  sqlite3_close(src);

  remove(argv[2]);
  sqlite3* db;
  if (sqlite3_open(argv[2], &db) != SQLITE_OK) Die(db, argv[2]);
  // kubegate's settings (store/sqlite_connection.cc); PRAGMAS= to try others.
  const char* pragmas = getenv("PRAGMAS");
  if (!pragmas || !*pragmas) pragmas = "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA cache_size=-65536;";
  if (sqlite3_exec(db, pragmas, NULL, NULL, NULL) != SQLITE_OK) {
    Die(db, "pragma");
  }
  char* schema = ReadFile(argv[3]);
  if (sqlite3_exec(db, schema, NULL, NULL, NULL) != SQLITE_OK) Die(db, "schema");

  static const int log_cols[] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
  static const int index_cols[] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 16};
  const char* log_names =
      "seq, request_id, phase, time_ms, actor, kind, verb, api_group, resource, ns, obj_name, decision, "
      "approval_id, record, prev_hash, hash";
  const char* log_names_task =
      "seq, request_id, phase, time_ms, actor, kind, verb, api_group, resource, ns, obj_name, decision, "
      "approval_id, record, prev_hash, hash, task";
  const char* index_names =
      "seq, request_id, phase, time_ms, actor, kind, verb, api_group, resource, ns, obj_name, decision, "
      "approval_id, task";
  const int n_log = merged ? 17 : 16;
  sqlite3_stmt *log_st[4], *index_st[4], *group_st;
  static const int sizes[4] = {64, 16, 4, 1};
  for (int s = 0; s < 4; ++s) {
    log_st[s] = Prepare(db, "audit_log", merged ? log_names_task : log_names, n_log, sizes[s]);
    if (!merged) index_st[s] = Prepare(db, "audit_index", index_names, 14, sizes[s]);
  }
  group_st = Prepare(db, "audit_group", "seq, grp", 2, 1);
  sqlite3_stmt *begin, *commit, *head;
  sqlite3_prepare_v2(db, "BEGIN IMMEDIATE", -1, &begin, NULL);
  sqlite3_prepare_v2(db, "COMMIT", -1, &commit, NULL);
  sqlite3_prepare_v2(db, "UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1", -1, &head, NULL);

  double t0 = CpuSeconds();
  for (int from = 0; from < n; from += batch) {
    int to = from + batch < n ? from + batch : n;
    Step(db, begin);
    InsertEntries(db, log_st, es, from, to, log_cols, n_log);
    if (!merged) InsertEntries(db, index_st, es, from, to, index_cols, 14);
    for (int i = from; i < to; ++i) {
      for (int g = 0; g < es[i].n_groups; ++g) {
        sqlite3_bind_int64(group_st, 1, es[i].seq);
        sqlite3_bind_text(group_st, 2, es[i].groups[g], -1, SQLITE_STATIC);
        Step(db, group_st);
      }
    }
    sqlite3_bind_int64(head, 1, es[to - 1].seq);
    sqlite3_bind_text(head, 2, es[to - 1].text[15], -1, SQLITE_STATIC);
    Step(db, head);
    Step(db, commit);
  }
  double t = CpuSeconds() - t0;
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  printf("%s %s: %d entries, %.2f us CPU per entry (whole process: user %.2f s, system %.2f s)\n", argv[3], argv[4],
         n, t * 1e6 / n, (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6,
         (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6);
  sqlite3_close(db);
  return 0;
}
