// SPDX-License-Identifier: Apache-2.0
/*
 * The EndpointSlice and Endpoints controllers: one thread, one queue of
 * Service keys. Keys: "s/<ns>/<name>" (sync), "d/<ns>/<name>" (the Service
 * was deleted: its slices and its Endpoints go), "n/<ns>" (a pod changed:
 * every Service of the namespace). A batch takes one snapshot of the caches
 * (Services, Pods, slices) and syncs each Service against it.
 *
 * Slices are created with generateName, so the informer must have seen a
 * slice we wrote before the next sync of its Service plans again, or we would
 * create a duplicate. The tracker (kube's endpointSliceTracker) remembers the
 * resourceVersion of each slice written or deleted; a sync that finds the
 * cache older is put back for a few milliseconds.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl_int.h"
#include "sluice/err.h"
#include "sluice/json.h"
#include "sluice/log.h"

#define BATCH_MS	5   /* events arriving together become one pass */
#define STALE_RETRY_MS	20  /* our own write not in the cache yet */
#define ERROR_RETRY_MS	500 /* API error */
#define TRACK_EXPIRY_MS 10000

struct ctl_trk {
	char ns[254];
	char svc[254];
	char slice[254];
	int64_t rv;   /* resourceVersion we wrote (0 for a delete) */
	bool deleted; /* we deleted it */
	uint64_t at_ms;
};

/* One batch's view of the caches. */
struct snap {
	struct k8s_service **svcs;
	size_t n_svcs;
	struct k8s_pod **pods;
	size_t n_pods;
	struct json_object *slices; /* array */
};

static void snap_fini(struct snap *s)
{
	for (size_t i = 0; i < s->n_svcs; i++)
		k8s_service_free(s->svcs[i]);
	for (size_t i = 0; i < s->n_pods; i++)
		k8s_pod_free(s->pods[i]);
	free(s->svcs);
	free(s->pods);
	json_object_put(s->slices);
	memset(s, 0, sizeof(*s));
}

/* Decodes every element of an informer's list with `dec`. */
static int decode_all(struct sl_informer *inf, int (*dec)(struct json_object *, void **),
		      void ***out, size_t *n)
{
	struct json_object *arr = sl_informer_list(inf);
	size_t len;

	*out = NULL;
	*n = 0;
	if (!arr)
		return -ENOMEM;
	len = json_object_array_length(arr);
	*out = calloc(len ? len : 1, sizeof(void *));
	if (!*out) {
		json_object_put(arr);
		return -ENOMEM;
	}
	for (size_t i = 0; i < len; i++) {
		void *o = NULL;
		if (!dec(json_object_array_get_idx(arr, i), &o))
			(*out)[(*n)++] = o;
	}
	json_object_put(arr);
	return 0;
}

static int dec_svc(struct json_object *j, void **o)
{
	return k8s_service_decode(j, (struct k8s_service **)o, NULL, 0);
}

static int dec_pod(struct json_object *j, void **o)
{
	return k8s_pod_decode(j, (struct k8s_pod **)o, NULL, 0);
}

static int snap_take(struct ctl *c, struct snap *s)
{
	memset(s, 0, sizeof(*s));
	if (decode_all(c->svc_inf, dec_svc, (void ***)&s->svcs, &s->n_svcs) ||
	    decode_all(c->pod_inf, dec_pod, (void ***)&s->pods, &s->n_pods) ||
	    !(s->slices = sl_informer_list(c->slice_inf))) {
		snap_fini(s);
		return -ENOMEM;
	}
	return 0;
}

static const struct k8s_service *snap_svc(const struct snap *s, const char *ns, const char *name)
{
	for (size_t i = 0; i < s->n_svcs; i++)
		if (!strcmp(s->svcs[i]->meta.namespace ? s->svcs[i]->meta.namespace : "", ns) &&
		    !strcmp(s->svcs[i]->meta.name, name))
			return s->svcs[i];
	return NULL;
}

static struct json_object *snap_slice(const struct snap *s, const char *ns, const char *name)
{
	for (size_t i = 0; i < json_object_array_length(s->slices); i++) {
		struct json_object *o = json_object_array_get_idx(s->slices, i);
		struct json_object *m = sl_json_get(o, "metadata");
		const char *n = sl_json_get_str(m, "name"), *sns = sl_json_get_str(m, "namespace");
		if (n && sns && !strcmp(n, name) && !strcmp(sns, ns))
			return o;
	}
	return NULL;
}

static int64_t obj_rv(struct json_object *o)
{
	const char *rv = sl_json_get_str(sl_json_get(o, "metadata"), "resourceVersion");

	return rv ? strtoll(rv, NULL, 10) : 0;
}

