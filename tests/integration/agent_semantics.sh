#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# kube-proxy's service semantics, one check each, end to end: objects written
# to sluice-control, programmed by sluice-agent, observed from a process in the
# node's cgroup (socket LB) or on the agent's health-check ports.
#
#   host netns                                  netns sl-sem-<pid> (only lo)
#   ┌───────────────────────────────┐           ┌───────────────────────────────────┐
#   │ sluice-control 127.0.0.1:P    │           │ lo: 198.18.0.10 (node-a address)  │
#   │ sluice-agent --node-name      │  maps +   │     198.18.{1..10}.x backends:    │
#   │   node-a --cgroup-root CG ────┼─ cgroup ─▶│     one python3 asyncio process   │
#   │   --hc-bind 127.0.0.1         │  hooks    │     answering "addr:port" on TCP  │
#   │ curl 127.0.0.1:<hcNodePort> ◀─┼── HC      │     and UDP                       │
#   └───────────────────────────────┘           │ client (python3) in cgroup CG →   │
#                                               │   ClusterIPs 198.18.128.0/20,     │
#                                               │   198.18.0.10 (externalIPs)       │
#                                               └───────────────────────────────────┘
# node-b exists only as an API object: endpoints with nodeName node-b are
# "remote" to the agent, yet reachable on the same lo, so a policy bug that
# picks them shows up as a reply instead of a timeout. The netns has no route
# anywhere: an untranslated connect fails at once. Private mount namespace and
# bpffs as in agent_clusterip.sh. Every backend answers with its own
# "addr:port", so each reply names the backend and the port it was reached on.
#
# DATAPLANE=iptables|nftables runs the same checks against a legacy dataplane
# (agent/proxier.h): the agent then runs inside the netns (netfilter rules are
# per netns; sluice-control also listens there, --listen-netns), its
# health-check and metrics ports are there too, and "nothing programmed" is
# read from iptables-save / nft instead of the svc4 map. One semantic differs
# on purpose, as in kube-proxy: internalTrafficPolicy Local with endpoints
# only on other nodes DROPs there (the client times out) where the socket LB
# refuses at connect.
#
# Not covered here: a malformed object from the API (validation refuses to
# store one; the model's unit tests feed malformed JSON instead), and what
# eTP=Local does for clients outside the node (the per-packet path's job; the
# socket LB only ever sees in-node clients).
if [[ -z ${SLUICE_IN_MNTNS:-} ]]; then
	exec env SLUICE_IN_MNTNS=1 unshare --mount --propagation private bash "$0" "$@"
fi
source "$(dirname "$0")/lib.sh"

DATAPLANE=${DATAPLANE:-bpf}
case $DATAPLANE in
bpf | iptables | nftables) ;;
*)
	echo "agent_semantics.sh: DATAPLANE must be bpf, iptables or nftables, not '$DATAPLANE'" >&2
	exit 2
	;;
esac
NS=sl-sem-$$
CGROOT=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/self/mounts)
CG=$CGROOT/sluice-test-sem-$$
BPFFS=$TMP/bpffs
NODE=node-a
mkdir -p "$BPFFS"
mount -t bpf bpf "$BPFFS" || { not_ok mount-bpffs; finish; }
# pyenv shims cost a second per start: resolve the interpreter once.
PY=$(python3 -c 'import sys; print(sys.executable)')

sem_cleanup() {
	[[ -n ${AGENT_PID:-} ]] && kill -9 "$AGENT_PID" 2>/dev/null
	local in_ns=()
	[[ -e /run/netns/$NS ]] && in_ns=(nsenter --net=/run/netns/"$NS")
	"${in_ns[@]}" "$BIN/sluice-agent" --node-name "$NODE" --bpffs "$BPFFS" --cleanup \
		>/dev/null 2>&1
	if [[ -d $CG ]]; then
		while read -r p; do kill -9 "$p" 2>/dev/null; done <"$CG/cgroup.procs"
		sleep 0.1
		rmdir "$CG" 2>/dev/null
	fi
	ip netns del "$NS" 2>/dev/null
	umount "$BPFFS" 2>/dev/null
	cleanup
}
trap sem_cleanup EXIT

