// SPDX-License-Identifier: Apache-2.0
/*
 * Packet fixtures for the north-south uplink programs (bpf/tc_nodeport.bpf.c),
 * run with BPF_PROG_TEST_RUN: each test builds an Ethernet/IPv4/L4 packet,
 * runs tc_nodeport_ingress or _egress, and checks the verdict, every rewritten
 * byte (the rest must be unchanged), the IPv4/TCP/UDP checksums and SCTP
 * CRC32c recomputed here independently (bitwise CRC, not the program's table),
 * and the conntrack/NAT/counter map state.
 *
 * The process moves into its own network namespace with one veth pair so FIB
 * lookups for SNATed packets are deterministic:
 *
 *        client 198.18.0.100 (02:..:64)     remote backend 198.18.0.20 (02:..:14)
 *                       \                      /   (static neighbours)
 *                  sl0 02:00:00:00:00:01  198.18.0.1/24  (node address, SNAT source)
 *                   |  veth
 *                  sl1
 *
 *   local backends (pods) 198.19.0.x: never routed here, DNAT only returns TC_ACT_OK.
 *
 * Maps are created without pinning (pin paths cleared before load), so
 * nothing is left in /sys/fs/bpf; the namespace dies with the process.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <sched.h>
#include <stdlib.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "abi/hostroute.h"
#include "abi/lb.h"
#include "agent/maglev.h"
#include "bpf/lib/sl_hash.h"
#include "harness.h"
#include "tc_nodeport.skel.h"

#define TC_ACT_OK	0
#define TC_ACT_SHOT	2
#define TC_ACT_REDIRECT 7

#define NODE	  "198.18.0.1"
#define CLIENT	  "198.18.0.100"
#define REMOTE_BE "198.18.0.20"
#define LOCAL_BE  "198.19.0.10"
#define LOCAL_BE2 "198.19.0.11"
#define LB_VIP	  "198.18.5.5"
#define EXT_IP	  "198.18.6.6"

static const uint8_t mac_node[6] = {2, 0, 0, 0, 0, 1};
static const uint8_t mac_client[6] = {2, 0, 0, 0, 0, 0x64};
static const uint8_t mac_remote[6] = {2, 0, 0, 0, 0, 0x14};

static int g_ifindex; /* sl0 */

static uint32_t ip4(const char *s)
{
	struct in_addr a;

	inet_pton(AF_INET, s, &a);
	return a.s_addr;
}

/* ---- independent checksum implementations -------------------------------- */

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

/* Bitwise CRC32c (no table), so a wrong table in the program cannot agree with it. */
static uint32_t crc32c_bitwise(const uint8_t *p, size_t n)
{
	uint32_t crc = 0xffffffff;

	for (size_t i = 0; i < n; i++) {
		crc ^= p[i];
		for (int k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0x82f63b78 & -(crc & 1));
	}
	return ~crc;
}

static void wr32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

static void wr16(uint8_t *p, uint16_t v)
{
	memcpy(p, &v, 2);
}

/* ---- packet builder -------------------------------------------------------- */

struct spec {
	const char *src, *dst;
	const uint8_t *smac, *dmac;
	size_t payload; /* bytes of payload (pattern) */
	uint32_t seq, ack;
	uint16_t sport, dport;
	uint8_t proto;
	uint8_t tcp_flags;
	uint8_t ip_opt_words; /* 0 or more 4-byte NOP option words */
	bool udp_no_csum;
};

#define ETH 14

static size_t ihl_of(const uint8_t *b)
{
	return (b[ETH] & 0xf) * 4;
}

/* Recomputes IPv4 and L4 checksums of b in place (used to build fixtures). */
static void fix_csums(uint8_t *b, size_t len, bool udp_no_csum)
{
	size_t ihl = ihl_of(b), l4 = ETH + ihl;
	size_t l4len = ((size_t)b[ETH + 2] << 8 | b[ETH + 3]) - ihl;
	uint8_t proto = b[ETH + 9];
	uint32_t s;

	(void)len;
	b[ETH + 10] = b[ETH + 11] = 0;
	s = fold(sum16(b + ETH, ihl, 0));
	b[ETH + 10] = s >> 8;
	b[ETH + 11] = s & 0xff;
	if (proto == IPPROTO_TCP || proto == IPPROTO_UDP) {
		size_t co = proto == IPPROTO_TCP ? 16 : 6;
		uint8_t ph[12];

		b[l4 + co] = b[l4 + co + 1] = 0;
		if (proto == IPPROTO_UDP && udp_no_csum)
			return;
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
	} else if (proto == IPPROTO_SCTP) {
		uint32_t c;

		memset(b + l4 + 8, 0, 4);
		c = crc32c_bitwise(b + l4, l4len);
		memcpy(b + l4 + 8, &c, 4); /* little-endian on the wire, as Linux writes it */
	}
}

static size_t build(uint8_t *b, const struct spec *s)
{
	size_t ihl = 20 + 4 * s->ip_opt_words, l4 = ETH + ihl, hl, len;

	hl = s->proto == IPPROTO_TCP ? 20 : s->proto == IPPROTO_UDP ? 8 : 12 + 16;
	len = l4 + hl + s->payload;
	memset(b, 0, len);
	memcpy(b, s->dmac ? s->dmac : mac_node, 6);
	memcpy(b + 6, s->smac ? s->smac : mac_client, 6);
	b[12] = 0x08;
	b[ETH] = 0x40 | (uint8_t)(ihl / 4);
	b[ETH + 2] = (len - ETH) >> 8;
	b[ETH + 3] = (len - ETH) & 0xff;
	b[ETH + 4] = 0x12; /* id */
	b[ETH + 6] = 0x40; /* DF */
	b[ETH + 8] = 61;
	b[ETH + 9] = s->proto;
	wr32(b + ETH + 12, ip4(s->src));
	wr32(b + ETH + 16, ip4(s->dst));
	memset(b + ETH + 20, 1, ihl - 20); /* NOP options */
	wr16(b + l4, htons(s->sport));
	wr16(b + l4 + 2, htons(s->dport));
	if (s->proto == IPPROTO_TCP) {
		wr32(b + l4 + 4, htonl(s->seq));
		wr32(b + l4 + 8, htonl(s->ack));
		b[l4 + 12] = 5 << 4;
		b[l4 + 13] = s->tcp_flags;
		b[l4 + 14] = 0xfa;
	} else if (s->proto == IPPROTO_UDP) {
		wr16(b + l4 + 4, htons((uint16_t)(8 + s->payload)));
	} else {
		wr32(b + l4 + 4, htonl(0xdeadbeef)); /* vtag */
		b[l4 + 12] = 0;			     /* DATA chunk */
		b[l4 + 13] = 3;
		wr16(b + l4 + 14, htons(16 + (uint16_t)s->payload));
	}
	for (size_t i = 0; i < s->payload; i++)
		b[l4 + hl + i] = (uint8_t)(i * 7 + 3);
	fix_csums(b, len, s->udp_no_csum);
	return len;
}

/* Every checksum in b is valid (checked by summing, not by rebuilding). */
static bool csums_ok(const uint8_t *b, size_t len)
{
	size_t ihl = ihl_of(b), l4 = ETH + ihl;
	size_t tot = (size_t)b[ETH + 2] << 8 | b[ETH + 3];
	size_t l4len = tot - ihl;
	uint8_t proto = b[ETH + 9], ph[12];

	if (ETH + tot > len || !ASSERT_EQ(fold(sum16(b + ETH, ihl, 0)), 0, "IPv4 header checksum"))
		return false;
	if (proto == IPPROTO_UDP && b[l4 + 6] == 0 && b[l4 + 7] == 0)
		return true;
	if (proto == IPPROTO_TCP || proto == IPPROTO_UDP || proto == IPPROTO_ICMP) {
		uint32_t s = 0;

		if (proto != IPPROTO_ICMP) {
			memcpy(ph, b + ETH + 12, 8);
			ph[8] = 0;
			ph[9] = proto;
			ph[10] = l4len >> 8;
			ph[11] = l4len & 0xff;
			s = sum16(ph, 12, 0);
		}
		return ASSERT_EQ(fold(sum16(b + l4, l4len, s)), 0, "L4 checksum");
	}
	if (proto == IPPROTO_SCTP) {
		uint8_t tmp[2048];
		uint32_t want, got;

		memcpy(tmp, b + l4, l4len);
		memcpy(&got, tmp + 8, 4);
		memset(tmp + 8, 0, 4);
		want = crc32c_bitwise(tmp, l4len);
		return ASSERT_EQ(got, want, "SCTP CRC32c");
	}
	return true;
}

