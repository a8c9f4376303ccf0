#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Two nodes, each a netns running sluice-agent --run-pods, joined by one veth: the agents'
# host-gw routes (from the Node objects and the podCIDRs set here, as node IPAM would) carry
# pod-to-pod traffic across nodes, and a ClusterIP whose only endpoint is on the other node
# works from a socket-LB pod and from a socket-LB-off pod (tc_pod DNAT, no SNAT, the reply
# comes back through the veth and leaves it from the VIP).
#
#   netns sl-np1-<pid> (n1)  f1 198.18.0.11/24 <==veth==> f2 198.18.0.12/24  netns sl-np2-<pid> (n2)
#     pods a (socket LB), c (socket LB off)          pod b: echo server :8080
#     podCIDR 198.18.65.0/24                          podCIDR 198.18.66.0/24
#
# Private mount namespace, own bpffs and cgroups, addresses from 198.18.0.0/15 only.
if [[ -z ${SLUICE_IN_MNTNS:-} ]]; then
	exec env SLUICE_IN_MNTNS=1 unshare --mount --propagation private bash "$0" "$@"
fi
source "$(dirname "$0")/lib.sh"

[[ $EUID -eq 0 ]] || { echo "skip - $SUITE/all # needs root"; exit 0; }
P=$$
N1=sl-np1-$P
N2=sl-np2-$P
PA=sl-np-a-$P
PB=sl-np-b-$P
PC=sl-np-c-$P
CGROOT=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/self/mounts)
CG1=$CGROOT/sluice-test-np1-$P
CG2=$CGROOT/sluice-test-np2-$P
BPFFS=$TMP/bpffs
AGENTS=()
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
pair_cleanup() {
	local pid
	for pid in "${AGENTS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
	for pid in "${AGENTS[@]}"; do wait "$pid" 2>/dev/null; done
	nsenter --net="/run/netns/$N1" "$BIN/sluice-agent" --node-name n1 --bpffs "$BPFFS" \
		--cni-conf-dir "$TMP/n1/net.d" --cleanup >/dev/null 2>&1
	nsenter --net="/run/netns/$N2" "$BIN/sluice-agent" --node-name n2 --bpffs "$BPFFS" \
		--cni-conf-dir "$TMP/n2/net.d" --cleanup >/dev/null 2>&1
	cg_remove "$CG1"
	cg_remove "$CG2"
	for n in "$PA" "$PB" "$PC" "$N1" "$N2"; do ip netns del "$n" 2>/dev/null; done
	umount "$BPFFS" 2>/dev/null
	cleanup
}
trap pair_cleanup EXIT

mkdir "$CG1" && mkdir "$CG2" || { not_ok make-cgroups; finish; }
for n in "$N1" "$N2" "$PA" "$PB" "$PC"; do
	ip netns add "$n" && ip -n "$n" link set lo up || { not_ok make-netns; finish; }
done
ip -n "$N1" link add f1 type veth peer name f2 netns "$N2"
ip -n "$N1" addr add 198.18.0.11/24 dev f1
ip -n "$N2" addr add 198.18.0.12/24 dev f2
ip -n "$N1" link set f1 up
ip -n "$N2" link set f2 up

# podCIDRs are set below by hand: the control plane's controllers (node IPAM) stay off
# where the server has them.
CTRL=()
"$BIN/sluice-control" --help 2>&1 | grep -q -- '--controllers' && CTRL=(--controllers none)
start_control --store memory "${CTRL[@]}" --listen-netns "/run/netns/$N1=127.0.0.1:6443" \
	--listen-netns "/run/netns/$N2=127.0.0.1:6443" || { not_ok start-control; finish; }
