// SPDX-License-Identifier: Apache-2.0
/*
 * The pure decisions of the workload controllers (wl.h): template hash,
 * rolling update arithmetic, pod ranking and DaemonSet node eligibility,
 * transcribed from kubernetes pkg/controller (deployment/util, controller_utils,
 * daemon/util) where the comments say so.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/buf.h"
#include "sluice/json.h"
#include "sluice/k8s.h"
#include "sluice/selector.h"
#include "wl.h"

/* --- template hash ---------------------------------------------------------------------- */

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* JSON with object keys sorted: the same template always hashes the same,
 * whatever order a client or a patch left its keys in. */
static void canon(struct sl_buf *b, const struct json_object *o)
{
	switch (json_object_get_type(o)) {
	case json_type_object: {
		size_t n = (size_t)json_object_object_length(o), i = 0;
		const char **keys = calloc(n ? n : 1, sizeof(*keys));
		if (!keys) {
			b->oom = true;
			return;
		}
		json_object_object_foreach((struct json_object *)o, k, v)
		{
			(void)v;
			keys[i++] = k;
		}
		qsort(keys, n, sizeof(*keys), cmp_str);
		sl_buf_puts(b, "{");
		for (i = 0; i < n; i++) {
			struct json_object *ks = json_object_new_string(keys[i]);
			sl_buf_printf(b, "%s%s:", i ? "," : "",
				      json_object_to_json_string_ext(ks, JSON_C_TO_STRING_PLAIN));
			json_object_put(ks);
			canon(b, sl_json_get(o, keys[i]));
		}
		sl_buf_puts(b, "}");
		free(keys);
		break;
	}
	case json_type_array:
		sl_buf_puts(b, "[");
		for (size_t i = 0; i < json_object_array_length(o); i++) {
			if (i)
				sl_buf_puts(b, ",");
			canon(b, json_object_array_get_idx(o, i));
		}
		sl_buf_puts(b, "]");
		break;
	default:
		sl_buf_puts(b, json_object_to_json_string_ext((struct json_object *)o,
							      JSON_C_TO_STRING_PLAIN));
	}
}

void wl_template_hash(const struct json_object *tmpl, int64_t collision, char out[WL_HASH_BUFSZ])
{
	/* rand.SafeEncodeString: no vowels, no confusable characters. */
	static const char alnum[] = "bcdfghjklmnpqrstvwxz2456789";
	struct sl_buf b = SL_BUF_INIT;
	uint32_t h = 2166136261u;
	char dec[16];
	size_t i;

	canon(&b, tmpl);
	if (collision >= 0)
		sl_buf_printf(&b, "#%lld", (long long)collision);
	for (i = 0; i < b.len; i++) {
		h ^= (unsigned char)b.data[i];
		h *= 16777619u;
	}
	sl_buf_fini(&b);
	snprintf(dec, sizeof(dec), "%u", h);
	for (i = 0; i < WL_HASH_BUFSZ - 1 && dec[i]; i++)
		out[i] = alnum[(unsigned char)dec[i] % (sizeof(alnum) - 1)];
	out[i] = '\0';
}

/* --- rolling update arithmetic ------------------------------------------------------------ */

int wl_int_or_percent(const struct json_object *v, int32_t total, bool round_up, int32_t *out)
{
	const char *s;
	char *end;
	long n;

	*out = 0;
	if (!v || json_object_is_type(v, json_type_null))
		return 0;
	if (json_object_is_type(v, json_type_int)) {
		int64_t i = json_object_get_int64(v);
		if (i < 0 || i > INT32_MAX)
			return -EINVAL;
		*out = (int32_t)i;
		return 0;
	}
	if (!json_object_is_type(v, json_type_string))
		return -EINVAL;
	s = json_object_get_string((struct json_object *)v);
	errno = 0;
	n = strtol(s, &end, 10);
	if (end == s || strcmp(end, "%") || errno || n < 0 || n > 100)
		return -EINVAL;
	if (round_up)
		*out = (int32_t)(((int64_t)n * total + 99) / 100);
	else
		*out = (int32_t)(((int64_t)n * total) / 100);
	return 0;
}

int wl_fenceposts(const struct json_object *surge, const struct json_object *unavail,
		  int32_t desired, int32_t *max_surge, int32_t *max_unavail)
{
	if (wl_int_or_percent(surge, desired, true, max_surge) ||
	    wl_int_or_percent(unavail, desired, false, max_unavail))
		return -EINVAL;
	if (*max_surge == 0 && *max_unavail == 0)
		*max_unavail = 1;
	return 0;
}

int32_t wl_new_rs_replicas(int32_t desired, int32_t max_surge, int32_t total_replicas,
			   int32_t new_replicas)
{
	int32_t max_total = desired + max_surge, up;

	if (new_replicas > desired)
		return desired;
	if (total_replicas >= max_total)
		return new_replicas;
	up = max_total - total_replicas;
	if (up > desired - new_replicas)
		up = desired - new_replicas;
	return new_replicas + up;
}

