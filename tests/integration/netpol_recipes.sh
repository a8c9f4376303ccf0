#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The network-policy recipe suite (issue 6): every recipe of
# ahmetb/kubernetes-network-policy-recipes as a scenario in tests/netpol-recipes/, run on ONE
# 2-node lab. Each scenario creates its namespaces and echo-server pods, applies the recipe's
# YAML with kubectl, probes every allowed and denied path the recipe describes (TCP, UDP,
# HTTP, DNS against the cluster DNS) and deletes what it created, so the next starts clean.
# Helpers for the scenarios are defined here; a scenario is a bash fragment sourced below.
#
# Probes (tests/netpol-recipes/probe.py, 1.5 s) tell a policy drop ("dropped": no answer)
# from a refusal ("refused": nothing listens), an unreachable network and other errors; a
# denied probe must be "dropped", an allowed one must be answered by the pod it addressed.
#
# Runs in a private mount namespace: the lab's bpffs and /run/netns mounts exist only here.
if [[ -z ${SLUICE_IN_MNTNS:-} ]]; then
	exec env SLUICE_IN_MNTNS=1 unshare --mount --propagation private bash "$0" "$@"
fi
source "$(dirname "$0")/lib.sh"

L=nr$$
LAB=(env SLUICE_LAB_BIN="$BIN" bash "$ROOT/tools/lab/lab.sh")
S=/run/sluice-lab/$L
RECIPES=$ROOT/tests/netpol-recipes
PY=/usr/bin/python3
PROBE=$RECIPES/probe.py
DNS_IP=198.18.128.10

