# SPDX-License-Identifier: Apache-2.0
"""Pod start and delete latency for tools/bench/lab.sh.

usage: podstart.py API_URL PODS NODES ECHO_SERVER_PATH TIMEOUT_S

One watch on the pods of namespace "default" (from the list's resourceVersion)
timestamps every event as it arrives; meanwhile the pods are created back to
back over one keep-alive connection (each POST timestamped just before it is
sent), spread round-robin over n1..nNODES by spec.nodeName. A pod counts as
started at the first event that carries Ready=True. Then every pod is deleted
the same way (graceful: the node's agent stops it and removes the object) and
counts as gone at its DELETED event. All times are time.monotonic() of this
one process, so the watch and the requests share one clock.

Output, one line per pod and phase (key=value, like the other benchmarks):
  test=podstart pod=NAME node=N ms=CREATE_TO_READY
  test=poddelete pod=NAME node=N ms=DELETE_TO_GONE
  test=podsummary phase=create|delete submit_ms=... last_ms=... done=K of=PODS
Exit 1 when a pod did not get Ready or gone within TIMEOUT_S.
"""
import http.client
import json
import sys
import threading
import time
import urllib.parse

url, pods, nodes, echo, timeout = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], float(sys.argv[5])
u = urllib.parse.urlsplit(url)
HOST, PORT = u.hostname, u.port
BASE = "/api/v1/namespaces/default/pods"
names = ["bench-%03d" % i for i in range(pods)]
node_of = {n: "n%d" % (i % nodes + 1) for i, n in enumerate(names)}
mine = set(names)

lock = threading.Lock()
ready, gone = {}, {}
all_ready, all_gone = threading.Event(), threading.Event()
watch_error = []


def conn():
    return http.client.HTTPConnection(HOST, PORT, timeout=timeout)


def is_ready(pod):
    for c in (pod.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready" and c.get("status") == "True":
            return True
    return False


def watcher(rv, started):
    try:
        c = conn()
        c.request("GET", "%s?watch=true&resourceVersion=%s&allowWatchBookmarks=false" % (BASE, rv))
        r = c.getresponse()
        if r.status != 200:
            raise RuntimeError("watch: HTTP %d %s" % (r.status, r.read(200)))
        started.set()
        while True:
            line = r.readline()
            t = time.monotonic()
            if not line:
                raise RuntimeError("watch: the server closed the stream")
            ev = json.loads(line)
            pod = ev.get("object") or {}
            name = (pod.get("metadata") or {}).get("name")
            if name not in mine:
                continue
            with lock:
                if ev.get("type") == "DELETED":
                    gone.setdefault(name, t)
                    if len(gone) == pods:
                        all_gone.set()
                elif is_ready(pod) and name not in ready:
                    ready[name] = t
                    if len(ready) == pods:
                        all_ready.set()
    except Exception as e:  # the main thread reports it and fails the run
        watch_error.append(str(e))
        started.set()
        all_ready.set()
        all_gone.set()


def pod_body(name):
    return json.dumps({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "bench"}},
        "spec": {
            "nodeName": node_of[name],
            "terminationGracePeriodSeconds": 2,
            "containers": [{
                "name": "echo", "image": "sluice/echo-server",
                "command": [echo, "--name", name],
                "ports": [{"name": "http", "containerPort": 8080}],
                "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080},
                                   "periodSeconds": 1, "failureThreshold": 1},
            }],
        },
    })


def send_all(method, want, fn):
    """Sends one request per pod; returns {name: send time} and the submit duration."""
    c = conn()
    sent = {}
    t0 = time.monotonic()
    for n in names:
        path, body = fn(n)
        hdr = {"Content-Type": "application/json"} if body else {}
        sent[n] = time.monotonic()
        c.request(method, path, body=body, headers=hdr)
        r = c.getresponse()
        data = r.read()
        if r.status not in want:
            sys.exit("podstart: %s %s: HTTP %d %s" % (method, path, r.status, data[:300]))
    return sent, (time.monotonic() - t0) * 1000


c0 = conn()
c0.request("GET", BASE)
r0 = c0.getresponse()
lst = json.loads(r0.read())
if r0.status != 200:
    sys.exit("podstart: list pods: HTTP %d" % r0.status)
started = threading.Event()
threading.Thread(target=watcher, args=(lst["metadata"]["resourceVersion"], started), daemon=True).start()
started.wait(timeout)

created, submit_ms = send_all("POST", (201,), lambda n: (BASE, pod_body(n)))
all_ready.wait(timeout)
with lock:
    rd = dict(ready)
for n in names:
    if n in rd:
        print("test=podstart pod=%s node=%s ms=%.1f" % (n, node_of[n], (rd[n] - created[n]) * 1000))
t_first = min(created.values())
print("test=podsummary phase=create submit_ms=%.1f last_ms=%.1f done=%d of=%d" %
      (submit_ms, (max(rd.values()) - t_first) * 1000 if rd else -1, len(rd), pods))
sys.stdout.flush()

deleted, dsubmit_ms = send_all("DELETE", (200, 202), lambda n: ("%s/%s" % (BASE, n), None))
all_gone.wait(timeout)
with lock:
    gn = dict(gone)
for n in names:
    if n in gn:
        print("test=poddelete pod=%s node=%s ms=%.1f" % (n, node_of[n], (gn[n] - deleted[n]) * 1000))
t_first = min(deleted.values())
print("test=podsummary phase=delete submit_ms=%.1f last_ms=%.1f done=%d of=%d" %
      (dsubmit_ms, (max(gn.values()) - t_first) * 1000 if gn else -1, len(gn), pods))
if watch_error:
    sys.exit("podstart: " + watch_error[0])
if len(rd) < pods or len(gn) < pods:
    sys.exit("podstart: %d of %d pods Ready and %d gone within %.0f s" % (len(rd), pods, len(gn), timeout))