int32_t wl_scale_down_old(int32_t desired, int32_t max_unavail, const struct wl_rs_count *new_rs,
			  const struct wl_rs_count *old, size_t n_old, int32_t *out)
{
	int32_t all = new_rs ? new_rs->replicas : 0, old_sum = 0, min_avail, new_unavail, max_down,
		done = 0, avail = new_rs ? new_rs->available : 0, total_down;

	for (size_t i = 0; i < n_old; i++) {
		out[i] = old[i].replicas;
		all += old[i].replicas;
		old_sum += old[i].replicas;
		avail += old[i].available;
	}
	if (old_sum == 0)
		return 0;
	min_avail = desired - max_unavail;
	new_unavail = new_rs ? new_rs->replicas - new_rs->available : 0;
	if (new_unavail < 0)
		new_unavail = 0;
	max_down = all - min_avail - new_unavail;
	if (max_down <= 0)
		return 0;
	/* cleanupUnhealthyReplicas: pods that are not available cost no
	 * availability, so they go first. */
	for (size_t i = 0; i < n_old && done < max_down; i++) {
		int32_t unhealthy = out[i] - old[i].available, d;
		if (unhealthy <= 0)
			continue;
		d = max_down - done < unhealthy ? max_down - done : unhealthy;
		out[i] -= d;
		done += d;
	}
	/* scaleDownOldReplicaSetsForRollingUpdate: then available pods, down to
	 * the minimum available. */
	if (avail <= min_avail)
		return done;
	total_down = avail - min_avail;
	{
		int32_t d2 = 0;
		for (size_t i = 0; i < n_old && d2 < total_down; i++) {
			int32_t d;
			if (out[i] == 0)
				continue;
			d = out[i] < total_down - d2 ? out[i] : total_down - d2;
			out[i] -= d;
			d2 += d;
		}
		done += d2;
	}
	return done;
}

/* --- pods ------------------------------------------------------------------------------- */

static const struct json_object *ready_cond(const struct json_object *pod)
{
	struct json_object *conds = sl_json_get(sl_json_get(pod, "status"), "conditions");

	for (size_t i = 0;
	     json_object_is_type(conds, json_type_array) && i < json_object_array_length(conds);
	     i++) {
		struct json_object *c = json_object_array_get_idx(conds, i);
		const char *t = sl_json_get_str(c, "type");
		if (t && !strcmp(t, "Ready"))
			return c;
	}
	return NULL;
}

static bool deleting(const struct json_object *pod)
{
	return sl_json_get(sl_json_get(pod, "metadata"), "deletionTimestamp") != NULL;
}

bool wl_pod_ready(const struct json_object *pod)
{
	const struct json_object *c = ready_cond(pod);
	const char *s = sl_json_get_str(c, "status");

	return !deleting(pod) && s && !strcmp(s, "True");
}

static time_t ts_of(const char *s)
{
	struct k8s_time t;

	if (!s || k8s_time_parse(s, &t))
		return 0;
	return (time_t)t.sec;
}

bool wl_pod_available(const struct json_object *pod, int64_t min_ready, time_t now)
{
	time_t since;

	if (!wl_pod_ready(pod))
		return false;
	if (min_ready <= 0)
		return true;
	since = ts_of(sl_json_get_str(ready_cond(pod), "lastTransitionTime"));
	return since && since + min_ready <= now;
}

bool wl_pod_active(const struct json_object *pod)
{
	const char *phase = sl_json_get_str(sl_json_get(pod, "status"), "phase");

	if (deleting(pod))
		return false;
	return !phase || (strcmp(phase, "Succeeded") && strcmp(phase, "Failed"));
}

static int phase_rank(const struct json_object *pod)
{
	const char *p = sl_json_get_str(sl_json_get(pod, "status"), "phase");

	if (!p || !strcmp(p, "Pending"))
		return 0;
	if (!strcmp(p, "Unknown"))
		return 1;
	return 2;
}

static int64_t restarts(const struct json_object *pod)
{
	struct json_object *cs = sl_json_get(sl_json_get(pod, "status"), "containerStatuses");
	int64_t total = 0, n;

	for (size_t i = 0;
	     json_object_is_type(cs, json_type_array) && i < json_object_array_length(cs); i++)
		if (sl_json_get_int(json_object_array_get_idx(cs, i), "restartCount", &n))
			total += n;
	return total;
}

static struct json_object *const *g_pods; /* qsort context; the caller holds the order lock */

