#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Cluster DNS in the lab (issue 5 acceptance): `sluicectl lab up` deploys
# kube-system/kube-dns (ClusterIP 198.18.128.10) with a Deployment of two
# sluice-dns pods spread by the scheduler, and an upstream knotd in L-ext;
# every query here comes from pod shop/client on the node without a DNS pod,
# so it crosses nodes through the ClusterIP.
#
#  L-n1: web-1, db-0     L-n2: web-2, db-1     kube-dns-*: on two of n1..n3
#  the third node: client (dig, getent, python through its resolv.conf)
#  L-ext 198.18.0.250: knotd serving example.test (the only upstream)
#
# Objects in namespace shop: web (ClusterIP, ports http/80 TCP and echo/7/UDP),
# db (headless, pods with hostname+subdomain), anon (headless, no hostnames),
# empty (headless, no ready endpoint), big (headless, 60 endpoints from a
# hand-written EndpointSlice: truncation), ext (ExternalName www.example.test).
# Runs in a private mount namespace like lab.sh.
if [[ -z ${SLUICE_IN_MNTNS:-} ]]; then
	exec env SLUICE_IN_MNTNS=1 unshare --mount --propagation private bash "$0" "$@"
fi
source "$(dirname "$0")/lib.sh"

command -v dig >/dev/null || { echo "not ok - $SUITE/dig-present (apt install bind9-dnsutils)"; exit 1; }
command -v knotd >/dev/null || { echo "not ok - $SUITE/knotd-present (apt install knot)"; exit 1; }

L=ld$$
LAB=(env SLUICE_LAB_BIN="$BIN" bash "$ROOT/tools/lab/lab.sh")
S=/run/sluice-lab/$L
Z=cluster.local

lab_cleanup() {
	LAB_QUIET=1 LAB_STOP_TIMEOUT=2 "${LAB[@]}" down --name "$L" >/dev/null 2>&1
	cleanup
}
trap lab_cleanup EXIT

in_lab() { "${LAB[@]}" exec --name "$L" "$@"; }
until_ok() {
	local t=$1 i
	shift
	for ((i = 0; i < t * 4; i++)); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.25
	done
	"$@" >/dev/null 2>&1
}

if "${LAB[@]}" up --name "$L" --nodes 3 >"$TMP/up.out" 2>&1; then ok lab-up-with-dns; else
	not_ok lab-up-with-dns "$(tail -8 "$TMP/up.out")"
	finish
fi
export KUBECONFIG=$S/kubeconfig

# --- the addon as API objects --------------------------------------------------------

expect_eq kube-dns-service "$(kc -n kube-system get svc kube-dns -o jsonpath='{.spec.clusterIP} {.spec.selector.k8s-app} {range .spec.ports[*]}{.name}/{.port}/{.protocol} {end}')" \
	"198.18.128.10 kube-dns dns/53/UDP dns-tcp/53/TCP metrics/9153/TCP "
expect_eq kube-dns-deployment "$(kc -n kube-system get deploy kube-dns -o jsonpath='{.spec.replicas}/{.status.readyReplicas}')" 2/2
# "name node" of each kube-dns pod, by label (the ReplicaSet names them).
DNSP=$(kc -n kube-system get pods -l k8s-app=kube-dns -o jsonpath='{range .items[*]}{.metadata.name} {.spec.nodeName} {.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' | sort)
read -r DNS1 DNS1_NODE _ <<<"$(sed -n 1p <<<"$DNSP")"
read -r DNS2 DNS2_NODE _ <<<"$(sed -n 2p <<<"$DNSP")"
expect_eq kube-dns-pods-ready "$(awk '{print $3}' <<<"$DNSP" | tr '\n' ' ')" "True True "
if [[ -n $DNS1_NODE && $DNS1_NODE != "$DNS2_NODE" ]]; then ok kube-dns-pods-spread; else
	not_ok kube-dns-pods-spread "$DNSP"
