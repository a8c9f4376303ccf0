#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# NetworkPolicy across an agent crash and restart (issue 6), on a 2-node lab. What
# docs/datapath.md promises: maps are pinned and programs stay attached while the agent is
# down (fail-static: the last policy keeps being enforced, neither opened nor emptied); a
# restarted agent resyncs and applies what changed meanwhile. What docs/lab.md adds: a
# restarted agent tears down and restarts its node's pods.
#
#  n1: prod/client (team=prod), qa/client (team=qa)     n2: prod/web (app=web; TCP echo 9000)
#  policy prod/allow-prod: web admits namespace prod only; qa is denied by every policy here.
#
# 1. an established TCP echo connection prod/client -> prod/web carries a line every 0.2 s
#    and qa/client tries new connections to web all along, both for the whole test;
# 2. SIGKILL n2's agent (which enforces web's ingress): the established connection keeps
#    working, new prod connections are allowed, qa stays denied;
# 3. while it is down, allow-prod is replaced by allow-dev (admits namespace dev, which
#    has no pods): nothing changes until the agent is back (fail-static);
# 4. restart the agent with its old command line: web is restarted (docs/lab.md) and the new
#    policy is enforced: prod/client now denied; qa never got through at any point.
if [[ -z ${SLUICE_IN_MNTNS:-} ]]; then
	exec env SLUICE_IN_MNTNS=1 unshare --mount --propagation private bash "$0" "$@"
fi
source "$(dirname "$0")/lib.sh"

L=nk$$
LAB=(env SLUICE_LAB_BIN="$BIN" bash "$ROOT/tools/lab/lab.sh")
S=/run/sluice-lab/$L
PROBE=$ROOT/tests/netpol-recipes/probe.py
PY=/usr/bin/python3

lab_cleanup() {
	local p
	for p in "${LOOP_PIDS[@]}"; do kill "$p" 2>/dev/null; done
	LAB_LOG_ARCHIVE=$TMP/logs LAB_QUIET=1 LAB_STOP_TIMEOUT=2 "${LAB[@]}" down --name "$L" \
		>/dev/null 2>&1
	cleanup
}
LOOP_PIDS=()
trap lab_cleanup EXIT

until_ok() {
	local t=$1 i
	shift
	for ((i = 0; i < t * 4; i++)); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.25
	done
	"$@" >/dev/null 2>&1
}

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
pod_ready() {
	[[ $(kc -n "${1%/*}" get pod "${1#*/}" -o jsonpath='{range .status.conditions[?(@.type=="Ready")]}{.status}{end}') == True ]]
}
if until_ok 30 node_ready n1 && until_ok 10 node_ready n2; then ok nodes-ready; else
	not_ok nodes-ready "$(kc get nodes 2>&1)"
	finish
fi

pod() { # NS NAME NODE APP
	cat <<Y
apiVersion: v1
kind: Pod
metadata: {namespace: $1, name: $2, labels: {app: $4}}
spec:
  nodeName: $3
  terminationGracePeriodSeconds: 1
  containers:
  - name: echo
    image: sluice/echo-server
    command: ["$BIN/echo-server", "--name", "$1/$2", "--http", "8080", "--tcp", "9000", "--udp", "0"]
    readinessProbe:
      httpGet: {path: /ready, port: 8080}
      periodSeconds: 1
---
Y
}
{
	for n in prod qa dev; do
		printf 'apiVersion: v1\nkind: Namespace\nmetadata: {name: %s, labels: {team: %s}}\n---\n' "$n" "$n"
	done
	pod prod web n2 web
	pod prod client n1 client
	pod qa client n1 client
	cat <<'Y'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {namespace: prod, name: allow-prod}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress:
  - from: [{namespaceSelector: {matchLabels: {team: prod}}}]
Y
} | kc apply --validate=false -f - >"$TMP/kc.out" 2>&1 || not_ok apply "$(cat "$TMP/kc.out")"
if until_ok 90 pod_ready prod/web && until_ok 30 pod_ready prod/client &&
	until_ok 30 pod_ready qa/client; then ok pods-ready; else
	not_ok pods-ready "$(kc get pods -A -o wide 2>&1)"
	finish
