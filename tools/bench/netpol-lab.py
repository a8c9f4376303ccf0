#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Lab parts of the NetworkPolicy benchmark (tools/bench/netpol.sh), two subcommands.

  netpol-lab.py latency --api URL --ns NS --netns CLIENT_NETNS --target IP:PORT --runs N
      Policy update to enforcement. NS holds a deny-all ingress policy; each run creates
      an allow policy for the client (POST to the API server) and measures the time from
      the API's answer until the first new connection from CLIENT_NETNS to TARGET succeeds
      (allow latency), then deletes it and measures until new connections fail again (deny
      latency: the first of three consecutive failures). A prober process in the client's
      netns starts a new connection every 5 ms (60 ms timeout each) and streams their start
      times and outcomes.
      p99 is the nearest rank (with 200 runs the third largest, not a single maximum). Its
      own watch on the namespace's policies says when the API server delivered each change
      (watch_*_ms, from the same instant), and the prober's longest pause in a run shows
      when the prober itself was not running. Prints one line: "latency runs=N
      allow_p50_ms= allow_p99_ms= allow_max_ms= deny_p50_ms= deny_p99_ms= deny_max_ms=
      watch_allow_p50_ms= watch_allow_p99_ms= watch_deny_p50_ms= watch_deny_p99_ms= lost=",
      and the three slowest runs of each kind on stderr. With --agent-netns (the server
      node's netns), its agent's /metrics is read after each run: when it took the change in
      and when its maps were written (agent_*_ms, same instant and clock).

  netpol-lab.py rr --target IP:PORT --conns N --seconds S
      Request/response rate on N persistent TCP connections to an echo server (a line out,
      the line back, the next one): "rr rate=... p50_ms=... p99_ms=... errors=...". A Python
      client: it measures the path's cost per round trip with the client's own cost on top,
      the same in both arms of a comparison.
"""
import argparse
import json
import math
import select
import socket
import subprocess
import sys
import threading
import time
import urllib.request

# A new attempt every 5 ms, each with a 60 ms timeout, whatever the earlier ones are doing
# (attempts from a fixed set of looping threads fall into step when a deny blocks them all at
# once, measured: every ~60 ms, which hid the allow latency). One thread, non-blocking
# connects on an epoll: a thread per attempt cost enough CPU on a busy 2-core machine that
# the prober itself stalled for 50-200 ms (the slowest runs were exactly its pauses); it
# also runs at nice -10 (root), a few connections per 5 ms being no load worth yielding to.
PROBER = r"""
import errno, os, select, socket, sys, time
ip, port = sys.argv[1], int(sys.argv[2])
try:
    os.nice(-10)  # a timer, not a load: keep it running when the machine is busy
except OSError:
    pass
ep = select.epoll()
live = {}  # fd -> (socket, start, deadline)
out = sys.stdout
def done(fd, v):
    s, t, _ = live.pop(fd)
    ep.unregister(fd)
    s.close()
    out.write("%.6f %d\n" % (t, v))
nxt = time.time()
while True:
    now = time.time()
    if now >= nxt:
        s = socket.socket()
        s.setblocking(False)
        e = s.connect_ex((ip, port))
        if e in (0, errno.EINPROGRESS):
            live[s.fileno()] = (s, now, now + 0.06)
            ep.register(s.fileno(), select.EPOLLOUT)
        else:
            s.close()
            out.write("%.6f 0\n" % now)
        nxt = max(nxt + 0.005, now - 0.005)
    for fd, _ in ep.poll(max(0.0, min([nxt] + [d for _, _, d in live.values()]) - time.time())):
        s = live[fd][0]
        done(fd, 0 if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) else 1)
    now = time.time()
    for fd in [fd for fd, (_, _, d) in live.items() if d <= now]:
        done(fd, 0)
    out.flush()
"""


# In the server node's netns: one scrape of the agent's /metrics per line on stdin, answered
# with its last_change_seen and last_applied timestamps (wall clock).
SCRAPER = r"""
import sys, urllib.request
for _ in sys.stdin:
    v = {}
    try:
        with urllib.request.urlopen(sys.argv[1], timeout=5) as r:
            for l in r.read().decode().splitlines():
                if l.startswith("sluice_policy_last_") and "timestamp" in l:
                    k, x = l.split()
                    v[k] = x
    except OSError:
        pass
    print(v.get("sluice_policy_last_change_seen_timestamp_seconds", "nan"),
          v.get("sluice_policy_last_applied_timestamp_seconds", "nan"), flush=True)