/* --- tracker -----------------------------------------------------------------------------------
 */

static void trk_record(struct ctl *c, const char *ns, const char *svc, const char *slice,
		       int64_t rv, bool deleted)
{
	struct ctl_trk *t = NULL;

	for (size_t i = 0; i < c->n_trk && !t; i++)
		if (!strcmp(c->trk[i].ns, ns) && !strcmp(c->trk[i].slice, slice))
			t = &c->trk[i];
	if (!t) {
		struct ctl_trk *v = realloc(c->trk, (c->n_trk + 1) * sizeof(*v));
		if (!v)
			return; /* worst case a later sync plans on a stale cache once */
		c->trk = v;
		t = &c->trk[c->n_trk++];
	}
	snprintf(t->ns, sizeof(t->ns), "%s", ns);
	snprintf(t->svc, sizeof(t->svc), "%s", svc);
	snprintf(t->slice, sizeof(t->slice), "%s", slice);
	t->rv = rv;
	t->deleted = deleted;
	t->at_ms = ctl_now_ms();
}

/* True when the snapshot has not yet caught up with our writes for this
 * Service; entries it has caught up with are dropped. */
static bool trk_stale(struct ctl *c, const struct snap *s, const char *ns, const char *svc)
{
	bool stale = false;
	uint64_t now = ctl_now_ms();
	size_t j = 0;

	for (size_t i = 0; i < c->n_trk; i++) {
		struct ctl_trk *t = &c->trk[i];
		bool keep = false;
		if (!strcmp(t->ns, ns) && !strcmp(t->svc, svc) &&
		    now - t->at_ms < TRACK_EXPIRY_MS) {
			struct json_object *o = snap_slice(s, ns, t->slice);
			if (t->deleted ? o != NULL : (!o || obj_rv(o) < t->rv)) {
				stale = true;
				keep = true;
			}
		} else if (now - t->at_ms < TRACK_EXPIRY_MS) {
			keep = true;
		}
		if (keep)
			c->trk[j++] = *t;
	}
	c->n_trk = j;
	return stale;
}

/* --- sync ------------------------------------------------------------------------------------- */

/* Slices of ns/svc that this controller manages, borrowed from the snapshot. */
static size_t my_slices(const struct snap *s, const char *ns, const char *svc,
			struct json_object ***out)
{
	size_t n = 0, len = json_object_array_length(s->slices);

	*out = calloc(len ? len : 1, sizeof(**out));
	if (!*out)
		return 0;
	for (size_t i = 0; i < len; i++) {
		struct json_object *o = json_object_array_get_idx(s->slices, i);
		struct json_object *m = sl_json_get(o, "metadata");
		struct json_object *l = sl_json_get(m, "labels");
		const char *sns = sl_json_get_str(m, "namespace");
		const char *sn = sl_json_get_str(l, K8S_LABEL_SERVICE_NAME);
		const char *mb = sl_json_get_str(l, CTL_MANAGED_BY_LABEL);
		if (sns && sn && mb && !strcmp(sns, ns) && !strcmp(sn, svc) &&
		    !strcmp(mb, CTL_MANAGED_BY))
			(*out)[n++] = o;
	}
	return n;
}

static int slice_delete(struct ctl_worker *w, const char *ns, const char *svc, const char *name)
{
	char err[512], *path = sl_client_path(&SL_GVR_ENDPOINTSLICES, ns, name, NULL);
	int rc =
		path ? ctl_request(w, "DELETE", path, NULL, NULL, NULL, err, sizeof(err)) : -ENOMEM;

	free(path);
	if (rc == -SL_ERR_NOTFOUND)
		rc = 0;
	if (rc) {
		pr_warn("ctl", "endpointslice '%s/%s': delete failed: %s", ns, name, err);
		return rc;
	}
	trk_record(w->ctl, ns, svc, name, 0, true);
	return 0;
}

static int slice_write(struct ctl_worker *w, const char *ns, const char *svc,
		       struct json_object *obj, bool create)
{
	const char *name = sl_json_get_str(sl_json_get(obj, "metadata"), "name");
	char err[512],
		*path = sl_client_path(&SL_GVR_ENDPOINTSLICES, ns, create ? NULL : name, NULL);
	struct json_object *out = NULL;
	int rc = path ? ctl_request(w, create ? "POST" : "PUT", path, obj, NULL, &out, err,
				    sizeof(err))
		      : -ENOMEM;

	free(path);
	if (rc) {
		if (rc != -SL_ERR_CONFLICT)
			pr_warn("ctl", "endpointslice for service '%s/%s': %s failed: %s", ns, svc,
				create ? "create" : "update", err);
		return rc;
	}
	name = sl_json_get_str(sl_json_get(out, "metadata"), "name");
	if (name)
		trk_record(w->ctl, ns, svc, name, obj_rv(out), false);
	json_object_put(out);
	return 0;
}

