#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The agent's node side (--run-pods) end to end: Node + Lease, podCIDR -> CNI conflist,
# host-gw routes from the Node objects, the CNI endpoint socket (sluice-cni run by hand as a
# runtime would), the DEL queue while the agent is down, and the per-pod socket-LB opt-out.
#
#   host netns: sluice-control (127.0.0.1:P; also 127.0.0.1:6443 inside the node netns)
#   netns sl-node-<pid> ("node n1": the agent and the plugin run here, in cgroup CG)
#     fab0 198.18.0.11/24 <-veth-> fab1 (both ends here: a connected lab network for the
#                                        route to fake node n2's InternalIP)
#     slXXXX (pod veths, gateway 198.18.65.1/32) <-> eth0 in netns sl-node-pW/pC-<pid>
#   pods: web 198.18.65.x (echo server :8080 TCP+UDP), client (sluice.io/socket-lb: "off")
#
# Private mount namespace with its own bpffs; addresses from 198.18.0.0/15 only; nothing
# routes out. Everything made here is removed in the EXIT trap.
if [[ -z ${SLUICE_IN_MNTNS:-} ]]; then
	exec env SLUICE_IN_MNTNS=1 unshare --mount --propagation private bash "$0" "$@"
fi
source "$(dirname "$0")/lib.sh"

[[ $EUID -eq 0 ]] || { echo "skip - $SUITE/all # needs root"; exit 0; }
P=$$
NS=sl-node-$P
PW=sl-node-pw-$P
PC=sl-node-pc-$P
PX=sl-node-px-$P
CGROOT=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/self/mounts)
CG=$CGROOT/sluice-test-node-$P
BPFFS=$TMP/bpffs
STATE=$TMP/state
CONF=$TMP/net.d
NODE=n1
U=
mkdir -p "$BPFFS"
mount -t bpf bpf "$BPFFS" || { not_ok mount-bpffs; finish; }

# Kills what runs in cgroup $1 and below (the pod runtime makes pods/<uid>/ under it), then
# removes the tree bottom-up.
cg_remove() {
	local d p
	[[ -d $1 ]] || return 0
	while read -r d; do
		while read -r p; do kill -9 "$p" 2>/dev/null; done <"$d/cgroup.procs"
	done < <(find "$1" -type d)
	for _ in $(seq 20); do
		find "$1" -depth -type d -exec rmdir {} \; 2>/dev/null
		[[ -d $1 ]] || return 0
		sleep 0.1
	done
}
node_cleanup_all() {
	if [[ -n ${AGENT_PID:-} ]]; then
		kill -TERM "$AGENT_PID" 2>/dev/null
		wait "$AGENT_PID" 2>/dev/null
	fi
	nsenter --net="/run/netns/$NS" "$BIN/sluice-agent" --node-name "$NODE" --bpffs "$BPFFS" \
		--cni-conf-dir "$CONF" --cleanup >/dev/null 2>&1
	cg_remove "$CG"
	for n in "$PW" "$PC" "$PX" "$NS"; do ip netns del "$n" 2>/dev/null; done
	umount "$BPFFS" 2>/dev/null
	cleanup
}
trap node_cleanup_all EXIT

mkdir "$CG" || { not_ok make-cgroup; finish; }
for n in "$NS" "$PW" "$PC" "$PX"; do
	ip netns add "$n" && ip -n "$n" link set lo up || { not_ok make-netns; finish; }
done
ip -n "$NS" link add fab0 type veth peer name fab1
ip -n "$NS" addr add 198.18.0.11/24 dev fab0
ip -n "$NS" link set fab0 up
ip -n "$NS" link set fab1 up

