// SPDX-License-Identifier: Apache-2.0
/*
 * Packet fixtures for the per-pod path of pods that opted out of the socket LB
 * (bpf/tc_pod.bpf.c), run with BPF_PROG_TEST_RUN: ingress on the pod's host veth (packets
 * from the pod) DNATs service traffic and records conntrack; egress (packets to the pod)
 * reverse-NATs replies. Each test checks the verdict, every byte of the output against the
 * input with only the expected fields rewritten, the checksums (recomputed here
 * independently) and the map state. Maps are unpinned; the process runs in its own netns.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <sched.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "abi/hostroute.h"
#include "abi/lb.h"
#include "abi/policy.h"
#include "harness.h"
#include "tc_pod.skel.h"

#define TC_ACT_UNSPEC	(-1)
#define TC_ACT_OK	0
#define TC_ACT_SHOT	2
#define TC_ACT_REDIRECT 7

#define POD  "198.18.65.2"
#define POD2 "198.18.65.3"
#define BE1  "198.18.65.10"
#define BE2  "198.18.66.10" /* on another node: still no SNAT (pod CIDRs route) */
#define VIP  "198.18.128.60"
#define ETH  14

static uint32_t ip4(const char *s)
{
	struct in_addr a;

	inet_pton(AF_INET, s, &a);
	return a.s_addr;
}

static uint32_t sum16(const uint8_t *p, size_t n, uint32_t sum)
{
	for (size_t i = 0; i + 1 < n; i += 2)
		sum += (uint32_t)p[i] << 8 | p[i + 1];
	if (n & 1)
		sum += (uint32_t)p[n - 1] << 8;
	return sum;
}

static uint16_t fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static void wr32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

static void wr16(uint8_t *p, uint16_t v)
{
	memcpy(p, &v, 2);
}

/* Recomputes the IPv4 and TCP/UDP checksums in place (20-byte IP header). */
static void fix_csums(uint8_t *b)
{
	size_t l4 = ETH + 20, l4len = ((size_t)b[ETH + 2] << 8 | b[ETH + 3]) - 20;
	uint8_t proto = b[ETH + 9], ph[12];
	size_t co = proto == IPPROTO_TCP ? 16 : 6;
	uint32_t s;

	b[ETH + 10] = b[ETH + 11] = 0;
	s = fold(sum16(b + ETH, 20, 0));
	b[ETH + 10] = s >> 8;
	b[ETH + 11] = s & 0xff;
	b[l4 + co] = b[l4 + co + 1] = 0;
	memcpy(ph, b + ETH + 12, 8);
	ph[8] = 0;
	ph[9] = proto;
	ph[10] = l4len >> 8;
	ph[11] = l4len & 0xff;
	s = fold(sum16(b + l4, l4len, sum16(ph, 12, 0)));
	if (proto == IPPROTO_UDP && s == 0)
		s = 0xffff;
	b[l4 + co] = s >> 8;
	b[l4 + co + 1] = s & 0xff;
}

/* A zeroed frame of len bytes with its Ethernet and 20-byte IPv4 header (DF, TTL 64); the
 * IPv4 checksum is left to the caller. */
static void put_hdrs(uint8_t *b, size_t len, uint8_t proto, const char *src, const char *dst)
{
	memset(b, 0, len);
	memcpy(b, (uint8_t[]){2, 0, 0, 0, 0, 1}, 6);
	memcpy(b + 6, (uint8_t[]){2, 0, 0, 0, 0, 2}, 6);
	b[12] = 0x08;
	b[ETH] = 0x45;
	b[ETH + 2] = (len - ETH) >> 8;
	b[ETH + 3] = (len - ETH) & 0xff;
	b[ETH + 6] = 0x40;
	b[ETH + 8] = 64;
	b[ETH + 9] = proto;
	wr32(b + ETH + 12, ip4(src));
	wr32(b + ETH + 16, ip4(dst));
}

/* Writes the IPv4 header checksum of frame b. */
static void ip_csum(uint8_t *b)
{
	uint32_t s;

	b[ETH + 10] = b[ETH + 11] = 0;
	s = fold(sum16(b + ETH, 20, 0));
	b[ETH + 10] = s >> 8;
	b[ETH + 11] = s & 0xff;
}

static size_t build(uint8_t *b, uint8_t proto, const char *src, const char *dst, uint16_t sport,
		    uint16_t dport, uint8_t tcp_flags)
{
	size_t hl = proto == IPPROTO_TCP ? 20 : 8, len = ETH + 20 + hl + 16;

	put_hdrs(b, len, proto, src, dst);
	wr16(b + ETH + 20, htons(sport));
	wr16(b + ETH + 22, htons(dport));
	if (proto == IPPROTO_TCP) {
		wr32(b + ETH + 24, htonl(1000));
		b[ETH + 32] = 5 << 4;
		b[ETH + 33] = tcp_flags;
		b[ETH + 34] = 0xfa;
	} else {
		wr16(b + ETH + 24, htons((uint16_t)(8 + 16)));
	}
	for (size_t i = 0; i < 16; i++)
		b[ETH + 20 + hl + i] = (uint8_t)(i * 5 + 1);
	fix_csums(b);
	return len;
}

static bool csums_ok(const uint8_t *b)
{
	size_t l4len = ((size_t)b[ETH + 2] << 8 | b[ETH + 3]) - 20;
	uint8_t ph[12];

	if (!ASSERT_EQ(fold(sum16(b + ETH, 20, 0)), 0, "IPv4 header checksum"))
		return false;
	memcpy(ph, b + ETH + 12, 8);
	ph[8] = 0;
	ph[9] = b[ETH + 9];
	ph[10] = l4len >> 8;
	ph[11] = l4len & 0xff;
	return ASSERT_EQ(fold(sum16(b + ETH + 20, l4len, sum16(ph, 12, 0))), 0, "L4 checksum");
}

struct run {
	int retval;
	uint32_t out_len;
	uint8_t out[512];
};

/* Output equals input with src/dst/ports replaced (NULL/0 = kept), checksums valid. */
static bool expect_rewrite(const uint8_t *in, size_t len, const struct run *r, const char *src,
			   const char *dst, uint16_t sport, uint16_t dport, const char *what)
{
	uint8_t exp[512];

	if (!ASSERT_EQ(r->out_len, len, what))
		return false;
	memcpy(exp, in, len);
	if (src)
		wr32(exp + ETH + 12, ip4(src));
	if (dst)
		wr32(exp + ETH + 16, ip4(dst));
	if (sport)
		wr16(exp + ETH + 20, htons(sport));
	if (dport)
		wr16(exp + ETH + 22, htons(dport));
	fix_csums(exp);
	if (!csums_ok(r->out))
		return false;
	for (size_t i = 0; i < len; i++)
		if (exp[i] != r->out[i])
			return TEST_FAIL_AT("%s: byte %zu is %02x, expected %02x", what, i,
					    r->out[i], exp[i]);
	return true;
}

static int print_libbpf(enum libbpf_print_level lvl, const char *fmt, va_list ap)
{
	return lvl == LIBBPF_DEBUG ? 0 : vfprintf(stderr, fmt, ap);
}

static bool in_netns;

static bool netns_enter(void)
{
	if (!in_netns) {
		if (unshare(CLONE_NEWNET) || system("ip link set lo up >/dev/null 2>&1"))
			return false;
		in_netns = true;
	}
	return true;
}

static struct tc_pod *pod_load_hr(bool hr)
{
	struct tc_pod *skel;
	struct bpf_map *m;

	libbpf_set_print(print_libbpf);
	if (!netns_enter())
		return NULL;
	skel = tc_pod__open();
	if (!skel)
		return NULL;
	bpf_object__for_each_map(m, skel->obj) bpf_map__set_pin_path(m, NULL);
	bpf_map__set_max_entries(skel->maps.sl_ct4_tcp_v1, 1024);
	bpf_map__set_max_entries(skel->maps.sl_ct4_any_v1, 1024);
	bpf_map__set_max_entries(skel->maps.sl_slots_v1, 1024);
	bpf_map__set_max_entries(skel->maps.sl_be4_v1, 256);
	skel->rodata->sl_hr_enabled = hr;
	if (tc_pod__load(skel)) {
		tc_pod__destroy(skel);
		return NULL;
	}
	return skel;
}

static struct tc_pod *pod_load(void)
{
	return pod_load_hr(false);
}

static int put_backend(struct tc_pod *s, uint32_t id, const char *addr, uint16_t port,
		       uint8_t proto, uint8_t state)
{
	struct sl_backend be = {.addr = ip4(addr),
				.port = htons(port),
				.proto = proto,
				.state = state,
				.node_id = 0};

	return bpf_map_update_elem(bpf_map__fd(s->maps.sl_be4_v1), &id, &be, 0) ? -errno : 0;
}

static int put_slot(struct tc_pod *s, uint32_t idx, uint32_t id)
{
	return bpf_map_update_elem(bpf_map__fd(s->maps.sl_slots_v1), &idx, &id, 0) ? -errno : 0;
}

static int put_svc(struct tc_pod *s, const char *addr, uint16_t port, uint8_t proto, uint8_t scope,
		   uint16_t flags, uint32_t svc_id, uint32_t base, uint16_t count)
{
	struct sl_svc_key k = {
		.addr = ip4(addr), .port = htons(port), .proto = proto, .scope = scope};
	struct sl_svc_val v = {.svc_id = svc_id, .slot_base = base, .count = count, .flags = flags};

	return bpf_map_update_elem(bpf_map__fd(s->maps.sl_svc4_v1), &k, &v, 0) ? -errno : 0;
}