static int sync_endpoints(struct ctl_worker *w, const struct k8s_service *svc,
			  struct k8s_pod *const *pods, size_t n_pods)
{
	struct ctl *c = w->ctl;
	const char *ns = svc->meta.namespace, *name = svc->meta.name;
	struct json_object *cur = sl_informer_get(c->ep_inf, ns, name), *want, *out = NULL;
	char err[512], *path;
	bool changed = false;
	int rc;

	want = ctl_endpoints_build(svc, pods, n_pods, cur, &changed);
	if (!want) {
		json_object_put(cur);
		return -ENOMEM;
	}
	if (!changed) {
		json_object_put(cur);
		json_object_put(want);
		return 0;
	}
	path = sl_client_path(&CTL_GVR_ENDPOINTS, ns, cur ? name : NULL, NULL);
	rc = path ? ctl_request(w, cur ? "PUT" : "POST", path, want, NULL, &out, err, sizeof(err))
		  : -ENOMEM;
	if (rc && rc != -SL_ERR_CONFLICT && rc != -SL_ERR_EXISTS)
		pr_warn("ctl", "endpoints '%s/%s': %s failed: %s", ns, name,
			cur ? "update" : "create", err);
	free(path);
	json_object_put(out);
	json_object_put(cur);
	json_object_put(want);
	return rc;
}

static int delete_endpoints(struct ctl_worker *w, const char *ns, const char *name)
{
	struct json_object *cur = sl_informer_get(w->ctl->ep_inf, ns, name);
	char err[512], *path;
	int rc;

	if (!cur)
		return 0;
	json_object_put(cur);
	path = sl_client_path(&CTL_GVR_ENDPOINTS, ns, name, NULL);
	rc = path ? ctl_request(w, "DELETE", path, NULL, NULL, NULL, err, sizeof(err)) : -ENOMEM;
	free(path);
	if (rc == -SL_ERR_NOTFOUND)
		rc = 0;
	if (rc)
		pr_warn("ctl", "endpoints '%s/%s': delete failed: %s", ns, name, err);
	return rc;
}

/* Returns 0, -EAGAIN (cache behind our writes) or an API error. */
static int sync_service(struct ctl_worker *w, const struct snap *s, const char *ns,
			const char *name, bool deleted)
{
	struct ctl *c = w->ctl;
	const struct k8s_service *svc = snap_svc(s, ns, name);
	struct json_object **mine = NULL;
	struct k8s_pod **pods = NULL;
	size_t n_mine, n_pods = 0;
	int rc = 0;

	if (trk_stale(c, s, ns, name))
		return -EAGAIN;
	n_mine = my_slices(s, ns, name, &mine);
	if (!mine)
		return -ENOMEM;
	if (!svc || !svc->spec.selector.n ||
	    (svc->spec.type && !strcmp(svc->spec.type, "ExternalName"))) {
		/* Gone, or no longer ours to fill: slices we made go. A selector-less
		 * Service's Endpoints belong to the user, so only a deleted Service
		 * takes its Endpoints along. */
		for (size_t i = 0; (c->which & CTL_ENDPOINTSLICE) && i < n_mine; i++) {
			const char *sn = sl_json_get_str(sl_json_get(mine[i], "metadata"), "name");
			int r = sn ? slice_delete(w, ns, name, sn) : 0;
			if (r)
				rc = r;
		}
		if (!svc && deleted && (c->which & CTL_ENDPOINTS)) {
			int r = delete_endpoints(w, ns, name);
			if (r)
				rc = r;
		}
		free(mine);
		return rc;
	}
	pods = calloc(s->n_pods ? s->n_pods : 1, sizeof(*pods));
	if (!pods) {
		free(mine);
		return -ENOMEM;
	}
	for (size_t i = 0; i < s->n_pods; i++)
		if (s->pods[i]->meta.namespace && !strcmp(s->pods[i]->meta.namespace, ns))
			pods[n_pods++] = s->pods[i];
	if (c->which & CTL_ENDPOINTSLICE) {
		struct ctl_slice_plan plan;
		rc = ctl_slices_plan(svc, pods, n_pods, mine, n_mine, 0, &plan);
		if (!rc) {
			/* Deletes first: they free room; then updates, then creates. */
			for (size_t i = 0; i < plan.n_del && !rc; i++)
				rc = slice_delete(w, ns, name, plan.del[i]);
			for (size_t i = 0; i < plan.n_update && !rc; i++)
				rc = slice_write(w, ns, name, plan.update[i], false);
			for (size_t i = 0; i < plan.n_create && !rc; i++)
				rc = slice_write(w, ns, name, plan.create[i], true);
			if (plan.n_del || plan.n_update || plan.n_create)
				pr_debug("ctl",
					 "service '%s/%s': slices %zu created, %zu updated, %zu "
					 "deleted, %zu unchanged",
					 ns, name, plan.n_create, plan.n_update, plan.n_del,
					 plan.n_unchanged);
			ctl_slice_plan_fini(&plan);
		}
	}
	if (c->which & CTL_ENDPOINTS) {
		int r = sync_endpoints(w, svc, pods, n_pods);
		if (r && !rc)
			rc = r;
	}
	free(pods);
	free(mine);
	return rc;
}

