#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# NetworkPolicy enforced in the kernel on a 2-node lab (issue 6): echo-server pods in two
# namespaces, policies applied with kubectl through the API server, TCP (HTTP and the TCP
# echo) and UDP probes across nodes, `sluicectl flows` naming the pods of a denied flow,
# readiness probes surviving deny-all (node traffic), and the time from `kubectl apply` to
# a new connection being refused (printed, loosely measured).
#
#  L-n1 198.18.0.11: prod/web-1 (app=web, http=8080)    prod/client (app=client)
#  L-n2 198.18.0.12: prod/web-2 (app=web, http=8080)    dev/client  (app=client)
#  namespaces prod (team=prod), dev (team=dev); echo-server: HTTP 8080, TCP 9000, UDP 9000
#
# Runs in a private mount namespace: the lab's bpffs and /run/netns mounts exist only here.
if [[ -z ${SLUICE_IN_MNTNS:-} ]]; then
	exec env SLUICE_IN_MNTNS=1 unshare --mount --propagation private bash "$0" "$@"
fi
source "$(dirname "$0")/lib.sh"

L=np$$
LAB=(env SLUICE_LAB_BIN="$BIN" bash "$ROOT/tools/lab/lab.sh")
S=/run/sluice-lab/$L

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
if until_ok 30 node_ready n1 && until_ok 10 node_ready n2; then ok nodes-ready; else
	not_ok nodes-ready "$(kc get nodes 2>&1)"
	finish
fi

pod_yaml() { # ns name node app
	cat <<Y
apiVersion: v1
kind: Pod
metadata: {namespace: $1, name: $2, labels: {app: $4}}
spec:
  nodeName: $3
  terminationGracePeriodSeconds: 1
  containers:
  - name: echo
    image: sluice/echo-server
    command: ["$BIN/echo-server", "--name", "$1/$2"]
    ports: [{name: http, containerPort: 8080}, {name: echo, containerPort: 9000}]
    readinessProbe:
      httpGet: {path: /ready, port: 8080}
      periodSeconds: 1
      failureThreshold: 1
---
Y
}
{
	cat <<'Y'
apiVersion: v1
kind: Namespace
metadata: {name: prod, labels: {team: prod}}
---
apiVersion: v1
kind: Namespace
metadata: {name: dev, labels: {team: dev}}
---
Y
	pod_yaml prod web-1 n1 web
	pod_yaml prod web-2 n2 web
	pod_yaml prod client n1 client
	pod_yaml dev client n2 client
} >"$TMP/app.yaml"
kc apply --validate=false -f "$TMP/app.yaml" >"$TMP/apply.out" 2>&1 ||
	not_ok apply-app "$(cat "$TMP/apply.out")"
pod_ready() {
	[[ $(kc -n "$1" get pod "$2" -o jsonpath='{range .status.conditions[?(@.type=="Ready")]}{.status}{end}') == True ]]
}
missing="" wait_s=60
for p in prod/web-1 prod/web-2 prod/client dev/client; do
	until_ok "$wait_s" pod_ready "${p%/*}" "${p#*/}" && continue
	missing+=" $p"
	wait_s=1
done
if [[ -z $missing ]]; then ok pods-ready; else
	not_ok pods-ready "not Ready:$missing" "$(tail -5 "$S"/logs/agent-n*.log)"
	finish
fi
ip_of() { kc -n "${1%/*}" get pod "${1#*/}" -o jsonpath='{.status.podIP}'; }
W1=$(ip_of prod/web-1) W2=$(ip_of prod/web-2) PC=$(ip_of prod/client) DC=$(ip_of dev/client)
echo "# prod/web-1=$W1 prod/web-2=$W2 prod/client=$PC dev/client=$DC"

