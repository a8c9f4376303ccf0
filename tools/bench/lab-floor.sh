#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The floor of the lab's pod -> pod path on the mesh fabric (`lab up --fabric mesh`): the same
# chain of devices and queues, forwarded by the least BPF a router can do, against one plain
# veth pair, paired per rotation (tools/bench/lab-analysis.md, "Fabric mesh"):
#
#   floor:  C eth0 <veth> N1 "c" ──(tc: TTL - 1, MACs, bpf_redirect_peer)──▶ N1 "mesh"
#           <veth> N2 "mesh" ──(the same)──▶ into S; replies the same way back
#   veth:   A eth0 <veth> B eth0
#   pod:    (with LAB_NAME) the Sluice pod path of a running lab: CLIENT pod → SERVER pod
#
# One backlog pass per direction on floor and pod, like veth; floor has no policy, no FIB
# lookup and no map: pod / floor is what Sluice's programs cost, floor / veth what the
# topology costs. Each run: `connbench closed` (new TCP connection per request), CONNS in
# flight, SECONDS_PER_RUN after 0.5 s warm-up; prints per rotation rate/client-CPU-µs-per-
# request per path, then the medians of the paired ratios.
#
# Knobs: REPS (10), SECONDS_PER_RUN (2), CONNS (8), BIN (build/bin), LAB_NAME (a running
# lab: adds the pod path), CLIENT (default/cli) and SERVER (default/srv): pods of that lab on
# two nodes, SERVER running `connbench serve` on its pod IP, port 8090. Needs root and clang.
# Addresses 198.19.240.0/24, 198.19.246-247.0/24; everything it makes is removed on exit.
if [[ -z ${SLUICE_IN_MNTNS:-} ]]; then
	exec env SLUICE_IN_MNTNS=1 unshare --mount --propagation private bash "$0" "$@"
