#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Programming from empty, alone and quickly: the first part of datapath.sh
# (agent start to every ClusterIP frontend in the pinned sl_svc4_v1, timed by
# `connbench mapwait`) at one scale, for one or more builds side by side, so
# a change to the start path can be judged by paired starts in the same
# minute instead of two full benchmark runs an hour apart.
#
#   tools/bench/coldstart.sh                       # 50,000 x 10, build/bin, 5 starts
#   N=10000 REPS=7 BINS="build/a/bin build/b/bin" tools/bench/coldstart.sh
#   PERF=1 N=50000 REPS=1 tools/bench/coldstart.sh # also perf record agent + API server
#   PERF=1 PERF_EV="-e minor-faults -c 1" REPS=0 tools/bench/coldstart.sh # where fresh pages are touched
#
# Each build in BINS gets its own API server (its own sluice-control, memory
# store, loaded once with N Services x 10 endpoints by `connbench load` as
# modes.sh loads it); each round
# starts every build's agent once against its own server, the order turned
# around every round. Between starts the agent is killed and its maps
# unpinned (as datapath.sh does). Printed per start: all_s (mapwait: exec to
# the last frontend), the agent's CPU until then (user + system, all
# threads), the API server's CPU over the same start (mapwait's own list of
# the Services included) and its own "first sync:" line; then the median per build.
# The logs (agent, API servers) are copied to $KEEP at the end. PERF=1 records `perf record -e cpu-clock -g` of the agent (its whole first
# sync) and of the API server (for as long as the agent runs to its last
# frontend) in the first round, kept in $KEEP (default /tmp/coldstart-perf).
# Needs root (cgroup, bpffs, BPF); runs in the host netns on loopback only
# (nothing is routed: the Services are never connected to).
if [[ -z ${SLUICE_COLDSTART_MNTNS:-} ]]; then
	exec env SLUICE_COLDSTART_MNTNS=1 unshare --mount --propagation private bash "$0" "$@"
fi
set -euo pipefail
cd "$(dirname "$0")/../.."

N=${N:-50000}
REPS=${REPS:-5}
BINS=${BINS:-build/bin}
PERF=${PERF:-0}
PERF_CG=${PERF_CG:--g} # e.g. "--call-graph dwarf,16384" for a libc without frame pointers
PERF_EV=${PERF_EV:--e cpu-clock -F 999} # e.g. "-e minor-faults -c 1": where the agent touches fresh pages
KEEP=${KEEP:-/tmp/coldstart-perf}
NODE=node-a
SVC_CIDR=198.19.0.0/16 # room for 65,000 Services, as modes.sh

read -r -a bins <<<"$BINS"
for b in "${bins[@]}"; do
	for x in sluice-control sluice-agent apibench connbench; do
		[[ -x $b/$x ]] || { echo "coldstart: $b/$x missing; run make first" >&2; exit 2; }
	done
done
((EUID == 0)) || { echo "coldstart: needs root (cgroup, bpffs, BPF)" >&2; exit 2; }

tmp=$(mktemp -d /tmp/sluice-coldstart.XXXXXX)
CGROOT=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/self/mounts)
CG=$CGROOT/sluice-coldstart-$$
BPFFS=$tmp/bpffs
PIN=$BPFFS/sluice/$NODE
controls=() urls=()
AGENT_PID=

stop_pid() { # stop_pid PID: TERM, then KILL after 5 s; works for non-children too
	local p=$1 i
	[[ -n $p ]] || return 0
	kill -TERM "$p" 2>/dev/null || return 0
	for ((i = 0; i < 100; i++)); do kill -0 "$p" 2>/dev/null || break; sleep 0.05; done
	kill -KILL "$p" 2>/dev/null || true
	wait "$p" 2>/dev/null || true
}

agent_stop() { # the agent is fail-static: killed, then unpinned by --cleanup
	local i
	[[ -n $AGENT_PID ]] || return 0
	kill -KILL "$AGENT_PID" 2>/dev/null || true
	for ((i = 0; i < 200; i++)); do kill -0 "$AGENT_PID" 2>/dev/null || break; sleep 0.05; done
	AGENT_PID=
	"${bins[0]}/sluice-agent" --node-name $NODE --bpffs "$BPFFS" --cleanup >>"$tmp/agent.log" 2>&1 || true
}