# Probes from pod FROM to address TO. Each prints the echo line ("pod=... client=...") or
# nothing; a new connection (new source port) every time.
http() { in_lab "$1" -- curl -s --max-time "${3:-2}" "http://$2:8080/" 2>/dev/null; }
tcp() { # TCP echo on 9000
	in_lab "$1" -- timeout "${3:-2}" bash -c "exec 3<>/dev/tcp/$2/9000 && echo hi >&3 && read -r l <&3 && echo \"\$l\"" 2>/dev/null
}
udp() { # bash's read takes a byte at a time, which loses the rest of a datagram: dd reads one
	in_lab "$1" -- timeout "${3:-2}" bash -c "exec 3<>/dev/udp/$2/9000 && echo hi >&3 && dd bs=1024 count=1 <&3 2>/dev/null" 2>/dev/null
}
# allowed NAME PROBE FROM TO_POD / denied NAME PROBE FROM TO_POD
allowed() {
	local out
	out=$($2 "$3" "$(ip_of "$4")")
	expect_match "$1" "$out" "^pod=$4 client="
}
denied() {
	local out
	out=$($2 "$3" "$(ip_of "$4")")
	expect_eq "$1" "$out" ""
}
apply() { kc apply --validate=false -f - >"$TMP/kc.out" 2>&1 || not_ok "apply-$1" "$(cat "$TMP/kc.out")"; }

# --- no policy: everything reaches everything ------------------------------------------
allowed open-http-dev-to-prod-cross-node http dev/client prod/web-1
allowed open-udp-prod-to-prod-cross-node udp prod/client prod/web-2
allowed open-tcp-dev-to-prod-same-node tcp dev/client prod/web-2

# BPF host routing (the agent's default): the probes above skipped the nodes' stacks, so
# the deny cases below are enforced by the redirecting programs (sl_hr_ctr_v1: 1 = into a
# pod from a pod of the node, 2 = into a pod from the fabric). Skipped when the lab runs
# the agents with LAB_AGENT_FLAGS="--host-routing kernel".
hr_pkts() { # NODE INDEX: packets over all CPUs
	bpftool -j map lookup pinned "$S/bpffs/sluice/$1/sl_hr_ctr_v1" key "$2" 0 0 0 2>/dev/null |
		python3 -c 'import json, sys
e = json.load(sys.stdin)
print(sum(int.from_bytes(bytes(int(b, 16) for b in v["value"][:8]), "little")
          if isinstance(v["value"], list) else int(v["value"]["packets"]) for v in e["values"]))'
}
hr_dev_peer() { # NODE: packets sl_hr_dev_v1 counts as sent by redirect_peer, all devices
	bpftool -j map dump pinned "$S/bpffs/sluice/$1/sl_hr_dev_v1" 2>/dev/null |
		jq '[.[] | (.formatted.values // .values)[] | .value |
			if type == "object" then .peer_packets else 0 end] | add // 0'
}
if [[ ${LAB_AGENT_FLAGS:-} != *"--host-routing kernel"* ]]; then
	hr="n1: $(hr_pkts n1 2) from the fabric; n2: $(hr_pkts n2 2) from the fabric, $(hr_pkts n2 1) same node"
	if [[ $hr =~ ^n1:\ [1-9][0-9]*\ .*n2:\ [1-9][0-9]*\ .*,\ [1-9][0-9]*\ same ]]; then
		ok host-routing-carried-the-probes
		echo "# packets delivered by redirect_peer: $hr"
	else
		not_ok host-routing-carried-the-probes "$hr"
	fi
	# The lab's uplinks are veths into L-fabric: the nodes hand cross-node packets to the
	# uplink's peer (sl_hr_dev_v1 counts them), both ways of the cross-node probes.
	peer="n1: $(hr_dev_peer n1), n2: $(hr_dev_peer n2)"
	if [[ $peer =~ ^n1:\ [1-9][0-9]*,\ n2:\ [1-9][0-9]*$ ]]; then
		ok host-routing-uplink-redirect-peer
		echo "# packets sent to the uplink's peer by redirect_peer: $peer"
	else
		not_ok host-routing-uplink-redirect-peer "$peer"
	fi
fi

