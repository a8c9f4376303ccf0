// SPDX-License-Identifier: Apache-2.0
/*
 * The compiler's object model: namespaces, pods (grouped into identities)
 * and parsed policies, and the dirty tracking that lets np_compile()
 * recompute only what a change can affect:
 *   - a policy change dirties the identities its old and new versions select;
 *   - an identity appearing or disappearing (first/last pod with that key)
 *     dirties the identities selected by every policy with a peer matching
 *     it, and itself;
 *   - a namespace label change dirties the identities selected by every
 *     policy with a namespaceSelector peer matching the old or new labels;
 *   - a pod label change is its identity changing; an address change only
 *     touches endpoint entries.
 * The first two also bump ctx->gen, which invalidates the cached peer
 * matches.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "np_int.h"
#include "sluice/err.h"

#define NS_NAME_LABEL "kubernetes.io/metadata.name"

void np_limits_default(struct np_limits *lim)
{
	lim->max_rules = SL_NP_MAX_RULES;
	lim->max_cidrs = SL_NP_MAX_CIDRS;
	lim->max_endpoints = SL_NP_MAX_ENDPOINTS;
	lim->max_set_entries = 65536;
	lim->max_identities = SL_NP_ID_MAX - SL_NP_ID_MIN + 1 < 1000000
				      ? SL_NP_ID_MAX - SL_NP_ID_MIN + 1
				      : 1000000;
}

struct np_ctx *np_new(const struct np_limits *lim)
{
	struct np_ctx *ctx = calloc(1, sizeof(*ctx));

	if (!ctx) {
		errno = ENOMEM;
		return NULL;
	}
	if (lim)
		ctx->lim = *lim;
	else
		np_limits_default(&ctx->lim);
	return ctx;
}

static void kv_free(struct np_kv *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].key);
		free(v[i].value);
	}
	free(v);
}

static int kv_cmp(const void *a, const void *b)
{
	return strcmp(((const struct np_kv *)a)->key, ((const struct np_kv *)b)->key);
}

/* Sorted copy of labels; a repeated key keeps its last value. */
static int kv_copy(const struct sl_label *l, size_t n, struct np_kv **out, size_t *nout)
{
	struct np_kv *v = calloc(n ? n : 1, sizeof(*v));
	size_t k = 0;

	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		char *value;
		size_t j;

		if (!l[i].key)
			continue;
		value = strdup(l[i].value ? l[i].value : "");
		if (!value) {
			kv_free(v, k);
			return -ENOMEM;
		}
		/* Label maps are small; a linear search keeps the last value. */
		for (j = 0; j < k && strcmp(v[j].key, l[i].key); j++)
			;
		if (j < k) {
			free(v[j].value);
			v[j].value = value;
			continue;
		}
		v[k].key = strdup(l[i].key);
		v[k].value = value;
		if (!v[k].key) {
			free(value);
			kv_free(v, k);
			return -ENOMEM;
		}
		k++;
	}
	qsort(v, k, sizeof(*v), kv_cmp);
	*out = v;
	*nout = k;
	return 0;
}

