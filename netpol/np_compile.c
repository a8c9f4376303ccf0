// SPDX-License-Identifier: Apache-2.0
/*
 * Rule-set computation, interning and output. For one identity and
 * direction:
 *   1. the policies of its namespace that select it and name the direction
 *      decide isolation (none: SL_NP_RS_NONE; one with an error:
 *      SL_NP_RS_FAILED);
 *   2. every rule of those policies becomes grants {peer, proto, lo..hi}:
 *      pod peers with a podSelector expand to the identities they match
 *      (cached per peer), namespace-wide peers to one SL_NP_PEER_NS_BASE
 *      grant per matching namespace (SL_NP_PEER_ANY_POD for all of them),
 *      a rule without peers to SL_NP_PEER_ANY, and named ports resolve
 *      against the destination (the subject for ingress, each peer
 *      identity for egress; a pod without the name gets nothing);
 *      ipBlock peers collect as blocks {cidr, except, ports};
 *   3. grants become LPM entries (ranges split into aligned port blocks,
 *      entries covered by a wider one of the same peer dropped); blocks
 *      become CIDR classes: every cidr and except is an LPM prefix whose
 *      value is the union of the blocks that contain it and whose excepts
 *      do not, which is exactly what a longest-prefix match needs (the
 *      longest prefix containing an address lies inside a block's cidr or
 *      except iff the address does);
 *   4. the sorted entries are interned by content.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include "np_int.h"

/* Growable array of fixed-size items. */
struct vec {
	void *v;
	size_t n, cap, sz;
};

static void *vec_push(struct vec *v)
{
	if (v->n == v->cap) {
		size_t nc = v->cap ? v->cap * 2 : 16;
		void *nv = realloc(v->v, nc * v->sz);

		if (!nv)
			return NULL;
		v->v = nv;
		v->cap = nc;
	}
	return memset((char *)v->v + v->n++ * v->sz, 0, v->sz);
}

struct grant {
	uint32_t peer;
	uint8_t proto; /* 0 = any protocol, any port */
	uint16_t lo, hi;
	uint32_t policy;
};

struct block {
	const struct np_peer *peer;
	struct grant *ports; /* peer field unused */
	size_t n_ports;
};

struct build {
	struct vec grants; /* struct grant */
	struct vec blocks; /* struct block */
	struct vec ports;  /* struct grant: scratch for port resolution */
};

/* --- ports ---------------------------------------------------------------------------------- */

/* The rule's ports for destination identity `dst` (NULL: a non-pod
 * destination, where named ports match nothing). Appends to b->ports. */
static int resolve_ports(struct build *b, const struct np_rule *r, const struct np_ident *dst,
			 uint32_t policy)
{
	struct grant *g;

	b->ports.n = 0;
	if (!r->n_ports) {
		if (!(g = vec_push(&b->ports)))
			return -ENOMEM;
		g->hi = 65535;
		g->policy = policy;
		return 0;
	}
	for (size_t i = 0; i < r->n_ports; i++) {
		const struct np_portsel *ps = &r->ports[i];

		if (!ps->name) {
			if (!(g = vec_push(&b->ports)))
				return -ENOMEM;
			g->proto = ps->proto;
			g->lo = ps->lo;
			g->hi = ps->hi;
			g->policy = policy;
			continue;
		}
		for (size_t k = 0; dst && k < dst->n_ports; k++) {
			const struct np_cport *cp = &dst->ports[k];

			/* Same name AND same protocol: a TCP rule naming a UDP
			 * port opens nothing. */
			if (strcmp(cp->name, ps->name) || cp->proto != ps->proto)
				continue;
			if (!(g = vec_push(&b->ports)))
				return -ENOMEM;
			g->proto = cp->proto;
			g->lo = g->hi = cp->port;
			g->policy = policy;
		}
	}
	return 0;
}

static int add_grants(struct build *b, uint32_t peer)
{
	for (size_t i = 0; i < b->ports.n; i++) {
		struct grant *g = vec_push(&b->grants);

		if (!g)
			return -ENOMEM;
		*g = ((struct grant *)b->ports.v)[i];
		g->peer = peer;
	}
	return 0;
}

static int add_block(struct build *b, const struct np_peer *peer)
{
	struct block *blk;

	if (!b->ports.n)
		return 0;
	blk = vec_push(&b->blocks);
	if (!blk)
		return -ENOMEM;
	blk->peer = peer;
	blk->ports = malloc(b->ports.n * sizeof(struct grant));
	if (!blk->ports)
		return -ENOMEM;
	memcpy(blk->ports, b->ports.v, b->ports.n * sizeof(struct grant));
	blk->n_ports = b->ports.n;
	return 0;
}

/* --- peers ---------------------------------------------------------------------------------- */

static int ident_id_cmp(const void *a, const void *b)
{
	uint32_t x = (*(struct np_ident *const *)a)->id, y = (*(struct np_ident *const *)b)->id;

	return x < y ? -1 : x > y;
}

static int ident_ns_cmp(const void *a, const void *b)
{
	const struct np_ident *x = *(struct np_ident *const *)a, *y = *(struct np_ident *const *)b;
	int c = strcmp(x->ns, y->ns);

	return c ? c : (x->id < y->id ? -1 : x->id > y->id);
}

static int pol_ns_cmp(const void *a, const void *b)
{
	const struct np_policy *x = *(struct np_policy *const *)a,
			       *y = *(struct np_policy *const *)b;
	int c = strcmp(x->ns, y->ns);

	return c ? c : (x->id < y->id ? -1 : x->id > y->id);
}

/* Identities grouped by namespace, so a selector peer tests a namespace
 * selector once per namespace and a podSelector-only peer scans only its
 * own namespace; policies sorted by namespace, so an identity looks only
 * at its namespace's policies. */
