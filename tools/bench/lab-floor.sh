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
#   nkfloor: (NETKIT) floor with netkit pod devices: C eth0 is the netkit peer of N1 "c";
#           a program on "c" attached as BPF_NETKIT_PEER runs in eth0's transmit (TTL - 1,
#           MACs, bpf_redirect: redirect_peer is refused outside tc ingress) out of N1 "mesh"
#           <veth> N2 "mesh" ──(tc: the same, bpf_redirect_peer into the netkit peer)──▶ S eth0
#   nkveth: (NETKIT) A eth0 <netkit, L2, no program> B eth0
#   hop1:   C eth0 <veth> N "c" ──(tc: the same, bpf_redirect_peer)──▶ into S, N "s" <veth>
#           S eth0: one node, one forwarding step. What netkit pods could at best make of
#           floor: nkfloor does hop1's work (one backlog pass, one tc step with its redirect
#           round) plus the netkit program and the mesh veth's transmit.
#   hop1tx: hop1 with a program in each pod's transmit (tc egress on its eth0: TTL - 1,
#           MACs, TC_ACT_OK), which is what a netkit program adds; nkfloor then only adds
#           the mesh veth's __dev_queue_xmit and netkit's scrub: an estimate of nkfloor where
#           the kernel has no netkit (it is measured the same way as nkfloor).
#   pod:    (with LAB_NAME) the Sluice pod path of a running lab: CLIENT pod → SERVER pod
#
# One backlog pass per direction on floor and pod, like veth; floor has no policy, no FIB
# lookup and no map: pod / floor is what Sluice's programs cost, floor / veth what the
# topology costs. Each run: `connbench closed` (new TCP connection per request), CONNS in
# flight, SECONDS_PER_RUN after 0.5 s warm-up; prints per rotation rate/client-CPU-µs-per-
# request per path, then the medians of the paired ratios.
#
# Knobs: NETKIT (auto: adds nkfloor, nkveth where the kernel has netkit, CONFIG_NETKIT,
# 6.7+; 1: fail without it; 0: not), REPS (10), SECONDS_PER_RUN (2), CONNS (8), BIN (build/bin), LAB_NAME (a running
# lab: adds the pod path), CLIENT (default/cli) and SERVER (default/srv): pods of that lab on
# two nodes, SERVER running `connbench serve` on its pod IP, port 8090. Needs root and clang.
# Addresses 198.19.240-249.0/24; everything it makes is removed on exit.
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
P=${NS_PREFIX:-lf$$}
NETKIT=${NETKIT:-auto}
NSS="c n1 n2 s va vb hc hn hs xc xn xs"
[[ $NETKIT != 0 ]] && NSS+=" kc kn1 kn2 ks kva kvb"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/lab-floor.XXXXXX")
pids=()
cleanup() {
	local p n
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
	for n in $NSS; do ip netns del "$P-$n" 2>/dev/null; done
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
die() { echo "lab-floor: $*" >&2; exit 1; }

for n in $NSS; do
	ip netns add "$P-$n" || die "ip netns add $P-$n failed"
	ip -n "$P-$n" link set lo up
done
ip -n "$P-c" link add eth0 type veth peer name c netns "$P-n1" &&
	ip -n "$P-n1" link add name mesh type veth peer name mesh netns "$P-n2" &&
	ip -n "$P-s" link add eth0 type veth peer name s netns "$P-n2" &&
	ip -n "$P-va" link add eth0 type veth peer name eth0 netns "$P-vb" &&
	ip -n "$P-hc" link add eth0 type veth peer name c netns "$P-hn" &&
	ip -n "$P-hs" link add eth0 type veth peer name s netns "$P-hn" &&
	ip -n "$P-xc" link add eth0 type veth peer name c netns "$P-xn" &&
	ip -n "$P-xs" link add eth0 type veth peer name s netns "$P-xn" || die "veth pairs failed"
for x in "c eth0" "n1 c" "n1 mesh" "n2 mesh" "n2 s" "s eth0" "va eth0" "vb eth0" "hc eth0" \
	"hn c" "hn s" "hs eth0" "xc eth0" "xn c" "xn s" "xs eth0"; do
	set -- $x
	ip -n "$P-$1" link set "$2" up
done
# path_addrs C N1 N2 S A B: client C's eth0 198.19.A.2 behind N1's "c" (198.19.A.1), server
# S's eth0 198.19.B.2 behind N2's "s" (198.19.B.1; N2 = N1 for a one-node path), each end
# routing the other's /24 through its node.
path_addrs() {
	ip -n "$P-$1" addr add "198.19.$5.2/24" dev eth0 &&
		ip -n "$P-$1" route add "198.19.$6.0/24" via "198.19.$5.1" &&
		ip -n "$P-$2" addr add "198.19.$5.1/24" dev c &&
		ip -n "$P-$4" addr add "198.19.$6.2/24" dev eth0 &&
		ip -n "$P-$4" route add "198.19.$5.0/24" via "198.19.$6.1" &&
		ip -n "$P-$3" addr add "198.19.$6.1/24" dev s || die "addresses of $1 -> $4 failed"
}
# pair_addrs A B N: the two ends of one pair, 198.19.N.1 and .2
pair_addrs() {
	ip -n "$P-$1" addr add "198.19.$3.1/24" dev eth0 &&
		ip -n "$P-$2" addr add "198.19.$3.2/24" dev eth0 || die "addresses of $1 <-> $2 failed"
}
# serve NS ADDR: the path's server, connbench on ADDR:8090 in NS
serve() {
	nsenter --net="/run/netns/$P-$1" "$BIN/connbench" serve --addrs "$2" --port 8090 \
		>/dev/null 2>&1 &
	pids+=($!)
}
path_addrs c n1 n2 s 246 247
pair_addrs va vb 240
path_addrs hc hn hn hs 242 243
path_addrs xc xn xn xs 244 245

# link_json NS DEV FIELD
link_json() {
	ip -n "$P-$1" -j link show dev "$2" | /usr/bin/python3 -c '
import json, sys
v = json.load(sys.stdin)[0][sys.argv[1]]
print(", ".join("0x" + b for b in v.split(":")) if sys.argv[1] == "address" else v)' "$3"
}
# prog NAME OUT_IFINDEX DMAC SMAC [FWD [SECTION]]: one program per device, its next hop
# compiled in.
prog() {
	echo "SEC(\"${6:-classifier/$1}\") int $1(struct __sk_buff *skb)"
	echo "{ static const __u8 d[6] = {$3}, s[6] = {$4}; return ${5:-fwd}(skb, $2, d, s); }"
}
cat >"$tmp/fwd.h" <<'C'
#include <stddef.h>
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
char LICENSE[] SEC("license") = "GPL";
/*
 * What a router must do: TTL - 1 (checksum), the MACs, then to the next device's peer
 * (fwd, tc ingress) or out of the next device (fwdx: from a netkit program, which runs in a
 * transmit, where redirect_peer is refused). The return codes are tc's and netkit's alike.
 */
static __always_inline int rewrite(struct __sk_buff *skb, const __u8 *d, const __u8 *s)
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
	return TC_ACT_REDIRECT;
}
static __always_inline int fwd(struct __sk_buff *skb, int out, const __u8 *d, const __u8 *s)
{
	int r = rewrite(skb, d, s);

	return r == TC_ACT_REDIRECT ? bpf_redirect_peer(out, 0) : r;
}
static __always_inline int fwdx(struct __sk_buff *skb, int out, const __u8 *d, const __u8 *s)
{
	int r = rewrite(skb, d, s);

	return r == TC_ACT_REDIRECT ? bpf_redirect(out, 0) : r;
}
/* hop1tx: the rewrite alone, the packet goes on through its own device */
static __always_inline int keep(struct __sk_buff *skb, int out, const __u8 *d, const __u8 *s)
{
	int r = rewrite(skb, d, s);

	return r == TC_ACT_REDIRECT ? TC_ACT_OK : r;
}
C
{
	echo '#include "fwd.h"'
	prog n1_c "$(link_json n1 mesh ifindex)" "$(link_json n2 s address)" "$(link_json n2 mesh address)"
	prog n1_mesh "$(link_json n1 c ifindex)" "$(link_json c eth0 address)" "$(link_json n1 c address)"
	prog n2_s "$(link_json n2 mesh ifindex)" "$(link_json n1 c address)" "$(link_json n1 mesh address)"
	prog n2_mesh "$(link_json n2 s ifindex)" "$(link_json s eth0 address)" "$(link_json n2 s address)"
	prog hn_c "$(link_json hn s ifindex)" "$(link_json hs eth0 address)" "$(link_json hn s address)"
	prog hn_s "$(link_json hn c ifindex)" "$(link_json hc eth0 address)" "$(link_json hn c address)"
	prog xn_c "$(link_json xn s ifindex)" "$(link_json xs eth0 address)" "$(link_json xn s address)"
	prog xn_s "$(link_json xn c ifindex)" "$(link_json xc eth0 address)" "$(link_json xn c address)"
	# the MACs the packet already carries: the rewrite's cost without changing where it goes
	prog xc_eth0 0 "$(link_json xn c address)" "$(link_json xc eth0 address)" keep
	prog xs_eth0 0 "$(link_json xn s address)" "$(link_json xs eth0 address)" keep
} >"$tmp/floor.bpf.c"
bpfcc() {
	clang -O2 -g -target bpf -I"/usr/include/$(uname -m)-linux-gnu" -I"$tmp" -c "$1" -o "$2" ||
		die "clang $1 failed"
}
bpfcc "$tmp/floor.bpf.c" "$tmp/floor.o"
for x in "n1 c" "n1 mesh" "n2 s" "n2 mesh" "hn c" "hn s" "xn c" "xn s" "xc eth0 egress" \
	"xs eth0 egress"; do
	set -- $x
	ip netns exec "$P-$1" tc qdisc add dev "$2" clsact &&
		ip netns exec "$P-$1" tc filter add dev "$2" "${3:-ingress}" bpf da \
			obj "$tmp/floor.o" sec "classifier/$1_$2" || die "tc filter on $1/$2 failed"