fi
expect_match kube-dns-owned-by-replicaset "$(kc -n kube-system get pod "$DNS1" -o jsonpath='{.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].name}')" "^ReplicaSet/kube-dns-"
expect_match kube-dns-probe "$(kc -n kube-system get pod "$DNS1" -o jsonpath='{.spec.containers[0].readinessProbe.httpGet.path}:{.spec.containers[0].readinessProbe.httpGet.port}')" "^/ready:9153$"
# The client goes where no DNS pod runs.
CLIENT_NODE=n3
for n in n1 n2 n3; do
	[[ $n != "$DNS1_NODE" && $n != "$DNS2_NODE" ]] && CLIENT_NODE=$n
done
expect_match upstream-recorded "$(cat "$S/pids/dns-upstream.pid" 2>&1)" '^[0-9]+ [0-9]+$'

# --- workload ----------------------------------------------------------------------------

pod() { # name node app [hostname subdomain]
	cat <<Y
apiVersion: v1
kind: Pod
metadata: {name: $1, namespace: shop, labels: {app: $3}}
spec:
  nodeName: $2
  terminationGracePeriodSeconds: 2
  ${4:+hostname: $4}
  ${5:+subdomain: $5}
  containers:
  - name: echo
    image: sluice/echo-server
    command: ["$BIN/echo-server", "--name", "$1"]
    ports: [{name: http, containerPort: 8080}]
    readinessProbe:
      httpGet: {path: /ready, port: 8080}
      periodSeconds: 1
---
Y
}
{
	pod web-1 n1 web
	pod web-2 n2 web
	pod db-0 n1 db db-0 db
	pod db-1 n2 db db-1 db
	pod client "$CLIENT_NODE" client
	cat <<'Y'
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: 8080, protocol: TCP}
  - {name: echo, port: 7, targetPort: 7, protocol: UDP}
