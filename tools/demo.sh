#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# make demo: the control plane at work, driven by the real kubectl.
#
#   kubectl ──HTTP──▶ sluice-control (127.0.0.1, SQLite store in a temp dir)
#
# Creates a namespace, Services of every type, a Pod, an EndpointSlice and a
# NetworkPolicy; shows the tables kubectl prints, a watch seeing changes, the
# errors a user gets for bad objects, the restart that keeps everything, and
# the metrics. Everything it starts is stopped and removed at the end.
#
# The node side (eBPF datapath, CNI, DNS, policy) is not built yet; the demo
# says so instead of pretending.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=$ROOT/build/bin
KUBECTL=$ROOT/build/deps/kubectl-1.20/usr/bin/kubectl
TMP=$(mktemp -d /tmp/sluice-demo.XXXXXX)
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
	rm -rf "$TMP"
}
trap cleanup EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
URL=http://127.0.0.1:$port
start() {
	"$BIN/sluice-control" --listen "127.0.0.1:$port" --data-dir "$TMP/data" \
		--service-cidr 198.18.128.0/20 --log-level warn >>"$TMP/control.log" 2>&1 &
	CPID=$!
	PIDS+=("$CPID")
	for _ in $(seq 100); do curl -sf "$URL/readyz" >/dev/null && return 0; sleep 0.05; done
	echo "sluice-control did not become ready:"; cat "$TMP/control.log"; exit 1
}
export KUBECONFIG=$TMP/kubeconfig
cat >"$KUBECONFIG" <<KC
apiVersion: v1
kind: Config
clusters: [{name: sluice, cluster: {server: "$URL"}}]
contexts: [{name: sluice, context: {cluster: sluice, user: sluice}}]
current-context: sluice
users: [{name: sluice, user: {}}]
KC
k() { "$KUBECTL" --cache-dir "$TMP/kcache" "$@"; }

step "Start sluice-control on $URL (SQLite store, service CIDR 198.18.128.0/20)"
start
run curl -s "$URL/version"; echo

step "Built-in namespaces and the kubernetes Service exist from the start"
k get ns
k get svc -A

step "Create an application: namespace, Services, a Pod, an EndpointSlice, a NetworkPolicy"
cat >"$TMP/app.yaml" <<'Y'
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}]
---
apiVersion: v1
kind: Service
metadata: {name: web-nodeport, namespace: shop}
spec:
  type: NodePort
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: web-lb, namespace: shop}
spec:
  type: LoadBalancer
  externalTrafficPolicy: Local
  selector: {app: web}
  ports: [{port: 443, targetPort: 8443}]
---
apiVersion: v1
kind: Service
metadata: {name: web-headless, namespace: shop}
spec:
  clusterIP: None
  selector: {app: web}
  ports: [{port: 80}]
---
apiVersion: v1
kind: Pod
metadata: {name: web-1, namespace: shop, labels: {app: web}}
spec:
  containers: [{name: echo, image: sluice/echo, ports: [{name: http, containerPort: 8080}]}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-x1, namespace: shop, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
ports: [{name: http, port: 8080, protocol: TCP}]
endpoints:
- addresses: [198.18.1.10]
  conditions: {ready: true}
  nodeName: node-a
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web-from-frontend, namespace: shop}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress: [{from: [{podSelector: {matchLabels: {role: frontend}}}], ports: [{port: 8080}]}]
Y
run k apply -f "$TMP/app.yaml" --validate=false

step "kubectl get shows the usual columns (ClusterIPs and NodePorts were allocated)"
run k get svc,pods,endpointslices,networkpolicies -n shop -o wide

step "A watch sees a label change and a delete"
k get svc -n shop -w >"$TMP/watch.out" 2>&1 &
WPID=$!
PIDS+=("$WPID")
sleep 1
run k label svc web -n shop tier=frontend
run k delete svc web-headless -n shop
sleep 1
kill "$WPID" 2>/dev/null
cat "$TMP/watch.out"

step "Bad objects get Kubernetes errors naming the field"
cat >"$TMP/bad.yaml" <<'Y'
apiVersion: v1
kind: Service
metadata: {name: bad, namespace: shop}
spec:
  type: NodePort
  ports: [{port: 80, nodePort: 80}]
Y
run k create -f "$TMP/bad.yaml" --validate=false
run k create -f "$TMP/app.yaml" --validate=false 2>&1 | head -3

step "Restart: everything is still there, at the same resourceVersions"
before=$(k get svc web -n shop -o jsonpath='{.metadata.resourceVersion}')
kill "$CPID"; wait "$CPID" 2>/dev/null
start
after=$(k get svc web -n shop -o jsonpath='{.metadata.resourceVersion}')
echo "service web resourceVersion before restart: $before, after: $after"
run k get svc -n shop

step "Metrics"
curl -s "$URL/metrics" | grep -E '^sluice_(apiserver_objects|store_revision|apiserver_watchers)' | head -20

step "Not built yet"
echo "The eBPF datapath, node agent, CNI plugin, cluster DNS and policy enforcement are the"
echo "next issues; see README.md for the status of each part."
