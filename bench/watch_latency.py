#!/usr/bin/env python3
"""Watch event latency added by kubegate, with many other watches open.

Driven by bench/watch_latency.sh. Two probe watches on configmaps, one
directly to the API server (the test server) and one through kubegate, each
read by its own process with blocking sockets; a creator makes ConfigMaps
directly at the API server, one at a time, and each probe notes the
CLOCK_MONOTONIC time at which its ADDED event arrived. The added latency of
an event is (arrival through kubegate) - (arrival direct): both watches see
the same event, emitted by the same server in the same wake-up.

  watch_latency.py idle PORT CA TOKEN N           opens N watches on services through kubegate, prints "ready N"
  watch_latency.py measure KG_PORT KG_CA KG_TOKEN UP_PORT UP_CA UP_TOKEN EVENTS INTERVAL_MS LABEL WORK [RUNS_LOG]
  watch_latency.py runs PID SECONDS OUT         notes when a process (the kernel's kdamond) ran: "end_ns ran_ns"

With RUNS_LOG (from `runs`), measure also says how many of the events that
kubegate delayed by more than 1 ms arrived within 15 ms after that process
ran, against the share of random instants that do.
"""
import asyncio
import http.client
import json
import multiprocessing
import os
import socket
import ssl
import sys
import time


def head_of(sock_file):
    status = sock_file.readline()
    while sock_file.readline() not in (b"\r\n", b"\n", b""):
        pass
    return status


async def open_idle(port, ca, token, n):
    ctx = ssl.create_default_context(cafile=ca)
    held = []
    gate = asyncio.Semaphore(64)

    async def one():
        async with gate:
            r, w = await asyncio.open_connection("127.0.0.1", port, ssl=ctx, server_hostname="127.0.0.1")
            w.write(b"GET /api/v1/namespaces/default/services?watch=true HTTP/1.1\r\nHost: x\r\n"
                    b"Authorization: Bearer " + token.encode() + b"\r\n\r\n")
            status = await r.readline()
            if b" 200 " not in status:
                raise SystemExit("idle watch refused: %r" % status)
            while (await r.readline()) not in (b"\r\n", b""):
                pass
            held.append((r, w))

    await asyncio.gather(*(one() for _ in range(n)))
    print("ready", len(held), flush=True)
    await asyncio.sleep(1e9)


def probe(port, ca, token, prefix, rv, events, out_path, ready):
    """Reads the chunked watch stream and writes 'name ns' per ADDED event."""
    ctx = ssl.create_default_context(cafile=ca)
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="127.0.0.1")
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.sendall(b"GET /api/v1/namespaces/default/configmaps?watch=true&resourceVersion=" + rv.encode() + b" HTTP/1.1\r\nHost: x\r\n"
              b"Authorization: Bearer " + token.encode() + b"\r\n\r\n")
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += s.recv(65536)
    head, buf = buf.split(b"\r\n\r\n", 1)
    if b" 200 " not in head.split(b"\r\n")[0]:
        raise SystemExit("probe watch refused: %r" % head)
    ready.set()
    seen = {}
    stamp = 0
    body = b""   # de-chunked bytes not yet ending in a newline
    raw = buf    # chunked bytes not yet decoded
    while True:
        # Decode every complete chunk in raw.
        while True:
            nl = raw.find(b"\r\n")
            if nl < 0:
                break
            size = int(raw[:nl].split(b";")[0], 16)
            if len(raw) < nl + 2 + size + 2:
                break
            body += raw[nl + 2:nl + 2 + size]
            raw = raw[nl + 2 + size + 2:]
            if size == 0:
                raise SystemExit("the watch ended after %d events" % len(seen))
        while b"\n" in body:
            line, body = body.split(b"\n", 1)
            if not line.strip():
                continue
            e = json.loads(line)
            name = e["object"]["metadata"]["name"]
            if e["type"] == "ADDED" and name.startswith(prefix) and name not in seen:
                seen[name] = stamp
        if len(seen) == events:
            break
        chunk = s.recv(65536)
        stamp = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
        if not chunk:
            raise SystemExit("the watch closed after %d events" % len(seen))
        raw += chunk
    with open(out_path, "w") as f:
        for name, t in seen.items():
            f.write("%s %d\n" % (name, t))


