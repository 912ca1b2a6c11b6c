# One small write transaction (an approval's state changed) on a SQLite
# database with page size PAGE_BYTES, as kubegate opens it (WAL,
# synchronous=FULL): wall time per commit (p50, p99), process CPU per
# commit, and the WAL's size after 300 of them. It shows what larger pages
# cost the store's small writes (docs/performance.md, "16 KiB SQLite pages").
#   python3 bench/sqlite_small_commits.py 4096; python3 bench/sqlite_small_commits.py 16384
import os, resource, shutil, sqlite3, sys, tempfile, time
ps=int(sys.argv[1]); d = tempfile.mkdtemp(); p = os.path.join(d, "t.db")
for s in ["","-wal","-shm"]:
    try: os.remove(p+s)
    except FileNotFoundError: pass
c=sqlite3.connect(p, isolation_level=None)
c.executescript(f"PRAGMA page_size={ps}; PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;")
c.execute("CREATE TABLE approval_request(id TEXT PRIMARY KEY, state TEXT, body TEXT)")
c.execute("CREATE INDEX ar_state ON approval_request(state)")
for i in range(2000): c.execute("INSERT INTO approval_request VALUES (?,?,?)",(f"id{i:05d}","pending","x"*600))
N=300; walls=[]
r0=resource.getrusage(resource.RUSAGE_SELF)
for i in range(N):
    t=time.perf_counter()
    c.execute("BEGIN IMMEDIATE"); c.execute("UPDATE approval_request SET state=? WHERE id=?",("approved",f"id{(i*7)%2000:05d}")); c.execute("COMMIT")
    walls.append(time.perf_counter()-t)
r1=resource.getrusage(resource.RUSAGE_SELF)
walls.sort()
cpu=(r1.ru_utime-r0.ru_utime+r1.ru_stime-r0.ru_stime)/N
print(f"{ps}: commit wall p50 {walls[N//2]*1e6:.0f} us p99 {walls[int(N*.99)]*1e6:.0f} us, CPU {cpu*1e6:.0f} us per commit, wal bytes {os.path.getsize(p+'-wal')}")
shutil.rmtree(d)