# --- deny-all ingress in prod ---------------------------------------------------------
# Latency: a loop inside dev/client opens a new connection every ~10 ms (curl, 0.2 s limit)
# and prints the time its first refused one started; kubectl apply runs meanwhile.
in_lab dev/client -- bash -c "for ((i = 0; i < 3000; i++)); do t=\$(date +%s%N);
	curl -s --max-time 0.2 -o /dev/null http://$W1:8080/ || { echo \$t; exit 0; }; done;
	exit 1" >"$TMP/lat.out" 2>&1 &
lat_pid=$!
sleep 1
t0=$(date +%s%N)
apply deny-all <<'Y'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {namespace: prod, name: deny-all}
spec: {podSelector: {}}
Y
t1=$(date +%s%N)
if wait "$lat_pid" && [[ $(cat "$TMP/lat.out") =~ ^[0-9]+$ ]]; then
	tf=$(cat "$TMP/lat.out")
	ok deny-all-takes-effect
	echo "# deny-all: the first refused new connection started $(((tf - t1) / 1000000)) ms after" \
		"kubectl apply returned ($(((tf - t0) / 1000000)) ms after it began; probes every ~10 ms)"
else
	not_ok deny-all-takes-effect "connections still succeed 30 s after apply: $(cat "$TMP/lat.out")"
fi
# The agent's own measure: first change seen by its informers to maps written.
echo "# n1 agent: $(in_lab n1 -- curl -s --max-time 2 http://127.0.0.1:10249/metrics |
	grep -E '^sluice_policy_last_(apply|compile)_seconds' | tr '\n' ' ')"
denied deny-all-http-cross-node http dev/client prod/web-1
denied deny-all-udp-cross-node udp dev/client prod/web-1
denied deny-all-tcp-same-namespace tcp prod/client prod/web-2
allowed deny-all-leaves-dev-open http prod/client dev/client
# The node's own traffic (readiness probes every second) is never policed.
sleep 3
if pod_ready prod web-1 && pod_ready prod web-2; then ok probes-pass-deny-all; else
	not_ok probes-pass-deny-all "$(kc -n prod get pods -o wide 2>&1)"
fi

# --- sluicectl flows shows the deny with pod names (n2 enforces prod/web-2's ingress) ----
(sleep 1 && http dev/client "$W2" 1 >/dev/null) &
probe_pid=$!
# Earlier denies are still in the ring (the recent past is printed first): read for a while.
"$BIN/sluicectl" flows --bpffs "$S/bpffs" --node n2 --verdict deny --timeout 5 \
	>"$TMP/flows.out" 2>&1
wait "$probe_pid"
expect_match flows-deny-names-pods "$(grep "$W2:8080" "$TMP/flows.out" | tail -1)" \
	"deny +ingress TCP +dev/client $DC:[0-9]+ -> prod/web-2 $W2:8080 reason=denied_ingress"
"$BIN/sluicectl" flows --bpffs "$S/bpffs" --node n2 -o json --timeout 1 >"$TMP/flows.json" 2>&1
expect_eq flows-json-exit "$?" 0

# --- allow from the prod namespace (podSelector {} within the namespace) ----------------
apply allow-ns <<'Y'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {namespace: prod, name: allow-from-prod}
spec:
  podSelector: {}
  ingress:
  - from: [{namespaceSelector: {matchLabels: {team: prod}}}]
Y
sleep 1
allowed allow-ns-http-cross-node http prod/client prod/web-2
allowed allow-ns-udp-cross-node udp prod/client prod/web-2
allowed allow-ns-tcp-same-node tcp prod/client prod/web-1
denied allow-ns-other-namespace-denied http dev/client prod/web-2

# --- allow dev clients by pod label and named port -------------------------------------
apply allow-label <<'Y'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {namespace: prod, name: web-from-dev-clients}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress:
  - from: [{namespaceSelector: {matchLabels: {team: dev}}, podSelector: {matchLabels: {app: client}}}]
    ports: [{port: http}]
