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
if [[ -z ${SLUICE_IN_MNTNS:-} ]]; then
	# A private mount namespace: the demo's bpffs is mounted and pinned here
	# only, so nothing is left on the host.
	exec env SLUICE_IN_MNTNS=1 unshare --mount --propagation private bash "$0" "$@"
fi
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=$ROOT/build/bin
KUBECTL=$ROOT/build/deps/kubectl-1.20/usr/bin/kubectl
TMP=$(mktemp -d /tmp/sluice-demo.XXXXXX)
PIDS=()
NS=sl-demo-$$
CG=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/self/mounts)/sluice-demo-$$
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
	[[ -d $TMP/bpffs/sluice ]] && "$BIN/sluice-agent" --node-name node-a --bpffs "$TMP/bpffs" \
		--cleanup >/dev/null 2>&1
	if [[ -d $CG ]]; then
		while read -r p; do kill -9 "$p" 2>/dev/null; done <"$CG/cgroup.procs"
		sleep 0.1
		rmdir "$CG" 2>/dev/null
	fi
	ip netns del "$NS" 2>/dev/null
	umount "$TMP/bpffs" 2>/dev/null
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

step "The datapath: sluice-agent programs eBPF service load balancing for node-a"
cat <<'TOPO'
  host: sluice-control, sluice-agent --node-name node-a (maps pinned in a private bpffs)
  netns sl-demo (node-a, no route anywhere): node address 198.18.0.10,
        three web backends on 198.18.1.1-3:8080, a client in node-a's cgroup
TOPO
PY=$(command -v /usr/bin/python3 || command -v python3)
mkdir -p "$TMP/bpffs" && mount -t bpf bpf "$TMP/bpffs"
mkdir "$CG"
ip netns add "$NS"
ip -n "$NS" link set lo up
for a in 198.18.0.10 198.18.1.1 198.18.1.2 198.18.1.3; do ip -n "$NS" addr add "$a/32" dev lo; done
for i in 1 2 3; do
	mkdir -p "$TMP/www$i" && echo "hello from backend $i" >"$TMP/www$i/index.html"
	ip netns exec "$NS" "$PY" -m http.server 8080 --bind "198.18.1.$i" --directory "$TMP/www$i" \
		>/dev/null 2>&1 &
	PIDS+=("$!")
done
"$BIN/sluice-agent" --node-name node-a --server "$URL" --bpffs "$TMP/bpffs" --cgroup-root "$CG" \
	--metrics-listen "" --log-level warn >>"$TMP/agent.log" 2>&1 &
PIDS+=("$!")
in_node() { bash -c 'echo $$ >"$0/cgroup.procs" && exec ip netns exec "$1" "${@:2}"' "$CG" "$NS" "$@"; }
cat >"$TMP/node.yaml" <<'Y'
apiVersion: v1
kind: Node
metadata: {name: node-a}
status: {addresses: [{type: InternalIP, address: 198.18.0.10}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-x1, namespace: shop, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
ports: [{name: http, port: 8080, protocol: TCP}]
endpoints:
- {addresses: [198.18.1.1], conditions: {ready: true}, nodeName: node-a}
- {addresses: [198.18.1.2], conditions: {ready: true}, nodeName: node-a}
- {addresses: [198.18.1.3], conditions: {ready: true}, nodeName: node-a}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-nodeport-x1, namespace: shop, labels: {kubernetes.io/service-name: web-nodeport}}
addressType: IPv4
ports: [{port: 8080, protocol: TCP}]
endpoints:
- {addresses: [198.18.1.3], conditions: {ready: true}, nodeName: node-a}
Y
run k apply -f "$TMP/node.yaml" --validate=false
vip=$(k get svc web -n shop -o jsonpath='{.spec.clusterIP}')
np=$(k get svc web-nodeport -n shop -o jsonpath='{.spec.ports[0].nodePort}')
for _ in $(seq 100); do in_node curl -s --max-time 1 "http://$vip/" >/dev/null && break; sleep 0.1; done

step "ClusterIP $vip:80, balanced at connect() by the socket hooks"
for _ in 1 2 3 4 5 6; do in_node curl -s --max-time 2 "http://$vip/"; done

step "NodePort $np on the node address 198.18.0.10"
in_node curl -s --max-time 2 "http://198.18.0.10:$np/"

step "What the agent programmed (sluicectl joins the pinned maps)"
run "$BIN/sluicectl" --bpffs "$TMP/bpffs" --node node-a service list
run "$BIN/sluicectl" --bpffs "$TMP/bpffs" --node node-a backend list

step "The same maps through bpftool (named fields from BTF)"
bpftool map dump pinned "$TMP/bpffs/sluice/node-a/sl_svc4_v1" | head -24

step "Scale down: remove backend 3; new connections avoid it at once"
k patch endpointslice web-x1 -n shop --type=json \
	-p '[{"op":"remove","path":"/endpoints/2"}]' >/dev/null
sleep 0.3
for _ in 1 2 3 4 5 6; do in_node curl -s --max-time 2 "http://$vip/"; done

step "No endpoints: connect() is refused at once (no timeout)"
k patch endpointslice web-nodeport-x1 -n shop --type=merge -p '{"endpoints":[]}' >/dev/null
sleep 0.3
in_node curl -sS --max-time 5 "http://198.18.0.10:$np/" 2>&1 | head -1

step "Not built yet"
echo "The CNI plugin and pods on nodes, cluster DNS and NetworkPolicy enforcement are the"
echo "next issues; see README.md for the status of each part."
