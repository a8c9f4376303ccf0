// SPDX-License-Identifier: Apache-2.0
/*
 * The workload controllers: ReplicaSet, Deployment, DaemonSet and the
 * garbage collector, on one thread of the controller manager.
 *
 * They are level-triggered: any event of a watched kind queues one key, and
 * a pass reconciles every object from a snapshot of the informer caches
 * (plus a pass every second, which is what moves minReadySeconds and
 * expectation time-outs along). At the sizes sluice-control serves this is
 * cheaper than per-object event routing and cannot miss an edge.
 *
 * Informer caches lag behind our own writes, so an owner whose writes are not
 * yet visible is skipped ("expectations", as in kube-controller-manager): a
 * created or updated object must show up at least at the resourceVersion the
 * write returned, a deleted one must be gone or terminating, or 10 s pass.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctl_int.h"
#include "sluice/err.h"
#include "sluice/json.h"
#include "sluice/log.h"
#include "sluice/selector.h"
#include "wl.h"

#define GVR_RS	   ((struct sl_gvr){"apps", "v1", "replicasets"})
#define GVR_DEPLOY ((struct sl_gvr){"apps", "v1", "deployments"})
#define GVR_DS	   ((struct sl_gvr){"apps", "v1", "daemonsets"})

#define PASS_MS	  1000	/* periodic pass */
#define BATCH_MS  30	/* a burst of events becomes one pass */
#define EXPECT_MS 10000 /* give up waiting for the cache to show a write */
#define MAX_BURST 100	/* pod creations/deletions per owner and pass */
#define MERGE	  "application/merge-patch+json"

enum { INF_PODS, INF_RS, INF_DEPLOY, INF_DS, INF_NODES, INF_SVCS, INF_N };

struct wl_expect {
	char owner[64];
	int inf;
	char ns[256], name[256];
	int64_t min_rv; /* present at least at this revision; -1: gone */
	uint64_t deadline;
};

struct wl {
	struct ctl *c;
	unsigned which;
	struct ctl_worker w;
	struct sl_informer *inf[INF_N];
	struct ctl_queue q;
	bool q_init;
	struct wl_expect *ex;
	size_t n_ex, cap_ex;
	atomic_bool slice_gc; /* a Service went: look at EndpointSlices */
};

/* One pass's view of the caches. */
struct snap {
	struct json_object *l[INF_N];
	const char **uids; /* of every listed object, sorted: the GC's owner lookup */
	size_t n_uids;
	time_t now;
};

/* --- small JSON helpers -------------------------------------------------------------------- */

static struct json_object *meta(const struct json_object *o)
{
	return sl_json_get(o, "metadata");
}
static const char *s0(const char *s)
{
	return s ? s : "";
}
static const char *oname(const struct json_object *o)
{
	return s0(sl_json_get_str(meta(o), "name"));
}
static const char *ons(const struct json_object *o)
{
	return s0(sl_json_get_str(meta(o), "namespace"));
}
static const char *ouid(const struct json_object *o)
{
	return s0(sl_json_get_str(meta(o), "uid"));
}
static int64_t orv(const struct json_object *o)
{
	const char *rv = sl_json_get_str(meta(o), "resourceVersion");
	return rv ? strtoll(rv, NULL, 10) : 0;
}
static bool odeleting(const struct json_object *o)
{
	return sl_json_get(meta(o), "deletionTimestamp") != NULL;
}
static int64_t iget(const struct json_object *o, const char *k, int64_t dflt)
{
	int64_t v;
	return sl_json_get_int(o, k, &v) ? v : dflt;
}
static size_t alen(const struct json_object *a)
{
	return json_object_is_type(a, json_type_array) ? json_object_array_length(a) : 0;
}
static struct json_object *aat(const struct json_object *a, size_t i)
{
	return json_object_array_get_idx(a, i);
}

/* The ownerReference with controller: true, or NULL. */
static struct json_object *controller_ref(const struct json_object *o)
{
	struct json_object *refs = sl_json_get(meta(o), "ownerReferences");

	for (size_t i = 0; i < alen(refs); i++) {
		struct json_object *r = aat(refs, i), *c = sl_json_get(r, "controller");
		if (c && json_object_get_boolean(c))
			return r;
	}
	return NULL;
}

static bool owned_by(const struct json_object *o, const char *uid)
{
	struct json_object *r = controller_ref(o);
	const char *u = sl_json_get_str(r, "uid");

	return u && !strcmp(u, uid);
}

static struct json_object *owner_ref(const char *kind, const struct json_object *owner)
{
	struct json_object *r = json_object_new_object();

	sl_json_set_str(r, "apiVersion", "apps/v1");
	sl_json_set_str(r, "kind", kind);
	sl_json_set_str(r, "name", oname(owner));
	sl_json_set_str(r, "uid", ouid(owner));
	json_object_object_add(r, "controller", json_object_new_boolean(1));
	json_object_object_add(r, "blockOwnerDeletion", json_object_new_boolean(1));
	return r;
}

static int64_t revision_of(const struct json_object *rs)
{
	const char *r = sl_json_get_str(sl_json_get(meta(rs), "annotations"), WL_REVISION_ANNOT);
	return r ? strtoll(r, NULL, 10) : 0;
}

static bool same_ns(const struct json_object *a, const struct json_object *b)
{
	return !strcmp(ons(a), ons(b));
}

/* --- expectations --------------------------------------------------------------------------- */

static void expect(struct wl *wl, const char *owner, int inf, const struct json_object *obj,
		   bool gone)
{
	struct wl_expect *e;

	if (wl->n_ex == wl->cap_ex) {
		size_t cap = wl->cap_ex ? wl->cap_ex * 2 : 64;
		struct wl_expect *v = realloc(wl->ex, cap * sizeof(*v));
		if (!v)
			return; /* worst case: one pass works from a stale cache */
		wl->ex = v;
		wl->cap_ex = cap;
	}
	e = &wl->ex[wl->n_ex++];
	snprintf(e->owner, sizeof(e->owner), "%s", owner);
	e->inf = inf;
	snprintf(e->ns, sizeof(e->ns), "%s", ons(obj));
	snprintf(e->name, sizeof(e->name), "%s", oname(obj));
	e->min_rv = gone ? -1 : orv(obj);
	e->deadline = ctl_now_ms() + EXPECT_MS;
}

/* True when every write made for `owner` is visible in the caches. */
static bool expectations_met(struct wl *wl, const char *owner)
{
	bool ok = true;
	size_t j = 0;

	for (size_t i = 0; i < wl->n_ex; i++) {
		struct wl_expect *e = &wl->ex[i];
		bool met = false;
		if (!strcmp(e->owner, owner)) {
			struct json_object *o = sl_informer_get(wl->inf[e->inf], e->ns, e->name);
			if (e->min_rv < 0)
				met = !o || odeleting(o);
			else
				met = o && orv(o) >= e->min_rv;
			json_object_put(o);
			if (!met && ctl_now_ms() > e->deadline) {
				pr_warn("ctl", "%s/%s: not seen in the cache after %d s; going on",
					e->ns, e->name, EXPECT_MS / 1000);
				met = true;
			}
			if (!met)
				ok = false;
		}
		if (!met)
			wl->ex[j++] = *e;
	}
	wl->n_ex = j;
	return ok;
}

/* --- requests ------------------------------------------------------------------------------- */

