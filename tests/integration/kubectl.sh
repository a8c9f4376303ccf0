#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The real kubectl (Debian's kubernetes-client, v1.20) against sluice-control.
#
#   kubectl ──HTTP/JSON──▶ sluice-control (127.0.0.1:<free port>, memory store)
#
# For Services, Pods, Namespaces, NetworkPolicies and EndpointSlices:
# create -f, apply -f twice (the second is a no-op), get (table and -o json),
# get -w seeing an update and a delete, label, delete.
source "$(dirname "$0")/lib.sh"

[[ -x $KUBECTL ]] || { echo "not ok - $SUITE/kubectl-present (run make deps)"; exit 1; }
start_control --store memory || { not_ok start; finish; }

cat >"$TMP/ns.yaml" <<'Y'
apiVersion: v1
kind: Namespace
metadata:
  name: shop
  labels: {team: web}
Y
cat >"$TMP/svc.yaml" <<'Y'
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: shop
  labels: {app: web}
spec:
  selector: {app: web}
  ports:
  - name: http
    port: 80
    targetPort: 8080
Y
cat >"$TMP/np.yaml" <<'Y'
apiVersion: v1
kind: Service
metadata:
  name: web-np
  namespace: shop
spec:
  type: NodePort
  selector: {app: web}
  ports:
  - port: 80
    targetPort: http
    nodePort: 30080
Y
cat >"$TMP/pod.yaml" <<'Y'
apiVersion: v1
kind: Pod
metadata:
  name: web-1
  namespace: shop
  labels: {app: web}
spec:
  containers:
  - name: echo
    image: sluice/echo
    ports:
    - name: http
      containerPort: 8080
Y
cat >"$TMP/netpol.yaml" <<'Y'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: web-allow-frontend
  namespace: shop
spec:
  podSelector:
    matchLabels: {app: web}
  ingress:
  - from:
    - podSelector:
        matchLabels: {role: frontend}
    ports:
    - port: 8080
      protocol: TCP
Y
cat >"$TMP/eps.yaml" <<'Y'
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-abc12
  namespace: shop
  labels:
    kubernetes.io/service-name: web
addressType: IPv4
ports:
- name: http
  port: 8080
  protocol: TCP
endpoints:
- addresses: ["198.18.1.10"]
  conditions: {ready: true}
  nodeName: node-a
Y

# --- create -f ------------------------------------------------------------
check create-namespace kc create -f "$TMP/ns.yaml" --validate=false
check create-service kc create -f "$TMP/svc.yaml" --validate=false
check create-nodeport-service kc create -f "$TMP/np.yaml" --validate=false
check create-pod kc create -f "$TMP/pod.yaml" --validate=false
check create-networkpolicy kc create -f "$TMP/netpol.yaml" --validate=false
check create-endpointslice kc create -f "$TMP/eps.yaml" --validate=false
out=$(kc create -f "$TMP/svc.yaml" --validate=false 2>&1)
expect_match create-duplicate-refused "$out" 'AlreadyExists.*services "web" already exists'

# --- get (table) ----------------------------------------------------------
out=$(kc get svc -n shop 2>&1)
expect_match get-services-table-header "$out" 'NAME +TYPE +CLUSTER-IP +EXTERNAL-IP +PORT\(S\) +AGE'
expect_match get-services-table-clusterip "$out" 'web +ClusterIP +198\.18\.1[2-4][0-9]\.[0-9]+ +<none> +80/TCP'
expect_match get-services-table-nodeport "$out" 'web-np +NodePort +198\.18\.[0-9.]+ +<none> +80:30080/TCP'
out=$(kc get pods -n shop 2>&1)
expect_match get-pods-table "$out" 'web-1 +0/1 +Pending +0'
out=$(kc get netpol -n shop 2>&1)
expect_match get-netpol-table "$out" 'web-allow-frontend +app=web'
out=$(kc get endpointslices -n shop 2>&1)
expect_match get-endpointslices-table "$out" 'web-abc12 +IPv4 +8080 +198\.18\.1\.10'
out=$(kc get ns 2>&1)
expect_match get-namespaces-table "$out" 'shop +Active'
expect_match get-namespaces-builtin "$out" 'kube-system +Active'
out=$(kc get svc -A 2>&1)
expect_match get-all-namespaces "$out" 'default +kubernetes +ClusterIP +198\.18\.128\.1 '

