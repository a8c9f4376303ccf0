#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# DNS benchmark: sluice-dns against Debian's nsd and knot (authoritative, the
# same records as a static zone) and unbound (forwarding cache), on the same
# machine, in the same run, driven by dnsperf. Called by tools/bench/run.sh.
#
#   1. cluster-zone names: 10,000 Services (+ 1,000 EndpointSlices x 100
#      endpoints) loaded into sluice-control; sluice-dns answers them from its
#      informer caches, nsd and knotd from a zone file generated from the same
#      Service list. Query mix: A, AAAA (NODATA), SRV (named ports), PTR,
#      NXDOMAIN. Saturation throughput (queries/s, and per server core from
#      the server's own CPU time) and latency p50/p99 at a fixed rate;
#   2. cached forwarded names: knotd is the upstream for fwd.test; sluice-dns
#      and unbound forward to it, caches warmed first; the same two figures;
#   3. time from a Service create (POST to sluice-control) to its name
#      resolving at sluice-dns, polled with back-to-back UDP queries;
#   4. sluice-dns VmRSS before and after the 10,000 Services.
#
# Every server listens on 127.0.0.1 on a free port, with its config, pid and
# data files in a temp dir, and is killed by PID on exit. unbound and
# sluice-dns forward only to the local knotd; nothing leaves the machine.
# Results: $OUT/dns.md, .csv, .png (OUT defaults to docs/benchmarks).
#
# Knobs (environment): REPS (3), SECONDS_PER_RUN (10), CLIENTS (dnsperf -c,
# 4), OUTSTANDING (dnsperf -q, 200), LAT_RATE (qps of the latency runs,
# 10000), LAT_SECONDS (5), SAMPLES (create-to-resolve samples, 100).
set -euo pipefail
cd "$(dirname "$0")/../.."

BIN=${BIN:-build/bin}
OUT=${OUT:-docs/benchmarks}
REPS=${REPS:-3}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-10}
CLIENTS=${CLIENTS:-4}
OUTSTANDING=${OUTSTANDING:-200}
LAT_RATE=${LAT_RATE:-10000}
LAT_SECONDS=${LAT_SECONDS:-5}
SAMPLES=${SAMPLES:-100}
SERVICES=10000
SLICES=1000
ENDPOINTS=100
FWD_NAMES=1000
PY=${PY:-python3}

for b in "$BIN/sluice-control" "$BIN/sluice-dns" "$BIN/apibench"; do
	[[ -x $b ]] || { echo "dns bench: $b missing; run make first" >&2; exit 2; }
done
for c in dnsperf nsd knotd unbound dig curl "$PY"; do
	command -v "$c" >/dev/null || { echo "dns bench: $c not found (make deps)" >&2; exit 2; }
done

mkdir -p "$OUT"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/bench-dns.XXXXXX")
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

raw=$tmp/raw.txt # key=value lines, one per measurement
: >"$raw"
failures=()
t_start=$(date +%s)
log() { printf '[dns %3ss] %s\n' $(($(date +%s) - t_start)) "$*" >&2; }
fail() { log "FAILED: $*"; failures+=("$*"); }
port() { "$BIN/apibench" freeport; }
CLK_TCK=$(getconf CLK_TCK)
# cpu_ticks PID: utime + stime of the whole process (all threads). Fields are
# counted after the ")" of the command name, which may hold blanks ("nsd: server 1").
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }

# wait_udp NAME PORT QNAME: until the server answers QNAME (any rcode but SERVFAIL).
wait_udp() {
	local i
	for ((i = 0; i < 200; i++)); do
		if dig @127.0.0.1 -p "$2" +time=1 +tries=1 "$3" A 2>/dev/null |
			grep -qE 'status: (NOERROR|NXDOMAIN)'; then
			return 0
		fi
		sleep 0.05
	done
	echo "dns bench: $1 does not answer on 127.0.0.1:$2:" >&2
	cat "$tmp/$1.log" >&2 2>/dev/null || true
	exit 1
}

rss() { # rss SERVER STATE PID
	awk -v s="$1" -v st="$2" '
		/^VmRSS:/ { r = $2 } /^VmHWM:/ { h = $2 } /^RssAnon:/ { a = $2 }
		END { printf "test=rss server=%s state=%s vmrss_kb=%d vmhwm_kb=%d rssanon_kb=%d\n",
		      s, st, r, h, a }' "/proc/$3/status" | tee -a "$raw" >&2
}

# --- machine -----------------------------------------------------------------------------------
m_cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
m_nproc=$(nproc)
m_mem=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
m_kernel=$(uname -r)
m_commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
m_date=$(date -u '+%Y-%m-%d %H:%M UTC')
m_load=$(cut -d' ' -f1-3 /proc/loadavg)
v_dnsperf=$(dnsperf -h 2>&1 | awk '/^Version/ { print $2 }')
v_nsd=$(nsd -v 2>&1 | awk '/^NSD version/ { print $3; exit }')
v_knot=$(knotd -V | awk '{ print $NF }')
v_unbound=$(unbound -V | awk '/^Version/ { print $2 }')
log "machine: $m_nproc x $m_cpu, $m_mem, kernel $m_kernel, load $m_load"