static int req(struct wl *wl, const char *method, const struct sl_gvr *gvr, const char *ns,
	       const char *name, bool status, struct json_object *body, const char *ctype,
	       struct json_object **out)
{
	char err[768];
	char *path = ctl_path(gvr, ns, name, status);
	int rc;

	if (!path)
		return -ENOMEM;
	rc = ctl_request(&wl->w, method, path, body, ctype, out, err, sizeof(err));
	if (rc && rc != -ECANCELED && rc != -SL_ERR_NOTFOUND)
		pr_warn("ctl", "%s", err);
	free(path);
	return rc;
}

/* Merge-patches one member path (a JSON object like {"spec":{"replicas":3}}). */
static int patch(struct wl *wl, const struct sl_gvr *gvr, const struct json_object *obj,
		 bool status, struct json_object *body, struct json_object **out)
{
	int rc = req(wl, "PATCH", gvr, ons(obj), oname(obj), status, body, MERGE, out);

	json_object_put(body);
	return rc;
}

static void event(struct wl *wl, const char *kind, const struct json_object *obj,
		  const char *reason, const char *component, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));
static void event(struct wl *wl, const char *kind, const struct json_object *obj,
		  const char *reason, const char *component, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	ctl_event(&wl->w, kind, "apps/v1", ons(obj), oname(obj), ouid(obj), "Normal", reason, msg,
		  component);
}

/* Writes status when it differs from the object's (no write, no event). */
static int put_status(struct wl *wl, const struct sl_gvr *gvr, const struct json_object *obj,
		      struct json_object *st)
{
	struct json_object *body;

	if (sl_json_equal(st, sl_json_get(obj, "status"))) {
		json_object_put(st);
		return 0;
	}
	body = json_object_new_object();
	/* The whole status replaces the old one: null out members we dropped. */
	{
		struct json_object *old = sl_json_get(obj, "status");
		if (json_object_is_type(old, json_type_object)) {
			json_object_object_foreach(old, k, v)
			{
				(void)v;
				if (!sl_json_get(st, k))
					json_object_object_add(st, k, NULL);
			}
		}
	}
	json_object_object_add(body, "status", st);
	return patch(wl, gvr, obj, true, body, NULL);
}

/* --- pods of an owner ----------------------------------------------------------------------- */

struct podset {
	struct json_object **v;
	size_t n;
};

static void podset_add(struct podset *s, struct json_object *p)
{
	struct json_object **v = realloc(s->v, (s->n + 1) * sizeof(*v));

	if (!v)
		return;
	s->v = v;
	s->v[s->n++] = p;
}

/*
 * The pods `owner` controls: its own (by controller ownerReference) that
 * still match, plus orphans in its namespace that match, which it adopts.
 * Owned pods that stopped matching are released (the reference removed).
 */
static void claim_pods(struct wl *wl, struct snap *s, const char *kind,
		       const struct json_object *owner, const struct sl_labelsel *sel,
		       struct podset *out)
{
	struct json_object *pods = s->l[INF_PODS];

	for (size_t i = 0; i < alen(pods); i++) {
		struct json_object *p = aat(pods, i), *body, *refs, *nrefs;
		bool match = sl_labelsel_match_json(sel, sl_json_get(meta(p), "labels"));
		if (!same_ns(p, owner))
			continue;
		if (owned_by(p, ouid(owner))) {
			if (match || odeleting(p)) {
				podset_add(out, p);
				continue;
			}
			/* Release: keep every other reference. */
			refs = sl_json_get(meta(p), "ownerReferences");
			nrefs = json_object_new_array();
			for (size_t j = 0; j < alen(refs); j++)
				if (strcmp(s0(sl_json_get_str(aat(refs, j), "uid")), ouid(owner)))
					json_object_array_add(nrefs, sl_json_clone(aat(refs, j)));
			body = json_object_new_object();
			json_object_object_add(sl_json_ensure_obj(body, "metadata"),
					       "ownerReferences", nrefs);
			sl_json_set_str(sl_json_get(body, "metadata"), "resourceVersion",
					s0(sl_json_get_str(meta(p), "resourceVersion")));
			patch(wl, &SL_GVR_PODS, p, false, body, NULL);
			continue;
		}
		if (!match || controller_ref(p) || odeleting(p) || odeleting(owner) ||
		    !wl_pod_active(p))
			continue;
		refs = sl_json_get(meta(p), "ownerReferences");
		nrefs = json_object_new_array();
		for (size_t j = 0; j < alen(refs); j++)
			json_object_array_add(nrefs, sl_json_clone(aat(refs, j)));
		json_object_array_add(nrefs, owner_ref(kind, owner));
		body = json_object_new_object();
		json_object_object_add(sl_json_ensure_obj(body, "metadata"), "ownerReferences",
				       nrefs);
		/* Adopt only the pod as we saw it (resourceVersion makes the
		 * patch conditional: a concurrent adopter wins or we do). */
		sl_json_set_str(sl_json_get(body, "metadata"), "resourceVersion",
				s0(sl_json_get_str(meta(p), "resourceVersion")));
		if (patch(wl, &SL_GVR_PODS, p, false, body, NULL) == 0)
			podset_add(out, p);
	}
}

/* A pod from owner's template; node may be NULL. */
static int create_pod(struct wl *wl, const char *kind, const struct json_object *owner,
		      const char *node, const char *component, struct json_object **out)
{
	struct json_object *tmpl = sl_json_get(sl_json_get(owner, "spec"), "template");
	struct json_object *pod = json_object_new_object(), *m, *spec, *refs, *tm = meta(tmpl);
	char gen[300];
	int rc;

	sl_json_set_str(pod, "apiVersion", "v1");
	sl_json_set_str(pod, "kind", "Pod");
	m = sl_json_ensure_obj(pod, "metadata");
	snprintf(gen, sizeof(gen), "%.250s-", oname(owner));
	sl_json_set_str(m, "generateName", gen);
	sl_json_set_str(m, "namespace", ons(owner));
	if (sl_json_get(tm, "labels"))
		json_object_object_add(m, "labels", sl_json_clone(sl_json_get(tm, "labels")));
	if (sl_json_get(tm, "annotations"))
		json_object_object_add(m, "annotations",
				       sl_json_clone(sl_json_get(tm, "annotations")));
	refs = json_object_new_array();
	json_object_array_add(refs, owner_ref(kind, owner));
	json_object_object_add(m, "ownerReferences", refs);
	spec = sl_json_clone(sl_json_get(tmpl, "spec"));
	if (!spec)
		spec = json_object_new_object();
	if (node) {
		/* DaemonSet pods are placed here, not by a scheduler
		 * (docs/workloads.md); they get the daemon tolerations. */
		struct json_object *tols = wl_ds_tolerations(spec);
		char gl[32];
		sl_json_set_str(spec, "nodeName", node);
		if (tols)
			json_object_object_add(spec, "tolerations", tols);
		snprintf(gl, sizeof(gl), "%" PRId64, iget(meta(owner), "generation", 1));
		sl_json_set_str(sl_json_ensure_obj(m, "labels"), "pod-template-generation", gl);
	}
	json_object_object_add(pod, "spec", spec);
	rc = req(wl, "POST", &SL_GVR_PODS, ons(owner), NULL, false, pod, NULL, out);
	json_object_put(pod);
	if (rc == 0 && out && *out)
		event(wl, kind, owner, "SuccessfulCreate", component, "Created pod: %s",
		      oname(*out));
	else if (rc && rc != -ECANCELED)
		ctl_event(&wl->w, kind, "apps/v1", ons(owner), oname(owner), ouid(owner), "Warning",
			  "FailedCreate", "Error creating: pod create failed", component);
	return rc;
}

