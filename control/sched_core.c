// SPDX-License-Identifier: Apache-2.0
/*
 * The scheduler's pure parts: digests of Pods and Nodes, the filters, the
 * scores, the fair choice among equals and the FitError message. Semantics
 * follow kube-scheduler's default plugins (NodeUnschedulable, NodeAffinity,
 * TaintToleration, NodePorts, NodeResourcesFit with LeastAllocated,
 * NodeResourcesBalancedAllocation, PodTopologySpread, and the older
 * SelectorSpread for pods of one owner); differences are noted where made.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sched.h"
#include "sluice/json.h"
#include "sluice/k8s.h"

/* Upstream's defaults for pods that request nothing, used only in scores so
 * that zero-request pods still spread (schedutil.DefaultMilliCPURequest). */
#define NZ_CPU_M 100
#define NZ_MEM	 (200LL * 1024 * 1024)

static char *xstrdup(const char *s)
{
	return s ? strdup(s) : NULL;
}

/* --- parsing helpers ------------------------------------------------------------------------ */

static int labels_parse(struct json_object *m, struct sl_label **out, size_t *n)
{
	size_t i = 0, cnt;

	*out = NULL;
	*n = 0;
	if (!m || !json_object_is_type(m, json_type_object))
		return 0;
	cnt = (size_t)json_object_object_length(m);
	if (!cnt)
		return 0;
	*out = calloc(cnt, sizeof(**out));
	if (!*out)
		return -ENOMEM;
	json_object_object_foreach(m, k, v)
	{
		const char *s =
			json_object_is_type(v, json_type_string) ? json_object_get_string(v) : "";
		(*out)[i].key = strdup(k);
		(*out)[i].value = strdup(s);
		i++;
		*n = i;
		if (!(*out)[i - 1].key || !(*out)[i - 1].value)
			return -ENOMEM;
	}
	return 0;
}

static void labels_free(struct sl_label *l, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free((char *)l[i].key);
		free((char *)l[i].value);
	}
	free(l);
}

static const char *label_get(const struct sl_label *l, size_t n, const char *key)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(l[i].key, key))
			return l[i].value;
	return NULL;
}

/* A quantity as a string: YAML "cpu: 2" arrives as a JSON number. */
static const char *qty_str(struct json_object *m, const char *key, char *buf, size_t len)
{
	struct json_object *v = sl_json_get(m, key);

	if (!v)
		return NULL;
	if (json_object_is_type(v, json_type_int)) {
		snprintf(buf, len, "%" PRId64, json_object_get_int64(v));
		return buf;
	}
	if (json_object_is_type(v, json_type_double)) {
		snprintf(buf, len, "%.9g", json_object_get_double(v));
		return buf;
	}
	return json_object_is_type(v, json_type_string) ? json_object_get_string(v) : "?";
}

static int resources_add(struct json_object *containers, bool init, int64_t *cpu, int64_t *mem,
			 char *err, size_t errlen)
{
	size_t n = json_object_is_type(containers, json_type_array)
			   ? json_object_array_length(containers)
			   : 0;

	for (size_t i = 0; i < n; i++) {
		struct json_object *req = sl_json_path(json_object_array_get_idx(containers, i),
						       "resources", "requests", (char *)NULL);
		char cb[64], mb[64];
		const char *c = qty_str(req, "cpu", cb, sizeof(cb)),
			   *m = qty_str(req, "memory", mb, sizeof(mb));
		int64_t cv = 0, mv = 0;
		if (c && k8s_quantity_parse_milli(c, &cv)) {
			snprintf(err, errlen, "resources.requests.cpu '%s': not a quantity", c);
			return -EINVAL;
		}
		if (m && k8s_quantity_parse(m, &mv)) {
			snprintf(err, errlen, "resources.requests.memory '%s': not a quantity", m);
			return -EINVAL;
		}
		if (init) { /* init containers run one at a time: the largest counts */
			if (cv > *cpu)
				*cpu = cv;
			if (mv > *mem)
				*mem = mv;
		} else {
			*cpu += cv;
			*mem += mv;
		}
	}
	return 0;
}

static int op_parse(const char *s, enum sched_op *op)
{
	static const char *names[] = {"In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt"};

	for (size_t i = 0; s && i < sizeof(names) / sizeof(names[0]); i++) {
		if (!strcmp(s, names[i])) {
			*op = (enum sched_op)i;
			return 0;
		}
	}
	return -EINVAL;
}

