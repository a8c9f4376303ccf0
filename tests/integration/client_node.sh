#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# A second, independent client against sluice-control: the official
# JavaScript client @kubernetes/client-node (installed by make deps into
# build/deps/node/node_modules), with a plain-http kubeconfig.
#
#   node tests/clients/list_watch.mjs ──list, Watch, informer──▶ sluice-control
#   curl ──create / patch / delete Service "web"──────────────▶ (127.0.0.1:<free>)
#
# The node script prints one "ok - X" / "not ok - X" line per check into a
# file; this suite turns each expected line into its own check (a missing line
# is a failure), so a crash in node cannot pass silently.
source "$(dirname "$0")/lib.sh"

NODE_MODULES=$ROOT/build/deps/node/node_modules
if ! command -v node >/dev/null || [[ ! -d $NODE_MODULES/@kubernetes/client-node ]]; then
	not_ok client-node-present "node or @kubernetes/client-node missing (run make deps)"
	finish
fi
start_control --store memory || { not_ok start; finish; }
SERVER=$CONTROL_PID
JSON=(-H 'Content-Type: application/json')
# Detail lines under a "not ok" stay indented, so none reads as a result.
indent() { sed 's/^/  /'; }
# req NAME CODE METHOD PATH [curl args]: the request answers CODE.
req() {
	local name=$1 want=$2 m=$3 p=$4 code
	shift 4
	code=$(curl -s -o "$TMP/body" -w '%{http_code}' --max-time 10 -X "$m" "$@" "$CONTROL_URL$p")
	expect_eq "$name" "$code" "$want"
}

req create-namespace 201 POST /api/v1/namespaces "${JSON[@]}" -d '{"metadata":{"name":"shop"}}'
req create-pre-service 201 POST /api/v1/namespaces/shop/services "${JSON[@]}" \
	-d '{"metadata":{"name":"pre"},"spec":{"selector":{"app":"pre"},"ports":[{"port":80,"targetPort":8080}]}}'

# ESM resolves bare imports from the script's own directory, not NODE_PATH:
# run a copy that sits next to a node_modules link.
mkdir -p "$TMP/node"
cp "$ROOT/tests/clients/list_watch.mjs" "$TMP/node/"
ln -s "$NODE_MODULES" "$TMP/node/node_modules"
# client-node 1.x refuses http:// unless the cluster says
# insecure-skip-tls-verify (there is no TLS to skip: it only lifts that check).
sed 's|^    server: |    insecure-skip-tls-verify: true\n    server: |' "$KUBECONFIG" >"$TMP/node/kubeconfig"
(cd "$TMP/node" && exec timeout 40 node list_watch.mjs "$TMP/node/kubeconfig" shop web) >"$TMP/node.out" 2>&1 &
NODE_PID=$!
PIDS+=("$NODE_PID")
for _ in $(seq 300); do
	grep -q '^# ready' "$TMP/node.out" && break
	kill -0 "$NODE_PID" 2>/dev/null || break
	sleep 0.05
done
if grep -q '^# ready' "$TMP/node.out"; then ok node-ready; else not_ok node-ready "$(tail -5 "$TMP/node.out" | indent)"; fi

req curl-create-web 201 POST /api/v1/namespaces/shop/services "${JSON[@]}" \
	-d '{"metadata":{"name":"web","labels":{"stage":"new"}},"spec":{"selector":{"app":"web"},"ports":[{"port":80}]}}'
req curl-patch-web 200 PATCH /api/v1/namespaces/shop/services/web \
	-H 'Content-Type: application/merge-patch+json' -d '{"metadata":{"labels":{"stage":"changed"}}}'
req curl-delete-web 200 DELETE /api/v1/namespaces/shop/services/web

rc=0
wait "$NODE_PID" || rc=$?
expect_eq node-exit-0 "$rc" 0

for c in kubeconfig-plain-http list-services list-resource-version list-typed-port \
	list-typed-timestamp list-cluster-ip list-all-namespaces watch-connected informer-started \
	watch-added watch-modified watch-deleted watch-order watch-modified-carries-label \
	watch-rv-increasing watch-still-open informer-add informer-update informer-delete \
	informer-cache-final informer-no-errors create-configmap read-configmap replace-configmap \
	delete-configmap read-missing-404; do
	if grep -qx "ok - $c" "$TMP/node.out"; then
		ok "node/$c"
	else
		not_ok "node/$c" "$({ grep -- " - $c\( \|$\)" "$TMP/node.out" || echo "no line for $c"; } | indent)"
	fi
done
# Checks the script adds only when something broke (exceptions, its time limit).
extra=$(grep '^not ok - ' "$TMP/node.out" | grep -v -- ' - \(list\|watch\|informer\|kubeconfig\|create\|read\|replace\|delete\)-' || true)
expect_eq node-no-unexpected-failures "$extra" ""

# The server after a foreign client: alive, clean exit, no sanitizer report.
if kill -0 "$SERVER" 2>/dev/null; then ok server-alive; else not_ok server-alive; fi
kill -TERM "$SERVER" 2>/dev/null
rc=0
for _ in $(seq 100); do kill -0 "$SERVER" 2>/dev/null || break; sleep 0.1; done
wait "$SERVER" 2>/dev/null || rc=$?
expect_eq server-exit-0 "$rc" 0
reports=$(grep -E 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error|SUMMARY: ' "$TMP/control.log")
if [[ -z $reports ]]; then ok no-sanitizer-reports; else not_ok no-sanitizer-reports "$(head -30 "$TMP/control.log" | indent)"; fi

finish