static int run_prog(struct bpf_program *p, const uint8_t *in, size_t len, struct run *r)
{
	struct __sk_buff ctx = {.ifindex = 1};
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = in, .data_size_in = (uint32_t)len,
		    .data_out = r->out, .data_size_out = sizeof(r->out), .ctx_in = &ctx,
		    .ctx_size_in = sizeof(ctx), .repeat = 1);

	if (bpf_prog_test_run_opts(bpf_program__fd(p), &o))
		return -errno;
	r->retval = (int)o.retval;
	r->out_len = o.data_size_out;
	return 0;
}

static uint64_t counter(struct tc_pod *s, uint32_t reason)
{
	int ncpu = libbpf_num_possible_cpus();
	struct sl_counter *c = ncpu > 0 ? calloc((size_t)ncpu, sizeof(*c)) : NULL;
	uint64_t total = 0;

	if (c && !bpf_map_lookup_elem(bpf_map__fd(s->maps.sl_podctr_v1), &reason, c))
		for (int i = 0; i < ncpu; i++)
			total += c[i].packets;
	free(c);
	return total;
}

static struct sl_ct4_key ct_key(uint8_t proto, const char *sa, const char *da, uint16_t sp,
				uint16_t dp, uint8_t dir)
{
	struct sl_ct4_key k = {.saddr = ip4(sa),
			       .daddr = ip4(da),
			       .sport = htons(sp),
			       .dport = htons(dp),
			       .proto = proto,
			       .dir = dir};

	return k;
}

static int ct_fd(struct tc_pod *s, uint8_t proto)
{
	return bpf_map__fd(proto == IPPROTO_TCP ? s->maps.sl_ct4_tcp_v1 : s->maps.sl_ct4_any_v1);
}

static int ct_get(struct tc_pod *s, uint8_t proto, const char *sa, const char *da, uint16_t sp,
		  uint16_t dp, uint8_t dir, struct sl_ct4_val *v)
{
	struct sl_ct4_key k = ct_key(proto, sa, da, sp, dp, dir);

	return bpf_map_lookup_elem(ct_fd(s, proto), &k, v) ? -errno : 0;
}

/* Writes a TCP flow's CT entry (an existing one: the test changes what it read). */
static int ct_put(struct tc_pod *s, const char *sa, const char *da, uint16_t sp, uint16_t dp,
		  uint8_t dir, const struct sl_ct4_val *v)
{
	struct sl_ct4_key k = ct_key(IPPROTO_TCP, sa, da, sp, dp, dir);

	return bpf_map_update_elem(ct_fd(s, IPPROTO_TCP), &k, v, 0) ? -errno : 0;
}

#define LOAD_OR_OUT(s)                                  \
	do {                                            \
		(s) = pod_load();                       \
		if (!ASSERT_NOT_NULL(s, "load tc_pod")) \
			goto out;                       \
	} while (0)

/* ClusterIP from the pod: DNAT to the backend, client kept, both CT entries. */
TEST(clusterip_tcp_dnat_reply_reverse_nat)
{
	struct tc_pod *s = NULL;
	struct sl_ct4_val v;
	uint8_t in[256], rep[256];
	struct run r;
	size_t len;

	LOAD_OR_OUT(s);
	if (!ASSERT_OK(put_backend(s, 1, BE1, 8080, IPPROTO_TCP, SL_BE_ACTIVE), "be") ||
	    !ASSERT_OK(put_slot(s, 0, 1), "slot") ||
	    !ASSERT_OK(put_svc(s, VIP, 80, IPPROTO_TCP, SL_SCOPE_EXT, 0, 5, 0, 1), "svc"))
		goto out;
	len = build(in, IPPROTO_TCP, POD, VIP, 40000, 80, 0x02);
	if (!ASSERT_OK(run_prog(s->progs.tc_pod_ingress, in, len, &r), "run ingress"))
		goto out;
	ASSERT_EQ(r.retval, TC_ACT_OK, "into the host stack");
	expect_rewrite(in, len, &r, NULL, BE1, 0, 8080, "DNAT bytes");
	if (ASSERT_OK(ct_get(s, IPPROTO_TCP, POD, VIP, 40000, 80, SL_CT_DIR_FWD, &v), "FWD CT")) {
		ASSERT_EQ(v.backend_id, 1, "ct backend");
		ASSERT_EQ(v.svc_id, 5, "ct svc");
		ASSERT_EQ(v.flags & SL_CT_F_SNAT, 0, "never SNAT");
	}
	ASSERT_OK(ct_get(s, IPPROTO_TCP, BE1, POD, 8080, 40000, SL_CT_DIR_REPLY, &v), "REPLY CT");
	ASSERT_EQ(counter(s, SL_R_OK), 1, "OK counter");

	/* The SYN-ACK toward the pod: source back to the VIP. */
	len = build(rep, IPPROTO_TCP, BE1, POD, 8080, 40000, 0x12);
	if (!ASSERT_OK(run_prog(s->progs.tc_pod_egress, rep, len, &r), "run egress"))
		goto out;
	ASSERT_EQ(r.retval, TC_ACT_OK, "egress verdict");
	expect_rewrite(rep, len, &r, VIP, NULL, 80, 0, "reverse NAT bytes");

	/* Unrelated traffic to the pod passes untouched. */
	len = build(rep, IPPROTO_TCP, POD2, POD, 5555, 40000, 0x12);
	if (!ASSERT_OK(run_prog(s->progs.tc_pod_egress, rep, len, &r), "run egress other"))
		goto out;
	ASSERT_EQ(r.retval, TC_ACT_OK, "other verdict");
	expect_rewrite(rep, len, &r, NULL, NULL, 0, 0, "other untouched");
	ASSERT_EQ(counter(s, SL_R_OK), 2, "only the reply counted");
out:
	tc_pod__destroy(s);
}

/* UDP to a backend on another node: DNAT only, the reply comes back through the veth. */
TEST(clusterip_udp_remote_backend_no_snat)
{
	struct tc_pod *s = NULL;
	uint8_t in[256];
	struct run r;
	size_t len;

	LOAD_OR_OUT(s);
	if (!ASSERT_OK(put_backend(s, 2, BE2, 53, IPPROTO_UDP, SL_BE_ACTIVE), "be") ||
	    !ASSERT_OK(put_slot(s, 0, 2), "slot") ||
	    !ASSERT_OK(put_svc(s, VIP, 53, IPPROTO_UDP, SL_SCOPE_EXT, 0, 6, 0, 1), "svc"))
		goto out;
	len = build(in, IPPROTO_UDP, POD, VIP, 33333, 53, 0);
	if (!ASSERT_OK(run_prog(s->progs.tc_pod_ingress, in, len, &r), "run"))
		goto out;
	ASSERT_EQ(r.retval, TC_ACT_OK, "verdict");
	expect_rewrite(in, len, &r, NULL, BE2, 0, 0, "DNAT keeps the pod source");
	len = build(in, IPPROTO_UDP, BE2, POD, 53, 33333, 0);
	if (!ASSERT_OK(run_prog(s->progs.tc_pod_egress, in, len, &r), "run reply"))
		goto out;
	expect_rewrite(in, len, &r, VIP, NULL, 0, 0, "reply from the VIP");
out:
	tc_pod__destroy(s);
}

/* A service without endpoints: a TCP RST goes straight back to the pod. */
TEST(no_endpoints_rst_back_to_pod)
{
	struct tc_pod *s = NULL;
	uint8_t in[256];
	struct run r;
	size_t len;

	LOAD_OR_OUT(s);
	if (!ASSERT_OK(put_svc(s, VIP, 80, IPPROTO_TCP, SL_SCOPE_EXT, 0, 7, 0, 0), "svc"))
		goto out;
	len = build(in, IPPROTO_TCP, POD, VIP, 40001, 80, 0x02);
	if (!ASSERT_OK(run_prog(s->progs.tc_pod_ingress, in, len, &r), "run"))
		goto out;
	ASSERT_EQ(r.retval, TC_ACT_REDIRECT, "redirected back out of the veth");
	ASSERT_EQ(memcmp(r.out + ETH + 12, in + ETH + 16, 4), 0, "RST from the VIP");
	ASSERT_EQ(memcmp(r.out + ETH + 16, in + ETH + 12, 4), 0, "RST to the pod");
	ASSERT_TRUE(r.out[ETH + 20 + 13] & 0x04, "RST flag");
	csums_ok(r.out);
	ASSERT_EQ(counter(s, SL_R_NO_BACKEND), 1, "no-backend counter");
out:
	tc_pod__destroy(s);
}

/* Pod-to-pod (no service) is not touched and leaves no state. */
TEST(non_service_traffic_untouched)
{
	struct tc_pod *s = NULL;
	struct sl_ct4_val v;
	uint8_t in[256];
	struct run r;
	size_t len;

	LOAD_OR_OUT(s);
	len = build(in, IPPROTO_TCP, POD, POD2, 40002, 80, 0x02);
	if (!ASSERT_OK(run_prog(s->progs.tc_pod_ingress, in, len, &r), "run"))
		goto out;
	ASSERT_EQ(r.retval, TC_ACT_OK, "verdict");
	expect_rewrite(in, len, &r, NULL, NULL, 0, 0, "untouched");
	ASSERT_EQ(ct_get(s, IPPROTO_TCP, POD, POD2, 40002, 80, SL_CT_DIR_FWD, &v), -ENOENT,
		  "no CT");
out:
	tc_pod__destroy(s);
}

/* Slots pointing at a removed backend are skipped; an established flow keeps its backend
 * when the slot block changes. */