static bool wait_synced(struct ctl *c, struct sl_informer *inf)
{
	while (inf && !atomic_load(&c->stop)) {
		int rc = sl_informer_wait_synced(inf, 200);
		if (rc == 0)
			return true;
		if (rc == -ECANCELED)
			return false;
	}
	return !atomic_load(&c->stop);
}

/* Expands "n/<ns>" keys to the Services of the namespace; dedups. */
static size_t expand_keys(const struct snap *s, char **keys, size_t n, char ***out)
{
	size_t cap = n + s->n_svcs + 1, m = 0;
	char **v = calloc(cap, sizeof(*v));

	*out = v;
	if (!v)
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (keys[i][0] == 'n') {
			const char *ns = keys[i] + 2;
			for (size_t j = 0; j < s->n_svcs && m < cap; j++) {
				const struct k8s_meta *mt = &s->svcs[j]->meta;
				char k[600];
				bool dup = false;
				if (!mt->namespace || strcmp(mt->namespace, ns))
					continue;
				snprintf(k, sizeof(k), "s/%s/%s", mt->namespace, mt->name);
				for (size_t q = 0; q < m && !dup; q++)
					dup = !strcmp(v[q], k) || !strcmp(v[q] + 1, k + 1);
				for (size_t q = 0; q < n && !dup; q++)
					dup = !strcmp(keys[q], k);
				if (!dup && (v[m] = strdup(k)))
					m++;
			}
		} else if (m < cap && (v[m] = strdup(keys[i]))) {
			m++;
		}
	}
	return m;
}

void *ctl_endpoints_thread(void *arg)
{
	struct ctl_worker *w = arg;
	struct ctl *c = w->ctl;

	if (!wait_synced(c, c->svc_inf) || !wait_synced(c, c->pod_inf) ||
	    !wait_synced(c, c->slice_inf) || (c->ep_inf && !wait_synced(c, c->ep_inf)))
		return NULL;
	pr_info("ctl", "endpoint controllers running (%s%s)",
		c->which & CTL_ENDPOINTSLICE ? "endpointslice " : "",
		c->which & CTL_ENDPOINTS ? "endpoints" : "");
	while (!atomic_load(&c->stop)) {
		char **keys = NULL, **all = NULL;
		struct snap s;
		int n = ctlq_get(&c->epq, &keys, BATCH_MS);
		size_t m;

		if (n < 0)
			break;
		if (snap_take(c, &s)) {
			for (int i = 0; i < n; i++) {
				ctlq_add(&c->epq, keys[i], ERROR_RETRY_MS);
				free(keys[i]);
			}
			free(keys);
			continue;
		}
		m = expand_keys(&s, keys, (size_t)n, &all);
		for (int i = 0; i < n; i++)
			free(keys[i]);
		free(keys);
		for (size_t i = 0; i < m; i++) {
			char ns[256], name[256];
			const char *k = all[i], *sl = strchr(k + 2, '/');
			int rc;
			if (!atomic_load(&c->stop) && sl && (size_t)(sl - k - 2) < sizeof(ns)) {
				snprintf(ns, sizeof(ns), "%.*s", (int)(sl - k - 2), k + 2);
				snprintf(name, sizeof(name), "%s", sl + 1);
				rc = sync_service(w, &s, ns, name, k[0] == 'd');
				if (rc == -EAGAIN || rc == -SL_ERR_CONFLICT || rc == -SL_ERR_EXISTS)
					ctlq_add(&c->epq, k, STALE_RETRY_MS);
				else if (rc && rc != -ECANCELED)
					ctlq_add(&c->epq, k, ERROR_RETRY_MS);
			}
			free(all[i]);
		}
		free(all);
		snap_fini(&s);
	}
	return NULL;
}

void ctl_endpoints_cleanup(struct ctl *c)
{
	free(c->trk);
	c->trk = NULL;
	c->n_trk = 0;
}
