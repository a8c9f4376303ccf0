#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Workloads on the lab's real nodes (issue 8 acceptance), all through kubectl
# 1.20: a Deployment of the echo server spread by the scheduler, scale down and
# up, a rolling update with a client connecting through the Service all along
# (zero failures: readiness + terminating endpoints + fail-static datapath),
# rollout undo, cordon, an unschedulable pod, a DaemonSet that follows a node
# added later (`lab add-node`), namespace deletion.
#
#  L-n1..n3 (then n4): Deployment wl/web (6 x echo-server, GET /ready),
#  Service wl/web (ClusterIP 80 -> 8080), pod wl/client, DaemonSet wl/daemon
# Runs in a private mount namespace like lab.sh.
if [[ -z ${SLUICE_IN_MNTNS:-} ]]; then
	exec env SLUICE_IN_MNTNS=1 unshare --mount --propagation private bash "$0" "$@"
fi
source "$(dirname "$0")/lib.sh"

L=lw$$
LAB=(env SLUICE_LAB_BIN="$BIN" bash "$ROOT/tools/lab/lab.sh")
S=/run/sluice-lab/$L
NS=wl

lab_cleanup() {
	[[ -n ${LOOP_PID:-} ]] && kill "$LOOP_PID" 2>/dev/null
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

if "${LAB[@]}" up --name "$L" --nodes 3 --no-dns >"$TMP/up.out" 2>&1; then ok lab-up; else
	not_ok lab-up "$(tail -8 "$TMP/up.out")"
	finish
fi
export KUBECONFIG=$S/kubeconfig

# Pods of app=web that are not terminating: "name@node=ready" sorted.
web_pods() {
	kc -n $NS get pods -l app=web -o jsonpath='{range .items[*]}{.metadata.name}@{.spec.nodeName}={.status.conditions[?(@.type=="Ready")].status}={.metadata.deletionTimestamp}{"\n"}{end}' |
		awk -F= '$3 == "" { print $1 "=" $2 }' | sort
}
# n_ready N: exactly N web pods, all Ready, none terminating.
n_ready() {
	local p
	p=$(web_pods)
	[[ $(grep -c . <<<"$p") == "$1" && $(grep -c '=True$' <<<"$p") == "$1" ]]
}
rollout() { kc -n $NS rollout status deploy/web --timeout=120s >"$TMP/rollout.out" 2>&1; }

deployment() { # replicas
	cat <<Y
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: $NS}
spec:
  replicas: $1
  selector: {matchLabels: {app: web}}
  strategy: {type: RollingUpdate, rollingUpdate: {maxSurge: 1, maxUnavailable: 0}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 5
      containers:
      - name: echo
        image: sluice/echo-server
        # Serving on for 2 s after SIGTERM, as a Kubernetes server should:
        # the endpoint turns terminating as the SIGTERM is sent, and other
        # nodes' datapaths learn that some 100 ms later.
        command: ["$BIN/echo-server", "--shutdown-delay", "2"]
        ports: [{name: http, containerPort: 8080}]
        readinessProbe:
          httpGet: {path: /ready, port: 8080}
          periodSeconds: 1
Y
}

kc create namespace $NS >/dev/null 2>&1
{
	deployment 6
	cat <<Y
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: $NS}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 8080, protocol: TCP}]
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: $NS, labels: {app: client}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: sleep
    image: sluice/sleep
    command: ["sleep", "3600"]
Y
} >"$TMP/wl.yaml"
check create-deployment-service-client kc create --validate=false -f "$TMP/wl.yaml"

if rollout; then ok deployment-rollout-status; else not_ok deployment-rollout-status "$(cat "$TMP/rollout.out")"; fi
until_ok 30 n_ready 6
P=$(web_pods)
expect_eq six-pods-ready "$(grep -c '=True$' <<<"$P")" 6
expect_eq pods-spread-2-per-node "$(sed 's/.*@//; s/=.*//' <<<"$P" | sort | uniq -c | awk '{print $1 "x" $2}' | tr '\n' ' ')" \
	"2xn1 2xn2 2xn3 "
