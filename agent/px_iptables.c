// SPDX-License-Identifier: Apache-2.0
/*
 * `sluice-agent --dataplane iptables`: the model (agent/lbinc.h) programmed as
 * kube-proxy's iptables proxier programs it (kubernetes/kubernetes
 * pkg/proxy/iptables/proxier.go, v1.28+ with MinimizeIPTablesRestore), so a
 * benchmark against it compares against what clusters really run.
 *
 * What is written, per Service port (svcPortName "ns/name[:port]"):
 *
 *   nat KUBE-SERVICES   -d ClusterIP --dport P        -j KUBE-SVC-H | KUBE-SVL-H (iTP Local)
 *                       -d externalIP/LB IP --dport P -j KUBE-EXT-H
 *                       ...; last: -m addrtype --dst-type LOCAL ! -d 127/8 -j KUBE-NODEPORTS
 *   nat KUBE-NODEPORTS  --dport nodePort -j KUBE-EXT-H
 *   KUBE-SVC-H          cluster-set endpoints: [! -s clusterCIDR] masquerade mark for
 *   KUBE-SVL-H          the ClusterIP, `recent --rcheck` per endpoint with affinity,
 *                       then the statistic cascade 1/n, 1/(n-1), ... (%0.10f)
 *   KUBE-EXT-H          eTP Cluster: mark masq, -j KUBE-SVC-H. eTP Local: pods
 *                       (-s clusterCIDR) and the host (--src-type LOCAL, masqueraded)
 *                       short-circuit to KUBE-SVC-H, the rest -j KUBE-SVL-H
 *   KUBE-SEP-E          -s ep -j KUBE-MARK-MASQ (hairpin); [recent --set] DNAT ep
 *   filter KUBE-SERVICES / KUBE-EXTERNAL-SERVICES: REJECT ("has no endpoints") or
 *                       DROP ("has no local endpoints") where nat has nothing to do
 *   filter KUBE-NODEPORTS: ACCEPT healthCheckNodePort; KUBE-FORWARD; KUBE-PROXY-FIREWALL
 *   KUBE-POSTROUTING / KUBE-MARK-MASQ: the 0x4000 mark, MASQUERADE --random-fully
 *
 * H = base32(sha256(svcPortName + proto))[:16], E the same over + "ip:port".
 *
 * Sync: one `iptables-restore -w 5 -W 100000 --noflush --counters` per sync,
 * fed through a pipe (no shell). Like kube-proxy's partial sync, KUBE-SERVICES,
 * KUBE-NODEPORTS and the filter chains are rewritten every time (a restore
 * cannot edit a chain in place) while the per-Service chains are written only
 * for Services whose fragment changed (lbi gen) and on full syncs; chains a
 * Service no longer uses, and every chain of a Service that went away, are
 * flushed and deleted (-X) in the same transaction. A full sync (start, or
 * after a failure) also reads `iptables-save`: stale KUBE-SVC/SVL/EXT/FW/SEP
 * chains a previous run left behind are deleted, and the hook jumps from the
 * built-in chains that are missing are inserted ("-I") in the same restore
 * (kube-proxy runs `iptables -C`/`-I` per jump; each dumps the whole table).
 * Rendering is a pure function over the fragments (pxy_ipt_render), linear in
 * what it writes, into growing buffers.
 *
 * UDP: when endpoints of a UDP Service port go away their conntrack entries
 * are deleted (`conntrack -D --orig-dst VIP --dst-nat EP`, the NodePort by
 * port), and when a UDP port gets its first endpoint the entries that
 * blackholed on the rejected VIP are cleared, as kube-proxy does.
 *
 * Differences, on purpose: no KUBE-PROXY-CANARY monitoring (the agent resyncs
 * with full on any failure), no localhost NodePorts (route_localnet is not
 * set, so 127/8 is excluded as with --iptables-localhost-nodeports=false), no
 * loadBalancerSourceRanges (the model does not carry them yet, so KUBE-FW-*
 * and KUBE-PROXY-FIREWALL stay empty), order of KUBE-SERVICES is the lbi's
 * (kube-proxy's is Go map order, random per sync).
 *
 * Not thread-safe: the agent's event loop owns the handle.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lbinc.h"
#include "model.h"
#include "exec.h"
#include "proxier.h"
#include "px_iptables.h"
#include "sluice/buf.h"
#include "sluice/err.h"
#include "sluice/log.h"
#include "sluice/sha256.h"

#define IPT "iptables"

/* kube-proxy's largeClusterEndpointsThreshold: above it, per-endpoint comments go. */
#define LARGE_CLUSTER_ENDPOINTS 1000
#define CHAIN_LEN		32 /* "KUBE-SEP-" + 16 + NUL, with room */

/* One UDP frontend or endpoint as last programmed, for conntrack cleanup. */
struct ct_ent {
	uint64_t port_id; /* first 8 bytes of the service port's hash */
	__be32 addr;	  /* VIP (0 with nodeport) or endpoint address */
	__be16 port;	  /* frontend port / nodePort; 0 for endpoints */
	bool nodeport;
};

/* One Service as last rendered. */
struct ipt_svc {
	char *key;		   /* "ns/name" */
	uint64_t gen;		   /* fragment generation written */
	char (*chains)[CHAIN_LEN]; /* nat chains it owns, sorted */
	size_t n_chains;
	size_t n_rules;	      /* rules in those chains */
	struct ct_ent *ct_fe; /* UDP frontends */
	size_t n_ct_fe;
	struct ct_ent *ct_ep; /* UDP endpoints (all locally reachable) */
	size_t n_ct_ep;
	bool seen;   /* its Service is still there this render */
	bool reused; /* unchanged: moved as is into the new generation */
};

/* A queued conntrack deletion. */
struct ct_del {
	__be32 vip;  /* 0 = by port (NodePort) */
	__be16 port; /* NodePort when vip is 0 */
	__be32 ep;   /* 0 = every entry to the frontend (first endpoint case) */
};

struct pxy {
	char restore[64]; /* iptables-restore binary */
	char cli[64];	  /* iptables binary (hook jumps) */
	char save[64];	  /* iptables-save binary */
	char cluster_cidr[48];
	bool masq_all;
	bool be_liberal; /* nf_conntrack_tcp_be_liberal: no INVALID drop */
	uint32_t mark;	 /* 1 << masq_bit */
	bool large;	 /* large-cluster mode at the last render */
	bool rendered;	 /* a render happened (previous state is known) */
	bool need_full;	 /* a restore failed: the kernel state is unknown */

	struct ipt_svc **svcs; /* last rendered Services */
	size_t n_svcs;
	struct ipt_svc **idx; /* open-addressing index over svcs, by key */
	size_t idx_cap;

	struct ct_del *ct; /* conntrack deletions queued by the last render */
	size_t n_ct, cap_ct;

	size_t global_rules; /* rules in the chains rewritten every sync */
	struct pxy_stats st;

	/* Render buffers, kept across syncs (reset, not freed): at 10k Services
	 * the text is tens of MB and first-touch page faults cost more than
	 * writing it, as kube-proxy's reused buffers avoid too. */
	struct sl_buf b_filter, b_chains, b_rules, b_dels, b_out;
};

/* --- small helpers ------------------------------------------------------------------------ */

static double now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static const char *proto_name(uint8_t p)
{
	return p == IPPROTO_UDP ? "udp" : p == IPPROTO_SCTP ? "sctp" : "tcp";
}

static void put_ip(struct sl_buf *b, __be32 a)
{
	char s[INET_ADDRSTRLEN];

	inet_ntop(AF_INET, &a, s, sizeof(s));
	sl_buf_puts(b, s);
}