# --- sluice-control + sluice-dns, then 10,000 Services ------------------------------------------
mkdir -p "$tmp/control"
"$BIN/sluice-control" --listen 127.0.0.1:0 --ready-file "$tmp/control/port" --store memory \
	--service-cidr 198.19.0.0/16 --log-level warn >"$tmp/control.log" 2>&1 &
CONTROL_PID=$!
pids+=("$CONTROL_PID")
for ((i = 0; i < 200; i++)); do
	if grep -qE '^[0-9]+$' "$tmp/control/port" 2>/dev/null; then
		URL=http://127.0.0.1:$(cat "$tmp/control/port")
		curl -sf -o /dev/null "$URL/api/v1/namespaces/default" && break
	fi
	sleep 0.05
done
[[ -n ${URL:-} ]] || { echo "dns bench: sluice-control did not start" >&2; cat "$tmp/control.log" >&2; exit 1; }

# The upstream for forwarded names (and the knot server of part 1): one knotd.
KPORT=$(port)
mkdir -p "$tmp/knot"
{
	printf '$ORIGIN fwd.test.\n$TTL 3600\n'
	printf '@ SOA ns.fwd.test. admin.fwd.test. 1 3600 600 86400 3600\n@ NS ns.fwd.test.\nns A 127.0.0.1\n'
	for ((i = 0; i < FWD_NAMES; i++)); do
		printf 'host-%04d A 192.0.2.%d\n' "$i" $((i % 250 + 1))
	done
} >"$tmp/knot/fwd.test.zone"
for ((i = 0; i < FWD_NAMES; i++)); do printf 'host-%04d.fwd.test A\n' "$i"; done >"$tmp/fwd.queries"

DPORT=$(port)
MPORT=$(port)
"$BIN/sluice-dns" --server "$URL" --listen "127.0.0.1:$DPORT" --metrics "127.0.0.1:$MPORT" \
	--forward "127.0.0.1:$KPORT" --workers 2 --log-level warn >"$tmp/sluice-dns.log" 2>&1 &
DNS_PID=$!
pids+=("$DNS_PID")
for ((i = 0; i < 200; i++)); do
	curl -sf -o /dev/null "http://127.0.0.1:$MPORT/ready" && break
	kill -0 "$DNS_PID" 2>/dev/null || break
	sleep 0.05
done
curl -sf -o /dev/null "http://127.0.0.1:$MPORT/ready" ||
	{ echo "dns bench: sluice-dns not ready" >&2; cat "$tmp/sluice-dns.log" >&2; exit 1; }
sleep 1
rss sluice-dns idle "$DNS_PID"

log "loading $SERVICES Services + $SLICES EndpointSlices x $ENDPOINTS endpoints"
"$BIN/apibench" load --api sluice --url "$URL" --services $SERVICES --namespaces 10 \
	--slices $SLICES --endpoints $ENDPOINTS --clients 16 | tee -a "$tmp/load.txt" >&2
grep -q ' errors=0 ' "$tmp/load.txt" || fail "apibench load reported errors"
curl -sf "$URL/api/v1/services" >"$tmp/services.json"

# Zone files, query files and the last Service (to know when sluice-dns has seen everything).
cat >"$tmp/gen.py" <<'PY'
# Builds the static zones and the query mix from the Service list sluice-dns serves.
import json, random, sys
d = sys.argv[1]
items = json.load(open(d + "/services.json"))["items"]
svcs = [s for s in items if s["spec"].get("clusterIP") not in (None, "", "None")]
soa = "@ SOA ns.dns.cluster.local. hostmaster.cluster.local. 1 7200 1800 86400 30\n@ NS ns.dns.cluster.local.\n"
with open(d + "/cluster.local.zone", "w") as z, open(d + "/19.198.in-addr.arpa.zone", "w") as r:
    z.write("$ORIGIN cluster.local.\n$TTL 30\n" + soa + "ns.dns A 127.0.0.1\n")
    z.write('dns-version TXT "1.1.0"\n')
    r.write("$ORIGIN 19.198.in-addr.arpa.\n$TTL 30\n" + soa)
    for s in svcs:
        n = "%s.%s.svc" % (s["metadata"]["name"], s["metadata"]["namespace"])
        ip = s["spec"]["clusterIP"]
        z.write("%s A %s\n" % (n, ip))
        for p in s["spec"].get("ports", []):
            if p.get("name"):
                z.write("_%s._%s.%s SRV 0 100 %d %s.cluster.local.\n" %
                        (p["name"], p.get("protocol", "TCP").lower(), n, p["port"], n))
        o = ip.split(".")
        r.write("%s.%s PTR %s.cluster.local.\n" % (o[3], o[2], n))
