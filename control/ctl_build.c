// SPDX-License-Identifier: Apache-2.0
/*
 * The pure half of the EndpointSlice and Endpoints controllers: which pods
 * back a Service, how each Service port resolves on each pod, and what the
 * slices and the Endpoints object should contain. No I/O; the controller
 * (ctl_endpoints.c) feeds it informer snapshots and executes the plan.
 *
 * Semantics follow kube-controller-manager (pkg/controller/endpointslice and
 * endpoint): a pod is an endpoint when it has status.podIP and is neither
 * Succeeded nor Failed; conditions per KEP-1669 (ready = Ready and not
 * terminating, serving = Ready, terminating = deletionTimestamp set;
 * publishNotReadyAddresses makes both true); pods whose named ports resolve
 * differently land in different slices (one port list per slice); hostname
 * is set when spec.hostname is set and spec.subdomain names the Service.
 * Legacy Endpoints leave terminating pods out unless publishNotReadyAddresses.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "sluice/json.h"

static const char *proto_or_tcp(const char *p)
{
	return p && *p ? p : "TCP";
}

int ctl_target_port(const struct k8s_service_port *sp, const struct k8s_pod *pod)
{
	const char *proto = proto_or_tcp(sp->protocol);

	switch (sp->target_port.type) {
	case K8S_INTSTR_NONE:
		return sp->port;
	case K8S_INTSTR_INT:
		return sp->target_port.ival > 0 ? sp->target_port.ival : sp->port;
	case K8S_INTSTR_STR:
		break;
	}
	if (!sp->target_port.sval || !*sp->target_port.sval)
		return sp->port;
	for (size_t i = 0; i < pod->spec.n_containers; i++) {
		const struct k8s_container *c = &pod->spec.containers[i];
		for (size_t j = 0; j < c->n_ports; j++) {
			const struct k8s_container_port *cp = &c->ports[j];
			if (cp->name && !strcmp(cp->name, sp->target_port.sval) &&
			    !strcmp(proto_or_tcp(cp->protocol), proto) && cp->container_port > 0)
				return cp->container_port;
		}
	}
	return -ENOENT;
}

bool ctl_selector_matches(const struct k8s_service *svc, const struct k8s_pod *pod)
{
	if (!svc->spec.selector.n)
		return false;
	for (size_t i = 0; i < svc->spec.selector.n; i++) {
		const struct k8s_kv *kv = &svc->spec.selector.v[i];
		const char *v = k8s_strmap_get(&pod->meta.labels, kv->key);
		if (!v || strcmp(v, kv->value))
			return false;
	}
	return true;
}

static bool pod_terminal(const struct k8s_pod *pod)
{
	const char *ph = pod->status.phase;
	return ph && (!strcmp(ph, "Succeeded") || !strcmp(ph, "Failed"));
}

static bool pod_terminating(const struct k8s_pod *pod)
{
	return k8s_time_is_set(&pod->meta.deletion_timestamp);
}

/* IPv4 only for now: slices are written with addressType IPv4 (an IPv6 pod IP
 * would make the whole slice invalid). */
static bool ipv4(const char *s)
{
	struct in_addr a;

	return s && inet_pton(AF_INET, s, &a) == 1;
}

/* A pod that backs the Service in slices (terminating pods stay, marked). */
static bool pod_is_endpoint(const struct k8s_service *svc, const struct k8s_pod *pod)
{
	return ipv4(pod->status.pod_ip) && !pod_terminal(pod) &&
	       (!pod->meta.namespace || !svc->meta.namespace ||
		!strcmp(pod->meta.namespace, svc->meta.namespace)) &&
	       ctl_selector_matches(svc, pod);
}

static const char *pod_hostname(const struct k8s_service *svc, const struct k8s_pod *pod)
{
	if (pod->spec.hostname && *pod->spec.hostname && pod->spec.subdomain && svc->meta.name &&
	    !strcmp(pod->spec.subdomain, svc->meta.name))
		return pod->spec.hostname;
	return NULL;
}

