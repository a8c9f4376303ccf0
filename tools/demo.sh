#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# make demo: issue 4's scenario, cluster DNS (issue 5) and NetworkPolicy (issue 6) on a 3-node lab
# (docs/lab.md), with real output.
#
#  host: kubectl ──127.0.0.1──▶ sluice-control (also 198.18.0.2:6443 in L-cp)
#  L-fabric br0 ── L-n1 198.18.0.11: pod web-1   (echo-server, readiness GET /ready)
#               ── L-n2 198.18.0.12: pod web-2   (echo-server)
#               ── L-n3 198.18.0.13: pod client  (requests through the ClusterIP)
#               ── L-ext 198.18.0.250            (requests through the NodePort)
#  Service web: ClusterIP 80 → 8080; Service web-np: NodePort → 8080
#
# The lab comes up with `sluicectl lab up`, every step runs the real command,
# and `sluicectl lab down` removes it all at the end (also on Ctrl-C). A step
# whose part of Sluice is not in this build says what is missing and the demo
# exits non-zero; nothing is faked.
set -uo pipefail
if [[ -z ${SLUICE_IN_MNTNS:-} ]]; then
	# A private mount namespace: the lab's bpffs and netns mounts exist only
	# here, so even a killed demo leaves no mount on the host.
	exec env SLUICE_IN_MNTNS=1 unshare --mount --propagation private bash "$0" "$@"
