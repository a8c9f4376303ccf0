#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Lab benchmark (issue 4): a `sluicectl lab` cluster of NODES nodes (no DNS
# addon) on this machine, measured against references run in the same run.
# Called by tools/bench/run.sh; needs root.
#
#   1. pod start: PODS echo-server pods (readiness GET /ready, periodSeconds 1)
#      created back to back, round-robin over the nodes by spec.nodeName;
#      create → Ready per pod from the timestamps of one watch's events
#      (tools/bench/podstart.py), then delete → gone (DELETED event);
#   2. CNI ADD and DEL: sluice-cni run directly (CNI_* environment, config on
#      stdin) in node n3's netns into a fresh netns per call, CNI_N times each:
#      with agentSocket (n3's own conflist: the ADD waits for the agent to
#      program the endpoint) and without it, against Debian's reference
#      ptp + host-local (containernetworking-plugins) doing the same work,
#      interleaved call by call;
#   3. pod → pod across nodes (n1 → n2: pod veth, n1 (BPF host routing: FIB
#      redirect; or the node's stack), the fabric bridge, n2 (redirect_peer; or
#      the stack), pod veth): iperf3 TCP throughput and
#      connbench request rate (connect + request + response + close, closed
#      loop) against two namespaces joined by one veth pair (the limit) and two
#      namespaces joined through a bridge in a third one (the lab fabric alone:
#      the fair reference), REPS runs each in rotating order;
#   4. scale to datapath: a Deployment of echo-server pods behind a ClusterIP
#      Service, `kubectl scale` 0 -> SCALE_N, time until every node's datapath
#      (the maps its agent pinned, read with `sluicectl -o json service list`)
#      has all SCALE_N endpoints as active backends (tools/bench/scaledp.py);
#      then SCALE_N -> 0 until none is left; SCALE_RUNS runs.
#
# Addresses: the lab's own (198.18.0.0/24, pods 198.18.64.0/18); the
# references use 198.19.240.0/24 (veth), 198.19.241.0/24 (bridge),
# 198.19.250.0/24 (sluice-cni without agent) and 198.19.251.0/24 (ptp). Every
# namespace, process and the lab are removed on exit; runs in a private mount
# namespace, so the lab's bpffs and /run/netns mounts never reach the host's.
# Results: $OUT/lab.md, .csv, .png (OUT defaults to docs/benchmarks).
#
# Knobs (environment): PODS (100), NODES (3), CNI_N (200), REPS (5),
# SECONDS_PER_RUN (5: iperf3 -t and connbench --seconds), CONNS (connbench
# connections in flight, 8), POD_TIMEOUT (seconds for all pods Ready, then
# gone; 300), SCALE_N (100), SCALE_RUNS (3), STEPS (steps to run, "1 2 3 4";
# "3" alone for the pod → pod figures), HOST_ROUTING (the agents' --host-routing,
# bpf or kernel; default bpf), PODFWD (1: with HOST_ROUTING=bpf also the path
# "podfwd": the pod path with the nodes' sl_hr_dev_v1 entries removed for the
# run, so n1 and n2 send by bpf_redirect to the fabric veth's transmit instead
# of bpf_redirect_peer to its peer — what redirect_peer is worth, same lab,
# same run; default 1), TCP (0: no iperf3 runs, request rate only; default 1),
# BPF_STATS (1: kernel.bpf_stats_enabled during step
# 3, restored on exit, and the run time of n1's and n2's programs per request of
# the pod runs; it adds two clock reads per program run to the pod path; default 0),
# FABRIC (the lab's `--fabric`: bridge, the nodes on one bridge; or mesh, the nodes also on
# direct links, a veth pair per pair of nodes, which carry the pod traffic; default bridge;
# with mesh also the path "podbr": the pod path of the same lab sent over the bridge for the
# run, n1's and n2's /32 routes to each other's IP over their link removed and their
# podCIDR routes re-resolved to eth0 — the two fabrics in the same lab and run),
# NPC (1: with HOST_ROUTING=bpf also the path "podct": the pod path with n1's and n2's
# sl_hr_npc_v1 raised for the run, so their pod programs look up the uplink conntrack before
# every redirect_peer, as they did before that mark existed — what skipping it is worth, same
# lab, same run; BPF_STATS=1 then also measures the podct runs; default 0).
#
# Every connbench run also records the machine's CPU time per request (/proc/stat
# deltas: user, system, softirq; idle): machine-wide, so other work on the machine
# lands in it too — meaningful when the run leaves little idle time and the load
# from others is low (m_load), and comparable between paths of the same run.
if [[ -z ${SLUICE_IN_MNTNS:-} ]]; then
	exec env SLUICE_IN_MNTNS=1 unshare --mount --propagation private bash "$0" "$@"
fi
set -euo pipefail
cd "$(dirname "$0")/../.."

BIN=${BIN:-build/bin}
OUT=${OUT:-docs/benchmarks}
PODS=${PODS:-100}
NODES=${NODES:-3}
CNI_N=${CNI_N:-200}
REPS=${REPS:-5}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-5}
CONNS=${CONNS:-8}
POD_TIMEOUT=${POD_TIMEOUT:-300}
SCALE_N=${SCALE_N:-100}
SCALE_RUNS=${SCALE_RUNS:-3}
STEPS=" ${STEPS:-1 2 3 4} "
HOST_ROUTING=${HOST_ROUTING:-bpf}
BPF_STATS=${BPF_STATS:-0}
PODFWD=${PODFWD:-1}
NPC=${NPC:-0}
TCP=${TCP:-1}
FABRIC=${FABRIC:-bridge}
[[ $FABRIC == bridge || $FABRIC == mesh ]] ||
	{ echo "lab bench: FABRIC must be bridge or mesh" >&2; exit 2; }
[[ $HOST_ROUTING == bpf ]] || PODFWD=0
[[ $HOST_ROUTING == bpf ]] || NPC=0
step() { [[ $STEPS == *" $1 "* ]]; }
PY=/usr/bin/python3
KUBECTL=${KUBECTL:-$PWD/build/deps/kubectl-1.20/usr/bin/kubectl}
REFCNI=/usr/lib/cni

[[ $EUID -eq 0 ]] || { echo "lab bench: needs root (network namespaces, the lab)" >&2; exit 2; }
((NODES >= 3)) || { echo "lab bench: NODES must be >= 3 (the CNI part uses n3)" >&2; exit 2; }
for b in sluice-control sluice-agent sluice-cni echo-server connbench sluicectl; do
	[[ -x $BIN/$b ]] || { echo "lab bench: $BIN/$b missing; run make first" >&2; exit 2; }
done
for c in iperf3 jq curl gnuplot nsenter "$PY" "$KUBECTL" "$REFCNI/ptp" "$REFCNI/host-local"; do
	command -v "$c" >/dev/null || { echo "lab bench: $c not found (make deps)" >&2; exit 2; }
done
BIN=$(cd "$BIN" && pwd)

L=bl$$
S=/run/sluice-lab/$L
LAB=(env SLUICE_LAB_BIN="$BIN" KUBECTL="$KUBECTL" LAB_AGENT_FLAGS="--host-routing $HOST_ROUTING"
	bash tools/lab/lab.sh)