static uint32_t rd32(const uint8_t *b, size_t off)
{
	uint32_t v;

	memcpy(&v, b + off, 4);
	return v;
}

static uint16_t rd16(const uint8_t *b, size_t off)
{
	uint16_t v;

	memcpy(&v, b + off, 2);
	return ntohs(v);
}

/*
 * Expected output = input with the given fields replaced (0 / NULL = keep)
 * and checksums recomputed here; compared byte for byte.
 */
struct rewrite {
	const char *src, *dst;
	uint16_t sport, dport;
	const uint8_t *smac, *dmac;
};

static bool expect_rewrite(const uint8_t *in, size_t len, const uint8_t *out, size_t out_len,
			   const struct rewrite *rw, const char *what)
{
	uint8_t exp[2048];
	size_t l4 = ETH + ihl_of(in);
	bool udp0 = in[ETH + 9] == IPPROTO_UDP && in[l4 + 6] == 0 && in[l4 + 7] == 0;

	if (!ASSERT_EQ(out_len, len, what))
		return false;
	memcpy(exp, in, len);
	if (rw->dmac)
		memcpy(exp, rw->dmac, 6);
	if (rw->smac)
		memcpy(exp + 6, rw->smac, 6);
	if (rw->src)
		wr32(exp + ETH + 12, ip4(rw->src));
	if (rw->dst)
		wr32(exp + ETH + 16, ip4(rw->dst));
	if (rw->sport)
		wr16(exp + l4, htons(rw->sport));
	if (rw->dport)
		wr16(exp + l4 + 2, htons(rw->dport));
	fix_csums(exp, len, udp0);
	if (!csums_ok(out, out_len))
		return false;
	for (size_t i = 0; i < len; i++)
		if (exp[i] != out[i])
			return TEST_FAIL_AT("%s: byte %zu is %02x, expected %02x", what, i, out[i],
					    exp[i]);
	return true;
}

/* ---- environment ------------------------------------------------------------ */

static bool netns_ready;

static int netns_setup(void)
{
	static const char *cmds[] = {
		"ip link set lo up",
		"ip link add sl0 address 02:00:00:00:00:01 type veth peer name sl1",
		"ip link set sl0 up",
		"ip link set sl1 up",
		"ip addr add 198.18.0.1/24 dev sl0",
		"ip neigh replace 198.18.0.20 lladdr 02:00:00:00:00:14 dev sl0 nud permanent",
		"ip neigh replace 198.18.0.100 lladdr 02:00:00:00:00:64 dev sl0 nud permanent",
		"sysctl -qw net.ipv4.conf.all.forwarding=1",
	};

	if (netns_ready)
		return 0;
	if (unshare(CLONE_NEWNET)) {
		fprintf(stderr, "  unshare(CLONE_NEWNET): %s\n", strerror(errno));
		return -errno;
	}
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		char cmd[256];

		snprintf(cmd, sizeof(cmd), "%s >/dev/null 2>&1", cmds[i]);
		if (system(cmd) != 0) {
			fprintf(stderr, "  netns setup failed: %s\n", cmds[i]);
			return -EIO;
		}
	}
	g_ifindex = (int)if_nametoindex("sl0");
	netns_ready = g_ifindex > 0;
	return netns_ready ? 0 : -ENODEV;
}

static int print_libbpf(enum libbpf_print_level lvl, const char *fmt, va_list ap)
{
	if (lvl == LIBBPF_DEBUG)
		return 0;
	return vfprintf(stderr, fmt, ap);
}

/* Opens and loads the programs with small, unpinned maps. */
static struct tc_nodeport *np_load(void)
{
	struct tc_nodeport *skel;
	struct bpf_map *m;
	int err;

	libbpf_set_print(print_libbpf);
	if (netns_setup())
		return NULL;
	skel = tc_nodeport__open();
	if (!skel)
		return NULL;
	bpf_object__for_each_map(m, skel->obj) bpf_map__set_pin_path(m, NULL);
	bpf_map__set_max_entries(skel->maps.sl_ct4_tcp_v1, 4096);
	bpf_map__set_max_entries(skel->maps.sl_ct4_any_v1, 4096);
	bpf_map__set_max_entries(skel->maps.sl_nat4_v1, 4096);
	bpf_map__set_max_entries(skel->maps.sl_slots_v1, 4096);
	bpf_map__set_max_entries(skel->maps.sl_be4_v1, 1024);
	bpf_map__set_max_entries(skel->maps.sl_maglev_v1, SL_MAGLEV_M * 2);
	err = tc_nodeport__load(skel);
	if (err) {
		fprintf(stderr, "  load: %d\n", err);
		tc_nodeport__destroy(skel);
		return NULL;
	}
	return skel;
}

static int map_fd(struct bpf_map *m)
{
	return bpf_map__fd(m);
}

static int put_node(struct tc_nodeport *s, uint16_t pmin, uint16_t pmax)
{
	struct sl_node4_cfg c = {
		.snat_addr = ip4(NODE),
		.hash_seed = 0x5eed,
		.nat_port_min = pmin,
		.nat_port_max = pmax,
	};
	struct sl_local4_val lv = {0};
	uint32_t zero = 0, a = ip4(NODE);

	if (bpf_map_update_elem(map_fd(s->maps.sl_node4_v1), &zero, &c, 0))
		return -errno;
	return bpf_map_update_elem(map_fd(s->maps.sl_local4_v1), &a, &lv, 0) ? -errno : 0;
}

static int put_backend(struct tc_nodeport *s, uint32_t id, const char *addr, uint16_t port,
		       uint8_t proto, uint32_t node_id, uint8_t state)
{
	struct sl_backend be = {
		.addr = ip4(addr),
		.port = htons(port),
		.proto = proto,
		.state = state,
		.node_id = node_id,
	};

	return bpf_map_update_elem(map_fd(s->maps.sl_be4_v1), &id, &be, 0) ? -errno : 0;
}

static int put_slot(struct tc_nodeport *s, uint32_t idx, uint32_t be_id)
{
	return bpf_map_update_elem(map_fd(s->maps.sl_slots_v1), &idx, &be_id, 0) ? -errno : 0;
}

static int put_svc(struct tc_nodeport *s, const char *addr, uint16_t port, uint8_t proto,
		   uint16_t flags, uint32_t svc_id, uint32_t slot_base, uint16_t count)
{
	struct sl_svc_key k = {
		.addr = addr ? ip4(addr) : 0,
		.port = htons(port),
		.proto = proto,
		.scope = SL_SCOPE_EXT,
	};
	struct sl_svc_val v = {
		.svc_id = svc_id,
		.slot_base = slot_base,
		.count = count,
		.flags = flags,
	};

	return bpf_map_update_elem(map_fd(s->maps.sl_svc4_v1), &k, &v, 0) ? -errno : 0;
}

struct run {
	int retval;
	uint32_t out_len;
	uint8_t out[2048];
};

