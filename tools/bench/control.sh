#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Control-plane benchmark: sluice-control against etcd 3.4 (Debian's
# etcd-server, v3 JSON gateway) on the same machine, in the same run, driven
# by the same load generator (build/bin/apibench). Called by tools/bench/run.sh.
#
#   1. durable writes: closed-loop creates with 1 and 64 clients
#      (sluice: POST ConfigMap, --store sqlite --sync full; etcd: /v3/kv/put of
#      the same JSON bytes, default durability);
#   2. list of 10,000 Services (sluice: GET /api/v1/services; etcd: range over
#      the same objects, linearizable and serializable);
#   3. watch fan-out: 1,000 watch streams on one object, a writer updating it
#      on a fixed schedule (20/s and 50/s); delivery latency per event;
#   4. server RSS with 10,000 Services + 1,000 EndpointSlices x 100 endpoints
#      (etcd is given exactly the objects sluice holds).
#
# Each measurement runs REPS times (default 3) on fresh servers and data dirs;
# the report quotes medians (and min-max). Results:
#   $OUT/control-plane.md, .csv, .png   (OUT defaults to docs/benchmarks)
# Any load-generator error (bad HTTP status, lost connection, missing or
# duplicate watch event) fails the benchmark: exit 1, marked in the report.
#
# Knobs (environment): REPS, WRITE_SECONDS, WATCH_WATCHERS, WATCH_UPDATES,
# LIST_COUNT, BENCH_TMPDIR (data dirs; must be a real disk, default build/).
# Every server started here listens on 127.0.0.1 only and is killed by PID on
# exit; temp dirs are removed.
set -euo pipefail
cd "$(dirname "$0")/../.."

BIN=${BIN:-build/bin}
OUT=${OUT:-docs/benchmarks}
REPS=${REPS:-3}
WRITE_SECONDS=${WRITE_SECONDS:-5}
WATCH_WATCHERS=${WATCH_WATCHERS:-1000}
WATCH_UPDATES=${WATCH_UPDATES:-200}
WATCH_RATES=${WATCH_RATES:-"20 50"}
LIST_COUNT=${LIST_COUNT:-20}
SERVICES=10000
SLICES=1000
ENDPOINTS=100
BENCH_TMPDIR=${BENCH_TMPDIR:-$PWD/build}

for b in "$BIN/sluice-control" "$BIN/apibench"; do
	[[ -x $b ]] || { echo "control bench: $b missing; run make first" >&2; exit 2; }
done
command -v etcd >/dev/null || { echo "control bench: etcd not found (make deps)" >&2; exit 2; }
command -v curl >/dev/null || { echo "control bench: curl not found (make deps)" >&2; exit 2; }

mkdir -p "$BENCH_TMPDIR" "$OUT"
tmp=$(mktemp -d "$BENCH_TMPDIR/bench-control.XXXXXX")
pids=()