static int exprs_parse(struct json_object *arr, bool field, struct sched_term *t, char *err,
		       size_t errlen)
{
	size_t n = json_object_is_type(arr, json_type_array) ? json_object_array_length(arr) : 0;

	if (!n)
		return 0;
	{
		struct sched_expr *e = realloc(t->e, (t->n + n) * sizeof(*e));
		if (!e)
			return -ENOMEM;
		t->e = e;
	}
	for (size_t i = 0; i < n; i++) {
		struct json_object *x = json_object_array_get_idx(arr, i), *vals;
		struct sched_expr *e = &t->e[t->n];
		const char *op = sl_json_get_str(x, "operator");
		size_t nv;

		memset(e, 0, sizeof(*e));
		e->field = field;
		if (op_parse(op, &e->op)) {
			snprintf(err, errlen,
				 "node affinity operator '%s': expected In, NotIn, Exists, "
				 "DoesNotExist, Gt or Lt",
				 op ? op : "");
			return -EINVAL;
		}
		e->key = xstrdup(sl_json_get_str(x, "key"));
		t->n++;
		if (!e->key) {
			snprintf(err, errlen, "node affinity requirement without a key");
			return -EINVAL;
		}
		vals = sl_json_get(x, "values");
		nv = json_object_is_type(vals, json_type_array) ? json_object_array_length(vals)
								: 0;
		if (nv) {
			e->vals = calloc(nv, sizeof(*e->vals));
			if (!e->vals)
				return -ENOMEM;
			for (size_t j = 0; j < nv; j++) {
				const char *v =
					json_object_get_string(json_object_array_get_idx(vals, j));
				e->vals[j] = strdup(v ? v : "");
				e->n_vals++;
				if (!e->vals[j])
					return -ENOMEM;
			}
		}
		if ((e->op == SCHED_OP_GT || e->op == SCHED_OP_LT)) {
			char *end;
			if (e->n_vals != 1 ||
			    (strtoll(e->vals[0], &end, 10), *end || !*e->vals[0])) {
				snprintf(err, errlen,
					 "node affinity '%s' Gt/Lt: exactly one integer value "
					 "expected",
					 e->key);
				return -EINVAL;
			}
		}
	}
	return 0;
}

static int term_parse(struct json_object *j, struct sched_term *t, char *err, size_t errlen)
{
	int rc = exprs_parse(sl_json_get(j, "matchExpressions"), false, t, err, errlen);

	if (!rc)
		rc = exprs_parse(sl_json_get(j, "matchFields"), true, t, err, errlen);
	return rc;
}

static void term_fini(struct sched_term *t)
{
	for (size_t i = 0; i < t->n; i++) {
		free(t->e[i].key);
		for (size_t j = 0; j < t->e[i].n_vals; j++)
			free(t->e[i].vals[j]);
		free(t->e[i].vals);
	}
	free(t->e);
}

static uint64_t fnv(uint64_t h, const char *s)
{
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return (h ^ 0xff) * 1099511628211ull; /* a separator so "ab","c" != "a","bc" */
}

static int cmp_label(const void *a, const void *b)
{
	return strcmp(((const struct sl_label *)a)->key, ((const struct sl_label *)b)->key);
}

/*
 * The owner of a pod for spreading: the controller ownerReference's uid, or
 * (pods created by hand) the namespace and the full label set, the fallback
 * SelectorSpread used for pods no Service/ReplicaSet selects.
 */
static uint64_t owner_hash(struct json_object *meta, const struct sched_pod *p)
{
	struct json_object *refs = sl_json_get(meta, "ownerReferences");
	size_t n = json_object_is_type(refs, json_type_array) ? json_object_array_length(refs) : 0;
	uint64_t h = 14695981039346656037ull;

	for (size_t i = 0; i < n; i++) {
		struct json_object *r = json_object_array_get_idx(refs, i);
		struct json_object *c = sl_json_get(r, "controller");
		const char *uid = sl_json_get_str(r, "uid");
		if (uid && c && json_object_get_boolean(c))
			return fnv(fnv(h, "uid"), uid);
	}
	if (!p->n_labels)
		return 0;
	{
		struct sl_label *l = malloc(p->n_labels * sizeof(*l));
		if (!l)
			return 0;
		memcpy(l, p->labels, p->n_labels * sizeof(*l));
		qsort(l, p->n_labels, sizeof(*l), cmp_label);
		h = fnv(fnv(h, "labels"), p->ns ? p->ns : "");
		for (size_t i = 0; i < p->n_labels; i++)
			h = fnv(fnv(h, l[i].key), l[i].value);
		free(l);
	}
	return h;
}

