// SPDX-License-Identifier: Apache-2.0
/*
 * Service model: Services + EndpointSlices + this node's Node -> the desired
 * frontends and backends of the node's load-balancing maps, and the diff of
 * two desired states. The semantics (kube-proxy's) are described in model.h;
 * this file is the mechanics:
 *
 *   1. valid IPv4 slices sorted by (namespace, service, slice name), so each
 *      service finds its slices with one binary search and reads them in a
 *      fixed order (kube-proxy's order is Go-map random; ours is by name);
 *   2. per service port: gather endpoints, dedupe by ip:port, split into the
 *      cluster-wide and node-local sets (KEP-1669 fallback), append the sets
 *      used to a pool of backend keys and emit frontend records pointing at
 *      pool segments;
 *   3. sort frontend records by key and service priority, drop the losers of
 *      key conflicts, merge duplicates of one port (an LB IP that is also an
 *      externalIP);
 *   4. backends = keys of the kept frontends' segments + terminating
 *      endpoints, sorted and merged; pool keys become backend indices.
 *
 * Everything is sorting and arrays: 10,000 services x 10 endpoints is a few
 * hundred thousand small records.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/model.h"
#include "sluice/err.h"
#include "sluice/json.h"
#include "sluice/log.h"

#define SUBSYS "svcmodel"

#define LABEL_PROXY_NAME "service.kubernetes.io/service-proxy-name"
#define LABEL_HEADLESS	 "service.kubernetes.io/headless"

/* Flags that say what kind of frontend an entry is (merged for duplicates). */
#define FE_KIND_MASK \
	(SL_SVC_F_CLUSTERIP | SL_SVC_F_NODEPORT | SL_SVC_F_EXTERNALIP | SL_SVC_F_LOADBALANCER)

/* --- growable arrays ------------------------------------------------------------------------ */

/* Makes room for one more element at index n; 0 or -ENOMEM. */
static int vec_reserve(void **v, size_t n, size_t *cap, size_t elem)
{
	size_t ncap;
	void *p;

	if (n < *cap)
		return 0;
	ncap = *cap ? *cap * 2 : 16;
	p = reallocarray(*v, ncap, elem);
	if (!p)
		return -ENOMEM;
	*v = p;
	*cap = ncap;
	return 0;
}

#define VEC_RESERVE(v, n, cap) vec_reserve((void **)&(v), (n), &(cap), sizeof(*(v)))

/* qsort that accepts an empty (NULL) array. */
static void sort_arr(void *base, size_t n, size_t size, int (*cmp)(const void *, const void *))
{
	if (n > 1)
		qsort(base, n, size, cmp);
}

/* --- build-time records ----------------------------------------------------------------------- */

/* One endpoint of one service port while the port is being built. */
struct ep {
	uint32_t addr; /* host order */
	uint16_t port;
	bool ready;
	bool serving;
	bool terminating;
	bool local;
	uint32_t seq; /* arrival order: kube-proxy keeps the first of duplicates */
};

/* A backend key in the pool; segments of the pool are frontends' slot lists. */
struct pkey {
	uint32_t addr; /* host order */
	uint16_t port;
	uint8_t proto;
	uint8_t ready : 1; /* ACTIVE, else TERMINATING */
	uint8_t local : 1;
};

struct seg {
	uint32_t off;
	uint32_t count;
	bool term; /* serving-terminating fallback */
	bool pushed;
};

/* A frontend before conflict resolution. */
struct fe_tmp {
	uint32_t addr; /* host order */
	uint16_t port;
	uint8_t proto;
	uint8_t scope;
	uint16_t flags;
	bool drop;
	uint32_t affinity_s;
	uint32_t svc;	   /* output service index */
	uint32_t rank;	   /* conflict priority of the service (lower wins) */
	uint32_t port_idx; /* index in spec.ports */
	uint32_t seq;	   /* emission order, the last tie-break */
	uint32_t off;	   /* pool segment */
	uint32_t count;
};

/* A slice that passed the checks, with the service it belongs to. */
struct slice_ref {
	const struct k8s_endpointslice *es;
	const char *svc; /* kubernetes.io/service-name */
	uint32_t idx;	 /* input position: the last tie-break, so order is total */
};

struct build {
	const struct lbm_input *in;
	uint32_t max_be; /* backends per frontend (lbm_input.max_backends, resolved) */
	struct lbm_state *st;
	struct slice_ref *slices;
	size_t n_slices;
	struct ep *eps;
	size_t n_eps, cap_eps;
	struct pkey *pool;
	size_t n_pool, cap_pool;
	struct seg *drain; /* terminating endpoints per port: backends kept for old flows */
	size_t n_drain, cap_drain;
	struct fe_tmp *fes;
	size_t n_fes, cap_fes;
	size_t cap_services, cap_problems;
};

/* --- small helpers ---------------------------------------------------------------------------- */

static bool ip4_parse(const char *s, uint32_t *out)
{
	struct in_addr a;

	if (!s || inet_pton(AF_INET, s, &a) != 1)
		return false;
	*out = ntohl(a.s_addr);
	return true;
}

static bool ip6_is(const char *s)
{
	struct in6_addr a;

	return s && inet_pton(AF_INET6, s, &a) == 1;
}

/* Protocol number for a Kubernetes protocol name (NULL = TCP), 0 for others. */
static uint8_t proto_parse(const char *s)
{
	if (!s || !strcmp(s, "TCP"))
		return IPPROTO_TCP;
	if (!strcmp(s, "UDP"))
		return IPPROTO_UDP;
	if (!strcmp(s, "SCTP"))
		return IPPROTO_SCTP;
	return 0;
}

static const char *proto_name(uint8_t p)
{
	switch (p) {
	case IPPROTO_TCP:
		return "TCP";
	case IPPROTO_UDP:
		return "UDP";
	case IPPROTO_SCTP:
		return "SCTP";
	default:
		return "?";
	}
}

static const char *str_or_empty(const char *s)
{
	return s ? s : "";
}

static int cmp_u32(uint32_t a, uint32_t b)
{
	return a < b ? -1 : a > b;
}

