#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# sluice-cni conformance: runs the plugin exactly as a container runtime does (CNI_*
# environment, config on stdin, result/error JSON on stdout) against namespaces this test
# creates, and checks the wiring, the spec's rules and the error codes.
#
#   netns sl-cni-node-$$  ("the node": the plugin runs here; every host veth carries the
#   |                      gateway 198.18.64.1/32 and a /32 route to its pod)
#   +-- slXXXXXXXXXXXX <==veth==> eth0 198.18.64.x/32   netns sl-cni-p1-$$
#   +-- ...                                             netns sl-cni-cN-$$ (20 concurrent)
#   pods: default via 198.18.64.1 dev eth0 onlink
#
# Addresses are from 198.18.64.0/24 only; nothing touches the host's own netns.
# Everything is removed in the EXIT trap, so a second run starts clean.
source "$(dirname "$0")/lib.sh"

CNI=$BIN/sluice-cni
[[ -x $CNI ]] || { echo "not ok - $SUITE/binary ($CNI missing)"; exit 1; }
[[ $EUID -eq 0 ]] || { echo "ok - $SUITE/skipped-not-root # SKIP needs root"; exit 0; }

P=$$
NODE=sl-cni-node-$P
DATA=$TMP/data
GW=198.18.64.1
NETNS_LIST=()

cni_cleanup() {
	local ns
	for ns in "${NETNS_LIST[@]}"; do
		ip netns del "$ns" 2>/dev/null
	done
	cleanup
}
trap cni_cleanup EXIT

mkns() {
	ip netns add "$1" || return 1
	NETNS_LIST+=("$1")
	ip -n "$1" link set lo up
}

conf() { # conf VERSION [extra json members]
	printf '{"cniVersion":"%s","name":"slnet","type":"sluice-cni","mtu":1400,%s"ipam":{"type":"sluice","subnet":"198.18.64.0/24","dataDir":"%s"}}' \
		"$1" "${2:-}" "$DATA"
}

# cni CMD ID NETNS [CONF] -> stdout in $OUT, exit code in $RC (the runtime's view).
cni() {
	local cmd=$1 id=$2 netns=$3 cfg=${4:-$(conf 1.0.0)}
	OUT=$(printf '%s' "$cfg" | ip netns exec "$NODE" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
		CNI_COMMAND="$cmd" CNI_CONTAINERID="$id" CNI_NETNS="$netns" CNI_IFNAME=eth0 \
		CNI_PATH=/usr/lib/cni CNI_ARGS="IgnoreUnknown=1;K8S_POD_NAME=p-$id" \
		"$CNI" 2>>"$TMP/cni.stderr")
	RC=$?
}
jget() { printf '%s' "$1" | jq -r "$2" 2>/dev/null; }
ipfile_count() { ls "$DATA/slnet" 2>/dev/null | grep -c '^198\.'; }

mkns "$NODE" || { not_ok setup "cannot create netns"; finish; }
# A node that does not forward: pod-to-pod traffic must work through the per-veth flag the
# plugin sets, not through a global switch (found by ctr/podman, cni_runtimes.sh).
ip netns exec "$NODE" sysctl -qw net.ipv4.ip_forward=0

# --- VERSION ----------------------------------------------------------------------------
OUT=$(echo '{"cniVersion":"1.0.0"}' | env -i CNI_COMMAND=VERSION "$CNI")
expect_eq version-echo "$(jget "$OUT" .cniVersion)" "1.0.0"
expect_eq version-list "$(jget "$OUT" '.supportedVersions|join(",")')" "0.3.0,0.3.1,0.4.0,1.0.0,1.1.0"