static int run_prog(struct bpf_program *p, const uint8_t *in, size_t len, struct run *r)
{
	struct __sk_buff ctx = {.ifindex = (uint32_t)g_ifindex};
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = in, .data_size_in = (uint32_t)len,
		    .data_out = r->out, .data_size_out = sizeof(r->out), .ctx_in = &ctx,
		    .ctx_size_in = sizeof(ctx), .repeat = 1);
	int err;

	err = bpf_prog_test_run_opts(bpf_program__fd(p), &o);
	if (err)
		return -errno;
	r->retval = (int)o.retval;
	r->out_len = o.data_size_out;
	return 0;
}

/* Sum of a reason counter over all CPUs. */
static uint64_t counter(struct tc_nodeport *s, uint32_t reason)
{
	int ncpu = libbpf_num_possible_cpus();
	struct sl_counter *c;
	uint64_t total = 0;

	if (ncpu <= 0)
		return 0;
	c = calloc((size_t)ncpu, sizeof(*c));
	if (c && !bpf_map_lookup_elem(map_fd(s->maps.sl_npctr_v1), &reason, c))
		for (int i = 0; i < ncpu; i++)
			total += c[i].packets;
	free(c);
	return total;
}

static int ct_get(struct tc_nodeport *s, uint8_t proto, const char *sa, const char *da, uint16_t sp,
		  uint16_t dp, uint8_t dir, struct sl_ct4_val *v)
{
	struct sl_ct4_key k = {
		.saddr = ip4(sa),
		.daddr = ip4(da),
		.sport = htons(sp),
		.dport = htons(dp),
		.proto = proto,
		.dir = dir,
	};
	struct bpf_map *m = proto == IPPROTO_TCP ? s->maps.sl_ct4_tcp_v1 : s->maps.sl_ct4_any_v1;

	return bpf_map_lookup_elem(map_fd(m), &k, v) ? -errno : 0;
}

#define LOAD_OR_OUT(skel)                                            \
	do {                                                         \
		(skel) = np_load();                                  \
		if (!ASSERT_NOT_NULL(skel, "load tc_nodeport"))      \
			goto out;                                    \
		if (!ASSERT_OK(put_node(skel, 0, 0), "node config")) \
			goto out;                                    \
	} while (0)

/* ---- tests -------------------------------------------------------------------- */

/* NodePort (wildcard addr 0 on a local address) to a node-local backend:
 * DNAT only, client address kept, TC_ACT_OK into the stack, CT both ways. */
TEST(nodeport_tcp_syn_dnat_local_backend)
{
	struct tc_nodeport *s = NULL;
	struct spec sp = {.proto = IPPROTO_TCP,
			  .src = CLIENT,
			  .dst = NODE,
			  .sport = 40000,
			  .dport = 30080,
			  .tcp_flags = 0x02,
			  .seq = 1000};
	struct rewrite rw = {.dst = LOCAL_BE, .dport = 8080};
	struct sl_ct4_val v;
	uint8_t in[256];
	struct run r;
	size_t len;

	LOAD_OR_OUT(s);
	if (!ASSERT_OK(put_backend(s, 1, LOCAL_BE, 8080, IPPROTO_TCP, 0, SL_BE_ACTIVE), "be") ||
	    !ASSERT_OK(put_slot(s, 0, 1), "slot") ||
	    !ASSERT_OK(put_svc(s, NULL, 30080, IPPROTO_TCP, SL_SVC_F_NODEPORT, 7, 0, 1), "svc"))
		goto out;
	len = build(in, &sp);
	if (!ASSERT_OK(run_prog(s->progs.tc_nodeport_ingress, in, len, &r), "run"))
		goto out;
	ASSERT_EQ(r.retval, TC_ACT_OK, "verdict: into the stack");
	expect_rewrite(in, len, r.out, r.out_len, &rw, "DNAT bytes");

	if (ASSERT_OK(ct_get(s, IPPROTO_TCP, CLIENT, NODE, 40000, 30080, SL_CT_DIR_FWD, &v),
		      "FWD CT entry")) {
		ASSERT_EQ(v.backend_id, 1, "ct backend");
		ASSERT_EQ(v.svc_id, 7, "ct svc");
		ASSERT_EQ(v.fe_addr, ip4(NODE), "ct frontend addr");
		ASSERT_EQ(v.fe_port, htons(30080), "ct frontend port");
		ASSERT_EQ(v.flags & SL_CT_F_SNAT, 0, "no SNAT for a local backend");
	}
	ASSERT_OK(ct_get(s, IPPROTO_TCP, LOCAL_BE, CLIENT, 8080, 40000, SL_CT_DIR_REPLY, &v),
		  "REPLY CT entry");
	ASSERT_EQ(counter(s, SL_R_OK), 1, "OK counter");

	/* Same frontend with IP options (IHL 7): L4 found past the options. */
	sp.ip_opt_words = 2;
	sp.sport = 40001;
	len = build(in, &sp);
	if (!ASSERT_OK(run_prog(s->progs.tc_nodeport_ingress, in, len, &r), "run opts"))
		goto out;
	ASSERT_EQ(r.retval, TC_ACT_OK, "verdict with options");
	expect_rewrite(in, len, r.out, r.out_len, &rw, "DNAT bytes with IP options");
out:
	tc_nodeport__destroy(s);
}

/* The local backend's SYN-ACK leaves through the uplink: source back to the frontend. */
TEST(nodeport_reply_reverse_nat_on_egress)
{
	struct tc_nodeport *s = NULL;
	struct spec syn = {.proto = IPPROTO_TCP,
			   .src = CLIENT,
			   .dst = NODE,
			   .sport = 40000,
			   .dport = 30080,
			   .tcp_flags = 0x02,
			   .seq = 1000};
	struct spec synack = {.proto = IPPROTO_TCP,
			      .src = LOCAL_BE,
			      .dst = CLIENT,
			      .sport = 8080,
			      .dport = 40000,
			      .tcp_flags = 0x12,
			      .seq = 5000,
			      .ack = 1001,
			      .smac = mac_node,
			      .dmac = mac_client,
			      .payload = 3};
	struct rewrite rw = {.src = NODE, .sport = 30080};
	uint8_t in[256];
	struct run r;
	size_t len;

	LOAD_OR_OUT(s);
	if (!ASSERT_OK(put_backend(s, 1, LOCAL_BE, 8080, IPPROTO_TCP, 0, SL_BE_ACTIVE), "be") ||
	    !ASSERT_OK(put_slot(s, 0, 1), "slot") ||
	    !ASSERT_OK(put_svc(s, NULL, 30080, IPPROTO_TCP, SL_SVC_F_NODEPORT, 7, 0, 1), "svc"))
		goto out;
	len = build(in, &syn);
	if (!ASSERT_OK(run_prog(s->progs.tc_nodeport_ingress, in, len, &r), "run syn"))
		goto out;
	len = build(in, &synack);
	if (!ASSERT_OK(run_prog(s->progs.tc_nodeport_egress, in, len, &r), "run synack"))
		goto out;
	ASSERT_EQ(r.retval, TC_ACT_OK, "egress verdict");
	expect_rewrite(in, len, r.out, r.out_len, &rw, "reverse NAT bytes");

	/* Egress traffic without a CT entry is untouched. */
	synack.sport = 8081;
	len = build(in, &synack);
	if (!ASSERT_OK(run_prog(s->progs.tc_nodeport_egress, in, len, &r), "run other"))
		goto out;
	ASSERT_EQ(r.retval, TC_ACT_OK, "other egress verdict");
	ASSERT_TRUE(r.out_len == len && !memcmp(r.out, in, len), "other egress untouched");
out:
	tc_nodeport__destroy(s);
}

/* LoadBalancer IP to a backend on another node: DNAT + SNAT to the node
 * address with a port from the range, FIB redirect with the neighbour's MAC;
 * the backend's reply is translated back and sent to the client. */