TEST(gone_backend_skipped_and_flow_sticks)
{
	struct tc_pod *s = NULL;
	uint8_t in[256];
	struct run r;
	size_t len;

	LOAD_OR_OUT(s);
	if (!ASSERT_OK(put_backend(s, 1, BE1, 8080, IPPROTO_TCP, SL_BE_GONE), "gone be") ||
	    !ASSERT_OK(put_backend(s, 2, BE2, 8080, IPPROTO_TCP, SL_BE_ACTIVE), "be") ||
	    !ASSERT_OK(put_slot(s, 0, 1), "slot0") || !ASSERT_OK(put_slot(s, 1, 2), "slot1") ||
	    !ASSERT_OK(put_svc(s, VIP, 80, IPPROTO_TCP, SL_SCOPE_EXT, 0, 8, 0, 2), "svc"))
		goto out;
	for (uint16_t p = 41000; p < 41008; p++) {
		len = build(in, IPPROTO_TCP, POD, VIP, p, 80, 0x02);
		if (!ASSERT_OK(run_prog(s->progs.tc_pod_ingress, in, len, &r), "run"))
			goto out;
		expect_rewrite(in, len, &r, NULL, BE2, 0, 8080, "only the live backend");
	}
	/* Re-point the service at BE1 revived: the flow on 41000 stays on BE2. */
	put_backend(s, 1, BE1, 8080, IPPROTO_TCP, SL_BE_ACTIVE);
	put_slot(s, 2, 1);
	put_svc(s, VIP, 80, IPPROTO_TCP, SL_SCOPE_EXT, 0, 8, 2, 1);
	len = build(in, IPPROTO_TCP, POD, VIP, 41000, 80, 0x10);
	if (!ASSERT_OK(run_prog(s->progs.tc_pod_ingress, in, len, &r), "run established"))
		goto out;
	expect_rewrite(in, len, &r, NULL, BE2, 0, 8080, "established flow keeps its backend");
out:
	tc_pod__destroy(s);
}

/* internalTrafficPolicy: Local — the EXT entry sends in-node clients to the INT entry;
 * without one the connection is refused rather than sent to a remote endpoint. */
TEST(internal_traffic_policy_local)
{
	struct tc_pod *s = NULL;
	uint8_t in[256];
	struct run r;
	size_t len;

	LOAD_OR_OUT(s);
	if (!ASSERT_OK(put_backend(s, 1, BE1, 8080, IPPROTO_TCP, SL_BE_ACTIVE), "local be") ||
	    !ASSERT_OK(put_backend(s, 2, BE2, 8080, IPPROTO_TCP, SL_BE_ACTIVE), "remote be") ||
	    !ASSERT_OK(put_slot(s, 0, 2), "ext slot") ||
	    !ASSERT_OK(put_slot(s, 1, 1), "int slot") ||
	    !ASSERT_OK(put_svc(s, VIP, 80, IPPROTO_TCP, SL_SCOPE_EXT, SL_SVC_F_LOCAL_INT, 9, 0, 1),
		       "ext") ||
	    !ASSERT_OK(put_svc(s, VIP, 80, IPPROTO_TCP, SL_SCOPE_INT, 0, 9, 1, 1), "int"))
		goto out;
	len = build(in, IPPROTO_TCP, POD, VIP, 42000, 80, 0x02);
	if (!ASSERT_OK(run_prog(s->progs.tc_pod_ingress, in, len, &r), "run"))
		goto out;
	expect_rewrite(in, len, &r, NULL, BE1, 0, 8080, "local endpoint only");

	put_svc(s, VIP, 81, IPPROTO_TCP, SL_SCOPE_EXT, SL_SVC_F_LOCAL_INT, 10, 0, 1);
	len = build(in, IPPROTO_TCP, POD, VIP, 42001, 81, 0x02);
	if (!ASSERT_OK(run_prog(s->progs.tc_pod_ingress, in, len, &r), "run no int"))
		goto out;
	ASSERT_EQ(r.retval, TC_ACT_REDIRECT, "refused: no local endpoint");
out:
	tc_pod__destroy(s);
}

/* --- BPF host routing (lib/sl_hostroute.h) ------------------------------------------------- */

#define PEER_NODE_POD "198.18.66.10" /* behind 198.18.1.2, neighbour known */
#define COLD_POD      "198.18.67.10" /* behind 198.18.1.3, no neighbour entry */
#define OWN_GONE_POD  "198.18.65.99" /* own podCIDR, no such pod: unreachable */
#define OUTSIDE	      "198.18.1.50"  /* not a pod address */

static const uint8_t POD2_MAC[6] = {2, 0, 0, 0, 0x22, 0x22};
static const uint8_t HOST2_MAC[6] = {2, 0, 0, 0, 0x11, 0x11};
static const uint8_t GW_MAC[6] = {2, 0, 0, 0, 0, 9};

/* The test netns as a node: a device hr0 (a veth) toward the fabric, routes to two other nodes'
 * podCIDRs, the own podCIDR unreachable, forwarding on. Once per process. */
static int hr_net(void)
{
	static int idx;

	if (idx)
		return idx;
	if (!netns_enter())
		return 0;
	if (system("ip link add hr0 type veth peer name hr0p && ip link set hr0p up && ip link set "
		   "hr0 up && "
		   "ip link set hr0 address 02:00:00:00:00:01 && "
		   "ip addr add 198.18.1.1/24 dev hr0 && "
		   "ip route add 198.18.66.0/24 via 198.18.1.2 && "
		   "ip route add 198.18.67.0/24 via 198.18.1.3 && "
		   "ip route add unreachable 198.18.65.0/24 && "
		   "ip neigh replace 198.18.1.2 lladdr 02:00:00:00:00:09 dev hr0 nud permanent && "
		   "sysctl -qw net.ipv4.ip_forward=1"))
		return 0;
	idx = (int)if_nametoindex("hr0");
	return idx;
}

/* POD2 as a pod of this node behind ifindex (its host veth), flags SL_HR_F_*. */
static int put_hr_ep(struct tc_pod *s, const char *ip, int ifindex, uint8_t flags)
{
	struct sl_hr_ep v = {.ifindex = (uint32_t)ifindex, .flags = flags};
	uint32_t k = ip4(ip);

	memcpy(v.mac, POD2_MAC, 6);
	memcpy(v.host_mac, HOST2_MAC, 6);
	return bpf_map_update_elem(bpf_map__fd(s->maps.sl_hr_ep_v1), &k, &v, 0) ? -errno : 0;
}

static int put_hr_cidr(struct tc_pod *s, const char *net, uint32_t plen)
{
	struct sl_hr_cidr_key k = {.prefixlen = plen, .addr = ip4(net)};
	uint8_t one = 1;

	return bpf_map_update_elem(bpf_map__fd(s->maps.sl_hr_cidr_v1), &k, &one, 0) ? -errno : 0;
}

/* Policy state of pod ip: its ingress and egress rule sets (SL_NP_RS_NONE: not isolated). */
static int put_np_ep_rs(struct tc_pod *s, const char *ip, uint32_t id, uint32_t rs_in,
			uint32_t rs_eg)
{
	struct sl_np_ep_key k = {.family = SL_NP_AF_INET};
	struct sl_np_ep_val v = {.identity = id, .ns = 0};
	uint32_t a = ip4(ip);

	memcpy(k.addr, &a, 4);
	v.ruleset[SL_NP_INGRESS] = rs_in;
	v.ruleset[SL_NP_EGRESS] = rs_eg;
	return bpf_map_update_elem(bpf_map__fd(s->maps.sl_np_ep_v1), &k, &v, 0) ? -errno : 0;
}

static int put_np_ep(struct tc_pod *s, const char *ip, uint32_t id, uint32_t rs_in)
{
	return put_np_ep_rs(s, ip, id, rs_in, SL_NP_RS_NONE);
}

static uint64_t pcpu_sum(int fd, uint32_t idx)
{
	int ncpu = libbpf_num_possible_cpus();
	struct sl_counter *c = ncpu > 0 ? calloc((size_t)ncpu, sizeof(*c)) : NULL;
	uint64_t total = 0;

	if (c && !bpf_map_lookup_elem(fd, &idx, c))
		for (int i = 0; i < ncpu; i++)
			total += c[i].packets;
	free(c);
	return total;
}

static uint64_t hr_ctr(struct tc_pod *s, uint32_t idx)
{
	return pcpu_sum(bpf_map__fd(s->maps.sl_hr_ctr_v1), idx);
}

static uint64_t np_ctr(struct tc_pod *s, uint32_t idx)
{
	return pcpu_sum(bpf_map__fd(s->maps.sl_np_ctr_v1), idx);
}

/* The policy cache's key of a TCP flow, as the programs normalise it. */
static struct sl_np_ct_key np_ct_key(const char *sa, const char *da, uint16_t sp, uint16_t dp,
				     uint8_t dir)
{
	struct sl_np_ct_key k = {.saddr = ip4(sa),
				 .daddr = ip4(da),
				 .sport = htons(sp),
				 .dport = htons(dp),
				 .proto = IPPROTO_TCP,
				 .dir = dir};

	sl_np_ct_key_norm(&k);
	return k;
}

static bool np_ct_has(struct tc_pod *s, const char *sa, const char *da, uint16_t sp, uint16_t dp,
		      uint8_t dir, uint8_t verdict)
{
	struct sl_np_ct_key k = np_ct_key(sa, da, sp, dp, dir);
	struct sl_np_ct_val v;

	return !bpf_map_lookup_elem(bpf_map__fd(s->maps.sl_np_ct_v1), &k, &v) &&
	       v.verdict == verdict;
}

struct flows {
	struct sl_np_flow f[8];
	int n;
};

static int flow_cb(void *ctx, void *data, size_t len)
{
	struct flows *fl = ctx;

	if (len == sizeof(struct sl_np_flow) && fl->n < 8)
		memcpy(&fl->f[fl->n++], data, len);
	return 0;
}

static int flows_read(struct tc_pod *s, struct flows *fl)
{
	struct ring_buffer *rb =
		ring_buffer__new(bpf_map__fd(s->maps.sl_np_flow_v1), flow_cb, fl, NULL);
	int n;

	fl->n = 0;
	if (!rb)
		return -errno;
	n = ring_buffer__consume(rb);
	ring_buffer__free(rb);
	return n < 0 ? n : 0;
}

