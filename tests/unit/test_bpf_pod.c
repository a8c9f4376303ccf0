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
#include <sched.h>
#include <stdlib.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "abi/lb.h"
#include "harness.h"
#include "tc_pod.skel.h"

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

static size_t build(uint8_t *b, uint8_t proto, const char *src, const char *dst, uint16_t sport,
		    uint16_t dport, uint8_t tcp_flags)
{
	size_t hl = proto == IPPROTO_TCP ? 20 : 8, len = ETH + 20 + hl + 16;

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

static struct tc_pod *pod_load(void)
{
	struct tc_pod *skel;
	struct bpf_map *m;

	libbpf_set_print(print_libbpf);
	if (!in_netns) {
		if (unshare(CLONE_NEWNET) || system("ip link set lo up >/dev/null 2>&1"))
			return NULL;
		in_netns = true;
	}
	skel = tc_pod__open();
	if (!skel)
		return NULL;
	bpf_object__for_each_map(m, skel->obj) bpf_map__set_pin_path(m, NULL);
	bpf_map__set_max_entries(skel->maps.sl_ct4_tcp_v1, 1024);
	bpf_map__set_max_entries(skel->maps.sl_ct4_any_v1, 1024);
	bpf_map__set_max_entries(skel->maps.sl_slots_v1, 1024);
	bpf_map__set_max_entries(skel->maps.sl_be4_v1, 256);
	if (tc_pod__load(skel)) {
		tc_pod__destroy(skel);
		return NULL;
	}
	return skel;
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

static int ct_get(struct tc_pod *s, uint8_t proto, const char *sa, const char *da, uint16_t sp,
		  uint16_t dp, uint8_t dir, struct sl_ct4_val *v)
{
	struct sl_ct4_key k = {.saddr = ip4(sa),
			       .daddr = ip4(da),
			       .sport = htons(sp),
			       .dport = htons(dp),
			       .proto = proto,
			       .dir = dir};
	struct bpf_map *m = proto == IPPROTO_TCP ? s->maps.sl_ct4_tcp_v1 : s->maps.sl_ct4_any_v1;

	return bpf_map_lookup_elem(bpf_map__fd(m), &k, v) ? -errno : 0;
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
