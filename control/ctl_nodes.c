// SPDX-License-Identifier: Apache-2.0
/*
 * Node controllers.
 *
 * IPAM (kube's range allocator): every Node without spec.podCIDR gets the
 * next free block of --cluster-cidr in spec.podCIDR and spec.podCIDRs. The
 * Nodes are the durable record: at start the blocks they hold are marked
 * before anything is handed out; a deleted Node's block is released. When
 * the range is exhausted the Node gets a Warning Event (CIDRNotAvailable)
 * and is retried when a block frees up or after a while.
 *
 * Lifecycle (kube's node lifecycle controller, the part networking needs):
 * every few seconds, a Node whose Lease in kube-node-lease was last renewed
 * more than --node-monitor-grace-period ago gets its conditions set to
 * Unknown ("Kubelet stopped posting node status."), the
 * node.kubernetes.io/unreachable NoSchedule and NoExecute taints, and its
 * pods' Ready condition set to False so their endpoints stop being ready.
 * When the Lease is fresh again the taints go; the node's agent reports
 * Ready itself. Nodes without a Lease are not judged: nothing heartbeats
 * for them (API-only nodes in tests, or a kubelet that never started).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctl_int.h"
#include "sluice/err.h"
#include "sluice/json.h"
#include "sluice/log.h"

#define IPAM_RETRY_MS		1000
#define IPAM_EXHAUSTED_RETRY_MS 30000

struct ctl_ipam_node {
	char name[254];
	char cidr[64]; /* block this node holds ("" none) */
	bool warned;   /* exhaustion Event sent for this node */
};

static bool wait_synced(struct ctl *c, struct sl_informer *inf)
{
	while (!atomic_load(&c->stop)) {
		int rc = sl_informer_wait_synced(inf, 200);
		if (rc == 0)
			return true;
		if (rc == -ECANCELED)
			return false;
	}
	return false;
}

/* --- IPAM ------------------------------------------------------------------------------------ */

static struct ctl_ipam_node *ipam_node(struct ctl *c, const char *name, bool create)
{
	struct ctl_ipam_node *v;

	for (size_t i = 0; i < c->n_ipam_nodes; i++)
		if (!strcmp(c->ipam_nodes[i].name, name))
			return &c->ipam_nodes[i];
	if (!create)
		return NULL;
	v = realloc(c->ipam_nodes, (c->n_ipam_nodes + 1) * sizeof(*v));
	if (!v)
		return NULL;
	c->ipam_nodes = v;
	v = &c->ipam_nodes[c->n_ipam_nodes++];
	memset(v, 0, sizeof(*v));
	snprintf(v->name, sizeof(v->name), "%s", name);
	return v;
}

static void ipam_forget(struct ctl *c, struct ctl_ipam_node *n)
{
	size_t i = (size_t)(n - c->ipam_nodes);

	if (n->cidr[0])
		ctl_cidrset_release(c->cidrs, n->cidr);
	c->ipam_nodes[i] = c->ipam_nodes[--c->n_ipam_nodes];
}

/* A node that already has a podCIDR: make our books agree. */
static void ipam_observe(struct ctl *c, const char *name, const char *cidr)
{
	struct ctl_ipam_node *n = ipam_node(c, name, true);
	int rc;

	if (!n || !strcmp(n->cidr, cidr))
		return;
	if (n->cidr[0])
		ctl_cidrset_release(c->cidrs, n->cidr);
	n->cidr[0] = '\0';
	n->warned = false;
	rc = ctl_cidrset_occupy(c->cidrs, cidr);
	if (rc == -EEXIST)
		pr_warn("ctl", "node '%s': podCIDR %s is also assigned to another node", name,
			cidr);
	else if (rc == -ERANGE)
		pr_info("ctl", "node '%s': podCIDR %s is outside --cluster-cidr; left alone", name,
			cidr);
	if (!rc)
		snprintf(n->cidr, sizeof(n->cidr), "%s", cidr);
}