int sched_pod_parse(struct json_object *pod, struct sched_pod *p, char *err, size_t errlen)
{
	struct json_object *meta = sl_json_get(pod, "metadata"), *spec = sl_json_get(pod, "spec");
	struct json_object *aff = sl_json_path(spec, "affinity", "nodeAffinity", (char *)NULL), *x;
	const char *phase = sl_json_get_str(sl_json_get(pod, "status"), "phase");
	int64_t icpu = 0, imem = 0;
	size_t n;
	int rc;

	memset(p, 0, sizeof(*p));
	p->ns = xstrdup(sl_json_get_str(meta, "namespace"));
	p->name = xstrdup(sl_json_get_str(meta, "name"));
	p->uid = xstrdup(sl_json_get_str(meta, "uid"));
	p->node = xstrdup(sl_json_get_str(spec, "nodeName"));
	if (p->node && !*p->node) {
		free(p->node);
		p->node = NULL;
	}
	p->scheduler = xstrdup(sl_json_get_str(spec, "schedulerName"));
	if (!p->name) {
		snprintf(err, errlen, "pod without metadata.name");
		return -EINVAL;
	}
	p->terminal = (phase && (!strcmp(phase, "Succeeded") || !strcmp(phase, "Failed"))) ||
		      sl_json_get(meta, "deletionTimestamp");
	if (labels_parse(sl_json_get(meta, "labels"), &p->labels, &p->n_labels))
		return -ENOMEM;
	p->owner = owner_hash(meta, p);

	rc = resources_add(sl_json_get(spec, "containers"), false, &p->cpu_m, &p->mem, err, errlen);
	if (!rc)
		rc = resources_add(sl_json_get(spec, "initContainers"), true, &icpu, &imem, err,
				   errlen);
	if (rc)
		return rc;
	if (icpu > p->cpu_m)
		p->cpu_m = icpu;
	if (imem > p->mem)
		p->mem = imem;

	x = sl_json_get(spec, "nodeSelector");
	if (x && json_object_is_type(x, json_type_object) && json_object_object_length(x)) {
		size_t i = 0;
		p->nsel = calloc((size_t)json_object_object_length(x), sizeof(*p->nsel));
		if (!p->nsel)
			return -ENOMEM;
		json_object_object_foreach(x, k, v)
		{
			p->nsel[i].k = strdup(k);
			p->nsel[i].v =
				strdup(json_object_get_string(v) ? json_object_get_string(v) : "");
			p->n_nsel = ++i;
			if (!p->nsel[i - 1].k || !p->nsel[i - 1].v)
				return -ENOMEM;
		}
	}

	x = sl_json_path(aff, "requiredDuringSchedulingIgnoredDuringExecution", "nodeSelectorTerms",
			 (char *)NULL);
	if (sl_json_get(aff, "requiredDuringSchedulingIgnoredDuringExecution"))
		p->has_req = true;
	n = json_object_is_type(x, json_type_array) ? json_object_array_length(x) : 0;
	if (n) {
		p->req = calloc(n, sizeof(*p->req));
		if (!p->req)
			return -ENOMEM;
		for (size_t i = 0; i < n; i++) {
			p->n_req = i + 1;
			rc = term_parse(json_object_array_get_idx(x, i), &p->req[i], err, errlen);
			if (rc)
				return rc;
		}
	}
	x = sl_json_get(aff, "preferredDuringSchedulingIgnoredDuringExecution");
	n = json_object_is_type(x, json_type_array) ? json_object_array_length(x) : 0;
	if (n) {
		p->pref = calloc(n, sizeof(*p->pref));
		if (!p->pref)
			return -ENOMEM;
		for (size_t i = 0; i < n; i++) {
			struct json_object *e = json_object_array_get_idx(x, i);
			int64_t w = 0;
			p->n_pref = i + 1;
			sl_json_get_int(e, "weight", &w);
			if (w < 1 || w > 100) {
				snprintf(err, errlen,
					 "preferred node affinity weight %" PRId64
					 ": expected 1..100",
					 w);
				return -EINVAL;
			}
			p->pref[i].weight = (int32_t)w;
			rc = term_parse(sl_json_get(e, "preference"), &p->pref[i].t, err, errlen);
			if (rc)
				return rc;
		}
	}

	x = sl_json_get(spec, "tolerations");
	n = json_object_is_type(x, json_type_array) ? json_object_array_length(x) : 0;
	if (n) {
		p->tols = calloc(n, sizeof(*p->tols));
		if (!p->tols)
			return -ENOMEM;
		for (size_t i = 0; i < n; i++) {
			struct json_object *t = json_object_array_get_idx(x, i);
			p->tols[i].key = xstrdup(sl_json_get_str(t, "key"));
			p->tols[i].op = xstrdup(sl_json_get_str(t, "operator"));
			p->tols[i].value = xstrdup(sl_json_get_str(t, "value"));
			p->tols[i].effect = xstrdup(sl_json_get_str(t, "effect"));
			p->n_tols = i + 1;
		}
	}

	/* host ports of every container (init containers' ports are not reserved upstream) */
	x = sl_json_get(spec, "containers");
	n = json_object_is_type(x, json_type_array) ? json_object_array_length(x) : 0;
	for (size_t i = 0; i < n; i++) {
		struct json_object *ports = sl_json_get(json_object_array_get_idx(x, i), "ports");
		size_t np = json_object_is_type(ports, json_type_array)
				    ? json_object_array_length(ports)
				    : 0;
		for (size_t j = 0; j < np; j++) {
			struct json_object *pt = json_object_array_get_idx(ports, j);
			const char *proto = sl_json_get_str(pt, "protocol"),
				   *ip = sl_json_get_str(pt, "hostIP");
			int64_t hp = 0;
			struct sched_port *np2;
			if (!sl_json_get_int(pt, "hostPort", &hp) || hp <= 0)
				continue;
			np2 = realloc(p->ports, (p->n_ports + 1) * sizeof(*np2));
			if (!np2)
				return -ENOMEM;
			p->ports = np2;
			memset(&p->ports[p->n_ports], 0, sizeof(*np2));
			p->ports[p->n_ports].port = (int32_t)hp;
			snprintf(p->ports[p->n_ports].proto, sizeof(np2->proto), "%s",
				 proto ? proto : "TCP");
			/* 0.0.0.0 is every address, like no hostIP */
			if (ip && strcmp(ip, "0.0.0.0") && strcmp(ip, "::"))
				snprintf(p->ports[p->n_ports].ip, sizeof(np2->ip), "%s", ip);
			p->n_ports++;
		}
	}

	x = sl_json_get(spec, "topologySpreadConstraints");
	n = json_object_is_type(x, json_type_array) ? json_object_array_length(x) : 0;
	for (size_t i = 0; i < n; i++) {
		struct json_object *c = json_object_array_get_idx(x, i);
		const char *key = sl_json_get_str(c, "topologyKey"),
			   *when = sl_json_get_str(c, "whenUnsatisfiable");
		int64_t skew = 0;
		struct sched_tsc *t;
		char why[256];

		/* Only the hostname topology is known here: every node is its own domain. */
		if (!key || strcmp(key, SCHED_HOSTNAME_KEY))
			continue;
		if (!sl_json_get_int(c, "maxSkew", &skew) || skew < 1) {
			snprintf(err, errlen,
				 "topologySpreadConstraints[%zu].maxSkew: must be >= 1", i);
			return -EINVAL;
		}
		t = realloc(p->tscs, (p->n_tscs + 1) * sizeof(*t));
		if (!t)
			return -ENOMEM;
		p->tscs = t;
		t = &p->tscs[p->n_tscs];
		memset(t, 0, sizeof(*t));
		t->max_skew = (int32_t)skew;
		t->hard = !when || strcmp(when, "ScheduleAnyway");
		t->sel = sl_labelsel_from_json(sl_json_get(c, "labelSelector"),
					       "topologySpreadConstraints.labelSelector", why,
					       sizeof(why));
		if (!t->sel) {
			snprintf(err, errlen, "%s", why);
			return -EINVAL;
		}
		/* a constraint without a labelSelector selects no pods upstream */
		if (!sl_json_get(c, "labelSelector")) {
			sl_labelsel_free(t->sel);
			t->sel = sl_labelsel_nothing();
			if (!t->sel)
				return -ENOMEM;
		}
		p->n_tscs++;
		t->self = sl_labelsel_match(t->sel, p->labels, p->n_labels);
	}
	return 0;
}