rnd = random.Random(1)
loaded = [s for s in svcs if s["metadata"]["namespace"].startswith("ns-")]
with open(d + "/cluster.queries", "w") as q:
    for i in range(100000):
        s = rnd.choice(loaded)
        n = "%s.%s.svc.cluster.local" % (s["metadata"]["name"], s["metadata"]["namespace"])
        x = rnd.random()
        if x < 0.40:
            q.write(n + " A\n")
        elif x < 0.55:
            q.write(n + " AAAA\n")
        elif x < 0.75:
            ports = [p for p in s["spec"]["ports"] if p.get("name")]
            p = rnd.choice(ports)
            q.write("_%s._%s.%s SRV\n" % (p["name"], p.get("protocol", "TCP").lower(), n))
        elif x < 0.90:
            o = s["spec"]["clusterIP"].split(".")
            q.write("%s.%s.%s.%s.in-addr.arpa PTR\n" % (o[3], o[2], o[1], o[0]))
        else:
            q.write("nosuch-%d.%s.svc.cluster.local A\n" % (i, s["metadata"]["namespace"]))
last = max(svcs, key=lambda s: int(s["metadata"]["resourceVersion"]))
print("%s.%s.svc.cluster.local %d" % (last["metadata"]["name"], last["metadata"]["namespace"], len(svcs)))
PY
read -r LAST_NAME N_SVC < <("$PY" "$tmp/gen.py" "$tmp")
log "zone: $N_SVC ClusterIP Services; waiting for sluice-dns to answer $LAST_NAME"
for ((i = 0; i < 600; i++)); do
	[[ -n $(dig @127.0.0.1 -p "$DPORT" +time=1 +tries=1 +short "$LAST_NAME" A) ]] && break
	sleep 0.05
done
[[ -n $(dig @127.0.0.1 -p "$DPORT" +short "$LAST_NAME" A) ]] || fail "sluice-dns never answered $LAST_NAME"
sleep 2
rss sluice-dns loaded "$DNS_PID"

# --- nsd, knotd, unbound -------------------------------------------------------------------------
cp "$tmp/cluster.local.zone" "$tmp/19.198.in-addr.arpa.zone" "$tmp/knot/"
cat >"$tmp/knot/knot.conf" <<K
server:
    listen: 127.0.0.1@$KPORT
    rundir: $tmp/knot
    udp-workers: 2
    tcp-workers: 1
    background-workers: 1
database:
    storage: $tmp/knot
control:
    listen: $tmp/knot/knot.sock
log:
  - target: stderr
    any: warning
zone:
  - domain: fwd.test
    storage: $tmp/knot
    file: fwd.test.zone
  - domain: cluster.local
    storage: $tmp/knot
    file: cluster.local.zone
  - domain: 19.198.in-addr.arpa
    storage: $tmp/knot
    file: 19.198.in-addr.arpa.zone
K
knotd -c "$tmp/knot/knot.conf" >"$tmp/knot.log" 2>&1 &
KNOT_PID=$!
pids+=("$KNOT_PID")

NPORT=$(port)
mkdir -p "$tmp/nsd"
cp "$tmp/cluster.local.zone" "$tmp/19.198.in-addr.arpa.zone" "$tmp/nsd/"
cat >"$tmp/nsd/nsd.conf" <<N
server:
    ip-address: 127.0.0.1@$NPORT
    server-count: 2
    username: ""
    chroot: ""
    zonesdir: "$tmp/nsd"
    database: ""
    zonelistfile: "$tmp/nsd/zone.list"
    xfrdfile: "$tmp/nsd/xfrd.state"
    xfrdir: "$tmp/nsd"
    pidfile: "$tmp/nsd/nsd.pid"
    logfile: "$tmp/nsd.log"
    verbosity: 0
    # Response rate limiting is on by default and would drop a benchmark's
    # repeated answers to one client address.
    rrl-ratelimit: 0
    rrl-whitelist-ratelimit: 0
remote-control:
    control-enable: no
zone:
    name: cluster.local
    zonefile: cluster.local.zone
zone:
    name: 19.198.in-addr.arpa
    zonefile: 19.198.in-addr.arpa.zone
N
nsd -d -c "$tmp/nsd/nsd.conf" >>"$tmp/nsd.log" 2>&1 &
NSD_PID=$!
pids+=("$NSD_PID")

UPORT=$(port)
mkdir -p "$tmp/unbound"
cat >"$tmp/unbound/unbound.conf" <<U
server:
    interface: 127.0.0.1
    port: $UPORT
    num-threads: 2
    so-reuseport: yes
    do-ip6: no
    do-daemonize: no
    username: ""
    chroot: ""
    directory: "$tmp/unbound"
    pidfile: "$tmp/unbound/unbound.pid"
    use-syslog: no
    logfile: ""
    verbosity: 0
    module-config: "iterator"
    do-not-query-localhost: no
    access-control: 127.0.0.0/8 allow
    prefetch: no
    # test. is one of unbound's built-in (RFC 6761) local zones: let it through.
    local-zone: "test." nodefault
remote-control:
    control-enable: no
# Every name, including the root, goes to the local knotd and nowhere else.
forward-zone:
    name: "fwd.test."
    forward-addr: 127.0.0.1@$KPORT
forward-zone:
    name: "."
    forward-addr: 127.0.0.1@$KPORT
U
unbound -d -c "$tmp/unbound/unbound.conf" >"$tmp/unbound.log" 2>&1 &
UNBOUND_PID=$!
pids+=("$UNBOUND_PID")

