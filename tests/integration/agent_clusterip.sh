#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The node agent end to end: Services and EndpointSlices written to the API
# server become socket-level load balancing for processes in the node's cgroup.
#
#   host netns                                 netns sl-agent-<pid> (only lo)
#   ┌──────────────────────────────┐           ┌─────────────────────────────────┐
#   │ sluice-control 127.0.0.1:P   │           │ lo: 198.18.0.10 (node address)  │
#   │ sluice-agent --node-name     │  maps +   │     198.18.1.1-3 (backends,     │
#   │   node-a --cgroup-root CG ───┼─ cgroup ─▶│      python http.server :8080)  │
#   │   --bpffs TMP/bpffs          │  hooks    │ curl in cgroup CG → ClusterIP   │
#   └──────────────────────────────┘           │   198.18.128.50:80 / NodePort   │
#                                              └─────────────────────────────────┘
# The client's netns has no route anywhere: an untranslated connect fails
# instead of leaving the machine. Runs in a private mount namespace with its
# own bpffs, so nothing is pinned on the host.
if [[ -z ${SLUICE_IN_MNTNS:-} ]]; then
	exec env SLUICE_IN_MNTNS=1 unshare --mount --propagation private bash "$0" "$@"
fi
source "$(dirname "$0")/lib.sh"

NS=sl-agent-$$
CGROOT=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/self/mounts)
CG=$CGROOT/sluice-test-agent-$$
BPFFS=$TMP/bpffs
mkdir -p "$BPFFS"
mount -t bpf bpf "$BPFFS" || { not_ok mount-bpffs; finish; }

agent_cleanup_all() {
	[[ -n ${AGENT_PID:-} ]] && kill -9 "$AGENT_PID" 2>/dev/null
	"$BIN/sluice-agent" --node-name node-a --bpffs "$BPFFS" --cleanup >/dev/null 2>&1
	if [[ -d $CG ]]; then
		while read -r p; do kill -9 "$p" 2>/dev/null; done <"$CG/cgroup.procs"
		sleep 0.1
		rmdir "$CG" 2>/dev/null
	fi
	ip netns del "$NS" 2>/dev/null
	umount "$BPFFS" 2>/dev/null
	cleanup
}
trap agent_cleanup_all EXIT

mkdir "$CG" || { not_ok make-cgroup; finish; }
ip netns add "$NS"
ip -n "$NS" link set lo up
for a in 198.18.0.10 198.18.1.1 198.18.1.2 198.18.1.3; do ip -n "$NS" addr add "$a/32" dev lo; done
for i in 1 2 3; do
	mkdir -p "$TMP/www$i"
	echo "b$i" >"$TMP/www$i/id"
	ip netns exec "$NS" python3 -m http.server 8080 --bind "198.18.1.$i" --directory "$TMP/www$i" \
		>/dev/null 2>&1 &
	PIDS+=("$!")
done

# Runs a command inside the node's cgroup and netns.
in_node() { bash -c 'echo $$ >"$0/cgroup.procs" && exec ip netns exec "$1" "${@:2}"' "$CG" "$NS" "$@"; }
get() { in_node curl -s --max-time 2 "$@"; }