static void put_u(struct sl_buf *b, unsigned long v)
{
	char s[24], *e = s + sizeof(s), *q = e;

	do
		*--q = (char)('0' + v % 10);
	while (v /= 10);
	sl_buf_append(b, q, (size_t)(e - q));
}

/* Appends each NULL-terminated argument, as one stretch of text. */
/* The sentinel is a typed null pointer: a bare NULL may be an int 0 in a
 * variadic call (cppcheck varFuncNullUB). */
#define PUT_END ((const char *)NULL)
static void put(struct sl_buf *b, ...) __attribute__((sentinel));
static void put(struct sl_buf *b, ...)
{
	va_list ap;
	const char *s;

	va_start(ap, b);
	while ((s = va_arg(ap, const char *)))
		sl_buf_puts(b, s);
	va_end(ap);
}

static uint64_t fnv(const char *s)
{
	uint64_t h = 1469598103934665603ull;

	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 1099511628211ull;
	return h;
}

/* --- names -------------------------------------------------------------------------------- */

static void chain_name_hash(char *out, const char *prefix, const uint8_t d[SL_SHA256_LEN])
{
	static const char b32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
	size_t n = strlen(prefix);

	memcpy(out, prefix, n);
	/* 16 base32 characters = the first 80 bits = 10 bytes, two 40-bit groups. */
	for (int g = 0; g < 2; g++) {
		uint64_t v = 0;

		for (int i = 0; i < 5; i++)
			v = v << 8 | d[5 * g + i];
		for (int i = 0; i < 8; i++)
			out[n++] = b32[(v >> (35 - 5 * i)) & 31];
	}
	out[n] = '\0';
}

void pxy_ipt_chain_name(char *out, const char *prefix, const char *svc_port_name, const char *proto,
			const char *endpoint)
{
	struct sl_sha256 c;
	uint8_t d[SL_SHA256_LEN];

	sl_sha256_init(&c);
	sl_sha256_update(&c, svc_port_name, strlen(svc_port_name));
	sl_sha256_update(&c, proto, strlen(proto));
	if (endpoint)
		sl_sha256_update(&c, endpoint, strlen(endpoint));
	sl_sha256_final(&c, d);
	chain_name_hash(out, prefix, d);
}

/* --- the previous state ------------------------------------------------------------------- */

static void svc_free(struct ipt_svc *s)
{
	if (!s)
		return;
	free(s->key);
	free(s->chains);
	free(s->ct_fe);
	free(s->ct_ep);
	free(s);
}

static struct ipt_svc *idx_find(const struct pxy *p, const char *key)
{
	if (!p->idx_cap)
		return NULL;
	for (size_t i = fnv(key) & (p->idx_cap - 1);; i = (i + 1) & (p->idx_cap - 1)) {
		struct ipt_svc *s = p->idx[i];

		if (!s)
			return NULL;
		if (!strcmp(s->key, key))
			return s;
	}
}

static int idx_build(struct pxy *p)
{
	size_t cap = 16;

	while (cap < p->n_svcs * 2)
		cap *= 2;
	free(p->idx);
	p->idx = calloc(cap, sizeof(*p->idx));
	p->idx_cap = p->idx ? cap : 0;
	if (!p->idx)
		return -ENOMEM;
	for (size_t k = 0; k < p->n_svcs; k++) {
		size_t i = fnv(p->svcs[k]->key) & (cap - 1);

		while (p->idx[i])
			i = (i + 1) & (cap - 1);
		p->idx[i] = p->svcs[k];
	}
	return 0;
}

static int chain_cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* --- hook jumps -------------------------------------------------------------------------- */

struct jump {
	const char *table, *from, *to, *comment;
	bool new_only; /* -m conntrack --ctstate NEW */
};

/* kube-proxy's iptablesJumpChains, in its order (each is prepended). */
static const struct jump jumps[] = {
	{"filter", "INPUT", "KUBE-EXTERNAL-SERVICES",
	 "kubernetes externally-visible service portals", true},
	{"filter", "FORWARD", "KUBE-EXTERNAL-SERVICES",
	 "kubernetes externally-visible service portals", true},
	{"filter", "INPUT", "KUBE-NODEPORTS", "kubernetes health check service ports", false},
	{"filter", "FORWARD", "KUBE-SERVICES", "kubernetes service portals", true},
	{"filter", "OUTPUT", "KUBE-SERVICES", "kubernetes service portals", true},
	{"filter", "FORWARD", "KUBE-FORWARD", "kubernetes forwarding rules", false},
	{"filter", "INPUT", "KUBE-PROXY-FIREWALL", "kubernetes load balancer firewall", true},
	{"filter", "OUTPUT", "KUBE-PROXY-FIREWALL", "kubernetes load balancer firewall", true},
	{"filter", "FORWARD", "KUBE-PROXY-FIREWALL", "kubernetes load balancer firewall", true},
	{"nat", "OUTPUT", "KUBE-SERVICES", "kubernetes service portals", false},
	{"nat", "PREROUTING", "KUBE-SERVICES", "kubernetes service portals", false},
	{"nat", "POSTROUTING", "KUBE-POSTROUTING", "kubernetes postrouting rules", false},
};

/* The jump as iptables-save prints it, minus "-A <from>". */
static void jump_spec(const struct jump *j, struct sl_buf *b)
{
	if (j->new_only)
		put(b, " -m conntrack --ctstate NEW", PUT_END);
	put(b, " -m comment --comment \"", j->comment, "\" -j ", j->to, PUT_END);
}

/*
 * Jumps from the built-in chains that save (iptables-save text) lacks, as
 * "-I" lines of table's block. kube-proxy checks each with `iptables -C` and
 * prepends it with `iptables -I`; with a big table every such call dumps the
 * whole table (seconds at 10k Services), so the check reads the dump the full
 * sync takes anyway and the insert rides in the same restore transaction.
 */
static void write_jumps(size_t *rules, const char *save, const char *table, struct sl_buf *out)
{
	const char *sec = NULL, *end;
	char hdr[16];

	snprintf(hdr, sizeof(hdr), "*%s\n", table);
	if (save && (sec = strstr(save, hdr)) && sec != save && sec[-1] != '\n')
		sec = NULL;
	end = sec ? strstr(sec, "\nCOMMIT") : NULL;
	for (size_t i = 0; i < sizeof(jumps) / sizeof(jumps[0]); i++) {
		const struct jump *j = &jumps[i];
		struct sl_buf want = SL_BUF_INIT;
		const char *hit = NULL;

		if (strcmp(j->table, table))
			continue;
		put(&want, "\n-A ", j->from, PUT_END);
		jump_spec(j, &want);
		put(&want, "\n", PUT_END);
		if (sec && want.data)
			hit = strstr(sec, want.data);
		if (!hit || (end && hit > end)) {
			put(out, "-I ", j->from, PUT_END);
			jump_spec(j, out);
			put(out, "\n", PUT_END);
		}
		(*rules)++;
		sl_buf_fini(&want);
	}
}

/* --- rendering ---------------------------------------------------------------------------- */

struct rctx {
	struct pxy *p;
	bool full;
	bool large;
	bool from_save;	      /* deletions come from iptables-save, not the records */
	size_t rendered;      /* Services whose chains were written */
	struct sl_buf filter; /* filter rules (buffers borrowed from the pxy) */
	struct sl_buf chains; /* nat chain declarations (":X - [0:0]") */
	struct sl_buf rules;  /* nat rules */
	struct sl_buf dels;   /* nat "-X" lines */
	size_t global_rules;
	struct ipt_svc **next; /* the new generation */
	size_t n_next, cap_next;
	/* Per-service scratch, reused. */
	char (*sc)[CHAIN_LEN];
	size_t n_sc, cap_sc;
	size_t sc_rules;
	struct ct_ent *fe, *ep;
	size_t n_fe, cap_fe, n_ep, cap_ep;
	uint8_t *mark; /* per backend of the fragment */
	size_t cap_mark;
	char mark_str[16]; /* "0x4000" */
	bool oom;
};