until_ok 30 bash -c "[[ \$(KUBECONFIG=$KUBECONFIG $KUBECTL -n $NS get pod client -o jsonpath='{.status.phase}') == Running ]]"
VIP=$(kc -n $NS get svc web -o jsonpath='{.spec.clusterIP}')
CNODE=$(kc -n $NS get pod client -o jsonpath='{.spec.nodeName}')

# Pod names that answer through the ClusterIP from the client pod (on some
# node), up to $2 requests or until $1 distinct names were seen.
seen_backends() {
	in_lab $NS/client -- bash -c 'want=$1 seen=""
		for ((i = 0; i < $2; i++)); do
			p=$(curl -s --max-time 2 "http://$0/" | sed -n "s/^pod=\([^ ]*\).*/\1/p")
			[[ -n $p && " $seen " != *" $p "* ]] && seen="$seen $p"
			(( $(wc -w <<<"$seen") >= want )) && break
		done
		tr " " "\n" <<<"$seen" | grep . | sort' "$VIP" "$1" "$2"
}
all_names() { sed 's/@.*//' <<<"$1" | sort; }
expect_eq service-reaches-all-6 "$(seen_backends 6 300)" "$(all_names "$P")"
echo "# client on $CNODE, VIP $VIP"

# --- scale ----------------------------------------------------------------------------------

check scale-to-2 kc -n $NS scale deploy/web --replicas=2
if until_ok 60 n_ready 2; then ok scaled-to-2; else not_ok scaled-to-2 "$(web_pods)"; fi
eps() {
	kc -n $NS get endpointslices -l kubernetes.io/service-name=web \
		-o jsonpath='{range .items[*].endpoints[*]}{.conditions.ready}{"\n"}{end}' | grep -c true
}
until_ok 20 bash -c "[[ \$(KUBECONFIG=$KUBECONFIG $KUBECTL -n $NS get endpointslices -l kubernetes.io/service-name=web -o jsonpath='{range .items[*].endpoints[*]}{.addresses[0]}{\"\\n\"}{end}' | grep -c .) == 2 ]]"
expect_eq endpoints-after-scale-2 "$(eps)" 2
expect_eq service-reaches-2 "$(seen_backends 3 40)" "$(all_names "$(web_pods)")"
check scale-to-6 kc -n $NS scale deploy/web --replicas=6
if rollout && until_ok 60 n_ready 6; then ok scaled-back-to-6; else not_ok scaled-back-to-6 "$(web_pods)"; fi
expect_eq service-reaches-6-again "$(seen_backends 6 300)" "$(all_names "$(web_pods)")"

# --- rolling update under load ----------------------------------------------------------------

# The client connects through the Service in a loop (a new connection per
# request, 2 s timeout each) until the stop file appears or 3000 requests.
STOP=$TMP/stop-loop
in_lab $NS/client -- bash -c 'for ((i = 0; i < 3000; i++)); do
		[[ -e $1 ]] && break
		code=$(curl -s --max-time 2 -o /dev/null -w "%{http_code}" "http://$0/")
		rc=$?
		echo "$EPOCHREALTIME $code rc=$rc"
	done' "$VIP" "$STOP" >"$TMP/loop.out" 2>&1 &
