// SPDX-License-Identifier: Apache-2.0
/*
 * The nftables service dataplane (agent/proxier.h): what kube-proxy's nftables
 * proxier (kubernetes/kubernetes:pkg/proxy/nftables/proxier.go, KEP-3866)
 * programs, with the same table, chain, set and map names, the same hashed
 * per-service names and the same rules in the same order, rendered from the
 * node agent's model (agent/lbinc.h) and written through libnftnl + libmnl as
 * ONE nf_tables transaction per sync.
 *
 *   table ip kube-proxy  (comment "rules for kube-proxy")
 *     base chains  filter-{prerouting,input,forward,output} dstnat-10,
 *                  filter-output-post-dnat dstnat+10, nat-{prerouting,output}
 *                  dstnat, nat-postrouting srcnat; jumps as kube-proxy's
 *                  nftablesJumpChains (ct state new ... for the filter ones)
 *     services     ip daddr . meta l4proto . th dport vmap @service-ips
 *                  fib daddr type local ip daddr != 127.0.0.0/8
 *                      meta l4proto . th dport vmap @service-nodeports
 *     service-endpoints-check / nodeport-endpoints-check: vmaps
 *                  @no-endpoint-services / @no-endpoint-nodeports (drop, or
 *                  goto reject-chain)
 *     cluster-ips-check: ip daddr @cluster-ips reject (a ClusterIP on a port
 *                  it does not serve)
 *     firewall-check: vmap @firewall-ips (empty: loadBalancerSourceRanges are
 *                  not in the model yet)
 *     mark-for-masquerade / masquerading: mark 0x4000, masquerade fully-random
 *   per Service port ("ns/name/proto/portname", hashed as kube-proxy's
 *   hashAndTruncate: base32(sha256(name))[:8] + "-" + name):
 *     service-H-...  Cluster-policy endpoints: [masquerade rule for the
 *                    ClusterIP], [ip saddr @affinity-X goto endpoint-X ...],
 *                    numgen random mod N vmap { i : goto endpoint-i }
 *     local-H-...    the same over the node-local endpoints (Local policies)
 *     external-H-... NodePort / LB IP / local externalIP traffic: mark for
 *                    masquerade (eTP Cluster), or the eTP Local short circuit
 *                    (pod sources and fib saddr type local go to service-),
 *                    then goto the policy chain
 *     endpoint-H-...__ip/port: hairpin masquerade, [update @affinity-X
 *                    { ip saddr }], meta l4proto P dnat to ip:port
 *     affinity-H-...__ip/port: set ipv4_addr, dynamic + timeout (ClientIP)
 *
 * NodePorts are answered on every local address except 127/8 (kube-proxy
 * with --nodeport-addresses unset), so there is no nodeport-ips set; the
 * model already keeps only node-local externalIPs (model.h).
 *
 * Sync. A full sync (the first one, or when asked after a failure) is one
 * transaction that adds, deletes and re-creates the table with everything in
 * it, so whatever an earlier process left is replaced atomically. After that
 * a sync walks the fragments (one per Service) and re-renders only those whose
 * gen or ownership changed, or that went away, like kube-proxy's partial sync
 * (PR #126013): map elements are diffed against what this process wrote
 * (kube-proxy's nftElementStorage), the Service's chains are flushed and
 * refilled, chains and affinity sets it no longer uses are deleted in the
 * same transaction (kube-proxy defers the chain deletes by a second for
 * kernels before 6.2; the kernels we target release a chain's references
 * within the transaction). Every deletion comes before every addition in the
 * batch, so an element handed from one Service to another is deleted and
 * re-added in one commit. The whole batch is one sendmsg; the kernel's
 * replies are read until the ACK of the last message, and the first error is
 * reported with the message it failed (its type and object name, parsed back
 * from the batch).
 *
 * UDP: after a commit, conntrack entries of removed UDP endpoints are deleted
 * (`conntrack -D -p udp --orig-dst <frontend> --dst-nat <endpoint>`, by port
 * for NodePorts), and those of UDP frontends that had no endpoint before,
 * as kube-proxy's conntrack.CleanStaleEntries.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libmnl/libmnl.h>
#include <libnftnl/chain.h>
#include <libnftnl/common.h>
#include <libnftnl/expr.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>
#include <libnftnl/udata.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <linux/netfilter/nf_nat.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/rtnetlink.h>

#include "exec.h"
#include "lbinc.h"
#include "model.h"
#include "proxier.h"
#include "sluice/log.h"
#include "sluice/sha256.h"

#define NL "nftables"

#define KP_TABLE      "kube-proxy"
#define NAME_MAX_NFT  256 /* knftables.NameLengthMax */
#define KP_PREFIX_MAX 16  /* chainNamePrefixLengthMax */
#define BASE_MAX      (NAME_MAX_NFT - KP_PREFIX_MAX)

/* --- names ------------------------------------------------------------------------------ */

/* prefix + hashAndTruncate(name): base32(sha256(name))[:8] + "-" + name, cut to
 * BASE_MAX with "..." like kube-proxy. out holds NAME_MAX_NFT bytes. */
static void kp_name(char *out, const char *prefix, const char *name)
{
	static const char b32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
	uint8_t h[32];
	char base[BASE_MAX + 16];
	uint64_t v = 0;
	size_t n;

	sl_sha256(name, strlen(name), h);
	for (int i = 0; i < 5; i++)
		v = v << 8 | h[i]; /* 40 bits = 8 base32 characters */
	for (int i = 0; i < 8; i++)
		base[i] = b32[(v >> (35 - 5 * i)) & 31];
	base[8] = '-';
	n = strlen(name);
	if (9 + n > BASE_MAX) {
		memcpy(base + 9, name, BASE_MAX - 3 - 9);
		memcpy(base + BASE_MAX - 3, "...", 4);
	} else {
		memcpy(base + 9, name, n + 1);
	}
	snprintf(out, NAME_MAX_NFT, "%s%s", prefix, base);
}

static const char *proto_name(uint8_t p)
{
	return p == IPPROTO_UDP ? "udp" : p == IPPROTO_SCTP ? "sctp" : "tcp";
}

/* --- the batch -------------------------------------------------------------------------- */

#define MSG_ROOM      (96 * 1024) /* the largest single message we build, with slack */
#define ELEMS_PER_MSG 64	  /* elements per NEWSETELEM/DELSETELEM (< 64 * 600 bytes) */

struct batch {
	char *buf;
	size_t len, cap;
	uint32_t seq0, seq;
	uint32_t *off; /* offset of message seq0 + i */
	size_t n_off, cap_off;
	uint32_t set_id;
	size_t n_msgs; /* object messages (begin/end excluded) */
	bool oom;
};

static char *b_room(struct batch *b)
{
	if (b->oom)
		return NULL;
	if (b->cap - b->len < MSG_ROOM) {
		size_t nc = b->cap ? b->cap * 2 : 1 << 20;
		char *nb;

		while (nc - b->len < MSG_ROOM)
			nc *= 2;
		nb = realloc(b->buf, nc);
		if (!nb) {
			b->oom = true;
			return NULL;
		}
		memset(nb + b->cap, 0, nc - b->cap);
		b->buf = nb, b->cap = nc;
	}
	if (b->n_off == b->cap_off) {
		size_t nc = b->cap_off ? b->cap_off * 2 : 4096;
		uint32_t *no = realloc(b->off, nc * sizeof(*no));

		if (!no) {
			b->oom = true;
			return NULL;
		}
		b->off = no, b->cap_off = nc;
	}
	b->off[b->n_off++] = (uint32_t)b->len;
	return b->buf + b->len;
}

static struct nlmsghdr *b_hdr(struct batch *b, uint16_t type, uint16_t flags)
{
	char *p = b_room(b);

	if (!p)
		return NULL;
	b->n_msgs++;
	return nftnl_nlmsg_build_hdr(p, type, NFPROTO_IPV4, flags, b->seq++);
}

static void b_end(struct batch *b, struct nlmsghdr *nlh)
{
	b->len += NLMSG_ALIGN(nlh->nlmsg_len);
}

static void b_begin(struct batch *b)
{
	char *p;

	b->len = 0, b->n_off = 0, b->n_msgs = 0, b->oom = false, b->set_id = 0;
	b->seq0 = b->seq = (uint32_t)time(NULL) ^ ((uint32_t)getpid() << 16);
	p = b_room(b);
	if (p)
		b_end(b, nftnl_batch_begin(p, b->seq++));
}

static void b_fini(struct batch *b)
{
	free(b->buf);
	free(b->off);
	memset(b, 0, sizeof(*b));
}

/* userdata holding one comment (NUL included, as nft writes it) */
static void put_comment(void *obj, void (*set)(void *, uint16_t, const void *, uint32_t),
			uint16_t attr, uint8_t type, const char *comment)
{
	struct nftnl_udata_buf *u = nftnl_udata_buf_alloc(NFTNL_UDATA_COMMENT_MAXLEN + 16);

	if (!u)
		return;
	if (nftnl_udata_put_strz(u, type, comment))
		set(obj, attr, nftnl_udata_buf_data(u), nftnl_udata_buf_len(u));
	nftnl_udata_buf_free(u);
}

static void table_set(void *o, uint16_t a, const void *d, uint32_t l)
{
	nftnl_table_set_data(o, a, d, l);
}
static void chain_set(void *o, uint16_t a, const void *d, uint32_t l)
{
	nftnl_chain_set_data(o, a, d, l);
}
static void set_set(void *o, uint16_t a, const void *d, uint32_t l)
{
	nftnl_set_set_data(o, a, d, l);
}
static void rule_set(void *o, uint16_t a, const void *d, uint32_t l)
{
	nftnl_rule_set_data(o, a, d, l);
}
static void elem_set(void *o, uint16_t a, const void *d, uint32_t l)
{
	nftnl_set_elem_set(o, a, d, l);
}

static void msg_table(struct batch *b, uint16_t type)
{
	struct nftnl_table *t = nftnl_table_alloc();
	struct nlmsghdr *nlh;

	if (!t) {
		b->oom = true;
		return;
	}
	nftnl_table_set_str(t, NFTNL_TABLE_NAME, KP_TABLE);
	if (type == NFT_MSG_NEWTABLE)
		put_comment(t, table_set, NFTNL_TABLE_USERDATA, NFTNL_UDATA_TABLE_COMMENT,
			    "rules for kube-proxy");
	nlh = b_hdr(b, type, type == NFT_MSG_NEWTABLE ? NLM_F_CREATE : 0);
	if (nlh) {
		nftnl_table_nlmsg_build_payload(nlh, t);
		b_end(b, nlh);
	}
	nftnl_table_free(t);
}

struct basechain {
	const char *name, *type;
	int hook, prio;
};