start_control --store memory --controllers none --listen-netns "/run/netns/$NS=127.0.0.1:6443" || { not_ok start-control; finish; }
U=$CONTROL_URL
j() { curl -s -H 'Content-Type: application/json' "$@"; }
jp() { curl -s -XPATCH -H 'Content-Type: application/merge-patch+json' "$@"; }
jget() { printf '%s' "$1" | jq -r "$2" 2>/dev/null; }
in_ns() { nsenter --net="/run/netns/$NS" "$@"; }
# wait_for SECONDS CMD...: polls CMD every 0.1 s.
wait_for() {
	local t=$1
	shift
	for _ in $(seq $((t * 10))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
	return 1
}

start_agent() {
	# nsenter execs the agent, so $! is the agent's PID (a shell function would not be).
	nsenter --net="/run/netns/$NS" "$BIN/sluice-agent" --node-name "$NODE" --server http://127.0.0.1:6443 \
		--bpffs "$BPFFS" --cgroup-root "$CG" --metrics-listen "" --run-pods \
		--node-ip 198.18.0.11 --node-labels sluice.io/test=yes,zone=z1 --state-dir "$STATE" \
		--cni-conf-dir "$CONF" --log-level info >>"$TMP/agent.log" 2>&1 &
	AGENT_PID=$!
	PIDS+=("$AGENT_PID")
	wait_for 10 test -S "$STATE/agent.sock"
}
stop_agent() {
	kill -TERM "$AGENT_PID" 2>/dev/null
	wait "$AGENT_PID" 2>/dev/null
	AGENT_PID=
}

# --- bad flags: a clear error, no half-started node side ----------------------------------
bad_agent() {
	timeout 20 nsenter --net="/run/netns/$NS" "$BIN/sluice-agent" --node-name "$NODE" \
		--server http://127.0.0.1:6443 --bpffs "$BPFFS" --cgroup-root "$CG" --metrics-listen "" \
		--run-pods --state-dir "$STATE" --cni-conf-dir "$CONF" "$@" 2>&1
	echo "exit=$?"
}
OUT=$(bad_agent)
expect_match run-pods-needs-node-ip "$OUT" '--node-ip or --devices.*exit=[1-9]'
OUT=$(bad_agent --node-ip 198.18.0.11 --node-labels 'zone')
expect_match bad-node-labels-named "$OUT" "--node-labels: 'zone' is not key=value.*exit=[1-9]"
OUT=$(bad_agent --node-ip 198.18.0.300)
expect_match bad-node-ip-named "$OUT" "--node-ip '198.18.0.300'.*IPv4 address.*exit=[1-9]"
expect_eq no-node-registered-by-bad-starts "$(j -o /dev/null -w '%{http_code}' "$U/api/v1/nodes/$NODE")" 404

# --- Node and Lease -----------------------------------------------------------------------
start_agent || { not_ok agent-start "$(tail -5 "$TMP/agent.log")"; finish; }
N=$(j "$U/api/v1/nodes/$NODE")
expect_eq node-internal-ip "$(jget "$N" '.status.addresses[] | select(.type=="InternalIP") | .address')" 198.18.0.11
expect_eq node-hostname-address "$(jget "$N" '.status.addresses[] | select(.type=="Hostname") | .address')" "$NODE"
expect_eq node-labels "$(jget "$N" '[.metadata.labels["kubernetes.io/hostname"], .metadata.labels["kubernetes.io/os"], .metadata.labels["sluice.io/test"], .metadata.labels.zone] | join(",")')" "$NODE,linux,yes,z1"
expect_match node-arch-label "$(jget "$N" '.metadata.labels["kubernetes.io/arch"]')" '^(amd64|arm64)$'
expect_eq node-ready "$(jget "$N" '.status.conditions[] | select(.type=="Ready") | .status + "/" + .reason')" True/KubeletReady
expect_eq node-capacity-pods "$(jget "$N" '.status.capacity.pods + "/" + .status.allocatable.pods')" 110/110
expect_match node-capacity-cpu-mem "$(jget "$N" '.status.capacity.cpu + " " + .status.capacity.memory')" '^[0-9]+ [0-9]+Ki$'
expect_eq node-kubelet-version "$(jget "$N" '.status.nodeInfo.kubeletVersion')" v1.31.0-sluice
expect_eq node-kernel "$(jget "$N" '.status.nodeInfo.kernelVersion')" "$(uname -r)"

LU=$U/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/$NODE
L1=$(j "$LU")
expect_eq lease-holder "$(jget "$L1" '.spec.holderIdentity + "/" + (.spec.leaseDurationSeconds|tostring)')" "$NODE/40"
expect_match lease-microtime "$(jget "$L1" '.spec.renewTime')" '^[0-9-]+T[0-9:]+\.[0-9]{6}Z$'
expect_eq lease-owner "$(jget "$L1" '.metadata.ownerReferences[0].kind + "/" + .metadata.ownerReferences[0].uid')" "Node/$(jget "$N" '.metadata.uid')"
lease_renewed() { [[ $(jget "$(j "$LU")" '.spec.renewTime') != "$(jget "$L1" '.spec.renewTime')" ]]; }
check lease-renewed-within-12s wait_for 12 lease_renewed

# --- NotReady from the control plane is answered with Ready=True -------------------------
jp "$U/api/v1/nodes/$NODE/status" -d '{"status":{"conditions":[{"type":"Ready","status":"Unknown","reason":"NodeStatusUnknown","message":"test"}]}}' >/dev/null
ready_again() { [[ $(jget "$(j "$U/api/v1/nodes/$NODE")" '.status.conditions[] | select(.type=="Ready") | .status') == True ]]; }
check node-ready-reposted-within-3s wait_for 3 ready_again

# --- podCIDR -> conflist and routes -------------------------------------------------------
expect_eq no-conflist-before-podcidr "$(ls "$CONF" 2>/dev/null | wc -l)" 0
jp "$U/api/v1/nodes/$NODE" -d '{"spec":{"podCIDR":"198.18.65.0/24","podCIDRs":["198.18.65.0/24"]}}' >/dev/null
check conflist-written wait_for 5 test -f "$CONF/10-sluice.conflist"
C=$(cat "$CONF/10-sluice.conflist" 2>/dev/null)
expect_eq conflist-ipam "$(jget "$C" '.plugins[0].type + " " + .plugins[0].ipam.subnet + " " + .plugins[0].ipam.gateway')" "sluice-cni 198.18.65.0/24 198.18.65.1"
expect_eq conflist-agent-socket "$(jget "$C" '.plugins[0].agentSocket + " " + .plugins[0].agentQueueDir')" "$STATE/agent.sock $STATE/cni-del-queue"
expect_eq agent-socket-mode "$(stat -c %a "$STATE/agent.sock")" 600
routes() { in_ns ip -4 route show proto 83; }
has_route() { routes | grep -qE "$1"; }
check own-podcidr-unreachable wait_for 5 has_route '^unreachable 198\.18\.65\.0/24'

j -XPOST "$U/api/v1/nodes" -d '{"metadata":{"name":"n2"},"spec":{"podCIDR":"198.18.66.0/24"},"status":{"addresses":[{"type":"InternalIP","address":"198.18.0.12"}]}}' >/dev/null
check route-to-peer wait_for 5 has_route '^198\.18\.66\.0/24 via 198\.18\.0\.12 dev fab0'
jp "$U/api/v1/nodes/n2/status" -d '{"status":{"addresses":[{"type":"InternalIP","address":"198.18.0.13"}]}}' >/dev/null
check route-follows-peer-ip wait_for 5 has_route '^198\.18\.66\.0/24 via 198\.18\.0\.13 dev fab0'
curl -s -XDELETE "$U/api/v1/nodes/n2" >/dev/null
no_peer_route() { ! has_route '198\.18\.66\.0/24'; }
check route-removed-with-peer wait_for 5 no_peer_route
expect_eq only-our-routes "$(routes | wc -l)" 1

# --- CNI ADD through the socket --------------------------------------------------------------
# cni CMD ID NETNS ARGS -> $OUT, $RC; the plugin runs in the node netns as the runtime would.
cni() {
	OUT=$(in_ns env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin CNI_COMMAND="$1" CNI_CONTAINERID="$2" \
		CNI_NETNS="/run/netns/$3" CNI_IFNAME=eth0 CNI_PATH="$BIN" CNI_ARGS="$4" \
		"$BIN/sluice-cni" <"$CONF/10-sluice.conflist" 2>>"$TMP/cni.stderr")
	RC=$?
}
records() { ls "$STATE/endpoints" 2>/dev/null | grep -c '^ep-.*\.json$'; }

cni ADD cweb "$PW" "K8S_POD_NAMESPACE=default;K8S_POD_NAME=web"
expect_eq cni-add-ok "$RC" 0
WEB_IP=$(jget "$OUT" '.ips[0].address' | cut -d/ -f1)
expect_match cni-add-pod-ip "$WEB_IP" '^198\.18\.65\.[0-9]+$'
REC=$(cat "$STATE"/endpoints/ep-*.json 2>/dev/null)
expect_eq endpoint-recorded "$(jget "$REC" '.ip + " " + .podNamespace + "/" + .podName + " " + .socketLB')" "$WEB_IP default/web on"
cni CHECK cweb "$PW" "K8S_POD_NAMESPACE=default;K8S_POD_NAME=web"
expect_eq cni-check-ok "$RC" 0

# --- agent down: ADD fails clearly, DEL is queued and replayed ------------------------------
cni ADD ctmp "$PX" "K8S_POD_NAMESPACE=default;K8S_POD_NAME=tmp"
expect_eq cni-add-second "$RC" 0
expect_eq two-records "$(records)" 2
stop_agent
check socket-gone-when-agent-stops test ! -e "$STATE/agent.sock"
cni ADD cdown "$PC" "K8S_POD_NAMESPACE=default;K8S_POD_NAME=down"
expect_eq add-fails-agent-down "$RC/$(jget "$OUT" '.code')" 1/11
expect_match add-error-names-agent "$(jget "$OUT" '.msg + " " + .details')" 'agent.*(unavailable|running)'
expect_eq add-down-leaves-no-veth "$(ip -n "$PC" -o link show eth0 2>/dev/null | wc -l)" 0
cni DEL ctmp "$PX" "K8S_POD_NAMESPACE=default;K8S_POD_NAME=tmp"
expect_eq del-ok-agent-down "$RC" 0
expect_eq del-queued "$(ls "$STATE/cni-del-queue" 2>/dev/null | grep -c '^del-')" 1
start_agent || { not_ok agent-restart "$(tail -5 "$TMP/agent.log")"; finish; }
expect_eq queue-replayed-and-emptied "$(ls "$STATE/cni-del-queue" | grep -c '^del-')" 0
expect_eq queued-del-removed-record "$(records)" 1
check replay-logged grep -q 'replayed 1 queued CNI DEL' "$TMP/agent.log"

# --- socket LB off: per-packet ClusterIP translation on the pod's veth ---------------------
j -XPOST "$U/api/v1/namespaces/default/pods" -d '{"metadata":{"name":"client","annotations":{"sluice.io/socket-lb":"off"}},"spec":{"containers":[{"name":"c","image":"none"}]}}' >/dev/null
cni ADD cclient "$PC" "K8S_POD_NAMESPACE=default;K8S_POD_NAME=client"
expect_eq cni-add-client "$RC" 0
CLIENT_IP=$(jget "$OUT" '.ips[0].address' | cut -d/ -f1)
HOSTIF=$(ls -t "$STATE"/endpoints/ | head -1)
HOSTIF=$(jget "$(cat "$STATE/endpoints/$HOSTIF")" '.hostIfname')
expect_eq client-record-socket-lb-off "$(jget "$(cat "$STATE"/endpoints/*.json | jq -s -c '.[] | select(.podName=="client")')" '.socketLB')" off
check bpftool-shows-tc-pod-on-veth bash -c "nsenter --net=/run/netns/$NS bpftool net show dev $HOSTIF | grep -q tc_pod_ingress"
expect_eq sockoff-map-entry "$(bpftool map dump pinned "$BPFFS/sluice/$NODE/sl_sockoff_v1" -j 2>/dev/null | jq length)" 1

ip netns exec "$PW" "$PY" -c '
import socket, threading
def udp():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", 8080))
    while True:
        d, a = s.recvfrom(2048); s.sendto(b"web:" + d, a)
threading.Thread(target=udp, daemon=True).start()
t = socket.socket(); t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
t.bind(("0.0.0.0", 8080)); t.listen(16)
while True:
    c, a = t.accept(); c.sendall(b"web:" + c.recv(2048)); c.close()
' >/dev/null 2>&1 &
PIDS+=("$!")
# Port x: nothing listens on 8081/UDP in the web pod (its kernel answers port unreachable).
j -XPOST "$U/api/v1/namespaces/default/services" -d '{"metadata":{"name":"web"},"spec":{"clusterIP":"198.18.128.60","ports":[{"name":"t","port":80,"targetPort":8080,"protocol":"TCP"},{"name":"u","port":81,"targetPort":8080,"protocol":"UDP"},{"name":"x","port":82,"targetPort":8081,"protocol":"UDP"}]}}' >/dev/null
j -XPOST "$U/apis/discovery.k8s.io/v1/namespaces/default/endpointslices" -d "{\"metadata\":{\"name\":\"web-1\",\"labels\":{\"kubernetes.io/service-name\":\"web\"}},\"addressType\":\"IPv4\",\"ports\":[{\"name\":\"t\",\"port\":8080,\"protocol\":\"TCP\"},{\"name\":\"u\",\"port\":8080,\"protocol\":\"UDP\"},{\"name\":\"x\",\"port\":8081,\"protocol\":\"UDP\"}],\"endpoints\":[{\"addresses\":[\"$WEB_IP\"],\"conditions\":{\"ready\":true},\"nodeName\":\"$NODE\"}]}" >/dev/null
svc_programmed() { in_ns "$BIN/sluicectl" --bpffs "$BPFFS" --node "$NODE" service list 2>/dev/null | grep -q 198.18.128.60; }
wait_for 5 svc_programmed || sleep 1

# The client runs inside the node's cgroup, where the socket hooks apply: only the opt-out
# keeps them from translating, and only tc_pod then makes the exchange work.
in_pod_cg() { bash -c 'echo $$ >"$0/cgroup.procs" && exec nsenter --net="/run/netns/$1" "${@:2}"' "$CG" "$@"; }
ctr() { bpftool map dump pinned "$BPFFS/sluice/$NODE/sl_podctr_v1" -j 2>/dev/null | jq '[.[] | (.formatted // .) | select(.key==0) | .values[].value.packets] | add // 0'; }
OK0=$(ctr)
TCP_OUT=$(in_pod_cg "$PC" "$PY" -c '
import socket
s = socket.create_connection(("198.18.128.60", 80), timeout=3)
s.sendall(b"hi"); print(s.recv(100).decode(), s.getpeername()[0])' 2>&1)
expect_eq optout-tcp-through-clusterip "$TCP_OUT" "web:hi 198.18.128.60"
UDP_OUT=$(in_pod_cg "$PC" "$PY" -c '
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(3)
s.sendto(b"yo", ("198.18.128.60", 81)); d, a = s.recvfrom(100); print(d.decode(), a[0], a[1])' 2>&1)
expect_eq optout-udp-reply-from-vip "$UDP_OUT" "web:yo 198.18.128.60 81"
# The backend's port unreachable quotes client -> web:8081; tc_pod turns the quote back
# into client -> VIP:82, so the pod's connected socket learns ECONNREFUSED (not a timeout).
REFUSED_OUT=$(in_pod_cg "$PC" "$PY" -c '
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(3)
s.connect(("198.18.128.60", 82)); s.send(b"zz")
try:
    s.recv(100); print("answered")
except ConnectionRefusedError:
    print("refused")
except socket.timeout:
    print("timeout")' 2>&1)
expect_eq optout-udp-port-unreachable-reaches-socket "$REFUSED_OUT" refused
OK1=$(ctr)
check tc-pod-translated-packets test "$OK1" -gt "$OK0"
ct_entries() { bpftool map dump pinned "$BPFFS/sluice/$NODE/sl_ct4_tcp_v1" -j 2>/dev/null | jq length; }
check conntrack-has-pod-flow test "$(ct_entries)" -ge 2
# The socket LB did not see the opted-out pod: no reverse-translation entry for its sockets.
expect_eq socket-lb-skipped-optout-pod "$(bpftool map dump pinned "$BPFFS/sluice/$NODE/sl_sockrev4_v1" -j 2>/dev/null | jq length)" 0
# A pod with the socket LB on still goes through the hooks (and not through tc_pod).
ON_OUT=$(in_pod_cg "$PW" "$PY" -c '
import socket
s = socket.create_connection(("198.18.128.60", 80), timeout=3)
s.sendall(b"on"); print(s.recv(100).decode())' 2>&1)
expect_eq socket-lb-on-pod-still-works "$ON_OUT" "web:on"
check socket-lb-on-pod-used-hooks test "$(bpftool map dump pinned "$BPFFS/sluice/$NODE/sl_sockrev4_v1" -j 2>/dev/null | jq length)" -ge 1

# --- fail-static: the opted-out pod keeps working with the agent down and after a restart ---
tcp_vip() { in_pod_cg "$PC" "$PY" -c '
import socket, sys
s = socket.create_connection(("198.18.128.60", 80), timeout=3)
s.sendall(sys.argv[1].encode()); print(s.recv(100).decode())' "$1" 2>&1; }
stop_agent
expect_eq optout-works-agent-down "$(tcp_vip down)" web:down
start_agent || { not_ok agent-restart-2 "$(tail -5 "$TMP/agent.log")"; finish; }
check tc-pod-reattached-after-restart bash -c "nsenter --net=/run/netns/$NS bpftool net show dev $HOSTIF | grep -q tc_pod_ingress"
expect_eq optout-works-after-restart "$(tcp_vip up)" web:up
expect_eq sockoff-entry-kept-over-restart "$(bpftool map dump pinned "$BPFFS/sluice/$NODE/sl_sockoff_v1" -j 2>/dev/null | jq length)" 1

# --- DEL of the opted-out pod undoes its datapath state --------------------------------------
cni DEL cclient "$PC" "K8S_POD_NAMESPACE=default;K8S_POD_NAME=client"
expect_eq cni-del-client "$RC" 0
expect_eq sockoff-entry-removed "$(bpftool map dump pinned "$BPFFS/sluice/$NODE/sl_sockoff_v1" -j 2>/dev/null | jq length)" 0
cni DEL cclient "$PC" "K8S_POD_NAMESPACE=default;K8S_POD_NAME=client"
expect_eq cni-del-idempotent "$RC" 0

# --- bad requests get clear errors, the agent survives ---------------------------------------
BAD=$(printf '{"op":"add","containerID":"x","ifname":"eth0"}\n' | in_ns "$PY" -c '
import socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(sys.stdin.buffer.read())
print(s.recv(1000).decode().strip())' "$STATE/agent.sock")
expect_match bad-request-named "$BAD" '"ok":false,"error":"request lacks \\"netns\\""'
GARBAGE=$(printf 'not json\n' | in_ns "$PY" -c '
import socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(sys.stdin.buffer.read())
print(s.recv(1000).decode().strip())' "$STATE/agent.sock")
expect_match garbage-request-refused "$GARBAGE" '"ok":false,"error":"request is not JSON'
check agent-alive kill -0 "$AGENT_PID"

# --- cleanup removes the conflist and our routes ----------------------------------------------
stop_agent
in_ns "$BIN/sluice-agent" --node-name "$NODE" --bpffs "$BPFFS" --cni-conf-dir "$CONF" --cleanup >/dev/null 2>&1
expect_eq cleanup-removed-conflist "$(ls "$CONF" | wc -l)" 0
expect_eq cleanup-removed-routes "$(routes | wc -l)" 0
finish