mkdir -p "$OUT"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/bench-lab.XXXXXX")
pids=()
netns=()
cleanup() {
	local p n
	for p in "${pids[@]}"; do
		kill "$p" 2>/dev/null && wait "$p" 2>/dev/null || true
	done
	for n in "${netns[@]}"; do ip netns del "$n" 2>/dev/null || true; done
	# CNI namespaces left by an interrupted call loop
	for n in /run/netns/"$L"-c*; do [[ -e $n ]] && ip netns del "${n##*/}" 2>/dev/null; done
	LAB_QUIET=1 LAB_STOP_TIMEOUT=3 "${LAB[@]}" down --name "$L" >/dev/null 2>&1 || true
	[[ -n ${bpf_stats_was:-} ]] && sysctl -qw kernel.bpf_stats_enabled="$bpf_stats_was"
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

raw=$tmp/raw.txt # key=value lines, one per measurement
: >"$raw"
failures=()
t_start=$(date +%s)
log() { printf '[lab %4ss] %s\n' $(($(date +%s) - t_start)) "$*" >&2; }
fail() { log "FAILED: $*"; failures+=("$*"); }
mkns() {
	ip netns add "$1"
	netns+=("$1")
	ip -n "$1" link set lo up
}

# --- machine -----------------------------------------------------------------------------------
m_cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
m_nproc=$(nproc)
m_mem=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
m_kernel=$(uname -r)
m_commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
m_date=$(date -u '+%Y-%m-%d %H:%M UTC')
m_load=$(cut -d' ' -f1-3 /proc/loadavg)
v_iperf=$(iperf3 --version | awk 'NR == 1 { print $2 }')
v_plugins=$(dpkg-query -W -f='${Version}' containernetworking-plugins 2>/dev/null || echo unknown)
log "machine: $m_nproc x $m_cpu, $m_mem, kernel $m_kernel, load $m_load"

# --- the lab -------------------------------------------------------------------------------------
log "lab up --name $L --nodes $NODES --no-dns --fabric $FABRIC"
if ! "${LAB[@]}" up --name "$L" --nodes "$NODES" --no-dns --fabric "$FABRIC" >"$tmp/up.out" 2>&1; then
	cat "$tmp/up.out" >&2
	echo "lab bench: lab up failed" >&2
	exit 1
fi
# shellcheck source=/dev/null
source "$S/config"
KC=("$KUBECTL" --kubeconfig "$S/kubeconfig")
for ((i = 0; i < 240; i++)); do
	r=$("${KC[@]}" get nodes -o jsonpath='{range .items[*]}{.spec.podCIDR}{" "}{range .status.conditions[?(@.type=="Ready")]}{.status}{end}{"\n"}{end}' 2>/dev/null | grep -c ' True$' || true)
	((r == NODES)) && break
	sleep 0.25
done
((r == NODES)) || { echo "lab bench: only $r of $NODES nodes Ready with a podCIDR" >&2; exit 1; }

# --- 1. pod start / delete -----------------------------------------------------------------------
if step 1; then
log "1. pod start: $PODS pods on $NODES nodes"
if "$PY" tools/bench/podstart.py "$API_URL" "$PODS" "$NODES" "$BIN/echo-server" "$POD_TIMEOUT" \
	>"$tmp/podstart.out" 2>"$tmp/podstart.err"; then
	:
else
	fail "pod start: $(tail -1 "$tmp/podstart.err")"
fi
cat "$tmp/podstart.out" >>"$raw"
grep podsummary "$tmp/podstart.out" >&2 || true
fi

# --- 2. CNI ADD / DEL ----------------------------------------------------------------------------
if step 2; then
log "2. CNI ADD/DEL: $CNI_N calls each, sluice-cni with and without agent, ptp + host-local"
CONF=$S/n3/net.d/10-sluice.conflist
[[ -f $CONF ]] || { echo "lab bench: $CONF missing (n3 has no podCIDR?)" >&2; exit 1; }
# A runtime hands a plugin its list entry with the list's name and cniVersion.
jq -c '.plugins[0] + {cniVersion: .cniVersion, name: .name}' "$CONF" >"$tmp/cni-agent.json"
jq -c --arg d "$tmp/ipam-noagent" 'del(.agentSocket, .agentQueueDir) | .name = "benchnoagent"
	| .ipam.subnet = "198.19.250.0/24" | .ipam.gateway = "198.19.250.1" | .ipam.dataDir = $d' \
	"$tmp/cni-agent.json" >"$tmp/cni-noagent.json"
jq -c --arg d "$tmp/ipam-ptp" '{cniVersion: .cniVersion, name: "benchptp", type: "ptp", ipMasq: false,
	mtu: (.mtu // 1500), ipam: {type: "host-local", subnet: "198.19.251.0/24", dataDir: $d,
	routes: [{dst: "0.0.0.0/0"}]}}' "$tmp/cni-agent.json" >"$tmp/cni-ptp.json"
cp "$tmp/cni-agent.json" "$tmp/cni-conf-used.json"

# The call loop runs inside n3's netns (where the agent and its socket live):
# one fresh netns per call, variants interleaved call by call so machine noise
# hits them alike; each ADD and DEL timed by bash's EPOCHREALTIME around the
# plugin's exec (what a runtime pays: fork, exec, the plugin's work).
cat >"$tmp/cni-loop.sh" <<'LOOP'
set -u
tmp=$1 n=$2 L=$3 bin=$4 refcni=$5
declare -A PLUGIN=([agent]=$bin/sluice-cni [noagent]=$bin/sluice-cni [ptp]=$refcni/ptp)
us() { local t=${EPOCHREALTIME/./}; echo "$t"; }
errs=0
for ((i = 0; i < n; i++)); do
	case $((i % 3)) in
	0) order="agent noagent ptp" ;; 1) order="noagent ptp agent" ;; *) order="ptp agent noagent" ;;
	esac
	for v in $order; do
		ns=$L-c$i-$v
		ip netns add "$ns" && ip -n "$ns" link set lo up || { errs=$((errs + 1)); continue; }
		for op in ADD DEL; do
			t0=${EPOCHREALTIME/./}
			env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin CNI_COMMAND=$op CNI_CONTAINERID=bench$i$v \
				CNI_NETNS=/run/netns/$ns CNI_IFNAME=eth0 CNI_PATH="$refcni" \
				CNI_ARGS="IgnoreUnknown=1;K8S_POD_NAMESPACE=bench;K8S_POD_NAME=c$i" \
				"${PLUGIN[$v]}" <"$tmp/cni-$v.json" >"$tmp/cni.out" 2>>"$tmp/cni.stderr"
			rc=$?
			t1=${EPOCHREALTIME/./}
			if ((rc)); then
				errs=$((errs + 1))
				echo "cni $v $op call $i: rc $rc: $(head -c 300 "$tmp/cni.out")" >>"$tmp/cni.stderr"
			fi
			echo "test=cni variant=$v op=$op i=$i rc=$rc ms=$(((t1 - t0) / 1000)).$(printf '%03d' $(((t1 - t0) % 1000)))"
		done
		ip netns del "$ns"
	done
done
exit $((errs > 0))
LOOP
if ! nsenter --net="/run/netns/$L-n3" bash "$tmp/cni-loop.sh" "$tmp" "$CNI_N" "$L" "$BIN" "$REFCNI" \
	>"$tmp/cni.txt"; then
	fail "CNI calls: $(grep -c 'rc=[1-9]' "$tmp/cni.txt") failed; first: $(grep -m1 '^cni ' "$tmp/cni.stderr")"
fi
cat "$tmp/cni.txt" >>"$raw"
fi

# --- 3. pod → pod throughput and request rate ----------------------------------------------------
POD_MTU="?"
if step 3; then
log "3. throughput: pods on n1 and n2, references veth and bridge"
cat >"$tmp/tp.yaml" <<Y
apiVersion: v1
kind: Pod
metadata: {name: tp-server}
spec:
  nodeName: n2
  terminationGracePeriodSeconds: 2
  containers:
  - name: echo
    image: sluice/echo-server
    command: ["$BIN/echo-server", "--name", "tp-server"]
    readinessProbe: {httpGet: {path: /ready, port: 8080}, periodSeconds: 1}
  - name: iperf
    image: iperf3
    command: ["iperf3", "-s", "-p", "5201"]
  - name: connbench
    image: connbench
    command: ["$BIN/connbench", "serve", "--addrs", "\$(POD_IP)", "--port", "8090"]
    env: [{name: POD_IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}]