/* kube-proxy's nftablesBaseChains: filtering before DNAT (dstnat-10). */
static const struct basechain base_chains[] = {
	{"filter-prerouting", "filter", NF_INET_PRE_ROUTING, -110},
	{"filter-input", "filter", NF_INET_LOCAL_IN, -110},
	{"filter-forward", "filter", NF_INET_FORWARD, -110},
	{"filter-output", "filter", NF_INET_LOCAL_OUT, -110},
	{"filter-output-post-dnat", "filter", NF_INET_LOCAL_OUT, -90},
	{"nat-prerouting", "nat", NF_INET_PRE_ROUTING, -100},
	{"nat-output", "nat", NF_INET_LOCAL_OUT, -100},
	{"nat-postrouting", "nat", NF_INET_POST_ROUTING, 100},
};

/* NEWCHAIN (bc: base chain), DELCHAIN, or DELRULE on the chain (flush). */
static void msg_chain(struct batch *b, uint16_t type, const char *name, const struct basechain *bc,
		      const char *comment)
{
	struct nlmsghdr *nlh;

	if (type == NFT_MSG_DELRULE) {
		struct nftnl_rule *r = nftnl_rule_alloc();

		if (!r) {
			b->oom = true;
			return;
		}
		nftnl_rule_set_str(r, NFTNL_RULE_TABLE, KP_TABLE);
		nftnl_rule_set_str(r, NFTNL_RULE_CHAIN, name);
		nlh = b_hdr(b, NFT_MSG_DELRULE, 0);
		if (nlh) {
			nftnl_rule_nlmsg_build_payload(nlh, r);
			b_end(b, nlh);
		}
		nftnl_rule_free(r);
		return;
	}
	struct nftnl_chain *c = nftnl_chain_alloc();

	if (!c) {
		b->oom = true;
		return;
	}
	nftnl_chain_set_str(c, NFTNL_CHAIN_TABLE, KP_TABLE);
	nftnl_chain_set_str(c, NFTNL_CHAIN_NAME, name);
	if (bc) {
		nftnl_chain_set_u32(c, NFTNL_CHAIN_HOOKNUM, (uint32_t)bc->hook);
		nftnl_chain_set_s32(c, NFTNL_CHAIN_PRIO, bc->prio);
		nftnl_chain_set_str(c, NFTNL_CHAIN_TYPE, bc->type);
		nftnl_chain_set_u32(c, NFTNL_CHAIN_POLICY, NF_ACCEPT);
	}
	if (comment)
		put_comment(c, chain_set, NFTNL_CHAIN_USERDATA, NFTNL_UDATA_CHAIN_COMMENT, comment);
	nlh = b_hdr(b, type, type == NFT_MSG_NEWCHAIN ? NLM_F_CREATE : 0);
	if (nlh) {
		nftnl_chain_nlmsg_build_payload(nlh, c);
		b_end(b, nlh);
	}
	nftnl_chain_free(c);
}

/* nft's datatype ids (concatenations: 6 bits per member) */
#define DT_INTEGER	 4
#define DT_IPV4		 7
#define DT_PROTO	 12
#define DT_SERVICE	 13
#define DT_IP_PROTO_PORT (DT_IPV4 << 12 | DT_PROTO << 6 | DT_SERVICE)
#define DT_PROTO_PORT	 (DT_PROTO << 6 | DT_SERVICE)

enum kmap {
	M_CLUSTER_IPS, /* set ipv4_addr */
	M_SERVICE_IPS,
	M_SERVICE_NODEPORTS,
	M_NOEP_SERVICES,
	M_NOEP_NODEPORTS,
	M_FIREWALL_IPS,
	M_N,
};

static const struct mapdef {
	const char *name, *comment;
	uint32_t key_type, key_len;
	bool vmap;
} maps[M_N] = {
	[M_CLUSTER_IPS] = {"cluster-ips", "Active ClusterIPs", DT_IPV4, 4, false},
	[M_SERVICE_IPS] = {"service-ips", "ClusterIP, ExternalIP and LoadBalancer IP traffic",
			   DT_IP_PROTO_PORT, 12, true},
	[M_SERVICE_NODEPORTS] = {"service-nodeports", "NodePort traffic", DT_PROTO_PORT, 8, true},
	[M_NOEP_SERVICES] = {"no-endpoint-services",
			     "vmap to drop or reject packets to services with no endpoints",
			     DT_IP_PROTO_PORT, 12, true},
	[M_NOEP_NODEPORTS] = {"no-endpoint-nodeports",
			      "vmap to drop or reject packets to service nodeports with no "
			      "endpoints",
			      DT_PROTO_PORT, 8, true},
	[M_FIREWALL_IPS] = {"firewall-ips",
			    "destinations that are subject to LoadBalancerSourceRanges",
			    DT_IP_PROTO_PORT, 12, true},
};

/* NEWSET / DELSET. timeout_s > 0: a dynamic timeout set (affinity). */
static void msg_set(struct batch *b, uint16_t type, const char *name, const struct mapdef *md,
		    uint32_t timeout_s)
{
	struct nftnl_set *s = nftnl_set_alloc();
	struct nlmsghdr *nlh;

	if (!s) {
		b->oom = true;
		return;
	}
	nftnl_set_set_str(s, NFTNL_SET_TABLE, KP_TABLE);
	nftnl_set_set_str(s, NFTNL_SET_NAME, name);
	nftnl_set_set_u32(s, NFTNL_SET_FAMILY, NFPROTO_IPV4);
	if (type == NFT_MSG_NEWSET) {
		uint32_t flags = 0;

		nftnl_set_set_u32(s, NFTNL_SET_KEY_TYPE, md ? md->key_type : DT_IPV4);
		nftnl_set_set_u32(s, NFTNL_SET_KEY_LEN, md ? md->key_len : 4);
		if (md && md->vmap) {
			flags |= NFT_SET_MAP;
			nftnl_set_set_u32(s, NFTNL_SET_DATA_TYPE, NFT_DATA_VERDICT);
			nftnl_set_set_u32(s, NFTNL_SET_DATA_LEN, sizeof(uint32_t));
		}
		if (timeout_s) {
			flags |= NFT_SET_TIMEOUT | NFT_SET_EVAL;
			nftnl_set_set_u64(s, NFTNL_SET_TIMEOUT, (uint64_t)timeout_s * 1000);
		}
		nftnl_set_set_u32(s, NFTNL_SET_FLAGS, flags);
		nftnl_set_set_u32(s, NFTNL_SET_ID, ++b->set_id);
		if (md && md->comment)
			put_comment(s, set_set, NFTNL_SET_USERDATA, NFTNL_UDATA_SET_COMMENT,
				    md->comment);
	}
	nlh = b_hdr(b, type, type == NFT_MSG_NEWSET ? NLM_F_CREATE : 0);
	if (nlh) {
		nftnl_set_nlmsg_build_payload(nlh, s);
		b_end(b, nlh);
	}
	nftnl_set_free(s);
}

/* DELSET+flush of a named set's elements (NFT_MSG_DELSETELEM with no elements). */

/* A map element as this backend keeps it: the key bytes and the verdict. */
enum vkind { V_NONE, V_GOTO, V_DROP };

struct kelem {
	uint8_t map; /* enum kmap */
	uint8_t vk;  /* enum vkind */
	uint8_t key[12];
	char *chain;   /* V_GOTO target (owned) */
	char *comment; /* owned, may be NULL */
};

static void add_elem_attrs(struct nftnl_set_elem *e, const struct kelem *k)
{
	nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY, k->key, maps[k->map].key_len);
	if (k->vk == V_GOTO) {
		nftnl_set_elem_set_u32(e, NFTNL_SET_ELEM_VERDICT, (uint32_t)NFT_GOTO);
		nftnl_set_elem_set_str(e, NFTNL_SET_ELEM_CHAIN, k->chain);
	} else if (k->vk == V_DROP) {
		nftnl_set_elem_set_u32(e, NFTNL_SET_ELEM_VERDICT, NF_DROP);
	}
}

/* NEWSETELEM / DELSETELEM for n elements of one map, in messages of ELEMS_PER_MSG. */
static void msg_elems(struct batch *b, uint16_t type, const struct kelem *const *v, size_t n,
		      bool with_comments)
{
	for (size_t i = 0; i < n; i += ELEMS_PER_MSG) {
		struct nftnl_set *s = nftnl_set_alloc();
		struct nlmsghdr *nlh;

		if (!s) {
			b->oom = true;
			return;
		}
		nftnl_set_set_str(s, NFTNL_SET_TABLE, KP_TABLE);
		nftnl_set_set_str(s, NFTNL_SET_NAME, maps[v[i]->map].name);
		for (size_t j = i; j < n && j < i + ELEMS_PER_MSG; j++) {
			struct nftnl_set_elem *e = nftnl_set_elem_alloc();

			if (!e) {
				b->oom = true;
				break;
			}
			add_elem_attrs(e, v[j]);
			if (with_comments && v[j]->comment)
				put_comment(e, elem_set, NFTNL_SET_ELEM_USERDATA,
					    NFTNL_UDATA_SET_ELEM_COMMENT, v[j]->comment);
			nftnl_set_elem_add(s, e);
		}
		nlh = b_hdr(b, type, type == NFT_MSG_NEWSETELEM ? NLM_F_CREATE : 0);
		if (nlh) {
			nftnl_set_elems_nlmsg_build_payload(nlh, s);
			b_end(b, nlh);
		}
		nftnl_set_free(s);
	}
}

/* --- rule expressions ------------------------------------------------------------------- */

#define R1     NFT_REG_1
#define R32(i) (NFT_REG32_00 + (i))

static void ex_add(struct nftnl_rule *r, struct nftnl_expr *e)
{
	if (e)
		nftnl_rule_add_expr(r, e);
}

static void ex_payload(struct nftnl_rule *r, uint32_t base, uint32_t off, uint32_t len,
		       uint32_t dreg)
{
	struct nftnl_expr *e = nftnl_expr_alloc("payload");

	if (!e)
		return;
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_BASE, base);
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_OFFSET, off);
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_LEN, len);
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_DREG, dreg);
	ex_add(r, e);
}

static void ex_cmp(struct nftnl_rule *r, uint32_t op, const void *data, uint32_t len)
{
	struct nftnl_expr *e = nftnl_expr_alloc("cmp");

	if (!e)
		return;
	nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_SREG, R1);
	nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_OP, op);
	nftnl_expr_set(e, NFTNL_EXPR_CMP_DATA, data, len);
	ex_add(r, e);
}

static void ex_cmp_u32(struct nftnl_rule *r, uint32_t op, uint32_t v)
{
	ex_cmp(r, op, &v, sizeof(v));
}

static void ex_meta(struct nftnl_rule *r, uint32_t key, uint32_t dreg)
{
	struct nftnl_expr *e = nftnl_expr_alloc("meta");

	if (!e)
		return;
	nftnl_expr_set_u32(e, NFTNL_EXPR_META_KEY, key);
	nftnl_expr_set_u32(e, NFTNL_EXPR_META_DREG, dreg);
	ex_add(r, e);
}

static void ex_meta_set(struct nftnl_rule *r, uint32_t key)
{
	struct nftnl_expr *e = nftnl_expr_alloc("meta");

	if (!e)
		return;
	nftnl_expr_set_u32(e, NFTNL_EXPR_META_KEY, key);
	nftnl_expr_set_u32(e, NFTNL_EXPR_META_SREG, R1);
	ex_add(r, e);
}

