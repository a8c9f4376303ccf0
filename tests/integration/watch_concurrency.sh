#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Watch correctness under concurrency, on both store backends.
#
#   watch-check: 8 writer threads ──▶ sluice-control ──▶ 16 watcher threads
#                (create/patch/delete)                   (half of them drop and
#                                                         resume from their last RV)
#
# Every watcher must see every write exactly once, in revision order.
source "$(dirname "$0")/lib.sh"

for store in memory sqlite; do
	SUITE=watch_concurrency/$store
	start_control --store "$store" --data-dir "$TMP/data-$store" || { not_ok start; continue; }
	"$BIN/watch-check" --server "$CONTROL_URL" --writers 8 --watchers 16 --objects 300 \
		| sed "s|watch-check/|$SUITE/|"
	[[ ${PIPESTATUS[0]} -eq 0 ]] || FAILS=$((FAILS + 1))
	stop_control
done
finish
