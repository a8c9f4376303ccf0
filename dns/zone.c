// SPDX-License-Identifier: Apache-2.0
/*
 * The cluster zone (see zone.h for the contract and the choices made).
 *
 * How it works. dns_zone_upsert() turns each object into a compact writer
 * record (lower-case names, parsed addresses, endpoint names) and frees the
 * decoded object. A Service and the EndpointSlices naming it form a group;
 * touching any of them marks the group dirty. dns_zone_commit() resolves each
 * dirty group into an immutable, refcounted snap_svc (ready filtering,
 * endpoint names, deduplication, sorted by address), updates the writer's
 * per-shard lists (services by name hash, reverse entries and pods by address
 * hash), rebuilds only the shards those lists changed in, and publishes a
 * snapshot: NSH shard pointers per index, every untouched shard shared with
 * the previous snapshot. Answering is one shard lookup plus a walk over a
 * flat array. Readers find the snapshot through one atomic pointer and
 * protect it with a hazard slot; refcounts are touched by the writer only.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sluice/err.h"
#include "sluice/log.h"
#include "zone.h"

#define SUB	    "dns-zone"
#define SOA_TTL_CAP 300
#define VERSION_TTL 28800

/* --- small helpers ------------------------------------------------------------------------ */

static char lc(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
}

static uint64_t hash_bytes(uint64_t h, const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++)
		h = (h ^ (uint8_t)lc((char)b[i])) * 0x100000001b3ull;
	return h;
}

#define HASH_SEED 0xcbf29ce484222325ull

static bool lab_eq(const char *a, size_t na, const char *b)
{
	if (!b || strlen(b) != na)
		return false;
	for (size_t i = 0; i < na; i++)
		if (lc(a[i]) != lc(b[i]))
			return false;
	return true;
}

static size_t pow2_at_least(size_t n)
{
	size_t c = 16;

	while (c < n * 2)
		c <<= 1;
	return c;
}

/* --- writer-side object maps (chained, string keys) -------------------------------------- */

struct omap_ent {
	struct omap_ent *next;
	char *key;
	void *obj;
};

struct omap {
	struct omap_ent **b;
	size_t cap, n;
	void (*free_obj)(void *obj); /* frees a value on replace/delete/fini */
};

static struct omap_ent **omap_slot(struct omap *m, const char *key)
{
	uint64_t h = hash_bytes(HASH_SEED, key, strlen(key));
	struct omap_ent **pp = &m->b[h & (m->cap - 1)];

	while (*pp && strcmp((*pp)->key, key) != 0)
		pp = &(*pp)->next;
	return pp;
}

static void *omap_get(struct omap *m, const char *key)
{
	struct omap_ent **pp;

	if (!m->cap)
		return NULL;
	pp = omap_slot(m, key);
	return *pp ? (*pp)->obj : NULL;
}

static int omap_grow(struct omap *m)
{
	size_t ncap = m->cap ? m->cap * 2 : 64;
	struct omap_ent **nb = calloc(ncap, sizeof(struct omap_ent *));

	if (!nb)
		return -ENOMEM;
	for (size_t i = 0; i < m->cap; i++) {
		struct omap_ent *e = m->b[i], *nx;

		for (; e; e = nx) {
			nx = e->next;
			uint64_t h = hash_bytes(HASH_SEED, e->key, strlen(e->key));

			e->next = nb[h & (ncap - 1)];
			nb[h & (ncap - 1)] = e;
		}
	}
	free(m->b);
	m->b = nb;
	m->cap = ncap;
	return 0;
}

/* Takes ownership of obj (the previous value under key is freed). */
static int omap_put(struct omap *m, const char *key, void *obj)
{
	struct omap_ent **pp, *e;

	if ((m->n + 1) * 2 > m->cap && omap_grow(m))
		return -ENOMEM;
	pp = omap_slot(m, key);
	if (*pp) {
		if ((*pp)->obj != obj)
			m->free_obj((*pp)->obj);
		(*pp)->obj = obj;
		return 0;
	}
	e = calloc(1, sizeof(*e));
	if (!e || !(e->key = strdup(key))) {
		free(e);
		return -ENOMEM;
	}
	e->obj = obj;
	*pp = e;
	m->n++;
	return 0;
}

static void omap_del(struct omap *m, const char *key)
{
	struct omap_ent **pp, *e;

	if (!m->cap)
		return;
	pp = omap_slot(m, key);
	e = *pp;
	if (!e)
		return;
	*pp = e->next;
	m->free_obj(e->obj);
	free(e->key);
	free(e);
	m->n--;
}

static void omap_fini(struct omap *m)
{
	for (size_t i = 0; i < m->cap; i++) {
		struct omap_ent *e = m->b[i], *nx;

		for (; e; e = nx) {
			nx = e->next;
			m->free_obj(e->obj);
			free(e->key);
			free(e);
		}
	}
	free(m->b);
	m->b = NULL;
	m->cap = m->n = 0;
}

#define OMAP_FOR_EACH(m, e)                      \
	for (size_t _i = 0; _i < (m)->cap; _i++) \
		for (struct omap_ent * (e) = (m)->b[_i]; (e); (e) = (e)->next)

/* --- arenas: one per compact object, growing geometrically ---------------------------------- */

struct arena_blk {
	struct arena_blk *next;
	size_t used, cap;
	_Alignas(16) uint8_t data[];
};

struct arena {
	struct arena_blk *head;
	size_t total;
};

static void *arena_alloc(struct arena *a, size_t n)
{
	struct arena_blk *b = a->head;

	n = (n + 15) & ~(size_t)15;
	if (!b || b->cap - b->used < n) {
		/* Small objects stay small; big ones (a 1,000-endpoint Service) double. */
		size_t cap = a->total < 256 ? 256 : a->total;

		if (cap > 1 << 20)
			cap = 1 << 20;
		if (cap < n)
			cap = n;
		b = malloc(sizeof(*b) + cap);
		if (!b)
			return NULL;
		b->next = a->head;
		b->used = 0;
		b->cap = cap;
		a->head = b;
		a->total += sizeof(*b) + cap;
	}
	void *p = b->data + b->used;

	b->used += n;
	memset(p, 0, n);
	return p;
}

static char *arena_strdup_lc(struct arena *a, const char *s)
{
	size_t n = strlen(s);
	char *d = arena_alloc(a, n + 1);

	if (!d)
		return NULL;
	for (size_t i = 0; i < n; i++)
		d[i] = lc(s[i]);
	return d;
}

static void arena_free(struct arena *a)
{
	struct arena_blk *b = a->head, *nx;

	for (; b; b = nx) {
		nx = b->next;
		free(b);
	}
	a->head = NULL;
}

/* --- addresses ------------------------------------------------------------------------------ */

struct addr {
	uint8_t fam; /* 4 or 6 */
	uint8_t b[16];
};

static uint64_t hash_svc(const char *name, size_t nn, const char *ns, size_t nns)
{
	uint64_t h = hash_bytes(HASH_SEED, name, nn);

	h = hash_bytes(h, ".", 1);
	return hash_bytes(h, ns, nns);
}

static uint64_t hash_addr(const struct addr *a)
{
	return hash_bytes(HASH_SEED + a->fam, a->b, a->fam == 4 ? 4 : 16);
}

static bool addr_eq(const struct addr *x, const struct addr *y)
{
	return x->fam == y->fam && !memcmp(x->b, y->b, x->fam == 4 ? 4 : 16);
}

static bool addr_parse(const char *s, struct addr *a)
{
	memset(a, 0, sizeof(*a));
	if (!s)
		return false;
	if (inet_pton(AF_INET, s, a->b) == 1) {
		a->fam = 4;
		return true;
	}
	if (inet_pton(AF_INET6, s, a->b) == 1) {
		a->fam = 6;
		return true;
	}
	return false;
}

/* --- immutable, refcounted snapshot parts ----------------------------------------------------
 *
 * Refcounts are plain integers: only the writer takes and drops references
 * (a snapshot's references are dropped when the writer frees it, after no
 * hazard slot names it), so readers never touch them.
 */

struct snap_port {
	const char *name;  /* lower case, "" when unnamed */
	const char *proto; /* lower case: "tcp", "udp", "sctp" */
	uint16_t port;
};

struct snap_ep {
	struct addr a;
	const char *name;	       /* endpoint name: hostname or dashed IP (lower case) */
	const struct snap_port *ports; /* the slice's ports */
	size_t n_ports;
	bool dup_name; /* an earlier endpoint has the same name: its SRV is already there */
};

enum svc_kind { SVC_CLUSTERIP, SVC_HEADLESS, SVC_EXTERNAL };

/* A Service with its endpoints resolved; lives in its own arena (ar), which holds it too. */
struct snap_svc {
	uint64_t h;	       /* hash_svc(name, ns) */
	const char *name, *ns; /* lower case */
	enum svc_kind kind;
	const char *external; /* SVC_EXTERNAL target, no trailing dot */
	struct addr *ips;     /* ClusterIPs */
	size_t n_ips;
	struct snap_port *ports; /* Service ports */
	size_t n_ports;
	struct snap_ep *eps; /* ready endpoints, sorted by address, unique */
	size_t n_eps;
	unsigned int refs; /* the owning group + every shard and reverse entry naming it */
	struct arena ar;
};

/*
 * Shards: the snapshot is NSH pointers per index, each to an immutable
 * table (NULL when empty). A commit rebuilds only the shards whose content
 * changed and shares every other one with the previous snapshot, so its
 * cost follows the change, not the zone. Shards are small (a few entries at
 * 10,000 Services), so a lookup is a linear scan of one flat array.
 */
#define NSH_BITS 12
#define NSH	 (1u << NSH_BITS)

struct svc_shard {
	unsigned int refs;
	size_t n, bytes;
	struct snap_svc *v[]; /* each holds a reference */
};

