// SPDX-License-Identifier: Apache-2.0
/*
 * Incremental service model (lbinc.h): compact inputs indexed by Service,
 * one fragment per Service built with lbm_state_build(), merged backends and
 * frontend ownership, and plans of datapath writes for dirty Services only.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdalign.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bigmem.h"
#include "lbinc.h"
#include "sluice/err.h"
#include "sluice/log.h"

#define SUBSYS "lbinc"

#define LABEL_PROXY_NAME "service.kubernetes.io/service-proxy-name"
#define LABEL_HEADLESS	 "service.kubernetes.io/headless"

/* --- growable arrays ---------------------------------------------------------------- */

static int vec_grow(void **v, size_t need, size_t *cap, size_t elem)
{
	size_t ncap;
	void *p;

	if (need <= *cap)
		return 0;
	ncap = *cap ? *cap : 16;
	while (ncap < need)
		ncap *= 2;
	p = reallocarray(*v, ncap, elem);
	if (!p)
		return -ENOMEM;
	*v = p;
	*cap = ncap;
	return 0;
}

#define VEC_GROW(v, need, cap) vec_grow((void **)&(v), (need), &(cap), sizeof(*(v)))

/* --- one-allocation compact copies ------------------------------------------------------ */

/*
 * A bump allocator over one malloc'd block, sized beforehand, so a compact
 * object is a single allocation freed with free(): no per-field mallocs, no
 * json-c tree, nothing the model does not read.
 */
struct blob {
	char *p;
	size_t off, cap;
};

static size_t str_size(const char *s)
{
	return s ? strlen(s) + 1 : 0;
}

/* Worst-case padding per aligned piece is alignof(max_align_t) - 1. */
#define PIECE(n, elem) ((n) * (elem) + alignof(max_align_t))

static void *blob_take(struct blob *b, size_t size)
{
	size_t a = alignof(max_align_t);
	void *p;

	b->off = (b->off + a - 1) & ~(a - 1);
	p = b->p + b->off;
	b->off += size;
	return p; /* sized beforehand: never past cap */
}

static char *blob_str(struct blob *b, const char *s)
{
	size_t n = str_size(s);
	char *p;

	if (!s)
		return NULL;
	p = b->p + b->off;
	memcpy(p, s, n);
	b->off += n;
	return p;
}

static bool blob_init(struct blob *b, size_t cap)
{
	b->p = calloc(1, cap);
	b->off = 0;
	b->cap = cap;
	return b->p != NULL;
}

/*
 * A Service with the fields agent/model.c reads (lbinc.h): metadata
 * namespace, name, creationTimestamp and whether the service-proxy-name
 * label is set; spec type, clusterIP(s), ports (name, protocol, port,
 * nodePort), session affinity and its timeout, externalIPs, traffic
 * policies, healthCheckNodePort; status.loadBalancer.ingress ip and ipMode.
 * ~130 bytes plus strings in one block, against 416 for struct k8s_service
 * alone; svc_materialise() turns it back into one for a build.
 */
struct csvc_port {
	const char *name, *protocol;
	int32_t port, node_port;
};

struct csvc_ing {
	const char *ip, *ip_mode;
};

struct csvc {
	const char *ns, *name, *type, *cluster_ip, *session_affinity, *etp, *itp;
	char **cluster_ips, **external_ips;
	struct csvc_port *ports;
	struct csvc_ing *ingress;
	struct k8s_time created;
	int32_t affinity_timeout, hc_node_port;
	uint32_t n_cluster_ips, n_external_ips, n_ports, n_ingress;
	bool other_proxy; /* label service.kubernetes.io/service-proxy-name */
};

static size_t strlist_size(const struct k8s_strlist *l)
{
	size_t n = PIECE(l->n, sizeof(char *));

	for (size_t i = 0; i < l->n; i++)
		n += str_size(l->v[i]);
	return n;
}

static char **strlist_copy(struct blob *b, const struct k8s_strlist *src)
{
	char **v = src->n ? blob_take(b, src->n * sizeof(char *)) : NULL;

	for (size_t i = 0; i < src->n; i++)
		v[i] = blob_str(b, src->v[i]);
	return v;
}

static struct csvc *svc_compact(const struct k8s_service *s)
{
	const struct k8s_service_spec *sp = &s->spec;
	const struct k8s_lb_status *lb = &s->status.load_balancer;
	size_t size = PIECE(1, sizeof(struct csvc));
	struct csvc *c;
	struct blob b;

	size += str_size(s->meta.namespace) + str_size(s->meta.name);
	size += str_size(sp->type) + str_size(sp->cluster_ip) + str_size(sp->session_affinity) +
		str_size(sp->external_traffic_policy) + str_size(sp->internal_traffic_policy);
	size += strlist_size(&sp->cluster_ips) + strlist_size(&sp->external_ips);
	size += PIECE(sp->n_ports, sizeof(struct csvc_port));
	for (size_t i = 0; i < sp->n_ports; i++)
		size += str_size(sp->ports[i].name) + str_size(sp->ports[i].protocol);
	size += PIECE(lb->n_ingress, sizeof(struct csvc_ing));
	for (size_t i = 0; i < lb->n_ingress; i++)
		size += str_size(lb->ingress[i].ip) + str_size(lb->ingress[i].ip_mode);
	if (!blob_init(&b, size))
		return NULL;
	c = blob_take(&b, sizeof(*c));
	c->ns = blob_str(&b, s->meta.namespace);
	c->name = blob_str(&b, s->meta.name);
	c->created = s->meta.creation_timestamp;
	c->other_proxy = k8s_strmap_get(&s->meta.labels, LABEL_PROXY_NAME) != NULL;
	c->type = blob_str(&b, sp->type);
	c->cluster_ip = blob_str(&b, sp->cluster_ip);
	c->session_affinity = blob_str(&b, sp->session_affinity);
	c->affinity_timeout = sp->session_affinity_config.client_ip.timeout_seconds;
	c->etp = blob_str(&b, sp->external_traffic_policy);
	c->itp = blob_str(&b, sp->internal_traffic_policy);
	c->hc_node_port = sp->health_check_node_port;
	c->n_cluster_ips = (uint32_t)sp->cluster_ips.n;
	c->cluster_ips = strlist_copy(&b, &sp->cluster_ips);
	c->n_external_ips = (uint32_t)sp->external_ips.n;
	c->external_ips = strlist_copy(&b, &sp->external_ips);
	c->n_ports = (uint32_t)sp->n_ports;
	c->ports = sp->n_ports ? blob_take(&b, sp->n_ports * sizeof(*c->ports)) : NULL;
	for (size_t i = 0; i < sp->n_ports; i++)
		c->ports[i] = (struct csvc_port){blob_str(&b, sp->ports[i].name),
						 blob_str(&b, sp->ports[i].protocol),
						 sp->ports[i].port, sp->ports[i].node_port};
	c->n_ingress = (uint32_t)lb->n_ingress;
	c->ingress = lb->n_ingress ? blob_take(&b, lb->n_ingress * sizeof(*c->ingress)) : NULL;
	for (size_t i = 0; i < lb->n_ingress; i++)
		c->ingress[i] = (struct csvc_ing){blob_str(&b, lb->ingress[i].ip),
						  blob_str(&b, lb->ingress[i].ip_mode)};
	return c;
}

/* A slice's ports and endpoints as the model reads them: 24 bytes an endpoint
 * plus its address and node name, against ~1.5 KiB decoded with its tree. */
struct cport {
	const char *name;
	const char *protocol;
	int32_t port;
};

struct cep {
	const char *addr;		     /* addresses[0]; NULL when there is none */
	const char *node;		     /* nodeName */
	uint8_t ready, serving, terminating; /* enum k8s_tri */
};

struct cslice {
	const char *ns, *name, *svc, *address_type;
	struct cport *ports;
	struct cep *eps;
	uint32_t n_ports, n_eps;
};

static struct cslice *slice_compact(const struct k8s_endpointslice *es, const char *svc)
{
	size_t size = PIECE(1, sizeof(struct cslice));
	struct cslice *c;
	struct blob b;