static bool svc_headless(const struct k8s_service *svc)
{
	return svc->spec.cluster_ip && !strcmp(svc->spec.cluster_ip, "None");
}

/* The resolved ports of one pod, in Service port order; unresolvable ports are
 * left out, as upstream does. `legacy` writes Endpoints ports (no name when the
 * Service port has none), otherwise EndpointSlice ports (name always present). */
static struct json_object *pod_ports(const struct k8s_service *svc, const struct k8s_pod *pod,
				     bool legacy)
{
	struct json_object *arr = json_object_new_array();

	if (!arr)
		return NULL;
	for (size_t i = 0; i < svc->spec.n_ports; i++) {
		const struct k8s_service_port *sp = &svc->spec.ports[i];
		int port = ctl_target_port(sp, pod);
		struct json_object *p;

		if (port <= 0)
			continue;
		p = json_object_new_object();
		if (!p || json_object_array_add(arr, p)) {
			json_object_put(p);
			json_object_put(arr);
			return NULL;
		}
		if (!legacy || (sp->name && *sp->name))
			sl_json_set_str(p, "name", sp->name ? sp->name : "");
		sl_json_set_int(p, "port", port);
		sl_json_set_str(p, "protocol", proto_or_tcp(sp->protocol));
		if (sp->app_protocol)
			sl_json_set_str(p, "appProtocol", sp->app_protocol);
	}
	return arr;
}

static struct json_object *target_ref(const struct k8s_pod *pod)
{
	struct json_object *r = json_object_new_object();

	if (!r)
		return NULL;
	sl_json_set_str(r, "kind", "Pod");
	if (pod->meta.namespace)
		sl_json_set_str(r, "namespace", pod->meta.namespace);
	if (pod->meta.name)
		sl_json_set_str(r, "name", pod->meta.name);
	if (pod->meta.uid)
		sl_json_set_str(r, "uid", pod->meta.uid);
	return r;
}

static struct json_object *slice_endpoint(const struct k8s_service *svc, const struct k8s_pod *pod)
{
	struct json_object *ep = json_object_new_object(), *addrs, *cond;
	bool ready = k8s_pod_ready(pod), term = pod_terminating(pod);
	const char *hn = pod_hostname(svc, pod);

	if (!ep)
		return NULL;
	addrs = json_object_new_array();
	cond = json_object_new_object();
	if (!addrs || !cond) {
		json_object_put(addrs);
		json_object_put(cond);
		json_object_put(ep);
		return NULL;
	}
	json_object_array_add(addrs, json_object_new_string(pod->status.pod_ip));
	json_object_object_add(ep, "addresses", addrs);
	if (svc->spec.publish_not_ready_addresses) {
		json_object_object_add(cond, "ready", json_object_new_boolean(1));
		json_object_object_add(cond, "serving", json_object_new_boolean(1));
	} else {
		json_object_object_add(cond, "ready", json_object_new_boolean(ready && !term));
		json_object_object_add(cond, "serving", json_object_new_boolean(ready));
	}
	json_object_object_add(cond, "terminating", json_object_new_boolean(term));
	json_object_object_add(ep, "conditions", cond);
	if (hn)
		sl_json_set_str(ep, "hostname", hn);
	if (pod->spec.node_name && *pod->spec.node_name)
		sl_json_set_str(ep, "nodeName", pod->spec.node_name);
	json_object_object_add(ep, "targetRef", target_ref(pod));
	return ep;
}

static const char *ep_address(const struct json_object *ep)
{
	struct json_object *a = sl_json_get(ep, "addresses");

	if (!a || !json_object_is_type(a, json_type_array) || !json_object_array_length(a))
		return NULL;
	return json_object_get_string(json_object_array_get_idx(a, 0));
}

/* --- slices ------------------------------------------------------------------------------------
 */

/* Desired endpoints that share one port list. */
struct group {
	struct json_object *ports;
	struct json_object **eps; /* owned */
	bool *placed;
	size_t n, cap;
};

struct groups {
	struct group *v;
	size_t n;
};

