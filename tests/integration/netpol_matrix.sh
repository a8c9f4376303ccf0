#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The reachability-matrix suite (issue 6), in the style of the upstream e2e tests
# (kubernetes test/e2e/network/netpol): namespaces x, y, z (labelled ns=NAME and, by the
# API server, kubernetes.io/metadata.name=NAME) with pods a, b, c (label pod=NAME) spread over
# the two nodes of ONE lab, each serving TCP and UDP echo on ports 80 and 81 (named
# serve-80-tcp, serve-80-udp, serve-81-tcp, serve-81-udp as upstream). Each case in
# tests/netpol-matrix/ applies policies and compares the FULL 9x9 matrix, for each port and
# protocol it names, to its expected one; on a mismatch it prints the expected, observed and
# comparison tables as upstream does. SCTP is covered by packet fixtures instead
# (tests/unit/test_bpf_policy.c): the lab's echo server speaks TCP and UDP.
#
# Probing: one exec per source pod and matrix (mprobe.py: every destination, port and
# protocol at once, 1 s each), the nine sources in parallel. After a policy or label
# change a matrix that does not match is probed again (new connections each time) for up
# to 15 s before it counts as a failure; a matrix that needed more than one round says so.
#
#   SLUICE_BIN=build/mine/bin tests/integration/netpol_matrix.sh
#   MATRIX_FILTER='0[1-5]|21' ...: only those cases (a regex on the number)
#
# Runs in a private mount namespace: the lab's bpffs and /run/netns mounts exist only here.
if [[ -z ${SLUICE_IN_MNTNS:-} ]]; then
	exec env SLUICE_IN_MNTNS=1 unshare --mount --propagation private bash "$0" "$@"
fi
source "$(dirname "$0")/lib.sh"

L=nm$$
LAB=(env SLUICE_LAB_BIN="$BIN" bash "$ROOT/tools/lab/lab.sh")
S=/run/sluice-lab/$L
CASES=$ROOT/tests/netpol-matrix
PY=/usr/bin/python3
TIMEOUT=${MATRIX_TIMEOUT:-1}
SETTLE_MS=15000