	size += str_size(es->meta.namespace) + str_size(es->meta.name) + str_size(svc) +
		str_size(es->address_type);
	size += PIECE(es->n_ports, sizeof(struct cport)) +
		PIECE(es->n_endpoints, sizeof(struct cep));
	for (size_t i = 0; i < es->n_ports; i++)
		size += str_size(es->ports[i].name) + str_size(es->ports[i].protocol);
	for (size_t i = 0; i < es->n_endpoints; i++)
		size += (es->endpoints[i].addresses.n ? str_size(es->endpoints[i].addresses.v[0])
						      : 0) +
			str_size(es->endpoints[i].node_name);
	if (!blob_init(&b, size))
		return NULL;
	c = blob_take(&b, sizeof(*c));
	c->ns = blob_str(&b, es->meta.namespace);
	c->name = blob_str(&b, es->meta.name);
	c->svc = blob_str(&b, svc);
	c->address_type = blob_str(&b, es->address_type);
	c->n_ports = (uint32_t)es->n_ports;
	c->ports = es->n_ports ? blob_take(&b, es->n_ports * sizeof(*c->ports)) : NULL;
	for (size_t i = 0; i < es->n_ports; i++) {
		c->ports[i].name = blob_str(&b, es->ports[i].name);
		c->ports[i].protocol = blob_str(&b, es->ports[i].protocol);
		c->ports[i].port = es->ports[i].port;
	}
	c->n_eps = (uint32_t)es->n_endpoints;
	c->eps = es->n_endpoints ? blob_take(&b, es->n_endpoints * sizeof(*c->eps)) : NULL;
	for (size_t i = 0; i < es->n_endpoints; i++) {
		const struct k8s_slice_endpoint *e = &es->endpoints[i];

		c->eps[i].addr = e->addresses.n ? blob_str(&b, e->addresses.v[0]) : NULL;
		c->eps[i].node = blob_str(&b, e->node_name);
		c->eps[i].ready = (uint8_t)e->conditions.ready;
		c->eps[i].serving = (uint8_t)e->conditions.serving;
		c->eps[i].terminating = (uint8_t)e->conditions.terminating;
	}
	return c;
}

/* This node: its name and addresses (all the model reads of a Node). */
static struct k8s_node *node_compact(const struct k8s_node *n)
{
	const struct k8s_node_status *st = &n->status;
	size_t size = PIECE(1, sizeof(struct k8s_node)) + str_size(n->meta.name) +
		      PIECE(st->n_addresses, sizeof(struct k8s_node_address));
	struct k8s_node *c;
	struct blob b;

	for (size_t i = 0; i < st->n_addresses; i++)
		size += str_size(st->addresses[i].type) + str_size(st->addresses[i].address);
	if (!blob_init(&b, size))
		return NULL;
	c = blob_take(&b, sizeof(*c));
	c->meta.name = blob_str(&b, n->meta.name);
	c->status.n_addresses = st->n_addresses;
	c->status.addresses =
		st->n_addresses ? blob_take(&b, st->n_addresses * sizeof(*c->status.addresses))
				: NULL;
	for (size_t i = 0; i < st->n_addresses; i++) {
		c->status.addresses[i].type = blob_str(&b, st->addresses[i].type);
		c->status.addresses[i].address = blob_str(&b, st->addresses[i].address);
	}
	return c;
}

/* --- hash tables ------------------------------------------------------------------------ */

/*
 * Chained tables of entries whose first two members are `void *hnext` and
 * the key (a string or a u64): one bucket array, no per-entry node.
 */
struct hstr {
	void *hnext;
	char *key;
};

struct hu64 {
	void *hnext;
	uint64_t key;
};

struct htab {
	void **b;
	size_t nb, n;
};

static uint64_t hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