# Backends (serve) and clients (tcp, udp) in one small program.
H=$TMP/h.py
cat >"$H" <<'PY'
import asyncio, errno, socket, sys

def serve(specs, ready):
    async def main():
        loop = asyncio.get_running_loop()
        for spec in specs:
            proto, addr, port = spec.split(":")
            ident = ("%s:%s" % (addr, port)).encode()
            if proto == "tcp":
                async def handle(r, w, ident=ident):
                    try:
                        await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), 2)
                        w.write(b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n"
                                b"Connection: close\r\n\r\n%s" % (len(ident), ident))
                        await w.drain()
                    except Exception:
                        pass
                    w.close()
                await asyncio.start_server(handle, addr, int(port), backlog=1024)
            else:
                class Echo(asyncio.DatagramProtocol):
                    def connection_made(self, t, ident=ident):
                        self.t, self.ident = t, ident
                    def datagram_received(self, data, src):
                        self.t.sendto(self.ident + b" " + data, src)
                await loop.create_datagram_endpoint(Echo, local_addr=(addr, int(port)))
        open(ready, "w").close()
        await asyncio.Event().wait()
    asyncio.run(main())

def err(e):
    return "ERR " + (errno.errorcode.get(e.errno, str(e.errno)) if e.errno else "timeout")

# One line per request: the backend's "addr:port" or "ERR <errno>".
def tcp(host, port, n):
    out = []
    for _ in range(n):
        s = socket.socket()
        s.settimeout(2)
        try:
            s.connect((host, port))
            s.sendall(b"GET / HTTP/1.0\r\n\r\n")
            data = b""
            while True:
                c = s.recv(4096)
                if not c:
                    break
                data += c
            out.append(data.partition(b"\r\n\r\n")[2].decode() or "ERR empty")
        except OSError as e:
            out.append(err(e))
        finally:
            s.close()
    print("\n".join(out))

# "<reply> from <addr:port>" as recvfrom (and getpeername, when connected) see it.
def udp(host, port, mode):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(2)
    try:
        if mode == "connected":
            s.connect((host, port))
            s.send(b"ping")
        else:
            s.sendto(b"ping", (host, port))
        data, src = s.recvfrom(4096)
        line = "%s from %s:%d" % (data.decode(), src[0], src[1])
        if mode == "connected":
            line += " peer %s:%d" % s.getpeername()
        print(line)
    except OSError as e:
        print(err(e))

# Pearson's chi-square against a uniform spread over k bins (stdin: one label
# a line); prints the statistic and the counts.
def chisq(k):
    counts = {}
    for line in sys.stdin:
        counts[line.strip()] = counts.get(line.strip(), 0) + 1
    n = sum(counts.values())
    exp = n / k
    obs = list(counts.values()) + [0] * (k - len(counts))
    print("%.3f %s" % (sum((o - exp) ** 2 / exp for o in obs),
                       ",".join("%s=%d" % kv for kv in sorted(counts.items()))))

cmd = sys.argv[1]
if cmd == "serve":
    serve(sys.argv[3:], sys.argv[2])
elif cmd == "tcp":
    tcp(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]) if len(sys.argv) > 4 else 1)
elif cmd == "udp":
    udp(sys.argv[2], int(sys.argv[3]), sys.argv[4])
elif cmd == "chisq":
    chisq(int(sys.argv[2]))
PY