---
apiVersion: v1
kind: Pod
metadata: {name: tp-client}
spec:
  nodeName: n1
  terminationGracePeriodSeconds: 2
  containers:
  - name: echo
    image: sluice/echo-server
    command: ["$BIN/echo-server", "--name", "tp-client"]
    readinessProbe: {httpGet: {path: /ready, port: 8080}, periodSeconds: 1}
Y
"${KC[@]}" create --validate=false -f "$tmp/tp.yaml" >/dev/null
for ((i = 0; i < 240; i++)); do
	r=$("${KC[@]}" get pods tp-server tp-client -o jsonpath='{range .items[*]}{range .status.conditions[?(@.type=="Ready")]}{.status}{end}{" "}{end}' 2>/dev/null || true)
	[[ $r == "True True " ]] && break
	sleep 0.25
done
[[ $r == "True True " ]] || { echo "lab bench: tp-server/tp-client not Ready: $r" >&2; exit 1; }
POD_IP=$("${KC[@]}" get pod tp-server -o jsonpath='{.status.podIP}')
POD_MTU=$("${LAB[@]}" exec --name "$L" default/tp-client -- cat /sys/class/net/eth0/mtu 2>/dev/null || echo "?")
in_pod() { timeout $((SECONDS_PER_RUN + 30)) "${LAB[@]}" exec --name "$L" default/tp-client -- "$@"; }

if [[ $BPF_STATS == 1 ]]; then
	bpf_stats_was=$(sysctl -n kernel.bpf_stats_enabled)
	sysctl -qw kernel.bpf_stats_enabled=1
fi

# References: A <veth> B, and A <veth> [br0 in BR] <veth> B.
mkns "$L-va"
mkns "$L-vb"
ip -n "$L-va" link add eth0 type veth peer name eth0 netns "$L-vb"
ip -n "$L-va" addr add 198.19.240.1/24 dev eth0
ip -n "$L-vb" addr add 198.19.240.2/24 dev eth0
ip -n "$L-va" link set eth0 up
ip -n "$L-vb" link set eth0 up
mkns "$L-ba"
mkns "$L-bb"
mkns "$L-br"
ip -n "$L-br" link add br0 type bridge
ip -n "$L-br" link set br0 up
for s in a b; do
	ip -n "$L-br" link add "p$s" type veth peer name eth0 netns "$L-b$s"
	ip -n "$L-br" link set "p$s" master br0 up
	ip -n "$L-b$s" link set eth0 up
done
ip -n "$L-ba" addr add 198.19.241.1/24 dev eth0
ip -n "$L-bb" addr add 198.19.241.2/24 dev eth0
# The lab's topology without Sluice: A <veth> R1 (router) <veth> [br0] <veth>
# R2 (router) <veth> B, static routes, the pod MTU on the end veths.
for n in ra r1 rbr r2 rb; do mkns "$L-$n"; done
ip -n "$L-rbr" link add br0 type bridge
ip -n "$L-rbr" link set br0 up
ip -n "$L-ra" link add eth0 type veth peer name pa netns "$L-r1"
ip -n "$L-rb" link add eth0 type veth peer name pb netns "$L-r2"
for r in 1 2; do
	ip -n "$L-rbr" link add "p$r" type veth peer name eth0 netns "$L-r$r"
	ip -n "$L-rbr" link set "p$r" master br0 up
	ip netns exec "$L-r$r" sysctl -qw net.ipv4.ip_forward=1
done
mtu=$([[ $POD_MTU =~ ^[0-9]+$ ]] && echo "$POD_MTU" || echo 1500)
ip -n "$L-ra" link set eth0 mtu "$mtu" up
ip -n "$L-rb" link set eth0 mtu "$mtu" up
ip -n "$L-r1" link set pa mtu "$mtu" up
ip -n "$L-r2" link set pb mtu "$mtu" up
ip -n "$L-r1" link set eth0 up
ip -n "$L-r2" link set eth0 up
ip -n "$L-ra" addr add 198.19.242.2/24 dev eth0
ip -n "$L-r1" addr add 198.19.242.1/24 dev pa
ip -n "$L-r1" addr add 198.19.243.1/24 dev eth0
ip -n "$L-r2" addr add 198.19.243.2/24 dev eth0
ip -n "$L-r2" addr add 198.19.244.1/24 dev pb
ip -n "$L-rb" addr add 198.19.244.2/24 dev eth0
ip -n "$L-ra" route add 198.19.244.0/24 via 198.19.242.1
ip -n "$L-r1" route add 198.19.244.0/24 via 198.19.243.2
ip -n "$L-r2" route add 198.19.242.0/24 via 198.19.243.1
ip -n "$L-rb" route add 198.19.242.0/24 via 198.19.244.1
for s in v:198.19.240.2 b:198.19.241.2 r:198.19.244.2; do
	nsenter --net="/run/netns/$L-${s%%:*}b" iperf3 -s -p 5201 >/dev/null 2>&1 &
	pids+=($!)
	nsenter --net="/run/netns/$L-${s%%:*}b" "$BIN/connbench" serve --addrs "${s#*:}" \
		--port 8090 >/dev/null 2>&1 &
	pids+=($!)
done
sleep 1

# cpu_per_req RATE: the machine's CPU microseconds per request between st0 and st1 (the
# /proc/stat "cpu" lines around a connbench run), by kind. The requests counted are the
# window's (RATE x SECONDS_PER_RUN); the 0.5 s warm-up and connbench's start are in the CPU
# time too, the same for every path.
cpu_per_req() {
	local hz n
	hz=$(getconf CLK_TCK)
	n=$(awk -v r="$1" -v s="$SECONDS_PER_RUN" 'BEGIN { printf "%d", r * s }')
	awk -v hz="$hz" -v n="$n" -v a="${st0[*]}" -v b="${st1[*]}" 'BEGIN {
		split(a, x); split(b, y)
		for (i = 2; i <= 9; i++) d[i] = y[i] - x[i]
		tot = 0; for (i = 2; i <= 9; i++) tot += d[i]
		us = 1e6 / hz / (n ? n : 1)
		printf "cpu_us=%.1f usr_us=%.1f sys_us=%.1f sirq_us=%.1f idle_pct=%.0f",
			(tot - d[5] - d[6]) * us, (d[2] + d[3]) * us, d[4] * us, (d[7] + d[8]) * us,
			tot ? 100 * (d[5] + d[6]) / tot : 0 }'
}