/* 0 or a delay after which the key should come back. */
static unsigned ipam_sync(struct ctl_worker *w, const char *name)
{
	struct ctl *c = w->ctl;
	struct json_object *node = sl_informer_get(c->node_inf, NULL, name), *patch, *spec, *arr;
	struct ctl_ipam_node *n;
	const char *cidr, *uid;
	char block[64], err[512], *path;
	bool fresh = false;
	unsigned again = 0;
	int rc;

	if (!node) {
		n = ipam_node(c, name, false);
		if (n) {
			if (n->cidr[0])
				pr_info("ctl", "node '%s' deleted: podCIDR %s released", name,
					n->cidr);
			ipam_forget(c, n);
		}
		return 0;
	}
	spec = sl_json_get(node, "spec");
	cidr = sl_json_get_str(spec, "podCIDR");
	if (cidr && *cidr) {
		ipam_observe(c, name, cidr);
		json_object_put(node);
		return 0;
	}
	if (sl_json_get(sl_json_get(node, "metadata"), "deletionTimestamp")) {
		json_object_put(node);
		return 0;
	}
	n = ipam_node(c, name, true);
	if (!n) {
		json_object_put(node);
		return IPAM_RETRY_MS;
	}
	uid = sl_json_get_str(sl_json_get(node, "metadata"), "uid");
	if (n->cidr[0]) {
		/* Allocated earlier and the patch failed or is not in the cache yet:
		 * the same block again, so a retry never leaks one. */
		snprintf(block, sizeof(block), "%s", n->cidr);
	} else if (ctl_cidrset_next(c->cidrs, block, sizeof(block))) {
		if (!n->warned) {
			char msg[512];
			snprintf(msg, sizeof(msg),
				 "Node %s status is now: CIDRNotAvailable (all %u blocks of "
				 "--cluster-cidr %s are in use)",
				 name, ctl_cidrset_size(c->cidrs), c->cfg.cluster_cidr);
			pr_warn("ctl", "node '%s': no podCIDR left in %s", name,
				c->cfg.cluster_cidr);
			ctl_event(w, "Node", "v1", NULL, name, uid, "Warning", "CIDRNotAvailable",
				  msg, "cidrAllocator");
			n->warned = true;
		}
		json_object_put(node);
		return IPAM_EXHAUSTED_RETRY_MS;
	} else {
		fresh = true;
		snprintf(n->cidr, sizeof(n->cidr), "%s", block);
	}
	json_object_put(node);

	patch = json_object_new_object();
	spec = patch ? sl_json_ensure_obj(patch, "spec") : NULL;
	arr = json_object_new_array();
	path = sl_client_path(&SL_GVR_NODES, NULL, name, NULL);
	if (!patch || !spec || !arr || !path) {
		json_object_put(arr);
		rc = -ENOMEM;
		snprintf(err, sizeof(err), "out of memory");
	} else {
		sl_json_set_str(spec, "podCIDR", block);
		json_object_array_add(arr, json_object_new_string(block));
		json_object_object_add(spec, "podCIDRs", arr);
		rc = ctl_request(w, "PATCH", path, patch, "application/merge-patch+json", NULL, err,
				 sizeof(err));
	}
	free(path);
	json_object_put(patch);
	if (rc == 0) {
		n->warned = false;
		pr_info("ctl", "node '%s': podCIDR %s", name, block);
	} else if (rc == -SL_ERR_NOTFOUND) {
		ipam_forget(c, n);
	} else {
		pr_warn("ctl", "node '%s': setting podCIDR %s failed: %s", name, block, err);
		if (fresh && rc == -SL_ERR_INVALID) {
			ctl_cidrset_release(c->cidrs, block);
			n->cidr[0] = '\0';
		}
		again = IPAM_RETRY_MS;
	}
	return again;
}