static int rank_cmp(const void *a, const void *b)
{
	const struct json_object *p = g_pods[*(const size_t *)a], *q = g_pods[*(const size_t *)b];
	const char *pn = sl_json_get_str(sl_json_get(p, "spec"), "nodeName");
	const char *qn = sl_json_get_str(sl_json_get(q, "spec"), "nodeName");
	bool ps = pn && *pn, qs = qn && *qn, pr, qr;
	time_t pt, qt;
	int d;

	if (ps != qs)
		return ps ? 1 : -1;
	d = phase_rank(p) - phase_rank(q);
	if (d)
		return d;
	pr = wl_pod_ready(p);
	qr = wl_pod_ready(q);
	if (pr != qr)
		return pr ? 1 : -1;
	if (pr) {
		/* Ready for less time goes first. */
		pt = ts_of(sl_json_get_str(ready_cond(p), "lastTransitionTime"));
		qt = ts_of(sl_json_get_str(ready_cond(q), "lastTransitionTime"));
		if (pt != qt)
			return pt > qt ? -1 : 1;
	}
	if (restarts(p) != restarts(q))
		return restarts(p) > restarts(q) ? -1 : 1;
	pt = ts_of(sl_json_get_str(sl_json_get(p, "metadata"), "creationTimestamp"));
	qt = ts_of(sl_json_get_str(sl_json_get(q, "metadata"), "creationTimestamp"));
	if (pt != qt)
		return pt > qt ? -1 : 1;
	/* Same second: the name decides, so the order is total and stable. */
	return strcmp(sl_json_get_str(sl_json_get(q, "metadata"), "name") ?: "",
		      sl_json_get_str(sl_json_get(p, "metadata"), "name") ?: "");
}

void wl_pods_delete_order(struct json_object *const *pods, size_t *idx, size_t n)
{
	static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

	pthread_mutex_lock(&mu);
	g_pods = pods;
	qsort(idx, n, sizeof(*idx), rank_cmp);
	g_pods = NULL;
	pthread_mutex_unlock(&mu);
}

/* --- DaemonSet placement ------------------------------------------------------------------- */

static struct json_object *toleration(const char *key, const char *effect)
{
	struct json_object *t = json_object_new_object();

	sl_json_set_str(t, "key", key);
	sl_json_set_str(t, "operator", "Exists");
	sl_json_set_str(t, "effect", effect);
	return t;
}

struct json_object *wl_ds_tolerations(const struct json_object *pod_spec)
{
	struct json_object *a = json_object_new_array(), *hn;
	static const struct {
		const char *key, *effect;
	} add[] = {
		{"node.kubernetes.io/not-ready", "NoExecute"},
		{"node.kubernetes.io/unreachable", "NoExecute"},
		{"node.kubernetes.io/disk-pressure", "NoSchedule"},
		{"node.kubernetes.io/memory-pressure", "NoSchedule"},
		{"node.kubernetes.io/pid-pressure", "NoSchedule"},
		{"node.kubernetes.io/unschedulable", "NoSchedule"},
	};
	struct json_object *own = sl_json_get(pod_spec, "tolerations");

	if (!a)
		return NULL;
	for (size_t i = 0;
	     json_object_is_type(own, json_type_array) && i < json_object_array_length(own); i++)
		json_object_array_add(a, sl_json_clone(json_object_array_get_idx(own, i)));
	for (size_t i = 0; i < sizeof(add) / sizeof(add[0]); i++)
		json_object_array_add(a, toleration(add[i].key, add[i].effect));
	hn = sl_json_get(pod_spec, "hostNetwork");
	if (hn && json_object_get_boolean(hn))
		json_object_array_add(
			a, toleration("node.kubernetes.io/network-unavailable", "NoSchedule"));
	return a;
}

/* v1helper.Toleration.ToleratesTaint. */
static bool tolerates(const struct json_object *tol, const struct json_object *taint)
{
	const char *te = sl_json_get_str(tol, "effect"), *ke = sl_json_get_str(taint, "effect");
	const char *tk = sl_json_get_str(tol, "key"), *kk = sl_json_get_str(taint, "key");
	const char *op = sl_json_get_str(tol, "operator");
	const char *tv = sl_json_get_str(tol, "value"), *kv = sl_json_get_str(taint, "value");

	if (te && *te && (!ke || strcmp(te, ke)))
		return false;
	if (tk && *tk && (!kk || strcmp(tk, kk)))
		return false;
	if (op && !strcmp(op, "Exists"))
		return true;
	if (!op || !*op || !strcmp(op, "Equal"))
		return !strcmp(tv ? tv : "", kv ? kv : "");
	return false;
}

bool wl_node_eligible(const struct json_object *node, const struct json_object *pod_spec)
{
	struct json_object *ns = sl_json_get(pod_spec, "nodeSelector");
	struct json_object *labels = sl_json_get(sl_json_get(node, "metadata"), "labels");
	struct json_object *taints = sl_json_get(sl_json_get(node, "spec"), "taints"), *tols;
	bool ok = true;

	if (json_object_is_type(ns, json_type_object)) {
		json_object_object_foreach(ns, k, v)
		{
			const char *have = sl_json_get_str(labels, k);
			if (!have || strcmp(have, json_object_get_string(v)))
				return false;
		}
	}
	tols = wl_ds_tolerations(pod_spec);
	for (size_t i = 0; ok && json_object_is_type(taints, json_type_array) &&
			   i < json_object_array_length(taints);
	     i++) {
		struct json_object *t = json_object_array_get_idx(taints, i);
		const char *eff = sl_json_get_str(t, "effect");
		bool found = false;
		if (!eff || !strcmp(eff, "PreferNoSchedule"))
			continue;
		for (size_t j = 0; !found && j < json_object_array_length(tols); j++)
			found = tolerates(json_object_array_get_idx(tols, j), t);
		ok = found;
	}
	json_object_put(tols);
	return ok;
}