lab_cleanup() {
	LAB_LOG_ARCHIVE=$TMP/logs LAB_QUIET=1 LAB_STOP_TIMEOUT=2 "${LAB[@]}" down --name "$L" \
		>/dev/null 2>&1
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

if ! "${LAB[@]}" up --name "$L" --nodes 2 >"$TMP/up.out" 2>&1; then
	not_ok lab-up "$(tail -5 "$TMP/up.out")"
	finish
fi
ok lab-up
export KUBECONFIG
KUBECONFIG=$("${LAB[@]}" kubeconfig --name "$L")

node_ready() {
	[[ $(kc get node "$1" -o jsonpath='{range .status.conditions[?(@.type=="Ready")]}{.status}{end}') == True ]]
}
pod_ready() {
	[[ $(kc -n "$1" get pod "$2" -o jsonpath='{range .status.conditions[?(@.type=="Ready")]}{.status}{end}') == True ]]
}
# The cluster DNS (a Deployment of two sluice-dns pods) answers before the scenarios start.
dns_ready() {
	[[ $(kc -n kube-system get pods -o jsonpath='{range .items[*]}{range .status.conditions[?(@.type=="Ready")]}{.status}{"\n"}{end}{end}' |
		grep -c True) -ge 2 ]]
}
if until_ok 30 node_ready n1 && until_ok 10 node_ready n2 && until_ok 60 dns_ready; then
	ok lab-ready
else
	not_ok lab-ready "$(kc get nodes 2>&1; kc -n kube-system get pods 2>&1)"
	finish
fi

# --- helpers for the scenarios ------------------------------------------------------------
# The scenario's name prefixes every check: "01/deny-http".
R=""
t() { echo "$R/$1"; }

# pod NS NAME NODE 'k: v, k: v' [HTTP_PORT [TCP/UDP_PORT]]: an echo-server pod (HTTP on 80 as
# in the recipes, TCP and UDP echo on 9000), Ready once its HTTP server answers.
pod() {
	local http=${5:-80} echo=${6:-9000}
	cat <<Y
apiVersion: v1
kind: Pod
metadata: {namespace: $1, name: $2, labels: {$4}}
spec:
  nodeName: $3
  terminationGracePeriodSeconds: 1
  containers:
  - name: echo
    image: sluice/echo-server
    command: ["$BIN/echo-server", "--name", "$1/$2", "--http", "$http", "--tcp", "$echo", "--udp", "$echo"]
    ports: [{name: http, containerPort: $http}, {name: echo, containerPort: $echo}, {name: echo-udp, containerPort: $echo, protocol: UDP}]
    readinessProbe:
      httpGet: {path: /ready, port: $http}
      periodSeconds: 1
      failureThreshold: 1
---
Y
}
ns() { # ns NAME 'k: v, ...'
	printf 'apiVersion: v1\nkind: Namespace\nmetadata: {name: %s, labels: {%s}}\n---\n' "$1" "$2"
}
# apply NAME: kubectl apply of stdin (the recipe's YAML verbatim, or the scenario's pods).
apply() {
	kc apply --validate=false -f - >"$TMP/kc.out" 2>&1 && return 0
	not_ok "$(t "apply-$1")" "$(cat "$TMP/kc.out")"
	return 1
}
# ready NS/POD...: wait until every pod is Ready; one check per call.
ready() {
	local p missing="" wait_s=60
	for p in "$@"; do
		until_ok "$wait_s" pod_ready "${p%/*}" "${p#*/}" && continue
		missing+=" $p"
		wait_s=1
	done
	if [[ -z $missing ]]; then ok "$(t pods-ready)"; else
		not_ok "$(t pods-ready)" "not Ready:$missing" "$(tail -3 "$S"/logs/agent-n*.log)"
	fi
}
ip_of() { kc -n "${1%/*}" get pod "${1#*/}" -o jsonpath='{.status.podIP}'; }
# probe FROM PROTO IP PORT: run probe.py in pod (or node) FROM; prints its verdict line.
probe() {
	local out
	out=$(in_lab "$1" -- "$PY" "$PROBE" "$2" "$3" "$4" 1.5 2>&1 | tail -1)
	echo "${out:-error no output}"
}
port_of() { case $1 in http) echo 80 ;; *) echo 9000 ;; esac; }
# changed: a policy or a label was just changed. The goal is enforcement within 1 s, but on
# a loaded machine the agents may take longer: for 10 s after a change a probe that does not
# give the expected verdict is repeated (each time a new connection) before it counts as a
# failure, and a check that needed more than one probe says so. A verdict that stays wrong
# still fails; first-packet checks (late_*) never repeat.
SETTLE_UNTIL=0
ms() { echo $(($(date +%s%N) / 1000000)); }
changed() {
	sleep 0.5
	SETTLE_UNTIL=$(($(ms) + 10000))
}
# check_probe NAME REGEX CMD...: CMD prints one verdict line; it must match REGEX.
check_probe() {
	local name=$1 re=$2 out t0 now n=0
	shift 2
	t0=$(ms)
	while :; do
		out=$("$@")
		now=$(ms) n=$((n + 1))
		if [[ $out =~ $re ]] || ((now >= SETTLE_UNTIL)); then break; fi
		sleep 0.2
	done
	((n == 1)) || [[ ! $out =~ $re ]] ||
		echo "# $R/$name: as expected at probe $n, $((now - t0)) ms after the first"
	expect_match "$(t "$name")" "$out" "$re"
}
# allowed NAME FROM PROTO TO_POD [PORT]: answered by TO_POD itself.
allowed() {
	check_probe "$1" "^ok pod=$4 client=" probe "$2" "$3" "$(ip_of "$4")" "${5:-$(port_of "$3")}"
}
# denied NAME FROM PROTO TO_POD [PORT]: no answer at all (a policy drop).
denied() {
	check_probe "$1" '^dropped$' probe "$2" "$3" "$(ip_of "$4")" "${5:-$(port_of "$3")}"
}
# reach NAME FROM PROTO IP PORT REGEX: a probe to any address (a node, the external client).
reach() { check_probe "$1" "$6" probe "$2" "$3" "$4" "$5"; }
# dns_allowed / dns_denied NAME FROM udp|tcp: one query for the kubernetes Service to the
# cluster DNS (198.18.128.10).
dns_probe() { in_lab "$1" -- "$PY" "$PROBE" dns "$DNS_IP" kubernetes.default.svc.cluster.local "$2" 1.5 2>&1 | tail -1; }
# ext_dns FROM udp|tcp: one query straight to the upstream DNS (knotd on the external
# client, zone example.test), an address outside the cluster on port 53.
EXT_IP=198.18.0.250
ext_dns() { in_lab "$1" -- "$PY" "$PROBE" dns "$EXT_IP" example.test "$2" 1.5 2>&1 | tail -1; }
ext_dns_allowed() { check_probe "$1" '^ok rcode=' ext_dns "$2" "$3"; }
ext_dns_denied() { check_probe "$1" '^dropped$' ext_dns "$2" "$3"; }
dns_allowed() { check_probe "$1" '^ok rcode=0 answers=1$' dns_probe "$2" "$3"; }
dns_denied() { check_probe "$1" '^dropped$' dns_probe "$2" "$3"; }

