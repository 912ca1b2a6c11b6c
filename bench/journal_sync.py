# What one audit journal group commit costs the disk with `audit.fsync:
# per_commit`: N writes of a 1 KiB frame, each followed by fdatasync, into
# (1) a file that grows with each write (O_APPEND: kubegate before
# 2026-12-07's seventh session), (2) a file whose blocks fallocate reserved
# first (kubegate's segments now), (3) the same reserved with
# FALLOC_FL_KEEP_SIZE (the size still grows). Wall time per write+sync
# (p50, p99) and process CPU per write+sync. Runs in DIR (default: this
# repository's build/, on the disk kubegate's data directory would use).
#   python3 bench/journal_sync.py [DIR] [N]
import ctypes, os, resource, sys, tempfile, time

libc = ctypes.CDLL("libc.so.6", use_errno=True)
base = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "build")
n = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
frame = b"x" * 1023 + b"\n"
reserve = 4 << 20

def run(mode):
    os.makedirs(base, exist_ok=True)
    d = tempfile.mkdtemp(dir=base)
    p = os.path.join(d, "segment.journal")
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | (os.O_APPEND if mode != "reserved" else 0), 0o600)
    if mode == "reserved":
        os.posix_fallocate(fd, 0, reserve)
    elif mode == "keep-size":
        assert libc.fallocate(fd, 1, ctypes.c_long(0), ctypes.c_long(reserve)) == 0  # FALLOC_FL_KEEP_SIZE
    os.fsync(fd)
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    walls, off = [], 0
    for _ in range(n):
        t = time.perf_counter()
        if mode == "reserved":
            os.pwrite(fd, frame, off)
        else:
            os.write(fd, frame)
        os.fdatasync(fd)
        off += len(frame)
        walls.append(time.perf_counter() - t)
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    os.close(fd)
    os.remove(p)
    os.rmdir(d)
    walls.sort()
    cpu = (r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime) / n
    print(f"{mode:10} p50 {walls[n // 2] * 1e6:6.0f} us  p99 {walls[int(n * .99)] * 1e6:6.0f} us  "
          f"CPU {cpu * 1e6:4.0f} us per write+fdatasync")

for mode in ("growing", "reserved", "keep-size"):
    run(mode)