static void seterr(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

uint8_t np_proto_parse(const char *s)
{
	if (!s || !strcmp(s, "TCP"))
		return 6;
	if (!strcmp(s, "UDP"))
		return 17;
	if (!strcmp(s, "SCTP"))
		return 132;
	return 0;
}

/* --- addresses ---------------------------------------------------------------------------- */

static void addr_mask(struct np_addr *a)
{
	size_t bytes = a->family == SL_NP_AF_INET ? 4 : 16;

	for (size_t i = 0; i < bytes; i++) {
		int keep = (int)a->plen - (int)i * 8;

		if (keep <= 0)
			a->a[i] = 0;
		else if (keep < 8)
			a->a[i] &= (uint8_t)(0xff << (8 - keep));
	}
}

/* "a.b.c.d", "x::y" (host) or with "/len" when prefix. Host bits of a
 * prefix are cleared (10.1.2.3/8 means 10.0.0.0/8, as the API accepts it). */
int np_addr_parse(const char *s, bool prefix, struct np_addr *out)
{
	char buf[64];
	const char *slash = prefix ? strchr(s, '/') : NULL;
	size_t len = slash ? (size_t)(slash - s) : strlen(s);
	long plen;
	char *end;

	memset(out, 0, sizeof(*out));
	if (prefix && !slash)
		return -EINVAL;
	if (len == 0 || len >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, s, len);
	buf[len] = '\0';
	if (inet_pton(AF_INET, buf, out->a) == 1) {
		out->family = SL_NP_AF_INET;
		out->plen = 32;
	} else if (inet_pton(AF_INET6, buf, out->a) == 1) {
		out->family = SL_NP_AF_INET6;
		out->plen = 128;
	} else {
		return -EINVAL;
	}
	if (!slash)
		return 0;
	if (slash[1] < '0' || slash[1] > '9')
		return -EINVAL;
	errno = 0;
	plen = strtol(slash + 1, &end, 10);
	if (errno || *end || plen < 0 || plen > out->plen || end - (slash + 1) > 3)
		return -EINVAL;
	out->plen = (uint8_t)plen;
	addr_mask(out);
	return 0;
}

bool np_addr_contains(const struct np_addr *outer, const struct np_addr *inner)
{
	if (outer->family != inner->family || outer->plen > inner->plen)
		return false;
	for (int i = 0; i < outer->plen; i++) {
		int bit = 7 - (i & 7);

		if (((outer->a[i >> 3] >> bit) & 1) != ((inner->a[i >> 3] >> bit) & 1))
			return false;
	}
	return true;
}

/* --- namespaces --------------------------------------------------------------------------- */

const struct np_ns *np_ns_lookup(const struct np_ctx *ctx, const char *name)
{
	return np_map_get(&ctx->nss, name, strlen(name));
}

/* Labels of namespace `name` as sl_label (borrowed strings); a namespace
 * never recorded has only its name label. Returns how many were written. */
void np_ns_labels(const struct np_ctx *ctx, const char *name, struct sl_label *out, size_t max,
		  size_t *n)
{
	const struct np_ns *ns = np_ns_lookup(ctx, name);

	*n = 0;
	if (!ns) {
		if (max) {
			out[0].key = NS_NAME_LABEL;
			out[0].value = name;
			*n = 1;
		}
		return;
	}
	for (size_t i = 0; i < ns->n_labels && i < max; i++) {
		out[i].key = ns->labels[i].key;
		out[i].value = ns->labels[i].value;
		(*n)++;
	}
}

bool np_ns_sel_match(const struct np_ctx *ctx, const struct sl_labelsel *sel, const char *ns)
{
	const struct np_ns *n = np_ns_lookup(ctx, ns);
	struct sl_label one = {NS_NAME_LABEL, ns};

	if (!n)
		return sl_labelsel_match(sel, &one, 1);
	return sl_labelsel_match(sel, n->lv, n->n_labels);
}

/* sl_label views of kv (borrowed strings); NULL on ENOMEM. */
static struct sl_label *kv_view(const struct np_kv *kv, size_t n)
{
	struct sl_label *v = calloc(n + 1, sizeof(*v));

	for (size_t i = 0; v && i < n; i++) {
		v[i].key = kv[i].key;
		v[i].value = kv[i].value;
	}
	return v;
}

bool np_policy_selects(const struct np_policy *pol, const struct np_ident *id)
{
	if (strcmp(pol->ns, id->ns))
		return false;
	return sl_labelsel_match(pol->target, id->lv, id->n_labels);
}

bool np_peer_all_pods(const struct np_peer *peer)
{
	return peer->kind == NP_PEER_SEL && peer->ns && sl_labelsel_empty(peer->ns) &&
	       sl_labelsel_empty(peer->pod);
}

bool np_peer_ns_level(const struct np_peer *peer)
{
	return peer->kind == NP_PEER_SEL && sl_labelsel_empty(peer->pod) && !np_peer_all_pods(peer);
}

bool np_peer_matches(const struct np_ctx *ctx, const struct np_policy *pol,
		     const struct np_peer *peer, const struct np_ident *id)
{
	if (peer->kind != NP_PEER_SEL)
		return false;
	if (peer->ns) {
		if (!np_ns_sel_match(ctx, peer->ns, id->ns))
			return false;
	} else if (strcmp(pol->ns, id->ns)) {
		return false;
	}
	return !peer->pod || sl_labelsel_match(peer->pod, id->lv, id->n_labels);
}

/* Marks the identities a policy selects dirty. */
static void mark_selected(struct np_ctx *ctx, const struct np_policy *pol)
{
	size_t b = 0;

	for (struct np_map_ent *e = NULL; (e = np_map_next(&ctx->idents, &b, e));) {
		struct np_ident *id = e->val;

		if (!id->dirty && np_policy_selects(pol, id))
			id->dirty = true;
	}
}

/* Does a rule's compiled form change when identity `id` appears or
 * disappears? Identity peers matching it: yes. A rule whose egress ports
 * are named expands every peer per identity (ports resolve per
 * destination): yes when a peer (or "any") covers it. Namespace-level
 * peers list namespaces that have pods, so only when `id` is its
 * namespace's first or last identity (ns_edge); SL_NP_PEER_ANY_POD never. */
static bool rule_depends_on(const struct np_ctx *ctx, const struct np_policy *pol,
			    const struct np_rule *r, int dir, const struct np_ident *id,
			    bool ns_edge)
{
	bool expands = dir == SL_NP_EGRESS && r->named;

	if (!r->n_peers)
		return expands;
	for (size_t k = 0; k < r->n_peers; k++) {
		const struct np_peer *p = &r->peers[k];

		if (!expands && np_peer_all_pods(p))
			continue;
		if (!expands && !ns_edge && np_peer_ns_level(p))
			continue;
		if (np_peer_matches(ctx, pol, p, id))
			return true;
	}
	return false;
}

/* Is `id` the only identity of its namespace? */
static bool ns_sole_identity(const struct np_ctx *ctx, const struct np_ident *id)
{
	size_t b = 0;

	for (struct np_map_ent *e = NULL; (e = np_map_next(&ctx->idents, &b, e));) {
		const struct np_ident *o = e->val;

		if (o != id && !strcmp(o->ns, id->ns))
			return false;
	}
	return true;
}

/* An identity appeared or disappeared: every policy that can see it as a
 * peer has to recompute the identities it selects. */
static void ident_changed(struct np_ctx *ctx, struct np_ident *id)
{
	size_t b = 0;
	bool ns_edge = ns_sole_identity(ctx, id);

	ctx->gen++;
	id->dirty = true;
	for (struct np_map_ent *e = NULL; (e = np_map_next(&ctx->policies, &b, e));) {
		const struct np_policy *pol = e->val;
		bool hit = false;

		for (int d = 0; d < SL_NP_NDIRS && !hit; d++)
			for (size_t i = 0; i < pol->n_rules[d] && !hit; i++)
				hit = rule_depends_on(ctx, pol, &pol->rules[d][i], d, id, ns_edge);
		if (hit)
			mark_selected(ctx, pol);
	}
}

void np_ident_mark_all(struct np_ctx *ctx)
{
	size_t b = 0;

	for (struct np_map_ent *e = NULL; (e = np_map_next(&ctx->idents, &b, e));)
		((struct np_ident *)e->val)->dirty = true;
}

void np_invalidate(struct np_ctx *ctx)
{
	ctx->gen++;
	ctx->all_dirty = true;
}

/* Namespace labels changed from `old` to the current ones: policies with
 * a namespaceSelector peer matching either side recompute their targets. */
static void ns_labels_changed(struct np_ctx *ctx, const char *name, const struct np_kv *old,
			      size_t n_old)
{
	struct sl_label *ov = kv_view(old, n_old);
	size_t b = 0;

	if (!ov) {
		/* Cannot tell which policies care: recompute everything. */
		np_invalidate(ctx);
		return;
	}

	ctx->gen++;
	for (struct np_map_ent *e = NULL; (e = np_map_next(&ctx->policies, &b, e));) {
		const struct np_policy *pol = e->val;
		bool hit = false;

		for (int d = 0; d < SL_NP_NDIRS && !hit; d++) {
			for (size_t i = 0; i < pol->n_rules[d] && !hit; i++) {
				const struct np_rule *r = &pol->rules[d][i];

				for (size_t k = 0; k < r->n_peers && !hit; k++) {
					const struct np_peer *p = &r->peers[k];

					/* SL_NP_PEER_ANY_POD does not care, unless
					 * named egress ports expand it. */
					if (p->kind != NP_PEER_SEL || !p->ns ||
					    (np_peer_all_pods(p) &&
					     !(d == SL_NP_EGRESS && r->named)))
						continue;
					hit = sl_labelsel_match(p->ns, ov, n_old) ||
					      np_ns_sel_match(ctx, p->ns, name);
				}
			}
		}
		if (hit)
			mark_selected(ctx, pol);
	}
	free(ov);
}

int np_ns_set(struct np_ctx *ctx, const char *name, const struct sl_label *labels, size_t n)
{
	struct np_ns *ns;
	struct sl_label *all;
	struct np_kv *kv, *old_kv = NULL;
	size_t nkv, n_old = 0, k = 0;
	int ret;

	if (!name || !*name)
		return -SL_ERR_INVALID;
	all = calloc(n + 1, sizeof(*all));
	if (!all)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		if (labels[i].key && strcmp(labels[i].key, NS_NAME_LABEL))
			all[k++] = labels[i];
	all[k].key = NS_NAME_LABEL;
	all[k++].value = name;
	ret = kv_copy(all, k, &kv, &nkv);
	free(all);
	if (ret)
		return ret;
	ns = (struct np_ns *)np_ns_lookup(ctx, name);
	if (!ns) {
		ns = calloc(1, sizeof(*ns));
		if (!ns || !(ns->name = strdup(name)) ||
		    np_map_put(&ctx->nss, name, strlen(name), ns)) {
			if (ns)
				free(ns->name);
			free(ns);
			kv_free(kv, nkv);
			return -ENOMEM;
		}
		/* Before: the implied {name label} only. */
		old_kv = calloc(1, sizeof(*old_kv));
		if (old_kv) {
			old_kv->key = (char *)NS_NAME_LABEL;
			old_kv->value = (char *)name;
			n_old = 1;
		}
		ns->labels = kv;
		ns->n_labels = nkv;
		ns->lv = kv_view(kv, nkv);
		ns->set = true;
		if (!ns->lv) {
			np_map_del(&ctx->nss, name, strlen(name));
			kv_free(kv, nkv);
			free(ns->name);
			free(ns);
			free(old_kv);
			return -ENOMEM;
		}
		/* A NULL old_kv (no memory) is treated as no labels; fall back
		 * to recomputing everything rather than miss a change. */
		if (!old_kv)
			np_invalidate(ctx);
		else
			ns_labels_changed(ctx, name, old_kv, n_old);
		free(old_kv);
		return 0;
	}
	struct sl_label *lv = kv_view(kv, nkv);

	if (!lv) {
		kv_free(kv, nkv);
		return -ENOMEM;
	}
	old_kv = ns->labels;
	n_old = ns->n_labels;
	free(ns->lv);
	ns->labels = kv;
	ns->n_labels = nkv;
	ns->lv = lv;
	ns->set = true;
	ns_labels_changed(ctx, name, old_kv, n_old);
	kv_free(old_kv, n_old);
	return 0;
}

int np_ns_set_k8s(struct np_ctx *ctx, const struct k8s_namespace *ns)
{
	const struct k8s_strmap *m = &ns->meta.labels;
	struct sl_label *l = calloc(m->n + 1, sizeof(*l));
	int ret;

	if (!l)
		return -ENOMEM;
	for (size_t i = 0; i < m->n; i++) {
		l[i].key = m->v[i].key;
		l[i].value = m->v[i].value;
	}
	ret = np_ns_set(ctx, ns->meta.name, l, m->n);
	free(l);
	return ret;
}

int np_ns_del(struct np_ctx *ctx, const char *name)
{
	struct np_ns *ns = np_map_del(&ctx->nss, name, strlen(name));

	if (!ns)
		return -SL_ERR_NOTFOUND;
	/* Back to the implied name label (pods may still exist briefly). */
	ns_labels_changed(ctx, name, ns->labels, ns->n_labels);
	kv_free(ns->labels, ns->n_labels);
	free(ns->lv);
	free(ns->name);
	free(ns);
	return 0;
}

/* --- identities and pods ---------------------------------------------------------------- */

static int cport_cmp(const void *a, const void *b)
{
	const struct np_cport *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	if (c)
		return c;
	if (x->proto != y->proto)
		return x->proto < y->proto ? -1 : 1;
	return x->port < y->port ? -1 : x->port > y->port;
}

/* Canonical key: length-prefixed fields, so no separator can be forged by
 * a label value. */
static int key_add(char **buf, size_t *len, size_t *cap, const void *p, size_t n)
{
	uint32_t l = (uint32_t)n;

	if (*len + n + 4 > *cap) {
		size_t nc = (*cap ? *cap * 2 : 256) + n + 4;
		char *nb = realloc(*buf, nc);

		if (!nb)
			return -ENOMEM;
		*buf = nb;
		*cap = nc;
	}
	memcpy(*buf + *len, &l, 4);
	memcpy(*buf + *len + 4, p, n);
	*len += n + 4;
	return 0;
}

static void ident_free(struct np_ident *id)
{
	if (!id)
		return;
	free(id->key);
	free(id->ns);
	kv_free(id->labels, id->n_labels);
	free(id->lv);
	for (size_t i = 0; i < id->n_ports; i++)
		free(id->ports[i].name);
	free(id->ports);
	free(id);
}

/* The namespace's peer id: a hash of the name with linear probing, kept
 * for the context's lifetime (namespaces are few), so it is stable. */
static int ns_peer_get(struct np_ctx *ctx, const char *ns, uint32_t *out)
{
	uint32_t *v = np_map_get(&ctx->ns_nums, ns, strlen(ns)), n;

	if (v) {
		*out = *v;
		return 0;
	}
	v = malloc(sizeof(*v));
	if (!v)
		return -ENOMEM;
	n = (uint32_t)(np_hash(ns, strlen(ns), 4) % (SL_NP_NS_MAX + 1));
	while (np_map_get(&ctx->ns_num_used, &(uint32_t){SL_NP_PEER_NS_BASE + n}, 4))
		n = (n + 1) % (SL_NP_NS_MAX + 1);
	*v = SL_NP_PEER_NS_BASE + n;
	if (np_map_put(&ctx->ns_nums, ns, strlen(ns), v)) {
		free(v);
		return -ENOMEM;
	}
	if (np_map_put(&ctx->ns_num_used, v, 4, v)) {
		np_map_del(&ctx->ns_nums, ns, strlen(ns));
		free(v);
		return -ENOMEM;
	}
	*out = *v;
	return 0;
}

/* The identity for {ns, labels, ports}: found or created with refs 0.
 * Takes ownership of kv and ports in both cases. */
static int ident_get(struct np_ctx *ctx, const char *ns, struct np_kv *kv, size_t nkv,
		     struct np_cport *ports, size_t nports, struct np_ident **out)
{
	char *key = NULL, num[8];
	size_t len = 0, cap = 0;
	struct np_ident *id;
	int ret = key_add(&key, &len, &cap, ns, strlen(ns));
	uint32_t span = SL_NP_ID_MAX - SL_NP_ID_MIN + 1, v;

	for (size_t i = 0; !ret && i < nkv; i++) {
		ret = key_add(&key, &len, &cap, kv[i].key, strlen(kv[i].key));
		if (!ret)
			ret = key_add(&key, &len, &cap, kv[i].value, strlen(kv[i].value));
	}
	for (size_t i = 0; !ret && i < nports; i++) {
		ret = key_add(&key, &len, &cap, ports[i].name, strlen(ports[i].name));
		num[0] = (char)ports[i].proto;
		memcpy(num + 1, &ports[i].port, 2);
		if (!ret)
			ret = key_add(&key, &len, &cap, num, 3);
	}
	if (ret)
		goto fail;
	id = np_map_get(&ctx->idents, key, len);
	if (id) {
		free(key);
		kv_free(kv, nkv);
		for (size_t i = 0; i < nports; i++)
			free(ports[i].name);
		free(ports);
		*out = id;
		return 0;
	}
	if (ctx->idents.n >= ctx->lim.max_identities) {
		ret = -ENOSPC;
		goto fail;
	}
	id = calloc(1, sizeof(*id));
	if (!id || !(id->ns = strdup(ns))) {
		free(id);
		ret = -ENOMEM;
		goto fail;
	}
	id->key = key;
	id->klen = len;
	id->labels = kv;
	id->n_labels = nkv;
	id->ports = ports;
	id->n_ports = nports;
	id->lv = kv_view(kv, nkv);
	if (!id->lv || ns_peer_get(ctx, ns, &id->ns_peer)) {
		ident_free(id);
		return -ENOMEM;
	}
	/* Hash-derived id with linear probing: stable for the key, equal in
	 * every fresh context (barring a collision on the way). */
	v = (uint32_t)(np_hash(key, len, 1) % span);
	while (np_map_get(&ctx->ident_ids, &(uint32_t){SL_NP_ID_MIN + v}, 4))
		v = (v + 1) % span;
	id->id = SL_NP_ID_MIN + v;
	if (np_map_put(&ctx->idents, key, len, id)) {
		ident_free(id);
		return -ENOMEM;
	}
	if (np_map_put(&ctx->ident_ids, &id->id, 4, id)) {
		np_map_del(&ctx->idents, key, len);
		ident_free(id);
		return -ENOMEM;
	}
	*out = id;
	return 0;
fail:
	free(key);
	kv_free(kv, nkv);
	for (size_t i = 0; i < nports; i++)
		free(ports[i].name);
	free(ports);
	return ret;
}

static void ident_put(struct np_ctx *ctx, struct np_ident *id)
{
	if (!id || --id->refs)
		return;
	ident_changed(ctx, id);
	np_map_del(&ctx->idents, id->key, id->klen);
	np_map_del(&ctx->ident_ids, &id->id, 4);
	for (int d = 0; d < SL_NP_NDIRS; d++)
		np_ruleset_release(ctx, id->rs[d]);
	ident_free(id);
}

static void pod_free(struct np_pod *p)
{
	if (!p)
		return;
	free(p->key);
	free(p->ns);
	free(p->name);
	free(p->node);
	free(p->addrs);
	free(p);
}

static char *pod_key(const char *ns, const char *name)
{
	char *k;

	if (asprintf(&k, "%s/%s", ns, name) < 0)
		return NULL;
	return k;
}

int np_pod_set(struct np_ctx *ctx, const struct np_pod_spec *spec, char *err, size_t errlen)
{
	struct np_pod *p = NULL, *old;
	struct np_kv *kv = NULL;
	struct np_cport *ports = NULL;
	size_t nkv = 0, nports = 0;
	int ret;

	if (!spec->ns || !*spec->ns || !spec->name || !*spec->name) {
		seterr(err, errlen, "pod: metadata.namespace and metadata.name are required");
		return -SL_ERR_INVALID;
	}
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->key = pod_key(spec->ns, spec->name);
	p->ns = strdup(spec->ns);
	p->name = strdup(spec->name);
	p->node = spec->node ? strdup(spec->node) : NULL;
	p->addrs = calloc(spec->n_ips ? spec->n_ips : 1, sizeof(*p->addrs));
	p->host_network = spec->host_network;
	if (!p->key || !p->ns || !p->name || (spec->node && !p->node) || !p->addrs) {
		ret = -ENOMEM;
		goto fail;
	}
	for (size_t i = 0; i < spec->n_ips; i++) {
		struct np_addr a;

		if (!spec->ips[i] || np_addr_parse(spec->ips[i], false, &a)) {
			seterr(err, errlen,
			       "pod '%s': status.podIPs[%zu]: not an IP address: \"%s\"", p->key, i,
			       spec->ips[i] ? spec->ips[i] : "(null)");
			ret = -SL_ERR_INVALID;
			goto fail;
		}
		bool dup = false;
		for (size_t j = 0; j < p->n_addrs; j++)
			dup = dup || !memcmp(&p->addrs[j], &a, sizeof(a));
		if (!dup)
			p->addrs[p->n_addrs++] = a;
	}
	if (!spec->host_network) {
		ret = kv_copy(spec->labels, spec->n_labels, &kv, &nkv);
		if (ret)
			goto fail;
		ports = calloc(spec->n_ports ? spec->n_ports : 1, sizeof(*ports));
		if (!ports) {
			kv_free(kv, nkv);
			ret = -ENOMEM;
			goto fail;
		}
		for (size_t i = 0; i < spec->n_ports; i++) {
			const struct np_port *sp = &spec->ports[i];

			/* Unnamed ports cannot be referenced; a port with an
			 * unknown protocol cannot match a rule. */
			if (!sp->name || !*sp->name || !sp->proto)
				continue;
			ports[nports].name = strdup(sp->name);
			ports[nports].proto = sp->proto;
			ports[nports].port = sp->port;
			if (!ports[nports].name) {
				for (size_t j = 0; j < nports; j++)
					free(ports[j].name);
				free(ports);
				kv_free(kv, nkv);
				ret = -ENOMEM;
				goto fail;
			}
			nports++;
		}
		qsort(ports, nports, sizeof(*ports), cport_cmp);
		ret = ident_get(ctx, spec->ns, kv, nkv, ports, nports, &p->ident);
		if (ret) {
			if (ret == -ENOSPC) {
				seterr(err, errlen,
				       "pod '%s': identity limit %zu reached; the pod has no "
				       "policy endpoint and must not run",
				       p->key, ctx->lim.max_identities);
				/* An older version of the pod would keep enforcing
				 * its old labels: drop it too. */
				np_pod_del(ctx, spec->ns, spec->name);
			}
			goto fail;
		}
		if (p->ident->refs++ == 0)
			ident_changed(ctx, p->ident);
	}
	old = np_map_get(&ctx->pods, p->key, strlen(p->key));
	if (np_map_put(&ctx->pods, p->key, strlen(p->key), p)) {
		/* Undo the reference; the identity may vanish again. */
		ident_put(ctx, p->ident);
		p->ident = NULL;
		ret = -ENOMEM;
		goto fail;
	}
	if (old) {
		ident_put(ctx, old->ident);
		pod_free(old);
	}
	return 0;
fail:
	pod_free(p);
	return ret;
}

int np_pod_set_k8s(struct np_ctx *ctx, const struct k8s_pod *pod, char *err, size_t errlen)
{
	const struct k8s_strmap *m = &pod->meta.labels;
	const struct k8s_pod_status *st = &pod->status;
	struct np_pod_spec spec = {
		.ns = pod->meta.namespace,
		.name = pod->meta.name,
		.node = pod->spec.node_name,
		.host_network = pod->spec.host_network,
	};
	struct sl_label *l = calloc(m->n + 1, sizeof(*l));
	const char **ips = calloc(st->n_pod_ips + 1, sizeof(*ips));
	size_t nports = 0;
	struct np_port *ports;
	bool finished =
		st->phase && (!strcmp(st->phase, "Succeeded") || !strcmp(st->phase, "Failed"));
	int ret;

	for (size_t i = 0; i < pod->spec.n_containers; i++)
		nports += pod->spec.containers[i].n_ports;
	ports = calloc(nports + 1, sizeof(*ports));
	if (!l || !ips || !ports) {
		ret = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < m->n; i++) {
		l[i].key = m->v[i].key;
		l[i].value = m->v[i].value;
	}
	spec.labels = l;
	spec.n_labels = m->n;
	if (!finished) {
		for (size_t i = 0; i < st->n_pod_ips; i++)
			if (st->pod_ips[i].ip)
				ips[spec.n_ips++] = st->pod_ips[i].ip;
		if (!spec.n_ips && st->pod_ip && *st->pod_ip)
			ips[spec.n_ips++] = st->pod_ip;
	}
	spec.ips = ips;
	nports = 0;
	for (size_t i = 0; i < pod->spec.n_containers; i++) {
		const struct k8s_container *c = &pod->spec.containers[i];

		for (size_t j = 0; j < c->n_ports; j++) {
			const struct k8s_container_port *cp = &c->ports[j];

			if (!cp->name || cp->container_port < 1 || cp->container_port > 65535)
				continue;
			ports[nports].name = cp->name;
			ports[nports].proto = np_proto_parse(cp->protocol);
			ports[nports].port = (uint16_t)cp->container_port;
			nports++;
		}
	}
	spec.ports = ports;
	spec.n_ports = nports;
	ret = np_pod_set(ctx, &spec, err, errlen);
out:
	free(l);
	free(ips);
	free(ports);
	return ret;
}

int np_pod_del(struct np_ctx *ctx, const char *ns, const char *name)
{
	char *key = pod_key(ns, name);
	struct np_pod *p;

	if (!key)
		return -ENOMEM;
	p = np_map_del(&ctx->pods, key, strlen(key));
	free(key);
	if (!p)
		return -SL_ERR_NOTFOUND;
	ident_put(ctx, p->ident);
	pod_free(p);
	return 0;
}

/* --- policies ---------------------------------------------------------------------------- */

static void rules_free(struct np_rule *rules, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct np_rule *r = &rules[i];

		for (size_t k = 0; k < r->n_peers; k++) {
			sl_labelsel_free(r->peers[k].pod);
			sl_labelsel_free(r->peers[k].ns);
			free(r->peers[k].except);
			free(r->peers[k].match);
		}
		free(r->peers);
		for (size_t k = 0; k < r->n_ports; k++)
			free(r->ports[k].name);
		free(r->ports);
	}
	free(rules);
}