TEST(lb_remote_backend_snat_and_reply)
{
	struct tc_nodeport *s = NULL;
	struct spec sp = {.proto = IPPROTO_TCP,
			  .src = CLIENT,
			  .dst = LB_VIP,
			  .sport = 40000,
			  .dport = 80,
			  .tcp_flags = 0x02,
			  .seq = 77};
	struct rewrite rw = {
		.src = NODE, .dst = REMOTE_BE, .dport = 8080, .smac = mac_node, .dmac = mac_remote};
	struct sl_nat4_key nk = {0};
	struct sl_nat4_val nv;
	struct sl_ct4_val v;
	uint8_t in[256];
	uint16_t port, port2;
	struct run r;
	size_t len;

	LOAD_OR_OUT(s);
	if (!ASSERT_OK(put_node(s, 61000, 61001), "two-port NAT range") ||
	    !ASSERT_OK(put_backend(s, 2, REMOTE_BE, 8080, IPPROTO_TCP, 2, SL_BE_ACTIVE), "be") ||
	    !ASSERT_OK(put_slot(s, 10, 2), "slot") ||
	    !ASSERT_OK(put_svc(s, LB_VIP, 80, IPPROTO_TCP, SL_SVC_F_LOADBALANCER, 9, 10, 1), "svc"))
		goto out;
	len = build(in, &sp);
	if (!ASSERT_OK(run_prog(s->progs.tc_nodeport_ingress, in, len, &r), "run"))
		goto out;
	ASSERT_EQ(r.retval, TC_ACT_REDIRECT, "verdict: redirect to the backend's node");
	port = rd16(r.out, ETH + 20);
	ASSERT_TRUE(port == 61000 || port == 61001, "SNAT port in range");
	rw.sport = port;
	expect_rewrite(in, len, r.out, r.out_len, &rw, "DNAT+SNAT bytes");

	if (!ASSERT_OK(ct_get(s, IPPROTO_TCP, CLIENT, LB_VIP, 40000, 80, SL_CT_DIR_FWD, &v),
		       "FWD CT"))
		goto out;
	ASSERT_TRUE(v.flags & SL_CT_F_SNAT, "ct SNAT flag");
	ASSERT_EQ(v.nat_addr, ip4(NODE), "ct nat addr");
	ASSERT_EQ(v.nat_port, htons(port), "ct nat port");
	nk.nat_addr = ip4(NODE);
	nk.peer_addr = ip4(REMOTE_BE);
	nk.nat_port = htons(port);
	nk.peer_port = htons(8080);
	nk.proto = IPPROTO_TCP;
	if (ASSERT_OK(bpf_map_lookup_elem(map_fd(s->maps.sl_nat4_v1), &nk, &nv), "nat4 entry")) {
		ASSERT_EQ(nv.orig_addr, ip4(CLIENT), "nat orig addr");
		ASSERT_EQ(nv.orig_port, htons(40000), "nat orig port");
		ASSERT_EQ(nv.fe_addr, ip4(LB_VIP), "nat frontend");
	}

	/* Reply from the backend to node:port arrives on the uplink. */
	{
		struct spec rp = {.proto = IPPROTO_TCP,
				  .src = REMOTE_BE,
				  .dst = NODE,
				  .sport = 8080,
				  .dport = port,
				  .tcp_flags = 0x12,
				  .seq = 9,
				  .ack = 78,
				  .smac = mac_remote,
				  .dmac = mac_node};
		struct rewrite rrw = {.src = LB_VIP,
				      .sport = 80,
				      .dst = CLIENT,
				      .dport = 40000,
				      .smac = mac_node,
				      .dmac = mac_client};

		len = build(in, &rp);
		if (!ASSERT_OK(run_prog(s->progs.tc_nodeport_ingress, in, len, &r), "run reply"))
			goto out;
		ASSERT_EQ(r.retval, TC_ACT_REDIRECT, "reply verdict: redirect to client");
		expect_rewrite(in, len, r.out, r.out_len, &rrw, "reply bytes");
	}

	/* A second client flow takes the other port of the two. */
	sp.sport = 40001;
	len = build(in, &sp);
	if (!ASSERT_OK(run_prog(s->progs.tc_nodeport_ingress, in, len, &r), "run 2"))
		goto out;
	ASSERT_EQ(r.retval, TC_ACT_REDIRECT, "second flow verdict");
	port2 = rd16(r.out, ETH + 20);
	ASSERT_TRUE(port2 != port && (port2 == 61000 || port2 == 61001), "second flow, other port");

	/* Range exhausted: the third flow is dropped and counted. */
	sp.sport = 40002;
	len = build(in, &sp);
	if (!ASSERT_OK(run_prog(s->progs.tc_nodeport_ingress, in, len, &r), "run 3"))
		goto out;
	ASSERT_EQ(r.retval, TC_ACT_SHOT, "exhausted range drops");
	ASSERT_EQ(counter(s, SL_R_NAT_FAIL), 1, "NAT_FAIL counted");
	ASSERT_EQ(counter(s, SL_R_OK), 3, "OK counted for 2 flows + 1 reply");

	/* The established first flow still translates with its port. */
	sp.sport = 40000;
	sp.tcp_flags = 0x10;
	len = build(in, &sp);
	if (!ASSERT_OK(run_prog(s->progs.tc_nodeport_ingress, in, len, &r), "run est"))
		goto out;
	ASSERT_EQ(r.retval, TC_ACT_REDIRECT, "established verdict");
	ASSERT_EQ(rd16(r.out, ETH + 20), port, "established flow keeps its SNAT port");
out:
	tc_nodeport__destroy(s);
}

/* UDP to an externalIP, local backend; the zero UDP checksum case stays zero. */
TEST(externalip_udp_dnat)
{
	struct tc_nodeport *s = NULL;
	struct spec sp = {.proto = IPPROTO_UDP,
			  .src = CLIENT,
			  .dst = EXT_IP,
			  .sport = 5353,
			  .dport = 53,
			  .payload = 29};
	struct rewrite rw = {.dst = LOCAL_BE, .dport = 5300};
	struct spec rp = {.proto = IPPROTO_UDP,
			  .src = LOCAL_BE,
			  .dst = CLIENT,
			  .sport = 5300,
			  .dport = 5353,
			  .payload = 40,
			  .smac = mac_node,
			  .dmac = mac_client};
	struct rewrite rrw = {.src = EXT_IP, .sport = 53};
	uint8_t in[256];
	struct run r;
	size_t len;

	LOAD_OR_OUT(s);
	if (!ASSERT_OK(put_backend(s, 3, LOCAL_BE, 5300, IPPROTO_UDP, 0, SL_BE_ACTIVE), "be") ||
	    !ASSERT_OK(put_slot(s, 20, 3), "slot") ||
	    !ASSERT_OK(put_svc(s, EXT_IP, 53, IPPROTO_UDP, SL_SVC_F_EXTERNALIP, 11, 20, 1), "svc"))
		goto out;
	len = build(in, &sp);
	if (!ASSERT_OK(run_prog(s->progs.tc_nodeport_ingress, in, len, &r), "run"))
		goto out;
	ASSERT_EQ(r.retval, TC_ACT_OK, "verdict");
	expect_rewrite(in, len, r.out, r.out_len, &rw, "UDP DNAT bytes");
	ASSERT_NEQ(rd16(r.out, ETH + 20 + 6), 0, "checksum present");

	len = build(in, &rp);
	if (!ASSERT_OK(run_prog(s->progs.tc_nodeport_egress, in, len, &r), "run reply"))
		goto out;
	expect_rewrite(in, len, r.out, r.out_len, &rrw, "UDP reverse NAT bytes");

	sp.sport = 5354;
	sp.udp_no_csum = true;
	len = build(in, &sp);
	if (!ASSERT_OK(run_prog(s->progs.tc_nodeport_ingress, in, len, &r), "run no-csum"))
		goto out;
	expect_rewrite(in, len, r.out, r.out_len, &rw, "UDP zero checksum bytes");
	ASSERT_EQ(rd16(r.out, ETH + 20 + 6), 0, "zero UDP checksum stays zero");
out:
	tc_nodeport__destroy(s);
}