cleanup() {
	local p
	agent_stop
	for p in "${controls[@]}"; do stop_pid "$p"; done
	if [[ -d $CG ]]; then
		while read -r p; do kill -KILL "$p" 2>/dev/null || true; done <"$CG/cgroup.procs"
		sleep 0.1
		rmdir "$CG" 2>/dev/null || true
	fi
	umount "$BPFFS" 2>/dev/null || true
	mkdir -p "$KEEP" && cp "$tmp"/*.log "$KEEP/" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$BPFFS"
mount -t bpf bpf "$BPFFS"
mkdir "$CG"

post() { # post URL PATH JSON: must answer 201
	local code
	code=$(curl -s -o "$tmp/post.out" -w '%{http_code}' -H 'Content-Type: application/json' \
		-X POST "$1$2" -d "$3")
	[[ $code == 201 ]] || { echo "coldstart: POST $2: HTTP $code $(head -c 300 "$tmp/post.out")" >&2; exit 1; }
}

# One API server per build, loaded the same way as datapath.sh loads it.
for ((b = 0; b < ${#bins[@]}; b++)); do
	bin=${bins[b]}
	port=$("$bin/apibench" freeport)
	url=http://127.0.0.1:$port
	"$bin/sluice-control" --listen "127.0.0.1:$port" --store memory --controllers none \
		--service-cidr $SVC_CIDR --log-level warn >>"$tmp/control-$b.log" 2>&1 &
	controls+=("$!")
	urls+=("$url")
	for ((i = 0; i < 200; i++)); do
		curl -sf -o /dev/null "$url/api/v1/namespaces/default" && break
		sleep 0.05
	done
	post "$url" /api/v1/nodes '{"metadata":{"name":"'$NODE'"},"status":{"addresses":[{"type":"InternalIP","address":"198.19.170.10"}]}}'
	t0=$(date +%s.%N)
	# The mode comparison's objects (modes.sh): one port per Service, backends
	# drawn from 30,000 addresses, so 50,000 x 10 fits the backend map.
	"$bin/connbench" load --url "$url" --svc-base 198.19.0.10 --be-base 198.18.1.0 \
		--be-span 30000 --services "$N" --endpoints 10 --node $NODE --clients 4 >"$tmp/load-$b.txt"
	echo "coldstart: $bin: API server loaded with $N Services x 10 in $(echo "$(date +%s.%N) - $t0" | bc) s" >&2
done

MPORT=$("${bins[0]}/apibench" freeport)
res=$tmp/res.txt
: >"$res"
ctl_cpu() { awk '{ print $14 + $15 }' "/proc/${controls[$1]}/stat"; } # in ticks
# start B REP [PREFIX...]: one agent start of build B against its server.
start() {
	local b=$1 rep=$2 bin=${bins[$1]} line cpu sync n0 c0 c1
	shift 2
	n0=$(grep -c 'first sync:' "$tmp/agent.log" 2>/dev/null || true)
	c0=$(ctl_cpu "$b")
	line=$("$bin/connbench" mapwait --url "${urls[b]}" --pin "$PIN" --timeout 120 \
		--pidfile "$tmp/agent.pid" --child-log "$tmp/agent.log" -- "$@" "$bin/sluice-agent" \
		--node-name $NODE --server "${urls[b]}" --bpffs "$BPFFS" --cgroup-root "$CG" \
		--metrics-listen "127.0.0.1:$MPORT" --log-level info) || true
	# Even when mapwait gave up: the agent it started is ours to stop.
	AGENT_PID=$(cat "$tmp/agent.pid" 2>/dev/null || true)
	rm -f "$tmp/agent.pid"
	[[ -n $line ]] || { echo "coldstart: $bin: start $rep failed (mapwait above)" >&2; return 0; }
	c1=$(ctl_cpu "$b")
	cpu=$(awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$AGENT_PID/stat" 2>/dev/null || echo -)
	# Minor faults and peak RSS until then: a fresh page's first touch is
	# expensive on the VMs this runs on, so both explain CPU moves.
	mem=$(awk '{ printf "minflt=%dk", $10 / 1000 }' "/proc/$AGENT_PID/stat" 2>/dev/null || echo minflt=-)
	mem="$mem hwm=$(awk '$1 == "VmHWM:" { printf "%dMiB", $2 / 1024 }' "/proc/$AGENT_PID/status" 2>/dev/null || echo -)"
	for ((i = 0; i < 300; i++)); do
		(($(grep -c 'first sync:' "$tmp/agent.log" 2>/dev/null || true) > ${n0:-0})) && break
		sleep 0.1
	done
	sync=$(grep 'first sync:' "$tmp/agent.log" | sed -n "$((${n0:-0} + 1))p" | sed 's/.*first sync: //')
	ctl=$(awk -v a="$c0" -v b="$c1" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", (b - a) / hz }')
	echo "$b $rep $(echo "$line" | sed 's/.*all_s=\([0-9.]*\).*/\1/') $cpu $ctl" >>"$res"
	printf 'rep %d %-16s all_s=%s cpu_s=%s ctl_cpu_s=%s %s load=%s | %s\n' "$rep" "$bin" \
		"$(echo "$line" | sed 's/.*all_s=\([0-9.]*\).*/\1/')" "$cpu" "$ctl" "$mem" \
		"$(cut -d' ' -f1 /proc/loadavg)" "$sync"
}