fi
netns_of() { echo "/run/netns/sl-$(kc -n "${1%/*}" get pod "${1#*/}" -o jsonpath='{.metadata.uid}')"; }
ip_of() { kc -n "${1%/*}" get pod "${1#*/}" -o jsonpath='{.status.podIP}'; }
PC=$(netns_of prod/client) QC=$(netns_of qa/client) WEB=$(ip_of prod/web)
probe() { nsenter --net="$1" "$PY" "$PROBE" tcp "$2" 9000 1 2>&1 | tail -1; }
# expect_probe NAME NETNS VERDICT_REGEX, with up to 10 s for a change to take effect
expect_probe() {
	local out i
	for ((i = 0; i < 20; i++)); do
		out=$(probe "$2" "$WEB")
		[[ $out =~ $3 ]] && break
		sleep 0.5
	done
	expect_match "$1" "$out" "$3"
}
expect_probe policy-prod-allowed "$PC" '^ok pod=prod/web '
expect_probe policy-qa-denied "$QC" '^dropped$'

# --- the loops that run through everything -----------------------------------------------
# Established: one connection, a line every 0.2 s; logs "ok N" per echoed line or "fail WHY"
# once (then exits).
nsenter --net="$PC" "$PY" - "$WEB" >"$TMP/est.log" 2>&1 <<'PYEOF' &
import socket, sys, time
s = socket.create_connection((sys.argv[1], 9000), timeout=2)
s.settimeout(2)
n = 0
f = s.makefile("rb")
while True:
    n += 1
    try:
        s.sendall(b"line %d\n" % n)
        r = f.readline()
    except OSError as e:
        print("fail %d %s" % (n, e), flush=True)
        break
    if not r:
        print("fail %d closed" % n, flush=True)
        break
    print("ok %d %.3f" % (n, time.time()), flush=True)
    time.sleep(0.2)
PYEOF
LOOP_PIDS+=($!)
# Denied: qa/client, a new connection (0.5 s limit) every 0.3 s to web's address (re-read from the file
# web.ip, so the loop follows web when the restarted agent restarts it).
echo "$WEB" >"$TMP/web.ip"
(
	while :; do
		ip=$(cat "$TMP/web.ip")
		echo "$(date +%s.%N) $ip $(nsenter --net="$QC" "$PY" "$PROBE" tcp "$ip" 9000 0.5 2>&1 | tail -1)"
		sleep 0.3
	done
) >"$TMP/deny.log" 2>&1 &
LOOP_PIDS+=($!)
est_count() { grep -c '^ok' "$TMP/est.log"; }
sleep 2
expect_match established-before "$(est_count)" '^[1-9][0-9]*$'

# --- SIGKILL n2's agent ------------------------------------------------------------------
read -r apid _ <"$S/pids/agent-n2.pid"
mapfile -d '' ACMD <"/proc/$apid/cmdline"
kill -KILL "$apid"
until_ok 5 bash -c "! kill -0 $apid 2>/dev/null"
if kill -0 "$apid" 2>/dev/null; then not_ok agent-killed "pid $apid alive"; else ok agent-killed; fi
n0=$(est_count)
sleep 3
n1=$(est_count)
expect_match agent-down-established-keeps-working "$((n1 - n0)) $(grep -c fail "$TMP/est.log")" \
	'^([5-9]|[1-9][0-9]+) 0$'
expect_eq agent-down-new-prod-allowed "$(probe "$PC" "$WEB" | cut -d' ' -f1-2)" "ok pod=prod/web"
expect_eq agent-down-qa-denied "$(probe "$QC" "$WEB")" dropped

# --- change the policy while the agent is down ------------------------------------------
kc -n prod delete networkpolicy allow-prod >/dev/null 2>&1 || not_ok delete-allow-prod
kc apply --validate=false -f - >"$TMP/kc.out" 2>&1 <<'Y' || not_ok apply-allow-dev "$(cat "$TMP/kc.out")"
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {namespace: prod, name: allow-dev}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress:
  - from: [{namespaceSelector: {matchLabels: {team: dev}}}]