struct rev_ent {
	struct addr a;
	struct snap_svc *svc; /* a reference in a rev_shard, borrowed in the writer's list */
	const char *ep;	      /* NULL: a ClusterIP of svc; else the endpoint name (in svc) */
};

struct rev_shard {
	unsigned int refs;
	size_t n, bytes;
	struct rev_ent e[];
};

struct pod_ent {
	struct addr a;
	const char *ns;	   /* lower case; in the shard's block (the writer's: the wpod's) */
	const void *owner; /* writer side: the wpod, to remove its entries */
};

struct pod_shard {
	unsigned int refs;
	size_t n, bytes;
	struct pod_ent e[];
};

/* Namespaces: open addressing over lower-case names, rebuilt only when the set changes. */
struct ns_tab {
	unsigned int refs;
	size_t cap, n, bytes;
	const char *slot[];
};

struct snap {
	struct svc_shard **svc; /* [NSH], by hash_svc */
	struct rev_shard **rev; /* [NSH], by hash_addr (NULL when reverse is off) */
	struct pod_shard **pod; /* [NSH], by hash_addr */
	struct ns_tab *ns;
	size_t n_svc, n_eps, n_pod, n_ns, bytes;
	uint32_t serial;
	struct snap *retired_next;
};

static void svc_unref(struct snap_svc *v)
{
	if (v && !--v->refs) {
		struct arena a = v->ar; /* v lives in its own arena */

		arena_free(&a);
	}
}

static void svc_shard_unref(struct svc_shard *sh)
{
	if (sh && !--sh->refs) {
		for (size_t i = 0; i < sh->n; i++)
			svc_unref(sh->v[i]);
		free(sh);
	}
}

static void rev_shard_unref(struct rev_shard *sh)
{
	if (sh && !--sh->refs) {
		for (size_t i = 0; i < sh->n; i++)
			svc_unref(sh->e[i].svc);
		free(sh);
	}
}

static void pod_shard_unref(struct pod_shard *sh)
{
	if (sh && !--sh->refs)
		free(sh);
}

static void ns_tab_unref(struct ns_tab *t)
{
	if (t && !--t->refs)
		free(t);
}

static const struct snap_svc *snap_find_svc(const struct snap *s, const char *name, size_t nn,
					    const char *ns, size_t nns)
{
	uint64_t h = hash_svc(name, nn, ns, nns);
	const struct svc_shard *sh;

	if (!s->svc || !(sh = s->svc[h & (NSH - 1)]))
		return NULL;
	for (size_t i = 0; i < sh->n; i++) {
		const struct snap_svc *v = sh->v[i];

		if (v->h == h && lab_eq(name, nn, v->name) && lab_eq(ns, nns, v->ns))
			return v;
	}
	return NULL;
}

static bool snap_has_ns(const struct snap *s, const char *ns, size_t n)
{
	const struct ns_tab *t = s->ns;

	if (!t)
		return false;
	for (size_t i = hash_bytes(HASH_SEED, ns, n) & (t->cap - 1); t->slot[i];
	     i = (i + 1) & (t->cap - 1))
		if (lab_eq(ns, n, t->slot[i]))
			return true;
	return false;
}

static bool snap_has_pod(const struct snap *s, const char *ns, size_t n, const struct addr *a)
{
	const struct pod_shard *sh;

	if (!s->pod || !(sh = s->pod[hash_addr(a) & (NSH - 1)]))
		return false;
	for (size_t i = 0; i < sh->n; i++)
		if (addr_eq(&sh->e[i].a, a) && lab_eq(ns, n, sh->e[i].ns))
			return true;
	return false;
}

static void snap_free(struct snap *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < NSH; i++) {
		svc_shard_unref(s->svc[i]);
		rev_shard_unref(s->rev[i]);
		pod_shard_unref(s->pod[i]);
	}
	ns_tab_unref(s->ns);
	free(s);
}

/* --- hazard slots ---------------------------------------------------------------------------- */

#define HZ_SLOTS 256

struct hz_slot {
	_Alignas(64) _Atomic(struct snap *) ptr;
	atomic_bool used;
};

static struct hz_slot hz_slots[HZ_SLOTS + 1]; /* [HZ_SLOTS]: shared overflow slot */
static pthread_mutex_t hz_overflow_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_key_t hz_key;
static pthread_once_t hz_once = PTHREAD_ONCE_INIT;
static _Thread_local int hz_me = -1;

static void hz_release(void *p)
{
	struct hz_slot *s = p;

	atomic_store(&s->ptr, NULL);
	atomic_store(&s->used, false);
}

static void hz_init(void)
{
	if (pthread_key_create(&hz_key, hz_release))
		pr_warn(SUB, "hazard slots: pthread_key_create failed; threads keep their slots");
}

/* This thread's slot index, or HZ_SLOTS when every slot is taken. */
static int hz_slot_get(void)
{
	if (hz_me >= 0)
		return hz_me;
	pthread_once(&hz_once, hz_init);
	for (int i = 0; i < HZ_SLOTS; i++) {
		bool f = false;

		if (atomic_compare_exchange_strong(&hz_slots[i].used, &f, true)) {
			pthread_setspecific(hz_key, &hz_slots[i]);
			hz_me = i;
			return i;
		}
	}
	return HZ_SLOTS;
}

static bool hz_in_use(const struct snap *s)
{
	for (int i = 0; i <= HZ_SLOTS; i++)
		if (atomic_load(&hz_slots[i].ptr) == s)
			return true;
	return false;
}

/* --- the zone -------------------------------------------------------------------------------- */

/* --- writer-side compact objects ------------------------------------------------------------
 *
 * An upserted object is decoded, turned at once into one of these (lower-case
 * names, parsed addresses, endpoint names, all in one small arena) and the
 * decoded object is freed: no json-c tree outlives the call.
 */

struct wsvc {
	struct arena ar; /* holds this struct too */
	const char *name, *ns;
	enum svc_kind kind;
	const char *external;
	struct addr *ips;
	size_t n_ips;
	struct snap_port *ports;
	size_t n_ports;
	bool pnra; /* publishNotReadyAddresses */
};

struct wep {
	struct addr a;
	const char *name;
	bool ready; /* ready is true or unset */
};

struct wgrp;

struct wslice {
	struct arena ar;
	const char *gkey; /* "<ns>/<service>" lower case; NULL: feeds no Service */
	struct snap_port *ports;
	size_t n_ports;
	struct wep *eps;
	size_t n_eps;
	struct wgrp *grp; /* the group it is attached to */
};

struct wpod {
	struct arena ar;
	const char *ns;
	struct addr *a;
	size_t n;
};

/*
 * A group is everything one Service name resolves from: the Service and its
 * EndpointSlices. A change to any of them marks the group dirty, and the
 * commit re-resolves only dirty groups into new snap_svc objects.
 */
struct wgrp {
	char *key; /* "<ns>/<name>" lower case */
	struct wsvc *svc;
	struct wslice **sl;
	size_t n_sl, cap_sl;
	struct snap_svc *res; /* resolved form in the shards, one reference */
	bool dirty;
};

/* Growable array of fixed-size elements (the writer's per-shard lists). */
struct vec {
	void *v;
	size_t n, cap;
};

static void *vec_push(struct vec *x, size_t esz)
{
	if (x->n == x->cap) {
		size_t nc = x->cap ? x->cap * 2 : 4;
		void *nv = realloc(x->v, nc * esz);

		if (!nv)
			return NULL;
		x->v = nv;
		x->cap = nc;
	}
	return (char *)x->v + esz * x->n++;
}

struct dns_zone {
	char *zone; /* lower case, no trailing dot */
	size_t zone_len;
	unsigned int zone_labels;
	uint32_t ttl;
	enum dns_pod_mode pods;
	uint8_t ns_addr[4];
	bool no_reverse;
	struct omap svcs, slices, podmap, nsmap; /* "ns/name" -> wsvc, wslice, wpod, char* */
	struct omap grps;			 /* lower-case "ns/name" -> wgrp */
	struct omap nscnt;			 /* lower-case ns -> size_t users */
	struct vec dirty;			 /* struct wgrp * */
	/* The writer's view of each shard, and the published table built from it. */
	struct vec w_svc[NSH]; /* struct snap_svc * (borrowed from groups) */
	struct vec w_rev[NSH]; /* struct rev_ent */
	struct vec w_pod[NSH]; /* struct pod_ent */
	struct svc_shard *t_svc[NSH];
	struct rev_shard *t_rev[NSH];
	struct pod_shard *t_pod[NSH];
	struct ns_tab *t_ns;
	uint8_t d_svc[NSH], d_rev[NSH], d_pod[NSH];
	bool d_ns;
	size_t n_svc, n_eps, n_pod, n_ns, shard_bytes, res_bytes;
	_Atomic(struct snap *) cur;
	struct snap *retired;
	atomic_bool synced;
	uint32_t serial;
};

static void wsvc_free(void *p)
{
	struct wsvc *w = p;

	if (w) {
		struct arena a = w->ar;

		arena_free(&a);
	}
}

static void wslice_free(void *p)
{
	struct wslice *w = p;

	if (w) {
		struct arena a = w->ar;

		arena_free(&a);
	}
}

static void wpod_free(void *p)
{
	struct wpod *w = p;

	if (w) {
		struct arena a = w->ar;

		arena_free(&a);
	}
}

static void wgrp_free(void *p)
{
	struct wgrp *g = p;

	if (!g)
		return;
	svc_unref(g->res);
	free(g->sl);
	free(g->key);
	free(g);
}

struct dns_zone *dns_zone_new(const struct dns_zone_opts *opts)
{
	struct dns_zone *z;
	const char *zn;
	uint8_t wire[DNS_MAX_NAME];
	size_t n;