static void groups_fini(struct groups *g)
{
	for (size_t i = 0; i < g->n; i++) {
		json_object_put(g->v[i].ports);
		for (size_t j = 0; j < g->v[i].n; j++)
			json_object_put(g->v[i].eps[j]);
		free(g->v[i].eps);
		free(g->v[i].placed);
	}
	free(g->v);
}

static struct group *groups_find(struct groups *g, struct json_object *ports)
{
	for (size_t i = 0; i < g->n; i++)
		if (sl_json_equal(g->v[i].ports, ports))
			return &g->v[i];
	return NULL;
}

/* Adds ep (consumed) under ports (borrowed; cloned when a group is created). */
static int groups_add(struct groups *g, struct json_object *ports, struct json_object *ep)
{
	struct group *gr = groups_find(g, ports);

	if (!gr) {
		struct group *v = realloc(g->v, (g->n + 1) * sizeof(*v));
		if (!v)
			goto nomem;
		g->v = v;
		gr = &g->v[g->n];
		memset(gr, 0, sizeof(*gr));
		gr->ports = json_object_get(ports);
		g->n++;
	}
	if (gr->n == gr->cap) {
		size_t cap = gr->cap ? gr->cap * 2 : 8;
		struct json_object **e = realloc(gr->eps, cap * sizeof(*e));
		bool *p;
		if (!e)
			goto nomem;
		gr->eps = e;
		p = realloc(gr->placed, cap * sizeof(*p));
		if (!p)
			goto nomem;
		gr->placed = p;
		gr->cap = cap;
	}
	gr->eps[gr->n] = ep;
	gr->placed[gr->n] = false;
	gr->n++;
	return 0;
nomem:
	json_object_put(ep);
	return -ENOMEM;
}

static int cmp_addr(const void *a, const void *b)
{
	const char *x = ep_address(*(struct json_object *const *)a);
	const char *y = ep_address(*(struct json_object *const *)b);
	return strcmp(x ? x : "", y ? y : "");
}

/* A slice being planned: an existing one (src != NULL) or a new one. */
struct pslice {
	struct json_object *src; /* existing slice (borrowed) or NULL */
	struct group *gr;	 /* its port group, NULL if none matches */
	struct json_object *eps; /* new endpoints array (owned) */
	bool changed;
};

static int plan_push(struct json_object ***v, size_t *n, struct json_object *o)
{
	struct json_object **nv = realloc(*v, (*n + 1) * sizeof(*nv));

	if (!nv) {
		json_object_put(o);
		return -ENOMEM;
	}
	nv[(*n)++] = o;
	*v = nv;
	return 0;
}

static struct json_object *desired_labels(const struct k8s_service *svc)
{
	struct json_object *l = json_object_new_object();

	if (!l)
		return NULL;
	for (size_t i = 0; i < svc->meta.labels.n; i++) {
		const char *k = svc->meta.labels.v[i].key;
		if (!strcmp(k, K8S_LABEL_SERVICE_NAME) || !strcmp(k, CTL_MANAGED_BY_LABEL) ||
		    !strcmp(k, CTL_HEADLESS_LABEL))
			continue;
		sl_json_set_str(l, k, svc->meta.labels.v[i].value);
	}
	sl_json_set_str(l, K8S_LABEL_SERVICE_NAME, svc->meta.name);
	sl_json_set_str(l, CTL_MANAGED_BY_LABEL, CTL_MANAGED_BY);
	if (svc_headless(svc))
		sl_json_set_str(l, CTL_HEADLESS_LABEL, "");
	return l;
}

static struct json_object *owner_refs(const struct k8s_service *svc)
{
	struct json_object *arr = json_object_new_array(), *o = json_object_new_object();

	if (!arr || !o) {
		json_object_put(arr);
		json_object_put(o);
		return NULL;
	}
	sl_json_set_str(o, "apiVersion", "v1");
	sl_json_set_str(o, "kind", "Service");
	sl_json_set_str(o, "name", svc->meta.name);
	sl_json_set_str(o, "uid", svc->meta.uid ? svc->meta.uid : "");
	json_object_object_add(o, "controller", json_object_new_boolean(1));
	json_object_object_add(o, "blockOwnerDeletion", json_object_new_boolean(1));
	json_object_array_add(arr, o);
	return arr;
}