# --- ADD ---------------------------------------------------------------------------------
mkns sl-cni-p1-$P
cni ADD c1 /run/netns/sl-cni-p1-$P
expect_eq add-rc "$RC" 0
RES=$OUT
POD=$(jget "$RES" '.ips[0].address' | cut -d/ -f1)
HV=$(jget "$RES" '.interfaces[0].name')
expect_eq add-result-version "$(jget "$RES" .cniVersion)" "1.0.0"
expect_match add-result-ip "$(jget "$RES" '.ips[0].address')" '^198\.18\.64\.[0-9]+/32$'
expect_eq add-result-gw "$(jget "$RES" '.ips[0].gateway')" "$GW"
expect_eq add-result-ifindex "$(jget "$RES" '.ips[0].interface')" "1"
expect_eq add-result-sandbox "$(jget "$RES" '.interfaces[1].sandbox')" "/run/netns/sl-cni-p1-$P"
expect_match add-result-mac "$(jget "$RES" '.interfaces[1].mac')" '^([0-9a-f]{2}:){5}[0-9a-f]{2}$'
expect_eq add-result-route "$(jget "$RES" '.routes[0].dst') $(jget "$RES" '.routes[0].gw')" "0.0.0.0/0 $GW"
expect_match pod-eth0-addr "$(ip -n sl-cni-p1-$P -4 -o addr show dev eth0)" "inet $POD/32 "
expect_match pod-eth0-mtu "$(ip -n sl-cni-p1-$P -o link show dev eth0 2>/dev/null)" "mtu 1400 .*state UP"
expect_match pod-default-route "$(ip -n sl-cni-p1-$P route show default)" "^default via $GW dev eth0 onlink"
expect_match host-veth-addr "$(ip -n "$NODE" -4 -o addr show dev "$HV")" "inet $GW/32 "
expect_match host-veth-up "$(ip -n "$NODE" -o link show dev "$HV" 2>/dev/null)" "state UP"
expect_match host-pod-route "$(ip -n "$NODE" route show "$POD")" "^$POD dev $HV"
expect_match host-veth-mac "$(ip -n "$NODE" -o link show dev "$HV" 2>/dev/null)" "$(jget "$RES" '.interfaces[0].mac')"
expect_eq host-veth-forwarding "$(ip netns exec "$NODE" cat "/proc/sys/net/ipv4/conf/$HV/forwarding" 2>&1)" 1
expect_eq node-ip-forward-untouched "$(ip netns exec "$NODE" cat /proc/sys/net/ipv4/ip_forward)" 0
check ping-gw-from-pod ip netns exec sl-cni-p1-$P ping -c1 -W2 "$GW"
check ping-pod-from-node ip netns exec "$NODE" ping -c1 -W2 "$POD"

# --- duplicate ADD: refused, and the live attachment is untouched -----------------------
cni ADD c1 /run/netns/sl-cni-p1-$P
expect_eq dup-add-rc "$RC" 1
expect_eq dup-add-code "$(jget "$OUT" .code)" "100"
check dup-add-kept-ip test -f "$DATA/slnet/$POD"
check dup-add-still-pings ip netns exec "$NODE" ping -c1 -W2 "$POD"

# --- CHECK ok, then after tampering -----------------------------------------------------
cni CHECK c1 /run/netns/sl-cni-p1-$P "$(conf 1.0.0 "\"prevResult\":$RES,")"
expect_eq check-ok "$RC" 0
ip -n sl-cni-p1-$P route del default
cni CHECK c1 /run/netns/sl-cni-p1-$P "$(conf 1.0.0 "\"prevResult\":$RES,")"
expect_eq check-tampered-rc "$RC" 1
expect_match check-tampered-msg "$(jget "$OUT" .details)" "default route"
ip -n sl-cni-p1-$P route add default via $GW dev eth0 onlink
ip -n "$NODE" route del "$POD"
cni CHECK c1 /run/netns/sl-cni-p1-$P
expect_eq check-host-route-rc "$(jget "$OUT" .code)" "105"
ip -n "$NODE" route add "$POD" dev "$HV" scope link
ip netns exec "$NODE" sysctl -qw "net.ipv4.conf.$HV.forwarding=0"
cni CHECK c1 /run/netns/sl-cni-p1-$P
expect_eq check-forwarding-off "$(jget "$OUT" .code) $(jget "$OUT" .msg)" "105 host veth not forwarding"

