#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Datapath benchmark: what the socket-level service load balancer
# (bpf/cgroup_sock_lb.bpf.c, programmed by sluice-agent) costs a client, and
# how fast API writes reach the maps. Called by tools/bench/run.sh; the load
# generator is build/bin/connbench (tools/connbench/main.c).
#
#   host netns, private mount ns + bpffs          netns sl-dpbench-<pid> (only lo)
#   ┌───────────────────────────────────┐         ┌──────────────────────────────────┐
#   │ sluice-control 127.0.0.1:P        │         │ lo: 198.19.160.1-10/32           │
#   │   (memory store, Services in      │         │   connbench serve (1 process,    │
#   │    198.19.192.0/18)               │  maps + │   epoll, :8080 on all 10)        │
#   │ sluice-agent --node-name node-a ──┼─ hooks ▶│ cgroup CG: connbench closed/open │
#   │   --cgroup-root CG --bpffs TMP    │         │   → ClusterIP 198.19.255.200:80  │
#   │ connbench mapwait/change (polls   │         │   → or straight to 198.19.160.x  │
#   │   the pinned sl_svc4_v1)          │         └──────────────────────────────────┘
#   └───────────────────────────────────┘
#
# For each scale (SCALES, default "1 1000 10000" Services, each with 10
# endpoints; the extra ones come from `apibench load`, 2 ports each) on a
# fresh API server:
#   1. programming from empty: time from agent start (objects already in the
#      API) until every ClusterIP frontend is in the pinned svc4 map with its
#      backends (connbench mapwait), PROG_REPS times, maps unpinned between;
#   2. connections/s: connect + 32-byte request + 64-byte response + close,
#      closed loop with CONNS connections and open loop at a fixed rate
#      (latency from the intended start), through the ClusterIP vs straight
#      to the backend addresses (round-robin over the same 10), REPS runs
#      each, the two modes alternating which goes first;
#   3. one endpoint change from the PUT of an EndpointSlice to the new entry in
#      the pinned map, CHANGE_SAMPLES samples (connbench change);
#   4. agent RSS and, at the largest scale, map memory (bpftool map show).
# At the largest scale the agent is also profiled (perf record -g) during a
# cold start and during endpoint changes; the top of each profile goes into
# the report. Results: $OUT/datapath.md, .csv, .png (OUT defaults to
# docs/benchmarks). Any load-generator error fails the benchmark (exit 1).
#
# Knobs (environment): SCALES, REPS (0 skips part 2: programming, endpoint
# changes and memory only), PROG_REPS, RUN_SECONDS, CONNS, OPEN_RATE
# (default: half the direct closed-loop rate at the first scale), CHANGE_SAMPLES,
# PROFILE (1 = profile at the largest scale). Needs root (netns, cgroup,
# bpffs, BPF), bpftool, curl; perf for the profiles, gnuplot for the PNG.
if [[ -z ${SLUICE_DPBENCH_MNTNS:-} ]]; then
	exec env SLUICE_DPBENCH_MNTNS=1 unshare --mount --propagation private bash "$0" "$@"
fi
set -euo pipefail
cd "$(dirname "$0")/../.."

BIN=${BIN:-build/bin}
OUT=${OUT:-docs/benchmarks}
SCALES=${SCALES:-"1 1000 10000"}
REPS=${REPS:-5}
PROG_REPS=${PROG_REPS:-3}
RUN_SECONDS=${RUN_SECONDS:-1.5}
CONNS=${CONNS:-64}
OPEN_RATE=${OPEN_RATE:-}
CHANGE_SAMPLES=${CHANGE_SAMPLES:-200}
CHANGE_BUDGET=${CHANGE_BUDGET:-45} # seconds per scale; fewer samples if changes are slow
PROFILE=${PROFILE:-1}
ENDPOINTS=10
# Client and server each get a core of their own, so the scheduler's
# placement (same core or not) does not change between runs.
CLIENT_CPU=${CLIENT_CPU:-0}
SERVER_CPU=${SERVER_CPU:-$(($(nproc) > 1 ? 1 : 0))}
VIP=198.19.255.200
SVC_CIDR=198.19.192.0/18
NODE=node-a

for b in sluice-control sluice-agent apibench connbench; do
	[[ -x $BIN/$b ]] || { echo "datapath bench: $BIN/$b missing; run make first" >&2; exit 2; }
done
for t in bpftool curl ip unshare; do
	command -v $t >/dev/null || { echo "datapath bench: $t not found (make deps)" >&2; exit 2; }
done
((EUID == 0)) || { echo "datapath bench: needs root (netns, cgroup, bpffs)" >&2; exit 2; }

mkdir -p "$OUT"
tmp=$(mktemp -d /tmp/sluice-dpbench.XXXXXX)
NS=sl-dpbench-$$
CGROOT=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/self/mounts)
CG=$CGROOT/sluice-dpbench-$$
BPFFS=$tmp/bpffs
PIN=$BPFFS/sluice/$NODE
pids=()   # our children (control, server)
AGENT_PID= # started through connbench mapwait: not our child

log() { printf '[datapath %3ss] %s\n' $(($(date +%s) - t_start)) "$*" >&2; }

stop_pid() { # stop_pid PID [SECONDS]: TERM, then KILL; works for non-children too
	local p=$1 i
	[[ -n $p ]] || return 0
	kill -TERM "$p" 2>/dev/null || return 0
	for ((i = 0; i < ${2:-5} * 20; i++)); do kill -0 "$p" 2>/dev/null || break; sleep 0.05; done
	kill -KILL "$p" 2>/dev/null || true
	wait "$p" 2>/dev/null || true
}