wait_udp knot "$KPORT" host-0000.fwd.test
wait_udp nsd "$NPORT" "$LAST_NAME"
wait_udp unbound "$UPORT" host-0000.fwd.test
# nsd serves from processes two levels down (xfrd -> main -> server N): sum them all.
nsd_pids() {
	local p c
	echo "$NSD_PID"
	for p in $(pgrep -P "$NSD_PID" || true); do
		echo "$p"
		for c in $(pgrep -P "$p" || true); do echo "$c"; done
	done
}
rss nsd loaded "$NSD_PID"
rss knotd loaded "$KNOT_PID"

# The three authoritative servers must give the same answers (rcode + answer records).
check_same() { # QNAME TYPE
	local a b c
	a=$(dig @127.0.0.1 -p "$DPORT" +noall +answer +comments "$1" "$2" | grep -E 'status|IN' |
		sed -E 's/id: [0-9]+//; s/[[:space:]]+/ /g' | sort)
	b=$(dig @127.0.0.1 -p "$NPORT" +noall +answer +comments "$1" "$2" | grep -E 'status|IN' |
		sed -E 's/id: [0-9]+//; s/[[:space:]]+/ /g' | sort)
	c=$(dig @127.0.0.1 -p "$KPORT" +noall +answer +comments "$1" "$2" | grep -E 'status|IN' |
		sed -E 's/id: [0-9]+//; s/[[:space:]]+/ /g' | sort)
	[[ $a == "$b" && $b == "$c" ]] || fail "answers differ for $1 $2: sluice [$a] nsd [$b] knot [$c]"
}
while read -r qn qt; do check_same "$qn" "$qt"; done < <(head -20 "$tmp/cluster.queries")

# --- dnsperf runs --------------------------------------------------------------------------------
# perf TEST SERVER PORT QUERYFILE PID...: saturation run; qps, average latency, loss, server CPU.
perf() {
	local test=$1 server=$2 p=$3 qf=$4 c0=0 c1=0 x out
	shift 4
	for x in "$@"; do c0=$((c0 + $(cpu_ticks "$x"))); done
	out=$(dnsperf -s 127.0.0.1 -p "$p" -d "$qf" -l "$SECONDS_PER_RUN" -c "$CLIENTS" \
		-q "$OUTSTANDING" -T 1 2>&1) || { fail "dnsperf $server: $out"; return; }
	for x in "$@"; do c1=$((c1 + $(cpu_ticks "$x"))); done
	awk -v rep="$rep" -v t="$test" -v s="$server" -v dt=$((c1 - c0)) -v hz="$CLK_TCK" '
		/Queries sent:/ { sent = $3 } /Queries lost:/ { lost = $3 }
		/Run time \(s\):/ { rt = $4 } /Queries per second:/ { qps = $4 }
		/Average Latency/ { avg = $4 * 1000 }
		/Response codes:/ { sub(/.*Response codes: */, ""); gsub(/ /, ""); rc = $0 }
		END { cores = dt / hz / rt
		      printf "rep=%s test=%s server=%s qps=%.0f avg_ms=%.3f sent=%d lost=%d cores=%.2f qps_per_core=%.0f rcodes=%s\n",
		      rep, t, s, qps, avg, sent, lost, cores, (cores > 0 ? qps / cores : 0), rc }' \
		<<<"$out" | tee -a "$raw" >&2
	# Forwarded names all exist: anything but NOERROR means a broken setup, not a result.
	[[ $test != forward ]] || ! tail -1 "$raw" | grep -qE 'rcodes=.*(NXDOMAIN|SERVFAIL|REFUSED)' ||
		fail "$server answered forwarded names with errors: $(tail -1 "$raw")"
}

# lat TEST SERVER PORT QUERYFILE: fixed-rate run, every query's latency (dnsperf -v), p50/p99.
lat() {
	dnsperf -s 127.0.0.1 -p "$3" -d "$4" -l "$LAT_SECONDS" -c "$CLIENTS" -Q "$LAT_RATE" -T 1 -v \
		>"$tmp/lat.out" 2>&1 || { fail "dnsperf -v $2"; return; }
	awk '$1 == ">" { print $NF * 1000 }' "$tmp/lat.out" | sort -n |
		awk -v rep="$rep" -v t="$1" -v s="$2" -v rate="$LAT_RATE" '{ v[NR] = $1 }
		END { if (NR == 0) exit 1
		      i50 = int(NR * 0.5) + 1; i99 = int(NR * 0.99) + 1; i999 = int(NR * 0.999) + 1
		      if (i99 > NR) i99 = NR
		      if (i999 > NR) i999 = NR
		      printf "rep=%s test=%s server=%s rate=%d n=%d p50_ms=%.3f p99_ms=%.3f p999_ms=%.3f max_ms=%.3f\n",
		      rep, t, s, rate, NR, v[i50], v[i99], v[i999], v[NR] }' | tee -a "$raw" >&2 ||
		fail "dnsperf -v $2: no latency lines: $(grep -v '^\[' "$tmp/lat.out" | head -3)"
}