static int delete_pod(struct wl *wl, const char *kind, const struct json_object *owner,
		      const struct json_object *pod, const char *component)
{
	int rc = req(wl, "DELETE", &SL_GVR_PODS, ons(pod), oname(pod), false, NULL, NULL, NULL);

	if (rc == 0 || rc == -SL_ERR_NOTFOUND) {
		expect(wl, ouid(owner), INF_PODS, pod, true);
		if (rc == 0)
			event(wl, kind, owner, "SuccessfulDelete", component, "Deleted pod: %s",
			      oname(pod));
	}
	return rc;
}

/* --- ReplicaSet ------------------------------------------------------------------------------ */

static bool labels_superset(const struct json_object *have, const struct json_object *want)
{
	if (!json_object_is_type(want, json_type_object))
		return true;
	json_object_object_foreach((struct json_object *)want, k, v)
	{
		const char *h = sl_json_get_str(have, k);
		if (!h || strcmp(h, s0(json_object_get_string(v))))
			return false;
	}
	return true;
}

static void sync_rs(struct wl *wl, struct snap *s, struct json_object *rs)
{
	struct json_object *spec = sl_json_get(rs, "spec"), *st, *tl;
	struct sl_labelsel *sel;
	struct podset pods = {0};
	size_t *idx, n_active = 0;
	int64_t want = iget(spec, "replicas", 1), min_ready = iget(spec, "minReadySeconds", 0);
	int64_t ready = 0, avail = 0, labeled = 0;
	size_t gone = 0;
	char err[256];

	if (!expectations_met(wl, ouid(rs)))
		return;
	sel = sl_labelsel_from_json(sl_json_get(spec, "selector"), "spec.selector", err,
				    sizeof(err));
	if (!sel || sl_labelsel_empty(sel)) {
		sl_labelsel_free(sel);
		return; /* validation keeps these out; nothing safe to do */
	}
	claim_pods(wl, s, "ReplicaSet", rs, sel, &pods);
	sl_labelsel_free(sel);
	idx = calloc(pods.n ? pods.n : 1, sizeof(*idx));
	if (!idx) {
		free(pods.v);
		return;
	}
	tl = sl_json_get(meta(sl_json_get(spec, "template")), "labels");
	for (size_t i = 0; i < pods.n; i++) {
		if (!wl_pod_active(pods.v[i]))
			continue;
		idx[n_active++] = i;
		ready += wl_pod_ready(pods.v[i]);
		avail += wl_pod_available(pods.v[i], min_ready, s->now);
		labeled += labels_superset(sl_json_get(meta(pods.v[i]), "labels"), tl);
	}
	if (!odeleting(rs) && (int64_t)n_active < want) {
		int64_t n = want - (int64_t)n_active;
		for (int64_t i = 0; i < n && i < MAX_BURST; i++) {
			struct json_object *p = NULL;
			if (create_pod(wl, "ReplicaSet", rs, NULL, "replicaset-controller", &p))
				break;
			expect(wl, ouid(rs), INF_PODS, p, false);
			json_object_put(p);
		}
	} else if (!odeleting(rs) && (int64_t)n_active > want) {
		size_t n = n_active - (size_t)want;
		wl_pods_delete_order(pods.v, idx, n_active);
		for (size_t i = 0; i < n && i < MAX_BURST; i++) {
			struct json_object *p = pods.v[idx[i]];
			if (delete_pod(wl, "ReplicaSet", rs, p, "replicaset-controller"))
				break;
			/* The status tells what is left, not what was. */
			gone++;
			ready -= wl_pod_ready(p);
			avail -= wl_pod_available(p, min_ready, s->now);
			labeled -= labels_superset(sl_json_get(meta(p), "labels"), tl);
		}
	}
	st = json_object_new_object();
	sl_json_set_int(st, "replicas", (int64_t)(n_active - gone));
	sl_json_set_int(st, "fullyLabeledReplicas", labeled);
	if (ready)
		sl_json_set_int(st, "readyReplicas", ready);
	if (avail)
		sl_json_set_int(st, "availableReplicas", avail);
	sl_json_set_int(st, "observedGeneration", iget(meta(rs), "generation", 1));
	put_status(wl, &GVR_RS, rs, st);
	free(idx);
	free(pods.v);
}

/* --- Deployment ------------------------------------------------------------------------------ */

static int cmp_created(const void *a, const void *b)
{
	const struct json_object *p = *(struct json_object *const *)a;
	const struct json_object *q = *(struct json_object *const *)b;
	int d = strcmp(s0(sl_json_get_str(meta(p), "creationTimestamp")),
		       s0(sl_json_get_str(meta(q), "creationTimestamp")));

	return d ? d : strcmp(oname(p), oname(q));
}

static int cmp_revision(const void *a, const void *b)
{
	int64_t p = revision_of(*(struct json_object *const *)a);
	int64_t q = revision_of(*(struct json_object *const *)b);

	return p < q ? -1 : p > q;
}

/* EqualIgnoreHash: the RS template is the Deployment's plus the hash label. */
static bool template_matches(const struct json_object *rs, const struct json_object *dtmpl)
{
	struct json_object *t = sl_json_clone(sl_json_get(sl_json_get(rs, "spec"), "template"));
	struct json_object *labels = sl_json_get(meta(t), "labels");
	bool eq;

	json_object_object_del(labels, WL_HASH_LABEL);
	eq = sl_json_equal(t, (struct json_object *)dtmpl);
	json_object_put(t);
	return eq;
}

/* Available pods of a ReplicaSet, never more than it is scaled to: a status
 * written before a scale-down was carried out must not count pods that are
 * about to go (that would let a rollout take too many down). */
static int32_t rs_available(const struct json_object *rs)
{
	int64_t a = iget(sl_json_get(rs, "status"), "availableReplicas", 0);
	int64_t r = iget(sl_json_get(rs, "spec"), "replicas", 1);

	return (int32_t)(a < r ? a : r);
}

static int scale_rs(struct wl *wl, const struct json_object *dep, const struct json_object *rs,
		    int64_t to)
{
	struct json_object *body = json_object_new_object(), *out = NULL, *ann;
	int64_t from = iget(sl_json_get(rs, "spec"), "replicas", 1);
	char v[32];
	int rc;

	sl_json_set_int(sl_json_ensure_obj(body, "spec"), "replicas", to);
	ann = sl_json_ensure_obj(sl_json_ensure_obj(body, "metadata"), "annotations");
	snprintf(v, sizeof(v), "%" PRId64, iget(sl_json_get(dep, "spec"), "replicas", 1));
	sl_json_set_str(ann, WL_DESIRED_ANNOT, v);
	rc = patch(wl, &GVR_RS, rs, false, body, &out);
	if (rc == 0) {
		expect(wl, ouid(dep), INF_RS, out, false);
		event(wl, "Deployment", dep, "ScalingReplicaSet", "deployment-controller",
		      "Scaled %s replica set %s to %" PRId64, to > from ? "up" : "down", oname(rs),
		      to);
	}
	json_object_put(out);
	return rc;
}

