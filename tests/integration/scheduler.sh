#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The scheduler (control/sched.c) through sluice-control and kubectl: Nodes are plain API
# objects (no agents), pods are created by kubectl and must land where the filters and scores
# say; an unschedulable pod gets the PodScheduled=False condition and the FailedScheduling
# Event, and is placed once a fitting node appears. Loopback only; no netns.
source "$(dirname "$0")/lib.sh"

# No workload controllers: the spread case gives pods an owner ReplicaSet that does not
# exist, which the garbage collector would (rightly) delete.
start_control --store memory \
	--controllers endpointslice,endpoints,nodeipam,nodelifecycle,scheduler ||
	{ not_ok start; finish; }

# node NAME CPU MEM [SPEC-MEMBERS] [EXTRA-LABELS]
node() {
	curl -sf -X POST -H 'Content-Type: application/json' "$CONTROL_URL/api/v1/nodes" -d "{
	  \"apiVersion\":\"v1\",\"kind\":\"Node\",
	  \"metadata\":{\"name\":\"$1\",\"labels\":{\"kubernetes.io/hostname\":\"$1\"${5:-}}},
	  \"spec\":{${4:-}},
	  \"status\":{\"allocatable\":{\"cpu\":\"$2\",\"memory\":\"$3\",\"pods\":\"110\"},
	    \"conditions\":[{\"type\":\"Ready\",\"status\":\"True\"}]}}" >/dev/null
}
# pod NAME [SPEC-MEMBERS (after containers)] [CPU] [METADATA-MEMBERS]
pod() {
	kc create --validate=false -f - >/dev/null <<Y
{"apiVersion":"v1","kind":"Pod","metadata":{"name":"$1","labels":{"app":"$1"}${4:-}},
 "spec":{"containers":[{"name":"c","image":"x","resources":{"requests":{"cpu":"${3:-100m}"}}}]${2:-}}}
Y
}
node_of() { kc get pod "$1" -o 'jsonpath={.spec.nodeName}'; }
# wait_bound NAME...: until every pod has a node (5 s)
wait_bound() {
	local p
	for _ in $(seq 100); do
		for p in "$@"; do [[ -n $(node_of "$p") ]] || continue 2; done
		return 0
	done
	return 1
}
# wait_cond NAME: until the pod has a PodScheduled condition (5 s)
wait_cond() {
	for _ in $(seq 50); do
		[[ -n $(kc get pod "$1" -o 'jsonpath={.status.conditions[?(@.type=="PodScheduled")].reason}') ]] && return 0
		sleep 0.1
	done
	return 1
}

node n1 2 4Gi "" ',"disk":"hdd","gen":"3"'
node n2 2 4Gi "" ',"disk":"ssd","gen":"5"'
node n3 1 2Gi '"taints":[{"key":"dedicated","value":"db","effect":"NoSchedule"}]' ',"disk":"ssd","gen":"7"'

# resources + taints: 1.5 CPU fits n1 or n2, never the tainted n3
pod fit "" 1500m
wait_bound fit
expect_match "resources: a 1.5-CPU pod lands on n1 or n2" "$(node_of fit)" '^n[12]$'

pod sel ',"nodeSelector":{"disk":"ssd"}'
wait_bound sel
expect_eq "nodeSelector disk=ssd: n2 (n3 is tainted)" "$(node_of sel)" n2

pod tol ',"nodeSelector":{"disk":"ssd","gen":"7"},"tolerations":[{"key":"dedicated","operator":"Equal","value":"db","effect":"NoSchedule"}]'
wait_bound tol
expect_eq "toleration: a pod tolerating dedicated=db goes to n3" "$(node_of tol)" n3

pod aff ',"affinity":{"nodeAffinity":{"requiredDuringSchedulingIgnoredDuringExecution":{"nodeSelectorTerms":[{"matchExpressions":[{"key":"gen","operator":"Gt","values":["4"]},{"key":"kubernetes.io/hostname","operator":"NotIn","values":["n3"]}]}]}}}'
wait_bound aff
expect_eq "required node affinity gen>4, hostname notin n3: n2" "$(node_of aff)" n2

pod pref ',"affinity":{"nodeAffinity":{"preferredDuringSchedulingIgnoredDuringExecution":[{"weight":100,"preference":{"matchExpressions":[{"key":"disk","operator":"In","values":["hdd"]}]}}]}}'
wait_bound pref
expect_eq "preferred node affinity disk=hdd: n1" "$(node_of pref)" n1