static void add_chain(struct rctx *r, const char *name)
{
	if (r->n_sc == r->cap_sc) {
		size_t cap = r->cap_sc ? 2 * r->cap_sc : 16;
		void *v = realloc(r->sc, cap * sizeof(*r->sc));

		if (!v) {
			r->oom = true;
			return;
		}
		r->sc = v;
		r->cap_sc = cap;
	}
	snprintf(r->sc[r->n_sc++], CHAIN_LEN, "%s", name);
	put(&r->chains, ":", name, " - [0:0]\n", PUT_END);
}

static void add_ct(struct rctx *r, bool ep, uint64_t id, __be32 addr, __be16 port, bool np)
{
	struct ct_ent **v = ep ? &r->ep : &r->fe;
	size_t *n = ep ? &r->n_ep : &r->n_fe, *cap = ep ? &r->cap_ep : &r->cap_fe;

	if (*n == *cap) {
		size_t c = *cap ? 2 * *cap : 8;
		void *nv = realloc(*v, c * sizeof(**v));

		if (!nv) {
			r->oom = true;
			return;
		}
		*v = nv;
		*cap = c;
	}
	(*v)[(*n)++] = (struct ct_ent){id, addr, port, np};
}

static void queue_ct(struct pxy *p, __be32 vip, __be16 port, __be32 ep)
{
	if (p->n_ct == p->cap_ct) {
		size_t c = p->cap_ct ? 2 * p->cap_ct : 16;
		void *v = realloc(p->ct, c * sizeof(*p->ct));

		if (!v)
			return; /* best effort: stale UDP flows then age out */
		p->ct = v;
		p->cap_ct = c;
	}
	p->ct[p->n_ct++] = (struct ct_del){vip, port, ep};
}

/* "-m comment --comment X " unless large-cluster mode drops per-endpoint comments. */
static void ep_comment(struct rctx *r, struct sl_buf *b, const char *spn, const char *ep)
{
	if (r->large)
		return;
	if (ep)
		put(b, " -m comment --comment \"", spn, " -> ", ep, "\"", PUT_END);
	else
		put(b, " -m comment --comment ", spn, PUT_END);
}

/* One Service port's facts, derived from its frontends (model.h's table). */
struct sport {
	const struct lbm_state *f;
	const char *spn;   /* svcPortName */
	const char *proto; /* "tcp" */
	char svc[CHAIN_LEN], svl[CHAIN_LEN], ext[CHAIN_LEN];
	const struct lbm_frontend *cip;
	const struct lbm_frontend *xfe[64]; /* external frontends, EXT scope */
	size_t n_xfe;
	const struct lbm_frontend *cluster, *local; /* carrying each endpoint set */
	bool itp_local, etp_local, has_eps, has_int_eps, has_ext_eps;
	bool uses_cluster, uses_local, uses_ext;
	bool affinity;
	uint32_t affinity_s;
};

/* KUBE-SVC/KUBE-SVL body: masquerade, affinity checks, the probability cascade. */
static void write_policy_chain(struct rctx *r, const struct sport *sp, const char *chain,
			       const struct lbm_frontend *set, const char (*sep)[CHAIN_LEN],
			       char (*eps)[24])
{
	struct sl_buf *b = &r->rules;
	uint16_t n = set->count;

	if (sp->cip && sp->cip->count && !strcmp(chain, sp->itp_local ? sp->svl : sp->svc) &&
	    (r->p->masq_all || r->p->cluster_cidr[0])) {
		/* Off-cluster clients of the ClusterIP are masqueraded, so replies from an
		 * endpoint on another node come back through this one. */
		put(b, "-A ", chain, " -m comment --comment \"", sp->spn, " cluster IP\" -m ",
		    sp->proto, " -p ", sp->proto, " -d ", PUT_END);
		put_ip(b, sp->cip->key.addr);
		put(b, " --dport ", PUT_END);
		put_u(b, ntohs(sp->cip->key.port));
		if (!r->p->masq_all)
			put(b, " ! -s ", r->p->cluster_cidr, PUT_END);
		put(b, " -j KUBE-MARK-MASQ\n", PUT_END);
		r->sc_rules++;
	}
	if (sp->affinity) {
		for (uint16_t i = 0; i < n; i++) {
			uint32_t e = set->be[i];

			put(b, "-A ", chain, PUT_END);
			ep_comment(r, b, sp->spn, eps[e]);
			put(b, " -m recent --name ", sep[e], " --rcheck --seconds ", PUT_END);
			put_u(b, sp->affinity_s);
			put(b, " --reap -j ", sep[e], "\n", PUT_END);
			r->sc_rules++;
		}
	}
	for (uint16_t i = 0; i < n; i++) {
		uint32_t e = set->be[i];

		put(b, "-A ", chain, PUT_END);
		ep_comment(r, b, sp->spn, eps[e]);
		if (i + 1 < n) {
			char pr[32];

			/* kube-proxy's probability(n): fmt "%0.10f" of 1/n. */
			snprintf(pr, sizeof(pr), "%0.10f", 1.0 / (double)(n - i));
			put(b, " -m statistic --mode random --probability ", pr, PUT_END);
		}
		put(b, " -j ", sep[e], "\n", PUT_END);
		r->sc_rules++;
	}
}

/* Rules of one Service port in the chains rewritten every sync. */
static void write_port_global(struct rctx *r, const struct sport *sp, uint16_t hc_port)
{
	const char *int_chain = sp->itp_local ? sp->svl : sp->svc;
	const char *ext_chain = sp->ext;
	const char *itgt = sp->has_eps ? "DROP" : "REJECT";
	const char *icmt = sp->has_eps ? "has no local endpoints" : "has no endpoints";
	const char *xtgt = itgt, *xcmt = icmt;

	if (sp->cip) {
		if (sp->has_int_eps) {
			put(&r->rules, "-A KUBE-SERVICES -m comment --comment \"", sp->spn,
			    " cluster IP\" -m ", sp->proto, " -p ", sp->proto, " -d ", PUT_END);
			put_ip(&r->rules, sp->cip->key.addr);
			put(&r->rules, " --dport ", PUT_END);
			put_u(&r->rules, ntohs(sp->cip->key.port));
			put(&r->rules, " -j ", int_chain, "\n", PUT_END);
		} else {
			put(&r->filter, "-A KUBE-SERVICES -m comment --comment \"", sp->spn, " ",
			    icmt, "\" -m ", sp->proto, " -p ", sp->proto, " -d ", PUT_END);
			put_ip(&r->filter, sp->cip->key.addr);
			put(&r->filter, " --dport ", PUT_END);
			put_u(&r->filter, ntohs(sp->cip->key.port));
			put(&r->filter, " -j ", itgt, "\n", PUT_END);
		}
		r->global_rules++;
	}
	/* externalIPs, then LB IPs, then the NodePort, as kube-proxy writes them. */
	for (int pass = 0; pass < 3; pass++) {
		uint16_t want = pass == 0   ? SL_SVC_F_EXTERNALIP
				: pass == 1 ? SL_SVC_F_LOADBALANCER
					    : SL_SVC_F_NODEPORT;

		for (size_t i = 0; i < sp->n_xfe; i++) {
			const struct lbm_frontend *fe = sp->xfe[i];
			bool np = pass == 2;

			if (!(fe->flags & want))
				continue;
			if (sp->has_eps) {
				if (np) {
					put(&r->rules, "-A KUBE-NODEPORTS -m comment --comment ",
					    sp->spn, " -m ", sp->proto, " -p ", sp->proto,
					    " --dport ", PUT_END);
				} else {
					put(&r->rules, "-A KUBE-SERVICES -m comment --comment \"",
					    sp->spn, pass ? " loadbalancer IP" : " external IP",
					    "\" -m ", sp->proto, " -p ", sp->proto, " -d ",
					    PUT_END);
					put_ip(&r->rules, fe->key.addr);
					put(&r->rules, " --dport ", PUT_END);
				}
				put_u(&r->rules, ntohs(fe->key.port));
				put(&r->rules, " -j ", ext_chain, "\n", PUT_END);
				r->global_rules++;
			}
			if (!sp->has_ext_eps) {
				/* Nothing for outside clients: REJECT, or DROP what the
				 * EXT chain's short circuit did not take. */
				put(&r->filter, "-A KUBE-EXTERNAL-SERVICES -m comment --comment \"",
				    sp->spn, " ", xcmt, "\"", PUT_END);
				if (np)
					put(&r->filter, " -m addrtype --dst-type LOCAL", PUT_END);
				put(&r->filter, " -m ", sp->proto, " -p ", sp->proto, PUT_END);
				if (!np) {
					put(&r->filter, " -d ", PUT_END);
					put_ip(&r->filter, fe->key.addr);
				}
				put(&r->filter, " --dport ", PUT_END);
				put_u(&r->filter, ntohs(fe->key.port));
				put(&r->filter, " -j ", xtgt, "\n", PUT_END);
				r->global_rules++;
			}
		}
	}
	if (hc_port) {
		put(&r->filter, "-A KUBE-NODEPORTS -m comment --comment \"", sp->spn,
		    " health check node port\" -m tcp -p tcp --dport ", PUT_END);
		put_u(&r->filter, hc_port);
		put(&r->filter, " -j ACCEPT\n", PUT_END);
		r->global_rules++;
	}
}