"""


def pct(xs, p):
    """Nearest rank: the smallest sample with at least p% of the samples at or below it (so
    the p99 of 100 samples is the second largest, of 200 the third largest)."""
    xs = sorted(xs)
    if not xs:
        return float("nan")
    k = min(len(xs) - 1, max(0, math.ceil(p / 100.0 * len(xs) - 1e-9) - 1))
    return xs[k]


def api(method, url, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        r.read()


def latency(a):
    ip, port = a.target.rsplit(":", 1)
    p = subprocess.Popen(["nsenter", "--net=" + a.netns, sys.executable, "-c", PROBER, ip, port],
                         stdout=subprocess.PIPE, text=True)
    samples, lock = [], threading.Lock()

    def reader():
        for line in p.stdout:
            t, v = line.split()
            with lock:
                samples.append((float(t), int(v)))
    threading.Thread(target=reader, daemon=True).start()

    def wait_for(since, n0, want, consecutive, budget=10.0):
        """The start of the first of `consecutive` attempts with outcome `want` started at or
        after since; n0: len(samples) before since (an attempt that starts later finishes
        later), so each poll sorts one run's samples, not the whole history."""
        deadline = time.time() + budget
        while time.time() < deadline:
            with lock:
                seq = sorted((t, v) for t, v in samples[n0:] if t >= since)
            run = 0
            for t, v in seq:
                run = run + 1 if v == want else 0
                if run == 1:
                    first = t
                if run >= consecutive:
                    return first
            time.sleep(0.01)
        return None

    base = "%s/apis/networking.k8s.io/v1/namespaces/%s/networkpolicies" % (a.api, a.ns)
    # Our own watch, as the agents' informers have one: when the API server's watch delivers
    # each change, so a slow run can be told apart (watch late, or prober stalled, or the
    # agent/datapath) instead of guessed at.
    with urllib.request.urlopen(base, timeout=10) as r:
        rv = json.load(r)["metadata"].get("resourceVersion", "")
    events = {"ADDED": [], "DELETED": []}
    wresp = urllib.request.urlopen("%s?watch=1&resourceVersion=%s" % (base, rv), timeout=3600)

    def watcher():
        for line in wresp:
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            if ev.get("object", {}).get("metadata", {}).get("name") != "bench-allow":
                continue
            with lock:
                events.setdefault(ev.get("type"), []).append(time.time())
    threading.Thread(target=watcher, daemon=True).start()

    def watch_ms(kind, i, t0):
        deadline = time.time() + 2
        while time.time() < deadline:
            with lock:
                if len(events[kind]) > i:
                    return (events[kind][i] - t0) * 1000
            time.sleep(0.002)
        return None

    def gap_ms(n0, t0, t1):
        """The longest stretch in [t0, t1] without a connection attempt starting: the prober's
        resolution in that run (5 ms when it keeps its pace)."""
        with lock:
            ts = sorted(t for t, _ in samples[n0:] if t0 <= t <= t1)
        ts = [t0] + ts + [t1]
        return max(b - c for b, c in zip(ts[1:], ts)) * 1000
    pol = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
           "metadata": {"name": "bench-allow", "namespace": a.ns},
           "spec": {"podSelector": {}, "ingress": [{}]}}
    scraper = None
    if a.agent_netns:
        scraper = subprocess.Popen(["nsenter", "--net=" + a.agent_netns, sys.executable, "-c",
                                    SCRAPER, a.agent_metrics], stdin=subprocess.PIPE,
                                   stdout=subprocess.PIPE, text=True)

    def agent_ms(t0):
        """(seen, applied) by the server node's agent, ms after t0; None without a scraper or
        when the agent's last apply is older than t0 (not this change's)."""
        if not scraper:
            return None, None
        scraper.stdin.write("\n")
        scraper.stdin.flush()
        seen, applied = (float(x) for x in scraper.stdout.readline().split())
        if not applied >= t0 - 0.1:  # the previous change was >= 0.2 s before
            return None, None
        return (seen - t0) * 1000, (applied - t0) * 1000

    # per run: (ms, watch ms, prober gap ms, agent seen ms, agent applied ms)
    res = {"allow": [], "deny": []}
    lost = 0
    time.sleep(0.5)
    for i in range(a.runs):
        for what, method, url, want, consecutive, kind in (
                ("allow", "POST", base, 1, 1, "ADDED"),
                ("deny", "DELETE", base + "/bench-allow", 0, 3, "DELETED")):
            with lock:
                n0 = len(samples)
            api(method, url, pol if method == "POST" else None)
            t0 = time.time()  # the API has stored it: the agents' watches see it from here
            t = wait_for(t0, n0, want, consecutive)
            w = watch_ms(kind, i, t0)
            if t is None:
                lost += 1
            else:
                ms = max(0.0, t - t0) * 1000
                res[what].append((ms, w, gap_ms(n0, t0, t0 + ms / 1000)) + agent_ms(t0))
            time.sleep(0.2)
    p.kill()
    if scraper:
        scraper.kill()
    out = ["latency runs=%d" % a.runs]
    for what in ("allow", "deny"):
        ms = [r[0] for r in res[what]]
        out.append("%s_p50_ms=%.1f %s_p99_ms=%.1f %s_max_ms=%.1f"
                   % (what, pct(ms, 50), what, pct(ms, 99), what, max(ms or [0])))
    for what in ("allow", "deny"):
        ws = [r[1] for r in res[what] if r[1] is not None]
        out.append("watch_%s_p50_ms=%.1f watch_%s_p99_ms=%.1f" % (what, pct(ws, 50), what,
                                                                   pct(ws, 99)))
        ag = [r[4] for r in res[what] if r[4] is not None]
        if scraper:
            out.append("agent_%s_p50_ms=%.1f agent_%s_p99_ms=%.1f" % (what, pct(ag, 50), what,
                                                                       pct(ag, 99)))
    out.append("lost=%d" % lost)
    print(" ".join(out))
    # The slowest runs with what they were made of, for the reader of a p99.
    for what in ("allow", "deny"):
        f = lambda x: "?" if x is None else "%.1f" % x
        for ms, w, g, seen, applied in sorted(res[what], reverse=True)[:3]:
            sys.stderr.write("latency slowest %s: %.1f ms (after the API's answer: its watch "
                             "delivered at %s ms, the server node's agent took it in at %s and "
                             "had written its maps at %s ms; longest prober pause %.1f ms)\n"
                             % (what, ms, f(w), f(seen), f(applied), g))
    return 1 if lost else 0