# host ports: a second pod on n1 asking for the same hostPort cannot go there
kc create --validate=false -f - >/dev/null <<'Y'
{"apiVersion":"v1","kind":"Pod","metadata":{"name":"hp1"},"spec":{"nodeSelector":{"disk":"hdd"},
 "containers":[{"name":"c","image":"x","ports":[{"containerPort":80,"hostPort":8080}]}]}}
Y
kc create --validate=false -f - >/dev/null <<'Y'
{"apiVersion":"v1","kind":"Pod","metadata":{"name":"hp2"},"spec":{"nodeSelector":{"disk":"hdd"},
 "containers":[{"name":"c","image":"x","ports":[{"containerPort":80,"hostPort":8080}]}]}}
Y
wait_bound hp1
wait_cond hp2
expect_eq "hostPort 8080: the first pod binds to n1" "$(node_of hp1)" n1
expect_eq "hostPort 8080 taken: the second waits with the NodePorts reason" \
	"$(kc get pod hp2 -o 'jsonpath={.status.conditions[?(@.type=="PodScheduled")].message}')" \
	"0/3 nodes are available: 1 node(s) didn't have free ports for the requested pod ports, 2 node(s) didn't match Pod's node affinity/selector."

# the unschedulable pod: condition, event text, then a node that fits arrives
pod big "" 3
wait_cond big
MSG="0/3 nodes are available: 1 node(s) had untolerated taint {dedicated: db}, 2 Insufficient cpu."
expect_eq "unschedulable: PodScheduled False" \
	"$(kc get pod big -o 'jsonpath={.status.conditions[?(@.type=="PodScheduled")].status}/{.status.conditions[?(@.type=="PodScheduled")].reason}')" \
	"False/Unschedulable"
expect_eq "unschedulable: condition message (upstream wording)" \
	"$(kc get pod big -o 'jsonpath={.status.conditions[?(@.type=="PodScheduled")].message}')" "$MSG"
expect_eq "unschedulable: phase stays Pending, no node" \
	"$(kc get pod big -o 'jsonpath={.status.phase}/{.spec.nodeName}')" "Pending/"
EV=$(kc get events --field-selector involvedObject.name=big -o 'jsonpath={range .items[*]}{.type} {.reason} {.message}{"\n"}{end}')
expect_match "unschedulable: Warning FailedScheduling event" "$EV" "Warning FailedScheduling 0/3 nodes are available: 1 node\(s\) had untolerated taint \{dedicated: db\}, 2 Insufficient cpu\."
check "kubectl describe shows the event" bash -c "$KUBECTL describe pod big | grep -q FailedScheduling"
node n4 4 8Gi
wait_bound big
expect_eq "retry: the pod lands on n4 once it is added" "$(node_of big)" n4

# spread: six pods of one owner over n1, n2, n4 (n3 is tainted): two each
OWN=',"ownerReferences":[{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"web","uid":"0b5e7a53-0000-4000-8000-000000000001","controller":true}]'
for i in 1 2 3 4 5 6; do pod "web-$i" "" 10m "$OWN"; done
wait_bound web-1 web-2 web-3 web-4 web-5 web-6
expect_eq "spread: 6 pods of one ReplicaSet, 2 per schedulable node" \
	"$(for i in 1 2 3 4 5 6; do node_of web-$i; echo; done | sort | uniq -c | awk '{print $1}' | xargs)" "2 2 2"

# topologySpreadConstraints DoNotSchedule maxSkew 1 over hostname (n3 excluded by selector)
TSC=',"nodeSelector":{"kubernetes.io/hostname":"n1"},"topologySpreadConstraints":[{"maxSkew":1,"topologyKey":"kubernetes.io/hostname","whenUnsatisfiable":"DoNotSchedule","labelSelector":{"matchLabels":{"app":"tsc"}}}]'
kc create --validate=false -f - >/dev/null <<Y
{"apiVersion":"v1","kind":"Pod","metadata":{"name":"tsc-1","labels":{"app":"tsc"}},
 "spec":{"containers":[{"name":"c","image":"x"}]$TSC}}
Y
wait_bound tsc-1
expect_eq "topology spread: the first pod may go to n1" "$(node_of tsc-1)" n1

# DoNotSchedule maxSkew 1 without a selector: one pod per node, then the fourth fits nowhere
# (the tainted n3 is a spread domain with 0 pods: nodeTaintsPolicy Ignore, as upstream)
TSC2=',"topologySpreadConstraints":[{"maxSkew":1,"topologyKey":"kubernetes.io/hostname","whenUnsatisfiable":"DoNotSchedule","labelSelector":{"matchLabels":{"app":"tsc2"}}}]'
for i in 1 2 3 4; do
	kc create --validate=false -f - >/dev/null <<Y
{"apiVersion":"v1","kind":"Pod","metadata":{"name":"tsc2-$i","labels":{"app":"tsc2"}},
 "spec":{"containers":[{"name":"c","image":"x"}]$TSC2}}