if ((PERF)) && command -v perf >/dev/null; then
	mkdir -p "$KEEP"
	for ((b = 0; b < ${#bins[@]}; b++)); do
		agent_stop
		perf record $PERF_EV $PERF_CG -o "$KEEP/control-$b.data" -p "${controls[b]}" \
			>/dev/null 2>>"$tmp/perf.log" &
		ppid=$!
		sleep 0.5
		start "$b" 0 perf record $PERF_EV $PERF_CG -o "$KEEP/agent-$b.data" --
		kill -INT "$ppid"
		wait "$ppid" || true
		# AGENT_PID is perf's: SIGTERM the agent under it (handled when its
		# first sync ends) so perf writes its file.
		pkid=$(pgrep -P "$AGENT_PID" || true)
		[[ -n $pkid ]] && kill -TERM "$pkid" 2>/dev/null || true
		for ((i = 0; i < 200; i++)); do kill -0 "$AGENT_PID" 2>/dev/null || break; sleep 0.05; done
		AGENT_PID=
		"${bins[0]}/sluice-agent" --node-name $NODE --bpffs "$BPFFS" --cleanup >>"$tmp/agent.log" 2>&1 || true
	done
	echo "coldstart: profiles in $KEEP (perf report -i FILE --no-children)" >&2
	: >"$res"
fi

for ((rep = 1; rep <= REPS; rep++)); do
	order=()
	for ((b = 0; b < ${#bins[@]}; b++)); do order+=("$b"); done
	if ((rep % 2 == 0)); then
		mapfile -t order < <(printf '%s\n' "${order[@]}" | tac)
	fi
	for b in "${order[@]}"; do
		agent_stop
		start "$b" "$rep"
	done
done
agent_stop

echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
for ((b = 0; b < ${#bins[@]}; b++)); do
	med() { awk -v b="$b" -v c="$1" '$1 == b { print $c }' "$res" | sort -n |
		awk '{ v[NR] = $1 } END { if (NR) print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
	printf '%-16s N=%d starts=%d median all_s=%s (min %s max %s) median cpu_s=%s ctl_cpu_s=%s\n' "${bins[b]}" "$N" \
		"$(awk -v b="$b" '$1 == b' "$res" | wc -l)" "$(med 3)" \
		"$(awk -v b="$b" '$1 == b { print $3 }' "$res" | sort -n | head -1)" \
		"$(awk -v b="$b" '$1 == b { print $3 }' "$res" | sort -n | tail -1)" "$(med 4)" "$(med 5)"
done
