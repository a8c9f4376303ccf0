#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# NetworkPolicy benchmark (issue 6), written to docs/benchmarks/netpol.md with the machine,
# the commands and their output:
#   1. compiler: compile time, incremental change cost and map size for N pods x M policies,
#      with tools/netpol-bench (no kernel, no network);
#   1b. (root) the policy hooks' cost per packet with no policy and with the lab's 100-rule
#      policies, timed by the kernel with BPF_PROG_TEST_RUN (tools/netpol-dpbench): the
#      figure a busy machine cannot move much (the least of several runs);
#   2. lab (root; skipped with NETPOL_LAB=0): a 2-node `sluicectl lab` (no DNS addon), client
#      pod on n1, server pod on n2 (echo-server TCP echo 9000, connbench serve 8090):
#      a. policy update to enforcement: with deny-all ingress on the server's namespace, an
#         allow policy is created / deleted through the API server LAT_RUNS times; the time
#         from the API's answer to the first new connection that gets through / the first of
#         three that do not (tools/bench/netpol-lab.py latency), p50 and p99;
#      b. the same path with no policy and with a 100-rule policy on each side (server
#         ingress: 99 rules for other namespaces and ports, then the client's; client egress:
#         99 CIDR rules, then the server's), in alternating order, REPS runs each:
#         connection rate (connbench closed: new connection + request + response + close,
#         CONNS in flight, each one a first packet the policy decides) and request/response
#         rate on CONNS persistent connections (netpol-lab.py rr); medians and policy/none.
#      Cost measures that survive a busy machine, per arm: the BPF programs attached in the
#      two nodes' netns (kernel.bpf_stats_enabled for the run, restored after; run_time_ns and
#      run_cnt deltas): ns per program run, runs and ns per connection / per request; and the
#      machine's system + softirq CPU per connection (/proc/stat; every job on the machine
#      is in it, so it is only as good as the machine is quiet).
# Knobs: NETPOL_LAB (1), REPS (5), SECONDS_PER_RUN (5), CONNS (8), LAT_RUNS (200),
# BPF_STATS (1: the BPF run-time figures; 0: leave kernel.bpf_stats_enabled alone),
# PERF_DIR (unset: a directory for `perf record -a -g` of each arm's first connection run,
# perf-none.data and perf-policy.data).
if [[ ${NETPOL_LAB:-1} == 1 && -z ${SLUICE_IN_MNTNS:-} ]]; then
	# A private mount namespace: the lab's bpffs and netns mounts exist only here.
	exec env SLUICE_IN_MNTNS=1 unshare --mount --propagation private bash "$0" "$@"