static struct json_object *condition(const struct json_object *old_st, const char *type,
				     const char *status, const char *reason, const char *msg,
				     const char *now)
{
	struct json_object *c = json_object_new_object(), *oc = NULL;
	struct json_object *conds = sl_json_get(old_st, "conditions");

	for (size_t i = 0; i < alen(conds); i++)
		if (!strcmp(s0(sl_json_get_str(aat(conds, i), "type")), type))
			oc = aat(conds, i);
	sl_json_set_str(c, "type", type);
	sl_json_set_str(c, "status", status);
	sl_json_set_str(c, "reason", reason);
	sl_json_set_str(c, "message", msg);
	if (oc && !strcmp(s0(sl_json_get_str(oc, "status")), status) &&
	    !strcmp(s0(sl_json_get_str(oc, "reason")), reason)) {
		sl_json_set_str(c, "lastUpdateTime", s0(sl_json_get_str(oc, "lastUpdateTime")));
		sl_json_set_str(c, "lastTransitionTime",
				s0(sl_json_get_str(oc, "lastTransitionTime")));
	} else {
		sl_json_set_str(c, "lastUpdateTime", now);
		sl_json_set_str(c, "lastTransitionTime",
				oc && !strcmp(s0(sl_json_get_str(oc, "status")), status)
					? s0(sl_json_get_str(oc, "lastTransitionTime"))
					: now);
	}
	return c;
}

static struct json_object *new_rs_object(const struct json_object *dep, const char *hash,
					 int64_t replicas, int64_t revision)
{
	struct json_object *spec = sl_json_get(dep, "spec");
	struct json_object *rs = json_object_new_object(), *m, *rspec, *tmpl, *sel, *ann;
	struct json_object *refs = json_object_new_array(), *dann;
	char name[300], v[32];

	sl_json_set_str(rs, "apiVersion", "apps/v1");
	sl_json_set_str(rs, "kind", "ReplicaSet");
	m = sl_json_ensure_obj(rs, "metadata");
	snprintf(name, sizeof(name), "%.240s-%s", oname(dep), hash);
	sl_json_set_str(m, "name", name);
	sl_json_set_str(m, "namespace", ons(dep));
	tmpl = sl_json_clone(sl_json_get(spec, "template"));
	sl_json_set_str(sl_json_ensure_obj(sl_json_ensure_obj(tmpl, "metadata"), "labels"),
			WL_HASH_LABEL, hash);
	json_object_object_add(m, "labels", sl_json_clone(sl_json_get(meta(tmpl), "labels")));
	ann = sl_json_ensure_obj(m, "annotations");
	snprintf(v, sizeof(v), "%" PRId64, revision);
	sl_json_set_str(ann, WL_REVISION_ANNOT, v);
	snprintf(v, sizeof(v), "%" PRId64, iget(spec, "replicas", 1));
	sl_json_set_str(ann, WL_DESIRED_ANNOT, v);
	dann = sl_json_get(meta(dep), "annotations");
	if (sl_json_get_str(dann, WL_CHANGE_CAUSE))
		sl_json_set_str(ann, WL_CHANGE_CAUSE, sl_json_get_str(dann, WL_CHANGE_CAUSE));
	json_object_array_add(refs, owner_ref("Deployment", dep));
	json_object_object_add(m, "ownerReferences", refs);
	rspec = sl_json_ensure_obj(rs, "spec");
	sl_json_set_int(rspec, "replicas", replicas);
	if (sl_json_get(spec, "minReadySeconds"))
		sl_json_set_int(rspec, "minReadySeconds", iget(spec, "minReadySeconds", 0));
	sel = sl_json_clone(sl_json_get(spec, "selector"));
	sl_json_set_str(sl_json_ensure_obj(sel, "matchLabels"), WL_HASH_LABEL, hash);
	json_object_object_add(rspec, "selector", sel);
	json_object_object_add(rspec, "template", tmpl);
	return rs;
}

/*
 * An orphaned ReplicaSet the Deployment's selector matches becomes its own
 * again (after `kubectl delete --cascade=false` and a re-create, say). The
 * patch is conditional on the ReplicaSet's resourceVersion; the next pass
 * sees the result.
 */
static void adopt_rs(struct wl *wl, const struct json_object *dep, const struct json_object *rs)
{
	struct sl_labelsel *sel = sl_labelsel_from_json(
		sl_json_get(sl_json_get(dep, "spec"), "selector"), "spec.selector", NULL, 0);
	struct json_object *body, *refs, *nrefs, *out = NULL;

	if (!sel || sl_labelsel_empty(sel) ||
	    !sl_labelsel_match_json(sel, sl_json_get(meta(rs), "labels"))) {
		sl_labelsel_free(sel);
		return;
	}
	sl_labelsel_free(sel);
	refs = sl_json_get(meta(rs), "ownerReferences");
	nrefs = json_object_new_array();
	for (size_t j = 0; j < alen(refs); j++)
		json_object_array_add(nrefs, sl_json_clone(aat(refs, j)));
	json_object_array_add(nrefs, owner_ref("Deployment", dep));
	body = json_object_new_object();
	json_object_object_add(sl_json_ensure_obj(body, "metadata"), "ownerReferences", nrefs);
	sl_json_set_str(sl_json_get(body, "metadata"), "resourceVersion",
			s0(sl_json_get_str(meta(rs), "resourceVersion")));
	if (patch(wl, &GVR_RS, rs, false, body, &out) == 0)
		expect(wl, ouid(dep), INF_RS, out, false);
	json_object_put(out);
}