	if (!opts || !opts->zone || !*opts->zone) {
		pr_err(SUB, "zone: a cluster domain is required (e.g. cluster.local)");
		errno = EINVAL;
		return NULL;
	}
	zn = opts->zone;
	if (dns_name_to_wire(zn, wire, sizeof(wire)) <= 1 || strchr(zn, '\\')) {
		pr_err(SUB, "zone '%s': not a valid domain name", zn);
		errno = EINVAL;
		return NULL;
	}
	if (opts->ttl > 3600) {
		pr_err(SUB, "ttl %u: must be 0..3600 seconds", opts->ttl);
		errno = EINVAL;
		return NULL;
	}
	if ((unsigned int)opts->pods > DNS_PODS_DISABLED) {
		pr_err(SUB, "pods mode %d: must be insecure, verified or disabled", opts->pods);
		errno = EINVAL;
		return NULL;
	}
	z = calloc(1, sizeof(*z));
	if (!z)
		return NULL;
	z->zone = strdup(zn);
	if (!z->zone) {
		free(z);
		errno = ENOMEM;
		return NULL;
	}
	n = strlen(z->zone);
	if (n && z->zone[n - 1] == '.')
		z->zone[--n] = 0;
	for (size_t i = 0; i < n; i++) {
		z->zone[i] = lc(z->zone[i]);
		if (z->zone[i] == '.')
			z->zone_labels++;
	}
	z->zone_labels++;
	z->zone_len = n;
	z->ttl = opts->ttl ? opts->ttl : 30;
	z->pods = opts->pods;
	z->no_reverse = opts->no_reverse;
	if (inet_pton(AF_INET, opts->ns_addr ? opts->ns_addr : "127.0.0.1", z->ns_addr) != 1) {
		pr_err(SUB, "ns_addr '%s': not an IPv4 address", opts->ns_addr);
		free(z->zone);
		free(z);
		errno = EINVAL;
		return NULL;
	}
	z->svcs.free_obj = wsvc_free;
	z->slices.free_obj = wslice_free;
	z->podmap.free_obj = wpod_free;
	z->nsmap.free_obj = free;
	z->grps.free_obj = wgrp_free;
	z->nscnt.free_obj = free;
	return z;
}

void dns_zone_free(struct dns_zone *z)
{
	struct snap *s, *nx;

	if (!z)
		return;
	snap_free(atomic_load(&z->cur));
	for (s = z->retired; s; s = nx) {
		nx = s->retired_next;
		snap_free(s);
	}
	for (size_t i = 0; i < NSH; i++) {
		svc_shard_unref(z->t_svc[i]);
		rev_shard_unref(z->t_rev[i]);
		pod_shard_unref(z->t_pod[i]);
		free(z->w_svc[i].v);
		free(z->w_rev[i].v);
		free(z->w_pod[i].v);
	}
	ns_tab_unref(z->t_ns);
	omap_fini(&z->grps); /* before the Services and slices the groups point to */
	omap_fini(&z->svcs);
	omap_fini(&z->slices);
	omap_fini(&z->podmap);
	omap_fini(&z->nsmap);
	omap_fini(&z->nscnt);
	free(z->dirty.v);
	free(z->zone);
	free(z);
}

static int obj_key(enum k8s_kind kind, struct json_object *obj, char *key, size_t len)
{
	struct json_object *meta, *name, *ns = NULL;

	if (!json_object_is_type(obj, json_type_object) ||
	    !json_object_object_get_ex(obj, "metadata", &meta) ||
	    !json_object_object_get_ex(meta, "name", &name) ||
	    !json_object_is_type(name, json_type_string))
		return -EINVAL;
	if (kind != K8S_KIND_NAMESPACE)
		json_object_object_get_ex(meta, "namespace", &ns);
	if (snprintf(key, len, "%s/%s", ns ? json_object_get_string(ns) : "",
		     json_object_get_string(name)) >= (int)len)
		return -EINVAL;
	return 0;
}

static void lc_copy(char *d, const char *s)
{
	while ((*d++ = lc(*s++)))
		;
}

/* Adds delta users to namespace ns; the published set changes when a count leaves or hits 0. */
static int ns_use(struct dns_zone *z, const char *ns, int delta)
{
	char key[256];
	size_t *c;

	if (strlen(ns) >= sizeof(key))
		return 0; /* not a label: never asked for */
	lc_copy(key, ns);
	c = omap_get(&z->nscnt, key);
	if (!c) {
		if (delta < 0)
			return 0;
		c = calloc(1, sizeof(*c));
		if (!c || omap_put(&z->nscnt, key, c)) {
			free(c);
			return -ENOMEM;
		}
	}
	if (delta > 0)
		(*c)++;
	else
		(*c)--;
	if (!*c) {
		omap_del(&z->nscnt, key);
		z->d_ns = true;
	} else if (*c == 1 && delta > 0) {
		z->d_ns = true;
	}
	return 0;
}

static struct wgrp *grp_get(struct dns_zone *z, const char *gkey)
{
	struct wgrp *g = omap_get(&z->grps, gkey);

	if (g)
		return g;
	g = calloc(1, sizeof(*g));
	if (!g || !(g->key = strdup(gkey)) || omap_put(&z->grps, gkey, g)) {
		if (g)
			free(g->key);
		free(g);
		return NULL;
	}
	return g;
}

static int grp_dirty(struct dns_zone *z, struct wgrp *g)
{
	struct wgrp **p;

	if (g->dirty)
		return 0;
	p = vec_push(&z->dirty, sizeof(*p));
	if (!p)
		return -ENOMEM;
	*p = g;
	g->dirty = true;
	return 0;
}

static bool copy_ports(struct arena *ar, struct snap_port **out, size_t *n_out, const void *ports,
		       size_t n, size_t stride, size_t off_name, size_t off_proto, size_t off_port)
{
	struct snap_port *p = arena_alloc(ar, (n + 1) * sizeof(*p));

	*n_out = 0;
	*out = p;
	if (!p)
		return false;
	for (size_t i = 0; i < n; i++) {
		const char *b = (const char *)ports + i * stride;
		const char *name = *(char *const *)(b + off_name);
		const char *proto = *(char *const *)(b + off_proto);
		int32_t port = *(const int32_t *)(b + off_port);

		if (port <= 0 || port > 65535)
			continue;
		p[*n_out].name = arena_strdup_lc(ar, name ? name : "");
		p[*n_out].proto = arena_strdup_lc(ar, proto ? proto : "tcp");
		if (!p[*n_out].name || !p[*n_out].proto)
			return false;
		p[*n_out].port = (uint16_t)port;
		(*n_out)++;
	}
	return true;
}

static struct wsvc *wsvc_make(const struct k8s_service *k)
{
	const struct k8s_service_spec *sp = &k->spec;
	struct arena ar = {0};
	struct wsvc *v = arena_alloc(&ar, sizeof(*v));

	if (!v || !(v->name = arena_strdup_lc(&ar, k->meta.name)) ||
	    !(v->ns = arena_strdup_lc(&ar, k->meta.namespace ? k->meta.namespace : "")))
		goto fail;
	v->pnra = sp->publish_not_ready_addresses;
	if (sp->type && !strcmp(sp->type, "ExternalName")) {
		struct addr dummy;

		v->kind = SVC_EXTERNAL;
		/* An IP literal or an empty name is not served (CoreDNS). */
		if (sp->external_name && *sp->external_name &&
		    !addr_parse(sp->external_name, &dummy)) {
			uint8_t wire[DNS_MAX_NAME];
			char *t = arena_strdup_lc(&ar, sp->external_name);

			if (!t)
				goto fail;
			if (t[strlen(t) - 1] == '.')
				t[strlen(t) - 1] = 0;
			if (dns_name_to_wire(t, wire, sizeof(wire)) > 1)
				v->external = t;
		}
	} else if (sp->cluster_ip && !strcmp(sp->cluster_ip, "None")) {
		v->kind = SVC_HEADLESS;
	} else {
		size_t nips = sp->cluster_ips.n ? sp->cluster_ips.n : (sp->cluster_ip ? 1 : 0);

		v->kind = SVC_CLUSTERIP;
		v->ips = arena_alloc(&ar, (nips + 1) * sizeof(*v->ips));
		if (!v->ips)
			goto fail;
		for (size_t i = 0; i < nips; i++) {
			const char *ip = sp->cluster_ips.n ? sp->cluster_ips.v[i] : sp->cluster_ip;

			if (addr_parse(ip, &v->ips[v->n_ips]))
				v->n_ips++;
		}
	}
	if (v->kind != SVC_EXTERNAL &&
	    !copy_ports(&ar, &v->ports, &v->n_ports, sp->ports, sp->n_ports, sizeof(sp->ports[0]),
			offsetof(struct k8s_service_port, name),
			offsetof(struct k8s_service_port, protocol),
			offsetof(struct k8s_service_port, port)))
		goto fail;
	v->ar = ar;
	return v;
fail:
	arena_free(&ar);
	return NULL;
}

/* Endpoint name: a valid hostname, else the dashed IP (CoreDNS endpointHostname). */
static const char *ep_name(struct arena *ar, const char *hostname, const struct addr *a)
{
	char buf[INET6_ADDRSTRLEN + 2];

	if (hostname && *hostname && strlen(hostname) <= DNS_MAX_LABEL && !strchr(hostname, '.'))
		return arena_strdup_lc(ar, hostname);
	inet_ntop(a->fam == 4 ? AF_INET : AF_INET6, a->b, buf, sizeof(buf));
	for (char *p = buf; *p; p++)
		if (*p == '.' || *p == ':')
			*p = '-';
	if (buf[strlen(buf) - 1] == '-')
		strcat(buf, "0");
	return arena_strdup_lc(ar, buf);
}

static struct wslice *wslice_make(const struct k8s_endpointslice *es)
{
	const char *svc = k8s_endpointslice_service_name(es);
	const char *ns = es->meta.namespace ? es->meta.namespace : "";
	struct arena ar = {0};
	struct wslice *w = arena_alloc(&ar, sizeof(*w));
	size_t cap = 0;

