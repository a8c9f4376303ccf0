// SPDX-License-Identifier: Apache-2.0
/*
 * Packet fixtures for NetworkPolicy enforcement on the pod veths (bpf/lib/sl_policy.h in
 * bpf/tc_pod.bpf.c), run with BPF_PROG_TEST_RUN. The maps are filled with the compiler's real
 * output (libnetpol on the upstream e2e model of np_fixture.h: namespaces x, y, z, pods a, b,
 * c, x/a = 198.18.0.1 ... z/c = 198.18.0.9), so these tests check the program against the
 * compiler's ABI, not against hand-made entries. Hooks: tc_pol_ingress = packets from the pod
 * (its egress), tc_pol_egress = packets to the pod (its ingress). Maps are unpinned; the
 * process runs in its own netns.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "abi/lb.h"
#include "abi/policy.h"
#include "harness.h"
#include "np_fixture.h"
#include "tc_pod.skel.h"

#define TC_ACT_OK   0
#define TC_ACT_SHOT 2
#define ETH	    14

#define XA   "198.18.0.1"
#define XB   "198.18.0.2"
#define YA   "198.18.0.4"
#define YB   "198.18.0.5"
#define ZB   "198.18.0.8"
#define NODE "198.18.0.100"
#define EXT  "198.18.200.1"
#define VIP  "198.18.128.60"

static uint32_t ip4(const char *s)
{
	struct in_addr a;

	inet_pton(AF_INET, s, &a);
	return a.s_addr;
}

/* Ethernet + IPv4 + 16 bytes of L4 (ports first: TCP/UDP/SCTP; ICMP type/code/.../id). */
static size_t build(uint8_t *b, uint8_t proto, const char *src, const char *dst, uint16_t sport,
		    uint16_t dport)
{
	size_t len = ETH + 20 + 40;
	uint32_t a;
	uint16_t v;

	memset(b, 0, len);
	b[12] = 0x08;
	b[ETH] = 0x45;
	b[ETH + 2] = (len - ETH) >> 8;
	b[ETH + 3] = (len - ETH) & 0xff;
	b[ETH + 8] = 64;
	b[ETH + 9] = proto;
	a = ip4(src);
	memcpy(b + ETH + 12, &a, 4);
	a = ip4(dst);
	memcpy(b + ETH + 16, &a, 4);
	v = htons(sport);
	memcpy(b + ETH + 20, &v, 2);
	v = htons(dport);
	memcpy(b + ETH + 22, &v, 2);
	if (proto == IPPROTO_TCP)
		b[ETH + 20 + 12] = 5 << 4;
	return len;
}

/* An ICMP destination unreachable (port) from src to dst quoting the packet q (IPv4 +
 * 8 bytes of its L4 header). */
static size_t build_icmp_unreach(uint8_t *b, const char *src, const char *dst, const uint8_t *q)
{
	size_t len = build(b, 1, src, dst, 0, 0);

	b[ETH + 20] = 3;
	b[ETH + 21] = 3;
	memcpy(b + ETH + 28, q + ETH, 28);
	return len;
}

struct run {
	int retval;
	uint8_t out[256];
};

static int run_prog(struct bpf_program *p, const uint8_t *in, size_t len, struct run *r)
{
	struct __sk_buff ctx = {.ifindex = 1};
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = in, .data_size_in = (uint32_t)len,
		    .data_out = r->out, .data_size_out = sizeof(r->out), .ctx_in = &ctx,
		    .ctx_size_in = sizeof(ctx), .repeat = 1);

	if (bpf_prog_test_run_opts(bpf_program__fd(p), &o))
		return -errno;
	r->retval = (int)o.retval;
	return 0;
}

static int print_libbpf(enum libbpf_print_level lvl, const char *fmt, va_list ap)
{
	return lvl == LIBBPF_DEBUG ? 0 : vfprintf(stderr, fmt, ap);
}

static bool in_netns;

static struct tc_pod *pol_load(void)
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
	bpf_map__set_max_entries(skel->maps.sl_np_ct_v1, 1024);
	if (tc_pod__load(skel)) {
		tc_pod__destroy(skel);
		return NULL;
	}
	return skel;
}

/* Compiles c and writes its whole output into the maps (as the agent's first sync). */
static bool load_policy(struct tc_pod *s, struct np_ctx *c)
{
	struct np_entries e = {0};
	char err[512] = "";
	int ret = np_compile(c, NULL, err, sizeof(err));
	bool ok = true;

	if (!ASSERT_OK(ret, "np_compile")) {
		fprintf(stderr, "  %s\n", err);
		return false;
	}
	if (!ASSERT_OK(np_dump(c, &e), "np_dump"))
		return false;
	for (size_t i = 0; ok && i < e.n_rules; i++)
		ok = ASSERT_OK(bpf_map_update_elem(bpf_map__fd(s->maps.sl_np_rules_v1),
						   &e.rules[i].key, &e.rules[i].val, 0),
			       "rule");
	for (size_t i = 0; ok && i < e.n_cidrs; i++)
		ok = ASSERT_OK(bpf_map_update_elem(bpf_map__fd(s->maps.sl_np_cidrs_v1),
						   &e.cidrs[i].key, &e.cidrs[i].val, 0),
			       "cidr");
	for (size_t i = 0; ok && i < e.n_ep; i++)
		ok = ASSERT_OK(bpf_map_update_elem(bpf_map__fd(s->maps.sl_np_ep_v1), &e.ep[i].key,
						   &e.ep[i].val, 0),
			       "endpoint");
	np_entries_fini(&e);
	return ok;
}

