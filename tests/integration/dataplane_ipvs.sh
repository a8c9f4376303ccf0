#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# `sluice-agent --dataplane ipvs` on a kernel without IP_VS (agent/px_ipvs.h):
# the agent refuses to start, exits non-zero, and says in one line that IPVS
# is missing and which dataplanes to use instead; it leaves nothing behind
# (no kube-ipvs0, no dataplane record), and `--cleanup` succeeds.
#
#   netns sl-ipvs-<pid> (only lo; the whole suite runs in it)
#   sluice-control 127.0.0.1:P  ◀──  sluice-agent --dataplane ipvs
#
# Runs in its own netns and a private mount namespace with its own bpffs:
# whatever the agent did would stay there. On a kernel that has IPVS the
# refusal checks are skipped (they would be wrong there).
if [[ -z ${SLUICE_IPVS_NS:-} ]]; then
	NS=sl-ipvs-$$
	NODE=ipvs-node-$$
	ip netns add "$NS" || { echo "not ok - dataplane_ipvs/netns"; exit 1; }
	trap 'ip netns del "$NS" 2>/dev/null; rm -rf "/run/sluice/$NODE"' EXIT
	SLUICE_IPVS_NS=$NS SLUICE_IPVS_NODE=$NODE ip netns exec "$NS" \
		unshare --mount --propagation private bash "$0" "$@"
	exit
fi
source "$(dirname "$0")/lib.sh"

NS=$SLUICE_IPVS_NS
NODE=$SLUICE_IPVS_NODE
CGROOT=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/self/mounts)
BPFFS=$TMP/bpffs
mkdir -p "$BPFFS"
mount -t bpf bpf "$BPFFS" || { not_ok mount-bpffs; finish; }

ipvs_cleanup_all() {
	[[ -n ${AGENT_PID:-} ]] && kill -9 "$AGENT_PID" 2>/dev/null
	umount "$BPFFS" 2>/dev/null
	cleanup
}
trap ipvs_cleanup_all EXIT

ip link set lo up
start_control --store memory || { not_ok start-control; finish; }

if [[ -e /proc/net/ip_vs ]]; then
	echo "ok - $SUITE/refuses-without-ip-vs # SKIP this kernel has IPVS"
	finish
fi

start=$(date +%s)
timeout 30 "$BIN/sluice-agent" --node-name "$NODE" --kubeconfig "$KUBECONFIG" \
	--bpffs "$BPFFS" --cgroup-root "$CGROOT" --metrics-listen '' --dataplane ipvs \
	>"$TMP/agent.out" 2>"$TMP/agent.err" &
AGENT_PID=$!
wait "$AGENT_PID"
rc=$?
AGENT_PID=
err=$(cat "$TMP/agent.err" "$TMP/agent.out")

if [[ $rc -ne 0 && $rc -ne 124 ]]; then ok exits-non-zero; else not_ok exits-non-zero "exit $rc" "$err"; fi
expect_le() { if (($2 <= $3)); then ok "$1"; else not_ok "$1" "$2 > $3"; fi; }
expect_le exits-at-once $(($(date +%s) - start)) 10
expect_match names-ipvs "$err" "ERROR ipvs: IPVS is not available in this kernel: generic netlink family 'IPVS' not found"
expect_match says-what-to-use "$err" "use --dataplane nftables or iptables"
expect_match agent-says-it-cannot-start "$err" "--dataplane ipvs cannot start: Operation not supported"
expect_eq one-ipvs-line "$(grep -c 'ERROR ipvs:' <<<"$err")" 1
check no-kube-ipvs0 bash -c "! ip link show kube-ipvs0"
check no-ipvs-record bash -c "! grep -qx ipvs /run/sluice/$NODE/dataplane 2>/dev/null"

# --cleanup runs every legacy backend's cleanup: nothing to do, no error
check cleanup-succeeds "$BIN/sluice-agent" --node-name "$NODE" \
	--bpffs "$BPFFS" --cleanup
finish