# Warm the caches of the forwarders (each name asked once, then again).
for x in 1 2; do
	dnsperf -s 127.0.0.1 -p "$DPORT" -d "$tmp/fwd.queries" -n 1 -c 1 -q 20 >/dev/null 2>&1 || true
	dnsperf -s 127.0.0.1 -p "$UPORT" -d "$tmp/fwd.queries" -n 1 -c 1 -q 20 >/dev/null 2>&1 || true
done

for ((rep = 1; rep <= REPS; rep++)); do
	log "rep $rep/$REPS: cluster zone"
	case $((rep % 3)) in
	1) order="sluice nsd knot" ;;
	2) order="nsd knot sluice" ;;
	0) order="knot sluice nsd" ;;
	esac
	for s in $order; do
		case $s in
		sluice) perf cluster sluice "$DPORT" "$tmp/cluster.queries" "$DNS_PID" ;;
		nsd) perf cluster nsd "$NPORT" "$tmp/cluster.queries" $(nsd_pids) ;;
		knot) perf cluster knot "$KPORT" "$tmp/cluster.queries" "$KNOT_PID" ;;
		esac
	done
	for s in $order; do
		case $s in
		sluice) lat cluster sluice "$DPORT" "$tmp/cluster.queries" ;;
		nsd) lat cluster nsd "$NPORT" "$tmp/cluster.queries" ;;
		knot) lat cluster knot "$KPORT" "$tmp/cluster.queries" ;;
		esac
	done
	log "rep $rep/$REPS: forwarded, cached"
	order="sluice unbound"
	((rep % 2 == 0)) && order="unbound sluice"
	for s in $order; do
		if [[ $s == sluice ]]; then
			perf forward sluice "$DPORT" "$tmp/fwd.queries" "$DNS_PID"
			lat forward sluice "$DPORT" "$tmp/fwd.queries"
		else
			perf forward unbound "$UPORT" "$tmp/fwd.queries" "$UNBOUND_PID"
			lat forward unbound "$UPORT" "$tmp/fwd.queries"
		fi
	done
done
rss sluice-dns after-runs "$DNS_PID"
rss unbound after-runs "$UNBOUND_PID"

# --- create → resolvable -------------------------------------------------------------------------
log "create-to-resolve: $SAMPLES samples"
cat >"$tmp/prop.py" <<'PY'
# POSTs a Service, then asks sluice-dns for its name back to back (UDP, one
# outstanding query, no sleep) until the A record with the assigned ClusterIP
# comes back. Prints one line per sample: from the POST's send, from its 201.
import http.client, json, random, socket, struct, sys, time
url, dport, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
host, port = url.split("//")[1].split(":")
conn = http.client.HTTPConnection(host, int(port))
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.connect(("127.0.0.1", dport))
s.settimeout(0.5)
def query(qid, name):
    return (struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0) +
            b"".join(bytes([len(l)]) + l.encode() for l in name.split(".")) + b"\0\0\1\0\1")
for i in range(n):
    name = "probe-%03d" % i
    body = json.dumps({"metadata": {"name": name}, "spec": {"selector": {"app": name},
                       "ports": [{"name": "http", "port": 80}]}})
    qid = 0
    t0 = time.perf_counter()
    conn.request("POST", "/api/v1/namespaces/ns-00/services", body,
                 {"Content-Type": "application/json"})
    r = conn.getresponse()
    data = r.read()
    tack = time.perf_counter()
    if r.status != 201:
        print("error HTTP %d %s" % (r.status, data[:200]))
        sys.exit(1)
    ip = socket.inet_aton(json.loads(data)["spec"]["clusterIP"])
    q = "%s.ns-00.svc.cluster.local" % name
    polls = 0
    while True:
        qid = (qid + 1) & 0xffff
        s.send(query(qid, q))
        polls += 1
        try:
            while True:
                a = s.recv(1500)
                if struct.unpack(">H", a[:2])[0] == qid:
                    break
        except socket.timeout:
            continue
        if struct.unpack(">H", a[6:8])[0] > 0 and ip in a:
            break
        if time.perf_counter() - t0 > 5:
            print("error %s did not resolve in 5 s" % q)
            sys.exit(1)
    t1 = time.perf_counter()
    print("test=propagation sample=%d from_send_ms=%.3f from_ack_ms=%.3f post_ms=%.3f polls=%d" %
          (i, (t1 - t0) * 1e3, (t1 - tack) * 1e3, (tack - t0) * 1e3, polls))
    time.sleep(random.uniform(0.02, 0.05))
PY
if "$PY" "$tmp/prop.py" "$URL" "$DPORT" "$SAMPLES" >"$tmp/prop.txt"; then
	cat "$tmp/prop.txt" >>"$raw"
else
	fail "create-to-resolve: $(tail -1 "$tmp/prop.txt")"
fi
rss sluice-dns final "$DNS_PID"
grep -qE 'ERROR|panic|runtime error' "$tmp/sluice-dns.log" && fail "sluice-dns log: $(head -3 "$tmp/sluice-dns.log")"
t_total=$(($(date +%s) - t_start))