static void sync_deploy(struct wl *wl, struct snap *s, struct json_object *dep)
{
	struct json_object *spec = sl_json_get(dep, "spec"), *all = s->l[INF_RS];
	struct json_object *tmpl = sl_json_get(spec, "template"), *new_rs = NULL, *st;
	struct json_object *strategy = sl_json_get(spec, "strategy");
	struct json_object *ru = sl_json_get(strategy, "rollingUpdate");
	struct json_object **old = NULL, **mine = NULL;
	struct json_object *paused = sl_json_get(spec, "paused");
	bool recreate = !strcmp(s0(sl_json_get_str(strategy, "type")), "Recreate");
	int64_t desired = iget(spec, "replicas", 1), max_old_rev = 0, new_rev;
	int64_t tot_status = 0, ready = 0, avail = 0, old_active = 0, total_spec = 0;
	int32_t surge = 0, unavail = 0;
	size_t n_old = 0, n_mine = 0;
	char ts[K8S_TIME_BUFSZ], msg[400];
	struct k8s_time kt = {.sec = s->now};

	if (odeleting(dep) || !expectations_met(wl, ouid(dep)))
		return;
	if (!recreate &&
	    wl_fenceposts(sl_json_get(ru, "maxSurge"), sl_json_get(ru, "maxUnavailable"),
			  (int32_t)desired, &surge, &unavail))
		return;
	mine = calloc(alen(all) + 1, sizeof(*mine));
	old = calloc(alen(all) + 1, sizeof(*old));
	if (!mine || !old)
		goto out;
	for (size_t i = 0; i < alen(all); i++) {
		struct json_object *rs = aat(all, i);
		if (same_ns(rs, dep) && owned_by(rs, ouid(dep)))
			mine[n_mine++] = rs;
		else if (same_ns(rs, dep) && !controller_ref(rs) && !odeleting(rs))
			adopt_rs(wl, dep, rs);
	}
	qsort(mine, n_mine, sizeof(*mine), cmp_created);
	for (size_t i = 0; i < n_mine; i++) {
		if (!new_rs && template_matches(mine[i], tmpl))
			new_rs = mine[i];
		else
			old[n_old++] = mine[i];
	}
	for (size_t i = 0; i < n_old; i++) {
		int64_t r = revision_of(old[i]);
		if (r > max_old_rev)
			max_old_rev = r;
		old_active += iget(sl_json_get(old[i], "spec"), "replicas", 1);
		old_active += iget(sl_json_get(old[i], "status"), "replicas", 0) > 0;
	}
	for (size_t i = 0; i < n_mine; i++) {
		total_spec += iget(sl_json_get(mine[i], "spec"), "replicas", 1);
		tot_status += iget(sl_json_get(mine[i], "status"), "replicas", 0);
		ready += iget(sl_json_get(mine[i], "status"), "readyReplicas", 0);
		avail += iget(sl_json_get(mine[i], "status"), "availableReplicas", 0);
	}
	new_rev = max_old_rev + 1;
	if (recreate) {
		/* Recreate waits until no old pod runs, terminating ones included
		 * (oldPodsRunning upstream), not only until the counts say 0. */
		struct json_object *pods = s->l[INF_PODS];
		for (size_t i = 0; i < alen(pods); i++) {
			struct json_object *p = aat(pods, i);
			const char *ph = s0(sl_json_get_str(sl_json_get(p, "status"), "phase"));
			if (!same_ns(p, dep) || !strcmp(ph, "Succeeded") || !strcmp(ph, "Failed"))
				continue;
			for (size_t j = 0; j < n_old; j++)
				if (owned_by(p, ouid(old[j])))
					old_active++;
		}
	}

	if (!new_rs && paused && json_object_get_boolean(paused))
		goto status; /* a paused Deployment does not start a rollout */
	if (!new_rs && !(recreate && old_active > 0)) {
		/* A new template: its ReplicaSet, at the size the strategy allows. */
		char hash[WL_HASH_BUFSZ];
		int64_t coll = iget(sl_json_get(dep, "status"), "collisionCount", -1);
		int64_t n = recreate ? desired
				     : wl_new_rs_replicas((int32_t)desired, surge,
							  (int32_t)total_spec, 0);
		struct json_object *rs, *out = NULL;
		int rc;
		wl_template_hash(tmpl, coll, hash);
		rs = new_rs_object(dep, hash, n, new_rev);
		rc = req(wl, "POST", &GVR_RS, ons(dep), NULL, false, rs, NULL, &out);
		json_object_put(rs);
		if (rc == 0) {
			expect(wl, ouid(dep), INF_RS, out, false);
			event(wl, "Deployment", dep, "ScalingReplicaSet", "deployment-controller",
			      "Scaled up replica set %s to %" PRId64, oname(out), n);
		} else if (rc == -SL_ERR_EXISTS) {
			/* Same hash, different template: count the collision so the
			 * next hash differs (as upstream). */
			struct json_object *body = json_object_new_object();
			sl_json_set_int(sl_json_ensure_obj(body, "status"), "collisionCount",
					coll < 0 ? 1 : coll + 1);
			patch(wl, &GVR_DEPLOY, dep, true, body, NULL);
		}
		json_object_put(out);
		goto out;
	}
	if (new_rs) {
		/* The current ReplicaSet carries the highest revision (a rollback
		 * makes an old one current again), and so does the Deployment. */
		int64_t r = revision_of(new_rs);
		const char *dr =
			sl_json_get_str(sl_json_get(meta(dep), "annotations"), WL_REVISION_ANNOT);
		char v[32];
		if (r < new_rev && n_old) {
			struct json_object *body = json_object_new_object(), *out = NULL, *ann;
			const char *cc = sl_json_get_str(sl_json_get(meta(dep), "annotations"),
							 WL_CHANGE_CAUSE);
			ann = sl_json_ensure_obj(sl_json_ensure_obj(body, "metadata"),
						 "annotations");
			snprintf(v, sizeof(v), "%" PRId64, new_rev);
			sl_json_set_str(ann, WL_REVISION_ANNOT, v);
			if (cc)
				sl_json_set_str(ann, WL_CHANGE_CAUSE, cc);
			if (patch(wl, &GVR_RS, new_rs, false, body, &out) == 0)
				expect(wl, ouid(dep), INF_RS, out, false);
			json_object_put(out);
			goto out;
		}
		snprintf(v, sizeof(v), "%" PRId64, r);
		if (!dr || strcmp(dr, v)) {
			struct json_object *body = json_object_new_object(), *out = NULL;
			sl_json_set_str(sl_json_ensure_obj(sl_json_ensure_obj(body, "metadata"),
							   "annotations"),
					WL_REVISION_ANNOT, v);
			if (patch(wl, &GVR_DEPLOY, dep, false, body, &out) == 0)
				expect(wl, ouid(dep), INF_DEPLOY, out, false);
			json_object_put(out);
			goto out;
		}
	}
	if (paused && json_object_get_boolean(paused))
		goto status;

	if (recreate) {
		bool scaled = false;
		for (size_t i = 0; i < n_old; i++) {
			if (iget(sl_json_get(old[i], "spec"), "replicas", 1) > 0) {
				scale_rs(wl, dep, old[i], 0);
				scaled = true;
			}
		}
		if (!scaled && old_active == 0 && new_rs &&
		    iget(sl_json_get(new_rs, "spec"), "replicas", 1) != desired)
			scale_rs(wl, dep, new_rs, desired);
	} else if (new_rs) {
		int64_t nr = iget(sl_json_get(new_rs, "spec"), "replicas", 1);
		int64_t spec_old = total_spec - nr;
		if (spec_old == 0) {
			/* Not a rollout: a scale of the current ReplicaSet. */
			if (nr != desired)
				scale_rs(wl, dep, new_rs, desired);
		} else {
			int32_t t = wl_new_rs_replicas((int32_t)desired, surge, (int32_t)total_spec,
						       (int32_t)nr);
			if (t != nr) {
				scale_rs(wl, dep, new_rs, t);
			} else {
				struct wl_rs_count nc, *oc = calloc(n_old + 1, sizeof(*oc));
				int32_t *to = calloc(n_old + 1, sizeof(*to));
				nc.replicas = (int32_t)nr;
				nc.available = rs_available(new_rs);
				for (size_t i = 0; oc && to && i < n_old; i++) {
					oc[i].replicas = (int32_t)iget(sl_json_get(old[i], "spec"),
								       "replicas", 1);
					oc[i].available = rs_available(old[i]);
				}
				if (oc && to &&
				    wl_scale_down_old((int32_t)desired, unavail, &nc, oc, n_old,
						      to))
					for (size_t i = 0; i < n_old; i++)
						if (to[i] != oc[i].replicas)
							scale_rs(wl, dep, old[i], to[i]);
				free(oc);
				free(to);
			}
		}
	}
	{
		/* revisionHistoryLimit: drop the oldest empty old ReplicaSets. */
		int64_t limit = iget(spec, "revisionHistoryLimit", 10);
		struct json_object **empty = calloc(n_old + 1, sizeof(*empty));
		size_t n_empty = 0;
		for (size_t i = 0; empty && i < n_old; i++)
			if (iget(sl_json_get(old[i], "spec"), "replicas", 1) == 0 &&
			    iget(sl_json_get(old[i], "status"), "replicas", 0) == 0 &&
			    !odeleting(old[i]))
				empty[n_empty++] = old[i];
		if (empty)
			qsort(empty, n_empty, sizeof(*empty), cmp_revision);
		for (size_t i = 0; empty && (int64_t)n_empty - (int64_t)i > limit; i++)
			if (req(wl, "DELETE", &GVR_RS, ons(empty[i]), oname(empty[i]), false, NULL,
				NULL, NULL) == 0)
				expect(wl, ouid(dep), INF_RS, empty[i], true);
		free(empty);
	}
status:
	k8s_time_format(&kt, false, ts, sizeof(ts));
	st = json_object_new_object();
	sl_json_set_int(st, "observedGeneration", iget(meta(dep), "generation", 1));
	sl_json_set_int(st, "replicas", tot_status);
	sl_json_set_int(st, "updatedReplicas",
			new_rs ? iget(sl_json_get(new_rs, "status"), "replicas", 0) : 0);
	sl_json_set_int(st, "readyReplicas", ready);
	sl_json_set_int(st, "availableReplicas", avail);
	if (desired - avail > 0)
		sl_json_set_int(st, "unavailableReplicas", desired - avail);
	if (sl_json_get(sl_json_get(dep, "status"), "collisionCount"))
		sl_json_set_int(st, "collisionCount",
				iget(sl_json_get(dep, "status"), "collisionCount", 0));
	{
		struct json_object *conds = json_object_new_array(),
				   *ost = sl_json_get(dep, "status");
		int64_t upd = new_rs ? iget(sl_json_get(new_rs, "status"), "replicas", 0) : 0;
		bool complete = new_rs && upd == desired && tot_status == desired &&
				avail >= desired &&
				iget(sl_json_get(new_rs, "spec"), "replicas", 1) == desired;
		if (avail >= desired - unavail)
			json_object_array_add(
				conds,
				condition(ost, "Available", "True", "MinimumReplicasAvailable",
					  "Deployment has minimum availability.", ts));
		else
			json_object_array_add(
				conds,
				condition(ost, "Available", "False", "MinimumReplicasUnavailable",
					  "Deployment does not have minimum availability.", ts));
		if (new_rs) {
			snprintf(msg, sizeof(msg),
				 complete ? "ReplicaSet \"%s\" has successfully progressed."
					  : "ReplicaSet \"%s\" is progressing.",
				 oname(new_rs));
			json_object_array_add(conds, condition(ost, "Progressing", "True",
							       complete ? "NewReplicaSetAvailable"
									: "ReplicaSetUpdated",
							       msg, ts));
		}
		json_object_object_add(st, "conditions", conds);
	}
	put_status(wl, &GVR_DEPLOY, dep, st);
out:
	free(mine);
	free(old);
}