/* Output equals input with TTL - 1 (checksum valid) and the given MACs. */
static bool expect_forwarded(const uint8_t *in, size_t len, const struct run *r,
			     const uint8_t *dmac, const uint8_t *smac, const char *what)
{
	uint8_t exp[512];

	if (!ASSERT_EQ(r->out_len, len, what))
		return false;
	memcpy(exp, in, len);
	exp[ETH + 8]--;
	memcpy(exp, dmac, 6);
	memcpy(exp + 6, smac, 6);
	fix_csums(exp);
	if (!csums_ok(r->out))
		return false;
	for (size_t i = 0; i < len; i++)
		if (exp[i] != r->out[i])
			return TEST_FAIL_AT("%s: byte %zu is %02x, expected %02x", what, i,
					    r->out[i], exp[i]);
	return true;
}

/* Same node: the destination's ingress policy runs in the source's program, then
 * redirect_peer into the destination with the stack's TTL and MACs; the flow record names
 * the destination's veth, as its own tc egress program would have. */
TEST(hostroute_local_delivery_runs_ingress_policy)
{
	struct tc_pod *s = NULL;
	struct flows fl;
	uint8_t in[256];
	struct run r;
	size_t len;
	int dev = hr_net();

	if (!ASSERT_TRUE(dev > 0, "test node network"))
		return;
	s = pod_load_hr(true);
	if (!ASSERT_NOT_NULL(s, "load tc_pod (host routing)"))
		goto out;
	if (!ASSERT_OK(put_hr_ep(s, POD2, dev, 0), "hr ep") ||
	    !ASSERT_OK(put_np_ep(s, POD2, 100, SL_NP_RS_NONE), "np ep"))
		goto out;
	len = build(in, IPPROTO_TCP, POD, POD2, 43000, 80, 0x02);
	if (!ASSERT_OK(run_prog(s->progs.tc_pol_ingress, in, len, &r), "run"))
		goto out;
	ASSERT_EQ(r.retval, TC_ACT_REDIRECT, "redirected into the pod");
	expect_forwarded(in, len, &r, POD2_MAC, HOST2_MAC, "local delivery bytes");
	ASSERT_EQ(hr_ctr(s, SL_HR_C_PEER_POD), 1, "peer-pod counter");
	ASSERT_TRUE(np_ct_has(s, POD, POD2, 43000, 80, SL_NP_EGRESS, SL_NP_CT_ALLOW),
		    "egress side cached");
	ASSERT_TRUE(np_ct_has(s, POD, POD2, 43000, 80, SL_NP_INGRESS, SL_NP_CT_ALLOW),
		    "ingress side cached");
	if (ASSERT_OK(flows_read(s, &fl), "ring") && ASSERT_EQ(fl.n, 2, "two decisions")) {
		ASSERT_EQ(fl.f[0].dir, SL_NP_EGRESS, "first: the source's egress");
		ASSERT_EQ(fl.f[0].ifindex, 1, "on the source veth");
		ASSERT_EQ(fl.f[1].dir, SL_NP_INGRESS, "then the destination's ingress");
		ASSERT_EQ(fl.f[1].ifindex, (uint32_t)dev, "reported on the destination veth");
	}
	/* The reply (SYN-ACK) from POD2's veth back to POD: cached in both directions. */
	ASSERT_OK(put_hr_ep(s, POD, dev, 0), "hr ep of the client");
	len = build(in, IPPROTO_TCP, POD2, POD, 80, 43000, 0x12);
	if (!ASSERT_OK(run_prog(s->progs.tc_pol_ingress, in, len, &r), "run reply"))
		goto out;
	ASSERT_EQ(r.retval, TC_ACT_REDIRECT, "reply redirected");
	ASSERT_EQ(np_ctr(s, SL_NP_C_CACHED), 2, "reply passed by the cache on both sides");
out:
	tc_pod__destroy(s);
}

/* The destination's ingress rules deny: dropped in the redirecting program (from a pod of
 * the same node and from the fabric), counted and reported as on the veth. */
TEST(hostroute_ingress_deny_before_redirect)
{
	struct tc_pod *s = NULL;
	struct flows fl;
	uint8_t in[256];
	struct run r;
	size_t len;
	int dev = hr_net();

	if (!ASSERT_TRUE(dev > 0, "test node network"))
		return;
	s = pod_load_hr(true);
	if (!ASSERT_NOT_NULL(s, "load tc_pod (host routing)"))
		goto out;
	if (!ASSERT_OK(put_hr_ep(s, POD2, dev, 0), "hr ep") ||
	    !ASSERT_OK(put_hr_cidr(s, "198.18.64.0", 18), "podCIDRs") ||
	    !ASSERT_OK(put_np_ep(s, POD2, 100, SL_NP_RS_DENY), "np ep: ingress deny-all"))
		goto out;
	len = build(in, IPPROTO_TCP, POD, POD2, 43001, 80, 0x02);
	if (!ASSERT_OK(run_prog(s->progs.tc_pol_ingress, in, len, &r), "run same node"))
		goto out;
	ASSERT_EQ(r.retval, TC_ACT_SHOT, "same node: dropped");
	len = build(in, IPPROTO_TCP, BE2, POD2, 43002, 80, 0x02);
	if (!ASSERT_OK(run_prog(s->progs.tc_hr_fabric, in, len, &r), "run fabric"))
		goto out;
	ASSERT_EQ(r.retval, TC_ACT_SHOT, "from another node: dropped");
	ASSERT_EQ(np_ctr(s, SL_R_POLICY_INGRESS), 2, "ingress-policy drops");
	ASSERT_EQ(hr_ctr(s, SL_HR_C_PEER_POD) + hr_ctr(s, SL_HR_C_PEER_NET), 0,
		  "nothing delivered");
	ASSERT_TRUE(np_ct_has(s, BE2, POD2, 43002, 80, SL_NP_INGRESS, SL_NP_CT_DENY),
		    "deny cached for the report");
	if (ASSERT_OK(flows_read(s, &fl), "ring") && ASSERT_TRUE(fl.n >= 2, "decisions")) {
		ASSERT_EQ(fl.f[fl.n - 1].verdict, SL_NP_CT_DENY, "deny reported");
		ASSERT_EQ(fl.f[fl.n - 1].reason, SL_R_POLICY_INGRESS, "ingress reason");
		ASSERT_EQ(fl.f[fl.n - 1].ifindex, (uint32_t)dev, "on the destination veth");
	}
out:
	tc_pod__destroy(s);
}

/* From the fabric: a local pod is delivered (allowed); anything else goes on to the next
 * program untouched (TCX_NEXT), as does everything with host routing off. */
TEST(hostroute_fabric_delivers_local_pods_only)
{
	struct tc_pod *s = NULL, *off = NULL;
	uint8_t in[256];
	struct run r;
	size_t len;
	int dev = hr_net();

	if (!ASSERT_TRUE(dev > 0, "test node network"))
		return;
	s = pod_load_hr(true);
	if (!ASSERT_NOT_NULL(s, "load tc_pod (host routing)") ||
	    !ASSERT_OK(put_hr_ep(s, POD2, dev, 0), "hr ep") ||
	    !ASSERT_OK(put_hr_cidr(s, "198.18.64.0", 18), "podCIDRs"))
		goto out;
	/* From outside the podCIDRs: the stack both ways (conntrack, masquerade). */
	len = build(in, IPPROTO_UDP, OUTSIDE, POD2, 5353, 53, 0);
	if (!ASSERT_OK(run_prog(s->progs.tc_hr_fabric, in, len, &r), "run from outside"))
		goto out;
	ASSERT_EQ(r.retval, TC_ACT_UNSPEC, "not from a pod: next program");
	expect_rewrite(in, len, &r, NULL, NULL, 0, 0, "from outside untouched");
	len = build(in, IPPROTO_UDP, BE2, POD2, 5353, 53, 0);
	if (!ASSERT_OK(run_prog(s->progs.tc_hr_fabric, in, len, &r), "run local"))
		goto out;
	ASSERT_EQ(r.retval, TC_ACT_REDIRECT, "delivered");
	expect_forwarded(in, len, &r, POD2_MAC, HOST2_MAC, "fabric delivery bytes");
	ASSERT_EQ(hr_ctr(s, SL_HR_C_PEER_NET), 1, "peer-net counter");

	len = build(in, IPPROTO_UDP, BE2, POD, 5353, 53, 0);
	if (!ASSERT_OK(run_prog(s->progs.tc_hr_fabric, in, len, &r), "run not local"))
		goto out;
	ASSERT_EQ(r.retval, TC_ACT_UNSPEC, "not ours: next program");
	expect_rewrite(in, len, &r, NULL, NULL, 0, 0, "untouched");

	/* TTL 1: the stack must answer with time exceeded. */
	len = build(in, IPPROTO_UDP, BE2, POD2, 5353, 53, 0);
	in[ETH + 8] = 1;
	fix_csums(in);
	if (!ASSERT_OK(run_prog(s->progs.tc_hr_fabric, in, len, &r), "run ttl 1"))
		goto out;
	ASSERT_EQ(r.retval, TC_ACT_UNSPEC, "TTL 1: kernel path");
	ASSERT_EQ(hr_ctr(s, SL_HR_C_STACK), 1, "stack counter");

	off = pod_load_hr(false);
	if (!ASSERT_NOT_NULL(off, "load tc_pod (kernel routing)") ||
	    !ASSERT_OK(put_hr_ep(off, POD2, dev, 0), "hr ep"))
		goto out;
	len = build(in, IPPROTO_UDP, BE2, POD2, 5353, 53, 0);
	if (!ASSERT_OK(run_prog(off->progs.tc_hr_fabric, in, len, &r), "run off"))
		goto out;
	ASSERT_EQ(r.retval, TC_ACT_UNSPEC, "off: next program");
	len = build(in, IPPROTO_TCP, POD, POD2, 43003, 80, 0x02);
	if (!ASSERT_OK(run_prog(off->progs.tc_pol_ingress, in, len, &r), "run off from pod"))
		goto out;
	ASSERT_EQ(r.retval, TC_ACT_OK, "off: into the stack");
	expect_rewrite(in, len, &r, NULL, NULL, 0, 0, "off: untouched");
out:
	tc_pod__destroy(off);
	tc_pod__destroy(s);
}

