#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# sluicectl lab: a Sluice cluster inside one machine (docs/lab.md), built from
# the same binaries a real node runs. `sluicectl lab ...` execs this script
# (SLUICE_LAB_SCRIPT overrides where it is found; SLUICE_LAB_BIN where the
# binaries are, default: next to sluicectl).
#
#  host netns: kubectl ──127.0.0.1:PORT──┐       state: /run/sluice-lab/L/
#                                        │
#  L-cp   sluice-control (host netns, also listening in L-cp on 198.18.0.2:6443)
#         eth0 198.18.0.2/24 ───┐
#  L-n1   sluice-agent          ├── bridge br0 in L-fabric (no address, no uplink)
#         eth0 198.18.0.11/24 ──┤
#  L-nN   ... 198.18.0.(10+N) ──┤
#  L-ext  eth0 198.18.0.250/24 ─┘   "external client", upstream DNS (knotd :53)
#
# --fabric mesh adds nodes on direct links: one veth pair per pair of nodes
# (n1's "mesh-n2" <-> n2's "mesh-n1", no addresses) and in each node a /32
# route to every other node's IP over its link, so the agents' host-gw routes
# (podCIDR via the node IP) resolve to the links; the bridge stays for cp, ext
# and node addresses. The agents get every link in --devices (the fabric
# ingress program, host routing's redirect_peer to the link's peer): a pod
# packet to another node then passes one backlog queue, as over one veth pair.
#
# Cluster DNS (like kubeadm's CoreDNS addon, as API objects): Service
# kube-system/kube-dns 198.18.128.10 (dns 53/UDP, dns-tcp 53/TCP, metrics
# 9153) and Deployment kube-system/kube-dns (2 replicas spread by the
# scheduler) running the host's sluice-dns, forwarding to knotd in L-ext,
# which serves example.test.
#
#   lab up [--name L] [--nodes N] [--no-dns] [--fabric bridge|mesh]
#                                     build it (default name "lab", 2 nodes) with
#                                     cluster DNS (kube-dns, upstream in L-ext);
#                                     mesh: node-to-node links (see above)
#   lab add-node [--name L]           one more node (n(N+1)) joins the running lab
#   lab down [--name L]               remove everything it made (also a half-built lab)
#   lab status [--name L]             daemons, nodes, pods, services
#   lab exec [--name L] TARGET -- CMD run CMD in a node (n1..nN, cp, ext, fabric)
#                                     or a pod (NAMESPACE/POD)
#   lab kubeconfig [--name L] [--lab] path of the host (or in-lab) kubeconfig
#
# Nothing has a default route and every address is in 198.18.0.0/15. What up
# creates is recorded in the state dir as it is created (netns list, PID files
# with the process start time, mounts, cgroup), and down removes exactly
# that, so a failed up is cleaned by down and no other process or namespace is
# ever touched.
set -uo pipefail

ROOT=$(cd "$(dirname "$(readlink -f "$0")")/../.." && pwd)
BIN=${SLUICE_LAB_BIN:-$ROOT/build/bin}
RUN_ROOT=/run/sluice-lab
PY=$(command -v /usr/bin/python3 || command -v python3)
CGROOT=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/self/mounts)
STOP_TIMEOUT=${LAB_STOP_TIMEOUT:-10}      # seconds between TERM and KILL
NODE_TIMEOUT=${LAB_NODE_TIMEOUT:-60}      # seconds for nodes to become Ready
REGISTER_TIMEOUT=${LAB_REGISTER_TIMEOUT:-10} # seconds for the first Node to appear
# LAB_CONTROL_FLAGS: extra sluice-control flags (tests shorten grace periods)
# LAB_AGENT_FLAGS: extra sluice-agent flags for every node (e.g. --host-routing kernel)
# LAB_LOG_ARCHIVE: down copies the daemons' logs there before removing the state

NET_PREFIX=198.18.0
SERVICE_CIDR=198.18.128.0/20
CLUSTER_CIDR=198.18.64.0/18
CLUSTER_DNS=198.18.128.10
API_LAB=198.18.0.2:6443

die() {
	echo "sluicectl lab: $*" >&2
	[[ -n ${UP_STARTED:-} ]] &&
		echo "sluicectl lab: 'sluicectl lab down --name $NAME' removes what up made so far" >&2
	exit 1
}
usage() {
	sed -n '/^#   lab /s/^#   /  sluicectl /p' "$0"
}
log() { [[ -n ${LAB_QUIET:-} ]] || echo "lab $NAME: $*" >&2; }

# --- arguments ----------------------------------------------------------------

CMD=${1:-}
[[ -n $CMD ]] || {
	usage >&2
	exit 2
}
shift
NAME=${SLUICE_LAB_NAME:-lab}
NODES=2
NODES_SET=
NO_DNS=
FABRIC=
LAB_KUBECONFIG=
EXEC_ARGS=()
while (($#)); do
	case $1 in
	--name) NAME=${2:-} && shift 2 || die "--name needs a value" ;;
	--name=*) NAME=${1#*=} && shift ;;
	--nodes) NODES=${2:-} NODES_SET=1 && shift 2 || die "--nodes needs a value" ;;
	--nodes=*) NODES=${1#*=} NODES_SET=1 && shift ;;
	--lab) LAB_KUBECONFIG=1 && shift ;;
	--no-dns) NO_DNS=1 && shift ;;
	--fabric) FABRIC=${2:-} && shift 2 || die "--fabric needs a value" ;;
	--fabric=*) FABRIC=${1#*=} && shift ;;
	-h | --help)
		usage
		exit 0
		;;
	--)
		[[ $CMD == exec ]] || die "'--' is only accepted by exec"
		shift
		EXEC_ARGS+=(--)
		EXEC_ARGS+=("$@")
		break
		;;
	-*) die "$CMD: unknown flag '$1' (accepted: --name L$([[ $CMD == up ]] && echo ', --nodes N, --no-dns, --fabric bridge|mesh')$([[ $CMD == kubeconfig ]] && echo ', --lab'))" ;;
	*)
		[[ $CMD == exec ]] || die "$CMD: unexpected argument '$1'"
		EXEC_ARGS+=("$1")
		shift
		;;
	esac