# --- report --------------------------------------------------------------------------------------
export m_cpu m_nproc m_mem m_kernel m_commit m_date m_load v_dnsperf v_nsd v_knot v_unbound
export REPS SECONDS_PER_RUN CLIENTS OUTSTANDING LAT_RATE LAT_SECONDS SAMPLES SERVICES SLICES
export ENDPOINTS FWD_NAMES N_SVC t_total
export FAILURES="${failures[*]:-}"
"$PY" - "$raw" "$OUT" "$tmp" <<'PY'
import os, statistics as st, sys
raw, out, tmp = sys.argv[1:4]
E = os.environ
rows = []
for line in open(raw):
    kv = dict(x.split("=", 1) for x in line.split())
    rows.append(kv)
def sel(**k):
    return [r for r in rows if all(r.get(a) == b for a, b in k.items())]
def med(rs, key):
    v = [float(r[key]) for r in rs if key in r]
    return (st.median(v), min(v), max(v)) if v else (float("nan"),) * 3

# CSV: one row per measurement.
keys = ["rep", "test", "server", "state", "sample", "qps", "avg_ms", "sent", "lost", "cores",
        "qps_per_core", "rate", "n", "p50_ms", "p99_ms", "p999_ms", "max_ms", "from_send_ms",
        "from_ack_ms", "post_ms", "polls", "vmrss_kb", "vmhwm_kb", "rssanon_kb", "rcodes"]
with open(out + "/dns.csv", "w") as f:
    f.write(",".join(keys) + "\n")
    for r in rows:
        f.write(",".join(r.get(k, "").replace(",", ";") for k in keys) + "\n")

P = lambda t, s: sel(test=t, server=s, **({} if False else {}))
def perf_rows(t, s):
    return [r for r in sel(test=t, server=s) if "qps" in r]
def lat_rows(t, s):
    return [r for r in sel(test=t, server=s) if "p50_ms" in r]
def pct(vals, p):
    v = sorted(vals)
    return v[min(len(v) - 1, int(len(v) * p))] if v else float("nan")

md = []
w = md.append
cl = {s: (med(perf_rows("cluster", s), "qps"), med(perf_rows("cluster", s), "qps_per_core"),
          med(perf_rows("cluster", s), "cores"), med(perf_rows("cluster", s), "avg_ms"),
          med(lat_rows("cluster", s), "p50_ms"), med(lat_rows("cluster", s), "p99_ms"))
      for s in ("sluice", "nsd", "knot")}
fw = {s: (med(perf_rows("forward", s), "qps"), med(perf_rows("forward", s), "qps_per_core"),
          med(perf_rows("forward", s), "cores"), med(perf_rows("forward", s), "avg_ms"),
          med(lat_rows("forward", s), "p50_ms"), med(lat_rows("forward", s), "p99_ms"))
      for s in ("sluice", "unbound")}
best = max(("nsd", "knot"), key=lambda s: cl[s][1][0])
r_core = cl["sluice"][1][0] / cl[best][1][0]
best_q = max(("nsd", "knot"), key=lambda s: cl[s][0][0])
r_qps = cl["sluice"][0][0] / cl[best_q][0][0]
r_fwd = fw["sluice"][0][0] / fw["unbound"][0][0]
prop = sel(test="propagation")
ps = [float(r["from_send_ms"]) for r in prop]
pa = [float(r["from_ack_ms"]) for r in prop]
pp = [float(r["post_ms"]) for r in prop]
rss = {(r["server"], r["state"]): r for r in sel(test="rss")}
mib = lambda kb: float(kb) / 1024
fails = E.get("FAILURES", "")
yes = lambda b: "**yes**" if b else "**no**"

w("# DNS benchmark: sluice-dns vs nsd, knot and unbound\n")
w("Measured %s on commit `%s`, %s s. Status: %s.\n" % (E["m_date"], E["m_commit"], E["t_total"],
  "all runs completed without errors" if not fails else "FAILED: " + fails))
w("Repeat with `make && make bench` (this part alone: `tools/bench/dns.sh`; knobs REPS=%s "
  "SECONDS_PER_RUN=%s CLIENTS=%s OUTSTANDING=%s LAT_RATE=%s LAT_SECONDS=%s SAMPLES=%s).\n" %
  (E["REPS"], E["SECONDS_PER_RUN"], E["CLIENTS"], E["OUTSTANDING"], E["LAT_RATE"],
   E["LAT_SECONDS"], E["SAMPLES"]))
w("**Machine:** %s x %s, %s, Linux %s; load average at start %s. This is a shared, noisy VM: "
  "dnsperf (one thread) and the server under test share its %s cores, and other jobs may run "
  "beside them. Every figure is the median of %s runs (min-max in the CSV); the servers take "
  "turns in a rotating order within each run, so compare the ratios more than the absolute "
  "values.\n" % (E["m_nproc"], E["m_cpu"], E["m_mem"], E["m_kernel"], E["m_load"], E["m_nproc"], E["REPS"]))