static void ex_bitwise(struct nftnl_rule *r, const void *mask, const void * xor, uint32_t len)
{
	struct nftnl_expr *e = nftnl_expr_alloc("bitwise");

	if (!e)
		return;
	nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_SREG, R1);
	nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_DREG, R1);
	nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_LEN, len);
	nftnl_expr_set(e, NFTNL_EXPR_BITWISE_MASK, mask, len);
	nftnl_expr_set(e, NFTNL_EXPR_BITWISE_XOR, xor, len);
	ex_add(r, e);
}

static void ex_bitwise_u32(struct nftnl_rule *r, uint32_t mask, uint32_t xor)
{
	ex_bitwise(r, &mask, &xor, sizeof(mask));
}

static void ex_verdict(struct nftnl_rule *r, int verdict, const char *chain)
{
	struct nftnl_expr *e = nftnl_expr_alloc("immediate");

	if (!e)
		return;
	nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, NFT_REG_VERDICT);
	nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_VERDICT, (uint32_t)verdict);
	if (chain)
		nftnl_expr_set_str(e, NFTNL_EXPR_IMM_CHAIN, chain);
	ex_add(r, e);
}

static void ex_imm(struct nftnl_rule *r, uint32_t dreg, const void *data, uint32_t len)
{
	struct nftnl_expr *e = nftnl_expr_alloc("immediate");

	if (!e)
		return;
	nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, dreg);
	nftnl_expr_set(e, NFTNL_EXPR_IMM_DATA, data, len);
	ex_add(r, e);
}

/* lookup: dreg < 0 = membership test, else a verdict map (dreg 0). */
static void ex_lookup(struct nftnl_rule *r, const char *set, uint32_t set_id, bool vmap)
{
	struct nftnl_expr *e = nftnl_expr_alloc("lookup");

	if (!e)
		return;
	nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SREG, R1);
	nftnl_expr_set_str(e, NFTNL_EXPR_LOOKUP_SET, set);
	if (set_id)
		nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SET_ID, set_id);
	if (vmap)
		nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_DREG, NFT_REG_VERDICT);
	ex_add(r, e);
}

static void ex_fib_local(struct nftnl_rule *r, bool saddr)
{
	struct nftnl_expr *e = nftnl_expr_alloc("fib");

	if (!e)
		return;
	nftnl_expr_set_u32(e, NFTNL_EXPR_FIB_FLAGS, saddr ? NFTA_FIB_F_SADDR : NFTA_FIB_F_DADDR);
	nftnl_expr_set_u32(e, NFTNL_EXPR_FIB_RESULT, NFT_FIB_RESULT_ADDRTYPE);
	nftnl_expr_set_u32(e, NFTNL_EXPR_FIB_DREG, R1);
	ex_add(r, e);
	ex_cmp_u32(r, NFT_CMP_EQ, RTN_LOCAL);
}

static void ex_reject(struct nftnl_rule *r)
{
	struct nftnl_expr *e = nftnl_expr_alloc("reject");

	if (!e)
		return;
	nftnl_expr_set_u32(e, NFTNL_EXPR_REJECT_TYPE, NFT_REJECT_ICMP_UNREACH);
	nftnl_expr_set_u8(e, NFTNL_EXPR_REJECT_CODE, 3 /* ICMP_PORT_UNREACH */);
	ex_add(r, e);
}

/* ip saddr / ip daddr into reg 1 (or a 32-bit register of a concatenation). */
static void ex_ip(struct nftnl_rule *r, bool saddr, uint32_t dreg)
{
	ex_payload(r, NFT_PAYLOAD_NETWORK_HEADER, saddr ? 12 : 16, 4, dreg);
}

/* ip {s,d}addr [!=] net/prefix */
static void ex_ip_net(struct nftnl_rule *r, bool saddr, uint32_t op, __be32 net, __be32 mask)
{
	static const uint8_t zero[4];

	ex_ip(r, saddr, R1);
	if (mask != 0xffffffff)
		ex_bitwise(r, &mask, zero, 4);
	ex_cmp(r, op, &net, 4);
}

/* ip daddr . meta l4proto . th dport (or meta l4proto . th dport) vmap @map */
static void ex_dispatch(struct nftnl_rule *r, bool with_ip, const char *map)
{
	uint32_t reg = with_ip ? R32(1) : R1;

	if (with_ip)
		ex_ip(r, false, R1);
	ex_meta(r, NFT_META_L4PROTO, reg);
	ex_payload(r, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, with_ip ? R32(2) : R32(1));
	ex_lookup(r, map, 0, true);
}

/* ip daddr != 127.0.0.0/8 */
static void ex_not_loopback(struct nftnl_rule *r)
{
	uint8_t lo = 127;

	ex_payload(r, NFT_PAYLOAD_NETWORK_HEADER, 16, 1, R1);
	ex_cmp(r, NFT_CMP_NEQ, &lo, 1);
}

static void ex_ct_new(struct nftnl_rule *r)
{
	struct nftnl_expr *e = nftnl_expr_alloc("ct");

	if (!e)
		return;
	nftnl_expr_set_u32(e, NFTNL_EXPR_CT_KEY, NFT_CT_STATE);
	nftnl_expr_set_u32(e, NFTNL_EXPR_CT_DREG, R1);
	ex_add(r, e);
	ex_bitwise_u32(r, NF_CT_STATE_BIT(IP_CT_NEW), 0);
	ex_cmp_u32(r, NFT_CMP_NEQ, 0);
}

static struct nftnl_rule *rule_new(const char *chain)
{
	struct nftnl_rule *r = nftnl_rule_alloc();

	if (!r)
		return NULL;
	nftnl_rule_set_str(r, NFTNL_RULE_TABLE, KP_TABLE);
	nftnl_rule_set_str(r, NFTNL_RULE_CHAIN, chain);
	nftnl_rule_set_u32(r, NFTNL_RULE_FAMILY, NFPROTO_IPV4);
	return r;
}

/* NEWRULE (append) and frees r. */
static void msg_rule(struct batch *b, struct nftnl_rule *r, const char *comment)
{
	struct nlmsghdr *nlh;

	if (!r) {
		b->oom = true;
		return;
	}
	if (comment)
		put_comment(r, rule_set, NFTNL_RULE_USERDATA, NFTNL_UDATA_RULE_COMMENT, comment);
	nlh = b_hdr(b, NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND);
	if (nlh) {
		nftnl_rule_nlmsg_build_payload(nlh, r);
		b_end(b, nlh);
	}
	nftnl_rule_free(r);
}

/* --- backend state ---------------------------------------------------------------------- */

/* A UDP frontend/endpoint pair that had conntrack entries to clean when it
 * goes away: fe_addr 0 = NodePort; ep_addr 0 = the frontend had no endpoint. */
struct udprec {
	__be32 fe_addr, ep_addr;
	__be16 fe_port;
	uint16_t pad;
};

/* What this process programmed for one Service (everything it owns). */
struct ksvc {
	struct ksvc *next; /* hash chain */
	char *key;	   /* "ns/name" */
	uint64_t gen, owned_hash;
	bool seen;
	char **chains; /* sorted */
	size_t n_chains;
	char **sets; /* affinity sets, sorted */
	size_t n_sets;
	uint32_t set_timeout;
	struct kelem *elems;
	size_t n_elems;
	struct udprec *udp; /* sorted */
	size_t n_udp;
	size_t n_rules;
};

struct pxy {
	struct pxy_cfg cfg;
	char *cluster_cidr;
	__be32 cidr_net, cidr_mask;
	bool have_cidr;
	uint32_t masq_mark;
	struct mnl_socket *nl;
	uint32_t portid;
	struct batch b;
	struct ksvc **tab;
	size_t tab_n, n_svcs;
	/* cluster-ips is keyed by address only: refcounted across Services */
	struct ipref {
		__be32 addr;
		uint32_t refs;
	} * ips;
	size_t n_ips, cap_ips;
	bool synced; /* a full sync succeeded since open */
	size_t static_rules;
	size_t total_rules, total_elems;
	struct pxy_stats st;
};

static uint64_t fnv(const void *p, size_t n, uint64_t h)
{
	const uint8_t *s = p;

	for (size_t i = 0; i < n; i++)
		h = (h ^ s[i]) * 0x100000001b3ULL;
	return h;
}

static struct ksvc **svc_slot(struct pxy *p, const char *key)
{
	size_t i = fnv(key, strlen(key), 0xcbf29ce484222325ULL) & (p->tab_n - 1);
	struct ksvc **pp = &p->tab[i];

	while (*pp && strcmp((*pp)->key, key))
		pp = &(*pp)->next;
	return pp;
}

static int svc_grow(struct pxy *p)
{
	size_t nn = p->tab_n ? p->tab_n * 2 : 1024;
	struct ksvc **nt = calloc(nn, sizeof(*nt));

	if (!nt)
		return -ENOMEM;
	for (size_t i = 0; i < p->tab_n; i++) {
		for (struct ksvc *s = p->tab[i], *n; s; s = n) {
			size_t j = fnv(s->key, strlen(s->key), 0xcbf29ce484222325ULL) & (nn - 1);

			n = s->next;
			s->next = nt[j];
			nt[j] = s;
		}
	}
	free(p->tab);
	p->tab = nt, p->tab_n = nn;
	return 0;
}

static void strv_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static void elems_free(struct kelem *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].chain);
		free(v[i].comment);
	}
	free(v);
}

/* Frees what a ksvc holds (not the key or the struct). */
static void ksvc_clear(struct ksvc *s)
{
	strv_free(s->chains, s->n_chains);
	strv_free(s->sets, s->n_sets);
	elems_free(s->elems, s->n_elems);
	free(s->udp);
	s->chains = s->sets = NULL;
	s->elems = NULL;
	s->udp = NULL;
	s->n_chains = s->n_sets = s->n_elems = s->n_udp = s->n_rules = 0;
}

static void svc_table_free(struct pxy *p)
{
	for (size_t i = 0; i < p->tab_n; i++) {
		for (struct ksvc *s = p->tab[i], *n; s; s = n) {
			n = s->next;
			ksvc_clear(s);
			free(s->key);
			free(s);
		}
		p->tab[i] = NULL;
	}
	p->n_svcs = 0;
	p->n_ips = 0;
}

static struct ipref *ip_find(struct pxy *p, __be32 a)
{
	for (size_t i = 0; i < p->n_ips; i++)
		if (p->ips[i].addr == a)
			return &p->ips[i];
	return NULL;
}

/* --- rendering one Service -------------------------------------------------------------- */

struct strv {
	char **v;
	size_t n, cap;
	bool oom;
};

