#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Scale to datapath (tools/bench/lab.sh step 4): time from `kubectl scale
deploy/NAME --replicas=N` (0 -> N) to all N endpoints programmed as active
backends of the Service's frontend in every node's datapath, read from the
maps each agent pinned (`sluicectl --bpffs B --node nI -o json service list`).

  scaledp.py KUBECTL KUBECONFIG SLUICECTL BPFFS NODES NS DEPLOY VIP PORT N RUNS TIMEOUT

Prints key=value lines: test=scaledp run=R node=nI ms=T (one per node and
run), test=scaleready run=R ms=T (the Deployment reports N ready replicas, as
seen by polling the API), test=scaledown run=R node=nI ms=T (N -> 0: the
frontend has no backend left on the node). Exits 1 if a run timed out.
"""
import json
import subprocess
import sys
import time

(kubectl, kubeconfig, sluicectl, bpffs, nodes, ns, deploy, vip, port, n, runs,
 timeout) = sys.argv[1:13]
nodes = nodes.split(",")
n, runs, timeout, port = int(n), int(runs), float(timeout), int(port)
KC = [kubectl, "--kubeconfig", kubeconfig, "-n", ns]


def read_nodes(names):
    """{node: active backends of VIP:PORT/TCP on its datapath (-1 if unreadable)}.
    One sluicectl per node, all at once: a read of 100 backends takes 0.1 s or
    more on a loaded machine, and reading nodes one after the other would show
    as a spread between them."""
    procs = {n: subprocess.Popen([sluicectl, "--bpffs", bpffs, "--node", n, "-o", "json",
                                  "service", "list"], stdout=subprocess.PIPE,
                                 stderr=subprocess.DEVNULL, text=True) for n in names}
    out = {}
    for n, p in procs.items():
        text = p.communicate()[0]
        out[n] = count_active(text) if p.returncode == 0 else -1
    return out


def count_active(text):
    try:
        svcs = json.loads(text)
    except ValueError:
        return -1
    # A ClusterIP has one frontend per scope in use (ext; int as well with
    # traffic policies): every one must have all backends.
    counts = [sum(1 for b in s.get("backends") or [] if b.get("state") == "active")
              for s in svcs
              if (s.get("frontend") or {}).get("address") == vip
              and (s.get("frontend") or {}).get("port") == port
              and (s.get("frontend") or {}).get("protocol") == "TCP"]
    return min(counts) if counts else 0


def ready_replicas():
    r = subprocess.run(KC + ["get", "deploy", deploy, "-o",
                             "jsonpath={.status.readyReplicas}"], capture_output=True, text=True)
    try:
        return int(r.stdout or 0)
    except ValueError:
        return -1


def scale(to):
    t0 = time.monotonic()
    subprocess.run(KC + ["scale", "deploy/" + deploy, "--replicas=%d" % to], check=True,
                   capture_output=True)
    return t0


def wait_nodes(t0, want, label, run):
    """Polls every node until it shows WANT active backends; prints one line per node."""
    left = set(nodes)
    last_ready = 0.0
    ready_at = None
    while left and time.monotonic() - t0 < timeout:
        counts = read_nodes(sorted(left))
        now = time.monotonic()
        for node, c in sorted(counts.items()):
            if c == want:
                print("test=%s run=%d node=%s ms=%.0f" %
                      (label, run, node, (now - t0) * 1000), flush=True)
                left.discard(node)
        # The API's view, twice a second (kubectl costs CPU the agents need).
        if label == "scaledp" and ready_at is None and time.monotonic() - last_ready > 0.5:
            last_ready = time.monotonic()
            if ready_replicas() == want:
                ready_at = time.monotonic()
                print("test=scaleready run=%d ms=%.0f" % (run, (ready_at - t0) * 1000), flush=True)
        time.sleep(0.02)
    for node, c in sorted(read_nodes(sorted(left)).items()):
        print("scaledp: run %d: %s: node %s shows %d of %d backends after %.0f s" %
              (run, label, node, c, want, timeout), file=sys.stderr)
    return not left


ok = True
for run in range(1, runs + 1):
    t0 = scale(n)
    ok = wait_nodes(t0, n, "scaledp", run) and ok
    # Every pod Ready before scaling down, so each run starts from the same state.
    end = time.monotonic() + timeout
    while ready_replicas() != n and time.monotonic() < end:
        time.sleep(0.5)
    t0 = scale(0)
    ok = wait_nodes(t0, 0, "scaledown", run) and ok
    # Pods gone (not only their endpoints) before the next run.
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        r = subprocess.run(KC + ["get", "pods", "-l", "app=" + deploy, "-o", "name"],
                           capture_output=True, text=True)
        if r.returncode == 0 and not r.stdout.strip():
            break
        time.sleep(0.5)
sys.exit(0 if ok else 1)
