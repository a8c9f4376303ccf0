#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Kubernetes API semantics that are easy to get subtly wrong, each one a
# regression test for a bug found in review.
#
#   curl / python3 ──HTTP──▶ sluice-control (127.0.0.1:<free port>)
source "$(dirname "$0")/lib.sh"

start_control --store sqlite --data-dir "$TMP/data" || { not_ok start; finish; }
U=$CONTROL_URL
j() { curl -s -H 'Content-Type: application/json' "$@"; }
code() { curl -s -o "$TMP/body" -w '%{http_code}' -H 'Content-Type: application/json' "$@"; }
mp() { curl -s -o "$TMP/body" -w '%{http_code}' -XPATCH -H 'Content-Type: application/merge-patch+json' "$@"; }

# 0. Replies leave as soon as they are written: with Nagle on, the tail of a
# reply waited for the client's delayed ACK (~40 ms on Linux), which stalled
# one list page in five. Read from the server's own listener and connection.
expect_eq server-sockets-without-nagle "$("$PY" "$ROOT/tests/integration/nodelay.py" "$CONTROL_PID" "${U##*:}")" "listener=1 conn=1"

# 1. A label or status saying "Terminating" does not terminate a namespace.
j -XPOST "$U/api/v1/namespaces/default/configmaps" -d '{"metadata":{"name":"keep"}}' >/dev/null
mp "$U/api/v1/namespaces/default" -d '{"metadata":{"labels":{"phase":"Terminating"}}}' >/dev/null
c=$(code -XPOST "$U/api/v1/namespaces/default/configmaps" -d '{"metadata":{"name":"after-label"}}')
expect_eq ns-label-terminating-does-not-block-creates "$c" 201
j -XPOST "$U/api/v1/namespaces" -d '{"metadata":{"name":"other"}}' >/dev/null
c=$(code -XPUT "$U/api/v1/namespaces/other/status" -d '{"metadata":{"name":"other"},"status":{"phase":"Terminating"}}')
c=$(code -XPOST "$U/api/v1/namespaces/other/configmaps" -d '{"metadata":{"name":"x"}}')
expect_eq ns-status-terminating-does-not-block-creates "$c" 201
stop_control
PIDS=()
start_control --store sqlite --data-dir "$TMP/data" || { not_ok restart; finish; }
U=$CONTROL_URL
expect_eq ns-survives-restart "$(code "$U/api/v1/namespaces/default/configmaps/keep")" 200
expect_eq ns-other-survives-restart "$(code "$U/api/v1/namespaces/other/configmaps/x")" 200

# 2. A Service deleted while another client patches it frees its IP and port.
leaks=0
for i in $(seq 15); do
	j -XPOST "$U/api/v1/namespaces/default/services" -d '{"metadata":{"name":"race"},"spec":{"type":"NodePort","clusterIP":"198.18.129.9","ports":[{"port":80,"nodePort":31999}]}}' >/dev/null
	mp "$U/api/v1/namespaces/default/services/race" -d "{\"metadata\":{\"labels\":{\"i\":\"$i\"}}}" >/dev/null &
	p1=$!
	curl -s -o /dev/null -XDELETE "$U/api/v1/namespaces/default/services/race" &
	p2=$!
	wait "$p1" "$p2"
	# The PATCH may have lost the race (404); the DELETE must have won.
	curl -s -o /dev/null -XDELETE "$U/api/v1/namespaces/default/services/race"
	c=$(code -XPOST "$U/api/v1/namespaces/default/services" -d '{"metadata":{"name":"reuse"},"spec":{"type":"NodePort","clusterIP":"198.18.129.9","ports":[{"port":80,"nodePort":31999}]}}')
	[[ $c == 201 ]] || leaks=$((leaks + 1))
	curl -s -o /dev/null -XDELETE "$U/api/v1/namespaces/default/services/reuse"
done
expect_eq svc-delete-race-frees-ip-and-port "$leaks" 0

# 3. DELETE with a resourceVersion precondition never deletes a newer object.
j -XPOST "$U/api/v1/namespaces/default/configmaps" -d '{"metadata":{"name":"pre"}}' >/dev/null
rv=$(j "$U/api/v1/namespaces/default/configmaps/pre" | jq -r .metadata.resourceVersion)
mp "$U/api/v1/namespaces/default/configmaps/pre" -d '{"data":{"a":"b"}}' >/dev/null
c=$(code -XDELETE "$U/api/v1/namespaces/default/configmaps/pre" -d "{\"preconditions\":{\"resourceVersion\":\"$rv\"}}")
expect_eq delete-stale-precondition-409 "$c" 409
expect_eq delete-stale-precondition-kept "$(code "$U/api/v1/namespaces/default/configmaps/pre")" 200

# 4. Absurd timeoutSeconds does not overflow (the sanitizer build aborts on UB).
c=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$U/api/v1/pods?watch=1&timeoutSeconds=9223372036854775807")
kill -0 "$CONTROL_PID" 2>/dev/null && ok watch-huge-timeout-survives || not_ok watch-huge-timeout-survives "status $c"

# 5. A repeated identical PUT is a no-op (no new revision, no generation bump).
j -XPOST "$U/api/v1/namespaces/default/services" -d '{"metadata":{"name":"same"},"spec":{"ports":[{"port":80}]}}' >/dev/null
body=$(j "$U/api/v1/namespaces/default/services/same")
put='{"metadata":{"name":"same"},"spec":{"ports":[{"port":80}]}}'
j -XPUT "$U/api/v1/namespaces/default/services/same" -d "$put" >/dev/null
after=$(j -XPUT "$U/api/v1/namespaces/default/services/same" -d "$put")
expect_eq put-identical-keeps-rv "$(jq -r .metadata.resourceVersion <<<"$after")" "$(jq -r .metadata.resourceVersion <<<"$body")"
expect_eq put-identical-keeps-generation "$(jq -r .metadata.generation <<<"$after")" 1

# 6. Leaving a watcher's selector: DELETED with the previous state at the new RV.
j -XPOST "$U/api/v1/namespaces/default/configmaps" -d '{"metadata":{"name":"sel","labels":{"app":"x"}}}' >/dev/null
rv=$(j "$U/api/v1/namespaces/default/configmaps?labelSelector=app%3Dx" | jq -r .metadata.resourceVersion)
curl -sN --max-time 3 "$U/api/v1/namespaces/default/configmaps?watch=1&labelSelector=app%3Dx&resourceVersion=$rv" >"$TMP/selw" &
wpid=$!
sleep 0.5
mp "$U/api/v1/namespaces/default/configmaps/sel" -d '{"metadata":{"labels":{"app":"y"}}}' >/dev/null
newrv=$(jq -r .metadata.resourceVersion "$TMP/body")
wait "$wpid"
ev=$(head -1 "$TMP/selw")
expect_eq leave-selector-deleted "$(jq -r .type <<<"$ev")" DELETED
expect_eq leave-selector-previous-labels "$(jq -r .object.metadata.labels.app <<<"$ev")" x
expect_eq leave-selector-new-rv "$(jq -r .object.metadata.resourceVersion <<<"$ev")" "$newrv"

# 7. A watch on a name with a ',' watches nothing else.
out=$(curl -sN --max-time 1 "$U/api/v1/namespaces/default/configmaps/nosuch,x?watch=1")
expect_eq watch-odd-name-matches-nothing "$out" ""

# 8. An initial watch larger than --watch-buffer-bytes is delivered whole.
stop_control
PIDS=()
start_control --store memory --watch-buffer-bytes 65536 || { not_ok restart2; finish; }
U=$CONTROL_URL
pad=$(head -c 2000 /dev/zero | tr '\0' a)
for i in $(seq 120); do
	j -XPOST "$U/api/v1/namespaces/default/configmaps" -d "{\"metadata\":{\"name\":\"big-$i\"},\"data\":{\"p\":\"$pad\"}}" >/dev/null
done
n=$(curl -sN --max-time 3 "$U/api/v1/namespaces/default/configmaps?watch=1&resourceVersion=0" | grep -c '"ADDED"')
expect_eq initial-watch-larger-than-buffer-complete "$n" 120

# 9. A continue token from another namespace is refused.
tok=$(j "$U/api/v1/namespaces/default/configmaps?limit=5" | jq -r .metadata.continue)
c=$(code "$U/api/v1/namespaces/kube-system/configmaps?limit=5&continue=$tok")
expect_eq continue-other-namespace-400 "$c" 400

grep -q 'AddressSanitizer\|runtime error' "$TMP/control.log" && not_ok server-log-clean "$(grep -m3 -A3 'AddressSanitizer\|runtime error' "$TMP/control.log")" || ok server-log-clean
finish
