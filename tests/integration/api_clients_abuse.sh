#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Hostile and careless clients must not stall, crash or leak sluice-control.
#
#   python3 (slowloris, 2,000 idle keep-alives, a watch that never reads,
#   abandoned requests) ──┐
#   curl / kubectl ───────┼──HTTP──▶ sluice-control (127.0.0.1:<free>, memory,
#                         │                           --watch-buffer-bytes 65536)
#   64 writer threads ────┴──HTTP──▶ sluice-control (sqlite --data-dir $TMP/data)
#                                     SIGTERM mid-burst, restart, compare
#
# (a) slowloris: stalled requests do not delay anyone else (< 1 s);
# (b) 2,000 idle keep-alive connections held while kubectl works, then freed;
# (c) a watcher that never reads is closed (slow-close metric) while writes and
#     a normal watcher go on;
# (d) requests and watches abandoned midway, repeatedly: no leaked watchers/fds;
# (e) SIGTERM with 64 writers in flight: exit 0 within 5 s, every acknowledged
#     write present after a restart on the same data dir, watches ended cleanly.
# The servers run the sanitizer build; every one must be alive at the end of
# its part, exit 0, and leave no sanitizer report in the log.
source "$(dirname "$0")/lib.sh"

# The clients, written out so the suite is one file (stdlib only, bounded).
cat >"$TMP/abuse.py" <<'PY'
# SPDX-License-Identifier: Apache-2.0
"""Hostile and careless HTTP clients for tests/integration/api_clients_abuse.sh.

Python 3 standard library only; loopback only; every loop is bounded in count
and time. Each mode prints one result line (key=value ...) for the suite.

  slowloris HOST PORT N READY RELEASE   N connections that stall mid-headers /
                                        mid-body until RELEASE exists
  stalled   HOST PORT WAIT              one half-header connection: did the
                                        server close it within WAIT seconds?
  idle      HOST PORT N READY RELEASE   N keep-alive connections, one request
                                        each, then idle until RELEASE exists
  slowwatch HOST PORT PATH READY RELEASE a watch that never reads until
                                        RELEASE exists, then drains
  disconnect HOST PORT ROUNDS           requests and watches abandoned midway
  writers   HOST PORT THREADS MAX OUT   THREADS writers, each up to MAX
                                        ConfigMap creates; "name code" to OUT
"""
import http.client
import json
import os
import socket
import struct
import sys
import threading
import time

DEADLINE = 45.0  # no mode runs longer than this, whatever happens


def connect(host, port, rcvbuf=None):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(10)
    s.connect((host, port))
    return s


def reset(s):
    """Closes with RST instead of FIN: the rudest way to leave."""
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    s.close()


def wait_for(path, limit):
    end = time.monotonic() + limit
    while time.monotonic() < end and not os.path.exists(path):
        time.sleep(0.05)
    return os.path.exists(path)


def touch(path, text=""):
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.rename(path + ".tmp", path)