static void strv_push(struct strv *s, const char *x)
{
	if (s->oom)
		return;
	if (s->n == s->cap) {
		size_t nc = s->cap ? s->cap * 2 : 8;
		char **nv = realloc(s->v, nc * sizeof(*nv));

		if (!nv) {
			s->oom = true;
			return;
		}
		s->v = nv, s->cap = nc;
	}
	if (!(s->v[s->n] = strdup(x)))
		s->oom = true;
	else
		s->n++;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* sorts and drops duplicates */
static void strv_sort(struct strv *s)
{
	size_t w = 0;

	if (s->n > 1)
		qsort(s->v, s->n, sizeof(*s->v), cmp_str);
	for (size_t i = 0; i < s->n; i++) {
		if (w && !strcmp(s->v[w - 1], s->v[i]))
			free(s->v[i]);
		else
			s->v[w++] = s->v[i];
	}
	s->n = w;
}

/* A render: collect mode fills the object lists; emit mode writes rules into
 * the batch (the chains, sets and elements are written from the diff). */
struct render {
	struct pxy *p;
	struct batch *b; /* NULL: collect */
	struct strv chains, sets;
	struct kelem *elems;
	size_t n_elems, cap_elems;
	struct udprec *udp;
	size_t n_udp, cap_udp;
	uint32_t set_timeout;
	size_t n_rules;
	bool oom;
};

static void r_elem(struct render *R, enum kmap m, __be32 ip, uint8_t proto, __be16 port,
		   enum vkind vk, const char *chain, const char *comment)
{
	struct kelem k = {.map = (uint8_t)m, .vk = (uint8_t)vk};
	size_t o = 0;

	if (R->b || R->oom)
		return;
	if (m == M_CLUSTER_IPS || maps[m].key_len == 12) {
		memcpy(k.key, &ip, 4);
		o = 4;
	}
	if (m != M_CLUSTER_IPS) {
		k.key[o] = proto;
		memcpy(k.key + o + 4, &port, 2);
	}
	for (size_t i = 0; i < R->n_elems; i++) /* one key once per Service */
		if (R->elems[i].map == k.map && !memcmp(R->elems[i].key, k.key, sizeof(k.key)))
			return;
	if (R->n_elems == R->cap_elems) {
		size_t nc = R->cap_elems ? R->cap_elems * 2 : 8;
		struct kelem *nv = realloc(R->elems, nc * sizeof(*nv));

		if (!nv) {
			R->oom = true;
			return;
		}
		R->elems = nv, R->cap_elems = nc;
	}
	k.chain = chain ? strdup(chain) : NULL;
	k.comment = comment ? strdup(comment) : NULL;
	if ((chain && !k.chain) || (comment && !k.comment)) {
		free(k.chain);
		free(k.comment);
		R->oom = true;
		return;
	}
	R->elems[R->n_elems++] = k;
}

static void r_udp(struct render *R, __be32 fe, __be16 port, __be32 ep)
{
	if (R->b || R->oom)
		return;
	if (R->n_udp == R->cap_udp) {
		size_t nc = R->cap_udp ? R->cap_udp * 2 : 8;
		struct udprec *nv = realloc(R->udp, nc * sizeof(*nv));

		if (!nv) {
			R->oom = true;
			return;
		}
		R->udp = nv, R->cap_udp = nc;
	}
	R->udp[R->n_udp++] = (struct udprec){.fe_addr = fe, .ep_addr = ep, .fe_port = port};
}

static void r_chain(struct render *R, const char *name)
{
	if (!R->b)
		strv_push(&R->chains, name);
}

static void r_rule(struct render *R, struct nftnl_rule *r, const char *comment)
{
	R->n_rules++;
	if (R->b)
		msg_rule(R->b, r, comment);
	else if (r)
		nftnl_rule_free(r);
}

/* The endpoints one policy uses, as indices into the fragment's backends. */
struct eps {
	const uint32_t *be;
	size_t n;
};

struct port_ctx {
	const struct lbm_state *f;
	const char *ns, *name, *pname;
	uint8_t proto;
	char spn[512];	/* "ns/name:port" (ServicePortName.String()) */
	char base[384]; /* "ns/name/proto/port" */
	char svc_chain[NAME_MAX_NFT], local_chain[NAME_MAX_NFT], ext_chain[NAME_MAX_NFT];
	bool affinity;
	uint32_t affinity_s;
};

static void ep_names(const struct port_ctx *c, const struct lbm_backend *be, char *chain, char *aff)
{
	char name[512], ip[INET_ADDRSTRLEN];

	inet_ntop(AF_INET, &be->addr, ip, sizeof(ip));
	snprintf(name, sizeof(name), "%s__%s/%u", c->base, ip, ntohs(be->port));
	kp_name(chain, "endpoint-", name);
	if (aff)
		kp_name(aff, "affinity-", name);
}

/* writeServiceToEndpointRules: affinity lookups, then numgen over the endpoints. */
static void r_policy_chain(struct render *R, const struct port_ctx *c, const char *chain,
			   struct eps eps, bool masq_rule, __be32 cip, __be16 cport)
{
	char epc[NAME_MAX_NFT], aff[NAME_MAX_NFT];
	struct nftnl_rule *r;

	if (masq_rule) {
		/* internal traffic: masquerade off-cluster sources (or all) */
		r = rule_new(chain);
		if (r) {
			uint8_t proto = c->proto;

			ex_ip(r, false, R1);
			ex_cmp(r, NFT_CMP_EQ, &cip, 4);
			ex_meta(r, NFT_META_L4PROTO, R1);
			ex_cmp(r, NFT_CMP_EQ, &proto, 1);
			ex_payload(r, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, R1);
			ex_cmp(r, NFT_CMP_EQ, &cport, 2);
			if (!R->p->cfg.masquerade_all)
				ex_ip_net(r, true, NFT_CMP_NEQ, R->p->cidr_net, R->p->cidr_mask);
			ex_verdict(r, NFT_JUMP, "mark-for-masquerade");
		}
		r_rule(R, r, NULL);
	}
	if (c->affinity) {
		for (size_t i = 0; i < eps.n; i++) {
			ep_names(c, &c->f->backends[eps.be[i]], epc, aff);
			r = rule_new(chain);
			if (r) {
				ex_ip(r, true, R1);
				ex_lookup(r, aff, 0, false);
				ex_verdict(r, NFT_GOTO, epc);
			}
			r_rule(R, r, NULL);
		}
	}
	/* numgen random mod N vmap { 0 : goto endpoint-..., ... } */
	R->n_rules++;
	if (!R->b)
		return;
	struct batch *b = R->b;
	struct nftnl_set *s = nftnl_set_alloc();
	uint32_t id = ++b->set_id;
	struct nlmsghdr *nlh;

	if (!s) {
		b->oom = true;
		return;
	}
	nftnl_set_set_str(s, NFTNL_SET_TABLE, KP_TABLE);
	nftnl_set_set_str(s, NFTNL_SET_NAME, "__map%d");
	nftnl_set_set_u32(s, NFTNL_SET_ID, id);
	nftnl_set_set_u32(s, NFTNL_SET_FAMILY, NFPROTO_IPV4);
	nftnl_set_set_u32(s, NFTNL_SET_FLAGS, NFT_SET_ANONYMOUS | NFT_SET_CONSTANT | NFT_SET_MAP);
	nftnl_set_set_u32(s, NFTNL_SET_KEY_TYPE, DT_INTEGER);
	nftnl_set_set_u32(s, NFTNL_SET_KEY_LEN, 4);
	nftnl_set_set_u32(s, NFTNL_SET_DATA_TYPE, NFT_DATA_VERDICT);
	nftnl_set_set_u32(s, NFTNL_SET_DATA_LEN, 4);
	nftnl_set_set_u32(s, NFTNL_SET_DESC_SIZE, (uint32_t)eps.n);
	{
		/* numgen's result is a host-order integer: tell nft how to print the keys */
		struct nftnl_udata_buf *u = nftnl_udata_buf_alloc(64);

		if (u && nftnl_udata_put_u32(u, NFTNL_UDATA_SET_KEYBYTEORDER, 1 /* host */))
			nftnl_set_set_data(s, NFTNL_SET_USERDATA, nftnl_udata_buf_data(u),
					   nftnl_udata_buf_len(u));
		if (u)
			nftnl_udata_buf_free(u);
	}
	nlh = b_hdr(b, NFT_MSG_NEWSET, NLM_F_CREATE);
	if (nlh) {
		nftnl_set_nlmsg_build_payload(nlh, s);
		b_end(b, nlh);
	}
	nftnl_set_free(s);
	for (size_t i = 0; i < eps.n; i += ELEMS_PER_MSG) {
		s = nftnl_set_alloc();
		if (!s) {
			b->oom = true;
			return;
		}
		nftnl_set_set_str(s, NFTNL_SET_TABLE, KP_TABLE);
		nftnl_set_set_str(s, NFTNL_SET_NAME, "__map%d");
		nftnl_set_set_u32(s, NFTNL_SET_ID, id);
		for (size_t j = i; j < eps.n && j < i + ELEMS_PER_MSG; j++) {
			struct nftnl_set_elem *e = nftnl_set_elem_alloc();
			uint32_t k = (uint32_t)j;

			if (!e) {
				b->oom = true;
				break;
			}
			ep_names(c, &c->f->backends[eps.be[j]], epc, NULL);
			nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY, &k, sizeof(k));
			nftnl_set_elem_set_u32(e, NFTNL_SET_ELEM_VERDICT, (uint32_t)NFT_GOTO);
			nftnl_set_elem_set_str(e, NFTNL_SET_ELEM_CHAIN, epc);
			nftnl_set_elem_add(s, e);
		}
		nlh = b_hdr(b, NFT_MSG_NEWSETELEM, NLM_F_CREATE);
		if (nlh) {
			nftnl_set_elems_nlmsg_build_payload(nlh, s);
			b_end(b, nlh);
		}
		nftnl_set_free(s);
	}
	r = rule_new(chain);
	if (r) {
		struct nftnl_expr *e = nftnl_expr_alloc("numgen");

		if (e) {
			nftnl_expr_set_u32(e, NFTNL_EXPR_NG_DREG, R1);
			nftnl_expr_set_u32(e, NFTNL_EXPR_NG_MODULUS, (uint32_t)eps.n);
			nftnl_expr_set_u32(e, NFTNL_EXPR_NG_TYPE, NFT_NG_RANDOM);
			nftnl_expr_set_u32(e, NFTNL_EXPR_NG_OFFSET, 0);
			ex_add(r, e);
		}
		ex_lookup(r, "__map%d", id, true);
	}
	R->n_rules--; /* counted above */
	r_rule(R, r, NULL);
}