# bpf_snap FILE: run_time_ns / run_cnt of the programs attached in n1 and n2 (tc, TCX, and
# the cgroup hooks of their agents), with BPF_STATS=1.
bpf_snap() {
	[[ $BPF_STATS == 1 ]] || return 1
	local n ids=()
	for n in n1 n2; do
		ids+=($(nsenter --net="/run/netns/$L-$n" bpftool -j net show 2>/dev/null |
			jq -r '.. | objects | select(has("devname")) | (.prog_id // .id // empty)' \
				2>/dev/null))
		# TCX links (tc_hr_fabric) by their pins: this bpftool's `net show` may not list them
		ids+=($(for f in "$S/bpffs/sluice/$n"/sl_hr_link_*; do
			[[ -e $f ]] || continue
			bpftool -j link show pinned "$f" 2>/dev/null | jq -r '.prog_id // empty' || true
		done))
		ids+=($(bpftool -j cgroup tree "$CG/$n" 2>/dev/null |
			jq -r '.. | objects | select(has("id")) | .id' 2>/dev/null))
	done
	# Programs of others come and go while bpftool walks the list (it then fails): retry.
	for _ in 1 2 3 4 5; do
		bpftool -j prog show 2>/dev/null | jq -ec --argjson ids "$(printf '%s\n' "${ids[@]}" |
			sort -un | jq -s .)" '[.[] | select(.id as $i | $ids | index($i)) |
			{id, name, ns: (.run_time_ns // 0), cnt: (.run_cnt // 0)}] |
			select(length > 0)' >"$1" 2>/dev/null && return 0
	done
	echo '[]' >"$1"
}

# bpf_per_req REP RATE PATH: per program (by name, summed over both nodes) the runs and ns per
# request of the pod run between bpf0.json and bpf1.json.
bpf_per_req() {
	"$PY" - "$tmp/bpf0.json" "$tmp/bpf1.json" "$1" "$2" "$SECONDS_PER_RUN" "$3" <<'PYB'
import json, sys
a = {p["id"]: p for p in json.load(open(sys.argv[1]))}
b = json.load(open(sys.argv[2]))
n = float(sys.argv[4]) * float(sys.argv[5]) or 1
by = {}
for p in b:
    o = a.get(p["id"], {"ns": 0, "cnt": 0})
    s = by.setdefault(p["name"], [0, 0])
    s[0] += p["ns"] - o["ns"]
    s[1] += p["cnt"] - o["cnt"]
tot = sum(v[0] for v in by.values())
print("test=bpf path=%s rep=%s total_ns_per_req=%.0f %s" % (sys.argv[6], sys.argv[3], tot / n, " ".join(
    "%s=%.1f/%.0f" % (k, v[1] / n, v[0] / v[1] if v[1] else 0) for k, v in sorted(by.items()) if v[1])))
PYB
}

# hr_peer off|on: remove n1's and n2's sl_hr_dev_v1 entries (kept in $tmp), or put
# them back; the agents write them only when they attach, so they stay as set here.
hr_peer() {
	local n m k
	for n in n1 n2; do
		m=$S/bpffs/sluice/$n/sl_hr_dev_v1
		if [[ $1 == off ]]; then
			bpftool -j map dump pinned "$m" 2>/dev/null |
				jq -r '.[] | .key | if type == "array" then join(" ") else . end' \
					>"$tmp/hrdev-$n" || : >"$tmp/hrdev-$n"
			while read -r k; do
				# shellcheck disable=SC2086
				bpftool map delete pinned "$m" key $k
			done <"$tmp/hrdev-$n"
		else
			while read -r k; do
				# shellcheck disable=SC2086
				bpftool map update pinned "$m" key $k value 1 0 0 0 0 0 0 0 \
					0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0
			done <"$tmp/hrdev-$n"
		fi
	done
}

# hr_npc raise|restore (NPC=1): n1's and n2's sl_hr_npc_v1 (abi/hostroute.h) set to 1 for a
# podct run, or back to what it held before (kept in $tmp). Nothing in the bench makes a
# NodePort connection from a pod, so the programs leave it as set here.
hr_npc() {
	local n m
	for n in n1 n2; do
		m=$S/bpffs/sluice/$n/sl_hr_npc_v1
		if [[ $1 == raise ]]; then
			bpftool -j map lookup pinned "$m" key 0 0 0 0 |
				jq -r '.value | if type == "array" then join(" ") else empty end' \
					>"$tmp/npc-$n" || :
			bpftool map update pinned "$m" key 0 0 0 0 value 1 0 0 0 0 0 0 0
		elif [[ -s $tmp/npc-$n ]]; then
			# shellcheck disable=SC2046
			bpftool map update pinned "$m" key 0 0 0 0 value $(sed 's/0x//g' "$tmp/npc-$n")
		fi
	done
}

# pod_fabric bridge|mesh (FABRIC=mesh): n1 and n2 reach each other's IP, and through it
# each other's podCIDR, over the bridge (eth0) or over their direct link. The podCIDR routes
# are the agents' (protocol 83, via the node IP); a replace re-resolves their device and
# leaves them as the agents want them (same destination and gateway).
pod_fabric() {
	local a b ip cidr
	for a in 1 2; do
		b=$((3 - a)) ip=198.18.0.$((10 + 3 - a))
		cidr=$("${KC[@]}" get node "n$b" -o jsonpath='{.spec.podCIDR}')
		if [[ $1 == bridge ]]; then
			ip -n "$L-n$a" route del "$ip/32" dev "mesh-n$b"
		else
			ip -n "$L-n$a" route add "$ip/32" dev "mesh-n$b"
		fi
		ip -n "$L-n$a" route replace "$cidr" via "$ip" proto 83
	done
}

# hr_peer_sent NODE: packets the node sent to an uplink's peer (sl_hr_dev_v1, all CPUs);
# read around each pod run (hr_peer on rewrites the entries, counters included).
hr_peer_sent() {
	bpftool -j map dump pinned "$S/bpffs/sluice/$1/sl_hr_dev_v1" 2>/dev/null |
		jq '[.[] | (.formatted.values // .values)[] | .value |
			if type == "object" then .peer_packets else 0 end] | add // 0' 2>/dev/null || echo 0
}

# run_tp PATH REP: one iperf3 run and one connbench run over PATH.
run_tp() {
	local path=$1 rep=$2 dst cli out bps p1= p2=
	case $path in
	pod) dst=$POD_IP cli=(in_pod) ;;
	podfwd)
		dst=$POD_IP cli=(in_pod)
		hr_peer off
		;;
	podbr)
		dst=$POD_IP cli=(in_pod)
		pod_fabric bridge
		;;
	podct)
		dst=$POD_IP cli=(in_pod)
		hr_npc raise
		;;
	veth) dst=198.19.240.2 cli=(nsenter --net="/run/netns/$L-va") ;;
	bridge) dst=198.19.241.2 cli=(nsenter --net="/run/netns/$L-ba") ;;
	routed) dst=198.19.244.2 cli=(nsenter --net="/run/netns/$L-ra") ;;
	esac
	if [[ $path == pod* && $HOST_ROUTING == bpf ]]; then
		p1=$(hr_peer_sent n1) p2=$(hr_peer_sent n2)
	fi
	if ((!TCP)); then
		:
	elif out=$("${cli[@]}" timeout $((SECONDS_PER_RUN + 20)) iperf3 -c "$dst" -p 5201 -t "$SECONDS_PER_RUN" -J 2>&1) &&
		bps=$(jq -er '.end.sum_received.bits_per_second' <<<"$out" 2>/dev/null); then
		echo "test=tcp path=$path rep=$rep gbps=$(awk -v b="$bps" 'BEGIN { printf "%.3f", b / 1e9 }')" \
			"retrans=$(jq -r '.end.sum_sent.retransmits // 0' <<<"$out")" | tee -a "$raw" >&2
	else
		fail "iperf3 $path rep $rep: $(tail -c 300 <<<"$out")"
	fi
	# (without BPF_STATS=1 bpf_snap fails: under set -e a failed last command of an && list ends
	# the script, so the lists are closed by || :)
	[[ $path == pod || $path == podct ]] && bpf_snap "$tmp/bpf0.json" || :
	# The /proc/stat samples are taken next to connbench, where it runs (for the pod: after
	# `lab exec` has found and entered it, whose own start is not the path's cost).
	if out=$("${cli[@]}" sh -c 'grep "^cpu " /proc/stat; "$@"; r=$?; grep "^cpu " /proc/stat
		exit $r' sh "$BIN/connbench" closed --targets "$dst:8090" --conns "$CONNS" \
		--seconds "$SECONDS_PER_RUN" --warmup 0.5 --tag "$path$rep" 2>&1) &&
		[[ $out =~ rate=([0-9.]+).*p50_ms=([0-9.]+).*p99_ms=([0-9.]+).*errors=([0-9]+) ]]; then
		read -ra st0 < <(grep '^cpu ' <<<"$out" | head -1)
		read -ra st1 < <(grep '^cpu ' <<<"$out" | tail -1)
		echo "test=rr path=$path rep=$rep rate=${BASH_REMATCH[1]} p50_ms=${BASH_REMATCH[2]}" \
			"p99_ms=${BASH_REMATCH[3]} errors=${BASH_REMATCH[4]}" \
			"$(cpu_per_req "${BASH_REMATCH[1]}")" | tee -a "$raw" >&2
		{ [[ $path == pod || $path == podct ]] && bpf_snap "$tmp/bpf1.json" &&
			bpf_per_req "$rep" "${BASH_REMATCH[1]}" "$path" | tee -a "$raw" >&2; } || :
		((BASH_REMATCH[4] == 0)) || fail "connbench $path rep $rep: ${BASH_REMATCH[4]} errors"
	else
		fail "connbench $path rep $rep: $(tail -c 300 <<<"$out")"
	fi
	if [[ -n $p1 ]]; then
		echo "test=hrdev path=$path rep=$rep n1=$(($(hr_peer_sent n1) - p1))" \
			"n2=$(($(hr_peer_sent n2) - p2))" >>"$raw"
	fi
	[[ $path == podfwd ]] && hr_peer on
	[[ $path == podbr ]] && pod_fabric mesh
	[[ $path == podct ]] && hr_npc restore
	return 0
}
for ((rep = 1; rep <= REPS; rep++)); do
	case $((rep % 4)) in
	1) order="pod veth bridge routed" ;; 2) order="veth bridge routed pod" ;;
	3) order="bridge routed pod veth" ;; *) order="routed pod veth bridge" ;;
	esac
	((PODFWD)) && order=${order/pod/pod podfwd}
	((NPC)) && order=${order/pod/pod podct}
	[[ $FABRIC == mesh ]] && order=${order/pod/pod podbr}
	for p in $order; do run_tp "$p" "$rep"; done