# Address plan: one block of backends per check, so no check's backend state
# (ACTIVE/TERMINATING is per backend, shared by services) leaks into another.
BACKENDS=(
	tcp:198.18.1.1:8080 tcp:198.18.1.2:8080 tcp:198.18.1.3:8080 tcp:198.18.1.4:8080 # dist
	tcp:198.18.1.5:8081 tcp:198.18.1.6:8082                                         # named
	tcp:198.18.2.1:8080 tcp:198.18.2.2:8080 tcp:198.18.2.3:8080 tcp:198.18.2.4:8080 # sticky
	tcp:198.18.2.5:8080 tcp:198.18.2.6:8080 tcp:198.18.2.7:8080 tcp:198.18.2.8:8080
	tcp:198.18.3.1:8080 tcp:198.18.3.2:8080 tcp:198.18.3.3:8080 # term
	tcp:198.18.4.1:8080 tcp:198.18.4.2:8080                     # itp
	tcp:198.18.5.1:8080 tcp:198.18.5.2:8080 tcp:198.18.5.3:8080 # etp
	tcp:198.18.6.1:8001 tcp:198.18.6.1:8002                     # multi-port
	udp:198.18.7.1:5353                                         # udp
	tcp:198.18.8.1:8080                                         # update
	tcp:198.18.10.1:8080 tcp:198.18.10.2:8080                   # conflict
)

mkdir "$CG" || { not_ok make-cgroup; finish; }
ip netns add "$NS"
ip -n "$NS" link set lo up
ip -n "$NS" addr add 198.18.0.10/32 dev lo
for a in $(printf '%s\n' "${BACKENDS[@]}" | cut -d: -f2 | sort -u); do
	ip -n "$NS" addr add "$a/32" dev lo
done
ip netns exec "$NS" "$PY" "$H" serve "$TMP/backends.ready" "${BACKENDS[@]}" >>"$TMP/backends.log" 2>&1 &
PIDS+=("$!")

# Runs a command inside the node's cgroup and netns.
in_node() { bash -c 'echo $$ >"$0/cgroup.procs" && exec ip netns exec "$1" "${@:2}"' "$CG" "$NS" "$@"; }
cl() { in_node "$PY" "$H" "$@"; }
# distinct HOST PORT N: the distinct replies of N requests, space separated.
distinct() { cl tcp "$1" "$2" "$3" | sort -u | tr '\n' ' ' | sed 's/ $//'; }
# poll SECONDS CMD...: true as soon as CMD succeeds, false after SECONDS.
poll() {
	local end=$((SECONDS + $1))
	shift
	until "$@"; do
		((SECONDS >= end)) && return 1
		sleep 0.1
	done
}
# reply_matches HOST PORT REGEX: one request's reply matches.
reply_matches() { [[ $(cl tcp "$1" "$2" 1) =~ $3 ]]; }

# in_agent_ns CMD...: where the agent runs (its HC ports live there). A prefix
# array, not a function, so that $! below is the agent's own PID.
IN_AGENT_NS=()
in_agent_ns() { "${IN_AGENT_NS[@]}" "$@"; }
if [[ $DATAPLANE == bpf ]]; then
	start_control --store memory || { not_ok start-control; finish; }
	AGENT_URL=$CONTROL_URL
else
	# nsenter, not `ip netns exec`: that one remounts /sys, hiding the
	# cgroup2 mount the agent opens.
	IN_AGENT_NS=(nsenter --net=/run/netns/"$NS")
	# Locally generated packets are routed before the OUTPUT hook DNATs them,
	# so (as on any node, which has a default route) the service addresses
	# need a route. A veth, not lo: a REJECT's ICMP must reach the socket.
	ip -n "$NS" link add sl-svc0 type veth peer name sl-svc1
	ip -n "$NS" link set sl-svc0 up
	ip -n "$NS" link set sl-svc1 up
	ip -n "$NS" route add 198.18.128.0/20 dev sl-svc0
	ip -n "$NS" route add 198.18.20.0/24 dev sl-svc0
	NSPORT=$(free_port)
	start_control --store memory --listen-netns "/run/netns/$NS=127.0.0.1:$NSPORT" ||
		{ not_ok start-control; finish; }
	AGENT_URL=http://127.0.0.1:$NSPORT
fi
U=$CONTROL_URL
MPORT=$(free_port)
"${IN_AGENT_NS[@]}" "$BIN/sluice-agent" --node-name "$NODE" --server "$AGENT_URL" --bpffs "$BPFFS" \
	--cgroup-root "$CG" --dataplane "$DATAPLANE" --metrics-listen "127.0.0.1:$MPORT" \
	--hc-bind 127.0.0.1 --log-level info >>"$TMP/agent.log" 2>&1 &
