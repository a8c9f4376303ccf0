#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# apps/v1 workloads with the real kubectl (v1.20) against sluice-control and
# its controllers (ReplicaSet, Deployment, DaemonSet, garbage collector).
#
#   kubectl ──HTTP/JSON──▶ sluice-control (127.0.0.1:<free port>, memory store)
#
# No kubelet runs: Nodes are plain API objects, pods stay Pending unless the
# test binds them (pods/binding) and marks them Ready by writing pod status,
# which is what drives rollouts. A bound pod's delete is graceful, so the
# test finishes such deletes itself (grace period 0), as a kubelet would.
source "$(dirname "$0")/lib.sh"

[[ -x $KUBECTL ]] || { echo "not ok - $SUITE/kubectl-present (run make deps)"; exit 1; }
start_control --store memory || { not_ok start; finish; }

NS=wl
kc create namespace $NS >/dev/null

# api PATH [curl args...]: a request to the API server, JSON out.
api() {
	local path=$1
	shift
	curl -sf "$@" "$CONTROL_URL$path"
}

# py EXPR-PROGRAM: runs python with the JSON on stdin as `d`.
py() { "$PY" -c "import json,sys; d=json.load(sys.stdin); $1"; }

# mark_ready NS: every active pod that is not Ready becomes Running + Ready.
mark_ready() {
	local now p
	now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
	for p in $(api "/api/v1/namespaces/$1/pods" | py '
for p in d["items"]:
    if p["metadata"].get("deletionTimestamp"): continue
    if not [c for c in p.get("status",{}).get("conditions",[]) if c["type"]=="Ready" and c["status"]=="True"]:
        print(p["metadata"]["name"])'); do
		api "/api/v1/namespaces/$1/pods/$p/status" -X PATCH \
			-H 'Content-Type: application/merge-patch+json' \
			-d "{\"status\":{\"phase\":\"Running\",\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\",\"lastTransitionTime\":\"$now\"}]}}" \
			>/dev/null
	done
}

# bind_all NS NODE: binds every unbound pod to NODE.
bind_all() {
	local p
	for p in $(api "/api/v1/namespaces/$1/pods" | py '
for p in d["items"]:
    if not p["spec"].get("nodeName"): print(p["metadata"]["name"])'); do
		api "/api/v1/namespaces/$1/pods/$p/binding" -X POST -H 'Content-Type: application/json' \
			-d "{\"apiVersion\":\"v1\",\"kind\":\"Binding\",\"metadata\":{\"name\":\"$p\"},\"target\":{\"kind\":\"Node\",\"name\":\"$2\"}}" \
			>/dev/null
	done
}

# finish_terminating NS: what a kubelet does for pods being deleted.
finish_terminating() {
	local p
	for p in $(api "/api/v1/namespaces/$1/pods" | py '
for p in d["items"]:
    if p["metadata"].get("deletionTimestamp"): print(p["metadata"]["name"])'); do
		api "/api/v1/namespaces/$1/pods/$p" -X DELETE -H 'Content-Type: application/json' \
			-d '{"gracePeriodSeconds":0}' >/dev/null
	done
}

# active_pods NS SELECTOR: names of pods not being deleted.
active_pods() {
	kc -n "$1" get pods -l "$2" -o json | py '
print(" ".join(sorted(p["metadata"]["name"] for p in d["items"] if not p["metadata"].get("deletionTimestamp"))))'
}
count_active() { local a; a=$(active_pods "$@"); set -- $a; echo $#; }

# wait_for SECONDS CMD...: polls CMD every 0.2 s.
wait_for() {
	local t=$1 i
	shift
	for ((i = 0; i < t * 5; i++)); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.2
	done
	return 1
}
is_count() { [[ $(count_active "$1" "$2") == "$3" ]]; }
rs_names() { kc -n "$1" get rs -l "$2" -o jsonpath='{.items[*].metadata.name}'; }

# --- create deployment: ReplicaSet per template hash, owned pods --------------------------
kc -n $NS create deployment web --image=nginx:1.19 --replicas=6 >"$TMP/out" 2>&1 ||
	not_ok create-deployment "$(cat "$TMP/out")"
if wait_for 10 is_count $NS app=web 6; then ok create-deployment-6-pods; else
	not_ok create-deployment-6-pods "$(kc -n $NS get rs,pods 2>&1)"; fi
RS1=$(rs_names $NS app=web)
HASH=$(kc -n $NS get rs "$RS1" -o jsonpath='{.metadata.labels.pod-template-hash}')
expect_eq rs-named-by-hash "$RS1" "web-$HASH"
expect_eq rs-revision-1 "$(kc -n $NS get rs "$RS1" -o jsonpath='{.metadata.annotations.deployment\.kubernetes\.io/revision}')" 1
OWN=$(kc -n $NS get pods -l app=web -o json | py '
print(sorted(set((r["kind"], r["name"], r.get("controller")) for p in d["items"] for r in p["metadata"]["ownerReferences"])))')
expect_eq pods-owned-by-rs "$OWN" "[('ReplicaSet', '$RS1', True)]"
expect_eq rs-owned-by-deployment "$(kc -n $NS get rs "$RS1" -o jsonpath='{.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].name}')" Deployment/web
expect_match pods-generate-name "$(active_pods $NS app=web)" "^($RS1-[a-z0-9]{5} ?){6}\$"
expect_match events-successful-create "$(kc -n $NS get events --field-selector reason=SuccessfulCreate -o jsonpath='{.items[*].message}')" "Created pod: $RS1-"

# --- scale 6 -> 2 -> 6 (the scale subresource) ----------------------------------------------
mark_ready $NS
kc -n $NS scale deployment web --replicas=2 >/dev/null
if wait_for 10 is_count $NS app=web 2; then ok scale-down-to-2; else not_ok scale-down-to-2 "$(kc -n $NS get pods 2>&1)"; fi
expect_eq scale-subresource-get "$(api /apis/apps/v1/namespaces/$NS/deployments/web/scale | py 'print(d["kind"], d["apiVersion"], d["spec"]["replicas"])')" "Scale autoscaling/v1 2"
expect_match events-successful-delete "$(kc -n $NS get events --field-selector reason=SuccessfulDelete -o jsonpath='{.items[*].message}')" "Deleted pod: $RS1-"
kc -n $NS scale deployment web --replicas=6 >/dev/null
if wait_for 10 is_count $NS app=web 6; then ok scale-up-to-6; else not_ok scale-up-to-6 "$(kc -n $NS get pods 2>&1)"; fi
mark_ready $NS
check rollout-status-complete kc -n $NS rollout status deployment/web --timeout=20s
expect_eq deployment-columns "$(kc -n $NS get deploy web --no-headers | awk '{print $2, $3, $4}')" "6/6 6 6"
expect_eq replicaset-columns "$(kc -n $NS get rs "$RS1" --no-headers | awk '{print $2, $3, $4}')" "6 6 6"

# --- rolling update: maxSurge 25% (2), maxUnavailable 25% (1) of 6 ---------------------------
kc -n $NS set image deployment/web nginx=nginx:1.20 --record >/dev/null
viol=""
steps=0
for ((i = 0; i < 60; i++)); do
	sleep 0.4
	# Pods that exist (not terminating) and how many of them are ready.
	read -r total ready < <(kc -n $NS get pods -l app=web -o json | py '
a=[p for p in d["items"] if not p["metadata"].get("deletionTimestamp")]
r=[p for p in a if [c for c in p.get("status",{}).get("conditions",[]) if c["type"]=="Ready" and c["status"]=="True"]]
print(len(a), len(r))')
	specsum=$(kc -n $NS get rs -l app=web -o json | py 'print(sum(r["spec"]["replicas"] for r in d["items"]))')
	((total > 8 || specsum > 8)) && viol="$viol total=$total/spec=$specsum>8"
	((ready < 5)) && viol="$viol ready=$ready<5"
	steps=$((steps + 1))
	if kc -n $NS rollout status deployment/web --timeout=1s >/dev/null 2>&1; then break; fi
	mark_ready $NS
done
expect_eq rolling-update-respects-surge-and-unavailable "${viol:-none}" none
check rolling-update-completes kc -n $NS rollout status deployment/web --timeout=5s
((steps >= 3)) && ok rolling-update-took-steps || not_ok rolling-update-took-steps "steps=$steps"
RS2=$(kc -n $NS get rs -l app=web -o json | py '
print([r["metadata"]["name"] for r in d["items"] if r["spec"]["replicas"]==6][0])')
expect_eq old-rs-scaled-to-0 "$(kc -n $NS get rs "$RS1" -o jsonpath='{.spec.replicas}')" 0
expect_eq new-rs-revision-2 "$(kc -n $NS get rs "$RS2" -o jsonpath='{.metadata.annotations.deployment\.kubernetes\.io/revision}')" 2
expect_match scaling-events "$(kc -n $NS get events --field-selector reason=ScalingReplicaSet -o jsonpath='{.items[*].message}')" "Scaled down replica set $RS1 to 0"
HIST=$(kc -n $NS rollout history deployment/web)
expect_match rollout-history "$HIST" "1 +<none>.*2 +kubectl set image deployment/web nginx=nginx:1.20"

# --- rollout undo (client-side in kubectl 1.20: patches the template back) --------------------
kc -n $NS rollout undo deployment/web >"$TMP/out" 2>&1 || not_ok rollout-undo "$(cat "$TMP/out")"
for ((i = 0; i < 40; i++)); do
	sleep 0.4
	kc -n $NS rollout status deployment/web --timeout=1s >/dev/null 2>&1 && break
	mark_ready $NS
done
check rollout-undo-completes kc -n $NS rollout status deployment/web --timeout=5s
expect_eq undo-restores-image "$(kc -n $NS get deploy web -o jsonpath='{.spec.template.spec.containers[0].image}')" nginx:1.19
expect_eq undo-reuses-old-rs "$(kc -n $NS get rs "$RS1" -o jsonpath='{.spec.replicas} {.metadata.annotations.deployment\.kubernetes\.io/revision}')" "6 3"
expect_eq deployment-revision-3 "$(kc -n $NS get deploy web -o jsonpath='{.metadata.annotations.deployment\.kubernetes\.io/revision}')" 3

# --- pause: a template change starts no rollout until resumed ------------------------------------
kc -n $NS rollout pause deployment/web >/dev/null
kc -n $NS set image deployment/web nginx=nginx:1.21 >/dev/null
sleep 1.5
expect_eq paused-no-new-rs "$(rs_names $NS app=web | wc -w)" 2
kc -n $NS rollout resume deployment/web >/dev/null
for ((i = 0; i < 40; i++)); do
	sleep 0.4
	kc -n $NS rollout status deployment/web --timeout=1s >/dev/null 2>&1 && break
	mark_ready $NS
done
check resumed-rollout-completes kc -n $NS rollout status deployment/web --timeout=5s
expect_eq resumed-image "$(kc -n $NS get rs -l app=web -o json | py 'print([r["spec"]["template"]["spec"]["containers"][0]["image"] for r in d["items"] if r["spec"]["replicas"]==6])')" "['nginx:1.21']"

# --- Recreate: no new pod while an old one still runs (terminating included) ------------------
kc -n $NS create deployment rc --image=nginx:1.19 --replicas=3 --dry-run=client -o json |
	py 'd["spec"]["strategy"]={"type":"Recreate"}; print(json.dumps(d))' |
	kc create --validate=false -f - >/dev/null
kc create --validate=false -f - >/dev/null <<'Y'
{"apiVersion":"v1","kind":"Node","metadata":{"name":"n1","labels":{"disk":"ssd"}}}
Y
wait_for 10 is_count $NS app=rc 3
bind_all $NS n1
mark_ready $NS
check recreate-initial-rollout kc -n $NS rollout status deployment/rc --timeout=20s
RC1=$(rs_names $NS app=rc)
kc -n $NS set image deployment/rc nginx=nginx:1.20 >/dev/null
wait_for 10 is_count $NS app=rc 0
sleep 1.5
expect_eq recreate-waits-for-old-pods "$(rs_names $NS app=rc)" "$RC1"
finish_terminating $NS
if wait_for 10 is_count $NS app=rc 3; then ok recreate-new-pods-after-old-gone; else
	not_ok recreate-new-pods-after-old-gone "$(kc -n $NS get rs,pods 2>&1)"; fi
mark_ready $NS
check recreate-completes kc -n $NS rollout status deployment/rc --timeout=20s

# --- DaemonSet: one pod per eligible node, nodes joining and leaving -------------------------
kc create --validate=false -f - >/dev/null <<'Y'
{"apiVersion":"v1","kind":"List","items":[
 {"apiVersion":"v1","kind":"Node","metadata":{"name":"n2","labels":{"disk":"ssd"}}},
 {"apiVersion":"v1","kind":"Node","metadata":{"name":"n3"},"spec":{"taints":[{"key":"dedicated","value":"db","effect":"NoSchedule"}]}}]}
Y
kc -n $NS create --validate=false -f - >/dev/null <<'Y'
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec:
      containers: [{name: a, image: busybox:1.36}]
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: ssd}
spec:
  selector: {matchLabels: {app: ssd}}
  template:
    metadata: {labels: {app: ssd}}
    spec:
      nodeSelector: {disk: ssd}
      tolerations: [{key: dedicated, operator: Exists}]
      containers: [{name: a, image: busybox:1.36}]
Y
ds_nodes() {
	kc -n $NS get pods -l "app=$1" -o json | py '
print(" ".join(sorted(p["spec"].get("nodeName","") for p in d["items"] if not p["metadata"].get("deletionTimestamp"))))'
}
is_ds_nodes() { [[ $(ds_nodes "$1") == "$2" ]]; }
wait_for 10 is_ds_nodes agent "n1 n2"
expect_eq daemonset-skips-tainted-node "$(ds_nodes agent)" "n1 n2"
wait_for 10 is_ds_nodes ssd "n1 n2"
expect_eq daemonset-node-selector "$(ds_nodes ssd)" "n1 n2"
kc create --validate=false -f - >/dev/null <<'Y'
{"apiVersion":"v1","kind":"Node","metadata":{"name":"n4"}}
Y
wait_for 10 is_ds_nodes agent "n1 n2 n4"
expect_eq daemonset-follows-new-node "$(ds_nodes agent)" "n1 n2 n4"
kc label node n3 dedicated- >/dev/null 2>&1
kc patch node n3 -p '{"spec":{"taints":null}}' >/dev/null
wait_for 10 is_ds_nodes agent "n1 n2 n3 n4"
expect_eq daemonset-follows-untainted-node "$(ds_nodes agent)" "n1 n2 n3 n4"
mark_ready $NS
wait_for 10 sh -c "[ \"\$('$KUBECTL' -n $NS get ds agent -o jsonpath='{.status.numberReady}')\" = 4 ]"
expect_eq daemonset-columns "$(kc -n $NS get ds agent --no-headers | awk '{print $2, $3, $4, $5, $6}')" "4 4 4 4 4"
kc delete node n4 >/dev/null
wait_for 10 is_ds_nodes agent "n1 n2 n3"
expect_eq daemonset-node-removed "$(ds_nodes agent)" "n1 n2 n3"
OWNDS=$(kc -n $NS get pods -l app=agent -o jsonpath='{.items[0].metadata.ownerReferences[0].kind}')
expect_eq daemonset-pods-owned "$OWNDS" DaemonSet

# --- garbage collection: background cascade and orphaning -------------------------------------
kc -n $NS delete deployment web >/dev/null
gone() { [[ -z $(rs_names $NS app=web) && $(count_active $NS app=web) == 0 ]]; }
if wait_for 15 gone; then ok gc-deletes-rs-and-pods-of-deleted-deployment; else
	not_ok gc-deletes-rs-and-pods-of-deleted-deployment "$(kc -n $NS get rs,pods -l app=web 2>&1)"; fi

kc -n $NS create deployment orph --image=nginx:1.19 --replicas=2 >/dev/null
wait_for 10 is_count $NS app=orph 2
ORS=$(rs_names $NS app=orph)
kc -n $NS delete deployment orph --cascade=false >/dev/null 2>&1
sleep 2
expect_eq orphan-keeps-rs "$(rs_names $NS app=orph)" "$ORS"
expect_eq orphan-removes-owner-reference "$(kc -n $NS get rs "$ORS" -o jsonpath='{.metadata.ownerReferences}')" ""
expect_eq orphan-keeps-pods "$(count_active $NS app=orph)" 2
# The same Deployment again adopts the orphaned ReplicaSet instead of making another.
kc -n $NS create deployment orph --image=nginx:1.19 --replicas=2 >/dev/null
adopted() { [[ $(kc -n $NS get rs "$ORS" -o jsonpath='{.metadata.ownerReferences[0].kind}') == Deployment ]]; }
if wait_for 10 adopted; then ok recreated-deployment-adopts-rs; else
	not_ok recreated-deployment-adopts-rs "$(kc -n $NS get rs -o yaml 2>&1 | tail -20)"; fi
sleep 1
expect_eq adoption-makes-no-new-rs "$(rs_names $NS app=orph) $(count_active $NS app=orph)" "$ORS 2"
kc -n $NS delete deployment orph --cascade=false >/dev/null 2>&1
wait_for 10 sh -c "[ -z \"\$('$KUBECTL' -n $NS get rs $ORS -o jsonpath='{.metadata.ownerReferences}')\" ]"
kc -n $NS delete rs "$ORS" >/dev/null
if wait_for 10 is_count $NS app=orph 0; then ok gc-deletes-pods-of-deleted-rs; else
	not_ok gc-deletes-pods-of-deleted-rs "$(kc -n $NS get pods -l app=orph 2>&1)"; fi

# An EndpointSlice owned by a Service (not one the endpointslice controller manages).
kc -n $NS create service clusterip gcsvc --tcp=80:80 >/dev/null
SUID=$(kc -n $NS get svc gcsvc -o jsonpath='{.metadata.uid}')
kc -n $NS create --validate=false -f - >/dev/null <<Y
{"apiVersion":"discovery.k8s.io/v1","kind":"EndpointSlice","metadata":{"name":"gcslice",
 "ownerReferences":[{"apiVersion":"v1","kind":"Service","name":"gcsvc","uid":"$SUID"}]},
 "addressType":"IPv4","endpoints":[],"ports":[]}
Y
kc -n $NS delete service gcsvc >/dev/null
slice_gone() { ! kc -n $NS get endpointslice gcslice >/dev/null 2>&1; }
if wait_for 10 slice_gone; then ok gc-deletes-endpointslice-of-deleted-service; else
	not_ok gc-deletes-endpointslice-of-deleted-service; fi

# --- validation and scale errors ------------------------------------------------------------
kc -n $NS create deployment bad --image=x --dry-run=client -o json |
	py 'd["spec"]["selector"]["matchLabels"]["app"]="other"; print(json.dumps(d))' |
	kc create --validate=false -f - >"$TMP/out" 2>&1
expect_match invalid-selector-message "$(cat "$TMP/out")" 'spec.template.metadata.labels: Invalid value: .*`selector` does not match template `labels`'
kc -n $NS scale deployment rc --replicas=-1 >"$TMP/out" 2>&1
expect_match negative-scale-refused "$(cat "$TMP/out")" "must be greater than or equal to 0"
RCRS=$(kc -n $NS get rs -l app=rc -o json | py 'print([r["metadata"]["name"] for r in d["items"] if r["spec"]["replicas"]>0][0])')
kc -n $NS scale rs "$RCRS" --replicas=3 >/dev/null 2>&1 && ok scale-replicaset || not_ok scale-replicaset

# --- namespace deletion takes the workloads with it --------------------------------------------
kc delete namespace $NS --wait=false >/dev/null
ns_gone() { ! kc get namespace $NS >/dev/null 2>&1; }
# Bound pods need their kubelet's final delete; play it until the namespace goes.
for ((i = 0; i < 50; i++)); do ns_gone && break; finish_terminating $NS; sleep 0.2; done
if ns_gone; then ok namespace-deletion-removes-workloads; else
	not_ok namespace-deletion-removes-workloads "$(kc -n $NS get all 2>&1)"; fi
expect_eq no-deployments-left "$(api /apis/apps/v1/deployments | py 'print(len(d["items"]))')" 0

finish