done
# Which way the pod packets went: the host-routing counters (abi/hostroute.h) of both nodes.
for n in n1 n2; do
	if out=$(bpftool -j map dump pinned "$S/bpffs/sluice/$n/sl_hr_ctr_v1" 2>/dev/null); then
		"$PY" -c 'import json, sys
names = ["fib", "peer_pod", "peer_net", "stack"]
tot = {}
for e in json.loads(sys.argv[2]):
    k = e["key"]
    k = int(k[0], 16) if isinstance(k, list) else int(k)
    tot[names[k]] = sum(int.from_bytes(bytes(int(b, 16) for b in v["value"][:8]), "little")
                        if isinstance(v["value"], list) else int(v["value"]["packets"])
                        for v in e["values"])
print("test=hr node=%s %s" % (sys.argv[1], " ".join("%s=%d" % (n, tot.get(n, 0)) for n in names)))' \
			"$n" "$out" | tee -a "$raw" >&2
	else
		echo "test=hr node=$n missing=1" >>"$raw"
	fi
done
fi

# --- 4. scale to datapath ------------------------------------------------------------------------
if step 4; then
log "4. scale to datapath: kubectl scale 0 -> $SCALE_N, $SCALE_RUNS runs"
cat >"$tmp/scale.yaml" <<Y
apiVersion: v1
kind: Namespace
metadata: {name: scale}
---
apiVersion: v1
kind: Service
metadata: {name: sc, namespace: scale}
spec:
  selector: {app: sc}
  ports: [{name: http, port: 80, targetPort: 8080, protocol: TCP}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: sc, namespace: scale}
spec:
  replicas: 0
  selector: {matchLabels: {app: sc}}
  template:
    metadata: {labels: {app: sc}}
    spec:
      terminationGracePeriodSeconds: 2
      containers:
      - name: echo
        image: sluice/echo-server
        command: ["$BIN/echo-server", "--tcp", "0", "--udp", "0"]
        readinessProbe: {httpGet: {path: /ready, port: 8080}, periodSeconds: 1}
Y
"${KC[@]}" create --validate=false -f "$tmp/scale.yaml" >/dev/null
SC_VIP=$("${KC[@]}" -n scale get svc sc -o jsonpath='{.spec.clusterIP}')
if "$PY" tools/bench/scaledp.py "$KUBECTL" "$S/kubeconfig" "$BIN/sluicectl" "$S/bpffs" \
	"$(seq -s, -f 'n%g' 1 "$NODES")" scale sc "$SC_VIP" 80 "$SCALE_N" "$SCALE_RUNS" "$POD_TIMEOUT" \
	>"$tmp/scaledp.out" 2>"$tmp/scaledp.err"; then
	:
else
	fail "scale to datapath: $(tail -1 "$tmp/scaledp.err")"
fi
cat "$tmp/scaledp.out" >>"$raw"
grep -E 'test=(scaleready|scaledp)' "$tmp/scaledp.out" >&2 || true
fi
t_total=$(($(date +%s) - t_start))

# --- report --------------------------------------------------------------------------------------
log "report"
export m_cpu m_nproc m_mem m_kernel m_commit m_date m_load v_iperf v_plugins t_total POD_MTU
export PODS NODES CNI_N REPS SECONDS_PER_RUN CONNS SCALE_N SCALE_RUNS HOST_ROUTING TCP FABRIC
export FAILURES="${failures[*]}"
"$PY" - "$raw" "$tmp" "$OUT" <<'PY'
import os, sys, statistics
raw, tmp, out = sys.argv[1:4]
E = os.environ
rows = []
for line in open(raw):
    kv = dict(p.split("=", 1) for p in line.split() if "=" in p)
    if "test" in kv:
        rows.append(kv)

def pct(v, p):
    v = sorted(v)
    if not v:
        return float("nan")
    k = max(0, min(len(v) - 1, int(round(p * len(v) + 0.5)) - 1))
    return v[k]

def med(v):
    return statistics.median(v) if v else float("nan")

start = [float(r["ms"]) for r in rows if r["test"] == "podstart"]
dele = [float(r["ms"]) for r in rows if r["test"] == "poddelete"]
summ = {r["phase"]: r for r in rows if r["test"] == "podsummary"}
cni = {}
for r in rows:
    if r["test"] == "cni" and r["rc"] == "0":
        cni.setdefault((r["variant"], r["op"]), []).append(float(r["ms"]))
cni_err = sum(1 for r in rows if r["test"] == "cni" and r["rc"] != "0")
tcp, rr, retr, cpu, rrrep = {}, {}, {}, {}, {}
for r in rows:
    if r["test"] == "tcp":
        tcp.setdefault(r["path"], []).append(float(r["gbps"]))
        retr.setdefault(r["path"], []).append(float(r["retrans"]))
    if r["test"] == "rr":
        rr.setdefault(r["path"], []).append((float(r["rate"]), float(r["p50_ms"]), float(r["p99_ms"])))
        rrrep[(r["path"], r["rep"])] = float(r["rate"])
        if "cpu_us" in r:
            cpu.setdefault(r["path"], []).append(r)

# CSV: every measurement, one row each.
with open(out + "/lab.csv", "w") as f:
    f.write("test,subject,op_or_rep,value,unit\n")
    for r in rows:
        t = r["test"]
        if t in ("podstart", "poddelete"):
            f.write("%s,%s,%s,%s,ms\n" % (t, r["pod"], r["node"], r["ms"]))
        elif t == "cni":
            f.write("cni,%s,%s,%s,ms%s\n" % (r["variant"], r["op"], r["ms"], "" if r["rc"] == "0" else " (failed rc=%s)" % r["rc"]))
        elif t == "tcp":
            f.write("tcp,%s,%s,%s,Gbit/s\n" % (r["path"], r["rep"], r["gbps"]))
        elif t == "rr":
            f.write("rr,%s,%s,%s,conn-requests/s\n" % (r["path"], r["rep"], r["rate"]))
        elif t in ("scaledp", "scaledown"):
            f.write("%s,%s,%s,%s,ms\n" % (t, r["node"], r["run"], r["ms"]))
        elif t == "scaleready":
            f.write("scaleready,deployment,%s,%s,ms\n" % (r["run"], r["ms"]))
        elif t == "hr":
            for k in ("fib", "peer_pod", "peer_net", "stack"):
                f.write("hostrouting,%s,%s,%s,packets\n" % (r["node"], k, r.get(k, "")))