/* The per-Service chains of one port (only when the Service is re-rendered). */
static void write_port_chains(struct rctx *r, struct sport *sp, uint64_t port_id)
{
	const struct lbm_state *f = sp->f;
	struct sl_buf *b = &r->rules;
	char(*sep)[CHAIN_LEN] = NULL;
	char(*eps)[24] = NULL;
	bool udp = !strcmp(sp->proto, "udp");

	if (sp->uses_ext) {
		add_chain(r, sp->ext);
		if (!sp->etp_local) {
			put(b, "-A ", sp->ext, " -m comment --comment \"masquerade traffic for ",
			    sp->spn, " external destinations\" -j KUBE-MARK-MASQ\n", PUT_END);
			r->sc_rules++;
		} else {
			/* Pods and the host reaching an external address behave as if
			 * they went out to the LB and came back: the cluster-wide set. */
			if (r->p->cluster_cidr[0]) {
				put(b, "-A ", sp->ext, " -m comment --comment \"pod traffic for ",
				    sp->spn, " external destinations\" -s ", r->p->cluster_cidr,
				    " -j ", sp->svc, "\n", PUT_END);
				r->sc_rules++;
			}
			put(b, "-A ", sp->ext,
			    " -m comment --comment \"masquerade LOCAL traffic for ", sp->spn,
			    " external destinations\" -m addrtype --src-type LOCAL -j "
			    "KUBE-MARK-MASQ\n",
			    "-A ", sp->ext, " -m comment --comment \"route LOCAL traffic for ",
			    sp->spn, " external destinations\" -m addrtype --src-type LOCAL -j ",
			    sp->svc, "\n", PUT_END);
			r->sc_rules += 2;
		}
		if (sp->has_ext_eps) {
			put(b, "-A ", sp->ext, " -j ", sp->etp_local ? sp->svl : sp->svc, "\n",
			    PUT_END);
			r->sc_rules++;
		}
	}

	/* Endpoint chains of every locally reachable endpoint (both sets). */
	if (f->n_backends > r->cap_mark) {
		void *v = realloc(r->mark, f->n_backends);

		if (!v) {
			r->oom = true;
			return;
		}
		r->mark = v;
		r->cap_mark = f->n_backends;
	}
	if (f->n_backends)
		memset(r->mark, 0, f->n_backends);
	if (sp->uses_cluster)
		for (uint16_t i = 0; i < sp->cluster->count; i++)
			r->mark[sp->cluster->be[i]] = 1;
	if (sp->uses_local)
		for (uint16_t i = 0; i < sp->local->count; i++)
			r->mark[sp->local->be[i]] = 1;
	sep = calloc(f->n_backends ? f->n_backends : 1, sizeof(*sep));
	eps = calloc(f->n_backends ? f->n_backends : 1, sizeof(*eps));
	if (!sep || !eps) {
		r->oom = true;
		goto out;
	}
	for (size_t e = 0; e < f->n_backends; e++) {
		const struct lbm_backend *be = &f->backends[e];
		char ip[INET_ADDRSTRLEN];

		if (!r->mark[e])
			continue;
		inet_ntop(AF_INET, &be->addr, ip, sizeof(ip));
		snprintf(eps[e], sizeof(eps[e]), "%s:%u", ip, ntohs(be->port));
		pxy_ipt_chain_name(sep[e], "KUBE-SEP-", sp->spn, sp->proto, eps[e]);
	}

	if (sp->uses_cluster) {
		add_chain(r, sp->svc);
		write_policy_chain(r, sp, sp->svc, sp->cluster, sep, eps);
	}
	if (sp->uses_local) {
		add_chain(r, sp->svl);
		write_policy_chain(r, sp, sp->svl, sp->local, sep, eps);
	}
	for (size_t e = 0; e < f->n_backends; e++) {
		const struct lbm_backend *be = &f->backends[e];

		if (!r->mark[e])
			continue;
		add_chain(r, sep[e]);
		put(b, "-A ", sep[e], PUT_END);
		ep_comment(r, b, sp->spn, NULL);
		put(b, " -s ", PUT_END);
		put_ip(b, be->addr);
		put(b, " -j KUBE-MARK-MASQ\n-A ", sep[e], PUT_END);
		ep_comment(r, b, sp->spn, NULL);
		if (sp->affinity)
			put(b, " -m recent --name ", sep[e], " --set", PUT_END);
		put(b, " -m ", sp->proto, " -p ", sp->proto, " -j DNAT --to-destination ", eps[e],
		    "\n", PUT_END);
		r->sc_rules += 2;
		if (udp)
			add_ct(r, true, port_id, be->addr, 0, false);
	}
out:
	free(sep);
	free(eps);
}

static bool is_external(const struct lbm_frontend *fe)
{
	return fe->flags & (SL_SVC_F_NODEPORT | SL_SVC_F_EXTERNALIP | SL_SVC_F_LOADBALANCER);
}