AGENT_PID=$!
PIDS+=("$AGENT_PID")

# api METHOD PATH [BODY]: prints the HTTP status, body in $TMP/api.out.
api() {
	curl -s -o "$TMP/api.out" -w '%{http_code}' -X "$1" -H 'Content-Type: application/json' \
		"$U$2" ${3:+-d "$3"}
}
SVCS=/api/v1/namespaces/default/services
SLICES=/apis/discovery.k8s.io/v1/namespaces/default/endpointslices
# create NAME PATH BODY: POST, reported only when it fails (setup, not a check).
create() {
	local code
	code=$(api POST "$2" "$3")
	[[ $code == 201 ]] || not_ok "create-$1" "HTTP $code: $(head -c 400 "$TMP/api.out")"
}
# svc NAME SPEC_JSON
svc() { create "svc-$1" "$SVCS" "{\"metadata\":{\"name\":\"$1\"},\"spec\":$2}"; }
# slice NAME SERVICE PORTS_JSON ENDPOINTS_JSON: create or replace.
slice() {
	local body code
	body="{\"apiVersion\":\"discovery.k8s.io/v1\",\"kind\":\"EndpointSlice\",\"metadata\":{\"name\":\"$1\",\"namespace\":\"default\",\"labels\":{\"kubernetes.io/service-name\":\"$2\"}},\"addressType\":\"IPv4\",\"ports\":$3,\"endpoints\":$4}"
	if [[ $(api GET "$SLICES/$1") == 200 ]]; then
		code=$(api PUT "$SLICES/$1" "$body")
		[[ $code == 200 ]] || not_ok "replace-slice-$1" "HTTP $code: $(head -c 400 "$TMP/api.out")"
	else
		create "slice-$1" "$SLICES" "$body"
	fi
}
# ep ADDR NODE [READY SERVING TERMINATING]
ep() {
	local c="\"ready\":${3:-true}"
	[[ -n ${4:-} ]] && c+=",\"serving\":$4,\"terminating\":$5"
	echo "{\"addresses\":[\"$1\"],\"conditions\":{$c},\"nodeName\":\"$2\"}"
}
port() { echo "{\"name\":\"${1}\",\"port\":$2,\"protocol\":\"${3:-TCP}\"}"; }
# edit PATH JQ_FILTER: read-modify-write of an object (PUT), prints the status.
edit() {
	api GET "$1" >/dev/null
	api PUT "$1" "$(jq -c "$2" "$TMP/api.out")"
}

create node-a /api/v1/nodes '{"metadata":{"name":"node-a"},"status":{"addresses":[{"type":"InternalIP","address":"198.18.0.10"}]}}'
create node-b /api/v1/nodes '{"metadata":{"name":"node-b"},"status":{"addresses":[{"type":"InternalIP","address":"198.18.0.11"}]}}'

# Every object up front: one sync programs them all, then each check only
# changes its own.
SEL='"selector":{"app":"x"}'
svc dist "{\"clusterIP\":\"198.18.128.12\",$SEL,\"ports\":[{\"name\":\"http\",\"port\":80,\"targetPort\":8080}]}"
slice dist-1 dist "[$(port http 8080)]" \
	"[$(ep 198.18.1.1 node-a),$(ep 198.18.1.2 node-a),$(ep 198.18.1.3 node-b),$(ep 198.18.1.4 node-b)]"

svc named "{\"clusterIP\":\"198.18.128.2\",$SEL,\"ports\":[{\"name\":\"http\",\"port\":80,\"targetPort\":\"http\"}]}"
slice named-a named "[$(port http 8081)]" "[$(ep 198.18.1.5 node-a)]"
slice named-b named "[$(port http 8082)]" "[$(ep 198.18.1.6 node-b)]"