void *ctl_ipam_thread(void *arg)
{
	struct ctl_worker *w = arg;
	struct ctl *c = w->ctl;
	struct json_object *nodes;
	char err[256];

	c->cidrs = ctl_cidrset_new(c->cfg.cluster_cidr, c->cfg.node_cidr_mask, err, sizeof(err));
	if (!c->cidrs) {
		pr_err("ctl", "node IPAM: --cluster-cidr '%s': %s", c->cfg.cluster_cidr, err);
		return NULL;
	}
	if (!wait_synced(c, c->node_inf))
		return NULL;
	/* Every block already held is marked before the first allocation. */
	nodes = sl_informer_list(c->node_inf);
	for (size_t i = 0; nodes && i < json_object_array_length(nodes); i++) {
		struct json_object *o = json_object_array_get_idx(nodes, i);
		const char *name = sl_json_get_str(sl_json_get(o, "metadata"), "name");
		const char *cidr = sl_json_get_str(sl_json_get(o, "spec"), "podCIDR");
		if (name && cidr && *cidr)
			ipam_observe(c, name, cidr);
	}
	json_object_put(nodes);
	pr_info("ctl", "node IPAM running: %s in /%d blocks, %u in use", c->cfg.cluster_cidr,
		c->cfg.node_cidr_mask, ctl_cidrset_used(c->cidrs));
	while (!atomic_load(&c->stop)) {
		char **keys = NULL;
		int n = ctlq_get(&c->ipamq, &keys, 2);
		bool released = false;

		if (n < 0)
			break;
		for (int i = 0; i < n; i++) {
			uint32_t before = ctl_cidrset_used(c->cidrs);
			unsigned again = atomic_load(&c->stop) ? 0 : ipam_sync(w, keys[i]);
			if (again)
				ctlq_add(&c->ipamq, keys[i], again);
			if (ctl_cidrset_used(c->cidrs) < before)
				released = true;
			free(keys[i]);
		}
		free(keys);
		/* A freed block may be what a waiting node needs. */
		for (size_t i = 0; released && i < c->n_ipam_nodes; i++)
			if (c->ipam_nodes[i].warned)
				ctlq_add(&c->ipamq, c->ipam_nodes[i].name, 0);
	}
	return NULL;
}

void ctl_ipam_cleanup(struct ctl *c)
{
	ctl_cidrset_free(c->cidrs);
	c->cidrs = NULL;
	free(c->ipam_nodes);
	c->ipam_nodes = NULL;
	c->n_ipam_nodes = 0;
}

/* --- lifecycle -------------------------------------------------------------------------------- */

#define TAINT_UNREACHABLE "node.kubernetes.io/unreachable"
#define MSG_STOPPED	  "Kubelet stopped posting node status."

static void now_str(char *buf, size_t len)
{
	struct k8s_time t = {.sec = time(NULL)};

	k8s_time_format(&t, false, buf, len);
}

/* Sets the node's conditions to Unknown as upstream does; true if changed. */
static bool conditions_unknown(struct json_object *node, const char *ts)
{
	static const char *const types[] = {"Ready", "MemoryPressure", "DiskPressure",
					    "PIDPressure"};
	struct json_object *st = sl_json_ensure_obj(node, "status");
	struct json_object *conds = sl_json_get(st, "conditions");
	bool changed = false, have_ready = false;

	if (!conds || !json_object_is_type(conds, json_type_array)) {
		conds = json_object_new_array();
		if (!conds)
			return false;
		json_object_object_add(st, "conditions", conds);
	}
	for (size_t i = 0; i < json_object_array_length(conds); i++) {
		struct json_object *cnd = json_object_array_get_idx(conds, i);
		const char *type = sl_json_get_str(cnd, "type");
		const char *status = sl_json_get_str(cnd, "status");
		bool ours = false;
		for (size_t k = 0; type && k < sizeof(types) / sizeof(types[0]); k++)
			ours |= !strcmp(type, types[k]);
		if (!ours)
			continue;
		if (!strcmp(type, "Ready"))
			have_ready = true;
		if (status && !strcmp(status, "Unknown"))
			continue;
		sl_json_set_str(cnd, "status", "Unknown");
		sl_json_set_str(cnd, "reason", "NodeStatusUnknown");
		sl_json_set_str(cnd, "message", MSG_STOPPED);
		sl_json_set_str(cnd, "lastTransitionTime", ts);
		changed = true;
	}
	if (!have_ready) {
		struct json_object *cnd = json_object_new_object();
		if (!cnd)
			return changed;
		sl_json_set_str(cnd, "type", "Ready");
		sl_json_set_str(cnd, "status", "Unknown");
		sl_json_set_str(cnd, "reason", "NodeStatusNeverUpdated");
		sl_json_set_str(cnd, "message", "Kubelet never posted node status.");
		sl_json_set_str(cnd, "lastHeartbeatTime", ts);
		sl_json_set_str(cnd, "lastTransitionTime", ts);
		json_object_array_add(conds, cnd);
		changed = true;
	}
	return changed;
}