/* Fills sp for port pi of fragment f from its owned frontends; false when it has none. */
static bool port_facts(struct sport *sp, const struct lbm_state *f, const bool *owned, uint32_t pi)
{
	const struct lbm_frontend *xint = NULL;
	bool any = false;

	for (size_t k = 0; k < f->n_frontends; k++) {
		const struct lbm_frontend *fe = &f->frontends[k];

		if (fe->port_idx != pi || !owned[k])
			continue;
		if (!any)
			sp->proto = proto_name(fe->key.proto);
		any = true;
		if (fe->count || fe->drop)
			sp->has_eps = true;
		if (fe->flags & SL_SVC_F_AFFINITY) {
			sp->affinity = true;
			sp->affinity_s = fe->affinity_s;
		}
		if (fe->key.scope == SL_SCOPE_INT) {
			/* INT of an external frontend (eTP Local) carries the cluster
			 * set; INT of the ClusterIP (iTP Local) the local set again. */
			if (is_external(fe) && !xint)
				xint = fe;
			continue;
		}
		if (fe->flags & SL_SVC_F_CLUSTERIP) {
			sp->cip = fe;
			sp->itp_local = fe->flags & SL_SVC_F_LOCAL_INT;
		} else if (is_external(fe) && sp->n_xfe < sizeof(sp->xfe) / sizeof(sp->xfe[0])) {
			sp->xfe[sp->n_xfe++] = fe;
			if (fe->flags & SL_SVC_F_LOCAL_EXT)
				sp->etp_local = true;
		}
	}
	if (!any)
		return false;
	if (sp->cip)
		*(sp->itp_local ? &sp->local : &sp->cluster) = sp->cip;
	if (sp->n_xfe) {
		if (sp->etp_local) {
			if (!sp->local)
				sp->local = sp->xfe[0];
			if (!sp->cluster)
				sp->cluster = xint;
		} else if (!sp->cluster) {
			sp->cluster = sp->xfe[0];
		}
	}
	sp->has_int_eps = sp->cip && sp->cip->count;
	sp->has_ext_eps = sp->n_xfe && sp->xfe[0]->count;
	/* pkg/proxy ServicePort UsesClusterEndpoints / UsesLocalEndpoints. */
	sp->uses_cluster = sp->cluster && sp->cluster->count && (!sp->itp_local || sp->n_xfe);
	sp->uses_local =
		sp->local && sp->local->count && (sp->itp_local || (sp->etp_local && sp->n_xfe));
	sp->uses_ext = sp->has_eps && sp->n_xfe;
	return true;
}

/* Deletes the chains in old[] that are not in cur[] (both sorted). */
static void delete_gone(struct rctx *r, const char (*old)[CHAIN_LEN], size_t n_old,
			const char (*cur)[CHAIN_LEN], size_t n_cur)
{
	size_t j = 0;

	if (r->from_save)
		return; /* the kernel's own list decides (pxy_ipt_render) */
	for (size_t i = 0; i < n_old; i++) {
		int c = 1;

		while (j < n_cur && (c = strcmp(cur[j], old[i])) < 0)
			j++;
		if (j < n_cur && c == 0)
			continue;
		/* Declaring flushes it (--noflush keeps undeclared chains), so -X finds
		 * it empty once this transaction rewrote whatever jumped to it. */
		put(&r->chains, ":", old[i], " - [0:0]\n", PUT_END);
		put(&r->dels, "-X ", old[i], "\n", PUT_END);
	}
}

/* Conntrack deletions between a Service's previous UDP state and its new one. */
static void diff_ct(struct pxy *p, const struct ipt_svc *old, const struct ipt_svc *cur)
{
	/* Endpoints that went away: their flows to every frontend of the port. */
	for (size_t i = 0; old && i < old->n_ct_ep; i++) {
		const struct ct_ent *e = &old->ct_ep[i];
		bool kept = false;

		for (size_t j = 0; cur && j < cur->n_ct_ep && !kept; j++)
			kept = cur->ct_ep[j].port_id == e->port_id && cur->ct_ep[j].addr == e->addr;
		if (kept)
			continue;
		for (size_t k = 0; k < old->n_ct_fe; k++)
			if (old->ct_fe[k].port_id == e->port_id)
				queue_ct(p, old->ct_fe[k].addr, old->ct_fe[k].port, e->addr);
	}
	/* Ports that got their first endpoint: flows that hit the rejected VIP. */
	for (size_t k = 0; cur && p->rendered && k < cur->n_ct_fe; k++) {
		const struct ct_ent *fe = &cur->ct_fe[k];
		bool had = false, has = false;

		for (size_t j = 0; old && j < old->n_ct_ep && !had; j++)
			had = old->ct_ep[j].port_id == fe->port_id;
		for (size_t j = 0; j < cur->n_ct_ep && !has; j++)
			has = cur->ct_ep[j].port_id == fe->port_id;
		if (has && !had)
			queue_ct(p, fe->addr, fe->port, 0);
	}
}

static int next_push(struct rctx *r, struct ipt_svc *s)
{
	if (r->n_next == r->cap_next) {
		size_t c = r->cap_next ? 2 * r->cap_next : 64;
		void *v = realloc(r->next, c * sizeof(*r->next));

		if (!v)
			return -ENOMEM;
		r->next = v;
		r->cap_next = c;
	}
	r->next[r->n_next++] = s;
	return 0;
}

static int render_fragment(const struct lbm_state *f, const bool *owned, uint64_t gen, void *arg)
{
	struct rctx *r = arg;
	struct pxy *p = r->p;
	const struct lbm_service *svc = &f->services[0];
	struct ipt_svc *old, *cur = NULL;
	char key[320];
	bool write;

	snprintf(key, sizeof(key), "%s/%s", svc->ns, svc->name);
	old = idx_find(p, key);
	write = r->full || !old || old->gen != gen;
	if (old)
		old->seen = true;
	if (!write) {
		old->reused = true;
		cur = old;
	} else {
		cur = calloc(1, sizeof(*cur));
		if (!cur || !(cur->key = strdup(key))) {
			free(cur);
			return -ENOMEM;
		}
		cur->gen = gen;
		r->rendered++;
		r->n_sc = r->sc_rules = r->n_fe = r->n_ep = 0;
	}
	if (next_push(r, cur)) {
		if (cur != old)
			svc_free(cur);
		return -ENOMEM;
	}

	for (uint32_t pi = 0; pi < svc->n_ports; pi++) {
		struct sport sp = {.f = f};
		char spn[384];
		uint8_t d[SL_SHA256_LEN];
		struct sl_sha256 c;
		uint64_t port_id = 0;

		if (!port_facts(&sp, f, owned, pi))
			continue;
		snprintf(spn, sizeof(spn), "%s%s%s", key, svc->port_names[pi][0] ? ":" : "",
			 svc->port_names[pi]);
		sp.spn = spn;
		sl_sha256_init(&c);
		sl_sha256_update(&c, spn, strlen(spn));
		sl_sha256_update(&c, sp.proto, strlen(sp.proto));
		sl_sha256_final(&c, d);
		chain_name_hash(sp.svc, "KUBE-SVC-", d);
		chain_name_hash(sp.svl, "KUBE-SVL-", d);
		chain_name_hash(sp.ext, "KUBE-EXT-", d);
		memcpy(&port_id, d, sizeof(port_id));
		if (!sp.n_xfe)
			snprintf(sp.ext, sizeof(sp.ext), "%s", sp.svc); /* no EXT chain */

		write_port_global(r, &sp, svc->hc_node_port);
		if (!write)
			continue;
		write_port_chains(r, &sp, port_id);
		if (!strcmp(sp.proto, "udp")) {
			if (sp.cip)
				add_ct(r, false, port_id, sp.cip->key.addr, sp.cip->key.port,
				       false);
			for (size_t i = 0; i < sp.n_xfe; i++) {
				bool np = sp.xfe[i]->flags & SL_SVC_F_NODEPORT;

				add_ct(r, false, port_id, np ? 0 : sp.xfe[i]->key.addr,
				       sp.xfe[i]->key.port, np);
			}
		}
	}
	if (r->oom)
		return -ENOMEM;
	if (!write)
		return 0;

	/* Keep what was written: chains (sorted, for the next diff), UDP state. */
	if (r->n_sc) {
		cur->chains = malloc(r->n_sc * sizeof(*cur->chains));
		if (!cur->chains)
			return -ENOMEM;
		memcpy(cur->chains, r->sc, r->n_sc * sizeof(*cur->chains));
		qsort(cur->chains, r->n_sc, sizeof(*cur->chains), chain_cmp);
		cur->n_chains = r->n_sc;
	}
	cur->n_rules = r->sc_rules;
	if (r->n_fe) {
		cur->ct_fe = malloc(r->n_fe * sizeof(*cur->ct_fe));
		cur->ct_ep = malloc((r->n_ep ? r->n_ep : 1) * sizeof(*cur->ct_ep));
		if (!cur->ct_fe || !cur->ct_ep)
			return -ENOMEM;
		memcpy(cur->ct_fe, r->fe, r->n_fe * sizeof(*r->fe));
		if (r->n_ep)
			memcpy(cur->ct_ep, r->ep, r->n_ep * sizeof(*r->ep));
		cur->n_ct_fe = r->n_fe;
		cur->n_ct_ep = r->n_ep;
	}
	if (old) {
		delete_gone(r, (const char(*)[CHAIN_LEN])old->chains, old->n_chains,
			    (const char(*)[CHAIN_LEN])cur->chains, cur->n_chains);
		diff_ct(p, old, cur);
	} else {
		diff_ct(p, NULL, cur);
	}
	return 0;
}