/* x's pods isolated for ingress, open to namespace y on port 80 ("from-y"), loaded. */
static bool load_from_y(struct tc_pod *s, struct np_ctx *c)
{
	np_fx_policy(c, "x", "from-y",
		     "{'podSelector':{},'ingress':[{'from':[{'namespaceSelector':{'matchLabels':"
		     "{'ns':'y'}}}],'ports':[{'port':80}]}]}");
	return load_policy(s, c);
}

static uint64_t counter(struct tc_pod *s, uint32_t idx)
{
	int ncpu = libbpf_num_possible_cpus();
	struct sl_counter *c = ncpu > 0 ? calloc((size_t)ncpu, sizeof(*c)) : NULL;
	uint64_t total = 0;

	if (c && !bpf_map_lookup_elem(bpf_map__fd(s->maps.sl_np_ctr_v1), &idx, c))
		for (int i = 0; i < ncpu; i++)
			total += c[i].packets;
	free(c);
	return total;
}

struct flows {
	struct sl_np_flow f[16];
	size_t n;
};

static int flow_cb(void *ctx, void *data, size_t size)
{
	struct flows *fl = ctx;

	if (size == sizeof(struct sl_np_flow) && fl->n < 16)
		memcpy(&fl->f[fl->n++], data, size);
	return 0;
}

/* Drains the ring buffer into fl (reset first). */
static void flows_read(struct tc_pod *s, struct flows *fl)
{
	struct ring_buffer *rb =
		ring_buffer__new(bpf_map__fd(s->maps.sl_np_flow_v1), flow_cb, fl, NULL);

	fl->n = 0;
	if (rb) {
		ring_buffer__consume(rb);
		ring_buffer__free(rb);
	}
}

#define SETUP(s, c)                                             \
	do {                                                    \
		(s) = pol_load();                               \
		(c) = np_fx_model();                            \
		if (!ASSERT_NOT_NULL(s, "load tc_pod") || !(c)) \
			goto out;                               \
	} while (0)

static int verdict(struct tc_pod *s, bool to_pod, uint8_t proto, const char *src, const char *dst,
		   uint16_t sport, uint16_t dport)
{
	uint8_t in[256];
	struct run r;
	size_t len = build(in, proto, src, dst, sport, dport);

	if (run_prog(to_pod ? s->progs.tc_pol_egress : s->progs.tc_pol_ingress, in, len, &r))
		return -1;
	return r.retval;
}

/* As verdict() for TCP, with the TCP flag byte set to flags. */
static int verdict_tcp(struct tc_pod *s, bool to_pod, const char *src, const char *dst,
		       uint16_t sport, uint16_t dport, uint8_t flags)
{
	uint8_t in[256];
	struct run r;
	size_t len = build(in, IPPROTO_TCP, src, dst, sport, dport);

	in[ETH + 20 + 13] = flags;
	if (run_prog(to_pod ? s->progs.tc_pol_egress : s->progs.tc_pol_ingress, in, len, &r))
		return -1;
	return r.retval;
}

/* Writes a cached verdict for the tuple as it crossed the hook dir, under the normalised key
 * (or, raw, as programs before the normalisation wrote it). */