static bool has_taint(struct json_object *node, const char *effect)
{
	struct json_object *t = sl_json_path(node, "spec", (char *)NULL);

	t = sl_json_get(t, "taints");
	for (size_t i = 0;
	     t && json_object_is_type(t, json_type_array) && i < json_object_array_length(t); i++) {
		struct json_object *e = json_object_array_get_idx(t, i);
		const char *k = sl_json_get_str(e, "key"), *ef = sl_json_get_str(e, "effect");
		if (k && ef && !strcmp(k, TAINT_UNREACHABLE) && !strcmp(ef, effect))
			return true;
	}
	return false;
}

/* Adds (add = true) or removes the unreachable taints; true if changed. */
static bool set_taints(struct json_object *node, bool add, const char *ts)
{
	struct json_object *spec = sl_json_ensure_obj(node, "spec");
	struct json_object *t = sl_json_get(spec, "taints"), *nt;
	bool changed = false;

	if (add) {
		static const char *const effects[] = {"NoSchedule", "NoExecute"};
		if (!t || !json_object_is_type(t, json_type_array)) {
			t = json_object_new_array();
			if (!t)
				return false;
			json_object_object_add(spec, "taints", t);
		}
		for (size_t k = 0; k < 2; k++) {
			struct json_object *e;
			if (has_taint(node, effects[k]))
				continue;
			e = json_object_new_object();
			if (!e)
				return changed;
			sl_json_set_str(e, "key", TAINT_UNREACHABLE);
			sl_json_set_str(e, "effect", effects[k]);
			/* Upstream stamps NoExecute taints: tolerationSeconds counts from it. */
			if (!strcmp(effects[k], "NoExecute"))
				sl_json_set_str(e, "timeAdded", ts);
			json_object_array_add(t, e);
			changed = true;
		}
		return changed;
	}
	if (!t || !json_object_is_type(t, json_type_array))
		return false;
	nt = json_object_new_array();
	if (!nt)
		return false;
	for (size_t i = 0; i < json_object_array_length(t); i++) {
		struct json_object *e = json_object_array_get_idx(t, i);
		const char *k = sl_json_get_str(e, "key");
		if (k && !strcmp(k, TAINT_UNREACHABLE))
			changed = true;
		else
			json_object_array_add(nt, json_object_get(e));
	}
	if (!changed) {
		json_object_put(nt);
		return false;
	}
	if (json_object_array_length(nt))
		json_object_object_add(spec, "taints", nt);
	else {
		json_object_put(nt);
		json_object_object_del(spec, "taints");
	}
	return true;
}

static int put_obj(struct ctl_worker *w, const struct sl_gvr *r, const char *ns, const char *name,
		   bool status, struct json_object *obj, struct json_object **out, const char *what)
{
	char err[512], *path = ctl_path(r, ns, name, status);
	int rc = path ? ctl_request(w, "PUT", path, obj, NULL, out, err, sizeof(err)) : -ENOMEM;

	free(path);
	if (rc && rc != -ECANCELED)
		pr_warn("ctl", "%s '%s%s%s': update failed: %s", what, ns ? ns : "", ns ? "/" : "",
			name, rc == -ENOMEM ? "out of memory" : err);
	return rc;
}

/* Ready False on every pod bound to the node (upstream MarkPodsNotReady). */
static void pods_not_ready(struct ctl_worker *w, const char *node, const char *ts)
{
	struct json_object *pods = sl_informer_list(w->ctl->pod_inf);

	for (size_t i = 0; pods && i < json_object_array_length(pods); i++) {
		struct json_object *p = json_object_array_get_idx(pods, i);
		struct json_object *meta = sl_json_get(p, "metadata");
		const char *nn = sl_json_get_str(sl_json_get(p, "spec"), "nodeName");
		struct json_object *conds = sl_json_path(p, "status", (char *)NULL);
		bool changed = false;

		if (!nn || strcmp(nn, node))
			continue;
		conds = sl_json_get(conds, "conditions");
		for (size_t k = 0; conds && json_object_is_type(conds, json_type_array) &&
				   k < json_object_array_length(conds);
		     k++) {
			struct json_object *cnd = json_object_array_get_idx(conds, k);
			const char *type = sl_json_get_str(cnd, "type");
			const char *st = sl_json_get_str(cnd, "status");
			if (!type || strcmp(type, "Ready") || (st && !strcmp(st, "False")))
				continue;
			sl_json_set_str(cnd, "status", "False");
			sl_json_set_str(cnd, "reason", "NodeNotReady");
			sl_json_set_str(cnd, "message", "Node is not ready");
			sl_json_set_str(cnd, "lastTransitionTime", ts);
			changed = true;
		}
		if (changed && !put_obj(w, &SL_GVR_PODS, sl_json_get_str(meta, "namespace"),
					sl_json_get_str(meta, "name"), true, p, NULL, "pod"))
			pr_info("ctl", "pod '%s/%s': Ready False (node '%s' unreachable)",
				sl_json_get_str(meta, "namespace"), sl_json_get_str(meta, "name"),
				node);
	}
	json_object_put(pods);
}

