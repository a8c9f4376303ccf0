#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# sluicectl lab end to end: up/down leave the host exactly as before (twice,
# and after a failed up), kubectl works, the lab network is wired, lab exec
# runs where it says; then, on a cluster with pods, the acceptance checks of
# issue 4: pod-to-pod and pod-to-service across nodes, NodePort from outside
# to every node, endpoints following readiness, deletion and node failure.
#
#  host: kubectl ──127.0.0.1:P──▶ sluice-control ──(also in L-cp)
#  L-fabric br0 ── L-cp 198.18.0.2 ── L-n1 198.18.0.11 ── L-n2 198.18.0.12 ── L-ext 198.18.0.250
#    n1: pods probe, web-1 (echo-server)      n2: pod web-2 (echo-server)
#    Service web (ClusterIP 80 → 8080), web-np (NodePort → 8080), readiness GET /ready
#
# LAB_FABRIC=mesh runs it all on `lab up --fabric mesh` (nodes also on a direct link, which
# carries the pod traffic) and checks that path; the default is the bridge.
#
# A check whose feature is not in this build says what is missing and fails:
# the machine supports all of it, so nothing is skipped. Runs in a private
# mount namespace: the lab's bpffs and /run/netns mounts exist only here.
if [[ -z ${SLUICE_IN_MNTNS:-} ]]; then
	exec env SLUICE_IN_MNTNS=1 unshare --mount --propagation private bash "$0" "$@"
fi
source "$(dirname "$0")/lib.sh"

L=lt$$
FABRIC=${LAB_FABRIC:-bridge}
LAB=(env SLUICE_LAB_BIN="$BIN" bash "$ROOT/tools/lab/lab.sh")
CGROOT=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/self/mounts)
S=/run/sluice-lab/$L
GRACE=15 # --node-monitor-grace-period given to the control plane when it has one

lab_cleanup() {
	LAB_QUIET=1 LAB_STOP_TIMEOUT=2 "${LAB[@]}" down --name "$L" >/dev/null 2>&1
	[[ -n ${BADL:-} ]] && LAB_QUIET=1 "${LAB[@]}" down --name "$BADL" >/dev/null 2>&1
	cleanup
}
trap lab_cleanup EXIT

# What the lab may change on the host, in this mount namespace. Other
# engineers' namespaces and cgroups come and go meanwhile, so those lists
# are reduced to names of this lab (its prefix, its pods' UIDs). Mounts are
# private to this namespace and compared whole, except the netns mounts in
# /run/netns: when another test deletes its netns, the kernel detaches the
# copy here too (the file is unlinked), so those are filtered like the rest.
POD_UIDS=none
snapshot() {
	{
		echo "## mounts"
		awk '$2 !~ "^/run/netns/." { print $2, $3 }' /proc/self/mounts | sort
		echo "## /run/netns dir: $([[ -d /run/netns ]] && echo yes) mountpoint:" \
			"$(mountpoint -q /run/netns 2>/dev/null && echo yes)"
		# Other engineers' labs come and go there too: only this one counts.
		echo "## /run/sluice-lab/$L: $(ls -A /run/sluice-lab 2>/dev/null | grep -xF -- "$L")"
		echo "## netns, cgroups and pins of this lab"
		{
			ip netns list 2>/dev/null | awk '{ print "netns", $1 }'
			ls -A /run/netns 2>/dev/null | sed 's|^|/run/netns/|'
			awk '$2 ~ "^/run/netns/." { print "mount", $2, $3 }' /proc/self/mounts
			find "$CGROOT" -maxdepth 3 -type d 2>/dev/null
		} | grep -E -- "(^| |/)($L|sluice-lab-$L)([-/ ]|$)|$POD_UIDS" | sort
	}
}

# lab up --nodes 2 with the build under test.
lab_up() {
	LAB_CONTROL_FLAGS=$CTL_FLAGS "${LAB[@]}" up --name "$L" --nodes 2 --fabric "$FABRIC" \
		>"$TMP/up.out" 2>&1
}
lab_down() {
	LAB_LOG_ARCHIVE=$TMP/logs "${LAB[@]}" down --name "$L" >"$TMP/down.out" 2>&1
}
in_lab() { "${LAB[@]}" exec --name "$L" "$@"; }