static int count_backends(const struct lbm_state *f, const bool *owned, uint64_t gen, void *arg)
{
	(void)owned;
	(void)gen;
	*(size_t *)arg += f->n_backends;
	return 0;
}

static void write_fixed_filter(struct rctx *r, struct sl_buf *out)
{
	put(out, "*filter\n:KUBE-SERVICES - [0:0]\n:KUBE-EXTERNAL-SERVICES - [0:0]\n",
	    ":KUBE-FORWARD - [0:0]\n:KUBE-NODEPORTS - [0:0]\n:KUBE-PROXY-FIREWALL - [0:0]\n",
	    PUT_END);
	if (!r->p->be_liberal) {
		/* kubernetes#74839: out-of-window packets conntrack marks INVALID would
		 * reach the pod un-NATed and get reset. */
		put(out, "-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP\n", PUT_END);
		r->global_rules++;
	}
	put(out,
	    "-A KUBE-FORWARD -m comment --comment \"kubernetes forwarding rules\" -m mark --mark ",
	    r->mark_str, "/", r->mark_str, " -j ACCEPT\n",
	    "-A KUBE-FORWARD -m comment --comment \"kubernetes forwarding conntrack rule\" -m "
	    "conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n",
	    PUT_END);
	r->global_rules += 2;
}

int pxy_ipt_render(struct pxy *p, const struct lbi *l, bool full, const char *save,
		   struct sl_buf *out)
{
	struct rctx r = {
		.p = p, .full = full || !p->rendered || p->need_full, .from_save = save != NULL};
	const char *nat_save = save ? strstr(save, "*nat\n") : NULL;
	size_t total_eps = 0;
	int rc;

	snprintf(r.mark_str, sizeof(r.mark_str), "0x%x", p->mark);
	r.filter = p->b_filter, r.chains = p->b_chains, r.rules = p->b_rules, r.dels = p->b_dels;
	sl_buf_reset(&r.filter), sl_buf_reset(&r.chains), sl_buf_reset(&r.rules);
	sl_buf_reset(&r.dels);
	p->n_ct = 0;
	lbi_foreach_fragment(l, count_backends, &total_eps);
	r.large = total_eps > LARGE_CLUSTER_ENDPOINTS;
	if (p->rendered && r.large != p->large)
		r.full = true; /* every endpoint rule changes its comments */

	rc = lbi_foreach_fragment(l, render_fragment, &r);
	if (rc)
		goto fail;

	/* Services that went away: all their chains go, and their UDP flows. */
	for (size_t i = 0; i < p->n_svcs; i++) {
		struct ipt_svc *s = p->svcs[i];

		if (s->seen)
			continue;
		delete_gone(&r, (const char(*)[CHAIN_LEN])s->chains, s->n_chains, NULL, 0);
		diff_ct(p, s, NULL);
	}

	/* Stale chains of a previous run (full syncs read iptables-save). */
	if (save) {
		char(*act)[CHAIN_LEN] = NULL;
		size_t n_act = 0;

		for (size_t i = 0; i < r.n_next; i++)
			n_act += r.next[i]->n_chains;
		act = malloc((n_act ? n_act : 1) * sizeof(*act));
		if (!act) {
			rc = -ENOMEM;
			goto fail;
		}
		n_act = 0;
		for (size_t i = 0; i < r.n_next; i++) {
			if (r.next[i]->n_chains)
				memcpy(act + n_act, r.next[i]->chains,
				       r.next[i]->n_chains * sizeof(*act));
			n_act += r.next[i]->n_chains;
		}
		qsort(act, n_act, sizeof(*act), chain_cmp);
		for (const char *s = nat_save; s && *s && *s != 'C';
		     s = strchr(s, '\n'), s = s ? s + 1 : s) {
			static const char *const pre[] = {"KUBE-SVC-", "KUBE-SVL-", "KUBE-EXT-",
							  "KUBE-FW-", "KUBE-SEP-"};
			char name[CHAIN_LEN];
			size_t n = strcspn(s + 1, " \n");
			bool ours = false;

			if (*s != ':' || n >= CHAIN_LEN)
				continue;
			memcpy(name, s + 1, n);
			name[n] = '\0';
			for (size_t k = 0; k < sizeof(pre) / sizeof(pre[0]); k++)
				ours |= !strncmp(name, pre[k], strlen(pre[k]));
			if (ours && !bsearch(name, act, n_act, sizeof(*act), chain_cmp)) {
				put(&r.chains, ":", name, " - [0:0]\n", PUT_END);
				put(&r.dels, "-X ", name, "\n", PUT_END);
			}
		}
		free(act);
	}

	/* Assemble: filter, then nat; chain declarations before any rule. */
	write_fixed_filter(&r, out);
	if (save)
		write_jumps(&r.global_rules, save, "filter", out);
	sl_buf_append(out, r.filter.data, r.filter.len);
	put(out, "COMMIT\n*nat\n:KUBE-SERVICES - [0:0]\n:KUBE-NODEPORTS - [0:0]\n",
	    ":KUBE-POSTROUTING - [0:0]\n:KUBE-MARK-MASQ - [0:0]\n", PUT_END);
	sl_buf_append(out, r.chains.data, r.chains.len);
	if (save)
		write_jumps(&r.global_rules, save, "nat", out);
	put(out, "-A KUBE-POSTROUTING -m mark ! --mark ", r.mark_str, "/", r.mark_str,
	    " -j RETURN\n-A KUBE-POSTROUTING -j MARK --xor-mark ", r.mark_str,
	    "\n-A KUBE-POSTROUTING -m comment --comment \"kubernetes service traffic requiring "
	    "SNAT\" -j MASQUERADE --random-fully\n-A KUBE-MARK-MASQ -j MARK --or-mark ",
	    r.mark_str, "\n", PUT_END);
	sl_buf_append(out, r.rules.data, r.rules.len);
	put(out,
	    "-A KUBE-SERVICES -m comment --comment \"kubernetes service nodeports; NOTE: this "
	    "must be the last rule in this chain\" -m addrtype --dst-type LOCAL ! -d "
	    "127.0.0.0/8 -j KUBE-NODEPORTS\n",
	    PUT_END);
	sl_buf_append(out, r.dels.data, r.dels.len);
	put(out, "COMMIT\n", PUT_END);
	r.global_rules += 5;
	if (out->oom) {
		rc = -ENOMEM;
		goto fail;
	}

