#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Service dataplane comparison (`make bench-modes`; `make bench` runs --quick):
# sluice-agent --dataplane bpf (socket LB, and per-packet only), iptables,
# nftables and ipvs, plus a direct row (no service translation), on one
# topology, in randomized order with repetitions. Method:
# /work/shared/research/kubeproxy-modes.md §6 (published numbers in §4).
#
#   netns CLI                      netns NODE                         netns SRV
#   ┌──────────────────────┐ veth ┌──────────────────────────────┐ veth ┌─────────────────────────┐
#   │ c0 198.18.250.2/30   ├──────┤ nc0 198.18.250.1  ip_forward │      │ local 198.18.0.0/17 lo  │
#   │ + 198.18.200.1-64    │      │ ns0 198.18.251.1 ────────────┼──────┤ s0 198.18.251.2         │
#   │ connbench closed/open│      │ sluice-agent --dataplane M   │      │ connbench serve --any   │
#   │ (cgroup CG: socket LB│      │  (API: sluice-control        │      │  TCP+UDP :8080, answers │
#   │  applies there)      │      │   --listen-netns NODE)       │      │  for every backend addr │
#   └──────────────────────┘      └──────────────────────────────┘      └─────────────────────────┘
#
# The server netns routes the whole backend span to lo (AnyIP), so one server
# process answers for up to 32k distinct endpoint addresses; the client binds
# round-robin to 64 source addresses (no port exhaustion), all inside
# --cluster-cidr, so no mode masquerades (pod -> ClusterIP, kube-proxy's main
# path). Services: `connbench load` (one TCP port each, ClusterIP
# 198.19.0.10 + i, E endpoints from the shared span, all on this node; the
# targeted ones also get a UDP port).
#
# Per configuration (N Services x E endpoints [x affinity]), on a fresh API
# server, REPS rounds, each running the modes in a new random order:
#   1. full sync from empty: agent start (objects already in the API) until a
#      connection through the first and the last Service succeeds (connbench
#      wait, probing every 2 ms from the client netns), capped at STEP_TIMEOUT;
#      plus the agent's own first-sync and programming-call times (/metrics);
#   2. memory: /proc/meminfo (Slab, SUnreclaim, VmallocUsed, Percpu) before the
#      agent and after programming, the agent's RSS, BPF map memlock;
#   3. data plane, each run RUN_SECONDS after a warm-up, with CPU
#      (sys+irq+softirq jiffies from /proc/stat over the run, all CPUs; perf
#      cannot count instructions on this VM) and conntrack -S in the node netns:
#      crr closed loop against the first, the last and 16 random Services;
#      crr open loop at OPEN_RATE (latency from the intended start); rr
#      (keepalive) and udp (fresh source port per request) closed loops;
#   4. single update: UPDATE_SAMPLES times one new Service (slice + Service
#      POST) until the first connection through it succeeds (probed every 1 ms),
#      with the agent's programming-call time for that sync.
# Results: $OUT/README.md, modes.csv, *.png (OUT = docs/benchmarks/modes).
#
# Usage: tools/bench/modes.sh [--quick|--full]; knobs (environment): CONFIGS
# ("N:E[:aff] ..."), MODES, REPS, RUN_SECONDS, CONNS, OPEN_RATE, UPDATE_SAMPLES,
# STEP_TIMEOUT, BIN, OUT. Needs root, iproute2, bpftool, curl, conntrack,
# iptables/nft for the legacy rows, gnuplot for the plots.
if [[ -z ${SLUICE_MODES_MNTNS:-} ]]; then
	exec env SLUICE_MODES_MNTNS=1 unshare --mount --propagation private bash "$0" "$@"
fi
set -Eeuo pipefail
# A failing command ends the run; say which (set -e alone exits silently).
trap 'echo "modes bench: line $LINENO: \"$BASH_COMMAND\" failed (status $?)" >&2' ERR
cd "$(dirname "$0")/../.."
CMDLINE="tools/bench/modes.sh $*"

PROFILE=full
for a in "$@"; do
	case $a in
	--quick) PROFILE=quick ;;
	--full) PROFILE=full ;;
	*) echo "modes bench: unknown argument '$a' (--quick or --full)" >&2; exit 2 ;;
	esac
done
BIN=${BIN:-build/bin}
OUT=${OUT:-docs/benchmarks/modes}
if [[ $PROFILE == quick ]]; then
	CONFIGS=${CONFIGS:-"1:10 1000:10 10000:10"}
	REPS=${REPS:-2}
	RUN_SECONDS=${RUN_SECONDS:-1}
	UPDATE_SAMPLES=${UPDATE_SAMPLES:-3}
	STEP_TIMEOUT=${STEP_TIMEOUT:-90}
else
	CONFIGS=${CONFIGS:-"1:10 100:10 1000:10 10000:10 30000:10 50000:10 10000:1 10000:100 1:10000 1000:10:aff 10000:10:aff"}
	REPS=${REPS:-5}
	RUN_SECONDS=${RUN_SECONDS:-2}
	UPDATE_SAMPLES=${UPDATE_SAMPLES:-10}
	STEP_TIMEOUT=${STEP_TIMEOUT:-600}
fi
MODES=${MODES:-"direct bpf-sock bpf-pkt iptables nftables ipvs"}
CONNS=${CONNS:-32}
OPEN_RATE=${OPEN_RATE:-1000}
WARMUP=0.3
CLIENT_CPU=${CLIENT_CPU:-0}
SERVER_CPU=${SERVER_CPU:-$(($(nproc) > 1 ? 1 : 0))}
NODE=node-a
SVC_CIDR=198.19.0.0/16
SVC_BASE=198.19.0.10
BE_BASE=198.18.1.0
BE_SPAN=30000 # backends 198.18.1.0 - 198.18.118.47, all inside the srv netns' local /17
CLUSTER_CIDR=198.18.0.0/16
SOURCES=198.18.200.1-198.18.200.64
NRANDOM=16

for b in sluice-control sluice-agent connbench; do
	[[ -x $BIN/$b ]] || { echo "modes bench: $BIN/$b missing; run make first" >&2; exit 2; }
done
for t in bpftool curl ip unshare nsenter conntrack awk shuf; do
	command -v $t >/dev/null || { echo "modes bench: $t not found (make deps)" >&2; exit 2; }
done
((EUID == 0)) || { echo "modes bench: needs root (netns, cgroup, bpffs)" >&2; exit 2; }

mkdir -p "$OUT"
tmp=$(mktemp -d /tmp/sluice-modes.XXXXXX)
CLI=sl-modes-cli-$$
NS=sl-modes-node-$$
SRV=sl-modes-srv-$$
CGROOT=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/self/mounts)
CG=$CGROOT/sluice-modes-$$
BPFFS=$tmp/bpffs
STATE=$tmp/state
pids=()    # our children (server, API server)
AGENT_PID= # started by connbench wait: not our child
CONTROL_PID=

log() { printf '[modes %4ss] %s\n' $(($(date +%s) - t_start)) "$*" >&2; }

stop_pid() { # stop_pid PID [SECONDS]: TERM, then KILL; works for non-children too
	local p=$1 i
	[[ -n $p ]] || return 0
	kill -TERM "$p" 2>/dev/null || return 0
	for ((i = 0; i < ${2:-5} * 20; i++)); do kill -0 "$p" 2>/dev/null || break; sleep 0.05; done
	kill -KILL "$p" 2>/dev/null || true
	wait "$p" 2>/dev/null || true
}