static void r_endpoint_chain(struct render *R, const struct port_ctx *c,
			     const struct lbm_backend *be)
{
	char epc[NAME_MAX_NFT], aff[NAME_MAX_NFT];
	struct nftnl_rule *r;
	uint8_t proto = c->proto;

	ep_names(c, be, epc, aff);
	r_chain(R, epc);
	if (c->affinity && !R->b)
		strv_push(&R->sets, aff);
	/* hairpin: an endpoint reaching itself through the Service */
	r = rule_new(epc);
	if (r) {
		ex_ip(r, true, R1);
		ex_cmp(r, NFT_CMP_EQ, &be->addr, 4);
		ex_verdict(r, NFT_JUMP, "mark-for-masquerade");
	}
	r_rule(R, r, NULL);
	if (c->affinity) {
		r = rule_new(epc);
		if (r) {
			struct nftnl_expr *e = nftnl_expr_alloc("dynset");

			ex_ip(r, true, R1);
			if (e) {
				nftnl_expr_set_u32(e, NFTNL_EXPR_DYNSET_SREG_KEY, R1);
				nftnl_expr_set_u32(e, NFTNL_EXPR_DYNSET_OP, NFT_DYNSET_OP_UPDATE);
				nftnl_expr_set_str(e, NFTNL_EXPR_DYNSET_SET_NAME, aff);
				ex_add(r, e);
			}
		}
		r_rule(R, r, NULL);
	}
	r = rule_new(epc);
	if (r) {
		struct nftnl_expr *e = nftnl_expr_alloc("nat");

		ex_meta(r, NFT_META_L4PROTO, R1);
		ex_cmp(r, NFT_CMP_EQ, &proto, 1);
		ex_imm(r, R1, &be->addr, 4);
		ex_imm(r, NFT_REG_2, &be->port, 2);
		if (e) {
			nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_TYPE, NFT_NAT_DNAT);
			nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_FAMILY, NFPROTO_IPV4);
			nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_REG_ADDR_MIN, R1);
			nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_REG_PROTO_MIN, NFT_REG_2);
			nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_FLAGS, NF_NAT_RANGE_PROTO_SPECIFIED);
			ex_add(r, e);
		}
	}
	r_rule(R, r, NULL);
}

static bool is_external(const struct lbm_frontend *fe)
{
	return fe->flags & (SL_SVC_F_NODEPORT | SL_SVC_F_LOADBALANCER | SL_SVC_F_EXTERNALIP);
}

/* One Service port: kube-proxy's syncProxyRules loop body. */
static void render_port(struct render *R, const struct lbm_state *f, const bool *owned,
			uint32_t pidx)
{
	const struct lbm_service *sv = &f->services[0];
	const struct lbm_frontend *cip = NULL, *xe = NULL, *xi = NULL;
	struct port_ctx c = {.f = f, .ns = sv->ns, .name = sv->name};
	struct eps ceps = {0}, leps = {0};
	bool itp_local, etp_local, ext_acc, has_eps, has_int, has_ext;
	bool uses_cluster, uses_local, uses_ext;
	const char *int_chain, *ext_policy;
	enum vkind int_vk, ext_vk;
	const char *int_target = NULL, *ext_target = NULL;

	for (size_t k = 0; k < f->n_frontends; k++) {
		const struct lbm_frontend *fe = &f->frontends[k];

		if (fe->port_idx != pidx)
			continue;
		if (fe->flags & SL_SVC_F_CLUSTERIP) {
			if (fe->key.scope == SL_SCOPE_EXT)
				cip = fe;
		} else if (is_external(fe)) {
			if (fe->key.scope == SL_SCOPE_EXT && !xe)
				xe = fe;
			else if (fe->key.scope == SL_SCOPE_INT && !xi)
				xi = fe;
		}
	}
	if (!cip && !xe)
		return;
	{
		const struct lbm_frontend *any = cip ? cip : xe;

		c.proto = any->key.proto;
		c.affinity = any->flags & SL_SVC_F_AFFINITY;
		c.affinity_s = any->affinity_s;
	}
	c.pname = pidx < sv->n_ports && sv->port_names[pidx] ? sv->port_names[pidx] : "";
	snprintf(c.spn, sizeof(c.spn), "%s/%s%s%s", c.ns, c.name, c.pname[0] ? ":" : "", c.pname);
	snprintf(c.base, sizeof(c.base), "%s/%s/%s/%s", c.ns, c.name, proto_name(c.proto), c.pname);
	kp_name(c.svc_chain, "service-", c.base);
	kp_name(c.local_chain, "local-", c.base);
	kp_name(c.ext_chain, "external-", c.base);
	if (c.affinity)
		R->set_timeout = c.affinity_s;

	itp_local = cip && (cip->flags & SL_SVC_F_LOCAL_INT);
	ext_acc = xe != NULL;
	etp_local = xe && (xe->flags & SL_SVC_F_LOCAL_EXT);
	/* CategorizeEndpoints, from the model's sets (model.h's table) */
	if (cip && !itp_local)
		ceps = (struct eps){cip->be, cip->count};
	else if (xe)
		ceps = etp_local ? (xi ? (struct eps){xi->be, xi->count} : (struct eps){0})
				 : (struct eps){xe->be, xe->count};
	if (itp_local)
		leps = (struct eps){cip->be, cip->count};
	else if (etp_local)
		leps = (struct eps){xe->be, xe->count};
	has_eps = ceps.n || leps.n || (cip && cip->drop) || (xe && xe->drop);
	uses_cluster = ceps.n && (!itp_local || ext_acc);
	uses_local = leps.n && (itp_local || etp_local);
	int_chain = itp_local ? c.local_chain : c.svc_chain;
	has_int = has_eps && (!itp_local || leps.n);
	ext_policy = etp_local ? c.local_chain : c.svc_chain;
	has_ext = has_eps && (!etp_local || leps.n);
	uses_ext = has_eps && ext_acc;
	if (!has_eps) {
		int_vk = ext_vk = V_GOTO;
		int_target = ext_target = "reject-chain";
	} else {
		int_vk = has_int ? V_NONE : V_DROP;
		ext_vk = has_ext ? V_NONE : V_DROP;
	}

	/* endpoint chains of every locally reachable endpoint (union, sorted indices) */
	if (uses_cluster)
		r_chain(R, c.svc_chain);
	if (uses_local)
		r_chain(R, c.local_chain);
	if (uses_ext)
		r_chain(R, c.ext_chain);

	/* elements */
	for (size_t k = 0; k < f->n_frontends; k++) {
		const struct lbm_frontend *fe = &f->frontends[k];

		if (fe->port_idx != pidx || fe->key.scope != SL_SCOPE_EXT || !owned[k])
			continue;
		if (fe->flags & SL_SVC_F_CLUSTERIP) {
			r_elem(R, M_CLUSTER_IPS, fe->key.addr, 0, 0, V_NONE, NULL, NULL);
			if (has_int)
				r_elem(R, M_SERVICE_IPS, fe->key.addr, c.proto, fe->key.port,
				       V_GOTO, int_chain, NULL);
			else
				r_elem(R, M_NOEP_SERVICES, fe->key.addr, c.proto, fe->key.port,
				       int_vk, int_target, c.spn);
		} else if (fe->flags & SL_SVC_F_NODEPORT) {
			if (has_eps)
				r_elem(R, M_SERVICE_NODEPORTS, 0, c.proto, fe->key.port, V_GOTO,
				       c.ext_chain, NULL);
			if (!has_ext)
				r_elem(R, M_NOEP_NODEPORTS, 0, c.proto, fe->key.port, ext_vk,
				       ext_target, c.spn);
		} else if (is_external(fe)) {
			if (has_eps)
				r_elem(R, M_SERVICE_IPS, fe->key.addr, c.proto, fe->key.port,
				       V_GOTO, c.ext_chain, NULL);
			if (!has_ext)
				r_elem(R, M_NOEP_SERVICES, fe->key.addr, c.proto, fe->key.port,
				       ext_vk, ext_target, c.spn);
		}
		if (c.proto == IPPROTO_UDP) {
			/* where this frontend's flows can be DNATed to (the eTP Local
			 * short circuit reaches the cluster-wide set too) */
			__be32 fa = (fe->flags & SL_SVC_F_NODEPORT) ? 0 : fe->key.addr;
			const struct lbm_frontend *sc = fe != cip && xi && has_eps ? xi : NULL;

			if (!fe->count && !(sc && sc->count))
				r_udp(R, fa, fe->key.port, 0);
			for (size_t i = 0; i < fe->count; i++)
				r_udp(R, fa, fe->key.port, f->backends[fe->be[i]].addr);
			for (size_t i = 0; sc && i < sc->count; i++)
				r_udp(R, fa, fe->key.port, f->backends[sc->be[i]].addr);
		}
	}

	/* internal traffic: the masquerade rule goes first into the internal chain */
	__be32 cip_addr = cip ? cip->key.addr : 0;
	__be16 cip_port = cip ? cip->key.port : 0;
	bool masq = has_int && cip && (R->p->cfg.masquerade_all || R->p->have_cidr);

	if (uses_ext) {
		struct nftnl_rule *r;

		if (!etp_local) {
			r = rule_new(c.ext_chain);
			if (r)
				ex_verdict(r, NFT_JUMP, "mark-for-masquerade");
			r_rule(R, r, NULL);
		} else {
			if (R->p->have_cidr && uses_cluster) {
				r = rule_new(c.ext_chain);
				if (r) {
					ex_ip_net(r, true, NFT_CMP_EQ, R->p->cidr_net,
						  R->p->cidr_mask);
					ex_verdict(r, NFT_GOTO, c.svc_chain);
				}
				r_rule(R, r, "short-circuit pod traffic");
			}
			r = rule_new(c.ext_chain);
			if (r) {
				ex_fib_local(r, true);
				ex_verdict(r, NFT_JUMP, "mark-for-masquerade");
			}
			r_rule(R, r, "masquerade local traffic");
			if (uses_cluster) {
				r = rule_new(c.ext_chain);
				if (r) {
					ex_fib_local(r, true);
					ex_verdict(r, NFT_GOTO, c.svc_chain);
				}
				r_rule(R, r, "short-circuit local traffic");
			}
		}
		if (has_ext) {
			r = rule_new(c.ext_chain);
			if (r)
				ex_verdict(r, NFT_GOTO, ext_policy);
			r_rule(R, r, NULL);
		}
	}
	if (uses_cluster)
		r_policy_chain(R, &c, c.svc_chain, ceps, masq && int_chain == c.svc_chain, cip_addr,
			       cip_port);
	if (uses_local)
		r_policy_chain(R, &c, c.local_chain, leps, masq && int_chain == c.local_chain,
			       cip_addr, cip_port);
	/* endpoint chains: the union of both sets (ascending indices), each once */
	for (size_t i = 0, j = 0; i < ceps.n || j < leps.n;) {
		uint32_t x;

		if (j >= leps.n || (i < ceps.n && ceps.be[i] < leps.be[j])) {
			x = ceps.be[i++];
		} else if (i >= ceps.n || leps.be[j] < ceps.be[i]) {
			x = leps.be[j++];
		} else {
			x = ceps.be[i++];
			j++;
		}
		r_endpoint_chain(R, &c, &f->backends[x]);
	}
}

static void render_service(struct render *R, const struct lbm_state *f, const bool *owned)
{
	const struct lbm_service *sv = &f->services[0];
	uint32_t np = sv->n_ports;

	for (size_t k = 0; k < f->n_frontends; k++)
		if (f->frontends[k].port_idx + 1 > np)
			np = f->frontends[k].port_idx + 1;
	for (uint32_t i = 0; i < np; i++)
		render_port(R, f, owned, i);
	if (R->chains.oom || R->sets.oom)
		R->oom = true;
}

