#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# sluicectl against a live agent: Services and EndpointSlices written to the
# API server are programmed by sluice-agent, and `sluicectl service list`,
# `backend list`, `conntrack list` and `counters` show them, in text and
# (parsed with jq) JSON.
#
#   host netns                                 netns sl-insp-<pid> (only lo)
#   ┌──────────────────────────────┐           ┌─────────────────────────────────┐
#   │ sluice-control 127.0.0.1:P   │           │ lo: 198.18.0.10 (node address)  │
#   │ sluice-agent --node-name     │  maps +   │     198.18.1.1-3 (backends,     │
#   │   node-a --cgroup-root CG ───┼─ cgroup ─▶│      python http.server :8080)  │
#   │   --bpffs TMP/bpffs          │  hooks    │ curl in cgroup CG → ClusterIP   │
#   │ sluicectl --bpffs TMP/bpffs  │◀─ reads ──│   198.18.128.50:80              │
#   └──────────────────────────────┘  pinned   └─────────────────────────────────┘
#                                     maps
# Runs in a private mount namespace with its own bpffs: nothing is pinned on
# the host, and everything is torn down on exit.
if [[ -z ${SLUICE_IN_MNTNS:-} ]]; then
	exec env SLUICE_IN_MNTNS=1 unshare --mount --propagation private bash "$0" "$@"
fi
source "$(dirname "$0")/lib.sh"

NS=sl-insp-$$
CGROOT=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/self/mounts)
CG=$CGROOT/sluice-test-insp-$$
BPFFS=$TMP/bpffs
mkdir -p "$BPFFS"
mount -t bpf bpf "$BPFFS" || { not_ok mount-bpffs; finish; }

insp_cleanup_all() {
	if [[ -n ${AGENT_PID:-} ]]; then
		kill -9 "$AGENT_PID" 2>/dev/null
		wait "$AGENT_PID" 2>/dev/null
	fi
	"$BIN/sluice-agent" --node-name node-a --bpffs "$BPFFS" --cleanup >/dev/null 2>&1
	if [[ -d $CG ]]; then
		while read -r p; do kill -9 "$p" 2>/dev/null; done <"$CG/cgroup.procs"
		sleep 0.1
		rmdir "$CG" 2>/dev/null
	fi
	ip netns del "$NS" 2>/dev/null
	umount "$BPFFS" 2>/dev/null
	cleanup
}
trap insp_cleanup_all EXIT

mkdir "$CG" || { not_ok make-cgroup; finish; }
ip netns add "$NS"
ip -n "$NS" link set lo up
for a in 198.18.0.10 198.18.1.1 198.18.1.2 198.18.1.3; do ip -n "$NS" addr add "$a/32" dev lo; done
for i in 1 2 3; do
	mkdir -p "$TMP/www$i"
	echo "b$i" >"$TMP/www$i/id"
	ip netns exec "$NS" python3 -m http.server 8080 --bind "198.18.1.$i" --directory "$TMP/www$i" \
		>/dev/null 2>&1 &
	PIDS+=("$!")
done

in_node() { bash -c 'echo $$ >"$0/cgroup.procs" && exec ip netns exec "$1" "${@:2}"' "$CG" "$NS" "$@"; }
get() { in_node curl -s --max-time 2 "$@"; }
ctl() { "$BIN/sluicectl" --bpffs "$BPFFS" --node node-a "$@"; }

