// SPDX-License-Identifier: Apache-2.0
/*
 * The cluster zone (see zone.h for the contract and the choices made).
 *
 * How it works. The writer keeps the decoded Kubernetes objects in four
 * private hash maps keyed "ns/name". dns_zone_commit() turns them into a
 * snapshot: one arena holding every string and array, with four hash tables
 * (services by name.ns, namespaces, reverse entries by address, pods by
 * ns+address). Endpoints are resolved to their Service at build time, ready
 * filtering, endpoint names and deduplication included, so answering is a
 * hash lookup plus a walk over a flat array. Readers find the snapshot
 * through one atomic pointer and protect it with a hazard slot.
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
	enum k8s_kind kind;
};

static struct omap_ent **omap_slot(struct omap *m, const char *key)
{
	uint64_t h = hash_bytes(HASH_SEED, key, strlen(key));
	struct omap_ent **pp = &m->b[h & (m->cap - 1)];

	while (*pp && strcmp((*pp)->key, key) != 0)
		pp = &(*pp)->next;
	return pp;
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

/* Takes ownership of obj (freed on replace/delete/fini). */
static int omap_put(struct omap *m, const char *key, void *obj)
{
	struct omap_ent **pp, *e;

	if ((m->n + 1) * 2 > m->cap && omap_grow(m))
		return -ENOMEM;
	pp = omap_slot(m, key);
	if (*pp) {
		k8s_obj_free(m->kind, (*pp)->obj);
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
	k8s_obj_free(m->kind, e->obj);
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
			k8s_obj_free(m->kind, e->obj);
			free(e->key);
			free(e);
		}
	}
	free(m->b);
	memset(m, 0, sizeof(*m));
}

#define OMAP_FOR_EACH(m, e)                      \
	for (size_t _i = 0; _i < (m)->cap; _i++) \
		for (struct omap_ent * (e) = (m)->b[_i]; (e); (e) = (e)->next)

/* --- snapshot -------------------------------------------------------------------------------- */

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
		size_t cap = n > 65536 ? n : 65536;

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

struct addr {
	uint8_t fam; /* 4 or 6 */
	uint8_t b[16];
};

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

struct snap_svc {
	struct snap_svc *next; /* hash chain */
	const char *name, *ns; /* lower case */
	enum svc_kind kind;
	const char *external; /* SVC_EXTERNAL target, no trailing dot */
	struct addr *ips;     /* ClusterIPs */
	size_t n_ips;
	struct snap_port *ports; /* Service ports */
	size_t n_ports;
	struct snap_ep *eps; /* ready endpoints, sorted by address, unique */
	size_t n_eps;
	size_t fill; /* build-time counter */
};

struct snap_ns {
	struct snap_ns *next;
	const char *name;
};

struct snap_rev {
	struct snap_rev *next;
	struct addr a;
	const struct snap_svc *svc;
	const char *ep; /* NULL: a ClusterIP of svc */
};

struct snap_pod {
	struct snap_pod *next;
	const char *ns;
	struct addr a;
};