md = []
w = md.append
fails = E.get("FAILURES", "")
yes = lambda b: "**yes**" if b else "**no**"
def ratio(a, b):
    return a / b if b else float("nan")

tcp_m = {p: med(v) for p, v in tcp.items()}
rr_m = {p: med([x[0] for x in v]) for p, v in rr.items()}
w("# Lab benchmark: pod start, CNI ADD/DEL, pod-to-pod across nodes, scale to datapath\n")
w("Measured %s on commit `%s`, %s s. Status: %s.\n" % (E["m_date"], E["m_commit"], E["t_total"],
  "all runs completed without errors" if not fails else "FAILED: " + fails))
w("Repeat with `make && make bench` (this part alone: `sudo BIN=build/bin tools/bench/lab.sh`; knobs "
  "PODS=%s NODES=%s CNI_N=%s REPS=%s SECONDS_PER_RUN=%s CONNS=%s HOST_ROUTING=%s FABRIC=%s).\n" %
  (E["PODS"], E["NODES"], E["CNI_N"], E["REPS"], E["SECONDS_PER_RUN"], E["CONNS"], E["HOST_ROUTING"],
   E["FABRIC"]))
w("**Machine:** %s x %s, %s, Linux %s; load average at start %s. This is a shared, noisy VM: "
  "other engineers build and test on the same %s cores while this runs, and the whole lab (API "
  "server, %s agents, %s pods, the load generators) shares them too. Ratios measured in the same "
  "run mean more than absolute values.\n" % (E["m_nproc"], E["m_cpu"], E["m_mem"], E["m_kernel"],
  E["m_load"], E["m_nproc"], E["NODES"], E["PODS"]))
w("## Goals\n")
w("| goal | measured (median) | met |\n|---|---|---|")
def goal(what, m, unit, fmt):
    if "pod" not in m or "veth" not in m:
        w("| cross-node pod → pod %s ≥ 0.9 × plain veth | no measurement | **no** |" % what)
        return
    r = ratio(m["pod"], m["veth"])
    w(("| cross-node pod → pod %s ≥ 0.9 × plain veth | " + fmt + " vs " + fmt + " %s (x%.2f); vs bridge x%.2f, "
       "vs routed (same hops, no Sluice) x%.2f | %s |") % (what, m["pod"], m["veth"], unit, r,
      ratio(m["pod"], m.get("bridge", 0)), ratio(m["pod"], m.get("routed", 0)), yes(r >= 0.9)))
# Per rotation: each pod run against the other paths' runs of the same rotation (seconds
# apart, so slow drifts of the machine's load cancel); the median over rotations.
def paired(a, b):
    v = [rrrep[(a, k)] / rrrep[(b, k)] for (p, k) in rrrep if p == a and (b, k) in rrrep and rrrep[(b, k)]]
    return med(v) if v else float("nan")
if E["TCP"] != "0":
    goal("TCP throughput", tcp_m, "Gbit/s", "%.2f")
goal("request rate", rr_m, "/s", "%.0f")
w("| (request rate, paired) pod → pod / plain veth, median of the per-rotation ratios | x%.2f; vs "
  "bridge x%.2f, vs routed x%.2f%s | %s |" % (paired("pod", "veth"), paired("pod", "bridge"),
  paired("pod", "routed"), ("".join(", vs %s x%.2f" % (p, paired("pod", p))
  for p in ("podbr", "podfwd", "podct") if p in rr)), yes(paired("pod", "veth") >= 0.9)))
if "podbr" in rr:
    w("| (request rate, paired) pod → pod over the bridge fabric (*podbr*) / plain veth | x%.2f | %s |"
      % (paired("podbr", "veth"), yes(paired("podbr", "veth") >= 0.9)))
w("")
w("## 1. Pod start and delete (%s pods, %s nodes)\n" % (E["PODS"], E["NODES"]))
w("`sluicectl lab up --nodes %s --no-dns`; %s echo-server pods (readiness `httpGet /ready`, "
  "`periodSeconds: 1`, `failureThreshold: 1`), spread round-robin by `spec.nodeName`, POSTed back "
  "to back on one keep-alive connection (tools/bench/podstart.py). Create → Ready runs from just "
  "before a pod's POST is sent to the arrival of the first watch event with `Ready=True` (one watch "
  "on the namespace, opened before the first POST, same clock). Then every pod is DELETEd (graceful, "
  "`terminationGracePeriodSeconds: 2`; the agent sends SIGTERM, runs CNI DEL, removes the object) "
  "and delete → gone runs to its `DELETED` event.\n" % (E["NODES"], E["PODS"]))
w("| phase | pods | p50 ms | p99 ms | max ms | all requests sent after ms | last pod done after ms |")
w("|---|---|---|---|---|---|---|")
for name, v, ph in (("create → Ready", start, "create"), ("delete → gone", dele, "delete")):
    s = summ.get(ph, {})
    w("| %s | %d | %.0f | %.0f | %.0f | %s | %s |" % (name, len(v), pct(v, .5), pct(v, .99),
      max(v) if v else float("nan"), s.get("submit_ms", "?"), s.get("last_ms", "?")))
w("\nThe readiness probe's period (1 s) is the floor of create → Ready: the first probe runs up to "
  "a period after the container starts. Pods are created faster than %s nodes start them, so later "
  "pods queue behind earlier ones and the p99 is mostly that queue.\n" % E["NODES"])
w("## 2. CNI ADD and DEL (%s calls each)\n" % E["CNI_N"])
w("The plugin is exec'd the way a runtime does (`CNI_*` environment, the network config on stdin) in "
  "node n3's netns, into a fresh netns per call (created and removed outside the timing), ADD then "
  "DEL, the three variants interleaved call by call. Timed with bash's `EPOCHREALTIME` around the "
  "exec, so it includes fork and exec. *sluice-cni + agent*: n3's own config "
  "(`10-sluice.conflist` written by the agent; `agentSocket` set: ADD returns only after n3's "
  "sluice-agent has programmed the endpoint, DEL after it has removed it). *sluice-cni alone*: the "
  "same config without `agentSocket`, its own subnet and IPAM dir. *ptp + host-local*: Debian's "
  "reference plugins %s (a veth pair, /32 address, host route, default route in the pod; host-local "
  "IPAM with a file per address) with the same MTU.%s\n" % (E["v_plugins"],
  "" if not cni_err else " **%d calls failed** (see the status line)." % cni_err))
w("| variant | ADD p50 ms | ADD p99 ms | DEL p50 ms | DEL p99 ms |\n|---|---|---|---|---|")
names = {"agent": "sluice-cni + agent", "noagent": "sluice-cni alone", "ptp": "ptp + host-local (reference)"}
for v in ("agent", "noagent", "ptp"):
    a, d = cni.get((v, "ADD"), []), cni.get((v, "DEL"), [])
    w("| %s | %.2f | %.2f | %.2f | %.2f |" % (names[v], pct(a, .5), pct(a, .99), pct(d, .5), pct(d, .99)))
w("")
w("## 3. Pod → pod across nodes vs plain namespaces\n")
hr = {r["node"]: r for r in rows if r["test"] == "hr"}
def hrv(n, k):
    return int(hr.get(n, {}).get(k, 0))