svc sticky "{\"clusterIP\":\"198.18.128.3\",$SEL,\"sessionAffinity\":\"ClientIP\",\"sessionAffinityConfig\":{\"clientIP\":{\"timeoutSeconds\":2}},\"ports\":[{\"name\":\"http\",\"port\":80,\"targetPort\":8080}]}"
STICKY_EPS=$(for i in 1 2 3 4 5 6 7 8; do ep "198.18.2.$i" node-a; done | paste -sd,)
slice sticky-1 sticky "[$(port http 8080)]" "[$STICKY_EPS]"

# term: one ready, one serving+terminating, one terminating and not serving.
svc term "{\"clusterIP\":\"198.18.128.4\",$SEL,\"ports\":[{\"name\":\"http\",\"port\":80,\"targetPort\":8080}]}"
slice term-1 term "[$(port http 8080)]" \
	"[$(ep 198.18.3.1 node-a),$(ep 198.18.3.2 node-a false true true),$(ep 198.18.3.3 node-a false false true)]"

svc itp "{\"clusterIP\":\"198.18.128.5\",$SEL,\"internalTrafficPolicy\":\"Local\",\"ports\":[{\"name\":\"http\",\"port\":80,\"targetPort\":8080}]}"
slice itp-1 itp "[$(port http 8080)]" "[$(ep 198.18.4.1 node-a),$(ep 198.18.4.2 node-b)]"

svc etp "{\"type\":\"LoadBalancer\",\"clusterIP\":\"198.18.128.6\",$SEL,\"externalTrafficPolicy\":\"Local\",\"ports\":[{\"name\":\"http\",\"port\":80,\"targetPort\":8080}]}"
slice etp-1 etp "[$(port http 8080)]" "[$(ep 198.18.5.1 node-a),$(ep 198.18.5.2 node-b)]"

svc mp "{\"clusterIP\":\"198.18.128.7\",$SEL,\"ports\":[{\"name\":\"a\",\"port\":80,\"targetPort\":8001},{\"name\":\"b\",\"port\":81,\"targetPort\":8002}]}"
slice mp-1 mp "[$(port a 8001),$(port b 8002)]" "[$(ep 198.18.6.1 node-a)]"

svc dns "{\"clusterIP\":\"198.18.128.8\",$SEL,\"ports\":[{\"name\":\"dns\",\"port\":53,\"targetPort\":5353,\"protocol\":\"UDP\"}]}"
slice dns-1 dns "[$(port dns 5353 UDP)]" "[$(ep 198.18.7.1 node-a)]"

svc upd "{\"clusterIP\":\"198.18.128.9\",$SEL,\"ports\":[{\"name\":\"http\",\"port\":80,\"targetPort\":8080}]}"
slice upd-1 upd "[$(port http 8080)]" "[$(ep 198.18.8.1 node-a)]"

# Nothing may be programmed for these two: distinctive ports to look for.
svc hl "{\"clusterIP\":\"None\",$SEL,\"ports\":[{\"name\":\"http\",\"port\":5555,\"targetPort\":8080}]}"
slice hl-1 hl "[$(port http 8080)]" "[$(ep 198.18.9.1 node-a)]"
svc en '{"type":"ExternalName","externalName":"db.example.test","ports":[{"name":"http","port":6666}]}'

# Two services claim 198.18.0.10:9090 (a node address, so the externalIP is
# programmed); dup-a sorts first and keeps it.
svc dup-a "{\"clusterIP\":\"198.18.128.10\",$SEL,\"externalIPs\":[\"198.18.0.10\"],\"ports\":[{\"name\":\"http\",\"port\":9090,\"targetPort\":8080}]}"
slice dup-a-1 dup-a "[$(port http 8080)]" "[$(ep 198.18.10.1 node-a)]"
svc dup-b "{\"clusterIP\":\"198.18.128.11\",$SEL,\"externalIPs\":[\"198.18.0.10\"],\"ports\":[{\"name\":\"http\",\"port\":9090,\"targetPort\":8080}]}"
slice dup-b-1 dup-b "[$(port http 8080)]" "[$(ep 198.18.10.2 node-a)]"