static void policy_free(struct np_policy *p)
{
	if (!p)
		return;
	free(p->key);
	free(p->ns);
	free(p->name);
	sl_labelsel_free(p->target);
	for (int d = 0; d < SL_NP_NDIRS; d++)
		rules_free(p->rules[d], p->n_rules[d]);
	free(p->error);
	free(p);
}

/* IANA_SVC_NAME as the API validates port names: 1-15 of [a-z0-9-], at
 * least one letter, no leading, trailing or double '-'. */
static bool port_name_ok(const char *s)
{
	size_t n = strlen(s);
	bool letter = false;

	if (n < 1 || n > 15 || s[0] == '-' || s[n - 1] == '-' || strstr(s, "--"))
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] >= 'a' && s[i] <= 'z')
			letter = true;
		else if (!(s[i] >= '0' && s[i] <= '9') && s[i] != '-')
			return false;
	}
	return letter;
}

static int parse_port(const struct k8s_netpol_port *kp, const char *path, struct np_portsel *out,
		      char *err, size_t errlen)
{
	memset(out, 0, sizeof(*out));
	out->proto = np_proto_parse(kp->protocol);
	if (!out->proto) {
		seterr(err, errlen, "%s.protocol: unsupported value \"%s\" (TCP, UDP or SCTP)",
		       path, kp->protocol);
		return -SL_ERR_INVALID;
	}
	switch (kp->port.type) {
	case K8S_INTSTR_NONE:
		if (kp->end_port) {
			seterr(err, errlen, "%s.endPort: requires a numeric port", path);
			return -SL_ERR_INVALID;
		}
		out->lo = 0;
		out->hi = 65535;
		return 0;
	case K8S_INTSTR_INT:
		if (kp->port.ival < 1 || kp->port.ival > 65535) {
			seterr(err, errlen, "%s.port: %d is not in 1-65535", path, kp->port.ival);
			return -SL_ERR_INVALID;
		}
		out->lo = out->hi = (uint16_t)kp->port.ival;
		if (kp->end_port) {
			if (kp->end_port < kp->port.ival || kp->end_port > 65535) {
				seterr(err, errlen, "%s.endPort: %d must be in %d-65535", path,
				       kp->end_port, kp->port.ival);
				return -SL_ERR_INVALID;
			}
			out->hi = (uint16_t)kp->end_port;
		}
		return 0;
	case K8S_INTSTR_STR:
		if (!kp->port.sval || !port_name_ok(kp->port.sval)) {
			seterr(err, errlen,
			       "%s.port: \"%s\" is not a port number or a valid port name", path,
			       kp->port.sval ? kp->port.sval : "");
			return -SL_ERR_INVALID;
		}
		if (kp->end_port) {
			seterr(err, errlen, "%s.endPort: not allowed with a named port", path);
			return -SL_ERR_INVALID;
		}
		out->name = strdup(kp->port.sval);
		return out->name ? 0 : -ENOMEM;
	}
	seterr(err, errlen, "%s.port: bad value", path);
	return -SL_ERR_INVALID;
}