Y
sleep 1
allowed label-named-port-http-cross-node http dev/client prod/web-1
allowed label-named-port-http-same-node http dev/client prod/web-2
denied label-named-port-other-port-denied tcp dev/client prod/web-1
denied label-not-selected-pod-denied http dev/client prod/client

# --- egress deny in dev wins over prod's ingress allow ----------------------------------
apply egress-deny <<'Y'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {namespace: dev, name: no-egress}
spec:
  podSelector: {}
  policyTypes: [Egress]
Y
sleep 1
denied egress-deny-http http dev/client prod/web-1
denied egress-deny-udp udp dev/client prod/web-2
allowed egress-deny-ingress-still-open http prod/client dev/client

# --- policy removal restores new connections --------------------------------------------
kc -n dev delete networkpolicy no-egress >/dev/null 2>&1
kc -n prod delete networkpolicy deny-all allow-from-prod web-from-dev-clients >/dev/null 2>&1
sleep 1
allowed removed-http-dev-to-prod http dev/client prod/web-1
allowed removed-udp-dev-to-prod udp dev/client prod/web-2

# --- egress leaving the cluster: policy on the pod address, then masquerade ----------------
# ext (198.18.0.250) and cp (198.18.0.2) have no route to pod CIDRs: only a masqueraded
# packet gets an answer.
expect_match masq-table "$(in_lab n1 -- nft list table ip sluice_masq 2>&1)" \
	"ip saddr $(kc get node n1 -o jsonpath='{.spec.podCIDR}') ip daddr != @cluster masquerade"
check masq-pod-to-external in_lab prod/client -- ping -c1 -W2 198.18.0.250
apply egress-ipblock <<'Y'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {namespace: prod, name: client-egress}
spec:
  podSelector: {matchLabels: {app: client}}
  policyTypes: [Egress]
  egress:
  - to: [{ipBlock: {cidr: 198.18.0.0/24, except: [198.18.0.250/32]}}]
Y
sleep 1
if in_lab prod/client -- ping -c1 -W1 198.18.0.250 >/dev/null 2>&1; then
	not_ok egress-ipblock-except-denied "ping to 198.18.0.250 answered"
else ok egress-ipblock-except-denied; fi
check egress-ipblock-allowed-masqueraded in_lab prod/client -- ping -c1 -W2 198.18.0.2
denied egress-ipblock-pods-denied http prod/client prod/web-1
kc -n prod delete networkpolicy client-egress >/dev/null 2>&1

# --- metrics count decisions by reason -----------------------------------------------------
m=$(in_lab n2 -- curl -s --max-time 2 http://127.0.0.1:10249/metrics 2>/dev/null)
expect_match metrics-deny-by-reason "$m" \
	'sluice_policy_packets_total\{verdict="deny",reason="denied_ingress"\} [1-9]'
expect_match metrics-allow "$m" 'sluice_policy_packets_total\{verdict="allow",reason="allowed"\} [1-9]'

# --- fail-static: with n2's agent stopped, its pinned maps and programs keep enforcing -----
apply deny-again <<'Y'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {namespace: prod, name: deny-all}
spec: {podSelector: {}}
Y
sleep 1
read -r apid _ <"$S/pids/agent-n2.pid"
kill -TERM "$apid"
until_ok 10 bash -c "! kill -0 $apid 2>/dev/null"
if kill -0 "$apid" 2>/dev/null; then not_ok agent-n2-stops "pid $apid still running"; else
	ok agent-n2-stops
fi
denied agent-down-deny-still-enforced http dev/client prod/web-2
allowed agent-down-open-still-open http prod/client dev/client

LAB_LOG_ARCHIVE=$TMP/logs "${LAB[@]}" down --name "$L" >"$TMP/down.out" 2>&1 ||
	not_ok lab-down "$(tail -5 "$TMP/down.out")"
expect_eq daemons-no-sanitizer-reports \
	"$(grep -l -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$TMP"/logs/*.log 2>/dev/null)" ""
finish
