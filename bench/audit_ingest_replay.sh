#!/usr/bin/env bash
# The audit ingest's SQLite cost per entry, replayed outside kubegate so
# schema and settings can be compared without the noise of a live run.
# kubegate (audit on, plain HTTP in front, the demo test server behind)
# serves N GETs on one keep-alive connection; its audit tables' schema and
# entries are then replayed by bench/audit_ingest_replay.c into fresh
# databases as the ingest writes them (transactions of BATCH entries,
# multi-row INSERTs of 64, WAL, synchronous=FULL), once per page size,
# REPS interleaved rounds. Prints process CPU per entry (a GET writes two).
#   bash bench/audit_ingest_replay.sh [N]            # N=20000
#   PAGE_SIZES="4096 16384" REPS=3 BATCH=512 bash bench/audit_ingest_replay.sh
#   LAYOUTS="split merged"   # merged: audit_index's columns and indexes on audit_log
#   EXTRA_PRAGMAS="PRAGMA temp_store=MEMORY;"   # after kubegate's own
# Environment: KUBEGATE_BIN (default build/src/kubegate), KEEP=DIR keeps the source database.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-20000}
BIN=${KUBEGATE_BIN:-$PWD/build/src/kubegate}
W=$(mktemp -d)
trap 'kill $(cat $W/*.pid 2>/dev/null) 2>/dev/null || true; rm -rf $W' EXIT
cc -O2 -Wall -o $W/replay bench/audit_ingest_replay.c -lsqlite3
source bench/lib.sh
kg_plain_bench_config $W "$(kg_start_pinned_testserver $W "$BIN")"
"$BIN" serve --config $W/kg.yaml > $W/kg.log 2>&1 & echo $! > $W/kg.pid
URL=http://127.0.0.1:$KG_PORT/api/v1/namespaces/default/pods
kg_wait_answering
curl -s -o /dev/null -H "Authorization: Bearer bench-token" "$URL?limit=[1-$N]"
kill -INT $(cat $W/kg.pid); while kill -0 $(cat $W/kg.pid) 2>/dev/null; do sleep 0.2; done
SRC=$W/kg/kubegate.db
[ -n "${KEEP:-}" ] && cp $SRC "$KEEP"
# kubegate's audit tables as its migrations left them.
sqlite3 $SRC ".schema audit_log" ".schema audit_index" ".schema audit_group" ".schema audit_approver" \
  ".schema audit_head" > $W/split.sql
echo "INSERT INTO audit_head(id, seq, hash) VALUES (1, 0, '');" >> $W/split.sql
# One table: audit_log gains task, and audit_index's indexes move to it.
python3 - $W/split.sql $W/merged.sql <<'PY'
import sys
s = open(sys.argv[1]).read()
a, b = s.index('CREATE TABLE audit_index('), s.index('CREATE TABLE audit_group')
log = s[:a].replace('hash TEXT NOT NULL);', "hash TEXT NOT NULL, task TEXT NOT NULL DEFAULT '');")
idx = [l.replace('ON audit_index', 'ON audit_log').replace('audit_index_', 'audit_log_')
       for l in s[a:b].splitlines() if l.startswith('CREATE INDEX')]
open(sys.argv[2], 'w').write(log + '\n'.join(idx) + '\n' + s[b:])
PY
BASE="PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA cache_size=-65536; ${EXTRA_PRAGMAS:-}"
for r in $(seq ${REPS:-2}); do
  for layout in ${LAYOUTS:-split}; do
    for ps in ${PAGE_SIZES:-4096 16384}; do
      echo -n "round $r, $ps-byte pages: "
      PRAGMAS="PRAGMA page_size=$ps; $BASE" $W/replay $SRC $W/t.db $W/$layout.sql $layout ${BATCH:-512} | sed "s|$W/||"
    done
  done
done