# --- get -o json ------------------------------------------------------------
out=$(kc get svc web -n shop -o json)
expect_eq get-json-kind "$(jq -r .kind <<<"$out")" Service
expect_eq get-json-targetport "$(jq -r '.spec.ports[0].targetPort' <<<"$out")" 8080
expect_eq get-json-protocol-defaulted "$(jq -r '.spec.ports[0].protocol' <<<"$out")" TCP
expect_match get-json-uid "$(jq -r .metadata.uid <<<"$out")" '^[0-9a-f-]{36}$'
expect_match get-json-rv "$(jq -r .metadata.resourceVersion <<<"$out")" '^[0-9]+$'
out=$(kc get ns shop -o json)
expect_eq namespace-name-label "$(jq -r '.metadata.labels["kubernetes.io/metadata.name"]' <<<"$out")" shop
out=$(kc get netpol web-allow-frontend -n shop -o json)
expect_eq netpol-policytypes-defaulted "$(jq -c .spec.policyTypes <<<"$out")" '["Ingress"]'
out=$(kc get pods -n shop -o name)
expect_eq get-o-name "$out" pod/web-1

# --- apply twice ---------------------------------------------------------------
cat >"$TMP/cm.yaml" <<'Y'
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: shop
data:
  mode: fast
Y
out=$(kc apply -f "$TMP/cm.yaml" --validate=false 2>&1)
expect_match apply-first-creates "$out" 'configmap/settings created'
rv1=$(kc get cm settings -n shop -o jsonpath='{.metadata.resourceVersion}')
out=$(kc apply -f "$TMP/cm.yaml" --validate=false 2>&1)
expect_match apply-second-unchanged "$out" 'configmap/settings unchanged'
rv2=$(kc get cm settings -n shop -o jsonpath='{.metadata.resourceVersion}')
expect_eq apply-second-no-write "$rv2" "$rv1"
# Objects made by create get the last-applied annotation on their first
# apply; from then on apply is a three-way merge and a repeat is a no-op.
for f in svc pod netpol eps; do
	kc apply -f "$TMP/$f.yaml" --validate=false >/dev/null 2>&1
	name=$(awk '/^  name:/{print $2; exit}' "$TMP/$f.yaml")
	kind=$(awk '/^kind:/{print tolower($2); exit}' "$TMP/$f.yaml")
	rv1=$(kc get "$kind" "$name" -n shop -o jsonpath='{.metadata.resourceVersion}')
	out=$(kc apply -f "$TMP/$f.yaml" --validate=false 2>&1)
	expect_match "apply-$f-twice-unchanged" "$out" 'unchanged'
	rv2=$(kc get "$kind" "$name" -n shop -o jsonpath='{.metadata.resourceVersion}')
	expect_eq "apply-$f-twice-no-write" "$rv2" "$rv1"
done
sed -i 's/port: 80$/port: 81/' "$TMP/svc.yaml"
out=$(kc apply -f "$TMP/svc.yaml" --validate=false 2>&1)
expect_match apply-changes-service "$out" 'service/web configured'
expect_eq apply-service-port "$(kc get svc web -n shop -o jsonpath='{.spec.ports[*].port}')" 81