LOOP_PID=$!
sleep 2
OLD=$(all_names "$(web_pods)")
check rolling-update-set-env kc -n $NS set env deploy/web ROLLOUT=2
if rollout; then ok rolling-update-complete; else not_ok rolling-update-complete "$(cat "$TMP/rollout.out")"; fi
until_ok 60 n_ready 6
sleep 3 # connections after the last old pod went away
touch "$STOP"
wait "$LOOP_PID"
LOOP_PID=
total=$(grep -c . "$TMP/loop.out")
fails=$(grep -vc ' 200 rc=0$' "$TMP/loop.out")
echo "# rolling update: $total requests, $fails failed"
expect_eq rolling-update-zero-failed-connections "$fails failed of $total" "0 failed of $total"
((fails > 0)) && grep -v ' 200 rc=0$' "$TMP/loop.out" | head -5 | sed 's/^/# /'
((total >= 50)) && ok rolling-update-load-ran || not_ok rolling-update-load-ran "only $total requests"
NEW=$(all_names "$(web_pods)")
expect_eq rolling-update-replaced-all "$(comm -12 <(echo "$OLD") <(echo "$NEW") | grep -c .)" 0
expect_eq new-template-env "$(kc -n $NS get pods -l app=web -o jsonpath='{range .items[*]}{.spec.containers[0].env[0].value}{" "}{end}')" \
	"2 2 2 2 2 2 "
expect_eq service-reaches-new-pods "$(seen_backends 6 300)" "$NEW"

# --- rollout undo -------------------------------------------------------------------------------

check rollout-undo kc -n $NS rollout undo deploy/web
if rollout && until_ok 60 n_ready 6; then ok rollout-undo-complete; else not_ok rollout-undo-complete "$(web_pods)"; fi
expect_eq undo-template-has-no-env "$(kc -n $NS get deploy web -o jsonpath='{.spec.template.spec.containers[0].env}')" ""
# The new-template pods drain for 2 s after SIGTERM: wait until they are gone.
all_web() { [[ $(kc -n $NS get pods -l app=web -o name | grep -c .) == 6 ]]; }
until_ok 30 all_web
expect_eq undo-pods-have-no-env "$(kc -n $NS get pods -l app=web -o jsonpath='{range .items[*]}{.metadata.name}={.spec.containers[0].env}{"\n"}{end}' | grep -v '=$')" ""
expect_match undo-revision "$(kc -n $NS get deploy web -o jsonpath='{.metadata.annotations.deployment\.kubernetes\.io/revision}')" '^3$'

# --- cordon a node, delete its pods: replacements land elsewhere ----------------------------------

check cordon-n1 kc cordon n1
expect_eq n1-unschedulable "$(kc get node n1 -o jsonpath='{.spec.unschedulable}')" true
ON1=$(kc -n $NS get pods -l app=web --field-selector spec.nodeName=n1 -o name)
[[ -n $ON1 ]] || not_ok pods-on-n1-before-cordon "$(web_pods)"
check delete-n1-pods kc -n $NS delete $ON1 --wait=false
if until_ok 60 n_ready 6; then ok replacements-ready; else not_ok replacements-ready "$(web_pods)"; fi
expect_eq no-web-pod-on-cordoned-n1 "$(web_pods | grep -c '@n1=')" 0
check uncordon-n1 kc uncordon n1

# --- a pod too big for any node stays Pending, saying why --------------------------------------------

cat >"$TMP/big.yaml" <<Y
apiVersion: v1
kind: Pod
metadata: {name: big, namespace: $NS}
spec:
  containers:
  - name: sleep
    image: sluice/sleep
    command: ["sleep", "3600"]
    resources: {requests: {cpu: "1000"}}
Y
check create-big-pod kc create --validate=false -f "$TMP/big.yaml"
big_cond() {
	kc -n $NS get pod big -o jsonpath='{.status.phase} {.status.conditions[?(@.type=="PodScheduled")].status} {.status.conditions[?(@.type=="PodScheduled")].reason}: {.status.conditions[?(@.type=="PodScheduled")].message}'
}
until_ok 20 bash -c "[[ \$(KUBECONFIG=$KUBECONFIG $KUBECTL -n $NS get pod big -o jsonpath='{.status.conditions[?(@.type==\"PodScheduled\")].status}') == False ]]"
expect_match big-pod-pending "$(big_cond)" '^Pending False Unschedulable: 0/3 nodes are available: 3 Insufficient cpu'
expect_eq big-pod-unbound "$(kc -n $NS get pod big -o jsonpath='{.spec.nodeName}')" ""