done
# The name becomes netns, cgroup and directory names: keep it short and plain.
[[ $NAME =~ ^[a-z][a-z0-9]{0,11}$ ]] ||
	die "--name '$NAME': expected a lowercase letter then up to 11 lowercase letters or digits"
[[ $NODES =~ ^[0-9]+$ ]] && ((NODES >= 1 && NODES <= 20)) ||
	die "--nodes '$NODES': expected a number 1-20"
[[ $CMD != up && -n $NODES_SET ]] && die "$CMD: --nodes is a flag of up only"
[[ $CMD != up && -n $NO_DNS ]] && die "$CMD: --no-dns is a flag of up only"
[[ $CMD != up && -n $FABRIC ]] && die "$CMD: --fabric is a flag of up only"
[[ -z $FABRIC || $FABRIC == bridge || $FABRIC == mesh ]] ||
	die "--fabric '$FABRIC': expected bridge or mesh"
FABRIC=${FABRIC:-bridge}

S=$RUN_ROOT/$NAME
CG=${CGROOT:+$CGROOT/sluice-lab-$NAME}
TOKEN_FILE=$S/tokens.csv

node_ip() { echo "$NET_PREFIX.$((10 + $1))"; }
in_ns() {
	local ns=$1
	shift
	nsenter --net="/run/netns/$ns" "$@"
}

# Reads the lab's recorded settings (written by up) into shell variables.
load_config() {
	[[ -f $S/config ]] || return 1
	# shellcheck source=/dev/null
	source "$S/config"
}

# --- process records ----------------------------------------------------------