/* --- DaemonSet ------------------------------------------------------------------------------- */

static void sync_ds(struct wl *wl, struct snap *s, struct json_object *ds)
{
	struct json_object *spec = sl_json_get(ds, "spec"), *nodes = s->l[INF_NODES], *st;
	struct json_object *pspec = sl_json_get(sl_json_get(spec, "template"), "spec");
	struct sl_labelsel *sel;
	struct podset pods = {0};
	int64_t gen = iget(meta(ds), "generation", 1), min_ready = iget(spec, "minReadySeconds", 0);
	int64_t desired = 0, current = 0, mis = 0, nready = 0, navail = 0, updated = 0;
	char err[256], gl[32];
	bool *used;

	if (odeleting(ds) || !expectations_met(wl, ouid(ds)))
		return;
	sel = sl_labelsel_from_json(sl_json_get(spec, "selector"), "spec.selector", err,
				    sizeof(err));
	if (!sel || sl_labelsel_empty(sel)) {
		sl_labelsel_free(sel);
		return;
	}
	claim_pods(wl, s, "DaemonSet", ds, sel, &pods);
	sl_labelsel_free(sel);
	used = calloc(pods.n + 1, sizeof(*used));
	if (!used) {
		free(pods.v);
		return;
	}
	snprintf(gl, sizeof(gl), "%" PRId64, gen);
	for (size_t i = 0; i < alen(nodes); i++) {
		struct json_object *node = aat(nodes, i), *keep = NULL;
		bool eligible = wl_node_eligible(node, pspec);
		for (size_t j = 0; j < pods.n; j++) {
			struct json_object *p = pods.v[j];
			const char *nn = sl_json_get_str(sl_json_get(p, "spec"), "nodeName");
			if (!nn || strcmp(nn, oname(node)))
				continue;
			used[j] = true;
			if (!wl_pod_active(p))
				continue;
			if (!eligible || keep) {
				/* Not wanted here, or a second daemon pod. */
				delete_pod(wl, "DaemonSet", ds, p, "daemonset-controller");
				continue;
			}
			keep = p;
		}
		if (eligible)
			desired++;
		if (!eligible && keep)
			mis++;
		if (eligible && keep) {
			const char *pg = sl_json_get_str(sl_json_get(meta(keep), "labels"),
							 "pod-template-generation");
			current++;
			nready += wl_pod_ready(keep);
			navail += wl_pod_available(keep, min_ready, s->now);
			updated += pg && !strcmp(pg, gl);
		}
		if (eligible && !keep) {
			struct json_object *p = NULL;
			if (create_pod(wl, "DaemonSet", ds, oname(node), "daemonset-controller",
				       &p) == 0)
				expect(wl, ouid(ds), INF_PODS, p, false);
			json_object_put(p);
		}
	}
	/* Pods on nodes that no longer exist. */
	for (size_t j = 0; j < pods.n; j++)
		if (!used[j] && wl_pod_active(pods.v[j]))
			delete_pod(wl, "DaemonSet", ds, pods.v[j], "daemonset-controller");
	/* RollingUpdate (rollingUpdate in daemon/update.go): outdated pods
	 * that are not available go at once; available ones only while fewer
	 * than maxUnavailable nodes lack an available pod. */
	if (!strcmp(s0(sl_json_get_str(sl_json_get(spec, "updateStrategy"), "type")),
		    "RollingUpdate") &&
	    updated < current) {
		int32_t mu = 1;
		int64_t unavailable = desired - navail;
		wl_int_or_percent(sl_json_get(sl_json_get(sl_json_get(spec, "updateStrategy"),
							  "rollingUpdate"),
					      "maxUnavailable"),
				  (int32_t)desired, true, &mu);
		if (mu < 1)
			mu = 1;
		for (size_t j = 0; j < pods.n; j++) {
			struct json_object *p = pods.v[j];
			const char *pg = sl_json_get_str(sl_json_get(meta(p), "labels"),
							 "pod-template-generation");
			bool av = wl_pod_available(p, min_ready, s->now);
			if (!used[j] || !wl_pod_active(p) || (pg && !strcmp(pg, gl)))
				continue;
			if (av && unavailable >= mu)
				continue;
			if (delete_pod(wl, "DaemonSet", ds, p, "daemonset-controller") == 0 && av)
				unavailable++;
		}
	}
	st = json_object_new_object();
	sl_json_set_int(st, "currentNumberScheduled", current);
	sl_json_set_int(st, "numberMisscheduled", mis);
	sl_json_set_int(st, "desiredNumberScheduled", desired);
	sl_json_set_int(st, "numberReady", nready);
	sl_json_set_int(st, "observedGeneration", gen);
	sl_json_set_int(st, "updatedNumberScheduled", updated);
	if (navail)
		sl_json_set_int(st, "numberAvailable", navail);
	if (desired - navail > 0)
		sl_json_set_int(st, "numberUnavailable", desired - navail);
	put_status(wl, &GVR_DS, ds, st);
	free(used);
	free(pods.v);
}