/* The test node network (hr_net) and tc_pod with host routing and the
 * podCIDR 198.18.64.0/18; NULL, the failure asserted, when any of it fails. */
static struct tc_pod *hr_pod_with_cidr(void)
{
	struct tc_pod *s;

	if (!ASSERT_TRUE(hr_net() > 0, "test node network"))
		return NULL;
	s = pod_load_hr(true);
	if (!ASSERT_NOT_NULL(s, "load tc_pod (host routing)"))
		return NULL;
	if (!ASSERT_OK(put_hr_cidr(s, "198.18.64.0", 18), "podCIDRs")) {
		tc_pod__destroy(s);
		return NULL;
	}
	return s;
}

/* A pod of another node: FIB lookup, MACs of the next hop, TTL - 1, redirect; an
 * unresolved neighbour uses redirect_neigh; outside the podCIDRs or unroutable: the stack. */
TEST(hostroute_fib_to_other_nodes)
{
	struct tc_pod *s = NULL;
	uint8_t in[256];
	struct run r;
	size_t len;

	s = hr_pod_with_cidr();
	if (!s)
		return;
	len = build(in, IPPROTO_TCP, POD, PEER_NODE_POD, 44000, 80, 0x02);
	if (!ASSERT_OK(run_prog(s->progs.tc_pol_ingress, in, len, &r), "run known neigh"))
		goto out;
	ASSERT_EQ(r.retval, TC_ACT_REDIRECT, "redirected to hr0");
	expect_forwarded(in, len, &r, GW_MAC, (const uint8_t[]){2, 0, 0, 0, 0, 1},
			 "next hop's MAC, hr0's MAC");

	len = build(in, IPPROTO_TCP, POD, COLD_POD, 44001, 80, 0x02);
	if (!ASSERT_OK(run_prog(s->progs.tc_pol_ingress, in, len, &r), "run cold neigh"))
		goto out;
	ASSERT_EQ(r.retval, TC_ACT_REDIRECT, "redirect_neigh");
	ASSERT_EQ(r.out[ETH + 8], 63, "TTL decremented");
	csums_ok(r.out);
	ASSERT_EQ(hr_ctr(s, SL_HR_C_FIB), 2, "fib counter");

	len = build(in, IPPROTO_TCP, POD, OWN_GONE_POD, 44002, 80, 0x02);
	if (!ASSERT_OK(run_prog(s->progs.tc_pol_ingress, in, len, &r), "run unreachable"))
		goto out;
	ASSERT_EQ(r.retval, TC_ACT_OK, "unreachable: the stack answers");
	expect_rewrite(in, len, &r, NULL, NULL, 0, 0, "unreachable untouched");
	ASSERT_EQ(hr_ctr(s, SL_HR_C_STACK), 1, "stack counter");

	len = build(in, IPPROTO_TCP, POD, OUTSIDE, 44003, 80, 0x02);
	if (!ASSERT_OK(run_prog(s->progs.tc_pol_ingress, in, len, &r), "run outside"))
		goto out;
	ASSERT_EQ(r.retval, TC_ACT_OK, "outside the cluster: the stack (masquerade)");
	expect_rewrite(in, len, &r, NULL, NULL, 0, 0, "outside untouched");

	/* A fragment: the stack's conntrack would reassemble it before the policy. */
	len = build(in, IPPROTO_TCP, POD, PEER_NODE_POD, 44004, 80, 0x02);
	in[ETH + 6] = 0x20; /* MF */
	fix_csums(in);
	if (!ASSERT_OK(run_prog(s->progs.tc_pol_ingress, in, len, &r), "run fragment"))
		goto out;
	ASSERT_EQ(r.retval, TC_ACT_OK, "fragment: the stack");
out:
	tc_pod__destroy(s);
}

/* Packets sl_hr_dev_v1 counts as sent by redirect_peer through ifindex, over all CPUs. */
static uint64_t hr_dev_peer(struct tc_pod *s, int ifindex)
{
	int ncpu = libbpf_num_possible_cpus();
	struct sl_hr_dev *v = ncpu > 0 ? calloc((size_t)ncpu, sizeof(*v)) : NULL;
	uint32_t k = (uint32_t)ifindex;
	uint64_t total = 0;

	if (v && !bpf_map_lookup_elem(bpf_map__fd(s->maps.sl_hr_dev_v1), &k, v))
		for (int i = 0; i < ncpu; i++)
			total += v[i].peer_packets;
	free(v);
	return total;
}

static int put_hr_dev(struct tc_pod *s, int ifindex, uint32_t flags)
{
	int ncpu = libbpf_num_possible_cpus(), err;
	struct sl_hr_dev *v = ncpu > 0 ? calloc((size_t)ncpu, sizeof(*v)) : NULL;
	uint32_t k = (uint32_t)ifindex;

	if (!v)
		return -ENOMEM;
	for (int i = 0; i < ncpu; i++)
		v[i].flags = flags;
	err = bpf_map_update_elem(bpf_map__fd(s->maps.sl_hr_dev_v1), &k, v, 0) ? -errno : 0;
	free(v);
	return err;
}

/* sl_hr_npc_v1 (lib/sl_hr_maps.h): the uplink path's mark that a NodePort reply to a pod
 * client may exist. */
static int put_npc(struct tc_pod *s, uint64_t v)
{
	struct sl_hr_npc m = {.pod_client_flows = v};
	uint32_t zero = 0;

	return bpf_map_update_elem(bpf_map__fd(s->maps.sl_hr_npc_v1), &zero, &m, 0) ? -errno : 0;
}

/* An uplink veth into another netns (sl_hr_dev_v1): the same forwarding, then redirect_peer
 * (counted per device); a packet the uplink's egress program would reverse-NAT (a REPLY
 * conntrack entry of the uplink path) still goes through the device's transmit; a device
 * without the flag gets the plain redirect. */
TEST(hostroute_fib_veth_uplink_redirect_peer)
{
	struct sl_ct4_val ct = {.fe_addr = 0, .backend_id = 1};
	struct sl_ct4_key rk = {.saddr = ip4(POD),
				.daddr = ip4(PEER_NODE_POD),
				.sport = htons(8080),
				.dport = htons(45001),
				.proto = IPPROTO_TCP,
				.dir = SL_CT_DIR_REPLY};
	struct tc_pod *s = NULL;
	uint8_t in[256];
	struct run r;
	size_t len;
	int dev;

	s = hr_pod_with_cidr();
	if (!s)
		return;
	dev = hr_net(); /* hr0, set up by the call above */

	len = build(in, IPPROTO_TCP, POD, PEER_NODE_POD, 45000, 80, 0x02);
	if (!ASSERT_OK(run_prog(s->progs.tc_pol_ingress, in, len, &r), "run, no device entry"))
		goto out;
	ASSERT_EQ(r.retval, TC_ACT_REDIRECT, "redirect");
	ASSERT_EQ(hr_dev_peer(s, dev), 0, "no device entry: not by redirect_peer");

	if (!ASSERT_OK(put_hr_dev(s, dev, SL_HR_DEV_F_PEER), "hr0 as a veth uplink"))
		goto out;
	if (!ASSERT_OK(run_prog(s->progs.tc_pol_ingress, in, len, &r), "run, veth uplink"))
		goto out;
	ASSERT_EQ(r.retval, TC_ACT_REDIRECT, "redirect_peer");
	expect_forwarded(in, len, &r, GW_MAC, (const uint8_t[]){2, 0, 0, 0, 0, 1},
			 "next hop's MAC, hr0's MAC, TTL - 1");
	ASSERT_EQ(hr_dev_peer(s, dev), 1, "counted as sent by redirect_peer");
	ASSERT_EQ(hr_ctr(s, SL_HR_C_FIB), 2, "both in the fib counter");

	/* A reply of a NodePort flow to a local backend: the uplink's egress program owns it
	 * (the uplink ingress raised the mark before it made the entry). */
	if (!ASSERT_OK(put_npc(s, 1), "NodePort flows of pod clients tracked"))
		goto out;
	ct.fe_addr = ip4("198.18.0.11");
	ct.fe_port = htons(30080);
	ct.client_addr = ip4(PEER_NODE_POD);
	ct.client_port = htons(45001);
	ct.backend_addr = ip4(POD);
	ct.backend_port = htons(8080);
	if (!ASSERT_OK(bpf_map_update_elem(bpf_map__fd(s->maps.sl_ct4_tcp_v1), &rk, &ct, 0),
		       "uplink REPLY entry"))
		goto out;
	len = build(in, IPPROTO_TCP, POD, PEER_NODE_POD, 8080, 45001, 0x12);
	if (!ASSERT_OK(run_prog(s->progs.tc_pol_ingress, in, len, &r), "run, NodePort reply"))
		goto out;
	ASSERT_EQ(r.retval, TC_ACT_REDIRECT, "redirected to the device");
	ASSERT_EQ(hr_dev_peer(s, dev), 1, "not by redirect_peer: the egress program must see it");
	expect_forwarded(in, len, &r, GW_MAC, (const uint8_t[]){2, 0, 0, 0, 0, 1},
			 "untranslated here");
out:
	tc_pod__destroy(s);
}