done
if [[ $NETKIT != 0 ]]; then
	# The pods' devices are netkit pairs, made by the helper (iproute2 here predates netkit).
	cc -O2 -o "$tmp/nk" tools/bench/lab-floor-nk.c -lbpf -lmnl || die "cc lab-floor-nk failed"
	if ! ip netns exec "$P-kn1" "$tmp/nk" add c eth0 "/run/netns/$P-kc"; then
		[[ $NETKIT == auto ]] || die "no netkit pair: kernel without CONFIG_NETKIT?"
		echo "lab-floor: no netkit pair (kernel without CONFIG_NETKIT?): nkfloor and" \
			"nkveth not measured" >&2
		NETKIT=0
	fi
fi
if [[ $NETKIT != 0 ]]; then
	ip netns exec "$P-kn2" "$tmp/nk" add s eth0 "/run/netns/$P-ks" &&
		ip netns exec "$P-kva" "$tmp/nk" add eth0 eth0 "/run/netns/$P-kvb" &&
		ip -n "$P-kn1" link add name mesh type veth peer name mesh netns "$P-kn2" ||
		die "netkit pairs failed"
	for x in "kc eth0" "kn1 c" "kn1 mesh" "kn2 mesh" "kn2 s" "ks eth0" "kva eth0" "kvb eth0"; do
		set -- $x
		ip -n "$P-$1" link set "$2" up
	done
	path_addrs kc kn1 kn2 ks 248 249
	pair_addrs kva kvb 241
	# Out of a pod: the netkit program (in eth0's transmit) sends out of the node's mesh veth
	# with the MACs of the link; into a pod: tc on the mesh veth, redirect_peer into eth0.
	{
		echo '#include "fwd.h"'
		prog kn1_c "$(link_json kn1 mesh ifindex)" "$(link_json kn2 mesh address)" \
			"$(link_json kn1 mesh address)" fwdx tc
		prog kn2_s "$(link_json kn2 mesh ifindex)" "$(link_json kn1 mesh address)" \
			"$(link_json kn2 mesh address)" fwdx tc
	} >"$tmp/nk.bpf.c"
	{
		echo '#include "fwd.h"'
		prog kn1_mesh "$(link_json kn1 c ifindex)" "$(link_json kc eth0 address)" \
			"$(link_json kn1 c address)"
		prog kn2_mesh "$(link_json kn2 s ifindex)" "$(link_json ks eth0 address)" \
			"$(link_json kn2 s address)"
	} >"$tmp/nkmesh.bpf.c"
	bpfcc "$tmp/nk.bpf.c" "$tmp/nk.o"
	bpfcc "$tmp/nkmesh.bpf.c" "$tmp/nkmesh.o"
	for n in kn1 kn2; do
		ip netns exec "$P-$n" tc qdisc add dev mesh clsact &&
			ip netns exec "$P-$n" tc filter add dev mesh ingress bpf da obj "$tmp/nkmesh.o" \
				sec "classifier/${n}_mesh" || die "tc filter on $n/mesh failed"
	done
	for x in "kn1 kn1_c c" "kn2 kn2_s s"; do
		set -- $x
		ip netns exec "$P-$1" "$tmp/nk" hold "$tmp/nk.o" "$2" "$3" peer >"$tmp/hold-$1" &
		pids+=($!)
	done
	for n in kn1 kn2; do
		for ((i = 0; i < 50; i++)); do
			[[ -s $tmp/hold-$n ]] && break
			sleep 0.1
		done
		[[ $(cat "$tmp/hold-$n") == ready ]] || die "netkit programs in $n not attached"
	done
	serve ks 198.19.249.2
	serve kvb 198.19.241.2
