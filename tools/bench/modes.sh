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
set -euo pipefail
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
	CONFIGS=${CONFIGS:-"1:10 1000:10 10000:10 1000:10:aff"}
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
v_ct=$(conntrack --version 2>&1 | head -1)
v_bpftool=$(bpftool version 2>/dev/null | head -1)
v_ipvs=$(grep -qw ip_vs /proc/modules 2>/dev/null && echo "ip_vs loaded" ||
	{ [[ -d /proc/sys/net/ipv4/vs ]] && echo "ip_vs built in" || echo "no ip_vs in this kernel (no /proc/sys/net/ipv4/vs, no module)"; })
perf_ok=no
if command -v perf >/dev/null && perf stat -e instructions -x, -- true 2>&1 | grep -q '^[0-9]'; then
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
read -r s_lo s_hi < <(echo "${SOURCES/-/ }")
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
	local rep=$1 cfg=$2 n=$3 e=$4 mode=$5 tags pos tg cg=cg j0 j1 c0 c1 out prog0 prog1
	local first last rnd
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
				sed 's/^[^]]*] *//' | tr -d '|' | head -c 300)
			[[ -n $why ]] || why=$(tail -1 "$tmp/agent.log" | head -c 300)
			UNAVAILABLE[$mode]=${why:-the agent exited without a message}
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
		memlock=$(for f in "$BPFFS"/sluice/$NODE/*; do bpftool map show pinned "$f" 2>/dev/null; done |
			awk '{ for (i = 1; i <= NF; i++) if ($i == "memlock") { v = $(i + 1); sub(/B$/, "", v); s += v } } END { print s + 0 }')
		emit "$tags kind=mem0 $mem0"
		emit "$tags kind=mem1 $(meminfo) rss_kb=$(awk '/^VmRSS/ { print $2 }' /proc/$AGENT_PID/status 2>/dev/null) bpf_memlock=$memlock"
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
		agent_stop
		local lo
		lo=$(leftovers)
		((lo == 0)) || failures+=("$tags: $lo rules/filters left in the node netns after --cleanup")
	fi
}

# --- measurements ------------------------------------------------------------------
for cfg in $CONFIGS; do
	IFS=: read -r n e aff <<<"$cfg"
	AFF=${aff:+1}
	log "configuration $cfg: $n Services x $e endpoints${AFF:+, ClientIP affinity}; fresh API server"
	start_control
	post /api/v1/nodes '{"metadata":{"name":"'$NODE'"},"status":{"addresses":[{"type":"InternalIP","address":"198.18.251.1"}]}}'
	# Targets: the first, the last and NRANDOM random Services (UDP ports on those).
	mapfile -t RANDOM_IDX < <(if ((n > NRANDOM)); then shuf -i 0-$((n - 1)) -n $NRANDOM --random-source=<(yes); else seq 0 $((n - 1)); fi)
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
cp "$raw" "$OUT/raw.txt"