in_ns() { nsenter --net="/run/netns/$NS" "$@"; }
agent_cleanup() {
	[[ -e /run/netns/$NS ]] || return 0
	in_ns "$BIN/sluice-agent" --node-name $NODE --bpffs "$BPFFS" --cni-conf-dir "$tmp/net.d" \
		--cleanup >>"$tmp/agent.log" 2>&1 || true
}
cleanup() {
	local p i
	stop_pid "$AGENT_PID"
	agent_cleanup
	for p in "${pids[@]}"; do stop_pid "$p"; done
	if [[ -d $CG ]]; then
		# The agent with --run-pods makes a pods/ subtree.
		while read -r p; do kill -KILL "$p" 2>/dev/null || true; done < <(find "$CG" -name cgroup.procs -exec cat {} +)
		for ((i = 0; i < 50; i++)); do
			find "$CG" -depth -type d -exec rmdir {} \; 2>/dev/null || true
			[[ -d $CG ]] || break
			sleep 0.1
		done
	fi
	for n in "$CLI" "$NS" "$SRV"; do ip netns del "$n" 2>/dev/null || true; done
	umount "$BPFFS" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

raw=$tmp/raw.txt # one line per measurement: key=value words
: >"$raw"
failures=()
t_start=$(date +%s)

# --- machine -----------------------------------------------------------------------
m_cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
m_nproc=$(nproc)
m_mem=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
m_kernel=$(uname -r)
m_commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
m_date=$(date -u '+%Y-%m-%d %H:%M UTC')
m_load=$(cut -d' ' -f1-3 /proc/loadavg)
m_virt=$(systemd-detect-virt 2>/dev/null || echo unknown)
v_ipt=$(iptables --version 2>/dev/null || echo "not installed")
v_iptl=$(iptables-legacy --version 2>/dev/null || echo "not installed")
v_nft=$(nft --version 2>/dev/null || echo "not installed")
v_ct=$(conntrack --version 2>&1 | sed -n 1p)
v_bpftool=$(bpftool version 2>/dev/null | sed -n 1p)
v_ipvs=$(grep -qw ip_vs /proc/modules 2>/dev/null && echo "ip_vs loaded" ||
	{ [[ -d /proc/sys/net/ipv4/vs ]] && echo "ip_vs built in" || echo "no ip_vs in this kernel (no /proc/sys/net/ipv4/vs, no module)"; })
perf_ok=no
# perf prints "<not supported>" where the PMU is not exposed (most VMs).
if command -v perf >/dev/null && perf stat -x, -e instructions -- true 2>&1 | awk -F, '$1 ~ /^[0-9]+$/ { ok = 1 } END { exit !ok }'; then
	perf_ok=yes
fi
log "machine: $m_nproc x $m_cpu, $m_mem, kernel $m_kernel ($m_virt), load $m_load; profile $PROFILE"

# --- topology ----------------------------------------------------------------------
mkdir -p "$BPFFS" "$STATE" "$tmp/net.d"
mount -t bpf bpf "$BPFFS"
mkdir "$CG"
for n in "$CLI" "$NS" "$SRV"; do ip netns add "$n"; ip -n "$n" link set lo up; done
ip -n "$CLI" link add c0 type veth peer name nc0 netns "$NS"
ip -n "$NS" link add ns0 type veth peer name s0 netns "$SRV"
ip -n "$CLI" addr add 198.18.250.2/30 dev c0
ip -n "$NS" addr add 198.18.250.1/30 dev nc0
ip -n "$NS" addr add 198.18.251.1/30 dev ns0
ip -n "$SRV" addr add 198.18.251.2/30 dev s0
for l in "$CLI c0" "$NS nc0" "$NS ns0" "$SRV s0"; do ip -n ${l% *} link set ${l#* } up; done
for ((i = 1; i <= 64; i++)); do ip -n "$CLI" addr add "198.18.200.$i/32" dev c0; done
ip -n "$CLI" route add 198.18.0.0/17 via 198.18.250.1
ip -n "$CLI" route add $SVC_CIDR via 198.18.250.1
ip -n "$NS" route add 198.18.200.0/24 via 198.18.250.2
ip -n "$NS" route add 198.18.0.0/17 via 198.18.251.2
ip -n "$SRV" route add local 198.18.0.0/17 dev lo
ip -n "$SRV" route add 198.18.192.0/18 via 198.18.251.1
# Forwarding in the node; ICMP errors not rate-limited there, so a probe of a
# ClusterIP not yet programmed fails at once instead of timing out.
in_ns sysctl -qw net.ipv4.ip_forward=1 net.ipv4.icmp_ratelimit=0 net.ipv4.icmp_msgs_per_sec=1000000 net.ipv4.icmp_msgs_burst=100000
# Same sysctls for every mode (fairness rules §6.5).
for n in "$CLI" "$SRV"; do
	ip netns exec "$n" sysctl -qw net.ipv4.ip_local_port_range="1024 65535" net.ipv4.tcp_tw_reuse=1
done
CT_MAX=$(cat /proc/sys/net/netfilter/nf_conntrack_max 2>/dev/null || echo n/a)
ip netns exec "$SRV" taskset -c "$SERVER_CPU" "$BIN/connbench" serve --any --udp --port 8080 \
	--ready-file "$tmp/serve.ready" 2>"$tmp/serve.log" &
SERVER_PID=$! # ip netns exec and taskset exec: this is the server
pids+=("$SERVER_PID")
for ((i = 0; i < 100; i++)); do [[ -s $tmp/serve.ready ]] && break; sleep 0.05; done
[[ -s $tmp/serve.ready ]] || { echo "modes bench: connbench serve did not start" >&2; cat "$tmp/serve.log" >&2; exit 1; }

# in_cli cg|nocg CMD...: runs CMD in the client netns, inside the node cgroup
# (where the socket LB applies) or not. in_cg cg|nocg CMD...: the same, in the
# host netns (for connbench update and wait, which enter the client netns
# themselves after opening what they need outside it).
in_cli() {
	local c=$1
	shift
	if [[ $c == nocg ]]; then
		nsenter --net="/run/netns/$CLI" "$@"
	else
		bash -c 'echo $$ >"$0/cgroup.procs" && exec nsenter --net="/run/netns/$1" "${@:2}"' "$CG" "$CLI" "$@"
	fi
}
in_cg() {
	local c=$1
	shift
	if [[ $c == nocg ]]; then
		"$@"
	else
		bash -c 'echo $$ >"$0/cgroup.procs" && exec "${@:1}"' "$CG" "$@"
	fi
}

# --- API server --------------------------------------------------------------------
URL=
start_control() {
	local port i
	port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	URL=http://127.0.0.1:$port
	# No controllers: the benchmark writes the EndpointSlices itself (there are
	# no pods), and the EndpointSlice controller would replace them.
	"$BIN/sluice-control" --listen "127.0.0.1:$port" --listen-netns "/run/netns/$NS=127.0.0.1:6443" \
		--store memory --controllers none --service-cidr $SVC_CIDR --log-level warn \
		>>"$tmp/control.log" 2>&1 &
	CONTROL_PID=$!
	pids+=("$CONTROL_PID")
	for ((i = 0; i < 200; i++)); do
		curl -sf -o /dev/null "$URL/api/v1/namespaces/default" && return 0
		kill -0 "$CONTROL_PID" 2>/dev/null || break
		sleep 0.05
	done
	echo "modes bench: sluice-control did not start:" >&2
	cat "$tmp/control.log" >&2
	exit 1
}
post() { # post PATH JSON: must answer 201
	local code
	code=$(curl -s -o "$tmp/post.out" -w '%{http_code}' -H 'Content-Type: application/json' \
		-X POST "$URL$1" -d "$2")
	[[ $code == 201 ]] || { echo "modes bench: POST $1: HTTP $code $(head -c 300 "$tmp/post.out")" >&2; exit 1; }
}

# --- helpers -------------------------------------------------------------------------
svc_ip() { awk -v b="$SVC_BASE" -v i="$1" 'BEGIN { split(b, o, "."); n = ((o[1] * 256 + o[2]) * 256 + o[3]) * 256 + o[4] + i
	printf "%d.%d.%d.%d\n", int(n / 16777216) % 256, int(n / 65536) % 256, int(n / 256) % 256, n % 256 }'; }
be_ips() { # be_ips SERVICE E: that Service's endpoint addresses, comma-separated
	awk -v b="$BE_BASE" -v i="$1" -v e="$2" -v span="$BE_SPAN" 'BEGIN { split(b, o, "."); base = ((o[1] * 256 + o[2]) * 256 + o[3]) * 256 + o[4]
		for (k = 0; k < e && k < 256; k++) { n = base + (i * e + k) % span
			printf "%s%d.%d.%d.%d", k ? "," : "", int(n / 16777216) % 256, int(n / 65536) % 256, int(n / 256) % 256, n % 256 } print "" }'
}
cpu_jiffies() { awk '$1 == "cpu" { print $4 + $7 + $8 }' /proc/stat; } # system + irq + softirq
srv_ticks() { awk '{ print $14 + $15 }' "/proc/$SERVER_PID/stat"; }      # server utime + stime
ct_stats() { # insert_failed drop early_drop summed over CPUs (node netns)
	in_ns conntrack -S 2>/dev/null | awk '{ for (i = 1; i <= NF; i++) { split($i, kv, "="); if (kv[1] == "insert_failed") a += kv[2]
		if (kv[1] == "drop") b += kv[2]; if (kv[1] == "early_drop") c += kv[2] } } END { printf "%d %d %d\n", a, b, c }'
}
meminfo() { awk '/^(Slab|SUnreclaim|VmallocUsed|Percpu):/ { printf "%s_kb=%d ", $1, $2 }' /proc/meminfo | tr -d ':'; }
metrics() { in_ns curl -sf --max-time 20 "http://127.0.0.1:$MPORT/metrics"; }
metric() { awk -v k="$1" '$1 == k { print $2; exit }' "$2"; }