struct snap {
	struct arena arena;
	struct snap_svc **svc;
	size_t svc_cap, n_svc;
	struct snap_ns **ns;
	size_t ns_cap, n_ns;
	struct snap_rev **rev;
	size_t rev_cap;
	struct snap_pod **pod;
	size_t pod_cap, n_pod;
	size_t n_eps;
	uint32_t serial;
	struct snap *retired_next;
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

static int addr_cmp(const void *pa, const void *pb)
{
	const struct snap_ep *x = pa, *y = pb;

	if (x->a.fam != y->a.fam)
		return x->a.fam - y->a.fam;
	return memcmp(x->a.b, y->a.b, 16);
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

static const struct snap_svc *snap_find_svc(const struct snap *s, const char *name, size_t nn,
					    const char *ns, size_t nns)
{
	if (!s->svc_cap)
		return NULL;
	for (const struct snap_svc *v = s->svc[hash_svc(name, nn, ns, nns) & (s->svc_cap - 1)]; v;
	     v = v->next)
		if (lab_eq(name, nn, v->name) && lab_eq(ns, nns, v->ns))
			return v;
	return NULL;
}

static bool snap_has_ns(const struct snap *s, const char *ns, size_t n)
{
	if (!s->ns_cap)
		return false;
	for (const struct snap_ns *v = s->ns[hash_bytes(HASH_SEED, ns, n) & (s->ns_cap - 1)]; v;
	     v = v->next)
		if (lab_eq(ns, n, v->name))
			return true;
	return false;
}

static bool snap_has_pod(const struct snap *s, const char *ns, size_t n, const struct addr *a)
{
	if (!s->pod_cap)
		return false;
	for (const struct snap_pod *p = s->pod[hash_addr(a) & (s->pod_cap - 1)]; p; p = p->next)
		if (addr_eq(&p->a, a) && lab_eq(ns, n, p->ns))
			return true;
	return false;
}

static void snap_free(struct snap *s)
{
	if (!s)
		return;
	arena_free(&s->arena);
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

struct dns_zone {
	char *zone; /* lower case, no trailing dot */
	size_t zone_len;
	unsigned int zone_labels;
	uint32_t ttl;
	enum dns_pod_mode pods;
	uint8_t ns_addr[4];
	bool no_reverse;
	struct omap svcs, slices, podmap, nsmap;
	_Atomic(struct snap *) cur;
	struct snap *retired;
	atomic_bool synced;
	uint32_t serial;
};

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
	z->svcs.kind = K8S_KIND_SERVICE;
	z->slices.kind = K8S_KIND_ENDPOINTSLICE;
	z->podmap.kind = K8S_KIND_POD;
	z->nsmap.kind = K8S_KIND_NAMESPACE;
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
	omap_fini(&z->svcs);
	omap_fini(&z->slices);
	omap_fini(&z->podmap);
	omap_fini(&z->nsmap);
	free(z->zone);
	free(z);
}

static struct omap *zone_map(struct dns_zone *z, enum k8s_kind kind)
{
	switch (kind) {
	case K8S_KIND_SERVICE:
		return &z->svcs;
	case K8S_KIND_ENDPOINTSLICE:
		return &z->slices;
	case K8S_KIND_POD:
		return &z->podmap;
	case K8S_KIND_NAMESPACE:
		return &z->nsmap;
	default:
		return NULL;
	}
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

int dns_zone_upsert(struct dns_zone *z, enum k8s_kind kind, struct json_object *obj)
{
	struct omap *m;
	char key[512], err[256] = "";
	void *o = NULL;
	int ret;

	if (!z || !obj || !(m = zone_map(z, kind)))
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
	ret = omap_put(m, key, o);
	if (ret)
		k8s_obj_free(kind, o);
	return ret;
}

int dns_zone_delete(struct dns_zone *z, enum k8s_kind kind, struct json_object *obj)
{
	struct omap *m;
	char key[512];

	if (!z || !obj || !(m = zone_map(z, kind)))
		return -EINVAL;
	if (obj_key(kind, obj, key, sizeof(key)))
		return -EINVAL;
	omap_del(m, key);
	return 0;
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

/* --- snapshot build ---------------------------------------------------------------------- */

static bool ns_add(struct snap *s, const char *name)
{
	size_t n = strlen(name);
	uint64_t h = hash_bytes(HASH_SEED, name, n);
	struct snap_ns *v;

	for (v = s->ns[h & (s->ns_cap - 1)]; v; v = v->next)
		if (lab_eq(name, n, v->name))
			return true;
	v = arena_alloc(&s->arena, sizeof(*v));
	if (!v || !(v->name = arena_strdup_lc(&s->arena, name)))
		return false;
	v->next = s->ns[h & (s->ns_cap - 1)];
	s->ns[h & (s->ns_cap - 1)] = v;
	s->n_ns++;
	return true;
}

static bool rev_add(struct snap *s, const struct addr *a, const struct snap_svc *svc,
		    const char *ep)
{
	struct snap_rev *r = arena_alloc(&s->arena, sizeof(*r));
	size_t i = hash_addr(a) & (s->rev_cap - 1);

	if (!r)
		return false;
	r->a = *a;
	r->svc = svc;
	r->ep = ep;
	r->next = s->rev[i];
	s->rev[i] = r;
	return true;
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

static bool build_service(struct snap *s, const struct k8s_service *k)
{
	const struct k8s_service_spec *sp = &k->spec;
	struct snap_svc *v = arena_alloc(&s->arena, sizeof(*v));
	size_t nips;

	if (!v || !(v->name = arena_strdup_lc(&s->arena, k->meta.name)) ||
	    !(v->ns = arena_strdup_lc(&s->arena, k->meta.namespace ? k->meta.namespace : "")))
		return false;
	if (sp->type && !strcmp(sp->type, "ExternalName")) {
		struct addr dummy;
		char *t;

		v->kind = SVC_EXTERNAL;
		/* An IP literal or an empty name is not served (CoreDNS). */
		if (sp->external_name && *sp->external_name &&
		    !addr_parse(sp->external_name, &dummy)) {
			uint8_t wire[DNS_MAX_NAME];

			t = arena_strdup_lc(&s->arena, sp->external_name);
			if (!t)
				return false;
			if (t[strlen(t) - 1] == '.')
				t[strlen(t) - 1] = 0;
			if (dns_name_to_wire(t, wire, sizeof(wire)) > 1)
				v->external = t;
		}
	} else if (sp->cluster_ip && !strcmp(sp->cluster_ip, "None")) {
		v->kind = SVC_HEADLESS;
	} else {
		v->kind = SVC_CLUSTERIP;
		nips = sp->cluster_ips.n ? sp->cluster_ips.n : (sp->cluster_ip ? 1 : 0);
		v->ips = arena_alloc(&s->arena, (nips + 1) * sizeof(*v->ips));
		if (!v->ips)
			return false;
		for (size_t i = 0; i < nips; i++) {
			const char *ip = sp->cluster_ips.n ? sp->cluster_ips.v[i] : sp->cluster_ip;

			if (addr_parse(ip, &v->ips[v->n_ips]))
				v->n_ips++;
		}
	}
	if (v->kind != SVC_EXTERNAL) {
		v->ports = arena_alloc(&s->arena, (sp->n_ports + 1) * sizeof(*v->ports));
		if (!v->ports)
			return false;
		for (size_t i = 0; i < sp->n_ports; i++) {
			struct snap_port *p = &v->ports[v->n_ports];

			if (sp->ports[i].port <= 0 || sp->ports[i].port > 65535)
				continue;
			p->name = arena_strdup_lc(&s->arena,
						  sp->ports[i].name ? sp->ports[i].name : "");
			p->proto = arena_strdup_lc(
				&s->arena, sp->ports[i].protocol ? sp->ports[i].protocol : "tcp");
			if (!p->name || !p->proto)
				return false;
			p->port = (uint16_t)sp->ports[i].port;
			v->n_ports++;
		}
	}
	size_t b = hash_svc(v->name, strlen(v->name), v->ns, strlen(v->ns)) & (s->svc_cap - 1);

	v->next = s->svc[b];
	s->svc[b] = v;
	s->n_svc++;
	return ns_add(s, v->ns);
}

static struct snap_svc *slice_service(struct snap *s, const struct k8s_endpointslice *es)
{
	const char *name = k8s_endpointslice_service_name(es);
	const char *ns = es->meta.namespace ? es->meta.namespace : "";

	if (!name || (es->address_type && strcmp(es->address_type, "IPv4") != 0 &&
		      strcmp(es->address_type, "IPv6") != 0))
		return NULL;
	return (struct snap_svc *)snap_find_svc(s, name, strlen(name), ns, strlen(ns));
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

static bool build_slices(struct dns_zone *z, struct snap *s)
{
	/* Pass 1: count addresses per Service. */
	OMAP_FOR_EACH(&z->slices, e)
	{
		const struct k8s_endpointslice *es = e->obj;
		struct snap_svc *v = slice_service(s, es);

		if (!v || v->kind == SVC_EXTERNAL)
			continue;
		for (size_t i = 0; i < es->n_endpoints; i++)
			v->fill += es->endpoints[i].addresses.n;
	}
	for (size_t b = 0; b < s->svc_cap; b++)
		for (struct snap_svc *v = s->svc[b]; v; v = v->next) {
			if (!v->fill)
				continue;
			v->eps = arena_alloc(&s->arena, v->fill * sizeof(*v->eps));
			if (!v->eps)
				return false;
			v->fill = 0;
		}
	/* Pass 2: ready endpoints (nil ready counts as ready; publishNotReadyAddresses). */
	OMAP_FOR_EACH(&z->slices, e)
	{
		const struct k8s_endpointslice *es = e->obj;
		struct snap_svc *v = slice_service(s, es);
		struct snap_port *ports;
		size_t np = 0;
		bool pnra;

		if (!v || v->kind == SVC_EXTERNAL || !v->eps)
			continue;
		const struct k8s_service *k = NULL;
		char key[512];

		snprintf(key, sizeof(key), "%s/%s", es->meta.namespace ? es->meta.namespace : "",
			 k8s_endpointslice_service_name(es));
		struct omap_ent **pp = omap_slot(&z->svcs, key);

		if (*pp)
			k = (*pp)->obj;
		pnra = k && k->spec.publish_not_ready_addresses;
		ports = arena_alloc(&s->arena, (es->n_ports + 1) * sizeof(*ports));
		if (!ports)
			return false;
		for (size_t i = 0; i < es->n_ports; i++) {
			if (es->ports[i].port <= 0 || es->ports[i].port > 65535)
				continue;
			ports[np].name = arena_strdup_lc(
				&s->arena, es->ports[i].name ? es->ports[i].name : "");
			ports[np].proto = arena_strdup_lc(
				&s->arena, es->ports[i].protocol ? es->ports[i].protocol : "tcp");
			if (!ports[np].name || !ports[np].proto)
				return false;
			ports[np].port = (uint16_t)es->ports[i].port;
			np++;
		}
		for (size_t i = 0; i < es->n_endpoints; i++) {
			const struct k8s_slice_endpoint *ep = &es->endpoints[i];

			if (ep->conditions.ready == K8S_TRI_FALSE && !pnra)
				continue;
			for (size_t j = 0; j < ep->addresses.n; j++) {
				struct snap_ep *x = &v->eps[v->fill];

				if (!addr_parse(ep->addresses.v[j], &x->a))
					continue;
				x->name = ep_name(&s->arena, ep->hostname, &x->a);
				if (!x->name)
					return false;
				x->ports = ports;
				x->n_ports = np;
				v->fill++;
			}
		}
	}
	/* Sort, deduplicate (an address in several slices), index for PTR. */
	for (size_t b = 0; b < s->svc_cap; b++)
		for (struct snap_svc *v = s->svc[b]; v; v = v->next) {
			size_t n = 0;

			if (v->fill)
				qsort(v->eps, v->fill, sizeof(*v->eps), addr_cmp);
			for (size_t i = 0; i < v->fill; i++)
				if (!n || !addr_eq(&v->eps[n - 1].a, &v->eps[i].a))
					v->eps[n++] = v->eps[i];
			v->n_eps = n;
			s->n_eps += n;
			if (n > 1 && !mark_dup_names(v))
				return false;
			for (size_t i = 0; i < v->n_ips; i++)
				if (!rev_add(s, &v->ips[i], v, NULL))
					return false;
			for (size_t i = 0; i < n; i++)
				if (!rev_add(s, &v->eps[i].a, v, v->eps[i].name))
					return false;
		}
	return true;
}

static bool build_pods(struct dns_zone *z, struct snap *s)
{
	s->pod_cap = pow2_at_least(z->pods == DNS_PODS_VERIFIED ? z->podmap.n * 2 : 0);
	s->pod = arena_alloc(&s->arena, s->pod_cap * sizeof(struct snap_pod *));
	if (!s->pod)
		return false;
	if (z->pods != DNS_PODS_VERIFIED)
		return true;
	OMAP_FOR_EACH(&z->podmap, e)
	{
		const struct k8s_pod *p = e->obj;
		size_t n = p->status.n_pod_ips ? p->status.n_pod_ips : (p->status.pod_ip ? 1 : 0);

		for (size_t i = 0; i < n; i++) {
			const char *ip =
				p->status.n_pod_ips ? p->status.pod_ips[i].ip : p->status.pod_ip;
			struct snap_pod *x = arena_alloc(&s->arena, sizeof(*x));

			if (!x)
				return false;
			if (!addr_parse(ip, &x->a))
				continue;
			x->ns = arena_strdup_lc(&s->arena,
						p->meta.namespace ? p->meta.namespace : "");
			if (!x->ns)
				return false;
			size_t b = hash_addr(&x->a) & (s->pod_cap - 1);

			x->next = s->pod[b];
			s->pod[b] = x;
			s->n_pod++;
		}
	}
	return true;
}

static struct snap *snap_build(struct dns_zone *z)
{
	struct snap *s = calloc(1, sizeof(*s));
	size_t n_rev = 0;

	if (!s)
		return NULL;
	s->svc_cap = pow2_at_least(z->svcs.n);
	s->ns_cap = pow2_at_least(z->nsmap.n + z->svcs.n);
	OMAP_FOR_EACH(&z->slices, e)
	{
		const struct k8s_endpointslice *es = e->obj;

		for (size_t i = 0; i < es->n_endpoints; i++)
			n_rev += es->endpoints[i].addresses.n;
	}
	s->rev_cap = pow2_at_least(n_rev + z->svcs.n * 2);
	s->svc = arena_alloc(&s->arena, s->svc_cap * sizeof(struct snap_svc *));
	s->ns = arena_alloc(&s->arena, s->ns_cap * sizeof(struct snap_ns *));
	s->rev = arena_alloc(&s->arena, s->rev_cap * sizeof(struct snap_rev *));
	if (!s->svc || !s->ns || !s->rev)
		goto fail;
	OMAP_FOR_EACH(&z->nsmap, e)
	{
		const struct k8s_namespace *n = e->obj;

		if (n->meta.name && !ns_add(s, n->meta.name))
			goto fail;
	}
	OMAP_FOR_EACH(&z->svcs, e)
	{
		const struct k8s_service *k = e->obj;

		if (k->meta.name && !build_service(s, k))
			goto fail;
	}
	if (!build_slices(z, s) || !build_pods(z, s))
		goto fail;
	return s;
fail:
	snap_free(s);
	return NULL;
}

int dns_zone_commit(struct dns_zone *z)
{
	struct snap *s, *old, **pp;
	uint32_t now = (uint32_t)time(NULL);

	if (!z)
		return -EINVAL;
	s = snap_build(z);
	if (!s) {
		pr_err(SUB, "zone '%s': snapshot build failed: %s", z->zone, sl_strerror(-ENOMEM));
		return -ENOMEM;
	}
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
		out->snapshot_bytes = s->arena.total;
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
	const struct snap_rev *hit_ip = NULL;
	size_t n_ep = 0;
	char zp_buf[DNS_MAX_PNAME];
	char target[DNS_MAX_PNAME + 256];

	if (qlen <= sl || !split_labels(c->q->qname, qlen - sl - 1, c->r, &c->L) ||
	    !reverse_addr(c->r, c->L, v6, &a) || !c->s->rev_cap)
		return 0;
	for (const struct snap_rev *r = c->s->rev[hash_addr(&a) & (c->s->rev_cap - 1)]; r;
	     r = r->next) {
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
		for (const struct snap_rev *r = c->s->rev[hash_addr(&a) & (c->s->rev_cap - 1)]; r;
		     r = r->next) {
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