void sched_pod_fini(struct sched_pod *p)
{
	if (!p)
		return;
	free(p->ns);
	free(p->name);
	free(p->uid);
	free(p->node);
	free(p->scheduler);
	labels_free(p->labels, p->n_labels);
	for (size_t i = 0; i < p->n_nsel; i++) {
		free(p->nsel[i].k);
		free(p->nsel[i].v);
	}
	free(p->nsel);
	for (size_t i = 0; i < p->n_req; i++)
		term_fini(&p->req[i]);
	free(p->req);
	for (size_t i = 0; i < p->n_pref; i++)
		term_fini(&p->pref[i].t);
	free(p->pref);
	for (size_t i = 0; i < p->n_tols; i++) {
		free(p->tols[i].key);
		free(p->tols[i].op);
		free(p->tols[i].value);
		free(p->tols[i].effect);
	}
	free(p->tols);
	free(p->ports);
	for (size_t i = 0; i < p->n_tscs; i++)
		sl_labelsel_free(p->tscs[i].sel);
	free(p->tscs);
	memset(p, 0, sizeof(*p));
}

static int alloc_get(struct json_object *alloc, const char *key, bool milli, int64_t *out,
		     char *err, size_t errlen)
{
	char b[64];
	const char *s = qty_str(alloc, key, b, sizeof(b));

	*out = -1;
	if (!s)
		return 0;
	if ((milli ? k8s_quantity_parse_milli(s, out) : k8s_quantity_parse(s, out))) {
		snprintf(err, errlen, "status.allocatable.%s '%s': not a quantity", key, s);
		return -EINVAL;
	}
	return 0;
}