cleanup() {
	local p
	stop_pid "$AGENT_PID"
	"$BIN/sluice-agent" --node-name $NODE --bpffs "$BPFFS" --cleanup >/dev/null 2>&1 || true
	for p in "${pids[@]}"; do stop_pid "$p"; done
	if [[ -d $CG ]]; then
		while read -r p; do kill -KILL "$p" 2>/dev/null || true; done <"$CG/cgroup.procs"
		sleep 0.1
		rmdir "$CG" 2>/dev/null || true
	fi
	ip netns del "$NS" 2>/dev/null || true
	umount "$BPFFS" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

raw=$tmp/raw.txt # one result line per run: "rep=N KIND ... scale=S mode=M"
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
log "machine: $m_nproc x $m_cpu, $m_mem, kernel $m_kernel ($m_virt), load $m_load"
log "this is a $m_nproc-core shared VM: client, server, agent and API server share it"

# --- topology ----------------------------------------------------------------------
mkdir -p "$BPFFS"
mount -t bpf bpf "$BPFFS"
mkdir "$CG"
ip netns add "$NS"
ip -n "$NS" link set lo up
backends=() targets=()
for ((i = 1; i <= ENDPOINTS; i++)); do
	ip -n "$NS" addr add "198.19.160.$i/32" dev lo
	backends+=("198.19.160.$i")
	targets+=("198.19.160.$i:8080")
done
BACKENDS=$(IFS=,; echo "${backends[*]}")
DIRECT=$(IFS=,; echo "${targets[*]}")
# Server-side TIME_WAIT (the server closes first) is bounded; more would only
# cost memory. The client never holds TIME_WAIT, so its ports never run out.
ip netns exec "$NS" sysctl -qw net.ipv4.ip_local_port_range="1024 65535"
ip netns exec "$NS" taskset -c "$SERVER_CPU" "$BIN/connbench" serve --addrs "$BACKENDS" --port 8080 \
	--ready-file "$tmp/serve.ready" 2>"$tmp/serve.log" &
pids+=("$!")
for ((i = 0; i < 100; i++)); do [[ -s $tmp/serve.ready ]] && break; sleep 0.05; done
[[ -s $tmp/serve.ready ]] || { echo "datapath bench: connbench serve did not start" >&2; cat "$tmp/serve.log" >&2; exit 1; }

# in_node CMD...: runs CMD inside the node's cgroup and netns (the client).
in_node() { bash -c 'echo $$ >"$0/cgroup.procs" && exec ip netns exec "$1" "${@:2}"' "$CG" "$NS" "$@"; }

# --- API server and agent ------------------------------------------------------------
CONTROL_PID= URL=
start_control() {
	local port i
	port=$("$BIN/apibench" freeport)
	URL=http://127.0.0.1:$port
	# No controllers: apibench writes the EndpointSlices itself (there are no pods), and
	# the EndpointSlice controller would replace them with empty ones.
	"$BIN/sluice-control" --listen "127.0.0.1:$port" --store memory --controllers none \
		--service-cidr $SVC_CIDR --log-level warn >>"$tmp/control.log" 2>&1 &
	CONTROL_PID=$!
	pids+=("$CONTROL_PID")
	for ((i = 0; i < 200; i++)); do
		curl -sf -o /dev/null "$URL/api/v1/namespaces/default" && return 0
		kill -0 "$CONTROL_PID" 2>/dev/null || break
		sleep 0.05
	done
	echo "datapath bench: sluice-control did not start:" >&2
	cat "$tmp/control.log" >&2
	exit 1
}

post() { # post PATH JSON: must answer 201
	local code
	code=$(curl -s -o "$tmp/post.out" -w '%{http_code}' -H 'Content-Type: application/json' \
		-X POST "$URL$1" -d "$2")
	[[ $code == 201 ]] || { echo "datapath bench: POST $1: HTTP $code $(head -c 300 "$tmp/post.out")" >&2; exit 1; }
}

bench_objects() {
	local eps="" b
	for b in "${backends[@]}"; do
		eps+="${eps:+,}{\"addresses\":[\"$b\"],\"conditions\":{\"ready\":true},\"nodeName\":\"$NODE\"}"
	done
	post /api/v1/nodes '{"metadata":{"name":"'$NODE'"},"status":{"addresses":[{"type":"InternalIP","address":"198.19.170.10"}]}}'
	post /api/v1/namespaces/default/services '{"metadata":{"name":"bench"},"spec":{"clusterIP":"'$VIP'","selector":{"app":"bench"},"ports":[{"name":"http","port":80,"targetPort":8080}]}}'
	post /apis/discovery.k8s.io/v1/namespaces/default/endpointslices '{"apiVersion":"discovery.k8s.io/v1","kind":"EndpointSlice","metadata":{"name":"bench-1","namespace":"default","labels":{"kubernetes.io/service-name":"bench"}},"addressType":"IPv4","ports":[{"name":"http","port":8080,"protocol":"TCP"}],"endpoints":['"$eps"']}'
}

MPORT=$("$BIN/apibench" freeport)
AGENT_ARGS=(--node-name $NODE --server URL --bpffs "$BPFFS" --cgroup-root "$CG"
	--metrics-listen "127.0.0.1:$MPORT" --log-level info)
agent_args() { local a=("${AGENT_ARGS[@]}"); a[3]=$URL; printf '%s\n' "${a[@]}"; }

# The agent handles SIGTERM only between syncs (a first sync at 10,000
# Services takes many seconds) and is fail-static by design, so the benchmark
# simply kills it; --cleanup then unpins what it left.
agent_stop() {
	local i
	[[ -n $AGENT_PID ]] || return 0
	kill -KILL "$AGENT_PID" 2>/dev/null || true
	for ((i = 0; i < 200; i++)); do kill -0 "$AGENT_PID" 2>/dev/null || break; sleep 0.05; done
	AGENT_PID=
}

agent_unpin() {
	"$BIN/sluice-agent" --node-name $NODE --bpffs "$BPFFS" --cleanup >>"$tmp/agent.log" 2>&1
}

# record REP SCALE MODE CMD...: runs a connbench command, keeps its line.
record() {
	local rep=$1 scale=$2 mode=$3 line
	shift 3
	if line=$("$@" 2>"$tmp/cb.err"); then
		:
	else
		failures+=("scale $scale $mode rep $rep: ${*##*/}: $(tail -3 "$tmp/cb.err" | tr '\n' ' ')")
		log "FAILED: $*"
		cat "$tmp/cb.err" >&2
	fi
	if [[ -n $line ]]; then
		echo "rep=$rep $line scale=$scale mode=$mode" >>"$raw"
		log "$line ($mode)"
	fi
}

# split REP SCALE N0: the agent's own account of a start (its "first sync:" log
# line, the N0+1-th in the log: written after the writes and reconciliation).
split() {
	local rep=$1 scale=$2 n0=$3 i line
	for ((i = 0; i < 300; i++)); do
		(($(grep -c 'first sync:' "$tmp/agent.log" 2>/dev/null || true) > n0)) && break
		sleep 0.1
	done
	line=$(grep 'first sync:' "$tmp/agent.log" 2>/dev/null | sed -n "$((n0 + 1))p")
	[[ -n $line ]] || { log "no 'first sync' line from the agent"; return 0; }
	# "BPF loaded at A s; lists taken in at B s (Services), C s (EndpointSlices),
	# D s (Nodes); N objects decoded in E s of loop time; plan F s (P of Q fragments
	# built ahead); map writes G s (...); done at H s"
	echo "$line" | sed 's/.*first sync: //' | awk -v r="$rep" -v sc="$scale" '{
		gsub(/[;,()]/, " "); n = split($0, w, " ")
		for (i = 1; i < n; i++) {
			if (w[i] == "loaded" && w[i + 1] == "at") bpf = w[i + 2]
			if (w[i] == "in" && w[i + 1] == "at") svc = w[i + 2]
			if (w[i] == "Services") eps = w[i + 1]
			if (w[i] == "objects" && w[i + 1] == "decoded") dec = w[i + 3]
			if (w[i] == "plan") plan = w[i + 1]
			if (w[i] == "fragments" && w[i + 1] == "built") ahead = w[i - 3]
			if (w[i] == "writes") wr = w[i + 1]
			if (w[i] == "done" && w[i + 1] == "at") done = w[i + 2]
		}
		printf "rep=%s split scale=%s mode=cold bpf_s=%s svc_s=%s eps_s=%s decode_s=%s plan_s=%s ahead=%s write_s=%s done_s=%s\n",
			r, sc, bpf, svc, eps, dec, plan, ahead, wr, done }' >>"$raw"
}