# --- DEL, twice -------------------------------------------------------------------------
cni DEL c1 /run/netns/sl-cni-p1-$P "$(conf 1.0.0 "\"prevResult\":$RES,")"
expect_eq del-rc "$RC" 0
expect_eq del-output-empty "$OUT" ""
check del-eth0-gone bash -c "! ip -n sl-cni-p1-$P link show eth0 2>/dev/null"
check del-hostveth-gone bash -c "! ip -n $NODE link show $HV 2>/dev/null"
check del-ip-released test ! -e "$DATA/slnet/$POD"
cni DEL c1 /run/netns/sl-cni-p1-$P
expect_eq del-again-rc "$RC" 0

# --- DEL after the netns is gone, and with an empty CNI_NETNS ----------------------------
mkns sl-cni-p2-$P
cni ADD c2 /run/netns/sl-cni-p2-$P
expect_eq add2-rc "$RC" 0
POD2=$(jget "$OUT" '.ips[0].address' | cut -d/ -f1)
ip netns del sl-cni-p2-$P
cni DEL c2 /run/netns/sl-cni-p2-$P
expect_eq del-netns-gone-rc "$RC" 0
check del-netns-gone-released test ! -e "$DATA/slnet/$POD2"
cni DEL c2 ""
expect_eq del-empty-netns-rc "$RC" 0

# --- two networks handing out one subnet on a node: the error says so, nothing leaks -----
# (podman lists every conflist of its config dir, so such overlaps are easy to create.)
ovl() {
	printf '{"cniVersion":"1.0.0","name":"%s","type":"sluice-cni","ipam":{"type":"sluice","subnet":"198.18.64.0/24","rangeStart":"198.18.64.200","rangeEnd":"198.18.64.200","dataDir":"%s"}}' \
		"$1" "$DATA"
}
mkns sl-cni-o1-$P
mkns sl-cni-o2-$P
cni ADD o1 /run/netns/sl-cni-o1-$P "$(ovl slnet-a)"
expect_eq overlap-first-rc "$RC" 0
cni ADD o2 /run/netns/sl-cni-o2-$P "$(ovl slnet-b)"
expect_eq overlap-second-code "$(jget "$OUT" .code) $RC" "103 1"
expect_match overlap-second-details "$(jget "$OUT" .details)" "route to the pod via sl[0-9a-f]+ \(pod 198\.18\.64\.200\): .*another network use the same subnet"
expect_eq overlap-second-no-leak "$(ls "$DATA/slnet-b" 2>/dev/null | grep -c '^198\.') $(ip -n "$NODE" -o link show type veth | wc -l)" "0 1"
check overlap-first-still-pings ip netns exec "$NODE" ping -c1 -W2 198.18.64.200
cni DEL o1 /run/netns/sl-cni-o1-$P "$(ovl slnet-a)"
expect_eq overlap-del-rc "$RC" 0

# --- bad input: the spec's error codes, exit 1, never a crash ----------------------------
cni ADD c3 /run/netns/sl-cni-p1-$P '{"cniVersion":"1.0.0",'
expect_eq bad-json-code "$(jget "$OUT" .code) $RC" "6 1"
cni ADD c3 /run/netns/sl-cni-p1-$P "$(conf 0.1.0)"
expect_eq bad-version-code "$(jget "$OUT" .code)" "1"
cni ADD c3 /run/netns/sl-cni-p1-$P '{"cniVersion":"1.0.0","name":"slnet","type":"sluice-cni","ipam":{"type":"sluice","subnet":"198.18.64.0/99"}}'
expect_eq bad-cidr-code "$(jget "$OUT" .code)" "7"
cni ADD c3 "" ""
expect_eq missing-netns-code "$(jget "$OUT" .code)" "4"
cni ADD c3 /run/netns/sl-cni-nonexistent-$P
expect_eq unknown-netns-code "$(jget "$OUT" .code)" "3"
OUT=$(conf 1.0.0 | env -i CNI_COMMAND=ADD "$CNI")
expect_eq missing-env-code "$(jget "$OUT" .code) $(jget "$OUT" .cniVersion)" "4 1.0.0"
expect_eq bad-input-no-leak "$(ipfile_count)" "0"