fi
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${SLUICE_BIN:-$ROOT/build/bin}
[[ $BIN = /* ]] || BIN=$ROOT/$BIN
KUBECTL=${KUBECTL:-$ROOT/build/deps/kubectl-1.20/usr/bin/kubectl}
L=demo$$
S=/run/sluice-lab/$L
export SLUICE_LAB_BIN=$BIN
TMP=$(mktemp -d /tmp/sluice-demo.XXXXXX)
MISSING=()

cleanup() {
	printf '\n\033[1m== Teardown: sluicectl lab down --name %s\033[0m\n' "$L"
	"$BIN/sluicectl" lab down --name "$L"
	rm -rf "$TMP"
	if ((${#MISSING[@]})); then
		printf '\n\033[1;31mNot shown, because this build lacks:\033[0m\n'
		printf '  - %s\n' "${MISSING[@]}"
		exit 1
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() {
	printf '$ %s\n' "$*"
	"$@"
}
missing() {
	printf '\033[1;31mMISSING: %s\033[0m\n' "$*"
	MISSING+=("$*")
}
k() { "$KUBECTL" --cache-dir "$TMP/kcache" "$@"; }
lab() { "$BIN/sluicectl" lab "$1" --name "$L" "${@:2}"; }
until_ok() {
	local i
	for ((i = 0; i < $1 * 4; i++)); do
		"${@:2}" >/dev/null 2>&1 && return 0
		sleep 0.25
	done
	return 1
}

step "Build a 3-node lab: sluicectl lab up --name $L --nodes 3"
run "$BIN/sluicectl" lab up --name "$L" --nodes 3 || {
	missing "a working 'sluicectl lab up' (see the messages above)"
	exit 1
}
export KUBECONFIG=$S/kubeconfig

step "kubectl sees the nodes the agents registered"
kubectl_ok=1
run k get nodes -o wide || {
	kubectl_ok=
	missing "kubectl access from the host (sluice-control --anonymous-loopback: kubectl sends no" \
		"bearer token over plain HTTP)"
}
node_ready() {
	[[ $(k get node "$1" -o jsonpath='{range .status.conditions[?(@.type=="Ready")]}{.status}{end}') == True ]]
}
nodes_ok=
if [[ -n $kubectl_ok ]]; then
	if node_ready n1 && node_ready n2 && node_ready n3; then
		nodes_ok=1
	else
		missing "Ready nodes n1-n3 (agent --run-pods: Node registration, Lease, podCIDR)"
	fi
fi

step "Deploy: echo-server pods on n1 and n2, a client pod on n3, a ClusterIP and a NodePort Service"
pod() { # name node app
	cat <<Y
apiVersion: v1
kind: Pod
metadata: {name: $1, labels: {app: $3}}
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
---
Y
}
{
	pod web-1 n1 web
	pod web-2 n2 web
	pod client n3 client
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
sed -n '1,18p' "$TMP/app.yaml"
echo "  ... (web-2 on n2, client on n3, Services web and web-np)"
pods_ok=
if [[ -n $kubectl_ok ]]; then
	run k apply --validate=false -f "$TMP/app.yaml"
	pod_ready() {
		[[ $(k get pod "$1" -o jsonpath='{range .status.conditions[?(@.type=="Ready")]}{.status}{end}') == True ]]
	}
	if [[ -n $nodes_ok ]]; then
		echo "waiting up to 60 s for the pods to be Ready ..."
		if until_ok 60 pod_ready web-1 && until_ok 10 pod_ready web-2 && until_ok 10 pod_ready client; then
			pods_ok=1
		else
			missing "pods running on nodes (agent pod runtime + sluice-cni)"
		fi
	else
		missing "pods on nodes: there are no Ready nodes to run them"
	fi
fi

step "kubectl get pods -o wide, services, endpointslices"
if [[ -n $kubectl_ok ]]; then
	run k get pods -o wide
	run k get svc -o wide
	run k get endpointslices -o wide
fi
VIP=$(k get svc web -o jsonpath='{.spec.clusterIP}' 2>/dev/null)
NP=$(k get svc web-np -o jsonpath='{.spec.ports[0].nodePort}' 2>/dev/null)
eps_ok=
if [[ -n $pods_ok ]]; then
	eps_ready() {
		[[ $(k get endpointslices -l kubernetes.io/service-name=web \
			-o jsonpath='{range .items[*].endpoints[*]}{.conditions.ready}{" "}{end}') == "true true " ]]
	}
	if until_ok 10 eps_ready; then eps_ok=1; else
		missing "EndpointSlices from pods (control's endpointslice controller)"
	fi
fi

step "From pod client on n3 through the ClusterIP $VIP:80 (balanced at connect() by the socket hooks)"
if [[ -n $eps_ok ]]; then
	for _ in 1 2 3 4 5 6; do
		printf '$ sluicectl lab exec default/client -- curl -s http://%s/\n' "$VIP"
		lab exec default/client -- curl -s --max-time 2 "http://$VIP/" ||
			echo "(request failed: exit $?)"
	done
else
	echo "(skipped: needs Ready pods and their endpoints, see MISSING above)"
fi

step "Cluster DNS from pod client on n3: kube-dns ($(k get svc -n kube-system kube-dns -o jsonpath='{.spec.clusterIP}' 2>/dev/null)), two sluice-dns pods of Deployment kube-system/kube-dns"
if [[ -n $pods_ok ]]; then
	run k get pods -n kube-system -l k8s-app=kube-dns -o wide
	run lab exec default/client -- cat /etc/resolv.conf
	printf '$ sluicectl lab exec default/client -- getent hosts web\n'
	lab exec default/client -- getent hosts web || missing "the short name 'web' resolving in a pod (cluster DNS)"
	run lab exec default/client -- dig +noall +answer web.default.svc.cluster.local
	run lab exec default/client -- dig +noall +answer _http._tcp.web.default.svc.cluster.local SRV
	printf '$ sluicectl lab exec default/client -- curl -s http://web/\n'
	lab exec default/client -- curl -s --max-time 2 http://web/ || echo "(request failed: exit $?)"
	echo "An external name, forwarded to the upstream (knotd in $L-ext serving example.test):"
	run lab exec default/client -- dig +noall +answer www.example.test A
	run lab exec default/client -- dig +noall +answer www.example.test TXT
else
	echo "(skipped: needs Ready pods, see MISSING above)"
fi

step "From $L-ext (outside the cluster) through NodePort $NP on every node address"
if [[ -n $eps_ok ]]; then
	for n in 1 2 3; do
		printf '$ sluicectl lab exec ext -- curl -s http://198.18.0.1%s:%s/\n' "$n" "$NP"
		lab exec ext -- curl -s --max-time 2 "http://198.18.0.1$n:$NP/" ||
			echo "(request failed: exit $?)"
	done
else
	echo "(skipped: needs Ready pods and their endpoints, see MISSING above)"
fi

step "What the agent on n3 programmed: the pinned service maps through bpftool"
svc_map=$S/bpffs/sluice/n3/sl_svc4_v1
# The agent programs the maps shortly after it starts; give it that moment.
until_ok 10 bash -c '[[ $(bpftool map dump pinned "$0" 2>/dev/null) != "[]" ]]' "$svc_map"
if [[ -e $svc_map ]]; then
	run bpftool map show pinned "$svc_map"
	printf '$ bpftool map dump pinned %s | head -40\n' "$svc_map"
	bpftool map dump pinned "$svc_map" | head -40
	step "The same state joined by sluicectl"
	run "$BIN/sluicectl" --bpffs "$S/bpffs" --node n3 service list
	run "$BIN/sluicectl" --bpffs "$S/bpffs" --node n3 backend list
else
	missing "pinned maps of node n3 under $S/bpffs/sluice/n3 (the agent did not start its datapath)"
fi

step "Readiness: web-2 reports not ready; its endpoint leaves the Service, then returns"
if [[ -n $eps_ok ]]; then
	W2=$(k get pod web-2 -o jsonpath='{.status.podIP}')
	run lab exec default/client -- curl -s -X POST "http://$W2:8080/ready/fail"
	sleep 3
	run k get endpointslices -l kubernetes.io/service-name=web \
		-o jsonpath='{range .items[*].endpoints[*]}{.addresses[0]} ready={.conditions.ready}{"\n"}{end}'
	for _ in 1 2 3 4; do lab exec default/client -- curl -s --max-time 2 "http://$VIP/"; done
	run lab exec default/client -- curl -s -X POST "http://$W2:8080/ready/ok"
	sleep 3
	run k get endpointslices -l kubernetes.io/service-name=web \
		-o jsonpath='{range .items[*].endpoints[*]}{.addresses[0]} ready={.conditions.ready}{"\n"}{end}'
else
	echo "(skipped: needs Ready pods and their endpoints, see MISSING above)"
fi

step "NetworkPolicy (issue 6): deny all ingress in default, then allow it from namespace other"
if [[ -n $pods_ok ]]; then
	W1=$(k get pod web-1 -o jsonpath='{.status.podIP}')
	# curl's verdict, one line: the reply, or what a policy drop looks like (no answer).
	probe() { # FROM
		printf '$ sluicectl lab exec %s -- curl -s --max-time 2 http://%s:8080/\n' "$1" "$W1"
		lab exec "$1" -- curl -s --max-time 2 "http://$W1:8080/" && return 0
		echo "(no answer within 2 s: the packet was dropped)"
		return 1
	}
	cat >"$TMP/outsider.yaml" <<Y
apiVersion: v1
kind: Namespace
metadata: {name: other}
---
apiVersion: v1
kind: Pod
metadata: {namespace: other, name: outsider}
spec:
  nodeName: n3
  terminationGracePeriodSeconds: 1
  containers:
  - name: echo
    image: sluice/echo-server
    command: ["$BIN/echo-server", "--name", "other/outsider"]
    readinessProbe:
      httpGet: {path: /ready, port: 8080}
      periodSeconds: 1
Y
	run k apply --validate=false -f "$TMP/outsider.yaml"
	outsider_ready() {
		[[ $(k -n other get pod outsider -o jsonpath='{range .status.conditions[?(@.type=="Ready")]}{.status}{end}') == True ]]
	}
	until_ok 60 outsider_ready || missing "pod other/outsider Ready"
	echo "Before any policy both reach web-1 ($W1, on n1):"
	probe default/client
	probe other/outsider
	cat >"$TMP/deny.yaml" <<'Y'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {namespace: default, name: default-deny-ingress}
spec:
  podSelector: {}
  policyTypes: [Ingress]
Y
	cat "$TMP/deny.yaml"
	run k apply --validate=false -f "$TMP/deny.yaml"
	sleep 1
	echo "Now nothing reaches the pods of namespace default (node-local readiness probes still do):"
	probe default/client && missing "NetworkPolicy enforcement (client -> web-1 answered under deny-all)"
	probe other/outsider && missing "NetworkPolicy enforcement (outsider -> web-1 answered under deny-all)"
	cat >"$TMP/allow.yaml" <<'Y'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {namespace: default, name: web-allow-from-other}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress:
  - from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: other}}}]
    ports: [{port: 8080}]
Y
	cat "$TMP/allow.yaml"
	run k apply --validate=false -f "$TMP/allow.yaml"
	sleep 1
	echo "Policies add up: other/outsider is allowed, default/client stays denied:"
	probe other/outsider || missing "NetworkPolicy allow rules (outsider -> web-1 not answered)"
	probe default/client && missing "NetworkPolicy enforcement (client -> web-1 answered)"
	echo "The decisions, as n1's datapath reported them (first packet of each flow, newest last;"
	echo "the kubelet's readiness probes from the node, reason=allowed_node, left out):"
	printf '$ sluicectl flows --node n1 --timeout 2 | grep %s:8080 | grep -v allowed_node\n' "$W1"
	"$BIN/sluicectl" flows --bpffs "$S/bpffs" --node n1 --timeout 2 >"$TMP/flows.out" 2>&1
	grep -F "$W1:8080" "$TMP/flows.out" | grep -v allowed_node | tail -8
	grep -q "allow.* other/outsider .*-> default/web-1" "$TMP/flows.out" &&
		grep -q "deny.* default/client .*-> default/web-1" "$TMP/flows.out" ||
		missing "sluicectl flows lines for the allowed and the denied flow"
	run k delete networkpolicy default-deny-ingress web-allow-from-other
else
	echo "(skipped: needs Ready pods, see MISSING above)"
fi

step "The lab as sluicectl lab status sees it"
lab status