static int parse_peer(const struct k8s_netpol_peer *kp, const char *path, struct np_peer *out,
		      char *err, size_t errlen)
{
	char sub[160];

	memset(out, 0, sizeof(*out));
	if (kp->ip_block.raw) {
		if (kp->pod_selector || kp->namespace_selector) {
			seterr(err, errlen,
			       "%s: ipBlock cannot be combined with podSelector or "
			       "namespaceSelector in one peer",
			       path);
			return -SL_ERR_INVALID;
		}
		out->kind = NP_PEER_CIDR;
		if (!kp->ip_block.cidr || np_addr_parse(kp->ip_block.cidr, true, &out->cidr)) {
			seterr(err, errlen, "%s.ipBlock.cidr: not a CIDR: \"%s\"", path,
			       kp->ip_block.cidr ? kp->ip_block.cidr : "");
			return -SL_ERR_INVALID;
		}
		out->except = calloc(kp->ip_block.except.n + 1, sizeof(*out->except));
		if (!out->except)
			return -ENOMEM;
		for (size_t i = 0; i < kp->ip_block.except.n; i++) {
			struct np_addr *e = &out->except[out->n_except];

			if (np_addr_parse(kp->ip_block.except.v[i], true, e) ||
			    e->family != out->cidr.family) {
				seterr(err, errlen,
				       "%s.ipBlock.except[%zu]: not a CIDR of the cidr's family: "
				       "\"%s\"",
				       path, i, kp->ip_block.except.v[i]);
				return -SL_ERR_INVALID;
			}
			out->n_except++;
		}
		return 0;
	}
	out->kind = NP_PEER_SEL;
	if (!kp->pod_selector && !kp->namespace_selector) {
		seterr(err, errlen,
		       "%s: must specify at least one of podSelector, namespaceSelector, ipBlock",
		       path);
		return -SL_ERR_INVALID;
	}
	if (kp->pod_selector) {
		snprintf(sub, sizeof(sub), "%s.podSelector", path);
		out->pod = sl_labelsel_from_json(kp->pod_selector, sub, err, errlen);
		if (!out->pod)
			return errno == ENOMEM ? -ENOMEM : -SL_ERR_INVALID;
	}
	if (kp->namespace_selector) {
		snprintf(sub, sizeof(sub), "%s.namespaceSelector", path);
		out->ns = sl_labelsel_from_json(kp->namespace_selector, sub, err, errlen);
		if (!out->ns)
			return errno == ENOMEM ? -ENOMEM : -SL_ERR_INVALID;
	}
	return 0;
}