# --- ADD failing half-way leaks nothing (agent configured but down -> code 11) ------------
mkns sl-cni-p3-$P
cni ADD c3 /run/netns/sl-cni-p3-$P "$(conf 1.0.0 "\"agentSocket\":\"$TMP/agent.sock\",\"agentQueueDir\":\"$TMP/q\",")"
expect_eq agent-down-add-code "$(jget "$OUT" .code) $RC" "11 1"
expect_eq agent-down-add-no-ip "$(ipfile_count)" "0"
check agent-down-add-no-eth0 bash -c "! ip -n sl-cni-p3-$P link show eth0 2>/dev/null"
expect_eq agent-down-add-no-veth "$(ip -n "$NODE" -o link show type veth 2>/dev/null | wc -l)" "0"
cni DEL c3 /run/netns/sl-cni-p3-$P "$(conf 1.0.0 "\"agentSocket\":\"$TMP/agent.sock\",\"agentQueueDir\":\"$TMP/q\",")"
expect_eq agent-down-del-rc "$RC" 0
expect_eq agent-down-del-queued "$(ls "$TMP/q" 2>/dev/null | grep -c '^del-.*\.json$')" "1"
expect_eq agent-down-queue-op "$(jq -r .op "$TMP"/q/del-*.json 2>/dev/null)" "del"

# --- agent up: ADD waits for its answer; a refusal rolls back ---------------------------
cat >"$TMP/agent.py" <<'EOF'
import json, os, socket, sys
path, log, answer = sys.argv[1], sys.argv[2], sys.argv[3]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(path); os.chmod(path, 0o600); s.listen(16)
while True:
    c, _ = s.accept()
    line = c.makefile().readline()
    if not line.strip():  # STATUS only connects
        c.close(); continue
    with open(log, "a") as f: f.write(line)
    req = json.loads(line)
    ok = answer == "ok" or req["op"] != "add"
    c.sendall((json.dumps({"ok": ok, "error": "" if ok else "endpoint refused by test"}) + "\n").encode())
    c.close()
EOF
"$PY" "$TMP/agent.py" "$TMP/agent.sock" "$TMP/agent.log" ok & PIDS+=($!)
for _ in $(seq 50); do [[ -S $TMP/agent.sock ]] && break; sleep 0.1; done
AGENTCONF=$(conf 1.1.0 "\"agentSocket\":\"$TMP/agent.sock\",")
cni ADD c3 /run/netns/sl-cni-p3-$P "$AGENTCONF"
expect_eq agent-add-rc "$RC" 0
expect_eq agent-add-request "$(jq -r 'select(.op=="add") | .containerID+" "+.ifname+" "+.ip' "$TMP/agent.log")" \
	"c3 eth0 $(jget "$OUT" '.ips[0].address' | cut -d/ -f1)"
expect_eq agent-add-mtu-1.1 "$(jget "$OUT" '.interfaces[1].mtu')" "1400"
cni STATUS "" "" "$AGENTCONF"
expect_eq status-agent-up "$RC" 0
cni CHECK c3 /run/netns/sl-cni-p3-$P "$AGENTCONF"
expect_eq agent-check-rc "$RC" 0
cni DEL c3 /run/netns/sl-cni-p3-$P "$AGENTCONF"
expect_eq agent-del-rc "$RC" 0
expect_eq agent-del-request "$(jq -r 'select(.op=="del") | .containerID' "$TMP/agent.log")" "c3"
kill "${PIDS[-1]}" 2>/dev/null; wait "${PIDS[-1]}" 2>/dev/null; rm -f "$TMP/agent.sock"
"$PY" "$TMP/agent.py" "$TMP/agent.sock" "$TMP/agent.log" refuse & PIDS+=($!)
for _ in $(seq 50); do [[ -S $TMP/agent.sock ]] && break; sleep 0.1; done
cni ADD c3 /run/netns/sl-cni-p3-$P "$AGENTCONF"
expect_eq agent-refuse-code "$(jget "$OUT" .code)" "104"
expect_eq agent-refuse-rolled-back "$(ipfile_count) $(ip -n "$NODE" -o link show type veth 2>/dev/null | wc -l)" "0 0"
kill "${PIDS[-1]}" 2>/dev/null; wait "${PIDS[-1]}" 2>/dev/null; rm -f "$TMP/agent.sock"
cni STATUS "" "" "$AGENTCONF"
expect_eq status-agent-down "$(jget "$OUT" .code)" "50"