poll 10 test -e "$TMP/backends.ready" || not_ok backends-started "$(cat "$TMP/backends.log")"
# dup-b-1 was written last: once it is served, the first full sync is in.
poll 15 reply_matches 198.18.128.11 9090 '^198\.18\.10\.2:8080$' ||
	not_ok first-sync "$(tail -20 "$TMP/agent.log")"

# --- distribution: 1,000 requests over 4 backends, chi-square at p = 0.001 ---
# 3 degrees of freedom: the 0.999 quantile is 16.266.
read -r chi counts < <(cl tcp 198.18.128.12 80 1000 | "$PY" "$H" chisq 4)
if [[ $counts =~ ^198\.18\.1\.1:8080=[0-9]+,198\.18\.1\.2:8080=[0-9]+,198\.18\.1\.3:8080=[0-9]+,198\.18\.1\.4:8080=[0-9]+$ ]] &&
	awk -v c="$chi" 'BEGIN { exit !(c < 16.266) }'; then
	ok distribution-chi-square
else
	not_ok distribution-chi-square "chi2=$chi (limit 16.266) counts: $counts"
fi

# --- targetPort by name: each slice's own port number ---
expect_eq named-target-port-per-slice "$(distinct 198.18.128.2 80 30)" "198.18.1.5:8081 198.18.1.6:8082"

# --- sessionAffinity ClientIP (timeoutSeconds 2) ---
first=$(cl tcp 198.18.128.3 80 30 | sort -u)
expect_match affinity-30-requests-one-backend "$first" '^198\.18\.2\.[1-8]:8080$'
# Within the timeout it sticks; after 2 s idle the next pick is free again: 8
# backends, so 5 tries all landing on the same one by chance is 1 in 4096.
moved=
for _ in 1 2 3 4 5; do
	sleep 2.3
	now=$(cl tcp 198.18.128.3 80 1)
	[[ $now != "$first" ]] && { moved=$now; break; }
done
expect_match affinity-expires-after-timeout "${moved:-still $first}" '^198\.18\.2\.[1-8]:8080$'
# Removing the affine backend (still listening) moves the client, and the new
# pick is sticky again.
aff=$(cl tcp 198.18.128.3 80 1)
slice sticky-1 sticky "[$(port http 8080)]" "[$(for i in 1 2 3 4 5 6 7 8; do
	[[ $aff == "198.18.2.$i:8080" ]] || ep "198.18.2.$i" node-a
done | paste -sd,)]"
not_aff() {
	local r
	r=$(cl tcp 198.18.128.3 80 1)
	[[ $r =~ ^198\.18\.2\.[1-8]:8080$ && $r != "$aff" ]]
}
poll 5 not_aff
after=$(cl tcp 198.18.128.3 80 20 | sort -u)
if [[ $after =~ ^198\.18\.2\.[1-8]:8080$ && $after != "$aff" ]]; then
	ok affinity-removed-backend-moves-client
else
	not_ok affinity-removed-backend-moves-client "removed $aff; then saw: $(echo "$after" | tr '\n' ' ')"
fi

# --- terminating endpoints (KEP-1669) ---
expect_eq terminating-unused-while-ready-exists "$(distinct 198.18.128.4 80 40)" "198.18.3.1:8080"
slice term-1 term "[$(port http 8080)]" \
	"[$(ep 198.18.3.2 node-a false true true),$(ep 198.18.3.3 node-a false false true)]"
poll 5 reply_matches 198.18.128.4 80 '^198\.18\.3\.2:8080$'
expect_eq terminating-serving-fallback-only "$(distinct 198.18.128.4 80 30)" "198.18.3.2:8080"
slice term-1 term "[$(port http 8080)]" "[$(ep 198.18.3.3 node-a false false true)]"
poll 5 reply_matches 198.18.128.4 80 '^ERR'
expect_eq terminating-not-serving-never "$(distinct 198.18.128.4 80 10)" "ERR ECONNREFUSED"