static int build_index(struct np_ctx *ctx)
{
	size_t bk = 0, n = 0, g = 0;
	struct np_ident **v;
	struct np_nsgroup *groups;
	struct np_policy **p;

	p = realloc(ctx->ix_pols, (ctx->policies.n + 1) * sizeof(*p));
	if (!p)
		return -ENOMEM;
	ctx->ix_pols = p;
	for (struct np_map_ent *e = NULL; (e = np_map_next(&ctx->policies, &bk, e));)
		p[n++] = e->val;
	if (n)
		qsort(p, n, sizeof(*p), pol_ns_cmp);
	ctx->n_ix_pols = n;
	if (ctx->ix_gen == ctx->gen + 1)
		return 0;
	v = realloc(ctx->ix_idents, (ctx->idents.n + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	ctx->ix_idents = v;
	groups = realloc(ctx->ix_groups, (ctx->idents.n + 1) * sizeof(*groups));
	if (!groups)
		return -ENOMEM;
	ctx->ix_groups = groups;
	n = 0;
	bk = 0;
	for (struct np_map_ent *e = NULL; (e = np_map_next(&ctx->idents, &bk, e));)
		v[n++] = e->val;
	if (n)
		qsort(v, n, sizeof(*v), ident_ns_cmp);
	for (size_t i = 0; i < n; i++) {
		if (!g || strcmp(groups[g - 1].ns, v[i]->ns)) {
			groups[g].ns = v[i]->ns;
			groups[g].ns_peer = v[i]->ns_peer;
			groups[g].start = i;
			g++;
		}
		groups[g - 1].end = i + 1;
	}
	ctx->n_ix_groups = g;
	ctx->ix_gen = ctx->gen + 1;
	return 0;
}

/* The identities a selector peer matches, cached until ctx->gen moves. */
static int peer_match(struct np_ctx *ctx, const struct np_policy *pol, struct np_peer *peer)
{
	size_t n = 0;
	struct np_ident **m;

	if (peer->gen == ctx->gen + 1)
		return 0;
	m = realloc(peer->match, (ctx->idents.n + 1) * sizeof(*m));
	if (!m)
		return -ENOMEM;
	peer->match = m;
	for (size_t g = 0; g < ctx->n_ix_groups; g++) {
		const struct np_nsgroup *grp = &ctx->ix_groups[g];

		if (peer->ns ? !np_ns_sel_match(ctx, peer->ns, grp->ns) : strcmp(grp->ns, pol->ns))
			continue;
		for (size_t i = grp->start; i < grp->end; i++) {
			struct np_ident *id = ctx->ix_idents[i];

			if (!peer->pod || sl_labelsel_match(peer->pod, id->lv, id->n_labels))
				m[n++] = id;
		}
	}
	if (n)
		qsort(m, n, sizeof(*m), ident_id_cmp);
	peer->n_match = n;
	/* +1 so a zeroed peer never looks current. */
	peer->gen = ctx->gen + 1;
	return 0;
}

/* A namespace-level peer: one grant per namespace with pods that it
 * matches (b->ports already resolved). */
static int ns_grants(struct np_ctx *ctx, struct build *b, const struct np_policy *pol,
		     const struct np_peer *p)
{
	int ret = 0;

	for (size_t g = 0; g < ctx->n_ix_groups && !ret; g++) {
		const struct np_nsgroup *grp = &ctx->ix_groups[g];

		if (p->ns ? np_ns_sel_match(ctx, p->ns, grp->ns) : !strcmp(grp->ns, pol->ns))
			ret = add_grants(b, grp->ns_peer);
	}
	return ret;
}

static int rule_grants(struct np_ctx *ctx, struct build *b, const struct np_policy *pol,
		       struct np_rule *r, int dir, const struct np_ident *self)
{
	int ret = 0;

	if (dir == SL_NP_INGRESS) {
		/* Named ports resolve against the destination: this pod. */
		ret = resolve_ports(b, r, self, pol->id);
		if (ret || !b->ports.n)
			return ret;
		if (!r->n_peers)
			return add_grants(b, SL_NP_PEER_ANY);
		for (size_t k = 0; k < r->n_peers && !ret; k++) {
			struct np_peer *p = &r->peers[k];

			if (p->kind == NP_PEER_CIDR) {
				ret = add_block(b, p);
				continue;
			}
			if (np_peer_all_pods(p)) {
				ret = add_grants(b, SL_NP_PEER_ANY_POD);
				continue;
			}
			if (np_peer_ns_level(p)) {
				ret = ns_grants(ctx, b, pol, p);
				continue;
			}
			ret = peer_match(ctx, pol, p);
			for (size_t i = 0; i < p->n_match && !ret; i++)
				ret = add_grants(b, p->match[i]->id);
		}
		return ret;
	}
	/* Egress: named ports resolve against each destination pod. */
	if (!r->n_peers) {
		size_t bk = 0;

		ret = resolve_ports(b, r, NULL, pol->id);
		if (!ret)
			ret = add_grants(b, SL_NP_PEER_ANY);
		if (ret || !r->named)
			return ret;
		for (struct np_map_ent *e = NULL;
		     !ret && (e = np_map_next(&ctx->idents, &bk, e));) {
			const struct np_ident *dst = e->val;

			ret = resolve_ports(b, r, dst, pol->id);
			/* Drop the numeric ones: SL_NP_PEER_ANY has them. */
			size_t k = 0;
			for (size_t i = 0; i < b->ports.n; i++) {
				struct grant *g = &((struct grant *)b->ports.v)[i];
				bool numeric = false;

				for (size_t j = 0; j < r->n_ports; j++)
					numeric = numeric || (!r->ports[j].name &&
							      r->ports[j].proto == g->proto &&
							      r->ports[j].lo <= g->lo &&
							      g->hi <= r->ports[j].hi);
				if (!numeric)
					((struct grant *)b->ports.v)[k++] = *g;
			}
			b->ports.n = k;
			if (!ret)
				ret = add_grants(b, dst->id);
		}
		return ret;
	}
	for (size_t k = 0; k < r->n_peers && !ret; k++) {
		struct np_peer *p = &r->peers[k];

		if (p->kind == NP_PEER_CIDR) {
			/* A named port never matches a non-pod destination;
			 * see README (ipBlock + named egress port). */
			ret = resolve_ports(b, r, NULL, pol->id);
			if (!ret)
				ret = add_block(b, p);
			continue;
		}
		if (np_peer_all_pods(p) && !r->named) {
			ret = resolve_ports(b, r, NULL, pol->id);
			if (!ret)
				ret = add_grants(b, SL_NP_PEER_ANY_POD);
			continue;
		}
		if (np_peer_ns_level(p) && !r->named) {
			ret = resolve_ports(b, r, NULL, pol->id);
			if (!ret)
				ret = ns_grants(ctx, b, pol, p);
			continue;
		}
		ret = peer_match(ctx, pol, p);
		for (size_t i = 0; i < p->n_match && !ret; i++) {
			ret = resolve_ports(b, r, p->match[i], pol->id);
			if (!ret)
				ret = add_grants(b, p->match[i]->id);
		}
	}
	return ret;
}

/* --- entries -------------------------------------------------------------------------------- */

#define CMP_FIELD(a, b)                            \
	do {                                       \
		if ((a) != (b))                    \
			return (a) < (b) ? -1 : 1; \
	} while (0)

static int rule_cmp(const void *pa, const void *pb)
{
	const struct np_rule_entry *x = pa, *y = pb;

	CMP_FIELD(x->key.ruleset, y->key.ruleset);
	CMP_FIELD(x->key.peer, y->key.peer);
	CMP_FIELD(x->key.dir, y->key.dir);
	CMP_FIELD(x->key.proto, y->key.proto);
	CMP_FIELD(ntohs(x->key.port), ntohs(y->key.port));
	CMP_FIELD(x->key.prefixlen, y->key.prefixlen);
	CMP_FIELD(x->val.policy, y->val.policy);
	return 0;
}

static int cidr_cmp(const void *pa, const void *pb)
{
	const struct np_cidr_entry *x = pa, *y = pb;
	int c;

	CMP_FIELD(x->key.ruleset, y->key.ruleset);
	CMP_FIELD(x->key.dir, y->key.dir);
	CMP_FIELD(x->key.family, y->key.family);
	c = memcmp(x->key.addr, y->key.addr, sizeof(x->key.addr));
	if (c)
		return c;
	CMP_FIELD(x->key.prefixlen, y->key.prefixlen);
	return 0;
}

static int ep_cmp(const void *pa, const void *pb)
{
	const struct np_ep_entry *x = pa, *y = pb;

	CMP_FIELD(x->key.family, y->key.family);
	return memcmp(x->key.addr, y->key.addr, sizeof(x->key.addr));
}

static uint32_t block_end(const struct np_rule_entry *e)
{
	return ntohs(e->key.port) + (1u << (SL_NP_RULE_PLEN_FULL - e->key.prefixlen)) - 1;
}

/* Grants of one peer space to sorted, pruned LPM entries (ruleset 0). */
static int grants_to_entries(const struct grant *g, size_t n, uint8_t dir, struct vec *out)
{
	size_t start = out->n, k;

	for (size_t i = 0; i < n; i++) {
		struct np_rule_entry *e;

		if (!g[i].proto) {
			if (!(e = vec_push(out)))
				return -ENOMEM;
			e->key.prefixlen = SL_NP_RULE_PLEN_EXACT;
			e->key.peer = g[i].peer;
			e->key.dir = dir;
			e->val.policy = g[i].policy;
			e->val.verdict = SL_NP_ALLOW;
			continue;
		}
		/* Split lo..hi into aligned power-of-two blocks. */
		for (uint32_t lo = g[i].lo, hi = g[i].hi; lo <= hi;) {
			uint32_t bits = 16;

			while (bits && ((lo & ((1u << bits) - 1)) || lo + (1u << bits) - 1 > hi))
				bits--;
			if (!(e = vec_push(out)))
				return -ENOMEM;
			e->key.prefixlen = SL_NP_RULE_PLEN_FULL - bits;
			e->key.peer = g[i].peer;
			e->key.dir = dir;
			e->key.proto = g[i].proto;
			e->key.port = htons((uint16_t)lo);
			e->val.policy = g[i].policy;
			e->val.verdict = SL_NP_ALLOW;
			lo += 1u << bits;
		}
	}
	struct np_rule_entry *v = (struct np_rule_entry *)out->v + start;
	size_t cnt = out->n - start;

	if (!cnt)
		return 0;
	qsort(v, cnt, sizeof(*v), rule_cmp);
	/* Drop entries a kept one already covers: an any-protocol entry
	 * covers its peer; aligned port blocks nest or are disjoint, so
	 * sorted by start then wider first, a block starting before the end
	 * of the last kept one lies inside it. The first of equal keys has
	 * the lowest policy id and stays. */
	k = 0;
	for (size_t i = 0; i < cnt; i++) {
		const struct np_rule_entry *prev = k ? &v[k - 1] : NULL;

		if (prev && prev->key.peer == v[i].key.peer) {
			if (prev->key.proto == 0)
				continue;
			if (prev->key.proto == v[i].key.proto &&
			    ntohs(v[i].key.port) <= block_end(prev))
				continue;
		}
		v[k++] = v[i];
	}
	out->n = start + k;
	return 0;
}

static bool prefix_equal(const struct np_addr *a, const struct np_addr *b)
{
	return a->family == b->family && a->plen == b->plen && !memcmp(a->a, b->a, 16);
}

static int addr_cmp(const void *pa, const void *pb)
{
	const struct np_addr *a = pa, *b = pb;
	int c;

	CMP_FIELD(a->family, b->family);
	c = memcmp(a->a, b->a, 16);
	if (c)
		return c;
	CMP_FIELD(a->plen, b->plen);
	return 0;
}

/* ipBlocks to CIDR entries and the rule entries of their classes. */
static int blocks_to_entries(const struct block *blk, size_t nb, uint8_t dir, struct vec *rules,
			     struct vec *cidrs)
{
	struct vec pfx = {.sz = sizeof(struct np_addr)};
	struct vec sgr = {.sz = sizeof(struct grant)};
	/* Each class: its entries (peer 0) as a range of `cls`. */
	struct vec cls = {.sz = sizeof(struct np_rule_entry)};
	struct vec cls_off = {.sz = sizeof(size_t)};
	int ret = -ENOMEM;
	size_t n = 0;

	for (size_t i = 0; i < nb; i++) {
		struct np_addr *a = vec_push(&pfx);

		if (!a)
			goto out;
		*a = blk[i].peer->cidr;
		for (size_t k = 0; k < blk[i].peer->n_except; k++) {
			if (!(a = vec_push(&pfx)))
				goto out;
			*a = blk[i].peer->except[k];
		}
	}
	if (pfx.n)
		qsort(pfx.v, pfx.n, sizeof(struct np_addr), addr_cmp);
	for (size_t i = 0; i < pfx.n; i++)
		if (!n ||
		    !prefix_equal(&((struct np_addr *)pfx.v)[n - 1], &((struct np_addr *)pfx.v)[i]))
			((struct np_addr *)pfx.v)[n++] = ((struct np_addr *)pfx.v)[i];
	pfx.n = n;
	if (!vec_push(&cls_off))
		goto out;
	for (size_t i = 0; i < pfx.n; i++) {
		const struct np_addr *q = &((struct np_addr *)pfx.v)[i];
		size_t class_start = cls.n, nclass = cls_off.n - 1, c;
		struct np_cidr_entry *ce;

		sgr.n = 0;
		for (size_t b = 0; b < nb; b++) {
			const struct np_peer *p = blk[b].peer;
			bool in = np_addr_contains(&p->cidr, q);

			for (size_t k = 0; in && k < p->n_except; k++)
				in = !np_addr_contains(&p->except[k], q);
			for (size_t k = 0; in && k < blk[b].n_ports; k++) {
				struct grant *g = vec_push(&sgr);

				if (!g)
					goto out;
				*g = blk[b].ports[k];
				g->peer = 0;
			}
		}
		if (!(ce = vec_push(cidrs)))
			goto out;
		ce->key.prefixlen = SL_NP_CIDR_PLEN_BASE + q->plen;
		ce->key.dir = dir;
		ce->key.family = q->family;
		memcpy(ce->key.addr, q->a, 16);
		ce->val.peer = SL_NP_PEER_NONE;
		if (!sgr.n)
			continue;
		if (grants_to_entries(sgr.v, sgr.n, dir, &cls))
			goto out;
		/* An existing class with the same entries? */
		for (c = 0; c < nclass; c++) {
			size_t s0 = ((size_t *)cls_off.v)[c], s1 = ((size_t *)cls_off.v)[c + 1];

			if (s1 - s0 == cls.n - class_start &&
			    !memcmp((struct np_rule_entry *)cls.v + s0,
				    (struct np_rule_entry *)cls.v + class_start,
				    (s1 - s0) * sizeof(struct np_rule_entry)))
				break;
		}
		/* vec_push may have moved cidrs: re-fetch the entry. */
		ce = (struct np_cidr_entry *)cidrs->v + cidrs->n - 1;
		if (c < nclass) {
			cls.n = class_start;
		} else {
			size_t *off = vec_push(&cls_off);

			if (!off)
				goto out;
			*off = cls.n;
		}
		ce->val.peer = SL_NP_PEER_CIDR_BASE + (uint32_t)c;
	}
	for (size_t c = 0; c + 1 < cls_off.n; c++) {
		size_t s0 = ((size_t *)cls_off.v)[c], s1 = ((size_t *)cls_off.v)[c + 1];

		for (size_t i = s0; i < s1; i++) {
			struct np_rule_entry *e = vec_push(rules);

			if (!e)
				goto out;
			*e = ((struct np_rule_entry *)cls.v)[i];
			e->key.peer = SL_NP_PEER_CIDR_BASE + (uint32_t)c;
		}
	}
	ret = 0;
out:
	free(pfx.v);
	free(sgr.v);
	free(cls.v);
	free(cls_off.v);
	return ret;
}

/* --- rule sets ------------------------------------------------------------------------------- */

static void errappend(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void errappend(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	size_t used;

	/* Keep the first message: it is the one the caller logs. */
	if (!err || !errlen || err[0])
		return;
	used = strlen(err);
	va_start(ap, fmt);
	vsnprintf(err + used, errlen - used, fmt, ap);
	va_end(ap);
}

void np_ruleset_release(struct np_ctx *ctx, uint32_t id)
{
	struct np_ruleset *rs;

	if (id < SL_NP_RS_MIN)
		return;
	rs = np_map_get(&ctx->rs_ids, &id, 4);
	if (rs && rs->refs)
		rs->refs--;
}

static int intern(struct np_ctx *ctx, uint8_t dir, struct vec *rules, struct vec *cidrs,
		  const struct np_ident *who, uint32_t *out, char *err, size_t errlen)
{
	size_t rb = rules->n * sizeof(struct np_rule_entry);
	size_t cb = cidrs->n * sizeof(struct np_cidr_entry);
	size_t clen = 1 + 8 + rb + cb;
	char *content = malloc(clen);
	struct np_ruleset *rs;
	uint32_t span = 0x7fffffffu - SL_NP_RS_MIN, v;
	uint32_t nr = (uint32_t)rules->n, nc = (uint32_t)cidrs->n;

	if (!content)
		return -ENOMEM;
	content[0] = (char)dir;
	memcpy(content + 1, &nr, 4);
	memcpy(content + 5, &nc, 4);
	if (rb)
		memcpy(content + 9, rules->v, rb);
	if (cb)
		memcpy(content + 9 + rb, cidrs->v, cb);
	rs = np_map_get(&ctx->rulesets, content, clen);
	if (rs) {
		free(content);
		rs->refs++;
		*out = rs->id;
		return 0;
	}
	/* A new set must fit next to every set in use: the agent adds it
	 * before it removes the one it replaces. */
	if (ctx->n_rule_entries + rules->n > ctx->lim.max_rules ||
	    ctx->n_cidr_entries + cidrs->n > ctx->lim.max_cidrs) {
		free(content);
		errappend(err, errlen,
			  "identity %u (namespace %s) %s: %zu rule and %zu cidr entries do not fit "
			  "the maps (%zu/%zu and %zu/%zu in use); failing closed",
			  who->id, who->ns, dir == SL_NP_INGRESS ? "ingress" : "egress", rules->n,
			  cidrs->n, ctx->n_rule_entries, ctx->lim.max_rules, ctx->n_cidr_entries,
			  ctx->lim.max_cidrs);
		return -ENOSPC;
	}
	rs = calloc(1, sizeof(*rs));
	if (!rs) {
		free(content);
		return -ENOMEM;
	}
	rs->dir = dir;
	rs->content = content;
	rs->clen = clen;
	rs->rules = malloc(rb + 1);
	rs->cidrs = malloc(cb + 1);
	if (!rs->rules || !rs->cidrs)
		goto nomem;
	v = (uint32_t)(np_hash(content, clen, 3) % span);
	while (np_map_get(&ctx->rs_ids, &(uint32_t){SL_NP_RS_MIN + v}, 4))
		v = (v + 1) % span;
	rs->id = SL_NP_RS_MIN + v;
	if (rb)
		memcpy(rs->rules, rules->v, rb);
	if (cb)
		memcpy(rs->cidrs, cidrs->v, cb);
	rs->n_rules = rules->n;
	rs->n_cidrs = cidrs->n;
	for (size_t i = 0; i < rs->n_rules; i++)
		rs->rules[i].key.ruleset = rs->id;
	for (size_t i = 0; i < rs->n_cidrs; i++)
		rs->cidrs[i].key.ruleset = rs->id;
	if (np_map_put(&ctx->rulesets, content, clen, rs))
		goto nomem;
	if (np_map_put(&ctx->rs_ids, &rs->id, 4, rs)) {
		np_map_del(&ctx->rulesets, content, clen);
		goto nomem;
	}
	rs->refs = 1;
	ctx->n_rule_entries += rs->n_rules;
	ctx->n_cidr_entries += rs->n_cidrs;
	*out = rs->id;
	return 0;
nomem:
	free(rs->rules);
	free(rs->cidrs);
	free(rs->content);
	free(rs);
	return -ENOMEM;
}

static void build_fini(struct build *b)
{
	for (size_t i = 0; i < b->blocks.n; i++)
		free(((struct block *)b->blocks.v)[i].ports);
	free(b->grants.v);
	free(b->blocks.v);
	free(b->ports.v);
}

/* The rule set of (id, dir); *out gets a reference. */
static int compute(struct np_ctx *ctx, struct np_ident *id, int dir, uint32_t *out, char *err,
		   size_t errlen)
{
	struct build b = {
		.grants = {.sz = sizeof(struct grant)},
		.blocks = {.sz = sizeof(struct block)},
		.ports = {.sz = sizeof(struct grant)},
	};
	struct vec rules = {.sz = sizeof(struct np_rule_entry)};
	struct vec cidrs = {.sz = sizeof(struct np_cidr_entry)};
	bool iso = false, failed = false;
	size_t lo = 0, hi = ctx->n_ix_pols;
	int ret = 0;

	*out = SL_NP_RS_NONE;
	/* First policy of the identity's namespace. */
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (strcmp(ctx->ix_pols[mid]->ns, id->ns) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t pi = lo; !ret && pi < ctx->n_ix_pols && !strcmp(ctx->ix_pols[pi]->ns, id->ns);
	     pi++) {
		struct np_policy *pol = ctx->ix_pols[pi];

		if (!pol->iso[dir] || !np_policy_selects(pol, id))
			continue;
		iso = true;
		if (pol->error) {
			failed = true;
			continue;
		}
		for (size_t i = 0; i < pol->n_rules[dir] && !ret; i++)
			ret = rule_grants(ctx, &b, pol, &pol->rules[dir][i], dir, id);
	}
	if (!ret && iso && !failed) {
		ret = grants_to_entries(b.grants.v, b.grants.n, (uint8_t)dir, &rules);
		if (!ret)
			ret = blocks_to_entries(b.blocks.v, b.blocks.n, (uint8_t)dir, &rules,
						&cidrs);
		if (!ret && rules.n)
			qsort(rules.v, rules.n, sizeof(struct np_rule_entry), rule_cmp);
	}
	if (ret)
		goto out;
	if (!iso) {
		*out = SL_NP_RS_NONE;
	} else if (failed) {
		*out = SL_NP_RS_FAILED;
	} else if (!rules.n) {
		/* Nothing allowed; no rule means no CIDR entry is needed either. */
		*out = SL_NP_RS_DENY;
	} else if (rules.n + cidrs.n > ctx->lim.max_set_entries) {
		errappend(
			err, errlen,
			"identity %u (namespace %s) %s: %zu entries exceed the per-set limit %zu; "
			"failing closed",
			id->id, id->ns, dir == SL_NP_INGRESS ? "ingress" : "egress",
			rules.n + cidrs.n, ctx->lim.max_set_entries);
		*out = SL_NP_RS_FAILED;
		ret = -ENOSPC;
	} else {
		ret = intern(ctx, (uint8_t)dir, &rules, &cidrs, id, out, err, errlen);
		if (ret == -ENOSPC)
			*out = SL_NP_RS_FAILED;
	}
out:
	build_fini(&b);
	free(rules.v);
	free(cidrs.v);
	return ret;
}

/* --- compile and output ---------------------------------------------------------------------- */

static int push_entries(struct np_entries *e, const struct np_ruleset *rs)
{
	void *r = realloc(e->rules, (e->n_rules + rs->n_rules + 1) * sizeof(*e->rules));

	if (!r)
		return -ENOMEM;
	e->rules = r;
	if (rs->n_rules)
		memcpy(e->rules + e->n_rules, rs->rules, rs->n_rules * sizeof(*e->rules));
	e->n_rules += rs->n_rules;
	r = realloc(e->cidrs, (e->n_cidrs + rs->n_cidrs + 1) * sizeof(*e->cidrs));
	if (!r)
		return -ENOMEM;
	e->cidrs = r;
	if (rs->n_cidrs)
		memcpy(e->cidrs + e->n_cidrs, rs->cidrs, rs->n_cidrs * sizeof(*e->cidrs));
	e->n_cidrs += rs->n_cidrs;
	return 0;
}

static void entries_sort(struct np_entries *e)
{
	if (e->n_ep)
		qsort(e->ep, e->n_ep, sizeof(*e->ep), ep_cmp);
	if (e->n_rules)
		qsort(e->rules, e->n_rules, sizeof(*e->rules), rule_cmp);
	if (e->n_cidrs)
		qsort(e->cidrs, e->n_cidrs, sizeof(*e->cidrs), cidr_cmp);
}

void np_entries_fini(struct np_entries *e)
{
	if (!e)
		return;
	free(e->ep);
	free(e->rules);
	free(e->cidrs);
	memset(e, 0, sizeof(*e));
}

void np_diff_fini(struct np_diff *d)
{
	if (!d)
		return;
	np_entries_fini(&d->add);
	np_entries_fini(&d->del);
}

static bool pod_local(const struct np_ctx *ctx, const struct np_pod *p)
{
	return !ctx->node || (p->node && !strcmp(p->node, ctx->node));
}

int np_set_node(struct np_ctx *ctx, const char *node)
{
	char *n = NULL;

	if (node && !(n = strdup(node)))
		return -ENOMEM;
	free(ctx->node);
	ctx->node = n;
	return 0;
}

struct ep_tmp {
	struct np_ep_entry e;
	const char *pod; /* tie-break for an address claimed twice */
};

static int ep_tmp_cmp(const void *pa, const void *pb)
{
	const struct ep_tmp *x = pa, *y = pb;
	int c = ep_cmp(&x->e, &y->e);

	return c ? c : strcmp(x->pod, y->pod);
}

/* The endpoint entries of every pod with an identity and an address. An
 * address two pods claim (a reused IP seen before the old pod's delete)
 * goes to the pod whose ns/name sorts first, so the result is stable. */
static int build_endpoints(struct np_ctx *ctx, struct np_ep_entry **out, size_t *nout, char *err,
			   size_t errlen, bool *over)
{
	struct ep_tmp *t;
	size_t n = 0, k = 0, bk = 0, cap = 1;
	struct np_ep_entry *ep;

	for (struct np_map_ent *e = NULL; (e = np_map_next(&ctx->pods, &bk, e));)
		cap += ((struct np_pod *)e->val)->n_addrs;
	t = calloc(cap, sizeof(*t));
	if (!t)
		return -ENOMEM;
	bk = 0;
	for (struct np_map_ent *e = NULL; (e = np_map_next(&ctx->pods, &bk, e));) {
		const struct np_pod *p = e->val;

		bool local = pod_local(ctx, p);

		if (!p->ident)
			continue;
		for (size_t i = 0; i < p->n_addrs; i++) {
			struct ep_tmp *x = &t[n++];

			x->e.key.family = p->addrs[i].family;
			memcpy(x->e.key.addr, p->addrs[i].a, 16);
			x->e.val.identity = p->ident->id;
			x->e.val.ns = p->ident->ns_peer;
			/* Another node's pod is only a peer here: its own
			 * node enforces its rules. */
			x->e.val.ruleset[SL_NP_INGRESS] = local ? p->ident->rs[SL_NP_INGRESS] : 0;
			x->e.val.ruleset[SL_NP_EGRESS] = local ? p->ident->rs[SL_NP_EGRESS] : 0;
			x->pod = p->key;
		}
	}
	qsort(t, n, sizeof(*t), ep_tmp_cmp);
	ep = calloc(n + 1, sizeof(*ep));
	if (!ep) {
		free(t);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++)
		if (!k || ep_cmp(&ep[k - 1], &t[i].e))
			ep[k++] = t[i].e;
	free(t);
	if (k > ctx->lim.max_endpoints) {
		/* The agent must keep the pods past the limit from running:
		 * without an entry a pod is neither isolated nor known. */
		errappend(err, errlen,
			  "%zu pod addresses exceed the endpoint map (%zu); the last %zu (by "
			  "address) have no entry",
			  k, ctx->lim.max_endpoints, k - ctx->lim.max_endpoints);
		k = ctx->lim.max_endpoints;
		*over = true;
	}
	*out = ep;
	*nout = k;
	return 0;
}

static int ep_push(struct np_entries *e, const struct np_ep_entry *x)
{
	struct np_ep_entry *v = realloc(e->ep, (e->n_ep + 1) * sizeof(*v));

	if (!v)
		return -ENOMEM;
	e->ep = v;
	e->ep[e->n_ep++] = *x;
	return 0;
}

static int ep_diff(const struct np_ep_entry *old, size_t n_old, const struct np_ep_entry *cur,
		   size_t n_cur, struct np_diff *d)
{
	size_t i = 0, j = 0;
	int ret = 0;

	while (!ret && (i < n_old || j < n_cur)) {
		int c = i == n_old ? 1 : j == n_cur ? -1 : ep_cmp(&old[i], &cur[j]);

		if (c < 0) {
			ret = ep_push(&d->del, &old[i++]);
		} else if (c > 0) {
			ret = ep_push(&d->add, &cur[j++]);
		} else {
			if (memcmp(&old[i].val, &cur[j].val, sizeof(cur[j].val)))
				ret = ep_push(&d->add, &cur[j]);
			i++;
			j++;
		}
	}
	return ret;
}

static int ident_dirty_cmp(const void *a, const void *b)
{
	return ident_id_cmp(a, b);
}

int np_compile(struct np_ctx *ctx, struct np_diff *diff, char *err, size_t errlen)
{
	struct np_ident **dirty = NULL;
	struct np_ruleset **dead = NULL;
	struct np_ep_entry *ep = NULL;
	size_t n_dirty = 0, n_dead = 0, n_ep = 0, bk = 0;
	bool over = false;
	int ret = 0;

	if (err && errlen)
		err[0] = '\0';
	if (diff)
		memset(diff, 0, sizeof(*diff));
	if (ctx->all_dirty) {
		np_ident_mark_all(ctx);
		ctx->all_dirty = false;
	}
	dirty = calloc(ctx->idents.n + 1, sizeof(*dirty));
	if (!dirty)
		return -ENOMEM;
	for (struct np_map_ent *e = NULL; (e = np_map_next(&ctx->idents, &bk, e));) {
		struct np_ident *id = e->val;

		if (id->dirty || id->failed_capacity)
			dirty[n_dirty++] = id;
	}
	/* In id order, so which set fails first under capacity pressure
	 * does not depend on hash-table order. */
	qsort(dirty, n_dirty, sizeof(*dirty), ident_dirty_cmp);
	ctx->recomputed = 0;
	if (n_dirty && build_index(ctx)) {
		ret = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n_dirty; i++) {
		struct np_ident *id = dirty[i];

		id->failed_capacity = false;
		for (int d = 0; d < SL_NP_NDIRS; d++) {
			uint32_t rs = SL_NP_RS_NONE;
			int r = compute(ctx, id, d, &rs, err, errlen);

			ctx->recomputed++;
			if (r == -ENOMEM) {
				ret = -ENOMEM;
				goto out;
			}
			if (r == -ENOSPC) {
				id->failed_capacity = true;
				ret = -ENOSPC;
			}
			/* Take the new reference before dropping the old one so
			 * an unchanged set stays alive (and out of the diff). */
			np_ruleset_release(ctx, id->rs[d]);
			id->rs[d] = rs;
		}
		id->dirty = false;
	}
	/* Sweep: a set is in the maps iff an endpoint entry of a local pod
	 * points at it; sets that start or stop being so are the diff, sets
	 * nobody references are freed. */
	dead = calloc(ctx->rulesets.n + 1, sizeof(*dead));
	if (!dead) {
		ret = -ENOMEM;
		goto out;
	}
	bk = 0;
	for (struct np_map_ent *e = NULL; (e = np_map_next(&ctx->rulesets, &bk, e));)
		((struct np_ruleset *)e->val)->want = false;
	bk = 0;
	for (struct np_map_ent *e = NULL; (e = np_map_next(&ctx->pods, &bk, e));) {
		const struct np_pod *p = e->val;

		if (!p->ident || !p->n_addrs || !pod_local(ctx, p))
			continue;
		for (int d = 0; d < SL_NP_NDIRS; d++) {
			struct np_ruleset *rs = np_map_get(&ctx->rs_ids, &p->ident->rs[d], 4);

			if (rs)
				rs->want = true;
		}
	}
	bk = 0;
	for (struct np_map_ent *e = NULL; (e = np_map_next(&ctx->rulesets, &bk, e));) {
		struct np_ruleset *rs = e->val;

		if (rs->want && !rs->loaded) {
			if (diff && push_entries(&diff->add, rs) && !ret)
				ret = -ENOMEM;
			ctx->n_loaded_sets++;
			ctx->n_loaded_rules += rs->n_rules;
			ctx->n_loaded_cidrs += rs->n_cidrs;
		} else if (!rs->want && rs->loaded) {
			if (diff && push_entries(&diff->del, rs) && !ret)
				ret = -ENOMEM;
			ctx->n_loaded_sets--;
			ctx->n_loaded_rules -= rs->n_rules;
			ctx->n_loaded_cidrs -= rs->n_cidrs;
		}
		rs->loaded = rs->want;
		if (!rs->refs)
			dead[n_dead++] = rs;
	}
	for (size_t i = 0; i < n_dead; i++) {
		struct np_ruleset *rs = dead[i];

		np_map_del(&ctx->rulesets, rs->content, rs->clen);
		np_map_del(&ctx->rs_ids, &rs->id, 4);
		ctx->n_rule_entries -= rs->n_rules;
		ctx->n_cidr_entries -= rs->n_cidrs;
		free(rs->content);
		free(rs->rules);
		free(rs->cidrs);
		free(rs);
	}
	{
		int r = build_endpoints(ctx, &ep, &n_ep, err, errlen, &over);

		if (r) {
			ret = r;
			goto out;
		}
	}
	if (diff && ep_diff(ctx->ep, ctx->n_ep, ep, n_ep, diff) && !ret)
		ret = -ENOMEM;
	free(ctx->ep);
	ctx->ep = ep;
	ctx->n_ep = n_ep;
	if (over && !ret)
		ret = -ENOSPC;
	if (diff) {
		entries_sort(&diff->add);
		entries_sort(&diff->del);
	}
out:
	free(dirty);
	free(dead);
	return ret;
}

int np_dump(const struct np_ctx *ctx, struct np_entries *out)
{
	size_t bk = 0;

	memset(out, 0, sizeof(*out));
	out->ep = malloc((ctx->n_ep + 1) * sizeof(*out->ep));
	if (!out->ep)
		return -ENOMEM;
	if (ctx->n_ep)
		memcpy(out->ep, ctx->ep, ctx->n_ep * sizeof(*out->ep));
	out->n_ep = ctx->n_ep;
	for (struct np_map_ent *e = NULL; (e = np_map_next(&ctx->rulesets, &bk, e));) {
		if (((struct np_ruleset *)e->val)->loaded && push_entries(out, e->val)) {
			np_entries_fini(out);
			return -ENOMEM;
		}
	}
	entries_sort(out);
	return 0;
}

void np_stats_get(const struct np_ctx *ctx, struct np_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->pods = ctx->pods.n;
	st->identities = ctx->idents.n;
	st->policies = ctx->policies.n;
	st->rulesets = ctx->n_loaded_sets;
	st->rulesets_all = ctx->rulesets.n;
	st->ep_entries = ctx->n_ep;
	st->rule_entries = ctx->n_loaded_rules;
	st->cidr_entries = ctx->n_loaded_cidrs;
	st->map_bytes = ctx->n_ep * sizeof(struct np_ep_entry) +
			ctx->n_loaded_rules * sizeof(struct np_rule_entry) +
			ctx->n_loaded_cidrs * sizeof(struct np_cidr_entry);
	st->recomputed = ctx->recomputed;
}

/* --- the datapath's decision, on the compiled entries ----------------------------------------- */

static const struct np_ep_entry *ep_find(const struct np_ctx *ctx, const struct np_addr *a)
{
	struct np_ep_entry k;

	memset(&k, 0, sizeof(k));
	k.key.family = a->family;
	memcpy(k.key.addr, a->a, 16);
	return bsearch(&k, ctx->ep, ctx->n_ep, sizeof(k), ep_cmp);
}

/* Does an LPM entry of the rule map match (peer, dir, proto, port)? All
 * entries allow, so any match (not only the longest) decides. */
static bool rules_match(const struct np_ruleset *rs, uint32_t peer, uint8_t dir, uint8_t proto,
			uint16_t port)
{
	for (size_t i = 0; i < rs->n_rules; i++) {
		const struct sl_np_rule_key *k = &rs->rules[i].key;

		if (k->peer != peer || k->dir != dir)
			continue;
		if (k->prefixlen == SL_NP_RULE_PLEN_EXACT)
			return true;
		if (k->proto != proto)
			continue;
		uint32_t bits = SL_NP_RULE_PLEN_FULL - k->prefixlen;

		if ((uint32_t)(port >> bits) == (uint32_t)(ntohs(k->port) >> bits))
			return true;
	}
	return false;
}

/* Longest-prefix match in the rule set's CIDR entries. */
static uint32_t cidr_lookup(const struct np_ruleset *rs, uint8_t dir, const struct np_addr *a)
{
	uint32_t best = SL_NP_PEER_NONE;
	int best_len = -1;

	for (size_t i = 0; i < rs->n_cidrs; i++) {
		const struct sl_np_cidr_key *k = &rs->cidrs[i].key;
		struct np_addr p = {.family = k->family,
				    .plen = (uint8_t)(k->prefixlen - SL_NP_CIDR_PLEN_BASE)};

		memcpy(p.a, k->addr, 16);
		if (k->dir != dir || !np_addr_contains(&p, a) || (int)p.plen <= best_len)
			continue;
		best_len = p.plen;
		best = rs->cidrs[i].val.peer;
	}
	return best;
}

static bool side_allows(const struct np_ctx *ctx, int dir, const struct np_ep_entry *subj,
			const struct np_ep_entry *peer_ep, const struct np_addr *peer,
			uint8_t proto, uint16_t port)
{
	uint32_t rsid, cls;
	const struct np_ruleset *rs;

	if (!subj)
		return true; /* not a pod: nothing to enforce on this side */
	rsid = subj->val.ruleset[dir];
	if (rsid == SL_NP_RS_NONE)
		return true;
	if (rsid < SL_NP_RS_MIN)
		return false;
	rs = np_map_get(&ctx->rs_ids, &rsid, 4);
	if (!rs)
		return false;
	if (peer_ep && (rules_match(rs, peer_ep->val.identity, (uint8_t)dir, proto, port) ||
			rules_match(rs, peer_ep->val.ns, (uint8_t)dir, proto, port) ||
			rules_match(rs, SL_NP_PEER_ANY_POD, (uint8_t)dir, proto, port)))
		return true;
	if (rules_match(rs, SL_NP_PEER_ANY, (uint8_t)dir, proto, port))
		return true;
	cls = cidr_lookup(rs, (uint8_t)dir, peer);
	return cls != SL_NP_PEER_NONE && rules_match(rs, cls, (uint8_t)dir, proto, port);
}

int np_check(const struct np_ctx *ctx, const char *from, const char *to, uint8_t proto,
	     uint16_t port, int *reason)
{
	struct np_addr src, dst;
	const struct np_ep_entry *s, *d;

	if (reason)
		*reason = 0;
	if (np_addr_parse(from, false, &src) || np_addr_parse(to, false, &dst))
		return -EINVAL;
	/* A pod talking to itself is always allowed (upstream e2e skips the
	 * diagonal; this is the recommended choice, netpol.md §1). */
	if (!memcmp(&src, &dst, sizeof(src)))
		return 1;
	s = ep_find(ctx, &src);
	d = ep_find(ctx, &dst);
	if (!side_allows(ctx, SL_NP_EGRESS, s, d, &dst, proto, port)) {
		if (reason)
			*reason = s->val.ruleset[SL_NP_EGRESS] == SL_NP_RS_FAILED
					  ? SL_R_POLICY_FAILED
					  : SL_R_POLICY_EGRESS;
		return 0;
	}
	if (!side_allows(ctx, SL_NP_INGRESS, d, s, &src, proto, port)) {
		if (reason)
			*reason = d->val.ruleset[SL_NP_INGRESS] == SL_NP_RS_FAILED
					  ? SL_R_POLICY_FAILED
					  : SL_R_POLICY_INGRESS;
		return 0;
	}
	return 1;
}

static const struct np_pod *pod_find(const struct np_ctx *ctx, const char *ns, const char *name)
{
	char key[512];
	int n = snprintf(key, sizeof(key), "%s/%s", ns, name);

	if (n < 0 || (size_t)n >= sizeof(key))
		return NULL;
	return np_map_get(&ctx->pods, key, (size_t)n);
}

uint32_t np_pod_identity(const struct np_ctx *ctx, const char *ns, const char *name)
{
	const struct np_pod *p = pod_find(ctx, ns, name);

	return p && p->ident ? p->ident->id : 0;
}

uint32_t np_pod_ruleset(const struct np_ctx *ctx, const char *ns, const char *name,
			enum sl_np_dir dir)
{
	const struct np_pod *p = pod_find(ctx, ns, name);

	return p && p->ident && dir < SL_NP_NDIRS ? p->ident->rs[dir] : 0;
}