w("**Servers**, all on 127.0.0.1, 2 worker threads/processes each: `sluice-dns --workers 2` "
  "(informers on `sluice-control --store memory`); NSD %s (`server-count: 2`), Knot DNS %s "
  "(`udp-workers: 2`), Unbound %s (`num-threads: 2`, `module-config: iterator`, forward-zones to "
  "the local knotd only). Load: dnsperf %s, UDP, `-c %s -q %s -T 1`, %s s per run, no rate limit "
  "(saturation); latency percentiles from a separate run at a fixed %s queries/s (`-Q %s -v`, "
  "every query's latency, %s s).\n" % (E["v_nsd"], E["v_knot"], E["v_unbound"], E["v_dnsperf"],
  E["CLIENTS"], E["OUTSTANDING"], E["SECONDS_PER_RUN"], E["LAT_RATE"], E["LAT_RATE"], E["LAT_SECONDS"]))
w("**Per core** = queries/s divided by the server's own CPU time per second of the run "
  "(utime+stime from /proc, all threads; for nsd its server processes), so the load "
  "generator's share of the 2 cores does not count against anyone.\n")
w("## Goals\n")
w("| goal | measured (median) | met |\n|---|---|---|")
w("| cluster names: sluice-dns >= the faster of nsd and knot, per core | %.0f vs %s %.0f q/s per core (x%.2f); absolute %.0f vs %s %.0f q/s (x%.2f) | %s |" %
  (cl["sluice"][1][0], best, cl[best][1][0], r_core, cl["sluice"][0][0], best_q, cl[best_q][0][0], r_qps, yes(r_core >= 1)))
w("| cached forwarded names: sluice-dns >= unbound | %.0f vs %.0f q/s (x%.2f); per core x%.2f | %s |" %
  (fw["sluice"][0][0], fw["unbound"][0][0], r_fwd, fw["sluice"][1][0] / fw["unbound"][1][0], yes(r_fwd >= 0.95)))
if ps:
    w("| Service create → name resolves, p99 < 50 ms | p50 %.1f ms, p99 %.1f ms (from the POST's send, %d samples) | %s |" %
      (pct(ps, 0.5), pct(ps, 0.99), len(ps), yes(pct(ps, 0.99) < 50)))
w("")
w("## 1. Cluster-zone names\n")
w("%s ClusterIP Services (%s loaded by `apibench load` in 10 namespaces, with %s EndpointSlices x %s "
  "endpoints, plus the built-in `kubernetes` Service). nsd and knotd serve `cluster.local` and "
  "`19.198.in-addr.arpa` from zone files generated from sluice-control's Service list (A, SRV for "
  "every named port, PTR), TTL 30 as sluice-dns. 100,000 queries, shuffled with a fixed seed: "
  "40%% A, 15%% AAAA (NODATA), 20%% SRV (`_http._tcp`, `_https._tcp`), 15%% PTR, 10%% NXDOMAIN "
  "(`nosuch-N.ns-NN.svc.cluster.local`). Before timing, the first 20 queries are asked of all "
  "three servers with dig and their rcodes and answers must match.\n" %
  (E["N_SVC"], E["SERVICES"], E["SLICES"], E["ENDPOINTS"]))
w("| server | queries/s | server cores used | queries/s per core | avg ms at saturation | p50 / p99 ms at %s q/s |" % E["LAT_RATE"])
w("|---|---|---|---|---|---|")
for s in ("sluice", "nsd", "knot"):
    q, c, u, a, l5, l9 = cl[s]
    w("| %s | %.0f | %.2f | %.0f | %.3f | %.3f / %.3f |" % (s, q[0], u[0], c[0], a[0], l5[0], l9[0]))
w("")
w("## 2. Cached forwarded names\n")
w("knotd serves `fwd.test` (%s A records, TTL 3600). sluice-dns (`--forward` knotd) and unbound "
  "(forward-zones `fwd.test.` and `.` to knotd) both have every name cached before timing (the "
  "query list is sent twice to each). The query file is the %s names, A.\n" % (E["FWD_NAMES"], E["FWD_NAMES"]))
w("| server | queries/s | server cores used | queries/s per core | avg ms at saturation | p50 / p99 ms at %s q/s |" % E["LAT_RATE"])
w("|---|---|---|---|---|---|")
for s in ("sluice", "unbound"):
    q, c, u, a, l5, l9 = fw[s]
    w("| %s | %.0f | %.2f | %.0f | %.3f | %.3f / %.3f |" % (s, q[0], u[0], c[0], a[0], l5[0], l9[0]))
w("")
w("## 3. Service create → name resolves\n")
w("%d samples, 20-50 ms apart, with the 10,000 Services loaded: POST a Service (one keep-alive "
  "connection to sluice-control), then ask sluice-dns for its A record back to back over UDP (one "
  "query outstanding, no sleep) until the answer carries the ClusterIP from the 201 reply. "
  "*From send* starts before the POST; *from ack* starts at the 201 (sluice-control queues the event "
  "to watchers before it answers, so it can be ~0).\n" % len(ps))