# cold_start REP SCALE [PREFIX...]: agent start to every frontend programmed.
cold_start() {
	local rep=$1 scale=$2 n0
	shift 2
	n0=$(grep -c 'first sync:' "$tmp/agent.log" 2>/dev/null || true)
	mapfile -t args < <(agent_args)
	record "$rep" "$scale" cold "$BIN/connbench" mapwait --url "$URL" --pin "$PIN" --timeout 120 \
		--pidfile "$tmp/agent.pid" --child-log "$tmp/agent.log" -- "$@" "$BIN/sluice-agent" "${args[@]}"
	AGENT_PID=$(cat "$tmp/agent.pid")
	# CPU the agent used from its start until every frontend was in the map
	# (all threads, user + system): on a shared machine wall time mostly
	# measures the other tenants, this does not.
	if ((rep > 0)) && [[ -r /proc/$AGENT_PID/stat ]]; then
		awk -v r="$rep" -v sc="$scale" -v hz="$(getconf CLK_TCK)" \
			'{ printf "rep=%s cpu scale=%s mode=cold cpu_s=%.3f\n", r, sc, ($14 + $15) / hz }' \
			"/proc/$AGENT_PID/stat" >>"$raw"
		split "$rep" "$scale" "${n0:-0}"
	fi
}

metrics() { curl -sf "http://127.0.0.1:$MPORT/metrics"; }

# wait_frontends REP SCALE N: until /metrics reports N frontends and nothing
# pending (the agent answers /metrics from its sync loop, so this also waits
# for the end of the first sync); keeps the scrape in $tmp/metrics-SCALE.txt,
# records the first sync's duration, then times one more scrape of the idle
# agent (it walks the maps entry by entry).
wait_frontends() {
	local rep=$1 scale=$2 want=$3 i t0 t1 f=$tmp/metrics-$2.txt
	for ((i = 0; i < 600; i++)); do
		metrics >"$f" || : >"$f"
		if awk -v w="$want" '$1 == "sluice_agent_frontends" && $2 == w { f = 1 }
			$1 == "sluice_agent_sync_pending" && $2 == 0 { p = 1 } END { exit !(f && p) }' "$f"; then
			t0=$(date +%s%N)
			metrics >/dev/null || true
			t1=$(date +%s%N)
			awk -v r="$rep" -v sc="$scale" -v ms="$(((t1 - t0) / 1000000))" '
				$1 == "sluice_agent_sync_duration_seconds_sum" { s = $2 }
				END { printf "rep=%s sync scale=%s mode=first first_sync_s=%s scrape_ms=%s\n", r, sc, s, ms }' \
				"$f" >>"$raw"
			return 0
		fi
		sleep 0.1
	done
	echo "datapath bench: agent did not reach $want frontends" >&2
	return 1
}

rss() { # rss SCALE STATE PID
	awk -v sc="$1" -v st="$2" '
		/^VmRSS:/ { r = $2 } /^VmHWM:/ { h = $2 } /^RssAnon:/ { a = $2 } /^RssFile:/ { f = $2 }
		END { printf "rep=1 rss scale=%s mode=%s vmrss_kb=%d vmhwm_kb=%d rssanon_kb=%d rssfile_kb=%d\n",
		      sc, st, r, h, a, f }' "/proc/$3/status" | tee -a "$raw" >&2
}

# profile NAME SECONDS: perf record -g on the running agent.
profile_attach() {
	perf record -e cpu-clock -F 499 -g -o "$tmp/perf-$1.data" -p "$AGENT_PID" -- sleep "$2" \
		>/dev/null 2>"$tmp/perf-$1.log" &
	PERF_PID=$!
	sleep 0.3
}

perf_top() { # perf_top NAME: flat self-time and inclusive-time tops
	local f=$tmp/perf-$1.data
	[[ -s $f ]] || { echo "(no profile: $(tail -1 "$tmp/perf-$1.log" 2>/dev/null))"; return; }
	echo "Self time (top 20 symbols):"
	echo
	echo '```'
	perf report -i "$f" --stdio --no-children --sort dso,symbol -g none --percent-limit 0.8 2>/dev/null |
		grep -v '^#' | grep -v '^$' | sed 's/[ -]*$//' | head -20
	echo '```'
	echo
	echo "Inclusive time (children included, top 25):"
	echo
	echo '```'
	perf report -i "$f" --stdio --children --sort dso,symbol -g none --percent-limit 3 2>/dev/null |
		grep -v '^#' | grep -v '^$' | sed 's/[ -]*$//' | head -25
	echo '```'
}