/* Builds the object to write for a planned slice; NULL on ENOMEM. */
static struct json_object *slice_object(const struct k8s_service *svc, struct pslice *ps,
					struct json_object *labels, struct json_object *owners)
{
	struct json_object *o, *meta;
	struct json_object *ports = ps->gr ? ps->gr->ports : NULL;

	if (ps->src) {
		o = sl_json_clone(ps->src);
	} else {
		char gen[300];
		o = json_object_new_object();
		if (o) {
			sl_json_set_str(o, "apiVersion", "discovery.k8s.io/v1");
			sl_json_set_str(o, "kind", "EndpointSlice");
			meta = sl_json_ensure_obj(o, "metadata");
			/* kube's generator keeps 58 characters of the base. */
			snprintf(gen, sizeof(gen), "%.57s-", svc->meta.name);
			sl_json_set_str(meta, "generateName", gen);
			sl_json_set_str(meta, "namespace", svc->meta.namespace);
		}
	}
	if (!o)
		return NULL;
	meta = sl_json_ensure_obj(o, "metadata");
	json_object_object_add(meta, "labels", sl_json_clone(labels));
	json_object_object_add(meta, "ownerReferences", sl_json_clone(owners));
	sl_json_set_str(o, "addressType", "IPv4");
	json_object_object_add(o, "endpoints", json_object_get(ps->eps));
	json_object_object_add(o, "ports", ports ? sl_json_clone(ports) : json_object_new_array());
	return o;
}

static bool slice_meta_current(struct json_object *src, struct json_object *labels,
			       struct json_object *owners)
{
	struct json_object *meta = sl_json_get(src, "metadata");
	const char *at = sl_json_get_str(src, "addressType");

	return at && !strcmp(at, "IPv4") && sl_json_equal(sl_json_get(meta, "labels"), labels) &&
	       sl_json_equal(sl_json_get(meta, "ownerReferences"), owners);
}

int ctl_slices_plan(const struct k8s_service *svc, struct k8s_pod *const *pods, size_t n_pods,
		    struct json_object *const *existing, size_t n_existing, size_t max_per_slice,
		    struct ctl_slice_plan *out)
{
	struct groups g = {0};
	struct pslice *ps = NULL;
	size_t n_ps = 0, total = 0;
	struct json_object *labels = NULL, *owners = NULL;
	int err = -ENOMEM;

	memset(out, 0, sizeof(*out));
	if (!max_per_slice)
		max_per_slice = CTL_MAX_ENDPOINTS_PER_SLICE;

	/* 1. The desired endpoints, grouped by their resolved port list. */
	for (size_t i = 0; i < n_pods; i++) {
		struct json_object *ports, *ep;
		if (!pod_is_endpoint(svc, pods[i]))
			continue;
		ports = pod_ports(svc, pods[i], false);
		ep = ports ? slice_endpoint(svc, pods[i]) : NULL;
		if (!ep) {
			json_object_put(ports);
			goto out;
		}
		err = groups_add(&g, ports, ep);
		json_object_put(ports);
		if (err)
			goto out;
		err = -ENOMEM;
		total++;
	}
	for (size_t i = 0; i < g.n; i++)
		qsort(g.v[i].eps, g.v[i].n, sizeof(g.v[i].eps[0]), cmp_addr);
	labels = desired_labels(svc);
	owners = owner_refs(svc);
	ps = calloc(n_existing + total + 2, sizeof(*ps)); /* a new slice holds >= 1 endpoint */
	if (!labels || !owners || !ps)
		goto out;