# starttime (clock ticks since boot) of a running PID; distinguishes it from a
# later process that reuses the number. A zombie counts as gone: the daemons
# are reparented to init, which may reap them late.
proc_start() {
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	stat=${stat##*) }
	set -- $stat
	[[ $1 != Z ]] || return 1
	echo "${20}"
}

# record_pid NAME PID: the PID file is "PID STARTTIME".
record_pid() {
	local st
	st=$(proc_start "$2") || st=gone
	echo "$2 $st" >"$S/pids/$1.pid"
}

# pid_alive FILE: prints the PID when the recorded process still runs.
pid_alive() {
	local pid st now
	read -r pid st <"$1" 2>/dev/null || return 1
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	now=$(proc_start "$pid") || return 1
	[[ $now == "$st" ]] || return 1
	echo "$pid"
}

# stop_pid FILE: TERM, then KILL after STOP_TIMEOUT, only the recorded process.
stop_pid() {
	local f=$1 pid i
	pid=$(pid_alive "$f") || {
		rm -f "$f"
		return 0
	}
	kill -TERM "$pid" 2>/dev/null
	for ((i = 0; i < STOP_TIMEOUT * 10; i++)); do
		pid_alive "$f" >/dev/null || break
		sleep 0.1
	done
	if pid_alive "$f" >/dev/null; then
		log "$(basename "$f" .pid) (pid $pid) ignored SIGTERM for ${STOP_TIMEOUT}s: SIGKILL"
		kill -KILL "$pid" 2>/dev/null
		for ((i = 0; i < 50; i++)); do
			pid_alive "$f" >/dev/null || break
			sleep 0.1
		done
	fi
	rm -f "$f"
}

# --- up -------------------------------------------------------------------------

netns_add() {
	ip netns add "$1" || die "ip netns add $1 failed"
	echo "$1" >>"$S/netns"
	ip -n "$1" link set lo up
}

# start_daemon NAME LOG CMD...: detached (own session, stdin /dev/null), PID
# recorded. setsid and nsenter exec, so $! is the daemon itself.
start_daemon() {
	local name=$1 logf=$2
	shift 2
	setsid "$@" </dev/null >>"$logf" 2>&1 &
	record_pid "$name" $!
}

need_bin() {
	local b
	for b in "$@"; do
		[[ -x $BIN/$b ]] || die "$BIN/$b not found: build it with 'make' (or set SLUICE_LAB_BIN)"
	done
}

api() { curl -sS --max-time 5 -H "Authorization: Bearer $TOKEN" "$API_URL$1"; }

# Prints "name ready" per registered Node.
nodes_ready() {
	api /api/v1/nodes 2>/dev/null | "$PY" -c '
import json, sys
try:
    items = json.load(sys.stdin).get("items") or []
except Exception:
    sys.exit(1)
for n in items:
    r = [c.get("status") for c in (n.get("status") or {}).get("conditions") or [] if c.get("type") == "Ready"]
    print(n["metadata"]["name"], "Ready" if r == ["True"] else "NotReady")
'
}

write_kubeconfig() {
	cat >"$1" <<KC
apiVersion: v1
kind: Config
clusters:
- name: sluice-lab-$NAME
  cluster:
    server: $2
contexts:
- name: sluice-lab-$NAME
  context:
    cluster: sluice-lab-$NAME
    user: lab-admin
current-context: sluice-lab-$NAME
users:
- name: lab-admin
  user:
    token: $TOKEN
KC
	chmod 600 "$1"
}

# node_devices I: node nI's --devices: eth0, and with the mesh fabric its links to every
# other node (a pod packet from another node arrives on its link).
node_devices() {
	local j devs=eth0
	if [[ $FABRIC == mesh ]]; then
		for ((j = 1; j <= NODES; j++)); do
			((j != $1)) && devs+=",mesh-n$j"
		done
	fi
	echo "$devs"
}

# mesh_link I J: the direct link between nodes nI and nJ, and each node's /32 route to the
# other's IP over it. Before the agents install their host-gw routes (podCIDR via the node
# IP): the kernel binds a gateway route to the device it resolves to when it is installed.
mesh_link() {
	local a=$NAME-n$1 b=$NAME-n$2
	ip -n "$a" link add "mesh-n$2" type veth peer name "mesh-n$1" netns "$b" ||
		die "veth $a/mesh-n$2 <-> $b/mesh-n$1 failed"
	ip -n "$a" link set "mesh-n$2" up
	ip -n "$b" link set "mesh-n$1" up
	ip -n "$a" route add "$(node_ip "$2")/32" dev "mesh-n$2" ||
		die "route $(node_ip "$2")/32 dev mesh-n$2 in $a failed"
	ip -n "$b" route add "$(node_ip "$1")/32" dev "mesh-n$1" ||
		die "route $(node_ip "$1")/32 dev mesh-n$1 in $b failed"
}

# start_agent I: node nI's sluice-agent in its netns.
start_agent() {
	local extra=()
	read -ra extra <<<"${LAB_AGENT_FLAGS:-}"
	# nsenter --net rather than `ip netns exec`: the latter remounts /sys,
	# which hides the cgroup2 tree the agent attaches to.
	start_daemon "agent-n$1" "$S/logs/agent-n$1.log" \
		nsenter --net="/run/netns/$NAME-n$1" "$BIN/sluice-agent" \
		--node-name "n$1" --kubeconfig "$S/kubeconfig-lab" \
		--bpffs "$S/bpffs" --cgroup-root "$CG/n$1" --devices "$(node_devices "$1")" \
		--node-ip "$(node_ip "$1")" --run-pods --state-dir "$S/n$1" \
		--cni-conf-dir "$S/n$1/net.d" --cni-bin-dir "$S/cni-bin" \
		--cluster-dns "$CLUSTER_DNS" --metrics-listen 127.0.0.1:10249 \
		--log-level info "${extra[@]}"
}

# fabric_member NAME ADDR: netns $NAME-NAME wired to br0 with eth0 ADDR/24.
fabric_member() {
	local nsn=$NAME-$1
	netns_add "$nsn"
	ip -n "$NAME-fabric" link add "$1" type veth peer name eth0 netns "$nsn" ||
		die "veth $NAME-fabric/$1 <-> $nsn/eth0 failed"
	ip -n "$NAME-fabric" link set "$1" master br0 up
	ip -n "$nsn" addr add "$2/24" dev eth0
	ip -n "$nsn" link set eth0 up
}

# add-node: node n(NODES+1) joins a running lab, recorded like up's nodes
# (netns list, PID file, cgroup under the lab's), so down removes it.
cmd_add_node() {
	local i n regs
	[[ $(id -u) == 0 ]] || die "add-node needs root"
	load_config || die "lab '$NAME' is not up (no $S/config)"
	pid_alive "$S/pids/control.pid" >/dev/null || die "lab '$NAME': sluice-control is not running"
	# The running agents' --devices are fixed at their start: a link to a new node would
	# carry pod packets past their fabric program.
	[[ ${FABRIC:-bridge} == bridge ]] ||
		die "add-node: lab '$NAME' has --fabric $FABRIC; add-node works with the bridge fabric only"
	n=$((NODES + 1))
	((n <= 20)) || die "add-node: the lab has $NODES nodes, at most 20"
	[[ -e /run/netns/$NAME-n$n ]] &&
		die "network namespace $NAME-n$n exists but is not recorded by a lab"
	log "adding node n$n ($(node_ip "$n"))"
	# NODES first: down then covers n$n even if the rest fails half-way.
	sed -i "s/^NODES=.*/NODES=$n/" "$S/config"
	fabric_member "n$n" "$(node_ip "$n")"
	in_ns "$NAME-n$n" sysctl -qw net.ipv4.ip_forward=1
	mkdir -p "$CG/n$n/lab-exec" "$S/n$n/net.d" || die "cgroup $CG/n$n: mkdir failed"
	start_agent "$n"
	for ((i = 0; i < NODE_TIMEOUT * 4; i++)); do
		regs=$(nodes_ready)
		grep -qx "n$n Ready" <<<"$regs" && break
		pid_alive "$S/pids/agent-n$n.pid" >/dev/null || break
		sleep 0.25
	done
	grep -qx "n$n Ready" <<<"$regs" || {
		tail -20 "$S/logs/agent-n$n.log" >&2
		die "node n$n is not Ready after ${NODE_TIMEOUT}s (log above, $S/logs/agent-n$n.log)"
	}
	NODES=$n
	route_pod_cidrs
	echo "lab '$NAME': node n$n added ($(node_ip "$n"))"
}

cmd_up() {
	local n i j port ctl_flags=() agent_regs=0
	[[ $(id -u) == 0 ]] || die "up needs root (network namespaces, bpffs, cgroups)"
	[[ -n $CGROOT ]] || die "no cgroup2 mount in /proc/self/mounts: the agents need one"
	need_bin sluice-control sluice-agent sluice-cni
	[[ -e $S ]] && die "lab '$NAME' exists ($S); 'sluicectl lab down --name $NAME' first"
	for n in fabric cp ext $(seq -f 'n%g' 1 "$NODES"); do
		[[ -e /run/netns/$NAME-$n ]] &&
			die "network namespace $NAME-$n exists but is not recorded by a lab: pick another --name"
	done
	[[ -e $CG ]] && die "cgroup $CG exists but is not recorded by a lab: pick another --name"

	mkdir -p "$RUN_ROOT" && mkdir -m 700 "$S" || die "cannot create $S"
	UP_STARTED=1
	mkdir -p "$S/pids" "$S/logs" "$S/cni-bin" "$S/bpffs"
	# What /run/netns was before the first `ip netns add` (which creates and
	# bind-mounts it): down puts it back the same way.
	{
		[[ -d /run/netns ]] && echo "RUN_NETNS_EXISTED=1" || echo "RUN_NETNS_EXISTED="
		mountpoint -q /run/netns 2>/dev/null && echo "RUN_NETNS_MOUNTED=1" ||
			echo "RUN_NETNS_MOUNTED="
	} >"$S/run-netns.before"
	TOKEN=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
	echo "$TOKEN,lab-admin,lab-admin,system:masters" >"$TOKEN_FILE"
	chmod 600 "$TOKEN_FILE"
	cat >"$S/config" <<CFG
NAME=$NAME
NODES=$NODES
BIN=$BIN
CG=$CG
TOKEN=$TOKEN
FABRIC=$FABRIC
CFG

	log "network: $NAME-fabric (bridge), $NAME-cp, $NAME-n1..n$NODES, $NAME-ext"
	netns_add "$NAME-fabric"
	ip -n "$NAME-fabric" link add br0 type bridge || die "bridge br0 in $NAME-fabric failed"
	ip -n "$NAME-fabric" link set br0 up
	# member name, address: the fabric-side port is named after the member.
	local members=("cp $NET_PREFIX.2" "ext $NET_PREFIX.250")
	for ((i = 1; i <= NODES; i++)); do members+=("n$i $(node_ip "$i")"); done
	for m in "${members[@]}"; do
		set -- $m
		fabric_member "$1" "$2"
	done
	for ((i = 1; i <= NODES; i++)); do
		# Nodes route their pods' traffic; nothing else forwards.
		in_ns "$NAME-n$i" sysctl -qw net.ipv4.ip_forward=1
	done
	if [[ $FABRIC == mesh ]]; then
		log "fabric mesh: a link per pair of nodes (mesh-nJ in nI), node IPs routed over them"
		for ((i = 1; i <= NODES; i++)); do
			for ((j = i + 1; j <= NODES; j++)); do mesh_link "$i" "$j"; done
		done
	fi

	mount -t bpf bpf "$S/bpffs" || die "mounting bpffs at $S/bpffs failed"
	echo "$S/bpffs" >"$S/mounts"
	mkdir "$CG" || die "cgroup $CG: mkdir failed"
	echo "$CG" >"$S/cgroups"
	for ((i = 1; i <= NODES; i++)); do
		mkdir -p "$CG/n$i/lab-exec" || die "cgroup $CG/n$i: mkdir failed"
		mkdir -p "$S/n$i/net.d"
	done
	ln -s "$BIN/sluice-cni" "$S/cni-bin/sluice-cni"

	# Flags of the controllers land on a branch; use them once this binary has them.
	if "$BIN/sluice-control" --help 2>&1 | grep -q -- --cluster-cidr; then
		ctl_flags+=(--cluster-cidr "$CLUSTER_CIDR")
	else
		log "WARNING: this sluice-control has no --cluster-cidr (node IPAM not merged):" \
			"nodes get no podCIDR, pods cannot be wired"
	fi
	# kubectl (client-go) sends a bearer token only over TLS; the host's
	# kubeconfig works only if loopback requests need none.
	if "$BIN/sluice-control" --help 2>&1 | grep -q -- --anonymous-loopback; then
		ctl_flags+=(--anonymous-loopback)
	else
		log "WARNING: this sluice-control has no --anonymous-loopback: kubectl sends no token" \
			"over plain HTTP, so the host kubeconfig gets 401 Unauthorized"
	fi
	log "sluice-control: API on 127.0.0.1 (host) and $API_LAB (in $NAME-cp)"
	start_daemon control "$S/logs/control.log" "$BIN/sluice-control" \
		--listen 127.0.0.1:0 --ready-file "$S/control.port" \
		--listen-netns "/run/netns/$NAME-cp=$API_LAB" --token-file "$TOKEN_FILE" \
		--service-cidr "$SERVICE_CIDR" --advertise-address "$NET_PREFIX.2" \
		--data-dir "$S/control" "${ctl_flags[@]}" --log-level info ${LAB_CONTROL_FLAGS:-}
	for ((i = 0; i < 200; i++)); do
		[[ -s $S/control.port ]] && break
		pid_alive "$S/pids/control.pid" >/dev/null || break
		sleep 0.05
	done
	port=$(cat "$S/control.port" 2>/dev/null)
	[[ $port =~ ^[0-9]+$ ]] || {
		tail -20 "$S/logs/control.log" >&2
		die "sluice-control did not start (log above, $S/logs/control.log)"
	}
	API_URL=http://127.0.0.1:$port
	echo "API_URL=$API_URL" >>"$S/config"
	for ((i = 0; i < 200; i++)); do
		curl -sf --max-time 1 "$API_URL/readyz" >/dev/null && break
		sleep 0.05
	done
	curl -sf --max-time 2 "$API_URL/readyz" >/dev/null || die "sluice-control is not ready ($S/logs/control.log)"
	in_ns "$NAME-cp" curl -sf --max-time 2 "http://$API_LAB/readyz" >/dev/null ||
		die "the API does not answer on $API_LAB inside $NAME-cp ($S/logs/control.log)"
	write_kubeconfig "$S/kubeconfig" "$API_URL"
	write_kubeconfig "$S/kubeconfig-lab" "http://$API_LAB"

	for ((i = 1; i <= NODES; i++)); do start_agent "$i"; done
	sleep 0.5
	for ((i = 1; i <= NODES; i++)); do
		pid_alive "$S/pids/agent-n$i.pid" >/dev/null || {
			tail -20 "$S/logs/agent-n$i.log" >&2
			die "sluice-agent n$i exited (log above, $S/logs/agent-n$i.log)"
		}
	done

	# Node registration is the agent's node part (agent/node.c). An agent
	# registers within a second or two of starting; none at all after
	# LAB_REGISTER_TIMEOUT means this build's agent does not register Nodes.
	log "waiting for $NODES nodes to register and become Ready"
	local reg=0 regs
	for ((i = 0; i < NODE_TIMEOUT * 4; i++)); do
		regs=$(nodes_ready)
		reg=$(grep -c . <<<"$regs")
		agent_regs=$(grep -c ' Ready$' <<<"$regs")
		((agent_regs >= NODES)) && break
		((reg == 0 && i >= REGISTER_TIMEOUT * 4)) && break
		sleep 0.25
	done
	if ((reg == 0)); then
		log "WARNING: no Node registered in ${REGISTER_TIMEOUT}s: this sluice-agent does not" \
			"register Nodes (agent/node.c not merged?) or cannot reach the API (logs in $S/logs/);" \
			"'kubectl get nodes' stays empty and no pods run"
	elif ((agent_regs < NODES)); then
		echo "$regs" >&2
		die "only $agent_regs of $NODES nodes are Ready after ${NODE_TIMEOUT}s (logs in $S/logs/)"
	fi
	((reg > 0)) && route_pod_cidrs
	if [[ -n $NO_DNS ]]; then
		log "--no-dns: no cluster DNS (pods' resolv.conf still names $CLUSTER_DNS)"
	elif ((reg == 0)); then
		log "WARNING: no cluster DNS: there are no nodes to run the kube-dns pods"
	else
		dns_addon
	fi

	cat <<EOF
lab '$NAME' is up: $NODES nodes (fabric $FABRIC), API $API_URL (host) and http://$API_LAB (lab network)
  export KUBECONFIG=$S/kubeconfig
  kubectl get nodes -o wide
  sluicectl lab status --name $NAME
  sluicectl lab exec --name $NAME n1 -- ip route
  sluicectl lab exec --name $NAME ext -- curl http://$(node_ip 1):NODEPORT/
  sluicectl lab exec --name $NAME NAMESPACE/POD -- dig kubernetes.default.svc.cluster.local
  sluicectl lab down --name $NAME
EOF
}

# Prints "podCIDR InternalIP" per Node that has a podCIDR.
node_pod_cidrs() {
	api /api/v1/nodes 2>/dev/null | "$PY" -c '
import json, sys
for n in json.load(sys.stdin).get("items") or []:
    cidr = (n.get("spec") or {}).get("podCIDR")
    ips = [a["address"] for a in (n.get("status") or {}).get("addresses") or [] if a.get("type") == "InternalIP"]
    if cidr and ips:
        print(cidr, ips[0])
' 2>/dev/null
}

# The control plane and the external client are not nodes, so no agent routes
# the pod CIDRs there; without these routes, replies to pods (the API server
# answering sluice-dns or an in-cluster client through the kubernetes
# Service, the upstream DNS answering a forward) have nowhere to go.
route_pod_cidrs() {
	local i routes=() r
	for ((i = 0; i < 40; i++)); do
		mapfile -t routes < <(node_pod_cidrs)
		((${#routes[@]} >= NODES)) && break
		sleep 0.25
	done
	((${#routes[@]} >= NODES)) ||
		log "WARNING: only ${#routes[@]} of $NODES nodes have a podCIDR: $NAME-cp and $NAME-ext" \
			"cannot reach the pods of the others"
	for r in "${routes[@]}"; do
		set -- $r
		ip -n "$NAME-cp" route replace "$1" via "$2" || die "route $1 via $2 in $NAME-cp failed"
		ip -n "$NAME-ext" route replace "$1" via "$2" || die "route $1 via $2 in $NAME-ext failed"
	done
}

# --- cluster DNS addon ------------------------------------------------------------

DNS_UPSTREAM=$NET_PREFIX.250
DNS_TIMEOUT=${LAB_DNS_TIMEOUT:-60} # seconds for the kube-dns pods to be Ready and answer

# api_send METHOD PATH JSON: prints the HTTP status, the body goes to $S/api.out.
api_send() {
	curl -sS --max-time 5 -o "$S/api.out" -w '%{http_code}' -X "$1" \
		-H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
		"$API_URL$2" --data-binary "$3"
}
api_create() {
	local code
	code=$(api_send POST "$2" "$3")
	[[ $code == 201 ]] ||
		die "creating $1 failed: HTTP $code: $(head -c 400 "$S/api.out" 2>/dev/null)"
}

# The "outside world": knotd in L-ext serving example.test on :53. Cluster
# DNS forwards there and nowhere else; nothing in the lab reaches a real resolver.
dns_upstream() {
	local d=$S/dns-upstream i
	command -v knotd >/dev/null || die "knotd not found: install Debian's knot (or use --no-dns)"
	mkdir -p "$d"
	cat >"$d/example.test.zone" <<Z
\$ORIGIN example.test.
\$TTL 300
@	IN SOA ns.example.test. admin.example.test. 1 3600 600 86400 60
@	IN NS ns.example.test.
ns	IN A $DNS_UPSTREAM
www	IN A $DNS_UPSTREAM
www	IN TXT "served by knotd in $NAME-ext"
ext	IN A $DNS_UPSTREAM
alias	IN CNAME www.example.test.
Z
	cat >"$d/knot.conf" <<K
server:
    listen: $DNS_UPSTREAM@53
    rundir: $d
database:
    storage: $d
control:
    listen: $d/knot.sock
log:
  - target: stderr
    any: warning
zone:
  - domain: example.test
    storage: $d
    file: example.test.zone
K
	log "upstream DNS: knotd in $NAME-ext on $DNS_UPSTREAM:53 (zone example.test)"
	start_daemon dns-upstream "$S/logs/dns-upstream.log" \
		nsenter --net="/run/netns/$NAME-ext" knotd -c "$d/knot.conf"
	for ((i = 0; i < 100; i++)); do
		[[ -n $(in_ns "$NAME-ext" dig +short +time=1 +tries=1 "@$DNS_UPSTREAM" \
			www.example.test A 2>/dev/null) ]] && return 0
		pid_alive "$S/pids/dns-upstream.pid" >/dev/null || break
		sleep 0.1
	done
	tail -5 "$S/logs/dns-upstream.log" >&2
	die "the upstream DNS (knotd in $NAME-ext) does not answer ($S/logs/dns-upstream.log)"
}

# The kube-dns Deployment: two sluice-dns replicas that the scheduler spreads
# over the nodes (it scores a ReplicaSet's pods apart), like kubeadm's CoreDNS.
dns_deployment() {
	cat <<J
{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"kube-dns","namespace":"kube-system",
 "labels":{"k8s-app":"kube-dns"}},
 "spec":{"replicas":2,"selector":{"matchLabels":{"k8s-app":"kube-dns"}},
  "strategy":{"type":"RollingUpdate","rollingUpdate":{"maxSurge":1,"maxUnavailable":0}},
  "template":{"metadata":{"labels":{"k8s-app":"kube-dns"}},
 "spec":{"dnsPolicy":"Default","terminationGracePeriodSeconds":2,
  "containers":[{"name":"sluice-dns","image":"sluice/sluice-dns",
   "command":["$BIN/sluice-dns","--kubeconfig","$S/kubeconfig-lab",
    "--forward","$DNS_UPSTREAM","--listen","0.0.0.0:53","--metrics","0.0.0.0:9153"],
   "ports":[{"name":"dns","containerPort":53,"protocol":"UDP"},
    {"name":"dns-tcp","containerPort":53,"protocol":"TCP"},
    {"name":"metrics","containerPort":9153,"protocol":"TCP"}],
   "readinessProbe":{"httpGet":{"path":"/ready","port":9153},"periodSeconds":1},
   "livenessProbe":{"httpGet":{"path":"/health","port":9153},"periodSeconds":5,
    "failureThreshold":5}}]}}}}
J
}

# Prints the number of kube-dns pods whose Ready condition is True.
dns_pods_ready() {
	api "/api/v1/namespaces/kube-system/pods?labelSelector=k8s-app%3Dkube-dns" 2>/dev/null |
		"$PY" -c '
import json, sys
n = 0
for p in json.load(sys.stdin).get("items") or []:
    c = [c.get("status") for c in (p.get("status") or {}).get("conditions") or [] if c.get("type") == "Ready"]
    n += c == ["True"]
print(n)
' 2>/dev/null || echo 0
}

# A query from node n1 through the ClusterIP, in the node's cgroup so the
# socket-level service balancing applies as it does for pods.
dns_node_query() {
	bash -c 'echo $$ >"$0/cgroup.procs" && exec nsenter --net="$1" "${@:2}"' \
		"$CG/n1/lab-exec" "/run/netns/$NAME-n1" \
		dig +short +time=1 +tries=1 "@$CLUSTER_DNS" "$@" 2>/dev/null
}

dns_addon() {
	local i ready=0
	need_bin sluice-dns
	command -v dig >/dev/null || die "dig not found: install bind9-dnsutils (or use --no-dns)"
	dns_upstream
	log "cluster DNS: Service kube-system/kube-dns $CLUSTER_DNS, Deployment kube-dns" \
		"(2 sluice-dns replicas placed by the scheduler)"
	api_create "Service kube-system/kube-dns" /api/v1/namespaces/kube-system/services '
{"apiVersion":"v1","kind":"Service","metadata":{"name":"kube-dns","namespace":"kube-system",
 "labels":{"k8s-app":"kube-dns","kubernetes.io/name":"sluice-dns"}},
 "spec":{"clusterIP":"'"$CLUSTER_DNS"'","selector":{"k8s-app":"kube-dns"},
  "ports":[{"name":"dns","port":53,"targetPort":53,"protocol":"UDP"},
   {"name":"dns-tcp","port":53,"targetPort":53,"protocol":"TCP"},
   {"name":"metrics","port":9153,"targetPort":9153,"protocol":"TCP"}]}}'
	api_create "Deployment kube-system/kube-dns" /apis/apps/v1/namespaces/kube-system/deployments \
		"$(dns_deployment)"
	for ((i = 0; i < DNS_TIMEOUT * 4; i++)); do
		ready=$(dns_pods_ready)
		((ready >= 2)) && break
		sleep 0.25
	done
	((ready >= 2)) || die "only $ready of 2 kube-dns pods are Ready after ${DNS_TIMEOUT}s" \
		"(kubectl -n kube-system describe deploy,pods; logs under $S/n*/pods/)"
	# Ready pods become endpoints and then datapath backends on every node.
	for ((i = 0; i < DNS_TIMEOUT * 4; i++)); do
		[[ $(dns_node_query kubernetes.default.svc.cluster.local A) == 198.18.128.1 ]] &&
			return 0
		sleep 0.25
	done
	die "kube-dns pods are Ready but $CLUSTER_DNS does not answer from n1" \
		"(dig @$CLUSTER_DNS kubernetes.default.svc.cluster.local)"
}

# --- down -----------------------------------------------------------------------

# kill_cgroup DIR: every process in the subtree (pods the agents left), then
# waits until it is empty.
kill_cgroup() {
	local d=$1 i p
	[[ -d $d ]] || return 0
	if [[ -e $d/cgroup.kill ]]; then
		echo 1 >"$d/cgroup.kill" 2>/dev/null
	else
		while read -r p; do
			kill -KILL "$p" 2>/dev/null
		done < <(find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null)
	fi
	for ((i = 0; i < 50; i++)); do
		grep -q '^populated 0' "$d/cgroup.events" 2>/dev/null && return 0
		sleep 0.1
	done
	log "WARNING: processes remain in $d"
}

# Pod network namespaces are named from pod UIDs by the agents; only those
# whose UID appears in this lab's node state dirs are this lab's. The
# sandbox.json of each pod (<state>/pods/<uid>/) names its netns exactly.
pod_netns() {
	local e uid
	[[ -d /run/netns ]] || return 0
	find "$S" -path '*/pods/*/sandbox.json' -exec "$PY" -c '
import json, sys
for f in sys.argv[1:]:
    try:
        n = json.load(open(f)).get("netns") or ""
    except Exception:
        continue
    if n.startswith("/run/netns/") and "/" not in n[len("/run/netns/"):]:
        print(n[len("/run/netns/"):])
' {} + 2>/dev/null
	for e in /run/netns/*; do
		[[ -e $e ]] || continue
		e=${e##*/}
		[[ $e =~ ([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}) ]] || continue
		uid=${BASH_REMATCH[1]}
		for ((i = 1; i <= NODES; i++)); do
			[[ -d $S/n$i ]] || continue
			if [[ -n $(find "$S/n$i" -name "*$uid*" -print -quit 2>/dev/null) ]] ||
				grep -rqsF -- "$uid" "$S/n$i"; then
				echo "$e"
				break
			fi
		done
	done
}

cmd_down() {
	local f ns i
	[[ $(id -u) == 0 ]] || die "down needs root"
	if [[ ! -d $S ]]; then
		log "not found ($S): nothing to remove"
		return 0
	fi
	load_config || {
		# up failed before writing its config: only the state dir exists.
		NODES=0
		CG=${CGROOT:+$CGROOT/sluice-lab-$NAME}
	}
	# Agents first (they stop pods), then the API server they talk to.
	for f in "$S"/pids/agent-*.pid; do
		[[ -e $f ]] && stop_pid "$f"
	done
	for f in "$S"/pids/*.pid; do
		[[ -e $f ]] && stop_pid "$f"
	done
	[[ -s $S/cgroups ]] && kill_cgroup "$CG"
	for ((i = 1; i <= NODES; i++)); do
		[[ -e /run/netns/$NAME-n$i && -d $S/bpffs/sluice/n$i ]] &&
			in_ns "$NAME-n$i" "$BIN/sluice-agent" --node-name "n$i" --bpffs "$S/bpffs" \
				--cleanup >>"$S/logs/cleanup.log" 2>&1
	done
	for ns in $(pod_netns | sort -u); do
		[[ -e /run/netns/$ns ]] && ip netns del "$ns" 2>/dev/null && log "removed pod netns $ns"
	done
	if [[ -s $S/netns ]]; then
		tac "$S/netns" | while read -r ns; do
			[[ -e /run/netns/$ns ]] && ip netns del "$ns"
		done
	fi
	if [[ -s $S/cgroups ]]; then
		# Depth first: a cgroup goes only once its children are gone.
		find "$CG" -depth -type d -exec rmdir {} \; 2>/dev/null
		[[ -d $CG ]] && log "WARNING: cgroup $CG could not be removed"
	fi
	if [[ -s $S/mounts ]]; then
		while read -r m; do
			mountpoint -q "$m" && { umount "$m" || umount -l "$m"; }
		done <"$S/mounts"
	fi
	if [[ -f $S/run-netns.before ]]; then
		# shellcheck source=/dev/null
		source "$S/run-netns.before"
		# `ip netns add` bind-mounted /run/netns on itself; undo that once no
		# namespace is mounted there in this mount namespace.
		if [[ -z $RUN_NETNS_MOUNTED ]] && mountpoint -q /run/netns &&
			! awk '$2 ~ "^/run/netns/" { f = 1 } END { exit !f }' /proc/self/mounts; then
			umount /run/netns 2>/dev/null
		fi
		[[ -z $RUN_NETNS_EXISTED ]] && rmdir /run/netns 2>/dev/null
	fi
	if [[ -n ${LAB_LOG_ARCHIVE:-} ]]; then
		mkdir -p "$LAB_LOG_ARCHIVE" && cp -r "$S/logs/." "$LAB_LOG_ARCHIVE/"
	fi
	rm -rf "$S"
	rmdir "$RUN_ROOT" 2>/dev/null
	log "removed"
}

# --- status / exec / kubeconfig --------------------------------------------------

kubectl_bin() {
	if [[ -n ${KUBECTL:-} ]]; then
		echo "$KUBECTL"
	elif [[ -x $ROOT/build/deps/kubectl-1.20/usr/bin/kubectl ]]; then
		echo "$ROOT/build/deps/kubectl-1.20/usr/bin/kubectl"
	else
		command -v kubectl
	fi
}

cmd_status() {
	local f k name pid
	load_config || die "lab '$NAME' is not up (no $S/config)"
	echo "lab $NAME: $NODES nodes, fabric ${FABRIC:-bridge}, API $API_URL (host) and http://$API_LAB (lab), state $S"
	for f in "$S"/pids/*.pid; do
		[[ -e $f ]] || continue
		name=$(basename "$f" .pid)
		if pid=$(pid_alive "$f"); then
			printf '  %-10s running (pid %s)\n' "$name" "$pid"
		else
			printf '  %-10s NOT RUNNING (log %s/logs/%s.log)\n' "$name" "$S" "$name"
		fi
	done
	k=$(kubectl_bin) || die "kubectl not found (set KUBECTL)"
	"$k" --kubeconfig "$S/kubeconfig" get nodes -o wide
	"$k" --kubeconfig "$S/kubeconfig" get pods -A -o wide
	"$k" --kubeconfig "$S/kubeconfig" get svc -A
}

cmd_exec() {
	local target cmd=() ns cg uid node k e pid
	load_config || die "lab '$NAME' is not up (no $S/config)"
	((${#EXEC_ARGS[@]})) || die "exec: missing target: n1..n$NODES, cp, ext, fabric or NAMESPACE/POD"
	target=${EXEC_ARGS[0]}
	cmd=("${EXEC_ARGS[@]:1}")
	[[ ${cmd[0]:-} == -- ]] && cmd=("${cmd[@]:1}")
	((${#cmd[@]})) || cmd=("${SHELL:-/bin/bash}")
	case $target in
	*/*)
		k=$(kubectl_bin) || die "kubectl not found (set KUBECTL)"
		read -r uid node < <("$k" --kubeconfig "$S/kubeconfig" get pod -n "${target%%/*}" \
			"${target#*/}" -o jsonpath='{.metadata.uid} {.spec.nodeName}{"\n"}') ||
			die "exec: pod $target not found"
		[[ -n $uid ]] || die "exec: pod $target not found"
		for e in /run/netns/*"$uid"*; do
			[[ -e $e ]] && ns=${e##*/} && break
		done
		[[ -n ${ns:-} ]] || die "exec: pod $target (uid $uid, node ${node:-none}) has no network" \
			"namespace under /run/netns: is it running on a node?"
		# Like kubectl exec: join a running container's cgroup and its
		# namespaces (net, and mount/UTS for the pod's /etc files and
		# hostname); with no process to join, the pod netns and the node's cgroup.
		for e in "$CG/$node/pods/$uid"/*/cgroup.procs; do
			[[ -e $e ]] || continue
			read -r pid <"$e" || continue
			[[ -n $pid ]] || continue
			# shellcheck disable=SC2093 # exec: the loop continues only if bash is missing
			exec bash -c 'echo $$ >"$0" && exec nsenter -t "$1" -n -m -u "${@:2}"' \
				"$e" "$pid" "${cmd[@]}"
		done
		cg=$CG/$node/lab-exec
		;;
	cp | ext | fabric)
		ns=$NAME-$target cg=
		;;
	n[0-9]*)
		[[ -e /run/netns/$NAME-$target ]] || die "exec: no node $target (nodes n1..n$NODES)"
		ns=$NAME-$target cg=$CG/$target/lab-exec
		;;
	*) die "exec: unknown target '$target': n1..n$NODES, cp, ext, fabric or NAMESPACE/POD" ;;
	esac
	[[ -e /run/netns/$ns ]] || die "exec: network namespace $ns is gone"
	# Inside the node's cgroup subtree the socket-level service load balancing
	# applies, as for the node's pods.
	if [[ -n $cg && -d $cg ]]; then
		exec bash -c 'echo $$ >"$0/cgroup.procs" && exec nsenter --net="$1" "${@:2}"' \
			"$cg" "/run/netns/$ns" "${cmd[@]}"
	fi
	exec nsenter --net="/run/netns/$ns" "${cmd[@]}"
}

case $CMD in
up) cmd_up ;;
add-node) cmd_add_node ;;
down) cmd_down ;;
status) cmd_status ;;
exec) cmd_exec ;;
kubeconfig)
	[[ -f $S/kubeconfig ]] || die "lab '$NAME' is not up (no $S/kubeconfig)"
	if [[ -n $LAB_KUBECONFIG ]]; then echo "$S/kubeconfig-lab"; else echo "$S/kubeconfig"; fi
	;;
-h | --help | help) usage ;;
*)
	echo "sluicectl lab: unknown command '$CMD': accepted are up, add-node, down, status, exec, kubeconfig" >&2
	exit 2
	;;
esac