# --- a DaemonSet covers every node, including one added later ------------------------------------------

cat >"$TMP/ds.yaml" <<Y
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: daemon, namespace: $NS}
spec:
  selector: {matchLabels: {app: daemon}}
  template:
    metadata: {labels: {app: daemon}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: sleep
        image: sluice/sleep
        command: ["sleep", "3600"]
Y
check create-daemonset kc create --validate=false -f "$TMP/ds.yaml"
ds_nodes() {
	kc -n $NS get pods -l app=daemon -o jsonpath='{range .items[*]}{.spec.nodeName}={.status.phase}{"\n"}{end}' | sort | tr '\n' ' '
}
until_ok 60 bash -c "[[ \"\$(KUBECONFIG=$KUBECONFIG $KUBECTL -n $NS get pods -l app=daemon -o jsonpath='{range .items[*]}{.status.phase}{\"\\n\"}{end}' | grep -c Running)\" == 3 ]]"
expect_eq daemonset-on-3-nodes "$(ds_nodes)" "n1=Running n2=Running n3=Running "
if "${LAB[@]}" add-node --name "$L" >"$TMP/add.out" 2>&1; then ok lab-add-node; else
	not_ok lab-add-node "$(tail -5 "$TMP/add.out")"
fi
expect_eq n4-ready "$(kc get node n4 -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')" True
until_ok 60 bash -c "[[ \"\$(KUBECONFIG=$KUBECONFIG $KUBECTL -n $NS get pods -l app=daemon -o jsonpath='{range .items[*]}{.status.phase}{\"\\n\"}{end}' | grep -c Running)\" == 4 ]]"
expect_eq daemonset-follows-new-node "$(ds_nodes)" "n1=Running n2=Running n3=Running n4=Running "
expect_match daemonset-status "$(kc -n $NS get ds daemon -o jsonpath='{.status.desiredNumberScheduled}/{.status.numberReady}')" '^4/4$'
# The new node's datapath serves the Service too (its pods reach all backends).
expect_eq new-node-pod-reaches-service "$(in_lab n4 -- curl -s --max-time 2 "http://$VIP/" | sed -n 's/^pod=\([^ ]*\).*/\1/p' | grep -c .)" 1

# --- namespace deletion cleans up ------------------------------------------------------------------------

check delete-namespace kc delete namespace $NS --wait=false
ns_gone() { ! kc get namespace $NS >/dev/null 2>&1; }
if until_ok 90 ns_gone; then ok namespace-gone; else
	not_ok namespace-gone "$(kc get ns $NS -o jsonpath='{.status.phase}') $(kc -n $NS get all -o name 2>&1 | head -5)"
fi
expect_eq namespace-empty "$(kc -n $NS get deploy,rs,ds,pods,svc,endpointslices -o name 2>/dev/null)" ""
# Every pod is torn down on its node too (its pod dir goes last).
pod_dirs() { find "$S"/n[1-4]/pods -mindepth 1 -maxdepth 1 2>/dev/null; }
until_ok 30 bash -c "[[ -z \$(find $S/n[1-4]/pods -mindepth 1 -maxdepth 1 2>/dev/null) ]]"
expect_eq pod-dirs-removed "$(pod_dirs)" ""

LAB_LOG_ARCHIVE=$TMP/logs "${LAB[@]}" down --name "$L" >"$TMP/down.out" 2>&1 && ok down ||
	not_ok down "$(tail -5 "$TMP/down.out")"
left=$(find /run/netns -maxdepth 1 -name "$L-*" 2>/dev/null)
expect_eq down-removes-added-node "$left" ""
expect_eq daemons-no-sanitizer-reports \
	"$(grep -l -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$TMP"/logs/*.log 2>/dev/null)" ""
finish