	/* Commit the new generation. */
	for (size_t i = 0; i < p->n_svcs; i++)
		if (!p->svcs[i]->reused)
			svc_free(p->svcs[i]);
	free(p->svcs);
	p->svcs = r.next;
	p->n_svcs = r.n_next;
	r.next = NULL;
	p->st.rules = 0;
	for (size_t i = 0; i < p->n_svcs; i++) {
		p->svcs[i]->seen = p->svcs[i]->reused = false;
		p->st.rules += p->svcs[i]->n_rules;
	}
	p->global_rules = r.global_rules;
	p->st.rules += r.global_rules;
	p->large = r.large;
	p->rendered = true;
	p->need_full = false;
	p->st.services_rendered = r.rendered;
	rc = idx_build(p);
	goto done;

fail:
	/* The previous generation stays; new records are dropped and the next
	 * render is full. */
	for (size_t i = 0; i < r.n_next; i++)
		if (!r.next[i]->reused)
			svc_free(r.next[i]);
	for (size_t i = 0; i < p->n_svcs; i++)
		p->svcs[i]->seen = p->svcs[i]->reused = false;
	p->need_full = true;
done:
	free(r.next);
	free(r.sc);
	free(r.fe);
	free(r.ep);
	free(r.mark);
	p->b_filter = r.filter, p->b_chains = r.chains, p->b_rules = r.rules, p->b_dels = r.dels;
	return rc;
}

void pxy_ipt_conntrack_pending(const struct pxy *p, struct sl_buf *out)
{
	for (size_t i = 0; i < p->n_ct; i++) {
		const struct ct_del *c = &p->ct[i];

		put(out, "-D -p udp", PUT_END);
		if (c->vip) {
			put(out, " --orig-dst ", PUT_END);
			put_ip(out, c->vip);
		} else {
			put(out, " --orig-port-dst ", PUT_END);
			put_u(out, ntohs(c->port));
		}
		if (c->ep) {
			put(out, " --dst-nat ", PUT_END);
			put_ip(out, c->ep);
		}
		put(out, "\n", PUT_END);
	}
}

/* --- running the tools -------------------------------------------------------------------- */

/* Whether cmd resolves to an executable on PATH (or is a path to one). */
static bool have_cmd(const char *cmd)
{
	const char *path = getenv("PATH");
	char buf[512];

	if (strchr(cmd, '/'))
		return !access(cmd, X_OK);
	if (!path)
		path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
	for (const char *s = path; *s;) {
		size_t n = strcspn(s, ":");

		snprintf(buf, sizeof(buf), "%.*s/%s", (int)n, s, cmd);
		if (n && !access(buf, X_OK))
			return true;
		s += n + (s[n] == ':');
	}
	return false;
}

/* iptables-restore's "line N failed": logs our line N too. */
static void log_restore_failure(const struct sl_buf *in, const struct sl_buf *err, int st)
{
	const char *e = err->data ? err->data : "", *l;
	unsigned long line = 0;

	/* "Error occurred at line: N" (1.8) or "line N failed" (older). */
	if ((l = strstr(e, "line"))) {
		l += 4;
		l += strspn(l, ": ");
		line = strtoul(l, NULL, 10);
	}
	pr_err(IPT, "iptables-restore failed (status %d): %.*s", st,
	       (int)strcspn(e, "\n") ? (int)strcspn(e, "\n") : 1, e[0] ? e : "-");
	if (line && in->data) {
		const char *s = in->data;

		for (unsigned long i = 1; i < line && s; i++)
			if ((s = strchr(s, '\n')))
				s++;
		if (s)
			pr_err(IPT, "iptables-restore input line %lu: %.*s", line,
			       (int)strcspn(s, "\n"), s);
	}
}

/* --- conntrack ---------------------------------------------------------------------------- */

static void run_conntrack(struct pxy *p)
{
	for (size_t i = 0; i < p->n_ct; i++) {
		const struct ct_del *c = &p->ct[i];
		char vip[INET_ADDRSTRLEN], ep[INET_ADDRSTRLEN], port[8];
		const char *argv[12] = {"conntrack", "-D", "-p", "udp"};
		size_t n = 4;
		int st;

		if (c->vip) {
			inet_ntop(AF_INET, &c->vip, vip, sizeof(vip));
			argv[n++] = "--orig-dst", argv[n++] = vip;
		} else {
			snprintf(port, sizeof(port), "%u", ntohs(c->port));
			argv[n++] = "--orig-port-dst", argv[n++] = port;
		}
		if (c->ep) {
			inet_ntop(AF_INET, &c->ep, ep, sizeof(ep));
			argv[n++] = "--dst-nat", argv[n++] = ep;
		}
		argv[n] = NULL;
		/* Status 1 = nothing matched, the usual case. */
		st = agent_exec(argv, NULL, 0, NULL, NULL);
		if (st < 0 || st > 1)
			pr_warn(IPT,
				"conntrack -D for %s%s%s failed (status %d); stale UDP flows age "
				"out",
				c->vip ? vip : port, c->ep ? " -> " : "", c->ep ? ep : "", st);
	}
	p->n_ct = 0;
}

/* --- ops ---------------------------------------------------------------------------------- */

static void set_variant_names(struct pxy *p, const char *restore)
{
	size_t n = strlen(restore);
	const char *suf = "-restore";

	snprintf(p->restore, sizeof(p->restore), "%s", restore);
	/* iptables[-legacy|-nft]-restore → iptables[-legacy|-nft], ...-save */
	if (n > strlen(suf) && !strcmp(restore + n - strlen(suf), suf))
		n -= strlen(suf);
	snprintf(p->cli, sizeof(p->cli), "%.*s", (int)n, restore);
	snprintf(p->save, sizeof(p->save), "%.*s-save", (int)n, restore);
}

struct pxy *pxy_ipt_new(const struct pxy_cfg *cfg)
{
	struct pxy *p = calloc(1, sizeof(*p));

	if (!p) {
		errno = ENOMEM;
		return NULL;
	}
	set_variant_names(p, cfg && cfg->iptables_cmd ? cfg->iptables_cmd : "iptables-restore");
	if (cfg && cfg->cluster_cidr)
		snprintf(p->cluster_cidr, sizeof(p->cluster_cidr), "%s", cfg->cluster_cidr);
	p->masq_all = cfg && cfg->masquerade_all;
	p->mark = 1u << (cfg && cfg->masq_bit ? cfg->masq_bit : 14);
	return p;
}

static struct pxy *ipt_open(const struct pxy_cfg *cfg)
{
	struct pxy *p;
	FILE *f;

	if (cfg && cfg->masq_bit > 31) {
		pr_err(IPT, "masquerade bit %u: must be 0..31", cfg->masq_bit);
		errno = EINVAL;
		return NULL;
	}
	p = pxy_ipt_new(cfg);
	if (!p)
		return NULL;
	if (!have_cmd(p->restore) || !have_cmd(p->cli) || !have_cmd(p->save)) {
		pr_err(IPT,
		       "'%s' (with %s and %s) not found in PATH: install iptables "
		       "(scripts/deps.sh) or pick another --iptables-variant",
		       p->restore, p->cli, p->save);
		free(p);
		errno = ENOENT;
		return NULL;
	}
	if (!have_cmd("conntrack"))
		pr_warn(IPT, "conntrack(8) not found: stale UDP flows to removed endpoints will "
			     "only age out (install conntrack, scripts/deps.sh)");
	/* kube-proxy drops INVALID in KUBE-FORWARD unless conntrack is liberal. */
	f = fopen("/proc/sys/net/netfilter/nf_conntrack_tcp_be_liberal", "re");
	if (f) {
		int v = 0;

		p->be_liberal = fscanf(f, "%d", &v) == 1 && v;
		fclose(f);
	}
	pr_info(IPT, "dataplane iptables: %s, cluster CIDR %s%s, mark 0x%x", p->restore,
		p->cluster_cidr[0] ? p->cluster_cidr : "(none)",
		p->masq_all ? ", masquerade all" : "", p->mark);
	return p;
}

static int ipt_set_node_addrs(struct pxy *p, const __be32 *addrs, size_t n)
{
	/* Locality of externalIPs is the model's (lbi rebuilds every Service);
	 * NodePorts match --dst-type LOCAL in the kernel. Nothing to keep. */
	(void)p, (void)addrs, (void)n;
	return 0;
}