U=$CONTROL_URL
j() { curl -s -H 'Content-Type: application/json' "$@"; }
jp() { curl -s -XPATCH -H 'Content-Type: application/merge-patch+json' "$@"; }
jget() { printf '%s' "$1" | jq -r "$2" 2>/dev/null; }
wait_for() {
	local t=$1
	shift
	for _ in $(seq $((t * 10))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
	return 1
}

start_agent() { # NODE NETNS IP CGROUP
	mkdir -p "$TMP/$1"
	nsenter --net="/run/netns/$2" "$BIN/sluice-agent" --node-name "$1" \
		--server http://127.0.0.1:6443 --bpffs "$BPFFS" --cgroup-root "$4" --metrics-listen "" \
		--run-pods --node-ip "$3" --state-dir "$TMP/$1/state" --cni-conf-dir "$TMP/$1/net.d" \
		--log-level info >>"$TMP/agent-$1.log" 2>&1 &
	AGENTS+=("$!")
	PIDS+=("$!")
	wait_for 10 test -S "$TMP/$1/state/agent.sock"
}
start_agent n1 "$N1" 198.18.0.11 "$CG1" || { not_ok agent-n1 "$(tail -5 "$TMP/agent-n1.log")"; finish; }
start_agent n2 "$N2" 198.18.0.12 "$CG2" || { not_ok agent-n2 "$(tail -5 "$TMP/agent-n2.log")"; finish; }
jp "$U/api/v1/nodes/n1" -d '{"spec":{"podCIDR":"198.18.65.0/24"}}' >/dev/null
jp "$U/api/v1/nodes/n2" -d '{"spec":{"podCIDR":"198.18.66.0/24"}}' >/dev/null
route_on() { ip -n "$1" -4 route show proto 83 | grep -q "$2"; }
check n1-routes-to-n2-pods wait_for 5 route_on "$N1" '^198.18.66.0/24 via 198.18.0.12 dev f1'
check n2-routes-to-n1-pods wait_for 5 route_on "$N2" '^198.18.65.0/24 via 198.18.0.11 dev f2'
check conflists-written wait_for 5 test -f "$TMP/n1/net.d/10-sluice.conflist" -a -f "$TMP/n2/net.d/10-sluice.conflist"

cni_add() { # NODE NODE_NETNS ID POD_NETNS POD_NAME -> pod IP on stdout
	local out
	out=$(nsenter --net="/run/netns/$2" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin CNI_COMMAND=ADD \
		CNI_CONTAINERID="$3" CNI_NETNS="/run/netns/$4" CNI_IFNAME=eth0 CNI_PATH="$BIN" \
		CNI_ARGS="K8S_POD_NAMESPACE=default;K8S_POD_NAME=$5" \
		"$BIN/sluice-cni" <"$TMP/$1/net.d/10-sluice.conflist" 2>>"$TMP/cni.stderr")
	jget "$out" '.ips[0].address' | cut -d/ -f1
}
j -XPOST "$U/api/v1/namespaces/default/pods" -d '{"metadata":{"name":"c","annotations":{"sluice.io/socket-lb":"off"}},"spec":{"containers":[{"name":"c","image":"none"}]}}' >/dev/null
A_IP=$(cni_add n1 "$N1" ca "$PA" a)
B_IP=$(cni_add n2 "$N2" cb "$PB" b)
C_IP=$(cni_add n1 "$N1" cc "$PC" c)
expect_match pod-ips "$A_IP $B_IP $C_IP" '^198\.18\.65\.[0-9]+ 198\.18\.66\.[0-9]+ 198\.18\.65\.[0-9]+$'

ip netns exec "$PB" "$PY" -c '
import socket
t = socket.socket(); t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
t.bind(("0.0.0.0", 8080)); t.listen(16)
while True:
    c, a = t.accept(); c.sendall(("b:" + a[0] + ":").encode() + c.recv(2048)); c.close()
' >/dev/null 2>&1 &
PIDS+=("$!")
in_pod() { bash -c 'echo $$ >"$0/cgroup.procs" && exec nsenter --net="/run/netns/$1" "${@:2}"' "$@"; }
tcp() { # CGROUP POD_NETNS ADDR PORT MSG -> reply, peer
	in_pod "$1" "$2" "$PY" -c '
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3)
s.sendall(sys.argv[3].encode()); print(s.recv(100).decode(), s.getpeername()[0])' "$3" "$4" "$5" 2>&1
}
up() { [[ $(tcp "$CG1" "$PA" "$B_IP" 8080 x) == "b:$A_IP:x $B_IP" ]]; }
wait_for 5 up
expect_eq pod-to-pod-across-nodes "$(tcp "$CG1" "$PA" "$B_IP" 8080 hi)" "b:$A_IP:hi $B_IP"

j -XPOST "$U/api/v1/namespaces/default/services" -d '{"metadata":{"name":"b"},"spec":{"clusterIP":"198.18.128.70","ports":[{"name":"t","port":80,"targetPort":8080}]}}' >/dev/null
j -XPOST "$U/apis/discovery.k8s.io/v1/namespaces/default/endpointslices" -d "{\"metadata\":{\"name\":\"b-1\",\"labels\":{\"kubernetes.io/service-name\":\"b\"}},\"addressType\":\"IPv4\",\"ports\":[{\"name\":\"t\",\"port\":8080,\"protocol\":\"TCP\"}],\"endpoints\":[{\"addresses\":[\"$B_IP\"],\"conditions\":{\"ready\":true},\"nodeName\":\"n2\"}]}" >/dev/null
svc_up() { [[ $(tcp "$CG1" "$PA" 198.18.128.70 80 x) == "b:$A_IP:x 198.18.128.70" ]]; }
wait_for 5 svc_up
expect_eq clusterip-across-nodes-socket-lb "$(tcp "$CG1" "$PA" 198.18.128.70 80 s)" "b:$A_IP:s 198.18.128.70"
# The opted-out pod's packets are DNATed on its veth and keep its address (no SNAT).
expect_eq clusterip-across-nodes-socket-lb-off "$(tcp "$CG1" "$PC" 198.18.128.70 80 p)" "b:$C_IP:p 198.18.128.70"
ctr() { bpftool map dump pinned "$BPFFS/sluice/n1/sl_podctr_v1" -j 2>/dev/null | jq '[.[] | (.formatted // .) | select(.key==0) | .values[].value.packets] | add // 0'; }
check tc-pod-on-n1-translated test "$(ctr)" -ge 2

# A node that goes away takes its route with it.
curl -s -XDELETE "$U/api/v1/nodes/n2" >/dev/null
gone() { ! route_on "$N1" '198.18.66.0/24'; }
check route-gone-with-node wait_for 5 gone
finish