/* SCTP NodePort: ports rewritten and CRC32c recomputed (checked bitwise here),
 * both directions, at two sizes including the 1480-byte limit; one past it is refused. */
TEST(nodeport_sctp_crc32c)
{
	struct tc_nodeport *s = NULL;
	struct spec sp = {.proto = IPPROTO_SCTP,
			  .src = CLIENT,
			  .dst = NODE,
			  .sport = 3868,
			  .dport = 31000,
			  .payload = 100};
	struct rewrite rw = {.dst = LOCAL_BE, .dport = 3868};
	struct spec rp = {.proto = IPPROTO_SCTP,
			  .src = LOCAL_BE,
			  .dst = CLIENT,
			  .sport = 3868,
			  .dport = 3868,
			  .payload = 37,
			  .smac = mac_node,
			  .dmac = mac_client};
	struct rewrite rrw = {.src = NODE, .sport = 31000};
	uint8_t in[1600];
	struct run r;
	size_t len;

	LOAD_OR_OUT(s);
	if (!ASSERT_OK(put_backend(s, 4, LOCAL_BE, 3868, IPPROTO_SCTP, 0, SL_BE_ACTIVE), "be") ||
	    !ASSERT_OK(put_slot(s, 30, 4), "slot") ||
	    !ASSERT_OK(put_svc(s, NULL, 31000, IPPROTO_SCTP, SL_SVC_F_NODEPORT, 12, 30, 1), "svc"))
		goto out;
	len = build(in, &sp);
	if (!ASSERT_OK(run_prog(s->progs.tc_nodeport_ingress, in, len, &r), "run"))
		goto out;
	ASSERT_EQ(r.retval, TC_ACT_OK, "verdict");
	expect_rewrite(in, len, r.out, r.out_len, &rw, "SCTP DNAT bytes");

	len = build(in, &rp);
	if (!ASSERT_OK(run_prog(s->progs.tc_nodeport_egress, in, len, &r), "run reply"))
		goto out;
	expect_rewrite(in, len, r.out, r.out_len, &rrw, "SCTP reverse NAT bytes");

	/* Largest supported: 1480 bytes of SCTP (28 header+chunk + 1452 payload). */
	sp.sport = 3869;
	sp.payload = SL_SCTP_CRC_MAX - 28;
	len = build(in, &sp);
	if (!ASSERT_OK(run_prog(s->progs.tc_nodeport_ingress, in, len, &r), "run max"))
		goto out;
	ASSERT_EQ(r.retval, TC_ACT_OK, "max-size verdict");
	expect_rewrite(in, len, r.out, r.out_len, &rw, "SCTP max-size bytes");

	sp.sport = 3870;
	sp.payload = SL_SCTP_CRC_MAX - 28 + 4;
	len = build(in, &sp);
	if (!ASSERT_OK(run_prog(s->progs.tc_nodeport_ingress, in, len, &r), "run too big"))
		goto out;
	ASSERT_EQ(r.retval, TC_ACT_SHOT, "over the limit: refused, not forwarded with a bad CRC");
	ASSERT_EQ(counter(s, SL_R_TOO_BIG), 1, "TOO_BIG counted");
out:
	tc_nodeport__destroy(s);
}

/* No endpoints, TCP: the SYN becomes a RST|ACK sent back out the same interface. */
TEST(no_endpoints_tcp_rst)
{
	struct tc_nodeport *s = NULL;
	struct spec sp = {.proto = IPPROTO_TCP,
			  .src = CLIENT,
			  .dst = NODE,
			  .sport = 40000,
			  .dport = 30090,
			  .tcp_flags = 0x02,
			  .seq = 0x11223344};
	uint8_t in[256];
	struct run r;
	size_t len;

	LOAD_OR_OUT(s);
	if (!ASSERT_OK(put_svc(s, NULL, 30090, IPPROTO_TCP, SL_SVC_F_NODEPORT, 13, 0, 0), "svc"))
		goto out;
	len = build(in, &sp);
	if (!ASSERT_OK(run_prog(s->progs.tc_nodeport_ingress, in, len, &r), "run"))
		goto out;
	ASSERT_EQ(r.retval, TC_ACT_REDIRECT, "verdict: RST sent back");
	if (!ASSERT_EQ(r.out_len, ETH + 40, "RST length"))
		goto out;
	ASSERT_TRUE(!memcmp(r.out, mac_client, 6) && !memcmp(r.out + 6, mac_node, 6),
		    "MACs swapped");
	ASSERT_EQ(rd32(r.out, ETH + 12), ip4(NODE), "RST from the frontend");
	ASSERT_EQ(rd32(r.out, ETH + 16), ip4(CLIENT), "RST to the client");
	ASSERT_EQ(r.out[ETH + 9], IPPROTO_TCP, "proto");
	ASSERT_EQ(rd16(r.out, ETH + 2), 40, "IP total length");
	ASSERT_EQ(rd16(r.out, ETH + 20), 30090, "sport");
	ASSERT_EQ(rd16(r.out, ETH + 22), 40000, "dport");
	ASSERT_EQ(ntohl(rd32(r.out, ETH + 24)), 0, "seq 0 (SYN had no ACK)");
	ASSERT_EQ(ntohl(rd32(r.out, ETH + 28)), 0x11223345, "ack = SYN seq + 1");
	ASSERT_EQ(r.out[ETH + 33], 0x14, "flags RST|ACK");
	csums_ok(r.out, r.out_len);
	ASSERT_EQ(counter(s, SL_R_REJECTED), 1, "REJECTED counted");
	ASSERT_EQ(counter(s, SL_R_NO_BACKEND), 1, "NO_BACKEND counted");

	/* A segment with ACK gets seq = its ack and RST alone. */
	sp.tcp_flags = 0x10;
	sp.ack = 0xabcdef01;
	sp.payload = 10;
	len = build(in, &sp);
	if (!ASSERT_OK(run_prog(s->progs.tc_nodeport_ingress, in, len, &r), "run ack"))
		goto out;
	ASSERT_EQ(r.retval, TC_ACT_REDIRECT, "verdict ack");
	ASSERT_EQ(ntohl(rd32(r.out, ETH + 24)), 0xabcdef01, "seq = SEG.ACK");
	ASSERT_EQ(r.out[ETH + 33], 0x04, "flags RST");
	csums_ok(r.out, r.out_len);

	/* Never answer a RST. */
	sp.tcp_flags = 0x04;
	len = build(in, &sp);
	if (!ASSERT_OK(run_prog(s->progs.tc_nodeport_ingress, in, len, &r), "run rst"))
		goto out;
	ASSERT_EQ(r.retval, TC_ACT_SHOT, "RST is dropped silently");
out:
	tc_nodeport__destroy(s);
}