/* --- syncing ---------------------------------------------------------------------------- */

static void emit_static(struct pxy *p, struct batch *b)
{
	static const struct {
		const char *dst, *src;
		bool ct_new;
	} jumps[] = {
		{"nodeport-endpoints-check", "filter-input", true},
		{"service-endpoints-check", "filter-input", true},
		{"service-endpoints-check", "filter-forward", true},
		{"service-endpoints-check", "filter-output", true},
		{"firewall-check", "filter-prerouting", true},
		{"firewall-check", "filter-output", true},
		{"services", "nat-output", false},
		{"services", "nat-prerouting", false},
		{"masquerading", "nat-postrouting", false},
		{"cluster-ips-check", "filter-forward", true},
		{"cluster-ips-check", "filter-output-post-dnat", true},
	};
	static const char *const regular[] = {
		"nodeport-endpoints-check",
		"service-endpoints-check",
		"firewall-check",
		"services",
		"masquerading",
		"cluster-ips-check",
		"mark-for-masquerade",
	};
	struct nftnl_rule *r;
	size_t n0;

	for (size_t i = 0; i < sizeof(base_chains) / sizeof(base_chains[0]); i++)
		msg_chain(b, NFT_MSG_NEWCHAIN, base_chains[i].name, &base_chains[i], NULL);
	for (size_t i = 0; i < sizeof(regular) / sizeof(regular[0]); i++)
		msg_chain(b, NFT_MSG_NEWCHAIN, regular[i], NULL, NULL);
	msg_chain(b, NFT_MSG_NEWCHAIN, "reject-chain", NULL,
		  "helper for @no-endpoint-services / @no-endpoint-nodeports");
	for (int m = 0; m < M_N; m++)
		msg_set(b, NFT_MSG_NEWSET, maps[m].name, &maps[m], 0);
	n0 = b->n_msgs;

	for (size_t i = 0; i < sizeof(jumps) / sizeof(jumps[0]); i++) {
		r = rule_new(jumps[i].src);
		if (r) {
			if (jumps[i].ct_new)
				ex_ct_new(r);
			ex_verdict(r, NFT_JUMP, jumps[i].dst);
		}
		msg_rule(b, r, NULL);
	}
	/* mark-for-masquerade: mark set mark or 0x4000 */
	r = rule_new("mark-for-masquerade");
	if (r) {
		ex_meta(r, NFT_META_MARK, R1);
		ex_bitwise_u32(r, ~p->masq_mark, p->masq_mark);
		ex_meta_set(r, NFT_META_MARK);
	}
	msg_rule(b, r, NULL);
	/* masquerading: mark and 0x4000 == 0 return; mark set mark xor 0x4000;
	 * masquerade fully-random */
	r = rule_new("masquerading");
	if (r) {
		ex_meta(r, NFT_META_MARK, R1);
		ex_bitwise_u32(r, p->masq_mark, 0);
		ex_cmp_u32(r, NFT_CMP_EQ, 0);
		ex_verdict(r, NFT_RETURN, NULL);
	}
	msg_rule(b, r, NULL);
	r = rule_new("masquerading");
	if (r) {
		ex_meta(r, NFT_META_MARK, R1);
		ex_bitwise_u32(r, 0xffffffff, p->masq_mark);
		ex_meta_set(r, NFT_META_MARK);
	}
	msg_rule(b, r, NULL);
	r = rule_new("masquerading");
	if (r) {
		struct nftnl_expr *e = nftnl_expr_alloc("masq");

		if (e) {
			nftnl_expr_set_u32(e, NFTNL_EXPR_MASQ_FLAGS,
					   NF_NAT_RANGE_PROTO_RANDOM_FULLY);
			ex_add(r, e);
		}
	}
	msg_rule(b, r, NULL);
	/* cluster-ips-check: a ClusterIP on a port no Service defines */
	r = rule_new("cluster-ips-check");
	if (r) {
		ex_ip(r, false, R1);
		ex_lookup(r, "cluster-ips", 0, false);
		ex_reject(r);
	}
	msg_rule(b, r, "Reject traffic to invalid ports of ClusterIPs");
	r = rule_new("reject-chain");
	if (r)
		ex_reject(r);
	msg_rule(b, r, NULL);
	r = rule_new("service-endpoints-check");
	if (r)
		ex_dispatch(r, true, "no-endpoint-services");
	msg_rule(b, r, NULL);
	r = rule_new("nodeport-endpoints-check");
	if (r) {
		ex_not_loopback(r);
		ex_dispatch(r, false, "no-endpoint-nodeports");
	}
	msg_rule(b, r, NULL);
	r = rule_new("firewall-check");
	if (r)
		ex_dispatch(r, true, "firewall-ips");
	msg_rule(b, r, NULL);
	r = rule_new("services");
	if (r)
		ex_dispatch(r, true, "service-ips");
	msg_rule(b, r, NULL);
	r = rule_new("services");
	if (r) {
		ex_fib_local(r, false);
		ex_not_loopback(r);
		ex_dispatch(r, false, "service-nodeports");
	}
	msg_rule(b, r, NULL);
	p->static_rules = b->n_msgs - n0;
}

/* A Service to (re)write in the second half of the batch. */
struct pending {
	struct ksvc *s;
	const struct lbm_state *f;
	bool *owned;
	/* the new objects (moved into s after the batch is built) */
	struct render R;
	/* what the old state had and the new keeps (no NEWCHAIN / NEWSET needed) */
	char **old_chains;
	size_t n_old_chains;
	char **old_sets;
	size_t n_old_sets;
	uint32_t old_timeout;
	struct kelem *old_elems;
	size_t n_old_elems;
	struct udprec *old_udp;
	size_t n_old_udp;
	bool is_new;
};

struct syncctx {
	struct pxy *p;
	bool full;
	struct pending *pend;
	size_t n_pend, cap_pend;
	size_t rendered;
	int err;
};

static bool in_sorted(char **v, size_t n, const char *x)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(v[mid], x);

		if (!c)
			return true;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

static const struct kelem *elem_find(const struct kelem *v, size_t n, const struct kelem *k)
{
	for (size_t i = 0; i < n; i++)
		if (v[i].map == k->map && !memcmp(v[i].key, k->key, sizeof(k->key)))
			return &v[i];
	return NULL;
}

static bool elem_same(const struct kelem *a, const struct kelem *b)
{
	return a->vk == b->vk && (a->vk != V_GOTO || !strcmp(a->chain, b->chain));
}

/* Emits deletes for elements of old not in new (or with another value), grouped by map;
 * cluster-ips through the refcounts. */
static void emit_elem_dels(struct pxy *p, struct batch *b, const struct kelem *old, size_t n_old,
			   const struct kelem *nw, size_t n_new)
{
	const struct kelem *v[ELEMS_PER_MSG];

	for (int m = 0; m < M_N; m++) {
		size_t n = 0;

		for (size_t i = 0; i < n_old; i++) {
			const struct kelem *k = &old[i], *x;

			if (k->map != m)
				continue;
			x = elem_find(nw, n_new, k);
			if (x && elem_same(k, x))
				continue;
			if (m == M_CLUSTER_IPS) {
				__be32 a;
				struct ipref *ir;

				memcpy(&a, k->key, 4);
				ir = ip_find(p, a);
				if (x || !ir || --ir->refs)
					continue; /* still used */
				*ir = p->ips[--p->n_ips];
			}
			v[n++] = k;
			if (n == ELEMS_PER_MSG) {
				msg_elems(b, NFT_MSG_DELSETELEM, v, n, false);
				n = 0;
			}
		}
		if (n)
			msg_elems(b, NFT_MSG_DELSETELEM, v, n, false);
	}
}

static void emit_elem_adds(struct pxy *p, struct batch *b, const struct kelem *old, size_t n_old,
			   const struct kelem *nw, size_t n_new)
{
	const struct kelem *v[ELEMS_PER_MSG];

	for (int m = 0; m < M_N; m++) {
		size_t n = 0;

		for (size_t i = 0; i < n_new; i++) {
			const struct kelem *k = &nw[i], *x;

			if (k->map != m)
				continue;
			x = elem_find(old, n_old, k);
			if (x && elem_same(k, x))
				continue;
			if (m == M_CLUSTER_IPS) {
				__be32 a;
				struct ipref *ir;

				if (x)
					continue;
				memcpy(&a, k->key, 4);
				ir = ip_find(p, a);
				if (ir) {
					ir->refs++;
					continue;
				}
				if (p->n_ips == p->cap_ips) {
					size_t nc = p->cap_ips ? p->cap_ips * 2 : 256;
					struct ipref *ni = realloc(p->ips, nc * sizeof(*ni));

					if (!ni) {
						b->oom = true;
						return;
					}
					p->ips = ni, p->cap_ips = nc;
				}
				p->ips[p->n_ips++] = (struct ipref){a, 1};
			}
			v[n++] = k;
			if (n == ELEMS_PER_MSG) {
				msg_elems(b, NFT_MSG_NEWSETELEM, v, n, true);
				n = 0;
			}
		}
		if (n)
			msg_elems(b, NFT_MSG_NEWSETELEM, v, n, true);
	}
}

/* Phase 1 for one Service: everything the old state has that must go. Chains
 * are flushed first (so nothing references what is deleted next). */
static void emit_removals(struct pxy *p, struct batch *b, struct ksvc *s, char **nch, size_t n_nch,
			  char **nsets, size_t n_nsets, uint32_t ntimeout, const struct kelem *ne,
			  size_t n_ne)
{
	emit_elem_dels(p, b, s->elems, s->n_elems, ne, n_ne);
	for (size_t i = 0; i < s->n_chains; i++)
		msg_chain(b, NFT_MSG_DELRULE, s->chains[i], NULL, NULL);
	for (size_t i = 0; i < s->n_chains; i++)
		if (!in_sorted(nch, n_nch, s->chains[i]))
			msg_chain(b, NFT_MSG_DELCHAIN, s->chains[i], NULL, NULL);
	for (size_t i = 0; i < s->n_sets; i++)
		if (ntimeout != s->set_timeout || !in_sorted(nsets, n_nsets, s->sets[i]))
			msg_set(b, NFT_MSG_DELSET, s->sets[i], NULL, 0);
}

static uint64_t owned_hash(const bool *owned, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < n; i++)
		h = (h ^ (owned[i] ? 0x9e : 0x37)) * 0x100000001b3ULL;
	return h ^ n;
}