/* --- garbage collector ------------------------------------------------------------------------ */

static const struct sl_gvr *gvr_of_kind(const char *api_version, const char *kind, int *inf)
{
	static const struct sl_gvr rs = GVR_RS, dep = GVR_DEPLOY, ds = GVR_DS, pods = SL_GVR_PODS,
				   svcs = SL_GVR_SERVICES;

	if (!strcmp(api_version, "apps/v1") && !strcmp(kind, "ReplicaSet"))
		return *inf = INF_RS, &rs;
	if (!strcmp(api_version, "apps/v1") && !strcmp(kind, "Deployment"))
		return *inf = INF_DEPLOY, &dep;
	if (!strcmp(api_version, "apps/v1") && !strcmp(kind, "DaemonSet"))
		return *inf = INF_DS, &ds;
	if (!strcmp(api_version, "v1") && !strcmp(kind, "Pod"))
		return *inf = INF_PODS, &pods;
	if (!strcmp(api_version, "v1") && !strcmp(kind, "Service"))
		return *inf = INF_SVCS, &svcs;
	return NULL;
}

static int cmp_uid(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The owner is gone when neither the snapshot nor the API has it under its uid. */
static bool owner_gone(struct wl *wl, const struct snap *s, const char *ns,
		       const struct json_object *ref)
{
	const char *name = sl_json_get_str(ref, "name"), *uid = sl_json_get_str(ref, "uid");
	int inf;
	const struct sl_gvr *g = gvr_of_kind(s0(sl_json_get_str(ref, "apiVersion")),
					     s0(sl_json_get_str(ref, "kind")), &inf);
	struct json_object *o;
	bool gone;
	int rc;

	if (!g || !name || !uid)
		return false; /* a kind we do not know: not ours to judge */
	if (s->uids && bsearch(&uid, s->uids, s->n_uids, sizeof(*s->uids), cmp_uid))
		return false;
	/* Our cache may lag (a brand-new owner) or not hold the kind: ask the API. */
	o = NULL;
	rc = req(wl, "GET", g, ns, name, false, NULL, NULL, &o);
	gone = rc == -SL_ERR_NOTFOUND || (rc == 0 && strcmp(ouid(o), uid));
	json_object_put(o);
	return gone;
}

static void gc_list(struct wl *wl, const struct snap *s, const struct sl_gvr *gvr,
		    struct json_object *objs)
{
	for (size_t i = 0; i < alen(objs); i++) {
		struct json_object *o = aat(objs, i), *live = NULL, *body, *pre;
		struct json_object *refs = sl_json_get(meta(o), "ownerReferences");
		bool all_gone = alen(refs) > 0;
		int rc;

		if (!all_gone || odeleting(o))
			continue;
		for (size_t j = 0; all_gone && j < alen(refs); j++)
			all_gone = owner_gone(wl, s, ons(o), aat(refs, j));
		if (!all_gone)
			continue;
		/* An orphaning delete removes the references just before the
		 * owner goes: act on the object as it is now, not as cached. */
		rc = req(wl, "GET", gvr, ons(o), oname(o), false, NULL, NULL, &live);
		if (rc || !sl_json_equal(sl_json_get(meta(live), "ownerReferences"), refs)) {
			json_object_put(live);
			continue;
		}
		body = json_object_new_object();
		sl_json_set_str(body, "kind", "DeleteOptions");
		sl_json_set_str(body, "apiVersion", "v1");
		sl_json_set_str(body, "propagationPolicy", "Background");
		pre = sl_json_ensure_obj(body, "preconditions");
		sl_json_set_str(pre, "uid", ouid(live));
		sl_json_set_str(pre, "resourceVersion",
				s0(sl_json_get_str(meta(live), "resourceVersion")));
		rc = req(wl, "DELETE", gvr, ons(o), oname(o), false, body, NULL, NULL);
		if (rc == 0)
			pr_info("ctl", "garbage collector: deleted %s %s/%s (owner gone)",
				gvr->resource, ons(o), oname(o));
		json_object_put(body);
		json_object_put(live);
	}
}

/*
 * The pod garbage collector's orphan rule: terminating pods bound to a Node
 * that no longer exists have no kubelet to finish their deletion, so they are
 * deleted at once (grace period 0), as kube-controller-manager's podgc does.
 * (podgc also deletes running pods of vanished nodes after 40 s; not done
 * here.)
 */
static void gc_orphan_pods(struct wl *wl, struct snap *s)
{
	static const struct sl_gvr nodes = SL_GVR_NODES, pods = SL_GVR_PODS;
	struct json_object *l = s->l[INF_PODS];

	for (size_t i = 0; i < alen(l); i++) {
		struct json_object *p = aat(l, i), *n, *body;
		const char *nn = sl_json_get_str(sl_json_get(p, "spec"), "nodeName");
		int rc;
		/* Only pods already being deleted: a pod bound ahead of its
		 * Node (or by hand) is left alone. */
		if (!nn || !*nn || !odeleting(p))
			continue;
		n = sl_informer_get(wl->inf[INF_NODES], NULL, nn);
		json_object_put(n);
		if (n)
			continue;
		n = NULL;
		rc = req(wl, "GET", &nodes, NULL, nn, false, NULL, NULL, &n);
		json_object_put(n);
		if (rc != -SL_ERR_NOTFOUND)
			continue;
		body = json_object_new_object();
		sl_json_set_str(body, "kind", "DeleteOptions");
		sl_json_set_str(body, "apiVersion", "v1");
		sl_json_set_int(body, "gracePeriodSeconds", 0);
		sl_json_set_str(sl_json_ensure_obj(body, "preconditions"), "uid", ouid(p));
		if (req(wl, "DELETE", &pods, ons(p), oname(p), false, body, NULL, NULL) == 0)
			pr_info("ctl", "garbage collector: deleted pod %s/%s (node %s is gone)",
				ons(p), oname(p), nn);
		json_object_put(body);
	}
}

/* --- the thread ------------------------------------------------------------------------------- */

/* Services are listed only when a Service was deleted (the slice GC needs
 * them); the other kinds every pass. */
static void snap_take(struct wl *wl, struct snap *s, bool svcs)
{
	size_t n = 0;

	memset(s, 0, sizeof(*s));
	for (int i = 0; i < INF_N; i++) {
		s->l[i] =
			wl->inf[i] && (i != INF_SVCS || svcs) ? sl_informer_list(wl->inf[i]) : NULL;
		if (!s->l[i])
			s->l[i] = json_object_new_array();
		n += alen(s->l[i]);
	}
	s->uids = calloc(n + 1, sizeof(*s->uids));
	for (int i = 0; s->uids && i < INF_N; i++)
		for (size_t j = 0; j < alen(s->l[i]); j++)
			s->uids[s->n_uids++] = ouid(aat(s->l[i], j));
	if (s->uids)
		qsort(s->uids, s->n_uids, sizeof(*s->uids), cmp_uid);
	s->now = time(NULL);
}

static void snap_fini(struct snap *s)
{
	for (int i = 0; i < INF_N; i++)
		json_object_put(s->l[i]);
	free(s->uids);
}

static bool has_objects(struct sl_informer *inf)
{
	struct sl_informer_stats st;

	if (!inf)
		return false;
	sl_informer_stats(inf, &st);
	return st.objects > 0;
}

/* Anything whose state moves with time (minReadySeconds, rollouts). */
static bool workloads_exist(struct wl *wl)
{
	return has_objects(wl->inf[INF_RS]) || has_objects(wl->inf[INF_DEPLOY]) ||
	       has_objects(wl->inf[INF_DS]);
}

static void pass(struct wl *wl)
{
	struct snap s;
	bool slices = atomic_exchange(&wl->slice_gc, false) && (wl->which & CTL_GC);

	snap_take(wl, &s, slices);
	if (wl->which & CTL_REPLICASET)
		for (size_t i = 0; i < alen(s.l[INF_RS]) && !atomic_load(&wl->c->stop); i++)
			sync_rs(wl, &s, aat(s.l[INF_RS], i));
	if (wl->which & CTL_DEPLOYMENT)
		for (size_t i = 0; i < alen(s.l[INF_DEPLOY]) && !atomic_load(&wl->c->stop); i++)
			sync_deploy(wl, &s, aat(s.l[INF_DEPLOY], i));
	if (wl->which & CTL_DAEMONSET)
		for (size_t i = 0; i < alen(s.l[INF_DS]) && !atomic_load(&wl->c->stop); i++)
			sync_ds(wl, &s, aat(s.l[INF_DS], i));
	if (wl->which & CTL_GC) {
		static const struct sl_gvr rs = GVR_RS, pods = SL_GVR_PODS,
					   slices_gvr = SL_GVR_ENDPOINTSLICES;
		struct json_object *sl = NULL;
		gc_list(wl, &s, &pods, s.l[INF_PODS]);
		gc_orphan_pods(wl, &s);
		gc_list(wl, &s, &rs, s.l[INF_RS]);
		if (slices) {
			if (req(wl, "GET", &slices_gvr, NULL, NULL, false, NULL, NULL, &sl) == 0)
				gc_list(wl, &s, &slices_gvr, sl_json_get(sl, "items"));
			else
				atomic_store(&wl->slice_gc, true);
			json_object_put(sl);
		}
	}
	snap_fini(&s);
}

static void *wl_thread(void *arg)
{
	struct wl *wl = ((struct ctl_worker *)arg)->ctl->wl;

	for (int i = 0; i < INF_N; i++) {
		while (wl->inf[i] && !atomic_load(&wl->c->stop)) {
			int rc = sl_informer_wait_synced(wl->inf[i], 200);
			if (rc == 0)
				break;
			if (rc == -ECANCELED)
				return NULL;
		}
	}
	pr_info("ctl", "workload controllers running");
	ctlq_add(&wl->q, "pass", 0); /* the state found at start */
	while (!atomic_load(&wl->c->stop)) {
		char **keys = NULL;
		int n = ctlq_get(&wl->q, &keys, BATCH_MS);
		if (n < 0)
			break;
		for (int i = 0; i < n; i++)
			free(keys[i]);
		free(keys);
		pass(wl);
		/* Time-driven work exists only with workloads or unseen writes;
		 * otherwise events alone wake the thread (a cluster of plain pods
		 * and Services costs nothing here). */
		if (workloads_exist(wl) || wl->n_ex)
			ctlq_add(&wl->q, "pass", PASS_MS);
	}
	return NULL;
}

static void on_any(struct json_object *o, void *arg)
{
	(void)o;
	ctlq_add(&((struct wl *)arg)->q, "pass", 0);
}
static void on_update(struct json_object *o, struct json_object *n, void *arg)
{
	(void)o;
	on_any(n, arg);
}

/* A pod matters when something may own it: it has owners, or workloads
 * exist that could adopt it. */
static void on_pod(struct json_object *o, void *arg)
{
	struct wl *wl = arg;

	if (alen(sl_json_get(meta(o), "ownerReferences")) || workloads_exist(wl))
		ctlq_add(&wl->q, "pass", 0);
}
static void on_pod_update(struct json_object *o, struct json_object *n, void *arg)
{
	(void)o;
	on_pod(n, arg);
}

/* Nodes matter to DaemonSets, and a deleted one to the pod GC. */
static void on_node(struct json_object *o, void *arg)
{
	struct wl *wl = arg;

	(void)o;
	if (has_objects(wl->inf[INF_DS]))
		ctlq_add(&wl->q, "pass", 0);
}
static void on_node_update(struct json_object *o, struct json_object *n, void *arg)
{
	(void)o;
	on_node(n, arg);
}

/* Only a deleted Service leaves something to collect. */
static void on_svc_delete(struct json_object *o, void *arg)
{
	struct wl *wl = arg;

	(void)o;
	atomic_store(&wl->slice_gc, true);
	ctlq_add(&wl->q, "pass", 0);
}

int wl_start(struct ctl *c, unsigned which, char *err, size_t errlen)
{
	struct sl_gvr g[INF_N];
	struct wl *wl;

	g[INF_PODS] = SL_GVR_PODS;
	g[INF_RS] = GVR_RS;
	g[INF_DEPLOY] = GVR_DEPLOY;
	g[INF_DS] = GVR_DS;
	g[INF_NODES] = SL_GVR_NODES;
	g[INF_SVCS] = SL_GVR_SERVICES;
	wl = calloc(1, sizeof(*wl));
	if (!wl || ctlq_init(&wl->q)) {
		free(wl);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	wl->q_init = true;
	atomic_store(&wl->slice_gc, true); /* leftovers from before a restart */
	wl->c = c;
	wl->which = which;
	c->wl = wl;
	for (int i = 0; i < INF_N; i++) {
		struct sl_informer_handlers h;
		if (i == INF_NODES && !(which & (CTL_DAEMONSET | CTL_GC)))
			continue;
		if (i == INF_SVCS && !(which & CTL_GC))
			continue;
		h = (struct sl_informer_handlers){
			.on_add = on_any, .on_update = on_update, .on_delete = on_any, .arg = wl};
		if (i == INF_PODS)
			h = (struct sl_informer_handlers){.on_add = on_pod,
							  .on_update = on_pod_update,
							  .on_delete = on_pod,
							  .arg = wl};
		else if (i == INF_NODES)
			h = (struct sl_informer_handlers){.on_add = on_node,
							  .on_update = on_node_update,
							  .on_delete = on_any,
							  .arg = wl};
		else if (i == INF_SVCS)
			h = (struct sl_informer_handlers){.on_delete = on_svc_delete, .arg = wl};
		wl->inf[i] = ctl_informer_start(c->client, &g[i], NULL, &h, err, errlen);
		if (!wl->inf[i])
			return -EINVAL;
	}
	wl->w.ctl = c;
	wl->w.cancel = sl_cancel_new();
	if (!wl->w.cancel || pthread_create(&wl->w.thr, NULL, wl_thread, &wl->w)) {
		snprintf(err, errlen, "cannot start the workload controller thread");
		return -EAGAIN;
	}
	wl->w.started = true;
	return 0;
}

void wl_stop(struct ctl *c)
{
	struct wl *wl = c ? c->wl : NULL;

	if (!wl)
		return;
	if (wl->q_init)
		ctlq_stop(&wl->q);
	if (wl->w.cancel)
		sl_cancel_fire(wl->w.cancel);
	for (int i = 0; i < INF_N; i++)
		sl_informer_stop(wl->inf[i]);
	if (wl->w.started)
		pthread_join(wl->w.thr, NULL);
	sl_cancel_free(wl->w.cancel);
	for (int i = 0; i < INF_N; i++)
		sl_informer_free(wl->inf[i]);
	if (wl->q_init)
		ctlq_fini(&wl->q);
	free(wl->ex);
	free(wl);
	c->wl = NULL;
}