# late_ingress NAME NS/POD NODE LABELS FROM PROTO: a pod created after the policy is isolated
# before its first packet: FROM probes it the moment the API shows its address.
late_ingress() {
	local ip="" i out
	pod "${2%/*}" "${2#*/}" "$3" "$4" | apply "$1" || return
	for ((i = 0; i < 300; i++)); do
		ip=$(ip_of "$2" 2>/dev/null)
		[[ -z $ip ]] || break
		sleep 0.1
	done
	if [[ -z $ip ]]; then
		not_ok "$(t "$1")" "$2 has no address after 30 s"
		return
	fi
	out=$(probe "$5" "$6" "$ip" "$(port_of "$6")")
	expect_eq "$(t "$1")" "$out" dropped
	# ... and it was a drop, not a server still starting: once Ready it still drops.
	until_ok 30 pod_ready "${2%/*}" "${2#*/}"
	expect_eq "$(t "$1-ready")" "$(probe "$5" "$6" "$ip" "$(port_of "$6")")" dropped
}
# late_egress NAME NS/POD NODE LABELS PROTO TO_POD EXPECT: a pod created after an egress
# policy sends its very first packet (from its container's start) to TO_POD; the verdict its
# container logged must be EXPECT (dropped, or "ok" for traffic the policy allows).
late_egress() {
	local ns=${2%/*} name=${2#*/} to uid log i
	to=$(ip_of "$6")
	apply "$1" <<Y || return
apiVersion: v1
kind: Pod
metadata: {namespace: $ns, name: $name, labels: {$4}}
spec:
  nodeName: $3
  terminationGracePeriodSeconds: 1
  containers:
  - name: first
    image: sluice/probe
    command: ["bash", "-c", "$PY $PROBE $5 $to $(port_of "$5") 1.5; exec sleep 600"]
Y
	for ((i = 0; i < 120; i++)); do
		uid=$(kc -n "$ns" get pod "$name" -o jsonpath='{.metadata.uid}' 2>/dev/null)
		log=$S/$3/pods/$uid/first.log
		[[ -n $uid && -s $log ]] && break
		sleep 0.25
	done
	expect_match "$(t "$1")" "$(head -1 "$log" 2>/dev/null)" "^$7"
}
no_pods() { [[ -z $(kc -n "$1" get pods -o name 2>/dev/null) ]]; }
ns_gone() { ! kc get namespace "$1" >/dev/null 2>&1; }
# clean NS...: delete the scenario's policies and pods (now), then its namespaces other
# than default, and wait until they are gone so the next scenario starts clean.
clean() {
	local n left
	for n in "$@"; do
		kc -n "$n" delete networkpolicy --all >/dev/null 2>&1
		kc -n "$n" delete pod --all --grace-period=0 --force >/dev/null 2>&1
	done
	for n in "$@"; do
		[[ $n == default ]] || kc delete namespace "$n" --wait=false >/dev/null 2>&1
	done
	left=""
	for n in "$@"; do
		if [[ $n == default ]]; then
			until_ok 30 no_pods default || left+=" default-pods"
		else
			until_ok 30 ns_gone "$n" || left+=" $n"
		fi
	done
	expect_eq "$(t cleaned)" "$left" ""
}

# --- the scenarios, in order (RECIPE_FILTER="08|02a": only those, a regex on the number) ----
for f in "$RECIPES"/[0-9]*.sh; do
	R=$(basename "$f" .sh)
	R=${R%%-*}
	[[ -z ${RECIPE_FILTER:-} || $R =~ ^(${RECIPE_FILTER})$ ]] || continue
	echo "# recipe $(basename "$f" .sh)"
	# shellcheck source=/dev/null
	source "$f"
done

LAB_LOG_ARCHIVE=$TMP/logs "${LAB[@]}" down --name "$L" >"$TMP/down.out" 2>&1 ||
	not_ok lab-down "$(tail -5 "$TMP/down.out")"
expect_eq daemons-no-sanitizer-reports \
	"$(grep -l -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$TMP"/logs/*.log 2>/dev/null)" ""
finish