static uint64_t hash_u64(uint64_t x)
{
	/* splitmix64's finaliser: keys differ in few bits (ports, addresses). */
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static void **hslot_str(const struct htab *t, const char *key)
{
	void **pp;

	if (!t->nb)
		return NULL;
	for (pp = &t->b[hash_str(key) & (t->nb - 1)]; *pp; pp = &((struct hstr *)*pp)->hnext)
		if (!strcmp(((struct hstr *)*pp)->key, key))
			break;
	return pp;
}

static void **hslot_u64(const struct htab *t, uint64_t key)
{
	void **pp;

	if (!t->nb)
		return NULL;
	for (pp = &t->b[hash_u64(key) & (t->nb - 1)]; *pp; pp = &((struct hu64 *)*pp)->hnext)
		if (((struct hu64 *)*pp)->key == key)
			break;
	return pp;
}

static void *hfind_str(const struct htab *t, const char *key)
{
	void **pp = hslot_str(t, key);

	return pp ? *pp : NULL;
}

static void *hfind_u64(const struct htab *t, uint64_t key)
{
	void **pp = hslot_u64(t, key);

	return pp ? *pp : NULL;
}

/* Room for extra more entries (load factor 1), in one rehash. */
static int hreserve_n(struct htab *t, bool str, size_t extra)
{
	size_t nb = t->nb ? t->nb * 2 : 64;
	void **b;

	if (t->n + extra <= t->nb)
		return 0;
	while (nb < t->n + extra)
		nb *= 2;
	b = sl_big_calloc(nb * sizeof(*b));
	if (!b)
		return -ENOMEM;
	for (size_t i = 0; i < t->nb; i++) {
		void *e = t->b[i], *next;

		for (; e; e = next) {
			uint64_t h = str ? hash_str(((struct hstr *)e)->key)
					 : hash_u64(((struct hu64 *)e)->key);

			next = ((struct hu64 *)e)->hnext;
			((struct hu64 *)e)->hnext = b[h & (nb - 1)];
			b[h & (nb - 1)] = e;
		}
	}
	sl_big_free(t->b, t->nb * sizeof(*t->b));
	t->b = b;
	t->nb = nb;
	return 0;
}

/* Frees the bucket array (not the entries). */
static void htab_free(struct htab *t)
{
	sl_big_free(t->b, t->nb * sizeof(*t->b));
	t->b = NULL;
	t->nb = t->n = 0;
}

/* Room for one more entry. */
static int hreserve(struct htab *t, bool str)
{
	return hreserve_n(t, str, 1);
}

/* Inserts e, whose key is not in the table; hreserve() first. */
static void hinsert_str(struct htab *t, void *e)
{
	void **pp = hslot_str(t, ((struct hstr *)e)->key);

	*pp = e;
	((struct hstr *)e)->hnext = NULL;
	t->n++;
}

static void hinsert_u64(struct htab *t, void *e)
{
	void **pp = hslot_u64(t, ((struct hu64 *)e)->key);

	*pp = e;
	((struct hu64 *)e)->hnext = NULL;
	t->n++;
}

static void hremove_str(struct htab *t, void *e)
{
	void **pp = hslot_str(t, ((struct hstr *)e)->key);

	if (pp && *pp == e) {
		*pp = ((struct hstr *)e)->hnext;
		t->n--;
	}
}

static void hremove_u64(struct htab *t, void *e)
{
	void **pp = hslot_u64(t, ((struct hu64 *)e)->key);

	if (pp && *pp == e) {
		*pp = ((struct hu64 *)e)->hnext;
		t->n--;
	}
}

/* Every entry of table t as `type *v`; v may be freed in the body. (A type
 * and a declarator cannot take parentheses.) */
// NOLINTBEGIN(bugprone-macro-parentheses)
#define HFOREACH(t, type, v)                                               \
	for (size_t hi_ = 0; hi_ < (t)->nb; hi_++)                         \
		for (type *v = (t)->b[hi_], *vn_ = v ? v->hnext : NULL; v; \
		     v = vn_, vn_ = v ? v->hnext : NULL)
// NOLINTEND(bugprone-macro-parentheses)

/* --- entities --------------------------------------------------------------------------- */

struct sliceent;

struct svcent {
	void *hnext;
	char *key;		  /* "ns/name" */
	struct csvc *svc;	  /* compact; NULL = only slices know this name */
	struct sliceent **slices; /* attached slices, unordered */
	size_t n_slices, cap_slices;
	struct lbm_state *frag; /* the last plan's fragment; NULL = nothing wanted */
	struct lbm_state *old;	/* during a plan: the fragment it replaces */
	struct svcent *dnext;	/* dirty list */
	uint64_t gen;		/* bumped whenever frag is replaced (lbi_foreach_fragment) */
	/* lbi_prebuild: a fragment built ahead of the plan from the inputs as
	 * they were at in_gen; used by the plan only if it has not moved since.
	 * in_gen moves with every change that marks the Service dirty: its own
	 * object, its slices, this node's addresses, the backend bound. */
	struct lbm_state *pre;
	uint64_t in_gen, pre_gen;
	uint32_t touch_round; /* lbi.round when the inputs last changed */
	bool pre_ok;	      /* pre is a build (NULL = nothing wanted) */
	bool pq;	      /* in lbi.pq */
	bool dirty;
	bool in_plan;
};

struct sliceent {
	void *hnext;
	char *key;
	struct cslice *cs;
	struct svcent *owner; /* NULL when the slice is kept out (lbinc.h) */
};

/* One backend's uses over all fragments. */
struct berec {
	void *hnext;
	uint64_t key; /* be_key() */
	uint32_t uses, ready, local;
	uint8_t w_state; /* as last planned, when written */
	bool w_local;
	bool written;
	bool touched;
};

struct feowner {
	struct svcent *s;
	uint32_t idx; /* in s->frag->frontends */
};

/*
 * One frontend {addr, port, proto} and the Services that want it. Like the
 * full build, the owner takes the whole group (both scopes): a Service that
 * loses gets none of its entries there, not even a scope the owner lacks.
 */
struct ferec {
	void *hnext;
	uint64_t key;	     /* the sl_svc_key's 8 bytes, scope 0 */
	struct feowner *own; /* one per entry (scope) of each Service */
	size_t n_own, cap_own;
	struct svcent *written[2]; /* per scope: whose entry the last plan wrote */
	bool touched;
};

/* Build scratch: a Service and its slices materialised as k8s structs that
 * point into the compact copies. One per building thread. */
struct bscratch {
	struct k8s_endpointslice *es;
	const struct k8s_endpointslice **esp;
	size_t cap_es, cap_esp;
	struct k8s_slice_endpoint *eps;
	size_t cap_eps;
	struct k8s_slice_port *ports;
	size_t cap_ports;
	struct k8s_service_port *sports;
	size_t cap_sports;
	struct k8s_lb_ingress *sing;
	size_t cap_sing;
};

static void bscratch_fini(struct bscratch *b)
{
	free(b->es);
	free(b->esp);
	free(b->eps);
	free(b->ports);
	free(b->sports);
	free(b->sing);
	memset(b, 0, sizeof(*b));
}

struct lbi {
	char *node_name;
	struct k8s_node *node; /* compact; NULL = unknown */
	__be32 *addrs;
	size_t n_addrs;
	struct htab svcs, slices, bes, fes;
	struct beslab *slabs;  /* every berec lives in one of these */
	struct berec *be_free; /* free berecs, linked through hnext */
	struct svcent *dirty;
	size_t n_dirty;
	size_t n_fe_wanted; /* frontends with a winner */
	uint64_t gen;	    /* last fragment generation handed out */
	bool need_full;	    /* bookkeeping was lost (ENOMEM): rebuild everything */
	struct bscratch bs; /* the build's, on this thread */
	/* lbi_prebuild, until the first plan: Services whose inputs changed, in
	 * the order they first did, each at most once (svcent.pq). */
	bool prebuilding;
	uint32_t round;
	struct svcent **pq;
	size_t pq_head, pq_n, pq_cap;
	/* plan scratch */
	struct berec **tbe;
	size_t n_tbe, cap_tbe;
	struct ferec **tfe;
	size_t n_tfe, cap_tfe;
	/* backends per frontend of the dataplane fed: lbm_input.max_backends */
	uint32_t max_backends;
};

/* Backend records come from slabs: 200,000 of them cost their 32 bytes
 * each instead of 48 with malloc's header and rounding. Slabs grow with the
 * records in use, up to 2 MiB, so a start's 200,000 records are ten
 * allocations, not two hundred. (Just under 2 MiB: sl_big_calloc keeps them
 * on 4 KiB pages, so a mostly empty last slab stays mostly unresident.) */
#define BESLAB_MIN	 1024
#define BESLAB_MAX_BYTES (2UL << 20)

struct beslab {
	struct beslab *next;
	size_t n;
	struct berec r[];
};

static size_t beslab_bytes(size_t n)
{
	return sizeof(struct beslab) + n * sizeof(struct berec);
}

static struct berec *berec_alloc(struct lbi *l)
{
	struct berec *r;

	if (!l->be_free) {
		size_t n = l->bes.n > BESLAB_MIN ? l->bes.n : BESLAB_MIN;
		struct beslab *sl;

		if (beslab_bytes(n) > BESLAB_MAX_BYTES)
			n = (BESLAB_MAX_BYTES - sizeof(*sl)) / sizeof(struct berec);
		sl = sl_big_calloc(beslab_bytes(n));
		if (!sl)
			return NULL;
		sl->n = n;
		sl->next = l->slabs;
		l->slabs = sl;
		for (size_t i = n; i-- > 0;) {
			sl->r[i].hnext = l->be_free;
			l->be_free = &sl->r[i];
		}
	}
	r = l->be_free;
	l->be_free = r->hnext;
	memset(r, 0, sizeof(*r));
	return r;
}

static void berec_free(struct lbi *l, struct berec *r)
{
	r->hnext = l->be_free;
	l->be_free = r;
}

/* Drops every backend record and the table. */
static void slabs_free(struct lbi *l)
{
	while (l->slabs) {
		struct beslab *next = l->slabs->next;

		sl_big_free(l->slabs, beslab_bytes(l->slabs->n));
		l->slabs = next;
	}
	l->be_free = NULL;
	htab_free(&l->bes);
	memset(&l->bes, 0, sizeof(l->bes));
}

static uint64_t be_key(__be32 addr, __be16 port, __u8 proto)
{
	return (uint64_t)addr << 32 | (uint64_t)port << 8 | proto;
}

static struct lbm_backend be_of(const struct berec *r)
{
	return (struct lbm_backend){
		.addr = (__be32)(r->key >> 32),
		.port = (__be16)(r->key >> 8),
		.proto = (__u8)r->key,
		.state = r->ready ? SL_BE_ACTIVE : SL_BE_TERMINATING,
		.local = r->local > 0,
	};
}

/* The group key: {addr, port, proto} with scope 0. */
static uint64_t fe_key(const struct sl_svc_key *k)
{
	struct sl_svc_key g = *k;
	uint64_t v;

	g.scope = 0;
	memcpy(&v, &g, sizeof(v));
	return v;
}

static struct sl_svc_key fe_key_of(uint64_t v, uint8_t scope)
{
	struct sl_svc_key k;

	memcpy(&k, &v, sizeof(k));
	k.scope = scope;
	return k;
}

struct lbi *lbi_new(const char *node_name)
{
	struct lbi *l = calloc(1, sizeof(*l));

	if (!l)
		goto oom;
	if (node_name) {
		l->node_name = strdup(node_name);
		if (!l->node_name)
			goto oom;
	}
	l->prebuilding = true;
	return l;
oom:
	free(l);
	errno = ENOMEM;
	return NULL;
}

static void svcent_free(struct svcent *s)
{
	free(s->key);
	free(s->svc);
	free(s->slices);
	lbm_state_free(s->frag);
	lbm_state_free(s->pre);
	free(s);
}

void lbi_free(struct lbi *l)
{
	if (!l)
		return;
	HFOREACH(&l->svcs, struct svcent, s)
	svcent_free(s);
	HFOREACH(&l->slices, struct sliceent, e)
	{
		free(e->key);
		free(e->cs);
		free(e);
	}
	slabs_free(l);
	HFOREACH(&l->fes, struct ferec, r)
	{
		free(r->own);
		free(r);
	}
	htab_free(&l->svcs);
	htab_free(&l->slices);
	htab_free(&l->bes);
	htab_free(&l->fes);
	free(l->node_name);
	free(l->node);
	free(l->addrs);
	bscratch_fini(&l->bs);
	free(l->tbe);
	free(l->tfe);
	free(l->pq);
	free(l);
}

/* --- inputs ----------------------------------------------------------------------------- */

/* Queued for lbi_prebuild; a failed push only means it builds in the plan. */
static void pq_push(struct lbi *l, struct svcent *s)
{
	s->touch_round = l->round;
	if (s->pq || !l->prebuilding || VEC_GROW(l->pq, l->pq_n + 1, l->pq_cap))
		return;
	l->pq[l->pq_n++] = s;
	s->pq = true;
}

static void mark_dirty(struct lbi *l, struct svcent *s)
{
	if (!s)
		return;
	s->in_gen++;
	pq_push(l, s);
	if (s->dirty)
		return;
	s->dirty = true;
	s->dnext = l->dirty;
	l->dirty = s;
	l->n_dirty++;
}

static struct svcent *svcent_get(struct lbi *l, const char *key)
{
	struct svcent *s = hfind_str(&l->svcs, key);

	if (s)
		return s;
	if (hreserve(&l->svcs, true))
		return NULL;
	s = calloc(1, sizeof(*s));
	if (!s || !(s->key = strdup(key))) {
		free(s);
		return NULL;
	}
	hinsert_str(&l->svcs, s);
	return s;
}

int lbi_service_set(struct lbi *l, const char *key, const struct k8s_service *svc)
{
	struct svcent *s;
	struct csvc *c = NULL;

	if (!l || !key)
		return -EINVAL;
	if (svc) {
		c = svc_compact(svc);
		s = c ? svcent_get(l, key) : NULL;
		if (!s) {
			free(c);
			return -ENOMEM;
		}
	} else {
		s = hfind_str(&l->svcs, key);
		if (!s)
			return 0;
	}
	free(s->svc);
	s->svc = c;
	mark_dirty(l, s);
	return 0;
}

static void slice_detach(struct sliceent *e)
{
	struct svcent *s = e->owner;

	if (!s)
		return;
	for (size_t i = 0; i < s->n_slices; i++)
		if (s->slices[i] == e) {
			s->slices[i] = s->slices[--s->n_slices];
			break;
		}
	e->owner = NULL;
}

/* The Service key a slice belongs to, or NULL (with the reason logged) when
 * the model would ignore it. */
static const char *slice_service(const struct k8s_endpointslice *es, const char *key)
{
	const char *svc;

	if (k8s_strmap_get(&es->meta.labels, LABEL_PROXY_NAME) ||
	    k8s_strmap_get(&es->meta.labels, LABEL_HEADLESS))
		return NULL;
	svc = k8s_endpointslice_service_name(es);
	if (!svc || !*svc) {
		pr_warn(SUBSYS, "endpointslice '%s': skipped: label %s missing", key,
			K8S_LABEL_SERVICE_NAME);
		return NULL;
	}
	if (!es->address_type) {
		pr_warn(SUBSYS, "endpointslice '%s': skipped: addressType missing", key);
		return NULL;
	}
	if (strcmp(es->address_type, "IPv4") != 0)
		return NULL; /* IPv6 belongs to the IPv6 model; FQDN is never proxied */
	return svc;
}

int lbi_slice_set(struct lbi *l, const char *key, const struct k8s_endpointslice *es)
{
	struct sliceent *e;
	struct svcent *owner = NULL;
	struct cslice *c = NULL;
	const char *svc = NULL;

	if (!l || !key)
		return -EINVAL;
	e = hfind_str(&l->slices, key);
	if (es) {
		svc = es->meta.namespace && es->meta.name ? slice_service(es, key) : NULL;
		if (svc) {
			char skey[512];

			snprintf(skey, sizeof(skey), "%s/%s", es->meta.namespace, svc);
			owner = svcent_get(l, skey);
			if (!owner ||
			    VEC_GROW(owner->slices, owner->n_slices + 1, owner->cap_slices))
				return -ENOMEM;
		}
		c = slice_compact(es, svc);
		if (!c)
			return -ENOMEM;
		if (!e) {
			if (hreserve(&l->slices, true) || !(e = calloc(1, sizeof(*e))) ||
			    !(e->key = strdup(key))) {
				free(e);
				free(c);
				return -ENOMEM;
			}
			hinsert_str(&l->slices, e);
		}
		free(e->cs);
		e->cs = c;
	} else if (!e) {
		return 0;
	}
	if (e->owner != owner) {
		mark_dirty(l, e->owner);
		slice_detach(e);
		if (owner) {
			owner->slices[owner->n_slices++] = e;
			e->owner = owner;
		}
	}
	mark_dirty(l, owner);
	if (!es) {
		hremove_str(&l->slices, e);
		free(e->key);
		free(e->cs);
		free(e);
	}
	return 0;
}

int lbi_node_set(struct lbi *l, const struct k8s_node *node)
{
	struct k8s_node *c = node ? node_compact(node) : NULL;
	const struct k8s_node *np = c;
	struct lbm_input in = {.node_name = l->node_name, .nodes = &np, .n_nodes = c ? 1 : 0};
	struct lbm_state *st = NULL;
	int err;

	if (node && !c)
		return -ENOMEM;
	/* The model's own reading of the addresses: an empty build. */
	err = lbm_state_build(&in, &st);
	if (err) {
		free(c);
		return err;
	}
	free(l->node);
	l->node = c;
	if (st->n_node_addrs != l->n_addrs ||
	    (st->n_node_addrs &&
	     memcmp(st->node_addrs, l->addrs, st->n_node_addrs * sizeof(*st->node_addrs)))) {
		/* externalIPs are programmed only for local addresses. */
		HFOREACH(&l->svcs, struct svcent, s)
		if (s->svc)
			mark_dirty(l, s);
		free(l->addrs);
		l->addrs = st->node_addrs;
		l->n_addrs = st->n_node_addrs;
		st->node_addrs = NULL;
	}
	lbm_state_free(st);
	return 0;
}

void lbi_max_backends_set(struct lbi *l, uint32_t n)
{
	if (n == l->max_backends)
		return;
	l->max_backends = n;
	HFOREACH(&l->svcs, struct svcent, s)
	if (s->svc)
		mark_dirty(l, s);
}

const __be32 *lbi_node_addrs(const struct lbi *l, size_t *n)
{
	*n = l->n_addrs;
	return l->addrs;
}

bool lbi_dirty(const struct lbi *l)
{
	return l->n_dirty > 0 || l->need_full;
}

/* --- one Service's fragment --------------------------------------------------------------- */

/* The compact Service as a struct k8s_service pointing into it (and into
 * l's scratch for the arrays whose element types differ). */
static int svc_materialise(struct bscratch *l, const struct csvc *c, struct k8s_service *o,
			   struct k8s_kv *label)
{
	if (VEC_GROW(l->sports, c->n_ports, l->cap_sports) ||
	    VEC_GROW(l->sing, c->n_ingress, l->cap_sing))
		return -ENOMEM;
	memset(o, 0, sizeof(*o));
	o->meta.namespace = (char *)c->ns;
	o->meta.name = (char *)c->name;
	o->meta.creation_timestamp = c->created;
	if (c->other_proxy) {
		*label = (struct k8s_kv){(char *)LABEL_PROXY_NAME, (char *)""};
		o->meta.labels = (struct k8s_strmap){label, 1};
	}
	o->spec.type = (char *)c->type;
	o->spec.cluster_ip = (char *)c->cluster_ip;
	o->spec.cluster_ips = (struct k8s_strlist){c->cluster_ips, c->n_cluster_ips};
	o->spec.session_affinity = (char *)c->session_affinity;
	o->spec.session_affinity_config.client_ip.timeout_seconds = c->affinity_timeout;
	o->spec.external_ips = (struct k8s_strlist){c->external_ips, c->n_external_ips};
	o->spec.external_traffic_policy = (char *)c->etp;
	o->spec.internal_traffic_policy = (char *)c->itp;
	o->spec.health_check_node_port = c->hc_node_port;
	o->spec.ports = l->sports;
	o->spec.n_ports = c->n_ports;
	for (uint32_t i = 0; i < c->n_ports; i++) {
		memset(&l->sports[i], 0, sizeof(l->sports[i]));
		l->sports[i].name = (char *)c->ports[i].name;
		l->sports[i].protocol = (char *)c->ports[i].protocol;
		l->sports[i].port = c->ports[i].port;
		l->sports[i].node_port = c->ports[i].node_port;
	}
	o->status.load_balancer.ingress = l->sing;
	o->status.load_balancer.n_ingress = c->n_ingress;
	for (uint32_t i = 0; i < c->n_ingress; i++) {
		memset(&l->sing[i], 0, sizeof(l->sing[i]));
		l->sing[i].ip = (char *)c->ingress[i].ip;
		l->sing[i].ip_mode = (char *)c->ingress[i].ip_mode;
	}
	return 0;
}

/* Reads only the Service's entries and the node: fragments build in parallel
 * (build_all), each thread with its own scratch. */
static int frag_build(const struct lbi *lb, struct bscratch *l, struct svcent *s,
		      struct lbm_state **out)
{
	struct k8s_service svc;
	const struct k8s_service *svcp = &svc;
	const struct k8s_node *np = lb->node;
	size_t n_eps = 0, n_ports = 0, ie = 0, ip = 0;
	struct k8s_kv label, plabel;
	struct lbm_input in;
	struct lbm_state *st;
	int err;

	*out = NULL;
	if (!s->svc)
		return 0;
	err = svc_materialise(l, s->svc, &svc, &plabel);
	if (err)
		return err;
	for (size_t i = 0; i < s->n_slices; i++) {
		n_eps += s->slices[i]->cs->n_eps;
		n_ports += s->slices[i]->cs->n_ports;
	}
	if (VEC_GROW(l->es, s->n_slices, l->cap_es) || VEC_GROW(l->esp, s->n_slices, l->cap_esp) ||
	    VEC_GROW(l->eps, n_eps, l->cap_eps) || VEC_GROW(l->ports, n_ports, l->cap_ports))
		return -ENOMEM;
	/* The slices as k8s structs pointing into the compact copies: the build
	 * only reads them, and they live until it returns. */
	for (size_t i = 0; i < s->n_slices; i++) {
		struct cslice *c = s->slices[i]->cs;
		struct k8s_endpointslice *es = &l->es[i];

		memset(es, 0, sizeof(*es));
		es->meta.namespace = (char *)c->ns;
		es->meta.name = (char *)c->name;
		label = (struct k8s_kv){(char *)K8S_LABEL_SERVICE_NAME, (char *)c->svc};
		es->meta.labels = (struct k8s_strmap){&label, 1};
		es->address_type = (char *)c->address_type;
		es->ports = &l->ports[ip];
		es->n_ports = c->n_ports;
		for (uint32_t k = 0; k < c->n_ports; k++) {
			struct k8s_slice_port *p = &l->ports[ip++];

			memset(p, 0, sizeof(*p));
			p->name = (char *)c->ports[k].name;
			p->protocol = (char *)c->ports[k].protocol;
			p->port = c->ports[k].port;
		}
		es->endpoints = &l->eps[ie];
		es->n_endpoints = c->n_eps;
		for (uint32_t k = 0; k < c->n_eps; k++) {
			struct k8s_slice_endpoint *e = &l->eps[ie++];
			struct cep *ce = &c->eps[k];

			memset(e, 0, sizeof(*e));
			e->addresses.v = (char **)&ce->addr;
			e->addresses.n = ce->addr ? 1 : 0;
			e->node_name = (char *)ce->node;
			e->conditions.ready = ce->ready;
			e->conditions.serving = ce->serving;
			e->conditions.terminating = ce->terminating;
		}
		l->esp[i] = es;
	}
	in = (struct lbm_input){
		.node_name = lb->node_name,
		.services = &svcp,
		.n_services = 1,
		.slices = l->esp,
		.n_slices = s->n_slices,
		.nodes = np ? &np : NULL,
		.n_nodes = np ? 1 : 0,
		.max_backends = lb->max_backends,
	};
	err = lbm_state_build(&in, &st);
	if (err)
		return err;
	if (!st->n_services && !st->n_frontends && !st->n_backends && !st->n_problems) {
		lbm_state_free(st); /* skipped (headless, ExternalName, ...): nothing to keep */
		return 0;
	}
	/* The build grows its service array 16 at a time; a fragment has one. */
	if (st->n_services == 1) {
		struct lbm_service *v = realloc(st->services, sizeof(*v));

		if (v)
			st->services = v;
	}
	*out = st;
	return 0;
}

/* --- bookkeeping ---------------------------------------------------------------------------- */

static int touch_be(struct lbi *l, struct berec *r)
{
	if (r->touched)
		return 0;
	if (VEC_GROW(l->tbe, l->n_tbe + 1, l->cap_tbe))
		return -ENOMEM;
	r->touched = true;
	l->tbe[l->n_tbe++] = r;
	return 0;
}

static int touch_fe(struct lbi *l, struct ferec *r)
{
	if (r->touched)
		return 0;
	if (VEC_GROW(l->tfe, l->n_tfe + 1, l->cap_tfe))
		return -ENOMEM;
	r->touched = true;
	l->tfe[l->n_tfe++] = r;
	return 0;
}

static int be_use(struct lbi *l, const struct lbm_backend *b, int delta)
{
	uint64_t k = be_key(b->addr, b->port, b->proto);
	struct berec *r = hfind_u64(&l->bes, k);

	if (!r) {
		if (delta < 0 || hreserve(&l->bes, false) || !(r = berec_alloc(l)))
			return -ENOMEM; /* a release of an unknown backend is a bookkeeping bug */
		r->key = k;
		hinsert_u64(&l->bes, r);
	}
	r->uses += (uint32_t)delta;
	if (b->state == SL_BE_ACTIVE)
		r->ready += (uint32_t)delta;
	if (b->local)
		r->local += (uint32_t)delta;
	return touch_be(l, r);
}

static int fe_own(struct lbi *l, struct svcent *s, const struct lbm_frontend *fe, uint32_t idx)
{
	uint64_t k = fe_key(&fe->key);
	struct ferec *r = hfind_u64(&l->fes, k);

	if (!r) {
		if (hreserve(&l->fes, false) || !(r = calloc(1, sizeof(*r))))
			return -ENOMEM;
		r->key = k;
		hinsert_u64(&l->fes, r);
	}
	if (r->n_own == r->cap_own) {
		/* Exact growth: almost every frontend has one owner. */
		struct feowner *v = reallocarray(r->own, r->n_own + 1, sizeof(*v));

		if (!v)
			return -ENOMEM;
		r->own = v;
		r->cap_own = r->n_own + 1;
	}
	r->own[r->n_own++] = (struct feowner){s, idx};
	return touch_fe(l, r);
}

static int fe_unown(struct lbi *l, struct svcent *s, const struct lbm_frontend *fe)
{
	struct ferec *r = hfind_u64(&l->fes, fe_key(&fe->key));

	if (!r)
		return -ENOMEM; /* cannot happen unless the books were lost */
	/* Every entry of s in the group: all of its old entries are going. */
	for (size_t i = 0; i < r->n_own;)
		if (r->own[i].s == s)
			r->own[i] = r->own[--r->n_own];
		else
			i++;
	return touch_fe(l, r);
}

/* Older Services own contested frontends: creationTimestamp, namespace, name
 * (the full build's rank). */
static int rank_cmp(const struct svcent *a, const struct svcent *b)
{
	const struct k8s_time *ta = &a->svc->created;
	const struct k8s_time *tb = &b->svc->created;
	int c;

	if (ta->sec != tb->sec)
		return ta->sec < tb->sec ? -1 : 1;
	if (ta->nsec != tb->nsec)
		return ta->nsec < tb->nsec ? -1 : 1;
	c = strcmp(a->svc->ns, b->svc->ns);
	return c ? c : strcmp(a->svc->name, b->svc->name);
}

/* The owning Service of a group, NULL when nobody wants it. */
static struct svcent *fe_winner(const struct ferec *r)
{
	struct svcent *w = NULL;

	for (size_t i = 0; i < r->n_own; i++)
		if (!w || rank_cmp(r->own[i].s, w) < 0)
			w = r->own[i].s;
	return w;
}

/* w's entry for scope in group r, or NULL. */
static const struct feowner *fe_entry(const struct ferec *r, const struct svcent *w, uint8_t scope)
{
	for (size_t i = 0; i < r->n_own; i++)
		if (r->own[i].s == w && w->frag->frontends[r->own[i].idx].key.scope == scope)
			return &r->own[i];
	return NULL;
}

static bool be_same(const struct lbm_backend *a, const struct lbm_backend *b)
{
	return a->addr == b->addr && a->port == b->port && a->proto == b->proto;
}

static bool fe_same(const struct lbm_state *pa, const struct lbm_frontend *a,
		    const struct lbm_state *pb, const struct lbm_frontend *b)
{
	if (a->flags != b->flags || a->count != b->count || a->drop != b->drop ||
	    a->affinity_s != b->affinity_s)
		return false;
	for (uint16_t i = 0; i < a->count; i++)
		if (!be_same(&pa->backends[a->be[i]], &pb->backends[b->be[i]]))
			return false;
	return true;
}

/* --- plans ---------------------------------------------------------------------------------- */

static void problem_free(struct lbm_problem *p)
{
	free(p->ns);
	free(p->name);
	free(p->message);
}

void lbi_plan_fini(struct lbi_plan *p)
{
	if (!p)
		return;
	free(p->be_put);
	free(p->fe_put);
	free(p->fe_del);
	free(p->be_del);
	for (size_t i = 0; i < p->n_problems; i++)
		problem_free(&p->problems[i]);
	free(p->problems);
	memset(p, 0, sizeof(*p));
}

struct plan_caps {
	size_t be_put, fe_put, fe_del, be_del, problems;
};

static int problem_push(struct lbi_plan *p, struct plan_caps *c, const char *ns, const char *name,
			const char *reason, const char *message)
{
	struct lbm_problem *q;

	if (VEC_GROW(p->problems, p->n_problems + 1, c->problems))
		return -ENOMEM;
	q = &p->problems[p->n_problems];
	q->ns = strdup(ns);
	q->name = strdup(name);
	q->reason = reason;
	q->message = strdup(message);
	if (!q->ns || !q->name || !q->message) {
		problem_free(q);
		return -ENOMEM;
	}
	p->n_problems++;
	return 0;
}

/* The spec.ports name behind a frontend, for messages. */
static const char *fe_port_name(const struct csvc *s, const struct lbm_frontend *fe)
{
	uint16_t port = ntohs(fe->key.port);
	bool np = fe->flags & SL_SVC_F_NODEPORT;

	for (size_t i = 0; i < s->n_ports; i++)
		if ((np ? s->ports[i].node_port : s->ports[i].port) == port)
			return s->ports[i].name ? s->ports[i].name : "";
	return "";
}

/* One FrontendConflict per losing Service of the group. */
static int conflict_push(struct lbi_plan *p, struct plan_caps *c, const struct ferec *r,
			 const struct svcent *w)
{
	const struct feowner *we = fe_entry(r, w, SL_SCOPE_EXT);
	const struct lbm_frontend *wfe;
	struct in_addr a;
	char ip[INET_ADDRSTRLEN], msg[512];
	const char *proto;
	bool contested = false;

	for (size_t i = 0; i < r->n_own; i++)
		contested |= r->own[i].s != w;
	if (!contested)
		return 0;
	if (!we)
		we = fe_entry(r, w, SL_SCOPE_INT);
	wfe = &w->frag->frontends[we->idx];
	a.s_addr = wfe->key.addr;
	proto = wfe->key.proto == IPPROTO_TCP	? "TCP"
		: wfe->key.proto == IPPROTO_UDP ? "UDP"
						: "SCTP";
	inet_ntop(AF_INET, &a, ip, sizeof(ip));
	for (size_t i = 0; i < r->n_own; i++) {
		const struct feowner *o = &r->own[i];
		const struct lbm_frontend *ofe = &o->s->frag->frontends[o->idx];
		bool seen = false;

		for (size_t k = 0; k < i && !seen; k++)
			seen = r->own[k].s == o->s;
		if (o->s == w || seen)
			continue;
		snprintf(msg, sizeof(msg),
			 "frontend %s:%u/%s of port '%s' is not programmed: it is already used "
			 "by service %s/%s port '%s'",
			 wfe->key.addr ? ip : "<node>", ntohs(wfe->key.port), proto,
			 fe_port_name(o->s->svc, ofe), w->svc->ns, w->svc->name,
			 fe_port_name(w->svc, wfe));
		if (problem_push(p, c, o->s->svc->ns, o->s->svc->name, "FrontendConflict", msg))
			return -ENOMEM;
	}
	return 0;
}

/* The entry last written for r: in the old fragment when its Service was rebuilt. */
/* The entry last written for r's scope: in the old fragment when its
 * Service was rebuilt. */
static const struct lbm_frontend *fe_written(const struct ferec *r, uint8_t scope,
					     const struct lbm_state **st)
{
	const struct svcent *s = r->written[scope];
	struct sl_svc_key k = fe_key_of(r->key, scope);
	ssize_t i;

	*st = s->in_plan ? s->old : s->frag;
	if (!*st)
		return NULL;
	i = lbm_state_find_frontend(*st, &k);
	return i < 0 ? NULL : &(*st)->frontends[i];
}

static uint32_t key_host(const struct sl_svc_key *k)
{
	return ntohl(k->addr);
}

static int key_order(const struct sl_svc_key *a, const struct sl_svc_key *b)
{
	uint32_t x = key_host(a), y = key_host(b);

	if (x != y)
		return x < y ? -1 : 1;
	if (a->port != b->port)
		return ntohs(a->port) < ntohs(b->port) ? -1 : 1;
	if (a->proto != b->proto)
		return a->proto < b->proto ? -1 : 1;
	return 0;
}

/* Upserts: INT scope before EXT (an EXT entry that sends in-node clients to
 * INT finds it), then key order. */
static int fe_put_cmp(const void *pa, const void *pb)
{
	const struct lbi_fe *a = pa, *b = pb;
	const struct sl_svc_key *ka = &a->st->frontends[a->idx].key;
	const struct sl_svc_key *kb = &b->st->frontends[b->idx].key;

	if (ka->scope != kb->scope)
		return ka->scope == SL_SCOPE_INT ? -1 : 1;
	return key_order(ka, kb);
}

/* Deletes: EXT before INT. */
static int fe_del_cmp(const void *pa, const void *pb)
{
	const struct sl_svc_key *ka = pa, *kb = pb;

	if (ka->scope != kb->scope)
		return ka->scope == SL_SCOPE_EXT ? -1 : 1;
	return key_order(ka, kb);
}

static int be_put_push(struct lbi_plan *p, struct plan_caps *c, struct berec *r)
{
	struct lbm_backend b = be_of(r);

	if (VEC_GROW(p->be_put, p->n_be_put + 1, c->be_put))
		return -ENOMEM;
	p->be_put[p->n_be_put++] = b;
	r->written = true;
	r->w_state = b.state;
	r->w_local = b.local;
	return 0;
}

static int fe_put_push(struct lbi *l, struct lbi_plan *p, struct plan_caps *c, struct ferec *r,
		       const struct feowner *e)
{
	uint8_t scope = e->s->frag->frontends[e->idx].key.scope;

	if (VEC_GROW(p->fe_put, p->n_fe_put + 1, c->fe_put))
		return -ENOMEM;
	p->fe_put[p->n_fe_put++] = (struct lbi_fe){e->s->frag, e->idx};
	if (!r->written[scope])
		l->n_fe_wanted++;
	r->written[scope] = e->s;
	return 0;
}

static int fe_del_push(struct lbi *l, struct lbi_plan *p, struct plan_caps *c, struct ferec *r,
		       uint8_t scope)
{
	if (VEC_GROW(p->fe_del, p->n_fe_del + 1, c->fe_del))
		return -ENOMEM;
	p->fe_del[p->n_fe_del++] = fe_key_of(r->key, scope);
	r->written[scope] = NULL;
	l->n_fe_wanted--;
	return 0;
}

/* Forget every fragment and use count, and rebuild every Service from its
 * inputs: the way out when an allocation failed half-way through a plan. */
static void books_reset(struct lbi *l)
{
	slabs_free(l);
	HFOREACH(&l->fes, struct ferec, r)
	{
		free(r->own);
		free(r);
	}
	htab_free(&l->bes);
	htab_free(&l->fes);
	memset(&l->bes, 0, sizeof(l->bes));
	memset(&l->fes, 0, sizeof(l->fes));
	l->n_fe_wanted = 0;
	HFOREACH(&l->svcs, struct svcent, s)
	{
		if (s->frag != s->old)
			lbm_state_free(s->old);
		lbm_state_free(s->frag);
		s->frag = s->old = NULL;
		s->in_plan = false;
		mark_dirty(l, s);
	}
	l->n_tbe = l->n_tfe = 0;
	l->need_full = true;
}

/* Takes the new fragments into the books: use counts and frontend owners. */
static int plan_commit(struct lbi *l, struct svcent **ds, struct lbm_state **news, size_t n,
		       struct lbi_plan *p, struct plan_caps *c)
{
	for (size_t i = 0; i < n; i++) {
		struct svcent *s = ds[i];
		struct lbm_state *o = s->frag, *nw = news[i];
		uint16_t hc_o = o && o->n_services ? o->services[0].hc_node_port : 0;
		uint16_t hc_n = nw && nw->n_services ? nw->services[0].hc_node_port : 0;

		news[i] = NULL;
		s->old = o;
		s->frag = nw;
		s->gen = ++l->gen;
		s->in_plan = true;
		for (size_t k = 0; o && k < o->n_backends; k++)
			if (be_use(l, &o->backends[k], -1))
				return -ENOMEM;
		for (size_t k = 0; o && k < o->n_frontends; k++)
			if (fe_unown(l, s, &o->frontends[k]))
				return -ENOMEM;
		for (size_t k = 0; nw && k < nw->n_backends; k++)
			if (be_use(l, &nw->backends[k], 1))
				return -ENOMEM;
		for (size_t k = 0; nw && k < nw->n_frontends; k++)
			if (fe_own(l, s, &nw->frontends[k], (uint32_t)k))
				return -ENOMEM;
		p->hc_changed |= hc_o != hc_n;
		for (size_t k = 0; nw && k < nw->n_problems; k++)
			if (problem_push(p, c, nw->problems[k].ns, nw->problems[k].name,
					 nw->problems[k].reason, nw->problems[k].message))
				return -ENOMEM;
		p->services_built++;
	}
	return 0;
}

/* full: plan_everything() pushes every wanted backend and frontend after
 * this, so the touched ones are not pushed here too (at a start that was
 * every one of them twice). Deletions and bookkeeping are the same. */
static int plan_backends(struct lbi *l, struct lbi_plan *p, struct plan_caps *c, bool full)
{
	for (size_t i = 0; i < l->n_tbe; i++) {
		struct berec *r = l->tbe[i];
		struct lbm_backend b = be_of(r);

		r->touched = false;
		if (!r->uses) {
			if (r->written) {
				if (VEC_GROW(p->be_del, p->n_be_del + 1, c->be_del))
					return -ENOMEM;
				p->be_del[p->n_be_del++] = b;
			}
			hremove_u64(&l->bes, r);
			berec_free(l, r);
			l->tbe[i] = NULL;
			continue;
		}
		if (!full && (!r->written || r->w_state != b.state || r->w_local != b.local))
			if (be_put_push(p, c, r))
				return -ENOMEM;
	}
	return 0;
}

static int plan_frontends(struct lbi *l, struct lbi_plan *p, struct plan_caps *c, bool full)
{
	for (size_t i = 0; i < l->n_tfe; i++) {
		struct ferec *r = l->tfe[i];
		struct svcent *w = fe_winner(r);

		r->touched = false;
		for (unsigned scope = SL_SCOPE_EXT; scope <= SL_SCOPE_INT; scope++) {
			const struct feowner *e = w ? fe_entry(r, w, scope) : NULL;
			const struct lbm_state *ost;
			const struct lbm_frontend *ofe;

			if (!e) {
				if (r->written[scope] && fe_del_push(l, p, c, r, scope))
					return -ENOMEM;
				continue;
			}
			if (full || (r->written[scope] == w && !w->in_plan))
				continue; /* plan_everything's, or same owner and fragment */
			ofe = r->written[scope] == w ? fe_written(r, scope, &ost) : NULL;
			if (ofe && fe_same(ost, ofe, w->frag, &w->frag->frontends[e->idx]))
				continue;
			if (fe_put_push(l, p, c, r, e))
				return -ENOMEM;
		}
		if (!w) {
			hremove_u64(&l->fes, r);
			free(r->own);
			free(r);
			l->tfe[i] = NULL;
			continue;
		}
		if (conflict_push(p, c, r, w))
			return -ENOMEM;
	}
	return 0;
}

/* A full plan: every wanted backend and frontend, and every conflict. */
static int plan_everything(struct lbi *l, struct lbi_plan *p, struct plan_caps *c)
{
	p->n_be_put = 0;
	p->n_fe_put = 0;
	if (VEC_GROW(p->be_put, l->bes.n, c->be_put) ||
	    VEC_GROW(p->fe_put, 2 * l->fes.n, c->fe_put))
		return -ENOMEM;
	HFOREACH(&l->bes, struct berec, r)
	if (be_put_push(p, c, r))
		return -ENOMEM;
	HFOREACH(&l->fes, struct ferec, r)
	{
		struct svcent *w = fe_winner(r);

		for (unsigned scope = SL_SCOPE_EXT; w && scope <= SL_SCOPE_INT; scope++) {
			const struct feowner *e = fe_entry(r, w, scope);

			if (e && fe_put_push(l, p, c, r, e))
				return -ENOMEM;
		}
		if (w && conflict_push(p, c, r, w))
			return -ENOMEM;
	}
	p->hc_changed = true;
	return 0;
}

/* After a large plan (a start, a node address change) the scratch arrays
 * are sized for every Service; an endpoint change needs a few entries. */
static void scratch_trim(struct lbi *l)
{
	if (l->cap_tbe > 4096) {
		free(l->tbe);
		l->tbe = NULL;
		l->cap_tbe = 0;
	}
	if (l->cap_tfe > 4096) {
		free(l->tfe);
		l->tfe = NULL;
		l->cap_tfe = 0;
	}
}

struct build_part {
	const struct lbi *l;
	struct svcent **ds;
	struct lbm_state **news;
	size_t n;
	struct bscratch bs;
	int err;
};

static void *build_part_run(void *arg)
{
	struct build_part *p = arg;

	for (size_t i = 0; i < p->n && !p->err; i++)
		p->err = frag_build(p->l, &p->bs, p->ds[i], &p->news[i]);
	bscratch_fini(&p->bs);
	return NULL;
}

/*
 * Builds the fragments of n dirty Services into news[]. A start builds every
 * Service (50,000: ~0.3 s of the plan's ~0.45 s) while the informer threads
 * have finished their lists, so a second thread takes the second half of a
 * large batch; the builds only read the Services' entries and the node.
 */
#define BUILD_PARALLEL_MIN 2048
static int build_all(struct lbi *l, struct svcent **ds, struct lbm_state **news, size_t n)
{
	struct build_part half = {.l = l};
	pthread_t th;
	bool threaded = false;
	size_t mine = n;
	int err = 0;

	if (n >= BUILD_PARALLEL_MIN) {
		mine = n / 2;
		half.ds = ds + mine;
		half.news = news + mine;
		half.n = n - mine;
		threaded = !pthread_create(&th, NULL, build_part_run, &half);
		if (!threaded)
			mine = n; /* no thread: all of it here */
	}
	for (size_t i = 0; i < mine && !err; i++)
		err = frag_build(l, &l->bs, ds[i], &news[i]);
	if (threaded) {
		pthread_join(th, NULL);
		if (!err)
			err = half.err;
	}
	return err;
}

/* A prebuilt fragment still matches its Service's inputs. */
static bool pre_valid(const struct svcent *s)
{
	return s->pre_ok && s->pre_gen == s->in_gen;
}

static void pre_drop(struct svcent *s)
{
	lbm_state_free(s->pre);
	s->pre = NULL;
	s->pre_ok = false;
}

int lbi_prebuild(struct lbi *l, size_t max)
{
	size_t end, built = 0;
	int err = 0, more;

	/* Without this node's object every build would be redone. */
	if (!l || !l->prebuilding || !l->node)
		return 0;
	/* A FIFO in the order Services were queued. One whose inputs changed
	 * since the previous call goes to the back (its other slices are
	 * likely still arriving); the others are built, up to max. */
	end = l->pq_n;
	while (l->pq_head < end && built < max && !err) {
		struct svcent *s = l->pq[l->pq_head++];

		if (s->touch_round == l->round) {
			if (VEC_GROW(l->pq, l->pq_n + 1, l->pq_cap))
				s->pq = false; /* the plan builds it */
			else
				l->pq[l->pq_n++] = s;
			continue;
		}
		s->pq = false;
		if (!s->svc || !s->n_slices || pre_valid(s))
			continue; /* the plan builds it (or has it) */
		pre_drop(s);
		err = frag_build(l, &l->bs, s, &s->pre);
		if (err) {
			s->pre = NULL;
			break;
		}
		s->pre_ok = true;
		s->pre_gen = s->in_gen;
		built++;
	}
	/* 1: more are ready now; 2: only Services changed since this call's
	 * start wait (ready at the next call). */
	more = l->pq_head < end ? 1 : l->pq_head < l->pq_n ? 2 : 0;
	/* The front is consumed: slide the rest down once it is most of it. */
	if (l->pq_head == l->pq_n) {
		l->pq_head = l->pq_n = 0;
	} else if (l->pq_head > 1024 && l->pq_head > l->pq_n / 2) {
		memmove(l->pq, l->pq + l->pq_head, (l->pq_n - l->pq_head) * sizeof(*l->pq));
		l->pq_n -= l->pq_head;
		l->pq_head = 0;
	}
	l->round++;
	return err ? err : more;
}

int lbi_plan(struct lbi *l, bool full, struct lbi_plan *out)
{
	struct plan_caps caps = {0};
	struct svcent **ds = NULL, *s;
	struct lbm_state **news = NULL;
	size_t n = 0, i, n_be = 0, n_fe = 0, n_pre = 0;
	int err = -ENOMEM;

	if (!l || !out)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	full |= l->need_full;
	ds = calloc(l->n_dirty + 1, sizeof(*ds));
	news = calloc(l->n_dirty + 1, sizeof(*news));
	if (!ds || !news)
		goto out;
	/* Prebuilt fragments still valid go first, the rest are built. */
	for (s = l->dirty; s; s = s->dnext) {
		if (pre_valid(s)) {
			news[n_pre] = s->pre;
			s->pre = NULL;
			s->pre_ok = false;
			ds[n++] = ds[n_pre];
			ds[n_pre++] = s;
		} else {
			pre_drop(s);
			ds[n++] = s;
		}
	}
	/* Prebuilding ends with the first plan: later changes are few. */
	l->prebuilding = false;
	for (i = l->pq_head; i < l->pq_n; i++)
		l->pq[i]->pq = false;
	free(l->pq);
	l->pq = NULL;
	l->pq_head = l->pq_n = l->pq_cap = 0;
	/* Build everything first: a failure here changes nothing. */
	err = build_all(l, ds + n_pre, news + n_pre, n - n_pre);
	if (err)
		goto out;
	l->n_tbe = l->n_tfe = 0;
	/* Size the backend and frontend tables once for what the fragments
	 * can add (a start adds 200,000 backends: doubling rehashed them all
	 * eleven times). Best effort: hreserve() still grows one at a time. */
	for (i = 0; i < n; i++) {
		n_be += news[i] ? news[i]->n_backends : 0;
		n_fe += news[i] ? news[i]->n_frontends : 0;
	}
	hreserve_n(&l->bes, false, n_be);
	hreserve_n(&l->fes, false, n_fe);
	err = plan_commit(l, ds, news, n, out, &caps);
	out->services_prebuilt = n_pre;
	if (!err)
		err = plan_backends(l, out, &caps, full);
	if (!err)
		err = plan_frontends(l, out, &caps, full);
	if (!err && full)
		err = plan_everything(l, out, &caps);
	if (err) {
		/* The books are half-updated: start over from the inputs. */
		lbi_plan_fini(out);
		books_reset(l);
		goto out;
	}
	for (i = 0; i < n; i++) {
		s = ds[i];
		lbm_state_free(s->old);
		s->old = NULL;
		s->in_plan = false;
		s->dirty = false;
		if (!s->svc && !s->n_slices) {
			hremove_str(&l->svcs, s);
			svcent_free(s);
		}
	}
	l->dirty = NULL;
	l->n_dirty = 0;
	l->need_full = false;
	scratch_trim(l);
	out->full = full;
	if (out->n_fe_put > 1)
		qsort(out->fe_put, out->n_fe_put, sizeof(*out->fe_put), fe_put_cmp);
	if (out->n_fe_del > 1)
		qsort(out->fe_del, out->n_fe_del, sizeof(*out->fe_del), fe_del_cmp);
out:
	if (err)
		pr_err(SUBSYS, "plan failed: %s", sl_strerror(err));
	for (i = 0; news && i < n; i++)
		lbm_state_free(news[i]);
	free(ds);
	free(news);
	return err;
}

bool lbi_want_frontend(const struct lbi *l, const struct sl_svc_key *key)
{
	const struct ferec *r = hfind_u64(&l->fes, fe_key(key));

	return r && key->scope <= SL_SCOPE_INT && r->written[key->scope];
}

bool lbi_want_backend(const struct lbi *l, __be32 addr, __be16 port, __u8 proto)
{
	const struct berec *r = hfind_u64(&l->bes, be_key(addr, port, proto));

	return r && r->uses;
}

void lbi_counts(const struct lbi *l, size_t *frontends, size_t *backends)
{
	*frontends = l->n_fe_wanted;
	*backends = l->bes.n;
}

int lbi_foreach_service(const struct lbi *l, int (*fn)(const struct lbm_service *s, void *arg),
			void *arg)
{
	HFOREACH(&l->svcs, struct svcent, s)
	{
		int rc;

		if (!s->frag || !s->frag->n_services)
			continue;
		rc = fn(&s->frag->services[0], arg);
		if (rc)
			return rc;
	}
	return 0;
}

int lbi_foreach_fragment(const struct lbi *l, lbi_fragment_fn fn, void *arg)
{
	bool *owned = NULL;
	size_t cap = 0;
	int rc = 0;

	HFOREACH(&l->svcs, struct svcent, s)
	{
		const struct lbm_state *f = s->frag;

		if (!f || !f->n_services)
			continue;
		if (f->n_frontends > cap) {
			bool *v = realloc(owned, f->n_frontends * sizeof(*v));

			if (!v) {
				rc = -ENOMEM;
				break;
			}
			owned = v;
			cap = f->n_frontends;
		}
		for (size_t k = 0; k < f->n_frontends; k++) {
			const struct sl_svc_key *key = &f->frontends[k].key;
			const struct ferec *r = hfind_u64(&l->fes, fe_key(key));

			owned[k] = r && key->scope <= SL_SCOPE_INT && r->written[key->scope] == s;
		}
		rc = fn(f, owned, s->gen, arg);
		if (rc)
			break;
	}
	free(owned);
	return rc;
}
