#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The per-packet north-south path end to end: the agent attaches
# tc_nodeport to a node's uplinks and NodePort / LoadBalancer / externalIP
# traffic from another netns is translated, SNATed, refused and reverse-NATed
# by the eBPF programs alone (no iptables, no socket LB on this path).
#
#  netns client            netns node-a                          netns backends
#  ┌──────────────┐        ┌──────────────────────────────────┐  ┌───────────────────────┐
#  │ c0           │  veth  │ n0 198.18.2.10/24 (InternalIP)   │  │ b0 198.18.3.1 b1 local│
#  │ 198.18.2.1/24├────────┤    198.18.2.11/32 (ExternalIP,   │  │    198.18.3.2 b2 on   │
#  │ 198.18.4.0/24│        │     externalIP of svc "ext")     │  │       "node-b" (SNAT) │
#  │  via .2.10   │        │ n1 198.18.3.254/24 ──────────────┼──┤    198.18.3.3 b3 local│
#  │ (LB VIPs)    │        │ tc ingress+egress on n0 and n1   │  │ http.server :8080,    │
#  └──────────────┘        │ sluice-control 127.0.0.1:P       │  │ 198.18.2.0/24 via .254│
#                          │ sluice-agent --devices n0,n1     │  └───────────────────────┘
#                          │   (HC servers on 0.0.0.0)        │
#                          └──────────────────────────────────┘
# Nothing has a default route: an untranslated packet goes nowhere. The agent
# and the API server run inside node-a's netns (nsenter --net, so /sys stays
# the host's and the cgroup v2 tree is visible); the socket LB hooks go to an
# empty test cgroup. Runs in a private mount namespace with its own bpffs.
if [[ -z ${SLUICE_IN_MNTNS:-} ]]; then
	exec env SLUICE_IN_MNTNS=1 unshare --mount --propagation private bash "$0" "$@"
fi
source "$(dirname "$0")/lib.sh"

C=sl-np-cl-$$
N=sl-np-na-$$
B=sl-np-be-$$
CGROOT=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/self/mounts)
CG=$CGROOT/sluice-test-np-$$
BPFFS=$TMP/bpffs
PIN=$BPFFS/sluice/node-a
mkdir -p "$BPFFS"
mount -t bpf bpf "$BPFFS" || { not_ok mount-bpffs; finish; }

in_c() { nsenter --net="/run/netns/$C" "$@"; }
in_n() { nsenter --net="/run/netns/$N" "$@"; }
in_b() { nsenter --net="/run/netns/$B" "$@"; }
# Background processes are started with nsenter itself (it execs), never through
# these functions: $! of a backgrounded function is a subshell, and killing it
# would leave the real process running.
NS_N=(nsenter --net="/run/netns/$N")

np_cleanup_all() {
	[[ -n ${AGENT_PID:-} ]] && kill -9 "$AGENT_PID" 2>/dev/null
	[[ -e /run/netns/$N ]] &&
		in_n "$BIN/sluice-agent" --node-name node-a --bpffs "$BPFFS" --cleanup >/dev/null 2>&1
	[[ -d $CG ]] && rmdir "$CG" 2>/dev/null
	for ns in "$C" "$N" "$B"; do ip netns del "$ns" 2>/dev/null; done
	umount "$BPFFS" 2>/dev/null
	cleanup
}
trap np_cleanup_all EXIT
[[ -n ${KEEP_LOG:-} ]] && trap 'cp "$TMP/agent.log" "$KEEP_LOG"; np_cleanup_all' EXIT

mkdir "$CG" || { not_ok make-cgroup; finish; }
for ns in "$C" "$N" "$B"; do ip netns add "$ns" || { not_ok "netns-$ns"; finish; }; done
ip -n "$N" link add n0 type veth peer name c0 netns "$C"
ip -n "$N" link add n1 type veth peer name b0 netns "$B"
ip -n "$C" addr add 198.18.2.1/24 dev c0
ip -n "$N" addr add 198.18.2.10/24 dev n0
ip -n "$N" addr add 198.18.2.11/32 dev n0
ip -n "$N" addr add 198.18.3.254/24 dev n1
for a in 1 2 3; do ip -n "$B" addr add "198.18.3.$a/24" dev b0; done
for l in "$C lo" "$C c0" "$N lo" "$N n0" "$N n1" "$B lo" "$B b0"; do
	set -- $l
	ip -n "$1" link set "$2" up