	if (!w)
		goto fail;
	if (!svc || (es->address_type && strcmp(es->address_type, "IPv4") != 0 &&
		     strcmp(es->address_type, "IPv6") != 0)) {
		w->ar = ar;
		return w; /* kept so a later update or delete finds it; feeds nothing */
	}
	char *k = arena_alloc(&ar, strlen(ns) + strlen(svc) + 2);

	if (!k)
		goto fail;
	lc_copy(k, ns);
	strcat(k, "/");
	lc_copy(k + strlen(k), svc);
	w->gkey = k;
	if (!copy_ports(&ar, &w->ports, &w->n_ports, es->ports, es->n_ports, sizeof(es->ports[0]),
			offsetof(struct k8s_slice_port, name),
			offsetof(struct k8s_slice_port, protocol),
			offsetof(struct k8s_slice_port, port)))
		goto fail;
	for (size_t i = 0; i < es->n_endpoints; i++)
		cap += es->endpoints[i].addresses.n;
	w->eps = arena_alloc(&ar, (cap + 1) * sizeof(*w->eps));
	if (!w->eps)
		goto fail;
	for (size_t i = 0; i < es->n_endpoints; i++) {
		const struct k8s_slice_endpoint *ep = &es->endpoints[i];

		for (size_t j = 0; j < ep->addresses.n; j++) {
			struct wep *x = &w->eps[w->n_eps];

			if (!addr_parse(ep->addresses.v[j], &x->a))
				continue;
			x->name = ep_name(&ar, ep->hostname, &x->a);
			if (!x->name)
				goto fail;
			x->ready = ep->conditions.ready != K8S_TRI_FALSE;
			w->n_eps++;
		}
	}
	w->ar = ar;
	return w;
fail:
	arena_free(&ar);
	return NULL;
}

static struct wpod *wpod_make(const struct k8s_pod *p)
{
	size_t n = p->status.n_pod_ips ? p->status.n_pod_ips : (p->status.pod_ip ? 1 : 0);
	struct arena ar = {0};
	struct wpod *w = arena_alloc(&ar, sizeof(*w));

	if (!w || !(w->ns = arena_strdup_lc(&ar, p->meta.namespace ? p->meta.namespace : "")) ||
	    !(w->a = arena_alloc(&ar, (n + 1) * sizeof(*w->a))))
		goto fail;
	for (size_t i = 0; i < n; i++)
		if (addr_parse(p->status.n_pod_ips ? p->status.pod_ips[i].ip : p->status.pod_ip,
			       &w->a[w->n]))
			w->n++;
	w->ar = ar;
	return w;
fail:
	arena_free(&ar);
	return NULL;
}

static void pod_index(struct dns_zone *z, const struct wpod *w, bool add, int *err)
{
	for (size_t i = 0; i < w->n; i++) {
		size_t b = hash_addr(&w->a[i]) & (NSH - 1);
		struct vec *x = &z->w_pod[b];
		struct pod_ent *e = x->v;

		z->d_pod[b] = 1;
		if (add) {
			struct pod_ent *ne = vec_push(x, sizeof(*ne));

			if (!ne) {
				*err = -ENOMEM;
				return;
			}
			ne->a = w->a[i];
			ne->ns = w->ns;
			ne->owner = w;
			z->n_pod++;
			continue;
		}
		for (size_t j = 0; j < x->n;)
			if (e[j].owner == w && addr_eq(&e[j].a, &w->a[i])) {
				memmove(&e[j], &e[j + 1], (x->n - j - 1) * sizeof(*e));
				x->n--;
				z->n_pod--;
				break;
			} else {
				j++;
			}
	}
}

static void slice_detach(struct dns_zone *z, struct wslice *w, int *err)
{
	struct wgrp *g = w ? w->grp : NULL;

	if (!g)
		return;
	for (size_t i = 0; i < g->n_sl; i++)
		if (g->sl[i] == w) {
			memmove(&g->sl[i], &g->sl[i + 1], (g->n_sl - i - 1) * sizeof(*g->sl));
			g->n_sl--;
			break;
		}
	w->grp = NULL;
	if (grp_dirty(z, g))
		*err = -ENOMEM;
}