# until_ok SECONDS CMD...: polls CMD every 0.25 s.
until_ok() {
	local t=$1 i
	shift
	for ((i = 0; i < t * 4; i++)); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.25
	done
	"$@" >/dev/null 2>&1
}

CTL_FLAGS=
"$BIN/sluice-control" --help 2>&1 | grep -q -- --node-monitor-grace-period &&
	CTL_FLAGS="--node-monitor-grace-period $GRACE"

# --- the lab itself ---------------------------------------------------------------

snapshot >"$TMP/before"
if lab_up; then ok up; else
	not_ok up "$(tail -5 "$TMP/up.out")"
	finish
fi
# shellcheck source=/dev/null
source "$S/config"
expect_match up-prints-usage "$(cat "$TMP/up.out")" "export KUBECONFIG=$S/kubeconfig"
check status "${LAB[@]}" status --name "$L"
expect_match status-daemons "$("${LAB[@]}" status --name "$L" 2>&1)" \
	"agent-n1 +running.*agent-n2 +running.*control +running"

export KUBECONFIG
KUBECONFIG=$("${LAB[@]}" kubeconfig --name "$L")
if kc get svc kubernetes -o jsonpath='{.spec.clusterIP}' >"$TMP/kc.out" 2>&1 &&
	[[ $(cat "$TMP/kc.out") == 198.18.128.1 ]]; then
	ok kubectl-host-kubeconfig
else
	not_ok kubectl-host-kubeconfig "$(cat "$TMP/kc.out")" \
		"missing: sluice-control --anonymous-loopback (kubectl sends no bearer token over plain HTTP)"
fi
expect_eq api-in-lab-with-token "$(in_lab n1 -- curl -s -o /dev/null -w '%{http_code}' \
	--max-time 3 -H "Authorization: Bearer $TOKEN" http://198.18.0.2:6443/api/v1/namespaces)" 200
expect_eq api-in-lab-without-token "$(in_lab ext -- curl -s -o /dev/null -w '%{http_code}' \
	--max-time 3 http://198.18.0.2:6443/api/v1/namespaces)" 401

for pair in "n1 198.18.0.12" "n2 198.18.0.11" "n1 198.18.0.2" "n2 198.18.0.2" "ext 198.18.0.11" \
	"ext 198.18.0.12"; do
	set -- $pair
	check "reach-$1-to-$2" in_lab "$1" -- ping -c1 -W2 "$2"
done
routes=""
for t in cp ext n1 n2; do routes+=$(in_lab "$t" -- ip -4 route show default); done
expect_eq no-default-routes "$routes" ""
expect_match exec-node-cgroup "$(in_lab n1 -- cat /proc/self/cgroup)" "0::/sluice-lab-$L/n1/lab-exec"
in_lab n2 -- sh -c 'exit 7'
expect_eq exec-exit-code $? 7
expect_match exec-node-netns "$(in_lab n2 -- ip -4 -br addr show dev eth0)" "198.18.0.12/24"
expect_match exec-bad-target "$(in_lab n9 -- true 2>&1)" "no node n9"
expect_match up-twice-refused "$("${LAB[@]}" up --name "$L" 2>&1)" "exists"
expect_match bad-name "$("${LAB[@]}" up --name 'Bad_Name' 2>&1)" "--name 'Bad_Name': expected"
expect_match bad-nodes "$("${LAB[@]}" up --name x --nodes 0 2>&1)" "--nodes '0': expected"

# --- cluster behaviour (issue 4 acceptance) -------------------------------------------

missing=""
node_state() {
	kc get node "$1" -o jsonpath='{range .status.conditions[?(@.type=="Ready")]}{.status}{end}'
}
node_ready() { [[ $(node_state "$1") == True ]]; }
if ! until_ok 30 node_ready n1 || ! until_ok 5 node_ready n2; then
	missing="nodes n1/n2 not Ready (node registration and Lease: agent --run-pods node part)"
elif [[ -z $(kc get node n1 -o jsonpath='{.spec.podCIDR}' 2>/dev/null) ]]; then
	missing="no podCIDR on node n1 (node IPAM controller, --cluster-cidr)"
fi
ok_nodes=$([[ -z $missing ]] && echo yes)
[[ -n $ok_nodes ]] && ok nodes-ready || not_ok nodes-ready "missing: $missing"

