#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# NetworkPolicy compiler benchmark (issue 6): compile time, incremental change cost and map
# size for N pods x M policies, with tools/netpol-bench (no kernel, no network). Writes
# docs/benchmarks/netpol.md with the machine, the commands and their output.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${BIN:-build/bin}
OUT=docs/benchmarks/netpol.md
[[ -x $BIN/netpol-bench ]] || { echo "netpol bench: $BIN/netpol-bench missing (run make)" >&2; exit 1; }
runs=()
run() {
	local cmd=("$BIN/netpol-bench" "$@")
	echo "netpol bench: ${cmd[*]}" >&2
	runs+=("\$ netpol-bench $*" "$("${cmd[@]}")")
}
run --pods 1000 --policies 1000 --namespaces 10 --replicas 4 --nodes 10 --runs 5
run --pods 5000 --policies 2000 --namespaces 20 --replicas 4 --nodes 10 --runs 3
{
	echo "# NetworkPolicy compiler benchmark"
	echo
	echo "Measured $(date -u '+%Y-%m-%d %H:%M UTC') on commit \`$(git rev-parse --short HEAD)\`;" \
		"$(nproc) x $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)," \
		"load average at start $(cut -d' ' -f1-3 /proc/loadavg). Repeat with \`make bench\`" \
		"(this part alone: \`tools/bench/netpol.sh\`). Medians of the runs; what the figures" \
		"mean: netpol/README.md."
	echo
	echo '```'
	printf '%s\n' "${runs[@]}"
	echo '```'
} >"$OUT"
echo "netpol bench: wrote $OUT" >&2