# --- internalTrafficPolicy Local ---
expect_eq itp-local-only-local-endpoints "$(distinct 198.18.128.5 80 30)" "198.18.4.1:8080"
slice itp-1 itp "[$(port http 8080)]" "[$(ep 198.18.4.2 node-b)]"
poll 5 reply_matches 198.18.128.5 80 '^ERR'
if [[ $DATAPLANE == bpf ]]; then
	expect_eq itp-local-none-local-refused "$(distinct 198.18.128.5 80 10)" "ERR ECONNREFUSED"
else
	expect_eq itp-local-none-local-dropped "$(distinct 198.18.128.5 80 1)" "ERR timeout"
fi

# --- externalTrafficPolicy Local: healthCheckNodePort and the LB address ---
code=$(edit "$SVCS/etp/status" '.status.loadBalancer.ingress = [{"ip": "198.18.20.1"}]')
[[ $code == 200 ]] || not_ok etp-set-lb-status "HTTP $code: $(head -c 400 "$TMP/api.out")"
api GET "$SVCS/etp" >/dev/null
HC=$(jq -r '.spec.healthCheckNodePort // empty' "$TMP/api.out")
expect_match etp-hc-node-port-allocated "$HC" '^[0-9]+$'
hc() { in_agent_ns curl -s --max-time 2 -w ' %{http_code}' "http://127.0.0.1:$HC/"; }
hc_is() { [[ $(hc) =~ $1 ]]; }
poll 5 hc_is '"localEndpoints":1,.* 200$'
expect_match etp-hc-one-local-200 "$(hc)" '"localEndpoints":1,.* 200$'
# In-node clients of an eTP=Local frontend get every endpoint (kube-proxy's
# short circuit), not just the local ones.
poll 5 reply_matches 198.18.20.1 80 '^198\.18\.5\.[12]:8080$'
expect_eq etp-lb-ip-in-node-clients-cluster-wide "$(distinct 198.18.20.1 80 30)" "198.18.5.1:8080 198.18.5.2:8080"
slice etp-1 etp "[$(port http 8080)]" "[$(ep 198.18.5.1 node-a),$(ep 198.18.5.2 node-b),$(ep 198.18.5.3 node-a)]"
poll 5 hc_is '"localEndpoints":2,.* 200$'
expect_match etp-hc-two-local-200 "$(hc)" '"localEndpoints":2,.* 200$'
# A local endpoint that is only serving-terminating does not count.
slice etp-1 etp "[$(port http 8080)]" "[$(ep 198.18.5.2 node-b),$(ep 198.18.5.3 node-a false true true)]"
poll 5 hc_is ' 503$'
expect_match etp-hc-remote-and-terminating-503 "$(hc)" '"localEndpoints":0,.* 503$'
slice etp-1 etp "[$(port http 8080)]" "[]"
sleep 0.3
expect_match etp-hc-none-503 "$(hc)" '"localEndpoints":0,.* 503$'

# --- multi-port: each port to its own targetPort ---
expect_eq multiport-first "$(distinct 198.18.128.7 80 5)" "198.18.6.1:8001"
expect_eq multiport-second "$(distinct 198.18.128.7 81 5)" "198.18.6.1:8002"

# --- UDP: the reply comes from the VIP ---
expect_eq udp-unconnected-reply-from-vip "$(cl udp 198.18.128.8 53 unconnected)" \
	"198.18.7.1:5353 ping from 198.18.128.8:53"
expect_eq udp-connected-reply-from-vip "$(cl udp 198.18.128.8 53 connected)" \
	"198.18.7.1:5353 ping from 198.18.128.8:53 peer 198.18.128.8:53"

# --- service update: port 80 -> 81 moves the frontend ---
expect_eq update-before "$(distinct 198.18.128.9 80 3)" "198.18.8.1:8080"
code=$(edit "$SVCS/upd" '.spec.ports[0].port = 81')
[[ $code == 200 ]] || not_ok update-put "HTTP $code: $(head -c 400 "$TMP/api.out")"
poll 5 reply_matches 198.18.128.9 81 '^198\.18\.8\.1:8080$'
expect_eq update-new-port-works "$(distinct 198.18.128.9 81 5)" "198.18.8.1:8080"
if [[ $DATAPLANE == bpf ]]; then
	expect_match update-old-port-gone "$(distinct 198.18.128.9 80 3)" '^ERR E(CONNREFUSED|NETUNREACH|HOSTUNREACH)$'