start_control --store memory || { not_ok start-control; finish; }
U=$CONTROL_URL
j() { curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' "$@"; }

"$BIN/sluice-agent" --node-name node-a --server "$U" --bpffs "$BPFFS" --cgroup-root "$CG" \
	--metrics-listen '' --log-level info >>"$TMP/agent.log" 2>&1 &
AGENT_PID=$!
PIDS+=("$AGENT_PID")

j -XPOST "$U/api/v1/nodes" -d '{"metadata":{"name":"node-a"},"status":{"addresses":[{"type":"InternalIP","address":"198.18.0.10"}]}}' >/dev/null
j -XPOST "$U/api/v1/namespaces/default/services" -d '{"metadata":{"name":"web"},"spec":{"clusterIP":"198.18.128.50","selector":{"app":"web"},"ports":[{"name":"http","port":80,"targetPort":8080}]}}' >/dev/null
slice() { # slice SERVICE NAME ENDPOINTS_JSON
	local body="{\"apiVersion\":\"discovery.k8s.io/v1\",\"kind\":\"EndpointSlice\",\"metadata\":{\"name\":\"$2\",\"namespace\":\"default\",\"labels\":{\"kubernetes.io/service-name\":\"$1\"}},\"addressType\":\"IPv4\",\"ports\":[{\"name\":\"http\",\"port\":8080,\"protocol\":\"TCP\"}],\"endpoints\":$3}"
	if [[ $(j "$U/apis/discovery.k8s.io/v1/namespaces/default/endpointslices/$2") == 200 ]]; then
		j -XPUT "$U/apis/discovery.k8s.io/v1/namespaces/default/endpointslices/$2" -d "$body" >/dev/null
	else
		j -XPOST "$U/apis/discovery.k8s.io/v1/namespaces/default/endpointslices" -d "$body" >/dev/null
	fi
}
ep() { echo "{\"addresses\":[\"198.18.1.$1\"],\"conditions\":{\"ready\":true},\"nodeName\":\"node-a\"}"; }
slice web web-1 "[$(ep 1),$(ep 2),$(ep 3)]"

# Every backend listening first (three python3 servers: on a loaded machine one of them
# may still be starting when another already answers, and a request the socket LB sends to
# it is refused), then the agent's programming (traffic flows = maps written).
for i in 1 2 3; do
	for _ in $(seq 100); do
		[[ $(ip netns exec "$NS" curl -s --max-time 1 "http://198.18.1.$i:8080/id") == "b$i" ]] && break
		sleep 0.1
	done
done
got=
for _ in $(seq 100); do
	got=$(get http://198.18.128.50/id)
	[[ $got == b? ]] && break
	sleep 0.1
done
expect_match service-programmed "$got" '^b[123]$'

# --- service list, text ----------------------------------------------------------------
out=$(ctl service list 2>&1)
rc=$?
expect_eq service-list-exit-0 "$rc" 0
expect_match service-list-header "$(head -1 <<<"$out")" '^ID +FRONTEND +SCOPE +TYPE +BACKENDS$'
vip_line=$(grep -E '198\.18\.128\.50:80/TCP' <<<"$out")
expect_match service-list-vip-line "$vip_line" \
	'^[0-9]+ +198\.18\.128\.50:80/TCP +ext +ClusterIP +[0-9]+ => 198\.18\.1\.[123]:8080/TCP \(active\)$'
# The VIP's block: its line plus continuation lines (indented) until the next entry.
block=$(awk '/198\.18\.128\.50:80\/TCP/ { on = 1; print; next } on && /^ / { print; next } { on = 0 }' <<<"$out")
expect_eq service-list-three-backends "$(grep -c '=> 198\.18\.1\.[123]:8080/TCP (active)' <<<"$block")" 3
expect_eq service-list-backend-addrs \
	"$(grep -oE '198\.18\.1\.[123]:8080' <<<"$block" | sort | tr '\n' ' ')" \
	"198.18.1.1:8080 198.18.1.2:8080 198.18.1.3:8080 "

# --- service list, JSON (same data) ------------------------------------------------------
json=$(ctl -o json service list)
check service-list-json-parses jq -e 'type == "array"' <<<"$json"
vip='.[] | select(.frontend.address == "198.18.128.50" and .frontend.port == 80)'
expect_eq json-vip-protocol "$(jq -r "$vip | .frontend.protocol" <<<"$json")" TCP
expect_eq json-vip-scope "$(jq -r "$vip | .scope" <<<"$json")" ext
expect_eq json-vip-flags "$(jq -c "$vip | .flags" <<<"$json")" '["ClusterIP"]'
expect_eq json-vip-backends "$(jq -r "[$vip | .backends[] | \"\(.address):\(.port)/\(.state)\"] | sort | join(\" \")" <<<"$json")" \
	"198.18.1.1:8080/active 198.18.1.2:8080/active 198.18.1.3:8080/active"
expect_eq json-id-matches-text "$(jq -r "$vip | .id" <<<"$json")" "$(awk '{ print $1 }' <<<"$vip_line")"
expect_eq json-backends-local "$(jq -r "[$vip | .backends[].local] | unique | join(\",\")" <<<"$json")" true

# Without --node: the only node pinned is picked.
expect_eq node-auto-selected "$("$BIN/sluicectl" --bpffs "$BPFFS" -o json service list | jq -r "$vip | .id")" \
	"$(jq -r "$vip | .id" <<<"$json")"

# --- scale down: service loses a backend, backend list shows it gone --------------------
slice web web-1 "[$(ep 1),$(ep 2)]"
for _ in $(seq 50); do
	[[ $(ctl -o json service list | jq "$vip | .backends | length") == 2 ]] && break
	sleep 0.1
done
json=$(ctl -o json service list)
expect_eq scale-down-service-list "$(jq -r "[$vip | .backends[].address] | sort | join(\" \")" <<<"$json")" \
	"198.18.1.1 198.18.1.2"
out=$(ctl backend list)
expect_match backend-list-header "$(head -1 <<<"$out")" '^ID +BACKEND +STATE +NODE$'
expect_match backend-list-active "$out" $'(^|\n)[0-9]+ +198\\.18\\.1\\.1:8080/TCP +active +local(\n|$)'
expect_match backend-list-gone "$out" $'(^|\n)[0-9]+ +198\\.18\\.1\\.3:8080/TCP +gone +local(\n|$)'
bj=$(ctl -o json backend list)
expect_eq backend-list-json-states \
	"$(jq -r '[.[] | select(.address | startswith("198.18.1.")) | "\(.address)=\(.state)"] | sort | join(" ")' <<<"$bj")" \
	"198.18.1.1=active 198.18.1.2=active 198.18.1.3=gone"

# --- NodePort frontend -------------------------------------------------------------------
j -XPOST "$U/api/v1/namespaces/default/services" -d '{"metadata":{"name":"web-np"},"spec":{"type":"NodePort","selector":{"app":"web"},"ports":[{"name":"http","port":80,"targetPort":8080,"nodePort":30080}]}}' >/dev/null
slice web-np web-np-1 "[$(ep 2)]"
for _ in $(seq 50); do [[ $(get http://198.18.0.10:30080/id) == b2 ]] && break; sleep 0.1; done
out=$(ctl service list)
expect_match nodeport-line "$out" \
	$'(^|\n)[0-9]+ +0\\.0\\.0\\.0:30080/TCP +ext +NodePort +[0-9]+ => 198\\.18\\.1\\.2:8080/TCP \\(active\\)(\n|$)'
expect_eq nodeport-json-flags \
	"$(ctl -o json service list | jq -c '.[] | select(.frontend.port == 30080) | .flags')" '["NodePort"]'

# --- counters ------------------------------------------------------------------------------
for _ in $(seq 5); do get http://198.18.128.50/id >/dev/null; done
out=$(ctl counters)
expect_match counters-header "$(head -1 <<<"$out")" '^REASON +SOCKET-LB'
ok_n=$(ctl -o json counters | jq '.[] | select(.reason == "ok") | .socket_lb')
[[ ${ok_n:-0} -ge 5 ]] && ok counters-ok-translations || not_ok counters-ok-translations "ok=$ok_n"

# --- conntrack: without --devices the tc path is not loaded: explained, not an error --------
out=$(ctl conntrack list 2>&1)
rc=$?
expect_eq conntrack-exit-0 "$rc" 0
if [[ $out == *"no conntrack"* || $out == PROTO* ]]; then ok conntrack-explained; else not_ok conntrack-explained "$out"; fi
check conntrack-json-array bash -c "'$BIN/sluicectl' --bpffs '$BPFFS' --node node-a -o json conntrack list 2>/dev/null | jq -e 'type == \"array\"'"

# --- bad input: named, exit codes ---------------------------------------------------------------
err=$(ctl frobnicate list 2>&1)
rc=$?
expect_eq bad-command-exit-2 "$rc" 2
expect_match bad-command-named "$err" "unknown command 'frobnicate'"
err=$(ctl -o yaml service list 2>&1)
expect_match bad-output-format-named "$err" "-o 'yaml': accepted values are text, json"
err=$("$BIN/sluicectl" --bpffs "$BPFFS" --node node-zz service list 2>&1)
rc=$?
expect_eq unknown-node-exit-1 "$rc" 1
expect_match unknown-node-named "$err" "node 'node-zz': nothing pinned"

# A sample of what an operator sees, for the log.
ctl service list | sed 's/^/    | /'
grep -q 'AddressSanitizer\|runtime error' "$TMP/agent.log" && not_ok agent-log-clean "$(grep -m3 -A5 'AddressSanitizer\|runtime error' "$TMP/agent.log")" || ok agent-log-clean
finish
