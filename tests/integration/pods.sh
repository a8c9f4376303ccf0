#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The agent's pod runtime (agent/pods*.c) end to end: one sluice-agent
# --run-pods in a node netns runs the pods bound to it, wired by the real
# sluice-cni plugin through the conflist the agent's node part writes once the
# Node has a podCIDR (the plugin calls back into the agent during ADD).
#
#   host netns (private mount ns)          netns sl-pods-<pid> ("the node")
#   ┌─────────────────────────────┐        ┌──────────────────────────────────────┐
#   │ sluice-control 127.0.0.1:P  │        │ lo 127.0.0.1:P2 (control, listen-netns)│
#   │ kubectl / curl              │        │ sluice-agent --run-pods              │
#   └─────────────────────────────┘        │   cgroup CG, bpffs TMP/bpffs         │
#                                          │   veths ──▶ pod netns sl-<uid>       │
#                                          │             198.18.64.0/24           │
#                                          └──────────────────────────────────────┘
# Nothing routes anywhere: the node netns has only lo and the pods' veths.
if [[ -z ${SLUICE_IN_MNTNS:-} ]]; then
	exec env SLUICE_IN_MNTNS=1 unshare --mount --propagation private bash "$0" "$@"
fi
source "$(dirname "$0")/lib.sh"

NS=sl-pods-$$
NODE=node-p$$
CGROOT=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/self/mounts)
CG=$CGROOT/sluice-test-pods-$$
BPFFS=$TMP/bpffs
STATE=$TMP/state
CONF=$TMP/cni-conf
CNIBIN=$TMP/cni-bin
mkdir -p "$BPFFS" "$STATE" "$CONF" "$CNIBIN"
mount -t bpf bpf "$BPFFS" || { not_ok mount-bpffs; finish; }