# --- label -------------------------------------------------------------------
check label-pod kc label pod web-1 -n shop tier=backend
expect_eq label-pod-visible "$(kc get pod web-1 -n shop -o jsonpath='{.metadata.labels.tier}')" backend
out=$(kc get pods -n shop -l tier=backend -o name)
expect_eq label-selector-list "$out" pod/web-1
out=$(kc get pods -n shop -l 'tier notin (backend)' -o name)
expect_eq label-selector-notin "$out" ""
check label-service kc label svc web -n shop exposed=yes
check label-netpol kc label netpol web-allow-frontend -n shop audited=true
check label-endpointslice kc label endpointslice web-abc12 -n shop checked=1
check label-namespace kc label ns shop env=test
check label-remove kc label pod web-1 -n shop tier-
expect_eq label-removed "$(kc get pod web-1 -n shop -o jsonpath='{.metadata.labels.tier}')" ""
out=$(kc label pod web-1 -n shop 'bad key=x' 2>&1)
expect_match label-invalid-refused "$out" 'error|invalid|Invalid'

# --- get -w --------------------------------------------------------------------
kc get svc -n shop -w >"$TMP/watch.out" 2>&1 &
WPID=$!
PIDS+=("$WPID")
kc get pods -n shop -w -o json >"$TMP/watchpods.out" 2>&1 &
WPPID=$!
PIDS+=("$WPPID")
sleep 1
kc label svc web -n shop watched=yes >/dev/null
kc annotate pod web-1 -n shop note=hello >/dev/null
kc delete svc web-np -n shop >/dev/null
kc delete pod web-1 -n shop --wait=false >/dev/null
sleep 1
kill "$WPID" "$WPPID" 2>/dev/null
wait "$WPID" "$WPPID" 2>/dev/null
out=$(cat "$TMP/watch.out")
expect_match watch-table-header "$out" 'NAME +TYPE +CLUSTER-IP'
# The Service watch must not carry the Pod changes made meanwhile.
n=$(grep -vcE '^(NAME|web|web-np) ' "$TMP/watch.out")
expect_eq watch-only-own-resource "$n" 0
n=$(grep -c '^web ' "$TMP/watch.out")
[[ $n -ge 2 ]] && ok watch-sees-update || not_ok watch-sees-update "$out"
n=$(grep -c '^web-np ' "$TMP/watch.out")
[[ $n -ge 2 ]] && ok watch-sees-delete || not_ok watch-sees-delete "$out"
n=$(jq -s 'length' "$TMP/watchpods.out" 2>/dev/null)
[[ ${n:-0} -ge 2 ]] && ok watch-json-events || not_ok watch-json-events "$(head -c 400 "$TMP/watchpods.out")"
note=$(jq -rs '.[-1].metadata.annotations.note // empty' "$TMP/watchpods.out" 2>/dev/null)
expect_eq watch-json-sees-annotation "$note" hello

# --- delete ---------------------------------------------------------------------
check delete-netpol kc delete netpol web-allow-frontend -n shop
check delete-endpointslice kc delete -f "$TMP/eps.yaml"
out=$(kc get netpol -n shop 2>&1)
expect_match deleted-netpol-gone "$out" 'No resources found'
out=$(kc delete svc nosuch -n shop 2>&1)
expect_match delete-missing-notfound "$out" 'NotFound.*services "nosuch" not found'
out=$(kc delete ns default 2>&1)
expect_match delete-default-namespace-forbidden "$out" 'Forbidden'
check delete-namespace kc delete ns shop --timeout=20s
out=$(kc get svc -n shop 2>&1)
expect_match namespace-contents-gone "$out" 'No resources found'
out=$(kc get ns shop 2>&1)
expect_match namespace-gone "$out" 'NotFound'

# --- errors kubectl users hit ----------------------------------------------------
cat >"$TMP/bad.yaml" <<'Y'
apiVersion: v1
kind: Service
metadata:
  name: Bad_Name
spec:
  ports:
  - port: 70000
Y
out=$(kc create -f "$TMP/bad.yaml" --validate=false 2>&1)
expect_match invalid-service-422 "$out" 'is invalid'
expect_match invalid-service-names-field "$out" 'spec.ports\[0\].port'
out=$(kc get svc -n nosuchns 2>&1)
expect_match list-empty-namespace "$out" 'No resources found'
out=$(kc create -f "$TMP/svc.yaml" -n nope --validate=false 2>&1)
expect_match create-in-missing-namespace "$out" 'NotFound|not found|does not match'

finish
