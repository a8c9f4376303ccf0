#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# tools/echo-server, the workload of the lab tests and make demo: TCP, UDP
# and HTTP replies name the pod and the client address, /ready flips with
# POST /ready/fail and /ready/ok, bad flags are refused by name, SIGTERM
# stops it cleanly (exit 0, so the sanitizer build has nothing to report).
#
#   curl / bash /dev/tcp / python UDP ──127.0.0.1──▶ echo-server --name web-7
source "$(dirname "$0")/lib.sh"

H=$(free_port) T=$(free_port) U=$(free_port)
"$BIN/echo-server" --name web-7 --bind 127.0.0.1 --http "$H" --tcp "$T" --udp "$U" \
	>"$TMP/echo.log" 2>&1 &
EPID=$!
PIDS+=("$EPID")
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$H/healthz" >/dev/null && break; sleep 0.05; done

URL=http://127.0.0.1:$H
# body|status, the body's newline dropped
hs() { curl -s -w '|%{http_code}' "$@" | tr -d '\n'; }
expect_match http-names-pod-and-client "$(curl -s "$URL/some/path")" \
	'^pod=web-7 client=127\.0\.0\.1:[0-9]+ path=/some/path$'
expect_eq http-pod-header "$(curl -s -D - -o /dev/null "$URL/" | tr -d '\r' | sed -n 's/^X-Pod-Name: //p')" web-7
expect_eq healthz "$(hs "$URL/healthz")" "ok|200"
expect_eq ready-initially "$(hs "$URL/ready")" "ready|200"
expect_eq ready-fail "$(curl -s -X POST "$URL/ready/fail")" "pod=web-7 ready=false"
expect_eq ready-after-fail "$(hs "$URL/ready")" "not ready|503"
expect_eq healthz-unaffected "$(curl -s -o /dev/null -w '%{http_code}' "$URL/healthz")" 200
expect_eq ready-toggle-needs-post "$(curl -s -o /dev/null -w '%{http_code}' "$URL/ready/ok")" 405
expect_eq ready-ok "$(curl -s -X POST "$URL/ready/ok")" "pod=web-7 ready=true"
expect_eq ready-after-ok "$(hs "$URL/ready")" "ready|200"
expect_eq post-elsewhere-404 "$(curl -s -o /dev/null -w '%{http_code}' -X POST "$URL/")" 404
# libevent answers methods outside the allowed set with 501.
expect_eq put-refused "$(curl -s -o /dev/null -w '%{http_code}' -X PUT "$URL/")" 501

# Each line comes back prefixed; "three" has no newline and waits for EOF.
expect_match tcp-lines "$(
	exec 3<>"/dev/tcp/127.0.0.1/$T"
	printf 'one\ntwo\r\n' >&3
	read -r -t 2 a <&3
	read -r -t 2 b <&3
	echo "$a|$b"
)" '^pod=web-7 client=127\.0\.0\.1:[0-9]+ one\|pod=web-7 client=127\.0\.0\.1:[0-9]+ two$'
expect_match tcp-last-line-at-eof "$("$PY" - "$T" <<'P'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=2)
s.sendall(b"tail-without-newline")
s.shutdown(socket.SHUT_WR)
out = b""
while True:
    d = s.recv(4096)
    if not d:
        break
    out += d
print(out.decode().strip())
P
)" '^pod=web-7 client=127\.0\.0\.1:[0-9]+ tail-without-newline$'

expect_match udp-datagram "$("$PY" - "$U" <<'P'
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)
s.bind(("127.0.0.1", 0))
s.sendto(b"ping\n", ("127.0.0.1", int(sys.argv[1])))
print(s.recv(4096).decode().strip(), s.getsockname()[1])
P
)" '^pod=web-7 client=127\.0\.0\.1:([0-9]+) ping \1$'

kill -TERM "$EPID"
wait "$EPID"
expect_eq sigterm-exit-0 $? 0
expect_match sigterm-logged "$(cat "$TMP/echo.log")" "SIGTERM, stopping after [0-9]+ requests"

expect_match bad-port "$("$BIN/echo-server" --http 70000 2>&1; echo "rc=$?")" \
	"--http '70000': expected a port 0-65535.*rc=2"
expect_match bad-bind "$("$BIN/echo-server" --bind nowhere 2>&1; echo "rc=$?")" \
	"--bind 'nowhere': expected an IPv4 address.*rc=2"
expect_match nothing-to-serve "$("$BIN/echo-server" --http 0 --tcp 0 --udp 0 2>&1; echo "rc=$?")" \
	"nothing to serve.*rc=2"
expect_match unknown-flag "$("$BIN/echo-server" --frob 2>&1; echo "rc=$?")" "usage: echo-server.*rc=2"
P2=$(free_port)
POD_NAME=from-env "$BIN/echo-server" --bind 127.0.0.1 --http "$P2" --tcp 0 --udp 0 >/dev/null 2>&1 &
PIDS+=("$!")
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$P2/healthz" >/dev/null && break; sleep 0.05; done
expect_match name-from-env "$(curl -s "http://127.0.0.1:$P2/")" "^pod=from-env "
"$BIN/echo-server" --name busy --bind 127.0.0.1 --http "$P2" --tcp 0 --udp 0 >"$TMP/busy.log" 2>&1
expect_match port-in-use "rc=$? $(cat "$TMP/busy.log")" "^rc=1 .*--http 127.0.0.1:$P2: bind failed"
# --shutdown-delay: SIGTERM makes /ready 503, serving goes on, exit after the delay.
P3=$(free_port)
"$BIN/echo-server" --name drain --bind 127.0.0.1 --http "$P3" --tcp 0 --udp 0 --shutdown-delay 2 \
	>"$TMP/drain.log" 2>&1 &
DPID=$!
PIDS+=("$DPID")
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$P3/healthz" >/dev/null && break; sleep 0.05; done
t0=$(date +%s%N)
kill -TERM "$DPID"
sleep 0.3
expect_eq drain-not-ready "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$P3/ready")" 503
expect_eq drain-stays-not-ready "$(curl -s -X POST "http://127.0.0.1:$P3/ready/ok")" "pod=drain ready=false"
expect_match drain-still-serves "$(curl -s "http://127.0.0.1:$P3/")" "^pod=drain client=127\.0\.0\.1:"
wait "$DPID"
rc=$? ms=$((($(date +%s%N) - t0) / 1000000))
if ((rc == 0 && ms >= 1900 && ms < 5000)); then ok drain-exits-after-delay; else
	not_ok drain-exits-after-delay "rc=$rc after $ms ms (want 0 after ~2000 ms)"
fi
expect_match drain-logged "$(cat "$TMP/drain.log")" "SIGTERM, not ready, serving 2 s more"
expect_match bad-shutdown-delay "$("$BIN/echo-server" --shutdown-delay 2x 2>&1; echo "rc=$?")" \
	"--shutdown-delay '2x': expected seconds 0-3600.*rc=2"
finish