lab_cleanup() {
	LAB_LOG_ARCHIVE=$TMP/logs LAB_QUIET=1 LAB_STOP_TIMEOUT=2 "${LAB[@]}" down --name "$L" \
		>/dev/null 2>&1
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
ms() { echo $(($(date +%s%N) / 1000000)); }

if ! "${LAB[@]}" up --name "$L" --nodes 2 --no-dns >"$TMP/up.out" 2>&1; then
	not_ok lab-up "$(tail -5 "$TMP/up.out")"
	finish
fi
ok lab-up
export KUBECONFIG
KUBECONFIG=$("${LAB[@]}" kubeconfig --name "$L")

node_ready() {
	[[ $(kc get node "$1" -o jsonpath='{range .status.conditions[?(@.type=="Ready")]}{.status}{end}') == True ]]
}
if until_ok 30 node_ready n1 && until_ok 10 node_ready n2; then ok nodes-ready; else
	not_ok nodes-ready "$(kc get nodes 2>&1)"
	finish
fi

# --- the nine pods ------------------------------------------------------------------------
PODS=(x/a x/b x/c y/a y/b y/c z/a z/b z/c)
printf '%s\n' "${PODS[@]}" >"$TMP/pods"
pod_yaml() { # NS NAME NODE: two containers, one per port; readiness on HTTP 8080
	cat <<Y
apiVersion: v1
kind: Pod
metadata: {namespace: "$1", name: "$2", labels: {pod: "$2"}}
spec:
  nodeName: $3
  terminationGracePeriodSeconds: 1
  containers:
  - name: cont-80
    image: sluice/echo-server
    command: ["$BIN/echo-server", "--name", "$1/$2", "--http", "8080", "--tcp", "80", "--udp", "80"]
    ports: [{name: serve-80-tcp, containerPort: 80}, {name: serve-80-udp, containerPort: 80, protocol: UDP}, {name: http, containerPort: 8080}]
    readinessProbe:
      httpGet: {path: /ready, port: 8080}
      periodSeconds: 1
      failureThreshold: 1
  - name: cont-81
    image: sluice/echo-server
    command: ["$BIN/echo-server", "--name", "$1/$2", "--http", "0", "--tcp", "81", "--udp", "81"]
    ports: [{name: serve-81-tcp, containerPort: 81}, {name: serve-81-udp, containerPort: 81, protocol: UDP}]
---
Y
}
{
	i=0
	for n in x y z; do
		printf 'apiVersion: v1\nkind: Namespace\nmetadata: {name: \"%s\", labels: {ns: \"%s\"}}\n---\n' "$n" "$n"
	done
	for p in "${PODS[@]}"; do
		pod_yaml "${p%/*}" "${p#*/}" "n$((i % 2 + 1))" # x/a n1, x/b n2, x/c n1, y/a n2, ...
		i=$((i + 1))
	done
} >"$TMP/pods.yaml"
pod_ready() {
	[[ $(kc -n "${1%/*}" get pod "${1#*/}" -o jsonpath='{range .status.conditions[?(@.type=="Ready")]}{.status}{end}') == True ]]
}
missing=""
if kc apply --validate=false -f "$TMP/pods.yaml" >"$TMP/kc.out" 2>&1; then
	wait_s=90
	for p in "${PODS[@]}"; do
		until_ok "$wait_s" pod_ready "$p" && continue
		missing+=" $p" wait_s=1
	done
else
	missing=" (apply failed: $(cat "$TMP/kc.out"))"
fi
if [[ -z $missing ]]; then ok pods-ready; else
	not_ok pods-ready "not Ready:$missing" "$(tail -n 3 "$S"/logs/agent-n*.log)"
	finish
fi
declare -A IP NETNS
for p in "${PODS[@]}"; do
	read -r IP[$p] uid < <(kc -n "${p%/*}" get pod "${p#*/}" -o jsonpath='{.status.podIP} {.metadata.uid}{"\n"}')
	NETNS[$p]=/run/netns/sl-$uid # docs/lab.md: the pod runtime's netns name
	[[ -e ${NETNS[$p]} ]] || not_ok "netns-$p" "no ${NETNS[$p]}"
done
echo "# pods: $(for p in "${PODS[@]}"; do printf '%s=%s ' "$p" "${IP[$p]}"; done)"

# --- probing and comparing ----------------------------------------------------------------
# probe_all SPECS OUT: every source pod probes every other pod, sources in parallel.
probe_all() {
	local specs=$1 out=$2 src dst args pids=() i=0
	for src in "${PODS[@]}"; do
		args=()
		for dst in "${PODS[@]}"; do
			[[ $dst == "$src" ]] || args+=("$dst=${IP[$dst]}")
		done
		# The pod's netns is all a probe needs (what `lab exec` would join, without its
		# kubectl lookup per call).
		{ nsenter --net="${NETNS[$src]}" "$PY" "$CASES/mprobe.py" "$TIMEOUT" "$specs" "${args[@]}" 2>&1 |
			sed "s|^|$src |"; } >"$TMP/obs.$i" &
		pids+=($!)
		i=$((i + 1))
	done
	wait "${pids[@]}"
	cat "$TMP"/obs.* >"$out"
	rm -f "$TMP"/obs.*
}
SETTLE_UNTIL=0
changed() { SETTLE_UNTIL=$(($(ms) + SETTLE_MS)); }
# check_matrix NAME SPECS RULESFILE: probe until the matrix matches or the settle time after
# the last change is over; one TAP line.
check_matrix() {
	local name=$1 specs=$2 rules=$3 n=0 t0 rc
	t0=$(ms)
	while :; do
		n=$((n + 1))
		probe_all "$specs" "$TMP/observed"
		"$PY" "$CASES/matrix.py" check "$name" "$specs" "$TMP/pods" "$rules" "$TMP/observed" \
			>"$TMP/cmp.out" 2>&1
		rc=$?
		((rc == 0 || rc == 2)) || (($(ms) >= SETTLE_UNTIL)) || { sleep 0.5 && continue; }
		break
	done
	if ((rc == 0)); then
		((n == 1)) || echo "# $name: as expected at round $n, $(($(ms) - t0)) ms after the first"
		ok "$name"
	else
		sed 's/^/    /' "$TMP/cmp.out"
		not_ok "$name" "after $n rounds over $(($(ms) - t0)) ms"
	fi
}
# subst: {{NS/POD}} in a case's YAML is that pod's address.
subst() {
	local p e=()
	for p in "${PODS[@]}"; do e+=(-e "s|{{$p}}|${IP[$p]}|g"); done
	sed "${e[@]}"
}

# run_case FILE: a case is a list of steps (see tests/netpol-matrix/README.md):
#   apply | delete ... end        YAML (with {{NS/POD}} addresses) to kubectl apply / delete
#   kubectl ARGS...               e.g. label a namespace or pod
#   matrix NAME SPECS ... end     expectation rules; probe and compare the full matrix
run_case() {
	local f=$1 c line mode="" buf="" mname="" mspecs="" w
	c=$(basename "$f" .case)
	c=${c%%-*}
	while IFS= read -r line || [[ -n $line ]]; do
		if [[ -n $mode ]]; then
			if [[ $line != end ]]; then
				buf+=$line$'\n'
				continue
			fi
			case $mode in
			apply | delete)
				w=(apply --validate=false)
				[[ $mode == apply ]] || w=(delete)
				if printf '%s' "$buf" | subst | kc "${w[@]}" -f - >"$TMP/kc.out" 2>&1; then
					changed
				else
					not_ok "$c/$mode" "$(cat "$TMP/kc.out")"
				fi
				;;
			matrix)
				printf '%s' "$buf" >"$TMP/rules"
				check_matrix "$c/$mname" "$mspecs" "$TMP/rules"
				;;
			esac
			mode="" buf=""
			continue
		fi
		case $line in
		'' | '#'*) ;;
		apply | delete) mode=$line ;;
		'matrix '*)
			read -r _ mname mspecs <<<"$line"
			mode=matrix
			;;
		'kubectl '*)
			read -ra w <<<"${line#kubectl }"
			if kc "${w[@]}" >"$TMP/kc.out" 2>&1; then changed; else
				not_ok "$c/kubectl" "$line" "$(cat "$TMP/kc.out")"
			fi
			;;
		*) not_ok "$c/syntax" "$(basename "$f"): unknown step '$line'" ;;
		esac
	done <"$f"
	[[ -z $mode ]] || not_ok "$c/syntax" "$(basename "$f"): '$mode' without 'end'"
	# Leave no policy behind for the next case.
	kc delete networkpolicy --all --all-namespaces >"$TMP/kc.out" 2>&1 ||
		not_ok "$c/cleaned" "$(cat "$TMP/kc.out")"
	changed
}

T0=$SECONDS
# Before any policy: everything reaches everything, on both ports and protocols.
printf '' >"$TMP/rules"
check_matrix baseline tcp/80,tcp/81,udp/80,udp/81 "$TMP/rules"

for f in "$CASES"/[0-9]*.case; do
	c=$(basename "$f" .case)
	[[ -z ${MATRIX_FILTER:-} || ${c%%-*} =~ ^(${MATRIX_FILTER})$ ]] || continue
	echo "# case $c ($((SECONDS - T0)) s in): $(sed -n '1s/^# *//p' "$f")"
	run_case "$f"
done

LAB_LOG_ARCHIVE=$TMP/logs "${LAB[@]}" down --name "$L" >"$TMP/down.out" 2>&1 ||
	not_ok lab-down "$(tail -5 "$TMP/down.out")"
expect_eq daemons-no-sanitizer-reports \
	"$(grep -l -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$TMP"/logs/*.log 2>/dev/null)" ""
finish