if ps:
    w("| from | p50 ms | p99 ms | max ms |\n|---|---|---|---|")
    w("| POST send | %.2f | %.2f | %.2f |" % (pct(ps, 0.5), pct(ps, 0.99), max(ps)))
    w("| 201 reply | %.2f | %.2f | %.2f |" % (pct(pa, 0.5), pct(pa, 0.99), max(pa)))
    w("| (the POST itself) | %.2f | %.2f | %.2f |" % (pct(pp, 0.5), pct(pp, 0.99), max(pp)))
w("")
w("## 4. Memory\n")
w("VmRSS from /proc/PID/status. sluice-dns: connected and synced with an empty cluster (idle), "
  "after the %s Services + %s EndpointSlices x %s endpoints arrived by watch and 2 s of quiet "
  "(loaded), after the dnsperf runs (its forward cache holds the %s fwd.test names), and at the "
  "end. nsd and knotd hold the static zones (knotd also fwd.test).\n" %
  (E["SERVICES"], E["SLICES"], E["ENDPOINTS"], E["FWD_NAMES"]))
w("| server | state | VmRSS MiB | RssAnon MiB | VmHWM MiB |\n|---|---|---|---|---|")
for k in [("sluice-dns", "idle"), ("sluice-dns", "loaded"), ("sluice-dns", "after-runs"),
          ("sluice-dns", "final"), ("nsd", "loaded"), ("knotd", "loaded"), ("unbound", "after-runs")]:
    if k in rss:
        r = rss[k]
        w("| %s | %s | %.1f | %.1f | %.1f |" % (k[0], k[1], mib(r["vmrss_kb"]), mib(r["rssanon_kb"]), mib(r["vmhwm_kb"])))
if ("sluice-dns", "idle") in rss and ("sluice-dns", "loaded") in rss:
    d = mib(rss[("sluice-dns", "loaded")]["vmrss_kb"]) - mib(rss[("sluice-dns", "idle")]["vmrss_kb"])
    w("\nsluice-dns grows by %.1f MiB for the %s Services and their EndpointSlices." % (d, E["SERVICES"]))
w("\n![DNS benchmark](dns.png)\n")
w("Raw per-run figures: [dns.csv](dns.csv).")
open(tmp + "/report.md", "w").write("\n".join(md) + "\n")

# Plot tables.
with open(tmp + "/qps.dat", "w") as f:
    f.write("server qps per_core\n")
    for s in ("sluice", "nsd", "knot"):
        f.write("cluster:%s %.0f %.0f\n" % (s, cl[s][0][0], cl[s][1][0]))
    for s in ("sluice", "unbound"):
        f.write("forward:%s %.0f %.0f\n" % (s, fw[s][0][0], fw[s][1][0]))
with open(tmp + "/lat.dat", "w") as f:
    f.write("server p50 p99\n")
    for s in ("sluice", "nsd", "knot"):
        f.write("cluster:%s %.3f %.3f\n" % (s, cl[s][4][0], cl[s][5][0]))
    for s in ("sluice", "unbound"):
        f.write("forward:%s %.3f %.3f\n" % (s, fw[s][4][0], fw[s][5][0]))
with open(tmp + "/prop.dat", "w") as f:
    for i, v in enumerate(sorted(ps)):
        f.write("%.3f %.4f\n" % (v, (i + 1) / len(ps)))
PY
cp "$tmp/report.md" "$OUT/dns.md"

png_note=""
if command -v gnuplot >/dev/null; then
	cat >"$tmp/plot.gnuplot" <<'G'
set terminal pngcairo size 1500,500 font "DejaVu Sans,10"
set output out
set multiplot layout 1,3 title "sluice-dns vs nsd, knot, unbound (".machine.")" font ",12"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set grid ytics
set key top right
set yrange [0:*]
set xtics rotate by -30
set title "Throughput (saturation, UDP)"
set ylabel "queries/s (higher is better)"
plot dir."/qps.dat" using 2:xtic(1) title "queries/s" lc rgb "#1f77b4", \
     '' using 3 title "per server core" lc rgb "#ff7f0e"
set title "Latency at a fixed rate"
set ylabel "ms (lower is better)"
plot dir."/lat.dat" using 2:xtic(1) title "p50" lc rgb "#2ca02c", \
     '' using 3 title "p99" lc rgb "#d62728"
unset style
set style data lines
set xtics norotate
set title "Service create -> name resolves (CDF)"
set xlabel "ms from the POST's send"
set ylabel "fraction of samples"
set yrange [0:1]
set key bottom right
plot dir."/prop.dat" using 1:2 with steps lw 2 title "sluice-dns"
G
	if ! gnuplot -e "dir='$tmp'; out='$OUT/dns.png'; machine='$m_nproc cores, $m_date'" \
		"$tmp/plot.gnuplot"; then
		png_note="(plot failed)"
		fail "gnuplot"
	fi
else
	png_note="(no plot: gnuplot not installed; the Debian package is gnuplot-nox)"
fi
[[ -z $png_note ]] || sed -i "s|^!\[DNS benchmark\](dns.png)|$png_note|" "$OUT/dns.md"

log "results: $OUT/dns.md, $OUT/dns.csv, $OUT/dns.png"
if ((${#failures[@]})); then
	log "FAILED: ${failures[*]}"
	exit 1
fi
exit 0