static int on_fragment(const struct lbm_state *f, const bool *owned, uint64_t gen, void *arg)
{
	struct syncctx *x = arg;
	struct pxy *p = x->p;
	const struct lbm_service *sv;
	char key[512];
	struct ksvc **pp, *s;
	uint64_t oh;
	struct pending *pd;

	if (!f->n_services)
		return 0;
	sv = &f->services[0];
	snprintf(key, sizeof(key), "%s/%s", sv->ns, sv->name);
	if (p->n_svcs + 1 > p->tab_n && svc_grow(p))
		return -ENOMEM;
	pp = svc_slot(p, key);
	s = *pp;
	oh = owned_hash(owned, f->n_frontends);
	if (s) {
		s->seen = true;
		if (!x->full && s->gen == gen && s->owned_hash == oh)
			return 0;
	} else {
		s = calloc(1, sizeof(*s));
		if (!s || !(s->key = strdup(key))) {
			free(s);
			return -ENOMEM;
		}
		s->seen = true;
		*pp = s;
		p->n_svcs++;
	}
	s->gen = gen;
	s->owned_hash = oh;
	if (x->n_pend == x->cap_pend) {
		size_t nc = x->cap_pend ? x->cap_pend * 2 : 64;
		struct pending *nv = realloc(x->pend, nc * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		x->pend = nv, x->cap_pend = nc;
	}
	pd = &x->pend[x->n_pend];
	memset(pd, 0, sizeof(*pd));
	pd->s = s;
	pd->f = f;
	pd->owned = malloc(f->n_frontends ? f->n_frontends : 1);
	if (!pd->owned)
		return -ENOMEM;
	memcpy(pd->owned, owned, f->n_frontends);
	x->n_pend++;
	pd->R.p = p;
	render_service(&pd->R, f, pd->owned);
	if (pd->R.oom)
		return -ENOMEM;
	strv_sort(&pd->R.chains);
	strv_sort(&pd->R.sets);
	x->rendered++;
	return 0;
}

static int cmp_udp(const void *a, const void *b)
{
	return memcmp(a, b, sizeof(struct udprec));
}

static void udp_sort(struct udprec *v, size_t *n)
{
	size_t w = 0;

	if (*n > 1)
		qsort(v, *n, sizeof(*v), cmp_udp);
	for (size_t i = 0; i < *n; i++)
		if (!w || cmp_udp(&v[w - 1], &v[i]))
			v[w++] = v[i];
	*n = w;
}

static void run_conntrack(char *const argv[])
{
	if (agent_exec((const char *const *)argv, NULL, 0, NULL, NULL) == -ENOENT) {
		static bool warned;

		if (!warned)
			pr_warn(NL, "conntrack binary not found: stale UDP flows to removed "
				    "endpoints are not cleared");
		warned = true;
	}
}

/* conntrack.CleanStaleEntries for one Service: old records not in new. */
static void udp_clean(const struct udprec *old, size_t n_old, const struct udprec *nw, size_t n_new)
{
	for (size_t i = 0; i < n_old; i++) {
		const struct udprec *u = &old[i];
		char fe[INET_ADDRSTRLEN], ep[INET_ADDRSTRLEN], port[8];
		bool keep = false;

		for (size_t j = 0; j < n_new && !keep; j++)
			keep = !cmp_udp(u, &nw[j]);
		if (keep)
			continue;
		if (!u->ep_addr) {
			/* the frontend had no endpoint: flows it refused may be cached */
			bool now_has = false;

			for (size_t j = 0; j < n_new; j++)
				if (nw[j].fe_addr == u->fe_addr && nw[j].fe_port == u->fe_port &&
				    nw[j].ep_addr)
					now_has = true;
			if (!now_has)
				continue;
		}
		inet_ntop(AF_INET, &u->fe_addr, fe, sizeof(fe));
		inet_ntop(AF_INET, &u->ep_addr, ep, sizeof(ep));
		snprintf(port, sizeof(port), "%u", ntohs(u->fe_port));
		if (u->fe_addr && u->ep_addr) {
			char *argv[] = {"conntrack", "-D",	  "-p", "udp", "--orig-dst",
					fe,	     "--dst-nat", ep,	NULL};
			run_conntrack(argv);
		} else if (u->ep_addr) {
			char *argv[] = {"conntrack", "-D",	  "-p", "udp", "--orig-port-dst",
					port,	     "--dst-nat", ep,	NULL};
			run_conntrack(argv);
		} else if (u->fe_addr) {
			char *argv[] = {"conntrack",	   "-D", "-p", "udp", "--orig-dst", fe,
					"--orig-port-dst", port, NULL};
			run_conntrack(argv);
		} else {
			char *argv[] = {"conntrack",	   "-D", "-p", "udp",
					"--orig-port-dst", port, NULL};
			run_conntrack(argv);
		}
	}
}

/* --- talking to the kernel -------------------------------------------------------------- */

static const char *msg_type_name(uint16_t t)
{
	switch (t) {
	case NFT_MSG_NEWTABLE:
		return "add table";
	case NFT_MSG_DELTABLE:
		return "delete table";
	case NFT_MSG_NEWCHAIN:
		return "add chain";
	case NFT_MSG_DELCHAIN:
		return "delete chain";
	case NFT_MSG_NEWRULE:
		return "add rule to chain";
	case NFT_MSG_DELRULE:
		return "flush chain";
	case NFT_MSG_NEWSET:
		return "add set";
	case NFT_MSG_DELSET:
		return "delete set";
	case NFT_MSG_NEWSETELEM:
		return "add elements to";
	case NFT_MSG_DELSETELEM:
		return "delete elements from";
	default:
		return "message";
	}
}

/* "add rule to chain service-...": the failing message, parsed back from the batch. */
static void describe(const struct batch *b, uint32_t seq, char *out, size_t len)
{
	const struct nlmsghdr *nlh;
	uint16_t t;
	const char *name = "?";
	struct nftnl_rule *r = NULL;
	struct nftnl_chain *c = NULL;
	struct nftnl_set *s = NULL;

	if (seq <= b->seq0 || seq - b->seq0 >= b->n_off) {
		snprintf(out, len, "the batch (commit)");
		return;
	}
	nlh = (const struct nlmsghdr *)(b->buf + b->off[seq - b->seq0]);
	t = NFNL_MSG_TYPE(nlh->nlmsg_type);
	switch (t) {
	case NFT_MSG_NEWRULE:
	case NFT_MSG_DELRULE:
		if ((r = nftnl_rule_alloc()) && !nftnl_rule_nlmsg_parse(nlh, r))
			name = nftnl_rule_get_str(r, NFTNL_RULE_CHAIN);
		break;
	case NFT_MSG_NEWCHAIN:
	case NFT_MSG_DELCHAIN:
		if ((c = nftnl_chain_alloc()) && !nftnl_chain_nlmsg_parse(nlh, c))
			name = nftnl_chain_get_str(c, NFTNL_CHAIN_NAME);
		break;
	case NFT_MSG_NEWSET:
	case NFT_MSG_DELSET:
		if ((s = nftnl_set_alloc()) && !nftnl_set_nlmsg_parse(nlh, s))
			name = nftnl_set_get_str(s, NFTNL_SET_NAME);
		break;
	case NFT_MSG_NEWSETELEM:
	case NFT_MSG_DELSETELEM:
		if ((s = nftnl_set_alloc()) && !nftnl_set_elems_nlmsg_parse(nlh, s))
			name = nftnl_set_get_str(s, NFTNL_SET_NAME);
		break;
	default:
		name = KP_TABLE;
	}
	snprintf(out, len, "%s %s (message %u of %zu)", msg_type_name(t), name ? name : "?",
		 seq - b->seq0, b->n_off);
	if (r) /* the libnftnl free functions do not take NULL */
		nftnl_rule_free(r);
	if (c)
		nftnl_chain_free(c);
	if (s)
		nftnl_set_free(s);
}

static struct mnl_socket *nl_open(uint32_t *portid)
{
	struct mnl_socket *nl = mnl_socket_open(NETLINK_NETFILTER);

	if (!nl)
		return NULL;
	if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		int e = errno;

		mnl_socket_close(nl);
		errno = e;
		return NULL;
	}
	*portid = mnl_socket_get_portid(nl);
	return nl;
}

/* Sends the batch (closing it) and reads the replies up to the last message's
 * ACK. 0 or the first error (what failed is logged). */
static int b_commit(struct batch *b, struct mnl_socket *nl, uint32_t portid, const char *why,
		    bool quiet_enoent)
{
	char *p, rbuf[64 * 1024];
	uint32_t last;
	int fd = mnl_socket_get_fd(nl), first_err = 0, sz;
	uint32_t err_seq = 0;
	bool done = false;

	if (b->n_msgs == 0)
		return 0;
	/* the last object message asks for an ACK: its reply ends the exchange
	 * (errors of the others arrive before it, the commit's on the batch's seq) */
	{
		struct nlmsghdr *lh = (struct nlmsghdr *)(b->buf + b->off[b->n_off - 1]);

		lh->nlmsg_flags |= NLM_F_ACK;
		last = lh->nlmsg_seq;
	}
	p = b_room(b);
	if (!p)
		return -ENOMEM;
	b_end(b, nftnl_batch_end(p, b->seq++));
	b->n_off--; /* the end marker is not a message to describe */
	sz = (int)(b->len + 65536 > (size_t)INT32_MAX / 2 ? INT32_MAX / 2 : b->len + 65536);
	setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof(sz));
	if (mnl_socket_sendto(nl, b->buf, b->len) < 0) {
		int e = errno;

		pr_err(NL, "table ip %s: sending the %s batch (%zu messages, %zu bytes) failed: %s",
		       KP_TABLE, why, b->n_msgs, b->len, strerror(e));
		return -e;
	}
	while (!done) {
		/* the kernel processes the batch inside sendmsg(): every reply is
		 * queued by now, so an empty socket means it stopped early */
		ssize_t n = recv(fd, rbuf, sizeof(rbuf), MSG_DONTWAIT);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				errno = EPROTO;
			if (!first_err)
				first_err = -errno;
			pr_err(NL,
			       "table ip %s: reading the kernel's replies to the %s batch "
			       "failed: %s",
			       KP_TABLE, why, strerror(errno));
			return first_err;
		}
		for (struct nlmsghdr *h = (struct nlmsghdr *)rbuf; mnl_nlmsg_ok(h, (int)n);
		     h = mnl_nlmsg_next(h, (int *)&n)) {
			if (h->nlmsg_pid != portid)
				continue;
			if (h->nlmsg_type == NLMSG_ERROR) {
				const struct nlmsgerr *e = mnl_nlmsg_get_payload(h);

				if (e->error && !first_err) {
					first_err = e->error;
					err_seq = h->nlmsg_seq;
				}
				if (h->nlmsg_seq == last)
					done = true;
			}
		}
	}
	if (first_err && !(quiet_enoent && first_err == -ENOENT)) {
		char what[600];

		describe(b, err_seq, what, sizeof(what));
		pr_err(NL, "table ip %s: the kernel refused the %s batch at %s: %s", KP_TABLE, why,
		       what, strerror(-first_err));
	}
	return first_err;
}