static int problem_add(struct build *b, const struct k8s_service *s, const char *reason,
		       const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int problem_add(struct build *b, const struct k8s_service *s, const char *reason,
		       const char *fmt, ...)
{
	struct lbm_state *st = b->st;
	struct lbm_problem *p;
	va_list ap;
	int n;

	if (VEC_RESERVE(st->problems, st->n_problems, b->cap_problems))
		return -ENOMEM;
	p = &st->problems[st->n_problems];
	memset(p, 0, sizeof(*p));
	p->reason = reason;
	p->ns = strdup(s->meta.namespace);
	p->name = strdup(s->meta.name);
	va_start(ap, fmt);
	n = vasprintf(&p->message, fmt, ap);
	va_end(ap);
	if (n < 0)
		p->message = NULL;
	st->n_problems++;
	if (!p->ns || !p->name || !p->message)
		return -ENOMEM;
	pr_warn(SUBSYS, "service '%s/%s': %s: %s", p->ns, p->name, reason, p->message);
	return 0;
}

/* --- slices ------------------------------------------------------------------------------------
 */

static int slice_ref_cmp(const void *pa, const void *pb)
{
	const struct slice_ref *a = pa, *b = pb;
	int c = strcmp(a->es->meta.namespace, b->es->meta.namespace);

	if (!c)
		c = strcmp(a->svc, b->svc);
	if (!c)
		c = strcmp(a->es->meta.name, b->es->meta.name);
	if (!c)
		c = cmp_u32(a->idx, b->idx);
	return c;
}

static int slices_index(struct build *b)
{
	const struct lbm_input *in = b->in;
	size_t i;

	if (!in->n_slices)
		return 0;
	b->slices = calloc(in->n_slices, sizeof(*b->slices));
	if (!b->slices)
		return -ENOMEM;
	for (i = 0; i < in->n_slices; i++) {
		const struct k8s_endpointslice *es = in->slices[i];
		const char *svc;

		if (!es)
			continue;
		if (!es->meta.name || !es->meta.namespace) {
			pr_warn(SUBSYS, "endpointslice #%zu '%s/%s': skipped: metadata.%s missing",
				i, str_or_empty(es->meta.namespace), str_or_empty(es->meta.name),
				es->meta.name ? "namespace" : "name");
			b->st->stats.bad_objects++;
			continue;
		}
		/* kube-proxy's informer selects slices without these labels. */
		if (k8s_strmap_get(&es->meta.labels, LABEL_PROXY_NAME) ||
		    k8s_strmap_get(&es->meta.labels, LABEL_HEADLESS)) {
			b->st->stats.ignored_slices++;
			continue;
		}
		svc = k8s_endpointslice_service_name(es);
		if (!svc || !*svc) {
			pr_warn(SUBSYS, "endpointslice '%s/%s': skipped: label %s missing",
				es->meta.namespace, es->meta.name, K8S_LABEL_SERVICE_NAME);
			b->st->stats.bad_objects++;
			continue;
		}
		if (!es->address_type) {
			pr_warn(SUBSYS, "endpointslice '%s/%s': skipped: addressType missing",
				es->meta.namespace, es->meta.name);
			b->st->stats.bad_objects++;
			continue;
		}
		if (strcmp(es->address_type, "IPv4") != 0) {
			/* IPv6 belongs to the IPv6 model; FQDN is never proxied. */
			b->st->stats.ignored_slices++;
			continue;
		}
		b->slices[b->n_slices].es = es;
		b->slices[b->n_slices].svc = svc;
		b->slices[b->n_slices].idx = (uint32_t)i;
		b->n_slices++;
	}
	sort_arr(b->slices, b->n_slices, sizeof(*b->slices), slice_ref_cmp);
	return 0;
}

/* First slice of service ns/name (lower bound), and how many there are. */
static size_t slices_find(const struct build *b, const char *ns, const char *name, size_t *n)
{
	size_t lo = 0, hi = b->n_slices, end;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct slice_ref *r = &b->slices[mid];
		int c = strcmp(r->es->meta.namespace, ns);

		if (!c)
			c = strcmp(r->svc, name);
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (end = lo; end < b->n_slices; end++) {
		const struct slice_ref *r = &b->slices[end];

		if (strcmp(r->es->meta.namespace, ns) != 0 || strcmp(r->svc, name) != 0)
			break;
	}
	*n = end - lo;
	return lo;
}

/* --- endpoints of one service port -------------------------------------------------------------
 */

static int ep_cmp(const void *pa, const void *pb)
{
	const struct ep *a = pa, *b = pb;
	int c = cmp_u32(a->addr, b->addr);

	if (!c)
		c = cmp_u32(a->port, b->port);
	if (!c)
		c = cmp_u32(a->seq, b->seq);
	return c;
}

/*
 * Collects the endpoints of service port (name, proto) from the service's
 * slices into b->eps, deduplicated and sorted by (addr, port).
 */
static int eps_gather(struct build *b, size_t first, size_t n, const char *port_name, uint8_t proto)
{
	const char *node = b->in->node_name;
	uint32_t seq = 0;
	size_t i, j, k, out;

	b->n_eps = 0;
	for (i = first; i < first + n; i++) {
		const struct k8s_endpointslice *es = b->slices[i].es;

		for (j = 0; j < es->n_ports; j++) {
			const struct k8s_slice_port *sp = &es->ports[j];
			const char *bad = NULL;
			size_t n_bad = 0;

			/* kube-proxy keys endpoints by (service, port name, protocol). */
			if (strcmp(str_or_empty(sp->name), port_name) != 0 ||
			    proto_parse(sp->protocol) != proto)
				continue;
			if (sp->port <= 0 || sp->port > 65535) {
				pr_warn(SUBSYS,
					"endpointslice '%s/%s': ports[%zu]: port %d ignored",
					es->meta.namespace, es->meta.name, j, sp->port);
				b->st->stats.bad_endpoints++;
				continue;
			}
			for (k = 0; k < es->n_endpoints; k++) {
				const struct k8s_slice_endpoint *e = &es->endpoints[k];
				const struct k8s_endpoint_conditions *c = &e->conditions;
				struct ep *p;
				uint32_t addr;

				/* Only the first address is used (the API allows one). */
				if (!e->addresses.n || !ip4_parse(e->addresses.v[0], &addr)) {
					if (!n_bad++)
						bad = e->addresses.n ? e->addresses.v[0] : "";
					continue;
				}
				if (VEC_RESERVE(b->eps, b->n_eps, b->cap_eps))
					return -ENOMEM;
				p = &b->eps[b->n_eps++];
				p->addr = addr;
				p->port = (uint16_t)sp->port;
				p->ready = c->ready != K8S_TRI_FALSE;
				p->serving = c->serving != K8S_TRI_FALSE;
				p->terminating = c->terminating == K8S_TRI_TRUE;
				p->local = node && e->node_name && !strcmp(e->node_name, node);
				p->seq = seq++;
			}
			if (n_bad) {
				pr_warn(SUBSYS,
					"endpointslice '%s/%s': %zu endpoints without a usable "
					"IPv4 "
					"address skipped (first: '%s')",
					es->meta.namespace, es->meta.name, n_bad, bad);
				b->st->stats.bad_endpoints += (uint32_t)n_bad;
			}
		}
	}
	if (b->n_eps < 2)
		return 0;
	/* Dedupe ip:port: the first seen, unless a later duplicate is local
	 * (kube-proxy favours a local one; they should agree anyway). */
	sort_arr(b->eps, b->n_eps, sizeof(*b->eps), ep_cmp);
	out = 0;
	for (i = 0; i < b->n_eps;) {
		size_t pick = i;

		for (j = i; j < b->n_eps && b->eps[j].addr == b->eps[i].addr &&
			    b->eps[j].port == b->eps[i].port;
		     j++)
			if (b->eps[j].local && !b->eps[pick].local)
				pick = j;
		b->eps[out++] = b->eps[pick];
		i = j;
	}
	b->n_eps = out;
	return 0;
}

enum set_kind {
	SET_CLUSTER,
	SET_LOCAL,
};

/* Which endpoints a set holds: ready ones, or the serving-terminating fallback. */
static bool ep_in_set(const struct ep *e, enum set_kind kind, bool fallback)
{
	if (kind == SET_LOCAL && !e->local)
		return false;
	return fallback ? e->serving && e->terminating : e->ready;
}

/* Decides the set's mode (KEP-1669) without materialising it. */
static void set_plan(const struct build *b, enum set_kind kind, struct seg *s)
{
	size_t i, n = 0;

	memset(s, 0, sizeof(*s));
	for (i = 0; i < b->n_eps; i++)
		n += ep_in_set(&b->eps[i], kind, false);
	if (!n) {
		for (i = 0; i < b->n_eps; i++)
			n += ep_in_set(&b->eps[i], kind, true);
		s->term = n > 0; /* an empty set is not a fallback */
	}
	s->count = (uint32_t)n;
}

struct port_ctx {
	const struct k8s_service *s;
	uint32_t svc;
	uint32_t rank;
	uint32_t port_idx;
	const char *port_name;
	uint8_t proto;
	uint16_t base_flags; /* AFFINITY */
	uint32_t affinity_s;
	bool has_any; /* any ready or serving-terminating endpoint anywhere */
	bool truncated_reported;
};

/* Appends the set to the pool the first time a frontend uses it. */
static int set_push(struct build *b, struct port_ctx *pc, enum set_kind kind, struct seg *s)
{
	uint32_t n = 0;
	size_t i;

	if (s->pushed)
		return 0;
	s->pushed = true;
	s->off = (uint32_t)b->n_pool;
	for (i = 0; i < b->n_eps && n < b->max_be; i++) {
		const struct ep *e = &b->eps[i];
		struct pkey *k;

		if (!ep_in_set(e, kind, s->term))
			continue;
		if (VEC_RESERVE(b->pool, b->n_pool, b->cap_pool))
			return -ENOMEM;
		k = &b->pool[b->n_pool++];
		k->addr = e->addr;
		k->port = e->port;
		k->proto = pc->proto;
		k->ready = e->ready;
		k->local = e->local;
		n++;
	}
	if (s->count > n && !pc->truncated_reported) {
		pc->truncated_reported = true;
		if (problem_add(b, pc->s, "TooManyEndpoints",
				"port '%s' has %u endpoints; the datapath holds %u per "
				"frontend, so only the first %u by address are used",
				pc->port_name, s->count, b->max_be, b->max_be))
			return -ENOMEM;
	}
	s->count = n;
	return 0;
}

static int fe_emit(struct build *b, struct port_ctx *pc, uint32_t addr, uint16_t port,
		   uint8_t scope, uint16_t flags, enum set_kind kind, struct seg *s)
{
	struct fe_tmp *f;
	int err = set_push(b, pc, kind, s);

	if (err)
		return err;
	if (VEC_RESERVE(b->fes, b->n_fes, b->cap_fes))
		return -ENOMEM;
	f = &b->fes[b->n_fes];
	memset(f, 0, sizeof(*f));
	f->addr = addr;
	f->port = port;
	f->proto = pc->proto;
	f->scope = scope;
	f->flags = flags | pc->base_flags | (s->term ? SL_SVC_F_TERMINATING : 0);
	/* An empty set while the service has endpoints elsewhere can only be a
	 * Local policy: kube-proxy DROPs; with no endpoints at all it REJECTs. */
	f->drop = s->count == 0 && pc->has_any;
	f->affinity_s = pc->affinity_s;
	f->svc = pc->svc;
	f->rank = pc->rank;
	f->port_idx = pc->port_idx;
	f->seq = (uint32_t)b->n_fes;
	f->off = s->off;
	f->count = s->count;
	b->n_fes++;
	return 0;
}

/* Terminating endpoints stay backends so their established flows drain. */
static int drain_push(struct build *b, uint8_t proto)
{
	struct seg *d;
	size_t i;

	if (VEC_RESERVE(b->drain, b->n_drain, b->cap_drain))
		return -ENOMEM;
	d = &b->drain[b->n_drain];
	memset(d, 0, sizeof(*d));
	d->off = (uint32_t)b->n_pool;
	for (i = 0; i < b->n_eps; i++) {
		const struct ep *e = &b->eps[i];
		struct pkey *k;

		if (!e->terminating)
			continue;
		if (VEC_RESERVE(b->pool, b->n_pool, b->cap_pool))
			return -ENOMEM;
		k = &b->pool[b->n_pool++];
		k->addr = e->addr;
		k->port = e->port;
		k->proto = proto;
		k->ready = e->ready;
		k->local = e->local;
		d->count++;
	}
	if (d->count)
		b->n_drain++;
	return 0;
}

/* --- services -----------------------------------------------------------------------------------
 */

enum svc_type {
	SVC_CLUSTERIP,
	SVC_NODEPORT,
	SVC_LOADBALANCER,
	SVC_EXTERNALNAME,
	SVC_BAD,
};

static enum svc_type svc_type_parse(const char *t)
{
	if (!t || !strcmp(t, "ClusterIP"))
		return SVC_CLUSTERIP;
	if (!strcmp(t, "NodePort"))
		return SVC_NODEPORT;
	if (!strcmp(t, "LoadBalancer"))
		return SVC_LOADBALANCER;
	if (!strcmp(t, "ExternalName"))
		return SVC_EXTERNALNAME;
	return SVC_BAD;
}

/* "Cluster"/unset -> 0, "Local" -> 1, anything else -> -1. */
static int policy_parse(const char *p)
{
	if (!p || !strcmp(p, "Cluster"))
		return 0;
	if (!strcmp(p, "Local"))
		return 1;
	return -1;
}

static bool node_addr_has(const struct lbm_state *st, uint32_t addr)
{
	size_t i;

	for (i = 0; i < st->n_node_addrs; i++)
		if (ntohl(st->node_addrs[i]) == addr)
			return true;
	return false;
}

/* An external frontend address of a service: NodePort wildcard, LB IP or externalIP. */
struct ext_addr {
	uint32_t addr;
	uint16_t flag;
};

/*
 * The IPv4 cluster IP: "None" -> headless, "" -> not allocated, an IPv6
 * address -> not this family's. Returns 1 with *addr, 0 to skip quietly,
 * -1 for a malformed value.
 */
static int svc_cluster_ip(const struct k8s_service *s, uint32_t *addr, const char **why)
{
	const struct k8s_service_spec *sp = &s->spec;
	size_t i;

	if (sp->cluster_ips.n) {
		/* clusterIPs[0] is clusterIP; at most one per family. */
		if (!strcmp(sp->cluster_ips.v[0], "None")) {
			*why = "headless";
			return 0;
		}
		for (i = 0; i < sp->cluster_ips.n; i++) {
			if (ip4_parse(sp->cluster_ips.v[i], addr))
				return 1;
			if (!ip6_is(sp->cluster_ips.v[i])) {
				*why = sp->cluster_ips.v[i];
				return -1;
			}
		}
		*why = "no IPv4 cluster IP";
		return 0;
	}
	if (!sp->cluster_ip || !*sp->cluster_ip) {
		*why = "cluster IP not allocated";
		return 0;
	}
	if (!strcmp(sp->cluster_ip, "None")) {
		*why = "headless";
		return 0;
	}
	if (ip4_parse(sp->cluster_ip, addr))
		return 1;
	if (ip6_is(sp->cluster_ip)) {
		*why = "no IPv4 cluster IP";
		return 0;
	}
	*why = sp->cluster_ip;
	return -1;
}

static int svc_build(struct build *b, const struct k8s_service *s, uint32_t rank)
{
	const struct k8s_service_spec *sp = &s->spec;
	const char *ns = s->meta.namespace, *name = s->meta.name, *why = NULL;
	struct lbm_state *st = b->st;
	struct ext_addr *ext = NULL;
	struct lbm_service *out;
	uint32_t cip, affinity_s = 0;
	uint16_t base_flags = 0;
	size_t first, n_slices, n_ext = 0, i;
	enum svc_type type;
	int etp, itp, r, err = 0;

	if (k8s_strmap_get(&s->meta.labels, LABEL_PROXY_NAME)) {
		st->stats.skipped_services++;
		return 0;
	}
	type = svc_type_parse(sp->type);
	if (type == SVC_BAD) {
		pr_warn(SUBSYS,
			"service '%s/%s': skipped: spec.type '%s' is not ClusterIP, "
			"NodePort, LoadBalancer or ExternalName",
			ns, name, sp->type);
		st->stats.bad_objects++;
		return 0;
	}
	if (type == SVC_EXTERNALNAME) {
		st->stats.skipped_services++;
		return 0;
	}
	r = svc_cluster_ip(s, &cip, &why);
	if (r <= 0) {
		if (r < 0) {
			pr_warn(SUBSYS,
				"service '%s/%s': skipped: spec.clusterIP '%s' is not an IP "
				"address",
				ns, name, why);
			st->stats.bad_objects++;
		} else {
			pr_debug(SUBSYS, "service '%s/%s': not proxied: %s", ns, name, why);
			st->stats.skipped_services++;
		}
		return 0;
	}
	etp = policy_parse(sp->external_traffic_policy);
	itp = policy_parse(sp->internal_traffic_policy);
	if (etp < 0 || itp < 0) {
		pr_warn(SUBSYS,
			"service '%s/%s': skipped: spec.%sTrafficPolicy '%s' is not "
			"Cluster or Local",
			ns, name, etp < 0 ? "external" : "internal",
			etp < 0 ? sp->external_traffic_policy : sp->internal_traffic_policy);
		st->stats.bad_objects++;
		return 0;
	}
	if (sp->session_affinity && !strcmp(sp->session_affinity, "ClientIP")) {
		int32_t t = sp->session_affinity_config.client_ip.timeout_seconds;

		base_flags |= SL_SVC_F_AFFINITY;
		affinity_s = t > 0 ? (uint32_t)t : LBM_AFFINITY_DEFAULT_S;
	} else if (sp->session_affinity && strcmp(sp->session_affinity, "None") != 0) {
		pr_warn(SUBSYS,
			"service '%s/%s': skipped: spec.sessionAffinity '%s' is not None or "
			"ClientIP",
			ns, name, sp->session_affinity);
		st->stats.bad_objects++;
		return 0;
	}

	/* External addresses, shared by every port. */
	ext = calloc(sp->external_ips.n + s->status.load_balancer.n_ingress + 1, sizeof(*ext));
	if (!ext)
		return -ENOMEM;
	if (type == SVC_LOADBALANCER) {
		const struct k8s_lb_status *lb = &s->status.load_balancer;

		for (i = 0; i < lb->n_ingress; i++) {
			const struct k8s_lb_ingress *ing = &lb->ingress[i];
			uint32_t a;

			if (!ing->ip || !*ing->ip || ip6_is(ing->ip))
				continue; /* hostname-only, or the other family */
			if (ing->ip_mode && strcmp(ing->ip_mode, "VIP") != 0)
				continue; /* "Proxy": the LB itself delivers to the nodes */
			if (!ip4_parse(ing->ip, &a)) {
				pr_warn(SUBSYS,
					"service '%s/%s': status.loadBalancer.ingress[%zu].ip "
					"'%s' ignored: not an IP address",
					ns, name, i, ing->ip);
				st->stats.bad_objects++;
				continue;
			}
			ext[n_ext++] = (struct ext_addr){a, SL_SVC_F_LOADBALANCER};
		}
	}
	for (i = 0; i < sp->external_ips.n; i++) {
		const char *ip = sp->external_ips.v[i];
		uint32_t a;

		if (ip6_is(ip))
			continue;
		if (!ip4_parse(ip, &a)) {
			pr_warn(SUBSYS,
				"service '%s/%s': spec.externalIPs[%zu] '%s' ignored: not an "
				"IP address",
				ns, name, i, ip);
			st->stats.bad_objects++;
			continue;
		}
		if (!node_addr_has(st, a)) {
			st->stats.foreign_external_ips++;
			continue;
		}
		ext[n_ext++] = (struct ext_addr){a, SL_SVC_F_EXTERNALIP};
	}

	if (VEC_RESERVE(st->services, st->n_services, b->cap_services)) {
		free(ext);
		return -ENOMEM;
	}
	out = &st->services[st->n_services];
	memset(out, 0, sizeof(*out));
	out->ns = strdup(ns);
	out->name = strdup(name);
	st->n_services++;
	if (!out->ns || !out->name) {
		free(ext);
		return -ENOMEM;
	}
	if (sp->n_ports) {
		out->port_names = calloc(sp->n_ports, sizeof(*out->port_names));
		if (!out->port_names) {
			free(ext);
			return -ENOMEM;
		}
		out->n_ports = (uint32_t)sp->n_ports;
		for (i = 0; i < sp->n_ports; i++) {
			out->port_names[i] = strdup(str_or_empty(sp->ports[i].name));
			if (!out->port_names[i]) {
				free(ext);
				return -ENOMEM;
			}
		}
	}
	if (type == SVC_LOADBALANCER && etp && sp->health_check_node_port > 0 &&
	    sp->health_check_node_port <= 65535)
		out->hc_node_port = (uint16_t)sp->health_check_node_port;

	first = slices_find(b, ns, name, &n_slices);
	for (i = 0; i < sp->n_ports && !err; i++) {
		const struct k8s_service_port *p = &sp->ports[i];
		struct port_ctx pc = {
			.s = s,
			.svc = (uint32_t)(st->n_services - 1),
			.rank = rank,
			.port_idx = (uint32_t)i,
			.port_name = str_or_empty(p->name),
			.proto = proto_parse(p->protocol),
			.base_flags = base_flags,
			.affinity_s = affinity_s,
		};
		struct seg cluster, local;
		uint16_t cflags = SL_SVC_F_CLUSTERIP;
		size_t k;

		if (!pc.proto) {
			pr_warn(SUBSYS,
				"service '%s/%s': spec.ports[%zu]: protocol '%s' is not TCP, "
				"UDP or SCTP; port skipped",
				ns, name, i, p->protocol);
			st->stats.bad_objects++;
			continue;
		}
		if (p->port <= 0 || p->port > 65535) {
			pr_warn(SUBSYS,
				"service '%s/%s': spec.ports[%zu]: port %d out of range; "
				"port skipped",
				ns, name, i, p->port);
			st->stats.bad_objects++;
			continue;
		}
		err = eps_gather(b, first, n_slices, pc.port_name, pc.proto);
		if (err)
			break;
		set_plan(b, SET_CLUSTER, &cluster);
		set_plan(b, SET_LOCAL, &local);
		pc.has_any = cluster.count > 0;
		if (out->hc_node_port)
			for (k = 0; k < b->n_eps; k++)
				out->hc_local_endpoints += b->eps[k].local && b->eps[k].ready;

		/* ClusterIP: iTP applies to every client, both scopes hold the local set. */
		if (itp) {
			cflags |= SL_SVC_F_LOCAL_INT;
			err = fe_emit(b, &pc, cip, (uint16_t)p->port, SL_SCOPE_EXT, cflags,
				      SET_LOCAL, &local);
			if (!err)
				err = fe_emit(b, &pc, cip, (uint16_t)p->port, SL_SCOPE_INT, cflags,
					      SET_LOCAL, &local);
		} else {
			err = fe_emit(b, &pc, cip, (uint16_t)p->port, SL_SCOPE_EXT, cflags,
				      SET_CLUSTER, &cluster);
		}

		/* External frontends: eTP Local serves outside clients from the local
		 * set and in-node clients from the cluster set (short circuit). */
		for (k = 0; k <= n_ext && !err; k++) {
			uint32_t a = 0;
			uint16_t port = (uint16_t)p->port, f;

			if (k == n_ext) {
				if (type == SVC_CLUSTERIP || p->node_port <= 0 ||
				    p->node_port > 65535)
					break;
				port = (uint16_t)p->node_port;
				f = SL_SVC_F_NODEPORT;
			} else {
				a = ext[k].addr;
				f = ext[k].flag;
			}
			if (etp) {
				f |= SL_SVC_F_LOCAL_EXT;
				err = fe_emit(b, &pc, a, port, SL_SCOPE_EXT, f, SET_LOCAL, &local);
				if (!err)
					err = fe_emit(b, &pc, a, port, SL_SCOPE_INT, f, SET_CLUSTER,
						      &cluster);
			} else {
				err = fe_emit(b, &pc, a, port, SL_SCOPE_EXT, f, SET_CLUSTER,
					      &cluster);
			}
		}
		if (!err)
			err = drain_push(b, pc.proto);
	}
	free(ext);
	return err;
}

/* --- conflicts and assembly ---------------------------------------------------------------------
 */

static int fe_tmp_cmp(const void *pa, const void *pb)
{
	const struct fe_tmp *a = pa, *b = pb;
	int c = cmp_u32(a->addr, b->addr);

	if (!c)
		c = cmp_u32(a->port, b->port);
	if (!c)
		c = cmp_u32(a->proto, b->proto);
	if (!c)
		c = cmp_u32(a->rank, b->rank);
	if (!c)
		c = cmp_u32(a->port_idx, b->port_idx);
	if (!c)
		c = cmp_u32(a->scope, b->scope);
	if (!c)
		c = cmp_u32(a->seq, b->seq);
	return c;
}

static void fe_describe(const struct fe_tmp *f, char *buf, size_t len)
{
	struct in_addr a = {htonl(f->addr)};
	char ip[INET_ADDRSTRLEN];

	inet_ntop(AF_INET, &a, ip, sizeof(ip));
	snprintf(buf, len, "%s:%u/%s", f->addr ? ip : "<node>", f->port, proto_name(f->proto));
}

/*
 * Keeps, per {addr, port, proto}, only the records of the highest-priority
 * service port; merges a port's duplicate records of one scope (same
 * address as LB IP and externalIP). Returns the number kept (compacted in
 * place) or -ENOMEM.
 */
static ssize_t fes_resolve(struct build *b, const struct k8s_service *const *svc_objs)
{
	size_t i, j, out = 0;

	sort_arr(b->fes, b->n_fes, sizeof(*b->fes), fe_tmp_cmp);
	for (i = 0; i < b->n_fes; i = j) {
		const struct fe_tmp *w = &b->fes[i];
		uint32_t last_rank = UINT32_MAX, last_port = UINT32_MAX;
		size_t group_start = out;

		for (j = i; j < b->n_fes && b->fes[j].addr == w->addr &&
			    b->fes[j].port == w->port && b->fes[j].proto == w->proto;
		     j++) {
			struct fe_tmp *f = &b->fes[j];
			const struct k8s_service *ws, *ls;
			char what[64];

			if (f->rank == w->rank && f->port_idx == w->port_idx) {
				struct fe_tmp *prev = out > group_start ? &b->fes[out - 1] : NULL;

				if (!prev || prev->scope != f->scope) {
					b->fes[out++] = *f;
					continue;
				}
				if (prev->off == f->off && prev->count == f->count &&
				    (prev->flags & ~FE_KIND_MASK) == (f->flags & ~FE_KIND_MASK)) {
					prev->flags |= f->flags;
					continue;
				}
			}
			/* A loser: report once per service port and group. */
			if (f->rank == last_rank && f->port_idx == last_port)
				continue;
			last_rank = f->rank;
			last_port = f->port_idx;
			fe_describe(f, what, sizeof(what));
			ws = svc_objs[w->svc];
			ls = svc_objs[f->svc];
			if (problem_add(b, ls, "FrontendConflict",
					"frontend %s of port '%s' is not programmed: it is already "
					"used by service %s/%s port '%s'",
					what, str_or_empty(ls->spec.ports[f->port_idx].name),
					ws->meta.namespace, ws->meta.name,
					str_or_empty(ws->spec.ports[w->port_idx].name)))
				return -ENOMEM;
		}
	}
	return (ssize_t)out;
}

static int pkey_cmp(const void *pa, const void *pb)
{
	const struct pkey *a = pa, *b = pb;
	int c = cmp_u32(a->addr, b->addr);

	if (!c)
		c = cmp_u32(a->port, b->port);
	if (!c)
		c = cmp_u32(a->proto, b->proto);
	return c;
}

static int be_key_cmp_host(const struct lbm_backend *be, const struct pkey *k)
{
	int c = cmp_u32(ntohl(be->addr), k->addr);

	if (!c)
		c = cmp_u32(ntohs(be->port), k->port);
	if (!c)
		c = cmp_u32(be->proto, k->proto);
	return c;
}

static uint32_t be_find(const struct lbm_state *st, const struct pkey *k)
{
	size_t lo = 0, hi = st->n_backends;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = be_key_cmp_host(&st->backends[mid], k);

		if (!c)
			return (uint32_t)mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return LBM_NO_IDX;
}

/* Backends from the kept frontends' slots and the drain lists; then pool -> indices. */
static int backends_assemble(struct build *b, size_t n_kept)
{
	struct lbm_state *st = b->st;
	struct pkey *all;
	size_t n = 0, i, k, cap = 0;

	for (i = 0; i < n_kept; i++)
		cap += b->fes[i].count;
	for (i = 0; i < b->n_drain; i++)
		cap += b->drain[i].count;
	all = calloc(cap ? cap : 1, sizeof(*all));
	if (!all)
		return -ENOMEM;
	for (i = 0; i < n_kept; i++)
		for (k = 0; k < b->fes[i].count; k++)
			all[n++] = b->pool[b->fes[i].off + k];
	for (i = 0; i < b->n_drain; i++)
		for (k = 0; k < b->drain[i].count; k++)
			all[n++] = b->pool[b->drain[i].off + k];
	sort_arr(all, n, sizeof(*all), pkey_cmp);

	st->backends = calloc(n ? n : 1, sizeof(*st->backends));
	if (!st->backends) {
		free(all);
		return -ENOMEM;
	}
	for (i = 0; i < n; i++) {
		struct lbm_backend *be;

		if (st->n_backends &&
		    !be_key_cmp_host(&st->backends[st->n_backends - 1], &all[i])) {
			be = &st->backends[st->n_backends - 1];
		} else {
			be = &st->backends[st->n_backends++];
			be->addr = htonl(all[i].addr);
			be->port = htons(all[i].port);
			be->proto = all[i].proto;
			be->state = SL_BE_TERMINATING;
		}
		/* One ready use makes it ACTIVE; one local use makes it local. */
		if (all[i].ready)
			be->state = SL_BE_ACTIVE;
		be->local |= all[i].local;
	}
	free(all);

	st->n_slots = b->n_pool;
	st->slots = calloc(b->n_pool ? b->n_pool : 1, sizeof(*st->slots));
	if (!st->slots)
		return -ENOMEM;
	for (i = 0; i < b->n_pool; i++)
		st->slots[i] = be_find(st, &b->pool[i]);
	return 0;
}

static int frontends_assemble(struct build *b, size_t n_kept)
{
	struct lbm_state *st = b->st;
	size_t i;

	st->frontends = calloc(n_kept ? n_kept : 1, sizeof(*st->frontends));
	if (!st->frontends)
		return -ENOMEM;
	for (i = 0; i < n_kept; i++) {
		const struct fe_tmp *f = &b->fes[i];
		struct lbm_frontend *o = &st->frontends[i];

		o->key.addr = htonl(f->addr);
		o->key.port = htons(f->port);
		o->key.proto = f->proto;
		o->key.scope = f->scope;
		o->flags = f->flags;
		o->count = (__u16)f->count;
		o->affinity_s = f->affinity_s;
		o->drop = f->drop;
		o->svc = f->svc;
		o->port_idx = f->port_idx;
		o->be = st->slots + f->off;
		st->services[f->svc].n_frontends++;
	}
	st->n_frontends = n_kept;
	return 0;
}

/* --- node addresses ------------------------------------------------------------------------------
 */

static int be32_cmp(const void *pa, const void *pb)
{
	return cmp_u32(ntohl(*(const __be32 *)pa), ntohl(*(const __be32 *)pb));
}

static int node_addrs_collect(struct build *b)
{
	const struct lbm_input *in = b->in;
	struct lbm_state *st = b->st;
	const struct k8s_node *node = NULL;
	size_t i, n = 0;

	if (!in->node_name)
		return 0;
	for (i = 0; i < in->n_nodes; i++)
		if (in->nodes[i] && in->nodes[i]->meta.name &&
		    !strcmp(in->nodes[i]->meta.name, in->node_name))
			node = in->nodes[i];
	if (!node) {
		pr_debug(SUBSYS, "node '%s': not found; no node addresses (externalIPs unused)",
			 in->node_name);
		return 0;
	}
	st->node_addrs = calloc(node->status.n_addresses + 1, sizeof(*st->node_addrs));
	if (!st->node_addrs)
		return -ENOMEM;
	for (i = 0; i < node->status.n_addresses; i++) {
		const struct k8s_node_address *a = &node->status.addresses[i];
		uint32_t ip;

		if (!a->type ||
		    (strcmp(a->type, "InternalIP") != 0 && strcmp(a->type, "ExternalIP") != 0))
			continue;
		if (!ip4_parse(a->address, &ip))
			continue;
		st->node_addrs[n++] = htonl(ip);
	}
	sort_arr(st->node_addrs, n, sizeof(*st->node_addrs), be32_cmp);
	st->n_node_addrs = 0;
	for (i = 0; i < n; i++)
		if (!st->n_node_addrs || st->node_addrs[st->n_node_addrs - 1] != st->node_addrs[i])
			st->node_addrs[st->n_node_addrs++] = st->node_addrs[i];
	return 0;
}

/* --- build entry points
 * ---------------------------------------------------------------------------- */

static int svc_name_cmp(const struct k8s_service *a, const struct k8s_service *b)
{
	int c = strcmp(a->meta.namespace, b->meta.namespace);

	return c ? c : strcmp(a->meta.name, b->meta.name);
}

/* A service and its position (in the input, then in name order). */
struct svc_ref {
	const struct k8s_service *s;
	uint32_t idx;
};

/* namespace/name, then input position: the first copy of a duplicate comes first. */
static int svc_ref_cmp(const void *pa, const void *pb)
{
	const struct svc_ref *a = pa, *b = pb;
	int c = svc_name_cmp(a->s, b->s);

	return c ? c : cmp_u32(a->idx, b->idx);
}

/* Older services own contested frontends: creationTimestamp, then namespace/name. */
static int rank_cmp(const void *pa, const void *pb)
{
	const struct svc_ref *a = pa, *b = pb;
	const struct k8s_time *ta = &a->s->meta.creation_timestamp;
	const struct k8s_time *tb = &b->s->meta.creation_timestamp;

	if (ta->sec != tb->sec)
		return ta->sec < tb->sec ? -1 : 1;
	if (ta->nsec != tb->nsec)
		return ta->nsec < tb->nsec ? -1 : 1;
	return cmp_u32(a->idx, b->idx);
}

void lbm_state_free(struct lbm_state *st)
{
	size_t i;

	if (!st)
		return;
	for (i = 0; i < st->n_services; i++) {
		free(st->services[i].ns);
		free(st->services[i].name);
		for (uint32_t j = 0; j < st->services[i].n_ports; j++)
			free(st->services[i].port_names[j]);
		free(st->services[i].port_names);
	}
	for (i = 0; i < st->n_problems; i++) {
		free(st->problems[i].ns);
		free(st->problems[i].name);
		free(st->problems[i].message);
	}
	free(st->services);
	free(st->problems);
	free(st->frontends);
	free(st->backends);
	free(st->slots);
	free(st->node_addrs);
	free(st);
}

int lbm_state_build(const struct lbm_input *in, struct lbm_state **out)
{
	const struct k8s_service **svc_objs = NULL;
	struct svc_ref *svcs = NULL;
	struct svc_ref *ranks = NULL;
	uint32_t *rank_of = NULL;
	struct build b = {.in = in};
	size_t n_svcs = 0, i;
	ssize_t kept;
	int err = -ENOMEM;

	if (!in || !out)
		return -EINVAL;
	*out = NULL;
	b.max_be = !in->max_backends			 ? LBM_MAX_BACKENDS_BPF
		   : in->max_backends > LBM_MAX_BACKENDS ? LBM_MAX_BACKENDS
							 : in->max_backends;
	b.st = calloc(1, sizeof(*b.st));
	if (!b.st)
		return -ENOMEM;
	if (node_addrs_collect(&b) || slices_index(&b))
		goto out;

	svcs = calloc(in->n_services + 1, sizeof(*svcs));
	svc_objs = calloc(in->n_services + 1, sizeof(const struct k8s_service *));
	ranks = calloc(in->n_services + 1, sizeof(*ranks));
	rank_of = calloc(in->n_services + 1, sizeof(*rank_of));
	if (!svcs || !svc_objs || !ranks || !rank_of)
		goto out;
	for (i = 0; i < in->n_services; i++) {
		const struct k8s_service *s = in->services[i];

		if (!s)
			continue;
		if (!s->meta.name || !s->meta.namespace) {
			pr_warn(SUBSYS, "service #%zu '%s/%s': skipped: metadata.%s missing", i,
				str_or_empty(s->meta.namespace), str_or_empty(s->meta.name),
				s->meta.name ? "namespace" : "name");
			b.st->stats.bad_objects++;
			continue;
		}
		svcs[n_svcs++] = (struct svc_ref){s, (uint32_t)i};
	}
	sort_arr(svcs, n_svcs, sizeof(*svcs), svc_ref_cmp);
	for (i = 0; i < n_svcs; i++)
		ranks[i] = (struct svc_ref){svcs[i].s, (uint32_t)i};
	sort_arr(ranks, n_svcs, sizeof(*ranks), rank_cmp);
	for (i = 0; i < n_svcs; i++)
		rank_of[ranks[i].idx] = (uint32_t)i;

	for (i = 0; i < n_svcs; i++) {
		size_t before = b.st->n_services;

		if (i && !svc_name_cmp(svcs[i - 1].s, svcs[i].s)) {
			pr_warn(SUBSYS, "service '%s/%s': duplicate in input; later copy skipped",
				svcs[i].s->meta.namespace, svcs[i].s->meta.name);
			b.st->stats.bad_objects++;
			continue;
		}
		err = svc_build(&b, svcs[i].s, rank_of[i]);
		if (err)
			goto out;
		if (b.st->n_services > before)
			svc_objs[before] = svcs[i].s;
	}
	err = -ENOMEM;
	kept = fes_resolve(&b, svc_objs);
	if (kept < 0)
		goto out;
	if (backends_assemble(&b, (size_t)kept) || frontends_assemble(&b, (size_t)kept))
		goto out;
	*out = b.st;
	b.st = NULL;
	err = 0;
out:
	if (err)
		pr_err(SUBSYS, "build failed: %s", sl_strerror(err));
	lbm_state_free(b.st);
	free(b.slices);
	free(b.eps);
	free(b.pool);
	free(b.drain);
	free(b.fes);
	free(svcs);
	free(svc_objs);
	free(ranks);
	free(rank_of);
	return err;
}

/* Decodes every element of a JSON array with `decode`; bad elements are logged and skipped. */
typedef int (*decode_fn)(struct json_object *json, void **out, char *err, size_t errlen);

static int svc_decode(struct json_object *j, void **o, char *e, size_t l)
{
	return k8s_service_decode(j, (struct k8s_service **)o, e, l);
}

static int slice_decode(struct json_object *j, void **o, char *e, size_t l)
{
	return k8s_endpointslice_decode(j, (struct k8s_endpointslice **)o, e, l);
}

static int node_decode(struct json_object *j, void **o, char *e, size_t l)
{
	return k8s_node_decode(j, (struct k8s_node **)o, e, l);
}

static int decode_all(struct json_object *arr, const char *what, decode_fn fn, void ***objs,
		      size_t *n, uint32_t *bad)
{
	size_t len, i;

	*objs = NULL;
	*n = 0;
	if (!arr)
		return 0;
	if (!json_object_is_type(arr, json_type_array)) {
		pr_err(SUBSYS, "%s list: not a JSON array", what);
		return -EINVAL;
	}
	len = json_object_array_length(arr);
	*objs = calloc(len + 1, sizeof(**objs));
	if (!*objs)
		return -ENOMEM;
	for (i = 0; i < len; i++) {
		struct json_object *el = json_object_array_get_idx(arr, i);
		struct json_object *nm = sl_json_path(el, "metadata", "name", (char *)NULL);
		struct json_object *nsj = sl_json_path(el, "metadata", "namespace", (char *)NULL);
		char err[256] = "";
		void *obj = NULL;
		int r = fn(el, &obj, err, sizeof(err));

		if (r == -ENOMEM)
			return r;
		if (r) {
			pr_warn(SUBSYS, "%s #%zu '%s%s%s': skipped: %s", what, i,
				json_object_is_type(nsj, json_type_string)
					? json_object_get_string(nsj)
					: "",
				json_object_is_type(nsj, json_type_string) ? "/" : "",
				json_object_is_type(nm, json_type_string)
					? json_object_get_string(nm)
					: "",
				err[0] ? err : sl_strerror(r));
			(*bad)++;
			continue;
		}
		(*objs)[(*n)++] = obj;
	}
	return 0;
}

int lbm_state_build_json(const char *node_name, struct json_object *services,
			 struct json_object *slices, struct json_object *nodes,
			 struct lbm_state **out)
{
	void **sv = NULL, **sl = NULL, **nd = NULL;
	size_t n_sv = 0, n_sl = 0, n_nd = 0, i;
	uint32_t bad = 0;
	int err;

	if (!out)
		return -EINVAL;
	*out = NULL;
	err = decode_all(services, "service", svc_decode, &sv, &n_sv, &bad);
	if (!err)
		err = decode_all(slices, "endpointslice", slice_decode, &sl, &n_sl, &bad);
	if (!err)
		err = decode_all(nodes, "node", node_decode, &nd, &n_nd, &bad);
	if (!err) {
		struct lbm_input in = {
			.node_name = node_name,
			.services = (const struct k8s_service *const *)sv,
			.n_services = n_sv,
			.slices = (const struct k8s_endpointslice *const *)sl,
			.n_slices = n_sl,
			.nodes = (const struct k8s_node *const *)nd,
			.n_nodes = n_nd,
		};

		err = lbm_state_build(&in, out);
		if (!err)
			(*out)->stats.bad_objects += bad;
	}
	for (i = 0; sv && sv[i]; i++)
		k8s_service_free(sv[i]);
	for (i = 0; sl && sl[i]; i++)
		k8s_endpointslice_free(sl[i]);
	for (i = 0; nd && nd[i]; i++)
		k8s_node_free(nd[i]);
	free(sv);
	free(sl);
	free(nd);
	return err;
}

/* --- lookups and dump
 * ------------------------------------------------------------------------------ */

static int key_cmp(const struct sl_svc_key *a, const struct sl_svc_key *b)
{
	int c = cmp_u32(ntohl(a->addr), ntohl(b->addr));

	if (!c)
		c = cmp_u32(ntohs(a->port), ntohs(b->port));
	if (!c)
		c = cmp_u32(a->proto, b->proto);
	if (!c)
		c = cmp_u32(a->scope, b->scope);
	return c;
}

static int be_cmp(const struct lbm_backend *a, const struct lbm_backend *b)
{
	int c = cmp_u32(ntohl(a->addr), ntohl(b->addr));

	if (!c)
		c = cmp_u32(ntohs(a->port), ntohs(b->port));
	if (!c)
		c = cmp_u32(a->proto, b->proto);
	return c;
}

ssize_t lbm_state_find_frontend(const struct lbm_state *st, const struct sl_svc_key *key)
{
	size_t lo = 0, hi;

	if (!st || !key)
		return -1;
	hi = st->n_frontends;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = key_cmp(&st->frontends[mid].key, key);

		if (!c)
			return (ssize_t)mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

static void dump_addr_port(struct sl_buf *b, __be32 addr, __be16 port, __u8 proto)
{
	char ip[INET_ADDRSTRLEN];
	struct in_addr a = {addr};

	inet_ntop(AF_INET, &a, ip, sizeof(ip));
	sl_buf_printf(b, "%s:%u/%s", ip, ntohs(port), proto_name(proto));
}

void lbm_state_dump(const struct lbm_state *st, struct sl_buf *b)
{
	static const struct {
		uint16_t bit;
		const char *name;
	} names[] = {
		{SL_SVC_F_CLUSTERIP, "CLUSTERIP"},   {SL_SVC_F_NODEPORT, "NODEPORT"},
		{SL_SVC_F_EXTERNALIP, "EXTERNALIP"}, {SL_SVC_F_LOADBALANCER, "LOADBALANCER"},
		{SL_SVC_F_LOCAL_EXT, "LOCAL_EXT"},   {SL_SVC_F_LOCAL_INT, "LOCAL_INT"},
		{SL_SVC_F_AFFINITY, "AFFINITY"},     {SL_SVC_F_TERMINATING, "TERMINATING"},
		{SL_SVC_F_MAGLEV, "MAGLEV"},
	};
	size_t i, k;

	if (!st || !b)
		return;
	for (i = 0; i < st->n_frontends; i++) {
		const struct lbm_frontend *f = &st->frontends[i];
		const char *sep = "";

		sl_buf_puts(b, "fe ");
		dump_addr_port(b, f->key.addr, f->key.port, f->key.proto);
		sl_buf_printf(b, " %s ", f->key.scope == SL_SCOPE_INT ? "int" : "ext");
		for (k = 0; k < sizeof(names) / sizeof(names[0]); k++) {
			if (!(f->flags & names[k].bit))
				continue;
			sl_buf_printf(b, "%s%s", sep, names[k].name);
			sep = "|";
		}
		if (f->flags & SL_SVC_F_AFFINITY)
			sl_buf_printf(b, " aff=%u", f->affinity_s);
		if (!f->count) {
			sl_buf_puts(b, f->drop ? " drop\n" : " reject\n");
			continue;
		}
		sl_buf_puts(b, " [");
		for (k = 0; k < f->count; k++) {
			const struct lbm_backend *be = &st->backends[f->be[k]];
			char ip[INET_ADDRSTRLEN];
			struct in_addr a = {be->addr};

			inet_ntop(AF_INET, &a, ip, sizeof(ip));
			sl_buf_printf(b, "%s%s:%u", k ? " " : "", ip, ntohs(be->port));
		}
		sl_buf_puts(b, "]\n");
	}
	for (i = 0; i < st->n_backends; i++) {
		const struct lbm_backend *be = &st->backends[i];

		sl_buf_puts(b, "be ");
		dump_addr_port(b, be->addr, be->port, be->proto);
		sl_buf_printf(b, " %s %s\n", be->state == SL_BE_ACTIVE ? "active" : "terminating",
			      be->local ? "local" : "remote");
	}
	for (i = 0; i < st->n_services; i++)
		if (st->services[i].hc_node_port)
			sl_buf_printf(b, "hc %s/%s port=%u local=%u\n", st->services[i].ns,
				      st->services[i].name, st->services[i].hc_node_port,
				      st->services[i].hc_local_endpoints);
	for (i = 0; i < st->n_problems; i++)
		sl_buf_printf(b, "problem %s/%s %s: %s\n", st->problems[i].ns, st->problems[i].name,
			      st->problems[i].reason, st->problems[i].message);
}

/* --- diff
 * ------------------------------------------------------------------------------------------ */

static bool fe_equal(const struct lbm_state *pa, const struct lbm_frontend *a,
		     const struct lbm_state *pb, const struct lbm_frontend *b)
{
	size_t i;

	if (a->flags != b->flags || a->count != b->count || a->drop != b->drop ||
	    a->affinity_s != b->affinity_s)
		return false;
	for (i = 0; i < a->count; i++)
		if (be_cmp(&pa->backends[a->be[i]], &pb->backends[b->be[i]]))
			return false;
	return true;
}

static int op_push(struct lbm_ops *ops, size_t *cap, enum lbm_op_kind kind, size_t prev_idx,
		   size_t next_idx)
{
	if (VEC_RESERVE(ops->v, ops->n, *cap))
		return -ENOMEM;
	ops->v[ops->n++] = (struct lbm_op){kind, (uint32_t)prev_idx, (uint32_t)next_idx};
	return 0;
}

enum fe_pass {
	PASS_UPSERT_INT,
	PASS_UPSERT_EXT,
	PASS_DELETE_EXT,
	PASS_DELETE_INT,
};

static int diff_frontends(const struct lbm_state *p, const struct lbm_state *n, enum fe_pass pass,
			  struct lbm_ops *ops, size_t *cap)
{
	size_t np = p ? p->n_frontends : 0, nn = n ? n->n_frontends : 0, i = 0, j = 0;
	bool upsert = pass == PASS_UPSERT_INT || pass == PASS_UPSERT_EXT;
	uint8_t scope =
		pass == PASS_UPSERT_INT || pass == PASS_DELETE_INT ? SL_SCOPE_INT : SL_SCOPE_EXT;
	int err = 0;

	while ((i < np || j < nn) && !err) {
		int c = i == np	  ? 1
			: j == nn ? -1
				  : key_cmp(&p->frontends[i].key, &n->frontends[j].key);

		if (c < 0) {
			if (!upsert && p->frontends[i].key.scope == scope)
				err = op_push(ops, cap, LBM_OP_FRONTEND_DELETE, i, LBM_NO_IDX);
			i++;
		} else if (c > 0) {
			if (upsert && n->frontends[j].key.scope == scope)
				err = op_push(ops, cap, LBM_OP_FRONTEND_UPSERT, LBM_NO_IDX, j);
			j++;
		} else {
			if (upsert && n->frontends[j].key.scope == scope &&
			    !fe_equal(p, &p->frontends[i], n, &n->frontends[j]))
				err = op_push(ops, cap, LBM_OP_FRONTEND_UPSERT, i, j);
			i++;
			j++;
		}
	}
	return err;
}

static int diff_backends(const struct lbm_state *p, const struct lbm_state *n, bool removes,
			 struct lbm_ops *ops, size_t *cap)
{
	size_t np = p ? p->n_backends : 0, nn = n ? n->n_backends : 0, i = 0, j = 0;
	int err = 0;

	while ((i < np || j < nn) && !err) {
		int c = i == np ? 1 : j == nn ? -1 : be_cmp(&p->backends[i], &n->backends[j]);

		if (c < 0) {
			if (removes)
				err = op_push(ops, cap, LBM_OP_BACKEND_REMOVE, i, LBM_NO_IDX);
			i++;
		} else if (c > 0) {
			if (!removes)
				err = op_push(ops, cap, LBM_OP_BACKEND_ADD, LBM_NO_IDX, j);
			j++;
		} else {
			if (!removes && (p->backends[i].state != n->backends[j].state ||
					 p->backends[i].local != n->backends[j].local))
				err = op_push(ops, cap, LBM_OP_BACKEND_UPDATE, i, j);
			i++;
			j++;
		}
	}
	return err;
}

int lbm_diff(const struct lbm_state *prev, const struct lbm_state *next, struct lbm_ops *out)
{
	size_t cap = 0;
	int err;

	if (!out)
		return -EINVAL;
	out->v = NULL;
	out->n = 0;
	err = diff_backends(prev, next, false, out, &cap);
	if (!err)
		err = diff_frontends(prev, next, PASS_UPSERT_INT, out, &cap);
	if (!err)
		err = diff_frontends(prev, next, PASS_UPSERT_EXT, out, &cap);
	if (!err)
		err = diff_frontends(prev, next, PASS_DELETE_EXT, out, &cap);
	if (!err)
		err = diff_frontends(prev, next, PASS_DELETE_INT, out, &cap);
	if (!err)
		err = diff_backends(prev, next, true, out, &cap);
	if (err)
		lbm_ops_fini(out);
	return err;
}

void lbm_ops_fini(struct lbm_ops *ops)
{
	if (!ops)
		return;
	free(ops->v);
	ops->v = NULL;
	ops->n = 0;
}
