#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Switching the service dataplane on a running node (docs/dataplanes.md): one
# netns plays the node; sluice-agent restarts there with another --dataplane
# each time, and each time the ClusterIP must work through the new dataplane
# while the old one's state is gone (no KUBE-* chains after iptables, no table
# ip kube-proxy after nftables, no socket-LB links after bpf). Then
# `--cleanup` removes everything, whichever dataplane left it.
#
#   netns sl-dsw-<pid>: lo 198.18.0.10 (node), 198.18.1.1-2 (backends, one
#   python3 process), veth pair sl-svc0/1 routing 198.18.128.0/20 (so the
#   netfilter dataplanes see locally generated service traffic), the agent,
#   sluice-control's second listener; clients run there in the cgroup CG.
if [[ -z ${SLUICE_IN_MNTNS:-} ]]; then
	exec env SLUICE_IN_MNTNS=1 unshare --mount --propagation private bash "$0" "$@"
fi
source "$(dirname "$0")/lib.sh"

NS=sl-dsw-$$
CGROOT=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/self/mounts)
CG=$CGROOT/sluice-test-dsw-$$
BPFFS=$TMP/bpffs
NODE=node-a
mkdir -p "$BPFFS"
mount -t bpf bpf "$BPFFS" || { not_ok mount-bpffs; finish; }
PY=$(python3 -c 'import sys; print(sys.executable)')
IN_NS=(nsenter --net=/run/netns/"$NS")

dsw_cleanup() {
	[[ -n ${AGENT_PID:-} ]] && kill -9 "$AGENT_PID" 2>/dev/null
	[[ -e /run/netns/$NS ]] && "${IN_NS[@]}" "$BIN/sluice-agent" --node-name "$NODE" \
		--bpffs "$BPFFS" --cleanup >/dev/null 2>&1
	if [[ -d $CG ]]; then
		while read -r p; do kill -9 "$p" 2>/dev/null; done <"$CG/cgroup.procs"
		sleep 0.1
		rmdir "$CG" 2>/dev/null
	fi
	ip netns del "$NS" 2>/dev/null
	umount "$BPFFS" 2>/dev/null
	cleanup
}
trap dsw_cleanup EXIT

mkdir "$CG" || { not_ok make-cgroup; finish; }
ip netns add "$NS"
ip -n "$NS" link set lo up
for a in 198.18.0.10 198.18.1.1 198.18.1.2; do ip -n "$NS" addr add "$a/32" dev lo; done
ip -n "$NS" link add sl-svc0 type veth peer name sl-svc1
ip -n "$NS" link set sl-svc0 up
ip -n "$NS" link set sl-svc1 up
ip -n "$NS" route add 198.18.128.0/20 dev sl-svc0

cat >"$TMP/srv.py" <<'PY'
import socket, sys, threading
def serve(addr):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, 8080)); s.listen(128)
    while True:
        c, _ = s.accept(); c.sendall(addr.encode()); c.close()
for a in sys.argv[1:]:
    threading.Thread(target=serve, args=(a,), daemon=True).start()
threading.Event().wait()
PY
"${IN_NS[@]}" "$PY" "$TMP/srv.py" 198.18.1.1 198.18.1.2 >>"$TMP/srv.log" 2>&1 &
PIDS+=("$!")
# get: one connection to the ClusterIP from the node's cgroup; prints the backend or ERR.
get() {
	bash -c 'echo $$ >"$0/cgroup.procs" && exec "${@:1}"' "$CG" "${IN_NS[@]}" "$PY" -c '
import socket
s = socket.socket(); s.settimeout(1)
try:
    s.connect(("198.18.128.20", 80)); print(s.recv(64).decode() or "ERR empty")
except OSError as e:
    print("ERR", e.errno or "timeout")'
}
reaches() { [[ $(get) =~ ^198\.18\.1\.[12]$ ]]; }
poll() {
	local end=$((SECONDS + $1))
	shift
	until "$@"; do
		((SECONDS >= end)) && return 1
		sleep 0.1
	done
}

NSPORT=$(free_port)
start_control --store memory --listen-netns "/run/netns/$NS=127.0.0.1:$NSPORT" ||
	{ not_ok start-control; finish; }
api() { curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' "$CONTROL_URL$1" -d "$2"; }
[[ $(api /api/v1/nodes '{"metadata":{"name":"node-a"},"status":{"addresses":[{"type":"InternalIP","address":"198.18.0.10"}]}}') == 201 ]] ||
	not_ok create-node
[[ $(api /api/v1/namespaces/default/services '{"metadata":{"name":"web"},"spec":{"clusterIP":"198.18.128.20","selector":{"a":"b"},"ports":[{"name":"http","port":80,"targetPort":8080}]}}') == 201 ]] ||
	not_ok create-service
[[ $(api /apis/discovery.k8s.io/v1/namespaces/default/endpointslices '{"metadata":{"name":"web-1","labels":{"kubernetes.io/service-name":"web"}},"addressType":"IPv4","ports":[{"name":"http","port":8080,"protocol":"TCP"}],"endpoints":[{"addresses":["198.18.1.1"],"conditions":{"ready":true},"nodeName":"node-a"},{"addresses":["198.18.1.2"],"conditions":{"ready":true},"nodeName":"node-a"}]}') == 201 ]] ||
	not_ok create-slice

# State each dataplane leaves in the netns.
has_ipt() { "${IN_NS[@]}" iptables-save -t nat 2>/dev/null | grep -q '^:KUBE-SERVICES'; }
has_nft() { "${IN_NS[@]}" nft list table ip kube-proxy >/dev/null 2>&1; }
has_links() { compgen -G "$BPFFS/sluice/$NODE/link_*" >/dev/null; }
state() {
	local s=
	has_ipt && s+=" iptables"
	has_nft && s+=" nftables"
	has_links && s+=" bpf-links"
	echo "${s# }"
}

# run DATAPLANE STATE: (re)starts the agent with it, waits until the netns
# holds exactly STATE (the old dataplane keeps serving until the new agent
# removes it: fail static), then checks the ClusterIP.
run() {
	if [[ -n ${AGENT_PID:-} ]]; then
		kill "$AGENT_PID"
		wait "$AGENT_PID" 2>/dev/null
	fi
	"${IN_NS[@]}" "$BIN/sluice-agent" --node-name "$NODE" --server "http://127.0.0.1:$NSPORT" \
		--bpffs "$BPFFS" --cgroup-root "$CG" --dataplane "$1" --metrics-listen "" \
		--log-level info >>"$TMP/agent.log" 2>&1 &
	AGENT_PID=$!
	PIDS+=("$AGENT_PID")
	state_is() { [[ $(state) == "$1" ]]; }
	poll 20 state_is "$2"
	expect_eq "$3" "$(state)" "$2"
	if poll 20 reaches; then ok "$1-serves-cluster-ip"; else
		not_ok "$1-serves-cluster-ip" "$(get)" "$(tail -5 "$TMP/agent.log")"
	fi
}

run iptables iptables iptables-only-iptables-state
run nftables nftables iptables-to-nftables-cleans-iptables
run bpf bpf-links nftables-to-bpf-cleans-nftables
run iptables iptables bpf-to-iptables-detaches-socket-lb
kill "$AGENT_PID"
wait "$AGENT_PID" 2>/dev/null
AGENT_PID=
# Fail static: the rules outlive the agent.
if reaches; then ok iptables-rules-outlive-agent; else not_ok iptables-rules-outlive-agent "$(get)"; fi
# Leftovers of two dataplanes at once (a crash mid-switch): --cleanup takes both.
"${IN_NS[@]}" nft add table ip kube-proxy
"${IN_NS[@]}" "$BIN/sluice-agent" --node-name "$NODE" --bpffs "$BPFFS" --cleanup >>"$TMP/agent.log" 2>&1
expect_eq cleanup-exit-0 "$?" 0
expect_eq cleanup-removes-every-dataplane "$(state)" ""
expect_eq cleanup-removes-record "$(ls /run/sluice/$NODE/ 2>/dev/null | grep -c "dataplane\.$(stat -Lc %i /run/netns/$NS)")" 0
grep -q 'AddressSanitizer\|runtime error' "$TMP/agent.log" &&
	not_ok agent-log-clean "$(grep -m3 -A5 'AddressSanitizer\|runtime error' "$TMP/agent.log")" || ok agent-log-clean
finish