start_control --store memory || { not_ok start-control; finish; }
U=$CONTROL_URL
j() { curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' "$@"; }

start_agent() {
	"$BIN/sluice-agent" --node-name node-a --server "$U" --bpffs "$BPFFS" --cgroup-root "$CG" \
		--metrics-listen "127.0.0.1:$MPORT" --log-level info >>"$TMP/agent.log" 2>&1 &
	AGENT_PID=$!
	PIDS+=("$AGENT_PID")
}
MPORT=$(free_port)
start_agent

j -XPOST "$U/api/v1/nodes" -d '{"metadata":{"name":"node-a"},"status":{"addresses":[{"type":"InternalIP","address":"198.18.0.10"}]}}' >/dev/null
j -XPOST "$U/api/v1/namespaces/default/services" -d '{"metadata":{"name":"web"},"spec":{"clusterIP":"198.18.128.50","selector":{"app":"web"},"ports":[{"name":"http","port":80,"targetPort":8080}]}}' >/dev/null
slice() { # slice NAME ENDPOINTS_JSON
	local body="{\"apiVersion\":\"discovery.k8s.io/v1\",\"kind\":\"EndpointSlice\",\"metadata\":{\"name\":\"$1\",\"namespace\":\"default\",\"labels\":{\"kubernetes.io/service-name\":\"web\"}},\"addressType\":\"IPv4\",\"ports\":[{\"name\":\"http\",\"port\":8080,\"protocol\":\"TCP\"}],\"endpoints\":$2}"
	if [[ $(j "$U/apis/discovery.k8s.io/v1/namespaces/default/endpointslices/$1") == 200 ]]; then
		j -XPUT "$U/apis/discovery.k8s.io/v1/namespaces/default/endpointslices/$1" -d "$body" >/dev/null
	else
		j -XPOST "$U/apis/discovery.k8s.io/v1/namespaces/default/endpointslices" -d "$body" >/dev/null
	fi
}
ep() { echo "{\"addresses\":[\"198.18.1.$1\"],\"conditions\":{\"ready\":true},\"nodeName\":\"node-a\"}"; }
slice web-1 "[$(ep 1),$(ep 2),$(ep 3)]"

# Wait for the agent to program the service.
for _ in $(seq 100); do [[ $(get http://198.18.128.50/id) == b? ]] && break; sleep 0.1; done
out=$(get http://198.18.128.50/id)
expect_match clusterip-reaches-backend "$out" '^b[123]$'

seen=$(for _ in $(seq 40); do get http://198.18.128.50/id; done | sort -u | tr '\n' ' ')
expect_eq clusterip-spreads-over-all-backends "$seen" "b1 b2 b3 "

slice web-1 "[$(ep 1),$(ep 2)]"
sleep 0.5
seen=$(for _ in $(seq 30); do get http://198.18.128.50/id; done | sort -u | tr '\n' ' ')
expect_eq scale-down-moves-traffic "$seen" "b1 b2 "

slice web-1 "[]"
sleep 0.5
start_ms=$(date +%s%3N)
in_node curl -s --max-time 5 http://198.18.128.50/id >/dev/null 2>"$TMP/refused.err"
rc=$?
took=$(($(date +%s%3N) - start_ms))
expect_eq no-endpoints-refused-curl-exit-7 "$rc" 7
[[ $took -lt 1000 ]] && ok no-endpoints-refused-at-once || not_ok no-endpoints-refused-at-once "took ${took} ms"

slice web-1 "[$(ep 1),$(ep 2),$(ep 3)]"
j -XPOST "$U/api/v1/namespaces/default/services" -d '{"metadata":{"name":"web-np"},"spec":{"type":"NodePort","selector":{"app":"web"},"ports":[{"name":"http","port":80,"targetPort":8080,"nodePort":30080}]}}' >/dev/null
sleep 0.1
# The NodePort service has no slice of its own yet: give it one.
body='{"apiVersion":"discovery.k8s.io/v1","kind":"EndpointSlice","metadata":{"name":"web-np-1","namespace":"default","labels":{"kubernetes.io/service-name":"web-np"}},"addressType":"IPv4","ports":[{"name":"http","port":8080,"protocol":"TCP"}],"endpoints":['"$(ep 2)"']}'
j -XPOST "$U/apis/discovery.k8s.io/v1/namespaces/default/endpointslices" -d "$body" >/dev/null
for _ in $(seq 50); do [[ $(get http://198.18.0.10:30080/id) == b2 ]] && break; sleep 0.1; done
expect_eq nodeport-on-node-address "$(get http://198.18.0.10:30080/id)" b2
expect_eq nodeport-on-loopback "$(get http://127.0.0.1:30080/id)" b2

# Connected UDP clients of a removed backend recover at once (the agent
# destroys their sockets) instead of sending into the void.
for i in 1 2; do
	ip netns exec "$NS" "$PY" -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], 5353))
while True:
    d, a = s.recvfrom(512)
    s.sendto(sys.argv[1].encode(), a)' "198.18.1.$i" >/dev/null 2>&1 &
	PIDS+=("$!")
done
j -XPOST "$U/api/v1/namespaces/default/services" -d '{"metadata":{"name":"dns"},"spec":{"clusterIP":"198.18.128.53","ports":[{"name":"dns","port":53,"targetPort":5353,"protocol":"UDP"}]}}' >/dev/null
udp_slice() {
	local eps=$1 body
	body="{\"apiVersion\":\"discovery.k8s.io/v1\",\"kind\":\"EndpointSlice\",\"metadata\":{\"name\":\"dns-1\",\"namespace\":\"default\",\"labels\":{\"kubernetes.io/service-name\":\"dns\"}},\"addressType\":\"IPv4\",\"ports\":[{\"name\":\"dns\",\"port\":5353,\"protocol\":\"UDP\"}],\"endpoints\":$eps}"
	if [[ $(j "$U/apis/discovery.k8s.io/v1/namespaces/default/endpointslices/dns-1") == 200 ]]; then
		j -XPUT "$U/apis/discovery.k8s.io/v1/namespaces/default/endpointslices/dns-1" -d "$body" >/dev/null
	else
		j -XPOST "$U/apis/discovery.k8s.io/v1/namespaces/default/endpointslices" -d "$body" >/dev/null
	fi
}
udp_slice "[$(ep 1),$(ep 2)]"
cat >"$TMP/udpclient.py" <<'PYEOF'
import socket, sys, time, urllib.request
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(1)
deadline = time.time() + 5
while True:
    try:
        s.connect(("198.18.128.53", 53)); s.send(b"q"); first = s.recv(64).decode(); break
    except OSError:
        if time.time() > deadline: print("no-first-answer"); sys.exit(1)
        time.sleep(0.1)
print("first", first, flush=True)
# Ask the test to remove this backend, then keep using the same socket.
open(sys.argv[1], "w").write(first)
t0 = time.time()
while time.time() - t0 < 5:
    try:
        s.send(b"q"); r = s.recv(64).decode()
        if r != first: print("moved-without-error", r); sys.exit(0)
    except socket.timeout:
        pass
    except OSError as e:
        # ECONNABORTED on the next recv, or (send first) EDESTADDRREQ on the
        # now disconnected socket: either way the client learns at once.
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(1)
        s.connect(("198.18.128.53", 53)); s.send(b"q")
        print("aborted-then", s.recv(64).decode(), "after", round(time.time() - t0, 2)); sys.exit(0)
    time.sleep(0.05)
print("stuck-on", first)
PYEOF
rm -f "$TMP/udp.first"
in_node "$PY" "$TMP/udpclient.py" "$TMP/udp.first" >"$TMP/udp.out" 2>&1 &
UPID=$!
for _ in $(seq 100); do [[ -s $TMP/udp.first ]] && break; sleep 0.05; done
first=$(cat "$TMP/udp.first" 2>/dev/null)
keep=1
[[ $first == 198.18.1.1 ]] && keep=2
udp_slice "[$(ep $keep)]"
wait "$UPID"
expect_match udp-client-recovers-after-backend-removal "$(cat "$TMP/udp.out")" "aborted-then 198.18.1.$keep"

dump=$(bpftool map dump pinned "$BPFFS/sluice/node-a/sl_svc4_v1" 2>&1)
expect_match bpftool-dump-named-fields "$dump" '"count": 3'
expect_match bpftool-dump-has-flags "$dump" '"flags"'

m=$(curl -s "http://127.0.0.1:$MPORT/metrics")
expect_match metrics-sync-count "$m" 'sluice_agent_sync_duration_seconds_count [1-9]'
expect_match metrics-map-fill "$m" 'sluice_agent_map_entries\{map="svc4"\} [1-9]'

# Fail static: the datapath keeps working with the agent gone, and a new
# agent adopts it without a gap.
kill -9 "$AGENT_PID"
wait "$AGENT_PID" 2>/dev/null
fails=0
for _ in $(seq 20); do [[ $(get http://198.18.128.50/id) == b? ]] || fails=$((fails + 1)); done
expect_eq fail-static-while-agent-down "$fails" 0
start_agent
fails=0
for _ in $(seq 30); do [[ $(get http://198.18.128.50/id) == b? ]] || fails=$((fails + 1)); sleep 0.02; done
expect_eq agent-restart-no-failed-requests "$fails" 0
# A change made while it was down is applied after it comes back.
j -XDELETE "$U/api/v1/namespaces/default/services/web-np" >/dev/null
for _ in $(seq 50); do get http://198.18.0.10:30080/id >/dev/null || break; sleep 0.1; done
out=$(get http://198.18.0.10:30080/id)
expect_eq deleted-service-unprogrammed "$out" ""

# Cleanup detaches everything: the VIP is no longer translated.
kill "$AGENT_PID"
wait "$AGENT_PID" 2>/dev/null
AGENT_PID=
check agent-cleanup "$BIN/sluice-agent" --node-name node-a --bpffs "$BPFFS" --cleanup
[[ ! -e $BPFFS/sluice/node-a ]] && ok cleanup-unpinned || not_ok cleanup-unpinned "$(ls -R "$BPFFS")"
out=$(get http://198.18.128.50/id)
expect_eq cleanup-detached "$out" ""

grep -q 'AddressSanitizer\|runtime error' "$TMP/agent.log" && not_ok agent-log-clean "$(grep -m3 -A5 'AddressSanitizer\|runtime error' "$TMP/agent.log")" || ok agent-log-clean
finish