static bool put_np_ct_as(struct tc_pod *s, const char *src, const char *dst, uint16_t sport,
			 uint16_t dport, uint8_t dir, uint8_t verdict, bool raw)
{
	struct sl_np_ct_key k = {.saddr = ip4(src),
				 .daddr = ip4(dst),
				 .sport = htons(sport),
				 .dport = htons(dport),
				 .proto = IPPROTO_TCP,
				 .dir = dir};
	struct timespec t;
	struct sl_np_ct_val v = {.verdict = verdict};

	if (!raw)
		sl_np_ct_key_norm(&k);
	clock_gettime(CLOCK_MONOTONIC, &t);
	v.last_seen_ns = (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
	return !bpf_map_update_elem(bpf_map__fd(s->maps.sl_np_ct_v1), &k, &v, BPF_ANY);
}

static bool put_np_ct(struct tc_pod *s, const char *src, const char *dst, uint16_t sport,
		      uint16_t dport, uint8_t dir, uint8_t verdict)
{
	return put_np_ct_as(s, src, dst, sport, dport, dir, verdict, false);
}

static unsigned np_ct_count(struct tc_pod *s)
{
	int fd = bpf_map__fd(s->maps.sl_np_ct_v1);
	struct sl_np_ct_key k, *prev = NULL;
	unsigned n = 0;

	while (!bpf_map_get_next_key(fd, prev, &k)) {
		n++;
		prev = &k;
	}
	return n;
}

static uint8_t np_ct_verdict(struct tc_pod *s, const char *src, const char *dst, uint16_t sport,
			     uint16_t dport, uint8_t dir)
{
	struct sl_np_ct_key k = {.saddr = ip4(src),
				 .daddr = ip4(dst),
				 .sport = htons(sport),
				 .dport = htons(dport),
				 .proto = IPPROTO_TCP,
				 .dir = dir};
	struct sl_np_ct_val v;

	sl_np_ct_key_norm(&k);
	if (bpf_map_lookup_elem(bpf_map__fd(s->maps.sl_np_ct_v1), &k, &v))
		return 0;
	return v.verdict;
}

#define TCP_SYN 0x02
#define TCP_ACK 0x10

/*
 * A TCP SYN is a new connection even on a tuple with a cached ALLOW (clients reuse their
 * ephemeral ports; the entry of a closed connection lives for an hour): it is decided
 * against current policy, in either orientation of the cached flow, while the packets of
 * an established connection keep passing from the cache. An allowed SYN is decided (and
 * reported) each time, retransmissions too.
 */
TEST(syn_on_reused_tuple_is_decided_again)
{
	struct tc_pod *s = NULL;
	struct np_ctx *c = NULL;
	struct flows fl;

	SETUP(s, c);
	if (!load_from_y(s, c))
		goto out;
	/* z/b -> x/a:80 was allowed before this policy; its entry is still cached. */
	if (!ASSERT_TRUE(put_np_ct(s, ZB, XA, 42000, 80, SL_NP_INGRESS, SL_NP_CT_ALLOW),
			 "cached allow"))
		goto out;
	ASSERT_EQ(verdict_tcp(s, true, ZB, XA, 42000, 80, TCP_ACK), TC_ACT_OK,
		  "the established connection goes on");
	ASSERT_EQ(counter(s, SL_NP_C_CACHED), 1, "from the cache");
	ASSERT_EQ(verdict_tcp(s, true, ZB, XA, 42000, 80, TCP_SYN), TC_ACT_SHOT,
		  "a new connection on the same tuple is dropped");
	ASSERT_EQ(counter(s, SL_R_POLICY_INGRESS), 1, "by the ingress policy");
	ASSERT_EQ(np_ct_verdict(s, ZB, XA, 42000, 80, SL_NP_INGRESS), SL_NP_CT_DENY,
		  "the entry now says deny");
	ASSERT_EQ(verdict_tcp(s, true, ZB, XA, 42000, 80, TCP_ACK), TC_ACT_SHOT,
		  "and the old connection's packets with it");
	/* The reverse orientation: x/a had connected to z/b:80 from port 80 (reply entry
	 * seen from x/a's ingress); z/b's SYN on the reversed tuple is a new connection. */
	if (!ASSERT_TRUE(put_np_ct(s, XA, ZB, 80, 42001, SL_NP_EGRESS, SL_NP_CT_ALLOW),
			 "cached allow, other orientation"))
		goto out;
	ASSERT_EQ(verdict_tcp(s, true, ZB, XA, 42001, 80, TCP_SYN | TCP_ACK), TC_ACT_OK,
		  "a SYN-ACK is a reply: cached");
	ASSERT_EQ(verdict_tcp(s, true, ZB, XA, 42001, 80, TCP_SYN), TC_ACT_SHOT,
		  "a SYN on the reversed tuple is decided");
	/* Allowed SYNs: decided every time, reported every time. */
	flows_read(s, &fl);
	ASSERT_EQ(verdict_tcp(s, true, YA, XA, 42002, 80, TCP_SYN), TC_ACT_OK, "y/a allowed");
	ASSERT_EQ(verdict_tcp(s, true, YA, XA, 42002, 80, TCP_SYN), TC_ACT_OK, "retransmitted");
	ASSERT_EQ(verdict_tcp(s, true, YA, XA, 42002, 80, TCP_ACK), TC_ACT_OK, "then cached");
	ASSERT_EQ(counter(s, SL_NP_C_ALLOW), 2, "both SYNs decided");
	ASSERT_EQ(counter(s, SL_NP_C_CACHED), 3, "the ACKs from the cache");
	flows_read(s, &fl);
	ASSERT_EQ(fl.n, 2, "one record per decision");
out:
	np_free(c);
	tc_pod__destroy(s);
}

/*
 * A flow and its replies are one cache entry (normalised key), found in one lookup from
 * either direction; the established connection survives a policy change in both directions,
 * a SYN on its tuple is decided and its DENY replaces that one entry. Entries written under
 * the raw tuple by earlier programs (a pinned map kept across an upgrade) are still found.
 */
TEST(one_entry_per_flow_both_directions)
{
	struct tc_pod *s = NULL;
	struct np_ctx *c = NULL;

	SETUP(s, c);
	if (!load_policy(s, c))
		goto out;
	/* No policy: y/a -> x/a:80 allowed (x/a not isolated), decided on x/a's veth. */
	ASSERT_EQ(verdict_tcp(s, true, YA, XA, 42010, 80, TCP_SYN), TC_ACT_OK, "SYN allowed");
	ASSERT_EQ(np_ct_count(s), 1, "one entry");
	ASSERT_TRUE(put_np_ct_as(s, XA, YA, 80, 42010, SL_NP_EGRESS, SL_NP_CT_ALLOW, true) &&
			    np_ct_count(s) == 1,
		    "under the normalised key: x/a's lower address first, the direction flipped");
	ASSERT_EQ(verdict_tcp(s, false, XA, YA, 80, 42010, TCP_SYN | TCP_ACK), TC_ACT_OK,
		  "the SYN-ACK passes");
	ASSERT_EQ(verdict_tcp(s, true, YA, XA, 42010, 80, TCP_ACK), TC_ACT_OK, "the ACK passes");
	ASSERT_EQ(counter(s, SL_NP_C_CACHED), 2, "both from the cache");
	ASSERT_EQ(counter(s, SL_NP_C_ALLOW), 1, "only the SYN was decided");
	ASSERT_EQ(np_ct_count(s), 1, "still one entry");
	/* Now only z may reach x/a:80; x/a egress-isolated too, to nobody. */
	np_fx_policy(c, "x", "from-z",
		     "{'podSelector':{},'policyTypes':['Ingress','Egress'],'ingress':[{'from':"
		     "[{'namespaceSelector':{'matchLabels':{'ns':'z'}}}],'ports':[{'port':80}]}]}");
	if (!load_policy(s, c))
		goto out;
	ASSERT_EQ(verdict_tcp(s, true, YA, XA, 42010, 80, TCP_ACK), TC_ACT_OK,
		  "the established connection survives the policy");
	ASSERT_EQ(verdict_tcp(s, false, XA, YA, 80, 42010, TCP_ACK), TC_ACT_OK, "its replies too");
	ASSERT_EQ(verdict_tcp(s, true, YA, XA, 42010, 80, TCP_SYN), TC_ACT_SHOT,
		  "a new connection on the tuple is dropped");
	ASSERT_EQ(verdict_tcp(s, true, YA, XA, 42010, 80, TCP_ACK), TC_ACT_SHOT,
		  "the old connection's packets with it");
	ASSERT_EQ(verdict_tcp(s, false, XA, YA, 80, 42010, TCP_ACK), TC_ACT_SHOT,
		  "in both directions");
	/* Entries of earlier programs, under the raw tuple as it was checked, in the
	 * orientation that is not the normalised one (z/b's address is above x/a's). */
	if (!ASSERT_TRUE(put_np_ct_as(s, ZB, XA, 42020, 80, SL_NP_INGRESS, SL_NP_CT_ALLOW, true),
			 "old entry"))
		goto out;
	ASSERT_EQ(verdict_tcp(s, true, ZB, XA, 42020, 80, TCP_ACK), TC_ACT_OK,
		  "old entry: this direction");
	ASSERT_EQ(verdict_tcp(s, false, XA, ZB, 80, 42020, TCP_ACK), TC_ACT_OK,
		  "old entry: the replies");
out:
	np_free(c);
	tc_pod__destroy(s);
}

/* Ingress allow-from-namespace with a port: the allowed flow passes with an allow record
 * naming the policy; another namespace's pod is dropped with reason INGRESS. */
TEST(ingress_allow_and_deny_with_reason_and_policy)
{
	struct tc_pod *s = NULL;
	struct np_ctx *c = NULL;
	struct flows fl;

	SETUP(s, c);
	if (!load_from_y(s, c))
		goto out;
	ASSERT_EQ(verdict(s, true, IPPROTO_TCP, YA, XA, 40000, 80), TC_ACT_OK, "y/a -> x/a:80");
	ASSERT_EQ(verdict(s, true, IPPROTO_TCP, YA, XA, 40001, 81), TC_ACT_SHOT, "y/a -> x/a:81");
	ASSERT_EQ(verdict(s, true, IPPROTO_TCP, ZB, XA, 40002, 80), TC_ACT_SHOT, "z/b -> x/a:80");
	ASSERT_EQ(verdict(s, true, IPPROTO_UDP, YA, XA, 40003, 80), TC_ACT_SHOT, "UDP not opened");
	ASSERT_EQ(verdict(s, true, IPPROTO_TCP, XA, YA, 40004, 80), TC_ACT_OK, "y not isolated");
	ASSERT_EQ(counter(s, SL_R_POLICY_INGRESS), 3, "ingress drops counted");
	ASSERT_EQ(counter(s, SL_NP_C_ALLOW), 2, "allowed flows counted");
	flows_read(s, &fl);
	if (ASSERT_EQ(fl.n, 5, "one record per decided flow")) {
		ASSERT_EQ(fl.f[0].verdict, SL_NP_CT_ALLOW, "first allowed");
		ASSERT_EQ(fl.f[0].policy, np_policy_id(c, "x", "from-y"), "names the policy");
		ASSERT_NEQ(fl.f[0].policy, 0, "policy id set");
		ASSERT_EQ(fl.f[0].src_id, np_pod_identity(c, "y", "a"), "source identity");
		ASSERT_EQ(fl.f[0].dst_id, np_pod_identity(c, "x", "a"), "destination identity");
		ASSERT_EQ(fl.f[0].dport, htons(80), "port");
		ASSERT_EQ(fl.f[1].verdict, SL_NP_CT_DENY, "second denied");
		ASSERT_EQ(fl.f[1].reason, SL_R_POLICY_INGRESS, "drop reason");
		ASSERT_EQ(fl.f[1].dir, SL_NP_INGRESS, "decided on the ingress side");
		ASSERT_EQ(fl.f[1].saddr, ip4(YA), "source address");
	}
	/* A retransmitted denied SYN is dropped again but reported once. */
	ASSERT_EQ(verdict(s, true, IPPROTO_TCP, ZB, XA, 40002, 80), TC_ACT_SHOT, "retransmit");
	flows_read(s, &fl);
	ASSERT_EQ(fl.n, 0, "deny reported once per flow");
	ASSERT_EQ(counter(s, SL_R_POLICY_INGRESS), 4, "every dropped packet counted");
out:
	np_free(c);
	tc_pod__destroy(s);
}

/* Nobody reads the flow ring (no `sluicectl flows`): once it is full, new flows are still
 * decided, passed or dropped and counted; their records are dropped, and a reader that drains
 * the ring gets them again. */
TEST(full_flow_ring_drops_records_not_packets)
{
	struct tc_pod *s = NULL;
	struct np_ctx *c = NULL;
	struct flows fl;
	int i, n;

	SETUP(s, c);
	if (!load_from_y(s, c))
		goto out;
	/* More decided flows than the ring holds records (one per flow, header included). */
	n = SL_NP_FLOW_BYTES / (int)(sizeof(struct sl_np_flow) + 8) + 16;
	for (i = 0; i < n; i++)
		if (!ASSERT_EQ(verdict(s, true, IPPROTO_TCP, YA, XA, (uint16_t)(1024 + i), 80),
			       TC_ACT_OK, "allowed while filling"))
			goto out;
	ASSERT_EQ(counter(s, SL_NP_C_ALLOW), (uint64_t)n, "every flow decided and counted");
	ASSERT_EQ(verdict(s, true, IPPROTO_TCP, ZB, XA, 40002, 80), TC_ACT_SHOT,
		  "a denied flow with the ring full: dropped");
	ASSERT_EQ(counter(s, SL_R_POLICY_INGRESS), 1, "and counted");
	flows_read(s, &fl);
	ASSERT_TRUE(fl.n > 0, "the ring held records");
	/* Drained (flows_read consumed it all): the next decision is recorded again. */
	ASSERT_EQ(verdict(s, true, IPPROTO_TCP, YA, XA, 40005, 80), TC_ACT_OK, "after the drain");
	flows_read(s, &fl);
	if (ASSERT_EQ(fl.n, 1, "recorded again"))
		ASSERT_EQ(fl.f[0].sport, htons(40005), "the new flow's record");
out:
	np_free(c);
	tc_pod__destroy(s);
}

/* Egress deny-all on x/a: replies of a connection it accepted pass (cached), a new
 * connection from it is dropped with reason EGRESS; a later packet of the allowed flow
 * passes from cache. */
TEST(reply_of_allowed_flow_passes_egress_isolation)
{
	struct tc_pod *s = NULL;
	struct np_ctx *c = NULL;

	SETUP(s, c);
	np_fx_policy(c, "x", "deny-egress", "{'podSelector':{},'policyTypes':['Egress']}");
	if (!load_policy(s, c))
		goto out;
	ASSERT_EQ(verdict(s, true, IPPROTO_TCP, YA, XA, 41000, 80), TC_ACT_OK, "in: not isolated");
	ASSERT_EQ(verdict(s, false, IPPROTO_TCP, XA, YA, 80, 41000), TC_ACT_OK, "reply out");
	ASSERT_EQ(verdict(s, true, IPPROTO_TCP, YA, XA, 41000, 80), TC_ACT_OK, "next packet in");
	ASSERT_EQ(counter(s, SL_NP_C_CACHED), 2, "reply and later packet from the cache");
	ASSERT_EQ(verdict(s, false, IPPROTO_TCP, XA, YA, 41001, 80), TC_ACT_SHOT, "new out");
	ASSERT_EQ(counter(s, SL_R_POLICY_EGRESS), 1, "egress drop counted");
	/* A flow in the other direction is not a reply of the one decided here. */
	ASSERT_EQ(verdict(s, false, IPPROTO_UDP, XA, YA, 80, 41000), TC_ACT_SHOT, "UDP not TCP");
out:
	np_free(c);
	tc_pod__destroy(s);
}

/* ICMP errors about an allowed flow are related and pass; others are decided as ICMP
 * (only rules without ports admit them). */
TEST(icmp_related_to_allowed_flow)
{
	struct tc_pod *s = NULL;
	struct np_ctx *c = NULL;
	uint8_t q[256], e[256];
	struct run r;
	size_t len;

	SETUP(s, c);
	np_fx_policy(c, "x", "lockdown",
		     "{'podSelector':{},'policyTypes':['Ingress','Egress'],'egress':[{'to':[{"
		     "'namespaceSelector':{'matchLabels':{'ns':'y'}}}],'ports':[{'protocol':'UDP',"
		     "'port':53}]}]}");
	if (!load_policy(s, c))
		goto out;
	/* x/a sends UDP to y/b:53 (allowed), y/b answers port unreachable. */
	build(q, IPPROTO_UDP, XA, YB, 42000, 53);
	ASSERT_EQ(verdict(s, false, IPPROTO_UDP, XA, YB, 42000, 53), TC_ACT_OK, "query out");
	len = build_icmp_unreach(e, YB, XA, q);
	if (ASSERT_OK(run_prog(s->progs.tc_pol_egress, e, len, &r), "run"))
		ASSERT_EQ(r.retval, TC_ACT_OK, "related ICMP in");
	/* The same error about a flow never allowed is dropped (x is ingress-isolated). */
	build(q, IPPROTO_UDP, XA, YB, 42001, 54);
	len = build_icmp_unreach(e, YB, XA, q);
	if (ASSERT_OK(run_prog(s->progs.tc_pol_egress, e, len, &r), "run"))
		ASSERT_EQ(r.retval, TC_ACT_SHOT, "unrelated ICMP dropped");
	ASSERT_EQ(counter(s, SL_R_POLICY_INGRESS), 1, "counted as an ingress drop");
out:
	np_free(c);
	tc_pod__destroy(s);
}

/* SCTP is its own protocol: an SCTP rule admits SCTP and never TCP. */
TEST(sctp_rules)
{
	struct tc_pod *s = NULL;
	struct np_ctx *c = NULL;

	SETUP(s, c);
	np_fx_policy(c, "x", "sctp",
		     "{'podSelector':{'matchLabels':{'pod':'a'}},'ingress':[{'ports':[{'protocol':"
		     "'SCTP','port':80}]}]}");
	if (!load_policy(s, c))
		goto out;
	ASSERT_EQ(verdict(s, true, IPPROTO_SCTP, ZB, XA, 5000, 80), TC_ACT_OK, "SCTP 80");
	ASSERT_EQ(verdict(s, true, IPPROTO_SCTP, ZB, XA, 5001, 81), TC_ACT_SHOT, "SCTP 81");
	ASSERT_EQ(verdict(s, true, IPPROTO_TCP, ZB, XA, 5002, 80), TC_ACT_SHOT, "TCP 80");
	ASSERT_EQ(verdict(s, false, IPPROTO_SCTP, XA, ZB, 80, 5000), TC_ACT_OK, "SCTP reply");
	ASSERT_EQ(verdict(s, true, IPPROTO_SCTP, ZB, XB, 5003, 81), TC_ACT_OK, "x/b not selected");
out:
	np_free(c);
	tc_pod__destroy(s);
}

/*
 * The datapath's 9x9 reachability matrix for (proto, port), in np_fx_matrix's notation: for
 * each source and destination of the e2e model, the first packet goes through the source's
 * hook (its egress) and then the destination's (its ingress), in that order and on the same
 * maps, as on a node that hosts both; allowed when both pass. A fresh source port per cell,
 * so no cell sees another's verdict cache. Prints both tables on a mismatch.
 */
static bool dp_matrix(struct tc_pod *s, uint8_t proto, uint16_t port, const char *want,
		      const char *name)
{
	static uint16_t sport = 20000;
	char w[82], got[82];
	size_t n = 0;
	bool ok = true;

	for (const char *p = want; *p && n < 81; p++)
		if (*p == '.' || *p == 'X')
			w[n++] = *p;
	w[n] = '\0';
	if (!ASSERT_EQ(n, 81, name))
		return false;
	for (int i = 0; i < 9; i++) {
		for (int j = 0; j < 9; j++) {
			char a[32], b[32];
			bool pass;

			np_fx_ip(i, a, sizeof(a));
			np_fx_ip(j, b, sizeof(b));
			sport++;
			pass = verdict(s, false, proto, a, b, sport, port) == TC_ACT_OK &&
			       verdict(s, true, proto, a, b, sport, port) == TC_ACT_OK;
			got[i * 9 + j] = pass ? '.' : 'X';
			if (i != j && got[i * 9 + j] != w[i * 9 + j])
				ok = false;
		}
	}
	got[81] = '\0';
	if (!ok) {
		(void)TEST_FAIL_AT("%s: datapath reachability differs (proto %u port %u)", name,
				   proto, port);
		fprintf(stderr, "        want        got\n");
		for (int i = 0; i < 9; i++)
			fprintf(stderr, "  %s/%s  %.9s   %.9s\n", np_fx_nss[i / 3],
				np_fx_pods[i % 3], w + i * 9, got + i * 9);
	}
	return ok;
}

/*
 * SCTP through the whole matrix (the lab's echo server speaks only TCP and UDP, so SCTP is
 * checked here): namespace x admits SCTP 80 from namespace y and the named port
 * serve-81-sctp from z/b only; y/c may send only TCP 80. Each table is checked against the
 * datapath and, as a cross-check, against the compiler's own answer.
 */
TEST(sctp_matrix)
{
	struct tc_pod *s = NULL;
	struct np_ctx *c = NULL;
	/* rows: sources x/a ... z/c; columns: destinations; the diagonal is not checked */
	static const char sctp80[] = "XXX...... XXX...... XXX...... ......... ......... "
				     "XXXXXXXXX XXX...... XXX...... XXX......";
	static const char sctp81[] = "XXX...... XXX...... XXX...... XXX...... XXX...... "
				     "XXXXXXXXX XXX...... ......... XXX......";
	static const char tcp80[] = "XXX...... XXX...... XXX...... XXX...... XXX...... "
				    "XXX...... XXX...... XXX...... XXX......";

	SETUP(s, c);
	np_fx_policy(c, "x", "sctp-in",
		     "{'podSelector':{},'ingress':[{'from':[{'namespaceSelector':{'matchLabels':"
		     "{'ns':'y'}}}],'ports':[{'protocol':'SCTP','port':80}]},{'from':[{"
		     "'namespaceSelector':{'matchLabels':{'ns':'z'}},'podSelector':{'matchLabels':"
		     "{'pod':'b'}}}],'ports':[{'protocol':'SCTP','port':'serve-81-sctp'}]}]}");
	np_fx_policy(c, "y", "c-tcp-80-only",
		     "{'podSelector':{'matchLabels':{'pod':'c'}},'policyTypes':['Egress'],"
		     "'egress':[{'ports':[{'protocol':'TCP','port':80}]}]}");
	if (!load_policy(s, c))
		goto out;
	dp_matrix(s, IPPROTO_SCTP, 80, sctp80, "datapath SCTP 80");
	dp_matrix(s, IPPROTO_SCTP, 81, sctp81, "datapath SCTP 81");
	dp_matrix(s, IPPROTO_TCP, 80, tcp80, "datapath TCP 80 (SCTP rules are not TCP)");
	np_fx_matrix(c, IPPROTO_SCTP, 80, sctp80, "compiler SCTP 80");
	np_fx_matrix(c, IPPROTO_SCTP, 81, sctp81, "compiler SCTP 81");
	np_fx_matrix(c, IPPROTO_TCP, 80, tcp80, "compiler TCP 80");
out:
	np_free(c);
	tc_pod__destroy(s);
}

/* Traffic from the pod's own node (a node address) is always allowed, and the pod's
 * replies pass its egress isolation; other external sources are dropped. */
TEST(node_origin_allowed)
{
	struct tc_pod *s = NULL;
	struct np_ctx *c = NULL;
	struct sl_local4_val lv = {0};
	uint32_t node = ip4(NODE);

	SETUP(s, c);
	np_fx_policy(c, "x", "deny-all", "{'podSelector':{},'policyTypes':['Ingress','Egress']}");
	if (!load_policy(s, c) ||
	    !ASSERT_OK(bpf_map_update_elem(bpf_map__fd(s->maps.sl_local4_v1), &node, &lv, 0),
		       "node address"))
		goto out;
	ASSERT_EQ(verdict(s, true, IPPROTO_TCP, NODE, XA, 43000, 8080), TC_ACT_OK, "probe");
	ASSERT_EQ(counter(s, SL_NP_C_ALLOW_NODE), 1, "counted as node traffic");
	ASSERT_EQ(verdict(s, false, IPPROTO_TCP, XA, NODE, 8080, 43000), TC_ACT_OK, "probe reply");
	ASSERT_EQ(verdict(s, true, IPPROTO_TCP, EXT, XA, 43001, 8080), TC_ACT_SHOT, "external");
	ASSERT_EQ(verdict(s, false, IPPROTO_TCP, XA, NODE, 43002, 22), TC_ACT_SHOT,
		  "a new connection to the node is egress");
	ASSERT_EQ(verdict(s, true, IPPROTO_TCP, XA, XA, 43003, 80), TC_ACT_OK, "self");
out:
	np_free(c);
	tc_pod__destroy(s);
}

/* ipBlock egress with except; a pod that fails closed drops with reason FAILED. */
TEST(ipblock_and_failed_closed)
{
	struct tc_pod *s = NULL;
	struct np_ctx *c = NULL;
	struct flows fl;

	SETUP(s, c);
	np_fx_policy(c, "x", "cidr",
		     "{'podSelector':{'matchLabels':{'pod':'a'}},'policyTypes':['Egress'],"
		     "'egress':[{'to':[{'ipBlock':{'cidr':'198.18.200.0/24','except':["
		     "'198.18.200.128/25']}}]}]}");
	np_fx_policy(c, "y", "broken",
		     "{'podSelector':{},'ingress':[{'ports':[{'protocol':'ICMPX','port':1}]}]}");
	if (!load_policy(s, c))
		goto out;
	ASSERT_EQ(verdict(s, false, IPPROTO_TCP, XA, EXT, 44000, 443), TC_ACT_OK, "in cidr");
	ASSERT_EQ(verdict(s, false, IPPROTO_TCP, XA, "198.18.200.200", 44001, 443), TC_ACT_SHOT,
		  "in except");
	ASSERT_EQ(verdict(s, false, IPPROTO_TCP, XA, YB, 44002, 80), TC_ACT_SHOT, "pod outside");
	ASSERT_EQ(verdict(s, true, IPPROTO_TCP, ZB, YB, 44003, 80), TC_ACT_SHOT, "y failed");
	ASSERT_EQ(counter(s, SL_R_POLICY_FAILED), 1, "failed-closed drop");
	flows_read(s, &fl);
	if (ASSERT_EQ(fl.n, 4, "records"))
		ASSERT_EQ(fl.f[3].reason, SL_R_POLICY_FAILED, "reason FAILED");
out:
	np_free(c);
	tc_pod__destroy(s);
}

/* An opted-out pod (tc_pod programs): policy sees the backend after DNAT, so an egress rule
 * to namespace y admits a ClusterIP whose backend is y/b and not one whose backend is z/b. */
TEST(policy_after_service_translation)
{
	struct tc_pod *s = NULL;
	struct np_ctx *c = NULL;
	struct sl_backend be = {
		.addr = ip4(YB), .port = htons(8080), .proto = IPPROTO_TCP, .state = SL_BE_ACTIVE};
	struct sl_svc_key k = {
		.addr = ip4(VIP), .port = htons(80), .proto = IPPROTO_TCP, .scope = SL_SCOPE_EXT};
	struct sl_svc_val v = {.svc_id = 3, .slot_base = 0, .count = 1};
	uint32_t id = 1, slot = 0;
	uint8_t in[256];
	struct run r;
	size_t len;

	SETUP(s, c);
	np_fx_policy(c, "x", "to-y",
		     "{'podSelector':{},'policyTypes':['Egress'],'egress':[{'to':[{"
		     "'namespaceSelector':{'matchLabels':{'ns':'y'}}}]}]}");
	if (!load_policy(s, c) ||
	    bpf_map_update_elem(bpf_map__fd(s->maps.sl_be4_v1), &id, &be, 0) ||
	    bpf_map_update_elem(bpf_map__fd(s->maps.sl_slots_v1), &slot, &id, 0) ||
	    bpf_map_update_elem(bpf_map__fd(s->maps.sl_svc4_v1), &k, &v, 0))
		goto out;
	len = build(in, IPPROTO_TCP, XA, VIP, 45000, 80);
	if (ASSERT_OK(run_prog(s->progs.tc_pod_ingress, in, len, &r), "run"))
		ASSERT_EQ(r.retval, TC_ACT_OK, "ClusterIP -> y/b allowed");
	/* The reply from y/b passes (cached, pre-reverse-NAT tuple) and is rewritten. */
	len = build(in, IPPROTO_TCP, YB, XA, 8080, 45000);
	if (ASSERT_OK(run_prog(s->progs.tc_pod_egress, in, len, &r), "run reply")) {
		uint32_t src;

		ASSERT_EQ(r.retval, TC_ACT_OK, "reply passes");
		memcpy(&src, r.out + ETH + 12, 4);
		ASSERT_EQ(src, ip4(VIP), "reply source is the ClusterIP again");
	}
	be.addr = ip4(ZB);
	bpf_map_update_elem(bpf_map__fd(s->maps.sl_be4_v1), &id, &be, 0);
	len = build(in, IPPROTO_TCP, XA, VIP, 45001, 80);
	if (ASSERT_OK(run_prog(s->progs.tc_pod_ingress, in, len, &r), "run z"))
		ASSERT_EQ(r.retval, TC_ACT_SHOT, "ClusterIP -> z/b denied");
	ASSERT_EQ(counter(s, SL_R_POLICY_EGRESS), 1, "egress drop");
out:
	np_free(c);
	tc_pod__destroy(s);
}