emit() { echo "$*" >>"$raw"; }

# record TAGS -- CMD...: runs a connbench command, keeps its output line with TAGS.
record() {
	local tags=() line
	while [[ $1 != -- ]]; do tags+=("$1"); shift; done
	shift
	if line=$("$@" 2>"$tmp/cb.err"); then
		:
	else
		failures+=("${tags[*]}: ${line:-no output}: $(tail -3 "$tmp/cb.err" | tr '\n' ' ')")
		log "FAILED: ${tags[*]}: $(tail -2 "$tmp/cb.err" | tr '\n' ' ')"
	fi
	if [[ -n $line ]]; then emit "${tags[*]} $line"; fi
	LAST=$line
}

MPORT=10249
agent_args() { # agent_args MODE
	local a=(--node-name $NODE --server http://127.0.0.1:6443 --bpffs "$BPFFS" --cgroup-root "$CG"
		--metrics-listen "127.0.0.1:$MPORT" --log-level "${AGENT_LOG_LEVEL:-warn}")
	case $1 in
	bpf-sock) a+=(--dataplane bpf) ;;
	bpf-pkt) a+=(--dataplane bpf --run-pods --node-ip 198.18.251.1 --state-dir "$STATE"
		--cni-conf-dir "$tmp/net.d" --cni-bin-dir "$BIN") ;;
	*) a+=(--dataplane "$1" --cluster-cidr $CLUSTER_CIDR) ;;
	esac
	printf '%s\n' "${a[@]}"
}

# The per-packet bpf row: the client netns is registered with the agent as a
# pod that opted out of the socket LB (what the CNI plugin does at ADD for a
# pod annotated sluice.io/socket-lb: "off"), so tc_pod on its host-side veth
# (nc0) translates ClusterIP traffic per packet; the client runs outside the
# node cgroup, so the socket hooks never see it.
agent_sock() { # agent_sock JSON: one request on the agent's endpoint socket
	printf '%s\n' "$1" | in_ns python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(sys.stdin.buffer.read())
print(s.recv(4000).decode().strip())' "$STATE/agent.sock"
}
register_pod() {
	local i
	for ((i = 0; i < 600; i++)); do [[ -S $STATE/agent.sock ]] && break; sleep 0.05; done
	printf '{"op":"add","containerID":"modes-bench","ifname":"c0","netns":"/run/netns/%s","ip":"198.18.250.2","hostIfname":"nc0","args":"SLUICE_SOCKET_LB=off"}\n' "$CLI" |
		in_ns python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(sys.stdin.buffer.read())
print(s.recv(4000).decode().strip())' "$STATE/agent.sock" >"$tmp/register.out" 2>&1
}