	/* 2. Existing slices keep the endpoints that are still wanted, in place. */
	for (size_t i = 0; i < n_existing; i++) {
		struct pslice *p = &ps[n_ps++];
		struct json_object *eps = sl_json_get(existing[i], "endpoints");
		struct json_object *ports = sl_json_get(existing[i], "ports");
		struct json_object *empty = NULL;
		size_t ne = eps && json_object_is_type(eps, json_type_array)
				    ? json_object_array_length(eps)
				    : 0;

		p->src = existing[i];
		if (!ports) {
			empty = json_object_new_array();
			ports = empty;
		}
		p->gr = ports ? groups_find(&g, ports) : NULL;
		json_object_put(empty);
		p->eps = json_object_new_array();
		if (!p->eps)
			goto out;
		p->changed = !slice_meta_current(p->src, labels, owners);
		for (size_t j = 0; j < ne; j++) {
			struct json_object *ep = json_object_array_get_idx(eps, j);
			const char *a = ep_address(ep);
			bool kept = false;
			for (size_t k = 0; p->gr && a && k < p->gr->n; k++) {
				const char *d = ep_address(p->gr->eps[k]);
				if (p->gr->placed[k] || strcmp(a, d))
					continue;
				if (json_object_array_length(p->eps) >= max_per_slice)
					break;
				p->gr->placed[k] = true;
				json_object_array_add(p->eps, json_object_get(p->gr->eps[k]));
				if (!sl_json_equal(ep, p->gr->eps[k]))
					p->changed = true;
				kept = true;
				break;
			}
			if (!kept)
				p->changed = true;
		}
	}

	/* 3. The rest fill slices that change anyway, then slices with room, then new
	 * ones: fewer writes than rebalancing (upstream's "minimal churn"). */
	for (int pass = 0; pass < 3; pass++) {
		for (size_t gi = 0; gi < g.n; gi++) {
			struct group *gr = &g.v[gi];
			for (size_t k = 0; k < gr->n; k++) {
				struct pslice *dst = NULL;
				if (gr->placed[k])
					continue;
				for (size_t s = 0; s < n_ps && !dst; s++) {
					struct pslice *p = &ps[s];
					if (p->gr != gr ||
					    json_object_array_length(p->eps) >= max_per_slice)
						continue;
					if (pass == 0 && !p->changed)
						continue;
					dst = p;
				}
				if (!dst && pass == 2) {
					dst = &ps[n_ps++];
					dst->gr = gr;
					dst->changed = true;
					dst->eps = json_object_new_array();
					if (!dst->eps)
						goto out;
				}
				if (!dst)
					continue;
				gr->placed[k] = true;
				dst->changed = true;
				json_object_array_add(dst->eps, json_object_get(gr->eps[k]));
			}
		}
	}

	/* 4. Writes. Empty slices go, except that a Service without endpoints keeps
	 * one empty placeholder slice, as upstream. */
	{
		bool have_placeholder = false;
		for (size_t s = 0; s < n_ps; s++) {
			struct pslice *p = &ps[s];
			bool empty = json_object_array_length(p->eps) == 0;
			struct json_object *o;
			if (empty && total == 0 && !have_placeholder && p->src) {
				have_placeholder = true;
				if (p->gr == NULL) {
					/* Make it the placeholder: no ports. */
					struct json_object *ports = sl_json_get(p->src, "ports");
					if (ports && json_object_array_length(ports))
						p->changed = true;
				}
				p->gr = NULL;
			} else if (empty) {
				if (p->src) {
					const char *name = sl_json_get_str(
						sl_json_get(p->src, "metadata"), "name");
					char *dup = strdup(name ? name : "");
					char **nv =
						realloc(out->del, (out->n_del + 1) * sizeof(*nv));
					if (!dup || !nv) {
						free(dup);
						if (nv)
							out->del = nv;
						goto out;
					}
					out->del = nv;
					out->del[out->n_del++] = dup;
				}
				continue;
			}
			if (!p->changed) {
				out->n_unchanged++;
				continue;
			}
			o = slice_object(svc, p, labels, owners);
			if (!o)
				goto out;
			if (p->src ? plan_push(&out->update, &out->n_update, o)
				   : plan_push(&out->create, &out->n_create, o))
				goto out;
		}
		if (total == 0 && !have_placeholder) {
			struct pslice p = {.eps = json_object_new_array()};
			struct json_object *o =
				p.eps ? slice_object(svc, &p, labels, owners) : NULL;
			json_object_put(p.eps);
			if (!o || plan_push(&out->create, &out->n_create, o))
				goto out;
		}
	}
	err = 0;
out:
	for (size_t s = 0; s < n_ps; s++)
		json_object_put(ps[s].eps);
	free(ps);
	json_object_put(labels);
	json_object_put(owners);
	groups_fini(&g);
	if (err)
		ctl_slice_plan_fini(out);
	return err;
}