def rr(a):
    ip, port = a.target.rsplit(":", 1)
    conns = []
    for _ in range(a.conns):
        s = socket.create_connection((ip, int(port)), timeout=2)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.setblocking(False)
        conns.append(s)
    sent, buf, lat, errors = {}, {}, [], 0
    t_start = time.time()
    t_measure, t_end = t_start + 0.5, t_start + 0.5 + a.seconds
    done = 0
    for s in conns:
        sent[s.fileno()] = time.time()
        buf[s.fileno()] = b""
        s.send(b"x\n")
    byfd = {s.fileno(): s for s in conns}
    ep = select.epoll()
    for s in conns:
        ep.register(s.fileno(), select.EPOLLIN)
    while True:
        now = time.time()
        if now >= t_end:
            break
        for fd, _ in ep.poll(0.1):
            s = byfd[fd]
            try:
                d = s.recv(4096)
            except OSError:
                errors += 1
                continue
            if not d:
                errors += 1
                ep.unregister(fd)
                continue
            buf[fd] += d
            if not buf[fd].endswith(b"\n"):
                continue
            t = time.time()
            if t >= t_measure:
                done += 1
                lat.append((t - sent[fd]) * 1000)
            buf[fd] = b""
            sent[fd] = t
            s.send(b"x\n")
    print("rr rate=%.1f p50_ms=%.3f p99_ms=%.3f samples=%d errors=%d"
          % (done / a.seconds, pct(lat, 50), pct(lat, 99), len(lat), errors))
    return 1 if errors else 0


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    l = sub.add_parser("latency")
    l.add_argument("--api", required=True)
    l.add_argument("--ns", required=True)
    l.add_argument("--netns", required=True)
    l.add_argument("--target", required=True)
    l.add_argument("--runs", type=int, default=200)
    l.add_argument("--agent-netns", help="the server node's netns: scrape its agent's /metrics")
    l.add_argument("--agent-metrics", default="http://127.0.0.1:10249/metrics")
    r = sub.add_parser("rr")
    r.add_argument("--target", required=True)
    r.add_argument("--conns", type=int, default=8)
    r.add_argument("--seconds", type=float, default=5)
    a = ap.parse_args()
    return latency(a) if a.cmd == "latency" else rr(a)


sys.exit(main())