int sched_node_parse(struct json_object *node, struct sched_node *n, char *err, size_t errlen)
{
	struct json_object *meta = sl_json_get(node, "metadata"), *spec = sl_json_get(node, "spec");
	struct json_object *st = sl_json_get(node, "status"), *alloc, *x, *u;
	size_t cnt;
	int rc;

	memset(n, 0, sizeof(*n));
	n->name = xstrdup(sl_json_get_str(meta, "name"));
	if (!n->name) {
		snprintf(err, errlen, "node without metadata.name");
		return -EINVAL;
	}
	if (labels_parse(sl_json_get(meta, "labels"), &n->labels, &n->n_labels))
		return -ENOMEM;
	u = sl_json_get(spec, "unschedulable");
	n->unschedulable = u && json_object_get_boolean(u);
	x = sl_json_get(st, "conditions");
	cnt = json_object_is_type(x, json_type_array) ? json_object_array_length(x) : 0;
	for (size_t i = 0; i < cnt; i++) {
		struct json_object *c = json_object_array_get_idx(x, i);
		const char *t = sl_json_get_str(c, "type"), *s = sl_json_get_str(c, "status");
		if (t && !strcmp(t, "Ready"))
			n->ready = s && !strcmp(s, "True");
	}
	alloc = sl_json_get(st, "allocatable");
	if (!alloc)
		alloc = sl_json_get(st, "capacity");
	rc = alloc_get(alloc, "cpu", true, &n->alloc_cpu_m, err, errlen);
	if (!rc)
		rc = alloc_get(alloc, "memory", false, &n->alloc_mem, err, errlen);
	if (!rc)
		rc = alloc_get(alloc, "pods", false, &n->alloc_pods, err, errlen);
	if (rc)
		return rc;
	x = sl_json_get(spec, "taints");
	cnt = json_object_is_type(x, json_type_array) ? json_object_array_length(x) : 0;
	if (cnt) {
		n->taints = calloc(cnt, sizeof(*n->taints));
		if (!n->taints)
			return -ENOMEM;
		for (size_t i = 0; i < cnt; i++) {
			struct json_object *t = json_object_array_get_idx(x, i);
			n->taints[i].key = xstrdup(sl_json_get_str(t, "key"));
			n->taints[i].value = xstrdup(sl_json_get_str(t, "value"));
			n->taints[i].effect = xstrdup(sl_json_get_str(t, "effect"));
			n->n_taints = i + 1;
			if (!n->taints[i].key) {
				snprintf(err, errlen, "spec.taints[%zu]: key required", i);
				return -EINVAL;
			}
		}
	}
	return 0;
}

static void node_spec_fini(struct sched_node *n)
{
	free(n->name);
	labels_free(n->labels, n->n_labels);
	for (size_t i = 0; i < n->n_taints; i++) {
		free(n->taints[i].key);
		free(n->taints[i].value);
		free(n->taints[i].effect);
	}
	free(n->taints);
}

void sched_node_fini(struct sched_node *n)
{
	if (!n)
		return;
	node_spec_fini(n);
	free(n->ports);
	memset(n, 0, sizeof(*n));
}

void sched_node_account(struct sched_node *n, const struct sched_pod *p, int sign)
{
	n->used_cpu_m += sign * p->cpu_m;
	n->used_mem += sign * p->mem;
	n->used_pods += sign;
	n->nz_cpu_m += sign * (p->cpu_m ? p->cpu_m : NZ_CPU_M);
	n->nz_mem += sign * (p->mem ? p->mem : NZ_MEM);
	for (size_t i = 0; i < p->n_ports; i++) {
		if (sign > 0) {
			if (n->n_ports == n->cap_ports) {
				size_t cap = n->cap_ports ? n->cap_ports * 2 : 8;
				struct sched_port *v = realloc(n->ports, cap * sizeof(*v));
				if (!v)
					continue; /* the port goes unrecorded; the kubelet still
						     refuses a clash */
				n->ports = v;
				n->cap_ports = cap;
			}
			n->ports[n->n_ports++] = p->ports[i];
		} else {
			for (size_t j = 0; j < n->n_ports; j++) {
				if (!memcmp(&n->ports[j], &p->ports[i], sizeof(p->ports[i]))) {
					n->ports[j] = n->ports[--n->n_ports];
					break;
				}
			}
		}
	}
}