static int parse_rules(const struct k8s_netpol_rule *kr, size_t n, int dir, struct np_rule **out,
		       size_t *nout, char *err, size_t errlen)
{
	const char *sec = dir == SL_NP_INGRESS ? "ingress" : "egress";
	const char *peers = dir == SL_NP_INGRESS ? "from" : "to";
	struct np_rule *rules = calloc(n ? n : 1, sizeof(*rules));
	char path[128];
	int ret = 0;

	if (!rules)
		return -ENOMEM;
	*out = rules;
	*nout = n;
	for (size_t i = 0; i < n && !ret; i++) {
		struct np_rule *r = &rules[i];

		r->peers = calloc(kr[i].n_peers + 1, sizeof(*r->peers));
		r->ports = calloc(kr[i].n_ports + 1, sizeof(*r->ports));
		if (!r->peers || !r->ports)
			return -ENOMEM;
		for (size_t k = 0; k < kr[i].n_peers && !ret; k++) {
			snprintf(path, sizeof(path), "spec.%s[%zu].%s[%zu]", sec, i, peers, k);
			ret = parse_peer(&kr[i].peers[k], path, &r->peers[k], err, errlen);
			r->n_peers = k + 1;
		}
		for (size_t k = 0; k < kr[i].n_ports && !ret; k++) {
			snprintf(path, sizeof(path), "spec.%s[%zu].ports[%zu]", sec, i, k);
			ret = parse_port(&kr[i].ports[k], path, &r->ports[k], err, errlen);
			r->n_ports = k + 1;
			r->named = r->named || r->ports[k].name;
		}
	}
	return ret;
}