hrdev = {}
if E["HOST_ROUTING"] == "bpf":
    path = ("pod veth → n1's tc ingress on the pod veth (the agent's programs: policy, then BPF host "
            "routing: FIB lookup, TTL and MAC rewrite, `bpf_redirect_peer` to the fabric veth's peer in "
            "L-fabric — n1's fabric veth is a veth into another netns, so its transmit and its peer's "
            "backlog queue are skipped; packets the uplink's egress program would reverse-NAT keep "
            "`bpf_redirect` to the fabric veth) "
            "→ bridge br0 in L-fabric → n2's fabric veth → n2's TCX ingress (the destination's ingress "
            "policy, then `bpf_redirect_peer` into the pod's netns) — the nodes' IP stacks, netfilter "
            "and the host veth's backlog queue on n2 are skipped (agents with `--host-routing bpf`, the "
            "default; over the run n1 sent %d packets by FIB redirect and delivered %d by redirect_peer, "
            "n2 %d and %d; %d + %d eligible packets fell back to the stack)" %
            (hrv("n1", "fib"), hrv("n1", "peer_net"), hrv("n2", "fib"), hrv("n2", "peer_net"),
             hrv("n1", "stack"), hrv("n2", "stack")))
    for r in rows:
        if r["test"] == "hrdev":
            d = hrdev.setdefault(r["path"], [0, 0])
            d[0] += int(r["n1"])
            d[1] += int(r["n2"])
    if "pod" in hrdev:
        path += ("; during the *pod* runs n1 sent %d packets and n2 %d to the peer of their fabric "
                 "veth by `bpf_redirect_peer`%s" % (hrdev["pod"][0], hrdev["pod"][1],
                 " (during *podfwd* %d and %d)" % tuple(hrdev["podfwd"]) if "podfwd" in hrdev else ""))
else:
    path = ("pod veth → n1 (routing through the node's stack, the agent's programs on the pod veth) → "
            "host-gw route via 198.18.0.12 → n1's fabric veth → bridge br0 in L-fabric → n2's fabric "
            "veth → n2 (routing) → pod veth (agents with `--host-routing %s`)" % E["HOST_ROUTING"])
w("*pod*: `tp-client` on n1 → `tp-server` on n2 (pod IP), the lab's path: " + path + "; pod eth0 "
  "MTU %s. *veth* (the limit): two "
  "namespaces joined by one veth pair, MTU 1500. *bridge* (the fair reference for the fabric): two "
  "namespaces each with a veth into a bridge in a third namespace, MTU 1500. %s *routed* (the lab's topology without "
  "Sluice): client netns → veth → router netns → veth → bridge netns → veth → router netns → veth → "
  "server netns, static routes, the pod MTU on the end veths — the same devices as *pod* with the "
  "kernel's routing in both routers, so *pod* vs *routed* is what Sluice does to that path (its "
  "programs, host routing, the pod runtime).%s\n" % (E["POD_MTU"], ("So the pod path crosses two "
  "veth pairs more than the bridge reference and routes twice (in BPF), but like *bridge* it passes "
  "a backlog queue twice (the client pod's veth, n2's fabric veth): n1 hands packets to its fabric "
  "veth's peer and n2 into the server pod by `bpf_redirect_peer`." if E["HOST_ROUTING"] == "bpf" else
  "So the pod path has two extra veth hops and two routing steps over the bridge reference."),
  (" *podfwd*: the pod path with "
  "the fabric veth's transmit put back: the nodes' `sl_hr_dev_v1` entries are removed for these "
  "runs, so n1 and n2 send by `bpf_redirect` to the fabric veth (its tc egress, its transmit, its "
  "peer's backlog queue) instead of `bpf_redirect_peer` to its peer; *pod* vs *podfwd* is what "
  "redirect_peer is worth, in the same lab and run." if "podfwd" in rr else "") + (" *podct*: the "
  "pod path with n1's and n2's `sl_hr_npc_v1` raised for these runs, so their pod programs look up "
  "the uplink conntrack before every `bpf_redirect_peer`, as before that mark existed; *pod* vs "
  "*podct* is what skipping the lookup is worth, in the same lab and run." if "podct" in rr else "")))
if E["FABRIC"] == "mesh":
    w("**Fabric: mesh** (`lab up --fabric mesh`): the nodes are also joined by direct links, a veth "
      "pair per pair of nodes (n1's `mesh-n2` ↔ n2's `mesh-n1`, no addresses), with a /32 route in "
      "each node to the other's IP over the link, so the agents' host-gw routes (podCIDR via the "
      "node IP) resolve to it; the links are in the agents' `--devices` (the fabric program on "
      "their TCX ingress). The bridge carries only cp, ext and node-address traffic. So in the "
      "*pod* runs above the step \"bridge br0 in L-fabric\" is replaced by the link: n1's host "
      "routing hands the packet by `bpf_redirect_peer` to the link's peer, n2's `mesh-n1`, whose "
      "TCX ingress delivers it by `bpf_redirect_peer` into the server pod — one backlog queue "
      "(the client pod's veth) per direction, as *veth*. *podbr*: the same lab and pods with n1's "
      "and n2's /32 routes over the link removed for the run and their podCIDR routes "
      "re-resolved, so the packets take the bridge as in a `--fabric bridge` lab (two backlog "
      "queues).%s\n" % ("" if "pod" not in hrdev else " Sent to an uplink's peer by "
      "`bpf_redirect_peer` (n1 + n2): %d during *pod*%s." % (sum(hrdev["pod"]),
      ", %d during *podbr*" % sum(hrdev["podbr"]) if "podbr" in hrdev else "")))
w("Throughput: iperf3 %s, one TCP stream, %s s per run, received bits/s. Request rate: `connbench "
  "closed` (tools/connbench), %s connections in flight, each a new TCP connection carrying one "
  "request and response (HTTP/1.0 style) — so it measures connection setup + request/response "
  "through the path; %s s per run after 0.5 s warm-up. The server is `connbench serve` in the "
  "destination (a container of the pod, or a process in the namespace). Medians of %s runs, paths "
  "in rotating order.\n" % (E["v_iperf"], E["SECONDS_PER_RUN"], E["CONNS"], E["SECONDS_PER_RUN"], E["REPS"]))
w("| path | TCP Gbit/s (median) | runs | vs veth | TCP retransmits (median) | requests/s (median) | p50 / p99 ms | vs veth |")
w("|---|---|---|---|---|---|---|---|")
for p in ("pod", "podbr", "podfwd", "podct", "veth", "bridge", "routed"):
    if p not in tcp and p not in rr:
        continue
    t = tcp.get(p, [])
    q = rr.get(p, [])
    w("| %s | %.2f | %s | x%.2f | %.0f | %.0f | %.2f / %.2f | x%.2f |" % (p, med(t), " ".join("%.2f" % x for x in t),
      ratio(med(t), tcp_m.get("veth", 0)), med(retr.get(p, [])), med([x[0] for x in q]), med([x[1] for x in q]),
      med([x[2] for x in q]), ratio(med([x[0] for x in q]), rr_m.get("veth", 0))))
w("")
if cpu:
    w("CPU time per request of the connbench runs: the machine's `/proc/stat` deltas over the run "
      "divided by the window's requests (rate × %s s), medians over the runs; machine-wide, so the "
      "load of others on the machine is in it (load average at start %s). When a run leaves no idle "
      "time, request rate and CPU per request are one figure; the split says where it goes "
      "(softirq: the packet path; system: the sockets, connect/accept/close; user: connbench).\n"
      % (E["SECONDS_PER_RUN"], E["m_load"]))
    w("| path | CPU µs/request | user | system | softirq | idle % | vs veth (CPU) |")
    w("|---|---|---|---|---|---|---|")
    cm = lambda p, k: med([float(r[k]) for r in cpu.get(p, [])])
    for p in ("pod", "podbr", "podfwd", "podct", "veth", "bridge", "routed"):
        if p in cpu:
            w("| %s | %.1f | %.1f | %.1f | %.1f | %.0f | x%.2f |" % (p, cm(p, "cpu_us"), cm(p, "usr_us"),
              cm(p, "sys_us"), cm(p, "sirq_us"), cm(p, "idle_pct"), ratio(cm(p, "cpu_us"), cm("veth", "cpu_us"))))
    w("")