Y
sleep 2
# Fail-static: the pinned maps still hold allow-prod until an agent rewrites them.
expect_eq agent-down-change-not-applied-yet "$(probe "$PC" "$WEB" | cut -d' ' -f1-2)" \
	"ok pod=prod/web"
expect_eq agent-down-change-qa-still-denied "$(probe "$QC" "$WEB")" dropped
n2=$(est_count)
expect_match agent-down-established-still-working "$((n2 - n1)) $(grep -c fail "$TMP/est.log")" \
	'^([5-9]|[1-9][0-9]+) 0$'

# --- restart it with the same command line ----------------------------------------------
# (the recorded process is sluice-agent itself: nsenter exec'd it, so its cmdline has no netns)
setsid nsenter --net="/run/netns/$L-n2" "${ACMD[@]}" </dev/null >>"$S/logs/agent-n2.log" 2>&1 &
npid=$!
stat=$(cat "/proc/$npid/stat")
stat=${stat##*) }
read -ra st <<<"$stat"
echo "$npid ${st[19]}" >"$S/pids/agent-n2.pid" # lab down stops it like the original
t_restart=$(date +%s.%N)
sleep 1
kill -0 "$npid" 2>/dev/null && ok agent-restarted || not_ok agent-restarted "$(tail -n 5 "$S/logs/agent-n2.log")"
# The restarted agent restarts web (docs/lab.md); wait until it is Ready again.
web_back() { [[ $(kc -n prod get pod web -o jsonpath='{.status.containerStatuses[0].restartCount}') -ge 1 ]] && pod_ready prod/web; }
if until_ok 60 web_back; then ok web-restarted-ready; else
	not_ok web-restarted-ready "$(kc -n prod get pod web -o yaml 2>&1 | tail -n 20)"
fi
WEB=$(ip_of prod/web)
echo "$WEB" >"$TMP/web.ip"
expect_probe after-restart-change-applied-prod-denied "$PC" '^dropped$'
expect_probe after-restart-qa-still-denied "$QC" '^dropped$'
echo "# established connection: $(grep -c '^ok' "$TMP/est.log") lines echoed, then: $(grep fail "$TMP/est.log" || echo 'no failure')"
est_fail=$(sed -n 's/^fail \([0-9]*\) .*/\1/p' "$TMP/est.log")
last_ok=$(awk '/^ok/ { t = $3 } END { print t }' "$TMP/est.log")
# It may end only once web was restarted by the new agent, never before the restart.
expect_match established-lasted-until-restart \
	"$("$PY" -c "print('yes' if float('${last_ok:-0}') >= float('$t_restart') or '${est_fail}' == '' else 'no: last echo %.1f s before the restart' % (float('$t_restart') - float('${last_ok:-0}')))")" '^yes'

# let the qa loop run a little more against the restarted web, then stop the loops
sleep 2
for p in "${LOOP_PIDS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
LOOP_PIDS=()
total=$(wc -l <"$TMP/deny.log")
leaks=$(grep -v ' dropped$' "$TMP/deny.log" | grep -v ' unreachable$\| refused$' | head -5)
echo "# qa/client -> prod/web: $total probes across kill, downtime and restart: $(awk '{print $3}' "$TMP/deny.log" | sort | uniq -c | tr '\n' ' ')"
expect_eq qa-never-allowed-throughout "$leaks" ""
expect_match qa-loop-ran "$total" '^([1-9][0-9]+)$'

LAB_LOG_ARCHIVE=$TMP/logs "${LAB[@]}" down --name "$L" >"$TMP/down.out" 2>&1 ||
	not_ok lab-down "$(tail -5 "$TMP/down.out")"
expect_eq daemons-no-sanitizer-reports \
	"$(grep -l -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$TMP"/logs/*.log 2>/dev/null)" ""
finish