/* --- filters -------------------------------------------------------------------------------- */

static bool expr_match(const struct sched_expr *e, const struct sched_node *n)
{
	const char *v = e->field ? (!strcmp(e->key, "metadata.name") ? n->name : NULL)
				 : label_get(n->labels, n->n_labels, e->key);
	bool in = false;

	switch (e->op) {
	case SCHED_OP_IN:
	case SCHED_OP_NOTIN:
		for (size_t i = 0; v && i < e->n_vals; i++)
			in |= !strcmp(v, e->vals[i]);
		return e->op == SCHED_OP_IN ? in : !in;
	case SCHED_OP_EXISTS:
		return v != NULL;
	case SCHED_OP_NOTEXISTS:
		return v == NULL;
	case SCHED_OP_GT:
	case SCHED_OP_LT: {
		char *end;
		long long have, want = strtoll(e->vals[0], NULL, 10);
		if (!v || !*v)
			return false;
		have = strtoll(v, &end, 10);
		if (*end)
			return false; /* a label that is not an integer never matches */
		return e->op == SCHED_OP_GT ? have > want : have < want;
	}
	}
	return false;
}

bool sched_term_match(const struct sched_term *t, const struct sched_node *n)
{
	if (!t->n)
		return false; /* an empty term matches no objects (upstream) */
	for (size_t i = 0; i < t->n; i++)
		if (!expr_match(&t->e[i], n))
			return false;
	return true;
}

bool sched_affinity_match(const struct sched_pod *p, const struct sched_node *n)
{
	for (size_t i = 0; i < p->n_nsel; i++) {
		const char *v = label_get(n->labels, n->n_labels, p->nsel[i].k);
		if (!v || strcmp(v, p->nsel[i].v))
			return false;
	}
	if (p->has_req) {
		for (size_t i = 0; i < p->n_req; i++)
			if (sched_term_match(&p->req[i], n))
				return true;
		return false;
	}
	return true;
}

static bool streq0(const char *a, const char *b)
{
	return !strcmp(a ? a : "", b ? b : "");
}

bool sched_tolerates(const struct sched_pod *p, const struct sched_taint *t)
{
	for (size_t i = 0; i < p->n_tols; i++) {
		const struct sched_tol *o = &p->tols[i];
		if (o->effect && *o->effect && !streq0(o->effect, t->effect))
			continue;
		if (o->key && *o->key && strcmp(o->key, t->key))
			continue;
		if (o->op && !strcmp(o->op, "Exists"))
			return true;
		if ((!o->op || !*o->op || !strcmp(o->op, "Equal")) && streq0(o->value, t->value))
			return true;
	}
	return false;
}

static bool port_clash(const struct sched_port *a, const struct sched_port *b)
{
	return a->port == b->port && !strcmp(a->proto, b->proto) &&
	       (!a->ip[0] || !b->ip[0] || !strcmp(a->ip, b->ip));
}

unsigned sched_filter(const struct sched_pod *p, const struct sched_node *n, struct sched_fit *fit)
{
	memset(fit, 0, sizeof(*fit));
	if (!n->ready)
		return fit->reasons = SCHED_R_NOT_READY;
	if (n->unschedulable) {
		/* a pod tolerating the cordon taint may go (upstream NodeUnschedulable) */
		struct sched_taint ct = {.key = "node.kubernetes.io/unschedulable",
					 .effect = "NoSchedule"};
		if (!sched_tolerates(p, &ct))
			return fit->reasons = SCHED_R_UNSCHEDULABLE;
	}
	if (!sched_affinity_match(p, n))
		return fit->reasons = SCHED_R_AFFINITY;
	for (size_t i = 0; i < n->n_taints; i++) {
		const struct sched_taint *t = &n->taints[i];
		if (!t->effect ||
		    (strcmp(t->effect, "NoSchedule") && strcmp(t->effect, "NoExecute")))
			continue;
		if (!sched_tolerates(p, t)) {
			snprintf(fit->taint, sizeof(fit->taint), "{%s: %s}", t->key,
				 t->value ? t->value : "");
			return fit->reasons = SCHED_R_TAINT;
		}
	}
	for (size_t i = 0; i < p->n_ports; i++)
		for (size_t j = 0; j < n->n_ports; j++)
			if (port_clash(&p->ports[i], &n->ports[j]))
				return fit->reasons = SCHED_R_PORTS;
	if (n->alloc_pods >= 0 && n->used_pods + 1 > n->alloc_pods)
		fit->reasons |= SCHED_R_PODS;
	if (p->cpu_m && n->alloc_cpu_m >= 0 && n->used_cpu_m + p->cpu_m > n->alloc_cpu_m)
		fit->reasons |= SCHED_R_CPU;
	if (p->mem && n->alloc_mem >= 0 && n->used_mem + p->mem > n->alloc_mem)
		fit->reasons |= SCHED_R_MEM;
	return fit->reasons;
}