static struct np_policy *policy_lookup(const struct np_ctx *ctx, const char *ns, const char *name)
{
	char *key = pod_key(ns, name);
	struct np_policy *p;

	if (!key)
		return NULL;
	p = np_map_get(&ctx->policies, key, strlen(key));
	free(key);
	return p;
}

int np_policy_set(struct np_ctx *ctx, const struct k8s_netpol *kp, char *err, size_t errlen)
{
	const struct k8s_netpol_spec *s = &kp->spec;
	struct np_policy *p, *old;
	char msg[512] = "";
	int ret = 0;
	uint32_t v;

	if (!kp->meta.namespace || !*kp->meta.namespace || !kp->meta.name || !*kp->meta.name) {
		seterr(err, errlen,
		       "networkpolicy: metadata.namespace and metadata.name are required");
		return -SL_ERR_INVALID;
	}
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->key = pod_key(kp->meta.namespace, kp->meta.name);
	p->ns = strdup(kp->meta.namespace);
	p->name = strdup(kp->meta.name);
	if (!p->key || !p->ns || !p->name) {
		policy_free(p);
		return -ENOMEM;
	}
	/* policyTypes defaulting as the API server does it. */
	if (!s->policy_types.n) {
		p->iso[SL_NP_INGRESS] = true;
		p->iso[SL_NP_EGRESS] = s->n_egress > 0;
	}
	for (size_t i = 0; i < s->policy_types.n; i++) {
		const char *t = s->policy_types.v[i];

		if (!strcmp(t, "Ingress")) {
			p->iso[SL_NP_INGRESS] = true;
		} else if (!strcmp(t, "Egress")) {
			p->iso[SL_NP_EGRESS] = true;
		} else {
			snprintf(
				msg, sizeof(msg),
				"spec.policyTypes[%zu]: unsupported value \"%s\" (Ingress, Egress)",
				i, t);
			/* Unknown intent: isolate both directions. */
			p->iso[SL_NP_INGRESS] = p->iso[SL_NP_EGRESS] = true;
			ret = -SL_ERR_INVALID;
			break;
		}
	}
	p->target = sl_labelsel_from_json(s->pod_selector, "spec.podSelector", msg, sizeof(msg));
	if (!p->target) {
		if (errno == ENOMEM) {
			policy_free(p);
			return -ENOMEM;
		}
		/* The pods it meant cannot be known; an unparsable selector
		 * is rejected by the API server, so this is defensive: it
		 * isolates nothing rather than everything in the namespace. */
		p->target = sl_labelsel_nothing();
		if (!p->target) {
			policy_free(p);
			return -ENOMEM;
		}
		ret = -SL_ERR_INVALID;
	}
	/* Rules for a type that is not listed are ignored. */
	for (int d = 0; d < SL_NP_NDIRS && !ret; d++) {
		const struct k8s_netpol_rule *kr = d == SL_NP_INGRESS ? s->ingress : s->egress;
		size_t n = d == SL_NP_INGRESS ? s->n_ingress : s->n_egress;

		if (p->iso[d])
			ret = parse_rules(kr, n, d, &p->rules[d], &p->n_rules[d], msg, sizeof(msg));
	}
	if (ret == -ENOMEM) {
		policy_free(p);
		return -ENOMEM;
	}
	if (ret) {
		/* Fail closed: keep the isolation, drop every rule. */
		for (int d = 0; d < SL_NP_NDIRS; d++) {
			rules_free(p->rules[d], p->n_rules[d]);
			p->rules[d] = NULL;
			p->n_rules[d] = 0;
		}
		if (asprintf(&p->error,
			     "networkpolicy '%s': %s; its pods are isolated and it allows "
			     "nothing until fixed",
			     p->key, msg) < 0) {
			policy_free(p);
			return -ENOMEM;
		}
		seterr(err, errlen, "%s", p->error);
	}
	old = np_map_get(&ctx->policies, p->key, strlen(p->key));
	if (old) {
		p->id = old->id;
	} else {
		uint32_t span = 0x7fffffffu;

		v = (uint32_t)(np_hash(p->key, strlen(p->key), 2) % span);
		while (np_map_get(&ctx->pol_ids, &(uint32_t){1 + v}, 4))
			v = (v + 1) % span;
		p->id = 1 + v;
	}
	if (np_map_put(&ctx->policies, p->key, strlen(p->key), p) ||
	    np_map_put(&ctx->pol_ids, &p->id, 4, p)) {
		/* Keep the map consistent with whichever version it holds. */
		if (old) {
			np_map_put(&ctx->policies, old->key, strlen(old->key), old);
			np_map_put(&ctx->pol_ids, &old->id, 4, old);
		} else {
			np_map_del(&ctx->policies, p->key, strlen(p->key));
			np_map_del(&ctx->pol_ids, &p->id, 4);
		}
		policy_free(p);
		return -ENOMEM;
	}
	if (old) {
		mark_selected(ctx, old);
		policy_free(old);
	}
	mark_selected(ctx, p);
	return ret;
}