Y
	[[ $i -lt 4 ]] && wait_bound "tsc2-$i"
done
expect_eq "topology spread maxSkew 1: three pods on three nodes" \
	"$(for i in 1 2 3; do node_of tsc2-$i; echo; done | sort -u | wc -l)" 3
wait_cond tsc2-4
expect_eq "topology spread: the fourth waits, the message names the constraint" \
	"$(kc get pod tsc2-4 -o 'jsonpath={.status.conditions[?(@.type=="PodScheduled")].message}')" \
	"0/4 nodes are available: 1 node(s) had untolerated taint {dedicated: db}, 3 node(s) didn't match pod topology spread constraints."

# cordon: n1 takes nothing new
kc cordon n1 >/dev/null
for _ in $(seq 20); do sleep 0.1; done
for i in 1 2 3 4; do pod "c-$i" "" 10m; done
wait_bound c-1 c-2 c-3 c-4
expect_eq "cordon: no new pod on n1" "$(for i in 1 2 3 4; do node_of c-$i; echo; done | grep -c '^n1$')" 0
pod cn ',"nodeSelector":{"disk":"hdd"}'
wait_cond cn
expect_eq "cordon: a pod only n1 could take says so" \
	"$(kc get pod cn -o 'jsonpath={.status.conditions[?(@.type=="PodScheduled")].message}')" \
	"0/4 nodes are available: 1 node(s) were unschedulable, 3 node(s) didn't match Pod's node affinity/selector."
kc uncordon n1 >/dev/null
wait_bound cn
expect_eq "uncordon: the waiting pod lands on n1" "$(node_of cn)" n1

# the node lifecycle controller's NoExecute taint keeps new pods off an unreachable node
kc taint nodes n2 node.kubernetes.io/unreachable:NoExecute >/dev/null
pod unr ',"nodeSelector":{"disk":"ssd","gen":"5"}'
wait_cond unr
expect_eq "unreachable taint (NoExecute): the pod waits, naming the taint" \
	"$(kc get pod unr -o 'jsonpath={.status.conditions[?(@.type=="PodScheduled")].message}')" \
	"0/4 nodes are available: 1 node(s) had untolerated taint {node.kubernetes.io/unreachable: }, 3 node(s) didn't match Pod's node affinity/selector."
kc taint nodes n2 node.kubernetes.io/unreachable:NoExecute- >/dev/null
wait_bound unr
expect_eq "taint removed: the pod lands on n2" "$(node_of unr)" n2

# another scheduler's pods are left alone
kc create --validate=false -f - >/dev/null <<'Y'
{"apiVersion":"v1","kind":"Pod","metadata":{"name":"other"},"spec":{"schedulerName":"someone-else","containers":[{"name":"c","image":"x"}]}}
Y
sleep 1
expect_eq "schedulerName someone-else: not ours, stays unbound" "$(node_of other)" ""

# bad flag
OUT=$("$BIN/sluice-control" --listen 127.0.0.1:1 --store memory --controllers sched 2>&1)
expect_match "--controllers sched: the error lists scheduler" "$OUT" "unknown controller 'sched'.*scheduler"
stop_control

# alone: sluice-control without controllers + sluice-scheduler
start_control --store memory --controllers none || { not_ok start-none; finish; }
node a1 2 4Gi
"$BIN/sluice-scheduler" --server "$CONTROL_URL" --log-level info >>"$TMP/sched.log" 2>&1 &
SPID=$!
PIDS+=("$SPID")
pod alone
wait_bound alone
expect_eq "sluice-scheduler alone binds against the API" "$(node_of alone)" a1
# at stop it logs its own latency: one pod bound, first sight -> binding accepted
kill "$SPID"
wait "$SPID" 2>/dev/null
expect_match "sluice-scheduler logs its latency at stop" "$(cat "$TMP/sched.log")" \
	"sched: 1 pods bound, 0 bind errors; latency e2e_p50_ms=[0-9.]+ e2e_p99_ms=[0-9.]+ .*bind_max_ms=[0-9.]+"
OUT=$("$BIN/sluice-scheduler" 2>&1)
expect_match "sluice-scheduler without --server: clear error" "$OUT" "exactly one of --server or --kubeconfig"
finish