static void lifecycle_check(struct ctl_worker *w)
{
	struct ctl *c = w->ctl;
	struct json_object *nodes = sl_informer_list(c->node_inf);
	struct timespec now;
	char ts[K8S_TIME_BUFSZ];

	clock_gettime(CLOCK_REALTIME, &now);
	now_str(ts, sizeof(ts));
	for (size_t i = 0; nodes && i < json_object_array_length(nodes); i++) {
		struct json_object *node = json_object_array_get_idx(nodes, i), *out = NULL;
		const char *name = sl_json_get_str(sl_json_get(node, "metadata"), "name");
		struct json_object *lj =
			name ? sl_informer_get(c->lease_inf, "kube-node-lease", name) : NULL;
		struct k8s_lease *lease = NULL;
		struct k8s_time renew;
		bool stale;

		if (!lj)
			continue;
		if (k8s_lease_decode(lj, &lease, NULL, 0)) {
			json_object_put(lj);
			continue;
		}
		renew = k8s_time_is_set(&lease->spec.renew_time) ? lease->spec.renew_time
								 : lease->spec.acquire_time;
		k8s_lease_free(lease);
		json_object_put(lj);
		if (!k8s_time_is_set(&renew))
			continue;
		stale = (now.tv_sec - renew.sec) * 1000LL +
				(now.tv_nsec / 1000000 - renew.nsec / 1000000) >
			(long long)c->cfg.grace_s * 1000;
		if (stale) {
			struct json_object *copy = sl_json_clone(node);
			if (!copy)
				continue;
			if (conditions_unknown(copy, ts)) {
				if (put_obj(w, &SL_GVR_NODES, NULL, name, true, copy, &out,
					    "node")) {
					json_object_put(copy);
					continue;
				}
				pr_warn("ctl",
					"node '%s': lease not renewed for %ds: Ready Unknown", name,
					c->cfg.grace_s);
				json_object_put(copy);
				copy = out;
				out = NULL;
			}
			if (copy && set_taints(copy, true, ts))
				put_obj(w, &SL_GVR_NODES, NULL, name, false, copy, NULL, "node");
			json_object_put(copy);
			pods_not_ready(w, name, ts);
		} else if (has_taint(node, "NoSchedule") || has_taint(node, "NoExecute")) {
			struct json_object *copy = sl_json_clone(node);
			if (copy && set_taints(copy, false, ts) &&
			    !put_obj(w, &SL_GVR_NODES, NULL, name, false, copy, NULL, "node"))
				pr_info("ctl",
					"node '%s': lease renewed: unreachable taints removed",
					name);
			json_object_put(copy);
		}
	}
	json_object_put(nodes);
}

void *ctl_lifecycle_thread(void *arg)
{
	struct ctl_worker *w = arg;
	struct ctl *c = w->ctl;
	/* A few checks per grace period, at most every 5 s (upstream: 5 s). */
	unsigned period_ms = (unsigned)c->cfg.grace_s * 1000 / 4;

	if (period_ms > 5000)
		period_ms = 5000;
	if (period_ms < 500)
		period_ms = 500;
	if (!wait_synced(c, c->node_inf) || !wait_synced(c, c->lease_inf) ||
	    !wait_synced(c, c->pod_inf))
		return NULL;
	pr_info("ctl", "node lifecycle running: grace %ds, check every %ums", c->cfg.grace_s,
		period_ms);
	while (ctl_sleep(w, period_ms))
		lifecycle_check(w);
	return NULL;
}