done
ip -n "$C" route add 198.18.4.0/24 via 198.18.2.10
ip -n "$B" route add 198.18.2.0/24 via 198.18.3.254
in_n sysctl -qw net.ipv4.ip_forward=1

for i in 1 2 3; do
	mkdir -p "$TMP/www$i"
	echo "b$i" >"$TMP/www$i/id"
	# http.server logs "<client ip> - - [date] ..." per request on stderr.
	nsenter --net="/run/netns/$B" python3 -u -m http.server 8080 --bind "198.18.3.$i" --directory "$TMP/www$i" \
		>/dev/null 2>"$TMP/be$i.log" &
	PIDS+=("$!")
done
# UDP echo on b1 and b2 :5353 (answers "<name> <client ip>").
for i in 1 2; do
	nsenter --net="/run/netns/$B" python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], 5353))
while True:
    d, peer = s.recvfrom(256)
    s.sendto(("%s %s" % (sys.argv[2], peer[0])).encode(), peer)
' "198.18.3.$i" "b$i" >/dev/null 2>&1 &
	PIDS+=("$!")
done

CPORT=$(in_n python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
U=http://127.0.0.1:$CPORT
"${NS_N[@]}" "$BIN/sluice-control" --listen "127.0.0.1:$CPORT" --service-cidr 198.18.128.0/20 \
	--store memory --log-level warn >>"$TMP/control.log" 2>&1 &
PIDS+=("$!")
for _ in $(seq 100); do in_n curl -sf "$U/readyz" >/dev/null 2>&1 && break; sleep 0.05; done
in_n curl -sf "$U/readyz" >/dev/null || { not_ok start-control "$(cat "$TMP/control.log")"; finish; }

j() { in_n curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' "$@"; }
# get URL: one request from the client; prints the body (empty on failure).
get() { in_c curl -s --max-time 2 "$@"; }
metrics() { in_n curl -s "http://127.0.0.1:$MPORT/metrics"; }
metric() { metrics | awk -v m="$1" '$1 == m { print $2 }'; }

MPORT=$(in_n python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
start_agent() {
	"${NS_N[@]}" "$BIN/sluice-agent" --node-name node-a --server "$U" --bpffs "$BPFFS" \
		--cgroup-root "$CG" --devices n0,n1 --ct-gc-interval 1 \
		--metrics-listen "127.0.0.1:$MPORT" --log-level info >>"$TMP/agent.log" 2>&1 &
	AGENT_PID=$!
	PIDS+=("$AGENT_PID")
}

j -XPOST "$U/api/v1/nodes" -d '{"metadata":{"name":"node-a"},"status":{"addresses":[{"type":"InternalIP","address":"198.18.2.10"},{"type":"ExternalIP","address":"198.18.2.11"}]}}' >/dev/null
svc() { j -XPOST "$U/api/v1/namespaces/default/services" -d "$1" >/dev/null; }
svc '{"metadata":{"name":"np-local"},"spec":{"type":"NodePort","ports":[{"port":80,"targetPort":8080,"nodePort":30080}]}}'
svc '{"metadata":{"name":"np-remote"},"spec":{"type":"NodePort","ports":[{"port":80,"targetPort":8080,"nodePort":30081}]}}'
svc '{"metadata":{"name":"lb"},"spec":{"type":"LoadBalancer","externalTrafficPolicy":"Local","healthCheckNodePort":30200,"ports":[{"port":80,"targetPort":8080,"nodePort":30082}]}}'
svc '{"metadata":{"name":"ext"},"spec":{"externalIPs":["198.18.2.11"],"ports":[{"port":8088,"targetPort":8080}]}}'
svc '{"metadata":{"name":"empty"},"spec":{"type":"NodePort","ports":[{"name":"t","port":80,"nodePort":30090,"protocol":"TCP"},{"name":"u","port":53,"nodePort":30091,"protocol":"UDP"}]}}'
svc '{"metadata":{"name":"etp-remote"},"spec":{"type":"LoadBalancer","externalTrafficPolicy":"Local","healthCheckNodePort":30201,"ports":[{"port":80,"targetPort":8080,"nodePort":30083}]}}'
svc '{"metadata":{"name":"udp-local"},"spec":{"type":"NodePort","ports":[{"port":53,"targetPort":5353,"nodePort":30092,"protocol":"UDP"}]}}'
svc '{"metadata":{"name":"udp-remote"},"spec":{"type":"NodePort","ports":[{"port":53,"targetPort":5353,"nodePort":30093,"protocol":"UDP"}]}}'
# The LoadBalancer's ingress IP is status, written through /status.
in_n curl -s "$U/api/v1/namespaces/default/services/lb" |
	python3 -c 'import json,sys; o=json.load(sys.stdin); o["status"]={"loadBalancer":{"ingress":[{"ip":"198.18.4.100"}]}}; print(json.dumps(o))' >"$TMP/lb.json"
j -XPUT "$U/api/v1/namespaces/default/services/lb/status" -d @"$TMP/lb.json" >/dev/null

# slice SERVICE ENDPOINT... where ENDPOINT is "<backend number>@<node>";
# PORT/PROTO from the environment (default 8080/TCP).
slice() {
	local s=$1 eps="" e
	shift
	for e in "$@"; do
		eps+="${eps:+,}{\"addresses\":[\"198.18.3.${e%@*}\"],\"conditions\":{\"ready\":true},\"nodeName\":\"${e#*@}\"}"
	done
	j -XPOST "$U/apis/discovery.k8s.io/v1/namespaces/default/endpointslices" -d "{\"apiVersion\":\"discovery.k8s.io/v1\",\"kind\":\"EndpointSlice\",\"metadata\":{\"name\":\"$s-1\",\"namespace\":\"default\",\"labels\":{\"kubernetes.io/service-name\":\"$s\"}},\"addressType\":\"IPv4\",\"ports\":[{\"port\":${PORT:-8080},\"protocol\":\"${PROTO:-TCP}\"}],\"endpoints\":[$eps]}" >/dev/null
}
slice np-local 1@node-a
slice np-remote 2@node-b
slice lb 3@node-a
slice ext 1@node-a 3@node-a
slice etp-remote 2@node-b
PORT=5353 PROTO=UDP slice udp-local 1@node-a
PORT=5353 PROTO=UDP slice udp-remote 2@node-b

start_agent
for _ in $(seq 100); do [[ $(get http://198.18.2.10:30080/id) == b1 ]] && break; sleep 0.1; done

# --- attach --------------------------------------------------------------------------
f=$(in_n tc filter show dev n0 ingress)
expect_match tc-ingress-attached "$f" "handle 0x51ce tc_nodeport_ing"
f=$(in_n tc filter show dev n1 egress)
expect_match tc-egress-attached "$f" "handle 0x51ce tc_nodeport_egr"

# --- NodePort to a local backend: DNAT only, the backend sees the client -------------
expect_eq nodeport-local-backend "$(get http://198.18.2.10:30080/id)" b1
expect_match nodeport-local-keeps-client-ip "$(cat "$TMP/be1.log")" '(^|
)198\.18\.2\.1 - '
expect_eq nodeport-on-second-node-address "$(get http://198.18.2.11:30080/id)" b1

# --- NodePort to a backend on another node: SNAT to the InternalIP, reply back -------
expect_eq nodeport-remote-backend-snat "$(get http://198.18.2.10:30081/id)" b2
log2=$(cat "$TMP/be2.log")
expect_match nodeport-remote-sees-node-address "$log2" '(^|
)198\.18\.2\.10 - '
[[ $log2 =~ (^|$'\n')198\.18\.2\.1\  ]] && not_ok nodeport-remote-client-hidden "$log2" ||
	ok nodeport-remote-client-hidden
nat=$(bpftool map dump pinned "$PIN/sl_nat4_v1" 2>&1)
expect_match nat4-entry-for-snat-flow "$nat" '"orig_port"'

# --- LoadBalancer ingress IP and externalIP -------------------------------------------
expect_eq loadbalancer-ingress-ip "$(get http://198.18.4.100/id)" b3
expect_eq loadbalancer-nodeport "$(get http://198.18.2.10:30082/id)" b3
expect_match externalip "$(get http://198.18.2.11:8088/id)" '^b[13]$'
seen=$(for _ in $(seq 24); do get http://198.18.2.11:8088/id; done | sort -u | tr '\n' ' ')
expect_eq externalip-maglev-spreads "$seen" "b1 b3 "

# --- UDP: a connected socket accepts only replies from the address it sent to,
# so an answer proves the reverse translation (egress CT for a local backend,
# nat4 on the uplink ingress for a remote one).
udp_ask() {
	in_c python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)
s.connect((sys.argv[1], int(sys.argv[2])))
s.send(b"q")
try:
    print(s.recv(256).decode())
except Exception as e:
    print(type(e).__name__)
' "$@"
}
expect_eq udp-nodeport-local-reply-from-frontend "$(udp_ask 198.18.2.10 30092)" "b1 198.18.2.1"
expect_eq udp-nodeport-remote-snat-reply "$(udp_ask 198.18.2.10 30093)" "b2 198.18.2.10"
ctu=$(bpftool map dump pinned "$PIN/sl_ct4_any_v1" 2>&1)
expect_match udp-conntrack-entries "$ctu" '"backend_addr"'

# --- refusals ---------------------------------------------------------------------------
start_ms=$(date +%s%3N)
in_c curl -s --max-time 5 http://198.18.2.10:30090/ >/dev/null 2>&1
rc=$?
took=$(($(date +%s%3N) - start_ms))
expect_eq no-endpoints-tcp-rst-curl-exit-7 "$rc" 7
[[ $took -lt 1000 ]] && ok no-endpoints-tcp-refused-at-once || not_ok no-endpoints-tcp-refused-at-once "took ${took} ms"
udp=$(in_c python3 -c '
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)
s.connect(("198.18.2.10", 30091))
s.send(b"q")
try:
    s.recv(64)
    print("answered")
except ConnectionRefusedError:
    print("refused")
except socket.timeout:
    print("timeout")
')
expect_eq no-endpoints-udp-icmp-unreachable "$udp" refused
n2=$(wc -l <"$TMP/be2.log")
in_c curl -s --max-time 1 http://198.18.2.10:30083/id >/dev/null 2>&1
rc=$?
# kube-proxy drops (the client times out, curl exit 28) rather than rejects
# (exit 7): the load balancer's health check is what steers traffic away.
expect_eq etp-local-no-local-endpoint-dropped "$rc" 28
expect_eq etp-local-remote-backend-untouched "$(wc -l <"$TMP/be2.log")" "$n2"

# --- health check node ports (answered by the agent inside node-a) --------------------
expect_eq hc-local-endpoint-200 "$(in_c curl -s -o /dev/null -w '%{http_code}' --max-time 2 http://198.18.2.10:30200/)" 200
expect_eq hc-no-local-endpoint-503 "$(in_c curl -s -o /dev/null -w '%{http_code}' --max-time 2 http://198.18.2.10:30201/)" 503
expect_match hc-body-counts-endpoints "$(get http://198.18.2.10:30200/)" '"localEndpoints":1'
# The agent's HTTP servers send replies without waiting on Nagle.
expect_eq hc-nodelay "$(in_n "$PY" "$ROOT/tests/integration/nodelay.py" "$AGENT_PID" 30200)" "listener=1 conn=1"
expect_eq metrics-nodelay "$(in_n "$PY" "$ROOT/tests/integration/nodelay.py" "$AGENT_PID" "$MPORT")" "listener=1 conn=1"

# --- map state ---------------------------------------------------------------------------
# An open connection keeps its entry: closed flows may already be collected (GC runs every
# second here, and a loaded machine can take that long between the requests and the dump).
nsenter --net="/run/netns/$C" bash -c 'exec 3<>/dev/tcp/198.18.2.10/30080; sleep 5' &
HOLD=$!
ct=
for _ in $(seq 30); do
	ct=$(bpftool map dump pinned "$PIN/sl_ct4_tcp_v1" 2>&1)
	grep -q '"backend_addr"' <<<"$ct" && break
	sleep 0.1
done
kill "$HOLD" 2>/dev/null
wait "$HOLD" 2>/dev/null
expect_match conntrack-entries-visible "$ct" '"backend_addr"'
maglev_flags=$(bpftool -j map dump pinned "$PIN/sl_svc4_v1" | python3 -c '
import json, sys
out = []
for e in json.load(sys.stdin):
    k, v = e["formatted"]["key"], e["formatted"]["value"]
    port = ((k["port"] & 0xff) << 8) | (k["port"] >> 8)
    out.append("%d:%d:%d" % (port, k["scope"], 1 if v["flags"] & 256 else 0))
print(" ".join(sorted(out)))')
expect_match nodeport-frontend-uses-maglev "$maglev_flags" '(^| )30080:0:1( |$)'
expect_match loadbalancer-frontend-uses-maglev "$maglev_flags" '(^| )80:0:1( |$)'
expect_match clusterip-frontend-no-maglev "$maglev_flags" '(^| )8088:0:0( |$)'
expect_match empty-frontend-no-maglev "$maglev_flags" '(^| )30090:0:0( |$)'

m=$(metrics)
expect_match metrics-nodeport-ok "$m" 'sluice_nodeport_packets_total\{reason="ok"\} [1-9]'
expect_match metrics-nodeport-rejected "$m" 'sluice_nodeport_packets_total\{reason="rejected"\} [1-9]'
expect_match metrics-maglev-tables-used "$m" 'sluice_nodeport_maglev_tables\{state="used"\} [1-9]'
expect_match metrics-ct-gc-runs "$m" 'sluice_nodeport_ct_gc_runs_total [1-9]'

# sl_hr_npc_v1 (abi/hostroute.h): NodePort flows of pod clients tracked on this node.
npc() {
	bpftool -j map lookup pinned "$PIN/sl_hr_npc_v1" key 0 0 0 0 2>&1 |
		jq -r '.formatted.value.pod_client_flows // "unreadable"' 2>&1
}
# The clients above are not pods (no podCIDR here): the mark stays clear, though the
# conntrack holds REPLY entries of local backends.
expect_eq npc-mark-clear-for-non-pod-clients "$(npc)" 0

# --- fail static: SIGKILL, traffic continues, a restart replaces (not stacks) ---------
builds=$(metric sluice_nodeport_maglev_builds_total)
kill -9 "$AGENT_PID"
wait "$AGENT_PID" 2>/dev/null
fails=0
for _ in $(seq 10); do
	[[ $(get http://198.18.2.10:30080/id) == b1 ]] || fails=$((fails + 1))
	[[ $(get http://198.18.2.10:30081/id) == b2 ]] || fails=$((fails + 1))
done
expect_eq fail-static-while-agent-down "$fails" 0
start_agent
fails=0
for _ in $(seq 20); do
	[[ $(get http://198.18.2.10:30080/id) == b1 ]] || fails=$((fails + 1))
	[[ $(get http://198.18.4.100/id) == b3 ]] || fails=$((fails + 1))
	sleep 0.02
done
expect_eq agent-restart-no-failed-requests "$fails" 0
# The restarted agent found REPLY entries in the pinned conntrack (the requests above) and,
# not knowing whose clients they are before its first sync, raised the mark.
expect_eq restart-raises-npc-mark-for-pinned-replies "$(npc)" 1
# After the restarted agent's first sync (its metrics say so), nothing was rebuilt.
for _ in $(seq 50); do [[ $(metric sluice_agent_sync_duration_seconds_count) -ge 1 ]] 2>/dev/null && break; sleep 0.1; done
expect_eq restart-adopts-maglev-tables "$(metric sluice_nodeport_maglev_builds_total)" 0
expect_eq restart-one-ingress-filter "$(in_n tc filter show dev n0 ingress | grep -c tc_nodeport)" 1
expect_eq restart-one-egress-filter "$(in_n tc filter show dev n1 egress | grep -c tc_nodeport)" 1
[[ $builds -ge 1 ]] && ok maglev-tables-built-before-restart || not_ok maglev-tables-built-before-restart "builds=$builds"

# A backend change after the restart: a fresh table, flipped in one update.
j -XDELETE "$U/apis/discovery.k8s.io/v1/namespaces/default/endpointslices/np-local-1" >/dev/null
slice np-local 3@node-a
for _ in $(seq 50); do [[ $(get http://198.18.2.10:30080/id) == b3 ]] && break; sleep 0.1; done
expect_eq backend-change-after-restart "$(get http://198.18.2.10:30080/id)" b3

# --- conntrack GC: closed TCP flows go 10 s after their FIN -----------------------------
for _ in $(seq 150); do
	[[ $(metric 'sluice_nodeport_ct_gc_deleted_total{map="ct4_tcp"}') -gt 0 ]] 2>/dev/null && break
	sleep 0.1
done
expect_match ct-gc-deletes-closed-flows "$(metric 'sluice_nodeport_ct_gc_deleted_total{map="ct4_tcp"}')" '^[1-9]'

# --- device list changes and bad flags ---------------------------------------------------
kill "$AGENT_PID"
wait "$AGENT_PID" 2>/dev/null
out=$(timeout 20 "${NS_N[@]}" "$BIN/sluice-agent" --node-name node-a --server "$U" --bpffs "$BPFFS" \
	--cgroup-root "$CG" --devices n0,nosuch0 --metrics-listen '' 2>&1)
rc=$?
expect_eq unknown-device-fails-start "$rc" 1
expect_match unknown-device-named "$out" "interface 'nosuch0': not found"
expect_eq unknown-device-keeps-filters "$(in_n tc filter show dev n1 ingress | grep -c tc_nodeport)" 1
out=$("$BIN/sluice-agent" --node-name node-a --server "$U" --nat-ports 70000-80000 2>&1)
expect_eq bad-nat-ports-exit-2 "$?" 2
expect_match bad-nat-ports-named "$out" "--nat-ports '70000-80000'"
# A restart with fewer devices detaches the dropped one.
"${NS_N[@]}" "$BIN/sluice-agent" --node-name node-a --server "$U" --bpffs "$BPFFS" \
	--cgroup-root "$CG" --devices n0 --metrics-listen "127.0.0.1:$MPORT" >>"$TMP/agent.log" 2>&1 &
AGENT_PID=$!
PIDS+=("$AGENT_PID")
for _ in $(seq 100); do [[ -z $(in_n tc filter show dev n1 ingress) ]] && break; sleep 0.05; done
expect_eq dropped-device-detached "$(in_n tc filter show dev n1 ingress)" ""
expect_eq kept-device-attached "$(in_n tc filter show dev n0 ingress | grep -c tc_nodeport)" 1

# --- cleanup detaches tc ---------------------------------------------------------------
kill "$AGENT_PID"
wait "$AGENT_PID" 2>/dev/null
AGENT_PID=
check agent-cleanup in_n "$BIN/sluice-agent" --node-name node-a --bpffs "$BPFFS" --cleanup
expect_eq cleanup-no-ingress-filter "$(in_n tc filter show dev n0 ingress)" ""
expect_eq cleanup-no-egress-filter "$(in_n tc filter show dev n1 egress)" ""
net=$(in_n bpftool net show 2>&1)
[[ $net == *tc_nodeport* ]] && not_ok cleanup-bpftool-net-empty "$net" || ok cleanup-bpftool-net-empty
expect_eq cleanup-nodeport-untranslated "$(get http://198.18.2.10:30080/id)" ""

grep -q 'AddressSanitizer\|runtime error' "$TMP/agent.log" && not_ok agent-log-clean "$(grep -m3 -A5 'AddressSanitizer\|runtime error' "$TMP/agent.log")" || ok agent-log-clean
finish