# --- measurements ------------------------------------------------------------------
top_scale=${SCALES##* }
VIP_T=$VIP:80
for scale in $SCALES; do
	log "scale $scale: fresh API server, loading $scale Services x $ENDPOINTS endpoints"
	start_control
	bench_objects
	if ((scale > 1)); then
		record 1 "$scale" load "$BIN/apibench" load --api sluice --url "$URL" \
			--services $((scale - 1)) --slices $((scale - 1)) --endpoints $ENDPOINTS \
			--namespaces 10 --clients 16
	fi

	# 1. programming from empty (maps unpinned before each start).
	for ((rep = 1; rep <= PROG_REPS; rep++)); do
		agent_stop
		agent_unpin
		cold_start "$rep" "$scale"
		# What mapwait waited for: every ClusterIP port in the API.
		want=$(awk -v r="$rep" -v sc="$scale" '$1 == "rep=" r && $2 == "mapwait" && index($0, " scale=" sc " ") {
			for (i = 1; i <= NF; i++) if ($i ~ /^frontends=/) { split($i, a, "="); n = a[2] } } END { print n + 0 }' "$raw")
		# The last start also checks the agent's own view (one scrape:
		# at 10,000 Services a scrape takes seconds).
		if ((rep == PROG_REPS)); then
			wait_frontends "$rep" "$scale" "$want" ||
				failures+=("scale $scale: agent never reached $want frontends")
		fi
	done
	rss "$scale" programmed "$AGENT_PID"

	# 2. connections/s. Every client run is in the node cgroup; only the
	# destination differs.
	for ((rep = 1; rep <= REPS; rep++)); do
		order="clusterip direct"
		((rep % 2 == 0)) && order="direct clusterip"
		for mode in $order; do
			t=$VIP_T
			[[ $mode == direct ]] && t=$DIRECT
			record "$rep" "$scale" "$mode" in_node taskset -c "$CLIENT_CPU" "$BIN/connbench" closed --targets "$t" \
				--conns "$CONNS" --seconds "$RUN_SECONDS" --warmup 0.5 --tag "s${scale}r$rep"
		done
	done
	if [[ -z $OPEN_RATE ]]; then
		# Half the physical limit measured at the first scale, so the open
		# loop measures latency, not a queue; then fixed for every scale.
		OPEN_RATE=$(awk -v sc="$scale" '$2 == "closed" && index($0, " scale=" sc " mode=direct") {
			for (i = 1; i <= NF; i++) if ($i ~ /^rate=/) { split($i, a, "="); print a[2] } }' "$raw" |
			sort -g | awk '{ v[NR] = $1 } END {
				m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
				r = int(m / 2 / 500) * 500; print (r < 500 ? 500 : r) }')
		log "open-loop rate: $OPEN_RATE connections/s (half the direct closed-loop median)"
	fi
	for ((rep = 1; rep <= REPS; rep++)); do
		order="clusterip direct"
		((rep % 2 == 0)) && order="direct clusterip"
		for mode in $order; do
			t=$VIP_T
			[[ $mode == direct ]] && t=$DIRECT
			record "$rep" "$scale" "$mode" in_node taskset -c "$CLIENT_CPU" "$BIN/connbench" open --targets "$t" \
				--rate "$OPEN_RATE" --seconds "$RUN_SECONDS" --warmup 0.5 --tag "s${scale}r$rep"
		done
	done

	# 3. endpoint change to datapath.
	record 1 "$scale" change "$BIN/connbench" change --url "$URL" --pin "$PIN" \
		--slice default/bench-1 --service bench --vip "$VIP_T" --backends "$BACKENDS" \
		--node $NODE --samples "$CHANGE_SAMPLES" --budget "$CHANGE_BUDGET" \
		--cdf "$tmp/change-$scale.txt"
	# The agent's share per sample: from connbench's watch event (a watcher
	# like the agent) to the map; the API server's and the watch's tails
	# are in the other columns.
	if [[ -s $tmp/change-$scale.txt ]]; then
		awk '$4 >= 0 { print $2 - $4 }' "$tmp/change-$scale.txt" | sort -g | awk -v sc="$scale" '
			{ v[NR] = $1 } END { if (NR) printf "rep=1 agentshare scale=%s mode=watch-to-map p50_ms=%.3f p99_ms=%.3f\n",
				sc, v[int((NR - 1) * 0.50) + 1], v[int((NR - 1) * 0.99) + 1] }' >>"$raw"
	fi
	rss "$scale" after-changes "$AGENT_PID"
	if ((scale == top_scale && PROFILE)) && command -v perf >/dev/null; then
		log "profiling the agent: endpoint changes"
		profile_attach change 8
		"$BIN/connbench" change --url "$URL" --pin "$PIN" --slice default/bench-1 \
			--service bench --vip "$VIP_T" --backends "$BACKENDS" --node $NODE \
			--samples 40 --budget 6 >/dev/null 2>>"$tmp/perf-change.log" || true
		wait "$PERF_PID" 2>/dev/null || true
	fi
	# Diagnostic: how much of the RSS is freed heap that glibc keeps.
	if command -v gdb >/dev/null; then
		gdb -p "$AGENT_PID" -batch -ex 'call (int)malloc_trim(0)' >/dev/null 2>&1 || true
		rss "$scale" after-trim "$AGENT_PID"
	fi

	if ((scale == top_scale)); then
		# 4. map memory: preallocated, so it is the same at every scale.
		for f in "$PIN"/sl_*; do
			bpftool map show pinned "$f" 2>/dev/null
		done | awk -v sc="$scale" '
			/^[0-9]+: / { name = ""; for (i = 1; i <= NF; i++) if ($i == "name") name = $(i + 1); type = $2 }
			/max_entries/ { for (i = 1; i <= NF; i++) { if ($i == "key") k = $(i + 1); if ($i == "value") v = $(i + 1)
				if ($i == "max_entries") m = $(i + 1); if ($i == "memlock") l = $(i + 1) }
				sub(/B$/, "", k); sub(/B$/, "", v); sub(/B$/, "", l)
				if (name != "") printf "rep=1 map scale=%s mode=%s type=%s key=%s value=%s max_entries=%s memlock=%s\n", sc, name, type, k, v, m, l }' >>"$raw"
		if ((PROFILE)) && command -v perf >/dev/null; then
			log "profiling the agent: a cold start"
			agent_stop
			agent_unpin
			cold_start 0 "$scale" perf record -e cpu-clock -F 499 -g -o "$tmp/perf-cold.data" --
			# AGENT_PID is perf's; SIGTERM the agent under it (handled when its
			# first sync, reconciliation included, ends) so perf writes its file.
			stop_pid "$(pgrep -P "$AGENT_PID" | head -1)" 60
			stop_pid "$AGENT_PID" 30
			AGENT_PID=
			sed -i '/^rep=0 /d' "$raw"
		fi
	fi
	agent_stop
	agent_unpin
	stop_pid "$CONTROL_PID"
done
elapsed=$(($(date +%s) - t_start))
log "measurements done in ${elapsed}s"

# --- report --------------------------------------------------------------------------
# vals KIND FIELD SELECTORS...: the FIELD values of every KIND line that
# carries all SELECTORS (key=value words), in run order.
vals() {
	local kind=$1 field=$2
	shift 2
	awk -v kind="$kind" -v field="$field" -v sel="$*" '
		BEGIN { n = split(sel, want, " ") }
		$2 != kind { next }
		{
			delete kv
			for (i = 1; i <= NF; i++) { p = index($i, "="); if (p) kv[substr($i, 1, p - 1)] = substr($i, p + 1) }
			for (j = 1; j <= n; j++) { p = index(want[j], "="); if (kv[substr(want[j], 1, p - 1)] != substr(want[j], p + 1)) next }
			if (field in kv) print kv[field]
		}' "$raw"
}
# stat KIND FIELD SELECTORS...: "median min max runs" (runs ;-separated)
stat() {
	vals "$@" | sort -g | awk '
		{ v[NR] = $1 }
		END {
			if (!NR) { print "nan nan nan -"; exit }
			med = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
			runs = v[1]; for (i = 2; i <= NR; i++) runs = runs ";" v[i]
			print med, v[1], v[NR], runs
		}'
}
med() { stat "$@" | awk '{ print $1 }'; }
fmt() { awk -v v="$1" -v f="${2:-%.1f}" 'BEGIN { if (v == "nan" || v == "") print "n/a"; else printf f, v }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "nan" || b == "nan" || a == "" || b == "" || b == 0) print "nan"; else printf "%.3f\n", a / b }'; }
yes_no() { awk -v c="$1" 'BEGIN { print (c == 1 ? "**yes**" : c == 0 ? "**no**" : "n/a") }'; }
cmp() { awk -v a="$1" -v op="$2" -v b="$3" 'BEGIN { if (a == "nan" || a == "") { print "x"; exit }
	print (op == "<" ? a < b : a >= b) ? 1 : 0 }'; }