else
	# No rule for it any more: the packet follows the route and goes unanswered
	# (iptables), or kube-proxy's nftables rejects unknown ports of a ClusterIP.
	expect_match update-old-port-gone "$(distinct 198.18.128.9 80 1)" '^ERR (E(CONNREFUSED|NETUNREACH|HOSTUNREACH)|timeout)$'
fi

# --- headless and ExternalName: nothing programmed ---
if [[ $DATAPLANE == bpf ]]; then
	# svc4 key ports (bpftool prints the __be16 as a host-order integer).
	dump=$(bpftool -j map dump pinned "$BPFFS/sluice/$NODE/sl_svc4_v1" 2>&1)
	dump_ports=$(echo "$dump" | jq -r '.[].formatted.key.port' 2>/dev/null | sort -un | tr '\n' ' ')
	be16() { echo $((($1 >> 8) | (($1 & 255) << 8))); }
else
	# Every port number the rules mention as a destination port.
	if [[ $DATAPLANE == iptables ]]; then
		dump=$(ip netns exec "$NS" iptables-save 2>&1)
		dump_ports=$(grep -oE -- '--dport [0-9]+' <<<"$dump" | awk '{ print $2 }')
	else
		dump=$(ip netns exec "$NS" nft list table ip kube-proxy 2>&1)
		dump_ports=$(grep -oE '\. (tcp|udp|sctp) \. [0-9]+' <<<"$dump" | awk '{ print $4 }')
	fi
	dump_ports=$(sort -un <<<"$dump_ports" | tr '\n' ' ')
	be16() { echo "$1"; }
	expect_match legacy-rules-mention-cluster-ip "$dump" '198\.18\.128\.12'
fi
# The checks below can only pass if the dump was read and holds the services above.
expect_match dump-readable " $dump_ports" " $(be16 81) "
[[ " $dump_ports" != *" $(be16 5555) "* ]] && ok headless-not-programmed ||
	not_ok headless-not-programmed "svc4 ports: $dump_ports"
[[ " $dump_ports" != *" $(be16 6666) "* ]] && ok externalname-not-programmed ||
	not_ok externalname-not-programmed "svc4 ports: $dump_ports"

# --- a frontend the datapath cannot express: Warning Event, the rest works ---
ev() { api GET "/api/v1/namespaces/default/events?fieldSelector=involvedObject.name=$1" >/dev/null; }
ev_conflict() { ev dup-b && [[ $(jq -r '.items[] | "\(.type) \(.reason)"' "$TMP/api.out") == *"Warning FrontendConflict"* ]]; }
poll 5 ev_conflict
expect_match conflict-warning-event-on-loser "$(jq -c '[.items[] | {type, reason, message}]' "$TMP/api.out")" \
	'"type":"Warning","reason":"FrontendConflict"'
ev dup-a
expect_eq conflict-no-event-on-winner "$(jq '.items | length' "$TMP/api.out")" 0
expect_eq conflict-older-keeps-external-ip "$(distinct 198.18.0.10 9090 10)" "198.18.10.1:8080"
expect_eq conflict-loser-cluster-ip-works "$(distinct 198.18.128.11 9090 5)" "198.18.10.2:8080"
expect_eq conflict-others-unaffected "$(distinct 198.18.128.7 81 3)" "198.18.6.1:8002"

kill "$AGENT_PID"
wait "$AGENT_PID" 2>/dev/null
AGENT_PID=
grep -q 'AddressSanitizer\|runtime error' "$TMP/agent.log" &&
	not_ok agent-log-clean "$(grep -m3 -A5 'AddressSanitizer\|runtime error' "$TMP/agent.log")" || ok agent-log-clean
finish