def read_response(s):
    """Reads one HTTP/1.1 response with Content-Length; returns the status."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = s.recv(65536)
        if not d:
            return 0
        buf += d
    head, _, body = buf.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            length = int(v.strip())
    while len(body) < length:
        d = s.recv(65536)
        if not d:
            break
        body += d
    return status


def slowloris(host, port, n, ready, release):
    conns = []
    for i in range(n):
        s = connect(host, port)
        if i % 3 == 0:
            # Request line and part of a header, never finished.
            s.sendall(b"GET /api/v1/namespaces HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        elif i % 3 == 1:
            # Complete headers, a body that never arrives in full.
            s.sendall(b"POST /api/v1/namespaces/default/configmaps HTTP/1.1\r\nHost: x\r\n"
                      b"Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n"
                      b'{"metadata":')
        else:
            # Half a request line.
            s.sendall(b"GET /api/v1/na")
        conns.append(s)
    touch(ready, str(len(conns)))
    # Trickle one more header byte now and then, the classic slowloris.
    end = time.monotonic() + DEADLINE
    while time.monotonic() < end and not os.path.exists(release):
        for s in conns[::3]:
            try:
                s.sendall(b"a")
            except OSError:
                pass
        time.sleep(0.3)
    for s in conns:
        s.close()
    print("opened=%d" % len(conns))


def stalled(host, port, wait):
    s = connect(host, port)
    s.sendall(b"GET /api/v1/namespaces HTTP/1.1\r\nHost: x\r\nX-Stall: ")
    s.settimeout(wait)
    t0 = time.monotonic()
    try:
        d = s.recv(65536)
        closed = d == b"" or d.startswith(b"HTTP/1.1 4")
    except socket.timeout:
        closed = False
    except OSError:
        closed = True
    s.close()
    print("closed=%d after=%.1f" % (closed, time.monotonic() - t0))


def idle(host, port, n, ready, release):
    conns, answered = [], 0
    for _ in range(n):
        try:
            s = connect(host, port)
        except OSError as e:
            print("connect failed after %d: %s" % (len(conns), e))
            break
        s.sendall(b"GET /version HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n")
        conns.append(s)
    for s in conns:
        try:
            answered += read_response(s) == 200
        except OSError:
            pass
    touch(ready, str(answered))
    wait_for(release, DEADLINE)
    # Still usable after idling? (keep-alive means they should be)
    reused = 0
    for s in conns[:50]:
        try:
            s.sendall(b"GET /version HTTP/1.1\r\nHost: x\r\n\r\n")
            reused += read_response(s) == 200
        except OSError:
            pass
    for s in conns:
        s.close()
    print("opened=%d answered=%d reused=%d" % (len(conns), answered, reused))


def slowwatch(host, port, path, ready, release):
    s = connect(host, port, rcvbuf=4096)
    s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path).encode())
    touch(ready)
    wait_for(release, DEADLINE)
    # Now drain: the server must have ended this stream (closed it).
    s.settimeout(1)
    total, eof, end = 0, False, time.monotonic() + 15
    while time.monotonic() < end:
        try:
            d = s.recv(1 << 20)
        except socket.timeout:
            continue
        except OSError:
            eof = True
            break
        if not d:
            eof = True
            break
        total += len(d)
    s.close()
    print("eof=%d bytes=%d" % (eof, total))


def disconnect(host, port, rounds):
    done = 0
    big = b'{"metadata":{"name":"cut"},"data":{"a":"' + b"x" * 200000 + b'"}}'
    for i in range(rounds):
        try:
            # 1. Half a body, then gone.
            s = connect(host, port)
            s.sendall(b"POST /api/v1/namespaces/default/configmaps HTTP/1.1\r\nHost: x\r\n"
                      b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(big))
            s.sendall(big[: len(big) // 2])
            reset(s)
            # 2. A whole write, gone before the answer (it may or may not land).
            s = connect(host, port)
            body = json.dumps({"metadata": {"name": "gone-%d" % i}, "data": {"i": str(i)}}).encode()
            s.sendall(b"POST /api/v1/namespaces/default/configmaps HTTP/1.1\r\nHost: x\r\n"
                      b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)
                      + body)
            reset(s) if i % 2 else s.close()
            # 3. A big list, gone after the first bytes.
            s = connect(host, port, rcvbuf=4096)
            s.sendall(b"GET /api/v1/configmaps HTTP/1.1\r\nHost: x\r\n\r\n")
            s.recv(100)
            reset(s)
            # 4. A watch, gone mid-stream.
            s = connect(host, port)
            s.sendall(b"GET /api/v1/namespaces/default/configmaps?watch=true HTTP/1.1\r\nHost: x\r\n\r\n")
            s.recv(100)
            reset(s) if i % 2 else s.close()
            # 5. Garbage instead of HTTP.
            s = connect(host, port)
            s.sendall(os.urandom(64) + b"\r\n\r\n")
            s.close()
            # 6. Pipelined requests, gone before reading any answer.
            s = connect(host, port)
            s.sendall(b"GET /api/v1/namespaces HTTP/1.1\r\nHost: x\r\n\r\n" * 20)
            reset(s)
            done += 1
        except OSError as e:
            print("round %d failed: %s" % (i, e))
            break
    print("rounds=%d" % done)


def writers(host, port, threads, limit, out):
    lock = threading.Lock()
    lines = []
    end = time.monotonic() + DEADLINE

    def worker(t):
        c = None
        for i in range(limit):
            if time.monotonic() > end:
                break
            name = "w-%02d-%04d" % (t, i)
            body = json.dumps({"metadata": {"name": name}, "data": {"t": str(t), "i": str(i)}})
            try:
                if c is None:
                    c = http.client.HTTPConnection(host, port, timeout=15)
                c.request("POST", "/api/v1/namespaces/default/configmaps", body,
                          {"Content-Type": "application/json"})
                r = c.getresponse()
                r.read()
                code = r.status
                if r.getheader("Connection", "").lower() == "close":
                    c.close()
                    c = None
            except (OSError, http.client.HTTPException):
                code = 0  # refused or cut: not acknowledged
                if c:
                    c.close()
                c = None
            with lock:
                lines.append("%s %d" % (name, code))
            if code == 0:
                # The server is gone: stop after a few tries.
                if sum(1 for ln in lines[-200:] if ln.endswith(" 0")) > 3 * threads:
                    break
                time.sleep(0.05)

    ts = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    with open(out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("writes=%d" % len(lines))


def main():
    mode, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    a = sys.argv[4:]
    if mode == "slowloris":
        slowloris(host, port, int(a[0]), a[1], a[2])
    elif mode == "stalled":
        stalled(host, port, float(a[0]))
    elif mode == "idle":
        idle(host, port, int(a[0]), a[1], a[2])
    elif mode == "slowwatch":
        slowwatch(host, port, a[0], a[1], a[2])
    elif mode == "disconnect":
        disconnect(host, port, int(a[0]))
    elif mode == "writers":
        writers(host, port, int(a[0]), int(a[1]), a[2])
    else:
        sys.exit("unknown mode " + mode)


if __name__ == "__main__":
    main()
PY
START_FLAGS=(--store memory --watch-buffer-bytes 65536)
start_control "${START_FLAGS[@]}" || { not_ok start; finish; }
SERVERS=("$CONTROL_PID")
SRVN=1 # numbers the servers in check names
URL=$CONTROL_URL
PORT=${URL##*:}
JSON=(-H 'Content-Type: application/json')
# Detail lines under a "not ok" stay indented, so none reads as a result.
indent() { sed 's/^/  /'; }
ulimit -n 8192 2>/dev/null || ulimit -n "$(ulimit -Hn)"

# fast NAME CMD...: CMD succeeds within a second (the service is not stalled).
fast() {
	local name=$1 t0 t1 rc
	shift
	t0=$(date +%s%N)
	"$@" >"$TMP/fast.out" 2>&1
	rc=$?
	t1=$(date +%s%N)
	# "Served" means answered while the abuse goes on, not stuck behind it: 3 s is far
	# above a normal answer (ms) yet below the timeouts an abusive client could cause.
	if ((rc == 0 && (t1 - t0) < 3000000000)); then
		ok "$name"
	else
		not_ok "$name" "rc=$rc after $(((t1 - t0) / 1000000)) ms" "$(tail -3 "$TMP/fast.out" | indent)"
	fi
}
create_cm() { # NAME [NAMESPACE]
	curl -sf --max-time 5 -X POST "${JSON[@]}" -d "{\"metadata\":{\"name\":\"$1\"},\"data\":{\"a\":\"b\"}}" \
		"$URL/api/v1/namespaces/${2:-default}/configmaps"
}
list_ns() { curl -sf --max-time 5 "$URL/api/v1/namespaces" | jq -e '.items | length > 3'; }
metric() { curl -s --max-time 5 "$URL/metrics" | awk -v m="$1" '$1 == m {print $2}'; }
fds() { ls "/proc/$1/fd" 2>/dev/null | wc -l; }
# wait_file PATH SECONDS
wait_file() {
	local i
	for ((i = 0; i < $2 * 20; i++)); do [[ -e $1 ]] && return 0; sleep 0.05; done
	return 1
}
# watch_first_event: a new watch delivers its first (synthetic ADDED) event.
watch_first_event() {
	curl -s -N --max-time 0.6 "$URL/api/v1/namespaces?watch=true" -o "$TMP/first.watch"
	grep -q '"type":"ADDED"' "$TMP/first.watch"
}
# section NAME: timing on stderr, to keep the suite under its 60 s budget.
section() { echo "# $(date +%T.%N | cut -c1-12) $1" >&2; }
FD0=$(fds "$CONTROL_PID")

# --- (a) slowloris: 150 stalled connections, others served within a second --------
section a-slowloris
python3 "$TMP/abuse.py" slowloris 127.0.0.1 "$PORT" 150 "$TMP/sl.ready" "$TMP/sl.release" \
	>"$TMP/sl.out" 2>&1 &
SLPID=$!
PIDS+=("$SLPID")
wait_file "$TMP/sl.ready" 20 && ok slowloris-connections-open || not_ok slowloris-connections-open "$(indent <"$TMP/sl.out")"
sleep 1
fast slowloris-list-within-1s list_ns
fast slowloris-create-within-1s create_cm during-slowloris
fast slowloris-get-within-1s curl -sf --max-time 5 "$URL/api/v1/namespaces/default/configmaps/during-slowloris"
fast slowloris-kubectl-within-1s kc get ns kube-system -o name
fast slowloris-watch-starts-within-1s watch_first_event
touch "$TMP/sl.release"
wait "$SLPID"
expect_eq slowloris-client-done "$(cat "$TMP/sl.out")" "opened=150"

# --- (b) 2,000 idle keep-alive connections ------------------------------------------------
section b-idle
python3 "$TMP/abuse.py" idle 127.0.0.1 "$PORT" 2000 "$TMP/idle.ready" "$TMP/idle.release" \
	>"$TMP/idle.out" 2>&1 &
IDPID=$!
PIDS+=("$IDPID")
if wait_file "$TMP/idle.ready" 40; then
	expect_eq idle-2000-answered "$(cat "$TMP/idle.ready")" 2000
else
	not_ok idle-2000-answered "$(indent <"$TMP/idle.out")"
fi
n=$(fds "$CONTROL_PID")
((n >= 2000)) && ok idle-2000-held-by-server || not_ok idle-2000-held-by-server "server has $n fds"
fast idle-kubectl-get-within-1s kc get ns -o name
fast idle-create-within-1s create_cm during-idle
fast idle-list-within-1s list_ns
touch "$TMP/idle.release"
wait "$IDPID"
expect_eq idle-connections-reusable "$(cat "$TMP/idle.out")" "opened=2000 answered=2000 reused=50"
for _ in $(seq 50); do (($(fds "$CONTROL_PID") <= FD0 + 10)) && break; sleep 0.1; done
n=$(fds "$CONTROL_PID")
((n <= FD0 + 10)) && ok idle-closed-fds-released || not_ok idle-closed-fds-released "fds $FD0 before, $n after"

# --- (c) a watcher that never reads ----------------------------------------------------------
section c-slow-watch
WPATH=/api/v1/namespaces/default/configmaps?watch=true
slow0=$(metric sluice_apiserver_watch_slow_closed_total)
RV=$(curl -s "$URL/api/v1/namespaces?limit=1" | jq -r .metadata.resourceVersion)
python3 "$TMP/abuse.py" slowwatch 127.0.0.1 "$PORT" "$WPATH&resourceVersion=$RV" \
	"$TMP/sw.ready" "$TMP/sw.release" >"$TMP/sw.out" 2>&1 &
SWPID=$!
PIDS+=("$SWPID")
wait_file "$TMP/sw.ready" 10 || not_ok slow-watch-started "$(indent <"$TMP/sw.out")"
# A well-behaved watcher on the same resource, reading everything.
curl -s -N --max-time 40 "$URL$WPATH&resourceVersion=$RV" \
	>"$TMP/good.watch" 2>/dev/null &
GWPID=$!
PIDS+=("$GWPID")
sleep 0.5
# 100 writes of ~30 KiB each (every event below the 64 KiB limit): 3 MiB the
# slow watcher cannot take.
cat >"$TMP/big.py" <<'PY'
import http.client, json, sys, time
c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=10)
worst, ok = 0.0, 0
for i in range(int(sys.argv[2])):
    body = json.dumps({"metadata": {"name": "big-%03d" % i}, "data": {"a": "%03d" % i + "x" * int(sys.argv[3])}})
    t0 = time.monotonic()
    c.request("POST", "/api/v1/namespaces/default/configmaps", body, {"Content-Type": "application/json"})
    r = c.getresponse(); r.read()
    worst = max(worst, time.monotonic() - t0)
    ok += r.status == 201
print("created=%d worst_ms=%d" % (ok, worst * 1000))
PY
out=$(python3 "$TMP/big.py" "$PORT" 100 30000)
expect_match slow-watch-writes-continue "$out" '^created=100 '
worst=$(sed 's/.*worst_ms=//' <<<"$out")
((worst < 1000)) && ok slow-watch-writes-under-1s || not_ok slow-watch-writes-under-1s "$out"
for _ in $(seq 50); do [[ $(metric sluice_apiserver_watch_slow_closed_total) -gt ${slow0:-0} ]] && break; sleep 0.1; done
slow1=$(metric sluice_apiserver_watch_slow_closed_total)
expect_eq slow-watch-closed-metric "$((slow1 - slow0))" 1
fast slow-watch-others-served create_cm after-slow-watch
touch "$TMP/sw.release"
wait "$SWPID"
expect_match slow-watch-stream-ended "$(cat "$TMP/sw.out")" '^eof=1 '
bytes=$(sed 's/.*bytes=//' "$TMP/sw.out")
((bytes < 3000000)) && ok slow-watch-backlog-dropped || not_ok slow-watch-backlog-dropped "$(indent <"$TMP/sw.out")"
for _ in $(seq 50); do [[ $(grep -c '"name":"after-slow-watch"' "$TMP/good.watch") -ge 1 ]] && break; sleep 0.1; done
expect_eq good-watch-saw-all-big "$(grep -o '"name":"big-[0-9]*"' "$TMP/good.watch" | sort -u | wc -l)" 100
expect_eq good-watch-saw-later-write "$(grep -c '"name":"after-slow-watch"' "$TMP/good.watch")" 1
kill -0 "$GWPID" 2>/dev/null && ok good-watch-still-open || not_ok good-watch-still-open
kill "$GWPID" 2>/dev/null
wait "$GWPID" 2>/dev/null
# One event larger than --watch-buffer-bytes, to a watcher that reads at
# full speed: it is not slow and must not be closed for it.
slow0=$(metric sluice_apiserver_watch_slow_closed_total)
curl -s -N --max-time 40 "$URL/api/v1/namespaces/kube-public/configmaps?watch=true&resourceVersion=0" \
	>"$TMP/fast.watch" 2>/dev/null &
FWPID=$!
PIDS+=("$FWPID")
sleep 0.5
python3 - "$PORT" <<'PY' >/dev/null
import http.client, json, sys
c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=10)
for name, size in (("huge-event", 100000), ("small-after", 10)):
    c.request("POST", "/api/v1/namespaces/kube-public/configmaps",
              json.dumps({"metadata": {"name": name}, "data": {"a": "x" * size}}),
              {"Content-Type": "application/json"})
    c.getresponse().read()
PY
for _ in $(seq 30); do grep -q '"small-after"' "$TMP/fast.watch" && break; sleep 0.1; done
expect_eq fast-watch-survives-event-over-buffer \
	"$(grep -c '"name":"huge-event"\|"name":"small-after"' "$TMP/fast.watch") $(kill -0 "$FWPID" 2>/dev/null && echo open || echo closed) $(($(metric sluice_apiserver_watch_slow_closed_total) - slow0))" \
	"2 open 0"
kill "$FWPID" 2>/dev/null
wait "$FWPID" 2>/dev/null
# A burst from 32 writers (8 KB objects) commits in groups: a watcher that
# reads at full speed must see all 640 events, not be closed as slow.
slow0=$(metric sluice_apiserver_watch_slow_closed_total)
curl -s -N --max-time 40 "$URL/api/v1/namespaces/kube-node-lease/configmaps?watch=true&resourceVersion=0" \
	>"$TMP/burst.watch" 2>/dev/null &
FWPID=$!
PIDS+=("$FWPID")
sleep 0.5
python3 - "$PORT" <<'PY' >/dev/null
import http.client, json, sys, threading
def writer(t):
    c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=10)
    for i in range(20):
        c.request("POST", "/api/v1/namespaces/kube-node-lease/configmaps",
                  json.dumps({"metadata": {"name": "b-%02d-%02d" % (t, i)}, "data": {"a": "x" * 8000}}),
                  {"Content-Type": "application/json"})
        c.getresponse().read()
ts = [threading.Thread(target=writer, args=(t,)) for t in range(32)]
[t.start() for t in ts]
[t.join() for t in ts]
PY
for _ in $(seq 30); do [[ $(grep -c '"type":"ADDED"' "$TMP/burst.watch") -ge 640 ]] && break; sleep 0.1; done
expect_eq fast-watch-survives-burst \
	"$(grep -c '"type":"ADDED"' "$TMP/burst.watch") $(kill -0 "$FWPID" 2>/dev/null && echo open || echo closed) $(($(metric sluice_apiserver_watch_slow_closed_total) - slow0))" \
	"640 open 0"
kill "$FWPID" 2>/dev/null
wait "$FWPID" 2>/dev/null
# Stalled before the end of its headers: dropped by --idle-timeout.
section c-stalled
start_control --store memory --idle-timeout 2 || { not_ok start-idle-timeout; finish; }
SERVERS+=("$CONTROL_PID")
expect_match stalled-headers-closed-by-idle-timeout \
	"$(python3 "$TMP/abuse.py" stalled 127.0.0.1 "${CONTROL_URL##*:}" 6)" '^closed=1 '
URL=http://127.0.0.1:$PORT

# --- (d) clients that leave mid-request and mid-watch ---------------------------------------------
section d-abandon
w0=$(metric sluice_apiserver_watchers)
for i in $(seq 12); do
	curl -s -N --max-time 0.2 "$URL$WPATH" -o /dev/null
	curl -s --max-time 0.05 "$URL/api/v1/configmaps" -o /dev/null
	curl -s -N --max-time 0.1 "$URL/api/v1/watch/namespaces?resourceVersion=0" -o /dev/null
done
ok curl-max-time-loop-done
expect_match abandoned-requests "$(python3 "$TMP/abuse.py" disconnect 127.0.0.1 "$PORT" 30 2>&1)" '^rounds=30$'
for _ in $(seq 50); do [[ $(metric sluice_apiserver_watchers) == "$w0" ]] && break; sleep 0.1; done
expect_eq abandoned-watches-released "$(metric sluice_apiserver_watchers)" "$w0"
fast after-abuse-create-within-1s create_cm after-abuse
fast after-abuse-list-within-1s list_ns
for _ in $(seq 50); do (($(fds "${SERVERS[0]}") <= FD0 + 10)) && break; sleep 0.1; done
n=$(fds "${SERVERS[0]}")
((n <= FD0 + 10)) && ok abandoned-fds-released || not_ok abandoned-fds-released "fds $FD0 before, $n after"

# --- every server so far: alive, clean SIGTERM, no sanitizer report -------------------------------
section servers
for i in "${!SERVERS[@]}"; do
	pid=${SERVERS[$i]}
	if kill -0 "$pid" 2>/dev/null; then ok "server-$SRVN-alive"; else not_ok "server-$SRVN-alive"; fi
	kill -TERM "$pid" 2>/dev/null
	rc=0
	for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	wait "$pid" 2>/dev/null || rc=$?
	expect_eq "server-$SRVN-exit-0" "$rc" 0
	SRVN=$((SRVN + 1))
done

# --- (e) SIGTERM with 64 writes in flight (sqlite) ---------------------------------------------------
section e-sigterm
DATA=$TMP/data
start_control --store sqlite --data-dir "$DATA" --log-level info || { not_ok start-sqlite; finish; }
URL=$CONTROL_URL
PORT=${URL##*:}
SQPID=$CONTROL_PID
for i in 1 2 3; do
	curl -s -N --max-time 30 "$URL$WPATH" -o "$TMP/term.watch.$i" &
	TW[$i]=$!
	PIDS+=("${TW[$i]}")
done
"$PY" "$TMP/abuse.py" writers 127.0.0.1 "$PORT" 64 400 "$TMP/writes.txt" >"$TMP/writers.out" 2>&1 &
WRPID=$!
PIDS+=("$WRPID")
# Signal only once the writers are producing (interpreter start-up under load
# can take longer than any fixed sleep).
for _ in $(seq 200); do
	[[ -f $TMP/writes.txt && $(wc -l <"$TMP/writes.txt") -ge 50 ]] && break
	sleep 0.05
done
t0=$(date +%s%N)
kill -TERM "$SQPID"
rc=0
for _ in $(seq 100); do kill -0 "$SQPID" 2>/dev/null || break; sleep 0.05; done
wait "$SQPID" 2>/dev/null || rc=$?
t1=$(date +%s%N)
expect_eq sigterm-exit-0 "$rc" 0
ms=$(((t1 - t0) / 1000000))
((ms < 5000)) && ok sigterm-exit-within-5s || not_ok sigterm-exit-within-5s "took $ms ms"
inflight=$(grep -o 'shutting down ([0-9]* writes in flight' "$TMP/control.log" | tail -1 | grep -o '[0-9]*')
# How many writes the signal caught depends on timing (the Python writers,
# not the server, are the bottleneck); the behaviour under test is that every
# acknowledged write survives, checked below. Report it, don't assert it.
echo "# sigterm caught ${inflight:-?} writes in flight"
wait "$WRPID"
for i in 1 2 3; do
	wrc=0
	wait "${TW[$i]}" || wrc=$?
	expect_eq "sigterm-watch-$i-ended-cleanly" "$wrc" 0
done
acked=$(awk '$2 >= 200 && $2 < 300 {print $1}' "$TMP/writes.txt" | sort)
nacked=$(grep -c . <<<"$acked")
((nacked > 64)) && ok sigterm-some-writes-acknowledged || not_ok sigterm-some-writes-acknowledged "$(indent <"$TMP/writers.out")"
bad=$(awk '$2 != 0 && ($2 < 200 || $2 >= 300) && $2 != 503 {print}' "$TMP/writes.txt" | head -5)
expect_eq sigterm-refusals-are-503 "$bad" ""
start_control --store sqlite --data-dir "$DATA" || { not_ok restart-sqlite; finish; }
SERVERS=("$CONTROL_PID")
URL=$CONTROL_URL
stored=$(curl -s --max-time 10 "$URL/api/v1/namespaces/default/configmaps" |
	jq -r '.items[].metadata.name' | grep '^w-' | sort)
missing=$(comm -23 <(echo "$acked") <(echo "$stored") | head -5)
expect_eq sigterm-acknowledged-writes-durable "$missing" ""
# A write answered with an error must not have happened.
refused=$(awk '$2 == 503 {print $1}' "$TMP/writes.txt" | sort)
ghost=$(comm -12 <(echo "$refused") <(echo "$stored") | grep . | head -5)
expect_eq sigterm-refused-writes-absent "$ghost" ""
# Each watch saw a prefix of the acknowledged writes, in revision order.
for i in 1 2 3; do
	rvs=$(jq -r '.object.metadata.resourceVersion' "$TMP/term.watch.$i" 2>/dev/null)
	if [[ -n $rvs && $(sort -n <<<"$rvs") == "$rvs" ]] && jq -e . "$TMP/term.watch.$i" >/dev/null 2>&1; then
		ok "sigterm-watch-$i-complete-lines"
	else
		not_ok "sigterm-watch-$i-complete-lines" "$(tail -c 300 "$TMP/term.watch.$i" | indent)"
	fi
done

for i in "${!SERVERS[@]}"; do
	pid=${SERVERS[$i]}
	if kill -0 "$pid" 2>/dev/null; then ok "server-$SRVN-alive"; else not_ok "server-$SRVN-alive"; fi
	kill -TERM "$pid" 2>/dev/null
	rc=0
	for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	wait "$pid" 2>/dev/null || rc=$?
	expect_eq "server-$SRVN-exit-0" "$rc" 0
	SRVN=$((SRVN + 1))
done
reports=$(grep -E 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error|SUMMARY: ' "$TMP/control.log")
if [[ -z $reports ]]; then ok no-sanitizer-reports; else not_ok no-sanitizer-reports "$(grep -B2 -A30 -m1 -E 'ERROR: |runtime error' "$TMP/control.log" | indent)"; fi

finish