bpfr = [r for r in rows if r["test"] == "bpf"]
if bpfr:
    w("BPF programs of n1 and n2 per request of the pod runs (`BPF_STATS=1`: "
      "`kernel.bpf_stats_enabled`, run_time_ns / run_cnt deltas of the programs attached in the two "
      "nodes): total ns per request, then per program runs per request / ns per run:\n")
    for r in bpfr:
        w("- run %s%s: %s ns; %s" % (r["rep"], "" if r.get("path", "pod") == "pod" else " (%s)" % r["path"],
          r["total_ns_per_req"], ", ".join("`%s` %s" % (k, v) for k, v in r.items()
                                            if k not in ("test", "path", "rep", "total_ns_per_req"))))
    w("")
sdp = [r for r in rows if r["test"] == "scaledp"]
sdn = [r for r in rows if r["test"] == "scaledown"]
srd = [float(r["ms"]) for r in rows if r["test"] == "scaleready"]
w("## 4. Scale to datapath (`kubectl scale` 0 → %s, %s runs)\n" % (E["SCALE_N"], E["SCALE_RUNS"]))
w("Deployment `scale/sc` of echo-server pods (readiness `httpGet /ready`, `periodSeconds: 1`) behind "
  "the ClusterIP Service `sc`, placed by the scheduler over the %s nodes. The clock starts just before "
  "`kubectl scale deploy/sc --replicas=%s` is exec'd and stops, per node, at the first poll of that "
  "node's datapath (`sluicectl --bpffs B --node nI -o json service list`, the maps its agent pinned; "
  "all nodes read at once, again 20 ms after the reads return; a round of reads of 100 backends takes 0.1-0.5 s on this loaded machine, the resolution of these figures) that shows %s active backends for the Service's frontend: the scheduler, "
  "%s pod starts, readiness, the EndpointSlice controller and every agent's sync together. *Deployment "
  "Ready* is when `status.readyReplicas` reached %s (polled with kubectl every 0.5 s). Scale-down "
  "(%s → 0) runs until a node's datapath has no backend left. Percentiles over every (node, run) "
  "pair.\n" % (E["NODES"], E["SCALE_N"], E["SCALE_N"], E["SCALE_N"], E["SCALE_N"], E["SCALE_N"]))
w("| measurement | samples | p50 ms | p99 ms | max ms |\n|---|---|---|---|---|")
for name, v in (("scale 0 → %s: all endpoints on a node's datapath" % E["SCALE_N"], [float(r["ms"]) for r in sdp]),
                ("scale 0 → %s: Deployment Ready (API)" % E["SCALE_N"], srd),
                ("scale %s → 0: no backend left on a node's datapath" % E["SCALE_N"], [float(r["ms"]) for r in sdn])):
    w("| %s | %d | %.0f | %.0f | %.0f |" % (name, len(v), pct(v, .5), pct(v, .99), max(v) if v else float("nan")))
w("\n| run | " + " | ".join("%s ms" % n for n in sorted({r["node"] for r in sdp})) + " | Deployment Ready ms |")
w("|---" * (len({r["node"] for r in sdp}) + 2) + "|")
for run in sorted({int(r["run"]) for r in sdp}):
    per = {r["node"]: r["ms"] for r in sdp if int(r["run"]) == run}
    rd = [r["ms"] for r in rows if r["test"] == "scaleready" and int(r["run"]) == run]
    w("| %d | %s | %s |" % (run, " | ".join(per[n] for n in sorted(per)), rd[0] if rd else "?"))
w("")
w("ANALYSIS_PLACEHOLDER\n")
w("![Lab benchmark](lab.png)\n")
w("Raw per-measurement figures: [lab.csv](lab.csv).")
open(tmp + "/report.md", "w").write("\n".join(md) + "\n")

with open(tmp + "/pods.dat", "w") as f:
    for i, v in enumerate(sorted(start)):
        f.write("%.1f %.4f\n" % (v, (i + 1) / len(start)))
    f.write("\n\n")
    for i, v in enumerate(sorted(dele)):
        f.write("%.1f %.4f\n" % (v, (i + 1) / len(dele)))
with open(tmp + "/cni.dat", "w") as f:
    for v, lbl in (("agent", "sluice+agent"), ("noagent", "sluice"), ("ptp", "ptp+host-local")):
        a, d = cni.get((v, "ADD"), []), cni.get((v, "DEL"), [])
        f.write("%s %.2f %.2f %.2f %.2f\n" % (lbl, pct(a, .5), pct(a, .99), pct(d, .5), pct(d, .99)))
with open(tmp + "/tp.dat", "w") as f:
    for p in ("pod", "veth", "bridge", "routed"):
        f.write("%s %.4f %.4f\n" % (p, ratio(tcp_m.get(p, 0), tcp_m.get("veth", 0)), ratio(rr_m.get(p, 0), rr_m.get("veth", 0))))
PY
# The analysis paragraph is kept by hand next to the script (like
# datapath-analysis.md); without it the placeholder line is dropped.
if [[ -f tools/bench/lab-analysis.md ]]; then
	sed -e "/^ANALYSIS_PLACEHOLDER$/{r tools/bench/lab-analysis.md" -e 'd}' "$tmp/report.md" >"$OUT/lab.md"
else
	grep -v '^ANALYSIS_PLACEHOLDER$' "$tmp/report.md" >"$OUT/lab.md"
fi

cat >"$tmp/plot.gnuplot" <<'G'
set terminal pngcairo size 1500,500 font "DejaVu Sans,10"
set output out
set multiplot layout 1,3 title "Sluice lab (".machine.")" font ",12"
set grid
set title "Pod create -> Ready, delete -> gone (CDF)"
set xlabel "ms"
set ylabel "fraction of pods"
set yrange [0:1]
set key top left
plot dir."/pods.dat" index 0 using 1:2 with steps lw 2 title "create -> Ready", \
     '' index 1 using 1:2 with steps lw 2 title "delete -> gone"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set grid noxtics ytics
set key top left
set yrange [0:*]
set xlabel ""
set xrange [-0.5:2.5]
set title "CNI ADD/DEL latency"
set ylabel "ms (lower is better)"
plot dir."/cni.dat" using 2:xtic(1) title "ADD p50", '' using 3 title "ADD p99", \
     '' using 4 title "DEL p50", '' using 5 title "DEL p99"
set xrange [-0.5:3.5]
set title "Pod -> pod across nodes, relative to plain veth"
set ylabel "ratio to veth (higher is better)"
set yrange [0:*]
set arrow from graph 0, first 0.9 to graph 1, first 0.9 nohead dt 2 lc rgb "black"
plot dir."/tp.dat" using 2:xtic(1) title "TCP throughput", '' using 3 title "request rate", \
     NaN with lines dt 2 lc rgb "black" title "goal 0.9"
G
# The plot shows steps 1-3; a partial run (STEPS) leaves lab.png as it was.
if step 1 && step 2 && step 3; then
	gnuplot -e "dir='$tmp'; out='$OUT/lab.png'; machine='$m_nproc cores, $m_date'" "$tmp/plot.gnuplot" ||
		fail "gnuplot"
else
	log "STEPS=${STEPS# }: lab.png not redrawn (it plots steps 1-3)"
fi

log "results: $OUT/lab.md, $OUT/lab.csv, $OUT/lab.png"
if ((${#failures[@]})); then
	log "FAILED: ${failures[*]}"
	exit 1
fi
exit 0