pods_cleanup_all() {
	[[ -n ${AGENT_PID:-} ]] && kill -9 "$AGENT_PID" 2>/dev/null
	if [[ -d $CG ]]; then
		# Every pod cgroup first, then the node's.
		find "$CG" -mindepth 1 -depth -type d | while read -r d; do
			echo 1 >"$d/cgroup.kill" 2>/dev/null
		done
		echo 1 >"$CG/cgroup.kill" 2>/dev/null
		sleep 0.2
		find "$CG" -mindepth 1 -depth -type d -exec rmdir {} \; 2>/dev/null
		rmdir "$CG" 2>/dev/null
	fi
	# Pod netns this run made (named after pod UIDs, recorded below).
	for f in "$TMP"/uids/*; do
		[[ -e $f ]] || continue
		ip netns del "sl-$(basename "$f")" 2>/dev/null
	done
	ip netns del "$NS" 2>/dev/null
	umount "$BPFFS" 2>/dev/null
	cleanup
}
trap pods_cleanup_all EXIT
mkdir -p "$TMP/uids"

mkdir "$CG" || { not_ok make-cgroup; finish; }
ip netns add "$NS"
ip -n "$NS" link set lo up
ln -s "$BIN/sluice-cni" "$CNIBIN/sluice-cni"

P2=$(free_port)
# No node IPAM controller: the test hands out the podCIDR itself, after checking
# that pods wait for the network while the node has none.
start_control --store memory --listen-netns "/run/netns/$NS=127.0.0.1:$P2" \
	--cluster-cidr 198.18.64.0/18 --controllers endpointslice,endpoints ||
	{ not_ok start-control; finish; }
U=$CONTROL_URL

MPORT=$(free_port)
start_agent() {
	nsenter --net="/run/netns/$NS" "$BIN/sluice-agent" --node-name "$NODE" \
		--server "http://127.0.0.1:$P2" --bpffs "$BPFFS" --cgroup-root "$CG" \
		--metrics-listen "127.0.0.1:$MPORT" --run-pods --state-dir "$STATE" \
		--cni-conf-dir "$CONF" --cni-bin-dir "$CNIBIN" --cluster-dns 198.18.128.10 \
		--node-ip 198.18.0.11 --log-level info >>"$TMP/agent.log" 2>&1 &
	AGENT_PID=$!
	PIDS+=("$AGENT_PID")
}
stop_agent() {
	kill -TERM "$AGENT_PID" 2>/dev/null
	wait "$AGENT_PID" 2>/dev/null
	AGENT_PID=
}

j() { curl -s -H 'Content-Type: application/json' "$@"; }
# pod NAME SPEC_JSON: creates a pod bound to the node.
pod() {
	local out
	# image is required by the API; containers run host binaries whatever it says.
	out=$(jq -c '.spec.containers[].image //= "host"' <<<"{\"metadata\":{\"name\":\"$1\",\"labels\":{\"app\":\"$1\"}},\"spec\":{\"nodeName\":\"$NODE\",\"terminationGracePeriodSeconds\":2,$2}}" |
		j -XPOST "$U/api/v1/namespaces/default/pods" -d @-)
	uid=$(jq -r '.metadata.uid // empty' <<<"$out")
	[[ -n $uid ]] && touch "$TMP/uids/$uid"
	echo "$uid"
}
pod_json() { j "$U/api/v1/namespaces/default/pods/$1"; }
# field POD JQ
field() { pod_json "$1" | jq -r "$2"; }
# wait_for SECONDS POD JQ EXPECTED
wait_for() {
	local end=$((SECONDS + $1)) v
	while ((SECONDS < end)); do
		v=$(field "$2" "$3")
		[[ $v == "$4" ]] && return 0
		sleep 0.2
	done
	return 1
}
in_node() { nsenter --net="/run/netns/$NS" "$@"; }

start_agent

# --- network not ready: no conflist yet -------------------------------------------
uid_a=$(pod web "\"containers\":[{\"name\":\"c\",\"command\":[\"$PY\",\"-m\",\"http.server\",\"8080\"],\"readinessProbe\":{\"httpGet\":{\"path\":\"/ready\",\"port\":\"http\"},\"periodSeconds\":1,\"failureThreshold\":1},\"ports\":[{\"name\":\"http\",\"containerPort\":8080}],\"workingDir\":\"$TMP/www\"}]")
mkdir -p "$TMP/www"
if wait_for 10 web '.status.reason' NetworkNotReady; then ok network-not-ready-reported; else
	not_ok network-not-ready-reported "$(pod_json web | jq -c .status)"; fi
expect_eq network-not-ready-pending "$(field web .status.phase)" Pending
ev=$(j "$U/api/v1/namespaces/default/events" | jq -r '.items[] | select(.involvedObject.name=="web") | .reason' | sort -u | tr '\n' ' ')
expect_match network-not-ready-event "$ev" NetworkNotReady

check no-conflist-without-podcidr test -z "$(ls "$CONF")"
# The node part of the agent writes the conflist (sluice-cni with the agent's
# endpoint socket, which the plugin calls back into during ADD) once the
# Node has a podCIDR.
for _ in $(seq 50); do [[ $(j "$U/api/v1/nodes/$NODE" | jq -r .metadata.name) == "$NODE" ]] && break; sleep 0.1; done
curl -s -XPATCH -H 'Content-Type: application/merge-patch+json' "$U/api/v1/nodes/$NODE" \
	-d '{"spec":{"podCIDR":"198.18.64.0/24","podCIDRs":["198.18.64.0/24"]}}' >/dev/null
for _ in $(seq 50); do [[ -e $CONF/10-sluice.conflist ]] && break; sleep 0.1; done
check node-wrote-conflist grep -q agentSocket "$CONF/10-sluice.conflist"

# --- running with an IP; readiness gates Ready ---------------------------------------
if wait_for 15 web .status.phase Running; then ok pod-running; else
	not_ok pod-running "$(pod_json web | jq -c .status)" "$(tail -5 "$TMP/agent.log")"; fi
ip_a=$(field web .status.podIP)
expect_match pod-ip-from-cni "$ip_a" '^198\.18\.64\.[0-9]+$'
expect_eq pod-ips "$(field web '.status.podIPs[0].ip')" "$ip_a"
expect_eq host-ip "$(field web .status.hostIP)" 198.18.0.11
check netns-exists test -e "/run/netns/sl-$uid_a"
check cgroup-per-pod test -d "$CG/pods/$uid_a/c"
sleep 2.5
expect_eq readiness-failing-not-ready "$(field web '.status.conditions[] | select(.type=="Ready") | .status')" False
echo ok >"$TMP/www/ready"
if wait_for 10 web '.status.conditions[] | select(.type=="Ready") | .status' True; then ok readiness-gates-ready; else
	not_ok readiness-gates-ready "$(pod_json web | jq -c .status)"; fi
expect_eq container-ready "$(field web '.status.containerStatuses[0].ready')" true
# Probes pass every second; nothing changes, so nothing is written.
rv1=$(field web .metadata.resourceVersion)
sleep 3
expect_eq status-written-only-on-change "$(field web .metadata.resourceVersion)" "$rv1"
check pod-reachable-from-node in_node curl -sf --max-time 2 "http://$ip_a:8080/ready"
rm "$TMP/www/ready"
if wait_for 10 web '.status.conditions[] | select(.type=="Ready") | .status' False; then ok readiness-failure-unready; else
	not_ok readiness-failure-unready "$(pod_json web | jq -c .status.conditions)"; fi
lt=$(field web '.status.conditions[] | select(.type=="PodScheduled") | .lastTransitionTime')
expect_match conditions-have-transition-time "$lt" '^20[0-9][0-9]-'

# --- environment, resolv.conf, hosts, hostname, logs ----------------------------------
uid_e=$(pod envy "\"hostname\":\"envhost\",\"restartPolicy\":\"Never\",\"containers\":[{\"name\":\"c\",\"command\":[\"sh\",\"-c\"],\"args\":[\"echo NAME=\$MY_NAME NS=\$MY_NS UID=\$MY_UID NODE=\$MY_NODE IP=\$MY_IP HOST=\$MY_HOST X=\$X; cat /etc/resolv.conf; hostname; grep envhost /etc/hosts; pwd; ip -4 -o addr show dev eth0; ip -o link show lo; echo FDS=\$(ls /proc/self/fd | wc -l)\"],\"workingDir\":\"/tmp\",\"env\":[{\"name\":\"A\",\"value\":\"aa\"},{\"name\":\"X\",\"value\":\"\$(A)-x\"},{\"name\":\"MY_NAME\",\"valueFrom\":{\"fieldRef\":{\"fieldPath\":\"metadata.name\"}}},{\"name\":\"MY_NS\",\"valueFrom\":{\"fieldRef\":{\"fieldPath\":\"metadata.namespace\"}}},{\"name\":\"MY_UID\",\"valueFrom\":{\"fieldRef\":{\"fieldPath\":\"metadata.uid\"}}},{\"name\":\"MY_NODE\",\"valueFrom\":{\"fieldRef\":{\"fieldPath\":\"spec.nodeName\"}}},{\"name\":\"MY_IP\",\"valueFrom\":{\"fieldRef\":{\"fieldPath\":\"status.podIP\"}}},{\"name\":\"MY_HOST\",\"valueFrom\":{\"fieldRef\":{\"fieldPath\":\"status.hostIP\"}}}]}]")
if wait_for 15 envy .status.phase Succeeded; then ok never-completes-succeeded; else
	not_ok never-completes-succeeded "$(pod_json envy | jq -c .status)"; fi
log=$(cat "$STATE/pods/$uid_e/c.log" 2>/dev/null)
ip_e=$(field envy .status.podIP)
expect_match env-fieldrefs "$log" "NAME=envy NS=default UID=$uid_e NODE=$NODE IP=$ip_e HOST=198.18.0.11 X=aa-x"
expect_match resolv-nameserver "$log" $'nameserver 198.18.128.10\n'
expect_match resolv-search "$log" 'search default\.svc\.cluster\.local svc\.cluster\.local cluster\.local'
expect_match resolv-ndots "$log" 'options ndots:5'
expect_match hostname-uts "$log" $'\nenvhost\n'
expect_match hosts-file "$log" "$ip_e"$'\tenvhost'
expect_match working-dir "$log" $'\n/tmp\n'
expect_match in-pod-netns "$log" "eth0 +inet $ip_e/"
expect_match pod-loopback-up "$log" 'lo: <LOOPBACK,UP'
expect_match no-agent-fds-inherited "$log" 'FDS=4'
expect_match cgroup-of-container "$(cat "$CG/pods/$uid_a/c/cgroup.procs" | head -1 | xargs -I{} cat /proc/{}/cgroup)" "/pods/$uid_a/c\$"
expect_eq node-resolv-untouched "$(cat /etc/resolv.conf | grep -c 198.18.128.10)" 0
expect_eq exit-code-recorded "$(field envy '.status.containerStatuses[0].state.terminated.exitCode')" 0

# --- restartPolicy ---------------------------------------------------------------------
pod fail-never '"restartPolicy":"Never","containers":[{"name":"c","command":["sh","-c","exit 3"]}]' >/dev/null
pod fail-onfail '"restartPolicy":"OnFailure","containers":[{"name":"c","command":["sh","-c","exit 4"]}]' >/dev/null
pod ok-onfail '"restartPolicy":"OnFailure","containers":[{"name":"c","command":["true"]}]' >/dev/null
pod crash-always '"containers":[{"name":"c","command":["sh","-c","sleep 0.3; exit 1"]}]' >/dev/null
if wait_for 15 fail-never .status.phase Failed; then ok never-failed-phase; else
	not_ok never-failed-phase "$(pod_json fail-never | jq -c .status)"; fi
expect_eq never-exit-code "$(field fail-never '.status.containerStatuses[0].state.terminated.exitCode')" 3
expect_eq never-no-restart "$(field fail-never '.status.containerStatuses[0].restartCount')" 0
if wait_for 15 ok-onfail .status.phase Succeeded; then ok onfailure-success-stays; else
	not_ok onfailure-success-stays "$(pod_json ok-onfail | jq -c .status)"; fi
if wait_for 15 fail-onfail '.status.containerStatuses[0].restartCount >= 1' true; then ok onfailure-restarts; else
	not_ok onfailure-restarts "$(pod_json fail-onfail | jq -c .status)"; fi
expect_eq onfailure-last-state "$(field fail-onfail '.status.containerStatuses[0].lastState.terminated.exitCode')" 4
if wait_for 15 crash-always '.status.containerStatuses[0].state.waiting.reason' CrashLoopBackOff; then ok always-crashloop-backoff; else
	not_ok always-crashloop-backoff "$(pod_json crash-always | jq -c .status)"; fi
expect_eq always-phase-running "$(field crash-always .status.phase)" Running

# --- liveness restarts; exec and tcp probes --------------------------------------------
pod live '"containers":[{"name":"c","command":["sh","-c","touch /tmp/sl-live-$(MARK); sleep 1000"],"env":[{"name":"MARK","valueFrom":{"fieldRef":{"fieldPath":"metadata.uid"}}}],"livenessProbe":{"exec":{"command":["sh","-c","test ! -e /tmp/sl-live-kill-$MARK"]},"periodSeconds":1,"failureThreshold":2}},{"name":"t","command":["'"$PY"'","-c","import socket,time;s=socket.socket();s.bind((\"0.0.0.0\",9000));s.listen();time.sleep(1000)"],"readinessProbe":{"tcpSocket":{"port":9000},"periodSeconds":1}}]' >/dev/null
uid_l=$(field live .metadata.uid)
if wait_for 15 live '.status.conditions[] | select(.type=="Ready") | .status' True; then ok tcp-and-exec-probes-ready; else
	not_ok tcp-and-exec-probes-ready "$(pod_json live | jq -c .status)"; fi
touch "/tmp/sl-live-kill-$uid_l"
if wait_for 20 live '.status.containerStatuses[] | select(.name=="c") | .restartCount' 1; then ok liveness-restarts; else
	not_ok liveness-restarts "$(pod_json live | jq -c .status)"; fi
rm -f "/tmp/sl-live-kill-$uid_l" "/tmp/sl-live-$uid_l"
ev=$(j "$U/api/v1/namespaces/default/events" | jq -r '.items[] | select(.involvedObject.name=="live") | .reason' | sort -u | tr '\n' ' ')
expect_match liveness-event "$ev" Unhealthy

# --- startup probe holds liveness/readiness back -----------------------------------------
pod slow '"containers":[{"name":"c","command":["sleep","1000"],"env":[{"name":"U","valueFrom":{"fieldRef":{"fieldPath":"metadata.uid"}}}],"startupProbe":{"exec":{"command":["sh","-c","test -e /tmp/sl-start-$U"]},"periodSeconds":1,"failureThreshold":60}}]' >/dev/null
uid_sl=$(field slow .metadata.uid)
wait_for 15 slow .status.phase Running
sleep 1.5
expect_eq startup-not-started "$(field slow '.status.containerStatuses[0].started'),$(field slow '.status.containerStatuses[0].ready')" false,false
touch "/tmp/sl-start-$uid_sl"
if wait_for 10 slow '.status.containerStatuses[0].started' true; then ok startup-probe-starts; else
	not_ok startup-probe-starts "$(pod_json slow | jq -c .status)"; fi
expect_eq startup-then-ready "$(field slow '.status.conditions[] | select(.type=="Ready") | .status')" True
rm -f "/tmp/sl-start-$uid_sl"

# --- hostNetwork: the node's netns, no CNI ----------------------------------------------
pod hostnet '"hostNetwork":true,"restartPolicy":"Never","containers":[{"name":"c","command":["sh","-c","ip -o link show lo; cat /etc/resolv.conf"]}]' >/dev/null
if wait_for 15 hostnet .status.phase Succeeded; then ok hostnetwork-runs; else
	not_ok hostnetwork-runs "$(pod_json hostnet | jq -c .status)"; fi
expect_eq hostnetwork-pod-ip "$(field hostnet .status.podIP)" 198.18.0.11
uid_h=$(field hostnet .metadata.uid)
hlog=$(cat "$STATE/pods/$uid_h/c.log" 2>/dev/null)
expect_eq hostnetwork-node-resolver "$(grep -c 198.18.128.10 <<<"$hlog")" 0
check hostnetwork-no-netns test ! -e "/run/netns/sl-$uid_h"

# --- bad input -------------------------------------------------------------------------
pod badenv '"containers":[{"name":"c","command":["true"],"env":[{"name":"X","valueFrom":{"fieldRef":{"fieldPath":"spec.bogus"}}}]}]' >/dev/null
if wait_for 15 badenv '.status.containerStatuses[0].state.waiting.reason' CreateContainerConfigError; then ok bad-fieldref-clear-error; else
	not_ok bad-fieldref-clear-error "$(pod_json badenv | jq -c .status)"; fi
expect_match bad-fieldref-message "$(field badenv '.status.containerStatuses[0].state.waiting.message')" 'spec.bogus'
pod nocmd '"containers":[{"name":"c","image":"busybox"}]' >/dev/null
if wait_for 15 nocmd '.status.containerStatuses[0].state.waiting.message' "container 'c': command: required (containers run host binaries, there is no image entrypoint)"; then ok no-command-clear-error; else
	not_ok no-command-clear-error "$(pod_json nocmd | jq -c .status)"; fi
pod nobin '"containers":[{"name":"c","command":["/nonexistent/bin"]}]' >/dev/null
if wait_for 15 nobin '.status.containerStatuses[0].state.waiting.reason' CreateContainerError; then ok missing-binary-clear-error; else
	not_ok missing-binary-clear-error "$(pod_json nobin | jq -c .status)"; fi

# --- deletion tears everything down ----------------------------------------------------
pod sleeper '"containers":[{"name":"c","command":["sleep","1000"]}]' >/dev/null
wait_for 15 sleeper .status.phase Running
uid_s=$(field sleeper .metadata.uid)
ip_s=$(field sleeper .status.podIP)
pid_s=$(cat "$CG/pods/$uid_s/c/cgroup.procs" 2>/dev/null | head -1)
[[ -n $pid_s ]] && ok sleeper-in-cgroup || not_ok sleeper-in-cgroup
j -XDELETE "$U/api/v1/namespaces/default/pods/sleeper" >/dev/null
gone() {
	[[ ! -e /run/netns/sl-$uid_s && ! -d $CG/pods/$uid_s && ! -d $STATE/pods/$uid_s ]] &&
		! kill -0 "$pid_s" 2>/dev/null && [[ ! -e $STATE/ipam/sluice/$ip_s ]]
}
for _ in $(seq 50); do gone && break; sleep 0.2; done
if gone; then ok delete-tears-down; else
	not_ok delete-tears-down "netns: $(ls /run/netns | grep -c "$uid_s") cgroup: $(ls "$CG/pods")" \
		"dir: $(ls "$STATE/pods")" "ipam: $(ls "$STATE/ipam/sluice" | tr '\n' ' ')"; fi
expect_eq delete-no-route-left "$(in_node ip route | grep -c "$ip_s ")" 0

# --- graceful deletion: SIGTERM, the grace period, then the agent's final DELETE ---------
pod polite '"containers":[{"name":"c","command":["sh","-c","trap \"echo term >'"$TMP"'/polite.term; exit 0\" TERM; while :; do sleep 0.1; done"]}]' >/dev/null
pod stubborn '"containers":[{"name":"c","command":["sh","-c","trap \"\" TERM; while :; do sleep 0.1; done"]}]' >/dev/null
wait_for 15 polite .status.phase Running
wait_for 15 stubborn .status.phase Running
t0=$SECONDS
j -XDELETE "$U/api/v1/namespaces/default/pods/polite" >/dev/null
j -XDELETE "$U/api/v1/namespaces/default/pods/stubborn" >/dev/null
dts=$(field stubborn .metadata.deletionTimestamp)
if [[ $dts == null ]]; then
	skip() { echo "skip - $SUITE/$1 # $2"; }
	skip graceful-deletion "this control plane deletes bound pods at once"
else
	ok graceful-deletion-marks
	for _ in $(seq 50); do [[ $(pod_json polite | jq -r .code) == 404 ]] && break; sleep 0.1; done
	expect_eq graceful-sigterm-seen "$(cat "$TMP/polite.term" 2>/dev/null)" term
	expect_eq graceful-polite-deleted "$(pod_json polite | jq -r .code)" 404
	for _ in $(seq 100); do [[ $(pod_json stubborn | jq -r .code) == 404 ]] && break; sleep 0.1; done
	expect_eq graceful-stubborn-deleted "$(pod_json stubborn | jq -r .code)" 404
	took=$((SECONDS - t0))
	((took >= 2 && took <= 8)) && ok graceful-waits-grace-then-kills || not_ok graceful-waits-grace-then-kills "took ${took}s (grace 2s)"
fi

# --- agent restart: previous sandboxes cleaned up, pods restarted -----------------------
uid_w=$(field web .metadata.uid)
old_pid=$(cat "$CG/pods/$uid_w/c/cgroup.procs" | head -1)
stop_agent
kill -0 "$old_pid" 2>/dev/null && ok pods-survive-agent-stop || not_ok pods-survive-agent-stop
# A sandbox of a pod the API no longer has: must be removed at start.
j -XDELETE "$U/api/v1/namespaces/default/pods/fail-never" >/dev/null
uid_fn=$(ls "$STATE/pods" | while read -r u; do [[ $(jq -r .name "$STATE/pods/$u/sandbox.json") == fail-never ]] && echo "$u"; done)
start_agent
for _ in $(seq 50); do [[ ! -d $STATE/pods/$uid_fn ]] && ! kill -0 "$old_pid" 2>/dev/null && break; sleep 0.2; done
[[ -n $uid_fn && ! -d $STATE/pods/$uid_fn && ! -e /run/netns/sl-$uid_fn ]] && ok restart-removes-orphan-sandbox ||
	not_ok restart-removes-orphan-sandbox "uid '$uid_fn'"
kill -0 "$old_pid" 2>/dev/null && not_ok restart-stops-old-processes || ok restart-stops-old-processes
# The old status says Running too: the new run shows in the carried count.
if wait_for 40 web '.status.containerStatuses[0].restartCount' 1; then ok restart-count-carried; else
	not_ok restart-count-carried "$(pod_json web | jq -c .status)"; fi
if wait_for 20 web '.status.containerStatuses[0].state.running != null' true; then
	ok restart-runs-pod-again; else not_ok restart-runs-pod-again "$(pod_json web | jq -c .status)"; fi
expect_eq completed-not-rerun "$(field envy .status.phase)" Succeeded

# --- everything deleted: a clean node ---------------------------------------------------
for p in $(j "$U/api/v1/namespaces/default/pods" | jq -r '.items[].metadata.name'); do
	j -XDELETE "$U/api/v1/namespaces/default/pods/$p" >/dev/null
done
clean() {
	[[ -z $(ls "$STATE/pods") && -z $(find "$CG/pods" -mindepth 1 -type d) ]] &&
		! ls /run/netns | grep -qf <(ls "$TMP/uids")
}
for _ in $(seq 75); do clean && break; sleep 0.2; done
if clean; then ok all-deleted-clean-node; else
	not_ok all-deleted-clean-node "dirs: $(ls "$STATE/pods" | tr '\n' ' ')" "cgroups: $(find "$CG/pods" -mindepth 1 -type d | tr '\n' ' ')"; fi
expect_eq ipam-all-released "$(ls "$STATE/ipam/sluice" | grep -c '^198\.')" 0
expect_eq no-veths-left "$(in_node ip -o link | grep -vc ': lo:')" 0
kill -0 "$AGENT_PID" 2>/dev/null && ok agent-alive || not_ok agent-alive "$(tail -20 "$TMP/agent.log")"
# A clean stop (leak-checked under ASan) exits 0.
kill -TERM "$AGENT_PID"
wait "$AGENT_PID"
expect_eq agent-clean-exit "$?" 0
AGENT_PID=
grep -E 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error' "$TMP/agent.log" >/dev/null &&
	not_ok agent-sanitizer-clean "$(grep -A5 -E 'ERROR|runtime error' "$TMP/agent.log" | head -20)" || ok agent-sanitizer-clean
finish