/* With the mark clear the conntrack is not consulted before redirect_peer: an entry that only
 * a program older than the mark could have made (the agent raises the mark at start when the
 * pinned conntrack holds one) does not stop it; raising the mark makes the same packet go
 * through the device again. This is the test that fails if the check is skipped
 * unconditionally or never. */
TEST(hostroute_npc_mark_gates_uplink_ct_check)
{
	struct sl_ct4_val ct = {.backend_id = 1};
	struct sl_ct4_key rk = {.saddr = ip4(POD),
				.daddr = ip4(PEER_NODE_POD),
				.sport = htons(8080),
				.dport = htons(45101),
				.proto = IPPROTO_TCP,
				.dir = SL_CT_DIR_REPLY};
	struct tc_pod *s = NULL;
	uint8_t in[256];
	struct run r;
	size_t len;
	int dev = hr_net();

	if (!ASSERT_TRUE(dev > 0, "test node network"))
		return;
	s = pod_load_hr(true);
	if (!ASSERT_NOT_NULL(s, "load tc_pod (host routing)") ||
	    !ASSERT_OK(put_hr_cidr(s, "198.18.64.0", 18), "podCIDRs") ||
	    !ASSERT_OK(put_hr_dev(s, dev, SL_HR_DEV_F_PEER), "hr0 as a veth uplink") ||
	    !ASSERT_OK(bpf_map_update_elem(bpf_map__fd(s->maps.sl_ct4_tcp_v1), &rk, &ct, 0),
		       "uplink REPLY entry"))
		goto out;
	len = build(in, IPPROTO_TCP, POD, PEER_NODE_POD, 8080, 45101, 0x12);
	if (!ASSERT_OK(run_prog(s->progs.tc_pol_ingress, in, len, &r), "run, mark clear"))
		goto out;
	ASSERT_EQ(r.retval, TC_ACT_REDIRECT, "redirected");
	ASSERT_EQ(hr_dev_peer(s, dev), 1, "mark clear: by redirect_peer, conntrack not consulted");

	if (!ASSERT_OK(put_npc(s, 3), "mark raised"))
		goto out;
	if (!ASSERT_OK(run_prog(s->progs.tc_pol_ingress, in, len, &r), "run, mark raised"))
		goto out;
	ASSERT_EQ(r.retval, TC_ACT_REDIRECT, "redirected to the device");
	ASSERT_EQ(hr_dev_peer(s, dev), 1, "mark raised: the egress program gets the reply");
	expect_forwarded(in, len, &r, GW_MAC, (const uint8_t[]){2, 0, 0, 0, 0, 1},
			 "forwarded, untranslated here");

	/* Mark raised, no entry for this tuple: still by redirect_peer. */
	len = build(in, IPPROTO_TCP, POD, PEER_NODE_POD, 8080, 45102, 0x12);
	if (!ASSERT_OK(run_prog(s->progs.tc_pol_ingress, in, len, &r), "run, other tuple"))
		goto out;
	ASSERT_EQ(hr_dev_peer(s, dev), 2, "no entry: by redirect_peer");
out:
	tc_pod__destroy(s);
}

/* Every CPU's sl_hr_nh_v1 entry for a pod's packets to dst stamped filled_ns (a CPU without
 * one gets the cached answer of one that has it). Returns the number of CPUs whose entry held
 * dmac (the next hop the program cached), or < 0. */
static int nh_stamp(struct tc_pod *s, const char *src, const char *dst, const uint8_t *dmac,
		    uint64_t filled_ns)
{
	int ncpu = libbpf_num_possible_cpus(), fd = bpf_map__fd(s->maps.sl_hr_nh_v1), held = 0;
	struct sl_hr_nh_key k = {.daddr = ip4(dst), .saddr = ip4(src), .ifindex = 1};
	struct sl_hr_nh *v = ncpu > 0 ? calloc((size_t)ncpu, sizeof(*v)) : NULL;

	if (!v)
		return -ENOMEM;
	if (bpf_map_lookup_elem(fd, &k, v)) {
		free(v);
		return -errno;
	}
	int filled = -1;

	for (int i = 0; i < ncpu; i++) {
		held += v[i].filled_ns && !memcmp(v[i].dmac, dmac, 6);
		if (v[i].filled_ns)
			filled = i;
	}
	/* The map is per CPU and the next run may be on a CPU whose copy is empty: every CPU
	 * gets the cached answer, stamped. */
	for (int i = 0; filled >= 0 && i < ncpu; i++) {
		v[i] = v[filled];
		v[i].filled_ns = filled_ns;
	}
	if (bpf_map_update_elem(fd, &k, v, BPF_EXIST))
		held = -errno;
	free(v);
	return held;
}

/* Ages the cached next hop of src -> dst (every CPU's): the next packet looks the FIB up.
 * How many CPUs held dmac, or -errno. */
static int nh_expire(struct tc_pod *s, const char *src, const char *dst, const uint8_t *dmac)
{
	return nh_stamp(s, src, dst, dmac, 1);
}

/* Makes the cached next hop of src -> dst as fresh as a lookup now (the program's clock,
 * bpf_ktime_get_coarse_ns): the next run is within its TTL however long the test took to
 * get there (a loaded machine took more than the TTL's 50 ms for one `ip neigh`). */
static int nh_refresh(struct tc_pod *s, const char *src, const char *dst, const uint8_t *dmac)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return nh_stamp(s, src, dst, dmac, (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec);
}

/* The next-hop cache (abi/hostroute.h): a FIB answer is reused for SL_HR_NH_TTL_NS, so a
 * neighbour's new MAC or a route's removal is seen after the entry ages (forced here) and not
 * before; the MTU is checked per packet; an unresolved neighbour is never cached. */
TEST(hostroute_nexthop_cache_bounded)
{
	static const uint8_t NEW_GW[6] = {2, 0, 0, 0, 0, 0x0a};
	static const uint8_t HR0[6] = {2, 0, 0, 0, 0, 1};
	struct sl_hr_nh_key ck = {.daddr = ip4(COLD_POD), .saddr = ip4(POD), .ifindex = 1};
	struct tc_pod *s = NULL;
	uint8_t in[256], out1[8 * 64];
	struct run r;
	size_t len;

	s = hr_pod_with_cidr();
	if (!s)
		return;
	len = build(in, IPPROTO_TCP, POD, PEER_NODE_POD, 46000, 80, 0x10);
	if (!ASSERT_OK(run_prog(s->progs.tc_pol_ingress, in, len, &r), "run, fills the cache"))
		goto out;
	ASSERT_EQ(r.retval, TC_ACT_REDIRECT, "redirected");
	expect_forwarded(in, len, &r, GW_MAC, HR0, "the FIB's next hop");

	/* The neighbour changes its MAC: within the TTL the cached one is used (the bound)... */
	if (!ASSERT_OK(system("ip neigh replace 198.18.1.2 lladdr 02:00:00:00:00:0a dev hr0 nud "
			      "permanent"),
		       "new neighbour MAC"))
		goto out;
	ASSERT_TRUE(nh_refresh(s, POD, PEER_NODE_POD, GW_MAC) >= 1, "the cache holds the old MAC");
	if (!ASSERT_OK(run_prog(s->progs.tc_pol_ingress, in, len, &r), "run, cached"))
		goto out;
	expect_forwarded(in, len, &r, GW_MAC, HR0, "cached next hop within the TTL");
	/* ...and once the entry has aged, the new one. */
	ASSERT_TRUE(nh_expire(s, POD, PEER_NODE_POD, GW_MAC) >= 1, "the cache held the old MAC");
	if (!ASSERT_OK(run_prog(s->progs.tc_pol_ingress, in, len, &r), "run, aged"))
		goto out;
	expect_forwarded(in, len, &r, NEW_GW, HR0, "aged entry: the neighbour's new MAC");

	/* Too big for the egress device: the stack, cached or not. */
	if (!ASSERT_OK(system("ip link set hr0 mtu 68"), "small MTU"))
		goto out;
	memset(out1, 0, sizeof(out1));
	memcpy(out1, in, len); /* 120 bytes on the wire: over 68 + the Ethernet header */
	if (ASSERT_OK(run_prog(s->progs.tc_pol_ingress, out1, 120, &r), "run, too big"))
		ASSERT_EQ(r.retval, TC_ACT_OK, "over the MTU with a cached next hop: the stack");
	system("ip link set hr0 mtu 1500");

	/* The route goes: seen once the entry has aged. */
	if (!ASSERT_OK(system("ip route replace unreachable 198.18.66.0/24"), "route removed"))
		goto out;
	ASSERT_TRUE(nh_expire(s, POD, PEER_NODE_POD, NEW_GW) >= 1, "the cache held the new MAC");
	if (ASSERT_OK(run_prog(s->progs.tc_pol_ingress, in, len, &r), "run, no route"))
		ASSERT_EQ(r.retval, TC_ACT_OK, "aged entry, no route: the stack");

	/* An unresolved neighbour (redirect_neigh) is not cached. */
	len = build(in, IPPROTO_TCP, POD, COLD_POD, 46001, 80, 0x10);
	if (ASSERT_OK(run_prog(s->progs.tc_pol_ingress, in, len, &r), "run, cold neighbour"))
		ASSERT_EQ(r.retval, TC_ACT_REDIRECT, "redirect_neigh");
	ASSERT_TRUE(bpf_map_lookup_elem(bpf_map__fd(s->maps.sl_hr_nh_v1), &ck, out1) != 0,
		    "no cache entry for an unresolved neighbour");
out:
	/* The network the other tests share: as hr_net made it. */
	system("ip link set hr0 mtu 1500; ip route replace 198.18.66.0/24 via 198.18.1.2; "
	       "ip neigh replace 198.18.1.2 lladdr 02:00:00:00:00:09 dev hr0 nud permanent");
	tc_pod__destroy(s);
}