/* No endpoints, UDP: ICMP port unreachable quoting the original header. */
TEST(no_endpoints_udp_icmp_unreachable)
{
	struct tc_nodeport *s = NULL;
	struct spec sp = {.proto = IPPROTO_UDP,
			  .src = CLIENT,
			  .dst = LB_VIP,
			  .sport = 5000,
			  .dport = 53,
			  .payload = 100};
	uint8_t in[256];
	struct run r;
	size_t len;

	LOAD_OR_OUT(s);
	if (!ASSERT_OK(put_svc(s, LB_VIP, 53, IPPROTO_UDP, SL_SVC_F_LOADBALANCER, 14, 0, 0), "svc"))
		goto out;
	len = build(in, &sp);
	if (!ASSERT_OK(run_prog(s->progs.tc_nodeport_ingress, in, len, &r), "run"))
		goto out;
	ASSERT_EQ(r.retval, TC_ACT_REDIRECT, "verdict: ICMP sent back");
	if (!ASSERT_EQ(r.out_len, ETH + 20 + 8 + 28, "ICMP length"))
		goto out;
	ASSERT_TRUE(!memcmp(r.out, mac_client, 6) && !memcmp(r.out + 6, mac_node, 6),
		    "MACs swapped");
	ASSERT_EQ(r.out[ETH + 9], IPPROTO_ICMP, "proto ICMP");
	ASSERT_EQ(rd32(r.out, ETH + 12), ip4(LB_VIP), "from the frontend");
	ASSERT_EQ(rd32(r.out, ETH + 16), ip4(CLIENT), "to the client");
	ASSERT_EQ(r.out[ETH + 20], 3, "type dest unreachable");
	ASSERT_EQ(r.out[ETH + 21], 3, "code port unreachable");
	ASSERT_TRUE(!memcmp(r.out + ETH + 28, in + ETH, 28), "quotes IP header + 8 bytes");
	csums_ok(r.out, r.out_len);
	ASSERT_EQ(counter(s, SL_R_REJECTED), 1, "REJECTED counted");
out:
	tc_nodeport__destroy(s);
}

/* A flow keeps its backend when the slot block is replaced (scale-down keeps
 * existing connections); new flows use the new block; a GONE backend is re-picked. */
TEST(existing_flow_keeps_backend_across_slot_change)
{
	struct tc_nodeport *s = NULL;
	struct spec sp = {.proto = IPPROTO_TCP,
			  .src = CLIENT,
			  .dst = NODE,
			  .sport = 40000,
			  .dport = 30080,
			  .tcp_flags = 0x02};
	uint32_t first, other, a = ip4(LOCAL_BE), b = ip4(LOCAL_BE2);
	uint8_t in[256];
	struct run r;
	size_t len;

	LOAD_OR_OUT(s);
	if (!ASSERT_OK(put_backend(s, 1, LOCAL_BE, 8080, IPPROTO_TCP, 0, SL_BE_ACTIVE), "be1") ||
	    !ASSERT_OK(put_backend(s, 5, LOCAL_BE2, 8080, IPPROTO_TCP, 0, SL_BE_ACTIVE), "be5") ||
	    !ASSERT_OK(put_slot(s, 0, 1), "slot0") || !ASSERT_OK(put_slot(s, 1, 5), "slot1") ||
	    !ASSERT_OK(put_svc(s, NULL, 30080, IPPROTO_TCP, SL_SVC_F_NODEPORT, 7, 0, 2), "svc"))
		goto out;
	len = build(in, &sp);
	if (!ASSERT_OK(run_prog(s->progs.tc_nodeport_ingress, in, len, &r), "run 1"))
		goto out;
	first = rd32(r.out, ETH + 16);
	if (!ASSERT_TRUE(first == a || first == b, "picked one of the two"))
		goto out;
	other = first == a ? b : a;

	/* New block at 100 holding only the other backend, flipped in one update. */
	if (!ASSERT_OK(put_slot(s, 100, first == a ? 5 : 1), "new block") ||
	    !ASSERT_OK(put_svc(s, NULL, 30080, IPPROTO_TCP, SL_SVC_F_NODEPORT, 7, 100, 1), "flip"))
		goto out;
	sp.tcp_flags = 0x10;
	len = build(in, &sp);
	if (!ASSERT_OK(run_prog(s->progs.tc_nodeport_ingress, in, len, &r), "run 2"))
		goto out;
	ASSERT_EQ(rd32(r.out, ETH + 16), first, "existing flow keeps its backend");

	sp.sport = 40100;
	sp.tcp_flags = 0x02;
	len = build(in, &sp);
	if (!ASSERT_OK(run_prog(s->progs.tc_nodeport_ingress, in, len, &r), "run 3"))
		goto out;
	ASSERT_EQ(rd32(r.out, ETH + 16), other, "new flow uses the new block");

	/* The first backend is removed: its flow moves to a live backend. */
	if (!ASSERT_OK(put_backend(s, first == a ? 1 : 5, first == a ? LOCAL_BE : LOCAL_BE2, 8080,
				   IPPROTO_TCP, 0, SL_BE_GONE),
		       "mark gone"))
		goto out;
	sp.sport = 40000;
	sp.tcp_flags = 0x10;
	len = build(in, &sp);
	if (!ASSERT_OK(run_prog(s->progs.tc_nodeport_ingress, in, len, &r), "run 4"))
		goto out;
	ASSERT_EQ(rd32(r.out, ETH + 16), other, "flow of a GONE backend is re-balanced");
	ASSERT_TRUE(csums_ok(r.out, r.out_len), "checksums after re-pick");
out:
	tc_nodeport__destroy(s);
}

/* Traffic that is not for a N-S frontend passes byte for byte. */
TEST(non_service_traffic_passes_untouched)
{
	struct tc_nodeport *s = NULL;
	struct spec cases[] = {
		{.proto = IPPROTO_TCP,
		 .src = CLIENT,
		 .dst = NODE,
		 .sport = 4000,
		 .dport = 22,
		 .tcp_flags = 0x02},
		{.proto = IPPROTO_UDP,
		 .src = CLIENT,
		 .dst = "198.18.9.9",
		 .sport = 4000,
		 .dport = 30080},
		/* ClusterIP frontend is not reachable N-S. */
		{.proto = IPPROTO_TCP,
		 .src = CLIENT,
		 .dst = "198.18.7.7",
		 .sport = 4000,
		 .dport = 80,
		 .tcp_flags = 0x02},
		/* NodePort port on a non-local address: not a NodePort hit. */
		{.proto = IPPROTO_TCP,
		 .src = CLIENT,
		 .dst = "198.18.9.9",
		 .sport = 4000,
		 .dport = 30080,
		 .tcp_flags = 0x02},
	};
	uint8_t in[256];
	struct run r;
	size_t len;

	LOAD_OR_OUT(s);
	if (!ASSERT_OK(put_backend(s, 1, LOCAL_BE, 8080, IPPROTO_TCP, 0, SL_BE_ACTIVE), "be") ||
	    !ASSERT_OK(put_slot(s, 0, 1), "slot") ||
	    !ASSERT_OK(put_svc(s, NULL, 30080, IPPROTO_TCP, SL_SVC_F_NODEPORT, 7, 0, 1), "np") ||
	    !ASSERT_OK(put_svc(s, "198.18.7.7", 80, IPPROTO_TCP, SL_SVC_F_CLUSTERIP, 8, 0, 1),
		       "cip"))
		goto out;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		len = build(in, &cases[i]);
		if (!ASSERT_OK(run_prog(s->progs.tc_nodeport_ingress, in, len, &r), "run"))
			goto out;
		ASSERT_EQ(r.retval, TC_ACT_OK, "verdict");
		if (!ASSERT_TRUE(r.out_len == len && !memcmp(r.out, in, len), "untouched"))
			fprintf(stderr, "  case %zu\n", i);
	}
	/* ARP and IPv6 frames. */
	memset(in, 0, 64);
	in[12] = 0x08;
	in[13] = 0x06;
	if (ASSERT_OK(run_prog(s->progs.tc_nodeport_ingress, in, 60, &r), "run arp"))
		ASSERT_EQ(r.retval, TC_ACT_OK, "arp passes");
	in[12] = 0x86;
	in[13] = 0xdd;
	if (ASSERT_OK(run_prog(s->progs.tc_nodeport_ingress, in, 60, &r), "run v6"))
		ASSERT_EQ(r.retval, TC_ACT_OK, "ipv6 passes");
	ASSERT_EQ(counter(s, SL_R_OK), 0, "nothing translated");
	ASSERT_EQ(counter(s, SL_R_MALFORMED), 0, "nothing malformed");
out:
	tc_nodeport__destroy(s);
}