void ctl_slice_plan_fini(struct ctl_slice_plan *p)
{
	for (size_t i = 0; i < p->n_create; i++)
		json_object_put(p->create[i]);
	for (size_t i = 0; i < p->n_update; i++)
		json_object_put(p->update[i]);
	for (size_t i = 0; i < p->n_del; i++)
		free(p->del[i]);
	free(p->create);
	free(p->update);
	free(p->del);
	memset(p, 0, sizeof(*p));
}

/* --- legacy Endpoints ------------------------------------------------------------------------ */

struct subset {
	struct json_object *ports;
	struct json_object *ready;     /* addresses */
	struct json_object *not_ready; /* notReadyAddresses */
};

static int cmp_port(const void *a, const void *b)
{
	struct json_object *x = *(struct json_object *const *)a;
	struct json_object *y = *(struct json_object *const *)b;
	const char *nx = sl_json_get_str(x, "name"), *ny = sl_json_get_str(y, "name");
	int64_t px = 0, py = 0;
	int c = strcmp(nx ? nx : "", ny ? ny : "");

	if (c)
		return c;
	sl_json_get_int(x, "port", &px);
	sl_json_get_int(y, "port", &py);
	if (px != py)
		return px < py ? -1 : 1;
	return strcmp(sl_json_get_str(x, "protocol") ?: "", sl_json_get_str(y, "protocol") ?: "");
}

static int cmp_ep_addr(const void *a, const void *b)
{
	const char *x = sl_json_get_str(*(struct json_object *const *)a, "ip");
	const char *y = sl_json_get_str(*(struct json_object *const *)b, "ip");
	return strcmp(x ? x : "", y ? y : "");
}

static int cmp_subset(const void *a, const void *b)
{
	const struct subset *x = a, *y = b;
	const char *sx = json_object_to_json_string_ext(x->ports, JSON_C_TO_STRING_PLAIN);
	const char *sy = json_object_to_json_string_ext(y->ports, JSON_C_TO_STRING_PLAIN);
	return strcmp(sx, sy);
}

static void sort_array(struct json_object *arr, int (*cmp)(const void *, const void *))
{
	if (arr)
		json_object_array_sort(arr, cmp);
}