/* --- ops -------------------------------------------------------------------------------- */

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int parse_cidr(const char *s, __be32 *net, __be32 *mask)
{
	char buf[64], *slash;
	struct in_addr a;
	long pl = 32;

	if (!s || strlen(s) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, s);
	slash = strchr(buf, '/');
	if (slash) {
		char *end;

		*slash = 0;
		pl = strtol(slash + 1, &end, 10);
		if (*end || pl < 0 || pl > 32)
			return -EINVAL;
	}
	if (inet_pton(AF_INET, buf, &a) != 1)
		return -EINVAL;
	*mask = pl ? htonl(0xffffffffu << (32 - pl)) : 0;
	*net = a.s_addr & *mask;
	return 0;
}

static struct pxy *nft_open(const struct pxy_cfg *cfg)
{
	struct pxy *p = calloc(1, sizeof(*p));
	char buf[16384];
	struct nlmsghdr *nlh;
	int rcv = 8 << 20, err = 0;
	ssize_t n;

	if (!p) {
		errno = ENOMEM;
		return NULL;
	}
	p->cfg = *cfg;
	p->cfg.node_name = NULL;
	p->masq_mark = 1u << (cfg->masq_bit ? cfg->masq_bit : 14);
	if (cfg->cluster_cidr) {
		if (parse_cidr(cfg->cluster_cidr, &p->cidr_net, &p->cidr_mask)) {
			pr_err(NL, "--cluster-cidr '%s': not an IPv4 CIDR", cfg->cluster_cidr);
			free(p);
			errno = EINVAL;
			return NULL;
		}
		p->have_cidr = true;
	}
	p->cfg.cluster_cidr = NULL;
	p->nl = nl_open(&p->portid);
	if (!p->nl) {
		err = errno;
		pr_err(NL,
		       "nf_tables is not available: opening a NETLINK_NETFILTER socket failed: "
		       "%s",
		       strerror(err));
		goto fail;
	}
	setsockopt(mnl_socket_get_fd(p->nl), SOL_SOCKET, SO_RCVBUFFORCE, &rcv, sizeof(rcv));
	/* NFT_MSG_GETGEN answers only when the nf_tables subsystem is there */
	nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETGEN, AF_UNSPEC, NLM_F_ACK, 1);
	if (mnl_socket_sendto(p->nl, nlh, nlh->nlmsg_len) < 0) {
		err = errno;
	} else {
		bool ok = false;

		while (!err && !ok && (n = mnl_socket_recvfrom(p->nl, buf, sizeof(buf))) > 0) {
			for (struct nlmsghdr *h = (struct nlmsghdr *)buf; mnl_nlmsg_ok(h, (int)n);
			     h = mnl_nlmsg_next(h, (int *)&n)) {
				if (h->nlmsg_type == NLMSG_ERROR) {
					const struct nlmsgerr *e = mnl_nlmsg_get_payload(h);

					if (e->error)
						err = -e->error;
					else
						ok = true;
				} else if (NFNL_MSG_TYPE(h->nlmsg_type) == NFT_MSG_NEWGEN) {
					ok = true;
				}
			}
		}
		if (!ok && !err)
			err = errno ? errno : EPROTO;
	}
	if (err) {
		pr_err(NL,
		       "nf_tables is not available in this kernel (%s): the nftables "
		       "dataplane needs CONFIG_NF_TABLES with nft_numgen, nft_fib, nft_nat "
		       "and nft_masq",
		       strerror(err));
		goto fail;
	}
	pr_info(NL,
		"kube-proxy's nftables table (ip %s) programmed through libnftnl, "
		"one transaction per sync",
		KP_TABLE);
	return p;
fail:
	if (p->nl)
		mnl_socket_close(p->nl);
	free(p);
	errno = err ? err : EIO;
	return NULL;
}

static int nft_set_node_addrs(struct pxy *p, const __be32 *addrs, size_t n)
{
	/* NodePorts answer on every local address (fib daddr type local) and the
	 * model keeps only local externalIPs, so nothing here depends on them. */
	(void)p, (void)addrs, (void)n;
	return 0;
}

static void pending_free(struct syncctx *x)
{
	for (size_t i = 0; i < x->n_pend; i++) {
		struct pending *pd = &x->pend[i];

		free(pd->owned);
		strv_free(pd->R.chains.v, pd->R.chains.n);
		strv_free(pd->R.sets.v, pd->R.sets.n);
		elems_free(pd->R.elems, pd->R.n_elems);
		free(pd->R.udp);
	}
	free(x->pend);
	x->pend = NULL;
	x->n_pend = 0;
}

static int nft_sync(struct pxy *p, const struct lbi *l, bool full)
{
	struct syncctx x = {.p = p, .full = full || !p->synced};
	struct batch *b = &p->b;
	double t0 = now_s(), t1;
	int err;

	if (x.full) {
		svc_table_free(p);
	} else {
		for (size_t i = 0; i < p->tab_n; i++)
			for (struct ksvc *s = p->tab[i]; s; s = s->next)
				s->seen = false;
	}
	err = lbi_foreach_fragment(l, on_fragment, &x);
	if (err) {
		pr_err(NL, "rendering the Services failed: %s", strerror(-err));
		goto out;
	}
	b_begin(b);
	if (x.full) {
		msg_table(b, NFT_MSG_NEWTABLE);
		msg_table(b, NFT_MSG_DELTABLE);
		msg_table(b, NFT_MSG_NEWTABLE);
		emit_static(p, b);
	}
	/* phase 1: removals of Services that went away, then of re-rendered ones */
	for (size_t i = 0; i < p->tab_n; i++) {
		for (struct ksvc *s = p->tab[i]; s; s = s->next)
			if (!s->seen)
				emit_removals(p, b, s, NULL, 0, NULL, 0, 0, NULL, 0);
	}
	for (size_t i = 0; i < x.n_pend; i++) {
		struct pending *pd = &x.pend[i];

		if (!x.full)
			emit_removals(p, b, pd->s, pd->R.chains.v, pd->R.chains.n, pd->R.sets.v,
				      pd->R.sets.n, pd->R.set_timeout, pd->R.elems, pd->R.n_elems);
	}
	/* phase 2: chains and sets first (elements and rules refer to them), then rules,
	 * then elements */
	for (size_t i = 0; i < x.n_pend; i++) {
		struct pending *pd = &x.pend[i];
		struct ksvc *s = pd->s;
		bool keep_sets = !x.full && s->set_timeout == pd->R.set_timeout;

		for (size_t j = 0; j < pd->R.chains.n; j++)
			if (x.full || !in_sorted(s->chains, s->n_chains, pd->R.chains.v[j]))
				msg_chain(b, NFT_MSG_NEWCHAIN, pd->R.chains.v[j], NULL, NULL);
		for (size_t j = 0; j < pd->R.sets.n; j++)
			if (!keep_sets || !in_sorted(s->sets, s->n_sets, pd->R.sets.v[j]))
				msg_set(b, NFT_MSG_NEWSET, pd->R.sets.v[j], NULL,
					pd->R.set_timeout ? pd->R.set_timeout : 10800);
	}
	for (size_t i = 0; i < x.n_pend; i++) {
		struct pending *pd = &x.pend[i];
		struct render E = {.p = p, .b = b};

		render_service(&E, pd->f, pd->owned);
		emit_elem_adds(p, b, x.full ? NULL : pd->s->elems, x.full ? 0 : pd->s->n_elems,
			       pd->R.elems, pd->R.n_elems);
	}
	if (b->oom) {
		err = -ENOMEM;
		pr_err(NL, "building the nftables batch: out of memory");
		goto out;
	}
	t1 = now_s();
	err = b_commit(b, p->nl, p->portid, x.full ? "full" : "partial", false);
	p->st.last_program_s = now_s() - t1;
	if (err)
		goto out;

	/* the kernel has it: record what is programmed now */
	for (size_t i = 0; i < p->tab_n; i++) {
		for (struct ksvc **pp = &p->tab[i]; *pp;) {
			struct ksvc *s = *pp;

			if (s->seen) {
				pp = &s->next;
				continue;
			}
			udp_clean(s->udp, s->n_udp, NULL, 0);
			p->total_rules -= s->n_rules;
			p->total_elems -= s->n_elems;
			*pp = s->next;
			ksvc_clear(s);
			free(s->key);
			free(s);
			p->n_svcs--;
		}
	}
	if (x.full)
		p->total_rules = p->total_elems = 0;
	for (size_t i = 0; i < x.n_pend; i++) {
		struct pending *pd = &x.pend[i];
		struct ksvc *s = pd->s;

		udp_sort(pd->R.udp, &pd->R.n_udp);
		if (!x.full)
			udp_clean(s->udp, s->n_udp, pd->R.udp, pd->R.n_udp);
		p->total_rules -= x.full ? 0 : s->n_rules;
		p->total_elems -= x.full ? 0 : s->n_elems;
		ksvc_clear(s);
		s->chains = pd->R.chains.v, s->n_chains = pd->R.chains.n;
		s->sets = pd->R.sets.v, s->n_sets = pd->R.sets.n;
		s->set_timeout = pd->R.set_timeout;
		s->elems = pd->R.elems, s->n_elems = pd->R.n_elems;
		s->udp = pd->R.udp, s->n_udp = pd->R.n_udp;
		s->n_rules = pd->R.n_rules;
		memset(&pd->R, 0, sizeof(pd->R));
		p->total_rules += s->n_rules;
		p->total_elems += s->n_elems;
	}
	p->synced = true;
	p->st.syncs++;
	p->st.services_rendered = x.rendered;
	p->st.rules = p->static_rules + p->total_rules + p->total_elems;
out:
	pending_free(&x);
	if (err) {
		p->st.sync_errors++;
		p->synced = false; /* next time: full, and forget what we thought was there */
	}
	p->st.last_sync_s = now_s() - t0;
	if (b->cap > (64u << 20))
		b_fini(b); /* do not keep a huge buffer around */
	return err;
}

static void nft_stats(const struct pxy *p, struct pxy_stats *out)
{
	*out = p->st;
}

static void nft_close(struct pxy *p)
{
	if (!p)
		return;
	svc_table_free(p);
	free(p->tab);
	free(p->ips);
	b_fini(&p->b);
	if (p->nl)
		mnl_socket_close(p->nl);
	free(p);
}

static int nft_cleanup(void)
{
	struct batch b = {0};
	struct mnl_socket *nl;
	uint32_t portid;
	int err;

	nl = nl_open(&portid);
	if (!nl)
		return 0; /* no nf_tables: nothing of ours can be there */
	b_begin(&b);
	msg_table(&b, NFT_MSG_DELTABLE);
	err = b.oom ? -ENOMEM : b_commit(&b, nl, portid, "cleanup", true);
	if (err == -ENOENT)
		err = 0; /* the table was not there */
	else if (!err)
		pr_info(NL, "table ip %s deleted", KP_TABLE);
	b_fini(&b);
	mnl_socket_close(nl);
	return err;
}

const struct pxy_ops pxy_nftables_ops = {
	.name = "nftables",
	.open = nft_open,
	.set_node_addrs = nft_set_node_addrs,
	.sync = nft_sync,
	.stats = nft_stats,
	.close = nft_close,
	.cleanup = nft_cleanup,
};