/* Truncated and bogus headers, fragments: pass untouched with a reason, never crash. */
/* sl_hr_npc_v1 (lib/sl_hr_maps.h): raised when a REPLY entry is made for a client in a podCIDR
 * (a NodePort connection from a pod to a local backend), and only then: a client outside the
 * podCIDRs and a remote backend (SNAT: its replies come back through the ingress) leave it. */
static uint64_t npc_get(struct tc_nodeport *s)
{
	struct sl_hr_npc m = {0};
	uint32_t zero = 0;

	if (bpf_map_lookup_elem(map_fd(s->maps.sl_hr_npc_v1), &zero, &m))
		return UINT64_MAX;
	return m.pod_client_flows;
}

TEST(nodeport_pod_client_raises_npc_mark)
{
	struct tc_nodeport *s = NULL;
	struct spec sp = {.proto = IPPROTO_TCP,
			  .src = CLIENT,
			  .dst = NODE,
			  .sport = 41000,
			  .dport = 30080,
			  .tcp_flags = 0x02};
	struct sl_hr_cidr_key ck = {.prefixlen = 18, .addr = ip4("198.18.64.0")};
	struct sl_ct4_val v;
	uint8_t in[256], one = 1;
	struct run r;
	size_t len;

	LOAD_OR_OUT(s);
	if (!ASSERT_OK(put_backend(s, 1, LOCAL_BE, 8080, IPPROTO_TCP, 0, SL_BE_ACTIVE), "be") ||
	    !ASSERT_OK(put_slot(s, 0, 1), "slot") ||
	    !ASSERT_OK(put_svc(s, NULL, 30080, IPPROTO_TCP, SL_SVC_F_NODEPORT, 7, 0, 1), "svc") ||
	    !ASSERT_OK(bpf_map_update_elem(map_fd(s->maps.sl_hr_cidr_v1), &ck, &one, 0),
		       "podCIDRs"))
		goto out;
	ASSERT_EQ(npc_get(s), 0, "mark clear after load");

	len = build(in, &sp);
	if (!ASSERT_OK(run_prog(s->progs.tc_nodeport_ingress, in, len, &r), "run, outside client"))
		goto out;
	ASSERT_EQ(r.retval, TC_ACT_OK, "outside client: DNAT into the stack");
	ASSERT_EQ(npc_get(s), 0, "a client outside the podCIDRs leaves the mark");

	sp.src = "198.18.66.10";
	len = build(in, &sp);
	if (!ASSERT_OK(run_prog(s->progs.tc_nodeport_ingress, in, len, &r), "run, pod client"))
		goto out;
	ASSERT_EQ(r.retval, TC_ACT_OK, "pod client: DNAT into the stack");
	ASSERT_OK(
		ct_get(s, IPPROTO_TCP, LOCAL_BE, "198.18.66.10", 8080, 41000, SL_CT_DIR_REPLY, &v),
		"REPLY entry for the pod client");
	ASSERT_EQ(npc_get(s), 1, "mark raised with it");

	/* The same flow's next packet is a CT hit: no second count. */
	sp.tcp_flags = 0x10;
	len = build(in, &sp);
	if (!ASSERT_OK(run_prog(s->progs.tc_nodeport_ingress, in, len, &r), "run, ACK"))
		goto out;
	ASSERT_EQ(npc_get(s), 1, "an established flow does not count again");
out:
	tc_nodeport__destroy(s);
}

TEST(malformed_packets_pass_with_reason)
{
	struct tc_nodeport *s = NULL;
	struct spec sp = {.proto = IPPROTO_TCP,
			  .src = CLIENT,
			  .dst = NODE,
			  .sport = 40000,
			  .dport = 30080,
			  .tcp_flags = 0x02};
	uint8_t in[256], pkt[256];
	struct run r;
	size_t len;
	uint64_t mal = 0;

	LOAD_OR_OUT(s);
	if (!ASSERT_OK(put_backend(s, 1, LOCAL_BE, 8080, IPPROTO_TCP, 0, SL_BE_ACTIVE), "be") ||
	    !ASSERT_OK(put_slot(s, 0, 1), "slot") ||
	    !ASSERT_OK(put_svc(s, NULL, 30080, IPPROTO_TCP, SL_SVC_F_NODEPORT, 7, 0, 1), "svc"))
		goto out;
	len = build(pkt, &sp);

	/* Every truncation of a valid SYN (test_run itself refuses IPv4 frames
	 * shorter than a bare IPv4 header, so start there). */
	for (size_t cut = ETH + 20; cut < len; cut++) {
		memcpy(in, pkt, cut);
		if (!ASSERT_OK(run_prog(s->progs.tc_nodeport_ingress, in, cut, &r), "run cut") &&
		    fprintf(stderr, "  cut %zu\n", cut))
			goto out;
		if (!ASSERT_EQ(r.retval, TC_ACT_OK, "truncated passes") ||
		    !ASSERT_TRUE(r.out_len == cut && !memcmp(r.out, in, cut), "untouched"))
			goto out;
		mal++;
	}
	ASSERT_EQ(counter(s, SL_R_MALFORMED), mal, "each truncation counted MALFORMED");

	memcpy(in, pkt, len);
	in[ETH] = 0x44; /* IHL 4 */
	run_prog(s->progs.tc_nodeport_ingress, in, len, &r);
	ASSERT_EQ(r.retval, TC_ACT_OK, "IHL<5 passes");
	memcpy(in, pkt, len);
	in[ETH + 2] = 0x05; /* total length past the end */
	run_prog(s->progs.tc_nodeport_ingress, in, len, &r);
	ASSERT_EQ(r.retval, TC_ACT_OK, "long tot_len passes");
	memcpy(in, pkt, len);
	in[ETH + 20 + 12] = 0x40; /* TCP doff 4 */
	run_prog(s->progs.tc_nodeport_ingress, in, len, &r);
	ASSERT_EQ(r.retval, TC_ACT_OK, "doff<5 passes");
	ASSERT_EQ(counter(s, SL_R_MALFORMED), mal + 3, "bogus headers counted");

	memcpy(in, pkt, len);
	in[ETH + 6] = 0x20; /* MF: first fragment */
	run_prog(s->progs.tc_nodeport_ingress, in, len, &r);
	ASSERT_TRUE(r.retval == TC_ACT_OK && !memcmp(r.out, in, len), "fragment passes untouched");
	ASSERT_EQ(counter(s, SL_R_UNSUPPORTED), 1, "fragment counted UNSUPPORTED");
	ASSERT_EQ(counter(s, SL_R_OK), 0, "nothing translated");

	/* Egress must not choke on the same garbage either. */
	in[ETH] = 0x4f;
	ASSERT_OK(run_prog(s->progs.tc_nodeport_egress, in, 40, &r), "egress run");
	ASSERT_EQ(r.retval, TC_ACT_OK, "egress passes garbage");
out:
	tc_nodeport__destroy(s);
}

/* Two "nodes" (two loaded program instances) list the same backends in a
 * different order with different backend ids; Maglev tables built
 * independently by each make every flow pick the same backend address. */