pod_yaml() { # name node
	cat <<Y
apiVersion: v1
kind: Pod
metadata: {name: $1, labels: {app: $([[ $1 == web-* ]] && echo web || echo probe)}}
spec:
  nodeName: $2
  terminationGracePeriodSeconds: 2
  containers:
  - name: echo
    image: sluice/echo-server
    command: ["$BIN/echo-server", "--name", "$1"]
    ports: [{name: http, containerPort: 8080}]
    readinessProbe:
      httpGet: {path: /ready, port: 8080}
      periodSeconds: 1
      failureThreshold: 1
---
Y
}
{
	pod_yaml web-1 n1
	pod_yaml web-2 n2
	pod_yaml probe n1
	cat <<'Y'
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}]
---
apiVersion: v1
kind: Service
metadata: {name: web-np}
spec:
  type: NodePort
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
Y
} >"$TMP/app.yaml"
if [[ -n $ok_nodes ]]; then
	kc apply --validate=false -f "$TMP/app.yaml" >"$TMP/apply.out" 2>&1 ||
		missing="kubectl apply failed: $(cat "$TMP/apply.out")"
fi
pod_ip() { kc get pod "$1" -o jsonpath='{.status.podIP}'; }
pod_ready() {
	[[ $(kc get pod "$1" -o jsonpath='{range .status.conditions[?(@.type=="Ready")]}{.status}{end}') == True ]]
}
if [[ -z $missing ]]; then
	for p in web-1 web-2 probe; do
		until_ok 60 pod_ready "$p" && continue
		missing="pod $p not Ready after 60s (agent pod runtime + sluice-cni): phase=$(kc get pod "$p" \
			-o jsonpath='{.status.phase}' 2>&1) podIP=$(pod_ip "$p" 2>&1)"
		break
	done
fi
[[ -z $missing ]] && ok pods-ready || not_ok pods-ready "missing: $missing"
W1=$(pod_ip web-1 2>/dev/null) W2=$(pod_ip web-2 2>/dev/null) PR=$(pod_ip probe 2>/dev/null)
VIP=$(kc get svc web -o jsonpath='{.spec.clusterIP}' 2>/dev/null)
NP=$(kc get svc web-np -o jsonpath='{.spec.ports[0].nodePort}' 2>/dev/null)

# e2e NAME CMD...: a check that needs pods; fails naming what is missing.
e2e() {
	local name=$1
	shift
	if [[ -n $missing ]]; then
		not_ok "$name" "missing: $missing"
		return
	fi
	"$@"
}
get() { in_lab default/probe -- curl -s --max-time 2 "$@"; }
# answers URL N: the pod names that answered N requests, sorted and unique.
answers() {
	local i
	for ((i = 0; i < $2; i++)); do get "$1" | sed -n 's/^pod=\([^ ]*\).*/\1/p'; done | sort -u |
		tr '\n' ' '
}
# Endpoint readiness of Service web as "IP=true|false ...", sorted.
eps() {
	kc get endpointslices -l kubernetes.io/service-name=web \
		-o jsonpath='{range .items[*].endpoints[*]}{.addresses[0]}={.conditions.ready}{"\n"}{end}' |
		sort | tr '\n' ' '
}
eps_are() { [[ $(eps) == "$1" ]]; }