/* An opted-out pod (per-packet service path) behind host routing: the reply from a backend
 * is reverse-NATed before the redirect, as tc_pod_egress would on its veth, and passes the
 * pod's ingress policy by its flow's verdict (kept in the CT entries, not in the policy
 * cache), as a reply does on the veth. */
TEST(hostroute_optout_reply_reverse_nat)
{
	struct tc_pod *s = NULL;
	uint8_t in[256], exp[256];
	struct run r;
	size_t len;
	int dev = hr_net();

	if (!ASSERT_TRUE(dev > 0, "test node network"))
		return;
	s = pod_load_hr(true);
	if (!ASSERT_NOT_NULL(s, "load tc_pod (host routing)"))
		goto out;
	if (!ASSERT_OK(put_backend(s, 1, BE2, 8080, IPPROTO_TCP, SL_BE_ACTIVE), "be") ||
	    !ASSERT_OK(put_slot(s, 0, 1), "slot") ||
	    !ASSERT_OK(put_svc(s, VIP, 80, IPPROTO_TCP, SL_SCOPE_EXT, 0, 5, 0, 1), "svc") ||
	    !ASSERT_OK(put_hr_cidr(s, "198.18.64.0", 18), "podCIDRs") ||
	    !ASSERT_OK(put_hr_ep(s, POD, dev, SL_HR_F_SVC), "hr ep of the opted-out pod"))
		goto out;
	/* Out: DNAT to the backend on the other node, then the FIB redirect. */
	len = build(in, IPPROTO_TCP, POD, VIP, 45000, 80, 0x02);
	if (!ASSERT_OK(run_prog(s->progs.tc_pod_ingress, in, len, &r), "run out"))
		goto out;
	ASSERT_EQ(r.retval, TC_ACT_REDIRECT, "DNATed and redirected");
	ASSERT_EQ(memcmp(r.out + ETH + 16, (uint32_t[]){ip4(BE2)}, 4), 0, "to the backend");
	/* The pod is ingress-isolated now (deny-all): the reply of its allowed flow still
	 * passes. Back from the fabric: reverse NAT, then into the pod. */
	if (!ASSERT_OK(put_np_ep_rs(s, POD, 7, SL_NP_RS_DENY, SL_NP_RS_NONE), "ingress deny-all"))
		goto out;
	len = build(in, IPPROTO_TCP, BE2, POD, 8080, 45000, 0x12);
	if (!ASSERT_OK(run_prog(s->progs.tc_hr_fabric, in, len, &r), "run reply"))
		goto out;
	ASSERT_EQ(r.retval, TC_ACT_REDIRECT, "delivered");
	memcpy(exp, in, len);
	wr32(exp + ETH + 12, ip4(VIP));
	wr16(exp + ETH + 20, htons(80));
	fix_csums(exp);
	expect_forwarded(exp, len, &r, POD2_MAC, HOST2_MAC, "reverse-NATed delivery");
	ASSERT_EQ(np_ctr(s, SL_R_POLICY_INGRESS), 0, "no ingress-policy drop");
	/* A new connection from the backend to the pod is decided: denied. */
	len = build(in, IPPROTO_TCP, BE2, POD, 8081, 45001, 0x02);
	if (ASSERT_OK(run_prog(s->progs.tc_hr_fabric, in, len, &r), "run new connection"))
		ASSERT_EQ(r.retval, TC_ACT_SHOT, "denied by the pod's ingress policy");
	/* ICMP into the opted-out pod takes the stack to its veth, where tc_pod_egress
	 * translates the errors about its flows (icmp_error_of_translated_flow_reverse_nat). */
	memcpy(exp, in, len);
	exp[ETH + 9] = IPPROTO_ICMP;
	ip_csum(exp);
	if (ASSERT_OK(run_prog(s->progs.tc_hr_fabric, exp, len, &r), "run icmp"))
		ASSERT_EQ(r.retval, TC_ACT_UNSPEC, "ICMP: kernel path");
out:
	tc_pod__destroy(s);
}

static bool np_ct_any(struct tc_pod *s, const char *sa, const char *da, uint16_t sp, uint16_t dp)
{
	return np_ct_has(s, sa, da, sp, dp, SL_NP_EGRESS, SL_NP_CT_ALLOW) ||
	       np_ct_has(s, sa, da, sp, dp, SL_NP_EGRESS, SL_NP_CT_DENY);
}

/*
 * A translated flow keeps policy's verdict in its CT entries (np_ok), not in the policy
 * cache: its first packet is decided after the DNAT and only an ALLOW creates the entries,
 * both marked; its later packets pass both ways by them (counted as cached) and survive a
 * policy change; a SYN on the tuple is decided all the same; a denied flow leaves no entries.
 */
TEST(translated_flow_policy_in_ct)
{
	struct tc_pod *s = NULL;
	struct sl_ct4_val fv, rv;
	uint8_t in[256];
	struct run r;
	uint64_t cached, allowed;
	size_t len;

	LOAD_OR_OUT(s);
	if (!ASSERT_OK(put_backend(s, 1, BE1, 8080, IPPROTO_TCP, SL_BE_ACTIVE), "be") ||
	    !ASSERT_OK(put_slot(s, 0, 1), "slot") ||
	    !ASSERT_OK(put_svc(s, VIP, 80, IPPROTO_TCP, SL_SCOPE_EXT, 0, 5, 0, 1), "svc") ||
	    !ASSERT_OK(put_np_ep_rs(s, POD, 7, SL_NP_RS_NONE, SL_NP_RS_NONE), "np ep"))
		goto out;
	/* SYN: decided once, the verdict in both entries, nothing in the cache. */
	len = build(in, IPPROTO_TCP, POD, VIP, 41000, 80, 0x02);
	if (!ASSERT_OK(run_prog(s->progs.tc_pod_ingress, in, len, &r), "syn") ||
	    !ASSERT_EQ(r.retval, TC_ACT_OK, "syn passes"))
		goto out;
	expect_rewrite(in, len, &r, NULL, BE1, 0, 8080, "syn DNAT");
	if (!ASSERT_OK(ct_get(s, IPPROTO_TCP, POD, VIP, 41000, 80, SL_CT_DIR_FWD, &fv), "fwd ct") ||
	    !ASSERT_OK(ct_get(s, IPPROTO_TCP, BE1, POD, 8080, 41000, SL_CT_DIR_REPLY, &rv),
		       "rep ct"))
		goto out;
	ASSERT_TRUE(fv.np_ok != 0 && rv.np_ok != 0, "both entries carry the ALLOW");
	ASSERT_EQ(np_ctr(s, SL_NP_C_ALLOW), 1, "one decision");
	ASSERT_TRUE(!np_ct_any(s, POD, BE1, 41000, 8080), "not in the policy cache");

	/* Egress deny-all now: the established connection survives, both ways, by its entries. */
	if (!ASSERT_OK(put_np_ep_rs(s, POD, 7, SL_NP_RS_NONE, SL_NP_RS_DENY),
		       "np ep: egress deny-all"))
		goto out;
	cached = np_ctr(s, SL_NP_C_CACHED);
	len = build(in, IPPROTO_TCP, BE1, POD, 8080, 41000, 0x12);
	if (!ASSERT_OK(run_prog(s->progs.tc_pod_egress, in, len, &r), "syn-ack") ||
	    !ASSERT_EQ(r.retval, TC_ACT_OK, "syn-ack passes"))
		goto out;
	expect_rewrite(in, len, &r, VIP, NULL, 80, 0, "syn-ack reverse NAT");
	len = build(in, IPPROTO_TCP, POD, VIP, 41000, 80, 0x18);
	if (!ASSERT_OK(run_prog(s->progs.tc_pod_ingress, in, len, &r), "data out") ||
	    !ASSERT_EQ(r.retval, TC_ACT_OK, "data out passes"))
		goto out;
	expect_rewrite(in, len, &r, NULL, BE1, 0, 8080, "data out DNAT");
	ASSERT_EQ(np_ctr(s, SL_NP_C_CACHED), cached + 2, "both counted as cached");
	ASSERT_EQ(np_ctr(s, SL_R_POLICY_EGRESS), 0, "no drop");
	ASSERT_TRUE(!np_ct_any(s, POD, BE1, 41000, 8080), "still no cache entry");

	/* A SYN on the tuple is a new connection: decided whatever the entries say. */
	len = build(in, IPPROTO_TCP, POD, VIP, 41000, 80, 0x02);
	if (!ASSERT_OK(run_prog(s->progs.tc_pod_ingress, in, len, &r), "syn again"))
		goto out;
	ASSERT_EQ(r.retval, TC_ACT_SHOT, "SYN decided: denied");
	ASSERT_EQ(np_ctr(s, SL_R_POLICY_EGRESS), 1, "egress-policy drop");

	/* A new flow that policy denies gets no CT entries (nothing to pass its next packet). */
	len = build(in, IPPROTO_TCP, POD, VIP, 41001, 80, 0x02);
	if (!ASSERT_OK(run_prog(s->progs.tc_pod_ingress, in, len, &r), "denied syn"))
		goto out;
	ASSERT_EQ(r.retval, TC_ACT_SHOT, "denied");
	ASSERT_TRUE(ct_get(s, IPPROTO_TCP, POD, VIP, 41001, 80, SL_CT_DIR_FWD, &fv) != 0,
		    "no FWD entry");
	ASSERT_TRUE(ct_get(s, IPPROTO_TCP, BE1, POD, 8080, 41001, SL_CT_DIR_REPLY, &rv) != 0,
		    "no REPLY entry");
	len = build(in, IPPROTO_TCP, POD, VIP, 41001, 80, 0x10);
	if (!ASSERT_OK(run_prog(s->progs.tc_pod_ingress, in, len, &r), "denied flow's ack"))
		goto out;
	ASSERT_EQ(r.retval, TC_ACT_SHOT, "its next packet is decided again: denied");

	/* An entry without the verdict (another writer's, or an older agent's) is decided by
	 * policy and then marked. */
	if (!ASSERT_OK(put_np_ep_rs(s, POD, 7, SL_NP_RS_NONE, SL_NP_RS_NONE), "np ep: open") ||
	    !ASSERT_OK(ct_get(s, IPPROTO_TCP, POD, VIP, 41000, 80, SL_CT_DIR_FWD, &fv), "fwd ct"))
		goto out;
	fv.np_ok = 0;
	if (!ASSERT_OK(ct_put(s, POD, VIP, 41000, 80, SL_CT_DIR_FWD, &fv), "clear the verdict"))
		goto out;
	allowed = np_ctr(s, SL_NP_C_ALLOW);
	len = build(in, IPPROTO_TCP, POD, VIP, 41000, 80, 0x18);
	if (!ASSERT_OK(run_prog(s->progs.tc_pod_ingress, in, len, &r), "data, unmarked") ||
	    !ASSERT_EQ(r.retval, TC_ACT_OK, "allowed"))
		goto out;
	ASSERT_EQ(np_ctr(s, SL_NP_C_ALLOW), allowed + 1, "decided");
	if (ASSERT_OK(ct_get(s, IPPROTO_TCP, POD, VIP, 41000, 80, SL_CT_DIR_FWD, &fv), "fwd ct"))
		ASSERT_TRUE(fv.np_ok != 0, "marked");
out:
	tc_pod__destroy(s);
}