/* --- the FitError message ------------------------------------------------------------------- */

struct reason_count {
	char text[200];
	size_t n;
};

static void reason_add(struct reason_count *rc, size_t *nrc, size_t cap, const char *text)
{
	for (size_t i = 0; i < *nrc; i++) {
		if (!strcmp(rc[i].text, text)) {
			rc[i].n++;
			return;
		}
	}
	if (*nrc == cap)
		return;
	snprintf(rc[*nrc].text, sizeof(rc[*nrc].text), "%s", text);
	rc[(*nrc)++].n = 1;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

size_t sched_fit_message(const struct sched_fit *fits, size_t n_nodes, char *buf, size_t len)
{
	static const struct {
		unsigned bit;
		const char *text;
	} texts[] = {
		{SCHED_R_NOT_READY, "node(s) were not ready"},
		{SCHED_R_UNSCHEDULABLE, "node(s) were unschedulable"},
		{SCHED_R_AFFINITY, "node(s) didn't match Pod's node affinity/selector"},
		{SCHED_R_PORTS, "node(s) didn't have free ports for the requested pod ports"},
		{SCHED_R_CPU, "Insufficient cpu"},
		{SCHED_R_MEM, "Insufficient memory"},
		{SCHED_R_PODS, "Too many pods"},
		{SCHED_R_SPREAD, "node(s) didn't match pod topology spread constraints"},
	};
	enum { CAP = 32 };
	struct reason_count rc[CAP];
	char *strs[CAP] = {0}, line[CAP][220];
	size_t nrc = 0, off;

	for (size_t i = 0; i < n_nodes; i++) {
		if (fits[i].reasons & SCHED_R_TAINT) {
			char t[200];
			snprintf(t, sizeof(t), "node(s) had untolerated taint %s", fits[i].taint);
			reason_add(rc, &nrc, CAP, t);
		}
		for (size_t k = 0; k < sizeof(texts) / sizeof(texts[0]); k++)
			if (fits[i].reasons & texts[k].bit)
				reason_add(rc, &nrc, CAP, texts[k].text);
	}
	/* upstream sorts "<count> <reason>" strings, so "1 node(s)..." precedes "2 Insufficient
	 * cpu" */
	for (size_t i = 0; i < nrc; i++) {
		snprintf(line[i], sizeof(line[i]), "%zu %.199s", rc[i].n, rc[i].text);
		strs[i] = line[i];
	}
	qsort(strs, nrc, sizeof(strs[0]), cmp_str);
	off = (size_t)snprintf(buf, len, "0/%zu nodes are available", n_nodes);
	if (off >= len)
		return len ? len - 1 : 0;
	for (size_t i = 0; i < nrc && off < len; i++)
		off += (size_t)snprintf(buf + off, len - off, "%s %s", i ? "," : ":", strs[i]);
	if (off < len)
		off += (size_t)snprintf(buf + off, len - off, ".");
	return off < len ? off : (len ? len - 1 : 0);
}

/* --- scores ----------------------------------------------------------------------------------- */

static int64_t frac_free(int64_t alloc, int64_t used)
{
	if (alloc <= 0)
		return alloc < 0 ? 100 : 0; /* not reported: as if empty */
	if (used >= alloc)
		return 0;
	return (alloc - used) * 100 / alloc;
}

int64_t sched_score_least_allocated(const struct sched_pod *p, const struct sched_node *n)
{
	int64_t c = frac_free(n->alloc_cpu_m, n->nz_cpu_m + (p->cpu_m ? p->cpu_m : NZ_CPU_M));
	int64_t m = frac_free(n->alloc_mem, n->nz_mem + (p->mem ? p->mem : NZ_MEM));

	return (c + m) / 2;
}

int64_t sched_score_balanced(const struct sched_pod *p, const struct sched_node *n)
{
	/* 100 * (1 - std(cpuFraction, memFraction)); for two values std = |a-b|/2.
	 * Uses the real requests, like upstream BalancedAllocation. */
	int64_t c, m, d;

	if (n->alloc_cpu_m <= 0 || n->alloc_mem <= 0)
		return 100;
	c = (n->used_cpu_m + p->cpu_m) * 1000 / n->alloc_cpu_m;
	m = (n->used_mem + p->mem) * 1000 / n->alloc_mem;
	if (c > 1000)
		c = 1000;
	if (m > 1000)
		m = 1000;
	d = c > m ? c - m : m - c;
	return (1000 - d / 2) / 10;
}

/* 100 for the emptiest node, 0 for the fullest, scaled between (SelectorSpread). */
static int64_t spread_score(int32_t cnt, int32_t max)
{
	return max > 0 ? (int64_t)(max - cnt) * 100 / max : 100;
}

/* Weights as kube-scheduler's default profile: fit 1, balanced 1, node affinity 2, spread 2. */
int sched_select(const struct sched_pod *p, struct sched_node *const *nodes, size_t n,
		 const int32_t *owner_cnt, const int32_t *tsc_cnt, uint32_t *rr,
		 struct sched_fit *fits, int64_t *scores)
{
	int32_t omax = 0, *tmin = NULL, *tmax = NULL;
	int64_t best = -1, pmax = 0, *pw = NULL;
	int64_t *sc = scores ? scores : calloc(n ? n : 1, sizeof(*sc));
	size_t n_best = 0;
	int chosen = -1;

	if (!sc)
		return -1;

	if (p->n_tscs) {
		tmin = calloc(p->n_tscs * 2, sizeof(*tmin));
		if (!tmin) {
			if (sc != scores)
				free(sc);
			return -1;
		}
		tmax = tmin + p->n_tscs;
		for (size_t c = 0; c < p->n_tscs; c++)
			tmin[c] = INT32_MAX;
	}
	if (p->n_pref && n)
		pw = calloc(n, sizeof(*pw));
	for (size_t i = 0; i < n; i++) {
		sched_filter(p, nodes[i], &fits[i]);
		/* Spread domains are the nodes matching the pod's node affinity/selector
		 * (nodeAffinityPolicy Honor, nodeTaintsPolicy Ignore). */
		if (p->n_tscs && nodes[i]->ready && sched_affinity_match(p, nodes[i])) {
			for (size_t c = 0; c < p->n_tscs; c++) {
				int32_t v = tsc_cnt ? tsc_cnt[c * n + i] : 0;
				if (v < tmin[c])
					tmin[c] = v;
			}
		}
	}
	for (size_t i = 0; i < n; i++) {
		if (fits[i].reasons)
			continue;
		for (size_t c = 0; c < p->n_tscs; c++) {
			int32_t v = tsc_cnt ? tsc_cnt[c * n + i] : 0;
			if (p->tscs[c].hard && tmin[c] != INT32_MAX &&
			    v + (p->tscs[c].self ? 1 : 0) - tmin[c] > p->tscs[c].max_skew)
				fits[i].reasons |= SCHED_R_SPREAD;
			if (v > tmax[c])
				tmax[c] = v;
		}
		if (fits[i].reasons)
			continue;
		if (owner_cnt && owner_cnt[i] > omax)
			omax = owner_cnt[i];
		if (pw) {
			for (size_t k = 0; k < p->n_pref; k++)
				if (sched_term_match(&p->pref[k].t, nodes[i]))
					pw[i] += p->pref[k].weight;
			if (pw[i] > pmax)
				pmax = pw[i];
		}
	}
	for (size_t i = 0; i < n; i++) {
		int64_t s;
		if (fits[i].reasons) {
			sc[i] = -1;
			continue;
		}
		s = sched_score_least_allocated(p, nodes[i]) + sched_score_balanced(p, nodes[i]);
		if (p->owner)
			s += 2 * spread_score(owner_cnt ? owner_cnt[i] : 0, omax);
		for (size_t c = 0; c < p->n_tscs; c++)
			if (!p->tscs[c].hard)
				s += 2 * spread_score(tsc_cnt ? tsc_cnt[c * n + i] : 0, tmax[c]);
		if (pw && pmax > 0)
			s += 2 * (pw[i] * 100 / pmax);
		sc[i] = s;
		if (s > best) {
			best = s;
			n_best = 1;
		} else if (s == best) {
			n_best++;
		}
	}
	if (n_best) {
		/* round-robin among the equals: the k-th best node, k cycling */
		size_t pick = rr ? (*rr)++ % n_best : 0;
		for (size_t i = 0, k = 0; i < n; i++) {
			if (sc[i] == best && k++ == pick) {
				chosen = (int)i;
				break;
			}
		}
	}
	if (sc != scores)
		free(sc);
	free(tmin);
	free(pw);
	return chosen;
}