# Per-rep ClusterIP/direct ratio of a closed-loop metric (the two modes of a
# rep ran back to back, so noise hits both), then the median over reps.
rep_ratios() { # rep_ratios SCALE: the per-run ratios, sorted
	local r a b
	for ((r = 1; r <= REPS; r++)); do
		a=$(vals closed rate scale="$1" mode=clusterip rep=$r | head -1)
		b=$(vals closed rate scale="$1" mode=direct rep=$r | head -1)
		ratio "$a" "$b"
	done | { grep -v nan || true; } | sort -g
}
ratio_range() { rep_ratios "$1" | awk 'NR == 1 { lo = $1 } { hi = $1 } END { if (NR) printf "%.2f-%.2f", lo, hi; else print "n/a" }'; }
rep_ratio() { # rep_ratio SCALE
	local r a b
	for ((r = 1; r <= REPS; r++)); do
		a=$(vals closed rate scale="$1" mode=clusterip rep=$r | head -1)
		b=$(vals closed rate scale="$1" mode=direct rep=$r | head -1)
		ratio "$a" "$b"
	done | { grep -v nan || true; } | sort -g | awk '{ v[NR] = $1 } END {
		if (!NR) { print "nan"; exit } print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'
}
# vals() matches on the first word "rep=N" only through the selector rep=N.

csv=$OUT/datapath.csv
echo "benchmark,scale,mode,metric,unit,median,min,max,runs" >"$csv"
row() { # row BENCH SCALE MODE METRIC UNIT KIND FIELD SELECTORS...
	local b=$1 sc=$2 m=$3 me=$4 u=$5
	shift 5
	read -r md mn mx runs < <(stat "$@")
	echo "$b,$sc,$m,$me,$u,$md,$mn,$mx,$runs" >>"$csv"
}
for sc in $SCALES; do
	for m in clusterip direct; do
		for f in rate:conn/s p50_ms:ms p99_ms:ms p999_ms:ms errors:count; do
			row closed "$sc" "$m" "${f%%:*}" "${f#*:}" closed "${f%%:*}" scale="$sc" mode="$m"
		done
		for f in rate:conn/s p50_ms:ms p90_ms:ms p99_ms:ms p999_ms:ms max_ms:ms errors:count; do
			row open "$sc" "$m" "${f%%:*}" "${f#*:}" open "${f%%:*}" scale="$sc" mode="$m"
		done
	done
	echo "closed,$sc,ratio,clusterip_over_direct,ratio,$(rep_ratio "$sc"),,," >>"$csv"
	for f in frontends:count pin_s:s first_s:s all_s:s; do
		row program "$sc" cold "${f%%:*}" "${f#*:}" mapwait "${f%%:*}" scale="$sc"
	done
	row program "$sc" cold first_sync_s s sync first_sync_s scale="$sc"
	row program "$sc" cold agent_cpu_s s cpu cpu_s scale="$sc"
	row program "$sc" cold metrics_scrape_ms ms sync scrape_ms scale="$sc"
	for f in bpf_s svc_s eps_s decode_s plan_s write_s done_s; do
		row program "$sc" split "$f" s split "$f" scale="$sc"
	done
	row program "$sc" split ahead count split ahead scale="$sc"
	for f in samples:count p50_ms:ms p90_ms:ms p99_ms:ms max_ms:ms ack_p50_ms:ms ack_p99_ms:ms \
		watch_p50_ms:ms watch_p99_ms:ms errors:count; do
		row change "$sc" put-to-map "${f%%:*}" "${f#*:}" change "${f%%:*}" scale="$sc"
	done
	row change "$sc" watch-to-map p50_ms ms agentshare p50_ms scale="$sc"
	row change "$sc" watch-to-map p99_ms ms agentshare p99_ms scale="$sc"
	for st in programmed after-changes after-trim; do
		for f in vmrss_kb vmhwm_kb rssanon_kb; do
			row rss "$sc" "$st" "$f" kB rss "$f" scale="$sc" mode="$st"
		done
	done
done
while read -r name; do
	for f in max_entries:entries memlock:bytes key:bytes value:bytes; do
		row map "$top_scale" "$name" "${f%%:*}" "${f#*:}" map "${f%%:*}" mode="$name"
	done
done < <(vals map mode scale="$top_scale" | sort -u)

# Plot data.
pd=$tmp/plot
mkdir -p "$pd"
{
	echo "# scale clusterip direct"
	for sc in $SCALES; do echo "$sc $(med closed rate scale=$sc mode=clusterip) $(med closed rate scale=$sc mode=direct)"; done
} >"$pd/closed.dat"
{
	echo "# label clusterip direct"
	for sc in $SCALES; do
		for p in p50 p99; do
			echo "$p,$sc $(med open ${p}_ms scale=$sc mode=clusterip) $(med open ${p}_ms scale=$sc mode=direct)"
		done
	done
} >"$pd/open.dat"
{
	echo "# scale all_s first_sync_s"
	for sc in $SCALES; do echo "$sc $(med mapwait all_s scale=$sc) $(med sync first_sync_s scale=$sc)"; done
} >"$pd/program.dat"
{
	echo "# scale p50 p99"
	for sc in $SCALES; do echo "$sc $(med change p50_ms scale=$sc) $(med change p99_ms scale=$sc)"; done
} >"$pd/change.dat"
{
	echo "# scale programmed after-changes after-trim (MiB)"
	for sc in $SCALES; do
		echo "$sc $(med rss vmrss_kb scale=$sc mode=programmed | awk '{ print $1 / 1024 }') $(med rss vmrss_kb scale=$sc mode=after-changes | awk '{ print $1 / 1024 }') $(med rss vmrss_kb scale=$sc mode=after-trim | awk '{ print ($1 == "nan" ? "nan" : $1 / 1024) }')"
	done
} >"$pd/rss.dat"
for sc in $SCALES; do
	if [[ -s $tmp/change-$sc.txt ]]; then
		awk '{ print $2 }' "$tmp/change-$sc.txt" | sort -g | awk '{ v[NR] = $1 } END { for (i = 1; i <= NR; i++) print 100 * i / NR, v[i] }' >"$pd/cdf-$sc.dat"
	else
		echo "50 nan" >"$pd/cdf-$sc.dat"
	fi