static int slice_attach(struct dns_zone *z, struct wslice *w)
{
	struct wgrp *g;

	if (!w->gkey)
		return 0;
	g = grp_get(z, w->gkey);
	if (!g)
		return -ENOMEM;
	if (g->n_sl == g->cap_sl) {
		size_t nc = g->cap_sl ? g->cap_sl * 2 : 2;
		struct wslice **nv = realloc(g->sl, nc * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		g->sl = nv;
		g->cap_sl = nc;
	}
	g->sl[g->n_sl++] = w;
	w->grp = g;
	return grp_dirty(z, g);
}

static int zone_apply(struct dns_zone *z, enum k8s_kind kind, const char *key, const void *o)
{
	int err = 0;

	switch (kind) {
	case K8S_KIND_SERVICE: {
		struct wsvc *old = omap_get(&z->svcs, key), *w = NULL;
		char gkey[600];
		struct wgrp *g;

		if (o && !(w = wsvc_make(o)))
			return -ENOMEM;
		if (!old && !w)
			return 0;
		{
			/* One of them is non-NULL: checked just above. */
			const struct wsvc *id = w ? w : old;
			snprintf(gkey, sizeof(gkey), "%s/%s", id->ns, id->name);
		}
		g = grp_get(z, gkey);
		if (!g || (w && !old && ns_use(z, w->ns, 1))) {
			wsvc_free(w);
			return -ENOMEM;
		}
		if (old && !w)
			ns_use(z, old->ns, -1);
		g->svc = w;
		if (w) {
			err = omap_put(&z->svcs, key, w);
			if (err) {
				g->svc = old;
				wsvc_free(w);
				return err;
			}
		} else {
			omap_del(&z->svcs, key);
		}
		return grp_dirty(z, g);
	}
	case K8S_KIND_ENDPOINTSLICE: {
		struct wslice *old = omap_get(&z->slices, key), *w = NULL;

		if (o && !(w = wslice_make(o)))
			return -ENOMEM;
		slice_detach(z, old, &err);
		if (w) {
			err = err ? err : omap_put(&z->slices, key, w);
			if (err) {
				wslice_free(w);
				omap_del(&z->slices, key);
				return err;
			}
			return slice_attach(z, w);
		}
		omap_del(&z->slices, key);
		return err;
	}
	case K8S_KIND_POD: {
		struct wpod *old = omap_get(&z->podmap, key), *w = NULL;

		if (z->pods != DNS_PODS_VERIFIED)
			return 0; /* pod names are not checked against Pods: keep nothing */
		if (o && !(w = wpod_make(o)))
			return -ENOMEM;
		if (old)
			pod_index(z, old, false, &err);
		if (w) {
			err = err ? err : omap_put(&z->podmap, key, w);
			if (err) {
				wpod_free(w);
				omap_del(&z->podmap, key);
				return err;
			}
			pod_index(z, w, true, &err);
			return err;
		}
		omap_del(&z->podmap, key);
		return err;
	}
	case K8S_KIND_NAMESPACE: {
		const struct k8s_namespace *n = o;
		char *old = omap_get(&z->nsmap, key), *w;

		if (n && n->meta.name) {
			if (old)
				return 0;
			w = strdup(n->meta.name);
			if (!w || ns_use(z, w, 1) || omap_put(&z->nsmap, key, w)) {
				free(w);
				return -ENOMEM;
			}
			return 0;
		}
		if (old) {
			ns_use(z, old, -1);
			omap_del(&z->nsmap, key);
		}
		return 0;
	}
	default:
		return -EINVAL;
	}
}

static bool kind_ok(enum k8s_kind kind)
{
	return kind == K8S_KIND_SERVICE || kind == K8S_KIND_ENDPOINTSLICE || kind == K8S_KIND_POD ||
	       kind == K8S_KIND_NAMESPACE;
}

int dns_zone_upsert(struct dns_zone *z, enum k8s_kind kind, struct json_object *obj)
{
	char key[512], err[256] = "";
	void *o = NULL;
	int ret;

	if (!z || !obj || !kind_ok(kind))
		return -EINVAL;
	ret = obj_key(kind, obj, key, sizeof(key));
	if (ret) {
		pr_warn(SUB, "%s: object without metadata.name ignored", k8s_kind_name(kind));
		return ret;
	}
	ret = k8s_obj_decode(kind, obj, &o, err, sizeof(err));
	if (ret) {
		pr_warn(SUB, "%s '%s': decode failed: %s", k8s_kind_name(kind), key,
			*err ? err : sl_strerror(ret));
		return ret;
	}
	if (kind == K8S_KIND_SERVICE && !((struct k8s_service *)o)->meta.name)
		ret = 0; /* nothing to serve */
	else
		ret = zone_apply(z, kind, key, o);
	k8s_obj_free(kind, o);
	return ret;
}

int dns_zone_delete(struct dns_zone *z, enum k8s_kind kind, struct json_object *obj)
{
	char key[512];

	if (!z || !obj || !kind_ok(kind))
		return -EINVAL;
	if (obj_key(kind, obj, key, sizeof(key)))
		return -EINVAL;
	return zone_apply(z, kind, key, NULL);
}

void dns_zone_set_synced(struct dns_zone *z, bool synced)
{
	if (z)
		atomic_store(&z->synced, synced);
}

bool dns_zone_synced(const struct dns_zone *z)
{
	return z && atomic_load(&((struct dns_zone *)z)->synced);
}

/* --- commit: re-resolve dirty groups, rebuild touched shards, publish ------------------------ */

static int ep_addr_cmp(const void *pa, const void *pb)
{
	const struct snap_ep *x = pa, *y = pb;

	if (x->a.fam != y->a.fam)
		return x->a.fam - y->a.fam;
	return memcmp(x->a.b, y->a.b, 16);
}

static int ep_name_cmp(const void *pa, const void *pb)
{
	const struct snap_ep *const *x = pa, *const *y = pb;
	int d = strcmp((*x)->name, (*y)->name);

	return d ? d : (*x < *y ? -1 : *x > *y);
}

/* Flags every endpoint whose name an earlier one (in address order) already has. */
static bool mark_dup_names(struct snap_svc *v)
{
	struct snap_ep **by = malloc(v->n_eps * sizeof(struct snap_ep *));

	if (!by)
		return false;
	for (size_t i = 0; i < v->n_eps; i++)
		by[i] = &v->eps[i];
	qsort(by, v->n_eps, sizeof(struct snap_ep *), ep_name_cmp);
	for (size_t i = 1; i < v->n_eps; i++)
		if (!strcmp(by[i]->name, by[i - 1]->name))
			by[i]->dup_name = true;
	free(by);
	return true;
}

static char *arena_strdup(struct arena *a, const char *s)
{
	char *d = arena_alloc(a, strlen(s) + 1);

	return d ? strcpy(d, s) : NULL;
}

/*
 * The Service of g with its ready endpoints (nil ready counts as ready;
 * publishNotReadyAddresses), sorted by address and deduplicated (an address
 * in several slices). Cost: the group's own size. NULL with *oom false when
 * the group has no Service.
 */
static struct snap_svc *grp_resolve(const struct wgrp *g, bool *oom)
{
	const struct wsvc *k = g->svc;
	struct arena ar = {0};
	struct snap_svc *v;
	size_t cap = 0, n = 0;

	*oom = false;
	if (!k)
		return NULL;
	v = arena_alloc(&ar, sizeof(*v));
	if (!v || !(v->name = arena_strdup(&ar, k->name)) || !(v->ns = arena_strdup(&ar, k->ns)))
		goto fail;
	v->h = hash_svc(v->name, strlen(v->name), v->ns, strlen(v->ns));
	v->kind = k->kind;
	if (k->external && !(v->external = arena_strdup(&ar, k->external)))
		goto fail;
	v->ips = arena_alloc(&ar, (k->n_ips + 1) * sizeof(*v->ips));
	v->ports = arena_alloc(&ar, (k->n_ports + 1) * sizeof(*v->ports));
	if (!v->ips || !v->ports)
		goto fail;
	if (k->n_ips)
		memcpy(v->ips, k->ips, k->n_ips * sizeof(*v->ips));
	v->n_ips = k->n_ips;
	for (size_t i = 0; i < k->n_ports; i++) {
		v->ports[i].port = k->ports[i].port;
		if (!(v->ports[i].name = arena_strdup(&ar, k->ports[i].name)) ||
		    !(v->ports[i].proto = arena_strdup(&ar, k->ports[i].proto)))
			goto fail;
	}
	v->n_ports = k->n_ports;
	if (k->kind != SVC_EXTERNAL) {
		for (size_t i = 0; i < g->n_sl; i++)
			cap += g->sl[i]->n_eps;
	}
	if (cap) {
		v->eps = arena_alloc(&ar, cap * sizeof(*v->eps));
		if (!v->eps)
			goto fail;
	}
	for (size_t i = 0; cap && i < g->n_sl; i++) {
		const struct wslice *w = g->sl[i];
		struct snap_port *ports = NULL;

		for (size_t j = 0; j < w->n_eps; j++) {
			const struct wep *e = &w->eps[j];
			struct snap_ep *x = &v->eps[n];

			if (!e->ready && !k->pnra)
				continue;
			if (!ports) {
				ports = arena_alloc(&ar, (w->n_ports + 1) * sizeof(*ports));
				if (!ports)
					goto fail;
				for (size_t p = 0; p < w->n_ports; p++) {
					ports[p].port = w->ports[p].port;
					if (!(ports[p].name =
						      arena_strdup(&ar, w->ports[p].name)) ||
					    !(ports[p].proto =
						      arena_strdup(&ar, w->ports[p].proto)))
						goto fail;
				}
			}
			x->a = e->a;
			if (!(x->name = arena_strdup(&ar, e->name)))
				goto fail;
			x->ports = ports;
			x->n_ports = w->n_ports;
			n++;
		}
	}
	if (n)
		qsort(v->eps, n, sizeof(*v->eps), ep_addr_cmp);
	for (size_t i = 0; i < n; i++)
		if (!v->n_eps || !addr_eq(&v->eps[v->n_eps - 1].a, &v->eps[i].a))
			v->eps[v->n_eps++] = v->eps[i];
	if (v->n_eps > 1 && !mark_dup_names(v))
		goto fail;
	v->refs = 1;
	v->ar = ar;
	return v;
fail:
	arena_free(&ar);
	*oom = true;
	return NULL;
}

/* Takes v out of (add false) or into (add true) the writer's service and reverse lists. */
static int grp_index(struct dns_zone *z, struct snap_svc *v, bool add)
{
	size_t b = v->h & (NSH - 1);
	struct vec *x = &z->w_svc[b];
	struct snap_svc **sv = x->v;

	z->d_svc[b] = 1;
	if (add) {
		struct snap_svc **p = vec_push(x, sizeof(*p));

		if (!p)
			return -ENOMEM;
		*p = v;
		z->n_svc++;
		z->n_eps += v->n_eps;
		z->res_bytes += v->ar.total;
	} else {
		for (size_t i = 0; i < x->n; i++)
			if (sv[i] == v) {
				sv[i] = sv[--x->n];
				break;
			}
		z->n_svc--;
		z->n_eps -= v->n_eps;
		z->res_bytes -= v->ar.total;
	}
	if (z->no_reverse)
		return 0;
	for (size_t i = 0; i < v->n_ips + v->n_eps; i++) {
		const struct addr *a = i < v->n_ips ? &v->ips[i] : &v->eps[i - v->n_ips].a;
		size_t rb = hash_addr(a) & (NSH - 1);
		struct vec *r = &z->w_rev[rb];
		struct rev_ent *e = r->v;

		z->d_rev[rb] = 1;
		if (add) {
			struct rev_ent *ne = vec_push(r, sizeof(*ne));

			if (!ne)
				return -ENOMEM;
			ne->a = *a;
			ne->svc = v;
			ne->ep = i < v->n_ips ? NULL : v->eps[i - v->n_ips].name;
			continue;
		}
		/* Order-preserving removal: ClusterIP entries keep their first-come order. */
		size_t o = 0;

		for (size_t j = 0; j < r->n; j++)
			if (e[j].svc != v)
				e[o++] = e[j];
		r->n = o;
	}
	return 0;
}

static int svc_shard_build(struct dns_zone *z, size_t b)
{
	const struct vec *x = &z->w_svc[b];
	struct svc_shard *sh = NULL;

	if (x->n) {
		size_t bytes = sizeof(*sh) + x->n * sizeof(sh->v[0]);

		sh = malloc(bytes);
		if (!sh)
			return -ENOMEM;
		sh->refs = 1;
		sh->n = x->n;
		sh->bytes = bytes;
		memcpy(sh->v, x->v, x->n * sizeof(sh->v[0]));
		for (size_t i = 0; i < sh->n; i++)
			sh->v[i]->refs++;
		z->shard_bytes += bytes;
	}
	if (z->t_svc[b])
		z->shard_bytes -= z->t_svc[b]->bytes;
	svc_shard_unref(z->t_svc[b]);
	z->t_svc[b] = sh;
	z->d_svc[b] = 0;
	return 0;
}

static int rev_shard_build(struct dns_zone *z, size_t b)
{
	const struct vec *x = &z->w_rev[b];
	struct rev_shard *sh = NULL;

	if (x->n) {
		size_t bytes = sizeof(*sh) + x->n * sizeof(sh->e[0]);

		sh = malloc(bytes);
		if (!sh)
			return -ENOMEM;
		sh->refs = 1;
		sh->n = x->n;
		sh->bytes = bytes;
		memcpy(sh->e, x->v, x->n * sizeof(sh->e[0]));
		for (size_t i = 0; i < sh->n; i++)
			sh->e[i].svc->refs++;
		z->shard_bytes += bytes;
	}
	if (z->t_rev[b])
		z->shard_bytes -= z->t_rev[b]->bytes;
	rev_shard_unref(z->t_rev[b]);
	z->t_rev[b] = sh;
	z->d_rev[b] = 0;
	return 0;
}

static int pod_shard_build(struct dns_zone *z, size_t b)
{
	const struct vec *x = &z->w_pod[b];
	const struct pod_ent *src = x->v;
	struct pod_shard *sh = NULL;

	if (x->n) {
		size_t bytes = sizeof(*sh) + x->n * sizeof(sh->e[0]);
		char *p;

		for (size_t i = 0; i < x->n; i++)
			bytes += strlen(src[i].ns) + 1;
		sh = malloc(bytes);
		if (!sh)
			return -ENOMEM;
		sh->refs = 1;
		sh->n = x->n;
		sh->bytes = bytes;
		p = (char *)&sh->e[x->n];
		for (size_t i = 0; i < x->n; i++) {
			sh->e[i].a = src[i].a;
			sh->e[i].ns = strcpy(p, src[i].ns);
			sh->e[i].owner = NULL;
			p += strlen(p) + 1;
		}
		z->shard_bytes += bytes;
	}
	if (z->t_pod[b])
		z->shard_bytes -= z->t_pod[b]->bytes;
	pod_shard_unref(z->t_pod[b]);
	z->t_pod[b] = sh;
	z->d_pod[b] = 0;
	return 0;
}

static int ns_tab_build(struct dns_zone *z)
{
	size_t cap = pow2_at_least(z->nscnt.n),
	       bytes = sizeof(struct ns_tab) + cap * sizeof(char *);
	struct ns_tab *t;
	char *p;

	OMAP_FOR_EACH(&z->nscnt, e)
	bytes += strlen(e->key) + 1;
	t = calloc(1, bytes);
	if (!t)
		return -ENOMEM;
	t->refs = 1;
	t->cap = cap;
	t->bytes = bytes;
	p = (char *)&t->slot[cap];
	OMAP_FOR_EACH(&z->nscnt, e)
	{
		size_t n = strlen(e->key), i = hash_bytes(HASH_SEED, e->key, n) & (cap - 1);

		while (t->slot[i])
			i = (i + 1) & (cap - 1);
		t->slot[i] = strcpy(p, e->key);
		p += n + 1;
		t->n++;
	}
	if (z->t_ns)
		z->shard_bytes -= z->t_ns->bytes;
	ns_tab_unref(z->t_ns);
	z->t_ns = t;
	z->n_ns = t->n;
	z->shard_bytes += bytes;
	z->d_ns = false;
	return 0;
}

/* Brings the writer's shard tables up to date; on -ENOMEM the dirty marks stay for a retry. */
static int zone_update(struct dns_zone *z)
{
	struct wgrp **dg = z->dirty.v;
	int err = 0;

	for (size_t i = 0; i < z->dirty.n; i++) {
		struct wgrp *g = dg[i];
		bool oom;
		struct snap_svc *nv = grp_resolve(g, &oom);

		if (oom)
			return -ENOMEM;
		if (g->res)
			grp_index(z, g->res, false);
		if (nv && grp_index(z, nv, true)) {
			/* Partly indexed: take it out again and keep the group dirty. */
			grp_index(z, nv, false);
			svc_unref(nv);
			svc_unref(g->res);
			g->res = NULL;
			memmove(dg, dg + i, (z->dirty.n - i) * sizeof(*dg));
			z->dirty.n -= i;
			return -ENOMEM;
		}
		svc_unref(g->res);
		g->res = nv;
		g->dirty = false;
	}
	for (size_t i = 0; i < z->dirty.n; i++) {
		struct wgrp *g = dg[i];

		if (!g->svc && !g->n_sl)
			omap_del(&z->grps, g->key);
	}
	z->dirty.n = 0;
	for (size_t b = 0; b < NSH && !err; b++) {
		if (z->d_svc[b])
			err = svc_shard_build(z, b);
		if (!err && z->d_rev[b])
			err = rev_shard_build(z, b);
		if (!err && z->d_pod[b])
			err = pod_shard_build(z, b);
	}
	if (!err && (z->d_ns || !z->t_ns))
		err = ns_tab_build(z);
	return err;
}

int dns_zone_commit(struct dns_zone *z)
{
	struct snap *s, *old, **pp;
	uint32_t now = (uint32_t)time(NULL);
	int err;

	if (!z)
		return -EINVAL;
	err = zone_update(z);
	s = err ? NULL : calloc(1, sizeof(*s) + 3 * NSH * sizeof(void *));
	if (!s) {
		pr_err(SUB, "zone '%s': snapshot build failed: %s", z->zone, sl_strerror(-ENOMEM));
		return -ENOMEM;
	}
	/* Share every shard with the writer's tables: NSH pointer copies, no rebuilding. */
	s->svc = (struct svc_shard **)(s + 1);
	s->rev = (struct rev_shard **)(s->svc + NSH);
	s->pod = (struct pod_shard **)(s->rev + NSH);
	for (size_t b = 0; b < NSH; b++) {
		if ((s->svc[b] = z->t_svc[b]))
			s->svc[b]->refs++;
		if ((s->rev[b] = z->t_rev[b]))
			s->rev[b]->refs++;
		if ((s->pod[b] = z->t_pod[b]))
			s->pod[b]->refs++;
	}
	s->ns = z->t_ns;
	s->ns->refs++;
	s->n_svc = z->n_svc;
	s->n_eps = z->n_eps;
	s->n_pod = z->n_pod;
	s->n_ns = z->n_ns;
	s->bytes = sizeof(*s) + 3 * NSH * sizeof(void *) + z->shard_bytes + z->res_bytes;
	z->serial = now > z->serial ? now : z->serial + 1;
	s->serial = z->serial;
	old = atomic_exchange(&z->cur, s);
	if (old) {
		old->retired_next = z->retired;
		z->retired = old;
	}
	for (pp = &z->retired; *pp;) {
		struct snap *r = *pp;

		if (hz_in_use(r)) {
			pp = &r->retired_next;
			continue;
		}
		*pp = r->retired_next;
		snap_free(r);
	}
	return 0;
}

void dns_zone_stats(struct dns_zone *z, struct dns_zone_stats *out)
{
	int slot;
	struct snap *s;

	if (!out)
		return;
	memset(out, 0, sizeof(*out));
	if (!z)
		return;
	slot = hz_slot_get();
	if (slot == HZ_SLOTS)
		pthread_mutex_lock(&hz_overflow_lock);
	s = atomic_load(&z->cur);
	for (;;) {
		atomic_store(&hz_slots[slot].ptr, s);
		struct snap *s2 = atomic_load(&z->cur);

		if (s2 == s)
			break;
		s = s2;
	}
	if (s) {
		out->serial = s->serial;
		out->services = s->n_svc;
		out->endpoints = s->n_eps;
		out->pods = s->n_pod;
		out->namespaces = s->n_ns;
		out->snapshot_bytes = s->bytes;
	}
	atomic_store(&hz_slots[slot].ptr, NULL);
	if (slot == HZ_SLOTS)
		pthread_mutex_unlock(&hz_overflow_lock);
}

/* --- answering -------------------------------------------------------------------------------- */

struct lab {
	const char *p;
	size_t n;
};

#define MAX_LABELS 128

struct actx {
	struct dns_zone *z;
	const struct snap *s;
	const struct dns_query *q;
	struct dns_writer *w;
	struct dns_zone_result *res;
	const char *zp;		  /* the zone as the query spelled it */
	const char *soa_owner;	  /* owner of the negative-answer SOA */
	bool extra_full;	  /* an additional record did not fit: add no more */
	struct lab r[MAX_LABELS]; /* labels left of the zone, left to right */
	unsigned int L;
};

/* Splits s[0..n) at unescaped dots; false on too many labels. */
static bool split_labels(const char *s, size_t n, struct lab *out, unsigned int *count)
{
	size_t start = 0, i = 0;
	unsigned int k = 0;

	*count = 0;
	if (!n)
		return true;
	while (i <= n) {
		if (i == n || s[i] == '.') {
			if (k == MAX_LABELS)
				return false;
			out[k].p = s + start;
			out[k].n = i - start;
			k++;
			start = ++i;
			continue;
		}
		if (s[i] == '\\')
			i += (i + 1 < n && s[i + 1] >= '0' && s[i + 1] <= '9') ? 4 : 2;
		else
			i++;
		if (i > n)
			i = n;
	}
	*count = k;
	return true;
}

static bool lab_is(const struct lab *l, const char *s)
{
	return lab_eq(l->p, l->n, s);
}

static void add_rr(struct actx *c, int sect, const struct dns_rr *rr)
{
	if (dns_writer_rr(c->w, sect, rr) == -EINVAL)
		pr_debug(SUB, "'%s': record for '%s' not encodable, skipped", c->q->qname,
			 rr->name);
}

static void add_addr(struct actx *c, int sect, const char *owner, const struct addr *a)
{
	struct dns_rr rr = {.name = owner, .class = DNS_CLASS_IN, .ttl = c->z->ttl};

	if (a->fam == 4) {
		rr.type = DNS_T_A;
		memcpy(rr.rd.a, a->b, 4);
	} else {
		rr.type = DNS_T_AAAA;
		memcpy(rr.rd.aaaa, a->b, 16);
	}
	add_rr(c, sect, &rr);
}

/* Additional-section records are optional: one that does not fit is dropped
 * without TC (RFC 2181 §9), and so is everything after it. */
static void add_extra_addr(struct actx *c, const char *owner, const struct addr *a)
{
	if (c->w->truncated || c->extra_full)
		return;
	add_addr(c, 3, owner, a);
	if (c->w->truncated) {
		c->w->truncated = false;
		c->extra_full = true;
	}
}

static void add_soa(struct actx *c, int sect, uint32_t ttl)
{
	char mname[DNS_MAX_PNAME + 16], rname[DNS_MAX_PNAME + 16];
	struct dns_rr rr = {
		.name = c->soa_owner, .type = DNS_T_SOA, .class = DNS_CLASS_IN, .ttl = ttl};

	snprintf(mname, sizeof(mname), "ns.dns.%s", c->zp);
	snprintf(rname, sizeof(rname), "hostmaster.%s", c->zp);
	rr.rd.soa.mname = mname;
	rr.rd.soa.rname = rname;
	rr.rd.soa.serial = c->s->serial;
	rr.rd.soa.refresh = 7200;
	rr.rd.soa.retry = 1800;
	rr.rd.soa.expire = 86400;
	rr.rd.soa.minimum = c->z->ttl;
	add_rr(c, sect, &rr);
}

static int finish(struct actx *c, int rcode)
{
	if (rcode == DNS_R_NXDOMAIN && !atomic_load(&c->z->synced))
		rcode = DNS_R_SERVFAIL;
	dns_writer_set_aa(c->w, rcode != DNS_R_REFUSED);
	dns_writer_set_rcode(c->w, rcode);
	if (rcode != DNS_R_REFUSED && !c->w->truncated &&
	    (rcode != DNS_R_NOERROR || c->w->count[1] == 0))
		add_soa(c, 2, c->z->ttl < SOA_TTL_CAP ? c->z->ttl : SOA_TTL_CAP);
	c->res->rcode = rcode;
	return 0;
}

static int nodata(struct actx *c)
{
	return finish(c, DNS_R_NOERROR);
}

static int nxdomain(struct actx *c)
{
	return finish(c, DNS_R_NXDOMAIN);
}

/* RFC 8482: an existing name answers ANY with one synthesized HINFO. */
static int any_answer(struct actx *c)
{
	struct dns_rr rr = {
		.name = c->q->qname, .type = DNS_T_HINFO, .class = DNS_CLASS_IN, .ttl = c->z->ttl};

	rr.rd.hinfo.cpu = "RFC8482";
	rr.rd.hinfo.os = "";
	add_rr(c, 1, &rr);
	return finish(c, DNS_R_NOERROR);
}

static int want_fam(const struct dns_query *q)
{
	return q->qtype == DNS_T_A ? 4 : q->qtype == DNS_T_AAAA ? 6 : 0;
}

/* A/AAAA of a ClusterIP or headless Service, owner given. Returns RRs written. */
static size_t svc_addrs(struct actx *c, const struct snap_svc *v, int fam, const char *owner,
			int sect)
{
	size_t n = 0;

	if (v->kind == SVC_CLUSTERIP) {
		for (size_t i = 0; i < v->n_ips; i++)
			if (!fam || v->ips[i].fam == fam) {
				if (sect == 3)
					add_extra_addr(c, owner, &v->ips[i]);
				else
					add_addr(c, sect, owner, &v->ips[i]);
				n++;
			}
	} else if (v->kind == SVC_HEADLESS) {
		for (size_t i = 0; i < v->n_eps; i++)
			if (!fam || v->eps[i].a.fam == fam) {
				if (sect == 3)
					add_extra_addr(c, owner, &v->eps[i].a);
				else
					add_addr(c, sect, owner, &v->eps[i].a);
				n++;
			}
	}
	return n;
}

static bool port_match(const struct snap_port *p, const struct lab *port, const struct lab *proto)
{
	if (!port)
		return true; /* bare-name SRV: every port */
	return p->name[0] && lab_eq(port->p + 1, port->n - 1, p->name) &&
	       lab_eq(proto->p + 1, proto->n - 1, p->proto);
}

/*
 * SRV for a Service (port/proto NULL: every port). emit=false only counts.
 * ClusterIP: one SRV per matching Service port, target the Service name.
 * Headless: one per (endpoint name, matching slice port), target
 * <ep>.<svc>.<ns>.svc.<zone>; duplicate (target, port) pairs collapse.
 */
static size_t svc_srv(struct actx *c, const struct snap_svc *v, const struct lab *port,
		      const struct lab *proto, bool emit, uint16_t weight, int sect)
{
	char target[DNS_MAX_PNAME + 256];
	struct dns_rr rr = {
		.name = c->q->qname, .type = DNS_T_SRV, .class = DNS_CLASS_IN, .ttl = c->z->ttl};
	size_t n = 0;

	rr.rd.srv.prio = 0;
	rr.rd.srv.weight = weight;
	rr.rd.srv.target = target;
	if (v->kind == SVC_CLUSTERIP) {
		snprintf(target, sizeof(target), "%s.%s.svc.%s", v->name, v->ns, c->zp);
		for (size_t i = 0; i < v->n_ports; i++) {
			if (!port_match(&v->ports[i], port, proto))
				continue;
			n++;
			if (emit && sect == 1) {
				rr.rd.srv.port = v->ports[i].port;
				add_rr(c, 1, &rr);
			}
		}
		if (emit && sect == 3 && n)
			svc_addrs(c, v, 0, target, 3);
		return n;
	}
	for (size_t i = 0; i < v->n_eps; i++) {
		const struct snap_ep *ep = &v->eps[i];
		bool any = false;

		snprintf(target, sizeof(target), "%s.%s.%s.svc.%s", ep->name, v->name, v->ns,
			 c->zp);
		for (size_t j = 0; j < ep->n_ports; j++) {
			if (!port_match(&ep->ports[j], port, proto))
				continue;
			any = true;
			if (ep->dup_name)
				continue;
			n++;
			if (emit && sect == 1) {
				rr.rd.srv.port = ep->ports[j].port;
				add_rr(c, 1, &rr);
			}
		}
		if (emit && sect == 3 && any)
			add_extra_addr(c, target, &ep->a);
	}
	return n;
}

static int answer_srv(struct actx *c, const struct snap_svc *v, const struct lab *port,
		      const struct lab *proto)
{
	size_t n = svc_srv(c, v, port, proto, false, 0, 1);
	uint16_t weight = (uint16_t)(n ? (100 / n ? 100 / n : 1) : 0);

	if (!n)
		return port ? nxdomain(c) : nodata(c);
	svc_srv(c, v, port, proto, true, weight, 1);
	svc_srv(c, v, port, proto, true, weight, 3);
	return finish(c, DNS_R_NOERROR);
}

/* Follows an in-zone CNAME target one step: A/AAAA of <svc>.<ns>.svc.<zone>. */
static void follow_in_zone(struct actx *c, const char *target)
{
	struct lab l[MAX_LABELS];
	unsigned int n;
	size_t tl = strlen(target);

	if (tl <= c->z->zone_len + 1 || !split_labels(target, tl - c->z->zone_len - 1, l, &n) ||
	    n != 3 || !lab_is(&l[2], "svc"))
		return;
	const struct snap_svc *v = snap_find_svc(c->s, l[0].p, l[0].n, l[1].p, l[1].n);

	if (v && v->kind != SVC_EXTERNAL)
		svc_addrs(c, v, want_fam(c->q), target, 1);
}

static int answer_service(struct actx *c, const struct snap_svc *v)
{
	int fam = want_fam(c->q);

	if (v->kind == SVC_EXTERNAL) {
		struct dns_rr rr = {.name = c->q->qname,
				    .type = DNS_T_CNAME,
				    .class = DNS_CLASS_IN,
				    .ttl = c->z->ttl};

		if (!v->external)
			return nxdomain(c);
		if (c->q->qtype == DNS_T_SRV)
			return nodata(c);
		rr.rd.target = v->external;
		add_rr(c, 1, &rr);
		if (fam && dns_name_in(v->external, c->z->zone)) {
			follow_in_zone(c, v->external);
		} else if (fam && !c->w->truncated) {
			c->res->cname = true;
			snprintf(c->res->cname_target, sizeof(c->res->cname_target), "%s",
				 v->external);
		}
		return finish(c, DNS_R_NOERROR);
	}
	if (v->kind == SVC_HEADLESS && !v->n_eps)
		return nxdomain(c); /* spec 2.4.1: no ready endpoint */
	if (c->q->qtype == DNS_T_ANY)
		return any_answer(c);
	if (fam) {
		svc_addrs(c, v, fam, c->q->qname, 1);
		return finish(c, DNS_R_NOERROR);
	}
	if (c->q->qtype == DNS_T_SRV)
		return answer_srv(c, v, NULL, NULL);
	return nodata(c);
}

static int answer_endpoint(struct actx *c, const struct snap_svc *v, const struct lab *ep)
{
	int fam = want_fam(c->q);
	size_t found = 0;

	if (v->kind == SVC_EXTERNAL)
		return nxdomain(c);
	for (size_t i = 0; i < v->n_eps; i++) {
		if (!lab_eq(ep->p, ep->n, v->eps[i].name))
			continue;
		found++;
		if (fam && v->eps[i].a.fam == fam)
			add_addr(c, 1, c->q->qname, &v->eps[i].a);
	}
	if (!found)
		return nxdomain(c);
	if (c->q->qtype == DNS_T_ANY)
		return any_answer(c);
	return finish(c, DNS_R_NOERROR);
}

static int answer_svc_tree(struct actx *c)
{
	struct lab *r = c->r;
	unsigned int L = c->L;
	const struct snap_svc *v;

	if (L == 1)
		return c->q->qtype == DNS_T_ANY ? any_answer(c) : nodata(c);
	if (!snap_has_ns(c->s, r[L - 2].p, r[L - 2].n))
		return nxdomain(c);
	if (L == 2)
		return c->q->qtype == DNS_T_ANY ? any_answer(c) : nodata(c);
	v = snap_find_svc(c->s, r[L - 3].p, r[L - 3].n, r[L - 2].p, r[L - 2].n);
	if (!v)
		return nxdomain(c);
	if (L == 3)
		return answer_service(c, v);
	if (L == 4)
		return answer_endpoint(c, v, &r[0]);
	if (L == 5) {
		if (v->kind == SVC_EXTERNAL || r[0].n < 2 || r[1].n < 2 || r[0].p[0] != '_' ||
		    r[1].p[0] != '_')
			return nxdomain(c);
		if (v->kind == SVC_HEADLESS && !v->n_eps)
			return nxdomain(c);
		if (c->q->qtype == DNS_T_SRV)
			return answer_srv(c, v, &r[0], &r[1]);
		if (!svc_srv(c, v, &r[0], &r[1], false, 0, 1))
			return nxdomain(c);
		return c->q->qtype == DNS_T_ANY ? any_answer(c) : nodata(c);
	}
	return nxdomain(c);
}

/* "10-0-0-1" (exactly 3 dashes, no "--") is IPv4, anything else IPv6 with '-' for ':'. */
static bool dashed_ip(const struct lab *l, struct addr *a)
{
	char buf[64];
	unsigned int dashes = 0;
	bool dd = false;

	if (l->n == 0 || l->n >= sizeof(buf))
		return false;
	for (size_t i = 0; i < l->n; i++) {
		char ch = l->p[i];

		if (ch == '-') {
			dashes++;
			if (i && l->p[i - 1] == '-')
				dd = true;
		}
		buf[i] = ch == '-' ? (dashes == 3 && !dd ? '.' : ':') : ch;
	}
	buf[l->n] = 0;
	if (dashes == 3 && !dd) {
		for (size_t i = 0; i < l->n; i++)
			if (buf[i] == ':')
				buf[i] = '.';
		return inet_pton(AF_INET, buf, a->b) == 1 && (a->fam = 4);
	}
	for (size_t i = 0; i < l->n; i++)
		if (buf[i] == '.')
			buf[i] = ':';
	return inet_pton(AF_INET6, buf, a->b) == 1 && (a->fam = 6);
}

static int answer_pod_tree(struct actx *c)
{
	struct lab *r = c->r;
	unsigned int L = c->L;
	struct addr a = {0};
	int fam = want_fam(c->q);

	if (L == 1)
		return c->q->qtype == DNS_T_ANY ? any_answer(c) : nodata(c);
	if (!snap_has_ns(c->s, r[L - 2].p, r[L - 2].n))
		return nxdomain(c);
	if (L == 2)
		return c->q->qtype == DNS_T_ANY ? any_answer(c) : nodata(c);
	if (L != 3 || c->z->pods == DNS_PODS_DISABLED || !dashed_ip(&r[0], &a))
		return nxdomain(c);
	if (c->z->pods == DNS_PODS_VERIFIED && !snap_has_pod(c->s, r[1].p, r[1].n, &a))
		return nxdomain(c);
	if (c->q->qtype == DNS_T_ANY)
		return any_answer(c);
	if (fam == a.fam)
		add_addr(c, 1, c->q->qname, &a);
	return finish(c, DNS_R_NOERROR);
}

static int answer_forward_zone(struct actx *c)
{
	struct lab *r = c->r;
	unsigned int L = c->L;
	uint16_t qt = c->q->qtype;

	if (L == 0) {
		if (qt == DNS_T_SOA) {
			add_soa(c, 1, c->z->ttl);
			return finish(c, DNS_R_NOERROR);
		}
		if (qt == DNS_T_NS) {
			char ns[DNS_MAX_PNAME + 16];
			struct dns_rr rr = {.name = c->q->qname,
					    .type = DNS_T_NS,
					    .class = DNS_CLASS_IN,
					    .ttl = c->z->ttl};
			struct addr a = {.fam = 4};

			snprintf(ns, sizeof(ns), "ns.dns.%s", c->zp);
			rr.rd.target = ns;
			add_rr(c, 1, &rr);
			memcpy(a.b, c->z->ns_addr, 4);
			add_extra_addr(c, ns, &a);
			return finish(c, DNS_R_NOERROR);
		}
		return qt == DNS_T_ANY ? any_answer(c) : nodata(c);
	}
	if (L == 1 && lab_is(&r[0], "dns-version")) {
		if (qt == DNS_T_TXT) {
			struct dns_rr rr = {.name = c->q->qname,
					    .type = DNS_T_TXT,
					    .class = DNS_CLASS_IN,
					    .ttl = VERSION_TTL};

			rr.rd.txt.text = "1.1.0";
			add_rr(c, 1, &rr);
			return finish(c, DNS_R_NOERROR);
		}
		return qt == DNS_T_ANY ? any_answer(c) : nodata(c);
	}
	if (L == 1 && lab_is(&r[0], "dns"))
		return nodata(c); /* empty non-terminal above ns.dns */
	if (L == 2 && lab_is(&r[0], "ns") && lab_is(&r[1], "dns")) {
		struct addr a = {.fam = 4};

		if (qt == DNS_T_ANY)
			return any_answer(c);
		memcpy(a.b, c->z->ns_addr, 4);
		if (qt == DNS_T_A)
			add_addr(c, 1, c->q->qname, &a);
		return finish(c, DNS_R_NOERROR);
	}
	if (lab_is(&r[L - 1], "svc"))
		return answer_svc_tree(c);
	if (lab_is(&r[L - 1], "pod"))
		return answer_pod_tree(c);
	return nxdomain(c);
}

/* Parses the labels left of in-addr.arpa / ip6.arpa into an address. */
static bool reverse_addr(const struct lab *l, unsigned int n, bool v6, struct addr *a)
{
	memset(a, 0, sizeof(*a));
	if (!v6) {
		if (n != 4)
			return false;
		for (unsigned int i = 0; i < 4; i++) {
			unsigned int v = 0;

			if (l[i].n == 0 || l[i].n > 3)
				return false;
			for (size_t k = 0; k < l[i].n; k++) {
				if (l[i].p[k] < '0' || l[i].p[k] > '9')
					return false;
				v = v * 10 + (unsigned int)(l[i].p[k] - '0');
			}
			if (v > 255)
				return false;
			a->b[3 - i] = (uint8_t)v;
		}
		a->fam = 4;
		return true;
	}
	if (n != 32)
		return false;
	for (unsigned int i = 0; i < 32; i++) {
		char ch = lc(l[i].p[0]);
		unsigned int v;

		if (l[i].n != 1)
			return false;
		if (ch >= '0' && ch <= '9')
			v = (unsigned int)(ch - '0');
		else if (ch >= 'a' && ch <= 'f')
			v = (unsigned int)(ch - 'a' + 10);
		else
			return false;
		unsigned int nib = 31 - i;

		a->b[nib / 2] |= (uint8_t)(nib % 2 ? v : v << 4);
	}
	a->fam = 6;
	return true;
}

/* Returns 1 if answered, 0 if not ours. */
static int answer_reverse(struct actx *c, bool v6)
{
	const char *suffix = v6 ? "ip6.arpa" : "in-addr.arpa";
	size_t qlen = strlen(c->q->qname), sl = strlen(suffix);
	struct addr a;
	const struct rev_ent *hit_ip = NULL;
	const struct rev_shard *sh;
	size_t n_ep = 0;
	char zp_buf[DNS_MAX_PNAME];
	char target[DNS_MAX_PNAME + 256];

	if (qlen <= sl || !split_labels(c->q->qname, qlen - sl - 1, c->r, &c->L) ||
	    !reverse_addr(c->r, c->L, v6, &a) || !c->s->rev ||
	    !(sh = c->s->rev[hash_addr(&a) & (NSH - 1)]))
		return 0;
	for (const struct rev_ent *r = sh->e; r < sh->e + sh->n; r++) {
		if (!addr_eq(&r->a, &a))
			continue;
		if (!r->ep && !hit_ip)
			hit_ip = r;
		else if (r->ep)
			n_ep++;
	}
	if (!hit_ip && !n_ep)
		return 0; /* fallthrough: the forwarder asks upstream */
	c->res->ours = true;
	c->soa_owner = c->q->qname + qlen - sl;
	snprintf(zp_buf, sizeof(zp_buf), "%s", c->z->zone);
	c->zp = zp_buf;
	if (c->q->qtype != DNS_T_PTR && c->q->qtype != DNS_T_ANY) {
		nodata(c);
		return 1;
	}
	struct dns_rr rr = {
		.name = c->q->qname, .type = DNS_T_PTR, .class = DNS_CLASS_IN, .ttl = c->z->ttl};

	rr.rd.target = target;
	if (hit_ip) {
		snprintf(target, sizeof(target), "%s.%s.svc.%s", hit_ip->svc->name, hit_ip->svc->ns,
			 c->z->zone);
		add_rr(c, 1, &rr);
	} else {
		for (const struct rev_ent *r = sh->e; r < sh->e + sh->n; r++) {
			if (!r->ep || !addr_eq(&r->a, &a))
				continue;
			snprintf(target, sizeof(target), "%s.%s.%s.svc.%s", r->ep, r->svc->name,
				 r->svc->ns, c->z->zone);
			add_rr(c, 1, &rr);
		}
	}
	finish(c, DNS_R_NOERROR);
	return 1;
}

static int answer_snap(struct actx *c)
{
	const struct dns_query *q = c->q;
	size_t qlen = strlen(q->qname);

	if (dns_name_in(q->qname, c->z->zone)) {
		c->res->ours = true;
		c->zp = q->qname + qlen - c->z->zone_len;
		c->soa_owner = c->zp;
		if (q->qclass != DNS_CLASS_IN && q->qclass != DNS_T_ANY)
			return finish(c, DNS_R_REFUSED);
		if (q->qtype == DNS_T_AXFR || q->qtype == DNS_T_IXFR)
			return finish(c, DNS_R_REFUSED);
		if (qlen > c->z->zone_len &&
		    !split_labels(q->qname, qlen - c->z->zone_len - 1, c->r, &c->L))
			return nxdomain(c);
		return answer_forward_zone(c);
	}
	if (c->z->no_reverse || !c->s || q->qclass != DNS_CLASS_IN)
		return 0;
	if (dns_name_in(q->qname, "in-addr.arpa"))
		answer_reverse(c, false);
	else if (dns_name_in(q->qname, "ip6.arpa"))
		answer_reverse(c, true);
	return 0;
}

int dns_zone_answer(struct dns_zone *z, const struct dns_query *q, struct dns_writer *w,
		    struct dns_zone_result *res)
{
	struct actx c;
	int slot, ret;

	if (!z || !q || !w || !res || !w->buf)
		return -EINVAL;
	res->ours = false;
	res->rcode = DNS_R_NOERROR;
	res->cname = false;
	res->cname_target[0] = 0;
	memset(&c, 0, offsetof(struct actx, r)); /* the label array needs no clearing */
	c.z = z;
	c.q = q;
	c.w = w;
	c.res = res;
	c.L = 0;

	slot = hz_slot_get();
	if (slot == HZ_SLOTS)
		pthread_mutex_lock(&hz_overflow_lock);
	c.s = atomic_load(&z->cur);
	for (;;) {
		atomic_store(&hz_slots[slot].ptr, (struct snap *)c.s);
		struct snap *s2 = atomic_load(&z->cur);

		if (s2 == c.s)
			break;
		c.s = s2;
	}
	if (c.s || dns_name_in(q->qname, z->zone)) {
		struct snap empty = {0};

		if (!c.s)
			c.s = &empty; /* only for the SOA serial of the SERVFAIL */
		ret = answer_snap(&c);
		if (c.s == &empty)
			c.s = NULL;
	} else {
		ret = 0;
	}
	atomic_store(&hz_slots[slot].ptr, NULL);
	if (slot == HZ_SLOTS)
		pthread_mutex_unlock(&hz_overflow_lock);
	return ret;
}