fi
serve s 198.19.247.2
serve vb 198.19.240.2
serve hs 198.19.243.2
serve xs 198.19.245.2
sleep 1
nsenter --net="/run/netns/$P-c" ping -c1 -W2 198.19.247.2 >/dev/null || die "the floor path does not answer"

nsenter --net="/run/netns/$P-hc" ping -c1 -W2 198.19.243.2 >/dev/null ||
	die "the hop1 path does not answer"
# The reply's TTL says the transmit program ran too (64 - 2: S's eth0, then N)
nsenter --net="/run/netns/$P-xc" ping -c1 -W2 198.19.245.2 | grep -q "ttl=62 " ||
	die "the hop1tx path does not answer, or not through its programs"
PATHS="floor hop1 hop1tx veth"
if [[ $NETKIT != 0 ]]; then
	nsenter --net="/run/netns/$P-kc" ping -c1 -W2 198.19.249.2 >/dev/null ||
		die "the netkit floor path does not answer"
	PATHS+=" nkfloor nkveth"
fi
if [[ -n ${LAB_NAME:-} ]]; then
	LAB=(env SLUICE_LAB_BIN="$BIN" bash tools/lab/lab.sh)
	KC=("${KUBECTL:-$PWD/build/deps/kubectl-1.20/usr/bin/kubectl}" --kubeconfig
		"/run/sluice-lab/$LAB_NAME/kubeconfig")
	SRV=$("${KC[@]}" -n "${SERVER%%/*}" get pod "${SERVER#*/}" -o jsonpath='{.status.podIP}') &&
		[[ -n $SRV ]] || die "lab $LAB_NAME: pod $SERVER has no IP"
	PATHS+=" pod"
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
		hop1) line+=" hop1=$(T=198.19.243.2 cb nsenter --net="/run/netns/$P-hc")" ;;
		hop1tx) line+=" hop1tx=$(T=198.19.245.2 cb nsenter --net="/run/netns/$P-xc")" ;;
		nkfloor) line+=" nkfloor=$(T=198.19.249.2 cb nsenter --net="/run/netns/$P-kc")" ;;
		nkveth) line+=" nkveth=$(T=198.19.241.2 cb nsenter --net="/run/netns/$P-kva")" ;;
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
    for a, b in (("floor", "veth"), ("hop1", "veth"), ("hop1", "floor"), ("hop1tx", "veth"),
                 ("hop1tx", "floor"), ("hop1tx", "hop1"),
                 ("nkfloor", "veth"), ("nkfloor", "floor"),
                 ("nkveth", "veth"), ("pod", "veth"), ("pod", "floor")):
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