def note_runs(pid, seconds, out_path):
    """Polls /proc/PID/schedstat every 0.5 ms; writes each time it grew."""
    end = time.monotonic() + seconds
    last = None
    with open(out_path, "w") as out:
        while time.monotonic() < end:
            with open("/proc/%s/schedstat" % pid) as f:
                ran = int(f.read().split()[0])
            now = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
            if last is not None and ran != last:
                out.write("%d %d\n" % (now, ran - last))
                out.flush()
            last = ran
            time.sleep(0.0005)


def after_runs(instants, runs, window_ns):
    """How many of `instants` fall within window_ns after one of `runs`."""
    import bisect
    ends = sorted(t for t, _ in runs)
    n = 0
    for t in instants:
        i = bisect.bisect_right(ends, t)
        if i and t - ends[i - 1] <= window_ns:
            n += 1
    return n


def percentile(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))]


def measure(kg_port, kg_ca, kg_token, up_port, up_ca, up_token, events, interval_ms, label, work, runs_log=None):
    prefix = "lat-%s-" % label
    ctx = ssl.create_default_context(cafile=up_ca)
    c = http.client.HTTPSConnection("127.0.0.1", up_port, context=ctx)
    # Both watches start from now: no initial ADDED events of earlier runs.
    c.request("GET", "/api/v1/namespaces/default/configmaps", headers={"Authorization": "Bearer " + up_token})
    rv = json.loads(c.getresponse().read())["metadata"]["resourceVersion"]
    procs, outs = [], []
    for name, port, ca, token in (("direct", up_port, up_ca, up_token), ("kubegate", kg_port, kg_ca, kg_token)):
        ready = multiprocessing.Event()
        out = os.path.join(work, "%s-%s.txt" % (label, name))
        p = multiprocessing.Process(target=probe, args=(port, ca, token, prefix, rv, events, out, ready))
        p.start()
        if not ready.wait(60):
            raise SystemExit("probe %s did not start" % name)
        procs.append(p)
        outs.append(out)
    sent = {}
    for i in range(events):
        name = "%s%d" % (prefix, i)
        body = json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"i": str(i)}})
        sent[name] = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
        c.request("POST", "/api/v1/namespaces/default/configmaps", body,
                  {"Authorization": "Bearer " + up_token, "Content-Type": "application/json"})
        r = c.getresponse()
        r.read()
        if r.status != 201:
            raise SystemExit("create %s: %d" % (name, r.status))
        time.sleep(interval_ms / 1000.0)
    for p in procs:
        p.join(60)
        if p.exitcode != 0:
            raise SystemExit("a probe failed (exit %s)" % p.exitcode)
    got = []
    for out in outs:
        with open(out) as f:
            got.append(dict((k, int(v)) for k, v in (line.split() for line in f)))
    direct, through = got
    added = [(through[n] - direct[n]) / 1000.0 for n in sent]
    d_lat = [(direct[n] - sent[n]) / 1000.0 for n in sent]
    k_lat = [(through[n] - sent[n]) / 1000.0 for n in sent]

    def row(what, v):
        return "  %-34s p50 %8.1f  p90 %8.1f  p99 %8.1f  max %8.1f" % (
            what, percentile(v, 50), percentile(v, 90), percentile(v, 99), max(v))
    print("%s: %d events, one every %d ms (µs)" % (label, events, interval_ms))
    print(row("create sent -> event direct", d_lat))
    print(row("create sent -> event via kubegate", k_lat))
    print(row("added by kubegate", added))
    if runs_log:
        import random
        with open(runs_log) as f:
            runs = [tuple(map(int, line.split())) for line in f]
        lo, hi = min(direct.values()), max(through.values())
        runs = [r for r in runs if lo - 10**9 <= r[0] <= hi]
        slow = [through[n] for n in sent if through[n] - direct[n] > 1_000_000]
        rnd = [random.randint(lo, hi) for _ in range(10000)]
        print("  kdamond ran %d times during the run; of the %d events kubegate delayed by > 1 ms, %d arrived "
              "within 15 ms after it ran (random instants: %.0f%%)" % (
                  len(runs), len(slow), after_runs(slow, runs, 15_000_000),
                  100.0 * after_runs(rnd, runs, 15_000_000) / len(rnd)))
    sys.stdout.flush()


if __name__ == "__main__":
    if sys.argv[1] == "runs":
        note_runs(sys.argv[2], float(sys.argv[3]), sys.argv[4])
    elif sys.argv[1] == "idle":
        asyncio.run(open_idle(int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5])))
    else:
        a = sys.argv[2:]
        measure(int(a[0]), a[1], a[2], int(a[3]), a[4], a[5], int(a[6]), int(a[7]), a[8], a[9],
                a[10] if len(a) > 10 else None)