# --- 20 concurrent ADDs get 20 distinct addresses; concurrent DELs free them -------------
for i in $(seq 20); do mkns sl-cni-c$i-$P; done
for i in $(seq 20); do
	(cni ADD cc$i /run/netns/sl-cni-c$i-$P; echo "$RC $(jget "$OUT" '.ips[0].address')" >"$TMP/cc$i") &
done
wait_jobs() { local j; for j in $(jobs -p); do [[ " ${PIDS[*]} " == *" $j "* ]] || wait "$j"; done; }
wait_jobs
expect_eq concurrent-add-all-ok "$(cat "$TMP"/cc* | awk '$1==0' | wc -l)" "20"
expect_eq concurrent-add-distinct "$(cat "$TMP"/cc* | awk '{print $2}' | sort -u | wc -l)" "20"
expect_eq concurrent-add-files "$(ipfile_count)" "20"
OKP=0
for i in $(seq 20); do
	a=$(awk '{print $2}' "$TMP/cc$i" | cut -d/ -f1)
	ip netns exec "$NODE" ping -c1 -W2 "$a" >/dev/null 2>&1 && OKP=$((OKP + 1))
done
expect_eq concurrent-pods-reachable "$OKP" "20"
# Pod to pod across the node (forwarded by the per-veth flag; ip_forward stays 0).
C1A=$(awk '{print $2}' "$TMP/cc1" | cut -d/ -f1)
C2A=$(awk '{print $2}' "$TMP/cc2" | cut -d/ -f1)
check pod-to-pod ip netns exec sl-cni-c1-$P ping -c1 -W2 "$C2A"
check pod-to-pod-back ip netns exec sl-cni-c2-$P ping -c1 -W2 "$C1A"
for i in $(seq 20); do
	(cni DEL cc$i /run/netns/sl-cni-c$i-$P; echo "$RC" >"$TMP/cd$i") &
done
wait_jobs
expect_eq concurrent-del-all-ok "$(cat "$TMP"/cd* | grep -c '^0$')" "20"
expect_eq concurrent-del-store-empty "$(ipfile_count)" "0"
expect_eq concurrent-del-no-veth "$(ip -n "$NODE" -o link show type veth 2>/dev/null | wc -l)" "0"

# --- STATUS and GC (spec 1.1) -----------------------------------------------------------
cni STATUS "" "" "$(conf 1.1.0)"
expect_eq status-ok "$RC $OUT" "0 "
mkns sl-cni-g1-$P
mkns sl-cni-g2-$P
cni ADD g1 /run/netns/sl-cni-g1-$P "$(conf 1.1.0)"
G1=$(jget "$OUT" '.ips[0].address' | cut -d/ -f1)
cni ADD g2 /run/netns/sl-cni-g2-$P "$(conf 1.1.0)"
G2=$(jget "$OUT" '.ips[0].address' | cut -d/ -f1)
G2V=$(jget "$OUT" '.interfaces[0].name')
cni GC "" "" "$(conf 1.1.0 '"cni.dev/valid-attachments":[{"containerID":"g1","ifname":"eth0"}],')"
expect_eq gc-rc "$RC $OUT" "0 "
check gc-kept-valid test -f "$DATA/slnet/$G1"
check gc-released-stale test ! -e "$DATA/slnet/$G2"
check gc-removed-stale-veth bash -c "! ip -n $NODE link show $G2V 2>/dev/null"
check gc-valid-still-pings ip netns exec "$NODE" ping -c1 -W2 "$G1"
cni GC "" "" "$(conf 1.0.0 '"cni.dev/valid-attachments":[],')"
expect_eq gc-needs-1.1 "$(jget "$OUT" .code)" "1"
cni DEL g1 /run/netns/sl-cni-g1-$P "$(conf 1.1.0)"
expect_eq final-store-empty "$(ipfile_count)" "0"

if grep -q 'AddressSanitizer\|runtime error' "$TMP/cni.stderr"; then
	not_ok plugin-stderr-clean "$(grep -m3 -A5 'AddressSanitizer\|runtime error' "$TMP/cni.stderr")"
else
	ok plugin-stderr-clean
fi
finish