struct json_object *ctl_endpoints_build(const struct k8s_service *svc, struct k8s_pod *const *pods,
					size_t n_pods, struct json_object *existing, bool *changed)
{
	struct subset *ss = NULL;
	size_t n_ss = 0;
	struct json_object *o = NULL, *meta, *subsets = NULL, *labels = NULL;
	bool tolerate = svc->spec.publish_not_ready_addresses;

	for (size_t i = 0; i < n_pods; i++) {
		const struct k8s_pod *pod = pods[i];
		struct json_object *ports, *addr;
		struct subset *s = NULL;
		const char *hn;

		if (!pod_is_endpoint(svc, pod) || (pod_terminating(pod) && !tolerate))
			continue;
		ports = pod_ports(svc, pod, true);
		if (!ports)
			goto nomem;
		/* A Service with ports whose ports all fail to resolve on this pod
		 * gives the pod no address (upstream adds per resolved port). */
		if (svc->spec.n_ports && !json_object_array_length(ports)) {
			json_object_put(ports);
			continue;
		}
		json_object_array_sort(ports, cmp_port);
		for (size_t k = 0; k < n_ss && !s; k++)
			if (sl_json_equal(ss[k].ports, ports))
				s = &ss[k];
		if (!s) {
			struct subset *v = realloc(ss, (n_ss + 1) * sizeof(*v));
			if (!v) {
				json_object_put(ports);
				goto nomem;
			}
			ss = v;
			s = &ss[n_ss++];
			s->ports = ports;
			s->ready = json_object_new_array();
			s->not_ready = json_object_new_array();
			if (!s->ready || !s->not_ready)
				goto nomem;
		} else {
			json_object_put(ports);
		}
		addr = json_object_new_object();
		if (!addr)
			goto nomem;
		sl_json_set_str(addr, "ip", pod->status.pod_ip);
		hn = pod_hostname(svc, pod);
		if (hn)
			sl_json_set_str(addr, "hostname", hn);
		if (pod->spec.node_name && *pod->spec.node_name)
			sl_json_set_str(addr, "nodeName", pod->spec.node_name);
		json_object_object_add(addr, "targetRef", target_ref(pod));
		json_object_array_add(tolerate || k8s_pod_ready(pod) ? s->ready : s->not_ready,
				      addr);
	}
	if (n_ss)
		qsort(ss, n_ss, sizeof(*ss), cmp_subset);
	subsets = json_object_new_array();
	if (!subsets)
		goto nomem;
	for (size_t k = 0; k < n_ss; k++) {
		struct json_object *sub = json_object_new_object();
		if (!sub)
			goto nomem;
		sort_array(ss[k].ready, cmp_ep_addr);
		sort_array(ss[k].not_ready, cmp_ep_addr);
		if (json_object_array_length(ss[k].ready))
			json_object_object_add(sub, "addresses", json_object_get(ss[k].ready));
		if (json_object_array_length(ss[k].not_ready))
			json_object_object_add(sub, "notReadyAddresses",
					       json_object_get(ss[k].not_ready));
		if (json_object_array_length(ss[k].ports))
			json_object_object_add(sub, "ports", json_object_get(ss[k].ports));
		json_object_array_add(subsets, sub);
	}

	labels = json_object_new_object();
	if (!labels)
		goto nomem;
	for (size_t i = 0; i < svc->meta.labels.n; i++)
		if (strcmp(svc->meta.labels.v[i].key, CTL_HEADLESS_LABEL))
			sl_json_set_str(labels, svc->meta.labels.v[i].key,
					svc->meta.labels.v[i].value);
	if (svc_headless(svc))
		sl_json_set_str(labels, CTL_HEADLESS_LABEL, "");

	if (existing) {
		struct json_object *ol = sl_json_path(existing, "metadata", "labels", (char *)NULL);
		struct json_object *os = sl_json_get(existing, "subsets");
		bool same_subsets =
			sl_json_equal(os, subsets) || (!os && !json_object_array_length(subsets));
		bool same_labels =
			sl_json_equal(ol, labels) || (!ol && !json_object_object_length(labels));
		*changed = !same_subsets || !same_labels;
		o = sl_json_clone(existing);
	} else {
		*changed = true;
		o = json_object_new_object();
		if (o) {
			sl_json_set_str(o, "apiVersion", "v1");
			sl_json_set_str(o, "kind", "Endpoints");
		}
	}
	if (!o)
		goto nomem;
	meta = sl_json_ensure_obj(o, "metadata");
	sl_json_set_str(meta, "name", svc->meta.name);
	sl_json_set_str(meta, "namespace", svc->meta.namespace);
	if (json_object_object_length(labels))
		json_object_object_add(meta, "labels", json_object_get(labels));
	else
		json_object_object_del(meta, "labels");
	if (json_object_array_length(subsets))
		json_object_object_add(o, "subsets", json_object_get(subsets));
	else
		json_object_object_del(o, "subsets");
	json_object_put(labels);
	json_object_put(subsets);
	for (size_t k = 0; k < n_ss; k++) {
		json_object_put(ss[k].ports);
		json_object_put(ss[k].ready);
		json_object_put(ss[k].not_ready);
	}
	free(ss);
	return o;
nomem:
	json_object_put(labels);
	json_object_put(subsets);
	for (size_t k = 0; k < n_ss; k++) {
		json_object_put(ss[k].ports);
		json_object_put(ss[k].ready);
		json_object_put(ss[k].not_ready);
	}
	free(ss);
	errno = ENOMEM;
	return NULL;
}