fi
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 2
BIN=$(cd "${BIN:-build/bin}" && pwd) || exit 2
REPS=${REPS:-10}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-2}
CONNS=${CONNS:-8}
CLIENT=${CLIENT:-default/cli}
SERVER=${SERVER:-default/srv}
P=lf$$
tmp=$(mktemp -d "${TMPDIR:-/tmp}/lab-floor.XXXXXX")
pids=()
cleanup() {
	local p n
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
	for n in c n1 n2 s va vb; do ip netns del "$P-$n" 2>/dev/null; done
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
die() { echo "lab-floor: $*" >&2; exit 1; }

for n in c n1 n2 s va vb; do
	ip netns add "$P-$n" || die "ip netns add $P-$n failed"
	ip -n "$P-$n" link set lo up
done
ip -n "$P-c" link add eth0 type veth peer name c netns "$P-n1" &&
	ip -n "$P-n1" link add name mesh type veth peer name mesh netns "$P-n2" &&
	ip -n "$P-s" link add eth0 type veth peer name s netns "$P-n2" &&
	ip -n "$P-va" link add eth0 type veth peer name eth0 netns "$P-vb" || die "veth pairs failed"
for x in "c eth0" "n1 c" "n1 mesh" "n2 mesh" "n2 s" "s eth0" "va eth0" "vb eth0"; do
	set -- $x
	ip -n "$P-$1" link set "$2" up
done
ip -n "$P-c" addr add 198.19.246.2/24 dev eth0
ip -n "$P-c" route add 198.19.247.0/24 via 198.19.246.1
ip -n "$P-n1" addr add 198.19.246.1/24 dev c
ip -n "$P-s" addr add 198.19.247.2/24 dev eth0
ip -n "$P-s" route add 198.19.246.0/24 via 198.19.247.1
ip -n "$P-n2" addr add 198.19.247.1/24 dev s
ip -n "$P-va" addr add 198.19.240.1/24 dev eth0
ip -n "$P-vb" addr add 198.19.240.2/24 dev eth0

# link_json NS DEV FIELD
link_json() {
	ip -n "$P-$1" -j link show dev "$2" | /usr/bin/python3 -c '
import json, sys
v = json.load(sys.stdin)[0][sys.argv[1]]
print(", ".join("0x" + b for b in v.split(":")) if sys.argv[1] == "address" else v)' "$3"
}
# prog NAME OUT_IFINDEX DMAC SMAC: one program per device, its next hop compiled in.
prog() {
	echo "SEC(\"classifier/$1\") int $1(struct __sk_buff *skb)"
	echo "{ static const __u8 d[6] = {$3}, s[6] = {$4}; return fwd(skb, $2, d, s); }"
}
{
	cat <<'C'
#include <stddef.h>
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
char LICENSE[] SEC("license") = "GPL";
/* What a router must do: TTL - 1 (checksum), the MACs, then to the next device's peer. */
static __always_inline int fwd(struct __sk_buff *skb, int out, const __u8 *d, const __u8 *s)
{
	struct ethhdr eth;
	struct iphdr ip;
	__u8 nttl;

	if (bpf_skb_load_bytes(skb, 0, &eth, sizeof(eth)) || eth.h_proto != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	if (bpf_skb_load_bytes(skb, ETH_HLEN, &ip, sizeof(ip)) || ip.ttl <= 1)
		return TC_ACT_OK;
	nttl = ip.ttl - 1;
	if (bpf_l3_csum_replace(skb, ETH_HLEN + offsetof(struct iphdr, check),
				bpf_htons((__u16)ip.ttl << 8), bpf_htons((__u16)nttl << 8), 2) ||
	    bpf_skb_store_bytes(skb, ETH_HLEN + offsetof(struct iphdr, ttl), &nttl, 1, 0) ||
	    bpf_skb_store_bytes(skb, 0, d, 6, 0) || bpf_skb_store_bytes(skb, 6, s, 6, 0))
		return TC_ACT_SHOT;
	return bpf_redirect_peer(out, 0);
}
C
	prog n1_c "$(link_json n1 mesh ifindex)" "$(link_json n2 s address)" "$(link_json n2 mesh address)"
	prog n1_mesh "$(link_json n1 c ifindex)" "$(link_json c eth0 address)" "$(link_json n1 c address)"
	prog n2_s "$(link_json n2 mesh ifindex)" "$(link_json n1 c address)" "$(link_json n1 mesh address)"
	prog n2_mesh "$(link_json n2 s ifindex)" "$(link_json s eth0 address)" "$(link_json n2 s address)"
} >"$tmp/floor.bpf.c"
clang -O2 -g -target bpf -I"/usr/include/$(uname -m)-linux-gnu" -c "$tmp/floor.bpf.c" \
	-o "$tmp/floor.o" || die "clang failed"
for x in "n1 c" "n1 mesh" "n2 s" "n2 mesh"; do
	set -- $x
	ip netns exec "$P-$1" tc qdisc add dev "$2" clsact &&
		ip netns exec "$P-$1" tc filter add dev "$2" ingress bpf da obj "$tmp/floor.o" \
			sec "classifier/$1_$2" || die "tc filter on $1/$2 failed"
done
nsenter --net="/run/netns/$P-s" "$BIN/connbench" serve --addrs 198.19.247.2 --port 8090 \
	>/dev/null 2>&1 &
pids+=($!)
nsenter --net="/run/netns/$P-vb" "$BIN/connbench" serve --addrs 198.19.240.2 --port 8090 \
	>/dev/null 2>&1 &
pids+=($!)
sleep 1
nsenter --net="/run/netns/$P-c" ping -c1 -W2 198.19.247.2 >/dev/null || die "the floor path does not answer"

PATHS="floor veth"
if [[ -n ${LAB_NAME:-} ]]; then
	LAB=(env SLUICE_LAB_BIN="$BIN" bash tools/lab/lab.sh)
	KC=("${KUBECTL:-$PWD/build/deps/kubectl-1.20/usr/bin/kubectl}" --kubeconfig
		"/run/sluice-lab/$LAB_NAME/kubeconfig")
	SRV=$("${KC[@]}" -n "${SERVER%%/*}" get pod "${SERVER#*/}" -o jsonpath='{.status.podIP}') &&
		[[ -n $SRV ]] || die "lab $LAB_NAME: pod $SERVER has no IP"
	PATHS="floor veth pod"
fi
# cb CMD...: one connbench run, printed as RATE/CLIENT_CPU_US_PER_REQUEST.
cb() {
	"$@" "$BIN/connbench" closed --targets "$T:8090" --conns "$CONNS" \
		--seconds "$SECONDS_PER_RUN" --warmup 0.5 2>&1 | awk '
		{ for (i = 1; i <= NF; i++) { split($i, a, "="); v[a[1]] = a[2] } }
		END { printf "%.0f/%.1f", v["rate"], v["samples"] ? v["cpu_s"] * 1e6 / v["samples"] : 0 }'
}
for ((r = 1; r <= REPS; r++)); do
	set -- $PATHS
	for ((k = 0; k < r % $#; k++)); do set -- "${@:2}" "$1"; done
	line="rep=$r"
	for p in "$@"; do
		case $p in
		floor) line+=" floor=$(T=198.19.247.2 cb nsenter --net="/run/netns/$P-c")" ;;
		veth) line+=" veth=$(T=198.19.240.2 cb nsenter --net="/run/netns/$P-va")" ;;
		pod) line+=" pod=$(T=$SRV cb timeout $((SECONDS_PER_RUN + 30)) "${LAB[@]}" exec \
			--name "$LAB_NAME" "$CLIENT" --)" ;;
		esac
	done
	echo "$line" | tee -a "$tmp/runs"
done
/usr/bin/python3 - "$tmp/runs" <<'PY'
import statistics, sys
ratios, cpu = {}, {}
for line in open(sys.argv[1]):
    d = {}
    for t in line.split()[1:]:
        k, v = t.split("=")
        rate, us = v.split("/")
        d[k] = (float(rate), float(us))
    for a, b in (("floor", "veth"), ("pod", "veth"), ("pod", "floor")):
        if a in d and b in d and d[b][0]:
            ratios.setdefault("%s / %s" % (a, b), []).append(d[a][0] / d[b][0])
    for k, v in d.items():
        cpu.setdefault(k, []).append(v[1])
for k, v in ratios.items():
    print("paired request rate %s: x%.2f (median of %d, range %.2f-%.2f)" %
          (k, statistics.median(v), len(v), min(v), max(v)))
print("client CPU µs per request (median): " +
      ", ".join("%s %.1f" % (k, statistics.median(v)) for k, v in cpu.items()))
PY