done
png_note=""
if command -v gnuplot >/dev/null; then
	if ! gnuplot -e "dir='$pd'; out='$OUT/datapath.png'; scales='$SCALES'; \
		title='sluice socket LB datapath, $m_nproc x $m_cpu (shared VM), $m_date (medians of $REPS)'" \
		tools/bench/datapath.gnuplot; then
		png_note="(plot failed: see the log)"
	fi
else
	png_note="(no plot: gnuplot not installed; the Debian package is gnuplot-nox)"
	log "$png_note"
fi

# --- Markdown ------------------------------------------------------------------------
F0() { fmt "$(med "$@")" "%.0f"; }
F2() { fmt "$(med "$@")" "%.2f"; }
F3() { fmt "$(med "$@")" "%.3f"; }
MB() { awk -v v="$(med "$@")" 'BEGIN { if (v == "nan") print "n/a"; else printf "%.1f", v / 1024 }'; }
first_scale=${SCALES%% *}

# Goal 1: ratio >= 0.95 at every scale; flat: the ratio at every scale within
# 5% of the first scale's, and the absolute ClusterIP rate too.
ratios="" ok_ratio=1 ok_flat=1 ok_flat_abs=1
r0=$(rep_ratio "$first_scale")
c0=$(med closed rate scale=$first_scale mode=clusterip)
for sc in $SCALES; do
	r=$(rep_ratio "$sc")
	ratios+="${ratios:+, }$sc: $(fmt "$r" %.2f)"
	[[ $(cmp "$r" ">=" 0.95) == 1 ]] || ok_ratio=0
	d=$(awk -v a="$r" -v b="$r0" 'BEGIN { if (a == "nan" || b == "nan") print 1; else print (a / b - 1 < 0 ? 1 - a / b : a / b - 1) }')
	[[ $(cmp "$d" "<" 0.05) == 1 ]] || ok_flat=0
	c=$(med closed rate scale=$sc mode=clusterip)
	d=$(awk -v a="$c" -v b="$c0" 'BEGIN { if (a == "nan" || b == "nan") print 1; else print (a / b - 1 < 0 ? 1 - a / b : a / b - 1) }')
	[[ $(cmp "$d" "<" 0.05) == 1 ]] || ok_flat_abs=0
done
flat_txt=""
for sc in $SCALES; do
	flat_txt+="${flat_txt:+, }$sc: $(F0 closed rate scale=$sc mode=clusterip)"