/*
 * An ICMP error to the pod (from a router, or the backend) of length quoted bytes of
 * the translated packet q: outer src -> POD, type/code, checksum valid.
 */
static size_t build_icmp_err(uint8_t *b, const char *src, uint8_t type, uint8_t code,
			     const uint8_t *q, size_t quoted)
{
	size_t len = ETH + 20 + 8 + quoted;
	uint32_t s;

	put_hdrs(b, len, IPPROTO_ICMP, src, POD);
	ip_csum(b);
	b[ETH + 20] = type;
	b[ETH + 21] = code;
	if (type == 3 && code == 4)
		wr16(b + ETH + 26, htons(1400)); /* next-hop MTU */
	memcpy(b + ETH + 28, q, quoted);
	s = fold(sum16(b + ETH + 20, 8 + quoted, 0));
	b[ETH + 22] = s >> 8;
	b[ETH + 23] = s & 0xff;
	return len;
}

/* The ICMP error out of the program: outer source src, ICMP and outer IP checksums valid,
 * and the quote byte for byte the pod's own packet (orig) before the DNAT. */
static bool expect_icmp_quote(const struct run *r, size_t len, const char *src, const uint8_t *orig,
			      size_t quoted, const char *what)
{
	uint32_t a;

	if (!ASSERT_EQ(r->out_len, len, what))
		return false;
	memcpy(&a, r->out + ETH + 12, 4);
	if (!ASSERT_EQ(a, ip4(src), "outer source") ||
	    !ASSERT_EQ(fold(sum16(r->out + ETH, 20, 0)), 0, "outer IPv4 checksum") ||
	    !ASSERT_EQ(fold(sum16(r->out + ETH + 20, len - ETH - 20, 0)), 0, "ICMP checksum"))
		return false;
	for (size_t i = 0; i < quoted; i++)
		if (r->out[ETH + 28 + i] != orig[ETH + i])
			return TEST_FAIL_AT("%s: quoted byte %zu is %02x, the pod sent %02x", what,
					    i, r->out[ETH + 28 + i], orig[ETH + i]);
	return true;
}

/*
 * ICMP errors about a translated flow reach the pod as errors about the packet it sent,
 * as conntrack's NAT rewrites them for kube-proxy: a router's "fragmentation needed"
 * quoting P -> B (the PMTU a TCP socket must learn), the backend's own "port
 * unreachable" for UDP (the socket's ECONNREFUSED; its source becomes the ClusterIP).
 * They pass an ingress-isolated pod as related to its allowed flow, do not refresh the
 * flow's entries, and an error about no translated flow is left as it is.
 */
TEST(icmp_error_of_translated_flow_reverse_nat)
{
	struct tc_pod *s = NULL;
	struct sl_ct4_val before, after;
	uint8_t tcp[256], udp[256], out[256], err[512];
	struct run r;
	size_t tlen, ulen, len, q;

	LOAD_OR_OUT(s);
	if (!ASSERT_OK(put_backend(s, 1, BE1, 8080, IPPROTO_TCP, SL_BE_ACTIVE), "be tcp") ||
	    !ASSERT_OK(put_backend(s, 2, BE2, 5353, IPPROTO_UDP, SL_BE_ACTIVE), "be udp") ||
	    !ASSERT_OK(put_slot(s, 0, 1), "slot tcp") ||
	    !ASSERT_OK(put_slot(s, 1, 2), "slot udp") ||
	    !ASSERT_OK(put_svc(s, VIP, 80, IPPROTO_TCP, SL_SCOPE_EXT, 0, 5, 0, 1), "svc tcp") ||
	    !ASSERT_OK(put_svc(s, VIP, 53, IPPROTO_UDP, SL_SCOPE_EXT, 0, 6, 1, 1), "svc udp"))
		goto out;
	/* Both flows out of the pod (allowed: it is not isolated yet), DNATed. */
	tlen = build(tcp, IPPROTO_TCP, POD, VIP, 42000, 80, 0x02);
	ulen = build(udp, IPPROTO_UDP, POD, VIP, 42001, 53, 0);
	if (!ASSERT_OK(put_np_ep_rs(s, POD, 7, SL_NP_RS_NONE, SL_NP_RS_NONE), "np ep") ||
	    !ASSERT_OK(run_prog(s->progs.tc_pod_ingress, tcp, tlen, &r), "tcp out") ||
	    !ASSERT_EQ(r.retval, TC_ACT_OK, "tcp out passes"))
		goto out;
	memcpy(out, r.out, tlen);
	if (!ASSERT_OK(put_np_ep_rs(s, POD, 7, SL_NP_RS_DENY, SL_NP_RS_NONE), "ingress deny-all") ||
	    !ASSERT_OK(ct_get(s, IPPROTO_TCP, BE1, POD, 8080, 42000, SL_CT_DIR_REPLY, &before),
		       "tcp reply entry"))
		goto out;

	/* A router's fragmentation needed, quoting the IP header and 28 bytes of TCP (its
	 * checksum included): the whole quote goes back to POD -> VIP:80. */
	q = 20 + 28;
	len = build_icmp_err(err, "198.18.70.1", 3, 4, out + ETH, q);
	if (!ASSERT_OK(run_prog(s->progs.tc_pod_egress, err, len, &r), "frag needed") ||
	    !ASSERT_EQ(r.retval, TC_ACT_OK, "passes the isolated pod (related)"))
		goto out;
	expect_icmp_quote(&r, len, "198.18.70.1", tcp, q, "frag needed");
	ASSERT_EQ(np_ctr(s, SL_R_POLICY_INGRESS), 0, "no ingress-policy drop");
	if (ASSERT_OK(ct_get(s, IPPROTO_TCP, BE1, POD, 8080, 42000, SL_CT_DIR_REPLY, &after),
		      "tcp reply entry"))
		ASSERT_EQ(after.last_seen_ns, before.last_seen_ns, "an error keeps no flow alive");

	/* Only 8 bytes of TCP quoted (RFC 792's minimum): ports rewritten, no checksum. */
	q = 20 + 8;
	len = build_icmp_err(err, "198.18.70.1", 11, 0, out + ETH, q);
	if (ASSERT_OK(run_prog(s->progs.tc_pod_egress, err, len, &r), "time exceeded") &&
	    ASSERT_EQ(r.retval, TC_ACT_OK, "time exceeded passes"))
		expect_icmp_quote(&r, len, "198.18.70.1", tcp, q, "time exceeded");

	/* UDP: the backend's own port unreachable; the error comes from the ClusterIP. */
	if (!ASSERT_OK(put_np_ep_rs(s, POD, 7, SL_NP_RS_NONE, SL_NP_RS_NONE), "np ep: open") ||
	    !ASSERT_OK(run_prog(s->progs.tc_pod_ingress, udp, ulen, &r), "udp out") ||
	    !ASSERT_EQ(r.retval, TC_ACT_OK, "udp out passes"))
		goto out;
	ASSERT_EQ(memcmp(r.out + ETH + 16, (uint32_t[]){ip4(BE2)}, 4), 0, "udp to the backend");
	memcpy(out, r.out, ulen);
	q = ulen - ETH;
	len = build_icmp_err(err, BE2, 3, 3, out + ETH, q);
	if (ASSERT_OK(run_prog(s->progs.tc_pod_egress, err, len, &r), "port unreachable") &&
	    ASSERT_EQ(r.retval, TC_ACT_OK, "port unreachable passes"))
		expect_icmp_quote(&r, len, VIP, udp, q, "port unreachable");

	/* No translated flow quoted (a flow to the backend itself): left as it is. */
	len = build(udp, IPPROTO_UDP, POD, BE2, 42002, 5353, 0);
	q = len - ETH;
	len = build_icmp_err(err, BE2, 3, 3, udp + ETH, q);
	if (ASSERT_OK(run_prog(s->progs.tc_pod_egress, err, len, &r), "unrelated error") &&
	    ASSERT_EQ(r.retval, TC_ACT_OK, "unrelated error passes"))
		expect_icmp_quote(&r, len, BE2, udp, q, "unrelated error untouched");
out:
	tc_pod__destroy(s);
}