TEST(maglev_same_backend_on_two_nodes)
{
	static const char *addrs[] = {"198.19.1.1", "198.19.1.2", "198.19.1.3", "198.19.1.4",
				      "198.19.1.5"};
	enum { NBE = 5, NFLOW = 300 };
	struct tc_nodeport *node[2] = {NULL, NULL};
	uint32_t *table = calloc(SL_MAGLEV_M, sizeof(*table));
	uint32_t picked[NFLOW], seen = 0;
	char names[NBE][32];

	if (!ASSERT_NOT_NULL(table, "alloc"))
		goto out;
	for (int n = 0; n < 2; n++) {
		struct maglev_backend mb[NBE];

		node[n] = np_load();
		if (!ASSERT_NOT_NULL(node[n], "load node") ||
		    !ASSERT_OK(put_node(node[n], 0, 0), "node cfg"))
			goto out;
		for (int i = 0; i < NBE; i++) {
			int j = n == 0 ? i : NBE - 1 - i; /* node 1 lists them reversed */
			uint32_t id = n == 0 ? 10 + (uint32_t)i : 200 + (uint32_t)i * 3;

			snprintf(names[j], sizeof(names[j]), "%s:8080/TCP", addrs[j]);
			mb[i].name = names[j];
			mb[i].id = id;
			mb[i].weight = 1;
			if (!ASSERT_OK(put_backend(node[n], id, addrs[j], 8080, IPPROTO_TCP, 0,
						   SL_BE_ACTIVE),
				       "backend"))
				goto out;
		}
		if (!ASSERT_OK(maglev_table_build(mb, NBE, SL_MAGLEV_M, table), "maglev build"))
			goto out;
		/* Table 1 of the map (maglev_base = M) to exercise the base offset. */
		for (uint32_t i = 0; i < SL_MAGLEV_M; i++) {
			uint32_t idx = SL_MAGLEV_M + i;

			if (bpf_map_update_elem(map_fd(node[n]->maps.sl_maglev_v1), &idx, &table[i],
						0)) {
				ASSERT_OK(-errno, "maglev fill");
				goto out;
			}
		}
		{
			struct sl_svc_key k = {.addr = ip4(LB_VIP),
					       .port = htons(443),
					       .proto = IPPROTO_TCP,
					       .scope = SL_SCOPE_EXT};
			struct sl_svc_val v = {.svc_id = 21,
					       .count = NBE,
					       .flags = SL_SVC_F_LOADBALANCER | SL_SVC_F_MAGLEV,
					       .maglev_base = SL_MAGLEV_M};

			if (!ASSERT_OK(bpf_map_update_elem(map_fd(node[n]->maps.sl_svc4_v1), &k, &v,
							   0),
				       "svc"))
				goto out;
		}
	}
	for (int f = 0; f < NFLOW; f++) {
		struct spec sp = {.proto = IPPROTO_TCP,
				  .dst = LB_VIP,
				  .sport = (uint16_t)(20000 + f),
				  .dport = 443,
				  .tcp_flags = 0x02};
		char src[32];
		struct run r;
		uint8_t in[128];
		size_t len;

		snprintf(src, sizeof(src), "198.18.%d.%d", 100 + f % 50, 1 + f % 200);
		sp.src = src;
		len = build(in, &sp);
		for (int n = 0; n < 2; n++) {
			if (!ASSERT_OK(run_prog(node[n]->progs.tc_nodeport_ingress, in, len, &r),
				       "run"))
				goto out;
			if (!ASSERT_EQ(r.retval, TC_ACT_OK, "verdict") ||
			    !csums_ok(r.out, r.out_len))
				goto out;
			if (n == 0) {
				picked[f] = rd32(r.out, ETH + 16);
			} else if (!ASSERT_EQ(rd32(r.out, ETH + 16), picked[f],
					      "same backend on both nodes")) {
				goto out;
			}
		}
		/* Cross-check the program's choice with the hash computed here. */
		{
			uint32_t h = sl_hash_flow4(ip4(src), ip4(LB_VIP), htons(sp.sport),
						   htons(443), IPPROTO_TCP, 0x5eed);
			int j;

			for (j = 0; j < NBE; j++)
				if (picked[f] == ip4(addrs[j]))
					break;
			if (!ASSERT_TRUE(j < NBE, "picked a known backend"))
				goto out;
			seen |= 1u << j;
			/* table holds node 1's ids: 200 + 3*i where addrs index = NBE-1-i */
			ASSERT_EQ(table[h % SL_MAGLEV_M], 200 + 3 * (NBE - 1 - j),
				  "program used table[hash % M]");
		}
	}
	ASSERT_EQ(seen, (1u << NBE) - 1, "every backend received flows");
out:
	tc_nodeport__destroy(node[0]);
	tc_nodeport__destroy(node[1]);
	free(table);
}

/* sessionAffinity ClientIP: every new flow of one client address reaches the
 * same backend; once that backend leaves the service (svcbe4), it is re-picked. */
TEST(client_ip_affinity)
{
	struct tc_nodeport *s = NULL;
	struct spec sp = {.proto = IPPROTO_TCP,
			  .src = CLIENT,
			  .dst = LB_VIP,
			  .sport = 30000,
			  .dport = 8443,
			  .tcp_flags = 0x02};
	struct sl_svc_key k = {.addr = ip4(LB_VIP), .port = htons(8443), .proto = IPPROTO_TCP};
	struct sl_svc_val v = {.svc_id = 31,
			       .slot_base = 0,
			       .count = 2,
			       .affinity_s = 600,
			       .flags = SL_SVC_F_LOADBALANCER | SL_SVC_F_AFFINITY};
	struct sl_svc_be_key m1 = {31, 1}, m5 = {31, 5};
	uint32_t zero = 0, first, other, a = ip4(LOCAL_BE), b = ip4(LOCAL_BE2);
	uint8_t in[256];
	struct run r;
	size_t len;

	LOAD_OR_OUT(s);
	if (!ASSERT_OK(put_backend(s, 1, LOCAL_BE, 8080, IPPROTO_TCP, 0, SL_BE_ACTIVE), "be1") ||
	    !ASSERT_OK(put_backend(s, 5, LOCAL_BE2, 8080, IPPROTO_TCP, 0, SL_BE_ACTIVE), "be5") ||
	    !ASSERT_OK(put_slot(s, 0, 1), "slot0") || !ASSERT_OK(put_slot(s, 1, 5), "slot1") ||
	    !ASSERT_OK(bpf_map_update_elem(map_fd(s->maps.sl_svcbe4_v1), &m1, &zero, 0), "m1") ||
	    !ASSERT_OK(bpf_map_update_elem(map_fd(s->maps.sl_svcbe4_v1), &m5, &zero, 0), "m5") ||
	    !ASSERT_OK(bpf_map_update_elem(map_fd(s->maps.sl_svc4_v1), &k, &v, 0), "svc"))
		goto out;
	len = build(in, &sp);
	if (!ASSERT_OK(run_prog(s->progs.tc_nodeport_ingress, in, len, &r), "run"))
		goto out;
	first = rd32(r.out, ETH + 16);
	if (!ASSERT_TRUE(first == a || first == b, "picked one"))
		goto out;
	other = first == a ? b : a;
	/* 40 more flows from other ports: without affinity the hash would spread them. */
	for (int i = 1; i <= 40; i++) {
		sp.sport = (uint16_t)(30000 + i);
		len = build(in, &sp);
		if (!ASSERT_OK(run_prog(s->progs.tc_nodeport_ingress, in, len, &r), "run n") ||
		    !ASSERT_EQ(rd32(r.out, ETH + 16), first, "sticks to the first backend"))
			goto out;
	}
	/* The backend leaves the service: membership gone, block holds only the other. */
	if (!ASSERT_OK(bpf_map_delete_elem(map_fd(s->maps.sl_svcbe4_v1),
					   first == a ? (void *)&m1 : (void *)&m5),
		       "leave") ||
	    !ASSERT_OK(put_slot(s, 50, first == a ? 5 : 1), "new block"))
		goto out;
	v.slot_base = 50;
	v.count = 1;
	if (!ASSERT_OK(bpf_map_update_elem(map_fd(s->maps.sl_svc4_v1), &k, &v, 0), "flip"))
		goto out;
	sp.sport = 31000;
	len = build(in, &sp);
	if (!ASSERT_OK(run_prog(s->progs.tc_nodeport_ingress, in, len, &r), "run after"))
		goto out;
	ASSERT_EQ(rd32(r.out, ETH + 16), other, "affinity to a removed backend is dropped");
out:
	tc_nodeport__destroy(s);
}