int np_policy_del(struct np_ctx *ctx, const char *ns, const char *name)
{
	struct np_policy *p = policy_lookup(ctx, ns, name);

	if (!p)
		return -SL_ERR_NOTFOUND;
	np_map_del(&ctx->policies, p->key, strlen(p->key));
	np_map_del(&ctx->pol_ids, &p->id, 4);
	mark_selected(ctx, p);
	policy_free(p);
	return 0;
}

const char *np_policy_error(const struct np_ctx *ctx, const char *ns, const char *name)
{
	const struct np_policy *p = policy_lookup(ctx, ns, name);

	return p ? p->error : NULL;
}

uint32_t np_policy_id(const struct np_ctx *ctx, const char *ns, const char *name)
{
	const struct np_policy *p = policy_lookup(ctx, ns, name);

	return p ? p->id : 0;
}

static void free_all(struct np_ctx *ctx)
{
	size_t b = 0;
	struct np_map_ent *e;

	for (e = NULL; (e = np_map_next(&ctx->pods, &b, e));)
		pod_free(e->val);
	for (b = 0, e = NULL; (e = np_map_next(&ctx->idents, &b, e));)
		ident_free(e->val);
	for (b = 0, e = NULL; (e = np_map_next(&ctx->policies, &b, e));)
		policy_free(e->val);
	for (b = 0, e = NULL; (e = np_map_next(&ctx->nss, &b, e));) {
		struct np_ns *ns = e->val;

		kv_free(ns->labels, ns->n_labels);
		free(ns->lv);
		free(ns->name);
		free(ns);
	}
	for (b = 0, e = NULL; (e = np_map_next(&ctx->ns_nums, &b, e));)
		free(e->val);
	for (b = 0, e = NULL; (e = np_map_next(&ctx->rulesets, &b, e));) {
		struct np_ruleset *rs = e->val;

		free(rs->content);
		free(rs->rules);
		free(rs->cidrs);
		free(rs);
	}
}

void np_free(struct np_ctx *ctx)
{
	if (!ctx)
		return;
	free_all(ctx);
	np_map_fini(&ctx->nss);
	np_map_fini(&ctx->pods);
	np_map_fini(&ctx->idents);
	np_map_fini(&ctx->ident_ids);
	np_map_fini(&ctx->policies);
	np_map_fini(&ctx->pol_ids);
	np_map_fini(&ctx->rulesets);
	np_map_fini(&ctx->rs_ids);
	np_map_fini(&ctx->ns_nums);
	np_map_fini(&ctx->ns_num_used);
	free(ctx->ep);
	free(ctx->node);
	free(ctx->ix_idents);
	free(ctx->ix_groups);
	free(ctx->ix_pols);
	free(ctx);
}