done
prog=$(med mapwait all_s scale=$top_scale)
chg99=$(med change p99_ms scale=$top_scale)
chg_n=$(med change samples scale=$top_scale)
rss_top=$(med rss vmrss_kb scale=$top_scale mode=after-changes)
rss_mib=$(awk -v v="$rss_top" 'BEGIN { if (v == "nan") print "nan"; else printf "%.1f", v / 1024 }')
status="all runs completed without errors"
((${#failures[@]})) && status="**FAILED**: ${#failures[@]} run(s) had errors (listed below); figures from those runs are not valid"
missed=0
for v in "$ok_ratio" "$ok_flat" "$(cmp "$prog" "<" 1)" "$(cmp "$chg99" "<" 10)" "$(cmp "$rss_mib" "<" 64)"; do
	[[ $v == 1 ]] || missed=1
done

# Map memory: memlock is preallocated at max_entries, so it is the same at
# every scale; per entry = memlock / max_entries.
map_b() { med map memlock mode="$1"; }
map_per() { awk -v m="$(med map memlock mode="$1")" -v e="$(med map max_entries mode="$1")" 'BEGIN { if (m == "nan" || !e) print "nan"; else printf "%.1f", m / e }'; }
mem_total=$(vals map memlock scale="$top_scale" | awk '{ s += $1 } END { print s + 0 }')
per_fe=$(awk -v a="$(map_per sl_svc4_v1)" -v b="$(map_per sl_revnat4_v1)" 'BEGIN { printf "%.0f", a + b }')
per_be=$(awk -v a="$(map_per sl_be4_v1)" 'BEGIN { printf "%.0f", a }')
per_pair=$(awk -v a="$(map_per sl_slots_v1)" -v b="$(map_per sl_svcbe4_v1)" 'BEGIN { printf "%.0f", a + b }')
fe_top=$(med mapwait frontends scale=$top_scale)
be_top=$(awk '$1 == "sluice_agent_backends" { print $2 }' "$tmp/metrics-$top_scale.txt" 2>/dev/null)

md=$OUT/datapath.md
{
	echo "# Datapath benchmark: socket-level service load balancing"
	echo
	echo "Measured $m_date on commit \`$m_commit\`, $elapsed s. Status: $status."
	echo
	echo "Repeat with \`make && make bench\` (this part alone, as root: \`tools/bench/datapath.sh\`;"
	echo "knobs SCALES=\"$SCALES\" REPS=$REPS PROG_REPS=$PROG_REPS RUN_SECONDS=$RUN_SECONDS CONNS=$CONNS"
	echo "OPEN_RATE=$OPEN_RATE CHANGE_SAMPLES=$CHANGE_SAMPLES CHANGE_BUDGET=$CHANGE_BUDGET PROFILE=$PROFILE)."
	echo
	echo "**Machine:** $m_nproc x $m_cpu, $m_mem, Linux $m_kernel (virtualization: $m_virt);"
	echo "load average at start $m_load, at the end $(cut -d' ' -f1-3 /proc/loadavg). **This is a $m_nproc-core shared VM**: the client, the"
	echo "server, the agent and the API server share its $m_nproc cores, and other jobs may run"
	echo "beside them. Figures are medians of $REPS runs (min-max in the CSV); ClusterIP and"
	echo "direct runs alternate which goes first, so compare ratios more than absolute values."
	echo
	echo "**Topology** (tools/bench/datapath.sh draws it): a route-less netns whose lo holds"
	echo "10 backend addresses 198.19.160.1-10/32, all served by one \`connbench serve\`"
	echo "process (one epoll thread, port 8080). The client (\`connbench closed|open\`, one"
	echo "epoll thread) runs in that netns *and* in the node cgroup where \`sluice-agent\`"
	echo "attached the socket LB, for both modes: *ClusterIP* connects to"
	echo "$VIP:80 and is translated at connect(); *direct* connects round-robin to the same"
	echo "10 backend addresses (the physical limit; the hooks still run and miss). One connection ="
	echo "connect + 32-byte request + 64-byte response + close (the server closes first, so the"
	echo "client never runs out of ports). API server: \`sluice-control --store memory\`,"
	echo "Services in $SVC_CIDR; a private mount namespace with its own bpffs."
	echo
	echo "**Scales:** N Services x $ENDPOINTS ready endpoints each: the bench Service (1 port) plus"
	echo "N-1 from \`apibench load\` (2 ports, http and https, so 2 frontends and 20 backend"
	echo "entries per Service), plus the built-in \`kubernetes\` Service (no endpoints). At"
	echo "$top_scale Services the agent holds $fe_top ClusterIP frontends and ${be_top:-n/a} backends."
	echo
	echo "## Goals"
	echo
	echo "| goal | measured (median) | met |"
	echo "|---|---|---|"
	echo "| ClusterIP connections/s >= 0.95 x direct (closed loop, $CONNS connections) | ratio per scale: $ratios | $(yes_no $ok_ratio) |"
	echo "| flat within 5% from $first_scale to $top_scale Services | ClusterIP/direct ratio within 5% of the $first_scale-Service ratio: $(yes_no $ok_flat); absolute ClusterIP conn/s ($flat_txt) within 5%: $(yes_no $ok_flat_abs) | $(yes_no $ok_flat) (ratio) |"
	echo "| programming $top_scale Services x $ENDPOINTS endpoints from empty < 1 s | $(fmt "$prog" %.2f) s to the last frontend (agent CPU $(F2 cpu cpu_s scale=$top_scale) s; first sync $(F2 sync first_sync_s scale=$top_scale) s) | $(yes_no "$(cmp "$prog" "<" 1)") |"
	echo "| one endpoint change, API write to map, p99 < 10 ms (at $top_scale) | p99 $(fmt "$chg99" %.1f) ms, p50 $(F2 change p50_ms scale=$top_scale) ms ($(fmt "$chg_n" %.0f) samples; the agent's share, watch to map: p99 $(F2 agentshare p99_ms scale=$top_scale) ms) | $(yes_no "$(cmp "$chg99" "<" 10)") |"
	echo "| agent RSS at $top_scale Services < 64 MiB | $(fmt "$rss_mib" %.1f) MiB (peak $(MB rss vmhwm_kb scale=$top_scale mode=after-changes) MiB) | $(yes_no "$(cmp "$rss_mib" "<" 64)") |"
	echo
	echo "## 1. Connections per second"
	echo
	echo "Closed loop: $CONNS connections in flight, each replaced the moment it ends, ${RUN_SECONDS} s"
	echo "after 0.5 s warm-up; latency from connect(). Open loop: a fixed $OPEN_RATE connections/s"
	echo "(half the direct closed-loop rate at the first scale) from a schedule, latency from"
	echo "each connection's *intended* start (no coordinated omission), ${RUN_SECONDS} s after 0.5 s."
	echo
	echo "| Services | ClusterIP conn/s | direct conn/s | ClusterIP / direct (range of $REPS paired runs) | closed p50 / p99 ms (ClusterIP) | closed p50 / p99 ms (direct) | open p50 / p99 ms (ClusterIP) | open p50 / p99 ms (direct) |"
	echo "|---|---|---|---|---|---|---|---|"
	for sc in $SCALES; do
		echo "| $sc | $(F0 closed rate scale=$sc mode=clusterip) | $(F0 closed rate scale=$sc mode=direct) | $(fmt "$(rep_ratio "$sc")" %.2f) ($(ratio_range "$sc")) | $(F2 closed p50_ms scale=$sc mode=clusterip) / $(F2 closed p99_ms scale=$sc mode=clusterip) | $(F2 closed p50_ms scale=$sc mode=direct) / $(F2 closed p99_ms scale=$sc mode=direct) | $(F2 open p50_ms scale=$sc mode=clusterip) / $(F2 open p99_ms scale=$sc mode=clusterip) | $(F2 open p50_ms scale=$sc mode=direct) / $(F2 open p99_ms scale=$sc mode=direct) |"
	done
	echo
	echo "The ratio is taken per run (ClusterIP and direct back to back) and then the median;"
	echo "per-run rates are in the CSV. On this VM the spread between runs of the *same* mode"
	echo "is often larger than 5%, so a difference of a few percent is within the noise."
	echo
	echo "## 2. Programming from empty"
	echo
	echo "The objects are in the API first; the maps are unpinned (\`sluice-agent --cleanup\`), then"
	echo "\`connbench mapwait\` lists the Services, starts the agent and polls the pinned"
	echo "\`sl_svc4_v1\` (every 0.5 ms, \`bpf_obj_get\` + lookups) until every ClusterIP frontend"
	echo "is there. The agent writes backends first and each frontend last, with its final"
	echo "backend list, so the last frontend marks a complete datapath. *First sync* is the"
	echo "agent's own duration of that sync (\`sluice_agent_sync_duration_seconds_sum\`): it also"
	echo "covers the reconciliation after the writes. $PROG_REPS starts per scale; the first"
	echo "sync and the scrape time (one /metrics request to the idle agent afterwards) are"
	echo "from the last start. *Agent CPU* is the agent's user + system time (all threads)"
	echo "from its start to the moment mapwait saw the last frontend, from /proc/PID/stat:"
	echo "on a shared machine the wall time mostly measures the other tenants."
	echo
	echo "| Services | frontends | maps pinned s | first frontend s | all frontends s | agent CPU s | first sync s | one /metrics scrape ms |"
	echo "|---|---|---|---|---|---|---|---|"
	for sc in $SCALES; do
		echo "| $sc | $(F0 mapwait frontends scale=$sc) | $(F3 mapwait pin_s scale=$sc) | $(F3 mapwait first_s scale=$sc) | $(F3 mapwait all_s scale=$sc) | $(F3 cpu cpu_s scale=$sc) | $(F3 sync first_sync_s scale=$sc) | $(F0 sync scrape_ms scale=$sc) |"
	done
	echo
	echo "Where a start's time goes, from the agent's own clock (its \`first sync:\` log line;"
	echo "times since the agent's start, medians of the $PROG_REPS starts). The informers start"
	echo "first, so the lists travel while the BPF objects load; a list is *taken in* when the"
	echo "loop has dispatched its last item, decoded and copied, so the lists' columns include"
	echo "the transfer, the parse and the decode. *Decode* is the loop's time in the handlers"
	echo "(typed decode and compact copy of every object, overlapping the transfer); *plan* is"
	echo "building the model (\`lbi_plan\`) and *map writes* writing it, both in the first sync;"
	echo "*built ahead* is how many Services' fragments the plan found already built while the"
	echo "lists arrived (\`lbi_prebuild\`); *done* is the end of the writes, reconciliation included."
	echo
	echo "| Services | BPF loaded s | Services list in s | EndpointSlices list in s | decode s | plan s | built ahead | map writes s | done s |"
	echo "|---|---|---|---|---|---|---|---|---|"
	for sc in $SCALES; do
		echo "| $sc | $(F3 split bpf_s scale=$sc) | $(F3 split svc_s scale=$sc) | $(F3 split eps_s scale=$sc) | $(F3 split decode_s scale=$sc) | $(F3 split plan_s scale=$sc) | $(F0 split ahead scale=$sc) | $(F3 split write_s scale=$sc) | $(F3 split done_s scale=$sc) |"
	done
	echo
	echo "## 3. One endpoint change, API write to datapath"
	echo
	echo "\`connbench change\` PUTs the bench Service's EndpointSlice alternately with all $ENDPOINTS"
	echo "endpoints and without the last one; the clock starts just before the request is"
	echo "written and stops when the pinned \`sl_svc4_v1\` entry of $VIP:80 holds the new"
	echo "backend count in a new slot block (polled every ~20 us with \`bpf_map_lookup_elem\`)."
	echo "$CHANGE_SAMPLES samples per scale, 10-20 ms apart, or as many as fit in"
	echo "${CHANGE_BUDGET} s. *PUT ack* is when the API server answered; *watch* is when a"
	echo "watch on that slice (opened by connbench, like the agent's) received the event, so"
	echo "*watch* to *map* is the agent's share (per sample, then the percentiles)."
	echo
	echo "| Services | samples | p50 ms | p90 ms | p99 ms | max ms | PUT ack p50 / p99 ms | watch event p50 / p99 ms | watch to map p50 / p99 ms |"
	echo "|---|---|---|---|---|---|---|---|---|"
	for sc in $SCALES; do
		echo "| $sc | $(F0 change samples scale=$sc) | $(F2 change p50_ms scale=$sc) | $(F2 change p90_ms scale=$sc) | $(F2 change p99_ms scale=$sc) | $(F2 change max_ms scale=$sc) | $(F2 change ack_p50_ms scale=$sc) / $(F2 change ack_p99_ms scale=$sc) | $(F2 change watch_p50_ms scale=$sc) / $(F2 change watch_p99_ms scale=$sc) | $(F2 agentshare p50_ms scale=$sc) / $(F2 agentshare p99_ms scale=$sc) |"
	done
	echo
	echo "## 4. Memory"
	echo
	echo "Agent VmRSS from /proc/PID/status after programming, after the endpoint changes, and"
	echo "(diagnostic) after \`malloc_trim(0)\` called into the agent with gdb: what that gives"
	echo "back is heap the agent had freed but glibc kept."
	echo
	echo "| Services | programmed MiB | after changes MiB | peak (VmHWM) MiB | anon MiB | after malloc_trim MiB |"
	echo "|---|---|---|---|---|---|"
	for sc in $SCALES; do
		echo "| $sc | $(MB rss vmrss_kb scale=$sc mode=programmed) | $(MB rss vmrss_kb scale=$sc mode=after-changes) | $(MB rss vmhwm_kb scale=$sc mode=after-changes) | $(MB rss rssanon_kb scale=$sc mode=after-changes) | $(MB rss vmrss_kb scale=$sc mode=after-trim) |"
	done
	echo
	echo "BPF map memory (\`bpftool map show\`, at $top_scale Services). Every map is preallocated"
	echo "at max_entries, so memlock is the same at 1 Service as at $top_scale; *per entry* ="
	echo "memlock / max_entries."
	echo
	echo "| map | type | key / value B | max_entries | memlock MiB | per entry B |"
	echo "|---|---|---|---|---|---|"
	while read -r name; do
		echo "| $name | $(vals map type mode="$name" | head -1) | $(F0 map key mode="$name") / $(F0 map value mode="$name") | $(F0 map max_entries mode="$name") | $(awk -v b="$(map_b "$name")" 'BEGIN { printf "%.2f", b / 1048576 }') | $(map_per "$name") |"
	done < <(vals map mode scale="$top_scale" | sort -u)
	echo
	echo "Total: $(awk -v b="$mem_total" 'BEGIN { printf "%.1f", b / 1048576 }') MiB of memlock, fixed. Marginal cost, from the per-entry figures:"
	echo "a frontend (svc4 + revnat4) $per_fe B, a backend (be4) $per_be B, a backend in a"
	echo "frontend's list (slots + svcbe4) $per_pair B; so a Service with one port and $ENDPOINTS"
	echo "endpoints uses $(awk -v f="$per_fe" -v b="$per_be" -v p="$per_pair" -v n="$ENDPOINTS" 'BEGIN { printf "%.0f", f + n * (b + p) }') B of capacity. Averaged over the $top_scale Services of this run, the"
	echo "preallocation is $(awk -v b="$mem_total" -v n="$top_scale" 'BEGIN { printf "%.1f", b / n / 1024 }') KiB per Service. sockrev4 and aff4 scale with"
	echo "connections and clients, not Services."
	echo
	echo "![datapath benchmark](datapath.png) $png_note"
	echo
	if ((PROFILE)) && [[ -s $tmp/perf-change.data || -s $tmp/perf-cold.data ]]; then
		echo "## Where the time goes (perf record -g on the agent, $top_scale Services)"
		echo
		echo "\`perf record -e cpu-clock -F 499 -g\` on the agent, with frame pointers"
		echo "(\`-fno-omit-frame-pointer\`); glibc and json-c have none, so some chains stop"
		echo "at their frames (the hex and 0000 entries)."
		echo
		echo "### During endpoint changes (8 s)"
		echo
		perf_top change
		echo
		echo "### Cold start (agent start to the end of its first sync, reconciliation included)"
		echo
		perf_top cold
		echo
	fi
	if ((missed)); then
		# The analysis is kept in a file written for a given agent version,
		# so a rerun on a later commit cannot print a stale diagnosis as fact.
		echo "## Missed goals: analysis"
		echo
		if [[ -f tools/bench/datapath-analysis.md ]]; then
			cat tools/bench/datapath-analysis.md
		else
			echo "See the profiles above."
		fi
		echo
	fi
	if ((${#failures[@]})); then
		echo "## Failed runs"
		echo
		for f in "${failures[@]}"; do echo "- $f"; done
		echo
	fi
	echo "Raw per-run figures: [datapath.csv](datapath.csv)."
} >"$md"

log "wrote $md, $csv, $OUT/datapath.png"
cat "$md"
((${#failures[@]} == 0))
