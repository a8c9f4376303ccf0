#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# BPF run time of the per-packet row (tc_pod on the client's host veth nc0), per crr run of a
# tools/bench/modes.sh run: kernel CPU per connection (the page's 2b) reads the whole machine,
# which neighbours on a shared VM swamp; the programs' own run_time_ns/run_cnt
# (kernel.bpf_stats_enabled) are what tc_pod costs, whatever else runs.
#
#   tools/bench/modes-bpfstats.sh PREFIX [modes.sh arguments]
#     e.g. MODES=bpf-pkt CONFIGS=10000:10 REPS=1 RUN_SECONDS=5 UPDATE_SAMPLES=1 BIN=build/bin \
#          tools/bench/modes-bpfstats.sh /tmp/pkt-a --quick
#
# Runs modes.sh (OUT defaults to PREFIX, the environment passes through) and meanwhile, every
# 0.25 s, snapshots the stats of the programs attached to nc0 in its node netns (found by id
# inside the run's mount namespace, again after each agent start) with the number of rows in
# the run's raw.txt. Writes PREFIX.poll and prints, for each bpf-pkt crr run, ns/run of
# tc_pod_ingress and tc_pod_egress, runs per connection and BPF us per connection over the
# snapshots taken while that run (and its warm-up) was the newest thing running: connections in
# that window are the run's rate times the window's length (the warm-up runs at about the same
# rate). Needs root and bpftool; turns bpf_stats_enabled on for the run and restores it.
set -Eeuo pipefail
cd "$(dirname "$0")/../.."
PREFIX=${1:?usage: modes-bpfstats.sh PREFIX [modes.sh arguments]}
shift
POLL=$PREFIX.poll
# modes.sh's own default: 2 s per run, 1 s with --quick.
RUN_S=${RUN_SECONDS:-$([[ " $* " == *" --quick "* ]] && echo 1 || echo 2)}
stats0=$(cat /proc/sys/kernel/bpf_stats_enabled)
BENCH=
cleanup() {
	if [[ -n $BENCH ]] && kill -0 "$BENCH" 2>/dev/null; then kill "$BENCH" 2>/dev/null || true; fi
	echo "$stats0" >/proc/sys/kernel/bpf_stats_enabled
	rm -f "$PREFIX.start"
}
trap cleanup EXIT
echo 1 >/proc/sys/kernel/bpf_stats_enabled
touch "$PREFIX.start"
: >"$POLL"
OUT=${OUT:-$PREFIX} tools/bench/modes.sh "$@" &
BENCH=$!

raw="" ids=""
while kill -0 "$BENCH" 2>/dev/null; do
	# The run's scratch directory: created after PREFIX.start (modes.sh: mktemp /tmp/sluice-modes.*).
	[[ -n $raw ]] || raw=$(find /tmp -maxdepth 2 -path '/tmp/sluice-modes.*/raw.txt' -newer "$PREFIX.start" 2>/dev/null | head -1 || true)
	if [[ -z $ids ]] || ! bpftool prog show id "${ids%% *}" >/dev/null 2>&1; then
		ids=$(nsenter -t "$BENCH" -m ip netns exec "sl-modes-node-$BENCH" bpftool -j net show dev nc0 2>/dev/null |
			grep -o '"id":[0-9]*' | cut -d: -f2 | sort -u | paste -sd' ' || true)
		if [[ -z $ids || -z $raw ]]; then
			sleep 0.25
			continue
		fi
	fi
	line="t=$(date +%s.%N) rows=$(wc -l <"$raw" 2>/dev/null || echo 0)"
	for i in $ids; do
		line+=" $(bpftool prog show id "$i" 2>/dev/null | head -1 | awk '{ for (j = 1; j <= NF; j++) { if ($j == "name") n = $(j + 1); if ($j == "run_time_ns") r = $(j + 1); if ($j == "run_cnt") c = $(j + 1) } print n ":" r ":" c }' || true)"
	done
	echo "$line" >>"$POLL"
	sleep 0.25
done
rc=0
wait "$BENCH" || rc=$?
BENCH=
[[ -f ${OUT:-$PREFIX}/raw.txt ]] || { echo "modes-bpfstats: no ${OUT:-$PREFIX}/raw.txt (modes.sh status $rc)" >&2; exit 1; }

# A crr run's kind=cpu row is row k; while it ran, raw.txt had k-2 rows (its result row k-1 and
# row k come at its end).
awk -v R="${OUT:-$PREFIX}/raw.txt" -v rsec="$RUN_S" '
BEGIN { while ((getline l < R) > 0) row[++n] = l }
{
	split($1, a, "="); t = a[2]; split($2, b, "="); k = b[2]
	for (i = 3; i <= NF; i++) {
		split($i, p, ":")
		if (p[1] == "tc_pod_ingress") { ir = p[2]; ic = p[3] }
		if (p[1] == "tc_pod_egress") { er = p[2]; ec = p[3] }
	}
	cnt[k]++
	if (!(k in t0)) { t0[k] = t; ir0[k] = ir; ic0[k] = ic; er0[k] = er; ec0[k] = ec }
	t1[k] = t; ir1[k] = ir; ic1[k] = ic; er1[k] = er; ec1[k] = ec
}
END {
	for (k = 1; k <= n; k++) {
		if (row[k] !~ /mode=bpf-pkt kind=cpu run=crr/) continue
		match(row[k], /run=[a-z-]*/); run = substr(row[k], RSTART + 4, RLENGTH - 4)
		match(row[k], /requests=[0-9.]*/); req = substr(row[k], RSTART + 9, RLENGTH - 9)
		match(row[k], /rep=[0-9]*/); rep = substr(row[k], RSTART + 4, RLENGTH - 4)
		s = k - 2
		di = ic1[s] - ic0[s]; de = ec1[s] - ec0[s]; w = t1[s] - t0[s]
		if (!(s in t0) || di <= 0 || de <= 0 || w <= 0 || req <= 0) {
			printf "rep %s %s: too few snapshots\n", rep, run
			continue
		}
		c = req / rsec * w
		printf "rep %s %s: tc_pod_ingress %.0f ns/run, tc_pod_egress %.0f ns/run, %.1f + %.1f runs/conn, BPF %.1f us/conn (%.1f s window, %d snapshots, %s conn in the run)\n",
			rep, run, (ir1[s] - ir0[s]) / di, (er1[s] - er0[s]) / de, di / c, de / c,
			((ir1[s] - ir0[s]) + (er1[s] - er0[s])) / c / 1000, w, cnt[s], req
	}
}' "$POLL"
exit "$rc"