t_pod_to_pod() {
	expect_match pod-to-pod-across-nodes "$(get "http://$W2:8080/")" "^pod=web-2 client=$PR:"
}
# --fabric mesh: n1 reaches n2's pods over their direct link, the agents deliver what
# arrives on it (their fabric program is on the link; n1 hands the packets to the link's
# peer by redirect_peer), and add-node refuses (the running agents' --devices
# cannot take a new link).
# link_packets NODE DEV rx|tx: the device's packet counter (/proc/net/dev is the netns's own;
# /sys/class/net would be the host's).
link_packets() {
	in_lab "$1" -- awk -v d="$2:" -v c="$3" '$1 == d { print c == "rx" ? $3 : $11 }' /proc/net/dev
}
t_mesh() {
	local dev tx0 rx0 tx rx
	dev=$(in_lab n1 -- ip -o route get "$W2" | grep -o 'dev [^ ]*')
	expect_eq mesh-route-over-link "$dev" "dev mesh-n2"
	tx0=$(link_packets n1 mesh-n2 tx) rx0=$(link_packets n2 mesh-n1 rx)
	get "http://$W2:8080/" >/dev/null
	tx=$(($(link_packets n1 mesh-n2 tx) - tx0)) rx=$(($(link_packets n2 mesh-n1 rx) - rx0))
	# redirect_peer hands a packet to the peer's receive path without the sender's
	# transmit: n2's mesh-n1 counts the request's packets as received, n1's mesh-n2 does
	# not count them as sent (an ARP exchange may be, hence not zero).
	if ((rx >= 4 && tx * 2 < rx)); then ok mesh-link-carries-pod-traffic-by-redirect-peer; else
		not_ok mesh-link-carries-pod-traffic-by-redirect-peer \
			"n2's mesh-n1 received $rx packets, n1's mesh-n2 sent $tx"
	fi
	expect_match mesh-add-node-refused "$("${LAB[@]}" add-node --name "$L" 2>&1)" \
		"add-node works with the bridge fabric only"
}
t_pod_to_svc() {
	until_ok 10 eps_are "$(printf '%s\n' "$W1=true" "$W2=true" | sort | tr '\n' ' ')" ||
		{ not_ok pod-to-service-across-nodes "endpoints of web: $(eps)" \
			"missing: EndpointSlice controller (control --controllers endpointslice)"; return; }
	expect_eq pod-to-service-across-nodes "$(answers "http://$VIP/" 12)" "web-1 web-2 "
}
t_nodeport() {
	local n ip
	for n in 1 2; do
		ip=198.18.0.1$n
		expect_match "nodeport-from-ext-to-n$n" \
			"$(in_lab ext -- curl -s --max-time 2 "http://$ip:$NP/")" "^pod=web-[12] client="
	done
	# From a pod of n1 to n2's NodePort: when n2 picks its own web-2 the reply goes from a
	# pod of n2 to a pod of n1 and needs the uplink's reverse NAT (tc_nodeport_egress), so
	# host routing must not hand it to the uplink's peer (sl_hr_dev_v1); when it picks
	# web-1, SNAT and FIB redirect. Every request must be answered.
	local i out got=0 by=""
	for ((i = 0; i < 12; i++)); do
		out=$(get "http://198.18.0.12:$NP/")
		[[ $out =~ ^pod=(web-[12])\ client=([0-9.]+) ]] || continue
		got=$((got + 1))
		by+=" ${BASH_REMATCH[1]}<-${BASH_REMATCH[2]}"
	done
	expect_eq nodeport-from-pod-of-other-node "$got of 12 answered" "12 of 12 answered"
	echo "# answers (backend<-client seen):$by"
	expect_match nodeport-from-pod-of-other-node-local-backend "$by" "web-2<-"
	# n2 tracked a NodePort flow of a pod client to a local backend: its pod path must now
	# look up the uplink conntrack before redirect_peer (sl_hr_npc_v1, abi/hostroute.h); the
	# answers above are the proof it did, this names the mechanism if they fail.
	expect_match nodeport-from-pod-raises-npc-mark-on-n2 \
		"$(bpftool -j map lookup pinned "$S/bpffs/sluice/n2/sl_hr_npc_v1" key 0 0 0 0 2>&1 |
			jq -r '(.formatted.value.pod_client_flows // .value) | tostring' 2>&1)" '^[1-9]|^\["0x0[1-9]'
}
t_readiness() {
	in_lab default/probe -- curl -s --max-time 2 -X POST "http://$W2:8080/ready/fail" >/dev/null
	if until_ok 10 eps_are "$(printf '%s\n' "$W1=true" "$W2=false" | sort | tr '\n' ' ')"; then
		expect_eq readiness-fail-removes-endpoint "$(answers "http://$VIP/" 8)" "web-1 "
	else
		not_ok readiness-fail-removes-endpoint "endpoints of web: $(eps)"
	fi
	in_lab default/probe -- curl -s --max-time 2 -X POST "http://$W2:8080/ready/ok" >/dev/null
	if until_ok 10 eps_are "$(printf '%s\n' "$W1=true" "$W2=true" | sort | tr '\n' ' ')"; then
		expect_eq readiness-ok-restores-endpoint "$(answers "http://$VIP/" 12)" "web-1 web-2 "
	else
		not_ok readiness-ok-restores-endpoint "endpoints of web: $(eps)"
	fi
}
t_delete() {
	kc delete pod web-1 --wait=false >/dev/null 2>&1
	# Terminating endpoints stay listed with ready=false until the pod is gone.
	if until_ok 15 eps_are "$W2=true "; then
		expect_eq pod-deletion-drains-endpoint "$(answers "http://$VIP/" 8)" "web-2 "
	else
		not_ok pod-deletion-drains-endpoint "endpoints of web: $(eps)"
	fi
}
t_node_failure() {
	local pid t0
	read -r pid _ <"$S/pids/agent-n2.pid"
	t0=$SECONDS
	kill -KILL "$pid"
	if until_ok $((GRACE + 10)) eps_are "$W2=false "; then
		ok node-failure-endpoints-not-ready
		echo "# web-2's endpoint not ready $((SECONDS - t0)) s after n2's agent was killed"
	else
		not_ok node-failure-endpoints-not-ready "after $((SECONDS - t0)) s: node n2 Ready=$(node_state n2)," \
			"endpoints of web: $(eps)" "(grace flag given: ${CTL_FLAGS:-none: control has no --node-monitor-grace-period})"
	fi
}
e2e pod-to-pod-across-nodes t_pod_to_pod
[[ $FABRIC == mesh ]] && e2e mesh t_mesh
e2e pod-to-service-across-nodes t_pod_to_svc
e2e nodeport-from-ext t_nodeport
e2e readiness-endpoint t_readiness
e2e pod-deletion-drains-endpoint t_delete
e2e node-failure-endpoints-not-ready t_node_failure

