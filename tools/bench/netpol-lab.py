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
      Prints one line: "latency runs=N allow_p50_ms= allow_p99_ms= deny_p50_ms= deny_p99_ms=
      allow_max_ms= deny_max_ms=".

  netpol-lab.py rr --target IP:PORT --conns N --seconds S
      Request/response rate on N persistent TCP connections to an echo server (a line out,
      the line back, the next one): "rr rate=... p50_ms=... p99_ms=... errors=...". A Python
      client: it measures the path's cost per round trip with the client's own cost on top,
      the same in both arms of a comparison.
"""
import argparse
import json
import select
import socket
import subprocess
import sys
import threading
import time
import urllib.request

# A new attempt every 5 ms, each in its own thread with a 60 ms timeout, whatever the
# earlier ones are doing: attempts from a fixed set of looping threads fall into step when a
# deny blocks them all at once (measured: every ~60 ms), which hid the allow latency.
PROBER = r"""
import socket, sys, threading, time
ip, port = sys.argv[1], int(sys.argv[2])
lock = threading.Lock()
def attempt(t):
    s = socket.socket()
    s.settimeout(0.06)
    try:
        s.connect((ip, port))
        v = 1
    except OSError:
        v = 0
    s.close()
    with lock:
        sys.stdout.write("%.6f %d\n" % (t, v))
        sys.stdout.flush()
while True:
    threading.Thread(target=attempt, args=(time.time(),), daemon=True).start()
    time.sleep(0.005)
"""


def pct(xs, p):
    xs = sorted(xs)
    if not xs:
        return float("nan")
    k = min(len(xs) - 1, max(0, int(round(p / 100.0 * len(xs) + 0.5)) - 1))
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

    def wait_for(since, want, consecutive, budget=10.0):
        deadline = time.time() + budget
        while time.time() < deadline:
            with lock:
                seq = sorted((t, v) for t, v in samples if t >= since)
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
    pol = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
           "metadata": {"name": "bench-allow", "namespace": a.ns},
           "spec": {"podSelector": {}, "ingress": [{}]}}
    allow, deny, lost = [], [], 0
    time.sleep(0.5)
    for i in range(a.runs):
        api("POST", base, pol)
        t0 = time.time()  # the API has stored it: the agents' watches see it from here
        t = wait_for(t0, 1, 1)
        if t is None:
            lost += 1
        else:
            allow.append(max(0.0, t - t0) * 1000)
        time.sleep(0.2)
        api("DELETE", base + "/bench-allow")
        t0 = time.time()
        t = wait_for(t0, 0, 3)
        if t is None:
            lost += 1
        else:
            deny.append(max(0.0, t - t0) * 1000)
        time.sleep(0.2)
    p.kill()
    print("latency runs=%d allow_p50_ms=%.1f allow_p99_ms=%.1f allow_max_ms=%.1f "
          "deny_p50_ms=%.1f deny_p99_ms=%.1f deny_max_ms=%.1f lost=%d"
          % (a.runs, pct(allow, 50), pct(allow, 99), max(allow or [0]), pct(deny, 50),
             pct(deny, 99), max(deny or [0]), lost))
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
    l.add_argument("--runs", type=int, default=30)
    r = sub.add_parser("rr")
    r.add_argument("--target", required=True)
    r.add_argument("--conns", type=int, default=8)
    r.add_argument("--seconds", type=float, default=5)
    a = ap.parse_args()
    return latency(a) if a.cmd == "latency" else rr(a)


sys.exit(main())
