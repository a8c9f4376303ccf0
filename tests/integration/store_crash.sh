#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Crash safety of the sqlite store: store-torture runs a write burst and prints
# one line per ACKNOWLEDGED write; we kill -9 it mid-burst, then reopen the same
# data dir with `store-torture verify`, which runs store_check (integrity_check,
# contiguous revisions above the compact revision, current table == newest log
# entry per key) and checks every acknowledged write is there with its revision
# (or was superseded by a later write). Rounds reuse the data dir, so each one
# also recovers from the previous crash; they vary the kill delay, the number
# of txns in flight, compaction during the burst, and synchronous=NORMAL.
#
#   store-torture burst ──acks──▶ $tmp/acks.N ──▶ $tmp/acks (all rounds)
#        │ kill -9 after D s                          │
#        ▼                                            ▼
#   $tmp/data/state.db ◀──────── store-torture verify data acks
#
# Binaries come from $SLUICE_BIN (tests/run.sh sets it), default build/test/bin.
set -uo pipefail
cd "$(dirname "$0")/../.."
BIN=${SLUICE_BIN:-build/test/bin}
T=$BIN/store-torture

if [[ ! -x $T ]]; then
	echo "not ok - store_crash/binary ($T not built; run make test-build)"
	exit 1
fi

tmp=$(mktemp -d /tmp/sluice-store-crash.XXXXXX)
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do
		kill -9 "$p" 2>/dev/null
	done
	wait 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT

fail=0
: >"$tmp/acks"

# round NAME DELAY [burst options...]
round() {
	local name=$1 delay=$2 n f pid out
	shift 2
	f=$tmp/acks.$name
	"$T" burst "$tmp/data" "$@" >"$f" 2>"$tmp/burst.$name.err" &
	pid=$!
	pids+=("$pid")
	# The delay counts from the first acknowledged write, so a slow start on a busy
	# machine does not turn the round into a kill before anything was written.
	for _ in $(seq 200); do
		grep -q '^ack ' "$f" 2>/dev/null && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	sleep "$delay"
	if ! kill -0 "$pid" 2>/dev/null; then
		echo "not ok - store_crash/$name (burst exited before the kill)"
		sed 's/^/# /' "$tmp/burst.$name.err"
		fail=1
		return
	fi
	kill -9 "$pid"
	wait "$pid" 2>/dev/null
	# A line cut by the kill was never completely acknowledged.
	if [[ -s $f && $(tail -c1 "$f" | wc -l) -eq 0 ]]; then
		sed -i '$d' "$f"
	fi
	n=$(grep -c '^ack ' "$f")
	cat "$f" >>"$tmp/acks"
	if ((n == 0)); then
		echo "not ok - store_crash/$name (no write acknowledged before the kill)"
		sed 's/^/# /' "$tmp/burst.$name.err"
		fail=1
		return
	fi
	if out=$("$T" verify "$tmp/data" "$tmp/acks" 2>&1); then
		echo "ok - store_crash/$name ($n acks this round, killed after ${delay}s)"
	else
		echo "not ok - store_crash/$name ($n acks this round, killed after ${delay}s)"
		echo "$out" | head -20 | sed 's/^/# /'
		fail=1
	fi
}

round kill_0.5s 0.5
round kill_0.7s 0.7 --inflight 16
round kill_1.0s_one_in_flight 1.0 --inflight 1
round kill_during_compaction 1.8 --retain 300 --compact-interval 1
round kill_sync_normal 0.6 --sync normal

if command -v sqlite3 >/dev/null; then
	res=$(sqlite3 "$tmp/data/state.db" 'PRAGMA integrity_check' 2>&1)
	if [[ $res == ok ]]; then
		echo "ok - store_crash/sqlite3_integrity_check"
	else
		echo "not ok - store_crash/sqlite3_integrity_check ($res)"
		fail=1
	fi
fi
exit $fail