cleanup() {
	local p
	for p in "${pids[@]}"; do
		kill "$p" 2>/dev/null && wait "$p" 2>/dev/null || true
	done
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

raw=$tmp/raw.txt # one apibench line per run, prefixed with rep=N
: >"$raw"
failures=()
t_start=$(date +%s)

log() { printf '[control %3ss] %s\n' $(($(date +%s) - t_start)) "$*" >&2; }

forget_pid() {
	local keep=() p
	for p in "${pids[@]}"; do [[ $p == "$1" ]] || keep+=("$p"); done
	pids=("${keep[@]}")
}

stop_server() {
	kill "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
	forget_pid "$1"
}

# start_sluice NAME: sets SLUICE_PID, SLUICE_URL.
start_sluice() {
	local dir=$tmp/$1 i
	mkdir -p "$dir"
	"$BIN/sluice-control" --listen 127.0.0.1:0 --ready-file "$dir/port" \
		--store sqlite --sync full --data-dir "$dir/data" --controllers none \
		--service-cidr 198.19.0.0/16 --log-level warn >"$dir/log" 2>&1 &
	SLUICE_PID=$!
	pids+=("$SLUICE_PID")
	for ((i = 0; i < 200; i++)); do
		if grep -qE '^[0-9]+$' "$dir/port" 2>/dev/null; then
			SLUICE_URL=http://127.0.0.1:$(cat "$dir/port")
			# Ready file first, bootstrap (namespaces) right after: wait for it.
			curl -sf -o /dev/null "$SLUICE_URL/api/v1/namespaces/default" && return 0
		fi
		kill -0 "$SLUICE_PID" 2>/dev/null || break
		sleep 0.05
	done
	echo "control bench: sluice-control did not start:" >&2
	cat "$dir/log" >&2
	exit 1
}

# start_etcd NAME: sets ETCD_PID, ETCD_URL. Client, peer and (absent) metrics
# listeners all on 127.0.0.1; default durability (WAL fsync per batch).
start_etcd() {
	local dir=$tmp/$1 port peer i
	mkdir -p "$dir"
	port=$("$BIN/apibench" freeport)
	peer=$("$BIN/apibench" freeport)
	etcd --name bench --data-dir "$dir/data" \
		--listen-client-urls "http://127.0.0.1:$port" \
		--advertise-client-urls "http://127.0.0.1:$port" \
		--listen-peer-urls "http://127.0.0.1:$peer" \
		--initial-advertise-peer-urls "http://127.0.0.1:$peer" \
		--initial-cluster "bench=http://127.0.0.1:$peer" \
		--initial-cluster-state new --logger zap --log-level warn >"$dir/log" 2>&1 &
	ETCD_PID=$!
	pids+=("$ETCD_PID")
	ETCD_URL=http://127.0.0.1:$port
	for ((i = 0; i < 200; i++)); do
		curl -sf -o /dev/null -X POST -d '{}' "$ETCD_URL/v3/maintenance/status" && return 0
		kill -0 "$ETCD_PID" 2>/dev/null || break
		sleep 0.05
	done
	echo "control bench: etcd did not start:" >&2
	cat "$dir/log" >&2
	exit 1
}

# ab REP ARGS...: runs apibench, keeps its result line; a failed run is
# recorded (the benchmark then fails) but the others still run.
ab() {
	local rep=$1 line
	shift
	if line=$("$BIN/apibench" "$@" 2>"$tmp/ab.err"); then
		:
	else
		failures+=("apibench $* (rep $rep): $(tail -3 "$tmp/ab.err" | tr '\n' ' ')")
		log "FAILED: apibench $*"
		cat "$tmp/ab.err" >&2
	fi
	[[ -n $line ]] && echo "rep=$rep $line" >>"$raw"
	log "$line"
}

rss() { # rss REP API STATE PID
	awk -v rep="$1" -v api="$2" -v st="$3" '
		/^VmRSS:/ { r = $2 } /^VmHWM:/ { h = $2 } /^RssAnon:/ { a = $2 } /^RssFile:/ { f = $2 }
		END { printf "rep=%s rss api=%s state=%s vmrss_kb=%d vmhwm_kb=%d rssanon_kb=%d rssfile_kb=%d\n",
		      rep, api, st, r, h, a, f }' "/proc/$4/status" | tee -a "$raw" >&2
}

# --- machine -----------------------------------------------------------------
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
probe=$(mktemp -d "$BENCH_TMPDIR/fsprobe.XXXXXX")
fs=$(df -PT "$probe" | awk 'NR == 2 { print $2 }')
dev=$(df -PT "$probe" | awk 'NR == 2 { print $1 }')
rmdir "$probe"
m_cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
m_nproc=$(nproc)
m_mem=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
m_kernel=$(uname -r)
m_etcd=$(etcd --version 2>/dev/null | awk '/etcd Version/ { print $3 }')
m_commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
m_date=$(date -u '+%Y-%m-%d %H:%M UTC')
m_load=$(cut -d' ' -f1-3 /proc/loadavg)
log "machine: $m_nproc x $m_cpu, $m_mem, kernel $m_kernel, data dirs on $fs ($dev), load $m_load"
if [[ $fs == tmpfs || $fs == ramfs ]]; then
	log "WARNING: $BENCH_TMPDIR is $fs: fsync costs nothing there; set BENCH_TMPDIR to a disk"
fi

# --- 1. durable writes ---------------------------------------------------------
for ((rep = 1; rep <= REPS; rep++)); do
	# Alternate which server goes first so drift in machine noise hits both.
	order="sluice etcd"
	((rep % 2 == 0)) && order="etcd sluice"
	for api in $order; do
		if [[ $api == sluice ]]; then
			start_sluice "w$rep-sluice"
			url=$SLUICE_URL pid=$SLUICE_PID
		else
			start_etcd "w$rep-etcd"
			url=$ETCD_URL pid=$ETCD_PID
		fi
		for c in 1 64; do
			ab "$rep" write --api "$api" --url "$url" --clients "$c" \
				--seconds "$WRITE_SECONDS" --warmup 0.5 --tag "r${rep}c$c"
		done
		stop_server "$pid"
		rm -rf "${tmp:?}/w$rep-$api"
	done
done

# --- 2 + 4. list and RSS at scale ------------------------------------------------
for ((rep = 1; rep <= REPS; rep++)); do
	start_sluice "s$rep-sluice"
	rss "$rep" sluice idle "$SLUICE_PID"
	ab "$rep" load --api sluice --url "$SLUICE_URL" --services $SERVICES --namespaces 10 \
		--slices $SLICES --endpoints $ENDPOINTS --clients 16
	sleep 2
	rss "$rep" sluice loaded "$SLUICE_PID"
	# The list also holds the built-in 'kubernetes' Service: SERVICES + 1.
	ab "$rep" list --api sluice --url "$SLUICE_URL" --expect $((SERVICES + 1)) \
		--count "$LIST_COUNT"
	rss "$rep" sluice after-lists "$SLUICE_PID"

	start_etcd "s$rep-etcd"
	rss "$rep" etcd idle "$ETCD_PID"
	ab "$rep" load --api etcd --url "$ETCD_URL" --from "$SLUICE_URL" --clients 16
	sleep 2
	rss "$rep" etcd loaded "$ETCD_PID"
	ab "$rep" list --api etcd --url "$ETCD_URL" --expect $((SERVICES + 1)) --count "$LIST_COUNT"
	ab "$rep" list --api etcd --url "$ETCD_URL" --expect $((SERVICES + 1)) \
		--count "$LIST_COUNT" --serializable
	rss "$rep" etcd after-lists "$ETCD_PID"
	stop_server "$ETCD_PID"
	stop_server "$SLUICE_PID"
	rm -rf "${tmp:?}/s$rep-sluice" "${tmp:?}/s$rep-etcd"
done

# --- 3. watch fan-out ----------------------------------------------------------
for ((rep = 1; rep <= REPS; rep++)); do
	order="sluice etcd"
	((rep % 2 == 0)) && order="etcd sluice"
	for api in $order; do
		if [[ $api == sluice ]]; then
			start_sluice "x$rep-sluice"
			url=$SLUICE_URL pid=$SLUICE_PID
		else
			start_etcd "x$rep-etcd"
			url=$ETCD_URL pid=$ETCD_PID
		fi
		for rate in $WATCH_RATES; do
			ab "$rep" watch --api "$api" --url "$url" --watchers "$WATCH_WATCHERS" \
				--updates "$WATCH_UPDATES" --rate "$rate" \
				--cdf "$tmp/cdf-$api-$rate-$rep.txt"
		done
		stop_server "$pid"
		rm -rf "${tmp:?}/x$rep-$api"
	done
done
elapsed=$(($(date +%s) - t_start))
log "measurements done in ${elapsed}s"

# --- report --------------------------------------------------------------------
# vals KIND FIELD SELECTORS...: the FIELD values of every KIND line that
# carries all SELECTORS (key=value words), one per rep, in rep order.
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
fmt() { awk -v v="$1" -v f="${2:-%.1f}" 'BEGIN { if (v == "nan") print "n/a"; else printf f, v }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "nan" || b == "nan" || b == 0) print "n/a"; else printf "%.2f", a / b }'; }

csv=$OUT/control-plane.csv
echo "benchmark,api,params,metric,unit,median,min,max,runs" >"$csv"
row() { # row BENCH API PARAMS METRIC UNIT KIND FIELD SELECTORS...
	local b=$1 a=$2 p=$3 m=$4 u=$5
	shift 5
	read -r md mn mx runs < <(stat "$@")
	echo "$b,$a,$p,$m,$u,$md,$mn,$mx,$runs" >>"$csv"
}
for api in sluice etcd; do
	for c in 1 64; do
		for f in rate:ops/s p50_ms:ms p99_ms:ms p999_ms:ms max_ms:ms errors:count; do
			row write "$api" "clients=$c" "${f%%:*}" "${f#*:}" write "${f%%:*}" "api=$api" "clients=$c"
		done
	done
done
for sel in "api=sluice" "api=etcd read=linearizable" "api=etcd read=serializable"; do
	a=${sel%% *}
	p=$(echo "$sel" | awk '{ print ($2 ? $2 : "read=cache") }')
	for f in p50_ms p99_ms max_ms bytes errors; do
		u=ms; [[ $f == bytes ]] && u=bytes; [[ $f == errors ]] && u=count
		row list "${a#api=}" "$p items=$((SERVICES + 1))" "$f" "$u" list "$f" $sel
	done
done
for api in sluice etcd; do
	for rate in $WATCH_RATES; do
		for f in send_p50_ms send_p99_ms send_max_ms ack_p50_ms ack_p99_ms ack_max_ms \
			write_p50_ms write_p99_ms events errors; do
			u=ms; [[ $f == events || $f == errors ]] && u=count
			row watch "$api" "watchers=$WATCH_WATCHERS rate=$rate" "$f" "$u" watch "$f" \
				"api=$api" "rate=$rate.0"
		done
	done
	for st in idle loaded after-lists; do
		for f in vmrss_kb rssanon_kb rssfile_kb vmhwm_kb; do
			row rss "$api" "state=$st" "$f" kB rss "$f" "api=$api" "state=$st"
		done
	done
done

# Plot data: small whitespace tables for gnuplot.
pd=$tmp/plot
mkdir -p "$pd"
{
	echo "# clients sluice etcd"
	for c in 1 64; do echo "$c $(med write rate api=sluice clients=$c) $(med write rate api=etcd clients=$c)"; done
} >"$pd/write_rate.dat"
{
	echo "# label sluice etcd"
	for c in 1 64; do
		for p in p50 p99; do
			echo "$p,$c $(med write ${p}_ms api=sluice clients=$c) $(med write ${p}_ms api=etcd clients=$c)"
		done
	done
} >"$pd/write_lat.dat"
{
	echo "# label p50 p99"
	echo "sluice $(med list p50_ms api=sluice) $(med list p99_ms api=sluice)"
	echo "etcd-lin $(med list p50_ms api=etcd read=linearizable) $(med list p99_ms api=etcd read=linearizable)"
	echo "etcd-ser $(med list p50_ms api=etcd read=serializable) $(med list p99_ms api=etcd read=serializable)"
} >"$pd/list.dat"
{
	echo "# label sluice etcd"
	for rate in $WATCH_RATES; do
		for p in p50 p99; do
			echo "$p,$rate/s $(med watch send_${p}_ms api=sluice rate=$rate.0) $(med watch send_${p}_ms api=etcd rate=$rate.0)"
		done
	done
} >"$pd/watch.dat"
{
	echo "# state sluice etcd"
	for st in idle loaded; do
		echo "$st $(med rss vmrss_kb api=sluice state=$st | awk '{ print $1 / 1024 }') $(med rss vmrss_kb api=etcd state=$st | awk '{ print $1 / 1024 }')"
	done
} >"$pd/rss.dat"
# CDF panel: at the first (steady) rate, the run whose p99 from send is the
# median one, so a single disturbed run does not stand for the rest.
first_rate=${WATCH_RATES%% *}
median_rep() { # median_rep API RATE
	awk -v api="$1" -v rate="$2.0" '
		$2 == "watch" && index($0, " api=" api " ") && index($0, " rate=" rate " ") {
			for (i = 1; i <= NF; i++) { split($i, a, "="); if (a[1] == "rep") r = a[2]; if (a[1] == "send_p99_ms") v = a[2] }
			print v, r
		}' "$raw" | sort -g | awk '{ r[NR] = $2 } END { print (NR ? r[int((NR + 1) / 2)] : 0) }'
}
for api in sluice etcd; do
	cp "$tmp/cdf-$api-$first_rate-$(median_rep "$api" "$first_rate").txt" "$pd/cdf-$api.dat" 2>/dev/null ||
		echo "50 nan nan" >"$pd/cdf-$api.dat"
done
png_note=""
if command -v gnuplot >/dev/null; then
	if ! gnuplot -e "dir='$pd'; out='$OUT/control-plane.png'; rate='$first_rate'; \
		title='sluice-control vs etcd $m_etcd, $m_nproc x $m_cpu, $m_date (medians of $REPS)'" \
		tools/bench/plot.gnuplot; then
		png_note="(plot failed: see the log)"
	fi
else
	png_note="(no plot: gnuplot not installed; the Debian package is gnuplot-nox)"
	log "$png_note"
fi

# --- Markdown ------------------------------------------------------------------------
W() { fmt "$(med "$@")" "%.0f"; }
L() { fmt "$(med "$@")" "%.2f"; }
MB() { awk -v v="$(med "$@")" 'BEGIN { if (v == "nan") print "n/a"; else printf "%.1f", v / 1024 }'; }
yes_no() { awk -v c="$1" 'BEGIN { print (c ? "**yes**" : "**no**") }'; }

s64=$(med write rate api=sluice clients=64)
e64=$(med write rate api=etcd clients=64)
lp50=$(med list p50_ms api=sluice)
lp99=$(med list p99_ms api=sluice)
wack=$(med watch ack_p99_ms api=sluice rate=$first_rate.0)
wsend=$(med watch send_p99_ms api=sluice rate=$first_rate.0)
status="all runs completed without errors"
((${#failures[@]})) && status="**FAILED**: ${#failures[@]} run(s) had errors (listed below); figures from those runs are not valid"

md=$OUT/control-plane.md
{
	echo "# Control-plane benchmark: sluice-control vs etcd"
	echo
	echo "Measured $m_date on commit \`$m_commit\`, $elapsed s. Status: $status."
	echo
	echo "Repeat with \`make && make bench\` (this part alone: \`tools/bench/control.sh\`;"
	echo "knobs REPS=$REPS WRITE_SECONDS=$WRITE_SECONDS WATCH_WATCHERS=$WATCH_WATCHERS"
	echo "WATCH_UPDATES=$WATCH_UPDATES WATCH_RATES=\"$WATCH_RATES\" LIST_COUNT=$LIST_COUNT)."
	echo
	echo "**Machine:** $m_nproc x $m_cpu, $m_mem, Linux $m_kernel; data dirs on $fs ($dev);"
	echo "load average at start $m_load. This is a shared, noisy VM: the load generator and"
	echo "the server share its 2 cores, and other jobs may run beside them. Every figure is"
	echo "the median of $REPS runs on fresh servers (min-max in the CSV); sluice and etcd"
	echo "alternate within each run, so compare the ratios more than the absolute values."
	echo
	echo "**Servers:** \`sluice-control --store sqlite --sync full --controllers none\` (fsync per group commit)"
	echo "and etcd $m_etcd (\`--data-dir\` on the same disk, default durability: WAL fsync per"
	echo "batch; client and peer URLs on 127.0.0.1)."
	echo
	echo "## Goals"
	echo
	echo "| goal | measured (median) | met |"
	echo "|---|---|---|"
	echo "| sluice durable creates at 64 clients >= etcd puts at 64 clients | $(fmt "$s64" %.0f) vs $(fmt "$e64" %.0f) /s (x$(ratio "$s64" "$e64")) | $(yes_no "$(awk -v a="$s64" -v b="$e64" 'BEGIN { print (a >= b) }')") |"
	echo "| list of $SERVICES Services < 50 ms | p50 $(fmt "$lp50" %.1f) ms, p99 $(fmt "$lp99" %.1f) ms | $(yes_no "$(awk -v a="$lp50" 'BEGIN { print (a < 50) }')") (p50) |"
	echo "| watch delivery to $WATCH_WATCHERS watchers p99 < 20 ms from commit ($first_rate updates/s) | p99 $(fmt "$wsend" %.1f) ms from the update's send (from the writer's ack: $(fmt "$wack" %.1f) ms, see §3) | $(yes_no "$(awk -v a="$wsend" 'BEGIN { print (a < 20) }')") |"
	echo
	echo "## 1. Durable writes"
	echo
	echo "Closed loop, one HTTP/1.1 keep-alive connection per client, ${WRITE_SECONDS} s after 0.5 s"
	echo "warm-up. sluice: \`POST /api/v1/namespaces/bench/configmaps\` of a $(vals write object_bytes api=sluice | head -1)-byte ConfigMap"
	echo "with a unique name (201 expected). etcd: \`POST /v3/kv/put\` of the same JSON bytes under"
	echo "\`/registry/configmaps/bench/NAME\` (a plain put, not kube-apiserver's create-if-absent txn)."
	echo
	echo "| clients | sluice creates/s | etcd puts/s | sluice/etcd | sluice p50 / p99 ms | etcd p50 / p99 ms |"
	echo "|---|---|---|---|---|---|"
	for c in 1 64; do
		s=$(med write rate api=sluice clients=$c) e=$(med write rate api=etcd clients=$c)
		echo "| $c | $(fmt "$s" %.0f) | $(fmt "$e" %.0f) | $(ratio "$s" "$e") | $(L write p50_ms api=sluice clients=$c) / $(L write p99_ms api=sluice clients=$c) | $(L write p50_ms api=etcd clients=$c) / $(L write p99_ms api=etcd clients=$c) |"
	done
	echo
	echo "## 2. List of $SERVICES Services"
	echo
	echo "$LIST_COUNT sequential full lists per run, timed from the request to the last byte of"
	echo "the reply; every reply is then parsed (untimed) and must hold $((SERVICES + 1)) items"
	echo "($SERVICES + the built-in \`kubernetes\` Service). sluice: \`GET /api/v1/services\` (served"
	echo "from its watch cache). etcd: \`POST /v3/kv/range\` over \`/registry/services/specs/\` holding the same"
	echo "objects, linearizable (the default, what kube-apiserver uses for a consistent list) and serializable."
	echo
	echo "| server | p50 ms | p99 ms | reply bytes |"
	echo "|---|---|---|---|"
	echo "| sluice | $(L list p50_ms api=sluice) | $(L list p99_ms api=sluice) | $(W list bytes api=sluice) |"
	echo "| etcd, linearizable | $(L list p50_ms api=etcd read=linearizable) | $(L list p99_ms api=etcd read=linearizable) | $(W list bytes api=etcd read=linearizable) |"
	echo "| etcd, serializable | $(L list p50_ms api=etcd read=serializable) | $(L list p99_ms api=etcd read=serializable) | $(W list bytes api=etcd read=serializable) |"
	echo
	echo "etcd's reply is larger because the gateway base64-encodes every value."
	echo
	echo "## 3. Watch delivery to $WATCH_WATCHERS watchers"
	echo
	echo "$WATCH_WATCHERS watch streams (one epoll thread, one connection each) on one ConfigMap"
	echo "(sluice: \`?watch=true&resourceVersion=N&fieldSelector=metadata.name=watched\`; etcd:"
	echo "\`/v3/watch\` on its key). One writer updates it $WATCH_UPDATES times on a fixed schedule"
	echo "(sluice PUT, etcd put); each payload carries a sequence number, and every watcher must"
	echo "see every update exactly once. Latency per delivered event (${WATCH_WATCHERS} x $WATCH_UPDATES samples"
	echo "per run): *from send* = from the update's scheduled send time (no coordinated omission:"
	echo "a writer held up by a slow server is charged for it); *from commit* = from the moment"
	echo "the writer received its answer. Negative values mean the event reached the watcher"
	echo "before the writer got its own reply."
	echo
	echo "Which one is \"from commit\": neither server exposes its commit instant. etcd answers the"
	echo "put right after its commit and fans out afterwards, so its *from commit* column is close"
	echo "to the truth. sluice applies the commit to its watch cache and queues the event to every"
	echo "watcher *before* it answers the writer, so its ack comes after most deliveries and its"
	echo "*from commit* column flatters it; its commit is ~0.5 ms (one fsync) after the send, so"
	echo "*from send* is the honest figure for sluice and the one the goal is judged on."
	echo
	echo "| server | updates/s | from commit p50 / p99 / max ms | from send p50 / p99 / max ms | writer p50 / p99 ms |"
	echo "|---|---|---|---|---|"
	for rate in $WATCH_RATES; do
		for api in sluice etcd; do
			s="api=$api rate=$rate.0"
			echo "| $api | $rate | $(L watch ack_p50_ms $s) / $(L watch ack_p99_ms $s) / $(L watch ack_max_ms $s) | $(L watch send_p50_ms $s) / $(L watch send_p99_ms $s) / $(L watch send_max_ms $s) | $(L watch write_p50_ms $s) / $(L watch write_p99_ms $s) |"
		done
	done
	echo
	echo "## 4. Memory"
	echo
	echo "VmRSS from /proc/PID/status: after start (idle), after loading $SERVICES Services in 10"
	echo "namespaces + $SLICES EndpointSlices x $ENDPOINTS endpoints (addresses from 198.18.0.0/15,"
	echo "ports, conditions, nodeName, targetRef) and 2 s of quiet (loaded), and after the lists."
	echo "etcd is given exactly the objects sluice holds (copied from sluice's lists:"
	echo "$(vals load value_bytes api=etcd | head -1) bytes of JSON in $(vals load objects api=etcd | head -1) keys). RssFile"
	echo "is mostly etcd's mmapped bbolt file and sluice's SQLite/binary pages."
	echo
	echo "| server | idle MiB | loaded MiB | loaded anon / file MiB | after lists MiB | peak (VmHWM) MiB |"
	echo "|---|---|---|---|---|---|"
	for api in sluice etcd; do
		echo "| $api | $(MB rss vmrss_kb api=$api state=idle) | $(MB rss vmrss_kb api=$api state=loaded) | $(MB rss rssanon_kb api=$api state=loaded) / $(MB rss rssfile_kb api=$api state=loaded) | $(MB rss vmrss_kb api=$api state=after-lists) | $(MB rss vmhwm_kb api=$api state=after-lists) |"
	done
	echo
	echo "![control-plane benchmark]($(basename "$OUT/control-plane.png")) $png_note"
	echo
	if ((${#failures[@]})); then
		echo "## Failed runs"
		echo
		for f in "${failures[@]}"; do echo "- $f"; done
		echo
	fi
	echo "Raw per-run figures: [control-plane.csv](control-plane.csv)."
} >"$md"

log "wrote $md, $csv, $OUT/control-plane.png"
cat "$md"
((${#failures[@]} == 0))