# --- down leaves the host as it was -------------------------------------------------

POD_UIDS=$(kc get pods -A -o jsonpath='{.items[*].metadata.uid}' 2>/dev/null | tr ' ' '|')
POD_UIDS=${POD_UIDS:-none}
mapfile -t recorded < <(cat "$S"/pids/*.pid 2>/dev/null)
if lab_down; then ok down; else not_ok down "$(tail -5 "$TMP/down.out")"; fi
# The daemons' logs (kept by down): a sanitizer report is a failure.
expect_eq daemons-no-sanitizer-reports \
	"$(grep -l -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$TMP"/logs/*.log 2>/dev/null)" ""
left=""
for r in "${recorded[@]}"; do
	set -- $r
	# Alive means the same process (start time) and not a zombie awaiting init.
	[[ $(awk '{ sub(/.*\) /, ""); if ($1 != "Z") print $20 }' "/proc/$1/stat" 2>/dev/null) == "$2" ]] &&
		left+=" $1"
done
expect_eq down-stops-recorded-processes "$left" ""
snapshot >"$TMP/after"
expect_eq down-host-as-before "$(diff "$TMP/before" "$TMP/after")" ""
check down-idempotent "${LAB[@]}" down --name "$L"

# A second lab with the same name comes up and goes away the same way.
if lab_up && in_lab n1 -- ping -c1 -W2 198.18.0.12 >/dev/null; then ok second-up; else
	not_ok second-up "$(tail -5 "$TMP/up.out")"
fi
lab_down
snapshot >"$TMP/after2"
expect_eq second-down-host-as-before "$(diff "$TMP/before" "$TMP/after2")" ""

# An up that fails half-way (an agent that exits at once) is removed by down.
BADL=lb$$
mkdir -p "$TMP/badbin"
for b in sluice-control sluice-cni; do ln -s "$BIN/$b" "$TMP/badbin/$b"; done
printf '#!/bin/sh\necho "test agent: exits at start to fail lab up" >&2\nexit 1\n' >"$TMP/badbin/sluice-agent"
chmod +x "$TMP/badbin/sluice-agent"
L=$BADL snapshot >"$TMP/before-bad"
out=$(SLUICE_LAB_BIN=$TMP/badbin bash "$ROOT/tools/lab/lab.sh" up --name "$BADL" --nodes 1 2>&1)
rc=$?
if ((rc != 0)) && [[ $out == *"sluice-agent n1 exited"* ]]; then ok failed-up-reports; else
	not_ok failed-up-reports "rc=$rc" "$out"
fi
SLUICE_LAB_BIN=$TMP/badbin bash "$ROOT/tools/lab/lab.sh" down --name "$BADL" >/dev/null 2>&1
L=$BADL snapshot >"$TMP/after-bad"
expect_eq failed-up-down-host-as-before "$(diff "$TMP/before-bad" "$TMP/after-bad")" ""
finish