agent_stop() {
	local i
	[[ -n $AGENT_PID ]] || return 0
	# The agent is fail-static (rules stay when it dies); --cleanup removes them.
	kill -KILL "$AGENT_PID" 2>/dev/null || true
	for ((i = 0; i < 200; i++)); do kill -0 "$AGENT_PID" 2>/dev/null || break; sleep 0.05; done
	AGENT_PID=
	agent_cleanup
	rm -rf "${STATE:?}"/*
}
# The pod goes away as at CNI DEL: the agent detaches tc_pod from its veth
# (--cleanup leaves pod veths to the CNI plugin, which deletes them).
unregister_pod() {
	agent_sock '{"op":"del","containerID":"modes-bench","ifname":"c0","netns":"/run/netns/'"$CLI"'"}' >>"$tmp/register.out" 2>&1 || true
}

# leftovers: what any dataplane left in the node netns (must be nothing).
leftovers() {
	local n=0
	n=$((n + $(in_ns iptables-save 2>/dev/null | grep -c '^:KUBE-\|^-A KUBE-' || true)))
	n=$((n + $(in_ns iptables-legacy-save 2>/dev/null | grep -c '^:KUBE-\|^-A KUBE-' || true)))
	n=$((n + $(in_ns nft list ruleset 2>/dev/null | grep -c 'table ip kube-proxy' || true)))
	n=$((n + $(in_ns tc filter show dev nc0 ingress 2>/dev/null | grep -c bpf || true)))
	echo $n
}

# --- one mode at one configuration -----------------------------------------------------
declare -A UNAVAILABLE=() # mode -> reason (the agent refused it)
declare -A TIMEDOUT=()    # mode -> config where programming timed out
UPD_NEXT=0

run_mode() { # run_mode REP CFG N E MODE
	local rep=$1 cfg=$2 n=$3 e=$4 mode=$5 tags pos cg=cg j0 j1 s0 s1
	local first last
	tags="rep=$rep cfg=$cfg mode=$mode"
	first=$(svc_ip 0)
	last=$(svc_ip $((n - 1)))
	if [[ -n ${UNAVAILABLE[$mode]:-} ]]; then return 0; fi
	if [[ -n ${TIMEDOUT[$mode]:-} ]]; then
		emit "$tags kind=skipped reason=timed-out-at-${TIMEDOUT[$mode]}"
		return 0
	fi
	in_ns conntrack -F >/dev/null 2>&1 || true
	[[ $mode == bpf-pkt ]] && cg=nocg
	if [[ $mode != direct ]]; then
		local mem0
		mem0=$(meminfo)
		mapfile -t args < <(agent_args "$mode")
		: >"$tmp/agent.log"
		rm -rf "${STATE:?}"/*
		REG_PID=
		if [[ $mode == bpf-pkt ]]; then
			register_pod &
			REG_PID=$!
		fi
		record $tags kind=program -- in_cg $cg "$BIN/connbench" wait --targets "$first:80,$last:80" \
			--netns "/run/netns/$CLI" --timeout "$STEP_TIMEOUT" --pidfile "$tmp/agent.pid" \
			--child-log "$tmp/agent.log" --child-cgroup "$CGROOT" -- \
			nsenter --net="/run/netns/$NS" "$BIN/sluice-agent" "${args[@]}"
		AGENT_PID=$(cat "$tmp/agent.pid" 2>/dev/null || true)
		if [[ -n ${LOGDIR:-} ]]; then mkdir -p "$LOGDIR"; cp "$tmp/agent.log" "$LOGDIR/agent-$cfg-$mode-$rep.log"; cp "$tmp/register.out" "$LOGDIR/" 2>/dev/null || true; fi
		if [[ -n $REG_PID ]]; then wait "$REG_PID" || true; fi
		if ! kill -0 "$AGENT_PID" 2>/dev/null; then
			# The agent refused the mode: a row "unavailable" with its reason.
			local why
			why=$(grep -m1 -E 'not built|cannot start|error|unavailable|IP_VS|ipvs' "$tmp/agent.log" |
				sed -E 's/^[0-9TZ:.-]+ +[A-Z]+ +[a-z]+: *//' | tr -d '|' | cut -c1-300)
			[[ -n $why ]] || why=$(tail -1 "$tmp/agent.log" | cut -c1-300)
			UNAVAILABLE[$mode]=${why:-the agent exited without a message}
			emit "$tags kind=unavailable reason=${UNAVAILABLE[$mode]// /\~}"
			log "$mode unavailable: ${UNAVAILABLE[$mode]}"
			# Not a benchmark failure: the row says why.
			if ((${#failures[@]})); then unset 'failures[${#failures[@]}-1]'; fi
			sed -i "/ mode=$mode kind=program /d" "$raw"
			AGENT_PID=
			agent_cleanup
			return 0
		fi
		if [[ $LAST == *timeout=1* || -z $LAST ]]; then
			TIMEDOUT[$mode]=$cfg
			emit "$tags kind=timeout step=program limit_s=$STEP_TIMEOUT"
			# A result (reported as a timeout), not a failed run.
			if ((${#failures[@]})); then unset 'failures[${#failures[@]}-1]'; fi
			log "$mode: programming $cfg did not finish within ${STEP_TIMEOUT}s; skipped from here on"
			agent_stop
			return 0
		fi
		if [[ $mode == bpf-pkt ]] && ! grep -q '"ok":true' "$tmp/register.out"; then
			failures+=("$tags: registering the client netns failed: $(head -c 200 "$tmp/register.out")")
		fi
		# The agent's view, once it is idle: its first sync and programming call.
		local i
		for ((i = 0; i < 100; i++)); do
			metrics >"$tmp/m.txt" 2>/dev/null || : >"$tmp/m.txt"
			[[ $(metric sluice_agent_sync_pending "$tmp/m.txt") == 0 ]] && break
			sleep 0.2
		done
		emit "$tags kind=agent sync_count=$(metric sluice_agent_sync_duration_seconds_count "$tmp/m.txt") sync_sum_s=$(metric sluice_agent_sync_duration_seconds_sum "$tmp/m.txt") program_call_s=$(metric sluice_agent_dataplane_last_program_seconds "$tmp/m.txt") rules=$(metric sluice_agent_dataplane_rules "$tmp/m.txt")"
		sleep 0.3
		local memlock
		memlock=$(for f in "$BPFFS"/sluice/$NODE/*; do bpftool map show pinned "$f" 2>/dev/null || true; done |
			awk '{ for (i = 1; i <= NF; i++) if ($i == "memlock") { v = $(i + 1); sub(/B$/, "", v); s += v } } END { print s + 0 }')
		# Kernel memory the mode added (other tenants' churn included: noisy).
		emit "$tags kind=mem $(printf '%s\n%s\n' "$mem0" "$(meminfo)" | awk 'NR == 1 { for (i = 1; i <= NF; i++) { split($i, kv, "="); a[kv[1]] = kv[2] } }
			NR == 2 { for (i = 1; i <= NF; i++) { split($i, kv, "="); printf "%s=%d ", kv[1], kv[2] - a[kv[1]] } }') rss_kb=$(awk '/^VmRSS/ { print $2 }' /proc/$AGENT_PID/status 2>/dev/null) bpf_memlock=$memlock"
		# Where the targets sit in iptables' KUBE-SERVICES (its cost is linear in it).
		if [[ $mode == iptables ]]; then
			in_ns iptables-save -t nat 2>/dev/null | awk '$1 == "-A" && $2 == "KUBE-SERVICES"' >"$tmp/kubesvc.txt"
			emit "$tags kind=position rules=$(wc -l <"$tmp/kubesvc.txt") first_at=$(grep -n -m1 -- "-d $first/32" "$tmp/kubesvc.txt" | cut -d: -f1) last_at=$(grep -n -m1 -- "-d $last/32" "$tmp/kubesvc.txt" | cut -d: -f1)"
		fi
	fi

	# Data plane runs.
	local rt=() rnd_t="" rnd_u="" k
	for k in "${RANDOM_IDX[@]}"; do
		rnd_t+="${rnd_t:+,}$(svc_ip "$k"):80"
		rnd_u+="${rnd_u:+,}$(svc_ip "$k"):53"
	done
	if [[ $mode == direct ]]; then
		# Straight to the backends of the same Services.
		be() { local s="" x; for x in "$@"; do s+="${s:+,}$(be_ips "$x" "$e" | sed 's/,/:8080,/g'):8080"; done; echo "$s" | cut -d, -f1-256; }
		T_first=$(be 0)
		T_last=$(be $((n - 1)))
		T_rnd=$(be "${RANDOM_IDX[@]}")
		U_rnd=$T_rnd
	else
		T_first=$first:80
		T_last=$last:80
		T_rnd=$rnd_t
		U_rnd=$rnd_u
	fi
	local run target proto loop extra
	for run in crr-closed-first crr-closed-last crr-closed-random crr-open-random rr-closed-random udp-closed-random; do
		IFS=- read -r proto loop pos <<<"$run"
		case $pos in first) target=$T_first ;; last) target=$T_last ;; *) target=$T_rnd ;; esac
		[[ $proto == udp ]] && target=$U_rnd
		if [[ $loop == closed ]]; then extra=(--conns "$CONNS"); else extra=(--rate "$OPEN_RATE" --max-inflight 4000); fi
		read -r ctA ctB ctC < <(ct_stats)
		j0=$(cpu_jiffies)
		s0=$(srv_ticks)
		record $tags kind=run run=$run -- in_cli $cg taskset -c "$CLIENT_CPU" "$BIN/connbench" "$loop" \
			--proto "$proto" --targets "$target" --sources "$SOURCES" "${extra[@]}" \
			--seconds "$RUN_SECONDS" --warmup $WARMUP --tag "$cfg-$mode-r$rep"
		j1=$(cpu_jiffies)
		s1=$(srv_ticks)
		read -r ctA1 ctB1 ctC1 < <(ct_stats)
		# CPU per request, two ways, each over the whole run (warm-up and tail
		# included) and the requests completed in it (rate x run time):
		# host: system+irq+softirq of every CPU from /proc/stat (other tenants
		# of the machine included); proc: the client's and the server's own
		# user+system time (softirq work done in their context included,
		# other tenants excluded).
		local done_n ccpu hz
		hz=$(getconf CLK_TCK)
		read -r done_n ccpu < <(awk -v l="$LAST" -v s="$RUN_SECONDS" -v w="$WARMUP" 'BEGIN { n = split(l, a, " "); for (i = 1; i <= n; i++) { split(a[i], kv, "="); if (kv[1] == "rate") r = kv[2]; if (kv[1] == "cpu_s") c = kv[2] } print r * (s + w), c + 0 }')
		emit "$tags kind=cpu run=$run jiffies=$((j1 - j0)) hz=$hz requests=$done_n host_us_per_req=$(awk -v j=$((j1 - j0)) -v hz="$hz" -v n="$done_n" 'BEGIN { if (n > 0) printf "%.2f", j / hz * 1e6 / n; else print "nan" }') proc_us_per_req=$(awk -v c="$ccpu" -v s=$((s1 - s0)) -v hz="$hz" -v n="$done_n" 'BEGIN { if (n > 0) printf "%.2f", (c + s / hz) * 1e6 / n; else print "nan" }') ct_insert_failed=$((ctA1 - ctA)) ct_drop=$((ctB1 - ctB)) ct_early_drop=$((ctC1 - ctC))"
	done

	# Single update: one new Service with the others present.
	if [[ $mode != direct ]]; then
		local s
		for ((s = 0; s < UPDATE_SAMPLES; s++)); do
			local idx=$((UPD_BASE + UPD_NEXT))
			UPD_NEXT=$((UPD_NEXT + 1))
			metrics >"$tmp/m0.txt" 2>/dev/null || : >"$tmp/m0.txt"
			record $tags kind=update -- in_cg $cg "$BIN/connbench" update --url "$URL" \
				--svc-base $SVC_BASE --be-base $BE_BASE --be-span $BE_SPAN --endpoints "$e" \
				--first "$idx" --node $NODE --netns "/run/netns/$CLI" --timeout "$STEP_TIMEOUT" \
				${AFF:+--affinity}
			sleep 0.2
			metrics >"$tmp/m1.txt" 2>/dev/null || : >"$tmp/m1.txt"
			emit "$tags kind=updagent program_call_ms=$(awk -v v="$(metric sluice_agent_dataplane_last_program_seconds "$tmp/m1.txt")" 'BEGIN { if (v == "") print "nan"; else printf "%.3f", v * 1000 }') syncs=$(($(metric sluice_agent_sync_duration_seconds_count "$tmp/m1.txt" || echo 0) - $(metric sluice_agent_sync_duration_seconds_count "$tmp/m0.txt" || echo 0))) sync_ms=$(awk -v a="$(metric sluice_agent_sync_duration_seconds_sum "$tmp/m0.txt")" -v b="$(metric sluice_agent_sync_duration_seconds_sum "$tmp/m1.txt")" 'BEGIN { if (a == "" || b == "") print "nan"; else printf "%.3f", (b - a) * 1000 }')"
			if [[ $LAST == *timeout=1* ]]; then break; fi
		done
		if [[ $mode == bpf-pkt ]]; then unregister_pod; fi
		agent_stop
		local lo
		lo=$(leftovers)
		((lo == 0)) || failures+=("$tags: $lo rules/filters left in the node netns after --cleanup")
	fi
}

# --- measurements ------------------------------------------------------------------
# REPORT_FROM=raw.txt (development): no measurements, the report from those lines.
[[ -z ${REPORT_FROM:-} ]] || { cp "$REPORT_FROM" "$raw"; CONFIGS_RUN=""; }
# The run's own facts travel with its lines (a regenerated report keeps them).
[[ -n ${REPORT_FROM:-} ]] || emit "rep=0 cfg=- mode=- kind=meta date=${m_date// /\~} commit=$m_commit load=${m_load// /\~} profile=$PROFILE"
for cfg in ${CONFIGS_RUN-$CONFIGS}; do
	IFS=: read -r n e aff <<<"$cfg"
	AFF=${aff:+1}
	log "configuration $cfg: $n Services x $e endpoints${AFF:+, ClientIP affinity}; fresh API server"
	start_control
	post /api/v1/nodes '{"metadata":{"name":"'$NODE'"},"status":{"addresses":[{"type":"InternalIP","address":"198.18.251.1"}]}}'
	# Targets: the first, the last and NRANDOM random Services (UDP ports on those).
	# (a fixed seed: the same Services in every run of a configuration)
	mapfile -t RANDOM_IDX < <(awk -v n="$n" -v k=$NRANDOM 'BEGIN { srand(42); if (k > n) k = n
		while (c < k) { x = int(rand() * n); if (!(x in s)) { s[x] = 1; print x; c++ } } }')
	udp_list=$(printf '%s\n' 0 $((n - 1)) "${RANDOM_IDX[@]}" | sort -un | paste -sd,)
	record rep=1 cfg=$cfg mode=api kind=load -- "$BIN/connbench" load --url "$URL" --svc-base $SVC_BASE \
		--be-base $BE_BASE --be-span $BE_SPAN --services "$n" --endpoints "$e" --node $NODE \
		--udp-services "$udp_list" --clients 4 ${AFF:+--affinity}
	UPD_BASE=$((n + 100))
	UPD_NEXT=0
	if [[ -n ${HOLD:-} ]]; then # debugging: keep the topology up for a while
		echo "HOLD: CLI=$CLI NS=$NS SRV=$SRV CG=$CG URL=$URL BPFFS=$BPFFS" >&2
		sleep "$HOLD"
	fi
	for ((rep = 1; rep <= REPS; rep++)); do
		order=$(printf '%s\n' $MODES | shuf | paste -sd' ')
		log "$cfg round $rep: $order"
		for mode in $order; do
			run_mode "$rep" "$cfg" "$n" "$e" "$mode"
		done
	done
	stop_pid "$CONTROL_PID"
done
elapsed=$(($(date +%s) - t_start))
log "measurements done in ${elapsed}s"
m_end_load=$(cut -d' ' -f1-3 /proc/loadavg)
if [[ -z ${REPORT_FROM:-} ]]; then
	emit "rep=0 cfg=- mode=- kind=metaend elapsed=$elapsed end_load=${m_end_load// /\~}"
else
	meta() { awk -v k="$1" -v f="$2" '$0 ~ " kind=" k "( |$)" { for (i = 1; i <= NF; i++) if (index($i, f "=") == 1) { v = substr($i, length(f) + 2); gsub(/~/, " ", v); print v } }' "$raw" | sed -n 1p; }
	m_date=$(meta meta date)
	m_commit=$(meta meta commit)
	m_load=$(meta meta load)
	PROFILE=$(meta meta profile)
	elapsed=$(meta metaend elapsed)
	m_end_load=$(meta metaend end_load)
fi
cp "$raw" "$OUT/raw.txt.new" && mv "$OUT/raw.txt.new" "$OUT/raw.txt"
# What the agent refused and where programming timed out, from the lines.
while read -r m r; do UNAVAILABLE[$m]=${r//\~/ }; done < <(awk '/ kind=unavailable / { for (i = 1; i <= NF; i++) { if ($i ~ /^mode=/) m = substr($i, 6); if ($i ~ /^reason=/) r = substr($i, 8) } print m, r }' "$raw")
while read -r m c; do TIMEDOUT[$m]=$c; done < <(awk '/ kind=timeout / { for (i = 1; i <= NF; i++) { if ($i ~ /^mode=/) m = substr($i, 6); if ($i ~ /^cfg=/) c = substr($i, 5) } if (!(m in seen)) print m, c; seen[m] = 1 }' "$raw")

# --- report --------------------------------------------------------------------------
# Every statistic in one awk pass (a few thousand awk runs would take minutes
# on a loaded 2-core VM): per (cfg, mode, kind, run) and per (cfg, mode,
# kind, all runs) and field: median min max q1 q3 n sum runs. Values "",
# "nan" and -1 (connbench's "none") are left out.
awk '
	function q(p,   h, l) { h = (m - 1) * p + 1; l = int(h); return l >= m ? v[m] : v[l] + (h - l) * (v[l + 1] - v[l]) }
	{
		delete kv
		for (i = 1; i <= NF; i++) { p = index($i, "="); if (p) kv[substr($i, 1, p - 1)] = substr($i, p + 1) }
		run = ("run" in kv) ? kv["run"] : "-"
		for (f in kv) {
			if (f == "rep" || f == "cfg" || f == "mode" || f == "kind" || f == "run" || f == "tag" || f == "proto") continue
			x = kv[f]
			if (x == "" || x == "nan" || x == "-1.000" || x == "-1") continue
			k1 = kv["cfg"] "|" kv["mode"] "|" kv["kind"] "|" run "|" f
			k2 = kv["cfg"] "|" kv["mode"] "|" kv["kind"] "|*|" f
			L[k1] = (k1 in L) ? L[k1] " " x : x
			if (run != "-") L[k2] = (k2 in L) ? L[k2] " " x : x
		}
	}
	END {
		for (k in L) {
			m = split(L[k], v, " ")
			for (i = 2; i <= m; i++) { t = v[i]; j = i - 1; while (j > 0 && v[j] + 0 > t + 0) { v[j + 1] = v[j]; j-- } v[j + 1] = t }
			s = 0; runs = v[1]; for (i = 1; i <= m; i++) { s += v[i]; if (i > 1) runs = runs ";" v[i] }
			print k, q(0.5), v[1], v[m], q(0.25), q(0.75), m, s, runs
		}
	}' "$raw" >"$tmp/stats.txt"
declare -A S=()
while read -r k rest; do S[$k]=$rest; done <"$tmp/stats.txt"
# stat FIELD SELECTORS...: "median min max q1 q3 n sum runs"; selectors cfg=, mode=, kind=, run=
# (run=* = all runs together; no run= = lines without one).
stat() {
	local f=$1 c="" m="" k="" r="-" a
	shift
	for a in "$@"; do
		case $a in cfg=*) c=${a#cfg=} ;; mode=*) m=${a#mode=} ;; kind=*) k=${a#kind=} ;; run=*) r=${a#run=} ;; esac
	done
	echo "${S["$c|$m|$k|$r|$f"]:-nan nan nan nan nan 0 0 -}"
}
med() { local x; x=$(stat "$@"); echo "${x%% *}"; }
medq() { # medq FIELD SELECTORS...: the median into REPLY, without a subshell
	local f=$1 c="" m="" k="" r="-" a x
	shift
	for a in "$@"; do
		case $a in cfg=*) c=${a#cfg=} ;; mode=*) m=${a#mode=} ;; kind=*) k=${a#kind=} ;; run=*) r=${a#run=} ;; esac
	done
	x=${S["$c|$m|$k|$r|$f"]:-nan}
	REPLY=${x%% *}
}
fmt() { # fmt VALUE [FORMAT]
	if [[ -z $1 || $1 == nan ]]; then echo "n/a"; else LC_ALL=C printf "${2:-%.1f}\n" "$1"; fi
}
# cell FORMAT FIELD SELECTORS...: "median (min-max)" or n/a
cell() {
	local f=$1 md mn mx q1 q3 n rest
	shift
	read -r md mn mx q1 q3 n rest < <(stat "$@")
	if ((n == 0)); then echo "n/a"; elif ((n == 1)); then LC_ALL=C printf "$f\n" "$md"; else LC_ALL=C printf "$f ($f-$f)\n" "$md" "$mn" "$mx"; fi
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "nan" || b == "nan" || a == "" || b == "" || b == 0) print "nan"; else printf "%.3f\n", a / b }'; }
yes_no() { case $1 in 1) echo "**met**" ;; 0) echo "**missed**" ;; *) echo "not measured" ;; esac; }

ALL_MODES="direct bpf-sock bpf-pkt iptables nftables ipvs"
mode_label() {
	case $1 in
	direct) echo "direct (no service translation)" ;;
	bpf-sock) echo "bpf, socket LB" ;;
	bpf-pkt) echo "bpf, per-packet only (socket LB off)" ;;
	*) echo "$1" ;;
	esac
}
# mode_state MODE CFG: "" if measured, else why not
mode_state() {
	local m=$1 c=$2
	[[ " $MODES " == *" $m "* ]] || { echo "not in MODES"; return; }
	if [[ -n ${UNAVAILABLE[$m]:-} ]]; then
		if [[ ${UNAVAILABLE[$m]} == *"not built"* ]]; then echo "not built: ${UNAVAILABLE[$m]}"; else echo "unavailable: ${UNAVAILABLE[$m]}"; fi
		return
	fi
	if [[ $(stat limit_s cfg="$c" mode="$m" kind=timeout | cut -d' ' -f6) != 0 ]]; then echo "timeout: programming took more than $(stat limit_s cfg="$c" mode="$m" kind=timeout | cut -d' ' -f1)s"; return; fi
	if [[ $(stat reason cfg="$c" mode="$m" kind=skipped | cut -d' ' -f6) != 0 ]]; then echo "skipped: programming timed out at ${TIMEDOUT[$m]}"; return; fi
	echo ""
}
# The scaling series: E=10 without affinity, by N.
SERIES=$(for c in $CONFIGS; do [[ $c =~ ^[0-9]+:10$ ]] && echo "${c%%:*}"; done | sort -n | paste -sd' ')
top_n=${SERIES##* }
first_n=${SERIES%% *}

csv=$OUT/modes.csv
# States: why a mode has no figures at a configuration ("" = measured).
: >"$tmp/states.txt"
for c in $CONFIGS; do
	for m in $ALL_MODES; do printf '%s\t%s\t%s\n' "$c" "$m" "$(mode_state "$m" "$c")" >>"$tmp/states.txt"; done
done
{
	echo "config,services,endpoints,affinity,mode,kind,run,metric,median,min,max,q1,q3,n,runs"
	awk -F'\t' '$3 != "" { split($1, p, ":"); gsub(/,/, ";", $3); printf "%s,%s,%s,%s,%s,status,-,%s,,,,,,0,\n", $1, p[1], p[2], p[3] == "aff" ? "clientip" : "", $2, $3 }' "$tmp/states.txt"
	awk '{ split($1, k, "|"); if (k[4] == "*" || k[3] == "unavailable" || k[3] == "skipped") next
		split(k[1], p, ":")
		printf "%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s\n", k[1], p[1], p[2], p[3] == "aff" ? "clientip" : "", k[2], k[3], k[4], k[5], $2, $3, $4, $5, $6, $7, $9 }' "$tmp/stats.txt" | sort -t, -k2,2n -k3,3n -k4,4 -k5,5 -k6,6 -k7,7 -k8,8
} >"$csv"

# --- plots ---------------------------------------------------------------------------
pd=$tmp/plot
mkdir -p "$pd"
series_dat() { # series_dat FILE FIELD SELECTORS...: one row per N, one column per mode
	local f=$1 n m
	shift
	{
		echo "# services $ALL_MODES"
		for n in $SERIES; do
			printf '%s' "$n"
			for m in $ALL_MODES; do medq "$@" cfg="$n:10" mode="$m"; printf ' %s' "$REPLY"; done
			echo
		done
	} >"$pd/$f"
}
series_dat rate.dat rate kind=run run=crr-closed-random
series_dat rate_rr.dat rate kind=run run=rr-closed-random
series_dat rate_udp.dat rate kind=run run=udp-closed-random
series_dat sync.dat all_ok_s kind=program
series_dat upd.dat e2e_ms kind=update
series_dat memlock.dat bpf_memlock kind=mem
series_dat slab.dat Slab_kb kind=mem
series_dat vmalloc.dat VmallocUsed_kb kind=mem
series_dat cpu.dat proc_us_per_req kind=cpu run=crr-open-random
{
	echo "# mode p50 p99 p999 conn_p50 conn_p99 conn_p999 (open loop, $top_n Services)"
	i=0
	for m in $ALL_MODES; do
		echo "$i \"$m\" $(med p50_ms cfg="$top_n:10" mode="$m" kind=run run=crr-open-random) $(med p99_ms cfg="$top_n:10" mode="$m" kind=run run=crr-open-random) $(med p999_ms cfg="$top_n:10" mode="$m" kind=run run=crr-open-random) $(med conn_p50_ms cfg="$top_n:10" mode="$m" kind=run run=crr-open-random) $(med conn_p99_ms cfg="$top_n:10" mode="$m" kind=run run=crr-open-random) $(med conn_p999_ms cfg="$top_n:10" mode="$m" kind=run run=crr-open-random)"
		i=$((i + 1))
	done
} >"$pd/lat.dat"
png_note=""
if command -v gnuplot >/dev/null; then
	if ! gnuplot -e "dir='$pd'; out='$OUT'; xmin=$(awk -v n="$first_n" 'BEGIN { print n / 2 }'); xmax=$((top_n * 2)); title='$m_nproc x $m_cpu (shared VM, load $m_load), $m_date, medians of $REPS'" \
		tools/bench/modes.gnuplot 2>"$tmp/gnuplot.log"; then
		png_note="(plots failed: $(tail -2 "$tmp/gnuplot.log" | tr '\n' ' '))"
		log "$png_note"
	fi
else
	png_note="(no plots: gnuplot not installed; the Debian package is gnuplot-nox)"
fi

# --- goals ---------------------------------------------------------------------------
RATE() { med rate cfg="$1" mode="$2" kind=run run="${3:-crr-closed-random}"; }
CPUR() { med proc_us_per_req cfg="$1" mode="$2" kind=cpu run="${3:-crr-open-random}"; }
within() { awk -v a="$1" -v b="$2" -v t="$3" 'BEGIN { if (a == "nan" || b == "nan" || a == "" || b == "") print "x"; else { d = a / b - 1; if (d < 0) d = -d; print (d <= t) ? 1 : 0 } }'; }
atleast() { awk -v a="$1" -v b="$2" -v k="$3" 'BEGIN { if (a == "nan" || b == "nan" || a == "" || b == "") print "x"; else print (a >= k * b) ? 1 : 0 }'; }
below() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "nan" || a == "") print "x"; else print (a < b) ? 1 : 0 }'; }

goal_flat() { # goal_flat MODE: "met figure"
	local m=$1 ok=1 fig="" r0 r n
	r0=$(RATE "$first_n:10" "$m")
	for n in $SERIES; do
		r=$(RATE "$n:10" "$m")
		fig+="${fig:+, }$n: $(fmt "$r" %.0f)"
		case $(within "$r" "$r0" 0.05) in 1) ;; 0) ok=0 ;; *) ok=x ;; esac
		[[ $ok == x ]] && break
	done
	[[ $top_n -ge 50000 ]] || fig+=" (this profile stops at $top_n)"
	echo "$ok|$fig"
}
g_flat_sock=$(goal_flat bpf-sock)
g_flat_pkt=$(goal_flat bpf-pkt)
one_ipt=$(RATE "$first_n:10" iptables)
g_small_sock=$(within "$(RATE "$first_n:10" bpf-sock)" "$one_ipt" 0.05)
g_small_pkt=$(within "$(RATE "$first_n:10" bpf-pkt)" "$one_ipt" 0.05)
# Beating iptables is not a miss of "within 5%".
[[ $(atleast "$(RATE "$first_n:10" bpf-sock)" "$one_ipt" 1) == 1 ]] && g_small_sock=1
[[ $(atleast "$(RATE "$first_n:10" bpf-pkt)" "$one_ipt" 1) == 1 ]] && g_small_pkt=1
TEN=10000
[[ " $SERIES " == *" 10000 "* ]] || TEN=$top_n
# connections per CPU-second = 1e6 / us per request (client + server CPU, fixed offered rate)
cps() { awk -v u="$1" 'BEGIN { if (u == "nan" || u == "" || u <= 0) print "nan"; else printf "%.0f", 1e6 / u }'; }
c_ipt=$(cps "$(CPUR "$TEN:10" iptables)")
c_nft=$(cps "$(CPUR "$TEN:10" nftables)")
c_sock=$(cps "$(CPUR "$TEN:10" bpf-sock)")
c_pkt=$(cps "$(CPUR "$TEN:10" bpf-pkt)")
g_big_pkt=$(atleast "$c_pkt" "$c_ipt" 3)
g_big_sock=$(atleast "$c_sock" "$c_ipt" 3)
g_nft_pkt=$(atleast "$c_pkt" "$c_nft" 1)
g_nft_sock=$(atleast "$c_sock" "$c_nft" 1)
upd_sock=$(med e2e_ms cfg="$top_n:10" mode=bpf-sock kind=update)
upd_pkt=$(med e2e_ms cfg="$top_n:10" mode=bpf-pkt kind=update)
g_upd_sock=$(below "$upd_sock" 10)
g_upd_pkt=$(below "$upd_pkt" 10)
if [[ " $CONFIGS " == *" 50000:10 "* ]]; then FULLC=50000:10; else FULLC=$top_n:10; fi
full_sock=$(med all_ok_s cfg="$FULLC" mode=bpf-sock kind=program)
full_sync=$(med sync_sum_s cfg="$FULLC" mode=bpf-sock kind=agent)
g_full=$(below "$full_sock" 2)
[[ $FULLC == 50000:10 ]] || g_full="x$g_full"
gfmt() { case $1 in 1) echo "**met**" ;; 0) echo "**missed**" ;; x1) echo "met at $top_n (50k not in this profile)" ;; x0) echo "**missed** at $top_n (50k not in this profile)" ;; *) echo "not measured" ;; esac; }

status="all runs completed without errors"
((${#failures[@]})) && status="**${#failures[@]} run(s) had errors** (listed at the end); their figures are not valid"
md=$OUT/README.md
T() { cell "$@"; } # shorthand in tables
{
	echo "# Service dataplanes compared: bpf (socket LB, per-packet), iptables, nftables, IPVS"
	echo
	echo "Measured $m_date on commit \`$m_commit\` in $elapsed s, profile **$PROFILE**. Status: $status."
	echo
	echo "Command: \`$CMDLINE\` (\`make bench-modes\` runs the full profile, \`make bench\` the quick one);"
	echo "CONFIGS=\"$CONFIGS\" MODES=\"$MODES\" REPS=$REPS RUN_SECONDS=$RUN_SECONDS CONNS=$CONNS"
	echo "OPEN_RATE=$OPEN_RATE UPDATE_SAMPLES=$UPDATE_SAMPLES STEP_TIMEOUT=$STEP_TIMEOUT."
	echo
	echo "**Machine:** $m_nproc x $m_cpu, $m_mem, Linux $m_kernel (virtualization: $m_virt)."
	echo "Load average at the start **$m_load**, at the end $m_end_load: this $m_nproc-core VM"
	echo "is shared with other jobs (other build and test sessions ran during this measurement), so"
	echo "absolute figures are low and noisy; modes ran interleaved in a random order each round, so"
	echo "compare modes within a configuration, and read differences under ~10% as noise."
	echo
	echo "**Versions:** $v_ipt; $v_iptl; $v_nft; $v_ct; $v_bpftool; IPVS: $v_ipvs;"
	echo "nf_conntrack_max $CT_MAX. \`perf stat -e instructions\`: $([[ $perf_ok == yes ]] && echo "works here (not used yet)" || echo "not supported on this VM"), so CPU per request is"
	echo "measured as CPU time (below), not instructions."
	echo
	echo "## Goals"
	echo
	echo "| goal | figure (medians) | verdict |"
	echo "|---|---|---|"
	echo "| bpf flat within 5% from 1 to 50k Services (crr conn/s, closed loop, 16 random Services) | socket LB: ${g_flat_sock#*|}; per-packet: ${g_flat_pkt#*|} | socket LB $(gfmt "${g_flat_sock%%|*}"), per-packet $(gfmt "${g_flat_pkt%%|*}") |"
	echo "| at $first_n Service within 5% of iptables (or better) | iptables $(fmt "$one_ipt" %.0f), socket LB $(fmt "$(RATE "$first_n:10" bpf-sock)" %.0f), per-packet $(fmt "$(RATE "$first_n:10" bpf-pkt)" %.0f) conn/s | socket LB $(gfmt "$g_small_sock"), per-packet $(gfmt "$g_small_pkt") |"
	echo "| at $TEN Services >= 3x iptables' connections per CPU-second, and >= nftables' | per CPU-second (client + server CPU at $OPEN_RATE req/s): iptables $(fmt "$c_ipt" %.0f), nftables $(fmt "$c_nft" %.0f), socket LB $(fmt "$c_sock" %.0f), per-packet $(fmt "$c_pkt" %.0f) | 3x iptables: socket LB $(gfmt "$g_big_sock"), per-packet $(gfmt "$g_big_pkt"); >= nftables: socket LB $(gfmt "$g_nft_sock"), per-packet $(gfmt "$g_nft_pkt") |"
	echo "| one Service added at $top_n Services, end to end < 10 ms (iptables, nftables beside) | socket LB $(fmt "$upd_sock" %.1f) ms, per-packet $(fmt "$upd_pkt" %.1f) ms; iptables $(fmt "$(med e2e_ms cfg="$top_n:10" mode=iptables kind=update)" %.1f) ms, nftables $(fmt "$(med e2e_ms cfg="$top_n:10" mode=nftables kind=update)" %.1f) ms | socket LB $(gfmt "$g_upd_sock"), per-packet $(gfmt "$g_upd_pkt")$([[ $top_n -ge 50000 ]] || echo " (at $top_n: 50k not in this profile)") |"
	echo "| ${FULLC%%:*} Services x 10 endpoints programmed from empty < 2 s | agent start to the first and last Service answering: $(fmt "$full_sock" %.2f) s (the agent's own first sync: $(fmt "$full_sync" %.2f) s) | $(gfmt "$g_full") |"
	echo "| ipvs | $(mode_state ipvs "$first_n:10" | sed 's/^$/measured/') | - |"
	echo
	echo "Modes not measured: $(for m in $ALL_MODES; do s=$(mode_state "$m" "$first_n:10"); [[ -n $s && $s != "not in MODES" ]] && printf '%s: %s; ' "$m" "$s"; done)"
	for m in "${!TIMEDOUT[@]}"; do echo "$m: programming timed out (> ${STEP_TIMEOUT}s) at ${TIMEDOUT[$m]}; larger configurations skipped for it."; done
	echo
	echo "## Topology and method"
	echo
	echo "Three network namespaces (everything created and removed by the script):"
	echo "client \`c0\` 198.18.250.2 plus 64 source addresses 198.18.200.1-64 <-> node (\`nc0\`, \`ns0\`,"
	echo "ip_forward, the dataplane under test, \`sluice-agent\` inside it) <-> server, whose netns routes"
	echo "198.18.0.0/17 to lo so one \`connbench serve\` (epoll, TCP and UDP on :8080) answers for all $BE_SPAN"
	echo "backend addresses. Client on CPU $CLIENT_CPU, server on CPU $SERVER_CPU. Services come from"
	echo "\`connbench load\` through \`sluice-control --store memory --controllers none\` (served into the node"
	echo "netns with \`--listen-netns\`): Service i = ClusterIP 198.19.0.10+i, one TCP port 80 -> 8080,"
	echo "E ready endpoints on this node from the shared span (Services share pods); the targeted"
	echo "Services also have UDP 53 -> 8080. Client addresses are inside \`--cluster-cidr $CLUSTER_CIDR\`,"
	echo "so no mode masquerades (pod -> ClusterIP). All modes get the same sysctls (port range,"
	echo "tcp_tw_reuse) and \`conntrack -F\` before each mode."
	echo
	echo "- **direct**: no agent, the client connects straight to the same Services' backend addresses"
	echo "  (no conntrack is even loaded in the node netns): the cost of the topology itself."
	echo "- **bpf, socket LB**: \`--dataplane bpf\`; the client runs in the agent's cgroup, so"
	echo "  \`connect()\`/\`sendmsg()\` are translated before a packet exists; no per-packet NAT."
	echo "- **bpf, per-packet only**: the honest like-for-like row for kube-proxy's pod -> ClusterIP path."
	echo "  The client netns is registered with the agent (\`--run-pods\`, the CNI ADD request on"
	echo "  agent.sock with \`SLUICE_SOCKET_LB=off\`, as for a pod annotated \`sluice.io/socket-lb: \"off\"\`),"
	echo "  so \`tc_pod\` on its host-side veth \`nc0\` does service DNAT + conntrack per packet and the"
	echo "  reverse NAT on replies; the client runs outside the agent's cgroup. (The uplink tc path"
	echo "  serves NodePort/LoadBalancer/externalIPs only, not ClusterIPs, so it is not used.) Its"
	echo "  programming-from-empty wall time also contains that registration and the tc program load."
	echo "- **iptables / nftables / ipvs**: \`--dataplane iptables|nftables|ipvs --cluster-cidr $CLUSTER_CIDR\`,"
	echo "  the kube-proxy rule sets, programmed in the node netns (PREROUTING DNAT, conntrack)."
	echo
	echo "Requests (connbench): **crr** = TCP connect + 32 B request + 64 B response + close (server"
	echo "closes first); **rr** = the same request on kept-alive connections; **udp** = a fresh UDP socket"
	echo "(new source port, new flow) per request. Sources round-robin over 64 addresses. Closed loop:"
	echo "$CONNS in flight; open loop: $OPEN_RATE req/s from a schedule, latency from each request's"
	echo "*intended* start (no coordinated omission). Histograms: log buckets with 64 linear"
	echo "sub-buckets (values within 1.6%). Each run ${RUN_SECONDS} s after ${WARMUP} s warm-up. Targets: the"
	echo "first Service (index 0), the last (index N-1) and 16 random ones (round-robin); for iptables"
	echo "the actual rule positions in KUBE-SERVICES are read back from \`iptables-save\` (section 6)."
	echo
	echo "CPU per request: **proc** = the client's and the server's own user+system time over the"
	echo "run divided by the requests (softirq work done in their context included, other tenants"
	echo "excluded; the dataplane's share is the difference to *direct*); **host** = system+irq+softirq"
	echo "of all CPUs from /proc/stat over the run (the brief's method where perf cannot count), which on"
	echo "this shared VM includes other tenants' kernel time. Conntrack: \`conntrack -S\` deltas in the node netns (insert_failed, drop, early_drop)."
	echo
	awk -v configs="$CONFIGS" -v modes="$ALL_MODES" -v conns="$CONNS" -v reps="$REPS" -v rate="$OPEN_RATE" \
		-v step="$STEP_TIMEOUT" -v samples="$UPDATE_SAMPLES" -f tools/bench/modes-tables.awk \
		"$tmp/states.txt" "$tmp/stats.txt"
	echo "## Plots"
	echo
	echo "![conn/s vs Services](rate.png) ![latency](latency.png)"
	echo
	echo "![sync time](sync.png) ![memory](memory.png) $png_note"
	echo
	# A hand-written reading of one run, printed only with that run's report (a
	# later run must not inherit a stale diagnosis).
	if [[ -f tools/bench/modes-analysis.md && $(sed -n 1p tools/bench/modes-analysis.md) == "for-run: $m_date" ]]; then
		sed 1d tools/bench/modes-analysis.md
		echo
	fi
	if ((${#failures[@]})); then
		echo "## Runs with errors"
		echo
		for f in "${failures[@]}"; do echo "- ${f//|/\\|}"; done
		echo
	fi
	echo "Per-run figures: [modes.csv](modes.csv) (median, min, max, quartiles, every run); raw lines: [raw.txt](raw.txt)."
} >"$md"
log "wrote $md, $csv and the plots in $OUT"
((${#failures[@]} == 0))