---
apiVersion: v1
kind: Service
metadata: {name: db, namespace: shop}
spec:
  clusterIP: None
  selector: {app: db}
  ports: [{name: pg, port: 5432, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: anon, namespace: shop}
spec:
  clusterIP: None
  selector: {app: web}
  ports: [{name: http, port: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: empty, namespace: shop}
spec:
  clusterIP: None
  selector: {app: nothing-runs-this}
  ports: [{port: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: big, namespace: shop}
spec:
  clusterIP: None
  ports: [{name: http, port: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: ext, namespace: shop}
spec:
  type: ExternalName
  externalName: www.example.test
Y
	# 60 endpoints: A answers of ~1 KB, more than a 512-byte UDP reply holds.
	printf '%s\n' '---' 'apiVersion: discovery.k8s.io/v1' 'kind: EndpointSlice' \
		'metadata: {name: big-1, namespace: shop, labels: {kubernetes.io/service-name: big}}' \
		'addressType: IPv4' 'ports: [{name: http, port: 80, protocol: TCP}]' 'endpoints:'
	for i in $(seq 1 60); do echo "- {addresses: [198.18.120.$i], conditions: {ready: true}}"; done
} >"$TMP/shop.yaml"
kc create namespace shop >/dev/null 2>&1
if kc apply --validate=false -f "$TMP/shop.yaml" >"$TMP/apply.out" 2>&1; then ok apply-workload; else
	not_ok apply-workload "$(cat "$TMP/apply.out")"
fi
pod_ready() {
	[[ $(kc -n shop get pod "$1" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}') == True ]]
}
missing=
for p in web-1 web-2 db-0 db-1 client; do
	until_ok 60 pod_ready "$p" || { missing+=" $p"; }
done
[[ -z $missing ]] && ok workload-ready || not_ok workload-ready "pods not Ready after 60s:$missing" \
	"$(kc -n shop get pods -o wide 2>&1)"
ip_of() { kc -n shop get pod "$1" -o jsonpath='{.status.podIP}'; }
W1=$(ip_of web-1) W2=$(ip_of web-2) D0=$(ip_of db-0) D1=$(ip_of db-1) CL=$(ip_of client)
VIP=$(kc -n shop get svc web -o jsonpath='{.spec.clusterIP}')
sorted() { tr ' ' '\n' | sed '/^$/d' | sort | tr '\n' ' '; }
# Headless answers follow the endpoints: wait until both db pods are in.
db_eps() {
	[[ $(kc -n shop get endpointslices -l kubernetes.io/service-name=db \
		-o jsonpath='{range .items[*].endpoints[*]}{.hostname}={.conditions.ready} {end}' | sorted) == \
		"db-0=true db-1=true " ]]
}
until_ok 15 db_eps || not_ok db-endpoints "$(kc -n shop get endpointslices -o yaml 2>&1 | head -40)"

# --- queries from shop/client on the node without DNS pods (its resolv.conf names 198.18.128.10) -------------------

NL=$'\n' # expect_match's regex sees the whole dig output: lines start after NL
# q ARGS...: dig in the client pod through its resolv.conf.
q() { in_lab shop/client -- dig +time=2 +tries=2 "$@" 2>&1; }
qs() { q +short "$@" | sorted; }
# field NAME TYPE: the status of a query.
status() { q "$@" | sed -n 's/.*status: \([A-Z]*\),.*/\1/p'; }

expect_eq pod-resolv-conf "$(in_lab shop/client -- cat /etc/resolv.conf | tr '\n' ' ')" \
	"nameserver 198.18.128.10 search shop.svc.$Z svc.$Z $Z options ndots:5 "
out=$(q web.shop.svc.$Z A)
expect_match dig-server-is-kube-dns "$out" "SERVER: 198\.18\.128\.10#53"
expect_match clusterip-a "$out" "${NL}web\.shop\.svc\.$Z\.[[:space:]]+30[[:space:]]+IN[[:space:]]+A[[:space:]]+${VIP//./\\.}${NL}"
expect_match clusterip-authoritative "$out" "flags: qr aa"
expect_eq clusterip-srv-tcp "$(qs _http._tcp.web.shop.svc.$Z SRV)" "0 100 80 web.shop.svc.$Z. "
expect_eq clusterip-srv-udp "$(qs _echo._udp.web.shop.svc.$Z SRV)" "0 100 7 web.shop.svc.$Z. "
expect_eq multiport-srv-wrong-proto "$(status _http._udp.web.shop.svc.$Z SRV)" NXDOMAIN
expect_eq clusterip-ptr "$(qs -x "$VIP")" "web.shop.svc.$Z. "
expect_eq headless-hostnames-a "$(qs db.shop.svc.$Z A)" "$(echo "$D0 $D1" | sorted)"
expect_eq headless-hostname-record "$(qs db-0.db.shop.svc.$Z A)" "$D0 "
expect_eq headless-srv "$(qs _pg._tcp.db.shop.svc.$Z SRV | tr ' ' '\n' | grep '^db-' | sorted)" \
	"db-0.db.shop.svc.$Z. db-1.db.shop.svc.$Z. "
expect_eq headless-ptr "$(qs -x "$D1")" "db-1.db.shop.svc.$Z. "
expect_eq headless-no-hostnames-a "$(qs anon.shop.svc.$Z A)" "$(echo "$W1 $W2" | sorted)"
expect_eq headless-no-hostname-dashed "$(qs "${W2//./-}.anon.shop.svc.$Z" A)" "$W2 "
expect_eq headless-zero-ready-nxdomain "$(status empty.shop.svc.$Z A)" NXDOMAIN
out=$(q ext.shop.svc.$Z A +noall +answer)
expect_match externalname-cname "$out" "ext\.shop\.svc\.$Z\.[[:space:]]+[0-9]+[[:space:]]+IN[[:space:]]+CNAME[[:space:]]+www\.example\.test\."
expect_match externalname-target-via-upstream "$out" "www\.example\.test\.[[:space:]]+[0-9]+[[:space:]]+IN[[:space:]]+A[[:space:]]+198\.18\.0\.250"
expect_eq pod-a-record "$(qs "${CL//./-}.shop.pod.$Z" A)" "$CL "
out=$(q nosuch.shop.svc.$Z A)
expect_match negative-nxdomain "$out" "status: NXDOMAIN"
expect_match negative-soa "$out" "AUTHORITY: 1"
expect_match negative-soa-record "$out" "${NL}$Z\.[[:space:]]+[0-9]+[[:space:]]+IN[[:space:]]+SOA[[:space:]]"
out=$(q web.shop.svc.$Z AAAA)
expect_match nodata-noerror "$out" "status: NOERROR.*ANSWER: 0"
expect_match nodata-soa "$out" "IN[[:space:]]+SOA[[:space:]]"
out=$(q +tcp web.shop.svc.$Z A)
expect_match tcp-answer "$out" "IN[[:space:]]+A[[:space:]]+${VIP//./\\.}${NL}"
expect_match tcp-transport "$out" "\(TCP\)"
out=$(q +noedns +ignore big.shop.svc.$Z A)
expect_match truncation-tc-over-udp "$out" "flags: qr aa tc"
out=$(q +noedns big.shop.svc.$Z A)
expect_match truncation-tcp-retry "$out" "Truncated, retrying in TCP mode"
expect_eq truncation-tcp-full-answer "$(grep -c 'IN[[:space:]]*A[[:space:]]*198\.18\.120\.' <<<"$out")" 60
expect_match case-preserved "$(q WeB.ShOp.SvC.ClUsTeR.LoCaL A +noall +answer)" \
	"^WeB\.ShOp\.SvC\.ClUsTeR\.LoCaL\.[[:space:]]+[0-9]+[[:space:]]+IN[[:space:]]+A[[:space:]]+${VIP//./\\.}$"

# The pod's own resolver: short names through the search path.
expect_match getent-short-name "$(in_lab shop/client -- getent hosts web 2>&1)" "^${VIP//./\\.}[[:space:]]+web\.shop\.svc\.$Z"
expect_eq getent-other-namespace "$(in_lab shop/client -- getent hosts kubernetes.default 2>&1 | awk '{print $1}')" \
	198.18.128.1
expect_eq python-gethostbyname "$(in_lab shop/client -- /usr/bin/python3 -c \
	'import socket; print(socket.gethostbyname("db-1.db"))' 2>&1)" "$D1"
expect_eq python-external-name "$(in_lab shop/client -- /usr/bin/python3 -c \
	'import socket; print(socket.gethostbyname("www.example.test"))' 2>&1)" 198.18.0.250

# A new Service resolves shortly after it is created (loose bound; the
# benchmark measures it exactly).
kc -n shop create service clusterip fresh --tcp=80:8080 >/dev/null 2>&1
FRESH=$(kc -n shop get svc fresh -o jsonpath='{.spec.clusterIP}' 2>/dev/null)
t0=$(date +%s%N)
fresh_ok() { [[ -n $FRESH && $(qs fresh.shop.svc.$Z A) == "$FRESH " ]]; }
if until_ok 5 fresh_ok; then
	ok new-service-resolves
	echo "# fresh.shop resolved from $CLIENT_NODE $((($(date +%s%N) - t0) / 1000000)) ms after create returned (includes lab exec)"
else
	not_ok new-service-resolves "fresh ($FRESH) gives '$(qs fresh.shop.svc.$Z A)' after 5 s"
fi

# --- forwarding to the upstream in L-ext, cache hits in the DNS pods' metrics --------------

dns_ip() { kc -n kube-system get pod "$1" -o jsonpath='{.status.podIP}'; }
# Cache hits summed over the kube-dns pods: the ClusterIP spreads queries over both.
cache_hits() {
	local p ip n=0 h
	for p in "$@"; do
		ip=$(dns_ip "$p")
		h=$(in_lab shop/client -- curl -s --max-time 2 "http://$ip:9153/metrics" |
			sed -n 's/^sluice_dns_cache_hits_total //p')
		[[ $h =~ ^[0-9]+$ ]] || { echo "no-metrics-from-$p"; return; }
		n=$((n + h))
	done
	echo "$n"
}
expect_eq forward-upstream "$(qs www.example.test A)" "198.18.0.250 "
expect_eq forward-upstream-txt "$(q +short www.example.test TXT)" "\"served by knotd in $L-ext\""
expect_eq forward-upstream-nxdomain "$(status nope.example.test A)" NXDOMAIN
h0=$(cache_hits "$DNS1" "$DNS2")
for _ in 1 2 3 4 5 6; do q +short ext.example.test A >/dev/null; done
h1=$(cache_hits "$DNS1" "$DNS2")
# Six queries over two caches: at most two misses.
if [[ $h0 =~ ^[0-9]+$ && $h1 =~ ^[0-9]+$ ]] && ((h1 - h0 >= 4)); then ok forward-cache-hits-metric; else
	not_ok forward-cache-hits-metric "sluice_dns_cache_hits_total over both pods: before $h0 after $h1 (6 queries)"
fi
expect_match upstream-up-metric "$(in_lab shop/client -- curl -s --max-time 2 "http://$(dns_ip "$DNS2"):9153/metrics")" \
	'sluice_dns_upstream_up\{upstream="198\.18\.0\.250:53"\} 1'

# sluice-dns is the build under test (a sanitizer build in tests/run.sh):
# a report in a DNS pod's log is a failure.
expect_eq dns-pods-no-sanitizer-reports "$(grep -l -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' \
	"$S"/n[123]/pods/*/sluice-dns.log 2>/dev/null)" ""

# --- one DNS pod goes away: the other keeps answering -------------------------------------

# The Deployment replaces the deleted pod; until then (and after) the
# remaining one answers, and the deleted one's address leaves the endpoints.
D1IP=$(dns_ip "$DNS1") D2IP=$(dns_ip "$DNS2")
kc -n kube-system delete pod "$DNS1" --wait=false >/dev/null 2>&1
dns_eps() {
	local e
	e=" $(kc -n kube-system get endpointslices -l kubernetes.io/service-name=kube-dns \
		-o jsonpath='{range .items[*].endpoints[*]}{.addresses[0]}={.conditions.ready} {end}')"
	[[ $e == *" $D2IP=true "* && $e != *" $D1IP="* ]]
}
until_ok 20 dns_eps || not_ok kube-dns-endpoints-after-delete "$(kc -n kube-system get endpointslices \
	-l kubernetes.io/service-name=kube-dns -o jsonpath='{range .items[*].endpoints[*]}{.addresses[0]}={.conditions.ready} {end}')"
fails=0
for i in $(seq 1 10); do
	[[ $(qs web.shop.svc.$Z A) == "$VIP " ]] || fails=$((fails + 1))
	[[ $(qs +tcp db-0.db.shop.svc.$Z A) == "$D0 " ]] || fails=$((fails + 1))
done
expect_eq resolution-survives-dns-pod-delete "$fails failures of 20" "0 failures of 20"
expect_eq short-name-after-dns-pod-delete "$(in_lab shop/client -- getent hosts web 2>&1 | awk '{print $1}')" "$VIP"
expect_eq forward-after-dns-pod-delete "$(qs www.example.test A)" "198.18.0.250 "

# --- down stops the upstream -----------------------------------------------------------------

read -r upid _ <"$S/pids/dns-upstream.pid"
LAB_LOG_ARCHIVE=$TMP/logs "${LAB[@]}" down --name "$L" >"$TMP/down.out" 2>&1 && ok down || not_ok down "$(tail -5 "$TMP/down.out")"
expect_eq daemons-no-sanitizer-reports \
	"$(grep -l -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$TMP"/logs/*.log 2>/dev/null)" ""
alive=$(awk '{ sub(/.*\) /, ""); if ($1 != "Z") print $20 }' "/proc/$upid/stat" 2>/dev/null)
expect_eq down-stops-upstream "${alive:-gone}" gone

# --- up --no-dns: no addon, no upstream ----------------------------------------------------

expect_match no-dns-only-for-up "$("${LAB[@]}" down --name "$L" --no-dns 2>&1)" "--no-dns is a flag of up only"
L=ln$$ S=/run/sluice-lab/ln$$
if "${LAB[@]}" up --name "$L" --nodes 1 --no-dns >"$TMP/up2.out" 2>&1; then
	expect_eq no-dns-no-service "$(KUBECONFIG=$S/kubeconfig kc -n kube-system get svc,pods -o name 2>/dev/null)" ""
	expect_eq no-dns-no-upstream "$(ls "$S/pids")" "$(printf '%s\n' agent-n1.pid control.pid)"
else
	not_ok no-dns-up "$(tail -5 "$TMP/up2.out")"
fi
"${LAB[@]}" down --name "$L" >/dev/null 2>&1 && ok no-dns-down || not_ok no-dns-down
finish