fi
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${BIN:-build/bin}
[[ $BIN = /* ]] || BIN=$PWD/$BIN
OUT=${OUT:-docs/benchmarks}/netpol.md
REPS=${REPS:-5}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-5}
CONNS=${CONNS:-8}
LAT_RUNS=${LAT_RUNS:-200}
BPF_STATS=${BPF_STATS:-1}
PY=/usr/bin/python3
KUBECTL=${KUBECTL:-$PWD/build/deps/kubectl-1.20/usr/bin/kubectl}
[[ -x $BIN/netpol-bench ]] || { echo "netpol bench: $BIN/netpol-bench missing (run make)" >&2; exit 1; }
log() { echo "netpol bench: $*" >&2; }
start_load=$(cut -d' ' -f1-3 /proc/loadavg)
runs=()
run() {
	local cmd=("$BIN/netpol-bench" "$@")
	log "${cmd[*]}"
	runs+=("\$ netpol-bench $*" "$("${cmd[@]}")")
}
run --pods 1000 --policies 1000 --namespaces 10 --replicas 4 --nodes 10 --runs 5
run --pods 5000 --policies 2000 --namespaces 20 --replicas 4 --nodes 10 --runs 3

# --- 1b. the hooks per packet ------------------------------------------------------------------
dp=""
if [[ $EUID == 0 && -x $BIN/netpol-dpbench ]]; then
	log "netpol-dpbench"
	dp=$("$BIN/netpol-dpbench")
fi

# --- 2. the lab ----------------------------------------------------------------------------
lab_md=""
if [[ ${NETPOL_LAB:-1} == 1 ]]; then
	for b in sluice-control sluice-agent sluice-cni echo-server connbench; do
		[[ -x $BIN/$b ]] || { log "$BIN/$b missing (run make)"; exit 1; }
	done
	L=npb$$
	S=/run/sluice-lab/$L
	LAB=(env SLUICE_LAB_BIN="$BIN" KUBECTL="$KUBECTL" bash tools/lab/lab.sh)
	tmp=$(mktemp -d /tmp/sluice-netpol-bench.XXXXXX)
	stats_was=""
	lab_down() {
		[[ -z $stats_was ]] || sysctl -qw kernel.bpf_stats_enabled="$stats_was" || true
		LAB_QUIET=1 LAB_STOP_TIMEOUT=3 "${LAB[@]}" down --name "$L" >/dev/null 2>&1 || true
		rm -rf "$tmp"
	}
	trap lab_down EXIT
	k() { "$KUBECTL" --kubeconfig "$S/kubeconfig" --cache-dir "$tmp/kcache" "$@"; }
	until_ok() {
		local i
		for ((i = 0; i < $1 * 4; i++)); do
			"${@:2}" >/dev/null 2>&1 && return 0
			sleep 0.25
		done
		return 1
	}
	log "lab up --name $L --nodes 2 --no-dns"
	"${LAB[@]}" up --name "$L" --nodes 2 --no-dns >"$tmp/up.out" 2>&1 ||
		{ tail -5 "$tmp/up.out" >&2; exit 1; }
	cat <<Y | k apply --validate=false -f - >/dev/null
apiVersion: v1
kind: Namespace
metadata: {name: bench, labels: {team: bench}}
---
apiVersion: v1
kind: Pod
metadata: {namespace: bench, name: srv, labels: {app: srv}}
spec:
  nodeName: n2
  terminationGracePeriodSeconds: 1
  containers:
  - name: echo
    image: sluice/echo-server
    command: ["$BIN/echo-server", "--name", "bench/srv", "--tcp", "9000", "--udp", "0"]
    readinessProbe: {httpGet: {path: /ready, port: 8080}, periodSeconds: 1}
  - name: connbench
    image: connbench
    command: ["$BIN/connbench", "serve", "--addrs", "\$(POD_IP)", "--port", "8090"]
    env: [{name: POD_IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}]
---
apiVersion: v1
kind: Pod
metadata: {namespace: bench, name: cli, labels: {app: cli}}
spec:
  nodeName: n1
  terminationGracePeriodSeconds: 1
  containers:
  - name: echo
    image: sluice/echo-server
    command: ["$BIN/echo-server", "--name", "bench/cli"]
    readinessProbe: {httpGet: {path: /ready, port: 8080}, periodSeconds: 1}
Y
	ready() { [[ $(k -n bench get pod "$1" -o jsonpath='{range .status.conditions[?(@.type=="Ready")]}{.status}{end}') == True ]]; }
	until_ok 120 ready srv && until_ok 30 ready cli || { log "pods not Ready"; exit 1; }
	SRV=$(k -n bench get pod srv -o jsonpath='{.status.podIP}')
	CLI_NS=/run/netns/sl-$(k -n bench get pod cli -o jsonpath='{.metadata.uid}')
	API=$(awk '/server:/ { print $2; exit }' "$S/kubeconfig")
	probe() { nsenter --net="$CLI_NS" "$PY" tests/netpol-recipes/probe.py "$1" "$SRV" "$2" 1 | tail -1; }
	until_ok 20 bash -c "[[ \$(nsenter --net=$CLI_NS $PY tests/netpol-recipes/probe.py tcp $SRV 9000 1) == ok* ]]" ||
		{ log "cli cannot reach srv:9000"; exit 1; }

	# The programs attached in the lab's node netns (bpftool sees every program of the
	# machine; other labs run the same ones).
	prog_ids() {
		local n
		for n in n1 n2; do
			nsenter --net="/run/netns/$L-$n" bpftool -j net show
		done | "$PY" -c '
import json, sys
ids = set()
def walk(o):
    if isinstance(o, dict):
        for k, v in o.items():
            if k in ("prog_id", "id") and isinstance(v, int):
                ids.add(v)
            else:
                walk(v)
    elif isinstance(o, list):
        for v in o:
            walk(v)
for line in sys.stdin:
    line = line.strip()
    if line:
        walk(json.loads(line))
print(" ".join(str(i) for i in sorted(ids)))'
	}
	# "run_time_ns run_cnt sys_softirq_ticks" now
	snap() {
		local ns=0 cnt=0
		if [[ $BPF_STATS == 1 ]]; then
			read -r ns cnt < <(bpftool -j prog show | "$PY" -c '
import json, sys
ids = set(int(x) for x in sys.argv[1:])
ns = cnt = 0
for p in json.load(sys.stdin):
    if p["id"] in ids:
        ns += p.get("run_time_ns", 0)
        cnt += p.get("run_cnt", 0)
print(ns, cnt)' $PROGS)
		fi
		echo "$ns $cnt $(awk '/^cpu / { print $4 + $8; exit }' /proc/stat)"
	}
	HZ=$(getconf CLK_TCK)
	# costs BEFORE AFTER N: "bpf_ns_per_run= bpf_runs= bpf_ns= cpu_us=" per one of N
	costs() {
		local b=($1) a=($2)
		"$PY" -c '
import sys
b, a, n, hz = [float(x) for x in sys.argv[1:4]], [float(x) for x in sys.argv[4:7]], float(sys.argv[7]), float(sys.argv[8])
ns, cnt, tk = a[0] - b[0], a[1] - b[1], a[2] - b[2]
print("bpf_ns_per_run=%.0f bpf_runs=%.2f bpf_ns=%.0f cpu_us=%.1f" % (ns / cnt if cnt else 0,
      cnt / n, ns / n, tk / hz * 1e6 / n))' "${b[@]}" "${a[@]}" "$3" "$HZ"
	}
	PROGS=$(prog_ids)
	if [[ $BPF_STATS == 1 ]]; then
		[[ -n $PROGS ]] || { log "no BPF programs attached in $L-n1/$L-n2"; exit 1; }
		stats_was=$(sysctl -n kernel.bpf_stats_enabled)
		sysctl -qw kernel.bpf_stats_enabled=1
		log "bpf stats on for programs $PROGS"
	fi

	# a. update -> enforcement
	k apply --validate=false -f - >/dev/null <<'Y'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {namespace: bench, name: deny-all}
spec: {podSelector: {}, policyTypes: [Ingress]}
Y
	until_ok 10 bash -c "[[ \$(nsenter --net=$CLI_NS $PY tests/netpol-recipes/probe.py tcp $SRV 9000 0.5) == dropped ]]" ||
		{ log "deny-all not enforced"; exit 1; }
	lcmd=(netpol-lab.py latency --api "$API" --ns bench --netns "$CLI_NS" --target "$SRV:9000" --runs "$LAT_RUNS"
		--agent-netns "/run/netns/$L-n2")
	log "${lcmd[*]}"
	lat=$("$PY" tools/bench/"${lcmd[@]}" 2>"$tmp/lat.err")
	cat "$tmp/lat.err" >&2
	log "$lat"
	k -n bench delete networkpolicy deny-all >/dev/null

	# b. no policy vs 100-rule policies, same pods and path
	{
		cat <<'Y'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {namespace: bench, name: srv-100-rules}
spec:
  podSelector: {matchLabels: {app: srv}}
  ingress:
Y
		for ((i = 1; i < 100; i++)); do
			printf '  - from: [{namespaceSelector: {matchLabels: {team: t%d}}}]\n    ports: [{port: %d}]\n' "$i" $((10000 + i))
		done
		printf '  - from: [{podSelector: {matchLabels: {app: cli}}}]\n    ports: [{port: 8090}, {port: 9000}]\n'
		cat <<'Y'
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {namespace: bench, name: cli-100-rules}
spec:
  podSelector: {matchLabels: {app: cli}}
  policyTypes: [Egress]
  egress:
Y
		for ((i = 1; i < 100; i++)); do
			printf '  - to: [{ipBlock: {cidr: 198.19.%d.0/24}}]\n' "$i"
		done
		printf '  - to: [{podSelector: {matchLabels: {app: srv}}}]\n    ports: [{port: 8090}, {port: 9000}]\n'
	} >"$tmp/policy.yaml"
	raw=()
	arm() { # none|policy REP
		local out
		if [[ $1 == policy ]]; then
			k apply --validate=false -f "$tmp/policy.yaml" >/dev/null
			# in force: HTTP 8080 is not in the rules
			until_ok 10 bash -c "[[ \$(nsenter --net=$CLI_NS $PY tests/netpol-recipes/probe.py http $SRV 8080 0.5) == dropped ]]" ||
				{ log "100-rule policy not enforced"; exit 1; }
		else
			k -n bench delete networkpolicy --all >/dev/null 2>&1 || true
			until_ok 10 bash -c "[[ \$(nsenter --net=$CLI_NS $PY tests/netpol-recipes/probe.py http $SRV 8080 0.5) == ok* ]]" ||
				{ log "policy not removed"; exit 1; }
		fi
		sleep 1
		s0=$(snap)
		local perf_pid=""
		if [[ -n ${PERF_DIR:-} && $2 == 1 ]]; then
			perf record -a -g -q -o "$PERF_DIR/perf-$1.data" -- sleep "$SECONDS_PER_RUN" \
				>/dev/null 2>&1 &
			perf_pid=$!
		fi
		out=$(nsenter --net="$CLI_NS" "$BIN/connbench" closed --targets "$SRV:8090" --conns "$CONNS" \
			--seconds "$SECONDS_PER_RUN" --warmup 0.5 --tag "$1$2")
		[[ -z $perf_pid ]] || wait "$perf_pid" || true
		# (the spaces: connbench also prints conn_p50_ms... for the connect() alone)
		[[ $out =~ \ rate=([0-9.]+).*\ p50_ms=([0-9.]+).*\ p99_ms=([0-9.]+).*\ max_ms=([0-9.]+).*errors=([0-9]+) &&
			${BASH_REMATCH[5]} == 0 ]] || { log "connbench $1 rep $2: $out"; exit 1; }
		raw+=("arm=$1 rep=$2 test=conn rate=${BASH_REMATCH[1]} p50_ms=${BASH_REMATCH[2]} p99_ms=${BASH_REMATCH[3]} max_ms=${BASH_REMATCH[4]}")
		# per connection: connbench counts those of the measured seconds, after warmup;
		# the counters include the warmup's: rate x (seconds + warmup) approximates both
		raw[-1]+=" $(costs "$s0" "$(snap)" "$("$PY" -c "print(max(1.0, ${BASH_REMATCH[1]} * ($SECONDS_PER_RUN + 0.5)))")")"
		s0=$(snap)
		out=$(nsenter --net="$CLI_NS" "$PY" tools/bench/netpol-lab.py rr --target "$SRV:9000" \
			--conns "$CONNS" --seconds "$SECONDS_PER_RUN")
		[[ $out =~ rate=([0-9.]+).*p50_ms=([0-9.]+).*p99_ms=([0-9.]+).*errors=([0-9]+) &&
			${BASH_REMATCH[4]} == 0 ]] || { log "rr $1 rep $2: $out"; exit 1; }
		raw+=("arm=$1 rep=$2 test=rr rate=${BASH_REMATCH[1]} p50_ms=${BASH_REMATCH[2]} p99_ms=${BASH_REMATCH[3]}")
		raw[-1]+=" $(costs "$s0" "$(snap)" "$("$PY" -c "print(max(1.0, ${BASH_REMATCH[1]} * ($SECONDS_PER_RUN + 0.5)))")")"
		log "${raw[-2]}; ${raw[-1]}"
	}
	for ((rep = 1; rep <= REPS; rep++)); do
		if ((rep % 2)); then arm none "$rep" && arm policy "$rep"; else
			arm policy "$rep" && arm none "$rep"; fi
	done
	summary=$(printf '%s\n' "${raw[@]}" | "$PY" -c '
import statistics, sys
r, by_rep = {}, {}
for l in sys.stdin:
    d = dict(w.split("=", 1) for w in l.split())
    r.setdefault((d["test"], d["arm"]), []).append(float(d["rate"]))
    by_rep.setdefault((d["test"], d["rep"]), {})[d["arm"]] = float(d["rate"])
for t, what in (("conn", "connections/s (new connection, request, response, close)"),
                ("rr", "requests/s on persistent connections")):
    n, p = statistics.median(r[(t, "none")]), statistics.median(r[(t, "policy")])
    reps = sorted((int(rep), v) for (tt, rep), v in by_rep.items() if tt == t)
    pairs = [v["policy"] / v["none"] for _, v in reps]
    print("| %s | %.0f | %.0f | %.3f | %.3f (%s) |" % (what, n, p, p / n,
          statistics.median(pairs), " ".join("%.2f" % x for x in pairs)))
')
	costs_md=$(printf '%s\n' "${raw[@]}" | "$PY" -c '
import statistics, sys
c = {}
for l in sys.stdin:
    d = dict(w.split("=", 1) for w in l.split())
    for f in ("bpf_ns_per_run", "bpf_runs", "bpf_ns", "cpu_us"):
        c.setdefault((d["test"], d["arm"], f), []).append(float(d[f]))
for t, what in (("conn", "per connection"), ("rr", "per request")):
    m = lambda a, f: statistics.median(c[(t, a, f)])
    print("| %s | %.0f / %.0f | %.2f / %.2f | %.0f / %.0f | %.1f / %.1f |" % (what,
          m("none", "bpf_ns_per_run"), m("policy", "bpf_ns_per_run"), m("none", "bpf_runs"),
          m("policy", "bpf_runs"), m("none", "bpf_ns"), m("policy", "bpf_ns"),
          m("none", "cpu_us"), m("policy", "cpu_us")))
')
	lab_md=$(
		echo "## Lab: update latency and the cost of a 100-rule policy"
		echo
		echo "A 2-node \`sluicectl lab\` (release build, no DNS addon); client pod bench/cli on n1, server"
		echo "bench/srv on n2 (the path crosses both nodes' pod hooks and the fabric)."
		echo
		echo "**Policy update to enforcement** (\`tools/bench/netpol-lab.py latency\`, $LAT_RUNS runs):"
		echo "with deny-all ingress in place, an allow policy is POSTed to the API server; allow ="
		echo "from the API's answer to the first new connection that gets through; then it is"
		echo "DELETEd; deny = to the first of three new connections that do not. A new connection"
		echo "starts every 5 ms (60 ms timeout each), so figures below ~5 ms are at the resolution"
		echo "limit; p99 is the nearest rank ($LAT_RUNS runs: not a single maximum). Where the time"
		echo "goes, from the same instant: watch_* = the tool's own watch on the policies got the"
		echo "event (the API server's share); agent_* = the server node's agent had written its"
		echo "maps (\`sluice_policy_last_applied_timestamp_seconds\` on its /metrics, read after"
		echo "each run); the rest is the prober. The three slowest runs of each kind, taken apart:"
		echo
		echo '```'
		echo "\$ ${lcmd[*]}"
		echo "$lat"
		cat "$tmp/lat.err"
		echo '```'
		echo
		echo "**No policy vs a 100-rule policy on each side**, same pods and path, alternating order,"
		echo "medians of $REPS runs of $SECONDS_PER_RUN s, $CONNS connections in flight. The policy arm: server"
		echo "ingress 99 rules for other namespaces/ports then \`from: app=cli, ports 8090, 9000\`;"
		echo "client egress 99 CIDR rules then \`to: app=srv\` on the same ports. Connection rate:"
		echo "\`connbench closed\` against \`connbench serve\` (every connection is a first packet the"
		echo "policy decides on both nodes); request/response: \`netpol-lab.py rr\` (Python, a line to"
		echo "the echo server and back per request, on persistent connections: the verdict cache)."
		echo "Goal: policy/none ≥ 0.95. The two arms run the same hook code on every packet (flows"
		echo "of pods that no policy selects are looked up and cached the same way); they differ in"
		echo "the rule lookups of a flow's first packet. On this shared 2-core machine the load of"
		echo "other jobs moves rates by 2x between runs: compare the paired ratios."
		echo
		echo "| test | no policy | 100-rule policy | policy / none | median of per-run pairs (each run) |"
		echo "|---|---|---|---|---|"
		echo "$summary"
		echo
		echo "What the path costs, medians of the same runs (no policy / 100-rule policy): the BPF"
		echo "programs attached in the two nodes' netns, from \`kernel.bpf_stats_enabled\`"
		echo "(run_time_ns and run_cnt of each program; bpftool prog show): ns per program run, program"
		echo "runs and BPF ns per connection or request (all hooks of both nodes, both directions);"
		echo "and the whole machine's system + softirq CPU per connection or request from /proc/stat"
		echo "(every job on the machine is in it: only as good as the machine is quiet)."
		echo
		echo "| | BPF ns per program run | program runs | BPF ns | system + softirq CPU, µs |"
		echo "|---|---|---|---|---|"
		echo "$costs_md"
		echo
		echo "Runs:"
		echo
		echo '```'
		printf '%s\n' "${raw[@]}"
		echo '```'
	)
fi

{
	echo "# NetworkPolicy benchmark"
	echo
	echo "Measured $(date -u '+%Y-%m-%d %H:%M UTC') on commit \`$(git rev-parse --short HEAD)\`;" \
		"$(nproc) x $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)," \
		"load average at start $start_load. Repeat with \`make bench\`" \
		"(this part alone: \`tools/bench/netpol.sh\`; \`NETPOL_LAB=0\` skips the lab)."
	echo
	echo "## Compiler"
	echo
	echo "Medians of the runs; what the figures mean: netpol/README.md."
	echo
	echo '```'
	printf '%s\n' "${runs[@]}"
	echo '```'
	if [[ -n $dp ]]; then
		echo
		echo "## Datapath: the policy hooks per packet"
		echo
		echo "The programs the pod veths run, loaded unpinned in a private netns with the maps"
		echo "libnetpol computes for the lab's two pods, timed by the kernel (BPF_PROG_TEST_RUN,"
		echo "the least of 7 runs of 200000 packets: load on the machine only ever adds). A SYN is"
		echo "decided every time (never passed by the cache); an established flow's packets and"
		echo "replies are one or two hash lookups. What the 100-rule policy adds is the rule"
		echo "lookups of a SYN; the lab below shows the same in situ (\`bpf_stats_enabled\`)."
		echo
		echo '```'
		echo "\$ netpol-dpbench"
		echo "$dp"
		echo '```'
	fi
	if [[ -n $lab_md ]]; then
		echo
		echo "$lab_md"
	fi
} >"$OUT"
log "wrote $OUT"