static int ipt_sync(struct pxy *p, const struct lbi *l, bool full)
{
	struct sl_buf *in = &p->b_out, err = SL_BUF_INIT, save = SL_BUF_INIT;
	const char *argv[] = {p->restore, "-w",	       "5",	     "-W",
			      "100000",	  "--noflush", "--counters", NULL};
	double t0 = now_s(), t1;
	int rc, st;

	full = full || p->need_full || !p->rendered;
	if (full) {
		const char *sargv[] = {p->save, NULL};

		st = agent_exec(sargv, NULL, 0, &save, &err);
		if (st) {
			pr_err(IPT, "%s failed (status %d): %s", p->save, st,
			       err.data ? err.data : "");
			rc = st < 0 ? st : -EIO;
			goto out;
		}
	}
	sl_buf_reset(in);
	rc = pxy_ipt_render(p, l, full, full ? (save.data ? save.data : "") : NULL, in);
	if (rc) {
		pr_err(IPT, "rendering the rules failed: %s", sl_strerror(rc));
		goto out;
	}
	t1 = now_s();
	sl_buf_reset(&err);
	st = agent_exec(argv, in->data, in->len, NULL, &err);
	p->st.last_program_s = now_s() - t1;
	if (st) {
		if (st < 0)
			pr_err(IPT, "running %s failed: %s", p->restore, sl_strerror(st));
		else
			log_restore_failure(in, &err, st);
		p->need_full = true;
		rc = st < 0 ? st : -EIO;
		goto out;
	}
	run_conntrack(p);
	pr_debug(IPT, "sync%s: %zu bytes, %zu services rendered, %.1f ms (restore %.1f ms)",
		 full ? " (full)" : "", in->len, p->st.services_rendered, (now_s() - t0) * 1e3,
		 p->st.last_program_s * 1e3);
out:
	p->st.last_sync_s = now_s() - t0;
	if (rc)
		p->st.sync_errors++;
	else
		p->st.syncs++;
	sl_buf_fini(&err);
	sl_buf_fini(&save);
	return rc;
}

static void ipt_stats(const struct pxy *p, struct pxy_stats *out)
{
	*out = p->st;
}

static void ipt_close(struct pxy *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->n_svcs; i++)
		svc_free(p->svcs[i]);
	free(p->svcs);
	free(p->idx);
	free(p->ct);
	sl_buf_fini(&p->b_filter);
	sl_buf_fini(&p->b_chains);
	sl_buf_fini(&p->b_rules);
	sl_buf_fini(&p->b_dels);
	sl_buf_fini(&p->b_out);
	free(p);
}

/* --- cleanup ------------------------------------------------------------------------------ */

/* Chains kubelet creates too; kube-proxy's cleanup leaves them, so do we. */
static bool kubelet_chain(const char *name, size_t n)
{
	static const char *const k[] = {"KUBE-KUBELET-CANARY", "KUBE-FIREWALL",
					"KUBE-IPTABLES-HINT"};

	for (size_t i = 0; i < sizeof(k) / sizeof(k[0]); i++)
		if (strlen(k[i]) == n && !strncmp(name, k[i], n))
			return true;
	return false;
}

/*
 * From one iptables-save dump, the restore input that deletes the rules of
 * built-in chains jumping to KUBE-* chains and flushes and deletes those
 * chains (kubelet's excepted). Returns the number of objects removed.
 */
static size_t cleanup_render(const char *dump, struct sl_buf *out)
{
	struct sl_buf decl = SL_BUF_INIT, dels = SL_BUF_INIT, xs = SL_BUF_INIT;
	size_t count = 0;
	bool in_table = false;

	for (const char *s = dump; s && *s;) {
		size_t n = strcspn(s, "\n");

		if (*s == '*') {
			sl_buf_reset(&decl), sl_buf_reset(&dels), sl_buf_reset(&xs);
			sl_buf_append(&decl, s, n);
			sl_buf_puts(&decl, "\n");
			in_table = true;
		} else if (in_table && n >= 6 && !strncmp(s, "COMMIT", 6)) {
			if (dels.len || xs.len) {
				sl_buf_append(out, decl.data, decl.len);
				sl_buf_append(out, dels.data, dels.len);
				sl_buf_append(out, xs.data, xs.len);
				sl_buf_puts(out, "COMMIT\n");
			}
			in_table = false;
		} else if (in_table && *s == ':' && !strncmp(s + 1, "KUBE-", 5)) {
			size_t cn = strcspn(s + 1, " \n");

			if (!kubelet_chain(s + 1, cn)) {
				sl_buf_append(&decl, s, cn + 1);
				sl_buf_puts(&decl, " - [0:0]\n");
				sl_buf_puts(&xs, "-X ");
				sl_buf_append(&xs, s + 1, cn);
				sl_buf_puts(&xs, "\n");
				count++;
			}
		} else if (in_table && !strncmp(s, "-A ", 3)) {
			const char *j = strstr(s, " -j KUBE-");
			size_t cn = strcspn(s + 3, " ");
			bool builtin = !(cn > 5 && !strncmp(s + 3, "KUBE-", 5));

			if (j && j < s + n && builtin) {
				size_t tn = strcspn(j + 4, " \n");

				if (!kubelet_chain(j + 4, tn)) {
					sl_buf_puts(&dels, "-D");
					sl_buf_append(&dels, s + 2, n - 2);
					sl_buf_puts(&dels, "\n");
					count++;
				}
			}
		}
		s += n + (s[n] == '\n');
	}
	sl_buf_fini(&decl);
	sl_buf_fini(&dels);
	sl_buf_fini(&xs);
	return count;
}

static int cleanup_variant(const char *base)
{
	char save[64], restore[64];
	const char *sargv[] = {save, NULL};
	const char *rargv[] = {restore, "-w", "5", "--noflush", NULL};
	struct sl_buf dump = SL_BUF_INIT, in = SL_BUF_INIT, err = SL_BUF_INIT;
	size_t n;
	int st, rc = 0;

	snprintf(save, sizeof(save), "%s-save", base);
	snprintf(restore, sizeof(restore), "%s-restore", base);
	if (!have_cmd(save) || !have_cmd(restore))
		return 0;
	st = agent_exec(sargv, NULL, 0, &dump, &err);
	if (st) {
		pr_err(IPT, "%s failed (status %d): %s", save, st, err.data ? err.data : "");
		rc = st < 0 ? st : -EIO;
		goto out;
	}
	n = cleanup_render(dump.data, &in);
	if (!n)
		goto out;
	sl_buf_reset(&err);
	st = agent_exec(rargv, in.data, in.len, NULL, &err);
	if (st) {
		log_restore_failure(&in, &err, st);
		rc = st < 0 ? st : -EIO;
		goto out;
	}
	pr_info(IPT, "cleanup: removed %zu kube-proxy chains and hook jumps (%s)", n, base);
out:
	sl_buf_fini(&dump);
	sl_buf_fini(&in);
	sl_buf_fini(&err);
	return rc;
}

static int ipt_cleanup(void)
{
	int rc = 0, e;

	/* Both back ends may hold rules (a legacy kube-proxy before, nft now). */
	e = cleanup_variant("iptables-legacy");
	rc = rc ? rc : e;
	e = cleanup_variant("iptables-nft");
	rc = rc ? rc : e;
	if (!have_cmd("iptables-legacy-save") && !have_cmd("iptables-nft-save")) {
		e = cleanup_variant("iptables");
		rc = rc ? rc : e;
	}
	return rc;
}

const struct pxy_ops pxy_iptables_ops = {
	.name = "iptables",
	.open = ipt_open,
	.set_node_addrs = ipt_set_node_addrs,
	.sync = ipt_sync,
	.stats = ipt_stats,
	.close = ipt_close,
	.cleanup = ipt_cleanup,
};
